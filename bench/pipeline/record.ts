// bench/pipeline recorder: attaches the real sensors the way the agent does (process, cgroup and syscall
// sensors writing into one shared ring buffer, sensors.ts), takes the /proc snapshot the agent would seed its process
// cache with, runs a workload, and saves every ring record byte for byte (recording.ts), with no decoding.
//
// usage: node bench/pipeline/record.ts OUT_DIR ROUNDS
//   runs bench/pipeline/workload.sh ROUNDS times through its loop; prints one JSON line with the counts.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVENT_HEADER, EXIT_EVENT, FORK_EVENT, SIZEOF, VIGIL_OPCODE, VIGIL_PROC_FLAGS } from '../../src/events/layout.generated.ts';
import { bootNowNs } from '../../src/pipeline/clock.ts';
import { takeSnapshot } from '../../src/process/procfs.ts';
import { RingBufReader } from '../../src/ringbuf/ringbuf.ts';
import { benchConfig } from './config.ts';
import { RecordWriter, type RecordingMeta } from './recording.ts';
import { loadSensors, type LoadedSensors } from './sensors.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WORKLOAD = path.join(HERE, 'workload.sh');
const REPO = path.resolve(HERE, '../..');

const [outDir, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg);
if (!outDir || !(rounds >= 1)) {
  process.stderr.write('usage: record.ts OUT_DIR ROUNDS\n');
  process.exit(2);
}

const OP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(VIGIL_OPCODE).map(([k, v]) => [v, k.toLowerCase()]));

const cfg = benchConfig();
let sensors: LoadedSensors | undefined;
let reader: RingBufReader | undefined;

function cleanup(): void {
  sensors?.detach();
  reader?.close();
  sensors?.close();
}

async function main(): Promise<void> {
  fs.mkdirSync(outDir!, { recursive: true });
  // The agent's shared plumbing and sensors, with a larger ring: nothing may be lost while recording.
  sensors = loadSensors(cfg, 64 << 20);
  const ring = sensors.ring;

  // Every sensor is attached: from here on every process that starts is in the stream.
  const ktimeStart = bootNowNs();
  const snapshot = takeSnapshot();
  const writer = new RecordWriter();
  const byType: Record<string, number> = {};
  // Only the workload's own processes are kept: the sensors see the whole machine, and on a shared machine
  // other people's activity would change the mix from run to run. The tree grows with fork records.
  const tree = new Set<number>();
  let root = -1;
  let others = 0;
  reader = new RingBufReader(ring);
  reader.start((v, off, len) => {
    if (len < SIZEOF.event_header) return;
    const op = v.getUint16(off + EVENT_HEADER.opcode.offset, true);
    const pid = v.getUint32(off + EVENT_HEADER.pid.offset, true);
    let keep = tree.has(pid);
    if (op === VIGIL_OPCODE.FORK && len >= SIZEOF.fork_event) {
      const child = v.getUint32(off + FORK_EVENT.child_tgid.offset, true);
      if (keep || child === root) {
        keep = true;
        tree.add(child);
      }
    } else if (keep && op === VIGIL_OPCODE.EXIT && len >= SIZEOF.exit_event && v.getUint32(off + EXIT_EVENT.flags.offset, true) & VIGIL_PROC_FLAGS.GROUP_DEAD) {
      tree.delete(pid); // the pid may be reused by someone else's process
    }
    if (!keep) {
      others++;
      return;
    }
    writer.add(v, off, len);
    const name = OP_NAMES[op] ?? `op${op}`;
    byType[name] = (byType[name] ?? 0) + 1;
  });

  const t0 = performance.now();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-workload-'));
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('bash', [WORKLOAD, work, String(rounds), REPO], { stdio: ['ignore', 'ignore', 'pipe'] });
      root = child.pid ?? -1;
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        if (err.length < 4096) err += d.toString();
      });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`workload exited with ${code}: ${err.trim()}`))));
    });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const seconds = (performance.now() - t0) / 1000;
  const ktimeEnd = bootNowNs();
  // Detach, then take what is still in the ring.
  sensors.detach();
  while (reader.drain() > 0);
  const kernel = sensors.kernel();
  reader.close();
  reader = undefined;

  writer.write(path.join(outDir!, 'records.bin'));
  const meta: RecordingMeta = {
    version: 1,
    recordedAt: new Date().toISOString(),
    ktimeStart,
    ktimeEnd,
    records: writer.records,
    bytes: writer.bytes,
    byType,
    kernel,
    others,
    workload: { script: path.relative(REPO, WORKLOAD), rounds, seconds },
    events: cfg.events,
    snapshot,
  };
  fs.writeFileSync(path.join(outDir!, 'meta.json'), JSON.stringify(meta));
  process.stdout.write(`${JSON.stringify({ records: writer.records, bytes: writer.bytes, seconds, byType, kernel, others, snapshot: snapshot.length })}\n`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`record: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  cleanup();
}
