// vigil's configuration: embedded defaults, a YAML file, then flags, merged in that order and validated as a
// whole against one schema before anything is loaded. An invalid value stops the agent with the path of
// the bad field ("ring.sizeMiB: must be a power of two, got 3") and a non-zero exit code.
import fs from 'node:fs';
import { parseDocument, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { InvalidArgumentError } from '../bpf/errors.ts';
import { DEFAULT_SCRUB_CONFIG, Scrubber } from '../process/scrub.ts';
import { validateSinks } from '../sinks/index.ts';
import { PRIORITIES, RuleError, ruleSetFor } from '../rules/rules.ts';
import { normalizeSyscallConfig, type SyscallSensorConfig } from '../syscalls/config.ts';

const positive = z.number().int().positive();
const nonneg = z.number().int().nonnegative();
/** A file system path: the kernel takes it as a C string, so a NUL would silently cut it short. */
const fsPath = z.string().min(1).refine((v) => !v.includes('\0'), 'must not contain a NUL byte');
/** sun_path holds 108 bytes with the terminating NUL. */
const SUN_PATH_MAX = 107;
/** Timers (setTimeout) hold at most 2^31-1 ms; longer delays fire at once, so bounds stay well below. */
const DAY_S = 86_400;

const ScopeSchema = z.enum(['all', 'containers', 'host']);
/** One group of syscall events: all on, all off, or per event type (checked by the syscall sensor's rules). */
const eventGroup = z.union([z.boolean(), z.record(z.string(), z.unknown())], { error: 'expected true, false or a mapping of event types to true/false (see docs/syscalls.md)' });

function isHostPort(v: string): boolean {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(v);
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}

export const ConfigSchema = z
  .object({
    agent: z
      .object({
        /** API unix socket, created 0600. */
        socket: fsPath.refine((v) => Buffer.byteLength(v) <= SUN_PATH_MAX, `must be at most ${SUN_PATH_MAX} bytes (the limit of a unix socket path)`).default('/run/vigil/vigil.sock'),
        /** Optional TCP listen address ("127.0.0.1:9750"): refused unless a token is set. */
        listen: z
          .string()
          .refine((v) => v === '' || isHostPort(v), 'expected host:port with a port from 1 to 65535 ("127.0.0.1:9750", "[::1]:9750"), or "" for none')
          .default(''),
        token: z.string().default(''),
        tokenFile: z.string().refine((v) => !v.includes('\0'), 'must not contain a NUL byte').default(''),
        dataDir: fsPath.default('/var/lib/vigil'),
        metrics: z.boolean().default(true),
        /**
         * Keep the kernel's BPF run-time statistics on while running, so that status and /metrics report
         * each program's run count and run time. Off by default: it adds two clock reads to every program run.
         */
        probeStats: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    ring: z
      .object({
        /** Size of the shared ring buffer (a power of two, MiB). */
        sizeMiB: positive.max(1024).refine((v) => (v & (v - 1)) === 0, 'must be a power of two').default(16),
        batchDelayMs: positive.max(100).default(1),
        /**
         * Longest wait between drains while a stream stays sparse (ms): the latency bound of a quiet host's
         * events. Longer batches cost less CPU per event; a filling ring wakes the reader at once whatever it is.
         */
        maxBatchDelayMs: positive.max(1000).default(32),
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
        subscriberQueue: positive.max(1_000_000).default(10_000),
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
        exitedGraceSeconds: nonneg.max(DAY_S).default(30),
        /** At most the kernel's pid_max limit: more live processes cannot exist. */
        maxEntries: positive.max(4_194_304).default(131_072),
        /** Scrubbing rules (see docs/process-scrubbing.md); validated by the scrubber. */
        scrub: z.record(z.string(), z.unknown()).default({}),
      })
      .strict()
      .prefault({}),
    containers: z
      .object({
        enabled: z.boolean().default(true),
        /** "auto", or the runtime sockets to use. */
        runtimes: z
          .union([z.literal('auto'), z.array(z.object({ runtime: z.enum(['docker', 'podman', 'containerd', 'cri-o']), socket: fsPath }).strict())], {
            error: 'expected "auto" or a list of { runtime: docker|podman|containerd|cri-o, socket: <path> }',
          })
          .default('auto'),
        expirySeconds: nonneg.max(3600).default(5),
        enrichTimeoutMs: positive.max(60_000).default(2000),
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
         * docs/syscalls.md). Defaults keep the hot syscalls quiet: among file events only modifications of
         * sensitive paths and reads of secret ones, filtered in the kernel; network and the rare
         * security-relevant syscalls in full.
         */
        files: eventGroup.default({ sensitiveWrites: true, secretReads: true }),
        network: eventGroup.default(true),
        other: eventGroup.default({ ptrace: 'attach', mount: true, umount: true, moduleLoad: true, bpf: 'load', memfdCreate: true, setns: true, unshare: true }),
        /** Where open events take their arguments: at exit from the saved registers (cheaper), or saved at entry (docs/syscalls.md). */
        openArgs: z.enum(['auto', 'exit', 'entry'], { error: 'expected "auto", "exit" or "entry"' }).default('auto'),
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
        /** Prefixes whose read-only open is flagged secret (default: password, sudo and PAM files, root's SSH keys). */
        secretPaths: z.array(z.string().startsWith('/')).optional(),
        /** Prefixes of log files: one truncated is flagged logTruncated, one unlinked or renamed away logRemoved, one renamed over logReplaced (default: /var/log/). */
        logPaths: z.array(z.string().startsWith('/')).optional(),
        /** Resolve relative paths and write-opens to absolute paths; 'all' for every open (about 0.5 µs each). */
        resolvePaths: z.union([z.boolean(), z.literal('all')], { error: 'expected true, false or "all"' }).default(true),
      })
      .strict()
      .prefault({}),
    /**
     * Detection rules (docs/rules.md): Falco-style lists, macros and rules with CEL conditions. Compiled whole
     * when the configuration is validated (a bad rule is a bad configuration); files are read again by a reload.
     */
    rules: z
      .object({
        enabled: z.boolean().default(true),
        /** The rule set shipped with vigil (src/rules/default.yaml), loaded before the files. */
        defaults: z.boolean().default(true),
        /** Rule files (YAML), loaded in order after the defaults: a later item of the same name overrides. */
        files: z.array(fsPath).default([]),
        /** Rule items written in the configuration itself, loaded last (the same format as a file's items). */
        inline: z.array(z.unknown()).default([]),
        /** Names of rules to turn off. */
        disabled: z.array(z.string().min(1)).default([]),
        /** When not empty, only rules with one of these tags are on (Falco's -t). */
        enabledTags: z.array(z.string().min(1)).default([]),
        /** Rules with one of these tags are off (Falco's -T). */
        disabledTags: z.array(z.string().min(1)).default([]),
        /** Rules below this priority are not checked. */
        minPriority: z.enum(PRIORITIES, { error: `expected one of ${PRIORITIES.join(', ')}` }).default('debug'),
        /** Events waiting to be checked; beyond it they are dropped (counted in rules.dropped). */
        queue: positive.max(1_000_000).default(16_384),
        /**
         * Carry out rules' actions (kill: signal the event's process). Off by default: each alert then says what
         * its actions would have done ("dry-run"), so a rule set can be tried before it is put in force.
         */
        enforce: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    /**
     * Sink options, validated by the sink factory (src/sinks). Configuring one sink keeps the defaults of
     * the others: stdout and the store stay on unless `enabled: false` says otherwise.
     */
    sinks: z
      .record(z.string(), z.unknown())
      .default({})
      .transform((s) => merge(structuredClone(DEFAULT_SINKS), s) as Record<string, unknown>), // a copy: configs are mutable, the defaults are not
  })
  .strict();

export type VigilConfig = z.infer<typeof ConfigSchema>;

/** Sinks on by default: events on stdout, and in the store that `vigil events` reads. */
const DEFAULT_SINKS = { stdout: { enabled: true }, store: { enabled: true } };

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
  for (const [k, v] of Object.entries(over)) {
    // Own keys only, defined rather than assigned: a "__proto__" key from YAML must stay a (rejected) field,
    // not become the object's prototype, whose fields validation would then read without seeing them.
    const prev = Object.hasOwn(base, k) ? base[k] : undefined;
    Object.defineProperty(out, k, { value: merge(prev, v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** YAML options for config input: no warnings on the process's stderr (they become errors here instead). */
const YAML_OPTIONS = { logLevel: 'error', uniqueKeys: true, prettyErrors: true } as const;

/** Parses "a.b.c=value" into a nested object; values are YAML scalars ("true", "5", "[a, b]"). */
export function parseSet(expr: string): Record<string, unknown> {
  const eq = expr.indexOf('=');
  if (eq <= 0) throw new ConfigError('--set', [{ path: expr || '""', message: 'expected key.path=value, e.g. --set ring.sizeMiB=32' }]);
  const keys = expr.slice(0, eq).split('.');
  if (keys.some((k) => !/^[A-Za-z][\w-]*$/.test(k))) throw new ConfigError('--set', [{ path: expr.slice(0, eq), message: 'not a configuration path (dot-separated field names, e.g. ring.sizeMiB)' }]);
  // The value is YAML ("32", "true", "[a, b]"); what does not parse cleanly is taken as the string typed.
  const text = expr.slice(eq + 1);
  let value: unknown = text;
  try {
    const doc = parseDocument(text, YAML_OPTIONS);
    if (!doc.errors.length && !doc.warnings.length) value = doc.toJS({ maxAliasCount: 100 });
  } catch {
    value = text;
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
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (err) {
    throw new ConfigError(path, [{ path: '(file)', message: `cannot read it: ${(err as Error).message}` }]);
  }
  let text: string;
  try {
    // Strict: a lenient decode would turn a stray byte into U+FFFD inside a path or a token, silently.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigError(path, [{ path: invalidUtf8At(bytes), message: 'not valid UTF-8; save the file as UTF-8' }]);
  }
  try {
    const doc = parseDocument(text, YAML_OPTIONS);
    // Errors and warnings alike (an unknown tag is a warning to YAML): a config must mean exactly what it says.
    const problem = doc.errors[0] ?? doc.warnings[0];
    if (problem) throw problem;
    const js = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (js !== null && js !== undefined && !isObject(js)) throw new ConfigError(path, [{ path: '(root)', message: 'expected a mapping of sections (agent, ring, process, ...)' }]);
    return js ?? {};
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const e = err as YAMLParseError;
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '(file)';
    let message = (e.message ?? String(err)).split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    if (e.code === 'MULTIPLE_DOCS') message = 'the file holds more than one YAML document ("---"); put everything in one';
    else if (/Maximum call stack size exceeded/.test(message)) message = 'nested too deeply';
    throw new ConfigError(path, [{ path: where, message }]);
  }
}

/** "line L, column C" of the first byte that is not valid UTF-8. */
function invalidUtf8At(b: Buffer): string {
  const dec = new TextDecoder('utf-8', { fatal: true });
  let line = 1;
  let col = 1;
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    let ok = n > 0 && i + n <= b.length;
    if (ok && n > 1) {
      try {
        dec.decode(b.subarray(i, i + n));
      } catch {
        ok = false;
      }
    }
    if (!ok) return `line ${line}, column ${col}`;
    if (c === 0x0a) {
      line++;
      col = 1;
    } else col++;
    i += n;
  }
  return '(file)';
}

function describe(v: unknown): string {
  if (typeof v === 'string') return v === '' ? 'an empty string' : JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null) return 'null (an empty value)';
  if (v instanceof Uint8Array) return 'binary data';
  if (Array.isArray(v)) return 'a list';
  if (isObject(v)) return 'a mapping';
  return String(v);
}

const TYPE_NAMES: Record<string, string> = { int: 'an integer', number: 'a number', string: 'a string', boolean: 'true or false', object: 'a mapping', array: 'a list' };

/** What a schema issue expected, in the words of the configuration ("must be at most 1024"). */
function issueText(i: z.core.$ZodIssue): string {
  const unit = (o: unknown) => (o === 'string' ? ' characters' : o === 'array' ? ' entries' : '');
  switch (i.code) {
    case 'invalid_type':
      return `expected ${TYPE_NAMES[i.expected] ?? i.expected}`;
    case 'invalid_value':
      return `expected one of ${i.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_big':
      return `must be ${i.inclusive === false ? 'less than' : 'at most'} ${String(i.maximum)}${unit(i.origin)}`;
    case 'too_small':
      return i.origin === 'string' && Number(i.minimum) === 1 ? 'must not be empty' : `must be ${i.inclusive === false ? 'more than' : 'at least'} ${String(i.minimum)}${unit(i.origin)}`;
    default:
      return i.message.replace(/^Invalid (string|input): /, '');
  }
}

/** The fields the schema knows at `path` (for "unknown field" messages). */
function knownFields(path: readonly PropertyKey[]): string[] {
  type Node = { _zod: { def: { innerType?: Node; in?: Node; shape?: Record<string, Node> } } };
  const unwrap = (n: Node | undefined): Node | undefined => {
    while (n && (n._zod.def.innerType || n._zod.def.in)) n = n._zod.def.innerType ?? n._zod.def.in;
    return n;
  };
  let n = unwrap(ConfigSchema as unknown as Node);
  for (const k of path) n = unwrap(n?._zod.def.shape?.[String(k)]);
  return Object.keys(n?._zod.def.shape ?? {});
}

/**
 * Own "__proto__" keys anywhere in the input (YAML and JSON make them). Strict sections reject them, but
 * free-form ones (sinks, process.scrub) would lose them silently when parsed, so they are reported here.
 */
function protoKeys(raw: unknown): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const stack: [unknown, string[]][] = [[raw, []]];
  while (stack.length && out.length < 10) {
    const [v, p] = stack.pop()!;
    if (typeof v !== 'object' || v === null || p.length > 32) continue;
    if (Object.hasOwn(v, '__proto__')) out.push({ path: p.length ? p.join('.') : '(root)', message: 'unknown field "__proto__"' });
    for (const [k, x] of Object.entries(v)) stack.push([x, [...p, k]]);
  }
  return out;
}

const quoteKey = (k: string) => JSON.stringify(k.length > 40 ? `${k.slice(0, 40)}…` : k);

/** The value at `path` in `raw`, own properties only. */
function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let got: unknown = raw;
  for (const k of path) got = (isObject(got) || Array.isArray(got)) && Object.hasOwn(got, k as string) ? (got as Record<string, unknown>)[k as string] : undefined;
  return got;
}

/**
 * The checks that belong to other components (sinks, syscall events, scrubbing) run here too, so that a bad
 * value is reported with its configuration path before anything is created, not when the agent builds it.
 */
function componentIssues(c: VigilConfig): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const check = (fn: () => unknown, rename: (msg: string) => { path: string; message: string }) => {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      issues.push(rename(err.message));
    }
  };
  const split = (msg: string, sep: string, section: string) => {
    const i = msg.indexOf(sep);
    return i <= 0 ? { path: section, message: msg } : { path: msg.slice(0, i), message: msg.slice(i + sep.length) };
  };
  check(
    () => validateSinks(c.sinks, { dataDir: c.agent.dataDir }),
    (m) => split(m, ': ', 'sinks'),
  );
  check(
    () => normalizeSyscallConfig(syscallSensorConfig(c)),
    (m) => {
      // The sensor names its own fields ("syscalls.files.x ..."); here they are events.* and filters.*.
      const { path, message } = split(m, ' ', 'events');
      const p = path.replace(/^syscalls\.(files|network|other)\b/, 'events.$1').replace(/^syscalls\.filters\b/, 'filters').replace(/^syscalls$/, 'events');
      return { path: p.replace(/\[(\d+)\]/g, '.$1'), message: message.replace(/^is /, '') };
    },
  );
  // Own fields only: the scrubber's own check (`k in defaults`) lets "constructor" or "__proto__" through.
  const strange = Object.keys(c.process.scrub).filter((k) => !Object.hasOwn(DEFAULT_SCRUB_CONFIG, k));
  if (strange.length) {
    const known = Object.keys(DEFAULT_SCRUB_CONFIG).join(', ');
    issues.push({ path: 'process.scrub', message: `unknown field${strange.length > 1 ? 's' : ''} ${strange.slice(0, 5).map(quoteKey).join(', ')} (known: ${known})` });
  } else {
    check(
      () => new Scrubber(c.process.scrub),
      (m) => ({ path: 'process.scrub', message: m.replace(/^scrub config: /, '') }),
    );
  }
  try {
    ruleSetFor(c.rules);
  } catch (err) {
    if (!(err instanceof RuleError)) throw err;
    issues.push(...err.issues); // each names its file or rules.inline item
  }
  return issues;
}

/**
 * Validates a merged raw config: the schema, then the sections other components own (sinks, syscall
 * events and filters, process.scrub). Pure: the input is not changed and the result shares nothing with
 * the defaults. Throws ConfigError listing every bad field with its path (one issue per field) and what it
 * expects. `source` names where the values came from, for the message.
 */
export function validateConfig(raw: unknown, source = 'configuration'): VigilConfig {
  const hidden = protoKeys(raw);
  if (hidden.length) throw new ConfigError(source, hidden);
  const r = ConfigSchema.safeParse(raw ?? {});
  if (r.success) {
    const issues = componentIssues(r.data);
    if (issues.length) throw new ConfigError(source, issues);
    return r.data;
  }
  let issues = r.error.issues.map((i) => {
    const path = i.path.length ? i.path.map(String).join('.') : '(root)';
    let message: string;
    if (i.code === 'unrecognized_keys') {
      const known = knownFields(i.path);
      message = `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.slice(0, 5).map(quoteKey).join(', ')}${i.keys.length > 5 ? ', …' : ''}${known.length ? ` (known: ${known.join(', ')})` : ''}`;
    } else message = `${issueText(i)}, got ${describe(valueAt(raw, i.path))}`;
    return { path, message, unsafe: i.code === 'too_big' && Number(i.maximum) === Number.MAX_SAFE_INTEGER };
  });
  // One issue per field: a huge number also fails zod's implicit safe-integer bound (the field's own bound
  // says more), and -1 for a power of two is both too small and not a power of two.
  issues = issues.filter((i) => !i.unsafe || !issues.some((j) => j !== i && j.path === i.path));
  issues = issues.filter((i, n) => issues.findIndex((j) => j.path === i.path) === n);
  throw new ConfigError(
    source,
    issues.map(({ path, message }) => ({ path, message })),
  );
}

/** The syscall sensor's part of a configuration: its event groups and the filters it writes into maps. */
export function syscallSensorConfig(c: VigilConfig): SyscallSensorConfig {
  return {
    files: c.events.files as SyscallSensorConfig['files'],
    network: c.events.network as SyscallSensorConfig['network'],
    other: c.events.other as SyscallSensorConfig['other'],
    filters: { comm: c.filters.comm, scope: c.filters.scope, pathPrefixes: c.filters.pathPrefixes, sensitivePaths: c.filters.sensitivePaths, secretPaths: c.filters.secretPaths, logPaths: c.filters.logPaths, resolvePaths: c.filters.resolvePaths },
    openArgs: c.events.openArgs,
  };
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
