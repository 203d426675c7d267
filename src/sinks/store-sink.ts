// Store sink: events into the embedded SQLite store. Each event adds a few fields (from its LineMeta) to a
// flat row batch, and its line, as a string or as bytes copied into the batch's buffer; full batches go to
// the writer thread (src/store/worker.ts), which inserts each in one transaction and enforces retention
// between batches. Queries run on a separate read-only connection on the caller's thread.
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { lineMetaOf, newLineMeta, type LineMeta, type OutputEvent, type SinkStats } from '../pipeline/types.ts';
import { pushEventRow, retentionOf, Store, type EventQuery, type StoreOptions, type StoreRetention } from '../store/store.ts';
import type { FromWorker, ToWorker, WorkerConfig } from '../store/worker.ts';
import { int, object, string } from './options.ts';
import { QueuedSink } from './queue.ts';
import { backoffDelay, sleep } from './retry.ts';

export interface StoreSinkOptions {
  /** SQLite file. */
  path: string;
  /** Retention by count (0 = none). Default 1,000,000 events. */
  maxRows?: number;
  /** Retention by age, ms (0 = none). Default 7 days. */
  maxAgeMs?: number;
  /** Retention of the processes table (0 = none). Default 200,000. */
  maxProcesses?: number;
  /** How often age retention runs, ms. Default 10 s. */
  retentionIntervalMs?: number;
  /** Rows per retention delete. Default 2000. */
  retentionChunk?: number;
  /** Rows per insert transaction. Default 1000. */
  batchRows?: number;
  /** Queue bound, in events (queued + being written). Default 100,000. */
  maxQueue?: number;
  /** Queue bound, in bytes of event JSON. Default 64 MiB. */
  maxQueueBytes?: number;
  /** close() waits this long for queued events before dropping them as "shutdown". Default 10 s. */
  closeTimeoutMs?: number;
}

type Resolved = Required<StoreSinkOptions>;

const KEYS = ['enabled', 'path', 'maxRows', 'maxAgeMs', 'maxProcesses', 'retentionIntervalMs', 'retentionChunk', 'batchRows', 'maxQueue', 'maxQueueBytes', 'closeTimeoutMs'] as const;

/**
 * Validates store options; `defaultPath` is used when none is given.
 * @throws InvalidArgumentError naming the bad field.
 */
export function resolveStoreOptions(raw: unknown, p = 'sinks.store', defaultPath?: string): Resolved {
  const o = object(raw, p, KEYS);
  return {
    path: path.resolve(string(o, 'path', p, defaultPath)),
    maxRows: int(o, 'maxRows', p, 1_000_000, 0),
    maxAgeMs: int(o, 'maxAgeMs', p, 7 * 24 * 3600 * 1000, 0),
    maxProcesses: int(o, 'maxProcesses', p, 200_000, 0),
    retentionIntervalMs: int(o, 'retentionIntervalMs', p, 10_000, 10),
    retentionChunk: int(o, 'retentionChunk', p, 2000, 1),
    batchRows: int(o, 'batchRows', p, 1000, 1, 100_000),
    maxQueue: int(o, 'maxQueue', p, 100_000, 1),
    maxQueueBytes: int(o, 'maxQueueBytes', p, 64 << 20, 1),
    closeTimeoutMs: int(o, 'closeTimeoutMs', p, 10_000, 0),
  };
}

interface Pending {
  rows: unknown[];
  n: number;
  bytes: number;
  /** Lines given as bytes (writeBytes), back to back: moved to the writer with the rows. */
  data: Buffer | undefined;
  dataLen: number;
  ends: number[];
}

const emptyBatch = (): Pending => ({ rows: [], n: 0, bytes: 0, data: undefined, dataLen: 0, ends: [] });
/** A batch's first byte buffer; it doubles as lines come (a batch of 1,000 lines of ~1 KiB: 1 MiB). */
const FIRST_DATA_BYTES = 64 << 10;

/** Batches posted to the writer at once: one being inserted, one waiting, so the writer never idles. */
const MAX_IN_FLIGHT = 2;
/** Per-row overhead on top of the JSON, for the byte bound. */
const ROW_OVERHEAD = 96;

/**
 * Every accepted event is inserted or counted as dropped: "queue-full", "store-error" (the insert failed or
 * the writer thread died; the batch is lost, the sink goes on), "shutdown", "closed".
 */
