// `vigil containers`: containers with their runtime, image and number of processes. From the running agent,
// or standalone: walk the cgroup hierarchy, ask the runtime sockets (bounded wait), count /proc processes.
import { AgentUnavailableError, apiGet } from '../api/client.ts';
import { ContainerResolver } from '../containers/resolver.ts';
import { detectRuntimeClients } from '../containers/runtimes/detect.ts';
import { takeSnapshot } from '../process/procfs.ts';

interface Row {
  id: string;
  name?: string;
  image?: string;
  runtime?: string;
  pod?: { name?: string; namespace?: string };
  enrichment: string;
  enrichmentError?: string;
  processes: number;
}

export async function containersCommand(o: { json?: boolean; socket: string }): Promise<number> {
  let rows: Row[];
  let from = 'the running agent';
  try {
    rows = (await apiGet<{ containers: Row[] }>(o.socket, '/v1/containers')).containers;
  } catch (err) {
    if (!(err instanceof AgentUnavailableError)) throw err;
    from = 'a cgroup walk and the runtime sockets (no agent running)';
    const r = new ContainerResolver({ clients: detectRuntimeClients(), timeoutMs: 2000, maxRetries: 0 });
    try {
      r.start();
      const end = Date.now() + 3000;
      while (r.containers().some((c) => c.enrichment === 'pending') && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
      const counts = new Map<string, number>();
      for (const p of takeSnapshot({ env: false })) {
        const c = p.ns ? r.byCgroupId(p.ns.cgroupId) : undefined;
        if (c) counts.set(c.id, (counts.get(c.id) ?? 0) + 1);
      }
      rows = r.containers().map((c) => ({ id: c.id, name: c.name, image: c.image, runtime: c.runtime, pod: c.pod, enrichment: c.enrichment, enrichmentError: c.enrichmentError, processes: counts.get(c.id) ?? 0 }));
    } finally {
      r.stop();
    }
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ containers: rows }, null, 2)}\n`);
    return 0;
  }
  const table = rows.map((c) => [c.id.slice(0, 12), c.name ?? '-', c.runtime ?? '-', c.image ?? '-', c.pod?.name ? `${c.pod.namespace}/${c.pod.name}` : '-', String(c.processes), c.enrichment === 'done' ? '' : c.enrichment]);
  const head = ['ID', 'NAME', 'RUNTIME', 'IMAGE', 'POD', 'PROCS', ''];
  const w = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  process.stdout.write(`${[head, ...table].map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n')}\n`);
  process.stderr.write(`vigil containers: ${rows.length} from ${from}\n`);
  return 0;
}
