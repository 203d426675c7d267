// Turns a decoded event into the OutputEvent users see: the process (from the process cache), its parent and
// ancestry, its container and pod (from the container resolver); and into its JSON line. Per-process parts
// are built once per exec image and reused for every event of that image, objects, JSON and its UTF-8
// alike: the hot path does lookups and copies, not rebuilding or re-serialising (json.ts, json-bytes.ts).
// A run of events from one process costs one lookup: the enricher keeps the process it found last while
// the process cache's generation says nothing changed.
import { bootToEpochMs } from './clock.ts';
import type { ContainerInfo } from '../containers/resolver.ts';
import type { ProcessCache } from '../process/cache.ts';
import type { ProcessEntry } from '../process/types.ts';
import { fieldsJson, numberJson, stringJson, TimeParts } from './json.ts';
import { ascii, ByteLine, fixedMembersBytes, LineHead, TimeBytes, timeBytesWrites, type MembersBytesFn } from './json-bytes.ts';
import type { HeldRecord } from './held.ts';
import type { FragSlot, LineBatch } from './native-lines.ts';
import { newLineMeta, type ContainerRef, type LineMeta, type OutputEvent, type PodRef, type ProcessRef } from './types.ts';

export interface EnrichContext {
  cache: ProcessCache;
  container: (cgroupId: number) => ContainerInfo | undefined;
  /**
   * Changes whenever `container` may answer differently for some id (ContainerResolver.generation): while it
   * does not, the enricher keeps its last answer for a run of events from one cgroup. Without it, every event
   * asks `container`.
   */
  containerGeneration?: () => number;
  userName: (e: ProcessEntry) => string | undefined;
  /**
   * Whether the host has, at an executable's path, that very file (device, inode): its processes are marked
   * `hostExe`, a host binary, not a container's file of the same path (HostFiles). Undefined: none is.
   */
  hostFile?: (exePath: string, dev: number, ino: number) => boolean;
  /** Ancestors reported per event. */
  maxAncestors?: number;
}

/**
 * The process, parent and ancestry parts of the events of one exec image. The objects are shared by every
 * event of the image and must not be mutated: their JSON is cached with them.
 */
interface Memo {
  execId: string;
  parentKey: string | undefined;
  credsSeq: number;
  unknownLen: number;
  ref: ProcessRef;
  ancestors: number[];
  /**
   * JSON of `ref` (refOf), kept once a string line or a thread's part needed it. A memo written only as
   * bytes does not keep it (bench/pipeline's replay kept 46 B per record before, 42 B since).
   */
  refJson: string | undefined;
  /** The parent part: the parent's asParent, shared by its children (its JSON and bytes made once for all). */
  parentPart: ParentPart | undefined;
  /**
   * ',"process":<ref>' followed by `tailJson` (jsonOf), and ',"parent":…,"ancestors":…' as far as present
   * (tailOf): made when a line is first built as a string. Lines written as bytes never need them, and each
   * was a concatenation that encoding flattened into a copy of its own (bench/pipeline's replay kept 56 B
   * per record before, 46 B since).
   */
  json: string | undefined;
  tailJson: string | undefined;
  /** `ref` plus a thread id, per thread seen (bounded): built once, not per event. */
  threads: Map<number, ProcessRef> | undefined;
  /** jsonOf(m) as UTF-8, made by the first line written as bytes, from the parts (memoBytes). */
  bytes: Uint8Array | undefined;
  /** The pooled array `bytes` views (memoBytes), given back when the memo goes (dropBytes). */
  byteStore: Uint8Array | undefined;
  /** The same with a thread id, per thread seen (bounded, as `threads`). */
  threadParts: Map<number, ThreadPart> | undefined;
  /** This process as its children's "parent" part (asParent). */
  asParent: ParentPart | undefined;
  /** The parent entry the parent part was made from, and its image and comm then. */
  parentEntry: ProcessEntry | undefined;
  parentExecId: string | undefined;
  parentComm: string | undefined;
  /** Where `bytes` are in a line batch's fragments (native-lines.ts FragSlot). */
  fragGen: number;
  fragOff: number;
}

/** A thread's process part as bytes, and where they are in a line batch's fragments (FragSlot). */
interface ThreadPart extends FragSlot {
  readonly bytes: Uint8Array;
}

