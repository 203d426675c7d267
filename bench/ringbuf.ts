// bench/ringbuf: how fast vigil's ring-buffer consumer (RingBufReader behind a Manager) takes 64-byte records
// off a BPF ring, at what loss and CPU per event, against C consumers built on libbpf, all in one run.
// Configurations alternate run by run (A B C D E … A B C D E …) and the report gives medians and ratios.
//
// A  generator alone: N getppid() calls, no probe (the baseline)
// B  probe attached, matching the generator's calls but emitting nothing (the cost of the hook alone)
// C  probe + vigil's TypeScript consumer, in its own process
// D  probe + C consumer, libbpf ring_buffer__poll (the reference the issue names)
// E  probe + C consumer with RingBufReader's wakeup policy (decode cost compared without the wakeup policy)
// C4/D4/E4: the same with 4 records per syscall, to measure consumers beyond what one generator core makes.
// S  vigil's drain loop and handler over synthetic ring memory: the floor of its per-record cost.
//
// usage: node bench/ringbuf.ts [--reps N] [--scale X] [--no-write]
//   --scale multiplies every run's call count (0.2 for a quick check); --no-write leaves docs/benchmarks.md alone.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchChild, killAll, killChildrenOnExit } from './lib/proc.ts';
import { ROOT, fixed, markdownTable, median, percent, si, writeSection } from './lib/report.ts';
import { arg } from './lib/args.ts';

const OBJ = path.join(ROOT, 'build/bench/bpf/ringbuf.bpf.o');
const GEN = path.join(ROOT, 'build/bench/getppid_gen');
const C_CONSUMER = path.join(ROOT, 'build/bench/ringbuf_consumer');
const TS_CONSUMER = path.join(ROOT, 'bench/ringbuf/consumer.ts');
const TS_DRAIN = path.join(ROOT, 'bench/ringbuf/drain.ts');

// ---- options --------------------------------------------------------------------------------------------

const REPS = Number(arg('--reps') ?? 7);
const SCALE = Number(arg('--scale') ?? 1);
const WRITE = !process.argv.includes('--no-write');
if (!(REPS >= 1) || !(SCALE > 0)) {
  process.stderr.write('usage: node bench/ringbuf.ts [--reps N] [--scale X] [--no-write]\n');
  process.exit(2);
}

type ConsumerKind = 'none' | 'hook' | 'vigil' | 'c-poll' | 'c-batch';

interface Config {
  id: string;
  what: string;
  consumer: ConsumerKind;
  /** Records per generator syscall (0: the probe emits nothing). */
  rpc: number;
  /** getppid() calls per run, sized for about 1 s each on the reference machine (2-core EPYC VM). */
  calls: number;
}

const CONFIGS: Config[] = [
  { id: 'A', what: 'generator alone, no probe', consumer: 'none', rpc: 0, calls: 6e6 },
  { id: 'B', what: 'probe attached, emits nothing', consumer: 'hook', rpc: 0, calls: 4e6 },
  { id: 'C', what: 'vigil RingBufReader (TypeScript)', consumer: 'vigil', rpc: 1, calls: 3e6 },
  { id: 'D', what: 'C, libbpf ring_buffer__poll', consumer: 'c-poll', rpc: 1, calls: 8e5 },
  { id: 'E', what: 'C, vigil\'s wakeup policy (1 ms batches)', consumer: 'c-batch', rpc: 1, calls: 3e6 },
  { id: 'C4', what: 'vigil RingBufReader (TypeScript)', consumer: 'vigil', rpc: 4, calls: 1.5e6 },
  { id: 'D4', what: 'C, libbpf ring_buffer__poll', consumer: 'c-poll', rpc: 4, calls: 4e5 },
  { id: 'E4', what: 'C, vigil\'s wakeup policy (1 ms batches)', consumer: 'c-batch', rpc: 4, calls: 1.5e6 },
];
/** RingBufReader's default batchDelayMs (1 ms), which the C consumer mirrors in E; keep them in step. */
const BATCH_US = 1000;

