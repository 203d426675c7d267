// Hostile records for the decoders, the pipeline and the ring-buffer consumer: valid records of every opcode
// built from the generated layout, then truncated at every length, with flipped bytes, with length fields
// that lie, and plain random bytes. A decoder either decodes or returns its DecodeFailure (never throws,
// never reads outside the record); the pipeline accounts for every record; the ring consumer never hands out
// a record beyond the producer's position and never runs past it. Seeded: see test/helpers/fuzz.ts.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import {
  decodeCgroup,
  decodeComm,
  decodeCredsEvent,
  decodeExec,
  decodeExit,
  decodeFileEvent,
  decodeFork,
  decodeNetEvent,
  decodeProcessEvent,
  decodeSyscallEvent,
  decodeSysEvent,
  FILE_EVENT_KEYS,
  isDecodeError,
  NET_EVENT_KEYS,
  SYS_EVENT_KEYS,
  opcodeOf,
  type DecodeFailure,
  type DecodeResult,
} from '../../src/events/decode.ts';
import { CGROUP_EVENT, EVENT_HEADER, EXEC_EVENT, FILE_EVENT, NET_EVENT, SIZEOF, SYS_EVENT, VIGIL_CGROUP_OP, VIGIL_OPCODE, VIGIL_SYS_OP } from '../../src/events/layout.generated.ts';
import type { ExecEvent, FileEvent, SysEvent } from '../../src/events/types.ts';
import { syscallOutput } from '../../src/pipeline/outputs.ts';
import { Pipeline, type Decoded } from '../../src/pipeline/pipeline.ts';
import { Router } from '../../src/pipeline/router.ts';
import { pipelineTables } from '../../src/pipeline/tables.ts';
import { validateConfig } from '../../src/config/config.ts';
import type { OutputEvent, Sink, SinkStats } from '../../src/pipeline/types.ts';
import { ProcessCache } from '../../src/process/cache.ts';
import { Scrubber } from '../../src/process/scrub.ts';
import { RingConsumer, type RingLayout, type RingRecord } from '../../src/ringbuf/ringbuf.ts';
import { fuzzSync, type Rng } from '../helpers/fuzz.ts';

type Decoder = (v: DataView, o: number, len: number) => DecodeResult<{ type: string }>;
type LenField = { offset: number; size: number };

/** A valid record and what decoding it must give. */
interface Built {
  bytes: Uint8Array;
  /** Length fields of the variable parts (lying about them must give 'bad-size' when they overrun). */
  lengths: LenField[];
  check(ev: { type: string } & Record<string, unknown>): void;
}

interface Kind {
  name: string;
  opcode: number;
  fixed: number;
  decode: Decoder;
  dispatch: Decoder | undefined;
  build(rng: Rng): Built;
}

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** The fixed part: random bytes (every field garbage but valid), then the header's opcode and size. */
function fixed(rng: Rng, size: number, opcode: number): Uint8Array {
  const b = rng.bytes(size);
  view(b).setUint16(EVENT_HEADER.opcode.offset, opcode, true);
  return b;
}

/** A string's bytes (no NUL inside): mostly ASCII, sometimes any bytes (invalid UTF-8 included). */
function strBytes(rng: Rng, max = 48): { bytes: Uint8Array; ascii: string | undefined } {
  if (rng.chance(0.7)) {
    const s = rng.ascii(0, max);
    return { bytes: new TextEncoder().encode(s), ascii: s };
  }
  const b = rng.bytes(rng.int(1, max));
  for (let i = 0; i < b.length; i++) if (b[i] === 0) b[i] = 0x80 + (i & 0x3f);
  return { bytes: b, ascii: undefined };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let p = 0;
  for (const x of parts) {
    out.set(x, p);
    p += x.length;
  }
  return out;
}

const nulTerminated = (b: Uint8Array) => concat([b, new Uint8Array([0])]);

function finish(b: Uint8Array): Uint8Array {
  view(b).setUint32(EVENT_HEADER.size.offset, b.length, true);
  return b;
}

function pidOf(b: Uint8Array) {
  const v = view(b);
  return { pid: v.getUint32(EVENT_HEADER.pid.offset, true), tid: v.getUint32(EVENT_HEADER.tid.offset, true) };
}

function checkHeader(b: Uint8Array, ev: Record<string, unknown>): void {
  const { pid, tid } = pidOf(b);
  assert.equal(ev.pid, pid);
  assert.equal(ev.tid, tid);
}

