// File sink: lines are encoded into 1 MiB chunks as they are accepted and written in batches that span
// chunks (writev). These check what that must not change: every line once, in order, nothing split across
// files, exact rotation sizes and batch bounds, lines larger than a chunk, and received = sent + dropped + queued.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { OutputEvent, SinkStats } from '../../src/pipeline/types.ts';
import { FileSink } from '../../src/sinks/file.ts';

function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-file-batches-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function balanced(s: SinkStats): void {
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  assert.equal(s.received, s.sent + dropped + s.queued, `received = sent + dropped + queued: ${JSON.stringify(s)}`);
}

const ev: OutputEvent = { type: 'open', time: 't', ktimeNs: 0 };
/** Line i: its number, then filler (multi-byte every 7th line), `chars` characters in all. */
function line(i: number, chars: number): string {
  const id = String(i).padStart(8, '0');
  const fill = i % 7 === 0 ? 'é'.repeat(Math.max(0, chars - 8)) : 'x'.repeat(Math.max(0, chars - 8));
  return `${id}${fill}`;
}

function readLines(files: string[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    assert.ok(text === '' || text.endsWith('\n'), `${f}: every line ends with a newline`);
    out.push(...text.split('\n').slice(0, -1));
  }
  return out;
}

describe('FileSink batches', () => {
  it('writes megabytes queued in one turn, across chunks, every line once and in order', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'big.jsonl');
    const sink = new FileSink({ path: file });
    const want: string[] = [];
    // ~6 MiB in one tick: several chunks, one batch.
    for (let i = 0; i < 12_000; i++) {
      const l = line(i, 300 + (i % 400));
      want.push(l);
      sink.writeLine(l);
    }
    assert.equal(sink.stats().queued, 12_000);
    await sink.close();
    balanced(sink.stats());
    assert.equal(sink.stats().sent, 12_000);
    assert.deepEqual(readLines([file]), want);
  });

  it('keeps its chunks while lines keep coming, and gives them back once idle', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'spare.jsonl');
    const sink = new FileSink({ path: file });
    t.after(() => sink.close());
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    let n = 0;
    const burst = async () => {
      // ~6 MiB in one turn: six chunks or more, written, then kept for the next burst.
      for (let i = 0; i < 12_000; i++) sink.writeLine(line(n++, 300 + (i % 400)));
      await sink.flush();
    };
    await burst();
    const kept = sink.spareChunks;
    assert.ok(kept >= 5, `chunks of a 6 MiB burst kept for reuse: ${kept}`);
    // Busy: a burst every 400 ms, each taking its chunks from the spares; none are given back meanwhile.
    for (let k = 0; k < 4; k++) {
      await sleep(400);
      await burst();
      assert.ok(sink.spareChunks >= kept - 1, `still kept while busy (burst ${k + 2}): ${sink.spareChunks}`);
    }
    // Idle: at most two stay (trimmed 1-2 s after the last line; a loaded machine's timers run late).
    await sleep(3000);
    assert.ok(sink.spareChunks <= 2, `trimmed once idle: ${sink.spareChunks}`);
    await sink.close();
    balanced(sink.stats());
    assert.equal(sink.stats().sent, n);
    assert.equal(readLines([file]).length, n);
  });

  it('rotates at exact sizes when batches span chunks', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'r.jsonl');
    // 999 + newline = 1000 bytes per line; 700 KB files hold 700 lines; 3,000 lines = 3 MB over 4+ chunks.
    const sink = new FileSink({ path: file, maxSizeBytes: 700_000, maxFiles: 10 });
    const want: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const l = `${String(i).padStart(8, '0')}${'y'.repeat(991)}`;
      want.push(l);
      sink.writeLine(l);
    }
    await sink.close();
    balanced(sink.stats());
    const files = [4, 3, 2, 1].map((k) => `${file}.${k}`).concat(file);
    for (const f of files.slice(0, 4)) assert.equal(fs.statSync(f).size, 700_000, f);
    assert.equal(fs.statSync(file).size, 200_000);
    assert.deepEqual(readLines(files), want);
  });

  it('cuts batches at maxBatchBytes and still writes everything, in order', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'b.jsonl');
    // Small batches: many writes per chunk, and one that starts in one chunk and ends in the next.
    const sink = new FileSink({ path: file, maxBatchBytes: 10_000 });
    const want: string[] = [];
    for (let i = 0; i < 9000; i++) {
      const l = line(i, 120);
      want.push(l);
      sink.write(ev, l);
    }
    await sink.flush();
    await sink.close();
    balanced(sink.stats());
    assert.deepEqual(readLines([file]), want);
  });

  it('takes a line larger than a chunk, between small ones', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'huge.jsonl');
    const sink = new FileSink({ path: file, maxQueueBytes: 16 << 20 });
    const want = [line(1, 100), line(2, 3 << 20), line(3, 100), line(7, 1_500_000), line(4, 50)];
    for (const l of want) sink.writeLine(l);
    await sink.close();
    balanced(sink.stats());
    assert.deepEqual(readLines([file]), want);
  });

  it('counts the byte bound in encoded bytes, and keeps accepting after a rejected line', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'q.jsonl');
    // 'é' is 2 bytes: 300 of them are 601 bytes with the newline, over a 1000-byte bound after one line.
    const sink = new FileSink({ path: file, maxQueueBytes: 1000 });
    const wide = 'é'.repeat(300);
    sink.writeLine(wide);
    sink.writeLine(wide);
    sink.writeLine('small');
    const s = sink.stats();
    assert.deepEqual(s.dropped, { 'queue-full': 1 });
    assert.equal(s.queued, 2);
    await sink.close();
    balanced(sink.stats());
    assert.deepEqual(readLines([file]), [wide, 'small']);
  });
});
