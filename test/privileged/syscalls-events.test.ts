// Privileged: the syscall sensor against a scripted workload (test/fixtures/syscalls-workload.c). The
// workload makes each syscall itself and prints the truth (pids, fds, ports, return values); every event
// vigil reports is checked against it: arguments, return value, errno name, resolved paths, addresses, pid.
// Needs root + BPF with BTF + syscall tracepoints + gcc.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { FileEvent, NetEvent, SysEvent } from '../../src/events/types.ts';
import { VIGIL_SYS_FLAGS } from '../../src/events/layout.generated.ts';
import { SyscallSensor } from '../../src/syscalls/sensor.ts';
import { feature } from '../../src/bpf/features.ts';
import { buildWorkload, EventLog, runWorkload, type Truth } from '../fixtures/syscalls-harness.ts';
import { assertGone, privileged, skipForKernel, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF + syscall tracepoints + gcc';
const TRACEFS = '/sys/kernel/tracing/events';

/** A temp dir (gone when the test ends) with a sensitive subdirectory, and the workload built in it. */
function workloadDir(t: TestContext): { dir: string; sens: string; bin: string } {
  const dir = tempDir(t, 'vigil-sc-');
  const sens = path.join(dir, 'sens');
  fs.mkdirSync(sens);
  return { dir, sens, bin: buildWorkload(dir) };
}

function pick<T>(list: T[], pred: (x: T) => boolean, what: string): T {
  const hit = list.find(pred);
  assert.ok(hit, `no event for ${what}`);
  return hit;
}

test('syscall sensor: each event of a scripted workload carries its arguments, return value and process', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const { dir, sens, bin } = workloadDir(t);
  const real = fs.realpathSync(dir);
  const log = new EventLog();
  const sensor = new SyscallSensor(
    { files: true, network: true, other: true, filters: { comm: { include: [path.basename(bin)] }, sensitivePaths: [`${sens}/`] } },
    { onEvent: log.push },
  );
  t.after(() => sensor.stop());
  sensor.start();
  assert.equal(sensor.stats().pendingStore, 'task', 'this kernel lets tracepoint programs use task storage');
  assert.equal(sensor.stats().openArgs, 'exit', 'this kernel has bpf_task_pt_regs: opens take their arguments at exit');
  const running = new Set(sensor.manager!.probes().filter((p) => p.state === 'running').map((p) => p.id.fn));
  assert.ok(running.has('exit_openat') && !running.has('enter_openat') && running.has('enter_unlinkat'), 'opens have no entry hook; other syscalls keep theirs');
  const progIds = sensor.manager!.probes().filter((p) => p.state === 'running').map((p) => p.program!.id);

  // The agent's own syscalls are dropped in the kernel and counted.
  const before = sensor.filters!.counters();
  fs.closeSync(fs.openSync(path.join(dir, 'self-open'), 'w'));

  const truth = await runWorkload(t, bin, [dir, 'files', sens, 'net', 'other']);
  const one = (s: string): Truth => {
    const x = truth.find((y) => y.s === s);
    assert.ok(x, `the workload did not report ${s}`);
    return x;
  };
  const pid = one('done').pid;
  const ns = one('ns');
  await log.until(() => log.sys([ns.pid]).some((e) => e.type === 'setns'), 'the workload\'s last syscall event');

  // ---- files ----
  const files = log.files([pid]);
  for (const e of files) {
    assert.equal(e.pid, pid);
    assert.equal(e.tid, pid);
  }
  const created = String(one('open_create').path);
  const oc = pick(files, (e) => e.type === 'open' && e.path === created && e.write, 'open O_CREAT|O_WRONLY');
  assert.equal(oc.syscall, 'openat');
  assert.equal(oc.ret, one('open_create').fd);
  assert.equal(oc.errno, undefined);
  assert.equal(oc.flagNames, 'O_WRONLY|O_CREAT');
  assert.equal(oc.modeOctal, '0640');
  assert.equal(oc.dfd, -100);
  assert.equal(oc.resolvedPath, path.join(real, 'created'));
  assert.equal(oc.resolvedFrom, 'fd');
  assert.equal(oc.sensitive, false);

  const or = pick(files, (e) => e.type === 'open' && e.path === created && !e.write, 'open O_RDONLY');
  assert.equal(or.flagNames, 'O_RDONLY');
  assert.equal(or.ret, one('open_read').fd);
  assert.equal(or.mode, undefined);

  const enoent = pick(files, (e) => e.type === 'open' && e.path === one('open_enoent').path, 'open of a missing file');
  assert.equal(enoent.ret, -2);
  assert.equal(enoent.errno, 'ENOENT');
  assert.equal(enoent.resolvedPath, undefined, 'an absolute path that failed needs no resolving');

  const rel = pick(files, (e) => e.type === 'open' && e.path === 'rel.txt', 'open relative to a directory fd');
  assert.equal(rel.dfd, one('open_dirfd').dfd);
  assert.equal(rel.ret, one('open_dirfd').fd);
  assert.equal(rel.flagNames, 'O_RDWR|O_CREAT|O_TRUNC');
  assert.equal(rel.resolvedPath, path.join(real, 'rel.txt'));

  const mkRel = pick(files, (e) => e.type === 'mkdir' && e.path === 'sub', 'mkdir relative to the cwd');
  assert.equal(mkRel.syscall, 'mkdirat');
  assert.equal(mkRel.ret, 0);
  assert.equal(mkRel.modeOctal, '0750');
  assert.equal(mkRel.resolvedPath, path.join(real, 'sub'));
  assert.equal(mkRel.resolvedFrom, 'cwd');

  const o2 = pick(files, (e) => e.syscall === 'openat2', 'openat2');
  assert.equal(o2.path, path.join(dir, 'o2'));
  assert.equal(o2.ret, one('openat2').fd);
  assert.equal(o2.flagNames, 'O_WRONLY|O_CREAT');
  assert.equal(o2.modeOctal, '0600');
  assert.equal(o2.resolve, 'RESOLVE_NO_SYMLINKS');

  const nr = pick(files, (e) => e.type === 'open' && e.path === '' && e.ret < 0, 'open of a path in a page not yet resident');
  assert.equal(nr.pathReadAtExit, false, 'read at exit as a rule (the kernel faulted the page in): not flagged as a retry');
  assert.equal(nr.errno, 'ENOENT');

  const fchmod = pick(files, (e) => e.syscall === 'fchmod', 'fchmod');
  assert.equal(fchmod.type, 'chmod');
  assert.equal(fchmod.dfd, one('fchmod').fd);
  assert.equal(fchmod.path, '');
  assert.equal(fchmod.resolvedPath, path.join(real, 'created'), 'fchmod resolves its fd');
  assert.equal(fchmod.modeOctal, '0644');
  assert.equal(fchmod.ret, 0);
  const chmod = pick(files, (e) => e.syscall === 'fchmodat', 'fchmodat');
  assert.deepEqual([chmod.path, chmod.modeOctal, chmod.ret], [created, '0600', 0]);
  const chown = pick(files, (e) => e.type === 'chown', 'fchownat');
  assert.deepEqual([chown.syscall, chown.path, chown.uid, chown.gid, chown.ret], ['fchownat', created, 65534, 65533, 0]);
  const ren = pick(files, (e) => e.type === 'rename', 'renameat2');
  assert.deepEqual([ren.syscall, ren.path, ren.path2, ren.flagNames, ren.ret], ['renameat2', path.join(dir, 'rel.txt'), path.join(dir, 'renamed.txt'), 'RENAME_NOREPLACE', 0]);
  const mk = pick(files, (e) => e.type === 'mkdir' && e.path === path.join(dir, 'newdir'), 'mkdirat');
  assert.deepEqual([mk.modeOctal, mk.ret], ['0700', 0]);
  const rm = pick(files, (e) => e.type === 'rmdir', 'unlinkat(AT_REMOVEDIR)');
  assert.deepEqual([rm.syscall, rm.path, rm.flagNames, rm.ret], ['unlinkat', path.join(dir, 'newdir'), 'AT_REMOVEDIR', 0]);
  const unl = files.filter((e) => e.type === 'unlink' && e.path === created);
  assert.deepEqual(unl.map((e) => [e.ret, e.errno]), [[0, undefined], [-2, 'ENOENT']], 'the unlink, then the failing second one');

  const sw = pick(files, (e) => e.type === 'open' && e.path === one('sensitive_write').path && e.write, 'write-open under a sensitive prefix');
  assert.equal(sw.sensitive, true);
  assert.equal(sw.flagNames, 'O_WRONLY|O_CREAT|O_APPEND');
  const sr = pick(files, (e) => e.type === 'open' && e.path === one('sensitive_write').path && !e.write, 'read-open under a sensitive prefix');
  assert.equal(sr.sensitive, false, 'reading is not a modification');
  assert.equal(sr.resolvedPath, undefined, 'a read-only open of an absolute path is not walked by default');
  const link = pick(files, (e) => e.type === 'open' && e.path === one('sensitive_symlink').path, 'write-open through a symlink');
  assert.equal(link.resolvedPath, path.join(fs.realpathSync(sens), 'shadow'), 'the file actually opened');
  assert.equal(link.sensitive, true, 'a symlink does not hide a sensitive write');

  // Links: path is the existing file (link) or the target as given (symlink), path2 the link made.
  const hard = pick(files, (e) => e.type === 'link' && e.path2 === 'hard.txt', 'linkat');
  assert.deepEqual(
    [hard.syscall, hard.path, hard.dfd, hard.dfd2, hard.resolvedPath, hard.resolvedPath2, hard.ret, hard.sensitive],
    ['linkat', path.join(dir, 'renamed.txt'), -100, one('linkat').dfd, undefined, path.join(real, 'hard.txt'), 0, false],
  );
  const soft = pick(files, (e) => e.type === 'symlink' && e.path2 === 'soft.txt', 'symlinkat');
  assert.deepEqual(
    [soft.syscall, soft.path, soft.dfd, soft.dfd2, soft.resolvedPath, soft.resolvedPath2, soft.ret],
    ['symlinkat', 'renamed.txt', -1, one('symlinkat').dfd, undefined, path.join(real, 'soft.txt'), 0],
    'a symlink\'s relative target is left as given: it is relative to the link, not to the cwd',
  );
  const exists = pick(files, (e) => e.type === 'link' && e.syscall === 'link', 'link onto an existing name');
  assert.deepEqual([exists.path, exists.path2, exists.ret, exists.errno], [path.join(dir, 'renamed.txt'), path.join(dir, 'hard.txt'), -17, 'EEXIST']);
  const hardSens = pick(files, (e) => e.type === 'link' && e.path === one('link_sensitive').path, 'hard link of a sensitive file');
  assert.deepEqual([hardSens.ret, hardSens.sensitive], [0, true], 'a hard link of a file under a sensitive prefix is sensitive');
  const toSens = pick(files, (e) => e.type === 'symlink' && e.path === sens, 'symlink to the sensitive directory');
  assert.equal(toSens.sensitive, true, 'a symlink to the sensitive directory, named without its slash, is sensitive');
  assert.equal(toSens.path2Sensitive, false, 'made outside it');
  assert.equal(hardSens.path2Sensitive, false, 'made outside it');
  const planted = pick(files, (e) => e.type === 'symlink' && e.path2 === one('symlink_in_sensitive').path, 'symlink made in the sensitive directory');
  assert.deepEqual([planted.path, planted.ret, planted.sensitive, planted.path2Sensitive], ['/tmp/vigil-payload', 0, true, true], 'its new name is under the prefix');

  // ---- network ----
  const net = log.net([pid]);
  for (const [fam, addr] of [[2, '127.0.0.1'], [10, '::1']] as const) {
    const tr = truth.find((x) => x.s === 'tcp' && x.family === fam);
    if (!tr) {
      assert.equal(fam, 10);
      assert.ok(truth.some((x) => x.s === 'no_ipv6'));
      continue;
    }
    const family = fam === 2 ? 'AF_INET' : 'AF_INET6';
    const bind = pick(net, (e) => e.type === 'bind' && e.family === family, `${family} bind`);
    assert.deepEqual([bind.fd, bind.ret, bind.localAddress, bind.localPort, bind.sockType, bind.protocol], [tr.lfd, 0, addr, tr.port, 'SOCK_STREAM', 'tcp']);
    const listen = pick(net, (e) => e.type === 'listen' && e.family === family, `${family} listen`);
    assert.deepEqual([listen.fd, listen.ret, listen.backlog, listen.localAddress, listen.localPort], [tr.lfd, 0, 7, addr, tr.port]);
    const conn = pick(net, (e) => e.type === 'connect' && e.family === family && e.ret === 0, `${family} connect`);
    assert.deepEqual([conn.fd, conn.remoteAddress, conn.remotePort, conn.localAddress, conn.localPort], [tr.cfd, addr, tr.port, addr, tr.cport]);
    const acc = pick(net, (e) => e.type === 'accept' && e.family === family, `${family} accept`);
    assert.deepEqual([acc.syscall, acc.fd, acc.ret, acc.localPort, acc.remoteAddress, acc.remotePort, acc.flagNames], ['accept4', tr.lfd, tr.afd, tr.port, addr, tr.cport, 'SOCK_CLOEXEC']);
    // TCP state changes made in the workload's own context carry its pid.
    const states = log.net([pid]).filter((e) => e.type === 'tcp_state' && e.family === family);
    assert.ok(states.some((e) => e.newState === 'LISTEN' && e.localPort === tr.port), `${family} CLOSE -> LISTEN`);
    assert.ok(states.some((e) => e.oldState === 'CLOSE' && e.newState === 'SYN_SENT' && e.remotePort === tr.port && e.remoteAddress === addr), `${family} CLOSE -> SYN_SENT`);
  }
  const refused = pick(net, (e) => e.type === 'connect' && e.ret < 0, 'refused connect');
  assert.deepEqual([refused.fd, refused.ret, refused.errno, refused.remoteAddress, refused.remotePort], [one('tcp_refused').fd, -111, 'ECONNREFUSED', '127.0.0.1', 1]);

  for (const [s, name] of [['unix', String(one('unix').name)], ['unix_abstract', `@${String(one('unix_abstract').name)}`]] as const) {
    const tr = one(s);
    const un = net.filter((e) => e.family === 'AF_UNIX' && (e.localAddress === name || e.remoteAddress === name));
    const by = (type: string) => pick(un, (e) => e.type === type, `${s} ${type}`);
    assert.deepEqual([by('bind').fd, by('bind').ret, by('bind').localAddress], [tr.lfd, 0, name]);
    assert.deepEqual([by('listen').fd, by('listen').localAddress], [tr.lfd, name]);
    assert.deepEqual([by('connect').fd, by('connect').ret, by('connect').remoteAddress, by('connect').sockType], [tr.cfd, 0, name, 'SOCK_STREAM']);
    assert.deepEqual([by('accept').fd, by('accept').ret, by('accept').localAddress], [tr.lfd, tr.afd, name]);
  }

  // ---- other ----
  const sys = log.sys([pid]);
  const seize = pick(sys, (e) => e.type === 'ptrace' && e.request === 'PTRACE_SEIZE', 'ptrace seize');
  assert.deepEqual([seize.targetPid, seize.ret, seize.syscall], [one('ptrace_seize').child, 0, 'ptrace']);
  const detach = pick(sys, (e) => e.type === 'ptrace' && e.request === 'PTRACE_DETACH', 'ptrace detach');
  assert.deepEqual([detach.targetPid, detach.ret], [one('ptrace_detach').child, 0]);
  const memfd = pick(sys, (e) => e.type === 'memfd_create', 'memfd_create');
  assert.deepEqual([memfd.name, memfd.flagNames, memfd.ret], ['vigil-memfd', 'MFD_CLOEXEC', one('memfd').fd]);
  const bpf = pick(sys, (e) => e.type === 'bpf', 'bpf()');
  assert.deepEqual([bpf.bpfCmd, bpf.bpfType, bpf.bpfName, bpf.ret], ['BPF_MAP_CREATE', 'array', 'vigil_wl_map', one('bpf_map_create').fd]);

  const nsEv = log.sys([ns.pid]);
  const unshare = pick(nsEv, (e) => e.type === 'unshare', 'unshare');
  assert.deepEqual([unshare.flagNames, unshare.ret], ['CLONE_NEWNS', 0]);
  const priv = pick(nsEv, (e) => e.type === 'mount' && e.target === '/', 'mount --make-rprivate /');
  assert.deepEqual([priv.flagNames, priv.ret], ['MS_REC|MS_PRIVATE', 0]);
  const mount = pick(nsEv, (e) => e.type === 'mount' && e.target === ns.target, 'tmpfs mount');
  assert.deepEqual([mount.source, mount.fstype, mount.flagNames, mount.ret], ['vigil-tmpfs', 'tmpfs', 'MS_NOSUID|MS_NODEV', 0]);
  const umount = pick(nsEv, (e) => e.type === 'umount', 'umount2');
  assert.deepEqual([umount.syscall, umount.target, umount.flagNames, umount.ret], ['umount2', ns.target, 'MNT_DETACH', 0]);
  const setns = pick(nsEv, (e) => e.type === 'setns', 'setns');
  assert.deepEqual([setns.fd, setns.nsType, setns.ret, setns.nsInode], [ns.nsfd, 'CLONE_NEWNS', 0, fs.statSync('/proc/self/ns/mnt').ino]);

  // ---- nothing lost, nothing misread, the agent itself never reported ----
  const st = sensor.stats();
  assert.equal(st.decodeErrors, 0);
  assert.equal(st.manager!.kernel!.reserveFailed, 0);
  assert.equal(st.filters!.noPending, 0);
  assert.ok(st.filters!.self > before.self, 'the agent\'s own open was dropped as self');
  assert.ok(!log.events.some((e) => e.pid === process.pid), 'no event from the agent');

  await t.test('module load', (st2) => {
    if (!fs.existsSync(`${TRACEFS}/syscalls/sys_enter_finit_module`)) {
      const p = sensor.manager!.getProbe('enter_finit_module');
      assert.equal(p.state, 'failed', 'the probe reports the missing tracepoint');
      assert.match(p.lastError!.message, /no such tracepoint/);
      assert.equal(one('finit_module').errno, 38, 'finit_module is ENOSYS: this kernel has no module support');
      st2.skip('this kernel has no module support (CONFIG_MODULES off: no syscalls/sys_enter_finit_module tracepoint)');
      return;
    }
    const ev = pick(log.sys([pid]), (e) => e.type === 'module_load', 'finit_module');
    assert.deepEqual([ev.syscall, ev.moduleParams, ev.ret], ['finit_module', 'vigil_param=1', -Number(one('finit_module').errno)]);
  });

  sensor.stop();
  await assertGone({ progs: progIds });
});

