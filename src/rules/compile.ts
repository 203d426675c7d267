// Conditions compiled to JavaScript closures: the fast path of rule evaluation. cel-js interprets its AST for
// every event (an overload lookup per operator, an Optional object per `.?`, an error object per missing
// field); a condition of the usual kind (field reads, optionals, comparisons, `in` a list, string tests,
// has(), exists()) compiled once to closures costs a fraction of that. cel-js stays the definition of what a
// condition means: the closures handle only values whose meaning is plain (two strings, two numbers, a list
// of strings…), and anything else (an error, a value of another type, a string with surrogate pairs where
// CEL counts code points) makes them give up (GiveUp), and cel-js evaluates the condition instead. So the
// result of a compiled condition is cel-js's on every event, errors included; tests check this on every
// default rule and macro, over fuzzed events (test/unit/rules-compile.test.ts).
import type { ASTNode } from '@marcbachmann/cel-js';

/** Thrown by a compiled condition that met what it does not handle: cel-js decides instead. */
class GiveUp {
  static readonly it = new GiveUp();
}
const giveUp = (): never => {
  throw GiveUp.it;
};

/** What the closures see: the rule context (variables and macro getters by name). */
type Scope = Record<string, unknown>;
type Fn = (s: Scope) => unknown;
/** An optional value: the value, or NONE (a field that is not there). */
const NONE: unique symbol = Symbol('none');

interface Compiled {
  fn: Fn;
  /** The node's value is an optional (fn gives the value or NONE). */
  optional: boolean;
  /** The node is a list known when compiling (a literal, a named list): its membership test. */
  list?: Membership;
}

/** Where names resolve: the context's variables, named lists, and comprehension variables in scope. */
interface Names {
  readonly variables: ReadonlySet<string>;
  readonly lists: ReadonlyMap<string, readonly unknown[]>;
  /** Comprehension variables: a cell per variable, set while its body runs. */
  readonly locals: ReadonlyMap<string, { v: unknown }>;
}

/** A plain object: what cel-js treats as a map with string keys. */
const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
const hasOwn = Object.hasOwn;
/** Strings whose UTF-16 units are their code points: where CEL's indexes and JavaScript's agree. */
const SURROGATE = /[\uD800-\uDFFF]/;
const INT_MIN = -(2n ** 63n);
const INT_MAX = 2n ** 63n - 1n;
/** Largest magnitude at which an int and a double compare the same whichever converts to the other. */
const EXACT = 2n ** 53n;

const isNum = (v: unknown): v is number | bigint => typeof v === 'number' || typeof v === 'bigint';

/** Numbers as CEL compares them, when both are plain (no NaN, no int beyond what a double holds exactly). */
function numbers(a: number | bigint, b: number | bigint): void {
  if (typeof a === 'number' ? Number.isNaN(a) : typeof b === 'number' && (a > EXACT || a < -EXACT)) giveUp();
  if (typeof b === 'number' ? Number.isNaN(b) : typeof a === 'number' && (b > EXACT || b < -EXACT)) giveUp();
}

/** CEL's ==, for values of the same plain kind: two strings, booleans, numbers, nulls. */
function equal(a: unknown, b: unknown): boolean {
  const ta = typeof a;
  if (ta === 'string' || ta === 'boolean') {
    if (typeof b !== ta) giveUp();
    return a === b;
  }
  if (isNum(a) && isNum(b)) {
    numbers(a, b);
    // eslint-disable-next-line eqeqeq -- a number and a bigint compare by value with ==
    return a == b;
  }
  if (a === null && b === null) return true;
  return giveUp();
}

/** `x in list` for a list known when compiling: a Set for strings, a scan otherwise. */
interface Membership {
  has(x: unknown): boolean;
}
function membership(items: readonly unknown[]): Membership {
  if (items.every((x) => typeof x === 'string')) {
    const set = new Set(items as string[]);
    return { has: (x) => (typeof x === 'string' ? set.has(x) : giveUp()) };
  }
  return { has: (x) => items.some((y) => equal(x, y)) };
}

