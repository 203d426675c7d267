// The pipeline's JSON serialisation (src/pipeline/json.ts, enrich.ts) against the reference it replaces:
// every line must be exactly JSON.stringify of the event, whatever the process, container, thread or fields,
// with or without the event object being built; and the formatting helpers must match V8's own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ContainerInfo } from '../../src/containers/resolver.ts';
import { Enricher, type EnrichContext } from '../../src/pipeline/enrich.ts';
import { fieldsJson, MembersSerializer, numberJson, stringJson, TimeParts } from '../../src/pipeline/json.ts';
import { processOutputs, syscallOutput } from '../../src/pipeline/outputs.ts';
import { Pipeline, type Decoded } from '../../src/pipeline/pipeline.ts';
import { Router } from '../../src/pipeline/router.ts';
import type { OutputEvent, Sink, SinkStats } from '../../src/pipeline/types.ts';
import { ProcessCache } from '../../src/process/cache.ts';
import type { SnapshotProcess } from '../../src/process/types.ts';

/** A deterministic pseudo-random sequence (xorshift), so failures reproduce. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

test('TimeParts are Date#toISOString and JSON.stringify of the ktime, within a second, across seconds, out of range', () => {
  const r = rng(7);
  const t = new TimeParts();
  const walls = [0, 0.4, 999.9, 1000, 59_999, 1.7e12, 1.7e12 + 0.999, 253402300799999, 253402300800000, 8.64e15, -1, -1000.5];
  for (let i = 0; i < 20_000; i++) walls.push(Math.floor(r() * 2 ** 42) + (i % 3 === 0 ? r() : 0));
  let w = 1.7e12;
  for (let i = 0; i < 5000; i++) walls.push((w += r() * 40)); // in time order, as events come
  const ks = [0, 1, 999_999_999, 1e9, 1e9 + 1, 1e9 - 0.5, 2 ** 32 + 5, 6.6e12, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 1e21, 1.5, -5, NaN, Infinity];
  let k = 6e12;
  for (let i = 0; i < 25_000; i++) ks.push(i % 2 ? Math.floor(r() * 2 ** 53) : (k += Math.floor(r() * 3e6)));
  for (let i = 0; i < Math.max(walls.length, ks.length); i++) {
    const ms = walls[i % walls.length]!;
    const kt = ks[i % ks.length]!;
    t.set(ms, kt);
    assert.equal(`${t.iso}${t.ms}Z`, new Date(ms).toISOString(), `wall ${ms}`);
    assert.equal(`${t.kHi}${t.k1}${t.k2}${t.k3}`, JSON.stringify(kt), `ktime ${kt}`);
  }
  assert.throws(() => t.set(NaN, 1), RangeError);
  assert.throws(() => t.set(8.64e15 + 1, 1), RangeError);
});

test('numberJson and stringJson write what JSON.stringify writes', () => {
  const r = rng(11);
  const nums = [0, -0, 1, -1, 999_999_999, 1e9, 1e9 + 1, 1e9 - 0.5, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 1e21, 1.5e300, 0.1, -7.25, NaN, Infinity, -Infinity];
  for (let i = 0; i < 20_000; i++) nums.push(Math.floor(r() * 2 ** 53), Math.floor(r() * 1e13), r() * 1e12);
  for (const n of nums) assert.equal(numberJson(n), JSON.stringify(n) ?? 'null', `number ${n}`);
  const strs = ['', 'open', 'a"b', 'back\\slash', 'tab\there', 'nl\n', '\u0000\u001f\u007f', 'é', '€', '😀', '\ud800', 'x\udc00y', 'O_RDONLY|O_CLOEXEC', '/etc/passwd'];
  for (let i = 0; i < 2000; i++) strs.push(String.fromCharCode(...Array.from({ length: 1 + Math.floor(r() * 12) }, () => Math.floor(r() * 0xffff))));
  for (const s of strs) assert.equal(stringJson(s), JSON.stringify(s), `string ${JSON.stringify(s)}`);
});

test('fieldsJson is the members of JSON.stringify(fields), ready to follow other members', () => {
  assert.equal(fieldsJson({}), '');
  assert.equal(fieldsJson({ a: undefined }), '');
  assert.equal(fieldsJson({ a: 1 }), ',"a":1');
  const f = { s: 'x"y', n: -3, u: undefined, b: false, nested: { k: undefined, l: [1, undefined, 'z'] }, when: { toJSON: () => 'then' }, nul: null };
  assert.equal(`{"type":"t"${fieldsJson(f)}}`, JSON.stringify({ type: 't', ...f }));
});

test('MembersSerializer writes the members JSON.stringify writes, per shape, skipping names and undefined', () => {
  const skip = ['type', 'pid'];
  const m = new MembersSerializer(skip, 8);
  const ref = (o: Record<string, unknown>) => {
    const kept: Record<string, unknown> = {};
    for (const k of Object.keys(o)) if (!skip.includes(k) && o[k] !== undefined) kept[k] = o[k];
    return fieldsJson(kept);
  };
  const r = rng(5);
  const values: unknown[] = [
    'plain', 'q"uote', 'back\\', 'nl\n', '\ud800', 'é😀', '', 0, -0, 1, -1, 2 ** 31, 2 ** 53 + 2, 1.25, NaN, Infinity, true, false, null, undefined,
    [1, undefined, 'x'], { a: undefined, b: [null] }, { toJSON: (k: string) => `key:${k}` }, { toJSON: () => undefined }, () => 1, Symbol('s'), new Date(0),
  ];
  const keySets = [['type', 'pid', 'a', 'b', 'c'], ['a', 'b', 'c', 'type'], ['x', 'y\"', 'a b', '0', '1'], ['pid', 'z'], ['only'], []];
  for (let i = 0; i < 5000; i++) {
    const keys = keySets[i % keySets.length]!;
    const o: Record<string, unknown> = {};
    for (const k of keys) o[k] = values[Math.floor(r() * values.length)];
    assert.equal(m.json(o), ref(o), `object ${i}: ${String(Object.keys(o))}`);
  }
  // More shapes than it compiles: the rest go through JSON.stringify, with the same result.
  for (let i = 0; i < 40; i++) {
    const o: Record<string, unknown> = { [`k${i}`]: i, s: 's', type: 'skipped', u: undefined };
    assert.equal(m.json(o), ref(o));
  }
  assert.throws(() => m.json({ big: 1n }), TypeError, 'bigint throws, as in JSON.stringify');
});

// ---- Enricher: the line is JSON.stringify(event) ------------------------------------------------------------

const creds = { uid: 1000, gid: 1000, euid: 0, egid: 1000, suid: 1000, sgid: 1000, fsuid: 1000, fsgid: 1000, capEffective: '0000000000000000', capPermitted: '0000000000000000', capInheritable: '0000000000000000', loginuid: 1000 };

function snap(pid: number, ppid: number, startNs: number, o: Partial<SnapshotProcess> = {}): SnapshotProcess {
  return {
    type: 'snapshot', pid, ppid, startNs, comm: `p${pid}`, exePath: `/usr/bin/p${pid}`, exeIno: pid, exeDev: 2049, exeMtimeNs: 1,
    argv: [`p${pid}`, '--flag="quoted"', 'back\\slash', 'é😀', 'ctl\u0001'], envRaw: ['HOME=/root', 'TOKEN=secret'], creds, ns: { cgroupId: 1, pidns: 4026531836, mntns: 4026531841, nspid: pid },
    tty: pid % 2 ? 'pts0' : '', unknown: [], kernelThread: false, ...o,
  };
}

function context(): { ctx: EnrichContext; pids: number[] } {
  const cache = new ProcessCache({ scrubber: { scrubArgv: (a) => ({ argv: a, scrubbed: 0 }), scrubEnv: () => ({ env: [], scrubbed: 0 }) }, timers: false });
  const pids: number[] = [];
  cache.apply(snap(1, 0, 1e9));
  for (let i = 0; i < 40; i++) {
    const pid = 100 + i;
    const parent = i < 5 ? 1 : 100 + (i % 5);
    cache.apply(snap(pid, parent, 2e9 + i * 1e7, i % 7 === 0 ? { creds: undefined, unknown: ['creds'] } : i % 5 === 0 ? { argv: undefined, exePath: undefined } : {}));
    pids.push(pid);
  }
  const container = (id: number): ContainerInfo | undefined => {
    if (id < 10) return undefined;
    return {
      id: `c${id}`.padEnd(64, '0'), runtime: 'containerd', name: `web-${id}`, image: 'registry.local/web:1', imageDigest: undefined,
      labels: id % 2 ? { app: 'web', 'io.kubernetes.pod.name': 'web-0' } : {}, pid: undefined, createdAt: undefined,
      pod: id % 2 ? { uid: 'uid-1', name: 'web-0', namespace: 'default', labels: { app: 'web' } } : undefined,
      namespace: 'k8s.io', podmanPod: undefined, enrichment: id % 3 ? 'done' : 'pending', enrichmentError: undefined,
      cgroupPath: `/kubepods/c${id}`, cgroupIds: [id], seenMs: 0, stoppedMs: undefined, existing: false,
    };
  };
  return { ctx: { cache, container, userName: (e) => (e.creds?.uid === 1000 ? 'alice' : undefined) }, pids };
}

test('the Enricher line is exactly JSON.stringify of the event, with and without the event object', () => {
  const { ctx, pids } = context();
  const withEvent = new Enricher(ctx);
  const lineOnly = new Enricher(ctx);
  const r = rng(3);
  const fieldSets: Record<string, unknown>[] = [
    {},
    { group: 'file', syscall: 'openat', nr: 257, ret: -2, errno: 'ENOENT', path: '/tmp/a"b\\c\n', flags: 0o2000000, flagNames: 'O_RDONLY|O_CLOEXEC', write: false },
    { group: 'network', family: 'AF_INET6', remoteAddress: '::1', remotePort: 443, nested: { a: [1, 'x'], b: null } },
    { child: { pid: 5, tid: 6, ppid: 1 }, thread: true },
    { status: 256, exitCode: 1, big: 2 ** 53 + 2, float: 0.5, when: new Date(0) },
    { unicode: 'é😀\ud800', empty: '' },
  ];
  for (let i = 0; i < 3000; i++) {
    const pid = r() < 0.05 ? 99_999 : pids[Math.floor(r() * pids.length)]!; // some unknown to the cache
    const tid = r() < 0.3 ? pid + 1 + Math.floor(r() * 3) : r() < 0.1 ? 0 : pid;
    const cgroupId = r() < 0.5 ? 1 : 10 + Math.floor(r() * 6);
    const ktimeNs = 3e9 + Math.floor(r() * 1e12);
    const fields = fieldSets[i % fieldSets.length]!;
    const type = ['open', 'exec', 'exit', 'fork', 'connect', 'we"ird'][i % 6]!;
    withEvent.build(type, ktimeNs, pid, tid, cgroupId, fields, true);
    lineOnly.build(type, ktimeNs, pid, tid, cgroupId, fields, false);
    const ev = withEvent.event!;
    assert.equal(withEvent.line, JSON.stringify(ev), `event ${i}`);
    assert.equal(lineOnly.line, withEvent.line, `line-only event ${i}`);
    assert.equal(lineOnly.event, undefined);
    assert.equal(ev.type, type);
    assert.equal(ev.process!.pid, pid);
    if (tid && tid !== pid && pid !== 99_999) assert.equal(ev.process!.tid, tid);
    assert.deepEqual(JSON.parse(withEvent.line), JSON.parse(JSON.stringify(ev)));
  }
});

test('shapers leave out undefined fields and the members enrichment writes', () => {
  const fork = new Map(processOutputs).get('fork')!;
  assert.deepEqual(fork({ type: 'fork', ktimeNs: 1, pid: 1, tid: 1, cgroupId: 1, childTgid: 2, childPid: 2, childPpid: 1, thread: false } as unknown as Decoded), { child: { pid: 2, tid: 2, ppid: 1 } });
  const out = syscallOutput({ type: 'open', ktimeNs: 1, pid: 1, tid: 1, cgroupId: 1, evFlags: 0, group: 'file', path: '/x', errno: undefined, time: 'bogus', process: 'bogus' } as unknown as Decoded)!;
  assert.deepEqual(out, { group: 'file', path: '/x' });
  assert.ok(!('errno' in out));
});

// ---- Pipeline: line-only sinks ---------------------------------------------------------------------------------

class LineSink implements Sink {
  readonly name = 'lines';
  readonly lines: string[] = [];
  writes = 0;
  write(): void {
    this.writes++;
  }
  writeLine(line: string): void {
    this.lines.push(line);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  stats(): SinkStats {
    return { received: this.lines.length, sent: this.lines.length, dropped: {}, queued: 0, retries: 0 };
  }
}

class EventSink implements Sink {
  readonly name = 'events';
  readonly got: { ev: OutputEvent; line: string }[] = [];
  write(ev: OutputEvent, line: string): void {
    this.got.push({ ev, line });
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  stats(): SinkStats {
    return { received: this.got.length, sent: this.got.length, dropped: {}, queued: 0, retries: 0 };
  }
}

function pipeline(ctx: EnrichContext, sinks: Sink[], router = new Router()): Pipeline {
  return new Pipeline({
    decoders: new Map(),
    outputs: new Map([['open', syscallOutput]]),
    cache: ctx.cache,
    enrich: { userName: ctx.userName },
    router,
    sinks,
    types: new Set(['open']),
    reorderWindowMs: 0,
    holdForEnrichmentMs: 0,
  });
}

test('a line-only sink gets the same lines as an event sink, and the event object only when someone reads it', async () => {
  const { ctx, pids } = context();
  const feed = (p: Pipeline) => {
    for (let i = 0; i < 200; i++) {
      p.feed({ type: 'open', ktimeNs: 5e9 + i * 1000, pid: pids[i % pids.length]!, tid: pids[i % pids.length]!, cgroupId: 1, evFlags: 0, group: 'file', path: `/f/${i}`, errno: undefined } as unknown as Decoded);
    }
  };
  const alone = new LineSink();
  feed(pipeline(ctx, [alone]));
  assert.equal(alone.lines.length, 200);
  assert.equal(alone.writes, 0, 'write() is not called on a sink that has writeLine');

  const lines = new LineSink();
  const events = new EventSink();
  feed(pipeline(ctx, [lines, events]));
  assert.deepEqual(lines.lines, alone.lines);
  assert.deepEqual(events.got.map((g) => g.line), alone.lines);
  for (const g of events.got) assert.equal(g.line, JSON.stringify(g.ev));

  // A subscriber needs the event too, even when every sink takes lines only.
  const router = new Router();
  const seen: OutputEvent[] = [];
  router.subscribe('test', {}, (batch) => batch.forEach((b) => seen.push(b.ev)));
  const third = new LineSink();
  feed(pipeline(ctx, [third], router));
  await new Promise((r) => setImmediate(r));
  assert.equal(seen.length, 200);
  assert.deepEqual(third.lines, alone.lines);
  assert.equal(seen[7]!.path, '/f/7');
});
