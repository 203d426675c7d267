// The ring-buffer consume loop over synthetic memory laid out like the kernel's: busy records, discarded
// records, wrap-around (the data area mirrored, as the kernel's double mapping makes it), 4 GiB position
// crossings, and throwing handlers. No privileges needed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DrainPacer, PEAK_BYTES_PER_MS, RingConsumer, WOKEN_MAX_DELAY_MS, type RingLayout, type RingRecord } from '../../src/ringbuf/ringbuf.ts';

const BUSY = 0x80000000;
const DISCARD = 0x40000000;

/** A fake ring: data area of `size` bytes, mirrored like the kernel's double mapping. */
class FakeRing {
  readonly size: number;
  readonly consBuf = new ArrayBuffer(8);
  readonly prodBuf = new ArrayBuffer(8);
  readonly dataBuf: ArrayBuffer;
  readonly layout: RingLayout;
  prod = 0;

  constructor(size: number, start = 0) {
    this.size = size;
    this.dataBuf = new ArrayBuffer(2 * size);
    this.layout = {
      consumer: new Int32Array(this.consBuf),
      consumer64: new BigUint64Array(this.consBuf),
      producer: new Int32Array(this.prodBuf),
      data: new DataView(this.dataBuf),
      dataI32: new Int32Array(this.dataBuf),
      size,
    };
    this.prod = start;
    new BigUint64Array(this.consBuf)[0] = BigInt(start);
    this.#publish();
  }

  #publish(): void {
    new BigUint64Array(this.prodBuf)[0] = BigInt(this.prod);
  }

  #write(off: number, bytes: Uint8Array): void {
    const d = new Uint8Array(this.dataBuf);
    for (let i = 0; i < bytes.length; i++) {
      const p = (off + i) % this.size;
      d[p] = bytes[i]!;
      d[p + this.size] = bytes[i]!; // the mirror
    }
  }

  /** Appends a record; returns its header offset so a test can flip flags later. */
  push(payload: Uint8Array, flags = 0): number {
    const off = this.prod % this.size;
    const hdr = new Uint8Array(8);
    new DataView(hdr.buffer).setUint32(0, (payload.length | flags) >>> 0, true);
    this.#write(off, hdr);
    this.#write(off + 8, payload);
    this.prod += (payload.length + 8 + 7) & ~7;
    this.#publish();
    return off;
  }

  setHeader(off: number, len: number, flags: number): void {
    const hdr = new Uint8Array(4);
    new DataView(hdr.buffer).setUint32(0, (len | flags) >>> 0, true);
    this.#write(off, hdr);
  }

  consumerPos(): bigint {
    return new BigUint64Array(this.consBuf)[0]!;
  }
}

const rec = (n: number, len = 12) => Uint8Array.from({ length: len }, (_, i) => (n + i) & 0xff);

function collect(c: RingConsumer, max = Infinity): number[][] {
  const out: number[][] = [];
  c.drain((v, off, len) => out.push([...new Uint8Array(v.buffer, v.byteOffset + off, len)]), max);
  return out;
}

test('drains records in order and publishes the consumer position', () => {
  const r = new FakeRing(4096);
  for (let i = 0; i < 10; i++) r.push(rec(i));
  const c = new RingConsumer(r.layout);
  assert.equal(c.available(), 10 * 24);
  const got = collect(c);
  assert.equal(got.length, 10);
  got.forEach((g, i) => assert.deepEqual(g, [...rec(i)]));
  assert.equal(r.consumerPos(), BigInt(r.prod));
  assert.equal(c.available(), 0);
  assert.deepEqual(collect(c), []);
  assert.equal(c.counters.received, 10);
  assert.equal(c.counters.bytes, 120);
});

test('stops at a busy record and resumes once it is committed', () => {
  const r = new FakeRing(4096);
  r.push(rec(1));
  const busyOff = r.push(rec(2), BUSY);
  r.push(rec(3));
  const c = new RingConsumer(r.layout);
  assert.deepEqual(collect(c), [[...rec(1)]]);
  assert.equal(r.consumerPos(), 24n, 'consumer stops before the busy record');
  r.setHeader(busyOff, 12, 0);
  assert.deepEqual(collect(c), [[...rec(2)], [...rec(3)]]);
});

