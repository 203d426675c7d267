// A rule's kill action through the whole agent: `vigil run` with a rule about the exec of a sleep this test
// starts (a duration no other sleep uses), with rules.enforce on. The exec comes from the kernel through the
// pipeline to the rule engine, which signals the process: the sleep dies of SIGKILL within moments, the alert
// says so, and the status and metrics count it. A second sleep, matched while a reload has turned
// enforcement off, is left running and its alert says "dry-run".
// Needs root + BPF.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import type { AgentStatus } from '../../src/agent/agent.ts';
import { agentConfig, AgentProcess, EXEC_EVENTS_ONLY, unixGet } from '../helpers/agent-process.ts';
import { runCli } from '../helpers/agent.ts';
import { until } from '../helpers/containers.ts';
import { privileged, tempDir } from '../helpers/privileged.ts';

/** A sleep of this test, with a duration (its argv[1]) that names it; SIGKILLed by PID after the test. */
function sleeper(t: TestContext, duration: string): ChildProcess {
  const c = spawn('sleep', [duration], { stdio: 'ignore' });
  t.after(() => {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  return c;
}

test('a rule with a kill action kills the process it matched, with rules.enforce on, and only then', async (t) => {
  if (!privileged(t, 'root + BPF')) return;
  const dir = tempDir(t, 'vigil-actions-');
  const token = `600.${Date.now() % 1_000_000}${process.pid % 1000}`;
  const { socket, write } = agentConfig(dir);
  const config = (enforce: boolean) =>
    write(
      ...EXEC_EVENTS_ONLY,
      'rules:',
      '  defaults: false',
      `  enforce: ${enforce}`,
      '  inline:',
      '    - rule: Test sleeper',
      '      desc: the sleep of the actions test',
      `      condition: process.?comm.orValue("") == "sleep" && process.?argv.orValue([]).exists(a, a.startsWith("${token}"))`,
      '      output: "test sleeper {process.pid}"',
      '      priority: warning',
      '      types: [exec]',
      '      actions: [{kill: {signal: SIGKILL}}]',
      'sinks:',
      '  store: { enabled: false }',
    );
  const alerts: Record<string, unknown>[] = [];
  const agent = AgentProcess.start(t, ['run', '--config', config(true)], {
    onStdoutLine: (l) => {
      if (l.includes('"type":"alert"')) alerts.push(JSON.parse(l) as Record<string, unknown>);
    },
  });
  await agent.waitForStderr(/^vigil: running: /, 'the agent to run');
  const status = async () => JSON.parse((await unixGet(socket, '/v1/status')).body) as AgentStatus;

  const killed = sleeper(t, token);
  const [code, signal] = (await Promise.race([once(killed, 'exit'), new Promise((r) => setTimeout(() => r([null, 'still running after 15 s']), 15_000))])) as [number | null, string | null];
  assert.deepEqual([code, signal], [null, 'SIGKILL'], 'the agent killed the sleep');
  await until(() => alerts.length > 0, 'the alert', 10_000);
  const alert = alerts[0]!;
  assert.equal((alert.process as { pid: number }).pid, killed.pid);
  assert.deepEqual(alert.actions, [{ action: 'kill', signal: 'SIGKILL', result: 'sent' }]);
  assert.equal(alert.output, `test sleeper ${killed.pid}`);
  let st = (await status()).rules!;
  assert.equal(st.enforce, true);
  assert.equal(st.actions.sent, 1);
  const metrics = (await unixGet(socket, '/metrics')).body;
  assert.match(metrics, /^vigil_rule_actions_total\{rule="Test sleeper",action="kill",result="sent"\} 1$/m);
  const listed = await runCli(['rules', '--socket', socket]);
  assert.match(listed.stdout, /^ {2}Test sleeper: actions kill SIGKILL \(enforced\): sent 1$/m);

  // Enforcement off by a reload (SIGHUP): the next match is reported, not acted on.
  config(false);
  process.kill(agent.pid, 'SIGHUP');
  await until(async () => (await status()).rules!.enforce === false, 'the reload to turn enforcement off', 10_000);
  const spared = sleeper(t, `${token}1`);
  await until(() => alerts.length > 1, 'the second alert', 15_000);
  assert.equal((alerts[1]!.process as { pid: number }).pid, spared.pid);
  assert.deepEqual(alerts[1]!.actions, [{ action: 'kill', signal: 'SIGKILL', result: 'dry-run' }]);
  assert.equal(spared.exitCode, null);
  assert.equal(spared.signalCode, null, 'a dry run kills nothing');
  st = (await status()).rules!;
  assert.deepEqual([st.actions.sent, st.actions['dry-run']], [1, 1]);
  assert.ok(agent.running, 'the agent never signals itself');
  assert.equal((await agent.stop()).code, 0);
});
