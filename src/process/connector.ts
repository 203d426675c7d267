// The eBPF-less process source: the kernel's netlink proc connector (fork, exec, exit, uid/gid and comm
// notices that carry little more than pids) completed from /proc at once, and emitted as the same events the
// BPF process sensor produces. Whatever this mode cannot know is listed in each event's `unknown`, never guessed.
import fs from 'node:fs';
import os from 'node:os';
import koffi, { type node as koffiNode } from 'koffi';
import { NotSupportedError, PermissionError, StateError, SyscallError, type VigilError } from '../bpf/errors.ts';
import { errno, libc } from '../bpf/ffi.ts';
import { cString } from '../events/strings.ts';
import type { CommEvent, Creds, CredsEvent, ExecEvent, ExitEvent, ForkEvent, Namespaces, ProcessEvent } from '../events/types.ts';
import { cgroupIdOf, parseStat, parseStatus, readProcess, readText, statState, type ProcStat } from './procfs.ts';
import type { FallbackSource } from './resolver.ts';
import { TICK_NS, type SnapshotProcess } from './types.ts';

// ---- wire layout (linux/netlink.h, linux/connector.h, linux/cn_proc.h) ------------------------------------

const AF_NETLINK = 16;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_CONNECTOR = 11;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const MSG_TRUNC = 0x20;
const POLLIN = 1;
const CLOCK_MONOTONIC = 1;
const CLOCK_BOOTTIME = 7;

export const CN_IDX_PROC = 1;
export const CN_VAL_PROC = 1;
export const PROC_CN_MCAST_LISTEN = 1;
export const PROC_CN_MCAST_IGNORE = 2;

export const NLMSG_HDRLEN = 16; // struct nlmsghdr: len u32, type u16, flags u16, seq u32, pid u32
export const CN_MSG_LEN = 20; // struct cn_msg: id.idx u32, id.val u32, seq u32, ack u32, len u16, flags u16
export const PROC_EVENT_HDR = 16; // struct proc_event: what u32, cpu u32, timestamp_ns u64 (8-aligned)
const NLMSG_NOOP = 1;
const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
const NLMSG_OVERRUN = 4;

/** `what` values of struct proc_event. */
export const PROC_EVENT = {
  NONE: 0x0,
  FORK: 0x1,
  EXEC: 0x2,
  UID: 0x4,
  GID: 0x40,
  SID: 0x80,
  PTRACE: 0x100,
  COMM: 0x200,
  COREDUMP: 0x40000000,
  EXIT: 0x80000000,
} as const;

/** Bytes of event_data each kind needs (exit's parent pid/tgid are optional: older kernels lack them). */
const DATA_NEEDS: Record<number, number> = {
  [PROC_EVENT.NONE]: 4,
  [PROC_EVENT.FORK]: 16,
  [PROC_EVENT.EXEC]: 8,
  [PROC_EVENT.UID]: 16,
  [PROC_EVENT.GID]: 16,
  [PROC_EVENT.SID]: 8,
  [PROC_EVENT.PTRACE]: 16,
  [PROC_EVENT.COMM]: 24,
  [PROC_EVENT.COREDUMP]: 8,
  [PROC_EVENT.EXIT]: 16,
};

interface MsgBase {
  /** CPU the kernel generated the notice on, and its per-CPU sequence number (gaps mean lost notices). */
  cpu: number;
  seq: number;
  /** CLOCK_MONOTONIC ns of the notice (the kernel's ktime_get_ns, despite the header's comment). */
  timestampNs: number;
}

/** One decoded proc connector notice. Pids are the kernel's: `pid` is the thread, `tgid` the process. */
export type ProcConnectorMessage =
  | (MsgBase & { what: 'fork'; parentPid: number; parentTgid: number; childPid: number; childTgid: number })
  | (MsgBase & { what: 'exec'; pid: number; tgid: number })
  | (MsgBase & { what: 'uid' | 'gid'; pid: number; tgid: number; real: number; effective: number })
  | (MsgBase & { what: 'comm'; pid: number; tgid: number; comm: string })
  | (MsgBase & { what: 'exit'; pid: number; tgid: number; exitCode: number; exitSignal: number; parentPid: number; parentTgid: number })
  | (MsgBase & { what: 'ack'; ack: number; err: number })
  | (MsgBase & { what: 'other'; code: number });

export type ParseErrorKind =
  | 'short-header' // trailing bytes too short for a nlmsghdr
  | 'bad-length' // nlmsg_len below the header size or beyond the datagram
  | 'netlink-error' // NLMSG_ERROR from the kernel
  | 'netlink-overrun' // NLMSG_OVERRUN
  | 'short-cn-msg' // payload too short for struct cn_msg
  | 'bad-cn-length' // cn_msg.len beyond the payload
  | 'short-event'; // too short for struct proc_event or for its kind's data

export interface ParsedDatagram {
  messages: ProcConnectorMessage[];
  errors: ParseErrorKind[];
  /** Messages of another connector (not CN_IDX_PROC/CN_VAL_PROC) and NLMSG_NOOP: skipped, not errors. */
  skipped: number;
}

const u64 = (v: DataView, o: number) => v.getUint32(o + 4, true) * 4294967296 + v.getUint32(o, true);

/**
 * Decodes one datagram from a proc connector socket: any number of netlink messages, each a cn_msg holding
 * a proc_event. Never throws: a malformed message is reported in `errors` and the walk continues where the
 * framing still allows it (a bad nlmsg_len ends the datagram, since the next header cannot be found).
 */
export function parseProcConnectorDatagram(buf: Uint8Array, len = buf.length, out: ParsedDatagram = { messages: [], errors: [], skipped: 0 }): ParsedDatagram {
  const end = Math.min(len, buf.length);
  const v = new DataView(buf.buffer, buf.byteOffset, end);
  let off = 0;
  while (off < end) {
    if (end - off < NLMSG_HDRLEN) {
      // Alignment padding is zero; anything else is a header cut short.
      if (buf.subarray(off, end).some((b) => b !== 0)) out.errors.push('short-header');
      break;
    }
    const nlLen = v.getUint32(off, true);
    const nlType = v.getUint16(off + 4, true);
    if (nlLen < NLMSG_HDRLEN || nlLen > end - off) {
      out.errors.push('bad-length');
      break;
    }
    if (nlType === NLMSG_NOOP) out.skipped++;
    else if (nlType === NLMSG_ERROR) out.errors.push('netlink-error');
    else if (nlType === NLMSG_OVERRUN) out.errors.push('netlink-overrun');
    else parseCnMsg(v, buf, off + NLMSG_HDRLEN, nlLen - NLMSG_HDRLEN, out);
    off += (nlLen + 3) & ~3; // NLMSG_ALIGN
  }
  return out;
}

