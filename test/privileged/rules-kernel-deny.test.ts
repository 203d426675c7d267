// A rule that denies connects in the kernel (actions: [{deny: {}}]) through the whole agent: `vigil run` with a
// rule about bash connecting to one loopback port of this test. The syscall sensor's cgroup connect hooks fail
// that connect with EPERM before it is made: the listener never sees it, and the shell goes on, its connect
// failed. A connect to another port, and the same port through an IPv4-mapped IPv6 address (which the
// rule's inCidr block holds), are told apart as the rule says. The connect event and the alert say what the
// kernel did; with enforcement off (a reload) the connect goes through and is reported as a dry run. A deny
// rule the kernel cannot check stops `vigil run` before anything is loaded, and the hooks are gone once the
// agent stops. A rule about a unix socket's path (or abstract name) is checked by the unix connect and
// datagram hooks alone, which a rule about IP peers never reaches.
// Needs root + BPF + cgroup v2 (on this machine: the unified hierarchy beside cgroup v1).
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { AgentStatus } from '../../src/agent/agent.ts';
import { cgroupV2Root } from '../../src/syscalls/sensor.ts';
import { AgentProcess, agentConfig, unixGet } from '../helpers/agent-process.ts';
import { runCli } from '../helpers/agent.ts';
import { until } from '../helpers/containers.ts';
import { cgroupLinkProgramNames, cgroupProgramNames, IN_CI, privileged, tempDir } from '../helpers/privileged.ts';
import { countingServer } from '../helpers/net.ts';
import { runScript } from '../helpers/run.ts';

const bash = (t: TestContext, script: string) => runScript(t, 'bash', script);

/** A loopback TCP listener counting the connections it accepts; closed when the test ends. */
async function listener(t: TestContext): Promise<{ port: number; accepted: () => number }> {
  const { server, accepted } = await countingServer(t, { port: 0, host: '127.0.0.1' });
  return { port: (server.address() as net.AddressInfo).port, accepted };
}

/** The cgroup v2 root the deny hooks attach to; undefined (skipped, or failed in CI) where none is mounted. */
function denyRoot(t: TestContext): string | undefined {
  const root = cgroupV2Root();
  if (root) return root;
  if (IN_CI) assert.fail('no cgroup v2 hierarchy is mounted: deny rules cannot be tested');
  t.skip('no cgroup v2 hierarchy is mounted (deny rules hook it)');
  return undefined;
}

/** A loopback UDP socket counting the datagrams it receives; closed when the test ends. */
async function udpListener(t: TestContext): Promise<{ port: number; received: () => number }> {
  let n = 0;
  const s = dgram.createSocket('udp4');
  s.on('message', () => n++);
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.after(() => s.close());
  return { port: s.address().port, received: () => n };
}

/** perl (perl-base, always there) sending one UDP datagram to 127.0.0.1:port without a connect (sendto). */
const sendto = (port: number) =>
  `exec perl -MSocket -e 'socket(S, PF_INET, SOCK_DGRAM, 0) or die; print defined(send(S, "x", 0, pack_sockaddr_in(${port}, inet_aton("127.0.0.1")))) ? "sent\n" : "failed: $!\n"'`;

/** perl binding a TCP socket to 127.0.0.1:port. */
const bindTo = (port: number) =>
  `exec perl -MSocket -e 'socket(S, PF_INET, SOCK_STREAM, 0) or die; print bind(S, pack_sockaddr_in(${port}, inet_aton("127.0.0.1"))) ? "bound\n" : "failed: $!\n"'`;

/** A loopback TCP port free a moment ago (for a bind the test expects denied, so no race can take it first and matter). */
async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

