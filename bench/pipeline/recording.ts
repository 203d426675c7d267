// bench/pipeline: the recording format, shared by the recorder, vigil's replay and the C consumer's replay.
// A recording is a directory: records.bin holds the raw ring records exactly as the sensors wrote them, each
// framed like a ring record ([u32 length][u32 0][bytes], padded to 8); meta.json holds what was live when the
// recording started (the /proc snapshot the process cache is seeded from) and what the kernel counted.
//
// A replay runs the recording several times back to back. So that each pass looks like new activity rather
// than the same events again, pass k moves every timestamp k × span later, and the start times of processes
// born during the recording with them (they become new processes with new identities; processes that were
// already running keep theirs). The shifted passes are built once, before anything is timed, into one "loops"
// file with the same framing, and both consumers read that same file.
import fs from 'node:fs';
import path from 'node:path';
import { COMM_EVENT, CREDS_EVENT, EVENT_HEADER, EXEC_EVENT, EXIT_EVENT, FORK_EVENT, VIGIL_OPCODE } from '../../src/events/layout.generated.ts';
import type { SnapshotProcess } from '../../src/process/types.ts';

export const FRAME = 8;

export interface RecordingMeta {
  version: 1;
  recordedAt: string;
  /** CLOCK_BOOTTIME (ns) when the sensors were attached and when the workload ended. */
  ktimeStart: number;
  ktimeEnd: number;
  records: number;
  bytes: number;
  /** Records per type ("exec", "open", "cgroup", ...). */
  byType: Record<string, number>;
  /** What the kernel counted while recording (vigil_stats): emitted and lost. */
  kernel: { emitted: number; reserveFailed: number };
  /** Records of processes outside the workload's tree, seen and left out. */
  others: number;
  workload: { script: string; rounds: number; seconds: number };
  /** The syscall sensor's configuration while recording (the replay's pipeline uses the same). */
  events: unknown;
  /** The /proc snapshot taken when the sensors were attached. */
  snapshot: SnapshotProcess[];
}

/** Appends framed records to memory; write() puts them in records.bin. */
export class RecordWriter {
  #chunks: Buffer[] = [];
  #cur = Buffer.alloc(1 << 22);
  #used = 0;
  records = 0;
  bytes = 0;

  add(view: DataView, off: number, len: number): void {
    const framed = FRAME + ((len + 7) & ~7);
    if (this.#used + framed > this.#cur.length) {
      this.#chunks.push(this.#cur.subarray(0, this.#used));
      this.#cur = Buffer.alloc(Math.max(1 << 22, framed));
      this.#used = 0;
    }
    const b = this.#cur;
    b.writeUInt32LE(len, this.#used);
    b.writeUInt32LE(0, this.#used + 4);
    b.set(new Uint8Array(view.buffer, view.byteOffset + off, len), this.#used + FRAME);
    this.#used += framed;
    this.records++;
    this.bytes += len;
  }

  write(file: string): void {
    fs.writeFileSync(file, Buffer.concat([...this.#chunks, this.#cur.subarray(0, this.#used)]));
  }
}

/** Calls fn(offset of the record's bytes, length) for each framed record of `buf`. Throws on a bad frame. */
export function forEachRecord(buf: Buffer, fn: (off: number, len: number) => void): void {
  let p = 0;
  while (p < buf.length) {
    if (p + FRAME > buf.length) throw new Error(`recording: truncated frame at byte ${p}`);
    const len = buf.readUInt32LE(p);
    const next = p + FRAME + ((len + 7) & ~7);
    if (next > buf.length) throw new Error(`recording: record at byte ${p} claims ${len} bytes, past the end`);
    fn(p + FRAME, len);
    p = next;
  }
}

export function readRecording(dir: string): { meta: RecordingMeta; records: Buffer } {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as RecordingMeta;
  if (meta.version !== 1) throw new Error(`${dir}: recording version ${meta.version}, expected 1`);
  // JSON has no NaN: unknown start times come back as null.
  for (const p of meta.snapshot) if (p.startNs === null) p.startNs = NaN;
  return { meta, records: fs.readFileSync(path.join(dir, 'records.bin')) };
}

const TWO32 = 4294967296;
const getU64 = (b: Buffer, o: number) => b.readUInt32LE(o) + b.readUInt32LE(o + 4) * TWO32;
function setU64(b: Buffer, o: number, v: number): void {
  b.writeUInt32LE(v % TWO32, o);
  b.writeUInt32LE(Math.floor(v / TWO32), o + 4);
}

/** Offsets of process start times per opcode: moved with the clock when the process was born while recording. */
const START_FIELDS: Record<number, number[]> = {
  [VIGIL_OPCODE.EXEC]: [EXEC_EVENT.start_ns.offset, EXEC_EVENT.parent_start_ns.offset],
  [VIGIL_OPCODE.FORK]: [FORK_EVENT.parent_start_ns.offset, FORK_EVENT.child_start_ns.offset],
  [VIGIL_OPCODE.EXIT]: [EXIT_EVENT.start_ns.offset],
  [VIGIL_OPCODE.CREDS]: [CREDS_EVENT.start_ns.offset],
  [VIGIL_OPCODE.COMM]: [COMM_EVENT.start_ns.offset],
};

/**
 * Builds `passes` shifted copies of the recording back to back (pass 0 unshifted) and writes them to `file`.
 * Returns the number of records written.
 */
export function writeLoops(meta: RecordingMeta, records: Buffer, passes: number, file: string): number {
  const span = meta.ktimeEnd - meta.ktimeStart + 1e6;
  const out = Buffer.allocUnsafe(records.length * passes);
  let n = 0;
  for (let k = 0; k < passes; k++) {
    const base = k * records.length;
    records.copy(out, base);
    if (k === 0) {
      forEachRecord(records, () => n++);
      continue;
    }
    const shift = k * span;
    forEachRecord(records, (off, len) => {
      n++;
      const o = base + off;
      if (len < EVENT_HEADER.cgroup_id.offset) return;
      const kt = o + EVENT_HEADER.ktime_ns.offset;
      setU64(out, kt, getU64(out, kt) + shift);
      const fields = START_FIELDS[out.readUInt16LE(o + EVENT_HEADER.opcode.offset)];
      if (!fields) return;
      for (const f of fields) {
        if (f + 8 > len) continue;
        const v = getU64(out, o + f);
        if (v >= meta.ktimeStart) setU64(out, o + f, v + shift);
      }
    });
  }
  fs.writeFileSync(file, out);
  return n;
}

/**
 * A /proc snapshot (the recording's, or the machine's now for a live run) for the C consumer's JSON mode
 * (pipeline_consumer -j): one process per line, "pid ppid uid gid startNs comm image", tab-separated, image
 * being ',"exe":…,"argv":[…]' as vigil writes them (or empty). Tabs, newlines, quotes and backslashes in a
 * comm become "?": the C side keeps comm raw.
 */
export function writeSnapshotTsv(snapshot: SnapshotProcess[], file: string): void {
  const lines = snapshot.map((p) => {
    let image = '';
    if (p.exePath !== undefined) image += `,"exe":${JSON.stringify(p.exePath)}`;
    if (p.argv) image += `,"argv":${JSON.stringify(p.argv)}`;
    const comm = (p.comm ?? '').replace(/[\t\n"\\]/g, '?');
    const start = Number.isFinite(p.startNs) ? p.startNs : 0;
    return `${p.pid}\t${p.ppid}\t${p.creds?.uid ?? 0}\t${p.creds?.gid ?? 0}\t${start}\t${comm}\t${image}\n`;
  });
  fs.writeFileSync(file, lines.join(''));
}
