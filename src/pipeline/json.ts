// JSON serialisation of output events, the pipeline's most expensive step: the same bytes JSON.stringify(out)
// gives, at a fraction of its cost (bench/pipeline). The parts every event of a process shares (process,
// parent, ancestry) or of a container (container, pod) are serialised once, when enrichment memoizes them
// (enrich.ts); per event, the time and ktime come as ready-made digit strings (TimeParts), and the event's
// own fields are serialised by a function compiled once per shape of decoded event (fixedMembers; json-bytes.ts
// writes the same as bytes), without building the fields object first.

export const MAX_ISO_MS = 253402300799999; // 9999-12-31T23:59:59.999Z: four-digit years only

const ZEROS = '000000000';

/** "000" to "999": the digit groups of milliseconds and nanoseconds, made once. */
export const DIGITS3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/**
 * The parts of an event's time for its JSON line, as strings that already exist, so that the line's head
 * costs no allocation but the join: `iso` + `ms` + "Z" is new Date(wallMs).toISOString(), and
 * `kHi` + `k1` + `k2` + `k3` is JSON.stringify(ktimeNs) (numberJson).
 */
export class TimeParts {
  iso = '';
  ms = '';
  kHi = '';
  k1 = '';
  k2 = '';
  k3 = '';
  #sec = -1;
  #prefix = '';
  #hi = -1;
  #hiStr = '';

  /** Throws RangeError for a non-finite wall time, as toISOString does. */
  set(wallMs: number, ktimeNs: number): void {
    if (wallMs >= 0 && wallMs <= MAX_ISO_MS) {
      const t = Math.floor(wallMs);
      const sec = Math.floor(t / 1000);
      if (sec !== this.#sec) {
        this.#prefix = new Date(sec * 1000).toISOString().slice(0, 20);
        this.#sec = sec;
      }
      this.iso = this.#prefix;
      this.ms = DIGITS3[t - sec * 1000]!;
    } else {
      const s = new Date(wallMs).toISOString(); // "….mmmZ"
      this.iso = s.slice(0, -4);
      this.ms = s.slice(-4, -1);
    }
    if (ktimeNs >= 1e9 && ktimeNs <= Number.MAX_SAFE_INTEGER && Number.isInteger(ktimeNs)) {
      const hi = Math.floor(ktimeNs / 1e9);
      if (hi !== this.#hi) {
        this.#hi = hi;
        this.#hiStr = `${hi}`;
      }
      const lo = ktimeNs - hi * 1e9;
      const a = Math.floor(lo / 1e6);
      const b = Math.floor(lo / 1e3) - a * 1000;
      this.kHi = this.#hiStr;
      this.k1 = DIGITS3[a]!;
      this.k2 = DIGITS3[b]!;
      this.k3 = DIGITS3[lo - a * 1e6 - b * 1000]!;
    } else {
      this.kHi = numberJson(ktimeNs);
      this.k1 = this.k2 = this.k3 = '';
    }
  }
}

/**
 * A number as JSON.stringify writes it. Non-negative safe integers (timestamps in ns, beyond the small-integer
 * range where V8's conversion is fast) are written as two small integers; everything else goes to V8.
 */
export function numberJson(n: number): string {
  if (n >= 1e9 && n <= Number.MAX_SAFE_INTEGER && Number.isInteger(n)) {
    const hi = Math.floor(n / 1e9);
    // Timestamps of consecutive events share their seconds: their digits are reused.
    if (hi !== lastHi) {
      lastHi = hi;
      lastHiStr = `${hi}`;
    }
    const lo = `${n - hi * 1e9}`;
    return `${lastHiStr}${ZEROS.slice(lo.length)}${lo}`;
  }
  return JSON.stringify(n) ?? 'null';
}
let lastHi = -1;
let lastHiStr = '';

/** A string as JSON.stringify writes it; the common case (nothing to escape) skips the escaping pass. */
export function stringJson(s: string): string {
  return needsEscape(s) ? JSON.stringify(s) : `"${s}"`;
}

