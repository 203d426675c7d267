// Memory the guest gave back to its host. This VM's balloon reports free pages to the host (virtio-balloon
// free page reporting), which drops them: a page the guest freed more than ~2 s before costs a host-side
// fault the next time the guest uses it, about 10 µs of system time per 4 KiB. Writing a 395 MB file took
// 70 ms of system time with recently freed pages and 950 ms with reported ones. A consumer that writes big
// files was charged that by the timing of the previous run's deletes, not by its code (bench/pipeline's
// "sink swing"). Before a measured window, every consumer of a comparison touches about as many pages as it
// is going to use: a scratch file written and deleted leaves its pages on the guest's free lists, backed.
// bench/c/bench.h has the same for the C consumers; both read PREWARM_ENV.
import fs from 'node:fs';
import path from 'node:path';

/** Bytes to pre-warm before a measured window (unset: none). */
export const PREWARM_ENV = 'VIGIL_BENCH_PREWARM_BYTES';

/** Writes VIGIL_BENCH_PREWARM_BYTES of a scratch file in `dir` (the consumer's output directory), then deletes it. */
export function prewarmPages(dir: string): void {
  const bytes = Number(process.env[PREWARM_ENV] ?? 0);
  if (!(bytes > 0)) return;
  const file = path.join(dir, `.prewarm-${process.pid}`);
  const chunk = Buffer.alloc(1 << 20, 0x20);
  const fd = fs.openSync(file, 'w');
  try {
    for (let n = 0; n < bytes; n += chunk.length) fs.writeSync(fd, chunk);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}

/** Whether a virtio balloon with free page reporting (feature bit 5) is there: what makes pre-warming matter. */
export function freePageReporting(): boolean {
  const root = '/sys/bus/virtio/devices';
  try {
    return fs.readdirSync(root).some((d) => {
      const dev = fs.readFileSync(path.join(root, d, 'device'), 'utf8').trim();
      return dev === '0x0005' && fs.readFileSync(path.join(root, d, 'features'), 'utf8')[5] === '1';
    });
  } catch {
    return false;
  }
}
