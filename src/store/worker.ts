// The store's writer thread. SQLite calls are synchronous and cost ~10 µs per indexed row, which at
// agent event rates would eat the main thread; here they cost the main thread only a postMessage per batch
// (measured ~1 µs per row). One transaction per batch; retention deletes run in small steps between batches.
import { parentPort, workerData } from 'node:worker_threads';
import { ROW_COLS, Store, type LineBytes, type StoreOptions, type StoreRetention } from './store.ts';

export interface WorkerConfig {
  path: string;
  store: StoreOptions;
  /** How often age-based retention runs, ms. */
  retentionIntervalMs: number;
}

/** `bytes`: the lines of the rows whose line column is null (see pushEventRow), moved, not copied. */
export type ToWorker = { op: 'insert'; id: number; rows: unknown[]; bytes?: LineBytes } | ({ op: 'retention' } & StoreRetention) | { op: 'close' };
export type FromWorker =
  | { op: 'ready' }
  | { op: 'fatal'; error: string }
  | { op: 'done'; id: number; n: number; error?: string }
  | { op: 'warn'; error: string }
  | { op: 'closed' };

const port = parentPort;
if (!port) throw new Error('src/store/worker.ts runs as a worker thread only');
const cfg = workerData as WorkerConfig;
const send = (m: FromWorker): void => port.postMessage(m);

let store: Store | undefined;
try {
  store = Store.open(cfg.path, cfg.store);
  send({ op: 'ready' });
} catch (err) {
  send({ op: 'fatal', error: (err as Error).message });
  port.close();
}

let retaining = false;
function retain(): void {
  if (retaining || !store) return;
  retaining = true;
  const step = (): void => {
    if (!store) return void (retaining = false);
    try {
      // One small step, then back to the message queue: inserts never wait behind a long delete.
      if (store.retentionStep() > 0) return void setImmediate(step);
    } catch (err) {
      send({ op: 'warn', error: (err as Error).message });
    }
    retaining = false;
  };
  setImmediate(step);
}

const timer = setInterval(retain, Math.max(10, cfg.retentionIntervalMs));
timer.unref();
retain();

port.on('message', (m: ToWorker) => {
  if (m.op === 'insert') {
    const n = Math.floor(m.rows.length / ROW_COLS);
    try {
      const inserted = store!.insertRows(m.rows, m.bytes);
      send({ op: 'done', id: m.id, n: inserted });
    } catch (err) {
      send({ op: 'done', id: m.id, n, error: (err as Error).message });
    }
    if (store?.overRowLimit()) retain();
  } else if (m.op === 'retention') {
    store?.setRetention(m);
    retain(); // tighter limits apply now, not at the next interval
  } else if (m.op === 'close') {
    clearInterval(timer);
    try {
      store?.close();
    } catch (err) {
      send({ op: 'warn', error: (err as Error).message });
    }
    store = undefined;
    send({ op: 'closed' });
    port.close();
  }
});
