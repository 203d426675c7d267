// Prometheus metrics (prom-client), computed from the agent's counters at scrape time: nothing on the hot
// path updates a metric. Events per type, drops per stage and per sink, ring fill, cache sizes, probe run
// counts and time.
import client from 'prom-client';
import type { Agent } from '../agent/agent.ts';

export function createMetrics(agentRef: Agent): client.Registry {
  // One status snapshot per scrape: every gauge reads the same numbers, and status() (map lookups, program
  // info syscalls) runs once, not once per gauge.
  let snap: { at: number; s: ReturnType<Agent['status']> } | undefined;
  const agent = {
    get state() {
      return agentRef.state;
    },
    status() {
      if (!snap || Date.now() - snap.at > 250) snap = { at: Date.now(), s: agentRef.status() };
      return snap.s;
    },
  };
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'vigil_process_' });
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: client.Gauge) => void) =>
    new client.Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        if (agent.state === 'running' || agent.state === 'stopping') collect(this);
      },
    });

  gauge('vigil_events_total', 'Events emitted by the pipeline, by type', ['type'], (g) => {
    for (const [t, n] of Object.entries(agent.status().pipeline.byType)) g.set({ type: t }, n);
  });
  gauge('vigil_pipeline_records_total', 'Records read from the kernel', [], (g) => g.set(agent.status().pipeline.records));
  gauge('vigil_dropped_total', 'Records or events dropped, by stage and reason', ['stage', 'reason'], (g) => {
    const s = agent.status();
    g.set({ stage: 'kernel', reason: 'ring_full' }, s.kernel.reserveFailed);
    g.set({ stage: 'kernel', reason: 'output_failed' }, s.kernel.outputFailed);
    g.set({ stage: 'reader', reason: 'perf_lost' }, s.reader?.lost ?? 0);
    g.set({ stage: 'reader', reason: 'corrupt' }, s.reader?.corrupt ?? 0);
    for (const [r, n] of Object.entries(s.pipeline.dropped)) g.set({ stage: 'pipeline', reason: r }, n);
    // Per kind (sse, rules), those that left included: one series per kind that only grows, whatever clients
    // come and go (per client, two from the same address would share a series, and one that left would vanish).
    for (const [kind, t] of Object.entries(s.subscriberTotals)) {
      g.set({ stage: `subscriber:${kind}`, reason: 'queue_full' }, t.dropped.queueFull);
      g.set({ stage: `subscriber:${kind}`, reason: 'delivery_failed' }, t.dropped.failed);
      g.set({ stage: `subscriber:${kind}`, reason: 'unsubscribed' }, t.dropped.unsubscribed);
    }
  });
  gauge('vigil_subscriber_events_total', 'Events delivered to subscribers, per kind (sse, rules), those that left included', ['kind'], (g) => {
    for (const [kind, t] of Object.entries(agent.status().subscriberTotals)) g.set({ kind }, t.delivered);
  });
  gauge('vigil_rule_matches_total', 'Alerts raised, per detection rule and priority', ['rule', 'priority'], (g) => {
    for (const r of agent.status().rules?.perRule ?? []) g.set({ rule: r.name, priority: r.priority }, r.matches);
  });
  gauge('vigil_rule_errors_total', 'Rule evaluations that failed (counted as no match), per rule', ['rule'], (g) => {
    for (const r of agent.status().rules?.perRule ?? []) g.set({ rule: r.name }, r.errors);
  });
  gauge('vigil_rule_actions_total', 'What rules\' actions did, per rule, action (kill, deny) and result (sent, dry-run, repeat, gone, refused, failed; denied, missed)', ['rule', 'action', 'result'], (g) => {
    for (const r of agent.status().rules?.perRule ?? []) for (const [action, counts] of Object.entries(r.byAction ?? {})) for (const [result, c] of Object.entries(counts)) g.set({ rule: r.name, action, result }, c);
  });
  gauge('vigil_rules_loaded', 'Detection rules loaded, by state', ['state'], (g) => {
    const r = agent.status().rules;
    g.set({ state: 'enabled' }, r?.enabled ?? 0);
    g.set({ state: 'disabled' }, r ? r.rules - r.enabled : 0);
  });
  gauge('vigil_sink_events_total', 'Events per sink: received, sent, queued, skipped (left out by the sink\'s types or minPriority)', ['sink', 'state'], (g) => {
    for (const [name, st] of Object.entries(agent.status().sinks)) {
      g.set({ sink: name, state: 'received' }, st.received);
      g.set({ sink: name, state: 'sent' }, st.sent);
      g.set({ sink: name, state: 'queued' }, st.queued);
      if (st.skipped !== undefined) g.set({ sink: name, state: 'skipped' }, st.skipped);
    }
  });
  gauge('vigil_sink_dropped_total', 'Events dropped per sink and reason', ['sink', 'reason'], (g) => {
    for (const [name, st] of Object.entries(agent.status().sinks)) for (const [r, n] of Object.entries(st.dropped)) g.set({ sink: name, reason: r }, n);
  });
  gauge('vigil_ring_fill_ratio', 'Fraction of the ring buffer holding unread records', [], (g) => g.set(agent.status().reader?.fill ?? 0));
  gauge('vigil_ring_reader_passes_total', 'Ring reader passes: drains, waits for the sinks\' room, drains past that room', ['kind'], (g) => {
    const r = agent.status().reader;
    if (!r) return;
    g.set({ kind: 'drain' }, r.drains);
    g.set({ kind: 'room_wait' }, r.creditWaits);
    g.set({ kind: 'past_room' }, r.pastRoom);
  });
  gauge('vigil_kernel_emitted_total', 'Records the sensors handed to user space', [], (g) => g.set(agent.status().kernel.emitted));
  gauge('vigil_process_cache_entries', 'Process cache entries, live and exited', ['state'], (g) => {
    const p = agent.status().process;
    g.set({ state: 'live' }, p.live);
    g.set({ state: 'exited' }, p.exited);
  });
  gauge('vigil_process_cache_evictions_total', 'Process cache evictions', [], (g) => g.set(agent.status().process.evictions));
  gauge('vigil_process_broken_lineage_total', 'Processes whose parent could not be found', [], (g) => g.set(agent.status().process.brokenLineage));
  gauge('vigil_containers', 'Containers known', ['state'], (g) => {
    const c = agent.status().containers;
    if (!c) return;
    g.set({ state: 'running' }, c.running);
    g.set({ state: 'enrichment_pending' }, c.enrichPending);
  });
  gauge('vigil_config_reloads_total', 'Configuration reloads, applied or rejected whole', ['result'], (g) => {
    const r = agent.status().config.reloads;
    g.set({ result: 'applied' }, r.applied);
    g.set({ result: 'rejected' }, r.rejected);
  });
  gauge('vigil_config_last_reload_successful', 'Whether the last configuration reload was applied (1 when none was asked for)', [], (g) => g.set(agent.status().config.lastReload?.ok === false ? 0 : 1));
  gauge('vigil_config_generation', 'Configuration generation: 1 at start, one more per reload that changed something', [], (g) => g.set(agent.status().config.generation));
  // The kernel counts runs per program, and one program can serve several probes (a syscall exit handler on
  // many tracepoints): one series per program, so that sums over series are true totals.
  const perProgram = (g: { set(labels: Record<string, string>, v: number): void }, value: (st: { runCount: number; runTimeNs: number }) => number) => {
    const seen = new Set<number>();
    for (const s of agent.status().sensors) {
      for (const p of s.probes) {
        if (!p.stats || seen.has(p.stats.id)) continue;
        seen.add(p.stats.id);
        g.set({ sensor: s.name, program: p.id.fn }, value(p.stats));
      }
    }
  };
  gauge('vigil_program_run_count', 'BPF program runs, per program (needs kernel.bpf_stats_enabled)', ['sensor', 'program'], (g) => perProgram(g, (st) => st.runCount));
  gauge('vigil_program_run_time_seconds', 'BPF program run time, per program (needs kernel.bpf_stats_enabled)', ['sensor', 'program'], (g) => perProgram(g, (st) => st.runTimeNs / 1e9));
  return registry;
}
