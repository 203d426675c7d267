// OTLP sink: the OTLP/HTTP JSON logs mapping (resource, scope, records, semantic-convention attributes),
// partial success, retries, against an in-process collector.
import assert from 'node:assert/strict';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import type { OutputEvent, SinkStats } from '../../src/pipeline/types.ts';
import { isoToUnixNano, OtlpSink, toAnyValue } from '../../src/sinks/otlp.ts';

function balanced(s: SinkStats): void {
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  assert.equal(s.received, s.sent + dropped + s.queued, `received = sent + dropped + queued: ${JSON.stringify(s)}`);
}

interface KV {
  key: string;
  value: Record<string, unknown>;
}
interface Export {
  resourceLogs: { resource: { attributes: KV[] }; scopeLogs: { scope: { name: string }; logRecords: Record<string, unknown>[] }[] }[];
}

async function collector(t: TestContext, answer: (n: number) => { status: number; body?: string; headers?: Record<string, string> }) {
  const got: { path: string; body: Export; type: string }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString()) as Export, type: req.headers['content-type'] ?? '' });
      const a = answer(got.length - 1);
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(a.body ?? '{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got };
}

const exec: OutputEvent = {
  type: 'exec',
  time: '2025-03-01T12:00:00.123456Z',
  ktimeNs: 5_000_000_000,
  process: { pid: 4242, tid: 4242, ppid: 1, key: '4242:99', execId: '4242:99:5', comm: 'curl', exe: '/usr/bin/curl', argv: ['curl', '-s', 'http://x'], uid: 1000, user: 'alice' },
  container: { id: 'c0ffee'.repeat(10) + 'abcd', name: 'web', image: 'nginx:1.27', runtime: 'containerd', enrichment: 'done' },
  pod: { name: 'web-7d9', namespace: 'prod', uid: 'pod-uid-1' },
  filename: '/usr/bin/curl',
};
const exit: OutputEvent = { type: 'exit', time: '2025-03-01T12:00:01Z', ktimeNs: 6_000_000_000, process: { pid: 4242, comm: 'curl' }, exitCode: 3 };

const connectEv: OutputEvent = {
  type: 'connect', group: 'network', time: '2025-03-01T12:00:02Z', ktimeNs: 7e9, process: { pid: 4242 }, ret: 0,
  family: 'AF_INET', protocol: 'tcp', remoteAddress: '10.1.2.3', remotePort: 443, localAddress: '10.0.0.2', localPort: 40000,
};
const openEv: OutputEvent = {
  type: 'open', group: 'file', time: '2025-03-01T12:00:03Z', ktimeNs: 8e9, process: { pid: 4242 }, ret: -13, errno: 'EACCES',
  path: 'shadow', resolvedPath: '/etc/shadow', flagNames: 'O_RDONLY',
};

function attrs(rec: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries((rec.attributes as KV[]).map((a) => [a.key, Object.values(a.value)[0]]));
}

