// The syscall sensor's configuration: which event types are on and which filters apply, as users write it,
// validated field by field and normalised into what the kernel side reads (an op bitmask, config flags,
// comm and prefix lists). Bad input is rejected whole with an InvalidArgumentError naming the field; nothing
// here touches the kernel.
import { InvalidArgumentError } from '../bpf/errors.ts';
import { VIGIL_SYS_CFG_FLAGS, VIGIL_SYS_OP, SYSCALL_PATH_PREFIX } from '../events/layout.generated.ts';
import type { SyscallOp } from '../events/types.ts';

export interface FileEventsConfig {
  open?: boolean;
  unlink?: boolean;
  rmdir?: boolean;
  rename?: boolean;
  chmod?: boolean;
  chown?: boolean;
  mkdir?: boolean;
  /** truncate and ftruncate. */
  truncate?: boolean;
  /** Hard links: link and linkat. */
  link?: boolean;
  /** Symbolic links: symlink and symlinkat. */
  symlink?: boolean;
  /**
   * Modifications under `filters.sensitivePaths`, of every file event type not on in full: write-opens (write,
   * create or truncate), unlink, rmdir, rename (either path), chmod, chown, mkdir, truncate, link and symlink
   * (either path); and logs truncated or removed under `filters.logPaths`. Others are dropped in the kernel.
   */
  sensitiveWrites?: boolean;
  /** Read-only opens under `filters.secretPaths` (credentials, keys), even when `open` is off. */
  secretReads?: boolean;
}

export interface NetworkEventsConfig {
  connect?: boolean;
  accept?: boolean;
  bind?: boolean;
  listen?: boolean;
  /** TCP state changes (sock/inet_sock_set_state): no syscall hook. */
  tcpState?: boolean;
}

export interface OtherEventsConfig {
  /** 'attach': only requests that take control of a process (TRACEME, ATTACH, SEIZE, POKE*, SETREGS*). */
  ptrace?: boolean | 'attach';
  mount?: boolean;
  umount?: boolean;
  moduleLoad?: boolean;
  /** 'load': only MAP_CREATE, PROG_LOAD, PROG_ATTACH, RAW_TRACEPOINT_OPEN, BTF_LOAD, LINK_CREATE. */
  bpf?: boolean | 'load';
  memfdCreate?: boolean;
  setns?: boolean;
  unshare?: boolean;
}

export interface SyscallFiltersConfig {
  /** Process names (comm, at most 15 bytes): include keeps only these, exclude drops these. */
  comm?: { include?: string[]; exclude?: string[] };
  /** 'containers': only tasks in known container cgroups (vigil_containers); 'host': only the others. */
  scope?: 'all' | 'containers' | 'host';
  /** File events are reported only for paths under one of these (byte prefixes, absolute, at most 16). */
  pathPrefixes?: string[];
  /** Prefixes whose modification is flagged `sensitive` (default: system and credential directories). */
  sensitivePaths?: string[];
  /** Prefixes whose read-only open is flagged `secret` (default: password, sudo and PAM files, root's SSH keys). */
  secretPaths?: string[];
  /**
   * Prefixes of log files (default: /var/log/): truncating one (an O_TRUNC open, truncate, ftruncate) is flagged
   * `logTruncated`, unlinking it or renaming it away `logRemoved`, renaming another file over it `logReplaced`.
   */
  logPaths?: string[];
  /** Never report the agent's own process (default true). */
  excludeSelf?: boolean;
  /**
   * Resolve paths (default true): relative paths become directory + path, and write-opens, fchmod, fchown and ftruncate
   * report the file's own path (symlinks followed). 'all': every successful open too, at about 1 us per open
   * (a dentry walk); otherwise a read-only open of an absolute path is reported as given.
   */
  resolvePaths?: boolean | 'all';
}

