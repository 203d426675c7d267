// bench/pipeline, vigil's side of the replay: the recorded ring records fed through the agent's pipeline
// exactly as the ring reader feeds it (Pipeline.handleRecord over a DataView, in batches, yielding to the
// event loop between batches as the reader's 1 ms drains do): decode, reorder window, process cache updates,
// enrichment (process, parent, ancestry, user name, container) against a cache seeded from the recording's
// /proc snapshot, routing, one JSON serialisation, and the real file sink writing JSON lines to a real file.
//
// usage: node bench/pipeline/replay.ts RECORDING_DIR LOOPS_FILE PASSES WARM OUT_FILE [STAGE]
//   LOOPS_FILE holds PASSES shifted passes of the recording (recording.ts); the first WARM passes warm the
//   JIT and the cache and are not timed. Prints one JSON line with counts, wall time and CPU time of the rest.
//   STAGE stops the pipeline early, for the breakdown of where the time goes (differences between stages):
//     decode  the decoders alone, record by record
//     state   the pipeline up to its state: decode, reorder window, process cache, container resolver; no
//             event is wanted, so none is enriched or serialised
//     line    the whole pipeline, lines written as for the file sink into a sink that discards them: no file
//     full    everything, the file sink included (default)
//     rules   everything, and the default detection rules checking the events of their types (as the agent
//             runs them: a router subscriber, event objects built for it, checked in batches)
//     sse     everything, and an event stream (GET /v1/events/stream) taking every event: the API's own
//             subscriber (subscribeStream), its SSE records written to /dev/null
//   VIGIL_BENCH_PROFILE=FILE writes a CPU profile of the timed passes there, VIGIL_BENCH_HEAP=FILE a sampled
//   allocation profile (garbage included) instead (diagnostics). VIGIL_BENCH_WINDOW=1 prints the timed
//   window's start and end on CLOCK_MONOTONIC to stderr ("window <ns> <ns>"), for `perf record -k
//   CLOCK_MONOTONIC` reports cut to it (--time): what runs after it (fsync at close, teardown) is not timed.
import fs from 'node:fs';
import path from 'node:path';
import { prewarmPages } from '../lib/memory.ts';
import { startProfiles } from '../lib/profile.ts';
import { removeOldOutput } from '../lib/report.ts';
import { threadCpuMsSince, threadCpuNs } from '../lib/threads.ts';
import { detectCgroupLayout } from '../../src/containers/cgroups.ts';
import { ContainerResolver } from '../../src/containers/resolver.ts';
import { opcodeOf } from '../../src/events/decode.ts';
import { calibrate } from '../../src/pipeline/clock.ts';
import { RecordArena } from '../../src/pipeline/held.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { Router } from '../../src/pipeline/router.ts';
import { subscribeStream } from '../../src/api/stream.ts';
import type { ByteLine } from '../../src/pipeline/json-bytes.ts';
import type { LineRoom, Sink, SinkStats } from '../../src/pipeline/types.ts';
import { agentEnrichment, pipelineTables } from '../../src/pipeline/tables.ts';
import { ProcessCache } from '../../src/process/cache.ts';
import { Scrubber } from '../../src/process/scrub.ts';
import { UserResolver } from '../../src/process/users.ts';
import { RuleEngine, type RulesStatus } from '../../src/rules/engine.ts';
import { ruleSetFor } from '../../src/rules/rules.ts';
import { FileSink } from '../../src/sinks/file.ts';
import { normalizeSyscallConfig } from '../../src/syscalls/config.ts';
import { syscallSensorConfig } from '../../src/config/config.ts';
import { benchConfig } from './config.ts';
import { FRAME, readRecording } from './recording.ts';

const [dir, loopsFile, passesArg, warmArg, out, stageArg = 'full'] = process.argv.slice(2);
const PASSES = Number(passesArg);
const WARM = Number(warmArg);
const STAGES = ['decode', 'state', 'line', 'full', 'rules', 'sse'] as const;
const STAGE = stageArg as (typeof STAGES)[number];
if (!dir || !loopsFile || !out || !(PASSES >= 1) || !(WARM >= 0 && WARM < PASSES) || !STAGES.includes(STAGE)) {
  process.stderr.write('usage: replay.ts RECORDING_DIR LOOPS_FILE PASSES WARM OUT_FILE [decode|state|line|full|rules|sse]\n');
  process.exit(2);
}
/** Records per event-loop turn: what one 1 ms drain of the ring reader hands over at about 1 M records/s. */
const BATCH = 1024;
/** The sink's queue is bounded (100 k lines): above this many queued lines the feeder waits for the disk. */
const BACKPRESSURE = 50_000;

