// Privileged: the manager's non-tracing hook kinds on real kernel objects (a cgroup, UDP sockets, a clsact qdisc
// and XDP on lo, perf events, a task iterator, uprobes on a binary built here), BPF_PROG_TEST_RUN, per-probe
// stats, and the hook kinds a kernel may lack (kprobe, fentry, fexit, LSM), which vigil must report as a
// NotSupportedError. Every kernel or system object a test creates is removed when it ends, even on failure.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { test, type TestContext } from 'node:test';
import koffi from 'koffi';
import { BPF_F_TEST_RUN_ON_CPU, Perf } from '../../src/bpf/constants.ts';
import { NotSupportedError } from '../../src/bpf/errors.ts';
import { BpfLink, MultiAttachment } from '../../src/bpf/link.ts';
import { readMounts } from '../../src/bpf/mounts.ts';
import { onlineCpus, readIterator } from '../../src/bpf/program.ts';
import { SelectorError, type Manager } from '../../src/manager/manager.ts';
import { Collector, P, testManager, triggerGetppid } from '../helpers/manager.ts';
import { assertGone, IN_CI, linksOfPrograms, privileged, skipForKernel, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF (ring buffer: 5.8)';
const NEEDS_NET = 'root + BPF with BTF + CAP_NET_ADMIN + iproute2 (ip, tc)';
const NEEDS_CGROUP = 'root + BPF with BTF + a cgroup v2 mount';
const NEEDS_GCC = 'root + BPF with BTF + uprobes + gcc';

/** Probe ids of test/bpf/manager_test.bpf.c that test/helpers/manager.ts does not list. */
const P_FEXIT = 11;

// ---- helpers ----------------------------------------------------------------------------------------------

/**
 * Cleanups that run last-registered first, each even when an earlier one throws (t.after itself runs hooks in
 * registration order, and a resource must go before what it depends on: a child before its cgroup).
 */
function cleanups(t: TestContext): (fn: () => unknown) => void {
  const stack: (() => unknown)[] = [];
  t.after(async () => {
    const errors: unknown[] = [];
    while (stack.length) {
      try {
        await stack.pop()!();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) throw new AggregateError(errors, `${errors.length} cleanup(s) failed`);
  });
  return (fn) => void stack.push(fn);
}

/** Gate on command-line tools: true when all exist; otherwise skips, or fails in CI. */
function haveTools(t: TestContext, needs: string, ...tools: string[]): boolean {
  const onPath = (tool: string) =>
    (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((dir) => {
      try {
        fs.accessSync(path.join(dir, tool), fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  const missing = tools.filter((tool) => !onPath(tool));
  if (!missing.length) return true;
  if (IN_CI) assert.fail(`test needs ${needs}, but ${missing.join(', ')} is missing (make debs-test installs it)`);
  t.skip(`needs ${needs}: ${missing.join(', ')} is missing`);
  return false;
}

const sh = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until `pred` holds, letting the event loop run. A failure names what was awaited. */
async function waitFor(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const global = (m: Manager, name: string): bigint => m.object.readGlobalNumber(name) as bigint;

/** Value of the `counts` map (triggers per probe id) for one probe id. */
function countOf(m: Manager, probe: number): bigint {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(probe);
  return m.getMap('counts').lookup(key)?.readBigUInt64LE(0) ?? 0n;
}

/** A UDP socket on 127.0.0.1 in this process that counts what it receives; closed at cleanup. */
async function udpReceiver(defer: (fn: () => unknown) => void): Promise<{ sock: dgram.Socket; port: number; fd: number; received: () => number }> {
  const sock = dgram.createSocket('udp4');
  let n = 0;
  let open = true;
  sock.on('message', () => n++);
  sock.on('close', () => (open = false));
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  defer(() => open && sock.close()); // the test may have closed it already
  // Node has no public accessor for a socket's fd; the handle's is the one the kernel knows.
  const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
  assert.ok(fd > 2, `no fd for the UDP socket (${fd})`);
  return { sock, port: sock.address().port, fd, received: () => n };
}

/** Sends `n` datagrams from this process to 127.0.0.1:port, one after another. */
async function sendUdp(port: number, n: number): Promise<void> {
  const s = dgram.createSocket('udp4');
  try {
    for (let i = 0; i < n; i++) {
      await new Promise<void>((resolve, reject) => s.send(`vigil ${i}`, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    s.close();
  }
}

/** Spawns a child and registers its cleanup: SIGKILL to the pid we started (if still running), then reap. */
async function spawnChild(defer: (fn: () => unknown) => void, file: string, args: string[], stdio: StdioOptions): Promise<ChildProcess & { pid: number }> {
  const child = spawn(file, args, { stdio });
  await once(child, 'spawn');
  defer(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  });
  return child as ChildProcess & { pid: number };
}

/** Resolves with the exit code once the child has exited (immediately if it already has). */
async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

function cgroup2Root(): string | undefined {
  const roots = readMounts().filter((m) => m.fstype === 'cgroup2').map((m) => m.target);
  return roots.find((r) => r === '/sys/fs/cgroup/unified') ?? roots.find((r) => r === '/sys/fs/cgroup') ?? roots[0];
}

/** rmdir of a cgroup: EBUSY until the kernel has finished moving its last (exited) task out; bounded retry. */
async function removeCgroup(dir: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || i >= 250) throw err;
      await sleep(20);
    }
  }
}

const hasClsact = (dev: string) => /qdisc clsact/.test(sh('tc', 'qdisc', 'show', 'dev', dev));
const tcFilters = (dev: string, dir: 'ingress' | 'egress') => sh('tc', 'filter', 'show', 'dev', dev, dir);
const xdpState = (dev: string) => sh('ip', '-d', 'link', 'show', 'dev', dev);
const hasXdp = (dev: string) => /prog\/xdp|xdpgeneric|xdpdrv|xdpoffload/.test(xdpState(dev));

/** Removes the clsact qdisc on lo at cleanup if this test created it (i.e. it was not there before). */
function restoreClsact(defer: (fn: () => unknown) => void): boolean {
  const had = hasClsact('lo');
  defer(() => {
    if (!had && hasClsact('lo')) sh('tc', 'qdisc', 'del', 'dev', 'lo', 'clsact');
  });
  return had;
}

/** Removes any XDP program left on lo at cleanup (lo must have none at the start of the test). */
function restoreXdp(defer: (fn: () => unknown) => void): void {
  assert.ok(!hasXdp('lo'), `lo already carries an XDP program; refusing to replace it:\n${xdpState('lo')}`);
  defer(() => {
    if (!hasXdp('lo')) return;
    for (const mode of ['xdpgeneric', 'xdp']) {
      try {
        sh('ip', 'link', 'set', 'dev', 'lo', mode, 'off');
      } catch {
        // the other mode held it
      }
    }
  });
}

/** File offset of function `name` in an ELF64 LE file: its st_value mapped through the PT_LOAD that holds it. */
function symbolFileOffset(file: string, name: string): number {
  const b = fs.readFileSync(file);
  assert.equal(b.readUInt32BE(0), 0x7f454c46, `${file} is not an ELF file`);
  assert.ok(b[4] === 2 && b[5] === 1, `${file}: only ELF64 little-endian is handled here`);
  const phoff = Number(b.readBigUInt64LE(0x20));
  const shoff = Number(b.readBigUInt64LE(0x28));
  const [phentsize, phnum, shentsize, shnum] = [b.readUInt16LE(0x36), b.readUInt16LE(0x38), b.readUInt16LE(0x3a), b.readUInt16LE(0x3c)];
  const section = (i: number) => {
    const o = shoff + i * shentsize;
    return { type: b.readUInt32LE(o + 4), offset: Number(b.readBigUInt64LE(o + 0x18)), size: Number(b.readBigUInt64LE(o + 0x20)), link: b.readUInt32LE(o + 0x28) };
  };
  let vaddr: number | undefined;
  for (let i = 0; i < shnum && vaddr === undefined; i++) {
    const s = section(i);
    if (s.type !== 2 /* SHT_SYMTAB */ && s.type !== 11 /* SHT_DYNSYM */) continue;
    const strtab = section(s.link).offset;
    for (let o = s.offset; o < s.offset + s.size; o += 24 /* sizeof(Elf64_Sym) */) {
      const nameStart = strtab + b.readUInt32LE(o);
      const sym = b.toString('latin1', nameStart, b.indexOf(0, nameStart));
      if (sym === name && (b[o + 4]! & 0xf) === 2 /* STT_FUNC */) {
        vaddr = Number(b.readBigUInt64LE(o + 8));
        break;
      }
    }
  }
  assert.ok(vaddr, `${name} is not in the symbol tables of ${file}`);
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (b.readUInt32LE(o) !== 1 /* PT_LOAD */) continue;
    const [offset, segVaddr, filesz] = [Number(b.readBigUInt64LE(o + 8)), Number(b.readBigUInt64LE(o + 0x10)), Number(b.readBigUInt64LE(o + 0x20))];
    if (vaddr >= segVaddr && vaddr < segVaddr + filesz) return vaddr - segVaddr + offset;
  }
  assert.fail(`${name} (0x${vaddr.toString(16)}) lies in no PT_LOAD segment of ${file}`);
}

// A program that calls a non-inlined, exported vigil_test_add(a, b) once per "a b" line on stdin and prints
// the sum: a uprobe target whose arguments and return value the test chooses.
const ADD_C = `#include <stdio.h>

__attribute__((noipa, visibility("default"))) int vigil_test_add(int a, int b)
{
	return a + b;
}

int main(void)
{
	int a, b;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (scanf("%d %d", &a, &b) == 2)
		printf("%d\\n", vigil_test_add(a, b));
	return 0;
}
`;

/** Compiles the adder into `dir`: a PIE build and a non-PIE one (whose symbol address differs from its file offset). */
function buildAdder(dir: string): { pie: string; noPie: string } {
  const src = path.join(dir, 'add.c');
  fs.writeFileSync(src, ADD_C);
  const pie = path.join(dir, 'add');
  const noPie = path.join(dir, 'add-nopie');
  execFileSync('gcc', ['-O2', '-Wall', '-o', pie, src]);
  execFileSync('gcc', ['-O2', '-Wall', '-no-pie', '-o', noPie, src]);
  return { pie, noPie };
}

/** A running adder: add(a, b) writes one line and resolves with the sum the child printed. */
class Adder {
  readonly child: ChildProcess & { pid: number };
  readonly #lines: AsyncIterator<string>;
  constructor(child: ChildProcess & { pid: number }) {
    this.child = child;
    this.#lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  }
  get pid(): number {
    return this.child.pid;
  }
  static async start(defer: (fn: () => unknown) => void, binary: string): Promise<Adder> {
    return new Adder(await spawnChild(defer, binary, [], ['pipe', 'pipe', 'inherit']));
  }
  async add(a: number, b: number): Promise<number> {
    this.child.stdin!.write(`${a} ${b}\n`);
    const r = await this.#lines.next();
    assert.ok(!r.done, `adder ${this.pid} exited`);
    return Number(r.value);
  }
}

const libc = koffi.load('libc.so.6');
const usleep = libc.func('int usleep(uint32 usec)');

// ---- cgroup ---------------------------------------------------------------------------------------------

test('cgroup_skb egress counts the packets of a process moved into the cgroup, and only those', async (t) => {
  if (!privileged(t, NEEDS_CGROUP)) return;
  const root = cgroup2Root();
  if (!root) {
    if (IN_CI) assert.fail(`test needs ${NEEDS_CGROUP}, but no cgroup2 filesystem is mounted`);
    return void t.skip(`needs ${NEEDS_CGROUP}: no cgroup2 filesystem is mounted`);
  }
  const defer = cleanups(t);
  const cg = fs.mkdtempSync(path.join(root, 'vigil-test-'));
  defer(() => removeCgroup(cg)); // runs last: after the child is gone
  const rx = await udpReceiver(defer);
  const { m, options } = testManager(t, [{ fn: 'cgroup_egress', cgroupPath: cg }]);
  defer(() => m.stop());
  m.init(options);
  m.start();
  assert.deepEqual([m.getProbe('cgroup_egress').hook?.kind, m.getProbe('cgroup_egress').state], ['cgroup', 'running']);

  // This process is not in the cgroup: its packets are not counted.
  await sendUdp(rx.port, 5);
  await waitFor(() => rx.received() >= 5, '5 datagrams from the test process');
  assert.equal(global(m, 'cgroup_packets'), 0n);

  // A child that sends N datagrams once told to. It creates its socket only then, after the move: a socket
  // belongs to the cgroup of the task that created it.
  const N = 10;
  const script = `process.stdin.once('data', () => {
  const s = require('node:dgram').createSocket('udp4');
  let i = 0;
  const next = () => (i++ < ${N} ? s.send('x', ${rx.port}, '127.0.0.1', next) : s.close());
  next();
});`;
  const child = await spawnChild(defer, process.execPath, ['-e', script], ['pipe', 'inherit', 'inherit']);
  fs.writeFileSync(path.join(cg, 'cgroup.procs'), String(child.pid));
  assert.deepEqual(fs.readFileSync(path.join(cg, 'cgroup.procs'), 'utf8').trim().split('\n'), [String(child.pid)]);
  child.stdin!.end('go\n');
  assert.equal(await exitOf(child), 0, 'the child sent its datagrams and exited');
  await waitFor(() => rx.received() >= 5 + N, `${N} datagrams from the child`);
  assert.equal(global(m, 'cgroup_packets'), BigInt(N));
});

// ---- socket filter --------------------------------------------------------------------------------------

test('socket filter on a UDP socket counts each datagram it receives; pause detaches it', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const defer = cleanups(t);
  const rx = await udpReceiver(defer);
  const { m, options } = testManager(t, [{ fn: 'sock_filter', socketFd: rx.fd }]);
  defer(() => m.stop()); // before the socket closes: the detach must not hit a reused fd number
  m.init(options);
  m.start();
  assert.equal(m.getProbe('sock_filter').hook?.kind, 'socket');

  await sendUdp(rx.port, 7);
  await waitFor(() => rx.received() >= 7, '7 datagrams');
  assert.equal(rx.received(), 7, 'the filter keeps whole packets (returns skb->len)');
  assert.equal(global(m, 'sock_packets'), 7n);

  m.pause();
  await sendUdp(rx.port, 3);
  await waitFor(() => rx.received() >= 10, '3 more datagrams');
  assert.equal(global(m, 'sock_packets'), 7n, 'SO_DETACH_BPF removed the filter');

  m.resume();
  await sendUdp(rx.port, 2);
  await waitFor(() => rx.received() >= 12, '2 more datagrams');
  assert.equal(global(m, 'sock_packets'), 9n);
});

test('stopping a socket filter whose socket was closed leaves the socket that reused its fd number alone', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const defer = cleanups(t);
  const first = await udpReceiver(defer);
  const { m: m1, options: o1 } = testManager(t, [{ fn: 'sock_filter', socketFd: first.fd }]);
  defer(() => m1.stop());
  m1.init(o1);
  m1.start();
  // The owner closes its socket while the probe is still "attached", then the fd number is handed out again.
  await new Promise<void>((resolve) => first.sock.close(resolve));
  let second = await udpReceiver(defer);
  for (let i = 0; second.fd !== first.fd && i < 64; i++) second = await udpReceiver(defer); // lowest free fd first
  assert.equal(second.fd, first.fd, 'precondition: the fd number was reused');
  const { m: m2, options: o2 } = testManager(t, [{ fn: 'sock_filter', socketFd: second.fd }]);
  defer(() => m2.stop());
  m2.init(o2);
  m2.start();

  m1.stop(); // must not SO_DETACH_BPF the filter m2 put on the new socket
  await sendUdp(second.port, 3);
  await waitFor(() => second.received() >= 3, '3 datagrams');
  assert.equal(global(m2, 'sock_packets'), 3n, "the other manager's filter is still on its socket");
});

// ---- TC -------------------------------------------------------------------------------------------------

test('tc classifier on lo ingress counts loopback traffic; stop removes its filter and the clsact qdisc it created', async (t) => {
  if (!privileged(t, NEEDS_NET) || !haveTools(t, NEEDS_NET, 'tc')) return;
  const defer = cleanups(t);
  const hadClsact = restoreClsact(defer);
  const rx = await udpReceiver(defer);
  const { m, options } = testManager(t, [{ fn: 'tc_count', ifname: 'lo', tcDirection: 'ingress' }]);
  defer(() => m.stop());
  m.init(options);
  m.start();
  const progId = m.getProbe('tc_count').program!.id;
  assert.ok(hasClsact('lo'));
  assert.match(tcFilters('lo', 'ingress'), new RegExp(`tc_count.* id ${progId} `));

  const before = global(m, 'tc_packets');
  await sendUdp(rx.port, 10);
  await waitFor(() => rx.received() >= 10, '10 datagrams');
  assert.ok(global(m, 'tc_packets') - before >= 10n, `tc_packets grew by ${global(m, 'tc_packets') - before}, want >= 10`);

  m.stop();
  assert.doesNotMatch(tcFilters('lo', 'ingress'), new RegExp(`id ${progId} `));
  assert.equal(hasClsact('lo'), hadClsact, hadClsact ? 'a clsact qdisc we did not create stays' : 'the clsact qdisc we created is gone');
});

test('tc on lo ingress and egress share one clsact qdisc: detaching one leaves the other counting', async (t) => {
  if (!privileged(t, NEEDS_NET) || !haveTools(t, NEEDS_NET, 'tc')) return;
  const defer = cleanups(t);
  const hadClsact = restoreClsact(defer);
  const rx = await udpReceiver(defer);
  const { m, options } = testManager(t, [
    { fn: 'tc_count', ifname: 'lo', tcDirection: 'ingress' },
    { fn: 'tc_count', uid: 'egress', ifname: 'lo', tcDirection: 'egress', tcPriority: 7, tcHandle: 3 },
  ]);
  defer(() => m.stop());
  m.init(options);
  m.start();
  const progId = m.getProbe('tc_count').program!.id;
  assert.match(tcFilters('lo', 'ingress'), new RegExp(`id ${progId} `));
  assert.match(tcFilters('lo', 'egress'), new RegExp(`pref 7 .*handle 0x3 tc_count.* id ${progId} `), 'priority and handle from the spec');

  // Each datagram on lo leaves through egress and comes back through ingress.
  let before = global(m, 'tc_packets');
  await sendUdp(rx.port, 10);
  await waitFor(() => rx.received() >= 10, '10 datagrams');
  assert.ok(global(m, 'tc_packets') - before >= 20n, `tc_packets grew by ${global(m, 'tc_packets') - before}, want >= 20`);

  // Detaching the filter that created the qdisc must not take the egress filter down with it.
  m.detachHook({ fn: 'tc_count', uid: '' });
  assert.doesNotMatch(tcFilters('lo', 'ingress'), new RegExp(`id ${progId} `));
  assert.match(tcFilters('lo', 'egress'), new RegExp(`id ${progId} `), 'the egress filter is still there');
  before = global(m, 'tc_packets');
  await sendUdp(rx.port, 10);
  await waitFor(() => rx.received() >= 20, '10 more datagrams');
  assert.ok(global(m, 'tc_packets') - before >= 10n, `egress alone counted ${global(m, 'tc_packets') - before}, want >= 10`);

  m.stop();
  assert.doesNotMatch(tcFilters('lo', 'egress'), new RegExp(`id ${progId} `));
  assert.equal(hasClsact('lo'), hadClsact, 'the last detach removes the clsact qdisc we created');
});

// ---- XDP ------------------------------------------------------------------------------------------------

for (const mode of [undefined, 'skb'] as const) {
  test(`xdp on lo in ${mode ? `explicit ${mode}` : 'link'} mode counts received packets; stop leaves nothing attached`, async (t) => {
    if (!privileged(t, NEEDS_NET) || !haveTools(t, NEEDS_NET, 'ip')) return;
    const defer = cleanups(t);
    restoreXdp(defer);
    const rx = await udpReceiver(defer);
    const { m, options } = testManager(t, [{ fn: 'xdp_count', ifname: 'lo', xdpMode: mode }]);
    defer(() => m.stop());
    m.init(options);
    m.start();
    const probe = m.getProbe('xdp_count');
    const progId = probe.program!.id;
    const state = xdpState('lo');
    assert.match(state, new RegExp(`prog/xdp id ${progId} `));
    assert.match(state, /xdpgeneric/, 'lo has no native XDP: generic (skb) mode either way');
    if (mode) {
      assert.equal(probe.attachment?.linkFd, undefined, 'explicit modes attach through netlink, not a BPF link');
    } else {
      assert.ok(probe.attachment instanceof BpfLink && probe.attachment.linkFd !== undefined);
      assert.equal(linksOfPrograms([progId]).length, 1, 'one XDP BPF link');
    }

    const before = global(m, 'xdp_packets');
    await sendUdp(rx.port, 10);
    await waitFor(() => rx.received() >= 10, '10 datagrams');
    assert.ok(global(m, 'xdp_packets') - before >= 10n, `xdp_packets grew by ${global(m, 'xdp_packets') - before}, want >= 10`);

    m.stop();
    assert.ok(!hasXdp('lo'), `XDP still attached after stop:\n${xdpState('lo')}`);
  });
}

// ---- perf_event -----------------------------------------------------------------------------------------

test('perf_event program on a software cpu-clock event fires on every online CPU it is opened on', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const { m, options } = testManager(t, [
    { fn: 'perf_event_prog', perfEvent: { type: Perf.TYPE_SOFTWARE, config: Perf.COUNT_SW_CPU_CLOCK, sampleFrequency: 10_000 } },
  ]);
  m.init(options);
  m.start();
  const probe = m.getProbe('perf_event_prog');
  assert.ok(probe.attachment instanceof MultiAttachment);
  assert.equal(probe.attachment.parts.length, onlineCpus().length, 'one perf event per online CPU');
  const links = linksOfPrograms([probe.program!.id]);
  assert.equal(links.length, onlineCpus().length);

  // Keep this CPU busy until the sampling event has fired (bounded; the count itself is what is asserted).
  const end = Date.now() + 5000;
  while (global(m, 'perf_event_hits') === 0n && Date.now() < end) {
    const spin = Date.now() + 5;
    while (Date.now() < spin);
  }
  assert.ok(global(m, 'perf_event_hits') > 0n, 'perf_event_hits is still 0');

  m.stop();
  await assertGone({ links }); // the per-CPU perf event links are gone after stop
});

// ---- iterator -------------------------------------------------------------------------------------------

test('task iterator lists this process and a child by pid and comm', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const defer = cleanups(t);
  const child = await spawnChild(defer, 'sleep', ['600'], 'ignore');
  const { m, options } = testManager(t, [{ fn: 'iter_tasks' }]);
  defer(() => m.stop());
  m.init(options);
  m.start();
  const probe = m.getProbe('iter_tasks');
  assert.equal(probe.hook?.kind, 'iter');
  assert.ok(probe.attachment instanceof BpfLink);
  const link = probe.attachment;
  const lines = readIterator(link).toString('utf8').split('\n');
  // The kernel's comm of this process's main thread: Node 24 names it "MainThread", older Nodes "node".
  const comm = fs.readFileSync(`/proc/${process.pid}/comm`, 'utf8').trim();
  assert.ok(lines.includes(`${process.pid} ${comm}`), `no line "${process.pid} ${comm}"`);
  assert.ok(lines.includes(`${child.pid} sleep`), `no line "${child.pid} sleep"`);
  assert.ok(lines.every((l) => l === '' || /^\d+ \S/.test(l)), 'every line is "<pid> <comm>"');
  // Each read is a fresh pass.
  assert.ok(readIterator(link).toString('utf8').split('\n').includes(`${child.pid} sleep`));
  m.stop();
  assert.throws(() => readIterator(link), { code: 'ESTATE' });
});

// ---- uprobe / uretprobe -----------------------------------------------------------------------------------

test('uprobe and uretprobe by symbol see the arguments and return value of a function in a binary built here', async (t) => {
  if (!privileged(t, NEEDS_GCC) || !haveTools(t, NEEDS_GCC, 'gcc')) return;
  const defer = cleanups(t);
  const { pie } = buildAdder(tempDir(t));
  const adder = await Adder.start(defer, pie);
  const c = new Collector();
  const { m, options } = testManager(
    t,
    [
      { fn: 'uprobe_add', binaryPath: pie, symbol: 'vigil_test_add' },
      { fn: 'uretprobe_add', binaryPath: pie, symbol: 'vigil_test_add' },
    ],
    { collector: c, options: { constantEditors: [{ name: 'target_tgid', value: adder.pid }] } },
  );
  defer(() => m.stop());
  m.init(options);
  m.start();
  assert.deepEqual(m.probes().map((p) => [p.hook?.kind, p.state]), [['uprobe', 'running'], ['uretprobe', 'running']]);

  const calls: [number, number][] = [[3, 4], [12, 30], [-5, 900]];
  for (const [a, b] of calls) {
    assert.equal(await adder.add(a, b), a + b);
    // The probes ran synchronously in the child before it printed: the globals already hold this call.
    assert.equal(global(m, 'uprobe_last_arg'), BigInt.asUintN(64, BigInt(a) * 1000n + BigInt(b)), `uprobe arg for ${a},${b}`);
    assert.equal(global(m, 'uretprobe_last_ret'), BigInt(a + b), `uretprobe ret for ${a},${b}`);
  }
  await c.until(() => c.byProbe(P.UPROBE).length >= calls.length && c.byProbe(P.URETPROBE).length >= calls.length, 'uprobe events');
  assert.equal(c.byProbe(P.UPROBE).length, calls.length);
  assert.equal(c.byProbe(P.URETPROBE).length, calls.length);
  assert.ok(c.events.every((e) => e.pid === adder.pid), 'every event comes from the adder');
  assert.equal(countOf(m, P.UPROBE), BigInt(calls.length));
  assert.equal(countOf(m, P.URETPROBE), BigInt(calls.length));
});

test('uprobe and uretprobe by file offset, attached for one pid only, run for that process alone', async (t) => {
  if (!privileged(t, NEEDS_GCC) || !haveTools(t, NEEDS_GCC, 'gcc')) return;
  const defer = cleanups(t);
  const { noPie } = buildAdder(tempDir(t));
  const offset = symbolFileOffset(noPie, 'vigil_test_add');
  const target = await Adder.start(defer, noPie);
  const other = await Adder.start(defer, noPie);
  const c = new Collector();
  const { m, options } = testManager(
    t,
    [
      { fn: 'uprobe_add', binaryPath: noPie, offset, pid: target.pid },
      { fn: 'uretprobe_add', binaryPath: noPie, offset, pid: target.pid },
    ],
    { collector: c, options: { collectStats: true, constantEditors: [{ name: 'target_tgid', value: target.pid }] } },
  );
  defer(() => m.stop());
  m.init(options);
  m.start();
  const runs = (fn: string) => m.stats().probes.find((p) => p.id.fn === fn)!.stats!.runCount;

  // Calls from another process running the same binary do not even run the programs (run counts, not just
  // the programs' own pid filter, prove the attachment is scoped to the pid).
  for (let i = 0; i < 3; i++) assert.equal(await other.add(5, 5), 10);
  assert.equal(runs('uprobe_add'), 0);
  assert.equal(runs('uretprobe_add'), 0);

  assert.equal(await target.add(2, 9), 11);
  assert.equal(global(m, 'uprobe_last_arg'), 2009n);
  assert.equal(global(m, 'uretprobe_last_ret'), 11n);
  assert.equal(runs('uprobe_add'), 1);
  assert.equal(runs('uretprobe_add'), 1);
  await c.until(() => c.events.length >= 2, 'two events');
  assert.deepEqual(c.events.map((e) => [e.probe, e.pid]).sort(), [[P.UPROBE, target.pid], [P.URETPROBE, target.pid]]);
});

// ---- BPF_PROG_TEST_RUN -----------------------------------------------------------------------------------

test('BPF_PROG_TEST_RUN runs xdp, tc, socket filter and raw_tp programs in the kernel on synthetic input', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(
    t,
    [
      { fn: 'xdp_count', ifname: 'lo' },
      { fn: 'tc_count', ifname: 'lo' },
      { fn: 'sock_filter', socketFd: -1 },
      { fn: 'raw_sys_enter' },
      { fn: 'tail_target', rawTracepoint: 'sys_enter' },
      { fn: 'tp_getppid' },
    ],
    // Loaded and readers running, but nothing attached: only test runs make these programs run.
    { collector: c, options: { activatedProbes: [] } },
  );
  m.init(options);
  m.start();
  assert.ok(m.probes().every((p) => p.state === 'loaded'));

  // A 64-byte Ethernet frame carrying an (empty) IPv4 packet.
  const frame = Buffer.alloc(64);
  frame.fill(0xff, 0, 6);
  frame.writeUInt16BE(0x0800, 12);
  frame[14] = 0x45;

  const xdp = m.getProbe('xdp_count').test(frame);
  assert.equal(xdp.retval, 2, 'XDP_PASS');
  assert.deepEqual(xdp.dataOut, frame, 'XDP_PASS leaves the frame unchanged');
  assert.equal(global(m, 'xdp_packets'), 1n);
  m.getProbe('xdp_count').test({ data: frame, repeat: 10 });
  assert.equal(global(m, 'xdp_packets'), 11n, 'repeat runs the program that many times');

  assert.equal(m.getProbe('tc_count').test(frame).retval, 0, 'TC_ACT_OK');
  assert.equal(global(m, 'tc_packets'), 1n);

  // Test runs hand socket filters an L3 skb (the Ethernet header is pulled), so skb->len is 64 - 14.
  assert.equal(m.getProbe('sock_filter').test(frame).retval, frame.length - 14);
  assert.equal(global(m, 'sock_packets'), 1n);

  // raw_tp takes its context (struct bpf_raw_tracepoint_args) as ctx_in, and runs in this task: the
  // program's filter (syscall nr in args[1], caller == target_tgid) is exercised in the kernel.
  const args = (nr: number) => {
    const ctx = Buffer.alloc(16);
    ctx.writeBigUInt64LE(BigInt(nr), 8);
    return ctx;
  };
  assert.equal(m.getProbe('raw_sys_enter').test({ ctx: args(39 /* getpid */) }).retval, 0);
  assert.equal(countOf(m, P.RAW_TP), 0n, 'another syscall is filtered out');
  m.getProbe('raw_sys_enter').test({ ctx: args(110 /* getppid */) });
  assert.equal(countOf(m, P.RAW_TP), 1n);
  await c.until(() => c.byProbe(P.RAW_TP).length === 1, 'the event of the test run');
  assert.equal(c.byProbe(P.RAW_TP)[0]!.pid, process.pid);

  // On a chosen CPU (BPF_F_TEST_RUN_ON_CPU): tail_target counts whoever runs it.
  const cpu = onlineCpus().at(-1)!;
  m.getProbe('tail_target').test({ ctx: args(110), flags: BPF_F_TEST_RUN_ON_CPU, cpu });
  assert.equal(countOf(m, P.TAIL), 1n);

  // Tracepoint programs have no test run: a NotSupportedError, not a bare errno (the kernel says ENOTSUPP).
  assert.throws(() => m.getProbe('tp_getppid').test({ ctx: args(110) }), (err: unknown) => err instanceof NotSupportedError && err.feature === 'prog_test_run');
});

// ---- stats and dumps ---------------------------------------------------------------------------------------

test('collectStats gives each probe its run count; dumpMaps prints a map with its entries', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const defer = cleanups(t);
  const rx = await udpReceiver(defer);
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }, { fn: 'sock_filter', socketFd: rx.fd }], { options: { collectStats: true } });
  defer(() => m.stop());
  m.init(options);
  m.start();
  triggerGetppid(5);
  await sendUdp(rx.port, 3);
  await waitFor(() => rx.received() >= 3, '3 datagrams');

  const st = m.stats();
  const of = (fn: string) => st.probes.find((p) => p.id.fn === fn)!;
  assert.ok(of('tp_getppid').stats!.runCount >= 5, `tp_getppid ran ${of('tp_getppid').stats!.runCount} times (getppid is machine-wide)`);
  assert.equal(of('sock_filter').stats!.runCount, 3, 'one run per datagram on its socket');
  assert.deepEqual([of('sock_filter').kind, of('sock_filter').state], ['socket', 'running']);

  const dump = m.dumpMaps(['counts']);
  assert.match(dump, /^map counts: hash key=4 value=8 max_entries=64 flags=0x0 id=\d+$/m);
  assert.match(dump, /^ {2}01000000 => 0500000000000000$/m, `probe 1 (tp_getppid) fired 5 times for this process:\n${dump}`);
});

