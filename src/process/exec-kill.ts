// The process sensor's in-kernel kill rules on execs (bpf/process.bpf.c, exec_kill_check): the rules and
// strings it compares (proc_kill_rules, proc_kill_values), the set in force (proc_kill_config) and what the
// rules did (proc_kill_stats, per CPU). The selectors come from src/rules/kernel.ts, the encoding from
// src/rules/kernel-maps.ts, shared with the syscall sensor's rules on file events.
import { u32Key, type BpfMap } from '../bpf/map.ts';
import { VIGIL_PROC_KILL_STAT } from '../events/layout.generated.ts';
import type { Manager } from '../manager/manager.ts';
import { encodeKillState, KillTable, type KernelKillSet, type KillRulesStatus } from '../rules/kernel-maps.ts';
import type { KillScopes } from '../rules/kill-scopes.ts';

/** Rules in force, the strings they compare with, the container cgroups where a rule about containers holds, and: */
export interface ExecKillStatus extends KillRulesStatus {
  /** Execs a rule matched (sent, dry-run, refused or failed), and those whose process was signalled: counted even when the ring lost the record. */
  matched: number;
  sent: number;
}

export class ExecKill {
  readonly #table: KillTable;
  readonly #config: BpfMap;
  readonly #stats: BpfMap;

  /** The maps of a loaded process sensor. Throws NotFoundError when the object lacks them. */
  constructor(m: Manager) {
    this.#table = new KillTable(m.getMap('proc_kill_rules'), m.getMap('proc_kill_values'), m.getMap('proc_kill_scopes'));
    this.#config = m.getMap('proc_kill_config');
    this.#stats = m.getMap('proc_kill_stats');
  }

  /**
   * Puts a set of exec kill rules in force (an empty one: none), switching halves as the syscall sensor's
   * do. Throws InvalidArgumentError when it does not fit (nothing changes) and SyscallError (map update; the
   * set in force stays).
   */
  apply(set: KernelKillSet): void {
    const next = this.#table.write(set, () => 0n, 'exec kill rules');
    this.#config.update(u32Key(0), encodeKillState(next));
    this.#table.commit(next);
  }

  /** Where the rules about containers hold (KillScopes.update takes the containers' changes). */
  get scopes(): KillScopes | undefined {
    return this.#table.scopes;
  }

  status(): ExecKillStatus {
    return { ...this.#table.status, matched: this.#stats.counter(VIGIL_PROC_KILL_STAT.MATCHED), sent: this.#stats.counter(VIGIL_PROC_KILL_STAT.SENT) };
  }
}
