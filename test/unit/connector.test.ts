// The proc connector source without privileges: the datagram parser fed synthetic and hostile datagrams,
// and the translation into process events fed scripted notices against a fake /proc tree (procRoot).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { NotSupportedError, PermissionError, SyscallError } from '../../src/bpf/errors.ts';
import type { CommEvent, CredsEvent, ExecEvent, ExitEvent, ForkEvent, ProcessEvent } from '../../src/events/types.ts';
import { ProcessCache } from '../../src/process/cache.ts';
import {
  CN_IDX_PROC,
  CN_VAL_PROC,
  NLMSG_DONE,
  PROC_CN_MCAST_LISTEN,
  PROC_EVENT,
  ProcConnectorSource,
  bootOffset,
  connectorError,
  mcastControlMessage,
  parseProcConnectorDatagram,
} from '../../src/process/connector.ts';
import type { SnapshotProcess } from '../../src/process/types.ts';

// ---- synthetic datagrams -----------------------------------------------------------------------------------

interface NoticeOpts {
  cpu?: number;
  seq?: number;
  ts?: number;
  /** Bytes of event_data (the kernel always sends the whole 24-byte union). */
  dataLen?: number;
  idx?: number;
  nlType?: number;
  ack?: number;
}

/** One netlink message: nlmsghdr + cn_msg + proc_event with `data` as event_data (u32 words or bytes). */
function notice(what: number, data: number[] | Buffer, o: NoticeOpts = {}): Buffer {
  const dataLen = o.dataLen ?? 24;
  const ev = Buffer.alloc(16 + dataLen);
  ev.writeUInt32LE(what >>> 0, 0);
  ev.writeUInt32LE(o.cpu ?? 0, 4);
  ev.writeBigUInt64LE(BigInt(o.ts ?? 1_000_000_000), 8);
  if (Buffer.isBuffer(data)) data.copy(ev, 16, 0, Math.min(data.length, dataLen));
  else data.forEach((w, i) => 16 + 4 * i + 4 <= ev.length && ev.writeInt32LE(w | 0, 16 + 4 * i));
  const m = Buffer.alloc(16 + 20 + ev.length);
  m.writeUInt32LE(m.length, 0);
  m.writeUInt16LE(o.nlType ?? NLMSG_DONE, 4);
  m.writeUInt32LE(o.seq ?? 0, 8);
  m.writeUInt32LE(o.idx ?? CN_IDX_PROC, 16);
  m.writeUInt32LE(CN_VAL_PROC, 20);
  m.writeUInt32LE(o.seq ?? 0, 24);
  m.writeUInt32LE(o.ack ?? 0, 28);
  m.writeUInt16LE(ev.length, 32);
  ev.copy(m, 36);
  return m;
}

const pad4 = (b: Buffer) => (b.length % 4 ? Buffer.concat([b, Buffer.alloc(4 - (b.length % 4))]) : b);
const datagram = (...msgs: Buffer[]) => Buffer.concat(msgs.map(pad4));

const fork = (ppid: number, child: number, o: NoticeOpts = {}, childTid = child) => notice(PROC_EVENT.FORK, [ppid, ppid, childTid, child], o);
const exec = (pid: number, o: NoticeOpts = {}) => notice(PROC_EVENT.EXEC, [pid, pid], o);
const exit = (tid: number, tgid: number, status: number, ppid: number, o: NoticeOpts = {}) => notice(PROC_EVENT.EXIT, [tid, tgid, status, 17, ppid, ppid], o);
const idChange = (what: 'uid' | 'gid', tid: number, tgid: number, real: number, eff: number, o: NoticeOpts = {}) =>
  notice(what === 'uid' ? PROC_EVENT.UID : PROC_EVENT.GID, [tid, tgid, real, eff], o);
