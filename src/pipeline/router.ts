// Pub/sub routing of output events (swoll's hub): subscribers (SSE clients, trace jobs, rules) each give a
// filter, compiled once at subscribe time into a predicate over what a line is about (LineMeta: type,
// process, container, pod; no event object needed), and get their own bounded queue, drained in batches.
// A subscriber takes event objects (the rule engine) or JSON lines as UTF-8 bytes (SSE clients): the pipeline
// builds an object only for the types an object subscriber takes; a line subscriber gets a copy of the bytes
// the sinks got. A slow subscriber loses events (counted), it never slows the pipeline or other subscribers.
// A subscriber that leaves with events still queued loses them too, counted: the totals per kind (totals())
// keep what departed subscribers delivered and dropped, so that they only ever grow.
import { Buffer } from 'node:buffer';
import { InvalidArgumentError } from '../bpf/errors.ts';
import type { ByteLine } from './json-bytes.ts';
import { lineMetaOf, newLineMeta, type LineMeta, type OutputEvent } from './types.ts';

export interface EventFilter {
  /** Event types ("exec", "open", ...). */
  types?: string[];
  pid?: number;
  /** Container id (prefix of ≥ 6), or name. */
  container?: string;
  /** Only events with a container (true) or without (false). */
  inContainer?: boolean;
  comm?: string;
  podNamespace?: string;
  podName?: string;
}

export interface SubscriberStats {
  id: number;
  name: string;
  delivered: number;
  /** queueFull + failed. */
  dropped: number;
  /** Offered while its queue was full. */
  queueFull: number;
  /** In a batch its delivery threw on (an SSE client that stopped reading). */
  failed: number;
  /** Of its types, not built for it: its guard (SubscribeOptions.guard) and every other subscriber's turned them down. */
  declined: number;
  queued: number;
}

/**
 * What every subscriber of one kind (its name up to the first ':': `sse`, `rules`) delivered and dropped, those
 * that left included: counters that only grow, whatever clients come and go.
 */
export interface SubscriberTotals {
  /** Subscribed now. */
  live: number;
  /** Subscribed since the start, those that left included. */
  subscribed: number;
  delivered: number;
  dropped: { queueFull: number; failed: number; unsubscribed: number };
}

/** An object subscriber's delivery: the event objects its filter takes, in order (lines: subscribeLines). */
export type Deliver = (batch: OutputEvent[]) => void;
/** A line subscriber's delivery: the JSON lines of its events (UTF-8, no newline), in order. */
export type DeliverLines = (lines: Buffer[]) => void;

export interface SubscribeOptions {
  /** Queue bound: what comes while it is full is dropped, counted (queueFull). Default: the router's. */
  maxQueue?: number;
  /**
   * Deliver as soon as this many are queued, at the pipeline's next point between two events
   * (Router.deliverDue), not only once per event-loop turn. For a subscriber that handles a batch
   * synchronously and keeps nothing of it (the rule engine, SSE clients), so that what is queued dies young:
   * held for a whole turn (~1000 events of a busy ring drain), events outlived a young-generation GC, were
   * copied and promoted, and the old generation's collections cost as much as the rules themselves
   * (bench/pipeline, rules stage). Default: once per turn.
   */
  batch?: number;
  /**
   * Object subscribers only: per event type, a test of an event's own members (its fields as its type's
   * shaper makes them: no process, container, time or type) that is false only for events the subscriber
   * would do nothing with; undefined for a type whose every event it takes. The pipeline builds no event
   * object that every object subscriber of its type turns down so (Router.guardFor). The rule engine's: a
   * condition that cannot be true of those members (src/rules/prefilter.ts).
   */
  guard?: (type: string) => EventGuard | undefined;
}

/**
 * An event's own members read one at a time, for a guard given no object of fields: a held record's members
 * read from its bytes only as the guard asks for them (pipeline/record-members.ts). `member(k)` is exactly
 * what the fields its type's shaper makes hold under k, undefined where they hold no k.
 */
export abstract class EventMembers {
  abstract member(key: string): unknown;
}

/** A test of an event's own members (SubscribeOptions.guard): its fields, or its members read as asked for. */
export type EventGuard = (fields: Readonly<Record<string, unknown>> | EventMembers) => boolean;

/** One guard of several: true when any is; undefined (one takes every event) when there are none or one is undefined. */
export function anyGuard(guards: readonly (EventGuard | undefined)[]): EventGuard | undefined {
  if (!guards.length || guards.some((g) => !g)) return undefined;
  const gs = guards as EventGuard[];
  if (gs.length === 1) return gs[0];
  return (fields) => {
    for (const g of gs) if (g(fields)) return true;
    return false;
  };
}

