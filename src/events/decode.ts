// Decoders: one per opcode, reading straight from ring memory (a DataView over the mmap'd ring) at offsets
// generated from the BTF of events.h. A record too short for its opcode, or of an unknown opcode, is
// reported as a DecodeError result (counted by the caller), never thrown: bad input must not stop the loop.
import {
  CGROUP_EVENT,
  COMM_EVENT,
  CREDS_EVENT,
  EVENT_HEADER,
  EXEC_EVENT,
  EXIT_EVENT,
  FORK_EVENT,
  PROC_CREDS,
  PROC_NS,
  SIZEOF,
  VIGIL_CGROUP_OP,
  VIGIL_OPCODE,
  VIGIL_PROC_FLAGS,
} from './layout.generated.ts';
import { execKillAt, kernelDenyAt, kernelKillAt } from './kill.ts';
import { asBuffer, asciiBlock, bytesToString, cString, splitNul } from './strings.ts';
import type { CgroupEvent, CommEvent, Creds, CredsEvent, ExecEvent, ExitEvent, ForkEvent, Namespaces, ProcessEvent } from './types.ts';
import { FILE_EVENT, NET_EVENT, SYS_EVENT, VIGIL_SYS_FLAGS, VIGIL_SYS_OP } from './layout.generated.ts';
import type { FileEvent, FileOp, NetEvent, NetOp, SysEvent, SysOp, SyscallEvent } from './types.ts';
import {
  AT_FLAGS,
  CLONE_FLAGS,
  MFD_FLAGS,
  RENAME_FLAGS,
  RESOLVE_FLAGS,
  SOCK_FLAGS,
  UMOUNT_FLAGS,
  bitNames,
  bpfCmdName,
  familyName,
  modeOctal,
  mountFlagNames,
  nsTypeNames,
  openFlagNames,
  protocolName,
  ptraceRequestName,
  retError,
  sockTypeName,
  syscallName,
  tcpStateName,
} from '../syscalls/names.ts';
import { mapTypeName, progTypeName } from '../bpf/constants.ts';

const TWO32 = 4294967296;

/** A u64 as a JS number: exact below 2^53, and deterministic above. */
export function u64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * TWO32;
}

function hex64(v: DataView, off: number): string {
  return v.getUint32(off + 4, true).toString(16).padStart(8, '0') + v.getUint32(off, true).toString(16).padStart(8, '0');
}

// The credentials block decoded last, as bytes and as the frozen object: the execs of one user share one set,
// and comparing its bytes costs less than building the object and six hex strings again (bench/exec).
let lastCredsBytes = Buffer.alloc(SIZEOF.proc_creds);
let lastCreds: Creds | undefined;

export function decodeCreds(v: DataView, o: number): Creds {
  const b = asBuffer(viewBytes(v));
  const start = v.byteOffset + o - b.byteOffset;
  if (lastCreds && lastCredsBytes.compare(b, start, start + SIZEOF.proc_creds) === 0) return lastCreds;
  const c = buildCreds(v, o);
  b.copy(lastCredsBytes, 0, start, start + SIZEOF.proc_creds);
  lastCreds = c;
  return c;
}

function buildCreds(v: DataView, o: number): Creds {
  const login = v.getUint32(o + PROC_CREDS.loginuid.offset, true);
  return Object.freeze({
    uid: v.getUint32(o + PROC_CREDS.uid.offset, true),
    gid: v.getUint32(o + PROC_CREDS.gid.offset, true),
    euid: v.getUint32(o + PROC_CREDS.euid.offset, true),
    egid: v.getUint32(o + PROC_CREDS.egid.offset, true),
    suid: v.getUint32(o + PROC_CREDS.suid.offset, true),
    sgid: v.getUint32(o + PROC_CREDS.sgid.offset, true),
    fsuid: v.getUint32(o + PROC_CREDS.fsuid.offset, true),
    fsgid: v.getUint32(o + PROC_CREDS.fsgid.offset, true),
    capEffective: hex64(v, o + PROC_CREDS.cap_effective.offset),
    capPermitted: hex64(v, o + PROC_CREDS.cap_permitted.offset),
    capInheritable: hex64(v, o + PROC_CREDS.cap_inheritable.offset),
    loginuid: login === 0xffffffff ? undefined : login,
  });
}

export function decodeNs(v: DataView, o: number): Namespaces {
  return {
    cgroupId: u64(v, o + PROC_NS.cgroup_id.offset),
    pidns: v.getUint32(o + PROC_NS.pidns.offset, true),
    mntns: v.getUint32(o + PROC_NS.mntns.offset, true),
    nspid: v.getUint32(o + PROC_NS.nspid.offset, true),
  };
}

/** Why a record could not be decoded. A dedicated field name, so no event field can be mistaken for it. */
export interface DecodeFailure {
  decodeError: 'short' | 'unknown-opcode' | 'bad-size';
  opcode: number;
}
export type DecodeResult<T> = T | DecodeFailure;

// The byte view of the last DataView seen: the ring reader hands every record in the same view, so this is
// built once per ring rather than once per record (an allocation per event, bench/pipeline).
let lastView: DataView | undefined;
let lastBytes: Uint8Array = new Uint8Array(0);

export function viewBytes(v: DataView): Uint8Array {
  if (v !== lastView) {
    lastBytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    lastView = v;
  }
  return lastBytes;
}

/**
 * The environment block decoded last, as bytes and as its strings (frozen: events share it). Consecutive
 * execs mostly inherit one environment (a shell's, a service's), and comparing ~0.5-4 KiB of bytes costs far
 * less than decoding and splitting it again: ~1.7 KiB of garbage per exec (bench/exec). A shell changes one
 * variable per command, `_` (the command's path), which it puts last: a block that differs from the last one
 * only in its last variable reuses the strings of all the others, and only that one is decoded. It holds
 * one raw environment, the same exposure as the exec event it came from, until the next exec replaces it.
 */
