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
/** The boot clock (ms) when the offset was measured. */
let measuredBootMs = 0;

/** Current CLOCK_BOOTTIME in ns. */
export function bootNowNs(): number {
  return readClock(CLOCK_BOOTTIME) * 1e6;
}

/** Re-measures the boot-time -> wall-clock offset. */
export function calibrate(): number {
  const a = readClock(CLOCK_REALTIME);
  const b = readClock(CLOCK_BOOTTIME);
  offsetMs = a - b;
  measuredBootMs = b;
  return offsetMs;
}

/** Wall-clock ms since the epoch of a boot-time ns timestamp. */
export function bootToEpochMs(ktimeNs: number): number {
  // Events are stamped as they happen, so their own boot time says when a minute has passed: no clock is read
  // per event (Date.now() alone cost ~50 ns, bench/pipeline). An event more than a minute older than the
  // measurement does not re-measure.
  const ms = ktimeNs / 1e6;
  if (offsetMs === undefined || ms - measuredBootMs > 60_000) calibrate();
  return offsetMs! + ms;
}
