// The process sensor as the manager loads it: which programs, which fallbacks, which limits. Exec, fork and
// exit prefer BTF tracepoints and fall back to raw tracepoints; credential changes prefer fentry, then a
// kprobe on commit_creds, and only then the syscall-exit tracepoints (which slow every syscall of the
// machine while attached, so they can be turned off).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '../bpf/errors.ts';
import { feature, resolvePathReads } from '../bpf/features.ts';
import type { BpfMap } from '../bpf/map.ts';
import { numPossibleCpus } from '../bpf/map.ts';
import type { EventChannelSpec, ManagerOptions, ManagerSpec } from '../manager/manager.ts';
import { allOf, bestEffort, oneOf, type ProbesSelector } from '../manager/selectors.ts';
import type { RecordHandler } from '../ringbuf/ringbuf.ts';

export const ARGS_CAP = 128 * 1024; // VIGIL_ARGS_CAP in events.h
export const ENV_CAP = 32 * 1024; // VIGIL_ENV_CAP
/** Perf buffer records carry a 16-bit size: exec records must stay below it there. */
const PERF_ARGS = 40 * 1024;
const PERF_ENV = 16 * 1024;

export interface ProcessSensorOptions {
  /** Most argv bytes captured per exec (default and maximum 128 KiB: MAX_ARG_STRLEN). */
  maxArgsBytes?: number;
  /** Most envp bytes captured per exec; 0 turns env capture off (default 32 KiB). */
  maxEnvBytes?: number;
  /** Report thread creation and thread exits too (default true). */
  threads?: boolean;
  /** Track credential changes (default true). */
  credentials?: boolean;
  /** Force a hook family (tests, diagnostics): 'btf' or 'raw'. Default: the best this kernel has. */
  hooks?: 'auto' | 'btf' | 'raw';
  /** Event channel: 'auto' picks the ring buffer where the kernel has one. */
  channel?: 'auto' | 'ringbuf' | 'perf';
}

export const CREDS_SYSCALLS = ['setuid', 'setgid', 'setreuid', 'setregid', 'setresuid', 'setresgid', 'setfsuid', 'setfsgid', 'capset'] as const;

export function processObjectPath(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build/bpf/process.bpf.o');
}

function checkLimit(name: string, v: number | undefined, cap: number): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 0 || v > cap) throw new InvalidArgumentError(`process.${name} must be an integer between 0 and ${cap}, got ${v}`);
  return v;
}

/**
 * The manager spec and options for the process sensor. `handler` receives every record when the sensor
 * owns its channel; with `sharedRing` the records go to that ring and its owner reads them.
 */
export function processSensorSpec(
  o: ProcessSensorOptions & {
    handler?: RecordHandler;
    sharedRing?: BpfMap;
    /** Maps shared with the agent's other sensors (vigil_stats, vigil_lost, vigil_containers). */
    sharedMaps?: Record<string, BpfMap>;
    /** vigil_cgroup_v1_subsys (src/containers/cgroups.ts); default: cgroup v2 ids. */
    cgroupV1Subsys?: number;
    objectPath?: string;
  } = {},
): { spec: ManagerSpec; options: ManagerOptions } {
  let maxArgs = checkLimit('maxArgsBytes', o.maxArgsBytes, ARGS_CAP) ?? ARGS_CAP;
  let maxEnv = checkLimit('maxEnvBytes', o.maxEnvBytes, ENV_CAP) ?? ENV_CAP;
  const mode = o.channel ?? 'auto';
  const perf = mode === 'perf' || (mode === 'auto' && !feature('ringbuf').supported);
  if (perf) {
    maxArgs = Math.min(maxArgs, PERF_ARGS);
    maxEnv = Math.min(maxEnv, PERF_ENV);
  }
  const hooks = o.hooks ?? 'auto';
  const pick = (base: string): ProbesSelector => (hooks === 'btf' ? oneOf(`${base}_btf`) : hooks === 'raw' ? oneOf(`${base}_raw`) : oneOf(`${base}_btf`, `${base}_raw`));
  const selectors: ProbesSelector[] = [allOf(pick('exec'), pick('fork'), pick('exit')), bestEffort(pick('rename'))];
  const credProbes = CREDS_SYSCALLS.map((s) => `creds_exit_${s}`);
  if (o.credentials !== false) selectors.push(bestEffort(oneOf('creds_fentry', 'creds_kprobe', allOf(...credProbes))));
  const sharedPerf = o.sharedMaps?.vigil_events_perf;
  const channel: EventChannelSpec = sharedPerf ? { mode: 'perf', sharedPerf } : { mode, handler: o.handler, sharedRing: o.sharedRing };
  const { vigil_events_perf: _perf, ...otherShared } = o.sharedMaps ?? {};
  return {
    spec: {
      name: 'process',
      object: o.objectPath ?? processObjectPath(),
      probes: [
        ...['exec', 'fork', 'exit', 'rename'].flatMap((b) => [{ fn: `${b}_btf` }, { fn: `${b}_raw` }]),
        { fn: 'creds_fentry' },
        { fn: 'creds_kprobe' },
        ...credProbes.map((fn) => ({ fn })),
      ],
      eventChannel: channel,
    },
    options: {
      activatedProbes: selectors,
      constantEditors: [
        { name: 'max_args_bytes', value: maxArgs, failOnMissing: true },
        { name: 'max_env_bytes', value: maxEnv, failOnMissing: true },
        { name: 'emit_threads', value: o.threads === false ? 0 : 1, failOnMissing: true },
        // The exe path's walk: plain loads where the kernel allows them (bpf/include/path.h).
        { name: 'vigil_direct_reads', value: resolvePathReads('auto') === 'direct' ? 1 : 0, failOnMissing: true },
        { name: 'vigil_cgroup_v1_subsys', value: o.cgroupV1Subsys ?? 0xffffffff, failOnMissing: true },
      ],
      mapEditors: otherShared,
      // The exec buffer is an array indexed by CPU id: one slot per possible CPU.
      mapSpecEditors: { exec_heap: { maxEntries: numPossibleCpus() } },
    },
  };
}
