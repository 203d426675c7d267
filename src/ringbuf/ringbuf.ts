// Zero-copy consumer of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF), read on the main thread.
//
// The ring is mmap'd: the consumer page read-write at offset 0, the producer page plus the data area
// read-only at offset PAGE. The kernel would let us map the data area twice in a row (so that a record that
// wraps is contiguous), but every page mapped counts in the agent's RSS, so the data area is mapped once
// and the rare record that wraps (one per lap of the ring) is copied into a scratch buffer. Positions are
// read with Atomics.load and the consumer position published with Atomics.store; every other record is
// handed to the handler as (DataView, offset, length) straight out of ring memory, never copied.
//
// Wakeups, not copies, are the cost (KERNEL-NOTES.md). The reader is idle on poll(2) of the map fd with no
// timer running; when woken it stops polling and drains on a timer for as long as records keep coming, so a
// busy ring costs one wakeup per batch; the first empty drain re-arms poll. The kernel only wakes a consumer
// that has caught up, so while we batch, producers pay no wakeups at all. The timer starts at 1 ms after a
// wakeup and, while drains keep finding only a few records, grows up to a bound set by the ring's size
// (DrainPacer): a sparse but steady stream then costs one timer per many records, not one per record.
import koffi, { type node as koffiNode } from 'koffi';
import { StateError, errorFromErrno } from '../bpf/errors.ts';
import { errno, lib, type Ptr } from '../bpf/ffi.ts';
import type { BpfMap } from '../bpf/map.ts';
import { MapFlags, MapType } from '../bpf/constants.ts';
import { SIZEOF, VIGIL_RING_CTL, VIGIL_RING_MODE } from '../events/layout.generated.ts';
import { InvalidArgumentError } from '../bpf/errors.ts';

/** koffi's poll callback: (status, events); a negative status is a libuv error and stops the watcher. */
export type PollCallback = (status: number) => void;
/** The retry delay after a poll error (ms). */
export const POLL_ERROR_RETRY_MS = 10;

/** Called with a record's bytes in ring memory: valid only during the call. */
export type RecordHandler = (view: DataView, offset: number, length: number) => void;

/** A record read with readInto(): a window into ring memory, valid until the next read. */
export interface RingRecord {
  view: DataView;
  offset: number;
  length: number;
}

export interface ReaderStats {
  /** Records handed to the handler (or returned by read/readInto). */
  received: number;
  /** Records the producer discarded (bpf_ringbuf_discard): not losses, never delivered. */
  discarded: number;
  /** Bytes of record payload received. */
  bytes: number;
  /** Times poll(2) woke the reader from idle (while busy it drains on its timer, without wakeups). */
  wakeups: number;
  /** Drain passes run (timer ticks while busy included). */
  drains: number;
  /** Records the handler threw on (counted, skipped; the loop keeps going). */
  handlerErrors: number;
  /**
   * poll(2) reported an error on the fd. libuv stops the watcher then; the reader drains on a timer and
   * re-arms, so an error costs latency, never events.
   */
  pollErrors: number;
  /**
   * Records the kernel reported lost to this reader (perf buffers: PERF_RECORD_LOST). Always 0 for a ring
   * buffer, whose losses are counted by the producer (vigil_stats) because the ring never sees them.
   */
  lost: number;
  /**
   * Record headers that contradicted the buffer (a length reaching past the producer's position). Nothing
   * after such a header can be trusted, so the reader skipped to the producer's position, which is always a
   * record boundary; the records in between are lost, once per count here. Never seen with a sane kernel.
   */
  corrupt: number;
  /**
   * Times the BPF side woke the reader during a batching wait because the ring filled past its watermark
   * (struct vigil_ring_ctl): a burst, drained at once instead of at the end of the wait.
   */
  forcedWakeups: number;
  /**
   * Drain passes put off because the consumer had no room (RingBufReaderOptions.credit): records waited in
   * the ring instead of overflowing a queue behind the reader.
   */
  creditWaits: number;
  /**
   * Drain passes that took more records than the consumer had room for: the ring was past its urgent fill
   * (waiting longer risked the kernel's drops, which lose a record for every sink and the process cache), or
   * the consumer had had no room for creditWaitMs. What a queue behind could not take, it counts as dropped.
   */
  pastRoom: number;
}

export interface EventReader {
  readonly name: string;
  start(handler: RecordHandler): void;
  /** Drains what is pending now (up to `max` records); returns the number of records handled. */
  drain(handler?: RecordHandler, max?: number): number;
  stats(): ReaderStats;
  /** Fraction of the buffer holding unread data, 0..1. */
  fill(): number;
  pause(): void;
  resume(): void;
  stop(): void;
  close(): void;
}

const BUSY = 0x80000000 | 0;
/**
 * Whether a record header may be read with a plain load. The producer position is always read with
 * Atomics.load (an acquire); on x86-64 (TSO) later loads cannot pass it, so the header needs no further
 * ordering, and a plain typed-array read is ~10x cheaper than Atomics.load, which V8 runs as a call
 * (bench/ringbuf: -14..-23 % consumer CPU per event). Weakly ordered CPUs (arm64) keep the acquire per header.
 */