const ENV_MEMO_MAX = 16 << 10;
/** The last block's bytes are lastEnvStore[0, lastEnvLen): one buffer, copied into, not one per exec. */
const lastEnvStore: Buffer = Buffer.alloc(ENV_MEMO_MAX);
let lastEnvLen = 0;
let lastEnv: readonly string[] = Object.freeze([]);
/** Bytes of the last block before its last variable (after the NUL that ends the one before); 0: none. */
let lastEnvHead = 0;

/** Bytes of block [at, at+n) before its last variable: up to and with the NUL before it (0: one variable). */
function envHead(buf: Buffer, at: number, n: number): number {
  const stop = buf[at + n - 1] === 0 ? n - 1 : n; // a trailing NUL ends the last variable
  // Backwards over the last variable (a shell's is `_=<the command's path>`): a loop over its few bytes,
  // not Buffer#lastIndexOf, whose argument checks and native call cost more than the scan.
  let i = at + stop - 1;
  while (i >= at && buf[i] !== 0) i--;
  return i >= at ? i - at + 1 : 0;
}

/**
 * Environments decodeExec made, joined by NUL, when it had that string anyway (an ASCII block is decoded
 * whole, then split): the process cache's environment table keys on it (joinedEnv), and joining ~40 strings
 * again cost a third of an exec's decoding and lookup (bench/pipeline). The last few lists, by identity;
 * joinedEnv takes an entry out, so a list the cache applied (and replaced by its scrubbed form) is not kept.
 */
const JOINS = 8;
const joinLists: (readonly string[] | undefined)[] = new Array(JOINS).fill(undefined);
const joinStrings: (string | undefined)[] = new Array(JOINS).fill(undefined);
let joinNext = 0;
/**
 * The last block's variables before its last one, joined and with the NUL that ends them (undefined: not
 * known): the next block that shares them is that plus its own last variable. Kept apart, flat, rather than
 * cut from the last block's joined string: that string is a concatenation, and cutting it flattened a copy
 * of the whole environment for every exec (~2.5 KiB each, bench/pipeline).
 */
let lastEnvHeadJoined: string | undefined;

/** `envRaw.join('\0')`, without the join for a list decodeExec made. */
export function joinedEnv(envRaw: readonly string[]): string {
  for (let i = 0; i < JOINS; i++) {
    if (joinLists[i] !== envRaw) continue;
    const joined = joinStrings[i]!;
    joinLists[i] = joinStrings[i] = undefined;
    return joined;
  }
  return envRaw.join('\0');
}

function envStrings(b: Uint8Array, start: number, end: number): string[] {
  const n = end - start;
  if (n === 0) return [];
  const buf = asBuffer(b);
  const at = b.byteOffset + start - buf.byteOffset;
  const last = lastEnvStore;
  if (n === lastEnvLen && last.compare(buf, at, at + n, 0, n) === 0) return lastEnv as string[];
  const head = envHead(buf, at, n);
  let out: string[];
  let joined: string | undefined;
  let headJoined: string | undefined;
  const headSame = head > 0 && head === lastEnvHead && last.compare(buf, at, at + head, 0, head) === 0;
  if (headSame) {
    // All but the last variable are the last block's: the same strings, and the last one decoded.
    const tail = splitNul(b, start + head, end);
    const keep = lastEnv.length - 1;
    out = new Array<string>(keep + tail.length);
    for (let i = 0; i < keep; i++) out[i] = lastEnv[i]!;
    for (let i = 0; i < tail.length; i++) out[keep + i] = tail[i]!;
    // The head is the last block's bytes: so is its joined form.
    headJoined = lastEnvHeadJoined;
    if (headJoined !== undefined) joined = headJoined + tail.join('\0');
  } else {
    const whole = asciiBlock(b, start, end); // as splitNul splits it: kept whole, it is the list joined
    if (whole !== undefined) {
      out = whole.split('\0');
      joined = whole;
      if (head > 0) headJoined = whole.slice(0, head); // ASCII: a char a byte
    } else out = splitNul(b, start, end);
  }
  if (joined !== undefined) {
    joinLists[joinNext] = out;
    joinStrings[joinNext] = joined;
    joinNext = (joinNext + 1) & (JOINS - 1);
  }
  if (n <= ENV_MEMO_MAX) {
    // Short runs by a loop: Buffer#copy and #fill check their arguments and call out, which costs more.
    const from = headSame ? head : 0; // a head that is the last block's is there already
    if (n - from > 64) buf.copy(last, from, at + from, at + n);
    else for (let i = from; i < n; i++) last[i] = buf[at + i]!;
    if (lastEnvLen - n > 64) last.fill(0, n, lastEnvLen); // no older environment's bytes left behind
    else for (let i = n; i < lastEnvLen; i++) last[i] = 0;
    lastEnvLen = n;
    lastEnv = Object.freeze(out);
    lastEnvHead = head;
    lastEnvHeadJoined = headJoined;
  }
  return out;
}

function header(v: DataView, o: number) {
  return {
    ktimeNs: u64(v, o + EVENT_HEADER.ktime_ns.offset),
    pid: v.getUint32(o + EVENT_HEADER.pid.offset, true),
    tid: v.getUint32(o + EVENT_HEADER.tid.offset, true),
    cgroupId: u64(v, o + EVENT_HEADER.cgroup_id.offset),
  };
}

