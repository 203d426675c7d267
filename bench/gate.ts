// bench/gate: what the secret directories' gate (bpf/syscalls.bpf.c secret_dir_gate; docs/syscalls.md, "A
// secret reached another way") costs an open, measured by the kernel itself: with kernel.bpf_stats_enabled,
// each program's run time and run count, so the difference is the exit program's own time per call, without
// the storm's syscall time or the machine's noise around it. One syscall sensor is loaded once; each
// configuration is applied to it in turn (no reload), alternating, and every round runs all four:
//   full+gate   opens reported in full (files.open, the storm's comm included), the default secret paths
//   full        the same with a secret path whose directory does not exist: no directories, no gate
//   restr+gate  the defaults' restricted opens (sensitiveWrites, secretReads), the default secret paths
//   restr       the same without directories
//   full+kill   full, and two rules that kill in the kernel (src/rules/kernel.ts; 5 strings, none matching
//               /dev/null): what kill_check costs each reported open that no kill rule matches
// And, on the process sensor (loaded once too), the exec program's time per exec of /bin/true
// (build/bench/exec_storm), with and without two rules that kill on execs (exec_kill_check; none matching):
//   exec        no exec kill rules
//   exec+kill   two rules on process.exe, process.comm and parent.comm
// The storm: build/bench/open_storm, openat+close of /dev/null (whose directory is no secret one: the gate
// looks and turns it down, the case of nearly every open on a host).
// And the deny rules' cgroup hooks (deny_check: deny_sendmsg4 on a UDP sendto with an address, deny_connect4
// on a connect, deny_connect_unix on a connect to a unix socket's path), with three deny rules (two about IP
// peers, one about runtime sockets) none of which matches the storm's peers (build/bench/udp_storm):
// the hook's time per call, and the storm's wall time per call with the hooks attached and without (no deny
// rule: nothing attached).
//
// usage: node bench/gate.ts [--rounds N] [--opens N] [--no-write]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { killRuleNumber } from '../src/events/kill.ts';
import { compileRules } from '../src/rules/rules.ts';
import type { KernelKillSet } from '../src/rules/kernel-maps.ts';
import { SyscallSensor } from '../src/syscalls/sensor.ts';
import { ProcessResolver } from '../src/process/resolver.ts';
import type { SyscallSensorConfig } from '../src/syscalls/config.ts';
import { arg } from './lib/args.ts';
import { fixed, markdownTable, median, ROOT, writeSection } from './lib/report.ts';

const STORM = path.join(ROOT, 'build/bench/open_storm');
const EXEC_STORM = path.join(ROOT, 'build/bench/exec_storm');
const ROUNDS = Number(arg('--rounds') ?? 5);
const OPENS = Number(arg('--opens') ?? 300_000);
const WRITE = !process.argv.includes('--no-write');
if (!(ROUNDS >= 1) || !(OPENS >= 1000)) {
  process.stderr.write('usage: node bench/gate.ts [--rounds N] [--opens N] [--no-write]\n');
  process.exit(2);
}
if (!fs.existsSync(STORM)) {
  process.stderr.write(`bench/gate: ${STORM} is missing: run make build first\n`);
  process.exit(2);
}

const comm = { comm: { include: ['open_storm'] } };
const NO_DIRS = ['/nonexistent/vigil-bench-gate/'];
const CONFIGS: [string, string, SyscallSensorConfig][] = [
  ['full+gate', 'opens reported in full, the default secret paths (their directories: /etc, /etc/security, …)', { files: { open: true }, filters: { ...comm } }],
  ['full', 'the same, a secret path whose directory does not exist: no gate', { files: { open: true }, filters: { ...comm, secretPaths: NO_DIRS } }],
  ['restr+gate', 'the defaults\' restricted opens, the default secret paths', { files: { sensitiveWrites: true, secretReads: true }, filters: { ...comm } }],
  ['restr', 'the same without directories: no gate', { files: { sensitiveWrites: true, secretReads: true }, filters: { ...comm, secretPaths: NO_DIRS } }],
];

/**
 * Rules that kill in the kernel (dry run), of one event type, compiled as `vigil run` compiles them and
 * numbered as the agent numbers them; `what` says how many and how many strings.
 */
function killSet(type: 'open' | 'exec' | 'connect', conditions: Record<string, string>): { set: KernelKillSet; what: string } {
  const deny = type === 'connect';
  const action = deny ? { deny: {} } : { kill: { inKernel: true } };
  const items = Object.entries(conditions).map(([rule, condition]) => ({ rule, condition, output: 'x', priority: 'critical', types: [type], actions: [action] }));
  const rules = compileRules({ sources: [{ name: 'bench', items }] }).kernelRules;
  const strings = rules.reduce((n, r) => n + r.selector.terms.reduce((m, t) => m + t.values.length, 0), 0);
  const set = { rules: rules.map((r) => ({ id: killRuleNumber(r.name), signal: deny ? 0 : 9, selector: r.selector })), dryRun: true, protect: [process.pid] };
  return { set, what: `${rules.length} rules that ${deny ? 'deny' : 'kill'} in the kernel (${strings} values` };
}

