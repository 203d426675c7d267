// vigil's configuration: embedded defaults, a YAML file, then flags, merged in that order and validated as a
// whole against one schema before anything is loaded. An invalid value stops the agent with the path of
// the bad field ("sinks.file.maxSizeMiB: expected a number, got "big"") and a non-zero exit code.
import fs from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { InvalidArgumentError } from '../bpf/errors.ts';

const positive = z.number().int().positive();
const nonneg = z.number().int().nonnegative();

const ScopeSchema = z.enum(['all', 'containers', 'host']);

export const ConfigSchema = z
  .object({
    agent: z
      .object({
        /** API unix socket, created 0600. */
        socket: z.string().min(1).default('/run/vigil/vigil.sock'),
        /** Optional TCP listen address ("127.0.0.1:9750"): refused unless a token is set. */
        listen: z.string().default(''),
        token: z.string().default(''),
        tokenFile: z.string().default(''),
        dataDir: z.string().min(1).default('/var/lib/vigil'),
        metrics: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    ring: z
      .object({
        /** Size of the shared ring buffer (a power of two, MiB). */
        sizeMiB: positive.max(1024).refine((v) => (v & (v - 1)) === 0, 'must be a power of two').default(16),
        batchDelayMs: positive.max(100).default(1),
      })
      .strict()
      .prefault({}),
    pipeline: z
      .object({
        /** Events from different CPUs are put back in timestamp order within this window (0: off). */
        reorderWindowMs: nonneg.max(1000).default(5),
        /** Hold events of a container whose enrichment is pending, up to this long (0: emit as pending). */
        holdForEnrichmentMs: nonneg.max(10_000).default(0),
        /** Events queued per subscriber (SSE clients, jobs) before counting drops. */
        subscriberQueue: positive.default(10_000),
      })
      .strict()
      .prefault({}),
    process: z
      .object({
        mode: z.enum(['auto', 'bpf', 'procfs']).default('auto'),
        maxArgsBytes: nonneg.max(131_072).default(131_072),
        maxEnvBytes: nonneg.max(32_768).default(32_768),
        threads: z.boolean().default(false),
        credentials: z.boolean().default(true),
        exitedGraceSeconds: nonneg.default(30),
        maxEntries: positive.default(131_072),
        /** Scrubbing rules (see docs/process-scrubbing.md); validated by the scrubber. */
        scrub: z.record(z.string(), z.unknown()).default({}),
      })
      .strict()
      .prefault({}),
    containers: z
      .object({
        enabled: z.boolean().default(true),
        /** "auto", or the runtime sockets to use. */
        runtimes: z.union([z.literal('auto'), z.array(z.object({ runtime: z.enum(['docker', 'podman', 'containerd', 'cri-o']), socket: z.string().min(1) }).strict())]).default('auto'),
        expirySeconds: nonneg.default(5),
        enrichTimeoutMs: positive.default(2000),
        containerdNamespaces: z.array(z.string().min(1)).default(['default', 'k8s.io', 'moby', 'buildkit']),
      })
      .strict()
      .prefault({}),
    events: z
      .object({
        process: z
          .object({ exec: z.boolean().default(true), exit: z.boolean().default(true), fork: z.boolean().default(false), creds: z.boolean().default(true), comm: z.boolean().default(true) })
          .strict()
          .prefault({}),
        containers: z.boolean().default(true),
        /**
         * Syscall events, each group true/false or per event type (validated by the syscall sensor; see
         * docs/syscalls.md). Defaults keep the hot syscalls quiet: only write-opens of sensitive paths among
         * file events; network and the rare security-relevant syscalls in full.
         */
        files: z.union([z.boolean(), z.record(z.string(), z.unknown())]).default({ sensitiveWrites: true }),
        network: z.union([z.boolean(), z.record(z.string(), z.unknown())]).default(true),
        other: z.union([z.boolean(), z.record(z.string(), z.unknown())]).default({ ptrace: 'attach', mount: true, umount: true, moduleLoad: true, bpf: 'load', memfdCreate: true, setns: true, unshare: true }),
      })
      .strict()
      .prefault({}),
    filters: z
      .object({
        comm: z.object({ include: z.array(z.string().min(1).max(15)).default([]), exclude: z.array(z.string().min(1).max(15)).default([]) }).strict().prefault({}),
        scope: ScopeSchema.default('all'),
        pathPrefixes: z.array(z.string().startsWith('/')).default([]),
        /** Prefixes whose modification is flagged sensitive (default: system and credential directories). */
        sensitivePaths: z.array(z.string().startsWith('/')).optional(),
        /** Resolve relative paths and write-opens to absolute paths; 'all' for every open (about 1 µs each). */
        resolvePaths: z.union([z.boolean(), z.literal('all')]).default(true),
      })
      .strict()
      .prefault({}),
    /** Sink options, validated by the sink factory (src/sinks). */
    sinks: z.record(z.string(), z.unknown()).default({ stdout: { enabled: true }, store: { enabled: true } }),
  })
  .strict();

export type VigilConfig = z.infer<typeof ConfigSchema>;

export class ConfigError extends InvalidArgumentError {
  readonly issues: { path: string; message: string }[];
  constructor(source: string, issues: { path: string; message: string }[]) {
    super(`invalid configuration (${source}): ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.issues = issues;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: objects merge, everything else (arrays included) replaces. */
export function merge(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v);
  return out;
}

/** Parses "a.b.c=value" into a nested object; values are YAML scalars ("true", "5", "[a, b]"). */
export function parseSet(expr: string): Record<string, unknown> {
  const eq = expr.indexOf('=');
  if (eq <= 0) throw new ConfigError('--set', [{ path: expr, message: 'expected key.path=value' }]);
  const keys = expr.slice(0, eq).split('.');
  if (keys.some((k) => !/^[A-Za-z][\w-]*$/.test(k))) throw new ConfigError('--set', [{ path: expr.slice(0, eq), message: 'not a configuration path' }]);
  let value: unknown;
  try {
    value = parseYaml(expr.slice(eq + 1));
  } catch {
    value = expr.slice(eq + 1);
  }
  const out: Record<string, unknown> = {};
  let cur = out;
  keys.forEach((k, i) => {
    if (i === keys.length - 1) cur[k] = value;
    else cur = cur[k] = {} as Record<string, unknown>;
  });
  return out;
}

/** Reads and parses a YAML config file. Throws ConfigError naming the file and line. */
export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [{ path: '(file)', message: (err as Error).message }]);
  }
  try {
    const doc = parseYaml(text) as unknown;
    if (doc !== null && doc !== undefined && !isObject(doc)) throw new ConfigError(path, [{ path: '(root)', message: 'expected a mapping of sections (agent, ring, process, ...)' }]);
    return doc ?? {};
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const e = err as YAMLParseError;
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '(file)';
    throw new ConfigError(path, [{ path: where, message: e.message.split('\n')[0]! }]);
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v)) return 'a list';
  if (isObject(v)) return 'a mapping';
  return String(v);
}

/**
 * Validates a merged raw config. Throws ConfigError listing every bad field with its path. `source` names
 * where the values came from, for the message.
 */
export function validateConfig(raw: unknown, source = 'configuration'): VigilConfig {
  const r = ConfigSchema.safeParse(raw ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => {
    const path = i.path.length ? i.path.map(String).join('.') : '(root)';
    let got: unknown = raw;
    for (const k of i.path) got = isObject(got) || Array.isArray(got) ? (got as Record<string, unknown>)[k as string] : undefined;
    const message = i.code === 'unrecognized_keys' ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.join(', ')}` : `${i.message}${got !== undefined && i.code === 'invalid_type' ? `, got ${describe(got)}` : ''}`;
    return { path, message };
  });
  throw new ConfigError(source, issues);
}

/** Defaults <- file <- flag overrides, validated. */
export function loadConfig(o: { file?: string; overrides?: unknown[] } = {}): VigilConfig {
  let raw: unknown = {};
  const sources: string[] = ['defaults'];
  if (o.file) {
    raw = merge(raw, readConfigFile(o.file));
    sources.push(o.file);
  }
  for (const ov of o.overrides ?? []) raw = merge(raw, ov);
  if (o.overrides?.length) sources.push('flags');
  return validateConfig(raw, sources.join(' + '));
}
