// Privileged: vigil's runtime clients against the real runtimes of test/helpers/containers.ts. Each inspects a
// real container and must report its name, image, labels and init pid (a pid the host sees in the container's
// cgroup), and for the CRI pod the pod's name, namespace and uid. Needs root + the runtimes' packages.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DockerClient } from '../../src/containers/runtimes/docker.ts';
import { CriClient } from '../../src/containers/runtimes/cri.ts';
import { ContainerdClient } from '../../src/containers/runtimes/containerd.ts';
import { detectRuntimeClients } from '../../src/containers/runtimes/detect.ts';
import { RuntimeError, type RuntimeClient, type RuntimeContainerInfo } from '../../src/containers/runtimes/types.ts';
import { BUSYBOX_IMAGE, cgroup2PathOf, needsRuntime, startContainerd, startDocker, startPodman, UNIFIED } from '../helpers/containers.ts';

const NEEDS = 'root + container runtimes (podman, dockerd, containerd, runc)';
const signal = () => AbortSignal.timeout(15_000);

/** The pid is a process the host sees inside the container's cgroup (the one `cgroupPath` names, if given). */
function assertPidInContainer(info: RuntimeContainerInfo | undefined, cgroupPath?: RegExp): void {
  assert.ok(info?.pid, `no pid in ${JSON.stringify(info)}`);
  const cg = cgroup2PathOf(info.pid);
  assert.ok(cg, `pid ${info.pid} has no cgroup (not running?)`);
  if (cgroupPath) assert.match(cg, cgroupPath);
  const procs = fs.readFileSync(path.join(UNIFIED, cg, 'cgroup.procs'), 'utf8').split('\n').map(Number);
  assert.ok(procs.includes(info.pid), `pid ${info.pid} not in ${cg}`);
}

function closeAfter<T extends RuntimeClient>(t: { after(fn: () => void): void }, c: T): T {
  t.after(() => c.close());
  return c;
}

test('DockerClient against dockerd: inspect, list, not-found', async (t) => {
  if (!needsRuntime(t, NEEDS, 'docker')) return;
  const docker = await startDocker(t);
  const id = await docker.run({ name: 'vigil-web', labels: { app: 'web', tier: 'front' } });
  const client = closeAfter(t, new DockerClient({ socketPath: docker.socketPath }));

  const info = await client.inspect(id, signal());
  assert.equal(info?.id, id);
  assert.equal(info.runtime, 'docker');
  assert.equal(info.name, 'vigil-web');
  assert.equal(info.image, BUSYBOX_IMAGE);
  assert.equal(info.imageDigest, (await docker.docker(['inspect', '--format', '{{.Image}}', id])).trim());
  assert.deepEqual(info.labels, { app: 'web', tier: 'front' });
  assert.equal(info.state, 'running');
  assert.equal(info.pid, await docker.pid(id));
  assertPidInContainer(info, new RegExp(`^/docker/${id}$`));
  assert.ok(info.createdAt && !Number.isNaN(Date.parse(info.createdAt)));

  const listed = await client.list(signal());
  assert.deepEqual(listed.map((c) => [c.id, c.name, c.image]), [[id, 'vigil-web', BUSYBOX_IMAGE]]);
  assert.equal(await client.inspect('f'.repeat(64), signal()), undefined);

  // Stopped: still known, no pid.
  await docker.stop(id);
  const stopped = await client.inspect(id, signal());
  assert.equal(stopped?.state, 'exited');
  assert.equal(stopped?.pid, undefined);
});