/**
 * The kernel's tty->name (what BPF reads from task->signal->tty) as /dev names it: pty slaves are "pts3" in
 * the kernel and /dev/pts/3 in userspace; everything else already matches ("tty1", "ttyS0", "console"). A
 * "/dev/" prefix is dropped. Exec events carry it this way, so that BPF and /proc modes agree (users.ts
 * ttyNameFromDev names /proc's tty_nr like /dev does).
 */
export function normalizeKernelTtyName(name: string): string {
  const n = name.startsWith('/dev/') ? name.slice(5) : name;
  const m = /^pts(\d+)$/.exec(n);
  return m ? `pts/${m[1]}` : n;
}

export function decodeExec(v: DataView, o: number, len: number): DecodeResult<ExecEvent> {
  if (len < SIZEOF.exec_event) return { decodeError: 'short', opcode: VIGIL_OPCODE.EXEC };
  const exeLen = v.getUint32(o + EXEC_EVENT.exe_len.offset, true);
  const fnLen = v.getUint32(o + EXEC_EVENT.filename_len.offset, true);
  const argvLen = v.getUint32(o + EXEC_EVENT.argv_len.offset, true);
  const envLen = v.getUint32(o + EXEC_EVENT.env_len.offset, true);
  if (SIZEOF.exec_event + exeLen + fnLen + argvLen + envLen > len) return { decodeError: 'bad-size', opcode: VIGIL_OPCODE.EXEC };
  const b = viewBytes(v);
  // exe and filename are NUL-terminated within their lengths.
  let p = o + SIZEOF.exec_event;
  const strz = (start: number, n: number) => cString(b, start, n);
  const exePath = strz(p, exeLen);
  p += exeLen;
  const filename = strz(p, fnLen);
  p += fnLen;
  const argv = splitNul(b, p, p + argvLen);
  p += argvLen;
  const envRaw = envStrings(b, p, p + envLen);
  const flags = v.getUint32(o + EXEC_EVENT.flags.offset, true);
  return {
    type: 'exec',
    ktimeNs: u64(v, o + EVENT_HEADER.ktime_ns.offset),
    pid: v.getUint32(o + EVENT_HEADER.pid.offset, true),
    tid: v.getUint32(o + EVENT_HEADER.tid.offset, true),
    cgroupId: u64(v, o + EVENT_HEADER.cgroup_id.offset),
    startNs: u64(v, o + EXEC_EVENT.start_ns.offset),
    ppid: v.getUint32(o + EXEC_EVENT.ppid.offset, true),
    parentStartNs: u64(v, o + EXEC_EVENT.parent_start_ns.offset),
    oldPid: v.getUint32(o + EXEC_EVENT.old_pid.offset, true),
    creds: decodeCreds(v, o + EXEC_EVENT.creds.offset),
    ns: decodeNs(v, o + EXEC_EVENT.ns.offset),
    exe: {
      path: exePath,
      ino: u64(v, o + EXEC_EVENT.exe_ino.offset),
      dev: v.getUint32(o + EXEC_EVENT.exe_dev.offset, true),
      mtimeNs: u64(v, o + EXEC_EVENT.exe_mtime_sec.offset) * 1e9 + v.getUint32(o + EXEC_EVENT.exe_mtime_nsec.offset, true),
    },
    filename,
    argv,
    argc: v.getUint32(o + EXEC_EVENT.argc.offset, true),
    envRaw,
    comm: cString(b, o + EXEC_EVENT.comm.offset, EXEC_EVENT.comm.size),
    tty: normalizeKernelTtyName(cString(b, o + EXEC_EVENT.tty.offset, EXEC_EVENT.tty.size)),
    flags,
    argvTruncated: (flags & VIGIL_PROC_FLAGS.ARGV_TRUNCATED) !== 0,
    envTruncated: (flags & VIGIL_PROC_FLAGS.ENV_TRUNCATED) !== 0,
    pathTruncated: (flags & VIGIL_PROC_FLAGS.PATH_TRUNCATED) !== 0,
    subreaper: (flags & VIGIL_PROC_FLAGS.SUBREAPER) !== 0,
    exeUpperLayer: (flags & VIGIL_PROC_FLAGS.EXE_UPPER_LAYER) !== 0,
    kill: execKillAt(v, o),
  };
}

export function decodeFork(v: DataView, o: number, len: number): DecodeResult<ForkEvent> {
  if (len < SIZEOF.fork_event) return { decodeError: 'short', opcode: VIGIL_OPCODE.FORK };
  const flags = v.getUint32(o + FORK_EVENT.flags.offset, true);
  return {
    type: 'fork',
    ktimeNs: u64(v, o + EVENT_HEADER.ktime_ns.offset),
    pid: v.getUint32(o + EVENT_HEADER.pid.offset, true),
    tid: v.getUint32(o + EVENT_HEADER.tid.offset, true),
    cgroupId: u64(v, o + EVENT_HEADER.cgroup_id.offset),
    parentStartNs: u64(v, o + FORK_EVENT.parent_start_ns.offset),
    childPid: v.getUint32(o + FORK_EVENT.child_pid.offset, true),
    childTgid: v.getUint32(o + FORK_EVENT.child_tgid.offset, true),
    childStartNs: u64(v, o + FORK_EVENT.child_start_ns.offset),
    childPpid: v.getUint32(o + FORK_EVENT.child_ppid.offset, true),
    thread: (flags & VIGIL_PROC_FLAGS.THREAD) !== 0,
    comm: cString(viewBytes(v), o + FORK_EVENT.comm.offset, FORK_EVENT.comm.size),
  };
}

