// Child processes for benchmarks: spawn a helper, read the JSON lines it prints, wait for it with a bound,
// and kill it by the pid we started (never by name). Every child is tracked, so killAll() on any way out of
// the benchmark leaves nothing running.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const live = new Set<BenchChild>();

/** A spawned helper whose stdout is a sequence of JSON lines. */
export class BenchChild {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  #lines: string[] = [];
  #waiters: (() => void)[] = [];
  #stderr = '';
  #exit: Promise<number | null>;
  #exited = false;

  /** Throws if the process cannot be started (the error names the command). `env` replaces ours. */
  constructor(name: string, cmd: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.name = name;
    this.proc = spawn(cmd, args, { cwd: o.cwd, env: o.env, stdio: ['pipe', 'pipe', 'pipe'] });
    if (this.proc.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
    this.pid = this.proc.pid;
    live.add(this);
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      this.#lines.push(l);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.proc.stderr!.on('data', (d: Buffer) => {
      // Kept for error messages only, and bounded: a chatty child must not grow this without limit.
      if (this.#stderr.length < 16384) this.#stderr += d.toString();
    });
    this.proc.stdin!.on('error', () => {}); // a child that exits early closes its stdin: not our error
    this.#exit = new Promise((resolve) => {
      this.proc.on('exit', (code, sig) => {
        this.#exited = true;
        live.delete(this);
        for (const w of this.#waiters.splice(0)) w();
        resolve(code ?? (sig ? -1 : null));
      });
      this.proc.on('error', () => {
        this.#exited = true;
        live.delete(this);
        for (const w of this.#waiters.splice(0)) w();
        resolve(null);
      });
    });
  }

  get stderr(): string {
    return this.#stderr.trim();
  }

  /** The next JSON line the child prints. Throws on timeout, on exit without a line, or on bad JSON. */
  async json<T = Record<string, unknown>>(timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (this.#lines.length === 0) {
      if (this.#exited) throw new Error(`${this.name} (pid ${this.pid}) exited without output${this.#stderr ? `: ${this.stderr}` : ''}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name} (pid ${this.pid}) printed nothing within ${timeoutMs} ms${this.#stderr ? `: ${this.stderr}` : ''}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const line = this.#lines.shift()!;
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new Error(`${this.name} (pid ${this.pid}) printed a line that is not JSON: ${line}`);
    }
  }

  /**
   * The child's report: its next JSON line (within `lineMs`), then its exit (within `exitMs`, with success).
   * On any way out, the child is killed by its pid, so a failed wait leaves nothing running.
   */
  async report<T = Record<string, unknown>>(lineMs: number, exitMs: number): Promise<T> {
    try {
      const r = await this.json<T>(lineMs);
      await this.exited(exitMs);
      return r;
    } finally {
      await this.kill();
    }
  }

  /** Writes to the child's stdin. */
  send(text: string): void {
    this.proc.stdin!.write(text);
  }

  /** Sends a signal to our pid, if it is still ours to signal. */
  signal(sig: NodeJS.Signals): void {
    if (!this.#exited) this.proc.kill(sig);
  }

  /** Waits for exit; throws when it does not exit in time or exits with a failure. */
  async exited(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const code = await Promise.race([this.#exit, timeout]);
    clearTimeout(timer);
    if (code === 'timeout') throw new Error(`${this.name} (pid ${this.pid}) did not exit within ${timeoutMs} ms`);
    if (code !== 0) throw new Error(`${this.name} (pid ${this.pid}) exited with status ${code}${this.#stderr ? `: ${this.stderr}` : ''}`);
  }

  /** SIGKILL by pid and wait (bounded) for the exit. Idempotent. */
  async kill(): Promise<void> {
    if (this.#exited) return;
    this.proc.kill('SIGKILL');
    await Promise.race([this.#exit, new Promise((r) => setTimeout(r, 2000))]);
  }
}

/** Kills every child still running, by its pid. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.kill()));
}

/** Synchronous last resort for process exit paths, where nothing can be awaited. */
export function killAllSync(): void {
  for (const c of live) {
    try {
      c.proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Kills children on SIGINT/SIGTERM/exit of the benchmark itself, then lets the signal end the process. */
export function killChildrenOnExit(): void {
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAllSync();
      process.kill(process.pid, sig);
    });
  }
}
