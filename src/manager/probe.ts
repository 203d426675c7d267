// A probe is one program at one hook point. ProbeSpec is plain data declared by a sensor; its hook comes
// from the program's ELF section (SEC("tp/sched/sched_process_exec")) unless the spec overrides it. Probe is
// the live counterpart the manager attaches, detaches, pauses and reports on.
import { InvalidArgumentError, VigilError } from '../bpf/errors.ts';
import { resolveSyscallFunction } from '../bpf/kallsyms.ts';
import type { Attachment } from '../bpf/link.ts';
import type { BpfLink } from '../bpf/link.ts';
import type { BpfProgram, PerfEventTarget, TestRunOptions, TestRunResult } from '../bpf/program.ts';

/** Identifies a probe: the eBPF function name plus a UID, so one program can sit on several hooks. */
export interface ProbeId {
  uid: string;
  fn: string;
}

export const probeKey = (id: ProbeId): string => `${id.fn}#${id.uid}`;
export const formatProbeId = (id: ProbeId): string => (id.uid ? `${id.fn} (uid ${id.uid})` : id.fn);

export type HookKind =
  | 'tracepoint'
  | 'raw_tp'
  | 'tp_btf'
  | 'fentry'
  | 'fexit'
  | 'lsm'
  | 'kprobe'
  | 'kretprobe'
  | 'uprobe'
  | 'uretprobe'
  | 'cgroup'
  | 'socket'
  | 'tc'
  | 'xdp'
  | 'perf_event'
  | 'iter';

/** The feature probe (src/bpf/features.ts) that must pass for a hook kind to load and attach. */
export const HOOK_FEATURE: Partial<Record<HookKind, string>> = {
  tracepoint: 'tracepoint',
  raw_tp: 'raw_tp',
  tp_btf: 'tp_btf',
  fentry: 'fentry',
  fexit: 'fexit',
  lsm: 'lsm',
  kprobe: 'kprobe',
  kretprobe: 'kprobe',
  uprobe: 'uprobe',
  uretprobe: 'uprobe',
};

/** Hook kinds whose programs cannot even be loaded when the feature is missing (not just attached). */
export const LOAD_GATED: ReadonlySet<HookKind> = new Set(['tp_btf', 'fentry', 'fexit', 'lsm']);

export interface ProbeSpec {
  /** eBPF function name (the C function under SEC(...)). */
  fn: string;
  /** Distinguishes several hooks of one function; '' by default. */
  uid?: string;
  /** Hook kind; parsed from the section when omitted. */
  kind?: HookKind;
  /** tracepoint: "category/name". */
  tracepoint?: string;
  /** raw_tp / tp_btf: tracepoint name. */
  rawTracepoint?: string;
  /** kprobe/kretprobe: exact kernel function. */
  kernelFunction?: string;
  /** kprobe/kretprobe on a syscall, by name ("openat"): resolved to this kernel's symbol. */
  syscall?: string;
  kprobeOffset?: number;
  /** uprobe/uretprobe. */
  binaryPath?: string;
  symbol?: string;
  offset?: number;
  pid?: number;
  /** cgroup programs: cgroup v2 directory. */
  cgroupPath?: string;
  /** socket filter: socket fd. */
  socketFd?: number;
  /** tc / xdp: interface. */
  ifname?: string;
  ifindex?: number;
  tcDirection?: 'ingress' | 'egress';
  tcPriority?: number;
  tcHandle?: number;
  xdpMode?: 'skb' | 'drv' | 'hw';
  /** perf_event programs. */
  perfEvent?: PerfEventTarget;
  /** bpf_get_attach_cookie() value (tracepoints, kprobes, uprobes, fentry). */
  cookie?: bigint;
  /** Attach attempts after the first failure, and the delay between them. */
  retry?: number;
  retryDelayMs?: number;
  /** Pin the link here so the hook outlives the process. */
  linkPinPath?: string;
}

export interface Hook {
  kind: HookKind;
  /** Human description: "tracepoint syscalls/sys_enter_openat". */
  target: string;
}