const PLAIN_HEADER_LOADS = process.arch === 'x64';
const DISCARD = 0x40000000;
const LEN_MASK = 0x3fffffff;
const HDR = 8;
const TWO32 = 4294967296;

/** The consumer's view of a ring's memory. Built over mmap'd kernel memory, or over plain buffers in tests. */
export interface RingLayout {
  /** consumer_pos as two int32 words (little-endian: [0] low, [1] high). Written by us. */
  consumer: Int32Array;
  /** The same 8 bytes as one 64-bit word, for the rare store that changes the high word. */
  consumer64: BigUint64Array;
  /** producer_pos low/high words. Written by the kernel. */
  producer: Int32Array;
  /**
   * The data area: 2 × size bytes when it is mapped twice (a wrapping record is contiguous), else size bytes
   * (a wrapping record is copied out; see `mirrored`).
   */
  data: DataView;
  dataI32: Int32Array;
  /** Data area size in bytes (a power of two). */
  size: number;
  /** Whether `data` holds the area twice in a row. Default true. */
  mirrored?: boolean;
}

/**
 * The consume loop over a RingLayout, with no I/O: unit tests drive it over synthetic buffers, the
 * RingBufReader drives it over the kernel's memory.
 */
export class RingConsumer {
  readonly layout: RingLayout;
  readonly #mask: number;
  readonly #mirrored: boolean;
  /** Where a record that wraps around the end of a singly-mapped area is reassembled (grown as needed). */
  #scratch = new DataView(new ArrayBuffer(0));
  /** Records reassembled in #scratch (one per lap of the ring at most). */
  wrapCopies = 0;
  /** Our consumer position; a JS number is exact up to 2^53 bytes. */
  #cons: number;
  #pending = 0; // bytes of the record handed out by readInto(), released on the next call
  readonly counters: ReaderStats = { received: 0, discarded: 0, bytes: 0, wakeups: 0, drains: 0, handlerErrors: 0, pollErrors: 0, lost: 0, corrupt: 0, forcedWakeups: 0, creditWaits: 0, pastRoom: 0 };
  onHandlerError: ((err: unknown) => void) | undefined;