// Two rules as a site would write them: reads of the shadow files outside the tools that need them, and
// anything under /root/.ssh/.
const { set: KILL, what: killWhat } = killSet('open', {
  shadow: 'event.?resolvedPath.orValue(event.path) in ["/etc/shadow", "/etc/gshadow"] && !(process.comm in ["passwd", "sshd"])',
  ssh: 'event.path.startsWith("/root/.ssh/") && event.?write.orValue(false)',
});
const NO_KILL: KernelKillSet = { rules: [], dryRun: true, protect: [] };
const KILL_CONFIG = 'full+kill';
CONFIGS.push([KILL_CONFIG, `full, and ${killWhat}, none matching /dev/null)`, CONFIGS[1]![2]]);

// Two exec rules as a site would write them: netcat and socat anywhere, and a shell whose parent is a web server.
const EXEC_RULES = {
  netcat: 'process.exe in ["/usr/bin/nc", "/usr/bin/ncat", "/usr/bin/socat", "/bin/nc"]',
  'web shell': 'process.comm in ["sh", "bash", "dash"] && parent.?comm.orValue("") in ["nginx", "httpd", "php-fpm"]',
};
const { set: EXEC_KILL, what: execWhat } = killSet('exec', EXEC_RULES);
// The same, and a rule about argv (an interpreter given code inline): the exec's argv indexed, then compared.
const { set: ARGV_KILL, what: argvWhat } = killSet('exec', {
  ...EXEC_RULES,
  'inline code': 'process.comm in ["python3", "perl", "ruby"] && process.argv.exists(a, a in ["-c", "-e"])',
});
const EXEC_CONFIGS: [string, string, KernelKillSet][] = [
  ['exec', 'the process sensor, no exec kill rules', NO_KILL],
  ['exec+kill', `and ${execWhat}, none matching /bin/true), on execs`, EXEC_KILL],
  ['exec+argv', `and ${argvWhat}, one about argv, none matching /bin/true's "true vigil-storm <run> <i>"), on execs`, ARGV_KILL],
];
const EXECS = Math.max(1000, Math.round(OPENS / 30));

// Three deny rules as a site would write them: the cloud metadata service, mail ports outside the mail
// servers, and the runtimes' API sockets. The storm sends to, and connects to, a loopback port, and a unix
// socket path nobody listens on: no rule matches.
const { set: DENY, what: denyWhat } = killSet('connect', {
  metadata: 'event.?remoteAddress.orValue("").inCidr(["169.254.169.254/32", "fd00:ec2::254/128"])',
  smtp: 'event.?remotePort.orValue(0) in [25, 465, 587] && !(process.comm in ["postfix", "exim4", "sendmail"])',
  runtime: 'event.?remoteAddress.orValue("") in ["/run/docker.sock", "/var/run/docker.sock", "/run/containerd/containerd.sock"] && !(process.comm in ["dockerd"])',
});
const DENY_CONFIG: SyscallSensorConfig = { network: { connect: true }, filters: { comm: { include: ['vigil-no-one'] } } };
const DENY_MODES = [
  ['sendto', 'deny_sendmsg4', 'UDP sendto with an address'],
  ['connect', 'deny_connect4', 'connect() of a UDP socket'],
  ['unix', 'deny_connect_unix', 'connect() of a unix stream socket (ENOENT)'],
  ['unixdgram', 'deny_sendmsg_unix', 'sendto() of a unix datagram to a path (ENOENT)'],
] as const;
const UDP_STORM = path.join(ROOT, 'build/bench/udp_storm');
const DATAGRAMS = OPENS;

const STATS = '/proc/sys/kernel/bpf_stats_enabled';
const statsBefore = fs.readFileSync(STATS, 'utf8').trim();
const sensor = new SyscallSensor(CONFIGS[0]![2], { onEvent: () => {} });
sensor.start();
const resolver = new ProcessResolver({ mode: 'bpf' });
resolver.start();
fs.writeFileSync(STATS, '1');
let restored = false;
/** bpf_stats back as it was, the sensor detached: at the end, or at any exit before it. */
const restore = () => {
  if (restored) return;
  restored = true;
  fs.writeFileSync(STATS, statsBefore);
  sensor.stop();
  resolver.stop();
};
process.on('exit', restore);