// ---- one run --------------------------------------------------------------------------------------------

interface GenResult {
  calls: number;
  start_ns: number;
  end_ns: number;
  elapsed_ns: number;
}

interface ConsumerResult {
  received: number;
  gaps: number;
  bad: number;
  last_ns: number;
  polls: number;
  drains: number;
  reserve_failed: number;
  emitted: number;
  ring_bytes: number;
  utime_s: number;
  stime_s: number;
}

interface Run {
  cfg: Config;
  gen: GenResult;
  cons?: ConsumerResult;
}

/** Pinning: the generator owns CPU 0 and the consumer CPU 1, so neither steals the other's core. */
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

function spawnConsumer(cfg: Config, tgid: number): BenchChild {
  let cmd: string;
  let args: string[];
  if (cfg.consumer === 'vigil') {
    cmd = process.execPath;
    args = [TS_CONSUMER, OBJ, String(tgid), String(cfg.rpc), '1'];
  } else {
    cmd = C_CONSUMER;
    args = ['-r', String(Math.max(cfg.rpc, 1)), '-e', cfg.consumer === 'hook' ? '0' : '1'];
    if (cfg.consumer === 'c-batch') args.push('-b', String(BATCH_US));
    args.push(OBJ, String(tgid));
  }
  // taskset execs the command, so the pid we hold is the consumer's own: every thread inherits the CPU.
  if (PIN.consumer !== undefined) return new BenchChild(`consumer ${cfg.id}`, 'taskset', ['-c', String(PIN.consumer), cmd, ...args]);
  return new BenchChild(`consumer ${cfg.id}`, cmd, args);
}

async function runOnce(cfg: Config): Promise<Run> {
  const calls = Math.max(1000, Math.round(cfg.calls * SCALE));
  const gen = new BenchChild(`generator ${cfg.id}`, GEN, [String(calls), String(PIN.gen)]);
  let cons: BenchChild | undefined;
  try {
    const ready = await gen.json<{ pid: number }>(5_000); // its pid is known: the probe can be aimed at it
    if (ready.pid !== gen.pid) throw new Error(`generator ${cfg.id} reports pid ${ready.pid}, we started ${gen.pid}`);
    if (cfg.consumer !== 'none') {
      cons = spawnConsumer(cfg, gen.pid);
      const cready = await cons.json<{ pid: number }>(60_000);
      if (cready.pid !== cons.pid) throw new Error(`consumer ${cfg.id} reports pid ${cready.pid}, we started ${cons.pid}`);
    }
    gen.send('go\n');
    const g = await gen.json<GenResult>(180_000);
    await gen.exited(10_000);
    if (!cons) return { cfg, gen: g };
    // The generator is gone, so every record it caused is committed: the consumer drains the rest and reports.
    cons.signal('SIGTERM');
    const c = await cons.json<ConsumerResult>(60_000);
    await cons.exited(10_000);
    return { cfg, gen: g, cons: c };
  } finally {
    await gen.kill();
    await cons?.kill();
  }
}

/** S: RingConsumer.drain over synthetic memory, on the consumers' CPU. Returns ns per record. */
async function runSynthetic(): Promise<number> {
  const records = String(Math.max(100_000, Math.round(4e6 * SCALE)));
  const args = [TS_DRAIN, records];
  const child =
    PIN.consumer !== undefined
      ? new BenchChild('synthetic drain', 'taskset', ['-c', String(PIN.consumer), process.execPath, ...args])
      : new BenchChild('synthetic drain', process.execPath, args);
  const r = await child.report<{ ns_per_record: number; gaps: number; bad: number }>(60_000, 10_000);
  if (r.gaps || r.bad) throw new Error(`synthetic drain saw ${r.gaps} gaps and ${r.bad} bad records`);
  return r.ns_per_record;
}

// ---- metrics ----------------------------------------------------------------------------------------------

