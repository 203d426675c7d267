// Rule actions: what a rule does besides raising its alert. `kill` signals the process the matching event
// came from, as Datadog's CWS kill action does. Tetragon's Sigkill acts in the kernel before the syscall
// returns; here the signal follows the event through the pipeline and the rule engine, milliseconds later:
// it stops what the process would do next, not the call that matched. Nothing is signalled unless the
// configuration says `rules.enforce: true`; until then each alert says what would have been done (dry-run).
// `deny` fails the matching connect or bind itself (EPERM, before any packet is sent or the address taken), in
// the kernel only: the process lives on, and only the call it made is refused (kernel.ts, deny rules).
import type { KernelDeny, KernelKill } from '../events/kill.ts';
import type { OutputEvent } from '../pipeline/types.ts';
import { lineOf, seesHostPids, signalNumber, signalProcess, type SignalOutcome } from '../process/signal.ts';
import { TICK_NS } from '../process/types.ts';
import { describe, isObject } from './yaml-values.ts';

/** The signals a kill action may send: those that stop, end or interrupt a process. */
export const ACTION_SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGABRT', 'SIGSTOP', 'SIGUSR1', 'SIGUSR2'] as const;
export type ActionSignal = (typeof ACTION_SIGNALS)[number];

export interface KillAction {
  /**
   * inKernel: the kernel signals the process itself, before the matching open returns or before the exec'd
   * image runs (the rule's whole condition compiled into the kernel: kernel.ts), and the alert reports what it
   * did.
   */
  kill: { signal: ActionSignal; inKernel?: boolean };
}
export interface DenyAction {
  /** The kernel fails the matching connect with EPERM (a rule about connects: kernel.ts compiles its condition). */
  deny: Record<string, never>;
}
export type RuleAction = KillAction | DenyAction;

/** Whether an action is a kill (else a deny). */
export const isKill = (a: RuleAction): a is KillAction => 'kill' in a;
/** Whether an action is done by the kernel: a deny, or a kill with inKernel. */
export const inKernel = (a: RuleAction): boolean => !isKill(a) || !!a.kill.inKernel;
/** An action as people read it: "kill SIGKILL in the kernel", "deny in the kernel". */
export const actionText = (a: RuleAction): string => (isKill(a) ? `kill ${a.kill.signal}${a.kill.inKernel ? ' in the kernel' : ''}` : 'deny in the kernel');

/**
 * What an action did for one alert (the alert's `actions`):
 * - sent: the signal went to the process;
 * - dry-run: rules.enforce is off, nothing was sent;
 * - repeat: this process was sent this signal already (by this or another rule), not sent again;
 * - gone: the process had exited (its pid free, or another process's) before the signal;
 * - refused: never signalled (`reason`: pid 1, the agent or one of its ancestors, a kernel thread, a process
 *   whose start time is unknown, an event without a process, an agent outside the host's pid namespace);
 * - failed: the signal could not be sent (`reason`).
 */
export interface ActionResult {
  action: 'kill' | 'deny';
  /** A kill's signal. */
  signal?: ActionSignal;
  /** Done by the kernel (an inKernel kill, or a deny, whose rule the kernel matched on this event). */
  inKernel?: true;
  /**
   * A deny's results: denied (the connect failed, nothing was sent), dry-run, refused (a protected process),
   * missed (the kernel did not match this connect: the rules were replaced while it was on its way; the
   * connect went through).
   */
  result: 'sent' | 'dry-run' | 'repeat' | 'gone' | 'refused' | 'failed' | 'denied' | 'missed';
  reason?: string;
}
export type ActionCounts = Record<ActionResult['result'], number>;
export const noActionCounts = (): ActionCounts => ({ sent: 0, 'dry-run': 0, repeat: 0, gone: 0, refused: 0, failed: 0, denied: 0, missed: 0 });

