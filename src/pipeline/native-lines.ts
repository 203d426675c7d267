// The lines of file and network events, written by native/lines.c a batch at a time, straight into the only sink's queue.
//
// Writing a file event's JSON line in JavaScript was a third of what the pipeline spent per event
// (bench/pipeline): the time's digits, copies of the cached process and container parts, and the members
// from the record's bytes, each a run of typed-array stores with their checks. Here the pipeline decides per
// record what needs the agent's state, when the record leaves the reorder window, exactly as it does for a
// line it writes itself: which type (its head), which process part (the memo of the process the record is
// from, as of then) and which container part. Those are copied once into `frags` (per memo, not per line)
// and the record stays in its arena chunk; the line is an entry of the batch. At the end of the turn (a
// microtask) or when the batch is full, one call writes every entry's line into the sink's queue.
//
// Order: every other line the pipeline makes meanwhile (a process event's, a line written by the JavaScript
// writer) joins the batch too, as a raw entry (written into the batch's raw area, placeRaw), so the sink
// gets lines in the order the events were processed. Exactness: lines.c writes what the JavaScript writer would, byte for byte; what it
// does not write (an exotic path, a kill) comes back to the JavaScript writer (writeEntry), with the parts
// captured for that entry, not the state at flush time (test/unit/pipeline-held.test.ts compares both).
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { bootToEpochMs } from './clock.ts';
import type { HeldRecord } from './held.ts';
import type { ByteLine } from './json-bytes.ts';
import type { LineRoom } from './types.ts';

/** Entries per batch: a drain's worth of records in one call (the call costs about a microsecond). */
const BATCH_ENTRIES = 1024;
/** Memory for the entries' fragments; reset (with the names) once a flush finds it three quarters used. */
const FRAG_BYTES = 4 << 20;
/** Raw entries' bytes; emptied at every flush. */
const RAW_BYTES = 1 << 20;
/** Slots of the names table (lines.c's NAME_SLOTS: a power of two, 4 ints each). */
const NAME_SLOTS = 8192;
const DOUBLES = 3;
const INTS = 8;
/** A line the JavaScript writer made (lines.c's ENTRY_RAW; file and network entries: HeldKind.lineEntry). */
const ENTRY_RAW = 2;
/** Why lines.c stopped (its VIGIL_LINES_*). */
const DONE = 0;
const ROOM = 1;
const JS = 2;
const NAME = 3;

interface LinesLib {
  write: (out: Buffer, at: number, end: number, d: Float64Array, i: Int32Array, from: number, n: number, frags: Buffer, raws: Buffer, names: Int32Array, res: Int32Array, ends: Int32Array) => number;
  addr: (b: Uint8Array) => number;
}

let lib: LinesLib | null | undefined;

/** The library's path: build/native, made by `make build`; VIGIL_LINES_LIB overrides it. */
export function linesLibPath(): string {
  return process.env.VIGIL_LINES_LIB ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build/native/libvigil_lines.so');
}

/**
 * native/lines.c, loaded once; null when it is not built or VIGIL_NATIVE_LINES=0 (the JavaScript writer
 * then writes every line, as it does for sinks that are not alone or not in place).
 */
export function linesLib(): LinesLib | null {
  if (lib !== undefined) return lib;
  lib = null;
  if (process.env.VIGIL_NATIVE_LINES === '0') return lib;
  const p = linesLibPath();
  if (!fs.existsSync(p)) return lib;
  try {
    const so = koffi.load(p);
    lib = {
      write: so.func(
        'int32_t vigil_lines_write(uint8_t *out, int32_t at, int32_t end, double *doubles, int32_t *ints, int32_t from, int32_t n, uint8_t *frags, uint8_t *raws, int32_t *names, int32_t *res, int32_t *ends)',
      ) as LinesLib['write'],
      addr: so.func('double vigil_lines_addr(uint8_t *p)') as LinesLib['addr'],
    };
  } catch {
    lib = null; // a library that does not load (another build's): the JavaScript writer writes every line
  }
  return lib;
}

/** Lines written so far, by who wrote them (tests): lines.c, the JavaScript writer for lines.c, raw entries. */
export const lineBatchStats = { native: 0, js: 0, raw: 0 };

/**
 * Where a line part's bytes are in a batch's fragment memory, kept on the part itself (a type's LineHead, a
 * process's memo, a thread's part, a container's parts): looked up in a WeakMap, the offsets cost a hash
 * lookup whenever the process changed from one record to the next, and ephemeron work in every young GC.
 */
export interface FragSlot {
  /** The fragment memory's generation `fragOff` is of (LineBatch: one per batch and reset); 0: none yet. */
  fragGen: number;
  fragOff: number;
}

/** Generations of every batch's fragment memory: a part placed by one batch is never taken for another's. */
let fragGenerations = 0;

