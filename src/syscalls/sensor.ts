// The syscall sensor as the manager loads it, and the object that runs it. Every program is loaded once;
// only the probes of enabled event types are attached, because each syscall tracepoint attached puts every
// syscall of the machine on the slow path (KERNEL-NOTES.md). Each syscall has its own entry program and
// shares its group's exit program (attached once per syscall exit tracepoint). Opens, the hot ones, can do
// without the entry: with openArgs "exit" one program per open syscall reads the arguments at exit from the
// saved registers (bpf/syscalls.bpf.c says why and what it costs). Event types and filters can change while
// running: filters are map writes, event types attach or detach probes; nothing is reloaded.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MapType } from '../bpf/constants.ts';
import { InvalidArgumentError, StateError } from '../bpf/errors.ts';
import { feature, requireFeature, resolvePathReads } from '../bpf/features.ts';
import { numPossibleCpus, type BpfMap } from '../bpf/map.ts';
import { decodeSyscallEvent, isDecodeError } from '../events/decode.ts';
import type { SyscallEvent, SyscallOp } from '../events/types.ts';
import { Manager, type EventChannelSpec, type ManagerOptions, type ManagerSpec, type ManagerStats } from '../manager/manager.ts';
import type { ProbeId, ProbeSpec } from '../manager/probe.ts';
import type { TailCallRoute } from '../manager/editors.ts';
import { allOf, bestEffort, type ProbesSelector } from '../manager/selectors.ts';
import type { RecordHandler } from '../ringbuf/ringbuf.ts';
import { normalizeSyscallConfig, OP_NUMBERS, type NormalizedSyscallConfig, type SyscallSensorConfig } from './config.ts';
import { NO_KILL_STATUS, type KernelKillSet, type KillRulesStatus } from '../rules/kernel-maps.ts';
import { SyscallFilters, type SyscallFilterCounters } from './filters.ts';
import { detectCgroupLayout } from '../containers/cgroups.ts';

type ExitProgram = 'exit_file' | 'exit_link' | 'exit_net' | 'exit_sys';

/**
 * One hooked syscall: its tracepoint name (sys_enter_<tp>), its entry program, its group's exit program and
 * the event types it serves. `required`: an enabled event type fails to start without it; the others
 * (legacy x86 calls, newer calls, module calls on kernels without modules) attach where they exist.
 */
export interface HookedSyscall {
  tp: string;
  enter: string;
  exit: ExitProgram;
  ops: SyscallOp[];
  required: boolean;
  /** The program that does entry and exit in one, at sys_exit_<tp>, reading the arguments at exit (opens). */
  exitOnly?: string;
}

const F = 'exit_file' as const;
const L = 'exit_link' as const;
const N = 'exit_net' as const;
const S = 'exit_sys' as const;
const req = (tp: string, enter: string, exit: ExitProgram, ...ops: SyscallOp[]): HookedSyscall => ({ tp, enter, exit, ops, required: true });
const opt = (tp: string, enter: string, exit: ExitProgram, ...ops: SyscallOp[]): HookedSyscall => ({ tp, enter, exit, ops, required: false });
const open = (s: HookedSyscall, exitOnly: string): HookedSyscall => ({ ...s, exitOnly });

