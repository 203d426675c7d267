// The syscall sensor's in-kernel filters: writes a normalised configuration into the sensor's maps (config,
// comm lists, path prefixes) and reads back, per CPU summed, what each filter dropped. The maps are live:
// apply() may run at any time while the programs are attached, and takes effect on the next syscall.
import { InvalidArgumentError } from '../bpf/errors.ts';
import { u32Key as u32, type BpfMap } from '../bpf/map.ts';
import { SIZEOF, SYSCALL_FILTER_CONFIG, SYSCALL_PATH_PREFIX, VIGIL_KILL_OP, VIGIL_SYS_CFG_FLAGS, VIGIL_SYS_COMM_MODE, VIGIL_SYS_SCOPE, VIGIL_SYS_STAT } from '../events/layout.generated.ts';
import type { Manager } from '../manager/manager.ts';
import { encodeKillState, KillTable, NO_KILL, NO_KILL_STATUS, putMasked, type KernelKillSet, type KillRulesStatus, type KillState } from '../rules/kernel-maps.ts';
import type { KillScopes } from '../rules/kill-scopes.ts';
import type { KernelSelector } from '../rules/kernel.ts';
import type { SyscallOp } from '../events/types.ts';
import { OP_NUMBERS, PREFIX_MAX, SECRET_HEAD_BYTES, type NormalizedSyscallConfig } from './config.ts';
import { encodeSecretDir, secretDirs, type SecretDir } from './secret-dirs.ts';

/** What the filters dropped since load, summed over CPUs (map sys_filter_stats). */
export interface SyscallFilterCounters {
  /** Syscall entries (and TCP state changes) the sensor's programs saw. */
  entered: number;
  /** Dropped because the event type is off. */
  disabled: number;
  /** The agent's own syscalls. */
  self: number;
  /** Outside the container/host scope. */
  scope: number;
  /** By the comm include/exclude lists. */
  comm: number;
  /** No path prefix matched. */
  path: number;
  /** Restricted file events (the default) that were neither a sensitive modification, a truncated log nor a secret read. */
  notSensitive: number;
  /** ptrace/bpf requests outside the configured subset. */
  args: number;
  /** Lost: no per-thread slot to pair entry and exit. */
  noPending: number;
  /** Opens an in-kernel kill rule matched (sent, dry-run, refused or failed), and those whose process was signalled: counted even when the ring lost the record. */
  killMatched: number;
  killSent: number;
  /** Connects an in-kernel deny rule matched (denied, dry-run or refused), and those denied. */
  denyMatched: number;
  denied: number;
  /**
   * io_uring requests of a reported kind (openat, unlinkat, connect, ...) that passed the filters at submission;
   * of those, reported without their result, and among these, those reported at submission because the table
   * pairing requests with their completions was full.
   */
  ioUring: number;
  ioUringNoResult: number;
  ioUringTableFull: number;
}

const COUNTER_INDEX: Record<keyof SyscallFilterCounters, number> = {
  entered: VIGIL_SYS_STAT.ENTERED,
  disabled: VIGIL_SYS_STAT.DROP_DISABLED,
  self: VIGIL_SYS_STAT.DROP_SELF,
  scope: VIGIL_SYS_STAT.DROP_SCOPE,
  comm: VIGIL_SYS_STAT.DROP_COMM,
  path: VIGIL_SYS_STAT.DROP_PATH,
  notSensitive: VIGIL_SYS_STAT.DROP_NOT_SENSITIVE,
  args: VIGIL_SYS_STAT.DROP_ARGS,
  noPending: VIGIL_SYS_STAT.NO_PENDING,
  killMatched: VIGIL_SYS_STAT.KILL_MATCHED,
  killSent: VIGIL_SYS_STAT.KILL_SENT,
  denyMatched: VIGIL_SYS_STAT.DENY_MATCHED,
  denied: VIGIL_SYS_STAT.DENIED,
  ioUring: VIGIL_SYS_STAT.IOURING,
  ioUringNoResult: VIGIL_SYS_STAT.IOURING_NO_RESULT,
  ioUringTableFull: VIGIL_SYS_STAT.IOURING_TABLE_FULL,
};

const SCOPES = { all: VIGIL_SYS_SCOPE.ALL, containers: VIGIL_SYS_SCOPE.CONTAINERS, host: VIGIL_SYS_SCOPE.HOST } as const;

