// File sink: JSON Lines appended to a file, rotated by size (events.jsonl → events.jsonl.1 → ...). write() only
// queues the line; one async loop writes all that is queued as one chunk: one syscall per batch, on libuv's
// thread pool, never the event loop; a slow disk shows up as counted queue-full drops, not memory growth.
// reopen() (SIGUSR1, as Falco and most daemons do) lets logrotate own the files instead: after it moved or
// truncated the file, the next batch goes to a file opened again at the configured path.
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ByteLine } from '../pipeline/json-bytes.ts';
import type { LineRoom, OutputEvent, SinkStats } from '../pipeline/types.ts';
import { int, object, string } from './options.ts';
import { Reservation } from './preallocate.ts';
import { afterWritten, QueuedSink } from './queue.ts';
import { backoffDelay, sleep } from './retry.ts';

export interface FileSinkOptions {
  path: string;
  /** A file never grows past this, except for a single line larger than it (written alone). Default 100 MiB. */
  maxSizeBytes?: number;
  /** Files kept, the active one included: 3 keeps events.jsonl, .1 and .2. Default 5. */
  maxFiles?: number;
  /**
   * Queue bound, in lines waiting to be written. Default 100000. Like maxQueueBytes, it leaves out the batch
   * being written (at most maxBatchBytes): a large write in flight must not shrink the room for the lines
   * produced meanwhile (bench/storm lost ~5 % of an open storm to that).
   */
  maxQueue?: number;
  /** Queue bound, in bytes. Default 64 MiB. */
  maxQueueBytes?: number;
  /**
   * Upper bound of one write, in bytes. Default 64 MiB, the whole default queue: the queue is encoded already,
   * so a large write costs no extra memory, and a write has to carry all that the pipeline produced in one
   * turn of the event loop (tens of MiB when a busy ring is drained), or the queue fills.
   */
  maxBatchBytes?: number;
  /** close() waits this long for the queue before dropping the rest as "shutdown". Default 5000. */
  closeTimeoutMs?: number;
  /** File mode of new files. Default 0o640: events carry command lines, which are not for every user. */
  mode?: number;
  /**
   * Disk space reserved ahead of the writes, this many bytes at a time (fallocate, the file's size unchanged;
   * see preallocate.ts). Default 8 MiB; 0: none.
   */
  preallocateBytes?: number;
}

type Resolved = Required<FileSinkOptions>;

const KEYS = ['path', 'maxSizeBytes', 'maxFiles', 'maxQueue', 'maxQueueBytes', 'maxBatchBytes', 'closeTimeoutMs', 'mode', 'preallocateBytes'] as const;

/**
 * Validates file sink options.
 * @throws InvalidArgumentError naming the bad field.
 */
export function resolveFileOptions(raw: unknown, p = 'sinks.file'): Resolved {
  const o = object(raw, p, KEYS);
  return {
    path: path.resolve(string(o, 'path', p)),
    maxSizeBytes: int(o, 'maxSizeBytes', p, 100 << 20, 1),
    maxFiles: int(o, 'maxFiles', p, 5, 1, 1000),
    maxQueue: int(o, 'maxQueue', p, 100_000, 1),
    maxQueueBytes: int(o, 'maxQueueBytes', p, 64 << 20, 1),
    maxBatchBytes: int(o, 'maxBatchBytes', p, 64 << 20, 1),
    closeTimeoutMs: int(o, 'closeTimeoutMs', p, 5000, 0),
    mode: int(o, 'mode', p, 0o640, 0, 0o777),
    preallocateBytes: int(o, 'preallocateBytes', p, 8 << 20, 0),
  };
}

/**
 * Encoded lines waiting to be written: one buffer, how much of it is filled, where each line ends, and how
 * far it has been handed to the file. Lines are encoded when they are accepted, so the queue holds bytes off
 * the JS heap: no string outlives its event to be copied by every young-generation GC (bench/pipeline).
 */
interface Chunk {
  buf: Buffer;
  len: number;
  /**
   * End offset of each line, newline included: ends[0, count). A typed array grown by doubling and kept with
   * the chunk when it is reused: a fresh plain array per chunk, grown by pushes, left ~20 bytes of garbage
   * per line (bench/pipeline replay, allocation profile).
   */
  ends: Int32Array;
  count: number;
  /** Lines and bytes before these were written (or dropped). */
  first: number;
  start: number;
  /** A buffer made for one oversized line: not kept for reuse. */
  oneOff: boolean;
}

