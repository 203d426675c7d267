// The event pipeline, kernel to sinks, on the main thread:
//   ring record -> decode (by opcode) -> reorder window -> state updates (process cache, containers)
//   -> enrich (process, parent, ancestry, container, pod) -> route (subscribers) -> sinks.
// Records of a held kind (file and network events, see held.ts) are checked instead of decoded, and cross the reorder
// window as bytes: when every sink takes bytes and no one reads objects, their line is written from those
// bytes; otherwise they are decoded after the window, into the very object the decoder makes.
// Every stage counts what it received, passed on and dropped by reason, so that for every record the
// kernel handed over, one counter says where it went: records = decode errors + unknown opcodes + internal
// (state-only records) + filtered types + emitted + still buffered. Nothing on this path throws or blocks:
// sinks and subscribers only enqueue.
import type { ContainerResolver, ContainerLifecycleEvent } from '../containers/resolver.ts';
import { isDecodeError, opcodeOf, type DecodeResult } from '../events/decode.ts';
import type { CgroupEvent, EventBase, ProcessEvent } from '../events/types.ts';
import type { ProcessCache } from '../process/cache.ts';
import { bootNowNs } from './clock.ts';
import { containerParts, Enricher, releaseParts, type EnrichContext } from './enrich.ts';
import { HeldRecord, heldMembers, RecordArena, type HeldKind, type ReadRecord } from './held.ts';
import { ByteLine } from './json-bytes.ts';
import { LineBatch, linesLib, type LineTarget } from './native-lines.ts';
import { nameBytes } from './record-bytes.ts';
import { RecordMembers } from './record-members.ts';
import { ReorderBuffer } from './reorder.ts';
import type { Router } from './router.ts';
import { lineMetaOf, newLineMeta, type LineMeta, type OutputEvent, type Sink } from './types.ts';

/** A decoded record: any event with a `type`. */
export type Decoded = EventBase & { type: string };

/** A held record decoded again. It passed the decoder's own checks when it was held: a failure is a bug (counted as failed). */
function decodeHeld(rec: HeldRecord): Decoded {
  const d = rec.decode();
  if (isDecodeError(d)) throw new Error(`held ${rec.type} record no longer decodes: ${d.decodeError}`);
  return d;
}

export type RecordDecoder = (v: DataView, off: number, len: number) => DecodeResult<Decoded>;
/**
 * Event-specific output fields of a decoded event; undefined: the event only updates state. The fields must
 * not be named like the members enrichment writes (type, time, ktimeNs, process, parent, ancestors,
 * container, pod), and should hold no undefined values (JSON leaves them out anyway; V8 serialises objects
 * without them about 3× faster). Given `into`, the fields are added to it, in the same order, and it is
 * returned: an event object built without an object of fields between.
 */
export type OutputShaper = ((ev: Decoded, into?: Record<string, unknown>) => Record<string, unknown> | undefined) & {
  /**
   * Optional: the same fields as JSON members (',"k":v…', '' for none: exactly what JSON.stringify of the
   * fields object holds), for events no one needs as an object; undefined when the event only updates
   * state. Saves building the fields object only to serialise it.
   */
  json?: (ev: Decoded) => string | undefined;
  /**
   * Optional, for shapers whose events always reach the output (json never returns undefined): writes the
   * same members as UTF-8 bytes into a line (see json-bytes.ts), for sinks that take bytes.
   */
  bytes?: (ev: Decoded, w: ByteLine) => void;
  /** Every member name the shaper may put out (the rules' field checks, src/rules/fields.ts). */
  keys?: readonly string[];
};

/** The members of a container_started or container_stopped event besides the common ones (containerEvent). */
export const CONTAINER_EVENT_KEYS = ['existing', 'cgroupPath'] as const;

