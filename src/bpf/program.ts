// BpfProgram wraps one program of an opened object. Before load it can be excluded or retyped; after load
// it attaches to any hook type libbpf supports, runs under BPF_PROG_TEST_RUN, and reports its run stats.
// Attach failures are mapped to the most useful error: NotSupportedError when the kernel lacks the hook type,
// NotFoundError when the target (symbol, tracepoint, interface, binary) does not exist.
import fs from 'node:fs';
import os from 'node:os';
import koffi from 'koffi';
import { ProgType, SYS, Perf, progTypeName } from './constants.ts';
import {
  InvalidArgumentError,
  NotFoundError,
  NotSupportedError,
  StateError,
  errorFromErrno,
  errnoName,
  type VigilError,
} from './errors.ts';
import { feature } from './features.ts';
import { cstr, drainLibbpfLog, errno, lib, OPTS, PerfEventAttr, ProgInfo, type Ptr } from './ffi.ts';
import {
  BpfLink,
  MultiAttachment,
  SocketFilterAttachment,
  socketCookie,
  TcAttachment,
  TcDirection,
  XdpAttachment,
  type Attachment,
  type TcDirectionName,
} from './link.ts';
import { tracefsRoot } from './mounts.ts';

const { ENOENT, EEXIST, ESRCH, EINVAL, EOPNOTSUPP } = os.constants.errno;
/** The kernel-internal ENOTSUPP (not ENOTSUP/EOPNOTSUPP): what BPF_PROG_TEST_RUN returns for types it cannot run. */
const ENOTSUPP_KERNEL = 524;

export interface UprobeTarget {
  /** Path of the binary or shared library (absolute, or a library name libbpf resolves). */
  binaryPath: string;
  /** Function symbol; libbpf resolves its file offset. Either symbol or offset (or both: offset within symbol). */
  symbol?: string;
  offset?: number;
  /** Only this process (-1 or undefined: every process mapping the file). */
  pid?: number;
  retprobe?: boolean;
  cookie?: bigint;
}

export interface PerfEventTarget {
  type: number; // Perf.TYPE_SOFTWARE / TYPE_HARDWARE
  config: number; // e.g. Perf.COUNT_SW_CPU_CLOCK
  samplePeriod?: number;
  sampleFrequency?: number;
  pid?: number; // -1 for all
  cpus?: number[]; // default: every online CPU
}

export interface TestRunOptions {
  data?: Uint8Array;
  ctx?: Uint8Array;
  dataOutSize?: number;
  ctxOutSize?: number;
  repeat?: number;
  flags?: number;
  cpu?: number;
}

export interface TestRunResult {
  retval: number;
  /** Average run time per repetition, ns. */
  duration: number;
  dataOut: Buffer;
  ctxOut: Buffer;
}

export interface ProgramStats {
  id: number;
  name: string;
  runCount: number;
  runTimeNs: number;
  recursionMisses: number;
  verifiedInsns: number;
}

type Owner = { readonly loaded: boolean; readonly closed: boolean; readonly name: string };

export class BpfProgram {
  readonly #ptr: Ptr;
  readonly #owner: Owner;

  /** @internal Created by BpfObject. */
  constructor(ptr: Ptr, owner: Owner) {
    this.#ptr = ptr;
    this.#owner = owner;
  }

