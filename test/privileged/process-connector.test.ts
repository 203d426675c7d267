// Privileged: the eBPF-less process source (netlink proc connector + /proc) feeding a ProcessCache while a
// real scripted process family runs: fork and exec chains, an `exit 3`, a process killed by SIGKILL, a
// setuid/setgid, a rename, and the thread cases the connector does not spell out (a leader that exits before
// its thread, a thread that execs, exit_group from a thread). The family reports its own pids; the test
// compares the cache's tree and exit statuses with them. Also: overflow accounting, the pid-namespace
// refusal, and the wiring into the resolver. Needs root + the proc connector (CONFIG_PROC_EVENTS) + gcc.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { StateError } from '../../src/bpf/errors.ts';
import type { CommEvent, CredsEvent, ExecEvent, ExitEvent, ForkEvent, ProcessEvent } from '../../src/events/types.ts';
import { ProcessCache, type ImageScrubber } from '../../src/process/cache.ts';
import { ProcConnectorSource, procConnectorFallback } from '../../src/process/connector.ts';
import { readPpid, readProcess, takeSnapshot } from '../../src/process/procfs.ts';
import { ProcessResolver } from '../../src/process/resolver.ts';
import type { ProcessEntry } from '../../src/process/types.ts';
import { privileged, ROOT, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + netlink proc connector (CONFIG_PROC_EVENTS) + gcc';

const trivialScrubber: ImageScrubber = {
  scrubArgv: (argv) => ({ argv, scrubbed: 0 }),
  scrubEnv: (env) => ({ env: env.map((e) => ({ name: e.split('=')[0]! })), scrubbed: 0 }),
};

async function until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Kills a child by its pid when the test ends, if it is still running. */
function reap(t: TestContext, child: ChildProcess): void {
  t.after(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  });
}

const HELPER_C = String.raw`
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static long tid(void) { return (long)syscall(SYS_gettid); }
static void *late_exit(void *a) { (void)a; dprintf(1, "leaderthread %d %ld\n", getpid(), tid()); usleep(200000); exit(7); }
static void *thread_exec(void *a) {
	(void)a;
	dprintf(1, "threadexec %d %ld\n", getpid(), tid());
	execl("/bin/sh", "sh", "-c", "echo threadexec-done $$; exit 5", (char *)NULL);
	_exit(98);
}
static void *sleeper(void *a) { (void)a; for (;;) pause(); return NULL; }
static void *group_exit(void *a) { (void)a; usleep(100000); dprintf(1, "groupexit %d %ld\n", getpid(), tid()); exit(9); }

int main(int argc, char **argv) {
	pthread_t t;
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "setuid")) {
		dprintf(1, "setuid %d\n", getpid());
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) return 90;
		dprintf(1, "setuid-done %d %d %d\n", getpid(), getuid(), getgid());
		return 0;
	}
	if (!strcmp(mode, "rename")) {
		prctl(PR_SET_NAME, "vigil-renamed");
		dprintf(1, "rename %d\n", getpid());
		usleep(50000);
		return 0;
	}
	if (!strcmp(mode, "leader-exit")) {
		dprintf(1, "leader %d\n", getpid());
		pthread_create(&t, NULL, late_exit, NULL);
		pthread_exit(NULL);
	}
	if (!strcmp(mode, "thread-exec")) {
		pthread_create(&t, NULL, thread_exec, NULL);
		for (;;) pause();
	}
	if (!strcmp(mode, "group-exit")) {
		dprintf(1, "group %d\n", getpid());
		for (int i = 0; i < 3; i++) pthread_create(&t, NULL, sleeper, NULL);
		pthread_create(&t, NULL, group_exit, NULL);
		for (;;) pause();
	}
	return 64;
}
`;

// Each line the family prints is "<tag> <pid> [more]": the pids come from the processes themselves.
const MID_SCRIPT = 'echo "mid $$ $PPID"; exec sh -c "echo leaf \\$\\$ \\$PPID; exit 3"';
const FAMILY_SH = `
echo "top $$ $PPID"
sh -c '${MID_SCRIPT}'
echo "midrc $?"
sh -c 'echo "victim $$ $PPID"; exec sleep 30' &
victim=$!
# Let the victim exec sleep before killing it (by its own pid); the wait is bounded, nothing asserts on it.
i=0; while [ "$(cat /proc/$victim/comm 2>/dev/null)" != sleep ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done
kill -KILL $victim
wait $victim
echo "victimrc $?"
"$HELPER" setuid; echo "setuidrc $?"
"$HELPER" rename; echo "renamerc $?"
"$HELPER" leader-exit; echo "leaderrc $?"
"$HELPER" thread-exec; echo "threadexecrc $?"
"$HELPER" group-exit; echo "grouprc $?"
exit 0
`;

