// How the process cache marks what a source could not know (ProcessEntry.unknown, ProcessImage.unknown), as
// the eBPF-less mode needs: a field its events list as unknown is marked on the entry (or the image), holds
// an empty value rather than an older one that would look current, and the mark goes when a later event knows
// the field. What BPF events (which mark nothing) build stays unmarked. No privileges: events are built here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Creds, CredsEvent, ExecEvent, ExitEvent, ForkEvent } from '../../src/events/types.ts';
import { ProcessCache, processKey, type ImageScrubber } from '../../src/process/cache.ts';

const noScrub: ImageScrubber = {
  scrubArgv: (argv) => ({ argv, scrubbed: 0 }),
  scrubEnv: (env) => ({ env: env.map((e) => ({ name: e.split('=')[0]! })), scrubbed: 0 }),
};
const INIT_PIDNS = 0xeffffffc;
const creds = (uid = 0): Creds => ({ uid, gid: uid, euid: uid, egid: uid, suid: uid, sgid: uid, fsuid: uid, fsgid: uid, capEffective: 'ff', capPermitted: 'ff', capInheritable: '0', loginuid: 1000 });
const S = (pid: number) => pid * 1e9;
const key = (pid: number) => processKey(pid, S(pid));

function exec(pid: number, ppid: number, argv: string[], o: Partial<ExecEvent> = {}): ExecEvent {
  return {
    type: 'exec', ktimeNs: S(pid) + 1, pid, tid: pid, cgroupId: 7, startNs: S(pid), ppid, parentStartNs: S(ppid), oldPid: pid, creds: creds(), ns: { cgroupId: 7, pidns: INIT_PIDNS, mntns: 5, nspid: pid },
    exe: { path: `/bin/${argv[0]}`, ino: 1, dev: 1, mtimeNs: 0 }, filename: `/bin/${argv[0]}`, argv, argc: argv.length, envRaw: ['HOME=/root'], comm: argv[0]!, tty: '', flags: 0,
    argvTruncated: false, envTruncated: false, pathTruncated: false, subreaper: false, ...o,
  };
}
function fork(parent: number, child: number, o: Partial<ForkEvent> = {}): ForkEvent {
  return { type: 'fork', ktimeNs: S(child), pid: parent, tid: parent, parentStartNs: S(parent), childPid: child, childTgid: child, childStartNs: S(child), childPpid: parent, thread: false, cgroupId: 7, comm: 'sh', ...o };
}
function exit(pid: number, status: number, o: Partial<ExitEvent> = {}): ExitEvent {
  const sig = status & 0x7f;
  return { type: 'exit', ktimeNs: S(pid) + 5, pid, tid: pid, startNs: S(pid), ppid: 1, status, exitCode: sig ? undefined : status >> 8, signal: sig || undefined, coreDumped: false, groupDead: true, thread: false, cgroupId: 7, comm: 'sh', ...o };
}
function credsEv(pid: number, c: Creds, unknown?: string[]): CredsEvent {
  return { type: 'creds', ktimeNs: S(pid) + 3, pid, tid: pid, cgroupId: 7, startNs: S(pid), syscallNr: unknown ? 0 : 105, oldCreds: undefined, creds: c, ...(unknown ? { unknown } : {}) };
}
const newCache = () => new ProcessCache({ scrubber: noScrub, timers: false });

test('BPF events mark nothing; a forked child in the initial pid namespace has its own namespace pid', () => {
  const c = newCache();
  c.apply(exec(10, 0, ['sh']));
  c.apply(fork(10, 11));
  c.apply(exit(11, 3 << 8));
  const p = c.get(key(10))!;
  const ch = c.get(key(11))!;
  assert.deepEqual([p.unknown, p.image.unknown, ch.unknown, ch.image.unknown], [[], undefined, [], undefined]);
  assert.equal(ch.ns?.nspid, 11, 'not the parent\'s');
  assert.equal(ch.exit?.exitCode, 3);
});

test('a fork in another pid namespace marks the namespace pid unknown instead of copying the parent\'s', () => {
  const c = newCache();
  c.apply(exec(20, 0, ['init'], { ns: { cgroupId: 7, pidns: 4026532999, mntns: 6, nspid: 1 } }));
  c.apply(fork(20, 21));
  const ch = c.get(key(21))!;
  assert.equal(ch.ns?.pidns, 4026532999);
  assert.equal(ch.ns?.nspid, 0);
  assert.deepEqual(ch.unknown, ['ns.nspid']);
  c.apply(exec(21, 20, ['worker'], { ns: { cgroupId: 7, pidns: 4026532999, mntns: 6, nspid: 2 } }));
  assert.deepEqual(ch.unknown, [], 'its exec knows it');
});

