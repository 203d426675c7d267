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
import { cString, splitNul } from './strings.ts';
import type { CgroupEvent, CommEvent, Creds, CredsEvent, ExecEvent, ExitEvent, ForkEvent, Namespaces, ProcessEvent } from './types.ts';

const TWO32 = 4294967296;

/** A u64 as a JS number: exact below 2^53, and deterministic above. */
export function u64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * TWO32;
}

function hex64(v: DataView, off: number): string {
  return v.getUint32(off + 4, true).toString(16).padStart(8, '0') + v.getUint32(off, true).toString(16).padStart(8, '0');
}

export function decodeCreds(v: DataView, o: number): Creds {
  const login = v.getUint32(o + PROC_CREDS.loginuid.offset, true);
  return {
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
  };
}

export function decodeNs(v: DataView, o: number): Namespaces {
  return {
    cgroupId: u64(v, o + PROC_NS.cgroup_id.offset),
    pidns: v.getUint32(o + PROC_NS.pidns.offset, true),
    mntns: v.getUint32(o + PROC_NS.mntns.offset, true),
    nspid: v.getUint32(o + PROC_NS.nspid.offset, true),
  };
}

export type DecodeResult<T> = T | { error: 'short' | 'unknown-opcode' | 'bad-size'; opcode: number };

function bytes(v: DataView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function header(v: DataView, o: number) {
  return {
    ktimeNs: u64(v, o + EVENT_HEADER.ktime_ns.offset),
    pid: v.getUint32(o + EVENT_HEADER.pid.offset, true),
    tid: v.getUint32(o + EVENT_HEADER.tid.offset, true),
    cgroupId: u64(v, o + EVENT_HEADER.cgroup_id.offset),
  };
}

export function decodeExec(v: DataView, o: number, len: number): DecodeResult<ExecEvent> {
  if (len < SIZEOF.exec_event) return { error: 'short', opcode: VIGIL_OPCODE.EXEC };
  const exeLen = v.getUint32(o + EXEC_EVENT.exe_len.offset, true);
  const fnLen = v.getUint32(o + EXEC_EVENT.filename_len.offset, true);
  const argvLen = v.getUint32(o + EXEC_EVENT.argv_len.offset, true);
  const envLen = v.getUint32(o + EXEC_EVENT.env_len.offset, true);
  if (SIZEOF.exec_event + exeLen + fnLen + argvLen + envLen > len) return { error: 'bad-size', opcode: VIGIL_OPCODE.EXEC };
  const b = bytes(v);
  // exe and filename are NUL-terminated within their lengths.
  let p = o + SIZEOF.exec_event;
  const strz = (start: number, n: number) => cString(b, start, n);
  const exePath = strz(p, exeLen);
  p += exeLen;
  const filename = strz(p, fnLen);
  p += fnLen;
  const argv = splitNul(b, p, p + argvLen);
  p += argvLen;
  const envRaw = splitNul(b, p, p + envLen);
  const flags = v.getUint32(o + EXEC_EVENT.flags.offset, true);
  return {
    type: 'exec',
    ...header(v, o),
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
    tty: cString(b, o + EXEC_EVENT.tty.offset, EXEC_EVENT.tty.size),
    flags,
    argvTruncated: (flags & VIGIL_PROC_FLAGS.ARGV_TRUNCATED) !== 0,
    envTruncated: (flags & VIGIL_PROC_FLAGS.ENV_TRUNCATED) !== 0,
    pathTruncated: (flags & VIGIL_PROC_FLAGS.PATH_TRUNCATED) !== 0,
    subreaper: (flags & VIGIL_PROC_FLAGS.SUBREAPER) !== 0,
  };
}

export function decodeFork(v: DataView, o: number, len: number): DecodeResult<ForkEvent> {
  if (len < SIZEOF.fork_event) return { error: 'short', opcode: VIGIL_OPCODE.FORK };
  const flags = v.getUint32(o + FORK_EVENT.flags.offset, true);
  return {
    type: 'fork',
    ...header(v, o),
    parentStartNs: u64(v, o + FORK_EVENT.parent_start_ns.offset),
    childPid: v.getUint32(o + FORK_EVENT.child_pid.offset, true),
    childTgid: v.getUint32(o + FORK_EVENT.child_tgid.offset, true),
    childStartNs: u64(v, o + FORK_EVENT.child_start_ns.offset),
    childPpid: v.getUint32(o + FORK_EVENT.child_ppid.offset, true),
    thread: (flags & VIGIL_PROC_FLAGS.THREAD) !== 0,
    comm: cString(bytes(v), o + FORK_EVENT.comm.offset, FORK_EVENT.comm.size),
  };
}

export function decodeExit(v: DataView, o: number, len: number): DecodeResult<ExitEvent> {
  if (len < SIZEOF.exit_event) return { error: 'short', opcode: VIGIL_OPCODE.EXIT };
  const status = v.getUint32(o + EXIT_EVENT.exit_code.offset, true);
  const flags = v.getUint32(o + EXIT_EVENT.flags.offset, true);
  const sig = status & 0x7f;
  return {
    type: 'exit',
    ...header(v, o),
    startNs: u64(v, o + EXIT_EVENT.start_ns.offset),
    ppid: v.getUint32(o + EXIT_EVENT.ppid.offset, true),
    status,
    exitCode: sig === 0 ? (status >> 8) & 0xff : undefined,
    signal: sig !== 0 ? sig : undefined,
    coreDumped: (status & 0x80) !== 0,
    groupDead: (flags & VIGIL_PROC_FLAGS.GROUP_DEAD) !== 0,
    thread: (flags & VIGIL_PROC_FLAGS.THREAD) !== 0,
    comm: cString(bytes(v), o + EXIT_EVENT.comm.offset, EXIT_EVENT.comm.size),
  };
}

export function decodeCredsEvent(v: DataView, o: number, len: number): DecodeResult<CredsEvent> {
  if (len < SIZEOF.creds_event) return { error: 'short', opcode: VIGIL_OPCODE.CREDS };
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
  if (len < SIZEOF.comm_event) return { error: 'short', opcode: VIGIL_OPCODE.COMM };
  const b = bytes(v);
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
  if (len < SIZEOF.cgroup_event) return { error: 'short', opcode: VIGIL_OPCODE.CGROUP };
  const op = CGROUP_OPS[v.getUint32(o + CGROUP_EVENT.op.offset, true)];
  if (!op) return { error: 'bad-size', opcode: VIGIL_OPCODE.CGROUP };
  const pathLen = v.getUint32(o + CGROUP_EVENT.path_len.offset, true);
  return {
    type: 'cgroup',
    ...header(v, o),
    op,
    id: u64(v, o + CGROUP_EVENT.id.offset),
    hierarchyId: v.getUint32(o + CGROUP_EVENT.hierarchy_id.offset, true),
    level: v.getUint32(o + CGROUP_EVENT.level.offset, true),
    taskPid: v.getUint32(o + CGROUP_EVENT.task_pid.offset, true),
    path: cString(bytes(v), o + CGROUP_EVENT.path.offset, CGROUP_EVENT.path.size),
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
    default: return { error: op < 0 ? 'short' : 'unknown-opcode', opcode: op };
  }
}

export function isDecodeError<T>(r: DecodeResult<T>): r is { error: 'short' | 'unknown-opcode' | 'bad-size'; opcode: number } {
  return (r as { error?: string }).error !== undefined;
}