function commNotice(tid: number, tgid: number, comm: string, o: NoticeOpts = {}): Buffer {
  const d = Buffer.alloc(24);
  d.writeInt32LE(tid, 0);
  d.writeInt32LE(tgid, 4);
  d.write(comm, 8, 15, 'utf8');
  return notice(PROC_EVENT.COMM, d, o);
}

// ---- the parser --------------------------------------------------------------------------------------------

test('parser: one fork notice decodes every field', () => {
  const p = parseProcConnectorDatagram(fork(100, 200, { cpu: 3, seq: 41, ts: 123_456_789_012 }));
  assert.deepEqual(p.errors, []);
  assert.deepEqual(p.messages, [{ what: 'fork', cpu: 3, seq: 41, timestampNs: 123_456_789_012, parentPid: 100, parentTgid: 100, childPid: 200, childTgid: 200 }]);
});

test('parser: several notices in one datagram, in order, including an unaligned length', () => {
  const odd = Buffer.concat([exec(7), Buffer.alloc(1)]); // nlmsg_len 77: the next header starts at 80
  odd.writeUInt32LE(odd.length, 0);
  const d = datagram(fork(1, 7), odd, idChange('uid', 7, 7, 1000, 0), idChange('gid', 8, 7, 5, 6), commNotice(7, 7, 'renamed'), exit(7, 7, 3 << 8, 1));
  const p = parseProcConnectorDatagram(d);
  assert.deepEqual(p.errors, []);
  assert.deepEqual(p.messages.map((m) => m.what), ['fork', 'exec', 'uid', 'gid', 'comm', 'exit']);
  const [, , uid, gid, comm, ex] = p.messages;
  assert.deepEqual(uid, { what: 'uid', cpu: 0, seq: 0, timestampNs: 1e9, pid: 7, tgid: 7, real: 1000, effective: 0 });
  assert.equal(gid!.what === 'gid' && gid.pid, 8);
  assert.equal(comm!.what === 'comm' && comm.comm, 'renamed');
  assert.deepEqual(ex, { what: 'exit', cpu: 0, seq: 0, timestampNs: 1e9, pid: 7, tgid: 7, exitCode: 768, exitSignal: 17, parentPid: 1, parentTgid: 1 });
});

test('parser: a datagram cut inside a notice keeps the notices before it and reports the cut', () => {
  const full = datagram(exec(1), exec(2));
  const p = parseProcConnectorDatagram(full, full.length - 10);
  assert.deepEqual(p.messages.map((m) => m.what === 'exec' && m.pid), [1]);
  assert.deepEqual(p.errors, ['bad-length']);
  // Cut inside the second header: too short for a nlmsghdr at all.
  const q = parseProcConnectorDatagram(full, 76 + 9);
  assert.deepEqual(q.errors, ['short-header']);
  assert.equal(q.messages.length, 1);
  // Zero padding at the end is alignment, not an error.
  assert.deepEqual(parseProcConnectorDatagram(Buffer.concat([exec(1), Buffer.alloc(8)])).errors, []);
});

test('parser: unknown and unused kinds are returned as "other", acknowledgements as "ack"', () => {
  const p = parseProcConnectorDatagram(
    datagram(notice(0x400, [1, 1]), notice(PROC_EVENT.SID, [5, 5]), notice(PROC_EVENT.PTRACE, [5, 5, 6, 6]), notice(PROC_EVENT.COREDUMP, [5, 5]), notice(PROC_EVENT.NONE, [1], { ack: 43 })),
  );
  assert.deepEqual(p.errors, []);
  assert.deepEqual(p.messages.map((m) => (m.what === 'other' ? m.code : m.what)), [0x400, PROC_EVENT.SID, PROC_EVENT.PTRACE, PROC_EVENT.COREDUMP, 'ack']);
  const ack = p.messages[4]!;
  assert.ok(ack.what === 'ack' && ack.ack === 43 && ack.err === 1);
});