/** Threads per process whose refs are kept (a process with more gets a fresh ref per event beyond these). */
const MAX_THREAD_REFS = 64;

/** What an event says of its process `e`: the memo's ref, whose JSON is a line's process part. */
function processRef(ctx: EnrichContext, e: ProcessEntry): ProcessRef {
  const img = e.image;
  const r: ProcessRef = { pid: e.pid, ppid: e.ppid, key: e.key, execId: img.execId, startNs: e.startNs, comm: img.comm };
  if (img.exePath !== undefined) {
    r.exe = img.exePath;
    if (ctx.hostFile && img.exeDev !== undefined && img.exeIno !== undefined && ctx.hostFile(img.exePath, img.exeDev, img.exeIno)) r.hostExe = true;
    if (img.exeUpperLayer) r.exeUpperLayer = true;
  }
  if (img.argv) r.argv = img.argv;
  if (img.argvTruncated) r.argvTruncated = true;
  if (e.creds) {
    r.uid = e.creds.uid;
    r.gid = e.creds.gid;
    if (e.creds.euid !== e.creds.uid) r.euid = e.creds.euid;
    if (e.creds.loginuid !== undefined) r.loginuid = e.creds.loginuid;
  }
  const user = ctx.userName(e);
  if (user) r.user = user;
  if (e.tty) r.tty = e.tty;
  if (e.unknown.length) r.unknown = e.unknown;
  return r;
}

/**
 * Whether `m` still describes `e`: the same exec image, parent, creds, comm and unknown fields, and the parent
 * part still the parent's image and comm (a parent that exec'd since is reported as what it runs now).
 */
function current(m: Memo, e: ProcessEntry): boolean {
  const p = m.parentEntry;
  return (
    m.execId === e.image.execId &&
    m.parentKey === e.parentKey &&
    m.credsSeq === e.credHistory.length &&
    m.ref.comm === e.image.comm &&
    m.unknownLen === e.unknown.length &&
    (p === undefined || (p.image.execId === m.parentExecId && p.image.comm === m.parentComm))
  );
}

/** The members of an event's `parent` (parentRef; the rules' field checks). */
export const PARENT_REF_KEYS = ['pid', 'comm', 'exe', 'argv', 'execId'] as const satisfies readonly (keyof ProcessRef)[];
/** What an event says of its process's parent `p`: exactly PARENT_REF_KEYS (the compiler checks both ways). */
const parentRef = (p: ProcessEntry): ProcessRef =>
  ({ pid: p.pid, comm: p.image.comm, exe: p.image.exePath, argv: p.image.argv, execId: p.image.execId }) satisfies Record<(typeof PARENT_REF_KEYS)[number], unknown>;

/** A process as its children's "parent" part: its JSON and the UTF-8 of that made as lines first need them. */
interface ParentPart {
  ref: ProcessRef;
  json: string | undefined;
  bytes: Uint8Array | undefined;
}

/** `p` as a parent part, its JSON and bytes not made yet. */
const newParentPart = (p: ProcessEntry): ParentPart => ({ ref: parentRef(p), json: undefined, bytes: undefined });

/** The "parent" part of the children of the process `m` describes: made once per memo, not per child. */
function asParent(m: Memo, p: ProcessEntry): ParentPart {
  return (m.asParent ??= newParentPart(p));
}

/**
 * The process, parent and ancestry parts of an event, memoized per (exec image, parent, creds). A process's
 * parent and ancestry are its creation parent's, one level up: taken from the parent's memo when it has a
 * current one (the usual case: a parent's events come before its children's), not walked and serialised
 * again for every child.
 */