test('syscall sensor: the tid-hash fallback pairs entries and exits like task storage', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const { dir, sens, bin } = workloadDir(t);
  const log = new EventLog();
  // openArgs "entry": opens pair through the hash too.
  const sensor = new SyscallSensor({ files: true, network: { connect: true }, filters: { comm: { include: [path.basename(bin)] }, sensitivePaths: [`${sens}/`] }, openArgs: 'entry' }, { onEvent: log.push, pendingStore: 'hash' });
  t.after(() => sensor.stop());
  sensor.start();
  assert.equal(sensor.stats().pendingStore, 'hash');
  const truth = await runWorkload(t, bin, [dir, 'files', sens, 'net']);
  const pid = truth.find((x) => x.s === 'done')!.pid;
  await log.until(() => log.net([pid]).some((e) => e.type === 'connect' && e.family === 'AF_UNIX'), 'the unix connects');
  const files = log.files([pid]);
  const ren = pick(files, (e) => e.type === 'rename', 'rename');
  assert.deepEqual([ren.path, ren.path2, ren.ret], [path.join(dir, 'rel.txt'), path.join(dir, 'renamed.txt'), 0]);
  assert.ok(files.some((e) => e.type === 'open' && e.pathReadAtExit && e.path === ''), 'the retry at exit works from the hash too');
  assert.ok(files.some((e) => e.sensitive), 'the sensitive write-open');
  const refused = pick(log.net([pid]), (e) => e.type === 'connect' && e.ret < 0, 'refused connect');
  assert.equal(refused.errno, 'ECONNREFUSED');
  assert.equal(sensor.stats().filters!.noPending, 0);
  // Each exit freed its slot: only threads inside a watched syscall right now may hold one.
  assert.ok([...sensor.manager!.getMap('sys_pending_hash').keys()].length <= 4, 'slots are freed at exit');
});

