// Hostile clients against the agent's API, served by a real in-process agent (process mode procfs, so no BPF
// and no privileges): bad and unknown query parameters on every endpoint (seeded fuzzing with an oracle for
// what is valid), repeated parameters, unknown routes, wrong methods, bodies, oversized headers, malformed
// HTTP, slow, aborted and non-reading clients. Every bad request gets a 4xx JSON error naming what was wrong
// (`field`); nothing gets a 500; the agent keeps serving; no subscriber is left behind. The TCP listener is
// refused without a token and answers 401 without the right one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { ApiServer, parseSince } from '../../src/api/server.ts';
import { InvalidArgumentError } from '../../src/bpf/errors.ts';
import type { OutputEvent } from '../../src/pipeline/types.ts';
import { startTestAgent, type TestAgent } from '../helpers/agent.ts';
import { fuzz, type Rng } from '../helpers/fuzz.ts';
import { tempDir } from '../helpers/privileged.ts';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: { error?: string; field?: string } & Record<string, unknown>;
}

/** One request on a fresh connection; the body is read in full (event streams are cut after the first chunk). */
function request(target: { socketPath: string } | { port: number; host: string }, method: string, url: string, o: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // An explicit length: Node sends a DELETE's or GET's body without one, which is itself malformed HTTP.
    const headers = o.body === undefined ? o.headers : { 'content-length': String(Buffer.byteLength(o.body)), ...o.headers };
    const req = http.request({ ...target, method, path: url, headers, agent: false, timeout: 20_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      const done = () => {
        let json = {};
        if ((res.headers['content-type'] ?? '').includes('json') && text) json = JSON.parse(text);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      };
      if ((res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        res.once('data', (d) => {
          text += d;
          req.destroy(); // an aborted stream client, too
          done();
        });
        return;
      }
      res.on('data', (d) => (text += d));
      res.on('end', done);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${method} ${url}`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Raw bytes on a fresh connection; resolves with whatever came back before the server closed it. */
function raw(socketPath: string, bytes: string | Buffer): Promise<{ status: number; json: { error?: string; field?: string } }> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socketPath);
    let got = '';
    c.setEncoding('utf8');
    c.on('data', (d) => (got += d));
    c.on('error', () => undefined); // the server may reset after answering
    c.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0);
      const body = got.slice(got.indexOf('\r\n\r\n') + 4);
      try {
        resolve({ status, json: body ? JSON.parse(body) : {} });
      } catch {
        reject(new Error(`not JSON: ${JSON.stringify(got.slice(0, 300))}`));
      }
    });
    c.setTimeout(20_000, () => c.destroy());
    c.end(bytes);
  });
}

const FIELDS_OUTSIDE_QUERY = new Set(['url', 'method', 'body', 'headers', 'request', 'store']);

/** The contract of an error answer: 4xx, JSON, an error message, and `field` when given names something sent. */
function assertClientError(a: Answer | { status: number; json: { error?: string; field?: string } }, what: string, sent: Iterable<string> = []): void {
  assert.ok(a.status >= 400 && a.status < 500, `${what}: status ${a.status}: ${JSON.stringify(a.json)}`);
  assert.equal(typeof a.json.error, 'string', `${what}: no JSON error: ${JSON.stringify(a.json)}`);
  assert.ok(a.json.error!.length > 0 && a.json.error!.length < 1000, `${what}: error of ${a.json.error!.length} chars`);
  if (a.status === 400) {
    const names = new Set(sent);
    assert.ok(typeof a.json.field === 'string' && (names.has(a.json.field) || FIELDS_OUTSIDE_QUERY.has(a.json.field)), `${what}: field ${JSON.stringify(a.json.field)} names nothing sent (${[...names].join(', ')})`);
  }
}

/** The agent without BPF; the store only where /v1/events must answer (each store is a worker thread). */
async function startAgent(t: TestContext, o: { store?: boolean } = {}): Promise<{ ta: TestAgent; sock: { socketPath: string } }> {
  const ta = await startTestAgent(t, {
    config: { process: { mode: 'procfs' }, containers: { enabled: false }, events: { files: false, network: false, other: false }, sinks: { store: { enabled: o.store ?? false } } },
  });
  await ta.api();
  return { ta, sock: { socketPath: ta.socket } };
}

async function stillServing(sock: { socketPath: string }, ta: TestAgent, subscribers: number): Promise<void> {
  const st = await request(sock, 'GET', '/v1/status');
  assert.equal(st.status, 200, `the agent stopped serving: ${st.text.slice(0, 200)}`);
  assert.equal(st.json.state, 'running');
  // Subscribers of aborted streams go away with their connection (asynchronously: wait, bounded).
  const end = Date.now() + 5000;
  while (ta.agent.router.size !== subscribers && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.equal(ta.agent.router.size, subscribers, 'event stream subscribers left behind');
}

test('bad parameters on every endpoint: 400 naming the parameter, then the agent keeps serving', async (t) => {
  const { ta, sock } = await startAgent(t, { store: true });
  const base = ta.agent.router.size;
  const cases: [string, number, string | undefined][] = [
    ['/v1/events?since=yesterdayish', 400, 'since'],
    ['/v1/events?since=5', 400, 'since'],
    ['/v1/events?since=99999999999999999999d', 400, 'since'],
    ['/v1/events?since=2026-13-45', 400, 'since'],
    ['/v1/events?since=1%202%203', 400, 'since'],
    ['/v1/events?type=EXEC', 400, 'type'],
    ['/v1/events?type=exec;drop', 400, 'type'],
    ['/v1/events?pid=abc', 400, 'pid'],
    ['/v1/events?pid=0', 400, 'pid'],
    ['/v1/events?pid=-1', 400, 'pid'],
    ['/v1/events?pid=99999999999', 400, 'pid'],
    ['/v1/events?pid=4194305', 400, 'pid'],
    ['/v1/events?limit=0', 400, 'limit'],
    ['/v1/events?limit=100001', 400, 'limit'],
    ['/v1/events?limit=1e3', 400, 'limit'],
    ['/v1/events?type=exec&type=open', 400, 'type'],
    ['/v1/events?container=a&container=b', 400, 'container'],
    ['/v1/events?sinse=1h', 400, 'sinse'],
    ['/v1/events?__proto__=1', 400, '__proto__'],
    ['/v1/events?constructor=x', 400, 'constructor'],
    ['/v1/processes?pid=abc', 400, 'pid'],
    ['/v1/processes?pid=0', 400, 'pid'],
    ['/v1/processes?format=xml', 400, 'format'],
    ['/v1/processes?format=json&format=dot', 400, 'format'],
    ['/v1/processes?tree=yes', 400, 'tree'],
    ['/v1/processes?argv=2', 400, 'argv'],
    ['/v1/processes?bogus=1', 400, 'bogus'],
    ['/v1/processes?container=no-such-container', 404, undefined],
    ['/v1/processes?pid=4194304', 404, undefined],
    ['/v1/events/stream?pid=abc', 400, 'pid'],
    ['/v1/events/stream?type=Bad', 400, 'type'],
    ['/v1/events/stream?comm=a&comm=b', 400, 'comm'],
    ['/v1/events/stream?unknown=1', 400, 'unknown'],
    ['/v1/status?x=1', 400, 'x'],
    ['/v1/containers?all=1', 400, 'all'],
    ['/%', 400, 'url'],
    ['/v1/nope', 404, undefined],
    ['/v2/status', 404, undefined],
    ['/', 404, undefined],
    ['/v1/status/extra', 404, undefined],
  ];
  for (const [url, status, field] of cases) {
    const a = await request(sock, 'GET', url);
    assert.equal(a.status, status, `GET ${url}: ${a.text.slice(0, 200)}`);
    assertClientError(a, `GET ${url}`, field ? [field] : []);
    assert.equal(a.json.field, field, `GET ${url}: ${a.text}`);
  }
  // The valid forms of the same parameters work.
  for (const url of ['/v1/events?since=10m&type=exec,exit&limit=5&pid=1', '/v1/events?since=2026-01-01', '/v1/events?since=', '/v1/processes?pid=1&tree=1&argv=0', '/v1/processes?format=dot', '/v1/containers', '/metrics?anything=1']) {
    const a = await request(sock, 'GET', url);
    assert.equal(a.status, 200, `GET ${url}: ${a.text.slice(0, 300)}`);
  }
  await stillServing(sock, ta, base);
});

test('wrong methods are 405 with Allow, bodies are never parsed, oversized or malformed requests are JSON 4xx', async (t) => {
  const { ta, sock } = await startAgent(t);
  const base = ta.agent.router.size;
  for (const url of ['/v1/status', '/v1/processes', '/v1/containers', '/v1/events', '/v1/events/stream', '/v1/rules', '/metrics']) {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const a = await request(sock, method, url, { headers: { 'content-type': 'application/json' }, body: '{"not": valid json' });
      assert.equal(a.status, 405, `${method} ${url}: ${a.text}`);
      assert.equal(a.json.field, 'method');
      assert.equal(a.headers.allow, 'GET, HEAD');
      assertClientError(a, `${method} ${url}`);
    }
  }
  assert.equal((await request(sock, 'POST', '/v1/nope', { body: '{' })).status, 404);
  const big = await request(sock, 'POST', '/v1/status', { headers: { 'content-type': 'application/json' }, body: Buffer.alloc(100_000, 0x7b) });
  assert.equal(big.status, 413);
  assert.equal(big.json.field, 'body');
  // A body on a GET is read and ignored, whatever it claims to be.
  assert.equal((await request(sock, 'GET', '/v1/status', { headers: { 'content-type': 'application/json' }, body: '{bad' })).status, 200);
  assert.equal((await request(sock, 'GET', '/v1/status', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '%%%' })).status, 200);

  const s = ta.socket;
  const headers = await raw(s, `GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.equal(headers.status, 431);
  assert.equal(headers.json.field, 'headers');
  const url = await raw(s, `GET /v1/events?since=${'1'.repeat(20_000)}m HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(url.status, 431);
  for (const bytes of ['hello\r\n\r\n', 'FOO /v1/status HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /v1/status HTTP/9.9\r\nHost: x\r\n\r\n', Buffer.from([0, 1, 2, 0xff, 13, 10, 13, 10]), 'POST /v1/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'GET /v1/status HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n']) {
    const a = await raw(s, bytes);
    assertClientError(a, `raw ${JSON.stringify(String(bytes)).slice(0, 60)}`);
    if (a.status === 400) assert.equal(a.json.field, 'request');
  }
  await stillServing(sock, ta, base);
});

// ---- fuzzing with an oracle ------------------------------------------------------------------------------

const ENDPOINTS: Record<string, readonly string[]> = {
  '/v1/events': ['since', 'type', 'container', 'pid', 'limit'],
  '/v1/processes': ['tree', 'pid', 'format', 'argv', 'container'],
  '/v1/events/stream': ['type', 'pid', 'container', 'comm', 'namespace', 'pod'],
  '/v1/status': [],
  '/v1/containers': [],
};

const validInt = (v: string, min: number, max: number) => v === '' || (/^\d{1,10}$/.test(v) && Number(v) >= min && Number(v) <= max);
const validTypes = (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean).every((x) => /^[a-z_]{2,40}$/.test(x));
function validSince(v: string): boolean {
  if (v === '') return true;
  try {
    parseSince(v);
    return true;
  } catch {
    return false;
  }
}

/** Whether one parameter's value is valid for its endpoint (the documented rules, written out again). */
function validParam(name: string, v: string): boolean {
  switch (name) {
    case 'since': return validSince(v);
    case 'type': return validTypes(v);
    case 'pid': return validInt(v, 1, 4_194_304);
    case 'limit': return validInt(v, 1, 100_000);
    case 'format': return v === 'json' || v === 'dot';
    case 'tree':
    case 'argv': return v === '0' || v === '1';
    default: return true;
  }
}

function anyValue(rng: Rng, name: string): string {
  const good: Record<string, string[]> = {
    since: ['10m', '30s', '2h', '1d', '500ms', '2026-01-01', '2026-11-22T08:00:00Z', '2026-11-22T08:00:00.123+02:00'],
    type: ['exec', 'exec,exit', 'open, connect', 'tcp_state'],
    pid: ['1', String(process.pid), '4194304', '77'],
    limit: ['1', '100', '100000'],
    format: ['json', 'dot'],
    tree: ['0', '1'],
    argv: ['0', '1'],
  };
  const junk = ['', '0', '-1', '1.5', '1e3', '0x10', ' 1', '1 ', '+1', '4194305', '99999999999', '100001', 'EXEC', ',,', 'exec,', 'a', 'x'.repeat(41), '10', '10x', '5', 'yesterday', '2026-13-45', '2026-02-30', '日本', 'é', '\u0000', '<script>', "'; drop", '..', '%', '&', '=', '#', 'null', 'true', '[]', '{}', 'ß'.repeat(500)];
  if (rng.chance(0.5) && good[name]) return rng.pick(good[name]!);
  return rng.chance(0.2) ? rng.ascii(0, 30) : rng.pick(junk);
}

function queryString(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

test('fuzzed query strings: valid ones answer, invalid ones are 400 naming a bad parameter, nothing is a 500', async (t) => {
  const { ta, sock } = await startAgent(t, { store: true });
  const base = ta.agent.router.size;
  let ok = 0;
  let bad = 0;
  await fuzz(t, 'api queries', 150, async (rng) => {
    const url = rng.pick(Object.keys(ENDPOINTS));
    const known = ENDPOINTS[url]!;
    const pairs: [string, string][] = [];
    for (let n = rng.int(0, 4); n > 0; n--) {
      const name = rng.chance(0.85) && known.length ? rng.pick(known) : rng.pick(['bogus', '__proto__', 'constructor', 'a b', '日本', 'Since', 'pid[]', 'x'.repeat(100)]);
      pairs.push([name, anyValue(rng, name)]);
    }
    const names = pairs.map(([k]) => k);
    const repeated = names.filter((k, i) => names.indexOf(k) !== i);
    const invalid = new Set<string>([...repeated, ...names.filter((k) => !known.includes(k)), ...pairs.filter(([k, v]) => known.includes(k) && !validParam(k, v)).map(([k]) => k)]);
    const full = pairs.length ? `${url}?${queryString(pairs)}` : url;
    const a = await request(sock, 'GET', full);
    assert.ok(a.status < 500, `GET ${full}: ${a.status} ${a.text.slice(0, 300)}`);
    if (invalid.size) {
      bad++;
      assert.equal(a.status, 400, `GET ${full} accepted (invalid: ${[...invalid].join(', ')}): ${a.text.slice(0, 200)}`);
      assertClientError(a, `GET ${full}`, invalid);
    } else {
      ok++;
      const notFound = url === '/v1/processes' && a.status === 404; // a pid or container that does not exist
      assert.ok(a.status === 200 || notFound, `GET ${full}: ${a.status} ${a.text.slice(0, 300)}`);
      if (notFound) assertClientError(a, `GET ${full}`);
    }
  });
  assert.ok(ok > 20 && bad > 20, `both kinds exercised: ${ok} valid, ${bad} invalid`);
  await stillServing(sock, ta, base);
});

test('slow, aborted and non-reading clients: the agent keeps serving and keeps its memory bounded', async (t) => {
  const { ta, sock } = await startAgent(t);
  const base = ta.agent.router.size; // the rule engine's subscription
  // A client that sends half a request and waits: others are served meanwhile.
  const slow = net.connect(ta.socket);
  await new Promise<void>((r) => slow.once('connect', () => r()));
  slow.write('GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  for (let i = 0; i < 5; i++) assert.equal((await request(sock, 'GET', '/v1/processes?pid=1')).status, 200);
  slow.destroy();

  // Clients that vanish at every stage of a request.
  const stages = ['GET /v1/events/stream?type=exec HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /v1/events?since=1h HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /v1/proc', 'POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"a":'];
  for (let i = 0; i < 40; i++) {
    const c = net.connect(ta.socket);
    c.on('error', () => undefined);
    await new Promise<void>((r) => c.once('connect', () => r()));
    c.write(stages[i % stages.length]!);
    if (i % 2) await new Promise((r) => setTimeout(r, 5));
    c.destroy();
  }
  await stillServing(sock, ta, base);

  // An event stream client that stops reading: its events are dropped and counted, not buffered without end.
  const reader = net.connect(ta.socket);
  reader.on('error', () => undefined);
  await new Promise<void>((r) => reader.once('connect', () => r()));
  // A type no real event has: the agent's own events (it watches this machine) stay out of the count.
  reader.write('GET /v1/events/stream?type=fuzz_probe HTTP/1.1\r\nHost: x\r\n\r\n');
  const end = Date.now() + 5000;
  while (ta.agent.router.size !== base + 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.equal(ta.agent.router.size, base + 1, 'the stream subscribed');
  reader.pause();
  const line = JSON.stringify({ type: 'fuzz_probe', time: new Date().toISOString(), ktimeNs: 1, pad: 'x'.repeat(64 << 10) });
  const ev: OutputEvent = { type: 'fuzz_probe', time: '', ktimeNs: 1 };
  const published = 400; // ~26 MB of events for a client that reads none of them
  for (let i = 0; i < published; i++) {
    ta.agent.router.publish(ev, line);
    if (i % 20 === 19) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 50));
  const sub = ta.agent.router.stats().find((x) => x.name.startsWith('sse:'));
  assert.ok(sub, 'the stream subscriber');
  assert.equal(sub.delivered + sub.dropped + sub.queued, published, `every event accounted for: ${JSON.stringify(sub)}`);
  assert.ok(sub.dropped > 0, `a client that does not read loses events (counted): ${JSON.stringify(sub)}`);
  assert.ok(sub.delivered * line.length < 16 << 20, `at most a bounded backlog was written for it: ${sub.delivered} events`);
  assert.equal((await request(sock, 'GET', '/v1/status')).status, 200, 'others are served meanwhile');
  reader.destroy();
  await stillServing(sock, ta, base);
});

test('the API socket: 0600, a running agent\'s socket is never taken over or removed, a stale one is replaced', async (t) => {
  const { ta, sock } = await startAgent(t);
  assert.equal(fs.statSync(ta.socket).mode & 0o777, 0o600);
  const second = new ApiServer(ta.agent, { socket: ta.socket });
  await assert.rejects(second.start(), (e: unknown) => e instanceof InvalidArgumentError && /agent\.socket: .* is in use by a running agent/.test(e.message));
  await assert.rejects(second.preflight(), /in use/);
  await second.close();
  assert.ok(fs.existsSync(ta.socket), 'the failed second server removed the running one\'s socket');
  assert.equal((await request(sock, 'GET', '/v1/status')).status, 200);
  // A path that is not a socket is refused and left alone (a typo must not delete a file).
  const dir = tempDir(t, 'vigil-api-stale-');
  const file = path.join(dir, 'important.conf');
  fs.writeFileSync(file, 'keep me');
  const onFile = new ApiServer(ta.agent, { socket: file });
  await assert.rejects(onFile.start(), /agent\.socket: .*important\.conf exists and is not a socket/);
  await assert.rejects(new ApiServer(ta.agent, { socket: dir }).start(), /exists and is not a socket/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'keep me');
  // A stale socket (its agent was killed, nobody answers) is replaced.
  const stale = path.join(dir, 'stale.sock');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  await once(child, 'exit');
  assert.ok(fs.lstatSync(stale).isSocket(), 'a stale socket was left behind');
  const third = new ApiServer(ta.agent, { socket: stale });
  t.after(() => third.close());
  await third.start();
  assert.equal((await request({ socketPath: stale }, 'GET', '/v1/status')).status, 200);
  await third.close();
  assert.equal(fs.existsSync(stale), false, 'removed at close');
});

test('TCP: refused without a token, bad addresses rejected up front, 401 without the right token', async (t) => {
  const { ta } = await startAgent(t);
  const dir = tempDir(t, 'vigil-api-tcp-');
  const socket = path.join(dir, 'tcp.sock');
  assert.throws(() => new ApiServer(ta.agent, { socket, listen: '127.0.0.1:0' }), (e: unknown) => e instanceof InvalidArgumentError && /agent\.listen: a TCP listen needs agent\.token/.test(e.message));
  for (const listen of ['localhost', '127.0.0.1', ':9750', '127.0.0.1:99999', '127.0.0.1:port', 'a b:1', '[::1:9750']) {
    assert.throws(() => new ApiServer(ta.agent, { socket, listen, token: 't' }), /agent\.listen: expected host:port/, listen);
  }
  assert.equal(fs.existsSync(socket), false, 'a rejected server created nothing');
  const token = 'f3b1c2d4e5a6-token';
  const api = new ApiServer(ta.agent, { socket, listen: '127.0.0.1:0', token });
  t.after(() => api.close());
  await api.start();
  const tcp = { host: '127.0.0.1', port: api.tcpPort! };
  assert.ok(tcp.port > 0);
  for (const auth of [undefined, '', 'Bearer', `Bearer ${token}x`, `bearer ${token}`, `Bearer  ${token}`, token, `Basic ${token}`, `Bearer ${token.slice(0, -1)}`]) {
    const a = await request(tcp, 'GET', '/v1/status', { headers: auth === undefined ? {} : { authorization: auth } });
    assert.equal(a.status, 401, `authorization ${JSON.stringify(auth)}`);
    assert.match(a.json.error!, /missing or wrong token/);
  }
  const good = { authorization: `Bearer ${token}` };
  assert.equal((await request(tcp, 'GET', '/v1/status', { headers: good })).status, 200);
  const badParam = await request(tcp, 'GET', '/v1/events?pid=abc', { headers: good });
  assert.equal(badParam.status, 400);
  assert.equal(badParam.json.field, 'pid');
  // Unauthenticated requests learn nothing about routes or parameters.
  assert.equal((await request(tcp, 'GET', '/v1/events?pid=abc')).status, 401);
  assert.equal((await request(tcp, 'POST', '/v1/nope')).status, 401);
  await api.close();
  assert.equal(fs.existsSync(socket), false);
});

test('agent.metrics: false leaves /metrics unserved; the rest of the API still answers', async (t) => {
  const ta = await startTestAgent(t, {
    config: { agent: { metrics: false }, process: { mode: 'procfs' }, containers: { enabled: false }, events: { files: false, network: false, other: false } },
  });
  await ta.api();
  const sock = { socketPath: ta.socket };
  assert.equal((await request(sock, 'GET', '/metrics')).status, 404);
  assert.equal((await request(sock, 'GET', '/v1/status')).status, 200);
});
