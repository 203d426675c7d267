// What leaves the pipeline: one enriched event, as users see it in JSON (stdout, files, the store, webhooks,
// NATS, OTLP), and the contract every sink honours. Field names are stable API: add, never rename.
import type { ByteLine } from './json-bytes.ts';

export interface ProcessRef {
  pid: number;
  tid?: number;
  ppid?: number;
  /** Unique per exec image: "<pid>:<start ticks>:<exec ktime>". */
  execId?: string;
  /** Process identity: "<pid>:<start ticks>". */
  key?: string;
  startNs?: number;
  comm?: string;
  exe?: string;
  /**
   * The executable is the host's own file at that path (same device and inode: HostFiles), not a container's
   * file of the same path; set only when that is known. A process in a container running one is the
   * runtime's own (runc setting the container up), or escaped.
   */
  hostExe?: boolean;
  /**
   * The executable has a copy in the upper layer of its overlay file system (a container's root): written or
   * created in the container after it started, not a file of its image (Falco's proc.is_exe_upper_layer). Set
   * only when true, from the exec (a process found by the /proc snapshot does not say).
   */
  exeUpperLayer?: boolean;
  /** Scrubbed. */
  argv?: string[];
  argvTruncated?: boolean;
  uid?: number;
  user?: string;
  gid?: number;
  euid?: number;
  loginuid?: number;
  tty?: string;
  /** Fields this process's source could not know. */
  unknown?: string[];
}

export interface ContainerRef {
  id: string;
  name?: string;
  image?: string;
  imageDigest?: string;
  runtime?: string;
  labels?: Record<string, string>;
  /** 'pending' until the runtime answered. */
  enrichment: 'pending' | 'done' | 'failed';
}

export interface PodRef {
  name?: string;
  namespace?: string;
  uid: string;
  labels?: Record<string, string>;
}

/** An enriched event. Event-specific fields sit next to the common ones. */
export interface OutputEvent {
  /** "exec", "exit", "fork", "creds", "comm", "open", "unlink", "connect", "container_started", ... */
  type: string;
  /** ISO 8601 wall-clock time of the event. */
  time: string;
  /** Boot-time ns (monotonic across the host, for ordering). */
  ktimeNs: number;
  process?: ProcessRef;
  parent?: ProcessRef;
  /** Ancestor pids, parent first (creation lineage). */
  ancestors?: number[];
  container?: ContainerRef;
  pod?: PodRef;
  /** Syscall return value, for syscall events. */
  ret?: number;
  [field: string]: unknown;
}

/**
 * What a line is about, for sinks that index lines without the event object (the store): what the event's
 * own `type`, `time`, `ktimeNs`, `process`, `container` and `pod` members say. The pipeline fills one object
 * and reuses it: valid during the call only.
 */
export interface LineMeta {
  type: string;
  /** `time` as epoch ms (NaN: none usable). */
  timeMs: number;
  ktimeNs: number;
  pid: number | undefined;
  /** The process's comm (the router's comm filter). */
  comm: string | undefined;
  processKey: string | undefined;
  execId: string | undefined;
  containerId: string | undefined;
  containerName: string | undefined;
  podName: string | undefined;
  podNamespace: string | undefined;
  /** An alert's priority (undefined for other events): for sinks that take alerts from a priority up. */
  priority: string | undefined;
}

/** An empty LineMeta, to be filled. */
export const newLineMeta = (): LineMeta => ({
  type: '',
  timeMs: NaN,
  ktimeNs: 0,
  pid: undefined,
  comm: undefined,
  processKey: undefined,
  execId: undefined,
  containerId: undefined,
  containerName: undefined,
  podName: undefined,
  podNamespace: undefined,
  priority: undefined,
});

/** Fills `m` from an event object (events made outside the enricher's line writers: held, synthetic). */
export function lineMetaOf(ev: OutputEvent, m: LineMeta): LineMeta {
  const p = ev.process;
  const c = ev.container;
  m.type = ev.type;
  m.timeMs = typeof ev.time === 'string' ? Date.parse(ev.time) : NaN;
  m.ktimeNs = ev.ktimeNs;
  m.pid = p?.pid;
  m.comm = p?.comm;
  m.processKey = p?.key;
  m.execId = p?.execId;
  m.containerId = c?.id;
  m.containerName = c?.name;
  m.podName = ev.pod?.name;
  m.podNamespace = ev.pod?.namespace;
  m.priority = ev.type === 'alert' && typeof ev.priority === 'string' ? ev.priority : undefined;
  return m;
}

