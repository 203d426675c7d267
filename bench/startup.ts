// bench/startup: how long `vigil run` takes to start and to stop on the embedded defaults, and where the start
// goes. Three measurements, in one run:
//   1. the floor: bin/vigil printing the help of `run` (Node starting and loading the CLI), N times;
//   2. the agent: bin/vigil run on the embedded defaults (no stdout, a private data dir and socket), N times:
//      the time of each progress line it prints, ready at "running", then SIGTERM and the time until it has
//      exited, with the BPF links it had attached counted at ready (bpftool) and gone after;
//   3. the verifier, program by program: each sensor's object loaded as the agent loads it (the same spec,
//      constants and exclusions), at verifier log level 4 (BPF_LOG_STATS), which makes the kernel report each
//      program's verification time and the instructions it processed; then unloaded. Nothing is attached.
// The start is mostly the verifier's: the ratio to the floor says how much of it is vigil's own doing.
//
// usage: node bench/startup.ts [--runs N] [--no-write]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseVerifierStats, type VerifierStats } from '../src/bpf/object.ts';
import { loadConfig, syscallSensorConfig } from '../src/config/config.ts';
import { cgroupSensorSpec } from '../src/containers/sensor.ts';
import { Manager, type ManagerOptions, type ManagerSpec } from '../src/manager/manager.ts';
import { processSensorSpec } from '../src/process/sensor.ts';
import { syscallSensorSpec } from '../src/syscalls/sensor.ts';
import { arg } from './lib/args.ts';
import { describeLaunchEnv, launchEnv } from './lib/launch.ts';
import { fixed, markdownTable, median, ROOT, writeSection } from './lib/report.ts';

const RUNS = Number(arg('--runs') ?? 5);
const WRITE = !process.argv.includes('--no-write');
if (!(RUNS >= 1)) {
  process.stderr.write('usage: node bench/startup.ts [--runs N] [--no-write]\n');
  process.exit(2);
}
const VIGIL = path.join(ROOT, 'bin/vigil');
const t0 = performance.now();

