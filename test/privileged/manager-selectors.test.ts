// Privileged: probe selectors against real hooks. OneOf falls back from a kprobe to a tracepoint, BestEffort
// skips what this kernel cannot attach, AllOf fails with an error naming each probe and cause and leaves
// nothing attached, and the selection can change at runtime without a half-applied state.
// Needs root + BPF with BTF. Written for any kernel: where kprobes exist, the fallback is not needed and
// the tests check that instead.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotFoundError, NotSupportedError } from '../../src/bpf/errors.ts';
import { feature } from '../../src/bpf/features.ts';
import { SelectorError } from '../../src/manager/manager.ts';
import { allOf, bestEffort, oneOf, probe } from '../../src/manager/selectors.ts';
import { Collector, P, testManager, triggerGetppid } from '../helpers/manager.ts';
import { linksOfPrograms, privileged } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF';

test('OneOf falls back from a kprobe to a tracepoint', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'kprobe_getppid', syscall: 'getppid' }, { fn: 'tp_getppid' }], {
    collector: c,
    options: { activatedProbes: [oneOf('kprobe_getppid', 'tp_getppid')] },
  });
  m.init(options);
  m.start();
  const kp = m.getProbe('kprobe_getppid');
  const tp = m.getProbe('tp_getppid');
  triggerGetppid(4);
  if (feature('kprobe').supported) {
    assert.equal(kp.state, 'running');
    assert.equal(tp.state, 'loaded', 'the fallback is not attached when the first choice works');
    await c.until(() => c.events.length >= 4, 'kprobe events');
    assert.deepEqual(new Set(c.events.map((e) => e.probe)), new Set([P.KPROBE]));
  } else {
    assert.equal(kp.state, 'failed');
    assert.ok(kp.lastError instanceof NotSupportedError);
    assert.equal(kp.lastError.feature, 'kprobe');
    assert.equal(tp.state, 'running');
    await c.until(() => c.events.length >= 4, 'tracepoint events');
    assert.deepEqual(new Set(c.events.map((e) => e.probe)), new Set([P.TP]), 'only the fallback fires, never both');
  }
  assert.equal(c.events.length, 4);
});

test('BestEffort attaches what this kernel can and skips the rest', (t) => {
  if (!privileged(t, NEEDS)) return;
  const fns = ['fentry_nanosleep', 'lsm_file_open', 'kprobe_getppid', 'tp_getppid'];
  const { m, options } = testManager(t, [{ fn: 'fentry_nanosleep' }, { fn: 'lsm_file_open' }, { fn: 'kprobe_getppid', syscall: 'getppid' }, { fn: 'tp_getppid' }], {
    options: { activatedProbes: [bestEffort(...fns)] },
  });
  m.init(options); // fentry/LSM programs that cannot load here are excluded instead of failing the object
  m.start();
  assert.equal(m.getProbe('tp_getppid').state, 'running');
  const expect: Record<string, string> = { fentry_nanosleep: 'fentry', lsm_file_open: 'lsm', kprobe_getppid: 'kprobe' };
  for (const [fn, feat] of Object.entries(expect)) {
    const p = m.getProbe(fn);
    if (feature(feat).supported) {
      assert.equal(p.state, 'running', `${fn} runs where ${feat} exists`);
    } else {
      assert.equal(p.state, 'failed');
      assert.ok(p.lastError instanceof NotSupportedError, `${fn}: ${p.lastError}`);
      assert.equal(p.lastError.feature, feat);
    }
  }
  const st = m.stats();
  assert.equal(st.probes.find((p) => p.id.fn === 'tp_getppid')?.state, 'running');
});

test('AllOf fails with every failing probe and its cause, and leaves nothing attached', (t) => {
  if (!privileged(t, NEEDS)) return;
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }, { fn: 'raw_sys_enter', uid: 'bogus', rawTracepoint: 'vigil_no_such_tracepoint' }], {
    options: { activatedProbes: [allOf('tp_getppid', { fn: 'raw_sys_enter', uid: 'bogus' })] },
  });
  m.init(options);
  const progIds = m.probes().map((p) => p.program!.id);
  let err: unknown;
  try {
    m.start();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SelectorError, String(err));
  assert.equal(err.code, 'ESELECTOR');
  assert.match(err.failures.join(), /AllOf requirement failed/);
  assert.match(err.message, /^manager \S+: 1 required probe did not attach/);
  assert.match(err.message, /raw_sys_enter \(uid bogus\): symbol vigil_no_such_tracepoint not found/);
  assert.deepEqual(err.probes.map((p) => p.probe), ['raw_sys_enter (uid bogus)']);
  assert.doesNotMatch(err.message, /tp_getppid:/, 'the probe that attached is not blamed');
  assert.equal(m.state, 'stopped', 'a failed start stops everything');
  assert.deepEqual(linksOfPrograms(progIds), []);
  assert.ok(m.probes().every((p) => p.attachment === undefined));
});

test('updateActivatedProbes swaps probes at runtime and rolls back a selection that cannot be met', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }, { fn: 'raw_sys_enter' }, { fn: 'raw_sys_enter', uid: 'bogus', rawTracepoint: 'vigil_no_such_tracepoint' }], {
    collector: c,
    options: { activatedProbes: [probe('tp_getppid')] },
  });
  m.init(options);
  m.start();
  assert.deepEqual(m.probes().map((p) => p.state), ['running', 'loaded', 'loaded']);

  m.updateActivatedProbes([probe('raw_sys_enter')]);
  assert.deepEqual(m.probes().map((p) => p.state), ['loaded', 'running', 'loaded']);
  triggerGetppid(3);
  await c.until(() => c.events.length >= 3, 'raw_tp events');
  assert.deepEqual(new Set(c.events.map((e) => e.probe)), new Set([P.RAW_TP]));

  assert.throws(() => m.updateActivatedProbes([allOf('tp_getppid', { fn: 'raw_sys_enter', uid: 'bogus' })]), SelectorError);
  assert.equal(m.getProbe('tp_getppid').state, 'loaded', 'what the failed selection attached is detached again');
  assert.equal(m.getProbe('raw_sys_enter').state, 'running', 'the previous selection keeps running');
  assert.throws(() => m.updateActivatedProbes([probe('nope')]), NotFoundError);
  assert.equal(m.getProbe('raw_sys_enter').state, 'running');
});

test('attach retries the given number of times before giving up', (t) => {
  if (!privileged(t, NEEDS)) return;
  const { m, options } = testManager(t, [{ fn: 'raw_sys_enter', rawTracepoint: 'vigil_no_such_tracepoint', retry: 2, retryDelayMs: 5 }], {
    options: { activatedProbes: [bestEffort('raw_sys_enter')] },
  });
  m.init(options);
  m.start();
  const p = m.getProbe('raw_sys_enter');
  assert.equal(p.state, 'failed');
  assert.equal(p.attachAttempts, 3, 'the first attempt and two retries');
  assert.ok(p.lastError instanceof NotFoundError);
  assert.equal(m.stats().probes[0]!.error, p.lastError.message);
});
