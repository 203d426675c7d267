// Prefilters: what a rule's condition asks of an event's own members alone (`event.path`, `event.ret`, …,
// not its process, container or time), checked on those members before the event is built as an object.
// Rules about opens see most events of a host, and nearly every open fails their conditions on its own
// members (a path not in a list, not a write, not a sensitive file): in bench/pipeline's replay, 98 % of
// the events of the default rules' types are turned down so, and never built, queued or checked; the
// engine's bounded queue then holds only what may match. For file and network records the pipeline gives a
// guard the record's members to read from its bytes as it asks for them (EventMembers, record-members.ts),
// so a turned-down open costs its ret and at most a path or two as strings: the rules stage's cost per
// record fell by about a third with that (it decoded every record of the rules' types before).
//
// Exact, not a heuristic: a guard is the condition's top-level conjuncts (a && b && c) that read only the
// event's own members and named lists, each compiled as the condition is (compile.ts). When one of them is
// false on the members, it is false on the whole event (it reads nothing else), and so is the condition,
// with no error: CEL's && is false when either side is false, whatever the other side is, errors included.
// Anything else (true, an error, a value that is no bool, a case the compiled code leaves to cel-js) lets
// the event through to the rule itself. A condition without such a conjunct has no guard; a type with one
// rule that has none is built for every event, as before.
import type { ASTNode } from '@marcbachmann/cel-js';
import type { EventGuard } from '../pipeline/router.ts';
import { compileCondition } from './compile.ts';

/** The only variable a guard's conjuncts may name: their scope. */
const EVENT_ONLY: ReadonlySet<string> = new Set(['event']);

/** The top-level conjuncts of a condition: a, b and c of `a && b && c`, however it is grouped. */
function conjuncts(n: ASTNode, out: ASTNode[] = []): ASTNode[] {
  if (n.op === '&&') for (const x of n.args as ASTNode[]) conjuncts(x, out);
  else out.push(n);
  return out;
}

/**
 * How many times `n` reads the event's own members (`event.k` or `event.?k` for a `k` outside `common`,
 * has() of one), when it reads nothing else but named lists; undefined when it does: a bare `event`, any
 * other variable or macro, a local of a comprehension.
 */
function ownMemberReads(n: unknown, lists: ReadonlyMap<string, unknown>, common: ReadonlySet<string>): number | undefined {
  if (!n || typeof n !== 'object') return 0;
  const node = n as { op?: unknown; args?: unknown };
  let parts: readonly unknown[];
  if (Array.isArray(n)) parts = n;
  else if (node.op === '.' || node.op === '.?') {
    const [recv, key] = node.args as [ASTNode, string];
    if (recv.op === 'id' && recv.args === 'event') return common.has(key) ? undefined : 1;
    parts = [recv];
  } else if (node.op === 'id') return lists.has(node.args as string) ? 0 : undefined;
  else parts = [node.args];
  let reads = 0;
  for (const p of parts) {
    const r = ownMemberReads(p, lists, common);
    if (r === undefined) return undefined;
    reads += r;
  }
  return reads;
}

/** Whether `node` is a read of `event.type` (not `event.?type`, an optional). */
function isEventType(node: ASTNode): boolean {
  if (node.op !== '.') return false;
  const [recv, key] = node.args as [ASTNode, string];
  return recv.op === 'id' && recv.args === 'event' && key === 'type';
}

/** Whether `n` reads `event.type`. */
export function readsEventType(n: unknown): boolean {
  if (Array.isArray(n)) return n.some(readsEventType);
  if (!n || typeof n !== 'object') return false;
  return isEventType(n as ASTNode) || readsEventType((n as ASTNode).args);
}

/**
 * `n` with every `event.type` read replaced by `type`, the one type its guard is for: a condition about
 * several types (`event.type == "truncate" || …`) has no guard otherwise, `type` being a member every event
 * has, which a guard's fields do not hold. `event.?type` stays (an optional, not a string).
 */
export function withEventType(n: ASTNode, type: string): ASTNode {
  const subst = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(subst);
    if (!x || typeof x !== 'object') return x;
    const node = x as ASTNode;
    return isEventType(node) ? { ...node, op: 'value', args: type } : { ...node, args: subst(node.args) };
  };
  return subst(n) as ASTNode;
}

/**
 * The guard of a rule's condition (see the top of this file), or undefined when none of its conjuncts reads
 * only the event's own members. `common` names the members every event has, which the fields a guard is
 * given do not hold; `lists` are the rule set's named lists.
 */
export function conditionGuard(ast: ASTNode, lists: ReadonlyMap<string, readonly unknown[]>, common: ReadonlySet<string>): EventGuard | undefined {
  const tests: ((s: Record<string, unknown>) => unknown)[] = [];
  for (const c of conjuncts(ast)) {
    // A conjunct that reads no member at all (a constant `true`) would only cost a call per event.
    if (!ownMemberReads(c, lists, common)) continue;
    const f = compileCondition(c, EVENT_ONLY, lists); // without interpret: throws where cel-js would decide
    if (f) tests.push(f);
  }
  if (!tests.length) return undefined;
  const scope: Record<string, unknown> = { event: undefined };
  return (fields) => {
    scope.event = fields;
    for (const t of tests) {
      try {
        if (t(scope) === false) return false;
      } catch {
        // Left to cel-js, or an error: the rule decides on the whole event.
      }
    }
    return true;
  };
}

