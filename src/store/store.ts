// The embedded event store: SQLite through node:sqlite, in WAL mode so readers (the API, `vigil events`)
// query while the agent writes. Store is synchronous and thread-agnostic: the store sink runs the writing
// instance in a worker thread and hands it batches; a read-only instance serves queries on the caller's thread.
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import nodePath from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { VigilError } from '../bpf/errors.ts';
import { lineMetaOf, newLineMeta, type LineMeta, type OutputEvent } from '../pipeline/types.ts';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.ts';

/** Store failures: ESCHEMA for a schema this build cannot use, ESTORE for anything else (with the cause). */
export class StoreError extends VigilError {
  readonly path: string;
  constructor(code: 'ESCHEMA' | 'ESTORE', path: string, message: string, options: { cause?: unknown } = {}) {
    super(code, `store ${path}: ${message}`, options);
    this.path = path;
  }
}

/** The limits a reload may change while the store is open (0: no limit). */
export interface StoreRetention {
  maxRows: number;
  maxAgeMs: number;
  maxProcesses: number;
}

/** The retention limits of `o` alone (options, or a message that carries more). */
export const retentionOf = (o: StoreRetention): StoreRetention => ({ maxRows: o.maxRows, maxAgeMs: o.maxAgeMs, maxProcesses: o.maxProcesses });

export interface StoreOptions {
  /** Open for queries only: never creates, migrates or writes. */
  readOnly?: boolean;
  /** Open an existing store only: never create the file or its directory (the sink's writer thread). */
  mustExist?: boolean;
  /** Retention: keep at most this many events (0 = no limit). */
  maxRows?: number;
  /** Retention: delete events older than this, ms (0 = no limit); also exited processes older than it. */
  maxAgeMs?: number;
  /** Retention: keep at most this many process rows (0 = no limit); exited ones go first. */
  maxProcesses?: number;
  /** Rows one retention step deletes at most: small steps keep each write transaction short. */
  retentionChunk?: number;
  /** How long a connection waits for a lock held by another connection, ms. */
  busyTimeoutMs?: number;
}

export interface EventQuery {
  since?: Date | number;
  until?: Date | number;
  type?: string | string[];
  /** A container id prefix, or a container name (exact). */
  container?: string;
  pid?: number;
  /** Default 1000. */
  limit?: number;
  /**
   * Which events a limit keeps, by event time: "asc" the oldest, returned oldest first (the default);
   * "desc" the newest, newest first; "latest" the newest, returned oldest first (like `tail`).
   */
  order?: 'asc' | 'desc' | 'latest';
}

export interface StoredProcess {
  key: string;
  pid: number;
  ppid?: number;
  exe?: string;
  argv?: string[];
  user?: string;
  uid?: number;
  containerId?: string;
  execId?: string;
  startKtimeNs?: number;
  /** Wall-clock start, derived from the event's time and boot-time offset. */
  startTime?: string;
  execTime?: string;
  exitTime?: string;
  exitCode?: number;
  exitSignal?: number;
}

export interface ProcessQuery {
  pid?: number;
  container?: string;
  /** Only processes still running (no exit seen). */
  running?: boolean;
  limit?: number;
}

/** Columns per event in a flat row batch (see pushEventRow). */
export const ROW_COLS = 11;

/** The page size of a new store (see Store.openDb). */
export const PAGE_SIZE = 32768;
/** WAL bytes between two automatic checkpoints (see Store.openDb). */
const WAL_CHECKPOINT_BYTES = 4 << 20;

/**
 * Appends one event's row to a flat column array: time (epoch ms), ktime, type, pid, key, exec id, container
 * id and name (the name goes to the containers table), pod name and namespace, and the JSON line, or null
 * when the line is the next one in the batch's bytes (see LineBytes). Only property reads: this runs on the
 * pipeline's hot path.
 */
export function pushEventRow(out: unknown[], m: LineMeta, line: string | null): void {
  out.push(m.timeMs, m.ktimeNs, m.type, m.pid ?? null, m.processKey ?? null, m.execId ?? null, m.containerId ?? null, m.containerName ?? null, m.podName ?? null, m.podNamespace ?? null, line);
}

