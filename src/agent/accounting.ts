// Where every record went: the identity "kernel emitted = delivered + counted drops", checked per sink from the
// counters of each stage (kernel, reader, pipeline, sink). Exact once the agent has stopped, when nothing is in
// flight; while it runs, the records the kernel handed over that the reader has not reached yet show as
// `unread` (and can be off by the few records being submitted at that instant). A sink a reload added counts
// the events made before it joined as `before`; one a reload removed is accounted up to its removal, apart.
import type { PipelineCounters } from '../pipeline/pipeline.ts';
import type { SinkStats } from '../pipeline/types.ts';

export interface SinkAccount {
  received: number;
  sent: number;
  queued: number;
  dropped: Record<string, number>;
  droppedTotal: number;
  /** Events its selection (types, minPriority) left out: received, settled, not dropped. */
  skipped: number;
  /** Events the pipeline made before a reload added this sink (0 for a sink that ran from the start). */
  before: number;
}

/**
 * A sink a reload removed: it received the events the pipeline made from `before` to `through`. Or, once
 * more sinks were removed than are listed one by one (`sinks` > 1), the earliest ones folded into one
 * account: their counters summed, `before`..`through` spanning them, `given` the events they were given.
 */
export interface RetiredSinkAccount extends SinkAccount {
  name: string;
  through: number;
  /** Configuration generations it ran in. */
  generations: [number, number];
  /** Sinks this account covers: 1, or more for the folded earliest ones. */
  sinks: number;
  /** Events it was given: through - before for one sink, their sum for folded ones. */
  given: number;
}

/** Per sink: its counters, and how many events the pipeline had made when it joined (default 0). */
export type SinkInput = SinkStats & { before?: number };
export type RetiredSinkInput = SinkStats & { name: string; before: number; through: number; generations: [number, number]; sinks?: number; given?: number };

export interface Accounting {
  kernel: {
    /** Records the sensors tried to hand over: emitted + lost. */
    attempted: number;
    /** Records handed to user space (reserved or output successfully). */
    emitted: number;
    /** Records lost in the kernel: the ring was full (reserve/output failed), or a perf output failed. */
    lost: { ringFull: number; outputFailed: number };
  };
  /**
   * corrupt: record headers the reader found contradicting the ring and skipped past (the records in
   * between show as unread, and the run does not balance: a kernel or memory fault, never seen).
   */
  reader: { received: number; discarded: number; lost: number; corrupt: number };
  /** Emitted records the reader has not taken yet (emitted - received). 0 once stopped. */
  unread: number;
  pipeline: {
    records: number;
    /** Output events built from records. */
    events: number;
    /** Events not made from a kernel record (container lifecycle): every sink receives them too. */
    synthetic: number;
    /** Records that only update state (cgroup changes, process event types that are off). */
    stateOnly: number;
    /** In the reorder window or held for enrichment. */
    buffered: number;
    /** Dropped records by reason. */
    dropped: Record<string, number>;
  };
  sinks: Record<string, SinkAccount>;
  /**
   * Sinks reloads removed, each balanced on its own: it received every event from its joining to its removal
   * (through - before), and sent, dropped or still holds each (a removed sink closes in the background).
   */
  retired: RetiredSinkAccount[];
  /**
   * Per sink, left minus right of: attempted + synthetic = lost + unread + pipeline drops + state-only +
   * buffered + events before the sink joined + sink sent + sink dropped + sink skipped + sink queued. 0 when
   * every record is accounted for.
   */
  imbalance: Record<string, number>;
  /** Every imbalance is 0 and each stage balances on its own. */
  balanced: boolean;
  /** Taken after the sensors were detached, the ring drained and the sinks closed: nothing in flight. */
  final: boolean;
}