function parseCnMsg(v: DataView, buf: Uint8Array, o: number, payload: number, out: ParsedDatagram): void {
  if (payload < CN_MSG_LEN) {
    out.errors.push('short-cn-msg');
    return;
  }
  if (v.getUint32(o, true) !== CN_IDX_PROC || v.getUint32(o + 4, true) !== CN_VAL_PROC) {
    out.skipped++;
    return;
  }
  const seq = v.getUint32(o + 8, true);
  const ack = v.getUint32(o + 12, true);
  const dataLen = v.getUint16(o + 16, true);
  if (dataLen > payload - CN_MSG_LEN) {
    out.errors.push('bad-cn-length');
    return;
  }
  const e = o + CN_MSG_LEN;
  if (dataLen < PROC_EVENT_HDR) {
    out.errors.push('short-event');
    return;
  }
  const what = v.getUint32(e, true);
  const base: MsgBase = { cpu: v.getUint32(e + 4, true), seq, timestampNs: u64(v, e + 8) };
  const d = e + PROC_EVENT_HDR;
  const have = dataLen - PROC_EVENT_HDR;
  const need = DATA_NEEDS[what];
  if (need !== undefined && have < need) {
    out.errors.push('short-event');
    return;
  }
  const i32 = (k: number) => v.getInt32(d + 4 * k, true);
  const u32 = (k: number) => v.getUint32(d + 4 * k, true);
  switch (what) {
    case PROC_EVENT.FORK:
      out.messages.push({ what: 'fork', ...base, parentPid: i32(0), parentTgid: i32(1), childPid: i32(2), childTgid: i32(3) });
      return;
    case PROC_EVENT.EXEC:
      out.messages.push({ what: 'exec', ...base, pid: i32(0), tgid: i32(1) });
      return;
    case PROC_EVENT.UID:
    case PROC_EVENT.GID:
      out.messages.push({ what: what === PROC_EVENT.UID ? 'uid' : 'gid', ...base, pid: i32(0), tgid: i32(1), real: u32(2), effective: u32(3) });
      return;
    case PROC_EVENT.COMM:
      out.messages.push({ what: 'comm', ...base, pid: i32(0), tgid: i32(1), comm: cString(buf, d + 8, 16) });
      return;
    case PROC_EVENT.EXIT: {
      // Kernels before 4.18 end the exit data after exit_signal; the parent then reads as 0 (unknown).
      const withParent = have >= 24;
      out.messages.push({ what: 'exit', ...base, pid: i32(0), tgid: i32(1), exitCode: u32(2), exitSignal: i32(3), parentPid: withParent ? i32(4) : 0, parentTgid: withParent ? i32(5) : 0 });
      return;
    }
    case PROC_EVENT.NONE:
      out.messages.push({ what: 'ack', ...base, ack, err: u32(0) });
      return;
    default:
      out.messages.push({ what: 'other', ...base, code: what });
  }
}

/** Builds the control message that starts (LISTEN) or stops (IGNORE) delivery to a socket. */
export function mcastControlMessage(op: number, ack: number): Buffer {
  const b = Buffer.alloc(NLMSG_HDRLEN + CN_MSG_LEN + 4);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(NLMSG_DONE, 4);
  b.writeUInt32LE(process.pid, 12);
  b.writeUInt32LE(CN_IDX_PROC, 16);
  b.writeUInt32LE(CN_VAL_PROC, 20);
  b.writeUInt32LE(0, 24); // seq
  b.writeUInt32LE(ack >>> 0, 28); // the kernel answers with ack + 1: how we recognise our acknowledgement
  b.writeUInt16LE(4, 32);
  b.writeUInt32LE(op, 36);
  return b;
}

// ---- errors --------------------------------------------------------------------------------------------

const E = os.constants.errno;

/**
 * The error for a failed step of opening the connector: missing privilege names CAP_NET_ADMIN, a kernel
 * without the connector is NotSupportedError('proc_connector').
 */
export function connectorError(step: 'socket' | 'bind' | 'listen', err: number): VigilError {
  const e = Math.abs(err);
  const what = {
    socket: 'open a NETLINK_CONNECTOR socket',
    bind: 'join the proc connector multicast group',
    listen: 'subscribe to proc connector events (PROC_CN_MCAST_LISTEN)',
  }[step];
  if (e === E.EPERM || e === E.EACCES) return new PermissionError(what, 'CAP_NET_ADMIN', { errno: e });
  if (e === E.EPROTONOSUPPORT || e === E.EAFNOSUPPORT || e === E.ENOENT || e === E.EOPNOTSUPP) {
    return new NotSupportedError('proc_connector', `${what}: the kernel has no process events connector (CONFIG_CONNECTOR, CONFIG_PROC_EVENTS)`, { errno: e });
  }
  return new SyscallError(what, e);
}

// ---- the source ----------------------------------------------------------------------------------------

/** Clock-read error allowance when checking that a /proc start time precedes an event, beyond the offset's. */
const SLACK_NS = 1e6;
const RECV_BUF = 64 * 1024;
/** Datagrams read per round, and rounds per wakeup, before yielding to the event loop (poll is level-triggered). */
const MAX_DATAGRAMS = 4096;
const MAX_ROUNDS = 8;
const ACK_TIMEOUT_MS = 1000;
const DEFAULT_RCVBUF = 8 * 1024 * 1024;
/** Bound on the pid -> start-time memory (processes whose exit notice was lost would otherwise stay). */
const MAX_KNOWN = 1 << 18;
const PENDING_CHECK_MS = 1000;
const PENDING_CHECK_MAX_MS = 30_000;

export interface ProcConnectorOptions {
  procRoot?: string;
  /** Read /proc/<pid>/environ at exec (root only; the resolver scrubs it). Default true. */
  env?: boolean;
  /** Most bytes of cmdline/environ read per exec. */
  maxBytes?: number;
  /** Socket receive buffer to ask for (SO_RCVBUFFORCE as root, else SO_RCVBUF up to rmem_max). Default 8 MiB. */
  rcvbufBytes?: number;
  /**
   * Added to every boot-time offset read (tests): plays a read that a preemption skewed by this much, with
   * the bracket around it widened to show it, as a real preemption's is.
   */
  clockErrorNs?: number;
}

