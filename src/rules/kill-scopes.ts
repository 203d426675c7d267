// Where a sensor's in-kernel kill rules about containers hold: the cgroups of the containers in which their
// container part (kernel.ts: the conjuncts about `container` and `pod`) is true, as bits in the sensor's
// scopes map (sys_kill_scopes, proc_kill_scopes; struct vigil_kill_scope), which the kernel looks the task's
// cgroup up in (kill_in_scope, bpf/include/match.h). The kernel cannot read a container's name, image or
// pod; the container resolver knows them, and tells of every change (ContainerResolver.watch), so each
// container's bits are worked out again when it appears, gains a cgroup, is enriched or goes. Each entry
// holds a word per half of the kill maps, as the rules do: a new set's bits are written into the half not in
// force, for every container, before the set is put in force (KillTable.write).
import { InvalidArgumentError } from '../bpf/errors.ts';
import { u64Key, type BpfMap } from '../bpf/map.ts';
import { SIZEOF, VIGIL_KILL_SCOPE } from '../events/layout.generated.ts';
import type { ContainerScope, KernelSelector } from './kernel.ts';

/** A container as the kill rules' container parts read it, and the cgroups it has. */
export interface ScopedContainer {
  /** Its id: what identifies it across changes. */
  id: string;
  /** The cgroup ids that resolve to it (none once it expired). */
  cgroupIds: readonly number[];
  /** The rule context's `container` and `pod` for its events ({} for no pod). */
  container: object;
  pod: object;
}

type Tests = readonly (ContainerScope['holds'] | undefined)[];

/** Bit i: test i holds for the container. */
function bitsOf(tests: Tests, c: ScopedContainer): number {
  let bits = 0;
  tests.forEach((t, i) => {
    if (t?.(c.container, c.pod)) bits |= 1 << i;
  });
  return bits;
}

/** One sensor's scopes map, and the containers its entries were worked out from. */
export class KillScopes {
  readonly #map: BpfMap;
  /** The rules' container parts, per half (rule i of that half's set at index i). */
  readonly #tests: [Tests, Tests] = [[], []];
  readonly #containers = new Map<string, ScopedContainer>();
  /** What the map holds, per cgroup id: each half's bits. */
  readonly #entries = new Map<number, [number, number]>();
  /** Entries that could not be written (the map full): the kernel does not kill there, user space does. */
  #failed = 0;

  constructor(map: BpfMap) {
    if (map.valueSize !== SIZEOF.vigil_kill_scope) throw new InvalidArgumentError(`${map.name}: entries of ${map.valueSize} bytes, not struct vigil_kill_scope's ${SIZEOF.vigil_kill_scope}`);
    this.#map = map;
  }

  /**
   * The rules of half `half` (written there by KillTable.write, not in force yet): every known container's
   * bits for that half are written. Throws SyscallError when an update fails.
   */
  setHalf(half: 0 | 1, selectors: readonly KernelSelector[]): void {
    this.#tests[half] = selectors.map((s) => s.container?.holds);
    const next = new Map<number, number>();
    for (const c of this.#containers.values()) {
      const bits = bitsOf(this.#tests[half], c);
      for (const id of c.cgroupIds) next.set(id, bits);
    }
    for (const id of new Set([...this.#entries.keys(), ...next.keys()])) {
      const e = this.#entries.get(id) ?? [0, 0];
      const v: [number, number] = [...e];
      v[half] = next.get(id) ?? 0;
      this.#put(id, v, true);
    }
  }

  /** A container appeared, changed or went (no cgroup ids): its entries, both halves, worked out again. */
  update(c: ScopedContainer): void {
    const before = this.#containers.get(c.id);
    if (c.cgroupIds.length) this.#containers.set(c.id, c);
    else this.#containers.delete(c.id);
    const bits: [number, number] = [bitsOf(this.#tests[0], c), bitsOf(this.#tests[1], c)];
    for (const id of c.cgroupIds) this.#put(id, bits, false);
    for (const id of before?.cgroupIds ?? []) if (!c.cgroupIds.includes(id)) this.#put(id, [0, 0], false);
  }

  /** Cgroups where some rule of half `half` holds (status). */
  cgroupsIn(half: number): number {
    let n = 0;
    for (const v of this.#entries.values()) if (v[half ? 1 : 0]) n++;
    return n;
  }

  /** Entries the map had no room for. */
  get failed(): number {
    return this.#failed;
  }

  /**
   * Writes one cgroup's entry (deletes it when no rule holds there in either half). `strict`: a failed
   * update throws (a set being written: the caller gives up on it); else it is counted, and the kernel
   * leaves that cgroup to user space's kill.
   */
  #put(id: number, v: [number, number], strict: boolean): void {
    const old = this.#entries.get(id);
    if (old && old[0] === v[0] && old[1] === v[1]) return;
    const key = u64Key(id);
    try {
      if (!v[0] && !v[1]) {
        if (old) this.#map.delete(key);
        this.#entries.delete(id);
        return;
      }
      const b = Buffer.alloc(SIZEOF.vigil_kill_scope);
      b.writeUInt16LE(v[0], VIGIL_KILL_SCOPE.rules.offset);
      b.writeUInt16LE(v[1], VIGIL_KILL_SCOPE.rules.offset + 2);
      this.#map.update(key, b);
      this.#entries.set(id, v);
    } catch (err) {
      if (strict) throw err;
      this.#failed++;
    }
  }
}
