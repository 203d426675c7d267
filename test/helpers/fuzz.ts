// Seeded, reproducible fuzzing for the "bad input" tests: a small PRNG (sfc32, seeded through splitmix32)
// and a runner that gives every fuzz case its own stream derived from one base seed and the case's name, and
// names the seed and the iteration in any failure. Reproduce a failure with FUZZ_SEED=<seed>; run longer
// with FUZZ_ITERATIONS=<n> (a multiplier of each case's default count when given as "x<n>").
import type { TestContext } from 'node:test';

/** A 32-bit PRNG (sfc32): fast, good enough to fuzz with, and the same sequence for the same seed everywhere. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    // splitmix32 spreads a small seed over the 128-bit state.
    let s = seed >>> 0;
    const mix = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = mix();
    this.#b = mix();
    this.#c = mix();
    this.#d = mix();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniform unsigned 32-bit integer. */
  u32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[this.int(0, xs.length - 1)]!;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      for (let k = 0; k < 4 && i + k < n; k++) out[i + k] = (v >>> (8 * k)) & 0xff;
    }
    return out;
  }

  /** Printable ASCII, length in [min, max]. */
  ascii(min: number, max: number, alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:= '): string {
    const n = this.int(min, max);
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(0, alphabet.length - 1)];
    return s;
  }

  /** Values that break parsers: boundaries, signs, huge and odd numbers, odd types. */
  nastyNumber(): number {
    return this.pick([0, -1, 1, -0, 0.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e21, 1e308, -1e308, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 4294967295, 65536, 3, 7, 1023]);
  }
}

const DEFAULT_SEED = (Date.now() ^ (process.pid << 8)) >>> 0;

/** The run's base seed: FUZZ_SEED, else one random seed per process (printed on failure). */
export function baseSeed(): number {
  const env = process.env.FUZZ_SEED;
  if (env === undefined || env === '') return DEFAULT_SEED;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`FUZZ_SEED must be an integer 0..4294967295, got "${env}"`);
  return n;
}

/** Iterations for a case whose default is `def`: FUZZ_ITERATIONS=<n> sets it, FUZZ_ITERATIONS=x<k> multiplies. */
export function iterations(def: number): number {
  const env = process.env.FUZZ_ITERATIONS;
  if (env === undefined || env === '') return def;
  const m = /^x(\d+)$/.exec(env);
  if (m) return def * Number(m[1]);
  const n = Number(env);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`FUZZ_ITERATIONS must be a positive integer or x<k>, got "${env}"`);
  return n;
}

function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The stream of one named case: the same name and base seed always give the same sequence. */
export function rngFor(name: string, seed = baseSeed()): Rng {
  return new Rng((seed ^ hash32(name)) >>> 0);
}

/**
 * Runs `body` `iterations(def)` times with the case's generator. A failure is rethrown with the seed and
 * iteration that reproduce it (also printed as a test diagnostic).
 */
export async function fuzz(t: TestContext, name: string, def: number, body: (rng: Rng, i: number) => void | Promise<void>): Promise<void> {
  const seed = baseSeed();
  const rng = rngFor(name, seed);
  const n = iterations(def);
  for (let i = 0; i < n; i++) {
    try {
      await body(rng, i);
    } catch (err) {
      const where = `fuzz case "${name}" failed at iteration ${i}/${n}; reproduce with FUZZ_SEED=${seed}`;
      t.diagnostic(where);
      if (err instanceof Error) {
        err.message = `${where}: ${err.message}`;
        throw err;
      }
      throw new Error(`${where}: ${String(err)}`);
    }
  }
}

/** Same as fuzz() for synchronous bodies, without an await per iteration (tight loops stay tight). */
export function fuzzSync(t: TestContext, name: string, def: number, body: (rng: Rng, i: number) => void): void {
  const seed = baseSeed();
  const rng = rngFor(name, seed);
  const n = iterations(def);
  for (let i = 0; i < n; i++) {
    try {
      body(rng, i);
    } catch (err) {
      const where = `fuzz case "${name}" failed at iteration ${i}/${n}; reproduce with FUZZ_SEED=${seed}`;
      t.diagnostic(where);
      if (err instanceof Error) {
        err.message = `${where}: ${err.message}`;
        throw err;
      }
      throw new Error(`${where}: ${String(err)}`);
    }
  }
}
