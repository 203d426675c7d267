// bench/exec: the agent's hot path without the kernel. Synthetic fork/exec/exit records, laid out in a ring
// exactly as the process sensor writes them (the layout constants generated from events.h, 8-byte ring
// headers, 8-byte alignment), go through RingConsumer.drain → ProcessResolver.handleRecord → decode → cache
// (scrubbing, lineage, eviction after a short exited-grace), the same code the live agent runs.
//
// Measures (1) ns per record and per exec cycle of that path, decode alone, and with the agent's
// enrichment + JSON line; (2) whether memory stays flat over many cycles: RSS and heap after a forced GC,
// sampled after warm-up and at the end, once evictions have caught up; (3) the heap one cached process
// holds, with the benchmark's environment and with env capture off.
//
// usage: node --expose-gc bench/exec/churn.ts [cycles] [warmup] [enriched_cycles]    Prints one JSON line.
import { RingConsumer, type RingLayout } from '../../src/ringbuf/ringbuf.ts';
import { decodeProcessEvent } from '../../src/events/decode.ts';
import { EVENT_HEADER, EXEC_EVENT, EXIT_EVENT, FORK_EVENT, PROC_CREDS, PROC_NS, SIZEOF, VIGIL_OPCODE, VIGIL_PROC_FLAGS } from '../../src/events/layout.generated.ts';
import type { ProcessEvent } from '../../src/events/types.ts';
import { ProcessResolver } from '../../src/process/resolver.ts';
import { UserResolver } from '../../src/process/users.ts';
import { BENCH_ENV, MARKER, execLine } from './output.ts';

const CYCLES = Number(process.argv[2] ?? 1_000_000);
const WARMUP = Number(process.argv[3] ?? 100_000);
const ENRICHED = Number(process.argv[4] ?? 100_000);
const gcFn = (globalThis as { gc?: () => void }).gc;
if (!gcFn) {
  process.stderr.write('churn.ts needs --expose-gc\n');
  process.exit(2);
}
const gc: () => void = gcFn;

/** Exited processes stay resolvable this long: short, so that eviction runs all the time. */
const GRACE_MS = 50;
/** fork + exec + exit of one process per cycle, this many cycles per drain (a busy 1-2 ms batch). */
const BATCH = 256;
const RING = 4 << 20;
const HDR = 8;

// ---- a synthetic ring: the kernel's layout, with the second mapping mirrored by hand ----------------------

const consBuf = new ArrayBuffer(8);
const prodBuf = new ArrayBuffer(8);
const dataBuf = new ArrayBuffer(2 * RING);
const layout: RingLayout = {
  consumer: new Int32Array(consBuf),
  consumer64: new BigUint64Array(consBuf),
  producer: new Int32Array(prodBuf),
  data: new DataView(dataBuf),
  dataI32: new Int32Array(dataBuf),
  size: RING,
};
const dv = layout.data;
const bytes = new Uint8Array(dataBuf);
const prod64 = new BigUint64Array(prodBuf);
let pos = 0;
const enc = new TextEncoder();

/** Reserves a record of `len` bytes at the producer position; returns its offset. */
function reserve(len: number): number {
  const off = pos % RING;
  dv.setUint32(off, len, true); // length, BUSY and DISCARD clear
  dv.setUint32(off + 4, 0, true);
  bytes.fill(0, off + HDR, off + HDR + len);
  return off + HDR;
}
function commit(rec: number, len: number): void {
  const step = (len + HDR + 7) & ~7;
  const off = rec - HDR;
  if (off + step > RING) bytes.copyWithin(0, RING, off + step); // what the kernel's double mapping does
  pos += step;
}
function u64(off: number, v: number): void {
  dv.setUint32(off, v % 4294967296, true);
  dv.setUint32(off + 4, Math.floor(v / 4294967296), true);
}
function header(rec: number, opcode: number, size: number, ktime: number, pid: number): void {
  dv.setUint16(rec + EVENT_HEADER.opcode.offset, opcode, true);
  dv.setUint32(rec + EVENT_HEADER.size.offset, size, true);
  u64(rec + EVENT_HEADER.ktime_ns.offset, ktime);
  dv.setUint32(rec + EVENT_HEADER.pid.offset, pid, true);
  dv.setUint32(rec + EVENT_HEADER.tid.offset, pid, true);
  u64(rec + EVENT_HEADER.cgroup_id.offset, CGROUP);
}
function str(off: number, s: string, max: number): void {
  const b = enc.encode(s);
  bytes.set(b.subarray(0, max - 1), off);
}
function creds(off: number): void {
  // root with a full capability set, loginuid unset: what a root shell's child looks like.
  for (const k of ['uid', 'gid', 'euid', 'egid', 'suid', 'sgid', 'fsuid', 'fsgid'] as const) dv.setUint32(off + PROC_CREDS[k].offset, 0, true);
  u64(off + PROC_CREDS.cap_effective.offset, 0x1ffffffffff);
  u64(off + PROC_CREDS.cap_permitted.offset, 0x1ffffffffff);
  dv.setUint32(off + PROC_CREDS.loginuid.offset, 0xffffffff, true);
}

