// containerd's own gRPC API, for containers made without the CRI (ctr, nerdctl, buildkit, docker's moby
// namespace): Containers Get/List for labels, image and runtime, Tasks for the init pid and state, Images for
// the image digest. Every containerd call is scoped to a namespace, so inspect() walks them all.
import type { Client } from '@grpc/grpc-js';
import { RuntimeError } from './types.ts';
import type { RuntimeClient, RuntimeContainerInfo } from './types.ts';
import { asRuntimeError, digestOf, isRecord, KUBE_LABEL, podFromLabels } from './common.ts';
import type { Peer } from './common.ts';
import { serviceConstructor, unary, UnixChannel } from './grpc.ts';

/** The gRPC metadata key containerd reads the namespace from. */
export const NAMESPACE_HEADER = 'containerd-namespace';

interface WireTimestamp {
  seconds?: string;
  nanos?: number;
}

interface WireContainer {
  id?: string;
  labels?: Record<string, string>;
  image?: string;
  runtime?: { name?: string } | null;
  spec?: { type_url?: string; value?: Buffer } | null;
  snapshotter?: string;
  created_at?: WireTimestamp | null;
  sandbox?: string;
}

interface WireProcess {
  container_id?: string;
  id?: string;
  pid?: number;
  status?: string;
}

const TASK_STATES: Record<string, string> = {
  CREATED: 'created',
  RUNNING: 'running',
  STOPPED: 'exited',
  PAUSED: 'paused',
  PAUSING: 'pausing',
  UNKNOWN: 'unknown',
};

export interface ContainerdClientOptions {
  socketPath: string;
  /** Search only these namespaces instead of listing them (e.g. ["moby"] for docker's containerd). */
  namespaces?: string[];
}

export class ContainerdClient implements RuntimeClient {
  readonly runtime = 'containerd' as const;
  readonly endpoint: string;
  readonly #peer: Peer;
  readonly #fixedNamespaces: string[] | undefined;
  readonly #channel: UnixChannel;
  readonly #containers: Client;
  readonly #namespaces: Client;
  readonly #tasks: Client;
  readonly #images: Client;
  #closed = false;

  /** Throws Error only when vigil's own protos fail to load (a packaging bug). */
  constructor(options: ContainerdClientOptions) {
    this.endpoint = options.socketPath;
    this.#peer = { runtime: 'containerd', endpoint: this.endpoint };
    this.#fixedNamespaces = options.namespaces;
    // One connection for all four services, as containerd's own Go client does.
    this.#channel = new UnixChannel(this.endpoint);
    const make = (file: string, name: string) => this.#channel.client(serviceConstructor(file, name));
    this.#containers = make('containerd-containers.proto', 'containerd.services.containers.v1.Containers');
    this.#namespaces = make('containerd-namespaces.proto', 'containerd.services.namespaces.v1.Namespaces');
    this.#tasks = make('containerd-tasks.proto', 'containerd.services.tasks.v1.Tasks');
    this.#images = make('containerd-images.proto', 'containerd.services.images.v1.Images');
  }

