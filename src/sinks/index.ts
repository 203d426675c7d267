// The sink factory: from the plain `sinks` config object to running sinks. Every option of every sink is
// validated first, so a bad field fails with its path ("sinks.webhook.url: must be an http(s) URL") before
// any file, thread or connection exists; only then are the sinks built, the store first.
import { createRequire } from 'node:module';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { InvalidArgumentError } from '../bpf/errors.ts';
import type { Sink } from '../pipeline/types.ts';
import type { Store } from '../store/store.ts';
import { FileSink, resolveFileOptions, type FileSinkOptions } from './file.ts';
import type { NatsSinkOptions } from './nats.ts';
import { object, type Raw } from './options.ts';
import { OtlpSink, resolveOtlpOptions, type OtlpOptions } from './otlp.ts';
import { resolveStdoutOptions, StdoutSink, type StdoutSinkOptions } from './stdout.ts';
import { resolveStoreOptions, StoreSink, type StoreSinkOptions } from './store-sink.ts';
import { selecting, takeSelection, type SinkSelection } from './select.ts';
import { resolveWebhookOptions, WebhookSink, type WebhookOptions } from './webhook.ts';

export { FileSink } from './file.ts';
export { OtlpSink } from './otlp.ts';
export { StdoutSink } from './stdout.ts';
export { StoreSink } from './store-sink.ts';
export { WebhookSink } from './webhook.ts';

// The NATS client libraries cost ~10 MiB of RSS once loaded (measured with Node's compile cache on): they
// are loaded, synchronously, the first time a nats sink is configured, not by every agent. Import NatsSink
// from './nats.ts' directly where it is needed.
const requireLazy = createRequire(import.meta.url);
function natsModule(): typeof import('./nats.ts') {
  return requireLazy('./nats.ts') as typeof import('./nats.ts');
}

/** Every sink also takes `enabled` and a selection (select.ts: `types`, `minPriority`). */
type Enabled<T> = T & { enabled?: boolean } & SinkSelection;
type OneOrMany<T> = Enabled<T> | Enabled<T>[];

/** The `sinks` section of the config. Every key is optional; `enabled: false` turns one off. */
export interface SinksConfig {
  stdout?: Enabled<StdoutSinkOptions> | boolean;
  file?: OneOrMany<FileSinkOptions>;
  /** path defaults to <dataDir>/events.db. */
  store?: Enabled<Partial<StoreSinkOptions>> | boolean;
  webhook?: OneOrMany<WebhookOptions>;
  nats?: OneOrMany<NatsSinkOptions>;
  otlp?: OneOrMany<OtlpOptions>;
}

export interface SinkContext {
  /** Where the store lives unless sinks.store.path says otherwise. Default /var/lib/vigil. */
  dataDir?: string;
}

export interface BuiltSinks {
  sinks: Sink[];
  /** The store's read-only side, for queries while the agent runs (closed with the store sink). */
  store: Store | undefined;
  storeSink: StoreSink | undefined;
}

const KINDS = ['stdout', 'file', 'store', 'webhook', 'nats', 'otlp'] as const;
type Kind = (typeof KINDS)[number];
/** Kinds that may be configured more than once (a list), e.g. two webhooks. */
const MULTI: ReadonlySet<Kind> = new Set(['file', 'webhook', 'nats', 'otlp']);

/** One sink a configuration asks for: its kind, its name (the kind, or `kind[i]` in a list) and its options. */
export interface PlannedSink {
  kind: Kind;
  name: string;
  opts: Raw;
  /** What it takes (types, alert priority); undefined: every event. */
  selection?: SinkSelection;
}

/**
 * Splits `enabled` off one sink's config: its options, and whether it is on. Undefined when there is nothing
 * to check (absent, false, or `enabled: false` alone). @throws InvalidArgumentError
 */
function sinkConfig(v: unknown, p: string): { opts: Raw; on: boolean } | undefined {
  if (v === undefined || v === false || v === null) return undefined;
  if (v === true) return { opts: {}, on: true };
  if (typeof v !== 'object' || Array.isArray(v)) throw new InvalidArgumentError(`${p}: must be an object, true or false`);
  const { enabled, ...rest } = v as Raw;
  if (enabled !== undefined && typeof enabled !== 'boolean') throw new InvalidArgumentError(`${p}.enabled: must be true or false`);
  if (enabled === false && Object.keys(rest).length === 0) return undefined;
  return { opts: rest, on: enabled !== false };
}

/**
 * Validates the whole config without starting anything. Returns the plan createSinks builds.
 * @throws InvalidArgumentError naming the bad field (e.g. "sinks.webhook.url: must be an http(s) URL").
 */
