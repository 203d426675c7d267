// Privileged: one run of the scripted process family (test/fixtures/family.c) watched at once by the process
// resolver in BPF mode and in the eBPF-less mode (netlink proc connector + /proc), and the two trees compared
// node by node: the same processes (pid + start time), the same parents and reparenting history, the same exec
// chains, argv, executables, credentials and exit statuses, except where the eBPF-less mode could not know a
// field, which it must then mark as unknown (and leave empty, never borrowed from elsewhere). Also: a /proc
// snapshot taken while the family is live agrees with the live events, field by field.
// Needs root + BPF with BTF + the proc connector (CONFIG_PROC_EVENTS) + gcc.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { Creds, Namespaces } from '../../src/events/types.ts';
import { ProcessCache, processKey } from '../../src/process/cache.ts';
import { procConnectorFallback, type ProcConnectorOptions } from '../../src/process/connector.ts';
import { toDot, toJSON } from '../../src/process/dump.ts';
import { takeSnapshot } from '../../src/process/procfs.ts';
import { ProcessResolver } from '../../src/process/resolver.ts';
import { Scrubber } from '../../src/process/scrub.ts';
import type { ProcessEntry, ProcessImage } from '../../src/process/types.ts';
import { buildFamily, FAMILY_SECRETS, startFamily, until } from '../helpers/family.ts';
import { privileged, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF + netlink proc connector (CONFIG_PROC_EVENTS) + gcc';
const CRED_FIELDS: (keyof Creds)[] = ['uid', 'gid', 'euid', 'egid', 'suid', 'sgid', 'fsuid', 'fsgid', 'capEffective', 'capPermitted', 'capInheritable', 'loginuid'];
const NS_FIELDS: (keyof Namespaces)[] = ['cgroupId', 'pidns', 'mntns', 'nspid'];
/** Event times of the two sources come from different clocks (the connector's is converted): a sanity bound. */
const CLOCK_SLACK_NS = 1e9;

/** Every entry descending from `root` by creation lineage, and root itself. */
function subtree(cache: ProcessCache, root: ProcessEntry): Map<number, ProcessEntry> {
  const out = new Map<number, ProcessEntry>([[root.pid, root]]);
  cache.walk((e) => {
    if (cache.ancestors(e.key).some((a) => a.key === root.key)) {
      const seen = out.get(e.pid);
      if (seen) assert.fail(`pid ${e.pid} appears twice under the family root:\n${brief(seen)}\n${brief(e)}`);
      out.set(e.pid, e);
    }
  });
  return out;
}

const brief = (e: ProcessEntry) => JSON.stringify({ key: e.key, comm: e.image.comm, execs: e.execCount, parent: e.parentKey, exit: e.exit, unknown: e.unknown });
const pidOf = (cache: ProcessCache, key: string | undefined) => (key === undefined ? undefined : (cache.get(key)?.pid ?? Number(key.split(':')[0])));
const envNames = (img: ProcessImage) => img.env?.map((v) => v.name);

/** Where two JSON texts first differ, with their lengths: a 100 KB argv that differs at its end shows where. */
function firstDifference(x: string, y: string): string {
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  const at = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 40), i + 40));
  return `first differ at character ${i} (lengths ${x.length} and ${y.length}): BPF …${at(x)}…, eBPF-less …${at(y)}…`;
}

/**
 * Compares the eBPF-less entry `p` with the BPF entry `b` of the same process. Returns what differs in a field
 * `p` does not mark as unknown (a wrong value), and what `p` marks unknown but still fills (a borrowed value);
 * counts each field `p` left unknown in `unknownSeen`.
 */
