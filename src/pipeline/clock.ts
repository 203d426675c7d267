// Kernel timestamps are boot-time nanoseconds (CLOCK_BOOTTIME, which keeps counting across suspend); users
// want wall-clock times. The offset between the two is measured at start and re-measured now and then
// (NTP slews the wall clock), never per event.
import koffi from 'koffi';

let clockGettime: ((clk: number, ts: Buffer) => number) | undefined;
const CLOCK_REALTIME = 0;
const CLOCK_BOOTTIME = 7;
const ts = Buffer.alloc(16);

function readClock(clk: number): number {
  clockGettime ??= koffi.load('libc.so.6').func('int clock_gettime(int clk, _Out_ uint8_t *ts)') as (clk: number, ts: Buffer) => number;
  clockGettime(clk, ts);
  return Number(ts.readBigInt64LE(0)) * 1e3 + Number(ts.readBigInt64LE(8)) / 1e6; // ms
}

let offsetMs: number | undefined;
const RECHECK_MS = 60_000;
/**
 * Events stamped past this boot time (ms) measure the offset again: a minute after the last measurement, or
 * after the event that asked for it when that one was newer than the clock (a replayed recording's shifted
 * passes). Measured against the clock alone, such events re-measured on every event (two clock reads through
 * the FFI, ~270 ns against ~7) until the clock caught up with them.
 */
let recheckMs = -Infinity;
/** Offset measurements so far (tests). */
let measurements = 0;

/** Current CLOCK_BOOTTIME in ns. */
export function bootNowNs(): number {
  return readClock(CLOCK_BOOTTIME) * 1e6;
}

/** Re-measures the boot-time -> wall-clock offset. */
export function calibrate(): number {
  const a = readClock(CLOCK_REALTIME);
  const b = readClock(CLOCK_BOOTTIME);
  offsetMs = a - b;
  recheckMs = b + RECHECK_MS;
  measurements++;
  return offsetMs;
}

/** Wall-clock ms since the epoch of a boot-time ns timestamp. */
export function bootToEpochMs(ktimeNs: number): number {
  // Events are stamped as they happen, so their own boot time says when a minute has passed: no clock is read
  // per event (Date.now() alone cost ~50 ns, bench/pipeline). An event older than the measurement does not
  // re-measure.
  const ms = ktimeNs / 1e6;
  if (offsetMs === undefined || ms > recheckMs) {
    calibrate();
    if (ms + RECHECK_MS > recheckMs) recheckMs = ms + RECHECK_MS;
  }
  return offsetMs! + ms;
}

/** How often the offset has been measured (tests: events ahead of the clock measure it once a minute). */
export function calibrations(): number {
  return measurements;
}
