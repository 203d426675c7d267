// Pub/sub routing of output events (swoll's hub): subscribers (SSE clients, trace jobs, rules) each give a
// filter, compiled once at subscribe time into a predicate that checks the cheapest fields first, and get
// their own bounded queue, drained asynchronously in batches. A slow subscriber loses events (counted),
// it never slows the pipeline or other subscribers. A subscriber that leaves with events still queued loses
// them too, counted: the totals per kind (totals()) keep what departed subscribers delivered and dropped, so
// that they only ever grow.
import { InvalidArgumentError } from '../bpf/errors.ts';
import type { OutputEvent } from './types.ts';

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

/**
 * An event and its JSON line, when the pipeline made one (a line written straight to the sinks as bytes is
 * not made again as a string for subscribers: lineOf() makes it for those that read it).
 */
export interface Routed {
  ev: OutputEvent;
  line: string | undefined;
}

export type Deliver = (batch: Routed[]) => void;

/** A routed event's JSON line: the pipeline's, or the same made from the event (its line is JSON.stringify of it). */
export const lineOf = (r: Routed): string => r.line ?? JSON.stringify(r.ev);

/** Builds a predicate from a filter; throws InvalidArgumentError naming the bad field. */
export function compileFilter(f: EventFilter): (ev: OutputEvent) => boolean {
  const checks: ((ev: OutputEvent) => boolean)[] = [];
  if (f.types?.length) {
    const set = new Set(f.types);
    checks.push((ev) => set.has(ev.type));
  }
  if (f.pid !== undefined) {
    if (!Number.isInteger(f.pid) || f.pid <= 0) throw new InvalidArgumentError(`filter.pid: must be a positive integer, got ${f.pid}`);
    const pid = f.pid;
    checks.push((ev) => ev.process?.pid === pid);
  }
  if (f.comm !== undefined) {
    const comm = f.comm;
    checks.push((ev) => ev.process?.comm === comm);
  }
  if (f.inContainer !== undefined) {
    const want = f.inContainer;
    checks.push((ev) => (ev.container !== undefined) === want);
  }
  if (f.container !== undefined) {
    const c = f.container;
    if (!c) throw new InvalidArgumentError('filter.container: must not be empty');
    const prefix = /^[0-9a-f]{6,64}$/.test(c);
    checks.push((ev) => !!ev.container && (ev.container.name === c || ev.container.id === c || (prefix && ev.container.id.startsWith(c))));
  }
  if (f.podNamespace !== undefined) {
    const ns = f.podNamespace;
    checks.push((ev) => ev.pod?.namespace === ns);
  }
  if (f.podName !== undefined) {
    const n = f.podName;
    checks.push((ev) => ev.pod?.name === n);
  }
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0]!;
  return (ev) => {
    for (const c of checks) if (!c(ev)) return false;
    return true;
  };
}

class Subscriber {
  readonly id: number;
  readonly name: string;
  match: (ev: OutputEvent) => boolean;
  /** The event types its filter takes; undefined: every type. */
  types: ReadonlySet<string> | undefined;
  readonly deliver: Deliver;
  max: number;
  /** Delivered as soon as this many are queued (at the pipeline's next safe point), not only once per turn. */
  readonly batch: number;
  queue: Routed[] = [];
  delivered = 0;
  queueFull = 0;
  failed = 0;
  constructor(id: number, name: string, filter: EventFilter, deliver: Deliver, max: number, batch: number) {
    this.id = id;
    this.name = name;
    this.match = compileFilter(filter);
    this.types = filter.types?.length ? new Set(filter.types) : undefined;
    this.deliver = deliver;
    this.max = max;
    this.batch = batch;
  }
}

export class Router {
  readonly #subs = new Map<number, Subscriber>();
  #next = 1;
  #scheduled = false;
  /** Some subscriber has a full batch queued: deliverDue() has work. */
  #due = false;
  readonly #maxQueue: number;
  /** Subscribers that take every event type, and per type those that take it: what wants() answers from. */
  #anyType = 0;
  readonly #typeRefs = new Map<string, number>();
  /** Per kind, what subscribers that left had delivered and dropped (their queue at leaving as `unsubscribed`). */
  readonly #departed = new Map<string, SubscriberTotals>();

  constructor(maxQueue = 10_000) {
    this.#maxQueue = maxQueue;
  }

  /**
   * Adds a subscriber; returns its id (for unsubscribe). Throws InvalidArgumentError for a bad filter.
   * Events are delivered in one batch per event-loop turn, or, with `batch`, as soon as that many are
   * queued: for a subscriber that handles a batch synchronously and keeps nothing of it (the rule engine),
   * so that the event objects die young. Held for a whole turn (~1000 events of a busy ring drain), they
   * outlived a young-generation GC, were copied and promoted, and the old generation's collections cost
   * as much as the rules themselves (bench/pipeline, rules stage).
   */
  subscribe(name: string, filter: EventFilter, deliver: Deliver, maxQueue = this.#maxQueue, batch = Infinity): number {
    const s = new Subscriber(this.#next, name, filter, deliver, maxQueue, batch); // throws before anything changes
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
    if (!s.types) this.#anyType += d;
    else for (const t of s.types) {
      const n = (this.#typeRefs.get(t) ?? 0) + d;
      if (n) this.#typeRefs.set(t, n);
      else this.#typeRefs.delete(t);
    }
  }

  /**
   * Whether some subscriber takes events of `type`: the pipeline builds an event object only then (or when a
   * sink needs one). Hot path: two compares when no one subscribed.
   */
  wants(type: string): boolean {
    return this.#anyType > 0 || (this.#typeRefs.size > 0 && this.#typeRefs.has(type));
  }

  get size(): number {
    return this.#subs.size;
  }

  /** Hot path: offers an event (and its line, if made) to every subscriber. Costs nothing when there are none. */
  publish(ev: OutputEvent, line?: string): void {
    if (this.#subs.size === 0) return;
    for (const s of this.#subs.values()) {
      if (!s.match(ev)) continue;
      if (s.queue.length >= s.max) {
        s.queueFull++;
        continue;
      }
      s.queue.push({ ev, line });
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
      s.deliver(batch);
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
