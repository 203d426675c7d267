// The pipeline's parts without the kernel: the reorder window, compiled subscriber filters and bounded
// subscriber queues, and the record accounting over synthetic ring records (decode errors, unknown opcodes,
// internal records, filtered types, emitted events: every record lands in exactly one counter).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VIGIL_OPCODE, EVENT_HEADER, SIZEOF, EXIT_EVENT } from '../../src/events/layout.generated.ts';
import { decodeExit } from '../../src/events/decode.ts';
import { ProcessCache } from '../../src/process/cache.ts';
import { Pipeline, type Decoded, type OutputShaper, type RecordDecoder } from '../../src/pipeline/pipeline.ts';
import { processOutputs } from '../../src/pipeline/outputs.ts';
import { ReorderBuffer } from '../../src/pipeline/reorder.ts';
import { compileFilter, Router } from '../../src/pipeline/router.ts';
import { lineMetaOf, newLineMeta, type OutputEvent, type Sink, type SinkStats } from '../../src/pipeline/types.ts';

test('the reorder window restores timestamp order and releases late events, counted', async () => {
  const out: number[] = [];
  const r = new ReorderBuffer<{ ktimeNs: number }>(5, (e) => out.push(e.ktimeNs));
  for (const t of [1, 3, 2, 4, 10e6, 6, 20e6]) r.push({ ktimeNs: t });
  // 10e6 released 1..6 (older than 10e6 - 5e6); 20e6 released 10e6
  assert.deepEqual(out, [1, 2, 3, 4, 6, 10e6]);
  assert.equal(r.stats.reordered, 2);
  r.push({ ktimeNs: 5 }); // older than something already released: passed through as late
  assert.equal(r.stats.late, 1);
  r.flush();
  assert.deepEqual(out, [1, 2, 3, 4, 6, 10e6, 5, 20e6]);
  const direct: number[] = [];
  const off = new ReorderBuffer<{ ktimeNs: number }>(0, (e) => direct.push(e.ktimeNs));
  off.push({ ktimeNs: 2 });
  off.push({ ktimeNs: 1 });
  assert.deepEqual(direct, [2, 1], 'window 0 passes through');
});

test('the reorder window gives what a plain sorted list gives, across wrap-arounds, growth and its bound', () => {
  // The reference: a list kept sorted (stable), released from the front as the window says.
  class Reference {
    readonly buf: { ktimeNs: number }[] = [];
    newest = 0;
    released = 0;
    readonly windowNs: number;
    readonly max: number;
    readonly out: number[];
    constructor(windowNs: number, max: number, out: number[]) {
      this.windowNs = windowNs;
      this.max = max;
      this.out = out;
    }
    push(e: { ktimeNs: number }): void {
      if (e.ktimeNs < this.released) {
        this.out.push(e.ktimeNs);
        return;
      }
      let i = this.buf.length;
      while (i > 0 && this.buf[i - 1]!.ktimeNs > e.ktimeNs) i--;
      this.buf.splice(i, 0, e);
      this.newest = Math.max(this.newest, e.ktimeNs);
      this.release(this.newest - this.windowNs);
      if (this.buf.length > this.max) this.release(Infinity);
    }
    release(upTo: number): void {
      while (this.buf.length && this.buf[0]!.ktimeNs <= upTo) {
        this.released = this.buf[0]!.ktimeNs;
        this.out.push(this.buf.shift()!.ktimeNs);
      }
    }
  }
  let x = 7;
  const rand = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (const [windowMs, max] of [[5, 100_000], [5, 50], [1, 3]] as const) {
    const got: number[] = [];
    const want: number[] = [];
    const r = new ReorderBuffer<{ ktimeNs: number }>(windowMs, (e) => got.push(e.ktimeNs), max);
    const ref = new Reference(windowMs * 1e6, max, want);
    let t = 1e9;
    for (let i = 0; i < 20_000; i++) {
      // Mostly in order, some jitter across the window, bursts that fill the buffer, and equal times.
      t += rand() < 0.05 ? 0 : Math.floor(rand() * (i % 5000 < 500 ? 10 : 2e5));
      const k = rand() < 0.2 ? t - Math.floor(rand() * windowMs * 1.5e6) : t;
      r.push({ ktimeNs: k });
      ref.push({ ktimeNs: k });
      assert.equal(r.buffered, ref.buf.length, `window ${windowMs} max ${max} push ${i}`);
    }
    r.flush();
    ref.release(Infinity);
    assert.deepEqual(got, want, `window ${windowMs} max ${max}`);
    assert.equal(r.buffered, 0);
    assert.ok(r.stats.reordered > 0 && r.stats.late > 0, JSON.stringify(r.stats));
  }
});

