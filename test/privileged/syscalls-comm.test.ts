// Privileged: the syscall sensor's comm filter at the edges of the 16-byte key. The kernel side reads the comm
// straight from the task as two 8-byte words and clears what follows its NUL (with task storage), or copies it
// with bpf_get_current_comm (the tid-hash fallback); either way the key must equal the one user space writes.
// Names of 1, 7, 8 and 15 bytes put the NUL in each word and at each end of one; each is checked against a
// sibling that differs only in its last byte (or is one byte longer), so a key compared short would let it in.
// Needs root + BPF with BTF + syscall tracepoints + gcc.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { SyscallSensor } from '../../src/syscalls/sensor.ts';
import { buildWorkload, EventLog, runWorkload } from '../fixtures/syscalls-harness.ts';
import { privileged, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF + syscall tracepoints + gcc';

/** [included name, sibling that must not match it] */
const CASES: [string, string][] = [
  ['q', 'qq'],
  ['vigil-7', 'vigil-8'],
  ['vigil-08', 'vigil-09'],
  ['vigil-08', 'vigil-08x'],
  ['vigil-comm-15ch', 'vigil-comm-15cx'],
  ['vigil-comm-14c', 'vigil-comm-14cx'],
];

for (const store of ['task', 'hash'] as const) {
  test(`syscall sensor comm filter: names of 1 to 15 bytes match exactly (${store} pairing)`, async (t) => {
    if (!privileged(t, NEEDS)) return;
    const dir = tempDir(t, 'vigil-scc-');
    const bins = new Map<string, string>();
    for (const name of new Set(CASES.flat())) bins.set(name, buildWorkload(dir, name));
    const log = new EventLog();
    const sensor = new SyscallSensor({ files: { open: true }, filters: { comm: { include: [CASES[0]![0]] } } }, { onEvent: log.push, pendingStore: store });
    t.after(() => sensor.stop());
    sensor.start();
    let n = 0;
    for (const [name, sibling] of CASES) {
      sensor.update({ files: { open: true }, filters: { comm: { include: [name] } } });
      const drops0 = sensor.filters!.counters().comm;
      const sub = `c${n++}`;
      const ps = (await runWorkload(t, bins.get(sibling)!, [dir, 'opens', '3', sub])).find((x) => x.s === 'done')!.pid;
      const pn = (await runWorkload(t, bins.get(name)!, [dir, 'opens', '3', sub])).find((x) => x.s === 'done')!.pid;
      const under = (pid: number) => log.files([pid]).filter((e) => e.type === 'open' && e.path.startsWith(path.join(dir, sub) + '/'));
      await log.until(() => under(pn).length === 3, `the opens of "${name}"`);
      // The sibling ran first: the ring is ordered, so its events would have arrived before these.
      assert.equal(log.of([ps]).length, 0, `nothing from "${sibling}" while only "${name}" is included`);
      assert.ok(sensor.filters!.counters().comm - drops0 >= 3, `the sibling's opens were dropped by the comm filter in the kernel`);
      assert.ok(under(pn).every((e) => e.pid === pn));
    }
  });
}