export const HOOKED_SYSCALLS: readonly HookedSyscall[] = [
  open(req('openat', 'enter_openat', F, 'open'), 'exit_openat'),
  open(opt('openat2', 'enter_openat2', F, 'open'), 'exit_openat2'),
  open(opt('open', 'enter_open_legacy', F, 'open'), 'exit_open_legacy'),
  open(opt('creat', 'enter_creat', F, 'open'), 'exit_creat'),
  req('unlinkat', 'enter_unlinkat', F, 'unlink', 'rmdir'),
  opt('unlink', 'enter_unlink', F, 'unlink'),
  opt('rmdir', 'enter_rmdir', F, 'rmdir'),
  req('renameat2', 'enter_renameat2', F, 'rename'),
  opt('renameat', 'enter_renameat', F, 'rename'),
  opt('rename', 'enter_rename_legacy', F, 'rename'),
  req('fchmodat', 'enter_fchmodat', F, 'chmod'),
  opt('fchmodat2', 'enter_fchmodat2', F, 'chmod'),
  opt('chmod', 'enter_chmod_legacy', F, 'chmod'),
  req('fchmod', 'enter_fchmod', F, 'chmod'),
  req('fchownat', 'enter_fchownat', F, 'chown'),
  opt('chown', 'enter_chown_legacy', F, 'chown'),
  opt('lchown', 'enter_lchown', F, 'chown'),
  req('fchown', 'enter_fchown', F, 'chown'),
  req('mkdirat', 'enter_mkdirat', F, 'mkdir'),
  opt('mkdir', 'enter_mkdir', F, 'mkdir'),
  req('truncate', 'enter_truncate_path', F, 'truncate'),
  req('ftruncate', 'enter_ftruncate', F, 'truncate'),
  req('linkat', 'enter_linkat', L, 'link'),
  opt('link', 'enter_link_legacy', L, 'link'),
  req('symlinkat', 'enter_symlinkat', L, 'symlink'),
  opt('symlink', 'enter_symlink_legacy', L, 'symlink'),
  req('connect', 'enter_connect', N, 'connect'),
  req('accept4', 'enter_accept4', N, 'accept'),
  opt('accept', 'enter_accept', N, 'accept'),
  req('bind', 'enter_bind', N, 'bind'),
  req('listen', 'enter_listen', N, 'listen'),
  req('ptrace', 'enter_ptrace', S, 'ptrace'),
  req('mount', 'enter_mount', S, 'mount'),
  req('umount', 'enter_umount', S, 'umount'),
  opt('init_module', 'enter_init_module', S, 'module_load'),
  opt('finit_module', 'enter_finit_module', S, 'module_load'),
  req('bpf', 'enter_bpf', S, 'bpf'),
  req('memfd_create', 'enter_memfd_create', S, 'memfd_create'),
  req('setns', 'enter_setns', S, 'setns'),
  req('unshare', 'enter_unshare', S, 'unshare'),
];

/** Event types served by tracepoints that are not syscalls (no entry/exit pairing, no syscall tax). */
const TRACEPOINT_PROBES: readonly { fn: string; op: SyscallOp; required: boolean }[] = [
  { fn: 'tcp_state', op: 'tcp_state', required: true },
  { fn: 'module_load', op: 'module_load', required: false },
];

/**
 * The io_uring programs (bpf/syscalls.bpf.c, iou_*): requests submitted through io_uring make no syscall, so
 * the syscall tracepoints never see an openat or a connect made that way. Attached, all three or none, where
 * the kernel has the tracepoints they read (feature io_uring_tp), while any event type they report is on.
 */
export const IO_URING_PROBES = ['iou_submit', 'iou_complete', 'iou_overflow'] as const;
/**
 * The probes above write no record themselves: they hand each request, by a tail call, to one of two writers
 * (bpf/syscalls.bpf.c, "iou_writers"), links and symlinks to the second. The verifier checks the writing code
 * once instead of once per probe, ~1.6 s less at every start. Loaded with the probes, never attached.
 */
export const IO_URING_WRITER_ROUTES: readonly TailCallRoute[] = [
  { programArray: 'iou_writers', key: 0, fn: 'iou_write' },
  { programArray: 'iou_writers', key: 1, fn: 'iou_write_link' },
];
/**
 * The opens' exit programs (exit_openat, ...) and the other file syscalls' (exit_file) end in a tail call to
 * one program that writes the record (bpf/syscalls.bpf.c, "open_emit", "exit_file"): the verifier checks that
 * code once instead of once per program, ~1.8 s less at every start. Loaded where opens take their arguments
 * at exit, never attached. exit_file copies its request from the thread's slot into the CPU's scratch slot,
 * where the opens leave theirs: a writer finding requests in either map is verified once per map, and reading
 * the thread's slot for opens too cost each reported open ~55 ns (bench/gate).
 */
export const OPEN_EMIT_ROUTE: TailCallRoute = { programArray: 'open_emit', key: 0, fn: 'exit_open_emit' };
/** The event types io_uring requests are reported as (openat, openat2, unlinkat, renameat, mkdirat, linkat, symlinkat, ftruncate, connect, accept, bind, listen). */
export const IO_URING_OPS: readonly SyscallOp[] = ['open', 'unlink', 'rmdir', 'rename', 'mkdir', 'connect', 'link', 'symlink', 'truncate', 'accept', 'bind', 'listen'];

