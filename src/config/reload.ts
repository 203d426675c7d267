// What a configuration reload (SIGHUP, POST /v1/config/reload, `vigil reload`) may change while the agent
// runs. Event types and filters are map writes and probe attaches in the kernel and a set in the pipeline:
// they change in place, all or nothing. Scrub rules apply to later execs and scrub the process cache again.
// Detection rules are compiled whole, their files read again on every reload, and swapped between two events.
// Sinks are added, removed or replaced (a sink whose options changed) between two events: the old ones get
// every event up to the reload, the new ones every event after it. The store is the exception: the API and
// `vigil events` query it, so it stays as it started, but for its retention limits, which its writer applies
// in place. Everything else shapes what was created at start (the
// ring, the maps, the API socket, the process and container resolvers): a reload that changes any of it is
// refused whole, naming the fields, rather than half-applied (Falco restarts its engine instead; a restart
// here would drop the process cache and the ring's contents).
import { InvalidArgumentError } from '../bpf/errors.ts';
import type { VigilConfig } from './config.ts';

/** Paths (and everything under them) a running agent applies in place. */
export const RELOADABLE = ['events.process', 'events.containers', 'events.files', 'events.network', 'events.other', 'filters', 'process.scrub', 'rules', 'sinks'] as const;
/** Paths under RELOADABLE ones that still only take effect at start. */
const START_ONLY = ['sinks.store'] as const;
/** Paths under START_ONLY ones that a reload applies after all: the store's retention limits. */
export const STORE_RETENTION = ['sinks.store.maxRows', 'sinks.store.maxAgeMs', 'sinks.store.maxProcesses'] as const;

/** The configuration fields a reload asked to change, and which of them only take effect at start. */
export interface ReloadPlan {
  changed: string[];
  restartNeeded: string[];
}

/** A reload that changes fields only a start applies: nothing was changed. */
export class ReloadRefusedError extends InvalidArgumentError {
  readonly fields: string[];
  constructor(fields: string[]) {
    const shown = fields.slice(0, 8).join(', ') + (fields.length > 8 ? `, … (${fields.length} in all)` : '');
    super(`${shown}: ${fields.length > 1 ? 'these take' : 'this takes'} effect only when vigil starts; restart vigil to apply ${fields.length > 1 ? 'them' : 'it'}, or put ${fields.length > 1 ? 'them' : 'it'} back to reload the rest (nothing was changed; only ${RELOADABLE.join(', ')} reload in place, sinks.store excepted but for ${STORE_RETENTION.map((p) => p.slice('sinks.store.'.length)).join(', ')})`);
    this.fields = fields;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The dotted paths whose values differ between two validated configurations: the deepest mapping key that
 * differs (a list is one value: a changed list is reported at its own path).
 */
export function changedPaths(a: unknown, b: unknown, prefix = ''): string[] {
  if (isObject(a) && isObject(b)) {
    const out: string[] = [];
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      out.push(...changedPaths(Object.hasOwn(a, k) ? a[k] : undefined, Object.hasOwn(b, k) ? b[k] : undefined, prefix ? `${prefix}.${k}` : k));
    }
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => changedPaths(x, b[i]).length === 0) ? [] : [prefix || '(root)'];
  return Object.is(a, b) ? [] : [prefix || '(root)'];
}

const under = (p: string, r: string) => p === r || p.startsWith(`${r}.`);
const reloadable = (p: string) => RELOADABLE.some((r) => under(p, r)) && (!START_ONLY.some((r) => under(p, r)) || STORE_RETENTION.some((r) => under(p, r)));

/** Whether the reload changes `path` or anything under it (e.g. 'sinks', 'process.scrub'). */
export const touches = (plan: ReloadPlan, path: string): boolean => plan.changed.some((p) => under(p, path));

/** Which fields `next` changes against `current`, and which of those need a restart. */
export function planReload(current: VigilConfig, next: VigilConfig): ReloadPlan {
  const changed = changedPaths(current, next);
  return { changed, restartNeeded: changed.filter((p) => !reloadable(p)) };
}
