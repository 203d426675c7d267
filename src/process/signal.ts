// Signalling one process instance, never another that reuses its pid. The pid is pinned first
// (pidfd_open), then /proc/<pid>/stat must show the start time the caller knows: a pidfd opened before that
// check refers to the instance the check saw, and pidfd_send_signal reaches that instance alone, however soon
// the pid is reused afterwards. kill(2) by pid would be checked and sent at two different moments.
import fs from 'node:fs';
import os from 'node:os';
import { errno, pidfd } from '../bpf/ffi.ts';
import { PF_KTHREAD, nsInode, parseStat, readPpid, readText } from './procfs.ts';
import { INIT_PIDNS } from './types.ts';

export type SignalOutcome =
  | { result: 'sent' }
  /** The instance has exited (its pid is free or another process's now). */
  | { result: 'gone' }
  | { result: 'refused'; reason: string }
  | { result: 'failed'; reason: string };

const ERRNO_NAMES = new Map(Object.entries(os.constants.errno).map(([k, v]) => [v, k]));

/** The signals an action may send, by name (os.constants.signals has every one of this platform). */
export function signalNumber(name: string): number | undefined {
  const n = (os.constants.signals as Record<string, number>)[name];
  return typeof n === 'number' ? n : undefined;
}

/**
 * Sends `signal` to the process `pid` that started at `startTicks` (clock ticks since boot, /proc's unit; the
 * cache's process key is "<pid>:<startTicks>"). Kernel threads are refused. Never throws.
 */
export function signalProcess(pid: number, startTicks: number, signal: number, procRoot = '/proc'): SignalOutcome {
  let fns: ReturnType<typeof pidfd>;
  try {
    fns = pidfd();
  } catch (err) {
    return { result: 'failed', reason: (err as Error).message };
  }
  const fd = fns.pidfd_open(pid, 0);
  if (fd < 0) {
    const e = errno();
    return e === os.constants.errno.ESRCH ? { result: 'gone' } : { result: 'failed', reason: `pidfd_open: ${ERRNO_NAMES.get(e) ?? e}` };
  }
  try {
    const text = readText(`${procRoot}/${pid}/stat`);
    const st = text ? parseStat(text) : undefined;
    if (!st || st.startTicks !== startTicks) return { result: 'gone' }; // exited, and maybe its pid reused
    if (st.flags & PF_KTHREAD) return { result: 'refused', reason: 'a kernel thread' };
    if (fns.pidfd_send_signal(fd, signal, null, 0) === 0) return { result: 'sent' };
    const e = errno();
    return e === os.constants.errno.ESRCH ? { result: 'gone' } : { result: 'failed', reason: `pidfd_send_signal: ${ERRNO_NAMES.get(e) ?? e}` };
  } finally {
    fns.close(fd);
  }
}

/** `pid` and its ancestors up to init, as /proc has them now (the agent's own line: never to be signalled). */
export function lineOf(pid: number, procRoot = '/proc'): Set<number> {
  const out = new Set<number>();
  for (let p = pid; p > 0 && !out.has(p); p = readPpid(p, NaN, procRoot) ?? 0) out.add(p);
  return out;
}

/**
 * Whether this process is in the host's pid namespace, where the pids events carry (the host's) name the
 * same processes as they do for pidfd_open and /proc. An agent in a container of its own would open its
 * namespace's pid N, another process than the host's pid N.
 */
export function seesHostPids(procRoot = '/proc'): boolean {
  try {
    return nsInode(fs.readlinkSync(`${procRoot}/self/ns/pid`)) === INIT_PIDNS;
  } catch {
    return false;
  }
}