/** The int result of integer arithmetic, within CEL's 64 bits (cel-js reports an overflow: give up). */
const int = (v: bigint): bigint => (v < INT_MIN || v > INT_MAX ? giveUp() : v);
const str = (v: unknown): string => (typeof v === 'string' ? v : giveUp());
/** A string whose indexes CEL counts as JavaScript does (no surrogate pairs). */
const plainStr = (v: unknown): string => (typeof v === 'string' && !SURROGATE.test(v) ? v : giveUp());
const bool = (v: unknown): boolean => (typeof v === 'boolean' ? v : giveUp());
/** A non-negative int index within `max`. */
const index = (v: unknown, max: number): number => (typeof v === 'bigint' && v >= 0n && v <= BigInt(max) ? Number(v) : giveUp());

/** A field of a map, or NONE when it is not there (a value that is not a map: give up). */
function fieldOf(o: unknown, k: string): unknown {
  if (!isMap(o)) return giveUp();
  if (!hasOwn(o, k)) return NONE;
  const v = o[k];
  return v === undefined ? giveUp() : v; // a key set to undefined: whether it is there is cel-js's call
}

/** A numeric literal as a double, when the double is exactly the literal (ints up to 2^53): else undefined. */
function numberConstant(n: ASTNode): number | undefined {
  if (n.op === '-_') {
    const c = numberConstant(n.args as ASTNode);
    return c === undefined ? undefined : -c;
  }
  const v = n.op === 'value' ? (n.args as unknown) : undefined;
  if (typeof v === 'number') return Number.isNaN(v) ? undefined : v;
  return typeof v === 'bigint' && v <= EXACT && v >= -EXACT ? Number(v) : undefined;
}

/** A node whose value is not an optional (and, with `list`, a list known when compiling). */
const plain = (fn: Fn, list?: Membership): Compiled => ({ fn, optional: false, list });

/** Why a node cannot be compiled: the whole condition is left to cel-js. */
class NotCompiled extends Error {}
const cannot = (why: string): never => {
  throw new NotCompiled(why);
};

