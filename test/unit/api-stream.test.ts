// The event stream's subscriber (GET /v1/events/stream): SSE records of the lines the router gives it, a
// batch per write, a buffer reused only once its write is done, a client that does not read losing batches,
// counted.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { test } from 'node:test';
import { SSE_BATCH, SSE_MAX_BUFFERED, subscribeStream } from '../../src/api/stream.ts';
import { Router } from '../../src/pipeline/router.ts';
import type { OutputEvent } from '../../src/pipeline/types.ts';

const ev = (i: number, comm = 'sh'): OutputEvent => ({ type: 'exec', time: '2026-11-23T00:00:00.000Z', ktimeNs: i, process: { pid: 10 + i, comm } });

/** A socket stand-in: keeps each write (copied) and its callback, to call later or at once. */
class Client {
  writableLength = 0;
  readonly writes: { bytes: Buffer; arrayBuffer: ArrayBufferLike; done: () => void }[] = [];
  write(chunk: Buffer, done: () => void): void {
    this.writes.push({ bytes: Buffer.from(chunk), arrayBuffer: chunk.buffer, done });
  }
}

test('an event stream writes SSE records of its lines, a batch per write, in order, by its filter', async () => {
  const r = new Router();
  const c = new Client();
  subscribeStream(r, 'sse:unix', { comm: 'sh' }, c);
  const n = SSE_BATCH + 10;
  for (let i = 0; i < n; i++) {
    r.publish(ev(i), JSON.stringify(ev(i)));
    r.publish(ev(i, 'other'), JSON.stringify(ev(i, 'other'))); // not the filter's
    r.deliverDue();
  }
  assert.equal(c.writes.length, 1, 'a full batch is written at once');
  await new Promise((res) => setImmediate(res)); // the rest at the end of the turn
  assert.equal(c.writes.length, 2);
  const text = c.writes.map((w) => w.bytes.toString('utf8')).join('');
  assert.equal(text, Array.from({ length: n }, (_, i) => `data: ${JSON.stringify(ev(i))}\n\n`).join(''));
  assert.equal(c.writes[0]!.bytes.toString('utf8').split('\n\n').length - 1, SSE_BATCH);
});

test("a stream's write buffer is reused only once its write is done", async () => {
  const r = new Router();
  const c = new Client();
  subscribeStream(r, 'sse:unix', {}, c);
  const batch = (k: number) => {
    for (let i = 0; i < SSE_BATCH; i++) r.publish(ev(k * SSE_BATCH + i), JSON.stringify(ev(k * SSE_BATCH + i)));
    r.deliverDue();
  };
  batch(0);
  batch(1); // the first write is not done: a buffer of its own
  assert.notEqual(c.writes[1]!.arrayBuffer, c.writes[0]!.arrayBuffer);
  c.writes[1]!.done();
  batch(2); // the second write is done: its buffer again
  assert.equal(c.writes[2]!.arrayBuffer, c.writes[1]!.arrayBuffer);
  // What was written is what each write said when it was made, reuse or not.
  for (const [k, w] of c.writes.entries()) assert.ok(w.bytes.toString('utf8').startsWith(`data: ${JSON.stringify(ev(k * SSE_BATCH))}\n\n`));
});

test('a client that does not read loses its batches, counted as failed; the others still get theirs', async () => {
  const r = new Router();
  const stuck = new Client();
  stuck.writableLength = SSE_MAX_BUFFERED + 1;
  const fine = new Client();
  const a = subscribeStream(r, 'sse:unix', {}, stuck);
  subscribeStream(r, 'sse:unix', {}, fine);
  for (let i = 0; i < 5; i++) r.publish(ev(i), JSON.stringify(ev(i)));
  await new Promise((res) => setImmediate(res));
  assert.equal(stuck.writes.length, 0);
  assert.equal(fine.writes.length, 1);
  assert.equal(r.stats().find((s) => s.id === a)!.failed, 5);
});
