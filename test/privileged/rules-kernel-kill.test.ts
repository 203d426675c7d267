// A rule that kills in the kernel (kill: {inKernel: true}) through the whole agent: `vigil run` with a rule
// about the open of a file of this test. The syscall sensor signals the shell that opens it before the open
// returns, so the shell never runs its next command: `exec 3<file; echo after` prints nothing and dies of
// SIGKILL. A rule on process.comm compares the process's name, not the opening thread's. The same workload matched by a rule that kills from user space prints "after" first (its signal
// follows the event through the pipeline). The open event and the alert both say what the kernel did; the
// test runner, an ancestor of the agent, opening the file is matched and refused; with enforcement turned
// off by a reload, the kernel only reports the match. A rule the kernel cannot check, or one about events the
// sensor does not report, stops `vigil run` before anything is loaded.
// Needs root + BPF.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { AgentStatus } from '../../src/agent/agent.ts';
import { AgentProcess, agentConfig, unixGet } from '../helpers/agent-process.ts';
import { runCli } from '../helpers/agent.ts';
import { until } from '../helpers/containers.ts';
import { privileged, tempDir } from '../helpers/privileged.ts';

/** Runs `sh -c script`; its stdout, exit code and signal. SIGKILLed by PID if the test ends first. */
async function shell(t: TestContext, script: string): Promise<{ pid: number; out: string; code: number | null; signal: string | null }> {
  const c = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  let out = '';
  c.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [code, signal] = (await Promise.race([once(c, 'exit'), new Promise((r) => setTimeout(() => r([null, 'still running after 15 s']), 15_000))])) as [number | null, string | null];
  return { pid: c.pid!, out, code, signal };
}

