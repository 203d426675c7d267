// `vigil events`: stored events, filtered by age, type, container and pid. Asks the running agent; when no
// agent runs, reads the store file directly (read-only), so past events stay queryable after a stop.
import fs from 'node:fs';
import { AgentUnavailableError, apiGet } from '../api/client.ts';
import { parseSince } from '../api/server.ts';
import type { OutputEvent } from '../pipeline/types.ts';
import { formatText } from '../sinks/text-format.ts';
import { Store } from '../store/store.ts';

export interface EventsFlags {
  since?: string;
  type?: string;
  container?: string;
  pid?: number;
  limit: number;
  /** Keep the oldest events within the limit instead of the latest. */
  first?: boolean;
  json?: boolean;
  socket: string;
  store?: string;
}

export async function eventsCommand(f: EventsFlags): Promise<number> {
  const q = new URLSearchParams();
  if (f.since) q.set('since', f.since);
  if (f.type) q.set('type', f.type);
  if (f.container) q.set('container', f.container);
  if (f.pid !== undefined) q.set('pid', String(f.pid));
  q.set('limit', String(f.limit));
  if (f.first) q.set('order', 'first');
  let events: OutputEvent[];
  let from: string;
  try {
    events = (await apiGet<{ events: OutputEvent[] }>(f.socket, `/v1/events?${q}`)).events;
    from = 'the running agent';
  } catch (err) {
    if (!(err instanceof AgentUnavailableError)) throw err;
    const path = f.store ?? '/var/lib/vigil/events.db';
    if (!fs.existsSync(path)) {
      process.stderr.write(`vigil events: no agent is running and there is no store at ${path} (use --store)\n`);
      return 1;
    }
    const store = Store.open(path, { readOnly: true });
    try {
      events = store.query({
        since: f.since ? parseSince(f.since) : undefined,
        type: f.type ? f.type.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
        container: f.container,
        pid: f.pid,
        limit: f.limit,
        order: f.first ? 'asc' : 'latest',
      });
    } finally {
      store.close();
    }
    from = path;
  }
  const color = !f.json && process.stdout.isTTY;
  let out = '';
  for (const ev of events) out += f.json ? `${JSON.stringify(ev)}\n` : `${formatText(ev, color)}\n`;
  process.stdout.write(out);
  if (!f.json) {
    const more = events.length === f.limit ? ` (the limit: ${f.first ? 'later' : 'earlier'} events may exist; raise --limit or narrow --since)` : '';
    process.stderr.write(`vigil events: ${events.length} event${events.length === 1 ? '' : 's'} from ${from}${more}\n`);
  }
  return 0;
}
