// Privileged: an exec says whether its file is in the upper layer of an overlay file system (a container's
// root: a file written or created after the container started, not one of its image), as
// process.exeUpperLayer, which the default rule "Drop and execute new binary in container" reads. An overlay
// of this test's own (no container needed for the flag): a program of its lower layer, one copied in after the
// mount (upper), and one of the lower layer changed in place (copied up: upper too). A rule that kills in the
// kernel on such an exec (drift prevention) stops the two upper ones before their first instruction.
// Needs root + BPF + overlayfs.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { OutputEvent } from '../../src/pipeline/types.ts';
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