export interface AccountingInput {
  kernel: { emitted: number; reserveFailed: number; outputFailed: number };
  reader: { received: number; discarded: number; lost: number; corrupt?: number } | undefined;
  pipeline: PipelineCounters;
  sinks: Record<string, SinkInput>;
  retired?: RetiredSinkInput[];
  final: boolean;
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/**
 * `r`, a removed sink that has closed (its counters final), added to the account of the earliest removed
 * sinks (`into`, undefined for the first): the counters summed, so that the account still balances, while
 * the sink itself and a line of its own go (an agent reloaded for months would list every sink it removed).
 */
export function foldRetired(into: RetiredSinkInput | undefined, r: RetiredSinkInput): RetiredSinkInput {
  const given = r.given ?? r.through - r.before;
  // One sink folded is still that sink's own account, under its own name; two or more are "earlier".
  if (!into) return { ...r, dropped: { ...r.dropped }, sinks: r.sinks ?? 1, given };
  const dropped = { ...into.dropped };
  for (const [k, v] of Object.entries(r.dropped)) dropped[k] = (dropped[k] ?? 0) + v;
  const out: RetiredSinkInput = {
    name: 'earlier',
    received: into.received + r.received,
    sent: into.sent + r.sent,
    queued: into.queued + r.queued,
    retries: into.retries + r.retries,
    ...(into.skipped !== undefined || r.skipped !== undefined ? { skipped: (into.skipped ?? 0) + (r.skipped ?? 0) } : {}),
    dropped,
    before: Math.min(into.before, r.before),
    through: Math.max(into.through, r.through),
    generations: [Math.min(into.generations[0], r.generations[0]), Math.max(into.generations[1], r.generations[1])],
    sinks: (into.sinks ?? 1) + (r.sinks ?? 1),
    given: (into.given ?? into.through - into.before) + given,
  };
  const lastError = r.lastError ?? into.lastError;
  if (lastError !== undefined) out.lastError = lastError;
  return out;
}

/** Computes the accounting from one snapshot of the counters. Never throws. */
export function account(i: AccountingInput): Accounting {
  const p = i.pipeline;
  const reader = i.reader ?? { received: p.records, discarded: 0, lost: 0, corrupt: 0 };
  const lost = { ringFull: i.kernel.reserveFailed, outputFailed: i.kernel.outputFailed };
  const dropped: Record<string, number> = { ...p.dropped };
  const pipeDrops = sum(dropped);
  // Without a reader (no BPF: the proc connector and /proc feed the pipeline directly) the source handed over
  // exactly what the pipeline took; the kernel's counters, all 0, would show every record as over-read.
  const emitted = i.reader ? i.kernel.emitted : p.records;
  const unread = emitted - reader.received;
  const sinks: Record<string, SinkAccount> = {};
  const imbalance: Record<string, number> = {};
  const attempted = emitted + lost.ringFull + lost.outputFailed;
  // Each stage on its own: the pipeline put every record it read in exactly one counter...
  let balanced = p.records === reader.received && p.records === pipeDrops + p.internal + p.emitted + p.buffered;
  const sinkAccount = (s: SinkStats, before: number): SinkAccount => ({ received: s.received, sent: s.sent, queued: s.queued, dropped: { ...s.dropped }, droppedTotal: sum(s.dropped), skipped: s.skipped ?? 0, before });
  for (const [name, s] of Object.entries(i.sinks)) {
    const a = (sinks[name] = sinkAccount(s, s.before ?? 0));
    const left = attempted + p.synthetic;
    const right = lost.ringFull + lost.outputFailed + reader.lost + unread + pipeDrops + p.internal + p.buffered + a.before + s.sent + a.droppedTotal + a.skipped + s.queued;
    imbalance[name] = left - right;
    // ...and each sink received every event since it joined and settled (sent, dropped, skipped) or holds each one.
    if (left !== right || s.received !== p.emitted + p.synthetic - a.before || s.received !== s.sent + a.droppedTotal + a.skipped + s.queued) balanced = false;
  }
  const retired = (i.retired ?? []).map((r): RetiredSinkAccount => {
    const a = sinkAccount(r, r.before);
    const given = r.given ?? r.through - r.before;
    if (r.received !== given || r.received !== r.sent + a.droppedTotal + a.skipped + r.queued || (i.final && r.queued !== 0)) balanced = false;
    return { name: r.name, ...a, through: r.through, generations: r.generations, sinks: r.sinks ?? 1, given };
  });
  if (i.final && (unread !== 0 || p.buffered !== 0)) balanced = false;
  return {
    kernel: { attempted, emitted, lost },
    reader: { received: reader.received, discarded: reader.discarded, lost: reader.lost, corrupt: reader.corrupt ?? 0 },
    unread,
    pipeline: { records: p.records, events: p.emitted, synthetic: p.synthetic, stateOnly: p.internal, buffered: p.buffered, dropped },
    sinks,
    retired,
    imbalance,
    balanced,
    final: i.final,
  };
}

const kv = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `${k}=${v}`).join(' ');

/**
 * The accounting as log lines, key=value so that people and scripts read the same thing: one for the kernel
 * and reader, one for the pipeline, one per sink, and the verdict.
 */
export function formatAccounting(a: Accounting): string[] {
  const out = [
    `kernel attempted=${a.kernel.attempted} emitted=${a.kernel.emitted} ring-full=${a.kernel.lost.ringFull} output-failed=${a.kernel.lost.outputFailed} read=${a.reader.received} unread=${a.unread}${a.reader.lost ? ` reader-lost=${a.reader.lost}` : ''}${a.reader.corrupt ? ` reader-corrupt=${a.reader.corrupt}` : ''}`,
    `pipeline records=${a.pipeline.records} events=${a.pipeline.events} synthetic=${a.pipeline.synthetic} state-only=${a.pipeline.stateOnly} buffered=${a.pipeline.buffered}${Object.keys(a.pipeline.dropped).length ? ` ${kv(Object.fromEntries(Object.entries(a.pipeline.dropped).map(([k, v]) => [`dropped.${k}`, v])))}` : ''}`,
  ];
  const counts = (s: SinkAccount) => {
    const drops = kv(Object.fromEntries(Object.entries(s.dropped).map(([k, v]) => [`dropped.${k}`, v])));
    return `received=${s.received} sent=${s.sent} queued=${s.queued} dropped=${s.droppedTotal}${drops ? ` ${drops}` : ''}${s.skipped ? ` skipped=${s.skipped}` : ''}`;
  };
  for (const [name, s] of Object.entries(a.sinks)) out.push(`sink ${name} ${counts(s)}${s.before ? ` joined-after=${s.before}` : ''}`);
  for (const r of a.retired) {
    if (r.sinks > 1) out.push(`retired sinks ${r.name} sinks=${r.sinks} generations=${r.generations[0]}-${r.generations[1]} given=${r.given} ${counts(r)}`);
    else out.push(`retired sink ${r.name} generations=${r.generations[0]}-${r.generations[1]} events=${r.before}..${r.through} ${counts(r)}`);
  }
  if (a.balanced) out.push(`balanced: every record the kernel produced was delivered or dropped with a counted reason${a.final ? '' : ' (in flight: unread and queued)'}`);
  else if (a.reader.corrupt) out.push(`NOT balanced (${kv(a.imbalance)}): the reader skipped ${a.reader.corrupt} corrupt stretch(es) of the ring; the records in them are lost`);
  else out.push(`NOT balanced (${kv(a.imbalance)}): records went missing between stages; please report this`);
  return out;
}
