// Sharing what processes have in common, so that a cached process costs little more than what is its own.
// Most processes of a host share their environment (children of one shell, replicas of one service), their
// credentials and their executable's path; stored once per process, the environment alone was about half of
// a cache entry (~2 KiB for 24 variables). The tables here hand out one frozen copy of each, and are bounded:
// when one is full it starts over (what processes hold stays valid; only new sharing restarts).
import crypto from 'node:crypto';
import type { Creds } from '../events/types.ts';
import { joinedEnv } from '../events/decode.ts';
import type { EnvVar } from './types.ts';

const ONE_BYTE = /^[\x00-\xff]*$/;

/**
 * A copy of `s` that shares no memory with the string it came from. Strings cut out of a larger one (split,
 * slice) may keep the whole original alive in V8, e.g. a raw environment block with its secret values, for
 * as long as the piece is cached. Called on table misses only.
 */
export function detached(s: string): string {
  if (s.length < 13) return s; // V8 copies substrings this short: they never point into another string
  return ONE_BYTE.test(s) ? Buffer.from(s, 'latin1').toString('latin1') : (JSON.parse(JSON.stringify(s)) as string);
}

/** One shared copy of each string (executable paths, comms, environment names), bounded. */
export class StringTable {
  readonly #map = new Map<string, string>();
  readonly #max: number;

  constructor(maxEntries = 65_536) {
    this.#max = maxEntries;
  }

  /** The shared copy of `s`; anything that is not a string (a malformed event's field) passes through. */
  intern(s: string): string {
    if (typeof s !== 'string') return s;
    const hit = this.#map.get(s);
    if (hit !== undefined) return hit;
    if (this.#map.size >= this.#max) this.#map.clear();
    const own = detached(s);
    this.#map.set(own, own);
    return own;
  }

  get size(): number {
    return this.#map.size;
  }
}

/** A scrubbed environment as the cache keeps it: frozen, shared by every process with the same environment. */
export interface SharedEnv {
  /** What the scrub rules keep: names, and allow-listed values (scrubbed). */
  readonly env: readonly EnvVar[];
  /** The same as NAME or NAME=VALUE strings (what an exec event carries after the cache applied it). */
  readonly raw: readonly string[];
  /** Values withheld or masked. */
  readonly scrubbed: number;
}

export interface EnvTableStats {
  hits: number;
  misses: number;
  entries: number;
}

const EMPTY_ENV: SharedEnv = Object.freeze({ env: Object.freeze([]), raw: Object.freeze([]), scrubbed: 0 });

/**
 * Scrubbed environments by content. The key is a SHA-256 of the raw environment, never the raw text: the
 * table must not keep the values the scrub rules withhold, and a weaker hash would let a process that
 * crafts a collision be reported with another process's environment (an LD_PRELOAD hidden behind a
 * harmless one). A hit costs the hash (~1 µs for 0.5 KiB) instead of scrubbing every variable and one
 * object per variable per process.
 */
export class EnvTable {
  readonly #scrub: (envRaw: string[]) => { env: EnvVar[]; scrubbed: number };
  readonly #valueBlind: ((name: string) => boolean) | undefined;
  readonly #strings: StringTable;
  readonly #map = new Map<string, SharedEnv>();
  /** One frozen {name} per withheld variable name: most variables are reported by name only. */
  readonly #names = new Map<string, EnvVar>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  #bytes = 0;
  /**
   * The environment looked up last and its answer. Consecutive execs usually share one (a shell's or a
   * service's children), and comparing the strings costs less than joining and hashing them. It holds one
   * raw environment, the same exposure as the exec event it came from. An environment that differs from it
   * only in values reported by name alone (a shell's `_`, set to each command's path) gets the same answer.
   */
  #lastRaw: string[] | undefined;
  #last: SharedEnv = EMPTY_ENV;
  readonly #stats: EnvTableStats = { hits: 0, misses: 0, entries: 0 };

  /**
   * `scrub` must scrub each variable on its own (what it reports for one depends on that one alone).
   * `valueBlind`, when given, names the variables `scrub` reports by name alone whatever their value: two
   * environments that differ only in such values get one answer without hashing either.
   */
  constructor(
    scrub: (envRaw: string[]) => { env: EnvVar[]; scrubbed: number },
    strings: StringTable,
    o: { maxEntries?: number; maxBytes?: number; valueBlind?: (name: string) => boolean } = {},
  ) {
    this.#scrub = scrub;
    this.#valueBlind = o.valueBlind;
    this.#strings = strings;
    this.#maxEntries = o.maxEntries ?? 4096;
    this.#maxBytes = o.maxBytes ?? 8 << 20;
  }

