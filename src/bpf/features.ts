// Kernel feature probes. Each runs at most once per process and its answer is cached (cilium/ebpf
// internal/feature.go). The manager consults them before load, so that a program of a type the kernel cannot
// load or attach is excluded up front instead of failing the whole object.
import fs from 'node:fs';
import os from 'node:os';
import koffi from 'koffi';
import { AttachType, MapType, ProgType } from './constants.ts';
import { InvalidArgumentError, NotSupportedError, PermissionError, errorFromErrno } from './errors.ts';
import { tracepointArities } from './btf.ts';
import { errno, initLibbpf, OPTS } from './ffi.ts';
import { ensureTracefs, tracefsRoot } from './mounts.ts';

export interface FeatureResult {
  supported: boolean;
  /** Why not, in words a user can act on. */
  reason: string;
  minKernel?: string;
}

const cache = new Map<string, FeatureResult>();

function cached(name: string, probe: () => FeatureResult): FeatureResult {
  let r = cache.get(name);
  if (!r) {
    try {
      r = probe();
    } catch (err) {
      r = { supported: false, reason: `probe failed: ${(err as Error).message}` };
    }
    cache.set(name, r);
  }
  return r;
}

/** Kernel release as [major, minor, patch]. */
export function kernelVersion(): [number, number, number] {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(os.release());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : [0, 0, 0];
}

export function kernelAtLeast(major: number, minor: number): boolean {
  const [a, b] = kernelVersion();
  return a > major || (a === major && b >= minor);
}

/** Whether tracepoint programs may call every one of these helpers (libbpf's helper probe). */
function tracepointHelpers(ids: number[]): boolean {
  const l = initLibbpf();
  return ids.every((id) => l.libbpf_probe_bpf_helper(ProgType.TRACEPOINT, id, null) === 1);
}

// A two-instruction program: r0 = 0; exit.
const RET0 = Buffer.from([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);

/** Loads `r0 = 0; exit` as a BTF-attached program; returns 0 or a negative errno. */
function tryLoadBtfProg(progType: number, attachType: number, target: string): number {
  const l = initLibbpf();
  const id = l.libbpf_find_vmlinux_btf_id(target, attachType);
  if (id < 0) return id;
  const fd = l.bpf_prog_load(progType, 'vigil_probe', 'GPL', RET0, 2, {
    sz: koffi.sizeof(OPTS.progLoad),
    attempts: 1,
    expected_attach_type: attachType,
    attach_btf_id: id,
  });
  if (fd >= 0) {
    fs.closeSync(fd);
    return 0;
  }
  return -errno();
}

/**
 * Loads a tracepoint program of `insns` ([opcode, dst | src << 4, offset, imm] each), only to learn whether the
 * verifier takes it, and closes it. Returns 0 or a negative errno.
 */
function tryLoadTracepoint(insns: [number, number, number, number][]): number {
  const l = initLibbpf();
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, regs, off, imm], i) => {
    buf[i * 8] = code;
    buf[i * 8 + 1] = regs;
    buf.writeInt16LE(off, i * 8 + 2);
    buf.writeInt32LE(imm, i * 8 + 4);
  });
  const fd = l.bpf_prog_load(ProgType.TRACEPOINT, 'vigil_probe', 'GPL', buf, insns.length, null);
  if (fd >= 0) {
    fs.closeSync(fd);
    return 0;
  }
  return -errno();
}

/** The BTF id of the bpf_rdonly_cast kfunc in the kernel's BTF, or a negative errno. */
const rdonlyCastId = (): number => initLibbpf().libbpf_find_vmlinux_btf_id('bpf_rdonly_cast', AttachType.TRACE_FENTRY);

/**
 * Whether a tracepoint program may call the bpf_rdonly_cast kfunc: loads `r1 = 0; r2 = <struct dentry>;
 * call bpf_rdonly_cast; r0 = 0; exit` against the kernel's BTF. Returns 0 or a negative errno.
 */