  get name(): string {
    return cstr(lib().bpf_program__name(this.#ptr));
  }
  get section(): string {
    return cstr(lib().bpf_program__section_name(this.#ptr));
  }
  get type(): number {
    return lib().bpf_program__type(this.#ptr) as number;
  }
  get typeName(): string {
    return progTypeName(this.type);
  }
  get expectedAttachType(): number {
    return lib().bpf_program__expected_attach_type(this.#ptr) as number;
  }
  get autoload(): boolean {
    return lib().bpf_program__autoload(this.#ptr) as boolean;
  }
  get instructionCount(): number {
    return Number(lib().bpf_program__insn_cnt(this.#ptr));
  }
  get objectName(): string {
    return this.#owner.name;
  }

  #beforeLoad(what: string): Ptr {
    if (this.#owner.closed) throw new StateError(`program ${this.name}: object ${this.#owner.name} is closed`);
    if (this.#owner.loaded) throw new StateError(`program ${this.name}: ${what} must happen before load`);
    return this.#ptr;
  }

  /** Excludes (false) or includes the program in the next load. */
  setAutoload(on: boolean): void {
    const r = lib().bpf_program__set_autoload(this.#beforeLoad('set autoload'), on) as number;
    if (r < 0) throw errorFromErrno(`program ${this.name}: set autoload`, -r);
  }

  setType(type: number): void {
    const r = lib().bpf_program__set_type(this.#beforeLoad('set type'), type) as number;
    if (r < 0) throw errorFromErrno(`program ${this.name}: set type`, -r);
  }

  setExpectedAttachType(type: number): void {
    const r = lib().bpf_program__set_expected_attach_type(this.#beforeLoad('set expected attach type'), type) as number;
    if (r < 0) throw errorFromErrno(`program ${this.name}: set expected attach type`, -r);
  }

  /** For fentry/fexit/freplace/tp_btf: retarget the attach function before load. */
  setAttachTarget(func: string): void {
    const r = lib().bpf_program__set_attach_target(this.#beforeLoad('set attach target'), 0, func) as number;
    if (r < 0) throw errorFromErrno(`program ${this.name}: set attach target ${func}`, -r);
  }

  /** @internal Verifier log destination for the next load (buffer must outlive the load). */
  setLogBuffer(buf: Ptr | null, size: number, level: number): void {
    const p = this.#beforeLoad('set log buffer');
    lib().bpf_program__set_log_buf(p, buf, size);
    lib().bpf_program__set_log_level(p, level);
  }

  /** Kernel fd; throws StateError when not loaded (before load, excluded, or closed). */
  get fd(): number {
    if (this.#owner.closed) throw new StateError(`program ${this.name}: object ${this.#owner.name} is closed`);
    const fd = lib().bpf_program__fd(this.#ptr) as number;
    if (fd < 0) throw new StateError(`program ${this.name} is not loaded (load the object first, or it was excluded)`);
    return fd;
  }

  get loaded(): boolean {
    return !this.#owner.closed && (lib().bpf_program__fd(this.#ptr) as number) >= 0;
  }

  // ---- attach ---------------------------------------------------------------------------------------------

  #link(ptr: Ptr | null, description: string, onError: (errno: number, log: string) => VigilError): BpfLink {
    if (ptr === null) {
      const e = errno();
      throw onError(e, drainLibbpfLog().trim());
    }
    drainLibbpfLog();
    return new BpfLink(ptr, description);
  }

  #generic(what: string, capability = 'CAP_BPF and CAP_PERFMON'): (e: number, log: string) => VigilError {
    return (e, log) => errorFromErrno(`attach ${this.name} to ${what}${log ? ` (libbpf: ${lastLine(log)})` : ''}`, e, { capability });
  }

  /** Attaches where the section name says (libbpf auto-attach), e.g. SEC("tp/sched/sched_process_exec"). */
  attach(): BpfLink {
    void this.fd; // throws StateError unless loaded
    return this.#link(lib().bpf_program__attach(this.#ptr) as Ptr | null, this.section, (e, log) => {
      if (e === EOPNOTSUPP || e === ESRCH) {
        return new InvalidArgumentError(`program ${this.name}: section "${this.section}" has no automatic attach target; attach it explicitly${log ? ` (libbpf: ${lastLine(log)})` : ''}`);
      }
      return this.#generic(this.section)(e, log);
    });
  }

  /** Attaches to tracepoint `category/name` (a tracefs event). */
  attachTracepoint(category: string, name: string, cookie = 0n): BpfLink {
    const what = `tracepoint ${category}/${name}`;
    return this.#link(
      lib().bpf_program__attach_tracepoint_opts(this.#ptr, category, name, { sz: koffi.sizeof(OPTS.tracepoint), bpf_cookie: cookie }) as Ptr | null,
      what,
      (e, log) => {
        if (e === ENOENT) {
          if (!feature('tracepoint').supported) return new NotSupportedError('tracepoint', feature('tracepoint').reason);
          const root = tracefsRoot();
          return new NotFoundError('symbol', `${category}/${name}`, root ? `${root}/events` : 'tracefs', 'no such tracepoint on this kernel');
        }
        return this.#generic(what)(e, log);
      },
    );
  }

  /** Attaches to a raw tracepoint (raw_tp/…), or a BTF tracepoint for tp_btf programs. */
  attachRawTracepoint(name: string): BpfLink {
    const what = `raw tracepoint ${name}`;
    return this.#link(lib().bpf_program__attach_raw_tracepoint(this.#ptr, name) as Ptr | null, what, (e, log) => {
      if (e === ENOENT) return new NotFoundError('symbol', name, 'the kernel\'s raw tracepoints', 'no such tracepoint');
      return this.#generic(what)(e, log);
    });
  }

  /** Attaches a BTF-typed tracing program (tp_btf, fentry, fexit, fmod_ret) to the target set at load. */
  attachTrace(cookie = 0n): BpfLink {
    const kind = /^fexit/.test(this.section) ? 'fexit' : /^fentry|^fmod_ret/.test(this.section) ? 'fentry' : 'tp_btf';
    return this.#link(
      lib().bpf_program__attach_trace_opts(this.#ptr, { sz: koffi.sizeof(OPTS.trace), cookie }) as Ptr | null,
      this.section,
      (e, log) => {
        if (!feature(kind).supported) return new NotSupportedError(kind, feature(kind).reason, { minKernel: feature(kind).minKernel });
        return this.#generic(this.section)(e, log);
      },
    );
  }

  /** Attaches a BPF LSM program to its hook. */
  attachLsm(): BpfLink {
    return this.#link(lib().bpf_program__attach_lsm(this.#ptr) as Ptr | null, this.section, (e, log) => {
      if (!feature('lsm').supported) return new NotSupportedError('lsm', feature('lsm').reason, { minKernel: '5.7' });
      return this.#generic(this.section)(e, log);
    });
  }

  /** Attaches a kprobe (or kretprobe) to kernel function `func`. */
  attachKprobe(func: string, o: { retprobe?: boolean; offset?: number; cookie?: bigint } = {}): BpfLink {
    const kind = o.retprobe ? 'kretprobe' : 'kprobe';
    const what = `${kind} ${func}${o.offset ? `+${o.offset}` : ''}`;
    if (!feature('kprobe').supported) {
      throw new NotSupportedError('kprobe', `attach ${this.name} to ${what}: ${feature('kprobe').reason}`, { minKernel: '4.1' });
    }
    return this.#link(
      lib().bpf_program__attach_kprobe_opts(this.#ptr, func, {
        sz: koffi.sizeof(OPTS.kprobe),
        bpf_cookie: o.cookie ?? 0n,
        offset: o.offset ?? 0,
        retprobe: !!o.retprobe,
      }) as Ptr | null,
      what,
      (e, log) => {
        if (e === ENOENT || e === EINVAL) return new NotFoundError('symbol', func, 'kernel symbols', 'the function does not exist or cannot be probed');
        return this.#generic(what)(e, log);
      },
    );
  }

  /** Attaches a uprobe/uretprobe to a user-space function, by symbol or file offset, for one pid or all. */
  attachUprobe(t: UprobeTarget): BpfLink {
    if (!t.symbol && t.offset === undefined) throw new InvalidArgumentError(`uprobe ${this.name}: give a symbol or an offset`);
    const where = `${t.binaryPath}:${t.symbol ?? ''}${t.offset !== undefined ? `+0x${t.offset.toString(16)}` : ''}`;
    const what = `${t.retprobe ? 'uretprobe' : 'uprobe'} ${where}${t.pid && t.pid > 0 ? ` pid ${t.pid}` : ''}`;
    if (t.binaryPath.includes('/') && !fs.existsSync(t.binaryPath)) {
      throw new NotFoundError('symbol', t.binaryPath, 'the filesystem', 'the binary does not exist');
    }
    return this.#link(
      lib().bpf_program__attach_uprobe_opts(this.#ptr, t.pid ?? -1, t.binaryPath, t.offset ?? 0, {
        sz: koffi.sizeof(OPTS.uprobe),
        ref_ctr_offset: 0,
        bpf_cookie: t.cookie ?? 0n,
        retprobe: !!t.retprobe,
        func_name: t.symbol ?? null,
      }) as Ptr | null,
      what,
      (e, log) => {
        if (!feature('uprobe').supported) return new NotSupportedError('uprobe', feature('uprobe').reason);
        if (e === ENOENT || e === ESRCH) {
          return new NotFoundError('symbol', t.symbol ?? where, t.binaryPath, `libbpf: ${lastLine(log) || errnoName(e)}`);
        }
        return this.#generic(what)(e, log);
      },
    );
  }

  /** Attaches a cgroup program (cgroup_skb, cgroup/sock, cgroup/connect4, ...) to a cgroup v2 directory. */
  attachCgroup(cgroupPath: string): BpfLink {
    let fd: number;
    try {
      fd = fs.openSync(cgroupPath, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    } catch (err) {
      throw new NotFoundError('symbol', cgroupPath, 'the cgroup v2 hierarchy', (err as Error).message);
    }
    try {
      return this.#link(lib().bpf_program__attach_cgroup(this.#ptr, fd) as Ptr | null, `cgroup ${cgroupPath}`, this.#generic(`cgroup ${cgroupPath}`, 'CAP_NET_ADMIN and CAP_BPF'));
    } finally {
      fs.closeSync(fd); // the link holds its own reference to the cgroup
    }
  }

  /**
   * Attaches an XDP program. Without `mode` it is a BPF link (the kernel picks native, else generic);
   * with a mode it goes through netlink with that mode's flag.
   */
  attachXdp(ifname: string | number, mode?: 'skb' | 'drv' | 'hw'): Attachment {
    const ifindex = resolveIfindex(ifname);
    const what = `xdp ${ifname}${mode ? ` (${mode})` : ''}`;
    if (!mode) return this.#link(lib().bpf_program__attach_xdp(this.#ptr, ifindex) as Ptr | null, what, this.#generic(what, 'CAP_NET_ADMIN'));
    const flags = { skb: 2, drv: 4, hw: 8 }[mode] | 1; // | XDP_FLAGS_UPDATE_IF_NOEXIST
    const r = lib().bpf_xdp_attach(ifindex, this.fd, flags, null) as number;
    if (r < 0) {
      if (-r === EEXIST || -r === os.constants.errno.EBUSY) throw errorFromErrno(`attach ${what}: another XDP program is attached`, -r);
      throw errorFromErrno(`attach ${this.name} to ${what}`, -r, { capability: 'CAP_NET_ADMIN', feature: `xdp ${mode} mode` });
    }
    return new XdpAttachment(ifindex, flags & ~1, this.fd, what);
  }

  /** Attaches a TC classifier (sched_cls) to an interface's clsact qdisc, creating the qdisc when absent. */
  attachTc(ifname: string | number, direction: TcDirectionName, o: { priority?: number; handle?: number; destroyQdiscOnDetach?: boolean } = {}): TcAttachment {
    const ifindex = resolveIfindex(ifname);
    const l = lib();
    const attachPoint = TcDirection[direction];
    const what = `tc ${direction} ${ifname}`;
    const hook = { sz: koffi.sizeof(OPTS.tcHook), ifindex, attach_point: attachPoint, parent: 0 };
    const hr = l.bpf_tc_hook_create(hook) as number;
    if (hr < 0 && -hr !== EEXIST) throw errorFromErrno(`create clsact qdisc on ${ifname}`, -hr, { capability: 'CAP_NET_ADMIN' });
    const createdQdisc = hr === 0;
    const tcOpts = { sz: koffi.sizeof(OPTS.tcOpts), prog_fd: this.fd, flags: 0, prog_id: 0, handle: o.handle ?? 0, priority: o.priority ?? 0 };
    const r = l.bpf_tc_attach(hook, tcOpts) as number;
    if (r < 0) {
      if (createdQdisc) l.bpf_tc_hook_destroy({ ...hook, attach_point: TcDirection.ingress | TcDirection.egress });
      throw errorFromErrno(`attach ${this.name} to ${what}`, -r, { capability: 'CAP_NET_ADMIN' });
    }
    return new TcAttachment({
      ifindex,
      direction: attachPoint,
      handle: tcOpts.handle,
      priority: tcOpts.priority,
      progId: tcOpts.prog_id,
      destroyQdisc: (o.destroyQdiscOnDetach ?? true) && createdQdisc,
      description: what,
    });
  }

  /** Binds a socket filter program to socket fd `sock` (SO_ATTACH_BPF). */
  attachSocket(sock: number): SocketFilterAttachment {
    const val = Buffer.alloc(4);
    val.writeInt32LE(this.fd);
    const r = lib().setsockopt(sock, 1 /* SOL_SOCKET */, 50 /* SO_ATTACH_BPF */, val, 4) as number;
    if (r < 0) throw errorFromErrno(`attach ${this.name} to socket fd ${sock}`, errno(), { capability: 'CAP_NET_RAW' });
    return new SocketFilterAttachment(sock, `socket fd ${sock}`, socketCookie(sock));
  }

  /** Opens a perf event on each CPU and attaches the program to each (perf_event programs). */
  attachPerfEvent(t: PerfEventTarget): MultiAttachment {
    const cpus = t.cpus ?? onlineCpus();
    const parts: Attachment[] = [];
    const what = `perf_event type=${t.type} config=${t.config}`;
    try {
      for (const cpu of cpus) {
        const freq = t.sampleFrequency !== undefined && t.sampleFrequency > 0;
        const attr = {
          type: t.type,
          size: koffi.sizeof(PerfEventAttr),
          config: t.config,
          sample_period_or_freq: freq ? t.sampleFrequency : (t.samplePeriod ?? 1),
          flags: freq ? Perf.FLAG_FREQ : 0n,
        };
        const attrBuf = Buffer.alloc(koffi.sizeof(PerfEventAttr));
        koffi.encode(attrBuf, PerfEventAttr, attr);
        const pfd = Number(lib().syscall(SYS.perf_event_open, 'void *', attrBuf, 'int', t.pid ?? -1, 'int', cpu, 'int', -1, 'unsigned long', 8 /* FD_CLOEXEC */));
        if (pfd < 0) {
          const e = errno();
          if (e === ENOENT || e === EOPNOTSUPP) throw new NotSupportedError('perf_event', `${what} on cpu ${cpu}: ${errnoName(e)} (event not available)`);
          throw errorFromErrno(`perf_event_open ${what} cpu ${cpu}`, e, { capability: 'CAP_PERFMON' });
        }
        const link = lib().bpf_program__attach_perf_event(this.#ptr, pfd) as Ptr | null;
        if (link === null) {
          const e = errno();
          lib().close(pfd);
          throw errorFromErrno(`attach ${this.name} to ${what} cpu ${cpu}`, e, { capability: 'CAP_PERFMON' });
        }
        parts.push(new BpfLink(link, `${what} cpu ${cpu}`)); // the link owns the perf fd
      }
    } catch (err) {
      for (const p of parts) p.detach();
      throw err;
    }
    return new MultiAttachment(what, parts);
  }

  /** Attaches a BPF iterator (iter/task, ...). Read its output with readIterator(). */
  attachIter(): BpfLink {
    return this.#link(lib().bpf_program__attach_iter(this.#ptr, null) as Ptr | null, this.section, this.#generic(this.section));
  }

  // ---- run and inspect -------------------------------------------------------------------------------------

  /** Runs the program once (or `repeat` times) in the kernel on synthetic input (BPF_PROG_TEST_RUN). */
  testRun(o: TestRunOptions = {}): TestRunResult {
    const dataOut = Buffer.alloc(o.dataOutSize ?? (o.data ? o.data.length + 256 : 0));
    const ctxOut = Buffer.alloc(o.ctxOutSize ?? 0);
    const runOpts = {
      sz: koffi.sizeof(OPTS.testRun),
      data_in: o.data ?? null,
      data_out: dataOut.length ? dataOut : null,
      data_size_in: o.data?.length ?? 0,
      data_size_out: dataOut.length,
      ctx_in: o.ctx ?? null,
      ctx_out: ctxOut.length ? ctxOut : null,
      ctx_size_in: o.ctx?.length ?? 0,
      ctx_size_out: ctxOut.length,
      retval: 0,
      repeat: o.repeat ?? 0,
      duration: 0,
      flags: o.flags ?? 0,
      cpu: o.cpu ?? 0,
      batch_size: 0,
    };
    const r = lib().bpf_prog_test_run_opts(this.fd, runOpts) as number;
    if (r < 0) {
      if (-r === EOPNOTSUPP || -r === os.constants.errno.ENOTSUP || -r === ENOTSUPP_KERNEL) {
        throw new NotSupportedError('prog_test_run', `BPF_PROG_TEST_RUN does not support ${this.typeName} programs on this kernel`);
      }
      throw errorFromErrno(`test run ${this.name}`, -r, { capability: 'CAP_BPF (and CAP_SYS_ADMIN for some types)' });
    }
    return {
      retval: runOpts.retval,
      duration: runOpts.duration,
      dataOut: dataOut.subarray(0, runOpts.data_size_out),
      ctxOut: ctxOut.subarray(0, runOpts.ctx_size_out),
    };
  }

  /** Kernel stats of the loaded program. Run counts are 0 unless BPF stats are enabled (see enableBpfStats). */
  stats(): ProgramStats {
    return progStatsByFd(this.fd);
  }

  /** The kernel-wide program id. */
  get id(): number {
    return this.stats().id;
  }

  pin(path: string): void {
    const r = lib().bpf_program__pin(this.#ptr, path) as number;
    if (r < 0) throw errorFromErrno(`pin program ${this.name} at ${path}`, -r, { capability: 'CAP_BPF' });
  }

  unpin(path: string): void {
    lib().bpf_program__unpin(this.#ptr, path);
  }

  /** Whether this program's type/section is one the kernel type `t` belongs to. */
  isType(t: number): boolean {
    return this.type === t;
  }
}

/** Reads everything a BPF iterator link produces. */
export function readIterator(link: BpfLink): Buffer {
  const lfd = link.linkFd;
  if (lfd === undefined) throw new StateError(`${link.description} is detached`);
  const fd = lib().bpf_iter_create(lfd) as number;
  if (fd < 0) throw errorFromErrno(`create iterator for ${link.description}`, -fd);
  const chunks: Buffer[] = [];
  try {
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
  } finally {
    fs.closeSync(fd);
  }
  return Buffer.concat(chunks);
}

export function progStatsByFd(fd: number): ProgramStats {
  const info: Record<string, unknown> = {};
  const len = [koffi.sizeof(ProgInfo)];
  const r = lib().bpf_prog_get_info(fd, info, len) as number;
  if (r < 0) throw errorFromErrno(`program info for fd ${fd}`, -r);
  return {
    id: info.id as number,
    name: info.name as string,
    runCount: Number(info.run_cnt),
    runTimeNs: Number(info.run_time_ns),
    recursionMisses: Number(info.recursion_misses),
    verifiedInsns: info.verified_insns as number,
  };
}

/** Online CPU ids from /sys/devices/system/cpu/online ("0-3,5"). */
export function onlineCpus(text = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8')): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-').map(Number);
    for (let i = a!; i <= (b ?? a!); i++) out.push(i);
  }
  return out;
}

/** Interface index of a name (or the index itself). Throws NotFoundError for an unknown interface. */
export function resolveIfindex(ifname: string | number): number {
  if (typeof ifname === 'number') return ifname;
  const idx = lib().if_nametoindex(ifname) as number;
  if (!idx) throw new NotFoundError('symbol', ifname, 'network interfaces', 'no such interface');
  return idx;
}

function lastLine(log: string): string {
  const lines = log.split('\n').map((l) => l.replace(/^libbpf:\s*/, '').trim()).filter(Boolean);
  return lines[lines.length - 1] ?? '';
}

export { ProgType };