/**
 * The UTF-8 JSON lines of a batch's rows whose line column is null, back to back, in row order: line i is
 * data[ends[i-1], ends[i]). The pipeline writes lines as bytes; they become strings on the writer's thread.
 */
export interface LineBytes {
  data: Uint8Array;
  ends: number[];
}

function ms(v: Date | number | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = v instanceof Date ? v.getTime() : v;
  if (typeof n !== 'number' || Number.isNaN(n)) throw new TypeError(`query.${what}: expected a Date or epoch ms`);
  return n;
}

function toIso(v: unknown): string | undefined {
  return typeof v === 'number' ? new Date(v).toISOString() : undefined;
}

type Row = Record<string, SQLInputValue>;

export class Store {
  readonly path: string;
  readonly readOnly: boolean;
  private db: DatabaseSync | undefined;
  private readonly o: Required<Omit<StoreOptions, 'readOnly' | 'mustExist'>>;
  private readonly mustExist: boolean;
  private readonly stmts = new Map<string, StatementSync>();
  /** Event rows, kept exact by the single writer (count(*) once at open, then += / -=). */
  private rows = 0;
  private readonly knownContainers = new Map<string, { name: string | null; at: number }>();
  private readonly pendingContainers = new Map<string, { name: string | null; at: number }>();

  /** New retention limits (a configuration reload): the next retention step applies them. */
  setRetention(r: StoreRetention): void {
    Object.assign(this.o, retentionOf(r));
  }

  private constructor(path: string, opts: StoreOptions) {
    this.path = path;
    this.readOnly = opts.readOnly === true;
    this.mustExist = this.readOnly || opts.mustExist === true;
    this.o = {
      maxRows: opts.maxRows ?? 0,
      maxAgeMs: opts.maxAgeMs ?? 0,
      maxProcesses: opts.maxProcesses ?? 0,
      retentionChunk: opts.retentionChunk ?? 2000,
      busyTimeoutMs: opts.busyTimeoutMs ?? 5000,
    };
  }

  /**
   * Opens (and for writers creates and migrates) a store.
   * @throws StoreError ESCHEMA when the store's schema is newer than this build's (or, read-only, older);
   *   ESTORE when the file is missing (read-only), is not a vigil store, or SQLite fails.
   */
  static open(path: string, opts: StoreOptions = {}): Store {
    const s = new Store(path, opts);
    s.openDb();
    return s;
  }

