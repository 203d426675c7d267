// `vigil run` with a bad configuration, a bad flag or a socket another agent serves exits 2 before touching
// the kernel: under strace it makes no bpf(2) or perf_event_open(2) call at all, and nothing it would create
// (data dir, socket dir) exists afterwards. Needs root and BPF, so that the same command with a good
// configuration would load programs (the proof means something), and strace.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { runCommand, type Run } from '../helpers/run.ts';
import { test } from 'node:test';
import { privileged, ROOT, tempDir } from '../helpers/privileged.ts';

const VIGIL = path.join(ROOT, 'bin/vigil');

const run = (cmd: string, args: string[], o: { cwd?: string } = {}): Promise<Run> => runCommand(cmd, args, o);

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

function hasStrace(): string | undefined {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'strace is not installed';
  }
}

/** Runs `vigil <args>` under strace; returns the result and the bpf-related syscalls it made. */
async function traced(dir: string, args: string[], name: string): Promise<Run & { kernelCalls: string[] }> {
  const log = path.join(dir, `${name}.strace`);
  const r = await run('strace', ['-f', '-qq', '-e', 'trace=bpf,perf_event_open', '-e', 'signal=none', '-o', log, VIGIL, ...args], { cwd: dir });
  const lines = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter((l) => /\b(bpf|perf_event_open)\(/.test(l)) : [];
  return { ...r, kernelCalls: lines };
}

test('vigil run with a bad configuration exits 2 before touching the kernel or creating anything', async (t) => {
  if (!privileged(t, 'root + BPF (a good configuration would load programs) + strace')) return;
  const missing = hasStrace();
  if (missing) return t.skip(missing);
  const dir = tempDir(t, 'vigil-cli-run-');
  // The strace check can fail: bpftool under the same trace makes bpf(2) calls, and they are seen.
  const control = await run('strace', ['-f', '-qq', '-e', 'trace=bpf', '-e', 'signal=none', '-o', path.join(dir, 'control.strace'), 'bpftool', 'map', 'show']);
  if (control.status === null || !fs.existsSync(path.join(dir, 'control.strace'))) return t.skip(`strace cannot trace here: ${control.stderr.slice(0, 200)}`);
  assert.match(fs.readFileSync(path.join(dir, 'control.strace'), 'utf8'), /\bbpf\(/, 'the control run shows its bpf(2) calls');

  fs.writeFileSync(path.join(dir, 'syntax.yaml'), 'ring:\n  sizeMiB: [1\n');
  fs.writeFileSync(path.join(dir, 'latin1.yaml'), Buffer.concat([Buffer.from('agent:\n  token: caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
  fs.writeFileSync(path.join(dir, 'types.yaml'), 'process:\n  mode: sometimes\ncontainers:\n  expirySeconds: 999999999\n');
  // A socket another agent (here: anything that accepts) is serving.
  const live = path.join(dir, 'live.sock');
  const server = net.createServer((c) => c.end());
  await new Promise<void>((res) => server.listen(live, res));
  t.after(() => new Promise<void>((res) => server.close(() => res())));

  const data = path.join(dir, 'data');
  const sockPath = path.join(dir, 'run', 'vigil.sock');
  const common = ['--data-dir', data, '--socket', sockPath, '--no-stdout'];
  const cases: [string, string[], RegExp][] = [
    ['syntax', ['--config', path.join(dir, 'syntax.yaml')], /syntax\.yaml\): line \d+, column \d+/],
    ['latin1', ['--config', path.join(dir, 'latin1.yaml')], /latin1\.yaml\): line 2, column 13: not valid UTF-8/],
    ['types', ['--config', path.join(dir, 'types.yaml')], /process\.mode: expected one of "auto", "bpf", "procfs", got "sometimes"; containers\.expirySeconds: must be at most 3600/],
    ['missing', ['--config', path.join(dir, 'nope.yaml')], /nope\.yaml\): \(file\): cannot read it/],
    ['sink', ['--set', 'sinks.file.bogus=1'], /sinks\.file\.bogus: unknown option/],
    ['syscalls', ['--set', 'events.files.bogus=true'], /events\.files\.bogus: not a known option/],
    ['scrub', ['--set', 'process.scrub.nope=1'], /process\.scrub: unknown field "nope"/],
    ['listen', ['--listen', 'localhost'], /agent\.listen: expected host:port/],
    ['no token', ['--listen', '127.0.0.1:9750'], /agent\.listen: a TCP listen needs agent\.token/],
    ['token file', ['--listen', '127.0.0.1:9750', '--token-file', path.join(dir, 'no-token')], /agent\.tokenFile: .*ENOENT/],
    ['socket too long', ['--socket', `/tmp/${'s'.repeat(120)}.sock`], /agent\.socket: must be at most 107 bytes/],
    ['socket is a file', ['--socket', path.join(dir, 'types.yaml')], /agent\.socket: .*types\.yaml exists and is not a socket/],
  ];
  const got = await pool(cases, 3, ([name, args]) => traced(dir, ['run', ...common, ...args], name.replace(/\W/g, '_')));
  cases.forEach(([name, , want], i) => {
    const r = got[i]!;
    assert.equal(r.status, 2, `${name}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, want, name);
    assert.deepEqual(r.kernelCalls, [], `${name}: touched the kernel`);
    assert.doesNotMatch(r.stderr, /loading|creating|opening sinks/, `${name}: started before validating`);
  });
  // A socket in use is found before anything loads (the second agent must not take over or remove it).
  const inUse = await traced(dir, ['run', '--data-dir', data, '--socket', live, '--no-stdout'], 'in_use');
  assert.equal(inUse.status, 2, inUse.stderr);
  assert.match(inUse.stderr, /agent\.socket: .*live\.sock is in use by a running agent/);
  assert.deepEqual(inUse.kernelCalls, []);
  assert.ok(fs.existsSync(live), 'the other agent keeps its socket');
  assert.match(fs.readFileSync(path.join(dir, 'types.yaml'), 'utf8'), /mode: sometimes/, 'a file named as the socket is left alone');
  // Nothing was created: no data dir, no socket, no socket dir.
  assert.equal(fs.existsSync(data), false, 'the data dir was created');
  assert.equal(fs.existsSync(path.dirname(sockPath)), false, 'the socket dir was created');
});
