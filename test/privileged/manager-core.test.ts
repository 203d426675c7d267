// Privileged: the manager loads real programs and they work. Needs root + BPF with BTF (5.8+ for the ring
// buffer). Each test triggers getppid() from this process, which the test programs filter on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Manager } from '../../src/manager/manager.ts';
import { Collector, P, testManager, triggerGetppid } from '../helpers/manager.ts';
import { assertGone, linksOfPrograms, objectPath, privileged } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF (ring buffer: 5.8)';

test('tracepoint, raw_tp and tp_btf programs fire once per syscall', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }, { fn: 'raw_sys_enter' }, { fn: 'btf_sys_enter' }], { collector: c });
  m.init(options);
  m.start();
  assert.equal(m.channel, 'ringbuf');
  assert.deepEqual(m.probes().map((p) => [p.id.fn, p.hook?.kind, p.state]), [
    ['tp_getppid', 'tracepoint', 'running'],
    ['raw_sys_enter', 'raw_tp', 'running'],
    ['btf_sys_enter', 'tp_btf', 'running'],
  ]);
  triggerGetppid(10);
  await c.until(() => c.events.length >= 30, '30 events');
  assert.equal(c.byProbe(P.TP).length, 10);
  assert.equal(c.byProbe(P.RAW_TP).length, 10);
  assert.equal(c.byProbe(P.TP_BTF).length, 10);
  assert.ok(c.events.every((e) => e.pid === process.pid));
  // The counts map agrees with what was delivered.
  const counts = m.getMap('counts');
  const key = Buffer.alloc(4);
  for (const p of [P.TP, P.RAW_TP, P.TP_BTF]) {
    key.writeUInt32LE(p);
    assert.equal(counts.lookup(key)?.readBigUInt64LE(0), 10n, `count of probe ${p}`);
  }
});

test('ring buffer delivers N of N records, in order, with no loss', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'raw_sys_enter' }], { collector: c });
  m.init(options);
  m.start();
  const N = 50_000;
  // Bursts smaller than the 1 MiB test ring, so the producer (this thread) cannot outrun the reader.
  for (let sent = 0; sent < N; sent += 5_000) {
    triggerGetppid(5_000);
    await c.until(() => c.events.length >= sent + 5_000, `${sent + 5_000} events`);
  }
  assert.equal(c.events.length, N);
  c.events.forEach((e, i) => assert.equal(e.seq, BigInt(i), `record ${i} out of order`));
  const k = m.kernelCounters()!;
  assert.equal(k.reserveFailed, 0);
  assert.equal(k.emitted, N);
  assert.equal(m.reader('vigil_events').stats().received, N);
});

test('perf buffer delivers when the ring buffer is not used', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'raw_sys_enter' }], { collector: c, mode: 'perf' });
  m.init(options);
  m.start();
  assert.equal(m.channel, 'perf');
  assert.equal(m.getMap('vigil_events').type, 2 /* ARRAY: the ring was edited away */);
  triggerGetppid(2_000);
  await c.until(() => c.events.length >= 2_000, '2000 perf events');
  assert.equal(c.events.length, 2_000);
  assert.deepEqual(new Set(c.events.map((e) => e.probe)), new Set([P.RAW_TP]));
  const stats = m.eventReader!.stats();
  assert.equal(stats.lost, 0);
  assert.equal(stats.received, 2_000);
});

test('constant editors change program behaviour, globally and per program', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }, { fn: 'raw_sys_enter' }], {
    collector: c,
    cookie: 0x1111n,
    options: { constantEditors: [{ name: 'test_cookie', value: 0x2222n, programs: ['raw_sys_enter'] }] },
  });
  m.init(options);
  m.start();
  triggerGetppid(3);
  await c.until(() => c.events.length >= 6, '6 events');
  assert.deepEqual(new Set(c.byProbe(P.TP).map((e) => e.cookie)), new Set([0x1111n]));
  assert.deepEqual(new Set(c.byProbe(P.RAW_TP).map((e) => e.cookie)), new Set([0x2222n]));
  // Both instances share every map: the shared sequence counter interleaves without gaps.
  assert.deepEqual(c.events.map((e) => e.seq).sort((a, b) => Number(a - b)), [0n, 1n, 2n, 3n, 4n, 5n]);

  // A constant aimed at another process silences the programs entirely.
  const c2 = new Collector();
  const other = new Manager({ object: objectPath('test/bpf/manager_test'), probes: [{ fn: 'raw_sys_enter' }], eventChannel: { handler: c2.handler } });
  t.after(() => other.stop());
  other.init({ constantEditors: [{ name: 'target_tgid', value: 1 }] });
  other.start();
  triggerGetppid(100);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(c2.events.length, 0);
  assert.equal(other.kernelCounters()!.emitted, 0);
});

test('a constant editor naming a missing constant fails before anything loads', (t) => {
  if (!privileged(t, NEEDS)) return;
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }], { options: { constantEditors: [{ name: 'no_such_constant', value: 1, failOnMissing: true }] } });
  assert.throws(() => m.init(options), { code: 'ENOTFOUND', message: /constant no_such_constant not found.*test_cookie/ });
  assert.equal(m.state, 'new');
});

test('pause detaches every probe and resume re-attaches them', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }, { fn: 'raw_sys_enter' }], { collector: c });
  m.init(options);
  m.start();
  const progIds = m.probes().map((p) => p.program!.id);
  triggerGetppid(5);
  await c.until(() => c.events.length >= 10, '10 events');
  m.pause();
  assert.equal(m.state, 'paused');
  assert.deepEqual(m.probes().map((p) => p.state), ['paused', 'paused']);
  assert.deepEqual(linksOfPrograms(progIds), [], 'no link while paused');
  triggerGetppid(5);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(c.events.length, 10, 'nothing fires while paused');
  assert.equal(m.kernelCounters()!.emitted, 10);
  m.resume();
  assert.deepEqual(m.probes().map((p) => p.state), ['running', 'running']);
  triggerGetppid(5);
  await c.until(() => c.events.length >= 20, '20 events');
  assert.equal(c.events.length, 20);
});

test('stop leaves no program, map or link behind, and is idempotent', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }, { fn: 'raw_sys_enter' }, { fn: 'btf_sys_enter' }], { collector: new Collector() });
  m.init(options);
  m.start();
  const progs = m.object.programs().filter((p) => p.loaded).map((p) => p.id);
  const maps = m.object.maps().filter((x) => x.loaded && x.autocreate).map((x) => x.info().id);
  const links = linksOfPrograms(progs);
  assert.equal(links.length, 3);
  assert.ok(progs.length >= 10 && maps.length >= 8);
  m.stop();
  m.stop();
  assert.equal(m.state, 'stopped');
  await assertGone({ progs, maps, links });
  assert.throws(() => m.getMap('counts'), { code: 'ESTATE' });
});