export interface PipelineCounters {
  /** Records read from the ring (or fed by a fallback source). */
  records: number;
  decoded: number;
  /**
   * decodeError: records the decoders refused; unknownOpcode: records of no known kind; filtered: event
   * types not asked for; failed: records whose state update, enrichment or routing threw (a bug: the first
   * error is logged, see onError), counted so that one bad record costs one event, not the agent.
   */
  dropped: { decodeError: number; unknownOpcode: number; filtered: number; failed: number };
  /**
   * Times the bound on held events released a container's events before its enrichment finished. Not a
   * drop: those events are emitted (and counted in `emitted`), only without waiting any longer.
   */
  heldOverflow: number;
  /** Records that only update state (cgroup events, disabled process event types). */
  internal: number;
  /** Output events built and handed to the router and sinks. */
  emitted: number;
  /** Synthetic events (container lifecycle) emitted. */
  synthetic: number;
  /** Records inside the reorder window or held for enrichment right now. */
  buffered: number;
  reorder: { late: number; reordered: number };
  byType: Record<string, number>;
}

export interface PipelineOptions {
  /** Decoder per opcode. */
  decoders: Map<number, RecordDecoder>;
  /**
   * Opcodes whose records are held as bytes (held.ts), before `decoders`. Only for events that update no
   * state (the state stage never sees them as objects when their lines are written from bytes).
   */
  held?: Map<number, HeldKind>;
  /** Output fields per event type. */
  outputs: Map<string, OutputShaper>;
  cache: ProcessCache;
  containers?: ContainerResolver;
  enrich: Omit<EnrichContext, 'cache' | 'container' | 'containerGeneration'>;
  router: Router;
  sinks: Sink[];
  /** Output event types to emit (others are counted as filtered). */
  types: Set<string>;
  reorderWindowMs: number;
  holdForEnrichmentMs: number;
  /** Sees every process event after the cache applied it (the agent's hooks). */
  onProcessEvent?: (ev: ProcessEvent) => void;
  /** Told of a record whose processing threw (counted in dropped.failed), with the event's type. */
  onError?: (err: unknown, type: string) => void;
}

const PROCESS_TYPES = new Set(['exec', 'fork', 'exit', 'creds', 'comm']);

/** Puts fields made earlier (Pipeline.#guarded) on an event object, in their order: as their shaper would. */
const assignFields = (fields: Record<string, unknown>, into: Record<string, unknown>): void => void Object.assign(into, fields);

