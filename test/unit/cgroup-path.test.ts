// The cgroup path parser against real-world paths from every runtime, cgroup v1 and v2, cgroupfs and systemd
// drivers, nested and Kubernetes layouts, plus host paths that must not be mistaken for containers.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { getContainerIdFromTaskDir, parseCgroupPath, type ParsedCgroupPath } from '../../src/containers/cgroup-path.ts';

const A = 'a'.repeat(63) + '1';
const B = 'b'.repeat(63) + '2';
const P = 'c'.repeat(64);
const UID = '6f1a2b3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c';
const UIDU = UID.replace(/-/g, '_');

const cases: [string, Partial<ParsedCgroupPath> | undefined][] = [
  // docker
  [`/docker/${A}`, { runtime: 'docker', containerId: A, systemd: false }],
  [`/sys/fs/cgroup/memory/docker/${A}`, { runtime: 'docker', containerId: A }],
  [`/sys/fs/cgroup/unified/docker/${A}`, { runtime: 'docker', containerId: A }],
  [`12:pids:/docker/${A}`, { runtime: 'docker', containerId: A }],
  [`0::/system.slice/docker-${A}.scope`, { runtime: 'docker', containerId: A, systemd: true }],
  [`/docker/${A}/docker/${B}`, { runtime: 'docker', containerId: B }], // docker in docker: innermost
  [`/system.slice/docker-${A}.scope/init`, { runtime: 'docker', containerId: A }], // cgroup v2 "init" leaf
  // podman
  [`/libpod_parent/libpod-${A}`, { runtime: 'podman', containerId: A, systemd: false }],
  [`/libpod_parent/${P}/libpod-${A}`, { runtime: 'podman', containerId: A, podmanPod: P }],
  [`/machine.slice/libpod-${A}.scope`, { runtime: 'podman', containerId: A, systemd: true }],
  [`/machine.slice/libpod-pod-${P}.slice/libpod-${A}.scope`, { runtime: 'podman', containerId: A, podmanPod: P }],
  [`/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${A}.scope/container`, { runtime: 'podman', containerId: A }],
  [`/machine.slice/libpod-conmon-${A}.scope`, { runtime: 'podman', containerId: A, conmon: true }],
  // containerd
  [`/default/mycontainer`, { runtime: 'containerd', containerId: 'mycontainer', namespace: 'default' }],
  [`/k8s.io/${A}`, { runtime: 'containerd', containerId: A, namespace: 'k8s.io' }],
  [`/moby/${A}`, { runtime: 'containerd', containerId: A, namespace: 'moby' }],
  [`/system.slice/containerd.service/kubepods-besteffort-pod${UIDU}.slice:cri-containerd:${A}`, { runtime: 'containerd', containerId: A, podUid: UID, qos: 'besteffort' }],
  [`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UIDU}.slice/cri-containerd-${A}.scope`, { runtime: 'containerd', containerId: A, podUid: UID, qos: 'besteffort', systemd: true }],
  // CRI-O
  [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UIDU}.slice/crio-${A}.scope`, { runtime: 'cri-o', containerId: A, podUid: UID, qos: 'burstable' }],
  [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UIDU}.slice/crio-conmon-${A}.scope`, { runtime: 'cri-o', containerId: A, conmon: true }],
  [`/kubepods/burstable/pod${UID}/crio-${A}`, { runtime: 'cri-o', containerId: A, podUid: UID, qos: 'burstable' }],
  // Kubernetes cgroupfs (docker or containerd: the path alone cannot tell)
  [`/kubepods/besteffort/pod${UID}/${A}`, { runtime: undefined, containerId: A, podUid: UID, qos: 'besteffort' }],
  [`/kubepods/burstable/pod${UID}/${A}`, { runtime: undefined, containerId: A, podUid: UID, qos: 'burstable' }],
  [`/kubepods/pod${UID}/${A}`, { runtime: undefined, containerId: A, podUid: UID, qos: 'guaranteed' }],
  [`/sys/fs/cgroup/cpu,cpuacct/kubepods/besteffort/pod${UID}/${A}`, { containerId: A, podUid: UID }],
  [`/kubepods.slice/kubepods-pod${UIDU}.slice/docker-${A}.scope`, { runtime: 'docker', containerId: A, podUid: UID, qos: 'guaranteed' }],
  // garden, lxc, nspawn
  [`/garden/8f7a3b2c-1d2e-4f5a-6b7c-8d9e0f1a2b3c`, { runtime: 'garden', containerId: '8f7a3b2c-1d2e-4f5a-6b7c-8d9e0f1a2b3c' }],
  [`/lxc.payload.web01`, { runtime: 'lxc', containerId: 'web01' }],
  [`/lxc/web01`, { runtime: 'lxc', containerId: 'web01' }],
  [`/machine.slice/machine-debian\\x2dtest.scope`, { runtime: 'nspawn', containerId: 'debian-test' }],
  // host cgroups: not containers
  ['/', undefined],
  ['0::/', undefined],
  ['/init.scope', undefined],
  ['/system.slice/sshd.service', undefined],
  ['/system.slice/docker.service', undefined],
  ['/system.slice/containerd.service', undefined],
  ['/user.slice/user-1000.slice/session-3.scope', undefined],
  ['/kubepods/besteffort', undefined],
  [`/kubepods/besteffort/pod${UID}`, undefined], // the pod itself, not a container
  ['/libpod_parent', undefined],
  ['/docker', undefined],
  ['/docker/not-an-id', undefined],
  ['/myservice/worker', undefined], // two levels, but not a containerd namespace
];

test(`parses ${cases.length} real-world cgroup paths across runtimes, v1 and v2`, () => {
  assert.ok(cases.length >= 25);
  for (const [input, want] of cases) {
    const got = parseCgroupPath(input);
    if (want === undefined) {
      assert.equal(got, undefined, `${input} is not a container`);
      continue;
    }
    assert.ok(got, `${input} should parse`);
    for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k as keyof ParsedCgroupPath], v, `${input}: ${k}`);
  }
});

test('extra containerd namespaces can be configured', () => {
  assert.equal(parseCgroupPath('/mynamespace/ctr1'), undefined);
  assert.deepEqual(parseCgroupPath('/mynamespace/ctr1', ['mynamespace']), { runtime: 'containerd', containerId: 'ctr1', namespace: 'mynamespace', systemd: false });
});

test('hostile input never throws', () => {
  for (const s of ['', '////', '\0', 'docker', '/docker/' + 'f'.repeat(65), 'x'.repeat(10000), '/kubepods/pod/', ':::', '9:', '0::']) {
    assert.doesNotThrow(() => parseCgroupPath(s));
  }
});

test('getContainerIdFromTaskDir reads a task\'s cgroup file, preferring the v2 line', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-task-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'cgroup'), `12:pids:/docker/${B}\n1:name=systemd:/docker/${B}\n0::/system.slice/docker-${A}.scope\n`);
  assert.equal(getContainerIdFromTaskDir(dir), A);
  fs.writeFileSync(path.join(dir, 'cgroup'), '0::/init.scope\n');
  assert.equal(getContainerIdFromTaskDir(dir), undefined);
  fs.writeFileSync(path.join(dir, 'cgroup'), `0::/machine.slice/libpod-conmon-${A}.scope\n3:memory:/libpod_parent/libpod-${B}\n`);
  assert.equal(getContainerIdFromTaskDir(dir), B, 'conmon is not the container');
  assert.equal(getContainerIdFromTaskDir(path.join(dir, 'missing')), undefined);
  assert.equal(getContainerIdFromTaskDir(`/proc/${process.pid}`), undefined, 'this test runs on the host');
});