/** Builds a predicate over what a line is about (LineMeta); throws InvalidArgumentError naming the bad field. */
export function compileFilter(f: EventFilter): (m: LineMeta) => boolean {
  const checks: ((m: LineMeta) => boolean)[] = [];
  if (f.types?.length) {
    const set = new Set(f.types);
    checks.push((m) => set.has(m.type));
  }
  if (f.pid !== undefined) {
    if (!Number.isInteger(f.pid) || f.pid <= 0) throw new InvalidArgumentError(`filter.pid: must be a positive integer, got ${f.pid}`);
    const pid = f.pid;
    checks.push((m) => m.pid === pid);
  }
  if (f.comm !== undefined) {
    const comm = f.comm;
    checks.push((m) => m.comm === comm);
  }
  if (f.inContainer !== undefined) {
    const want = f.inContainer;
    checks.push((m) => (m.containerId !== undefined) === want);
  }
  if (f.container !== undefined) {
    const c = f.container;
    if (!c) throw new InvalidArgumentError('filter.container: must not be empty');
    const prefix = /^[0-9a-f]{6,64}$/.test(c);
    checks.push((m) => m.containerId !== undefined && (m.containerName === c || m.containerId === c || (prefix && m.containerId.startsWith(c))));
  }
  if (f.podNamespace !== undefined) {
    const ns = f.podNamespace;
    checks.push((m) => m.podNamespace === ns);
  }
  if (f.podName !== undefined) {
    const n = f.podName;
    checks.push((m) => m.podName === n);
  }
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0]!;
  return (m) => {
    for (const c of checks) if (!c(m)) return false;
    return true;
  };
}

/** How many subscribers take each event type (one without a type filter takes every type). */
class TypeRefs {
  any = 0;
  readonly byType = new Map<string, number>();

  count(types: ReadonlySet<string> | undefined, d: 1 | -1): void {
    if (!types) this.any += d;
    else for (const t of types) {
      const n = (this.byType.get(t) ?? 0) + d;
      if (n) this.byType.set(t, n);
      else this.byType.delete(t);
    }
  }

  /** Hot path: two compares when no one subscribed. */
  has(type: string): boolean {
    return this.any > 0 || (this.byType.size > 0 && this.byType.has(type));
  }
}

class Subscriber {
  readonly id: number;
  readonly name: string;
  match: (m: LineMeta) => boolean;
  /** The event types its filter takes; undefined: every type. */
  types: ReadonlySet<string> | undefined;
  /** Takes JSON lines (subscribeLines), not event objects. */
  readonly lines: boolean;
  /** Deliver or DeliverLines, as `lines` says (what the queue holds: event objects or lines). */
  readonly deliver: (batch: never[]) => void;
  max: number;
  /** Delivered as soon as this many are queued (at the pipeline's next safe point), not only once per turn. */
  readonly batch: number;
  readonly guard: SubscribeOptions['guard'];
  queue: (OutputEvent | Buffer)[] = [];
  delivered = 0;
  queueFull = 0;
  failed = 0;
  /** Events of its types not built, as its guard turned them down (Router.guardFor). */
  declined = 0;
  constructor(id: number, name: string, filter: EventFilter, lines: boolean, deliver: (batch: never[]) => void, max: number, batch: number, guard: SubscribeOptions['guard']) {
    this.id = id;
    this.name = name;
    this.match = compileFilter(filter);
    this.types = filter.types?.length ? new Set(filter.types) : undefined;
    this.lines = lines;
    this.deliver = deliver;
    this.max = max;
    this.batch = batch;
    this.guard = guard;
  }
}

export class Router {
  readonly #subs = new Map<number, Subscriber>();
  #next = 1;
  #scheduled = false;
  /** Some subscriber has a full batch queued: deliverDue() has work. */
  #due = false;
  readonly #maxQueue: number;
  /** Per event type, the subscribers that take its objects (wants()) and those that take its lines (wantsLines()). */
  readonly #objectTakers = new TypeRefs();
  readonly #lineTakers = new TypeRefs();
  /** What publish() filters an event without a LineMeta by (callers outside the pipeline, tests). */
  readonly #meta = newLineMeta();
  /** Per kind, what subscribers that left had delivered and dropped (their queue at leaving as `unsubscribed`). */
  readonly #departed = new Map<string, SubscriberTotals>();

  constructor(maxQueue = 10_000) {
    this.#maxQueue = maxQueue;
  }

  /** Adds a subscriber of event objects; returns its id (for unsubscribe). Throws InvalidArgumentError for a bad filter. */
  subscribe(name: string, filter: EventFilter, deliver: Deliver, opts: SubscribeOptions = {}): number {
    return this.#add(name, filter, false, deliver, opts);
  }