export class Pipeline {
  readonly #o: PipelineOptions;
  readonly #ctx: EnrichContext;
  readonly #enricher: Enricher;
  /** Some sink takes event objects (it has no writeLine): every event needs one. Per sink list length. */
  #sinksNeedEvents = true;
  /** Every sink takes bytes (writeBytes): lines are written as bytes, never as strings. */
  #sinksTakeBytes = false;
  /** The only sink, when it lets lines be written in place (Sink.placeLine): no copy per line. */
  #inPlace: Sink | undefined;
  #sinkCount = -1;
  /**
   * File events' lines batched for native/lines.c (native-lines.ts), when the only sink takes lines in place
   * (placeLines) and the library is built; every other line joins the same batch (raw), so order holds.
   */
  #batch: LineBatch | undefined;
  /** The batch, made the first time a sink list allowed one (kept: its memory is reused). */
  #lineBatch: LineBatch | undefined;
  #flushQueued = false;
  readonly #flushTask = (): void => {
    this.#flushQueued = false;
    this.#flushLines();
  };
  /** Set by #process when the batch took the held record (released once its line is written). */
  #kept = false;
  readonly #target: LineTarget = {
    place: (room) => this.#inPlace!.placeLines!(room),
    commit: (ends, n) => this.#inPlace!.commitLines!(ends, n),
    writeEntry: (i) => this.#writeEntry(i),
    name: nameBytes,
  };
  /** A held record's members for the rules' guards, read from its bytes (pointed at each record in turn). */
  readonly #members = new RecordMembers();
  /**
   * The type of the last held record found wanted (in `types`): records come in runs of one type, so a run
   * costs a string compare per record, not a lookup in the set (a hash lookup, ~2 % of the replay's CPU).
   * Cleared when the types change (retarget).
   */
  #wantedType: string | undefined;
  /** Where lines are written as bytes, one at a time. */
  readonly #bytes = new ByteLine();
  /**
   * Where #writeEntry writes the lines native/lines.c leaves to JavaScript: not #bytes, which may hold the
   * line being emitted when a full batch is written (#emitBytes), still to be handed to line subscribers.
   */
  readonly #entryBytes = new ByteLine();
  /** Where held records are copied out of the ring. */
  readonly #arena = new RecordArena();
  /**
   * `held` and `decoders` by opcode, as arrays: the ring handler looks one up for every record, and an
   * element load is cheaper than a Map lookup (a call). Opcodes past the arrays' end are looked up in the maps.
   */
  readonly #heldByOp: (HeldKind | undefined)[];
  readonly #decoderByOp: (RecordDecoder | undefined)[];
  readonly #reorder: ReorderBuffer<ReadRecord>;
  readonly #c: PipelineCounters = {
    records: 0,
    decoded: 0,
    dropped: { decodeError: 0, unknownOpcode: 0, filtered: 0, failed: 0 },
    heldOverflow: 0,
    internal: 0,
    emitted: 0,
    synthetic: 0,
    buffered: 0,
    reorder: { late: 0, reordered: 0 },
    byType: {}, // counted in #byType; counters() fills it
  };
  /** Events of containers whose enrichment is pending, per container, in order. */
  readonly #held = new Map<string, { until: number; evs: OutputEvent[] }>();
  /** Held events made from records (counted in `buffered`); synthetic ones are marked in #heldSynthetic. */
  #heldCount = 0;
  readonly #heldSynthetic = new WeakSet<OutputEvent>();
  #holdTimer: NodeJS.Timeout | undefined;
  readonly handleRecord: (v: DataView, off: number, len: number) => void;
  /** The LineMeta of events emitted from their object (held, synthetic): see #emit. */
  readonly #eventMeta = newLineMeta();

  constructor(o: PipelineOptions) {
    this.#o = o;
    this.#heldByOp = byOpcode(o.held);
    this.#decoderByOp = byOpcode(o.decoders);
    this.#ctx = {
      ...o.enrich,
      cache: o.cache,
      container: (id) => o.containers?.byCgroupId(id),
      containerGeneration: () => (o.containers ? o.containers.generation : 0),
    };
    this.#enricher = new Enricher(this.#ctx);
    // The reorder window releases events from the ring handler and from its own timer: a throw here must
    // cost one counted event, never an uncaught exception on a timer (which would end the agent).
    // A held record is done with once processed: its line is written or its event decoded (decoded events
    // copy what they need), so the arena may reuse it.
    this.#reorder = new ReorderBuffer<ReadRecord>(o.reorderWindowMs, (ev) => {
      this.#kept = false;
      try {
        this.#process(ev);
      } catch (err) {
        this.#c.dropped.failed++;
        this.#o.onError?.(err, ev.type);
      } finally {
        if (ev instanceof HeldRecord && !this.#kept) this.#arena.release(ev);
      }
      // Between two events: subscribers that take early batches get theirs (Router.subscribe's `batch`).
      o.router.deliverDue();
    });
    // Bound once: the ring reader calls this for every record.
    this.handleRecord = (v, off, len) => this.#onRecord(v, off, len);
  }

  #onRecord(v: DataView, off: number, len: number): void {
    const c = this.#c;
    c.records++;
    const op = opcodeOf(v, off, len);
    if (op < 0) {
      c.dropped.decodeError++; // shorter than a header: not even an opcode to go by
      return;
    }
    const held = op < OPCODE_SLOTS ? this.#heldByOp[op] : this.#o.held?.get(op);
    if (held) {
      const type = held.typeOf(v, off, len);
      if (typeof type !== 'string') {
        c.dropped.decodeError++;
        return;
      }
      c.decoded++;
      this.#reorder.push(this.#arena.hold(type, held, v, off, len));
      return;
    }
    const decode = op < OPCODE_SLOTS ? this.#decoderByOp[op] : this.#o.decoders.get(op);
    if (!decode) {
      c.dropped.unknownOpcode++;
      return;
    }
    const ev = decode(v, off, len);
    if (isDecodeError(ev)) {
      c.dropped.decodeError++;
      return;
    }
    c.decoded++;
    this.#reorder.push(ev as Decoded);
  }

  /**
   * The event types to emit from now on, with their shapers (a configuration reload). Records still in the
   * reorder window or held for enrichment are emitted, or counted as filtered, under the new types: the
   * agent drains the pipeline first.
   */
  retarget(types: Set<string>, outputs: Map<string, OutputShaper>): void {
    this.#o.types = types;
    this.#o.outputs = outputs;
    this.#wantedType = undefined;
  }

  /**
   * The sinks every later event goes to (a reload added or removed some). Returns the events made so far
   * (emitted + synthetic): a sink that joins now receives the events after that many.
   */
  setSinks(sinks: Sink[]): number {
    this.#flushLines(); // the batch's lines are the old sink's
    this.#o.sinks = sinks;
    this.#sinkCount = -1; // what the sinks take is worked out again at the next event
    return this.#c.emitted + this.#c.synthetic;
  }

  /** Feeds an already decoded event (the eBPF-less process source) through the same stages. */
  feed(ev: Decoded): void {
    this.#c.records++;
    this.#c.decoded++;
    this.#reorder.push(ev);
  }

  #process(rec: ReadRecord): void {
    const o = this.#o;
    const c = this.#c;
    if (o.sinks.length !== this.#sinkCount) { // a new list comes through setSinks, which resets the count
      this.#sinkCount = o.sinks.length;
      this.#sinksNeedEvents = o.sinks.some((s) => !s.writeLine);
      this.#sinksTakeBytes = o.sinks.length > 0 && o.sinks.every((s) => s.writeBytes);
      this.#inPlace = o.sinks.length === 1 && o.sinks[0]!.placeLine && o.sinks[0]!.commitPlaced ? o.sinks[0] : undefined;
      const l = this.#inPlace?.placeLines && this.#inPlace.commitLines ? linesLib() : null;
      this.#batch = l ? (this.#lineBatch ??= new LineBatch(l)) : undefined;
    }
    // The event object only when someone reads it: subscribers of its type, sinks without writeLine, the
    // hold below.
    const hold = o.holdForEnrichmentMs > 0;
    const objects = hold || this.#sinksNeedEvents;
    let withEvent: boolean;
    let ev: Decoded;
    if (rec instanceof HeldRecord) {
      withEvent = objects || o.router.wants(rec.type);
      if (rec.type !== this.#wantedType) {
        if (!o.types.has(rec.type)) {
          c.dropped.filtered++;
          return;
        }
        this.#wantedType = rec.type;
      }
      if (!objects && this.#sinksTakeBytes) {
        // The line as bytes, as if no one subscribed; object subscribers (rules) get the object alone, decoded
        // first so that nothing can fail once the line is out, line subscribers (SSE) the line's bytes.
        let d: Decoded | undefined;
        let fields: boolean | undefined;
        if (withEvent) {
          // The guards read the members they need from the record's bytes: nothing decoded for an event
          // they turn down (nearly all of them); one they let through is decoded and built as before.
          const guard = o.router.guardFor(rec.type);
          fields = !guard || guard(this.#members.of(rec));
          if (fields) d = decodeHeld(rec);
        }
        const batch = this.#batch;
        if (batch && !fields && rec.kind.lineEntry && !o.router.wantsLines(rec.type)) {
          let r = this.#enricher.batchLine(batch, rec);
          if (r === 'full') {
            this.#flushLines();
            batch.makeRoom();
            r = this.#enricher.batchLine(batch, rec);
          }
          if (r === 'added') {
            this.#kept = true;
            c.emitted++;
            this.#countType(rec.type);
            this.#batched();
            return;
          }
        }
        const w = this.#startBytes();
        this.#enricher.writeLine(w, rec.type, rec.ktimeNs, rec.pid, rec.tid, rec.cgroupId, heldMembers, rec);
        this.#emitBytes(rec.type, w);
        if (fields || o.router.wantsLines(rec.type)) this.#publishWritten(w, fields && d, fields);
        return;
      }
      ev = decodeHeld(rec);
    } else {
      ev = rec;
      withEvent = objects || o.router.wants(ev.type);
    }
    // 1. state
    if (PROCESS_TYPES.has(ev.type)) {
      o.cache.apply(ev as ProcessEvent); // scrubs exec events in place
      o.onProcessEvent?.(ev as ProcessEvent);
    } else if (ev.type === 'cgroup') {
      o.containers?.handleCgroupEvent(ev as CgroupEvent);
      c.internal++;
      return;
    }
    // 2. is it wanted?
    if (!o.types.has(ev.type)) {
      if (PROCESS_TYPES.has(ev.type)) c.internal++;
      else c.dropped.filtered++;
      return;
    }
    // 3. shape and enrich. Without an event object, the fields go straight to JSON when the shaper can do that.
    const shaper = o.outputs.get(ev.type);
    const en = this.#enricher;
    if (!objects && this.#sinksTakeBytes && shaper?.bytes) {
      const w = this.#startBytes();
      en.writeLine(w, ev.type, ev.ktimeNs, ev.pid, ev.tid, ev.cgroupId, shaper.bytes, ev);
      this.#emitBytes(ev.type, w);
      const fields = withEvent && this.#guarded(ev, shaper);
      if (fields || o.router.wantsLines(ev.type)) this.#publishWritten(w, fields && ev, fields, shaper);
    } else if (!withEvent && shaper?.json) {
      const members = shaper.json(ev);
      if (members === undefined) c.internal++;
      else {
        en.buildLine(ev.type, ev.ktimeNs, ev.pid, ev.tid, ev.cgroupId, members);
        this.#emit(ev.type, undefined, en.line);
      }
    } else this.#build(ev, shaper, withEvent, hold, objects);
    // The process's last event is out: its line parts go (releaseParts). The instance alive at the exit, not
    // byPid's newest: under pid reuse, byPid walks every exited instance still in its grace.
    if (ev.type === 'exit') releaseParts(o.cache.at(ev.pid, ev.ktimeNs));
  }

  /**
   * For an event whose type object subscribers take: whether they still want its object once their guards
   * (Router.guardFor: the rules') saw its own members. True: build it (no guard); its fields: build it from
   * these (a guard needed them made first); false: no subscriber takes it, no object is built (counted by
   * the router as declined).
   */
  #guarded(ev: Decoded, shaper = this.#o.outputs.get(ev.type)): Record<string, unknown> | boolean {
    const guard = this.#o.router.guardFor(ev.type);
    if (!guard || !shaper) return true;
    const fields = shaper(ev);
    if (!fields) return true; // not an event of the output (the object would not be built either)
    return guard(fields) ? fields : false;
  }

  /**
   * An event whose line `w` already went to the sinks as bytes, for subscribers: its object (when `ev` is
   * given: object subscribers take it) built from its fields (`fields`, or its shaper's), and the line's
   * bytes (for line subscribers, copied by the router). What it is about is the enricher's meta, as the
   * line just written left it; `w` holds the line until the next one is written (committed or not, a line
   * stays in place).
   */
  #publishWritten(w: ByteLine, ev: Decoded | false | undefined, fields: Record<string, unknown> | boolean | undefined, shaper = ev ? this.#o.outputs.get(ev.type) : undefined): void {
    const en = this.#enricher;
    let out: OutputEvent | undefined;
    if (ev && shaper) out = typeof fields === 'object' ? en.buildEvent(ev.type, ev.ktimeNs, ev.pid, ev.tid, ev.cgroupId, assignFields, fields) : en.buildEvent(ev.type, ev.ktimeNs, ev.pid, ev.tid, ev.cgroupId, shaper, ev);
    this.#o.router.publish(out, undefined, en.meta, w);
  }

  /**
   * #process's last step for events that need their object (or whose shaper writes no JSON): build, hold or
   * emit. Unless sinks or the hold need it (`objects`), the object is left out when the subscribers' guards
   * turn the event down (see #guarded).
   */
  #build(ev: Decoded, shaper: OutputShaper | undefined, withEvent: boolean, hold: boolean, objects: boolean): void {
    const fields = shaper?.(ev);
    if (!fields) {
      this.#c.internal++;
      return;
    }
    if (withEvent && !objects) {
      const guard = this.#o.router.guardFor(ev.type);
      if (guard && !guard(fields)) withEvent = false;
    }
    const en = this.#enricher;
    en.build(ev.type, ev.ktimeNs, ev.pid, ev.tid, ev.cgroupId, fields, withEvent);
    const out = en.event;
    // 4. hold while the container's metadata is on its way, if configured
    if (hold && out!.container) {
      if (out!.container.enrichment === 'pending') {
        this.#hold(out!);
        return;
      }
      // Enrichment finished since: what waited goes out first, so that a container's events stay in order.
      if (this.#held.has(out!.container.id)) this.#releaseHeld(out!.container.id);
    }
    this.#emit(ev.type, out, en.line);
  }

  /**
   * `out` is undefined only when no subscriber and no sink takes event objects (see #process). `meta` is
   * what the line is about: the enricher's, for the line it just made; for an event made earlier (held,
   * synthetic), taken from the event.
   */
  #emit(type: string, out: OutputEvent | undefined, line: string, synthetic = false, meta: LineMeta = this.#enricher.meta): void {
    this.#flushLines(); // lines batched before this one go first
    const c = this.#c;
    if (synthetic) c.synthetic++;
    else c.emitted++;
    this.#countType(type);
    this.#o.router.publish(out, line, meta);
    for (const s of this.#o.sinks) {
      if (s.writeLine) s.writeLine(line, meta);
      else s.write(out!, line);
    }
  }

  /**
   * Events emitted per type (counters().byType), as one cell per type. Events come in runs of one type: the
   * cell of the last type is kept, so a run costs a string compare per event, not a keyed store into a
   * dictionary (bench/pipeline).
   */
  readonly #byType = new Map<string, { n: number }>();
  #lastType: string | undefined;
  #lastTypeCell = { n: 0 };

  #countType(type: string): void {
    if (type !== this.#lastType) {
      let cell = this.#byType.get(type);
      if (!cell) this.#byType.set(type, (cell = { n: 0 }));
      this.#lastType = type;
      this.#lastTypeCell = cell;
    }
    this.#lastTypeCell.n++;
  }

  /**
   * Where the next line is written as bytes: in the line batch's raw area when lines are batched (added by
   * #emitBytes), else in place in the only sink's queue when it offers that, else in the line's own buffer.
   */
  #startBytes(): ByteLine {
    const w = this.#bytes;
    if (this.#batch) this.#batch.placeRaw(w);
    else if (this.#inPlace) this.#inPlace.placeLine!(w);
    else w.reset();
    return w;
  }

  /** #emit for a line written as bytes (every sink takes bytes, no one needs the event object). */
  #emitBytes(type: string, w: ByteLine): void {
    const c = this.#c;
    c.emitted++;
    this.#countType(type);
    const b = this.#batch;
    if (b) {
      if (!b.commitRaw(w)) {
        this.#flushLines();
        b.raw(w.buf, w.start, w.pos);
      }
      this.#batched();
    } else if (this.#inPlace && w.placed) this.#inPlace.commitPlaced!(w.pos - w.start);
    else for (const s of this.#o.sinks) s.writeBytes!(w.buf, w.start, w.pos, this.#enricher.meta);
  }

  #hold(out: OutputEvent, synthetic = false): void {
    const id = out.container!.id;
    let q = this.#held.get(id);
    if (!q) {
      q = { until: Date.now() + this.#o.holdForEnrichmentMs, evs: [] };
      this.#held.set(id, q);
    }
    q.evs.push(out);
    if (synthetic) this.#heldSynthetic.add(out);
    else this.#heldCount++;
    if (this.#heldCount > 100_000) {
      // Bounded: release the oldest container's events as they are.
      const [firstId] = this.#held.keys();
      this.#releaseHeld(firstId!);
      this.#c.heldOverflow++;
    }
    if (!this.#holdTimer) {
      this.#holdTimer = setTimeout(() => this.#checkHeld(), Math.max(5, this.#o.holdForEnrichmentMs / 4));
      this.#holdTimer.unref();
    }
  }

  #releaseHeld(id: string): void {
    const q = this.#held.get(id);
    if (!q) return;
    this.#held.delete(id);
    // Emitted with what is known now: enriched, or still pending if the runtime did not answer in time.
    const info = this.#o.containers?.find(id);
    const parts = info ? containerParts(info) : undefined;
    for (const ev of q.evs) {
      if (parts) {
        ev.container = parts.ref;
        if (parts.pod) ev.pod = parts.pod;
      }
      const synthetic = this.#heldSynthetic.has(ev);
      if (!synthetic) this.#heldCount--;
      this.#emit(ev.type, ev, JSON.stringify(ev), synthetic, lineMetaOf(ev, this.#eventMeta));
    }
  }

  #checkHeld(): void {
    this.#holdTimer = undefined;
    const now = Date.now();
    for (const [id, q] of [...this.#held]) {
      const info = this.#o.containers?.find(id);
      if (!info || info.enrichment !== 'pending' || now >= q.until) this.#releaseHeld(id);
    }
    if (this.#held.size) {
      this.#holdTimer = setTimeout(() => this.#checkHeld(), Math.max(5, this.#o.holdForEnrichmentMs / 4));
      this.#holdTimer.unref();
    }
  }

  /** A container appeared or went away: emitted as its own event when wanted. */
  containerEvent(ev: ContainerLifecycleEvent): void {
    if (!this.#o.types.has(ev.type)) return;
    const c = ev.container;
    const ref = { id: c.id, name: c.name, image: c.image, runtime: c.runtime, labels: c.labels, enrichment: c.enrichment };
    const out: OutputEvent = {
      type: ev.type,
      time: new Date().toISOString(),
      ktimeNs: bootNowNs(),
      container: ref,
      // Exactly CONTAINER_EVENT_KEYS (the compiler checks both ways), so the rules' catalog lists what is here.
      ...({ existing: c.existing || undefined, cgroupPath: c.cgroupPath } satisfies Record<(typeof CONTAINER_EVENT_KEYS)[number], unknown>),
    };
    if (c.pod?.uid) out.pod = { uid: c.pod.uid, name: c.pod.name || undefined, namespace: c.pod.namespace || undefined };
    // A container is found by its cgroup before its runtime has answered: when events wait for enrichment,
    // its start waits too (ahead of its events, in the same queue), and carries the name and image.
    if (ev.type === 'container_started' && c.enrichment === 'pending' && this.#o.holdForEnrichmentMs > 0) {
      this.#hold(out, true);
      return;
    }
    if (this.#held.has(c.id)) this.#releaseHeld(c.id); // a stop after events still waiting: they go first
    this.emitSynthetic(out);
  }

  /**
   * Emits an event that is not a kernel record (a container's start or stop, a rule's alert) to the
   * subscribers and sinks: counted as synthetic, apart from the records, so the record accounting stays exact.
   */
  emitSynthetic(out: OutputEvent): void {
    this.#emit(out.type, out, JSON.stringify(out), true, lineMetaOf(out, this.#eventMeta));
  }

  /**
   * Records the ring reader may take before the sinks would start dropping: the least room of the sinks that
   * say (Infinity when none does), less the events the pipeline holds already (reorder window, held for
   * enrichment), which go to those sinks first. Without that, a storm overflowed the file sink's queue by
   * about the reorder window's contents while the reader never went past the room (bench/storm V: ~1,300 of
   * 1 M lines).
   */
  sinkRoom(): number {
    let room = Infinity;
    for (const s of this.#o.sinks) if (s.room) room = Math.min(room, s.room());
    return room === Infinity ? room : Math.max(0, room - this.#holding);
  }

  /** Events the pipeline holds now (reorder window, held for enrichment, batched lines): they reach the sinks before any record read next. */
  get #holding(): number {
    return this.#reorder.buffered + this.#heldCount + (this.#lineBatch ? this.#lineBatch.n : 0);
  }

  /** An entry joined the batch: written now if the batch is full, else at the end of this turn. */
  #batched(): void {
    if (this.#lineBatch!.full) this.#flushLines();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushTask);
    }
  }

  /**
   * Writes the batched lines into the sink (LineBatch.flush) and gives their records back to the arena. A
   * throw (a bug) costs the batch's lines, counted as failed, never the agent: this runs from a microtask.
   */
  #flushLines(): void {
    const b = this.#lineBatch;
    if (!b || b.n === 0) return;
    const n = b.n;
    try {
      b.flush(this.#target);
    } catch (err) {
      this.#c.dropped.failed++;
      this.#o.onError?.(err, 'lines');
    } finally {
      for (let i = 0; i < n; i++) {
        const r = b.recs[i];
        if (r) {
          this.#arena.release(r);
          b.recs[i] = undefined;
        }
      }
    }
  }

  /** Entry i of the batch, written by the JavaScript writer into the sink (native/lines.c left it). */
  #writeEntry(i: number): void {
    const b = this.#lineBatch!;
    const s = this.#inPlace!;
    const w = this.#entryBytes;
    s.placeLine!(w);
    const f = b.fileEntry(i);
    if (f) this.#enricher.writeLineWith(w, f.rec.type, f.rec.ktimeNs, f.wallMs, f.proc, f.cont, heldMembers, f.rec);
    else w.raw(b.rawEntry(i));
    if (w.placed) s.commitPlaced!(w.pos - w.start);
    else s.writeBytes!(w.buf, w.start, w.pos, this.#enricher.meta);
  }

  /**
   * Whether leaving records in the ring until the full sinks have room delays someone who could take them
   * now (RingBufReaderOptions.holdsBack): a sink with room, a sink that does not say (a remote one), or a
   * stream subscriber. The rule engine does not count: it sees every record however late, and its alerts go
   * to these same sinks, which would drop them if the reader went past their room. A sink's room counts less
   * what the pipeline holds already (as in sinkRoom): the sink with a little room left, all of it promised to
   * the reorder window's events, is the full sink the reader waits for, not another one held back (the
   * agent-stalled-sink test: the reader went past a stalled file sink's room after 100 ms).
   */
  holdsBack(): boolean {
    const held = this.#holding;
    for (const s of this.#o.sinks) if (!s.room || s.room() > held) return true;
    return this.#o.router.streaming;
  }

  /** Releases everything buffered (reorder window, held events). */
  flush(): void {
    this.#reorder.flush();
    for (const id of [...this.#held.keys()]) this.#releaseHeld(id);
    this.#flushLines();
  }

  counters(): PipelineCounters {
    return {
      ...this.#c,
      dropped: { ...this.#c.dropped },
      buffered: this.#holding,
      reorder: { late: this.#reorder.stats.late, reordered: this.#reorder.stats.reordered },
      byType: Object.fromEntries([...this.#byType].map(([t, cell]) => [t, cell.n])),
    };
  }

  stop(): void {
    this.flush();
    if (this.#holdTimer) clearTimeout(this.#holdTimer);
  }
}

/** Opcodes kept in Pipeline's by-opcode arrays (vigil's are below 64). */
const OPCODE_SLOTS = 256;

/** The entries of `m` with keys below OPCODE_SLOTS, as a packed array indexed by key. */
function byOpcode<T>(m: Map<number, T> | undefined): (T | undefined)[] {
  const a = new Array<T | undefined>(OPCODE_SLOTS).fill(undefined);
  for (const [op, v] of m ?? []) if (op >= 0 && op < OPCODE_SLOTS) a[op] = v;
  return a;
}
