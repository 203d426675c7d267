// /proc files and links hold bytes, not UTF-8: the eBPF-less mode must decode them as the BPF side decodes
// kernel strings (valid UTF-8 as such, any other byte as "\xNN"), or the two modes disagree on a process whose
// name or path is not UTF-8. A fake /proc tree in a temp directory stands in for the real one.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readProcess, readText } from '../../src/process/procfs.ts';

/** A /proc/<pid>/stat line of a running process (no PF_EXITING), with the fields numbered in `fields` set. */
function statLine(pid: number, comm: string, fields: Record<number, number>): string {
  const f = Array.from({ length: 50 }, () => '0'); // fields 3..52
  f[0] = 'S';
  f[1] = '1'; // ppid
  f[6] = '4194560'; // flags: no PF_EXITING
  f[19] = '1'; // threads
  f[19 + 2] = '1234'; // starttime (field 22)
  for (const [n, v] of Object.entries(fields)) f[Number(n) - 3] = String(v);
  return `${pid} (${comm}) ${f.join(' ')}\n`;
}

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

// The kernel holds a process's memory through one read of cmdline; a second read, after the process exited,
// returns nothing. A 100 KB argv read in two pieces was cut at the first, unnoticed (the eBPF-less tree then
// disagreed with the BPF one). Here every read after the first of an open file returns 0, as for a process
// that has exited.
test('a long argv and environ are read whole in one read: a process that exits after it loses nothing', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-procfs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pid = path.join(dir, '43');
  fs.mkdirSync(pid);
  fs.writeFileSync(path.join(pid, 'stat'), '43 (true) Z 1 43 43 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 1 0 1234 0 0\n');
  const big = 'A'.repeat(100_000);
  fs.writeFileSync(path.join(pid, 'cmdline'), `true\0${big}\0`);
  fs.writeFileSync(path.join(pid, 'environ'), `X=${big}\0`);
  const reads = new Map<number, number>();
  const readSync = fs.readSync;
  const openSync = fs.openSync;
  t.mock.method(fs, 'openSync', (...a: Parameters<typeof fs.openSync>) => {
    const fd = openSync(...a);
    reads.delete(fd);
    return fd;
  });
  t.mock.method(fs, 'readSync', (fd: number, buf: Buffer, off: number, len: number, pos: null) => {
    const n = (reads.get(fd) ?? 0) + 1;
    reads.set(fd, n);
    return n > 1 ? 0 : readSync(fd, buf, off, len, pos);
  });
  const p = readProcess(43, { procRoot: dir });
  t.mock.restoreAll();
  assert.ok(p, 'the fake process reads');
  assert.deepEqual(p.argv, ['true', big], 'the whole argv');
  assert.deepEqual(p.envRaw, [`X=${big}`], 'the whole environ');
  assert.ok(!p.unknown?.includes('argv') && !p.unknown?.includes('env'));
});

// An empty environ read is not always an empty environment. The kernel reads nothing from a process mid-exec
// (its new memory has no environment laid out yet: env_end is 0) and through a file opened before an exec
// replaced the memory. Read as "no variables", such a process disagreed with BPF mode (CI saw it on a `true`
// caught mid-exec). The stat line's env_start and env_end (fields 50 and 51) tell the cases apart.
test('an empty environ is an empty environment only when the stat line says so; otherwise env is unknown', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-procfs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fake = (pid: number, envStart: number, envEnd: number) => {
    const p = path.join(dir, String(pid));
    fs.mkdirSync(p);
    fs.writeFileSync(path.join(p, 'stat'), statLine(pid, 'true', { 50: envStart, 51: envEnd }));
    fs.writeFileSync(path.join(p, 'cmdline'), 'true\0');
    fs.writeFileSync(path.join(p, 'environ'), '');
    return readProcess(pid, { procRoot: dir })!;
  };
  const empty = fake(50, 140737488346000, 140737488346000);
  assert.deepEqual(empty.envRaw, [], 'env -i: an empty environment, known');
  assert.ok(!empty.unknown.includes('env'));
  for (const [pid, s, e, what] of [
    [51, 0, 0, 'mid-exec: no environment laid out yet'],
    [52, 140737488345000, 140737488346000, 'an environment the read did not get (the file was opened before an exec)'],
  ] as const) {
    const p = fake(pid, s, e);
    assert.equal(p.envRaw, undefined, what);
    assert.ok(p.unknown.includes('env'), `${what}: marked unknown`);
    assert.deepEqual(p.argv, ['true'], `${what}: argv still known`);
  }
});

