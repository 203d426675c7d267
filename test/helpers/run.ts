// Running a command to completion in tests: its exit status (null when a signal or the timeout ended it)
// and its whole output, never a rejection, so that a test asserts on what happened.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCommand(cmd: string, args: string[], o: { cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: o.timeoutMs ?? 60_000, cwd: o.cwd, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const status = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

/** What runScript saw: the shell's pid (to find its events), its output, and how it ended. */
export interface ScriptRun {
  pid: number;
  out: string;
  err: string;
  code: number | null;
  /** The signal that ended it, or "still running after 15 s" when it did not end in time. */
  signal: string | null;
}

/**
 * Runs `shell -c script` to its end (15 s at most); SIGKILLed by its PID if the test ends first. For tests
 * that match the shell's events by pid and assert how it ended (killed, or its command refused).
 */
export async function runScript(t: TestContext, shell: 'sh' | 'bash', script: string): Promise<ScriptRun> {
  const c = spawn(shell, ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  c.stdout.on('data', (d: Buffer) => (out += d.toString()));
  c.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // 'close', not 'exit': 'exit' may come before the last of the output is read, and a test would see ''.
  const [code, signal] = (await Promise.race([once(c, 'close'), new Promise((r) => setTimeout(() => r([null, 'still running after 15 s']), 15_000))])) as [number | null, string | null];
  return { pid: c.pid!, out, err, code, signal };
}