/** Where a batch's lines go, and who writes the lines lines.c leaves (the pipeline, with its sink). */
export interface LineTarget {
  /** Room in the sink's queue (Sink.placeLines). */
  place(room: LineRoom): void;
  /** Queues the lines written into the room (Sink.commitLines). */
  commit(ends: Int32Array, n: number): void;
  /** Writes entry `i`'s line with the JavaScript writer (LineBatch.file/raw say what it is). */
  writeEntry(i: number): void;
  /** The bytes of a name lines.c asked for (record-bytes.ts nameBytes). */
  name(kind: number, extra: number, value: number): Uint8Array | undefined;
}

/** The batch: entries in order, their fragments, and the names table lines.c reads. */
export class LineBatch {
  readonly #lib: LinesLib;
  readonly #d = new Float64Array(BATCH_ENTRIES * DOUBLES);
  readonly #i = new Int32Array(BATCH_ENTRIES * INTS);
  /** The held record of each file entry (undefined for raw ones): kept from the arena until written. */
  readonly recs: (HeldRecord | undefined)[] = new Array<HeldRecord | undefined>(BATCH_ENTRIES).fill(undefined);
  n = 0;
  /** Bytes of `frags` (tests make it small, to see it start over). */
  static fragBytes = FRAG_BYTES;
  readonly #fragBytes = LineBatch.fragBytes;
  readonly frags = Buffer.allocUnsafeSlow(this.#fragBytes);
  #fragPos = 0;
  #raws = Buffer.allocUnsafeSlow(RAW_BYTES);
  #rawPos = 0;
  readonly #names = new Int32Array(NAME_SLOTS * 4);
  #nameCount = 0;
  /** This batch's fragment memory generation (FragSlot), new at each reset. */
  #gen = ++fragGenerations;
  readonly #res = new Int32Array(4);
  readonly #ends = new Int32Array(BATCH_ENTRIES);
  readonly #room: LineRoom = { buf: Buffer.alloc(0), at: 0, end: 0 };

  constructor(l: LinesLib) {
    this.#lib = l;
  }

  get full(): boolean {
    return this.n === BATCH_ENTRIES;
  }

  /** Offset of `bytes` (the part `key`'s) in frags, copied there the first time; -1: no room left. */
  #frag(key: FragSlot, bytes: Uint8Array): number {
    if (key.fragGen === this.#gen) return key.fragOff;
    const off = this.#fragPos;
    if (off + bytes.length > this.#fragBytes) return -1;
    this.frags.set(bytes, off);
    this.#fragPos = off + bytes.length;
    key.fragGen = this.#gen;
    key.fragOff = off;
    return off;
  }

  /**
   * Adds a held record's line (of a kind with a lineEntry): its type's head (the bytes up to the time's digits), its process part and
   * its container part (undefined: none), each with what the bytes are made from (where their copy's offset
   * is kept, FragSlot: the same key must always give the same bytes). False: no room for the fragments (flush, then
   * add again).
   */
  file(rec: HeldRecord, headKey: FragSlot, head: Uint8Array, procKey: FragSlot, proc: Uint8Array, contKey: FragSlot | undefined, cont: Uint8Array | undefined): boolean {
    const headOff = this.#frag(headKey, head);
    const procOff = this.#frag(procKey, proc);
    const contOff = contKey ? this.#frag(contKey, cont!) : 0;
    if (headOff < 0 || procOff < 0 || contOff < 0) return false;
    const n = this.n;
    const c = rec.chunk;
    if (c.addr !== c.addr) c.addr = this.#lib.addr(c.b);
    const d = this.#d;
    const di = n * DOUBLES;
    d[di] = c.addr + rec.off;
    d[di + 1] = bootToEpochMs(rec.ktimeNs); // not an argument: a double passed to a call is a heap number per line
    d[di + 2] = rec.ktimeNs;
    const ints = this.#i;
    const ii = n * INTS;
    ints[ii] = headOff;
    ints[ii + 1] = head.length;
    ints[ii + 2] = procOff;
    ints[ii + 3] = proc.length;
    ints[ii + 4] = contOff;
    ints[ii + 5] = cont ? cont.length : 0;
    ints[ii + 6] = rec.kind.lineEntry!;
    this.recs[n] = rec;
    this.n = n + 1;
    lineBatchStats.native++; // until lines.c leaves it to the JavaScript writer (#js)
    return true;
  }

  /**
   * Points `w` at the free part of the raw area: a line the JavaScript writer makes next is written there,
   * and commitRaw adds it without copying it (process events' lines, ~800 bytes each, were copied, and the
   * copy's subarray was garbage per line). A line that outgrows the room moves to `w`'s own buffer.
   */
  placeRaw(w: ByteLine): void {
    w.into(this.#raws, this.#rawPos, this.#raws.length);
  }

  /** Adds the line written into `w` since placeRaw: where it is when it stayed there, else as raw() does. */
  commitRaw(w: ByteLine): boolean {
    if (w.buf !== this.#raws || w.start !== this.#rawPos) return this.raw(w.buf, w.start, w.pos);
    this.#rawPos = w.pos;
    this.#rawEntry(w.start, w.pos - w.start);
    return true;
  }

  /** Adds a line the JavaScript writer made, buf[start, end) (no newline); false: no room (flush first). */
  raw(buf: Uint8Array, start: number, end: number): boolean {
    const len = end - start;
    const at = this.#rawPos;
    if (at + len > this.#raws.length) {
      if (at > 0) return false;
      this.#raws = Buffer.allocUnsafeSlow(Math.max(len, RAW_BYTES)); // a line longer than the whole area
    }
    this.#raws.set(buf.subarray(start, end), at);
    this.#rawPos = at + len;
    this.#rawEntry(at, len);
    return true;
  }

  /** The entry of a raw line at raws[at, at+len). */
  #rawEntry(at: number, len: number): void {
    const ii = this.n * INTS;
    this.#i[ii] = at;
    this.#i[ii + 1] = len;
    this.#i[ii + 6] = ENTRY_RAW;
    this.recs[this.n] = undefined;
    this.n++;
    lineBatchStats.raw++;
  }

  /** A file or network entry's record and the parts captured for it; undefined for a raw entry. */
  fileEntry(i: number): { rec: HeldRecord; wallMs: number; proc: Uint8Array; cont: Uint8Array | undefined } | undefined {
    const rec = this.recs[i];
    if (!rec) return undefined;
    const ii = i * INTS;
    const f = this.frags;
    return {
      rec,
      wallMs: this.#d[i * DOUBLES + 1]!,
      proc: f.subarray(this.#i[ii + 2], this.#i[ii + 2]! + this.#i[ii + 3]!),
      cont: this.#i[ii + 5] ? f.subarray(this.#i[ii + 4], this.#i[ii + 4]! + this.#i[ii + 5]!) : undefined,
    };
  }

  /** A raw entry's bytes. */
  rawEntry(i: number): Uint8Array {
    const ii = i * INTS;
    return this.#raws.subarray(this.#i[ii], this.#i[ii]! + this.#i[ii + 1]!);
  }

  /** Adds a name's bytes to the table lines.c reads; false: no room in frags (the JavaScript writer takes the line). */
  #addName(hi: number, lo: number, bytes: Uint8Array): boolean {
    const off = this.#fragPos;
    if (off + bytes.length > this.#fragBytes) return false;
    if (this.#nameCount >= NAME_SLOTS / 2) {
      this.#names.fill(0); // half full: start over (the fragments stay where they are until the next reset)
      this.#nameCount = 0;
    }
    this.frags.set(bytes, off);
    this.#fragPos = off + bytes.length;
    const names = this.#names;
    for (let s = nameSlot(hi, lo); ; s = (s + 1) & (NAME_SLOTS - 1)) {
      if (names[s * 4] === 0) {
        names[s * 4] = hi;
        names[s * 4 + 1] = lo;
        names[s * 4 + 2] = off;
        names[s * 4 + 3] = bytes.length;
        this.#nameCount++;
        return true;
      }
    }
  }

  /**
   * Writes every entry's line into the target's room, in order, and empties the batch (even when the target
   * throws). The records stay the caller's to release (recs[0, n) before the call).
   */
  flush(t: LineTarget): void {
    try {
      this.#write(t);
    } finally {
      this.n = 0;
      this.#rawPos = 0;
      if (this.#fragPos > (this.#fragBytes * 3) / 4) this.#resetFrags();
    }
  }

  #write(t: LineTarget): void {
    const n = this.n;
    const res = this.#res;
    const room = this.#room;
    let from = 0;
    while (from < n) {
      t.place(room);
      const k = this.#lib.write(room.buf, room.at, room.end, this.#d, this.#i, from, n, this.frags, this.#raws, this.#names, res, this.#ends);
      if (k > 0) t.commit(this.#ends, k);
      from += k;
      const why = res[1];
      if (why === DONE) break;
      if (why === NAME) {
        const hi = res[2]!;
        const lo = res[3]!;
        const bytes = t.name(hi >>> 24, hi & 0xffffff, lo);
        if (bytes && this.#addName(hi, lo, bytes)) continue;
        this.#js(t, from++); // a key of no kind (a bug) or no room: the JavaScript writer writes it
      } else if (why === JS || (why === ROOM && k === 0)) this.#js(t, from++); // too long for a room: the writer handles that too
    }
  }

  /** Entry i, written by the JavaScript writer. */
  #js(t: LineTarget, i: number): void {
    if (this.recs[i]) {
      lineBatchStats.native--;
      lineBatchStats.js++;
    }
    t.writeEntry(i);
  }

  /** Forgets every fragment and name (nothing in the batch refers to them: called between flushes). */
  #resetFrags(): void {
    this.#fragPos = 0;
    this.#gen = ++fragGenerations; // every part placed before is placed no more
    this.#names.fill(0);
    this.#nameCount = 0;
  }

  /** After a flush, when file() found no room: makes room by forgetting every fragment. */
  makeRoom(): void {
    if (this.n === 0) this.#resetFrags();
  }
}

/** lines.c's name_slot. */
function nameSlot(hi: number, lo: number): number {
  let h = (Math.imul(hi, 0x9e3779b1) ^ Math.imul(lo, 0x85ebca6b)) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  return h & (NAME_SLOTS - 1);
}
