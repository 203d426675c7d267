// Privileged: maps and globals of a loaded object. Raw and typed access, per-CPU values, batch operations,
// .rodata/.bss/.data globals, pinning with each cleanup kind, sharing a map between managers, map spec
// editors, excluded maps and maps of maps. Needs root + BPF with BTF + bpffs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { u32, u64 } from '../../src/bpf/codec.ts';
import { MapType } from '../../src/bpf/constants.ts';
import { MapInUseError } from '../../src/bpf/errors.ts';
import { BpfMap, numPossibleCpus } from '../../src/bpf/map.ts';
import { ensureBpffs } from '../../src/bpf/mounts.ts';
import { Cleanup, Manager } from '../../src/manager/manager.ts';
import { Collector, P, testManager, triggerGetppid } from '../helpers/manager.ts';
import { assertGone, heldBpfObjects, objectPath, privileged } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF + bpffs';

function bpffsDir(t: import('node:test').TestContext): string {
  const root = ensureBpffs();
  assert.ok(root, 'bpffs is mounted');
  const dir = fs.mkdtempSync(path.join(root, 'vigil-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('hash and array maps: lookup, update, delete, iterate, batch, typed', (t) => {
  if (!privileged(t, NEEDS)) return;
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }]);
  m.init(options);
  const counts = m.getMap('counts').typed(u32, u64);
  assert.equal(counts.get(99), undefined);
  counts.set(99, 5n);
  counts.set(100, 6n);
  assert.equal(counts.get(99), 5n);
  assert.throws(() => counts.set(99, 1n, 1 /* NOEXIST */), { code: 'ESYSCALL', message: /key exists/ });
  assert.deepEqual([...counts.entries()].sort(), [[100, 6n], [99, 5n]].sort());
  assert.equal(counts.delete(99), true);
  assert.equal(counts.delete(99), false);
  // Batch: many entries in one syscall, read back in chunks.
  const raw = m.getMap('counts');
  const entries: [Buffer, Buffer][] = [];
  for (let i = 0; i < 40; i++) entries.push([Buffer.from(new Uint32Array([1000 + i]).buffer), Buffer.from(new BigUint64Array([BigInt(i)]).buffer)]);
  raw.updateMany(entries);
  const all = raw.lookupAll(7);
  assert.equal(all.length, 41);
  assert.equal(all.find(([k]) => k.readUInt32LE(0) === 1039)?.[1].readBigUInt64LE(0), 39n);
  assert.equal(raw.clear(), 41);
  assert.equal(raw.lookupAll().length, 0);
  // Wrong sizes are refused before the kernel sees them.
  assert.throws(() => raw.lookup(Buffer.alloc(3)), { code: 'EINVAL', message: /key is 3 bytes, expected 4/ });
  assert.throws(() => raw.typed(u64, u64), /key codec is 8 bytes, map key is 4/);
  assert.throws(() => [...m.getMap('vigil_events').keys()], /has no keys/);
});

test('per-CPU maps hold one value per possible CPU', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'raw_sys_enter' }], { collector: c });
  m.init(options);
  m.start();
  triggerGetppid(25);
  await c.until(() => c.events.length >= 25, 'events');
  const pc = m.getMap('percpu_counts');
  assert.ok(pc.isPerCpu);
  assert.equal(pc.lookupSize, 8 * numPossibleCpus());
  const typed = pc.typed(u32, u64);
  const values = typed.getPerCpu(P.RAW_TP)!;
  assert.equal(values.length, numPossibleCpus());
  assert.equal(typed.sumPerCpu(P.RAW_TP), 25n, `per CPU: ${values.join(',')}`);
  typed.setPerCpu(3, values.map((_, i) => BigInt(i + 1)));
  assert.deepEqual(typed.getPerCpu(3), values.map((_, i) => BigInt(i + 1)));
  assert.throws(() => typed.get(3), /per-CPU: use getPerCpu/);
});