/** The results that happened, for people: "sent 3, gone 1" ("" for none); `n` formats a count. */
export const actionCountsText = (c: Partial<ActionCounts> | undefined, n: (x: number) => string = String): string =>
  Object.entries(c ?? {})
    .filter(([, x]) => x)
    .map(([r, x]) => `${r} ${n(x)}`)
    .join(', ');

const FORM = 'expected a list of actions such as [{kill: {signal: SIGKILL}}] or [{deny: {}}]';

/** A rule item's `actions`, checked; every problem goes to `bad` (and the result is undefined). */
export function readActions(v: unknown, at: string, bad: (at: string, m: string) => void): RuleAction[] | undefined {
  if (!Array.isArray(v)) {
    bad(at, `${FORM}, got ${describe(v)}`);
    return undefined;
  }
  const out: RuleAction[] = [];
  let ok = true;
  v.forEach((a, i) => {
    const where = `${at}.${i}`;
    const keys = isObject(a) ? Object.keys(a) : [];
    if (keys.length !== 1 || (keys[0] !== 'kill' && keys[0] !== 'deny')) {
      ok = false;
      return bad(where, keys.length ? `unknown action ${keys.map((k) => JSON.stringify(k)).join(', ')} (known: kill, deny)` : `${FORM}, got ${describe(a)}`);
    }
    if (keys[0] === 'deny') {
      const d = (a as { deny: unknown }).deny ?? {};
      if (!isObject(d) || Object.keys(d).length) {
        ok = false;
        return bad(`${where}.deny`, `expected {} (a deny fails the matching connect or bind with EPERM; it takes no options), got ${describe(d)}`);
      }
      if (out.some((x) => !isKill(x))) {
        ok = false;
        return bad(`${where}.deny`, 'an earlier action of this rule denies already');
      }
      out.push({ deny: {} });
      return;
    }
    const k = (a as { kill: unknown }).kill ?? {};
    if (!isObject(k)) {
      ok = false;
      return bad(`${where}.kill`, `expected a mapping such as {signal: SIGKILL}, got ${describe(k)}`);
    }
    const extra = Object.keys(k).filter((f) => f !== 'signal' && f !== 'inKernel');
    if (extra.length) {
      ok = false;
      return bad(`${where}.kill`, `unknown field${extra.length > 1 ? 's' : ''} ${extra.map((f) => JSON.stringify(f)).join(', ')} (known: signal, inKernel; the kill action signals the event's process alone)`);
    }
    if (k.inKernel !== undefined && typeof k.inKernel !== 'boolean') {
      ok = false;
      return bad(`${where}.kill.inKernel`, `expected true or false, got ${describe(k.inKernel)}`);
    }
    const signal = k.signal ?? 'SIGKILL';
    if (typeof signal !== 'string' || !(ACTION_SIGNALS as readonly string[]).includes(signal)) {
      ok = false;
      return bad(`${where}.kill.signal`, `expected one of ${ACTION_SIGNALS.join(', ')}, got ${describe(signal)}`);
    }
    if (out.some((x) => isKill(x) && x.kill.signal === signal)) {
      ok = false;
      return bad(`${where}.kill.signal`, `${signal} is already sent by an earlier action of this rule`);
    }
    if (k.inKernel && out.some((x) => isKill(x) && x.kill.inKernel)) {
      ok = false;
      return bad(`${where}.kill.inKernel`, 'the kernel sends one signal per rule: an earlier action of this rule is in the kernel already');
    }
    out.push({ kill: k.inKernel ? { signal: signal as ActionSignal, inKernel: true } : { signal: signal as ActionSignal } });
  });
  return ok ? out : undefined;
}

export interface EnforcerOptions {
  /** Whether actions are carried out (rules.enforce); otherwise each says "dry-run". */
  enforce: boolean;
  /** Processes never signalled, besides pid 1: by default the agent and its ancestors, read at start. */
  protect?: ReadonlySet<number>;
  /** How a signal is sent (tests may point it at a different /proc). */
  signal?: (pid: number, startTicks: number, signal: number) => SignalOutcome;
  /** Whether the agent sees the host's pids (default: read from /proc/self/ns/pid). */
  hostPids?: boolean;
}

