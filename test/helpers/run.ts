// Running a command to completion in tests: its exit status (null when a signal or the timeout ended it)
// and its whole output, never a rejection, so that a test asserts on what happened.
import { execFile } from 'node:child_process';

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
