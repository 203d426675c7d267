// JSON lines written straight into bytes, for sinks that take bytes (the file sink): the same bytes as the
// UTF-8 of the string line (json.ts), without building the line, the members' intermediate strings or
// encoding them afterwards. Those three were most of what an event cost between enrichment and the file
// (bench/pipeline). ASCII is written byte by byte; anything else goes through V8's UTF-8 encoder.
import { Buffer } from 'node:buffer';
import { MAX_ISO_MS, memberValue, numberJson, type MembersOptions } from './json.ts';

/** Below this many characters a string is copied in a JS loop: cheaper than a call into the encoder. */
const LOOP_MAX = 24;
/**
 * Up to this many bytes an array is copied in a JS loop; longer ones with TypedArray.set, which costs ~10 ns
 * whatever the length, as much as the loop's 12 bytes (measured on V8 13, x86-64).
 */
const RAW_LOOP_MAX = 12;

/**
 * A growable byte buffer a line is written into: its own, or, in place, a sink's queue (into()). The line is
 * buf[start, pos), valid until the next reset() or into().
 */
export class ByteLine {
  buf: Buffer;
  pos = 0;
  start = 0;
  /** Where the line must end: the buffer's end, or the end of the room a sink gave. */
  #limit: number;
  #own: Buffer;

  constructor(initial = 64 << 10) {
    this.buf = this.#own = Buffer.allocUnsafe(initial);
    this.#limit = initial;
  }

  /** The next line goes into the line's own buffer. */
  reset(): void {
    this.buf = this.#own;
    this.start = this.pos = 0;
    this.#limit = this.#own.length;
  }

  /**
   * The next line goes into `buf` from `at`, not past `end` (a sink's queue, see Sink.placeLine): no copy
   * afterwards. A line that outgrows that room moves to the line's own buffer (`placed` turns false).
   */
  into(buf: Buffer, at: number, end: number): void {
    this.buf = buf;
    this.start = this.pos = at;
    this.#limit = end;
  }

  /** Whether the line is where into() put it (not in the line's own buffer). */
  get placed(): boolean {
    return this.buf !== this.#own;
  }

  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.#limit) return;
    const len = this.pos - this.start;
    let own = this.#own;
    if (len + n > own.length) own = this.#own = Buffer.allocUnsafe(Math.max(own.length * 2, len + n));
    this.buf.copy(own, 0, this.start, this.pos);
    this.buf = own;
    this.start = 0;
    this.pos = len;
    this.#limit = own.length;
  }

  /** Pre-encoded bytes (the constant parts of a line). */
  raw(b: Uint8Array): void {
    const n = b.length;
    this.ensure(n);
    const buf = this.buf;
    let p = this.pos;
    if (n <= RAW_LOOP_MAX) for (let i = 0; i < n; i++) buf[p++] = b[i]!;
    else {
      buf.set(b, p);
      p += n;
    }
    this.pos = p;
  }

  /** A string's UTF-8 bytes, as they are (already JSON: cached parts, numbers, escaped strings). */
  text(s: string): void {
    const n = s.length;
    this.ensure(n * 3);
    const buf = this.buf;
    if (n <= LOOP_MAX) {
      let p = this.pos;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          this.pos += buf.write(s, this.pos);
          return;
        }
        buf[p++] = c;
      }
      this.pos = p;
      return;
    }
    this.pos += buf.write(s, this.pos);
  }

  /** `s` as a JSON string, exactly as JSON.stringify writes it, in UTF-8. */
  string(s: string): void {
    const n = s.length;
    this.ensure(n + 2);
    const buf = this.buf;
    const start = this.pos;
    let p = start;
    buf[p++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      // Control characters, the quote and the backslash need escaping; anything past ASCII needs UTF-8 (and
      // lone surrogates an escape): JSON.stringify and the encoder do those, rare here, exactly.
      if (c < 0x20 || c === 0x22 || c === 0x5c || c >= 0x80) {
        this.pos = start;
        this.text(JSON.stringify(s));
        return;
      }
      buf[p++] = c;
    }
    buf[p++] = 0x22;
    this.pos = p;
  }

  /** `a` as a JSON array, for an array whose every element is a string (isStrings): argv, unknown fields. */
  strings(a: readonly string[]): void {
    this.byte(0x5b);
    for (let i = 0; i < a.length; i++) {
      if (i > 0) this.byte(0x2c);
      this.string(a[i]!);
    }
    this.byte(0x5d);
  }

  /** One byte. */
  byte(c: number): void {
    this.ensure(1);
    this.buf[this.pos++] = c;
  }

  /** A number as JSON.stringify writes it. */
  number(v: number): void {
    if ((v | 0) !== v) {
      // Past 32 bits: nanosecond times and start times, every digit up to 2^53 (as JSON.stringify writes
      // them below 1e21): the quotient by 1e9, then the remainder as nine digits.
      if (v > 0 && v <= Number.MAX_SAFE_INTEGER && Number.isInteger(v)) {
        const hi = Math.floor(v / 1e9);
        this.number(hi);
        this.ensure(9);
        this.pos = digits9(this.buf, this.pos, v - hi * 1e9);
        return;
      }
      this.text(numberJson(v));
      return;
    }
    // A 32-bit integer (fds, flags, syscall numbers, return values, errnos, ports, ids): digits straight in,
    // the sign too (-0 is written "0", as JSON.stringify writes it).
    this.ensure(11);
    const buf = this.buf;
    let p = this.pos;
    if (v < 0) {
      buf[p++] = 0x2d;
      v = -v;
    }
    if (v < 1000) p = smallDigits(buf, p, v);
    else {
      let n = 1;
      for (let x = v; x >= 10; x = Math.floor(x / 10)) n++;
      for (let i = p + n - 1; i >= p; i--) {
        const q = Math.floor(v / 10);
        buf[i] = 0x30 + v - q * 10;
        v = q;
      }
      p += n;
    }
    this.pos = p;
  }
}

