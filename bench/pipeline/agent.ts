// bench/pipeline, vigil's side of the live run: the real Agent (src/agent/agent.ts: shared ring, process,
// cgroup and syscall sensors, the ring reader, the pipeline, the container resolver) with the bench's
// configuration, writing JSON lines through the real file sink to a real file.
//
// usage: node bench/pipeline/agent.ts OUT_FILE
//   prints {"ready":true,...} once the agent runs; on SIGTERM reads the ring to its end, waits for
//   the file sink to have written everything, and prints its counts and the CPU it used since ready (user and
//   system time of the whole process, the sink's writes on libuv's threads included); then stops the agent.
//   SIGUSR2 ends a warm-up: the agent takes everything the kernel emitted so far, as it does on SIGTERM,
//   warms the pages of the next phase's writes again (memory.ts), prints the same report with "warm":true,
//   and starts its counts and CPU again from there (the SIGTERM
//   report then covers the time since). A long-running agent runs code V8 has compiled already; a storm into
//   a fresh agent measures its JIT compiling the hot path too.
//   VIGIL_BENCH_TRACE=1 prints the counters every 250 ms on stderr; VIGIL_BENCH_PROFILE=FILE writes a CPU
//   profile of ready → stop there, VIGIL_BENCH_HEAP=FILE a sampled allocation profile (diagnostics).
import fs from 'node:fs';
import path from 'node:path';
import { Agent } from '../../src/agent/agent.ts';
import { FileSink } from '../../src/sinks/file.ts';
import { prewarmPages } from '../lib/memory.ts';
import { startProfiles } from '../lib/profile.ts';
import { removeOldOutput } from '../lib/report.ts';
import { benchConfig } from './config.ts';

const [out] = process.argv.slice(2);
if (!out) {
  process.stderr.write('usage: agent.ts OUT_FILE\n');
  process.exit(2);
}

removeOldOutput(out);
const dir = fs.mkdtempSync(path.join(path.dirname(out), 'vigil-bench-agent-'));
// No API, no store, no stdout: the file sink is the only output.
const config = benchConfig({ agent: { dataDir: path.join(dir, 'data'), socket: path.join(dir, 'vigil.sock') }, sinks: { stdout: { enabled: false }, store: { enabled: false } } });
const sink = new FileSink({ path: out, maxSizeBytes: 2 ** 40 });
const agent = new Agent({ config, sinks: [sink] });
let stopped = false;

/** The agent's counts now: the report gives them since the end of the warm-up. */
function counts() {
  const st = agent.status();
  const k = st.sinks[sink.name];
  return {
    records: st.pipeline.records,
    events: st.pipeline.emitted,
    decoded: st.pipeline.decoded,
    received: st.reader?.received ?? 0,
    drains: st.reader?.drains ?? 0,
    wakeups: st.reader?.wakeups ?? 0,
    pastRoom: st.reader?.pastRoom ?? 0,
    emitted: st.kernel.emitted,
    reserveFailed: st.kernel.reserveFailed,
    sinkReceived: k?.received ?? 0,
    sinkSent: k?.sent ?? 0,
    dropped: { ...(k?.dropped ?? {}) } as Record<string, number>,
  };
}
type Counts = ReturnType<typeof counts>;

/**
 * The generator is done: lets the reader take the backlog at its own pace (a synchronous drain of a full
 * ring would hand the sink more lines in one turn than its queue holds), until it has every record the
 * kernel had emitted when we were told; then the reorder window releases what it holds on its own timer
 * (agent.drain() would also read the ring to its end in one synchronous go: the machine's other activity,
 * too), and the sink writes everything.
 */
async function settle(): Promise<void> {
  const target = agent.kernelCounters().emitted;
  const sleep = () => new Promise((r) => setTimeout(r, 5));
  while ((agent.status().reader?.received ?? target) < target) await sleep();
  for (let i = 0; i < 200 && agent.status().pipeline.buffered > 0; i++) await sleep();
  await sink.flush();
}
async function stop(): Promise<void> {
  if (stopped) return;
  stopped = true;
  await agent.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

try {
  await agent.start();
  prewarmPages(path.dirname(out));
  let c0 = process.cpuUsage();
  let t0 = performance.now();
  // VIGIL_BENCH_PROFILE=FILE: a CPU profile of ready → stop (diagnostics). Started after the sensors loaded:
  // the profiler's SIGPROF interrupts the verifier, and a load would fail.
  const stopProfiles = await startProfiles({ cpu: process.env.VIGIL_BENCH_PROFILE, heap: process.env.VIGIL_BENCH_HEAP });
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
  // VIGIL_BENCH_TRACE=1: the counters every 250 ms on stderr (diagnostics).
  if (process.env.VIGIL_BENCH_TRACE) {
    setInterval(() => {
      const st = agent.status();
      const k = st.sinks[sink.name]!;
      process.stderr.write(`trace received ${st.reader?.received} emitted ${st.pipeline.emitted} buffered ${st.pipeline.buffered} sink queued ${k.queued} sent ${k.sent} dropped ${JSON.stringify(k.dropped)} kernel lost ${st.kernel.reserveFailed}\n`);
    }, 250).unref();
  }
  // One phase per signal: SIGUSR2 reports the warm-up and starts the next phase, SIGTERM reports the last.
  for (let base = counts(); ; ) {
    const sig = await new Promise<string>((resolve) => {
      const on = (s: string) => {
        process.off('SIGTERM', on);
        process.off('SIGUSR2', on);
        resolve(s);
      };
      process.on('SIGTERM', on);
      process.on('SIGUSR2', on);
    });
    await settle();
    const cpu = process.cpuUsage(c0);
    const doneNs = Number(process.hrtime.bigint()); // CLOCK_MONOTONIC, as the generator's stamps
    const wall = (performance.now() - t0) / 1000;
    const end = counts();
    const since = (k: keyof Counts): number => (end[k] as number) - (base[k] as number);
    const dropped = Object.fromEntries(Object.entries(end.dropped).map(([k, n]) => [k, n - (base.dropped[k] ?? 0)]));
    const report = {
      records: since('records'),
      events: since('events'),
      decoded: since('decoded'),
      received: since('received'),
      drains: since('drains'),
      wakeups: since('wakeups'),
      pastRoom: since('pastRoom'),
      kernel: { emitted: since('emitted'), reserveFailed: since('reserveFailed') },
      sink: { received: since('sinkReceived'), sent: since('sinkSent'), dropped },
      wall_s: wall,
      done_ns: doneNs,
      utime_s: cpu.user / 1e6,
      stime_s: cpu.system / 1e6,
    };
    if (sig === 'SIGTERM') {
      await stopProfiles();
      process.stdout.write(`${JSON.stringify(report)}\n`);
      break;
    }
    // The next phase's pages, warmed as before the first (memory.ts): the warm-up's storm used some of the
    // first warming, and what was left was reported back to the host seconds ago. Without this, the
    // measured storm's writes paid host faults the C consumers, warmed right before their storm, do not.
    prewarmPages(path.dirname(out));
    base = counts();
    c0 = process.cpuUsage();
    t0 = performance.now();
    process.stdout.write(`${JSON.stringify({ warm: true, ...report })}\n`);
  }
  await stop();
} catch (err) {
  process.stderr.write(`agent: ${(err as Error).stack ?? err}\n`);
  await stop().catch(() => {});
  process.exitCode = 1;
}
