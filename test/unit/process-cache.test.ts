// The process cache fed scripted fork/exec/exit sequences, in order, out of order and with events missing.
// No privileges: events are built here, lookups are fakes, time is a variable the test moves.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Creds, ExecEvent, ExitEvent, ForkEvent, CredsEvent } from '../../src/events/types.ts';
import { ProcessCache, processKey, type ImageScrubber } from '../../src/process/cache.ts';
import { DEFAULT_SCRUB_CONFIG, Scrubber } from '../../src/process/scrub.ts';
import type { SnapshotProcess } from '../../src/process/types.ts';

const noScrub: ImageScrubber = {
  scrubArgv: (argv) => ({ argv: argv.map((a) => a.replace(/secret=\S+/, 'secret=****')), scrubbed: 0 }),
  scrubEnv: (env) => ({ env: env.map((e) => ({ name: e.split('=')[0]! })), scrubbed: env.length }),
};

const creds = (uid = 0): Creds => ({ uid, gid: uid, euid: uid, egid: uid, suid: uid, sgid: uid, fsuid: uid, fsgid: uid, capEffective: '0', capPermitted: '0', capInheritable: '0', loginuid: undefined });
const S = (pid: number) => pid * 1e9; // each pid's start time, in ns, distinct ticks

function fork(parent: number, child: number, t = 0, o: Partial<ForkEvent> = {}): ForkEvent {
  return { type: 'fork', ktimeNs: t, pid: parent, tid: parent, parentStartNs: S(parent), childPid: child, childTgid: child, childStartNs: S(child), childPpid: parent, thread: false, cgroupId: 1, comm: 'x', ...o };
}
function exec(pid: number, ppid: number, argv: string[], t = 0, o: Partial<ExecEvent> = {}): ExecEvent {
  return {
    type: 'exec', ktimeNs: t, pid, tid: pid, cgroupId: 1, startNs: S(pid), ppid, parentStartNs: S(ppid), oldPid: pid, creds: creds(), ns: { cgroupId: 1, pidns: 1, mntns: 1, nspid: pid },
    exe: { path: `/bin/${argv[0]}`, ino: 1, dev: 1, mtimeNs: 0 }, filename: argv[0]!, argv, argc: argv.length, envRaw: ['HOME=/root'], comm: argv[0]!, tty: '', flags: 0,
    argvTruncated: false, envTruncated: false, pathTruncated: false, subreaper: false, ...o,
  };
}
function exit(pid: number, ppid: number, t = 0, status = 0): ExitEvent {
  return { type: 'exit', ktimeNs: t, pid, tid: pid, startNs: S(pid), ppid, status, exitCode: status >> 8, signal: undefined, coreDumped: false, groupDead: true, thread: false, cgroupId: 1, comm: 'x' };
}
function snap(pid: number, ppid: number, comm: string): SnapshotProcess {
  return { type: 'snapshot', pid, startNs: S(pid), ppid, comm, exePath: `/bin/${comm}`, exeIno: 1, exeDev: 1, exeMtimeNs: 0, argv: [comm], envRaw: [], creds: creds(), ns: undefined, tty: '', unknown: [], kernelThread: false };
}

function cache(o: Partial<ConstructorParameters<typeof ProcessCache>[0]> = {}) {
  let now = 0;
  const c = new ProcessCache({ scrubber: noScrub, timers: false, now: () => now, holdMs: 100, exitedGraceMs: 1000, ...o });
  return { c, advance: (ms: number) => (now += ms), at: () => now };
}

const comm = (c: ProcessCache, pid: number) => c.get(processKey(pid, S(pid)))?.image.comm;
/** Keys of every entry (live or exited) with this pid. */
function keysOf(c: ProcessCache, pid: number): string[] {
  const keys: string[] = [];
  c.walk((e) => {
    if (e.pid === pid) keys.push(e.key);
  });
  return keys;
}
const chain = (c: ProcessCache, pid: number, lineage?: 'creation' | 'current') => c.ancestors(processKey(pid, S(pid)), { lineage }).map((e) => e.pid);

