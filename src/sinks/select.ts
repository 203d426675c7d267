// A sink's selection: the event types it takes (`types`) and, for alerts, the lowest priority it takes
// (`minPriority`), set on any sink: alerts of warning and worse to a chat webhook, everything to the file.
// SelectingSink wraps the configured sink and hands it only what it selects; what it leaves out is counted
// as `skipped` (part of `received`, not a drop), so that every sink's account still balances.
import { OUTPUT_EVENT_TYPES, unknownTypes } from '../pipeline/event-types.ts';
import type { LineMeta, OutputEvent, Sink, SinkStats } from '../pipeline/types.ts';
import { PRIORITIES, priorityOf, type Priority } from '../rules/priorities.ts';
import { invalid, type Raw } from './options.ts';

export interface SinkSelection {
  /** Event types the sink takes; undefined: every type. */
  types?: string[];
  /** Alerts below this priority are left out (other events are not alerts: `types` selects them). */
  minPriority?: Priority;
}

/**
 * Splits the selection off a sink's raw options (which its own resolver checks) and validates it.
 * Undefined: the sink takes everything. @throws InvalidArgumentError naming the field.
 */
export function takeSelection(opts: Raw, path: string): { selection: SinkSelection | undefined; rest: Raw } {
  const { types, minPriority, ...rest } = opts;
  const sel: SinkSelection = {};
  if (types !== undefined) {
    if (!Array.isArray(types) || !types.length || !types.every((t) => typeof t === 'string')) invalid(`${path}.types`, 'must be a non-empty list of event types');
    const why = unknownTypes(types as string[], OUTPUT_EVENT_TYPES);
    if (why) invalid(`${path}.types`, why);
    sel.types = [...new Set(types as string[])];
  }
  if (minPriority !== undefined) {
    const p = priorityOf(minPriority);
    if (!p) invalid(`${path}.minPriority`, `must be one of ${PRIORITIES.join(', ')}, got ${JSON.stringify(minPriority)}`);
    if (sel.types && !sel.types.includes('alert')) invalid(`${path}.minPriority`, 'selects alerts, but types leaves alerts out: add "alert" to types, or drop minPriority');
    sel.minPriority = p;
  }
  return { selection: sel.types || sel.minPriority ? sel : undefined, rest };
}

/** The sink with its selection applied; the sink itself when it takes everything. */
export function selecting(sink: Sink, sel: SinkSelection | undefined): Sink {
  return sel ? new SelectingSink(sink, sel) : sink;
}

/**
 * Hands `inner` the events its selection takes. It keeps inner's name and what inner offers (lines as
 * strings or bytes, room, reopen), but not in-place writing: a line placed in inner's queue could not be
 * taken back once it turned out to be left out.
 */
export class SelectingSink implements Sink {
  readonly name: string;
  readonly inner: Sink;
  readonly #types: ReadonlySet<string> | undefined;
  /** Index in PRIORITIES of the lowest priority taken (PRIORITIES runs from the worst down). */
  readonly #maxRank: number;
  #skipped = 0;
  readonly writeLine?: (line: string, meta: LineMeta) => void;
  readonly writeBytes?: (buf: Uint8Array, start: number, end: number, meta: LineMeta) => void;
  readonly room?: () => number;
  readonly reopen?: () => Promise<void>;
  readonly startAfter?: (done: Promise<void>) => void;

  constructor(inner: Sink, sel: SinkSelection) {
    this.inner = inner;
    this.name = inner.name;
    this.#types = sel.types ? new Set(sel.types) : undefined;
    this.#maxRank = sel.minPriority ? PRIORITIES.indexOf(sel.minPriority) : PRIORITIES.length;
    // Only what inner has: the pipeline decides by their presence how it hands lines over.
    if (inner.writeLine) {
      const wl = inner.writeLine.bind(inner);
      this.writeLine = (line, meta) => (this.#takes(meta.type, meta.priority) ? wl(line, meta) : this.#skipped++);
    }
    if (inner.writeBytes) {
      const wb = inner.writeBytes.bind(inner);
      this.writeBytes = (buf, start, end, meta) => (this.#takes(meta.type, meta.priority) ? wb(buf, start, end, meta) : this.#skipped++);
    }
    if (inner.room) this.room = inner.room.bind(inner);
    if (inner.reopen) this.reopen = inner.reopen.bind(inner);
    if (inner.startAfter) this.startAfter = inner.startAfter.bind(inner);
  }

  #takes(type: string, priority: string | undefined): boolean {
    if (this.#types && !this.#types.has(type)) return false;
    // An alert of an unknown priority is taken: leaving it out unseen would be worse than one alert too many.
    if (type === 'alert' && priority !== undefined) {
      const rank = PRIORITIES.indexOf(priority as Priority);
      if (rank > this.#maxRank) return false;
    }
    return true;
  }

  write(ev: OutputEvent, line: string): void {
    if (this.#takes(ev.type, typeof ev.priority === 'string' ? ev.priority : undefined)) this.inner.write(ev, line);
    else this.#skipped++;
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  stats(): SinkStats {
    const s = this.inner.stats();
    return { ...s, received: s.received + this.#skipped, skipped: this.#skipped };
  }
}
