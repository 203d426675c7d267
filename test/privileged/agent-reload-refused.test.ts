// Privileged: a reload the kernel refuses changes nothing. `vigil run` watches opens; its open-file limit is
// then lowered (prlimit, on its PID) to a few descriptors above what it holds, and a reload turns every network
// and "other" event type on: each of their tracepoints needs a descriptor for its link, so the kernel refuses
// the attaches (EMFILE). The reload is reported as rejected with a one-line reason that says what to do, the
// links it made are gone again, the opens are still reported, and the configuration's generation is
// unchanged. With the limit restored the same file applies. SIGTERM then stops it with nothing left
// attached. Needs root + BPF.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { AgentStatus } from '../../src/agent/agent.ts';
import { runCli } from '../helpers/agent.ts';
import { AgentProcess, agentConfig } from '../helpers/agent-process.ts';
import { assertGone, heldBpfObjects, privileged, tempDir } from '../helpers/privileged.ts';

test('a reload the kernel refuses (EMFILE on attach) changes nothing, leaves no link behind and says what to do; the same file applies once the limit is back', async (t) => {
  if (!privileged(t, 'root + BPF')) return;
  const dir = fs.realpathSync(tempDir(t, 'vigil-refused-'));
  const config = agentConfig(dir);
  const { socket, path: configPath } = config;
  const write = (more: string) =>
    config.write(
      'sinks: { store: { enabled: false } }',
      'events:', '  process: { exec: true, exit: false, creds: false, comm: false }', '  files: { open: true }', more,
      'filters:', `  pathPrefixes: [${dir}]`,
    );
  write('  network: false\n  other: false');
  const target = path.join(dir, 'target');
  fs.writeFileSync(target, 'x\n');

  const opens: number[] = [];
  const agent = AgentProcess.start(t, ['run', '-c', configPath], {
    onStdoutLine: (l) => {
      if (!l.includes(target)) return;
      const e = JSON.parse(l) as { type: string; process?: { pid: number } };
      if (e.type === 'open' && e.process) opens.push(e.process.pid);
    },
  });
  await agent.waitForStderr(/^vigil: running:/, 'the agent running');
  const status = async () => JSON.parse((await runCli(['status', '--json', '--socket', socket])).stdout) as AgentStatus;
  const catTarget = async () => {
    const r = spawnSync('cat', [target], { stdio: 'ignore' });
    assert.equal(r.status, 0);
    for (const end = Date.now() + 30_000; !opens.includes(r.pid!); await new Promise((res) => setTimeout(res, 20))) {
      if (Date.now() > end) assert.fail(`the open of cat ${r.pid} never came out:\n${agent.stderr.join('\n')}`);
    }
  };
  const hangup = async () => {
    const seen = agent.stderr.length;
    agent.child.kill('SIGHUP');
    for (const end = Date.now() + 30_000; ; await new Promise((res) => setTimeout(res, 20))) {
      const hit = agent.stderr.slice(seen).find((l) => /^vigil: configuration (NOT )?reloaded/.test(l));
      if (hit) return hit;
      if (Date.now() > end || !agent.running) assert.fail(`no reload line after SIGHUP:\n${agent.stderr.join('\n')}`);
    }
  };
  await catTarget();
  const before = await status();
  const linksBefore = heldBpfObjects(agent.pid).links;
  const running = (s: AgentStatus) => s.sensors.find((x) => x.name === 'syscalls')?.probes.filter((p) => p.state === 'running').length ?? 0;

  // Its soft limit a few descriptors above what it holds now: enough to read the file, not to attach ~30 links.
  const limits = fs.readFileSync(`/proc/${agent.pid}/limits`, 'utf8');
  const [, soft, hard] = /^Max open files\s+(\d+)\s+(\d+)/m.exec(limits)!;
  const prlimit = (n: string) => assert.equal(spawnSync('prlimit', ['--pid', String(agent.pid), `--nofile=${n}:${hard}`]).status, 0, 'prlimit');
  const held = fs.readdirSync(`/proc/${agent.pid}/fd`).length;
  prlimit(String(held + 6));
  let restored = false;
  t.after(() => {
    if (!restored && agent.running) prlimit(soft!);
  });
  write('  network: true\n  other: true');
  const refused = await hangup();
  prlimit(soft!);
  restored = true;
  assert.match(refused, /^vigil: configuration NOT reloaded, the previous one still runs: manager syscalls: \d+ required probes did not attach \(too many open files in the process, EMFILE\); each attached probe holds a file descriptor: raise vigil's open-file limit/);
  assert.ok(refused.length < 1200, `one readable line, not every probe's error (${refused.length} characters)`);
  assert.deepEqual(heldBpfObjects(agent.pid).links, linksBefore, 'the links the refused reload made are gone');
  const after = await status();
  assert.deepEqual(after.syscalls?.ops, ['open']);
  assert.equal(running(after), running(before));
  assert.equal(after.config.generation, 1);
  assert.deepEqual(after.config.reloads, { applied: 0, rejected: 1 });
  assert.match(after.config.lastReload?.error ?? '', /EMFILE/);
  await catTarget();

  // The limit back: the same file applies.
  assert.match(await hangup(), /^vigil: configuration reloaded \(generation 2\): events\.network, events\.other; syscall sensor updated$/);
  const applied = await status();
  assert.ok(applied.syscalls?.ops.includes('connect') && applied.syscalls.ops.includes('memfd_create'), JSON.stringify(applied.syscalls?.ops));
  assert.ok(running(applied) > running(before));
  await catTarget();

  const bpf = heldBpfObjects(agent.pid);
  const exit = await agent.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, agent.stderr.join('\n'));
  assert.equal(agent.stderr.at(-1), 'vigil: stopped; nothing is left attached');
  assert.match(agent.accounting().verdict, /^balanced/, agent.stderr.join('\n'));
  await assertGone(bpf);
});
