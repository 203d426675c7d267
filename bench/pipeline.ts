// bench/pipeline: events per second through vigil's whole pipeline (decode, reorder, process and container
// enrichment, routing, JSON serialisation, the JSON-lines file sink writing a real file) on one core, and its
// CPU per event against a C reference consumer that writes one line per event to a file, in the same run.
//
// Recorded: the real sensors (process, cgroup, syscall) record a realistic workload's ring records byte for
//   byte (bench/pipeline/record.ts, workload.sh); the recording is then replayed several times back to back
//   (each pass moved later in time, recording.ts), pinned to one core:
//     vigil  the agent's pipeline fed as the ring reader feeds it, cache seeded from the recording's /proc
//            snapshot, real file sink (bench/pipeline/replay.ts)
//     C      bench/c/pipeline_consumer.c: the same bytes, a line per record with fprintf (stdio, 1 MiB buffer)
//     C JSON the same program with -j: vigil's enriched JSON line, written by hand (the like-for-like floor;
//            the target's ratio stays against C)
// Live: a syscall storm (bench/c/pipeline_gen.c, 3 events per iteration: open, failed open, failed connect)
//   pinned to one core, through the real syscall sensor, consumed on the other core by:
//     vigil  the real Agent with the file sink (bench/pipeline/agent.ts), measured on its second storm (the
//            first warms it up: V8's JIT, the pacer; reported apart as "cold")
//     C      the C consumer on the same sensors' ring, pinned in bpffs by bench/pipeline/host.ts
//   and again paced (--paced-rate events/s, a rate both keep up with): the unpaced storm overloads vigil
//   (it loses events, counted) but not C, so its ratio compares a consumer at its limit with one that is not.
// Rounds alternate (vigil, C, vigil, C, ...); the report gives medians, and ratios are taken within a round.
//
// usage: node bench/pipeline.ts [--reps N] [--live-reps N] [--paced-rate N] [--scale X] [--recording DIR] [--no-write]
//   --scale multiplies the workload, the replayed events and the storm (0.2 for a quick check);
//   --recording reuses a recording (record.ts output) instead of making one; --no-write leaves
//   docs/benchmarks.md alone.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describeLaunchEnv, launchEnv } from './lib/launch.ts';
import { BenchChild, killAll, killChildrenOnExit } from './lib/proc.ts';
import { freePageReporting, PREWARM_ENV } from './lib/memory.ts';
import { ROOT, fixed, markdownTable, median, percent, si, writeSection } from './lib/report.ts';
import { takeSnapshot } from '../src/process/procfs.ts';
import { readRecording, writeLoops, writeSnapshotTsv, type RecordingMeta } from './pipeline/recording.ts';
import { arg } from './lib/args.ts';

const NODE = process.execPath;
const RECORD = path.join(ROOT, 'bench/pipeline/record.ts');
const REPLAY = path.join(ROOT, 'bench/pipeline/replay.ts');
const AGENT = path.join(ROOT, 'bench/pipeline/agent.ts');
const HOST = path.join(ROOT, 'bench/pipeline/host.ts');
const C_CONSUMER = path.join(ROOT, 'build/bench/pipeline_consumer');
const GEN = path.join(ROOT, 'build/bench/pipeline_gen');
const OBJECTS = ['process', 'cgroup', 'syscalls'].map((o) => path.join(ROOT, `build/bpf/${o}.bpf.o`));

// ---- options --------------------------------------------------------------------------------------------

// Replay rounds: nine. On this VM, about one round in five runs at twice its CPU (the host faulting in
// pages it had taken back: system time in the file writes, several thousand more page faults), and the
// others spread by ±10 % (fc-v657, 2026-11-24: 618–722 ns per event in one run, 580–704 in another): with
// five, the median moved by a tenth between runs of the same code. Each round takes ~12 s.
const REPS = Number(arg('--reps') ?? 9);
// Live rounds vary more than replays (the C consumer's own cost per event moved between 311 and 623 ns from
// round to round in earlier runs: wakeups and the other core's interference): five give the median some weight.
const LIVE_REPS = Number(arg('--live-reps') ?? 5);
/** Rounds that also run the stage breakdown. */
const STAGE_REPS = Math.min(REPS, 3);
const SCALE = Number(arg('--scale') ?? 1);
const REUSE = arg('--recording');
const WRITE = !process.argv.includes('--no-write');
/**
 * Events per second of the paced storms: well within what either consumer takes on one core (vigil's replay
 * runs at ~650 k/s, C's at ~3 M/s), so that both are measured keeping up, with nothing lost.
 */
const PACED_RATE = Number(arg('--paced-rate') ?? 300_000);
if (!(REPS >= 1) || !(LIVE_REPS >= 0) || !(SCALE > 0) || !(PACED_RATE > 0)) {
  process.stderr.write('usage: node bench/pipeline.ts [--reps N] [--live-reps N] [--paced-rate N] [--scale X] [--recording DIR] [--no-write]\n');
  process.exit(2);
}
/** Workload rounds recorded (about 1,000 records and 0.1 s each). */
const WORKLOAD_ROUNDS = Math.max(5, Math.round(30 * SCALE));
/**
 * Records replayed per timed round, and passes of warm-up before them (JIT, cache). Functions run once per
 * process (fork, exec, the process parts) reach V8's optimising tier late: after 2 passes, ~200 ms of
 * compiling (69 functions, --trace-opt) still fell in the timed passes; after 20, ~50 ms, mostly the sink's
 * writeBatch and the replay's own feed loop. Those were compiled again: the warm-up fed in one go never let
 * the sink go idle, which the timed part's first write met (4 deoptimisations, --trace-deopt); replay.ts
 * feeds the warm-up in two halves, drained in between, and V8's threads spend ~20 ms less per round.
 */
const REPLAY_RECORDS = Math.max(30_000, Math.round(400_000 * SCALE));
const WARM_PASSES = 20;
/** Length of a live storm (ms), and a bound on its iterations (3 events each). */
const STORM_MS = Math.max(300, Math.round(1500 * SCALE));
const STORM_ITERATIONS = 10_000_000;