function compileNode(n: ASTNode, names: Names): Compiled {
  const op = n.op as string;
  const a = n.args as unknown;
  const value = (x: ASTNode): Fn => {
    const c = compileNode(x, names);
    if (c.optional) cannot('an optional used as a value');
    return c.fn;
  };
  switch (op) {
    case 'value': {
      const v = a;
      if (!(v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'bigint')) cannot('a literal of another type');
      return plain(() => v);
    }
    case 'list': {
      const items = a as ASTNode[];
      // Literals and negated literals ([0, -1]): values known now, evaluated once.
      const literal = (x: ASTNode): boolean => x.op === 'value' || (x.op === '-_' && (x.args as ASTNode).op === 'value');
      if (!items.every(literal)) cannot('a list of expressions');
      const vals = items.map((x) => {
        try {
          return compileNode(x, names).fn({});
        } catch {
          return cannot('a literal that does not evaluate'); // -"a" and the like: cel-js reports it
        }
      });
      return plain(() => giveUp(), membership(Object.freeze(vals))); // only `in` reads it (anything else: cel-js)
    }
    case 'id': {
      const name = a as string;
      const local = names.locals.get(name);
      if (local) return plain(() => local.v);
      const list = names.lists.get(name);
      if (list) return plain(() => giveUp(), membership(list));
      if (!names.variables.has(name)) cannot(`unknown name ${name}`);
      return plain((s) => s[name]);
    }
    case '.':
    case '.?': {
      const [recv, key] = a as [ASTNode, string];
      const r = compileNode(recv, names);
      const rf = r.fn;
      if (r.optional) {
        // Selecting from an optional: none stays none, a missing field is none (cel-js's chaining).
        return { fn: (s) => {
          const o = rf(s);
          return o === NONE ? NONE : fieldOf(o, key);
        }, optional: true };
      }
      if (op === '.?') return { fn: (s) => fieldOf(rf(s), key), optional: true };
      return plain((s) => {
        const v = fieldOf(rf(s), key);
        return v === NONE ? giveUp() : v; // "No such key": cel-js says so
      });
    }
    case 'call': {
      const [fn, args] = a as [string, ASTNode[]];
      if (fn === 'has' && args.length === 1 && args[0]!.op === '.') {
        const [recv, key] = args[0]!.args as [ASTNode, string];
        const r = value(recv);
        return plain((s) => fieldOf(r(s), key) !== NONE);
      }
      if (fn === 'size' && args.length === 1) {
        const x = value(args[0]!);
        return plain((s) => sizeOf(x(s)));
      }
      return cannot(`function ${fn}`);
    }
    case 'rcall':
      return compileMethod(a as [string, ASTNode, ASTNode[]], names);
    case 'in': {
      const [x, list] = a as [ASTNode, ASTNode];
      const xf = value(x);
      const l = compileNode(list, names);
      if (l.optional) cannot('an optional list');
      const known = l.list;
      if (known) return plain((s) => known.has(xf(s)));
      const lf = l.fn;
      return plain((s) => {
        const v = xf(s);
        const items = lf(s);
        if (!Array.isArray(items)) return giveUp();
        for (const y of items) if (equal(v, y)) return true;
        return false;
      });
    }
    case '==':
    case '!=': {
      const [x, y] = (a as ASTNode[]).map(value) as [Fn, Fn];
      const c = numberConstant((a as ASTNode[])[1]!);
      const eq: Fn =
        c === undefined
          ? (s) => equal(x(s), y(s))
          : (s) => {
              // `event.ret == 0`: a double against an int literal, compared as doubles (a mixed compare
              // through BigInt allocated per event).
              const p = x(s);
              return typeof p === 'number' && p === p ? p === c : equal(p, y(s));
            };
      return op === '==' ? plain(eq) : plain((s) => !eq(s));
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const [x, y] = (a as ASTNode[]).map(value) as [Fn, Fn];
      const cmp = op === '<' ? (p: number | bigint, q: number | bigint) => p < q : op === '<=' ? (p: number | bigint, q: number | bigint) => p <= q : op === '>' ? (p: number | bigint, q: number | bigint) => p > q : (p: number | bigint, q: number | bigint) => p >= q;
      const c = numberConstant((a as ASTNode[])[1]!);
      return plain((s) => {
        const p = x(s);
        if (c !== undefined && typeof p === 'number' && p === p) return cmp(p, c); // as in == above
        const q = y(s);
        if (!isNum(p) || !isNum(q)) return giveUp(); // strings compare by code point in CEL: cel-js
        numbers(p, q);
        return cmp(p, q);
      });
    }
    case '+':
    case '-': {
      const [x, y] = (a as ASTNode[]).map(value) as [Fn, Fn];
      const plus = op === '+';
      return plain((s) => {
        const p = x(s);
        const q = y(s);
        if (typeof p === 'bigint' && typeof q === 'bigint') return int(plus ? p + q : p - q);
        if (typeof p === 'number' && typeof q === 'number') return plus ? p + q : p - q;
        if (plus && typeof p === 'string' && typeof q === 'string') return p + q;
        return giveUp();
      });
    }
    case '-_': {
      const x = value(a as ASTNode);
      return plain((s) => {
        const v = x(s);
        return typeof v === 'bigint' ? int(-v) : typeof v === 'number' ? -v : giveUp();
      });
    }
    case '!_': {
      const x = value(a as ASTNode);
      return plain((s) => !bool(x(s)));
    }
    case '&&':
    case '||': {
      const [x, y] = (a as ASTNode[]).map(value) as [Fn, Fn];
      // An error on either side is left to cel-js, which lets the other side decide (CEL's commutative logic).
      return op === '&&' ? plain((s) => bool(x(s)) && bool(y(s))) : plain((s) => bool(x(s)) || bool(y(s)));
    }
    case '?:': {
      const [c, t, f] = (a as ASTNode[]).map(value) as [Fn, Fn, Fn];
      return plain((s) => (bool(c(s)) ? t(s) : f(s)));
    }
    default:
      return cannot(`operator ${op}`);
  }
}

/** size() of a string (code points) or a list, as an int. */
function sizeOf(v: unknown): bigint {
  if (typeof v === 'string') return BigInt(plainStr(v).length);
  if (Array.isArray(v)) return BigInt(v.length);
  return giveUp();
}

