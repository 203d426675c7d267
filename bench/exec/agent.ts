// bench/exec: vigil's side of the exec storm, as its own process: a ProcessResolver in BPF mode (process
// sensor, /proc snapshot, cache with scrubbing) whose onEvent enriches every exec event (lineage, user and
// group names, creds, container ids) and writes it as a JSON line to a file through a batching writer.
//
// usage: node --expose-gc bench/exec/agent.ts OUT RUN N
//   OUT: the JSON-lines file; RUN and N: the storm's run id and exec count (its events are counted by index).
//   VIGIL_BENCH_HEAP_PROFILE=FILE: a sampling allocation profile (collected objects included) of ready →
//   SIGTERM there: where the per-exec garbage comes from (diagnostics only).
//   VIGIL_BENCH_PROFILE=FILE: write a CPU profile of ready → SIGTERM there (diagnostics only). The profiler is
//   started after load on purpose: its SIGPROF interrupts the verifier, and the load then fails.
// Prints {"ready":true,…} once attached (with memory and cache figures at that point); on SIGUSR2 drains and
// prints {"mark":true,…} with the CPU used so far, and counts CPU from there; on SIGTERM drains
// the ring, flushes the file and prints its counts: storm execs seen, CPU since ready, RSS, cache and kernel
// loss counters.
import fs from 'node:fs';
import type { ExecEvent, ProcessEvent } from '../../src/events/types.ts';
import { VIGIL_OPCODE } from '../../src/events/layout.generated.ts';
import { ProcessResolver } from '../../src/process/resolver.ts';
import { UserResolver } from '../../src/process/users.ts';
import { BatchWriter, MARKER, execLine } from './output.ts';
import { startProfiles } from '../lib/profile.ts';

const [out, run, nArg] = process.argv.slice(2);
if (!out || run === undefined || nArg === undefined) {
  process.stderr.write('usage: agent.ts OUT RUN N\n');
  process.exit(2);
}
const N = Number(nArg);
const gc = (globalThis as { gc?: () => void }).gc;

const writer = new BatchWriter(out);
const users = new UserResolver();
const seen = new Uint8Array(N);
const counts = { exec: 0, fork: 0, exit: 0, other: 0, storm: 0, stormDistinct: 0, stormDuplicates: 0, stormOutOfRange: 0, sentinel: 0 };

function countStorm(ev: ExecEvent): void {
  const a = ev.argv;
  if (a[1] !== MARKER || a[2] !== run) return;
  counts.storm++;
  if (a[3] === 'sentinel') {
    counts.sentinel++;
    return;
  }
  const i = Number(a[3]);
  if (!Number.isInteger(i) || i < 0 || i >= N) {
    counts.stormOutOfRange++;
    return;
  }
  if (seen[i]) counts.stormDuplicates++;
  else {
    seen[i] = 1;
    counts.stormDistinct++;
  }
}

const t0 = performance.now();
const resolver = new ProcessResolver({ mode: 'bpf' });
const onEvent = (ev: ProcessEvent): void => {
  switch (ev.type) {
    case 'exec':
      counts.exec++;
      writer.write(execLine(resolver.cache, users, ev));
      countStorm(ev);
      break;
    case 'fork':
      counts.fork++;
      break;
    case 'exit':
      counts.exit++;
      break;
    default:
      counts.other++;
  }
};

/**
 * On-CPU time (ns, schedstat) of this process's threads by kind: the main thread (JavaScript, the event loop,
 * the GC work V8 does there), V8's helper threads (parallel and concurrent GC, compilation), libuv's thread
 * pool (file writes) and anything else.
 */