test('parser: bad lengths at every layer are reported, never thrown', () => {
  const tooSmall = exec(1);
  tooSmall.writeUInt32LE(8, 0); // nlmsg_len below the header size
  assert.deepEqual(parseProcConnectorDatagram(datagram(tooSmall, exec(2))).errors, ['bad-length']);

  const cnTooLong = exec(1);
  cnTooLong.writeUInt16LE(200, 32); // cn_msg.len beyond the message
  assert.deepEqual(parseProcConnectorDatagram(datagram(cnTooLong, exec(2))), {
    messages: [{ what: 'exec', cpu: 0, seq: 0, timestampNs: 1e9, pid: 2, tgid: 2 }],
    errors: ['bad-cn-length'],
    skipped: 0,
  });

  const noCn = Buffer.alloc(16 + 8);
  noCn.writeUInt32LE(noCn.length, 0);
  noCn.writeUInt16LE(NLMSG_DONE, 4);
  assert.deepEqual(parseProcConnectorDatagram(noCn).errors, ['short-cn-msg']);

  // A fork whose event_data is only 8 bytes, and an event shorter than proc_event's header.
  assert.deepEqual(parseProcConnectorDatagram(fork(1, 2, { dataLen: 8 })).errors, ['short-event']);
  const shortHdr = notice(PROC_EVENT.EXEC, [1, 1], { dataLen: 0 });
  shortHdr.writeUInt16LE(12, 32);
  assert.deepEqual(parseProcConnectorDatagram(shortHdr).errors, ['short-event']);

  // Exit notices of kernels before 4.18 have no parent: it reads as 0.
  const old = parseProcConnectorDatagram(exit(9, 9, 0, 1, { dataLen: 16 }));
  assert.deepEqual(old.errors, []);
  assert.ok(old.messages[0]!.what === 'exit' && old.messages[0]!.parentTgid === 0);
});

test('parser: netlink errors, no-ops and other connectors are told apart', () => {
  const p = parseProcConnectorDatagram(datagram(exec(1, { nlType: 2 }), exec(2, { nlType: 1 }), exec(3, { idx: 7 }), exec(4, { nlType: 4 }), exec(5)));
  assert.deepEqual(p.errors, ['netlink-error', 'netlink-overrun']);
  assert.equal(p.skipped, 2);
  assert.deepEqual(p.messages.map((m) => m.what === 'exec' && m.pid), [5]);
});

test('parser: random and mutated datagrams never throw', () => {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const good = datagram(fork(1, 2), exec(2), exit(2, 2, 0, 1), commNotice(2, 2, 'x'));
  for (let i = 0; i < 5000; i++) {
    const b = i % 2 ? Buffer.from(good) : Buffer.alloc(Math.floor(rnd() * 300));
    for (let j = 0; j < 1 + rnd() * 8; j++) if (b.length) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    const p = parseProcConnectorDatagram(b, Math.floor(rnd() * (b.length + 1)));
    assert.ok(Array.isArray(p.messages) && Array.isArray(p.errors));
  }
});

test('control messages have the layout the kernel expects', () => {
  const m = mcastControlMessage(PROC_CN_MCAST_LISTEN, 41);
  assert.equal(m.length, 40);
  assert.equal(m.readUInt32LE(0), 40); // nlmsg_len
  assert.equal(m.readUInt16LE(4), NLMSG_DONE);
  assert.deepEqual([m.readUInt32LE(16), m.readUInt32LE(20)], [CN_IDX_PROC, CN_VAL_PROC]);
  assert.equal(m.readUInt32LE(28), 41); // ack: the kernel answers with 42
  assert.equal(m.readUInt16LE(32), 4); // cn_msg.len: one u32 op
  assert.equal(m.readUInt32LE(36), PROC_CN_MCAST_LISTEN);
});

