// bench/exec: what an exec storm costs with vigil attached (process sensor, cache, enrichment, JSON lines to a
// file), against no agent and against libbpf-tools' execsnoop, in alternating runs; and how much memory the
// agent holds with many live processes and after a million exec/exit cycles.
//
// Storm (20,000 fork+exec+wait of /bin/true, sequential, then over 2 parallel workers), per round:
//   none       the storm alone (the baseline)
//   vigil      the storm with bench/exec/agent.ts attached: ProcessResolver (BPF) → enrich → JSON file
//   execsnoop  the storm with libbpf-tools' execsnoop writing to a file
// Memory:
//   herd       10,000 live sleeping processes (bench/c/proc_herd.c), then the agent starts: RSS and cache size;
//              again with Node's compile cache and a small young generation (what a launcher could set)
//   baseline   Node alone, and Node with the agent's modules loaded (type-stripped, or from the compile cache)
//   wake       the CPU of one empty wakeup of Node's event loop (bench/exec/wake.ts), for the attribution
//   churn      1 M synthetic fork/exec/exit cycles through the agent's record path (bench/exec/churn.ts):
//              RSS and heap after warm-up and at the end, and the path's cost per record
//
// usage: node bench/exec.ts [--reps N] [--scale X] [--no-write]
//   --scale multiplies the exec count, the herd and the churn cycles (0.1 for a quick check).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLaunchEnv, launchEnv } from './lib/launch.ts';
import { BenchChild, killAll, killChildrenOnExit } from './lib/proc.ts';
import { ROOT, fixed, markdownTable, median, percent, si, writeSection } from './lib/report.ts';
import { BENCH_ENV, MARKER, benchEnv } from './exec/output.ts';
import { WOKEN_MAX_DELAY_MS } from '../src/ringbuf/ringbuf.ts';
import { arg } from './lib/args.ts';

const STORM = path.join(ROOT, 'build/bench/exec_storm');
const HERD = path.join(ROOT, 'build/bench/proc_herd');
const SENSOR_OBJ = path.join(ROOT, 'build/bpf/process.bpf.o');
const AGENT = path.join(ROOT, 'bench/exec/agent.ts');
const CHURN = path.join(ROOT, 'bench/exec/churn.ts');
const BASELINE = path.join(ROOT, 'bench/exec/baseline.ts');
const WAKE = path.join(ROOT, 'bench/exec/wake.ts');
// Every agent here runs with bin/launch.env's environment, as bin/vigil starts it. bin/vigil also turns on
// Node's compile cache; the storms run without it (it changes start-up and memory, not the per-exec path)
// and the herd is measured both ways.
const LAUNCH_ENV = launchEnv();
const LAUNCH_DESC = describeLaunchEnv(LAUNCH_ENV);

// ---- options --------------------------------------------------------------------------------------------

const REPS = Number(arg('--reps') ?? 3);
const SCALE = Number(arg('--scale') ?? 1);
const WRITE = !process.argv.includes('--no-write');
if (!(REPS >= 1) || !(SCALE > 0)) {
  process.stderr.write('usage: node bench/exec.ts [--reps N] [--scale X] [--no-write]\n');
  process.exit(2);
}
const EXECS = Math.max(1000, Math.round(20_000 * SCALE));
const HERD_N = Math.max(500, Math.round(10_000 * SCALE));
/** Execs run before each measured storm, with the consumer attached: a long-running agent is past its JIT warm-up. */
const WARM_EXECS = Math.max(1000, Math.round(EXECS / 10));
const CYCLES = Math.max(20_000, Math.round(1_000_000 * SCALE));
const WARMUP = Math.max(5_000, Math.round(CYCLES / 10));

type Consumer = 'none' | 'vigil' | 'execsnoop';
const CONSUMERS: Consumer[] = ['none', 'vigil', 'execsnoop'];
const MODES = [
  { id: 'seq', what: 'sequential', workers: 1 },
  { id: 'par2', what: '2 parallel workers', workers: 2 },
] as const;
type ModeId = (typeof MODES)[number]['id'];

// ---- /proc helpers ----------------------------------------------------------------------------------------

/** On-CPU time of every thread of `pid` (ns, from schedstat), or NaN when it is gone. */
function cpuNs(pid: number): number {
  try {
    let ns = 0;
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      const f = fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8');
      ns += Number(f.split(' ')[0]);
    }
    return ns;
  } catch {
    return NaN;
  }
}

/** utime + stime of `pid` in seconds, from /proc/<pid>/stat (clock ticks), or NaN. */
function statCpuS(pid: number): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // fields 14 and 15; USER_HZ = 100
  } catch {
    return NaN;
  }
}

/** The syscall a process is blocked in (number), or -1. */
function blockedIn(pid: number): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').trim();
    return s === 'running' ? -1 : Number(s.split(' ')[0]);
  } catch {
    return -1;
  }
}
// x86-64: poll 7, epoll_wait 232, epoll_pwait 281, epoll_pwait2 441. aarch64: ppoll 73, epoll_pwait 22.
const WAIT_SYSCALLS = process.arch === 'arm64' ? new Set([22, 73, 441]) : new Set([7, 232, 281, 441]);

