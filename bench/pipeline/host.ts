// bench/pipeline sensor host for the C reference consumer: loads the agent's sensors onto a shared ring
// exactly as the live agent run does (sensors.ts, same configuration and ring size), pins the ring in bpffs
// for the consumer, and reads nothing itself.
//
// usage: node bench/pipeline/host.ts PIN_PATH
//   prints {"ready":true,...} once attached; on SIGTERM detaches, prints the kernel's counters (emitted,
//   reserve failed), unpins and exits.
import fs from 'node:fs';
import { benchConfig } from './config.ts';
import { loadSensors, type LoadedSensors } from './sensors.ts';

const [pin] = process.argv.slice(2);
if (!pin) {
  process.stderr.write('usage: host.ts PIN_PATH\n');
  process.exit(2);
}

let sensors: LoadedSensors | undefined;
let pinned = false;
function cleanup(): void {
  sensors?.close();
  if (pinned) fs.rmSync(pin!, { force: true });
}
process.on('exit', cleanup);

try {
  const cfg = benchConfig();
  sensors = loadSensors(cfg, cfg.ring.sizeMiB << 20);
  sensors.ring.pin(pin);
  pinned = true;
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, ringBytes: cfg.ring.sizeMiB << 20 })}\n`);
  process.once('SIGTERM', () => {
    sensors!.detach();
    process.stdout.write(`${JSON.stringify(sensors!.kernel())}\n`);
    cleanup();
    process.exit(0);
  });
  setInterval(() => {}, 1 << 30); // stay up until told
} catch (err) {
  process.stderr.write(`host: ${(err as Error).stack ?? err}\n`);
  cleanup();
  process.exit(1);
}
