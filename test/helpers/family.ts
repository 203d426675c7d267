// The scripted process family of the process resolver's privileged tests (test/fixtures/family.c): builds it,
// runs it, and collects the truth it reports about itself (one JSON line per fact, pids as the processes saw
// them). Shared by the BPF-mode test and the test that compares the BPF and eBPF-less trees of one run.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { ROOT } from './privileged.ts';

/** One fact the family reported: the scenario `s`, usually a `pid`, and scenario-specific fields. */
export type Truth = { s: string; pid?: number; [k: string]: unknown };

/** Secrets the family puts in argv and env: none may appear in any output. */
export const FAMILY_SECRETS = ['hunter2', 'S3cr3tPw', 'pa55w0rd', 'AKIAabcdefSECRETxyz', 'tok3nvalue99', 'envsecret1', 'envsecret2'];

/** Polls `pred` every 20 ms; throws naming `what` after `ms`. Bounded waits, not timing assertions. */
export async function until(pred: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Compiles test/fixtures/family.c into `dir`; returns the binary's path. Throws with gcc's output. */
export function buildFamily(dir: string): string {
  const bin = path.join(dir, 'family');
  execFileSync('gcc', ['-O1', '-pthread', '-o', bin, path.join(ROOT, 'test/fixtures/family.c')], { stdio: 'pipe' });
  return bin;
}

export interface RunningFamily {
  child: ChildProcess;
  /** Every fact reported so far, in order. */
  truth: Truth[];
  /** The first fact of scenario `s` (throws when it was not reported). */
  one(s: string): Truth;
  all(s: string): Truth[];
  /** Every pid the family reported. */
  pids(): number[];
  /** Resolves once the family reported "done": every scenario ran, the long-lived members still live. */
  done(): Promise<void>;
  /** Lets the long-lived members (the root, the grandchild) exit; resolves when the root has exited. */
  release(): Promise<void>;
}

/**
 * Starts the family binary with `dir` as its scratch dir. It is killed (by its pid) when the test ends if
 * still running; its members exit with it (they wait on a pipe the root holds).
 */
export function startFamily(t: TestContext, bin: string, dir: string): RunningFamily {
  const child = spawn(bin, [dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const truth: Truth[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      truth.push(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
  });
  const one = (s: string): Truth => {
    const x = truth.find((f) => f.s === s);
    if (!x) throw new Error(`the family did not report "${s}"`);
    return x;
  };
  return {
    child,
    truth,
    one,
    all: (s) => truth.filter((x) => x.s === s),
    pids: () => truth.filter((x) => x.pid).map((x) => x.pid!),
    done: () => until(() => truth.some((x) => x.s === 'done'), 'the family to finish its scenarios', 30_000),
    release: async () => {
      child.stdin!.end('release\n');
      await exited;
    },
  };
}