/** RSS split from /proc/<pid>/status and smaps: anonymous, file-backed, and the BPF ring's mapping. */
function rssBreakdown(pid: number): { rss: number; anon: number; file: number; bpfMaps: number } {
  const out = { rss: NaN, anon: NaN, file: NaN, bpfMaps: 0 };
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st)?.[1]) * 1024;
    out.rss = kb('VmRSS');
    out.anon = kb('RssAnon');
    out.file = kb('RssFile');
    let inBpf = false;
    for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inBpf = line.includes('anon_inode:bpf-map');
      else if (inBpf && line.startsWith('Rss:')) out.bpfMaps += Number(line.split(/\s+/)[1]) * 1024;
    }
  } catch {
    // gone: NaNs say so
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Where Debian's libbpf-tools put execsnoop (dpkg -L), else PATH. */
function findExecsnoop(): string {
  try {
    const files = execFileSync('dpkg', ['-L', 'libbpf-tools'], { encoding: 'utf8' }).split('\n');
    const hit = files.find((f) => /\/s?bin\/execsnoop$/.test(f) && fs.existsSync(f));
    if (hit) return hit;
  } catch {
    // not a Debian system, or not installed: try PATH
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const f = path.join(dir, 'execsnoop');
    if (fs.existsSync(f)) return f;
  }
  throw new Error('execsnoop not found: install libbpf-tools (make debs-test)');
}

// ---- one storm run ------------------------------------------------------------------------------------------

interface StormResult {
  execs: number;
  workers: number;
  failed: number;
  elapsed_ns: number;
  rate: number;
}

interface AgentReport {
  counts: { exec: number; fork: number; exit: number; storm: number; stormDistinct: number; stormDuplicates: number; sentinel: number };
  cpu_user_s: number;
  cpu_system_s: number;
  thread_cpu_s: { main: number; v8: number; libuv: number; other: number };
  memory: { rss: number; heapUsed: number; heapTotal: number };
  memory_after_gc: { rss: number; heapUsed: number; heapTotal: number };
  cache: { size: number; live: number; exited: number; evictions: number; brokenLineage: number };
  decode_errors: number;
  kernel: { emitted: number; reserve_failed: number; output_failed: number; lost_exec: number };
  reader?: { received: number; wakeups: number; drains: number };
  writer: { lines: number; bytes: number; flushes: number };
}

interface AgentReady {
  pid: number;
  startup_ms: number;
  snapshot: number;
  probes: string[];
  channel: string;
  memory: { rss: number; heapUsed: number };
  heapAfterGc: number;
  cacheSize: number;
  live: number;
}

interface Run {
  consumer: Consumer;
  mode: ModeId;
  storm: StormResult;
  /** Consumer CPU from the end of the warm-up storm to the end of the storm plus drain (s). */
  cpuS: number;
  /** vigil: the warm-up storm, from ready (its CPU is the JIT warm-up plus the path). */
  warm?: { execs: number; cpuS: number };
  /** Distinct storm execs found in the consumer's output file. */
  reported: number;
  duplicates: number;
  sentinelSeen: boolean;
  /** Exec lines in the output that were neither the storm's nor the sentinel: other work on the machine. */
  otherExecs: number;
  kernelLost: number;
  agent?: AgentReport;
  ready?: AgentReady;
  rssEnd?: number;
}

let runSeq = 0;

/** Distinct storm indices of run `run` in a consumer's output, and how many lines repeated one. */
function countReported(file: string, run: string, consumer: Consumer, n: number): { distinct: number; duplicates: number; sentinel: boolean; lines: number; ours: number } {
  const seen = new Uint8Array(n);
  let distinct = 0;
  let duplicates = 0;
  let sentinel = false;
  let lines = 0;
  let ours = 0;
  const text = fs.readFileSync(file, 'latin1');
  const needle = `${MARKER}`;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (line === '' || (consumer === 'execsnoop' && line.startsWith('PCOMM '))) continue;
    lines++;
    if (!line.includes(needle)) continue;
    let idx: string | undefined;
    if (consumer === 'vigil') {
      // JSON: check the run in argv itself, not just the text.
      const argv = (JSON.parse(line) as { argv?: string[] }).argv;
      if (argv?.[1] === MARKER && argv[2] === `${run}w`) lines--; // the warm-up storm's: neither ours nor others'
      if (!argv || argv[1] !== MARKER || argv[2] !== run) continue;
      idx = argv[3];
    } else {
      // execsnoop: "PCOMM PID PPID RET ARGS", ARGS = "/bin/true vigil-storm <run> <i>"
      const m = new RegExp(`${MARKER} (\\S+) (\\S+)\\s*$`).exec(line);
      if (m?.[1] === `${run}w`) lines--;
      if (!m || m[1] !== run) continue;
      idx = m[2];
    }
    ours++;
    if (idx === 'sentinel') {
      sentinel = true;
      continue;
    }
    const i = Number(idx);
    if (!Number.isInteger(i) || i < 0 || i >= n) continue;
    if (seen[i]) duplicates++;
    else {
      seen[i] = 1;
      distinct++;
    }
  }
  return { distinct, duplicates, sentinel, lines, ours };
}

/** One exec of /bin/true with the storm's marker, to prove afterwards that the consumer was attached. */
function sentinel(run: string): void {
  spawnSync('/bin/true', [MARKER, run, 'sentinel'], { argv0: 'true', stdio: 'ignore' });
}

/** Waits until a consumer has caught up (CPU flat, back in its poll loop; 10 s at most), and returns its CPU (ns). */
async function settled(cons: BenchChild): Promise<number> {
  let last = cpuNs(cons.pid);
  const deadline = Date.now() + 10_000;
  for (;;) {
    await sleep(100);
    const now = cpuNs(cons.pid);
    if ((now - last < 1e6 && WAIT_SYSCALLS.has(blockedIn(cons.pid))) || Date.now() > deadline) return now;
    last = now;
  }
}