export interface SinkStats {
  /** Events handed to the sink. */
  received: number;
  /** Events the sink delivered (written, acknowledged). */
  sent: number;
  /** Events dropped, by reason ("queue-full", "error", ...). Never silent. */
  dropped: Record<string, number>;
  /** Events waiting in the sink's bounded queue. */
  queued: number;
  /**
   * Events handed to the sink that its selection (sinks.<kind>.types, minPriority) leaves out: counted in
   * `received`, not drops. Absent: the sink takes every event.
   */
  skipped?: number;
  /** Delivery attempts that failed and were retried. */
  retries: number;
  /** Last delivery error, for `vigil status`. */
  lastError?: string;
}

/** Where a batch of lines goes: buf[at, end) (Sink.placeLines). */
export interface LineRoom {
  buf: Buffer;
  at: number;
  end: number;
}

/**
 * A sink receives events on the hot path and must never block it: write() only enqueues (or counts a
 * drop); delivery runs asynchronously, in batches, behind a bounded queue.
 */
export interface Sink {
  readonly name: string;
  /** Enqueue one event. `line` is the event's JSON (serialized once for all sinks). Never throws. */
  write(ev: OutputEvent, line: string): void;
  /**
   * Optional: enqueue one event given by its JSON line alone (and `meta`, what the line is about, for a sink
   * that indexes lines). A sink that needs nothing more implements it; the pipeline then calls it instead of
   * write() and, when no one else needs the event object, never builds one. Never throws.
   */
  writeLine?(line: string, meta: LineMeta): void;
  /**
   * Optional, with writeLine: enqueue one event given by the UTF-8 bytes of its JSON line, buf[start, end)
   * (no newline), which the sink copies before it returns. When every sink has it and no one needs the event
   * object, the pipeline writes lines as bytes and never builds them as strings. Never throws.
   */
  writeBytes?(buf: Uint8Array, start: number, end: number, meta: LineMeta): void;
  /**
   * Optional, with writeBytes: lets the next line be written in place, into the sink's own queue, saving
   * the copy writeBytes makes (the pipeline does so when this is its only sink). The sink points `w` at
   * room in its queue (ByteLine.into); the line written there is queued by commitPlaced(length). A line that
   * outgrew the room (w.placed false) is given to writeBytes instead; one never committed is ignored.
   */
  placeLine?(w: ByteLine): void;
  commitPlaced?(n: number): void;
  /**
   * Optional, with placeLine: room for several lines at once, written in place by the pipeline's native
   * line writer (pipeline/native-lines.ts): `room` is pointed at the sink's queue, buf[at, end), at least
   * as much as placeLine offers. commitLines queues the `n` lines then written there, each ending (newline
   * included) at ends[i], the first starting at `at`; each counts as one line offered, as commitPlaced's.
   */
  placeLines?(room: LineRoom): void;
  commitLines?(ends: Int32Array, n: number): void;
  /**
   * Optional: how many more lines it can queue right now without dropping one. The ring reader takes no
   * more records than the sinks have room for, for a short while (RingBufReaderOptions.credit): a burst
   * then waits in the ring instead of overflowing this queue. Only a sink whose slowness is momentary (a
   * local file catching up) should say; a sink that can stall for long (a remote one) would hold every
   * other sink back by up to the reader's wait.
   */
  room?(): number;
  /**
   * Optional: close the sink's files and open them again at their configured paths (SIGUSR1: logrotate moved
   * or truncated them). Resolves when done; never rejects (a failure is counted by the sink).
   */
  reopen?(): Promise<void>;
  /**
   * Optional: send nothing until `done` settles (a reload replaced a sink writing to the same file or
   * descriptor with this one: the old one's lines go out first). Events queue meanwhile.
   */
  startAfter?(done: Promise<void>): void;
  /** Deliver what is queued; resolves when done (or when the sink gave up, counting drops). */
  flush(): Promise<void>;
  /** Flush, then release resources. Idempotent. */
  close(): Promise<void>;
  stats(): SinkStats;
}