test('skips discarded records without delivering them', () => {
  const r = new FakeRing(4096);
  r.push(rec(1));
  r.push(rec(2), DISCARD);
  r.push(rec(3));
  const c = new RingConsumer(r.layout);
  assert.deepEqual(collect(c), [[...rec(1)], [...rec(3)]]);
  assert.equal(c.counters.discarded, 1);
  assert.equal(c.counters.received, 2);
  assert.equal(r.consumerPos(), BigInt(r.prod));
});

test('a record that wraps around the end is delivered contiguously', () => {
  const r = new FakeRing(256, 200); // producer starts 56 bytes before the end
  const big = rec(7, 100);
  r.push(big); // occupies 200..308, i.e. wraps
  r.push(rec(8));
  const c = new RingConsumer(r.layout);
  const got: number[][] = [];
  c.drain((v, off, len) => {
    assert.ok(off + len <= 2 * 256, 'record lies within the mirrored area');
    got.push([...new Uint8Array(v.buffer, v.byteOffset + off, len)]);
  });
  assert.deepEqual(got, [[...big], [...rec(8)]]);
});

/** The same ring seen through a single mapping of its data area, as RingBufReader maps the kernel's. */
function single(r: FakeRing): RingLayout {
  return { ...r.layout, data: new DataView(r.dataBuf, 0, r.size), dataI32: new Int32Array(r.dataBuf, 0, r.size >> 2), mirrored: false };
}

test('with the data area mapped once, a wrapping record is reassembled and the others stay in place', () => {
  const r = new FakeRing(256, 200); // producer starts 56 bytes before the end
  const big = rec(7, 100);
  r.push(big); // header at 200, payload 208..308: wraps
  r.push(rec(8)); // at 52 (308 - 256): contiguous
  const layout = single(r);
  const c = new RingConsumer(layout);
  const got: number[][] = [];
  const views: DataView[] = [];
  c.drain((v, off, len) => {
    assert.ok(off + len <= v.byteLength, 'record lies within the view it is handed in');
    views.push(v);
    got.push([...new Uint8Array(v.buffer, v.byteOffset + off, len)]);
  });
  assert.deepEqual(got, [[...big], [...rec(8)]]);
  assert.notEqual(views[0], layout.data, 'the wrapping record was copied out');
  assert.equal(views[1], layout.data, 'the next one was not');
  assert.equal(c.wrapCopies, 1);
  assert.equal(r.consumerPos(), BigInt(r.prod));
});

test('with the data area mapped once, a record whose header ends the lap starts at offset 0', () => {
  const r = new FakeRing(256, 248); // the header takes the last 8 bytes, the payload starts the next lap
  r.push(rec(5, 40));
  const c = new RingConsumer(single(r));
  const got: [number, number[]][] = [];
  c.drain((v, off, len) => got.push([off, [...new Uint8Array(v.buffer, v.byteOffset + off, len)]]));
  assert.deepEqual(got, [[0, [...rec(5, 40)]]]);
  assert.equal(c.wrapCopies, 0);
});

test('readInto over a single mapping hands out a wrapping record whole', () => {
  const r = new FakeRing(256, 232);
  const big = rec(9, 64);
  r.push(big);
  const c = new RingConsumer(single(r));
  const one: RingRecord = { view: r.layout.data, offset: 0, length: 0 };
  assert.ok(c.readInto(one));
  assert.deepEqual([...new Uint8Array(one.view.buffer, one.view.byteOffset + one.offset, one.length)], [...big]);
  assert.equal(c.readInto(one), false);
  assert.equal(r.consumerPos(), BigInt(r.prod));
});

test('a data area smaller than the layout says is refused', () => {
  const r = new FakeRing(4096);
  assert.throws(() => new RingConsumer({ ...r.layout, data: new DataView(r.dataBuf, 0, 4096) }), { code: 'EINVAL' }, 'mirrored by default: needs 2 × size');
  assert.doesNotThrow(() => new RingConsumer(single(r)));
});