/**
 * Makes the CPUs' slots of iou_pending (ring 0, user_data the CPU's number), where io_uring submissions build
 * their requests: a submission on a CPU without one is counted (noPending), not reported.
 */
function fillIoUringSlots(m: Manager): void {
  const map = m.getMap('iou_pending');
  const key = new Uint8Array(16);
  const keyView = new DataView(key.buffer);
  const value = new Uint8Array(map.valueSize);
  for (let cpu = 0; cpu < numPossibleCpus(); cpu++) {
    keyView.setBigUint64(8, BigInt(cpu), true);
    map.update(key, value);
  }
}

export function syscallsObjectPath(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build/bpf/syscalls.bpf.o');
}

const exitId = (s: HookedSyscall): ProbeId => ({ fn: s.exit, uid: s.tp });
const enterId = (s: HookedSyscall): ProbeId => ({ fn: s.enter, uid: '' });

/**
 * Every probe of the object: an entry and an exit per syscall, the exit-only programs of the opens, plus the
 * non-syscall tracepoints.
 */
export function syscallProbes(cgroupPath?: string): ProbeSpec[] {
  return [
    ...HOOKED_SYSCALLS.flatMap((s): ProbeSpec[] => [{ fn: s.enter }, { fn: s.exit, uid: s.tp, tracepoint: `syscalls/sys_exit_${s.tp}` }, ...(s.exitOnly ? [{ fn: s.exitOnly }] : [])]),
    ...TRACEPOINT_PROBES.map((p) => ({ fn: p.fn })),
    ...IO_URING_PROBES.map((fn) => ({ fn })),
    ...(cgroupPath ? [...DENY_PROBES.connect, ...DENY_PROBES.bind, ...DENY_PROBES.unix].map((fn) => ({ fn, cgroupPath })) : []),
  ];
}

/**
 * The cgroup hooks of the in-kernel deny rules (deny_check in bpf/syscalls.bpf.c), attached to the root of the
 * cgroup v2 hierarchy, where every process's calls pass, each kind only while some deny rule about it is in
 * force: a connect rule's, on connects and on UDP datagrams sent to an address without one (sendto), which
 * would otherwise reach a denied peer; a bind rule's, on binds. A bind rule alone costs connects nothing.
 */
export const DENY_PROBES = {
  connect: ['deny_connect4', 'deny_connect6', 'deny_sendmsg4', 'deny_sendmsg6'],
  bind: ['deny_bind4', 'deny_bind6'],
  /**
   * Connects to unix sockets, and unix datagrams sent to a path without one (6.7, both), while a deny rule
   * about a socket's path is in force.
   */
  unix: ['deny_connect_unix', 'deny_sendmsg_unix'],
} as const;

/** Which deny hooks are (to be) attached. */
export interface DenyHooks {
  connect: boolean;
  bind: boolean;
  unix: boolean;
}
const NO_DENY: DenyHooks = { connect: false, bind: false, unix: false };

/** The deny hooks a set of in-kernel rules needs: those of the calls its deny rules are about. */
const denyHooks = (set: KernelKillSet | undefined): DenyHooks => {
  const on = (op: 'connect' | 'bind', unix = false) => !!set?.rules.some((r) => r.selector.denies && r.selector.ops.includes(op) && !!r.selector.unix === unix);
  return { connect: on('connect'), bind: on('bind'), unix: on('connect', true) };
};
const sameHooks = (a: DenyHooks, b: DenyHooks): boolean => a.connect === b.connect && a.bind === b.bind && a.unix === b.unix;
const eitherHooks = (a: DenyHooks, b: DenyHooks): DenyHooks => ({ connect: a.connect || b.connect, bind: a.bind || b.bind, unix: a.unix || b.unix });

/** Where the deny hooks attach: the cgroup v2 hierarchy's root (undefined: none is mounted). */
export function cgroupV2Root(): string | undefined {
  try {
    return detectCgroupLayout().hierarchies.find((h) => h.version === 2)?.mount;
  } catch {
    return undefined;
  }
}

