// Privileged: the default rules on real container lifecycles. Starting, using and stopping containers with
// podman, dockerd and containerd (ctr and a CRI pod) is what a container host does all day; none of it may
// raise an alert. The runtimes' own work is what used to: runc setting up a container's mounts before its
// entrypoint runs (*Mount in container*, dozens per start) and podman taking its CNI lock under /etc
// (*Sensitive file modified*). The same rules still fire for the same actions done by a program in the
// container: a mount and an nsenter in a privileged exec, and a mount by a program of the container named
// after the runtime, and a binary dropped into a container and run. And no rule fails on any of the real events.
// Needs root + BPF + the container runtimes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ContainerdClient } from '../../src/containers/runtimes/containerd.ts';
import { CriClient } from '../../src/containers/runtimes/cri.ts';
import { DockerClient } from '../../src/containers/runtimes/docker.ts';
import type { OutputEvent } from '../../src/pipeline/types.ts';
import { startTestAgent } from '../helpers/agent.ts';
import { needsRuntime, startContainerd, startDocker, startPodman } from '../helpers/containers.ts';

const NEEDS = 'root + BPF + container runtimes';
/** The default rule set with every event type its rules read: plain opens, and the other file types restricted to sensitive modifications (the default). */
const CONFIG = { events: { files: { open: true, sensitiveWrites: true, secretReads: true } }, pipeline: { holdForEnrichmentMs: 3000 } };

/** Alerts about this test's doing: in a container, or by a process descending from this one or a runtime. */
const RUNTIME_COMM = /^(runc|conmon|podman|docker|dockerd|containerd|containerd-shim|ctr|catatonit|pause)/;
const ours = (e: OutputEvent): boolean =>
  e.type === 'alert' &&
  (e.container !== undefined || (e.ancestors ?? []).includes(process.pid) || RUNTIME_COMM.test(e.process?.comm ?? '') || RUNTIME_COMM.test(e.parent?.comm ?? ''));
const describe = (e: OutputEvent): string => `${String((e as { rule?: unknown }).rule)}: ${String((e as { output?: unknown }).output)}`;

