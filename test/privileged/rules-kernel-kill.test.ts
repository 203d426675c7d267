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
import { agentConfig, AgentProcess, EXEC_EVENTS_ONLY, unixGet } from '../helpers/agent-process.ts';
import { runCli } from '../helpers/agent.ts';
import { until } from '../helpers/containers.ts';
import { privileged, tempDir } from '../helpers/privileged.ts';
import { runScript } from '../helpers/run.ts';

const shell = (t: TestContext, script: string) => runScript(t, 'sh', script);

/** Runs a Node script to its end (killed when the test ends first): its pid, stdout and the signal it died of. */
async function nodeScript(t: TestContext, script: string): Promise<{ pid: number; out: string; signal: string | null }> {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
  return { pid: child.pid!, out, signal };
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
    '    - rule: Kernel kill on a link',
    `      condition: event.path == "${secret}" && event.ret >= 0`,
    '      output: "kernel kill link {process.pid}"',
    '      priority: critical',
    '      types: [symlink, link]',
    '      actions: [{kill: {signal: SIGKILL, inKernel: true}}]',
    '    - rule: Kernel kill on a planted link',
    `      condition: event.?resolvedPath2.orValue(event.path2).startsWith("${dir}/cron.d/")`,
    '      output: "kernel kill planted {process.pid}"',
    '      priority: critical',
    '      types: [symlink]',
    '      actions: [{kill: {signal: SIGKILL, inKernel: true}}]',
    '    - rule: User kill',
    `      condition: event.path == "${watched}"`,
    '      output: "user kill {process.pid}"',
    '      priority: critical',
    '      types: [open]',
    '      actions: [{kill: {signal: SIGKILL}}]',
  ];
  const config = (enforce: boolean, files = '{ open: true, symlink: true, link: true }') =>
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
      if (l.includes('"type":"alert"') || l.includes('"type":"open"') || l.includes('"type":"symlink"')) lines.push(JSON.parse(l) as Record<string, unknown>);
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

  // Any file event type: a symlink to the file, made before the kill (the link exists), and nothing after it.
  const link = path.join(dir, 'link');
  const ln = await nodeScript(t, `require('fs').symlinkSync(${JSON.stringify(secret)}, ${JSON.stringify(link)}); console.log('after')`);
  assert.deepEqual([ln.out, ln.signal], ['', 'SIGKILL'], 'killed on its way back from the symlink');
  assert.equal(fs.readlinkSync(link), secret);
  await until(() => of('symlink', ln.pid) !== undefined, 'the symlink event', 10_000);
  assert.deepEqual([of('symlink', ln.pid)!.kill, of('symlink', ln.pid)!.path2], [{ rule: 'Kernel kill on a link', signal: 'SIGKILL', result: 'sent' }, link]);

  // The second path: a symlink planted in a watched directory, to a file outside it.
  fs.mkdirSync(path.join(dir, 'cron.d'));
  const planted = path.join(dir, 'cron.d', 'job');
  const plant = await nodeScript(t, `require('fs').symlinkSync('/tmp/vigil-payload', ${JSON.stringify(planted)}); console.log('after')`);
  assert.deepEqual([plant.out, plant.signal], ['', 'SIGKILL'], 'killed on its way back from planting the link');
  await until(() => of('symlink', plant.pid) !== undefined, 'the planted symlink event', 10_000);
  assert.deepEqual([of('symlink', plant.pid)!.kill, of('symlink', plant.pid)!.path2], [{ rule: 'Kernel kill on a planted link', signal: 'SIGKILL', result: 'sent' }, planted]);

  // process.comm is the process's: node's main thread names itself MainThread, and its libuv thread
  // ("libuv-worker") does the open of fs.readFile. Compared with the thread's own name, the rule would miss.
  const node = await nodeScript(t, `require('fs').readFile(${JSON.stringify(leader)}, () => console.log('after'))`);
  assert.deepEqual([node.out, node.signal], ['', 'SIGKILL'], 'killed by its main thread\'s name, for an open of another thread');

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
  assert.deepEqual(st.syscalls?.killRules, { rules: 4, values: 5, scoped: 0, cgroups: 0, denies: 0 });
  assert.deepEqual([st.syscalls?.filters?.killMatched, st.syscalls?.filters?.killSent], [5, 4], 'the shell and three nodes (sent), the runner (refused), counted in the kernel');
  const text = await runCli(['status', '--socket', socket]);
  assert.match(text.stdout, /^ {2}in-kernel kill rules: 4 \(5 strings\); file events matched 5, processes signalled 4$/m);

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

