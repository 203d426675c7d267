// The agent: `vigil run`. It owns the kernel-side plumbing every sensor shares (one ring buffer, one map of
// container cgroups, one set of per-CPU loss counters), starts the sensors, the process and container
// resolvers and the pipeline, the sinks and the API; and stops all of it in the right order, once, on
// SIGINT/SIGTERM or on error: sensors detached first (no new records), then the ring drained to the end,
// then the pipeline flushed into the sinks, then the sensors' programs and maps released, then sinks, API
// and maps closed.
import fs from 'node:fs';
import { MapFlags, MapType } from '../bpf/constants.ts';
import { InvalidArgumentError, NotSupportedError, PermissionError, StateError } from '../bpf/errors.ts';
import { killRuleNumber } from '../events/kill.ts';
import { lineOf, signalNumber } from '../process/signal.ts';
import { checkKillFits, NO_KILL_RULES, type KernelKillSet } from '../rules/kernel-maps.ts';
import { killSensor, NO_MEMBERS } from '../rules/kernel.ts';
import type { KillScopes } from '../rules/kill-scopes.ts';
import { containerParts } from '../pipeline/enrich.ts';
import type { ExecKillStatus } from '../process/exec-kill.ts';
import { allFeatures, feature, requireBpfPrivileges } from '../bpf/features.ts';
import { BpfMap, numPossibleCpus } from '../bpf/map.ts';
import { ensureBpffs, ensureTracefs } from '../bpf/mounts.ts';
import { syscallSensorConfig, type VigilConfig } from '../config/config.ts';
import { planReload, ReloadRefusedError, touches } from '../config/reload.ts';
import { detectCgroupLayout, type CgroupLayoutInfo } from '../containers/cgroups.ts';
import { ContainerResolver } from '../containers/resolver.ts';
import { detectRuntimeClients } from '../containers/runtimes/detect.ts';
import type { RuntimeClient } from '../containers/runtimes/types.ts';
import { cgroupSensorSpec } from '../containers/sensor.ts';
import { Manager, type ManagerStats } from '../manager/manager.ts';
import { procConnectorFallback } from '../process/connector.ts';
import { ProcessResolver } from '../process/resolver.ts';
import { Scrubber } from '../process/scrub.ts';
import type { ProcessEntry } from '../process/types.ts';
import { HostFiles } from '../process/host-files.ts';
import { UserResolver } from '../process/users.ts';
import { PerfBufReader } from '../ringbuf/perfbuf.ts';
import { RING_CTL_MAP, RingBufReader, type EventReader } from '../ringbuf/ringbuf.ts';
import { SIZEOF } from '../events/layout.generated.ts';
import { buildSinks, createSinks, diffSinks, validateSinks } from '../sinks/index.ts';
import { resolveStoreOptions, type StoreSink } from '../sinks/store-sink.ts';
import { retentionOf, type Store, type StoreRetention } from '../store/store.ts';
import { calibrate } from '../pipeline/clock.ts';
import { Pipeline, type Decoded, type PipelineCounters } from '../pipeline/pipeline.ts';
import { agentEnrichment, pipelineTables } from '../pipeline/tables.ts';
import { Router } from '../pipeline/router.ts';
import { RuleEngine, type RulesStatus } from '../rules/engine.ts';
import { ruleSetFor, type RuleSet } from '../rules/rules.ts';
import { enableRunTimeStats, type StatsHandle } from '../bpf/stats.ts';
import { SyscallSensor, type SyscallSensorStats } from '../syscalls/sensor.ts';
import { normalizeSyscallConfig, type SyscallSensorConfig } from '../syscalls/config.ts';
import type { Sink, SinkStats } from '../pipeline/types.ts';
import { account, foldRetired, type Accounting, type AccountingInput, type RetiredSinkInput } from './accounting.ts';

export type AgentState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface AgentStatus {
  state: AgentState;
  pid: number;
  startedAt: string | undefined;
  uptimeSeconds: number;
  mode: { process: string | undefined; channel: 'ringbuf' | 'perf' | 'none'; cgroups: string; fallbackReason?: string };
  sensors: ManagerStats[];
  reader: (ReturnType<EventReader['stats']> & { fill: number }) | undefined;
  kernel: { emitted: number; reserveFailed: number; outputFailed: number; lostByOpcode: Record<number, number> };
  pipeline: PipelineCounters;
  process: ReturnType<ProcessResolver['stats']>['cache'] & { state: string; execKill?: ExecKillStatus };
  containers: ReturnType<ContainerResolver['stats']> | undefined;
  /** The syscall sensor's state and in-kernel filter counters; its events are counted by the pipeline (byType). */
  syscalls: Omit<SyscallSensorStats, 'manager' | 'events' | 'decodeErrors' | 'handlerErrors'> | undefined;
  sinks: Record<string, SinkStats>;
  /** The subscribers there are now (SSE clients, the rule engine). */
  subscribers: ReturnType<Router['stats']>;
  /** Per kind of subscriber, every one since the start, those that left included (counters that only grow). */
  subscriberTotals: ReturnType<Router['totals']>;
  /** The detection rules: what is loaded, what they matched, what they lost; undefined: rules are off. */
  rules: RulesStatus | undefined;
  /** Where every record went: kernel emitted = delivered + counted drops, per sink (final once stopped). */
  accounting: Accounting;
  /** The running configuration's generation and its reloads (applied, rejected whole, the last one). */
  config: { generation: number; reloads: { applied: number; rejected: number }; lastReload?: ReloadRecord };
  features: Record<string, { supported: boolean; reason: string }>;
}