test('fork, exec and exit build the tree with images, exec history and exit status', () => {
  const { c } = cache();
  c.apply(snap(1, 0, 'init'));
  c.apply(fork(1, 10, 1));
  c.apply(exec(10, 1, ['sh', '-c', 'x'], 2));
  c.apply(exec(10, 1, ['sh', 'inner'], 3)); // exec chain in one pid: sh -> sh -> true
  c.apply(exec(10, 1, ['true'], 4));
  c.apply(exit(10, 1, 5, 3 << 8));
  const e = c.get(processKey(10, S(10)))!;
  assert.equal(e.image.comm, 'true');
  assert.deepEqual(e.previousImages.map((i) => i.argv), [['sh', '-c', 'x'], ['sh', 'inner']], 'the inherited fork image is not part of the chain');
  assert.equal(e.execCount, 3);
  assert.equal(e.exit?.exitCode, 3);
  assert.deepEqual(chain(c, 10), [1]);
  assert.equal(c.stats().applied.exec, 3);
  assert.deepEqual(e.image.env, [{ name: 'HOME' }], 'env is scrubbed to names on the way in');
});

test('a forked child that never execs inherits its parent\'s image, marked as inherited', () => {
  const { c } = cache();
  c.apply(snap(1, 0, 'init'));
  c.apply(exec(20, 1, ['bash'], 1));
  c.apply(fork(20, 21, 2, { comm: 'bash' }));
  const child = c.get(processKey(21, S(21)))!;
  assert.equal(child.image.inherited, true);
  assert.deepEqual(child.image.argv, ['bash']);
  assert.notEqual(child.image.execId, c.get(processKey(20, S(20)))!.image.execId);
});

test('an exec that overtakes its fork still ends with the right parent and image', () => {
  const { c } = cache();
  c.apply(snap(1, 0, 'init'));
  c.apply(exec(30, 1, ['parent'], 1));
  c.apply(exec(31, 30, ['child'], 3)); // the exec arrives first
  c.apply(fork(30, 31, 2));            // then its fork
  assert.equal(comm(c, 31), 'child');
  assert.deepEqual(chain(c, 31), [30, 1]);
  assert.equal(c.stats().brokenLineage, 0);
});

test('a child seen before its parent waits for it, then links', () => {
  const { c, advance } = cache();
  c.apply(exec(41, 40, ['child'], 2));
  assert.equal(c.get(processKey(41, S(41)))!.parentKey, processKey(40, S(40)));
  advance(50);
  c.apply(exec(40, 1, ['parent'], 1)); // the parent shows up within the hold window
  c.sweep();
  assert.deepEqual(chain(c, 41), [40]);
  assert.equal(c.stats().brokenLineage, 0);
});

test('an exit for an unknown process is held, then applied when the process appears', () => {
  const { c, advance } = cache();
  c.apply(exit(50, 1, 9, 1 << 8));
  assert.equal(c.stats().held, 1);
  assert.equal(c.get(processKey(50, S(50))), undefined);
  advance(10);
  c.apply(exec(50, 1, ['late'], 5));
  const e = c.get(processKey(50, S(50)))!;
  assert.equal(e.exit?.exitCode, 1, 'the held exit was replayed');
  assert.equal(c.stats().held, 0);
  assert.equal(c.stats().heldResolved, 1);
});

test('what stays unknown is resolved from the kernel map or /proc, else counted as broken lineage', () => {
  const kernelKnows: Record<number, SnapshotProcess> = { 61: snap(61, 1, 'fromkernel') };
  const procKnows: Record<number, SnapshotProcess> = { 62: snap(62, 1, 'fromproc') };
  const { c, advance } = cache({ lookups: { kernel: (pid) => kernelKnows[pid], procfs: (pid) => procKnows[pid] } });
  c.apply(snap(1, 0, 'init'));
  const cred: CredsEvent = { type: 'creds', ktimeNs: 1, pid: 61, tid: 61, cgroupId: 1, startNs: S(61), syscallNr: 105, oldCreds: creds(0), creds: creds(1000) };
  c.apply(cred);
  c.apply({ ...cred, pid: 62, tid: 62, startNs: S(62) });
  c.apply(exit(63, 1, 3));
  advance(200);
  c.sweep();
  assert.equal(c.get(processKey(61, S(61)))!.source, 'kernel-map');
  assert.equal(c.get(processKey(61, S(61)))!.creds!.uid, 1000);
  assert.equal(c.get(processKey(62, S(62)))!.source, 'procfs');
  const ghost = c.get(processKey(63, S(63)))!;
  assert.equal(ghost.source, 'partial');
  assert.equal(ghost.lineageBroken, true);
  assert.ok(ghost.exit, 'the exit was still applied, not dropped');
  const st = c.stats();
  assert.equal(st.heldFallback, 3);
  assert.equal(st.brokenLineage, 1);
});

