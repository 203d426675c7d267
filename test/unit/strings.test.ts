// Kernel byte strings to JS strings (src/events/strings.ts): the fast paths (whole-block ASCII decoding and
// splitting, native decoding of long strings) must give exactly what decoding string by string gives, for
// ASCII, UTF-8, invalid UTF-8, empty strings and trailing NULs, at every length around the thresholds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytesToString, cString, splitNul } from '../../src/events/strings.ts';

// ---- the reference: one string at a time, byte by byte (the semantics the fast paths must keep) -------------

const fatal = new TextDecoder('utf-8', { fatal: true });

function refDecode(b: Uint8Array): string {
  try {
    return fatal.decode(b);
  } catch {
    let out = '';
    let i = 0;
    while (i < b.length) {
      const c = b[i]!;
      const need = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
      if (need === 0) {
        out += String.fromCharCode(c);
        i++;
        continue;
      }
      if (need > 0 && i + need < b.length) {
        try {
          let ok = true;
          for (let k = 1; k <= need; k++) ok &&= (b[i + k]! & 0xc0) === 0x80;
          if (ok) {
            out += fatal.decode(b.subarray(i, i + need + 1));
            i += need + 1;
            continue;
          }
        } catch {
          // escaped below
        }
      }
      out += `\\x${c.toString(16).padStart(2, '0')}`;
      i++;
    }
    return out;
  }
}

function refSplit(b: Uint8Array): string[] {
  const out: string[] = [];
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0) {
      out.push(refDecode(b.subarray(s, i)));
      s = i + 1;
    }
  }
  if (s < b.length) out.push(refDecode(b.subarray(s)));
  return out;
}

// ---- inputs -----------------------------------------------------------------------------------------------

/** A deterministic PRNG, so that a failure names a reproducible seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

const ENC = new TextEncoder();

/** A NUL-separated block of `n` strings of the given kind. */
function block(r: () => number, kind: 'ascii' | 'utf8' | 'any', n: number, maxLen: number, trailing: boolean): Uint8Array {
  const parts: number[] = [];
  for (let k = 0; k < n; k++) {
    const len = Math.floor(r() * (maxLen + 1));
    if (kind === 'utf8' && r() < 0.5) parts.push(...ENC.encode('é✓€𝄞'.slice(0, 1 + Math.floor(r() * 4))));
    for (let i = 0; i < len; i++) {
      const c = kind === 'ascii' ? 1 + Math.floor(r() * 127) : kind === 'utf8' ? 1 + Math.floor(r() * 127) : 1 + Math.floor(r() * 255);
      parts.push(c);
    }
    if (k < n - 1 || trailing) parts.push(0);
  }
  return Uint8Array.from(parts);
}

/** The block placed at an offset inside a larger memory, as records sit in the ring. */
function embed(b: Uint8Array, pad: number, asBuffer: boolean): { mem: Uint8Array; start: number; end: number } {
  const mem = asBuffer ? Buffer.alloc(pad + b.length + 7, 0xee) : new Uint8Array(pad + b.length + 7).fill(0xee);
  mem.set(b, pad);
  return { mem, start: pad, end: pad + b.length };
}

test('splitNul gives what decoding string by string gives, for every kind of block and length', () => {
  for (let seed = 1; seed <= 600; seed++) {
    const r = rng(seed);
    const kind = (['ascii', 'utf8', 'any'] as const)[seed % 3]!;
    const b = block(r, kind, 1 + Math.floor(r() * 30), [3, 16, 17, 63, 64, 65, 200][seed % 7]!, r() < 0.7);
    const { mem, start, end } = embed(b, Math.floor(r() * 40), seed % 2 === 0);
    assert.deepEqual(splitNul(mem, start, end), refSplit(b), `seed ${seed} (${kind})`);
  }
});

test('splitNul: empty blocks, lone NULs and trailing NULs', () => {
  const cases: [number[], string[]][] = [
    [[], []],
    [[0], ['']],
    [[0, 0], ['', '']],
    [[97, 0], ['a']],
    [[97, 0, 0], ['a', '']],
    [[97, 0, 98], ['a', 'b']],
    [[0, 97], ['', 'a']],
    [[0xff, 0, 97, 0], ['\\xff', 'a']],
  ];
  for (const [bytes, want] of cases) {
    const b = Uint8Array.from(bytes);
    assert.deepEqual(splitNul(b, 0, b.length), want, JSON.stringify(bytes));
    const big = embed(b, 70, false); // past the native threshold's offset arithmetic
    assert.deepEqual(splitNul(big.mem, big.start, big.end), want, `${JSON.stringify(bytes)} at an offset`);
  }
});

test('bytesToString and cString match the reference around the length thresholds', () => {
  for (let seed = 1; seed <= 400; seed++) {
    const r = rng(seed * 7919);
    const kind = (['ascii', 'utf8', 'any'] as const)[seed % 3]!;
    const len = [0, 1, 15, 16, 17, 63, 64, 65, 300][seed % 9]!;
    const b = block(r, kind, 1, len, false).filter((c) => c !== 0);
    const { mem, start, end } = embed(b, seed % 13, seed % 2 === 1);
    assert.equal(bytesToString(mem, start, end), refDecode(b), `seed ${seed}`);
    // A fixed-size field: the string, a NUL, then garbage that must not show.
    const field = new Uint8Array(b.length + 8).fill(0x41);
    field.set(b, 0);
    field[b.length] = 0;
    assert.equal(cString(field, 0, field.length), refDecode(b), `cString seed ${seed}`);
  }
});

test('a long ASCII string is decoded whole, and views over different memory are not confused', () => {
  const a = new Uint8Array(5000).fill(0x61);
  const b = new Uint8Array(5000).fill(0x62);
  assert.equal(bytesToString(a, 0, 5000), 'a'.repeat(5000));
  assert.equal(bytesToString(b, 10, 4000), 'b'.repeat(3990));
  assert.equal(bytesToString(a, 1000, 1100), 'a'.repeat(100));
  // Two views of one buffer at different offsets.
  const mem = new Uint8Array(400);
  mem.fill(0x78, 0, 200);
  mem.fill(0x79, 200, 400);
  assert.equal(bytesToString(new Uint8Array(mem.buffer, 0, 200), 100, 200), 'x'.repeat(100));
  assert.equal(bytesToString(new Uint8Array(mem.buffer, 200, 200), 100, 200), 'y'.repeat(100));
});