test('syscall sensor: file syscalls report the same events with the opens\' arguments read at exit or saved at entry, from task storage or the tid hash', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const { dir, sens, bin } = workloadDir(t);
  const MAX = 12; // a second pair of sensors reads at most 11 bytes of a path
  const make = (openArgs: 'exit' | 'entry', maxPathBytes?: number, files: true | { open: true } = { open: true }, pendingStore?: 'hash') => {
    const log = new EventLog();
    const sensor = new SyscallSensor({ files, filters: { comm: { include: [path.basename(bin)] }, sensitivePaths: [`${sens}/`] }, openArgs, maxPathBytes }, { onEvent: log.push, pendingStore });
    t.after(() => sensor.stop());
    sensor.start();
    assert.equal(sensor.stats().openArgs, openArgs);
    return { log, sensor };
  };
  // Both modes side by side on the same workload: every file event is reported by both, field for field. At
  // exit, the other file syscalls' exit (exit_file) copies its request into the CPU's scratch slot and hands it
  // to the opens' writer, from task storage or from the tid hash; at entry, it writes the record itself.
  const atExit = make('exit', undefined, true);
  const atEntry = make('entry', undefined, true);
  const atExitHash = make('exit', undefined, true, 'hash');
  const cutExit = make('exit', MAX);
  const cutEntry = make('entry', MAX);
  // The syscalls' programs (io_uring's too, which report opens that make no syscall: syscalls-iouring.test.ts).
  const fns = (x: { sensor: SyscallSensor }) => x.sensor.manager!.probes().filter((p) => p.state === 'running' && !p.id.fn.startsWith('iou_')).map((p) => p.id.fn).sort();
  assert.deepEqual(fns(cutExit), ['exit_creat', 'exit_open_legacy', 'exit_openat', 'exit_openat2']);
  assert.deepEqual(fns(cutEntry), ['enter_creat', 'enter_open_legacy', 'enter_openat', 'enter_openat2', 'exit_file', 'exit_file', 'exit_file', 'exit_file']);
  const truth = await runWorkload(t, bin, [dir, 'files', sens]);
  const pid = truth.find((x) => x.s === 'done')!.pid;
  const expected = truth.filter((x) => x.s.startsWith('open') || x.s.startsWith('sensitive')).length;
  // The workload has exited: every record it caused is in the rings. Take them all before comparing.
  for (const x of [atExit, atEntry, atExitHash, cutExit, cutEntry]) while (x.sensor.manager!.eventReader!.drain() > 0);
  // What an event reports, without the time and the retry flag (which only entry mode can set).
  const view = (e: FileEvent) => JSON.stringify({ ...e, ktimeNs: undefined, pathReadAtExit: undefined, evFlags: e.evFlags & ~VIGIL_SYS_FLAGS.PATH_AT_EXIT });
  const opens = (x: { log: EventLog }) => x.log.files([pid]).map(view).sort();
  assert.deepEqual(opens(atExit), opens(atEntry));
  assert.deepEqual(opens(atExitHash), opens(atExit));
  const types = new Set(atExit.log.files([pid]).map((e) => e.type));
  for (const type of ['open', 'unlink', 'rmdir', 'rename', 'chmod', 'chown', 'mkdir', 'link', 'symlink']) assert.ok(types.has(type as FileEvent['type']), `the workload's ${type}`);
  assert.ok(atExit.log.files([pid]).filter((e) => e.type === 'open').length >= expected, `all ${expected} opens of the workload`);
  for (const x of [atExit, atEntry, atExitHash]) assert.equal(x.sensor.stats().filters!.noPending, 0);
  const notResident = (x: { log: EventLog }) => x.log.files([pid]).find((e) => e.type === 'open' && e.path === '' && e.ret < 0);
  assert.equal(notResident(atEntry)?.pathReadAtExit, true, 'entry mode retries an unreadable path at exit, and says so');
  assert.equal(notResident(atExit)?.pathReadAtExit, false);
  // Truncation is flagged the same way in both modes, and the path is cut to MAX - 1 bytes.
  const long = truth.find((x) => x.s === 'open_create')!.path as string;
  for (const x of [cutExit, cutEntry]) {
    const e = pick(x.log.files([pid]), (f) => f.type === 'open' && f.write && f.resolvedPath === path.join(fs.realpathSync(dir), 'created'), 'the O_CREAT open, cut');
    assert.equal(e.path, long.slice(0, MAX - 1));
    assert.equal(e.pathTruncated, true);
  }
  assert.deepEqual(cutExit.log.files([pid]).map(view).sort(), cutEntry.log.files([pid]).map(view).sort());
});

