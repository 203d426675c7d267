// Records kept as bytes between the ring and the line. File and network events are nine in ten of what a
// busy host sends, and decoding one into an object (twenty to thirty fields, a string per path or address)
// only for the object to be serialised and dropped cost more than anything else on its way (bench/pipeline).
// Records of a held kind are checked as their decoder checks them, copied out of the ring into an arena (the
// ring slot is reused once the drain returns, and the reorder window keeps records past that), and written
// to the line straight from their bytes; they are decoded into objects only for those who read objects
// (subscribers, sinks without bytes, events held for enrichment).
import { EVENT_HEADER } from '../events/layout.generated.ts';
import { u64, viewBytes, type DecodeResult } from '../events/decode.ts';
import type { ByteLine } from './json-bytes.ts';
import type { Decoded, RecordDecoder } from './pipeline.ts';

/** How records of one opcode are kept as bytes. */
export interface HeldKind {
  /** The output type of a record, or why it cannot be decoded: exactly what `decode` refuses. */
  typeOf(v: DataView, o: number, len: number): DecodeResult<string>;
  /** The event object, for those who need one. */
  decode: RecordDecoder;
  /**
   * Writes the event's own members (',"k":v…') into a line from the record's bytes: exactly what the event
   * type's OutputShaper.bytes writes for decode()'s event (test/unit/pipeline-held.test.ts).
   */
  bytes(r: HeldRecord, w: ByteLine): void;
  /**
   * One of the event's own members read from the record's bytes, exactly what the type's shaper puts in the
   * event's fields under `key` (undefined: not there), for the rules' guards (record-members.ts).
   */
  member(r: HeldRecord, key: string): unknown;
  /**
   * The kind of entry native/lines.c writes this kind's lines as (its ENTRY_*), undefined: none (lines of
   * this kind are the JavaScript writer's alone).
   */
  lineEntry?: number;
}

/**
 * A record kept as bytes: the header's fields, and where its bytes are (`b` and `v` view the same memory).
 * The arena reuses both the object and its bytes once it is released (RecordArena.release): whoever holds
 * one keeps it no longer than until then.
 */
export class HeldRecord {
  type = '';
  ktimeNs = 0;
  pid = 0;
  tid = 0;
  cgroupId = 0;
  kind: HeldKind;
  b: Uint8Array;
  v: DataView;
  off = 0;
  len = 0;
  /** The arena chunk the bytes are in. */
  chunk: ArenaChunk;

  constructor(kind: HeldKind, chunk: ArenaChunk) {
    this.kind = kind;
    this.chunk = chunk;
    this.b = chunk.b;
    this.v = chunk.v;
  }

  /** The event object (decoded from the copy: the same bytes the ring held). */
  decode(): ReturnType<RecordDecoder> {
    return this.kind.decode(this.v, this.off, this.len);
  }
}

/** Writes a held record's members: the pipeline's `members` callback for held records. */
export const heldMembers = (r: HeldRecord, w: ByteLine): void => r.kind.bytes(r, w);

/** A piece of the arena's memory, and how many records held in it are not released yet. */
export class ArenaChunk {
  readonly b: Uint8Array;
  readonly v: DataView;
  readonly w: Int32Array;
  live = 0;
  /** Where `b`'s memory is, for the native line writer (native-lines.ts), once it asked; NaN until then. */
  addr = NaN;

  constructor(bytes: number) {
    this.b = new Uint8Array(bytes);
    this.v = new DataView(this.b.buffer);
    this.w = new Int32Array(this.b.buffer);
  }
}

/** Spare chunks kept for reuse: the reorder window holds records of a few chunks at most. */
const SPARE_CHUNKS = 4;
/** Released record objects kept for reuse. */
const SPARE_RECORDS = 4096;

/**
 * Where held records' bytes are copied: chunks filled one after the other. A chunk whose records have all
 * been released (release(), which the pipeline calls once a record's line is written or its event decoded)
 * is filled again, and released record objects are reused: a stream of held records allocates nothing (a new
 * 1 MiB chunk is a zeroed allocation whose pages fault in one by one, and a record object was garbage per
 * event; reusing both took ~80 ns per event off bench/pipeline's replay, in paired runs). Records never
 * released (a caller that keeps them) are left to the garbage collector, chunk and all.
 */