describe('OtlpSink', () => {
  it('maps events to OTLP/JSON log records with semantic-convention attributes', async (t) => {
    const c = await collector(t, () => ({ status: 200 }));
    const sink = new OtlpSink({ endpoint: `${c.endpoint}/`, resourceAttributes: { 'deployment.environment.name': 'test' } });
    sink.write(exec, JSON.stringify(exec));
    sink.write(exit, JSON.stringify(exit));
    sink.write(connectEv, JSON.stringify(connectEv));
    sink.write(openEv, JSON.stringify(openEv));
    await sink.flush();
    assert.equal(c.got.length, 1);
    assert.equal(c.got[0]!.path, '/v1/logs');
    assert.equal(c.got[0]!.type, 'application/json');
    const rl = c.got[0]!.body.resourceLogs;
    assert.equal(rl.length, 1);
    const res = Object.fromEntries(rl[0]!.resource.attributes.map((a) => [a.key, a.value.stringValue]));
    assert.deepEqual(res, { 'service.name': 'vigil', 'host.name': os.hostname(), 'deployment.environment.name': 'test' });
    assert.equal(rl[0]!.scopeLogs[0]!.scope.name, 'vigil');
    const [r0, r1] = rl[0]!.scopeLogs[0]!.logRecords;
    assert.equal(r0!.timeUnixNano, '1740830400123456000');
    assert.equal(typeof r0!.observedTimeUnixNano, 'string');
    assert.equal(r0!.severityText, 'INFO');
    assert.equal(r0!.severityNumber, 9);
    assert.equal(r0!.eventName, 'vigil.exec');
    assert.deepEqual(JSON.parse((r0!.body as { stringValue: string }).stringValue), exec);
    const a0 = attrs(r0!);
    assert.equal(a0['vigil.event.type'], 'exec');
    assert.equal(a0['process.pid'], '4242', 'int64 as a decimal string (OTLP/JSON)');
    assert.equal(a0['process.parent_pid'], '1');
    assert.equal(a0['process.executable.path'], '/usr/bin/curl');
    assert.equal(a0['process.executable.name'], 'curl');
    assert.deepEqual(a0['process.command_args'], { values: [{ stringValue: 'curl' }, { stringValue: '-s' }, { stringValue: 'http://x' }] });
    assert.equal(a0['process.user.name'], 'alice');
    assert.equal(a0['process.user.id'], '1000');
    assert.equal(a0['container.id'], exec.container!.id);
    assert.equal(a0['container.name'], 'web');
    assert.equal(a0['container.image.name'], 'nginx:1.27');
    assert.equal(a0['container.runtime.name'], 'containerd');
    assert.equal(a0['k8s.pod.name'], 'web-7d9');
    assert.equal(a0['k8s.namespace.name'], 'prod');
    assert.equal(a0['k8s.pod.uid'], 'pod-uid-1');
    assert.equal(attrs(r1!)['process.exit.code'], '3');
    const [r2, r3] = rl[0]!.scopeLogs[0]!.logRecords.slice(2);
    assert.deepEqual(
      Object.fromEntries(Object.entries(attrs(r2!)).filter(([k]) => k.startsWith('network.') || k.startsWith('error.'))),
      { 'network.peer.address': '10.1.2.3', 'network.peer.port': '443', 'network.local.address': '10.0.0.2', 'network.local.port': '40000', 'network.transport': 'tcp', 'network.type': 'ipv4' },
    );
    const a3 = attrs(r3!);
    assert.equal(a3['file.path'], '/etc/shadow');
    assert.equal(a3['error.type'], 'EACCES');
    await sink.close();
    balanced(sink.stats());
  });

  it('can send the body as a kvlist', async (t) => {
    const c = await collector(t, () => ({ status: 200 }));
    const sink = new OtlpSink({ url: `${c.endpoint}/custom/logs`, body: 'kvlist' });
    sink.write(exit, JSON.stringify(exit));
    await sink.close();
    assert.equal(c.got[0]!.path, '/custom/logs');
    const body = c.got[0]!.body.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.body as { kvlistValue: { values: KV[] } };
    const m = Object.fromEntries(body.kvlistValue.values.map((kv) => [kv.key, kv.value]));
    assert.deepEqual(m.type, { stringValue: 'exit' });
    assert.deepEqual(m.exitCode, { intValue: '3' });
    assert.ok('kvlistValue' in m.process!);
    balanced(sink.stats());
  });

  it('counts records rejected in a partial success', async (t) => {
    const c = await collector(t, () => ({ status: 200, body: JSON.stringify({ partialSuccess: { rejectedLogRecords: '2', errorMessage: 'too old' } }) }));
    const sink = new OtlpSink({ endpoint: c.endpoint });
    for (let i = 0; i < 5; i++) sink.write(exit, JSON.stringify({ ...exit, ktimeNs: i }));
    await sink.close();
    const s = sink.stats();
    assert.equal(s.sent, 3);
    assert.deepEqual(s.dropped, { rejected: 2 });
    balanced(s);
  });

  it('retries 503 and 429 like the webhook, drops other 4xx', async (t) => {
    const c = await collector(t, (n) => [{ status: 503 }, { status: 429, headers: { 'retry-after': '0' } }, { status: 200 }, { status: 413 }][n] ?? { status: 200 });
    const sink = new OtlpSink({ endpoint: c.endpoint, initialBackoffMs: 1, maxBackoffMs: 2, concurrency: 1, maxBatch: 2 });
    for (let i = 0; i < 4; i++) sink.write(exit, JSON.stringify({ ...exit, ktimeNs: i }));
    await sink.flush();
    const s = sink.stats();
    assert.equal(c.got.length, 4);
    assert.equal(s.retries, 2);
    assert.equal(s.sent, 2);
    assert.deepEqual(s.dropped, { 'http-413': 2 });
    await sink.close();
    balanced(sink.stats());
  });

  it('converts times and values', () => {
    assert.equal(isoToUnixNano('1970-01-01T00:00:01Z'), '1000000000');
    assert.equal(isoToUnixNano('2025-03-01T12:00:00.123456789Z'), '1740830400123456789');
    assert.equal(isoToUnixNano('2025-03-01T12:00:00.5Z'), '1740830400500000000');
    assert.equal(isoToUnixNano('garbage'), undefined);
    assert.deepEqual(toAnyValue([1, 1.5, true, null, 'x']), {
      arrayValue: { values: [{ intValue: '1' }, { doubleValue: 1.5 }, { boolValue: true }, { stringValue: '' }, { stringValue: 'x' }] },
    });
    assert.equal(toAnyValue(undefined), undefined);
  });
});
