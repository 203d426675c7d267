// Diagnostics for the benchmarks' own processes: a CPU profile and a sampled allocation profile (collected
// objects included: where the garbage comes from, not only what stays), written as .cpuprofile and
// .heapprofile JSON. Each benchmark names the files through its environment (VIGIL_BENCH_PROFILE and the
// like) and starts them where its measured window starts.
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';

export interface ProfileOptions {
  /** Where to write a CPU profile (none when undefined or empty). */
  cpu?: string;
  /** Where to write a sampled allocation profile (none when undefined or empty). */
  heap?: string;
  /** The CPU profiler's sampling interval in µs (V8's default when undefined). */
  cpuIntervalUs?: number;
  /** Bytes between allocation samples. */
  heapIntervalBytes?: number;
}

/** Starts the profiles `o` asks for; the function returned stops them and writes their files. */
export async function startProfiles(o: ProfileOptions): Promise<() => Promise<void>> {
  if (!o.cpu && !o.heap) return async () => {};
  const session = new Session();
  session.connect();
  if (o.cpu) {
    await session.post('Profiler.enable');
    if (o.cpuIntervalUs !== undefined) await session.post('Profiler.setSamplingInterval', { interval: o.cpuIntervalUs });
    await session.post('Profiler.start');
  }
  if (o.heap) {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: o.heapIntervalBytes ?? 16384, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true } as never);
  }
  return async () => {
    if (o.cpu) fs.writeFileSync(o.cpu, JSON.stringify((await session.post('Profiler.stop')).profile));
    if (o.heap) fs.writeFileSync(o.heap, JSON.stringify((await session.post('HeapProfiler.stopSampling')).profile));
    session.disconnect();
  };
}
