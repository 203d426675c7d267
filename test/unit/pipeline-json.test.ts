// The pipeline's JSON serialisation (src/pipeline/json.ts, enrich.ts) against the reference it replaces:
// every line must be exactly JSON.stringify of the event, whatever the process, container, thread or fields,
// with or without the event object being built; and the formatting helpers must match V8's own.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ContainerResolver, type ContainerInfo } from '../../src/containers/resolver.ts';
import type { ExecEvent, ExitEvent, ForkEvent } from '../../src/events/types.ts';
import { enrich, Enricher, type EnrichContext } from '../../src/pipeline/enrich.ts';
import { fieldsJson, fixedMembers, numberJson, stringJson, TimeParts } from '../../src/pipeline/json.ts';
import { ByteLine, fixedMembersBytes, LineHead, TimeBytes } from '../../src/pipeline/json-bytes.ts';
import { processOutputs, syscallOutput } from '../../src/pipeline/outputs.ts';
import { Pipeline, type Decoded } from '../../src/pipeline/pipeline.ts';
import { Router } from '../../src/pipeline/router.ts';
import type { OutputEvent, Sink, SinkStats } from '../../src/pipeline/types.ts';
import { ProcessCache } from '../../src/process/cache.ts';
import { HostFiles } from '../../src/process/host-files.ts';
import { toJSON, type ProcessNode } from '../../src/process/dump.ts';
import { kernelDev } from '../../src/process/procfs.ts';
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
  const tb = new TimeBytes();
  // Line heads of several types, used in runs and alternately, each keeping the second it was made for.
  const types = ['exec', 'open', 'tcp_state', 'wéird\u2028"type"'];
  const typeOf = new Map(types.map((ty) => [new LineHead(JSON.stringify(ty)), ty]));
  const heads = [...typeOf.keys()].flatMap((h, i) => Array<LineHead>(1 + 3 * i).fill(h));
  const line = new ByteLine(4);
  let bytesWritten = 0;
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
    // TimeBytes: the same, as bytes, or nothing where it leaves the time to TimeParts.
    line.reset();
    line.text('x');
    const head = heads[i % heads.length]!;
    if (tb.write(line, head, ms, kt)) {
      bytesWritten++;
      assert.equal(Buffer.from(line.buf.subarray(1, line.pos)).toString(), `{"type":${JSON.stringify(typeOf.get(head))},"time":"${t.iso}${t.ms}Z","ktimeNs":${JSON.stringify(kt)}`, `wall ${ms} ktime ${kt}`);
    } else {
      assert.equal(line.pos, 1, `wall ${ms} ktime ${kt}: nothing written`);
      assert.ok(!(ms >= 0 && ms < 253402300800000 && kt >= 1e9 && Number.isSafeInteger(kt)), `wall ${ms} ktime ${kt} is in range`);
    }
  }
  assert.ok(bytesWritten > 10_000, `${bytesWritten} written as bytes`);
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

