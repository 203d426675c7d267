// The shared sink parts: the bounded ring (both bounds, growth, order), counters, flush waiters, backoff and
// Retry-After parsing, and where a short write leaves off.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { afterWritten, Counters, FlushWaiters, Ring } from '../../src/sinks/queue.ts';
import { backoffDelay, parseRetryAfter, sleep } from '../../src/sinks/retry.ts';

describe('Ring', () => {
  it('keeps FIFO order across growth and wrap-around', () => {
    const r = new Ring<number>(5000, Infinity);
    let next = 0;
    let expect = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 97; i++) assert.ok(r.push(next++, 1));
      for (let i = 0; i < 60; i++) assert.equal(r.shift(), expect++);
    }
    while (r.length) assert.equal(r.shift(), expect++);
    assert.equal(expect, next);
    assert.equal(r.bytes, 0);
    assert.equal(r.shift(), undefined);
  });

  it('refuses past the count bound and past the byte bound, changing nothing', () => {
    const r = new Ring<string>(3, 100);
    assert.ok(r.push('a', 10));
    assert.ok(r.push('b', 10));
    assert.ok(r.push('c', 10));
    assert.equal(r.push('d', 1), false);
    assert.equal(r.length, 3);
    r.shift();
    assert.equal(r.push('big', 81), false, '20 + 81 > 100');
    assert.equal(r.bytes, 20);
    assert.ok(r.push('ok', 80));
    assert.equal(r.bytes, 100);
    assert.deepEqual([r.shift(), r.shift(), r.shift()], ['b', 'c', 'ok']);
  });

  it('clear() reports what it removed', () => {
    const r = new Ring<number>(10, Infinity);
    for (let i = 0; i < 7; i++) r.push(i, 2);
    assert.equal(r.clear(), 7);
    assert.equal(r.length, 0);
    assert.equal(r.bytes, 0);
  });
});

describe('Counters', () => {
  it('snapshots copy the drop map and sum drops', () => {
    const c = new Counters();
    c.received = 10;
    c.sent = 5;
    c.drop('queue-full', 3);
    c.drop('queue-full');
    c.drop('x', 0);
    const s = c.snapshot(1);
    assert.deepEqual(s.dropped, { 'queue-full': 4 });
    c.drop('later');
    assert.deepEqual(s.dropped, { 'queue-full': 4 }, 'a snapshot does not change afterwards');
    assert.equal(c.totalDropped(), 5);
    assert.equal(s.received, s.sent + 4 + s.queued);
  });
});

describe('FlushWaiters', () => {
  it('resolves once the watermark passes the target, or at the timeout', async () => {
    const w = new FlushWaiters();
    let done = false;
    const p = w.wait(10, 3).then(() => (done = true));
    w.notify(9);
    await new Promise((r) => setImmediate(r));
    assert.equal(done, false);
    w.notify(10);
    await p;
    assert.equal(done, true);
    await w.wait(5, 0, 5); // times out
    assert.equal(w.size, 0);
    await w.wait(1, 1); // already there
  });
});

describe('retry timing', () => {
  it('backoff grows exponentially within [step/2, step], capped', () => {
    const o = { initialMs: 100, maxMs: 1000 };
    assert.equal(backoffDelay(0, o, () => 0), 50);
    assert.equal(backoffDelay(0, o, () => 1), 100);
    assert.equal(backoffDelay(3, o, () => 1), 800);
    assert.equal(backoffDelay(4, o, () => 1), 1000);
    assert.equal(backoffDelay(99, o, () => 0), 500);
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('3', now), 3000);
    assert.equal(parseRetryAfter(' 0.25 ', now), 250);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now), 10_000);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
    assert.equal(parseRetryAfter('', now), undefined);
  });

  it('sleep ends early on abort', async () => {
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    ac.abort();
    assert.equal(await p, false);
    assert.equal(await sleep(1), true);
  });
});

describe('partial writes', () => {
  it('afterWritten: whole buffers written are dropped, a partly written one is cut where the write stopped', () => {
    const b = (s: string) => Buffer.from(s);
    const text = (parts: Buffer[]) => parts.map((x) => x.toString()).join('|');
    const parts = [b('abc'), b(''), b('de'), b('fghi')];
    assert.equal(text(afterWritten(parts, 0)), 'abc||de|fghi');
    assert.equal(text(afterWritten(parts, 2)), 'c||de|fghi');
    assert.equal(text(afterWritten(parts, 3)), 'de|fghi', 'an empty buffer after a whole one goes too');
    assert.equal(text(afterWritten(parts, 4)), 'e|fghi');
    assert.equal(text(afterWritten(parts, 6)), 'ghi');
    assert.deepEqual(afterWritten(parts, 9), []);
    assert.equal(text(parts), 'abc||de|fghi', 'the list given is not changed');
  });
});
