// The container resolver: cgroup id -> container. Containers are found by their cgroup paths (at start by
// walking the hierarchy, then from cgroup_mkdir events, so a container is known before its first exec) and
// enriched asynchronously from their runtime's socket (name, image, labels, pod). The hot path is one Map
// lookup; enrichment never blocks it: until the runtime answers, a container is reported with its id and
// `enrichment: 'pending'`. Runtime failures are retried with backoff and counted per runtime. A removed
// cgroup's container stays resolvable for an expiry delay, so that late events are still attributed.
import { u64Key, type BpfMap } from '../bpf/map.ts';
import type { CgroupEvent } from '../events/types.ts';
import { DEFAULT_CONTAINERD_NAMESPACES, parseCgroupPath, type ContainerRuntime, type ParsedCgroupPath } from './cgroup-path.ts';
import { detectCgroupLayout, walkHierarchy, type CgroupDir, type CgroupLayoutInfo } from './cgroups.ts';
import { RuntimeError, type PodInfo, type RuntimeClient, type RuntimeContainerInfo, type RuntimeName } from './runtimes/types.ts';

export type EnrichmentState = 'pending' | 'done' | 'failed';

export interface ContainerInfo {
  id: string;
  /** From the cgroup path, then from the runtime that answered. */
  runtime: ContainerRuntime | RuntimeName | undefined;
  name: string | undefined;
  image: string | undefined;
  imageDigest: string | undefined;
  labels: Record<string, string>;
  pid: number | undefined;
  createdAt: string | undefined;
  pod: (PodInfo & { qos?: string }) | undefined;
  /** containerd namespace, podman pod id when the path names them. */
  namespace: string | undefined;
  podmanPod: string | undefined;
  enrichment: EnrichmentState;
  enrichmentError: string | undefined;
  /** The container's cgroup (its path below the hierarchy root) and every cgroup id attributed to it. */
  cgroupPath: string;
  cgroupIds: number[];
  /** Wall-clock ms: first seen, and removal of its cgroup. */
  seenMs: number;
  stoppedMs: number | undefined;
  /** Known at start (already running when vigil started). */
  existing: boolean;
}

export interface ContainerLifecycleEvent {
  type: 'container_started' | 'container_stopped';
  container: ContainerInfo;
}

export interface RuntimeHealth {
  runtime: RuntimeName;
  endpoint: string;
  ok: number;
  notFound: number;
  errors: number;
  timeouts: number;
  lastError: string | undefined;
  lastOkMs: number | undefined;
}

export interface ContainerResolverOptions {
  clients?: RuntimeClient[];
  /** Per-call timeout of a runtime query (ms). */
  timeoutMs?: number;
  /** Retries of an enrichment that failed or found nothing, with exponential backoff from retryBaseMs. */
  maxRetries?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How long a stopped container stays resolvable (ms). */
  expiryMs?: number;
  /** Enrichments in flight at once. */
  concurrency?: number;
  containerdNamespaces?: string[];
  onEvent?: (ev: ContainerLifecycleEvent) => void;
  /** Tests: the layout and the walk. */
  layout?: CgroupLayoutInfo;
  walk?: (mount: string) => CgroupDir[];
  now?: () => number;
}

export interface ContainerResolverStats {
  layout: string;
  cgroups: number;
  containers: number;
  running: number;
  /** Cgroups seen whose path names no container. */
  hostCgroups: number;
  enrichPending: number;
  enrichDone: number;
  enrichFailed: number;
  retries: number;
  lookups: number;
  lookupMisses: number;
  runtimes: RuntimeHealth[];
}

function emptyInfo(p: ParsedCgroupPath, path: string, now: number, existing: boolean): ContainerInfo {
  return {
    id: p.containerId,
    runtime: p.runtime,
    name: undefined,
    image: undefined,
    imageDigest: undefined,
    labels: {},
    pid: undefined,
    createdAt: undefined,
    pod: p.podUid ? { name: '', namespace: '', uid: p.podUid, qos: p.qos } : undefined,
    namespace: p.namespace,
    podmanPod: p.podmanPod,
    enrichment: 'pending',
    enrichmentError: undefined,
    cgroupPath: path,
    cgroupIds: [],
    seenMs: now,
    stoppedMs: undefined,
    existing,
  };
}