test('a rule that kills in the kernel stops the process before the open returns; off, it only reports', async (t) => {
  if (!privileged(t, 'root + BPF')) return;
  const dir = tempDir(t, 'vigil-kkill-');
  const secret = path.join(dir, 'secret');
  const watched = path.join(dir, 'watched');
  fs.writeFileSync(secret, 'x');
  fs.writeFileSync(watched, 'x');
  const leader = path.join(dir, 'leader');
  fs.writeFileSync(leader, 'x');
  const { socket, write } = agentConfig(dir);
  const rules = (enforce: boolean) => [
    'rules:',
    '  defaults: false',
    `  enforce: ${enforce}`,
    '  inline:',
    '    - rule: Kernel kill',
    `      condition: event.path == "${secret}" && !event.?write.orValue(false)`,
    '      output: "kernel kill {process.pid}"',
    '      priority: critical',
    '      types: [open]',
    '      actions: [{kill: {signal: SIGKILL, inKernel: true}}]',
    '    - rule: Leader comm',
    `      condition: event.path == "${leader}" && process.comm == "MainThread"`,
    '      output: "leader comm {process.pid}"',
    '      priority: critical',
    '      types: [open]',
    '      actions: [{kill: {signal: SIGKILL, inKernel: true}}]',
    '    - rule: User kill',
    `      condition: event.path == "${watched}"`,
    '      output: "user kill {process.pid}"',
    '      priority: critical',
    '      types: [open]',
    '      actions: [{kill: {signal: SIGKILL}}]',
  ];
  const config = (enforce: boolean, files = '{ open: true }') =>
    write(
      'events:',
      '  process: { exec: true, exit: false, creds: false, comm: false }',
      `  files: ${files}`,
      '  network: false',
      '  other: false',
      'filters:',
      `  pathPrefixes: ["${dir}/"]`,
      ...rules(enforce),
      'sinks:',
      '  store: { enabled: false }',
    );

  // Refused before anything loads: a condition the kernel cannot check, and opens not reported.
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, fs.readFileSync(config(true), 'utf8').replace(`event.path == "${secret}" &&`, `event.path.endsWith("/secret") &&`));
  let run = await runCli(['run', '--config', bad]);
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /inKernel: the kernel cannot check event\.path\.endsWith\("\/secret"\)/);
  run = await runCli(['run', '--config', config(true, 'false')]);
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /"Kernel kill" kills in the kernel on open events, which the syscall sensor does not report/);

  const lines: Record<string, unknown>[] = [];
  const agent = AgentProcess.start(t, ['run', '--config', config(true)], {
    onStdoutLine: (l) => {
      if (l.includes('"type":"alert"') || l.includes('"type":"open"')) lines.push(JSON.parse(l) as Record<string, unknown>);
    },
  });
  await agent.waitForStderr(/^vigil: running: /, 'the agent to run');
  const status = async () => JSON.parse((await unixGet(socket, '/v1/status')).body) as AgentStatus;
  const of = (type: string, pid: number) => lines.find((l) => l.type === type && (l.process as { pid: number } | undefined)?.pid === pid);

  // The kernel's kill: the shell never reaches echo.
  const killed = await shell(t, `exec 3< ${secret}; echo after`);
  assert.deepEqual([killed.out, killed.code, killed.signal], ['', null, 'SIGKILL'], 'killed before the open returned');
  await until(() => of('alert', killed.pid) !== undefined, 'the alert', 10_000);
  assert.deepEqual(of('open', killed.pid)!.kill, { rule: 'Kernel kill', signal: 'SIGKILL', result: 'sent' });
  assert.ok((of('open', killed.pid)!.ret as number) >= 0, 'the open itself succeeded: the process died on its way back');
  assert.deepEqual(of('alert', killed.pid)!.actions, [{ action: 'kill', signal: 'SIGKILL', inKernel: true, result: 'sent' }]);
  const listed = await runCli(['rules', '--socket', socket]);
  assert.match(listed.stdout, /^ {2}Kernel kill: actions kill SIGKILL in the kernel \(enforced\): sent 1$/m);

  // process.comm is the process's: node's main thread names itself MainThread, and its libuv thread
  // ("libuv-worker") does the open of fs.readFile. Compared with the thread's own name, the rule would miss.
  const node = spawn(process.execPath, ['-e', `require('fs').readFile(${JSON.stringify(leader)}, () => console.log('after'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => {
    if (node.exitCode === null && node.signalCode === null) node.kill('SIGKILL');
  });
  let nodeOut = '';
  node.stdout.on('data', (d: Buffer) => (nodeOut += d.toString()));
  const [, nodeSignal] = (await once(node, 'exit')) as [number | null, string | null];
  assert.deepEqual([nodeOut, nodeSignal], ['', 'SIGKILL'], 'killed by its main thread\'s name, for an open of another thread');

  // User space's kill of the same workload comes after the shell went on.
  const late = await shell(t, `exec 3< ${watched}; echo after; sleep 10`);
  assert.deepEqual([late.out, late.signal], ['after\n', 'SIGKILL'], 'killed from user space, after its next command');
  await until(() => of('alert', late.pid) !== undefined, 'the user-space alert', 10_000);
  assert.deepEqual(of('alert', late.pid)!.actions, [{ action: 'kill', signal: 'SIGKILL', result: 'sent' }]);
  assert.equal(of('open', late.pid)!.kill, undefined);

  // The test runner is an ancestor of the agent: matched, never signalled.
  fs.closeSync(fs.openSync(secret, 'r'));
  await until(() => of('open', process.pid) !== undefined, 'the runner\'s open', 10_000);
  assert.deepEqual(of('open', process.pid)!.kill, { rule: 'Kernel kill', signal: 'SIGKILL', result: 'refused' });
  const st = await status();
  assert.deepEqual(st.syscalls?.killRules, { rules: 2, values: 3 });
  assert.deepEqual([st.syscalls?.filters?.killMatched, st.syscalls?.filters?.killSent], [3, 2], 'the shell and node (sent), the runner (refused), counted in the kernel');
  const text = await runCli(['status', '--socket', socket]);
  assert.match(text.stdout, /^ {2}in-kernel kill rules: 2 \(3 strings\); opens matched 3, processes signalled 2$/m);

  // Enforcement off (a reload): the kernel reports the match and sends nothing.
  config(false);
  process.kill(agent.pid, 'SIGHUP');
  await until(async () => (await status()).rules!.enforce === false, 'the reload to turn enforcement off', 10_000);
  const spared = await shell(t, `exec 3< ${secret}; echo after`);
  assert.deepEqual([spared.out, spared.code, spared.signal], ['after\n', 0, null]);
  await until(() => of('alert', spared.pid) !== undefined, 'the dry-run alert', 10_000);
  assert.deepEqual(of('open', spared.pid)!.kill, { rule: 'Kernel kill', signal: 'SIGKILL', result: 'dry-run' });
  assert.deepEqual(of('alert', spared.pid)!.actions, [{ action: 'kill', signal: 'SIGKILL', inKernel: true, result: 'dry-run' }]);
  assert.ok(agent.running);
  assert.equal((await agent.stop()).code, 0);
});
