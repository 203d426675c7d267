// Retry timing shared by the network sinks: exponential backoff with jitter, Retry-After parsing, and sleeps
// that close() can cut short. Jitter matters because every agent in a fleet sees the same collector outage
// and would otherwise retry in lock-step when it comes back.

export interface BackoffOptions {
  /** First delay, in ms. */
  initialMs: number;
  /** Upper bound of any single delay, in ms. */
  maxMs: number;
}

/**
 * Delay before retry number `attempt` (0 for the first retry): the exponential step min(max, initial * 2^n),
 * of which a random half is jittered away ("equal jitter"), so delays still grow but never synchronize.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const step = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.min(attempt, 30));
  return step / 2 + random() * (step / 2);
}

/**
 * Parses an HTTP Retry-After value (delta seconds or an HTTP date) into ms from now; undefined when absent or
 * unparsable. Negative results (a date in the past) become 0.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (value == null) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - nowMs);
}

/**
 * Sleeps ms; resolves early (to false) when the signal aborts, to true when the time passed. The timer is
 * cleared on abort so a closed sink leaves no timer behind.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