test('default rules: podman, dockerd and containerd container lifecycles raise no alert; a mount and a setns in a container do', async (t) => {
  if (!needsRuntime(t, NEEDS, 'podman', 'docker', 'containerd')) return;
  const podman = await startPodman(t);
  const docker = await startDocker(t);
  const ctrd = await startContainerd(t);
  const psock = await podman.startService();
  const ta = await startTestAgent(t, {
    config: CONFIG,
    runtimeClients: [
      new DockerClient({ socketPath: psock, runtime: 'podman' }),
      new DockerClient({ socketPath: docker.socketPath }),
      new CriClient({ socketPath: ctrd.socketPath }),
      new ContainerdClient({ socketPath: ctrd.socketPath }),
    ],
  });
  const alerts = () => ta.sink.events.filter(ours);

  // Lifecycles: start, a command inside, stop and remove.
  const p = await podman.run({ name: 'vigil-quiet-podman' });
  await podman.exec(p, ['cat', '/proc/self/status']);
  await podman.stop(p);
  await podman.rm(p);
  const d = await docker.run({ name: 'vigil-quiet-docker' });
  await docker.exec(d, ['cat', '/proc/self/status']);
  await docker.stop(d);
  const c = await ctrd.run({ id: 'vigil-quiet-ctr' });
  await ctrd.exec(c, ['cat', '/proc/self/status']);
  const pod = await ctrd.runPod({ name: 'quiet-0', namespace: 'shop', labels: { app: 'shop' }, containers: [{ name: 'main', cmd: ['sleep', '3600'] }] });
  await ctrd.cri().execSync(pod.containers[0]!.id, ['cat', '/proc/self/status'], AbortSignal.timeout(15_000), 10);
  await ctrd.removePod(pod.id);

  // The control: the same rules on the same kinds of action by programs that are not the runtime.
  const q = await podman.run({ name: 'vigil-loud-podman' });
  await podman.podman(['exec', '--privileged', q, 'mount', '-t', 'tmpfs', 'none', '/tmp']);
  const mount = await ta.sink.waitFor((e) => ours(e) && (e as { rule?: string }).rule === 'Mount in container' && e.container?.id === q && e.process?.comm === 'mount', 'an alert for the mount in the container');
  assert.equal(mount.process?.comm, 'mount');
  await podman.podman(['exec', '--privileged', q, 'nsenter', '-t', '1', '-u', 'true']);
  const setns = await ta.sink.waitFor((e) => ours(e) && (e as { rule?: string }).rule === 'Namespace entered in container' && e.container?.id === q && e.process?.comm === 'nsenter', 'an alert for nsenter in the container');
  // A program in the container that is named runc and starts itself: busybox copied to /tmp/runc, whose shell
  // execs its mount applet from /proc/self/exe. Same binary name, same parent binary as runc's own setup, so
  // the name and the parent alone exempted it; but it is the container's file, not the host's (hostExe).
  const script = 'mkdir -p /tmp/m && cp /bin/busybox /tmp/runc && exec -a sh /tmp/runc -c "(mount -t tmpfs none /tmp/m); true"';
  await podman.podman(['exec', '--privileged', q, 'sh', '-c', script]);
  const disguised = await ta.sink.waitFor((e) => ours(e) && (e as { rule?: string }).rule === 'Mount in container' && e.container?.id === q && e.process?.exe === '/tmp/runc', 'an alert for the mount by a program named runc');
  assert.equal(disguised.parent?.exe, '/tmp/runc', 'its parent runs the same binary, as runc:[2:INIT]\'s does');
  assert.equal(disguised.process?.hostExe, undefined);
  // A binary dropped into a container and run: containerd's root file systems are overlays (podman's here are
  // vfs), and the copy is in the upper layer, not in the image. A CRI pod's container, whose id the cgroup names.
  const dpod = await ctrd.runPod({ name: 'loud-0', namespace: 'shop', labels: { app: 'shop' }, containers: [{ name: 'main', cmd: ['sleep', '3600'] }] });
  await ctrd.cri().execSync(dpod.containers[0]!.id, ['sh', '-c', 'cp /bin/busybox /tmp/dropped && (exec -a true /tmp/dropped)'], AbortSignal.timeout(15_000), 10);
  const dropped = await ta.sink.waitFor(
    (e) => ours(e) && (e as { rule?: string }).rule === 'Drop and execute new binary in container' && e.process?.exe === '/tmp/dropped',
    'an alert for the binary dropped and run in the container',
  );
  assert.equal(dropped.process?.exeUpperLayer, true);
  // What keeps the runtimes quiet is that exemption: their own mounts in the containers were seen, by the
  // host's runtime binary.
  const setup = ta.sink.events.filter((e) => e.type === 'mount' && e.container !== undefined && e.process?.hostExe === true && e.parent?.exe === e.process.exe);
  assert.ok(setup.length > 0, 'mounts by the runtime in its containers, from the host\'s binary');
  // Events of a container whose runtime had not answered yet are held up to holdForEnrichmentMs, and alerts
  // are raised off the hot path (the rules subscriber's queue): wait past the hold for the last ones.
  await new Promise((r) => setTimeout(r, CONFIG.pipeline.holdForEnrichmentMs + 1000));
  const noise = alerts().filter((e) => e !== mount && e !== setns && e !== disguised && e !== dropped);
  assert.deepEqual(noise.map(describe), [], 'no alert from container lifecycles');
  // Every check of every real event (plain opens included) evaluated, or turned down by the rules' guards
  // (which never hide an error: prefilter.ts): a rule reading a field an event may lack fails, and a failed
  // check is no alert.
  const rules = ta.agent.status().rules!;
  assert.ok(rules.received + rules.prefiltered > 1000, `the rules saw the events (${rules.received} checked, ${rules.prefiltered} turned down)`);
  assert.deepEqual(rules.perRule.filter((x) => x.errors).map((x) => `${x.name}: ${x.errors} errors, ${x.lastError}`), []);
});