// ---- hook kinds this kernel may lack -----------------------------------------------------------------------

test('kprobe and kretprobe on a syscall fire where the kernel has kprobes, else attach reports NotSupportedError', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(
    t,
    [
      { fn: 'kprobe_getppid', syscall: 'getppid' },
      { fn: 'kretprobe_getppid', syscall: 'getppid' },
    ],
    { collector: c },
  );
  m.init(options);
  assert.deepEqual(m.probes().map((p) => [p.hook?.kind, p.hook?.target, p.state]), [
    ['kprobe', 'syscall:getppid', 'loaded'],
    ['kretprobe', 'syscall:getppid', 'loaded'],
  ]);
  let startError: unknown;
  try {
    m.start();
  } catch (err) {
    startError = err;
  }
  if (startError !== undefined) {
    // Kprobe programs load everywhere; it is the attach that needs kprobe events.
    assert.ok(startError instanceof SelectorError, `start failed with ${String(startError)}`);
    assert.equal(m.state, 'stopped', 'a failed start undoes everything');
    for (const fn of ['kprobe_getppid', 'kretprobe_getppid']) {
      const err = m.getProbe(fn).lastError;
      assert.ok(err instanceof NotSupportedError && err.feature === 'kprobe', `${fn}: ${String(err)}`);
      assert.match(startError.message, new RegExp(`${fn}: kprobe is not supported`));
    }
    return skipForKernel(t, m.getProbe('kprobe_getppid').lastError, 'kprobe');
  }
  triggerGetppid(5);
  await c.until(() => c.byProbe(P.KPROBE).length >= 5 && c.byProbe(P.KRETPROBE).length >= 5, 'kprobe events');
  assert.equal(c.byProbe(P.KPROBE).length, 5);
  assert.equal(c.byProbe(P.KRETPROBE).length, 5);
  assert.equal(countOf(m, P.KPROBE), 5n);
  assert.equal(countOf(m, P.KRETPROBE), 5n);
});