/**
 * Whether JSON.stringify would escape anything in `s`: control characters, the quote, the backslash, lone
 * surrogates (any surrogate sends a string to the exact path; pairs are rare here). A plain loop: for the
 * short strings of events it is several times faster than a regular expression (bench/pipeline).
 */
function needsEscape(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return true;
  }
  return false;
}

/**
 * The members of `fields` as they appear inside JSON.stringify of an object that holds them after other
 * members: "" when there is none, else ',"k":v,...'. Values are serialised by JSON.stringify itself, so
 * toJSON, nested undefined and the rest behave exactly as there.
 */
export function fieldsJson(fields: object): string {
  const s = JSON.stringify(fields);
  return s.length > 2 ? `,${s.slice(1, -1)}` : '';
}

type MembersFn = (o: Record<string, unknown>) => string;

/**
 * The member value of `v` under key `k` as JSON.stringify writes it inside an object, or undefined when it
 * leaves the member out (functions, symbols, toJSON returning undefined). The rare kinds: objects and
 * arrays (their toJSON gets the key, as in JSON.stringify), null, bigint (throws TypeError, as there).
 */
export function memberValue(v: unknown, k: string, keyJson: string): string | undefined {
  const w = JSON.stringify({ [k]: v });
  return w.length > 2 ? w.slice(keyJson.length + 2, -1) : undefined;
}

/** What a members serialiser leaves out besides undefined values. */
export interface MembersOptions {
  /** Names never written (the members the caller writes itself). */
  skip: Iterable<string>;
  /**
   * Leave out members whose value is `false`, as protobuf's JSON mapping leaves out defaults: flags are
   * written only when set (a file event has six; all false, they were an eighth of the line).
   */
  omitFalse?: boolean;
}

/**
 * Straight-line code writing the members of an object with exactly the own keys `keys`, in that order (the
 * order JSON.stringify follows), as ',"k":v…' ('' when there is none): the common value types inline, the
 * rest through memberValue. Reads each key by name, so an object with other keys is serialised wrongly:
 * callers guarantee the key list by construction (see fixedMembers).
 */
function compileMembers(keys: readonly string[], skip: ReadonlySet<string>, omitFalse: boolean): MembersFn {
  const lines = ["let s = '';", 'let v;', 'let j;'];
  for (const k of keys) {
    if (skip.has(k)) continue;
    const key = JSON.stringify(k); // a JSON string is a JS string literal: safe to splice into code
    const prefix = JSON.stringify(`,${key}:`);
    const whenFalse = omitFalse ? "''" : JSON.stringify(`,${key}:false`);
    lines.push(
      `v = o[${key}];`,
      `if (typeof v === 'string') s += ${prefix} + (esc(v) ? JSON.stringify(v) : '"' + v + '"');`,
      `else if (typeof v === 'number') s += ${prefix} + ((v | 0) === v ? '' + v : num(v));`,
      `else if (typeof v === 'boolean') s += v ? ${JSON.stringify(`,${key}:true`)} : ${whenFalse};`,
      `else if (v !== undefined && (j = member(v, ${key}, ${JSON.stringify(key)})) !== undefined) s += ${prefix} + j;`,
    );
  }
  lines.push('return s;');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from key names, each escaped as a JSON string literal
  return new Function('esc', 'num', 'member', `return (o) => {\n${lines.join('\n')}\n};`)(needsEscape, numberJson, memberValue) as MembersFn;
}

/**
 * A serialiser for objects that always have exactly `keys` as own keys, in that order (objects built by one
 * object literal, such as a decoder's): no per-object key check, so the hot path reads each field once.
 * Writes exactly the members JSON.stringify writes for an object holding the same fields minus the skipped
 * names, the undefined values and (with omitFalse) the false ones: ',"k":v…', '' when there is none. Throws
 * only what JSON.stringify throws (bigint).
 */
export function fixedMembers(keys: readonly string[], o: MembersOptions): (obj: Record<string, unknown>) => string {
  return compileMembers(keys, new Set(o.skip), o.omitFalse ?? false);
}