/** The UTF-8 bytes of an ASCII constant. */
export const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

const TIME_TO_KTIME = 'Z","ktimeNs":';

/**
 * What every line of one type starts with, '{"type":<type>,"time":"' (`type`), and that followed by the
 * date and time of one second, '…"time":"YYYY-MM-DDTHH:MM:SS.' (`prefix`, for second `sec`), made by
 * TimeBytes. One per type: events of a type come many to a second.
 */
export class LineHead {
  readonly type: Uint8Array;
  sec = -1;
  prefix: Uint8Array = new Uint8Array(0);
  /** Where `type` is in a line batch's fragments (native-lines.ts FragSlot). */
  fragGen = 0;
  fragOff = 0;

  constructor(typeJson: string) {
    this.type = new Uint8Array(Buffer.from(`{"type":${typeJson},"time":"`, 'utf8'));
  }
}

/** Whether TimeBytes.write writes these times (native/lines.c writes the same ones, see native-lines.ts). */
export const timeBytesWrites = (wallMs: number, ktimeNs: number): boolean =>
  wallMs >= 0 && wallMs <= MAX_ISO_MS && ktimeNs >= 1e9 && ktimeNs <= Number.MAX_SAFE_INTEGER && Number.isInteger(ktimeNs);

/**
 * TimeParts (json.ts) in bytes: a line's head, its type, time and ktime, written straight into a line as
 * digits after bytes made once per type and second (LineHead) and once per second of ktime. The head was
 * ten strings written one by one, then four byte loops; it is now two copies and the varying digits
 * (bench/pipeline).
 */
export class TimeBytes {
  #sec = -1;
  #iso: Uint8Array = new Uint8Array(0);
  #hi = -1;
  /** 'Z","ktimeNs":' and the digits of ktime's seconds #hi. */
  #kHead: Uint8Array = new Uint8Array(0);