  /** The scrubbed, shared form of `envRaw`. */
  get(envRaw: string[]): SharedEnv {
    if (envRaw.length === 0) return EMPTY_ENV;
    if (this.#sameAsLast(envRaw)) {
      this.#stats.hits++;
      this.#lastRaw = envRaw;
      return this.#last;
    }
    const joined = joinedEnv(envRaw); // the decoder's string when it had one: no join
    const key = crypto.hash('sha256', joined, 'base64');
    const hit = this.#map.get(key);
    if (hit) {
      this.#stats.hits++;
      this.#lastRaw = envRaw;
      this.#last = hit;
      return hit;
    }
    this.#stats.misses++;
    const r = this.#scrub(envRaw);
    const env: EnvVar[] = new Array(r.env.length);
    const raw: string[] = new Array(r.env.length);
    let bytes = 0;
    for (let i = 0; i < r.env.length; i++) {
      const v = r.env[i]!;
      if (v.value === undefined) {
        const name = this.#strings.intern(v.name);
        let shared = this.#names.get(name);
        if (!shared) {
          if (this.#names.size >= 65_536) this.#names.clear();
          this.#names.set(name, (shared = Object.freeze({ name })));
        }
        env[i] = shared;
        raw[i] = name;
        bytes += 8;
      } else {
        const name = this.#strings.intern(v.name);
        const value = detached(v.value);
        env[i] = Object.freeze({ name, value });
        raw[i] = detached(`${name}=${value}`);
        bytes += 2 * raw[i]!.length + 64;
      }
    }
    const shared: SharedEnv = Object.freeze({ env: Object.freeze(env), raw: Object.freeze(raw), scrubbed: r.scrubbed });
    bytes += 16 * env.length + 128;
    if (this.#map.size >= this.#maxEntries || this.#bytes + bytes > this.#maxBytes) {
      this.#map.clear();
      this.#bytes = 0;
    }
    this.#map.set(key, shared);
    this.#bytes += bytes;
    this.#lastRaw = envRaw;
    this.#last = shared;
    return shared;
  }

  /**
   * Whether `envRaw` scrubs to what the last environment did: the same strings, but for variables of the
   * same name, with a value both times, that the scrub reports by name alone.
   */
  #sameAsLast(envRaw: readonly string[]): boolean {
    const last = this.#lastRaw;
    if (last === undefined || envRaw.length !== last.length) return false;
    for (let i = 0; i < envRaw.length; i++) {
      const a = envRaw[i]!;
      const b = last[i]!;
      if (a === b) continue;
      const v = this.#last.env[i]!;
      const n = v.name.length;
      if (v.value !== undefined || a.charCodeAt(n) !== 0x3d || b.charCodeAt(n) !== 0x3d || !a.startsWith(v.name)) return false;
      if (!this.#valueBlind?.(v.name)) return false;
    }
    return true;
  }

  stats(): EnvTableStats {
    return { ...this.#stats, entries: this.#map.size };
  }
}

/** Whether two credential sets are the same, field by field. */
export function sameCreds(a: Creds, b: Creds): boolean {
  return (
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.euid === b.euid &&
    a.egid === b.egid &&
    a.suid === b.suid &&
    a.sgid === b.sgid &&
    a.fsuid === b.fsuid &&
    a.fsgid === b.fsgid &&
    a.capEffective === b.capEffective &&
    a.capPermitted === b.capPermitted &&
    a.capInheritable === b.capInheritable &&
    a.loginuid === b.loginuid
  );
}

/** One shared object per distinct credential set (the /proc snapshot reads one per process), bounded. */
export class CredsTable {
  readonly #map = new Map<string, Creds>();
  readonly #max: number;

  constructor(maxEntries = 4096) {
    this.#max = maxEntries;
  }

  intern(c: Creds): Creds {
    const key = `${c.uid},${c.gid},${c.euid},${c.egid},${c.suid},${c.sgid},${c.fsuid},${c.fsgid},${c.capEffective},${c.capPermitted},${c.capInheritable},${c.loginuid}`;
    const hit = this.#map.get(key);
    if (hit) return hit;
    if (this.#map.size >= this.#max) this.#map.clear();
    this.#map.set(key, c);
    return c;
  }
}
