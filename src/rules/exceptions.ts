// Rule exceptions, as Falco writes them: named tuples of fields, each compared with a value, that exempt an
// event from the rule (`exceptions:` on a rule, values added by later files with `append: true`). They keep
// allowlists out of conditions: a site adds its own known writers to a default rule without copying it.
//
//   exceptions:
//     - name: known_writers
//       fields: [process.comm, event.path]     # a list: each value is a tuple of as many
//       comps: [=, startswith]                 # optional; default "=" for each field
//       values: [[apk, /usr/lib/apk], [dpkg, /var/lib/dpkg]]
//     - name: trusted_images
//       fields: container.image                # one field: values is a list of values
//       comps: in                              # optional; default "in"
//       values: [registry.local/agent, registry.local/backup]
//
// Each exception compiles to a test, true when some tuple matches (compileException): an event without one of
// the tuple's fields is not exempt by it. A rule matches when its condition is true and no exception is.
import { describe, isObject } from './yaml-values.ts';

/** The comparisons an exception may use (Falco's, "matches" for a regular expression in place of glob). */
export const EXCEPTION_COMPS = ['=', '!=', '<', '<=', '>', '>=', 'in', 'intersects', 'pmatch', 'contains', 'icontains', 'startswith', 'endswith', 'matches'] as const;
export type ExceptionComp = (typeof EXCEPTION_COMPS)[number];
/** Comparisons whose value is a list (of values, or a list's name). */
const LIST_COMPS: ReadonlySet<string> = new Set(['in', 'intersects', 'pmatch']);
/** Comparisons whose value must be a string. */
const STRING_COMPS: ReadonlySet<string> = new Set(['contains', 'icontains', 'startswith', 'endswith', 'matches']);
const EXCEPTION_KEYS = ['name', 'fields', 'comps', 'values'];

/** One exception of a rule, as its items defined it (values from appends included). */
export interface RuleException {
  name: string;
  /** Field paths: process.comm, event.path, container.image, … */
  fields: string[];
  comps: ExceptionComp[];
  /** Tuples, one value per field (for a list comparison, a list of values or a list's name). */
  values: unknown[][];
  /** Where each tuple was given (an append's values are given by a later item). */
  valuesAt: string[];
  /** Written with one field (fields: x), not a list: values were given as a list of values. */
  single: boolean;
  /** Where it was defined ("file item N (rule "X").exceptions.0"). */
  at: string;
}

type Bad = (at: string, message: string) => void;

const isScalar = (v: unknown): v is string | number | boolean => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

/**
 * Reads a rule item's `exceptions` (at `at`, e.g. "file item 3 (rule "X").exceptions"), given the rule's
 * exceptions so far (an append: an exception named again adds values, a new name adds an exception).
 * Reports every problem through `bad`; returns the new exceptions, or undefined when any was bad.
 */