export function decodeExit(v: DataView, o: number, len: number): DecodeResult<ExitEvent> {
  if (len < SIZEOF.exit_event) return { decodeError: 'short', opcode: VIGIL_OPCODE.EXIT };
  const status = v.getUint32(o + EXIT_EVENT.exit_code.offset, true);
  const flags = v.getUint32(o + EXIT_EVENT.flags.offset, true);
  const sig = status & 0x7f;
  return {
    type: 'exit',
    ktimeNs: u64(v, o + EVENT_HEADER.ktime_ns.offset),
    pid: v.getUint32(o + EVENT_HEADER.pid.offset, true),
    tid: v.getUint32(o + EVENT_HEADER.tid.offset, true),
    cgroupId: u64(v, o + EVENT_HEADER.cgroup_id.offset),
    startNs: u64(v, o + EXIT_EVENT.start_ns.offset),
    ppid: v.getUint32(o + EXIT_EVENT.ppid.offset, true),
    status,
    exitCode: sig === 0 ? (status >> 8) & 0xff : undefined,
    signal: sig !== 0 ? sig : undefined,
    coreDumped: (status & 0x80) !== 0,
    groupDead: (flags & VIGIL_PROC_FLAGS.GROUP_DEAD) !== 0,
    thread: (flags & VIGIL_PROC_FLAGS.THREAD) !== 0,
    comm: cString(viewBytes(v), o + EXIT_EVENT.comm.offset, EXIT_EVENT.comm.size),
  };
}

export function decodeCredsEvent(v: DataView, o: number, len: number): DecodeResult<CredsEvent> {
  if (len < SIZEOF.creds_event) return { decodeError: 'short', opcode: VIGIL_OPCODE.CREDS };
  const oldOff = o + CREDS_EVENT.old_creds.offset;
  const unknownOld = v.getUint32(oldOff, true) === 0xffffffff && v.getUint32(oldOff + 4, true) === 0xffffffff;
  return {
    type: 'creds',
    ...header(v, o),
    startNs: u64(v, o + CREDS_EVENT.start_ns.offset),
    syscallNr: v.getUint32(o + CREDS_EVENT.syscall_nr.offset, true),
    oldCreds: unknownOld ? undefined : decodeCreds(v, oldOff),
    creds: decodeCreds(v, o + CREDS_EVENT.creds.offset),
  };
}

export function decodeComm(v: DataView, o: number, len: number): DecodeResult<CommEvent> {
  if (len < SIZEOF.comm_event) return { decodeError: 'short', opcode: VIGIL_OPCODE.COMM };
  const b = viewBytes(v);
  return {
    type: 'comm',
    ...header(v, o),
    startNs: u64(v, o + COMM_EVENT.start_ns.offset),
    oldComm: cString(b, o + COMM_EVENT.old_comm.offset, COMM_EVENT.old_comm.size),
    comm: cString(b, o + COMM_EVENT.comm.offset, COMM_EVENT.comm.size),
  };
}

const CGROUP_OPS: Record<number, CgroupEvent['op']> = { [VIGIL_CGROUP_OP.MKDIR]: 'mkdir', [VIGIL_CGROUP_OP.RMDIR]: 'rmdir', [VIGIL_CGROUP_OP.ATTACH]: 'attach' };

export function decodeCgroup(v: DataView, o: number, len: number): DecodeResult<CgroupEvent> {
  if (len < SIZEOF.cgroup_event) return { decodeError: 'short', opcode: VIGIL_OPCODE.CGROUP };
  const op = CGROUP_OPS[v.getUint32(o + CGROUP_EVENT.op.offset, true)];
  if (!op) return { decodeError: 'bad-size', opcode: VIGIL_OPCODE.CGROUP };
  const pathLen = v.getUint32(o + CGROUP_EVENT.path_len.offset, true);
  return {
    type: 'cgroup',
    ...header(v, o),
    op,
    id: u64(v, o + CGROUP_EVENT.id.offset),
    hierarchyId: v.getUint32(o + CGROUP_EVENT.hierarchy_id.offset, true),
    level: v.getUint32(o + CGROUP_EVENT.level.offset, true),
    taskPid: v.getUint32(o + CGROUP_EVENT.task_pid.offset, true),
    path: cString(viewBytes(v), o + CGROUP_EVENT.path.offset, CGROUP_EVENT.path.size),
    pathTruncated: pathLen >= CGROUP_EVENT.path.size,
  };
}

/** The opcode of a record, or -1 when it is too short to have a header. */
export function opcodeOf(v: DataView, o: number, len: number): number {
  return len < SIZEOF.event_header ? -1 : v.getUint16(o + EVENT_HEADER.opcode.offset, true);
}

/** Decodes any process-sensor record. */
export function decodeProcessEvent(v: DataView, o: number, len: number): DecodeResult<ProcessEvent> {
  const op = opcodeOf(v, o, len);
  switch (op) {
    case VIGIL_OPCODE.EXEC: return decodeExec(v, o, len);
    case VIGIL_OPCODE.FORK: return decodeFork(v, o, len);
    case VIGIL_OPCODE.EXIT: return decodeExit(v, o, len);
    case VIGIL_OPCODE.CREDS: return decodeCredsEvent(v, o, len);
    case VIGIL_OPCODE.COMM: return decodeComm(v, o, len);
    default: return { decodeError: op < 0 ? 'short' : 'unknown-opcode', opcode: op };
  }
}

export function isDecodeError<T>(r: DecodeResult<T>): r is DecodeFailure {
  return (r as Partial<DecodeFailure>).decodeError !== undefined;
}

