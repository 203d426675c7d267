// A real nats-server with JetStream for tests: started on a loopback port with its own temp store, stopped by
// its PID (never by name) and its store removed after the test, even when the test fails. Plus a reader
// that consumes a stream's messages back, for asserting what a sink published.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { IN_CI } from './privileged.ts';

export const NATS_NEEDS = 'the nats-server binary (Debian package nats-server)';

/** Gate: true when nats-server runs here; skips (outside CI) or fails (CI=true) otherwise. */
export function haveNatsServer(t: TestContext, needs = NATS_NEEDS): boolean {
  const r = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  if (r.status === 0) return true;
  if (IN_CI) assert.fail(`test needs ${needs}; in CI every integration test must run`);
  t.skip(`needs ${needs}`);
  return false;
}

/** A TCP port nobody listens on right now (loopback). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** A nats-server with JetStream on a loopback port and a temp store; killed by pid after the test. */
export class NatsServer {
  readonly port: number;
  readonly dir: string;
  private proc: ChildProcess | undefined;
  private log = '';

  constructor(t: TestContext, port: number) {
    this.port = port;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-nats-'));
    t.after(async () => {
      await this.stop();
      fs.rmSync(this.dir, { recursive: true, force: true });
    });
  }

  /** Starts a server on a free loopback port (cleaned up after the test). */
  static async start(t: TestContext): Promise<NatsServer> {
    const s = new NatsServer(t, await freePort());
    await s.start();
    return s;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async start(): Promise<void> {
    const proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.on('error', () => {});
    proc.stdout!.on('data', (b: Buffer) => (this.log += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (this.log += b.toString()));
    const deadline = Date.now() + 15_000;
    while (!this.log.includes('Server is ready')) {
      if (proc.exitCode !== null) throw new Error(`nats-server exited (${proc.exitCode}):\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not start:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.proc?.pid) process.kill(this.proc.pid, sig);
  }

  /** SIGKILL: an abrupt crash, acks in flight are lost. Resolves once it exited. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    this.log = '';
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    process.kill(p.pid!, 'SIGKILL');
    await exited;
  }
}

export interface StreamMessage {
  seq: number;
  subject: string;
  msgId: string | undefined;
  data: string;
}

/**
 * Consumes a stream's messages (optionally only those of `filterSubject`; one subject, as nats-server 2.9
 * knows no lists) with an ordered consumer, from the first, until `expect` were read or a fetch finds nothing
 * more within its expiry.
 */
export async function readStream(nc: NatsConnection, stream: string, o: { expect?: number; filterSubject?: string } = {}): Promise<StreamMessage[]> {
  const js = jetstream(nc);
  const c = await js.consumers.get(stream, o.filterSubject ? { filter_subjects: o.filterSubject } : undefined);
  const out: StreamMessage[] = [];
  const expect = o.expect ?? Infinity;
  while (out.length < expect) {
    const batch = await c.fetch({ max_messages: 500, expires: 1000 });
    let got = 0;
    for await (const m of batch) {
      got++;
      out.push({ seq: m.seq, subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), data: m.string() });
    }
    if (got === 0) break; // nothing more within the fetch's expiry
  }
  return out;
}
