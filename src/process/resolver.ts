// The process resolver: the cache plus what feeds it. In BPF mode the process sensor is attached first with
// its reader held, then /proc is snapshotted and replayed through the cache, then the kernel map is seeded
// and the held events are read: nothing that happens during the snapshot is missed. Without BPF (no
// privilege, no kernel support) the same cache is fed by the netlink proc connector and /proc, and fields
// that mode cannot know are marked unknown. `vigil ps` reports which mode is in use.
import koffi from 'koffi';
import { NotSupportedError, PermissionError, VerifierError, VigilError } from '../bpf/errors.ts';
import type { BpfMap } from '../bpf/map.ts';
import { decodeProcessEvent, isDecodeError } from '../events/decode.ts';
import type { ProcessEvent } from '../events/types.ts';
import { Manager, type ManagerStats } from '../manager/manager.ts';
import { ProcessCache, type ProcessCacheOptions, type ProcessCacheStats } from './cache.ts';
import { ExecKill, type ExecKillStatus } from './exec-kill.ts';
import { KernelProcessMap } from './kernelmap.ts';
import { readPpid, readProcess, snapshotProcesses } from './procfs.ts';
import { Scrubber, type ScrubConfig } from './scrub.ts';
import { processSensorSpec, type ProcessSensorOptions } from './sensor.ts';
import type { SnapshotProcess } from './types.ts';

let mallocTrim: ((pad: number) => number) | null | undefined;
/**
 * Hands memory that start-up allocated and freed in C back to the kernel: libbpf parses the kernel's BTF
 * (several MiB) to load the sensor and frees it, and the /proc snapshot reads thousands of files, but glibc
 * keeps freed heap memory mapped, so it would stay in the agent's RSS for good (~8 MiB measured). A no-op
 * where the C library has no malloc_trim (musl).
 */
function releaseFreedMemory(): void {
  if (mallocTrim === undefined) {
    try {
      mallocTrim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
    } catch {
      mallocTrim = null;
    }
  }
  mallocTrim?.(0);
}

export type ResolverState = 'idle' | 'starting' | 'snapshotting' | 'snapshotted' | 'stopped';
/** bpf: sensors; procfs: proc connector + /proc; snapshot: a one-off /proc snapshot, no live updates. */
export type ResolverMode = 'bpf' | 'procfs' | 'snapshot';

/** What feeds the cache without BPF (src/process/connector.ts). */
export interface FallbackSource {
  start(onEvent: (ev: ProcessEvent | SnapshotProcess) => void): void;
  stop(): void;
  stats(): Record<string, number>;
}

export interface ProcessResolverOptions {
  sensor?: ProcessSensorOptions;
  scrub?: Partial<ScrubConfig>;
  cache?: Omit<ProcessCacheOptions, 'scrubber' | 'lookups'>;
  procRoot?: string;
  /** 'bpf' (fail without it), 'procfs' (never load BPF), 'auto' (BPF, else procfs). */
  mode?: 'auto' | 'bpf' | 'procfs';
  /** Builds the eBPF-less source (injected so this module does not depend on the netlink code). */
  fallback?: () => FallbackSource;
}

export interface ResolverStats {
  state: ResolverState;
  mode: ResolverMode | undefined;
  /** Why BPF mode was not used, when it was not. */
  fallbackReason: string | undefined;
  cache: ProcessCacheStats;
  decodeErrors: number;
  snapshotProcesses: number;
  kernelMapSeeded: number;
  sensor: ManagerStats | undefined;
  fallback: Record<string, number> | undefined;
  /** The in-kernel kill rules on execs (BPF mode). */
  execKill: ExecKillStatus | undefined;
}

export class ProcessResolver {
  readonly cache: ProcessCache;
  readonly #o: ProcessResolverOptions;
  #state: ResolverState = 'idle';
  #mode: ResolverMode | undefined;
  #fallbackReason: string | undefined;
  #manager: Manager | undefined;
  #kmap: KernelProcessMap | undefined;
  #execKill: ExecKill | undefined;
  #fallback: FallbackSource | undefined;
  #onEvent: ((ev: ProcessEvent) => void) | undefined;
  #feed: ((ev: ProcessEvent) => void) | undefined;
  #decodeErrors = 0;
  #snapshotCount = 0;
  #seeded = 0;

  constructor(o: ProcessResolverOptions = {}) {
    this.#o = o;
    const procRoot = o.procRoot;
    this.cache = new ProcessCache({
      ...o.cache,
      scrubber: new Scrubber(o.scrub),
      lookups: {
        kernel: (pid) => this.#kmap?.lookup(pid),
        procfs: (pid) => readProcess(pid, { procRoot }),
        ppid: (pid, startNs) => readPpid(pid, startNs, procRoot),
      },
    });
  }

  get state(): ResolverState {
    return this.#state;
  }
  get mode(): ResolverMode | undefined {
    return this.#mode;
  }
  /** The sensor's in-kernel kill rules on execs (BPF mode). */
  get execKill(): ExecKill | undefined {
    return this.#execKill;
  }
  /** The loaded sensor (BPF mode). */
  get manager(): Manager | undefined {
    return this.#manager;
  }