interface Metrics {
  genRate: number;
  nsPerCall: number;
  expected: number;
  received: number;
  reserveFailed: number;
  missing: number;
  lossFrac: number;
  consumedRate: number;
  cpuS: number;
  cpuNsPerEvent: number;
  coreUse: number;
  recordsPerDrain: number;
  drainsPerS: number;
  drains: number;
  ringBytes: number;
  inconsistent: string[];
}

function metrics(r: Run): Metrics {
  const { gen, cons, cfg } = r;
  const nsPerCall = gen.elapsed_ns / gen.calls;
  const expected = cons && cfg.consumer !== 'hook' ? gen.calls * cfg.rpc : 0;
  const m: Metrics = {
    genRate: 1e9 / nsPerCall,
    nsPerCall,
    expected,
    received: NaN,
    reserveFailed: NaN,
    missing: NaN,
    lossFrac: NaN,
    consumedRate: NaN,
    cpuS: NaN,
    cpuNsPerEvent: NaN,
    coreUse: NaN,
    recordsPerDrain: NaN,
    drainsPerS: NaN,
    drains: NaN,
    ringBytes: NaN,
    inconsistent: [],
  };
  if (!cons || expected === 0) return m;
  // Consumption ends at the consumer's last stamp (every 1024th record) or when the generator stopped.
  const spanS = (Math.max(cons.last_ns, gen.end_ns) - gen.start_ns) / 1e9;
  m.received = cons.received;
  m.reserveFailed = cons.reserve_failed;
  m.missing = expected - cons.received;
  m.lossFrac = m.missing / expected;
  m.consumedRate = cons.received / spanS;
  m.cpuS = cons.utime_s + cons.stime_s;
  m.cpuNsPerEvent = (m.cpuS * 1e9) / cons.received;
  m.coreUse = m.cpuS / spanS;
  // Each drain is one wakeup of the consumer: by the kernel (ring_buffer__poll) or by a timer (batching).
  m.recordsPerDrain = cons.drains ? cons.received / cons.drains : NaN;
  m.drainsPerS = cons.drains / spanS;
  m.drains = cons.drains;
  m.ringBytes = cons.ring_bytes;
  // Every record the probe tried to write is either delivered or counted as a failed reservation.
  if (cons.emitted + cons.reserve_failed !== expected) m.inconsistent.push(`emitted ${cons.emitted} + reserve failed ${cons.reserve_failed} ≠ expected ${expected}`);
  if (cons.received !== cons.emitted) m.inconsistent.push(`received ${cons.received} ≠ emitted ${cons.emitted}`);
  if (cons.bad) m.inconsistent.push(`${cons.bad} malformed records`);
  if (cons.gaps > cons.reserve_failed) m.inconsistent.push(`${cons.gaps} sequence gaps > ${cons.reserve_failed} failed reservations`);
  return m;
}

// ---- environment checks -----------------------------------------------------------------------------------

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('bench/ringbuf needs root (it loads BPF programs)');
  for (const f of [OBJ, GEN, C_CONSUMER]) {
    if (!fs.existsSync(f)) throw new Error(`${path.relative(ROOT, f)} is missing: run make build first`);
  }
}

/** Tracing links of other programs: anything else on sys_enter taxes every syscall the generator makes. */
function otherTracingLinks(): number {
  try {
    const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' }) || '[]') as { type?: string }[];
    return links.filter((l) => ['raw_tracepoint', 'tracing', 'perf_event', 'kprobe_multi', 'uprobe_multi'].includes(l.type ?? '')).length;
  } catch {
    return NaN;
  }
}