const CHUNK_BYTES = 1 << 20;
/**
 * Spare chunks are kept while the sink is busy, up to what the queue's byte bound can fill, and trimmed to
 * SPARE_IDLE once no line has come for SPARE_TRIM_MS. Freed and allocated again under a steady stream, the
 * chunks were external memory V8 saw grow by a megabyte per chunk: it started a full mark-compact every
 * ~70 ms of a live storm (bench/pipeline), none once they are kept.
 */
const SPARE_IDLE = 2;
const SPARE_TRIM_MS = 1000;
/** Room placeLine offers: most lines are ~1 KiB; a longer one moves out and is copied (writeBytes). */
const PLACE_BYTES = 64 << 10;

/** UTF-8 needs at most 3 bytes per UTF-16 unit: a line of n units always fits in 3n + 1 bytes. */
const worstCase = (line: string) => line.length * 3 + 1;

/**
 * Every accepted line is written, or counted as dropped: "queue-full", "io-error" (the write failed; the
 * sink reopens the file and goes on after a backoff), "shutdown" (still queued when close() timed out),
 * "closed" (written after close()). close() fsyncs the file.
 */
export class FileSink extends QueuedSink {
  readonly name: string;
  private readonly o: Resolved;
  /** Queued chunks, oldest first; lines are appended to the last one. */
  private chunks: Chunk[] = [];
  /** Chunks written to their end, kept for reuse (their buffers and line ends). */
  private spare: Chunk[] = [];
  private readonly chunkBytes: number;
  /** Spare chunks kept at most: as many as the queue's byte bound fills. */
  private readonly maxSpare: number;
  private trimTimer: NodeJS.Timeout | undefined;
  private queuedLines = 0;
  private queuedBytes = 0;
  private acceptedBytes = 0;
  private inFlight = 0;
  private fh: fsp.FileHandle | undefined;
  /** Bytes in the active file. */
  private size = 0;
  /** Disk space reserved ahead of the active file's writes. */
  private readonly reserved: Reservation;
  private draining: Promise<void> | undefined;
  private scheduled = false;
  private failures = 0;
  /** reopen() was asked for: the drain loop closes the file and opens the path again before its next write. */
  private reopenWanted = false;
  private reopenDone: (() => void)[] = [];

  /** @throws InvalidArgumentError on bad options. */
  constructor(opts: FileSinkOptions, name = 'file') {
    super();
    this.name = name;
    this.o = resolveFileOptions(opts);
    // Chunks are only where lines wait: a batch is cut from them at line boundaries, across chunks.
    this.chunkBytes = CHUNK_BYTES;
    this.maxSpare = Math.max(SPARE_IDLE, Math.ceil(this.o.maxQueueBytes / CHUNK_BYTES));
    this.reserved = new Reservation(this.o.preallocateBytes, this.o.maxSizeBytes);
  }

  /** Spare chunks held now (the memory the sink keeps between bursts; tests). */
  get spareChunks(): number {
    return this.spare.length;
  }

  write(_ev: OutputEvent, line: string): void {
    this.writeLine(line);
  }

  /** Only the line is written: the pipeline need not build the event object for this sink. */
  writeLine(line: string): void {
    if (!this.admit()) return;
    const c = this.tailFor(worstCase(line));
    this.commit(c, c.buf.write(line, c.len));
  }

  /** The line as UTF-8 bytes, buf[start, end): copied into the queue as it is, nothing to encode. */
  writeBytes(buf: Uint8Array, start: number, end: number): void {
    if (!this.admit()) return;
    const n = end - start;
    const c = this.tailFor(n + 1);
    if (buf instanceof Buffer) buf.copy(c.buf, c.len, start, end);
    else c.buf.set(buf.subarray(start, end), c.len);
    this.commit(c, n);
  }

  /** Room for the next line in the tail chunk, written there in place (Sink.placeLine). */
  placeLine(w: ByteLine): void {
    const c = this.tailFor(PLACE_BYTES);
    w.into(c.buf, c.len, c.buf.length - 1); // the last byte: room for the newline
  }

  /** Queues the line placeLine's room now holds (nothing was queued in between: the pipeline is synchronous). */
  commitPlaced(n: number): void {
    if (!this.admit()) return;
    this.commit(this.chunks[this.chunks.length - 1]!, n);
  }

  /** Room for several lines in the tail chunk (Sink.placeLines). */
  placeLines(room: LineRoom): void {
    const c = this.tailFor(PLACE_BYTES);
    room.buf = c.buf;
    room.at = c.len;
    room.end = c.buf.length;
  }

