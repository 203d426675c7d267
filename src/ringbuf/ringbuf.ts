// Zero-copy consumer of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF), read on the main thread.
//
// The ring is mmap'd: the consumer page read-write at offset 0, the producer page plus the data area (which
// the kernel maps twice in a row, so a record that wraps is still contiguous) read-only at offset PAGE.
// Positions are read with Atomics.load and the consumer position published with Atomics.store; records are
// handed to the handler as (DataView, offset, length) straight out of ring memory, never copied.
//
// Wakeups, not copies, are the cost (KERNEL-NOTES.md). The reader is idle on poll(2) of the map fd with no
// timer running; when woken it stops polling and drains on a 1 ms timer for as long as records keep coming,
// so a busy ring costs one wakeup per batch; the first empty drain re-arms poll. The kernel only wakes a
// consumer that has caught up, so while we batch, producers pay no wakeups at all.
import koffi, { type node as koffiNode } from 'koffi';
import { StateError, errorFromErrno } from '../bpf/errors.ts';
import { errno, lib, type Ptr } from '../bpf/ffi.ts';
import type { BpfMap } from '../bpf/map.ts';
import { MapType } from '../bpf/constants.ts';
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
  /** The data area, 2 × size bytes (mapped twice so that a wrapping record is contiguous). */
  data: DataView;
  dataI32: Int32Array;
  /** Data area size in bytes (a power of two). */
  size: number;
}

/**
 * The consume loop over a RingLayout, with no I/O: unit tests drive it over synthetic buffers, the
 * RingBufReader drives it over the kernel's memory.
 */
export class RingConsumer {
  readonly layout: RingLayout;
  readonly #mask: number;
  /** Our consumer position; a JS number is exact up to 2^53 bytes. */
  #cons: number;
  #pending = 0; // bytes of the record handed out by readInto(), released on the next call
  readonly counters: ReaderStats = { received: 0, discarded: 0, bytes: 0, wakeups: 0, drains: 0, handlerErrors: 0, pollErrors: 0, lost: 0 };
  onHandlerError: ((err: unknown) => void) | undefined;

  constructor(layout: RingLayout) {
    if (layout.size <= 0 || (layout.size & (layout.size - 1)) !== 0) throw new InvalidArgumentError(`ring size ${layout.size} is not a power of two`);
    this.layout = layout;
    this.#mask = layout.size - 1;
    const lo = Atomics.load(layout.consumer, 0) >>> 0;
    const hi = Atomics.load(layout.consumer, 1) >>> 0;
    this.#cons = hi * TWO32 + lo;
  }

