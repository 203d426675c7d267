// In-kernel kill rules about containers, on real podman containers: a rule that kills the exec of a program
// in the container named "…-web" (its name, which only the runtime's answer gives) and the open of a file
// there. The kernel kills in that container before the program's first instruction and before the open
// returns; in another container, and on the host, the same program and the same open go on: the container
// part of the rule, evaluated in user space per container, is where the kernel looks the task's cgroup up.
// Needs root + BPF + podman.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { formatStatus } from '../../src/cli/status.ts';
import { DockerClient } from '../../src/containers/runtimes/docker.ts';
import type { OutputEvent } from '../../src/pipeline/types.ts';
import { startTestAgent } from '../helpers/agent.ts';
import { needsRuntime, startPodman, until } from '../helpers/containers.ts';
import { tempDir } from '../helpers/privileged.ts';

const WEB = 'vigil-kscope-web';
const OTHER = 'vigil-kscope-other';
/** busybox under a name of its own, so that no other exec on the machine matches; run as its touch applet. */
const PROGRAM = 'vigil-touch';

const rule = (name: string, types: string, condition: string) => ({
  rule: name,
  condition,
  output: `${name} {container.name} {process.exe}`,
  priority: 'critical',
  types: [types],
  actions: [{ kill: { signal: 'SIGKILL', inKernel: true } }],
});

test('a kill rule about one container kills in the kernel there, and only there', async (t) => {
  if (!needsRuntime(t, 'root + BPF + podman', 'podman')) return;
  const podman = await startPodman(t);
  const psock = await podman.startService();
  const ta = await startTestAgent(t, {
    config: {
      events: { process: { exec: true, exit: false, creds: false, comm: false }, files: { open: true }, network: false, other: false },
      rules: {
        enabled: true,
        defaults: false,
        enforce: true,
        inline: [
          { list: 'web_names', items: [WEB] },
          { macro: 'in_container', condition: 'has(container.id)' },
          { macro: 'web', condition: 'in_container && container.?name.orValue("") in web_names' },
          rule('Exec in web', 'exec', `web && process.comm == "${PROGRAM}"`),
          rule('Secret in web', 'open', 'web && event.path == "/tmp/vigil-secret" && !event.?write.orValue(false)'),
        ],
      },
    },
    runtimeClients: [new DockerClient({ socketPath: psock, runtime: 'podman' })],
  });
  const web = await podman.run({ name: WEB });
  const other = await podman.run({ name: OTHER });
  // The kernel knows where the rules hold once podman named the containers: the cgroup of `web` alone.
  const st = () => ta.agent.status();
  await until(() => st().process.execKill?.cgroups === 1 && st().syscalls?.killRules.cgroups === 1, 'the kill scopes of the web container', 30_000, () => JSON.stringify([st().process.execKill, st().syscalls?.killRules]));
  assert.deepEqual(st().process.execKill, { rules: 1, values: 1, scoped: 1, cgroups: 1, denies: 0, matched: 0, sent: 0 });
  assert.match(formatStatus(st()), /^ {2}in-kernel kill rules on execs: 1 \(1 strings, 1 about containers, holding in 1 container cgroup\); execs matched 0/m);

  // In web: the program dies before it runs (128 + 9), and a shell dies opening the file.
  const script = `cp /bin/busybox /tmp/${PROGRAM}; echo x > /tmp/vigil-secret; (exec -a touch /tmp/${PROGRAM} /tmp/made); echo status=$?; [ -e /tmp/made ] && echo made; (exec 3< /tmp/vigil-secret; echo opened); echo open=$?`;
  assert.equal(await podman.exec(web, ['sh', '-c', script]), 'status=137\nopen=137\n');
  // In the other container, and on the host, the same things go on.
  assert.equal(await podman.exec(other, ['sh', '-c', script]), 'status=0\nmade\nopened\nopen=0\n');
  const dir = tempDir(t, 'vigil-kscope-');
  const bin = path.join(dir, PROGRAM);
  fs.copyFileSync('/usr/bin/touch', bin);
  fs.chmodSync(bin, 0o755);
  const host = spawnSync(bin, [path.join(dir, 'made')]);
  assert.deepEqual([host.status, host.signal, fs.existsSync(path.join(dir, 'made'))], [0, null, true]);

  // The events say what the kernel did, in which container; the alerts report it as the rules' actions.
  const ofType = (type: string, name: string) => (e: OutputEvent) => e.type === type && e.container?.name === name && (type !== 'exec' || e.process?.comm === PROGRAM);
  const killed = await ta.sink.waitFor(ofType('exec', WEB), 'the exec in web');
  assert.deepEqual((killed as { kill?: unknown }).kill, { rule: 'Exec in web', signal: 'SIGKILL', result: 'sent' });
  const opened = await ta.sink.waitFor((e) => ofType('open', WEB)(e) && (e as { path?: string }).path === '/tmp/vigil-secret' && (e as { kill?: unknown }).kill !== undefined, 'the open in web');
  assert.deepEqual((opened as { kill?: unknown }).kill, { rule: 'Secret in web', signal: 'SIGKILL', result: 'sent' });
  const spared = await ta.sink.waitFor(ofType('exec', OTHER), 'the exec in the other container');
  assert.equal((spared as { kill?: unknown }).kill, undefined);
  for (const r of ['Exec in web', 'Secret in web']) {
    const alert = await ta.sink.waitFor((e) => e.type === 'alert' && (e as { rule?: string }).rule === r, `the alert of ${r}`);
    assert.deepEqual((alert as { actions?: unknown }).actions, [{ action: 'kill', signal: 'SIGKILL', inKernel: true, result: 'sent' }]);
    assert.equal(alert.container?.name, WEB);
  }
  assert.deepEqual(
    ta.sink.events.filter((e) => e.type === 'alert').map((e) => (e as { rule?: string }).rule),
    ['Exec in web', 'Secret in web'],
    'nothing in the other container or on the host matched',
  );
  assert.deepEqual([st().process.execKill?.matched, st().process.execKill?.sent], [1, 1]);

  // The container goes: its cgroup's entry goes with it (after the resolver's expiry).
  await podman.rm(web);
  await until(() => st().process.execKill?.cgroups === 0 && st().syscalls?.killRules.cgroups === 0, 'the web container\'s scope entries to go', 30_000);
});
