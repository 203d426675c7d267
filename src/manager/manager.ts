// The declarative BPF program manager: vigil's counterpart of Datadog's ebpf-manager, on libbpf.
//
// A Manager is declared as data (an object file, probes, maps, ring and perf buffers) and runs in fixed
// phases: init() opens the object, applies every edit (exclusions, missing-feature exclusions, constants,
// map specs, shared maps, pins) and loads it; start() installs routes, attaches probes as the selectors say,
// validates them and starts the readers. Any failure in a phase undoes everything done so far, so a bad
// option never leaves a half-applied change or an attached program behind. stop() is idempotent, runs once
// more on SIGINT/SIGTERM/exit, and releases in the order links, readers, callbacks, mappings, objects.
import fs from 'node:fs';
import { MapType, mapTypeName } from '../bpf/constants.ts';
import { InterruptedError, InvalidArgumentError, NotFoundError, NotSupportedError, StateError, VigilError, describeErrno, errnoName, errorFromErrno } from '../bpf/errors.ts';
import { feature, requireBpfPrivileges } from '../bpf/features.ts';
import { initLibbpf, lib } from '../bpf/ffi.ts';
import { BpfMap } from '../bpf/map.ts';
import { BpfObject, type LoadOptions, type OpenOptions } from '../bpf/object.ts';
import { enableRunTimeStats, type StatsHandle } from '../bpf/stats.ts';
import type { BpfProgram, ProgramStats } from '../bpf/program.ts';
import { PerfBufReader, type PerfBufReaderOptions } from '../ringbuf/perfbuf.ts';
import { RING_CTL_MAP, RingBufReader, type EventReader, type ReaderStats, type RecordHandler, type RingBufReaderOptions } from '../ringbuf/ringbuf.ts';
import { SIZEOF } from '../events/layout.generated.ts';
import { registerCleanup } from './cleanup.ts';
import {
  applyMapSpecEditor,
  keyBytes,
  validateMapSpecEditor,
  type ConstantEditor,
  type InnerOuterMap,
  type ManagedMap,
  type MapRoute,
  type MapSpecEditor,
  type TailCallRoute,
} from './editors.ts';
import { HOOK_FEATURE, LOAD_GATED, Probe, formatProbeId, kindFromSection, probeKey, type ProbeId, type ProbeSpec } from './probe.ts';
import { AllOf, ProbeSelector, type ProbesSelector, type SelectorHost } from './selectors.ts';

/** Which maps stop() cleans up (ebpf-manager's MapCleanupType). */
export const Cleanup = {
  /** Maps this manager created and pinned: unpinned and closed. */
  internalPinned: 1 << 1,
  /** Maps this manager created, unpinned: closed (otherwise kept open, see Manager.retainedMap). */
  internalNotPinned: 1 << 2,
  /** Maps that were already pinned when we loaded (reused from the pin): unpinned. */
  externalPinned: 1 << 3,
  /** Maps given through mapEditors that are pinned: unpinned and closed. */
  externalPinnedAndEdited: 1 << 4,
  /** Maps given through mapEditors: closed. */
  externalEdited: 1 << 5,
  internal: (1 << 1) | (1 << 2),
  external: (1 << 3) | (1 << 4) | (1 << 5),
  all: (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5),
} as const;

export interface RingBufferSpec {
  map: string;
  handler?: RecordHandler;
  options?: RingBufReaderOptions;
}

export interface PerfMapSpec {
  map: string;
  handler?: RecordHandler;
  options?: PerfBufReaderOptions;
}

/**
 * vigil's event channel (bpf/include/vigil.h): one ring buffer, or a perf buffer on kernels without ring
 * buffers, chosen at init like a probe selector would choose a hook.
 */
export interface EventChannelSpec {
  mode?: 'auto' | 'ringbuf' | 'perf';
  ringbuf?: string;
  perf?: string;
  /** The `const volatile` that tells the BPF side which one to use. */
  constant?: string;
  handler?: RecordHandler;
  ringOptions?: RingBufReaderOptions;
  perfOptions?: PerfBufReaderOptions;
  /** Reuse this ring (shared by several managers); the owner of the map reads it, not this manager. */
  sharedRing?: BpfMap;
  sharedPerf?: BpfMap;
}

export interface ManagerSpec {
  /** For messages and status (defaults to the object's name). */
  name?: string;
  /** The compiled BPF object: a path, or its ELF bytes. */
  object: string | { elf: Uint8Array; name: string };
  probes: ProbeSpec[];
  maps?: ManagedMap[];
  ringBuffers?: RingBufferSpec[];
  perfMaps?: PerfMapSpec[];
  eventChannel?: EventChannelSpec;
}

export interface ManagerOptions {
  /** Which probes must run; by default every declared probe is required (AllOf). */
  activatedProbes?: ProbesSelector[];
  excludedFunctions?: string[];
  excludedMaps?: string[];
  constantEditors?: ConstantEditor[];
  mapSpecEditors?: Record<string, MapSpecEditor>;
  /** Maps to share: the object uses these instead of creating its own. */
  mapEditors?: Record<string, BpfMap>;
  innerOuterMaps?: InnerOuterMap[];
  mapRoutes?: MapRoute[];
  tailCallRoutes?: TailCallRoute[];
  /** Root directory for maps declared with LIBBPF_PIN_BY_NAME. */
  pinRoot?: string;
  verifier?: LoadOptions;
  /**
   * How many times init starts over (from a fresh open) when signals interrupted the verifier
   * (InterruptedError); default 3. Only loads with `verifier.signals: 'deliver'` can be interrupted; libbpf
   * already retries each program load a few times on its own.
   */
  loadRetries?: number;
  defaultRetry?: number;
  defaultRetryDelayMs?: number;
  /** Create readers but leave them stopped (start them later with reader(name).start()). */
  skipReaderStartup?: boolean;
  /** Keep BPF run-time stats enabled while running (run count and time per probe). */
  collectStats?: boolean;
}