/** Works out the hook of a probe from its spec and its program's ELF section. Throws InvalidArgumentError. */
export function resolveHook(spec: ProbeSpec, section: string): Hook {
  const [prefix = '', ...restParts] = section.split('/');
  const rest = restParts.join('/');
  const kind = spec.kind ?? kindFromSection(prefix, section);
  if (!kind) throw new InvalidArgumentError(`probe ${spec.fn}: cannot tell the hook type of section "${section}"; set kind`);
  switch (kind) {
    case 'tracepoint': {
      const tp = spec.tracepoint ?? rest;
      if (!/^[\w-]+\/[\w-]+$/.test(tp)) throw new InvalidArgumentError(`probe ${spec.fn}: tracepoint must be "category/name", got "${tp}"`);
      return { kind, target: tp };
    }
    case 'raw_tp':
    case 'tp_btf': {
      const name = spec.rawTracepoint ?? rest;
      if (!name) throw new InvalidArgumentError(`probe ${spec.fn}: ${kind} needs a tracepoint name (section "${section}" has none)`);
      return { kind, target: name };
    }
    case 'kprobe':
    case 'kretprobe': {
      const fn = spec.kernelFunction ?? (spec.syscall ? `syscall:${spec.syscall}` : prefix.startsWith('ksyscall') || prefix.startsWith('kretsyscall') ? `syscall:${rest}` : rest);
      if (!fn) throw new InvalidArgumentError(`probe ${spec.fn}: ${kind} needs kernelFunction or syscall`);
      return { kind, target: fn };
    }
    case 'uprobe':
    case 'uretprobe': {
      // libbpf's auto-attach form: uprobe//path/to/lib.so:symbol
      const m = /^(.+):([^:+]+)(?:\+(\w+))?$/.exec(rest);
      const binary = spec.binaryPath ?? m?.[1];
      const symbol = spec.symbol ?? m?.[2];
      // The section's "+offset" (libbpf reads it as a C integer: decimal or 0x hex) unless the spec sets one.
      const offset = spec.offset ?? (m?.[3] !== undefined ? Number(m[3]) : undefined);
      if (!binary) throw new InvalidArgumentError(`probe ${spec.fn}: uprobe needs binaryPath`);
      if (offset !== undefined && !(Number.isSafeInteger(offset) && offset >= 0)) {
        throw new InvalidArgumentError(`probe ${spec.fn}: bad uprobe offset in section "${section}"`);
      }
      if (!symbol && offset === undefined) throw new InvalidArgumentError(`probe ${spec.fn}: uprobe needs a symbol or an offset`);
      return { kind, target: `${binary}:${symbol ?? ''}${offset !== undefined ? `+0x${offset.toString(16)}` : ''}` };
    }
    case 'cgroup':
      if (!spec.cgroupPath) throw new InvalidArgumentError(`probe ${spec.fn}: cgroup programs need cgroupPath`);
      return { kind, target: `${section} ${spec.cgroupPath}` };
    case 'socket':
      if (spec.socketFd === undefined) throw new InvalidArgumentError(`probe ${spec.fn}: socket filters need socketFd`);
      return { kind, target: `socket fd ${spec.socketFd}` };
    case 'tc':
      if (!spec.ifname && spec.ifindex === undefined) throw new InvalidArgumentError(`probe ${spec.fn}: tc needs ifname or ifindex`);
      return { kind, target: `${spec.tcDirection ?? 'ingress'} ${spec.ifname ?? spec.ifindex}` };
    case 'xdp':
      if (!spec.ifname && spec.ifindex === undefined) throw new InvalidArgumentError(`probe ${spec.fn}: xdp needs ifname or ifindex`);
      return { kind, target: `${spec.ifname ?? spec.ifindex}${spec.xdpMode ? ` (${spec.xdpMode})` : ''}` };
    case 'perf_event':
      if (!spec.perfEvent) throw new InvalidArgumentError(`probe ${spec.fn}: perf_event programs need perfEvent`);
      return { kind, target: `type ${spec.perfEvent.type} config ${spec.perfEvent.config}` };
    default:
      return { kind, target: rest || section };
  }
}

/** Hook kind of a libbpf section prefix, or undefined for sections we cannot attach. */
export function kindFromSection(prefix: string, section = prefix): HookKind | undefined {
  if (prefix === 'tp' || prefix === 'tracepoint') return 'tracepoint';
  if (prefix === 'raw_tp' || prefix === 'raw_tracepoint' || prefix === 'raw_tp.w' || prefix === 'raw_tracepoint.w') return 'raw_tp';
  if (prefix === 'tp_btf') return 'tp_btf';
  if (prefix === 'fentry' || prefix === 'fentry.s' || prefix === 'fmod_ret' || prefix === 'fmod_ret.s') return 'fentry';
  if (prefix === 'fexit' || prefix === 'fexit.s') return 'fexit';
  if (prefix === 'lsm' || prefix === 'lsm.s') return 'lsm';
  if (prefix === 'kprobe' || prefix === 'ksyscall') return 'kprobe';
  if (prefix === 'kretprobe' || prefix === 'kretsyscall') return 'kretprobe';
  if (prefix === 'uprobe' || prefix === 'uprobe.s') return 'uprobe';
  if (prefix === 'uretprobe' || prefix === 'uretprobe.s') return 'uretprobe';
  if (prefix.startsWith('cgroup')) return 'cgroup';
  if (prefix === 'socket') return 'socket';
  if (prefix === 'tc' || prefix === 'classifier' || prefix === 'action') return 'tc';
  if (prefix === 'xdp' || prefix === 'xdp.frags') return 'xdp';
  if (prefix === 'perf_event') return 'perf_event';
  if (prefix === 'iter' || prefix === 'iter.s') return 'iter';
  void section;
  return undefined;
}

export type ProbeState = 'declared' | 'loaded' | 'running' | 'paused' | 'stopped' | 'failed';

/** A probe as the manager runs it. */
export class Probe {
  readonly spec: ProbeSpec;
  readonly id: ProbeId;
  #program: BpfProgram | undefined;
  #hook: Hook | undefined;
  #attachment: Attachment | undefined;
  #state: ProbeState = 'declared';
  #lastError: VigilError | Error | undefined;
  /** Set when the program was excluded before load (by option or missing kernel feature). */
  excludedReason: string | undefined;
  /** Attach attempts made so far (retries included). */
  attachAttempts = 0;