  /** Bytes of unread data (producer − consumer). */
  available(): number {
    return ((Atomics.load(this.layout.producer, 0) >>> 0) - (this.#cons >>> 0)) >>> 0;
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
      if ((hdr & DISCARD) === 0) {
        try {
          handler(data, off + HDR, len);
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
      if ((hdr & DISCARD) !== 0) {
        this.counters.discarded++;
        this.#publish(this.#cons + step);
        continue;
      }
      rec.view = this.layout.data;
      rec.offset = off + HDR;
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

export interface RingBufReaderOptions {
  /**
   * Delay between a wakeup and the drain, and between drains while records keep coming (ms). While a drain
   * finds many records the reader waits twice as long (each timer tick costs ~50 µs of CPU here), still
   * within the 1-2 ms latency bound.
   */
  batchDelayMs?: number;
  /** Most records handled in one pass before yielding to the event loop (bounds loop latency). */
  maxPerDrain?: number;
  /** Drain right away (no batching delay) once the ring is this full (0..1). */
  urgentFill?: number;
}

/** Reads a BPF ring buffer map through mmap. Construct after the map is loaded. */
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
  readonly #batchDelayMs: number;
  readonly #maxPerDrain: number;
  readonly #urgentBytes: number;
  readonly #drainCb = () => this.#drainTick();

  /** Throws InvalidArgumentError for a map that is not a ring buffer, SyscallError if mmap fails. */
  constructor(map: BpfMap, o: RingBufReaderOptions = {}) {
    if (map.type !== MapType.RINGBUF) throw new InvalidArgumentError(`map ${map.name} is not a ring buffer (type ${map.type})`);
    this.name = map.name;
    this.#fd = map.fd;
    this.#size = map.maxEntries;
    this.#batchDelayMs = o.batchDelayMs ?? 1;
    this.#maxPerDrain = o.maxPerDrain ?? 32768;
    this.#urgentBytes = Math.floor(this.#size * (o.urgentFill ?? 0.5));
    const l = lib();
    const page = l.getpagesize() as number;
    this.#page = page;
    // PROT_READ=1, PROT_WRITE=2, MAP_SHARED=1
    const cons = l.mmap(null, page, 3, 1, this.#fd, 0) as Ptr;
    if (isMapFailed(cons)) throw errorFromErrno(`mmap consumer page of ring ${map.name}`, errno());
    const prod = l.mmap(null, page + 2 * this.#size, 1, 1, this.#fd, page) as Ptr;
    if (isMapFailed(prod)) {
      const e = errno();
      l.munmap(cons, page);
      throw errorFromErrno(`mmap data pages of ring ${map.name}`, e);
    }
    this.#consPtr = cons;
    this.#prodPtr = prod;
    const consAb = koffi.view(cons, 8);
    const prodAb = koffi.view(prod, page + 2 * this.#size);
    this.consumer = new RingConsumer({
      consumer: new Int32Array(consAb, 0, 2),
      consumer64: new BigUint64Array(consAb, 0, 1),
      producer: new Int32Array(prodAb, 0, 2),
      data: new DataView(prodAb, page, 2 * this.#size),
      dataI32: new Int32Array(prodAb, page, (2 * this.#size) >> 2),
      size: this.#size,
    });
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

  #arm(): void {
    this.#state = 'polling';
    const cb = this.#onPoll as unknown as (ev: unknown) => void;
    if (!this.#poll) this.#poll = koffi.node.poll(this.#fd, { readable: true }, cb);
    else this.#poll.start({ readable: true }, cb);
  }

  #onReadable(status: number): void {
    if (this.#state !== 'polling') return;
    if (status < 0) {
      // libuv stopped the watcher: drain on a timer instead, which re-arms when the ring is empty.
      this.consumer.counters.pollErrors++;
      this.#state = 'draining';
      this.#timer = setTimeout(this.#drainCb, POLL_ERROR_RETRY_MS);
      return;
    }
    this.consumer.counters.wakeups++;
    this.#poll?.stop();
    this.#state = 'draining';
    // Let a batch accumulate unless the ring is already filling up.
    if (this.consumer.available() >= this.#urgentBytes) this.#immediate = setImmediate(this.#drainCb);
    else this.#timer = setTimeout(this.#drainCb, this.#batchDelayMs);
  }

  #drainTick(): void {
    this.#timer = undefined;
    this.#immediate = undefined;
    if (this.#state !== 'draining' || !this.#handler) return;
    const n = this.consumer.drain(this.#handler, this.#maxPerDrain);
    if (n >= this.#maxPerDrain || this.consumer.available() >= this.#urgentBytes) {
      this.#immediate = setImmediate(this.#drainCb); // more is ready now: continue after other I/O runs
    } else if (n > 0) {
      // busy: keep batching on the timer, longer when the batch was large (the ring has room to spare)
      this.#timer = setTimeout(this.#drainCb, n >= 1024 ? 2 * this.#batchDelayMs : this.#batchDelayMs);
    } else {
      this.#arm(); // idle: back to poll, no timers. poll is level-triggered, so nothing pending is missed.
    }
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

  #quiesce(): void {
    this.#poll?.stop();
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }

  /** Stops delivering; records stay in the ring until resume(). */
  pause(): void {
    if (this.#state === 'closed' || this.#state === 'stopped') return;
    this.#quiesce();
    this.#state = 'paused';
  }

  resume(): void {
    if (this.#state !== 'paused') return;
    if (this.#handler) this.#arm();
    else this.#state = 'idle';
  }

  /** Stops delivering and releases the poll watcher. Idempotent. */
  stop(): void {
    if (this.#state === 'closed' || this.#state === 'stopped') return;
    this.#quiesce();
    this.#poll?.close();
    this.#poll = undefined;
    this.#state = 'stopped';
  }

  /** Stops, then unmaps the ring. Any view handed out before is invalid after this. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.stop();
    this.#state = 'closed';
    const l = lib();
    if (this.#consPtr !== null) l.munmap(this.#consPtr, this.#page);
    if (this.#prodPtr !== null) l.munmap(this.#prodPtr, this.#page + 2 * this.#size);
    this.#consPtr = null;
    this.#prodPtr = null;
  }
}

function isMapFailed(p: Ptr | null): boolean {
  return p === null || p === 0xffffffffffffffffn;
}