export class RecordArena {
  readonly #chunkBytes: number;
  #cur: ArenaChunk;
  #pos = 0;
  readonly #spare: ArenaChunk[] = [];
  readonly #records: HeldRecord[] = [];
  /** The source view last copied from, as 32-bit words from its buffer's start (see #copy). */
  #srcView: DataView | undefined;
  #srcWords: Int32Array<ArrayBufferLike> = new Int32Array(0);

  constructor(chunkBytes = 1 << 20) {
    this.#chunkBytes = (chunkBytes + 7) & ~7; // whole 8-byte slots: a copy rounded up to words stays inside
    this.#cur = new ArenaChunk(this.#chunkBytes);
  }

  /**
   * Copies v[o, o+len) to chunk `c` at `at` (8-aligned). Ring records start 8-aligned, so the copy goes a
   * word at a time, rounded up to whole words (the chunk's slots are rounded up to 8): a third cheaper than
   * typed-array set() of a subarray, and the subarray was a fifth of what the pipeline allocated.
   */
  #copy(v: DataView, o: number, len: number, c: ArenaChunk, at: number): void {
    const from = v.byteOffset + o;
    const words = (len + 3) >> 2;
    if ((from & 3) === 0 && o + words * 4 <= v.byteLength) {
      if (v !== this.#srcView) {
        this.#srcView = v;
        this.#srcWords = new Int32Array(v.buffer, 0, v.buffer.byteLength >> 2);
      }
      const src = this.#srcWords;
      const dst = c.w;
      const s = from >> 2;
      const d = at >> 2;
      for (let i = 0; i < words; i++) dst[d + i] = src[s + i]!;
    } else c.b.set(viewBytes(v).subarray(o, o + len), at);
  }

  /** A chunk with room for `len` bytes from its start: a spare one, else a new one. */
  #next(len: number): void {
    const old = this.#cur;
    if (old.live === 0 && old.b.length === this.#chunkBytes && this.#spare.length < SPARE_CHUNKS) this.#spare.push(old);
    const spare = len <= this.#chunkBytes ? this.#spare.pop() : undefined;
    this.#cur = spare ?? new ArenaChunk(Math.max(this.#chunkBytes, (len + 7) & ~7));
    this.#pos = 0;
  }

  /** Copies record [o, o+len) of the ring view `v` and keeps it as a record of `type` and `kind`. */
  hold(type: string, kind: HeldKind, v: DataView, o: number, len: number): HeldRecord {
    if (this.#pos + len > this.#cur.b.length) this.#next(len);
    const c = this.#cur;
    const at = this.#pos;
    this.#copy(v, o, len, c, at);
    this.#pos = at + ((len + 7) & ~7);
    c.live++;
    const hv = c.v;
    const r = this.#records.pop() ?? new HeldRecord(kind, c);
    r.type = type;
    r.ktimeNs = u64(hv, at + EVENT_HEADER.ktime_ns.offset);
    r.pid = hv.getUint32(at + EVENT_HEADER.pid.offset, true);
    r.tid = hv.getUint32(at + EVENT_HEADER.tid.offset, true);
    r.cgroupId = u64(hv, at + EVENT_HEADER.cgroup_id.offset);
    r.kind = kind;
    r.chunk = c;
    r.b = c.b;
    r.v = hv;
    r.off = at;
    r.len = len;
    return r;
  }

  /**
   * `r` is done with: its bytes and the object itself may be reused by the next hold(). Only for records of
   * this arena, once each; nothing may read `r` afterwards.
   */
  release(r: HeldRecord): void {
    const c = r.chunk;
    if (--c.live === 0 && c !== this.#cur && c.b.length === this.#chunkBytes && this.#spare.length < SPARE_CHUNKS) this.#spare.push(c);
    if (this.#records.length < SPARE_RECORDS) this.#records.push(r);
  }
}

/** A record read off the ring: an event object, or a record held as bytes (both go through the reorder window). */
export type ReadRecord = Decoded | HeldRecord;
