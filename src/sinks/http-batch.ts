// The delivery engine of the HTTP sinks (webhook, OTLP): a bounded queue filled by write(), drained into
// batches (by count, bytes or age) that are POSTed with fetch, retried with backoff on network errors, 408,
// 429 and 5xx (Retry-After honoured), and dropped with a counted reason on any other answer.
import type { OutputEvent, SinkStats } from '../pipeline/types.ts';
import { describeError, QueuedSink, Ring } from './queue.ts';
import { headers, httpUrl, int, intOrInfinity, invalid, type Raw } from './options.ts';
import { backoffDelay, parseRetryAfter, sleep, type BackoffOptions } from './retry.ts';

export interface HttpBatchOptions {
  url: string;
  /** Extra request headers (authorization, tenant...). */
  headers: Record<string, string>;
  /** Per-request timeout (connect + answer + body), ms. */
  timeoutMs: number;
  /** Events per request. */
  maxBatch: number;
  /** Upper bound of a request body estimate (sum of event JSON lengths), bytes. */
  maxBatchBytes: number;
  /** A queued event waits at most this long (ms) before its batch is sent, even when the batch is not full. */
  maxBatchAgeMs: number;
  /** Queue bound, in events (queued + in flight). */
  maxQueue: number;
  /** Queue bound, in bytes of event JSON. */
  maxQueueBytes: number;
  /** Retries per batch before it is dropped as "retries-exhausted". */
  maxRetries: number;
  backoff: BackoffOptions;
  /** Retry-After values above this are clamped to it (a misbehaving server cannot park the sink for hours). */
  maxRetryAfterMs: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** close() waits this long for queued events before dropping them as "shutdown". */
  closeTimeoutMs: number;
}

/** What one sink kind contributes: what to queue per event, and how a batch becomes a request body. */
export interface HttpCodec<T> {
  contentType: string;
  /** Called in write(): keep it to a few property reads. */
  item(ev: OutputEvent, line: string): T;
  /** Byte estimate of an item, for the queue and batch bounds. */
  size(item: T): number;
  /** Builds the request body of a batch (runs off the hot path, once per batch, not per retry). */
  encode(items: T[]): string;
  /**
   * Of n events in a 2xx-answered batch, how many the receiver says it rejected (OTLP partial success).
   * Returns 0 when it accepted all.
   */
  rejected?(body: string, n: number): number;
}

type Outcome =
  | { kind: 'ok'; rejected: number }
  | { kind: 'retry'; error: string; retryAfterMs: number | undefined }
  | { kind: 'drop'; reason: string; error: string }
  | { kind: 'closed' };

interface Batch<T> {
  firstSeq: number;
  items: T[];
}

export class HttpBatchSink<T> extends QueuedSink {
  readonly name: string;
  private readonly opts: HttpBatchOptions;
  private readonly codec: HttpCodec<T>;
  private readonly ring: Ring<T>;
  /** Where errors point: origin and path only, never credentials or query strings. */
  private readonly where: string;
  private inFlight = new Set<Batch<T>>();
  private inFlightEvents = 0;
  /** Events with a sequence number below this are due now (flush() asked for them). */
  private forceUntil = 0;
  /** When the oldest queued event was queued (ms, Date.now()), or 0 when the queue is empty. */
  private firstQueuedAt = 0;
  private kickScheduled = false;
  private ageTimer: NodeJS.Timeout | undefined;
  private lanesDone: Promise<void>[] = [];

  constructor(name: string, opts: HttpBatchOptions, codec: HttpCodec<T>) {
    super();
    this.name = name;
    this.opts = opts;
    this.codec = codec;
    this.ring = new Ring<T>(opts.maxQueue, opts.maxQueueBytes);
    const u = new URL(opts.url);
    this.where = `${u.origin}${u.pathname}`;
  }

  write(ev: OutputEvent, line: string): void {
    if (!this.offer()) return;
    let item: T;
    try {
      item = this.codec.item(ev, line);
    } catch (err) {
      // A malformed event must not take the pipeline down; it is counted like any other drop.
      this.counters.drop('encode-error');
      this.counters.error(err);
      return;
    }
    // maxQueue bounds queued + in flight, so `queued` in stats never exceeds it.
    if (this.ring.length + this.inFlightEvents >= this.opts.maxQueue || !this.ring.push(item, this.codec.size(item))) {
      this.counters.drop('queue-full');
      return;
    }
    this.accepted++;
    if (this.ring.length === 1) this.firstQueuedAt = Date.now();
    this.schedule();
  }