export interface SyscallSensorConfig {
  /** true: every file event type. */
  files?: boolean | FileEventsConfig;
  network?: boolean | NetworkEventsConfig;
  other?: boolean | OtherEventsConfig;
  filters?: SyscallFiltersConfig;
  /** Bytes read of each path argument, NUL included (default and maximum 4096). */
  maxPathBytes?: number;
  /**
   * Where open events take their arguments. "exit": one program at the syscall's exit reads them from the
   * registers saved at entry and the path from the caller's memory (about 0.45 us less per open than an entry
   * hook; needs bpf_task_pt_regs, 5.15+). "entry": saved by an entry program, the path read before the kernel
   * reads it, which narrows the window in which another thread of the caller can rewrite it. "auto"
   * (default): "exit" where the kernel has it. Fixed at load.
   */
  openArgs?: 'auto' | 'exit' | 'entry';
}

export const DEFAULT_SENSITIVE_PATHS: readonly string[] = [
  '/etc/', '/root/.ssh/', '/boot/', '/bin/', '/sbin/', '/usr/bin/', '/usr/sbin/', '/lib/', '/lib64/', '/usr/lib/', '/usr/lib64/',
  '/usr/local/bin/', '/usr/local/sbin/', '/var/spool/cron/',
];

/**
 * Files whose reading is a credential access (after Falco's sensitive_file_names and sudoers.d, with the
 * group and old-password files and root's SSH keys), as byte prefixes: "/etc/shadow" covers "/etc/shadow-".
 */
export const DEFAULT_SECRET_PATHS: readonly string[] = [
  '/etc/shadow', '/etc/gshadow', '/etc/sudoers', '/etc/sudoers.d/', '/etc/pam.conf', '/etc/security/opasswd', '/etc/security/pwquality.conf',
  '/root/.ssh/',
];

/** Where logs live: truncating one erases evidence (Falco's "Clear Log Activities"). */
export const DEFAULT_LOG_PATHS: readonly string[] = ['/var/log/'];

/** Bytes of a secret prefix's head (syscall_filter_config.secret_head: a u64). */
export const SECRET_HEAD_BYTES = 8;
export const PREFIX_MAX = 16; // VIGIL_SYS_PREFIX_MAX
export const PREFIX_LEN = SYSCALL_PATH_PREFIX.prefix.size;
export const COMM_MAX = 15;
export const COMM_ENTRIES_MAX = 1024; // sys_comm_filter max_entries
export const PATH_MAX = 4096;

/** Config keys -> ops. */
const FILE_KEYS: Record<Exclude<keyof FileEventsConfig, 'sensitiveWrites' | 'secretReads'>, SyscallOp> = {
  open: 'open', unlink: 'unlink', rmdir: 'rmdir', rename: 'rename', chmod: 'chmod', chown: 'chown', mkdir: 'mkdir', truncate: 'truncate', link: 'link', symlink: 'symlink',
};
const NET_KEYS: Record<keyof NetworkEventsConfig, SyscallOp> = { connect: 'connect', accept: 'accept', bind: 'bind', listen: 'listen', tcpState: 'tcp_state' };
const OTHER_KEYS: Record<keyof OtherEventsConfig, SyscallOp> = {
  ptrace: 'ptrace', mount: 'mount', umount: 'umount', moduleLoad: 'module_load', bpf: 'bpf', memfdCreate: 'memfd_create', setns: 'setns', unshare: 'unshare',
};

/** The event types of each group of syscall events (file, net, sys records), as decode.ts decodes them. */
export const OPS_BY_GROUP: Readonly<Record<'file' | 'net' | 'sys', readonly SyscallOp[]>> = {
  file: Object.values(FILE_KEYS),
  net: Object.values(NET_KEYS),
  sys: Object.values(OTHER_KEYS),
};

