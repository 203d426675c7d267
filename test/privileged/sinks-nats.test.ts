// NATS sink against a real nats-server with JetStream (needs: the nats-server binary, Debian package
// nats-server; no root). Each event must arrive exactly once even when the server is killed and restarted
// mid-stream (at least once + dedupe by Nats-Msg-Id), and a server that stays down costs counted drops.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { OutputEvent, SinkStats } from '../../src/pipeline/types.ts';
import { eventMsgId, NatsSink } from '../../src/sinks/nats.ts';
import { freePort, haveNatsServer, NatsServer, readStream } from '../helpers/nats.ts';

function balanced(s: SinkStats): void {
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  assert.equal(s.received, s.sent + dropped + s.queued, `received = sent + dropped + queued: ${JSON.stringify(s)}`);
}

function event(i: number): [OutputEvent, string] {
  const ev: OutputEvent = { type: i % 2 ? 'exec' : 'exit', time: new Date(1_700_000_000_000 + i).toISOString(), ktimeNs: 1e9 + i, process: { pid: 1000 + (i % 100), comm: 'w' }, seq: i };
  return [ev, JSON.stringify(ev)];
}

/** Every message in the stream, read back with an ordered consumer. */
async function readAll(nc: NatsConnection, stream: string, expect: number): Promise<{ seq: number; subject: string; msgId: string | undefined }[]> {
  return (await readStream(nc, stream, { expect })).map((m) => ({ seq: (JSON.parse(m.data) as { seq: number }).seq, subject: m.subject, msgId: m.msgId }));
}

