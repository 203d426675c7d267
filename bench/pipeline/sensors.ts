// bench/pipeline: the agent's kernel side without the agent: the shared maps (ring buffer, loss counters,
// container cgroups) and the process, cgroup and syscall sensors loaded onto them exactly as
// src/agent/agent.ts loads them, for the recorder (which reads the ring itself) and for the sensor host of
// the C reference consumer (which pins the ring for it). Nothing reads the ring here.
import { MapType } from '../../src/bpf/constants.ts';
import { BpfMap } from '../../src/bpf/map.ts';
import { ensureBpffs, ensureTracefs } from '../../src/bpf/mounts.ts';
import { syscallSensorConfig, type VigilConfig } from '../../src/config/config.ts';
import { detectCgroupLayout } from '../../src/containers/cgroups.ts';
import { cgroupSensorSpec } from '../../src/containers/sensor.ts';
import { Manager } from '../../src/manager/manager.ts';
import { ProcessResolver } from '../../src/process/resolver.ts';
import { SyscallSensor } from '../../src/syscalls/sensor.ts';

export interface LoadedSensors {
  ring: BpfMap;
  stats: BpfMap;
  /** Detaches every sensor (no new records); the maps stay readable. Idempotent. */
  detach(): void;
  /** Detaches, then closes the maps. Idempotent. */
  close(): void;
  /** vigil_stats summed over CPUs: records emitted and reservations that failed (ring full). */
  kernel(): { emitted: number; reserveFailed: number };
}

/**
 * Creates the shared maps (a ring of `ringBytes`) and loads the sensors of `cfg` onto them. Throws what the
 * loaders throw (PermissionError, VerifierError, ...), after releasing whatever was loaded.
 */
export function loadSensors(cfg: VigilConfig, ringBytes: number): LoadedSensors {
  ensureBpffs();
  ensureTracefs();
  const layout = detectCgroupLayout();
  const maps: BpfMap[] = [];
  const managers: Manager[] = [];
  let resolver: ProcessResolver | undefined;
  let syscalls: SyscallSensor | undefined;
  let detached = false;
  let closed = false;
  const detach = () => {
    if (detached) return;
    detached = true;
    syscalls?.stop();
    for (const m of [...managers].reverse()) m.stop();
    resolver?.stop();
  };
  const close = () => {
    if (closed) return;
    detach();
    closed = true;
    for (const m of maps) m.close();
  };
  try {
    const ring = BpfMap.create({ name: 'vigil_events', type: MapType.RINGBUF, keySize: 0, valueSize: 0, maxEntries: ringBytes });
    maps.push(ring);
    const stats = BpfMap.create({ name: 'vigil_stats', type: MapType.PERCPU_ARRAY, keySize: 4, valueSize: 8, maxEntries: 8 });
    maps.push(stats);
    const lost = BpfMap.create({ name: 'vigil_lost', type: MapType.PERCPU_ARRAY, keySize: 4, valueSize: 8, maxEntries: 64 });
    maps.push(lost);
    const containers = BpfMap.create({ name: 'vigil_containers', type: MapType.HASH, keySize: 8, valueSize: 4, maxEntries: 16384 });
    maps.push(containers);
    const shared = { vigil_stats: stats, vigil_lost: lost, vigil_containers: containers };
    resolver = new ProcessResolver({
      mode: 'bpf',
      sensor: { maxArgsBytes: cfg.process.maxArgsBytes, maxEnvBytes: cfg.process.maxEnvBytes, threads: cfg.process.threads, credentials: cfg.process.credentials },
    });
    resolver.start({ sharedRing: ring, sharedMaps: shared, cgroupV1Subsys: layout.v1SubsysId });
    if (cfg.containers.enabled) {
      const cg = cgroupSensorSpec({ sharedRing: ring, sharedMaps: shared, cgroupV1Subsys: layout.v1SubsysId });
      const m = new Manager(cg.spec);
      managers.push(m);
      m.init(cg.options);
      m.start();
    }
    syscalls = new SyscallSensor(syscallSensorConfig(cfg), { sharedRing: ring, containersMap: containers, sharedMaps: shared, cgroupV1Subsys: layout.v1SubsysId });
    syscalls.start();
    return {
      ring,
      stats,
      detach,
      close,
      kernel: () => ({ emitted: stats.counter(2), reserveFailed: stats.counter(0) }),
    };
  } catch (err) {
    close();
    throw err;
  }
}
