// The process cache: every process vigil knows, keyed by (pid, start time), built from fork, exec and exit
// events and from the /proc snapshot, all through one apply() path (tetragon pkg/process).
//
// Events may arrive out of order or before their process is known: an exit, a credential change or a rename
// for an unknown process is held for a bounded time and retried when the process appears; whatever is still
// unknown then is resolved from the kernel map or /proc, and failing that applied to a partial entry and
// counted as broken lineage: never dropped silently. Exited processes stay resolvable for a grace period and
// for as long as a descendant still needs them for lineage, then are evicted; the cache has a hard bound.
import type { CommEvent, CredsEvent, ExecEvent, ExitEvent, ForkEvent, ProcessEvent } from '../events/types.ts';
import { CredsTable, EnvTable, StringTable, detached, sameCreds } from './intern.ts';
import { INIT_PIDNS, TICK_NS, type EnvVar, type ProcessEntry, type ProcessImage, type ProcessKey, type ProcessSource, type SnapshotProcess } from './types.ts';

/** Scrubs argv and env before anything stores them (src/process/scrub.ts implements it). */
export interface ImageScrubber {
  scrubArgv(argv: string[]): { argv: string[]; scrubbed: number };
  /** Scrubs each variable on its own: what it reports for one depends on that one alone. */
  scrubEnv(envRaw: string[]): { env: EnvVar[]; scrubbed: number };
  /** Whether scrubEnv reports the value of `name`, when it can say: every other variable by name alone. */
  envAllowed?(name: string): boolean;
}

/** Fallback sources for a pid the cache has not seen. */
export interface ProcessLookups {
  /** The kernel-side process map (vigil_procs). */
  kernel?(pid: number): SnapshotProcess | undefined;
  /** /proc/<pid>. */
  procfs?(pid: number): SnapshotProcess | undefined;
  /** The current parent pid of a live process, from /proc (after a reparent); undefined if gone. */
  ppid?(pid: number, startNs: number): number | undefined;
}

export interface ProcessCacheOptions {
  scrubber: ImageScrubber;
  lookups?: ProcessLookups;
  /** How long an event for an unknown process is held before falling back (ms). */
  holdMs?: number;
  /** How long an exited process stays resolvable (ms). */
  exitedGraceMs?: number;
  /** Hard bound on entries. */
  maxEntries?: number;
  /** Bound on events held at once; beyond it events fall back immediately. */
  maxHeld?: number;
  /** Earlier images kept per process. */
  maxImages?: number;
  /** Credential changes kept per process. */
  maxCredHistory?: number;
  /** Wall clock in ms (tests pass their own). */
  now?: () => number;
  /** Run sweeps on a timer (default). Tests disable it and call sweep(). */
  timers?: boolean;
}

export interface ProcessCacheStats {
  size: number;
  live: number;
  exited: number;
  applied: Record<string, number>;
  /** resolve(): answered from the cache, the kernel map, /proc, or not at all. */
  hits: { cache: number; kernel: number; procfs: number };
  misses: number;
  /** Processes whose parent could not be found anywhere. */
  brokenLineage: number;
  /** Events held for an unknown process right now, and in total, and how they ended. */
  held: number;
  heldTotal: number;
  heldResolved: number;
  heldFallback: number;
  reparented: number;
  /** Entries keyed without a start time that a later event of the same process gave one (eBPF-less mode). */
  startLearned: number;
  evictions: number;
  /** Evictions forced by maxEntries (possibly of processes still needed for lineage). */
  evictionsForced: number;
  threadEvents: number;
  scrubbedArgs: number;
  scrubbedEnv: number;
}

// What an entry does not know is listed by name (ProcessEntry.unknown, ProcessImage.unknown), so that the
// eBPF-less mode's tree differs from the BPF one only in marked fields, never in wrong values.
// exeUpperLayer: the executable is known but whether it is in its overlay's upper layer is not (read from
// /proc, upper-layer.ts); an unknown exe implies it, and is not marked twice.
const IMAGE_FIELDS = ['argv', 'env', 'exe', 'exeUpperLayer', 'filename', 'comm'];

/**
 * Every member of T, optional ones too, as a literal must name them: an image written out member by member
 * fails to compile when ProcessImage gains a member, instead of leaving it out silently.
 */
type EveryMember<T> = { [K in keyof Required<T>]: T[K] };

/**
 * The image a child inherits at fork: its parent's, under its own exec id and comm. Written out rather than
 * spread: a spread with overrides copies the parent's image property by property on V8's generic path, a
 * fork per process under churn (bench/pipeline, process events replayed alone). Same members, same order.
 */
function inheritedImage(p: ProcessImage, execId: string, comm: string): ProcessImage {
  const image: EveryMember<ProcessImage> = {
    execId,
    execNs: undefined,
    exePath: p.exePath,
    exeIno: p.exeIno,
    exeDev: p.exeDev,
    exeMtimeNs: p.exeMtimeNs,
    exeUpperLayer: p.exeUpperLayer,
    filename: p.filename,
    argv: p.argv,
    argc: p.argc,
    argvTruncated: p.argvTruncated,
    env: p.env,
    envTruncated: p.envTruncated,
    comm,
    inherited: true,
    unknown: p.unknown,
  };
  return image;
}