export function readExceptions(raw: unknown, at: string, roots: readonly string[], prev: readonly RuleException[], bad: Bad): RuleException[] | undefined {
  if (!Array.isArray(raw)) {
    bad(at, `expected a list of exceptions (- name: …, fields: …, values: …), got ${describe(raw)}`);
    return undefined;
  }
  const out = prev.map((e) => ({ ...e, values: [...e.values], valuesAt: [...e.valuesAt] }));
  let ok = true;
  const fail = (where: string, m: string) => {
    ok = false;
    bad(where, m);
  };
  const seen = new Set<string>();
  raw.forEach((e, i) => {
    let where = `${at}.${i}`;
    if (!isObject(e)) return fail(where, `expected a mapping with name, fields and values, got ${describe(e)}`);
    const unknown = Object.keys(e).filter((k) => !EXCEPTION_KEYS.includes(k));
    if (unknown.length) return fail(where, `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${EXCEPTION_KEYS.join(', ')})`);
    if (typeof e.name !== 'string' || !e.name.trim()) return fail(`${where}.name`, `expected a name, got ${describe(e.name)}`);
    const name = e.name;
    where = `${where} (${JSON.stringify(name)})`;
    if (seen.has(name)) return fail(`${where}.name`, `a second exception named ${JSON.stringify(name)} in this item`);
    seen.add(name);
    const existing = out.find((x) => x.name === name);
    if (existing) {
      // Named again (a later item's append): only more values, as in Falco.
      if (e.fields !== undefined || e.comps !== undefined) return fail(where, `exception ${JSON.stringify(name)} exists (${existing.at}): a later item may only add values to it, not fields or comps`);
      const values = readValues(e.values, `${where}.values`, existing, fail);
      if (values) {
        existing.values.push(...values.tuples);
        existing.valuesAt.push(...values.at);
      }
      return;
    }
    const single = typeof e.fields === 'string';
    const fields = single ? [e.fields as string] : e.fields;
    if (!Array.isArray(fields) || !fields.length || !fields.every((f) => typeof f === 'string')) return fail(`${where}.fields`, `expected a field path or a non-empty list of them, got ${describe(e.fields)}`);
    const badField = fields.find((f) => !fieldPathOk(f, roots));
    if (badField !== undefined) return fail(`${where}.fields`, `${JSON.stringify(badField)} is not a field path: write it as <${roots.join('|')}>[.member…], such as process.comm or event.path, or as alternatives such as event.resolvedPath|event.path`);
    let comps: unknown = e.comps ?? (single ? 'in' : fields.map(() => '='));
    if (single && typeof comps === 'string') comps = [comps];
    if (!Array.isArray(comps) || comps.length !== fields.length) return fail(`${where}.comps`, single ? `expected one comparison for the one field, got ${describe(e.comps)}` : `expected a list of ${fields.length} comparisons, one per field, got ${describe(e.comps)}`);
    const badComp = comps.find((c) => !(EXCEPTION_COMPS as readonly unknown[]).includes(c));
    if (badComp !== undefined) return fail(`${where}.comps`, `unknown comparison ${describe(badComp)} (known: ${EXCEPTION_COMPS.join(', ')})`);
    const ex = { fields: fields as string[], comps: comps as ExceptionComp[], single };
    const values = readValues(e.values ?? [], `${where}.values`, ex, fail);
    if (values) out.push({ name, ...ex, values: values.tuples, valuesAt: values.at, at: where });
  });
  return ok ? out : undefined;
}

/**
 * The field paths an exception field names: one, or alternatives ("event.resolvedPath|event.path"), the
 * first the event has being compared. A path given absolute has no resolvedPath (it is not resolved again),
 * so an allowlist of absolute paths needs both.
 */
export const fieldAlternatives = (f: string): string[] => f.split('|').map((p) => p.trim());

/** Whether a field's value counts as present among alternatives: not undefined, null or "". */
export const present = (v: unknown): boolean => v !== undefined && v !== null && v !== '';

/** A field an exception may compare: a variable, then members; or alternatives of those. */
function fieldPathOk(f: string, roots: readonly string[]): boolean {
  return fieldAlternatives(f).every((alt) => {
    const parts = alt.split('.');
    return roots.includes(parts[0]!) && parts.every((p) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(p));
  });
}

/**
 * An exception's values as tuples (one value per field), each checked against its comparison, with where
 * each tuple is (for the errors found when the set is compiled).
 */