/**
 * The probes to attach for a set of event types: what is required must attach, the rest where it can. With
 * `openArgs` "exit", an open syscall takes its exit-only program instead of its entry and exit pair; with
 * `ioUring`, the io_uring programs join while an event type they report is on.
 */
export function syscallSelectors(ops: ReadonlySet<SyscallOp>, openArgs: 'exit' | 'entry' = 'entry', deny: DenyHooks = NO_DENY, ioUring = false): ProbesSelector[] {
  const required: ProbesSelector[] = [];
  if (deny.connect) required.push(allOf(...DENY_PROBES.connect));
  if (deny.bind) required.push(allOf(...DENY_PROBES.bind));
  if (deny.unix) required.push(allOf(...DENY_PROBES.unix));
  const optional: ProbesSelector[] = [];
  for (const s of HOOKED_SYSCALLS) {
    const used = s.ops.filter((op) => ops.has(op));
    if (!used.length) continue;
    // unlinkat serves unlink and rmdir; it is required when any event type that needs it is on.
    (s.required ? required : optional).push(openArgs === 'exit' && s.exitOnly ? allOf(s.exitOnly) : allOf(enterId(s), exitId(s)));
  }
  for (const p of TRACEPOINT_PROBES) if (ops.has(p.op)) (p.required ? required : optional).push(allOf(p.fn));
  if (ioUring && IO_URING_OPS.some((op) => ops.has(op))) required.push(allOf(...IO_URING_PROBES));
  const out: ProbesSelector[] = [];
  if (required.length) out.push(allOf(...required));
  if (optional.length) out.push(bestEffort(...optional));
  return out;
}

export interface SyscallSensorOptions {
  /** Receives each decoded event. */
  onEvent?: (ev: SyscallEvent) => void;
  /** Receives each raw record instead of decoding here (an agent that decodes on its own). */
  onRecord?: RecordHandler;
  /** Write to this shared ring (its owner reads it) instead of owning a channel. */
  sharedRing?: BpfMap;
  /** The agent's vigil_containers map (filled by the container resolver); else the sensor has its own. */
  containersMap?: BpfMap;
  /** Maps shared with the agent's other sensors (vigil_stats, vigil_lost; vigil_events_perf in perf mode). */
  sharedMaps?: Record<string, BpfMap>;
  /** vigil_cgroup_v1_subsys (src/containers/cgroups.ts); default: cgroup v2 ids. */
  cgroupV1Subsys?: number;
  /** Where entries keep their arguments until exit: task storage (default where supported) or a tid hash. */
  pendingStore?: 'auto' | 'task' | 'hash';
  /**
   * How the path walk reads the kernel's dentries and mounts: plain loads through bpf_rdonly_cast (default
   * where the kernel allows it, 6.2+) or a bpf_probe_read_kernel call per field (every kernel).
   */
  pathReads?: 'auto' | 'direct' | 'helper';
  channel?: 'auto' | 'ringbuf' | 'perf';
  objectPath?: string;
  /** The pid never reported when filters.excludeSelf is on (default: this process). */
  selfTgid?: number;
  /** Keep BPF run-time stats on (run count and time per probe, in stats().manager). */
  collectStats?: boolean;
  /**
   * How often the secret prefixes' directories are looked for again (SyscallFilters.refreshSecretDirs), so that
   * one made or made anew after the configuration was applied gets the gate's second look; 0: never. Default
   * SECRET_DIRS_REFRESH_MS.
   */
  secretDirsRefreshMs?: number;
  /** In-kernel kill and deny rules, in force before the first probe attaches (setKill changes them later). */
  kill?: KernelKillSet;
  /** The cgroup v2 directory the deny hooks attach to (default: the hierarchy's root, cgroupV2Root()). */
  cgroupV2Path?: string;
}

/**
 * The secret directories are looked for again this often: a stat of each prefix's directory and a listing of
 * each directory prefix, a few dozen system calls, against a window of at most this long in which a read
 * through a symlink into a directory made since is matched by its path as given only.
 */
export const SECRET_DIRS_REFRESH_MS = 5_000;

/**
 * The manager spec and options for a configuration (validated here: InvalidArgumentError names the field).
 * The filters themselves are written after load, by SyscallFilters.
 */