const ROOT_PID = 4000;
const ROOT_START = 1e9;
const CGROUP = 4242;
const EXE = '/usr/bin/true\0';
const FILENAME = '/bin/true\0';
// The same environment the live storm's processes get (bench/exec/output.ts).
const ENV = BENCH_ENV.join('\0') + '\0';
const ENV_BYTES = enc.encode(ENV);
const EXE_BYTES = enc.encode(EXE);
const FN_BYTES = enc.encode(FILENAME);

/** The root: one exec record with ppid 0, so that everything after it has a known parent. */
function produceRoot(): void {
  produceExec(ROOT_PID, ROOT_START, 0, 0, ROOT_START, 'root');
}

function produceFork(child: number, childStart: number, ktime: number): void {
  const len = SIZEOF.fork_event;
  const r = reserve(len);
  header(r, VIGIL_OPCODE.FORK, len, ktime, ROOT_PID);
  u64(r + FORK_EVENT.parent_start_ns.offset, ROOT_START);
  u64(r + FORK_EVENT.child_start_ns.offset, childStart);
  dv.setUint32(r + FORK_EVENT.child_pid.offset, child, true);
  dv.setUint32(r + FORK_EVENT.child_tgid.offset, child, true);
  dv.setUint32(r + FORK_EVENT.child_ppid.offset, ROOT_PID, true);
  str(r + FORK_EVENT.comm.offset, 'exec_storm', FORK_EVENT.comm.size);
  commit(r, len);
}

function produceExec(pid: number, start: number, ppid: number, parentStart: number, ktime: number, index: string, env: Uint8Array = ENV_BYTES): void {
  const argv = enc.encode(`true\0${MARKER}\0churn\0${index}\0`);
  const len = SIZEOF.exec_event + EXE_BYTES.length + FN_BYTES.length + argv.length + env.length;
  const r = reserve(len);
  header(r, VIGIL_OPCODE.EXEC, len, ktime, pid);
  u64(r + EXEC_EVENT.start_ns.offset, start);
  u64(r + EXEC_EVENT.parent_start_ns.offset, parentStart);
  dv.setUint32(r + EXEC_EVENT.ppid.offset, ppid, true);
  dv.setUint32(r + EXEC_EVENT.old_pid.offset, pid, true);
  creds(r + EXEC_EVENT.creds.offset);
  const ns = r + EXEC_EVENT.ns.offset;
  u64(ns + PROC_NS.cgroup_id.offset, CGROUP);
  dv.setUint32(ns + PROC_NS.pidns.offset, 4026531836, true);
  dv.setUint32(ns + PROC_NS.mntns.offset, 4026531832, true);
  dv.setUint32(ns + PROC_NS.nspid.offset, pid, true);
  u64(r + EXEC_EVENT.exe_ino.offset, 260958);
  u64(r + EXEC_EVENT.exe_mtime_sec.offset, 1_700_000_000);
  dv.setUint32(r + EXEC_EVENT.exe_dev.offset, (8 << 20) | 1, true);
  dv.setUint32(r + EXEC_EVENT.argc.offset, 4, true);
  dv.setUint32(r + EXEC_EVENT.exe_len.offset, EXE_BYTES.length, true);
  dv.setUint32(r + EXEC_EVENT.filename_len.offset, FN_BYTES.length, true);
  dv.setUint32(r + EXEC_EVENT.argv_len.offset, argv.length, true);
  dv.setUint32(r + EXEC_EVENT.env_len.offset, env.length, true);
  if (env.length === 0) dv.setUint32(r + EXEC_EVENT.flags.offset, VIGIL_PROC_FLAGS.ENV_OMITTED, true);
  str(r + EXEC_EVENT.comm.offset, 'true', EXEC_EVENT.comm.size);
  let p = r + SIZEOF.exec_event;
  for (const part of [EXE_BYTES, FN_BYTES, argv, env]) {
    bytes.set(part, p);
    p += part.length;
  }
  commit(r, len);
}