function compare(b: ProcessEntry, cb: ProcessCache, p: ProcessEntry, cp: ProcessCache, unknownSeen: Map<string, number>): string[] {
  const bad: string[] = [];
  const where = `pid ${b.pid} (${b.image.comm})`;
  const marked = (f: string) => {
    const on = p.unknown.includes(f);
    if (on) unknownSeen.set(f, (unknownSeen.get(f) ?? 0) + 1);
    return on;
  };
  const same = (what: string, x: unknown, y: unknown) => {
    try {
      assert.deepStrictEqual(y, x);
    } catch {
      bad.push(`${where}: ${what}: ${firstDifference(JSON.stringify(x) ?? 'undefined', JSON.stringify(y) ?? 'undefined')}`);
    }
  };

  // Identity: pid + start time, unless the start time could not be read (the process was gone by then).
  if (marked('startNs')) {
    same('an unknown start time is NaN and shows in the key', true, Number.isNaN(p.startNs) && /:\?(#\d+)?$/.test(p.key));
  } else {
    same('key (pid + start time)', b.key, p.key);
  }
  // Lineage: the parent now, the parent that created it, and that it was reparented at all.
  if (!marked('ppid')) same('ppid', b.ppid, p.ppid);
  same('parent pid', pidOf(cb, b.parentKey), pidOf(cp, p.parentKey));
  if (p.parentKey && !p.parentKey.includes('?')) same('parent key', b.parentKey, p.parentKey);
  same('original parent pid (reparenting history)', pidOf(cb, b.originalParentKey), pidOf(cp, p.originalParentKey));
  same('reparented', b.reparentedNs !== undefined, p.reparentedNs !== undefined);
  same('broken lineage', b.lineageBroken, p.lineageBroken);

  // The exec chain, image by image.
  same('exec count', b.execCount, p.execCount);
  const bi = [...b.previousImages, b.image];
  const pi = [...p.previousImages, p.image];
  same('images kept', bi.length, pi.length);
  for (let i = 0; i < Math.min(bi.length, pi.length); i++) {
    const x = bi[i]!;
    const y = pi[i]!;
    const img = i === bi.length - 1 ? 'image' : `image ${i + 1} of ${bi.length}`;
    const u = new Set(y.unknown ?? []);
    for (const f of u) unknownSeen.set(`${img === 'image' ? '' : 'previous '}image.${f}`, (unknownSeen.get(`${img === 'image' ? '' : 'previous '}image.${f}`) ?? 0) + 1);
    same(`${img}: inherited at fork`, x.inherited, y.inherited);
    if (u.has('argv')) same(`${img}: an unknown argv is empty`, [undefined, undefined], [y.argv, y.argc]);
    else same(`${img}: argv`, [x.argv, x.argc, x.argvTruncated], [y.argv, y.argc, y.argvTruncated]);
    if (u.has('exe')) same(`${img}: an unknown executable is empty`, [undefined, undefined], [y.exePath, y.exeIno]);
    else same(`${img}: executable`, [x.exePath, x.exeIno, x.exeDev, x.exeMtimeNs], [y.exePath, y.exeIno, y.exeDev, y.exeMtimeNs]);
    if (u.has('comm')) same(`${img}: an unknown comm is empty`, '', y.comm);
    else same(`${img}: comm`, x.comm, y.comm);
    if (u.has('filename')) same(`${img}: an unknown filename is empty`, undefined, y.filename);
    else same(`${img}: filename`, x.filename, y.filename);
    if (u.has('env')) same(`${img}: an unknown env is empty`, undefined, y.env);
    else same(`${img}: env names`, envNames(x), envNames(y));
    // What the entry says about its current image agrees with the image itself.
    if (img === 'image') for (const f of u) same(`entry marks its image's unknown ${f}`, true, p.unknown.includes(f));
  }

  // Credentials now, and their history.
  const credsAll = marked('creds');
  for (const f of CRED_FIELDS) if (!credsAll && !marked(`creds.${f}`)) same(`creds.${f}`, b.creds?.[f], p.creds?.[f]);
  same('credential changes', b.credHistory.length, p.credHistory.length);
  const sysNrUnknown = marked('credHistory.syscallNr');
  b.credHistory.forEach((h, i) => {
    const q = p.credHistory[i];
    if (!q) return;
    for (const f of ['uid', 'euid', 'gid', 'egid'] as const) if (!p.unknown.includes(`creds.${f}`)) same(`credHistory[${i}].${f}`, h.creds[f], q.creds[f]);
    if (!sysNrUnknown) same(`credHistory[${i}].syscallNr`, h.syscallNr, q.syscallNr);
  });

  // Namespaces, terminal, subreaper.
  const nsAll = marked('ns');
  for (const f of NS_FIELDS) if (!nsAll && !marked(`ns.${f}`) && !(f === 'cgroupId' && marked('cgroupId'))) same(`ns.${f}`, b.ns?.[f], p.ns?.[f]);
  if (!marked('tty')) same('tty', b.tty, p.tty);
  if (!marked('subreaper')) same('subreaper', b.subreaper, p.subreaper);

  // How it ended.
  same('exited', b.exit !== undefined, p.exit !== undefined);
  if (b.exit && p.exit) {
    if (marked('exit.status')) same('an unknown status is NaN', true, Number.isNaN(p.exit.status));
    else same('exit status', b.exit.status, p.exit.status);
    if (marked('exit.exitCode')) same('an unknown exit code is undefined', undefined, p.exit.exitCode);
    else same('exit code', b.exit.exitCode, p.exit.exitCode);
    if (marked('exit.signal')) same('an unknown signal is undefined', undefined, p.exit.signal);
    else same('exit signal', b.exit.signal, p.exit.signal);
    same('core dumped', b.exit.coreDumped, p.exit.coreDumped);
    if (!marked('exit.ktimeNs')) same('exit time (within the clocks\' slack)', true, Math.abs(b.exit.ktimeNs - p.exit.ktimeNs) < CLOCK_SLACK_NS);
  }
  return bad;
}

/**
 * Runs the family watched by both modes and compares the two trees (see the file's comment); returns them
 * for scenario checks. `connector` configures the eBPF-less mode's source.
 */
async function familyInBothModes(t: TestContext, connector: ProcConnectorOptions = {}) {
  const dir = tempDir(t);
  const bin = buildFamily(dir);

  const rb = new ProcessResolver({ mode: 'bpf', cache: { exitedGraceMs: 600_000 } });
  const rp = new ProcessResolver({ mode: 'procfs', fallback: procConnectorFallback(connector), cache: { exitedGraceMs: 600_000 } });
  t.after(() => {
    rb.stop();
    rp.stop();
  });
  rb.start();
  rp.start();
  assert.equal(rb.mode, 'bpf');
  assert.equal(rp.mode, 'procfs', `fell back further: ${rp.stats().fallbackReason}`);

  const fam = startFamily(t, bin, dir);
  await fam.done();
  const at = (r: ProcessResolver, pid: number) => r.cache.byPid(pid) ?? r.cache.at(pid, Number.MAX_SAFE_INTEGER);
  await until(() => fam.pids().every((p) => at(rb, p) && at(rp, p)), 'every family member in both caches');

  // ---- While the family is live: a /proc snapshot agrees with what the live events built. ----------------
  const snapCache = new ProcessCache({ scrubber: new Scrubber(), timers: false });
  for (const s of takeSnapshot()) snapCache.apply(s);
  const live = [fam.one('root').pid!, fam.one('grandchild').pid!];
  for (const pid of live) {
    const s = snapCache.byPid(pid)!;
    const b = at(rb, pid)!;
    assert.ok(s && !b.exit, `pid ${pid} is live and in the snapshot`);
    const what = `snapshot of pid ${pid}`;
    assert.equal(s.key, b.key, `${what}: identity`);
    assert.equal(s.ppid, b.ppid, `${what}: ppid`);
    assert.equal(pidOf(snapCache, s.parentKey), pidOf(rb.cache, b.parentKey), `${what}: parent`);
    assert.deepEqual(s.image.argv, b.image.argv, `${what}: argv`);
    assert.deepEqual([s.image.exePath, s.image.exeIno, s.image.exeDev, s.image.exeMtimeNs], [b.image.exePath, b.image.exeIno, b.image.exeDev, b.image.exeMtimeNs], `${what}: executable`);
    assert.deepEqual(envNames(s.image), envNames(b.image), `${what}: env names`);
    assert.deepEqual(s.creds, b.creds, `${what}: credentials`);
    assert.deepEqual(s.ns, b.ns, `${what}: namespaces (a forked child's own namespace pid included)`);
    assert.equal(s.tty, b.tty, `${what}: tty`);
    assert.deepEqual(s.unknown, [], `${what}: /proc could read everything of a live process`);
  }

  // ---- Then everything ends; both trees are complete. -------------------------------------------------------
  await fam.release();
  const rootB = at(rb, fam.one('root').pid!)!;
  const rootP = at(rp, fam.one('root').pid!)!;
  await until(() => [...subtree(rb.cache, rootB).values()].every((e) => e.exit), 'every process of the BPF tree to exit');
  await until(() => [...subtree(rp.cache, rootP).values()].every((e) => e.exit) && subtree(rp.cache, rootP).size >= subtree(rb.cache, rootB).size, 'the eBPF-less tree to catch up');

  const tb = subtree(rb.cache, rootB);
  const tp = subtree(rp.cache, rootP);
  // Every exec, fork and exit made it through the connector: nothing lost, so the trees can be compared.
  const fs = rp.stats().fallback!;
  assert.equal(fs.lost, 0, `proc connector lost notices: ${JSON.stringify(fs)}`);
  assert.equal(fs.handlerErrors, 0);
  assert.equal(rb.stats().sensor!.kernel!.reserveFailed, 0, 'and nothing lost by the BPF sensor');
  assert.ok(tb.size > 200 + 10, `the family has its 200 burst execs and more (${tb.size})`);
  assert.deepEqual([...tp.keys()].sort((x, y) => x - y), [...tb.keys()].sort((x, y) => x - y), 'the same processes');

  const unknownSeen = new Map<string, number>();
  const bad: string[] = [];
  for (const [pid, b] of tb) {
    // BPF mode knows every field of every process here: nothing marked, so a comparison never skips a field
    // because of the reference side.
    assert.deepEqual([b.unknown, b.image.unknown, ...b.previousImages.map((i) => i.unknown)].filter((u) => u !== undefined && u.length), [], `BPF mode marks nothing unknown for pid ${pid}`);
    bad.push(...compare(b, rb.cache, tp.get(pid)!, rp.cache, unknownSeen));
  }
  assert.deepEqual(bad, [], `the eBPF-less tree differs in fields it does not mark unknown:\n${bad.join('\n')}`);

  // What the connector itself delivers is always known: the lineage and the exit statuses. What it cannot
  // know at all is always marked: the filename given to execve.
  for (const p of tp.values()) {
    assert.ok(!p.unknown.includes('ppid') && !p.unknown.some((f) => f.startsWith('exit.')), `pid ${p.pid}: lineage and exit known (${p.unknown})`);
    if (p.execCount > 0) assert.ok(p.image.unknown?.includes('filename'), `pid ${p.pid}: filename marked unknown`);
  }
  return { fam, rp, rootB, rootP, tb, tp, unknownSeen, procReadFailures: fs.procReadFailures };
}

test('the eBPF-less mode builds the same tree as BPF mode for one family, marking what it cannot know', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const { fam, rp, rootB, rootP, tp, tb, unknownSeen, procReadFailures } = await familyInBothModes(t);
  // Spot checks of the scenarios through the eBPF-less tree alone. The root lived for the whole run, so /proc
  // had it when its exec was reported: its image is known, not merely marked.
  const p = (s: string) => tp.get(fam.one(s).pid!)!;
  assert.deepEqual(p('root').image.unknown, ['filename']);
  assert.deepEqual(p('root').image.argv, rootB.image.argv);
  assert.equal(p('middle').exit?.exitCode, 7);
  assert.equal(pidOf(rp.cache, p('grandchild').parentKey), rootP.pid, 'reparented to the subreaper');
  assert.equal(pidOf(rp.cache, p('grandchild').originalParentKey), p('middle').pid, 'the original parent kept');
  assert.equal(p('killed').exit?.signal, 9);
  assert.equal(p('chain').execCount, 3);
  const su = p('setuid');
  assert.equal(su.creds?.uid, 65534);
  assert.ok(su.credHistory.length === 1 && su.unknown.includes('credHistory.syscallNr'), 'the change is in the history; which syscall made it is marked unknown');
  for (const b of fam.all('burst')) assert.equal(tp.get(b.pid!)?.exit?.exitCode, 0, `burst ${b.i}`);

  // Secrets appear in no output of the eBPF-less mode either.
  const outputs = [JSON.stringify(toJSON(rp.cache, { argv: true, env: true, exited: true })), toDot(rp.cache, { argv: true, exited: true })];
  for (const s of FAMILY_SECRETS) for (const out of outputs) assert.ok(!out.includes(s), `secret ${s} leaked`);

  t.diagnostic(`eBPF-less mode, fields left unknown (entries): ${[...unknownSeen].map(([f, n]) => `${f} ${n}`).join(', ')}`);
  t.diagnostic(`processes compared: ${tb.size}; /proc reads that found the process gone: ${procReadFailures}`);
});

// A clock read preempted mid-way is off by milliseconds. Were that unnoticed, /proc's start time of a
// just-forked child would look later than its fork (so the fork could not name it) while a later notice of
// the same process could, splitting it in two, and a leader's exit would look like a reused pid's. The
// bracket around the read shows the error, and the checks widen by it: the trees still agree.
test('the eBPF-less tree stays the BPF tree when the boot-time offset read was preempted', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const { tb, rp } = await familyInBothModes(t, { clockErrorNs: -6e6 });
  t.diagnostic(`processes compared: ${tb.size}; start times learned after the fork: ${rp.cache.stats().startLearned}`);
});

test('marking: a key with an unknown start time is recognisable', () => {
  assert.equal(processKey(5, NaN), '5:?');
  assert.equal(processKey(5, 1234567890123), '5:123456');
});
