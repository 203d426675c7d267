// OTLP sink: events as OpenTelemetry log records over OTLP/HTTP with JSON encoding (POST <endpoint>/v1/logs).
// The mapping is written here, without an SDK: one resource (this host and agent), one scope, one log record
// per event, with attribute names from the OpenTelemetry semantic conventions where one exists.
import os from 'node:os';
import type { OutputEvent } from '../pipeline/types.ts';
import { HTTP_KEYS, HttpBatchSink, resolveHttpOptions, type HttpBatchOptions, type HttpCodec } from './http-batch.ts';
import { invalid, object, oneOf, optString, stringMap, type Raw } from './options.ts';

export interface OtlpOptions extends Partial<Omit<HttpBatchOptions, 'backoff' | 'url'>> {
  /** Base URL of the collector; logs go to <endpoint>/v1/logs. Default http://localhost:4318. */
  endpoint?: string;
  /** Full logs URL, used as is (like OTEL_EXPORTER_OTLP_LOGS_ENDPOINT); overrides endpoint. */
  url?: string;
  /** "string": the body is the event JSON as a string value (cheap); "kvlist": the event as a structured map. */
  body?: 'string' | 'kvlist';
  /** service.name of the resource. Default "vigil". */
  serviceName?: string;
  /** Extra resource attributes (deployment.environment.name, k8s.cluster.name, ...). */
  resourceAttributes?: Record<string, string>;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface ResolvedOtlpOptions {
  http: HttpBatchOptions;
  body: 'string' | 'kvlist';
  serviceName: string;
  resourceAttributes: Record<string, string>;
}

const OTLP_KEYS = [...HTTP_KEYS, 'endpoint', 'body', 'serviceName', 'resourceAttributes'] as const;

/**
 * Validates OTLP options.
 * @throws InvalidArgumentError naming the bad field.
 */
export function resolveOtlpOptions(raw: unknown, path = 'sinks.otlp'): ResolvedOtlpOptions {
  const o = object(raw, path, OTLP_KEYS);
  let url = o.url;
  if (url === undefined) {
    const endpoint = optString(o, 'endpoint', path) ?? 'http://localhost:4318';
    let base: URL;
    try {
      base = new URL(endpoint);
    } catch {
      invalid(`${path}.endpoint`, 'must be an http(s) URL');
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') invalid(`${path}.endpoint`, 'must be an http(s) URL');
    url = `${base.href.replace(/\/+$/, '')}/v1/logs`;
  }
  const http = resolveHttpOptions({ ...o, url } as Raw, path, { maxBatch: 512 });
  return {
    http,
    body: oneOf(o, 'body', path, ['string', 'kvlist'] as const, 'string'),
    serviceName: optString(o, 'serviceName', path) ?? 'vigil',
    resourceAttributes: stringMap(o, 'resourceAttributes', path),
  };
}

type Item = { ev: OutputEvent; line: string };

/** Unix ns (decimal string, as OTLP/JSON encodes 64-bit integers) of an ISO 8601 time, keeping sub-ms digits. */
export function isoToUnixNano(iso: string): string | undefined {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return undefined;
  // Date.parse keeps milliseconds only; the pipeline may print micro- or nanoseconds.
  const frac = /\.(\d+)/.exec(iso)?.[1] ?? '';
  const subMs = frac.length > 3 ? Number(frac.slice(3, 9).padEnd(6, '0')) : 0;
  return (BigInt(ms) * 1_000_000n + BigInt(subMs)).toString();
}

const SEVERITY: Record<string, [number, string]> = {
  trace: [1, 'TRACE'],
  debug: [5, 'DEBUG'],
  info: [9, 'INFO'],
  low: [9, 'INFO'],
  notice: [10, 'INFO2'],
  warn: [13, 'WARN'],
  warning: [13, 'WARN'],
  medium: [13, 'WARN'],
  error: [17, 'ERROR'],
  high: [17, 'ERROR'],
  critical: [21, 'FATAL'],
  fatal: [21, 'FATAL'],
};

type AnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: AnyValue[] } }
  | { kvlistValue: { values: KeyValue[] } };
type KeyValue = { key: string; value: AnyValue };

/** An arbitrary JSON value as an OTLP AnyValue (undefined for null/undefined/functions, which OTLP omits). */
export function toAnyValue(v: unknown, depth = 0): AnyValue | undefined {
  switch (typeof v) {
    case 'string': return { stringValue: v };
    case 'boolean': return { boolValue: v };
    case 'number':
      return Number.isSafeInteger(v) ? { intValue: String(v) } : { doubleValue: v };
    case 'bigint': return { intValue: v.toString() };
    case 'object': {
      if (v === null) return undefined;
      if (depth > 32) return { stringValue: '[too deep]' };
      if (Array.isArray(v)) {
        return { arrayValue: { values: v.map((x) => toAnyValue(x, depth + 1) ?? { stringValue: '' }) } };
      }
      const values: KeyValue[] = [];
      for (const [key, x] of Object.entries(v)) {
        const value = toAnyValue(x, depth + 1);
        if (value) values.push({ key, value });
      }
      return { kvlistValue: { values } };
    }
    default: return undefined;
  }
}

function str(attrs: KeyValue[], key: string, v: unknown): void {
  if (typeof v === 'string' && v !== '') attrs.push({ key, value: { stringValue: v } });
}

