// Privileged: an exec says whether its file is in the upper layer of an overlay file system (a container's
// root: a file written or created after the container started, not one of its image), as
// process.exeUpperLayer, which the default rule "Drop and execute new binary in container" reads. An overlay
// of this test's own (no container needed for the flag): a program of its lower layer, one copied in after the
// mount (upper), and one of the lower layer changed in place (copied up: upper too). A rule that kills in the
// kernel on such an exec (drift prevention) stops the two upper ones before their first instruction.
// Needs root + BPF + overlayfs.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { OutputEvent } from '../../src/pipeline/types.ts';
import { readProcess } from '../../src/process/procfs.ts';
import { UpperLayerProbe } from '../../src/process/upper-layer.ts';
import { startTestAgent } from '../helpers/agent.ts';
import { privileged, tempDir } from '../helpers/privileged.ts';

test('an exec of a file in an overlay\'s upper layer says so, and an in-kernel rule kills it before it runs; one of its lower layer does not', async (t) => {
  if (!privileged(t, 'root + BPF + overlayfs')) return;
  const dir = tempDir(t, 'vigil-ovl-');
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => path.join(dir, d));
  for (const d of [lower, upper, work, merged]) fs.mkdirSync(d);
  for (const name of ['image-true', 'changed-true']) fs.copyFileSync('/usr/bin/true', path.join(lower, name));
  for (const name of ['image-true', 'changed-true']) fs.chmodSync(path.join(lower, name), 0o755);
  execFileSync('mount', ['-t', 'overlay', 'vigil-ovl', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
  try {
    const ta = await startTestAgent(t, {
      config: {
        events: { process: { exec: true, exit: false, creds: false, comm: false }, files: false, network: false, other: false },
        rules: {
          enabled: true,
          defaults: false,
          enforce: true,
          inline: [
            {
              rule: 'Drifted binary',
              condition: `process.?exeUpperLayer.orValue(false) && process.exe.startsWith("${merged}/")`,
              output: 'drift {process.exe}',
              priority: 'critical',
              types: ['exec'],
              actions: [{ kill: { signal: 'SIGKILL', inKernel: true } }],
            },
          ],
        },
      },
    });
    fs.copyFileSync('/usr/bin/true', path.join(merged, 'dropped-true'));
    fs.chmodSync(path.join(merged, 'dropped-true'), 0o755);
    fs.chmodSync(path.join(merged, 'changed-true'), 0o750); // a metadata change copies the file up
    assert.ok(fs.existsSync(path.join(upper, 'dropped-true')) && fs.existsSync(path.join(upper, 'changed-true')) && !fs.existsSync(path.join(upper, 'image-true')));
    const run = (name: string) => spawnSync(path.join(merged, name));
    assert.deepEqual([run('image-true').status, run('dropped-true').signal, run('changed-true').signal], [0, 'SIGKILL', 'SIGKILL'], 'the upper layer\'s programs killed before they ran');
    const execOf = async (name: string) =>
      (await ta.sink.waitFor((e: OutputEvent) => e.type === 'exec' && e.process?.exe === path.join(merged, name), `the exec of ${name}`)).process!;
    assert.equal((await execOf('image-true')).exeUpperLayer, undefined, 'a file of the lower layer (the image)');
    assert.equal((await execOf('dropped-true')).exeUpperLayer, true, 'written after the mount');
    assert.equal((await execOf('changed-true')).exeUpperLayer, true, 'copied up by a chmod');
    const killed = await ta.sink.waitFor((e: OutputEvent) => e.type === 'exec' && e.process?.exe === path.join(merged, 'dropped-true'), 'the killed exec');
    assert.deepEqual((killed as { kill?: unknown }).kill, { rule: 'Drifted binary', signal: 'SIGKILL', result: 'sent' });
  } finally {
    execFileSync('umount', [merged]);
  }
});

/** Starts `cmd` (added to `started`); resolves once /proc shows it running `exe`. */
async function running(started: ChildProcess[], cmd: string[], exe: string): Promise<ChildProcess> {
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: 'ignore' });
  started.push(child);
  for (let i = 0; i < 400; i++) {
    let now: string | undefined;
    try {
      now = fs.readlinkSync(`/proc/${child.pid}/exe`);
    } catch {
      now = undefined;
    }
    if (now === exe) return child;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${cmd.join(' ')} never ran ${exe}`);
}

test('from /proc (processes started before the agent): drift, not drift, and unknown when the upper layer cannot be seen', async (t) => {
  if (!privileged(t, 'root + overlayfs + unshare')) return;
  const dir = tempDir(t, 'vigil-ovl-proc-');
  const [lower, upper, work, merged, hidden] = ['lower', 'upper', 'work', 'merged', 'hidden'].map((d) => path.join(dir, d));
  for (const d of [lower, upper, work, merged, hidden]) fs.mkdirSync(d);
  fs.mkdirSync(path.join(lower, 'd'));
  fs.copyFileSync('/usr/bin/sleep', path.join(lower, 'd', 'image-sleep'));
  // redirect_dir: a directory of the lower layer renamed in the merged view (the upper layer holds it under its
  // new name, pointing back at the old): the upper layer is still looked up by the path the process sees.
  execFileSync('mount', ['-t', 'overlay', 'vigil-ovl', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work},redirect_dir=on`, merged]);
  const started: ChildProcess[] = [];
  try {
    fs.renameSync(path.join(merged, 'd'), path.join(merged, 'e'));
    fs.copyFileSync('/usr/bin/sleep', path.join(merged, 'e', 'dropped-sleep'));
    const [imageExe, droppedExe] = [path.join(merged, 'e', 'image-sleep'), path.join(merged, 'e', 'dropped-sleep')];
    const image = await running(started, [imageExe, '60'], imageExe);
    const dropped = await running(started, [droppedExe, '60'], droppedExe);
    // A rootless runtime's overlay: mounted in a mount namespace of its own, its upper directory on a file
    // system only that namespace has (here a tmpfs over `hidden`), so the agent's lstat finds nothing there.
    const inner = path.join(hidden, 'ovl');
    const script = [
      `mount -t tmpfs vigil-hidden ${hidden}`,
      `mkdir -p ${inner}/lower ${inner}/upper ${inner}/work ${inner}/merged`,
      `mount -t overlay vigil-ovl-ns -o lowerdir=${inner}/lower,upperdir=${inner}/upper,workdir=${inner}/work ${inner}/merged`,
      `cp /usr/bin/sleep ${inner}/merged/unseen-sleep`,
      `exec ${inner}/merged/unseen-sleep 60`,
    ].join(' && ');
    const unseen = await running(started, ['unshare', '-m', '--propagation', 'private', 'sh', '-c', script], `${inner}/merged/unseen-sleep`);
    assert.deepEqual(fs.readdirSync(hidden), [], 'the tmpfs is the namespace\'s only');

    const probe = new UpperLayerProbe();
    assert.equal(probe.exeInUpperLayer(image.pid!, imageExe), false, 'a file of the lower layer, in a renamed directory');
    assert.equal(probe.exeInUpperLayer(dropped.pid!, droppedExe), true, 'written after the mount, in a renamed directory');
    assert.equal(probe.exeInUpperLayer(unseen.pid!, `${inner}/merged/unseen-sleep`), undefined, 'an upper layer the agent cannot reach');
    // What the snapshot and the eBPF-less mode make of them: "could not tell" is marked, never read as false.
    const read = (pid: number) => {
      const p = readProcess(pid)!;
      return [p.exeUpperLayer, p.unknown.includes('exeUpperLayer')];
    };
    assert.deepEqual([read(image.pid!), read(dropped.pid!), read(unseen.pid!)], [[false, false], [true, false], [undefined, true]]);
  } finally {
    // Killed by the PIDs started here, and gone, before the overlay they run from is unmounted.
    await Promise.all(
      started.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r).kill('SIGKILL')))),
    );
    execFileSync('umount', [merged]);
  }
});
