// /proc files and links hold bytes, not UTF-8: the eBPF-less mode must decode them as the BPF side decodes
// kernel strings (valid UTF-8 as such, any other byte as "\xNN"), or the two modes disagree on a process whose
// name or path is not UTF-8. A fake /proc tree in a temp directory stands in for the real one.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readProcess, readText } from '../../src/process/procfs.ts';

test('a /proc file with bytes that are not UTF-8 reads with them escaped, never as U+FFFD', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-procfs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'stat');
  fs.writeFileSync(f, Buffer.concat([Buffer.from('42 (we'), Buffer.from([0xff]), Buffer.from('ird é) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1234 0 0\n')]));
  const text = readText(f)!;
  assert.ok(text.startsWith('42 (we\\xffird é) S'), text);
  assert.ok(!text.includes('\ufffd'));
});

test('readProcess names an executable whose path is not UTF-8 with the bytes escaped', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-procfs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pid = path.join(dir, '42');
  fs.mkdirSync(pid);
  fs.writeFileSync(path.join(pid, 'stat'), Buffer.concat([Buffer.from('42 (a'), Buffer.from([0xfe]), Buffer.from('b) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1234 0 0\n')]));
  fs.writeFileSync(path.join(pid, 'cmdline'), 'x\0');
  // The link's target: a file whose name has a 0xff byte.
  const target = Buffer.concat([Buffer.from(`${dir}/we`), Buffer.from([0xff]), Buffer.from('ird')]);
  fs.writeFileSync(target, '');
  fs.symlinkSync(target, Buffer.from(path.join(pid, 'exe')));
  const p = readProcess(42, { procRoot: dir });
  assert.ok(p, 'the fake process reads');
  assert.equal(p.comm, 'a\\xfeb');
  assert.ok(!p.unknown?.includes('exe'), 'the executable is known');
  assert.equal(p.exePath, `${dir}/we\\xffird`);
});
