// Rule actions (src/rules/actions.ts, src/process/signal.ts): how rule files state them, what the engine does
// with a match, and signals that reach exactly the process an event came from (children this test started).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { test, type TestContext } from 'node:test';
import { validateConfig } from '../../src/config/config.ts';
import { parseStat } from '../../src/process/procfs.ts';
import { lineOf, seesHostPids, signalProcess } from '../../src/process/signal.ts';
import { Router } from '../../src/pipeline/router.ts';
import type { OutputEvent } from '../../src/pipeline/types.ts';
import { Enforcer, readActions } from '../../src/rules/actions.ts';
import { RuleEngine } from '../../src/rules/engine.ts';
import { compileRules, RuleError } from '../../src/rules/rules.ts';

const rule = (actions: unknown) => ({ rule: 'r', condition: 'true', output: 'x', priority: 'warning', types: ['exec'], actions });

function problems(actions: unknown): string[] {
  try {
    compileRules({ sources: [{ name: 'f', items: [rule(actions)] }] });
  } catch (err) {
    if (err instanceof RuleError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
  return [];
}

/** A child of this test that sleeps until killed, and its start time in ns as the cache has it. */
async function sleeper(t: TestContext): Promise<{ child: ChildProcess; pid: number; startNs: number }> {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); // the PID this test started
  });
  await once(child, 'spawn');
  const st = parseStat(fs.readFileSync(`/proc/${child.pid}/stat`, 'latin1'))!;
  return { child, pid: child.pid!, startNs: st.startTicks * 1e7 + 3_000_000 }; // a BPF start time lies within its tick
}

const exitOf = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve([c.exitCode, c.signalCode]) : once(c, 'exit'));

const eventOf = (pid: number, startNs: number): OutputEvent => ({ type: 'exec', time: 't', ktimeNs: 1, process: { pid, key: `${pid}:${Math.floor(startNs / 1e7)}`, startNs, comm: 'sleep' } });