test('start errors: missing privilege names CAP_NET_ADMIN, a missing connector is NotSupportedError', () => {
  const perm = connectorError('bind', os.constants.errno.EPERM);
  assert.ok(perm instanceof PermissionError);
  assert.equal(perm.capability, 'CAP_NET_ADMIN');
  const ns = connectorError('socket', os.constants.errno.EPROTONOSUPPORT);
  assert.ok(ns instanceof NotSupportedError);
  assert.equal(ns.feature, 'proc_connector');
  assert.ok(connectorError('listen', os.constants.errno.ENOMEM) instanceof SyscallError);
});

// ---- translation against a fake /proc ----------------------------------------------------------------------

interface FakeProc {
  comm?: string;
  ppid?: number;
  startTicks?: number;
  state?: string;
  threads?: number;
  uids?: [number, number, number, number];
  gids?: [number, number, number, number];
  argv?: string[];
  env?: string[];
  /** Extra tasks (tid -> state) besides the leader. */
  tasks?: Record<number, string>;
}

function statLine(pid: number, f: FakeProc, state = f.state ?? 'S'): string {
  return `${pid} (${f.comm ?? 'proc'}) ${state} ${f.ppid ?? 1} ${pid} ${pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 ${f.threads ?? 1} 0 ${f.startTicks ?? 100} 0 0\n`;
}

class FakeProcfs {
  readonly root: string;
  constructor(t: TestContext) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-fakeproc-'));
    t.after(() => fs.rmSync(this.root, { recursive: true, force: true }));
  }
  add(pid: number, f: FakeProc = {}): void {
    const d = path.join(this.root, String(pid));
    fs.rmSync(d, { recursive: true, force: true });
    fs.mkdirSync(path.join(d, 'ns'), { recursive: true });
    fs.writeFileSync(path.join(d, 'stat'), statLine(pid, f));
    const [u, g] = [f.uids ?? [0, 0, 0, 0], f.gids ?? [0, 0, 0, 0]];
    fs.writeFileSync(path.join(d, 'status'), `Name:\t${f.comm ?? 'proc'}\nUid:\t${u.join('\t')}\nGid:\t${g.join('\t')}\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nNSpid:\t${pid}\n`);
    fs.writeFileSync(path.join(d, 'loginuid'), '4294967295');
    fs.writeFileSync(path.join(d, 'cmdline'), (f.argv ?? [f.comm ?? 'proc']).map((a) => `${a}\0`).join(''));
    fs.writeFileSync(path.join(d, 'environ'), (f.env ?? ['HOME=/root']).map((a) => `${a}\0`).join(''));
    fs.writeFileSync(path.join(d, 'cgroup'), '0::/\n');
    fs.symlinkSync('/bin/sh', path.join(d, 'exe'));
    fs.symlinkSync('pid:[4026531836]', path.join(d, 'ns', 'pid'));
    fs.symlinkSync('mnt:[4026531841]', path.join(d, 'ns', 'mnt'));
    fs.mkdirSync(path.join(d, 'task', String(pid)), { recursive: true });
    fs.writeFileSync(path.join(d, 'task', String(pid), 'stat'), statLine(pid, f));
    fs.writeFileSync(path.join(d, 'task', String(pid), 'status'), fs.readFileSync(path.join(d, 'status')));
    for (const [tid, state] of Object.entries(f.tasks ?? {})) {
      fs.mkdirSync(path.join(d, 'task', tid), { recursive: true });
      fs.writeFileSync(path.join(d, 'task', tid, 'stat'), statLine(Number(tid), f, state));
    }
  }
  remove(pid: number): void {
    fs.rmSync(path.join(this.root, String(pid)), { recursive: true, force: true });
  }
}

/** CLOCK_MONOTONIC now (libuv's hrtime reads it): notices are stamped with it. */
const monoNow = () => Number(process.hrtime.bigint());