export interface SyscallFilterMaps {
  /** sys_kill_rules, sys_kill_values and sys_kill_scopes (absent: an object without kill rules; applyKill refuses). */
  killRules?: BpfMap;
  killValues?: BpfMap;
  killScopes?: BpfMap;
  config: BpfMap;
  comm: BpfMap;
  prefixes: BpfMap;
  sensitive: BpfMap;
  secret: BpfMap;
  /** sys_secret_dirs (secret-dirs.ts). */
  secretDirs: BpfMap;
  log: BpfMap;
  stats: BpfMap;
}

/**
 * The bytes of sys_config for a configuration, with the inode numbers of the secret prefixes' directories
 * (found when it is applied: secret-dirs.ts), which turn on the kernel's second look at secret reads.
 */
export function encodeFilterConfig(c: NormalizedSyscallConfig, selfTgid: number, secretDirInos: readonly bigint[] = [], kill: KillState = NO_KILL): Buffer {
  const b = Buffer.alloc(SIZEOF.syscall_filter_config);
  const F = SYSCALL_FILTER_CONFIG;
  b.writeBigUInt64LE(c.enabledOps, F.enabled_ops.offset);
  b.writeBigUInt64LE(c.restrictedOps, F.restricted_ops.offset);
  b.writeUInt32LE(c.excludeSelf ? selfTgid : 0, F.self_tgid.offset);
  b.writeUInt32LE(SCOPES[c.scope], F.scope.offset);
  b.writeUInt32LE((c.commInclude.length ? VIGIL_SYS_COMM_MODE.INCLUDE : 0) | (c.commExclude.length ? VIGIL_SYS_COMM_MODE.EXCLUDE : 0), F.comm_mode.offset);
  b.writeUInt32LE(c.pathPrefixes.length, F.prefix_count.offset);
  b.writeUInt32LE(c.sensitivePaths.length, F.sensitive_count.offset);
  b.writeUInt32LE(c.secretPaths.length, F.secret_count.offset);
  b.writeUInt32LE(c.logPaths.length, F.log_count.offset);
  b.writeUInt32LE(c.flags | (secretDirInos.length ? VIGIL_SYS_CFG_FLAGS.SECRET_DIRS : 0), F.flags.offset);
  // The heads only when every prefix has one (SECRET_HEADS): a shorter prefix is matched by the loop alone.
  const heads = c.flags & VIGIL_SYS_CFG_FLAGS.SECRET_HEADS ? [...new Set(c.secretPaths.map(secretHead))] : [];
  b.writeUInt32LE(heads.length, F.secret_head_count.offset);
  heads.forEach((h, i) => b.writeBigUInt64LE(h, F.secret_head.offset + 8 * i));
  b.writeUInt32LE(secretDirInos.length, F.secret_dir_count.offset);
  secretDirInos.forEach((ino, i) => b.writeBigUInt64LE(ino, F.secret_dir_ino.offset + 8 * i));
  encodeKillState(kill, b, F.kill.offset);
  return b;
}

/** The bytes of one sys_path_prefixes entry: the prefix zero-padded and its byte mask. */
export function encodePrefix(prefix: string): Buffer {
  const P = SYSCALL_PATH_PREFIX;
  const b = Buffer.alloc(SIZEOF.syscall_path_prefix);
  const n = putMasked(b, P, prefix, false);
  if (n === undefined) throw new InvalidArgumentError(`path prefix "${prefix}" is longer than ${P.prefix.size} bytes`);
  b.writeUInt32LE(n, P.len.offset);
  return b;
}

/** A secret prefix's head: its first 8 bytes, as the kernel loads a path's (a little-endian u64, zero-padded). */
export function secretHead(prefix: string): bigint {
  const k = Buffer.alloc(SECRET_HEAD_BYTES);
  k.write(prefix, 0, SECRET_HEAD_BYTES, 'utf8');
  return k.readBigUInt64LE(0);
}

/** The key of a comm in sys_comm_filter: 16 bytes, NUL-padded, as bpf_get_current_comm writes it. */
export function commKey(comm: string): Buffer {
  const k = Buffer.alloc(16);
  k.write(comm, 0, 15, 'utf8');
  return k;
}


/**
 * The secret directories the gate compares with under `c`: only where the heads turn reads down and paths may
 * be resolved (not where every path is resolved anyway).
 */