  stats(): SinkStats {
    return this.counters.snapshot(this.ring.length + this.inFlightEvents);
  }

  /** flush() sends everything queued now without waiting for batch age. */
  protected startFlush(target: number): void {
    if (target > this.forceUntil) this.forceUntil = target;
    this.kick();
  }

  protected closeTimeoutMs(): number {
    return this.opts.closeTimeoutMs;
  }

  /** Whatever is still queued or in flight is given up (requests and backoff sleeps were aborted): counted. */
  protected async giveUp(): Promise<void> {
    this.counters.drop('shutdown', this.ring.clear());
    if (this.ageTimer) clearTimeout(this.ageTimer);
    this.ageTimer = undefined;
    await Promise.all(this.lanesDone);
  }

  /** Sequence number of the oldest event not yet settled. */
  protected watermark(): number {
    let w = this.accepted - this.ring.length;
    for (const b of this.inFlight) if (b.firstSeq < w) w = b.firstSeq;
    return w;
  }

  /** Decides when the next batch goes: now when one is full or forced, else when the oldest event ages out. */
  private schedule(): void {
    if (this.kickScheduled || this.inFlight.size >= this.opts.concurrency) return;
    if (this.due()) {
      this.kickScheduled = true;
      // setImmediate, not a direct call: write() stays O(1), and the batch collects every event the
      // current tick produces.
      setImmediate(() => {
        this.kickScheduled = false;
        this.kick();
      });
    } else if (!this.ageTimer && this.ring.length > 0) {
      const wait = Math.max(0, this.firstQueuedAt + this.opts.maxBatchAgeMs - Date.now());
      this.ageTimer = setTimeout(() => {
        this.ageTimer = undefined;
        this.kick();
      }, wait);
    }
  }

  private due(): boolean {
    const n = this.ring.length;
    if (n === 0) return false;
    if (n >= this.opts.maxBatch || this.ring.bytes >= this.opts.maxBatchBytes) return true;
    if (this.accepted - n < this.forceUntil) return true;
    return Date.now() - this.firstQueuedAt >= this.opts.maxBatchAgeMs;
  }

  private kick(): void {
    if (this.ageTimer) {
      clearTimeout(this.ageTimer);
      this.ageTimer = undefined;
    }
    while (this.inFlight.size < this.opts.concurrency && this.due() && !this.abort.signal.aborted) {
      const firstSeq = this.accepted - this.ring.length;
      const items: T[] = [];
      let bytes = 0;
      while (items.length < this.opts.maxBatch && this.ring.length > 0) {
        const size = this.ring.peekSize();
        if (items.length > 0 && bytes + size > this.opts.maxBatchBytes) break;
        items.push(this.ring.shift()!);
        bytes += size;
      }
      // Items left behind are newer than firstQueuedAt; keeping the old timestamp only makes them due sooner.
      if (this.ring.length === 0) this.firstQueuedAt = 0;
      const batch: Batch<T> = { firstSeq, items };
      this.inFlight.add(batch);
      this.inFlightEvents += items.length;
      const lane = this.deliver(batch).finally(() => {
        this.inFlight.delete(batch);
        this.inFlightEvents -= items.length;
        const i = this.lanesDone.indexOf(lane);
        if (i >= 0) this.lanesDone.splice(i, 1);
        this.waiters.notify(this.watermark());
        this.schedule();
      });
      this.lanesDone.push(lane);
    }
    if (!this.due()) this.schedule(); // arms the age timer for a partial batch
  }

