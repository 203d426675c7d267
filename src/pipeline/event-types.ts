// Every event type the pipeline emits, by name: what a sink's `types`, and a rule's, may name.
import { OP_NUMBERS } from '../syscalls/config.ts';

/** The process, container and syscall events (a rule may be about any of these). */
export const RECORD_EVENT_TYPES: ReadonlySet<string> = new Set(['exec', 'exit', 'fork', 'creds', 'comm', 'container_started', 'container_stopped', ...Object.keys(OP_NUMBERS)]);

/** Every type an output event can have: the above and the rules' alerts. */
export const OUTPUT_EVENT_TYPES: ReadonlySet<string> = new Set([...RECORD_EVENT_TYPES, 'alert']);

/** Why `types` names types outside `known` ("unknown event type "x" (known: …)"); undefined when it does not. */
export function unknownTypes(types: readonly string[], known: ReadonlySet<string>): string | undefined {
  const unknown = types.filter((t) => !known.has(t));
  if (!unknown.length) return undefined;
  return `unknown event type${unknown.length > 1 ? 's' : ''} ${unknown.map((t) => JSON.stringify(t)).join(', ')} (known: ${[...known].join(', ')})`;
}