/** BPF links attached on the machine now (bpftool), or NaN when bpftool cannot tell. */
function linkCount(): number {
  const r = spawnSync('bpftool', ['-j', 'link', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return NaN;
  return (JSON.parse(r.stdout || '[]') as unknown[]).length;
}

/** 1. Node starting the CLI: wall ms of `bin/vigil run --help`. */
function floorMs(): number {
  const s = performance.now();
  const r = spawnSync(VIGIL, ['run', '--help'], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`bin/vigil run --help exited with ${r.status}`);
  return performance.now() - s;
}

interface AgentRun {
  /** ms since spawn of each progress line, by its text (without "vigil: "). */
  steps: [string, number][];
  readyMs: number;
  stopMs: number;
  links: number;
  linksAfter: number;
  clean: boolean;
}

/** 2. One agent: spawned, ready, stopped with SIGTERM; the links it attached counted at ready and after. */
async function agentRun(): Promise<AgentRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-startup-'));
  const before = linkCount();
  const start = performance.now();
  const child = spawn(VIGIL, ['run', '--no-stdout', '--data-dir', path.join(dir, 'data'), '--socket', path.join(dir, 'vigil.sock')], { stdio: ['ignore', 'ignore', 'pipe'] });
  const steps: [string, number][] = [];
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  try {
    const ready = new Promise<number>((resolve, reject) => {
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        const at = performance.now() - start;
        err += d;
        for (const line of d.split('\n')) {
          const m = /^vigil: (.*)$/.exec(line);
          if (!m) continue;
          steps.push([m[1]!, at]);
          if (m[1]!.startsWith('running')) resolve(at);
        }
      });
      void exited.then((code) => reject(new Error(`vigil run exited (${code}) before it was ready:\n${err}`)));
    });
    const readyMs = await ready;
    await new Promise((r) => setTimeout(r, 500));
    const links = linkCount() - before;
    const s = performance.now();
    child.kill('SIGTERM');
    const code = await exited;
    const stopMs = performance.now() - s;
    if (code !== 0) throw new Error(`vigil run exited with ${code} on SIGTERM:\n${err}`);
    return { steps, readyMs, stopMs, links, linksAfter: linkCount() - before, clean: /nothing is left attached/.test(err) };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** 3. An object loaded as its sensor loads it, at log level 4: each loaded program's verifier summary. */
function verifierStats({ spec, options }: { spec: ManagerSpec; options: ManagerOptions }): Map<string, VerifierStats> {
  const m = new Manager(spec);
  try {
    m.init({ ...options, verifier: { logLevel: 4 } });
    const out = new Map<string, VerifierStats>();
    for (const [name, log] of m.object.verifierLogs) {
      const st = parseVerifierStats(log);
      if (st) out.set(name, st);
    }
    return out;
  } finally {
    m.stop();
  }
}

const floors: number[] = [];
const runs: AgentRun[] = [];
for (let i = 0; i < RUNS; i++) {
  floors.push(floorMs());
  runs.push(await agentRun());
}
const config = loadConfig();
const objects: [string, Map<string, VerifierStats>][] = [
  ['process', verifierStats(processSensorSpec({ maxArgsBytes: config.process.maxArgsBytes, maxEnvBytes: config.process.maxEnvBytes, threads: config.process.threads, credentials: config.process.credentials }))],
  ['cgroup', verifierStats(cgroupSensorSpec({}))],
  ['syscalls', verifierStats(syscallSensorSpec(syscallSensorConfig(config)))],
];

// ---- report ------------------------------------------------------------------------------------------------

const floor = median(floors);
const ready = median(runs.map((r) => r.readyMs));
const stop = median(runs.map((r) => r.stopMs));
const links = median(runs.map((r) => r.links));
/** Median time between a progress line and the next (the step's own time), by step, in the agent's order. */
/** Each run's steps up to ready ("running"): what it printed while stopping is not the start. */
const starts = runs.map((r) => r.steps.slice(0, r.steps.findIndex(([s]) => s.startsWith('running')) + 1));
const stepNames = starts[0]!.map(([s]) => s.replace(/ \(.*$/, '').replace(/;.*$/, ''));
const stepRows = stepNames.map((name, i) => {
  const dur = starts.map((st, r) => (st[i + 1]?.[1] ?? runs[r]!.readyMs) - st[i]![1]);
  const at = starts.map((st) => st[i]![1]);
  return [name, fixed(median(at), 0), i + 1 < stepNames.length ? fixed(median(dur), 0) : '–'];
});
const verifyRows: (string | number)[][] = [];
const totals: [string, number, number][] = [];
for (const [obj, st] of objects) {
  let us = 0;
  for (const v of st.values()) us += v.timeUs;
  totals.push([obj, us / 1000, st.size]);
  const top = [...st].sort((a, b) => b[1].timeUs - a[1].timeUs).slice(0, obj === 'syscalls' ? 10 : 3);
  for (const [name, v] of top) verifyRows.push([obj, `\`${name}\``, fixed(v.timeUs / 1000, 1), v.insnsProcessed.toLocaleString('en-US'), Number.isFinite(v.peakStates) ? v.peakStates : '–']);
}
const verifyMs = totals.reduce((a, [, ms]) => a + ms, 0);
const clean = runs.every((r) => r.clean && r.linksAfter <= 0);

const body = [
  `Time from \`bin/vigil run\` on the embedded defaults to ready ("running"), and from SIGTERM to its exit, ${RUNS} runs (medians), against the floor measured in the same run: bin/vigil printing the help of \`run\` (Node starting and loading the CLI).`,
  '',
  markdownTable(
    ['what', 'ms (median)', 'runs', 'vs the floor'],
    [
      ['floor: `bin/vigil run --help`', fixed(floor, 0), floors.map((x) => fixed(x, 0)).join(', '), '1.00'],
      ['`vigil run`: ready', fixed(ready, 0), runs.map((r) => fixed(r.readyMs, 0)).join(', '), `×${fixed(ready / floor, 1)}`],
      [`\`vigil run\`: SIGTERM to exit (${links} links attached)`, fixed(stop, 0), runs.map((r) => fixed(r.stopMs, 0)).join(', '), `×${fixed(stop / floor, 1)}`],
    ],
  ),
  '',
  'Where the start goes: each progress line the agent prints, when it came (ms since spawn) and how long until the next (medians):',
  '',
  markdownTable(['step', 'at ms', 'ms to the next'], stepRows),
  '',
  `The kernel's verifier, per program, each sensor's object loaded as the agent loads it (its constants, exclusions and tail-call routes), at verifier log level 4 (BPF_LOG_STATS): ${totals.map(([o, ms, n]) => `${o} ${fixed(ms, 0)} ms over ${n} programs`).join(', ')}; ${fixed(verifyMs, 0)} ms in all. The slowest programs:`,
  '',
  markdownTable(['object', 'program', 'verification ms', 'instructions processed', 'peak states'], verifyRows),
  '',
  `- **Start:** ready in ${fixed(ready / 1000, 2)} s, ×${fixed(ready / floor, 1)} the floor (${fixed(floor, 0)} ms); the verifier accounts for ${fixed(verifyMs / 1000, 2)} s of it (${fixed((verifyMs / ready) * 100, 0)} %), nearly all of it the syscall sensor's file and io_uring programs, whose path walks it checks path by path. The file syscalls' exit programs (the four opens' and the others') share one program that writes their records, and the three io_uring hooks two (tail calls, bpf/syscalls.bpf.c "open_emit", "exit_file" and "iou_writers"): before, each had its own inlined copy, verified eleven times over (0.3–0.5 s each, strace -T of bpf(BPF_PROG_LOAD) and BPF_LOG_STATS).`,
  `- **Stop:** ${fixed(stop / 1000, 2)} s after SIGTERM; ${clean ? 'every run printed "nothing is left attached" and left no link behind' : 'NOT every run detached everything'}. Detaching is the kernel's time: a per-syscall tracepoint's last BPF program detached waits for an RCU grace period (perf_trace_event_unreg calls tracepoint_synchronize_unregister holding the kernel's event_mutex, so detaching them in parallel would not help): 60–90 ms per close(2) of such a link here (strace -T of a stopping agent).`,
  `- Agent environment: as bin/vigil starts it (bin/launch.env: ${describeLaunchEnv(launchEnv())}, Node's compile cache in build/). The whole benchmark took ${fixed((performance.now() - t0) / 1000, 0)} s.`,
].join('\n');

process.stdout.write(`${body}\n`);
if (WRITE) writeSection('startup', body, { title: 'startup: how long vigil run takes to start and to stop, and what the verifier spends', command: 'npm run bench:startup' });
