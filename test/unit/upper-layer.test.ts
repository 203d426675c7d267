// The overlay upper directory of a mount's options, as the snapshot's drift check reads it (the check itself,
// on a real container's overlay, is in test/privileged/containers-agent.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UpperLayerProbe, upperDirOf } from '../../src/process/upper-layer.ts';

test('upperdir= is read from the options, its escapes undone; an overlay without one has no upper layer', () => {
  assert.equal(upperDirOf('rw,lowerdir=/l1:/l2,upperdir=/var/lib/c/a\\054b\\040c/fs,workdir=/var/lib/c/work,uuid=on'), '/var/lib/c/a,b c/fs');
  assert.equal(upperDirOf('ro,lowerdir=/l1:/l2'), undefined);
  assert.equal(upperDirOf(''), undefined);
});

test('an executable that is deleted, or named by no absolute path, is not known, not "not drift"', () => {
  const probe = new UpperLayerProbe();
  assert.equal(probe.exeInUpperLayer(process.pid, '/tmp/x (deleted)'), undefined);
  assert.equal(probe.exeInUpperLayer(process.pid, 'x'), undefined);
  assert.equal(probe.exeInUpperLayer(2 ** 22 + 1, '/usr/bin/true'), undefined, 'no such process');
});