// ---- syscall sensor records ------------------------------------------------------------------------------
// Variable-size records (file, sys) carry the lengths of the strings that follow their fixed part; a record
// whose lengths do not fit in it, or whose op is not one of its group's, is a 'bad-size' result.

/** A signed 64-bit little-endian value as a JS number (exact for syscall return values). */
export function s64(v: DataView, off: number): number {
  return v.getInt32(off + 4, true) * TWO32 + v.getUint32(off, true);
}

// Flag names, memoized per value: a record's flags take few distinct values, and naming them builds arrays
// and strings each time (openFlagNames: about 2.5 KiB of garbage per call, bench/pipeline). Bounded.
const FLAG_CACHE_MAX = 4096;
const openFlagCache = new Map<number, string>();
function openFlags(flags: number): string {
  let s = openFlagCache.get(flags);
  if (s === undefined) {
    s = openFlagNames(flags);
    if (openFlagCache.size < FLAG_CACHE_MAX) openFlagCache.set(flags, s);
  }
  return s;
}
const bitNameCaches = new Map<readonly (readonly [number, string])[], Map<number, string>>();
function flagNames(v: number, table: readonly (readonly [number, string])[]): string {
  let cache = bitNameCaches.get(table);
  if (!cache) bitNameCaches.set(table, (cache = new Map()));
  let s = cache.get(v);
  if (s === undefined) {
    s = bitNames(v, table);
    if (cache.size < FLAG_CACHE_MAX) cache.set(v, s);
  }
  return s;
}

const F = VIGIL_SYS_FLAGS;
const OP = VIGIL_SYS_OP;
export const FILE_OPS: Readonly<Record<number, FileOp>> = { [OP.OPEN]: 'open', [OP.UNLINK]: 'unlink', [OP.RMDIR]: 'rmdir', [OP.RENAME]: 'rename', [OP.CHMOD]: 'chmod', [OP.CHOWN]: 'chown', [OP.MKDIR]: 'mkdir', [OP.TRUNCATE]: 'truncate', [OP.LINK]: 'link', [OP.SYMLINK]: 'symlink' };
const NET_OPS: Record<number, NetOp> = { [OP.CONNECT]: 'connect', [OP.ACCEPT]: 'accept', [OP.BIND]: 'bind', [OP.LISTEN]: 'listen', [OP.TCP_STATE]: 'tcp_state' };
const SYS_OPS: Record<number, SysOp> = {
  [OP.PTRACE]: 'ptrace', [OP.MOUNT]: 'mount', [OP.UMOUNT]: 'umount', [OP.MODULE_LOAD]: 'module_load', [OP.BPF]: 'bpf',
  [OP.MEMFD_CREATE]: 'memfd_create', [OP.SETNS]: 'setns', [OP.UNSHARE]: 'unshare',
};

/** IPv4 dotted quad from 4 bytes. */
export function formatIPv4(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** IPv6 in RFC 5952 form ("::1", "fe80::1", "::ffff:10.0.0.1") from 16 bytes. */
export function formatIPv6(b: Uint8Array, o: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[o + 2 * i]! << 8) | b[o + 2 * i + 1]!);
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) return `::ffff:${formatIPv4(b, o + 12)}`;
  // The longest run of two or more zero groups (the first on ties) becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** A sun_path of `len` bytes: "/run/x.sock", "@name" for an abstract socket, undefined when unnamed. */
export function formatUnixPath(b: Uint8Array, o: number, len: number): string | undefined {
  if (len <= 0) return undefined;
  if (b[o] === 0) return len > 1 ? `@${bytesToString(b, o + 1, o + len)}` : undefined;
  return cString(b, o, len) || undefined;
}

function inetAddress(b: Uint8Array, o: number, family: number): string | undefined {
  if (family === 2) return formatIPv4(b, o);
  if (family === 10) return formatIPv6(b, o);
  return undefined;
}

export function isZero(b: Uint8Array, o: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (b[o + i] !== 0) return false;
  return true;
}


/**
 * The op of a file record, or why it cannot be decoded: the checks decodeFileEvent makes, for those who keep
 * the record as bytes (pipeline/record-bytes.ts) and must refuse exactly what the decoder refuses.
 */
export function fileRecordOp(v: DataView, o: number, len: number): DecodeResult<FileOp> {
  if (len < SIZEOF.file_event) return { decodeError: 'short', opcode: VIGIL_OPCODE.FILE };
  const op = FILE_OPS[v.getUint32(o + FILE_EVENT.op.offset, true)];
  const l1 = v.getUint32(o + FILE_EVENT.path_len.offset, true);
  const l2 = v.getUint32(o + FILE_EVENT.path2_len.offset, true);
  const l3 = v.getUint32(o + FILE_EVENT.resolved_len.offset, true);
  const l4 = v.getUint32(o + FILE_EVENT.resolved2_len.offset, true);
  if (!op || SIZEOF.file_event + l1 + l2 + l3 + l4 > len) return { decodeError: 'bad-size', opcode: VIGIL_OPCODE.FILE };
  return op;
}

/** Whether a file op has a second path and its directory fd (path2, dfd2): rename's new path, the link made. */
export const fileHasPath2 = (op: FileOp): boolean => op === 'rename' || op === 'link' || op === 'symlink';

/** The flag names of a file event's flags, as its `flagNames` member (memoized per value). */
export function fileFlagNames(op: FileOp, flags: number): string {
  return op === 'open' ? openFlags(flags) : op === 'rename' ? flagNames(flags, RENAME_FLAGS) : flagNames(flags, AT_FLAGS);
}

/** The names of openat2's `resolve` flags, as a file event's `resolve` member. */
export const resolveFlagNames = (resolve: number): string => flagNames(resolve, RESOLVE_FLAGS);