/** What to do when every probe that failed failed with this errno. */
const SELECTOR_HINTS: Record<string, string> = {
  EMFILE: "each attached probe holds a file descriptor: raise vigil's open-file limit (ulimit -n, or LimitNOFILE= in its systemd unit)",
  ENFILE: 'the system is out of file descriptors (fs.file-max): close some, or raise it',
  EPERM: 'run vigil as root, or with CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8)',
  EACCES: 'run vigil as root, or with CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8)',
  ENOENT: 'this kernel lacks the hook: turn off the event types that need it',
};

/**
 * A selector validation failed. The message counts the required probes that did not attach and names the
 * first few with their cause, with what to do when they all failed alike (a wall of identical EMFILEs helps
 * no one); `failures` keeps each unmet requirement in full, and `probes` each probe's own error.
 */
export class SelectorError extends VigilError {
  readonly failures: string[];
  readonly probes: { probe: string; error: Error | undefined }[];
  constructor(manager: string, failures: string[], probes: { probe: string; error: Error | undefined }[] = []) {
    super('ESELECTOR', `manager ${manager}: ${SelectorError.summary(failures, probes)}`);
    this.failures = failures;
    this.probes = probes;
  }

  private static summary(failures: string[], probes: { probe: string; error: Error | undefined }[]): string {
    if (!probes.length) return `probe selection failed: ${failures.join('; ')}`;
    const n = probes.length;
    const errnos = new Set(probes.map((p) => (p.error instanceof VigilError ? p.error.errno : undefined)));
    const errno = errnos.size === 1 ? [...errnos][0] : undefined;
    const shown = probes.slice(0, 3).map((p) => `${p.probe}: ${p.error?.message ?? 'not running'}`);
    if (n > 3) shown.push(`and ${n - 3} more (vigil status lists each probe's error)`);
    const hint = errno === undefined ? undefined : SELECTOR_HINTS[errnoName(errno)];
    return `${n} required probe${n > 1 ? 's' : ''} did not attach${errno === undefined ? '' : ` (${describeErrno(errno)}, ${errnoName(errno)})`}${hint ? `; ${hint}` : ''}: ${shown.join('; ')}`;
  }
}

export interface ProbeStatus {
  id: ProbeId;
  kind: string | undefined;
  target: string | undefined;
  state: string;
  error?: string;
  stats?: ProgramStats;
}

export interface KernelCounters {
  emitted: number;
  reserveFailed: number;
  outputFailed: number;
  lostByOpcode: Record<number, number>;
}

export interface ManagerStats {
  name: string;
  state: string;
  channel: 'ringbuf' | 'perf' | undefined;
  probes: ProbeStatus[];
  readers: Record<string, ReaderStats & { fill: number }>;
  kernel: KernelCounters | undefined;
}

type Instance = { obj: BpfObject; kind: 'main' | 'variant' | 'clone'; label: string };
type MapOrigin = { pinned: boolean; pinPreexisting: boolean; edited: boolean; alwaysCleanup: boolean };
type State = 'new' | 'initialized' | 'running' | 'paused' | 'stopped';

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number) => void Atomics.wait(sleepCell, 0, 0, ms);

export class Manager {
  readonly spec: ManagerSpec;
  #opts: ManagerOptions = {};
  #state: State = 'new';
  #probes = new Map<string, Probe>();
  #instances: Instance[] = [];
  #main: BpfObject | undefined;
  #readers = new Map<string, EventReader>();
  #handlers = new Map<string, RecordHandler | undefined>();
  #mapOrigins = new Map<string, MapOrigin>();
  #retained = new Map<string, BpfMap>();
  #selectors: ProbesSelector[] = [];
  #channel: 'ringbuf' | 'perf' | undefined;
  #channelMap: string | undefined;
  #stats: StatsHandle | undefined;
  #unregister: (() => void) | undefined;
  /** Maps lent to us that we must never close, whatever the cleanup kind (the shared event channel). */
  #borrowed = new Set<BpfMap>();

  constructor(spec: ManagerSpec) {
    this.spec = spec;
    for (const ps of spec.probes) this.#addProbe(new Probe(ps));
  }

