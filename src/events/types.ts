// The decoded form of every record the sensors emit. Field names are what users see in JSON output, so
// they are stable: add fields, never rename them. Times are boot-time nanoseconds as JS numbers (exact below
// 2^53 ns, about 104 days of uptime; beyond that they round the same way everywhere, so equality holds).

import type { KernelDeny, KernelKill } from './kill.ts';

export interface Creds {
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  suid: number;
  sgid: number;
  fsuid: number;
  fsgid: number;
  /** Capability sets as hex strings of the 64-bit masks ("000001ffffffffff"). */
  capEffective: string;
  capPermitted: string;
  capInheritable: string;
  /** Audit login uid; undefined when unset (4294967295). */
  loginuid: number | undefined;
}

export interface Namespaces {
  cgroupId: number;
  pidns: number;
  mntns: number;
  /** The process's pid inside its own pid namespace. */
  nspid: number;
}

export interface EventBase {
  /** Boot-time ns of the event. */
  ktimeNs: number;
  /** Thread group id (the process id) as the root pid namespace sees it. */
  pid: number;
  tid: number;
  /** The task's cgroup id (v2, or its id in the configured v1 hierarchy): what containers are keyed by. */
  cgroupId: number;
  /**
   * Fields the source could not know (the eBPF-less resolver, fed by the proc connector and /proc, cannot
   * know everything a sensor sees); their values are placeholders. Absent from BPF events.
   */
  unknown?: string[];
}

export interface ExecEvent extends EventBase {
  type: 'exec';
  startNs: number;
  ppid: number;
  parentStartNs: number;
  /** The thread that called execve, when it was not the group leader. */
  oldPid: number;
  creds: Creds;
  ns: Namespaces;
  exe: { path: string; ino: number; dev: number; mtimeNs: number };
  /** The path as given to execve. */
  filename: string;
  argv: string[];
  argc: number;
  /** NAME=VALUE strings as the kernel saw them: scrubbed by the process resolver before anything sees them. */
  envRaw: string[];
  comm: string;
  tty: string;
  flags: number;
  argvTruncated: boolean;
  envTruncated: boolean;
  pathTruncated: boolean;
  subreaper: boolean;
  /** The executed file has a copy in the upper layer of its overlay file system: a container's own write, not its image's file. */
  exeUpperLayer?: boolean;
  /** An in-kernel kill rule matched this exec (rules with `kill: {inKernel: true}` about execs): the rule, the signal, what was done. */
  kill?: KernelKill;
}

export interface ForkEvent extends EventBase {
  type: 'fork';
  parentStartNs: number;
  childPid: number;
  childTgid: number;
  childStartNs: number;
  childPpid: number;
  thread: boolean;
  comm: string;
}

export interface ExitEvent extends EventBase {
  type: 'exit';
  startNs: number;
  ppid: number;
  /** Wait status as the kernel keeps it. */
  status: number;
  /** Exit code when the process exited normally, else undefined. */
  exitCode: number | undefined;
  /** Signal that killed it, else undefined. */
  signal: number | undefined;
  coreDumped: boolean;
  /** The last thread of the process ended (the process is gone). */
  groupDead: boolean;
  thread: boolean;
  comm: string;
}

export interface CredsEvent extends EventBase {
  type: 'creds';
  startNs: number;
  syscallNr: number;
  /** Undefined when the previous credentials were not known to the kernel map. */
  oldCreds: Creds | undefined;
  creds: Creds;
}

export interface CommEvent extends EventBase {
  type: 'comm';
  startNs: number;
  oldComm: string;
  comm: string;
}

export type ProcessEvent = ExecEvent | ForkEvent | ExitEvent | CredsEvent | CommEvent;

export interface CgroupEvent extends EventBase {
  type: 'cgroup';
  op: 'mkdir' | 'rmdir' | 'attach';
  /** The cgroup's id (inode of its directory). */
  id: number;
  /** 0 for the cgroup v2 hierarchy. */
  hierarchyId: number;
  level: number;
  /** attach: the process moved into the cgroup. */
  taskPid: number;
  /** Path below the hierarchy root ("/docker/<id>"). */
  path: string;
  pathTruncated: boolean;
}

// ---- syscall sensor (bpf/syscalls.bpf.c) ----------------------------------------------------------------

export type FileOp = 'open' | 'unlink' | 'rmdir' | 'rename' | 'chmod' | 'chown' | 'mkdir' | 'truncate' | 'link' | 'symlink';
export type NetOp = 'connect' | 'accept' | 'bind' | 'listen' | 'tcp_state';
export type SysOp = 'ptrace' | 'mount' | 'umount' | 'module_load' | 'bpf' | 'memfd_create' | 'setns' | 'unshare';
export type SyscallOp = FileOp | NetOp | SysOp;

/** What every syscall record carries: the call and its result. */
export interface SyscallEventBase extends EventBase {
  /** The syscall as named on this machine's ABI ("openat"); "" for an event from a tracepoint. */
  syscall: string;
  /** Its number; -1 for an event from a tracepoint. */
  nr: number;
  /** The return value: an fd, 0, a count, or -errno. */
  ret: number;
  /** The errno name when ret is an error ("ENOENT"), else undefined. (Not `error`: that marks decode errors.) */
  errno: string | undefined;
  /** Raw VIGIL_SYSF_* flags. */
  evFlags: number;
}