function produceExit(pid: number, start: number, ktime: number): void {
  const len = SIZEOF.exit_event;
  const r = reserve(len);
  header(r, VIGIL_OPCODE.EXIT, len, ktime, pid);
  u64(r + EXIT_EVENT.start_ns.offset, start);
  dv.setUint32(r + EXIT_EVENT.ppid.offset, ROOT_PID, true);
  dv.setUint32(r + EXIT_EVENT.exit_code.offset, 0, true);
  dv.setUint32(r + EXIT_EVENT.flags.offset, VIGIL_PROC_FLAGS.GROUP_DEAD, true);
  str(r + EXIT_EVENT.comm.offset, 'true', EXIT_EVENT.comm.size);
  commit(r, len);
}

// Pids cycle through 31,000 values, as a busy host's do; start times advance 1 ms per cycle, so a pid comes
// back with a new start time (a new identity) every 31 s of synthetic time.
const PID_BASE = 5000;
const PID_SPAN = 31_000;
let cycle = 0;
function produceCycles(n: number): void {
  for (let i = 0; i < n; i++, cycle++) {
    const pid = PID_BASE + (cycle % PID_SPAN);
    const start = ROOT_START + (cycle + 1) * 1e6;
    produceFork(pid, start, start);
    produceExec(pid, start, ROOT_PID, ROOT_START, start + 300_000, String(cycle));
    produceExit(pid, start, start + 600_000);
  }
  prod64[0] = BigInt(pos);
}

// ---- the path under test ----------------------------------------------------------------------------------

const ring = new RingConsumer(layout);
let execs = 0;
let enrich = false;
let lineBytes = 0;
const users = new UserResolver();
// procfs lookups are turned off by giving the resolver an empty proc root: nothing here should need /proc,
// and a lookup would show up as a miss in the stats rather than as I/O time.
const resolver = new ProcessResolver({ mode: 'bpf', procRoot: '/nonexistent', cache: { exitedGraceMs: GRACE_MS } });
const onEvent = (ev: ProcessEvent): void => {
  if (ev.type !== 'exec') return;
  execs++;
  if (enrich) lineBytes += execLine(resolver.cache, users, ev).length;
};
// The resolver is not started (no BPF): handleRecord is the entry point its reader calls; onEvent is called
// here on what it returns, as the resolver's own onEvent hook would be.
const handler = (v: DataView, off: number, len: number): void => {
  const ev = resolver.handleRecord(v, off, len);
  if (ev) onEvent(ev);
};
let decodeSink = 0;
const decodeOnly = (v: DataView, off: number, len: number): void => {
  const ev = decodeProcessEvent(v, off, len);
  if ('type' in ev) decodeSink++;
};

const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `n` cycles through `h`, yielding to the loop between drains (timers run, as in the agent). */
async function run(n: number, h: (v: DataView, off: number, len: number) => void, sample?: (done: number) => void): Promise<{ ns: number; records: number }> {
  let ns = 0;
  let records = 0;
  for (let done = 0; done < n; ) {
    const k = Math.min(BATCH, n - done);
    produceCycles(k);
    const t0 = process.hrtime.bigint();
    records += ring.drain(h);
    ns += Number(process.hrtime.bigint() - t0);
    done += k;
    sample?.(done);
    await tick();
  }
  return { ns, records };
}

interface Mem {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  cacheSize: number;
}