/** Feeds the pacer drains of a steady stream (bytes per ms, records of `rec` bytes), each on time. */
function steady(p: DrainPacer, perMs: number, rounds: number, rec = 72, handleNs = 50): number[] {
  const delays: number[] = [];
  let ms = p.delayMs;
  for (let i = 0; i < rounds; i++) {
    const bytes = ms * perMs;
    const d = p.after(Math.max(1, Math.round(bytes / rec)), bytes, (bytes / rec) * handleNs * 1e-6, ms, 0, false);
    assert.equal(d.next, 'timer');
    ms = d.next === 'timer' ? d.ms : NaN;
    delays.push(ms);
  }
  return delays;
}

test('the drain pacer grows its delay under a sparse stream, up to what the ring can absorb', () => {
  const size = 16 << 20;
  const p = new DrainPacer({ size, minMs: 1, maxMs: 64 });
  assert.equal(p.maxMs, Math.floor(size / 2 / PEAK_BYTES_PER_MS), 'capped by the ring, not by the option');
  assert.equal(p.maxMs, 16);
  assert.deepEqual(p.wake(0), { next: 'timer', ms: 1 });
  // An exec storm: ~3 records (~2 KiB) per ms, each costing ~20 µs to handle.
  assert.deepEqual(steady(p, 2048, 8, 700, 20_000), [2, 4, 8, 16, 16, 16, 16, 16]);
  // A batch over an eighth of the ring, or a drain that held the loop too long, halves the delay.
  assert.deepEqual(p.after(100_000, p.batchBytes + 1, 1, 16, 0, false), { next: 'timer', ms: 8 });
  assert.deepEqual(p.after(100, 10_000, p.busyMs + 1, 8, 0, false), { next: 'timer', ms: 4 });
  // In between, it stays: a batch at twice the delay would no longer be small.
  assert.deepEqual(p.after(5000, p.batchBytes * 0.75, 0.1, 4, 0, false), { next: 'timer', ms: 4 });
  assert.deepEqual(p.after(50, 5000, p.busyMs * 0.75, 4, 0, false), { next: 'timer', ms: 4 });
});

test('a pacer woken by the BPF side on fill grows to its latency bound, whatever the ring size', () => {
  // vigil_ring_ctl: the sensors wake the reader once the ring fills, so the ring no longer caps the delay.
  const p = new DrainPacer({ size: 16 << 20, woken: true });
  assert.equal(p.maxMs, WOKEN_MAX_DELAY_MS);
  p.wake(0);
  assert.deepEqual(steady(p, 2048, 8, 700, 20_000), [2, 4, 8, 16, 32, 32, 32, 32]);
  assert.equal(new DrainPacer({ size: 1 << 20, woken: true, maxMs: 64 }).maxMs, 64, 'a 1 MiB ring too');
  // The batch and busy bounds still hold: a dense stream keeps short delays.
  const dense = new DrainPacer({ size: 16 << 20, woken: true });
  dense.wake(0);
  assert.ok(steady(dense, 512 * 1024, 10).every((ms) => ms <= 1));
});

test('the drain pacer keeps a dense stream on short delays, leaving the ring its headroom', () => {
  const size = 16 << 20;
  for (const [perMs, settles] of [[512 * 1024, 1], [128 * 1024, 4], [16 * 1024, 16]] as const) {
    const p = new DrainPacer({ size });
    p.wake(0);
    const delays = steady(p, perMs, 10);
    for (const ms of delays) assert.ok(ms * perMs <= size / 16, `${perMs} B/ms: a ${ms} ms batch stays within 1/16 of the ring`);
    assert.equal(delays.at(-1), settles, `${perMs} B/ms settles at ${settles} ms`);
  }
});

test('the drain pacer judges a batch by the time it took to gather, not by its size alone', () => {
  const p = new DrainPacer({ size: 16 << 20 });
  p.wake(0);
  // 0.5 MB per ms: a drain right after a cut-short one finds little, but in little time: no growth.
  assert.deepEqual(p.after(700, 50_000, 0.05, 0.1, 0, false), { next: 'timer', ms: 1 });
  // The same records gathered over a late timer (10 ms instead of 1) are a slow stream: growth.
  assert.deepEqual(p.after(700, 50_000, 0.05, 10, 0, false), { next: 'timer', ms: 2 });
});