function setup(t: TestContext) {
  const proc = new FakeProcfs(t);
  const src = new ProcConnectorSource({ procRoot: proc.root });
  const events: ProcessEvent[] = [];
  const feed = (...msgs: Buffer[]) => src.ingest(msgs.map((m) => datagram(m)), (ev) => events.push(ev as ProcessEvent));
  const of = <T extends ProcessEvent['type']>(type: T) => events.filter((e): e is Extract<ProcessEvent, { type: T }> => e.type === type);
  return { proc, src, events, feed, of };
}

test('fork, exec and exit of a process read from /proc; its exit is keyed after /proc forgot it', (t) => {
  const { proc, src, feed, of } = setup(t);
  proc.add(100, { comm: 'bash', startTicks: 50 });
  proc.add(200, { comm: 'sh', ppid: 100, startTicks: 120, argv: ['sh', '-c', 'exit 3'], env: ['HOME=/root', 'TOKEN=x'], uids: [1000, 1000, 1000, 1000] });
  const ts = monoNow();
  feed(fork(100, 200, { ts, seq: 1 }), exec(200, { ts: ts + 1000, seq: 2 }));
  proc.remove(200); // reaped before its exit notice is handled
  feed(exit(200, 200, 3 << 8, 100, { ts: ts + 2000, seq: 3 }));

  const [f] = of('fork') as [ForkEvent];
  assert.equal(f.pid, 100);
  assert.equal(f.parentStartNs, 50 * 1e7);
  assert.equal(f.childTgid, 200);
  assert.equal(f.childStartNs, 120 * 1e7);
  assert.equal(f.thread, false);
  assert.equal(f.comm, 'bash', 'a new child carries its parent\'s comm until it execs');
  assert.ok(Math.abs(f.ktimeNs - (ts + bootOffset().offsetNs)) < 1e6, 'monotonic stamps are converted to boot time');

  const [x] = of('exec') as [ExecEvent];
  assert.equal(x.pid, 200);
  assert.equal(x.startNs, 120 * 1e7);
  assert.equal(x.ppid, 100);
  assert.equal(x.parentStartNs, 50 * 1e7);
  assert.deepEqual(x.argv, ['sh', '-c', 'exit 3']);
  assert.equal(x.argc, 3);
  assert.deepEqual(x.envRaw, ['HOME=/root', 'TOKEN=x']);
  assert.equal(x.exe.path, '/bin/sh');
  assert.equal(x.creds.uid, 1000);
  assert.equal(x.ns.pidns, 4026531836);
  assert.equal(x.comm, 'sh');
  for (const f of ['filename', 'oldPid', 'subreaper']) assert.ok(x.unknown?.includes(f), `${f} is unknown in this mode`);
  for (const f of ['argv', 'env', 'exe', 'creds', 'ns', 'startNs']) assert.ok(!x.unknown?.includes(f), `${f} was read`);

  const [e] = of('exit') as [ExitEvent];
  assert.equal(e.startNs, 120 * 1e7, 'the start time remembered from the fork keys the exit');
  assert.equal(e.ppid, 100);
  assert.equal(e.exitCode, 3);
  assert.equal(e.signal, undefined);
  assert.equal(e.groupDead, true);
  assert.equal(e.comm, 'sh');
  const s = src.stats();
  assert.equal(s.fork, 1);
  assert.equal(s.exec, 1);
  assert.equal(s.exit, 1);
  assert.equal(s.lost, 0);
  assert.equal(s.handlerErrors, 0);

  // The same events build the right tree in the process cache.
  const cache = new ProcessCache({ scrubber: { scrubArgv: (a) => ({ argv: a, scrubbed: 0 }), scrubEnv: (en) => ({ env: en.map((v) => ({ name: v.split('=')[0]! })), scrubbed: 0 }) }, timers: false });
  cache.apply({ type: 'snapshot', pid: 100, startNs: 50 * 1e7, ppid: 1, comm: 'bash', exePath: '/bin/bash', exeIno: 1, exeDev: 1, exeMtimeNs: 0, argv: ['bash'], envRaw: [], creds: undefined, ns: undefined, tty: '', unknown: [], kernelThread: false } satisfies SnapshotProcess);
  for (const ev of [f, x, e]) cache.apply(ev);
  const child = cache.byPid(200)!;
  assert.equal(child.parentKey, cache.byPid(100)!.key);
  assert.equal(child.exit?.exitCode, 3);
  assert.deepEqual(child.image.argv, ['sh', '-c', 'exit 3']);
  assert.ok(child.unknown.includes('filename'));
});