/** What the source remembers per live process: enough to key its later events after /proc forgot it. */
interface Known {
  startNs: number;
  ppid: number;
  comm: string;
  creds: Creds | undefined;
  cgroupId: number | undefined;
}

/** What was read from /proc for a notice before the next notices were received. */
interface Prefetched {
  snap?: SnapshotProcess | undefined;
  stat?: ProcStat | undefined;
  /** Live tasks of a leader's process at its exit; undefined when the process is gone. */
  live?: number[] | undefined;
}

/** A group leader exited while other threads of its process still ran: the process is not gone yet. */
interface PendingExit {
  leader: ExitEvent;
  waiting: Set<number>;
  nextCheckMs: number;
  intervalMs: number;
}

const UNKNOWN_CREDS: Creds = {
  uid: NaN, gid: NaN, euid: NaN, egid: NaN, suid: NaN, sgid: NaN, fsuid: NaN, fsgid: NaN,
  capEffective: '', capPermitted: '', capInheritable: '', loginuid: undefined,
};
const UNKNOWN_NS: Namespaces = { cgroupId: 0, pidns: 0, mntns: 0, nspid: 0 };
const CRED_FIELDS = ['gid', 'egid', 'suid', 'sgid', 'fsuid', 'fsgid', 'capEffective', 'capPermitted', 'capInheritable', 'loginuid'] as const;

const tsBuf = Buffer.alloc(16);
function clockNs(clk: number): number {
  libc().clock_gettime(clk, tsBuf);
  return Number(tsBuf.readBigInt64LE(0)) * 1e9 + Number(tsBuf.readBigInt64LE(8));
}

const OFFSET_SAMPLES = 8;
/** A bracket this narrow had no preemption in it: stop sampling. */
const OFFSET_GOOD_NS = 20_000;

/**
 * CLOCK_BOOTTIME - CLOCK_MONOTONIC now, and how far off it may be. The connector stamps notices with the
 * monotonic clock, vigil uses boot time; the two differ by the time spent suspended. The boot-time read is
 * bracketed by two monotonic reads, and the narrowest of a few brackets is kept; its half-width bounds the
 * error. A preemption inside the only bracket (a loaded machine) would otherwise skew every conversion by
 * milliseconds unnoticed, enough to take a just-forked child for a later process than the one /proc shows.
 */
export function bootOffset(): { offsetNs: number; errorNs: number } {
  let offsetNs = 0;
  let width = Infinity;
  for (let i = 0; i < OFFSET_SAMPLES && width > OFFSET_GOOD_NS; i++) {
    const m1 = clockNs(CLOCK_MONOTONIC);
    const b = clockNs(CLOCK_BOOTTIME);
    const m2 = clockNs(CLOCK_MONOTONIC);
    if (m2 - m1 < width) {
      width = m2 - m1;
      offsetNs = Math.round(b - (m1 + m2) / 2);
    }
  }
  return { offsetNs, errorNs: Math.ceil(width / 2) };
}

type State = 'idle' | 'running' | 'stopped';

/**
 * Feeds the process resolver from the netlink proc connector plus /proc (no BPF needed). start() throws
 * PermissionError (CAP_NET_ADMIN; kernels before 6.6 need it to listen), NotSupportedError('proc_connector')
 * when the kernel lacks the connector or ignores this listener (outside the initial user and pid
 * namespaces), SyscallError otherwise, and StateError when not idle.
 */
