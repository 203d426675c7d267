// Helpers shared by the manager's privileged tests: a manager over test/bpf/manager_test.bpf.o that only
// reacts to this test process, a precise trigger (getppid through libc, one syscall per call), and a
// collector of the test_event records it emits.
import type { TestContext } from 'node:test';
import koffi from 'koffi';
import { Manager, type ManagerOptions, type ManagerSpec } from '../../src/manager/manager.ts';
import type { ProbeSpec } from '../../src/manager/probe.ts';
import { TEST_EVENT, EVENT_HEADER } from '../../src/events/layout.generated.ts';
import { objectPath } from './privileged.ts';

const libc = koffi.load('libc.so.6');
const getppidFn = libc.func('int getppid(void)');

/** Makes exactly `n` getppid() syscalls from this process. */
export function triggerGetppid(n = 1): void {
  for (let i = 0; i < n; i++) getppidFn();
}

export const P = { TP: 1, RAW_TP: 2, TP_BTF: 3, UPROBE: 4, URETPROBE: 5, KPROBE: 6, FENTRY: 7, TAIL: 8, LSM: 9, KRETPROBE: 10 } as const;

export interface TestEvent {
  probe: number;
  seq: bigint;
  cookie: bigint;
  pid: number;
}

/** Collects decoded test_event records. */
export class Collector {
  readonly events: TestEvent[] = [];
  readonly handler = (v: DataView, off: number): void => {
    this.events.push({
      probe: v.getUint32(off + TEST_EVENT.probe.offset, true),
      seq: v.getBigUint64(off + TEST_EVENT.seq.offset, true),
      cookie: v.getBigUint64(off + TEST_EVENT.cookie.offset, true),
      pid: v.getUint32(off + EVENT_HEADER.pid.offset, true),
    });
  };
  byProbe(p: number): TestEvent[] {
    return this.events.filter((e) => e.probe === p);
  }
  /** Waits until `pred` holds, polling the event loop (the reader drains on its own timer). */
  async until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; have ${this.events.length} events`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/**
 * A manager over the test object with the event channel wired to `collector`, its constants aimed at this
 * process, stopped when the test ends.
 */
export function testManager(
  t: TestContext,
  probes: ProbeSpec[],
  o: { collector?: Collector; spec?: Partial<ManagerSpec>; options?: ManagerOptions; cookie?: bigint; mode?: 'auto' | 'ringbuf' | 'perf' } = {},
): { m: Manager; options: ManagerOptions } {
  const m = new Manager({
    object: objectPath('test/bpf/manager_test'),
    probes,
    eventChannel: { mode: o.mode ?? 'auto', handler: o.collector?.handler },
    ...o.spec,
  });
  t.after(() => m.stop());
  const options: ManagerOptions = {
    ...o.options,
    constantEditors: [
      { name: 'target_tgid', value: process.pid },
      { name: 'test_cookie', value: o.cookie ?? 0n },
      ...(o.options?.constantEditors ?? []),
    ],
  };
  return { m, options };
}