/** fentry, fexit and LSM programs cannot even be loaded without their feature: the manager excludes them at init. */
const LOAD_GATED_CASES = [
  {
    fn: 'fentry_nanosleep',
    feature: 'fentry',
    kind: 'fentry',
    fire: async (m: Manager, c: Collector) => {
      for (let i = 0; i < 3; i++) usleep(100);
      await c.until(() => c.byProbe(P.FENTRY).length >= 3, 'fentry events');
      assert.ok(countOf(m, P.FENTRY) >= 3n);
    },
  },
  {
    fn: 'fexit_nanosleep',
    feature: 'fexit',
    kind: 'fexit',
    fire: async (m: Manager, c: Collector) => {
      for (let i = 0; i < 3; i++) usleep(100);
      await c.until(() => c.byProbe(P_FEXIT).length >= 3, 'fexit events');
      assert.ok(countOf(m, P_FEXIT) >= 3n);
    },
  },
  {
    fn: 'lsm_file_open',
    feature: 'lsm',
    kind: 'lsm',
    fire: async (m: Manager) => {
      const before = global(m, 'lsm_hits');
      fs.readFileSync('/proc/self/stat');
      assert.ok(global(m, 'lsm_hits') > before, 'file_open by this process reached the LSM program');
    },
  },
] as const;

for (const k of LOAD_GATED_CASES) {
  test(`${k.kind} program ${k.fn} fires where the kernel supports it, else init excludes it with NotSupportedError`, async (t) => {
    if (!privileged(t, NEEDS)) return;
    const c = new Collector();
    const { m, options } = testManager(t, [{ fn: k.fn }], { collector: c });
    m.init(options);
    const probe = m.getProbe(k.fn);
    assert.equal(probe.hook?.kind, k.kind);
    if (probe.lastError) {
      assert.equal(probe.state, 'failed');
      assert.ok(!probe.program!.loaded, 'excluded from the load, so the rest of the object still loads');
      assert.match(probe.excludedReason ?? '', new RegExp(`${k.feature} is not supported`));
      assert.throws(() => m.start(), (err: unknown) => err instanceof SelectorError && err.message.includes(`${k.fn}: ${k.feature} is not supported`));
      return skipForKernel(t, probe.lastError, k.feature);
    }
    m.start();
    assert.equal(probe.state, 'running');
    await k.fire(m, c);
  });
}
