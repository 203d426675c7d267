// Detection rules: Falco's model (a file is a sequence of lists, macros and rules; a later item of the same
// name replaces or amends an earlier one), with conditions in CEL, the Common Expression Language Kubernetes
// uses for admission policies, parsed, type-checked and evaluated by @marcbachmann/cel-js. A rule set is
// compiled whole before it is used: one bad item anywhere and nothing of it is loaded (RuleError lists every
// bad item with where it is). Evaluating (the engine) never throws: an error in a condition is no match,
// counted per rule.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Environment, serialize, type ASTNode, type ParseResult } from '@marcbachmann/cel-js';
import { parseDocument } from 'yaml';
import { InvalidArgumentError } from '../bpf/errors.ts';
import { anyGuard, type EventGuard } from '../pipeline/router.ts';
import type { OutputEvent } from '../pipeline/types.ts';
import { RECORD_EVENT_TYPES, unknownTypes } from '../pipeline/event-types.ts';

import { conditionTest } from './compile.ts';
import { compileException, fieldAlternatives, present, readExceptions, type RuleException } from './exceptions.ts';
import { COMMON_EVENT_KEYS } from './fields.ts';
import { lintRules, pathKeys, type LintInput, type RuleWarning } from './lint.ts';
import { inKernel, isKill, readActions, type ActionSignal, type RuleAction } from './actions.ts';
import { conditionGuard, readsEventType, withEventType } from './prefilter.ts';
import { kernelSelector, NO_MEMBERS, type KernelSelector } from './kernel.ts';
import { inCidr, parseBlocks } from './cidr.ts';
import { PRIORITIES, priorityOf, type Priority } from './priorities.ts';
import { describe, isObject } from './yaml-values.ts';

export { PRIORITIES, type Priority, type RuleException };

/** Every event type a rule can be about (`types`): the process, container and syscall events (not alerts). */
export const RULE_EVENT_TYPES: ReadonlySet<string> = RECORD_EVENT_TYPES;

/** The variables a condition sees; `event` is the whole event, the others its parts ({} / [] when absent). */
const VARIABLES = ['event', 'process', 'parent', 'container', 'pod', 'ancestors'] as const;
/** The members every event has (fields.ts): what a guard's fields do not hold. */
const COMMON_SET: ReadonlySet<string> = new Set(COMMON_EVENT_KEYS);
/** The rule set embedded in vigil (rules.defaults). */
export const DEFAULT_RULES_FILE = path.join(import.meta.dirname, 'default.yaml');

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** CEL's reserved words and vigil's variables: not usable as list or macro names. */
const RESERVED = new Set([...VARIABLES, 'true', 'false', 'null', 'in', 'as', 'break', 'const', 'continue', 'else', 'for', 'function', 'if', 'import', 'let', 'loop', 'package', 'namespace', 'return', 'var', 'void', 'while', 'has', 'size', 'type', 'int', 'uint', 'double', 'string', 'bytes', 'bool', 'list', 'map', 'dyn', 'timestamp', 'duration', 'matches', 'exists', 'all', 'filter', 'optional']);

