// Privileged: the process resolver against a real scripted process family (test/fixtures/family.c, built
// here). The family reports the truth itself; the test checks that the tree vigil reports matches it: a
// double fork whose middle dies, a subreaper, exec chains, 200 concurrent execs, a 100 KB argument, secrets,
// non-UTF-8 bytes and newlines, a setuid, a thread that execs, a process killed by a signal. Then it checks
// that a /proc snapshot taken while the family is alive agrees with the live events.
// Needs root + BPF with BTF + gcc.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ExecEvent, ProcessEvent } from '../../src/events/types.ts';
import { processKey } from '../../src/process/cache.ts';
import { toDot, toJSON } from '../../src/process/dump.ts';
import { readProcess } from '../../src/process/procfs.ts';
import { ProcessResolver } from '../../src/process/resolver.ts';
import type { ProcessEntry } from '../../src/process/types.ts';
import { buildFamily, FAMILY_SECRETS as SECRETS, startFamily, until } from '../helpers/family.ts';
import { assertGone, privileged, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF + gcc';

test('the process tree vigil reports matches what a real process family did', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const dir = tempDir(t);
  const bin = buildFamily(dir);

  const events: ProcessEvent[] = [];
  const r = new ProcessResolver({ mode: 'bpf', cache: { exitedGraceMs: 600_000 } });
  t.after(() => r.stop());
  r.start({ onEvent: (ev) => events.push(ev) });
  assert.equal(r.mode, 'bpf');
  assert.equal(r.state, 'snapshotted');
  const progIds = r.manager!.probes().filter((p) => p.state === 'running').map((p) => p.program!.id);

  const fam = startFamily(t, bin, dir);
  await fam.done();
  const { one, all } = fam;
  const c = r.cache;
  const byPid = (pid: number) => c.byPid(pid) ?? c.at(pid, Number.MAX_SAFE_INTEGER);
  const allPids = fam.pids();
  await until(() => allPids.every((p) => byPid(p)), 'every family member in the cache');
  await until(() => all('burst').every((b) => byPid(b.pid!)?.exit), 'the burst to exit');

  // The root, a subreaper.
  const root = byPid(one('root').pid!)!;
  assert.equal(root.image.filename, bin);
  assert.equal(root.ppid, process.pid);
  await until(() => byPid(one('middle').pid!)!.exit !== undefined, 'middle exit');

  // Double fork: the middle exited 7, the grandchild was reparented to the subreaper, its origin kept.
  const middle = byPid(one('middle').pid!)!;
  assert.equal(middle.exit!.exitCode, 7);
  assert.equal(middle.parentKey, root.key);
  const g = byPid(one('grandchild').pid!)!;
  assert.equal(one('grandchild').ppid_after, root.pid);
  assert.equal(g.parentKey, root.key, 'reparented to the subreaper');
  assert.equal(g.originalParentKey, middle.key, 'the original parent is kept');
  assert.deepEqual(c.ancestors(g.key).slice(0, 3).map((e) => e.pid), [middle.pid, root.pid, process.pid], 'lineage through the exited middle');
  assert.deepEqual(c.ancestors(g.key, { lineage: 'current' }).slice(0, 2).map((e) => e.pid), [root.pid, process.pid]);

  // Exec chain in one pid: sh -> sh -> true.
  const chain = byPid(one('chain').pid!)!;
  assert.deepEqual([...chain.previousImages.map((i) => i.comm), chain.image.comm], ['sh', 'sh', 'true']);
  assert.deepEqual(chain.image.argv, ['/bin/true', 'chain-end']);
  assert.equal(chain.execCount, 3);
  // The same chain across pids: sh -> sh -> true.
  const fc = byPid(one('forkchain').pid!)!;
  const fcKids = c.children(fc.key);
  assert.equal(fcKids.length, 1);
  assert.equal(fcKids[0]!.image.comm, 'sh');
  const fcGrand = c.children(fcKids[0]!.key);
  assert.deepEqual(fcGrand.map((e) => e.image.argv), [['/bin/true', 'forked-end']]);

  // Every one of the 200 concurrent execs, with its argv and exit status.
  for (const b of all('burst')) {
    const e = byPid(b.pid!)!;
    assert.deepEqual(e.image.argv, ['true', 'burst', String(b.i)], `burst ${b.i}`);
    assert.equal(e.parentKey, root.key);
    assert.equal(e.exit?.exitCode, 0);
  }
  const execPids = new Set(events.filter((e): e is ExecEvent => e.type === 'exec').map((e) => e.pid));
  assert.ok(all('burst').every((b) => execPids.has(b.pid!)), 'an exec event for each');

  // A 100 KB argument arrives whole.
  const big = byPid(one('bigarg').pid!)!;
  assert.equal(big.image.argv![1]!.length, 100_000);
  assert.equal(big.image.argvTruncated, false);

  // Non-UTF-8 bytes and newlines, in the file name and in argv, shown rather than lost.
  const weird = byPid(one('weird').pid!)!;
  assert.equal(weird.image.exePath, `${dir}/we\\xffird\nname`);
  assert.deepEqual(weird.image.argv, ['weird', 'bad\\xfebyte', 'line1\nline2']);

  // setuid: the credential change is recorded with its history.
  const su = byPid(one('setuid').pid!)!;
  await until(() => su.creds?.uid === 65534, 'the setuid to be seen');
  assert.equal(su.credHistory.at(-1)!.creds.uid, 65534);

  // A thread that execs: same process, new image, the thread's tid recorded as the old pid.
  const te = one('threadexec');
  const teEntry = byPid(te.pid!)!;
  assert.deepEqual(teEntry.image.argv, ['true', 'from-thread']);
  const teExec = events.find((e): e is ExecEvent => e.type === 'exec' && e.pid === te.pid && e.argv[1] === 'from-thread')!;
  assert.equal(teExec.oldPid, te.tid);
  assert.equal(teExec.pid, te.pid);

  // A thread that forks: the child's parent is the thread's process, known by its own start time (not the
  // thread's), so the lineage holds.
  const tf = one('threadfork');
  const tfEntry = byPid(tf.pid!)!;
  const forker = byPid(tf.forker as number)!;
  assert.equal(tfEntry.parentKey, forker.key, 'the forking thread\'s process is the parent');
  assert.deepEqual(c.ancestors(tfEntry.key).slice(0, 2).map((e) => e.pid), [tf.forker, root.pid]);
  assert.equal(tfEntry.lineageBroken, false);

  // Killed by a signal.
  const killed = byPid(one('killed').pid!)!;
  await until(() => killed.exit !== undefined, 'the kill');
  assert.equal(killed.exit!.signal, 9);
  assert.equal(killed.exit!.exitCode, undefined);

  // Secrets appear nowhere: not in the tree, not in DOT, not in the events handed on.
  const outputs = [JSON.stringify(toJSON(c, { argv: true, env: true, exited: true })), toDot(c, { argv: true, exited: true }), JSON.stringify(events)];
  for (const s of SECRETS) for (const out of outputs) assert.ok(!out.includes(s), `secret ${s} leaked`);
  const sec = byPid(one('secrets').pid!)!;
  assert.equal(sec.image.argv![0], 'mysql');
  assert.ok(sec.image.env!.some((v) => v.name === 'SECRET_TOKEN' && v.value === undefined), 'env names kept, values dropped');

  // Nothing was lost in the kernel or left unresolved.
  const st = r.stats();
  assert.equal(st.sensor!.kernel!.reserveFailed, 0);
  assert.equal(st.decodeErrors, 0);

  // The /proc snapshot, taken now while the grandchild and the root are alive, agrees with the events.
  for (const pid of [root.pid, g.pid]) {
    const snap = readProcess(pid)!;
    const live = byPid(pid)!;
    assert.equal(processKey(snap.pid, snap.startNs), live.key, `same identity for ${pid}`);
    assert.equal(snap.ppid, live.ppid);
    assert.equal(snap.exePath, live.image.exePath);
    assert.deepEqual(snap.argv, live.image.argv ?? r.cache.get(live.key)!.image.argv);
    assert.equal(snap.creds!.uid, live.creds!.uid);
  }

  await fam.release();
  r.stop();
  await assertGone({ progs: progIds });
});

/** Sanity of the helper the assertions above rely on. */
test('family test helpers: keys are stable across sources', () => {
  const e = { pid: 5, startNs: 1234567890123 } as ProcessEntry;
  assert.equal(processKey(e.pid, e.startNs), '5:123456');
});
