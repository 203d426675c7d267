// Stdout sink: on a terminal one readable, coloured line per event; when piped, the JSON line as is. Written
// with fs.write on libuv's thread pool, not process.stdout (Node writes terminals and files synchronously: a
// paused terminal would stall the agent); a reader that is too slow costs counted drops, never memory.
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import tty from 'node:tty';
import type { Writable } from 'node:stream';
import type { OutputEvent, SinkStats } from '../pipeline/types.ts';
import { bool, int, invalid, object, oneOf, type Raw } from './options.ts';
import { afterWritten, QueuedSink, Ring } from './queue.ts';
import { sleep } from './retry.ts';
import { formatText } from './text-format.ts';

export interface StdoutSinkOptions {
  /** "auto": text on a terminal, JSON Lines otherwise. Default "auto". */
  format?: 'auto' | 'text' | 'json';
  /** Colours in text format. Default: on a terminal unless NO_COLOR is set. */
  color?: boolean;
  /** File descriptor to write to. Default 1. */
  fd?: number;
  /** A stream instead of a file descriptor (embedding, tests); its write() return value is honoured. */
  stream?: Writable;
  /** Queue bound in events (queued + being written). Default 50000. */
  maxQueue?: number;
  /** Queue bound in bytes (of the JSON lines). Default 32 MiB. */
  maxQueueBytes?: number;
  /** Upper bound of one write. Default 256 KiB. */
  maxBatchBytes?: number;
  /** close() waits this long for the queue before dropping the rest as "shutdown". Default 2000. */
  closeTimeoutMs?: number;
}

interface Resolved {
  text: boolean;
  color: boolean;
  fd: number;
  stream: Writable | undefined;
  maxQueue: number;
  maxQueueBytes: number;
  maxBatchBytes: number;
  closeTimeoutMs: number;
}

const KEYS = ['enabled', 'format', 'color', 'fd', 'stream', 'maxQueue', 'maxQueueBytes', 'maxBatchBytes', 'closeTimeoutMs'] as const;

/**
 * Validates stdout options and decides text vs JSON (by whether the destination is a terminal).
 * @throws InvalidArgumentError naming the bad field.
 */
export function resolveStdoutOptions(raw: unknown, p = 'sinks.stdout'): Resolved {
  const o: Raw = object(raw, p, KEYS);
  const fd = int(o, 'fd', p, 1, 0);
  const stream = o.stream as Writable | undefined;
  if (stream !== undefined && (typeof stream !== 'object' || typeof (stream as { write?: unknown }).write !== 'function')) {
    invalid(`${p}.stream`, 'must be a writable stream');
  }
  const isTty = stream ? (stream as { isTTY?: boolean }).isTTY === true : tty.isatty(fd);
  const format = oneOf(o, 'format', p, ['auto', 'text', 'json'] as const, 'auto');
  const text = format === 'text' || (format === 'auto' && isTty);
  return {
    text,
    color: bool(o, 'color', p, isTty && !process.env.NO_COLOR),
    fd,
    stream,
    maxQueue: int(o, 'maxQueue', p, 50_000, 1),
    maxQueueBytes: int(o, 'maxQueueBytes', p, 32 << 20, 1),
    maxBatchBytes: int(o, 'maxBatchBytes', p, 256 << 10, 1),
    closeTimeoutMs: int(o, 'closeTimeoutMs', p, 2000, 0),
  };
}

/**
 * Every accepted event is written or counted as dropped: "queue-full" (the reader is too slow),
 * "io-error" (the write failed, e.g. EPIPE when the reader went away; later events are dropped the same way
 * at once), "shutdown", "closed".
 */
export class StdoutSink extends QueuedSink {
  readonly name: string;
  /** True when events are printed as text rather than JSON Lines. */
  readonly text: boolean;
  private readonly o: Resolved;
  // JSON mode queues the line (a string, or its bytes with the newline); text mode queues the event and
  // formats it only when it is written, so events dropped under overload are never formatted.
  private readonly ring: Ring<string | OutputEvent | Buffer>;
  /**
   * JSON mode only (text mode formats the event object): lines without their object, as strings or bytes,
   * so that with the other sinks taking the same the pipeline need not build event objects or strings.
   */
  readonly writeLine?: (line: string) => void;
  readonly writeBytes?: (buf: Uint8Array, start: number, end: number) => void;
  private inFlight = 0;
  private draining: Promise<void> | undefined;
  private scheduled = false;
  /** Set after a write error the sink cannot recover from (EPIPE, EBADF): later events drop at once. */
  private broken = false;

  /** @throws InvalidArgumentError on bad options. */
  constructor(opts: StdoutSinkOptions = {}, name = 'stdout') {
    super();
    this.name = name;
    this.o = resolveStdoutOptions(opts);
    this.text = this.o.text;
    this.ring = new Ring(this.o.maxQueue, this.o.maxQueueBytes);
    if (!this.text) {
      this.writeLine = (line) => this.enqueue(line, line.length + 1);
      this.writeBytes = (buf, start, end) => {
        const b = Buffer.allocUnsafe(end - start + 1); // from Buffer's pool: most lines are well under its 4 KiB
        b.set(buf.subarray(start, end));
        b[end - start] = 0x0a;
        this.enqueue(b, b.length);
      };
    }
  }

