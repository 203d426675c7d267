// Pub/sub routing of output events (swoll's hub): subscribers (SSE clients, trace jobs, rules) each give a
// filter, compiled once at subscribe time into a predicate that checks the cheapest fields first, and get
// their own bounded queue, drained asynchronously in batches. A slow subscriber loses events (counted),
// it never slows the pipeline or other subscribers.
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
  dropped: number;
  queued: number;
}

export type Deliver = (batch: { ev: OutputEvent; line: string }[]) => void;

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
  readonly match: (ev: OutputEvent) => boolean;
  readonly deliver: Deliver;
  readonly max: number;
  queue: { ev: OutputEvent; line: string }[] = [];
  delivered = 0;
  dropped = 0;
  constructor(id: number, name: string, match: (ev: OutputEvent) => boolean, deliver: Deliver, max: number) {
    this.id = id;
    this.name = name;
    this.match = match;
    this.deliver = deliver;
    this.max = max;
  }
}

export class Router {
  readonly #subs = new Map<number, Subscriber>();
  #next = 1;
  #scheduled = false;
  readonly #maxQueue: number;

  constructor(maxQueue = 10_000) {
    this.#maxQueue = maxQueue;
  }

  /** Adds a subscriber; returns its id (for unsubscribe). Throws InvalidArgumentError for a bad filter. */
  subscribe(name: string, filter: EventFilter, deliver: Deliver, maxQueue = this.#maxQueue): number {
    const id = this.#next++;
    this.#subs.set(id, new Subscriber(id, name, compileFilter(filter), deliver, maxQueue));
    return id;
  }

  unsubscribe(id: number): void {
    this.#subs.delete(id);
  }

  get size(): number {
    return this.#subs.size;
  }

  /** Hot path: offers an event to every subscriber. Costs nothing when there are none. */
  publish(ev: OutputEvent, line: string): void {
    if (this.#subs.size === 0) return;
    for (const s of this.#subs.values()) {
      if (!s.match(ev)) continue;
      if (s.queue.length >= s.max) {
        s.dropped++;
        continue;
      }
      s.queue.push({ ev, line });
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#drain());
    }
  }

  #drain(): void {
    this.#scheduled = false;
    for (const s of this.#subs.values()) {
      if (!s.queue.length) continue;
      const batch = s.queue;
      s.queue = [];
      try {
        s.deliver(batch);
        s.delivered += batch.length;
      } catch {
        s.dropped += batch.length; // a failing subscriber loses its batch, counted
      }
    }
  }

  stats(): SubscriberStats[] {
    return [...this.#subs.values()].map((s) => ({ id: s.id, name: s.name, delivered: s.delivered, dropped: s.dropped, queued: s.queue.length }));
  }
}