test('DockerClient as podman against `podman system service`: inspect with the podman pod, list', async (t) => {
  if (!needsRuntime(t, NEEDS, 'podman')) return;
  const podman = await startPodman(t);
  const solo = await podman.run({ name: 'vigil-solo', labels: { app: 'web' } });
  const pod = await podman.createPod('vigil-pod');
  const inPod = await podman.run({ name: 'vigil-inpod', pod, labels: { app: 'db' } });
  const socket = await podman.startService();
  const client = closeAfter(t, new DockerClient({ socketPath: socket, runtime: 'podman' }));

  const a = await client.inspect(solo, signal());
  assert.equal(a?.runtime, 'podman');
  assert.equal(a.name, 'vigil-solo');
  assert.equal(a.image, BUSYBOX_IMAGE);
  assert.deepEqual(a.labels, { app: 'web' });
  assert.match(a.imageDigest ?? '', /^sha256:[0-9a-f]{64}$/);
  assert.equal(a.pid, await podman.pid(solo));
  assertPidInContainer(a, new RegExp(`^/libpod_parent/libpod-${solo}$`));
  assert.equal(a.extra, undefined, 'not in a pod');

  const b = await client.inspect(inPod, signal());
  assert.equal(b?.name, 'vigil-inpod');
  assert.deepEqual(b.extra, { pod, podName: 'vigil-pod' });
  assertPidInContainer(b, new RegExp(`^/libpod_parent/${pod}/libpod-${inPod}$`));

  const listed = await client.list(signal());
  const byId = new Map(listed.map((c) => [c.id, c]));
  assert.equal(byId.get(solo)?.name, 'vigil-solo');
  assert.deepEqual(byId.get(inPod)?.extra, { pod, podName: 'vigil-pod' });
  assert.equal(listed.length, 3, 'the two containers and the pod infra container');
  assert.equal(await client.inspect('f'.repeat(64), signal()), undefined);
});

test('CriClient against containerd: the pod container with its pod, the sandbox, list', async (t) => {
  if (!needsRuntime(t, NEEDS, 'containerd')) return;
  const ctrd = await startContainerd(t);
  const pod = await ctrd.runPod({ name: 'web-0', namespace: 'shop', labels: { app: 'web' }, containers: [{ name: 'app', labels: { role: 'server' } }] });
  const cid = pod.containers[0]!.id;
  const client = closeAfter(t, new CriClient({ socketPath: ctrd.socketPath, runtime: 'cri-o' }));

  const info = await client.inspect(cid, signal());
  assert.equal(client.runtime, 'containerd', 'Version() names the runtime, whatever the guess was');
  assert.equal(info?.id, cid);
  assert.equal(info.runtime, 'containerd');
  assert.equal(info.name, 'app');
  assert.equal(info.image, BUSYBOX_IMAGE);
  assert.match(info.imageDigest ?? '', /^sha256:[0-9a-f]{64}$/);
  assert.equal(info.labels.role, 'server');
  assert.equal(info.labels['io.kubernetes.container.name'], 'app');
  assert.equal(info.state, 'running');
  assert.deepEqual(info.pod, { name: 'web-0', namespace: 'shop', uid: pod.uid, labels: { app: 'web', 'io.kubernetes.pod.name': 'web-0', 'io.kubernetes.pod.namespace': 'shop', 'io.kubernetes.pod.uid': pod.uid } });
  assert.equal(info.extra?.sandboxId, pod.id);
  assert.equal(info.extra?.['annotation:io.kubernetes.container.restartCount'], '0');
  assertPidInContainer(info, new RegExp(`^/kubepods/besteffort/pod${pod.uid}/${cid}$`));

  // The pause process's cgroup is the sandbox's: inspecting the sandbox id answers with the pod.
  const sb = await client.inspect(pod.id, signal());
  assert.equal(sb?.extra?.kind, 'sandbox');
  assert.equal(sb?.pod?.uid, pod.uid);
  assert.equal(sb?.state, 'ready');

  const listed = await client.list(signal());
  assert.deepEqual(listed.map((c) => [c.id, c.name, c.pod?.name, c.pod?.namespace, c.pod?.uid]), [[cid, 'app', 'web-0', 'shop', pod.uid]]);
  assert.equal(await client.inspect('f'.repeat(64), signal()), undefined);
});