  /**
   * Queues the n lines placeLines' room now holds, as commitPlaced would one by one. A line the queue
   * turns down is taken out: the lines after it move down over it.
   */
  commitLines(ends: Int32Array, n: number): void {
    const c = this.chunks[this.chunks.length - 1]!;
    if (n > 0 && this.#commitAll(c, ends, n)) return;
    let from = c.len;
    for (let i = 0; i < n; i++) {
      const end = ends[i]!;
      if (this.admit()) {
        if (from !== c.len) c.buf.copyWithin(c.len, from, end);
        this.commit(c, end - from - 1); // the bytes bound: a line over it is not committed (counted)
      }
      from = end;
    }
  }

  /**
   * commitLines when all n lines fit the queue's bounds (nearly always): what n commits would do, counted
   * once (~15 ns a line one at a time). The lines end with their newlines already (LineRoom's contract).
   */
  #commitAll(c: Chunk, ends: Int32Array, n: number): boolean {
    const bytes = ends[n - 1]! - c.len;
    if (this.closing || this.queuedLines + n > this.o.maxQueue || this.queuedBytes + bytes > this.o.maxQueueBytes) return false;
    if (c.count + n > c.ends.length) {
      const grown = new Int32Array(Math.max(c.ends.length * 2, c.count + n));
      grown.set(c.ends);
      c.ends = grown;
    }
    const to = c.ends;
    for (let i = 0, k = c.count; i < n; i++, k++) to[k] = ends[i]!;
    c.count += n;
    c.len = ends[n - 1]!;
    this.counters.received += n;
    this.queuedLines += n;
    this.queuedBytes += bytes;
    this.accepted += n;
    this.acceptedBytes += bytes;
    if (!this.scheduled && !this.draining) this.schedule();
    return true;
  }

  /**
   * Lines that fit the queue now, by count and by bytes at the mean size of the lines accepted so far, with
   * a tenth kept back for lines longer than that mean.
   */
  room(): number {
    if (this.closing) return 0;
    const mean = this.accepted > 0 ? Math.max(1, this.acceptedBytes / this.accepted) : 1024;
    const byBytes = (this.o.maxQueueBytes - this.queuedBytes) / mean;
    return Math.max(0, Math.floor(0.9 * Math.min(this.o.maxQueue - this.queuedLines, byBytes)));
  }

  /** Counts a line offered; false (counted as dropped) when it cannot be queued. */
  private admit(): boolean {
    if (!this.offer()) return false;
    if (this.queuedLines >= this.o.maxQueue) {
      this.counters.drop('queue-full');
      return false;
    }
    return true;
  }

  /**
   * Queues the n bytes just placed at the end of `c`, with their newline. Placed first, committed only now:
   * the byte bound is exact, and a rejected line is simply not committed.
   */
  private commit(c: Chunk, n: number): void {
    if (this.queuedBytes + n + 1 > this.o.maxQueueBytes) {
      this.counters.drop('queue-full');
      return;
    }
    c.buf[c.len + n] = 0x0a;
    c.len += n + 1;
    if (c.count === c.ends.length) {
      const ends = new Int32Array(c.ends.length * 2);
      ends.set(c.ends);
      c.ends = ends;
    }
    c.ends[c.count++] = c.len;
    this.queuedLines++;
    this.queuedBytes += n + 1;
    this.accepted++;
    this.acceptedBytes += n + 1;
    if (!this.scheduled && !this.draining) this.schedule();
  }

  /**
   * The drain, deferred to the next turn so everything this tick produces goes out in the same write. A
   * method of its own: a closure over `this` in commit() made V8 allocate a context on every call (~40 bytes
   * per line, bench/pipeline's sampled allocations), not only when it ran.
   */
  private schedule(): void {
    this.scheduled = true;
    setImmediate(() => this.startDrain());
  }

  /** The chunk to append a line of at most `need` bytes (newline included) to: the last one if it has room, else a fresh one. */
  private tailFor(need: number): Chunk {
    const last = this.chunks[this.chunks.length - 1];
    if (last && !last.oneOff && last.buf.length - last.len >= need) return last;
    let c = need <= this.chunkBytes ? this.spare.pop() : undefined;
    if (c) {
      c.len = c.count = c.first = c.start = 0;
    } else {
      const oneOff = need > this.chunkBytes;
      c = { buf: Buffer.allocUnsafe(oneOff ? need : this.chunkBytes), len: 0, ends: new Int32Array(oneOff ? 1 : 1024), count: 0, first: 0, start: 0, oneOff };
    }
    this.chunks.push(c);
    return c;
  }