export function syscallSensorSpec(config: SyscallSensorConfig | NormalizedSyscallConfig, o: SyscallSensorOptions & { handler?: RecordHandler } = {}): {
  spec: ManagerSpec;
  options: ManagerOptions;
  config: NormalizedSyscallConfig;
  pendingStore: 'task' | 'hash';
  openArgs: 'exit' | 'entry';
  pathReads: 'direct' | 'helper';
  fdReads: 'direct' | 'helper';
  /** Whether io_uring requests are reported: undefined, or why not (the kernel lacks what the programs read). */
  ioUringMissing: string | undefined;
} {
  const c = 'enabledOps' in config ? config : normalizeSyscallConfig(config);
  const openArgs = resolveOpenArgs(c.openArgs);
  const store = o.pendingStore ?? 'auto';
  if (!['auto', 'task', 'hash'].includes(store)) throw new InvalidArgumentError(`syscalls: pendingStore must be "auto", "task" or "hash", got ${JSON.stringify(store)}`);
  const pending = store === 'auto' ? (feature('task_storage').supported ? 'task' : 'hash') : store;
  const pathReads = resolvePathReads(o.pathReads ?? 'auto');
  const fdReads = pathReads === 'direct' && feature('rdonly_cast_mem').supported ? 'direct' : 'helper';
  const iou = feature('io_uring_tp');
  const ioUringMissing = iou.supported ? undefined : iou.reason;
  // In perf mode the agent's shared perf array is the channel (and the agent reads it, not this manager).
  const { vigil_events_perf: sharedPerf, ...otherShared } = o.sharedMaps ?? {};
  const channel: EventChannelSpec = sharedPerf ? { mode: 'perf', sharedPerf } : { mode: o.channel ?? 'auto', handler: o.handler, sharedRing: o.sharedRing };
  const mapSpecEditors: NonNullable<ManagerOptions['mapSpecEditors']> = {};
  // With the tid hash the task-storage map goes unused: make it a one-slot array, which every kernel can create.
  if (pending === 'hash') mapSpecEditors.sys_pending_ts = { type: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1, flags: 0 };
  return {
    spec: { name: 'syscalls', object: o.objectPath ?? syscallsObjectPath(), probes: syscallProbes(o.cgroupV2Path ?? cgroupV2Root()), eventChannel: channel },
    options: {
      activatedProbes: syscallSelectors(c.ops, openArgs, denyHooks(o.kill), !ioUringMissing),
      // Not even loaded where the kernel lacks their tracepoints (nothing to attach them to: their verification
      // is seconds of start-up for nothing), or its hook (a cgroup program names its attach type at load).
      excludedFunctions: [
        ...(ioUringMissing ? [...IO_URING_PROBES, ...IO_URING_WRITER_ROUTES.map((r) => r.fn!)] : []),
        ...(openArgs === 'exit' ? [] : [OPEN_EMIT_ROUTE.fn!]),
        ...(feature('cgroup_unix_connect').supported ? [] : DENY_PROBES.unix),
      ],
      tailCallRoutes: [...(ioUringMissing ? [] : IO_URING_WRITER_ROUTES), ...(openArgs === 'exit' ? [OPEN_EMIT_ROUTE] : [])],
      constantEditors: [
        { name: 'max_path', value: c.maxPathBytes, failOnMissing: true },
        { name: 'use_task_storage', value: pending === 'task' ? 1 : 0, failOnMissing: true },
        // 0 leaves bpf_task_pt_regs in dead code, which kernels without it accept.
        { name: 'open_args_at_exit', value: openArgs === 'exit' ? 1 : 0, failOnMissing: true },
        { name: 'vigil_direct_reads', value: pathReads === 'direct' ? 1 : 0, failOnMissing: true },
        // The fd table's slots with a plain load too, where bpf_rdonly_cast gives untyped memory; 0 leaves that
        // cast in dead code, which kernels that refuse it accept.
        { name: 'vigil_mem_cast', value: fdReads === 'direct' ? 1 : 0, failOnMissing: true },
        { name: 'vigil_cgroup_v1_subsys', value: o.cgroupV1Subsys ?? 0xffffffff, failOnMissing: true },
      ],
      mapSpecEditors,
      mapEditors: { ...otherShared, ...(o.containersMap ? { vigil_containers: o.containersMap } : {}) },
      collectStats: o.collectStats,
    },
    config: c,
    pendingStore: pending,
    openArgs,
    pathReads,
    fdReads,
    ioUringMissing,
  };
}