function buildHelper(t: TestContext, dir: string): string | undefined {
  const src = path.join(dir, 'helper.c');
  const bin = path.join(dir, 'helper');
  fs.writeFileSync(src, HELPER_C);
  try {
    execFileSync('gcc', ['-O1', '-pthread', '-o', bin, src], { stdio: 'pipe' });
  } catch (err) {
    t.skip(`needs ${NEEDS}: gcc failed: ${(err as Error).message}`);
    return undefined;
  }
  return bin;
}

test('the cache fed by the proc connector matches what a real process family did', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const dir = tempDir(t, 'vigil-connector-');
  const helper = buildHelper(t, dir);
  if (!helper) return;
  fs.writeFileSync(path.join(dir, 'family.sh'), FAMILY_SH);

  const cache = new ProcessCache({
    scrubber: trivialScrubber,
    exitedGraceMs: 600_000,
    lookups: { procfs: (pid) => readProcess(pid), ppid: (pid, startNs) => readPpid(pid, startNs) },
  });
  const events: ProcessEvent[] = [];
  const src = new ProcConnectorSource();
  t.after(() => {
    src.stop();
    cache.close();
  });
  // As the resolver does: listen first, then replay the snapshot, so nothing in between is missed.
  src.start((ev) => {
    if (ev.type !== 'snapshot') events.push(ev);
    cache.apply(ev);
  });
  for (const p of takeSnapshot()) cache.apply(p);

  const child = spawn('sh', [path.join(dir, 'family.sh')], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, HELPER: helper } });
  reap(t, child);
  const facts = new Map<string, number[]>();
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  const status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  for (const line of out.trim().split('\n')) {
    const [tag, ...nums] = line.split(' ');
    facts.set(tag!, nums.map(Number));
  }
  assert.equal(status, 0, `family output:\n${out}`);
  const pid = (tag: string) => {
    const v = facts.get(tag)?.[0];
    assert.ok(v !== undefined && v > 0, `the family reported "${tag}"; output:\n${out}`);
    return v;
  };
  const [top, mid, victim, setuid, renamed, leader, threadExec, group] = ['top', 'mid', 'victim', 'setuid', 'rename', 'leader', 'threadexec', 'group'].map(pid) as number[];
  assert.equal(child.pid, top);
  assert.equal(facts.get('leaf')?.[0], mid, 'exec keeps the pid');
  assert.deepEqual([facts.get('midrc')?.[0], facts.get('victimrc')?.[0], facts.get('leaderrc')?.[0], facts.get('threadexecrc')?.[0], facts.get('grouprc')?.[0]], [3, 137, 7, 5, 9]);

  // The notices trail the family: wait (bounded) until every member's exit has reached the cache.
  const members = [top, mid, victim, setuid, renamed, leader, threadExec, group];
  await until(() => members.every((p) => cache.byPid(p)?.exit), 'every exit to reach the cache');

  const entry = (p: number): ProcessEntry => cache.byPid(p)!;
  const parentPid = (p: number) => (entry(p).parentKey ? cache.get(entry(p).parentKey!)?.pid : undefined);

  // The tree: who started whom, as the family itself reported it.
  assert.equal(parentPid(top), process.pid);
  assert.equal(facts.get('top')?.[1], process.pid);
  for (const p of [mid, victim, setuid, renamed, leader, threadExec, group]) assert.equal(parentPid(p), top, `parent of ${p}`);
  assert.equal(facts.get('mid')?.[1], top);
  assert.equal(facts.get('victim')?.[1], top);
  assert.deepEqual(cache.ancestors(entry(mid).key).map((e) => e.pid).slice(0, 2), [top, process.pid]);
  assert.ok(cache.children(entry(top).key).map((e) => e.pid).includes(victim));

  // Exit statuses.
  assert.equal(entry(top).exit?.exitCode, 0);
  assert.equal(entry(mid).exit?.exitCode, 3);
  assert.deepEqual([entry(victim).exit?.signal, entry(victim).exit?.exitCode], [9, undefined]);
  assert.equal(entry(setuid).exit?.exitCode, 0);
  assert.equal(entry(leader).exit?.exitCode, 7, 'the process ended with its last thread, not with its leader');
  assert.equal(entry(threadExec).exit?.exitCode, 5, `a thread that execs does not end the process: ${JSON.stringify(events.filter((e) => e.pid === threadExec))}`);
  assert.equal(entry(group).exit?.exitCode, 9);

  // Exactly one process exit per member: thread and leader exits never end a process early.
  const exits = events.filter((e): e is ExitEvent => e.type === 'exit');
  for (const p of members) assert.equal(exits.filter((e) => e.pid === p && e.groupDead).length, 1, `one process exit for ${p}: ${JSON.stringify(exits.filter((e) => e.pid === p))} ${out}`);
  assert.ok(exits.some((e) => e.pid === leader && !e.groupDead && e.tid === leader), 'the leader\'s own exit is reported, as a non-final one');

  // The exec chain in one pid: sh -c mid -> sh -c leaf. What could be read is right; the rest is marked.
  assert.equal(entry(mid).execCount, 2);
  const midExecs = events.filter((e): e is ExecEvent => e.type === 'exec' && e.pid === mid);
  assert.equal(midExecs.length, 2);
  const expectArgv = [['sh', '-c', MID_SCRIPT], ['sh', '-c', 'echo leaf $$ $PPID; exit 3']];
  midExecs.forEach((x, i) => {
    if (!x.unknown?.includes('argv')) assert.deepEqual(x.argv, expectArgv[i], `exec ${i} of the chain`);
    else assert.deepEqual(x.argv, [], 'an unknown argv is empty, not borrowed from another image');
  });
  const threadExecs = events.filter((e): e is ExecEvent => e.type === 'exec' && e.pid === threadExec);
  assert.equal(threadExecs.length, 2, 'the helper, then sh exec\'d by its thread');
  const te = threadExecs[1]!;
  if (!te.unknown?.includes('argv')) assert.deepEqual(te.argv, ['sh', '-c', 'echo threadexec-done $$; exit 5']);
  assert.equal(facts.get('threadexec-done')?.[0], threadExec);

  // Threads: created and exited as threads, with the pids the threads reported.
  const leaderTid = facts.get('leaderthread')?.[1];
  const forks = events.filter((e): e is ForkEvent => e.type === 'fork');
  assert.ok(forks.some((f) => f.thread && f.childTgid === leader && f.childPid === leaderTid), 'the thread\'s creation');
  assert.ok(exits.some((e) => e.pid === leader && e.tid === leaderTid && e.groupDead), 'the last thread\'s exit ends the process');

  // setresgid + setresuid: creds events with the new ids; the cache's creds and history follow.
  const creds = events.filter((e): e is CredsEvent => e.type === 'creds' && e.pid === setuid);
  assert.ok(creds.some((c) => c.creds.gid === 65534 && c.creds.egid === 65534), 'the gid change');
  assert.ok(creds.some((c) => c.creds.uid === 65534 && c.creds.euid === 65534), 'the uid change');
  assert.ok(creds.every((c) => c.unknown?.includes('syscallNr')));
  assert.equal(entry(setuid).creds?.uid, 65534);
  assert.ok(entry(setuid).credHistory.some((h) => h.creds.uid === 65534));

  // The rename.
  const comm = events.filter((e): e is CommEvent => e.type === 'comm' && e.pid === renamed);
  assert.deepEqual(comm.map((c) => c.comm), ['vigil-renamed']);
  assert.equal(entry(renamed).image.comm, 'vigil-renamed');

  // What the connector cannot know is marked on every event and on the cache's entries.
  for (const x of events.filter((e): e is ExecEvent => e.type === 'exec')) assert.ok(x.unknown?.includes('filename') && x.unknown.includes('oldPid'));
  for (const e of events) assert.ok(Array.isArray(e.unknown), `${e.type} event carries its unknown list`);
  assert.ok(entry(mid).unknown.includes('filename'));
  for (const p of members) {
    const e = entry(p);
    if (!Number.isFinite(e.startNs)) assert.ok(e.key.endsWith(':?'), 'an unknown start time shows in the key');
  }

  const s = src.stats();
  assert.equal(s.handlerErrors, 0);
  assert.equal(s.parseErrors, 0);
  assert.equal(s.lost, 0, `no notice was lost (an 8 MiB receive buffer and a reader that keeps up): ${JSON.stringify(s)}`);
  assert.ok(s.exec >= 9 && s.fork >= 8 && s.exit >= 8 && s.uid >= 1 && s.gid >= 1 && s.comm >= 1);
});