/** What the kernel did (the event's `kill` member), as an action's result. */
function kernelResult(signal: ActionSignal, k: KernelKill): ActionResult {
  const r: ActionResult = { action: 'kill', signal, inKernel: true, result: k.result };
  if (k.result === 'refused') r.reason = 'pid 1, the agent or one of its ancestors';
  else if (k.result === 'failed') r.reason = 'bpf_send_signal failed';
  return r;
}

/** What the kernel did about a connect or bind rule `rule` denies (the event's `deny` member), as the action's result. */
function denyResult(rule: string, ev: { type?: unknown; deny?: KernelDeny }): ActionResult {
  const d = ev.deny;
  if (!d || d.rule !== rule) return { action: 'deny', inKernel: true, result: 'missed', reason: `the kernel did not match this ${ev.type === 'bind' ? 'bind' : 'connect'} (the rules changed while it was on its way): it went through` };
  const r: ActionResult = { action: 'deny', inKernel: true, result: d.result };
  if (d.result === 'refused') r.reason = 'pid 1, the agent or one of its ancestors';
  return r;
}

/** Processes signalled lately (key and signal), so that a burst of matches sends one signal. Bounded. */
const RECENT_MAX = 4096;

export class Enforcer {
  enforce: boolean;
  readonly #protect: ReadonlySet<number>;
  readonly #signal: (pid: number, startTicks: number, signal: number) => SignalOutcome;
  readonly #recent = new Set<string>();
  readonly #hostPids: boolean;

  constructor(o: EnforcerOptions) {
    this.enforce = o.enforce;
    this.#protect = o.protect ?? lineOf(process.pid);
    this.#signal = o.signal ?? signalProcess;
    this.#hostPids = o.hostPids ?? seesHostPids();
  }

  /**
   * Carries out the actions of rule `rule` for an alert about `ev`. Never throws. An in-kernel kill that the
   * kernel did on this event (its `kill` member names the rule) is reported as the kernel did it; one the kernel
   * did not match (a rule set replaced while the event was on its way) is done here, as any kill.
   */
  run(rule: string, actions: readonly RuleAction[], ev: OutputEvent): ActionResult[] {
    const k = (ev as { kill?: KernelKill }).kill;
    return actions.map((a) => {
      if (!isKill(a)) return denyResult(rule, ev as { type?: unknown; deny?: KernelDeny });
      return a.kill.inKernel && k && k.rule === rule && k.signal === a.kill.signal ? kernelResult(a.kill.signal, k) : this.#kill(a.kill.signal, ev);
    });
  }

  #kill(signal: ActionSignal, ev: OutputEvent): ActionResult {
    const done = (result: ActionResult['result'], reason?: string): ActionResult => (reason ? { action: 'kill', signal, result, reason } : { action: 'kill', signal, result });
    const p = ev.process;
    if (!p || p.unknown?.includes('process') || !(p.pid > 0)) return done('refused', 'the event has no known process');
    if (p.pid === 1 || this.#protect.has(p.pid)) return done('refused', p.pid === 1 ? 'pid 1' : 'the agent or one of its ancestors');
    if (!(typeof p.startNs === 'number' && Number.isFinite(p.startNs))) return done('refused', 'the process start time is unknown: it cannot be told from a later process with its pid');
    if (!this.#hostPids) return done('refused', "the agent is not in the host's pid namespace: the events' pids are not its own (run it with the host's, as hostPID: true)");
    if (!this.enforce) return done('dry-run');
    const ticks = Math.floor(p.startNs / TICK_NS);
    const key = `${p.pid}:${ticks}:${signal}`;
    if (this.#recent.has(key)) return done('repeat');
    const o = this.#signal(p.pid, ticks, signalNumber(signal)!);
    if (o.result === 'sent') {
      if (this.#recent.size >= RECENT_MAX) this.#recent.clear();
      this.#recent.add(key);
    }
    return 'reason' in o ? done(o.result, o.reason) : done(o.result);
  }
}