test('globals: constants before load, .bss and .data read and written live', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'raw_sys_enter' }], { collector: c, cookie: 77n });
  m.init(options);
  m.start();
  const obj = m.object;
  assert.equal(obj.readGlobalNumber('test_cookie'), 77n, '.rodata keeps the edited constant');
  assert.equal(obj.readGlobalNumber('target_tgid'), process.pid);
  assert.equal(obj.readGlobalNumber('data_value'), 42n, '.data initial value');
  obj.writeGlobal('data_value', 43n);
  assert.equal(obj.readGlobalNumber('data_value'), 43n);
  triggerGetppid(2);
  await c.until(() => c.events.length >= 2, 'events');
  assert.equal(obj.readGlobalNumber('seq_counter'), 2n, '.bss written by the program, read live');
  obj.writeGlobal('gate', 0); // the programs read it on every run
  triggerGetppid(10);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(c.events.length, 2, 'silenced by a live write');
  obj.writeGlobal('gate', 1);
  triggerGetppid(1);
  await c.until(() => c.events.length >= 3, 'events after re-enabling');
  assert.throws(() => obj.writeGlobal('test_cookie', 1n), /read-only after load/);
  assert.throws(() => obj.setGlobal('test_cookie', 1n), /before load/);
  assert.throws(() => obj.readGlobal('nope'), { code: 'ENOTFOUND', message: /its globals are: .*seq_counter/ });
});

test('a pinned map outlives stop unless its cleanup kind is asked for, and the next manager reuses it', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const pin = path.join(bpffsDir(t), 'counts');
  const run = (cleanup: number) => {
    const m = new Manager({ object: objectPath('test/bpf/manager_test'), probes: [{ fn: 'tp_getppid' }], maps: [{ name: 'counts', pinPath: pin }] });
    t.after(() => m.stop());
    m.init({ constantEditors: [{ name: 'target_tgid', value: process.pid }] });
    m.start();
    triggerGetppid(3);
    const id = m.getMap('counts').info().id;
    m.stop(cleanup);
    return id;
  };
  const id1 = run(Cleanup.internalNotPinned); // our pinned map is "internal pinned": not cleaned here
  assert.ok(fs.existsSync(pin), 'pin kept');
  const pinned = BpfMap.fromPin(pin);
  t.after(() => pinned.close());
  assert.equal(pinned.info().id, id1);
  assert.equal(pinned.typed(u32, u64).get(P.TP), 3n);
  const id2 = run(Cleanup.internal); // now the pin pre-existed: "external pinned", not in Cleanup.internal
  assert.equal(id2, id1, 'the second manager reused the pinned map');
  assert.equal(pinned.typed(u32, u64).get(P.TP), 6n, 'and kept counting in it');
  assert.ok(fs.existsSync(pin));
  run(Cleanup.all);
  assert.ok(!fs.existsSync(pin), 'Cleanup.all removes the pin');
});

test('a different map already pinned at the path is a MapInUseError and nothing stays loaded', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const pin = path.join(bpffsDir(t), 'counts');
  const squatter = BpfMap.create({ name: 'squatter', type: MapType.ARRAY, keySize: 4, valueSize: 16, maxEntries: 2 });
  t.after(() => squatter.close());
  squatter.pin(pin);
  assert.throws(() => squatter.pin(pin), MapInUseError);
  const m = new Manager({ object: objectPath('test/bpf/manager_test'), probes: [{ fn: 'tp_getppid' }], maps: [{ name: 'counts', pinPath: pin }] });
  t.after(() => m.stop());
  const before = heldBpfObjects();
  assert.throws(() => m.init({}), (e: unknown) => e instanceof MapInUseError && /counts/.test(e.message) && e.message.includes(pin));
  assert.equal(m.state, 'new');
  assert.deepEqual(heldBpfObjects(), before, 'the failed init holds nothing');
});