  get name(): string {
    return this.spec.name ?? (typeof this.spec.object === 'string' ? this.spec.object.replace(/^.*\//, '').replace(/\.bpf\.o$|\.o$/, '') : this.spec.object.name);
  }
  get state(): State {
    return this.#state;
  }
  /** 'ringbuf' or 'perf' once init() chose the event channel. */
  get channel(): 'ringbuf' | 'perf' | undefined {
    return this.#channel;
  }

  #addProbe(p: Probe): void {
    if (this.#probes.has(p.key)) throw new InvalidArgumentError(`manager: probe ${formatProbeId(p.id)} is declared twice (give each hook of one function its own uid)`);
    this.#probes.set(p.key, p);
  }

  // ---- phases 1-3: open, edit, load ----------------------------------------------------------------------

  /**
   * Opens, edits and loads the object. On any error everything opened is closed again and the error is
   * rethrown: NotFoundError (object, program, map, constant), InvalidArgumentError (a bad option),
   * VerifierError, PermissionError, NotSupportedError, MapInUseError, and InterruptedError once
   * `loadRetries` fresh attempts were all interrupted by signals.
   */
  init(options: ManagerOptions = {}): void {
    if (this.#state !== 'new') throw new StateError(`manager ${this.name} was already initialised`);
    const retries = options.loadRetries ?? 3;
    if (!Number.isInteger(retries) || retries < 0) throw new InvalidArgumentError(`loadRetries must be a non-negative integer, got ${retries}`);
    for (let attempt = 0; ; attempt++) {
      try {
        this.#initOnce(options);
        return;
      } catch (err) {
        // A libbpf object cannot be loaded twice: each attempt opens, edits and loads from scratch.
        if (!(err instanceof InterruptedError) || attempt >= retries) throw err;
        this.interruptedLoads++;
      }
    }
  }

  /** Loads that signals interrupted and init retried (see loadRetries). */
  interruptedLoads = 0;

  #initOnce(options: ManagerOptions): void {
    this.#opts = options;
    initLibbpf();
    requireBpfPrivileges(); // a missing capability is reported as such, not as a missing kernel feature
    const temps: BpfMap[] = [];
    try {
      const main = this.#openInstance('main', 'main');
      this.#main = main;
      this.#validateOptions(main);
      this.#selectChannel(main);
      const excluded = this.#excludeUnloadable(main);
      const variants = this.#planVariants(main);
      for (const inst of [main, ...variants.map((v) => v.obj)]) this.#applyEdits(inst, temps, excluded);
      this.#applyConstants(main, this.#globalConstants());
      for (const v of variants) {
        this.#applyConstants(v.obj, [...this.#globalConstants(), ...v.editors]);
      }
      this.#configurePins(main);
      main.load(options.verifier);
      for (const v of variants) {
        this.#shareMaps(v.obj, main, {});
        v.obj.load(options.verifier);
      }
      for (const t of temps) t.close();
      temps.length = 0;
      this.#bindProbes();
      this.#writeManagedContents(main);
      this.#createReaders(main);
      this.#state = 'initialized';
      this.#unregister = registerCleanup(`manager ${this.name}`, () => this.stop());
    } catch (err) {
      for (const t of temps) t.close();
      this.#teardown(Cleanup.all, true);
      this.#state = 'new';
      throw err;
    }
  }

  #openInstance(kind: Instance['kind'], label: string): BpfObject {
    const o: OpenOptions = { pinRoot: this.#opts.pinRoot };
    const obj =
      typeof this.spec.object === 'string'
        ? BpfObject.open(this.spec.object, o)
        : BpfObject.openMem(this.spec.object.elf, { ...o, name: this.spec.object.name });
    this.#instances.push({ obj, kind, label });
    return obj;
  }

  #validateOptions(main: BpfObject): void {
    const o = this.#opts;
    const mapNames = new Set(main.maps().map((m) => m.name));
    const needMap = (name: string, what: string) => {
      if (!mapNames.has(name)) throw new NotFoundError('map', name, `object ${main.path}`, `named by ${what}; it has: ${[...mapNames].join(', ')}`);
    };
    for (const n of o.excludedMaps ?? []) needMap(n, 'excludedMaps');
    for (const [n, e] of Object.entries(o.mapSpecEditors ?? {})) {
      needMap(n, 'mapSpecEditors');
      validateMapSpecEditor(n, e);
    }
    for (const n of Object.keys(o.mapEditors ?? {})) {
      needMap(n, 'mapEditors');
      if (o.excludedMaps?.includes(n)) throw new InvalidArgumentError(`map ${n} is both excluded and shared through mapEditors`);
    }
    for (const io of o.innerOuterMaps ?? []) {
      needMap(io.outer, 'innerOuterMaps');
      needMap(io.inner, 'innerOuterMaps');
    }
    for (const m of this.spec.maps ?? []) needMap(m.name, 'maps');
    for (const r of this.spec.ringBuffers ?? []) needMap(r.map, 'ringBuffers');
    for (const r of this.spec.perfMaps ?? []) needMap(r.map, 'perfMaps');
    for (const r of o.tailCallRoutes ?? []) {
      needMap(r.programArray, 'tailCallRoutes');
      if (!r.fn && !r.program) throw new InvalidArgumentError(`tail call route into ${r.programArray}[${r.key}] names no program`);
      if (r.fn && !main.hasProgram(r.fn)) throw new NotFoundError('program', r.fn, `object ${main.path}`, 'named by tailCallRoutes');
    }
    for (const r of o.mapRoutes ?? []) needMap(r.routingMap, 'mapRoutes');
    for (const fn of o.excludedFunctions ?? []) {
      if (!main.hasProgram(fn)) throw new NotFoundError('program', fn, `object ${main.path}`, 'named by excludedFunctions');
    }
    for (const c of o.constantEditors ?? []) {
      if (c.failOnMissing && !main.globals().some((g) => g.name === c.name)) main.global(c.name); // throws NotFoundError
    }
    for (const p of this.#probes.values()) {
      if (!main.hasProgram(p.id.fn)) {
        throw new NotFoundError('program', p.id.fn, `object ${main.path}`, `probe ${formatProbeId(p.id)} needs it; functions: ${main.programs().map((x) => x.name).join(', ')}`);
      }
      p.bind(main.program(p.id.fn)); // validates the hook description now, before anything is loaded
    }
    for (const s of o.activatedProbes ?? []) {
      for (const id of s.probeIds()) {
        if (!this.#probes.has(probeKey(id))) throw new NotFoundError('probe', formatProbeId(id), `manager ${this.name}`, `named by selector ${s}`);
      }
    }
  }

  #selectChannel(main: BpfObject): void {
    const ch = this.spec.eventChannel;
    if (!ch) return;
    const ringName = ch.ringbuf ?? 'vigil_events';
    const perfName = ch.perf ?? 'vigil_events_perf';
    const constant = ch.constant ?? 'vigil_use_ringbuf';
    const mode = ch.mode ?? 'auto';
    const ringOk = feature('ringbuf').supported;
    if (mode === 'ringbuf' && !ringOk) throw new NotSupportedError('ringbuf', feature('ringbuf').reason, { minKernel: '5.8' });
    const useRing = mode === 'ringbuf' || (mode === 'auto' && ringOk);
    main.setGlobal(constant, useRing ? 1 : 0);
    this.#channel = useRing ? 'ringbuf' : 'perf';
    if (useRing) {
      if (ch.sharedRing) {
        (this.#opts.mapEditors ??= {})[ringName] = ch.sharedRing;
        this.#borrowed.add(ch.sharedRing);
      }
      else if (!this.spec.ringBuffers?.some((r) => r.map === ringName)) {
        (this.spec.ringBuffers ??= []).push({ map: ringName, handler: ch.handler, options: ch.ringOptions });
      }
      this.#channelMap = ringName;
    } else {
      // Without ring buffers the ring map cannot even be created: turn it into a one-slot array nobody uses.
      (this.#opts.mapSpecEditors ??= {})[ringName] = { type: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1, flags: 0 };
      // Nor is the ring's control read; and such kernels may not have mmapable arrays (5.5).
      if (main.hasMap(RING_CTL_MAP) && !this.#opts.mapEditors?.[RING_CTL_MAP]) {
        this.#opts.mapSpecEditors[RING_CTL_MAP] = { type: MapType.ARRAY, keySize: 4, valueSize: SIZEOF.vigil_ring_ctl, maxEntries: 1, flags: 0 };
      }
      if (ch.sharedPerf) {
        (this.#opts.mapEditors ??= {})[perfName] = ch.sharedPerf;
        this.#borrowed.add(ch.sharedPerf);
      }
      else if (!this.spec.perfMaps?.some((r) => r.map === perfName)) {
        (this.spec.perfMaps ??= []).push({ map: perfName, handler: ch.handler, options: ch.perfOptions });
      }
      this.#channelMap = perfName;
    }
  }

  /** Excludes programs that cannot load here, by option or for a missing kernel feature. Returns their names. */
  #excludeUnloadable(main: BpfObject): Set<string> {
    const excluded = new Set(this.#opts.excludedFunctions ?? []);
    const reasons = new Map<string, Error>();
    for (const fn of excluded) reasons.set(fn, new InvalidArgumentError(`${fn} is excluded by the manager options (excludedFunctions)`));
    for (const prog of main.programs()) {
      const kind = kindFromSection(prog.section.split('/')[0] ?? '');
      if (!kind || !LOAD_GATED.has(kind)) continue;
      const f = feature(HOOK_FEATURE[kind]!);
      if (!f.supported) {
        excluded.add(prog.name);
        reasons.set(prog.name, new NotSupportedError(HOOK_FEATURE[kind]!, `program ${prog.name} (${prog.section}): ${f.reason}`, { minKernel: f.minKernel }));
      }
    }
    for (const fn of excluded) main.program(fn).setAutoload(false);
    for (const p of this.#probes.values()) {
      const reason = reasons.get(p.id.fn);
      if (reason) {
        p.excludedReason = reason.message;
        p.fail(reason);
      }
    }
    return excluded;
  }

  #globalConstants(): ConstantEditor[] {
    return (this.#opts.constantEditors ?? []).filter((c) => !c.programs?.length);
  }

  /** Programs that get their own constants are loaded from their own instance of the object. */
  #planVariants(main: BpfObject): { obj: BpfObject; editors: ConstantEditor[]; fns: string[] }[] {
    const limited = (this.#opts.constantEditors ?? []).filter((c) => c.programs?.length);
    if (!limited.length) return [];
    const byFn = new Map<string, ConstantEditor[]>();
    for (const c of limited) {
      for (const p of c.programs!) {
        const fn = typeof p === 'string' ? p : p.fn;
        if (!main.hasProgram(fn)) throw new NotFoundError('program', fn, `object ${main.path}`, `named by constant editor ${c.name}`);
        byFn.set(fn, [...(byFn.get(fn) ?? []), c]);
      }
    }
    // One instance per distinct set of editors.
    const groups = new Map<string, { editors: ConstantEditor[]; fns: string[] }>();
    for (const [fn, eds] of byFn) {
      if (!main.program(fn).autoload) continue;
      const key = eds.map((e) => `${e.name}=${String(e.value)}`).join('&');
      const g = groups.get(key) ?? { editors: eds, fns: [] };
      g.fns.push(fn);
      groups.set(key, g);
    }
    const out: { obj: BpfObject; editors: ConstantEditor[]; fns: string[] }[] = [];
    for (const g of groups.values()) {
      const obj = this.#openInstance('variant', g.fns.join(','));
      for (const prog of obj.programs()) prog.setAutoload(g.fns.includes(prog.name));
      for (const fn of g.fns) main.program(fn).setAutoload(false);
      out.push({ obj, ...g });
    }
    return out;
  }

  #applyEdits(inst: BpfObject, temps: BpfMap[], excluded: Set<string>): void {
    const o = this.#opts;
    for (const fn of excluded) if (inst.hasProgram(fn)) inst.program(fn).setAutoload(false);
    for (const n of o.excludedMaps ?? []) inst.map(n).setAutocreate(false);
    for (const [n, e] of Object.entries(o.mapSpecEditors ?? {})) applyMapSpecEditor(inst.map(n), e);
    for (const io of o.innerOuterMaps ?? []) {
      const inner = inst.map(io.inner);
      const tmpl = BpfMap.create({ name: `${io.inner}_tmpl`.slice(0, 15), type: inner.type, keySize: inner.keySize, valueSize: inner.valueSize, maxEntries: inner.maxEntries, flags: inner.flags });
      temps.push(tmpl);
      inst.map(io.outer).setInnerMap(tmpl);
    }
    for (const [n, m] of Object.entries(o.mapEditors ?? {})) {
      inst.map(n).reuse(m);
      this.#origin(n).edited = true;
    }
  }

  #applyConstants(inst: BpfObject, editors: ConstantEditor[]): void {
    for (const c of editors) {
      if (!inst.globals().some((g) => g.name === c.name)) {
        if (c.failOnMissing) inst.global(c.name);
        continue;
      }
      inst.setGlobal(c.name, c.value);
    }
  }

  #origin(name: string): MapOrigin {
    let o = this.#mapOrigins.get(name);
    if (!o) {
      o = { pinned: false, pinPreexisting: false, edited: false, alwaysCleanup: false };
      this.#mapOrigins.set(name, o);
    }
    return o;
  }

  #configurePins(main: BpfObject): void {
    for (const m of this.spec.maps ?? []) {
      const o = this.#origin(m.name);
      o.alwaysCleanup = !!m.alwaysCleanup;
      if (m.pinPath) main.map(m.name).setPinPath(m.pinPath);
    }
    for (const map of main.maps()) {
      const p = map.pinPath;
      if (!p) continue;
      const o = this.#origin(map.name);
      o.pinned = true;
      o.pinPreexisting = fs.existsSync(p);
    }
  }

