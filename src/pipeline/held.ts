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
}

/** A record kept as bytes: the header's fields, and where its bytes are (`b` and `v` view the same memory). */
export class HeldRecord {
  readonly type: string;
  readonly ktimeNs: number;
  readonly pid: number;
  readonly tid: number;
  readonly cgroupId: number;
  readonly kind: HeldKind;
  readonly b: Uint8Array;
  readonly v: DataView;
  readonly off: number;
  readonly len: number;

  constructor(type: string, ktimeNs: number, pid: number, tid: number, cgroupId: number, kind: HeldKind, b: Uint8Array, v: DataView, off: number, len: number) {
    this.type = type;
    this.ktimeNs = ktimeNs;
    this.pid = pid;
    this.tid = tid;
    this.cgroupId = cgroupId;
    this.kind = kind;
    this.b = b;
    this.v = v;
    this.off = off;
    this.len = len;
  }

  /** The event object (decoded from the copy: the same bytes the ring held). */
  decode(): ReturnType<RecordDecoder> {
    return this.kind.decode(this.v, this.off, this.len);
  }
}

/** Writes a held record's members: the pipeline's `members` callback for held records. */
export const heldMembers = (r: HeldRecord, w: ByteLine): void => r.kind.bytes(r, w);

/**
 * Where held records' bytes are copied: chunks filled one after the other, never reused. A chunk is freed
 * by the garbage collector once no record in it is referenced, so memory follows what the reorder window
 * holds (bounded there), and a copy costs one typed-array set, not an allocation.
 */
export class RecordArena {
  readonly #chunkBytes: number;
  #b: Uint8Array;
  #v: DataView;
  #w: Int32Array;
  #pos = 0;
  /** The source view last copied from, as 32-bit words from its buffer's start (see #copy). */
  #srcView: DataView | undefined;
  #srcWords: Int32Array<ArrayBufferLike> = new Int32Array(0);

  constructor(chunkBytes = 1 << 20) {
    this.#chunkBytes = (chunkBytes + 7) & ~7; // whole 8-byte slots: a copy rounded up to words stays inside
    this.#b = new Uint8Array(this.#chunkBytes);
    this.#v = new DataView(this.#b.buffer);
    this.#w = new Int32Array(this.#b.buffer);
  }

  /**
   * Copies v[o, o+len) to the chunk at `at` (8-aligned). Ring records start 8-aligned, so the copy goes a
   * word at a time, rounded up to whole words (the chunk's slots are rounded up to 8): a third cheaper than
   * typed-array set() of a subarray, and the subarray was a fifth of what the pipeline allocated.
   */
  #copy(v: DataView, o: number, len: number, at: number): void {
    const from = v.byteOffset + o;
    const words = (len + 3) >> 2;
    if ((from & 3) === 0 && o + words * 4 <= v.byteLength) {
      if (v !== this.#srcView) {
        this.#srcView = v;
        this.#srcWords = new Int32Array(v.buffer, 0, v.buffer.byteLength >> 2);
      }
      const src = this.#srcWords;
      const dst = this.#w;
      const s = from >> 2;
      const d = at >> 2;
      for (let i = 0; i < words; i++) dst[d + i] = src[s + i]!;
    } else this.#b.set(viewBytes(v).subarray(o, o + len), at);
  }

  /** Copies record [o, o+len) of the ring view `v` and keeps it as a record of `type` and `kind`. */
  hold(type: string, kind: HeldKind, v: DataView, o: number, len: number): HeldRecord {
    if (this.#pos + len > this.#b.length) {
      this.#b = new Uint8Array(Math.max(this.#chunkBytes, (len + 7) & ~7));
      this.#v = new DataView(this.#b.buffer);
      this.#w = new Int32Array(this.#b.buffer);
      this.#pos = 0;
    }
    const at = this.#pos;
    this.#copy(v, o, len, at);
    this.#pos = at + ((len + 7) & ~7);
    const hv = this.#v;
    return new HeldRecord(
      type,
      u64(hv, at + EVENT_HEADER.ktime_ns.offset),
      hv.getUint32(at + EVENT_HEADER.pid.offset, true),
      hv.getUint32(at + EVENT_HEADER.tid.offset, true),
      u64(hv, at + EVENT_HEADER.cgroup_id.offset),
      kind,
      this.#b,
      hv,
      at,
      len,
    );
  }
}

/** A record read off the ring: an event object, or a record held as bytes (both go through the reorder window). */
export type ReadRecord = Decoded | HeldRecord;