export interface FileEvent extends SyscallEventBase {
  type: FileOp;
  group: 'file';
  /**
   * The path as passed ("" for fchmod/fchown/ftruncate, which take an fd). link: the existing file; symlink:
   * the target, the link's contents, as given (never resolved: a relative one is relative to the link's
   * directory).
   */
  path: string;
  /** rename: the new path as passed; link, symlink: the link made. */
  path2?: string;
  /**
   * The absolute path: the opened file's own path (from its fd, symlinks resolved) for a successful open or
   * the fd of fchmod/fchown/ftruncate; else directory + "/" + relative path (lexical, not normalised).
   */
  resolvedPath?: string;
  resolvedPath2?: string;
  /** Where resolvedPath came from: the fd, the working directory, or the directory fd. */
  resolvedFrom?: 'fd' | 'cwd' | 'dirfd';
  /** The directory fd the path is relative to (-100: AT_FDCWD); fchmod/fchown/ftruncate: the fd; symlink: -1 (none). */
  dfd: number;
  /** rename, link, symlink: the directory fd path2 is relative to. */
  dfd2?: number;
  /** The flags argument: O_* for open, AT_* for unlinkat/fchownat/fchmodat2/linkat, RENAME_* for renameat2. */
  flags: number;
  flagNames: string;
  /** open (with O_CREAT/O_TMPFILE), mkdir, chmod. */
  mode?: number;
  /** The mode as 4 octal digits ("0644"). */
  modeOctal?: string;
  /** chown: the new owner and group; undefined when left unchanged (-1). */
  uid?: number;
  gid?: number;
  /** openat2: RESOLVE_* names. */
  resolve?: string;
  /** truncate, ftruncate: the length asked for. */
  length?: number;
  /** An open for writing, creating or truncating. */
  write: boolean;
  /** A modification under a configured sensitive prefix (either path of a rename, link or symlink). */
  sensitive: boolean;
  /**
   * rename, link, symlink: the second path (the new name, the link made) is the one under a sensitive prefix,
   * so the call changed what is there; false when only the first is (a link to a sensitive file made elsewhere).
   */
  path2Sensitive?: boolean;
  /** A read-only open under a configured secret prefix (filters.secretPaths). */
  secret: boolean;
  /** A file under a log prefix (filters.logPaths) truncated: by an open with O_TRUNC, truncate or ftruncate. */
  logTruncated: boolean;
  /** A file under a log prefix unlinked, or renamed away (its old path). */
  logRemoved: boolean;
  /** A rename onto a path under a log prefix (its new path): whatever log was there is gone. */
  logReplaced: boolean;
  pathTruncated: boolean;
  /** The path was not resident at entry and was read at exit. */
  pathReadAtExit: boolean;
  pathUnreadable: boolean;
  resolvedTruncated: boolean;
  /** Submitted through io_uring (syscall "io_uring"): no system call of its own; reported at its completion. */
  ioUring: boolean;
  /** io_uring: reported without its result (ret 0), see docs/syscalls.md. */
  resultUnknown: boolean;
  /** An in-kernel kill rule matched this event (rules with `kill: {inKernel: true}`): the rule, the signal, what was done. */
  kill: KernelKill | undefined;
}

export interface NetEvent extends SyscallEventBase {
  type: NetOp;
  group: 'network';
  /** The socket fd (accept: the listening socket's); -1 for tcp_state. */
  fd: number;
  family: string;
  /** "SOCK_STREAM"; "" when unknown. */
  sockType: string;
  /** "tcp", "udp"; "" for the family's default. */
  protocol: string;
  /** IPv4 "10.0.0.1", IPv6 "::1", unix "/run/x.sock" or "@abstract"; undefined when none. */
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
  /** accept4: SOCK_* flags. */
  flags?: number;
  flagNames?: string;
  backlog?: number;
  /** tcp_state: TCP_* names. */
  oldState?: string;
  newState?: string;
  /** connect, bind: an in-kernel deny rule matched it (rules with `deny: {}`): the rule, and whether it was denied. */
  deny?: KernelDeny;
  addrUnreadable: boolean;
  /** The fd was not a socket (or was already closed at exit). */
  noSocket: boolean;
  /** A connect submitted through io_uring (syscall "io_uring"). */
  ioUring: boolean;
  /** io_uring: reported without its result (ret 0). */
  resultUnknown: boolean;
}

export interface SysEvent extends SyscallEventBase {
  type: SysOp;
  group: 'other';
  /** The raw arguments as recorded (see sys_event in events.h). */
  args: number[];
  /** ptrace: the request ("PTRACE_ATTACH") and the target pid. */
  request?: string;
  targetPid?: number;
  /** mount: source, target, filesystem type; umount: target. */
  source?: string;
  target?: string;
  fstype?: string;
  /** mount/umount/memfd_create/unshare flags. */
  flags?: number;
  flagNames?: string;
  /** module_load: the module name (tracepoint), its parameters and its file (finit_module). */
  moduleName?: string;
  moduleParams?: string;
  modulePath?: string;
  /** bpf: the command ("BPF_PROG_LOAD"), the program or map type, and its name. */
  bpfCmd?: string;
  bpfType?: string;
  bpfName?: string;
  /** memfd_create: the name. */
  name?: string;
  /** setns: the fd, the namespace types asked for, and the inode of the namespace entered. */
  fd?: number;
  nsType?: string;
  nsInode?: number;
  pathTruncated: boolean;
}

export type SyscallEvent = FileEvent | NetEvent | SysEvent;