export class ContainerResolver {
  readonly layout: CgroupLayoutInfo;
  readonly #o: Required<Pick<ContainerResolverOptions, 'timeoutMs' | 'maxRetries' | 'retryBaseMs' | 'retryMaxMs' | 'expiryMs' | 'concurrency' | 'containerdNamespaces'>> & ContainerResolverOptions;
  readonly #byCgroup = new Map<number, ContainerInfo>();
  readonly #byId = new Map<string, ContainerInfo>();
  readonly #paths = new Map<number, string>();
  readonly #host = new Set<number>();
  readonly #clients: RuntimeClient[];
  readonly #health = new Map<RuntimeClient, RuntimeHealth>();
  readonly #queue: { c: ContainerInfo; attempt: number }[] = [];
  #inFlight = 0;
  readonly #timers = new Set<NodeJS.Timeout>();
  #kmap: BpfMap | undefined;
  readonly #watchers: ((c: ContainerInfo, cgroupIds: number[]) => void)[] = [];
  #stopped = false;
  readonly #stats = { lookups: 0, lookupMisses: 0, enrichDone: 0, enrichFailed: 0, retries: 0 };
  #generation = 0;

  constructor(o: ContainerResolverOptions = {}) {
    this.#o = { timeoutMs: 2000, maxRetries: 6, retryBaseMs: 250, retryMaxMs: 15_000, expiryMs: 5000, concurrency: 4, containerdNamespaces: DEFAULT_CONTAINERD_NAMESPACES, ...o };
    this.layout = o.layout ?? detectCgroupLayout();
    this.#clients = o.clients ?? [];
    for (const c of this.#clients) this.#health.set(c, { runtime: c.runtime, endpoint: c.endpoint, ok: 0, notFound: 0, errors: 0, timeouts: 0, lastError: undefined, lastOkMs: undefined });
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now();
  }

  /** Walks the primary hierarchy and queues every container found for enrichment. */
  start(): void {
    const walk = this.#o.walk ?? ((m: string) => walkHierarchy(m));
    for (const d of walk(this.layout.primary.mount)) this.#learn(d.id, d.path, true);
    this.#pump();
  }

  /** Registers a cgroup by id and path; returns its container, if it is one. */
  #learn(id: number, path: string, existing: boolean): ContainerInfo | undefined {
    this.#paths.set(id, path);
    const parsed = parseCgroupPath(path, this.#o.containerdNamespaces);
    if (!parsed || parsed.conmon) {
      this.#host.add(id);
      return undefined;
    }
    let c = this.#byId.get(parsed.containerId);
    const isNew = !c;
    if (!c) {
      c = emptyInfo(parsed, path, this.#now(), existing);
      this.#byId.set(c.id, c);
    } else if (path.length < c.cgroupPath.length) {
      c.cgroupPath = path; // the container's own cgroup is the shortest path naming it (not ".../init")
    }
    if (!c.cgroupIds.includes(id)) c.cgroupIds.push(id);
    this.#byCgroup.set(id, c);
    this.#generation++;
    this.#kernelPut(id, c);
    this.#changed(c);
    if (isNew) {
      this.#queue.push({ c, attempt: 0 });
      this.#o.onEvent?.({ type: 'container_started', container: c });
    }
    return c;
  }

  // ---- hot path ----------------------------------------------------------------------------------------

  /**
   * Changes whenever byCgroupId may answer differently for some id (an id learned or forgotten), so that a
   * caller may keep its last answer until then (the enricher does, per event). A container's enrichment
   * changes its ContainerInfo in place, not the answer.
   */
  get generation(): number {
    return this.#generation;
  }

  /** The container of a cgroup id, or undefined for host cgroups and unknown ids. One Map lookup. */
  byCgroupId(id: number): ContainerInfo | undefined {
    this.#stats.lookups++;
    const c = this.#byCgroup.get(id);
    if (c === undefined) this.#stats.lookupMisses++;
    return c;
  }

  /** Whether an id is known at all (container or host), for callers that resolve unknown ids another way. */
  knows(id: number): boolean {
    return this.#byCgroup.has(id) || this.#host.has(id);
  }

  /**
   * An id nobody reported (a lost mkdir, perf-buffer reordering, the eBPF-less mode): learn it from a process
   * in it, by the cgroup path in /proc/<pid>/cgroup. The process may have moved since the id was taken (a
   * runtime moves its container's first process right after the fork), so with `inodeOf` the path is only
   * learned when its directory is the cgroup `id` names; otherwise nothing is learned and a later event
   * retries. `read` and `inodeOf` are injected by the caller so this module does no I/O itself.
   */
  learnFromProcess(id: number, pid: number, read: (p: string) => string, inodeOf?: (p: string) => number | undefined): ContainerInfo | undefined {
    if (this.knows(id)) return this.#byCgroup.get(id);
    let text: string;
    try {
      text = read(`/proc/${pid}/cgroup`);
    } catch {
      return undefined;
    }
    const want = this.layout.primary.version === 2 ? /^0::(.*)$/m : new RegExp(`^\\d+:[^:]*\\b${this.layout.primary.controllers[0]}\\b[^:]*:(.*)$`, 'm');
    const path = want.exec(text)?.[1];
    if (path === undefined) return undefined;
    if (inodeOf && inodeOf(`${this.layout.primary.mount}${path === '/' ? '' : path}`) !== id) return undefined;
    const c = this.#learn(id, path, false);
    this.#pump();
    return c;
  }

  // ---- lifecycle from the kernel -----------------------------------------------------------------------

  /** Applies a cgroup event of the primary hierarchy (others are ignored). */
  handleCgroupEvent(ev: CgroupEvent): void {
    if (ev.hierarchyId !== this.layout.hierarchyId) return;
    if (ev.op === 'mkdir' || ev.op === 'attach') {
      if (!this.knows(ev.id)) {
        this.#learn(ev.id, ev.path, false);
        this.#pump();
      }
      return;
    }
    // rmdir
    this.#host.delete(ev.id);
    const c = this.#byCgroup.get(ev.id);
    if (!c) {
      this.#paths.delete(ev.id);
      return;
    }
    if (ev.path === c.cgroupPath && c.stoppedMs === undefined) {
      c.stoppedMs = this.#now();
      this.#o.onEvent?.({ type: 'container_stopped', container: c });
      this.#later(this.#o.expiryMs, () => this.#expire(c));
    } else if (ev.path !== c.cgroupPath) {
      // a sub-cgroup of the container went away: forget just that id, after the same delay
      this.#later(this.#o.expiryMs, () => {
        this.#byCgroup.delete(ev.id);
        this.#generation++;
        this.#paths.delete(ev.id);
        this.#kernelDelete(ev.id);
        this.#changed(c);
      });
    }
  }