// An exec between the reads of cmdline, environ and exe would give one image's argv with the next one's
// environment (the eBPF-less mode reads a process right after its exec, often as it execs again). Each exec
// lays out the arguments and environment at new addresses, which the stat line shows (fields 48 to 51): a
// move between the stat lines before and after the reads means the image is read again, and if it moves
// again, it is unknown. Here each open of a fake process's stat, cmdline and environ finds the next of its
// contents in place, as if the process exec'd in between (fs's open and read are wrapped to put it there).
test('an exec between the reads: the image is read again, or unknown; never one image\'s argv with another\'s environment', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-procfs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  /** A stat line whose arguments and environment lie at `at` (arg_start, arg_end, env_start, env_end). */
  const laidOut = (pid: number, comm: string, at: number) => statLine(pid, comm, { 48: at, 49: at + 16, 50: at + 16, 51: at + 64 });
  /** Files whose successive opens find the next content: path -> contents and opens so far. */
  const successive = new Map<string, { contents: string[]; opens: number }>();
  let inner = false; // readFileSync may open through fs.openSync: one open, counted once
  const next = (file: unknown) => {
    const s = !inner && typeof file === 'string' ? successive.get(file) : undefined;
    if (s) fs.writeFileSync(file as string, s.contents[Math.min(s.opens++, s.contents.length - 1)]!);
  };
  const { readFileSync, openSync } = fs;
  t.mock.method(fs, 'readFileSync', (file: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
    next(file);
    inner = true;
    try {
      return (readFileSync as (...a: unknown[]) => unknown)(file, ...rest);
    } finally {
      inner = false;
    }
  });
  t.mock.method(fs, 'openSync', (file: fs.PathLike, ...rest: unknown[]) => {
    next(file);
    return (openSync as (...a: unknown[]) => unknown)(file, ...rest);
  });
  const fake = (pid: number, stats: string[], cmdlines: string[], environs: string[]) => {
    const p = path.join(dir, String(pid));
    fs.mkdirSync(p);
    fs.symlinkSync(process.execPath, path.join(p, 'exe'));
    for (const [name, contents] of [['stat', stats], ['cmdline', cmdlines], ['environ', environs]] as const) successive.set(path.join(p, name), { contents, opens: 0 });
    const read = readProcess(pid, { procRoot: dir })!;
    return { read, opens: (name: string) => successive.get(path.join(p, name))!.opens };
  };
  // No exec: one read of each, and one more of stat after them.
  const still = fake(59, [laidOut(59, 'cat', 1000)], ['cat\0'], ['A=1\0']);
  assert.deepEqual([still.read.comm, still.read.argv, still.read.envRaw], ['cat', ['cat'], ['A=1']]);
  assert.deepEqual([still.opens('stat'), still.opens('cmdline'), still.opens('environ')], [2, 1, 1]);
  // One exec, between the reads of cmdline and environ: read again, the newer image whole, with its comm.
  const once = fake(60, [laidOut(60, 'old', 1000), laidOut(60, 'new', 5000)], ['old\0', 'new\0'], ['NEW=1\0']);
  assert.deepEqual([once.read.comm, once.read.argv, once.read.envRaw], ['new', ['new'], ['NEW=1']]);
  assert.deepEqual(once.read.unknown.filter((f) => ['argv', 'env', 'exe'].includes(f)), []);
  assert.equal(once.read.exePath, process.execPath);
  assert.deepEqual([once.opens('stat'), once.opens('cmdline'), once.opens('environ')], [3, 2, 2]);
  // Its memory gone by the second stat line (exiting: no addresses): what the reads got is one image, kept.
  const gone = fake(62, [laidOut(62, 'sleep', 1000), statLine(62, 'sleep', {})], ['sleep\0'], ['B=2\0']);
  assert.deepEqual([gone.read.argv, gone.read.envRaw], [['sleep'], ['B=2']]);
  assert.deepEqual([gone.opens('stat'), gone.opens('cmdline')], [2, 1]);
  // An exec during each read: what it runs is unknown, not a mixture.
  const twice = fake(61, [laidOut(61, 'old', 1000), laidOut(61, 'new', 5000), laidOut(61, 'newer', 9000)], ['old\0', 'new\0'], ['NEW=1\0', 'NEWER=1\0']);
  assert.deepEqual([twice.read.argv, twice.read.envRaw, twice.read.exePath], [undefined, undefined, undefined]);
  for (const f of ['argv', 'env', 'exe']) assert.ok(twice.read.unknown.includes(f), f);
});