test('an exec whose process is already gone is all unknown, not guessed', (t) => {
  const { src, feed, of } = setup(t);
  feed(exec(4242, { ts: monoNow() }));
  const [x] = of('exec') as [ExecEvent];
  assert.ok(Number.isNaN(x.startNs));
  for (const f of ['startNs', 'ppid', 'argv', 'env', 'exe', 'creds', 'ns', 'comm', 'tty', 'filename']) assert.ok(x.unknown?.includes(f), `${f} marked unknown`);
  assert.deepEqual(x.argv, []);
  assert.ok(src.stats().procReadFailures >= 1);
});

test('a pid already reused by a newer process is not read as the old one', (t) => {
  const { proc, feed, of } = setup(t);
  const ts = monoNow();
  proc.add(300, { comm: 'newcomer', startTicks: Math.ceil((ts + bootOffset().offsetNs) / 1e7) + 1000, argv: ['newcomer'] });
  feed(exec(300, { ts }), exit(300, 300, 0, 1, { ts: ts + 10 }));
  const [x] = of('exec') as [ExecEvent];
  assert.ok(Number.isNaN(x.startNs));
  assert.ok(x.unknown?.includes('argv'));
  assert.notDeepEqual(x.argv, ['newcomer']);
  assert.ok(Number.isNaN((of('exit')[0] as ExitEvent).startNs));
});

test('when /proc already shows a later exec, the earlier exec takes nothing from it', (t) => {
  const { proc, src, feed, of } = setup(t);
  proc.add(1, { comm: 'init', startTicks: 1 });
  proc.add(500, { comm: 'true', ppid: 1, startTicks: 200, argv: ['true'] });
  const ts = monoNow();
  feed(exec(500, { ts, seq: 1 }), exec(500, { ts: ts + 10, seq: 2 })); // sh -c 'exec true': both notices in one batch
  const [first, second] = of('exec') as [ExecEvent, ExecEvent];
  for (const f of ['argv', 'env', 'exe', 'comm']) assert.ok(first.unknown?.includes(f), `${f} of the first exec is unknown`);
  assert.deepEqual(first.argv, []);
  assert.equal(first.startNs, 200 * 1e7, 'its identity is still known');
  assert.deepEqual(second.argv, ['true']);
  assert.equal(src.stats().staleExecs, 1);
});

test('wait status: exit codes, killing signals and core dumps; exit_signal is not the killing signal', (t) => {
  const { proc, feed, of } = setup(t);
  const ts = monoNow();
  for (const pid of [601, 602, 603]) proc.add(pid, { startTicks: 10, state: 'Z' });
  feed(exit(601, 601, 9, 1, { ts }), exit(602, 602, 0x80 | 11, 1, { ts }), exit(603, 603, 0, 1, { ts }));
  const [a, b, c] = of('exit') as [ExitEvent, ExitEvent, ExitEvent];
  assert.deepEqual([a.signal, a.exitCode, a.coreDumped], [9, undefined, false]);
  assert.deepEqual([b.signal, b.coreDumped], [11, true]);
  assert.deepEqual([c.exitCode, c.signal], [0, undefined], 'SIGCHLD in exit_signal is what the parent gets, not a kill');
  assert.ok([a, b, c].every((e) => e.groupDead && e.startNs === 10 * 1e7), 'zombie leaders are dead; the start comes from their stat');
});