export function validateSinks(config: unknown, ctx: SinkContext = {}): PlannedSink[] {
  const cfg = object(config ?? {}, 'sinks', KINDS);
  const plan: PlannedSink[] = [];
  for (const kind of KINDS) {
    const v = cfg[kind];
    const list = Array.isArray(v) && MULTI.has(kind) ? v.map((x, i) => [x, `sinks.${kind}[${i}]`, i] as const) : [[v, `sinks.${kind}`, -1] as const];
    if (Array.isArray(v) && !MULTI.has(kind)) throw new InvalidArgumentError(`sinks.${kind}: must be an object (only one ${kind} sink)`);
    for (const [raw, p, i] of list) {
      // A sink turned off with its options still written is checked all the same: a typo there would
      // otherwise surface only on the day it is turned on.
      const sc = sinkConfig(raw, p);
      if (!sc) continue;
      const { selection, rest: opts } = takeSelection(sc.opts, p);
      switch (kind) {
        case 'stdout': resolveStdoutOptions(opts, p); break;
        case 'file': resolveFileOptions(opts, p); break;
        case 'store': {
          const def = path.join(ctx.dataDir ?? '/var/lib/vigil', 'events.db');
          resolveStoreOptions(opts, p, def);
          if (opts.path === undefined) opts.path = def;
          break;
        }
        case 'webhook': resolveWebhookOptions(opts, p); break;
        case 'nats': natsModule().resolveNatsOptions(opts, p); break;
        case 'otlp': resolveOtlpOptions(opts, p); break;
      }
      if (sc.on) plan.push({ kind, name: i >= 0 ? `${kind}[${i}]` : kind, opts, ...(selection ? { selection } : {}) });
    }
  }
  const names = new Set<string>();
  for (const s of plan) {
    if (s.kind !== 'file' && s.kind !== 'store') continue;
    const file = path.resolve(String(s.opts.path));
    if (names.has(file)) throw new InvalidArgumentError(`sinks.${s.kind}: path ${file} is used by another file or store sink`);
    names.add(file);
  }
  return plan;
}

/**
 * Builds the configured sinks (validating everything first).
 * @throws InvalidArgumentError for a bad option, before anything starts; StoreError when the store cannot
 *   be opened or its schema is newer than this build (sinks built before it are closed again).
 */
export function createSinks(config: unknown, ctx: SinkContext = {}): BuiltSinks {
  return buildSinks(validateSinks(config, ctx));
}

/**
 * Builds planned sinks (from validateSinks), the store first: it is the one that can still fail (a newer
 * schema, a locked or foreign file). On a failure the sinks built so far are closed again and it is rethrown.
 */
export function buildSinks(plan: readonly PlannedSink[]): BuiltSinks {
  const ordered = [...plan].sort((a, b) => Number(b.kind === 'store') - Number(a.kind === 'store'));
  const sinks: Sink[] = [];
  let storeSink: StoreSink | undefined;
  try {
    for (const s of ordered) {
      const o = s.opts;
      let sink: Sink;
      switch (s.kind) {
        case 'stdout': sink = new StdoutSink(o as StdoutSinkOptions, s.name); break;
        case 'file': sink = new FileSink(o as unknown as FileSinkOptions, s.name); break;
        case 'store': sink = storeSink = new StoreSink(o as unknown as StoreSinkOptions, s.name); break;
        case 'webhook': sink = new WebhookSink(o as unknown as WebhookOptions, s.name); break;
        case 'nats': sink = new (natsModule().NatsSink)(o as NatsSinkOptions, s.name); break;
        case 'otlp': sink = new OtlpSink(o as OtlpOptions, s.name); break;
      }
      sinks.push(selecting(sink, s.selection));
    }
  } catch (err) {
    for (const s of sinks) void s.close();
    throw err;
  }
  return { sinks, store: storeSink?.store, storeSink };
}

/**
 * What a reload does to the sinks: the sinks of `before` that `after` configures the same way (same name,
 * same options) keep running; the others are removed, and the sinks of `after` that are not kept are added.
 * A sink whose options changed is both (replaced: a sink's options shape what it created, files, threads and
 * connections). `replaces` names, per added sink, the removed one writing to the same place (a file's path,
 * stdout's descriptor), which must finish before the new one starts writing there.
 */
export function diffSinks(before: readonly PlannedSink[], after: readonly PlannedSink[]): { keep: string[]; remove: string[]; add: PlannedSink[]; replaces: Map<string, string> } {
  const same = (a: PlannedSink, b: PlannedSink) => a.kind === b.kind && a.name === b.name && isDeepStrictEqual(a.opts, b.opts) && isDeepStrictEqual(a.selection, b.selection);
  const keep = before.filter((b) => after.some((a) => same(a, b)));
  const remove = before.filter((b) => !keep.includes(b));
  const add = after.filter((a) => !before.some((b) => same(a, b)));
  const place = (s: PlannedSink) => (s.kind === 'file' ? `file:${path.resolve(String(s.opts.path))}` : s.kind === 'stdout' ? `fd:${String(s.opts.fd ?? 1)}` : undefined);
  const replaces = new Map<string, string>();
  for (const a of add) {
    const r = remove.find((b) => place(b) !== undefined && place(b) === place(a));
    if (r) replaces.set(a.name, r.name);
  }
  return { keep: keep.map((s) => s.name), remove: remove.map((s) => s.name), add, replaces };
}
