// Consumer of a BPF perf event array (BPF_MAP_TYPE_PERF_EVENT_ARRAY): the only output channel on kernels
// older than 5.8. One perf buffer per CPU, opened with perf_event_open(PERF_COUNT_SW_BPF_OUTPUT), mmap'd and
// read in place. Unlike the ring buffer, a perf buffer's data area is mapped once, so the rare record that
// wraps around the end is copied into a scratch buffer; every other record is handed over zero-copy.
// The kernel reports records it dropped for a full buffer as PERF_RECORD_LOST, which we count as `lost`.
import fs from 'node:fs';
import koffi, { type node as koffiNode } from 'koffi';
import { MapType, Perf, SYS } from '../bpf/constants.ts';
import { InvalidArgumentError, StateError, errorFromErrno } from '../bpf/errors.ts';
import { errno, lib, PerfEventAttr, type Ptr } from '../bpf/ffi.ts';
import type { BpfMap } from '../bpf/map.ts';
import { onlineCpus } from '../bpf/program.ts';
import { POLL_ERROR_RETRY_MS, type EventReader, type PollCallback, type ReaderStats, type RecordHandler } from './ringbuf.ts';

export type PerfReaderStats = ReaderStats;

export interface PerfBufReaderOptions {
  /** Data pages per CPU (a power of two). */
  pagesPerCpu?: number;
  /** Wake the reader once this many bytes are pending instead of on every record (0: every record). */
  watermarkBytes?: number;
  batchDelayMs?: number;
  maxPerDrain?: number;
}

interface CpuBuffer {
  cpu: number;
  fd: number;
  base: Ptr;
  mmapLen: number;
  meta: BigUint64Array; // perf_event_mmap_page viewed as u64 words
  data: DataView;
  dataSize: number;
  poll: koffiNode.PollHandle | undefined;
}

// Offsets in struct perf_event_mmap_page (u64 word indices).
const DATA_HEAD = 1024 / 8;
const DATA_TAIL = 1032 / 8;

export class PerfBufReader implements EventReader {
  readonly name: string;
  readonly #map: BpfMap;
  readonly #bufs: CpuBuffer[] = [];
  readonly #scratch: DataView;
  readonly #scratchBuf: Uint8Array;
  readonly #counters: PerfReaderStats = { received: 0, discarded: 0, bytes: 0, wakeups: 0, drains: 0, handlerErrors: 0, pollErrors: 0, lost: 0, corrupt: 0, forcedWakeups: 0, creditWaits: 0, pastRoom: 0 };
  #handler: RecordHandler | undefined;
  #state: 'idle' | 'polling' | 'confirming' | 'draining' | 'paused' | 'stopped' | 'closed' = 'idle';
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  readonly #batchDelayMs: number;
  readonly #maxPerDrain: number;
  readonly #drainCb = () => this.#drainTick();

