// Kernel strings are bytes, not UTF-8: argv and file names may hold any byte but NUL. These helpers turn
// them into JS strings without losing information silently: valid UTF-8 decodes as such, and each byte that
// is not part of valid UTF-8 becomes the escape "\xNN" (so the output stays valid JSON and shows the byte).
const utf8 = new TextDecoder('utf-8', { fatal: true });

// Below this many bytes the bytes are checked for ASCII in a JS loop before decoding; longer runs are
// decoded as latin1 first (one native call) and the string is checked with a regex, which needs no view.
const NATIVE_MIN = 64;
const NON_ASCII = /[\x80-\xff]/;

function isAscii(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i]! >= 0x80) return false;
  return true;
}

/** Bytes [start, end) as a string if they are all ASCII, else undefined. */
function asciiOrUndefined(b: Uint8Array, start: number, end: number): string | undefined {
  if (end - start < NATIVE_MIN) return isAscii(b, start, end) ? ascii(b, start, end) : undefined;
  const s = asBuffer(b).toString('latin1', start, end);
  return NON_ASCII.test(s) ? undefined : s;
}

/**
 * A Buffer over the same memory as `b`, to use Buffer's native latin1 decoding. Records come from one ring
 * (one ArrayBuffer) or from a few read buffers, so the view of the last memory seen is kept and reused.
 */
let lastBuf: Buffer = Buffer.alloc(0);
/** The view lastBuf was made for: the same view again (viewBytes hands out one per ring) needs no `.buffer` reads, each a call into V8's runtime. */
let lastSrc: Uint8Array | undefined;
export function asBuffer(b: Uint8Array): Buffer {
  if (b === lastSrc) return lastBuf;
  if (b instanceof Buffer) return b;
  if (lastBuf.buffer !== b.buffer || lastBuf.byteOffset !== b.byteOffset || lastBuf.length !== b.byteLength) {
    lastBuf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  }
  lastSrc = b;
  return lastBuf;
}

/** ASCII bytes [start, end) as a string (the caller checked that they are ASCII). */
function ascii(b: Uint8Array, start: number, end: number): string {
  // A few characters are cheaper to build in JS than through the native call; past 12, V8 would build a
  // rope of one-character pieces, which is slower and larger (these strings may stay in the process cache).
  if (end - start <= 6) {
    let s = '';
    for (let i = start; i < end; i++) s += String.fromCharCode(b[i]!);
    return s;
  }
  return asBuffer(b).toString('latin1', start, end);
}

/** Decodes bytes [start, end) of `b`. */
export function bytesToString(b: Uint8Array, start: number, end: number): string {
  if (end <= start) return '';
  const a = asciiOrUndefined(b, start, end);
  if (a !== undefined) return a;
  try {
    return utf8.decode(b.subarray(start, end));
  } catch {
    return escapeInvalid(b, start, end);
  }
}

/** Slow path: walk the bytes, keep valid UTF-8 sequences, escape every other byte. */
function escapeInvalid(b: Uint8Array, start: number, end: number): string {
  let out = '';
  let i = start;
  while (i < end) {
    const c = b[i]!;
    const need = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (need === 0) {
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    if (need > 0 && i + need < end) {
      let ok = true;
      for (let k = 1; ok && k <= need; k++) ok = (b[i + k]! & 0xc0) === 0x80;
      if (ok) {
        try {
          out += utf8.decode(b.subarray(i, i + need + 1));
          i += need + 1;
          continue;
        } catch {
          // overlong or surrogate: escape the lead byte below
        }
      }
    }
    out += `\\x${c.toString(16).padStart(2, '0')}`;
    i++;
  }
  return out;
}

/**
 * A non-empty NUL-separated block [start, end) as one string, NULs included and the trailing one left out, if
 * it is all ASCII (else undefined): what splitNul splits, so that its strings joined by NUL give it back.
 */
export function asciiBlock(b: Uint8Array, start: number, end: number): string | undefined {
  const stop = b[end - 1] === 0 ? end - 1 : end; // the trailing NUL ends the last string, it adds none
  return asciiOrUndefined(b, start, stop);
}

/**
 * Splits a NUL-separated block (argv, envp) into strings; a trailing NUL does not add an empty string.
 * A block that is all ASCII (the common case: an environment is ~1-4 KiB of it) is decoded in one native
 * call and split in one pass; any other block is decoded string by string, so that each string gets the
 * same UTF-8 / "\xNN" treatment as bytesToString gives it.
 */
export function splitNul(b: Uint8Array, start: number, end: number): string[] {
  if (end <= start) return [];
  const whole = asciiBlock(b, start, end);
  if (whole !== undefined) return whole.split('\0');
  const out: string[] = [];
  let s = start;
  for (let i = start; i < end; i++) {
    if (b[i] === 0) {
      out.push(bytesToString(b, s, i));
      s = i + 1;
    }
  }
  if (s < end) out.push(bytesToString(b, s, end));
  return out;
}

/** A NUL-terminated string in a fixed-size field. */
export function cString(b: Uint8Array, start: number, size: number): string {
  let end = start;
  const max = start + size;
  while (end < max && b[end] !== 0) end++;
  return bytesToString(b, start, end);
}