test('a rule that kills in the kernel on an exec stops the new image before its first instruction', async (t) => {
  if (!privileged(t, 'root + BPF')) return;
  const dir = tempDir(t, 'vigil-kexec-');
  // A program of this test's own, so that no other exec on the machine matches: touch, under a name of its own.
  const bin = path.join(dir, 'bin', 'vigil-touch');
  fs.mkdirSync(path.dirname(bin));
  fs.copyFileSync('/usr/bin/touch', bin);
  fs.chmodSync(bin, 0o755);
  const { socket, write } = agentConfig(dir);
  const config = (enforce: boolean, condition = `process.exe == "${bin}" && parent.?comm.orValue("") == "sh"`) =>
    write(
      ...EXEC_EVENTS_ONLY,
      'rules:',
      '  defaults: false',
      `  enforce: ${enforce}`,
      '  inline:',
      '    - rule: Exec kill',
      `      condition: ${condition}`,
      '      output: "exec kill {process.exe}"',
      '      priority: critical',
      '      types: [exec]',
      '      actions: [{kill: {signal: SIGKILL, inKernel: true}}]',
      'sinks:',
      '  store: { enabled: false }',
    );

  // Refused before anything loads: a part of the condition the kernel has not got at an exec.
  const run = await runCli(['run', '--config', config(true, `process.exe == "${bin}" && process.argv.exists(a, a.endsWith("-e"))`)]);
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /inKernel: the kernel cannot check process\.argv\.exists/);

  const lines: Record<string, unknown>[] = [];
  const agent = AgentProcess.start(t, ['run', '--config', config(true)], {
    onStdoutLine: (l) => {
      if (l.includes('"type":"alert"') || (l.includes('"type":"exec"') && l.includes(bin))) lines.push(JSON.parse(l) as Record<string, unknown>);
    },
  });
  await agent.waitForStderr(/^vigil: running: /, 'the agent to run');
  const status = async () => JSON.parse((await unixGet(socket, '/v1/status')).body) as AgentStatus;
  const execOf = (file: string) => lines.find((l) => l.type === 'exec' && (l.process as { argv?: string[] }).argv?.includes(file));
  const alertOf = (pid: number) => lines.find((l) => l.type === 'alert' && (l.process as { pid: number } | undefined)?.pid === pid);

  // The new image never runs: touch makes no file, and the shell sees its child die of SIGKILL (128 + 9).
  const made = path.join(dir, 'made');
  const killed = await shell(t, `${bin} ${made}; echo status=$?`);
  assert.deepEqual([killed.out, killed.code], ['status=137\n', 0]);
  assert.equal(fs.existsSync(made), false, 'the program ran none of its code');
  await until(() => execOf(made) !== undefined, 'the exec event', 10_000);
  const ev = execOf(made)!;
  assert.deepEqual(ev.kill, { rule: 'Exec kill', signal: 'SIGKILL', result: 'sent' });
  const pid = (ev.process as { pid: number }).pid;
  await until(() => alertOf(pid) !== undefined, 'the alert', 10_000);
  assert.deepEqual(alertOf(pid)!.actions, [{ action: 'kill', signal: 'SIGKILL', inKernel: true, result: 'sent' }]);

  // parent.comm is checked too: the same program started by this test's node is not sh's child, and runs.
  const byNode = path.join(dir, 'by-node');
  const child = spawn(bin, [byNode], { stdio: 'ignore' });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  assert.deepEqual(await once(child, 'exit'), [0, null]);
  assert.ok(fs.existsSync(byNode));
  await until(() => execOf(byNode) !== undefined, 'its exec event', 10_000);
  assert.equal(execOf(byNode)!.kill, undefined);

  const st = await status();
  assert.deepEqual(st.process.execKill, { rules: 1, values: 2, scoped: 0, cgroups: 0, denies: 0, matched: 1, sent: 1 }, 'counted in the kernel');
  const text = await runCli(['status', '--socket', socket]);
  assert.match(text.stdout, /^ {2}in-kernel kill rules on execs: 1 \(2 strings\); execs matched 1, processes signalled 1$/m);
  const listed = await runCli(['rules', '--socket', socket]);
  assert.match(listed.stdout, /^ {2}Exec kill: actions kill SIGKILL in the kernel \(enforced\): sent 1$/m);

  // Enforcement off (a reload): the kernel reports the match, and the program runs.
  config(false);
  process.kill(agent.pid, 'SIGHUP');
  await until(async () => (await status()).rules!.enforce === false, 'the reload to turn enforcement off', 10_000);
  const later = path.join(dir, 'later');
  const spared = await shell(t, `${bin} ${later}; echo status=$?`);
  assert.deepEqual([spared.out, spared.code], ['status=0\n', 0]);
  assert.ok(fs.existsSync(later));
  await until(() => execOf(later) !== undefined, 'the dry-run exec event', 10_000);
  assert.deepEqual(execOf(later)!.kill, { rule: 'Exec kill', signal: 'SIGKILL', result: 'dry-run' });
  assert.ok(agent.running);
  assert.equal((await agent.stop()).code, 0);
});