/** The consumers own CPU 1, the generator (live) CPU 0: one core each, as the issue asks. */
function pinning(): { gen: number; consumer: number | undefined } {
  if (os.cpus().length < 2) return { gen: -1, consumer: undefined };
  try {
    execFileSync('taskset', ['-c', '1', 'true']);
    return { gen: 0, consumer: 1 };
  } catch {
    return { gen: 0, consumer: undefined };
  }
}
const PIN = pinning();
/** Pages every consumer touches before its measured window (bench/lib/memory.ts), set for the children. */
const PREWARM_BYTES = Math.max(64 << 20, Math.round(SCALE * (1 << 30)));
process.env[PREWARM_ENV] = String(PREWARM_BYTES);

/** vigil's children run with the environment bin/vigil gives the agent (bin/launch.env): as users run it. */
const LAUNCH_ENV = launchEnv();

function pinned(name: string, cmd: string, args: string[], cpu = PIN.consumer, env?: NodeJS.ProcessEnv): BenchChild {
  // taskset execs the command: the pid we hold is the child's own, and every thread it starts inherits the CPU.
  if (cpu !== undefined && cpu >= 0) return new BenchChild(name, 'taskset', ['-c', String(cpu), cmd, ...args], { env });
  return new BenchChild(name, cmd, args, { env });
}

/** A vigil child (replay or agent), pinned, as bin/vigil would start it. */
const pinnedVigil = (name: string, args: string[]): BenchChild => pinned(name, NODE, args, PIN.consumer, { ...process.env, ...LAUNCH_ENV });

// ---- results --------------------------------------------------------------------------------------------

interface ReplayResult {
  records: number;
  events: number;
  wall_s: number;
  utime_s: number;
  stime_s: number;
  bytes: number;
  sink?: { received: number; sent: number; dropped: Record<string, number> };
  bad?: number;
  /** vigil's only (replay.ts): the CPU by thread, ms. */
  threadsMs?: { main: number; v8: number; libuv: number; other: number };
  /** vigil's rules stage only: events the rule engine checked, lost to its full queue, alerts, failed checks. */
  rules?: { received: number; prefiltered: number; dropped: number; alerts: number; errors: number };
  /** vigil's sse stage only: lines the event stream took, lost, and the bytes it wrote. */
  stream?: { delivered: number; dropped: number; bytes: number };
}

interface ReplayMetrics {
  records: number;
  events: number;
  eventsPerS: number;
  /** Events per second of CPU time: what one fully used core would do, whatever else ran on it. */
  eventsPerCpuS: number;
  cpuS: number;
  cpuNsPerEvent: number;
  /** The system-time part: mostly the kernel's copying of the lines into the file. */
  sysNsPerEvent: number;
  coreUse: number;
  bytesPerEvent: number;
  dropped: number;
  /** CPU ns per event on the main thread, V8's workers (GC, compilation) and libuv's pool (file writes); vigil only. */
  mainNsPerEvent: number;
  v8NsPerEvent: number;
  libuvNsPerEvent: number;
}

/** `share`: the timed passes' share of the output file, which holds the warm-up passes' lines too. */
function replayMetrics(r: ReplayResult, bytes: number, share: number): ReplayMetrics {
  const cpuS = r.utime_s + r.stime_s;
  return {
    records: r.records,
    events: r.events,
    eventsPerS: r.events / r.wall_s,
    eventsPerCpuS: r.events / cpuS,
    cpuS,
    cpuNsPerEvent: (cpuS * 1e9) / r.events,
    sysNsPerEvent: (r.stime_s * 1e9) / r.events,
    coreUse: cpuS / r.wall_s,
    bytesPerEvent: (bytes * share) / r.events,
    dropped: r.sink ? Object.values(r.sink.dropped).reduce((a, b) => a + b, 0) : 0,
    mainNsPerEvent: r.threadsMs ? (r.threadsMs.main * 1e6) / r.events : NaN,
    v8NsPerEvent: r.threadsMs ? (r.threadsMs.v8 * 1e6) / r.events : NaN,
    libuvNsPerEvent: r.threadsMs ? (r.threadsMs.libuv * 1e6) / r.events : NaN,
  };
}

interface GenResult {
  iterations: number;
  events: number;
  failed: number;
  start_ns: number;
  end_ns: number;
  elapsed_ns: number;
}

interface LiveMetrics {
  offeredPerS: number;
  expected: number;
  received: number;
  consumed: number;
  consumedPerS: number;
  kernelLost: number;
  /** Lines the consumer's own output dropped (vigil's file sink: queue-full), any process's. */
  sinkDropped: number;
  /** vigil: the reader's passes past the file sink's room (a full ring or a long wait): where sink drops come from. */
  pastRoom?: number;
  missing: number;
  lossFrac: number;
  cpuS: number;
  cpuNsPerEvent: number;
  coreUse: number;
}

function liveMetrics(gen: GenResult, c: { records: number; utime_s: number; stime_s: number; done_ns: number; pastRoom?: number }, received: number, kernelLost: number, sinkDropped = 0): LiveMetrics {
  const span = (Math.max(c.done_ns, gen.end_ns) - gen.start_ns) / 1e9;
  const cpuS = c.utime_s + c.stime_s;
  return {
    offeredPerS: gen.events / (gen.elapsed_ns / 1e9),
    expected: gen.events,
    received,
    consumed: c.records,
    consumedPerS: c.records / span,
    kernelLost,
    sinkDropped,
    pastRoom: c.pastRoom,
    missing: gen.events - received,
    lossFrac: (gen.events - received) / gen.events,
    cpuS,
    cpuNsPerEvent: (cpuS * 1e9) / c.records,
    coreUse: cpuS / span,
  };
}

/** The storm's events in vigil's output: lines of process `pid` whose path or peer is one the storm uses. */
function countStormLines(file: string, pid: number, target: string): number {
  const owner = Buffer.from(`"process":{"pid":${pid},`);
  const marks = [`"path":${JSON.stringify(target)}`, '"path":"/nonexistent/vigil-bench"', '"remoteAddress":"/nonexistent/vigil-bench.sock"'].map((m) => Buffer.from(m));
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(16 << 20);
  let n = 0;
  let carry = 0;
  try {
    for (;;) {
      const got = fs.readSync(fd, buf, carry, buf.length - carry, null);
      const len = carry + got;
      // Whole lines only; the partial last one is carried into the next read.
      const end = got === 0 ? len : buf.lastIndexOf(0x0a, len - 1) + 1;
      const whole = buf.subarray(0, end);
      let i = whole.indexOf(owner);
      while (i >= 0) {
        const eol = whole.indexOf(0x0a, i);
        const stop = eol < 0 ? end : eol;
        const line = whole.subarray(i, stop);
        if (marks.some((m) => line.includes(m))) n++;
        i = whole.indexOf(owner, stop);
      }
      if (got === 0) break;
      if (end === 0) throw new Error(`${file}: a line longer than ${buf.length} bytes`);
      carry = len - end;
      buf.copy(buf, 0, end, len);
    }
  } finally {
    fs.closeSync(fd);
  }
  return n;
}