/**
 * "auto" takes "exit" where tracepoint programs can call bpf_task_pt_regs; "exit" where they cannot is an
 * error naming the fix.
 */
function resolveOpenArgs(want: 'auto' | 'exit' | 'entry'): 'exit' | 'entry' {
  if (want === 'entry') return 'entry';
  if (want === 'exit') requireFeature('task_pt_regs', 'syscalls.openArgs is "exit" (set it to "entry" or "auto")');
  return feature('task_pt_regs').supported ? 'exit' : 'entry';
}

export interface SyscallSensorStats {
  state: 'idle' | 'running' | 'stopped';
  pendingStore: 'task' | 'hash' | undefined;
  /** Where opens take their arguments: at exit from the saved registers, or saved at entry. */
  openArgs: 'exit' | 'entry' | undefined;
  /** How the path walk reads kernel memory (SyscallSensorOptions.pathReads). */
  pathReads: 'direct' | 'helper' | undefined;
  /**
   * How an fd's file is read from the fd table: a plain load where bpf_rdonly_cast gives untyped memory
   * (newer kernels, with direct path reads), else a bpf_probe_read_kernel call.
   */
  fdReads: 'direct' | 'helper' | undefined;
  /**
   * Whether requests submitted through io_uring (openat, openat2, unlinkat, renameat, mkdirat, connect) are
   * reported, and if not, why (the kernel lacks the tracepoints the programs read).
   */
  ioUring: { monitored: boolean; reason?: string } | undefined;
  /**
   * The directories whose files a read-only open is checked against when its path missed the secret prefixes
   * (symlinks, "..", /proc/<pid>/root: secret-dirs.ts); empty when the gate is off, undefined where it cannot
   * run (open arguments read at entry).
   */
  secretDirs: string[] | undefined;
  /**
   * Times the secret directories were found changed since start (made, removed or made anew) and written
   * again, and the looks that failed (a map update refused: the last directories written stay).
   */
  secretDirsRefresh: { changed: number; failed: number };
  /** In-kernel kill rules in force, and the strings they compare with. */
  killRules: KillRulesStatus;
  /** Event types whose probes run. */
  ops: SyscallOp[];
  events: number;
  decodeErrors: number;
  /** Events whose onEvent handler threw. */
  handlerErrors: number;
  /** What the in-kernel filters dropped, summed over CPUs. */
  filters: SyscallFilterCounters | undefined;
  manager: ManagerStats | undefined;
}

/** Loads, configures, runs and reconfigures the syscall sensor. */
export class SyscallSensor {
  readonly #o: SyscallSensorOptions;
  #config: NormalizedSyscallConfig;
  #manager: Manager | undefined;
  #filters: SyscallFilters | undefined;
  #pendingStore: 'task' | 'hash' | undefined;
  #openArgs: 'exit' | 'entry' | undefined;
  #pathReads: 'direct' | 'helper' | undefined;
  #fdReads: 'direct' | 'helper' | undefined;
  /** Why io_uring requests are not reported (undefined: they are). */
  #ioUringMissing: string | undefined;
  #state: 'idle' | 'running' | 'stopped' = 'idle';
  #events = 0;
  #decodeErrors = 0;
  #handlerErrors = 0;
  #refreshTimer: NodeJS.Timeout | undefined;
  /** The cgroup v2 directory the deny hooks attach to (undefined: none mounted: deny rules are refused). */
  #cgroupPath: string | undefined;
  /** The deny hooks attached: those of the calls the deny rules in force are about (setKill keeps them so). */
  #denyHooks: DenyHooks = NO_DENY;
  readonly #refresh = { changed: 0, failed: 0 };

  /** Validates the configuration now (InvalidArgumentError naming the field); nothing is loaded yet. */
  constructor(config: SyscallSensorConfig = {}, o: SyscallSensorOptions = {}) {
    this.#config = normalizeSyscallConfig(config);
    this.#o = o;
  }