test('the drain pacer goes idle on an empty drain and restarts from the minimum', () => {
  const p = new DrainPacer({ size: 16 << 20 });
  p.wake(0);
  p.after(1, 100, 0.1, 1, 0, false);
  p.after(1, 100, 0.1, 2, 0, false);
  assert.equal(p.delayMs, 4);
  assert.deepEqual(p.after(0, 0, 0, 4, 0, false), { next: 'idle' });
  assert.equal(p.delayMs, 1);
  assert.deepEqual(p.wake(0), { next: 'timer', ms: 1 });
});

test('the drain pacer drains again at once when the ring is filling or a pass was cut short', () => {
  const size = 1 << 20;
  const p = new DrainPacer({ size, urgentFill: 0.5 });
  assert.deepEqual(p.wake(size / 2), { next: 'immediate' });
  assert.deepEqual(p.after(10, 1000, 0.1, 1, size / 2, false), { next: 'immediate' });
  assert.deepEqual(p.after(32768, 1000, 0.1, 1, 0, true), { next: 'immediate' });
  assert.equal(p.maxMs, p.minMs, 'a 1 MiB ring never batches beyond the minimum');
  assert.equal(new DrainPacer({ size: 16 << 20, maxMs: 4 }).maxMs, 4, 'the option caps it too');
  assert.throws(() => new DrainPacer({ size, minMs: 0 }), { code: 'EINVAL' });
});

test('a consumer position crossing 4 GiB is published as one 64-bit store', () => {
  const start = 2 ** 32 - 16;
  const r = new FakeRing(4096, start);
  r.push(rec(1)); // 24 bytes: the position goes from 2^32-16 to 2^32+8
  r.push(rec(2));
  const c = new RingConsumer(r.layout);
  assert.equal(collect(c).length, 2);
  assert.equal(r.consumerPos(), BigInt(start + 48));
});

test('drain respects its record budget and continues later', () => {
  const r = new FakeRing(8192);
  for (let i = 0; i < 100; i++) r.push(rec(i));
  const c = new RingConsumer(r.layout);
  assert.equal(collect(c, 30).length, 30);
  assert.equal(collect(c, 30).length, 30);
  assert.equal(collect(c).length, 40);
});

test('a throwing handler is counted and the loop goes on', () => {
  const r = new FakeRing(4096);
  for (let i = 0; i < 5; i++) r.push(rec(i));
  const c = new RingConsumer(r.layout);
  const seen: number[] = [];
  const errors: unknown[] = [];
  c.onHandlerError = (e) => errors.push(e);
  c.drain((v, off) => {
    const first = v.getUint8(off);
    if (first === 2) throw new Error('bad record');
    seen.push(first);
  });
  assert.deepEqual(seen, [0, 1, 3, 4]);
  assert.equal(c.counters.handlerErrors, 1);
  assert.equal(errors.length, 1);
  assert.equal(c.counters.received, 5);
});

test('readInto reuses one record and releases it on the next read; read copies', () => {
  const r = new FakeRing(4096);
  r.push(rec(1));
  r.push(rec(2), DISCARD);
  r.push(rec(3));
  const c = new RingConsumer(r.layout);
  const one: RingRecord = { view: r.layout.data, offset: 0, length: 0 };
  assert.ok(c.readInto(one));
  assert.equal(one.length, 12);
  assert.equal(one.view.getUint8(one.offset), 1);
  assert.equal(r.consumerPos(), 0n, 'the record stays reserved while in use');
  const copy = c.read();
  assert.deepEqual(copy && [...copy], [...rec(3)]);
  assert.equal(c.read(), null);
  assert.equal(r.consumerPos(), BigInt(r.prod));
  assert.equal(c.counters.discarded, 1);
});

test('rejects a ring whose size is not a power of two', () => {
  const r = new FakeRing(4096);
  assert.throws(() => new RingConsumer({ ...r.layout, size: 3000 }), { code: 'EINVAL' });
});