// ---- runs -----------------------------------------------------------------------------------------------

async function record(dir: string): Promise<{ records: number; seconds: number }> {
  return new BenchChild('recorder', NODE, [RECORD, dir, String(WORKLOAD_ROUNDS)]).report<{ records: number; seconds: number }>(180_000, 30_000);
}

type Stage = 'decode' | 'state' | 'line' | 'full' | 'rules' | 'sse';
/** Each stage adds to the one before it, or to `base`. */
const STAGES: { id: Stage; what: string; base?: Stage }[] = [
  { id: 'decode', what: 'decoders alone (file and network records: checked and copied out, held as bytes, and given back to the arena at once as the pipeline gives them back)' },
  { id: 'state', what: '+ reorder window, process cache, container lookups, counters (nothing enriched)' },
  { id: 'line', what: '+ enrichment and JSON serialisation, the lines written as for the file sink (native/lines.c, a batch at a time, into a scratch buffer) and discarded' },
  { id: 'full', what: '+ the file sink: queue, writes to the file' },
  { id: 'rules', what: '+ the default detection rules (off in every other row): each event of a type a rule is about checked by the rules\' guards on its own members, read from the record\'s bytes as asked for, and the few they let through built as objects, queued for the rule engine and checked, 64 at a time' },
  { id: 'sse', base: 'full', what: "full, and an event stream (GET /v1/events/stream, off in every other row) taking every event: the API's subscriber, given a copy of each line's bytes, SSE records written 256 at a time (to /dev/null)" },
];

/** What the last rules stage's engine did (for the report). */
let rulesChecked: ReplayResult['rules'];
/** What the last sse stage's stream took (for the report). */
let streamed: ReplayResult['stream'];

/** CPU ns per record of one vigil replay stopped at `stage` (replay.ts). */
async function replayStage(dir: string, loops: string, passes: number, out: string, stage: Stage): Promise<number> {
  const child = pinnedVigil(`vigil replay (${stage})`, [REPLAY, dir, loops, String(passes), String(WARM_PASSES), out, stage]);
  try {
    const r = await child.report<ReplayResult>(300_000, 30_000);
    // A rule that fails on the recorded events is a bug in the default rules, and a check lost to the
    // engine's queue is work not measured: either makes the row wrong.
    if (stage === 'rules' && (!r.rules || r.rules.errors || r.rules.dropped || !r.rules.received || !r.rules.prefiltered)) throw new Error(`the rules stage did not check every event: ${JSON.stringify(r.rules)}`);
    if (r.rules) rulesChecked = r.rules;
    // The stream must have taken every event, or the row measures less than a client streaming everything.
    if (stage === 'sse' && (!r.stream || r.stream.dropped || r.stream.delivered !== r.events)) throw new Error(`the sse stage's stream did not take every event: ${JSON.stringify(r.stream)} for ${r.events} events`);
    if (r.stream) streamed = r.stream;
    return ((r.utime_s + r.stime_s) * 1e9) / r.records;
  } finally {
    fs.rmSync(out, { force: true });
  }
}

async function replayVigil(dir: string, loops: string, passes: number, out: string): Promise<ReplayMetrics> {
  const child = pinnedVigil('vigil replay', [REPLAY, dir, loops, String(passes), String(WARM_PASSES), out]);
  try {
    const r = await child.report<ReplayResult>(300_000, 30_000);
    return replayMetrics(r, r.bytes, (passes - WARM_PASSES) / passes);
  } finally {
    fs.rmSync(out, { force: true });
  }
}

/** A baseline that wrote broken JSON would be cheaper than the real thing: its first MiB of lines must parse. */
function checkJsonLines(name: string, file: string): void {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 20);
  const n = fs.readSync(fd, buf, 0, buf.length, 0);
  fs.closeSync(fd);
  const lines = buf.subarray(0, n).toString('utf8').split('\n').slice(0, -1); // the last may be cut
  if (!lines.length) throw new Error(`${name}: wrote no lines`);
  for (const [i, line] of lines.entries()) {
    try {
      JSON.parse(line);
    } catch (err) {
      throw new Error(`${name}: line ${i + 1} is not JSON (${(err as Error).message}): ${line.slice(0, 200)}`);
    }
  }
}

/**
 * The C consumer's replay: its line of raw fields, or, with `snapshot` (its -j mode), the enriched JSON line
 * vigil writes, with the recording's snapshot as the processes it starts from.
 */
async function replayC(loops: string, passes: number, out: string, snapshot?: string): Promise<ReplayMetrics> {
  const mode = snapshot ? ['-j', snapshot] : [];
  const name = snapshot ? 'C JSON replay' : 'C replay';
  const child = pinned(name, C_CONSUMER, [...mode, 'replay', loops, String(passes), String(WARM_PASSES), out]);
  try {
    const r = await child.report<ReplayResult>(300_000, 30_000);
    if (r.bad) throw new Error(`${name}: ${r.bad} records it could not read`);
    if (snapshot) checkJsonLines(name, out);
    return replayMetrics(r, fs.statSync(out).size, (passes - WARM_PASSES) / passes);
  } finally {
    fs.rmSync(out, { force: true });
  }
}

/** A generator ready to storm: as fast as it can, or at `rate` events/s. */
async function storm(target: string, rate = 0): Promise<{ gen: BenchChild; run: () => Promise<GenResult> }> {
  const gen = new BenchChild('generator', GEN, [String(STORM_ITERATIONS), String(STORM_MS), String(PIN.gen), target, String(rate)]);
  const ready = await gen.json<{ pid: number }>(10_000);
  if (ready.pid !== gen.pid) throw new Error(`generator reports pid ${ready.pid}, we started ${gen.pid}`);
  return {
    gen,
    run: async () => {
      gen.send('go\n');
      const g = await gen.json<GenResult>(120_000);
      await gen.exited(10_000);
      if (g.failed) throw new Error(`generator: ${g.failed} calls did not fail or succeed as planned`);
      return g;
    },
  };
}

