// bench/storm: vigil's syscall sensor on its own, as its own process (the parent pins it to the core the storm
// does not use), with its own ring and RingBufReader: what the kernel side costs a storm, with the sensor's
// in-kernel filters configured by the caller. Records are counted by the storm's pid, and, with --decode,
// decoded as the agent would.
//
// usage: node bench/storm/sensor.ts CONFIG_JSON STORM_PID [--decode] [--stats] [--ring-kib N]
//   CONFIG_JSON: a SyscallSensorConfig. STORM_PID: the pid whose records are counted apart. --stats: the
//   programs' mean run time (kernel BPF statistics, which add two clock reads per run). --ring-kib: a ring of
//   that size instead of the object's 16 MiB.
// Prints {"ready":true,…} once attached, then on SIGTERM drains what is left and prints its counts: records
// (all, the storm's), the filters' drop counters, kernel losses, reader wakeups and drains, CPU since ready.
import { VIGIL_OPCODE } from '../../src/events/layout.generated.ts';
import { decodeSyscallEvent, isDecodeError } from '../../src/events/decode.ts';
import { BpfMap } from '../../src/bpf/map.ts';
import { MapType } from '../../src/bpf/constants.ts';
import { RingBufReader, type RecordHandler } from '../../src/ringbuf/ringbuf.ts';
import { SyscallSensor } from '../../src/syscalls/sensor.ts';
import type { SyscallSensorConfig } from '../../src/syscalls/config.ts';

const [configArg, pidArg] = process.argv.slice(2);
const DECODE = process.argv.includes('--decode');
const STATS = process.argv.includes('--stats');
if (!configArg || !pidArg) {
  process.stderr.write('usage: sensor.ts CONFIG_JSON STORM_PID [--decode]\n');
  process.exit(2);
}
const config = JSON.parse(configArg) as SyscallSensorConfig;
const stormPid = Number(pidArg);

const counts = { records: 0, storm: 0, opens: 0, decodeErrors: 0, other: 0 };
// The header's pid is at offset 16 (event_header: opcode, flags, size, ktime_ns, pid).
const onRecord: RecordHandler = DECODE
  ? (v, off, len) => {
      counts.records++;
      const ev = decodeSyscallEvent(v, off, len);
      if (isDecodeError(ev)) {
        counts.decodeErrors++;
        return;
      }
      if (ev.pid === stormPid) {
        counts.storm++;
        if (ev.type === 'open') counts.opens++;
      } else counts.other++;
    }
  : (v, off) => {
      counts.records++;
      if (v.getUint32(off + 16, true) === stormPid) {
        counts.storm++;
        if (v.getUint16(off, true) === VIGIL_OPCODE.FILE) counts.opens++;
      } else counts.other++;
    };

const ringArg = process.argv.indexOf('--ring-kib');
const ring = ringArg === -1 ? undefined : BpfMap.create({ name: 'vigil_events', type: MapType.RINGBUF, keySize: 0, valueSize: 0, maxEntries: Number(process.argv[ringArg + 1]) * 1024 });
const sensor = new SyscallSensor(config, { onRecord, collectStats: STATS, sharedRing: ring });
const ownReader = ring ? new RingBufReader(ring) : undefined;
let stopped = false;
const cleanup = () => {
  if (stopped) return;
  stopped = true;
  sensor.stop();
  ownReader?.close();
  ring?.close();
};
process.on('exit', cleanup);
try {
  sensor.start();
} catch (err) {
  process.stderr.write(`sensor: ${(err as Error).message}\n`);
  process.exit(1);
}

ownReader?.start(onRecord);
const cpu0 = process.cpuUsage();
const probes = sensor.manager!.probes().filter((p) => p.state === 'running').length;
process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, probes, ops: sensor.enabledOps() })}\n`);

/** Run count and mean run time of each attached program (kernel BPF stats, on only with --stats). */
function programStats(): Record<string, { runs: number; ns: number }> {
  const out: Record<string, { runs: number; ns: number }> = {};
  for (const p of sensor.manager!.probes()) {
    if (p.state !== 'running' || !p.program || out[p.id.fn]) continue;
    const st = p.program.stats();
    out[p.id.fn] = { runs: st.runCount, ns: st.runCount ? Math.round(st.runTimeNs / st.runCount) : 0 };
  }
  return out;
}

process.once('SIGTERM', () => {
  // The storm has exited: every record it caused is committed. Take what is left, then report.
  const reader = ownReader ?? sensor.manager!.eventReader!;
  while (reader.drain(onRecord) > 0);
  const cpu = process.cpuUsage(cpu0);
  const k = sensor.manager!.kernelCounters();
  const rs = reader.stats();
  const out = {
    ...counts,
    filters: sensor.filters!.counters(),
    kernel: { emitted: k?.emitted ?? 0, reserve_failed: k?.reserveFailed ?? 0, output_failed: k?.outputFailed ?? 0 },
    reader: { wakeups: rs.wakeups, drains: rs.drains, received: rs.received },
    cpu_s: (cpu.user + cpu.system) / 1e6,
    programs: STATS ? programStats() : undefined,
  };
  cleanup();
  process.stdout.write(`${JSON.stringify(out)}\n`);
});