/** The kernel's op number of each event type (enum vigil_sys_op). */
export const OP_NUMBERS: Record<SyscallOp, number> = {
  open: VIGIL_SYS_OP.OPEN, unlink: VIGIL_SYS_OP.UNLINK, rmdir: VIGIL_SYS_OP.RMDIR, rename: VIGIL_SYS_OP.RENAME, chmod: VIGIL_SYS_OP.CHMOD,
  chown: VIGIL_SYS_OP.CHOWN, mkdir: VIGIL_SYS_OP.MKDIR, connect: VIGIL_SYS_OP.CONNECT, accept: VIGIL_SYS_OP.ACCEPT, bind: VIGIL_SYS_OP.BIND,
  listen: VIGIL_SYS_OP.LISTEN, tcp_state: VIGIL_SYS_OP.TCP_STATE, ptrace: VIGIL_SYS_OP.PTRACE, mount: VIGIL_SYS_OP.MOUNT, umount: VIGIL_SYS_OP.UMOUNT,
  module_load: VIGIL_SYS_OP.MODULE_LOAD, bpf: VIGIL_SYS_OP.BPF, memfd_create: VIGIL_SYS_OP.MEMFD_CREATE, setns: VIGIL_SYS_OP.SETNS,
  unshare: VIGIL_SYS_OP.UNSHARE, truncate: VIGIL_SYS_OP.TRUNCATE, link: VIGIL_SYS_OP.LINK, symlink: VIGIL_SYS_OP.SYMLINK,
};

/** A validated configuration in the kernel's terms. */
export interface NormalizedSyscallConfig {
  /** Event types whose probes are attached. */
  ops: Set<SyscallOp>;
  /** Bit (1 << op) per event type, for sys_config.enabled_ops. */
  enabledOps: bigint;
  /** The enabled types reported only as sensitive modifications, truncated logs or secret reads (sys_config.restricted_ops). */
  restrictedOps: bigint;
  /** VIGIL_SYSCFG_* */
  flags: number;
  scope: 'all' | 'containers' | 'host';
  commInclude: string[];
  commExclude: string[];
  pathPrefixes: string[];
  sensitivePaths: string[];
  secretPaths: string[];
  logPaths: string[];
  excludeSelf: boolean;
  maxPathBytes: number;
  openArgs: 'auto' | 'exit' | 'entry';
}