export function processParts(ctx: EnrichContext, e: ProcessEntry): Memo {
  const m = e.output as Memo | undefined; // kept on the entry: a WeakMap of every cached process cost its lookups and GC work
  if (m) {
    if (current(m, e)) return m;
    dropBytes(m);
  }
  const max = ctx.maxAncestors ?? 16;
  const pk = e.originalParentKey ?? e.parentKey;
  let p = max > 0 && pk && pk !== e.key ? ctx.cache.get(pk) : undefined;
  const pm = p?.output as Memo | undefined;
  let parentPart: ParentPart | undefined;
  let ancestors: number[];
  if (p && pm && current(pm, p)) {
    parentPart = asParent(pm, p);
    ancestors = [p.pid];
    for (let i = 0; i < pm.ancestors.length && ancestors.length < max; i++) ancestors.push(pm.ancestors[i]!);
  } else {
    const anc = ctx.cache.ancestors(e.key, { max });
    p = anc[0];
    if (p) parentPart = newParentPart(p);
    ancestors = anc.map((x) => x.pid);
  }
  const ref = processRef(ctx, e);
  const fresh: Memo = {
    execId: e.image.execId,
    parentKey: e.parentKey,
    credsSeq: e.credHistory.length,
    unknownLen: e.unknown.length,
    ref,
    ancestors,
    refJson: undefined,
    parentPart,
    json: undefined,
    tailJson: undefined,
    threads: undefined,
    bytes: undefined,
    byteStore: undefined,
    threadParts: undefined,
    asParent: undefined,
    parentEntry: p,
    parentExecId: p?.image.execId,
    parentComm: p?.image.comm,
    fragGen: 0,
    fragOff: 0,
  };
  e.output = fresh;
  return fresh;
}

/**
 * Lets an exited process's memo go once its exit event is out, its bytes back to the pool. The cache keeps
 * an exited process for its grace period (30 s) for lineage and late events, and its memo (the ref, the
 * ancestry, the line's bytes, ~1 KB) with it, so under process churn memos were most of what the old
 * generation grew by and what its marking cost: dropped at exit, the replay's heap ends 30 % smaller and its
 * CPU per event is 8–11 % lower (bench/pipeline, paired runs; the line stage 12 %). What still needs them
 * keeps its own: a child's memo holds the parent part it took (asParent); an event after the exit, rare,
 * builds the memo again, as does a child whose first event comes after its parent's exit (from the cache's
 * lineage, the slower way).
 */
export function releaseParts(e: ProcessEntry | undefined): void {
  if (!e?.exit) return;
  if (e.output) dropBytes(e.output as Memo);
  e.output = undefined;
}

/**
 * Gives a memo's bytes back to the pool. A line copies them as it is written, so nothing else holds them;
 * the memo itself may still be held (the enricher's last parts), and makes them again if asked.
 */
function dropBytes(m: Memo): void {
  if (m.byteStore) memoStores.put(m.byteStore);
  m.bytes = m.byteStore = undefined;
}

/** JSON of `m.ref`. */
function refOf(m: Memo): string {
  return (m.refJson ??= JSON.stringify(m.ref));
}

const PROCESS_KEY = ',"process":';
const PARENT_KEY = ',"parent":';

/** ',"parent":…,"ancestors":…' of `m`, as far as present. */
function tailOf(m: Memo): string {
  if (m.tailJson === undefined) {
    const pp = m.parentPart;
    const ancestors = m.ancestors.length ? `,"ancestors":[${m.ancestors.join(',')}]` : '';
    // Concatenated, not joined: a join would copy the parent's JSON, which siblings share, into every child.
    m.tailJson = pp ? PARENT_KEY + (pp.json ??= JSON.stringify(pp.ref)) + ancestors : ancestors;
  }
  return m.tailJson;
}

/** ',"process":…' and the parent and ancestry parts of `m`: what a line of its process holds. */
function jsonOf(m: Memo): string {
  return (m.json ??= `${PROCESS_KEY}${refOf(m)}${tailOf(m)}`);
}

const utf8 = new TextEncoder();

/**
 * ProcessRef's members in the order processRef sets them, which is the order JSON.stringify writes them in:
 * refBytes writes the same bytes with it (the Enricher tests compare every line with JSON.stringify).
 */
const PROCESS_REF_ORDER = [
  'pid', 'ppid', 'key', 'execId', 'startNs', 'comm', 'exe', 'hostExe', 'exeUpperLayer', 'argv', 'argvTruncated', 'uid', 'gid', 'euid', 'loginuid', 'user', 'tty', 'unknown',
] as const satisfies readonly (keyof ProcessRef)[];
const refMembers = fixedMembersBytes(PROCESS_REF_ORDER, { skip: [] });
const parentMembers = fixedMembersBytes(PARENT_REF_KEYS, { skip: [] });