function fixedKind(name: string, opcode: number, size: number, decode: Decoder, type: string): Kind {
  return {
    name,
    opcode,
    fixed: size,
    decode,
    dispatch: decodeProcessEvent as Decoder,
    build(rng) {
      const b = finish(fixed(rng, size, opcode));
      return { bytes: b, lengths: [], check: (ev) => (assert.equal(ev.type, type), checkHeader(b, ev)) };
    },
  };
}

const FILE_OPS = [VIGIL_SYS_OP.OPEN, VIGIL_SYS_OP.UNLINK, VIGIL_SYS_OP.RMDIR, VIGIL_SYS_OP.RENAME, VIGIL_SYS_OP.CHMOD, VIGIL_SYS_OP.CHOWN, VIGIL_SYS_OP.MKDIR, VIGIL_SYS_OP.TRUNCATE, VIGIL_SYS_OP.LINK, VIGIL_SYS_OP.SYMLINK];
const NET_OPS = [VIGIL_SYS_OP.CONNECT, VIGIL_SYS_OP.ACCEPT, VIGIL_SYS_OP.BIND, VIGIL_SYS_OP.LISTEN, VIGIL_SYS_OP.TCP_STATE];
const SYS_OPS = [VIGIL_SYS_OP.PTRACE, VIGIL_SYS_OP.MOUNT, VIGIL_SYS_OP.UMOUNT, VIGIL_SYS_OP.MODULE_LOAD, VIGIL_SYS_OP.BPF, VIGIL_SYS_OP.MEMFD_CREATE, VIGIL_SYS_OP.SETNS, VIGIL_SYS_OP.UNSHARE];