  /** Makes `inst` use main's maps (all but its own .rodata), except those given in `overrides`. */
  #shareMaps(inst: BpfObject, main: BpfObject, overrides: Record<string, BpfMap>): void {
    for (const m of inst.maps()) {
      if (overrides[m.name]) {
        m.reuse(overrides[m.name]!);
        continue;
      }
      if (m.isInternal && m.name.includes('.rodata')) continue;
      const src = main.maps().find((x) => x.name === m.name);
      if (src && src.autocreate && src.loaded) m.reuse(src);
      else m.setAutocreate(false);
    }
  }

  #bindProbes(): void {
    for (const p of this.#probes.values()) {
      const inst = this.#instances.find((i) => i.obj.hasProgram(p.id.fn) && i.obj.program(p.id.fn).loaded);
      if (inst) {
        p.bind(inst.obj.program(p.id.fn));
        p.markLoaded();
      }
    }
  }

  #writeManagedContents(main: BpfObject): void {
    for (const m of this.spec.maps ?? []) {
      const map = main.map(m.name);
      if (m.contents?.length) map.updateMany(m.contents);
      if (m.freeze) map.freeze();
    }
  }

  #createReaders(main: BpfObject): void {
    for (const r of this.spec.ringBuffers ?? []) {
      // The event channel's reader steers the sensors' wakeups through their control map (bpf/include/vigil.h).
      const control = r.map === this.#channelMap && !r.options?.control && main.hasMap(RING_CTL_MAP) ? main.map(RING_CTL_MAP) : undefined;
      this.#readers.set(r.map, new RingBufReader(main.map(r.map), control ? { ...r.options, control } : r.options));
      this.#handlers.set(r.map, r.handler);
    }
    for (const r of this.spec.perfMaps ?? []) {
      this.#readers.set(r.map, new PerfBufReader(main.map(r.map), r.options));
      this.#handlers.set(r.map, r.handler);
    }
  }

  // ---- phases 4-5: routes, attach, validate, readers -------------------------------------------------------

  /**
   * Installs routes, attaches the selected probes, validates the selectors and starts the readers.
   * Throws SelectorError naming every probe that failed and why; on any failure, everything is stopped.
   */
  start(): void {
    if (this.#state !== 'initialized') throw new StateError(`manager ${this.name} must be initialised (and not started) to start; it is ${this.#state}`);
    try {
      this.#installRoutes();
      if (this.#opts.collectStats) this.#enableStats();
      this.#selectors = this.#opts.activatedProbes ?? [new AllOf([...this.#probes.values()].map((p) => new ProbeSelector(p.id)))];
      this.#activate(this.#selectors);
      if (!this.#opts.skipReaderStartup) {
        for (const [name, r] of this.#readers) {
          const h = this.#handlers.get(name);
          if (h) r.start(h);
        }
      }
      this.#state = 'running';
    } catch (err) {
      this.stop();
      throw err;
    }
  }

  #host(): SelectorHost {
    return {
      activate: (id) => this.#activateProbe(id),
      deactivate: (id) => this.#probes.get(probeKey(id))?.detach('loaded'),
      status: (id) => {
        const p = this.#probes.get(probeKey(id));
        return p ? { known: true, running: p.isRunning, error: p.lastError } : { known: false, running: false };
      },
    };
  }

  #activateProbe(id: ProbeId): Error | undefined {
    const p = this.#probes.get(probeKey(id));
    if (!p) return new NotFoundError('probe', formatProbeId(id), `manager ${this.name}`);
    if (p.isRunning) return undefined;
    if (p.excludedReason) return p.lastError ?? new Error(p.excludedReason);
    const attempts = 1 + (p.spec.retry ?? this.#opts.defaultRetry ?? 0);
    const delay = p.spec.retryDelayMs ?? this.#opts.defaultRetryDelayMs ?? 100;
    for (let i = 0; ; i++) {
      try {
        p.attachOnce();
        return undefined;
      } catch (err) {
        if (i + 1 >= attempts || err instanceof NotSupportedError || err instanceof InvalidArgumentError) return err as Error;
        sleepSync(delay);
      }
    }
  }

  #activate(selectors: ProbesSelector[]): void {
    const host = this.#host();
    for (const s of selectors) s.activate(host);
    const failed = selectors.map((s) => ({ s, why: s.validate(host) })).filter((f) => f.why !== undefined);
    if (!failed.length) return;
    // The probes to blame: those of the unmet requirements that are known and not running.
    const probes = failed.flatMap(({ s }) =>
      s.probeIds().flatMap((id) => {
        const st = host.status(id);
        return st.known && !st.running ? [{ probe: formatProbeId(id), error: st.error }] : [];
      }),
    );
    throw new SelectorError(this.name, failed.map((f) => f.why!), probes);
  }

  #installRoutes(): void {
    const main = this.#main!;
    for (const r of this.#opts.mapRoutes ?? []) {
      const outer = main.map(r.routingMap);
      if (outer.type !== MapType.ARRAY_OF_MAPS && outer.type !== MapType.HASH_OF_MAPS) {
        throw new InvalidArgumentError(`map route: ${r.routingMap} is ${mapTypeName(outer.type)}, not a map of maps`);
      }
      const v = Buffer.alloc(4);
      v.writeUInt32LE(r.map.fd);
      outer.update(keyBytes(r.key, outer.keySize, `map route ${r.routingMap}`), v);
    }
    for (const r of this.#opts.tailCallRoutes ?? []) this.#routeTailCall(r);
  }

  #routeTailCall(r: TailCallRoute): void {
    const arr = this.getMap(r.programArray);
    if (arr.type !== MapType.PROG_ARRAY) throw new InvalidArgumentError(`tail call route: ${r.programArray} is ${mapTypeName(arr.type)}, not a program array`);
    const prog = r.program ?? this.getProgram(r.fn!);
    const v = Buffer.alloc(4);
    v.writeUInt32LE(prog.fd);
    arr.update(keyBytes(r.key, arr.keySize, `tail call route ${r.programArray}`), v);
  }

  /** Adds tail-call routes while running (e.g. programs of another manager). */
  updateTailCallRoutes(routes: TailCallRoute[]): void {
    this.#requireLoaded('update tail call routes');
    for (const r of routes) this.#routeTailCall(r);
  }

  #enableStats(): void {
    this.#stats ??= enableRunTimeStats();
  }

  // ---- runtime changes -------------------------------------------------------------------------------------

  /**
   * Replaces the activated probes: attaches what the new selectors need, validates them, then detaches
   * what they no longer name. If the new selection is not met, probes attached for it are detached again
   * and the previous selection keeps running unchanged (SelectorError).
   */
  updateActivatedProbes(selectors: ProbesSelector[]): void {
    if (this.#state !== 'running' && this.#state !== 'paused') throw new StateError(`manager ${this.name} is ${this.#state}; start it first`);
    for (const s of selectors) {
      for (const id of s.probeIds()) {
        if (!this.#probes.has(probeKey(id))) throw new NotFoundError('probe', formatProbeId(id), `manager ${this.name}`, `named by selector ${s}`);
      }
    }
    const before = new Set([...this.#probes.values()].filter((p) => p.isRunning).map((p) => p.key));
    try {
      this.#activate(selectors);
    } catch (err) {
      for (const p of this.#probes.values()) if (p.isRunning && !before.has(p.key)) p.detach('loaded');
      throw err;
    }
    const wanted = new Set(selectors.flatMap((s) => s.probeIds()).map(probeKey));
    for (const p of this.#probes.values()) if (p.isRunning && !wanted.has(p.key)) p.detach('loaded');
    this.#selectors = selectors;
  }

  /** Detaches every probe and pauses the readers; programs and maps stay loaded. */
  pause(): void {
    if (this.#state !== 'running') throw new StateError(`manager ${this.name} is ${this.#state}, not running`);
    for (const p of this.#probes.values()) if (p.isRunning) p.detach('paused');
    for (const r of this.#readers.values()) r.pause();
    this.#state = 'paused';
  }

  /** Re-attaches what pause() detached and resumes the readers. Throws SelectorError if a probe fails. */
  resume(): void {
    if (this.#state !== 'paused') throw new StateError(`manager ${this.name} is ${this.#state}, not paused`);
    const errors: { probe: string; error: Error }[] = [];
    for (const p of this.#probes.values()) {
      if (p.state !== 'paused') continue;
      const e = this.#activateProbe(p.id);
      if (e) errors.push({ probe: formatProbeId(p.id), error: e });
    }
    for (const r of this.#readers.values()) r.resume();
    this.#state = 'running';
    if (errors.length) throw new SelectorError(this.name, errors.map((e) => `${e.probe}: ${e.error.message}`), errors);
  }

  /**
   * Loads another copy of program `from` (with its own constants, sharing every map unless `mapEditors`
   * replaces some) and attaches it at the hook `probe` describes. Returns the new probe.
   */
  cloneProgram(from: ProbeId | string, probe: Omit<ProbeSpec, 'fn'> & { fn?: string }, o: { constantEditors?: ConstantEditor[]; mapEditors?: Record<string, BpfMap> } = {}): Probe {
    this.#requireLoaded('clone a program');
    const fn = typeof from === 'string' ? from : from.fn;
    if (probe.fn && probe.fn !== fn) throw new InvalidArgumentError(`clone of ${fn}: the new probe's fn must be ${fn}, got ${probe.fn}`);
    const np = new Probe({ ...probe, fn });
    if (this.#probes.has(np.key)) throw new InvalidArgumentError(`clone of ${fn}: probe ${formatProbeId(np.id)} already exists; give the clone a new uid`);
    const main = this.#main!;
    if (!main.hasProgram(fn)) throw new NotFoundError('program', fn, `object ${main.path}`);
    for (const n of Object.keys(o.mapEditors ?? {})) if (!main.hasMap(n)) throw new NotFoundError('map', n, `object ${main.path}`, 'named by the clone\'s mapEditors');
    const obj = this.#openInstance('clone', `${fn}#${np.id.uid}`);
    const forget = () => {
      obj.close();
      this.#instances = this.#instances.filter((i) => i.obj !== obj);
    };
    try {
      for (const prog of obj.programs()) prog.setAutoload(prog.name === fn);
      for (const [n, e] of Object.entries(this.#opts.mapSpecEditors ?? {})) applyMapSpecEditor(obj.map(n), e);
      const own = (this.#opts.constantEditors ?? []).filter((c) => c.programs?.some((p) => (typeof p === 'string' ? p : p.fn) === fn));
      this.#applyConstants(obj, [...this.#globalConstants(), ...own, ...(o.constantEditors ?? [])]);
      this.#shareMaps(obj, main, { ...(this.#opts.mapEditors ?? {}), ...(o.mapEditors ?? {}) });
      obj.load(this.#opts.verifier);
      np.bind(obj.program(fn));
      np.markLoaded();
    } catch (err) {
      forget();
      throw err;
    }
    this.#probes.set(np.key, np);
    if (this.#state === 'running') {
      const err = this.#activateProbe(np.id);
      if (err) {
        this.#probes.delete(np.key);
        forget();
        throw err;
      }
    }
    return np;
  }

  /** Attaches an already loaded program at one more hook (a new probe with its own uid). */
  addHook(from: ProbeId | string, probe: Omit<ProbeSpec, 'fn'> & { fn?: string }): Probe {
    this.#requireLoaded('add a hook');
    const fn = typeof from === 'string' ? from : from.fn;
    const np = new Probe({ ...probe, fn });
    if (this.#probes.has(np.key)) throw new InvalidArgumentError(`add hook: probe ${formatProbeId(np.id)} already exists; give it a new uid`);
    const prog = this.getProgram(fn);
    np.bind(prog);
    np.markLoaded();
    this.#probes.set(np.key, np);
    if (this.#state === 'running') {
      const err = this.#activateProbe(np.id);
      if (err) {
        this.#probes.delete(np.key);
        throw err;
      }
    }
    return np;
  }

  /** Detaches and forgets one probe; a clone's private object is closed with its last probe. */
  detachHook(id: ProbeId): void {
    const p = this.#probes.get(probeKey(id));
    if (!p) throw new NotFoundError('probe', formatProbeId(id), `manager ${this.name}`);
    p.detach('stopped');
    this.#probes.delete(p.key);
    const inst = this.#instances.find((i) => i.kind === 'clone' && p.program && i.obj.hasProgram(p.id.fn) && i.obj.program(p.id.fn) === p.program);
    if (inst && ![...this.#probes.values()].some((q) => q.program === p.program)) {
      inst.obj.close();
      this.#instances = this.#instances.filter((i) => i !== inst);
    }
  }

  // ---- access ----------------------------------------------------------------------------------------------

  #requireLoaded(what: string): void {
    if (this.#state === 'new' || this.#state === 'stopped' || !this.#main) throw new StateError(`manager ${this.name}: cannot ${what} while ${this.#state}`);
  }

  getProbe(id: ProbeId | string): Probe {
    const key = probeKey(typeof id === 'string' ? { uid: '', fn: id } : id);
    const p = this.#probes.get(key);
    if (!p) throw new NotFoundError('probe', typeof id === 'string' ? id : formatProbeId(id), `manager ${this.name}`);
    return p;
  }

  probes(): Probe[] {
    return [...this.#probes.values()];
  }

  /** A map of the main object (or one kept open after stop). Throws NotFoundError. */
  getMap(name: string): BpfMap {
    const kept = this.#retained.get(name);
    if (kept) return kept;
    this.#requireLoaded(`get map ${name}`);
    return this.#main!.map(name);
  }

  /** After stop without internal cleanup: the maps kept open (dup'd fds), by name. */
  retainedMap(name: string): BpfMap | undefined {
    return this.#retained.get(name);
  }

  getProgram(fn: string): BpfProgram {
    this.#requireLoaded(`get program ${fn}`);
    for (const inst of this.#instances) {
      if (inst.kind !== 'clone' && inst.obj.hasProgram(fn) && inst.obj.program(fn).loaded) return inst.obj.program(fn);
    }
    return this.#main!.program(fn);
  }

  /** The main object (for globals). */
  get object(): BpfObject {
    this.#requireLoaded('get the object');
    return this.#main!;
  }

  reader(map: string): EventReader {
    const r = this.#readers.get(map);
    if (!r) throw new NotFoundError('map', map, `manager ${this.name}`, `readers: ${[...this.#readers.keys()].join(', ') || 'none'}`);
    return r;
  }

  /** The reader of the event channel chosen at init (ring or perf), when this manager owns it. */
  get eventReader(): EventReader | undefined {
    return this.#channelMap ? this.#readers.get(this.#channelMap) : undefined;
  }

  /** Per-CPU counters summed over CPUs, from the vigil_stats / vigil_lost maps when the object has them. */
  kernelCounters(): KernelCounters | undefined {
    const main = this.#main;
    if (!main || !main.loaded || !main.hasMap('vigil_stats')) return undefined;
    const stats = main.map('vigil_stats');
    const lostByOpcode: Record<number, number> = {};
    if (main.hasMap('vigil_lost')) {
      const lost = main.map('vigil_lost');
      for (const [k, v] of lost.lookupAll()) {
        const n = lost.sumU64(v);
        if (n) lostByOpcode[k.readUInt32LE(0)] = n;
      }
    }
    return { reserveFailed: stats.counter(0), outputFailed: stats.counter(1), emitted: stats.counter(2), lostByOpcode };
  }

  stats(): ManagerStats {
    const probes: ProbeStatus[] = [...this.#probes.values()].map((p) => {
      let st: ProgramStats | undefined;
      try {
        if (p.program?.loaded) st = p.program.stats();
      } catch {
        st = undefined;
      }
      return { id: p.id, kind: p.hook?.kind, target: p.hook?.target, state: p.state, error: p.lastError?.message, stats: st };
    });
    const readers: ManagerStats['readers'] = {};
    for (const [n, r] of this.#readers) readers[n] = { ...r.stats(), fill: r.fill() };
    return { name: this.name, state: this.#state, channel: this.#channel, probes, readers, kernel: this.kernelCounters() };
  }

  /** A readable dump of maps (all, or those named): definition, then entries as hex (per CPU when per-CPU). */
  dumpMaps(names?: string[], maxEntries = 64): string {
    this.#requireLoaded('dump maps');
    const maps = names ? names.map((n) => this.getMap(n)) : this.#main!.maps().filter((m) => m.loaded && m.autocreate);
    const out: string[] = [];
    for (const m of maps) {
      let info = '';
      try {
        info = ` id=${m.info().id}`;
      } catch {
        info = '';
      }
      out.push(`map ${m.name}: ${mapTypeName(m.type)} key=${m.keySize} value=${m.valueSize} max_entries=${m.maxEntries} flags=0x${m.flags.toString(16)}${info}`);
      if ([MapType.RINGBUF, MapType.PERF_EVENT_ARRAY, MapType.USER_RINGBUF, MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER].includes(m.type as never)) continue;
      let n = 0;
      for (const [k, v] of m.lookupAll()) {
        if (n++ >= maxEntries) {
          out.push('  …');
          break;
        }
        const val = m.isPerCpu ? m.perCpu(v).map((b, i) => `cpu${i}=${b.toString('hex')}`).join(' ') : v.toString('hex');
        out.push(`  ${k.toString('hex')} => ${val}`);
      }
    }
    return out.join('\n');
  }

  // ---- stop ------------------------------------------------------------------------------------------------

  /**
   * Detaches, stops readers, unmaps, closes objects; cleans maps as `cleanup` says (default: the maps this
   * manager created; maps lent through mapEditors are closed only when asked). Idempotent.
   */
  stop(cleanup: number = Cleanup.internal): void {
    if (this.#state === 'stopped') return;
    this.#teardown(cleanup, false);
    this.#state = 'stopped';
  }

  #teardown(cleanup: number, failedInit: boolean): void {
    this.#unregister?.();
    this.#unregister = undefined;
    // 1. links
    for (const p of this.#probes.values()) {
      try {
        p.detach('stopped');
      } catch {
        // keep tearing down
      }
    }
    // 2-4. readers: stop callbacks, unregister poll watchers, munmap
    for (const r of this.#readers.values()) r.close();
    this.#readers.clear();
    this.#stats?.close();
    this.#stats = undefined;
    // 5. maps that outlive us, then objects
    const main = this.#main;
    if (main && main.loaded && !failedInit) {
      for (const m of main.maps()) {
        if (!m.loaded || !m.autocreate) continue;
        const o = this.#mapOrigins.get(m.name) ?? { pinned: false, pinPreexisting: false, edited: false, alwaysCleanup: false };
        const kind = o.edited
          ? o.pinned ? Cleanup.externalPinnedAndEdited : Cleanup.externalEdited
          : o.pinned ? (o.pinPreexisting ? Cleanup.externalPinned : Cleanup.internalPinned) : Cleanup.internalNotPinned;
        const clean = o.alwaysCleanup || (cleanup & kind) !== 0;
        if (o.pinned && clean) {
          try {
            m.unpin();
          } catch {
            // already gone
          }
        }
        if (!o.pinned && !o.edited && !clean) {
          // Keep the map alive past the object: hold a duplicate fd.
          const fd = lib().dup_cloexec(m.fd, 1030 /* F_DUPFD_CLOEXEC */, 'int', 3) as number;
          if (fd >= 0) this.#retained.set(m.name, BpfMap.fromFd(fd, true));
        }
      }
      for (const ext of Object.values(this.#opts.mapEditors ?? {})) {
        if (this.#borrowed.has(ext)) continue; // the agent's shared channel: its owner closes it
        const pinned = ext.isPinned;
        if ((cleanup & (pinned ? Cleanup.externalPinnedAndEdited : Cleanup.externalEdited)) === 0) continue;
        if (pinned) ext.unpin();
        ext.close();
      }
    }
    for (const inst of [...this.#instances].reverse()) inst.obj.close();
    this.#instances = [];
    this.#main = undefined;
  }
}

export { Probe };
export type { ProbeId, ProbeSpec };