function gateDirs(c: NormalizedSyscallConfig): Map<bigint, SecretDir> {
  const F = VIGIL_SYS_CFG_FLAGS;
  const gate = (c.flags & F.SECRET_HEADS) !== 0 && (c.flags & F.RESOLVE) !== 0 && !(c.flags & F.RESOLVE_ALL);
  return gate ? secretDirs(c.secretPaths) : new Map<bigint, SecretDir>();
}

/** Whether two sets of secret directories would be written alike: the same inode numbers in the same order, each with the same entries. */
function sameDirs(a: Map<bigint, SecretDir>, b: Map<bigint, SecretDir>): boolean {
  if (a.size !== b.size) return false;
  const bs = [...b];
  let i = 0;
  for (const [ino, d] of a) {
    const [ino2, d2] = bs[i++]!;
    if (ino !== ino2 || d.any !== d2.any || d.path !== d2.path || d.names.join('\0') !== d2.names.join('\0')) return false;
  }
  return true;
}

/** A kill rule's file event types as sys_kill_rules.ops bits. */
function opBits(sel: KernelSelector): bigint {
  // A deny rule about unix socket paths: the unix connect hook's bit, in place of connect's.
  if (sel.unix) return 1n << BigInt(VIGIL_KILL_OP.UNIX_CONNECT);
  let ops = 0n;
  for (const op of sel.ops) {
    const n = OP_NUMBERS[op as SyscallOp];
    if (n === undefined) throw new InvalidArgumentError(`kill rule: ${op} is no syscall event type`);
    ops |= 1n << BigInt(n);
  }
  return ops;
}

export class SyscallFilters {
  readonly #maps: SyscallFilterMaps;
  readonly #selfTgid: number;
  #current: NormalizedSyscallConfig | undefined;
  #secretDirs = new Map<bigint, SecretDir>();
  readonly #killTable: KillTable | undefined;

  constructor(maps: SyscallFilterMaps, selfTgid = process.pid) {
    this.#maps = maps;
    this.#selfTgid = selfTgid;
    this.#killTable = maps.killRules && maps.killValues ? new KillTable(maps.killRules, maps.killValues, maps.killScopes) : undefined;
  }