/** `ref` as JSON.stringify writes it, given `members` writing its members in its own key order. */
function refBytes(w: ByteLine, ref: ProcessRef, members: MembersBytesFn): void {
  const at = w.pos;
  members(ref as unknown as Record<string, unknown>, w); // ',"pid":…': pid always comes first
  w.buf[at] = 0x7b;
  w.byte(0x7d);
}

/** Where memos' bytes are written before they are copied into an array of their size. */
const memoLine = new ByteLine(16 << 10);
const PROCESS_KEY_BYTES = ascii(PROCESS_KEY);
const PARENT_KEY_BYTES = ascii(PARENT_KEY);
const ANCESTORS_KEY_BYTES = ascii(',"ancestors":[');

/**
 * jsonOf(m) as UTF-8 in an array of its own, written straight from the ref, the parent part's bytes (made
 * once, shared by siblings) and the ancestry, without building or encoding any of their JSON strings: a
 * memo is made for every exec image and child, and stringifying then encoding its parts was ~2 µs of it
 * (bench/pipeline, the recording's process events replayed alone).
 */
function memoBytes(m: Memo): Uint8Array {
  const pp = m.parentPart;
  const pb = pp ? (pp.bytes ??= parentBytes(pp.ref)) : undefined; // before memoLine is this memo's
  const w = memoLine;
  w.reset();
  w.raw(PROCESS_KEY_BYTES);
  refBytes(w, m.ref, refMembers);
  if (pb) {
    w.raw(PARENT_KEY_BYTES);
    w.raw(pb);
  }
  const anc = m.ancestors;
  if (anc.length) {
    w.raw(ANCESTORS_KEY_BYTES);
    for (let i = 0; i < anc.length; i++) {
      if (i > 0) w.byte(0x2c);
      w.number(anc[i]!);
    }
    w.byte(0x5d);
  }
  const n = w.pos;
  const store = memoStores.take(n);
  store.set(n === w.buf.length ? w.buf : w.buf.subarray(0, n));
  m.byteStore = store;
  return store.length === n ? store : store.subarray(0, n);
}

/** A parent part's bytes, in an array of their own (kept by the part, for every child). */
function parentBytes(ref: ProcessRef): Uint8Array {
  const w = memoLine;
  w.reset();
  refBytes(w, ref, parentMembers);
  const b = new Uint8Array(w.pos); // a copy: Buffer#slice would be a view of memoLine
  b.set(w.buf.subarray(0, w.pos));
  return b;
}

/**
 * Arrays for memos' bytes, by size class, given back when a memo goes (an exited process's, or one its
 * process outgrew). A new typed array of a memo's size is a backing store of its own, allocated, zeroed and
 * tracked for the garbage collector: ~0.5 µs, a memo per 32 records in bench/pipeline's replay. A class is
 * a multiple of 256 bytes, below 8 KiB; larger arrays are not kept, and the pool keeps at most 1 MiB.
 */
class StorePool {
  static readonly STEP = 256;
  static readonly CLASSES = 32;
  static readonly KEEP_BYTES = 1 << 20;
  readonly #free: Uint8Array[][] = Array.from({ length: StorePool.CLASSES }, () => []);
  #kept = 0;

  /** An array of at least `n` bytes (its contents are garbage). */
  take(n: number): Uint8Array {
    const c = Math.ceil(n / StorePool.STEP);
    const kept = c < StorePool.CLASSES ? this.#free[c]!.pop() : undefined;
    if (!kept) return new Uint8Array(Math.max(c, 1) * StorePool.STEP);
    this.#kept -= kept.length;
    return kept;
  }

  put(store: Uint8Array): void {
    const c = store.length / StorePool.STEP;
    if (c < StorePool.CLASSES && Number.isInteger(c) && this.#kept + store.length <= StorePool.KEEP_BYTES) {
      this.#free[c]!.push(store);
      this.#kept += store.length;
    }
  }
}
const memoStores = new StorePool();
/**
 * `s` as UTF-8 in a buffer of its own: Buffer.from would cut small strings out of a shared 8 KiB slab, which
 * a long-lived memo would then keep whole.
 */
