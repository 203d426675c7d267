// Probe selectors say which probes must run (ebpf-manager's ProbesSelector). The manager activates a
// selector tree, then validates it; a failing validator names every probe that failed and why.
//
// - ProbeSelector(id): this probe must run.
// - AllOf(...):        every child must be satisfied.
// - OneOf(...):        at least one child must be satisfied. Children are tried in order and activation stops
//                      at the first that succeeds: this is the kprobe -> tracepoint fallback, and it never runs
//                      two alternatives at once (which would double every event). ebpf-manager attaches every
//                      child of a OneOf; for alternatives that is wrong, so vigil does not.
// - BestEffort(...):   children are activated when they can be; never fails.
import { formatProbeId, type ProbeId } from './probe.ts';

/** What a selector needs from the manager. */
export interface SelectorHost {
  /** Attaches the probe (with its retries); returns the error, or undefined on success. */
  activate(id: ProbeId): Error | undefined;
  /** Detaches a probe that a failed alternative had attached. */
  deactivate(id: ProbeId): void;
  /** Whether the probe is running, and if not, why. */
  status(id: ProbeId): { running: boolean; error?: Error; known: boolean };
}

export interface ProbesSelector {
  readonly kind: 'probe' | 'allOf' | 'oneOf' | 'bestEffort';
  /** Every probe this selector may activate. */
  probeIds(): ProbeId[];
  /** Activates according to the selector's goal. Returns whether the goal is met. */
  activate(host: SelectorHost): boolean;
  /** undefined when the goal is met; otherwise an error message naming the failed probes and reasons. */
  validate(host: SelectorHost): string | undefined;
  /** Makes every reference to `from` point at `to` (after renaming or cloning a probe). */
  editProbeId(from: ProbeId, to: ProbeId): void;
  toString(): string;
}

const same = (a: ProbeId, b: ProbeId) => a.fn === b.fn && a.uid === b.uid;

export class ProbeSelector implements ProbesSelector {
  readonly kind = 'probe' as const;
  id: ProbeId;
  constructor(id: ProbeId | string) {
    this.id = typeof id === 'string' ? { uid: '', fn: id } : id;
  }
  probeIds(): ProbeId[] {
    return [this.id];
  }
  activate(host: SelectorHost): boolean {
    return host.activate(this.id) === undefined;
  }
  validate(host: SelectorHost): string | undefined {
    const s = host.status(this.id);
    if (!s.known) return `${formatProbeId(this.id)}: no such probe in the manager`;
    if (s.running) return undefined;
    return `${formatProbeId(this.id)}: ${s.error?.message ?? 'not running'}`;
  }
  editProbeId(from: ProbeId, to: ProbeId): void {
    if (same(this.id, from)) this.id = { ...to };
  }
  toString(): string {
    return formatProbeId(this.id);
  }
}

abstract class Group implements ProbesSelector {
  abstract readonly kind: 'allOf' | 'oneOf' | 'bestEffort';
  readonly selectors: ProbesSelector[];
  constructor(selectors: (ProbesSelector | ProbeId | string)[]) {
    this.selectors = selectors.map((s) => (typeof s === 'string' || !('kind' in s) ? new ProbeSelector(s) : s));
  }
  probeIds(): ProbeId[] {
    return this.selectors.flatMap((s) => s.probeIds());
  }
  abstract activate(host: SelectorHost): boolean;
  abstract validate(host: SelectorHost): string | undefined;
  editProbeId(from: ProbeId, to: ProbeId): void {
    for (const s of this.selectors) s.editProbeId(from, to);
  }
  toString(): string {
    return `${this.kind}(${this.selectors.map(String).join(', ')})`;
  }
}

export class AllOf extends Group {
  readonly kind = 'allOf' as const;
  activate(host: SelectorHost): boolean {
    let ok = true;
    for (const s of this.selectors) ok = s.activate(host) && ok;
    return ok;
  }
  validate(host: SelectorHost): string | undefined {
    const errs = this.selectors.map((s) => s.validate(host)).filter((e): e is string => e !== undefined);
    return errs.length ? `AllOf requirement failed, not running: [${errs.join(' | ')}]` : undefined;
  }
}

export class OneOf extends Group {
  readonly kind = 'oneOf' as const;
  activate(host: SelectorHost): boolean {
    for (const s of this.selectors) {
      const before = new Set(s.probeIds().filter((id) => host.status(id).running).map((id) => `${id.fn}#${id.uid}`));
      if (s.activate(host)) return true;
      // A group alternative may have half-attached: undo what it attached before trying the next one.
      for (const id of s.probeIds()) if (!before.has(`${id.fn}#${id.uid}`) && host.status(id).running) host.deactivate(id);
    }
    return false;
  }
  validate(host: SelectorHost): string | undefined {
    const errs = this.selectors.map((s) => s.validate(host));
    if (errs.some((e) => e === undefined)) return undefined;
    return `OneOf requirement failed, none of these is running: [${errs.join(' | ')}]`;
  }
}

export class BestEffort extends Group {
  readonly kind = 'bestEffort' as const;
  activate(host: SelectorHost): boolean {
    for (const s of this.selectors) s.activate(host);
    return true;
  }
  validate(_host?: SelectorHost): string | undefined {
    return undefined;
  }
}

export const allOf = (...s: (ProbesSelector | ProbeId | string)[]) => new AllOf(s);
export const oneOf = (...s: (ProbesSelector | ProbeId | string)[]) => new OneOf(s);
export const bestEffort = (...s: (ProbesSelector | ProbeId | string)[]) => new BestEffort(s);
export const probe = (id: ProbeId | string) => new ProbeSelector(id);
