// How rule files' values are checked and named in errors (rules.ts, exceptions.ts).

/** A YAML mapping (not null, not a list). */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A value as an error names it: a short quoted string, "a list", "a mapping", or the value. */
export const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'string' ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : typeof v === 'object' ? 'a mapping' : String(v));