/** Whether a file event has a mode: chmod, mkdir, and opens that may create. */
export const fileHasMode = (op: FileOp, flags: number): boolean => op === 'chmod' || op === 'mkdir' || (op === 'open' && ((flags & 0o100) !== 0 || (flags & 0o20000000) !== 0));

// The header and syscall fields are written out in each literal below, in the order they had when spread
// from a helper: a spread builds and copies one more object per record, a third of decoding one
// (bench/pipeline). The order is the JSON members' order.
export function decodeFileEvent(v: DataView, o: number, len: number): DecodeResult<FileEvent> {
  const op = fileRecordOp(v, o, len);
  if (typeof op !== 'string') return op;
  const l1 = v.getUint32(o + FILE_EVENT.path_len.offset, true);
  const l2 = v.getUint32(o + FILE_EVENT.path2_len.offset, true);
  const l3 = v.getUint32(o + FILE_EVENT.resolved_len.offset, true);
  const l4 = v.getUint32(o + FILE_EVENT.resolved2_len.offset, true);
  const b = viewBytes(v);
  let p = o + SIZEOF.file_event;
  const path = cString(b, p, l1);
  p += l1;
  const path2 = l2 ? cString(b, p, l2) : undefined;
  p += l2;
  const resolvedPath = l3 ? cString(b, p, l3) : undefined;
  p += l3;
  const resolvedPath2 = l4 ? cString(b, p, l4) : undefined;
  const ret = s64(v, o + FILE_EVENT.ret.offset);
  const nr = v.getInt32(o + FILE_EVENT.nr.offset, true);
  const ev = v.getUint32(o + FILE_EVENT.ev_flags.offset, true);
  const flags = v.getUint32(o + FILE_EVENT.flags.offset, true);
  const mode = v.getUint32(o + FILE_EVENT.mode.offset, true);
  const uid = v.getUint32(o + FILE_EVENT.uid.offset, true);
  const gid = v.getUint32(o + FILE_EVENT.gid.offset, true);
  const resolve = u64(v, o + FILE_EVENT.resolve.offset);
  const hasMode = fileHasMode(op, flags);
  const dfd2 = v.getInt32(o + FILE_EVENT.dfd2.offset, true);
  return {
    type: op,
    group: 'file',
    ktimeNs: u64(v, o + EVENT_HEADER.ktime_ns.offset),
    pid: v.getUint32(o + EVENT_HEADER.pid.offset, true),
    tid: v.getUint32(o + EVENT_HEADER.tid.offset, true),
    cgroupId: u64(v, o + EVENT_HEADER.cgroup_id.offset),
    syscall: syscallName(nr),
    nr,
    ret,
    errno: nr === -1 ? undefined : retError(ret),
    evFlags: ev,
    path,
    path2,
    resolvedPath,
    resolvedPath2,
    resolvedFrom: ev & F.RESOLVED_FD ? 'fd' : ev & F.RESOLVED_CWD ? 'cwd' : ev & F.RESOLVED_DIRFD ? 'dirfd' : undefined,
    dfd: v.getInt32(o + FILE_EVENT.dfd.offset, true),
    dfd2: fileHasPath2(op) ? dfd2 : undefined,
    flags,
    flagNames: fileFlagNames(op, flags),
    mode: hasMode ? mode : undefined,
    modeOctal: hasMode ? modeOctal(mode) : undefined,
    uid: op === 'chown' && uid !== 0xffffffff ? uid : undefined,
    gid: op === 'chown' && gid !== 0xffffffff ? gid : undefined,
    resolve: op === 'open' && resolve ? resolveFlagNames(resolve) : undefined,
    length: op === 'truncate' ? resolve : undefined,
    write: (ev & F.WRITE) !== 0,
    sensitive: (ev & F.SENSITIVE) !== 0,
    path2Sensitive: fileHasPath2(op) ? (ev & F.SENSITIVE_PATH2) !== 0 : undefined,
    secret: (ev & F.SECRET) !== 0,
    logTruncated: (ev & F.LOG_TRUNCATED) !== 0,
    logRemoved: (ev & F.LOG_REMOVED) !== 0,
    logReplaced: (ev & F.LOG_REPLACED) !== 0,
    pathTruncated: (ev & F.PATH_TRUNCATED) !== 0,
    pathReadAtExit: (ev & F.PATH_AT_EXIT) !== 0,
    pathUnreadable: (ev & F.PATH_UNREADABLE) !== 0,
    resolvedTruncated: (ev & F.RESOLVED_TRUNCATED) !== 0,
    ioUring: (ev & F.IO_URING) !== 0,
    resultUnknown: (ev & F.NO_RESULT) !== 0,
    kill: kernelKillAt(v, o, ev),
  };
}

/** The op of a network record, or why it cannot be decoded: the checks decodeNetEvent makes (see fileRecordOp). */
export function netRecordOp(v: DataView, o: number, len: number): DecodeResult<NetOp> {
  if (len < SIZEOF.net_event) return { decodeError: 'short', opcode: VIGIL_OPCODE.NET };
  const op = NET_OPS[v.getUint32(o + NET_EVENT.op.offset, true)];
  const unixLen = v.getUint32(o + NET_EVENT.unix_path_len.offset, true);
  if (!op || unixLen > NET_EVENT.unix_path.size) return { decodeError: 'bad-size', opcode: VIGIL_OPCODE.NET };
  return op;
}

/** The names of accept4's flags, as a network event's `flagNames` member. */
export const sockFlagNames = (flags: number): string => flagNames(flags, SOCK_FLAGS);