const program = sensor.manager!.probes().find((p) => p.program?.name === 'exit_openat')?.program;
if (!program) {
  process.stderr.write('bench/gate: no exit_openat program (open arguments read at entry on this kernel?)\n');
  process.exit(1);
}
const execProgram = resolver.manager!.probes().find((p) => p.state === 'running' && p.program?.name.startsWith('exec_'))?.program;
if (!execProgram) {
  process.stderr.write('bench/gate: the process sensor has no exec program running\n');
  process.exit(1);
}
const execName = execProgram.name; // read now: a stopped manager's programs are closed
const denyPrograms = new Map(DENY_MODES.map(([mode, fn]) => [mode, sensor.manager!.probes().find((p) => p.program?.name === fn)?.program?.id]));
if ([...denyPrograms.values()].some((id) => id === undefined)) {
  process.stderr.write('bench/gate: the syscall sensor has no deny hooks (no cgroup v2 hierarchy?)\n');
  process.exit(1);
}
/** The UDP storm's wall time per call (ns), and its failed calls. */
const udpStorm = (mode: string): { ns: number; failed: number } => {
  const out = execFileSync(UDP_STORM, [String(DATAGRAMS), mode, '0'], { input: 'go\n', encoding: 'utf8' });
  const j = JSON.parse(out.trim().split('\n').at(-1)!) as { calls: number; failed: number; elapsed_ns: number };
  return { ns: j.elapsed_ns / j.calls, failed: j.failed };
};
const wall: Record<string, number[]> = {};
let udpFailed = 0;
const runStats = (id = program.id): { ns: number; n: number } => {
  const j = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(id)], { encoding: 'utf8' })) as { run_time_ns?: number; run_cnt?: number };
  return { ns: Number(j.run_time_ns ?? 0), n: Number(j.run_cnt ?? 0) };
};

const perCall: Record<string, number[]> = Object.fromEntries(CONFIGS.map(([k]) => [k, []]));
const dirs = new Map<string, string[]>();
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? CONFIGS : [...CONFIGS].reverse();
  for (const [key, , config] of order) {
    sensor.update(config);
    sensor.setKill(key === KILL_CONFIG ? KILL : NO_KILL);
    dirs.set(key, sensor.stats().secretDirs ?? []);
    const a = runStats();
    execFileSync(STORM, [String(OPENS), '0'], { input: 'go\n' });
    const b = runStats();
    const ns = (b.ns - a.ns) / (b.n - a.n);
    perCall[key]!.push(ns);
    process.stderr.write(`  round ${r + 1} ${key.padEnd(10)} ${fixed(ns, 1)} ns per call (${b.n - a.n} calls)\n`);
  }
  for (const [key, , set] of r % 2 === 0 ? EXEC_CONFIGS : [...EXEC_CONFIGS].reverse()) {
    resolver.execKill!.apply(set);
    const a = runStats(execProgram.id);
    execFileSync(EXEC_STORM, [String(EXECS), '1', `gate${r}`], { input: 'go\n' });
    const b = runStats(execProgram.id);
    const ns = (b.ns - a.ns) / (b.n - a.n);
    (perCall[key] ??= []).push(ns);
    process.stderr.write(`  round ${r + 1} ${key.padEnd(10)} ${fixed(ns, 1)} ns per call (${b.n - a.n} calls)\n`);
  }
  sensor.update(DENY_CONFIG);
  for (const attached of r % 2 === 0 ? [true, false] : [false, true]) {
    sensor.setKill(attached ? DENY : NO_KILL); // no deny rule: the hooks detach
    for (const [mode] of DENY_MODES) {
      const id = denyPrograms.get(mode)!;
      const a = runStats(id);
      const run = udpStorm(mode);
      const b = runStats(id);
      udpFailed += run.failed;
      (wall[`${mode}${attached ? '+deny' : ''}`] ??= []).push(run.ns);
      if (attached) (perCall[`hook ${mode}`] ??= []).push((b.ns - a.ns) / (b.n - a.n));
      process.stderr.write(`  round ${r + 1} ${mode}${attached ? `+deny: hook ${fixed((b.ns - a.ns) / (b.n - a.n), 1)} ns per call (${b.n - a.n} calls), ` : ': '}${fixed(run.ns, 1)} ns per call wall\n`);
    }
  }
}
const killed = resolver.execKill!.status().matched;

