// End to end, as a user runs it: `bin/vigil run` with a YAML config (stdout JSON, the SQLite store, NATS
// JetStream on a real nats-server, file events under a test directory, network events, a podman runtime),
// a scripted workload in its own process (test/fixtures/agent-workload.c: files, a TCP and a unix-socket
// connect to listeners this test runs, execs with known argv, one as uid 65534) and an exec inside a podman
// container. Every expected event is checked, with its fields, process and container, in each place a user
// reads it: stdout, `vigil events` (from the running agent, then from the store file after the stop), two
// filtered SSE streams and the NATS stream. Then SIGTERM: exit code 0, the accounting printed at the stop
// balances exactly, and no BPF program, map or link the agent held is left in the kernel.
// Needs root + BPF + podman + nats-server + gcc. The CLI conventions (--help, exit codes) need nothing.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import type { AgentStatus } from '../../src/agent/agent.ts';
import type { OutputEvent } from '../../src/pipeline/types.ts';
import { eventMsgId } from '../../src/sinks/nats.ts';
import { runCli } from '../helpers/agent.ts';
import { AgentProcess, agentConfig, sse, unixGet } from '../helpers/agent-process.ts';
import { BUSYBOX_IMAGE, needsRuntime, startPodman, until } from '../helpers/containers.ts';
import { haveNatsServer, NatsServer } from '../helpers/nats.ts';
import { assertGone, heldBpfObjects, privileged, ROOT, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF + podman + nats-server + gcc';

type Truth = { s: string; [k: string]: unknown };

/** Events on stdout that mention `needle` (the workload's token), each with its exact JSON line. */
class Lines {
  readonly all: { line: string; ev: OutputEvent }[] = [];
  readonly needle: string;
  constructor(needle: string) {
    this.needle = needle;
  }
  readonly push = (line: string): void => {
    if (line.includes(this.needle)) this.all.push({ line, ev: JSON.parse(line) as OutputEvent });
  };
  async one(pred: (e: OutputEvent) => boolean, what: string): Promise<{ line: string; ev: OutputEvent }> {
    let hit: { line: string; ev: OutputEvent } | undefined;
    await until(() => (hit = this.all.find((x) => pred(x.ev))) !== undefined, `${what} on stdout`, 30_000, () => `${this.all.length} lines with the token so far`);
    return hit!;
  }
}

function build(dir: string): string {
  const bin = path.join(dir, 'vigil-e2e-wl');
  execFileSync('gcc', ['-O1', '-Wall', '-o', bin, path.join(ROOT, 'test/fixtures/agent-workload.c')]);
  return bin;
}

test('vigil run end to end: every event of a scripted workload in stdout, the store, SSE and NATS; a clean SIGTERM', async (t) => {
  if (!needsRuntime(t, NEEDS, 'podman') || !haveNatsServer(t, NEEDS)) return;
  const t0 = new Date(Date.now() - 1000).toISOString();
  const dir = fs.realpathSync(tempDir(t, 'vigil-e2e-'));
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  const token = crypto.randomBytes(6).toString('hex');
  const bin = build(dir);

  // A container running before the agent starts, on a podman whose API the agent is pointed at.
  const podman = await startPodman(t);
  const podmanSock = await podman.startService();
  const ctrName = `vigil-e2e-${token}`;
  const ctr = await podman.run({ name: ctrName, labels: { app: 'e2e' } });

  const nats = await NatsServer.start(t);

  // The listeners the workload connects to.
  const accepted: { remotePort: number; data: string }[] = [];
  const tcp = net.createServer((s) => {
    const c = { remotePort: s.remotePort!, data: '' };
    accepted.push(c);
    s.on('data', (d) => (c.data += d.toString()));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const tcpPort = (tcp.address() as net.AddressInfo).port;
  const unixPath = path.join(dir, 'wl.sock');
  let unixData = '';
  const unix = net.createServer((s) => {
    s.on('data', (d) => (unixData += d.toString()));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => unix.listen(unixPath, r));
  t.after(() => {
    tcp.close();
    unix.close();
  });

  const { socket, dataDir, write } = agentConfig(dir);
  const storePath = path.join(dataDir, 'events.db');
  const configPath = write(
      'pipeline:',
      '  holdForEnrichmentMs: 3000',
      'events:',
      '  process: { exec: true, exit: true, creds: true }',
      '  files: { open: true, unlink: true }',
      '  network: { connect: true, accept: true }',
      '  other: false',
      'filters:',
      `  pathPrefixes: ["${work}/"]`,
      'containers:',
      `  runtimes: [{ runtime: podman, socket: "${podmanSock}" }]`,
      'sinks:',
      '  stdout: { format: json }',
      `  store: { enabled: true, path: "${storePath}" }`,
      '  nats:',
      `    servers: ["${nats.url}"]`,
      '    stream: { name: VIGIL_E2E, create: true }',
  );

  const lines = new Lines(token);
  const agent = AgentProcess.start(t, ['run', '--config', configPath], { onStdoutLine: lines.push });
  await agent.waitForStderr(/^vigil: running: /, 'the agent to run');
  // Progress while the sensors load and the snapshot is taken, in order.
  const steps = ['opening sinks', 'checking privileges', 'loading the process sensor and taking the /proc snapshot', 'loading the cgroup sensor', 'loading the syscall sensor', 'finding containers', 'running: process bpf'];
  const at = steps.map((s) => agent.stderr.findIndex((l) => l.startsWith(`vigil: ${s}`)));
  assert.ok(at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1]!)), `progress steps in order:\n${agent.stderr.join('\n')}`);
  assert.equal((fs.statSync(socket).mode & 0o777).toString(8), '600', 'the API socket is 0600');

  // What the agent holds in the kernel while it runs, to check that all of it goes away with it.
  const held = heldBpfObjects(agent.pid);
  assert.ok(held.progs.length > 0 && held.maps.length > 0 && held.links.length > 0, `the agent holds programs, maps and links: ${JSON.stringify(held)}`);

  // The workload waits on stdin until the SSE streams are subscribed: its pid is known before it runs.
  const wl = spawn('/bin/sh', ['-c', 'read go && exec "$0" "$@"', bin, work, String(tcpPort), unixPath, token], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => {
    if (wl.exitCode === null && wl.signalCode === null) wl.kill('SIGKILL');
  });
  const P = wl.pid!;
  const byPid = sse(t, socket, `/v1/events/stream?pid=${P}`);
  // Kept: our connects, and anything that is not a connect at all (which the filter must never let through);
  // other processes' connects are not kept.
  const connects = sse(t, socket, '/v1/events/stream?type=connect', (l) => l.includes(token) || !l.includes('"type":"connect"'));
  await Promise.all([byPid.ready, connects.ready]);
  let out = '';
  wl.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => wl.once('exit', (code) => r(code)));
  wl.stdin!.end('go\n');
  assert.equal(await exited, 0, 'the workload ran to the end');
  const truth = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Truth);
  const one = (s: string) => {
    const x = truth.find((y) => y.s === s);
    assert.ok(x, `the workload reported ${s}: ${out}`);
    return x;
  };
  await podman.exec(ctr, ['echo', 'vigil-e2e-ctr', token]);
  // A program run from /dev/shm: the default rule "Execution from /dev/shm" raises an alert.
  const shmBin = `/dev/shm/vigil-e2e-${token}`;
  t.after(() => fs.rmSync(shmBin, { force: true }));
  fs.copyFileSync('/bin/true', shmBin);
  fs.chmodSync(shmBin, 0o755);
  execFileSync(shmBin, ['vigil-e2e-shm', token]);
  fs.rmSync(shmBin);

  // ---- stdout: every expected event, its fields, process and container ----
  const T = process.pid;
  const wlArgv = [bin, work, String(tcpPort), unixPath, token];
  const ofWl = (type: string, pred: (e: OutputEvent) => boolean = () => true) => (e: OutputEvent) => e.type === type && e.process?.pid === P && e.process.argv?.[0] === bin && pred(e);
  const checkWlProcess = (e: OutputEvent, what: string) => {
    const p = e.process!;
    assert.deepEqual({ pid: p.pid, ppid: p.ppid, argv: p.argv, exe: p.exe, comm: p.comm, uid: p.uid, user: p.user }, { pid: P, ppid: T, argv: wlArgv, exe: bin, comm: 'vigil-e2e-wl', uid: 0, user: 'root' }, what);
    assert.deepEqual(e.ancestors?.slice(0, 2), [T, process.ppid], `${what}: ancestors, parent first`);
    assert.equal(e.parent?.pid, T, what);
    assert.equal(e.container, undefined, `${what}: a host process has no container`);
  };

  const exec = await lines.one(ofWl('exec'), 'the workload\'s exec');
  checkWlProcess(exec.ev, 'exec');
  assert.equal(exec.ev.filename, bin);
  assert.equal(exec.ev.argc, 5);

  const created = String(one('open_create').path);
  const oc = await lines.one(ofWl('open', (e) => e.path === created && e.write === true), 'open O_CREAT|O_WRONLY');
  checkWlProcess(oc.ev, 'open create');
  assert.deepEqual(
    { syscall: oc.ev.syscall, ret: oc.ev.ret, flagNames: oc.ev.flagNames, modeOctal: oc.ev.modeOctal, dfd: oc.ev.dfd, resolvedPath: oc.ev.resolvedPath, group: oc.ev.group },
    { syscall: 'openat', ret: one('open_create').fd, flagNames: 'O_WRONLY|O_CREAT|O_TRUNC', modeOctal: '0640', dfd: -100, resolvedPath: created, group: 'file' },
  );
  const or = await lines.one(ofWl('open', (e) => e.path === created && e.write === undefined), 'open O_RDONLY (a flag that is not set is left out)');
  assert.deepEqual([or.ev.ret, or.ev.flagNames, or.ev.errno], [one('open_read').fd, 'O_RDONLY', undefined]);
  const om = await lines.one(ofWl('open', (e) => e.path === one('open_missing').path), 'open of a missing file');
  assert.deepEqual([om.ev.ret, om.ev.errno], [one('open_missing').ret, 'ENOENT']);
  const unl = await lines.one(ofWl('unlink', (e) => e.path === created), 'unlink');
  assert.deepEqual([unl.ev.ret, unl.ev.syscall], [0, 'unlink']);

  const tcpTruth = one('tcp');
  const ct = await lines.one(ofWl('connect', (e) => e.family === 'AF_INET'), 'the TCP connect');
  checkWlProcess(ct.ev, 'tcp connect');
  assert.deepEqual(
    { fd: ct.ev.fd, ret: ct.ev.ret, remoteAddress: ct.ev.remoteAddress, remotePort: ct.ev.remotePort, localAddress: ct.ev.localAddress, localPort: ct.ev.localPort, sockType: ct.ev.sockType },
    { fd: tcpTruth.fd, ret: 0, remoteAddress: '127.0.0.1', remotePort: tcpPort, localAddress: '127.0.0.1', localPort: tcpTruth.localPort, sockType: 'SOCK_STREAM' },
  );
  assert.ok(accepted.some((a) => a.remotePort === tcpTruth.localPort && a.data === token), 'the listener saw the same connection');
  const cu = await lines.one(ofWl('connect', (e) => e.family === 'AF_UNIX'), 'the unix-socket connect');
  assert.deepEqual({ fd: cu.ev.fd, ret: cu.ev.ret, remoteAddress: cu.ev.remoteAddress, sockType: cu.ev.sockType }, { fd: one('unix').fd, ret: 0, remoteAddress: unixPath, sockType: 'SOCK_STREAM' });
  assert.equal(unixData, token);

  const echoPid = Number(one('exec_echo').pid);
  const echo = await lines.one((e) => e.type === 'exec' && e.process?.pid === echoPid, 'the echo exec');
  assert.deepEqual(
    { argv: echo.ev.process!.argv, exe: echo.ev.process!.exe, ppid: echo.ev.process!.ppid, user: echo.ev.process!.user, filename: echo.ev.filename },
    { argv: ['/bin/echo', 'vigil-e2e-echo', token], exe: fs.realpathSync('/bin/echo'), ppid: P, user: 'root', filename: '/bin/echo' },
  );
  assert.deepEqual(echo.ev.ancestors?.slice(0, 2), [P, T], 'the echo\'s lineage: the workload, then this test');
  assert.deepEqual(echo.ev.parent?.argv, wlArgv);
  const echoExit = await lines.one((e) => e.type === 'exit' && e.process?.pid === echoPid, 'the echo exit');
  assert.equal(echoExit.ev.exitCode, 0);

  const nobodyPid = Number(one('exec_nobody').pid);
  const nb = await lines.one((e) => e.type === 'exec' && e.process?.pid === nobodyPid, 'the exec as uid 65534');
  assert.deepEqual(
    { argv: nb.ev.process!.argv, uid: nb.ev.process!.uid, gid: nb.ev.process!.gid, user: nb.ev.process!.user, ppid: nb.ev.process!.ppid },
    { argv: ['/bin/true', 'vigil-e2e-nobody', token], uid: 65534, gid: 65534, user: 'nobody', ppid: P },
  );
  const creds = await lines.one((e) => e.type === 'creds' && e.process?.pid === nobodyPid && (e.new as { uid: number }).uid === 65534, 'the setresuid creds change');
  // From the setresuid exit tracepoint here; from commit_creds where fentry/kprobes exist.
  assert.ok(['setresuid', 'commit_creds'].includes(creds.ev.syscall as string), `creds via ${String(creds.ev.syscall)}`);
  assert.equal((creds.ev.old as { uid: number }).uid, 0);

  const inCtr = await lines.one((e) => e.type === 'exec' && e.process?.argv?.[1] === 'vigil-e2e-ctr', 'the exec inside the container');
  assert.deepEqual(inCtr.ev.process!.argv, ['echo', 'vigil-e2e-ctr', token]);
  const c = inCtr.ev.container!;
  assert.deepEqual({ id: c.id, name: c.name, image: c.image, runtime: c.runtime, labels: c.labels, enrichment: c.enrichment }, { id: ctr, name: ctrName, image: BUSYBOX_IMAGE, runtime: 'podman', labels: { app: 'e2e' }, enrichment: 'done' });

  // The default rules' alert, after the exec it is about, with its process and the exec's own fields.
  const shmExec = await lines.one((e) => e.type === 'exec' && e.process?.argv?.[1] === 'vigil-e2e-shm', 'the exec from /dev/shm');
  const alert = await lines.one((e) => e.type === 'alert' && e.process?.pid === shmExec.ev.process!.pid, 'the alert of the default rule');
  assert.deepEqual(
    { rule: alert.ev.rule, priority: alert.ev.priority, process: alert.ev.process, ancestors: alert.ev.ancestors, event: (alert.ev.event as { type: string; filename: string }) },
    { rule: 'Execution from /dev/shm', priority: 'warning', process: shmExec.ev.process, ancestors: shmExec.ev.ancestors, event: { ...(({ type, time: _t, ktimeNs: _k, process: _p, parent: _q, ancestors: _a, ...rest }) => ({ type, ...rest }))(shmExec.ev) } },
  );
  assert.equal(alert.ev.output, `Execution from /dev/shm: ${shmBin} ${shmBin} vigil-e2e-shm ${token} by ${shmExec.ev.parent!.comm} (user root)`);
  assert.ok(lines.all.indexOf(shmExec) < lines.all.indexOf(alert), 'the event is written before its alert');

  const wlEvents = [exec, oc, or, om, unl, ct, cu];
  const expected = [...wlEvents, echo, echoExit, nb, creds, inCtr];

  // ---- SSE: the pid-filtered stream has exactly the workload pid's events, byte for byte as on stdout ----
  await until(() => wlEvents.every((x) => byPid.lines.includes(x.line)), 'the workload\'s events on the pid-filtered SSE stream', 20_000, () => `${byPid.lines.length} events on the stream`);
  for (const l of byPid.lines) assert.equal((JSON.parse(l) as OutputEvent).process?.pid, P, `the pid filter let through ${l.slice(0, 200)}`);
  await until(() => [ct, cu].every((x) => connects.lines.includes(x.line)), 'the connects on the type-filtered SSE stream', 20_000);
  for (const l of connects.lines) assert.equal((JSON.parse(l) as OutputEvent).type, 'connect', `the type filter let through ${l.slice(0, 200)}`);
  const bad = await unixGet(socket, '/v1/events/stream?pid=abc');
  assert.equal(bad.status, 400, 'a bad filter is refused before the stream starts');
  assert.match(bad.body, /pid/);

  // ---- vigil events, from the running agent (its store) ----
  const cli = (...args: string[]) => runCli([...args, '--socket', socket], 60_000);
  const storeHas = async (args: string[], want: { line: string }[], what: string) => {
    let got: string[] = [];
    await until(async () => {
      const r = await cli('events', '--json', ...args);
      assert.equal(r.status, 0, r.stderr);
      got = r.stdout.split('\n').filter(Boolean);
      return want.every((w) => got.includes(w.line));
    }, what, 30_000, () => `got ${got.length} events`);
    return got.map((l) => JSON.parse(l) as OutputEvent);
  };
  const fromWl = await storeHas(['--since', t0, '--pid', String(P), '--type', 'exec,open,unlink,connect'], wlEvents, 'the workload\'s events from `vigil events` (agent running)');
  assert.ok(fromWl.every((e) => e.process?.pid === P && ['exec', 'open', 'unlink', 'connect'].includes(e.type)), 'filtered by pid and type');
  await storeHas(['--since', '10m', '--pid', String(echoPid)], [echo, echoExit], 'the echo\'s exec and exit from `vigil events`');
  const ctrEvents = await storeHas(['--since', '10m', '--container', ctrName, '--type', 'exec'], [inCtr], 'the container exec by container name');
  await storeHas(['--since', t0, '--type', 'alert'], [alert], 'the alert from `vigil events --type alert`');
  assert.ok(ctrEvents.every((e) => e.container?.id === ctr && e.type === 'exec'));

  // ---- vigil status, /metrics ----
  const st = await cli('status', '--json');
  assert.equal(st.status, 0, st.stderr);
  const status = JSON.parse(st.stdout) as AgentStatus;
  assert.equal(status.state, 'running');
  assert.equal(status.pid, agent.pid);
  assert.deepEqual(status.sensors.map((s) => s.name).sort(), ['cgroup', 'process', 'syscalls']);
  for (const s of status.sensors) {
    assert.equal(s.state, 'running', s.name);
    assert.ok(s.probes.some((p) => p.state === 'running'), `${s.name} has running probes`);
    for (const p of s.probes.filter((x) => x.state === 'failed')) assert.ok(p.error, `a failed probe says why: ${JSON.stringify(p)}`);
  }
  assert.ok(status.kernel.emitted > 0 && status.pipeline.records > 0 && status.pipeline.emitted > 0, JSON.stringify({ k: status.kernel, p: status.pipeline }));
  assert.deepEqual(Object.keys(status.sinks).sort(), ['nats', 'stdout', 'store']);
  assert.ok(status.containers!.runtimes.some((r) => r.runtime === 'podman' && r.ok > 0), JSON.stringify(status.containers!.runtimes));
  assert.equal(status.accounting.final, false);
  assert.equal(status.accounting.balanced, true, `while running, every stage balances: ${JSON.stringify(status.accounting)}`);
  const text = await cli('status');
  assert.equal(text.status, 0);
  assert.match(text.stdout, /^vigil running/);
  assert.match(text.stdout, /sinks:\n {2}(stdout|store|nats): received/);
  assert.match(text.stdout, /^accounting: balanced: kernel [\d,]+ = lost [\d,]+ \+ unread -?[\d,]+/m);
  const metrics = await unixGet(socket, '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^vigil_kernel_emitted_total \d+/m);
  assert.match(metrics.body, /^vigil_ring_reader_passes_total\{kind="past_room"\} \d+/m);
  assert.match(metrics.body, /^vigil_sink_events_total\{sink="nats",state="sent"\} \d+/m);

  // ---- NATS: each event once, with the same bytes, on its type's subject, with its dedupe id ----
  const nc = await connect({ servers: nats.url });
  t.after(() => nc.close());
  // One ordered consumer per type's subject, from just before the test (nats-server 2.9: one filter each).
  const js = jetstream(nc);
  const consumers = await Promise.all([...new Set(expected.map((x) => x.ev.type))].map((type) => js.consumers.get('VIGIL_E2E', { filter_subjects: `vigil.events.${type}`, deliver_policy: DeliverPolicy.StartTime, opt_start_time: t0 })));
  const fromNats = new Map<string, { subject: string; msgId: string | undefined; n: number }>();
  const wanted = new Set(expected.map((x) => x.line));
  await until(async () => {
    await Promise.all(consumers.map(async (consumer) => {
      const batch = await consumer.fetch({ max_messages: 5000, expires: 1000 });
      for await (const m of batch) {
        const data = m.string();
        if (!wanted.has(data)) continue;
        const seen = fromNats.get(data);
        if (seen) seen.n++;
        else fromNats.set(data, { subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), n: 1 });
      }
    }));
    return fromNats.size === wanted.size;
  }, 'every expected event in the NATS stream', 60_000, () => `${fromNats.size} of ${wanted.size} found`);
  for (const x of expected) {
    const m = fromNats.get(x.line)!;
    assert.deepEqual(m, { subject: `vigil.events.${x.ev.type}`, msgId: eventMsgId(x.line), n: 1 }, `${x.ev.type} in NATS`);
  }

  // ---- SIGTERM: a clean stop, exact accounting, nothing left in the kernel ----
  const exit = await agent.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, agent.stderr.join('\n'));
  assert.ok(agent.stderr.includes('vigil: stopping (SIGTERM)'));
  assert.equal(agent.stderr.at(-1), 'vigil: stopped; nothing is left attached');
  const acct = agent.accounting();
  assert.match(acct.verdict, /^balanced/, agent.stderr.join('\n'));
  const k = acct.kernel;
  const p = acct.pipeline;
  assert.equal(k.unread, 0, 'every record the kernel emitted was read');
  assert.equal(k.read, k.emitted);
  assert.equal(k.attempted, k.emitted + k['ring-full']! + k['output-failed']!);
  const pipeDrops = Object.entries(p).filter(([n]) => n.startsWith('dropped.')).reduce((a, [, v]) => a + v, 0);
  assert.equal(p.records, k.read);
  assert.equal(p.records, p.events! + p['state-only']! + pipeDrops + p.buffered!, 'each record in one pipeline counter');
  assert.equal(p.buffered, 0);
  assert.deepEqual(Object.keys(acct.sinks).sort(), ['nats', 'stdout', 'store']);
  for (const [name, s] of Object.entries(acct.sinks)) {
    assert.equal(s.queued, 0, `${name}: nothing queued after the stop`);
    assert.equal(s.received, p.events! + p.synthetic!, `${name} received every event`);
    assert.equal(s.received, s.sent! + s.dropped!, `${name}: sent or dropped with a reason`);
    // The identity: what the kernel tried to hand over = what this sink delivered + every counted drop.
    assert.equal(k.attempted! + p.synthetic!, k['ring-full']! + k['output-failed']! + pipeDrops + p['state-only']! + s.sent! + s.dropped!, `${name}: kernel emitted = delivered + counted drops`);
  }
  await assertGone(held);
  assert.equal(fs.existsSync(socket), false, 'the API socket is removed');

  // ---- vigil events after the stop: read from the store file ----
  const after = await runCli(['events', '--json', '--socket', socket, '--store', storePath, '--since', t0, '--pid', String(P), '--type', 'exec,open,unlink,connect']);
  assert.equal(after.status, 0, after.stderr);
  const afterLines = after.stdout.split('\n').filter(Boolean);
  for (const x of wlEvents) assert.ok(afterLines.includes(x.line), `${x.ev.type} from the store file after the stop`);
  const afterCtr = await runCli(['events', '--json', '--socket', socket, '--store', storePath, '--container', ctrName, '--since', t0]);
  assert.ok(afterCtr.stdout.split('\n').includes(inCtr.line), 'the container exec by name from the store file');
  const human = await runCli(['events', '--socket', socket, '--store', storePath, '--since', t0, '--pid', String(P)]);
  assert.equal(human.status, 0);
  assert.match(human.stderr, new RegExp(`events? from ${storePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
});

test('CLI conventions: every command has --help (exit 0); usage and configuration errors exit 2; no agent exits 1', async (t) => {
  const dir = tempDir(t, 'vigil-cli-');
  for (const cmd of [[], ['run'], ['status'], ['events'], ['containers'], ['ps'], ['rules'], ['rules', 'check']]) {
    const r = await runCli([...cmd, '--help']);
    assert.equal(r.status, 0, `vigil ${cmd.join(' ')} --help: ${r.stderr}`);
    assert.match(r.stdout, /^Usage: vigil/, cmd.join(' '));
  }
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.status, 2, unknown.stderr);
  assert.match(unknown.stderr, /unknown command/);
  const badPid = await runCli(['events', '--pid', 'abc']);
  assert.equal(badPid.status, 2);
  assert.match(badPid.stderr, /--pid <pid>' argument 'abc' is invalid/);
  const badSet = await runCli(['run', '--set', 'ring.sizeMiB=3', '--socket', path.join(dir, 's.sock'), '--data-dir', path.join(dir, 'd')]);
  assert.equal(badSet.status, 2, 'a bad configuration exits 2 before anything is loaded');
  assert.match(badSet.stderr, /ring\.sizeMiB: must be a power of two/);
  assert.equal(fs.existsSync(path.join(dir, 'd')), false, 'nothing was created');
  const noAgent = await runCli(['status', '--socket', path.join(dir, 'none.sock')]);
  assert.equal(noAgent.status, 1);
  assert.match(noAgent.stderr, /no agent answers at .*none\.sock/);
  const noStore = await runCli(['events', '--socket', path.join(dir, 'none.sock'), '--store', path.join(dir, 'none.db')]);
  assert.equal(noStore.status, 1);
  assert.match(noStore.stderr, /no agent is running and there is no store at/);
});

test('SIGINT stops the agent cleanly; a second signal during a slow stop exits at once, and nothing stays attached either way', async (t) => {
  if (!privileged(t, 'root + BPF')) return;
  const dir = tempDir(t, 'vigil-sigint-');
  const base = (name: string) => ['run', '--socket', path.join(dir, `${name}.sock`), '--data-dir', path.join(dir, name), '--set', 'events.network=false', '--set', 'events.other=false'];

  // Ctrl-C: exit 0, the accounting balances, the socket and every kernel object are gone.
  const a = AgentProcess.start(t, [...base('a'), '--no-stdout'], { stdout: 'ignore' });
  await a.waitForStderr(/^vigil: running: /, 'the agent to run');
  const heldA = heldBpfObjects(a.pid);
  assert.deepEqual(await a.stop('SIGINT'), { code: 0, signal: null }, a.stderr.join('\n'));
  assert.ok(a.stderr.includes('vigil: stopping (SIGINT)'));
  assert.match(a.accounting().verdict, /^balanced/, a.stderr.join('\n'));
  await assertGone(heldA);
  assert.equal(fs.existsSync(path.join(dir, 'a.sock')), false);

  // A webhook whose receiver never answers holds the stop (its close waits for the queued events); a second
  // Ctrl-C gives up at once with exit code 1. The links are fd-owned: the kernel releases them anyway.
  const hung = http.createServer(() => undefined);
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  t.after(() => hung.closeAllConnections());
  t.after(() => hung.close());
  const url = `http://127.0.0.1:${(hung.address() as net.AddressInfo).port}/`;
  const b = AgentProcess.start(t, [...base('b'), '--no-stdout', '--set', 'sinks.store.enabled=false', '--set', `sinks.webhook={url: "${url}", maxBatchAgeMs: 0, timeoutMs: 600000, closeTimeoutMs: 600000}`], { stdout: 'ignore' });
  await b.waitForStderr(/^vigil: running: /, 'the second agent to run');
  const heldB = heldBpfObjects(b.pid);
  const sock = path.join(dir, 'b.sock');
  await until(async () => {
    execFileSync('/bin/true');
    return (JSON.parse((await unixGet(sock, '/v1/status')).body) as AgentStatus).sinks.webhook!.queued > 0;
  }, 'an event in flight to the hung webhook', 30_000);
  b.child.kill('SIGINT');
  await b.waitForStderr(/^vigil: stopping \(SIGINT\)/, 'the stop to begin');
  b.child.kill('SIGINT');
  assert.deepEqual(await b.exited(), { code: 1, signal: null }, b.stderr.join('\n'));
  assert.ok(b.stderr.includes('vigil: SIGINT again: exiting now'));
  await assertGone(heldB);
});
