// Bad command lines: every command with a bad flag value, an unknown option or an unknown command exits 2
// (usage) with a message naming the flag, before any agent or store is asked; --help of every command exits
// 0. The command matrix runs main() in-process (fast); a few cases run bin/vigil itself, so the exit codes
// are proven end to end. (That `vigil run` with a bad configuration never touches the kernel is proven
// under strace in test/privileged/cli-run-errors.test.ts.) No privileges needed.
import assert from 'node:assert/strict';
import path from 'node:path';
import { runCommand, type Run } from '../helpers/run.ts';
import { test } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { ROOT, tempDir } from '../helpers/privileged.ts';

const VIGIL = path.join(ROOT, 'bin/vigil');

const run = (cmd: string, args: string[], o: { cwd?: string } = {}): Promise<Run> => runCommand(cmd, args, o);

/**
 * main() in this process, with its output captured and its exit code taken back (process.exitCode must not
 * leak into the test runner's own exit status).
 */
async function vigil(args: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const ow = process.stdout.write;
  const ew = process.stderr.write;
  process.stdout.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => (err.push(String(s)), true)) as typeof process.stderr.write;
  let status: number;
  try {
    await main(['node', 'vigil', ...args]);
    status = Number(process.exitCode ?? 0);
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
    process.exitCode = undefined;
  }
  return { status, stdout: out.join(''), stderr: err.join('') };
}

/** Runs the jobs with at most `n` processes at a time (the machine has two cores and other tests). */
async function pool<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

test('--help of every command exits 0 and describes it', async () => {
  const cases: [string[], RegExp][] = [
    [['--help'], /Usage: vigil \[options\] \[command\][\s\S]*run[\s\S]*status[\s\S]*events[\s\S]*containers[\s\S]*ps/],
    [['help'], /Usage: vigil/],
    [['help', 'run'], /Usage: vigil run/],
    [['run', '--help'], /--config <file>[\s\S]*--set <key=value>[\s\S]*--process-mode <mode>/],
    [['status', '--help'], /--socket <path>/],
    [['events', '--help'], /--since <duration>[\s\S]*--limit <n>/],
    [['containers', '--help'], /--json/],
    [['ps', '--help'], /--tree[\s\S]*--pid <pid>/],
    [['ps', '-h'], /Usage: vigil ps/],
  ];
  const got: Run[] = [];
  for (const [args] of cases) got.push(await vigil(args));
  cases.forEach(([args, want], i) => {
    const r = got[i]!;
    assert.equal(r.status, 0, `vigil ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stdout, want, `vigil ${args.join(' ')}`);
    assert.equal(r.stderr, '', `vigil ${args.join(' ')} wrote to stderr`);
  });
});

// A timeout, not a hang, if a `run` case were ever accepted (run() would then serve until a signal).
test('bad flags, unknown options and commands exit 2 naming what was wrong', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t, 'vigil-cli-');
  // No agent answers here and no store exists: a usage error must be found before either is looked for.
  const sock = ['--socket', path.join(dir, 'none.sock')];
  const cases: [string[], RegExp][] = [
    [[], /Usage: vigil/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['--bogus'], /unknown option '--bogus'/],
    [['run', '--bogus'], /unknown option '--bogus'/],
    [['run', '--set', 'nope'], /--set.*nope: expected key\.path=value/],
    [['run', '--set', '=5'], /--set.*expected key\.path=value/],
    [['run', '--set', 'a..b=1'], /--set.*a\.\.b: not a configuration path/],
    [['run', '--set', 'ring.sizeMiB=3'], /ring\.sizeMiB: must be a power of two/],
    [['run', '--set', 'ring.sizeMiB=big'], /ring\.sizeMiB: expected a number, got "big"/],
    [['run', '--set', 'nosuchsection.x=1'], /\(root\): unknown field "nosuchsection"/],
    [['run', '--process-mode', 'bogus'], /--process-mode <mode>.*'bogus' is invalid.*auto, bpf, procfs/],
    [['run', '--process-mode'], /--process-mode <mode>.*argument missing/],
    [['run', '--config'], /--config <file>.*argument missing/],
    [['run', 'extra'], /too many arguments for 'run'/],
    [['events', '--since', 'yesterdayish', ...sock], /--since <duration>.*'yesterdayish' is invalid.*Expected a duration/],
    [['events', '--since', '5', ...sock], /--since <duration>.*'5' is invalid/],
    [['events', '--since', '10x', ...sock], /--since <duration>.*'10x' is invalid/],
    [['events', '--type', 'EXEC', ...sock], /--type <types>.*'EXEC' is invalid/],
    [['events', '--type', ',', ...sock], /--type <types>/],
    [['events', '--limit', '0', ...sock], /--limit <n>.*'0' is invalid.*1 to 100000/],
    [['events', '--limit', '1e3', ...sock], /--limit <n>.*'1e3' is invalid/],
    [['events', '--pid', '-1', ...sock], /--pid|unknown option '-1'/],
    [['events', '--pid', '99999999999', ...sock], /--pid <pid>.*is invalid/],
    [['ps', '--pid', 'abc', ...sock], /--pid <pid>.*'abc' is invalid.*integer from 1 to 4194304/],
    [['ps', '--pid', '0', ...sock], /--pid <pid>.*'0' is invalid/],
    [['ps', '--pid', '1.5', ...sock], /--pid <pid>.*'1.5' is invalid/],
    [['ps', '--json', '--dot', ...sock], /--json and --dot are exclusive/],
    [['ps', '--bogus'], /unknown option '--bogus'/],
    [['status', '--bogus'], /unknown option '--bogus'/],
    [['status', '--socket'], /--socket <path>.*argument missing/],
    [['containers', '--frob'], /unknown option '--frob'/],
    [['containers', 'extra'], /too many arguments for 'containers'/],
  ];
  const got: Run[] = [];
  for (const [args] of cases) got.push(await vigil(args));
  cases.forEach(([args, want], i) => {
    const r = got[i]!;
    const what = `vigil ${args.join(' ')}`;
    assert.equal(r.status, 2, `${what}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, want, what);
    assert.doesNotMatch(r.stderr, /\n\s+at .*\.ts:\d+/, `${what}: a stack trace instead of a message`);
    assert.doesNotMatch(r.stderr, /no agent answers|no store/, `${what}: looked for an agent before checking its flags`);
  });
});


test('bin/vigil itself: help exits 0, usage errors and bad configurations exit 2', async (t) => {
  const dir = tempDir(t, 'vigil-cli-bin-');
  const cases: [string[], number, RegExp][] = [
    [['run', '--help'], 0, /Usage: vigil run/],
    [['ps', '--pid', 'abc'], 2, /--pid <pid>.*'abc' is invalid/],
    [['run', '--data-dir', path.join(dir, 'data'), '--set', 'ring.sizeMiB=3'], 2, /ring\.sizeMiB: must be a power of two/],
  ];
  const got = await pool(cases, 3, ([args]) => run(VIGIL, args));
  cases.forEach(([args, code, want], i) => {
    const r = got[i]!;
    assert.equal(r.status, code, `vigil ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    assert.match(code === 0 ? r.stdout : r.stderr, want);
  });
});
