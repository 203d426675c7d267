// bench/exec: the CPU one wakeup of Node's event loop costs on this machine, with nothing to do: a timer of
// `ms` milliseconds re-armed `n` times, the process's on-CPU time (all threads, schedstat) divided by n. The
// reader pays this once per drain and the batching writer once per flush, whatever they find to do.
//
// usage: node bench/exec/wake.ts [ms] [n]    Prints one JSON line: { ms, n, us_per_wake }.
import fs from 'node:fs';

const ms = Number(process.argv[2] ?? 16);
const n = Number(process.argv[3] ?? 200);

function onCpuNs(): number {
  let ns = 0;
  for (const t of fs.readdirSync('/proc/self/task')) ns += Number(fs.readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ')[0]);
  return ns;
}

// Warm up the timer path first, so that its first use (compilation) is not counted.
await new Promise<void>((resolve) => {
  let k = 0;
  const tick = () => (++k >= 20 ? resolve() : setTimeout(tick, 1));
  setTimeout(tick, 1);
});
const t0 = onCpuNs();
await new Promise<void>((resolve) => {
  let k = 0;
  const tick = () => (++k >= n ? resolve() : setTimeout(tick, ms));
  setTimeout(tick, ms);
});
const used = onCpuNs() - t0;
process.stdout.write(`${JSON.stringify({ ms, n, us_per_wake: used / n / 1000 })}\n`);
