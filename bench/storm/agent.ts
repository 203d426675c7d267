// bench/storm: the real Agent (the one `vigil run` runs: shared ring, process, cgroup and syscall sensors,
// pipeline with enrichment, sinks) in its own process, which the parent pins to the core the storm does not
// use. Configured by the caller (open events of the storm's comm, a JSONL file sink); no API server.
//
// usage: node bench/storm/agent.ts CONFIG_JSON
//   VIGIL_BENCH_PROFILE=FILE: a CPU profile of ready → stop (diagnostics only; started after load, because
//   the profiler's SIGPROF interrupts the verifier).
// Prints {"ready":true,…} once running. Each "status" line on stdin prints the counters that tell whether it
// has caught up (kernel emitted, reader received, pipeline and sink counts; "full" adds the reader's wakeups
// and drains, the pipeline's counts per type and the filters' drops). On SIGTERM it stops
// the agent (sensors detached, ring drained, sinks flushed and closed) and prints its report: the same
// counters, final, and its CPU since ready.
import { createInterface } from 'node:readline';
import { Agent } from '../../src/agent/agent.ts';
import { validateConfig } from '../../src/config/config.ts';
import { startProfiles } from '../lib/profile.ts';
import { threadCpuMsSince, threadCpuNs } from '../lib/threads.ts';

const [configArg] = process.argv.slice(2);
if (!configArg) {
  process.stderr.write('usage: agent.ts CONFIG_JSON\n');
  process.exit(2);
}

const t0 = performance.now();
const agent = new Agent({ config: validateConfig(JSON.parse(configArg), 'bench/storm') });
try {
  await agent.start();
} catch (err) {
  process.stderr.write(`agent: ${(err as Error).message}\n`);
  await agent.stop();
  process.exit(1);
}
const startupMs = performance.now() - t0;

const PROFILE = process.env.VIGIL_BENCH_PROFILE;
const stopProfiles = await startProfiles({ cpu: PROFILE });

/**
 * The counters that say where the records are. `full` adds the pipeline's per-type counts and the filters'
 * drops (agent.status(), which also reads every probe's kernel statistics: too costly to poll).
 */
function counters(full: boolean) {
  const a = agent.accounting();
  const s = full ? agent.status() : undefined;
  return {
    kernel: { emitted: a.kernel.emitted, reserve_failed: a.kernel.lost.ringFull, output_failed: a.kernel.lost.outputFailed },
    reader: { received: a.reader.received, unread: a.unread },
    pipeline: { records: a.pipeline.records, emitted: a.pipeline.events, buffered: a.pipeline.buffered, dropped: a.pipeline.dropped, by_type: s?.pipeline.byType },
    sinks: Object.fromEntries(Object.entries(a.sinks).map(([k, v]) => [k, { received: v.received, sent: v.sent, queued: v.queued, dropped: v.dropped }])),
    filters: s?.syscalls?.filters,
    balanced: a.balanced,
  };
}

const cpu0 = process.cpuUsage();
const threads0 = threadCpuNs();
const st = agent.status();
process.stdout.write(
  `${JSON.stringify({
    ready: true,
    pid: process.pid,
    startup_ms: startupMs,
    channel: st.mode.channel,
    probes: st.sensors.flatMap((m) => m.probes.filter((p) => p.state === 'running').map((p) => `${m.name}:${p.target}`)),
  })}\n`,
);

createInterface({ input: process.stdin }).on('line', (l) => {
  const cmd = l.trim();
  if (cmd === 'status') process.stdout.write(`${JSON.stringify({ status: true, ...counters(false), cpu_s: cpuS() })}\n`);
  else if (cmd === 'full') {
    const s = agent.status();
    process.stdout.write(`${JSON.stringify({ status: true, ...counters(true), wakeups: s.reader?.wakeups, drains: s.reader?.drains, room_waits: s.reader?.creditWaits, past_room: s.reader?.pastRoom, cpu_s: cpuS() })}\n`);
  }
});

function cpuS(): number {
  const c = process.cpuUsage(cpu0);
  return (c.user + c.system) / 1e6;
}

process.once('SIGTERM', () => {
  void (async () => {
    await stopProfiles();
    await agent.stop(); // detach, drain the ring to its end, flush the pipeline, close the sinks
    const cpu = cpuS();
    const out = { report: true, ...counters(true), cpu_s: cpu, threads_ms: threadCpuMsSince(threads0), rss: process.memoryUsage().rss };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    process.exit(0);
  })().catch((err: unknown) => {
    process.stderr.write(`agent: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
});
