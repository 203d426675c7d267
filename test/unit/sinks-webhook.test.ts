// Webhook sink against an in-process HTTP server: batching by size and age, retries on 5xx/429/network
// errors/timeouts with Retry-After honoured, no retry on other 4xx, bounded queue, exact drop accounting.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import type { OutputEvent, SinkStats } from '../../src/pipeline/types.ts';
import { WebhookSink } from '../../src/sinks/webhook.ts';

function balanced(s: SinkStats): void {
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  assert.equal(s.received, s.sent + dropped + s.queued, `received = sent + dropped + queued: ${JSON.stringify(s)}`);
}

function event(i: number): [OutputEvent, string] {
  const ev: OutputEvent = { type: 'exec', time: new Date(1_700_000_000_000 + i).toISOString(), ktimeNs: i, process: { pid: 1000 + i, comm: 'sh' } };
  return [ev, JSON.stringify(ev)];
}

type Reply = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

interface Fake {
  url: string;
  requests: { at: number; body: unknown; headers: http.IncomingHttpHeaders }[];
  /** Received event ids (ktimeNs), in arrival order, from 2xx-answered requests. */
  delivered: number[];
  /** Resolves when n requests have arrived. */
  waitRequests(n: number): Promise<void>;
}

/** A local HTTP server; `answer(n)` decides the reply to the n-th request (0-based). Closed after the test. */
async function fakeServer(t: TestContext, answer: (n: number) => Reply): Promise<Fake> {
  const requests: Fake['requests'] = [];
  const delivered: number[] = [];
  let waiters: { n: number; resolve: () => void }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
      const n = requests.length;
      requests.push({ at: Date.now(), body, headers: req.headers });
      const r = answer(n);
      if (r !== 'hang') {
        if (r.status >= 200 && r.status < 300) for (const ev of body as OutputEvent[]) delivered.push(ev.ktimeNs);
        res.writeHead(r.status, r.headers ?? {});
        res.end(r.body ?? '');
      }
      const ready = waiters.filter((w) => requests.length >= w.n);
      waiters = waiters.filter((w) => requests.length < w.n);
      for (const w of ready) w.resolve();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    delivered,
    waitRequests: (n) => (requests.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

const fast = { initialBackoffMs: 1, maxBackoffMs: 5 };

describe('WebhookSink', () => {
  it('POSTs JSON arrays in batches of maxBatch, in order, with configured headers', async (t) => {
    const srv = await fakeServer(t, () => ({ status: 200 }));
    const sink = new WebhookSink({ url: srv.url, maxBatch: 10, concurrency: 1, headers: { authorization: 'Bearer x' } });
    for (let i = 0; i < 25; i++) sink.write(...event(i));
    await sink.flush();
    assert.deepEqual(srv.requests.map((r) => (r.body as unknown[]).length), [10, 10, 5]);
    assert.deepEqual(srv.delivered, Array.from({ length: 25 }, (_, i) => i));
    assert.equal(srv.requests[0]!.headers.authorization, 'Bearer x');
    assert.equal(srv.requests[0]!.headers['content-type'], 'application/json');
    const s = sink.stats();
    assert.deepEqual(s, { received: 25, sent: 25, dropped: {}, queued: 0, retries: 0 });
    await sink.close();
    balanced(sink.stats());
  });

  it('sends a partial batch once it is maxBatchAgeMs old, without flush()', async (t) => {
    const srv = await fakeServer(t, () => ({ status: 204 }));
    const sink = new WebhookSink({ url: srv.url, maxBatch: 1000, maxBatchAgeMs: 20 });
    for (let i = 0; i < 5; i++) sink.write(...event(i));
    await srv.waitRequests(1);
    assert.equal((srv.requests[0]!.body as unknown[]).length, 5);
    await sink.close();
    assert.equal(sink.stats().sent, 5);
    balanced(sink.stats());
  });

  it('retries 5xx with backoff until delivered', async (t) => {
    const srv = await fakeServer(t, (n) => (n < 2 ? { status: 500 } : n === 2 ? { status: 503 } : { status: 200 }));
    const sink = new WebhookSink({ url: srv.url, ...fast });
    for (let i = 0; i < 3; i++) sink.write(...event(i));
    await sink.flush();
    const s = sink.stats();
    assert.equal(srv.requests.length, 4);
    assert.equal(s.retries, 3);
    assert.equal(s.sent, 3);
    assert.match(s.lastError ?? '', /HTTP 503/);
    assert.ok(!s.lastError?.includes('hook?'), 'no query string in errors');
    assert.deepEqual(srv.delivered, [0, 1, 2]);
    await sink.close();
    balanced(sink.stats());
  });

  it('honours Retry-After on 429 (waits at least that long)', async (t) => {
    const srv = await fakeServer(t, (n) => (n === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
    const sink = new WebhookSink({ url: srv.url, ...fast });
    sink.write(...event(1));
    await sink.flush();
    assert.equal(srv.requests.length, 2);
    // A lower bound the sink must respect, not a performance assertion: the retry may not come sooner.
    assert.ok(srv.requests[1]!.at - srv.requests[0]!.at >= 950, `retried after ${srv.requests[1]!.at - srv.requests[0]!.at} ms`);
    assert.equal(sink.stats().retries, 1);
    await sink.close();
    balanced(sink.stats());
  });

  it('clamps a huge Retry-After to maxRetryAfterMs', async (t) => {
    const srv = await fakeServer(t, (n) => (n === 0 ? { status: 503, headers: { 'retry-after': '86400' } } : { status: 200 }));
    const sink = new WebhookSink({ url: srv.url, maxRetryAfterMs: 10, ...fast });
    sink.write(...event(1));
    await sink.flush();
    assert.equal(sink.stats().sent, 1);
    await sink.close();
    balanced(sink.stats());
  });

  it('does not retry other 4xx: drops the batch with the status as reason', async (t) => {
    const srv = await fakeServer(t, (n) => (n === 0 ? { status: 400 } : { status: 200 }));
    const sink = new WebhookSink({ url: srv.url, maxBatch: 4, concurrency: 1, ...fast });
    for (let i = 0; i < 6; i++) sink.write(...event(i));
    await sink.flush();
    const s = sink.stats();
    assert.equal(srv.requests.length, 2, 'one request per batch, no retry of the 400');
    assert.deepEqual(s.dropped, { 'http-400': 4 });
    assert.equal(s.sent, 2);
    assert.equal(s.retries, 0);
    await sink.close();
    balanced(sink.stats());
  });

  it('times out a hanging server, retries, then drops as retries-exhausted', async (t) => {
    const srv = await fakeServer(t, () => 'hang');
    const sink = new WebhookSink({ url: srv.url, timeoutMs: 50, maxRetries: 2, ...fast });
    for (let i = 0; i < 3; i++) sink.write(...event(i));
    await sink.flush();
    const s = sink.stats();
    assert.equal(srv.requests.length, 3, 'first attempt + 2 retries');
    assert.deepEqual(s.dropped, { 'retries-exhausted': 3 });
    assert.equal(s.retries, 2);
    assert.match(s.lastError ?? '', /no answer .* within 50 ms/);
    await sink.close();
    balanced(sink.stats());
  });

  it('retries network errors (connection refused)', async (t) => {
    const srv = await fakeServer(t, () => ({ status: 200 }));
    const dead = http.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise((r) => dead.close(r));
    const sink = new WebhookSink({ url: `http://127.0.0.1:${port}/`, maxRetries: 3, ...fast });
    sink.write(...event(1));
    await sink.flush();
    const s = sink.stats();
    assert.deepEqual(s.dropped, { 'retries-exhausted': 1 });
    assert.equal(s.retries, 3);
    assert.match(s.lastError ?? '', /ECONNREFUSED|fetch failed/);
    assert.equal(srv.requests.length, 0);
    await sink.close();
    balanced(sink.stats());
  });

  it('bounds the queue while the server hangs: queue-full drops, memory stays at the bound', async (t) => {
    const srv = await fakeServer(t, () => 'hang');
    const sink = new WebhookSink({ url: srv.url, maxQueue: 100, maxBatch: 10, concurrency: 1, timeoutMs: 60_000, closeTimeoutMs: 20 });
    for (let i = 0; i < 1000; i++) sink.write(...event(i));
    let s = sink.stats();
    assert.equal(s.queued, 100);
    assert.equal(s.dropped['queue-full'], 900);
    balanced(s);
    await srv.waitRequests(1);
    // One batch of 10 is in flight (hanging): it still counts against the bound.
    for (let i = 0; i < 50; i++) sink.write(...event(2000 + i));
    s = sink.stats();
    assert.equal(s.queued, 100);
    assert.equal(s.dropped['queue-full'], 950);
    balanced(s);
    await sink.close();
    s = sink.stats();
    assert.equal(s.queued, 0);
    assert.equal(s.dropped.shutdown, 100, 'queued and in-flight events are given up at close, counted');
    balanced(s);
  });

  it('counts writes after close; close is idempotent', async (t) => {
    const srv = await fakeServer(t, () => ({ status: 200 }));
    const sink = new WebhookSink({ url: srv.url });
    const a = sink.close();
    assert.equal(sink.close(), a);
    await a;
    sink.write(...event(1));
    assert.deepEqual(sink.stats().dropped, { closed: 1 });
    balanced(sink.stats());
  });

  it('keeps several batches in flight with concurrency > 1 and still flushes exactly', async (t) => {
    const srv = await fakeServer(t, () => ({ status: 200 }));
    const sink = new WebhookSink({ url: srv.url, maxBatch: 7, concurrency: 4 });
    for (let i = 0; i < 100; i++) sink.write(...event(i));
    await sink.flush();
    assert.equal(srv.delivered.length, 100);
    assert.deepEqual([...srv.delivered].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
    await sink.close();
    balanced(sink.stats());
  });
});