test('the reorder window releases on its own after the window when nothing newer comes', async () => {
  const out: number[] = [];
  const r = new ReorderBuffer<{ ktimeNs: number }>(5, (e) => out.push(e.ktimeNs));
  r.push({ ktimeNs: 2 });
  r.push({ ktimeNs: 1 });
  assert.deepEqual(out, []);
  const end = Date.now() + 2000;
  while (out.length < 2 && Date.now() < end) await new Promise((res) => setTimeout(res, 2));
  assert.deepEqual(out, [1, 2]);
});

const ev = (o: Partial<OutputEvent>): OutputEvent => ({ type: 'exec', time: '', ktimeNs: 0, ...o });

/** What the router filters by: the LineMeta of an event. */
const about = (o: Partial<OutputEvent>) => lineMetaOf(ev(o), newLineMeta());

test('subscriber filters are compiled once and check what they name, on what a line is about', () => {
  const f = compileFilter({ types: ['exec', 'open'], container: 'abcdef123456', pid: 7 });
  assert.equal(f(about({ process: { pid: 7 }, container: { id: 'abcdef1234567890', enrichment: 'done' } })), true);
  assert.equal(f(about({ type: 'exit', process: { pid: 7 }, container: { id: 'abcdef1234567890', enrichment: 'done' } })), false);
  assert.equal(f(about({ process: { pid: 8 }, container: { id: 'abcdef1234567890', enrichment: 'done' } })), false);
  assert.equal(f(about({ process: { pid: 7 } })), false, 'no container');
  assert.equal(compileFilter({ container: 'web' })(about({ container: { id: 'x', name: 'web', enrichment: 'done' } })), true);
  assert.equal(compileFilter({ container: 'abcdef' })(about({ container: { id: 'abcdef99', name: 'web', enrichment: 'done' } })), true, 'an id prefix');
  assert.equal(compileFilter({ inContainer: false })(about({})), true);
  assert.equal(compileFilter({ inContainer: true })(about({})), false);
  assert.equal(compileFilter({ comm: 'curl' })(about({ process: { pid: 3, comm: 'curl' } })), true);
  assert.equal(compileFilter({ comm: 'curl' })(about({ process: { pid: 3, comm: 'wget' } })), false);
  const pod = { container: { id: 'abc', enrichment: 'done' as const }, pod: { uid: 'u', name: 'web-1', namespace: 'shop' } };
  assert.equal(compileFilter({ podNamespace: 'shop', podName: 'web-1' })(about(pod)), true);
  assert.equal(compileFilter({ podNamespace: 'other' })(about(pod)), false);
  assert.equal(compileFilter({})(about({})), true);
  assert.throws(() => compileFilter({ pid: -1 }), /filter.pid/);
  assert.throws(() => compileFilter({ container: '' }), /filter.container/);
});