/** Memory once exited entries have had their grace and were evicted, after a full GC. */
async function settle(): Promise<Mem> {
  await sleep(GRACE_MS * 3);
  resolver.cache.sweep();
  gc();
  await tick();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, cacheSize: resolver.cache.size };
}

const memSamples: { cycles: number; rss: number; heapTotal: number; heapUsed: number; cacheSize: number }[] = [];
let peakRss = 0;
let peakCache = 0;

// The root first, through the same path.
prod64[0] = BigInt(pos);
produceRoot();
prod64[0] = BigInt(pos);
ring.drain(handler);

// 1. Decode alone, for the attribution (the same records, no cache).
const dec = await run(Math.min(ENRICHED, CYCLES), decodeOnly);

// 2. Warm-up, then the memory baseline.
await run(WARMUP, handler);
const warm = await settle();

// 3. The long run: every cycle's fork, exec and exit, with evictions as they come due.
const main = await run(CYCLES, handler, (done) => {
  if (done % 50_000 < BATCH) {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakCache = Math.max(peakCache, resolver.cache.size);
    memSamples.push({ cycles: done, rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, cacheSize: resolver.cache.size });
  }
});
const end = await settle();
const st = resolver.stats(); // before the enriched pass below adds its own cycles

// 4. The same path plus the agent's enrichment and JSON line (no file I/O).
enrich = true;
const withLine = await run(ENRICHED, handler);
enrich = false;

/**
 * 5. Heap retained per cached process: a fresh resolver that keeps everything, fed fork + exec (no exit) for
 * `n` processes, with the benchmark's environment or with env capture off; heap after GC, before and after.
 */
async function retainedPerProcess(n: number, env: Uint8Array): Promise<number> {
  const r = new ProcessResolver({ mode: 'bpf', procRoot: '/nonexistent', cache: { timers: false, exitedGraceMs: 3_600_000 } });
  const h = (v: DataView, off: number, len: number): void => void r.handleRecord(v, off, len);
  prod64[0] = BigInt(pos);
  produceRoot();
  prod64[0] = BigInt(pos);
  ring.drain(h);
  gc();
  await tick();
  gc();
  const h0 = process.memoryUsage().heapUsed;
  for (let i = 0; i < n; i++) {
    const pid = 100_000 + i;
    const start = ROOT_START + (i + 1) * 1e6;
    produceFork(pid, start, start);
    produceExec(pid, start, ROOT_PID, ROOT_START, start + 300_000, String(i), env);
    if (i % BATCH === BATCH - 1 || i === n - 1) {
      prod64[0] = BigInt(pos);
      ring.drain(h);
    }
  }
  gc();
  await tick();
  gc();
  const bytes = (process.memoryUsage().heapUsed - h0) / n;
  if (r.cache.size < n) throw new Error(`retained ${r.cache.size} of ${n} processes`);
  r.stop();
  return bytes;
}
const retainedWithEnv = await retainedPerProcess(20_000, ENV_BYTES);
const retainedNoEnv = await retainedPerProcess(20_000, new Uint8Array(0));

process.stdout.write(
  `${JSON.stringify({
    cycles: CYCLES,
    warmup: WARMUP,
    records: main.records,
    execs,
    ns_per_record: main.ns / main.records,
    ns_per_cycle: main.ns / CYCLES,
    decode_ns_per_record: dec.ns / dec.records,
    enriched_ns_per_cycle: withLine.ns / ENRICHED,
    line_bytes: lineBytes / ENRICHED,
    warm,
    end,
    rss_change: (end.rss - warm.rss) / warm.rss,
    heap_change: (end.heapUsed - warm.heapUsed) / warm.heapUsed,
    peak_rss: peakRss,
    peak_cache: peakCache,
    samples: memSamples,
    cache: { evictions: st.cache.evictions, evictionsForced: st.cache.evictionsForced, brokenLineage: st.cache.brokenLineage, misses: st.cache.misses, heldTotal: st.cache.heldTotal, scrubbedEnv: st.cache.scrubbedEnv },
    decode_errors: st.decodeErrors,
    retained_bytes_per_process: retainedWithEnv,
    retained_bytes_per_process_no_env: retainedNoEnv,
    env_vars: BENCH_ENV.length,
    decoded: decodeSink,
  })}\n`,
);
resolver.stop();
