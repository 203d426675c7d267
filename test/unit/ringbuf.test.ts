// The ring-buffer consume loop over synthetic memory laid out like the kernel's: busy records, discarded
// records, wrap-around (the data area mirrored, as the kernel's double mapping makes it), 4 GiB position
// crossings, and throwing handlers. No privileges needed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RingConsumer, type RingLayout, type RingRecord } from '../../src/ringbuf/ringbuf.ts';

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
