// Option validation for sink configs. Every sink resolves its plain config object through these before
// anything starts, so a typo or a bad value fails at start-up with the field's full path
// ("sinks.webhook.url: must be an http(s) URL") instead of at the first event.
import { InvalidArgumentError } from '../bpf/errors.ts';

export type Raw = Record<string, unknown>;

function fail(path: string, what: string): never {
  throw new InvalidArgumentError(`${path}: ${what}`);
}

function show(v: unknown): string {
  try {
    const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
    return s.length > 60 ? `${s.slice(0, 60)}…` : s;
  } catch {
    return typeof v;
  }
}

/**
 * The config object at `path` (undefined/true become {}), checked for unknown keys.
 * @throws InvalidArgumentError when it is not a plain object or has keys outside `known`.
 */
export function object(v: unknown, path: string, known: readonly string[]): Raw {
  if (v === undefined || v === true) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(path, `must be an object, got ${show(v)}`);
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) fail(`${path}.${k}`, `unknown option (known: ${known.join(', ')})`);
  }
  return v as Raw;
}

/** An integer in [min, max], or `def` when absent. @throws InvalidArgumentError */
export function int(o: Raw, key: string, path: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
    fail(`${path}.${key}`, `must be an integer ${range}, got ${show(v)}`);
  }
  return v;
}

/** Like int() but also accepts Infinity (for "retry forever"). @throws InvalidArgumentError */
export function intOrInfinity(o: Raw, key: string, path: string, def: number, min: number): number {
  if (o[key] === Infinity) return Infinity;
  return int(o, key, path, def, min);
}

/** A boolean, or `def` when absent. @throws InvalidArgumentError */
export function bool(o: Raw, key: string, path: string, def: boolean): boolean {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'boolean') fail(`${path}.${key}`, `must be true or false, got ${show(v)}`);
  return v;
}

/** A non-empty string, or `def` when absent (undefined def = required). @throws InvalidArgumentError */
export function string(o: Raw, key: string, path: string, def?: string): string {
  const v = o[key];
  if (v === undefined) {
    if (def === undefined) fail(`${path}.${key}`, 'is required');
    return def;
  }
  if (typeof v !== 'string' || v.length === 0) fail(`${path}.${key}`, `must be a non-empty string, got ${show(v)}`);
  return v;
}

/** An optional non-empty string. @throws InvalidArgumentError */
export function optString(o: Raw, key: string, path: string): string | undefined {
  return o[key] === undefined ? undefined : string(o, key, path);
}

/** One of the given strings. @throws InvalidArgumentError */
export function oneOf<S extends string>(o: Raw, key: string, path: string, choices: readonly S[], def: S): S {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    fail(`${path}.${key}`, `must be one of ${choices.map((c) => `"${c}"`).join(', ')}, got ${show(v)}`);
  }
  return v as S;
}

/** An absolute http(s) URL. @throws InvalidArgumentError */
export function httpUrl(o: Raw, key: string, path: string, def?: string): string {
  const v = o[key] === undefined && def !== undefined ? def : o[key];
  if (typeof v !== 'string') fail(`${path}.${key}`, v === undefined ? 'is required (an http(s) URL)' : 'must be an http(s) URL');
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    fail(`${path}.${key}`, 'must be an http(s) URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(`${path}.${key}`, `must be an http(s) URL, got protocol ${u.protocol}`);
  return u.href;
}

/** A string→string map (HTTP headers, attributes). @throws InvalidArgumentError */
export function stringMap(o: Raw, key: string, path: string): Record<string, string> {
  const v = o[key];
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(`${path}.${key}`, 'must be an object of strings');
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') fail(`${path}.${key}.${k}`, `must be a string, got ${show(x)}`);
    out[k] = x;
  }
  return out;
}

/** HTTP header names and values that fetch would reject at the first request. @throws InvalidArgumentError */
export function headers(o: Raw, key: string, path: string): Record<string, string> {
  const h = stringMap(o, key, path);
  for (const [k, v] of Object.entries(h)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) fail(`${path}.${key}.${k}`, 'is not a valid HTTP header name');
    if (/[\r\n\0]/.test(v)) fail(`${path}.${key}.${k}`, 'header value must not contain CR, LF or NUL');
  }
  return h;
}

/** A string or a non-empty array of strings. @throws InvalidArgumentError */
export function stringList(o: Raw, key: string, path: string, def: string[]): string[] {
  const v = o[key];
  if (v === undefined) return def;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === 'string' && x.length > 0)) {
    fail(`${path}.${key}`, 'must be a non-empty string or a non-empty array of them');
  }
  return list as string[];
}

/** Throws the InvalidArgumentError for `path`. */
export function invalid(path: string, what: string): never {
  fail(path, what);
}