export interface AgentOptions {
  config: VigilConfig;
  /** Progress while sensors load and the snapshot is taken. */
  progress?: (step: string) => void;
  /** Problems while running that cost events but not the agent (the first of each kind). */
  warn?: (message: string) => void;
  /** Tests: runtime clients instead of auto-detection. */
  runtimeClients?: RuntimeClient[];
  /** Tests: extra sinks. */
  sinks?: Sink[];
  /**
   * Reads the configuration again (`vigil run`: its file, then its flags), for reload() without an argument:
   * SIGHUP and POST /v1/config/reload. Throws ConfigError for a bad one.
   */
  load?: () => VigilConfig;
}

/** What a reload did: the fields it changed (none: the configuration read was the running one). */
export interface ReloadResult {
  changed: string[];
  /** The configuration's generation now: 1 at start, one more per reload that changed something. */
  generation: number;
  /** How the syscall sensor took it. */
  syscalls: 'updated' | 'started' | 'unchanged' | 'not loaded (no BPF)';
  /**
   * When sinks changed: the sinks added and removed by name (a sink whose options changed is in both). The
   * removed ones got every event up to the reload and close in the background; the added ones get every
   * event after it.
   */
  sinks?: { added: string[]; removed: string[] };
  /**
   * When process.scrub changed: the cached images scrubbed again by the new rules, and the arguments and
   * variables that changed (ProcessCache.setScrubber).
   */
  scrub?: { images: number; scrubbedArgs: number; scrubbedEnv: number };
}

export interface ReloadRecord {
  at: string;
  ok: boolean;
  changed?: string[];
  error?: string;
}

const readProcFile = (p: string): string => fs.readFileSync(p, 'utf8');
const inodeOf = (p: string): number | undefined => {
  try {
    return fs.statSync(p).ino;
  } catch {
    return undefined; // gone, or out of reach: nothing is learned
  }
};

const OWNED_MAPS = ['vigil_stats', 'vigil_lost', 'vigil_containers', RING_CTL_MAP] as const;

/** Removed sinks listed one by one in the accounting (status, the stop log); earlier ones are summed. */
export const RETIRED_LISTED = 16;

/** A sink a reload removed: the sink until it has closed, then its final counters. */
interface RetiredSink {
  name: string;
  before: number;
  through: number;
  generations: [number, number];
  closed: Promise<void>;
  sink: Sink | undefined;
  final: SinkStats | undefined;
}

const retiredInput = (r: RetiredSink): RetiredSinkInput => ({ ...(r.final ?? r.sink!.stats()), name: r.name, before: r.before, through: r.through, generations: r.generations });

/** A rule set's in-kernel kill rules, per sensor that checks them: the syscall sensor on file events, the process sensor on execs. */
interface KernelKillSets {
  syscalls: KernelKillSet | undefined;
  process: KernelKillSet | undefined;
}

/**
 * The in-kernel kill rules of a rule set, numbered for the kernel, per sensor (undefined: none for it).
 * Throws InvalidArgumentError when the kernel cannot do them: no BPF (`noBpf` says why), a rule about file
 * events the syscall sensor does not report, or more rules or strings than a sensor's maps hold. Nothing has
 * changed then.
 */
function kernelKillSets(set: RuleSet | undefined, enforce: boolean, ops: ReadonlySet<string>, noBpf: string | undefined, containers: boolean): KernelKillSets {
  const rules = set?.kernelRules ?? [];
  if (!rules.length) return { syscalls: undefined, process: undefined };
  const names = rules.map((r) => JSON.stringify(r.name)).join(', ');
  if (noBpf) throw new InvalidArgumentError(`rules: ${names} kill or deny in the kernel (kill: {inKernel: true}, deny), which needs BPF (${noBpf}); remove inKernel to kill from user space`);
  const unixRules = rules.filter((r) => r.selector.unix);
  const unixHook = unixRules.length ? feature('cgroup_unix_connect') : undefined;
  if (unixHook && !unixHook.supported)
    throw new InvalidArgumentError(`rules: ${unixRules.map((r) => JSON.stringify(r.name)).join(', ')} deny connects to unix socket paths in the kernel, which this kernel cannot (${unixHook.reason}); deny from user space (actions: [{kill: {}}]), or leave the socket path out`);
  const scoped = rules.find((r) => r.selector.container);
  if (scoped && !containers) throw new InvalidArgumentError(`rules: ${JSON.stringify(scoped.name)} ${scoped.selector.denies ? 'denies' : 'kills'} in the kernel in containers only (${scoped.selector.container!.text}), which needs the container resolver: set containers.enabled: true`);
  const of = (sensor: 'syscalls' | 'process') => rules.filter((r) => killSensor(r.selector) === sensor);
  for (const r of of('syscalls')) {
    const off = r.selector.ops.filter((op) => !ops.has(op));
    if (off.length && r.selector.denies) throw new InvalidArgumentError(`rules: ${JSON.stringify(r.name)} denies ${off.join(', ')}s in the kernel, which the syscall sensor does not report: turn them on (events.network.${off[0]})`);
    if (off.length) throw new InvalidArgumentError(`rules: ${JSON.stringify(r.name)} kills in the kernel on ${off.join(', ')} events, which the syscall sensor does not report: turn them on (events.files.${off[0]}, or secretReads / sensitiveWrites for opens)`);
  }
  checkKillFits(of('syscalls').map((r) => r.selector), 'kill and deny rules on file events, connects and binds');
  checkKillFits(of('process').map((r) => r.selector), 'kill rules on execs');
  const protect = [...lineOf(process.pid)];
  const setOf = (rs: typeof rules): KernelKillSet | undefined =>
    rs.length ? { rules: rs.map((r) => ({ id: killRuleNumber(r.name), signal: r.signal ? signalNumber(r.signal)! : 0, selector: r.selector })), dryRun: !enforce, protect } : undefined;
  return { syscalls: setOf(of('syscalls')), process: setOf(of('process')) };
}

