// The pieces every sink shares: a bounded FIFO ring that write() pushes into in O(1) without allocating,
// the counters behind SinkStats (received = sent + dropped + queued, exactly), flush waiters that resolve
// once every event accepted before flush() was called has settled (sent or dropped), and QueuedSink, the
// flush and close every sink runs on them.
import type { OutputEvent, Sink, SinkStats } from '../pipeline/types.ts';

/**
 * Bounded FIFO of items with a byte estimate each. Bounded twice, by count and by bytes, so a burst of huge
 * events cannot grow memory past the byte bound even when the count bound is generous. The backing array
 * grows by doubling up to `capacity`, so an idle sink with a large bound costs nothing.
 */
export class Ring<T> {
  readonly capacity: number;
  readonly maxBytes: number;
  private items: (T | undefined)[];
  private sizes: Float64Array;
  private head = 0;
  private len = 0;
  private totalBytes = 0;

  constructor(capacity: number, maxBytes: number) {
    this.capacity = capacity;
    this.maxBytes = maxBytes;
    const initial = Math.min(capacity, 1024);
    this.items = new Array<T | undefined>(initial);
    this.sizes = new Float64Array(initial);
  }

  get length(): number {
    return this.len;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Adds an item; false (and nothing changes) when it would exceed either bound. */
  push(item: T, size: number): boolean {
    if (this.len >= this.capacity || this.totalBytes + size > this.maxBytes) return false;
    if (this.len === this.items.length) this.grow();
    const slots = this.items.length;
    const i = (this.head + this.len) % slots;
    this.items[i] = item;
    this.sizes[i] = size;
    this.len++;
    this.totalBytes += size;
    return true;
  }

  /** The oldest item, without removing it. */
  peek(): T | undefined {
    return this.len === 0 ? undefined : this.items[this.head];
  }

  /** Size estimate of the oldest item (0 when empty). */
  peekSize(): number {
    return this.len === 0 ? 0 : this.sizes[this.head]!;
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.len === 0) return undefined;
    const i = this.head;
    const item = this.items[i];
    this.items[i] = undefined; // let the GC have it
    this.totalBytes -= this.sizes[i]!;
    this.head = (i + 1) % this.items.length;
    this.len--;
    if (this.len === 0) {
      this.head = 0;
      this.totalBytes = 0; // no float drift
    }
    return item;
  }

  /** Removes everything; returns how many items were removed. */
  clear(): number {
    const n = this.len;
    this.items.fill(undefined);
    this.head = 0;
    this.len = 0;
    this.totalBytes = 0;
    return n;
  }

  private grow(): void {
    const slots = this.items.length;
    const next = Math.min(this.capacity, Math.max(16, slots * 2));
    const items = new Array<T | undefined>(next);
    const sizes = new Float64Array(next);
    for (let k = 0; k < this.len; k++) {
      const j = (this.head + k) % slots;
      items[k] = this.items[j];
      sizes[k] = this.sizes[j]!;
    }
    this.items = items;
    this.sizes = sizes;
    this.head = 0;
  }
}

/** The counters behind SinkStats. `queued` is computed by each sink, so it can never drift from its queue. */
export class Counters {
  received = 0;
  sent = 0;
  retries = 0;
  dropped: Record<string, number> = {};
  lastError: string | undefined;

  drop(reason: string, n = 1): void {
    if (n <= 0) return;
    this.dropped[reason] = (this.dropped[reason] ?? 0) + n;
  }

  totalDropped(): number {
    let n = 0;
    for (const k in this.dropped) n += this.dropped[k]!;
    return n;
  }

  error(err: unknown): void {
    this.lastError = describeError(err);
  }

  snapshot(queued: number): SinkStats {
    const s: SinkStats = { received: this.received, sent: this.sent, dropped: { ...this.dropped }, queued, retries: this.retries };
    if (this.lastError !== undefined) s.lastError = this.lastError;
    return s;
  }
}

/** A one-line description of an error and its cause chain, for SinkStats.lastError. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let msg = err.message || err.name;
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error && cause.message && !msg.includes(cause.message)) msg += `: ${cause.message}`;
  const code = (err as { code?: unknown }).code ?? (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && !msg.includes(code)) msg += ` (${code})`;
  return msg;
}

/**
 * What is left of `parts` once their first `n` bytes are written (a write or writev that the kernel cut
 * short): whole buffers dropped, a partly written one cut where the write stopped.
 */