test('an overflowing socket is counted as lost notices, and reading goes on', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const src = new ProcConnectorSource({ rcvbufBytes: 32 * 1024 }); // room for a few dozen notices
  t.after(() => src.stop());
  const events: ProcessEvent[] = [];
  src.start((ev) => {
    if (ev.type !== 'snapshot') events.push(ev);
  });
  // Blocks the event loop (so nothing is read) while 200 processes come and go.
  execFileSync('sh', ['-c', 'i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done']);
  await until(() => src.stats().overruns > 0, 'the overflow to be noticed');
  assert.ok(src.stats().lost >= 1, 'an overflow counts as lost at once');

  // Reading goes on: a later process's exit arrives. The buffer stays small, so a busy machine may overflow
  // it again: try a few processes (each wait is bounded), one must get through.
  let seen: ExitEvent | undefined;
  for (let i = 0; i < 20 && !seen; i++) {
    const child = spawn('sh', ['-c', 'exit 4'], { stdio: 'ignore' });
    reap(t, child);
    await new Promise((r) => child.on('exit', r));
    const find = () => (seen = events.find((e): e is ExitEvent => e.type === 'exit' && e.pid === child.pid && e.groupDead));
    await until(() => find() !== undefined, 'an exit', 500).catch(() => undefined);
  }
  assert.ok(seen, 'a later process exit was read after the overflow');
  assert.equal(seen.exitCode, 4);

  // The exact count comes from the per-CPU sequence numbers, once each CPU's next notice shows the gap.
  for (let i = 0; i < 50 && src.stats().seqLost === 0; i++) {
    const c = spawn('/bin/true', [], { stdio: 'ignore' });
    reap(t, c);
    await new Promise((r) => c.on('exit', r));
  }
  const s = src.stats();
  assert.ok(s.seqLost >= 1 && s.lost === Math.max(s.seqLost, s.overruns), `lost ${s.lost}, seqLost ${s.seqLost}, overruns ${s.overruns}`);
  assert.ok(s.seqLost <= 200 * 8, 'no more lost than the storm made');
});