export class Agent {
  readonly router: Router;
  #config: VigilConfig;
  #generation = 1;
  #reloads = { applied: 0, rejected: 0 };
  #lastReload: ReloadRecord | undefined;
  #bpf = false;
  #o: AgentOptions;
  #state: AgentState = 'created';
  #startedAt: number | undefined;
  #maps: Record<string, BpfMap> = {};
  #channel: 'ringbuf' | 'perf' | 'none' = 'none';
  #reader: EventReader | undefined;
  #process: ProcessResolver | undefined;
  #containers: ContainerResolver | undefined;
  #syscalls: SyscallSensor | undefined;
  #layout: CgroupLayoutInfo | undefined;
  #managers: Manager[] = [];
  /** The kill scopes told of the containers' changes, and what stops that (#watchKillScopes). */
  readonly #scopeWatches = new Map<KillScopes, () => void>();
  #probeStats: StatsHandle | undefined;
  #pipeline: Pipeline | undefined;
  #sinks: Sink[] = [];
  /** Per sink a reload added: the events the pipeline had made when it joined, and the generation. */
  #joined = new Map<Sink, { before: number; generation: number }>();
  /**
   * Sinks reloads removed, the latest RETIRED_LISTED: closing, or closed (then only their final counters are
   * kept, not the sink), each accounted up to its removal. Earlier ones, once closed, are folded into
   * #retiredEarlier.
   */
  #retired: RetiredSink[] = [];
  #retiredEarlier: RetiredSinkInput | undefined;
  #store: Store | undefined;
  /** The store's sink, which a reload gives new retention limits. */
  #storeSink: StoreSink | undefined;
  #users = new UserResolver();
  /** Whether executables are the host's files: for events (process.hostExe) and the process dumps alike. */
  readonly #hostFiles = new HostFiles();
  /** Event types whose pipeline failure was reported (see onError). */
  #failedTypes = new Set<string>();
  #rules: RuleEngine | undefined;
  #stopping: Promise<void> | undefined;
  /** Counters taken at stop, after the last record was read and the sinks closed, before the maps closed. */
  #final: { kernel: AgentStatus['kernel']; accounting: Accounting } | undefined;

  constructor(o: AgentOptions) {
    this.#o = o;
    this.#config = o.config;
    this.router = new Router(o.config.pipeline.subscriberQueue);
  }

  /** The configuration running now (reload() replaces it). */
  get config(): VigilConfig {
    return this.#config;
  }
  get state(): AgentState {
    return this.#state;
  }
  get processes(): ProcessResolver | undefined {
    return this.#process;
  }
  get containers(): ContainerResolver | undefined {
    return this.#containers;
  }
  /** The detection rule engine (its rule set is undefined when rules are off). */
  get ruleEngine(): RuleEngine | undefined {
    return this.#rules;
  }
  get store(): Store | undefined {
    return this.#store;
  }
  /** The user name of a cached process, as its events give it (UserResolver.processUserName). */
  processUserName(e: ProcessEntry): string | undefined {
    return this.#users.processUserName(e);
  }

  /** Whether a cached process's executable is the host's file, as its events say (process.hostExe). */
  processHostExe(e: ProcessEntry): boolean | undefined {
    return this.#hostFiles.hostExeOf(e);
  }

