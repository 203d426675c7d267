// Privileged: the real runtimes the container tests rely on, started from test/helpers/containers.ts. For each,
// a container runs, `cat /proc/self/cgroup` inside it shows the cgroup path format CONTAINERS.md records, its
// cgroup2 id (the inode under /sys/fs/cgroup/unified) is a real one, not the root's 1, and after cleanup nothing
// is left: no process, mount, cgroup, bridge, state dir or host default path. Needs root + the runtimes' packages.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  BUSYBOX_IMAGE,
  cgroup2PathOf,
  cgroupId,
  needsRuntime,
  parseProcCgroup,
  startContainerd,
  startDocker,
  startPodman,
  UNIFIED,
} from '../helpers/containers.ts';

const NEEDS = 'root + container runtimes (podman, dockerd, containerd, runc)';
const HEX64 = '[0-9a-f]{64}';

/**
 * Checks what a container sees in /proc/self/cgroup: every hierarchy (v1 controllers and v2) shows the same
 * path, it matches `format`, the host sees the container's init process in it, and its cgroup2 id is not 1.
 */
function checkCgroup(procSelfCgroup: string, format: RegExp, initPid: number): string {
  const paths = parseProcCgroup(procSelfCgroup);
  const v2 = paths.get('');
  assert.ok(v2, `no cgroup v2 line in:\n${procSelfCgroup}`);
  assert.match(v2, format);
  for (const [controllers, p] of paths) assert.equal(p, v2, `hierarchy "${controllers}" places the container elsewhere`);
  assert.equal(cgroup2PathOf(initPid), v2, 'the host sees the init process in the same cgroup');
  const procs = fs.readFileSync(path.join(UNIFIED, v2, 'cgroup.procs'), 'utf8').split('\n').map(Number);
  assert.ok(procs.includes(initPid), `pid ${initPid} is not in ${v2}/cgroup.procs`);
  const id = cgroupId(v2);
  assert.notEqual(id, 1, 'a container must not share the root cgroup id');
  assert.notEqual(id, cgroupId('/'), 'the container cgroup is not the hierarchy root');
  return v2;
}

test('podman: a container is in /libpod_parent/libpod-<id>; a pod adds /<podid>', async (t) => {
  if (!needsRuntime(t, NEEDS, 'podman')) return;
  const podman = await startPodman(t);
  const id = await podman.run({ name: 'vigil-t1', labels: { app: 'web' } });
  assert.match(id, new RegExp(`^${HEX64}$`));
  const pid = await podman.pid(id);
  checkCgroup(await podman.exec(id, ['cat', '/proc/self/cgroup']), new RegExp(`^/libpod_parent/libpod-${id}$`), pid);

  const pod = await podman.createPod('vigil-p1', { tier: 'db' });
  const inPod = await podman.run({ name: 'vigil-t2', pod, labels: { app: 'db' } });
  checkCgroup(await podman.exec(inPod, ['cat', '/proc/self/cgroup']), new RegExp(`^/libpod_parent/${pod}/libpod-${inPod}$`), await podman.pid(inPod));

  await podman.stop(id);
  await podman.rm(id);
  await podman.rmPod(pod);
  assert.equal((await podman.podman(['ps', '-aq'])).trim(), '', 'no container remains');
  await podman.cleanup();
  assert.deepEqual(podman.leftovers(), []);
  await podman.cleanup(); // safe twice
});

test('docker: a container is in /docker/<id>', async (t) => {
  if (!needsRuntime(t, NEEDS, 'docker')) return;
  const docker = await startDocker(t);
  const id = await docker.run({ name: 'vigil-d1', labels: { app: 'web' } });
  assert.match(id, new RegExp(`^${HEX64}$`));
  assert.equal((await docker.docker(['inspect', '--format', '{{.Config.Image}}', id])).trim(), BUSYBOX_IMAGE);
  checkCgroup(await docker.exec(id, ['cat', '/proc/self/cgroup']), new RegExp(`^/docker/${id}$`), await docker.pid(id));
  await docker.stop(id);
  await docker.rm(id);
  await docker.cleanup();
  assert.deepEqual(docker.leftovers(), []);
  await docker.cleanup();
});