const KINDS: Kind[] = [
  {
    name: 'exec',
    opcode: VIGIL_OPCODE.EXEC,
    fixed: SIZEOF.exec_event,
    decode: decodeExec as Decoder,
    dispatch: decodeProcessEvent as Decoder,
    build(rng) {
      const f = fixed(rng, SIZEOF.exec_event, VIGIL_OPCODE.EXEC);
      const exe = strBytes(rng);
      const fname = strBytes(rng);
      const argv = Array.from({ length: rng.int(0, 6) }, () => strBytes(rng, 20));
      const env = Array.from({ length: rng.int(0, 4) }, () => strBytes(rng, 20));
      const block = (xs: { bytes: Uint8Array }[]) => concat(xs.map((x) => nulTerminated(x.bytes)));
      const parts = [nulTerminated(exe.bytes), nulTerminated(fname.bytes), block(argv), block(env)];
      const v = view(f);
      const lens = [EXEC_EVENT.exe_len, EXEC_EVENT.filename_len, EXEC_EVENT.argv_len, EXEC_EVENT.env_len];
      lens.forEach((l, i) => v.setUint32(l.offset, parts[i]!.length, true));
      const b = finish(concat([f, ...parts]));
      return {
        bytes: b,
        lengths: lens,
        check(raw) {
          const ev = raw as unknown as ExecEvent;
          assert.equal(ev.type, 'exec');
          checkHeader(b, raw);
          if (exe.ascii !== undefined) assert.equal(ev.exe.path, exe.ascii);
          if (fname.ascii !== undefined) assert.equal(ev.filename, fname.ascii);
          // An empty argv string ("a\0\0b") is kept; only the block's final NUL ends it.
          if (argv.every((a) => a.ascii !== undefined)) assert.deepEqual(ev.argv, argv.map((a) => a.ascii));
          else assert.equal(ev.argv.length, argv.length);
          assert.equal(ev.envRaw.length, env.length);
        },
      };
    },
  },
  fixedKind('fork', VIGIL_OPCODE.FORK, SIZEOF.fork_event, decodeFork as Decoder, 'fork'),
  fixedKind('exit', VIGIL_OPCODE.EXIT, SIZEOF.exit_event, decodeExit as Decoder, 'exit'),
  fixedKind('creds', VIGIL_OPCODE.CREDS, SIZEOF.creds_event, decodeCredsEvent as Decoder, 'creds'),
  fixedKind('comm', VIGIL_OPCODE.COMM, SIZEOF.comm_event, decodeComm as Decoder, 'comm'),
  {
    name: 'cgroup',
    opcode: VIGIL_OPCODE.CGROUP,
    fixed: SIZEOF.cgroup_event,
    decode: decodeCgroup as Decoder,
    dispatch: undefined,
    build(rng) {
      const b = fixed(rng, SIZEOF.cgroup_event, VIGIL_OPCODE.CGROUP);
      const v = view(b);
      v.setUint32(CGROUP_EVENT.op.offset, rng.pick([VIGIL_CGROUP_OP.MKDIR, VIGIL_CGROUP_OP.RMDIR, VIGIL_CGROUP_OP.ATTACH]), true);
      const path = `/${rng.ascii(0, 80, 'abcdef0123456789-_./')}`;
      b.fill(0, CGROUP_EVENT.path.offset, CGROUP_EVENT.path.offset + CGROUP_EVENT.path.size);
      b.set(new TextEncoder().encode(path), CGROUP_EVENT.path.offset);
      v.setUint32(CGROUP_EVENT.path_len.offset, path.length + 1, true);
      finish(b);
      return { bytes: b, lengths: [], check: (ev) => (assert.equal(ev.type, 'cgroup'), assert.equal(ev.path, path), checkHeader(b, ev)) };
    },
  },
  {
    name: 'file',
    opcode: VIGIL_OPCODE.FILE,
    fixed: SIZEOF.file_event,
    decode: decodeFileEvent as Decoder,
    dispatch: decodeSyscallEvent as Decoder,
    build(rng) {
      const f = fixed(rng, SIZEOF.file_event, VIGIL_OPCODE.FILE);
      const v = view(f);
      v.setUint32(FILE_EVENT.op.offset, rng.pick(FILE_OPS), true);
      const strs = [0, 1, 2, 3].map((i) => (i === 0 || rng.chance(0.5) ? strBytes(rng) : undefined));
      const parts = strs.map((s) => (s ? nulTerminated(s.bytes) : new Uint8Array(0)));
      const lens = [FILE_EVENT.path_len, FILE_EVENT.path2_len, FILE_EVENT.resolved_len, FILE_EVENT.resolved2_len];
      lens.forEach((l, i) => v.setUint32(l.offset, parts[i]!.length, true));
      const b = finish(concat([f, ...parts]));
      return {
        bytes: b,
        lengths: lens,
        check(raw) {
          const ev = raw as unknown as FileEvent;
          assert.equal(ev.group, 'file');
          checkHeader(b, raw);
          const got = [ev.path, ev.path2, ev.resolvedPath, ev.resolvedPath2];
          strs.forEach((s, i) => {
            if (!s) assert.equal(got[i], i === 0 ? '' : undefined);
            else if (s.ascii !== undefined) assert.equal(got[i], s.ascii);
            else assert.equal(typeof got[i], 'string');
          });
        },
      };
    },
  },
  {
    name: 'net',
    opcode: VIGIL_OPCODE.NET,
    fixed: SIZEOF.net_event,
    decode: decodeNetEvent as Decoder,
    dispatch: decodeSyscallEvent as Decoder,
    build(rng) {
      const b = fixed(rng, SIZEOF.net_event, VIGIL_OPCODE.NET);
      const v = view(b);
      v.setUint32(NET_EVENT.op.offset, rng.pick(NET_OPS), true);
      v.setUint16(NET_EVENT.family.offset, rng.pick([1, 2, 10, rng.int(0, 65535)]), true);
      v.setUint32(NET_EVENT.unix_path_len.offset, rng.int(0, NET_EVENT.unix_path.size), true);
      finish(b);
      return { bytes: b, lengths: [NET_EVENT.unix_path_len], check: (ev) => (assert.equal(ev.group, 'network'), checkHeader(b, ev)) };
    },
  },
  {
    name: 'sys',
    opcode: VIGIL_OPCODE.SYS,
    fixed: SIZEOF.sys_event,
    decode: decodeSysEvent as Decoder,
    dispatch: decodeSyscallEvent as Decoder,
    build(rng) {
      const f = fixed(rng, SIZEOF.sys_event, VIGIL_OPCODE.SYS);
      const v = view(f);
      const op = rng.pick(SYS_OPS);
      v.setUint32(SYS_EVENT.op.offset, op, true);
      const strs = [0, 1, 2].map(() => (rng.chance(0.6) ? strBytes(rng) : undefined));
      const parts = strs.map((s) => (s ? nulTerminated(s.bytes) : new Uint8Array(0)));
      const lens = [SYS_EVENT.str1_len, SYS_EVENT.str2_len, SYS_EVENT.str3_len];
      lens.forEach((l, i) => v.setUint32(l.offset, parts[i]!.length, true));
      const b = finish(concat([f, ...parts]));
      return {
        bytes: b,
        lengths: lens,
        check(raw) {
          const ev = raw as unknown as SysEvent;
          assert.equal(ev.group, 'other');
          checkHeader(b, raw);
          const want = (i: number) => (strs[i] ? strs[i]!.ascii ?? ev[(['source', 'target', 'fstype'] as const)[i]!] : undefined);
          if (op === VIGIL_SYS_OP.MOUNT) assert.deepEqual([ev.source, ev.target, ev.fstype], [want(0), want(1), want(2)]);
        },
      };
    },
  },
];