  #step(s: string): void {
    this.#o.progress?.(s);
  }

  /** What `vigil rules check` would warn about in the rules just loaded (they load all the same). */
  #ruleWarnings(set: RuleSet): void {
    for (const w of set.warnings) this.#o.warn?.(`rules: ${w.path}: ${w.message}`);
  }

  /**
   * Starts everything. On failure everything started so far is stopped again and the error is rethrown
   * (PermissionError, NotSupportedError, VerifierError, InvalidArgumentError from sink options, ...).
   */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new Error(`agent is ${this.#state}`);
    this.#state = 'starting';
    this.#startedAt = Date.now();
    try {
      await this.#start();
      this.#state = 'running';
    } catch (err) {
      this.#state = 'failed';
      await this.#stop();
      throw err;
    }
  }

  async #start(): Promise<void> {
    const cfg = this.config;
    calibrate();
    fs.mkdirSync(cfg.agent.dataDir, { recursive: true, mode: 0o700 });

    // Validate what can be validated before anything touches the kernel: syscall events, then sinks.
    const syscallConfig = syscallSensorConfig(cfg);
    const probeSyscalls = new SyscallSensor(syscallConfig); // validates (InvalidArgumentError naming the field)
    this.#step('opening sinks');
    const built = createSinks(cfg.sinks, { dataDir: cfg.agent.dataDir });
    this.#sinks = [...built.sinks, ...(this.#o.sinks ?? [])];
    this.#store = built.store;
    this.#storeSink = built.storeSink;

    this.#step('checking privileges and kernel features');
    let bpf = cfg.process.mode !== 'procfs';
    let whyNot: string | undefined;
    if (bpf) {
      try {
        requireBpfPrivileges();
        ensureBpffs();
        ensureTracefs();
      } catch (err) {
        if (cfg.process.mode === 'bpf' || !(err instanceof PermissionError || err instanceof NotSupportedError)) throw err;
        bpf = false;
        whyNot = (err as Error).message;
      }
    }
    this.#layout = detectCgroupLayout();

    const { decoders, held, outputs, types } = pipelineTables(cfg.events, probeSyscalls.config.ops);

    this.#process = new ProcessResolver({
      mode: bpf ? 'bpf' : 'procfs',
      fallback: procConnectorFallback(),
      sensor: { maxArgsBytes: cfg.process.maxArgsBytes, maxEnvBytes: cfg.process.maxEnvBytes, threads: cfg.process.threads, credentials: cfg.process.credentials },
      scrub: cfg.process.scrub,
      cache: { exitedGraceMs: cfg.process.exitedGraceSeconds * 1000, maxEntries: cfg.process.maxEntries },
    });
    if (cfg.containers.enabled) {
      this.#containers = new ContainerResolver({
        layout: this.#layout,
        clients: this.#o.runtimeClients ?? detectRuntimeClients(cfg.containers.runtimes === 'auto' ? undefined : cfg.containers.runtimes),
        expiryMs: cfg.containers.expirySeconds * 1000,
        timeoutMs: cfg.containers.enrichTimeoutMs,
        containerdNamespaces: cfg.containers.containerdNamespaces,
        onEvent: (ev) => this.#pipeline?.containerEvent(ev),
      });
    }
    this.#pipeline = new Pipeline({
      decoders,
      held,
      outputs,
      cache: this.#process.cache,
      containers: this.#containers,
      enrich: agentEnrichment(this.#users, this.#hostFiles),
      router: this.router,
      sinks: this.#sinks,
      types,
      reorderWindowMs: cfg.pipeline.reorderWindowMs,
      holdForEnrichmentMs: cfg.pipeline.holdForEnrichmentMs,
      onProcessEvent: (ev) => {
        // A cgroup no kernel event announced (the eBPF-less mode has no cgroup sensor; a mkdir record can be
        // lost): learned from /proc/<pid>/cgroup at the process's fork or exec, before that very event is
        // enriched. One Map lookup per process event; the read happens once per new cgroup.
        const c = this.#containers;
        if (c && ev.cgroupId && (ev.type === 'exec' || ev.type === 'fork') && !c.knows(ev.cgroupId)) c.learnFromProcess(ev.cgroupId, ev.pid, readProcFile, inodeOf);
      },
      onError: (err, type) => {
        // Once per event type: a bug that hits every event must not flood the log; the count is in status.
        if (this.#failedTypes.has(type)) return;
        this.#failedTypes.add(type);
        this.#o.warn?.(`dropping ${type} events that fail in the pipeline (counted in dropped.failed): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      },
    });

    // Rules are read and compiled again here (the files may have changed since the configuration was checked).
    const ruleSet = ruleSetFor(cfg.rules);
    if (ruleSet) {
      this.#step(`loading ${ruleSet.enabledCount} detection rules`);
      this.#ruleWarnings(ruleSet);
    }
    // Rules that kill in the kernel need BPF, and the syscall sensor to report their file events: checked before any load.
    const kill = kernelKillSets(ruleSet, cfg.rules.enforce, probeSyscalls.config.ops, bpf ? undefined : (whyNot ?? 'process.mode is procfs'), cfg.containers.enabled);
    const pipeline = this.#pipeline;
    this.#rules = new RuleEngine({ router: this.router, emit: (alert) => pipeline.emitSynthetic(alert), queue: cfg.rules.queue, enforce: cfg.rules.enforce });
    this.#rules.setRules(ruleSet);

    this.#bpf = bpf;
    if (bpf) {
      this.#step('creating the shared ring buffer and maps');
      this.#createSharedMaps();
      this.#step('loading the process sensor and taking the /proc snapshot');
      this.#process.start({ sharedRing: this.#channel === 'ringbuf' ? this.#maps.vigil_events : undefined, sharedMaps: this.#sharedForSensors(), cgroupV1Subsys: this.#layout.v1SubsysId });
      this.#managers.push(this.#process.manager!);
      if (kill.process) this.#process.execKill!.apply(kill.process);
      if (this.#containers) {
        this.#step('loading the cgroup sensor');
        const { spec, options } = cgroupSensorSpec({ sharedRing: this.#channel === 'ringbuf' ? this.#maps.vigil_events : undefined, sharedMaps: this.#sharedForSensors(), cgroupV1Subsys: this.#layout.v1SubsysId, channel: this.#channel === 'perf' ? 'perf' : 'ringbuf' });
        const m = new Manager(spec);
        this.#managers.push(m);
        m.init(options);
        m.start();
      }
      if (probeSyscalls.config.ops.size) {
        this.#step(`loading the syscall sensor (${[...probeSyscalls.config.ops].join(', ')})`);
        this.#startSyscallSensor(syscallConfig, kill.syscalls);
      }
    } else {
      this.#step(whyNot ? `no BPF (${whyNot}); using the proc connector and /proc` : 'process.mode is procfs: using the proc connector and /proc, no BPF');
      this.#process.start({ feed: (ev) => this.#pipeline!.feed(ev as Decoded) });
    }

    if (this.#containers) {
      this.#step('finding containers and querying their runtimes');
      this.#containers.start();
      if (this.#maps.vigil_containers) this.#containers.attachKernelMap(this.#maps.vigil_containers);
      this.#watchKillScopes();
    }

    if (bpf) {
      if (this.config.agent.probeStats) this.#probeStats = enableRunTimeStats();
      this.#step('reading events');
      this.#startReader();
    }
  }

  /**
   * Tells each sensor's kill scopes (where its in-kernel rules about containers hold) of every container and
   * of every change to one, once per sensor: the syscall sensor may come later, with a reload.
   */
  #watchKillScopes(): void {
    const containers = this.#containers;
    if (!containers) return;
    for (const s of [this.#process?.execKill?.scopes, this.#syscalls?.filters?.killScopes]) {
      if (!s || this.#scopeWatches.has(s)) continue;
      this.#scopeWatches.set(
        s,
        containers.watch((c, cgroupIds) => {
          const parts = containerParts(c);
          s.update({ id: c.id, cgroupIds, container: parts.ref, pod: parts.pod ?? NO_MEMBERS });
        }),
      );
    }
  }

  /** Loads and starts the syscall sensor on the shared ring and maps; on failure nothing stays loaded. */
  #startSyscallSensor(config: SyscallSensorConfig, kill: KernelKillSet | undefined): void {
    const sensor = new SyscallSensor(config, {
      kill,
      sharedRing: this.#channel === 'ringbuf' ? this.#maps.vigil_events : undefined,
      containersMap: this.#maps.vigil_containers,
      sharedMaps: this.#sharedForSensors(),
      cgroupV1Subsys: this.#layout!.v1SubsysId,
    });
    sensor.start();
    this.#syscalls = sensor;
    this.#managers.push(sensor.manager!);
  }

  /**
   * Applies a new configuration while running (SIGHUP, POST /v1/config/reload): `next`, or what the `load`
   * option reads now. Only event types and filters change in place (config/reload.ts); all or nothing:
   * - a bad configuration (ConfigError), or one that changes fields only a start applies
   *   (ReloadRefusedError), changes nothing;
   * - what the ring holds is delivered under the old configuration first;
   * - the syscall sensor is updated, or loaded when the old configuration needed none; if that fails
   *   (a required probe that cannot attach), the sensor keeps its old probes and filters, the pipeline its
   *   old event types, and the error is rethrown;
   * - only then does the pipeline take the new event types.
   * Every attempt is counted in status().config, the last one with its outcome.
   */
  reload(next?: VigilConfig): ReloadResult {
    try {
      if (this.#state !== 'running') throw new StateError(`the agent is ${this.#state}, not running: nothing to reload`);
      if (!next) {
        if (!this.#o.load) throw new StateError('this agent has no configuration source to read again');
        next = this.#o.load();
      }
      const plan = planReload(this.#config, next);
      if (plan.restartNeeded.length) throw new ReloadRefusedError(plan.restartNeeded);
      // Rule files are read again whether or not the configuration changed: SIGHUP after editing one applies it.
      const rules = ruleSetFor(next.rules);
      const rulesChanged = rules?.digest !== this.#rules?.ruleSet?.digest || next.rules.queue !== this.#config.rules.queue || next.rules.enforce !== this.#config.rules.enforce;
      if (rulesChanged && !touches(plan, 'rules')) plan.changed.push('rules.files (contents)');
      let syscalls: ReloadResult['syscalls'] = 'unchanged';
      let scrub: ReloadResult['scrub'];
      let sinks: ReloadResult['sinks'];
      if (plan.changed.length) {
        const sys = syscallSensorConfig(next);
        const ops = normalizeSyscallConfig(sys).ops; // validates again: a config built in code reaches here unchecked
        const kill = kernelKillSets(rules, next.rules.enforce, ops, this.#bpf ? undefined : 'the agent runs without BPF', this.#containers !== undefined);
        const scrubber = touches(plan, 'process.scrub') ? new Scrubber(next.process.scrub) : undefined;
        const ctx = { dataDir: next.agent.dataDir };
        // The store's retention limits are the only part of it a reload may change (planReload refused the
        // rest): given to its writer in place, and the store diffed as it started, so it is not replaced.
        let retention: StoreRetention | undefined;
        let sinkPlan: ReturnType<typeof diffSinks> | undefined;
        if (touches(plan, 'sinks')) {
          const before = validateSinks(this.#config.sinks, ctx);
          let after = validateSinks(next.sinks, ctx);
          const store = after.find((s) => s.kind === 'store');
          if (store && touches(plan, 'sinks.store')) {
            retention = retentionOf(resolveStoreOptions(store.opts));
            const started = before.find((s) => s.kind === 'store');
            after = after.map((s) => (s === store && started ? started : s));
          }
          sinkPlan = diffSinks(before, after);
        }
        // New sinks before anything changes: building one can fail, and then nothing was changed.
        const added = sinkPlan ? buildSinks(sinkPlan.add).sinks : [];
        try {
          this.drain();
          if (!this.#bpf) syscalls = ops.size ? 'not loaded (no BPF)' : 'unchanged';
          else if (this.#syscalls) {
            this.#syscalls.update(sys);
            this.#syscalls.setKill(kill.syscalls ?? NO_KILL_RULES); // fits: kernelKillSets checked (checkKillFits)
            syscalls = 'updated';
          } else if (ops.size) {
            this.#startSyscallSensor(sys, kill.syscalls);
            this.#watchKillScopes();
            syscalls = 'started';
          }
          this.#process?.execKill?.apply(kill.process ?? NO_KILL_RULES);
        } catch (err) {
          for (const s of added) void s.close();
          throw err;
        }
        const { outputs, types } = pipelineTables(next.events, ops);
        this.#pipeline!.retarget(types, outputs);
        if (sinkPlan) {
          this.#swapSinks(sinkPlan.remove, added, sinkPlan.replaces);
          if (added.length || sinkPlan.remove.length) sinks = { added: added.map((s) => s.name), removed: sinkPlan.remove };
        }
        if (retention) this.#storeSink?.setRetention(retention);
        if (rulesChanged) {
          this.#rules!.flush(); // what was routed before the reload is checked by the rules in force then
          this.#rules!.setRules(rules, next.rules.queue, next.rules.enforce);
          if (rules) this.#ruleWarnings(rules);
        }
        // Last: it cannot fail, and what it scrubs again cannot be put back.
        if (scrubber) scrub = this.#process!.cache.setScrubber(scrubber);
        this.#config = next;
        this.#generation++;
      }
      this.#reloads.applied++;
      this.#lastReload = { at: new Date().toISOString(), ok: true, changed: plan.changed };
      return { changed: plan.changed, generation: this.#generation, syscalls, ...(sinks ? { sinks } : {}), ...(scrub ? { scrub } : {}) };
    } catch (err) {
      this.#reloads.rejected++;
      this.#lastReload = { at: new Date().toISOString(), ok: false, error: (err as Error).message };
      throw err;
    }
  }

  /**
   * Between two events: the sinks named in `remove` get nothing more and close in the background (their
   * queues go out first, within their close timeout); `added` get every later event. An added sink that
   * writes where a removed one did (the same file or descriptor) starts writing once that one has closed.
   */
  #swapSinks(remove: string[], added: Sink[], replaces: Map<string, string>): void {
    const removed = this.#sinks.filter((s) => remove.includes(s.name) && !(this.#o.sinks ?? []).includes(s));
    this.#sinks = [...this.#sinks.filter((s) => !removed.includes(s)), ...added];
    const made = this.#pipeline!.setSinks(this.#sinks);
    for (const s of removed) {
      const closed = s.close().catch(() => {}); // a failure to close is counted by the sink
      const joined = this.#joined.get(s) ?? { before: 0, generation: 1 };
      const r: RetiredSink = { name: s.name, sink: s, final: undefined, before: joined.before, through: made, generations: [joined.generation, this.#generation], closed };
      this.#retired.push(r);
      void closed.then(() => {
        r.final = s.stats();
        r.sink = undefined;
        this.#foldRetired();
      });
      this.#joined.delete(s);
      for (const a of added) if (replaces.get(a.name) === s.name) a.startAfter?.(closed);
    }
    for (const a of added) this.#joined.set(a, { before: made, generation: this.#generation + 1 });
    this.#foldRetired();
  }

  /** Folds the earliest removed sinks that have closed into #retiredEarlier while more than RETIRED_LISTED are listed. */
  #foldRetired(): void {
    while (this.#retired.length > RETIRED_LISTED && this.#retired[0]!.final) {
      this.#retiredEarlier = foldRetired(this.#retiredEarlier, retiredInput(this.#retired.shift()!));
    }
  }

  #createSharedMaps(): void {
    const ring = this.config.ring;
    if (feature('ringbuf').supported) {
      this.#maps.vigil_events = BpfMap.create({ name: 'vigil_events', type: MapType.RINGBUF, keySize: 0, valueSize: 0, maxEntries: ring.sizeMiB << 20 });
      // The reader's say over the sensors' wakeups (bpf/include/vigil.h), mapped by the reader.
      this.#maps[RING_CTL_MAP] = BpfMap.create({ name: RING_CTL_MAP, type: MapType.ARRAY, keySize: 4, valueSize: SIZEOF.vigil_ring_ctl, maxEntries: 1, flags: MapFlags.MMAPABLE });
      this.#channel = 'ringbuf';
    } else {
      this.#maps.vigil_events_perf = BpfMap.create({ name: 'vigil_events_pe', type: MapType.PERF_EVENT_ARRAY, keySize: 4, valueSize: 4, maxEntries: numPossibleCpus() });
      this.#channel = 'perf';
    }
    this.#maps.vigil_stats = BpfMap.create({ name: 'vigil_stats', type: MapType.PERCPU_ARRAY, keySize: 4, valueSize: 8, maxEntries: 8 });
    this.#maps.vigil_lost = BpfMap.create({ name: 'vigil_lost', type: MapType.PERCPU_ARRAY, keySize: 4, valueSize: 8, maxEntries: 64 });
    this.#maps.vigil_containers = BpfMap.create({ name: 'vigil_containers', type: MapType.HASH, keySize: 8, valueSize: 4, maxEntries: 16384 });
  }

  /** Maps every sensor object reuses instead of creating its own (the perf array, in perf mode, too). */
  #sharedForSensors(): Record<string, BpfMap> {
    const out: Record<string, BpfMap> = {};
    for (const n of OWNED_MAPS) if (this.#maps[n]) out[n] = this.#maps[n]!;
    if (this.#maps.vigil_events_perf) out.vigil_events_perf = this.#maps.vigil_events_perf;
    return out;
  }

  #startReader(): void {
    const handler = this.#pipeline!.handleRecord;
    if (this.#channel === 'ringbuf') {
      const { batchDelayMs, maxBatchDelayMs } = this.config.ring;
      // A burst waits in the ring while the file sink catches up, rather than overflowing its queue (see Sink.room).
      const pipeline = this.#pipeline!;
      this.#reader = new RingBufReader(this.#maps.vigil_events!, { batchDelayMs, maxBatchDelayMs, control: this.#maps[RING_CTL_MAP], credit: () => pipeline.sinkRoom(), holdsBack: () => pipeline.holdsBack() });
    }
    else this.#reader = new PerfBufReader(this.#maps.vigil_events_perf!, { batchDelayMs: this.config.ring.batchDelayMs });
    this.#reader.start(handler);
  }

  /** Per-CPU kernel counters summed over CPUs (shared by every sensor). */
  kernelCounters(): AgentStatus['kernel'] {
    const out = { emitted: 0, reserveFailed: 0, outputFailed: 0, lostByOpcode: {} as Record<number, number> };
    const stats = this.#maps.vigil_stats;
    if (!stats) return this.#final?.kernel ?? out;
    for (const [k, v] of stats.lookupAll()) {
      const i = k.readUInt32LE(0);
      const n = stats.sumU64(v);
      if (i === 0) out.reserveFailed = n;
      else if (i === 1) out.outputFailed = n;
      else if (i === 2) out.emitted = n;
    }
    const lost = this.#maps.vigil_lost;
    if (lost) for (const [k, v] of lost.lookupAll()) {
      const n = lost.sumU64(v);
      if (n) out.lostByOpcode[k.readUInt32LE(0)] = n;
    }
    return out;
  }

  /**
   * Where every record went (see accounting.ts). While running, one snapshot with records in flight; after
   * stop(), the final and exact one. Never throws for agent states: before start it is all zeros.
   */
  accounting(): Accounting {
    if (this.#final) return this.#final.accounting;
    // The kernel first: the reader and pipeline counters read after it only move on this thread, so
    // `unread` is never negative by more than the records being submitted at this instant.
    const kernel = this.kernelCounters();
    return account({ kernel, reader: this.#reader?.stats(), pipeline: this.#pipelineCounters(), ...this.#sinkAccounts(), final: false });
  }

  #pipelineCounters(): PipelineCounters {
    return this.#pipeline?.counters() ?? { records: 0, decoded: 0, dropped: { decodeError: 0, unknownOpcode: 0, filtered: 0, failed: 0 }, heldOverflow: 0, internal: 0, emitted: 0, synthetic: 0, buffered: 0, reorder: { late: 0, reordered: 0 }, byType: {} };
  }

  #sinkStats(): Record<string, SinkStats> {
    return Object.fromEntries(this.#sinks.map((s) => [s.name, s.stats()]));
  }

  /** The accounting's view of the sinks (`stats`, when taken already): the current ones with where they joined, and the retired ones. */
  #sinkAccounts(stats = this.#sinkStats()): Pick<AccountingInput, 'sinks' | 'retired'> {
    const sinks = Object.fromEntries(this.#sinks.map((s) => [s.name, { ...stats[s.name]!, before: this.#joined.get(s)?.before ?? 0 }]));
    const retired = this.#retired.map(retiredInput);
    return { sinks, retired: this.#retiredEarlier ? [this.#retiredEarlier, ...retired] : retired };
  }

  status(): AgentStatus {
    const ps = this.#process?.stats();
    const kernel = this.kernelCounters();
    const reader = this.#reader?.stats();
    const pipeline = this.#pipelineCounters();
    const sinks = this.#sinkStats();
    return {
      state: this.#state,
      pid: process.pid,
      startedAt: this.#startedAt ? new Date(this.#startedAt).toISOString() : undefined,
      uptimeSeconds: this.#startedAt ? Math.round((Date.now() - this.#startedAt) / 1000) : 0,
      mode: { process: ps?.mode, channel: this.#channel, cgroups: this.#layout?.layout ?? 'unknown', fallbackReason: ps?.fallbackReason },
      sensors: this.#managers.filter((m) => m.state !== 'stopped').map((m) => m.stats()),
      reader: this.#reader ? { ...reader!, fill: this.#reader.fill() } : undefined,
      kernel,
      pipeline,
      process: { ...ps!.cache, state: ps!.state, ...(ps!.execKill ? { execKill: ps!.execKill } : {}) },
      containers: this.#containers?.stats(),
      // The sensor's own event counters stay at zero here: its records go through the shared channel to the pipeline.
      syscalls: this.#syscalls ? (({ manager: _m, events: _e, decodeErrors: _d, handlerErrors: _h, ...rest }) => rest)(this.#syscalls.stats()) : undefined,
      sinks,
      subscribers: this.router.stats(),
      subscriberTotals: this.router.totals(),
      rules: this.#rules?.status(),
      features: allFeatures(),
      accounting: this.#final?.accounting ?? account({ kernel, reader, pipeline, ...this.#sinkAccounts(sinks), final: false }),
      config: { generation: this.#generation, reloads: { ...this.#reloads }, lastReload: this.#lastReload },
    };
  }

  /**
   * Closes the sinks' files and opens them again at their paths (SIGUSR1, after logrotate moved or truncated
   * them); returns the names of the sinks that did. Nothing is lost: lines being written end in the old file,
   * the rest in the new one.
   */
  async reopenFiles(): Promise<string[]> {
    if (this.#state !== 'running') throw new StateError(`the agent is ${this.#state}, not running: no file to reopen`);
    const sinks = this.#sinks.filter((s) => s.reopen);
    await Promise.all(sinks.map((s) => s.reopen!()));
    return sinks.map((s) => s.name);
  }

  /** Drains what the kernel has handed over so far through the whole pipeline (for status and tests). */
  drain(): void {
    if (this.#reader) while (this.#reader.drain() > 0);
    this.#pipeline?.flush();
    this.#rules?.flush();
  }

  /**
   * Reads the ring to its end after the sensors were detached. A program that was already running when its
   * link went away can still submit a record for a moment, so the ring is read until the reader has
   * everything the kernel counted as emitted, seen twice a few ms apart (bounded: about a second).
   */
  async #drainToEnd(): Promise<void> {
    const r = this.#reader;
    if (!r) return;
    while (r.drain() > 0);
    if (this.#channel !== 'ringbuf') return;
    let settled = 0;
    for (let i = 0; i < 100 && settled < 2; i++) {
      await new Promise((res) => setTimeout(res, 10));
      while (r.drain() > 0);
      settled = r.stats().received === this.kernelCounters().emitted ? settled + 1 : 0;
    }
  }

  /** Stops everything; safe to call twice (the second call waits for the first). */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#state !== 'failed') this.#state = 'stopping';
    // 1. no new records: detach every sensor's links, but keep its programs and maps loaded until the ring
    //    is processed: the pipeline still needs them (the process cache looks up the process sensor's map,
    //    and a closed object's map is freed memory).
    for (const m of [...this.#managers].reverse()) {
      try {
        if (m.state === 'running') m.pause();
      } catch {
        // stopped below either way
      }
    }
    // 2. take what is already in the ring, through the pipeline, into the sinks
    try {
      await this.#drainToEnd();
    } catch {
      // a reader that cannot drain still closes below
    }
    this.#pipeline?.stop();
    this.#rules?.stop(); // what the rules still had queued is checked, its alerts go to the sinks below
    // 3. release the sensors (objects closed), the resolvers and the reader
    for (const unwatch of this.#scopeWatches.values()) unwatch();
    this.#scopeWatches.clear();
    for (const m of [...this.#managers].reverse()) m.stop();
    this.#managers = [];
    this.#probeStats?.close();
    this.#probeStats = undefined;
    this.#syscalls?.stop();
    this.#process?.stop();
    this.#containers?.stop();
    const readerStats = this.#reader ? { ...this.#reader.stats() } : undefined;
    this.#reader?.close();
    this.#reader = undefined;
    // 4. sinks: flush and close (and those reloads removed, still closing, finish)
    for (const s of this.#sinks) {
      try {
        await s.close();
      } catch {
        // keep closing the others
      }
    }
    await Promise.all(this.#retired.map((r) => r.closed));
    // 5. the final accounting, while the kernel's counters can still be read; then the maps we own
    if (this.#pipeline) {
      try {
        const kernel = this.kernelCounters();
        this.#final = { kernel, accounting: account({ kernel, reader: readerStats, pipeline: this.#pipeline.counters(), ...this.#sinkAccounts(), final: true }) };
      } catch {
        // counters that cannot be read leave the accounting unfinished, never the stop
      }
    }
    for (const m of Object.values(this.#maps)) m.close();
    this.#maps = {};
    if (this.#state !== 'failed') this.#state = 'stopped';
  }
}
