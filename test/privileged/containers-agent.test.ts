// Privileged: the agent attributes events to real containers of podman, dockerd, containerd (ctr, with a
// systemd-style cgroup name) and a CRI pod, checked against what the runtime itself reports: container id,
// name, image and labels, and the pod's name, namespace and uid. A container started after the agent is
// attributed from its first exec; one running a program written in it before the agent started is drift
// (process.exeUpperLayer) from the agent's start; events around its stop still resolve during the expiry delay; runtime
// sockets that are missing, hang or answer garbage never stall events and show in `vigil status`.
// Needs root + BPF + the container runtimes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { ContainerdClient } from '../../src/containers/runtimes/containerd.ts';
import { CriClient } from '../../src/containers/runtimes/cri.ts';
import { DockerClient } from '../../src/containers/runtimes/docker.ts';
import type { OutputEvent } from '../../src/pipeline/types.ts';
import { runCli, startTestAgent } from '../helpers/agent.ts';
import { BUSYBOX_IMAGE, needsRuntime, startContainerd, startDocker, startPodman } from '../helpers/containers.ts';
import { ROOT, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF + container runtimes';
const CONFIG = { events: { process: { exec: true, exit: true } }, pipeline: { holdForEnrichmentMs: 3000 }, containers: { expirySeconds: 3 } };

const execIn = (id: string, argv0: string) => (e: OutputEvent) => e.type === 'exec' && e.container?.id === id && e.process?.argv?.[0] === argv0;

test('podman: events carry the container, a late container is attributed from its first exec, stop expires after the delay', async (t) => {
  if (!needsRuntime(t, NEEDS, 'podman')) return;
  const podman = await startPodman(t);
  const sock = await podman.startService();
  const early = await podman.run({ name: 'vigil-early', labels: { app: 'web', tier: 'front' } });
  const ta = await startTestAgent(t, { config: CONFIG, runtimeClients: [new DockerClient({ socketPath: sock, runtime: 'podman' })] });
  assert.equal(ta.agent.containers!.find(early)?.id, early, 'a container running before the agent is found by the cgroup walk');

  await podman.exec(early, ['cat', '/proc/self/cgroup']);
  const ev = await ta.sink.waitFor(execIn(early, 'cat'), 'the exec inside the early container');
  assert.deepEqual({ id: ev.container!.id, name: ev.container!.name, image: ev.container!.image, labels: ev.container!.labels, runtime: ev.container!.runtime }, {
    id: early,
    name: 'vigil-early',
    image: BUSYBOX_IMAGE,
    labels: { app: 'web', tier: 'front' },
    runtime: 'podman',
  });
  assert.equal(ev.container!.enrichment, 'done');

  // A container started after the agent: its first execs (`runc init` joining the container's cgroup, then
  // the entrypoint `sleep`) are already attributed.
  const late = await podman.run({ name: 'vigil-late', labels: { app: 'api' } });
  const first = await ta.sink.waitFor((e) => e.type === 'exec' && e.container?.id === late && e.process?.argv?.[0] === 'sleep', 'the late container\'s entrypoint exec');
  assert.deepEqual(first.process!.argv, ['sleep', '3600']);
  const before = ta.sink.events.filter((e) => e.type === 'exec' && e.process?.pid === first.process!.pid && e !== first);
  assert.ok(before.every((e) => e.container?.id === late), 'every exec of the entrypoint\'s pid, runc init included, is attributed');
  assert.equal(first.container!.name, 'vigil-late');
  const started = ta.sink.events.find((e) => e.type === 'container_started' && e.container?.id === late);
  assert.ok(started, 'container_started');
  assert.equal(started.container!.name, 'vigil-late', 'container_started waited for the runtime, like the events');
  assert.ok(ta.sink.events.indexOf(started) < ta.sink.events.indexOf(first), 'and came before the container\'s events');

  // Stop it: the exit of its processes is still attributed, the container stays resolvable for the delay.
  const latePid = first.process!.pid;
  await podman.stop(late);
  const exit = await ta.sink.waitFor((e) => e.type === 'exit' && e.process?.pid === latePid, 'the late container\'s exit');
  assert.equal(exit.container?.id, late);
  await ta.sink.waitFor((e) => e.type === 'container_stopped' && e.container?.id === late, 'container_stopped');
  const ids = ta.agent.containers!.findContainerCgroupIds(late);
  assert.ok(ids.length > 0 && ta.agent.containers!.byCgroupId(ids[0]!)?.id === late, 'still resolvable right after the stop');
  const end = Date.now() + 20_000;
  while (ta.agent.containers!.byCgroupId(ids[0]!) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  assert.equal(ta.agent.containers!.byCgroupId(ids[0]!), undefined, 'expired after the delay');

  // vigil containers and vigil ps --container, through the API.
  await ta.api();
  const cli = (...args: string[]) => runCli([...args, '--socket', ta.socket]);
  const list = JSON.parse((await cli('containers', '--json')).stdout) as { containers: { id: string; name: string; processes: number }[] };
  const row = list.containers.find((c) => c.id === early);
  assert.ok(row && row.name === 'vigil-early' && row.processes >= 1, JSON.stringify(list));
  const ps = JSON.parse((await cli('ps', '--container', 'vigil-early', '--json')).stdout) as { processes: { argv?: string[]; container?: { id: string } }[] };
  assert.ok(ps.processes.length >= 1 && ps.processes.every((p) => p.container?.id === early), JSON.stringify(ps));
  assert.ok(ps.processes.some((p) => p.argv?.join(' ') === 'sleep 3600'));
});

test('eBPF-less mode: a container started after the agent is learned from /proc at its first process event', async (t) => {
  if (!needsRuntime(t, NEEDS, 'podman')) return;
  const podman = await startPodman(t);
  const sock = await podman.startService();
  const ta = await startTestAgent(t, { config: { ...CONFIG, process: { mode: 'procfs' } }, runtimeClients: [new DockerClient({ socketPath: sock, runtime: 'podman' })] });
  assert.equal(ta.agent.status().mode.process, 'procfs');
  // No cgroup sensor here: nothing announces the container's cgroup but its processes.
  const late = await podman.run({ name: 'vigil-procfs-late', labels: { app: 'api' } });
  const first = await ta.sink.waitFor((e) => e.type === 'exec' && e.container?.id === late && e.process?.argv?.[0] === 'sleep', 'the late container\'s entrypoint exec, attributed');
  assert.equal(first.container!.name, 'vigil-procfs-late', 'enriched from the runtime (held until it answered)');
  assert.equal(ta.agent.containers!.find(late)?.existing, false);
});

test('dockerd: events carry the container id, name, image and labels', async (t) => {
  if (!needsRuntime(t, NEEDS, 'docker')) return;
  const docker = await startDocker(t);
  const ta = await startTestAgent(t, { config: CONFIG, runtimeClients: [new DockerClient({ socketPath: docker.socketPath })] });
  const id = await docker.run({ name: 'vigil-docker', labels: { team: 'sec' } });
  await docker.exec(id, ['cat', '/proc/self/cgroup']);
  const ev = await ta.sink.waitFor(execIn(id, 'cat'), 'the exec inside the docker container');
  assert.equal(ev.container!.name, 'vigil-docker');
  assert.equal(ev.container!.image, BUSYBOX_IMAGE);
  assert.deepEqual(ev.container!.labels, { team: 'sec' });
  assert.equal(ev.container!.runtime, 'docker');
  assert.equal(ev.pod, undefined);
});

test('containerd: a ctr container with a systemd-style cgroup name, and a CRI pod with its pod metadata', async (t) => {
  if (!needsRuntime(t, NEEDS, 'containerd')) return;
  const ctrd = await startContainerd(t);
  // ctr run --cgroup <systemd-style path>: the parser must find the id in cri-containerd-<id>.scope.
  const uid = 'a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d';
  const id = 'c'.repeat(63) + '7';
  const scope = `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid.replace(/-/g, '_')}.slice/cri-containerd-${id}.scope`;
  await ctrd.run({ id, cgroup: scope, labels: { app: 'ctr' } });
  // Drift running before the agent starts: a copy of the image's busybox written in the container (its
  // overlay's upper layer; containerd's roots are overlays) and left running. The /proc snapshot, which saw no
  // exec, tells it from the image's own programs by the overlay's upper directory.
  await ctrd.exec(id, ['sh', '-c', 'mkdir /drift && cp /bin/busybox /drift/busybox && (/drift/busybox sleep 3600 </dev/null >/dev/null 2>&1 &)']);
  const ta = await startTestAgent(t, { config: CONFIG, runtimeClients: [new CriClient({ socketPath: ctrd.socketPath }), new ContainerdClient({ socketPath: ctrd.socketPath })] });
  const inCtr = ta.agent.processes!.cache.live().filter((e) => e.ns && ta.agent.containers!.byCgroupId(e.ns.cgroupId)?.id === id);
  const entry = inCtr.find((e) => e.image.argv?.join(' ') === 'sleep 3600');
  const drift = inCtr.find((e) => e.image.exePath === '/drift/busybox');
  assert.ok(entry && drift, JSON.stringify(inCtr.map((e) => [e.pid, e.image.exePath, e.image.argv, e.source])));
  assert.deepEqual([entry.source, entry.image.exeUpperLayer, drift.source, drift.image.exeUpperLayer], ['snapshot', false, 'snapshot', true]);

  await ctrd.exec(id, ['cat', '/proc/self/cgroup']);
  const ev = await ta.sink.waitFor(execIn(id, 'cat'), 'the exec inside the ctr container');
  assert.equal(ev.container!.runtime, 'containerd');
  assert.equal(ev.container!.labels?.app, 'ctr');
  assert.equal(ev.pod?.uid, uid, 'the pod uid comes from the systemd-style path');

  // A CRI pod, with kubelet labels: events carry the pod's name, namespace and uid.
  const pod = await ctrd.runPod({ name: 'web-0', namespace: 'shop', labels: { app: 'shop' }, containers: [{ name: 'main', cmd: ['sleep', '3600'] }] });
  const cid = pod.containers[0]!.id;
  await ctrd.cri().execSync(cid, ['cat', '/proc/self/cgroup'], AbortSignal.timeout(15_000), 10);
  const pev = await ta.sink.waitFor(execIn(cid, 'cat'), 'the exec inside the CRI pod');
  assert.deepEqual({ name: pev.pod?.name, namespace: pev.pod?.namespace, uid: pev.pod?.uid }, { name: 'web-0', namespace: 'shop', uid: pod.uid });
  assert.equal(pev.container!.name, 'main');
});

test('runtime sockets that are missing, hang or answer garbage never stall events, and show in status', async (t) => {
  if (!needsRuntime(t, NEEDS, 'podman')) return;
  const dir = tempDir(t, 'vigil-badsock-');
  const hang = net.createServer(() => undefined); // accepts, never answers
  const garbage = net.createServer((s) => s.end('this is not HTTP\r\n\r\n'));
  await new Promise<void>((r) => hang.listen(path.join(dir, 'hang.sock'), r));
  await new Promise<void>((r) => garbage.listen(path.join(dir, 'garbage.sock'), r));
  t.after(() => {
    hang.close();
    garbage.close();
  });
  const podman = await startPodman(t);
  const ta = await startTestAgent(t, {
    config: { ...CONFIG, pipeline: { holdForEnrichmentMs: 0 }, containers: { enrichTimeoutMs: 300 } },
    runtimeClients: [
      new DockerClient({ socketPath: path.join(dir, 'missing.sock') }),
      new DockerClient({ socketPath: path.join(dir, 'hang.sock') }),
      new DockerClient({ socketPath: path.join(dir, 'garbage.sock'), runtime: 'podman' }),
    ],
  });
  const id = await podman.run({ name: 'vigil-unenriched' });
  const ev = await ta.sink.waitFor((e) => e.type === 'exec' && e.container?.id === id, 'an exec in the container, without enrichment');
  assert.equal(ev.container!.enrichment, 'pending', 'emitted at once with the container id');
  spawnSync('/bin/true', ['host-side']);
  await ta.sink.waitFor((e) => e.type === 'exec' && e.process?.argv?.[1] === 'host-side', 'host events keep flowing');
  // The failures are counted per runtime socket.
  const end = Date.now() + 20_000;
  const health = () => ta.agent.status().containers!.runtimes;
  while (health().some((h) => h.errors === 0) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  const byPath = Object.fromEntries(health().map((h) => [path.basename(h.endpoint), h]));
  assert.ok(byPath['missing.sock']!.errors > 0 && /unavailable|no such|ENOENT/i.test(byPath['missing.sock']!.lastError ?? ''), JSON.stringify(byPath['missing.sock']));
  assert.ok(byPath['hang.sock']!.timeouts > 0, JSON.stringify(byPath['hang.sock']));
  assert.ok(byPath['garbage.sock']!.errors > 0, JSON.stringify(byPath['garbage.sock']));
});
