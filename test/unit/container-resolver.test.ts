// The container resolver with scripted runtime clients and a scripted cgroup hierarchy: attribution by
// cgroup id, enrichment that is pending then done, retries with backoff, runtimes that fail or hang, expiry
// after removal, and lifecycle events. No privileges, no real runtimes (those are in test/privileged).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CgroupEvent } from '../../src/events/types.ts';
import type { CgroupLayoutInfo } from '../../src/containers/cgroups.ts';
import { ContainerResolver, type ContainerLifecycleEvent } from '../../src/containers/resolver.ts';
import { RuntimeError, type RuntimeClient, type RuntimeContainerInfo, type RuntimeName } from '../../src/containers/runtimes/types.ts';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const UID = '6f1a2b3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c';
const layout: CgroupLayoutInfo = { layout: 'hybrid', hierarchies: [], primary: { mount: '/fake', version: 2, controllers: [] }, v1SubsysId: 0xffffffff, hierarchyId: 0 };

type Behaviour = (id: string, signal: AbortSignal) => Promise<RuntimeContainerInfo | undefined>;
function client(runtime: RuntimeName, behave: Behaviour): RuntimeClient & { calls: string[]; closed: boolean } {
  const c = {
    runtime,
    endpoint: `/fake/${runtime}.sock`,
    calls: [] as string[],
    closed: false,
    inspect(id: string, signal: AbortSignal) {
      c.calls.push(id);
      return behave(id, signal);
    },
    list: async () => [],
    close() {
      c.closed = true;
    },
  };
  return c;
}
const info = (id: string, o: Partial<RuntimeContainerInfo> = {}): RuntimeContainerInfo => ({ id, name: `name-${id.slice(0, 4)}`, image: 'localhost/test-busybox:latest', labels: { app: 'web' }, runtime: 'docker', ...o });
const cg = (op: CgroupEvent['op'], id: number, path: string): CgroupEvent => ({ type: 'cgroup', ktimeNs: 0, pid: 1, tid: 1, cgroupId: 1, op, id, hierarchyId: 0, level: 2, taskPid: 0, path, pathTruncated: false });
/** Waits (bounded) until `pred` holds: async enrichment is not timed, only awaited. */
async function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('containers found at start are attributed by cgroup id and enriched from their runtime', async (t) => {
  const docker = client('docker', async (id) => (id === A ? info(A) : undefined));
  const r = new ContainerResolver({ layout, clients: [docker], walk: () => [{ id: 1, path: '/', createdMs: 0 }, { id: 100, path: `/docker/${A}`, createdMs: 0 }, { id: 5, path: '/system.slice/sshd.service', createdMs: 0 }] });
  t.after(() => r.stop());
  r.start();
  const c = r.byCgroupId(100)!;
  assert.equal(c.id, A);
  assert.equal(c.enrichment, 'pending', 'before the runtime answered');
  assert.equal(c.existing, true);
  await until(() => c.enrichment === 'done', 'enrichment');
  assert.equal(c.name, `name-${A.slice(0, 4)}`);
  assert.deepEqual(c.labels, { app: 'web' });
  assert.equal(r.byCgroupId(5), undefined, 'host cgroup');
  assert.equal(r.byCgroupId(1), undefined);
  assert.equal(r.stats().hostCgroups, 2);
  assert.deepEqual(r.findContainerCgroupIds(A.slice(0, 12)), [100], 'found by id prefix');
  assert.equal(r.find(`name-${A.slice(0, 4)}`)?.id, A, 'found by name');
});

test('a container created later is known from its cgroup_mkdir, before any of its processes run', async (t) => {
  const events: ContainerLifecycleEvent[] = [];
  const docker = client('docker', async (id) => info(id));
  const r = new ContainerResolver({ layout, clients: [docker], walk: () => [], onEvent: (e) => events.push(e), expiryMs: 20 });
  t.after(() => r.stop());
  r.start();
  r.handleCgroupEvent(cg('mkdir', 200, `/docker/${B}`));
  assert.equal(r.byCgroupId(200)?.id, B);
  assert.deepEqual(events.map((e) => [e.type, e.container.id, e.container.existing]), [['container_started', B, false]]);
  await until(() => r.byCgroupId(200)!.enrichment === 'done', 'enrichment');
  // Removal: still resolvable during the expiry delay, then gone.
  r.handleCgroupEvent(cg('rmdir', 200, `/docker/${B}`));
  assert.equal(events.at(-1)!.type, 'container_stopped');
  assert.equal(r.byCgroupId(200)?.id, B, 'late events still resolve');
  assert.deepEqual(r.containers().map((c) => c.id), [], 'not listed as running');
  await until(() => r.byCgroupId(200) === undefined, 'expiry');
  assert.equal(r.find(B), undefined);
});

test('sub-cgroups of a container are attributed to it; its own cgroup is the shortest path', (t) => {
  const r = new ContainerResolver({ layout, clients: [], walk: () => [{ id: 301, path: `/system.slice/docker-${A}.scope/init`, createdMs: 0 }, { id: 300, path: `/system.slice/docker-${A}.scope`, createdMs: 0 }] });
  t.after(() => r.stop());
  r.start();
  assert.equal(r.byCgroupId(301), r.byCgroupId(300));
  assert.equal(r.byCgroupId(300)!.cgroupPath, `/system.slice/docker-${A}.scope`);
  assert.deepEqual(r.findContainerCgroupIds(A).sort(), [300, 301]);
});