/** The two ends of a network record's socket, as its event's members (undefined: not known). */
export interface NetEndpoints {
  localAddress: string | undefined;
  localPort: number | undefined;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
}

/**
 * The endpoints of the network record at `o` (`b` views the same bytes as `v`): an inet end whose port and
 * address are both zero is unknown; a unix socket's path is the remote end of a connect, the local end of
 * anything else. Shared by decodeNetEvent and the members the rules' guards read (pipeline/record-members.ts).
 */
export function netEndpoints(v: DataView, b: Uint8Array, o: number, op: NetOp): NetEndpoints {
  const family = v.getUint16(o + NET_EVENT.family.offset, true);
  const ends: NetEndpoints = { localAddress: undefined, localPort: undefined, remoteAddress: undefined, remotePort: undefined };
  if (family === 2 || family === 10) {
    const n = family === 2 ? 4 : 16;
    const la = o + NET_EVENT.laddr.offset;
    const ra = o + NET_EVENT.raddr.offset;
    const lport = v.getUint16(o + NET_EVENT.lport.offset, true);
    const rport = v.getUint16(o + NET_EVENT.rport.offset, true);
    if (lport || !isZero(b, la, n)) {
      ends.localAddress = inetAddress(b, la, family);
      ends.localPort = lport;
    }
    if (rport || !isZero(b, ra, n)) {
      ends.remoteAddress = inetAddress(b, ra, family);
      ends.remotePort = rport;
    }
  } else if (family === 1) {
    const path = formatUnixPath(b, o + NET_EVENT.unix_path.offset, v.getUint32(o + NET_EVENT.unix_path_len.offset, true));
    if (op === 'connect') ends.remoteAddress = path;
    else ends.localAddress = path;
  }
  return ends;
}

export function decodeNetEvent(v: DataView, o: number, len: number): DecodeResult<NetEvent> {
  const op = netRecordOp(v, o, len);
  if (typeof op !== 'string') return op;
  const b = viewBytes(v);
  const ret = s64(v, o + NET_EVENT.ret.offset);
  const nr = v.getInt32(o + NET_EVENT.nr.offset, true);
  const evFlags = v.getUint32(o + NET_EVENT.ev_flags.offset, true);
  const family = v.getUint16(o + NET_EVENT.family.offset, true);
  const flags = v.getUint32(o + NET_EVENT.flags.offset, true);
  const { localAddress, localPort, remoteAddress, remotePort } = netEndpoints(v, b, o, op);
  const tcp = op === 'tcp_state';
  return {
    type: op,
    group: 'network',
    ktimeNs: u64(v, o + EVENT_HEADER.ktime_ns.offset),
    pid: v.getUint32(o + EVENT_HEADER.pid.offset, true),
    tid: v.getUint32(o + EVENT_HEADER.tid.offset, true),
    cgroupId: u64(v, o + EVENT_HEADER.cgroup_id.offset),
    syscall: syscallName(nr),
    nr,
    ret,
    errno: nr === -1 ? undefined : retError(ret),
    evFlags,
    fd: v.getInt32(o + NET_EVENT.fd.offset, true),
    family: familyName(family),
    sockType: sockTypeName(v.getUint16(o + NET_EVENT.type.offset, true)),
    protocol: protocolName(v.getUint16(o + NET_EVENT.protocol.offset, true)),
    addrUnreadable: (evFlags & F.ADDR_UNREADABLE) !== 0,
    noSocket: (evFlags & F.NO_SOCKET) !== 0,
    ioUring: (evFlags & F.IO_URING) !== 0,
    resultUnknown: (evFlags & F.NO_RESULT) !== 0,
    localAddress,
    localPort,
    remoteAddress,
    remotePort,
    flags: op === 'accept' ? flags : undefined,
    flagNames: op === 'accept' ? sockFlagNames(flags) : undefined,
    backlog: op === 'listen' ? v.getInt32(o + NET_EVENT.backlog.offset, true) : undefined,
    oldState: tcp ? tcpStateName(v.getInt32(o + NET_EVENT.old_state.offset, true)) : undefined,
    newState: tcp ? tcpStateName(v.getInt32(o + NET_EVENT.new_state.offset, true)) : undefined,
    deny: op === 'connect' || op === 'bind' ? kernelDenyAt(v, o, evFlags) : undefined,
  };
}