function threadCpu(): { main: number; v8: number; libuv: number; other: number } {
  const out = { main: 0, v8: 0, libuv: 0, other: 0 };
  for (const t of fs.readdirSync('/proc/self/task')) {
    try {
      const ns = Number(fs.readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      const comm = fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
      if (t === String(process.pid)) out.main += ns;
      else if (comm.startsWith('V8') || comm.startsWith('v8')) out.v8 += ns;
      else if (comm.startsWith('libuv')) out.libuv += ns;
      else out.other += ns;
    } catch {
      // the thread ended: its time is gone from the process's threads (rare: Node keeps its threads)
    }
  }
  return out;
}

function memory(): { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number } {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

let stopped = false;
function cleanup(): void {
  if (stopped) return;
  stopped = true;
  resolver.stop();
}
process.on('exit', cleanup);

try {
  resolver.start({ onEvent });
} catch (err) {
  process.stderr.write(`agent: ${(err as Error).message}\n`);
  process.exit(1);
}
const startupMs = performance.now() - t0;
const st = resolver.stats();
const readyMemory = memory();
gc?.(); // the snapshot's garbage: the heap after it is what the cache holds
const atReady = { memory: readyMemory, heapAfterGc: process.memoryUsage().heapUsed, cacheSize: resolver.cache.size, live: st.cache.live };

const PROFILE = process.env.VIGIL_BENCH_PROFILE;
const HEAP_PROFILE = process.env.VIGIL_BENCH_HEAP_PROFILE;
// Allocations sampled every 512 bytes: an exec's few KiB show up in detail.
const stopProfiles = await startProfiles({ cpu: PROFILE, heap: HEAP_PROFILE, heapIntervalBytes: 512 });

// CPU is counted from here: loading, verifying and the /proc snapshot are start-up, not per-exec work.
let cpu0 = process.cpuUsage();
let threads0 = threadCpu();
const reader = () => resolver.manager?.eventReader;
/** Takes everything committed to the ring now (the storm has ended: nothing more is coming). */
const drainAll = (): void => {
  const r = reader();
  if (r) while (r.drain() > 0);
};

// SIGUSR2 (after a warm-up storm): take what is left of it, print the CPU it cost, and count from here on.
process.on('SIGUSR2', () => {
  drainAll();
  const cpu = process.cpuUsage(cpu0);
  const threads = threadCpu();
  process.stdout.write(`${JSON.stringify({ mark: true, cpu_s: (cpu.user + cpu.system) / 1e6, main_s: (threads.main - threads0.main) / 1e9, v8_s: (threads.v8 - threads0.v8) / 1e9, counts: { ...counts } })}\n`);
  cpu0 = process.cpuUsage();
  threads0 = threads;
});
process.stdout.write(
  `${JSON.stringify({
    ready: true,
    pid: process.pid,
    startup_ms: startupMs,
    snapshot: st.snapshotProcesses,
    seeded: st.kernelMapSeeded,
    probes: (st.sensor?.probes ?? []).filter((p) => p.state === 'running').map((p) => p.target ?? JSON.stringify(p.id)),
    channel: st.sensor?.channel,
    ...atReady,
  })}\n`,
);

process.once('SIGTERM', () => {
  void (async () => {
    // The storm has exited, so every record it caused is committed: take what is left, then write it out.
    drainAll();
    await writer.close();
    const cpu = process.cpuUsage(cpu0);
    const threads1 = threadCpu();
    await stopProfiles();
    const memBeforeGc = memory();
    const s = resolver.stats();
    const k = resolver.manager?.kernelCounters();
    const rs = reader()?.stats();
    cleanup();
    gc?.();
    const memAfterGc = memory();
    const report = {
      counts,
      cpu_user_s: cpu.user / 1e6,
      cpu_system_s: cpu.system / 1e6,
      thread_cpu_s: {
        main: (threads1.main - threads0.main) / 1e9,
        v8: (threads1.v8 - threads0.v8) / 1e9,
        libuv: (threads1.libuv - threads0.libuv) / 1e9,
        other: (threads1.other - threads0.other) / 1e9,
      },
      memory: memBeforeGc,
      memory_after_gc: memAfterGc,
      cache: { size: s.cache.size, live: s.cache.live, exited: s.cache.exited, evictions: s.cache.evictions, brokenLineage: s.cache.brokenLineage, heldFallback: s.cache.heldFallback, threadEvents: s.cache.threadEvents, hits: s.cache.hits, misses: s.cache.misses },
      decode_errors: s.decodeErrors,
      kernel: {
        emitted: k?.emitted ?? NaN,
        reserve_failed: k?.reserveFailed ?? NaN,
        output_failed: k?.outputFailed ?? NaN,
        lost_exec: k?.lostByOpcode[VIGIL_OPCODE.EXEC] ?? 0,
        lost_by_opcode: k?.lostByOpcode ?? {},
      },
      reader: rs ? { received: rs.received, wakeups: rs.wakeups, forced_wakeups: rs.forcedWakeups, drains: rs.drains, handler_errors: rs.handlerErrors } : undefined,
      writer: writer.stats(),
      users: users.stats(),
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  })().catch((err: unknown) => {
    process.stderr.write(`agent: ${(err as Error).message}\n`);
    process.exitCode = 1;
    cleanup();
  });
});
