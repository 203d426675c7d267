// The decoded form of every record the sensors emit. Field names are what users see in JSON output, so
// they are stable: add fields, never rename them. Times are boot-time nanoseconds as JS numbers (exact below
// 2^53 ns, about 104 days of uptime; beyond that they round the same way everywhere, so equality holds).

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
