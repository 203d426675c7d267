// Privileged: program-level features of the manager. Tail-call routes fill program arrays, a program is
// cloned onto a new hook with its own constants, an extra hook is added to a loaded program, and hooks are
// detached by identification pair. Needs root + BPF with BTF.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import koffi from 'koffi';
import { u32, u64 } from '../../src/bpf/codec.ts';
import { InvalidArgumentError, NotFoundError } from '../../src/bpf/errors.ts';
import { Collector, P, testManager, triggerGetppid } from '../helpers/manager.ts';
import { assertGone, linksOfPrograms, privileged } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF';
// getpgid, not getpid: libuv calls getpid when a child exits, and helpers here run children.
const getpgid = koffi.load('libc.so.6').func('int getpgid(int)');

test('a tail-call route sends the entry program into its target', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'tail_entry' }], { collector: c, options: { tailCallRoutes: [{ programArray: 'tail_calls', key: 0, fn: 'tail_target' }] } });
  m.init(options);
  m.start();
  triggerGetppid(6);
  await c.until(() => c.events.length >= 6, 'tail-called events');
  assert.deepEqual(new Set(c.events.map((e) => e.probe)), new Set([P.TAIL]));
  // Emptying the slot stops the chain: the entry program falls through.
  assert.equal(m.getMap('tail_calls').delete(Buffer.from([0, 0, 0, 0])), true);
  triggerGetppid(6);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(c.events.length, 6);
  // Routes can be added while running.
  m.updateTailCallRoutes([{ programArray: 'tail_calls', key: 0, fn: 'tail_target' }]);
  triggerGetppid(1);
  await c.until(() => c.events.length >= 7, 'after re-routing');
});

test('without the route, the tail call finds an empty slot and nothing is emitted', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'tail_entry' }], { collector: c });
  m.init(options);
  m.start();
  triggerGetppid(5);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(c.events.length, 0);
  assert.throws(() => m.updateTailCallRoutes([{ programArray: 'counts', key: 0, fn: 'tail_target' }]), /not a program array/);
});

test('cloneProgram loads a copy with its own constants on a new hook, sharing the maps', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'raw_sys_enter' }], { collector: c, cookie: 1n });
  m.init(options);
  m.start();
  const clone = m.cloneProgram('raw_sys_enter', { uid: 'clone' }, { constantEditors: [{ name: 'test_cookie', value: 2n }] });
  assert.equal(clone.state, 'running');
  assert.notEqual(clone.program!.id, m.getProbe('raw_sys_enter').program!.id, 'a separate program');
  triggerGetppid(3);
  await c.until(() => c.events.length >= 6, 'events from both copies');
  const cookies = c.events.map((e) => e.cookie).sort();
  assert.deepEqual(cookies, [1n, 1n, 1n, 2n, 2n, 2n]);
  assert.equal(m.getMap('counts').typed(u32, u64).get(P.RAW_TP), 6n, 'the clone counts into the shared map');
  // Detaching the clone's hook closes its private object.
  const cloneProg = clone.program!.id;
  m.detachHook({ fn: 'raw_sys_enter', uid: 'clone' });
  await assertGone({ progs: [cloneProg] });
  triggerGetppid(1);
  await c.until(() => c.events.length >= 7, 'original still running');
  assert.equal(c.events.at(-1)!.cookie, 1n);
  assert.throws(() => m.cloneProgram('raw_sys_enter', { uid: '' }), InvalidArgumentError, 'id clash');
  assert.throws(() => m.cloneProgram('no_such_fn', { uid: 'x' }), NotFoundError);
});

test('addHook attaches a loaded program at a second hook; detachHook removes just that hook', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }], { collector: c });
  m.init(options);
  m.start();
  const extra = m.addHook('tp_getppid', { uid: 'getpgid', tracepoint: 'syscalls/sys_enter_getpgid' });
  assert.equal(extra.program, m.getProbe('tp_getppid').program, 'same program, two hooks');
  assert.equal(linksOfPrograms([extra.program!.id]).length, 2);
  getpgid(0);
  triggerGetppid(1);
  await c.until(() => c.events.length >= 2, 'events from both hooks');
  m.detachHook({ fn: 'tp_getppid', uid: 'getpgid' });
  assert.equal(linksOfPrograms([extra.program!.id]).length, 1);
  getpgid(0);
  triggerGetppid(1);
  await c.until(() => c.events.length >= 3, 'getppid hook only');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(c.events.length, 3, JSON.stringify(c.events, (_k, v) => typeof v === "bigint" ? String(v) : v));
  assert.throws(() => m.detachHook({ fn: 'tp_getppid', uid: 'getpgid' }), NotFoundError);
  assert.throws(() => m.addHook('tp_getppid', { uid: 'bad', tracepoint: 'syscalls/sys_enter_vigil_nonexistent' }), NotFoundError);
  assert.throws(() => m.getProbe({ fn: 'tp_getppid', uid: 'bad' }), NotFoundError, 'a failed hook is not kept');
});
