// bench/ringbuf: the floor of vigil's per-record cost. RingConsumer.drain (the loop RingBufReader runs) with
// the bench handler, over synthetic ring memory laid out like the kernel's: no kernel, no wakeups, no timers,
// caches warm. What the live consumer spends above this goes to wakeups, timers and cache misses.
//
// usage: node bench/ringbuf/drain.ts [records]    Prints one JSON line.
import { RingConsumer, type RingLayout } from '../../src/ringbuf/ringbuf.ts';
import { BENCH_EVENT, EVENT_HEADER, SIZEOF, VIGIL_OPCODE } from '../../src/events/layout.generated.ts';
import { benchHandler } from './handler.ts';

const TOTAL = Number(process.argv[2] ?? 4_000_000);
const WARMUP = Math.min(500_000, TOTAL >> 2);
const SIZE = 16 << 20; // vigil's default ring size
const BATCH = 4096; // records per drain, about what a 1 ms batch holds at 3 M records/s
const HDR = 8;
const STEP = (SIZEOF.bench_event + HDR + 7) & ~7;

const consBuf = new ArrayBuffer(8);
const prodBuf = new ArrayBuffer(8);
const dataBuf = new ArrayBuffer(2 * SIZE); // mapped twice by the kernel; here the writer mirrors by hand
const layout: RingLayout = {
  consumer: new Int32Array(consBuf),
  consumer64: new BigUint64Array(consBuf),
  producer: new Int32Array(prodBuf),
  data: new DataView(dataBuf),
  dataI32: new Int32Array(dataBuf),
  size: SIZE,
};
const dv = layout.data;
const bytes = new Uint8Array(dataBuf);
const prod64 = new BigUint64Array(prodBuf);
let pos = 0;
let seq = 0;

/** Writes `n` committed bench records at the producer position, the way the kernel would, then publishes. */
function produce(n: number): void {
  for (let i = 0; i < n; i++) {
    const off = pos % SIZE;
    dv.setUint32(off, SIZEOF.bench_event, true); // length, BUSY and DISCARD clear
    dv.setUint32(off + 4, 0, true);
    const rec = off + HDR;
    dv.setUint16(rec + EVENT_HEADER.opcode.offset, VIGIL_OPCODE.BENCH, true);
    dv.setUint32(rec + EVENT_HEADER.size.offset, SIZEOF.bench_event, true);
    dv.setUint32(rec + BENCH_EVENT.seq.offset, seq % 4294967296, true);
    dv.setUint32(rec + BENCH_EVENT.seq.offset + 4, Math.floor(seq / 4294967296), true);
    dv.setUint32(rec + BENCH_EVENT.cpu.offset, 0, true);
    seq++;
    // The kernel's second mapping makes a record that crosses the end contiguous; mirror what we wrote.
    if (off + STEP > SIZE) bytes.copyWithin(0, SIZE, off + STEP);
    pos += STEP;
  }
  prod64[0] = BigInt(pos);
}

const ring = new RingConsumer(layout);
const { counts, handler } = benchHandler();
let timed = 0n;
let drained = 0;
while (drained < TOTAL + WARMUP) {
  produce(BATCH);
  const t0 = process.hrtime.bigint();
  const n = ring.drain(handler);
  if (drained >= WARMUP) timed += process.hrtime.bigint() - t0;
  drained += n;
}
const measured = drained - WARMUP;
process.stdout.write(
  `${JSON.stringify({ records: measured, ns_per_record: Number(timed) / measured, received: counts.received, gaps: counts.gaps, bad: counts.bad })}\n`,
);