test('line subscribers get lines, object subscribers objects; each kind is asked for by type', async () => {
  const r = new Router();
  const lines: string[][] = [];
  const objects: OutputEvent[] = [];
  assert.equal(r.wantsLines('open'), false);
  r.subscribeLines('sse:unix', { types: ['open'] }, (b) => lines.push(b.map((l) => l.toString('utf8'))));
  r.subscribe('rules', { types: ['exec'] }, (b) => objects.push(...b));
  assert.deepEqual([r.wantsLines('open'), r.wants('open'), r.wantsLines('exec'), r.wants('exec')], [true, false, false, true]);
  const open = ev({ type: 'open', ktimeNs: 1 });
  r.publish(undefined, '{"type":"open","ktimeNs":1}', lineMetaOf(open, newLineMeta())); // no object: only lines are wanted
  r.publish(ev({ type: 'open', ktimeNs: 2 })); // no line: made from the object
  r.publish(ev({ type: 'exec', ktimeNs: 3 }), '{}');
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(lines, [['{"type":"open","ktimeNs":1}', JSON.stringify(ev({ type: 'open', ktimeNs: 2 }))]]);
  assert.deepEqual(objects.map((e) => e.ktimeNs), [3]);
  // Neither an object nor a line to give: counted as failed, never silent.
  r.publish(undefined, undefined, lineMetaOf(ev({ type: 'exec' }), newLineMeta()));
  assert.equal(r.stats().find((s) => s.name === 'rules')!.failed, 1);
});

test('a slow subscriber loses events, counted; others are not affected', async () => {
  const r = new Router();
  const fast: number[] = [];
  r.subscribe('fast', {}, (b) => b.forEach((ev) => fast.push(ev.ktimeNs)));
  r.subscribe('small', {}, () => undefined, { maxQueue: 3 });
  for (let i = 0; i < 10; i++) r.publish(ev({ ktimeNs: i }), '{}');
  await new Promise((res) => setImmediate(res));
  const st = Object.fromEntries(r.stats().map((s) => [s.name, s]));
  assert.equal(fast.length, 10);
  assert.equal(st.small!.delivered, 3);
  assert.equal(st.small!.dropped, 7);
});

test('a subscriber with a batch size gets full batches at deliverDue(), the rest at the end of the turn', async () => {
  const r = new Router();
  const early: number[][] = [];
  const turn: number[][] = [];
  r.subscribe('rules', {}, (b) => early.push(b.map((ev) => ev.ktimeNs)), { maxQueue: 100, batch: 3 });
  r.subscribe('sse:unix', {}, (b) => turn.push(b.map((ev) => ev.ktimeNs)));
  for (let i = 0; i < 7; i++) {
    r.publish(ev({ ktimeNs: i }), '{}');
    assert.equal(early.length, Math.floor(i / 3), 'never from inside publish');
    r.deliverDue();
  }
  assert.deepEqual(early, [[0, 1, 2], [3, 4, 5]]);
  assert.deepEqual(turn, [], 'a subscriber without a batch size waits for the turn');
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(early, [[0, 1, 2], [3, 4, 5], [6]]);
  assert.deepEqual(turn, [[0, 1, 2, 3, 4, 5, 6]]);
  assert.deepEqual(r.stats().map((s) => [s.delivered, s.queued]), [[7, 0], [7, 0]]);
});