function compileMethod([name, recv, args]: [string, ASTNode, ASTNode[]], names: Names): Compiled {
  if (name === 'exists' || name === 'all') {
    const [v, body] = args as [ASTNode, ASTNode];
    if (args.length !== 2 || v.op !== 'id') return cannot(`${name} with ${args.length} arguments`);
    const list = compileNode(recv, names);
    if (list.optional || list.list) return cannot(`${name} over an optional or a literal list`);
    const lf = list.fn;
    const cell = { v: undefined as unknown };
    const locals = new Map(names.locals).set(v.args as string, cell);
    const b = compileNode(body, { ...names, locals });
    if (b.optional) return cannot('an optional predicate');
    const bf = b.fn;
    const want = name === 'exists';
    return plain((s) => {
      const items = lf(s);
      if (!Array.isArray(items)) return giveUp();
      for (const x of items) {
        cell.v = x;
        if (bool(bf(s)) === want) return want;
      }
      return !want;
    });
  }
  const r = compileNode(recv, names);
  const rf = r.fn;
  if (r.optional) {
    if (name === 'orValue' && args.length === 1) {
      const d = compileNode(args[0]!, names);
      if (d.optional) return cannot('orValue of an optional');
      const df = d.fn;
      return plain((s) => {
        const v = rf(s);
        return v === NONE ? df(s) : v;
      });
    }
    if (name === 'hasValue' && args.length === 0) return plain((s) => rf(s) !== NONE);
    return cannot(`${name} on an optional`);
  }
  if (r.list) return cannot(`${name} on a literal list`);
  const argFns = args.map((x) => {
    const c = compileNode(x, names);
    if (c.optional || c.list) cannot(`an optional or a list as an argument of ${name}`);
    return c.fn;
  });
  const [x, y] = argFns as [Fn, Fn | undefined];
  switch (`${name}/${args.length}`) {
    case 'startsWith/1':
      return plain((s) => str(rf(s)).startsWith(str(x(s))));
    case 'endsWith/1':
      return plain((s) => str(rf(s)).endsWith(str(x(s))));
    case 'contains/1':
      return plain((s) => str(rf(s)).includes(str(x(s))));
    case 'lastIndexOf/1':
      return plain((s) => BigInt(plainStr(rf(s)).lastIndexOf(plainStr(x(s)))));
    case 'indexOf/1':
      return plain((s) => BigInt(plainStr(rf(s)).indexOf(plainStr(x(s)))));
    case 'substring/1':
      return plain((s) => {
        const v = plainStr(rf(s));
        return v.slice(index(x(s), v.length));
      });
    case 'substring/2':
      return plain((s) => {
        const v = plainStr(rf(s));
        const from = index(x(s), v.length);
        const to = index(y!(s), v.length);
        return to < from ? giveUp() : v.slice(from, to);
      });
    case 'size/0':
      return plain((s) => sizeOf(rf(s)));
    default:
      return cannot(`method ${name}`);
  }
}

/**
 * A condition as closures over the rule context, or undefined when it uses what they do not handle (then
 * cel-js evaluates it, always). `variables` are the context's names (event, process, … and the macros),
 * `lists` the named lists. The closures throw GiveUp where cel-js must decide: use withFallback().
 */
export function compileCondition(ast: ASTNode, variables: ReadonlySet<string>, lists: ReadonlyMap<string, readonly unknown[]>): Fn | undefined {
  try {
    const c = compileNode(ast, { variables, lists, locals: new Map() });
    return c.optional || c.list ? undefined : c.fn;
  } catch (err) {
    if (err instanceof NotCompiled) return undefined;
    throw err;
  }
}

/** How often compiled conditions gave up and cel-js decided (tests, diagnostics). */
export const fallbacks = { n: 0 };

/**
 * The evaluator of a condition: its compiled closures, and cel-js (`interpret`) where they give up (a value
 * they do not handle, an error anywhere, a macro's included: CEL's && and || may still decide past an error),
 * or for every event when it did not compile. Same results, same errors.
 */
export function withFallback(compiled: Fn | undefined, interpret: (s: Scope) => unknown): (s: Scope) => unknown {
  if (!compiled) return interpret;
  return (s) => {
    try {
      return compiled(s);
    } catch {
      fallbacks.n++;
      return interpret(s);
    }
  };
}