async function runOnce(consumer: Consumer, mode: (typeof MODES)[number], dir: string, execsnoop: string): Promise<Run> {
  const run = String(++runSeq);
  const out = path.join(dir, `${consumer}-${run}.out`);
  const storm = new BenchChild(`storm ${mode.id}`, STORM, [String(EXECS), String(mode.workers), run], { env: benchEnv() });
  let cons: BenchChild | undefined;
  try {
    const sready = await storm.json<{ pid: number }>(5_000);
    if (sready.pid !== storm.pid) throw new Error(`storm reports pid ${sready.pid}, we started ${storm.pid}`);
    let ready: AgentReady | undefined;
    let cpu0 = NaN;
    if (consumer === 'vigil') {
      cons = new BenchChild('vigil agent', process.execPath, ['--expose-gc', AGENT, out, run, String(EXECS)], { env: { ...process.env, ...LAUNCH_ENV } });
      ready = await cons.json<AgentReady>(60_000);
      if (ready.pid !== cons.pid) throw new Error(`agent reports pid ${ready.pid}, we started ${cons.pid}`);
    } else if (consumer === 'execsnoop') {
      // sh execs execsnoop in place (same pid) with stdout on the file: stdio buffers it as it would any file.
      cons = new BenchChild('execsnoop', '/bin/sh', ['-c', 'exec "$0" >"$1"', execsnoop, out]);
      const deadline = Date.now() + 30_000;
      // Ready once it blocks polling its perf buffers: loading and attaching are done by then.
      while (!WAIT_SYSCALLS.has(blockedIn(cons.pid))) {
        if (Date.now() > deadline) throw new Error(`execsnoop (pid ${cons.pid}) did not reach its poll loop: ${cons.stderr}`);
        await sleep(20);
      }
      cpu0 = cpuNs(cons.pid);
    }
    let warm: Run['warm'];
    if (cons) {
      sentinel(run);
      // The warm-up storm (its own run id), then CPU is counted afresh: the measured storm sees a consumer that
      // has run a while, as on a host. What the warm-up cost vigil (its JIT compiling the path) is reported too.
      const w = new BenchChild(`warm-up storm ${mode.id}`, STORM, [String(WARM_EXECS), String(mode.workers), `${run}w`], { env: benchEnv() });
      try {
        await w.json(5_000);
        w.send('go\n');
      } catch (err) {
        await w.kill();
        throw err;
      }
      await w.report(300_000, 10_000);
      if (consumer === 'vigil') {
        cons.signal('SIGUSR2');
        const mk = await cons.json<{ cpu_s: number; main_s: number; v8_s: number }>(60_000);
        warm = { execs: WARM_EXECS, cpuS: mk.cpu_s };
      } else {
        cpu0 = await settled(cons);
      }
    }
    storm.send('go\n');
    const s = await storm.json<StormResult>(300_000);
    await storm.exited(10_000);
    if (s.failed) throw new Error(`storm ${mode.id}: ${s.failed} execs failed`);
    const r: Run = { consumer, mode: mode.id, storm: s, cpuS: NaN, reported: NaN, duplicates: 0, sentinelSeen: false, otherExecs: NaN, kernelLost: NaN, warm };
    if (!cons) return r;

    if (consumer === 'vigil') {
      // The storm has exited: every record is committed. The agent drains, flushes and reports.
      r.rssEnd = rssBreakdown(cons.pid).rss;
      cons.signal('SIGTERM');
      const a = await cons.json<AgentReport>(120_000);
      await cons.exited(20_000);
      r.agent = a;
      r.ready = ready;
      r.cpuS = a.cpu_user_s + a.cpu_system_s;
      r.kernelLost = a.kernel.reserve_failed + a.kernel.output_failed;
    } else {
      // execsnoop has no "report" signal: wait until it has caught up, read its CPU, and only then stop it
      // (SIGINT: it flushes stdout and exits).
      r.cpuS = ((await settled(cons)) - cpu0) / 1e9;
      cons.signal('SIGINT');
      await cons.exited(20_000);
      r.kernelLost = [...cons.stderr.matchAll(/lost (\d+) events/gi)].reduce((a, m) => a + Number(m[1]), 0);
    }
    const c = countReported(out, run, consumer, EXECS);
    r.reported = c.distinct;
    r.duplicates = c.duplicates;
    r.sentinelSeen = c.sentinel;
    r.otherExecs = c.lines - c.ours;
    return r;
  } finally {
    await storm.kill();
    await cons?.kill();
    fs.rmSync(out, { force: true });
  }
}

// ---- memory: a herd of live processes ----------------------------------------------------------------------

interface HerdResult {
  children: number;
  ready: AgentReady;
  report: AgentReport;
  rss: { rss: number; anon: number; file: number; bpfMaps: number };
  statCpuS: number;
}

/** `launched`: the agent runs as bin/vigil starts it, with a warm compile cache in `launched.cacheDir`. */
async function runHerd(dir: string, launched?: { cacheDir: string }): Promise<HerdResult> {
  const herd = new BenchChild('proc_herd', HERD, [String(HERD_N)], { env: benchEnv() });
  let agent: BenchChild | undefined;
  try {
    const h = await herd.json<{ pid: number; children: number }>(120_000);
    if (h.children !== HERD_N) throw new Error(`proc_herd forked ${h.children} of ${HERD_N}`);
    const out = path.join(dir, 'herd.out');
    agent = launched
      ? new BenchChild('vigil agent (herd, as bin/vigil starts it)', process.execPath, ['--expose-gc', AGENT, out, 'herd', '0'], { env: { ...process.env, ...LAUNCH_ENV, NODE_COMPILE_CACHE: launched.cacheDir } })
      : new BenchChild('vigil agent (herd)', process.execPath, ['--expose-gc', AGENT, out, 'herd', '0']);
    const ready = await agent.json<AgentReady>(180_000);
    // Let it settle a moment (the snapshot's garbage, the first timers), then take the figures.
    await sleep(1000);
    const rss = rssBreakdown(agent.pid);
    const statCpu = statCpuS(agent.pid);
    agent.signal('SIGTERM');
    const report = await agent.json<AgentReport>(60_000);
    await agent.exited(20_000);
    herd.send('release\n');
    await herd.json<{ reaped: number }>(60_000);
    await herd.exited(30_000);
    fs.rmSync(out, { force: true });
    return { children: h.children, ready, report, rss, statCpuS: statCpu };
  } finally {
    await agent?.kill();
    await herd.kill();
  }
}

// ---- memory: the agent's process before it starts -------------------------------------------------------------

interface Baseline {
  rss: number;
  anon: number;
  file: number;
  heapUsed: number;
}

