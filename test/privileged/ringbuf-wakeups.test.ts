// Privileged: how the ring's reader is woken when it steers the sensors through vigil_ring_ctl
// (bpf/include/vigil.h). Records go out without wakeups while the reader waits on its timer, a ring filling
// past the watermark wakes it at once, and going back to idle loses no wakeup. Uses the manager's test
// object (1 MiB ring, 64-byte records) triggered by getppid() from this process.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { VIGIL_RING_CTL, VIGIL_RING_MODE } from '../../src/events/layout.generated.ts';
import { RING_CTL_MAP, type RingBufReaderOptions } from '../../src/ringbuf/ringbuf.ts';
import { Collector, testManager, triggerGetppid } from '../helpers/manager.ts';
import { privileged } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF (ring buffer: 5.8)';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** How the reader waits, as the BPF side reads it (enum vigil_ring_mode). */
function mode(m: ReturnType<typeof testManager>['m']): number {
  return m.getMap(RING_CTL_MAP).lookup(Buffer.alloc(4))!.readUInt32LE(VIGIL_RING_CTL.mode.offset);
}
const { POLL, TIMER, BUSY } = VIGIL_RING_MODE;

/**
 * A started reader with credit (1 ms drains) and 100 getppid records on their way: its consumer has room for
 * `room(received so far)` more. `arrivals`: when each record was delivered (performance.now()).
 */
function creditReader(t: TestContext, room: (received: number) => number, o: RingBufReaderOptions) {
  const c = new Collector();
  const arrivals: number[] = [];
  const handler = (v: DataView, off: number): void => {
    arrivals.push(performance.now());
    c.handler(v, off);
  };
  const ringOptions: RingBufReaderOptions = { batchDelayMs: 1, maxBatchDelayMs: 2, credit: () => room(c.events.length), ...o };
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }], { collector: c, spec: { eventChannel: { mode: 'ringbuf', handler, ringOptions } } });
  m.init(options);
  m.start();
  const r = m.reader('vigil_events');
  triggerGetppid(100);
  return { c, arrivals, r, m };
}

test('a reader waiting on a long timer is woken at once by a ring filling past its watermark', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }], {
    collector: c,
    spec: { eventChannel: { mode: 'ringbuf', handler: c.handler, ringOptions: { batchDelayMs: 10_000, maxBatchDelayMs: 10_000 } } },
  });
  m.init(options);
  m.start();
  const r = m.reader('vigil_events');
  assert.equal((r as { woken?: boolean }).woken, true, 'the manager handed the reader the object\'s control map');
  const ctl = m.getMap(RING_CTL_MAP).lookup(Buffer.alloc(4))!;
  assert.equal(ctl.readBigUInt64LE(VIGIL_RING_CTL.wakeup_bytes.offset), BigInt((1 << 20) / 4), 'watermark: a quarter of the 1 MiB ring');

  // One record wakes the idle reader, which then waits 10 s on its timer: records after it stay in the ring.
  triggerGetppid(1);
  const until = Date.now() + 2000;
  while (mode(m) !== TIMER && Date.now() < until) await sleep(2);
  assert.equal(mode(m), TIMER, 'the reader waits on its timer and says so');
  triggerGetppid(100);
  await sleep(200);
  assert.equal(c.events.length, 0, 'a small batch waits for the timer (no wakeup per record)');
  assert.equal(r.stats().wakeups, 1);

  // 10,000 records of 64 bytes: past the 256 KiB watermark. The BPF side forces a wakeup; all are drained
  // long before the 10 s timer.
  // The wait is bounded below the 10 s timer: only a forced wakeup can deliver them in time (and the count
  // below says it was one), however slow a loaded machine is.
  triggerGetppid(10_000);
  await c.until(() => c.events.length >= 10_101, '10,101 events before the reader\'s 10 s timer', 8000);
  // One interrupt per wait: the producer that forces the wakeup marks the reader busy for the others.
  assert.equal(r.stats().forcedWakeups, 1);
  c.events.forEach((e, i) => assert.equal(e.seq, BigInt(i), `record ${i} out of order`));
  assert.equal(m.kernelCounters()!.reserveFailed, 0);
});

test('a reader that goes idle between bursts misses no wakeup', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }], {
    collector: c,
    spec: { eventChannel: { mode: 'ringbuf', handler: c.handler, ringOptions: { batchDelayMs: 1, maxBatchDelayMs: 2 } } },
  });
  m.init(options);
  m.start();
  const r = m.reader('vigil_events');
  // Each burst is followed by silence long enough for the reader to find the ring empty and go back to
  // poll; the next burst's first record must wake it (a lost wakeup would leave it asleep: timeout).
  let sent = 0;
  for (let i = 0; i < 200; i++) {
    const n = 1 + (i % 7);
    triggerGetppid(n);
    sent += n;
    await c.until(() => c.events.length >= sent, `${sent} events after burst ${i}`, 2000);
    const idle = Date.now() + 1000;
    while (mode(m) !== POLL && Date.now() < idle) await sleep(1);
    assert.equal(mode(m), POLL, `idle after burst ${i}: the reader is in poll, wakeups on`);
  }
  assert.equal(c.events.length, sent);
  assert.ok(r.stats().wakeups >= 200, `one wakeup per burst at least: ${r.stats().wakeups}`);
  assert.equal(r.stats().forcedWakeups, 0, 'small bursts never reach the watermark');
});