test('fixedMembers writes the members JSON.stringify writes, skipping names, undefined and (with omitFalse) false', () => {
  const skip = ['type', 'pid'];
  const r = rng(5);
  const values: unknown[] = [
    'plain', 'q"uote', 'back\\', 'nl\n', '\ud800', 'é😀', '', 0, -0, 1, -1, 2 ** 31, 2 ** 53 + 2, 1.25, NaN, Infinity, true, false, null, undefined,
    [1, undefined, 'x'], { a: undefined, b: [null] }, { toJSON: (k: string) => `key:${k}` }, { toJSON: () => undefined }, () => 1, Symbol('s'), new Date(0),
  ];
  const keySets = [['type', 'pid', 'a', 'b', 'c'], ['a', 'b', 'c', 'type'], ['x', 'y\"', 'a b', '0', '1'], ['pid', 'z'], ['only'], []];
  const build = (keys: string[]) => {
    const o: Record<string, unknown> = {};
    for (const k of keys) o[k] = values[Math.floor(r() * values.length)];
    return o;
  };
  for (const omitFalse of [false, true]) {
    const ref = (o: Record<string, unknown>) => {
      const kept: Record<string, unknown> = {};
      for (const k of Object.keys(o)) if (!skip.includes(k) && o[k] !== undefined && !(omitFalse && o[k] === false)) kept[k] = o[k];
      return fieldsJson(kept);
    };
    // Compiled from the objects' own key order ('0' and '1' come first, as in any object).
    const fns = keySets.map((keys) => fixedMembers(Object.keys(build(keys)), { skip, omitFalse }));
    for (let i = 0; i < 5000; i++) {
      const o = build(keySets[i % keySets.length]!);
      assert.equal(fns[i % keySets.length]!(o), ref(o), `object ${i}: ${String(Object.keys(o))}`);
    }
  }
  assert.throws(() => fixedMembers(['big'], { skip })({ big: 1n }), TypeError, 'bigint throws, as in JSON.stringify');
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
  const sharedArgv = Object.freeze(['shared', '--quote="x"', 'é']) as string[];
  const cache = new ProcessCache({ scrubber: { scrubArgv: (a) => ({ argv: a, scrubbed: 0 }), scrubEnv: () => ({ env: [], scrubbed: 0 }) }, timers: false });
  const pids: number[] = [];
  cache.apply(snap(1, 0, 1e9));
  for (let i = 0; i < 40; i++) {
    const pid = 100 + i;
    const parent = i < 5 ? 1 : 100 + (i % 5);
    cache.apply(
      snap(
        pid,
        parent,
        2e9 + i * 1e7,
        i % 7 === 0
          ? { creds: undefined, unknown: ['creds'] }
          : i % 5 === 0
            ? { argv: undefined, exePath: undefined }
            : i % 3 === 0
              ? { creds: { ...creds, euid: 1000, loginuid: undefined }, comm: 'we"ird é', argv: sharedArgv } // no euid or loginuid member; a shared frozen argv
              : {},
      ),
    );
    pids.push(pid);
  }
  // Images with a truncated argv (exec events say so).
  for (const pid of [101, 102]) {
    cache.apply({
      type: 'exec', ktimeNs: 2.9e9, pid, tid: pid, cgroupId: 1, comm: 'trunc', startNs: 2e9 + (pid - 100) * 1e7, ppid: 1, parentStartNs: 1e9, oldPid: pid, creds,
      ns: { cgroupId: 1, pidns: 1, mntns: 1, nspid: pid }, exe: { path: '/bin/trunc', ino: 1, dev: 1, mtimeNs: 0 }, filename: '/bin/trunc', argv: ['trunc', 'a'.repeat(50)], argc: 900,
      envRaw: [], tty: 'pts1', flags: 0, argvTruncated: true, envTruncated: false, pathTruncated: false, subreaper: false,
    } as ExecEvent);
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
  router.subscribe('test', {}, (batch) => seen.push(...batch));
  const third = new LineSink();
  feed(pipeline(ctx, [third], router));
  await new Promise((r) => setImmediate(r));
  assert.equal(seen.length, 200);
  assert.deepEqual(third.lines, alone.lines);
  assert.equal(seen[7]!.path, '/f/7');
});

// ---- Lines as bytes (json-bytes.ts): the UTF-8 of the string line, byte for byte -----------------------------

const utf8 = (s: string) => Buffer.from(s, 'utf8');
const written = (w: ByteLine) => Buffer.from(w.buf.subarray(0, w.pos));

test('ByteLine writes strings and numbers as the UTF-8 of JSON.stringify, growing as it goes', () => {
  const r = rng(11);
  const w = new ByteLine(1); // grows from one byte
  let expect = '';
  const strings = ['', 'plain', '/dev/null', 'q"uote', 'back\\slash', 'nl\n tab\t', '\u0000\u001f\u007f', 'é', '😀', '\ud800', 'a\udc00b', 'x'.repeat(300), `${'y'.repeat(40)}é`];
  const numbers = [0, -0, 1, 9, 10, 99, 100, 999, 1000, -1, -9, -10, -100, -999, -1000, 12345, -100000, 2 ** 31 - 1, -(2 ** 31) + 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32, 1e9, 2e9, 1e9 + 1, 5000001000, 1458260160909, 1e15 + 7, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 4e9 + 0.5, 1.5, -0.25, 1e21, 1e-7, NaN, Infinity, -Infinity];
  for (let i = 0; i < 4000; i++) {
    const k = r();
    if (k < 0.45) {
      const s = r() < 0.5 ? strings[Math.floor(r() * strings.length)]! : String.fromCharCode(...Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() < 0.9 ? 32 + r() * 95 : r() * 0x10000)));
      w.string(s);
      expect += JSON.stringify(s);
    } else if (k < 0.9) {
      const n = r() < 0.5 ? numbers[Math.floor(r() * numbers.length)]! : Math.floor((r() - 0.3) * 10 ** Math.floor(r() * 16));
      w.number(n);
      expect += JSON.stringify(n);
    } else {
      const t = r() < 0.5 ? ',"k":' : 'é{"x":1}';
      w.text(t);
      expect += t;
    }
  }
  assert.deepEqual(written(w), utf8(expect));
  w.reset();
  assert.equal(w.pos, 0);
});

test('fixedMembersBytes writes the bytes of fixedMembers, with and without false members', () => {
  const keys = ['type', 'a', 'b', 'flag', 'c', 'd'];
  const values: unknown[] = ['plain', 'q"uote', 'é😀\ud800', '', 0, -3, 2 ** 53 + 2, 0.5, NaN, true, false, null, undefined, [1, undefined, 'x'], [], ['argv0', 'q"é\n', '😀'], ['a', 1], ['a', , 'b'], { toJSON: () => 'j' }, () => 1];
  const r = rng(13);
  for (const omitFalse of [false, true]) {
    const str = fixedMembers(keys, { skip: ['type'], omitFalse });
    const bytes = fixedMembersBytes(keys, { skip: ['type'], omitFalse });
    const w = new ByteLine(8);
    for (let i = 0; i < 3000; i++) {
      const o: Record<string, unknown> = {};
      for (const k of keys) o[k] = values[Math.floor(r() * values.length)];
      w.reset();
      bytes(o, w);
      const s = str(o);
      assert.deepEqual(written(w), utf8(s), `object ${i}`);
      if (omitFalse) assert.ok(!s.includes(':false'));
    }
  }
});