const REASONS = new Set<DecodeFailure['decodeError']>(['short', 'unknown-opcode', 'bad-size']);

/** Calls a decoder; it must return an event or a DecodeFailure, and never throw. */
function call(d: Decoder, v: DataView, o: number, len: number, what: string): DecodeResult<{ type: string }> {
  let r: DecodeResult<{ type: string }>;
  try {
    r = d(v, o, len);
  } catch (err) {
    assert.fail(`${what}: the decoder threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
  }
  if (isDecodeError(r)) {
    assert.deepEqual(Object.keys(r).sort(), ['decodeError', 'opcode'], `${what}: a failure carries only its marker and opcode`);
    assert.ok(REASONS.has(r.decodeError), `${what}: unknown reason ${r.decodeError}`);
    assert.equal(typeof r.opcode, 'number');
    return r;
  }
  assert.equal(typeof r.type, 'string', `${what}: an event has a type`);
  assertSane(r, what);
  return r;
}

/** Every number finite, every value JSON can carry (the pipeline serializes each event once). */
function assertSane(x: unknown, what: string, path = 'event'): void {
  if (typeof x === 'number') assert.ok(Number.isFinite(x), `${what}: ${path} is ${x}`);
  else if (typeof x === 'bigint' || typeof x === 'function' || typeof x === 'symbol') assert.fail(`${what}: ${path} is a ${typeof x}`);
  else if (Array.isArray(x)) x.forEach((y, i) => assertSane(y, what, `${path}[${i}]`));
  else if (x && typeof x === 'object') for (const [k, y] of Object.entries(x)) assertSane(y, what, `${path}.${k}`);
}

/** The record alone in a view of exactly its length: any read past its end throws RangeError. */
function exact(b: Uint8Array, len = b.length): DataView {
  return new DataView(b.buffer, b.byteOffset, len);
}

/** The record at an offset inside a larger buffer with `fill` around it (as in ring memory). */
function embedded(b: Uint8Array, pre: number, fill: number, len = b.length): [DataView, number, number] {
  const big = new Uint8Array(pre + b.length + 64).fill(fill);
  big.set(b.subarray(0, len), pre);
  return [new DataView(big.buffer), pre, len];
}

function decodeBoth(k: Kind, v: DataView, o: number, len: number, what: string): DecodeResult<{ type: string }> {
  const r = call(k.decode, v, o, len, `${what} (decode${k.name})`);
  if (k.dispatch) {
    const d = call(k.dispatch, v, o, len, `${what} (dispatcher)`);
    if (len >= SIZEOF.event_header || !isDecodeError(r)) assert.deepEqual(d, r, `${what}: the dispatcher agrees with the decoder`);
    else assert.deepEqual(d, { decodeError: 'short', opcode: -1 }, `${what}: no header, no opcode`);
  }
  return r;
}

test('valid records of every opcode decode, and only from their own bytes', (t) => {
  fuzzSync(t, 'valid', 150, (rng) => {
    for (const k of KINDS) {
      const built = k.build(rng);
      const r = decodeBoth(k, exact(built.bytes), 0, built.bytes.length, `valid ${k.name}`);
      assert.ok(!isDecodeError(r), `valid ${k.name} record failed: ${JSON.stringify(r)}`);
      built.check(r as { type: string } & Record<string, unknown>);
      // Same record, different surroundings: a decoder that reads outside [o, o+len) would differ.
      const pre = rng.int(1, 40);
      const a = call(k.decode, ...embedded(built.bytes, pre, 0x00), `${k.name} in zeros`);
      const b = call(k.decode, ...embedded(built.bytes, pre + 8, 0xff), `${k.name} in 0xff`);
      assert.deepEqual(a, r);
      assert.deepEqual(b, r);
    }
  });
});

test('every file, net and sys event has the keys of its group in order, and its JSON members are its fields', (t) => {
  // The pipeline serialises syscall events with one compiled function per group, reading FILE_EVENT_KEYS
  // (and the others) by name: a decoder that added a key for some records only would lose it from the JSON.
  const keys: Record<string, readonly string[]> = { file: FILE_EVENT_KEYS, network: NET_EVENT_KEYS, other: SYS_EVENT_KEYS };
  const json = syscallOutput.json!;
  let checked = 0;
  fuzzSync(t, 'shapes', 300, (rng) => {
    for (const k of KINDS.filter((x) => ['file', 'net', 'sys'].includes(x.name))) {
      const b = k.build(rng).bytes.slice();
      // Valid records, and records with flipped bytes (other ops, flags and lengths) that still decode.
      if (rng.chance(0.5)) for (let i = rng.int(1, 6); i > 0; i--) b[rng.int(SIZEOF.event_header, b.length - 1)] = rng.int(0, 255);
      const r = call(k.decode, exact(b), 0, b.length, `${k.name} record`);
      if (isDecodeError(r)) continue;
      const ev = r as unknown as Decoded & { group: string };
      assert.deepEqual(Object.keys(ev), keys[ev.group], `${ev.type}: keys`);
      const fields = syscallOutput(ev)!;
      assert.equal(`{"type":"x"${json(ev)}}`, JSON.stringify({ type: 'x', ...fields }), `${ev.type}: members`);
      assert.ok(!Object.values(fields).includes(false), 'false flags are left out');
      checked++;
    }
  });
  assert.ok(checked > 300, `only ${checked} records decoded`);
});

test('a record truncated at every length is a decode failure naming why, never an exception', (t) => {
  fuzzSync(t, 'truncated', 6, (rng) => {
    for (const k of KINDS) {
      const built = k.build(rng);
      for (let len = 0; len < built.bytes.length; len++) {
        const what = `${k.name} truncated to ${len}/${built.bytes.length}`;
        const r = decodeBoth(k, exact(built.bytes, len), 0, len, what);
        assert.ok(isDecodeError(r), `${what} decoded: ${JSON.stringify(r).slice(0, 200)}`);
        assert.equal(r.decodeError, len < k.fixed ? 'short' : 'bad-size', what);
        assert.equal(r.opcode, k.opcode, what);
        // The same truncation inside a larger view (ring memory goes on past the record): same answer.
        assert.deepEqual(call(k.decode, ...embedded(built.bytes, 8, 0x41, len), what), r);
      }
    }
  });
});

test('length fields that lie are bad-size, however large', (t) => {
  const lies = (rng: Rng, len: number) => [1, len, len + 1, 0x7fffffff, 0x80000000, 0xfffffff8, 0xffffffff, rng.u32(), rng.int(0, 2 * len)];
  fuzzSync(t, 'lying lengths', 60, (rng) => {
    for (const k of KINDS) {
      const built = k.build(rng);
      for (const field of built.lengths) {
        for (const lie of lies(rng, built.bytes.length)) {
          const b = built.bytes.slice();
          const v = view(b);
          v.setUint32(field.offset, lie, true);
          const what = `${k.name} with length @${field.offset} = ${lie}`;
          const r = decodeBoth(k, exact(b), 0, b.length, what);
          let overrun: boolean;
          if (k.opcode === VIGIL_OPCODE.NET) overrun = lie > NET_EVENT.unix_path.size;
          else overrun = k.fixed + built.lengths.reduce((n, l) => n + v.getUint32(l.offset, true), 0) > b.length;
          if (overrun) {
            assert.ok(isDecodeError(r), `${what} decoded`);
            assert.equal(r.decodeError, 'bad-size', what);
          } else {
            // Lengths that still fit (strings shifted) decode, from the record's own bytes only.
            const again = call(k.decode, ...embedded(b, 24, 0xee), what);
            assert.deepEqual(again, r, what);
          }
        }
      }
    }
  });
});

test('flipped bytes and random records decode or fail cleanly, in every decoder', (t) => {
  const decoders: Decoder[] = [...KINDS.map((k) => k.decode), decodeProcessEvent as Decoder, decodeSyscallEvent as Decoder];
  const opcodes = [...KINDS.map((k) => k.opcode), VIGIL_OPCODE.UNSPEC, VIGIL_OPCODE.BENCH, VIGIL_OPCODE.TEST, VIGIL_OPCODE.MAX, 0xffff];
  fuzzSync(t, 'flips and noise', 400, (rng) => {
    const k = rng.pick(KINDS);
    const built = k.build(rng);
    const b = built.bytes.slice();
    const flips = rng.int(1, 12);
    for (let i = 0; i < flips; i++) b[rng.int(0, b.length - 1)] = rng.int(0, 255);
    // Sometimes aim at the bytes that steer decoding: op and length fields.
    if (rng.chance(0.3) && built.lengths.length) view(b).setUint32(rng.pick(built.lengths).offset, rng.u32(), true);
    if (rng.chance(0.2)) view(b).setUint32(40, rng.pick([0, 1, 8, 15, 16, 31, 32, 40, 63, 64, rng.u32()]), true); // op of file/net/sys, cgroup id
    const len = rng.chance(0.3) ? rng.int(0, b.length) : b.length;
    for (const d of decoders) call(d, exact(b, len), 0, len, `${k.name} flipped (len ${len})`);
    const noise = rng.bytes(rng.int(0, 700));
    if (noise.length >= 2 && rng.chance(0.8)) view(noise).setUint16(0, rng.pick(opcodes), true);
    for (const d of decoders) {
      const r = call(d, exact(noise), 0, noise.length, `noise of ${noise.length} bytes`);
      if (noise.length < SIZEOF.event_header && d === decodeProcessEvent) assert.deepEqual(r, { decodeError: 'short', opcode: -1 });
    }
    // A dispatcher meeting another group's opcode says so.
    if (noise.length >= SIZEOF.event_header) {
      const op = opcodeOf(exact(noise), 0, noise.length);
      const r = call(decodeProcessEvent as Decoder, exact(noise), 0, noise.length, 'noise');
      if (![VIGIL_OPCODE.EXEC, VIGIL_OPCODE.FORK, VIGIL_OPCODE.EXIT, VIGIL_OPCODE.CREDS, VIGIL_OPCODE.COMM].includes(op as 11)) assert.deepEqual(r, { decodeError: 'unknown-opcode', opcode: op });
    }
  });
});

// ---- the pipeline: every record accounted for -----------------------------------------------------------

class MemorySink implements Sink {
  readonly name = 'memory';
  readonly got: OutputEvent[] = [];
  write(e: OutputEvent, line: string): void {
    assert.equal(typeof line, 'string');
    this.got.push(e);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  stats(): SinkStats {
    return { received: this.got.length, sent: this.got.length, dropped: {}, queued: 0, retries: 0 };
  }
}

/** The agent's decoder table and outputs (src/agent/agent.ts), over a real cache, scrubber and router. */
function pipeline(reorderWindowMs: number) {
  const { decoders, held, outputs, types } = pipelineTables(validateConfig({ events: { process: { exec: true, exit: true, creds: true, fork: false, comm: false }, containers: false } }).events, [
    'open', 'unlink', 'rename', 'connect', 'accept', 'mount', 'ptrace', 'bpf',
  ]);
  // Some syscall types shaped but not wanted: both paths (emitted, filtered) get traffic.
  for (const t of ['unlink', 'accept', 'ptrace']) types.delete(t);
  const sink = new MemorySink();
  const router = new Router(1_000_000);
  const routed: string[] = [];
  router.subscribe('fuzz', { types: ['exec', 'open'] }, (batch) => batch.forEach((ev) => routed.push(ev.type)));
  const cache = new ProcessCache({ scrubber: new Scrubber(), timers: false, maxEntries: 4096 });
  const p = new Pipeline({ decoders, held, outputs, cache, enrich: { userName: () => undefined }, router, sinks: [sink], types, reorderWindowMs, holdForEnrichmentMs: 0 });
  return { p, sink, decoders };
}

/** One record of any sort: valid, truncated, flipped, unknown opcode, or noise. */
function anyRecord(rng: Rng): Uint8Array {
  const k = rng.pick(KINDS);
  const b = k.build(rng).bytes;
  // Plausible process ids so that some events find each other in the cache.
  view(b).setUint32(EVENT_HEADER.pid.offset, rng.int(1, 50), true);
  switch (rng.int(0, 5)) {
    case 0:
      return b.subarray(0, rng.int(0, b.length - 1));
    case 1:
      for (let i = rng.int(1, 8); i > 0; i--) b[rng.int(0, b.length - 1)] = rng.int(0, 255);
      return b;
    case 2:
      view(b).setUint16(0, rng.pick([0, 1, 2, 3, 15, 33, 64, 999, 0xffff]), true);
      return b;
    case 3:
      return rng.bytes(rng.int(0, 300));
    default:
      return b;
  }
}

test('the pipeline accounts for every hostile record: records = decoded + decode errors + unknown opcodes', (t) => {
  for (const win of [0, 5]) {
    const { p, sink, decoders } = pipeline(win);
    let want = { records: 0, decoded: 0, decodeError: 0, unknownOpcode: 0 };
    fuzzSync(t, `pipeline window ${win}`, 3000, (rng) => {
      const b = anyRecord(rng);
      // Ring memory: the record sits inside a larger view.
      const pre = rng.int(0, 16) * 8;
      const [v, o, len] = embedded(b, pre, rng.int(0, 255));
      const op = opcodeOf(v, o, len);
      const d = op < 0 ? undefined : decoders.get(op);
      want.records++;
      if (op < 0) want.decodeError++;
      else if (!d) want.unknownOpcode++;
      else if (isDecodeError(d(v, o, len))) want.decodeError++;
      else want.decoded++;
      try {
        p.handleRecord(v, o, len);
      } catch (err) {
        assert.fail(`the pipeline threw on a record (${len} bytes, opcode ${op}): ${(err as Error).stack}`);
      }
    });
    p.flush();
    const c = p.counters();
    assert.deepEqual({ records: c.records, decoded: c.decoded, decodeError: c.dropped.decodeError, unknownOpcode: c.dropped.unknownOpcode }, want);
    assert.equal(c.buffered, 0, 'flush releases everything');
    assert.equal(c.decoded, c.emitted + c.internal + c.dropped.filtered + c.buffered, 'every decoded record is emitted, internal or filtered');
    assert.equal(c.records, c.emitted + c.internal + c.dropped.filtered + c.dropped.decodeError + c.dropped.unknownOpcode + c.buffered);
    assert.equal(sink.got.length, c.emitted);
    assert.ok(c.emitted > 0 && c.dropped.decodeError > 0 && c.dropped.unknownOpcode > 0, `every path taken: ${JSON.stringify(c)}`);
    want = { records: 0, decoded: 0, decodeError: 0, unknownOpcode: 0 };
    p.stop();
  }
});

// ---- the ring-buffer consumer over garbage ---------------------------------------------------------------

const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const LEN_MASK = 0x3fffffff;

/** A synthetic ring laid out like the kernel's (data area mapped twice, or once), with headers we control. */
class SynthRing {
  readonly size: number;
  readonly layout: RingLayout;
  readonly #cons = new ArrayBuffer(8);
  readonly #prod = new ArrayBuffer(8);
  readonly #data: Uint8Array;
  readonly #mirrored: boolean;
  prod: number;

  constructor(size: number, start: number, mirrored = true) {
    this.size = size;
    this.#mirrored = mirrored;
    const data = new ArrayBuffer(mirrored ? 2 * size : size);
    this.#data = new Uint8Array(data);
    this.layout = { consumer: new Int32Array(this.#cons), consumer64: new BigUint64Array(this.#cons), producer: new Int32Array(this.#prod), data: new DataView(data), dataI32: new Int32Array(data), size, mirrored };
    this.prod = start;
    new BigUint64Array(this.#cons)[0] = BigInt(start);
    this.publish();
  }

  publish(): void {
    new BigUint64Array(this.#prod)[0] = BigInt(this.prod);
  }

  get consumer(): number {
    return Number(new BigUint64Array(this.#cons)[0]);
  }

  #write(pos: number, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) {
      const p = (pos + i) % this.size;
      this.#data[p] = bytes[i]!;
      if (this.#mirrored) this.#data[p + this.size] = bytes[i]!;
    }
  }

  /** Appends a record with header word `hdr` (length and flags as given, true or not) taking `step` bytes. */
  push(payload: Uint8Array, hdr: number, step = (payload.length + 8 + 7) & ~7): void {
    const h = new Uint8Array(8);
    new DataView(h.buffer).setUint32(0, hdr >>> 0, true);
    this.#write(this.prod, h);
    this.#write(this.prod + 8, payload);
    this.prod += step;
  }

  free(): number {
    return this.size - (this.prod - this.consumer);
  }
}

test('garbage ring headers: no record beyond the producer, no run past it, every record counted', (t) => {
  fuzzSync(t, 'ring garbage', 400, (rng) => {
    const size = rng.pick([256, 1024, 4096]);
    const mirrored = rng.chance(0.5);
    const r = new SynthRing(size, rng.chance(0.2) ? 2 ** 32 - rng.int(1, 64) * 8 : rng.int(0, 64) * 8, mirrored);
    const c = new RingConsumer(r.layout);
    let good = 0;
    let discarded = 0;
    let garbage = false;
    for (let n = rng.int(0, 20); n > 0; n--) {
      const payload = rng.bytes(rng.int(0, 64));
      const step = (payload.length + 15) & ~7;
      if (step > r.free()) break;
      if (!garbage && rng.chance(0.15)) {
        // A header that lies: its length overruns the producer's position, or it has odd flag bits.
        const len = rng.pick([LEN_MASK, size, size - 8, 2 * size, r.free() + 1, rng.u32() & LEN_MASK]);
        r.push(payload, (len | (rng.chance(0.3) ? DISCARD : 0)) >>> 0, step);
        garbage = true;
        continue;
      }
      const discard = rng.chance(0.1);
      r.push(payload, payload.length | (discard ? DISCARD : 0), step);
      if (!garbage) discard ? discarded++ : good++;
    }
    if (rng.chance(0.1)) {
      const payload = rng.bytes(8);
      if (16 <= r.free()) r.push(payload, (BUSY | rng.u32()) >>> 0, 16);
    }
    r.publish();
    const before = r.consumer;
    const handed: number[] = [];
    // A bounded budget: a consumer that ran past the producer would otherwise spin through 4 GiB of ring.
    const budget = Math.ceil((r.prod - before) / 8) + 1;
    c.drain((v, off, len) => {
      assert.ok(off >= 0 && len >= 0 && off + len <= v.byteLength, `record [${off}, ${off + len}) lies outside its view of ${v.byteLength} bytes (mirrored: ${mirrored})`);
      handed.push(len);
    }, budget);
    assert.ok(r.consumer >= before && r.consumer <= r.prod, `consumer ${r.consumer} ran past producer ${r.prod} (from ${before})`);
    assert.ok(handed.length >= good, `records before any garbage are delivered: ${handed.length} < ${good}`);
    assert.equal(c.counters.received, handed.length);
    assert.ok(c.counters.discarded >= discarded);
    assert.equal(c.counters.handlerErrors, 0);
    // A second drain finds nothing new unless a busy record is still pending; it never moves backwards.
    const mid = r.consumer;
    c.drain(() => undefined, budget);
    assert.ok(r.consumer >= mid && r.consumer <= r.prod);
    // readInto and read over the same garbage: same bounds.
    const r2 = new SynthRing(size, 0, mirrored);
    r2.push(rng.bytes(16), rng.pick([LEN_MASK, 2 * size, size + 8]), 24);
    r2.publish();
    const c2 = new RingConsumer(r2.layout);
    const rec: RingRecord = { view: r2.layout.data, offset: 0, length: 0 };
    if (c2.readInto(rec)) assert.ok(rec.offset + rec.length <= 8 + 24);
    assert.doesNotThrow(() => c2.read());
    assert.ok(r2.consumer <= r2.prod);
  });
});

test('records from a ring of hostile bytes reach the pipeline one for one (ring mapped twice, or once)', (t) => {
  for (const mirrored of [true, false]) ringToPipeline(t, mirrored);
});

function ringToPipeline(t: TestContext, mirrored: boolean): void {
  const { p, decoders } = pipeline(0);
  // Small enough that records wrap around its end many times.
  const r = new SynthRing(1 << 14, 0, mirrored);
  const c = new RingConsumer(r.layout);
  let pushed = 0;
  // What each record must come to, decoded from its own bytes: a record handed over wrongly (cut where it
  // wraps, say) would land in another counter.
  const want = { decoded: 0, decodeError: 0, unknownOpcode: 0 };
  fuzzSync(t, `ring to pipeline (mirrored: ${mirrored})`, 1000, (rng) => {
    const b = anyRecord(rng);
    const v = exact(b);
    const op = opcodeOf(v, 0, b.length);
    const d = op < 0 ? undefined : decoders.get(op);
    if (op < 0 || (d && isDecodeError(d(v, 0, b.length)))) want.decodeError++;
    else if (!d) want.unknownOpcode++;
    else want.decoded++;
    if (((b.length + 15) & ~7) > r.free()) {
      r.publish();
      c.drain(p.handleRecord);
    }
    r.push(b, b.length);
    pushed++;
  });
  r.publish();
  c.drain(p.handleRecord);
  p.flush();
  assert.equal(c.counters.received, pushed);
  assert.equal(c.counters.handlerErrors, 0, 'the pipeline never throws into the reader');
  const k = p.counters();
  assert.equal(k.records, pushed);
  assert.deepEqual({ decoded: k.decoded, decodeError: k.dropped.decodeError, unknownOpcode: k.dropped.unknownOpcode }, want);
  p.stop();
}