export class StoreSink extends QueuedSink {
  readonly name: string;
  readonly path: string;
  private readonly o: Resolved;
  private cur: Pending = emptyBatch();
  /** write()'s LineMeta, taken from the event. */
  private readonly eventMeta = newLineMeta();
  private sealed: Pending[] = [];
  private queuedRows = 0;
  private queuedBytes = 0;
  private inFlight = new Map<number, number>();
  private inFlightRows = 0;
  private nextId = 1;
  private worker: Worker | undefined;
  private ready = false;
  private failures = 0;
  private respawning = false;
  private scheduled = false;
  private reader: Store | undefined;

  /**
   * Creates or migrates the store synchronously (so a bad path or schema fails here, before any event),
   * then starts the writer thread.
   * @throws InvalidArgumentError on bad options; StoreError when the store cannot be opened or is newer.
   */
  constructor(opts: StoreSinkOptions, name = 'store') {
    super();
    this.name = name;
    this.o = resolveStoreOptions(opts);
    this.path = this.o.path;
    Store.open(this.path, this.storeOptions()).close();
    this.reader = Store.open(this.path, { readOnly: true });
    this.spawn();
  }

  /** The read-only store (for queries while the agent writes). Closed by close(). */
  get store(): Store {
    return this.reader!;
  }

  /** Events from the store (read-only connection). @throws StoreError after close(). */
  query(q: EventQuery = {}): OutputEvent[] {
    return this.store.query(q);
  }

  write(ev: OutputEvent, line: string): void {
    this.writeLine(line, lineMetaOf(ev, this.eventMeta));
  }

  /** The row's columns come from `meta`: the pipeline need not build the event object for the store. */
  writeLine(line: string, meta: LineMeta): void {
    if (!this.admit(line.length)) return;
    pushEventRow(this.cur.rows, meta, line);
    this.queued(line.length);
  }

  /**
   * The line's bytes are copied into the batch's buffer, which moves to the writer thread with the rows;
   * the writer makes them a string. The pipeline then writes lines as bytes for the store too.
   */
  writeBytes(buf: Uint8Array, start: number, end: number, meta: LineMeta): void {
    const n = end - start;
    if (!this.admit(n)) return;
    const cur = this.cur;
    let data = cur.data;
    if (!data || cur.dataLen + n > data.length) {
      // Its own memory (not the Buffer pool's): the whole ArrayBuffer is transferred to the writer.
      const grown = Buffer.allocUnsafeSlow(Math.max(FIRST_DATA_BYTES, (data?.length ?? 0) * 2, cur.dataLen + n));
      if (data) data.copy(grown, 0, 0, cur.dataLen);
      cur.data = data = grown;
    }
    data.set(buf.subarray(start, end), cur.dataLen);
    cur.dataLen += n;
    cur.ends.push(cur.dataLen);
    pushEventRow(cur.rows, meta, null);
    this.queued(n);
  }

  /** Whether a line of `n` bytes fits the queue's bounds (else counted as dropped). */
  private admit(n: number): boolean {
    if (!this.offer()) return false;
    if (this.queuedRows + this.inFlightRows >= this.o.maxQueue || this.queuedBytes + n + ROW_OVERHEAD > this.o.maxQueueBytes) {
      this.counters.drop('queue-full');
      return false;
    }
    return true;
  }

  /** Counts a row just added to the current batch (of a line of `n` bytes), seals a full batch, schedules the post. */
  private queued(n: number): void {
    const cur = this.cur;
    const bytes = n + ROW_OVERHEAD;
    cur.n++;
    cur.bytes += bytes;
    this.queuedRows++;
    this.queuedBytes += bytes;
    this.accepted++;
    if (cur.n >= this.o.batchRows) {
      this.sealed.push(cur);
      this.cur = emptyBatch();
    }
    if (!this.scheduled) {
      this.scheduled = true;
      // Batches leave on the next turn: everything this tick produces shares one postMessage.
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    }
  }

  stats(): SinkStats {
    return this.counters.snapshot(this.queuedRows + this.inFlightRows);
  }

  protected startFlush(): void {
    this.pump();
  }

  protected closeTimeoutMs(): number {
    return this.o.closeTimeoutMs;
  }

  /** Rows not inserted count as "shutdown"; the writer thread closes the store (or is stopped, when stuck). */
  protected async giveUp(): Promise<void> {
    let left = this.queuedRows;
    this.sealed = [];
    this.cur = emptyBatch();
    this.queuedRows = 0;
    this.queuedBytes = 0;
    const w = this.worker;
    this.worker = undefined;
    if (w) {
      if (this.inFlight.size > 0) {
        // The writer is stuck (flush timed out with batches in it): stop it; those batches count as shutdown.
        left += this.inFlightRows;
        this.clearInFlight();
        await w.terminate();
      } else {
        const exited = once(w, 'exit');
        w.ref();
        w.postMessage({ op: 'close' } satisfies ToWorker);
        const t = setTimeout(() => void w.terminate(), 10_000);
        await exited;
        clearTimeout(t);
      }
    }
    this.counters.drop('shutdown', left);
    this.reader?.close();
  }