test('rule files state actions as [{kill: {signal}}]; every mistake is named with its path, and nothing loads', () => {
  assert.deepEqual(readActions([{ kill: null }, { kill: { signal: 'SIGSTOP' } }], 'a', () => assert.fail()), [{ kill: { signal: 'SIGKILL' } }, { kill: { signal: 'SIGSTOP' } }]);
  const set = compileRules({ sources: [{ name: 'f', items: [rule([{ kill: { signal: 'SIGTERM' } }])] }] });
  assert.deepEqual(set.rules[0]!.actions, [{ kill: { signal: 'SIGTERM' } }]);
  assert.deepEqual(compileRules({ sources: [{ name: 'f', items: [rule(undefined)] }] }).rules[0]!.actions, []);
  const at = 'f item 1 (rule "r").actions';
  assert.deepEqual(problems('kill'), [`${at}: expected a list of actions such as [{kill: {signal: SIGKILL}}] or [{deny: {}}], got "kill"`]);
  assert.deepEqual(problems([{ block: {} }]), [`${at}.0: unknown action "block" (known: kill, deny)`]);
  assert.deepEqual(problems([{ kill: { signal: 'SIGSEGV' } }]), [`${at}.0.kill.signal: expected one of SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGABRT, SIGSTOP, SIGUSR1, SIGUSR2, got "SIGSEGV"`]);
  assert.deepEqual(problems([{ kill: { signal: 9 } }]), [`${at}.0.kill.signal: expected one of SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGABRT, SIGSTOP, SIGUSR1, SIGUSR2, got 9`]);
  assert.match(problems([{ kill: { scope: 'container' } }])[0]!, /\.0\.kill: unknown field "scope" \(known: signal, inKernel; the kill action signals the event's process alone\)/);
  assert.match(problems([{ kill: {} }, { kill: { signal: 'SIGKILL' } }])[0]!, /\.1\.kill\.signal: SIGKILL is already sent by an earlier action of this rule/);
  assert.match(problems([{ kill: 'now' }])[0]!, /\.0\.kill: expected a mapping such as \{signal: SIGKILL\}, got "now"/);
  // Actions change the rule set's digest (a reload that adds one is a change), and rules.enforce is a boolean.
  const a = compileRules({ sources: [{ name: 'f', items: [rule([])] }] }).digest;
  assert.notEqual(a, set.digest);
  assert.equal(validateConfig({}, 't').rules.enforce, false, 'off by default');
  assert.throws(() => validateConfig({ rules: { enforce: 'yes' } }, 't'), /rules\.enforce/);
});

test('the enforcer refuses pid 1, the agent\'s own line, unknown processes and unknown start times; off, it only says what it would do', () => {
  const calls: number[] = [];
  const e = new Enforcer({ enforce: false, signal: (pid) => (calls.push(pid), { result: 'sent' }) });
  const kill = [{ kill: { signal: 'SIGKILL' as const } }];
  const result = (ev: OutputEvent) => e.run('r', kill, ev)[0]!;
  assert.deepEqual(result(eventOf(4242, 5e9)), { action: 'kill', signal: 'SIGKILL', result: 'dry-run' });
  assert.deepEqual(result(eventOf(1, 1e7)), { action: 'kill', signal: 'SIGKILL', result: 'refused', reason: 'pid 1' });
  assert.deepEqual(result(eventOf(process.pid, 1e7)).reason, 'the agent or one of its ancestors');
  assert.deepEqual(result(eventOf(process.ppid, 1e7)).reason, 'the agent or one of its ancestors');
  assert.ok(lineOf(process.pid).has(process.ppid));
  assert.equal(result({ type: 'open', time: 't', ktimeNs: 1, process: { pid: 7, unknown: ['process'] } }).reason, 'the event has no known process');
  assert.equal(result({ type: 'open', time: 't', ktimeNs: 1 }).result, 'refused');
  assert.match(result({ type: 'open', time: 't', ktimeNs: 1, process: { pid: 4242, key: '4242:?' } }).reason!, /start time is unknown/);
  e.enforce = true;
  assert.deepEqual(result(eventOf(4242, 5e9)), { action: 'kill', signal: 'SIGKILL', result: 'sent' });
  assert.deepEqual(result(eventOf(4242, 5e9)).result, 'repeat', 'one signal per process and signal');
  assert.deepEqual(result(eventOf(4242, 6e9)).result, 'sent', 'another instance of the pid is another process');
  assert.deepEqual(calls, [4242, 4242]);
  // An agent in a pid namespace of its own: its pid 4242 is not the host's.
  const boxed = new Enforcer({ enforce: true, hostPids: false, signal: () => assert.fail('never signals') });
  assert.match(boxed.run('r', kill, eventOf(4243, 5e9))[0]!.reason!, /not in the host's pid namespace/);
  assert.equal(seesHostPids(), true, 'this test runs in the host pid namespace');
});

test('a signal reaches the process that started at the given time, and never another one with its pid', async (t) => {
  const a = await sleeper(t);
  const ticks = Math.floor(a.startNs / 1e7);
  // The same pid with another start time is a later (or earlier) process: not signalled.
  assert.deepEqual(signalProcess(a.pid, ticks + 1, 9), { result: 'gone' });
  assert.equal(a.child.exitCode, null);
  assert.equal(fs.existsSync(`/proc/${a.pid}`), true, 'still running');
  assert.deepEqual(signalProcess(a.pid, ticks, 9), { result: 'sent' });
  assert.deepEqual(await exitOf(a.child), [null, 'SIGKILL']);
  // Reaped: its pid names no process (or another one).
  assert.deepEqual(signalProcess(a.pid, ticks, 9), { result: 'gone' });
  // Kernel threads are never signalled (kthreadd is pid 2 on Linux).
  const kthreadd = parseStat(fs.readFileSync('/proc/2/stat', 'latin1'))!;
  assert.deepEqual(signalProcess(2, kthreadd.startTicks, 9), { result: 'refused', reason: 'a kernel thread' });
});

test('the engine carries out a matching rule\'s actions before its alert, which says what they did; counted per rule and in all', async (t) => {
  const router = new Router();
  const alerts: OutputEvent[] = [];
  const engine = new RuleEngine({ router, emit: (a) => alerts.push(a), queue: 64, enforce: false });
  engine.setRules(compileRules({ sources: [{ name: 'f', items: [{ ...rule([{ kill: {} }]), condition: 'process.comm == "sleep"' }, { rule: 'quiet', condition: 'true', output: 'q', priority: 'info', types: ['exec'] }] }] }));
  const a = await sleeper(t);
  router.publish(eventOf(a.pid, a.startNs), '');
  engine.flush();
  assert.deepEqual(alerts.map((x) => [x.rule, x.actions]), [['r', [{ action: 'kill', signal: 'SIGKILL', result: 'dry-run' }]], ['quiet', undefined]]);
  assert.equal(a.child.exitCode, null, 'a dry run signals nothing');
  // rules.enforce turned on by a reload of the same rules.
  engine.setRules(engine.ruleSet, 64, true);
  router.publish(eventOf(a.pid, a.startNs), '');
  router.publish(eventOf(a.pid, a.startNs), '');
  engine.flush();
  assert.deepEqual(alerts.slice(2).filter((x) => x.rule === 'r').map((x) => (x.actions as { result: string }[])[0]!.result), ['sent', 'repeat']);
  assert.deepEqual(await exitOf(a.child), [null, 'SIGKILL']);
  const st = engine.status()!;
  assert.equal(st.enforce, true);
  assert.equal(st.actionRules, 1, 'one enabled rule has actions');
  assert.deepEqual(st.actions, { sent: 1, 'dry-run': 1, repeat: 1, gone: 0, refused: 0, failed: 0, denied: 0, missed: 0 });
  assert.deepEqual(st.perRule.find((r) => r.name === 'r')!.actions, st.actions);
  assert.equal(st.perRule.find((r) => r.name === 'quiet')!.actions, undefined);
});
