// Privileged: every failure is a clear, specific error and leaves nothing behind. Verifier rejections,
// unknown sections, unknown functions and maps, bad probe specs, missing objects, missing privileges; and the
// process-wide cleanup on SIGTERM, SIGINT and exit (and the kernel's own on SIGKILL).
// Needs root + BPF with BTF; the privilege test also needs setpriv (util-linux).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { InvalidArgumentError, NotFoundError, UnknownSectionError, VerifierError } from '../../src/bpf/errors.ts';
import { BpfObject, parseVerifierStats } from '../../src/bpf/object.ts';
import { Manager } from '../../src/manager/manager.ts';
import { probe } from '../../src/manager/selectors.ts';
import { assertGone, heldBpfObjects, objectPath, privileged, ROOT, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF';
const NODE = process.execPath;
const CHILD = path.join(ROOT, 'test/fixtures/manager-child.ts');

test('a verifier rejection is a VerifierError: one line, full log, nothing left loaded', (t) => {
  if (!privileged(t, NEEDS)) return;
  const before = heldBpfObjects();
  const m = new Manager({ object: objectPath('test/bpf/verifier_fail'), probes: [{ fn: 'fine' }] });
  t.after(() => m.stop());
  let err: unknown;
  try {
    m.init();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof VerifierError, String(err));
  assert.equal(err.program, 'bad_deref');
  assert.match(err.message, /^program bad_deref rejected by the verifier: .*invalid mem access/);
  assert.ok(!err.message.includes('\n'), 'the message is one line');
  assert.match(err.log, /processed \d+ insns/, 'the full log is kept');
  assert.ok(err.log.split('\n').length > 3);
  assert.equal(m.state, 'new');
  assert.deepEqual(heldBpfObjects(), before);
});

test('verifier logs can be collected for every program on request', (t) => {
  if (!privileged(t, NEEDS)) return;
  const obj = BpfObject.open(objectPath('test/bpf/verifier_fail'));
  t.after(() => obj.close());
  obj.program('bad_deref').setAutoload(false);
  obj.load({ logLevel: 1 });
  assert.match(obj.verifierLogs.get('fine') ?? '', /processed \d+ insns/);
});

test("at log level 4 each program's log is the verifier's summary alone: its time and instructions (bench/startup)", (t) => {
  if (!privileged(t, NEEDS)) return;
  const obj = BpfObject.open(objectPath('test/bpf/verifier_fail'));
  t.after(() => obj.close());
  obj.program('bad_deref').setAutoload(false);
  obj.load({ logLevel: 4 });
  const log = obj.verifierLogs.get('fine') ?? '';
  const st = parseVerifierStats(log);
  assert.ok(st, `no summary in ${JSON.stringify(log)}`);
  assert.ok(st.insnsProcessed > 0 && Number.isInteger(st.insnsProcessed), JSON.stringify(st));
  assert.ok(st.timeUs >= 0 && Number.isInteger(st.timeUs), JSON.stringify(st));
  assert.ok(Number.isInteger(st.peakStates) && st.peakStates >= 0, JSON.stringify(st));
  assert.doesNotMatch(log, /^0: \(/m, 'no per-instruction trace at level 4');
  assert.equal(parseVerifierStats('0: (b7) r0 = 0\n'), undefined);
});

test('an unknown section is an UnknownSectionError before anything is loaded', (t) => {
  if (!privileged(t, NEEDS)) return;
  const m = new Manager({ object: objectPath('test/bpf/unknown_section'), probes: [] });
  t.after(() => m.stop());
  assert.throws(() => m.init(), (e: unknown) => e instanceof UnknownSectionError && e.section === 'vigil_bogus/thing' && /unknown section "vigil_bogus\/thing"/.test(e.message));
});

test('unknown functions, maps and probes are named together with what exists', (t) => {
  if (!privileged(t, NEEDS)) return;
  const mk = (o: Partial<ConstructorParameters<typeof Manager>[0]> = {}) => {
    const m = new Manager({ object: objectPath('test/bpf/manager_test'), probes: [], ...o });
    t.after(() => m.stop());
    return m;
  };
  assert.throws(() => mk({ probes: [{ fn: 'no_such_fn' }] }).init(), (e: unknown) => e instanceof NotFoundError && e.kind === 'program' && /no_such_fn.*functions: .*tp_getppid/.test(e.message));
  assert.throws(() => mk().init({ mapSpecEditors: { no_such_map: { maxEntries: 1 } } }), (e: unknown) => e instanceof NotFoundError && e.kind === 'map' && /no_such_map.*it has: .*counts/.test(e.message));
  assert.throws(() => mk().init({ excludedFunctions: ['nope'] }), /program nope not found/);
  assert.throws(() => mk({ probes: [{ fn: 'tp_getppid' }] }).init({ activatedProbes: [probe('ghost')] }), (e: unknown) => e instanceof NotFoundError && e.kind === 'probe' && /ghost.*named by selector/.test(e.message));
  assert.throws(() => mk({ probes: [{ fn: 'tp_getppid' }, { fn: 'tp_getppid' }] }), /declared twice/);
});

test('bad probe specs and options are rejected before the kernel is touched', (t) => {
  if (!privileged(t, NEEDS)) return;
  const before = heldBpfObjects();
  const bad: [string, () => void, RegExp][] = [
    ['uprobe without binary', () => new Manager({ object: objectPath('test/bpf/manager_test'), probes: [{ fn: 'uprobe_add' }] }).init(), /uprobe needs binaryPath/],
    ['kprobe without target', () => new Manager({ object: objectPath('test/bpf/manager_test'), probes: [{ fn: 'kprobe_getppid' }] }).init(), /needs kernelFunction or syscall/],
    ['zero-sized map', () => new Manager({ object: objectPath('test/bpf/manager_test'), probes: [] }).init({ mapSpecEditors: { counts: { maxEntries: 0 } } }), /maxEntries must be positive/],
    ['shared and excluded', () => new Manager({ object: objectPath('test/bpf/manager_test'), probes: [] }).init({ excludedMaps: ['counts'], mapEditors: { counts: undefined as never } }), /both excluded and shared/],
  ];
  for (const [what, fn, re] of bad) assert.throws(fn, (e: unknown) => e instanceof InvalidArgumentError && re.test((e as Error).message), what);
  assert.deepEqual(heldBpfObjects(), before, 'nothing opened in the kernel');
});

test('a missing or invalid object file is named', (t) => {
  if (!privileged(t, NEEDS)) return;
  const dir = tempDir(t);
  assert.throws(() => new Manager({ object: path.join(dir, 'missing.o'), probes: [] }).init(), (e: unknown) => e instanceof NotFoundError && /missing\.o.*make build/.test(e.message));
  fs.writeFileSync(path.join(dir, 'junk.o'), 'not an ELF file');
  assert.throws(() => new Manager({ object: path.join(dir, 'junk.o'), probes: [] }).init(), (e: unknown) => e instanceof InvalidArgumentError && /not a valid BPF ELF object/.test(e.message));
});

test('without CAP_BPF the manager throws a PermissionError naming the capability', (t) => {
  if (!privileged(t, NEEDS)) return;
  // Root with an empty capability bounding set: files stay readable, bpf() is refused.
  const r = spawnSync('setpriv', ['--bounding-set', '-all', '--inh-caps', '-all', NODE, CHILD, 'init'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(out.ok, false);
  assert.equal(out.name, 'PermissionError');
  assert.equal(out.code, 'EPERM');
  assert.match(out.capability, /CAP_BPF/);
  assert.match(out.message, /permission denied; run as root or grant CAP_BPF/);
});

// The verifier gives up with EAGAIN while a signal is pending (a profiler's SIGPROF did this to us), and
// libbpf's feature probes fail the same way. Loads block signals by default; with signals delivered, that is
// an interrupted load to retry, not a program the verifier rejected.
async function interruptedLoad(t: import('node:test').TestContext, retries: number, floodMs: number, signals: 'block' | 'deliver'): Promise<Record<string, unknown>> {
  const child = spawn(NODE, [path.join(ROOT, 'test/fixtures/interrupted-load.ts'), String(retries), signals], { stdio: ['pipe', 'pipe', 'inherit'] });
  let flood: ReturnType<typeof spawn> | undefined;
  const stopFlood = () => {
    if (flood && flood.exitCode === null && flood.signalCode === null) flood.kill('SIGKILL');
  };
  t.after(() => {
    stopFlood();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      if (lines[0] === 'ready' && !flood) {
        // bash's builtin kill in a loop: thousands of signals a second at the child, whose handler counts them.
        // Real-time priority: the flood must keep going while other tests load both CPUs (starved, it let loads
        // finish between its signals, and libbpf's own retries of EAGAIN hid the few it interrupted).
        flood = spawn('chrt', ['-f', '10', 'bash', '-c', `while kill -USR2 ${child.pid} 2>/dev/null; do :; done`], { stdio: 'ignore' });
        setTimeout(() => child.stdin!.write('go\n'), 200);
        if (floodMs > 0) setTimeout(stopFlood, 200 + floodMs);
      }
      if (lines.length > 2) resolve(JSON.parse(lines[1]!) as Record<string, unknown>);
    });
    child.once('exit', (code) => setImmediate(() => reject(new Error(`child exited with ${code}: ${buf}`))));
  });
}

test('a flood of signals neither interrupts a load nor is lost: they wait until the load returns', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const out = await interruptedLoad(t, 0, 0, 'block');
  assert.equal(out.ok, true, JSON.stringify(out));
  assert.equal(out.interruptedLoads, 0, JSON.stringify(out));
  assert.ok((out.signals as number) > 0, 'the handler saw the signals');
  assert.equal(out.held, 0, 'stop released everything');
});

test('with signals delivered, a load they keep interrupting is an InterruptedError, not a verifier rejection, and leaves nothing', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const out = await interruptedLoad(t, 0, 0, 'deliver');
  assert.equal(out.name, 'InterruptedError', JSON.stringify(out));
  assert.equal(out.code, 'EINTERRUPTED');
  assert.match(String(out.message), /interrupted by signals while the verifier ran \(EAGAIN\); retry/);
  assert.ok((out.signals as number) > 0);
  assert.equal(out.held, 0, 'nothing stays loaded after the failed load');
});