  write(ev: OutputEvent, line: string): void {
    this.enqueue(this.o.text ? ev : line, line.length + 1);
  }

  private enqueue(item: string | OutputEvent | Buffer, size: number): void {
    if (!this.offer()) return;
    if (this.broken) {
      this.counters.drop('io-error');
      return;
    }
    if (this.ring.length + this.inFlight >= this.o.maxQueue || !this.ring.push(item, size)) {
      this.counters.drop('queue-full');
      return;
    }
    this.accepted++;
    if (!this.scheduled && !this.draining) {
      this.scheduled = true;
      setImmediate(() => this.startDrain());
    }
  }

  stats(): SinkStats {
    return this.counters.snapshot(this.ring.length + this.inFlight);
  }

  protected startFlush(): void {
    this.startDrain();
  }

  protected closeTimeoutMs(): number {
    return this.o.closeTimeoutMs;
  }

  /** Never closes the file descriptor: it is the process's stdout. */
  protected async giveUp(): Promise<void> {
    this.counters.drop('shutdown', this.ring.clear());
    await this.draining;
  }

  protected watermark(): number {
    return this.accepted - this.ring.length - this.inFlight;
  }

  private startDrain(): void {
    this.scheduled = false;
    if (this.gate || this.draining || this.ring.length === 0) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      this.waiters.notify(this.watermark());
      if (this.ring.length > 0 && !this.abort.signal.aborted) this.startDrain();
    });
  }

  private async drain(): Promise<void> {
    while (this.ring.length > 0 && !this.abort.signal.aborted && !this.broken) {
      let chunk = '';
      const parts: Buffer[] = []; // lines given as bytes, and the strings before them, encoded
      let size = 0;
      let n = 0;
      while (this.ring.length > 0 && (n === 0 || size + this.ring.peekSize() <= this.o.maxBatchBytes)) {
        const item = this.ring.shift()!;
        n++;
        if (Buffer.isBuffer(item)) {
          if (chunk) parts.push(Buffer.from(chunk));
          chunk = '';
          parts.push(item);
          size += item.length;
          continue;
        }
        let s: string;
        try {
          s = typeof item === 'string' ? item : formatText(item, this.o.color);
        } catch {
          s = typeof item === 'string' ? item : JSON.stringify({ type: item.type, time: item.time });
        }
        chunk += `${s}\n`;
        size += s.length + 1;
      }
      if (chunk) parts.push(Buffer.from(chunk));
      this.inFlight = n;
      try {
        await this.writeAll(parts);
        this.counters.sent += n;
      } catch (err) {
        this.counters.drop('io-error', n);
        this.counters.error(err);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE' || code === 'EBADF' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_WRITE_AFTER_END') {
          this.broken = true;
          this.counters.drop('io-error', this.ring.clear());
        }
      } finally {
        this.inFlight = 0;
        this.waiters.notify(this.watermark());
      }
    }
  }

  /**
   * Writes `parts` in order: to a descriptor with writev (lines given as bytes are written from their own
   * buffers; concatenated first, each was copied twice and every batch made a new 256 KiB buffer), to a
   * stream as one buffer.
   */
  private async writeAll(parts: Buffer[]): Promise<void> {
    const stream = this.o.stream;
    if (stream) {
      const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      await new Promise<void>((resolve, reject) => {
        const ok = stream.write(buf, (err) => (err ? reject(err) : ok ? resolve() : undefined));
        // write() returned false: the chunk is buffered but the stream is over its high-water mark; the
        // next chunk waits for 'drain' so the stream's own buffer stays bounded too.
        if (!ok) {
          const onDrain = (): void => {
            stream.off('error', onError);
            resolve();
          };
          const onError = (err: Error): void => {
            stream.off('drain', onDrain);
            reject(err);
          };
          stream.once('drain', onDrain);
          stream.once('error', onError);
        }
      });
      return;
    }
    let left = parts;
    let again = 0;
    while (left.length > 0) {
      try {
        const written = await new Promise<number>((resolve, reject) => {
          const cb = (err: NodeJS.ErrnoException | null, n: number) => (err ? reject(err) : resolve(n));
          if (left.length === 1) fs.write(this.o.fd, left[0]!, 0, left[0]!.length, null, cb);
          else fs.writev(this.o.fd, left.slice(0, IOV_MAX), null, cb);
        });
        // A write of nothing (not seen from pipes, terminals or files) is retried like EAGAIN, not looped on.
        if (written === 0) throw Object.assign(new Error('write wrote nothing'), { code: 'EAGAIN' });
        left = afterWritten(left, written);
        again = 0;
      } catch (err) {
        // EAGAIN: someone (process.stdout on a pipe) made the descriptor non-blocking; wait and retry.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        this.counters.retries++;
        if (!(await sleep(Math.min(100, 1 << again++), this.abort.signal))) throw err;
      }
    }
  }
}

/** Buffers per writev: Linux's IOV_MAX. */
const IOV_MAX = 1024;