test('a parent that never appears marks the child\'s lineage broken after the hold window', () => {
  const { c, advance } = cache();
  c.apply(exec(71, 70, ['orphan'], 1));
  advance(200);
  c.sweep();
  assert.equal(c.get(processKey(71, S(71)))!.lineageBroken, true);
  assert.equal(c.stats().brokenLineage, 1);
});

test('reparenting: the grandchild of a dead middle process moves to the subreaper, keeping its original parent', () => {
  const newParents: Record<number, number> = { 82: 80 }; // /proc says 82's parent is now the subreaper 80
  const { c } = cache({ lookups: { ppid: (pid) => newParents[pid] } });
  c.apply(snap(1, 0, 'init'));
  c.apply(exec(80, 1, ['subreaper'], 1, { subreaper: true }));
  c.apply(fork(80, 81, 2));
  c.apply(fork(81, 82, 3));
  c.apply(exit(81, 80, 4));
  const g = c.get(processKey(82, S(82)))!;
  assert.equal(g.parentKey, processKey(80, S(80)));
  assert.equal(g.originalParentKey, processKey(81, S(81)));
  assert.deepEqual(chain(c, 82), [81, 80, 1], 'creation lineage goes through the dead parent');
  assert.deepEqual(chain(c, 82, 'current'), [80, 1]);
  assert.equal(c.stats().reparented, 1);
  // An exec later reporting the new ppid keeps the history too.
  c.apply(exec(82, 80, ['grandchild'], 5));
  assert.equal(g.originalParentKey, processKey(81, S(81)));
});

test('exited processes are evicted after the grace period unless a live descendant needs them', () => {
  const { c, advance } = cache();
  c.apply(snap(1, 0, 'init'));
  c.apply(exec(90, 1, ['a'], 1));
  c.apply(fork(90, 91, 2));
  c.apply(exec(92, 1, ['b'], 2));
  c.apply(exit(90, 1, 3)); // 91 still alive: 90 stays for lineage
  c.apply(exit(92, 1, 3));
  advance(500);
  c.sweep();
  assert.ok(c.get(processKey(92, S(92))), 'still within grace');
  advance(600);
  assert.equal(c.sweep(), 1);
  assert.equal(c.get(processKey(92, S(92))), undefined);
  assert.ok(c.get(processKey(90, S(90))), 'kept for its live child');
  assert.deepEqual(chain(c, 91), [90, 1]);
  c.apply(exit(91, 1, 10));
  advance(1100);
  assert.equal(c.sweep(), 2, 'the child and then the parent it kept');
  assert.equal(c.size, 1);
  assert.equal(c.stats().evictions, 3);
});

test('the cache stays bounded under churn and counts forced evictions', () => {
  const { c, advance } = cache({ maxEntries: 100, exitedGraceMs: 1e9 });
  c.apply(snap(1, 0, 'init'));
  for (let i = 0; i < 1000; i++) {
    const pid = 1000 + i;
    c.apply(fork(1, pid, i));
    c.apply(exec(pid, 1, ['job', String(i)], i));
    c.apply(exit(pid, 1, i));
    advance(1);
  }
  assert.ok(c.size <= 100, `size ${c.size}`);
  assert.ok(c.stats().evictionsForced >= 900);
});

test('pid reuse: two instances of one pid are different processes', () => {
  const { c } = cache();
  c.apply(exec(100, 1, ['first'], 1));
  c.apply(exit(100, 1, 2));
  const second = { ...exec(100, 1, ['second'], 3), startNs: S(100) + 5e9 };
  c.apply(second);
  assert.equal(c.byPid(100)!.image.comm, 'second');
  assert.equal(c.at(100, S(100) + 1e9)!.image.comm, 'first');
  assert.equal(c.at(100, S(100) - 1), undefined, 'nothing of that pid was alive before');
  assert.equal(c.at(100, S(100) + 6e9)!.image.comm, 'second');
});

