// File sink: JSON Lines, exact size-based rotation boundaries and file counts, bounded queue, close.
// Every test checks received = sent + dropped + queued.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { OutputEvent, SinkStats } from '../../src/pipeline/types.ts';
import { ByteLine } from '../../src/pipeline/json-bytes.ts';
import { FileSink } from '../../src/sinks/file.ts';

function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-file-sink-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function balanced(s: SinkStats): void {
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  assert.equal(s.received, s.sent + dropped + s.queued, `received = sent + dropped + queued: ${JSON.stringify(s)}`);
}

/** An event whose JSON line is exactly `bytes` bytes long (newline excluded). */
function sized(i: number, bytes: number): [OutputEvent, string] {
  const ev: OutputEvent = { type: 'open', time: '2025-01-01T00:00:00.000Z', ktimeNs: i, pad: '' };
  const base = JSON.stringify(ev).length;
  const id = String(i).padStart(6, '0');
  ev.pad = `${id}${'x'.repeat(bytes - base - 6)}`;
  const line = JSON.stringify(ev);
  assert.equal(Buffer.byteLength(line), bytes);
  return [ev, line];
}

function lines(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), 'every line ends with a newline');
  return text.split('\n').slice(0, -1);
}

/**
 * Closes both sinks, then: the same counts (the byte bound reached), the same rotated files, byte for byte.
 * `a` wrote `fileA` (and its rotations) with lines given as strings; `b` the same lines another way.
 */
async function sameFilesAndCounts(a: FileSink, fileA: string, b: FileSink, fileB: string): Promise<void> {
  await Promise.all([a.close(), b.close()]);
  balanced(a.stats());
  balanced(b.stats());
  assert.deepEqual(b.stats(), { ...a.stats() });
  assert.ok((a.stats().dropped['queue-full'] ?? 0) > 0, 'the byte bound was reached');
  const files = (p: string) => fs.readdirSync(path.dirname(p)).filter((f) => f.startsWith(path.basename(p))).map((f) => f.slice(path.basename(p).length)).sort();
  assert.deepEqual(files(fileB), files(fileA));
  assert.ok(files(fileA).length >= 2, 'rotated');
  for (const suffix of files(fileA)) assert.ok(fs.readFileSync(fileB + suffix).equals(fs.readFileSync(fileA + suffix)), `file${suffix}`);
}

const idOf = (line: string) => Number((JSON.parse(line) as { pad: string }).pad.slice(0, 6));