test('threads: a thread\'s creation and exit are marked, and never end the process', (t) => {
  const { proc, feed, of } = setup(t);
  proc.add(700, { comm: 'worker', startTicks: 70, threads: 2, tasks: { 701: 'S' } });
  const ts = monoNow();
  feed(fork(1, 700, { ts }, 701), exit(701, 700, 0, 1, { ts: ts + 5 }));
  const [f] = of('fork') as [ForkEvent];
  assert.equal(f.thread, true);
  assert.equal(f.childPid, 701);
  assert.equal(f.childTgid, 700);
  assert.ok(f.unknown?.includes('childStartNs'));
  const [e] = of('exit') as [ExitEvent];
  assert.equal(e.pid, 700);
  assert.equal(e.tid, 701);
  assert.equal(e.thread, true);
  assert.equal(e.groupDead, false);
});

test('a leader that exits before its threads: the process ends with its last thread', (t) => {
  const { proc, src, feed, of } = setup(t);
  proc.add(800, { comm: 'mt', startTicks: 80, threads: 3, state: 'Z', tasks: { 801: 'S', 802: 'R' } });
  const ts = monoNow();
  feed(exit(800, 800, 0, 1, { ts })); // main called pthread_exit
  assert.deepEqual(of('exit').map((e) => e.groupDead), [false]);
  assert.equal(src.stats().pendingExits, 1);
  feed(exit(801, 800, 0, 1, { ts: ts + 10 }));
  assert.deepEqual(of('exit').map((e) => e.groupDead), [false, false]);
  feed(exit(802, 800, 7 << 8, 1, { ts: ts + 20 })); // the last thread calls exit(7)
  const last = of('exit')[2] as ExitEvent;
  assert.equal(last.groupDead, true);
  assert.equal(last.pid, 800);
  assert.equal(last.tid, 802);
  assert.equal(last.exitCode, 7);
  assert.equal(last.startNs, 80 * 1e7);
  assert.equal(src.stats().pendingExits, 0);
});

test('a thread that execs replaces the leader: the leader\'s exit does not end the process', (t) => {
  const { proc, src, feed, of } = setup(t);
  // After de_thread the exec'ing thread owns the leader's pid and runs: /proc shows it alive.
  proc.add(900, { comm: 'true', startTicks: 90, state: 'R', argv: ['true'] });
  const ts = monoNow();
  feed(exit(900, 900, 0, 1, { ts }), exec(900, { ts: ts + 10 }));
  assert.deepEqual(of('exit').map((e) => e.groupDead), [false]);
  assert.equal(of('exec').length, 1);
  assert.equal(src.stats().pendingExits, 0);
});

test('a thread that execs and whose new image already ended: the exec notice after the leader\'s exit keeps it alive', (t) => {
  const { src, feed, of } = setup(t);
  const ts = monoNow();
  // Nothing left in /proc: the leader's exit, the exec by its thread, and the process's real exit, in one batch.
  feed(exit(950, 950, 0, 1, { ts }), exec(950, { ts: ts + 10 }), exit(950, 950, 5 << 8, 1, { ts: ts + 20 }));
  assert.deepEqual(of('exit').map((e) => [e.groupDead, e.exitCode]), [[false, 0], [true, 5]]);
  assert.equal(src.stats().pendingExits, 0);
});