test('subscribers that leave are still counted: their queue at leaving as unsubscribed, totals per kind only grow', async () => {
  const r = new Router();
  const a = r.subscribe('sse:unix', {}, () => undefined, { maxQueue: 4 });
  const b = r.subscribe('sse:unix', {}, () => {
    throw new Error('client not reading');
  });
  r.subscribe('rules', { types: ['open'] }, () => undefined);
  for (let i = 0; i < 6; i++) r.publish(ev({ ktimeNs: i }), '{}'); // a: 4 queued, 2 over its bound
  await new Promise((res) => setImmediate(res)); // a delivers 4; b's delivery throws: 6 failed
  for (let i = 0; i < 3; i++) r.publish(ev({ ktimeNs: 10 + i }), '{}'); // queued, not yet delivered
  const live = r.totals();
  assert.deepEqual(live.sse, { live: 2, subscribed: 2, delivered: 4, dropped: { queueFull: 2, failed: 6, unsubscribed: 0 } });
  assert.deepEqual(live.rules, { live: 1, subscribed: 1, delivered: 0, dropped: { queueFull: 0, failed: 0, unsubscribed: 0 } });
  assert.deepEqual(r.stats().find((s) => s.id === b), { id: b, name: 'sse:unix', delivered: 0, dropped: 6, queueFull: 0, failed: 6, declined: 0, queued: 3 });
  r.unsubscribe(a);
  r.unsubscribe(b);
  r.unsubscribe(b); // twice: nothing more
  await new Promise((res) => setImmediate(res));
  const gone = r.totals();
  // What each had queued when it left is lost, and counted: 3 each.
  assert.deepEqual(gone.sse, { live: 0, subscribed: 2, delivered: 4, dropped: { queueFull: 2, failed: 6, unsubscribed: 6 } });
  assert.equal(r.stats().length, 1);
  // Every event offered to a subscriber is delivered or counted as dropped: 9 events, 2 subscribers.
  const d = gone.sse!.dropped;
  assert.equal(gone.sse!.delivered + d.queueFull + d.failed + d.unsubscribed, 2 * 9);
  // A new client of the same kind adds to the totals; nothing goes back down.
  r.subscribe('sse:10.0.0.1', {}, () => undefined);
  r.publish(ev({}), '{}');
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(r.totals().sse, { live: 1, subscribed: 3, delivered: 5, dropped: { queueFull: 2, failed: 6, unsubscribed: 6 } });
});

