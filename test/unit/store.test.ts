// The embedded store: schema and migrations (a newer schema is refused), inserts and every query filter, the
// processes table, retention by rows and by age, reading while the sink's writer thread writes, reopening
// after close, and the store sink's accounting.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, it, type TestContext } from 'node:test';
import { lineMetaOf, newLineMeta, type OutputEvent, type SinkStats } from '../../src/pipeline/types.ts';
import { createSinks } from '../../src/sinks/index.ts';
import { StoreSink } from '../../src/sinks/store-sink.ts';
import { SCHEMA_VERSION } from '../../src/store/schema.ts';
import { PAGE_SIZE, Store, StoreError } from '../../src/store/store.ts';

function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-store-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function balanced(s: SinkStats): void {
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  assert.equal(s.received, s.sent + dropped + s.queued, `received = sent + dropped + queued: ${JSON.stringify(s)}`);
}

// Recent enough that the sink's default age retention (7 days) keeps everything.
const T0 = Math.floor(Date.now() / 1000) * 1000 - 3600_000;

function ev(i: number, o: Partial<OutputEvent> & { pid?: number; ct?: string; ctName?: string } = {}): OutputEvent {
  const pid = o.pid ?? 100 + (i % 3);
  const e: OutputEvent = {
    type: o.type ?? 'open',
    time: new Date(T0 + i * 1000).toISOString(),
    ktimeNs: 1e12 + i * 1e9,
    process: { pid, key: `${pid}:7`, execId: `${pid}:7:1`, comm: 'cat', startNs: 1e12 - 5e9 },
    n: i,
  };
  if (o.ct) e.container = { id: o.ct, name: o.ctName, enrichment: 'done' };
  return e;
}

const ns = (evs: OutputEvent[]) => evs.map((e) => e.n as number);