const ownBytes = (s: string): Uint8Array => utf8.encode(s);

/** ',"process":…' of a thread other than the main one (the ref with "tid" last), then the parent's and ancestry's. */
function threadJson(m: Memo, tid: number): string {
  return `${PROCESS_KEY}${refOf(m).slice(0, -1)},"tid":${numberJson(tid)}}${tailOf(m)}`;
}

function threadPart(m: Memo, tid: number): ThreadPart {
  let t = m.threadParts?.get(tid);
  if (t) return t;
  t = { bytes: ownBytes(threadJson(m, tid)), fragGen: 0, fragOff: 0 };
  m.threadParts ??= new Map();
  if (m.threadParts.size < MAX_THREAD_REFS) m.threadParts.set(tid, t);
  return t;
}

const unknownProcessJson = (pid: number): string => `,"process":{"pid":${numberJson(pid)},"unknown":["process"]}`;

function threadRef(m: Memo, tid: number): ProcessRef {
  let r = m.threads?.get(tid);
  if (r) return r;
  r = { ...m.ref, tid };
  m.threads ??= new Map();
  if (m.threads.size < MAX_THREAD_REFS) m.threads.set(tid, r);
  return r;
}

export interface ContainerMemo {
  /** The container these parts are of, in enrichment state `state`. */
  info: ContainerInfo;
  state: string;
  ref: ContainerRef;
  pod: PodRef | undefined;
  /** ',"container":…' and ',"pod":…' when there is one. */
  json: string;
  /** `json` as UTF-8, made by the first line written as bytes. */
  bytes?: Uint8Array;
  /** Where `bytes` are in a line batch's fragments (native-lines.ts FragSlot). */
  fragGen: number;
  fragOff: number;
}

const containerMemo = new WeakMap<ContainerInfo, ContainerMemo>();

/** Whether `m` are the parts of container `c` as it is now (its enrichment may have finished since). */
const partsOf = (m: ContainerMemo | undefined, c: ContainerInfo): m is ContainerMemo => m !== undefined && m.info === c && m.state === c.enrichment;

export function containerParts(c: ContainerInfo): ContainerMemo {
  const m = containerMemo.get(c);
  if (partsOf(m, c)) return m;
  const ref: ContainerRef = { id: c.id, enrichment: c.enrichment };
  if (c.name) ref.name = c.name;
  if (c.image) ref.image = c.image;
  if (c.imageDigest) ref.imageDigest = c.imageDigest;
  if (c.runtime) ref.runtime = c.runtime;
  if (Object.keys(c.labels).length) ref.labels = c.labels;
  let pod: PodRef | undefined;
  if (c.pod?.uid) {
    pod = { uid: c.pod.uid };
    if (c.pod.name) pod.name = c.pod.name;
    if (c.pod.namespace) pod.namespace = c.pod.namespace;
    if (c.pod.labels) pod.labels = c.pod.labels;
  }
  const json = `,"container":${JSON.stringify(ref)}${pod ? `,"pod":${JSON.stringify(pod)}` : ''}`;
  const fresh: ContainerMemo = { info: c, state: c.enrichment, ref, pod, json, bytes: undefined, fragGen: 0, fragOff: 0 };
  containerMemo.set(c, fresh);
  return fresh;
}

const typeJsonCache = new Map<string, string>();
function typeJson(type: string): string {
  let s = typeJsonCache.get(type);
  if (s === undefined) {
    s = stringJson(type);
    if (typeJsonCache.size < 1024) typeJsonCache.set(type, s);
  }
  return s;
}

/** The head of every line of a type (json-bytes.ts), per type. */
const lineHeads = new Map<string, LineHead>();
/** The last type's head again without the Map: events come in runs of one type. */
let lastHead = new LineHead('""');
let lastHeadType = '';
function lineHead(type: string): LineHead {
  if (type === lastHeadType) return lastHead;
  let h = lineHeads.get(type);
  if (h === undefined) {
    h = new LineHead(typeJson(type));
    if (lineHeads.size < 1024) lineHeads.set(type, h);
  }
  lastHeadType = type;
  lastHead = h;
  return h;
}