/** A sink that keeps what it gets (delivery is synchronous here). */
class MemorySink implements Sink {
  readonly name = 'memory';
  readonly got: OutputEvent[] = [];
  write(e: OutputEvent): void {
    this.got.push(e);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  stats(): SinkStats {
    return { received: this.got.length, sent: this.got.length, dropped: {}, queued: 0, retries: 0 };
  }
}

function exitRecord(pid: number, code: number): DataView {
  const b = Buffer.alloc(SIZEOF.exit_event);
  b.writeUInt16LE(VIGIL_OPCODE.EXIT, EVENT_HEADER.opcode.offset);
  b.writeUInt32LE(SIZEOF.exit_event, EVENT_HEADER.size.offset);
  b.writeUInt32LE(pid, EVENT_HEADER.pid.offset);
  b.writeUInt32LE(pid, EVENT_HEADER.tid.offset);
  b.writeBigUInt64LE(BigInt(pid) * 1_000_000_000n, EXIT_EVENT.start_ns.offset);
  b.writeUInt32LE(code << 8, EXIT_EVENT.exit_code.offset);
  b.writeUInt32LE(1 << 7, EXIT_EVENT.flags.offset); // GROUP_DEAD
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** A process cache that scrubs nothing and runs no timers. */
function bareCache(): ProcessCache {
  return new ProcessCache({ scrubber: { scrubArgv: (a) => ({ argv: a, scrubbed: 0 }), scrubEnv: () => ({ env: [], scrubbed: 0 }) }, timers: false });
}

/** A pipeline of no event types into `sinks`: for what it asks of its sinks (room, holding back). */
function sinksPipeline(sinks: Sink[], router = new Router()): Pipeline {
  return new Pipeline({ decoders: new Map(), outputs: new Map(), cache: bareCache(), enrich: { userName: () => undefined }, router, sinks, types: new Set(), reorderWindowMs: 0, holdForEnrichmentMs: 0 });
}

/** A sink that has room for `n` more lines. */
const roomy = (n: number): Sink => Object.assign(new MemorySink(), { room: () => n });

/** A pipeline of exit records into `sinks`, with its own process cache. */
function exitPipeline(sinks: Sink[], reorderWindowMs = 0): Pipeline {
  return new Pipeline({
    decoders: new Map<number, RecordDecoder>([[VIGIL_OPCODE.EXIT, decodeExit as RecordDecoder]]),
    outputs: new Map(processOutputs),
    cache: bareCache(),
    enrich: { userName: () => undefined },
    router: new Router(),
    sinks,
    types: new Set(['exit']),
    reorderWindowMs,
    holdForEnrichmentMs: 0,
  });
}

test('every record lands in exactly one pipeline counter', () => {
  const sink = new MemorySink();
  const p = exitPipeline([sink]);
  const good = exitRecord(100, 3);
  p.handleRecord(good, 0, SIZEOF.exit_event); // emitted
  p.handleRecord(good, 0, 10); // too short: decode error
  const unknown = Buffer.alloc(64);
  unknown.writeUInt16LE(60, 0);
  p.handleRecord(new DataView(unknown.buffer), 0, 64); // unknown opcode
  const c = p.counters();
  assert.equal(c.records, 3);
  assert.equal(c.emitted, 1);
  assert.equal(c.dropped.decodeError, 1);
  assert.equal(c.dropped.unknownOpcode, 1);
  assert.equal(c.records, c.emitted + c.internal + c.dropped.decodeError + c.dropped.unknownOpcode + c.dropped.filtered + c.buffered);
  assert.equal(sink.got[0]!.type, 'exit');
  assert.equal(sink.got[0]!.exitCode, 3);
  assert.equal(sink.got[0]!.process!.pid, 100);
});

test('events are counted per type across runs and switches of types, filtered ones not', () => {
  // The pipeline keeps the counter cell of the last type it counted: switching back and forth, long runs and
  // types seen once must all add up to what the sink got.
  const sink = new MemorySink();
  const cache = bareCache();
  const shaper = (() => ({ n: 1 })) as OutputShaper;
  const p = new Pipeline({
    decoders: new Map(),
    outputs: new Map([['a', shaper], ['b', shaper], ['c', shaper]]),
    cache,
    enrich: { userName: () => undefined },
    router: new Router(),
    sinks: [sink],
    types: new Set(['a', 'b', 'c']),
    reorderWindowMs: 0,
    holdForEnrichmentMs: 0,
  });
  const seq = 'aaab' + 'ab'.repeat(7) + 'c' + 'b'.repeat(20) + 'x' + 'aca';
  let k = 1e9;
  for (const type of seq) p.feed({ type, ktimeNs: k++, pid: 1, tid: 1, cgroupId: 0 } as Decoded);
  const want: Record<string, number> = {};
  for (const e of sink.got) want[e.type] = (want[e.type] ?? 0) + 1;
  assert.deepEqual(p.counters().byType, want);
  assert.deepEqual(want, { a: 12, b: 28, c: 2 });
  assert.equal(p.counters().dropped.filtered, 1);
});

test('a record whose processing throws is dropped and counted, on the ring path and from the window timer', async () => {
  const sink = new MemorySink();
  const cache = bareCache();
  const errors: string[] = [];
  const outputs = new Map(processOutputs);
  const exitShaper = outputs.get('exit')!;
  // A shaper with a bug for one process: the pipeline must survive it.
  const buggy = Object.assign((e: Parameters<typeof exitShaper>[0]) => {
    if (e.pid === 666) throw new TypeError('shaper bug');
    return exitShaper(e);
  }, {});
  outputs.set('exit', buggy);
  for (const windowMs of [0, 5]) {
    const p = new Pipeline({
      decoders: new Map<number, RecordDecoder>([[VIGIL_OPCODE.EXIT, decodeExit as RecordDecoder]]),
      outputs,
      cache,
      enrich: { userName: () => undefined },
      router: new Router(),
      sinks: [sink],
      types: new Set(['exit']),
      reorderWindowMs: windowMs,
      holdForEnrichmentMs: 0,
      onError: (err, type) => errors.push(`${type}: ${(err as Error).message}`),
    });
    sink.got.length = 0;
    p.handleRecord(exitRecord(666, 1), 0, SIZEOF.exit_event);
    p.handleRecord(exitRecord(101, 2), 0, SIZEOF.exit_event);
    // With a window, both wait for the window's timer, which runs the failing record outside any caller.
    const end = Date.now() + 2000;
    while (p.counters().buffered > 0 && Date.now() < end) await new Promise((res) => setTimeout(res, 2));
    const c = p.counters();
    assert.equal(c.dropped.failed, 1, `window ${windowMs}`);
    assert.equal(c.emitted, 1);
    assert.equal(c.records, c.emitted + c.internal + c.dropped.decodeError + c.dropped.unknownOpcode + c.dropped.filtered + c.dropped.failed + c.buffered);
    assert.deepEqual(sink.got.map((e) => e.process!.pid), [101]);
  }
  assert.deepEqual(errors, ['exit: shaper bug', 'exit: shaper bug']);
});

test('the sinks\' room is the least room of the sinks that say (what the ring reader may take)', () => {
  assert.equal(sinksPipeline([new MemorySink()]).sinkRoom(), Infinity, 'no sink says: no limit');
  assert.equal(sinksPipeline([roomy(5), new MemorySink(), roomy(3)]).sinkRoom(), 3);
  assert.equal(sinksPipeline([roomy(0), roomy(7)]).sinkRoom(), 0);
  // Events the pipeline holds go to the sinks before anything the reader takes next: they use room up.
  const p = exitPipeline([roomy(5), new MemorySink()], 60_000);
  p.handleRecord(exitRecord(101, 0), 0, SIZEOF.exit_event);
  p.handleRecord(exitRecord(102, 0), 0, SIZEOF.exit_event);
  assert.equal(p.counters().buffered, 2);
  assert.equal(p.sinkRoom(), 3, 'the reorder window\'s two events are subtracted');
  for (let pid = 103; pid < 110; pid++) p.handleRecord(exitRecord(pid, 0), 0, SIZEOF.exit_event);
  assert.equal(p.sinkRoom(), 0, 'never below none');
  p.stop();
});

test('waiting for the sinks\' room holds back a sink with room, a sink that does not say, or a stream; not the rules', () => {
  assert.equal(sinksPipeline([roomy(0)]).holdsBack(), false, 'the one sink is full: waiting delays nobody');
  assert.equal(sinksPipeline([roomy(0), roomy(0)]).holdsBack(), false);
  assert.equal(sinksPipeline([roomy(0), roomy(3)]).holdsBack(), true, 'the other sink could take records now');
  assert.equal(sinksPipeline([roomy(0), new MemorySink()]).holdsBack(), true, 'a sink that does not say is taken to have room');
  const router = new Router();
  router.subscribe('rules', { types: ['open'] }, () => {});
  const p = sinksPipeline([roomy(0)], router);
  assert.equal(p.holdsBack(), false, 'the rule engine sees every record however late; its alerts go to the full sink');
  const sse = router.subscribeLines('sse:unix', { types: ['open'] }, () => {});
  assert.equal(p.holdsBack(), true, 'a live stream waits');
  router.unsubscribe(sse);
  assert.equal(p.holdsBack(), false, 'and no longer once it left');
  // A sink's room counts less what the pipeline holds: room for 2 with 2 events in the reorder window is full.
  const w = exitPipeline([roomy(2)], 60_000);
  assert.equal(w.holdsBack(), true, 'room for 2 and nothing held: it could take records now');
  w.handleRecord(exitRecord(101, 0), 0, SIZEOF.exit_event);
  w.handleRecord(exitRecord(102, 0), 0, SIZEOF.exit_event);
  assert.equal(w.holdsBack(), false, 'its room is promised to the window\'s events: the one full sink, nobody else held back');
  w.stop();
});
