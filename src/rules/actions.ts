// Rule actions: what a rule does besides raising its alert. `kill` signals the process the matching event
// came from, as Datadog's CWS kill action does. Tetragon's Sigkill acts in the kernel before the syscall
// returns; here the signal follows the event through the pipeline and the rule engine, milliseconds later:
// it stops what the process would do next, not the call that matched. Nothing is signalled unless the
// configuration says `rules.enforce: true`; until then each alert says what would have been done (dry-run).
import type { OutputEvent } from '../pipeline/types.ts';
import { lineOf, seesHostPids, signalNumber, signalProcess, type SignalOutcome } from '../process/signal.ts';
import { TICK_NS } from '../process/types.ts';
import { describe, isObject } from './yaml-values.ts';

/** The signals a kill action may send: those that stop, end or interrupt a process. */
export const ACTION_SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGABRT', 'SIGSTOP', 'SIGUSR1', 'SIGUSR2'] as const;
export type ActionSignal = (typeof ACTION_SIGNALS)[number];

export interface KillAction {
  kill: { signal: ActionSignal };
}
export type RuleAction = KillAction;

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
  action: 'kill';
  signal: ActionSignal;
  result: 'sent' | 'dry-run' | 'repeat' | 'gone' | 'refused' | 'failed';
  reason?: string;
}
export type ActionCounts = Record<ActionResult['result'], number>;
export const noActionCounts = (): ActionCounts => ({ sent: 0, 'dry-run': 0, repeat: 0, gone: 0, refused: 0, failed: 0 });

/** The results that happened, for people: "sent 3, gone 1" ("" for none); `n` formats a count. */
export const actionCountsText = (c: Partial<ActionCounts> | undefined, n: (x: number) => string = String): string =>
  Object.entries(c ?? {})
    .filter(([, x]) => x)
    .map(([r, x]) => `${r} ${n(x)}`)
    .join(', ');

const FORM = 'expected a list of actions such as [{kill: {signal: SIGKILL}}]';

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
    if (keys.length !== 1 || keys[0] !== 'kill') {
      ok = false;
      return bad(where, keys.length ? `unknown action ${keys.map((k) => JSON.stringify(k)).join(', ')} (known: kill)` : `${FORM}, got ${describe(a)}`);
    }
    const k = (a as { kill: unknown }).kill ?? {};
    if (!isObject(k)) {
      ok = false;
      return bad(`${where}.kill`, `expected a mapping such as {signal: SIGKILL}, got ${describe(k)}`);
    }
    const extra = Object.keys(k).filter((f) => f !== 'signal');
    if (extra.length) {
      ok = false;
      return bad(`${where}.kill`, `unknown field${extra.length > 1 ? 's' : ''} ${extra.map((f) => JSON.stringify(f)).join(', ')} (known: signal; the kill action signals the event's process alone)`);
    }
    const signal = k.signal ?? 'SIGKILL';
    if (typeof signal !== 'string' || !(ACTION_SIGNALS as readonly string[]).includes(signal)) {
      ok = false;
      return bad(`${where}.kill.signal`, `expected one of ${ACTION_SIGNALS.join(', ')}, got ${describe(signal)}`);
    }
    if (out.some((x) => x.kill.signal === signal)) {
      ok = false;
      return bad(`${where}.kill.signal`, `${signal} is already sent by an earlier action of this rule`);
    }
    out.push({ kill: { signal: signal as ActionSignal } });
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

  /** Carries out `actions` for an alert about `ev`. Never throws. */
  run(actions: readonly RuleAction[], ev: OutputEvent): ActionResult[] {
    return actions.map((a) => this.#kill(a.kill.signal, ev));
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