function tryLoadRdonlyCast(): number {
  const l = initLibbpf();
  const fn = rdonlyCastId();
  if (fn < 0) return fn;
  const btf = l.btf__load_vmlinux_btf();
  if (!btf) return -errno();
  let dentry: number;
  try {
    dentry = l.btf__find_by_name_kind(btf, 'dentry', 4 /* BTF_KIND_STRUCT */);
  } finally {
    l.btf__free(btf);
  }
  if (dentry < 0) return dentry;
  return tryLoadTracepoint([
    [0xb7, 0x01, 0, 0], // r1 = 0
    [0xb7, 0x02, 0, dentry], // r2 = BTF id of struct dentry
    [0x85, 0x20, 0, fn], // call kfunc (src_reg BPF_PSEUDO_KFUNC_CALL), in vmlinux's BTF
    [0xb7, 0x00, 0, 0], // r0 = 0
    [0x95, 0x00, 0, 0], // exit
  ]);
}

/**
 * Whether bpf_rdonly_cast(p, 0) gives read-only untrusted memory that a tracepoint program may load from at a
 * variable offset (newer kernels; before, btf_id 0 is refused). The program is only loaded, never run.
 * Returns 0 or a negative errno.
 */
function tryLoadRdonlyCastMem(): number {
  const fn = rdonlyCastId();
  if (fn < 0) return fn;
  return tryLoadTracepoint([
    [0x85, 0x00, 0, 7], // call bpf_get_prandom_u32: an offset the verifier does not know
    [0xbf, 0x06, 0, 0], // r6 = r0
    [0x57, 0x06, 0, 0xff], // r6 &= 0xff
    [0xb7, 0x01, 0, 0], // r1 = 0
    [0xb7, 0x02, 0, 0], // r2 = 0: no type, untrusted memory
    [0x85, 0x20, 0, fn], // call kfunc bpf_rdonly_cast
    [0x0f, 0x60, 0, 0], // r0 += r6
    [0x79, 0x00, 0, 0], // r0 = *(u64 *)(r0 + 0)
    [0xb7, 0x00, 0, 0], // r0 = 0
    [0x95, 0x00, 0, 0], // exit
  ]);
}

function hasBtf(): boolean {
  return fs.existsSync('/sys/kernel/btf/vmlinux');
}