  /**
   * Writes `head.type`, then `<wallMs as ISO 8601 from the year to the ms>Z","ktimeNs":<ktimeNs>`, exactly
   * what TimeParts gives, and returns true; returns false, writing nothing, for the times TimeParts leaves to
   * V8 (before 1970 or past 9999, ktime below a second or not a safe integer).
   */
  write(w: ByteLine, head: LineHead, wallMs: number, ktimeNs: number): boolean {
    if (!timeBytesWrites(wallMs, ktimeNs)) return false;
    const t = Math.floor(wallMs);
    const sec = Math.floor(t / 1000);
    if (head.sec !== sec) {
      if (sec !== this.#sec) {
        this.#iso = ascii(new Date(sec * 1000).toISOString().slice(0, 20)); // "YYYY-MM-DDTHH:MM:SS."
        this.#sec = sec;
      }
      const prefix = new Uint8Array(head.type.length + this.#iso.length);
      prefix.set(head.type);
      prefix.set(this.#iso, head.type.length);
      head.prefix = prefix;
      head.sec = sec;
    }
    const hi = Math.floor(ktimeNs / 1e9);
    if (hi !== this.#hi) {
      this.#kHead = ascii(`${TIME_TO_KTIME}${hi}`);
      this.#hi = hi;
    }
    const prefix = head.prefix;
    const kHead = this.#kHead;
    w.ensure(prefix.length + 3 + kHead.length + 9);
    const buf = w.buf;
    let p = w.pos;
    buf.set(prefix, p);
    p = digits3(buf, p + prefix.length, t - sec * 1000);
    buf.set(kHead, p);
    p += kHead.length;
    w.pos = digits9(buf, p, ktimeNs - hi * 1e9);
    return true;
  }
}

/** Writes `v` (an integer from 0 to 999) without leading zeros at p; returns the end. */
export function smallDigits(buf: Uint8Array, p: number, v: number): number {
  if (v >= 100) {
    const h = (v / 100) | 0;
    buf[p++] = 0x30 + h;
    v -= h * 100;
    const t = (v / 10) | 0;
    buf[p++] = 0x30 + t;
    buf[p++] = 0x30 + v - t * 10;
  } else if (v >= 10) {
    const t = (v / 10) | 0;
    buf[p++] = 0x30 + t;
    buf[p++] = 0x30 + v - t * 10;
  } else buf[p++] = 0x30 + v;
  return p;
}

/** "000" to "999" as bytes, three per number. */
const DIGIT_BYTES = ascii(Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0')).join(''));

/** Writes `v` (an integer from 0 to 999) as three digits at p; returns the end. */
function digits3(buf: Uint8Array, p: number, v: number): number {
  const d = 3 * v;
  buf[p] = DIGIT_BYTES[d]!;
  buf[p + 1] = DIGIT_BYTES[d + 1]!;
  buf[p + 2] = DIGIT_BYTES[d + 2]!;
  return p + 3;
}

/** Writes `v` (an integer from 0 to 999 999 999) as nine digits at p; returns the end. */
function digits9(buf: Uint8Array, p: number, v: number): number {
  const a = Math.floor(v / 1e6);
  const rest = v - a * 1e6;
  const b = Math.floor(rest / 1000);
  p = digits3(buf, p, a);
  p = digits3(buf, p, b);
  return digits3(buf, p, rest - b * 1000);
}

/** Whether `v` is an array of strings only (no holes): what ByteLine.strings writes as JSON.stringify would. */
export function isStrings(v: unknown): v is string[] {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'string') return false;
  return true;
}

/** Writes an object's members as ',"k":v…' into a line (see fixedMembersBytes). */
export type MembersBytesFn = (o: Record<string, unknown>, w: ByteLine) => void;

/**
 * fixedMembers (json.ts) in bytes: writes the members of an object that always has exactly `keys` as own
 * keys, in that order, into `w`: the UTF-8 of what fixedMembers returns for it. Compiled once per key list;
 * each member's key is written from bytes encoded here.
 */
export function fixedMembersBytes(keys: readonly string[], o: MembersOptions): MembersBytesFn {
  const skip = new Set(o.skip);
  const consts: Uint8Array[] = [];
  const c = (s: string): string => `K[${consts.push(ascii(s)) - 1}]`;
  const lines = ['let v;', 'let j;'];
  for (const k of keys) {
    if (skip.has(k)) continue;
    const key = JSON.stringify(k); // a JSON string is a JS string literal: safe to splice into code
    if (/[^\x20-\x7e]/.test(key)) throw new RangeError(`member name ${key} is not printable ASCII`);
    const prefix = c(`,${key}:`);
    lines.push(
      `v = o[${key}];`,
      `if (typeof v === 'string') { w.raw(${prefix}); w.string(v); }`,
      `else if (typeof v === 'number') { w.raw(${prefix}); w.number(v); }`,
      `else if (typeof v === 'boolean') { if (v) w.raw(${c(`,${key}:true`)});${o.omitFalse ? '' : ` else w.raw(${c(`,${key}:false`)});`} }`,
      `else if (isStrings(v)) { w.raw(${prefix}); w.strings(v); }`,
      `else if (v !== undefined && (j = member(v, ${key}, ${JSON.stringify(key)})) !== undefined) { w.raw(${prefix}); w.text(j); }`,
    );
  }
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from key names, each escaped as a JSON string literal
  return new Function('K', 'member', 'isStrings', `return (o, w) => {\n${lines.join('\n')}\n};`)(consts, memberValue, isStrings) as MembersBytesFn;
}
