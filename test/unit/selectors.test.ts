// Selector logic against a scripted host: which probes get attached, in which order, and what the
// validators say when requirements are not met. No privileges needed.
import assert from 'node:assert/strict';
import os from 'node:os';
import { test } from 'node:test';
import { SyscallError } from '../../src/bpf/errors.ts';
import { SelectorError } from '../../src/manager/manager.ts';
import { allOf, bestEffort, oneOf, probe, type SelectorHost } from '../../src/manager/selectors.ts';
import type { ProbeId } from '../../src/manager/probe.ts';

/** A host where some probes fail to attach with a given reason. */
function host(failing: Record<string, string>, known = (fn: string) => !fn.startsWith('ghost')) {
  const running = new Set<string>();
  const attempts: string[] = [];
  const errors = new Map<string, Error>();
  const h: SelectorHost & { running: Set<string>; attempts: string[] } = {
    running,
    attempts,
    activate(id: ProbeId) {
      attempts.push(id.fn);
      if (!known(id.fn)) return new Error('unknown');
      if (failing[id.fn]) {
        const e = new Error(failing[id.fn]);
        errors.set(id.fn, e);
        return e;
      }
      running.add(id.fn);
      return undefined;
    },
    deactivate(id: ProbeId) {
      running.delete(id.fn);
    },
    status(id: ProbeId) {
      return { known: known(id.fn), running: running.has(id.fn), error: errors.get(id.fn) };
    },
  };
  return h;
}

test('ProbeSelector requires its probe and names the cause when it fails', () => {
  const h = host({ kp: 'kprobe is not supported on this kernel' });
  const s = probe('kp');
  assert.equal(s.activate(h), false);
  assert.equal(s.validate(h), 'kp: kprobe is not supported on this kernel');
  const ok = probe('tp');
  assert.equal(ok.activate(h), true);
  assert.equal(ok.validate(h), undefined);
  assert.match(probe('ghost').validate(h)!, /no such probe/);
});

test('AllOf activates every child and lists every failure', () => {
  const h = host({ a: 'boom a', c: 'boom c' });
  const s = allOf('a', 'b', 'c');
  assert.equal(s.activate(h), false);
  assert.deepEqual(h.attempts, ['a', 'b', 'c']);
  assert.deepEqual([...h.running], ['b']);
  assert.equal(s.validate(h), 'AllOf requirement failed, not running: [a: boom a | c: boom c]');
});

test('OneOf falls back in order and stops at the first success', () => {
  const h = host({ kprobe_open: 'kprobe is not supported' });
  const s = oneOf('kprobe_open', 'tp_open', 'raw_open');
  assert.equal(s.activate(h), true);
  assert.deepEqual(h.attempts, ['kprobe_open', 'tp_open'], 'the third alternative is never attached');
  assert.equal(s.validate(h), undefined);
});

test('OneOf fails with every reason when no alternative runs', () => {
  const h = host({ x: 'no x', y: 'no y' });
  const s = oneOf('x', 'y');
  assert.equal(s.activate(h), false);
  assert.equal(s.validate(h), 'OneOf requirement failed, none of these is running: [x: no x | y: no y]');
});

test('OneOf undoes a half-attached group alternative before trying the next', () => {
  const h = host({ kretprobe_exit: 'no kretprobe' });
  const s = oneOf(allOf('kprobe_entry', 'kretprobe_exit'), allOf('tp_enter', 'tp_exit'));
  assert.equal(s.activate(h), true);
  assert.deepEqual([...h.running].sort(), ['tp_enter', 'tp_exit'], 'kprobe_entry was detached again');
});

test('BestEffort attaches what it can and never fails', () => {
  const h = host({ fentry: 'no fentry', lsm: 'no lsm' });
  const s = bestEffort('fentry', 'tp', 'lsm');
  assert.equal(s.activate(h), true);
  assert.equal(s.validate(h), undefined);
  assert.deepEqual([...h.running], ['tp']);
});

test('nested selectors report the probes they reference and follow renames', () => {
  const s = allOf(oneOf('a', { uid: 'x', fn: 'b' }), bestEffort('c'));
  assert.deepEqual(s.probeIds(), [{ uid: '', fn: 'a' }, { uid: 'x', fn: 'b' }, { uid: '', fn: 'c' }]);
  s.editProbeId({ uid: 'x', fn: 'b' }, { uid: 'y', fn: 'b' });
  assert.deepEqual(s.probeIds()[1], { uid: 'y', fn: 'b' });
  assert.equal(String(s), 'allOf(oneOf(a, b (uid y)), bestEffort(c))');
});

test('SelectorError: counts the probes that did not attach, names the first three, and says what to do when they failed alike', () => {
  const emfile = (p: string) => ({ probe: p, error: new SyscallError(`attach ${p}`, os.constants.errno.EMFILE) });
  const many = new SelectorError('syscalls', ['AllOf requirement failed, not running: [...]'], ['a', 'b', 'c', 'd', 'e'].map(emfile));
  assert.equal(
    many.message,
    "manager syscalls: 5 required probes did not attach (too many open files in the process, EMFILE); each attached probe holds a file descriptor: raise vigil's open-file limit (ulimit -n, or LimitNOFILE= in its systemd unit): a: attach a: too many open files in the process (EMFILE); b: attach b: too many open files in the process (EMFILE); c: attach c: too many open files in the process (EMFILE); and 2 more (vigil status lists each probe's error)",
  );
  assert.deepEqual(many.failures, ['AllOf requirement failed, not running: [...]'], 'the requirements in full');
  assert.equal(many.probes.length, 5);
  const mixed = new SelectorError('m', ['x'], [emfile('a'), { probe: 'b', error: new SyscallError('attach b', os.constants.errno.EPERM) }]);
  assert.equal(mixed.message, 'manager m: 2 required probes did not attach: a: attach a: too many open files in the process (EMFILE); b: attach b: operation not permitted (EPERM)', 'no hint for unlike causes');
  assert.equal(new SelectorError('m', ['p: no such probe in the manager']).message, 'manager m: probe selection failed: p: no such probe in the manager', 'no probe to blame: the requirements');
});