function readValues(raw: unknown, at: string, e: Pick<RuleException, 'fields' | 'comps' | 'single'>, fail: Bad): { tuples: unknown[][]; at: string[] } | undefined {
  if (!Array.isArray(raw)) {
    fail(at, `expected a list of values, got ${describe(raw)}`);
    return undefined;
  }
  let tuples: unknown[][];
  if (e.single) {
    // One field: `values: [a, b]`. For a list comparison that is one list (field in [a, b]); otherwise one
    // tuple per value (field startswith a, or field startswith b).
    tuples = LIST_COMPS.has(e.comps[0]!) ? (raw.length ? [[raw]] : []) : raw.map((v) => [v]);
  } else {
    const wrong = raw.findIndex((t) => !Array.isArray(t) || t.length !== e.fields.length);
    if (wrong >= 0) {
      fail(`${at}.${wrong}`, `expected a list of ${e.fields.length} values (${e.fields.join(', ')}), got ${describe(raw[wrong])}`);
      return undefined;
    }
    tuples = raw as unknown[][];
  }
  for (const [ti, t] of tuples.entries()) {
    for (const [fi, v] of t.entries()) {
      const comp = e.comps[fi]!;
      const where = e.single ? (LIST_COMPS.has(comp) ? at : `${at}.${ti}`) : `${at}.${ti}.${fi}`;
      if (LIST_COMPS.has(comp)) {
        const listOk = (Array.isArray(v) && v.every(isScalar)) || (typeof v === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(v));
        if (!listOk) {
          fail(where, `${e.fields[fi]} ${comp}: expected a list of strings and numbers, or a list's name, got ${describe(v)}`);
          return undefined;
        }
        if (comp === 'pmatch' && Array.isArray(v) && !v.every((p) => typeof p === 'string')) {
          fail(where, `${e.fields[fi]} pmatch: expected a list of path prefixes (strings), got ${describe(v)}`);
          return undefined;
        }
      } else if (STRING_COMPS.has(comp) ? typeof v !== 'string' : !isScalar(v)) {
        fail(where, `${e.fields[fi]} ${comp}: expected ${STRING_COMPS.has(comp) ? 'a string' : 'a string, a number or true/false'}, got ${describe(v)}`);
        return undefined;
      } else if (comp === 'matches') {
        try {
          new RegExp(v as string);
        } catch (err) {
          fail(where, `${e.fields[fi]} matches: not a regular expression: ${(err as Error).message}`);
          return undefined;
        }
      }
    }
  }
  return { tuples, at: tuples.map((_, ti) => (e.single && LIST_COMPS.has(e.comps[0]!) ? at : `${at}.${ti}`)) };
}

/** What an exception is evaluated against: the condition's variables (a RuleContext). */
export type ExceptionContext = object;

/**
 * `e` compiled to a test that is true when the event is exempt (some tuple matches), or undefined when it has
 * no values (it exempts nothing) or is bad. Evaluated in JavaScript, not CEL: a field is a path and each
 * comparison a closure, so a tuple costs a few property loads (CEL took ~170 ns a tuple), and equality
 * tuples are found by a Map on their first field instead of one by one. `lists`: the defined lists, for
 * values that name one (a value that is a list's name, or a name among a list's values); a value naming no
 * list is reported through `bad`.
 */
export function compileException(e: RuleException, lists: ReadonlyMap<string, readonly unknown[]>, bad: Bad): ((ctx: ExceptionContext) => boolean) | undefined {
  if (!e.values.length) return undefined;
  const getters = e.fields.map(getter);
  let ok = true;
  const tuples = e.values.map((t, ti) =>
    t.map((v, fi) => {
      const comp = e.comps[fi]!;
      if (!LIST_COMPS.has(comp)) return test(comp, v);
      let items: readonly unknown[];
      if (typeof v === 'string') {
        if (!lists.has(v)) {
          ok = false;
          bad(e.single ? e.valuesAt[ti]! : `${e.valuesAt[ti]}.${fi}`, `${e.fields[fi]} ${comp}: no list named ${JSON.stringify(v)}; write the values as a list ([a, b]) or define the list`);
          return () => false;
        }
        items = lists.get(v)!;
      } else {
        // A list's name among the values stands for its items, as in list items (Falco's lists of lists).
        items = (v as unknown[]).flatMap((x) => (typeof x === 'string' && lists.has(x) ? lists.get(x)! : [x]));
      }
      return listTest(comp, items);
    }),
  );
  if (!ok) return undefined;
  // Tuples whose first comparison is "=" are found by the first field's value; the others are tried in turn.
  const byFirst = new Map<unknown, ((x: unknown) => boolean)[][]>();
  const rest: ((x: unknown) => boolean)[][] = [];
  e.values.forEach((t, ti) => {
    if (e.comps[0] !== '=') {
      rest.push(tuples[ti]!);
      return;
    }
    const list = byFirst.get(t[0]) ?? byFirst.set(t[0], []).get(t[0])!;
    list.push(tuples[ti]!);
  });
  const matches = (ctx: ExceptionContext, tests: ((x: unknown) => boolean)[][], from: number): boolean => {
    for (const tests1 of tests) {
      let all = true;
      for (let fi = from; fi < tests1.length && all; fi++) {
        const x = getters[fi]!(ctx);
        all = x !== undefined && tests1[fi]!(x);
      }
      if (all) return true;
    }
    return false;
  };
  return (ctx) => {
    if (byFirst.size) {
      const first = getters[0]!(ctx);
      const found = first === undefined ? undefined : byFirst.get(first);
      if (found && matches(ctx, found, 1)) return true;
    }
    return rest.length > 0 && matches(ctx, rest, 0);
  };
}