test('start is one-shot; stop unsubscribes, closes the socket and is idempotent', (t) => {
  if (!privileged(t, NEEDS)) return;
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const before = fds();
  const src = new ProcConnectorSource();
  t.after(() => src.stop());
  src.start(() => {});
  assert.equal(fds(), before + 1, 'one socket');
  assert.throws(() => src.start(() => {}), StateError);
  assert.ok(src.stats().rcvbufBytes >= 8 * 1024 * 1024, 'the receive buffer was enlarged (root: SO_RCVBUFFORCE)');
  src.stop();
  src.stop();
  assert.equal(fds(), before);
  assert.throws(() => src.start(() => {}), StateError);
});

test('without privilege: listening works since 6.6 (else PermissionError), and what /proc hides is marked', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const dir = tempDir(t, 'vigil-connector-nobody-');
  fs.chmodSync(dir, 0o755);
  const script = path.join(dir, 'child.ts');
  fs.writeFileSync(
    script,
    `import readline from 'node:readline';
import { ProcConnectorSource } from ${JSON.stringify(path.join(ROOT, 'src/process/connector.ts'))};
const src = new ProcConnectorSource();
try {
  src.start((ev) => {
    if (ev.type === 'exec' || ev.type === 'exit') console.log(JSON.stringify(ev));
  });
  console.log(JSON.stringify({ started: process.getuid() }));
} catch (e) {
  console.log(JSON.stringify({ error: e.name, capability: e.capability }));
  process.exit(0);
}
readline.createInterface({ input: process.stdin }).on('close', () => { src.stop(); process.exit(0); });
`,
  );
  fs.chmodSync(script, 0o644);
  const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--no-new-privs', process.execPath, script], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  reap(t, child);
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
  });
  // Events of other processes may be printed before the status line: look for the status line itself.
  const status = () => lines.find((l) => l.started !== undefined || l.error !== undefined);
  await until(() => status() !== undefined, 'the unprivileged source to start or fail');
  const first = status()!;
  if (first.error !== undefined) {
    // Kernels before 6.6 reserve the proc connector to CAP_NET_ADMIN.
    assert.equal(first.error, 'PermissionError');
    assert.equal(first.capability, 'CAP_NET_ADMIN');
    return;
  }
  assert.equal(first.started, 65534);
  // A root process with a secret in its environment: nobody may read its environ or its exe link.
  const victim = spawn('sh', ['-c', 'sleep 0.2; exit 7'], { stdio: 'ignore', env: { ...process.env, VIGIL_TEST_SECRET: 'hunter2' } });
  reap(t, victim);
  await until(() => lines.some((l) => l.type === 'exit' && l.pid === victim.pid && l.groupDead), 'the root process\'s exit, seen by nobody');
  child.stdin!.end();
  const x = lines.find((l) => l.type === 'exec' && l.pid === victim.pid) as unknown as ExecEvent;
  assert.ok(x, 'its exec was seen');
  assert.ok(x.unknown?.includes('env') && x.unknown.includes('exe'), `unknown: ${x.unknown}`);
  assert.deepEqual(x.envRaw, []);
  assert.ok(!JSON.stringify(lines).includes('hunter2'));
  if (!x.unknown?.includes('argv')) assert.deepEqual(x.argv, ['sh', '-c', 'sleep 0.2; exit 7']);
  assert.equal((lines.find((l) => l.type === 'exit' && l.pid === victim.pid) as unknown as ExitEvent).exitCode, 7);
});