/**
 * vigil live: a warm-up storm into the fresh agent first (its own generator process), then the measured storm.
 * A long-running agent runs code V8 has compiled already; a storm into a fresh agent also measures V8
 * compiling the hot path (and the pacer, caches and sink settling in). Both are reported: `cold` is the
 * first storm (what a fresh agent costs), `warm` the second, the steady state compared with C. The C
 * consumer has no JIT: its first storm is its steady state. `paced` is a third storm into the same agent, at
 * PACED_RATE.
 */
async function liveVigil(out: string, target: string): Promise<{ cold: LiveMetrics; warm: LiveMetrics; paced: LiveMetrics }> {
  const agent = pinnedVigil('vigil agent', [AGENT, out]);
  const gens: BenchChild[] = [];
  type AgentReport = { records: number; events: number; pastRoom: number; utime_s: number; stime_s: number; done_ns: number; kernel: { reserveFailed: number }; sink: { dropped: Record<string, number> } };
  // Lines the file sink dropped (queue-full: the disk or the CPU fell behind) are lost too: counted apart,
  // and missing from the output, so expected − received includes them.
  const sinkDropped = (a: AgentReport) => Object.values(a.sink.dropped ?? {}).reduce((x, y) => x + y, 0);
  try {
    await agent.json(120_000);
    const s0 = await storm(target);
    gens.push(s0.gen);
    const g0 = await s0.run();
    agent.signal('SIGUSR2');
    const a0 = await agent.json<AgentReport & { warm: true }>(120_000);
    const s = await storm(target);
    gens.push(s.gen);
    const g = await s.run();
    agent.signal('SIGUSR2');
    const a = await agent.json<AgentReport & { warm: true }>(120_000);
    const sp = await storm(target, PACED_RATE);
    gens.push(sp.gen);
    const gp = await sp.run();
    agent.signal('SIGTERM');
    const ap = await agent.json<AgentReport>(120_000);
    await agent.exited(60_000);
    return {
      cold: liveMetrics(g0, a0, countStormLines(out, s0.gen.pid, target), a0.kernel.reserveFailed, sinkDropped(a0)),
      warm: liveMetrics(g, a, countStormLines(out, s.gen.pid, target), a.kernel.reserveFailed, sinkDropped(a)),
      paced: liveMetrics(gp, ap, countStormLines(out, sp.gen.pid, target), ap.kernel.reserveFailed, sinkDropped(ap)),
    };
  } finally {
    for (const gen of gens) await gen.kill();
    await agent.kill();
    fs.rmSync(out, { force: true });
  }
}

/**
 * The C consumer on the live ring: its line of raw fields, or, with `snapshot` (-j), vigil's enriched JSON
 * line, its process cache seeded from /proc as read just before it starts (as vigil's agent seeds its own).
 */
async function liveC(out: string, pin: string, target: string, snapshot?: string, rate = 0): Promise<LiveMetrics> {
  const host = new BenchChild('sensor host', NODE, [HOST, pin]);
  let cons: BenchChild | undefined;
  let gen: BenchChild | undefined;
  try {
    await host.json(120_000);
    const s = await storm(target, rate);
    gen = s.gen;
    if (snapshot) writeSnapshotTsv(takeSnapshot(), snapshot);
    const name = snapshot ? 'C consumer (JSON)' : 'C consumer';
    cons = pinned(name, C_CONSUMER, [...(snapshot ? ['-j', snapshot] : []), 'ring', pin, out, String(gen.pid)]);
    await cons.json(30_000);
    const g = await s.run();
    cons.signal('SIGTERM');
    const c = await cons.json<{ records: number; gen: number; utime_s: number; stime_s: number; done_ns: number; bad: number }>(60_000);
    await cons.exited(30_000);
    host.signal('SIGTERM');
    const k = await host.json<{ emitted: number; reserveFailed: number }>(30_000);
    await host.exited(30_000);
    if (c.bad) throw new Error(`${name}: ${c.bad} records it could not read`);
    if (snapshot) checkJsonLines(name, out);
    return liveMetrics(g, c, c.gen, k.reserveFailed);
  } finally {
    await gen?.kill();
    await cons?.kill();
    await host.kill();
    fs.rmSync(out, { force: true });
    fs.rmSync(pin, { force: true });
    if (snapshot) fs.rmSync(snapshot, { force: true });
  }
}

// ---- main -----------------------------------------------------------------------------------------------

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('bench/pipeline needs root (it loads BPF programs)');
  for (const f of [C_CONSUMER, GEN, ...OBJECTS]) {
    if (!fs.existsSync(f)) throw new Error(`${path.relative(ROOT, f)} is missing: run make build first`);
  }
}

function describeMix(meta: RecordingMeta): string {
  const total = Object.values(meta.byType).reduce((a, b) => a + b, 0);
  return Object.entries(meta.byType)
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `${t} ${percent(n / total, 1)}`)
    .join(', ');
}