test('a Kubernetes pod\'s container asks the CRI runtime first and carries the pod', async (t) => {
  const docker = client('docker', async () => undefined);
  const cri = client('containerd', async (id) => info(id, { runtime: 'containerd', labels: { 'io.kubernetes.pod.name': 'web-0', 'io.kubernetes.pod.namespace': 'prod', 'io.kubernetes.pod.uid': UID } }));
  const r = new ContainerResolver({ layout, clients: [docker, cri], walk: () => [{ id: 400, path: `/kubepods/besteffort/pod${UID}/${A}`, createdMs: 0 }] });
  t.after(() => r.stop());
  r.start();
  assert.equal(r.byCgroupId(400)!.pod?.uid, UID, 'the pod uid is known from the path before enrichment');
  await until(() => r.byCgroupId(400)!.enrichment === 'done', 'enrichment');
  assert.deepEqual(cri.calls, [A]);
  assert.deepEqual(docker.calls, [], 'docker was not needed');
  const c = r.byCgroupId(400)!;
  assert.deepEqual({ name: c.pod!.name, namespace: c.pod!.namespace, uid: c.pod!.uid, qos: c.pod!.qos }, { name: 'web-0', namespace: 'prod', uid: UID, qos: 'besteffort' });
  assert.equal(c.runtime, 'containerd');
});

test('a runtime that does not know the container yet is asked again with backoff', async (t) => {
  let known = false;
  const docker = client('docker', async (id) => (known ? info(id) : undefined));
  const r = new ContainerResolver({ layout, clients: [docker], walk: () => [{ id: 500, path: `/docker/${A}`, createdMs: 0 }], retryBaseMs: 5, retryMaxMs: 10 });
  t.after(() => r.stop());
  r.start();
  await until(() => docker.calls.length >= 2, 'a retry');
  assert.equal(r.byCgroupId(500)!.enrichment, 'pending');
  known = true;
  await until(() => r.byCgroupId(500)!.enrichment === 'done', 'enrichment after the runtime learned it');
  assert.ok(r.stats().retries >= 1);
});

test('runtimes that hang, refuse or answer garbage never stall attribution, and are reported', async (t) => {
  const hang = client('docker', (_id, signal) => new Promise((_, rej) => signal.addEventListener('abort', () => rej(new RuntimeError('docker', '/fake/docker.sock', 'timeout', 'no answer')))));
  const garbage = client('podman', async () => {
    throw new RuntimeError('podman', '/fake/podman.sock', 'protocol', 'unexpected reply');
  });
  const r = new ContainerResolver({ layout, clients: [hang, garbage], walk: () => [{ id: 600, path: `/docker/${A}`, createdMs: 0 }], timeoutMs: 10, maxRetries: 1, retryBaseMs: 1, retryMaxMs: 2 });
  t.after(() => r.stop());
  r.start();
  // Attribution is immediate whatever the runtimes do.
  assert.equal(r.byCgroupId(600)!.id, A);
  await until(() => r.byCgroupId(600)!.enrichment === 'failed', 'giving up');
  const c = r.byCgroupId(600)!;
  assert.equal(c.enrichment, 'failed');
  assert.match(c.enrichmentError!, /no answer.*unexpected reply|unexpected reply.*no answer/);
  const health = Object.fromEntries(r.stats().runtimes.map((h) => [h.runtime, h]));
  assert.equal(health.docker!.timeouts, 2);
  assert.equal(health.podman!.errors, 2);
  assert.match(health.podman!.lastError!, /unexpected reply/);
});

test('without any runtime socket containers are still attributed by id, enrichment marked failed', async (t) => {
  const r = new ContainerResolver({ layout, clients: [], walk: () => [{ id: 700, path: `/libpod_parent/libpod-${A}`, createdMs: 0 }] });
  t.after(() => r.stop());
  r.start();
  await until(() => r.byCgroupId(700)!.enrichment === 'failed', 'giving up');
  const c = r.byCgroupId(700)!;
  assert.equal(c.runtime, 'podman');
  assert.equal(c.enrichment, 'failed');
  assert.equal(c.enrichmentError, 'no runtime socket found');
});

test('unknown ids are learned from a process in them; other hierarchies\' events are ignored', (t) => {
  const r = new ContainerResolver({ layout, clients: [], walk: () => [] });
  t.after(() => r.stop());
  r.start();
  r.handleCgroupEvent({ ...cg('mkdir', 800, `/docker/${A}`), hierarchyId: 4 }); // a v1 hierarchy
  assert.equal(r.byCgroupId(800), undefined);
  const read = (p: string) => (p === '/proc/42/cgroup' ? `4:memory:/docker/${A}\n0::/docker/${A}\n` : '');
  assert.equal(r.learnFromProcess(800, 42, read)?.id, A);
  assert.equal(r.learnFromProcess(801, 43, () => { throw new Error('gone'); }), undefined);
});

test('stop closes every client and cancels retries', async (t) => {
  const docker = client('docker', async () => undefined);
  const r = new ContainerResolver({ layout, clients: [docker], walk: () => [{ id: 900, path: `/docker/${A}`, createdMs: 0 }], retryBaseMs: 5 });
  r.start();
  r.stop();
  const calls = docker.calls.length;
  await new Promise((res) => setTimeout(res, 30));
  assert.equal(docker.calls.length, calls);
  assert.equal(docker.closed, true);
  void t;
});