export function afterWritten(parts: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < parts.length && n >= parts[i]!.length) n -= parts[i++]!.length;
  if (i === parts.length) return [];
  const rest = parts.slice(i);
  if (n > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

interface Waiter {
  target: number;
  resolve: () => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Flush waiters. Every accepted event has a sequence number (its acceptance index); a sink reports its
 * watermark, the sequence number of the oldest event not yet settled. flush() waits until the watermark
 * passes the number of events accepted when it was called, so events written during the flush cannot keep
 * it waiting forever.
 */
export class FlushWaiters {
  private waiters: Waiter[] = [];

  get size(): number {
    return this.waiters.length;
  }

  /** Resolves when `notify(w)` is called with w >= target, or after timeoutMs (if given). */
  wait(target: number, watermark: number, timeoutMs?: number): Promise<void> {
    if (watermark >= target) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const w: Waiter = { target, resolve, timer: undefined };
      if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
        w.timer = setTimeout(() => this.release(w), Math.max(0, timeoutMs));
      }
      this.waiters.push(w);
    });
  }

  notify(watermark: number): void {
    if (this.waiters.length === 0) return;
    for (const w of [...this.waiters]) if (watermark >= w.target) this.release(w);
  }

  /** Resolves every waiter (on close). */
  releaseAll(): void {
    for (const w of [...this.waiters]) this.release(w);
  }

  private release(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i < 0) return;
    this.waiters.splice(i, 1);
    if (w.timer) clearTimeout(w.timer);
    w.resolve();
  }
}

/**
 * What every queued sink does alike: counts (Counters), flush waiters on the acceptance sequence, and close:
 * stop accepting, wait up to the close timeout for the queue to settle, give up the rest as "shutdown", then
 * release the waiters. A sink says how to send what it has queued (startFlush), where its settled prefix
 * ends (watermark), and how to give up and let go of its resources (giveUp); the order of close is here once.
 */
export abstract class QueuedSink implements Sink {
  abstract readonly name: string;
  protected readonly counters = new Counters();
  protected readonly waiters = new FlushWaiters();
  /** Aborted once close() stops waiting: cuts backoff sleeps, requests and connection attempts short. */
  protected readonly abort = new AbortController();
  /** Events accepted so far: the sequence number the next one gets. */
  protected accepted = 0;
  /** close() was called: nothing more is accepted (counted as dropped, "closed"). */
  protected closing = false;
  #closed: Promise<void> | undefined;
  /**
   * Set by startAfter() until the sink this one replaces has closed. A sink writing where a predecessor may
   * still be writing (a file's path, a descriptor) sends nothing while it is set; events queue meanwhile,
   * within the usual bounds.
   */
  protected gate: Promise<void> | undefined;

  abstract write(ev: OutputEvent, line: string): void;
  abstract stats(): SinkStats;

  /** Starts sending everything queued now, up to sequence `target` (flush() then waits for it to settle). */
  protected abstract startFlush(target: number): void;
  /** Sequence number of the oldest event not settled yet (sent or dropped). */
  protected abstract watermark(): number;
  /** How long close() waits for the queue, ms. */
  protected abstract closeTimeoutMs(): number;
  /**
   * Called by close() once it stopped waiting and `abort` fired: count what is still queued or in flight as
   * dropped ("shutdown"), wait for the sink's own loops to end, and release its files, workers or connections.
   */
  protected abstract giveUp(): Promise<void>;

  /**
   * Counts an event offered to write(); false, counted as dropped ("closed"), once close() was called. The
   * other half of close(): every sink's write() starts here.
   */
  protected offer(): boolean {
    this.counters.received++;
    if (!this.closing) return true;
    this.counters.drop('closed');
    return false;
  }

  /**
   * Holds sending until `done` settles: a reload replaced a sink writing to the same place with this one, and
   * the old one's last lines must be out first. What is queued meanwhile is sent then.
   */
  startAfter(done: Promise<void>): void {
    const gate = done.then(
      () => {},
      () => {},
    );
    this.gate = gate;
    void gate.then(() => {
      if (this.gate !== gate) return;
      this.gate = undefined;
      this.startFlush(this.accepted);
    });
  }

  /** Resolves once every event accepted before the call has settled, or after timeoutMs. */
  async flush(timeoutMs?: number): Promise<void> {
    const target = this.accepted;
    this.startFlush(target);
    await this.waiters.wait(target, this.watermark(), timeoutMs);
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.closing = true;
    await this.flush(this.closeTimeoutMs());
    this.abort.abort();
    await this.giveUp();
    this.waiters.releaseAll();
  }
}