  /** Opens one perf buffer per online CPU and registers them in `map`. Throws on any failure, cleaning up. */
  constructor(map: BpfMap, o: PerfBufReaderOptions = {}) {
    if (map.type !== MapType.PERF_EVENT_ARRAY) throw new InvalidArgumentError(`map ${map.name} is not a perf event array`);
    this.name = map.name;
    this.#map = map;
    this.#batchDelayMs = o.batchDelayMs ?? 1;
    this.#maxPerDrain = o.maxPerDrain ?? 32768;
    const pages = o.pagesPerCpu ?? 64;
    if (pages <= 0 || (pages & (pages - 1)) !== 0) throw new InvalidArgumentError(`pagesPerCpu must be a power of two, got ${pages}`);
    const l = lib();
    const page = l.getpagesize() as number;
    const dataSize = pages * page;
    this.#scratchBuf = new Uint8Array(dataSize);
    this.#scratch = new DataView(this.#scratchBuf.buffer);
    try {
      for (const cpu of onlineCpus()) {
        if (cpu >= map.maxEntries) continue;
        const watermark = o.watermarkBytes ?? 0;
        const attr = Buffer.alloc(koffi.sizeof(PerfEventAttr));
        koffi.encode(attr, PerfEventAttr, {
          type: Perf.TYPE_SOFTWARE,
          size: koffi.sizeof(PerfEventAttr),
          config: Perf.COUNT_SW_BPF_OUTPUT,
          sample_period_or_freq: 1,
          sample_type: Perf.SAMPLE_RAW,
          flags: watermark > 0 ? Perf.FLAG_WATERMARK : 0n,
          wakeup_events_or_watermark: watermark > 0 ? watermark : 1,
        });
        const fd = Number(l.syscall(SYS.perf_event_open, 'void *', attr, 'int', -1, 'int', cpu, 'int', -1, 'unsigned long', 8));
        if (fd < 0) throw errorFromErrno(`perf_event_open(BPF_OUTPUT) on cpu ${cpu}`, errno(), { capability: 'CAP_PERFMON' });
        const mmapLen = page + dataSize;
        const base = l.mmap(null, mmapLen, 3, 1, fd, 0) as Ptr;
        if (base === null || base === 0xffffffffffffffffn) {
          const e = errno();
          l.close(fd);
          throw errorFromErrno(`mmap perf buffer cpu ${cpu}`, e);
        }
        const ab = koffi.view(base, mmapLen);
        this.#bufs.push({ cpu, fd, base, mmapLen, meta: new BigUint64Array(ab, 0, page / 8), data: new DataView(ab, page, dataSize), dataSize, poll: undefined });
        const key = Buffer.alloc(4);
        key.writeUInt32LE(cpu);
        const val = Buffer.alloc(4);
        val.writeUInt32LE(fd);
        map.update(key, val);
        if ((l.ioctl(fd, Perf.IOC_ENABLE, 'int', 0) as number) < 0) throw errorFromErrno(`enable perf buffer cpu ${cpu}`, errno());
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  start(handler: RecordHandler): void {
    if (this.#state === 'closed' || this.#state === 'stopped') throw new StateError(`perf reader ${this.name} is ${this.#state}`);
    this.#handler = handler;
    if (this.#state !== 'paused') this.#arm();
  }

  // A perf fd's poll is destructive (perf_poll does atomic_xchg(&rb->poll, 0)): when the fd is registered
  // with epoll, the registration's own poll consumes a pending wakeup and epoll's re-check then reports
  // nothing. So every (re)arm is followed by one confirming drain, scheduled after the registration took
  // effect: records that arrived before it are drained there, records after it wake us as usual.
  readonly #onPoll = ((status: number) => this.#onReadable(status)) as PollCallback;

  #arm(): void {
    const cb = this.#onPoll as unknown as (ev: unknown) => void;
    for (const b of this.#bufs) {
      if (!b.poll) b.poll = koffi.node.poll(b.fd, { readable: true }, cb);
      else b.poll.start({ readable: true }, cb);
    }
    this.#state = 'confirming';
    this.#timer = setTimeout(this.#drainCb, this.#batchDelayMs);
  }

  #onReadable(status: number): void {
    if (this.#state !== 'polling' && this.#state !== 'confirming') return;
    if (status < 0) {
      // libuv stopped that watcher: drain on a timer instead; the drain cycle re-arms every watcher.
      this.#counters.pollErrors++;
      for (const b of this.#bufs) b.poll?.stop();
      if (this.#timer) clearTimeout(this.#timer);
      this.#state = 'draining';
      this.#timer = setTimeout(this.#drainCb, POLL_ERROR_RETRY_MS);
      return;
    }
    this.#counters.wakeups++;
    if (this.#state === 'polling') this.#timer = setTimeout(this.#drainCb, this.#batchDelayMs);
    for (const b of this.#bufs) b.poll?.stop(); // no per-record wakeups of this process while we batch
    this.#state = 'draining';
  }

  #drainTick(): void {
    this.#timer = undefined;
    this.#immediate = undefined;
    if ((this.#state !== 'draining' && this.#state !== 'confirming') || !this.#handler) return;
    const confirming = this.#state === 'confirming';
    const n = this.drain(this.#handler, this.#maxPerDrain);
    if (n > 0 && confirming) {
      for (const b of this.#bufs) b.poll?.stop();
      this.#state = 'draining';
    }
    if (n >= this.#maxPerDrain) this.#immediate = setImmediate(this.#drainCb);
    else if (n > 0) this.#timer = setTimeout(this.#drainCb, this.#batchDelayMs);
    else if (confirming) this.#state = 'polling'; // idle: poll registered, no timer running
    else this.#arm();
  }

  drain(handler: RecordHandler | undefined = this.#handler, max = Infinity): number {
    if (!handler) throw new StateError(`perf reader ${this.name}: no handler`);
    if (this.#state === 'closed') throw new StateError(`perf reader ${this.name} is closed`);
    this.#counters.drains++;
    let n = 0;
    for (const b of this.#bufs) {
      if (n >= max) break;
      n += this.#drainCpu(b, handler, max - n);
    }
    return n;
  }

  #drainCpu(b: CpuBuffer, handler: RecordHandler, max: number): number {
    const head = Number(Atomics.load(b.meta, DATA_HEAD)); // acquire: records up to head are complete
    let tail = Number(b.meta[DATA_TAIL]);
    const size = b.dataSize;
    const c = this.#counters;
    let n = 0;
    while (tail < head && n < max) {
      const off = tail % size;
      // struct perf_event_header { u32 type; u16 misc; u16 size; } may itself wrap: read it byte-safely.
      const type = this.#u32(b, off);
      const recSize = this.#u16(b, off + 6);
      // A record shorter than its header or reaching past head is corrupt: skip to head (a record boundary),
      // counted, rather than spin on it or hand out bytes that are not a record.
      if (recSize < 8 || tail + recSize > head) {
        c.corrupt++;
        tail = head;
        break;
      }
      if (type === Perf.RECORD_SAMPLE) {
        const rawSize = this.#u32(b, off + 8);
        if (rawSize + 12 > recSize) {
          c.corrupt++;
          tail = head;
          break;
        }
        const dataOff = (off + 12) % size;
        try {
          if (dataOff + rawSize <= size) handler(b.data, dataOff, rawSize);
          else handler(this.#copyWrapped(b, dataOff, rawSize), 0, rawSize);
        } catch {
          c.handlerErrors++;
        }
        c.received++;
        c.bytes += rawSize;
        n++;
      } else if (type === Perf.RECORD_LOST) {
        c.lost += Number(this.#u64(b, off + 16));
      }
      tail += recSize;
    }
    Atomics.store(b.meta, DATA_TAIL, BigInt(tail)); // release: the kernel may reuse the space
    return n;
  }

  #byte(b: CpuBuffer, off: number): number {
    return b.data.getUint8(off % b.dataSize);
  }
  #u16(b: CpuBuffer, off: number): number {
    return this.#byte(b, off) | (this.#byte(b, off + 1) << 8);
  }
  #u32(b: CpuBuffer, off: number): number {
    return (this.#u16(b, off) | (this.#u16(b, off + 2) << 16)) >>> 0;
  }
  #u64(b: CpuBuffer, off: number): bigint {
    return BigInt(this.#u32(b, off)) | (BigInt(this.#u32(b, off + 4)) << 32n);
  }

  #copyWrapped(b: CpuBuffer, off: number, len: number): DataView {
    const first = b.dataSize - off;
    const src = new Uint8Array(b.data.buffer, b.data.byteOffset, b.dataSize);
    this.#scratchBuf.set(src.subarray(off, b.dataSize), 0);
    this.#scratchBuf.set(src.subarray(0, len - first), first);
    return this.#scratch;
  }

  stats(): PerfReaderStats {
    return { ...this.#counters };
  }

  fill(): number {
    let worst = 0;
    for (const b of this.#bufs) {
      const pending = Number(Atomics.load(b.meta, DATA_HEAD) - b.meta[DATA_TAIL]!);
      worst = Math.max(worst, pending / b.dataSize);
    }
    return worst;
  }

  #quiesce(): void {
    for (const b of this.#bufs) b.poll?.stop();
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }

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

  stop(): void {
    if (this.#state === 'closed' || this.#state === 'stopped') return;
    this.#quiesce();
    for (const b of this.#bufs) {
      b.poll?.close();
      b.poll = undefined;
    }
    this.#state = 'stopped';
  }

  /** Stops, removes the CPUs' entries from the map, unmaps and closes every perf buffer. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.stop();
    this.#state = 'closed';
    const l = lib();
    for (const b of this.#bufs) {
      try {
        const key = Buffer.alloc(4);
        key.writeUInt32LE(b.cpu);
        if (this.#map.loaded) this.#map.delete(key);
      } catch {
        // the map is already gone with its object
      }
      l.munmap(b.base, b.mmapLen);
      fs.closeSync(b.fd);
    }
    this.#bufs.length = 0;
  }
}