/** An image known only by its comm, if that (undefined: the comm is unknown too); every other field unknown. */
function unknownImage(execId: string, comm: string | undefined, inherited: boolean): ProcessImage {
  const image: EveryMember<ProcessImage> = {
    execId,
    execNs: undefined,
    exePath: undefined,
    exeIno: undefined,
    exeDev: undefined,
    exeMtimeNs: undefined,
    exeUpperLayer: false,
    filename: undefined,
    argv: undefined,
    argc: undefined,
    argvTruncated: false,
    env: undefined,
    envTruncated: false,
    comm: comm ?? '',
    inherited,
    unknown: comm !== undefined ? ['argv', 'env', 'exe', 'filename'] : ['argv', 'env', 'exe', 'filename', 'comm'],
  };
  return image;
}
const EXEC_SETTLES = new Set([...IMAGE_FIELDS, 'creds', 'ns', 'cgroupId', 'tty', 'subreaper', 'ppid', 'parentStartNs', 'oldPid']);
/** Marks an exec settles afresh (its image, creds, namespaces, tty, lineage): an exec clears the earlier ones. */
const settledByExec = (f: string) => EXEC_SETTLES.has(f) || f.startsWith('creds.') || f.startsWith('ns.');
/** Marks of one process itself, which a child does not inherit at fork. */
const ownMark = (f: string) => f === 'startNs' || f === 'ppid' || f === 'parentStartNs' || f === 'oldPid' || f.startsWith('exit.') || f.startsWith('credHistory.');
/** The image fields among a source's unknown fields; undefined when there are none. */
function imageUnknown(unk: ReadonlySet<string> | readonly string[]): string[] | undefined {
  if (('size' in unk ? unk.size : unk.length) === 0) return undefined; // nearly every exec: nothing to filter
  const has = (f: string) => ('has' in unk ? unk.has(f) : unk.includes(f));
  const u = IMAGE_FIELDS.filter(has);
  return u.length ? u : undefined;
}
/** Placeholders for credential fields a source could not know: never an older value that looks current. */
const UNKNOWN_CRED: Record<string, number | string | undefined> = { capEffective: '', capPermitted: '', capInheritable: '', loginuid: undefined };

/** An argument kept in the cache, as a copy that shares no memory with the raw argv block. */
const detachedArg = (a: string): string => detached(a);

/** The identity of a process: pid plus start time in clock ticks (the precision /proc gives). */
export function processKey(pid: number, startNs: number): ProcessKey {
  // One process's fork, exec and exit (and its children's lookups of it) ask for the same key in a row: a
  // small table by pid hands back the string made the first time, which also has its hash computed already
  // for the Map lookups that follow. Each miss would otherwise allocate ~80 bytes of string pieces.
  const slot = pid & (KEY_SLOTS - 1);
  if (keyPids[slot] === pid && keyStarts[slot] === startNs) return keyStrings[slot]!;
  const key = Number.isFinite(startNs) ? `${pid}:${Math.floor(startNs / TICK_NS)}` : `${pid}:?`;
  keyPids[slot] = pid;
  keyStarts[slot] = startNs;
  keyStrings[slot] = key;
  return key;
}
const KEY_SLOTS = 4096;
const keyPids = new Int32Array(KEY_SLOTS).fill(-1);
const keyStarts = new Float64Array(KEY_SLOTS);
const keyStrings: string[] = new Array<string>(KEY_SLOTS).fill('');

type Held = { ev: ExitEvent | CredsEvent | CommEvent; until: number };

/**
 * The children of a process that has none (most processes): one shared, empty set that refuses additions,
 * so that a leaf costs no Set of its own; the cache gives a process its own set with its first child.
 */
class NoChildren extends Set<ProcessKey> {
  override add(): this {
    throw new TypeError('the shared empty children set is read-only');
  }
}
const NO_CHILDREN: Set<ProcessKey> = new NoChildren();
/**
 * The image history and credential history of a process that has none yet (most): shared, frozen, replaced
 * by the process's own list on its first entry. Frozen, so that a push that bypasses that fails loudly.
 */
const NO_IMAGES = Object.freeze([]) as unknown as ProcessImage[];
const NO_CRED_CHANGES = Object.freeze([]) as unknown as ProcessEntry['credHistory'];
/** The unknown fields of an event that knows everything (every BPF event): one shared empty set. */
const NO_UNKNOWN: ReadonlySet<string> = new Set<string>();
type Awaiting = { child: ProcessKey; parentPid: number; parentStartNs: number; until: number };