test('a paused reader holds records without wakeups; resume drains what came meanwhile', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const c = new Collector();
  const { m, options } = testManager(t, [{ fn: 'tp_getppid' }], { collector: c, spec: { eventChannel: { mode: 'ringbuf', handler: c.handler } } });
  m.init(options);
  m.start();
  triggerGetppid(3);
  await c.until(() => c.events.length >= 3, '3 events');
  const r = m.reader('vigil_events');
  r.pause(); // the reader only: the probes stay attached and keep writing
  assert.equal(mode(m), BUSY, 'paused: the sensors are told not to wake the reader');
  triggerGetppid(50);
  await sleep(100);
  assert.equal(c.events.length, 3, 'nothing delivered while paused');
  r.resume();
  await c.until(() => c.events.length >= 53, '53 events after resume', 2000);
  assert.equal(c.events.length, 53);
  r.stop();
  assert.equal(mode(m), POLL, 'a stopped reader leaves the kernel\'s default wakeups behind');
});

test('a reader with credit takes no more records than its consumer has room for, and never waits long for room', async (t) => {
  if (!privileged(t, NEEDS)) return;
  // The consumer may have received `limit` records so far: its room is what is left of that. The wait for
  // room is long enough (1 s) that a test side slowed by a loaded machine still looks before it runs out.
  let limit = 40;
  const { c, arrivals, r, m } = creditReader(t, (received) => Math.max(0, limit - received), { creditWaitMs: 1000 });
  await c.until(() => c.events.length >= 40, '40 events');
  await sleep(100); // well within creditWaitMs
  assert.equal(c.events.length, 40, 'no record beyond the room: the other 60 wait in the ring');
  assert.ok(r.stats().creditWaits > 0, 'the reader counted its waits');
  limit = 65;
  await c.until(() => c.events.length >= 65, '25 more once there is room');
  await sleep(50);
  assert.equal(c.events.length, 65);
  assert.equal(r.stats().pastRoom, 0, 'no pass went past the room yet');
  // No room for longer than creditWaitMs: the reader drains anyway (a consumer never stalls it). It starves
  // from its first look after the 65th record was delivered, so the 66th comes creditWaitMs after that
  // delivery at the earliest. Measured between the deliveries themselves: a test side delayed by a loaded
  // machine cannot shorten it.
  await c.until(() => c.events.length >= 100, 'the rest, after the wait', 5000);
  const waited = arrivals[65]! - arrivals[64]!;
  assert.ok(waited >= 1000, `drained only once the wait ran out (${waited.toFixed(1)} ms between the 65th and 66th records)`);
  assert.equal(r.stats().pastRoom, 1, 'that one pass past the room is counted');
  c.events.forEach((e, i) => assert.equal(e.seq, BigInt(i), `record ${i} out of order`));
  assert.equal(m.kernelCounters()!.reserveFailed, 0);
});

test('a reader with credit waits for room up to its stall limit when nobody else is held back', async (t) => {
  if (!privileged(t, NEEDS)) return;
  // Whether another consumer could take records now (another sink with room, a stream): flipped below.
  let others = false;
  const { c, arrivals, r, m } = creditReader(t, (received) => Math.max(0, 40 - received), { creditWaitMs: 50, holdsBack: () => others, creditStallMs: 60_000 });
  await c.until(() => c.events.length >= 40, '40 events');
  // Six times creditWaitMs: a reader that someone else waits on would have gone past the room long ago.
  await sleep(300);
  assert.equal(c.events.length, 40, 'nobody held back: the other 60 wait in the ring, past creditWaitMs');
  assert.equal(r.stats().pastRoom, 0);
  // Someone could take records now: the wait is creditWaitMs again, which has run out, so the next look drains.
  const flipped = performance.now();
  others = true;
  await c.until(() => c.events.length >= 100, 'the rest, once another consumer is held back', 5000);
  assert.ok(arrivals[40]! - arrivals[39]! >= 300, 'the 41st record waited in the ring');
  assert.ok(arrivals[40]! >= flipped, 'and was read only once someone else was held back');
  assert.equal(r.stats().pastRoom, 1, 'that one pass past the room is counted');
  c.events.forEach((e, i) => assert.equal(e.seq, BigInt(i), `record ${i} out of order`));
  assert.equal(m.kernelCounters()!.reserveFailed, 0);
});

test('a reader with credit drains past the room after its stall limit even when nobody else is held back', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const { c, arrivals, r, m } = creditReader(t, (received) => Math.max(0, 40 - received), { creditWaitMs: 50, holdsBack: () => false, creditStallMs: 600 });
  // A queue without room for creditStallMs is stuck, not slow: the reader goes past it (a stuck sink must
  // not stall the process cache and the rules for as long as the ring takes to fill).
  await c.until(() => c.events.length >= 100, 'the rest, after the stall limit', 5000);
  const waited = arrivals[40]! - arrivals[39]!;
  assert.ok(waited >= 600, `drained only once the stall limit ran out (${waited.toFixed(1)} ms between the 40th and 41st records)`);
  assert.equal(r.stats().pastRoom, 1);
  assert.equal(m.kernelCounters()!.reserveFailed, 0);
});
