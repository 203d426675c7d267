// Conditions compiled to JavaScript: the fast path of rule evaluation. cel-js interprets its AST for every
// event (an overload lookup per operator, an Optional object per `.?`, an error object per missing field); a
// condition of the usual kind (field reads, optionals, comparisons, `in` a list, string tests, has(),
// exists()) compiled once to one JavaScript function costs a fraction of that. cel-js stays the definition of
// what a condition means: the compiled code handles only values whose meaning is plain (two strings, two
// numbers, a list of strings…), and anything else (an error, a value of another type, a string with
// surrogate pairs where CEL counts code points) makes it give up (GiveUp), and cel-js evaluates the
// condition instead. So the result of a compiled condition is cel-js's on every event, errors included;
// tests check this on every default rule and macro, over fuzzed events (test/unit/rules-compile.test.ts).
import type { ASTNode } from '@marcbachmann/cel-js';
import { EventMembers } from '../pipeline/router.ts';

/** Thrown by a compiled condition that met what it does not handle: cel-js decides instead. */
class GiveUp {
  static readonly it = new GiveUp();
}
const giveUp = (): never => {
  throw GiveUp.it;
};

/** What a compiled condition sees: the rule context (variables and macro getters by name). */
type Scope = Record<string, unknown>;
type Fn = (s: Scope) => unknown;
/** An optional value: the value, or NONE (a field that is not there). */
const NONE: unique symbol = Symbol('none');

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

/**
 * A list known when compiling: `x in list` (a Set for strings, a scan otherwise), and its items, for
 * exists() and all() over it.
 */
interface Membership {
  has(x: unknown): boolean;
  readonly items: readonly unknown[];
}
function membership(items: readonly unknown[]): Membership {
  if (items.every((x) => typeof x === 'string')) {
    const set = new Set(items as string[]);
    return { has: (x) => (typeof x === 'string' ? set.has(x) : giveUp()), items };
  }
  return { has: (x) => items.some((y) => equal(x, y)), items };
}

/** The int result of integer arithmetic, within CEL's 64 bits (cel-js reports an overflow: give up). */
const int = (v: bigint): bigint => (v < INT_MIN || v > INT_MAX ? giveUp() : v);
const str = (v: unknown): string => (typeof v === 'string' ? v : giveUp());
/** A string whose indexes CEL counts as JavaScript does (no surrogate pairs). */
const plainStr = (v: unknown): string => (typeof v === 'string' && !SURROGATE.test(v) ? v : giveUp());
const bool = (v: unknown): boolean => (typeof v === 'boolean' ? v : giveUp());
/** A non-negative int index within `max`. */
const index = (v: unknown, max: number): number => (typeof v === 'bigint' && v >= 0n && v <= BigInt(max) ? Number(v) : giveUp());

/**
 * A field of a map, or NONE when it is not there (a value that is not a map: give up). An event's members read
 * as asked for (EventMembers, given to the rules' guards) are the map of its fields, which holds no undefined.
 */