test("the process shapers' bytes are the members of JSON.stringify of their fields, whatever the event holds", () => {
  const shapers = new Map(processOutputs);
  const r = rng(17);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const values: unknown[] = ['/usr/bin/cat', 'q"uote', 'é😀\ud800', '', 0, 7, -1, 2 ** 53 + 2, 0.5, NaN, undefined, null, true];
  const envs: (readonly string[])[] = [[], Object.freeze(['PATH=/bin', 'HOME', '_']), ['A=é', 'B="q"', 'C\n'], Object.freeze(['X=1'])];
  const w = new ByteLine(8);
  const check = (type: string, ev: Record<string, unknown>, i: number) => {
    const shaper = shapers.get(type)!;
    w.reset();
    shaper.bytes!(ev as unknown as Decoded, w);
    assert.deepEqual(written(w), utf8(fieldsJson(shaper(ev as unknown as Decoded)!)), `${type} ${i}: ${JSON.stringify(ev)}`);
  };
  for (let i = 0; i < 3000; i++) {
    const base = { ktimeNs: 1, pid: 10, tid: 10, cgroupId: 1 };
    check('exec', { ...base, type: 'exec', filename: pick(values), argc: pick(values), oldPid: r() < 0.5 ? 10 : pick(values), envRaw: pick(envs), argvTruncated: r() < 0.3, envTruncated: r() < 0.3, pathTruncated: r() < 0.3 }, i);
    check('exit', { ...base, type: 'exit', status: pick(values), exitCode: pick(values), signal: pick(values), coreDumped: r() < 0.3 }, i);
    const num = () => (r() < 0.9 ? Math.floor(r() * 1e6) : pick(values));
    check('fork', { ...base, type: 'fork', childTgid: num(), childPid: num(), childPpid: num(), thread: r() < 0.5 }, i);
  }
  // An environment list serialised once is not served stale for a list that can still change.
  const env = ['A=1'];
  const exec = (e: string[]) => ({ type: 'exec', ktimeNs: 1, pid: 10, tid: 10, cgroupId: 1, filename: 'f', argc: 1, oldPid: 10, envRaw: e });
  check('exec', exec(env), -1);
  env.push('B=2');
  check('exec', exec(env), -2);
});