  /**
   * New retention limits (a configuration reload: sinks.store.maxRows, maxAgeMs, maxProcesses), applied by the
   * writer thread at once, and by a writer started again later.
   */
  setRetention(r: StoreRetention): void {
    const limits = retentionOf(r);
    Object.assign(this.o, limits);
    this.worker?.postMessage({ op: 'retention', ...limits } satisfies ToWorker);
  }

  private storeOptions(): StoreOptions {
    return { maxRows: this.o.maxRows, maxAgeMs: this.o.maxAgeMs, maxProcesses: this.o.maxProcesses, retentionChunk: this.o.retentionChunk };
  }

  protected watermark(): number {
    return this.accepted - this.queuedRows - this.inFlightRows;
  }

  private spawn(): void {
    // The constructor created the store; a writer that finds it gone reports that instead of recreating it.
    const cfg: WorkerConfig = { path: this.path, store: { ...this.storeOptions(), mustExist: true }, retentionIntervalMs: this.o.retentionIntervalMs };
    const w = new Worker(new URL('../store/worker.ts', import.meta.url), { workerData: cfg, name: `vigil-store ${this.name}` });
    this.worker = w;
    this.ready = false;
    // Idle, the writer must not keep the process alive; it is ref'd while batches are in it.
    w.unref();
    w.on('message', (m: FromWorker) => this.onMessage(w, m));
    w.on('error', (err) => this.onDeath(w, err.message));
    w.on('exit', (code) => this.onDeath(w, `writer thread exited with code ${code}`));
  }

  private onMessage(w: Worker, m: FromWorker): void {
    if (w !== this.worker) return;
    switch (m.op) {
      case 'ready':
        this.ready = true;
        this.failures = 0;
        this.pump();
        return;
      case 'fatal':
        this.counters.lastError = m.error;
        return; // the worker exits next; onDeath respawns it
      case 'warn':
        this.counters.lastError = m.error;
        return;
      case 'done': {
        const n = this.inFlight.get(m.id) ?? 0;
        this.inFlight.delete(m.id);
        this.inFlightRows -= n;
        if (m.error !== undefined) {
          this.counters.drop('store-error', n);
          this.counters.lastError = m.error;
        } else {
          this.counters.sent += n;
        }
        if (this.inFlight.size === 0) w.unref();
        this.waiters.notify(this.watermark());
        this.pump();
        return;
      }
      case 'closed':
        return;
    }
  }

  /** The writer died: its batches are lost (counted), and a new one starts after a backoff. */
  private onDeath(w: Worker, why: string): void {
    if (w !== this.worker) return;
    this.worker = undefined;
    this.ready = false;
    if (this.inFlightRows > 0) {
      this.counters.drop('store-error', this.inFlightRows);
      this.clearInFlight();
    }
    this.counters.lastError = why;
    this.waiters.notify(this.watermark());
    if (this.closing || this.respawning) return;
    this.respawning = true;
    void sleep(backoffDelay(this.failures++, { initialMs: 100, maxMs: 10_000 }), this.abort.signal).then((ok) => {
      this.respawning = false;
      if (ok && !this.closing) this.spawn();
    });
  }

  private clearInFlight(): void {
    this.inFlight.clear();
    this.inFlightRows = 0;
  }

  private pump(): void {
    const w = this.worker;
    if (!w || !this.ready) return;
    while (this.inFlight.size < MAX_IN_FLIGHT) {
      let batch = this.sealed.shift();
      if (!batch) {
        if (this.cur.n === 0) break;
        batch = this.cur;
        this.cur = emptyBatch();
      }
      this.queuedRows -= batch.n;
      this.queuedBytes -= batch.bytes;
      const id = this.nextId++;
      this.inFlight.set(id, batch.n);
      this.inFlightRows += batch.n;
      w.ref();
      if (batch.data) {
        const data = batch.data.subarray(0, batch.dataLen);
        w.postMessage({ op: 'insert', id, rows: batch.rows, bytes: { data, ends: batch.ends } } satisfies ToWorker, [data.buffer as ArrayBuffer]);
      } else w.postMessage({ op: 'insert', id, rows: batch.rows } satisfies ToWorker);
    }
  }
}