  stats(): SinkStats {
    return this.counters.snapshot(this.queuedLines + this.inFlight);
  }

  protected startFlush(): void {
    this.startDrain();
  }

  protected closeTimeoutMs(): number {
    return this.o.closeTimeoutMs;
  }

  /** What close() gave up on counts as "shutdown"; the file is fsynced and closed. */
  protected async giveUp(): Promise<void> {
    this.counters.drop('shutdown', this.clearQueue());
    await this.draining;
    for (const r of this.reopenDone.splice(0)) r(); // a reopen the drain never reached: the sink is closed
    clearTimeout(this.trimTimer);
    this.trimTimer = undefined;
    this.spare = [];
    const fh = this.fh;
    this.fh = undefined;
    if (fh) {
      await this.reserved.release(fh, this.size);
      try {
        await fh.sync();
      } catch (err) {
        this.counters.error(err);
      }
      await fh.close().catch(() => {});
    }
  }

  /** Forgets every queued line (not the batch in flight); returns how many. */
  private clearQueue(): number {
    const n = this.queuedLines;
    for (const c of this.chunks) {
      c.first = c.count;
      c.start = c.len;
    }
    this.chunks = [];
    this.queuedLines = 0;
    this.queuedBytes = 0;
    return n;
  }

  protected watermark(): number {
    return this.accepted - this.queuedLines - this.inFlight;
  }

  /**
   * Closes the file and opens the configured path again, creating it if it was moved away (logrotate's
   * "create", or a rename by hand) and taking its size again if it was truncated ("copytruncate"). Lines in a
   * write already started end in the old file; every later line goes to the new one. Resolves once the file
   * is open again, or the attempt failed (counted as an error; the next write retries the open, after the
   * sink's usual backoff). Does nothing once the sink is closing.
   */
  reopen(): Promise<void> {
    if (this.closing) return Promise.resolve();
    this.reopenWanted = true;
    const done = new Promise<void>((r) => this.reopenDone.push(r));
    this.startDrain();
    return done;
  }

  private async reopenFile(): Promise<void> {
    this.reopenWanted = false;
    const waiting = this.reopenDone.splice(0);
    try {
      const fh = this.fh;
      this.fh = undefined;
      if (fh) {
        await this.reserved.release(fh, this.size);
        await fh.datasync().catch(() => {});
        await fh.close().catch(() => {});
      }
      await this.open();
    } catch (err) {
      // Counted before the callers hear of it; the next write opens again (with the drain's backoff).
      this.counters.error(err);
      this.fh = undefined;
    } finally {
      for (const r of waiting) r();
    }
  }

