// bench/ringbuf: the per-record work of vigil's consumer, the same as the C reference consumer's on_record():
// check the opcode, then the per-CPU sequence number for gaps. Shared by the live consumer and the
// synthetic drain, so both measure exactly the same handler.
import type { RecordHandler } from '../../src/ringbuf/ringbuf.ts';
import { BENCH_EVENT, EVENT_HEADER, SIZEOF, VIGIL_OPCODE } from '../../src/events/layout.generated.ts';

// Offsets hoisted into constants: the handler runs millions of times per second.
const OPCODE = EVENT_HEADER.opcode.offset;
const SEQ = BENCH_EVENT.seq.offset;
const CPU = BENCH_EVENT.cpu.offset;
const SIZE = SIZEOF.bench_event;
const OP_BENCH = VIGIL_OPCODE.BENCH;
const MAX_CPUS = 1024;

export interface BenchCounts {
  received: number;
  gaps: number;
  bad: number;
  /** process.hrtime.bigint() when the latest 1024th record arrived (0n before that). */
  lastNs: bigint;
}

export function benchHandler(): { counts: BenchCounts; handler: RecordHandler } {
  const counts: BenchCounts = { received: 0, gaps: 0, bad: 0, lastNs: 0n };
  // Next expected sequence number per CPU. Numbers, not BigInt: a u64 read as two u32 halves stays exact up
  // to 2^53, and a BigInt per record would allocate on the hot path.
  const nextSeq = new Float64Array(MAX_CPUS);
  const handler: RecordHandler = (v, off, len) => {
    if (len < SIZE || v.getUint16(off + OPCODE, true) !== OP_BENCH) {
      counts.bad++;
      return;
    }
    const cpu = v.getUint32(off + CPU, true) & (MAX_CPUS - 1);
    const seq = v.getUint32(off + SEQ, true) + v.getUint32(off + SEQ + 4, true) * 4294967296;
    const want = nextSeq[cpu]!;
    if (seq !== want) counts.gaps += seq - want;
    nextSeq[cpu] = seq + 1;
    // A clock read per record would be a cost the C consumer does not pay: stamp every 1024th, as it does.
    if ((++counts.received & 1023) === 0) counts.lastNs = process.hrtime.bigint();
  };
  return { counts, handler };
}
