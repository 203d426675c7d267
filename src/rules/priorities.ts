// Falco's alert priorities, most severe first: shared by the rule compiler and what formats or selects alerts
// (the terminal line, a sink's minPriority), which should not load the compiler and its CEL library.
export const PRIORITIES = ['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'informational', 'debug'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** A priority as Falco files write it: any case, "info" for informational; undefined for anything else. */
export function priorityOf(v: unknown): Priority | undefined {
  if (typeof v !== 'string') return undefined;
  const p = v.toLowerCase() === 'info' ? 'informational' : v.toLowerCase();
  return (PRIORITIES as readonly string[]).includes(p) ? (p as Priority) : undefined;
}
