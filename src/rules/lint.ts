// Warnings about a rule set that compiles but does not do what its author meant (Falco's loader warns the
// same way): fields no event of the rule's types has (fields.ts), in conditions, exceptions and outputs;
// rules without `types`, checked against every event; macros and lists nothing uses. Warnings never refuse
// a rule set: `vigil rules check` prints them, and the agent logs them when it loads the rules.
import type { ASTNode } from '@marcbachmann/cel-js';
import { FieldCatalog, type RuleVariable } from './fields.ts';
import { fieldAlternatives } from './exceptions.ts';

export interface RuleWarning {
  /** Where: the item ("file item N (rule "x")") and the part (".condition", ".output", …). */
  path: string;
  message: string;
}

const FIELD_VARIABLES: ReadonlySet<string> = new Set<RuleVariable>(['event', 'process', 'parent', 'container', 'pod']);
/** Methods whose first argument names a variable bound in their second (CEL's comprehension macros). */
const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

/**
 * Every `variable.member` a condition reads (`.`, `.?`, has()), with the comprehension variables that shadow
 * a variable's name left out.
 */
export function fieldReads(ast: ASTNode): { v: RuleVariable; field: string }[] {
  const out: { v: RuleVariable; field: string }[] = [];
  const walk = (n: unknown, shadowed: ReadonlySet<string>): void => {
    if (!n || typeof n !== 'object') return;
    if (Array.isArray(n)) {
      for (const x of n) walk(x, shadowed);
      return;
    }
    const node = n as { op?: unknown; args?: unknown };
    if (typeof node.op !== 'string') return;
    const a = node.args;
    if ((node.op === '.' || node.op === '.?') && Array.isArray(a)) {
      const [recv, key] = a as [ASTNode, unknown];
      if (recv.op === 'id' && typeof recv.args === 'string' && FIELD_VARIABLES.has(recv.args) && !shadowed.has(recv.args) && typeof key === 'string') {
        out.push({ v: recv.args as RuleVariable, field: key });
      }
      walk(recv, shadowed);
      return;
    }
    if (node.op === 'rcall' && Array.isArray(a)) {
      const [name, recv, args] = a as [string, ASTNode, ASTNode[]];
      walk(recv, shadowed);
      const bound = args[0];
      if (COMPREHENSIONS.has(name) && args.length >= 2 && bound?.op === 'id' && typeof bound.args === 'string') {
        walk(args.slice(1), new Set([...shadowed, bound.args]));
      } else walk(args, shadowed);
      return;
    }
    walk(a, shadowed);
  };
  walk(ast, new Set());
  return out;
}

/** The keys of a field path: "process.argv[0]" gives process, argv, 0. */
export const pathKeys = (path: string): string[] => path.trim().split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== '');

/** The variable and first member of a dotted field path (exceptions, output placeholders); `{path}` is the event's. */
export function pathRead(path: string, variables: readonly string[]): { v: RuleVariable; field: string } | undefined {
  const keys = pathKeys(path);
  if (!keys.length) return undefined;
  if (!variables.includes(keys[0]!)) return { v: 'event', field: keys[0]! };
  if (!FIELD_VARIABLES.has(keys[0]!) || keys.length < 2) return undefined; // ancestors[0], or a whole variable
  return { v: keys[0] as RuleVariable, field: keys[1]! };
}

export interface LintInput {
  rules: readonly {
    name: string;
    source: string;
    types?: readonly string[];
    ast?: ASTNode;
    outputPaths: readonly string[];
    /** A list named in an exception's values is used. */
    exceptions: readonly { at: string; fields: readonly string[]; values: readonly (readonly unknown[])[] }[];
    identifiers: ReadonlySet<string>;
  }[];
  macros: ReadonlyMap<string, { at: string; ast?: ASTNode; identifiers: ReadonlySet<string> }>;
  lists: ReadonlyMap<string, { at: string; items: readonly unknown[] }>;
  variables: readonly string[];
}

/** The warnings about a rule set that compiled (see the top of this file). */
export function lintRules(input: LintInput, catalog = new FieldCatalog()): RuleWarning[] {
  const warnings: RuleWarning[] = [];
  const warn = (path: string, message: string) => warnings.push({ path, message });
  // A macro's fields are checked against the types of the rules that use it (through other macros too).
  const macroTypes = new Map<string, Set<string> | 'any'>();
  const useMacro = (name: string, types: readonly string[] | undefined, seen: Set<string>): void => {
    const m = input.macros.get(name);
    if (!m || seen.has(name)) return;
    seen.add(name);
    const cur = macroTypes.get(name);
    if (!types) macroTypes.set(name, 'any');
    else if (cur !== 'any') macroTypes.set(name, new Set([...(cur ?? []), ...types]));
    for (const id of m.identifiers) useMacro(id, types, seen);
  };
  const usedLists = new Set<string>();
  // Each missing field once per place it is named in.
  const said = new Set<string>();
  const check = (at: string, read: { v: RuleVariable; field: string } | undefined, types: readonly string[] | undefined, after = '') => {
    const why = read && catalog.missing(read.v, read.field, types);
    if (why && !said.has(`${at}\0${why}`)) {
      said.add(`${at}\0${why}`);
      warn(at, `${why}${after}`);
    }
  };
  for (const r of input.rules) {
    for (const id of r.identifiers) {
      useMacro(id, r.types, new Set());
      if (input.lists.has(id)) usedLists.add(id);
    }
    if (!r.types) warn(r.source, 'no types: the rule is checked against every event, each built as an object for it; name the event types it is about (types: [exec, open, …])');
    if (r.ast) for (const read of fieldReads(r.ast)) check(`${r.source}.condition`, read, r.types);
    for (const p of r.outputPaths) check(`${r.source}.output`, pathRead(p, input.variables), r.types);
    for (const e of r.exceptions) for (const f of e.fields) for (const alt of fieldAlternatives(f)) check(`${e.at}.fields`, pathRead(alt, input.variables), r.types);
  }
  for (const [name, m] of input.macros) {
    const types = macroTypes.get(name);
    if (types === undefined) {
      warn(m.at, `macro ${JSON.stringify(name)} is used by no rule`);
      continue;
    }
    for (const id of m.identifiers) if (input.lists.has(id)) usedLists.add(id);
    const about = types === 'any' ? undefined : [...types];
    if (m.ast) for (const read of fieldReads(m.ast)) check(`${m.at}.condition`, read, about, ` (the macro is used by rules about ${about ? about.join(', ') : 'every type'})`);
  }
  // A list named by a used list's items, or in an exception's values, is used too.
  for (const r of input.rules) for (const e of r.exceptions) for (const t of e.values) for (const x of t.flat()) if (typeof x === 'string' && input.lists.has(x)) usedLists.add(x);
  const pending = [...usedLists];
  while (pending.length) {
    const l = input.lists.get(pending.pop()!);
    for (const x of l?.items ?? []) if (typeof x === 'string' && input.lists.has(x) && !usedLists.has(x)) {
      usedLists.add(x);
      pending.push(x);
    }
  }
  for (const [name, l] of input.lists) if (!usedLists.has(name)) warn(l.at, `list ${JSON.stringify(name)} is used by no rule or macro`);
  return warnings;
}