test('a pid reused many times: byPid and at() find the right instance, before and after the exited ones go', () => {
  const { c, advance } = cache();
  const start = (g: number) => S(200) + g * 1e9;
  for (let g = 0; g < 40; g++) {
    c.apply({ ...exec(200, 1, [`gen${g}`], start(g) + 1), startNs: start(g) });
    c.apply({ ...exit(200, 1, start(g) + 2), startNs: start(g) });
  }
  assert.equal(c.byPid(200)!.image.argv![0], 'gen39', 'none alive: the newest');
  for (const g of [0, 17, 39]) assert.equal(c.at(200, start(g) + 3)!.image.argv![0], `gen${g}`);
  c.apply({ ...exec(200, 1, ['live'], start(40) + 1), startNs: start(40) });
  assert.equal(c.byPid(200)!.image.argv![0], 'live');
  assert.equal(c.at(200, start(39) + 5)!.image.argv![0], 'gen39', 'an event from before the reuse');
  // Their grace over, the exited instances go; the index lets go of them with their entries.
  advance(2000);
  c.apply(exec(201, 1, ['other'], start(41)));
  c.sweep();
  assert.deepEqual(keysOf(c, 200), [processKey(200, start(40))]);
  assert.equal(c.byPid(200)!.image.argv![0], 'live');
  assert.equal(c.at(200, start(39) + 5), undefined, 'gone with its entry');
  // A start time learned later moves the entry to its key; the index still finds it, once.
  c.apply({ ...exec(202, 1, ['unknown-start'], start(42)), startNs: NaN, unknown: ['startNs'] });
  c.apply({ ...exec(202, 1, ['known'], start(42) + 1), startNs: start(42) });
  assert.equal(c.byPid(202)!.key, processKey(202, start(42)));
  assert.equal(c.at(202, start(42) + 2)!.image.argv![0], 'known');
  assert.equal(keysOf(c, 202).length, 1);
});

test('snapshot records fill gaps but never override newer live events', () => {
  const { c } = cache();
  c.apply(exec(110, 1, ['live'], 1));
  c.apply(snap(110, 1, 'stale'));
  assert.equal(comm(c, 110), 'live');
  assert.equal(c.get(processKey(110, S(110)))!.source, 'event');
});

test('thread forks and thread exits do not create or end processes', () => {
  const { c } = cache();
  c.apply(exec(120, 1, ['threaded'], 1));
  c.apply(fork(120, 121, 2, { childTgid: 120, thread: true }));
  c.apply({ ...exit(120, 1, 3), tid: 121, groupDead: false, thread: true });
  const e = c.get(processKey(120, S(120)))!;
  assert.equal(e.exit, undefined);
  assert.equal(c.size, 1);
  assert.equal(c.stats().threadEvents, 2);
});

test('fields an eBPF-less source marks unknown never overwrite what was known', () => {
  const { c } = cache();
  c.apply(exec(130, 1, ['first'], 1, { creds: creds(1000), tty: 'pts/1' }));
  c.apply(exec(130, 1, [], 2, { creds: creds(0), tty: '', argv: [], unknown: ['creds', 'tty', 'argv', 'exe'] }));
  const e = c.get(processKey(130, S(130)))!;
  assert.equal(e.creds!.uid, 1000, 'placeholder creds ignored');
  assert.equal(e.tty, 'pts/1');
  assert.equal(e.image.argv, undefined, 'the new image\'s argv is unknown, not empty');
  assert.equal(e.image.exePath, undefined);
  assert.deepEqual([...e.unknown].sort(), ['argv', 'creds', 'exe', 'tty']);
});

test('processes with unknown start times: a reused pid starts a new generation', () => {
  const { c } = cache();
  c.apply({ ...exec(140, 1, ['first'], 1), startNs: NaN, unknown: ['startNs'] });
  c.apply({ ...exit(140, 1, 2), startNs: NaN });
  c.apply({ ...exec(140, 1, ['second'], 3), startNs: NaN, unknown: ['startNs'] });
  const live = c.byPid(140)!;
  assert.deepEqual(live.image.argv, ['second']);
  assert.equal(live.exit, undefined, 'the new process is not the old, exited one');
  assert.equal(keysOf(c, 140).length, 2, 'both generations are kept');
});

