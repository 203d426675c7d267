// What the process resolver knows about a process. A process is identified by (pid, start time): pids are
// reused, start times are not. Its image changes at each exec (the previous ones are kept as history), its
// credentials may change (history kept too), and its parent may change when the kernel reparents it (the
// original parent is kept: lineage answers "who started whom").
import type { Creds, Namespaces } from '../events/types.ts';

export type ProcessKey = string;

/** Where an entry came from. */
export type ProcessSource = 'event' | 'snapshot' | 'kernel-map' | 'procfs' | 'partial';

export interface EnvVar {
  name: string;
  /** Present only for allow-listed variables (scrubbed even then). */
  value?: string;
}

export interface ProcessImage {
  /** Unique per exec: "<pid>:<start ticks>:<exec ktime>" ("...:snap" / "...:fork" when not seen exec'ing). */
  execId: string;
  /** When the image started (the exec), boot ns; undefined when inherited at fork or found by the snapshot. */
  execNs: number | undefined;
  exePath: string | undefined;
  exeIno: number | undefined;
  /** Kernel dev_t of the executable's filesystem: major << 20 | minor. */
  exeDev: number | undefined;
  exeMtimeNs: number | undefined;
  /** The executable has a copy in its overlay file system's upper layer (ExecEvent.exeUpperLayer); false when not, or not known. */
  exeUpperLayer: boolean;
  filename: string | undefined;
  /** Scrubbed argv. */
  argv: string[] | undefined;
  argc: number | undefined;
  argvTruncated: boolean;
  env: readonly EnvVar[] | undefined;
  envTruncated: boolean;
  comm: string;
  /** The image was inherited from the parent at fork: this process has not exec'd (yet). */
  inherited: boolean;
  /**
   * Image fields this image's source could not know ('argv', 'env', 'exe', 'exeUpperLayer', 'filename', 'comm'; the eBPF-less
   * mode, a process gone before /proc was read): their values are undefined or empty, never borrowed.
   * Undefined when every field is known.
   */
  unknown?: string[];
}

export interface ExitInfo {
  ktimeNs: number;
  status: number;
  exitCode: number | undefined;
  signal: number | undefined;
  coreDumped: boolean;
}

export interface CredChange {
  ktimeNs: number;
  syscallNr: number;
  creds: Creds;
}

export interface ProcessEntry {
  key: ProcessKey;
  pid: number;
  /** Boot ns; NaN when unknown (eBPF-less mode, process already gone). */
  startNs: number;
  ppid: number;
  /** Current parent (changes on reparenting). */
  parentKey: ProcessKey | undefined;
  /** The parent that created it, when it was reparented since. */
  originalParentKey: ProcessKey | undefined;
  reparentedNs: number | undefined;
  image: ProcessImage;
  /** Earlier images of this process (exec chain), oldest first, bounded. */
  previousImages: ProcessImage[];
  execCount: number;
  creds: Creds | undefined;
  credHistory: CredChange[];
  ns: Namespaces | undefined;
  tty: string;
  subreaper: boolean;
  exit: ExitInfo | undefined;
  source: ProcessSource;
  /** The parent could not be found anywhere (events, kernel map, /proc). */
  lineageBroken: boolean;
  /**
   * Fields this entry cannot know (eBPF-less mode, unreadable /proc files): those of its current image, and
   * 'startNs', 'ppid', 'creds' or 'creds.<field>', 'ns' or 'ns.<field>', 'cgroupId', 'tty', 'subreaper',
   * 'exit.<field>' (status, exitCode, signal, ktimeNs), 'credHistory.syscallNr'. A field listed here may hold
   * a placeholder or an older value: it is not to be trusted.
   */
  unknown: string[];
  /** Children by creation lineage (keys). */
  children: Set<ProcessKey>;
  /** Last time an event touched this entry (boot ns). */
  lastSeenNs: number;
  /**
   * What the pipeline made of this entry for output (src/pipeline/enrich.ts keeps its memo here, and checks it
   * against the entry itself). The cache never reads it; it goes with the entry.
   */
  output: unknown;
}

/** A live process as the /proc snapshot (or a /proc fallback lookup) found it. */
export interface SnapshotProcess {
  type: 'snapshot';
  pid: number;
  startNs: number;
  ppid: number;
  comm: string;
  exePath: string | undefined;
  exeIno: number | undefined;
  exeDev: number | undefined;
  exeMtimeNs: number | undefined;
  /** The executable is in its overlay's upper layer (upper-layer.ts); undefined when that could not be read. */
  exeUpperLayer?: boolean;
  argv: string[] | undefined;
  envRaw: string[] | undefined;
  creds: Creds | undefined;
  ns: Namespaces | undefined;
  tty: string;
  /** Fields that could not be read (permission, the process exited meanwhile, kernel thread). */
  unknown: string[];
  kernelThread: boolean;
}

/** /proc's start times are in clock ticks of 10 ms (USER_HZ = 100); so are process keys ("<pid>:<ticks>"). */
export const TICK_NS = 1e7;

/** The initial pid namespace's inode (PROC_PID_INIT_INO): there a process's namespace pid is its pid. */
export const INIT_PIDNS = 0xeffffffc;
