// Privileged: `vigil run -c file` reloads its file in place, as a user drives it: SIGHUP and `vigil reload`.
// The agent starts with no syscall events at all (no syscall sensor loaded); a reload turns opens on under a
// path prefix (the sensor is loaded then), another adds an in-kernel comm filter (the sensor is updated), a
// later one turns opens off again, a last one adds a second file sink (the first is replaced at the same
// path, no line lost or doubled). A file that is not valid, or that changes a field only a start applies,
// changes nothing: the previous event types and filters keep running, as the events show. SIGUSR1 after the
// file sink's file was moved away (logrotate) makes the sink write a new one. SIGTERM then stops it with
// nothing left attached. Needs root + BPF.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { AgentStatus } from '../../src/agent/agent.ts';
import { runCli } from '../helpers/agent.ts';
import { AgentProcess, agentConfig } from '../helpers/agent-process.ts';
import { assertGone, heldBpfObjects, privileged, tempDir } from '../helpers/privileged.ts';

interface Ev {
  type: string;
  path?: string;
  process?: { pid: number; comm: string; argv?: string[] };
}

test('SIGHUP and `vigil reload` apply event types, in-kernel filters and sinks in place; a bad or start-only file changes nothing; SIGUSR1 reopens the file sink; nothing stays attached', async (t) => {
  if (!privileged(t, 'root + BPF')) return;
  const dir = fs.realpathSync(tempDir(t, 'vigil-reload-'));
  const watched = path.join(dir, 'watched');
  fs.mkdirSync(watched);
  for (const f of 'abcdefg') fs.writeFileSync(path.join(watched, f), 'x\n');
  const config = agentConfig(dir);
  const { socket, path: configPath } = config;
  const eventsFile = path.join(dir, 'events.jsonl');
  let sinks = `sinks: { store: { enabled: false }, file: { path: ${eventsFile} } }`;
  const write = (...lines: string[]) => config.write(sinks, ...lines);
  const quiet = ['events:', '  process: { exec: true, exit: false, creds: false, comm: false }', '  files: false', '  network: false', '  other: false'];
  write(...quiet);

  const events: Ev[] = [];
  const agent = AgentProcess.start(t, ['run', '-c', configPath], {
    onStdoutLine: (l) => {
      if (l.includes(dir) || l.includes('vigil-reload-mark')) events.push(JSON.parse(l) as Ev);
    },
  });
  await agent.waitForStderr(/^vigil: running:/, 'the agent running');

  const until = async (ok: () => boolean, what: string) => {
    for (const end = Date.now() + 30_000; !ok(); await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}:\n${agent.stderr.join('\n')}`);
    }
  };
  const run = (cmd: string, ...args: string[]) => {
    const r = spawnSync(cmd, args, { stdio: 'ignore' });
    assert.equal(r.status, 0, `${cmd} ${args.join(' ')}`);
    return r.pid!;
  };
  const opensOf = (pid: number) => events.filter((e) => e.type === 'open' && e.process?.pid === pid).map((e) => e.path);
  // The exec of a marker after a command: the ring is ordered, so once it is out, the command's events are too.
  let marks = 0;
  const settle = async () => {
    const name = `vigil-reload-mark-${++marks}`;
    run('/bin/true', name);
    const end = Date.now() + 30_000;
    while (!events.some((e) => e.type === 'exec' && e.process?.argv?.includes(name))) {
      if (Date.now() > end) assert.fail(`the marker exec ${name} never came out:\n${agent.stderr.join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const signal = async (sig: NodeJS.Signals, re: RegExp, what: string) => {
    const seen = agent.stderr.length;
    agent.child.kill(sig);
    const end = Date.now() + 30_000;
    for (;;) {
      const hit = agent.stderr.slice(seen).find((l) => re.test(l));
      if (hit) return hit;
      if (Date.now() > end || !agent.running) assert.fail(`no "${what}" after ${sig}:\n${agent.stderr.join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const hangup = (re: RegExp, what: string) => signal('SIGHUP', re, what);

  // 1. No syscall events: an open is not reported.
  const cat1 = run('cat', path.join(watched, 'a'));
  await settle();
  assert.deepEqual(opensOf(cat1), []);
  assert.equal((JSON.parse((await runCli(['status', '--json', '--socket', socket])).stdout) as AgentStatus).syscalls, undefined, 'no syscall sensor at start');

  // 2. SIGHUP with opens on under the test's directory: the syscall sensor is loaded; the path prefix is in the kernel.
  const opens = ['events:', '  process: { exec: true, exit: false, creds: false, comm: false }', '  files: { open: true }', '  network: false', '  other: false'];
  write(...opens, 'filters:', `  pathPrefixes: [${dir}]`);
  const applied = await hangup(/^vigil: configuration (NOT )?reloaded/, 'a reload line');
  assert.equal(applied, 'vigil: configuration reloaded (generation 2): events.files, filters.pathPrefixes; syscall sensor started');
  const cat2 = run('cat', path.join(watched, 'b'), '/etc/hostname');
  await settle();
  assert.deepEqual(opensOf(cat2), [path.join(watched, 'b')], 'the open under the prefix, not the one outside it');

  // 3. A start-only field next to a reloadable one: refused whole, by `vigil reload` (exit 2) and by SIGHUP.
  write(...opens, 'filters:', `  pathPrefixes: [${dir}]`, '  comm: { exclude: [cat] }', 'ring: { sizeMiB: 32 }');
  const refused = await runCli(['reload', '--socket', socket]);
  assert.equal(refused.status, 2, refused.stderr);
  assert.match(refused.stderr, /not reloaded, the previous configuration still runs: ring\.sizeMiB: this takes effect only when vigil starts; restart vigil to apply it/);
  assert.match(await hangup(/^vigil: configuration (NOT )?reloaded/, 'a reload line'), /^vigil: configuration NOT reloaded, the previous one still runs: ring\.sizeMiB: this takes effect only when vigil starts/);
  // 4. A file that is not valid YAML: refused, naming where.
  fs.writeFileSync(configPath, 'events: [\n');
  assert.match(await hangup(/^vigil: configuration (NOT )?reloaded/, 'a reload line'), /^vigil: configuration NOT reloaded, the previous one still runs: invalid configuration \(.*vigil\.yaml\): line \d+/);
  const cat3 = run('cat', path.join(watched, 'c'));
  await settle();
  assert.deepEqual(opensOf(cat3), [path.join(watched, 'c')], 'the comm filter of the refused file was not applied');

  // 5. `vigil reload` with a comm filter: the running sensor is updated; cat is dropped in the kernel, head is not.
  write(...opens, 'filters:', `  pathPrefixes: [${dir}]`, '  comm: { exclude: [cat] }');
  const ok = await runCli(['reload', '--socket', socket]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, 'reloaded (generation 3): filters.comm.exclude; syscall sensor updated\n');
  const cat4 = run('cat', path.join(watched, 'd'));
  const head5 = run('head', path.join(watched, 'e'));
  await settle();
  assert.deepEqual(opensOf(cat4), []);
  assert.deepEqual(opensOf(head5), [path.join(watched, 'e')]);
  const st = JSON.parse((await runCli(['status', '--json', '--socket', socket])).stdout) as AgentStatus;
  assert.equal(st.config.generation, 3);
  assert.deepEqual(st.config.reloads, { applied: 2, rejected: 3 });
  assert.deepEqual(st.syscalls?.ops, ['open']);
  assert.ok((st.syscalls?.filters?.comm ?? 0) > 0, 'cat was dropped by the comm filter, in the kernel');

  // 6. Opens off again: the sensor stays loaded with no probe attached.
  write(...quiet);
  assert.equal(await hangup(/^vigil: configuration (NOT )?reloaded/, 'a reload line'), 'vigil: configuration reloaded (generation 4): events.files, filters.comm.exclude, filters.pathPrefixes; syscall sensor updated');
  const head6 = run('head', path.join(watched, 'f'));
  await settle();
  assert.deepEqual(opensOf(head6), []);
  const st2 = JSON.parse((await runCli(['status', '--json', '--socket', socket])).stdout) as AgentStatus;
  assert.deepEqual(st2.syscalls?.ops, []);
  assert.equal(st2.sensors.find((s) => s.name === 'syscalls')?.probes.filter((p) => p.state === 'running').length, 0, 'no syscall probe attached');

  // 7. logrotate: the file sink's file moved away, then SIGUSR1: the sink writes a new file at its path, and
  // the moved one keeps what was written before.
  const marksIn = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('vigil-reload-mark-')).map((l) => JSON.parse(l) as Ev).filter((e) => e.type === 'exec').map((e) => e.process?.argv?.[1]);
  const moved = `${eventsFile}.1`;
  await until(() => marksIn(eventsFile).includes(`vigil-reload-mark-${marks}`), 'the last marker in the file sink');
  fs.renameSync(eventsFile, moved);
  assert.equal(await signal('SIGUSR1', /^vigil: SIGUSR1/, 'a reopen line'), 'vigil: SIGUSR1: reopened the files of file');
  assert.ok(fs.existsSync(eventsFile), 'a new file at the configured path');
  await settle();
  await until(() => marksIn(eventsFile).includes(`vigil-reload-mark-${marks}`), 'the new marker in the new file');
  assert.deepEqual(marksIn(eventsFile), [`vigil-reload-mark-${marks}`], 'only what came after the reopen');
  assert.deepEqual(marksIn(moved), Array.from({ length: marks - 1 }, (_, i) => `vigil-reload-mark-${i + 1}`), 'what came before stayed in the moved file');

  // 8. SIGHUP adding a second file sink: the file sink becomes a list ("file" removed, "file[0]" at the same
  // path and "file[1]" added); the new file gets what comes after, the first keeps every marker once.
  const second = path.join(dir, 'events2.jsonl');
  sinks = `sinks: { store: { enabled: false }, file: [{ path: ${eventsFile} }, { path: ${second} }] }`;
  write(...quiet);
  assert.equal(await hangup(/^vigil: configuration (NOT )?reloaded/, 'a reload line'), 'vigil: configuration reloaded (generation 5): sinks.file; syscall sensor updated; sinks added: file[0], file[1], removed: file');
  await settle();
  await until(() => marksIn(second).includes(`vigil-reload-mark-${marks}`) && marksIn(eventsFile).includes(`vigil-reload-mark-${marks}`), 'the marker in both files');
  assert.deepEqual(marksIn(second), [`vigil-reload-mark-${marks}`], 'the added sink: only what came after the reload');
  assert.deepEqual(marksIn(eventsFile), [`vigil-reload-mark-${marks - 1}`, `vigil-reload-mark-${marks}`], 'the replaced sink and its successor: each line once, in order');

  // SIGTERM: a clean stop, balanced accounting, nothing left in the kernel (the sensor loaded by a reload included).
  const held = heldBpfObjects(agent.pid);
  const exit = await agent.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, agent.stderr.join('\n'));
  assert.equal(agent.stderr.at(-1), 'vigil: stopped; nothing is left attached');
  assert.match(agent.accounting().verdict, /^balanced/, agent.stderr.join('\n'));
  assert.ok(agent.stderr.some((l) => /^vigil: accounting: retired sink file generations=1-4 events=0\.\.\d+ received=\d+ sent=\d+ queued=0 dropped=0$/.test(l)), agent.stderr.join('\n'));
  await assertGone(held);
});