const { meta } = readRecording(dir);
const cfg = benchConfig();
const tables = pipelineTables(cfg.events, normalizeSyscallConfig(syscallSensorConfig(cfg)).ops);
const users = new UserResolver();
// The cache the agent's ProcessResolver builds, minus the kernel-map and /proc lookups: this machine's /proc
// says nothing about the recorded processes (every one of them is in the snapshot or forked in the stream).
const cache = new ProcessCache({
  scrubber: new Scrubber(cfg.process.scrub),
  exitedGraceMs: cfg.process.exitedGraceSeconds * 1000,
  maxEntries: cfg.process.maxEntries,
});
for (const p of meta.snapshot) cache.apply(p);
// Real container resolution over this machine's cgroups; no runtime clients, so nothing is queried.
const containers = new ContainerResolver({ layout: detectCgroupLayout(), clients: [], expiryMs: cfg.containers.expirySeconds * 1000 });
containers.start();
const router = new Router(cfg.pipeline.subscriberQueue);
removeOldOutput(out);
const sink = new FileSink({ path: out, maxSizeBytes: 2 ** 40 });
calibrate();
/**
 * The 'line' stage's sink: takes lines and drops them, to tell the file's cost from the pipeline's. It lets
 * lines be written in place, one or a batch at a time, as the file sink does, into a scratch buffer written
 * over each time: the pipeline writes lines the same way it does for the file sink (native/lines.c when it
 * is built), so that 'full' minus 'line' is the file sink's queue and writes, not a change of line writer.
 */