test('a deny rule fails the matching connect in the kernel before it is made; off, it only reports', async (t) => {
  if (!privileged(t, 'root + BPF')) return;
  const root = denyRoot(t);
  if (!root) return;
  const dir = tempDir(t, 'vigil-kdeny-');
  const guarded = await listener(t);
  const open = await listener(t);
  const udp = await udpListener(t);
  const kept = await freePort();
  const { socket, write } = agentConfig(dir);
  // The bind rule: in the rule set from the start, and alone in it near the end.
  const keptRule = [
    '    - rule: Kept port',
    `      condition: process.comm == "perl" && event.?localPort.orValue(0) == ${kept}`,
    '      output: "no listener on {event.localPort}"',
    '      priority: critical',
    '      types: [bind]',
    '      actions: [{deny: {}}]',
  ];
  const rule = (enforce: boolean, condition: string) => [
    'rules:',
    '  defaults: false',
    `  enforce: ${enforce}`,
    '  inline:',
    '    - rule: Guarded port',
    `      condition: ${condition}`,
    '      output: "denied {process.comm} to {event.remoteAddress}:{event.remotePort}"',
    '      priority: critical',
    '      types: [connect]',
    '      actions: [{deny: {}}]',
    ...keptRule,
  ];
  const good = `process.comm in ["bash", "perl"] && event.?remotePort.orValue(0) in [${guarded.port}, ${udp.port}] && event.?remoteAddress.orValue("").inCidr(["127.0.0.0/8"])`;
  const config = (enforce: boolean, condition = good) =>
    write(
      'events:',
      '  process: { exec: true, exit: false, creds: false, comm: false }',
      '  files: false',
      '  network: { connect: true, bind: true }',
      '  other: false',
      'filters:',
      '  comm: { include: [bash, perl] }',
      ...rule(enforce, condition),
      'sinks:',
      '  store: { enabled: false }',
    );

  // Refused before anything loads: a deny rule about the connect's result, and a malformed block.
  let run = await runCli(['run', '--config', config(true, `${good} && event.ret < 0`)]);
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /deny: the kernel cannot check .*a connect is denied before it is made: it has no ret yet/);
  run = await runCli(['run', '--config', config(true, 'event.?remoteAddress.orValue("").inCidr(["127.0.0.0/33"])')]);
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /"127\.0\.0\.0\/33" is not an IP address or CIDR block/);
  assert.doesNotMatch(cgroupProgramNames(root).join(' '), /deny_/, 'nothing attached by the refused runs');

  const lines: Record<string, unknown>[] = [];
  const agent = AgentProcess.start(t, ['run', '--config', config(true)], {
    onStdoutLine: (l) => {
      if (l.includes('"type":"alert"') || l.includes('"type":"connect"') || l.includes('"type":"bind"')) lines.push(JSON.parse(l) as Record<string, unknown>);
    },
  });
  await agent.waitForStderr(/^vigil: running: /, 'the agent to run');
  const status = async () => JSON.parse((await unixGet(socket, '/v1/status')).body) as AgentStatus;
  // A shell's connects may include its name service's: with SHELL unset, as in CI, bash looks its user up
  // and glibc tries nscd's unix socket first. The connect asked about is the one to an IP port.
  const of = (type: string, pid: number) =>
    lines.find((l) => l.type === type && (l.process as { pid: number } | undefined)?.pid === pid && (type !== 'connect' || l.remotePort !== undefined));
  assert.match(cgroupProgramNames(root).join(' '), /deny_connect4/);
  assert.match(cgroupProgramNames(root).join(' '), /deny_connect6/);
  assert.match(cgroupProgramNames(root).join(' '), /deny_sendmsg4/);
  assert.match(cgroupProgramNames(root).join(' '), /deny_sendmsg6/);
  assert.match(cgroupProgramNames(root).join(' '), /deny_bind4/);

  // Denied: the connect fails with EPERM and the listener never sees it; the shell goes on.
  const denied = await bash(t, `exec 3<>/dev/tcp/127.0.0.1/${guarded.port} && echo connected || echo failed`);
  assert.equal(denied.out, 'failed\n');
  assert.match(denied.err, /Operation not permitted/);
  await until(() => of('alert', denied.pid) !== undefined, 'the alert', 10_000);
  const ev = of('connect', denied.pid)!;
  assert.deepEqual([ev.remoteAddress, ev.remotePort, ev.errno, ev.deny], ['127.0.0.1', guarded.port, 'EPERM', { rule: 'Guarded port', result: 'denied' }]);
  assert.deepEqual(of('alert', denied.pid)!.actions, [{ action: 'deny', inKernel: true, result: 'denied' }]);

  // The same peer through an IPv4-mapped IPv6 address: the block holds it, the kernel denies it.
  const mapped = await bash(t, `exec 3<>/dev/tcp/::ffff:127.0.0.1/${guarded.port} && echo connected || echo failed`);
  assert.equal(mapped.out, 'failed\n');
  await until(() => of('alert', mapped.pid) !== undefined, 'the alert of the mapped address', 10_000);
  assert.deepEqual([of('connect', mapped.pid)!.remoteAddress, of('connect', mapped.pid)!.deny], ['::ffff:127.0.0.1', { rule: 'Guarded port', result: 'denied' }]);

  // Another port: not the rule's, connected.
  const other = await bash(t, `exec 3<>/dev/tcp/127.0.0.1/${open.port} && echo connected || echo failed`);
  assert.equal(other.out, 'connected\n');
  await until(() => of('connect', other.pid) !== undefined, 'the allowed connect', 10_000);
  assert.equal(of('connect', other.pid)!.deny, undefined);
  assert.equal(of('alert', other.pid), undefined);
  await until(() => open.accepted() === 1, 'the allowed connection', 5_000);
  assert.equal(guarded.accepted(), 0, 'no denied connect reached the listener');

  // A UDP datagram to the rule's peer without a connect (sendto): denied by the datagram hook, which reports
  // it as a connect of its own (no syscall exit does).
  const datagram = await bash(t, sendto(udp.port));
  assert.equal(datagram.out, 'failed: Operation not permitted\n');
  await until(() => of('alert', datagram.pid) !== undefined, 'the alert of the datagram', 10_000);
  const dg = of('connect', datagram.pid)!;
  assert.deepEqual(
    [dg.syscall, dg.remoteAddress, dg.remotePort, dg.protocol, dg.sockType, dg.fd, dg.errno, dg.deny],
    ['sendmsg', '127.0.0.1', udp.port, 'udp', 'SOCK_DGRAM', -1, 'EPERM', { rule: 'Guarded port', result: 'denied' }],
  );
  assert.deepEqual(of('alert', datagram.pid)!.actions, [{ action: 'deny', inKernel: true, result: 'denied' }]);
  assert.equal(udp.received(), 0, 'the denied datagram was not sent');

  // A bind to the port the second rule keeps free: refused before the port is taken.
  const bound = await bash(t, bindTo(kept));
  assert.equal(bound.out, 'failed: Operation not permitted\n');
  await until(() => of('alert', bound.pid) !== undefined, 'the alert of the bind', 10_000);
  const b = of('bind', bound.pid)!;
  assert.deepEqual([b.localAddress, b.localPort, b.errno, b.deny], ['127.0.0.1', kept, 'EPERM', { rule: 'Kept port', result: 'denied' }]);
  assert.deepEqual(of('alert', bound.pid)!.actions, [{ action: 'deny', inKernel: true, result: 'denied' }]);
  // The same program binding another port: not the rule's.
  assert.equal((await bash(t, bindTo(0))).out, 'bound\n');

  const st = await status();
  assert.deepEqual(st.syscalls?.killRules, { rules: 2, values: 8, scoped: 0, cgroups: 0, denies: 2 });
  assert.deepEqual([st.syscalls?.filters?.denyMatched, st.syscalls?.filters?.denied], [4, 4], 'counted in the kernel');
  const text = await runCli(['status', '--socket', socket]);
  assert.match(text.stdout, /^ {2}in-kernel deny rules: 2; connects, datagrams and binds matched 4, denied 4$/m);
  const listed = await runCli(['rules', '--socket', socket]);
  assert.match(listed.stdout, /^ {2}Guarded port: actions deny in the kernel \(enforced\): denied 3$/m);
  const metrics = (await unixGet(socket, '/metrics')).body;
  assert.match(metrics, /^vigil_rule_actions_total\{rule="Guarded port",action="deny",result="denied"\} 3$/m);
  assert.doesNotMatch(metrics, /rule="Guarded port",action="kill"/);

  // Enforcement off (a reload): the connect goes through, reported as a dry run.
  config(false);
  process.kill(agent.pid, 'SIGHUP');
  await until(async () => (await status()).rules!.enforce === false, 'the reload to turn enforcement off', 10_000);
  const spared = await bash(t, `exec 3<>/dev/tcp/127.0.0.1/${guarded.port} && echo connected || echo failed`);
  assert.equal(spared.out, 'connected\n');
  await until(() => of('alert', spared.pid) !== undefined, 'the dry-run alert', 10_000);
  assert.deepEqual(of('connect', spared.pid)!.deny, { rule: 'Guarded port', result: 'dry-run' });
  assert.deepEqual(of('alert', spared.pid)!.actions, [{ action: 'deny', inKernel: true, result: 'dry-run' }]);
  await until(() => guarded.accepted() === 1, 'the dry-run connection', 5_000);
  const sent = await bash(t, sendto(udp.port));
  assert.equal(sent.out, 'sent\n');
  await until(() => of('alert', sent.pid) !== undefined, 'the dry-run alert of the datagram', 10_000);
  assert.deepEqual([of('connect', sent.pid)!.errno, of('connect', sent.pid)!.deny], [undefined, { rule: 'Guarded port', result: 'dry-run' }]);
  await until(() => udp.received() === 1, 'the dry-run datagram', 5_000);

  // Only the bind rule left (a reload): the connect and datagram hooks detach, the bind hooks stay.
  write(
    'events:',
    '  network: { connect: true, bind: true }',
    '  files: false',
    '  other: false',
    'rules:',
    '  defaults: false',
    '  inline:',
    ...keptRule,
    'sinks:',
    '  store: { enabled: false }',
  );
  process.kill(agent.pid, 'SIGHUP');
  await until(async () => (await status()).syscalls?.killRules.rules === 1, 'the reload to keep the bind rule alone', 10_000);
  assert.doesNotMatch(cgroupProgramNames(root).join(' '), /deny_(connect|sendmsg)/, 'a bind rule alone costs connects and datagrams nothing');
  assert.match(cgroupProgramNames(root).join(' '), /deny_bind4/);

  // No deny rule left (a reload): the hooks detach.
  write('events:', '  network: { connect: true }', '  files: false', '  other: false', 'rules:', '  defaults: false', 'sinks:', '  store: { enabled: false }');
  process.kill(agent.pid, 'SIGHUP');
  await until(async () => (await status()).syscalls?.killRules.denies === 0, 'the reload to drop the deny rule', 10_000);
  assert.doesNotMatch(cgroupProgramNames(root).join(' '), /deny_/, 'detached with the last deny rule');
  assert.equal((await agent.stop()).code, 0);
  assert.doesNotMatch(cgroupProgramNames(root).join(' '), /deny_/, 'nothing attached once the agent stopped');
});