// ---- main -----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  killChildrenOnExit();
  preflight();
  const t0 = Date.now();
  const load0 = os.loadavg()[0]!;
  const links0 = otherTracingLinks();
  const runs = new Map<string, Metrics[]>(CONFIGS.map((c) => [c.id, []]));
  const warnings: string[] = [];
  const synthetic: number[] = [];

  process.stderr.write(`bench/ringbuf: ${REPS} rounds of ${CONFIGS.map((c) => c.id).join(' ')} S; generator on CPU ${PIN.gen}, consumer on CPU ${PIN.consumer ?? 'any'}\n`);
  for (let rep = 0; rep < REPS; rep++) {
    for (const cfg of CONFIGS) {
      const m = metrics(await runOnce(cfg));
      runs.get(cfg.id)!.push(m);
      for (const w of m.inconsistent) warnings.push(`${cfg.id} round ${rep + 1}: ${w}`);
      const tail = Number.isNaN(m.consumedRate)
        ? ''
        : `  consumed ${si(m.consumedRate)}/s  loss ${percent(m.lossFrac)}  cpu ${fixed(m.cpuNsPerEvent, 1)} ns/event`;
      process.stderr.write(`  round ${rep + 1} ${cfg.id.padEnd(3)} ${si(m.genRate)} calls/s${tail}\n`);
    }
    const ns = await runSynthetic();
    synthetic.push(ns);
    process.stderr.write(`  round ${rep + 1} S   ${fixed(ns, 1)} ns/record (synthetic drain)\n`);
  }
  const links1 = otherTracingLinks();
  const elapsedS = (Date.now() - t0) / 1000;

  // Medians per configuration; ratios are paired within a round (adjacent runs), then the median is taken.
  const med = (id: string, k: keyof Metrics) => median(runs.get(id)!.map((m) => m[k] as number));
  const paired = (a: string, b: string, k: keyof Metrics) =>
    median(runs.get(a)!.map((m, i) => (m[k] as number) / (runs.get(b)![i]![k] as number)));
  const wallVsA = (id: string) => paired(id, 'A', 'nsPerCall');

  const wallRows = CONFIGS.map((c) => [
    c.id,
    c.what,
    c.rpc || '–',
    si(med(c.id, 'genRate')),
    fixed(med(c.id, 'nsPerCall'), 0),
    c.id === 'A' ? '1.00' : `×${fixed(wallVsA(c.id))}`,
    c.id === 'A' ? '–' : `+${fixed(median(runs.get(c.id)!.map((m, i) => m.nsPerCall - runs.get('A')![i]!.nsPerCall)), 0)}`,
  ]);
  const consumerCfgs = CONFIGS.filter((c) => c.rpc > 0);
  const cRef = (c: Config) => (c.rpc === 1 ? 'D' : `D${c.rpc}`);
  const eRef = (c: Config) => (c.rpc === 1 ? 'E' : `E${c.rpc}`);
  const consRows = consumerCfgs.map((c) => [
    c.id,
    c.what,
    c.rpc,
    si(med(c.id, 'consumedRate')),
    fixed(med(c.id, 'reserveFailed'), 0),
    fixed(med(c.id, 'missing'), 0),
    percent(med(c.id, 'lossFrac'), 3),
    percent(Math.max(...runs.get(c.id)!.map((m) => m.lossFrac)), 3),
    fixed(med(c.id, 'cpuS'), 3),
    fixed(med(c.id, 'cpuNsPerEvent'), 1),
    percent(med(c.id, 'coreUse'), 1),
    si(med(c.id, 'recordsPerDrain')),
    c.consumer === 'vigil' ? `${fixed(paired(c.id, cRef(c), 'cpuNsPerEvent'))} / ${fixed(paired(c.id, eRef(c), 'cpuNsPerEvent'))}` : '–',
  ]);
  consRows.push(['S', 'vigil drain loop + handler, synthetic memory', '–', '–', '–', '–', '–', '–', '–', fixed(median(synthetic), 1), '–', '–', '–']);

  // ---- targets: judged on medians, explained from the numbers -----------------------------------------------
  const verdicts: string[] = [];
  const rate1 = med('C', 'consumedRate');
  const loss1 = med('C', 'lossFrac');
  const rate4 = med('C4', 'consumedRate');
  const loss4 = med('C4', 'lossFrac');
  const ok1 = rate1 >= 2e6 && loss1 < 0.01;
  const ok4 = rate4 >= 2e6 && loss4 < 0.01;
  const genBound = (id: string) => med(id, 'lossFrac') < 0.01 && med(id, 'coreUse') < 0.5;
  let t1 = `**≥ 2 M events/s consumed with < 1 % loss: ${ok1 || ok4 ? 'met' : 'NOT met'}.** `;
  t1 += `One record per call (C): ${si(rate1)}/s at ${percent(loss1, 3)} loss`;
  if (!ok1 && genBound('C')) {
    t1 += ` — bound by the generator, not the consumer: with the probe writing a record, one core makes only ${si(med('C', 'genRate'))} calls/s (${fixed(med('C', 'nsPerCall'), 0)} ns per call against ${fixed(med('A', 'nsPerCall'), 0)} ns alone), while the consumer used ${percent(med('C', 'coreUse'), 1)} of its core`;
  } else if (!ok1 && loss1 >= 0.01) {
    t1 += ` — the consumer fell behind and the ring overflowed (${fixed(med('C', 'reserveFailed'), 0)} failed reservations)`;
  } else if (!ok1) {
    t1 += ` — the consumer used ${percent(med('C', 'coreUse'), 1)} of its core and the generator made ${si(med('C', 'genRate'))} calls/s`;
  }
  t1 += `. Four records per call (C4): ${si(rate4)}/s at ${percent(loss4, 3)} loss, the consumer using ${percent(med('C4', 'coreUse'), 1)} of its core.`;
  verdicts.push(t1);

  const r1 = paired('C', 'D', 'cpuNsPerEvent');
  const r4 = paired('C4', 'D4', 'cpuNsPerEvent');
  const ok2 = r1 <= 1.5 && r4 <= 1.5;
  let t2 = `**Consumer CPU per event within 1.5× of the C consumer (libbpf ring_buffer__poll): ${ok2 ? 'met' : 'NOT met'}** `;
  t2 += `(vigil/C = ${fixed(r1)} with one record per call, ${fixed(r4)} with four; ${fixed(med('C', 'cpuNsPerEvent'), 1)} / ${fixed(med('C4', 'cpuNsPerEvent'), 1)} ns against ${fixed(med('D', 'cpuNsPerEvent'), 1)} / ${fixed(med('D4', 'cpuNsPerEvent'), 1)}). `;
  t2 += `ring_buffer__poll drains whenever it is woken, and the kernel wakes a consumer that has caught up on its very next record, so D wakes every ${fixed(med('D', 'recordsPerDrain'), 1)} records (vigil: every ${si(med('C', 'recordsPerDrain'))}) and its generator runs ×${fixed(wallVsA('D'))} slower than alone (×${fixed(wallVsA('C'))} under vigil). `;
  t2 += ok2
    ? 'Wakeups, not copying, are the cost, on both sides of the ring: vigil is cheaper per event because it is woken far less often.'
    : 'vigil loses on per-record work despite waking less often: see the comparison with E below.';
  verdicts.push(t2);

  // Not a target of the issue: the same comparison with the wakeup policy held equal, to see decoding alone.
  const e1 = paired('C', 'E', 'cpuNsPerEvent');
  const e4 = paired('C4', 'E4', 'cpuNsPerEvent');
  const eWithin = e1 <= 1.5 && e4 <= 1.5;
  let t3 = `**For comparison only, against a C consumer with vigil's own wakeup policy (E):** vigil/C = ${fixed(e1)} (one record per call) and ${fixed(e4)} (four), ${eWithin ? 'within' : 'outside'} 1.5×. `;
  t3 += `E spends ${fixed(med('E', 'cpuNsPerEvent'), 1)} / ${fixed(med('E4', 'cpuNsPerEvent'), 1)} ns per event against vigil's ${fixed(med('C', 'cpuNsPerEvent'), 1)} / ${fixed(med('C4', 'cpuNsPerEvent'), 1)}. `;
  t3 += `Both wake about as often (vigil ${fixed(med('C', 'drainsPerS'), 0)} drains/s, E ${fixed(med('E', 'drainsPerS'), 0)}/s). `;
  t3 += `vigil's drain loop and handler alone, over synthetic ring memory with warm caches and no kernel (S), cost ${fixed(median(synthetic), 1)} ns per record`;
  t3 += eWithin
    ? '.'
    : `${median(synthetic) > med('E', 'cpuNsPerEvent') ? ', already above E\'s whole cost per event' : ''}: ` +
      'per-record work in JavaScript, a handler call with DataView reads per record, and an Atomics.load of each record header, which V8 runs as a call rather than as a plain load. The rest, live vigil minus S, is what the live setting adds: the event loop and its timer per drain, JIT warm-up within a run, and records that arrive cold from the other core\'s cache.';
  verdicts.push(t3);

  const notes = [
    `S: \`bench/ringbuf/drain.ts\`, RingConsumer.drain with the bench handler over a synthetic 16 MiB ring in batches of 4096 records, timed around the drain only.`,
    `Each configuration ran ${REPS} times, alternating (${CONFIGS.map((c) => c.id).join(' ')} S, then again); the table shows medians, and ratios are taken within a round, then the median. The whole benchmark took ${fixed(elapsedS, 0)} s.`,
    `Generator: \`build/bench/getppid_gen\`, getppid() in a loop${PIN.gen >= 0 ? ` pinned to CPU ${PIN.gen}` : ''}; consumers${PIN.consumer !== undefined ? ` pinned to CPU ${PIN.consumer}` : ' unpinned'}, each in its own process. Probe: \`bench/bpf/ringbuf.bpf.c\` on raw_tp/sys_enter, 64-byte records through vigil_reserve/vigil_submit into a ${fixed(med('C', 'ringBytes') / 2 ** 20, 0)} MiB ring.`,
    'Loss is counted twice: the kernel\'s failed reservations (vigil_stats) and expected − received (calls × records per call − records delivered); the per-CPU sequence numbers are checked for gaps too.',
    'Consumer CPU is the consumer process\'s user + system time (getrusage) from attach to its final drain, so loading and verifying the object is not counted. "core use" is that CPU over the consumption wall time.',
    `Machine load: 1-min load average ${fixed(load0)} at start; other BPF tracing links attached: ${links0} at start, ${links1} at end${links0 || links1 ? ' (other programs on syscall hooks slow every configuration alike, but inflate absolute numbers)' : ''}.`,
  ];
  if (warnings.length) notes.push(`Inconsistencies: ${warnings.join('; ')}.`);

  const body = [
    'Per-call cost of the workload (getppid) under each configuration, against the generator alone (A):',
    '',
    markdownTable(['config', 'what', 'records/call', 'calls/s', 'ns/call', 'wall vs A', 'ns/call added'], wallRows),
    '',
    'Consumers:',
    '',
    markdownTable(
      ['config', 'consumer', 'records/call', 'events consumed/s', 'lost (kernel)', 'lost (expected − received)', 'loss', 'worst loss', 'consumer CPU s', 'CPU ns/event', 'core use', 'records/drain', 'CPU/event vigil ÷ C (D / E)'],
      consRows,
    ),
    '',
    ...verdicts.map((v) => `- ${v}`),
    '',
    ...notes.map((n) => `- ${n}`),
  ].join('\n');

  process.stdout.write(`\n${body}\n`);
  if (WRITE) {
    const file = writeSection('ringbuf', body, { title: 'ringbuf: ring-buffer consumer throughput, loss and CPU', command: 'npm run bench:ringbuf' });
    process.stderr.write(`\nwrote ${path.relative(ROOT, file)} (section ringbuf)\n`);
  }
}

try {
  await main();
} catch (err) {
  await killAll();
  process.stderr.write(`bench/ringbuf failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