test('outside the initial pid namespace the kernel ignores listeners: NotSupportedError', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const dir = tempDir(t, 'vigil-connector-ns-');
  const script = path.join(dir, 'child.ts');
  fs.writeFileSync(
    script,
    `import { ProcConnectorSource } from ${JSON.stringify(path.join(ROOT, 'src/process/connector.ts'))};
try { new ProcConnectorSource().start(() => {}); console.log(JSON.stringify({ started: true })); process.exit(0); }
catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, feature: e.feature, message: e.message })); }\n`,
  );
  const child = spawn('unshare', ['--pid', '--fork', process.execPath, script], { stdio: ['ignore', 'pipe', 'inherit'] });
  reap(t, child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => child.on('exit', r));
  const r = JSON.parse(out.trim()) as { name?: string; feature?: string; started?: boolean; message?: string };
  assert.equal(r.name, 'NotSupportedError', out);
  assert.equal(r.feature, 'proc_connector');
  assert.match(r.message ?? '', /pid namespaces/);
});

test('the resolver falls back to the connector: procfs mode builds the tree', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const r = new ProcessResolver({ mode: 'procfs', fallback: procConnectorFallback(), cache: { exitedGraceMs: 600_000 } });
  t.after(() => r.stop());
  r.start();
  assert.equal(r.mode, 'procfs');
  const child = spawn('sh', ['-c', 'sh -c "exit 6"; exit 2'], { stdio: 'ignore' });
  reap(t, child);
  await new Promise((res) => child.on('exit', res));
  await until(() => r.cache.byPid(child.pid!)?.exit !== undefined, 'the exit in the resolver cache');
  const e = r.cache.byPid(child.pid!)!;
  assert.equal(e.exit?.exitCode, 2);
  assert.equal(e.parentKey && r.cache.get(e.parentKey)?.pid, process.pid);
  const kids = r.cache.children(e.key);
  assert.equal(kids.length, 1);
  assert.equal(kids[0]!.exit?.exitCode ?? (await until(() => kids[0]!.exit !== undefined, 'the grandchild exit'), kids[0]!.exit?.exitCode), 6);
  const s = r.stats();
  assert.equal(s.fallback?.handlerErrors, 0);
  assert.ok((s.fallback?.exit ?? 0) >= 2);
  r.stop();
  r.stop(); // idempotent
});
