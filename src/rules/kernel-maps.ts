// The kernel's kill rule maps, as both sensors hold them: the syscall sensor's (sys_kill_rules,
// sys_kill_values, its set in force in sys_config) for file events, the process sensor's (proc_kill_rules,
// proc_kill_values, proc_kill_config) for execs. Each map holds two sets; a new set is written into the half
// not in force, and the update of the set's struct vigil_kill_set switches halves (bpf/include/events.h), so
// that no event is checked against half of one set and half of another. Selectors come from kernel.ts; where
// rules about containers hold is each sensor's scopes map (kill-scopes.ts).
import { InvalidArgumentError } from '../bpf/errors.ts';
import { u32Key as u32, type BpfMap } from '../bpf/map.ts';
import { SIZEOF, SYSCALL_KILL_RULE, SYSCALL_KILL_VALUE, VIGIL_DENY_ADDR, VIGIL_KILL_FIELD, VIGIL_KILL_RET, VIGIL_KILL_SET } from '../events/layout.generated.ts';
import { maskByte } from './cidr.ts';
import { KILL_RULES_MAX, KILL_VALUES_MAX, type KernelSelector, type KillField } from './kernel.ts';
import { KillScopes } from './kill-scopes.ts';

/**
 * In-kernel kill rules to write: each rule with the number the kernel reports it by (src/events/kill.ts),
 * its signal and its selector.
 */
export interface KernelKillSet {
  /** signal 0: a deny rule (selector.denies), which denies the connect it matches. */
  rules: { id: number; signal: number; selector: KernelSelector }[];
  /** rules.enforce is off: matches are reported, nothing is sent. */
  dryRun: boolean;
  /** Thread group ids never signalled besides pid 1 (the agent and its ancestors, nearest first). */
  protect: readonly number[];
}

export const NO_KILL_RULES: KernelKillSet = { rules: [], dryRun: true, protect: [] };

/**
 * Throws InvalidArgumentError when these selectors do not fit one sensor's kill maps: at most
 * VIGIL_KILL_RULES_MAX rules, comparing with VIGIL_KILL_VALUES_MAX strings in all. The agent asks before it
 * changes anything (a reload that would not fit changes nothing); KillTable.write asks again.
 */
export function checkKillFits(selectors: readonly KernelSelector[], what = 'kill rules'): void {
  if (selectors.length > KILL_RULES_MAX) throw new InvalidArgumentError(`${what}: ${selectors.length} rules kill in the kernel; at most ${KILL_RULES_MAX} can`);
  const values = selectors.reduce((n, s) => n + s.terms.reduce((m, t) => m + t.values.length, 0), 0);
  if (values > KILL_VALUES_MAX) throw new InvalidArgumentError(`${what}: their conditions compare with ${values} strings; at most ${KILL_VALUES_MAX} can be (all in-kernel rules of a sensor together)`);
}

/**
 * A sensor's kill rules in force, for status: how many, the strings they compare with, and the container
 * cgroups where some rule about containers holds.
 */
export interface KillRulesStatus {
  rules: number;
  values: number;
  /** Rules about containers, and the container cgroups where some of them hold. */
  scoped: number;
  cgroups: number;
  /** Of the rules, deny rules (connects). */
  denies: number;
}
export const NO_KILL_STATUS: KillRulesStatus = Object.freeze({ rules: 0, values: 0, scoped: 0, cgroups: 0, denies: 0 });

/** A sensor's set in force (struct vigil_kill_set): which half of its maps, and how much of it. */
export interface KillState {
  base: number;
  rules: number;
  values: number;
  protect: readonly number[];
  /** Of the rules, those about containers (status). */
  scoped?: number;
  /** Of the rules, deny rules (the connect hooks return at once without). */
  denies?: number;
  /** Of the values, those about argv (the exec hook indexes argv only with some). */
  argvValues?: number;
}
export const NO_KILL: KillState = { base: 0, rules: 0, values: 0, protect: [] };
const KILL_PROTECT_MAX = VIGIL_KILL_SET.protect.size / 4;