  private openDb(): void {
    const path = this.path;
    if (this.mustExist && !fs.existsSync(path)) throw new StoreError('ESTORE', path, 'no such store (has the agent run with the store enabled?)');
    if (!this.mustExist) fs.mkdirSync(nodePath.dirname(path), { recursive: true, mode: 0o700 });
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { readOnly: this.readOnly, timeout: this.o.busyTimeoutMs });
    } catch (err) {
      throw new StoreError('ESTORE', path, `cannot open: ${(err as Error).message}`, { cause: err });
    }
    try {
      if (!this.readOnly) {
        // Pages of 32 KiB for a new store (an existing one keeps its own: SQLite sets the size only before
        // the first table). An event row is ~1 KB and its four index entries land all over their indexes:
        // with 4 KiB pages, batches dirtied and rewrote (to the WAL, then to the file) many more pages per
        // row. Batches of 1000 rows into a store at its 1 M-row limit, retention deleting as many: 12.7 µs
        // of CPU per row with 4 KiB pages (6.5 of it system time), 7.3 µs with 32 KiB (2.6). See
        // docs/sinks.md.
        // WAL: readers never block the writer and the writer never blocks readers. synchronous=NORMAL is
        // durable across process crashes (not power loss) and avoids an fsync per transaction. Checkpoints
        // come every 4 MiB of WAL, whatever the store's pages (SQLite's default is every 1000 pages: 4 MiB
        // of 4 KiB pages, 32 MiB of 32 KiB ones).
        db.exec(`PRAGMA page_size = ${PAGE_SIZE}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;`);
        const pageSize = Number((db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size);
        db.exec(`PRAGMA wal_autocheckpoint = ${Math.max(1, Math.round(WAL_CHECKPOINT_BYTES / pageSize))};`);
        try {
          fs.chmodSync(path, 0o600); // events carry command lines and environment: root only
        } catch {
          // not ours to chmod (an existing store owned by someone else): leave it
        }
      }
      this.migrate(db);
      if (!this.readOnly) this.rows = Number((db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n);
    } catch (err) {
      db.close();
      if (err instanceof StoreError) throw err;
      throw new StoreError('ESTORE', path, (err as Error).message, { cause: err });
    }
    this.db = db;
  }

  private migrate(db: DatabaseSync): void {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
    let version = 0;
    if (tables.includes('schema_version')) {
      version = Number((db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null }).v ?? 0);
    } else if (tables.some((t) => !t.startsWith('sqlite_'))) {
      throw new StoreError('ESTORE', this.path, `not a vigil store (it has tables ${tables.join(', ')} but no schema_version); use another path`);
    }
    if (version > SCHEMA_VERSION) {
      throw new StoreError('ESCHEMA', this.path, `schema version ${version} is newer than this vigil supports (${SCHEMA_VERSION}); upgrade vigil, or point the store at another path`);
    }
    if (version === SCHEMA_VERSION) return;
    if (this.readOnly) {
      throw new StoreError('ESCHEMA', this.path, version === 0
        ? 'empty store (no schema yet); start the agent once to create it'
        : `schema version ${version} is older than this vigil's (${SCHEMA_VERSION}); start the agent once to migrate it`);
    }
    db.exec('BEGIN IMMEDIATE');
    try {
      for (let v = version; v < SCHEMA_VERSION; v++) MIGRATIONS[v]!(db);
      db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw new StoreError('ESTORE', this.path, `migrating schema ${version} → ${SCHEMA_VERSION} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  private conn(): DatabaseSync {
    if (!this.db) throw new StoreError('ESTORE', this.path, 'the store is closed');
    return this.db;
  }

  private stmt(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.conn().prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** Event rows in the store (exact for the writer; counted on demand for readers). */
  count(): number {
    if (this.readOnly) return Number((this.stmt('SELECT count(*) AS n FROM events').get() as { n: number }).n);
    return this.rows;
  }

  /**
   * Inserts a flat batch of rows (ROW_COLS values per event, see pushEventRow) in one transaction, and
   * updates the processes table from exec and exit events. All or nothing.
   * @throws StoreError ESTORE when SQLite fails (the transaction is rolled back).
   */
  insertRows(flat: readonly unknown[], bytes?: LineBytes): number {
    const db = this.conn();
    if (this.readOnly) throw new StoreError('ESTORE', this.path, 'opened read-only');
    const n = Math.floor(flat.length / ROW_COLS);
    const ins = this.stmt('INSERT INTO events (time_ms, ktime_ns, type, pid, process_key, exec_id, container_id, pod_name, pod_namespace, payload) VALUES (?,?,?,?,?,?,?,?,?,?)');
    const data = bytes ? Buffer.from(bytes.data.buffer, bytes.data.byteOffset, bytes.data.byteLength) : undefined;
    const ends = bytes?.ends ?? [];
    let next = 0; // the next line in `bytes`, which starts at `from`
    let from = 0;
    db.exec('BEGIN');
    try {
      for (let i = 0; i < n; i++) {
        const o = i * ROW_COLS;
        const ktime = Number(flat[o + 1]) || 0;
        let t = Number(flat[o]);
        if (!Number.isFinite(t)) t = Date.now(); // an event without a usable time is still stored, at arrival
        const type = String(flat[o + 2]);
        let line = flat[o + 10] as string | null;
        if (line === null) {
          if (!data || next >= ends.length) throw new Error(`row ${i}: its line is not in the batch's bytes`);
          const to = ends[next++]!;
          line = data.toString('utf8', from, to);
          from = to;
        }
        const cid = flat[o + 6];
        ins.run(t, ktime, type, nul(flat[o + 3]), nul(flat[o + 4]), nul(flat[o + 5]), nul(cid), nul(flat[o + 8]), nul(flat[o + 9]), line);
        if (typeof cid === 'string') this.trackContainer(cid, flat[o + 7], t);
        if (type === 'exec' || type === 'exit') this.trackProcess(type, t, ktime, line);
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      this.pendingContainers.clear();
      throw new StoreError('ESTORE', this.path, `insert failed: ${(err as Error).message}`, { cause: err });
    }
    this.rows += n;
    for (const [id, c] of this.pendingContainers) this.knownContainers.set(id, c);
    this.pendingContainers.clear();
    return n;
  }

  /**
   * Keeps containers (id → name) current: written when a container is new, renamed, or last written over
   * a minute ago (last_seen_ms feeds retention), so a busy container costs one upsert a minute, not one per event.
   */
  private trackContainer(id: string, nameRaw: unknown, t: number): void {
    const name = typeof nameRaw === 'string' && nameRaw !== '' ? nameRaw : null;
    const known = this.pendingContainers.get(id) ?? this.knownContainers.get(id);
    if (known && known.name === (name ?? known.name) && t - known.at < 60_000 && t >= known.at) return;
    this.stmt(`INSERT INTO containers (id, name, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET name = coalesce(excluded.name, name), last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)`).run(id, name, t, t);
    // Remembered only once the transaction commits (a rolled-back batch must not leave stale entries).
    this.pendingContainers.set(id, { name: name ?? known?.name ?? null, at: t });
    if (this.knownContainers.size > 10_000) this.knownContainers.clear();
  }

  /** Inserts events (convenience over insertRows). @throws StoreError */
  insert(events: readonly OutputEvent[]): number {
    const flat: unknown[] = [];
    const m = newLineMeta();
    for (const ev of events) pushEventRow(flat, lineMetaOf(ev, m), JSON.stringify(ev));
    return this.insertRows(flat);
  }

  private trackProcess(type: string, timeMs: number, ktimeNs: number, line: string): void {
    let ev: OutputEvent;
    try {
      ev = JSON.parse(line) as OutputEvent;
    } catch {
      return;
    }
    const p = ev.process;
    if (!p?.key) return;
    // Boot-time start → wall clock through this event's own (time, ktime) pair.
    const start = p.startNs !== undefined && ktimeNs > 0 ? Math.round(timeMs - (ktimeNs - p.startNs) / 1e6) : null;
    const row: Row = {
      key: p.key,
      pid: p.pid,
      ppid: p.ppid ?? ev.parent?.pid ?? null,
      exe: p.exe ?? null,
      argv: p.argv ? JSON.stringify(p.argv) : null,
      user: p.user ?? null,
      uid: p.uid ?? null,
      container_id: ev.container?.id ?? null,
      exec_id: p.execId ?? null,
      start_ktime_ns: p.startNs ?? null,
      start_time_ms: start,
      exec_time_ms: type === 'exec' ? timeMs : null,
      exit_time_ms: type === 'exit' ? timeMs : null,
      exit_code: type === 'exit' && typeof ev.exitCode === 'number' ? ev.exitCode : null,
      exit_signal: type === 'exit' && typeof ev.signal === 'number' ? ev.signal : null,
    };
    this.stmt(`INSERT INTO processes (key, pid, ppid, exe, argv, user, uid, container_id, exec_id, start_ktime_ns, start_time_ms, exec_time_ms, exit_time_ms, exit_code, exit_signal)
      VALUES (:key, :pid, :ppid, :exe, :argv, :user, :uid, :container_id, :exec_id, :start_ktime_ns, :start_time_ms, :exec_time_ms, :exit_time_ms, :exit_code, :exit_signal)
      ON CONFLICT (key) DO UPDATE SET
        pid = excluded.pid,
        ppid = coalesce(excluded.ppid, ppid),
        exe = coalesce(excluded.exe, exe),
        argv = coalesce(excluded.argv, argv),
        user = coalesce(excluded.user, user),
        uid = coalesce(excluded.uid, uid),
        container_id = coalesce(excluded.container_id, container_id),
        exec_id = coalesce(excluded.exec_id, exec_id),
        start_ktime_ns = coalesce(start_ktime_ns, excluded.start_ktime_ns),
        start_time_ms = coalesce(start_time_ms, excluded.start_time_ms),
        exec_time_ms = coalesce(excluded.exec_time_ms, exec_time_ms),
        exit_time_ms = coalesce(excluded.exit_time_ms, exit_time_ms),
        exit_code = coalesce(excluded.exit_code, exit_code),
        exit_signal = coalesce(excluded.exit_signal, exit_signal)`).run(row);
  }

  /**
   * Events matching the query, parsed back from their JSON.
   * @throws StoreError when closed; TypeError for a malformed query.
   */
  query(q: EventQuery = {}): OutputEvent[] {
    const where: string[] = [];
    const args: SQLInputValue[] = [];
    const since = ms(q.since, 'since');
    const until = ms(q.until, 'until');
    if (since !== undefined) {
      where.push('time_ms >= ?');
      args.push(since);
    }
    if (until !== undefined) {
      where.push('time_ms <= ?');
      args.push(until);
    }
    const types = q.type === undefined ? [] : Array.isArray(q.type) ? q.type : [q.type];
    if (types.length > 0) {
      where.push(`type IN (${types.map(() => '?').join(',')})`);
      args.push(...types.map(String));
    }
    if (q.container !== undefined && q.container !== '') {
      // An id prefix as a range, so the index serves it; or the container's name.
      where.push('((container_id >= ? AND container_id < ?) OR container_id IN (SELECT id FROM containers WHERE name = ?))');
      args.push(q.container, `${q.container}\uffff`, q.container);
    }
    if (q.pid !== undefined) {
      where.push('pid = ?');
      args.push(q.pid);
    }
    const limit = q.limit ?? 1000;
    if (!Number.isInteger(limit) || limit < 1) throw new TypeError('query.limit: expected a positive integer');
    if (q.order !== undefined && q.order !== 'asc' && q.order !== 'desc' && q.order !== 'latest') throw new TypeError('query.order: expected asc, desc or latest');
    const dir = q.order === 'desc' || q.order === 'latest' ? 'DESC' : 'ASC';
    const sql = `SELECT payload FROM events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY time_ms ${dir}, id ${dir} LIMIT ?`;
    const rows = this.stmt(sql).all(...args, limit) as { payload: string }[];
    const out: OutputEvent[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = JSON.parse(rows[i]!.payload) as OutputEvent;
    return q.order === 'latest' ? out.reverse() : out;
  }

  /** Processes from the processes table. @throws StoreError when closed. */
  processes(q: ProcessQuery = {}): StoredProcess[] {
    const where: string[] = [];
    const args: SQLInputValue[] = [];
    if (q.pid !== undefined) {
      where.push('pid = ?');
      args.push(q.pid);
    }
    if (q.container) {
      where.push('container_id >= ? AND container_id < ?');
      args.push(q.container, `${q.container}\uffff`);
    }
    if (q.running) where.push('exit_time_ms IS NULL');
    const sql = `SELECT * FROM processes${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY coalesce(start_time_ms, exec_time_ms) ASC LIMIT ?`;
    const rows = this.stmt(sql).all(...args, q.limit ?? 1000) as Record<string, unknown>[];
    return rows.map((r) => {
      const p: StoredProcess = { key: String(r.key), pid: Number(r.pid) };
      if (r.ppid != null) p.ppid = Number(r.ppid);
      if (r.exe != null) p.exe = String(r.exe);
      if (r.argv != null) p.argv = JSON.parse(String(r.argv)) as string[];
      if (r.user != null) p.user = String(r.user);
      if (r.uid != null) p.uid = Number(r.uid);
      if (r.container_id != null) p.containerId = String(r.container_id);
      if (r.exec_id != null) p.execId = String(r.exec_id);
      if (r.start_ktime_ns != null) p.startKtimeNs = Number(r.start_ktime_ns);
      const st = toIso(r.start_time_ms);
      if (st) p.startTime = st;
      const et = toIso(r.exec_time_ms);
      if (et) p.execTime = et;
      const xt = toIso(r.exit_time_ms);
      if (xt) p.exitTime = xt;
      if (r.exit_code != null) p.exitCode = Number(r.exit_code);
      if (r.exit_signal != null) p.exitSignal = Number(r.exit_signal);
      return p;
    });
  }

  /** True when retention has work to do by row count (cheap: no query). */
  overRowLimit(): boolean {
    return this.o.maxRows > 0 && this.rows > this.o.maxRows;
  }

  /**
   * One small retention step: deletes at most retentionChunk events (over maxRows first, then older than
   * maxAgeMs) and as many process rows, in one short transaction. Returns the rows deleted; call again
   * while it returns > 0 (the sink's worker does so between insert batches).
   * @throws StoreError when SQLite fails.
   */
  retentionStep(now: number = Date.now()): number {
    const db = this.conn();
    if (this.readOnly) return 0;
    const chunk = this.o.retentionChunk;
    let deleted = 0;
    let procs = 0;
    db.exec('BEGIN');
    try {
      if (this.o.maxRows > 0 && this.rows > this.o.maxRows) {
        const excess = Math.min(chunk, this.rows - this.o.maxRows);
        // Oldest inserted first: rowids only grow, so this walks the primary key.
        deleted += Number(this.stmt('DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?)').run(excess).changes);
      }
      if (this.o.maxAgeMs > 0 && deleted < chunk) {
        const cutoff = now - this.o.maxAgeMs;
        deleted += Number(this.stmt('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time_ms < ? ORDER BY time_ms LIMIT ?)').run(cutoff, chunk - deleted).changes);
        procs += Number(this.stmt('DELETE FROM processes WHERE key IN (SELECT key FROM processes WHERE exit_time_ms < ? ORDER BY exit_time_ms LIMIT ?)').run(cutoff, chunk).changes);
        procs += Number(this.stmt('DELETE FROM containers WHERE id IN (SELECT id FROM containers WHERE last_seen_ms < ? LIMIT ?)').run(cutoff, chunk).changes);
      }
      if (this.o.maxProcesses > 0) {
        const n = Number((this.stmt('SELECT count(*) AS n FROM processes').get() as { n: number }).n);
        if (n > this.o.maxProcesses) {
          // Exited processes first (oldest exit first), then the oldest still-running ones.
          procs += Number(this.stmt(`DELETE FROM processes WHERE key IN (SELECT key FROM processes
            ORDER BY exit_time_ms IS NULL, exit_time_ms, coalesce(start_time_ms, exec_time_ms) LIMIT ?)`).run(Math.min(chunk, n - this.o.maxProcesses)).changes);
        }
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw new StoreError('ESTORE', this.path, `retention failed: ${(err as Error).message}`, { cause: err });
    }
    this.rows -= deleted;
    return deleted + procs;
  }

  /** Runs retention steps until nothing is left to delete (tests, maintenance). Returns rows deleted. */
  enforceRetention(now: number = Date.now()): number {
    let total = 0;
    for (let n = this.retentionStep(now); n > 0; n = this.retentionStep(now)) total += n;
    return total;
  }

  /** Closes the store; a writer checkpoints the WAL into the main file first. Idempotent. */
  close(): void {
    const db = this.db;
    if (!db) return;
    this.db = undefined;
    this.stmts.clear();
    try {
      if (!this.readOnly) db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    } catch {
      // a reader holding a snapshot can make the checkpoint partial; SQLite finishes it next time
    }
    db.close();
  }
}

function nul(v: unknown): SQLInputValue {
  return v === undefined ? null : (v as SQLInputValue);
}