test('an exec that could not read its image marks the image fields; a later exec that could clears them', () => {
  const c = newCache();
  c.apply(exec(30, 0, ['sh']));
  c.apply(exec(30, 0, [], { argc: 0, comm: '', exe: { path: '', ino: 0, dev: 0, mtimeNs: 0 }, filename: '', envRaw: [], unknown: ['filename', 'argv', 'env', 'exe', 'comm', 'creds', 'subreaper'] }));
  const e = c.get(key(30))!;
  assert.deepEqual(e.image.unknown, ['argv', 'env', 'exe', 'filename', 'comm']);
  assert.deepEqual([e.image.argv, e.image.argc, e.image.exePath, e.image.filename, e.image.env], [undefined, undefined, undefined, undefined, undefined], 'empty, not borrowed');
  assert.deepEqual(new Set(e.unknown), new Set(['filename', 'argv', 'env', 'exe', 'comm', 'creds', 'subreaper']));
  assert.equal(e.creds?.uid, 0, 'creds keep the last known value, marked');
  c.apply(exec(30, 0, ['true'], { unknown: ['filename', 'subreaper'] }));
  assert.deepEqual(e.image.unknown, ['filename']);
  assert.deepEqual(e.previousImages.map((i) => i.unknown), [undefined, ['argv', 'env', 'exe', 'filename', 'comm']], 'each image keeps its own marks');
  assert.deepEqual(new Set(e.unknown), new Set(['filename', 'subreaper']), 'the entry lists what its current image and process do not know');
  c.apply(exec(30, 0, ['true']));
  assert.deepEqual(e.unknown, []);
});

test('an unknown start time is marked and shows in the key; a fork inherits the parent\'s image marks, not its own', () => {
  const c = newCache();
  c.apply(exec(40, 0, ['sh'], { unknown: ['filename', 'env'] }));
  c.apply(fork(40, 41, { childStartNs: NaN, unknown: ['childStartNs', 'comm', 'tid'], comm: '' }));
  const ch = c.get('41:?')!;
  assert.ok(ch, 'keyed without a start time');
  assert.ok(ch.unknown.includes('startNs'));
  assert.deepEqual(new Set(ch.unknown), new Set(['startNs', 'filename', 'env']));
  assert.equal(ch.image.comm, 'sh', 'an unknown fork comm is the parent\'s, not empty');
  assert.deepEqual(ch.image.unknown, ['env', 'filename']);
});

test('an exit whose status the source only inferred is marked, not reported as 0', () => {
  const c = newCache();
  c.apply(exec(50, 0, ['sh']));
  c.apply(exit(50, 0, { unknown: ['cgroupId', 'ktimeNs', 'status', 'exitCode', 'signal'] }));
  const e = c.get(key(50))!;
  assert.ok(Number.isNaN(e.exit!.status));
  assert.deepEqual([e.exit!.exitCode, e.exit!.signal], [undefined, undefined]);
  assert.deepEqual(new Set(e.unknown), new Set(['exit.ktimeNs', 'exit.status', 'exit.exitCode', 'exit.signal']), 'the event\'s own cgroupId mark stays on the event');
  c.apply(exec(51, 0, ['sh']));
  c.apply(exit(51, 9, { unknown: ['cgroupId'] }));
  assert.deepEqual([c.get(key(51))!.exit!.signal, c.get(key(51))!.unknown], [9, []]);
});

test('a credential change read only in part: the rest is empty and marked, until a full one comes', () => {
  const c = newCache();
  c.apply(exec(60, 0, ['su']));
  const partial = { ...creds(0), uid: 65534, euid: 65534 }; // the connector's uid notice: only uid and euid known
  c.apply(credsEv(60, partial, ['syscallNr', 'creds.gid', 'creds.egid', 'creds.suid', 'creds.sgid', 'creds.fsuid', 'creds.fsgid', 'creds.capEffective', 'creds.capPermitted', 'creds.capInheritable', 'creds.loginuid', 'cgroupId']));
  const e = c.get(key(60))!;
  assert.equal(e.creds!.uid, 65534);
  assert.ok(Number.isNaN(e.creds!.suid) && Number.isNaN(e.creds!.fsuid), 'not the old 0, which would look current');
  assert.deepEqual([e.creds!.capEffective, e.creds!.loginuid], ['', undefined]);
  assert.ok(e.unknown.includes('creds.suid') && e.unknown.includes('credHistory.syscallNr') && !e.unknown.includes('cgroupId'));
  assert.equal(e.credHistory.length, 1);
  c.apply(credsEv(60, creds(65534)));
  assert.deepEqual(e.unknown.filter((f) => f.startsWith('creds.')), [], 'a full change clears the field marks');
  assert.ok(e.unknown.includes('credHistory.syscallNr'), 'the first change\'s syscall stays unknown');
  assert.equal(e.creds!.suid, 65534);
});

test('a rename clears an unknown comm; a process that never showed up is a partial entry with everything marked', () => {
  const c = newCache();
  c.apply(exec(70, 0, ['x'], { comm: '', unknown: ['comm'] }));
  c.apply({ type: 'comm', ktimeNs: S(70) + 2, pid: 70, tid: 70, cgroupId: 7, startNs: S(70), oldComm: '', comm: 'renamed' });
  const e = c.get(key(70))!;
  assert.deepEqual([e.image.comm, e.image.unknown, e.unknown], ['renamed', undefined, []]);
  // An exit for a process no event, map or /proc knows: after the hold it becomes a partial entry.
  let now = 0;
  const d = new ProcessCache({ scrubber: noScrub, timers: false, now: () => now, holdMs: 10 });
  d.apply(exit(80, 0, { comm: '' }));
  now += 20;
  d.sweep();
  const p = d.get(key(80))!;
  assert.equal(p.source, 'partial');
  assert.deepEqual(p.image.unknown, ['argv', 'env', 'exe', 'filename', 'comm']);
  assert.deepEqual(new Set(p.unknown), new Set(['argv', 'env', 'exe', 'filename', 'comm', 'creds', 'ns']));
});