  private startDrain(): void {
    this.scheduled = false;
    if (this.gate || this.draining || (this.queuedLines === 0 && !this.reopenWanted)) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      this.waiters.notify(this.watermark());
      if ((this.queuedLines > 0 || this.reopenWanted) && !this.abort.signal.aborted) this.startDrain();
    });
  }

  private async drain(): Promise<void> {
    while ((this.queuedLines > 0 || this.reopenWanted) && !this.abort.signal.aborted) {
      try {
        if (this.reopenWanted) await this.reopenFile();
        if (this.queuedLines > 0) await this.writeBatch();
        this.failures = 0;
      } catch (err) {
        this.counters.error(err);
        if (this.fh) await this.reserved.release(this.fh, this.size);
        await this.fh?.close().catch(() => {});
        this.fh = undefined;
        // Back off so a full disk does not turn into a busy loop; meanwhile the queue bound applies.
        await sleep(backoffDelay(this.failures++, { initialMs: 50, maxMs: 5000 }), this.abort.signal);
      } finally {
        this.waiters.notify(this.watermark());
      }
    }
  }

  /**
   * Writes one batch: rotates first when the next line does not fit the file, then takes lines, across
   * chunks, up to the file's and the batch's bounds, and writes them with one writev.
   */
  private async writeBatch(): Promise<void> {
    if (!this.fh) await this.open();
    const head = this.head();
    if (!head) return;
    const max = this.o.maxSizeBytes;
    if (this.size > 0 && this.size + head.ends[head.first]! - head.start > max) await this.rotate();
    if (this.head() !== head) return; // cleared meanwhile (close)
    // A line larger than maxSizeBytes goes alone into an empty file; otherwise a file never passes max.
    const parts: Buffer[] = [];
    const touched: Chunk[] = [];
    let bytes = 0;
    let lines = 0;
    let full = false;
    for (const c of this.chunks) {
      let i = c.first;
      let end = c.start;
      while (i < c.count) {
        const n = c.ends[i]! - end;
        if (lines > 0 && (this.size + bytes + n > max || bytes + n > this.o.maxBatchBytes)) {
          full = true;
          break;
        }
        bytes += n;
        end += n;
        i++;
        lines++;
      }
      if (end > c.start) {
        parts.push(c.buf.subarray(c.start, end));
        touched.push(c);
        c.first = i;
        c.start = end;
      }
      if (full) break;
    }
    this.queuedLines -= lines;
    this.queuedBytes -= bytes;
    this.inFlight = lines;
    try {
      await this.reserved.ahead(this.fh!, this.size, bytes);
      await this.writeAll(parts);
      this.size += bytes;
      this.counters.sent += lines;
    } catch (err) {
      this.counters.drop('io-error', lines);
      throw err;
    } finally {
      this.inFlight = 0;
      for (const c of touched) this.release(c);
    }
  }

  /** Writes every byte of `parts`, in order, however the kernel splits the writes. */
  private async writeAll(parts: Buffer[]): Promise<void> {
    let left = parts;
    while (left.length > 0) {
      const n = left.length > 1 ? (await this.fh!.writev(left)).bytesWritten : (await this.fh!.write(left[0]!)).bytesWritten;
      left = afterWritten(left, n);
    }
  }

  /** The oldest chunk with lines to write, after dropping chunks left empty in front of it. */
  private head(): Chunk | undefined {
    for (;;) {
      const c = this.chunks[0];
      if (!c || c.first < c.count) return c;
      if (this.chunks.length === 1) return undefined;
      this.chunks.shift();
      this.keep(c);
    }
  }

  /** A chunk written to its end is reused: emptied when it is the last, else dequeued and kept as spare. */
  private release(c: Chunk): void {
    if (c.first < c.count) return;
    const last = this.chunks[this.chunks.length - 1];
    if (c === last && !c.oneOff) {
      c.len = 0;
      c.start = 0;
      c.first = 0;
      c.count = 0;
      return;
    }
    const i = this.chunks.indexOf(c);
    if (i >= 0) this.chunks.splice(i, 1);
    this.keep(c);
  }

  /** A chunk out of the queue: kept as spare (see SPARE_TRIM_MS), unless made for one oversized line. */
  private keep(c: Chunk): void {
    if (c.oneOff || this.closing || this.spare.length >= this.maxSpare) return;
    this.spare.push(c);
    if (this.spare.length > SPARE_IDLE) this.armTrim();
  }

  /**
   * Trims spare chunks to SPARE_IDLE once a whole SPARE_TRIM_MS passed without a line accepted (looked at
   * on a timer, not per line).
   */
  private armTrim(): void {
    if (this.trimTimer) return;
    let seen = this.accepted;
    const check = (): void => {
      if (this.accepted !== seen) {
        seen = this.accepted;
        this.trimTimer = setTimeout(check, SPARE_TRIM_MS).unref();
        return;
      }
      this.trimTimer = undefined;
      this.spare.length = Math.min(this.spare.length, SPARE_IDLE);
    };
    this.trimTimer = setTimeout(check, SPARE_TRIM_MS).unref();
  }

  private async open(): Promise<void> {
    await fsp.mkdir(path.dirname(this.o.path), { recursive: true });
    this.fh = await fsp.open(this.o.path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, this.o.mode);
    this.size = (await this.fh.stat()).size;
    this.reserved.reset();
  }

  /** events.jsonl.(n-1) → .n, ..., events.jsonl → .1, then a fresh events.jsonl. */
  private async rotate(): Promise<void> {
    const fh = this.fh!;
    this.fh = undefined;
    await this.reserved.release(fh, this.size);
    await fh.datasync().catch(() => {});
    await fh.close();
    const p = this.o.path;
    const name = (i: number): string => (i === 0 ? p : `${p}.${i}`);
    const keep = this.o.maxFiles - 1; // rotated files kept
    if (keep === 0) {
      await fsp.rm(p, { force: true });
    } else {
      await fsp.rm(name(keep), { force: true });
      for (let i = keep - 1; i >= 0; i--) {
        try {
          await fsp.rename(name(i), name(i + 1));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    }
    await this.open();
  }
}
