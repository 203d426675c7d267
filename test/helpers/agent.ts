// Helpers for tests that run the real agent in-process: a temp data dir and socket, a sink that keeps every
// event it gets, and waiting for events that match a predicate (bounded; not a timing assertion).
import path from 'node:path';
import { runCommand, type Run } from './run.ts';
import type { TestContext } from 'node:test';
import { Agent } from '../../src/agent/agent.ts';
import { ApiServer } from '../../src/api/server.ts';
import { loadConfig, merge, validateConfig, type VigilConfig } from '../../src/config/config.ts';
import type { RuntimeClient } from '../../src/containers/runtimes/types.ts';
import type { OutputEvent, Sink, SinkStats } from '../../src/pipeline/types.ts';
import { ROOT, tempDir } from './privileged.ts';

/** Keeps every event it is given; delivery is immediate, so the accounting is trivially exact. */
export class MemorySink implements Sink {
  readonly name = 'memory';
  readonly events: OutputEvent[] = [];
  write(ev: OutputEvent): void {
    this.events.push(ev);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  stats(): SinkStats {
    return { received: this.events.length, sent: this.events.length, dropped: {}, queued: 0, retries: 0 };
  }
  find(pred: (e: OutputEvent) => boolean): OutputEvent | undefined {
    return this.events.find(pred);
  }
  /** Waits until an event matches; returns it. */
  async waitFor(pred: (e: OutputEvent) => boolean, what: string, ms = 30_000): Promise<OutputEvent> {
    const end = Date.now() + ms;
    for (;;) {
      const e = this.events.find(pred);
      if (e) return e;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; ${this.events.length} events seen`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

export interface TestAgent {
  agent: Agent;
  sink: MemorySink;
  dir: string;
  socket: string;
  config: VigilConfig;
  /** Starts the API on the test's socket (stopped at the end of the test). */
  api(): Promise<ApiServer>;
}

/**
 * Starts the real agent with a memory sink and no other sink; stopped when the test ends. With `configFile`,
 * the configuration is that YAML file under the test's own settings (data dir, socket, sinks off), read
 * again by Agent.reload() as `vigil run` reads its file.
 */
export async function startTestAgent(t: TestContext, o: { config?: unknown; configFile?: string; runtimeClients?: RuntimeClient[] } = {}): Promise<TestAgent> {
  const dir = tempDir(t, 'vigil-agent-');
  const socket = path.join(dir, 'vigil.sock');
  const base = merge({ agent: { dataDir: path.join(dir, 'data'), socket }, sinks: { stdout: { enabled: false }, store: { enabled: false } } }, o.config ?? {});
  const file = o.configFile;
  const load = file ? () => loadConfig({ file, overrides: [base] }) : undefined;
  const config = load ? load() : validateConfig(base, 'test');
  const sink = new MemorySink();
  const agent = new Agent({ config, load, runtimeClients: o.runtimeClients, sinks: [sink] });
  let api: ApiServer | undefined;
  t.after(async () => {
    await api?.close();
    await agent.stop();
  });
  await agent.start();
  return {
    agent,
    sink,
    dir,
    socket,
    config,
    async api() {
      api = new ApiServer(agent, { socket });
      await api.start();
      return api;
    },
  };
}

/**
 * Runs `bin/vigil <args>` without blocking this process: an in-process agent under test must keep
 * answering its API while the CLI talks to it (spawnSync would deadlock until the client's timeout).
 */
export function runCli(args: string[], timeoutMs = 30_000): Promise<Run> {
  return runCommand(path.join(ROOT, 'bin/vigil'), args, { timeoutMs });
}