  /**
   * Adds a subscriber of JSON lines (an event stream), as UTF-8 bytes: it costs the pipeline a copy of the
   * line's bytes per event it takes, not an event object and its serialisation again (most of what an SSE
   * client cost per event), nor a string decoded and encoded again. Returns its id; throws
   * InvalidArgumentError for a bad filter.
   */
  subscribeLines(name: string, filter: EventFilter, deliver: DeliverLines, opts: SubscribeOptions = {}): number {
    return this.#add(name, filter, true, deliver, opts);
  }

  #add(name: string, filter: EventFilter, lines: boolean, deliver: (batch: never[]) => void, o: SubscribeOptions): number {
    const s = new Subscriber(this.#next, name, filter, lines, deliver, o.maxQueue ?? this.#maxQueue, o.batch ?? Infinity, lines ? undefined : o.guard); // throws before anything changes
    this.#next++;
    this.#subs.set(s.id, s);
    this.#count(s, 1);
    return s.id;
  }

  /**
   * Gives a subscriber a new filter (and queue bound), keeping what it has queued: a rule reload loses no
   * event. Throws InvalidArgumentError for a bad filter, changing nothing.
   */
  refilter(id: number, filter: EventFilter, maxQueue?: number): void {
    const s = this.#subs.get(id);
    if (!s) return;
    const match = compileFilter(filter);
    this.#count(s, -1);
    s.match = match;
    s.types = filter.types?.length ? new Set(filter.types) : undefined;
    if (maxQueue !== undefined) s.max = maxQueue;
    this.#count(s, 1);
  }

