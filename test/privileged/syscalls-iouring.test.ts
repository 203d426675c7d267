// Privileged: requests submitted through io_uring make no system call of their own, so the syscall
// tracepoints never see them; the sensor's io_uring programs report them as the same events. The workload
// (test/fixtures/iouring-workload.c, liburing) makes every file and socket operation through io_uring only,
// and prints what it asked and what each completion returned; every event is checked against that.
// Needs root + BPF with BTF + io_uring tracepoints + gcc + liburing-dev.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { FileEvent, NetEvent } from '../../src/events/types.ts';
import { feature } from '../../src/bpf/features.ts';
import { numPossibleCpus } from '../../src/bpf/map.ts';
import { IO_URING_PROBES, SyscallSensor } from '../../src/syscalls/sensor.ts';
import { buildWorkload, EventLog, runWorkload, type Truth } from '../fixtures/syscalls-harness.ts';
import { assertGone, IN_CI, privileged, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF + io_uring tracepoints + gcc + liburing-dev';

/** A temp dir (gone when the test ends) with the workload built in it, and a TCP listener on loopback. */
async function setup(t: TestContext): Promise<{ dir: string; bin: string; port: number }> {
  const dir = tempDir(t, 'vigil-iou-');
  const bin = buildWorkload(dir, 'vigil-iou-wl', 'iouring-workload.c', ['-luring']);
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  const server = net.createServer((c) => c.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { dir: work, bin, port: (server.address() as net.AddressInfo).port };
}

/** Skips (fails in CI) where the kernel has not the tracepoints the io_uring programs read. */
function ioUringTracepoints(t: TestContext): boolean {
  const f = feature('io_uring_tp');
  if (f.supported) return true;
  if (IN_CI) assert.fail(`io_uring tracepoints: ${f.reason}`);
  t.skip(`io_uring tracepoints: ${f.reason}`);
  return false;
}

/** Requests saved in iou_pending for their completion: its keys but the CPUs' slots (ring 0). */
function savedRequests(sensor: SyscallSensor): number {
  return [...sensor.manager!.getMap('iou_pending').keys()].filter((k) => new DataView(k.buffer, k.byteOffset, 16).getBigUint64(0, true) !== 0n).length;
}

function one(truth: Truth[], s: string): Truth {
  const x = truth.find((y) => y.s === s);
  assert.ok(x, `the workload did not report ${s}`);
  return x;
}

function pick<T>(list: T[], pred: (x: T) => boolean, what: string): T {
  const hit = list.filter(pred);
  assert.equal(hit.length, 1, `exactly one event for ${what}, got ${hit.length}`);
  return hit[0]!;
}

test('syscall sensor: file and socket operations submitted through io_uring are reported with their results', async (t) => {
  if (!privileged(t, NEEDS) || !ioUringTracepoints(t)) return;
  const { dir, bin, port } = await setup(t);
  const real = fs.realpathSync(dir);
  const log = new EventLog();
  // No comm filter: SQPOLL submits from the kernel's submission thread, whose comm is not the workload's.
  const sensor = new SyscallSensor({ files: true, network: { connect: true, accept: true, bind: true, listen: true } }, { onEvent: log.push });
  t.after(() => sensor.stop());
  sensor.start();
  assert.deepEqual(sensor.stats().ioUring, { monitored: true });
  const running = sensor.manager!.probes().filter((p) => p.state === 'running');
  for (const fn of IO_URING_PROBES) assert.ok(running.some((p) => p.id.fn === fn), `${fn} runs`);
  const progIds = running.map((p) => p.program!.id);

  const truth = await runWorkload(t, bin, [dir, String(port)]);
  const pid = one(truth, 'done').pid;
  await log.until(() => log.files([pid]).some((e) => e.path === one(truth, 'open-sqpoll').path && e.tid !== pid), 'the SQPOLL open');
  await log.until(() => log.net([pid]).some((e) => e.type === 'connect'), 'the connect');
  await log.until(() => log.net([pid]).filter((e) => e.type === 'accept').length === 4, 'the accepts');
  const files = log
    .files([pid])
    .filter((e) => e.path.startsWith(dir) || e.path2?.startsWith(dir) || (e.type === 'truncate' && e.resolvedPath?.startsWith(real)) || e.path === '/etc/shadow' || e.path.startsWith('/nonexistent/'));
  // The workload made no system call for any of these: every one of them came through io_uring.
  for (const e of files) {
    assert.equal(e.syscall, 'io_uring', `${e.type} ${e.path}: ${e.syscall}`);
    assert.equal(e.ioUring, true);
    assert.equal(e.pid, pid);
  }

  const created = one(truth, 'open');
  const open = pick(files, (e) => e.type === 'open' && e.write && e.path === created.path && e.tid === pid, 'the write-open');
  assert.equal(open.ret, created.res);
  assert.equal(open.resultUnknown, false);
  assert.equal(open.tid, created.tid);
  assert.ok(open.flagNames.includes('O_WRONLY') && open.flagNames.includes('O_CREAT') && open.flagNames.includes('O_TRUNC'), open.flagNames);
  assert.equal(open.modeOctal, '0640');
  assert.equal(open.dfd, -100);
  // Resolved through the fd the completion returned, as a syscall's would be.
  assert.equal(open.resolvedPath, path.join(real, 'iou-created'));
  assert.equal(open.resolvedFrom, 'fd');

  const o2 = pick(files, (e) => e.type === 'open' && !e.write && e.path === created.path && e.resolve !== undefined, 'the openat2');
  assert.equal(o2.ret, one(truth, 'openat2').res);
  assert.equal(o2.resolve, 'RESOLVE_NO_SYMLINKS');
  const missing = pick(files, (e) => e.path === '/nonexistent/vigil-iou', 'the failed open');
  assert.equal(missing.ret, -2);
  assert.equal(missing.errno, 'ENOENT');
  const secret = pick(files, (e) => e.type === 'open' && e.path === '/etc/shadow', 'the /etc/shadow read');
  assert.equal(secret.ret, one(truth, 'open-secret').res);
  assert.equal(secret.secret, true, 'a secret read through io_uring is flagged as one');

  // Links: by the link writer the hooks tail-call (iou_write_link), with both paths, as linkat and symlinkat report them.
  const hard = pick(files, (e) => e.type === 'link' && e.ret === 0, 'linkat');
  assert.deepEqual([hard.path, hard.path2, hard.ret, hard.dfd, hard.dfd2, hard.resultUnknown], [created.path, one(truth, 'link').path, one(truth, 'link').res, -100, -100, false]);
  const exists = pick(files, (e) => e.type === 'link' && e.ret !== 0, 'the failing linkat');
  assert.deepEqual([exists.ret, exists.errno, exists.path2], [one(truth, 'link-exists').res, 'EEXIST', one(truth, 'link-exists').path]);
  // A symlink's target is kept as given, relative to the link's directory, never resolved against a fd.
  const sym = pick(files, (e) => e.type === 'symlink' && e.path === 'iou-created', 'symlinkat');
  assert.deepEqual([sym.path2, sym.ret, sym.dfd, sym.dfd2, sym.resolvedPath], [one(truth, 'symlink').path, one(truth, 'symlink').res, -1, -100, undefined]);
  // Reported at submission (no completion on success), by the link writer too: both paths, no result.
  const symSkip = pick(files, (e) => e.type === 'symlink' && e.path === '/etc/shadow', 'the symlinkat with IOSQE_CQE_SKIP_SUCCESS');
  assert.deepEqual([symSkip.path2, symSkip.ret, symSkip.resultUnknown], [one(truth, 'symlink-skip').path, 0, true]);

  // ftruncate: no path; resolved through the request's own file, also when its "fd" is a fixed file's slot.
  const tr = pick(files, (e) => e.type === 'truncate' && e.length === 4096, 'the ftruncate');
  assert.deepEqual([tr.path, tr.resolvedPath, tr.resolvedFrom, tr.ret, tr.dfd > 0], ['', path.join(real, 'iou-trunc'), 'fd', one(truth, 'ftruncate').res, true]);
  const trFixed = pick(files, (e) => e.type === 'truncate' && e.length === 512, 'the ftruncate of a fixed file');
  assert.deepEqual([trFixed.resolvedPath, trFixed.ret, trFixed.dfd], [path.join(real, 'iou-direct'), one(truth, 'ftruncate-fixed').res, -1]);

  const mk = pick(files, (e) => e.type === 'mkdir', 'mkdirat');
  assert.deepEqual([mk.path, mk.ret, mk.modeOctal], [one(truth, 'mkdir').path, 0, '0750']);
  const ren = pick(files, (e) => e.type === 'rename', 'renameat');
  assert.deepEqual([ren.path, ren.path2, ren.ret, ren.dfd, ren.dfd2], [created.path, one(truth, 'rename').path, 0, -100, -100]);
  const un = pick(files, (e) => e.type === 'unlink', 'unlinkat');
  assert.deepEqual([un.path, un.ret], [one(truth, 'unlink').path, 0]);
  const rm = pick(files, (e) => e.type === 'rmdir', 'unlinkat(AT_REMOVEDIR)');
  assert.deepEqual([rm.path, rm.ret], [one(truth, 'rmdir').path, 0]);

  // A direct descriptor: the result is 0, no fd of the table, so nothing is resolved through one.
  const direct = pick(files, (e) => e.path === one(truth, 'open-direct').path, 'the open into a fixed file slot');
  assert.deepEqual([direct.ret, direct.resultUnknown, direct.resolvedPath], [0, false, undefined]);
  // No completion on success: reported at submission, without a result.
  const skip = pick(files, (e) => e.path === one(truth, 'open-skip').path, 'the open with IOSQE_CQE_SKIP_SUCCESS');
  assert.deepEqual([skip.ret, skip.resultUnknown, skip.write], [0, true, true]);
  // Two in flight with one user_data: both reported, neither given the other's result.
  for (const n of ['iou-same-1', 'iou-same-2']) {
    const e = pick(files, (x) => x.path === path.join(dir, n), n);
    assert.deepEqual([e.ret, e.resultUnknown], [0, true], n);
  }
  // Completions the CQ had no room for (4 entries, 12 opens unreaped; the workload saw the overflow flag): the
  // kernel traces those on its overflow list (iou_overflow), and each is reported with its own result all the same.
  const overflowed = truth.filter((x) => x.s === 'open-overflow');
  assert.equal(overflowed.length, 12);
  for (const o of overflowed as (Truth & { path: string; res: number })[]) {
    const e = pick(files, (x) => x.path === o.path, o.path);
    assert.deepEqual([e.type, e.ret, e.resultUnknown, e.write], ['open', o.res, false, true], o.path);
    assert.ok(o.res >= 0, `${o.path}: opened`);
  }
  // SQPOLL: submitted by the kernel's submission thread of the process, with no io_uring_enter for it.
  const sq = pick(files, (e) => e.type === 'open' && e.path === one(truth, 'open-sqpoll').path && e.tid !== pid, 'the SQPOLL open');
  assert.equal(sq.ret, one(truth, 'open-sqpoll').res);
  assert.equal(sq.write, true);

  const c = one(truth, 'connect');
  const net = log.net([pid]) as NetEvent[];
  for (const e of net) assert.deepEqual([e.syscall, e.ioUring], ['io_uring', true], `${e.type}: made through io_uring`);
  const conn = pick(net, (e) => e.type === 'connect', 'the connect');
  assert.deepEqual(
    [conn.syscall, conn.ioUring, conn.ret, conn.fd, conn.family, conn.remoteAddress, conn.remotePort, conn.protocol],
    ['io_uring', true, c.res, c.fd, 'AF_INET', '127.0.0.1', port, 'tcp'],
  );
  assert.ok(conn.localPort! > 0, 'the connected socket\'s own port, from the request\'s file');

  // A listener made through io_uring alone: bind, listen, and its accepts, one of them multishot.
  const b = one(truth, 'bind');
  const bind = pick(net, (e) => e.type === 'bind', 'the bind');
  assert.deepEqual([bind.ret, bind.fd, bind.family, bind.localAddress, bind.localPort], [b.res, b.fd, 'AF_INET', '127.0.0.1', b.port]);
  const lis = pick(net, (e) => e.type === 'listen', 'the listen');
  assert.deepEqual([lis.ret, lis.fd, lis.backlog, lis.localPort], [one(truth, 'listen').res, b.fd, 8, b.port]);
  const accepts = net.filter((e) => e.type === 'accept');
  // In order: the accept, the multishot accept's two connections, and its last completion once cancelled.
  const accepted = [one(truth, 'accept'), ...truth.filter((x) => x.s === 'accept-multi')];
  assert.equal(accepts.length, 4);
  accepted.forEach((a, i) => {
    const e = accepts[i]!;
    // The accepted socket, the result's: its local port is the listener's, its peer the connecting child.
    assert.deepEqual([e.ret, e.fd, e.localPort, e.remoteAddress, e.resultUnknown], [a.res, b.fd, b.port, '127.0.0.1', false], `accept ${i}`);
    assert.ok(e.remotePort! > 0 && e.remotePort !== b.port, `accept ${i}: the peer's port`);
  });
  assert.equal(accepts[0]!.flagNames, 'SOCK_CLOEXEC');
  // The multishot accept's last completion: its error, and the request freed with it (the table is empty below).
  const end = accepts[3]!;
  assert.deepEqual([end.ret, end.errno], [one(truth, 'accept-multi-end').res, 'ECANCELED']);

  const f = sensor.stats().filters!;
  assert.ok(f.ioUring >= 25, `io_uring requests counted: ${f.ioUring}`);
  assert.equal(f.ioUringNoResult, 4, 'the two skipped completions and the two of the shared user_data');
  assert.equal(f.ioUringTableFull, 0);
  assert.equal(savedRequests(sensor), 0, 'every saved request was reported and freed');
  assert.equal([...sensor.manager!.getMap('iou_pending').keys()].length, numPossibleCpus(), 'the CPUs\' slots stay');

  sensor.stop();
  await assertGone({ progs: progIds });
});

test('syscall sensor: on the quiet defaults, io_uring requests pass the same in-kernel filters as system calls', async (t) => {
  if (!privileged(t, NEEDS) || !ioUringTracepoints(t)) return;
  const { dir, bin, port } = await setup(t);
  const log = new EventLog();
  // Restricted: sensitive modifications and secret reads only, as the agent's defaults.
  const sensor = new SyscallSensor({ files: { sensitiveWrites: true, secretReads: true }, filters: { sensitivePaths: [`${dir}/`] } }, { onEvent: log.push });
  t.after(() => sensor.stop());
  sensor.start();
  const before = sensor.stats().filters!.notSensitive;
  const truth = await runWorkload(t, bin, [dir, String(port)]);
  const pid = one(truth, 'done').pid;
  await log.until(() => log.files([pid]).some((e) => e.type === 'rmdir'), 'the rmdir');
  await log.until(() => log.files([pid]).some((e) => e.tid !== pid), 'the SQPOLL open');
  const files = log.files([pid]);
  // Reported: the modifications under the sensitive prefix and the secret read, each flagged.
  for (const e of files) assert.ok(e.sensitive || e.secret, `${e.type} ${e.path} is a sensitive modification or a secret read`);
  assert.ok(files.some((e) => e.type === 'open' && e.write && e.sensitive && e.ret >= 0 && e.path.endsWith('/iou-created')));
  assert.ok(files.some((e) => e.type === 'rename' && e.sensitive));
  assert.ok(files.some((e) => e.type === 'unlink' && e.sensitive));
  assert.ok(files.some((e) => e.type === 'mkdir' && e.sensitive));
  assert.ok(files.some((e) => e.type === 'link' && e.sensitive && e.ret === 0));
  assert.ok(files.some((e) => e.type === 'truncate' && e.sensitive && e.length === 4096), 'the ftruncate, by the path of the request\'s file');
  assert.ok(files.some((e) => e.type === 'symlink' && e.sensitive && e.path === 'iou-created'));
  assert.ok(files.some((e) => e.path === '/etc/shadow' && e.secret && e.ioUring));
  // Turned down in the kernel and counted: the read-only opens of ordinary files (openat2, the missing path).
  assert.ok(!files.some((e) => e.resolve !== undefined || e.path.startsWith('/nonexistent/')), 'ordinary reads are not reported');
  assert.ok(sensor.stats().filters!.notSensitive - before >= 2);
  // Network events are off: the connect passes no filter and leaves nothing in the table.
  assert.equal(log.net([pid]).length, 0);
  assert.equal(savedRequests(sensor), 0);
});

test('syscall sensor: a comm list sees the process\'s name for a request the SQPOLL thread submits', async (t) => {
  if (!privileged(t, NEEDS) || !ioUringTracepoints(t)) return;
  const { dir, bin, port } = await setup(t);
  const log = new EventLog();
  // The kernel's submission thread is named iou-sqp-<pid>: matched by its process's name, as process.comm is.
  const sensor = new SyscallSensor({ files: { open: true }, filters: { comm: { include: [path.basename(bin)] } } }, { onEvent: log.push });
  t.after(() => sensor.stop());
  sensor.start();
  const truth = await runWorkload(t, bin, [dir, String(port)]);
  const pid = one(truth, 'done').pid;
  const sqpoll = one(truth, 'open-sqpoll');
  await log.until(() => log.files([pid]).some((e) => e.path === sqpoll.path && e.tid !== pid), 'the SQPOLL open');
  const sq = pick(log.files([pid]), (e) => e.path === sqpoll.path && e.tid !== pid, 'the SQPOLL open');
  assert.deepEqual([sq.syscall, sq.ret], ['io_uring', sqpoll.res]);
  // The workload's own submissions pass as before; nothing of another name does.
  assert.ok(log.files([pid]).some((e) => e.path === one(truth, 'open').path && e.tid === pid));
  const before = sensor.stats().filters!.comm;
  execFileSync('cat', [path.join(dir, 'iou-created')]);
  assert.ok(sensor.stats().filters!.comm > before, 'another name\'s opens are turned down by the list');
});