test('map editors share one map between two managers', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const { m: a, options: oa } = testManager(t, [{ fn: 'tp_getppid' }]);
  a.init(oa);
  a.start();
  const { m: b, options: ob } = testManager(t, [{ fn: 'raw_sys_enter' }], { options: { mapEditors: { counts: a.getMap('counts') } } });
  b.init(ob);
  b.start();
  assert.equal(b.getMap('counts').info().id, a.getMap('counts').info().id);
  triggerGetppid(4);
  const counts = a.getMap('counts').typed(u32, u64);
  assert.equal(counts.get(P.TP), 4n);
  assert.equal(counts.get(P.RAW_TP), 4n, 'b counted into a\'s map');
  const bProgs = b.probes().map((p) => p.program!.id);
  b.stop(); // default cleanup leaves a's map alone
  assert.equal(counts.get(P.TP), 4n);
  await assertGone({ progs: bProgs });
});

test('map spec editors resize maps; excluded maps and functions are not created', (t) => {
  if (!privileged(t, NEEDS)) return;
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }], {
    options: { mapSpecEditors: { counts: { maxEntries: 128 } }, excludedMaps: ['outer_map'], excludedFunctions: ['outer_user', 'iter_tasks'] },
  });
  m.init(options);
  assert.equal(m.getMap('counts').maxEntries, 128);
  assert.equal(m.getMap('counts').info().maxEntries, 128);
  assert.equal(m.getMap('outer_map').loaded && m.getMap('outer_map').autocreate, false);
  assert.equal(m.object.program('iter_tasks').loaded, false);
  assert.equal(m.object.program('tp_getppid').loaded, true);
});

test('stop without internal cleanup keeps unpinned maps open for the caller', (t) => {
  if (!privileged(t, NEEDS)) return;
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }]);
  m.init(options);
  m.start();
  triggerGetppid(2);
  m.stop(Cleanup.external);
  const kept = m.retainedMap('counts');
  assert.ok(kept);
  t.after(() => kept.close());
  assert.equal(kept.typed(u32, u64).get(P.TP), 2n);
  assert.equal(m.getMap('counts'), kept);
});

test('maps of maps: a map route fills a slot, innerOuterMaps supplies the inner definition', (t) => {
  if (!privileged(t, NEEDS)) return;
  // 1. BTF-declared inner map (manager_test's outer_map), filled by a map route.
  const inner = BpfMap.create({ name: 'route_inner', type: MapType.ARRAY, keySize: 4, valueSize: 8, maxEntries: 4 });
  t.after(() => inner.close());
  const { m, options } = testManager(t, [{ fn: 'outer_user' }], { options: { mapRoutes: [{ routingMap: 'outer_map', key: 0, map: inner }] } });
  m.init(options);
  m.start();
  triggerGetppid(5);
  assert.equal(inner.typed(u32, u64).get(0), 5n);

  // 2. No inner map in BTF: the manager builds it from another map's definition.
  const inner2 = BpfMap.create({ name: 'route_inner2', type: MapType.ARRAY, keySize: 4, valueSize: 8, maxEntries: 8 });
  t.after(() => inner2.close());
  const m2 = new Manager({ object: objectPath('test/bpf/maps_test'), probes: [{ fn: 'count_into_inner' }] });
  t.after(() => m2.stop());
  m2.init({
    innerOuterMaps: [{ outer: 'outer_noinner', inner: 'inner_template' }],
    mapRoutes: [{ routingMap: 'outer_noinner', key: 7, map: inner2 }],
    constantEditors: [{ name: 'target_tgid', value: process.pid }],
  });
  m2.start();
  triggerGetppid(3);
  assert.equal(inner2.typed(u32, u64).get(0), 3n);
  // A map of the wrong shape is refused by the kernel when routed.
  const wrong = BpfMap.create({ name: 'route_wrong', type: MapType.HASH, keySize: 8, valueSize: 8, maxEntries: 4 });
  t.after(() => wrong.close());
  assert.throws(() => m2.getMap('outer_noinner').update(Buffer.from([1, 0, 0, 0]), Buffer.from(new Uint32Array([wrong.fd]).buffer)));
});