describe('Store', () => {
  it('creates the schema in WAL mode and records its version', (t) => {
    const file = path.join(tempDir(t), 'sub', 'e.db');
    const s = Store.open(file);
    s.close();
    s.close(); // idempotent
    const db = new DatabaseSync(file, { readOnly: true });
    t.after(() => db.close());
    assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
    assert.equal((db.prepare('SELECT version FROM schema_version').get() as { version: number }).version, SCHEMA_VERSION);
    const idx = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'").all() as { name: string }[]).map((r) => r.name);
    for (const want of ['events_time', 'events_type_time', 'events_container_time', 'events_pid_time']) assert.ok(idx.includes(want), want);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal((db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size, PAGE_SIZE);
  });

  it('opens a store made with other pages as it is, and goes on writing to it', (t) => {
    const file = path.join(tempDir(t), 'old.db');
    // A store from before PAGE_SIZE, with SQLite's default pages: a new one copied with 4 KiB pages (a
    // page size changes only outside WAL mode). Opening it must leave its pages as they are.
    // Checkpoints every 4 MiB of WAL, whatever the pages: a setting of the writer's connection.
    const autocheckpoint = (st: Store) => ((st as unknown as { db: DatabaseSync }).db.prepare('PRAGMA wal_autocheckpoint').get() as { wal_autocheckpoint: number }).wal_autocheckpoint;
    const s0 = Store.open(`${file}.new`);
    assert.equal(autocheckpoint(s0), (4 << 20) / PAGE_SIZE);
    s0.close();
    const src = new DatabaseSync(`${file}.new`);
    src.exec('PRAGMA journal_mode = DELETE;');
    src.exec(`PRAGMA page_size = 4096; VACUUM INTO '${file}'`);
    src.close();
    let db = new DatabaseSync(file, { readOnly: true });
    assert.equal((db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size, 4096);
    db.close();
    const s = Store.open(file);
    assert.equal(autocheckpoint(s), 1024);
    s.insert([ev(1), ev(2)]);
    assert.deepEqual(ns(s.query({})), [1, 2]);
    s.close();
    db = new DatabaseSync(file, { readOnly: true });
    t.after(() => db.close());
    assert.equal((db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size, 4096, 'its pages as they were');
    assert.equal((db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n, 2);
  });

  it('filters by time, type, container (id prefix or name), pid; limits and orders', (t) => {
    const s = Store.open(path.join(tempDir(t), 'e.db'));
    t.after(() => s.close());
    const evs = [
      ev(0, { type: 'exec', ct: 'aaaa1111', ctName: 'web' }),
      ev(1, { type: 'open', ct: 'aaaa1111', ctName: 'web' }),
      ev(2, { type: 'connect', ct: 'bbbb2222', ctName: 'db' }),
      ev(3, { type: 'exit', pid: 555 }),
      ev(4, { type: 'open', ct: 'aaaa9999', ctName: 'web2' }),
      ev(5, { type: 'open', pid: 555 }),
    ];
    assert.equal(s.insert(evs), 6);
    assert.equal(s.count(), 6);
    assert.deepEqual(ns(s.query()), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(s.query({ limit: 1 })[0], evs[0], 'payload round-trips');
    assert.deepEqual(ns(s.query({ order: 'desc', limit: 2 })), [5, 4]);
    assert.deepEqual(ns(s.query({ order: 'latest', limit: 2 })), [4, 5], 'latest: the newest, oldest first');
    assert.throws(() => s.query({ order: 'newest' as 'asc' }), /query.order/);
    assert.deepEqual(ns(s.query({ since: new Date(T0 + 2000) })), [2, 3, 4, 5]);
    assert.deepEqual(ns(s.query({ since: T0 + 1000, until: T0 + 3000 })), [1, 2, 3]);
    assert.deepEqual(ns(s.query({ type: ['open', 'exit'] })), [1, 3, 4, 5]);
    assert.deepEqual(ns(s.query({ type: 'connect' })), [2]);
    assert.deepEqual(ns(s.query({ container: 'aaaa' })), [0, 1, 4]);
    assert.deepEqual(ns(s.query({ container: 'aaaa1111' })), [0, 1]);
    assert.deepEqual(ns(s.query({ container: 'web' })), [0, 1], 'by name, exactly');
    assert.deepEqual(ns(s.query({ container: 'db', type: ['connect'] })), [2]);
    assert.deepEqual(ns(s.query({ pid: 555 })), [3, 5]);
    assert.deepEqual(ns(s.query({ pid: 555, type: 'open' })), [5]);
    assert.deepEqual(s.query({ container: 'zzz' }), []);
    // Names resolve through the containers table: a renamed container is found by its new name.
    s.insert([ev(6, { type: 'open', ct: 'bbbb2222', ctName: 'db-renamed' })]);
    assert.deepEqual(ns(s.query({ container: 'db-renamed' })), [2, 6]);
    assert.deepEqual(ns(s.query({ container: 'web2' })), [4]);
    assert.throws(() => s.query({ limit: 0 }), TypeError);
  });

  it('tracks processes from exec and exit events', (t) => {
    const s = Store.open(path.join(tempDir(t), 'e.db'));
    t.after(() => s.close());
    const exec: OutputEvent = {
      type: 'exec',
      time: new Date(T0).toISOString(),
      ktimeNs: 10e9,
      process: { pid: 42, ppid: 1, key: '42:900', execId: '42:900:10', startNs: 9e9, exe: '/bin/sleep', argv: ['sleep', '1'], user: 'root', uid: 0 },
      container: { id: 'cafe', enrichment: 'done' },
    };
    const exit: OutputEvent = { type: 'exit', time: new Date(T0 + 1000).toISOString(), ktimeNs: 11e9, process: { pid: 42, key: '42:900' }, exitCode: 0 };
    const killed: OutputEvent = { type: 'exit', time: new Date(T0 + 2000).toISOString(), ktimeNs: 12e9, process: { pid: 43, key: '43:1', ppid: 42 }, signal: 9 };
    s.insert([exec, exit, killed]);
    const ps = s.processes();
    assert.equal(ps.length, 2);
    assert.deepEqual(ps.find((p) => p.pid === 42), {
      key: '42:900', pid: 42, ppid: 1, exe: '/bin/sleep', argv: ['sleep', '1'], user: 'root', uid: 0, containerId: 'cafe', execId: '42:900:10',
      startKtimeNs: 9e9, startTime: new Date(T0 - 1000).toISOString(), execTime: new Date(T0).toISOString(), exitTime: new Date(T0 + 1000).toISOString(), exitCode: 0,
    });
    assert.equal(ps.find((p) => p.pid === 43)!.exitSignal, 9);
    assert.deepEqual(s.processes({ pid: 43 }).map((p) => p.key), ['43:1']);
    assert.deepEqual(s.processes({ container: 'caf' }).map((p) => p.key), ['42:900']);
    assert.deepEqual(s.processes({ running: true }), []);
  });

  it('retention by rows deletes the oldest in small steps', (t) => {
    const s = Store.open(path.join(tempDir(t), 'e.db'), { maxRows: 100, retentionChunk: 30 });
    t.after(() => s.close());
    s.insert(Array.from({ length: 250 }, (_, i) => ev(i)));
    assert.ok(s.overRowLimit());
    assert.equal(s.retentionStep(), 30, 'one step deletes at most retentionChunk rows');
    assert.equal(s.count(), 220);
    s.enforceRetention();
    assert.equal(s.count(), 100);
    assert.equal(s.overRowLimit(), false);
    assert.deepEqual(ns(s.query({ limit: 1 })), [150]);
    const reader = Store.open(s.path, { readOnly: true });
    t.after(() => reader.close());
    assert.equal(reader.count(), 100, 'the in-memory count matches the table');
  });

  it('retention by age deletes events and exited processes older than maxAgeMs', (t) => {
    const s = Store.open(path.join(tempDir(t), 'e.db'), { maxAgeMs: 10_000, retentionChunk: 7 });
    t.after(() => s.close());
    s.insert(Array.from({ length: 60 }, (_, i) => ev(i)));
    s.insert([{ type: 'exit', time: new Date(T0).toISOString(), ktimeNs: 1, process: { pid: 9, key: '9:1' }, exitCode: 0 }]);
    const now = T0 + 50_000; // keep events at >= T0 + 40 s: i >= 40
    s.enforceRetention(now);
    assert.deepEqual(ns(s.query({ limit: 1 })), [40]);
    assert.equal(s.count(), 20);
    assert.deepEqual(s.processes(), []);
  });

  it('refuses a newer schema with a clear error, and a foreign database', (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'e.db');
    Store.open(file).close();
    const db = new DatabaseSync(file);
    db.exec(`UPDATE schema_version SET version = ${SCHEMA_VERSION + 5}`);
    db.close();
    for (const open of [() => Store.open(file), () => Store.open(file, { readOnly: true }), () => new StoreSink({ path: file })]) {
      assert.throws(open, (err: unknown) => {
        assert.ok(err instanceof StoreError);
        assert.equal(err.code, 'ESCHEMA');
        assert.match(err.message, new RegExp(`schema version ${SCHEMA_VERSION + 5} is newer than this vigil supports \\(${SCHEMA_VERSION}\\)`));
        return true;
      });
    }
    assert.throws(() => createSinks({ store: { path: file } }), { code: 'ESCHEMA' });
    const other = path.join(dir, 'other.db');
    const o = new DatabaseSync(other);
    o.exec('CREATE TABLE users (id INTEGER)');
    o.close();
    assert.throws(() => Store.open(other), /not a vigil store/);
    assert.throws(() => Store.open(path.join(dir, 'missing.db'), { readOnly: true }), /no such store/);
    fs.writeFileSync(path.join(dir, 'junk.db'), 'this is not sqlite at all, not even close'.repeat(100));
    assert.throws(() => Store.open(path.join(dir, 'junk.db')), (err: unknown) => err instanceof StoreError && err.code === 'ESTORE');
  });
});

describe('StoreSink', () => {
  it('stores every event through the writer thread; queries work while writing and after close', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'e.db');
    const sink = new StoreSink({ path: file, batchRows: 100 });
    const reader = Store.open(file, { readOnly: true });
    t.after(() => reader.close());
    let lastSeen = 0;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 250; i++) {
        const e = ev(round * 250 + i);
        sink.write(e, JSON.stringify(e));
      }
      await new Promise((r) => setImmediate(r));
      // A second connection reads while the writer thread inserts: counts only grow, rows are whole.
      const n = reader.count();
      assert.ok(n >= lastSeen, 'a reader never sees rows disappear');
      lastSeen = n;
      const last = reader.query({ order: 'desc', limit: 1 })[0];
      if (last) assert.equal(typeof last.n, 'number');
      balanced(sink.stats());
    }
    await sink.flush();
    assert.equal(reader.count(), 5000);
    assert.equal(sink.query({ limit: 100_000 }).length, 5000);
    await sink.close();
    const s = sink.stats();
    assert.deepEqual(s, { received: 5000, sent: 5000, dropped: {}, queued: 0, retries: 0 });
    assert.throws(() => sink.query(), /closed/);
    // Reopen after the agent stopped: read-only, and as a writer again.
    const after = Store.open(file, { readOnly: true });
    assert.deepEqual(ns(after.query({ since: T0 + 4998 * 1000 })), [4998, 4999]);
    after.close();
    const again = new StoreSink({ path: file });
    const e = ev(5000);
    again.write(e, JSON.stringify(e));
    await again.close();
    const final = Store.open(file, { readOnly: true });
    assert.equal(final.count(), 5001);
    final.close();
    assert.ok(!fs.existsSync(`${file}-wal`) || fs.statSync(`${file}-wal`).size === 0, 'the WAL was checkpointed on close');
  });

  it('stores lines given as bytes or strings with their LineMeta exactly as events given as objects', async (t) => {
    const dir = tempDir(t);
    // The same events, once as objects (write) and once as lines with their meta (writeBytes, writeLine,
    // mixed in one batch), into two stores: every column and every query answer must be the same.
    const evs: OutputEvent[] = [];
    for (let i = 0; i < 700; i++) {
      const e = ev(i, i % 5 === 0 ? { ct: `cafe${i % 3}`, ctName: i % 2 ? 'web' : 'db' } : {});
      if (i % 7 === 0) e.path = `/srv/naïve/日本/${i}`; // UTF-8 in the line's bytes
      if (i % 11 === 0) e.pod = { name: `pod-${i % 2}`, namespace: 'prod', uid: 'u1' };
      if (i % 97 === 0) e.type = 'exec';
      evs.push(e);
    }
    const byObject = new StoreSink({ path: path.join(dir, 'a.db'), batchRows: 64 });
    const byLine = new StoreSink({ path: path.join(dir, 'b.db'), batchRows: 64 });
    const meta = newLineMeta();
    const big = Buffer.alloc(1 << 16);
    for (const [i, e] of evs.entries()) {
      const line = JSON.stringify(e);
      byObject.write(e, line);
      lineMetaOf(e, meta);
      if (i % 3 === 2) byLine.writeLine(line, meta);
      else {
        // At an offset in a larger buffer, as the pipeline's line buffer hands it over.
        const at = 100 + (i % 50);
        const end = at + big.write(line, at);
        byLine.writeBytes(big, at, end, meta);
        big.fill(0x7b, at, end); // the sink copied the bytes: overwriting them changes nothing
      }
    }
    await Promise.all([byObject.close(), byLine.close()]);
    assert.deepEqual(byLine.stats(), { received: 700, sent: 700, dropped: {}, queued: 0, retries: 0 });
    const rows = (file: string) => {
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        return {
          events: db.prepare('SELECT time_ms, ktime_ns, type, pid, process_key, exec_id, container_id, pod_name, pod_namespace, payload FROM events ORDER BY id').all(),
          containers: db.prepare('SELECT id, name FROM containers ORDER BY id').all(),
          processes: db.prepare('SELECT key, exec_time_ms FROM processes ORDER BY key').all(),
        };
      } finally {
        db.close();
      }
    };
    const a = rows(path.join(dir, 'a.db'));
    const b = rows(path.join(dir, 'b.db'));
    assert.equal(a.events.length, 700);
    assert.deepEqual(b, a);
    assert.equal((a.events[7] as { payload: string }).payload, JSON.stringify(evs[7]));
    assert.ok(a.containers.length === 3 && a.processes.length > 0);
  });

  it('bounds its queue: writes past maxQueue in one tick are counted as queue-full', async (t) => {
    const sink = new StoreSink({ path: path.join(tempDir(t), 'e.db'), maxQueue: 300, batchRows: 50 });
    for (let i = 0; i < 1000; i++) {
      const e = ev(i);
      sink.write(e, JSON.stringify(e));
    }
    let s = sink.stats();
    assert.deepEqual(s.dropped, { 'queue-full': 700 });
    assert.equal(s.queued, 300);
    balanced(s);
    await sink.close();
    s = sink.stats();
    assert.equal(s.sent, 300);
    balanced(s);
  });

  it('enforces retention in the writer thread', async (t) => {
    const file = path.join(tempDir(t), 'e.db');
    const sink = new StoreSink({ path: file, maxRows: 500, retentionChunk: 100, batchRows: 200 });
    for (let i = 0; i < 2000; i++) {
      const e = ev(i);
      sink.write(e, JSON.stringify(e));
    }
    await sink.flush();
    // Retention runs between batches in small steps; wait (bounded) until it caught up.
    for (let i = 0; i < 500 && sink.store.count() > 500; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(sink.store.count(), 500);
    assert.deepEqual(ns(sink.query({ limit: 1 })), [1500]);
    await sink.close();
    balanced(sink.stats());
  });

  it('counts a failed insert batch as store-error and keeps going', async (t) => {
    const file = path.join(tempDir(t), 'e.db');
    Store.open(file).close();
    const db = new DatabaseSync(file);
    db.exec("CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.type = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END");
    db.close();
    const sink = new StoreSink({ path: file, batchRows: 10 });
    for (let i = 0; i < 30; i++) {
      const e = ev(i, { type: i === 15 ? 'poison' : 'open' });
      sink.write(e, JSON.stringify(e));
    }
    await sink.close();
    const s = sink.stats();
    assert.deepEqual(s.dropped, { 'store-error': 10 }, 'the whole batch holding the bad row, nothing else');
    assert.equal(s.sent, 20);
    assert.match(s.lastError ?? '', /poisoned row/);
    balanced(s);
    const r = Store.open(file, { readOnly: true });
    assert.equal(r.count(), 20);
    r.close();
  });
});
