// The rule engine: a subscriber of the router (pipeline stage "route"). Events wait in the subscriber's
// bounded queue (overflow counted as dropped) and are checked in batches between two events of the pipeline
// (CHECK_BATCH), each against the enabled rules about its type only. A match becomes an `alert` event, emitted
// through the pipeline like a container event (a synthetic event: counted apart from kernel records), so that
// it reaches every sink, the store (`vigil events --type alert`), the SSE stream and the metrics. A rule's
// actions (actions.ts) are carried out before its alert is emitted, and the alert says what they did.
import type { Router } from '../pipeline/router.ts';
import type { OutputEvent } from '../pipeline/types.ts';
import { Enforcer, isKill, noActionCounts, type ActionCounts, type ActionResult } from './actions.ts';
import type { Priority, Rule, RuleContext, RuleSet } from './rules.ts';

export interface RuleCounters {
  name: string;
  priority: Priority;
  enabled: boolean;
  /** Events of its types it was checked against. */
  evaluated: number;
  matches: number;
  /** Evaluations that failed (a missing field without has(), a bad regex at run time...): counted as no match. */
  errors: number;
  lastError?: string;
  /** What its actions did, per result (rules with actions only): byAction's counts summed. */
  actions?: ActionCounts;
  /** The same per action a rule has (kill, deny): their dry-runs and refusals are told apart here. */
  byAction?: Partial<Record<ActionResult['action'], ActionCounts>>;
}

/** Counts per result, summed. */
function sumCounts(list: Iterable<ActionCounts>): ActionCounts {
  const out = noActionCounts();
  for (const c of list) for (const k of Object.keys(out) as ActionResult['result'][]) out[k] += c[k];
  return out;
}

export interface RulesStatus {
  /** A hash of the loaded rules, lists and macros (changes when a reload changed any of them). */
  digest: string;
  rules: number;
  enabled: number;
  lists: number;
  macros: number;
  /** The event types rules are about (all: some rule is about every type). */
  types: string[] | 'all';
  /** Events the router gave the engine. */
  received: number;
  /**
   * Events of the rules' types never built for them: their own members alone made every rule about their
   * type false (the rules' guards, prefilter.ts). Not in `received`, nor in a rule's `evaluated`.
   */
  prefiltered: number;
  /** Events lost before evaluation: the engine's queue was full (the router counts them). */
  dropped: number;
  queued: number;
  alerts: number;
  errors: number;
  /**
   * Whether rule actions are carried out (rules.enforce), the enabled rules that have actions, and what the
   * actions did, per result, all rules together.
   */
  enforce: boolean;
  actionRules: number;
  actions: ActionCounts;
  perRule: RuleCounters[];
}

export interface RuleEngineOptions {
  readonly router: Router;
  /** Emits an alert (the pipeline's emitSynthetic). */
  readonly emit: (alert: OutputEvent) => void;
  /** The bound of the engine's queue in the router (setRules may change it). */
  queue: number;
  /** Whether rule actions are carried out (rules.enforce; setRules may change it). Default: false. */
  enforce?: boolean;
}

/** What an alert says about the event that matched: the event's own fields, without the enrichment parts. */
export function alertOf(r: Rule, ev: OutputEvent): OutputEvent {
  const { type, time, ktimeNs, process, parent, ancestors, container, pod, ...fields } = ev;
  const out: OutputEvent = { type: 'alert', time, ktimeNs };
  if (process) out.process = process;
  if (parent) out.parent = parent;
  if (ancestors) out.ancestors = ancestors;
  if (container) out.container = container;
  if (pod) out.pod = pod;
  out.rule = r.name;
  out.priority = r.priority;
  out.output = r.format(ev);
  if (r.tags.length) out.tags = r.tags;
  out.event = { type, ...fields };
  return out;
}

/**
 * Events are checked as soon as this many wait (between two events of the pipeline), not once per event-loop
 * turn: their objects then die in V8's young generation. Checked once per turn, the rules stage of
 * bench/pipeline's replay cost twice as much, half of it garbage collection; 16 to 128 measured the same.
 */
const CHECK_BATCH = 64;

export class RuleEngine {
  readonly #o: RuleEngineOptions;
  #set: RuleSet | undefined;
  #sub: number | undefined;
  /** Per rule name, kept across reloads: counters only ever grow (Prometheus). */
  readonly #counters = new Map<string, RuleCounters>();
  #received = 0;
  /** Drops and declines of subscriptions ended (rules turned off by a reload), for counts that only grow. */
  #droppedBefore = 0;
  #declinedBefore = 0;
  #alerts = 0;
  #errors = 0;
  readonly #enforcer: Enforcer;

  constructor(o: RuleEngineOptions) {
    this.#o = { ...o };
    this.#enforcer = new Enforcer({ enforce: o.enforce ?? false });
  }

  get ruleSet(): RuleSet | undefined {
    return this.#set;
  }