describe('FileSink', () => {
  it('rotates at exact size boundaries and keeps maxFiles files', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'events.jsonl');
    // 99-byte lines + newline = 100 bytes; 1000-byte files hold exactly 10.
    const sink = new FileSink({ path: file, maxSizeBytes: 1000, maxFiles: 3 });
    for (let i = 0; i < 35; i++) sink.write(...sized(i, 99));
    await sink.close();
    const s = sink.stats();
    balanced(s);
    assert.equal(s.sent, 35);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['events.jsonl', 'events.jsonl.1', 'events.jsonl.2']);
    assert.equal(fs.statSync(`${file}.2`).size, 1000);
    assert.equal(fs.statSync(`${file}.1`).size, 1000);
    assert.equal(fs.statSync(file).size, 500);
    // Oldest to newest: .2 (10-19), .1 (20-29), active (30-34); the file with 0-9 was rotated away.
    const ids = [...lines(`${file}.2`), ...lines(`${file}.1`), ...lines(file)].map(idOf);
    assert.deepEqual(ids, Array.from({ length: 25 }, (_, k) => 10 + k));
  });

  it('takes lines as bytes too: the same file, rotation and queue bounds as lines given as strings', async (t) => {
    const dir = tempDir(t);
    const asText = path.join(dir, 'text.jsonl');
    const asBytes = path.join(dir, 'bytes.jsonl');
    const a = new FileSink({ path: asText, maxSizeBytes: 1000, maxFiles: 3, maxQueueBytes: 2000 });
    const b = new FileSink({ path: asBytes, maxSizeBytes: 1000, maxFiles: 3, maxQueueBytes: 2000 });
    const scratch = Buffer.alloc(4096);
    for (let i = 0; i < 60; i++) {
      const [, line] = sized(i, i % 10 === 9 ? 1999 : 99); // some too large for the byte bound with others queued
      a.writeLine(line);
      const at = 7 + (i % 5); // anywhere in the caller's buffer
      const n = scratch.write(line, at);
      b.writeBytes(scratch, at, at + n);
      scratch.fill(0x7b); // the sink copied what it needs
    }
    await sameFilesAndCounts(a, asText, b, asBytes);
  });

  it('takes lines written in place too (placeLine/commitPlaced): the same files and counts as lines given as strings', async (t) => {
    const dir = tempDir(t);
    const asText = path.join(dir, 'text.jsonl');
    const inPlace = path.join(dir, 'place.jsonl');
    const a = new FileSink({ path: asText, maxSizeBytes: 1000, maxFiles: 3, maxQueueBytes: 2000 });
    const b = new FileSink({ path: inPlace, maxSizeBytes: 1000, maxFiles: 3, maxQueueBytes: 2000 });
    const w = new ByteLine(16);
    for (let i = 0; i < 80; i++) {
      // Some lines too large for the byte bound with others queued, some larger than the room offered.
      const [, line] = sized(i, i % 10 === 9 ? 1999 : i % 13 === 12 ? 70_000 : 99);
      a.writeLine(line);
      b.placeLine(w);
      // A placement never committed (the pipeline's event was dropped) leaves nothing behind.
      if (i % 7 === 3) b.placeLine(w);
      w.text(line);
      if (w.placed) b.commitPlaced(w.pos - w.start);
      else b.writeBytes(w.buf, w.start, w.pos);
      if (i === 40) await Promise.all([a.flush(), b.flush()]); // lines placed after a write, into a reused chunk
    }
    await sameFilesAndCounts(a, asText, b, inPlace);
  });

  it('never lets a file pass maxSizeBytes when lines do not divide it', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'e.jsonl');
    const sink = new FileSink({ path: file, maxSizeBytes: 950, maxFiles: 10 });
    for (let i = 0; i < 20; i++) sink.write(...sized(i, 99));
    await sink.flush();
    // 9 lines (900 bytes) per file: 9 + 9 + 2.
    assert.equal(fs.statSync(`${file}.2`).size, 900);
    assert.equal(fs.statSync(`${file}.1`).size, 900);
    assert.equal(fs.statSync(file).size, 200);
    assert.equal(fs.readdirSync(dir).length, 3);
    await sink.close();
    balanced(sink.stats());
  });

  it('counts bytes, not characters (multi-byte UTF-8)', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'u.jsonl');
    const ev: OutputEvent = { type: 'open', time: 't', ktimeNs: 1, path: 'é'.repeat(20) };
    const line = JSON.stringify(ev); // 20 two-byte characters
    const bytes = Buffer.byteLength(line) + 1;
    const max = 2 * (line.length + 1) + 5;
    assert.ok(2 * bytes > max, 'two lines fit by characters but not by bytes');
    const sink = new FileSink({ path: file, maxSizeBytes: max, maxFiles: 5 });
    sink.write(ev, line);
    sink.write(ev, line);
    await sink.close();
    assert.equal(fs.statSync(file).size, bytes);
    assert.equal(fs.statSync(`${file}.1`).size, bytes);
    balanced(sink.stats());
  });

  it('writes a line larger than maxSizeBytes alone into its own file', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'big.jsonl');
    const sink = new FileSink({ path: file, maxSizeBytes: 200, maxFiles: 5 });
    sink.write(...sized(0, 99));
    sink.write(...sized(1, 499));
    sink.write(...sized(2, 99));
    await sink.close();
    assert.deepEqual(lines(`${file}.2`).map(idOf), [0]);
    assert.deepEqual(lines(`${file}.1`).map(idOf), [1]);
    assert.equal(fs.statSync(`${file}.1`).size, 500);
    assert.deepEqual(lines(file).map(idOf), [2]);
    balanced(sink.stats());
  });

  it('appends to an existing file and counts its size towards rotation', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'a.jsonl');
    fs.writeFileSync(file, `${'y'.repeat(799)}\n`);
    const sink = new FileSink({ path: file, maxSizeBytes: 1000, maxFiles: 2 });
    for (let i = 0; i < 3; i++) sink.write(...sized(i, 99));
    await sink.close();
    assert.equal(fs.statSync(`${file}.1`).size, 1000, 'the old 800 bytes + 2 lines');
    assert.deepEqual(lines(file).map(idOf), [2]);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['a.jsonl', 'a.jsonl.1']);
    balanced(sink.stats());
  });

  it('maxFiles 1 keeps only the active file', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'one.jsonl');
    const sink = new FileSink({ path: file, maxSizeBytes: 300, maxFiles: 1 });
    for (let i = 0; i < 7; i++) sink.write(...sized(i, 99));
    await sink.close();
    assert.deepEqual(fs.readdirSync(dir), ['one.jsonl']);
    assert.deepEqual(lines(file).map(idOf), [6]);
    balanced(sink.stats());
  });

  it('bounds the queue: past maxQueue, writes are counted as queue-full', async (t) => {
    const dir = tempDir(t);
    const sink = new FileSink({ path: path.join(dir, 'q.jsonl'), maxQueue: 10 });
    // All in one tick: nothing can leave the queue before the loop turns.
    for (let i = 0; i < 25; i++) sink.write(...sized(i, 99));
    let s = sink.stats();
    assert.deepEqual(s.dropped, { 'queue-full': 15 });
    assert.equal(s.queued, 10);
    balanced(s);
    await sink.flush();
    s = sink.stats();
    assert.equal(s.sent, 10);
    assert.equal(s.queued, 0);
    balanced(s);
    // And the byte bound.
    const small = new FileSink({ path: path.join(dir, 'b.jsonl'), maxQueueBytes: 250 });
    for (let i = 0; i < 5; i++) small.write(...sized(i, 99));
    assert.equal(small.stats().dropped['queue-full'], 3);
    await Promise.all([sink.close(), small.close()]);
    balanced(small.stats());
  });

  it('says how much room its queue has: by lines, by bytes at the mean line size, none once closing', async (t) => {
    const dir = tempDir(t);
    const sink = new FileSink({ path: path.join(dir, 'r.jsonl'), maxQueue: 100, maxQueueBytes: 1_000_000 });
    assert.equal(sink.room(), 90, 'nothing queued: the line bound, less a tenth');
    for (let i = 0; i < 30; i++) sink.write(...sized(i, 99));
    assert.equal(sink.room(), 63, '70 lines left, less a tenth');
    // Every line it is offered within its room is queued, none dropped.
    for (let i = 0; i < sink.room(); i++) sink.write(...sized(i, 99));
    assert.deepEqual(sink.stats().dropped, {});
    const bytes = new FileSink({ path: path.join(dir, 'b.jsonl'), maxQueueBytes: 2000 });
    for (let i = 0; i < 5; i++) bytes.write(...sized(i, 199)); // 200 bytes a line with its newline
    assert.equal(bytes.room(), 4, '1000 bytes left: 5 lines of the mean size, less a tenth');
    await sink.flush();
    assert.equal(sink.room(), 90, 'written: the room is back');
    const closing = sink.close();
    assert.equal(sink.room(), 0);
    await Promise.all([closing, bytes.close()]);
  });

  it('bounds lines waiting, not the batch being written: a write in flight leaves the whole queue free', async (t) => {
    const dir = tempDir(t);
    const sink = new FileSink({ path: path.join(dir, 'f.jsonl'), maxQueue: 10 });
    sink.write(...sized(0, 99));
    await sink.flush(); // the file is open: the next batch goes straight to a write
    for (let i = 1; i <= 10; i++) sink.write(...sized(i, 99));
    await new Promise((r) => setImmediate(r)); // the 10 lines are now being written
    assert.equal(sink.stats().queued, 10, 'in flight');
    for (let i = 11; i <= 20; i++) sink.write(...sized(i, 99));
    assert.deepEqual(sink.stats().dropped, {}, 'ten more fit while ten are written');
    sink.write(...sized(21, 99));
    assert.deepEqual(sink.stats().dropped, { 'queue-full': 1 });
    await sink.close();
    const s = sink.stats();
    balanced(s);
    assert.equal(s.sent, 21);
    assert.deepEqual(lines(path.join(dir, 'f.jsonl')).map(idOf), Array.from({ length: 21 }, (_, i) => i));
  });

  it('counts writes after close and is idempotent', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'c.jsonl');
    const sink = new FileSink({ path: file, mode: 0o600 });
    sink.write(...sized(1, 80));
    const a = sink.close();
    const b = sink.close();
    assert.equal(a, b);
    await a;
    sink.write(...sized(2, 80));
    const s = sink.stats();
    assert.deepEqual(s.dropped, { closed: 1 });
    assert.equal(s.sent, 1);
    balanced(s);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });

  it('counts io-error and keeps going when the file cannot be opened', async (t) => {
    const dir = tempDir(t);
    // The path's parent is a regular file: open fails (ENOTDIR) every time.
    fs.writeFileSync(path.join(dir, 'notadir'), '');
    const sink = new FileSink({ path: path.join(dir, 'notadir', 'x.jsonl'), closeTimeoutMs: 50 });
    for (let i = 0; i < 3; i++) sink.write(...sized(i, 80));
    await sink.flush(100);
    await sink.close();
    const s = sink.stats();
    balanced(s);
    assert.equal(s.sent, 0);
    assert.equal(s.dropped.shutdown, 3, 'never written: given up at close');
    assert.match(s.lastError ?? '', /ENOTDIR|EEXIST|not a directory/);
  });

  it('reopens its file after logrotate moved it: what was written stays in the moved file, the rest goes to a new one', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'events.jsonl');
    const sink = new FileSink({ path: file, mode: 0o600 });
    for (let i = 0; i < 5; i++) sink.write(...sized(i, 99));
    await sink.flush();
    for (let i = 5; i < 10; i++) sink.write(...sized(i, 99)); // queued, not written yet
    fs.renameSync(file, `${file}.1`);
    await sink.reopen();
    assert.ok(fs.existsSync(file), 'a new file at once, before anything is written to it');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'with the configured mode');
    for (let i = 10; i < 15; i++) sink.write(...sized(i, 99));
    await sink.close();
    balanced(sink.stats());
    assert.equal(sink.stats().sent, 15);
    assert.deepEqual(lines(`${file}.1`).map(idOf), [0, 1, 2, 3, 4]);
    assert.deepEqual(lines(file).map(idOf), [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
  });

  it('takes the size again after logrotate truncated its file (copytruncate): it rotates by what the file holds', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'events.jsonl');
    const sink = new FileSink({ path: file, maxSizeBytes: 1000, maxFiles: 3 });
    for (let i = 0; i < 8; i++) sink.write(...sized(i, 99));
    await sink.flush();
    fs.copyFileSync(file, `${file}.copy`);
    fs.truncateSync(file, 0);
    await sink.reopen();
    for (let i = 8; i < 16; i++) sink.write(...sized(i, 99));
    await sink.close();
    balanced(sink.stats());
    // 800 bytes were in the file before it was truncated: without the new size it would have rotated after 2 more lines.
    assert.deepEqual(fs.readdirSync(dir).sort(), ['events.jsonl', 'events.jsonl.copy']);
    assert.deepEqual(lines(file).map(idOf), [8, 9, 10, 11, 12, 13, 14, 15]);
  });

  it('loses no line to a reopen asked for while lines are being written, many times over', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'events.jsonl');
    const sink = new FileSink({ path: file });
    const reopens: Promise<void>[] = [];
    for (let i = 0; i < 2000; i++) {
      sink.write(...sized(i, 99));
      if (i % 97 === 0) reopens.push(sink.reopen());
      if (i % 250 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(reopens);
    await sink.close();
    balanced(sink.stats());
    assert.deepEqual(lines(file).map(idOf), Array.from({ length: 2000 }, (_, i) => i));
  });

  it('reserves disk space ahead of its writes without changing the file, and gives it back when it closes or rotates', async (t) => {
    const dir = tempDir(t);
    const allocated = (f: string) => fs.statSync(f).blocks * 512;
    const file = path.join(dir, 'events.jsonl');
    const sink = new FileSink({ path: file, preallocateBytes: 1 << 20, maxSizeBytes: 3 << 20, maxFiles: 2 });
    for (let i = 0; i < 100; i++) sink.write(...sized(i, 999));
    await sink.flush();
    assert.equal(fs.statSync(file).size, 100_000, 'the size is what was written');
    assert.ok(allocated(file) >= 1 << 20, `1 MiB reserved while the file is written: ${allocated(file)} bytes allocated`);
    assert.deepEqual(lines(file).map(idOf), Array.from({ length: 100 }, (_, i) => i), 'readers see the lines only, no reserved tail');
    // Past the reserved end: the next step is reserved, never past maxSizeBytes; rotation gives the rest back.
    for (let i = 100; i < 3200; i++) sink.write(...sized(i, 999));
    await sink.flush();
    assert.equal(fs.statSync(`${file}.1`).size, 3_145_000, '3145 lines of 1000 bytes fit 3 MiB');
    assert.ok(allocated(`${file}.1`) < 3_145_000 + (64 << 10), `the rotated file keeps no reserved tail: ${allocated(`${file}.1`)} bytes allocated`);
    assert.ok(allocated(file) >= 1 << 20, 'the new file is reserved ahead too');
    await sink.close();
    balanced(sink.stats());
    assert.equal(fs.statSync(file).size, 55_000);
    assert.ok(allocated(file) < 55_000 + (64 << 10), `closed: the reserved tail given back (${allocated(file)} bytes allocated)`);
    assert.deepEqual(lines(file).map(idOf), Array.from({ length: 55 }, (_, i) => 3145 + i));

    const off = path.join(dir, 'off.jsonl');
    const plain = new FileSink({ path: off, preallocateBytes: 0 });
    for (let i = 0; i < 100; i++) plain.write(...sized(i, 999));
    await plain.flush();
    assert.ok(allocated(off) < 100_000 + (64 << 10), `preallocateBytes 0: nothing reserved (${allocated(off)} bytes allocated)`);
    await plain.close();
    assert.throws(() => new FileSink({ path: off, preallocateBytes: -1 }), /sinks\.file\.preallocateBytes/);
  });

  it('leaves a file truncated by someone else alone when it gives its reserved space back (never extends it)', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'events.jsonl');
    const sink = new FileSink({ path: file, preallocateBytes: 1 << 20 });
    for (let i = 0; i < 50; i++) sink.write(...sized(i, 999));
    await sink.flush();
    fs.truncateSync(file, 0); // copytruncate, without a reopen
    await sink.close();
    balanced(sink.stats());
    assert.equal(fs.statSync(file).size, 0, 'a truncate to the sink\'s own idea of the size would have written 50,000 zero bytes');
  });

  it('counts a reopen that fails, and writes to the path again once it can', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'events.jsonl');
    const sink = new FileSink({ path: file });
    sink.write(...sized(0, 99));
    await sink.flush();
    fs.renameSync(file, `${file}.1`);
    fs.mkdirSync(file); // something in the way: the open fails
    await sink.reopen();
    assert.match(sink.stats().lastError ?? '', /EISDIR|illegal operation on a directory/);
    sink.write(...sized(1, 99));
    fs.rmdirSync(file);
    await sink.flush(); // retried after the backoff
    await sink.close();
    balanced(sink.stats());
    assert.deepEqual(lines(file).map(idOf), [1]);
    assert.deepEqual(lines(`${file}.1`).map(idOf), [0]);
    assert.equal(sink.stats().dropped['io-error'] ?? 0, 0, 'the line waited in the queue, it was not dropped');
  });

  it('does nothing once closed', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'events.jsonl');
    const sink = new FileSink({ path: file });
    await sink.close();
    await sink.reopen();
    assert.equal(fs.existsSync(file), false);
  });
  it('keeps every line of chunks holding thousands of short lines, written in place and copied, across chunk reuse', async (t) => {
    // A 1 MiB chunk of 10-byte lines holds ~100 k line ends: their array grows many times, and chunks written
    // to their end are reused, ends and all, by the next turns' lines. Files rotate at exactly 100 k lines
    // only if every line's end was kept (rotation cuts at line ends, by their sizes).
    const dir = tempDir(t);
    const file = path.join(dir, 'short.jsonl');
    const sink = new FileSink({ path: file, maxSizeBytes: 1_000_000, maxFiles: 20, maxQueue: 1_000_000, maxQueueBytes: 64 << 20 });
    const w = new ByteLine(64);
    const want: string[] = [];
    for (let turn = 0; turn < 6; turn++) {
      for (let i = 0; i < 150_000; i++) {
        const line = String(turn * 1_000_000 + i).padStart(9, '0');
        want.push(line);
        if (i % 3 === 0) sink.writeLine(line);
        else if (i % 3 === 1) sink.writeBytes(Buffer.from(line), 0, line.length);
        else {
          sink.placeLine(w);
          w.text(line);
          sink.commitPlaced(w.pos - w.start);
        }
      }
      await sink.flush();
    }
    await sink.close();
    balanced(sink.stats());
    assert.equal(sink.stats().sent, want.length);
    const files = [8, 7, 6, 5, 4, 3, 2, 1, 0].map((i) => (i ? `${file}.${i}` : file));
    for (const f of files) assert.equal(fs.statSync(f).size, 1_000_000, `${path.basename(f)}: 100 k lines of 10 bytes`);
    assert.equal(fs.existsSync(`${file}.9`), false);
    assert.deepEqual(files.flatMap(lines), want);
  });
});
