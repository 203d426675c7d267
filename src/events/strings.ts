// Kernel strings are bytes, not UTF-8: argv and file names may hold any byte but NUL. These helpers turn
// them into JS strings without losing information silently: valid UTF-8 decodes as such, and each byte that
// is not part of valid UTF-8 becomes the escape "\xNN" (so the output stays valid JSON and shows the byte).
const utf8 = new TextDecoder('utf-8', { fatal: true });

function isAscii(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i]! >= 0x80) return false;
  return true;
}

/** Decodes bytes [start, end) of `b`. */
export function bytesToString(b: Uint8Array, start: number, end: number): string {
  if (end <= start) return '';
  if (isAscii(b, start, end)) return latin1(b, start, end);
  try {
    return utf8.decode(b.subarray(start, end));
  } catch {
    return escapeInvalid(b, start, end);
  }
}

function latin1(b: Uint8Array, start: number, end: number): string {
  // String.fromCharCode on chunks: fast for the short ASCII strings that dominate argv.
  let s = '';
  for (let i = start; i < end; i += 4096) s += String.fromCharCode.apply(null, b.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  return s;
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

/** Splits a NUL-separated block (argv, envp) into strings; a trailing NUL does not add an empty string. */
export function splitNul(b: Uint8Array, start: number, end: number): string[] {
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