/**
 * Builds output events and their JSON lines, one at a time: build() leaves the line (exactly
 * JSON.stringify(event)) in `line` and, when asked for, the event object in `event`. The object is only
 * built for those who read it (subscribers, sinks that take events): copying the fields into it costs as
 * much as serialising them (bench/pipeline).
 */
export class Enricher {
  readonly ctx: EnrichContext;
  line = '';
  event: OutputEvent | undefined;
  /** What the last line is about (LineMeta), for sinks that index lines: filled with every line, reused. */
  readonly meta: LineMeta = newLineMeta();

  constructor(ctx: EnrichContext) {
    this.ctx = ctx;
  }

  /**
   * The line alone, from the fields already serialised as JSON members (',"k":v…', see OutputShaper.json).
   * `event` is left undefined.
   */
  buildLine(type: string, ktimeNs: number, pid: number, tid: number, cgroupId: number, members: string): void {
    this.#line(type, ktimeNs, pid, tid, cgroupId, members);
    this.event = undefined;
  }

  #container: ContainerMemo | undefined;
  readonly #t = new TimeParts();
  readonly #tb = new TimeBytes();
  /** The pieces of a line, joined once: no intermediate strings (see #line). */
  readonly #p: string[] = ['{"type":', '', ',"time":"', '', '', 'Z","ktimeNs":', '', '', '', '', '', '', '', '}'];

