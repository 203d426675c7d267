// The boot-time → wall-clock offset: measured once a minute of event time, whatever the events' stamps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bootNowNs, bootToEpochMs, calibrate, calibrations } from '../../src/pipeline/clock.ts';

test('a boot time converts to the wall clock of that moment', () => {
  calibrate();
  const now = bootNowNs();
  // Two clocks read a few microseconds apart: the same instant within a second, whatever the machine's load.
  assert.ok(Math.abs(bootToEpochMs(now) - Date.now()) < 1000);
  assert.equal(bootToEpochMs(now + 1.5e9) - bootToEpochMs(now), 1500);
});

test('events stamped ahead of the clock measure the offset once per minute of their time, not once each', () => {
  calibrate();
  const now = bootNowNs();
  const n0 = calibrations();
  // A replayed recording's later passes: two minutes ahead of the clock, 10,000 events over 10 ms.
  for (let i = 0; i < 10_000; i++) bootToEpochMs(now + 120e9 + i * 1e3);
  assert.equal(calibrations() - n0, 1);
  // Within a minute of the event that measured: nothing more.
  for (let i = 0; i < 1000; i++) bootToEpochMs(now + 170e9 + i * 1e3);
  assert.equal(calibrations() - n0, 1);
  // A minute of event time later: once more.
  bootToEpochMs(now + 181e9);
  bootToEpochMs(now + 182e9);
  assert.equal(calibrations() - n0, 2);
});

test('events older than the measurement never measure again', () => {
  calibrate();
  const now = bootNowNs();
  const n0 = calibrations();
  for (let i = 0; i < 10_000; i++) bootToEpochMs(now - 30e9 + i * 1e6);
  assert.equal(calibrations(), n0);
});
