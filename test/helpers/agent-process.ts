// `bin/vigil run` as a user runs it, in a child process: its stderr (progress, accounting) collected as lines,
// its stdout (events) handed line by line to the test, a bounded wait for a progress line, a stop by signal
// that resolves with the exit code, and a SIGKILL by PID after the test if it is still running. Also a
// Server-Sent Events client for the agent's API socket.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { ROOT } from './privileged.ts';

/**
 * A configuration file for `vigil run --config`, in `dir`: the agent's API socket and data directory under
 * `dir` (vigil.sock, data/), then the lines the test writes (write(), again for a reload).
 */
export function agentConfig(dir: string): { path: string; socket: string; dataDir: string; write: (...lines: string[]) => string } {
  const c = { path: path.join(dir, 'vigil.yaml'), socket: path.join(dir, 'vigil.sock'), dataDir: path.join(dir, 'data') };
  const write = (...lines: string[]): string => {
    fs.writeFileSync(c.path, `${['agent:', `  socket: ${c.socket}`, `  dataDir: ${c.dataDir}`, ...lines].join('\n')}\n`);
    return c.path;
  };
  return { ...c, write };
}

/** The `events:` lines of a configuration with exec events alone (no exits, files, network or other syscalls). */
export const EXEC_EVENTS_ONLY: readonly string[] = ['events:', '  process: { exec: true, exit: false, creds: false, comm: false }', '  files: false', '  network: false', '  other: false'];

export interface AgentProcessOptions {
  /** Called with every stdout line (an event's JSON when piped). Keep it cheap: the agent can be fast. */
  onStdoutLine?: (line: string) => void;
  /** 'ignore': stdout goes to /dev/null (events are still written, as JSON: it is not a terminal). */
  stdout?: 'pipe' | 'ignore';
  env?: NodeJS.ProcessEnv;
}

export class AgentProcess {
  readonly child: ChildProcess;
  readonly stderr: string[] = [];
  #errBuf = '';
  #outBuf = '';
  #exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(args: string[], o: AgentProcessOptions) {
    // bin/vigil execs node: the child's pid is the agent's.
    this.child = spawn(path.join(ROOT, 'bin/vigil'), args, { stdio: ['ignore', o.stdout ?? 'pipe', 'pipe'], env: o.env ?? process.env });
    this.#exit = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    this.child.on('error', () => {});
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => {
      this.#errBuf += d;
      let nl: number;
      while ((nl = this.#errBuf.indexOf('\n')) >= 0) {
        this.stderr.push(this.#errBuf.slice(0, nl));
        this.#errBuf = this.#errBuf.slice(nl + 1);
      }
    });
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (d: string) => {
      this.#outBuf += d;
      let start = 0;
      let nl: number;
      while ((nl = this.#outBuf.indexOf('\n', start)) >= 0) {
        o.onStdoutLine?.(this.#outBuf.slice(start, nl));
        start = nl + 1;
      }
      this.#outBuf = this.#outBuf.slice(start);
    });
  }

  /** Spawns `bin/vigil <args>`; SIGKILLed by PID after the test if it still runs then. */
  static start(t: TestContext, args: string[], o: AgentProcessOptions = {}): AgentProcess {
    const a = new AgentProcess(args, o);
    t.after(async () => {
      if (a.running) {
        a.child.kill('SIGKILL');
        await a.#exit;
      }
    });
    return a;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resident memory of the agent now, in bytes (VmRSS); undefined once it exited. */
  rss(): number | undefined {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : undefined;
    } catch {
      return undefined;
    }
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits until a stderr line matches; returns it. Fails with the whole stderr if the agent exits first. */
  async waitForStderr(re: RegExp, what: string, ms = 60_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.stderr.find((l) => re.test(l));
      if (hit) return hit;
      if (!this.running) throw new Error(`vigil run exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}:\n${this.stderr.join('\n')}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${this.stderr.join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends `sig` and resolves with how the agent exited (bounded: SIGKILL after `ms`). */
  async stop(sig: NodeJS.Signals = 'SIGTERM', ms = 60_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill(sig);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    const r = await this.#exit;
    clearTimeout(timer);
    return r;
  }

  /** Resolves when the agent exited by itself. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.#exit;
  }

  /** The `accounting:` lines printed at stop, parsed: one record of key=value pairs per line, by its label. */
  accounting(): { kernel: Record<string, number>; pipeline: Record<string, number>; sinks: Record<string, Record<string, number>>; verdict: string } {
    const out = { kernel: {} as Record<string, number>, pipeline: {} as Record<string, number>, sinks: {} as Record<string, Record<string, number>>, verdict: '' };
    const pairs = (s: string) => Object.fromEntries([...s.matchAll(/([\w.-]+)=(-?\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
    for (const l of this.stderr) {
      const m = /^vigil: accounting: (kernel|pipeline|sink (\S+)|balanced|NOT balanced)(.*)$/.exec(l);
      if (!m) continue;
      if (m[1] === 'kernel') out.kernel = pairs(m[3]!);
      else if (m[1] === 'pipeline') out.pipeline = pairs(m[3]!);
      else if (m[2]) out.sinks[m[2]] = pairs(m[3]!);
      else out.verdict = `${m[1]}${m[3]}`;
    }
    return out;
  }
}

/** An open SSE subscription: every `data:` payload received so far, in order. */
export interface SseStream {
  readonly lines: string[];
  /** Resolves once the server sent its opening comment (the subscription is registered by then). */
  readonly ready: Promise<void>;
  close(): void;
}

/** Subscribes to `urlPath` (e.g. /v1/events/stream?pid=1) on the agent's unix socket; closed after the test. */
export function sse(t: TestContext, socketPath: string, urlPath: string, keep: (line: string) => boolean = () => true): SseStream {
  const lines: string[] = [];
  let buf = '';
  let req: http.ClientRequest | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    req = http.get({ socketPath, path: urlPath, agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => reject(new Error(`SSE ${urlPath}: HTTP ${res.statusCode}: ${body}`)));
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (msg.startsWith(':')) resolve();
          for (const l of msg.split('\n')) if (l.startsWith('data: ') && keep(l.slice(6))) lines.push(l.slice(6));
        }
      });
      res.on('error', () => {});
    });
    req.on('error', reject);
  });
  const close = () => req?.destroy();
  t.after(close);
  return { lines, ready, close };
}

/** GET on the agent's unix socket: status code and body text. */
export function unixGet(socketPath: string, urlPath: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