test('uid and gid changes: the notice\'s ids over /proc\'s others, old creds from the last exec', (t) => {
  const { proc, feed, of } = setup(t);
  proc.add(1000, { comm: 'su', startTicks: 100, uids: [0, 0, 0, 0] });
  const ts = monoNow();
  feed(exec(1000, { ts }));
  // /proc as it is after setresuid(65534...) and setresgid(42, 43, 0); the notices' ids win where /proc lags.
  proc.add(1000, { comm: 'su', startTicks: 100, uids: [65534, 65534, 65534, 65534], gids: [0, 0, 0, 0] });
  feed(idChange('uid', 1000, 1000, 65534, 65534, { ts: ts + 10 }), idChange('gid', 1000, 1000, 42, 43, { ts: ts + 20 }));
  const [u, g] = of('creds') as [CredsEvent, CredsEvent];
  assert.deepEqual([u.creds.uid, u.creds.euid, u.creds.suid, u.creds.fsuid], [65534, 65534, 65534, 65534]);
  assert.equal(u.oldCreds?.uid, 0);
  assert.equal(u.startNs, 100 * 1e7);
  assert.ok(u.unknown?.includes('syscallNr'));
  assert.deepEqual([g.creds.gid, g.creds.egid, g.creds.sgid, g.creds.uid], [42, 43, 0, 65534]);
  assert.equal(g.oldCreds?.gid, 0);

  // Gone from /proc: the ids the notice gives, the rest marked unknown.
  proc.remove(1000);
  feed(idChange('uid', 1000, 1000, 7, 7, { ts: ts + 30 }));
  const gone = of('creds')[2] as CredsEvent;
  assert.deepEqual([gone.creds.uid, gone.creds.euid], [7, 7]);
  assert.ok(gone.unknown?.includes('creds.suid') && !gone.unknown.includes('creds.uid'));
});

test('comm changes of the process are reported with the old name; a thread\'s name is not the process\'s', (t) => {
  const { proc, src, feed, of } = setup(t);
  proc.add(1100, { comm: 'python3', startTicks: 110 });
  const ts = monoNow();
  feed(commNotice(1100, 1100, 'gunicorn', { ts }), commNotice(1101, 1100, 'worker-1', { ts: ts + 1 }));
  const c = of('comm') as CommEvent[];
  assert.equal(c.length, 1);
  assert.deepEqual([c[0]!.oldComm, c[0]!.comm, c[0]!.startNs], ['python3', 'gunicorn', 110 * 1e7]);
  assert.equal(src.stats().ignored, 1);
});

test('gaps in the per-CPU sequence numbers are counted as lost notices', (t) => {
  const { src, feed } = setup(t);
  const ts = monoNow();
  feed(exec(1, { ts, cpu: 0, seq: 10 }), exec(1, { ts, cpu: 1, seq: 500 }), exec(1, { ts, cpu: 0, seq: 11 }), exec(1, { ts, cpu: 0, seq: 15 }), exec(1, { ts, cpu: 1, seq: 501 }));
  assert.equal(src.stats().seqLost, 3);
  assert.equal(src.stats().lost, 3);
});

test('acknowledgements take part in the sequence only where they fit it', (t) => {
  const { src, feed } = setup(t);
  const ts = monoNow();
  const ack = (seq: number) => notice(PROC_EVENT.NONE, [0], { ts, cpu: 0, seq, ack: 8 });
  // Kernels since 6.6 number acknowledgements like any notice; older ones echo the requester's number.
  feed(exec(1, { ts, cpu: 0, seq: 100 }), ack(101), exec(1, { ts, cpu: 0, seq: 102 }), ack(7), exec(1, { ts, cpu: 0, seq: 103 }));
  assert.equal(src.stats().seqLost, 0);
  assert.equal(src.stats().ack, 2);
});

test('stats count bad datagrams and unused kinds without emitting', (t) => {
  const { src, events } = setup(t);
  const bad = exec(1);
  bad.writeUInt16LE(999, 32);
  src.ingest([bad, datagram(notice(PROC_EVENT.SID, [1, 1])), Buffer.alloc(3, 0xff)], (ev) => events.push(ev as ProcessEvent));
  const s = src.stats();
  assert.equal(events.length, 0);
  assert.equal(s.parseErrors, 2);
  assert.equal(s['parseError.bad-cn-length'], 1);
  assert.equal(s['parseError.short-header'], 1);
  assert.equal(s.ignored, 1);
});