/** One child's memory line: `args` run by this Node, with `env` added. */
async function memoryOf(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Baseline> {
  return new BenchChild(name, process.execPath, args, { env: { ...process.env, ...env } }).report<Baseline>(60_000, 10_000);
}

/**
 * Node alone, Node with the agent's modules (stripped of their types as they load), and the same from a warm
 * compile cache; then warms that cache for the agent itself (its usage error exits right after loading
 * every module), for the tuned herd run.
 */
async function runBaselines(cacheDir: string): Promise<{ node: Baseline; modules: Baseline; cached: Baseline }> {
  const probe = String.raw`const s=require('fs').readFileSync('/proc/self/status','utf8');const k=(x)=>{const l=s.split('\n').find((y)=>y.startsWith(x+':'));return Number(l.slice(x.length+1).trim().split(' ')[0])*1024;};console.log(JSON.stringify({rss:k('VmRSS'),anon:k('RssAnon'),file:k('RssFile'),heapUsed:process.memoryUsage().heapUsed}))`;
  const node = await memoryOf('node alone', ['-e', probe]);
  const modules = await memoryOf('agent modules', [BASELINE]);
  await memoryOf('agent modules (warming the compile cache)', [BASELINE], { NODE_COMPILE_CACHE: cacheDir });
  const cached = await memoryOf('agent modules (compile cache)', [BASELINE], { NODE_COMPILE_CACHE: cacheDir });
  spawnSync(process.execPath, [AGENT], { env: { ...process.env, NODE_COMPILE_CACHE: cacheDir }, stdio: 'ignore' });
  return { node, modules, cached };
}

/** CPU per empty wakeup of Node's event loop on a `ms` timer (bench/exec/wake.ts). */
async function wakeCost(ms: number, n: number): Promise<number> {
  const r = await new BenchChild(`wake ${ms} ms`, process.execPath, [WAKE, String(ms), String(n)]).report<{ us_per_wake: number }>(60_000, 10_000);
  return r.us_per_wake;
}

// ---- memory: synthetic churn -------------------------------------------------------------------------------

interface Mem {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  cacheSize: number;
}
interface ChurnResult {
  cycles: number;
  warmup: number;
  records: number;
  ns_per_record: number;
  ns_per_cycle: number;
  decode_ns_per_record: number;
  enriched_ns_per_cycle: number;
  line_bytes: number;
  warm: Mem;
  end: Mem;
  rss_change: number;
  heap_change: number;
  peak_rss: number;
  peak_cache: number;
  samples: { cycles: number; rss: number; heapUsed: number; cacheSize: number }[];
  cache: { evictions: number; evictionsForced: number; brokenLineage: number; misses: number };
  decode_errors: number;
  retained_bytes_per_process: number;
  retained_bytes_per_process_no_env: number;
  env_vars: number;
}

async function runChurn(): Promise<ChurnResult> {
  const child = new BenchChild('churn', process.execPath, ['--expose-gc', CHURN, String(CYCLES), String(WARMUP), String(Math.min(100_000, CYCLES))], { env: { ...process.env, ...LAUNCH_ENV } });
  return child.report<ChurnResult>(600_000, 10_000);
}

// ---- environment -------------------------------------------------------------------------------------------

function preflight(): string {
  if (process.getuid?.() !== 0) throw new Error('bench/exec needs root (it loads BPF programs)');
  for (const f of [STORM, HERD, SENSOR_OBJ]) {
    if (!fs.existsSync(f)) throw new Error(`${path.relative(ROOT, f)} is missing: run make build first`);
  }
  return findExecsnoop();
}

function execsnoopVersion(bin: string): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'libbpf-tools'], { encoding: 'utf8' }).trim() || path.basename(bin);
  } catch {
    return 'unknown version';
  }
}

const MB = (b: number) => fixed(b / 2 ** 20, 1);
const signed = (n: number, d: number) => (Number.isFinite(n) && n >= 0 ? `+${fixed(n, d)}` : fixed(n, d));