  /**
   * Puts `set` in force from the next event the router delivers (undefined: no rules, no subscription).
   * Events already queued are checked against the new set. Cannot fail: the set was compiled whole.
   */
  setRules(set: RuleSet | undefined, queue = this.#o.queue, enforce = this.#enforcer.enforce): void {
    this.#o.queue = queue;
    this.#enforcer.enforce = enforce;
    this.#set = set;
    for (const r of set?.rules ?? []) {
      let c = this.#counters.get(r.name);
      if (c) {
        c.priority = r.priority;
        c.enabled = r.enabled;
      } else this.#counters.set(r.name, (c = { name: r.name, priority: r.priority, enabled: r.enabled, evaluated: 0, matches: 0, errors: 0 }));
      for (const a of r.actions) (c.byAction ??= {})[isKill(a) ? 'kill' : 'deny'] ??= noActionCounts();
    }
    const names = new Set(set?.rules.map((r) => r.name));
    for (const c of this.#counters.values()) if (!names.has(c.name)) c.enabled = false;
    const enabled = set ? set.enabledCount : 0;
    if (!enabled) {
      // Nothing to check: no subscription, so the pipeline builds no event objects for the rules' sake.
      this.#unsubscribe();
      return;
    }
    const types = set!.types();
    const filter = types ? { types: [...types] } : {};
    if (this.#sub === undefined) this.#sub = this.#o.router.subscribe('rules', filter, (batch) => this.#check(batch), { maxQueue: this.#o.queue, batch: CHECK_BATCH, guard: (type) => this.#set?.guardFor(type) });
    else this.#o.router.refilter(this.#sub, filter, this.#o.queue);
  }

  /** Checks what waits in the engine's queue now (stop, reload, tests): its alerts are emitted before this returns. */
  flush(): void {
    if (this.#sub !== undefined) this.#o.router.flush(this.#sub);
  }

  /** Checks what is queued, then unsubscribes. */
  stop(): void {
    this.#unsubscribe();
  }

  #unsubscribe(): void {
    if (this.#sub === undefined) return;
    this.#o.router.flush(this.#sub);
    const st = this.#subStats();
    this.#droppedBefore += st?.dropped ?? 0;
    this.#declinedBefore += st?.declined ?? 0;
    this.#o.router.unsubscribe(this.#sub);
    this.#sub = undefined;
  }

  #subStats(): ReturnType<Router['stats']>[number] | undefined {
    return this.#sub !== undefined ? this.#o.router.stats().find((s) => s.id === this.#sub) : undefined;
  }

  #check(batch: OutputEvent[]): void {
    const set = this.#set;
    this.#received += batch.length;
    if (!set) return;
    let ctx: RuleContext | undefined;
    for (const ev of batch) {
      if (ev.type === 'alert') continue; // alerts are not checked again (a rule about every type would loop)
      const rules = set.rulesFor(ev.type);
      if (!rules.length) continue;
      ctx = set.context(ev, ctx); // one context for the batch, made over per event (nothing keeps it)
      for (const r of rules) {
        const c = this.#counters.get(r.name)!;
        c.evaluated++;
        let hit: boolean;
        try {
          hit = r.match(ctx);
        } catch (err) {
          c.errors++;
          this.#errors++;
          c.lastError = `${ev.type} event: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`;
          continue;
        }
        if (!hit) continue;
        c.matches++;
        this.#alerts++;
        const alert = alertOf(r, ev);
        if (r.actions.length) {
          const done = this.#enforcer.run(r.name, r.actions, ev);
          for (const d of done) c.byAction![d.action]![d.result]++;
          alert.actions = done;
        }
        this.#o.emit(alert);
      }
    }
  }

  /** What every rule's actions did, per result (the per-rule counters summed: they are kept across reloads). */
  #actionTotals(): ActionCounts {
    return sumCounts([...this.#counters.values()].flatMap((c) => Object.values(c.byAction ?? {})));
  }

  status(): RulesStatus | undefined {
    const set = this.#set;
    if (!set) return undefined;
    const sub = this.#subStats();
    const types = set.types();
    return {
      digest: set.digest,
      rules: set.rules.length,
      enabled: set.enabledCount,
      lists: set.lists.size,
      macros: set.macros.length,
      types: types ? [...types].sort() : 'all',
      received: this.#received,
      prefiltered: this.#declinedBefore + (sub?.declined ?? 0),
      dropped: this.#droppedBefore + (sub?.dropped ?? 0),
      queued: sub?.queued ?? 0,
      alerts: this.#alerts,
      errors: this.#errors,
      enforce: this.#enforcer.enforce,
      actionRules: set.rules.filter((r) => r.enabled && r.actions.length).length,
      actions: this.#actionTotals(),
      perRule: [...this.#counters.values()].map((c) => {
        if (!c.byAction) return { ...c };
        const byAction = Object.fromEntries(Object.entries(c.byAction).map(([a, counts]) => [a, { ...counts }]));
        return { ...c, actions: sumCounts(Object.values(byAction)), byAction };
      }),
    };
  }
}
