// bench/ringbuf: vigil's consumer under test, run as its own process (pinned by the parent) so that it never
// shares a thread with the generator. A Manager loads bench/bpf/ringbuf.bpf.o with its event channel, i.e.
// RingBufReader on its default options, and the handler does the same per-record work as the C consumer.
//
// usage: node bench/ringbuf/consumer.ts OBJ TGID [records_per_call [emit]]
// Prints {"ready":true,"pid":…} once attached, then on SIGTERM drains what is left and prints its counts.
import { Manager } from '../../src/manager/manager.ts';
import { benchHandler } from './handler.ts';

const [objPath, tgidArg, rpcArg = '1', emitArg = '1'] = process.argv.slice(2);
if (!objPath || !tgidArg) {
  process.stderr.write('usage: consumer.ts OBJ TGID [records_per_call [emit]]\n');
  process.exit(2);
}

const { counts, handler } = benchHandler();
const m = new Manager({
  name: 'bench_ringbuf',
  object: objPath,
  probes: [{ fn: 'bench_sys_enter' }],
  eventChannel: { mode: 'ringbuf', handler },
});
m.init({
  constantEditors: [
    { name: 'target_tgid', value: Number(tgidArg), failOnMissing: true },
    { name: 'records_per_call', value: Number(rpcArg), failOnMissing: true },
    { name: 'emit', value: Number(emitArg), failOnMissing: true },
  ],
});
m.start();

// CPU is counted from here: loading and verifying the object is not consumption.
const cpu0 = process.cpuUsage();
process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);

process.once('SIGTERM', () => {
  // The generator has exited, so every record it caused is committed: take what is left, then report.
  const reader = m.eventReader!;
  while (reader.drain(handler) > 0);
  const cpu = process.cpuUsage(cpu0);
  const k = m.kernelCounters();
  const rs = reader.stats();
  const out = {
    received: counts.received,
    gaps: counts.gaps,
    bad: counts.bad,
    last_ns: Number(counts.lastNs),
    polls: rs.wakeups,
    drains: rs.drains,
    reserve_failed: k?.reserveFailed ?? 0,
    emitted: k?.emitted ?? 0,
    ring_bytes: m.getMap('vigil_events').maxEntries,
    utime_s: cpu.user / 1e6,
    stime_s: cpu.system / 1e6,
  };
  m.stop();
  process.stdout.write(`${JSON.stringify(out)}\n`);
});