  /** The kill rules' set in force (in the config: the filters' own updates keep it). */
  get #kill(): KillState {
    return this.#killTable?.state ?? NO_KILL;
  }

  /** The filter maps of a loaded syscall sensor. Throws NotFoundError when the object lacks one. */
  static fromManager(m: Manager, selfTgid = process.pid): SyscallFilters {
    return new SyscallFilters(
      { killRules: m.getMap('sys_kill_rules'), killValues: m.getMap('sys_kill_values'), killScopes: m.getMap('sys_kill_scopes'), config: m.getMap('sys_config'), comm: m.getMap('sys_comm_filter'), prefixes: m.getMap('sys_path_prefixes'), sensitive: m.getMap('sys_sensitive_prefixes'), secret: m.getMap('sys_secret_prefixes'), secretDirs: m.getMap('sys_secret_dirs'), log: m.getMap('sys_log_prefixes'), stats: m.getMap('sys_filter_stats') },
      selfTgid,
    );
  }

  /** The configuration last applied. */
  get current(): NormalizedSyscallConfig | undefined {
    return this.#current;
  }

  /** The secret prefixes' directories the kernel's gate knows (status, tests). */
  get secretDirs(): SecretDir[] {
    return [...this.#secretDirs.values()];
  }

  /**
   * Writes a configuration into the maps. Each list grows entries-first and shrinks count-first (decided list
   * by list: one update may grow one list and shrink another), so a program running meanwhile never reads a
   * prefix slot that is not written yet. Throws SyscallError (map update).
   */
  apply(c: NormalizedSyscallConfig): void {
    const prev = this.#current;
    const m = this.#maps;
    const grow = (list: string[], map: BpfMap) => list.forEach((p, i) => map.update(u32(i), encodePrefix(p)));
    const lists: [string[], BpfMap][] = [[c.pathPrefixes, m.prefixes], [c.sensitivePaths, m.sensitive], [c.secretPaths, m.secret], [c.logPaths, m.log]];
    const before = prev ? [prev.pathPrefixes, prev.sensitivePaths, prev.secretPaths, prev.logPaths] : undefined;
    const shrinks = lists.map(([l], i) => before !== undefined && l.length < before[i]!.length);
    if (lists.some(([l]) => l.length > PREFIX_MAX)) throw new InvalidArgumentError(`at most ${PREFIX_MAX} prefixes per list`);

    // Comms: new names first (so an include list never runs empty), the mode with the config, stale names last.
    const wanted = new Map<string, number>();
    for (const x of c.commInclude) wanted.set(x, VIGIL_SYS_COMM_MODE.INCLUDE);
    for (const x of c.commExclude) wanted.set(x, VIGIL_SYS_COMM_MODE.EXCLUDE);
    for (const [name, v] of wanted) m.comm.update(commKey(name), u32(v));

    // Secret directories (the gate for reads whose path missed the heads, see gateDirs): their entries first;
    // their inode numbers and the flag with the config.
    const dirs = gateDirs(c);
    this.#writeDirEntries(dirs);

    lists.forEach(([l, map], i) => shrinks[i] || grow(l, map));
    m.config.update(u32(0), encodeFilterConfig(c, this.#selfTgid, [...dirs.keys()], this.#kill));
    lists.forEach(([l, map], i) => shrinks[i] && grow(l, map));
    this.#secretDirs = dirs;
    const keep = new Set([...wanted.keys()].map((n) => commKey(n).toString('hex')));
    for (const k of [...m.comm.keys()]) if (!keep.has(k.toString('hex'))) m.comm.delete(k);
    this.#current = c;
  }

  /**
   * Finds the secret prefixes' directories again and, when they changed (a directory made, removed or made
   * anew since: another inode number), writes them as apply() does, entries first, then the config: a
   * directory that did not exist when the configuration was applied (`/root/.ssh` made by a first
   * ssh-keygen) gets the gate's second look from now on. Returns whether anything changed. Throws
   * SyscallError (map update).
   */
  refreshSecretDirs(): boolean {
    const c = this.#current;
    if (!c) return false;
    const dirs = gateDirs(c);
    if (sameDirs(dirs, this.#secretDirs)) return false;
    this.#writeDirEntries(dirs);
    this.#maps.config.update(u32(0), encodeFilterConfig(c, this.#selfTgid, [...dirs.keys()], this.#kill));
    this.#secretDirs = dirs;
    return true;
  }

  /**
   * The kill rules in force: how many, how many strings they compare with, and in how many container cgroups
   * some rule about containers holds (status, tests).
   */
  get killRules(): KillRulesStatus {
    return this.#killTable?.status ?? NO_KILL_STATUS;
  }

  /** Where the kill rules about containers hold (KillScopes.update takes the containers' changes). */
  get killScopes(): KillScopes | undefined {
    return this.#killTable?.scopes;
  }

  /**
   * Puts a set of in-kernel kill rules in force (an empty one: none). The set is written into the half of the
   * maps not in force, then the config's update switches halves: an open is checked against the old set or
   * the new one, never a mix. Throws InvalidArgumentError when the set does not fit the maps (nothing changes)
   * and SyscallError (map update; the old set stays in force). Needs the configuration applied first.
   */
  applyKill(set: KernelKillSet): void {
    const c = this.#current;
    if (!c) throw new InvalidArgumentError('kill rules: the filters are not applied yet');
    const table = this.#killTable;
    if (!table) throw new InvalidArgumentError('kill rules: this syscall sensor object has no kill rule maps');
    const next = table.write(set, opBits);
    this.#maps.config.update(u32(0), encodeFilterConfig(c, this.#selfTgid, [...this.#secretDirs.keys()], next));
    table.commit(next);
  }

  /** The entries of sys_secret_dirs, at the indices of their inode numbers in the config written next. */
  #writeDirEntries(dirs: Map<bigint, SecretDir>): void {
    [...dirs.values()].forEach((d, i) => this.#maps.secretDirs.update(u32(i), encodeSecretDir(d)));
  }

  /** Per-filter drop counts since load, summed over CPUs. */
  counters(): SyscallFilterCounters {
    const out = {} as SyscallFilterCounters;
    const stats = this.#maps.stats;
    for (const [name, idx] of Object.entries(COUNTER_INDEX) as [keyof SyscallFilterCounters, number][]) {
      out[name] = stats.counter(idx);
    }
    return out;
  }
}