  /** Removes a subscriber. What it still had queued is lost, counted in totals() as `unsubscribed`. */
  unsubscribe(id: number): void {
    const s = this.#subs.get(id);
    if (!s) return;
    this.#subs.delete(id);
    this.#count(s, -1);
    const t = totalsOf(this.#departed, kindOf(s.name));
    t.subscribed++;
    t.delivered += s.delivered;
    t.dropped.queueFull += s.queueFull;
    t.dropped.failed += s.failed;
    t.dropped.unsubscribed += s.queue.length;
    s.queue = [];
  }

  #count(s: Subscriber, d: 1 | -1): void {
    (s.lines ? this.#lineTakers : this.#objectTakers).count(s.types, d);
    this.#guards.clear(); // who takes what changed: guards are composed again
    this.#lastGuardType = this.#lastGuard = undefined;
  }

  /** guardFor's answers, per type (null: none). */
  readonly #guards = new Map<string, EventGuard | null>();

  /**
   * For a type some object subscriber takes (wants()): the test every event's own members must pass for
   * its object to be built, composed of the subscribers' guards (SubscribeOptions.guard); undefined when
   * some subscriber of the type takes every event of it. Made once per type, until subscribers change.
   */
  guardFor(type: string): EventGuard | undefined {
    // Events come in runs of one type: the last answer first, then the map (a hash lookup per event).
    if (type === this.#lastGuardType) return this.#lastGuard;
    let g = this.#guards.get(type);
    if (g === undefined) this.#guards.set(type, (g = this.#composeGuard(type) ?? null));
    this.#lastGuardType = type;
    this.#lastGuard = g ?? undefined;
    return this.#lastGuard;
  }
  #lastGuardType: string | undefined;
  #lastGuard: EventGuard | undefined;

  /** Of the object subscribers of `type`, the guards; what all of them turn down is counted on each (declined). */
  #composeGuard(type: string): EventGuard | undefined {
    const subs = [...this.#subs.values()].filter((s) => !s.lines && (!s.types || s.types.has(type)));
    const any = anyGuard(subs.map((s) => s.guard?.(type)));
    if (!any) return undefined;
    return (fields) => {
      if (any(fields)) return true;
      for (const s of subs) s.declined++;
      return false;
    };
  }

  /**
   * Whether some subscriber takes the objects of events of `type`: the pipeline builds an event object only
   * then (or when a sink needs one). Hot path: two compares when no one subscribed.
   */
  wants(type: string): boolean {
    return this.#objectTakers.has(type);
  }

  /** Whether some subscriber takes the JSON lines of events of `type`: the pipeline hands their bytes over only then. */
  wantsLines(type: string): boolean {
    return this.#lineTakers.has(type);
  }

  /** Whether some subscriber takes JSON lines (an SSE client or a trace job's stream): a consumer outside the agent. */
  get streaming(): boolean {
    return this.#lineTakers.any > 0 || this.#lineTakers.byType.size > 0;
  }

  get size(): number {
    return this.#subs.size;
  }

  /**
   * Hot path: offers an event to every subscriber whose filter takes it: its object to object subscribers,
   * its line to line subscribers. `meta` says what the event is about (the pipeline has it for every line it
   * writes); without it, it is taken from `ev`. `ev` may be missing when no object subscriber takes the
   * type (wants()). A line subscriber gets a copy of `bytes` (the line as the sinks got it, valid during the
   * call), else `line` encoded, else `ev` serialised. Costs nothing when there are no subscribers.
   */
  publish(ev: OutputEvent | undefined, line?: string, meta?: LineMeta, bytes?: ByteLine): void {
    if (this.#subs.size === 0) return;
    const m = meta ?? (ev ? lineMetaOf(ev, this.#meta) : undefined);
    if (!m) return;
    let copy: Buffer | undefined; // one copy, shared by every line subscriber (they only read it)
    for (const s of this.#subs.values()) {
      if (!s.match(m)) continue;
      if (s.queue.length >= s.max) {
        s.queueFull++;
        continue;
      }
      if (s.lines) {
        copy ??= bytes ? copyLine(bytes) : line !== undefined ? Buffer.from(line) : ev ? Buffer.from(JSON.stringify(ev)) : undefined;
        if (!copy) {
          s.failed++; // nothing to give it: counted, never silent (the pipeline asks wantsLines first)
          continue;
        }
        s.queue.push(copy);
      } else {
        if (!ev) {
          // Turned down by the guards (guardFor), or nothing to give it: counted, never silent.
          if (!this.guardFor(m.type)) s.failed++;
          continue;
        }
        s.queue.push(ev);
      }
      if (s.queue.length >= s.batch) this.#due = true;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#drain());
    }
  }

  /**
   * Delivers the full batches of subscribers that take theirs early (subscribe's `batch`). The pipeline
   * calls it between events, never while it is writing one, so what a subscriber emits (a rule's alert)
   * comes after the event it is about. Hot path: one compare when nothing is due.
   */
  deliverDue(): void {
    if (!this.#due) return;
    this.#due = false;
    for (const s of this.#subs.values()) if (s.queue.length >= s.batch) this.#deliver(s);
  }

  #drain(): void {
    this.#scheduled = false;
    for (const s of this.#subs.values()) this.#deliver(s);
  }

  /** Delivers what one subscriber has queued now, synchronously (stop, reload, tests). */
  flush(id: number): void {
    const s = this.#subs.get(id);
    if (s) this.#deliver(s);
  }

  #deliver(s: Subscriber): void {
    if (!s.queue.length) return;
    const batch = s.queue;
    s.queue = [];
    try {
      s.deliver(batch as never[]);
      s.delivered += batch.length;
    } catch {
      s.failed += batch.length; // a failing subscriber loses its batch, counted
    }
  }

  /** The subscribers there are now. */
  stats(): SubscriberStats[] {
    return [...this.#subs.values()].map((s) => ({
      id: s.id,
      name: s.name,
      delivered: s.delivered,
      dropped: s.queueFull + s.failed,
      queueFull: s.queueFull,
      failed: s.failed,
      declined: s.declined,
      queued: s.queue.length,
    }));
  }

  /** Per kind of subscriber, every subscriber since the start: the live ones and those that left. */
  totals(): Record<string, SubscriberTotals> {
    const out = new Map<string, SubscriberTotals>();
    for (const [kind, d] of this.#departed) out.set(kind, { ...d, live: 0, dropped: { ...d.dropped } });
    for (const s of this.#subs.values()) {
      const t = totalsOf(out, kindOf(s.name));
      t.live++;
      t.subscribed++;
      t.delivered += s.delivered;
      t.dropped.queueFull += s.queueFull;
      t.dropped.failed += s.failed;
    }
    return Object.fromEntries(out);
  }
}

/** The line `w` holds, copied out (small lines come from Node's shared pool: no allocation of their own). */
function copyLine(w: ByteLine): Buffer {
  const b = Buffer.allocUnsafe(w.pos - w.start);
  w.buf.copy(b, 0, w.start, w.pos);
  return b;
}

/** A subscriber's kind: its name up to the first ':' (`sse:10.0.0.1` -> `sse`). */
function kindOf(name: string): string {
  const i = name.indexOf(':');
  return i < 0 ? name : name.slice(0, i);
}

function totalsOf(m: Map<string, SubscriberTotals>, kind: string): SubscriberTotals {
  let t = m.get(kind);
  if (!t) m.set(kind, (t = { live: 0, subscribed: 0, delivered: 0, dropped: { queueFull: 0, failed: 0, unsubscribed: 0 } }));
  return t;
}