  /** Namespace names, as containerd lists them (or the configured ones). Throws RuntimeError. */
  async namespaces(signal: AbortSignal): Promise<string[]> {
    if (this.#fixedNamespaces) return this.#fixedNamespaces;
    const r = await this.#call<{ namespaces?: { name?: string }[] }>(this.#namespaces, 'List', {}, signal);
    return (r?.namespaces ?? []).map((n) => n.name ?? '').filter((n) => n !== '');
  }

  /**
   * The container with this id in the first namespace that has one; undefined when none has.
   * Throws RuntimeError.
   */
  async inspect(id: string, signal: AbortSignal): Promise<RuntimeContainerInfo | undefined> {
    if (id === '') return undefined;
    for (const ns of await this.namespaces(signal)) {
      const r = await this.#call<{ container?: WireContainer | null }>(this.#containers, 'Get', { id }, signal, ns, true);
      if (!r?.container?.id) continue;
      const info = this.#fromContainer(r.container, ns);
      const t = await this.#call<{ process?: WireProcess | null }>(this.#tasks, 'Get', { container_id: id }, signal, ns, true);
      this.#applyTask(info, t?.process ?? undefined);
      if (info.image) {
        const img = await this.#call<{ image?: { target?: { digest?: string } | null } | null }>(this.#images, 'Get', { name: info.image }, signal, ns, true);
        const digest = digestOf(img?.image?.target?.digest);
        if (digest) info.imageDigest = digest;
      }
      return info;
    }
    return undefined;
  }

  /** Containers with a running task, in every namespace. Throws RuntimeError. */
  async list(signal: AbortSignal): Promise<RuntimeContainerInfo[]> {
    const out: RuntimeContainerInfo[] = [];
    for (const ns of await this.namespaces(signal)) {
      const tasks = await this.#call<{ tasks?: WireProcess[] }>(this.#tasks, 'List', {}, signal, ns);
      const running = new Map<string, WireProcess>();
      // containerd fills Process.id (the init process's id is its container's) and leaves container_id empty.
      for (const t of tasks?.tasks ?? []) {
        const id = t.container_id || t.id;
        if (id && t.status === 'RUNNING') running.set(id, t);
      }
      if (running.size === 0) continue;
      const r = await this.#call<{ containers?: WireContainer[] }>(this.#containers, 'List', {}, signal, ns);
      for (const c of r?.containers ?? []) {
        if (!c.id || !running.has(c.id)) continue;
        const info = this.#fromContainer(c, ns);
        this.#applyTask(info, running.get(c.id));
        out.push(info);
      }
    }
    return out;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel.close();
  }

  #fromContainer(c: WireContainer, namespace: string): RuntimeContainerInfo {
    const labels = c.labels ?? {};
    const info: RuntimeContainerInfo = {
      id: c.id ?? '',
      // containerd has no names; a CRI-made container carries the kubelet's container name as a label.
      name: labels[KUBE_LABEL.containerName] ?? c.id ?? '',
      image: c.image ?? '',
      labels,
      runtime: 'containerd',
      extra: { namespace },
    };
    const extra = info.extra!;
    if (c.runtime?.name) extra.runtime = c.runtime.name;
    if (c.snapshotter) extra.snapshotter = c.snapshotter;
    if (c.sandbox) extra.sandbox = c.sandbox;
    const cgroupsPath = cgroupsPathOf(c.spec?.value);
    if (cgroupsPath) extra.cgroupsPath = cgroupsPath;
    const created = timestampToIso(c.created_at ?? undefined);
    if (created) info.createdAt = created;
    const pod = podFromLabels(labels);
    if (pod) info.pod = pod;
    return info;
  }

  #applyTask(info: RuntimeContainerInfo, p: WireProcess | undefined): void {
    // No task: the container exists as metadata only (created, or its task was deleted after exit).
    if (!p) {
      info.state = 'stopped';
      return;
    }
    if (typeof p.pid === 'number' && p.pid > 0) info.pid = p.pid;
    info.state = TASK_STATES[p.status ?? ''] ?? String(p.status ?? 'unknown').toLowerCase();
  }

  async #call<T>(client: Client, method: string, request: object, signal: AbortSignal, namespace?: string, allowNotFound = false): Promise<T | undefined> {
    if (this.#closed) throw new RuntimeError('containerd', this.endpoint, 'unavailable', `${method}: client closed`);
    try {
      return await unary<T>(this.#peer, client, method, request, {
        signal,
        allowNotFound,
        ...(namespace ? { metadata: { [NAMESPACE_HEADER]: namespace } } : {}),
      });
    } catch (err) {
      throw asRuntimeError(this.#peer, err, method);
    }
  }
}

function timestampToIso(t: WireTimestamp | undefined): string | undefined {
  if (!t?.seconds) return undefined;
  const s = Number(t.seconds);
  if (!Number.isFinite(s) || s <= 0) return undefined;
  return new Date(s * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString();
}

/** linux.cgroupsPath of the OCI spec containerd stores as JSON in Container.spec; undefined if absent or odd. */
function cgroupsPathOf(spec: Buffer | undefined): string | undefined {
  if (!spec || spec.length === 0) return undefined;
  try {
    const v: unknown = JSON.parse(spec.toString('utf8'));
    if (isRecord(v) && isRecord(v.linux) && typeof v.linux.cgroupsPath === 'string') return v.linux.cgroupsPath;
  } catch {
    // The spec is optional enrichment: ignore what does not parse.
  }
  return undefined;
}