async function waitFor(cond: () => boolean, what: string, within = 20_000): Promise<void> {
  const deadline = Date.now() + within;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('NatsSink (nats-server + JetStream)', () => {
  it('delivers every event exactly once across a server crash and restart', async (t) => {
    if (!haveNatsServer(t)) return;
    const server = new NatsServer(t, await freePort());
    await server.start();
    const sink = new NatsSink({
      servers: server.url,
      stream: { name: 'VIGIL', create: true, duplicateWindowMs: 120_000 },
      ackTimeoutMs: 500,
      initialBackoffMs: 20,
      maxBackoffMs: 200,
      maxInFlight: 64,
    });
    t.after(() => sink.close());
    const N = 3000;
    let i = 0;
    // Events keep coming while the server crashes, so publishes are in flight when it dies.
    const writer = setInterval(() => {
      for (const end = Math.min(N, i + 20); i < end; i++) sink.write(...event(i));
      if (i >= N) clearInterval(writer);
    }, 2);
    t.after(() => clearInterval(writer));
    await waitFor(() => sink.stats().sent >= 300, 'the first acks');
    await server.stop();
    await waitFor(() => !sink.stats().connected, 'the sink to see the disconnect');
    await waitFor(() => i >= 1500, 'events written while the server is down');
    await server.start();
    await waitFor(() => i >= N, 'all events written');
    await sink.flush(60_000);
    const s = sink.stats();
    assert.equal(s.sent, N, JSON.stringify(s));
    assert.deepEqual(s.dropped, {});
    assert.equal(s.queued, 0);
    balanced(s);

    const nc = await connect({ servers: server.url });
    t.after(() => nc.close());
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info('VIGIL');
    const got = await readAll(nc, 'VIGIL', N);
    assert.equal(got.length, N, 'the stream holds each event once');
    assert.equal(info.state.messages, N);
    const seqs = new Set(got.map((m) => m.seq));
    assert.equal(seqs.size, N, 'no duplicates');
    for (let k = 0; k < N; k++) assert.ok(seqs.has(k), `event ${k} missing`);
    for (const m of got.slice(0, 10)) {
      assert.equal(m.subject, `vigil.events.${m.seq % 2 ? 'exec' : 'exit'}`);
      assert.equal(m.msgId, eventMsgId(event(m.seq)[1]));
    }
    await sink.close();
    balanced(sink.stats());
  });

  it('deduplicates retries of publishes whose ack was lost (server stalled past the ack timeout)', async (t) => {
    if (!haveNatsServer(t)) return;
    const server = new NatsServer(t, await freePort());
    await server.start();
    const sink = new NatsSink({ servers: server.url, stream: { name: 'STALL', create: true }, ackTimeoutMs: 300, initialBackoffMs: 10, maxBackoffMs: 50, maxInFlight: 32 });
    t.after(() => sink.close());
    const N = 2000;
    for (let i = 0; i < N; i++) sink.write(...event(i));
    await waitFor(() => sink.stats().sent >= 100, 'the first acks');
    // SIGSTOP: the server keeps its connections but reads nothing. Publishes in flight sit in its socket
    // buffer, time out here and are published again; on SIGCONT it stores the originals, and the retries
    // (same Nats-Msg-Id) are acknowledged as duplicates instead of stored twice.
    server.signal('SIGSTOP');
    await waitFor(() => sink.stats().retries >= 32, 'every in-flight publish to time out');
    server.signal('SIGCONT');
    await sink.flush(60_000);
    const s = sink.stats();
    assert.equal(s.sent, N, JSON.stringify(s));
    assert.ok(s.duplicates > 0, `retries of stored messages were recognized as duplicates: ${JSON.stringify(s)}`);
    balanced(s);
    const nc = await connect({ servers: server.url });
    t.after(() => nc.close());
    const info = await (await jetstreamManager(nc)).streams.info('STALL');
    assert.equal(info.state.messages, N, 'stored once each');
    const seqs = new Set((await readAll(nc, 'STALL', N)).map((m) => m.seq));
    assert.equal(seqs.size, N);
  });

  it('keeps retrying (and says why) when no stream captures the subject', async (t) => {
    if (!haveNatsServer(t)) return;
    const server = new NatsServer(t, await freePort());
    await server.start();
    const sink = new NatsSink({ servers: server.url, subject: 'nostream.{type}', ackTimeoutMs: 200, initialBackoffMs: 5, maxBackoffMs: 20, closeTimeoutMs: 50 });
    t.after(() => sink.close());
    for (let i = 0; i < 5; i++) sink.write(...event(i));
    await waitFor(() => sink.stats().retries >= 5, 'retries');
    const s = sink.stats();
    assert.match(s.lastError ?? '', /publish nostream\.(exec|exit): no stream captures this subject/);
    assert.equal(s.sent, 0);
    assert.equal(s.queued, 5, 'nothing is dropped while it retries');
    balanced(s);
    await sink.close();
    assert.deepEqual(sink.stats().dropped, { shutdown: 5 });
    balanced(sink.stats());
  });

  it('counts queue-full drops while the server stays down, and shutdown drops at close', async (t) => {
    if (!haveNatsServer(t)) return;
    const server = new NatsServer(t, await freePort());
    await server.start();
    const sink = new NatsSink({
      servers: server.url,
      stream: { name: 'DOWN', create: true },
      maxQueue: 100,
      ackTimeoutMs: 200,
      initialBackoffMs: 10,
      maxBackoffMs: 50,
      closeTimeoutMs: 200,
    });
    t.after(() => sink.close());
    sink.write(...event(0));
    await sink.flush(10_000);
    assert.equal(sink.stats().sent, 1);
    await server.stop();
    for (let i = 1; i <= 500; i++) sink.write(...event(i));
    let s = sink.stats();
    assert.equal(s.dropped['queue-full'], 400, 'in one tick: the bound is exact');
    assert.equal(s.queued, 100);
    balanced(s);
    await waitFor(() => !sink.stats().connected, 'the sink to see the disconnect');
    for (let i = 501; i <= 600; i++) sink.write(...event(i));
    s = sink.stats();
    assert.equal(s.dropped['queue-full'], 500, 'the queue stays full while the server is down');
    assert.ok(s.queued <= 100);
    balanced(s);
    await sink.close();
    s = sink.stats();
    assert.equal(s.queued, 0);
    assert.equal(s.sent + (s.dropped.shutdown ?? 0), 101, 'what was queued is either sent or given up at close');
    assert.equal(s.connected, false);
    balanced(s);
  });
});