/** perl connecting a unix stream socket to `address` (a path, or "\0" and an abstract name, NULs and all). */
const unixConnect = (address: string) =>
  `exec perl -MSocket -e 'socket(S, PF_UNIX, SOCK_STREAM, 0) or die; print connect(S, pack_sockaddr_un("${address.replaceAll('\0', '\\0')}")) ? "connected\n" : "failed: $!\n"'`;

/** perl sending a unix datagram to `address` without a connect (sendto). */
const unixSendto = (address: string) =>
  `exec perl -MSocket -e 'socket(S, PF_UNIX, SOCK_DGRAM, 0) or die; print defined(send(S, "x", 0, pack_sockaddr_un("${address}"))) ? "sent\n" : "failed: $!\n"'`;

test('a deny rule about a unix socket path fails connects to it in the kernel, and datagrams sent to it; rules about IP peers never reach unix sockets', async (t) => {
  if (!privileged(t, 'root + BPF')) return;
  const root = denyRoot(t);
  if (!root) return;
  const dir = tempDir(t, 'vigil-udeny-');
  const api = path.join(dir, 'api.sock');
  const abstract = `vigil-deny-${process.pid}`;
  const guarded = await countingServer(t, api);
  const guardedAbstract = await countingServer(t, `\0${abstract}`);
  // Another abstract name, which the rule's starts but does not equal: the name is all its bytes, NULs too.
  const longerAbstract = await countingServer(t, `\0${abstract}\0x`);
  const other = await countingServer(t, path.join(dir, 'other.sock'));
  const datagrams = path.join(dir, 'dgram.sock');
  const { socket, write } = agentConfig(dir);
  const unixRule = [
    '    - rule: Runtime socket',
    `      condition: process.comm == "perl" && event.?remoteAddress.orValue("") in ["${api}", "@${abstract}", "${datagrams}"]`,
    '      output: "denied {process.comm} to {event.remoteAddress}"',
    '      priority: critical',
    '      types: [connect]',
    '      actions: [{deny: {}}]',
  ];
  const config = (withUnix: boolean) => write(
    'events:',
    '  process: { exec: true, exit: false, creds: false, comm: false }',
    '  files: false',
    '  network: { connect: true }',
    '  other: false',
    'filters:',
    '  comm: { include: [perl] }',
    'rules:',
    '  defaults: false',
    '  enforce: true',
    '  inline:',
    ...(withUnix ? unixRule : []),
    // About IP peers: its `!=` would hold for a unix socket's missing port, were the unix hook to check it.
    '    - rule: Anything but ssh',
    '      condition: process.comm == "perl" && event.?remotePort.orValue(0) != 22',
    '      output: "denied {process.comm} to {event.remotePort}"',
    '      priority: critical',
    '      types: [connect]',
    '      actions: [{deny: {}}]',
    'sinks:',
    '  store: { enabled: false }',
  );
  const lines: Record<string, unknown>[] = [];
  const agent = AgentProcess.start(t, ['run', '--config', config(true)], {
    onStdoutLine: (l) => {
      if (l.includes('"type":"alert"') || l.includes('"type":"connect"')) lines.push(JSON.parse(l) as Record<string, unknown>);
    },
  });
  await agent.waitForStderr(/^vigil: running: /, 'the agent to run');
  const of = (type: string, pid: number) => lines.find((l) => l.type === type && (l.process as { pid: number } | undefined)?.pid === pid);
  assert.ok(['deny_connect_unix', 'deny_sendmsg_unix'].every((n) => cgroupLinkProgramNames().includes(n)), 'the unix connect and datagram hooks are attached');

  // The path, and the abstract name: denied (EPERM), the listener never sees them.
  for (const [address, shown] of [[api, api], [`\0${abstract}`, `@${abstract}`]] as const) {
    const denied = await runScript(t, 'bash', unixConnect(address));
    assert.equal(denied.out, 'failed: Operation not permitted\n', `${shown}: ${JSON.stringify(denied)}`);
    await until(() => of('alert', denied.pid) !== undefined, `the alert of ${shown}`, 10_000);
    const ev = of('connect', denied.pid)!;
    assert.deepEqual([ev.family, ev.remoteAddress, ev.errno, ev.deny], ['AF_UNIX', shown, 'EPERM', { rule: 'Runtime socket', result: 'denied' }], shown);
    assert.deepEqual(of('alert', denied.pid)!.actions, [{ action: 'deny', inKernel: true, result: 'denied' }]);
  }
  assert.deepEqual([guarded.accepted(), guardedAbstract.accepted()], [0, 0], 'no denied connect reached its listener');
  // Not the rule's name, though equal up to its NUL (the kernel once compared abstract names as C strings).
  const longer = await runScript(t, 'bash', unixConnect(`\0${abstract}\0x`));
  assert.equal(longer.out, 'connected\n', JSON.stringify(longer));
  await until(() => of('connect', longer.pid) !== undefined, 'the connect to the longer abstract name', 10_000);
  assert.deepEqual([of('connect', longer.pid)!.remoteAddress, of('connect', longer.pid)!.deny], [`@${abstract}\0x`, undefined]);
  await until(() => longerAbstract.accepted() === 1, 'the connection to the longer abstract name', 5_000);

  // A datagram sent to the path without a connect: denied by the same rule (EPERM), and reported as a connect
  // of its own (syscall sendmsg, no fd). One sent to another path passes the hook (no socket there: ENOENT).
  const sent = await runScript(t, 'bash', unixSendto(datagrams));
  assert.equal(sent.out, 'failed: Operation not permitted\n', JSON.stringify(sent));
  await until(() => of('alert', sent.pid) !== undefined, 'the alert of the datagram', 10_000);
  const dev = of('connect', sent.pid)!;
  assert.deepEqual([dev.syscall, dev.fd, dev.family, dev.sockType, dev.remoteAddress, dev.errno, dev.deny], ['sendmsg', -1, 'AF_UNIX', 'SOCK_DGRAM', datagrams, 'EPERM', { rule: 'Runtime socket', result: 'denied' }]);
  assert.equal((await runScript(t, 'bash', unixSendto(path.join(dir, 'nobody.sock')))).out, 'failed: No such file or directory\n');

  // Another socket: connected. The rule about IP ports did not reach it in the kernel, and the rule engine, where
  // its `!=` holds on a connect without a port, does not match it either: a deny rule is about the families its
  // hooks check, and raises no alert about a call it could not deny.
  const allowed = await runScript(t, 'bash', unixConnect(path.join(dir, 'other.sock')));
  assert.equal(allowed.out, 'connected\n', JSON.stringify(allowed));
  await until(() => of('connect', allowed.pid) !== undefined, 'the allowed connect', 10_000);
  assert.equal(of('connect', allowed.pid)!.deny, undefined);
  await until(() => other.accepted() === 1, 'the allowed connection', 5_000);
  // The engine checks an event as it passes on to the sinks: its alert would have followed it by now.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(of('alert', allowed.pid), undefined, 'no alert of a deny rule about IP peers on a unix connect');

  // Without the rule about the path (a reload): the unix hook detaches, and the socket is reached.
  config(false);
  process.kill(agent.pid, 'SIGHUP');
  await until(async () => (JSON.parse((await unixGet(socket, '/v1/status')).body) as AgentStatus).syscalls?.killRules.rules === 1, 'the reload to drop the rule', 10_000);
  assert.ok(!/deny_(connect|sendmsg)_unix/.test(cgroupLinkProgramNames().join(' ')), 'detached with the last rule about a unix socket');
  const reached = await runScript(t, 'bash', unixConnect(api));
  assert.equal(reached.out, 'connected\n', JSON.stringify(reached));

  assert.equal((await agent.stop()).code, 0);
  assert.doesNotMatch([...cgroupProgramNames(root), ...cgroupLinkProgramNames()].join(' '), /deny_/, 'nothing attached once the agent stopped');
});