  get manager(): Manager | undefined {
    return this.#manager;
  }
  get filters(): SyscallFilters | undefined {
    return this.#filters;
  }
  get config(): NormalizedSyscallConfig {
    return this.#config;
  }
  /** The vigil_containers map the scope filter reads (the agent's, or the sensor's own). */
  get containersMap(): BpfMap | undefined {
    return this.#manager?.getMap('vigil_containers');
  }

  /**
   * Loads the object, writes the filters, then attaches the probes of the enabled event types and starts
   * reading. Throws what Manager.init/start throw (VerifierError, PermissionError, SelectorError, ...);
   * on failure nothing stays loaded.
   */
  start(): void {
    if (this.#state !== 'idle') throw new StateError(`syscall sensor is ${this.#state}`);
    const own = !this.#o.sharedRing && !this.#o.sharedMaps?.vigil_events_perf;
    const handler: RecordHandler | undefined = !own ? undefined : this.#o.onRecord ?? ((v, off, len) => this.handleRecord(v, off, len));
    this.#cgroupPath = this.#o.cgroupV2Path ?? cgroupV2Root();
    this.#checkDeny(this.#o.kill);
    const { spec, options, pendingStore, openArgs, pathReads, fdReads, ioUringMissing } = syscallSensorSpec(this.#config, { ...this.#o, handler, cgroupV2Path: this.#cgroupPath });
    const m = new Manager(spec);
    try {
      m.init(options);
      const filters = SyscallFilters.fromManager(m, this.#o.selfTgid ?? process.pid);
      filters.apply(this.#config); // before any probe is attached: the first event already sees them
      if (this.#o.kill?.rules.length) filters.applyKill(this.#o.kill);
      if (!ioUringMissing) fillIoUringSlots(m);
      m.start();
      this.#manager = m;
      this.#filters = filters;
      this.#denyHooks = denyHooks(this.#o.kill);
      this.#pendingStore = pendingStore;
      this.#openArgs = openArgs;
      this.#pathReads = pathReads;
      this.#fdReads = fdReads;
      this.#ioUringMissing = ioUringMissing;
      this.#state = 'running';
      const every = this.#o.secretDirsRefreshMs ?? SECRET_DIRS_REFRESH_MS;
      if (every > 0) (this.#refreshTimer = setInterval(() => this.refreshSecretDirs(), every)).unref();
    } catch (err) {
      m.stop();
      throw err;
    }
  }

  /** Decodes one record and hands it on (the dispatcher of a shared ring calls this). */
  handleRecord(v: DataView, off: number, len: number): SyscallEvent | undefined {
    const ev = decodeSyscallEvent(v, off, len);
    if (isDecodeError(ev)) {
      this.#decodeErrors++;
      return undefined;
    }
    this.#events++;
    try {
      this.#o.onEvent?.(ev);
    } catch {
      this.#handlerErrors++; // a throwing consumer must not stop the reader
    }
    return ev;
  }

  /**
   * Changes event types and filters while running, without reloading: event types being turned off stop
   * first (their bit, then their probes), filters are rewritten, new event types attach and then get their
   * bit. Throws InvalidArgumentError for a bad config (nothing changes) and SelectorError when a newly
   * enabled required probe cannot attach (the previous probes keep running; the filters are restored).
   */
  update(config: SyscallSensorConfig): void {
    if (this.#state !== 'running') throw new StateError(`syscall sensor is ${this.#state}, not running`);
    const next = normalizeSyscallConfig(config);
    if (next.maxPathBytes !== this.#config.maxPathBytes) throw new InvalidArgumentError('syscalls.maxPathBytes is fixed at load; restart the sensor to change it');
    if (next.openArgs !== this.#config.openArgs) throw new InvalidArgumentError('syscalls.openArgs is fixed at load; restart the sensor to change it');
    const prev = this.#config;
    const m = this.#manager!;
    const filters = this.#filters!;
    // While switching, only event types on in both configurations are reported.
    const both = { ...next, enabledOps: next.enabledOps & prev.enabledOps };
    filters.apply(both);
    try {
      m.updateActivatedProbes(syscallSelectors(next.ops, this.#openArgs, this.#denyHooks, !this.#ioUringMissing));
    } catch (err) {
      filters.apply(prev);
      throw err;
    }
    filters.apply(next);
    this.#config = next;
  }

  /**
   * Puts a set of in-kernel kill rules in force, replacing the last (SyscallFilters.applyKill; all or
   * nothing). Throws InvalidArgumentError when it does not fit the kernel's maps.
   */
  setKill(set: KernelKillSet): void {
    if (this.#state !== 'running') throw new StateError(`syscall sensor is ${this.#state}, not running`);
    this.#checkDeny(set);
    const m = this.#manager!;
    const attach = (hooks: DenyHooks) => m.updateActivatedProbes(syscallSelectors(this.#config.ops, this.#openArgs, hooks, !this.#ioUringMissing));
    // Hooks attach before the deny rules about their calls are written (until then they find none), and detach
    // after the last is gone: a failed attach (SelectorError) changes nothing.
    const was = this.#denyHooks;
    const next = denyHooks(set);
    const during = eitherHooks(was, next);
    if (!sameHooks(during, was)) attach(during);
    try {
      this.#filters!.applyKill(set);
    } catch (err) {
      if (!sameHooks(during, was)) attach(was);
      throw err;
    }
    this.#denyHooks = next;
    if (!sameHooks(next, during)) attach(next);
  }

  /** Throws InvalidArgumentError when `set` holds deny rules and no cgroup v2 hierarchy is there to hook. */
  #checkDeny(set: KernelKillSet | undefined): void {
    const hooks = denyHooks(set);
    if ((hooks.connect || hooks.bind || hooks.unix) && !this.#cgroupPath)
      throw new InvalidArgumentError('deny rules: connects and binds are denied by hooks on the cgroup v2 hierarchy, and none is mounted (mount -t cgroup2 none /sys/fs/cgroup, or /sys/fs/cgroup/unified beside cgroup v1)');
    const unix = hooks.unix ? feature('cgroup_unix_connect') : undefined;
    if (unix && !unix.supported) throw new InvalidArgumentError(`deny rules about unix socket paths: this kernel cannot deny connects to them (${unix.reason})`);
  }

  /**
   * Looks for the secret directories again and writes them when they changed (SyscallFilters.refreshSecretDirs);
   * the sensor does this every secretDirsRefreshMs. Never throws: a failed look is counted, and the
   * directories written last stay. Returns whether they changed.
   */
  refreshSecretDirs(): boolean {
    if (this.#state !== 'running' || !this.#filters) return false;
    try {
      if (!this.#filters.refreshSecretDirs()) return false;
      this.#refresh.changed++;
      return true;
    } catch {
      this.#refresh.failed++;
      return false;
    }
  }

  /** Which op numbers the kernel reports right now. */
  enabledOps(): SyscallOp[] {
    return (Object.keys(OP_NUMBERS) as SyscallOp[]).filter((op) => this.#config.ops.has(op));
  }

  stats(): SyscallSensorStats {
    let filters: SyscallFilterCounters | undefined;
    try {
      filters = this.#state === 'running' ? this.#filters?.counters() : undefined;
    } catch {
      filters = undefined;
    }
    return {
      state: this.#state,
      pendingStore: this.#pendingStore,
      openArgs: this.#openArgs,
      pathReads: this.#pathReads,
      fdReads: this.#fdReads,
      ioUring: this.#state === 'running' ? (this.#ioUringMissing ? { monitored: false, reason: this.#ioUringMissing } : { monitored: true }) : undefined,
      secretDirs: this.#openArgs === 'exit' ? (this.#filters?.secretDirs.map((d) => d.path) ?? []) : undefined,
      secretDirsRefresh: { ...this.#refresh },
      killRules: this.#filters?.killRules ?? NO_KILL_STATUS,
      ops: this.enabledOps(),
      events: this.#events,
      decodeErrors: this.#decodeErrors,
      handlerErrors: this.#handlerErrors,
      filters,
      manager: this.#manager?.stats(),
    };
  }

  /** Detaches and unloads. Idempotent. */
  stop(): void {
    if (this.#state === 'stopped') return;
    clearInterval(this.#refreshTimer);
    this.#manager?.stop();
    this.#state = 'stopped';
  }
}