  /** Delivers one batch: retries until sent, rejected, out of retries, or closed. Never throws. */
  private async deliver(batch: Batch<T>): Promise<void> {
    const n = batch.items.length;
    let body: string;
    try {
      body = this.codec.encode(batch.items);
    } catch (err) {
      this.counters.drop('encode-error', n);
      this.counters.error(err);
      return;
    }
    for (let attempt = 0; ; attempt++) {
      const out = await this.post(body, n);
      if (out.kind === 'ok') {
        this.counters.sent += n - out.rejected;
        this.counters.drop('rejected', out.rejected);
        return;
      }
      if (out.kind === 'closed') {
        this.counters.drop('shutdown', n);
        return;
      }
      if (out.kind === 'drop') {
        this.counters.drop(out.reason, n);
        this.counters.lastError = out.error;
        return;
      }
      this.counters.lastError = out.error;
      if (attempt >= this.opts.maxRetries) {
        this.counters.drop('retries-exhausted', n);
        return;
      }
      this.counters.retries++;
      const delay = out.retryAfterMs !== undefined
        ? Math.min(out.retryAfterMs, this.opts.maxRetryAfterMs)
        : backoffDelay(attempt, this.opts.backoff);
      if (!(await sleep(delay, this.abort.signal))) {
        this.counters.drop('shutdown', n);
        return;
      }
    }
  }

  private async post(body: string, n: number): Promise<Outcome> {
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.opts.timeoutMs)]);
    try {
      const res = await fetch(this.opts.url, {
        method: 'POST',
        headers: { 'content-type': this.codec.contentType, ...this.opts.headers },
        body,
        signal,
      });
      // Read the (small) answer so the connection can be reused; its content matters only for OTLP.
      const text = await res.text();
      const s = res.status;
      if (s >= 200 && s < 300) {
        let rejected = 0;
        if (this.codec.rejected) {
          try {
            rejected = Math.min(n, Math.max(0, this.codec.rejected(text, n)));
          } catch {
            rejected = 0; // an unparsable success answer is still a success
          }
        }
        return { kind: 'ok', rejected };
      }
      const error = `HTTP ${s}${res.statusText ? ` ${res.statusText}` : ''} from ${this.where}`;
      if (s === 408 || s === 429 || s >= 500) {
        return { kind: 'retry', error, retryAfterMs: parseRetryAfter(res.headers.get('retry-after')) };
      }
      return { kind: 'drop', reason: `http-${s}`, error };
    } catch (err) {
      if (this.abort.signal.aborted) return { kind: 'closed' };
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      const error = timedOut ? `no answer from ${this.where} within ${this.opts.timeoutMs} ms` : `POST ${this.where}: ${describeError(err)}`;
      return { kind: 'retry', error, retryAfterMs: undefined };
    }
  }
}

/** Option keys every HTTP sink accepts. */
export const HTTP_KEYS = [
  'url', 'headers', 'timeoutMs', 'maxBatch', 'maxBatchBytes', 'maxBatchAgeMs', 'maxQueue', 'maxQueueBytes',
  'maxRetries', 'initialBackoffMs', 'maxBackoffMs', 'maxRetryAfterMs', 'concurrency', 'closeTimeoutMs',
] as const;

/**
 * Validates the HTTP options at `path` and fills in defaults.
 * @throws InvalidArgumentError naming the bad field.
 */
export function resolveHttpOptions(o: Raw, path: string, defaults: { maxBatch: number; url?: string }): HttpBatchOptions {
  const initialMs = int(o, 'initialBackoffMs', path, 200, 1);
  const maxMs = int(o, 'maxBackoffMs', path, 30_000, 1);
  if (maxMs < initialMs) invalid(`${path}.maxBackoffMs`, `must be >= initialBackoffMs (${initialMs})`);
  return {
    url: httpUrl(o, 'url', path, defaults.url),
    headers: headers(o, 'headers', path),
    timeoutMs: int(o, 'timeoutMs', path, 10_000, 1),
    maxBatch: int(o, 'maxBatch', path, defaults.maxBatch, 1),
    maxBatchBytes: int(o, 'maxBatchBytes', path, 4 << 20, 1),
    maxBatchAgeMs: int(o, 'maxBatchAgeMs', path, 1000, 0),
    maxQueue: int(o, 'maxQueue', path, 100_000, 1),
    maxQueueBytes: int(o, 'maxQueueBytes', path, 64 << 20, 1),
    maxRetries: intOrInfinity(o, 'maxRetries', path, 8, 0),
    backoff: { initialMs, maxMs },
    maxRetryAfterMs: int(o, 'maxRetryAfterMs', path, 60_000, 0),
    concurrency: int(o, 'concurrency', path, 2, 1, 64),
    closeTimeoutMs: int(o, 'closeTimeoutMs', path, 5000, 0),
  };
}