test('ContainerdClient against containerd: ctr containers, and CRI ones via their labels', async (t) => {
  if (!needsRuntime(t, NEEDS, 'containerd')) return;
  const ctrd = await startContainerd(t);
  const id = await ctrd.run({ id: 'vigil-c1', labels: { app: 'web' } });
  const pod = await ctrd.runPod({ name: 'db-0', namespace: 'shop', containers: [{ name: 'db' }] });
  const client = closeAfter(t, new ContainerdClient({ socketPath: ctrd.socketPath }));

  const namespaces = await client.namespaces(signal());
  assert.ok(namespaces.includes(ctrd.namespace) && namespaces.includes('k8s.io'), namespaces.join(','));
  const info = await client.inspect(id, signal());
  assert.equal(info?.id, id);
  assert.equal(info.runtime, 'containerd');
  assert.equal(info.name, id);
  assert.equal(info.image, BUSYBOX_IMAGE);
  assert.match(info.imageDigest ?? '', /^sha256:[0-9a-f]{64}$/);
  // containerd adds labels of its own (the image's stop signal) to the ones given.
  assert.deepEqual(info.labels, { app: 'web', 'io.containerd.image.config.stop-signal': 'SIGTERM' });
  assert.equal(info.state, 'running');
  assert.equal(info.pid, await ctrd.pid(id));
  assertPidInContainer(info, new RegExp(`^/${ctrd.namespace}/${id}$`));
  assert.equal(info.extra?.namespace, ctrd.namespace);
  assert.equal(info.extra?.runtime, 'io.containerd.runc.v2');
  assert.equal(info.extra?.cgroupsPath, `/${ctrd.namespace}/${id}`);

  const cri = await client.inspect(pod.containers[0]!.id, signal());
  assert.equal(cri?.extra?.namespace, 'k8s.io');
  assert.equal(cri?.name, 'db');
  assert.deepEqual(cri?.pod, { name: 'db-0', namespace: 'shop', uid: pod.uid });
  assertPidInContainer(cri, new RegExp(`^/kubepods/besteffort/pod${pod.uid}/`));

  const running = new Set((await client.list(signal())).map((c) => c.id));
  assert.ok(running.has(id) && running.has(pod.containers[0]!.id) && running.has(pod.id), [...running].join(','));
  assert.equal(await client.inspect('no-such-container', signal()), undefined);

  // A stopped task: metadata still there, no pid.
  await ctrd.ctr(['-n', ctrd.namespace, 'task', 'kill', '-s', 'SIGKILL', id]);
  await ctrd.ctr(['-n', ctrd.namespace, 'task', 'delete', id]).catch(async () => {
    // The kill is asynchronous: once the task has exited, delete succeeds.
    await new Promise((r) => setTimeout(r, 500));
    await ctrd.ctr(['-n', ctrd.namespace, 'task', 'delete', id]);
  });
  const gone = await client.inspect(id, signal());
  assert.equal(gone?.state, 'stopped');
  assert.equal(gone?.pid, undefined);
});

test('configured sockets give working clients; a daemon that goes away gives RuntimeErrors', async (t) => {
  if (!needsRuntime(t, NEEDS, 'docker', 'containerd')) return;
  const docker = await startDocker(t);
  const ctrd = await startContainerd(t);
  const dockerId = await docker.run({ labels: { via: 'detect' } });
  const ctrId = await ctrd.run({ labels: { via: 'detect' } });
  const clients = detectRuntimeClients([
    { runtime: 'docker', socket: docker.socketPath },
    { runtime: 'containerd', socket: ctrd.socketPath },
  ]);
  t.after(() => clients.forEach((c) => c.close()));
  assert.deepEqual(clients.map((c) => c.constructor.name), ['DockerClient', 'CriClient', 'ContainerdClient']);
  const [dc, cri, cc] = clients as [DockerClient, CriClient, ContainerdClient];
  assert.equal((await dc.inspect(dockerId, signal()))?.labels.via, 'detect');
  assert.equal(await cri.inspect(ctrId, signal()), undefined, 'a ctr container is not a CRI container');
  assert.equal((await cc.inspect(ctrId, signal()))?.labels.via, 'detect');

  await docker.cleanup();
  await ctrd.cleanup();
  for (const c of clients) {
    await assert.rejects(c.inspect(dockerId, signal()), (err: unknown) => err instanceof RuntimeError && err.kind === 'unavailable', c.constructor.name);
  }
});
