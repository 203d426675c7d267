// `vigil status`: the running agent's state, readable: what is loaded, how each probe is doing, where every
// record went (kernel, reader, pipeline, sinks), and the state of the resolvers and runtime sockets.
import type { AgentStatus, ReloadResult } from '../agent/agent.ts';
import type { KillRulesStatus } from '../rules/kernel-maps.ts';
import { actionCountsText } from '../rules/actions.ts';

const n = (x: number) => x.toLocaleString('en-US');

/** ", 1 about containers, holding in 3 container cgroups" for a sensor's kill rules ("" when none is). */
const scopedText = (k: Partial<KillRulesStatus> | undefined, fmt: (x: number) => string): string =>
  k?.scoped ? `, ${fmt(k.scoped)} about containers, holding in ${fmt(k.cgroups ?? 0)} container cgroup${k.cgroups === 1 ? '' : 's'}` : '';

export function formatStatus(s: AgentStatus): string {
  const out: string[] = [];
  out.push(`vigil ${s.state} (pid ${s.pid}, up ${s.uptimeSeconds}s)`);
  out.push(`  mode: process ${s.mode.process ?? '-'}, channel ${s.mode.channel}, cgroups ${s.mode.cgroups}${s.mode.fallbackReason ? ` — ${s.mode.fallbackReason}` : ''}`);
  const r = s.config.lastReload;
  const last = r ? `; last reload ${r.at}: ${r.ok ? (r.changed?.length ? `applied (${r.changed.join(', ')})` : 'nothing changed') : `REJECTED: ${r.error}`}` : '';
  out.push(`  config: generation ${s.config.generation}, reloads applied ${s.config.reloads.applied}, rejected ${s.config.reloads.rejected}${last}`);
  out.push('sensors:');
  for (const m of s.sensors) {
    const running = m.probes.filter((p) => p.state === 'running');
    out.push(`  ${m.name}: ${m.state}, ${running.length}/${m.probes.length} probes running`);
    // Several probes can run one program (a syscall exit handler on many tracepoints): the kernel counts
    // runs per program, so the count is shown once, on the program's first running probe (the only ones listed).
    const counted = new Set<number>();
    for (const p of m.probes) {
      const label = p.id.uid ? `${p.id.fn}[${p.id.uid}]` : p.id.fn;
      const progId = p.stats?.id;
      const shared = progId !== undefined && counted.has(progId);
      if (progId !== undefined && p.state === 'running') counted.add(progId);
      const runs = p.stats?.runCount ? (shared ? '  (runs counted above: same program)' : `  runs ${n(p.stats.runCount)}`) : '';
      if (p.state === 'running') out.push(`    ✓ ${label}  ${p.kind} ${p.target}${runs}`);
      else if (p.state === 'failed') out.push(`    ✗ ${label}  ${p.error ?? 'failed'}`);
    }
  }
  const k = s.kernel;
  out.push(`kernel: emitted ${n(k.emitted)}, lost ${n(k.reserveFailed + k.outputFailed)} (ring full ${n(k.reserveFailed)}, output failed ${n(k.outputFailed)})`);
  if (s.reader) out.push(`reader: received ${n(s.reader.received)}, lost ${n(s.reader.lost)}${s.reader.corrupt ? `, corrupt headers skipped ${n(s.reader.corrupt)}` : ''}, wakeups ${n(s.reader.wakeups)}, drains ${n(s.reader.drains)}, ring ${(s.reader.fill * 100).toFixed(1)}% full`);
  const p = s.pipeline;
  out.push(`pipeline: records ${n(p.records)}, emitted ${n(p.emitted)} (+${n(p.synthetic)} synthetic), internal ${n(p.internal)}, buffered ${n(p.buffered)}`);
  out.push(`  dropped: decode errors ${n(p.dropped.decodeError)}, unknown opcodes ${n(p.dropped.unknownOpcode)}, filtered ${n(p.dropped.filtered)}`);
  out.push(`  by type: ${Object.entries(p.byType).map(([t, c]) => `${t} ${n(c)}`).join(', ') || 'none yet'}`);
  if (s.syscalls) {
    const f = s.syscalls.filters;
    out.push(`syscalls: ${s.syscalls.state}: ${s.syscalls.ops.join(', ')} (per-thread pairing in ${s.syscalls.pendingStore} storage; open arguments read at ${s.syscalls.openArgs ?? 'entry'}${s.syscalls.pathReads ? `; paths walked with ${s.syscalls.pathReads === 'direct' ? 'plain loads' : 'a helper call per field'}${s.syscalls.fdReads === 'direct' ? ', fd tables too' : ''}` : ''})`);
    const dirs = s.syscalls.secretDirs;
    const seen = s.syscalls.secretDirsRefresh;
    const since = seen?.changed ? `; found changed ${n(seen.changed)} time${seen.changed === 1 ? '' : 's'} since start` : '';
    const failed = seen?.failed ? `; ${n(seen.failed)} looks failed` : '';
    const iou = s.syscalls.ioUring;
    if (iou) out.push(iou.monitored ? `  io_uring requests (openat, unlinkat, renameat, mkdirat, connect): reported${f ? `; ${n(f.ioUring)} seen, ${n(f.ioUringNoResult)} without their result (${n(f.ioUringTableFull)} of them because the pairing table was full)` : ''}` : `  io_uring requests: NOT reported (${iou.reason})`);
    if (dirs?.length) out.push(`  secret reads by symlink, "..", or /proc/<pid>/root: checked by the opened file in ${dirs.length} director${dirs.length === 1 ? 'y' : 'ies'} (${dirs.slice(0, 4).join(', ')}${dirs.length > 4 ? ', …' : ''})${since}${failed}`);
    if (f) {
      out.push(`  in-kernel filters: entered ${n(f.entered)}; dropped: type off ${n(f.disabled)}, vigil itself ${n(f.self)}, scope ${n(f.scope)}, comm ${n(f.comm)}, path ${n(f.path)}, not sensitive ${n(f.notSensitive)}, request kind ${n(f.args)}; lost: no slot to pair entry and exit ${n(f.noPending)}`);
      const k = s.syscalls.killRules;
      const kills = (k?.rules ?? 0) - (k?.denies ?? 0);
      if (kills || f.killMatched) out.push(`  in-kernel kill rules: ${n(kills)} (${n(k?.values ?? 0)} strings${scopedText(k, n)}); file events matched ${n(f.killMatched)}, processes signalled ${n(f.killSent)}`);
      if (k?.denies || f.denyMatched) out.push(`  in-kernel deny rules: ${n(k?.denies ?? 0)}; connects, datagrams and binds matched ${n(f.denyMatched)}, denied ${n(f.denied)}`);
    }
  }
  const rules = s.rules;
  if (!rules) out.push('rules: off');
  else {
    out.push(`rules: ${rules.enabled} of ${rules.rules} on (${rules.lists} lists, ${rules.macros} macros), about ${rules.types === 'all' ? 'every event type' : rules.types.join(', ')}`);
    out.push(`  checked ${n(rules.received)} events (${n(rules.prefiltered)} more turned down by the rules' guards, never built), ${n(rules.alerts)} alerts, ${n(rules.errors)} evaluation errors; dropped ${n(rules.dropped)} (queue full), queued ${n(rules.queued)}`);
    if (rules.actionRules || rules.enforce) {
      const did = actionCountsText(rules.actions, n);
      out.push(`  actions: ${rules.enforce ? 'enforced' : 'dry run (rules.enforce is off)'}; ${rules.actionRules} rule(s) with actions${did ? `; ${did}` : ''}`);
    }
    const top = rules.perRule.filter((x) => x.matches || x.errors).sort((x, y) => y.matches - x.matches).slice(0, 5);
    for (const x of top) {
      const did = actionCountsText(x.actions, n);
      out.push(`    ${x.name}: ${n(x.matches)} alerts${x.errors ? `, ${n(x.errors)} errors (last: ${x.lastError})` : ''}${did ? `; actions: ${did}` : ''}`);
    }
  }
  const a = s.accounting;
  const counts = (st: { received: number; sent: number; queued: number; dropped: Record<string, number>; skipped?: number }) => {
    const drops = Object.entries(st.dropped).map(([r, c]) => `${r} ${n(c)}`).join(', ');
    const skipped = st.skipped ? `, skipped ${n(st.skipped)} (not selected)` : '';
    return `received ${n(st.received)}, sent ${n(st.sent)}, queued ${n(st.queued)}${drops ? `, dropped ${drops}` : ''}${skipped}`;
  };
  out.push('sinks:');
  for (const [name, st] of Object.entries(s.sinks)) {
    const joined = a?.sinks[name]?.before ? ` (added by a reload, after event ${n(a.sinks[name].before)})` : '';
    out.push(`  ${name}: ${counts(st)}${st.lastError ? ` — last error: ${st.lastError}` : ''}${joined}`);
  }
  for (const r of a?.retired ?? []) {
    if (r.sinks > 1) out.push(`  ${n(r.sinks)} earlier sinks removed by reloads (generations ${r.generations[0]}-${r.generations[1]}), summed: ${counts(r)}`);
    else out.push(`  ${r.name} (removed by a reload; ran in generations ${r.generations[0]}-${r.generations[1]}): ${counts(r)}`);
  }
  if (a) {
    const lost = a.kernel.lost.ringFull + a.kernel.lost.outputFailed;
    const pd = Object.values(a.pipeline.dropped).reduce((x, y) => x + y, 0);
    const verdict = a.balanced ? 'balanced' : `NOT balanced (${Object.entries(a.imbalance).map(([k, v]) => `${k} ${v}`).join(', ')})`;
    out.push(`accounting: ${verdict}: kernel ${n(a.kernel.attempted)} = lost ${n(lost)} + unread ${n(a.unread)} + pipeline dropped ${n(pd)} + state-only ${n(a.pipeline.stateOnly)} + buffered ${n(a.pipeline.buffered)} + events ${n(a.pipeline.events)}; every sink received the events (+${n(a.pipeline.synthetic)} synthetic)`);
  }
  const c = s.process;
  out.push(`processes (${c.state}): ${n(c.live)} live, ${n(c.exited)} exited retained; broken lineage ${n(c.brokenLineage)}, evictions ${n(c.evictions)}, held ${n(c.held)}`);
  const ek = c.execKill;
  if (ek && (ek.rules || ek.matched)) out.push(`  in-kernel kill rules on execs: ${n(ek.rules)} (${n(ek.values)} strings${scopedText(ek, n)}); execs matched ${n(ek.matched)}, processes signalled ${n(ek.sent)}`);
  if (s.containers) {
    const ct = s.containers;
    out.push(`containers: ${n(ct.running)} running, ${n(ct.enrichPending)} pending enrichment, ${n(ct.enrichFailed)} failed`);
    for (const r of ct.runtimes) out.push(`  ${r.runtime} at ${r.endpoint}: ok ${n(r.ok)}, errors ${n(r.errors)}, timeouts ${n(r.timeouts)}${r.lastError ? ` — ${r.lastError}` : ''}`);
    if (!ct.runtimes.length) out.push('  no runtime socket found: containers are attributed by id only');
  }
  for (const sub of s.subscribers) out.push(`subscriber ${sub.name}: delivered ${n(sub.delivered)}, dropped ${n(sub.dropped)}`);
  for (const [kind, t] of Object.entries(s.subscriberTotals ?? {})) {
    if (t.subscribed === t.live) continue; // nothing left: the lines above say it all
    const d = t.dropped;
    out.push(`subscribers ${kind}, ${n(t.subscribed - t.live)} gone included: delivered ${n(t.delivered)}, dropped ${n(d.queueFull + d.failed + d.unsubscribed)} (queue full ${n(d.queueFull)}, delivery failed ${n(d.failed)}, queued when they left ${n(d.unsubscribed)})`);
  }
  return `${out.join('\n')}\n`;
}

/** What a reload did, in one line (after "reloaded" or "configuration reloaded"). */
export function formatReload(r: ReloadResult): string {
  if (!r.changed.length) return ': nothing changed';
  const scrub = r.scrub ? `; scrub rules: ${r.scrub.images} cached images scrubbed again, ${r.scrub.scrubbedArgs} arguments and ${r.scrub.scrubbedEnv} variables changed` : '';
  const changes = r.sinks ? [r.sinks.added.length ? `added: ${r.sinks.added.join(', ')}` : '', r.sinks.removed.length ? `removed: ${r.sinks.removed.join(', ')}` : ''].filter(Boolean) : [];
  const sinks = changes.length ? `; sinks ${changes.join(', ')}` : '';
  return ` (generation ${r.generation}): ${r.changed.join(', ')}; syscall sensor ${r.syscalls}${sinks}${scrub}`;
}