restore(); // the sensor's reader would keep the process alive
const med = (k: string) => median(perCall[k]!);
const diff = (on: string, off: string) => median(perCall[on]!.map((v, i) => v - perCall[off]![i]!));
const ratio = (on: string, off: string) => median(perCall[on]!.map((v, i) => v / perCall[off]![i]!));
const rows = [...CONFIGS, ...EXEC_CONFIGS].map(([k, what]) => [k, what, fixed(med(k), 1), perCall[k]!.map((v) => fixed(v, 0)).join(', ')]);
const wallDiff = (mode: string) => median(wall[`${mode}+deny`]!.map((v, i) => v - wall[mode]![i]!));
const wallRatio = (mode: string) => median(wall[`${mode}+deny`]!.map((v, i) => v / wall[mode]![i]!));
const denyRows = DENY_MODES.map(([mode, fn, what]) => [
  `\`${fn}\``,
  what,
  fixed(median(perCall[`hook ${mode}`]!), 1),
  perCall[`hook ${mode}`]!.map((v) => fixed(v, 0)).join(', '),
  fixed(median(wall[mode]!), 0),
  fixed(median(wall[`${mode}+deny`]!), 0),
  `${fixed(wallDiff(mode), 0)} (×${fixed(wallRatio(mode), 3)})`,
]);
const body = [
  `The secret directories' gate and the in-kernel kill rules, per open, as the kernel counts its programs' run time (\`kernel.bpf_stats_enabled\`): \`exit_openat\`'s time per call over ${OPENS.toLocaleString('en-US')} openat+close of /dev/null per configuration and round, ${ROUNDS} rounds.`,
  '',
  markdownTable(['config', 'what', 'ns per call (median)', 'rounds'], rows),
  '',
  `- **With opens reported in full:** the gate adds ${fixed(diff('full+gate', 'full'), 1)} ns per open (×${fixed(ratio('full+gate', 'full'), 3)} the exit program's time), median of the rounds' differences.`,
  `- **On the defaults (restricted opens):** ${fixed(diff('restr+gate', 'restr'), 1)} ns per open (×${fixed(ratio('restr+gate', 'restr'), 3)}).`,
  `- **In-kernel kill rules** (${KILL_CONFIG}): ${fixed(diff(KILL_CONFIG, 'full'), 1)} ns per reported open that none of them matches (×${fixed(ratio(KILL_CONFIG, 'full'), 3)}): the strings compared with the path and the comm, each rule's terms checked. Opens the filters turn down never reach them.`,
  `- **In-kernel kill rules on execs** (exec+kill): ${fixed(diff('exec+kill', 'exec'), 1)} ns per exec that none of them matches (×${fixed(ratio('exec+kill', 'exec'), 3)} the exec program's time, \`${execName}\`, which reads the exec's paths, argv and environment), over ${EXECS.toLocaleString('en-US')} fork+exec of /bin/true per round; ${killed} matched (dry run). With a third rule about argv (exec+argv), ${fixed(diff('exec+argv', 'exec'), 1)} ns (×${fixed(ratio('exec+argv', 'exec'), 3)}): the exec's argv indexed (a word at a time, up to its first 4096 bytes and 64 elements), then each argv value compared with each element.`,
  '',
  `The deny rules' cgroup hooks (\`deny_check\`), with ${denyWhat}, none matching the storm's loopback peer): the hook's time per call, and the storm's wall time per call (one pinned thread, ${DATAGRAMS.toLocaleString('en-US')} calls per round and configuration) with the hooks attached and without (no deny rule: nothing attached); ${udpFailed} calls failed.`,
  '',
  markdownTable(['hook', 'runs on', 'ns per call (median)', 'rounds', 'wall ns per call, no deny rule', 'with the deny rules', 'added ns per call (×)'], denyRows),
  '',
  `- **Deny rules:** every connect and every UDP datagram sent with an address, on the whole host, runs the hook while a deny rule about connects is in force: ${fixed(median(perCall['hook sendto']!), 0)} ns per datagram and ${fixed(median(perCall['hook connect']!), 0)} ns per connect of the hook's own time; datagrams on connected sockets carry no address and do not run it. Every connect to a unix socket runs its hook while a rule about a socket's path is in force: ${fixed(median(perCall['hook unix']!), 0)} ns per connect (the path read through the kernel's context, then compared as the kill rules compare paths), and every unix datagram sent to a path without a connect: ${fixed(median(perCall['hook unixdgram']!), 0)} ns per datagram.`,
  `- Directories the gate compared with: ${(dirs.get('full+gate') ?? []).join(', ') || 'none'}; without: ${(dirs.get('full') ?? []).join(', ') || 'none'}.`,
  `- For information, no target: the gate is the price of catching a secret read through a symlink, "..", "//" or /proc/<pid>/root, the kill rules that of killing before the open returns, or before an exec's new image runs, the deny hooks that of refusing a connect or a datagram before it leaves. bpf_stats adds its own clock reads to every call, the same with the gate and without.`,
].join('\n');
process.stdout.write(`${body}\n`);
if (WRITE) {
  const file = writeSection('gate', body, { title: 'gate: what the secret directories\' second look, the in-kernel kill rules and the deny hooks cost an open, an exec, a connect or a datagram', command: 'npm run bench:gate' });
  process.stderr.write(`wrote ${path.relative(ROOT, file)} (section gate)\n`);
}
