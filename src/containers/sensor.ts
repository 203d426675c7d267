// The cgroup sensor as the manager loads it (bpf/cgroup.bpf.c): cgroup creation, removal and task
// migration, BTF tracepoints preferred, raw tracepoints as the fallback.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BpfMap } from '../bpf/map.ts';
import type { ManagerOptions, ManagerSpec } from '../manager/manager.ts';
import { allOf, oneOf } from '../manager/selectors.ts';

export function cgroupSensorSpec(o: { sharedRing?: BpfMap; sharedMaps?: Record<string, BpfMap>; cgroupV1Subsys?: number; attach?: boolean; channel?: 'auto' | 'ringbuf' | 'perf' } = {}): { spec: ManagerSpec; options: ManagerOptions } {
  const kinds = ['mkdir', 'rmdir', 'attach'];
  // In perf mode the agent's shared perf array is the channel (and the agent reads it, not this manager).
  const { vigil_events_perf: sharedPerf, ...otherShared } = o.sharedMaps ?? {};
  return {
    spec: {
      name: 'cgroup',
      object: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build/bpf/cgroup.bpf.o'),
      probes: kinds.flatMap((k) => [{ fn: `cgroup_${k}_btf` }, { fn: `cgroup_${k}_raw` }]),
      eventChannel: sharedPerf ? { mode: 'perf', sharedPerf } : { mode: o.channel ?? 'auto', sharedRing: o.sharedRing },
    },
    options: {
      activatedProbes: [allOf(...kinds.map((k) => oneOf(`cgroup_${k}_btf`, `cgroup_${k}_raw`)))],
      constantEditors: [
        { name: 'emit_attach', value: o.attach === false ? 0 : 1, failOnMissing: true },
        { name: 'vigil_cgroup_v1_subsys', value: o.cgroupV1Subsys ?? 0xffffffff, failOnMissing: true },
      ],
      mapEditors: otherShared,
    },
  };
}