test('an exec rule about argv kills in the kernel when an element matches, and leaves to user space an argv it did not see whole', async (t) => {
  if (!privileged(t, 'root + BPF')) return;
  const dir = tempDir(t, 'vigil-kargv-');
  // Programs of this test's own (touch and sleep under names of their own), so that no other exec matches.
  const toucher = path.join(dir, 'bin', 'vigil-argv-touch');
  const sleeper = path.join(dir, 'bin', 'vigil-argv-sleep');
  fs.mkdirSync(path.dirname(toucher));
  fs.copyFileSync('/usr/bin/touch', toucher);
  fs.copyFileSync('/usr/bin/sleep', sleeper);
  fs.chmodSync(toucher, 0o755);
  fs.chmodSync(sleeper, 0o755);
  const marked = path.join(dir, 'kill-me');
  const { write } = agentConfig(dir);
  const rule = (name: string, condition: string) => [`    - rule: ${name}`, `      condition: ${condition}`, '      output: "argv kill {process.argv}"', '      priority: critical', '      types: [exec]', '      actions: [{kill: {signal: SIGKILL, inKernel: true}}]'];
  const config = write(
    ...EXEC_EVENTS_ONLY,
    'rules:',
    '  defaults: false',
    '  enforce: true',
    '  inline:',
    ...rule('Marked argv', `process.exe == "${toucher}" && "${marked}" in process.argv && !process.argv.exists(a, a.startsWith("${dir}/spare") || a == "-c")`),
    ...rule('Sleep without 0.07', `process.exe == "${sleeper}" && !process.argv.exists(a, a == "0.07")`),
    'sinks:',
    '  store: { enabled: false }',
  );
  const lines: Record<string, unknown>[] = [];
  const agent = AgentProcess.start(t, ['run', '--config', config], {
    onStdoutLine: (l) => {
      if (l.includes('"type":"alert"') || (l.includes('"type":"exec"') && l.includes('vigil-argv-'))) lines.push(JSON.parse(l) as Record<string, unknown>);
    },
  });
  await agent.waitForStderr(/^vigil: running: /, 'the agent to run');
  const of = (type: string, pid: number) => lines.find((l) => l.type === type && (l.process as { pid: number } | undefined)?.pid === pid);
  /** Runs `cmd` as a shell's child; the exec event of that child (the shell's last child: pid from $!). */
  const run = async (cmd: string) => {
    const r = await shell(t, `${cmd} & pid=$!; wait $pid; echo "status=$? pid=$pid"`);
    const m = /^status=(\d+) pid=(\d+)\n$/.exec(r.out);
    assert.ok(m, `${cmd}: ${r.out}`);
    const pid = Number(m[2]);
    await until(() => of('exec', pid) !== undefined, `the exec event of ${cmd.slice(0, 80)}`, 10_000);
    return { status: Number(m[1]), ev: of('exec', pid)!, pid };
  };

  // An element is the marked path: killed before touch ran (it made nothing).
  const killed = await run(`${toucher} ${marked}`);
  assert.deepEqual([killed.status, fs.existsSync(marked)], [137, false]);
  assert.deepEqual(killed.ev.kill, { rule: 'Marked argv', signal: 'SIGKILL', result: 'sent' });
  await until(() => of('alert', killed.pid) !== undefined, 'its alert', 10_000);
  assert.deepEqual(of('alert', killed.pid)!.actions, [{ action: 'kill', signal: 'SIGKILL', inKernel: true, result: 'sent' }]);
  // The negated test holds no more (an element starts with the spare prefix; one is "-c"), or no element is
  // the marked path (a longer one is not it, nor is a prefix of it): touch runs.
  for (const args of [`${marked} ${dir}/spare-1`, `-c ${marked}`, `${marked}-not`, `${dir}/kill`]) {
    const spared = await run(`${toucher} ${args}`);
    assert.equal(spared.status, 0, args);
    assert.equal(spared.ev.kill, undefined, args);
  }
  assert.ok(fs.existsSync(path.join(dir, 'spare-1')) && fs.existsSync(`${marked}-not`));

  // A rule that holds when no element is "0.07": killed in the kernel when it saw the whole argv...
  const short = await run(`${sleeper} 30`);
  assert.deepEqual([short.status, short.ev.kill], [137, { rule: 'Sleep without 0.07', signal: 'SIGKILL', result: 'sent' }]);
  // ... and not where it did not (past 4096 bytes, past 64 elements): a miss there proves nothing, so the
  // kernel kills no one, and user space, which has the whole argv, does (the sleep lives until then).
  for (const [what, pad] of [['bytes', Array.from({ length: 40 }, () => '0'.repeat(120))], ['elements', Array.from({ length: 70 }, () => '0')]] as const) {
    const long = await run(`${sleeper} 30 ${pad.join(' ')}`);
    assert.equal(long.status, 137, what);
    assert.equal(long.ev.kill, undefined, `${what}: not killed in the kernel`);
    await until(() => of('alert', long.pid) !== undefined, `the alert (${what})`, 10_000);
    assert.deepEqual(of('alert', long.pid)!.actions, [{ action: 'kill', signal: 'SIGKILL', result: 'sent' }], what);
  }
  // With "0.07" among the elements the rule does not hold: nothing is killed.
  const seven = await run(`${sleeper} 0.07`);
  assert.deepEqual([seven.status, seven.ev.kill], [0, undefined]);
  assert.ok(agent.running);
  assert.equal((await agent.stop()).code, 0);
});