const probes: Record<string, () => FeatureResult> = {
  btf: () =>
    hasBtf()
      ? { supported: true, reason: '' }
      : { supported: false, reason: '/sys/kernel/btf/vmlinux is missing (CONFIG_DEBUG_INFO_BTF)', minKernel: '5.4' },
  ringbuf: () => {
    const l = initLibbpf();
    const r = l.libbpf_probe_bpf_map_type(MapType.RINGBUF, null);
    return r === 1
      ? { supported: true, reason: '' }
      : { supported: false, reason: 'BPF_MAP_TYPE_RINGBUF is unknown to this kernel', minKernel: '5.8' };
  },
  perf_event_array: () => {
    const l = initLibbpf();
    return l.libbpf_probe_bpf_map_type(MapType.PERF_EVENT_ARRAY, null) === 1
      ? { supported: true, reason: '' }
      : { supported: false, reason: 'BPF_MAP_TYPE_PERF_EVENT_ARRAY is unavailable' };
  },
  tracepoint: () => {
    ensureTracefs();
    const root = tracefsRoot();
    return root && fs.existsSync(`${root}/events`)
      ? { supported: true, reason: '' }
      : { supported: false, reason: 'tracefs is not mounted and cannot be mounted (mount -t tracefs tracefs /sys/kernel/tracing)' };
  },
  raw_tp: () => {
    const l = initLibbpf();
    return l.libbpf_probe_bpf_prog_type(ProgType.RAW_TRACEPOINT, null) === 1
      ? { supported: true, reason: '' }
      : { supported: false, reason: 'BPF_PROG_TYPE_RAW_TRACEPOINT cannot be loaded', minKernel: '4.17' };
  },
  kprobe: () => {
    if (fs.existsSync('/sys/bus/event_source/devices/kprobe/type')) return { supported: true, reason: '' };
    ensureTracefs();
    const root = tracefsRoot();
    if (root && fs.existsSync(`${root}/kprobe_events`)) return { supported: true, reason: '' };
    return {
      supported: false,
      reason: 'the kernel has no kprobe PMU and no tracefs kprobe_events (CONFIG_KPROBE_EVENTS is off)',
      minKernel: '4.1',
    };
  },
  uprobe: () => {
    if (fs.existsSync('/sys/bus/event_source/devices/uprobe/type')) return { supported: true, reason: '' };
    const root = tracefsRoot();
    if (root && fs.existsSync(`${root}/uprobe_events`)) return { supported: true, reason: '' };
    return { supported: false, reason: 'the kernel has no uprobe PMU and no uprobe_events (CONFIG_UPROBE_EVENTS)', minKernel: '4.3' };
  },
  tp_btf: () => {
    if (!hasBtf()) return { supported: false, reason: 'no kernel BTF', minKernel: '5.5' };
    const r = tryLoadBtfProg(ProgType.TRACING, AttachType.TRACE_RAW_TP, 'sched_switch');
    return r === 0 ? { supported: true, reason: '' } : { supported: false, reason: `BTF raw tracepoint load failed (${-r})`, minKernel: '5.5' };
  },
  fentry: () => {
    if (!hasBtf()) return { supported: false, reason: 'no kernel BTF', minKernel: '5.5' };
    const r = tryLoadBtfProg(ProgType.TRACING, AttachType.TRACE_FENTRY, 'do_nanosleep');
    return r === 0
      ? { supported: true, reason: '' }
      : { supported: false, reason: `loading an fentry program failed with errno ${-r} (trampolines unavailable or locked down)`, minKernel: '5.5' };
  },
  fexit: () => {
    if (!hasBtf()) return { supported: false, reason: 'no kernel BTF', minKernel: '5.5' };
    const r = tryLoadBtfProg(ProgType.TRACING, AttachType.TRACE_FEXIT, 'do_nanosleep');
    return r === 0
      ? { supported: true, reason: '' }
      : { supported: false, reason: `loading an fexit program failed with errno ${-r} (trampolines unavailable or locked down)`, minKernel: '5.5' };
  },
  // Helpers of tracepoint programs (helper ids from enum bpf_func_id): the syscall sensor's per-thread state
  // and its open programs at exit. The map type came in 5.11; its helpers reached tracepoints later.
  task_storage: () => {
    const l = initLibbpf();
    if (l.libbpf_probe_bpf_map_type(MapType.TASK_STORAGE, null) !== 1) return { supported: false, reason: 'BPF_MAP_TYPE_TASK_STORAGE is unknown to this kernel', minKernel: '5.11' };
    return tracepointHelpers([156 /* task_storage_get */, 158 /* get_current_task_btf */])
      ? { supported: true, reason: '' }
      : { supported: false, reason: 'tracepoint programs cannot call bpf_task_storage_get on this kernel' };
  },
  task_pt_regs: () =>
    tracepointHelpers([175 /* task_pt_regs */, 158 /* get_current_task_btf */])
      ? { supported: true, reason: '' }
      : { supported: false, reason: 'tracepoint programs cannot call bpf_task_pt_regs on this kernel', minKernel: '5.15' },
  // The path walk's plain loads (bpf/include/path.h, vigil_direct_reads).
  rdonly_cast: () => {
    if (!hasBtf()) return { supported: false, reason: 'no kernel BTF', minKernel: '6.2' };
    const r = tryLoadRdonlyCast();
    return r === 0
      ? { supported: true, reason: '' }
      : { supported: false, reason: `tracepoint programs cannot call the bpf_rdonly_cast kfunc (errno ${-r})`, minKernel: '6.2' };
  },
  // The fd table's slots read with a plain load (bpf/syscalls.bpf.c fd_file, vigil_mem_cast).
  rdonly_cast_mem: () => {
    if (!hasBtf()) return { supported: false, reason: 'no kernel BTF', minKernel: '6.17' };
    const r = tryLoadRdonlyCastMem();
    return r === 0
      ? { supported: true, reason: '' }
      : { supported: false, reason: `bpf_rdonly_cast cannot give untyped read-only memory here (errno ${-r})`, minKernel: '6.17' };
  },
  // The syscall sensor's io_uring programs (bpf/syscalls.bpf.c, iou_*): raw tracepoints with the arguments
  // they read by position, checked in the kernel's BTF: io_uring_complete passes (ctx, req, cqe) on recent
  // kernels, and passed the user_data and the result one by one before.
  io_uring_tp: () => {
    if (!hasBtf()) return { supported: false, reason: 'no kernel BTF' };
    if (!feature('raw_tp').supported) return { supported: false, reason: `raw tracepoints: ${feature('raw_tp').reason}` };
    const want: [string, number][] = [['io_uring_submit_req', 2], ['io_uring_complete', 4], ['io_uring_cqe_overflow', 6]];
    const arities = tracepointArities(want.map(([tp]) => tp));
    for (const [i, [tp, n]] of want.entries()) {
      const got = arities[i];
      if (got === undefined) return { supported: false, reason: `the kernel has no tracepoint io_uring/${tp} (CONFIG_IO_URING off, or older than these tracepoints)` };
      if (got !== n) return { supported: false, reason: `tracepoint io_uring/${tp} passes ${got - 1} arguments here, not the ${n - 1} vigil reads` };
    }
    return { supported: true, reason: '' };
  },
  cgroup_unix_connect: () => {
    // The deny rules' hook on connects to unix sockets: `r0 = 0; exit` as a cgroup/connect_unix program.
    const fd = initLibbpf().bpf_prog_load(ProgType.CGROUP_SOCK_ADDR, 'vigil_probe', 'GPL', RET0, 2, {
      sz: koffi.sizeof(OPTS.progLoad),
      attempts: 1,
      expected_attach_type: AttachType.CGROUP_UNIX_CONNECT,
    });
    if (fd >= 0) {
      fs.closeSync(fd);
      return { supported: true, reason: '' };
    }
    return { supported: false, reason: `loading a cgroup/connect_unix program failed with errno ${errno()} (the hook is new in 6.7)`, minKernel: '6.7' };
  },
  lsm: () => {
    if (!hasBtf()) return { supported: false, reason: 'no kernel BTF', minKernel: '5.7' };
    const r = tryLoadBtfProg(ProgType.LSM, AttachType.LSM_MAC, 'file_open');
    return r === 0
      ? { supported: true, reason: '' }
      : { supported: false, reason: `loading a BPF LSM program failed with errno ${-r} (CONFIG_BPF_LSM off or "bpf" not in lsm=)`, minKernel: '5.7' };
  },
};