function fieldOf(o: unknown, k: string): unknown {
  if (o instanceof EventMembers) {
    const v = o.member(k);
    return v === undefined ? NONE : v;
  }
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

/** Why a node cannot be compiled: the whole condition is left to cel-js. */
class NotCompiled extends Error {}
const cannot = (why: string): never => {
  throw new NotCompiled(why);
};

/** size() of a string (code points) or a list, as an int. */
function sizeOf(v: unknown): bigint {
  if (typeof v === 'string') return BigInt(plainStr(v).length);
  if (Array.isArray(v)) return BigInt(v.length);
  return giveUp();
}

/** Both numbers, and comparable as plain numbers (else give up: strings compare by code point in CEL). */
function comparable(p: unknown, q: unknown): void {
  if (!isNum(p) || !isNum(q)) giveUp();
  numbers(p as number | bigint, q as number | bigint);
}

/** `v in items` for a list known only when evaluating. */
function inList(v: unknown, items: unknown): boolean {
  if (!Array.isArray(items)) return giveUp();
  for (const y of items) if (equal(v, y)) return true;
  return false;
}

function plus(p: unknown, q: unknown): unknown {
  if (typeof p === 'bigint' && typeof q === 'bigint') return int(p + q);
  if (typeof p === 'number' && typeof q === 'number') return p + q;
  if (typeof p === 'string' && typeof q === 'string') return p + q;
  return giveUp();
}

function minus(p: unknown, q: unknown): unknown {
  if (typeof p === 'bigint' && typeof q === 'bigint') return int(p - q);
  if (typeof p === 'number' && typeof q === 'number') return p - q;
  return giveUp();
}

const negate = (v: unknown): unknown => (typeof v === 'bigint' ? int(-v) : typeof v === 'number' ? -v : giveUp());

/** The list whose items must all be checked: giveUp() unless it is an array. */
const items = (v: unknown): unknown[] => (Array.isArray(v) ? v : giveUp());

/** What generated code reaches by name: the helpers above (and, per condition, its cel-js fallback). */
const HELPERS = { NONE, giveUp, fieldOf, equal, bool, str, plainStr, index, sizeOf, comparable, inList, plus, minus, negate, items };

/** A node as JavaScript: an expression over `s` (the scope), the helpers, constants and temporaries. */
interface Code {
  js: string;
  /** The node's value is an optional (the expression gives the value or NONE). */
  optional: boolean;
  /** The node is a list known when compiling (a literal, a named list): the constant of its membership test. */
  list?: string;
}

/** One condition's generated function being written: its constants and temporaries. */
class Gen {
  readonly consts: unknown[] = [];
  temps = 0;
  readonly variables: ReadonlySet<string>;
  readonly lists: ReadonlyMap<string, readonly unknown[]>;
  /** Comprehension variables in scope: the temporary each one is. */
  locals = new Map<string, string>();
  constructor(variables: ReadonlySet<string>, lists: ReadonlyMap<string, readonly unknown[]>) {
    this.variables = variables;
    this.lists = lists;
  }
  /** A constant the code refers to by name (k0, k1…): values no literal spells exactly, sets, lists. */
  constant(v: unknown): string {
    this.consts.push(v);
    return `k${this.consts.length - 1}`;
  }
  /** A fresh temporary (t0, t1…): each node that needs one gets its own, so nested nodes never clobber it. */
  temp(): string {
    return `t${this.temps++}`;
  }
}

/** A literal's value, or a negated literal's ([0, -1]): known now. */
function literalValue(n: ASTNode): unknown {
  if (n.op === 'value') {
    const v = n.args as unknown;
    if (!(v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'bigint')) cannot('a literal of another type');
    return v;
  }
  if (n.op === '-_' && (n.args as ASTNode).op === 'value') {
    try {
      return negate(literalValue(n.args as ASTNode));
    } catch {
      return cannot('a literal that does not evaluate'); // -"a" and the like: cel-js reports it
    }
  }
  return cannot('a list of expressions');
}

const plain = (js: string, list?: string): Code => ({ js, optional: false, list });

function gen(n: ASTNode, g: Gen): Code {
  const op = n.op as string;
  const a = n.args as unknown;
  const value = (x: ASTNode): string => {
    const c = gen(x, g);
    if (c.optional) cannot('an optional used as a value');
    return c.js;
  };
  switch (op) {
    case 'value': {
      const v = literalValue(n);
      // Strings as JSON (a valid JavaScript literal); numbers, bigints as constants (NaN, -0, 2^63 exactly).
      return plain(typeof v === 'string' ? JSON.stringify(v) : typeof v === 'boolean' || v === null ? String(v) : g.constant(v));
    }
    case 'list': {
      const vals = (a as ASTNode[]).map(literalValue);
      return plain('giveUp()', g.constant(membership(Object.freeze(vals)))); // only `in` reads it (anything else: cel-js)
    }
    case 'id': {
      const name = a as string;
      const local = g.locals.get(name);
      if (local) return plain(local);
      const list = g.lists.get(name);
      if (list) return plain('giveUp()', g.constant(membership(list)));
      if (!g.variables.has(name)) cannot(`unknown name ${name}`);
      return plain(`s[${JSON.stringify(name)}]`);
    }
    case '.':
    case '.?': {
      const [recv, key] = a as [ASTNode, string];
      const r = gen(recv, g);
      const k = JSON.stringify(key);
      if (op === '.?' && !r.optional) return { js: `fieldOf(${r.js}, ${k})`, optional: true };
      const t = g.temp();
      // Selecting from an optional: none stays none, a missing field is none (cel-js's chaining).
      if (r.optional) return { js: `(${t} = ${r.js}, ${t} === NONE ? NONE : fieldOf(${t}, ${k}))`, optional: true };
      return plain(`(${t} = fieldOf(${r.js}, ${k}), ${t} === NONE ? giveUp() : ${t})`); // "No such key": cel-js says so
    }
    case 'call': {
      const [fn, args] = a as [string, ASTNode[]];
      if (fn === 'has' && args.length === 1 && args[0]!.op === '.') {
        const [recv, key] = args[0]!.args as [ASTNode, string];
        return plain(`(fieldOf(${value(recv)}, ${JSON.stringify(key)}) !== NONE)`);
      }
      if (fn === 'size' && args.length === 1) return plain(`sizeOf(${value(args[0]!)})`);
      return cannot(`function ${fn}`);
    }
    case 'rcall':
      return genMethod(a as [string, ASTNode, ASTNode[]], g);
    case 'in': {
      const [x, list] = a as [ASTNode, ASTNode];
      const xs = value(x);
      const l = gen(list, g);
      if (l.optional) cannot('an optional list');
      return plain(l.list ? `${l.list}.has(${xs})` : `inList(${xs}, ${l.js})`);
    }
    case '==':
    case '!=': {
      const [x, y] = (a as ASTNode[]).map(value) as [string, string];
      const c = numberConstant((a as ASTNode[])[1]!);
      let eq = `equal(${x}, ${y})`;
      if (c !== undefined) {
        // `event.ret == 0`: a double against an int literal, compared as doubles (a mixed compare through
        // BigInt allocated per event).
        const t = g.temp();
        eq = `(${t} = ${x}, typeof ${t} === 'number' && ${t} === ${t} ? ${t} === ${g.constant(c)} : equal(${t}, ${y}))`;
      }
      return plain(op === '==' ? eq : `!${eq}`);
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const [x, y] = (a as ASTNode[]).map(value) as [string, string];
      const c = numberConstant((a as ASTNode[])[1]!);
      const p = g.temp();
      const q = g.temp();
      // A number and a bigint compare by value in JavaScript, as in CEL once both are plain (comparable).
      const general = `(${q} = ${y}, comparable(${p}, ${q}), ${p} ${op} ${q})`;
      if (c === undefined) return plain(`(${p} = ${x}, ${general})`);
      return plain(`(${p} = ${x}, typeof ${p} === 'number' && ${p} === ${p} ? ${p} ${op} ${g.constant(c)} : ${general})`); // as in == above
    }
    case '+':
    case '-': {
      const [x, y] = (a as ASTNode[]).map(value) as [string, string];
      return plain(`${op === '+' ? 'plus' : 'minus'}(${x}, ${y})`);
    }
    case '-_':
      return plain(`negate(${value(a as ASTNode)})`);
    case '!_':
      return plain(`!bool(${value(a as ASTNode)})`);
    case '&&':
    case '||': {
      const [x, y] = (a as ASTNode[]).map(value) as [string, string];
      // An error on either side is left to cel-js, which lets the other side decide (CEL's commutative logic).
      return plain(`(bool(${x}) ${op} bool(${y}))`);
    }
    case '?:': {
      const [c, t, f] = (a as ASTNode[]).map(value) as [string, string, string];
      return plain(`(bool(${c}) ? ${t} : ${f})`);
    }
    default:
      return cannot(`operator ${op}`);
  }
}

function genMethod([name, recv, args]: [string, ASTNode, ASTNode[]], g: Gen): Code {
  if (name === 'exists' || name === 'all') {
    const [v, body] = args as [ASTNode, ASTNode];
    if (args.length !== 2 || v.op !== 'id') return cannot(`${name} with ${args.length} arguments`);
    const list = gen(recv, g);
    if (list.optional) return cannot(`${name} over an optional`);
    const it = g.temp();
    const outer = g.locals;
    g.locals = new Map(outer).set(v.args as string, it);
    const b = gen(body, g);
    g.locals = outer;
    if (b.optional) return cannot('an optional predicate');
    const want = name === 'exists';
    // An arrow called at once: inlined by V8 with the function it is in.
    // A list known when compiling (a literal, a named list: `argv.exists(a, secrets.exists(t, a.contains(t)))`)
    // is iterated as it is.
    const xs = list.list ? `${list.list}.items` : `items(${list.js})`;
    return plain(`((xs) => { for (${it} of xs) if (bool(${b.js}) === ${want}) return ${want}; return ${!want}; })(${xs})`);
  }
  const r = gen(recv, g);
  if (r.optional) {
    if (name === 'orValue' && args.length === 1) {
      const d = gen(args[0]!, g);
      if (d.optional) return cannot('orValue of an optional');
      const t = g.temp();
      return plain(`(${t} = ${r.js}, ${t} === NONE ? ${d.js} : ${t})`);
    }
    if (name === 'hasValue' && args.length === 0) return plain(`(${r.js} !== NONE)`);
    return cannot(`${name} on an optional`);
  }
  if (r.list) return cannot(`${name} on a literal list`);
  const argJs = args.map((x) => {
    const c = gen(x, g);
    if (c.optional || c.list) cannot(`an optional or a list as an argument of ${name}`);
    return c.js;
  });
  const [x, y] = argJs as [string, string | undefined];
  const rs = r.js;
  switch (`${name}/${args.length}`) {
    case 'startsWith/1':
      return plain(`str(${rs}).startsWith(str(${x}))`);
    case 'endsWith/1':
      return plain(`str(${rs}).endsWith(str(${x}))`);
    case 'contains/1':
      return plain(`str(${rs}).includes(str(${x}))`);
    case 'lastIndexOf/1':
      return plain(`BigInt(plainStr(${rs}).lastIndexOf(plainStr(${x})))`);
    case 'indexOf/1':
      return plain(`BigInt(plainStr(${rs}).indexOf(plainStr(${x})))`);
    case 'substring/1': {
      const t = g.temp();
      return plain(`(${t} = plainStr(${rs}), ${t}.slice(index(${x}, ${t}.length)))`);
    }
    case 'substring/2': {
      const [t, from, to] = [g.temp(), g.temp(), g.temp()];
      return plain(`(${t} = plainStr(${rs}), ${from} = index(${x}, ${t}.length), ${to} = index(${y}, ${t}.length), ${to} < ${from} ? giveUp() : ${t}.slice(${from}, ${to}))`);
    }
    case 'size/0':
      return plain(`sizeOf(${rs})`);
    default:
      return cannot(`method ${name}`);
  }
}

/**
 * A condition as one generated JavaScript function of the rule context, or undefined when it uses what the
 * generator does not handle (then cel-js evaluates it, always). `variables` are the context's names (event,
 * process, … and the macros), `lists` the named lists. Without `o.interpret`, the function throws GiveUp
 * where cel-js must decide; with it, it calls that instead (any error: CEL's && and || may still decide past
 * an error, and cel-js reports it the same way). With `o.isTrue`, it returns whether the value is `true` (a
 * rule's match, a macro's value), on either path. Generated, not a tree of closures: a closure per AST node
 * made every call between nodes one V8 could not inline (the same few closure bodies for every node of every
 * rule), and cost about 3× more per event (bench/pipeline's rules stage). Only literals and keys go into the
 * source, each as JSON.stringify writes it; names are looked up in `variables` and `lists` first.
 */
export function compileCondition(ast: ASTNode, variables: ReadonlySet<string>, lists: ReadonlyMap<string, readonly unknown[]>, o: { interpret?: Fn; isTrue?: boolean } = {}): Fn | undefined {
  const g = new Gen(variables, lists);
  let c: Code;
  try {
    c = gen(ast, g);
  } catch (err) {
    if (err instanceof NotCompiled) return undefined;
    throw err;
  }
  if (c.optional || c.list) return undefined;
  const temps = Array.from({ length: g.temps }, (_, i) => `t${i}`);
  const value = o.isTrue ? `(${c.js}) === true` : c.js;
  // The fallback inside the function: a wrapper around it would be one more call V8 cannot inline (the
  // same wrapper body for every condition).
  const body = o.interpret ? `try { return ${value}; } catch { fallbacks.n++; return ${o.isTrue ? 'interpret(s) === true' : 'interpret(s)'}; }` : `return ${value};`;
  const scope = { ...HELPERS, fallbacks, interpret: o.interpret };
  const src = [
    '"use strict";',
    `const { ${Object.keys(scope).join(', ')} } = H;`,
    ...g.consts.map((_, i) => `const k${i} = K[${i}];`),
    `return (s) => {${temps.length ? ` let ${temps.join(', ')};` : ''} ${body} };`,
  ].join('\n');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from the AST, see above
  return new Function('H', 'K', src)(scope, g.consts) as Fn;
}

/**
 * Whether a condition is true for a context, as rules and macros are evaluated: its compiled function, with
 * `interpret` (cel-js) inside it where it gives up, or `interpret` alone when it does not compile.
 */
export function conditionTest(ast: ASTNode, variables: ReadonlySet<string>, lists: ReadonlyMap<string, readonly unknown[]>, interpret: Fn): (s: Scope) => boolean {
  return (compileCondition(ast, variables, lists, { interpret, isTrue: true }) ?? ((s) => interpret(s) === true)) as (s: Scope) => boolean;
}

/** How often compiled conditions gave up and cel-js decided (tests, diagnostics). */
export const fallbacks = { n: 0 };
