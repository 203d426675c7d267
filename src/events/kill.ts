// What an in-kernel kill rule did to the process of a file event (file_event.kill_rule, kill_signal and the
// VIGIL_SYSF_KILL_* flags) or of an exec (exec_event.kill_rule, kill_signal, kill_result), as the event's
// `kill` member: {rule, signal, result}. The kernel reports a rule by the number user space gave it when it
// wrote the rules (src/rules/kernel-maps.ts); the names of those numbers are kept here, those of the sets
// written before too, since a record may come from a set replaced since.
import os from 'node:os';
import { EXEC_EVENT, FILE_EVENT, NET_EVENT, VIGIL_KILL_RESULT as R, VIGIL_SYS_FLAGS as F } from './layout.generated.ts';

/** The event's `kill` member: the rule that matched in the kernel, the signal, and what became of it. */
export interface KernelKill {
  rule: string;
  signal: string;
  /** sent: before the syscall returned; dry-run: rules.enforce is off; refused: a protected process; failed: bpf_send_signal failed. */
  result: 'sent' | 'dry-run' | 'refused' | 'failed';
}

/** A connect's `deny` member: the in-kernel deny rule that matched, and what became of the connect. */
export interface KernelDeny {
  rule: string;
  /** denied: the connect failed with EPERM, no packet sent; dry-run: rules.enforce is off; refused: a protected process. */
  result: 'denied' | 'dry-run' | 'refused';
}

/** Rule names by number, oldest first (bounded: numbers are not reused before 65535 more are given). */
const names = new Map<number, string>();
const NAMES_MAX = 4096;
let last = 0;

/** A new number for the rule `name` (1..65535, the kernel's u16), remembered for the records that report it. */
export function killRuleNumber(name: string): number {
  last = (last % 0xffff) + 1;
  names.delete(last);
  names.set(last, name);
  while (names.size > NAMES_MAX) names.delete(names.keys().next().value!);
  return last;
}

const SIGNAL_NAMES = new Map(Object.entries(os.constants.signals).map(([k, v]) => [v as number, k]));

const RESULTS: Record<number, KernelKill['result']> = { [R.SENT]: 'sent', [R.DRY_RUN]: 'dry-run', [R.REFUSED]: 'refused', [R.FAILED]: 'failed' };

/** The `kill` member of an event whose kill rule `rule` with signal `signal` did `result` (enum vigil_kill_result); undefined when no kill rule matched. */
export function kernelKillOf(result: number, rule: number, signal: number): KernelKill | undefined {
  const r = RESULTS[result];
  if (!rule || !r) return undefined;
  return { rule: names.get(rule) ?? `#${rule}`, signal: SIGNAL_NAMES.get(signal) ?? String(signal), result: r };
}

/** A file event's kill result, from its VIGIL_SYSF_KILL_* flag (one bit per result: bpf/syscalls.bpf.c). */
const fileKillResult = (evFlags: number): number =>
  evFlags & F.KILL_SENT ? R.SENT : evFlags & F.KILL_DRY_RUN ? R.DRY_RUN : evFlags & F.KILL_REFUSED ? R.REFUSED : evFlags & F.KILL_FAILED ? R.FAILED : R.NONE;

/** The `kill` member of the file record at `o` of `v`, whose ev_flags are `evFlags` (the decoder, the byte writer and the guards' readers read it alike). */
export const kernelKillAt = (v: DataView, o: number, evFlags: number): KernelKill | undefined =>
  kernelKillOf(fileKillResult(evFlags), v.getUint16(o + FILE_EVENT.kill_rule.offset, true), v.getUint8(o + FILE_EVENT.kill_signal.offset));

/** The `deny` member of the connect record at `o` of `v`, whose ev_flags are `evFlags` (same flags as a file event's kill). */
export function kernelDenyAt(v: DataView, o: number, evFlags: number): KernelDeny | undefined {
  const rule = v.getUint16(o + NET_EVENT.kill_rule.offset, true);
  const r = fileKillResult(evFlags);
  const result = r === R.SENT ? 'denied' : r === R.DRY_RUN ? 'dry-run' : r === R.REFUSED ? 'refused' : undefined;
  if (!rule || !result) return undefined;
  return { rule: names.get(rule) ?? `#${rule}`, result };
}

/** The `kill` member of the exec record at `o` of `v`. */
export const execKillAt = (v: DataView, o: number): KernelKill | undefined =>
  kernelKillOf(v.getUint8(o + EXEC_EVENT.kill_result.offset), v.getUint16(o + EXEC_EVENT.kill_rule.offset, true), v.getUint8(o + EXEC_EVENT.kill_signal.offset));