test('containerd (ctr): /<namespace>/<id>, and a systemd-style path given with --cgroup', async (t) => {
  if (!needsRuntime(t, NEEDS, 'containerd')) return;
  const ctrd = await startContainerd(t);
  const id = await ctrd.run({ id: 'vigil-c1', labels: { app: 'web' } });
  checkCgroup(await ctrd.exec(id, ['cat', '/proc/self/cgroup']), new RegExp(`^/${ctrd.namespace}/${id}$`), await ctrd.pid(id));

  // The format a systemd-driven kubelet + containerd produce, which this cgroupfs host cannot make natively.
  const scoped = `s${'0123456789abcdef'.repeat(4).slice(1)}`;
  const uid = '5d2c4e8a_1b2c_4d5e_8f90_a1b2c3d4e5f6';
  const systemdPath = `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid}.slice/cri-containerd-${scoped}.scope`;
  await ctrd.run({ id: scoped, cgroup: systemdPath });
  const seen = checkCgroup(await ctrd.exec(scoped, ['cat', '/proc/self/cgroup']), /^\/kubepods\.slice\/kubepods-besteffort\.slice\/kubepods-besteffort-pod[0-9a-f_]+\.slice\/cri-containerd-[0-9a-z]+\.scope$/, await ctrd.pid(scoped));
  assert.equal(seen, systemdPath);

  await ctrd.rm(id);
  await ctrd.rm(scoped);
  await ctrd.cleanup();
  assert.deepEqual(ctrd.leftovers(), []);
  await ctrd.cleanup();
});

test('containerd (CRI): a pod container is in <cgroup_parent>/<id>, e.g. /kubepods/besteffort/pod<uid>/<id>', async (t) => {
  if (!needsRuntime(t, NEEDS, 'containerd')) return;
  const ctrd = await startContainerd(t);
  const pod = await ctrd.runPod({ name: 'web-0', namespace: 'shop', labels: { app: 'web' }, containers: [{ name: 'app' }] });
  const cid = pod.containers[0]!.id;
  const cri = ctrd.cri();
  const r = await cri.execSync(cid, ['cat', '/proc/self/cgroup'], AbortSignal.timeout(30_000), 20);
  assert.equal(r.exitCode, 0, r.stderr.toString());
  const status = await cri.inspect(cid, AbortSignal.timeout(30_000));
  assert.ok(status?.pid, 'the CRI reports the init pid');
  checkCgroup(r.stdout.toString(), new RegExp(`^/kubepods/besteffort/pod${pod.uid}/${cid}$`), status.pid);
  // The sandbox's pause process has a cgroup of its own beside the containers'.
  const sandboxCgroup = path.join(UNIFIED, pod.cgroupParent, pod.id);
  assert.ok(fs.existsSync(sandboxCgroup), `no sandbox cgroup ${sandboxCgroup}`);

  // The pod got an address from the fixture's own bridge network.
  const sb = await cri.podSandboxStatus(pod.id, AbortSignal.timeout(30_000));
  assert.match(sb?.ip ?? '', /^10\.\d+\.\d+\.\d+$/);
  assert.ok(fs.existsSync(`/sys/class/net/${ctrd.bridge}`), 'the CNI bridge exists while the pod runs');

  await ctrd.removePod(pod.id);
  await ctrd.cleanup();
  assert.deepEqual(ctrd.leftovers(), []);
  assert.deepEqual(await ctrd.iptablesLeftovers(), []);
});

test('cleanup after a failure mid-test leaves nothing either', async (t) => {
  if (!needsRuntime(t, NEEDS, 'podman', 'docker', 'containerd')) return;
  // Start everything, leave containers running and the podman service up, and go straight to cleanup(), as
  // t.after would after a failed assertion.
  const podman = await startPodman(t);
  await podman.run({ labels: { left: 'running' } });
  await podman.createPod('vigil-left').then((pod) => podman.run({ pod }));
  await podman.startService();
  const docker = await startDocker(t);
  await docker.run();
  const ctrd = await startContainerd(t);
  await ctrd.run();
  await ctrd.runPod({ name: 'left-0', containers: [{ name: 'app' }] });
  // leftovers() sees what is running now, so an empty list after cleanup means something.
  for (const f of [podman, docker, ctrd]) {
    const before = f.leftovers();
    assert.ok(before.some((l) => l.startsWith('process ')), `${f.constructor.name}: no process seen in ${before.join(', ')}`);
    assert.ok(before.some((l) => l.startsWith('cgroup ')), `${f.constructor.name}: no cgroup seen`);
    assert.ok(before.includes(`dir ${f.dir}`));
  }
  assert.ok(ctrd.leftovers().includes(`network link ${ctrd.bridge}`));
  await Promise.all([podman.cleanup(), docker.cleanup(), ctrd.cleanup()]);
  assert.deepEqual([...podman.leftovers(), ...docker.leftovers(), ...ctrd.leftovers()], []);
});