class DiscardSink implements Sink {
  readonly name = 'discard';
  received = 0;
  readonly #scratch = Buffer.alloc(1 << 20);
  write(): void {
    this.received++;
  }
  writeLine(): void {
    this.received++;
  }
  writeBytes(): void {
    this.received++;
  }
  placeLine(w: ByteLine): void {
    w.into(this.#scratch, 0, this.#scratch.length - 1);
  }
  commitPlaced(): void {
    this.received++;
  }
  placeLines(room: LineRoom): void {
    room.buf = this.#scratch;
    room.at = 0;
    room.end = this.#scratch.length;
  }
  commitLines(_ends: Int32Array, n: number): void {
    this.received += n;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  stats(): SinkStats {
    return { received: this.received, sent: this.received, dropped: {}, queued: 0, retries: 0 };
  }
}
const discard = new DiscardSink();

const pipeline = new Pipeline({
  ...tables,
  // 'state': nothing is wanted, every record stops after the state updates.
  types: STAGE === 'state' ? new Set<string>() : tables.types,
  cache,
  containers,
  enrich: agentEnrichment(users),
  router,
  sinks: STAGE === 'line' ? [discard] : [sink],
  reorderWindowMs: cfg.pipeline.reorderWindowMs,
  holdForEnrichmentMs: cfg.pipeline.holdForEnrichmentMs,
});
// 'rules': the default rule set, as the agent loads it when rules are on (the bench's config turns them off).
const rules = new RuleEngine({ router, emit: (alert) => pipeline.emitSynthetic(alert), queue: cfg.rules.queue });
if (STAGE === 'rules') rules.setRules(ruleSetFor({ ...cfg.rules, enabled: true }));
// 'sse': a client streaming every event, through the API's subscriber; its writes go to /dev/null (a socket
// write per batch, as the API's are, without a reader's side).
const devNull = fs.openSync('/dev/null', 'w');
let streamBytes = 0;
const streamId =
  STAGE === 'sse'
    ? subscribeStream(router, 'sse:bench', {}, {
        writableLength: 0,
        write: (chunk: Buffer, done: () => void) => {
          streamBytes += fs.writeSync(devNull, chunk);
          done();
        },
      })
    : undefined;
const streamStats = () => router.stats().find((x) => x.id === streamId);

const buf = fs.readFileSync(loopsFile);
const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
const passBytes = buf.length / PASSES;
if (!Number.isInteger(passBytes)) throw new Error(`${loopsFile}: ${buf.length} bytes is not ${PASSES} equal passes`);
const tick = () => new Promise<void>((r) => setImmediate(r));

/**
 * The decoders alone, as the pipeline calls them: held kinds are checked and copied out, the rest decoded.
 * A held record goes back to the arena at once, as the pipeline gives it back once its line is written:
 * kept, every record was a fresh allocation the pipeline never makes, which overstated decode.
 */
const arena = new RecordArena();
const decodeOnly = (v: DataView, off: number, len: number): void => {
  const op = opcodeOf(v, off, len);
  const held = tables.held.get(op);
  if (!held) tables.decoders.get(op)?.(v, off, len);
  else {
    const type = held.typeOf(v, off, len);
    if (typeof type === 'string') arena.release(arena.hold(type, held, v, off, len));
  }
};

let fed = 0;

/** What the rule engine did since `before` (undefined: no rules). */
function rulesSince(before: RulesStatus | undefined): { received: number; prefiltered: number; dropped: number; alerts: number; errors: number } | undefined {
  const now = rules.status();
  if (!now || !before) return undefined;
  return { received: now.received - before.received, prefiltered: now.prefiltered - before.prefiltered, dropped: now.dropped - before.dropped, alerts: now.alerts - before.alerts, errors: now.errors - before.errors };
}

/** Feeds bytes [from, to) of the loops file, record by record, as the ring reader would. */
async function feed(from: number, to: number): Promise<void> {
  const handle = STAGE === 'decode' ? decodeOnly : pipeline.handleRecord;
  let p = from;
  while (p < to) {
    for (let n = 0; n < BATCH && p < to; n++) {
      const len = view.getUint32(p, true);
      handle(view, p + FRAME, len);
      p += FRAME + ((len + 7) & ~7);
      fed++;
    }
    if (sink.stats().queued > BACKPRESSURE) await sink.flush();
    else await tick();
  }
}

/** Everything fed so far out of the pipeline, the rules and the stream, and written by the sink. */
async function drainAll(): Promise<void> {
  pipeline.flush();
  rules.flush(); // the last checks and their alerts are part of the run
  pipeline.flush();
  if (streamId !== undefined) router.flush(streamId); // and the stream's last batch
  await sink.flush();
}

// The warm-up in two halves, drained in between as it is drained before the timed part: the hot path V8
// compiles has then seen the sink go idle and start again, the feeder come back, as an agent's has after
// its first seconds. Warmed in one go, the code compiled for it met those paths first at the timed part's
// start, and V8 threw it away and compiled it again inside the timed part (4 deoptimisations, ~20 ms of
// compiling on V8's threads, ~50 ns per event; --trace-deopt).
const warmHalf = Math.floor(WARM / 2) * passBytes;
await feed(0, warmHalf);
await drainAll();
await feed(warmHalf, WARM * passBytes);
await drainAll();
const rules0 = rules.status();
const stream0 = streamStats();
const streamBytes0 = streamBytes;
prewarmPages(path.dirname(out));

// 50 µs between CPU samples: enough samples for a flat profile.
const stopProfiles = await startProfiles({ cpu: process.env.VIGIL_BENCH_PROFILE, heap: process.env.VIGIL_BENCH_HEAP, cpuIntervalUs: 50 });
const before = pipeline.counters();
const fed0 = fed;
const m0 = process.hrtime.bigint();
const th0 = threadCpuNs();
const t0 = performance.now();
const c0 = process.cpuUsage();
const f0 = process.resourceUsage();
await feed(WARM * passBytes, buf.length);
await drainAll();
const c1 = process.cpuUsage(c0);
const threadsMs = threadCpuMsSince(th0);
const f1 = process.resourceUsage();
const wall = (performance.now() - t0) / 1000;
if (process.env.VIGIL_BENCH_WINDOW) process.stderr.write(`window ${m0} ${process.hrtime.bigint()}\n`);
const after = pipeline.counters();
await stopProfiles();
await sink.close();
const st = sink.stats();
const cs = cache.stats();
process.stdout.write(
  `${JSON.stringify({
    stage: STAGE,
    records: fed - fed0,
    events: after.emitted - before.emitted,
    decodeErrors: after.dropped.decodeError,
    unknownOpcode: after.dropped.unknownOpcode,
    filtered: after.dropped.filtered,
    internal: after.internal - before.internal,
    wall_s: wall,
    utime_s: c1.user / 1e6,
    stime_s: c1.system / 1e6,
    // The same CPU by thread: the main thread, V8's workers (GC, compilation), libuv's pool (the file writes).
    threadsMs,
    // Page faults while measured: memory the run touches for the first time (or again, after it was returned).
    minorFaults: f1.minorPageFault - f0.minorPageFault,
    majorFaults: f1.majorPageFault - f0.majorPageFault,
    sink: { received: st.received, sent: st.sent, dropped: st.dropped },
    bytes: fs.existsSync(out) ? fs.statSync(out).size : 0,
    cache: { size: cs.size, live: cs.live, heldTotal: cs.heldTotal, heldFallback: cs.heldFallback, brokenLineage: cs.brokenLineage },
    containers: containers.stats().lookups,
    // The timed part's rule checks: events checked, lost to the engine's full queue, alerts raised.
    rules: rulesSince(rules0),
    // The timed part's event stream: lines delivered to it, lost (its queue full, a failed write), bytes written.
    stream: stream0 ? { delivered: streamStats()!.delivered - stream0.delivered, dropped: streamStats()!.dropped - stream0.dropped, bytes: streamBytes - streamBytes0 } : undefined,
    rss: process.memoryUsage().rss,
  })}\n`,
);
rules.stop();
containers.stop();
cache.close();