test("an Enricher keeps the last cgroup's container only while the resolver's answer cannot have changed", async (t) => {
  const C = 'c'.repeat(64);
  let answer: (() => void) | undefined;
  const client = {
    runtime: 'docker' as const,
    endpoint: '/fake/docker.sock',
    inspect: (id: string) => new Promise<{ id: string; name: string; image: string; labels: Record<string, string>; runtime: 'docker' }>((res) => (answer = () => res({ id, name: 'web', image: 'img:1', labels: {}, runtime: 'docker' }))),
    list: async () => [],
    close() {},
  };
  const layout = { layout: 'hybrid' as const, hierarchies: [], primary: { mount: '/fake', version: 2 as const, controllers: [] }, v1SubsysId: 0xffffffff, hierarchyId: 0 };
  const resolver = new ContainerResolver({ layout, clients: [client], walk: () => [], expiryMs: 1 });
  t.after(() => resolver.stop());
  resolver.start();
  const cache = new ProcessCache({ scrubber: { scrubArgv: (a) => ({ argv: a, scrubbed: 0 }), scrubEnv: () => ({ env: [], scrubbed: 0 }) }, timers: false });
  cache.apply(snap(1, 0, 1e9));
  cache.apply(snap(100, 1, 2e9));
  const ctx: EnrichContext = { cache, container: (id) => resolver.byCgroupId(id), containerGeneration: () => resolver.generation, userName: () => undefined };
  const en = new Enricher(ctx);
  const w = new ByteLine(64);
  let k = 3e9;
  const line = (cgroupId: number) => {
    w.reset();
    en.writeLine(w, 'open', (k += 1000), 100, 100, cgroupId, () => {}, undefined);
    w.text('');
    return JSON.parse(Buffer.from(w.buf.subarray(w.start, w.pos)).toString()) as { container?: { id: string; name?: string; enrichment: string } };
  };
  const cg = (op: 'mkdir' | 'rmdir', id: number) => resolver.handleCgroupEvent({ type: 'cgroup', ktimeNs: 0, pid: 1, tid: 1, cgroupId: 1, op, id, hierarchyId: 0, level: 2, taskPid: 0, path: `/docker/${C}`, pathTruncated: false });

  // A run of events from one cgroup asks the resolver once.
  const asked = resolver.stats().lookups;
  for (let i = 0; i < 5; i++) assert.equal(line(200).container, undefined, 'not a container (yet)');
  assert.equal(resolver.stats().lookups - asked, 1);
  // The cgroup turns out to be a container's: the very next event of the run says so.
  cg('mkdir', 200);
  assert.deepEqual(line(200).container, { id: C, enrichment: 'pending', runtime: 'docker' });
  // Enrichment changes the container in place: the next event has its name, without a lookup.
  answer!();
  for (let i = 0; i < 100 && resolver.byCgroupId(200)?.enrichment !== 'done'; i++) await new Promise((r) => setTimeout(r, 5));
  const before = resolver.stats().lookups;
  assert.deepEqual(line(200).container, { id: C, name: 'web', image: 'img:1', runtime: 'docker', enrichment: 'done' });
  assert.equal(resolver.stats().lookups, before, 'the same answer, kept');
  // Another cgroup in between, then back: each asked again.
  assert.equal(line(5).container, undefined);
  assert.equal(line(200).container?.id, C);
  // Removed and expired: the run's next event has no container.
  cg('rmdir', 200);
  assert.equal(line(200).container?.id, C, 'still resolvable during its expiry delay');
  for (let i = 0; i < 100 && resolver.byCgroupId(200) !== undefined; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(line(200).container, undefined);
  // Without a generation, every event asks.
  const plain = new Enricher({ ...ctx, containerGeneration: undefined });
  const n0 = resolver.stats().lookups;
  for (let i = 0; i < 3; i++) {
    w.reset();
    plain.writeLine(w, 'open', (k += 1000), 100, 100, 200, () => {}, undefined);
  }
  assert.equal(resolver.stats().lookups - n0, 3);
});

test('an Enricher that remembers the last process gives the lines a fresh one gives, whatever the cache does in between', () => {
  let now = 0;
  const cache = new ProcessCache({ scrubber: { scrubArgv: (a) => ({ argv: a, scrubbed: 0 }), scrubEnv: () => ({ env: [], scrubbed: 0 }) }, timers: false, now: () => now, exitedGraceMs: 50 });
  const ctx: EnrichContext = { cache, container: () => undefined, userName: (e) => (e.creds?.uid === 1000 ? 'alice' : undefined) };
  cache.apply(snap(1, 0, 1e9));
  const starts = new Map<number, number>(); // pid -> start of its newest instance
  for (const pid of [100, 101, 102, 103]) {
    cache.apply(snap(pid, 1, 2e9 + pid));
    starts.set(pid, 2e9 + pid);
  }
  const r = rng(23);
  const kept = new Enricher(ctx);
  const w = new ByteLine(64);
  const fresh = new ByteLine(64);
  let t = 3e9;
  let pid = 100;
  let lines = 0;
  for (let i = 0; i < 6000; i++) {
    t += Math.floor(r() * 1e6);
    const k = r();
    const p = 100 + Math.floor(r() * 4);
    const base = { ktimeNs: t, pid: p, tid: p, cgroupId: 1, comm: 'x' };
    if (k < 0.04) {
      // A new image for the pid (exec), with other credentials now and then.
      const uid = r() < 0.5 ? 0 : 1000;
      const c = { ...creds, uid, euid: uid };
      cache.apply({
        ...base, type: 'exec', startNs: starts.get(p)!, ppid: 1, parentStartNs: 1e9, oldPid: p, creds: c, ns: { cgroupId: 1, pidns: 1, mntns: 1, nspid: p },
        exe: { path: `/bin/t${i}`, ino: i, dev: 1, mtimeNs: 0 }, filename: `/bin/t${i}`, argv: [`t${i}`], argc: 1, envRaw: [], comm: `t${i}`, tty: '', flags: 0,
        argvTruncated: false, envTruncated: false, pathTruncated: false, subreaper: false,
      } as ExecEvent);
    } else if (k < 0.06) {
      // The pid exits and comes back as a new process (pid reuse): events stamped before the new start are the old one's.
      cache.apply({ ...base, type: 'exit', startNs: starts.get(p)!, ppid: 1, status: 0, exitCode: 0, signal: undefined, coreDumped: false, groupDead: true, thread: false } as ExitEvent);
      cache.apply(snap(p, 1, t + 1));
      starts.set(p, t + 1);
    } else if (k < 0.07) {
      now += 100; // past the exited processes' grace: swept from the cache
      cache.sweep();
    } else {
      // An event of the process that sent the last one (mostly), or of another; now and then stamped a little earlier.
      if (r() < 0.3) pid = p;
      const kt = r() < 0.1 ? t - Math.floor(r() * 3e6) : t;
      const tid = r() < 0.2 ? pid + 1000 : pid;
      w.reset();
      kept.writeLine(w, 'open', kt, pid, tid, 1, () => {}, undefined);
      fresh.reset();
      new Enricher(ctx).writeLine(fresh, 'open', kt, pid, tid, 1, () => {}, undefined);
      assert.deepEqual(written(w), written(fresh), `event ${i}: pid ${pid} at ${kt}`);
      kept.buildLine('open', kt, pid, tid, 1, '');
      assert.deepEqual(utf8(kept.line), written(fresh), `event ${i}: string line`);
      lines++;
    }
  }
  assert.ok(lines > 5000);
});

test('Enricher.writeLine writes the bytes of the Enricher line', () => {
  const { ctx, pids } = context();
  const en = new Enricher(ctx);
  const w = new ByteLine(16);
  const r = rng(17);
  const ev = (i: number): Decoded =>
    ({
      type: i % 11 ? 'open' : 'we"ird', group: 'file', ktimeNs: i % 13 ? 3e9 + Math.floor(r() * 1e12) : Math.floor(r() * 1e9), pid: 0, tid: 0, cgroupId: 1, syscall: 'openat', nr: 257, ret: i % 5 ? 3 : -2, errno: i % 5 ? undefined : 'ENOENT',
      evFlags: 0, path: ['/dev/null', '/tmp/a"b\n', '/home/é😀', '\ud800x'][i % 4], path2: undefined, resolvedPath: i % 3 ? undefined : '/abs', resolvedPath2: undefined,
      resolvedFrom: undefined, dfd: -100, dfd2: undefined, flags: 0o2000101, flagNames: 'O_WRONLY|O_CREAT|O_CLOEXEC', mode: 0o644, modeOctal: '0644', uid: undefined, gid: undefined,
      resolve: undefined, write: i % 2 === 0, sensitive: false, pathTruncated: false, pathReadAtExit: i % 7 === 0, pathUnreadable: false, resolvedTruncated: false,
    }) as unknown as Decoded;
  for (let i = 0; i < 2000; i++) {
    const e = ev(i);
    e.pid = r() < 0.05 ? 99_999 : pids[Math.floor(r() * pids.length)]!;
    e.tid = r() < 0.3 ? e.pid + 1 : e.pid;
    e.cgroupId = r() < 0.5 ? 1 : 10 + Math.floor(r() * 6);
    en.build(e.type, e.ktimeNs, e.pid, e.tid, e.cgroupId, syscallOutput(e)!, true);
    const line = en.line;
    assert.equal(line, JSON.stringify(en.event));
    w.reset();
    en.writeLine(w, e.type, e.ktimeNs, e.pid, e.tid, e.cgroupId, syscallOutput.bytes!, e);
    assert.deepEqual(written(w), utf8(line), `event ${i}`);
  }
});

class BytesSink extends LineSink {
  override readonly name = 'lines' as const;
  readonly chunks: Buffer[] = [];
  writeBytes(buf: Uint8Array, start: number, end: number): void {
    this.chunks.push(Buffer.from(buf.subarray(start, end))); // a copy: the buffer is the pipeline's to reuse
  }
}

test('sinks that take bytes get the bytes of the lines line sinks get; lines are strings as soon as one sink needs them', () => {
  const { ctx, pids } = context();
  const feed = (p: Pipeline) => {
    for (let i = 0; i < 300; i++) {
      const pid = pids[i % pids.length]!;
      p.feed({ type: 'open', ktimeNs: 5e9 + i * 1000, pid, tid: pid, cgroupId: 10 + (i % 4), evFlags: 0, group: 'file', path: `/f/${i}é`, errno: undefined, write: i % 2 === 0 } as unknown as Decoded);
    }
  };
  const lines = new LineSink();
  feed(pipeline(ctx, [lines]));
  const a = new BytesSink();
  const b = new BytesSink();
  feed(pipeline(ctx, [a, b]));
  assert.equal(a.lines.length, 0, 'bytes only: no string line');
  assert.equal(a.chunks.length, lines.lines.length);
  a.chunks.forEach((c, i) => assert.equal(c.toString('utf8'), lines.lines[i], `line ${i}`));
  b.chunks.forEach((c, i) => assert.ok(c.equals(a.chunks[i]!), `line ${i} of the second sink`));
  // With a sink that takes strings only, every sink gets the string line.
  const c = new BytesSink();
  const d = new LineSink();
  feed(pipeline(ctx, [c, d]));
  assert.equal(c.chunks.length, 0);
  assert.ok(c.lines.every((l, i) => l === lines.lines[i]) && c.lines.length === lines.lines.length);
  assert.ok(d.lines.every((l, i) => l === lines.lines[i]) && d.lines.length === lines.lines.length);
});

test("a process's parent and ancestry parts are its creation parent's, one level up, whether or not the parent's own parts were made first", () => {
  // Children's parts reuse their parent's memo when it is current; a parent that exec'd or changed creds
  // since has a stale one. Either way the line must say what the cache's lineage says now.
  const cache = new ProcessCache({ scrubber: { scrubArgv: (a) => ({ argv: a, scrubbed: 0 }), scrubEnv: () => ({ env: [], scrubbed: 0 }) }, timers: false });
  const ctx: EnrichContext = { cache, container: () => undefined, userName: () => undefined, maxAncestors: 4 };
  cache.apply(snap(1, 0, 1e9));
  const live: { pid: number; start: number }[] = [{ pid: 1, start: 1e9 }];
  const r = rng(41);
  let t = 2e9;
  let nextPid = 100;
  const en = new Enricher(ctx);
  let checked = 0;
  for (let i = 0; i < 3000; i++) {
    t += 1e6;
    const k = r();
    const pick = live[Math.floor(r() * live.length)]!;
    if (k < 0.25 && live.length < 200) {
      const pid = nextPid++;
      cache.apply(snap(pid, pick.pid, t, { comm: `c${pid}` }));
      live.push({ pid, start: t });
    } else if (k < 0.35) {
      cache.apply({
        type: 'exec', ktimeNs: t, pid: pick.pid, tid: pick.pid, cgroupId: 1, comm: `x${i}`, startNs: pick.start, ppid: 0, parentStartNs: 0, oldPid: pick.pid, creds,
        ns: { cgroupId: 1, pidns: 1, mntns: 1, nspid: pick.pid }, exe: { path: `/bin/x${i}`, ino: i, dev: 1, mtimeNs: 0 }, filename: `/bin/x${i}`, argv: [`x${i}`, String(i)], argc: 2,
        envRaw: [], tty: '', flags: 0, argvTruncated: false, envTruncated: false, pathTruncated: false, subreaper: false,
      } as ExecEvent);
    } else {
      en.buildLine('open', t, pick.pid, pick.pid, 1, '');
      const line = JSON.parse(en.line) as OutputEvent;
      const anc = cache.ancestors(cache.at(pick.pid, t)!.key, { max: 4 });
      const p = anc[0];
      assert.deepEqual(line.ancestors, anc.length ? anc.map((a) => a.pid) : undefined, `event ${i}: ancestors of ${pick.pid}`);
      assert.deepEqual(line.parent, p ? JSON.parse(JSON.stringify({ pid: p.pid, comm: p.image.comm, exe: p.image.exePath, argv: p.image.argv, execId: p.image.execId })) : undefined, `event ${i}: parent of ${pick.pid}`);
      checked++;
    }
  }
  assert.ok(checked > 1500);
});

test("an exited process's parts go once its exit event is out; later lines of it and of its children say what they said with them", () => {
  // Parent 100 with children 105 and 110 (context(): 100 + i % 5). 105 writes before 100 exits, 110 only
  // after: its parts come from the cache's lineage, not from its parent's (released) memo.
  for (const sinks of [() => [new BytesSink()], () => [new LineSink()]]) {
    const { ctx } = context();
    const [sink] = sinks();
    const p = new Pipeline({
      decoders: new Map(), outputs: new Map([['open', syscallOutput], ...processOutputs]), cache: ctx.cache, enrich: { userName: ctx.userName }, router: new Router(),
      sinks: [sink!], types: new Set(['open', 'exit']), reorderWindowMs: 0, holdForEnrichmentMs: 0,
    });
    let t = 5e9;
    const open = (pid: number) => p.feed({ type: 'open', ktimeNs: (t += 1000), pid, tid: pid, cgroupId: 1, evFlags: 0, group: 'file', path: '/f', errno: undefined } as unknown as Decoded);
    const lines = () => (sink instanceof BytesSink ? sink.chunks.map((c) => c.toString('utf8')) : sink!.lines);
    const parts = (line: string) => {
      const { type: _t, time: _ti, ktimeNs: _k, ...rest } = JSON.parse(line) as Record<string, unknown>;
      return rest;
    };
    open(100);
    open(105);
    const before = parts(lines().at(-2)!);
    const entry = ctx.cache.byPid(100)!;
    assert.ok(entry.output, 'parts made by its first line');
    p.feed({ type: 'exit', ktimeNs: (t += 1000), pid: 100, tid: 100, cgroupId: 1, startNs: entry.startNs, ppid: 1, status: 0, exitCode: 0, signal: undefined, coreDumped: false, groupDead: true, thread: false, comm: entry.image.comm } as ExitEvent as unknown as Decoded);
    const exit = JSON.parse(lines().at(-1)!) as OutputEvent;
    assert.equal(exit.type, 'exit');
    assert.equal((exit.process as { pid: number }).pid, 100, 'the exit line has its process part');
    assert.equal(ctx.cache.byPid(100)!.output, undefined, 'released with the exit out');
    open(100); // late: made again, the same
    assert.deepEqual(parts(lines().at(-1)!), before);
    open(110);
    const child = JSON.parse(lines().at(-1)!) as OutputEvent;
    const anc = ctx.cache.ancestors(ctx.cache.byPid(110)!.key, { max: 16 });
    assert.deepEqual(child.ancestors, anc.map((a) => a.pid));
    assert.deepEqual(child.parent, { pid: 100, comm: entry.image.comm, exe: entry.image.exePath, argv: entry.image.argv, execId: entry.image.execId });
  }
});

test("exited processes' line bytes are reused by later processes, and every line stays its own", () => {
  // Processes of argv sizes across the pool's classes come and go; some live on. Lines written as bytes (from
  // pooled arrays) must be the string lines, line by line, whatever array a process's parts landed in.
  const run = (sink: LineSink) => {
    const { ctx } = context();
    const p = new Pipeline({
      decoders: new Map(), outputs: new Map([['open', syscallOutput], ...processOutputs]), cache: ctx.cache, enrich: { userName: ctx.userName }, router: new Router(),
      sinks: [sink], types: new Set(['open', 'exit']), reorderWindowMs: 0, holdForEnrichmentMs: 0,
    });
    const r = rng(11);
    let t = 5e9;
    const open = (pid: number) => p.feed({ type: 'open', ktimeNs: (t += 1000), pid, tid: pid, cgroupId: 1, evFlags: 0, group: 'file', path: `/f${pid}`, errno: undefined } as unknown as Decoded);
    const live: { pid: number; startNs: number }[] = [];
    for (let i = 0; i < 400; i++) {
      const pid = 1000 + i;
      const startNs = (t += 1000);
      const argv = ['tool', 'x'.repeat(Math.floor(r() * 3000)), `#${i}`];
      p.feed({
        type: 'exec', ktimeNs: startNs, pid, tid: pid, cgroupId: 1, comm: `t${i}`, startNs, ppid: 1, parentStartNs: 1e9, oldPid: pid, creds,
        ns: { cgroupId: 1, pidns: 1, mntns: 1, nspid: pid }, exe: { path: '/bin/tool', ino: 1, dev: 1, mtimeNs: 0 }, filename: '/bin/tool', argv, argc: 3,
        envRaw: [], tty: '', flags: 0, argvTruncated: false, envTruncated: false, pathTruncated: false, subreaper: false,
      } as ExecEvent as unknown as Decoded);
      open(pid);
      live.push({ pid, startNs });
      // Now and then, one of the live processes exits (its bytes go back) or writes again.
      while (live.length > 3 && r() < 0.6) {
        const [q] = live.splice(Math.floor(r() * live.length), 1);
        open(q!.pid);
        p.feed({ type: 'exit', ktimeNs: (t += 1000), pid: q!.pid, tid: q!.pid, cgroupId: 1, startNs: q!.startNs, ppid: 1, status: 0, exitCode: 0, signal: undefined, coreDumped: false, groupDead: true, thread: false, comm: 'x' } as ExitEvent as unknown as Decoded);
        if (r() < 0.2) open(q!.pid); // late, after its parts went
      }
      if (live.length) open(live[Math.floor(r() * live.length)]!.pid);
    }
    for (const q of live) open(q.pid);
  };
  const strings = new LineSink();
  run(strings);
  const bytes = new BytesSink();
  run(bytes);
  assert.equal(bytes.lines.length, 0, 'bytes only');
  assert.equal(bytes.chunks.length, strings.lines.length);
  assert.ok(strings.lines.length > 1500);
  bytes.chunks.forEach((c, i) => assert.equal(c.toString('utf8'), strings.lines[i], `line ${i}`));
});

test('hostExe marks processes that run the host\'s own file at their executable\'s path, and nothing else', (t) => {
  // The host: a root with /usr/sbin/runc. Exec events carry the executable's device (kernel encoding) and inode.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-hostexe-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, 'usr/sbin'), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr/sbin/runc'), 'runc');
  fs.writeFileSync(path.join(root, 'usr/sbin/other'), 'other');
  const id = (p: string) => {
    const st = fs.statSync(path.join(root, p));
    return { dev: kernelDev(st.dev), ino: st.ino };
  };
  const runc = id('usr/sbin/runc');
  const other = id('usr/sbin/other');
  const exec = (pid: number, exe: string, file: { dev: number; ino: number }, unknown?: string[]): ExecEvent => ({
    type: 'exec', ktimeNs: 3e9 + pid, pid, tid: pid, cgroupId: 1, comm: 'runc', startNs: 2e9 + pid, ppid: 1, parentStartNs: 1e9, oldPid: pid, creds,
    ns: { cgroupId: 1, pidns: 4026531836, mntns: 4026532400, nspid: pid }, exe: { path: exe, ...file, mtimeNs: 0 }, filename: exe,
    argv: ['runc', 'init'], argc: 2, envRaw: [], tty: '', flags: 0, argvTruncated: false, envTruncated: false, pathTruncated: false, subreaper: false, ...(unknown ? { unknown } : {}),
  });
  const processes = () => {
    const cache = new ProcessCache({ scrubber: { scrubArgv: (a) => ({ argv: a, scrubbed: 0 }), scrubEnv: () => ({ env: [], scrubbed: 0 }) }, timers: false });
    cache.apply(snap(1, 0, 1e9, { exePath: '/usr/sbin/runc', exeDev: runc.dev, exeIno: runc.ino }));
    cache.apply(exec(10, '/usr/sbin/runc', runc)); // the host's runc, whatever mount namespace it runs in
    const fork: ForkEvent = { type: 'fork', ktimeNs: 3.1e9, pid: 10, tid: 10, cgroupId: 1, parentStartNs: 2e9 + 10, childPid: 11, childTgid: 11, childPpid: 10, childStartNs: 3.1e9, thread: false, comm: 'runc:[2:INIT]' };
    cache.apply(fork);
    cache.apply(exec(20, '/usr/sbin/runc', { dev: runc.dev + 1, ino: runc.ino })); // a container's own /usr/sbin/runc (another file system)
    cache.apply(exec(21, '/usr/sbin/runc', other)); // another file of the host's
    cache.apply(exec(22, '/tmp/runc', runc)); // a path the host has no file at
    cache.apply(exec(23, 'usr/sbin/runc', runc)); // not an absolute path
    cache.apply(exec(24, '/usr/sbin/runc', runc, ['exe'])); // the executable not known
    return cache;
  };
  const hostFiles = new HostFiles({ root });
  const hostExe = (c: EnrichContext, pid: number) => enrich(c, 'open', 4e9, pid, pid, 1, {}).process?.hostExe;
  const ctx: EnrichContext = { cache: processes(), container: () => undefined, userName: () => undefined, hostFile: (p, dev, ino) => hostFiles.isHostFile(p, dev, ino) };
  assert.equal(hostExe(ctx, 1), true, 'a snapshot process running the host\'s file');
  assert.equal(hostExe(ctx, 10), true, 'exec\'d from the host\'s file');
  assert.equal(hostExe(ctx, 11), true, 'forked from it: the same image');
  for (const pid of [20, 21, 22, 23, 24]) assert.equal(hostExe(ctx, pid), undefined, `pid ${pid}`);
  // The member sits right after exe.
  assert.deepEqual(Object.keys(enrich(ctx, 'open', 4e9, 10, 10, 1, {}).process!).slice(6, 8), ['exe', 'hostExe']);
  // Without the lookup, no process is marked.
  const none: EnrichContext = { cache: processes(), container: () => undefined, userName: () => undefined };
  for (const pid of [1, 10, 11]) assert.equal(hostExe(none, pid), undefined);
  // The process dumps (vigil ps --json, /v1/processes) say the same of every process, from the same lookup.
  const cache = processes();
  const dumped = new Map<number, boolean | undefined>();
  const visit = (n: ProcessNode) => {
    dumped.set(n.pid, n.hostExe);
    n.children.forEach(visit);
  };
  toJSON(cache, { exited: true, hostExe: (e) => hostFiles.hostExeOf(e) }).forEach(visit);
  assert.deepEqual([...dumped].sort((a, b) => a[0] - b[0]), [1, 10, 11, 20, 21, 22, 23, 24].map((pid) => [pid, hostExe(ctx, pid)]));
  assert.ok(toJSON(cache, { exited: true }).every((n) => !('hostExe' in n)), 'not asked for: not given');
});

test('HostFiles: the host\'s file at a path by device and inode, answers kept for their TTL, paths bounded', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-hostfiles-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const file = path.join(root, 'runc');
  fs.writeFileSync(file, 'a');
  const id = () => {
    const st = fs.statSync(file);
    return { dev: kernelDev(st.dev), ino: st.ino };
  };
  const first = id();
  let now = 0;
  const hf = new HostFiles({ root, ttlMs: 1000, max: 4, now: () => now });
  assert.equal(hf.isHostFile('/runc', first.dev, first.ino), true);
  assert.equal(hf.isHostFile('/runc', first.dev, first.ino + 1), false);
  assert.equal(hf.isHostFile('/runc', first.dev + 1, first.ino), false);
  assert.equal(hf.isHostFile('/missing', first.dev, first.ino), false);
  assert.equal(hf.isHostFile('/', first.dev, first.ino), false, 'a directory');
  assert.equal(hf.isHostFile('/runc (deleted)', first.dev, first.ino), false);
  // An upgrade replaces the file (a new inode): the old answer holds for the TTL, then the new file counts.
  fs.writeFileSync(`${file}.new`, 'b');
  fs.renameSync(`${file}.new`, file);
  const second = id();
  assert.notEqual(second.ino, first.ino);
  now = 500;
  assert.equal(hf.isHostFile('/runc', first.dev, first.ino), true, 'within the TTL');
  now = 1000;
  assert.equal(hf.isHostFile('/runc', second.dev, second.ino), true, 'past it');
  assert.equal(hf.isHostFile('/runc', first.dev, first.ino), false);
  // At most `max` paths are kept: the oldest goes, and is looked up again when asked.
  for (const p of ['/a', '/b', '/c', '/d']) hf.isHostFile(p, 0, 0);
  fs.writeFileSync(`${file}.new`, 'c');
  fs.renameSync(`${file}.new`, file);
  const third = id();
  assert.equal(hf.isHostFile('/runc', third.dev, third.ino), true, 'evicted, so looked up again within the TTL');
});