/** Writes struct vigil_kill_set for `k` into `b` at `at` (in sys_config, or alone: proc_kill_config). */
export function encodeKillState(k: KillState, b: Buffer = Buffer.alloc(SIZEOF.vigil_kill_set), at = 0): Buffer {
  const S = VIGIL_KILL_SET;
  b.writeUInt32LE(k.base, at + S.base.offset);
  b.writeUInt32LE(k.rules, at + S.rule_count.offset);
  b.writeUInt32LE(k.values, at + S.value_count.offset);
  const protect = k.protect.slice(0, KILL_PROTECT_MAX);
  b.writeUInt32LE(protect.length, at + S.protect_count.offset);
  b.writeUInt32LE(k.denies ?? 0, at + S.deny_count.offset);
  b.writeUInt32LE(k.argvValues ?? 0, at + S.argv_count.offset);
  protect.forEach((pid, i) => b.writeUInt32LE(pid, at + S.protect.offset + 4 * i));
  return b;
}

const KILL_FIELD_CODE: Record<KillField, number> = {
  path: VIGIL_KILL_FIELD.PATH,
  file: VIGIL_KILL_FIELD.FILE,
  comm: VIGIL_KILL_FIELD.COMM,
  exe: VIGIL_KILL_FIELD.EXE,
  parentComm: VIGIL_KILL_FIELD.PARENT_COMM,
  argv: VIGIL_KILL_FIELD.ARGV,
  raddr: VIGIL_KILL_FIELD.RADDR,
  upath: VIGIL_KILL_FIELD.UPATH,
  path2: VIGIL_KILL_FIELD.PATH2,
  file2: VIGIL_KILL_FIELD.FILE2,
  rport: VIGIL_KILL_FIELD.RPORT,
  laddr: VIGIL_KILL_FIELD.LADDR,
  lport: VIGIL_KILL_FIELD.LPORT,
};
const AF_INET = 2;
const AF_INET6 = 10;
const KILL_RET_CODE: Record<KernelSelector['ret'], number> = { any: VIGIL_KILL_RET.ANY, ok: VIGIL_KILL_RET.OK, err: VIGIL_KILL_RET.ERR };

/** The bytes of one rules map entry; `ops` is the rule's file ops as bits (0 for an exec rule). */
function encodeKillRule(id: number, signal: number, sel: KernelSelector, ops: bigint, dryRun: boolean): Buffer {
  const R = SYSCALL_KILL_RULE;
  const b = Buffer.alloc(SIZEOF.syscall_kill_rule);
  b.writeBigUInt64LE(ops, R.ops.offset);
  b.writeUInt32LE(id, R.id.offset);
  b.writeUInt32LE(signal, R.signal.offset);
  b.writeUInt32LE(sel.want, R.want_flags.offset);
  b.writeUInt32LE(sel.deny, R.deny_flags.offset);
  b.writeUInt32LE(KILL_RET_CODE[sel.ret], R.ret.offset);
  b.writeUInt32LE(sel.terms.length, R.terms.offset);
  b.writeUInt32LE(sel.terms.reduce((m, t, i) => (t.negate ? m | (1 << i) : m), 0), R.negate.offset);
  b.writeUInt32LE(dryRun ? 1 : 0, R.dry_run.offset);
  b.writeUInt32LE(sel.container ? 1 : 0, R.container.offset);
  return b;
}

/**
 * The bytes of one values map entry: the string zero-padded, its mask over its bytes (and its NUL when
 * exact). An address (a connect's peer, a bind's own) is a struct vigil_deny_addr, masked over its family
 * and the block's bits; a port its two bytes, host order.
 */
function encodeKillValue(rule: number, term: number, field: KillField, v: KernelSelector['terms'][number]['values'][number]): Buffer {
  const V = SYSCALL_KILL_VALUE;
  const b = Buffer.alloc(SIZEOF.syscall_kill_value);
  b.writeUInt32LE(rule, V.rule.offset);
  b.writeUInt32LE(term, V.term.offset);
  b.writeUInt32LE(KILL_FIELD_CODE[field], V.field.offset);
  if (field === 'raddr' || field === 'laddr') {
    const blk = v.block;
    if (!blk) throw new InvalidArgumentError(`deny rule: "${v.s}" is no address block`);
    const A = VIGIL_DENY_ADDR;
    b.writeUInt16LE(blk.family === 4 ? AF_INET : AF_INET6, V.prefix.offset + A.family.offset);
    b.writeUInt16LE(0xffff, V.mask.offset + A.family.offset);
    blk.bytes.forEach((x, i) => {
      b[V.prefix.offset + A.addr.offset + i] = x;
      b[V.mask.offset + A.addr.offset + i] = maskByte(blk.bits, i);
    });
  } else if (field === 'rport' || field === 'lport') {
    b.writeUInt16LE(Number(v.s), V.prefix.offset);
    b.writeUInt16LE(0xffff, V.mask.offset);
  } else if (putMasked(b, V, v.s, v.exact) === undefined) throw new InvalidArgumentError(`kill rule: "${v.s}" is longer than ${V.prefix.size - 1} bytes`);
  return b;
}