  #expire(c: ContainerInfo): void {
    for (const id of c.cgroupIds) {
      if (this.#byCgroup.get(id) === c) {
        this.#byCgroup.delete(id);
        this.#generation++;
        this.#kernelDelete(id);
      }
      this.#paths.delete(id);
    }
    if (this.#byId.get(c.id) === c) this.#byId.delete(c.id);
    this.#changed(c);
  }

  #later(ms: number, fn: () => void): void {
    if (this.#stopped) return;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.#timers.add(t);
  }

  // ---- enrichment --------------------------------------------------------------------------------------

  /** Clients worth asking about a container, best first: the runtime its path names, then the others. */
  #candidates(c: ContainerInfo): RuntimeClient[] {
    const hint = c.runtime;
    const rank = (cl: RuntimeClient): number => {
      if (hint === cl.runtime) return 0;
      if (hint === undefined && (cl.runtime === 'containerd' || cl.runtime === 'cri-o')) return 1; // Kubernetes cgroupfs
      return 2;
    };
    return [...this.#clients].sort((a, b) => rank(a) - rank(b));
  }

  #pump(): void {
    while (!this.#stopped && this.#inFlight < this.#o.concurrency && this.#queue.length) {
      const job = this.#queue.shift()!;
      if (job.c.stoppedMs !== undefined && job.attempt > 0) continue; // gone: stop retrying
      this.#inFlight++;
      void this.#enrich(job.c, job.attempt).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  async #enrich(c: ContainerInfo, attempt: number): Promise<void> {
    const errors: string[] = [];
    for (const client of this.#candidates(c)) {
      const h = this.#health.get(client)!;
      try {
        const info = await client.inspect(c.id, AbortSignal.timeout(this.#o.timeoutMs));
        if (this.#stopped) return;
        if (!info) {
          h.notFound++;
          continue;
        }
        h.ok++;
        h.lastOkMs = this.#now();
        this.#apply(c, info);
        this.#stats.enrichDone++;
        return;
      } catch (err) {
        h.errors++;
        if (err instanceof RuntimeError && err.kind === 'timeout') h.timeouts++;
        h.lastError = (err as Error).message;
        errors.push((err as Error).message);
      }
    }
    if (this.#stopped) return;
    c.enrichmentError = errors.length ? errors.join('; ') : this.#clients.length ? 'no runtime knows this container (yet)' : 'no runtime socket found';
    if (attempt < this.#o.maxRetries && this.#clients.length) {
      this.#stats.retries++;
      const delay = Math.min(this.#o.retryMaxMs, this.#o.retryBaseMs * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      this.#later(delay, () => {
        this.#queue.push({ c, attempt: attempt + 1 });
        this.#pump();
      });
    } else {
      c.enrichment = 'failed';
      this.#stats.enrichFailed++;
      this.#changed(c);
    }
  }

  #apply(c: ContainerInfo, r: RuntimeContainerInfo): void {
    c.runtime = r.runtime;
    c.name = r.name;
    c.image = r.image;
    c.imageDigest = r.imageDigest;
    c.labels = r.labels;
    c.pid = r.pid;
    c.createdAt = r.createdAt;
    const l = r.labels;
    const kubePod = l['io.kubernetes.pod.name'] ? { name: l['io.kubernetes.pod.name']!, namespace: l['io.kubernetes.pod.namespace'] ?? '', uid: l['io.kubernetes.pod.uid'] ?? c.pod?.uid ?? '' } : undefined;
    const pod = r.pod ?? kubePod;
    if (pod) c.pod = { ...pod, qos: c.pod?.qos };
    c.enrichment = 'done';
    c.enrichmentError = undefined;
    this.#changed(c);
  }

  // ---- watchers --------------------------------------------------------------------------------------

  /**
   * Calls `fn` for every container known now, then whenever one changes: a cgroup id learned or forgotten,
   * its enrichment done or failed, its expiry (with no cgroup ids). `cgroupIds` are those that resolve to it.
   * For views of containers kept elsewhere (the in-kernel kill rules' scopes: kill-scopes.ts). `fn` must
   * not throw. Returns what stops the calls.
   */
  watch(fn: (c: ContainerInfo, cgroupIds: number[]) => void): () => void {
    this.#watchers.push(fn);
    for (const c of this.#byId.values()) fn(c, this.#liveIds(c));
    return () => {
      const i = this.#watchers.indexOf(fn);
      if (i >= 0) this.#watchers.splice(i, 1);
    };
  }

  #liveIds(c: ContainerInfo): number[] {
    return c.cgroupIds.filter((id) => this.#byCgroup.get(id) === c);
  }

  #changed(c: ContainerInfo): void {
    if (!this.#watchers.length) return;
    const ids = this.#liveIds(c);
    for (const fn of this.#watchers) fn(c, ids);
  }

  // ---- queries ---------------------------------------------------------------------------------------

  /** Running containers (stopped ones still within their expiry delay are excluded). */
  containers(o: { includeStopped?: boolean } = {}): ContainerInfo[] {
    return [...this.#byId.values()].filter((c) => o.includeStopped || c.stoppedMs === undefined);
  }

  /** By full id, unique id prefix (≥ 6 chars) or name. */
  find(idOrName: string): ContainerInfo | undefined {
    const exact = this.#byId.get(idOrName);
    if (exact) return exact;
    const all = [...this.#byId.values()];
    const byName = all.filter((c) => c.name === idOrName);
    if (byName.length === 1) return byName[0];
    if (idOrName.length >= 6) {
      const byPrefix = all.filter((c) => c.id.startsWith(idOrName));
      if (byPrefix.length === 1) return byPrefix[0];
    }
    return undefined;
  }

  /** Every cgroup id attributed to a container (its own cgroup and the ones below it). */
  findContainerCgroupIds(containerId: string): number[] {
    return [...(this.find(containerId)?.cgroupIds ?? [])];
  }

  pathOf(cgroupId: number): string | undefined {
    return this.#paths.get(cgroupId);
  }

  stats(): ContainerResolverStats {
    const all = [...this.#byId.values()];
    return {
      layout: this.layout.layout,
      cgroups: this.#paths.size,
      containers: all.length,
      running: all.filter((c) => c.stoppedMs === undefined).length,
      hostCgroups: this.#host.size,
      enrichPending: all.filter((c) => c.enrichment === 'pending').length,
      enrichDone: this.#stats.enrichDone,
      enrichFailed: this.#stats.enrichFailed,
      retries: this.#stats.retries,
      lookups: this.#stats.lookups,
      lookupMisses: this.#stats.lookupMisses,
      runtimes: [...this.#health.values()].map((h) => ({ ...h })),
    };
  }

  // ---- the kernel's view (vigil_containers) ---------------------------------------------------------

  /** Mirrors container cgroup ids into the kernel map used by in-kernel container filters. */
  attachKernelMap(map: BpfMap): void {
    this.#kmap = map;
    for (const [id, c] of this.#byCgroup) this.#kernelPut(id, c);
  }

  #kernelPut(id: number, c: ContainerInfo): void {
    if (!this.#kmap) return;
    const v = Buffer.alloc(4);
    v.writeUInt32LE(c.pod ? 2 : 1); // 1: a container, 2: a Kubernetes pod's container
    try {
      this.#kmap.update(u64Key(id), v);
    } catch {
      // the map is full or gone: in-kernel filters fall back to user-space decisions
    }
  }

  #kernelDelete(id: number): void {
    if (!this.#kmap) return;
    try {
      this.#kmap.delete(u64Key(id));
    } catch {
      // already gone
    }
  }

  /** Stops timers and enrichment; queries keep working. Idempotent. */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#queue.length = 0;
    for (const c of this.#clients) c.close();
  }
}