/** A rule set that does not compile: every bad item, with where it is ("default.yaml item 3 (rule "X").condition"). */
export class RuleError extends InvalidArgumentError {
  readonly issues: { path: string; message: string }[];
  constructor(issues: { path: string; message: string }[]) {
    super(`invalid rules: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.issues = issues;
  }
}

/** Where rule items come from: a file, or the configuration's rules.inline. */
export interface RuleSource {
  /** Where the items are, in errors: "rules.files.0 (/etc/vigil/rules.yaml)", or the file's path. */
  name: string;
  items: unknown;
  /** How errors name item i (from 0); default: "<name> item <i+1>". */
  itemPath?: (i: number) => string;
}

export interface RuleSetOptions {
  sources: RuleSource[];
  /** Rule names turned off after loading (an unknown name is an error: a typo would leave a rule on). */
  disabled?: string[];
  /** When not empty, only rules with at least one of these tags stay on (Falco's -t). */
  enabledTags?: string[];
  /** Rules with any of these tags are turned off (Falco's -T); applied after enabledTags. */
  disabledTags?: string[];
  /** Rules below this priority are not loaded (Falco's priority threshold). */
  minPriority?: Priority;
}

/** One rule as its items defined it (the last definition, overrides and appends applied). */
export interface RuleDefinition {
  name: string;
  desc: string;
  priority: Priority;
  tags: string[];
  /** The event types it is about; undefined: every type. */
  types: string[] | undefined;
  condition: string;
  /** Falco's exceptions: an event some exception matches is exempt (exceptions.ts). */
  exceptions: RuleException[];
  output: string;
  /** What it does besides alerting (actions.ts): carried out only with rules.enforce. */
  actions: RuleAction[];
  /** Where it was defined last ("file item N"). */
  source: string;
  enabled: boolean;
}

/** One rule, compiled. */
export interface Rule extends RuleDefinition {
  /** Whether it matches (throws on an evaluation error: the engine counts those). */
  match(ctx: RuleContext): boolean;
  /** The output with its {field} placeholders filled from the event. */
  format(ev: OutputEvent): string;
  /**
   * False only for events whose own members alone make the condition false (prefilter.ts); undefined when
   * the condition has no conjunct that reads only those.
   */
  guard: EventGuard | undefined;
  /**
   * For a condition that reads event.type, the guard of each of the rule's types, made with that type in its
   * place (withEventType): sharper than `guard`, which cannot read the type. Undefined otherwise.
   */
  typeGuards?: Map<string, EventGuard | undefined>;
  /** The condition as the kernel checks it, for a rule whose kill action is inKernel (kernel.ts). */
  kernel?: KernelSelector;
}

/** What a condition is evaluated against: made once per event, shared by every rule (macros memoized). */
export interface RuleContext {
  event: OutputEvent;
  process: object;
  parent: object;
  container: object;
  pod: object;
  ancestors: readonly number[];
}

const NO_ANCESTORS: readonly number[] = Object.freeze([]);

// ---- reading ------------------------------------------------------------------------------------------------

/** Reads a rule file (YAML). Throws RuleError naming the file (as `label`) and the line of a YAML error. */
export function readRuleFile(file: string, label = file): RuleSource {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(fs.readFileSync(file));
  } catch (err) {
    const why = err instanceof TypeError ? 'not valid UTF-8; save the file as UTF-8' : `cannot read it: ${(err as Error).message}`;
    throw new RuleError([{ path: label, message: why }]);
  }
  const doc = parseDocument(text, { logLevel: 'error', uniqueKeys: true, prettyErrors: true });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const at = problem.linePos?.[0] ? `line ${problem.linePos[0].line}, column ${problem.linePos[0].col}` : '(file)';
    throw new RuleError([{ path: `${label} ${at}`, message: problem.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '') }]);
  }
  return { name: label, items: doc.toJS({ maxAliasCount: 100 }) ?? [] };
}

// ---- compiling ----------------------------------------------------------------------------------------------

const RULE_FIELDS = ['rule', 'desc', 'condition', 'exceptions', 'output', 'priority', 'tags', 'types', 'enabled', 'actions', 'append'];
const LIST_FIELDS = ['list', 'items', 'append'];
const MACRO_FIELDS = ['macro', 'condition', 'append'];

/**
 * Compiles rule sources into a RuleSet: lists, then macros, then rules, each condition parsed and type-checked
 * against the variables and the names defined. Throws RuleError listing every problem; nothing is half-loaded.
 */
export function compileRules(o: RuleSetOptions): RuleSet {
  const issues: { path: string; message: string }[] = [];
  const lists = new Map<string, { items: unknown[]; at: string }>();
  const macros = new Map<string, { condition: string; at: string }>();
  const rules = new Map<string, RuleDefinition>();
  const bad = (at: string, message: string) => issues.push({ path: at, message });

  for (const src of o.sources) {
    if (!Array.isArray(src.items)) {
      bad(src.name, `expected a list of items (- list: …, - macro: …, - rule: …), got ${describe(src.items)}`);
      continue;
    }
    src.items.forEach((item, i) => {
      let at = src.itemPath ? src.itemPath(i) : `${src.name} item ${i + 1}`;
      if (!isObject(item)) return bad(at, `expected a mapping with list, macro or rule, got ${describe(item)}`);
      const kinds = ['list', 'macro', 'rule'].filter((k) => Object.hasOwn(item, k));
      if (kinds.length !== 1) return bad(at, kinds.length ? `has ${kinds.join(' and ')}: an item is one list, one macro or one rule` : `has none of list, macro, rule (fields: ${Object.keys(item).slice(0, 6).join(', ') || 'none'})`);
      const kind = kinds[0]!;
      const name = item[kind];
      if (typeof name !== 'string' || !name.trim()) return bad(`${at}.${kind}`, `expected a name, got ${describe(name)}`);
      at = `${at} (${kind} ${JSON.stringify(name)})`;
      const known = kind === 'rule' ? RULE_FIELDS : kind === 'list' ? LIST_FIELDS : MACRO_FIELDS;
      const unknown = Object.keys(item).filter((k) => !known.includes(k));
      if (unknown.length) return bad(at, `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${known.join(', ')})`);
      if (item.append !== undefined && typeof item.append !== 'boolean') return bad(`${at}.append`, `expected true or false, got ${describe(item.append)}`);
      const append = item.append === true;

      if (kind === 'list' || kind === 'macro') {
        if (!IDENT.test(name) || RESERVED.has(name)) return bad(`${at}.${kind}`, `a ${kind} name must be an identifier (letters, digits, _) and not one of ${VARIABLES.join(', ')} or a CEL word`);
        const other = kind === 'list' ? macros : lists;
        if (other.has(name)) return bad(`${at}.${kind}`, `${JSON.stringify(name)} is already a ${kind === 'list' ? 'macro' : 'list'} (${other.get(name)!.at})`);
      }
      if (kind === 'list') {
        const items = item.items;
        if (!Array.isArray(items) || !items.every((x) => typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x)))) return bad(`${at}.items`, `expected a list of strings and numbers, got ${describe(items)}`);
        const prev = lists.get(name);
        if (append && !prev) return bad(at, `append: no earlier list ${JSON.stringify(name)} to append to`);
        lists.set(name, { items: append ? [...prev!.items, ...items] : [...items], at });
        return;
      }
      if (kind === 'macro') {
        if (typeof item.condition !== 'string' || !item.condition.trim()) return bad(`${at}.condition`, `expected a CEL expression, got ${describe(item.condition)}`);
        const prev = macros.get(name);
        if (append && !prev) return bad(at, `append: no earlier macro ${JSON.stringify(name)} to append to`);
        macros.set(name, { condition: append ? `(${prev!.condition}) || (${item.condition})` : item.condition, at });
        return;
      }
      // A rule. An item that names an earlier rule and says only `enabled` turns it on or off (Falco's way of
      // switching off a rule of the default set from a later file); `append: true` adds to its condition.
      const prev = rules.get(name);
      const onlyEnabled = Object.keys(item).every((k) => k === 'rule' || k === 'enabled');
      if (onlyEnabled && Object.hasOwn(item, 'enabled')) {
        if (!prev) return bad(at, `no earlier rule ${JSON.stringify(name)} to turn ${item.enabled ? 'on' : 'off'}`);
        if (typeof item.enabled !== 'boolean') return bad(`${at}.enabled`, `expected true or false, got ${describe(item.enabled)}`);
        prev.enabled = item.enabled;
        return;
      }
      if (append) {
        if (!prev) return bad(at, `append: no earlier rule ${JSON.stringify(name)} to append to`);
        const extra = Object.keys(item).filter((k) => !['rule', 'append', 'condition', 'exceptions'].includes(k));
        if (extra.length) return bad(at, `append takes only a condition and exceptions to add, not ${extra.join(', ')}`);
        if (item.condition === undefined && item.exceptions === undefined) return bad(at, 'append: give a condition or exceptions to add');
        if (item.condition !== undefined && (typeof item.condition !== 'string' || !item.condition.trim())) return bad(`${at}.condition`, `expected a CEL expression, got ${describe(item.condition)}`);
        // Exceptions named again get more values; new names are new exceptions (Falco's appends).
        const exceptions = item.exceptions === undefined ? prev.exceptions : readExceptions(item.exceptions, `${at}.exceptions`, VARIABLES, prev.exceptions, bad);
        if (!exceptions) return;
        if (typeof item.condition === 'string') {
          prev.condition = `(${prev.condition}) && (${item.condition})`;
          prev.source = at;
        }
        prev.exceptions = exceptions;
        return;
      }
      const r = rawRule(name, item, at, bad);
      if (r) rules.set(name, r);
    });
  }
  for (const n of o.disabled ?? []) {
    const r = rules.get(n);
    if (r) r.enabled = false;
    else bad('rules.disabled', `no rule named ${JSON.stringify(n)}${rules.size ? ` (rules: ${[...rules.keys()].slice(0, 5).map((k) => JSON.stringify(k)).join(', ')}${rules.size > 5 ? ', …' : ''})` : ''}`);
  }
  // Tags select after names: an unknown tag is an error too (it would select nothing, or leave rules on).
  const known = new Set([...rules.values()].flatMap((r) => r.tags));
  const tagList = (key: string, tags: string[] | undefined): Set<string> => {
    for (const t of tags ?? []) if (!known.has(t)) bad(key, `no rule has the tag ${JSON.stringify(t)} (tags: ${[...known].sort().slice(0, 8).join(', ')}${known.size > 8 ? ', …' : ''})`);
    return new Set(tags ?? []);
  };
  const only = tagList('rules.enabledTags', o.enabledTags);
  const off = tagList('rules.disabledTags', o.disabledTags);
  for (const r of rules.values()) {
    if (only.size && !r.tags.some((t) => only.has(t))) r.enabled = false;
    if (r.tags.some((t) => off.has(t))) r.enabled = false;
  }
  // Conditions are compiled even after an item was refused, so that one run reports every problem.

  // Lists may name other lists among their items (Falco): expanded, once, in order of definition.
  const listValues = new Map<string, unknown[]>();
  for (const [name, l] of lists) listValues.set(name, l.items.flatMap((x) => (typeof x === 'string' && x !== name && listValues.has(x) ? listValues.get(x)! : [x])));

  const env = conditionEnvironment(listValues, macros.keys());

  const compile = (src: string, at: string): ParseResult | undefined => {
    try {
      const p = env.parse(src);
      const t = p.check();
      if (!t.valid) throw t.error!;
      if (t.type !== 'bool' && t.type !== 'dyn') throw new Error(`the condition is of type ${t.type}; it must be true or false`);
      checkCidrLists(p.ast, listValues);
      return p;
    } catch (err) {
      bad(at, celMessage(err));
      return undefined;
    }
  };
  const macroPrograms = new Map<string, ParseResult>();
  for (const [name, m] of macros) {
    const p = compile(m.condition, `${m.at}.condition`);
    if (p) macroPrograms.set(name, p);
  }
  // Each condition compiled to a JavaScript function where it can be, cel-js where that gives up (compile.ts).
  const names = contextNames(macros.keys());
  const evaluator = (p: ParseResult) => conditionTest(p.ast, names, listValues, (ctx) => p(ctx));
  // A macro that uses itself, through others or directly, would never finish.
  for (const [name, p] of macroPrograms) {
    const cycle = macroCycle(name, p, macroPrograms);
    if (cycle) bad(`${macros.get(name)!.at}.condition`, `macros use each other in a cycle: ${cycle.join(' → ')}`);
  }
  // An inKernel kill: the whole condition, as the kernel checks it, or the rule is refused.
  const macroAsts = new Map([...macros.keys()].map((name) => [name, macroPrograms.get(name)?.ast]));
  // A kill rule's conjuncts about the container alone, evaluated in user space for each container as the
  // rule engine would evaluate them (compiled, cel-js where that gives up); an error is not a match.
  const containerTest = (parts: ASTNode[]) => {
    const p = env.parse(parts.map((x) => `(${serialize(x)})`).join(' && '));
    const test = conditionTest(p.ast, SCOPE_NAMES, listValues, (ctx) => p(ctx));
    const scope = { container: {}, pod: {} };
    return (container: object, pod: object): boolean => {
      scope.container = container;
      scope.pod = pod;
      try {
        return test(scope);
      } catch {
        return false;
      }
    };
  };
  const kernelOf = (r: RuleDefinition, ast: ASTNode): KernelSelector | undefined => {
    if (r.exceptions.length) {
      bad(`${r.source}.actions`, `${r.actions.some((a) => !isKill(a)) ? 'deny' : 'inKernel'}: the kernel cannot check exceptions; write them into the condition (&& !(...))`);
      return undefined;
    }
    const deny = r.actions.some((a) => !isKill(a));
    if (deny && r.actions.some((a) => isKill(a) && a.kill.inKernel)) {
      bad(`${r.source}.actions`, 'deny and an inKernel kill in one rule: the kernel denies the connect or bind, or kills; a kill beside a deny is done from user space');
      return undefined;
    }
    try {
      return kernelSelector(r.types, ast, { lists: listValues, macros: macroAsts, containerTest }, deny ? 'deny' : 'kill');
    } catch (err) {
      bad(`${r.source}.actions`, (err as Error).message);
      return undefined;
    }
  };
  const compiled: Rule[] = [];
  const lintRulesIn: LintInput['rules'][number][] = [];
  const min = PRIORITIES.indexOf(o.minPriority ?? 'debug');
  for (const r of rules.values()) {
    const p = compile(r.condition, `${r.source}.condition`);
    lintRulesIn.push({ name: r.name, source: r.source, types: r.types, ast: p?.ast, outputPaths: outputPaths(r.output), exceptions: r.exceptions, identifiers: p ? identifiers(p.ast) : new Set() });
    const format = compileOutput(r.output, (m) => bad(`${r.source}.output`, m));
    // Exceptions are checked only once the condition is true (rules rarely match).
    const exempt: ((ctx: RuleContext) => boolean)[] = [];
    for (const e of r.exceptions) {
      const test = compileException(e, listValues, bad);
      if (test) exempt.push(test); // a bad one is reported: the set is refused below
    }
    if (!p || !format) continue;
    const enabled = r.enabled && PRIORITIES.indexOf(r.priority) <= min;
    const test = evaluator(p);
    const match = (exempt.length === 0 ? test : (ctx: RuleContext) => test(ctx as unknown as Record<string, unknown>) && !exempt.some((t) => t(ctx))) as (ctx: RuleContext) => boolean;
    const guard = conditionGuard(p.ast, listValues, COMMON_SET);
    // A condition that reads event.type gets a guard per type of the rule, that type put in its place.
    const typeGuards = r.types && readsEventType(p.ast) ? new Map(r.types.map((t) => [t, conditionGuard(withEventType(p.ast, t), listValues, COMMON_SET)])) : undefined;
    const kernel = r.actions.some(inKernel) ? kernelOf(r, p.ast) : undefined;
    compiled.push({ ...r, enabled, match: kernel?.denies ? denyScoped(kernel, match) : match, format, guard, typeGuards, ...(kernel ? { kernel } : {}) });
  }
  if (issues.length) throw new RuleError(issues);
  const warnings = lintRules({
    rules: lintRulesIn,
    macros: new Map([...macros].map(([name, m]) => {
      const ast = macroPrograms.get(name)?.ast;
      return [name, { at: m.at, ast, identifiers: ast ? identifiers(ast) : new Set<string>() }];
    })),
    lists,
    variables: VARIABLES,
  });
  const digest = createHash('sha256').update(JSON.stringify({ l: [...listValues], m: [...macros].map(([k, v]) => [k, v.condition]), r: compiled.map((r) => [r.name, r.desc, r.priority, r.tags, r.types, r.condition, r.exceptions.map(({ at: _a, valuesAt: _v, ...e }) => e), r.output, r.enabled, r.actions]) })).digest('hex');
  return new RuleSet(compiled, listValues, new Map([...macroPrograms].map(([name, p]) => [name, evaluator(p)])), digest, warnings);
}

/**
 * Throws when an inCidr() call's list is not a list of IP addresses and CIDR blocks: a typo in a block is an
 * error when the rules load, not a failed check on every connect.
 */
function checkCidrLists(n: unknown, lists: ReadonlyMap<string, readonly unknown[]>): void {
  if (Array.isArray(n)) return n.forEach((x) => checkCidrLists(x, lists));
  if (!n || typeof n !== 'object') return;
  const node = n as ASTNode;
  if (node.op === 'rcall' && (node.args as [string, ASTNode, ASTNode[]])[0] === 'inCidr') {
    const arg = (node.args as [string, ASTNode, ASTNode[]])[2][0];
    const items = arg?.op === 'list' ? (arg.args as ASTNode[]).map((x) => (x.op === 'value' ? x.args : serialize(x))) : arg?.op === 'id' ? lists.get(arg.args as string) : undefined;
    if (!items) throw new Error(`${serialize(node)}: inCidr takes a list of CIDR blocks, written out or named`);
    try {
      parseBlocks(items);
    } catch (err) {
      throw new Error(`${serialize(node)}: ${(err as Error).message}`);
    }
  }
  checkCidrLists(node.args, lists);
}

/** The CEL environment conditions are parsed and checked in: the variables, the named lists, the macros. */
export function conditionEnvironment(lists: ReadonlyMap<string, readonly unknown[]>, macros: Iterable<string>): Environment {
  const env = new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: false });
  // address.inCidr(blocks): whether an IP address is in one of the blocks (cidr.ts).
  env.registerFunction({ name: 'inCidr', receiverType: 'string', returnType: 'bool', handler: (s: string, blocks: unknown[]) => inCidr(s, blocks), params: [{ name: 'blocks', type: 'list' }] });
  for (const v of VARIABLES) env.registerVariable(v, v === 'ancestors' ? 'list' : 'map');
  for (const [name, items] of lists) env.registerConstant(name, 'list', items);
  for (const name of macros) env.registerVariable(name, 'bool');
  return env;
}

/** What a kill rule's container part reads (kernel.ts). */
const SCOPE_NAMES: ReadonlySet<string> = new Set(['container', 'pod']);

/** The names a condition's context gives values to: the variables and the macros. */
export const contextNames = (macros: Iterable<string>): Set<string> => new Set<string>([...VARIABLES, ...macros]);

function rawRule(name: string, item: Record<string, unknown>, at: string, bad: (at: string, m: string) => void): RuleDefinition | undefined {
  let ok = true;
  const failAt = (where: string, m: string) => {
    ok = false;
    bad(where, m);
  };
  const fail = (field: string, m: string) => failAt(`${at}.${field}`, m);
  const str = (k: string, required: boolean) => {
    const v = item[k];
    if (v === undefined && !required) return '';
    if (typeof v !== 'string' || (required && !v.trim())) fail(k, `expected ${required ? 'a non-empty ' : 'a '}string, got ${describe(v)}`);
    return typeof v === 'string' ? v : '';
  };
  const condition = str('condition', true);
  const output = str('output', true);
  const desc = str('desc', false);
  const priority = priorityOf(item.priority);
  if (!priority) fail('priority', `expected one of ${PRIORITIES.join(', ')}, got ${describe(item.priority)}`);
  const tags = item.tags ?? [];
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) fail('tags', `expected a list of strings, got ${describe(tags)}`);
  let types: string[] | undefined;
  if (item.types !== undefined) {
    if (!Array.isArray(item.types) || !item.types.length || !item.types.every((t) => typeof t === 'string')) fail('types', `expected a non-empty list of event types, got ${describe(item.types)}`);
    else {
      const why = unknownTypes(item.types as string[], RULE_EVENT_TYPES);
      if (why) fail('types', why);
      else types = [...new Set(item.types as string[])];
    }
  }
  const enabled = item.enabled ?? true;
  if (typeof enabled !== 'boolean') fail('enabled', `expected true or false, got ${describe(enabled)}`);
  const exceptions = item.exceptions === undefined ? [] : readExceptions(item.exceptions, `${at}.exceptions`, VARIABLES, [], failAt);
  const actions = item.actions === undefined ? [] : readActions(item.actions, `${at}.actions`, failAt);
  if (!ok) return undefined;
  return { name, desc, priority: priority!, tags: tags as string[], types, condition, exceptions: exceptions!, output, actions: actions!, enabled: enabled as boolean, source: at };
}

/** The first line of a CEL error, with the column of the caret under it when there is one. */
function celMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const lines = msg.split('\n');
  const caret = lines.find((l) => /^\s*\^\s*$/.test(l));
  const code = lines.find((l) => /^>\s+\d+ \| /.test(l));
  if (caret && code) {
    const col = caret.indexOf('^') - code.indexOf('|') - 2 + 1;
    if (col >= 1) return `${lines[0]} (at column ${col})`;
  }
  return lines[0]!;
}

/** The names a condition refers to as variables. */
function identifiers(node: ASTNode | unknown, out = new Set<string>()): Set<string> {
  if (!node || typeof node !== 'object') return out;
  const n = node as { op?: string; args?: unknown };
  if (n.op === 'id' && typeof n.args === 'string') out.add(n.args);
  else if (Array.isArray(n.args)) for (const a of n.args) identifiers(a, out);
  else if (n.args && typeof n.args === 'object') identifiers(n.args, out);
  if (Array.isArray(node)) for (const a of node) identifiers(a, out);
  return out;
}

function macroCycle(start: string, p: ParseResult, all: Map<string, ParseResult>): string[] | undefined {
  const walk = (name: string, prog: ParseResult, trail: string[]): string[] | undefined => {
    for (const id of identifiers(prog.ast)) {
      if (!all.has(id)) continue;
      if (id === start) return [...trail, id];
      if (trail.includes(id)) continue;
      const found = walk(id, all.get(id)!, [...trail, id]);
      if (found) return found;
    }
    return undefined;
  };
  return walk(start, p, [start]);
}

// ---- outputs ------------------------------------------------------------------------------------------------

const PLACEHOLDER = /\{\{|\}\}|\{([^{}]*)\}/g;
const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*$/;

/**
 * An output template: text with {field.path} placeholders ("{process.comm}", "{event.path}", "{process.argv}",
 * "{ancestors[0]}"), filled from the event; `{{` and `}}` are literal braces. A placeholder may name
 * alternatives, the first the event has printing ("{event.resolvedPath|event.path}": a path given absolute is
 * not resolved again). A field the event lacks prints as <NA> (as in Falco). Reports a bad placeholder through
 * `bad` and returns undefined.
 */
export function compileOutput(template: string, bad: (m: string) => void): ((ev: OutputEvent) => string) | undefined {
  // Text, or a placeholder's alternatives, each a field's keys.
  const parts: (string | string[][])[] = [];
  let last = 0;
  let ok = true;
  for (const m of template.matchAll(PLACEHOLDER)) {
    if (m.index > last) parts.push(template.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[0] === '{{') parts.push('{');
    else if (m[0] === '}}') parts.push('}');
    else {
      const paths = fieldAlternatives(m[1]!);
      if (!paths.every((p) => FIELD_PATH.test(p))) {
        ok = false;
        bad(`placeholder ${m[0]}: expected a field path such as {process.comm}, {event.path} or {ancestors[0]}, or alternatives such as {event.resolvedPath|event.path} (write {{ and }} for literal braces)`);
      } else {
        // "event." is the event itself; process, parent, container, pod and ancestors are its members.
        parts.push(paths.map((p) => {
          const keys = pathKeys(p);
          return keys[0] === 'event' ? keys.slice(1) : keys;
        }));
      }
    }
  }
  const tail = template.slice(last);
  if (/[{}]/.test(tail)) {
    ok = false;
    bad(`unmatched brace in ${JSON.stringify(tail.length > 30 ? `${tail.slice(0, 30)}…` : tail)} (write {{ and }} for literal braces)`);
  }
  if (tail) parts.push(tail);
  if (!ok) return undefined;
  return (ev) => {
    let s = '';
    for (const p of parts) s += typeof p === 'string' ? p : show(firstPresent(ev, p));
    return s;
  };
}

/** The first of the alternatives the event has (not undefined, null or ""). */
function firstPresent(ev: OutputEvent, alternatives: string[][]): unknown {
  for (const keys of alternatives) {
    const v = lookup(ev, keys);
    if (present(v)) return v;
  }
  return undefined;
}

/** The field paths of an output template's placeholders ("{process.comm}" gives "process.comm"). */
function outputPaths(template: string): string[] {
  const out: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER)) if (m[1] !== undefined) out.push(...fieldAlternatives(m[1]).filter((p) => FIELD_PATH.test(p)));
  return out;
}

function lookup(v: unknown, keys: string[]): unknown {
  for (const k of keys) {
    if (v === null || typeof v !== 'object') return undefined;
    v = Object.hasOwn(v, k) ? (v as Record<string, unknown>)[k] : undefined;
  }
  return v;
}

const IP_FAMILIES: ReadonlySet<unknown> = new Set(['AF_INET', 'AF_INET6']);
const UNIX_FAMILIES: ReadonlySet<unknown> = new Set(['AF_UNIX']);

/**
 * A deny rule matches the calls of the families its kernel hooks check, and no other: a rule about unix socket
 * paths, unix connects; any other, IP connects and binds (unix binds pass no hook). Its condition alone could
 * hold elsewhere (`event.?remotePort.orValue(0) != 22` on a unix connect, which has no port): an alert about a
 * call the rule never denied, and never could, would read as a deny that failed.
 */
function denyScoped(kernel: KernelSelector, match: (ctx: RuleContext) => boolean): (ctx: RuleContext) => boolean {
  const families = kernel.unix ? UNIX_FAMILIES : IP_FAMILIES;
  return (ctx) => families.has((ctx.event as { family?: unknown }).family) && match(ctx);
}

function show(v: unknown): string {
  if (v === undefined || v === null || v === '') return '<NA>';
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(' ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// ---- the compiled set ---------------------------------------------------------------------------------------

/** Compiled rules, lists and macros: immutable; a reload compiles a new one. */
export class RuleSet {
  /** Every rule, enabled or not, in order of definition. */
  readonly rules: readonly Rule[];
  /**
   * The enabled rules whose kill or deny is done in the kernel, with their selectors, in order of definition
   * (signal: a kill's; undefined for a deny).
   */
  get kernelRules(): { name: string; signal: ActionSignal | undefined; selector: KernelSelector }[] {
    return this.rules.flatMap((r) => {
      const k = r.enabled && r.kernel ? r.actions.find(inKernel) : undefined;
      if (!k) return [];
      return [{ name: r.name, signal: isKill(k) ? k.kill.signal : undefined, selector: r.kernel! }];
    });
  }
  readonly lists: ReadonlyMap<string, readonly unknown[]>;
  readonly macros: readonly string[];
  /** A hash of everything the set is made of: equal digests, the same rules. */
  readonly digest: string;
  /** What compiles but looks wrong: fields no event has, rules without types, unused macros and lists (lint.ts). */
  readonly warnings: readonly RuleWarning[];
  /** Enabled rules per event type, and those about every type. */
  readonly #byType = new Map<string, Rule[]>();
  readonly #anyType: Rule[] = [];
  readonly #merged = new Map<string, Rule[]>();
  /** The prototype of every RuleContext: one lazy, per-event memoized getter per macro. */
  readonly #proto: object;

  constructor(rules: Rule[], lists: Map<string, unknown[]>, macros: Map<string, (ctx: Record<string, unknown>) => boolean>, digest: string, warnings: RuleWarning[] = []) {
    this.rules = rules;
    this.warnings = warnings;
    this.lists = lists;
    this.macros = [...macros.keys()];
    this.digest = digest;
    for (const r of rules) {
      if (!r.enabled) continue;
      if (!r.types) this.#anyType.push(r);
      else for (const t of r.types) (this.#byType.get(t) ?? this.#byType.set(t, []).get(t)!).push(r);
    }
    const proto: Record<string, unknown> = {};
    let i = 0;
    for (const [name, p] of macros) {
      const slot = i++;
      Object.defineProperty(proto, name, {
        get(this: { $memo: (boolean | undefined)[] }) {
          let v = this.$memo[slot];
          if (v === undefined) v = this.$memo[slot] = p(this as unknown as Record<string, unknown>);
          return v;
        },
      });
    }
    this.#proto = proto;
  }

  /** The event types some enabled rule is about; undefined: every type (a rule without `types`). */
  types(): Set<string> | undefined {
    if (this.#anyType.length) return undefined;
    return new Set(this.#byType.keys());
  }

  get enabledCount(): number {
    return this.rules.filter((r) => r.enabled).length;
  }

  /** The enabled rules an event of `type` is checked against, in order of definition. */
  rulesFor(type: string): Rule[] {
    const typed = this.#byType.get(type);
    if (!this.#anyType.length) return typed ?? [];
    if (!typed) return this.#anyType;
    // Rules about every type and rules about this one, merged in order of definition once per type.
    let merged = this.#merged.get(type);
    if (!merged) this.#merged.set(type, (merged = this.rules.filter((r) => r.enabled && (!r.types || r.types.includes(type)))));
    return merged;
  }

  /**
   * For events of `type`: false only when no enabled rule about it can match, judged on the event's own
   * members (prefilter.ts); undefined when some rule about it has no guard. Made anew on each call: the
   * router keeps what it composes from it until its subscribers change (Router.guardFor).
   */
  guardFor(type: string): EventGuard | undefined {
    return anyGuard(this.rulesFor(type).map((r) => r.typeGuards?.get(type) ?? r.guard));
  }

  /**
   * The context conditions are evaluated against, for one event: `reuse` (a context of this set whose event
   * is done with) made over for `ev`, or a new one. The engine reuses one per batch: a context per event was
   * a tenth of what the rules stage of bench/pipeline's replay allocated (sampled allocation profile).
   */
  context(ev: OutputEvent, reuse?: RuleContext): RuleContext {
    let ctx = reuse as (RuleContext & { $memo: unknown[] }) | undefined;
    if (ctx && Object.getPrototypeOf(ctx) === this.#proto) {
      const m = ctx.$memo; // a loop over the few macros: Array.prototype.fill cost more than the stores
      for (let i = 0; i < m.length; i++) m[i] = undefined;
    } else {
      ctx = Object.create(this.#proto) as RuleContext & { $memo: unknown[] };
      ctx.$memo = new Array<unknown>(this.macros.length).fill(undefined);
    }
    ctx.event = ev;
    ctx.process = ev.process ?? NO_MEMBERS;
    ctx.parent = ev.parent ?? NO_MEMBERS;
    ctx.container = ev.container ?? NO_MEMBERS;
    ctx.pod = ev.pod ?? NO_MEMBERS;
    ctx.ancestors = ev.ancestors ?? NO_ANCESTORS;
    return ctx;
  }
}

/** The rule set a configuration's `rules` section asks for: the embedded defaults, the files, then inline items. */
export function ruleSetFor(c: { enabled: boolean; defaults: boolean; files: string[]; inline: unknown[]; disabled: string[]; enabledTags?: string[]; disabledTags?: string[]; minPriority: Priority }): RuleSet | undefined {
  if (!c.enabled) return undefined;
  const sources: RuleSource[] = [];
  if (c.defaults) sources.push(readRuleFile(DEFAULT_RULES_FILE, `rules.defaults (${DEFAULT_RULES_FILE})`));
  c.files.forEach((f, i) => sources.push(readRuleFile(f, `rules.files.${i} (${f})`)));
  if (c.inline.length) sources.push({ name: 'rules.inline', items: c.inline, itemPath: (i) => `rules.inline.${i}` });
  return compileRules({ sources, disabled: c.disabled, enabledTags: c.enabledTags, disabledTags: c.disabledTags, minPriority: c.minPriority });
}