async function main(): Promise<void> {
  killChildrenOnExit();
  preflight();
  const t0 = Date.now();
  const load0 = os.loadavg();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-pipeline-'));
  try {
    // 1. the recording
    const recDir = REUSE ?? path.join(tmp, 'recording');
    if (!REUSE) {
      process.stderr.write(`bench/pipeline: recording ${WORKLOAD_ROUNDS} rounds of bench/pipeline/workload.sh through the real sensors\n`);
      await record(recDir);
    }
    const { meta, records } = readRecording(recDir);
    if (meta.records === 0) throw new Error(`${recDir}: the recording is empty`);
    const timedPasses = Math.max(1, Math.ceil(REPLAY_RECORDS / meta.records));
    const passes = WARM_PASSES + timedPasses;
    const loops = path.join(tmp, 'loops.bin');
    writeLoops(meta, records, passes, loops);
    const snapshotTsv = path.join(tmp, 'snapshot.tsv');
    writeSnapshotTsv(meta.snapshot, snapshotTsv);
    process.stderr.write(
      `  ${meta.records} records (${describeMix(meta)}), ${fixed(meta.bytes / meta.records, 0)} bytes each on average; replayed ${timedPasses} + ${WARM_PASSES} warm-up passes per round\n`,
    );
    // 2. replay rounds
    const vr: ReplayMetrics[] = [];
    const cr: ReplayMetrics[] = [];
    const cjr: ReplayMetrics[] = [];
    const stages = new Map<Stage, number[]>(STAGES.map((st) => [st.id, []]));
    const warnings: string[] = [];
    process.stderr.write(`  replay: ${REPS} rounds of vigil, C on CPU ${PIN.consumer ?? 'any'}\n`);
    for (let rep = 0; rep < REPS; rep++) {
      const v = await replayVigil(recDir, loops, passes, path.join(tmp, 'vigil.jsonl'));
      const c = await replayC(loops, passes, path.join(tmp, 'c.txt'));
      const cj = await replayC(loops, passes, path.join(tmp, 'c.jsonl'), snapshotTsv);
      vr.push(v);
      cr.push(c);
      cjr.push(cj);
      // Where the time goes: the same replay stopped after each stage (the full one is v itself), in the
      // first rounds only, to keep the benchmark short.
      for (const st of rep < STAGE_REPS ? STAGES : []) {
        const ns = st.id === 'full' ? (v.cpuS * 1e9) / v.records : await replayStage(recDir, loops, passes, path.join(tmp, 'stage.jsonl'), st.id);
        stages.get(st.id)!.push(ns);
      }
      if (v.dropped) warnings.push(`replay round ${rep + 1}: vigil's file sink dropped ${v.dropped} lines`);
      process.stderr.write(
        `  round ${rep + 1} replay  vigil ${si(v.eventsPerS)} events/s, ${fixed(v.cpuNsPerEvent, 0)} ns/event   C ${si(c.eventsPerS)} events/s, ${fixed(c.cpuNsPerEvent, 0)} ns/event   C JSON ${fixed(cj.cpuNsPerEvent, 0)} ns/event\n`,
      );
    }

    // 3. live rounds
    const vl: LiveMetrics[] = [];
    const vlc: LiveMetrics[] = [];
    const cl: LiveMetrics[] = [];
    const cjl: LiveMetrics[] = [];
    const vlp: LiveMetrics[] = [];
    const clp: LiveMetrics[] = [];
    const target = path.join(tmp, 'vigil-bench-target');
    fs.writeFileSync(target, 'opened by the live generator\n');
    const pin = `/sys/fs/bpf/vigil-bench-pipeline-${process.pid}`;
    for (let rep = 0; rep < LIVE_REPS; rep++) {
      const { cold, warm: v, paced: vp } = await liveVigil(path.join(tmp, 'live-vigil.jsonl'), target);
      const c = await liveC(path.join(tmp, 'live-c.txt'), pin, target);
      const cj = await liveC(path.join(tmp, 'live-c.jsonl'), pin, target, path.join(tmp, 'live-snapshot.tsv'));
      const cp = await liveC(path.join(tmp, 'live-c-paced.txt'), pin, target, undefined, PACED_RATE);
      vl.push(v);
      vlc.push(cold);
      cl.push(c);
      cjl.push(cj);
      vlp.push(vp);
      clp.push(cp);
      for (const [who, m] of [['vigil', v], ['cold', cold], ['C', c], ['C JSON', cj], ['vigil paced', vp], ['C paced', cp]] as const) {
        process.stderr.write(
          `  round ${rep + 1} live    ${who.padEnd(11)} offered ${si(m.offeredPerS)}/s, consumed ${si(m.consumedPerS)}/s, loss ${percent(m.lossFrac, 3)} (kernel ${m.kernelLost}, sink ${m.sinkDropped}${m.pastRoom ? ` in ${m.pastRoom} passes past its room` : ''}), ${fixed(m.cpuNsPerEvent, 0)} ns/event\n`,
        );
      }
    }
    const elapsedS = (Date.now() - t0) / 1000;
    const load1 = os.loadavg();
    const body = report({ meta, timedPasses, vr, cr, cjr, vl, vlc, cl, cjl, vlp, clp, stages, warnings, elapsedS, load0, load1, reused: REUSE !== undefined });
    process.stdout.write(`\n${body}\n`);
    if (WRITE) {
      const file = writeSection('pipeline', body, { title: 'pipeline: enriched events per second, recorded and live, against a C consumer', command: 'npm run bench:pipeline' });
      process.stderr.write(`\nwrote ${path.relative(ROOT, file)} (section pipeline)\n`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---- report ---------------------------------------------------------------------------------------------

interface ReportInput {
  meta: RecordingMeta;
  timedPasses: number;
  vr: ReplayMetrics[];
  cr: ReplayMetrics[];
  /** The C consumer writing vigil's enriched JSON line (-j). */
  cjr: ReplayMetrics[];
  /** vigil's measured storm, after a warm-up storm into the same agent. */
  vl: LiveMetrics[];
  /** vigil's warm-up storm: the first one into a fresh agent. */
  vlc: LiveMetrics[];
  cl: LiveMetrics[];
  /** The C consumer writing vigil's enriched JSON line live (-j, seeded from /proc at its start). */
  cjl: LiveMetrics[];
  /** vigil's third storm, paced at PACED_RATE, into the same agent. */
  vlp: LiveMetrics[];
  /** The C consumer on a storm paced at PACED_RATE. */
  clp: LiveMetrics[];
  stages: Map<Stage, number[]>;
  warnings: string[];
  elapsedS: number;
  load0: number[];
  load1: number[];
  reused: boolean;
}

function report(r: ReportInput): string {
  const med = <T>(xs: T[], k: keyof T) => median(xs.map((x) => x[k] as number));
  const paired = <T>(a: T[], b: T[], k: keyof T) => median(a.map((x, i) => (x[k] as number) / (b[i]![k] as number)));
  const ratio = paired(r.vr, r.cr, 'cpuNsPerEvent');
  const vRate = med(r.vr, 'eventsPerS');
  const vCapacity = med(r.vr, 'eventsPerCpuS');

  const replayRows = [
    ['vigil', 'agent pipeline + file sink, JSON lines', si(med(r.vr, 'events')), si(vRate), si(vCapacity), fixed(med(r.vr, 'cpuS'), 3), fixed(med(r.vr, 'cpuNsPerEvent'), 0), percent(med(r.vr, 'coreUse'), 0), fixed(med(r.vr, 'bytesPerEvent'), 0), `×${fixed(ratio)}`],
    ['C', 'fprintf of the main fields, a line per record', si(med(r.cr, 'events')), si(med(r.cr, 'eventsPerS')), si(med(r.cr, 'eventsPerCpuS')), fixed(med(r.cr, 'cpuS'), 3), fixed(med(r.cr, 'cpuNsPerEvent'), 0), percent(med(r.cr, 'coreUse'), 0), fixed(med(r.cr, 'bytesPerEvent'), 0), '1.00'],
    ['C, JSON', "vigil's enriched JSON line by hand (-j): like for like", si(med(r.cjr, 'events')), si(med(r.cjr, 'eventsPerS')), si(med(r.cjr, 'eventsPerCpuS')), fixed(med(r.cjr, 'cpuS'), 3), fixed(med(r.cjr, 'cpuNsPerEvent'), 0), percent(med(r.cjr, 'coreUse'), 0), fixed(med(r.cjr, 'bytesPerEvent'), 0), `×${fixed(paired(r.cjr, r.cr, 'cpuNsPerEvent'))}`],
  ];
  const liveRows = r.vl.length
    ? (
        [
          ['vigil', 'the Agent + file sink, after a warm-up storm (steady state)', r.vl],
          ['vigil, cold', 'the same agent, its first storm (the warm-up)', r.vlc],
          ['C', 'C consumer on the same sensors', r.cl],
          ['C, JSON', "the same, writing vigil's enriched JSON line (-j)", r.cjl],
          ['vigil, paced', `the same agent, a third storm paced at ${si(PACED_RATE)} events/s`, r.vlp],
          ['C, paced', `the C consumer, the storm paced at ${si(PACED_RATE)} events/s`, r.clp],
        ] as const
      ).map(([who, what, m]) => [
        who,
        what,
        si(med(m, 'offeredPerS')),
        si(med(m, 'consumedPerS')),
        fixed(med(m, 'expected'), 0),
        fixed(med(m, 'received'), 0),
        fixed(med(m, 'kernelLost'), 0),
        fixed(med(m, 'sinkDropped'), 0),
        fixed(med(m, 'missing'), 0),
        percent(med(m, 'lossFrac'), 3),
        percent(Math.max(...m.map((x) => x.lossFrac)), 3),
        fixed(med(m, 'cpuNsPerEvent'), 0),
        percent(med(m, 'coreUse'), 0),
        // Paced rows against the paced C consumer, the others against the unpaced one.
        who === 'C' || who === 'C, paced' ? '1.00' : `×${fixed(paired(m, who === 'vigil, paced' ? r.clp : r.cl, 'cpuNsPerEvent'))}`,
      ])
    : [];

  // Stage costs: medians per stage, then what each adds over the one before (within a round, then the median).
  let prev: number[] | undefined;
  const stageRows = STAGES.map((st) => {
    const xs = r.stages.get(st.id)!;
    const base = st.base ? r.stages.get(st.base)! : prev;
    const added = base ? median(xs.map((x, i) => x - base[i]!)) : median(xs);
    prev = xs;
    return [st.id, st.what, fixed(median(xs), 0), fixed(added, 0)];
  });
  stageRows.push(['C', 'the C consumer, whole (for comparison)', fixed(med(r.cr, 'cpuNsPerEvent'), 0), '–']);
  // The full replay's CPU by thread (/proc/self/task/*/schedstat over the timed window, bench/lib/threads.ts).
  const byThread = `The full replay's CPU by thread, per event: ${fixed(med(r.vr, 'mainNsPerEvent'), 0)} ns on the main thread (the pipeline and the sink's queue), ${fixed(med(r.vr, 'libuvNsPerEvent'), 0)} ns on libuv's pool (the file writes, nearly all of it the kernel copying lines into the page cache), ${fixed(med(r.vr, 'v8NsPerEvent'), 0)} ns on V8's workers (concurrent marking, parallel scavenges).`;

  const verdicts: string[] = [];
  const ok1 = vRate >= 500e3;
  let t1 = `**At least 500 k enriched events/s on one core: ${ok1 ? 'met' : 'NOT met'}.** Recorded replay: ${si(vRate)} events/s (wall clock, one pinned core), ${si(vCapacity)} per CPU-second of that core (${fixed(med(r.vr, 'cpuNsPerEvent'), 0)} ns of CPU per event)`;
  if (r.vl.length) {
    const vLoss = med(r.vl, 'lossFrac');
    t1 += `. Live: the storm offered ${si(med(r.vl, 'offeredPerS'))} events/s from one core; vigil consumed ${si(med(r.vl, 'consumedPerS'))}/s at ${percent(vLoss, 3)} loss, using ${percent(med(r.vl, 'coreUse'), 0)} of its core (${fixed(med(r.vl, 'cpuNsPerEvent'), 0)} ns per event)`;
    const why = [med(r.vl, 'kernelLost') > 0 ? `the ring overflowed (${fixed(med(r.vl, 'kernelLost'), 0)} records lost in the kernel)` : '', med(r.vl, 'sinkDropped') > 0 ? `the file sink's queue overflowed (${fixed(med(r.vl, 'sinkDropped'), 0)} lines dropped, counted)` : ''].filter(Boolean);
    t1 += vLoss > 0.001 ? `: it fell behind the generator: ${why.join(' and ') || 'events are missing from the output'}` : med(r.vl, 'coreUse') < 0.9 ? ': it kept up; the generator, not the consumer, set the rate' : '';
    // Every storm whose file sink dropped lines, with the reader's passes past the sink's room: a pass the
    // ring's fill or a long wait forced (ARCHITECTURE.md), or none (the sink fell behind on its own).
    const sinkDrops = [...r.vlc.map((m, i) => ({ m, what: `the cold storm of round ${i + 1}` })), ...r.vl.map((m, i) => ({ m, what: `the steady storm of round ${i + 1}` }))].filter((x) => x.m.sinkDropped > 0);
    if (sinkDrops.length) t1 += `. The file sink dropped lines (queue-full, counted) in ${sinkDrops.map((x) => `${x.what}: ${x.m.sinkDropped}, with ${x.m.pastRoom ?? 0} reader passes past its room`).join('; ')}`;
  }
  verdicts.push(`${t1}.`);
  // Met only if both settings are: the replay (no ring, no wakeups: the pipeline's own cost) and live. Live,
  // on the paced storms: the unpaced one runs vigil past its limit (it loses events, counted) and C within
  // its own, so its ratio mixes overload into CPU per event; it is reported too.
  const liveRatio = r.vl.length ? paired(r.vl, r.cl, 'cpuNsPerEvent') : undefined;
  const pacedRatio = r.vlp.length ? paired(r.vlp, r.clp, 'cpuNsPerEvent') : undefined;
  const ok2 = ratio <= 3 && (pacedRatio === undefined || pacedRatio <= 3);
  let t2 = `**CPU per event within 3× of the C consumer's, replayed and live: ${ok2 ? 'met' : 'NOT met'}.** Replay: vigil ÷ C = ${fixed(ratio)} (${fixed(med(r.vr, 'cpuNsPerEvent'), 0)} against ${fixed(med(r.cr, 'cpuNsPerEvent'), 0)} ns per event)`;
  if (pacedRatio !== undefined) {
    t2 += `; live, paced at ${si(PACED_RATE)} events/s, which both keep up with (loss: vigil ${percent(med(r.vlp, 'lossFrac'), 3)}, C ${percent(med(r.clp, 'lossFrac'), 3)}): ${fixed(pacedRatio)} (${fixed(med(r.vlp, 'cpuNsPerEvent'), 0)} against ${fixed(med(r.clp, 'cpuNsPerEvent'), 0)} ns; per round ${r.vlp.map((v, i) => fixed(v.cpuNsPerEvent / r.clp[i]!.cpuNsPerEvent)).join(', ')}; vigil used ${percent(med(r.vlp, 'coreUse'), 0)} of its core, C ${percent(med(r.clp, 'coreUse'), 0)})`;
  }
  if (liveRatio !== undefined) {
    // Live, the ring and its wakeups weigh more than the line: say how far apart the two C lines came out.
    const lineNs = (xs: { cpuNsPerEvent: number }[], ys: { cpuNsPerEvent: number }[]) => fixed(median(xs.map((x, i) => x.cpuNsPerEvent - ys[i]!.cpuNsPerEvent)), 0);
    const rounds = r.vl.map((v, i) => fixed(v.cpuNsPerEvent / r.cl[i]!.cpuNsPerEvent)).join(', ');
    t2 += `; live, the unpaced storm, in steady state (vigil at its limit, C not): ${fixed(liveRatio)} (${fixed(med(r.vl, 'cpuNsPerEvent'), 0)} against ${fixed(med(r.cl, 'cpuNsPerEvent'), 0)} ns; per round ${rounds}, the C consumer ${fixed(Math.min(...r.cl.map((c) => c.cpuNsPerEvent)), 0)}–${fixed(Math.max(...r.cl.map((c) => c.cpuNsPerEvent)), 0)} ns; vigil ÷ C JSON live: ${fixed(paired(r.vl, r.cjl, 'cpuNsPerEvent'))}; the C consumer's JSON line minus its plain line, per event: ${lineNs(r.cjl, r.cl)} ns live (median of the rounds' differences; below zero, the rounds' noise is larger than the difference), ${lineNs(r.cjr, r.cr)} ns in the replay); a fresh agent's first storm: ${fixed(paired(r.vlc, r.cl, 'cpuNsPerEvent'))} (${fixed(med(r.vlc, 'cpuNsPerEvent'), 0)} ns: V8 compiling the hot path as it runs, the pacer and caches settling in)`;
  }
  t2 += `. The two do not write the same thing: vigil writes the enriched JSON event (${fixed(med(r.vr, 'bytesPerEvent'), 0)} bytes per line: process, parent, ancestry, user, flags by name), the C consumer a line of raw fields (${fixed(med(r.cr, 'bytesPerEvent'), 0)} bytes)`;
  // Not the target's baseline (that stays the C consumer above): how much of the gap is what vigil writes.
  t2 += `. Like for like, against the same C consumer writing vigil's enriched JSON line by hand (-j, ${fixed(med(r.cjr, 'bytesPerEvent'), 0)} bytes per line, ${fixed(med(r.cjr, 'cpuNsPerEvent'), 0)} ns per event, of which ${fixed(med(r.cjr, 'sysNsPerEvent'), 0)} ns in the kernel's writes), vigil ÷ C JSON = ${fixed(paired(r.vr, r.cjr, 'cpuNsPerEvent'))}`;
  t2 += `. Per record, vigil spends ${stageRows.slice(0, 4).map((row) => `${row[3]} ns ${row[0] === 'decode' ? 'decoding' : row[0] === 'state' ? 'on state (reorder, process cache, lookups)' : row[0] === 'line' ? 'on enrichment and JSON' : 'in the file sink'}`).join(', ')}; the C consumer ${fixed(med(r.cr, 'cpuNsPerEvent'), 0)} ns on everything`;
  verdicts.push(`${t2}.`);

  const m = r.meta;
  const notes = [
    `Recording: ${r.reused ? 'reused' : 'made in this run'}: ${m.workload.rounds} rounds of \`${m.workload.script}\` (short-lived tools, header reads, file changes, local HTTP, git, tar) in ${fixed(m.workload.seconds, 1)} s, through the process, cgroup and syscall sensors with every file and network event type on: ${m.records} records of the workload's process tree (${describeMix(m)}), ${fixed(m.bytes / m.records, 0)} bytes per record; ${m.others} records of other processes on the machine were left out; the kernel lost ${m.kernel.reserveFailed}. Process cache seeded from the ${m.snapshot.length}-process /proc snapshot taken when the sensors attached.`,
    `Replay: each round replays ${r.timedPasses} passes of the recording (${si(med(r.vr, 'records'))} records) after ${WARM_PASSES} warm-up passes (so that V8 has compiled the hot path: see WARM_PASSES), fed in two halves and drained after each as the timed passes are (so that the compiled code has seen the sink go idle and start again, as an agent's has after its first seconds, and is not thrown away and compiled again inside the timed part), each pass moved later in time so that processes born during the recording are new processes again (new identities, fork/exec/exit through the cache). vigil: \`bench/pipeline/replay.ts\`, the agent's decoders, reorder window, process cache (with the scrubber), user names, container resolver over this machine's cgroups, router and the file sink, fed in batches of 1,024 records per event-loop turn as the ring reader's drains do; timed from the first record to the file sink having written everything. C: \`bench/c/pipeline_consumer.c\`, the same bytes. C JSON: the same program with -j: per event, a JSON line as vigil's (type, ISO time, ktime, the process with key, execId, start, comm, exe, argv, uid, gid and user name, the parent with its exe, argv and execId, the ancestry, the syscall by name, errno and open flags by name), the process parts rendered once per process from fork and exec records and a snapshot file written from the recording's /proc snapshot, strings escaped by hand, one fwrite per line into a 1 MiB stdio buffer; it does not reorder, scrub, look up containers, track credential changes or check UTF-8, so it is a floor for vigil's work rather than the same work. All pinned to CPU ${PIN.consumer ?? 'any'}; CPU is user + system time of the whole process (libuv's writer threads included). vigil's replays and its live agent run with the environment bin/vigil starts the agent with (bin/launch.env: ${describeLaunchEnv(LAUNCH_ENV)}).`,
    `Live: \`bench/c/pipeline_gen.c\` (${fixed(STORM_MS / 1000, 1)} s of iterations of 3 events: open, failed open, failed connect) on CPU ${PIN.gen}, the consumer on CPU ${PIN.consumer ?? 'any'}. vigil: the Agent with this configuration and a file sink (\`bench/pipeline/agent.ts\`), given a warm-up storm first (the same, from another generator process), then measured on a second storm, counts and CPU taken again from the warm-up's end: an agent runs for days, on code V8 compiled in its first seconds; the warm-up's own figures are the "cold" row; C: the consumer reading the ring of the same sensors, loaded and pinned by \`bench/pipeline/host.ts\`, with vigil's wakeup policy (1 ms drains); C JSON: the same with -j, its process parts seeded from a /proc snapshot read just before it starts. Paced: a third storm into the same agent, and a storm for another C consumer, at ${si(PACED_RATE)} events/s (the generator sleeps to its schedule every 64 iterations). Loss: the kernel's failed reservations, and expected − received for the generator's events (counted in the output). Consumed/s and CPU count every record, the machine's other activity included.`,
    `Memory: before its measured window every consumer (vigil and C, replay and live) writes and deletes a ${Math.round(PREWARM_BYTES / 2 ** 20)} MiB scratch file next to its output (\`bench/lib/memory.ts\`), so that the pages it is about to fill are backed by the host. ${freePageReporting() ? 'This VM reports free pages to its host (virtio-balloon free page reporting): a page freed seconds before, as the previous run\'s deleted output was, costs a host fault of about 10 µs when used again, which in earlier runs added up to 900 ns of system time per event to a vigil replay at random (395 MB written per round) and far less to the C consumer (60 MB).' : 'This machine does not report free pages to a host, so it changes little here.'}`,
    `Machine load: 1/5/15-min load average ${r.load0.map((x) => fixed(x)).join(' / ')} at start, ${r.load1.map((x) => fixed(x)).join(' / ')} at end on ${os.cpus().length} CPUs. Other work on the consumer's core lowers the wall-clock rate much more than the CPU per event (events per CPU-second is closer to what a quiet core gives); live, the sensors also report the other processes' syscalls, which the consumers must take too. The stage breakdown comes from the first ${STAGE_REPS} rounds. The whole benchmark took ${fixed(r.elapsedS, 0)} s.`,
  ];
  const rulesRow = stageRows.find((row) => row[0] === 'rules');
  if (rulesRow && rulesChecked) {
    notes.push(
      `Rules: the rules stage loads the default rule set (\`src/rules/default.yaml\`) as \`vigil run\` does, into the agent's rule engine, a subscriber of the router. Of ${si(med(r.vr, 'records'))} records per round, ${si(rulesChecked.received + rulesChecked.prefiltered)} (${fixed((100 * (rulesChecked.received + rulesChecked.prefiltered)) / med(r.vr, 'records'), 0)} %) were of a type some rule is about (every open, rename, unlink, … and exec). The rules' guards (src/rules/prefilter.ts: each condition's top-level conjuncts that read only the event's own members) turned ${si(rulesChecked.prefiltered)} of them down on those members alone, each read from the held record's bytes as the guard asked for it (src/pipeline/record-members.ts), before anything was decoded or built; the other ${si(rulesChecked.received)} (the execs, whose rules are about the process, and the opens a guard let through) were built as event objects beside their lines and checked by the rules of their type (64 events at a time, between two events of the pipeline; each condition one generated JavaScript function): ${rulesChecked.alerts} alerts, ${rulesChecked.errors} failed checks, ${rulesChecked.dropped} lost to the engine's queue. They add ${rulesRow[3]} ns per record to the full replay. The rows above have rules off (bench/pipeline/config.ts): the C consumer has no counterpart for them.`,
    );
  }
  const sseRow = stageRows.find((row) => row[0] === 'sse');
  if (sseRow && streamed) {
    notes.push(
      `Event stream: the sse stage subscribes one client to every event as \`GET /v1/events/stream\` does (\`subscribeStream\`, src/api/stream.ts): a subscriber of lines, not of event objects, given a copy of the bytes of the line the file sink got, 256 lines per write of SSE records (${si(streamed.delivered)} lines, ${fixed(streamed.bytes / Math.max(1, streamed.delivered), 0)} bytes each, ${streamed.dropped} lost). It adds ${sseRow[3]} ns per record to the full replay. Until this stop a stream took event objects, built for it beside each line, then serialised again with JSON.stringify, delivered once per event-loop turn: the same replay took ~5 µs more per event then (2.9–3.3 s per round, 2.3–2.4 s of it on the main thread, against 0.76–0.88 s and 0.61–0.65 s with this subscriber; 3 runs each, same host, same recording).`,
    );
  }
  if (r.warnings.length) notes.push(`Warnings: ${r.warnings.join('; ')}.`);

  return [
    'Recorded real records, replayed through the whole pipeline on one core:',
    '',
    markdownTable(['consumer', 'what', 'events/round', 'events/s', 'events/CPU-s', 'CPU s', 'CPU ns/event', 'core use', 'bytes/event', 'CPU/event ÷ C'], replayRows),
    '',
    'Where vigil\'s time goes: the same replay stopped after each stage, then with the default rules on (CPU per record, one core):',
    '',
    markdownTable(['stage', 'what runs', 'CPU ns/record', 'added by the stage'], stageRows),
    '',
    byThread,
    '',
    ...(liveRows.length
      ? [
          'Live syscall storm through the real sensors:',
          '',
          markdownTable(['consumer', 'what', 'offered/s', 'consumed/s', 'expected', 'received', 'lost (kernel)', 'dropped (sink)', 'lost (expected − received)', 'loss', 'worst loss', 'CPU ns/event', 'core use', 'CPU/event ÷ C'], liveRows),
          '',
        ]
      : []),
    ...verdicts.map((v) => `- ${v}`),
    '',
    ...notes.map((n) => `- ${n}`),
  ].join('\n');
}

try {
  await main();
} catch (err) {
  await killAll();
  process.stderr.write(`bench/pipeline failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
