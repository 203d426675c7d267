// A sink that stops taking data for longer than the reader's short wait, while the ring has room: `vigil run`
// with one sink, a file sink writing into a FIFO whose reader is stopped (SIGSTOP) for 1 s, as a disk or a
// pipe stalls, while a workload makes 20,000 opens. The sink's queue holds 1,000 lines, the 16 MiB ring the
// rest. No other consumer is held back (no other sink, no stream; the rules do not count), so the reader waits
// for the sink's room (up to creditStallMs, 2 s) instead of reading past it after 100 ms: every open arrives,
// the sink drops nothing, and the accounting balances. With the reader of before 3601e1a (100 ms, then past the
// room) the sink dropped lines as queue-full here.
// Needs root + BPF + gcc.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { AgentStatus } from '../../src/agent/agent.ts';
import { buildWorkload, runWorkload } from '../fixtures/syscalls-harness.ts';
import { AgentProcess, agentConfig, unixGet } from '../helpers/agent-process.ts';
import { until } from '../helpers/containers.ts';
import { privileged, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF + gcc';
const OPENS = 20_000;
const QUEUE = 1000;
const STALL_MS = 1000;

test('a sink stalled for 1 s while the ring has room loses nothing: the reader waits for its room', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const dir = fs.realpathSync(tempDir(t, 'vigil-stall-'));
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  const bin = buildWorkload(dir, 'vigil-stall-wl');
  // The files are made before the agent starts: creating 20,000 files takes seconds on this VM's disk, opening
  // them again ~50 ms, so that the storm during the stall is over long before the reader's 2 s bound.
  await runWorkload(t, bin, [work, 'opens', String(OPENS), 'sub']);
  const fifo = path.join(dir, 'events.fifo');
  execFileSync('mkfifo', [fifo]);
  const out = path.join(dir, 'out.jsonl');

  // The FIFO's reader, which the test stops and continues (by the PID it started).
  const outFd = fs.openSync(out, 'w');
  const cat = spawn('cat', [fifo], { stdio: ['ignore', outFd, 'inherit'] });
  fs.closeSync(outFd);
  t.after(() => {
    if (cat.exitCode === null && cat.signalCode === null) cat.kill('SIGKILL');
  });

  const { socket, write } = agentConfig(dir);
  const configPath = write(
      'events:',
      '  process: { exec: false, exit: false, creds: false, comm: false }',
      '  files: { open: true }',
      '  network: false',
      '  other: false',
      'filters:',
      `  pathPrefixes: ["${work}/"]`,
      'sinks:',
      '  stdout: { enabled: false }',
      '  store: { enabled: false }',
      `  file: { path: "${fifo}", maxQueue: ${QUEUE} }`,
  );
  const agent = AgentProcess.start(t, ['run', '--config', configPath], { stdout: 'ignore' });
  await agent.waitForStderr(/^vigil: running: /, 'the agent to run');
  const status = async () => JSON.parse((await unixGet(socket, '/v1/status')).body) as AgentStatus;

  // The stall: the reader stopped, then the storm, then 1 s during which the sink can write nothing: ten
  // times the reader's wait of before, half its bound now (room for a slow machine).
  process.kill(cat.pid!, 'SIGSTOP');
  const truth = (await runWorkload(t, bin, [work, 'opens', String(OPENS), 'sub'])).find((x) => x.s === 'opens');
  assert.ok(truth, 'the workload made its opens');
  await new Promise((r) => setTimeout(r, STALL_MS));
  const stalled = await status();
  process.kill(cat.pid!, 'SIGCONT');
  const file = stalled.sinks.file!;
  assert.ok(file.queued >= QUEUE * 0.8, `the sink's queue filled during the stall: ${JSON.stringify(file)}`);
  assert.deepEqual(file.dropped, {}, `nothing dropped during the stall: ${JSON.stringify(file)}`);
  assert.ok(stalled.pipeline.records < OPENS, `the rest waited in the ring, not in the agent: ${stalled.pipeline.records} records read`);

  // Once the reader goes on, everything arrives.
  const prefix = `"path":"${work}/sub/f`;
  const arrived = () => fs.readFileSync(out, 'utf8').split('\n').filter((l) => l.includes(prefix)).length;
  await until(() => arrived() === OPENS, `all ${OPENS} opens in the file`, 60_000, () => `${arrived()} so far`);

  const exit = await agent.stop('SIGTERM', 60_000);
  assert.deepEqual(exit, { code: 0, signal: null }, agent.stderr.join('\n'));
  const a = agent.accounting();
  assert.match(a.verdict, /^balanced/, agent.stderr.join('\n'));
  assert.equal(a.kernel['ring-full'], 0, 'the ring had room: the kernel dropped nothing');
  const s = a.sinks.file!;
  assert.equal(Object.entries(s).filter(([k]) => k.startsWith('dropped')).reduce((x, [, v]) => x + v, 0), 0, `the file sink dropped nothing: ${JSON.stringify(s)}`);
  assert.equal(s.sent, s.received);
  assert.equal(arrived(), OPENS, 'each open once');
});