test('syscall sensor: the path walk resolves the same paths with plain loads as with a helper call per field', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const { dir, sens, bin } = workloadDir(t);
  // resolvePaths "all": every open is walked, absolute read-only ones too (/proc/self/ns/mnt crosses a mount).
  const make = (pathReads: 'direct' | 'helper') => {
    const log = new EventLog();
    const sensor = new SyscallSensor({ files: true, other: true, filters: { comm: { include: [path.basename(bin), 'cat'] }, sensitivePaths: [`${sens}/`], resolvePaths: 'all' } }, { onEvent: log.push, pathReads });
    t.after(() => sensor.stop());
    sensor.start();
    assert.equal(sensor.stats().pathReads, pathReads);
    // The fd table's slot (every open here is resolved through its fd) with a plain load where the kernel
    // allows it (bpf_rdonly_cast to untyped memory), which the comparison below then covers.
    assert.equal(sensor.stats().fdReads, pathReads === 'direct' && feature('rdonly_cast_mem').supported ? 'direct' : 'helper');
    return { log, sensor };
  };
  let direct: ReturnType<typeof make>;
  try {
    direct = make('direct');
  } catch (err) {
    return skipForKernel(t, err, 'rdonly_cast');
  }
  const helper = make('helper');
  const truth = await runWorkload(t, bin, [dir, 'files', sens, 'other']);
  // Walks that cross mounts: devtmpfs and procfs mounted on the root file system.
  const cat = spawnSync('cat', ['/dev/null', '/proc/version'], { cwd: '/dev' });
  assert.equal(cat.status, 0);
  const pids = [truth.find((x) => x.s === 'done')!.pid, truth.find((x) => x.s === 'ns')!.pid, cat.pid];
  for (const x of [direct, helper]) while (x.sensor.manager!.eventReader!.drain() > 0);
  const view = (e: FileEvent) => JSON.stringify({ ...e, ktimeNs: undefined });
  const files = (x: { log: EventLog }) => x.log.files(pids).map(view).sort();
  assert.deepEqual(files(direct), files(helper));
  const resolved = direct.log.files(pids).filter((e) => e.resolvedPath);
  assert.ok(resolved.length >= 10, `paths were walked (${resolved.length})`);
  const walked = (p: string) => resolved.some((e) => e.pid === cat.pid && e.resolvedPath === p);
  assert.ok(walked('/dev/null') && walked('/proc/version'), 'walks across the /dev and /proc mounts');
  assert.ok(resolved.some((e) => e.resolvedFrom === 'cwd'), 'a relative open resolved from the cwd');
});