function fail(field: string, what: string): never {
  throw new InvalidArgumentError(`syscalls${field ? `.${field}` : ''} ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(field: string, v: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(v)) if (!allowed.includes(k)) fail(field ? `${field}.${k}` : k, `is not a known option (known: ${allowed.join(', ')})`);
}

function group<K extends string>(field: string, v: unknown, keys: readonly K[], extra: Record<string, readonly unknown[]> = {}): Partial<Record<K, unknown>> {
  if (v === undefined || v === false) return {};
  if (v === true) return Object.fromEntries(keys.map((k) => [k, true])) as Partial<Record<K, unknown>>;
  if (!isObject(v)) fail(field, `must be a boolean or an object, got ${JSON.stringify(v)}`);
  checkKeys(field, v, keys);
  for (const [k, x] of Object.entries(v)) {
    const allowed = [true, false, undefined, ...(extra[k] ?? [])];
    if (!allowed.includes(x)) fail(`${field}.${k}`, `must be ${allowed.filter((a) => a !== undefined).map((a) => JSON.stringify(a)).join(' or ')}, got ${JSON.stringify(x)}`);
  }
  return v as Partial<Record<K, unknown>>;
}

function stringList(field: string, v: unknown, max: number, check: (s: string, field: string) => void): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(field, `must be an array of strings, got ${JSON.stringify(v)}`);
  if (v.length > max) fail(field, `has ${v.length} entries; at most ${max} are supported`);
  v.forEach((s, i) => {
    if (typeof s !== 'string') fail(`${field}[${i}]`, `must be a string, got ${JSON.stringify(s)}`);
    check(s, `${field}[${i}]`);
  });
  return [...new Set(v as string[])];
}

function checkComm(s: string, field: string): void {
  const n = Buffer.byteLength(s);
  if (n === 0) fail(field, 'is empty');
  if (n > COMM_MAX) fail(field, `("${s}") is ${n} bytes; the kernel keeps at most ${COMM_MAX} bytes of a process name, so it could never match`);
  if (s.includes('\0')) fail(field, 'contains a NUL byte');
}

function checkPrefix(s: string, field: string): void {
  if (!s.startsWith('/')) fail(field, `("${s}") must be an absolute path`);
  if (Buffer.byteLength(s) > PREFIX_LEN) fail(field, `is longer than ${PREFIX_LEN} bytes`);
  if (s.includes('\0')) fail(field, 'contains a NUL byte');
}

/**
 * Validates a configuration and puts it in the kernel's terms. Throws InvalidArgumentError naming the field
 * ("syscalls.filters.comm.include[2] ...") at the first problem.
 */
export function normalizeSyscallConfig(c: SyscallSensorConfig = {}): NormalizedSyscallConfig {
  const raw: unknown = c;
  if (!isObject(raw)) fail('', `configuration must be an object, got ${JSON.stringify(raw)}`);
  checkKeys('', raw, ['files', 'network', 'other', 'filters', 'maxPathBytes', 'openArgs']);
  const files = group('files', c.files, [...Object.keys(FILE_KEYS), 'sensitiveWrites', 'secretReads'] as (keyof FileEventsConfig)[]);
  const net = group('network', c.network, Object.keys(NET_KEYS) as (keyof NetworkEventsConfig)[]);
  const other = group('other', c.other, Object.keys(OTHER_KEYS) as (keyof OtherEventsConfig)[], { ptrace: ['attach'], bpf: ['load'] });
  const f: SyscallFiltersConfig = c.filters ?? {};
  const rawFilters: unknown = f;
  if (!isObject(rawFilters)) fail('filters', `must be an object, got ${JSON.stringify(f)}`);
  checkKeys('filters', rawFilters, ['comm', 'scope', 'pathPrefixes', 'sensitivePaths', 'secretPaths', 'logPaths', 'excludeSelf', 'resolvePaths']);

  const ops = new Set<SyscallOp>();
  for (const [k, op] of Object.entries(FILE_KEYS)) if ((files as Record<string, unknown>)[k]) ops.add(op);
  for (const [k, op] of Object.entries(NET_KEYS)) if ((net as Record<string, unknown>)[k]) ops.add(op);
  for (const [k, op] of Object.entries(OTHER_KEYS)) if ((other as Record<string, unknown>)[k]) ops.add(op);

  let flags = 0;
  if (f.resolvePaths !== undefined && typeof f.resolvePaths !== 'boolean' && f.resolvePaths !== 'all') fail('filters.resolvePaths', `must be true, false or "all", got ${JSON.stringify(f.resolvePaths)}`);
  if (f.excludeSelf !== undefined && typeof f.excludeSelf !== 'boolean') fail('filters.excludeSelf', `must be a boolean, got ${JSON.stringify(f.excludeSelf)}`);
  if (f.resolvePaths !== false) flags |= VIGIL_SYS_CFG_FLAGS.RESOLVE;
  if (f.resolvePaths === 'all') flags |= VIGIL_SYS_CFG_FLAGS.RESOLVE_ALL;
  if (other.ptrace === 'attach') flags |= VIGIL_SYS_CFG_FLAGS.PTRACE_ATTACH;
  if (other.bpf === 'load') flags |= VIGIL_SYS_CFG_FLAGS.BPF_LOAD;

  const scope = f.scope ?? 'all';
  if (!['all', 'containers', 'host'].includes(scope)) fail('filters.scope', `must be "all", "containers" or "host", got ${JSON.stringify(scope)}`);

  const comm = f.comm ?? {};
  const rawComm: unknown = comm;
  if (!isObject(rawComm)) fail('filters.comm', `must be an object with include and/or exclude, got ${JSON.stringify(comm)}`);
  checkKeys('filters.comm', rawComm, ['include', 'exclude']);
  const commInclude = stringList('filters.comm.include', comm.include, COMM_ENTRIES_MAX, checkComm);
  const commExclude = stringList('filters.comm.exclude', comm.exclude, COMM_ENTRIES_MAX, checkComm);
  for (const x of commInclude) if (commExclude.includes(x)) fail('filters.comm', `names "${x}" in both include and exclude`);
  if (commInclude.length + commExclude.length > COMM_ENTRIES_MAX) fail('filters.comm', `has more than ${COMM_ENTRIES_MAX} names in all`);

  const pathPrefixes = stringList('filters.pathPrefixes', f.pathPrefixes, PREFIX_MAX, checkPrefix);
  const sensitivePaths = f.sensitivePaths === undefined ? [...DEFAULT_SENSITIVE_PATHS] : stringList('filters.sensitivePaths', f.sensitivePaths, PREFIX_MAX, checkPrefix);
  const secretPaths = f.secretPaths === undefined ? [...DEFAULT_SECRET_PATHS] : stringList('filters.secretPaths', f.secretPaths, PREFIX_MAX, checkPrefix);
  const logPaths = f.logPaths === undefined ? [...DEFAULT_LOG_PATHS] : stringList('filters.logPaths', f.logPaths, PREFIX_MAX, checkPrefix);

  // The quiet defaults: a file type not asked for in full is still on, restricted in the kernel to what
  // passes (a sensitive modification, a truncated log, a secret read).
  const restricted = new Set<SyscallOp>();
  if (files.sensitiveWrites) {
    if (!sensitivePaths.length) fail('files.sensitiveWrites', 'needs at least one entry in filters.sensitivePaths');
    flags |= VIGIL_SYS_CFG_FLAGS.SENSITIVE_WRITES;
    for (const [k, op] of Object.entries(FILE_KEYS)) if (!(files as Record<string, unknown>)[k]) restricted.add(op);
  }
  if (files.secretReads) {
    if (!secretPaths.length) fail('files.secretReads', 'needs at least one entry in filters.secretPaths');
    flags |= VIGIL_SYS_CFG_FLAGS.SECRET_READS;
    if (!files.open) restricted.add('open');
  }
  // Every prefix 8 bytes or longer: the kernel settles a read whose first 8 bytes start none of them with one
  // lookup, turned down when restricted, and not flagged secret without the prefix loop when reported (reads
  // are flagged whether or not secretReads is on).
  if (secretPaths.length && secretPaths.every((p) => Buffer.byteLength(p) >= SECRET_HEAD_BYTES)) flags |= VIGIL_SYS_CFG_FLAGS.SECRET_HEADS;
  let restrictedOps = 0n;
  for (const op of restricted) {
    ops.add(op);
    restrictedOps |= 1n << BigInt(OP_NUMBERS[op]);
  }

  const maxPathBytes = c.maxPathBytes ?? PATH_MAX;
  if (!Number.isInteger(maxPathBytes) || maxPathBytes < 2 || maxPathBytes > PATH_MAX) fail('maxPathBytes', `must be an integer between 2 and ${PATH_MAX}, got ${c.maxPathBytes}`);

  const openArgs = c.openArgs ?? 'auto';
  if (!['auto', 'exit', 'entry'].includes(openArgs)) fail('openArgs', `must be "auto", "exit" or "entry", got ${JSON.stringify(c.openArgs)}`);

  let enabledOps = 0n;
  for (const op of ops) enabledOps |= 1n << BigInt(OP_NUMBERS[op]);
  return {
    ops,
    enabledOps,
    restrictedOps,
    flags,
    scope,
    commInclude,
    commExclude,
    pathPrefixes,
    sensitivePaths,
    secretPaths,
    logPaths,
    excludeSelf: f.excludeSelf !== false,
    maxPathBytes,
    openArgs,
  };
}