function int(attrs: KeyValue[], key: string, v: unknown): void {
  if (typeof v === 'number' && Number.isSafeInteger(v)) attrs.push({ key, value: { intValue: String(v) } });
}

/** The log record attributes of an event (semantic-convention names where they exist, vigil.* otherwise). */
export function eventAttributes(ev: OutputEvent): KeyValue[] {
  const a: KeyValue[] = [];
  str(a, 'vigil.event.type', ev.type);
  const p = ev.process;
  if (p) {
    int(a, 'process.pid', p.pid);
    int(a, 'process.parent_pid', p.ppid ?? ev.parent?.pid);
    int(a, 'thread.id', p.tid);
    str(a, 'process.executable.path', p.exe);
    const exeName = p.exe ? p.exe.slice(p.exe.lastIndexOf('/') + 1) : p.comm;
    str(a, 'process.executable.name', exeName);
    if (p.argv && p.argv.length > 0) {
      str(a, 'process.command', p.argv[0]);
      a.push({ key: 'process.command_args', value: { arrayValue: { values: p.argv.map((s) => ({ stringValue: String(s) })) } } });
    }
    int(a, 'process.user.id', p.uid);
    str(a, 'process.user.name', p.user);
    str(a, 'vigil.process.key', p.key);
    str(a, 'vigil.process.exec_id', p.execId);
  }
  if (ev.type === 'exit') int(a, 'process.exit.code', ev.exitCode);
  const c = ev.container;
  if (c) {
    str(a, 'container.id', c.id);
    str(a, 'container.name', c.name);
    str(a, 'container.image.name', c.image);
    str(a, 'container.image.id', c.imageDigest);
    str(a, 'container.runtime.name', c.runtime);
  }
  const pod = ev.pod;
  if (pod) {
    str(a, 'k8s.pod.name', pod.name);
    str(a, 'k8s.pod.uid', pod.uid);
    str(a, 'k8s.namespace.name', pod.namespace);
  }
  if (ev.group === 'file') {
    str(a, 'file.path', typeof ev.resolvedPath === 'string' && ev.resolvedPath ? ev.resolvedPath : ev.path);
  } else if (ev.group === 'network') {
    str(a, 'network.peer.address', ev.remoteAddress);
    int(a, 'network.peer.port', ev.remotePort);
    str(a, 'network.local.address', ev.localAddress);
    int(a, 'network.local.port', ev.localPort);
    const transport = ev.family === 'AF_UNIX' ? 'unix' : ev.protocol;
    str(a, 'network.transport', transport);
    str(a, 'network.type', ev.family === 'AF_INET' ? 'ipv4' : ev.family === 'AF_INET6' ? 'ipv6' : undefined);
  }
  // A failed syscall: its errno name, as the semantic conventions' error.type.
  if (typeof ev.ret === 'number' && ev.ret < 0) str(a, 'error.type', ev.errno);
  return a;
}

/** Builds the OTLP/JSON export request body for a batch. */
export function encodeLogs(items: Item[], o: ResolvedOtlpOptions, resource: KeyValue[], observedNs: string): string {
  // Records are serialized one by one and joined: a single JSON.stringify of the whole tree would hold every
  // intermediate object of the batch at once.
  const records: string[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const { ev, line } = items[i]!;
    const sev = SEVERITY[typeof ev.severity === 'string' ? ev.severity.toLowerCase() : 'info'] ?? SEVERITY.info!;
    const rec: Record<string, unknown> = {
      timeUnixNano: isoToUnixNano(ev.time) ?? observedNs,
      observedTimeUnixNano: observedNs,
      severityNumber: sev[0],
      severityText: sev[1],
      eventName: `vigil.${ev.type}`,
      body: o.body === 'kvlist' ? (toAnyValue(ev) ?? { stringValue: line }) : { stringValue: line },
      attributes: eventAttributes(ev),
    };
    records[i] = JSON.stringify(rec);
  }
  return `{"resourceLogs":[{"resource":${JSON.stringify({ attributes: resource })},"scopeLogs":[{"scope":{"name":"vigil"},"logRecords":[${records.join(',')}]}]}]}`;
}

/**
 * Delivers each event at least once as a log record unless dropped and counted; the drop reasons are the
 * webhook's, plus "rejected" for records a collector refused in a partial-success answer.
 */
export class OtlpSink extends HttpBatchSink<Item> {
  /** @throws InvalidArgumentError on bad options. */
  constructor(opts: OtlpOptions = {}, name = 'otlp') {
    const o = resolveOtlpOptions(opts);
    const resource: KeyValue[] = [];
    str(resource, 'service.name', o.serviceName);
    str(resource, 'host.name', os.hostname());
    for (const [k, v] of Object.entries(o.resourceAttributes)) if (k !== 'service.name') str(resource, k, v);
    super(name, o.http, {
      contentType: 'application/json',
      // The event object is kept, not re-parsed later: the pipeline hands each sink a fresh, finished event.
      item: (ev, line) => ({ ev, line }),
      size: (it) => it.line.length + 256,
      encode: (items) => encodeLogs(items, o, resource, `${BigInt(Date.now()) * 1_000_000n}`),
      rejected: (body) => {
        if (!body) return 0;
        const ps = (JSON.parse(body) as { partialSuccess?: { rejectedLogRecords?: number | string } }).partialSuccess;
        return Number(ps?.rejectedLogRecords ?? 0) || 0;
      },
    });
  }
}