test('with signals delivered, init starts over from a fresh open when a load was interrupted, and succeeds once the signals stop', async (t) => {
  if (!privileged(t, NEEDS)) return;
  // The flood runs before init starts, so the first attempt is interrupted; it stops after a second, long
  // before a thousand attempts have run.
  const out = await interruptedLoad(t, 1000, 1000, 'deliver');
  assert.equal(out.ok, true, JSON.stringify(out));
  assert.ok((out.interruptedLoads as number) >= 1, JSON.stringify(out));
  assert.equal(out.held, 0, 'stop released everything');
});

async function runChild(t: import('node:test').TestContext, mode: string): Promise<{ child: ReturnType<typeof spawn>; ids: { progs: number[]; maps: number[] } }> {
  const child = spawn(NODE, [CHILD, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before reporting`)));
  });
  const ids = JSON.parse(line);
  assert.equal(ids.ok, true, line);
  return { child, ids };
}

const exited = (child: ReturnType<typeof spawn>) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => r({ code, signal }));
  });

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`${sig} runs the single cleanup and the process still dies of the signal`, async (t) => {
    if (!privileged(t, NEEDS)) return;
    const { child, ids } = await runChild(t, 'hold');
    assert.ok(ids.progs.length > 0);
    child.kill(sig);
    const res = await exited(child);
    assert.equal(res.signal, sig, 'the signal is re-raised after cleanup');
    await assertGone({ progs: ids.progs, maps: ids.maps });
  });
}

test('a process that exits without stopping still cleans up; SIGKILL leaves it to the kernel', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const a = await runChild(t, 'exit');
  assert.equal((await exited(a.child)).code, 0);
  await assertGone({ progs: a.ids.progs, maps: a.ids.maps });
  const b = await runChild(t, 'hold');
  b.child.kill('SIGKILL');
  await exited(b.child);
  await assertGone({ progs: b.ids.progs, maps: b.ids.maps });
});