  /** Sets `line`; returns the process parts found (undefined: a process the cache does not know). */
  #line(type: string, ktimeNs: number, pid: number, tid: number, cgroupId: number, members: string): Memo | undefined {
    const parts = this.#parts(type, ktimeNs, pid, tid, cgroupId);
    const P = this.#p;
    P[12] = members;
    // One join builds the line as one flat string: sinks encode that 3× faster than a tree of
    // concatenations, and nothing in between is allocated (bench/pipeline).
    this.line = P.join('');
    return parts;
  }

  /** Fills the pieces of a line but its own members (#p[12]); returns the process parts found. */
  #parts(type: string, ktimeNs: number, pid: number, tid: number, cgroupId: number): Memo | undefined {
    const wallMs = bootToEpochMs(ktimeNs);
    this.#time(type, wallMs, ktimeNs);
    const parts = this.#who(ktimeNs, pid, cgroupId);
    this.#fillMeta(type, wallMs, ktimeNs, pid, parts);
    const P = this.#p;
    P[10] = !parts ? unknownProcessJson(pid) : tid && tid !== pid ? threadJson(parts, tid) : jsonOf(parts);
    P[11] = this.#container ? this.#container.json : '';
    return parts;
  }

  /** The type and time pieces, #p[1] to #p[9]. */
  #time(type: string, wallMs: number, ktimeNs: number): void {
    const t = this.#t;
    t.set(wallMs, ktimeNs);
    const P = this.#p;
    P[1] = typeJson(type);
    P[3] = t.iso; // time: digits and "-:.T" only, nothing to escape
    P[4] = t.ms;
    P[6] = t.kHi;
    P[7] = t.k1;
    P[8] = t.k2;
    P[9] = t.k3;
  }

  /**
   * The process found last and its parts, and for which pid, cache generation and times they hold: most
   * events come in runs from one process, and at the same generation the cache would give the same answer.
   */
  #lastPid = -1;
  #lastGeneration = -1;
  readonly #lastSpan = { until: 0 };
  #lastEntry: ProcessEntry | undefined;
  #lastParts: Memo | undefined;
  /**
   * The cgroup id asked last, at which container generation, and the answer: events come in runs from one
   * cgroup, and a lookup per event (a call into the resolver and its Map) was ~2 % of the replay's CPU.
   */
  #lastCgroupId = -1;
  #lastCgroupGeneration = NaN;
  #lastInfo: ContainerInfo | undefined;

  /** `meta` for the line being written: what its type, time, process, container and pod members say. */
  #fillMeta(type: string, wallMs: number, ktimeNs: number, pid: number, parts: Memo | undefined): void {
    const m = this.meta;
    const ref = parts?.ref;
    const cp = this.#container;
    m.type = type;
    m.timeMs = Math.trunc(wallMs); // the ms the line's "time" gives (Date's own rounding)
    m.ktimeNs = ktimeNs;
    m.pid = ref ? ref.pid : pid;
    m.comm = ref?.comm;
    m.processKey = ref?.key;
    m.execId = ref?.execId;
    m.containerId = cp?.ref.id;
    m.containerName = cp?.ref.name;
    m.podName = cp?.pod?.name;
    m.podNamespace = cp?.pod?.namespace;
  }

  /** The process's parts (undefined: a process the cache does not know) and the container's (#container). */
  #who(ktimeNs: number, pid: number, cgroupId: number): Memo | undefined {
    const ctx = this.ctx;
    const cache = ctx.cache;
    let parts: Memo | undefined;
    if (pid === this.#lastPid && cache.generation === this.#lastGeneration && ktimeNs < this.#lastSpan.until && !(this.#lastEntry!.startNs > ktimeNs)) {
      parts = this.#lastParts!;
    } else {
      this.#lastPid = -1;
      let e = cache.at(pid, ktimeNs, this.#lastSpan);
      if (e) {
        parts = processParts(ctx, e);
        this.#lastPid = pid;
        this.#lastGeneration = cache.generation;
        this.#lastEntry = e;
        this.#lastParts = parts;
      } else {
        e = cache.byPid(pid);
        if (e) parts = processParts(ctx, e);
      }
    }
    const gen = ctx.containerGeneration ? ctx.containerGeneration() : NaN; // NaN: never equal, always asked
    if (cgroupId !== this.#lastCgroupId || gen !== this.#lastCgroupGeneration) {
      this.#lastCgroupId = cgroupId;
      this.#lastCgroupGeneration = gen;
      this.#lastInfo = ctx.container(cgroupId);
    }
    const c = this.#lastInfo;
    // The last event's container parts while they are still this container's (no lookup in containerParts' memo).
    if (!c) this.#container = undefined;
    else if (!partsOf(this.#container, c)) this.#container = containerParts(c);
    return parts;
  }

  /**
   * The line of build()/buildLine() as UTF-8 bytes, written into `w` after what it holds (no newline); the
   * event's own members are written by `members` from `ev` (OutputShaper.bytes). Neither `line` nor `event`
   * is set.
   */
  writeLine<E>(w: ByteLine, type: string, ktimeNs: number, pid: number, tid: number, cgroupId: number, members: (ev: E, w: ByteLine) => void, ev: E): void {
    const P = this.#p;
    const head = lineHead(type);
    const wallMs = bootToEpochMs(ktimeNs);
    if (!this.#tb.write(w, head, wallMs, ktimeNs)) {
      w.raw(head.type);
      this.#time(type, wallMs, ktimeNs); // out of TimeBytes' range: as the string line has it (or its RangeError)
      for (let i = 3; i < 10; i++) w.text(P[i]!);
    }
    const parts = this.#who(ktimeNs, pid, cgroupId);
    this.#fillMeta(type, wallMs, ktimeNs, pid, parts);
    if (!parts) w.text(unknownProcessJson(pid));
    else if (tid && tid !== pid) w.raw(threadPart(parts, tid).bytes);
    else w.raw((parts.bytes ??= memoBytes(parts)));
    const cp = this.#container;
    if (cp) w.raw((cp.bytes ??= ownBytes(cp.json)));
    members(ev, w);
    w.text('}');
  }

  /**
   * Adds a held record's line to `batch` (native-lines.ts), with the parts writeLine would write for it
   * now. 'js': the line is the JavaScript writer's (a time TimeBytes leaves to V8, a process the cache does
   * not know); 'full': the batch has no room for the parts (flush it, then add again).
   */
  batchLine(batch: LineBatch, rec: HeldRecord): 'added' | 'js' | 'full' {
    const ktimeNs = rec.ktimeNs;
    const wallMs = bootToEpochMs(ktimeNs);
    if (!timeBytesWrites(wallMs, ktimeNs)) return 'js';
    const pid = rec.pid;
    const tid = rec.tid;
    const parts = this.#who(ktimeNs, pid, rec.cgroupId);
    if (!parts) return 'js';
    const head = lineHead(rec.type);
    let procKey: FragSlot;
    let proc: Uint8Array;
    if (tid && tid !== pid) {
      const t = threadPart(parts, tid);
      procKey = t;
      proc = t.bytes;
    } else {
      procKey = parts; // a memo's bytes never change (a changed process gets a new memo)
      proc = parts.bytes ??= memoBytes(parts);
    }
    const cp = this.#container;
    return batch.file(rec, head, head.type, procKey, proc, cp, cp && (cp.bytes ??= ownBytes(cp.json))) ? 'added' : 'full';
  }

  /**
   * writeLine for a line native/lines.c left to this writer (LineBatch.flush), with the parts captured when
   * its entry was added: `proc` and `cont` (undefined: none), not what #who would find now.
   */
  writeLineWith<E>(w: ByteLine, type: string, ktimeNs: number, wallMs: number, proc: Uint8Array, cont: Uint8Array | undefined, members: (ev: E, w: ByteLine) => void, ev: E): void {
    this.#tb.write(w, lineHead(type), wallMs, ktimeNs); // batchLine checked the times are TimeBytes'
    w.raw(proc);
    if (cont) w.raw(cont);
    members(ev, w);
    w.text('}');
  }

  /**
   * `fields` are the event-specific fields (already shaped for output: no undefined values, none of the
   * common members' names, see OutputShaper), `pid`, `cgroupId` and `ktimeNs` locate the process and
   * container. Throws only what Date does for a non-finite time.
   */
  build(type: string, ktimeNs: number, pid: number, tid: number, cgroupId: number, fields: Record<string, unknown>, withEvent: boolean): void {
    const parts = this.#line(type, ktimeNs, pid, tid, cgroupId, fieldsJson(fields));
    this.event = withEvent ? Object.assign(this.#object(type, ktimeNs, pid, tid, parts), fields) : undefined;
  }

  /**
   * The event object alone, without its line, its fields put in by `shaper` from `ev`: for subscribers of an
   * event whose line went to the sinks as bytes (writeLine). Building the string line as well cost as much
   * again, with the garbage of a ~1 KB string per event (bench/pipeline, rules stage). Neither `line`,
   * `event` nor `meta` is set.
   */
  buildEvent<E>(type: string, ktimeNs: number, pid: number, tid: number, cgroupId: number, shaper: (ev: E, into: Record<string, unknown>) => unknown, ev: E): OutputEvent {
    this.#t.set(bootToEpochMs(ktimeNs), ktimeNs);
    const out = this.#object(type, ktimeNs, pid, tid, this.#who(ktimeNs, pid, cgroupId));
    shaper(ev, out as Record<string, unknown>);
    return out;
  }

  /** The event object but its own fields, of the parts #who found last and the time #t holds. */
  #object(type: string, ktimeNs: number, pid: number, tid: number, parts: Memo | undefined): OutputEvent {
    let process: ProcessRef;
    if (!parts) process = { pid, unknown: ['process'] };
    else if (tid && tid !== pid) process = threadRef(parts, tid);
    else process = parts.ref;
    const time = `${this.#t.iso}${this.#t.ms}Z`;
    const cp = this.#container;
    const out: OutputEvent = { type, time, ktimeNs, process };
    if (parts?.parentPart) out.parent = parts.parentPart.ref;
    if (parts?.ancestors.length) out.ancestors = parts.ancestors;
    if (cp) {
      out.container = cp.ref;
      if (cp.pod) out.pod = cp.pod;
    }
    return out;
  }
}

/** An enriched event and its JSON line (exactly JSON.stringify(out)), for callers outside the pipeline. */
export function enrichLine(ctx: EnrichContext, type: string, ktimeNs: number, pid: number, tid: number, cgroupId: number, fields: Record<string, unknown>): { out: OutputEvent; line: string } {
  const en = new Enricher(ctx);
  en.build(type, ktimeNs, pid, tid, cgroupId, fields, true);
  return { out: en.event!, line: en.line };
}

/** The output event alone (see Enricher). */
export function enrich(ctx: EnrichContext, type: string, ktimeNs: number, pid: number, tid: number, cgroupId: number, fields: Record<string, unknown>): OutputEvent {
  const en = new Enricher(ctx);
  en.build(type, ktimeNs, pid, tid, cgroupId, fields, true);
  return en.event!;
}
