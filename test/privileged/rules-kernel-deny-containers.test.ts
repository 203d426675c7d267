// A deny rule about a container runtime's API socket, on real podman containers: a unix listener of this test
// is mounted into two containers as /var/run/docker.sock, and a rule denies connects to it from the one named
// "…-web". The kernel fails that container's connect (EPERM) before the listener sees it; the other container
// and the host reach the socket. The container part of the rule is evaluated in user space per container, and
// the unix connect hook looks the task's cgroup up where it holds, as the IP hooks do. The default rule about
// runtime sockets reports both containers' connects, denied or not.
// Needs root + BPF + cgroup v2 + podman + gcc (a static client for the busybox image).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DockerClient } from '../../src/containers/runtimes/docker.ts';
import type { OutputEvent } from '../../src/pipeline/types.ts';
import { startTestAgent } from '../helpers/agent.ts';
import { countingServer } from '../helpers/net.ts';
import { needsRuntime, startPodman, until } from '../helpers/containers.ts';
import { cgroupLinkProgramNames, tempDir } from '../helpers/privileged.ts';

const WEB = 'vigil-udeny-web';
const OTHER = 'vigil-udeny-other';
const IN_CONTAINER = '/var/run/docker.sock';
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');

test('a deny rule about the runtime socket denies its connect in one container, and only there', async (t) => {
  if (!needsRuntime(t, 'root + BPF + podman', 'podman')) return;
  const dir = tempDir(t, 'vigil-udeny-');
  const sockDir = path.join(dir, 'api');
  const binDir = path.join(dir, 'bin');
  fs.mkdirSync(sockDir);
  fs.mkdirSync(binDir);
  const client = path.join(binDir, 'unix-connect');
  execFileSync('gcc', ['-static', '-O1', '-Wall', '-o', client, path.join(FIXTURES, 'unix-connect.c')]);
  const hostApi = path.join(sockDir, 'api.sock');
  const { accepted } = await countingServer(t, hostApi);

  const podman = await startPodman(t);
  const psock = await podman.startService();
  const ta = await startTestAgent(t, {
    config: {
      events: { process: { exec: true, exit: false, creds: false, comm: false }, files: false, network: { connect: true }, other: false },
      rules: {
        enabled: true,
        defaults: true,
        enforce: true,
        inline: [
          { macro: 'web', condition: `has(container.id) && container.?name.orValue("") == "${WEB}"` },
          {
            rule: 'Runtime socket from web',
            condition: `web && event.?remoteAddress.orValue("") in ["${IN_CONTAINER}", "${hostApi}"]`,
            output: 'denied {process.comm} in {container.name} to {event.remoteAddress}',
            priority: 'critical',
            types: ['connect'],
            actions: [{ deny: {} }],
          },
        ],
      },
    },
    runtimeClients: [new DockerClient({ socketPath: psock, runtime: 'podman' })],
  });
  const volumes = [`${hostApi}:${IN_CONTAINER}`, `${binDir}:/opt/vigil:ro`];
  const web = await podman.run({ name: WEB, volumes });
  const other = await podman.run({ name: OTHER, volumes });
  const st = () => ta.agent.status();
  await until(() => st().syscalls?.killRules.cgroups === 1, 'the deny scope of the web container', 30_000, () => JSON.stringify(st().syscalls?.killRules));
  assert.ok(cgroupLinkProgramNames().includes('deny_connect_unix'), 'the unix connect hook is attached');

  // In web: denied before the listener sees it. In the other container, and on the host: reached.
  assert.equal(await podman.exec(web, ['/opt/vigil/unix-connect', IN_CONTAINER]), 'failed: Operation not permitted\n');
  assert.equal(await podman.exec(other, ['/opt/vigil/unix-connect', IN_CONTAINER]), 'connected\n');
  assert.equal(execFileSync(client, [hostApi]).toString(), 'connected\n');
  await until(() => accepted() === 2, 'the two connections allowed', 5_000);

  const connectIn = (name: string) => (e: OutputEvent) => e.type === 'connect' && e.container?.name === name && (e as { remoteAddress?: string }).remoteAddress === IN_CONTAINER;
  const denied = (await ta.sink.waitFor(connectIn(WEB), 'the connect in web')) as OutputEvent & { deny?: unknown; errno?: string; family?: string };
  assert.deepEqual([denied.family, denied.errno, denied.deny], ['AF_UNIX', 'EPERM', { rule: 'Runtime socket from web', result: 'denied' }]);
  const spared = (await ta.sink.waitFor(connectIn(OTHER), 'the connect in the other container')) as OutputEvent & { deny?: unknown; ret?: number };
  assert.deepEqual([spared.ret, spared.deny], [0, undefined]);
  const alertOf = (rule: string, name: string) => (e: OutputEvent) => e.type === 'alert' && (e as { rule?: string }).rule === rule && e.container?.name === name;
  const alert = await ta.sink.waitFor(alertOf('Runtime socket from web', WEB), 'the deny rule\'s alert');
  assert.deepEqual((alert as { actions?: unknown }).actions, [{ action: 'deny', inKernel: true, result: 'denied' }]);
  assert.ok(!ta.sink.events.some(alertOf('Runtime socket from web', OTHER)));
  // The default rule: both containers reached for the socket, one of them refused.
  for (const name of [WEB, OTHER]) await ta.sink.waitFor(alertOf('Container runtime socket connected from a container', name), `the default rule's alert in ${name}`);
  assert.deepEqual([st().syscalls?.filters?.denyMatched, st().syscalls?.filters?.denied], [1, 1]);
  await podman.rm(web);
  await podman.rm(other);
});