  constructor(layout: RingLayout) {
    if (layout.size <= 0 || (layout.size & (layout.size - 1)) !== 0) throw new InvalidArgumentError(`ring size ${layout.size} is not a power of two`);
    this.layout = layout;
    this.#mask = layout.size - 1;
    this.#mirrored = layout.mirrored ?? true;
    if (layout.data.byteLength < (this.#mirrored ? 2 : 1) * layout.size) throw new InvalidArgumentError(`ring data area of ${layout.data.byteLength} bytes is too small for size ${layout.size}${this.#mirrored ? ' mapped twice' : ''}`);
    const lo = Atomics.load(layout.consumer, 0) >>> 0;
    const hi = Atomics.load(layout.consumer, 1) >>> 0;
    this.#cons = hi * TWO32 + lo;
  }

  /** Bytes of unread data (producer − consumer). */
  available(): number {
    return ((Atomics.load(this.layout.producer, 0) >>> 0) - (this.#cons >>> 0)) >>> 0;
  }

  /**
   * The payload of a record at data offset `start` that runs past the end of a singly-mapped area, copied
   * into the scratch buffer in one piece. Headers never wrap: records are 8-aligned and headers 8 bytes long.
   */
  #unwrap(start: number, len: number): DataView {
    if (this.#scratch.byteLength < len) this.#scratch = new DataView(new ArrayBuffer(Math.max(len, 2 * this.#scratch.byteLength, 4096)));
    const d = this.layout.data;
    const src = new Uint8Array(d.buffer, d.byteOffset, this.layout.size);
    const dst = new Uint8Array(this.#scratch.buffer, 0, len);
    const first = this.layout.size - start;
    dst.set(src.subarray(start, this.layout.size), 0);
    dst.set(src.subarray(0, len - first), first);
    this.wrapCopies++;
    return this.#scratch;
  }

  #publish(next: number): void {
    const prev = this.#cons;
    this.#cons = next;
    // The common case changes only the low word, which one 32-bit store publishes atomically. When the high
    // word changes too (every 4 GiB), a torn store could make the kernel see a bogus position and refuse a
    // reservation, so store all 64 bits at once.
    if (Math.floor(prev / TWO32) === Math.floor(next / TWO32)) Atomics.store(this.layout.consumer, 0, next | 0);
    else Atomics.store(this.layout.consumer64, 0, BigInt(next));
  }

  /**
   * Hands up to `max` ready records to `handler`, then publishes the consumer position. Stops early at a
   * record the producer is still writing (BUSY). Never throws for ring states; a throwing handler is counted.
   */
  drain(handler: RecordHandler, max = Infinity): number {
    this.#release();
    const { producer, data, dataI32 } = this.layout;
    const mask = this.#mask;
    const c = this.counters;
    const plain = PLAIN_HEADER_LOADS;
    const size = this.layout.size;
    const mirrored = this.#mirrored;
    let cons = this.#cons;
    let consLo = cons >>> 0;
    let avail = ((Atomics.load(producer, 0) >>> 0) - consLo) >>> 0;
    let n = 0;
    let sinceStore = 0;
    c.drains++;
    while (avail > 0 && n < max) {
      const off = consLo & mask;
      const hdr = plain ? dataI32[off >> 2]! : Atomics.load(dataI32, off >> 2);
      if ((hdr & BUSY) !== 0) break; // still being written: it will be ready on the next pass
      const len = hdr & LEN_MASK;
      const step = (len + HDR + 7) & ~7;
      if (step > avail) {
        // A committed record always lies below the producer position read above: this header is corrupt.
        // Skip to that position (a record boundary) instead of handing out bytes beyond it or running past it.
        c.corrupt++;
        cons += avail;
        break;
      }
      if ((hdr & DISCARD) === 0) {
        try {
          const at = off + HDR;
          if (mirrored || at + len <= size) handler(data, at, len);
          else if ((at & mask) + len <= size) handler(data, at & mask, len); // the header ended the lap
          else handler(this.#unwrap(at & mask, len), 0, len);
        } catch (err) {
          c.handlerErrors++;
          this.onHandlerError?.(err);
        }
        c.received++;
        c.bytes += len;
        n++;
      } else {
        c.discarded++;
      }
      cons += step;
      consLo = (consLo + step) >>> 0;
      avail -= step;
      if (avail <= 0) avail = ((Atomics.load(producer, 0) >>> 0) - consLo) >>> 0;
      // Publish progress every 256 records so that a long drain frees space for producers as it goes.
      if (++sinceStore === 256) {
        this.#publish(cons);
        sinceStore = 0;
      }
    }
    if (cons !== this.#cons) this.#publish(cons);
    return n;
  }

  /** Fills `rec` with the next record, releasing the previous one. False when nothing is ready. */
  readInto(rec: RingRecord): boolean {
    this.#release();
    for (;;) {
      const consLo = this.#cons >>> 0;
      const avail = ((Atomics.load(this.layout.producer, 0) >>> 0) - consLo) >>> 0;
      if (avail === 0) return false;
      const off = consLo & this.#mask;
      const hdr = Atomics.load(this.layout.dataI32, off >> 2);
      if ((hdr & BUSY) !== 0) return false;
      const len = hdr & LEN_MASK;
      const step = (len + HDR + 7) & ~7;
      if (step > avail) {
        this.counters.corrupt++; // see drain(): skip to the producer position
        this.#publish(this.#cons + avail);
        continue;
      }
      if ((hdr & DISCARD) !== 0) {
        this.counters.discarded++;
        this.#publish(this.#cons + step);
        continue;
      }
      const at = off + HDR;
      if (this.#mirrored || at + len <= this.layout.size) {
        rec.view = this.layout.data;
        rec.offset = at;
      } else if ((at & this.#mask) + len <= this.layout.size) {
        rec.view = this.layout.data; // the header ended the lap: the payload starts at the beginning
        rec.offset = at & this.#mask;
      } else {
        rec.view = this.#unwrap(at & this.#mask, len);
        rec.offset = 0;
      }
      rec.length = len;
      this.#pending = step;
      this.counters.received++;
      this.counters.bytes += len;
      return true;
    }
  }

  /** The next record, copied out of the ring, or null when nothing is ready. */
  read(): Uint8Array | null {
    const rec: RingRecord = { view: this.layout.data, offset: 0, length: 0 };
    if (!this.readInto(rec)) return null;
    const out = new Uint8Array(rec.length);
    out.set(new Uint8Array(rec.view.buffer, rec.view.byteOffset + rec.offset, rec.length));
    this.#release();
    return out;
  }

  #release(): void {
    if (this.#pending) {
      const step = this.#pending;
      this.#pending = 0;
      this.#publish(this.#cons + step);
    }
  }
}

/** Longest delay between two looks for the consumer's room (RingBufReaderOptions.credit). */
const CREDIT_MAX_DELAY_MS = 16;

export interface RingBufReaderOptions {
  /**
   * Delay between a wakeup and the first drain, and the shortest delay between drains while records keep
   * coming (ms). Default 1.
   */
  batchDelayMs?: number;
  /**
   * Longest delay between drains while records keep coming (ms). The delay grows from batchDelayMs towards
   * it while batches stay small (DrainPacer). With `control`, the BPF side wakes the reader when the ring
   * fills, and the default is WOKEN_MAX_DELAY_MS; without it, the default is 16 and the delay never goes
   * beyond what the ring can absorb at PEAK_BYTES_PER_MS (half the ring). Set it to batchDelayMs for a
   * fixed delay.
   */
  maxBatchDelayMs?: number;
  /**
   * The vigil_ring_ctl map of the sensors writing this ring (an mmapable one-element array of struct
   * vigil_ring_ctl, bpf/include/vigil.h). With it the reader tells the BPF side how it waits: records are
   * submitted without wakeups while it drains, and while it waits on its timer the BPF side wakes it once
   * `wakeupFill` of the ring waits unread. Without it, the kernel's default applies and the ring's size bounds the delay.
   */
  control?: BpfMap;
  /** With `control`: the fill (0..1) at which the BPF side wakes a reader that waits on its timer. Default 1/4. */
  wakeupFill?: number;
  /** Most records handled in one pass before yielding to the event loop (bounds loop latency). */
  maxPerDrain?: number;
  /** Drain right away (no batching delay) once the ring is this full (0..1). */
  urgentFill?: number;
  /**
   * How many records the consumer can take now without dropping any (its bounded queues' room), asked
   * before each pass; a pass takes at most that many. With no room the reader waits, looking again after
   * batchDelayMs, then twice that each time up to 16 ms, so that a burst waits in the ring rather than
   * overflowing a queue behind the reader. It
   * never waits long: once the ring passes `urgentFill`, or after `creditWaitMs` without room, it drains
   * regardless, and the queues count their drops as before.
   */
  credit?: () => number;
  /**
   * Longest wait for the consumer's room (ms) while waiting delays someone who could take records now
   * (`holdsBack`): one full queue must not hold the others back for long. Default 100.
   */
  creditWaitMs?: number;
  /**
   * With `credit`: whether waiting for room delays someone who could take records now (another sink with
   * room, a live stream). When it says no, the full queues are all there is to serve: reading past their
   * room would only drop records that the ring can still hold, so the reader waits up to `creditStallMs`
   * instead (a queue that stalls that long is stuck, not slow), and still never past `urgentFill`. Absent:
   * always yes.
   */
  holdsBack?: () => boolean;
  /** Longest wait for room when nobody else is held back (`holdsBack`), ms. Default 2000. */
  creditStallMs?: number;
}

/**
 * The producer rate a ring must absorb between two drains without filling past half: the most two cores
 * wrote into one ring here, with a synthetic probe emitting 4 records per syscall (bench/ringbuf C4: ~6.9 M
 * records/s of 72 bytes, ~0.5 MB per ms). vigil's sensors write far less (an exec storm ~2 KB per ms). It
 * bounds the longest batching delay by the ring's size: 16 ms for the default 16 MiB ring, the minimum
 * delay for a ring of 1 MiB.
 */
export const PEAK_BYTES_PER_MS = 512 * 1024;

/**
 * Longest batching delay (ms) when the BPF side wakes the reader on fill (RingBufReaderOptions.control): the
 * latency a sparse stream's events can see, as in Falco's libscap (which sleeps up to 30 ms on empty buffers).
 * Per-drain costs dominate a sparse stream's consumer CPU (each drain after a sleep runs with cold caches:
 * ~0.3 ms here), so the longer batch is most of the saving: bench/exec.
 */
export const WOKEN_MAX_DELAY_MS = 32;

/** The map through which a reader steers the BPF side's wakeups (struct vigil_ring_ctl, bpf/include/vigil.h). */
export const RING_CTL_MAP = 'vigil_ring_ctl';

/** What the reader does after a drain: drain again at once, wait `ms`, or go back to poll (idle). */
export type PaceDecision = { next: 'immediate' } | { next: 'timer'; ms: number } | { next: 'idle' };

/**
 * The batching policy of the drain loop, as pure state (no timers, so it is unit-tested on its own).
 *
 * A drain costs a timer and a turn of the event loop whatever it finds: 50-110 µs of CPU on these VMs for
 * an empty wake of Node's loop (22-40 µs for a C program's). Under a sparse but steady stream (an exec storm
 * writes ~3 records per ms) a fixed 1 ms delay spent most of the consumer's CPU on the loop itself. So the
 * delay doubles, up to `maxMs`, while the batch the doubled delay would gather, at the rate just seen, stays
 * small: at most `batchBytes` (1/32 of the ring) and at most `busyMs` of handling (the loop is not held up
 * long). It halves when the batch at the current delay would exceed either, and otherwise stays. A dense
 * stream therefore keeps a short delay, and the ring keeps its headroom for a consumer that the machine's
 * load holds up: gaps of 50-80 ms between drains were measured on a loaded 2-core machine, in which a 16 MiB
 * ring written at 0.3 MB per ms fills. An empty drain resets the delay to `minMs` and sends the reader back
 * to poll, so idle costs no timer and the first batch after a wakeup keeps the minimum latency.
 *
 * Loss stays unlikely by construction: `maxMs` is capped so that a producer at PEAK_BYTES_PER_MS fills at
 * most half the ring before the next drain, and a ring past `urgentBytes` (or a pass cut short by
 * maxPerDrain) is drained again at once. The kernel does not wake a reader that waits on its timer (it wakes
 * only a consumer that has caught up), so this bound, not a fill check, is what covers a burst that starts
 * during a wait; a fill-based wakeup from the BPF side would allow longer batches safely.
 */
export class DrainPacer {
  readonly minMs: number;
  readonly maxMs: number;
  /** Largest batch (bytes) the delay grows towards: 1/32 of the ring. */
  readonly batchBytes: number;
  /** Longest drain (ms) the delay grows towards. */
  readonly busyMs: number;
  /** A ring this full is drained at once, whatever the delay. */
  readonly urgentBytes: number;
  #delay: number;

  /** Throws InvalidArgumentError for a non-positive or non-finite delay. */
  constructor(o: { size: number; minMs?: number; maxMs?: number; busyMs?: number; urgentFill?: number; woken?: boolean }) {
    const min = o.minMs ?? 1;
    const max = o.maxMs ?? (o.woken ? WOKEN_MAX_DELAY_MS : 16);
    if (!(min > 0) || !Number.isFinite(min)) throw new InvalidArgumentError(`ring batch delay must be a positive number of ms, got ${o.minMs}`);
    if (!(max > 0) || !Number.isFinite(max)) throw new InvalidArgumentError(`ring max batch delay must be a positive number of ms, got ${o.maxMs}`);
    this.minMs = min;
    // Half the ring at the peak rate, unless the BPF side wakes the reader on fill; never below the minimum.
    this.maxMs = Math.max(min, o.woken ? max : Math.min(max, Math.floor(o.size / 2 / PEAK_BYTES_PER_MS)));
    this.batchBytes = Math.floor(o.size / 32);
    this.busyMs = o.busyMs ?? 4;
    this.urgentBytes = Math.floor(o.size * (o.urgentFill ?? 0.5));
    this.#delay = min;
  }

  /** The delay the next timer would use (ms). */
  get delayMs(): number {
    return this.#delay;
  }

  /** After a wakeup from poll: the first drain comes after the minimum delay, or at once if the ring is filling. */
  wake(available: number): PaceDecision {
    this.#delay = this.minMs;
    return available >= this.urgentBytes ? { next: 'immediate' } : { next: 'timer', ms: this.#delay };
  }

  /**
   * After a drain that handled `records` records of `bytes` bytes in `drainMs`, `elapsedMs` after the
   * previous drain began, with `available` bytes still unread and `cut` true when the drain stopped at its
   * record budget. The batch is judged per ms of elapsed time, so that a drain that came early (right after
   * a cut one) or late (a busy machine) says as much about the stream as any other.
   */
  after(records: number, bytes: number, drainMs: number, elapsedMs: number, available: number, cut: boolean): PaceDecision {
    if (cut || available >= this.urgentBytes) return { next: 'immediate' };
    if (records === 0) {
      this.#delay = this.minMs;
      return { next: 'idle' };
    }
    const span = Math.max(elapsedMs, 0.05);
    const bytesPerMs = bytes / span;
    const busyPerMs = drainMs / span;
    const d = this.#delay;
    if (bytesPerMs * d > this.batchBytes || busyPerMs * d > this.busyMs) this.#delay = Math.max(this.minMs, d / 2);
    else if (bytesPerMs * 2 * d <= this.batchBytes && busyPerMs * 2 * d <= this.busyMs) this.#delay = Math.min(this.maxMs, d * 2);
    return { next: 'timer', ms: this.#delay };
  }
}

// epoll(7), for the edge-triggered wait of a reader with `control` (x86-64 packs struct epoll_event in 12
// bytes, arm64 aligns it to 16: a 16-byte buffer fits both).
const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLLIN = 0x1;
const EPOLLET = 0x80000000;

/**
 * Reads a BPF ring buffer map through mmap. Construct after the map is loaded.
 *
 * Waiting. Idle, the reader sleeps in poll until the kernel says a record came. Then it drains on a timer
 * paced by DrainPacer, without poll, until a drain finds nothing. Without `control` the kernel sends no
 * wakeup while the reader lags, so poll is simply off during the timer phase. With `control` the reader
 * waits on its own epoll set holding the ring edge-triggered, always armed, and tells the BPF side how it
 * waits (`mode`): records are submitted without a wakeup while it drains, and the only edge that comes while
 * it waits on its timer is the one forced by a ring past the watermark, which ends the wait at once (the
 * producer that forces it marks the reader BUSY, so that one interrupt is raised, not one per record).
 */
export class RingBufReader implements EventReader {
  readonly name: string;
  readonly consumer: RingConsumer;
  readonly #fd: number;
  readonly #page: number;
  readonly #size: number;
  #consPtr: Ptr | null;
  #prodPtr: Ptr | null;
  #poll: koffiNode.PollHandle | undefined;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #handler: RecordHandler | undefined;
  #state: 'idle' | 'polling' | 'draining' | 'paused' | 'stopped' | 'closed' = 'idle';
  readonly #maxPerDrain: number;
  readonly #credit: (() => number) | undefined;
  readonly #creditWaitMs: number;
  readonly #holdsBack: (() => boolean) | undefined;
  readonly #creditStallMs: number;
  readonly #retryMs: number;
  /** Since when the consumer has had no room (performance.now()); undefined while it has. */
  #starvedSince: number | undefined;
  /** The consumer's room when this pass began (Infinity without `credit`): a pass past it counts (pastRoom). */
  #room = Infinity;
  /** The next look for room, doubling while there is none: each look costs a turn of the event loop. */
  #creditDelay = 1;
  readonly pacer: DrainPacer;
  /** When the last drain pass began (performance.now()); a wakeup from poll counts as one. */
  #lastDrainAt = 0;
  readonly #drainCb = () => this.#drainTick();
  // With `control`: the mapped struct vigil_ring_ctl, our epoll set, and the fill that forces a wakeup.
  #ctlPtr: Ptr | null = null;
  #ctlLen = 0;
  #mode: Int32Array | undefined;
  #epfd = -1;
  readonly #epollBuf = Buffer.alloc(16);
  #wakeupBytes = 0;
  #recheck: NodeJS.Immediate | undefined;

  /** Throws InvalidArgumentError for a map that is not a ring buffer, SyscallError if mmap fails. */
  constructor(map: BpfMap, o: RingBufReaderOptions = {}) {
    if (map.type !== MapType.RINGBUF) throw new InvalidArgumentError(`map ${map.name} is not a ring buffer (type ${map.type})`);
    const ctl = o.control;
    if (ctl && (ctl.type !== MapType.ARRAY || !(ctl.flags & MapFlags.MMAPABLE) || ctl.valueSize < SIZEOF.vigil_ring_ctl)) {
      throw new InvalidArgumentError(`ring control map ${ctl.name} must be an mmapable array of struct vigil_ring_ctl (${SIZEOF.vigil_ring_ctl} bytes)`);
    }
    const wakeupFill = o.wakeupFill ?? 0.25;
    if (!(wakeupFill > 0 && wakeupFill < 1)) throw new InvalidArgumentError(`ring wakeup fill must be between 0 and 1, got ${o.wakeupFill}`);
    this.name = map.name;
    this.#fd = map.fd;
    this.#size = map.maxEntries;
    this.#maxPerDrain = o.maxPerDrain ?? 32768;
    this.pacer = new DrainPacer({ size: this.#size, minMs: o.batchDelayMs, maxMs: o.maxBatchDelayMs, urgentFill: o.urgentFill, woken: !!ctl });
    this.#credit = o.credit;
    this.#creditWaitMs = o.creditWaitMs ?? 100;
    this.#holdsBack = o.holdsBack;
    this.#creditStallMs = o.creditStallMs ?? 2000;
    this.#retryMs = Math.max(1, this.pacer.minMs);
    this.#creditDelay = this.#retryMs;
    const l = lib();
    const page = l.getpagesize() as number;
    this.#page = page;
    // PROT_READ=1, PROT_WRITE=2, MAP_SHARED=1
    const cons = l.mmap(null, page, 3, 1, this.#fd, 0) as Ptr;
    if (isMapFailed(cons)) throw errorFromErrno(`mmap consumer page of ring ${map.name}`, errno());
    // The data area once, not twice: see the top of this file.
    const prod = l.mmap(null, page + this.#size, 1, 1, this.#fd, page) as Ptr;
    if (isMapFailed(prod)) {
      const e = errno();
      l.munmap(cons, page);
      throw errorFromErrno(`mmap data pages of ring ${map.name}`, e);
    }
    this.#consPtr = cons;
    this.#prodPtr = prod;
    const consAb = koffi.view(cons, 8);
    const prodAb = koffi.view(prod, page + this.#size);
    this.consumer = new RingConsumer({
      consumer: new Int32Array(consAb, 0, 2),
      consumer64: new BigUint64Array(consAb, 0, 1),
      producer: new Int32Array(prodAb, 0, 2),
      data: new DataView(prodAb, page, this.#size),
      dataI32: new Int32Array(prodAb, page, this.#size >> 2),
      size: this.#size,
      mirrored: false,
    });
    if (ctl) {
      try {
        this.#openControl(ctl, Math.floor(this.#size * wakeupFill));
      } catch (err) {
        this.close();
        throw err;
      }
    }
  }

  /** Maps the control struct, sets the watermark, and builds the edge-triggered epoll set over the ring. */
  #openControl(ctl: BpfMap, wakeupBytes: number): void {
    const l = lib();
    const len = Math.ceil((ctl.valueSize * ctl.maxEntries) / this.#page) * this.#page;
    const p = l.mmap(null, len, 3, 1, ctl.fd, 0) as Ptr;
    if (isMapFailed(p)) throw errorFromErrno(`mmap ring control map ${ctl.name}`, errno());
    this.#ctlPtr = p;
    this.#ctlLen = len;
    const ab = koffi.view(p, SIZEOF.vigil_ring_ctl);
    this.#mode = new Int32Array(ab, VIGIL_RING_CTL.mode.offset, 1);
    new DataView(ab).setBigUint64(VIGIL_RING_CTL.wakeup_bytes.offset, BigInt(wakeupBytes), true);
    Atomics.store(this.#mode, 0, VIGIL_RING_MODE.POLL);
    this.#wakeupBytes = wakeupBytes;
    const ep = l.epoll_create1(EPOLL_CLOEXEC) as number;
    if (ep < 0) throw errorFromErrno(`epoll_create1 for ring ${this.name}`, errno());
    this.#epfd = ep;
    const ev = Buffer.alloc(16);
    ev.writeUInt32LE((EPOLLIN | EPOLLET) >>> 0, 0);
    if ((l.epoll_ctl(ep, EPOLL_CTL_ADD, this.#fd, ev) as number) < 0) throw errorFromErrno(`epoll_ctl on ring ${this.name}`, errno());
  }

  /** The BPF side wakes us on fill only (vigil_ring_ctl): the ring's size no longer bounds the delay. */
  get woken(): boolean {
    return this.#epfd >= 0;
  }

  /** Starts delivering records to `handler` from the event loop. */
  start(handler: RecordHandler): void {
    this.#alive();
    this.#handler = handler;
    if (this.#state === 'paused') return;
    this.#arm();
  }

  #alive(): void {
    if (this.#state === 'closed' || this.#state === 'stopped') throw new StateError(`ring buffer reader ${this.name} is ${this.#state}`);
  }

  readonly #onPoll = ((status: number) => this.#onReadable(status)) as PollCallback;

  #startPoll(): void {
    const cb = this.#onPoll as unknown as (ev: unknown) => void;
    const fd = this.#epfd >= 0 ? this.#epfd : this.#fd;
    if (!this.#poll) this.#poll = koffi.node.poll(fd, { readable: true }, cb);
    else this.#poll.start({ readable: true }, cb);
  }

  /** Goes back to waiting for the kernel's wakeup (idle). */
  #arm(): void {
    this.#state = 'polling';
    if (this.#epfd < 0) {
      this.#startPoll();
      return;
    }
    if (!this.#poll) this.#startPoll();
    // Wakeups on again, then look once more: a record whose producer read `mode` just before this store went
    // out without a wakeup. Its reservation is visible by the next turn of the loop, if not now.
    Atomics.store(this.#mode!, 0, VIGIL_RING_MODE.POLL);
    if (this.consumer.available() > 0) this.#wake();
    else this.#recheck = setImmediate(() => {
      this.#recheck = undefined;
      if (this.#state === 'polling' && this.consumer.available() > 0) this.#wake();
    });
  }

  #onReadable(status: number): void {
    if (status < 0) {
      // libuv stopped the watcher: drain on a timer instead, which re-arms when the ring is empty.
      this.consumer.counters.pollErrors++;
      this.#poll?.close();
      this.#poll = undefined;
      if (this.#state !== 'polling' && this.#state !== 'draining') return;
      this.#quiesceTimers();
      this.#state = 'draining';
      this.#timer = setTimeout(this.#drainCb, POLL_ERROR_RETRY_MS);
      return;
    }
    if (this.#epfd >= 0) {
      // Take the edge off our epoll set, or libuv's level-triggered watch of it would fire again.
      lib().epoll_wait(this.#epfd, this.#epollBuf, 1, 0);
      if (this.#state === 'draining') {
        // On our timer only a full ring wakes us (or an edge from before `mode` changed: ignored).
        if (this.#timer && this.consumer.available() >= this.#wakeupBytes) {
          this.consumer.counters.forcedWakeups++;
          clearTimeout(this.#timer);
          this.#timer = undefined;
          this.#setMode(VIGIL_RING_MODE.BUSY);
          this.#immediate = setImmediate(this.#drainCb);
        } else if (this.#timer) this.#setMode(VIGIL_RING_MODE.TIMER); // a stale edge: keep the watermark armed
        return;
      }
    }
    if (this.#state !== 'polling') return;
    this.#wake();
  }

  /** Records are waiting: drain them on the pacer's timer. */
  #wake(): void {
    this.consumer.counters.wakeups++;
    if (this.#recheck) clearImmediate(this.#recheck);
    this.#recheck = undefined;
    if (this.#epfd < 0) this.#poll?.stop();
    this.#state = 'draining';
    this.#lastDrainAt = performance.now(); // the first batch is measured from here: it began arriving now
    // Let a batch accumulate unless the ring is already filling up.
    this.#follow(this.pacer.wake(this.consumer.available()));
  }

  #drainTick(): void {
    this.#timer = undefined;
    this.#immediate = undefined;
    if (this.#state !== 'draining' || !this.#handler) return;
    const c = this.consumer.counters;
    const bytes0 = c.bytes;
    const t0 = performance.now();
    const elapsed = t0 - this.#lastDrainAt;
    const max = this.#budget(t0);
    if (max === 0) {
      // No room behind us: leave the records in the ring and look again, later each time (up to 16 ms).
      c.creditWaits++;
      this.#waitForRoom();
      return;
    }
    this.#lastDrainAt = t0;
    const n = this.consumer.drain(this.#handler, max);
    if (n > this.#room) c.pastRoom++;
    // A pass cut by the consumer's room waits (its queues drain meanwhile), not for the next turn.
    if (max < this.#maxPerDrain && n >= max) {
      this.#waitForRoom();
      return;
    }
    this.#creditDelay = this.#retryMs;
    this.#follow(this.pacer.after(n, c.bytes - bytes0, performance.now() - t0, elapsed, this.consumer.available(), n >= this.#maxPerDrain));
  }

  /**
   * Looks for the consumer's room again after #creditDelay, which doubles up to CREDIT_MAX_DELAY_MS. No
   * wakeups meanwhile (BUSY): the timer looks anyway, and a wakeup could not drain more than the room.
   */
  #waitForRoom(): void {
    this.#setMode(VIGIL_RING_MODE.BUSY);
    this.#timer = setTimeout(this.#drainCb, this.#creditDelay);
    this.#creditDelay = Math.min(this.#creditDelay * 2, CREDIT_MAX_DELAY_MS);
  }

  /** Records this pass may take: the consumer's room, unless the ring is filling or it has waited too long. */
  #budget(now: number): number {
    if (!this.#credit) return this.#maxPerDrain;
    const room = Math.floor(this.#credit());
    this.#room = room;
    if (this.consumer.available() >= this.pacer.urgentBytes) {
      this.#starvedSince = undefined;
      return this.#maxPerDrain;
    }
    if (room > 0) {
      this.#starvedSince = undefined;
      return Math.min(room, this.#maxPerDrain);
    }
    this.#starvedSince ??= now;
    const waited = now - this.#starvedSince;
    if (waited < this.#creditWaitMs) return 0;
    if (waited < this.#creditStallMs && this.#holdsBack?.() === false) return 0;
    this.#starvedSince = undefined; // waited long enough: one full pass, the queues count what they drop
    return this.#maxPerDrain;
  }

  #follow(d: PaceDecision): void {
    if (d.next === 'immediate') {
      // More is ready now: continue after other I/O runs. No wakeup can help meanwhile.
      this.#setMode(VIGIL_RING_MODE.BUSY);
      this.#immediate = setImmediate(this.#drainCb);
    } else if (d.next === 'timer') {
      this.#setMode(VIGIL_RING_MODE.TIMER);
      this.#timer = setTimeout(this.#drainCb, d.ms);
    } else this.#arm(); // idle: back to poll, no timers. Nothing pending is missed (see #arm).
  }

  /** Tells the sensors how we wait (struct vigil_ring_ctl), when they read it. */
  #setMode(m: number): void {
    if (this.#mode && this.#mode[0] !== m) Atomics.store(this.#mode, 0, m);
  }

  drain(handler: RecordHandler | undefined = this.#handler, max = Infinity): number {
    this.#alive();
    if (!handler) throw new StateError(`ring buffer reader ${this.name}: no handler`);
    return this.consumer.drain(handler, max);
  }

  readInto(rec: RingRecord): boolean {
    this.#alive();
    return this.consumer.readInto(rec);
  }

  read(): Uint8Array | null {
    this.#alive();
    return this.consumer.read();
  }

  stats(): ReaderStats {
    return { ...this.consumer.counters };
  }

  fill(): number {
    return this.#state === 'closed' ? 0 : this.consumer.available() / this.#size;
  }

  #quiesceTimers(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    if (this.#recheck) clearImmediate(this.#recheck);
    this.#timer = undefined;
    this.#immediate = undefined;
    this.#recheck = undefined;
  }

  #quiesce(): void {
    this.#poll?.stop();
    this.#quiesceTimers();
  }

  /** Stops delivering; records stay in the ring until resume(). */
  pause(): void {
    if (this.#state === 'closed' || this.#state === 'stopped') return;
    this.#quiesce();
    // Nobody drains until resume: no wakeups wanted.
    this.#setMode(VIGIL_RING_MODE.BUSY);
    this.#state = 'paused';
  }

  resume(): void {
    if (this.#state !== 'paused') return;
    if (!this.#handler) {
      this.#state = 'idle';
      return;
    }
    if (this.#epfd < 0) {
      this.#arm();
      return;
    }
    // Records that came while paused sent no wakeup: look now.
    this.#startPoll();
    this.#state = 'draining';
    this.#setMode(VIGIL_RING_MODE.BUSY);
    this.#lastDrainAt = performance.now();
    this.#immediate = setImmediate(this.#drainCb);
  }

  /** Stops delivering and releases the poll watcher. Idempotent. */
  stop(): void {
    if (this.#state === 'closed' || this.#state === 'stopped') return;
    this.#quiesce();
    this.#poll?.close();
    this.#poll = undefined;
    // Back to the kernel's default wakeups for whoever reads the ring next.
    this.#setMode(VIGIL_RING_MODE.POLL);
    this.#state = 'stopped';
  }

  /** Stops, then unmaps the ring. Any view handed out before is invalid after this. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.stop();
    this.#state = 'closed';
    const l = lib();
    if (this.#consPtr !== null) l.munmap(this.#consPtr, this.#page);
    if (this.#prodPtr !== null) l.munmap(this.#prodPtr, this.#page + this.#size);
    if (this.#ctlPtr !== null) l.munmap(this.#ctlPtr, this.#ctlLen);
    if (this.#epfd >= 0) l.close(this.#epfd);
    this.#consPtr = null;
    this.#prodPtr = null;
    this.#ctlPtr = null;
    this.#mode = undefined;
    this.#epfd = -1;
  }
}

function isMapFailed(p: Ptr | null): boolean {
  return p === null || p === 0xffffffffffffffffn;
}
