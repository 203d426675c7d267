// The fields a rule can read: by variable (event, process, parent, container, pod) and, for `event`, by the
// event types the rule is about. CEL reads a field an event lacks as an error (or, through `.?` and has(), as
// absent): a condition that names a field no event has, a typo or Falco's name for it (`process.name` for
// `process.comm`), never matches, an exception on it never exempts, and an output placeholder prints <NA>,
// all without a word at load time. `vigil rules check` and the agent warn about them from this catalog
// (lint.ts). It is made from the shapers' own key lists; test/unit/rules-lint.test.ts checks it against
// events the pipeline makes.
import { CONTAINER_EVENT_KEYS } from '../pipeline/pipeline.ts';
import { RECORD_EVENT_TYPES } from '../pipeline/event-types.ts';
import { PARENT_REF_KEYS } from '../pipeline/enrich.ts';
import { outputMemberKeys } from '../pipeline/outputs.ts';
import type { ContainerRef, OutputEvent, PodRef, ProcessRef } from '../pipeline/types.ts';

/**
 * `keys`, checked by the compiler to name every member of T: a member added to the type and not to the list
 * fails to compile, so the catalog cannot fall behind the types.
 */
const everyKey =
  <T>() =>
  <const K extends readonly (keyof T)[]>(keys: K & ([Exclude<keyof T, K[number]>] extends [never] ? unknown : { missing: Exclude<keyof T, K[number]> })): readonly string[] =>
    keys as readonly string[];

/** What every event has (OutputEvent's named members, `ret` aside: a syscall's, listed with them). */
export const COMMON_EVENT_KEYS: readonly string[] = ['type', 'time', 'ktimeNs', 'process', 'parent', 'ancestors', 'container', 'pod'] satisfies readonly (keyof OutputEvent)[];
const PROCESS: readonly string[] = everyKey<ProcessRef>()(['pid', 'tid', 'ppid', 'execId', 'key', 'startNs', 'comm', 'exe', 'hostExe', 'exeUpperLayer', 'argv', 'argvTruncated', 'uid', 'user', 'gid', 'euid', 'loginuid', 'tty', 'unknown']);
const CONTAINER: readonly string[] = everyKey<ContainerRef>()(['id', 'name', 'image', 'imageDigest', 'runtime', 'labels', 'enrichment']);
const POD: readonly string[] = everyKey<PodRef>()(['name', 'namespace', 'uid', 'labels']);

/** Falco's names of a few fields, for a hint: what a rule ported from Falco is likely to say. */
const FALCO_NAMES: Readonly<Record<string, string>> = { name: 'comm', cmdline: 'argv', exepath: 'exe', exeline: 'argv', args: 'argv', loginuser: 'user' };

export type RuleVariable = 'event' | 'process' | 'parent' | 'container' | 'pod';

/** The catalog: the members of each variable, `event`'s by event type. */
export class FieldCatalog {
  readonly #members = outputMemberKeys();
  readonly #memo = new Map<string, ReadonlySet<string>>();

  constructor() {
    for (const t of ['container_started', 'container_stopped']) this.#members.set(t, CONTAINER_EVENT_KEYS);
  }

  /** The types `event` is checked against: a rule's, or (no types) every record type. */
  #types(types: readonly string[] | undefined): readonly string[] {
    return types ?? [...RECORD_EVENT_TYPES];
  }

  /** The members of `v` an event of one of `types` can have (types undefined: any type). */
  fields(v: RuleVariable, types?: readonly string[]): ReadonlySet<string> {
    const key = v === 'event' ? `event:${this.#types(types).join(',')}` : v;
    let s = this.#memo.get(key);
    if (!s) {
      if (v === 'process') s = new Set(PROCESS);
      else if (v === 'parent') s = new Set(PARENT_REF_KEYS);
      else if (v === 'container') s = new Set(CONTAINER);
      else if (v === 'pod') s = new Set(POD);
      else s = new Set([...COMMON_EVENT_KEYS, ...this.#types(types).flatMap((t) => this.#members.get(t) ?? [])]);
      this.#memo.set(key, s);
    }
    return s;
  }

  /**
   * Why `v.field` is never there on events of `types` (undefined: it can be). The message names the field,
   * what lacks it, and a likely meant name.
   */
  missing(v: RuleVariable, field: string, types?: readonly string[]): string | undefined {
    const known = this.fields(v, types);
    if (known.has(field)) return undefined;
    const what =
      v === 'event'
        ? types
          ? `no ${types.join(', ')} event has a member ${JSON.stringify(field)}`
          : `no event has a member ${JSON.stringify(field)}`
        : v === 'parent'
          ? `an event's parent has no ${JSON.stringify(field)} (it has ${[...known].join(', ')})`
          : `${v} has no member ${JSON.stringify(field)}`;
    let hint = suggestion(field, known) ?? (v === 'process' || v === 'parent' ? FALCO_NAMES[field] : undefined);
    let others = '';
    if (v === 'event') {
      // A member of the process (event.argv for process.argv), or of events of other types.
      if (PROCESS.includes(field)) hint = `process.${field}`;
      else if (types) {
        const having = [...RECORD_EVENT_TYPES].filter((t) => this.#members.get(t)?.includes(field));
        if (having.length) others = ` (${having.length > 4 ? `${having.slice(0, 4).join(', ')}, …` : having.join(', ')} events have it)`;
      }
    }
    return `${v}.${field}: ${what}${others}${hint ? `; did you mean ${JSON.stringify(hint)}?` : ''}`;
  }
}

/** The closest known name, when it is close (a typo): at most two edits, and fewer than half the letters. */
function suggestion(field: string, known: ReadonlySet<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(field.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD <= 2 && bestD * 2 < field.length ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