/** Probes one feature (cached). Unknown names throw. */
export function feature(name: keyof typeof probes | string): FeatureResult {
  const probe = probes[name];
  if (!probe) throw new Error(`unknown feature probe ${name}`);
  return cached(name, probe);
}

/** Throws NotSupportedError unless the feature is available. */
export function requireFeature(name: string, what: string): void {
  const r = feature(name);
  if (!r.supported) throw new NotSupportedError(name, `${what}: ${r.reason}`, { minKernel: r.minKernel });
}

/**
 * How the sensors' path walk (bpf/include/path.h) reads kernel memory: "auto" takes "direct" (plain loads
 * through bpf_rdonly_cast) where tracepoint programs may call it, else "helper" (bpf_probe_read_kernel per
 * field); "direct" where they cannot is an error naming the fix.
 */
export function resolvePathReads(want: 'auto' | 'direct' | 'helper'): 'direct' | 'helper' {
  if (!['auto', 'direct', 'helper'].includes(want)) throw new InvalidArgumentError(`pathReads must be "auto", "direct" or "helper", got ${JSON.stringify(want)}`);
  if (want === 'helper') return 'helper';
  if (want === 'direct') requireFeature('rdonly_cast', 'pathReads is "direct" (set it to "helper" or "auto")');
  return feature('rdonly_cast').supported ? 'direct' : 'helper';
}

/** All probe results, for `vigil status` and diagnostics. */
export function allFeatures(): Record<string, FeatureResult> {
  return Object.fromEntries(Object.keys(probes).map((k) => [k, feature(k)]));
}

let privilegesOk = false;
/**
 * Checks once that this process may use bpf() at all, by creating a one-slot array map. Throws
 * PermissionError naming the capability, so that a missing privilege is never mistaken for a missing
 * kernel feature by the probes above.
 */
export function requireBpfPrivileges(): void {
  if (privilegesOk) return;
  const l = initLibbpf();
  const fd = l.bpf_map_create(MapType.ARRAY, 'vigil_priv', 4, 4, 1, null) as number;
  if (fd >= 0) {
    l.close(fd);
    privilegesOk = true;
    return;
  }
  const e = -fd;
  if (e === 1 /* EPERM */ || e === 13 /* EACCES */) {
    throw new PermissionError('use BPF (bpf() returned EPERM)', 'CAP_BPF (kernel 5.8+) or CAP_SYS_ADMIN', { errno: e });
  }
  if (e === 38 /* ENOSYS */) throw new NotSupportedError('bpf', 'the bpf() system call is not available (CONFIG_BPF_SYSCALL)');
  throw errorFromErrno('create a test BPF map', e);
}

/** Forgets cached answers (tests only). */
export function resetFeatureCache(): void {
  cache.clear();
}