// ---- main ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  killChildrenOnExit();
  const execsnoop = preflight();
  const t0 = Date.now();
  const load0 = os.loadavg()[0]!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-exec-'));
  const runs: Run[] = [];
  const warnings: string[] = [];
  try {
    process.stderr.write(`bench/exec: ${REPS} rounds of ${MODES.map((m) => CONSUMERS.map((c) => `${m.id}/${c}`).join(' ')).join(' ')}; ${EXECS} execs per run; execsnoop: ${execsnoop}\n`);
    for (let rep = 0; rep < REPS; rep++) {
      for (const mode of MODES) {
        for (const c of CONSUMERS) {
          const r = await runOnce(c, mode, dir, execsnoop);
          runs.push(r);
          const tail =
            c === 'none'
              ? ''
              : `  cpu ${fixed(r.cpuS, 3)} s (${fixed((r.cpuS * 1000) / EXECS, 3)} s/1k)  reported ${r.reported}/${EXECS}${r.sentinelSeen ? '' : '  (sentinel missing!)'}${r.kernelLost ? `  kernel lost ${r.kernelLost}` : ''}`;
          process.stderr.write(`  round ${rep + 1} ${mode.id.padEnd(4)} ${c.padEnd(9)} ${fixed(r.storm.rate, 0)} execs/s${tail}\n`);
          if (c !== 'none' && r.reported !== EXECS) warnings.push(`${mode.id}/${c} round ${rep + 1}: reported ${r.reported} of ${EXECS}`);
          if (c !== 'none' && !r.sentinelSeen) warnings.push(`${mode.id}/${c} round ${rep + 1}: the sentinel exec before the storm is missing from the output`);
          if (r.duplicates) warnings.push(`${mode.id}/${c} round ${rep + 1}: ${r.duplicates} duplicate lines`);
        }
      }
    }

    process.stderr.write(`  herd: ${HERD_N} live processes, then the agent\n`);
    const herd = await runHerd(dir);
    process.stderr.write(`  herd: RSS ${MB(herd.rss.rss)} MiB with ${herd.report.cache.live} live processes cached\n`);
    // The cache directory is ours alone (mkdtemp: 0700): a compile cache others could write to would let them
    // put code into a process that runs as root.
    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-compile-cache-'));
    let baselines: Awaited<ReturnType<typeof runBaselines>>;
    let herdTuned: HerdResult;
    try {
      baselines = await runBaselines(cacheDir);
      process.stderr.write(`  baseline: node ${MB(baselines.node.rss)} MiB, + agent modules ${MB(baselines.modules.rss)} MiB, from the compile cache ${MB(baselines.cached.rss)} MiB\n`);
      herdTuned = await runHerd(dir, { cacheDir });
      process.stderr.write(`  herd (as bin/vigil starts it: compile cache, ${LAUNCH_DESC}): RSS ${MB(herdTuned.rss.rss)} MiB\n`);
    } finally {
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
    const wake16 = await wakeCost(16, 150);
    const wake1 = await wakeCost(1, 500);
    process.stderr.write(`  event-loop wakeup: ${fixed(wake1, 0)} µs of CPU on a 1 ms timer, ${fixed(wake16, 0)} µs on a 16 ms one\n`);
    process.stderr.write(`  churn: ${CYCLES} synthetic fork/exec/exit cycles\n`);
    const churn = await runChurn();
    process.stderr.write(`  churn: ${fixed(churn.ns_per_record, 0)} ns/record; RSS ${percent(churn.rss_change, 1)}, heap ${percent(churn.heap_change, 1)}\n`);
    const elapsedS = (Date.now() - t0) / 1000;
    const load1 = os.loadavg()[0]!;

    // ---- storm tables: medians per mode and consumer; ratios paired within a round --------------------------
    const of = (m: ModeId, c: Consumer) => runs.filter((r) => r.mode === m && r.consumer === c);
    const med = (m: ModeId, c: Consumer, f: (r: Run) => number) => median(of(m, c).map(f));
    const paired = (m: ModeId, a: Consumer, b: Consumer, f: (r: Run) => number) => {
      const A = of(m, a);
      const B = of(m, b);
      return median(A.map((r, i) => f(r) / f(B[i]!)));
    };
    const ratios = (m: ModeId, a: Consumer, b: Consumer, f: (r: Run) => number) => of(m, a).map((r, i) => f(r) / f(of(m, b)[i]!));
    const spread = (m: ModeId, a: Consumer, b: Consumer, f: (r: Run) => number) => {
      const v = ratios(m, a, b, f);
      return `${fixed(Math.min(...v))}–${fixed(Math.max(...v))}`;
    };
    const wall = (r: Run) => r.storm.elapsed_ns;
    const cpuPerK = (r: Run) => (r.cpuS * 1000) / r.storm.execs;

    const wallRows: (string | number)[][] = [];
    const consRows: (string | number)[][] = [];
    for (const m of MODES) {
      for (const c of CONSUMERS) {
        wallRows.push([
          m.what,
          c,
          fixed(med(m.id, c, (r) => r.storm.rate), 0),
          fixed(med(m.id, c, wall) / 1e9, 2),
          c === 'none' ? '1.00' : `×${fixed(paired(m.id, c, 'none', wall))} (${spread(m.id, c, 'none', wall)})`,
          c === 'none' ? '–' : signed(median(of(m.id, c).map((r, i) => (wall(r) - wall(of(m.id, 'none')[i]!)) / r.storm.execs / 1000)), 1),
        ]);
        if (c === 'none') continue;
        const rs = of(m.id, c);
        consRows.push([
          m.what,
          c,
          `${fixed(med(m.id, c, (r) => r.reported), 0)} / ${EXECS}`,
          `${Math.min(...rs.map((r) => r.reported))}`,
          fixed(med(m.id, c, (r) => r.kernelLost), 0),
          fixed(med(m.id, c, (r) => r.cpuS), 3),
          fixed(med(m.id, c, cpuPerK), 3),
          fixed(med(m.id, c, (r) => (r.cpuS * 1e6) / r.storm.execs), 1),
          c === 'vigil' ? `×${fixed(paired(m.id, 'vigil', 'execsnoop', cpuPerK))} (${spread(m.id, 'vigil', 'execsnoop', cpuPerK)})` : '1.00',
          fixed(med(m.id, c, (r) => r.otherExecs), 0),
          c === 'vigil' ? MB(med(m.id, c, (r) => r.rssEnd ?? NaN)) : '–',
        ]);
      }
    }

    // ---- memory tables ---------------------------------------------------------------------------------------
    const vigilRuns = runs.filter((r) => r.consumer === 'vigil');
    const readyRss = median(vigilRuns.map((r) => r.ready?.memory.rss ?? NaN));
    const readySnap = median(vigilRuns.map((r) => r.ready?.snapshot ?? NaN));
    const herdRss = herd.rss.rss;
    const herdAnon = herd.rss.anon;
    const herdFile = herd.rss.file;
    const herdRing = herd.rss.bpfMaps;
    const herdHeapGc = herd.report.memory_after_gc.heapUsed;
    const herdRow = (what: string, h: HerdResult) => [
      what,
      fixed(h.ready.snapshot, 0),
      fixed(h.report.cache.live, 0),
      MB(h.rss.rss),
      MB(h.rss.anon),
      MB(h.rss.file),
      MB(h.rss.bpfMaps),
      MB(h.report.memory_after_gc.rss),
      MB(h.report.memory_after_gc.heapUsed),
    ];
    const baseRow = (what: string, b: Baseline) => [what, '–', '–', MB(b.rss), MB(b.anon), MB(b.file), '–', '–', MB(b.heapUsed)];
    const memRows = [
      baseRow('Node alone (`node -e`)', baselines.node),
      baseRow("Node + the agent's modules, nothing started", baselines.modules),
      baseRow("Node + the agent's modules, from Node's compile cache", baselines.cached),
      ['agent at ready, storm runs (median)', fixed(readySnap, 0), '–', MB(readyRss), '–', '–', '–', '–', '–'],
      herdRow(`agent with ${HERD_N} live processes (proc_herd)`, herd),
      herdRow(`the same as bin/vigil starts it: Node's compile cache, ${LAUNCH_DESC}`, herdTuned),
    ];
    const churnRows = [
      ['after warm-up', si(churn.warmup), MB(churn.warm.rss), MB(churn.warm.heapTotal), MB(churn.warm.heapUsed), churn.warm.cacheSize],
      ['end', si(churn.warmup + churn.cycles), MB(churn.end.rss), MB(churn.end.heapTotal), MB(churn.end.heapUsed), churn.end.cacheSize],
      ['change', '–', percent(churn.rss_change, 1), percent((churn.end.heapTotal - churn.warm.heapTotal) / churn.warm.heapTotal, 1), percent(churn.heap_change, 1), '–'],
    ];

    // ---- verdicts -------------------------------------------------------------------------------------------
    const verdicts: string[] = [];
    const vigilMin = Math.min(...vigilRuns.map((r) => r.reported));
    const vigilAll = vigilRuns.every((r) => r.reported === EXECS);
    const vLost = Math.max(...vigilRuns.map((r) => r.kernelLost));
    const snoopRuns = runs.filter((r) => r.consumer === 'execsnoop');
    let t1 = `**100 % of execs reported: ${vigilAll ? 'met' : 'NOT MET'}.** vigil reported ${vigilAll ? `all ${EXECS} storm execs in every one of its ${vigilRuns.length} runs` : `as few as ${vigilMin} of ${EXECS}`}`;
    t1 += ` (counted from its JSON output file, exec by exec; kernel losses: ${vLost}; decode errors: ${Math.max(...vigilRuns.map((r) => r.agent?.decode_errors ?? 0))})`;
    t1 += `; execsnoop reported ${snoopRuns.every((r) => r.reported === EXECS) ? 'all of them too' : `as few as ${Math.min(...snoopRuns.map((r) => r.reported))}`}.`;
    if (!vigilAll) {
      const bad = vigilRuns.filter((r) => r.reported !== EXECS);
      t1 += ` **Missing events:** ${bad.map((r) => `${r.mode}: ${r.reported} reported, agent counted ${r.agent?.counts.stormDistinct}, kernel reserve failures ${r.agent?.kernel.reserve_failed}, output failures ${r.agent?.kernel.output_failed}`).join('; ')}.`;
    }
    verdicts.push(t1);

    const ratioSeq = paired('seq', 'vigil', 'execsnoop', cpuPerK);
    const ratioPar = paired('par2', 'vigil', 'execsnoop', cpuPerK);
    const cpuOk = ratioSeq <= 3 && ratioPar <= 3;
    let t2 = `**Agent CPU per exec ≤ 3× execsnoop's: ${cpuOk ? 'met' : 'NOT met'}.** vigil used ${fixed(med('seq', 'vigil', cpuPerK), 3)} CPU-s per 1,000 execs sequentially and ${fixed(med('par2', 'vigil', cpuPerK), 3)} with 2 workers, against execsnoop's ${fixed(med('seq', 'execsnoop', cpuPerK), 3)} and ${fixed(med('par2', 'execsnoop', cpuPerK), 3)}: ×${fixed(ratioSeq)} and ×${fixed(ratioPar)}.`;
    // Attribution: the record path measured alone over synthetic records, the event loop's wakeups (drains
    // and writer flushes, each costing a wakeup measured here), and the threads the CPU was spent on.
    const liveUsPerExec = (med('seq', 'vigil', cpuPerK) * 1e6) / 1000;
    const pathUs = churn.enriched_ns_per_cycle / 1000;
    const rec = median(vigilRuns.map((r) => (r.agent?.reader ? r.agent.reader.received / r.storm.execs : NaN)));
    const perExec = (m: ModeId, f: (a: AgentReport) => number) => median(of(m, 'vigil').map((r) => (r.agent ? f(r.agent) / r.storm.execs : NaN)));
    const drainsSeq = perExec('seq', (a) => a.reader?.drains ?? NaN);
    const drainsPar = perExec('par2', (a) => a.reader?.drains ?? NaN);
    const flushesSeq = perExec('seq', (a) => a.writer.flushes);
    const mainSeq = perExec('seq', (a) => a.thread_cpu_s.main) * 1e6;
    const v8Seq = perExec('seq', (a) => a.thread_cpu_s.v8) * 1e6;
    const mainPar = perExec('par2', (a) => a.thread_cpu_s.main) * 1e6;
    const v8Par = perExec('par2', (a) => a.thread_cpu_s.v8) * 1e6;
    const warmUs = (m: ModeId) => median(of(m, 'vigil').map((r) => (r.warm ? (r.warm.cpuS * 1e6) / r.warm.execs : NaN)));
    t2 += ` Both are counted after a warm-up storm of ${WARM_EXECS} execs with the consumer attached, as on a host where the agent has been running: that first storm after start cost vigil ${fixed(warmUs('seq'), 0)} µs per exec sequentially (${fixed(warmUs('par2'), 0)} with 2 workers), V8 compiling the path included (~0.3 s of optimizing compiles, once); execsnoop, compiled ahead of time, has no such phase.`;
    t2 += ` Where it goes: vigil handles ${fixed(rec, 1)} records per exec (fork, exec and exit, where execsnoop handles one). Their whole path — ring read, decode, cache with scrubbing, enrichment and the JSON line — costs ${fixed(pathUs, 1)} µs per exec over synthetic records in a warm loop (decode alone ${fixed((churn.decode_ns_per_record * 3) / 1000, 1)} µs per fork+exec+exit), against ${fixed(liveUsPerExec, 0)} µs per exec live.`;
    t2 += ` Live, the main thread used ${fixed(mainSeq, 0)} µs per exec sequentially (${fixed(mainPar, 0)} with 2 workers) and V8's helper threads, which do most of the garbage collection, ${fixed(v8Seq, 0)} (${fixed(v8Par, 0)}).`;
    t2 += ` Every turn of the event loop costs CPU whatever it does: here ${fixed(wake1, 0)} µs for an empty wakeup on a 1 ms timer and ${fixed(wake16, 0)} µs on a 16 ms one (bench/exec/wake.ts; the VM's timer wakeups are dear, and a C program's epoll_wait measured 22-40 µs).`;
    t2 += ` The reader's batching delay grows from 1 ms to at most ${WOKEN_MAX_DELAY_MS} ms while its batches stay small (src/ringbuf/ringbuf.ts, DrainPacer; the sensors wake it at once if the ring fills past a quarter, through vigil_ring_ctl, so the ring's size no longer bounds the delay), so it drained ${fixed(drainsSeq, 3)} times per exec sequentially and ${fixed(drainsPar, 3)} times with 2 workers (with a fixed 1 ms delay it was ~0.8 per exec, with the earlier 16 ms bound ~0.055), and the writer flushed ${fixed(flushesSeq, 3)} times per exec.`;
    t2 += ` A drain after a sleep costs far more than its records do in a warm loop: its code and data come back into cold caches (~0.3 ms per drain here, measured by varying the bound on one build: 16 ms gave ~70 µs per exec, 32 ms ~52, 64 ms ~50), which is why the longer batch is most of the saving. The rest is the collection of the path's garbage: ~7.7 KiB allocated per exec (sampled with VIGIL_BENCH_HEAP_PROFILE: the JSON line and its batch ~2.5 KiB, cache entries and images ~1.5 KiB, argv and its scrubbing; the environment's strings and the credentials are reused when their bytes repeat, which took it down from ~10 KiB), and cache entries kept 30 s after exit. execsnoop, in C, formats one line per exec with printf and does nothing else.`;
    verdicts.push(t2);

    // The target is in MB (10^6 bytes); RSS is reported in MiB like the rest of the tables.
    const rssOk = herdTuned.rss.rss < 150e6;
    const mb = (b: number) => (b / 1e6).toFixed(1);
    let t3 = `**RSS < 150 MB with ${HERD_N} live processes cached: ${rssOk ? 'met' : 'NOT met'}.** ${MB(herdTuned.rss.rss)} MiB (${mb(herdTuned.rss.rss)} MB) with ${herdTuned.report.cache.live} live processes in the cache, as bin/vigil starts the agent (Node's compile cache, ${LAUNCH_DESC}); ${MB(herdRss)} MiB (${mb(herdRss)} MB) on Node's bare defaults (\`node src/cli/main.ts\`, which loads Node's TypeScript stripper).`;
    t3 += ` Of the ${MB(herdRss)} MiB, ${MB(herdRing)} MiB is the 16 MiB event ring (kernel memory, mapped once), ${MB(herdFile)} MiB file-backed (mostly the Node binary's own pages) and ${MB(herdAnon)} MiB anonymous, mostly V8's heap: ${MB(herd.report.memory.heapTotal)} MiB reserved, ${MB(herdHeapGc)} MiB live after a GC; a forced GC brings RSS to ${MB(herd.report.memory_after_gc.rss)} MiB. The snapshot, read and applied one process at a time, took ${fixed(herd.ready.startup_ms / 1000, 1)} s (start-up included).`;
    const readyHeap = median(vigilRuns.map((r) => r.ready?.heapAfterGc ?? NaN));
    const readyLive = median(vigilRuns.map((r) => r.ready?.live ?? NaN));
    const perProcess = (herd.ready.heapAfterGc - readyHeap) / (herd.ready.live - readyLive);
    t3 += ` The floor: Node alone is ${MB(baselines.node.rss)} MiB; loading the agent's modules takes it to ${MB(baselines.modules.rss)} MiB, of which ${MB(baselines.modules.rss - baselines.cached.rss)} MiB is Node's TypeScript stripper (gone when the stripped sources come from Node's compile cache: ${MB(baselines.cached.rss)} MiB); with ${fixed(readySnap, 0)} processes the agent is at ${MB(readyRss)} MiB at ready (BPF loaded, ring mapped).`;
    t3 += ` The cache adds ${fixed(perProcess, 0)} bytes of JS heap per live process here (compared at ready, after a GC; an entry holds its image with argv, creds, namespaces and lineage links; the scrubbed environment, executable path and credentials are shared by the processes that have the same ones).`;
    t3 += ` Measured on its own over synthetic records, a cached exec'd process holds ${fixed(churn.retained_bytes_per_process, 0)} bytes of heap with ${churn.env_vars} environment variables and ${fixed(churn.retained_bytes_per_process_no_env, 0)} bytes with env capture off.`;
    verdicts.push(t3);

    const flatOk = Math.abs(churn.rss_change) <= 0.05;
    const rssPath = churn.samples.map((x) => MB(x.rss)).filter((_, i, a) => i % Math.max(1, Math.floor(a.length / 5)) === 0 || i === a.length - 1);
    let t4 = `**RSS flat (±5 %) after ${si(churn.cycles)} exec/exit cycles: ${flatOk ? 'met' : 'NOT met'}${!flatOk && Math.abs(churn.heap_change) <= 0.05 ? ' for RSS, met for the live heap' : ''}.** RSS changed ${percent(churn.rss_change, 1)} and the live JS heap ${percent(churn.heap_change, 1)} between warm-up (${si(churn.warmup)} cycles) and the end, both sampled once evictions had caught up, after a forced GC; ${fixed(churn.cache.evictions, 0)} processes were evicted, ${churn.cache.evictionsForced} of them forcibly, and the cache held at most ${churn.peak_cache} entries.`;
    t4 += ` RSS along the run (MiB, every ~${si(churn.cycles / 5)} cycles, no forced GC): ${rssPath.join(' → ')}. What RSS holds beyond the live heap is V8's reservation (${MB(churn.end.heapTotal)} MiB, set by the allocation rate, not by what is retained) and native allocations outside the JS heap; the live heap, which is what the cache retains, is the sharper leak signal.`;
    t4 += ` The path cost ${fixed(churn.ns_per_record, 0)} ns per record (${fixed(churn.ns_per_cycle / 1000, 1)} µs per fork+exec+exit, of which decoding ${fixed((churn.decode_ns_per_record * 3) / 1000, 1)} µs; with enrichment and the JSON line ${fixed(churn.enriched_ns_per_cycle / 1000, 1)} µs).`;
    verdicts.push(t4);

    const wallSeq = ratios('seq', 'vigil', 'none', wall);
    const wallPar = ratios('par2', 'vigil', 'none', wall);
    const noneRates = runs.filter((r) => r.consumer === 'none').map((r) => r.storm.rate);
    let tWall = `**Overhead (storm wall time with vigil against without):** ×${fixed(paired('seq', 'vigil', 'none', wall))} sequentially (rounds: ${wallSeq.map((x) => fixed(x)).join(', ')}) and ×${fixed(paired('par2', 'vigil', 'none', wall))} with 2 workers (${wallPar.map((x) => fixed(x)).join(', ')}); execsnoop ×${fixed(paired('seq', 'execsnoop', 'none', wall))} and ×${fixed(paired('par2', 'execsnoop', 'none', wall))}.`;
    const spreadNone = Math.max(...noneRates) / Math.min(...noneRates);
    if (spreadNone > 1.2) {
      tWall += ` These ratios are not reliable in this run: the storm alone ran between ${fixed(Math.min(...noneRates), 0)} and ${fixed(Math.max(...noneRates), 0)} execs/s from run to run (×${fixed(spreadNone)}), because other work shared the 2 cores (load average ${fixed(load0)} → ${fixed(load1)}; the consumers saw a median of ${fixed(median(runs.filter((r) => r.consumer !== 'none').map((r) => r.otherExecs)), 0)} other execs per run), so a ratio mixes the consumer's cost with the neighbours' bursts. CPU per exec, counted on the consumers themselves, is the robust comparison here.`;
    }
    verdicts.unshift(tWall);

    const agentProbes = vigilRuns[0]?.ready?.probes ?? [];
    const notes = [
      `Storm: \`build/bench/exec_storm\` (bench/c/exec_storm.c), ${EXECS} × fork + execve("/bin/true", ["true", "${MARKER}", run, i]) + waitpid per run, unpinned; the parallel mode splits them over 2 worker processes. Wall time is the storm's own, from "go" to its last waitpid. The storm and the herd run with a fixed shell-like environment of ${BENCH_ENV.length} variables (${BENCH_ENV.join('\0').length + 1} bytes, two of them secrets), the same as the churn's records.`,
      `Each configuration ran ${REPS} times, alternating (none, vigil, execsnoop, sequential then parallel, then again); with a consumer, each measured storm followed a warm-up storm of ${WARM_EXECS} execs (its own run id, not counted), after which the consumer's CPU was counted afresh; tables show medians; ratios are taken within a round, then the median. The whole benchmark took ${fixed(elapsedS, 0)} s.`,
      `vigil: \`bench/exec/agent.ts\`, a ProcessResolver in BPF mode on its defaults (argv up to 128 KiB, env up to 32 KiB, threads, credentials; exited processes kept 30 s), probes attached: ${agentProbes.join(', ') || '–'}. Every exec event becomes one JSON line (~${fixed(median(vigilRuns.map((r) => (r.agent ? r.agent.writer.bytes / Math.max(1, r.agent.writer.lines) : NaN))), 0)} bytes: lineage, user and group names, creds, container ids, scrubbed argv, and the scrubbed environment: names, with values only for allow-listed variables, as the agent outputs it) written through a WriteStream in 50 ms batches.`,
      'Wall overhead has two parts: the consumer\'s CPU competing with the storm for 2 cores, and work in the kernel on the storm\'s own time. On this kernel (no fentry, no kprobes) vigil\'s credential tracking falls back to 9 syscall-exit tracepoints, which put every syscall of the machine on the slow path while attached (KERNEL-NOTES.md); execsnoop attaches execve\'s syscall tracepoints, with the same effect.',
      'The storm\'s children copy their path and argv onto their own stack before execve, as a shell\'s children do. With them in .rodata pages that fork did not map into the child, execsnoop (which reads them at sys_enter_execve with a probe read that cannot fault pages in) reports such execs with an empty command line; vigil reads argv from the new image at sched_process_exec and gets it either way.',
      `execsnoop: libbpf-tools ${execsnoopVersion(execsnoop)} (\`${execsnoop}\`), default options, stdout to a file (block-buffered by stdio). It hooks the execve syscall tracepoints and reports execs only; its perf buffer wakes it per event.`,
      'CPU: vigil\'s is process.cpuUsage() (all threads) from the end of the warm-up storm (the agent drains it on SIGUSR2, then counts afresh) through the final drain and file close; execsnoop\'s is the sum of its threads\' schedstat on-CPU time from idle again after the warm-up storm until idle again after the measured one. Start-up is excluded for both. "Reported" counts distinct storm indices in each consumer\'s output file; a sentinel exec before "go" proves each was attached in time.',
      `Memory: RSS, anonymous and file-backed parts from /proc/<pid>/status, the ring's mapping from smaps, 1 s after the agent is ready. The first three rows are child processes that load the agent's modules and stop (\`bench/exec/baseline.ts\`); "from Node's compile cache" ran with NODE_COMPILE_CACHE set to a private directory that an earlier run filled, so Node read the stripped sources from disk and never loaded its type stripper. The last row's agent ran as bin/vigil starts it: with that cache and ${LAUNCH_DESC} (bin/launch.env); the storm and churn agents ran with ${LAUNCH_DESC} and without the compile cache, which changes start-up and memory, not the per-exec path.`,
      `Churn: \`bench/exec/churn.ts\`, synthetic records laid out as the sensor writes them (layout.generated.ts), pids cycling over 31,000 values, through RingConsumer.drain → ProcessResolver.handleRecord in batches of 256 cycles, exited-grace 50 ms so eviction runs throughout; memory sampled after a forced GC once evictions caught up. RSS includes V8's heap reservation (heapTotal), which follows the allocation rate rather than what is retained: the live heap is the sharper leak signal.`,
      `Machine load: 1-min load average ${fixed(load0)} at start, ${fixed(load1)} at end (other work on a shared machine makes absolute rates drift; ratios are paired within a round).`,
    ];
    if (warnings.length) notes.push(`**Warnings:** ${warnings.join('; ')}.`);

    const body = [
      'Storm wall time with each consumer, against the storm alone:',
      '',
      markdownTable(['storm', 'consumer', 'execs/s', 'wall s', 'wall vs none (range)', 'µs added per exec'], wallRows),
      '',
      'Consumers:',
      '',
      markdownTable(['storm', 'consumer', 'reported / expected', 'worst run', 'kernel lost', 'CPU s', 'CPU s per 1,000 execs', 'CPU µs per exec', 'CPU per exec vs execsnoop (range)', 'other execs seen', 'RSS at end MiB'], consRows),
      '',
      'Memory with many live processes:',
      '',
      markdownTable(['agent', 'snapshot', 'live cached', 'RSS MiB', 'anon MiB', 'file MiB', 'ring mapping MiB', 'RSS after a forced GC MiB', 'JS heap after GC MiB'], memRows),
      '',
      `Memory over ${si(churn.cycles)} synthetic fork/exec/exit cycles (after a forced GC, once evictions caught up):`,
      '',
      markdownTable(['sample', 'cycles', 'RSS MiB', 'V8 heap reserved MiB', 'JS heap live MiB', 'cache entries'], churnRows),
      '',
      ...verdicts.map((v) => `- ${v}`),
      '',
      ...notes.map((n) => `- ${n}`),
    ].join('\n');

    process.stdout.write(`\n${body}\n`);
    if (WRITE) {
      const file = writeSection('exec', body, { title: 'exec: exec storms with vigil attached, against execsnoop; agent memory', command: 'npm run bench:exec' });
      process.stderr.write(`\nwrote ${path.relative(ROOT, file)} (section exec)\n`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (err) {
  await killAll();
  process.stderr.write(`bench/exec failed: ${(err as Error).stack ?? (err as Error).message}\n`);
  process.exitCode = 1;
}