test('syscall sensor: the perf-buffer channel carries the same variable-size records', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const { dir, sens, bin } = workloadDir(t);
  const log = new EventLog();
  const sensor = new SyscallSensor({ files: true, other: { mount: true, umount: true }, filters: { comm: { include: [path.basename(bin)] }, sensitivePaths: [`${sens}/`], resolvePaths: 'all' } }, { onEvent: log.push, channel: 'perf' });
  t.after(() => sensor.stop());
  sensor.start();
  assert.equal(sensor.manager!.channel, 'perf');
  const truth = await runWorkload(t, bin, [dir, 'files', sens, 'other']);
  const pid = truth.find((x) => x.s === 'done')!.pid;
  const ns = truth.find((x) => x.s === 'ns')!;
  await log.until(() => log.sys([ns.pid]).some((e) => e.type === 'umount'), 'the umount');
  const ren = pick(log.files([pid]), (e) => e.type === 'rename', 'rename');
  assert.deepEqual([ren.path, ren.path2], [path.join(dir, 'rel.txt'), path.join(dir, 'renamed.txt')]);
  const read = pick(log.files([pid]), (e) => e.type === 'open' && !e.write && e.path === path.join(dir, 'created'), 'read-only open');
  assert.equal(read.resolvedPath, path.join(fs.realpathSync(dir), 'created'), "resolvePaths 'all' walks read-only opens too");
  const mount = pick(log.sys([ns.pid]), (e) => e.type === 'mount' && e.fstype === 'tmpfs', 'tmpfs mount');
  assert.equal(mount.target, ns.target);
  assert.equal(sensor.stats().decodeErrors, 0);
  assert.equal(sensor.stats().manager!.kernel!.outputFailed, 0);
});