test('a start time learned after the fork keeps the process one entry, with its links moved to the known key', () => {
  const { c } = cache();
  c.apply(snap(1, 0, 'init'));
  // The eBPF-less mode could not read the child's start time at its fork (nor at its first exec).
  c.apply(fork(1, 150, 1, { childStartNs: NaN, unknown: ['childStartNs'] }));
  c.apply({ ...exec(150, 1, ['first'], 2), startNs: NaN, unknown: ['startNs'] });
  c.apply({ ...fork(150, 151, 3), parentStartNs: NaN }); // a child linked to the "150:?" entry
  c.apply(exec(150, 1, ['second'], 4)); // this time /proc answered
  c.apply(exit(150, 1, 5));
  assert.deepEqual(keysOf(c, 150), [processKey(150, S(150))], 'one entry, under the known key');
  const e = c.get(processKey(150, S(150)))!;
  assert.deepEqual(e.previousImages.map((i) => i.argv), [['first']]);
  assert.equal(e.image.argv?.[0], 'second');
  assert.ok(e.exit && !e.unknown.includes('startNs'), 'the exit landed on it; its start time is no longer unknown');
  assert.deepEqual(chain(c, 151), [150, 1], 'the child links to the moved entry');
  assert.deepEqual(c.children(processKey(1, S(1))).map((x) => x.key), [processKey(150, S(150))], 'and the parent lists it under its new key');
  assert.equal(c.stats().startLearned, 1);
  // A fork names a new process: a live "<pid>:?" entry is never taken for the forked child.
  c.apply({ ...exec(160, 1, ['old'], 6), startNs: NaN, unknown: ['startNs'] });
  c.apply(fork(1, 160, 7));
  assert.equal(keysOf(c, 160).length, 2);
  assert.equal(c.stats().startLearned, 1);
});

test('new scrub rules (a reload) scrub every cached image again, earlier ones too; what was masked stays masked', () => {
  const { c } = cache({ scrubber: new Scrubber() });
  c.apply(snap(1, 0, 'init'));
  c.apply(fork(1, 10, 1));
  c.apply(exec(10, 1, ['app', '--colour', 'blue', '--password', 'hunter2'], 2, { envRaw: ['LANG=C.UTF-8', 'COLOUR=blue', 'HOME=/root'] }));
  c.apply(exec(10, 1, ['app', '--colour=green'], 3, { envRaw: ['LANG=C.UTF-8'] }));
  const e = c.get(processKey(10, S(10)))!;
  e.output = { memo: 'stale' };
  assert.deepEqual(e.previousImages[0]!.argv, ['app', '--colour', 'blue', '--password', '****']);
  assert.deepEqual(e.image.argv, ['app', '--colour=green']);
  assert.deepEqual(e.previousImages[0]!.env, [{ name: 'LANG', value: 'C.UTF-8' }, { name: 'COLOUR' }, { name: 'HOME', value: '/root' }]);

  // Stricter: "colou?r" is a secret name now, and LANG's value is no longer reported.
  const stricter = new Scrubber({ secretNames: [...DEFAULT_SCRUB_CONFIG.secretNames, 'colou?r'], envAllow: ['HOME'] });
  const r = c.setScrubber(stricter);
  assert.deepEqual(r, { images: 3, scrubbedArgs: 2, scrubbedEnv: 2 }, 'init, and the two images of pid 10');
  assert.deepEqual(e.previousImages[0]!.argv, ['app', '--colour', '****', '--password', '****']);
  assert.deepEqual(e.image.argv, ['app', '--colour=****']);
  assert.deepEqual(e.previousImages[0]!.env, [{ name: 'LANG' }, { name: 'COLOUR' }, { name: 'HOME', value: '/root' }]);
  assert.deepEqual(e.image.env, [{ name: 'LANG' }]);
  assert.equal(e.output, undefined, 'the output memo is dropped: events show the images as they are now');
  // Later execs are scrubbed by the new rules.
  c.apply(exec(10, 1, ['app', '--color', 'red'], 4, { envRaw: ['LANG=C.UTF-8'] }));
  assert.deepEqual(e.image.argv, ['app', '--color', '****']);
  assert.deepEqual(e.image.env, [{ name: 'LANG' }]);

  // Looser again: nothing masked comes back (the raw values were never kept); only later execs show more.
  assert.deepEqual(c.setScrubber(new Scrubber()), { images: 4, scrubbedArgs: 0, scrubbedEnv: 0 });
  assert.deepEqual(e.image.argv, ['app', '--color', '****']);
  c.apply(exec(10, 1, ['app', '--color', 'red'], 5, { envRaw: ['LANG=C.UTF-8'] }));
  assert.deepEqual(e.image.argv, ['app', '--color', 'red']);
  assert.deepEqual(e.image.env, [{ name: 'LANG', value: 'C.UTF-8' }]);
});