export function decodeSysEvent(v: DataView, o: number, len: number): DecodeResult<SysEvent> {
  if (len < SIZEOF.sys_event) return { decodeError: 'short', opcode: VIGIL_OPCODE.SYS };
  const op = SYS_OPS[v.getUint32(o + SYS_EVENT.op.offset, true)];
  const l1 = v.getUint32(o + SYS_EVENT.str1_len.offset, true);
  const l2 = v.getUint32(o + SYS_EVENT.str2_len.offset, true);
  const l3 = v.getUint32(o + SYS_EVENT.str3_len.offset, true);
  if (!op || SIZEOF.sys_event + l1 + l2 + l3 > len) return { decodeError: 'bad-size', opcode: VIGIL_OPCODE.SYS };
  const b = viewBytes(v);
  const p1 = o + SIZEOF.sys_event;
  const s1 = l1 ? cString(b, p1, l1) : undefined;
  const s2 = l2 ? cString(b, p1 + l1, l2) : undefined;
  const s3 = l3 ? cString(b, p1 + l1 + l2, l3) : undefined;
  const args = [0, 1, 2, 3].map((i) => u64(v, o + SYS_EVENT.args.offset + 8 * i));
  const ret = s64(v, o + SYS_EVENT.ret.offset);
  const nr = v.getInt32(o + SYS_EVENT.nr.offset, true);
  const evFlags = v.getUint32(o + SYS_EVENT.ev_flags.offset, true);
  const [a0, a1, a2] = args as [number, number, number, number];
  // Each operation's fields; the others stay undefined (left out of the output), so that every sys event
  // has the same keys in the same order, like the file and net events (see SYS_EVENT_KEYS).
  let request: string | undefined;
  let targetPid: number | undefined;
  let source: string | undefined;
  let target: string | undefined;
  let fstype: string | undefined;
  let flags: number | undefined;
  let names: string | undefined;
  let moduleName: string | undefined;
  let moduleParams: string | undefined;
  let modulePath: string | undefined;
  let bpfCmd: string | undefined;
  let bpfType: string | undefined;
  let bpfName: string | undefined;
  let name: string | undefined;
  let fd: number | undefined;
  let nsType: string | undefined;
  let nsInode: number | undefined;
  switch (op) {
    case 'ptrace':
      request = ptraceRequestName(a0);
      targetPid = a1 | 0;
      break;
    case 'mount':
      source = s1;
      target = s2;
      fstype = s3;
      flags = a0;
      names = mountFlagNames(a0);
      break;
    case 'umount':
      target = s1;
      flags = a0;
      names = flagNames(a0, UMOUNT_FLAGS);
      break;
    case 'module_load':
      if (evFlags & F.TRACEPOINT) moduleName = s1;
      else {
        moduleParams = s1;
        modulePath = s2;
      }
      break;
    case 'bpf':
      bpfCmd = bpfCmdName(a0);
      if (a0 === 0) bpfType = mapTypeName(a1);
      else if (a0 === 5) bpfType = progTypeName(a1);
      bpfName = s3;
      break;
    case 'memfd_create':
      name = s1;
      flags = a0;
      names = flagNames(a0, MFD_FLAGS);
      break;
    case 'setns':
      fd = a0 | 0;
      nsType = nsTypeNames(a1);
      nsInode = a2 || undefined;
      break;
    case 'unshare':
      flags = a0;
      names = flagNames(a0, CLONE_FLAGS);
      break;
  }
  return {
    type: op,
    group: 'other',
    ktimeNs: u64(v, o + EVENT_HEADER.ktime_ns.offset),
    pid: v.getUint32(o + EVENT_HEADER.pid.offset, true),
    tid: v.getUint32(o + EVENT_HEADER.tid.offset, true),
    cgroupId: u64(v, o + EVENT_HEADER.cgroup_id.offset),
    syscall: syscallName(nr),
    nr,
    ret,
    errno: nr === -1 ? undefined : retError(ret),
    evFlags,
    args,
    pathTruncated: (evFlags & F.PATH_TRUNCATED) !== 0,
    request,
    targetPid,
    name,
    source,
    target,
    fstype,
    fd,
    flags,
    flagNames: names,
    moduleName,
    moduleParams,
    modulePath,
    bpfCmd,
    bpfType,
    bpfName,
    nsType,
    nsInode,
  };
}

/**
 * The own keys of every decoded file, net and sys event, in order. Each decoder builds its events with one
 * object literal that holds every key (undefined when the field does not apply), so all events of a group
 * share one shape: the pipeline serialises them with one compiled function, without listing each event's
 * keys (test/unit/fuzz-decode.test.ts checks these lists against what the decoders return).
 */
const SYSCALL_BASE_KEYS = ['type', 'group', 'ktimeNs', 'pid', 'tid', 'cgroupId', 'syscall', 'nr', 'ret', 'errno', 'evFlags'] as const;
export const FILE_EVENT_KEYS = [
  ...SYSCALL_BASE_KEYS, 'path', 'path2', 'resolvedPath', 'resolvedPath2', 'resolvedFrom', 'dfd', 'dfd2', 'flags', 'flagNames', 'mode',
  'modeOctal', 'uid', 'gid', 'resolve', 'length', 'write', 'sensitive', 'path2Sensitive', 'secret', 'logTruncated', 'logRemoved', 'logReplaced', 'pathTruncated', 'pathReadAtExit', 'pathUnreadable', 'resolvedTruncated', 'ioUring',
  'resultUnknown', 'kill',
] as const satisfies readonly (keyof FileEvent)[];
export const NET_EVENT_KEYS = [
  ...SYSCALL_BASE_KEYS, 'fd', 'family', 'sockType', 'protocol', 'addrUnreadable', 'noSocket', 'ioUring', 'resultUnknown', 'localAddress', 'localPort', 'remoteAddress',
  'remotePort', 'flags', 'flagNames', 'backlog', 'oldState', 'newState', 'deny',
] as const satisfies readonly (keyof NetEvent)[];
export const SYS_EVENT_KEYS = [
  ...SYSCALL_BASE_KEYS, 'args', 'pathTruncated', 'request', 'targetPid', 'name', 'source', 'target', 'fstype', 'fd', 'flags', 'flagNames',
  'moduleName', 'moduleParams', 'modulePath', 'bpfCmd', 'bpfType', 'bpfName', 'nsType', 'nsInode',
] as const satisfies readonly (keyof SysEvent)[];

/** Decodes any syscall-sensor record (file, net or sys). */
export function decodeSyscallEvent(v: DataView, o: number, len: number): DecodeResult<SyscallEvent> {
  const op = opcodeOf(v, o, len);
  switch (op) {
    case VIGIL_OPCODE.FILE: return decodeFileEvent(v, o, len);
    case VIGIL_OPCODE.NET: return decodeNetEvent(v, o, len);
    case VIGIL_OPCODE.SYS: return decodeSysEvent(v, o, len);
    default: return { decodeError: op < 0 ? 'short' : 'unknown-opcode', opcode: op };
  }
}