export class ProcessCache {
  readonly #o: Required<Omit<ProcessCacheOptions, 'lookups'>> & { lookups: ProcessLookups };
  readonly #entries = new Map<ProcessKey, ProcessEntry>();
  /**
   * pid -> its instances, newest last: the entries themselves, not their keys, because under pid reuse a pid
   * keeps many exited instances for their grace, and byPid()/at() walk them on every miss of the newest.
   */
  readonly #byPid = new Map<number, ProcessEntry[]>();
  readonly #held = new Map<ProcessKey, Held[]>();
  /** Children whose parent is not known yet, by the parent's key. */
  readonly #awaiting = new Map<ProcessKey, Awaiting[]>();
  /** Exited entries in exit order, with the wall time of their exit. */
  readonly #exited: { key: ProcessKey; at: number }[] = [];
  #exitedHead = 0;
  /** Exited entries past their grace period still needed by a descendant. */
  readonly #graceOver = new Set<ProcessKey>();
  #heldCount = 0;
  /** Bumped by every change (see `generation`); also makes the keys of retired entries unique. */
  #generation = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  /** Shared copies of what processes have in common (src/process/intern.ts). */
  readonly #strings = new StringTable();
  #envs: EnvTable;
  readonly #creds = new CredsTable();
  readonly #stats: ProcessCacheStats = {
    size: 0,
    live: 0,
    exited: 0,
    applied: {},
    hits: { cache: 0, kernel: 0, procfs: 0 },
    misses: 0,
    brokenLineage: 0,
    held: 0,
    heldTotal: 0,
    heldResolved: 0,
    heldFallback: 0,
    reparented: 0,
    startLearned: 0,
    evictions: 0,
    evictionsForced: 0,
    threadEvents: 0,
    scrubbedArgs: 0,
    scrubbedEnv: 0,
  };

  constructor(o: ProcessCacheOptions) {
    this.#o = {
      holdMs: 2000,
      exitedGraceMs: 30_000,
      maxEntries: 131_072,
      maxHeld: 10_000,
      maxImages: 8,
      maxCredHistory: 16,
      now: () => performance.now(),
      timers: true,
      ...o,
      lookups: o.lookups ?? {},
    };
    this.#envs = this.#envTable(this.#o.scrubber);
  }

  #envTable(scrubber: ImageScrubber): EnvTable {
    const allowed = scrubber.envAllowed?.bind(scrubber);
    return new EnvTable((envRaw) => scrubber.scrubEnv(envRaw), this.#strings, { valueBlind: allowed && ((name) => !allowed(name)) });
  }

  /**
   * New scrub rules (a configuration reload): later execs are scrubbed by `scrubber`, and every image the
   * cache holds, earlier images included, is scrubbed again by it. What the old rules masked stays masked,
   * since the raw values were never kept: a stricter rule applies to everything, a looser one to later execs
   * only. Every entry's output memo is dropped, so that events show the images as they are now. Returns the
   * images checked and the arguments and variables the new rules changed.
   */
  setScrubber(scrubber: ImageScrubber): { images: number; scrubbedArgs: number; scrubbedEnv: number } {
    const envs = this.#envTable(scrubber);
    const out = { images: 0, scrubbedArgs: 0, scrubbedEnv: 0 };
    const seen = new Set<ProcessImage>();
    const again = (img: ProcessImage): void => {
      if (seen.has(img)) return;
      seen.add(img);
      out.images++;
      if (img.argv) {
        const before = img.argv;
        const after = scrubber.scrubArgv(before).argv;
        let changed = 0;
        for (let i = 0; i < after.length; i++) if (after[i] !== before[i]) changed++;
        if (changed || after.length !== before.length) {
          img.argv = after.map(detachedArg);
          out.scrubbedArgs += changed;
        }
      }
      // Only the values the old rules reported can change: a variable reported by name alone has no value to show.
      if (img.env?.some((v) => v.value !== undefined)) {
        const env: EnvVar[] = [];
        for (const v of img.env) {
          if (v.value === undefined) env.push(v);
          else {
            const [now] = scrubber.scrubEnv([`${v.name}=${v.value}`]).env;
            if (now && now.name === v.name && now.value === v.value) env.push(v);
            else {
              env.push(Object.freeze({ name: v.name, ...(now?.value !== undefined ? { value: now.value } : {}) }));
              out.scrubbedEnv++;
            }
          }
        }
        if (env.some((v, i) => v !== img.env![i])) img.env = Object.freeze(env);
      }
    };
    for (const e of this.#entries.values()) {
      again(e.image);
      for (const p of e.previousImages) again(p);
      e.output = undefined;
    }
    this.#o.scrubber = scrubber;
    this.#envs = envs;
    this.#stats.scrubbedArgs += out.scrubbedArgs;
    this.#stats.scrubbedEnv += out.scrubbedEnv;
    return out;
  }

  /** Links `child` under `p` (a process gets its own children set with its first child). */
  #addChild(p: ProcessEntry, child: ProcessKey): void {
    if (p.children === NO_CHILDREN) p.children = new Set([child]);
    else p.children.add(child);
  }

  // ---- reads -----------------------------------------------------------------------------------------------

  /**
   * Changes whenever an entry may have changed, appeared or gone (apply, resolve, sweep): what a reader found
   * at one generation is what it would find again at the same generation.
   */
  get generation(): number {
    return this.#generation;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: ProcessKey): ProcessEntry | undefined {
    return this.#entries.get(key);
  }

  /** The newest known instance of `pid` (a live one when there is one). */
  byPid(pid: number): ProcessEntry | undefined {
    const list = this.#byPid.get(pid);
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) if (!list[i]!.exit) return list[i];
    return list[list.length - 1];
  }

  /**
   * The instance of `pid` that was alive at boot time `ktimeNs` (for events that name only a pid). With
   * `span`, also until when that answer holds: `span.until` is the start of the next newer instance
   * (Infinity for none), so that at the same generation, at(pid, t) is this entry for every t from its start
   * up to, not including, `until`.
   */
  at(pid: number, ktimeNs: number, span?: { until: number }): ProcessEntry | undefined {
    const list = this.#byPid.get(pid);
    if (!list) return undefined;
    let until = Infinity;
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i]!;
      if (!(e.startNs > ktimeNs) || !Number.isFinite(e.startNs)) {
        if (span) span.until = until;
        return e;
      }
      if (e.startNs < until) until = e.startNs;
    }
    return undefined;
  }

  /**
   * Resolves a pid: from the cache, else the kernel map, else /proc (entries found there are added, marked
   * with their source). Counts hits and misses by source.
   */
  resolve(pid: number): ProcessEntry | undefined {
    const c = this.byPid(pid);
    if (c) {
      this.#stats.hits.cache++;
      return c;
    }
    this.#generation++;
    const k = this.#o.lookups.kernel?.(pid);
    if (k) {
      this.#stats.hits.kernel++;
      return this.#fromLookup(k, 'kernel-map');
    }
    const p = this.#o.lookups.procfs?.(pid);
    if (p) {
      this.#stats.hits.procfs++;
      return this.#fromLookup(p, 'procfs');
    }
    this.#stats.misses++;
    return undefined;
  }

  /**
   * Ancestors from the parent up, by creation lineage (who started whom; the default) or by the current
   * parent (after reparenting). Stops at the first parent that is not known.
   */
  ancestors(key: ProcessKey, o: { lineage?: 'creation' | 'current'; max?: number } = {}): ProcessEntry[] {
    const out: ProcessEntry[] = [];
    // A loop in the links ends the walk. Most chains are a few levels deep (this runs for every exec the
    // agent reports): they are checked against the list itself, and a set is built only for deep ones.
    let seen: Set<ProcessKey> | undefined;
    let e = this.#entries.get(key);
    while (e && out.length < (o.max ?? 512)) {
      const pk = o.lineage === 'current' ? e.parentKey : (e.originalParentKey ?? e.parentKey);
      if (!pk || pk === key) break;
      if (seen) {
        if (seen.has(pk)) break;
        seen.add(pk);
      } else {
        let loop = false;
        for (let i = 0; i < out.length && !loop; i++) loop = out[i]!.key === pk;
        if (loop) break;
        if (out.length >= 16) seen = new Set([key, pk, ...out.map((x) => x.key)]);
      }
      e = this.#entries.get(pk);
      if (e) out.push(e);
    }
    return out;
  }

  /** Children of a process: by creation lineage, or by current parent. */
  children(key: ProcessKey, o: { lineage?: 'creation' | 'current' } = {}): ProcessEntry[] {
    if (o.lineage !== 'current') return [...(this.#entries.get(key)?.children ?? [])].map((k) => this.#entries.get(k)!).filter(Boolean);
    return [...this.#entries.values()].filter((e) => e.parentKey === key);
  }

  /** Visits every entry (live and retained exited ones). */
  walk(fn: (e: ProcessEntry) => void): void {
    for (const e of this.#entries.values()) fn(e);
  }

  /** Live processes. */
  live(): ProcessEntry[] {
    return [...this.#entries.values()].filter((e) => !e.exit);
  }

  stats(): ProcessCacheStats {
    let exited = 0;
    for (const e of this.#entries.values()) if (e.exit) exited++;
    return { ...this.#stats, size: this.#entries.size, exited, live: this.#entries.size - exited, held: this.#heldCount, applied: { ...this.#stats.applied }, hits: { ...this.#stats.hits } };
  }

  // ---- apply -----------------------------------------------------------------------------------------------

  /**
   * Applies one event or snapshot record. Never throws for ordinary states (unknown process, duplicates).
   * Exec events are scrubbed in place: after apply() their argv and envRaw hold no secret.
   */
  apply(ev: ProcessEvent | SnapshotProcess): void {
    this.#generation++;
    this.#stats.applied[ev.type] = (this.#stats.applied[ev.type] ?? 0) + 1;
    switch (ev.type) {
      case 'snapshot':
        this.#applySnapshot(ev);
        break;
      case 'fork':
        this.#applyFork(ev);
        break;
      case 'exec':
        this.#applyExec(ev);
        break;
      case 'exit':
        this.#applyExit(ev);
        break;
      case 'creds':
      case 'comm':
        this.#applyChange(ev);
        break;
    }
    this.#maybeSweep();
  }

  #index(e: ProcessEntry): void {
    // An entry in #entries is in its pid's list (#evict removes both): only a new key is added, and the list,
    // as long as the pid's instances still kept, is not searched for every fork.
    const old = this.#entries.get(e.key);
    this.#entries.set(e.key, e);
    const list = this.#byPid.get(e.pid);
    if (!list) this.#byPid.set(e.pid, [e]);
    else if (!old) list.push(e);
    else if (old !== e) list[list.indexOf(old)] = e;
    this.#linkWaiting(e);
    if (this.#entries.size > this.#o.maxEntries) this.#evictForCapacity();
  }

  /**
   * Links children that were waiting for `e` (by exact key, or by pid when their parent's start time was not
   * known), and replays events held for it. Usually nothing waits: the lookups are skipped then.
   */
  #linkWaiting(e: ProcessEntry): void {
    if (this.#awaiting.size === 0 && this.#held.size === 0) return;
    for (const wk of [e.key, `${e.pid}:?`]) {
      const waiting = this.#awaiting.get(wk);
      if (!waiting || (wk !== e.key && e.exit)) continue;
      this.#awaiting.delete(wk);
      for (const w of waiting) {
        const child = this.#entries.get(w.child);
        if (!child) continue;
        child.parentKey = e.key;
        this.#addChild(e, child.key);
      }
    }
    const held = this.#held.get(e.key);
    if (held) {
      this.#held.delete(e.key);
      this.#heldCount -= held.length;
      for (const h of held) {
        this.#stats.heldResolved++;
        this.#applyTo(e, h.ev);
      }
    }
  }

  #newEntry(pid: number, startNs: number, source: ProcessSource, image: ProcessImage): ProcessEntry {
    return {
      key: processKey(pid, startNs),
      pid,
      startNs,
      ppid: 0,
      parentKey: undefined,
      originalParentKey: undefined,
      reparentedNs: undefined,
      image,
      previousImages: NO_IMAGES,
      execCount: 0,
      creds: undefined,
      credHistory: NO_CRED_CHANGES,
      ns: undefined,
      tty: '',
      subreaper: false,
      exit: undefined,
      source,
      lineageBroken: false,
      unknown: Number.isFinite(startNs) ? [] : ['startNs'],
      children: NO_CHILDREN,
      lastSeenNs: 0,
      output: undefined,
    };
  }

  /** Points `e` at its parent; when the parent is not known yet, waits for it (bounded) before falling back. */
  #linkParent(e: ProcessEntry, ppid: number, parentStartNs: number | undefined): void {
    e.ppid = ppid;
    if (ppid === 0) return; // init and kthreadd have no parent
    const pk = parentStartNs !== undefined && Number.isFinite(parentStartNs) && parentStartNs > 0 ? processKey(ppid, parentStartNs) : this.byPid(ppid)?.key;
    if (pk && this.#entries.has(pk)) {
      e.parentKey = pk;
      this.#addChild(this.#entries.get(pk)!, e.key);
      return;
    }
    if (pk) e.parentKey = pk;
    const w: Awaiting = { child: e.key, parentPid: ppid, parentStartNs: parentStartNs ?? NaN, until: this.#o.now() + this.#o.holdMs };
    const key = pk ?? `${ppid}:?`;
    const list = this.#awaiting.get(key);
    if (list) list.push(w);
    else this.#awaiting.set(key, [w]);
    this.#schedule(w.until);
  }

  /**
   * The image an exec starts. Scrubs the event in place too (argv scrubbed, env reduced to what the scrub
   * rules keep), so that whoever sees the event after apply() never sees a secret.
   */
  #imageOf(ev: ExecEvent): ProcessImage {
    const unk = ev.unknown?.length ? new Set(ev.unknown) : NO_UNKNOWN;
    const argv = this.#o.scrubber.scrubArgv(ev.argv);
    // A masked argument's neighbours may be pieces of the raw argv block, secret included: keep copies.
    if (argv.scrubbed) argv.argv = argv.argv.map(detachedArg);
    const env = this.#envs.get(ev.envRaw);
    this.#stats.scrubbedArgs += argv.scrubbed;
    this.#stats.scrubbedEnv += env.scrubbed;
    ev.argv = argv.argv;
    // The shared, frozen scrubbed list: nothing downstream writes to an applied event's envRaw.
    ev.envRaw = env.raw as string[];
    // Fields the source could not know stay unknown (undefined) in the new image: never placeholders.
    const exe = !unk.has('exe');
    return {
      execId: `${processKey(ev.pid, ev.startNs)}:${ev.ktimeNs}`,
      execNs: ev.ktimeNs,
      exePath: exe ? this.#strings.intern(ev.exe.path) : undefined,
      exeIno: exe ? ev.exe.ino : undefined,
      exeDev: exe ? ev.exe.dev : undefined,
      exeMtimeNs: exe ? ev.exe.mtimeNs : undefined,
      exeUpperLayer: exe && ev.exeUpperLayer === true,
      filename: unk.has('filename') ? undefined : this.#strings.intern(ev.filename),
      argv: unk.has('argv') ? undefined : argv.argv,
      argc: unk.has('argv') ? undefined : ev.argc,
      argvTruncated: ev.argvTruncated,
      env: unk.has('env') ? undefined : env.env,
      envTruncated: ev.envTruncated,
      comm: this.#strings.intern(ev.comm),
      inherited: false,
      unknown: imageUnknown(unk),
    };
  }

  #snapshotImage(s: SnapshotProcess, key: ProcessKey): ProcessImage {
    const argv = s.argv ? this.#o.scrubber.scrubArgv(s.argv) : undefined;
    if (argv?.scrubbed) argv.argv = argv.argv.map(detachedArg);
    const env = s.envRaw ? this.#envs.get(s.envRaw) : undefined;
    this.#stats.scrubbedArgs += argv?.scrubbed ?? 0;
    this.#stats.scrubbedEnv += env?.scrubbed ?? 0;
    return {
      execId: `${key}:snap`,
      execNs: undefined,
      exePath: s.exePath === undefined ? undefined : this.#strings.intern(s.exePath),
      exeIno: s.exeIno,
      exeDev: s.exeDev,
      exeMtimeNs: s.exeMtimeNs,
      exeUpperLayer: s.exeUpperLayer === true,
      filename: undefined,
      argv: argv?.argv,
      argc: s.argv?.length,
      argvTruncated: false,
      env: env?.env,
      envTruncated: false,
      comm: this.#strings.intern(s.comm),
      inherited: false,
      unknown: imageUnknown(s.unknown),
    };
  }

  #applySnapshot(s: SnapshotProcess): void {
    const key = processKey(s.pid, s.startNs);
    const existing = this.#entries.get(key);
    if (existing) {
      // Live events got there first: they are newer; only fill what they left unknown.
      existing.creds ??= s.creds;
      existing.ns ??= s.ns;
      if (!existing.tty) existing.tty = s.tty;
      return;
    }
    const e = this.#newEntry(s.pid, s.startNs, 'snapshot', this.#snapshotImage(s, key));
    e.creds = s.creds && this.#creds.intern(s.creds);
    e.ns = s.ns;
    e.tty = s.tty;
    e.unknown = [...s.unknown];
    this.#linkParent(e, s.ppid, undefined);
    this.#index(e);
  }

  #fromLookup(s: SnapshotProcess, source: ProcessSource): ProcessEntry {
    this.#applySnapshot(s);
    const e = this.#entries.get(processKey(s.pid, s.startNs))!;
    if (e.source === 'snapshot') e.source = source;
    return e;
  }

  /**
   * Without a start time a process is keyed "<pid>:?", so a new process reusing the pid would land on the
   * old entry: when that entry has exited, move it aside under a unique key first.
   */
  #retireIfReused(key: ProcessKey): void {
    if (!key.endsWith(':?')) return;
    const old = this.#entries.get(key);
    if (old?.exit) this.#rekey(old, `${key}#${++this.#generation}`);
  }

  /**
   * An event of a process, other than its fork, names its start time; the cache holds no such process (the
   * caller looked) but a live one with that pid whose start time was unknown. They are one process, whose
   * start time the source has learned since (the eBPF-less mode reads it from /proc, and one read can fail
   * where a later one succeeds): the entry takes the known key, so that the process stays one entry. (Sources
   * are in order per process: a live "<pid>:?" entry is not an earlier process unless its exit was lost,
   * which is counted.)
   */
  #learnStart(pid: number, startNs: number, key: ProcessKey): ProcessEntry | undefined {
    if (!Number.isFinite(startNs)) return undefined;
    const e = this.#entries.get(`${pid}:?`);
    if (!e || e.exit) return undefined;
    this.#rekey(e, key);
    e.startNs = startNs;
    e.unknown = e.unknown.filter((f) => f !== 'startNs');
    this.#stats.startLearned++;
    return e;
  }

  /** Moves `e` to key `to`, with every reference to it: retention, lineage and waiters (the pid index holds `e`). */
  #rekey(e: ProcessEntry, to: ProcessKey): void {
    const from = e.key;
    this.#entries.delete(from);
    e.key = to;
    this.#entries.set(to, e);
    for (const x of this.#exited) if (x.key === from) x.key = to;
    for (const ck of e.children) {
      const c = this.#entries.get(ck);
      if (c && c.parentKey === from) c.parentKey = to;
      if (c && c.originalParentKey === from) c.originalParentKey = to;
    }
    // Children are listed by creation lineage: under the original parent when reparented since.
    const pk = e.originalParentKey ?? e.parentKey;
    const p = pk ? this.#entries.get(pk) : undefined;
    if (p?.children.delete(from)) this.#addChild(p, to);
    this.#linkWaiting(e);
  }

  #applyFork(ev: ForkEvent): void {
    if (ev.thread) {
      this.#stats.threadEvents++;
      return;
    }
    const key = processKey(ev.childTgid, ev.childStartNs);
    this.#retireIfReused(key);
    const existing = this.#entries.get(key);
    const parentStart = ev.childPpid === ev.pid ? ev.parentStartNs : undefined; // CLONE_PARENT: a sibling of the caller
    if (existing) {
      // Its exec overtook the fork: keep the exec's image, fill in the lineage.
      if (!existing.parentKey && ev.childPpid) this.#linkParent(existing, ev.childPpid, parentStart);
      existing.ns ??= { cgroupId: ev.cgroupId, pidns: 0, mntns: 0, nspid: 0 };
      return;
    }
    const parent = ev.childPpid === ev.pid ? this.#entries.get(processKey(ev.pid, ev.parentStartNs)) : this.byPid(ev.childPpid);
    const commKnown = !ev.unknown?.includes('comm');
    const image: ProcessImage = parent
      ? inheritedImage(parent.image, `${key}:fork`, commKnown ? ev.comm : parent.image.comm)
      : unknownImage(`${key}:fork`, commKnown ? ev.comm : undefined, true);
    // A comm the fork names is known, even where the parent's image left it unknown.
    if (parent && commKnown && image.unknown?.includes('comm')) {
      const u = image.unknown.filter((f) => f !== 'comm');
      image.unknown = u.length ? u : undefined;
    }
    const e = this.#newEntry(ev.childTgid, ev.childStartNs, 'event', image);
    e.creds = parent?.creds;
    const cgroupKnown = !ev.unknown?.includes('cgroupId');
    // A child shares its parent's namespaces (unless it was cloned into new ones, which a fork event does not
    // say); its namespace pid is its pid only in the initial pid namespace.
    const pns = parent?.ns;
    e.ns = pns ? { cgroupId: cgroupKnown ? ev.cgroupId : pns.cgroupId, pidns: pns.pidns, mntns: pns.mntns, nspid: pns.pidns === INIT_PIDNS ? ev.childTgid : 0 } : undefined;
    if (parent) {
      // What the parent could not know, the child inherited it from cannot know either.
      const inherited = parent.unknown.length ? parent.unknown.filter((f) => !ownMark(f)) : [];
      if (pns && pns.pidns !== INIT_PIDNS) inherited.push('ns.nspid');
      if (inherited.length) e.unknown = [...new Set([...e.unknown, ...inherited])];
    } else {
      e.unknown.push(...image.unknown!, 'creds', 'ns', 'tty');
    }
    e.tty = parent?.tty ?? '';
    e.lastSeenNs = ev.ktimeNs;
    this.#linkParent(e, ev.childPpid, parentStart);
    this.#index(e);
  }

  #applyExec(ev: ExecEvent): void {
    const key = processKey(ev.pid, ev.startNs);
    this.#retireIfReused(key);
    let e = this.#entries.get(key) ?? this.#learnStart(ev.pid, ev.startNs, key);
    const image = this.#imageOf(ev);
    if (!e) {
      e = this.#newEntry(ev.pid, ev.startNs, 'event', image);
      this.#linkParent(e, ev.ppid, ev.parentStartNs);
      this.#fill(e, ev);
      this.#index(e);
      e.execCount = 1;
      return;
    }
    if (!e.image.inherited) {
      if (e.previousImages === NO_IMAGES) e.previousImages = [];
      e.previousImages.push(e.image);
      if (e.previousImages.length > this.#o.maxImages) e.previousImages.shift();
    }
    e.image = image;
    e.execCount++;
    if (e.source !== 'event') e.source = 'event';
    this.#fill(e, ev);
    if (ev.ppid !== e.ppid && ev.ppid !== 0) this.#reparent(e, ev.ppid, ev.ktimeNs);
  }

  /** Process attributes from an exec; those the source marks unknown keep what was known before. */
  #fill(e: ProcessEntry, ev: ExecEvent): void {
    const unk = ev.unknown?.length ? new Set(ev.unknown) : NO_UNKNOWN;
    // Most execs keep the credentials inherited at fork: keep sharing that object then.
    if (!unk.has('creds')) e.creds = e.creds && sameCreds(e.creds, ev.creds) ? e.creds : ev.creds;
    if (!unk.has('ns')) e.ns = ev.ns;
    else if (e.ns && !unk.has('cgroupId')) e.ns = { ...e.ns, cgroupId: ev.cgroupId };
    if (!unk.has('tty')) e.tty = ev.tty;
    if (!unk.has('subreaper')) e.subreaper = ev.subreaper;
    e.lastSeenNs = ev.ktimeNs;
    // The exec settles its image, creds, namespaces and tty afresh: earlier marks of those go, its own come.
    if (unk.size || e.unknown.length) e.unknown = [...new Set([...e.unknown.filter((f) => !settledByExec(f)), ...unk])];
  }

  #applyExit(ev: ExitEvent): void {
    if (!ev.groupDead) {
      this.#stats.threadEvents++;
      return;
    }
    const key = processKey(ev.pid, ev.startNs);
    const e = this.#entries.get(key) ?? this.#learnStart(ev.pid, ev.startNs, key);
    if (!e) return this.#hold(ev);
    this.#applyTo(e, ev);
  }

  #applyChange(ev: CredsEvent | CommEvent): void {
    const key = processKey(ev.pid, ev.startNs);
    const e = this.#entries.get(key) ?? this.#learnStart(ev.pid, ev.startNs, key);
    if (!e) return this.#hold(ev);
    this.#applyTo(e, ev);
  }

  /** Applies an exit/creds/comm event to a known entry. */
  #applyTo(e: ProcessEntry, ev: ExitEvent | CredsEvent | CommEvent): void {
    e.lastSeenNs = Math.max(e.lastSeenNs, ev.ktimeNs);
    if (ev.type === 'creds') {
      let creds = ev.creds;
      if (ev.unknown?.length) {
        // Fields the source could not read are not kept at their old values, which would look current.
        const credsUnknown = ev.unknown.filter((f) => f.startsWith('creds.'));
        if (credsUnknown.length) {
          const c: Record<string, unknown> = { ...creds };
          for (const f of credsUnknown) {
            const k = f.slice(6);
            c[k] = k in UNKNOWN_CRED ? UNKNOWN_CRED[k] : NaN;
          }
          creds = c as unknown as typeof creds;
        }
        const marks = ev.unknown.includes('syscallNr') ? [...credsUnknown, 'credHistory.syscallNr'] : credsUnknown;
        e.unknown = [...new Set([...e.unknown.filter((f) => f !== 'creds' && !f.startsWith('creds.')), ...marks])];
      } else if (e.unknown.length) {
        e.unknown = e.unknown.filter((f) => f !== 'creds' && !f.startsWith('creds.'));
      }
      if (e.credHistory === NO_CRED_CHANGES) e.credHistory = [];
      e.credHistory.push({ ktimeNs: ev.ktimeNs, syscallNr: ev.syscallNr, creds });
      if (e.credHistory.length > this.#o.maxCredHistory) e.credHistory.shift();
      e.creds = creds;
      return;
    }
    if (ev.type === 'comm') {
      const u = e.image.unknown?.filter((f) => f !== 'comm');
      e.image = { ...e.image, comm: ev.comm, unknown: u?.length ? u : undefined };
      if (e.unknown.includes('comm')) e.unknown = e.unknown.filter((f) => f !== 'comm');
      return;
    }
    if (e.exit) return; // duplicate
    e.exit = { ktimeNs: ev.ktimeNs, status: ev.status, exitCode: ev.exitCode, signal: ev.signal, coreDumped: ev.coreDumped };
    if (ev.unknown?.length) {
      // An exit the source only inferred (its last thread's notice lost): its status is not known. Its time is
      // an upper bound, kept for ordering but marked.
      const u = ev.unknown;
      if (u.includes('status')) e.exit.status = NaN;
      if (u.includes('exitCode')) e.exit.exitCode = undefined;
      if (u.includes('signal')) e.exit.signal = undefined;
      const marks = ['ktimeNs', 'status', 'exitCode', 'signal'].filter((f) => u.includes(f)).map((f) => `exit.${f}`);
      if (marks.length) e.unknown = [...new Set([...e.unknown, ...marks])];
    }
    if (ev.ppid !== e.ppid && ev.ppid !== 0) this.#reparent(e, ev.ppid, ev.ktimeNs);
    this.#exited.push({ key: e.key, at: this.#o.now() });
    this.#schedule(this.#o.now() + this.#o.exitedGraceMs);
    // The kernel reparents the live children (to a subreaper or the namespace's init) right after this
    // event: learn their new parent from /proc, keeping the original one.
    for (const ck of e.children) {
      const c = this.#entries.get(ck);
      if (!c || c.exit || c.parentKey !== e.key) continue;
      const np = this.#o.lookups.ppid?.(c.pid, c.startNs);
      if (np !== undefined && np !== e.pid) this.#reparent(c, np, ev.ktimeNs);
    }
  }

  #reparent(e: ProcessEntry, ppid: number, ktimeNs: number): void {
    const np = this.byPid(ppid) ?? (ppid > 0 ? this.resolve(ppid) : undefined);
    if (!np && ppid !== 0) return; // unknown new parent: keep the old link rather than guess
    e.originalParentKey ??= e.parentKey;
    e.parentKey = np?.key;
    e.ppid = ppid;
    e.reparentedNs = ktimeNs;
    this.#stats.reparented++;
  }

  #hold(ev: ExitEvent | CredsEvent | CommEvent): void {
    const key = processKey(ev.pid, ev.startNs);
    if (this.#heldCount >= this.#o.maxHeld) return this.#fallback(ev);
    this.#heldCount++;
    const h: Held = { ev, until: this.#o.now() + this.#o.holdMs };
    const list = this.#held.get(key);
    if (list) list.push(h);
    else this.#held.set(key, [h]);
    this.#stats.heldTotal++;
    this.#schedule(h.until);
  }

  /** The process never showed up: find it in the kernel map or /proc, or make a partial entry. */
  #fallback(ev: ExitEvent | CredsEvent | CommEvent): void {
    this.#stats.heldFallback++;
    const key = processKey(ev.pid, ev.startNs);
    let e = this.#entries.get(key);
    if (!e) {
      for (const [src, look] of [['kernel-map', this.#o.lookups.kernel], ['procfs', this.#o.lookups.procfs]] as const) {
        const s = look?.(ev.pid);
        if (s && processKey(s.pid, s.startNs) === key) {
          e = this.#fromLookup(s, src);
          break;
        }
      }
    }
    if (!e) {
      e = this.#newEntry(ev.pid, ev.startNs, 'partial', unknownImage(`${key}:partial`, 'comm' in ev && ev.comm ? ev.comm : undefined, false));
      e.unknown.push(...e.image.unknown!, 'creds', 'ns');
      e.lineageBroken = true;
      this.#stats.brokenLineage++;
      if (ev.type === 'exit') e.ppid = ev.ppid;
      this.#index(e);
    }
    this.#applyTo(e, ev);
  }

  // ---- time-driven work: held events, missing parents, evictions ------------------------------------------

  #schedule(at: number): void {
    if (!this.#o.timers || at >= this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.sweep();
    }, Math.max(1, at - this.#o.now()));
    this.#timer.unref();
  }

  #maybeSweep(): void {
    // Cheap check on the hot path: only when the oldest exited entry is due.
    const head = this.#exited[this.#exitedHead];
    if (head && this.#o.now() - head.at >= this.#o.exitedGraceMs) this.sweep();
  }

  /** Expires held events and missing parents, evicts exited processes past their grace. Returns evictions. */
  sweep(now = this.#o.now()): number {
    this.#generation++;
    if (this.#held.size) for (const [key, list] of [...this.#held]) {
      const due = list.filter((h) => h.until <= now);
      if (!due.length) continue;
      const rest = list.filter((h) => h.until > now);
      if (rest.length) this.#held.set(key, rest);
      else this.#held.delete(key);
      this.#heldCount -= due.length;
      for (const h of due) this.#fallback(h.ev);
    }
    if (this.#awaiting.size) for (const [pk, list] of [...this.#awaiting]) {
      const due = list.filter((w) => w.until <= now);
      if (!due.length) continue;
      const rest = list.filter((w) => w.until > now);
      if (rest.length) this.#awaiting.set(pk, rest);
      else this.#awaiting.delete(pk);
      for (const w of due) this.#resolveParent(w);
    }
    let evicted = 0;
    while (this.#exitedHead < this.#exited.length) {
      const { key, at } = this.#exited[this.#exitedHead]!;
      if (now - at < this.#o.exitedGraceMs) break;
      this.#exitedHead++;
      const e = this.#entries.get(key);
      if (!e) continue;
      if (e.children.size === 0) evicted += this.#evict(e);
      else this.#graceOver.add(key); // a descendant still needs it for lineage: evicted after its last child
    }
    if (this.#exitedHead > 1024 && this.#exitedHead * 2 > this.#exited.length) {
      this.#exited.splice(0, this.#exitedHead);
      this.#exitedHead = 0;
    }
    // (A loop, not Math.min(...spread): sweeps run often, and a spread of many held events could overflow.)
    let next = this.#exited[this.#exitedHead] ? this.#exited[this.#exitedHead]!.at + this.#o.exitedGraceMs : Infinity;
    for (const list of this.#held.values()) for (const h of list) if (h.until < next) next = h.until;
    for (const list of this.#awaiting.values()) for (const w of list) if (w.until < next) next = w.until;
    if (Number.isFinite(next)) this.#schedule(next);
    return evicted;
  }

  #resolveParent(w: Awaiting): void {
    const child = this.#entries.get(w.child);
    if (!child || (child.parentKey && this.#entries.has(child.parentKey))) return;
    for (const [src, look] of [['kernel-map', this.#o.lookups.kernel], ['procfs', this.#o.lookups.procfs]] as const) {
      const s = look?.(w.parentPid);
      if (s && (!Number.isFinite(w.parentStartNs) || processKey(s.pid, s.startNs) === processKey(w.parentPid, w.parentStartNs))) {
        const p = this.#fromLookup(s, src);
        child.parentKey = p.key;
        this.#addChild(p, child.key);
        return;
      }
    }
    child.lineageBroken = true;
    this.#stats.brokenLineage++;
  }

  #evict(e: ProcessEntry): number {
    this.#entries.delete(e.key);
    this.#graceOver.delete(e.key);
    const list = this.#byPid.get(e.pid);
    if (list) {
      const i = list.indexOf(e);
      if (i >= 0) list.splice(i, 1);
      if (!list.length) this.#byPid.delete(e.pid);
    }
    this.#stats.evictions++;
    let n = 1;
    // The creation parent may have been kept only for this child.
    const pk = e.originalParentKey ?? e.parentKey;
    const p = pk ? this.#entries.get(pk) : undefined;
    if (p) {
      p.children.delete(e.key);
      if (p.children.size === 0 && this.#graceOver.has(p.key)) n += this.#evict(p);
    }
    return n;
  }

  #evictForCapacity(): void {
    // Oldest exited first, even if a descendant still wants it for lineage.
    while (this.#entries.size > this.#o.maxEntries && this.#exitedHead < this.#exited.length) {
      const { key } = this.#exited[this.#exitedHead++]!;
      const e = this.#entries.get(key);
      if (e) {
        this.#stats.evictionsForced++;
        this.#evict(e);
      }
    }
    for (const key of this.#graceOver) {
      if (this.#entries.size <= this.#o.maxEntries) break;
      const e = this.#entries.get(key);
      if (e) {
        this.#stats.evictionsForced++;
        this.#evict(e);
      }
    }
  }

  /** Stops timers (the cache stays readable). */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}
