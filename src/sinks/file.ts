// File sink: JSON Lines appended to a file, rotated by size (events.jsonl → events.jsonl.1 → ...). write() only
// queues the line; one async loop writes all that is queued as one chunk: one syscall per batch, on libuv's
// thread pool, never the event loop; a slow disk shows up as counted queue-full drops, not memory growth.
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { OutputEvent, Sink, SinkStats } from '../pipeline/types.ts';
import { int, object, string } from './options.ts';
import { Counters, FlushWaiters, Ring } from './queue.ts';
import { backoffDelay, sleep } from './retry.ts';

export interface FileSinkOptions {
  path: string;
  /** A file never grows past this, except for a single line larger than it (written alone). Default 100 MiB. */
  maxSizeBytes?: number;
  /** Files kept, the active one included: 3 keeps events.jsonl, .1 and .2. Default 5. */
  maxFiles?: number;
  /** Queue bound, in lines (queued + being written). Default 100000. */
  maxQueue?: number;
  /** Queue bound, in bytes. Default 64 MiB. */
  maxQueueBytes?: number;
  /** Upper bound of one write, in bytes. Default 1 MiB. */
  maxBatchBytes?: number;
  /** close() waits this long for the queue before dropping the rest as "shutdown". Default 5000. */
  closeTimeoutMs?: number;
  /** File mode of new files. Default 0o640: events carry command lines, which are not for every user. */
  mode?: number;
}

type Resolved = Required<FileSinkOptions>;

const KEYS = ['path', 'maxSizeBytes', 'maxFiles', 'maxQueue', 'maxQueueBytes', 'maxBatchBytes', 'closeTimeoutMs', 'mode'] as const;

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
    maxBatchBytes: int(o, 'maxBatchBytes', p, 1 << 20, 1),
    closeTimeoutMs: int(o, 'closeTimeoutMs', p, 5000, 0),
    mode: int(o, 'mode', p, 0o640, 0, 0o777),
  };
}

/**
 * Every accepted line is written, or counted as dropped: "queue-full", "io-error" (the write failed; the
 * sink reopens the file and goes on after a backoff), "shutdown" (still queued when close() timed out),
 * "closed" (written after close()). close() fsyncs the file.
 */
export class FileSink implements Sink {
  readonly name: string;
  private readonly o: Resolved;
  private readonly counters = new Counters();
  private readonly ring: Ring<string>;
  private readonly waiters = new FlushWaiters();
  private accepted = 0;
  private inFlight = 0;
  private fh: fsp.FileHandle | undefined;
  /** Bytes in the active file. */
  private size = 0;
  private draining: Promise<void> | undefined;
  private scheduled = false;
  private failures = 0;
  private closing = false;
  private closed: Promise<void> | undefined;
  private readonly abort = new AbortController();

  /** @throws InvalidArgumentError on bad options. */
  constructor(opts: FileSinkOptions, name = 'file') {
    this.name = name;
    this.o = resolveFileOptions(opts);
    this.ring = new Ring<string>(this.o.maxQueue, this.o.maxQueueBytes);
  }

  write(_ev: OutputEvent, line: string): void {
    this.counters.received++;
    if (this.closing) {
      this.counters.drop('closed');
      return;
    }
    if (this.ring.length + this.inFlight >= this.o.maxQueue || !this.ring.push(line, line.length + 1)) {
      this.counters.drop('queue-full');
      return;
    }
    this.accepted++;
    if (!this.scheduled && !this.draining) {
      this.scheduled = true;
      // Deferred to the next turn so everything this tick produces goes out in the same write.
      setImmediate(() => this.startDrain());
    }
  }

  stats(): SinkStats {
    return this.counters.snapshot(this.ring.length + this.inFlight);
  }

  async flush(timeoutMs?: number): Promise<void> {
    const target = this.accepted;
    this.startDrain();
    await this.waiters.wait(target, this.watermark(), timeoutMs);
  }

  close(): Promise<void> {
    this.closed ??= this.doClose();
    return this.closed;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    await this.flush(this.o.closeTimeoutMs);
    this.abort.abort(); // cuts an error backoff short
    this.counters.drop('shutdown', this.ring.clear());
    await this.draining;
    const fh = this.fh;
    this.fh = undefined;
    if (fh) {
      try {
        await fh.sync();
      } catch (err) {
        this.counters.error(err);
      }
      await fh.close().catch(() => {});
    }
    this.waiters.releaseAll();
  }

  private watermark(): number {
    return this.accepted - this.ring.length - this.inFlight;
  }

  private startDrain(): void {
    this.scheduled = false;
    if (this.draining || this.ring.length === 0) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      this.waiters.notify(this.watermark());
      if (this.ring.length > 0 && !this.abort.signal.aborted) this.startDrain();
    });
  }

  private async drain(): Promise<void> {
    while (this.ring.length > 0 && !this.abort.signal.aborted) {
      try {
        await this.writeBatch();
        this.failures = 0;
      } catch (err) {
        this.counters.error(err);
        await this.fh?.close().catch(() => {});
        this.fh = undefined;
        // Back off so a full disk does not turn into a busy loop; meanwhile the queue bound applies.
        await sleep(backoffDelay(this.failures++, { initialMs: 50, maxMs: 5000 }), this.abort.signal);
      } finally {
        this.waiters.notify(this.watermark());
      }
    }
  }

  /** Writes one chunk: rotates first when the next line does not fit, then takes lines up to the boundary. */
  private async writeBatch(): Promise<void> {
    if (!this.fh) await this.open();
    const max = this.o.maxSizeBytes;
    const firstLen = Buffer.byteLength(this.ring.peek()!) + 1;
    if (this.size > 0 && this.size + firstLen > max) await this.rotate();
    const lines: string[] = [];
    let bytes = 0;
    let nextLen = firstLen;
    // A line larger than maxSizeBytes goes alone into an empty file; otherwise a file never passes max.
    while (this.ring.length > 0) {
      if (lines.length > 0) nextLen = Buffer.byteLength(this.ring.peek()!) + 1;
      const fits = this.size + bytes + nextLen <= max || (this.size === 0 && lines.length === 0);
      if (!fits || (lines.length > 0 && bytes + nextLen > this.o.maxBatchBytes)) break;
      lines.push(this.ring.shift()!);
      bytes += nextLen;
    }
    this.inFlight = lines.length;
    const buf = Buffer.from(`${lines.join('\n')}\n`);
    try {
      let off = 0;
      while (off < buf.length) {
        const { bytesWritten } = await this.fh!.write(buf, off, buf.length - off);
        off += bytesWritten;
      }
      this.size += buf.length;
      this.counters.sent += lines.length;
    } catch (err) {
      this.counters.drop('io-error', lines.length);
      throw err;
    } finally {
      this.inFlight = 0;
    }
  }

  private async open(): Promise<void> {
    await fsp.mkdir(path.dirname(this.o.path), { recursive: true });
    this.fh = await fsp.open(this.o.path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, this.o.mode);
    this.size = (await this.fh.stat()).size;
  }

  /** events.jsonl.(n-1) → .n, ..., events.jsonl → .1, then a fresh events.jsonl. */
  private async rotate(): Promise<void> {
    const fh = this.fh!;
    this.fh = undefined;
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