/**
 * Writes `s` into an entry's `prefix` field, zero-padded, and 0xff into its `mask` for each of its bytes, and
 * for its NUL when `whole` (a whole-string match): how the kernel compares, 8 bytes at a time, without length
 * math (masked_prefix in bpf/include/match.h). Returns its byte length, or undefined when it does not fit.
 */
export function putMasked(b: Buffer, f: { prefix: { offset: number; size: number }; mask: { offset: number } }, s: string, whole: boolean): number | undefined {
  const n = b.write(s, f.prefix.offset, f.prefix.size, 'utf8');
  const masked = n + (whole ? 1 : 0);
  if (n !== Buffer.byteLength(s) || masked > f.prefix.size) return undefined;
  b.fill(0xff, f.mask.offset, f.mask.offset + masked);
  return n;
}

/** One sensor's kill rules, values and scopes maps, and the set in force in them. */
export class KillTable {
  readonly #rules: BpfMap;
  readonly #values: BpfMap;
  /** Where its rules about containers hold (absent: an object without a scopes map; such rules are refused). */
  readonly scopes: KillScopes | undefined;
  #state: KillState = NO_KILL;

  constructor(rules: BpfMap, values: BpfMap, scopes?: BpfMap) {
    this.#rules = rules;
    this.#values = values;
    this.scopes = scopes && new KillScopes(scopes);
  }

  /** The set in force (what the sensor's struct vigil_kill_set says). */
  get state(): KillState {
    return this.#state;
  }

  /** What is in force, for status. */
  get status(): KillRulesStatus {
    const s = this.#state;
    return { rules: s.rules, values: s.values, scoped: s.scoped ?? 0, cgroups: this.scopes?.cgroupsIn(s.base) ?? 0, denies: s.denies ?? 0 };
  }

  /**
   * Writes `set` into the half of the maps not in force and returns the state that puts it in force, for the
   * caller to write into its struct vigil_kill_set, then to hand to commit(). `opsOf` gives a rule's file ops
   * as bits. Throws InvalidArgumentError when the set does not fit (nothing is written) and SyscallError (map
   * update; the set in force is untouched).
   */
  write(set: KernelKillSet, opsOf: (sel: KernelSelector) => bigint, what?: string): KillState {
    checkKillFits(
      set.rules.map((r) => r.selector),
      what,
    );
    const scoped = set.rules.find((r) => r.selector.container);
    if (scoped && !this.scopes) throw new InvalidArgumentError(`${what ?? 'kill rules'}: this sensor object has no scopes map for a rule about containers (${scoped.selector.container!.text})`);
    const values = set.rules.flatMap((r, i) => r.selector.terms.flatMap((t, j) => t.values.map((v) => encodeKillValue(i, j, t.field, v))));
    const rules = set.rules.map((r) => encodeKillRule(r.id, r.signal, r.selector, opsOf(r.selector), set.dryRun));
    const base = this.#state.base ? 0 : 1; // the half not in force
    rules.forEach((b, i) => this.#rules.update(u32(base * KILL_RULES_MAX + i), b));
    values.forEach((b, i) => this.#values.update(u32(base * KILL_VALUES_MAX + i), b));
    this.scopes?.setHalf(base, set.rules.map((r) => r.selector));
    return {
      base,
      rules: rules.length,
      values: values.length,
      protect: set.protect,
      scoped: set.rules.filter((r) => r.selector.container).length,
      denies: set.rules.filter((r) => r.selector.denies).length,
      argvValues: set.rules.reduce((n, r) => n + r.selector.terms.reduce((m, t) => m + (t.field === 'argv' ? t.values.length : 0), 0), 0),
    };
  }

  /** The state write() returned is in force now. */
  commit(next: KillState): void {
    this.#state = next;
  }
}