  constructor(spec: ProbeSpec) {
    if (!spec.fn) throw new InvalidArgumentError('probe spec without fn (the eBPF function name)');
    this.spec = spec;
    this.id = { uid: spec.uid ?? '', fn: spec.fn };
  }

  get key(): string {
    return probeKey(this.id);
  }
  get state(): ProbeState {
    return this.#state;
  }
  get lastError(): Error | undefined {
    return this.#lastError;
  }
  get hook(): Hook | undefined {
    return this.#hook;
  }
  get program(): BpfProgram | undefined {
    return this.#program;
  }
  get attachment(): Attachment | undefined {
    return this.#attachment;
  }
  /** Running or paused: attached at some point and not stopped. */
  get isRunning(): boolean {
    return this.#state === 'running';
  }

  /** @internal */
  bind(program: BpfProgram): void {
    this.#program = program;
    this.#hook = resolveHook(this.spec, program.section);
  }

  /** @internal */
  markLoaded(): void {
    if (this.#state === 'declared') this.#state = 'loaded';
  }

  /** @internal Records a failure that happened outside attach (e.g. exclusion for a missing feature). */
  fail(err: Error): void {
    this.#lastError = err;
    this.#state = 'failed';
  }

  /** @internal Attaches once (no retries). Records and rethrows the error on failure. */
  attachOnce(): void {
    if (this.#attachment?.attached) return;
    const p = this.#program;
    const h = this.#hook;
    if (!p || !h) throw new InvalidArgumentError(`probe ${formatProbeId(this.id)} is not bound to a program`);
    if (this.excludedReason) throw new InvalidArgumentError(`probe ${formatProbeId(this.id)} was excluded from load: ${this.excludedReason}`);
    this.attachAttempts++;
    try {
      this.#attachment = attachHook(p, h, this.spec);
      if (this.spec.linkPinPath && 'pin' in this.#attachment) (this.#attachment as BpfLink).pin(this.spec.linkPinPath);
      this.#state = 'running';
      this.#lastError = undefined;
    } catch (err) {
      this.#attachment?.detach();
      this.#attachment = undefined;
      this.#lastError = err as Error;
      this.#state = 'failed';
      throw err;
    }
  }

  /** @internal Detaches; `next` is the state to report afterwards. */
  detach(next: ProbeState = 'stopped'): void {
    this.#attachment?.detach();
    this.#attachment = undefined;
    if (this.#state === 'running' || this.#state === 'paused' || next === 'stopped') this.#state = next;
  }

  /** Runs the program once in the kernel on synthetic input (BPF_PROG_TEST_RUN). */
  test(input: TestRunOptions | Uint8Array): TestRunResult {
    if (!this.#program) throw new InvalidArgumentError(`probe ${formatProbeId(this.id)} is not loaded`);
    return this.#program.testRun(input instanceof Uint8Array ? { data: input } : input);
  }
}

function attachHook(p: BpfProgram, h: Hook, s: ProbeSpec): Attachment {
  switch (h.kind) {
    case 'tracepoint': {
      const [cat, name] = h.target.split('/') as [string, string];
      return p.attachTracepoint(cat, name, s.cookie ?? 0n);
    }
    case 'raw_tp':
      return p.attachRawTracepoint(h.target);
    case 'tp_btf':
    case 'fentry':
    case 'fexit':
      return p.attachTrace(s.cookie ?? 0n);
    case 'lsm':
      return p.attachLsm();
    case 'kprobe':
    case 'kretprobe': {
      const fn = h.target.startsWith('syscall:') ? resolveSyscallFunction(h.target.slice(8)) : h.target;
      return p.attachKprobe(fn, { retprobe: h.kind === 'kretprobe', offset: s.kprobeOffset, cookie: s.cookie });
    }
    case 'uprobe':
    case 'uretprobe': {
      // target is "binary:symbol+0xoffset" as resolveHook built it (symbol and offset each optional).
      const sep = h.target.lastIndexOf(':');
      const [sym = '', off] = h.target.slice(sep + 1).split('+');
      return p.attachUprobe({
        binaryPath: s.binaryPath ?? h.target.slice(0, sep),
        symbol: s.symbol ?? (sym || undefined),
        offset: s.offset ?? (off !== undefined ? Number(off) : undefined),
        pid: s.pid,
        retprobe: h.kind === 'uretprobe',
        cookie: s.cookie,
      });
    }
    case 'cgroup':
      return p.attachCgroup(s.cgroupPath!);
    case 'socket':
      return p.attachSocket(s.socketFd!);
    case 'tc':
      return p.attachTc(s.ifindex ?? s.ifname!, s.tcDirection ?? 'ingress', { priority: s.tcPriority, handle: s.tcHandle });
    case 'xdp':
      return p.attachXdp(s.ifindex ?? s.ifname!, s.xdpMode);
    case 'perf_event':
      return p.attachPerfEvent(s.perfEvent!);
    case 'iter':
      return p.attachIter();
  }
}