  /**
   * Starts the resolver. BPF mode loads the process sensor; with `sharedRing` its records go to that ring
   * and the ring's owner passes them to handleRecord(), otherwise the sensor reads its own channel.
   * `onEvent` sees each process event after the cache applied it. Throws when mode 'bpf' is required but
   * unavailable; in 'auto' falls back to procfs mode and records why.
   */
  start(
    o: {
      onEvent?: (ev: ProcessEvent) => void;
      sharedRing?: BpfMap;
      sharedMaps?: Record<string, BpfMap>;
      cgroupV1Subsys?: number;
      /**
       * Hand live events of the eBPF-less source to this function instead of applying them here (the
       * agent's pipeline applies them, in order with everything else). The snapshot is still applied here.
       */
      feed?: (ev: ProcessEvent) => void;
    } = {},
  ): void {
    if (this.#state !== 'idle') throw new VigilError('ESTATE', `process resolver is ${this.#state}`);
    this.#state = 'starting';
    this.#onEvent = o.onEvent;
    this.#feed = o.feed;
    const mode = this.#o.mode ?? 'auto';
    if (mode !== 'procfs') {
      try {
        this.#startBpf(o.sharedRing, o.sharedMaps, o.cgroupV1Subsys);
        return;
      } catch (err) {
        this.#manager?.stop();
        this.#manager = undefined;
        const usable = err instanceof PermissionError || err instanceof NotSupportedError || err instanceof VerifierError;
        if (mode === 'bpf' || !usable || !this.#o.fallback) {
          this.#state = 'idle';
          throw err;
        }
        this.#fallbackReason = (err as Error).message;
      }
    }
    this.#startFallback();
  }

  #startBpf(sharedRing: BpfMap | undefined, sharedMaps: Record<string, BpfMap> | undefined, cgroupV1Subsys: number | undefined): void {
    const { spec, options } = processSensorSpec({
      ...this.#o.sensor,
      sharedRing,
      sharedMaps,
      cgroupV1Subsys,
      handler: sharedRing ? undefined : (v, off, len) => this.handleRecord(v, off, len),
    });
    const m = new Manager(spec);
    this.#manager = m;
    m.init({ ...options, skipReaderStartup: true }); // hold records until the snapshot is in
    m.start();
    this.#mode = 'bpf';
    this.#kmap = new KernelProcessMap(m.getMap('vigil_procs'));
    this.#execKill = new ExecKill(m);
    const kmap = this.#kmap;
    this.#seeded = 0;
    this.#snapshot((p) => {
      if (kmap.seedOne(p)) this.#seeded++;
    });
    if (!sharedRing) m.eventReader?.start((v, off, len) => this.handleRecord(v, off, len));
  }

  #startFallback(): void {
    this.#mode = 'procfs';
    this.#fallback = this.#o.fallback?.();
    // The connector starts listening before the snapshot, so that nothing between the two is missed.
    try {
      this.#fallback?.start((ev) => {
        if (ev.type !== 'snapshot' && this.#feed) return this.#feed(ev);
        this.cache.apply(ev);
        if (ev.type !== 'snapshot') this.#onEvent?.(ev);
      });
    } catch (err) {
      // No live source at all (e.g. inside a container, where the connector stays silent): the snapshot
      // still answers questions about what runs now; say so.
      this.#fallback = undefined;
      this.#mode = 'snapshot';
      this.#fallbackReason = [this.#fallbackReason, `proc connector: ${(err as Error).message}`].filter(Boolean).join('; ');
    }
    this.#snapshot();
  }

  /** Replays /proc through the cache, one process at a time (never all of them in memory at once). */
  #snapshot(each?: (p: SnapshotProcess) => void): void {
    this.#state = 'snapshotting';
    let n = 0;
    for (const p of snapshotProcesses({ procRoot: this.#o.procRoot })) {
      this.cache.apply(p);
      each?.(p);
      n++;
    }
    this.#snapshotCount = n;
    this.#state = 'snapshotted';
    releaseFreedMemory();
  }

  /** Decodes and applies one process record (the dispatcher of a shared ring calls this). */
  handleRecord(v: DataView, off: number, len: number): ProcessEvent | undefined {
    const ev = decodeProcessEvent(v, off, len);
    if (isDecodeError(ev)) {
      this.#decodeErrors++;
      return undefined;
    }
    this.cache.apply(ev);
    this.#onEvent?.(ev);
    return ev;
  }

  stats(): ResolverStats {
    return {
      state: this.#state,
      mode: this.#mode,
      fallbackReason: this.#fallbackReason,
      cache: this.cache.stats(),
      decodeErrors: this.#decodeErrors,
      snapshotProcesses: this.#snapshotCount,
      kernelMapSeeded: this.#seeded,
      sensor: this.#manager?.stats(),
      fallback: this.#fallback?.stats(),
      execKill: this.#execKill?.status(),
    };
  }

  /** Detaches the sensor (or stops the connector); the cache stays readable. Idempotent. */
  stop(): void {
    if (this.#state === 'stopped') return;
    this.#manager?.stop();
    this.#fallback?.stop();
    this.cache.close();
    this.#state = 'stopped';
  }
}
