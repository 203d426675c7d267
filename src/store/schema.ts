// The embedded store's schema and its migrations. Version N of the schema is what MIGRATIONS[0..N-1] build;
// a store records its version in schema_version, and vigil refuses one newer than it knows instead of
// guessing at columns it has never seen.
import type { DatabaseSync } from 'node:sqlite';

/**
 * events: one row per event. The indexed columns are copies of fields of the JSON payload, so queries filter
 * on indexes and return the payload as written. time_ms is wall-clock ms (from the event's ISO time), the
 * column every query and the age retention use.
 *
 * processes: one row per process identity (pid + start time), from exec and exit events.
 *
 * containers: id → name, so a query by name resolves to ids and uses events_container_time; a fifth index
 * on every event row (by name) would cost ~15-20% of insert throughput for a rare query.
 */
const V1 = `
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  ktime_ns INTEGER NOT NULL,
  type TEXT NOT NULL,
  pid INTEGER,
  process_key TEXT,
  exec_id TEXT,
  container_id TEXT,
  pod_name TEXT,
  pod_namespace TEXT,
  payload TEXT NOT NULL
);
CREATE INDEX events_time ON events (time_ms);
CREATE INDEX events_type_time ON events (type, time_ms);
CREATE INDEX events_container_time ON events (container_id, time_ms);
CREATE INDEX events_pid_time ON events (pid, time_ms);
CREATE TABLE processes (
  key TEXT PRIMARY KEY,
  pid INTEGER NOT NULL,
  ppid INTEGER,
  exe TEXT,
  argv TEXT,
  user TEXT,
  uid INTEGER,
  container_id TEXT,
  exec_id TEXT,
  start_ktime_ns INTEGER,
  start_time_ms INTEGER,
  exec_time_ms INTEGER,
  exit_time_ms INTEGER,
  exit_code INTEGER,
  exit_signal INTEGER
);
CREATE INDEX processes_pid ON processes (pid);
CREATE TABLE containers (
  id TEXT PRIMARY KEY,
  name TEXT,
  first_seen_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL
);
CREATE INDEX containers_name ON containers (name);
CREATE INDEX processes_exit ON processes (exit_time_ms);
INSERT INTO schema_version (version) VALUES (0);
`;

/** MIGRATIONS[i] takes a store from version i to version i+1. Append, never edit. */
export const MIGRATIONS: ReadonlyArray<(db: DatabaseSync) => void> = [(db) => db.exec(V1)];

/** The schema version this build writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length;
