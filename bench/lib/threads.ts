// CPU time per kind of thread of this process, from /proc/self/task/*/schedstat (nanoseconds on a CPU, not
// clock ticks): for the benchmarks' breakdown of where a consumer's CPU goes besides its main thread, V8's
// workers (concurrent marking, parallel scavenges, background compilation) and libuv's pool (file writes).
import fs from 'node:fs';

export type ThreadKind = 'main' | 'v8' | 'libuv' | 'other';

/** On-CPU nanoseconds so far per kind of thread (threads that ended are not counted: Node's live for the run). */
export function threadCpuNs(): Record<ThreadKind, number> {
  const out: Record<ThreadKind, number> = { main: 0, v8: 0, libuv: 0, other: 0 };
  for (const tid of fs.readdirSync('/proc/self/task')) {
    let comm: string;
    let ns: number;
    try {
      comm = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      ns = Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      continue; // ended since the listing
    }
    const kind: ThreadKind = Number(tid) === process.pid ? 'main' : comm.startsWith('V8Worker') ? 'v8' : comm.startsWith('libuv-worker') ? 'libuv' : 'other';
    out[kind] += ns;
  }
  return out;
}

/** b − a, per kind, in ms. */
export function threadCpuMsSince(a: Record<ThreadKind, number>, b = threadCpuNs()): Record<ThreadKind, number> {
  const r = (k: ThreadKind) => Math.round((b[k] - a[k]) / 1e5) / 10;
  return { main: r('main'), v8: r('v8'), libuv: r('libuv'), other: r('other') };
}