/**
 * Reads a field from the context: undefined when any member on the way is missing (no exemption). Of
 * alternatives, the first present (not undefined, null or "", as output placeholders choose).
 */
function getter(field: string): (ctx: ExceptionContext) => unknown {
  const alts = fieldAlternatives(field);
  if (alts.length > 1) {
    const each = alts.map(getter);
    return (ctx) => {
      for (const g of each) {
        const v = g(ctx);
        if (present(v)) return v;
      }
      return undefined;
    };
  }
  const keys = field.split('.');
  return (ctx) => {
    let v: unknown = (ctx as Record<string, unknown>)[keys[0]!];
    for (let i = 1; i < keys.length; i++) {
      if (v === null || typeof v !== 'object' || !Object.hasOwn(v, keys[i]!)) return undefined;
      v = (v as Record<string, unknown>)[keys[i]!];
    }
    return v === null ? undefined : v;
  };
}

/** A comparison with one value. Values of another kind than the field's compare false (not an error). */
function test(comp: ExceptionComp, v: unknown): (x: unknown) => boolean {
  const s = String(v);
  switch (comp) {
    case '=': return (x) => x === v;
    case '!=': return (x) => x !== v;
    case '<': return (x) => typeof x === typeof v && (x as number) < (v as number);
    case '<=': return (x) => typeof x === typeof v && (x as number) <= (v as number);
    case '>': return (x) => typeof x === typeof v && (x as number) > (v as number);
    case '>=': return (x) => typeof x === typeof v && (x as number) >= (v as number);
    case 'contains': return (x) => typeof x === 'string' && x.includes(s);
    case 'icontains': {
      const low = asciiLower(s);
      return (x) => typeof x === 'string' && asciiLower(x).includes(low);
    }
    case 'startswith': return (x) => typeof x === 'string' && x.startsWith(s);
    case 'endswith': return (x) => typeof x === 'string' && x.endsWith(s);
    case 'matches': {
      const re = new RegExp(s); // checked when read
      return (x) => typeof x === 'string' && re.test(x);
    }
    default: return () => false; // list comparisons: listTest
  }
}

/** A comparison with a list of values (in, intersects, pmatch). */
function listTest(comp: ExceptionComp, items: readonly unknown[]): (x: unknown) => boolean {
  const set = new Set(items);
  switch (comp) {
    case 'in': return (x) => set.has(x);
    case 'intersects': return (x) => Array.isArray(x) && x.some((y) => set.has(y));
    default: {
      // pmatch: a path equal to a prefix (written with a trailing / or not), or below it.
      const prefixes = items.map((p) => String(p).replace(/(.)\/+$/, '$1'));
      return (x) => typeof x === 'string' && prefixes.some((p) => x === p || x.startsWith(p.endsWith('/') ? p : `${p}/`));
    }
  }
}

/** Lowercases ASCII letters only (as Falco's icontains does). */
const asciiLower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