export class ProcConnectorSource implements FallbackSource {
  readonly #procRoot: string;
  readonly #env: boolean;
  readonly #maxBytes: number;
  readonly #rcvbuf: number;
  #state: State = 'idle';
  #fd = -1;
  #subscribed = false;
  #poll: koffiNode.PollHandle | undefined;
  #onEvent: ((ev: ProcessEvent | SnapshotProcess) => void) | undefined;
  readonly #buf = Buffer.alloc(RECV_BUF);
  #offsetNs = 0;
  /** Notices received to check the last round's reads against, processed first on the next turn. */
  #carried: ProcConnectorMessage[] = [];
  /** How much later than a notice a /proc start time may look and still precede it: the clocks' error. */
  #slackNs = SLACK_NS;
  readonly #clockErrorNs: number;
  readonly #known = new Map<number, Known>();
  readonly #pending = new Map<number, PendingExit>();
  #timer: NodeJS.Timeout | undefined;
  /** Next expected sequence number per CPU. */
  readonly #nextSeq = new Map<number, number>();
  readonly #ack = (Math.random() * 0x7fffffff) >>> 0;
  readonly #s = {
    datagrams: 0,
    messages: 0,
    fork: 0,
    exec: 0,
    exit: 0,
    uid: 0,
    gid: 0,
    comm: 0,
    ack: 0,
    /** Notices of kinds vigil does not use (sid, ptrace, coredump), and thread renames. */
    ignored: 0,
    /** ENOBUFS from recv: the socket overflowed and the kernel dropped notices. */
    overruns: 0,
    /** Notices missing from the per-CPU sequence numbers (exact count of what was dropped). */
    seqLost: 0,
    parseErrors: 0,
    truncated: 0,
    skipped: 0,
    recvErrors: 0,
    /** Wakeups with POLLERR (an overflow): the watcher was restarted. */
    pollErrors: 0,
    /** /proc reads that found nothing usable (the process was gone, or the pid already reused). */
    procReadFailures: 0,
    /** Exec notices whose /proc image was already (being) replaced by a later exec, or a zombie's: image fields marked unknown. */
    staleExecs: 0,
    /** Group-leader exits held until the process's last thread ended. */
    deferredExits: 0,
    /** Process exits concluded from /proc after the last thread's notice was lost. */
    inferredExits: 0,
    threadEvents: 0,
    emitted: 0,
    handlerErrors: 0,
    knownEvicted: 0,
    rcvbufBytes: 0,
  };
  readonly #parseErrorKinds: Partial<Record<ParseErrorKind, number>> = {};

  constructor(o: ProcConnectorOptions = {}) {
    this.#procRoot = o.procRoot ?? '/proc';
    this.#env = o.env ?? true;
    this.#maxBytes = o.maxBytes ?? 128 * 1024;
    this.#rcvbuf = o.rcvbufBytes ?? DEFAULT_RCVBUF;
    this.#clockErrorNs = o.clockErrorNs ?? 0;
  }

  /** Reads the boot-time offset, and widens the start-time checks by how far off it may be. */
  #readOffset(): void {
    const { offsetNs, errorNs } = bootOffset();
    const injected = this.#clockErrorNs;
    this.#offsetNs = offsetNs + injected;
    this.#slackNs = SLACK_NS + errorNs + Math.abs(injected);
  }

  /**
   * Opens the socket, subscribes, waits for the kernel's acknowledgement, learns the start times of the
   * live processes (so that their exits can still be keyed once /proc forgot them) and starts reading.
   * If any step fails, everything opened so far is closed.
   */
  start(onEvent: (ev: ProcessEvent | SnapshotProcess) => void): void {
    if (this.#state !== 'idle') throw new StateError(`proc connector source is ${this.#state}`);
    this.#onEvent = onEvent;
    const l = libc();
    try {
      const fd = l.socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR) as number;
      if (fd < 0) throw connectorError('socket', errno());
      this.#fd = fd;
      this.#growRcvbuf();
      const sa = Buffer.alloc(12); // sockaddr_nl: family u16, pad u16, pid u32 (0: the kernel picks), groups u32
      sa.writeUInt16LE(AF_NETLINK, 0);
      sa.writeUInt32LE(CN_IDX_PROC, 8);
      if ((l.bind(fd, sa, sa.length) as number) < 0) throw connectorError('bind', errno());
      const msg = mcastControlMessage(PROC_CN_MCAST_LISTEN, this.#ack);
      if (Number(l.send(fd, msg, msg.length, 0)) < 0) throw connectorError('listen', errno());
      this.#subscribed = true;
      const early = this.#awaitAck();
      this.#state = 'running';
      this.#seed();
      this.#readOffset();
      this.#run(early);
      // Drain as soon as notices arrive, without the batching delay the ring buffer uses: every moment of
      // delay is a moment in which /proc may forget the process or show a later image.
      this.#poll = koffi.node.poll(fd, { readable: true }, this.#pollCb);
    } catch (err) {
      this.#closeSocket();
      this.#state = 'idle';
      throw err;
    }
  }

  /** Unsubscribes, stops reading and closes the socket. Idempotent. */
  stop(): void {
    if (this.#state === 'stopped') return;
    this.#poll?.stop();
    this.#poll?.close();
    this.#poll = undefined;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#closeSocket();
    this.#carried = [];
    this.#state = 'stopped';
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = { ...this.#s, lost: Math.max(this.#s.seqLost, this.#s.overruns), pendingExits: this.#pending.size, known: this.#known.size };
    for (const [k, n] of Object.entries(this.#parseErrorKinds)) out[`parseError.${k}`] = n;
    return out;
  }

  /**
   * Runs datagrams received elsewhere (tests, captures) through the same path as live ones, emitting to
   * `onEvent`. Works without start(); reads /proc under procRoot as live notices do. Never throws: bad
   * datagrams and handler errors are counted in stats().
   */
  ingest(datagrams: Uint8Array[], onEvent: (ev: ProcessEvent | SnapshotProcess) => void): void {
    const saved = this.#onEvent;
    this.#onEvent = onEvent;
    try {
      this.#readOffset();
      const batch: ProcConnectorMessage[] = [];
      for (const d of datagrams) this.#parse(d, d.length, batch);
      this.#run(batch);
    } finally {
      this.#onEvent = saved;
    }
  }

  // ---- socket --------------------------------------------------------------------------------------------

  #growRcvbuf(): void {
    // Bursts (a fork storm) overflow the default ~200 KiB within milliseconds. FORCE ignores rmem_max but
    // needs CAP_NET_ADMIN; without it SO_RCVBUF is capped at rmem_max. Neither failing is fatal: overflows
    // are counted either way.
    const l = libc();
    const v = Buffer.alloc(4);
    v.writeInt32LE(Math.min(this.#rcvbuf, 0x3fffffff));
    if ((l.setsockopt(this.#fd, SOL_SOCKET, SO_RCVBUFFORCE, v, 4) as number) < 0) l.setsockopt(this.#fd, SOL_SOCKET, SO_RCVBUF, v, 4);
    const got = Buffer.alloc(4);
    const len = [4];
    if ((l.getsockopt(this.#fd, SOL_SOCKET, SO_RCVBUF, got, len) as number) === 0) this.#s.rcvbufBytes = got.readInt32LE(0);
  }

  #closeSocket(): void {
    if (this.#fd < 0) return;
    const l = libc();
    // Tell the kernel we stopped listening: on kernels before 6.6 closing the socket alone leaves its
    // listener count raised, and every fork and exit on the machine keeps paying for notices nobody reads.
    // Also after a start that failed once LISTEN was sent: it may have counted even if no answer came.
    if (this.#subscribed) {
      const msg = mcastControlMessage(PROC_CN_MCAST_IGNORE, this.#ack);
      l.send(this.#fd, msg, msg.length, 0);
      this.#subscribed = false;
    }
    l.close(this.#fd);
    this.#fd = -1;
  }

  /**
   * Reads until the kernel acknowledges our LISTEN (synchronously on current kernels: it is queued before
   * send returns). Returns what was read, acknowledgement included. Throws PermissionError when the kernel
   * refused, NotSupportedError when it never answered.
   */
  #awaitAck(): ProcConnectorMessage[] {
    const l = libc();
    const early: ProcConnectorMessage[] = [];
    const pfd = Buffer.alloc(8); // struct pollfd: fd i32, events i16, revents i16
    pfd.writeInt32LE(this.#fd, 0);
    pfd.writeInt16LE(POLLIN, 4);
    const deadline = Date.now() + ACK_TIMEOUT_MS;
    for (;;) {
      const got: ProcConnectorMessage[] = [];
      this.#receive(got, MAX_DATAGRAMS);
      for (let i = 0; i < got.length; i++) {
        const m = got[i]!;
        if (m.what === 'ack' && m.ack === ((this.#ack + 1) >>> 0)) {
          if (m.err !== 0) throw connectorError('listen', m.err);
          // The acknowledgement stays in place: it holds a sequence number between its neighbours.
          early.push(...got);
          return early;
        }
      }
      early.push(...got);
      const left = deadline - Date.now();
      if (left <= 0) break;
      // Blocking, but only at start and only until the acknowledgement (normally already queued).
      l.poll(pfd, 1, Math.min(left, 100));
    }
    throw new NotSupportedError(
      'proc_connector',
      'the kernel did not acknowledge PROC_CN_MCAST_LISTEN: it lacks CONFIG_PROC_EVENTS, or vigil runs outside the initial user and pid namespaces, whose listeners the kernel ignores',
    );
  }

  /** Reads up to `max` datagrams into `out`. Counts overruns; never throws. */
  #receive(out: ProcConnectorMessage[], max: number): void {
    const l = libc();
    for (let n = 0; n < max && this.#fd >= 0; n++) {
      const r = Number(l.recv(this.#fd, this.#buf, this.#buf.length, MSG_TRUNC));
      if (r < 0) {
        const e = errno();
        if (e === E.EINTR) continue;
        if (e === E.ENOBUFS) {
          // The socket overflowed: the kernel dropped notices for us. Reading on clears the condition;
          // the per-CPU sequence gaps tell how many were lost.
          this.#s.overruns++;
          continue;
        }
        if (e !== E.EAGAIN) this.#s.recvErrors++;
        return;
      }
      if (r > this.#buf.length) this.#s.truncated++;
      this.#parse(this.#buf, Math.min(r, this.#buf.length), out);
    }
  }

  #parse(buf: Uint8Array, len: number, out: ProcConnectorMessage[]): void {
    this.#s.datagrams++;
    const p = parseProcConnectorDatagram(buf, len, { messages: out, errors: [], skipped: 0 });
    this.#s.skipped += p.skipped;
    for (const k of p.errors) {
      this.#s.parseErrors++;
      this.#parseErrorKinds[k] = (this.#parseErrorKinds[k] ?? 0) + 1;
    }
  }

  /**
   * koffi calls back with (status, events), though its typings declare only the events. A negative status
   * is libuv reporting POLLERR, which a netlink socket raises on overflow (ENOBUFS); libuv has then stopped
   * the watcher, so it is restarted once the error is read, or the source would go deaf after its first overflow.
   */
  readonly #pollCb = ((status: unknown) => this.#onReadable(typeof status === 'number' ? status : 0)) as unknown as (ev: {
    readable: boolean;
    writable: boolean;
    disconnect: boolean;
  }) => void;

  #onReadable(status: number): void {
    if (this.#state !== 'running') return;
    this.#readOffset(); // once per wakeup: it changes only across a suspend
    // Notices received as the last round's lookahead come first (their /proc reads were not made yet).
    const batch = this.#carried;
    this.#carried = [];
    this.#receive(batch, MAX_DATAGRAMS);
    if (status < 0) {
      this.#s.pollErrors++;
      this.#poll?.start({ readable: true }, this.#pollCb);
    }
    this.#run(batch);
  }

  // ---- processing ----------------------------------------------------------------------------------------

  /**
   * Processes a batch in rounds. Each round first reads /proc for every exec, fork and leader exit in it (as
   * early as possible: /proc describes the present), then receives what arrived meanwhile. A notice there or
   * later in the batch can show that a /proc read was already out of date: an exec whose process exec'd
   * again shows the later image; a leader whose process looked dead had been replaced by a thread that
   * exec'd (and that process may have finished too before we looked).
   */
  #run(batch: ProcConnectorMessage[]): void {
    for (let round = 0; batch.length > 0; round++) {
      const reads = this.#prefetch(batch);
      const next: ProcConnectorMessage[] = [];
      // Always looked for, the last round's too: a read not checked against what arrived after it could be a
      // later exec's image taken for this one's (seen on a loaded machine, where rounds never run dry).
      if (this.#state === 'running') this.#receive(next, MAX_DATAGRAMS);
      const lastExec = new Map<number, number>();
      for (let i = 0; i < batch.length; i++) {
        const m = batch[i]!;
        if (m.what === 'exec') lastExec.set(m.tgid, i);
      }
      for (const m of next) if (m.what === 'exec') lastExec.set(m.tgid, Infinity);
      for (let i = 0; i < batch.length; i++) {
        const m = batch[i]!;
        const execLater = (m.what === 'exec' || m.what === 'exit') && (lastExec.get(m.tgid) ?? -1) > i;
        try {
          this.#handle(m, reads[i], execLater);
        } catch {
          this.#s.handlerErrors++; // a consumer's bug must not stop the source
        }
      }
      if (round + 1 >= MAX_ROUNDS && next.length) {
        // Yield to the event loop; the lookahead is processed first on the next turn.
        this.#carried = next;
        setImmediate(() => {
          if (this.#state === 'running' && this.#carried.length) this.#onReadable(0);
        });
        return;
      }
      batch = next;
    }
  }

  #prefetch(batch: ProcConnectorMessage[]): Prefetched[] {
    const reads: Prefetched[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]!;
      if (m.what === 'exec') reads[i] = { snap: readProcess(m.tgid, { procRoot: this.#procRoot, env: this.#env, maxBytes: this.#maxBytes }) };
      else if (m.what === 'fork' && m.childPid === m.childTgid) reads[i] = { stat: this.#stat(m.childTgid) };
      else if (m.what === 'exit' && m.pid === m.tgid) reads[i] = { live: this.#liveTasks(m.tgid, this.#ktime(m)) };
    }
    return reads;
  }

  /** `execLater`: an exec of the same process follows this notice (in this batch or just after it). */
  #handle(m: ProcConnectorMessage, read: Prefetched | undefined, execLater: boolean): void {
    this.#s.messages++;
    this.#trackSeq(m);
    switch (m.what) {
      case 'fork':
        this.#s.fork++;
        return this.#fork(m, read?.stat);
      case 'exec':
        this.#s.exec++;
        return this.#exec(m, read?.snap, execLater);
      case 'exit':
        this.#s.exit++;
        return this.#exit(m, read?.live, execLater);
      case 'uid':
      case 'gid':
        this.#s[m.what]++;
        return this.#creds(m);
      case 'comm':
        this.#s.comm++;
        return this.#comm(m);
      case 'ack':
        this.#s.ack++;
        return;
      default:
        this.#s.ignored++;
    }
  }

  /**
   * The kernel numbers notices per CPU, so a gap is an exact count of notices dropped (socket overflow or
   * a failed allocation in the kernel). Acknowledgements carry the requester's numbers on older kernels and
   * a sequence number on newer ones: they only advance the sequence when they fit it.
   */
  #trackSeq(m: ProcConnectorMessage): void {
    const want = this.#nextSeq.get(m.cpu);
    if (m.what === 'ack') {
      if (want === m.seq) this.#nextSeq.set(m.cpu, (m.seq + 1) >>> 0);
      return;
    }
    if (want !== undefined) {
      const gap = (m.seq - want) >>> 0;
      if (gap > 0 && gap < 0x80000000) this.#s.seqLost += gap;
    }
    this.#nextSeq.set(m.cpu, (m.seq + 1) >>> 0);
  }

  #emit(ev: ProcessEvent): void {
    this.#s.emitted++;
    this.#onEvent?.(ev);
  }

  #ktime(m: MsgBase): number {
    return m.timestampNs + this.#offsetNs;
  }

  /** /proc/<pid>/stat (or a thread's), or undefined. */
  #stat(pid: number, tid?: number): ProcStat | undefined {
    const text = readText(tid === undefined || tid === pid ? `${this.#procRoot}/${pid}/stat` : `${this.#procRoot}/${pid}/task/${tid}/stat`);
    const st = text ? parseStat(text) : undefined;
    if (!st) this.#s.procReadFailures++;
    return st;
  }

  #remember(tgid: number, k: Known): void {
    this.#known.delete(tgid); // re-insert: the map's order is the eviction order
    this.#known.set(tgid, k);
    if (this.#known.size > MAX_KNOWN) {
      const oldest = this.#known.keys().next().value;
      if (oldest !== undefined) this.#known.delete(oldest);
      this.#s.knownEvicted++;
    }
  }

  /**
   * What is known of process `tgid` as of boot time `ktimeNs`: remembered, else from /proc provided /proc
   * shows a process that had started by then (a later start means the pid was already reused); else undefined.
   */
  #lookup(tgid: number, ktimeNs: number): Known | undefined {
    const k = this.#known.get(tgid);
    if (k) return k;
    if (tgid <= 0) return undefined;
    const st = this.#stat(tgid);
    if (!st || st.startTicks * TICK_NS > ktimeNs + this.#slackNs) return undefined;
    const fresh: Known = { startNs: st.startTicks * TICK_NS, ppid: st.ppid, comm: st.comm, creds: undefined, cgroupId: undefined };
    this.#remember(tgid, fresh);
    return fresh;
  }

  /** Start times of the processes alive now; zombie leaders whose threads still run are awaited. */
  #seed(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.#procRoot);
    } catch {
      return;
    }
    for (const name of names) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      const text = readText(`${this.#procRoot}/${pid}/stat`);
      const st = text ? parseStat(text) : undefined;
      if (!text || !st) continue;
      this.#remember(pid, { startNs: st.startTicks * TICK_NS, ppid: st.ppid, comm: st.comm, creds: undefined, cgroupId: undefined });
      // A leader that exited before we started while its threads run on: the process ends with its last thread.
      if (statState(text) === 'Z' && st.numThreads > 1) {
        const live = this.#liveTasks(pid, Infinity);
        if (live?.length) this.#defer(this.#exitEvent(pid, pid, NaN, 0, st.ppid, false, ['ktimeNs', 'status', 'exitCode', 'signal']), live);
      }
    }
  }

  #fork(m: Extract<ProcConnectorMessage, { what: 'fork' }>, st: ProcStat | undefined): void {
    const ktimeNs = this.#ktime(m);
    const parent = this.#lookup(m.parentTgid, ktimeNs);
    const unknown: string[] = [];
    if (m.childPid !== m.childTgid) {
      // A thread. The connector names the process's parent as "parent" (CLONE_THREAD shares it); the
      // creating thread is some thread of the child's own process. No /proc reads: threads are cheap to make.
      this.#s.threadEvents++;
      const proc = this.#known.get(m.childTgid);
      const ev: ForkEvent = {
        type: 'fork', ktimeNs, pid: m.childTgid, tid: m.childTgid, parentStartNs: proc?.startNs ?? NaN,
        childPid: m.childPid, childTgid: m.childTgid, childStartNs: NaN, childPpid: m.parentTgid, thread: true,
        cgroupId: proc?.cgroupId ?? 0, comm: proc?.comm ?? '',
        unknown: ['tid', 'childStartNs', 'cgroupId', ...(proc ? [] : ['parentStartNs', 'comm'])],
      };
      return this.#emit(ev);
    }
    // The child's start time from /proc, provided that is still the child (started no later than its fork).
    const childStartNs = st && st.startTicks * TICK_NS <= ktimeNs + this.#slackNs ? st.startTicks * TICK_NS : NaN;
    if (Number.isNaN(childStartNs)) unknown.push('childStartNs');
    if (!parent) unknown.push('parentStartNs');
    // A child is created in its parent's cgroup; /proc tells where it is now, which is the best we have.
    let cgroupId = Number.isNaN(childStartNs) ? undefined : cgroupIdOf(readText(`${this.#procRoot}/${m.childTgid}/cgroup`) ?? '');
    cgroupId ??= parent?.cgroupId;
    if (cgroupId === undefined) unknown.push('cgroupId');
    // The fork-time comm is the parent's (the child may have exec'd by now).
    const comm = parent ? parent.comm || undefined : st && !Number.isNaN(childStartNs) ? st.comm : undefined;
    if (comm === undefined) unknown.push('comm');
    unknown.push('tid'); // the forking thread: the connector names the parent process's thread, not the caller
    this.#remember(m.childTgid, { startNs: childStartNs, ppid: m.parentTgid, comm: comm ?? '', creds: parent?.creds, cgroupId });
    this.#emit({
      type: 'fork', ktimeNs, pid: m.parentTgid, tid: m.parentPid, parentStartNs: parent?.startNs ?? NaN,
      childPid: m.childPid, childTgid: m.childTgid, childStartNs, childPpid: m.parentTgid, thread: false,
      cgroupId: cgroupId ?? 0, comm: comm ?? '', unknown,
    });
  }

  #exec(m: Extract<ProcConnectorMessage, { what: 'exec' }>, snap: SnapshotProcess | undefined, stale: boolean): void {
    const ktimeNs = this.#ktime(m);
    const tgid = m.tgid;
    // An exec ends any wait for the old leader's threads: a non-leader thread exec'd and took over the pid.
    this.#pending.delete(tgid);
    let k = this.#known.get(tgid);
    // /proc must show a process that existed at the exec; a later start means the pid was already reused.
    const valid = snap && snap.startNs <= ktimeNs + this.#slackNs ? snap : undefined;
    if (!valid) this.#s.procReadFailures++;
    const unknown = new Set<string>(['filename', 'oldPid', 'subreaper']);
    const startNs = valid ? valid.startNs : (k?.startNs ?? NaN);
    if (Number.isNaN(startNs)) unknown.add('startNs');
    const ppid = valid ? valid.ppid : (k?.ppid ?? 0);
    if (!valid && !k) unknown.add('ppid');
    const parent = ppid > 0 ? this.#lookup(ppid, ktimeNs) : undefined;
    if (!parent) unknown.add('parentStartNs');
    // An empty cmdline is never a finished exec's (since 5.18 the kernel gives an empty argv one empty
    // string): it is a zombie, or a process caught inside a later execve, between switching to the new
    // image and setting up its arguments. Either way the image read is not this exec's.
    const torn = valid !== undefined && !valid.kernelThread && valid.argv !== undefined && valid.argv.length === 0;
    if (stale || torn) {
      // /proc shows (part of) a later exec of this process: nothing of the image may be taken from it.
      this.#s.staleExecs++;
      for (const f of ['argv', 'env', 'exe', 'comm', 'creds', 'tty']) unknown.add(f);
    }
    const img = valid && !stale && !torn ? valid : undefined;
    for (const f of valid?.unknown ?? ['argv', 'env', 'exe', 'creds', 'ns']) unknown.add(f);
    if (!valid) unknown.add('comm').add('tty').add('argv').add('env').add('exe');
    if (!this.#env) unknown.add('env');
    const argv = img?.argv;
    const envRaw = img?.envRaw;
    if (!argv) unknown.add('argv');
    if (!envRaw) unknown.add('env');
    const bytes = (a: string[] | undefined) => (a ?? []).reduce((n, s) => n + Buffer.byteLength(s) + 1, 0);
    const creds = img?.creds ?? k?.creds ?? UNKNOWN_CREDS;
    const ns = valid?.ns ?? UNKNOWN_NS;
    const comm = img?.comm ?? '';
    // The exec'ing task's cgroup: /proc's (0 there means it could not be resolved), else remembered, marked.
    const cgroupId = valid?.ns?.cgroupId || undefined;
    if (cgroupId === undefined) unknown.add('cgroupId');
    // Without the new image the comm is unknown ('' here): the old one is stale, and children forked from now
    // on must not inherit it as known.
    k = { startNs, ppid, comm: img ? comm : '', creds: img?.creds ?? k?.creds, cgroupId: cgroupId ?? k?.cgroupId };
    this.#remember(tgid, k);
    const ev: ExecEvent = {
      type: 'exec',
      ktimeNs,
      pid: tgid,
      tid: m.pid,
      cgroupId: cgroupId ?? k.cgroupId ?? 0,
      startNs,
      ppid,
      parentStartNs: parent?.startNs ?? NaN,
      oldPid: tgid,
      creds,
      ns,
      exe: { path: img?.exePath ?? '', ino: img?.exeIno ?? 0, dev: img?.exeDev ?? 0, mtimeNs: img?.exeMtimeNs ?? 0 },
      exeUpperLayer: img?.exeUpperLayer === true,
      filename: img?.exePath ?? '',
      argv: argv ?? [],
      argc: argv?.length ?? 0,
      envRaw: envRaw ?? [],
      comm,
      tty: img?.tty ?? '',
      flags: 0,
      argvTruncated: bytes(argv) >= this.#maxBytes,
      envTruncated: bytes(envRaw) >= this.#maxBytes,
      pathTruncated: false,
      subreaper: false,
      unknown: [...unknown],
    };
    this.#emit(ev);
  }

  #exitEvent(tgid: number, pid: number, ktimeNs: number, status: number, ppid: number, groupDead: boolean, extraUnknown: string[] = []): ExitEvent {
    const k = this.#lookup(tgid, Number.isNaN(ktimeNs) ? Infinity : ktimeNs);
    const unknown = ['cgroupId', ...extraUnknown];
    if (!k) unknown.push('startNs', 'comm');
    // The exit notice names the parent on kernels since 4.18; older ones leave 0.
    const parent = ppid || (k?.ppid ?? 0);
    if (!parent) unknown.push('ppid');
    const sig = status & 0x7f;
    return {
      type: 'exit', ktimeNs, pid: tgid, tid: pid, startNs: k?.startNs ?? NaN, ppid: parent, status,
      exitCode: sig === 0 ? (status >> 8) & 0xff : undefined, signal: sig !== 0 ? sig : undefined, coreDumped: (status & 0x80) !== 0,
      groupDead, thread: pid !== tgid, cgroupId: k?.cgroupId ?? 0, comm: k?.comm ?? '', unknown,
    };
  }

  /**
   * Exits. The notice's exit_code is the wait status (code << 8, or the signal in the low 7 bits, 0x80 for
   * a core dump); its exit_signal is the signal the parent gets (SIGCHLD), not what killed the process.
   * The connector does not say whether the whole process ended: a thread's exit never ends it, a leader's
   * does unless other threads still run (it called pthread_exit, or it is being replaced by a thread that
   * exec'd), which /proc tells; the process then ends with the exit of the last of them.
   */
  #exit(m: Extract<ProcConnectorMessage, { what: 'exit' }>, live: number[] | undefined, execLater: boolean): void {
    const ktimeNs = this.#ktime(m);
    const status = m.exitCode;
    if (m.pid !== m.tgid) {
      this.#s.threadEvents++;
      const p = this.#pending.get(m.tgid);
      if (p && p.waiting.delete(m.pid) && p.waiting.size === 0) {
        this.#pending.delete(m.tgid);
        this.#emit(this.#exitEvent(m.tgid, m.pid, ktimeNs, status, m.parentTgid || p.leader.ppid, true));
        this.#known.delete(m.tgid);
        return;
      }
      return this.#emit(this.#exitEvent(m.tgid, m.pid, ktimeNs, status, m.parentTgid, false));
    }
    this.#pending.delete(m.tgid);
    if (execLater) {
      // A thread exec'd and took over the pid (the exec notice follows): the process lives on in it, even if
      // /proc no longer shows it, because the new image already ran and ended before we looked.
      return this.#emit(this.#exitEvent(m.tgid, m.pid, ktimeNs, status, m.parentTgid, false));
    }
    if (live && live.length > 0) {
      const ev = this.#exitEvent(m.tgid, m.pid, ktimeNs, status, m.parentTgid, false);
      this.#defer(ev, live);
      return this.#emit(ev);
    }
    this.#emit(this.#exitEvent(m.tgid, m.pid, ktimeNs, status, m.parentTgid, true));
    this.#known.delete(m.tgid);
  }

  /**
   * Tasks of process `tgid` that have not exited yet, per /proc; undefined when the process is gone (or its
   * pid already belongs to a process that started after `ktimeNs`).
   */
  #liveTasks(tgid: number, ktimeNs: number): number[] | undefined {
    const dir = `${this.#procRoot}/${tgid}/task`;
    let live: number[] = [];
    // A task that vanishes between the listing and its stat is either a thread being released or the
    // exec'ing thread trading its tid for the leader's (de_thread): list again rather than call it dead.
    for (let attempt = 0; attempt < 3; attempt++) {
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch {
        return undefined;
      }
      live = [];
      let vanished = false;
      for (const n of names) {
        const text = readText(`${dir}/${n}/stat`);
        const st = text ? parseStat(text) : undefined;
        if (!text || !st) {
          vanished = true;
          continue;
        }
        if (st.pid === tgid && st.startTicks * TICK_NS > ktimeNs + this.#slackNs) return undefined;
        const state = statState(text);
        if (state !== 'Z' && state !== 'X' && state !== 'x') live.push(st.pid);
      }
      if (!vanished || live.length > 0) break;
    }
    return live;
  }

  #defer(leader: ExitEvent, waiting: number[]): void {
    this.#s.deferredExits++;
    this.#pending.set(leader.pid, { leader, waiting: new Set(waiting), nextCheckMs: Date.now() + PENDING_CHECK_MS, intervalMs: PENDING_CHECK_MS });
    if (this.#timer) clearTimeout(this.#timer); // the new check may be due before the armed one
    this.#timer = undefined;
    this.#armPendingTimer();
  }

  #armPendingTimer(): void {
    if (this.#timer || this.#pending.size === 0 || this.#state !== 'running') return;
    let next = Infinity;
    for (const p of this.#pending.values()) next = Math.min(next, p.nextCheckMs);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#checkPending();
    }, Math.max(1, next - Date.now()));
    this.#timer.unref();
  }

  /**
   * Safety net for deferred exits whose last thread's notice never came (lost in an overflow): when /proc
   * shows no live thread any more, the exit is emitted with its time and status marked unknown.
   */
  #checkPending(): void {
    const now = Date.now();
    this.#readOffset();
    for (const [tgid, p] of [...this.#pending]) {
      if (p.nextCheckMs > now) continue;
      const live = this.#liveTasks(tgid, Number.isNaN(p.leader.ktimeNs) ? Infinity : p.leader.ktimeNs);
      if (live && live.length > 0) {
        p.waiting = new Set(live);
        p.intervalMs = Math.min(p.intervalMs * 2, PENDING_CHECK_MAX_MS);
        p.nextCheckMs = now + p.intervalMs;
        continue;
      }
      this.#pending.delete(tgid);
      this.#s.inferredExits++;
      const ev: ExitEvent = { ...p.leader, ktimeNs: clockNs(CLOCK_MONOTONIC) + this.#offsetNs, groupDead: true, unknown: [...new Set([...(p.leader.unknown ?? []), 'ktimeNs', 'status', 'exitCode', 'signal'])] };
      try {
        this.#emit(ev);
      } catch {
        this.#s.handlerErrors++;
      }
      this.#known.delete(tgid);
    }
    this.#armPendingTimer();
  }

  /**
   * setuid/setgid families: the connector gives the real and effective ids after the change. The other ids
   * and capabilities come from the thread's /proc status (which may already reflect a later change), else
   * from what the source last knew, else they are unknown.
   */
  #creds(m: Extract<ProcConnectorMessage, { what: 'uid' | 'gid' }>): void {
    const ktimeNs = this.#ktime(m);
    const k = this.#lookup(m.tgid, ktimeNs);
    const unknown = ['syscallNr'];
    if (!k) unknown.push('startNs');
    const statusText = readText(m.pid === m.tgid ? `${this.#procRoot}/${m.tgid}/status` : `${this.#procRoot}/${m.tgid}/task/${m.pid}/status`);
    const fromProc = statusText ? parseStatus(statusText).creds : undefined;
    let base: Creds;
    if (fromProc) {
      const login = readText(`${this.#procRoot}/${m.tgid}/loginuid`);
      const lu = login === undefined ? k?.creds?.loginuid : Number(login.trim());
      base = { ...fromProc, loginuid: lu === undefined || lu === 4294967295 || Number.isNaN(lu) ? undefined : lu };
    } else {
      this.#s.procReadFailures++;
      base = k?.creds ?? UNKNOWN_CREDS;
      const given = m.what === 'uid' ? ['uid', 'euid'] : ['gid', 'egid'];
      for (const f of ['uid', 'euid', ...CRED_FIELDS]) if (!given.includes(f)) unknown.push(`creds.${f}`);
    }
    const creds: Creds = m.what === 'uid' ? { ...base, uid: m.real, euid: m.effective } : { ...base, gid: m.real, egid: m.effective };
    const oldCreds = k?.creds;
    if (!oldCreds) unknown.push('oldCreds');
    if (k) k.creds = creds;
    const ev: CredsEvent = { type: 'creds', ktimeNs, pid: m.tgid, tid: m.pid, cgroupId: this.#cgroupOf(m.tgid, k, unknown), startNs: k?.startNs ?? NaN, syscallNr: 0, oldCreds, creds, unknown };
    this.#emit(ev);
  }

  /** A process's cgroup id now, from /proc (these notices are rare enough); else remembered and marked unknown. */
  #cgroupOf(tgid: number, k: Known | undefined, unknown: string[]): number {
    const id = cgroupIdOf(readText(`${this.#procRoot}/${tgid}/cgroup`) ?? '');
    if (id !== undefined) {
      if (k) k.cgroupId = id;
      return id;
    }
    unknown.push('cgroupId');
    return k?.cgroupId ?? 0;
  }

  #comm(m: Extract<ProcConnectorMessage, { what: 'comm' }>): void {
    if (m.pid !== m.tgid) {
      this.#s.ignored++; // a thread's name is not the process's (as in the BPF sensor)
      return;
    }
    const ktimeNs = this.#ktime(m);
    const k = this.#lookup(m.tgid, ktimeNs);
    const unknown: string[] = [];
    if (!k) unknown.push('startNs', 'oldComm');
    const ev: CommEvent = { type: 'comm', ktimeNs, pid: m.tgid, tid: m.pid, cgroupId: this.#cgroupOf(m.tgid, k, unknown), startNs: k?.startNs ?? NaN, oldComm: k?.comm ?? '', comm: m.comm, unknown };
    if (k) k.comm = m.comm;
    this.#emit(ev);
  }
}

/** The resolver's `fallback` option: `new ProcessResolver({ fallback: procConnectorFallback() })`. */
export function procConnectorFallback(o?: ProcConnectorOptions): () => FallbackSource {
  return () => new ProcConnectorSource(o);
}
