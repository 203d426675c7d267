// CRI client (Kubernetes runtime.v1 over gRPC on a unix socket): containerd's CRI plugin and CRI-O alike.
// inspect() joins ContainerStatus (labels, image, pid from the verbose info) with PodSandboxStatus (pod name,
// namespace, uid, labels). The pod lifecycle calls are here too: tests create real pods with them.
import type { Client } from '@grpc/grpc-js';
import { RuntimeError } from './types.ts';
import type { PodInfo, RuntimeClient, RuntimeContainerInfo, RuntimeName } from './types.ts';
import { asRuntimeError, digestOf, isRecord, nanosToIso, podFromLabels } from './common.ts';
import type { Peer } from './common.ts';
import { serviceConstructor, unary, UnixChannel } from './grpc.ts';

// ---- the CRI messages this client sends and reads, with the protocol's own (snake_case) field names ----

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  log_directory?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroup_parent?: string;
    security_context?: { namespace_options?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode } };
  };
}

export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: { image: string };
  command?: string[];
  args?: string[];
  working_dir?: string;
  envs?: { key: string; value: string }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  log_path?: string;
}

export interface CriVersion {
  version: string;
  runtime_name: string;
  runtime_version: string;
  runtime_api_version: string;
}

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

export interface PodSandboxInfo extends PodInfo {
  id: string;
  state: string;
  createdAt?: string;
  annotations: Record<string, string>;
  ip?: string;
}

interface WireMetadata {
  name?: string;
  uid?: string;
  namespace?: string;
}

interface WirePodStatus {
  id?: string;
  metadata?: WireMetadata | null;
  state?: string;
  created_at?: string;
  network?: { ip?: string } | null;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface WireContainerStatus {
  id?: string;
  metadata?: { name?: string } | null;
  state?: string;
  created_at?: string;
  image?: { image?: string } | null;
  image_ref?: string;
  image_id?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface WireContainer extends WireContainerStatus {
  pod_sandbox_id?: string;
}

const STATE_NAMES: Record<string, string> = {
  CONTAINER_CREATED: 'created',
  CONTAINER_RUNNING: 'running',
  CONTAINER_EXITED: 'exited',
  CONTAINER_UNKNOWN: 'unknown',
  SANDBOX_READY: 'ready',
  SANDBOX_NOTREADY: 'notready',
};

export interface CriClientOptions {
  socketPath: string;
  /** The name to report until Version() has said otherwise (default "containerd"). */
  runtime?: RuntimeName;
}

/** The RuntimeName a CRI runtime calls itself in Version().runtime_name. */
export function runtimeNameOf(versionName: string, fallback: RuntimeName): RuntimeName {
  const n = versionName.toLowerCase();
  if (n.includes('cri-o') || n === 'crio') return 'cri-o';
  if (n.includes('containerd')) return 'containerd';
  if (n.includes('docker')) return 'docker';
  return fallback;
}

export class CriClient implements RuntimeClient {
  readonly endpoint: string;
  readonly #channel: UnixChannel;
  readonly #client: Client;
  #runtime: RuntimeName;
  #version: CriVersion | undefined;
  #closed = false;

  /** Throws Error only when vigil's own cri-api.proto fails to load (a packaging bug). */
  constructor(options: CriClientOptions) {
    this.endpoint = options.socketPath;
    this.#runtime = options.runtime ?? 'containerd';
    this.#channel = new UnixChannel(this.endpoint);
    this.#client = this.#channel.client(serviceConstructor('cri-api.proto', 'runtime.v1.RuntimeService'));
  }

  /** "containerd" or "cri-o": what the runtime said in Version(), once asked; the configured guess before. */
  get runtime(): RuntimeName {
    return this.#runtime;
  }

  get #peer(): Peer {
    return { runtime: this.#runtime, endpoint: this.endpoint };
  }

  /** Version(); the first success also fixes `runtime`. Throws RuntimeError. */
  async version(signal: AbortSignal): Promise<CriVersion> {
    const v = await this.#call<CriVersion>('Version', { version: 'v1' }, signal);
    if (typeof v?.runtime_name !== 'string') throw this.#protocol('Version: reply has no runtime_name');
    this.#version = v;
    this.#runtime = runtimeNameOf(v.runtime_name, this.#runtime);
    return v;
  }

  /**
   * One container by id, joined with its pod sandbox. A sandbox id (the pause container) yields the pod itself.
   * Undefined when the runtime knows neither. Throws RuntimeError.
   */
  async inspect(id: string, signal: AbortSignal): Promise<RuntimeContainerInfo | undefined> {
    if (id === '') return undefined;
    if (!this.#version) await this.version(signal);
    const r = await this.#call<{ status?: WireContainerStatus | null; info?: Record<string, string> }>(
      'ContainerStatus',
      { container_id: id, verbose: true },
      signal,
      true,
    );
    if (!r?.status?.id) return this.#inspectSandbox(id, signal);
    const st = r.status;
    const verbose = parseVerboseInfo(r.info);
    let sandboxId = verbose.sandboxId;
    if (!sandboxId) {
      // Not every runtime puts the sandbox in the verbose info; ListContainers always carries it.
      const l = await this.#call<{ containers?: WireContainer[] }>('ListContainers', { filter: { id: st.id } }, signal);
      sandboxId = l?.containers?.find((c) => c.id === st.id)?.pod_sandbox_id || undefined;
    }
    const info = this.#fromStatus(st);
    if (verbose.pid) info.pid = verbose.pid;
    if (sandboxId) {
      info.extra = { ...info.extra, sandboxId };
      const pod = await this.podSandboxStatus(sandboxId, signal);
      if (pod) info.pod = { name: pod.name, namespace: pod.namespace, uid: pod.uid, labels: pod.labels ?? {} };
    }
    if (!info.pod) {
      const fromLabels = podFromLabels(info.labels);
      if (fromLabels) info.pod = fromLabels;
    }
    return info;
  }

  /** Running containers with their pods (no pid: that needs the verbose ContainerStatus). Throws RuntimeError. */
  async list(signal: AbortSignal): Promise<RuntimeContainerInfo[]> {
    if (!this.#version) await this.version(signal);
    const l = await this.#call<{ containers?: WireContainer[] }>('ListContainers', { filter: { state: { state: 'CONTAINER_RUNNING' } } }, signal);
    const p = await this.#call<{ items?: WirePodStatus[] }>('ListPodSandbox', {}, signal);
    const pods = new Map<string, WirePodStatus>();
    for (const s of p?.items ?? []) if (s.id) pods.set(s.id, s);
    const out: RuntimeContainerInfo[] = [];
    for (const c of l?.containers ?? []) {
      if (!c.id) continue;
      const info = this.#fromStatus(c);
      const sb = c.pod_sandbox_id ? pods.get(c.pod_sandbox_id) : undefined;
      if (c.pod_sandbox_id) info.extra = { ...info.extra, sandboxId: c.pod_sandbox_id };
      const pod = sb?.metadata?.name && sb.metadata.namespace
        ? { name: sb.metadata.name, namespace: sb.metadata.namespace, uid: sb.metadata.uid ?? '', labels: sb.labels ?? {} }
        : podFromLabels(info.labels);
      if (pod) info.pod = pod;
      out.push(info);
    }
    return out;
  }

  /** A pod sandbox's identity and state, or undefined when unknown. Throws RuntimeError. */
  async podSandboxStatus(id: string, signal: AbortSignal): Promise<PodSandboxInfo | undefined> {
    const r = await this.#call<{ status?: WirePodStatus | null }>('PodSandboxStatus', { pod_sandbox_id: id, verbose: false }, signal, true);
    const s = r?.status;
    if (!s?.id) return undefined;
    const info: PodSandboxInfo = {
      id: s.id,
      name: s.metadata?.name ?? '',
      namespace: s.metadata?.namespace ?? '',
      uid: s.metadata?.uid ?? '',
      labels: s.labels ?? {},
      annotations: s.annotations ?? {},
      state: STATE_NAMES[s.state ?? ''] ?? String(s.state ?? ''),
    };
    const created = nanosToIso(s.created_at);
    if (created) info.createdAt = created;
    if (s.network?.ip) info.ip = s.network.ip;
    return info;
  }

  // ---- lifecycle (kubelet's side of the CRI; vigil's tests drive real pods with these) ----

  /** Creates and starts a pod sandbox; returns its id. Throws RuntimeError. */
  async runPodSandbox(config: PodSandboxConfig, signal: AbortSignal, runtimeHandler = ''): Promise<string> {
    const r = await this.#call<{ pod_sandbox_id?: string }>('RunPodSandbox', { config, runtime_handler: runtimeHandler }, signal);
    if (!r?.pod_sandbox_id) throw this.#protocol('RunPodSandbox: reply has no pod_sandbox_id');
    return r.pod_sandbox_id;
  }

  /** Idempotent, as the CRI requires. Throws RuntimeError. */
  async stopPodSandbox(id: string, signal: AbortSignal): Promise<void> {
    await this.#call('StopPodSandbox', { pod_sandbox_id: id }, signal);
  }

  /** Idempotent. Throws RuntimeError. */
  async removePodSandbox(id: string, signal: AbortSignal): Promise<void> {
    await this.#call('RemovePodSandbox', { pod_sandbox_id: id }, signal);
  }

  /** Creates a container in a sandbox; returns its id. Throws RuntimeError. */
  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig, signal: AbortSignal): Promise<string> {
    const r = await this.#call<{ container_id?: string }>('CreateContainer', { pod_sandbox_id: podSandboxId, config, sandbox_config: sandboxConfig }, signal);
    if (!r?.container_id) throw this.#protocol('CreateContainer: reply has no container_id');
    return r.container_id;
  }

  /** Throws RuntimeError. */
  async startContainer(id: string, signal: AbortSignal): Promise<void> {
    await this.#call('StartContainer', { container_id: id }, signal);
  }

  /** Stops with a grace period in seconds (0 kills at once). Idempotent. Throws RuntimeError. */
  async stopContainer(id: string, timeoutSeconds: number, signal: AbortSignal): Promise<void> {
    await this.#call('StopContainer', { container_id: id, timeout: String(timeoutSeconds) }, signal);
  }

  /** Idempotent. Throws RuntimeError. */
  async removeContainer(id: string, signal: AbortSignal): Promise<void> {
    await this.#call('RemoveContainer', { container_id: id }, signal);
  }

  /** Runs a command in a container and waits for it (timeoutSeconds 0: no runtime-side limit). Throws RuntimeError. */
  async execSync(id: string, cmd: string[], signal: AbortSignal, timeoutSeconds = 0): Promise<ExecResult> {
    const r = await this.#call<{ stdout?: Buffer; stderr?: Buffer; exit_code?: number }>('ExecSync', { container_id: id, cmd, timeout: String(timeoutSeconds) }, signal);
    return { stdout: r?.stdout ?? Buffer.alloc(0), stderr: r?.stderr ?? Buffer.alloc(0), exitCode: r?.exit_code ?? 0 };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel.close();
  }

  // A sandbox's pause process sits in its own cgroup, so vigil may ask for a sandbox id: answer with the pod.
  async #inspectSandbox(id: string, signal: AbortSignal): Promise<RuntimeContainerInfo | undefined> {
    const pod = await this.podSandboxStatus(id, signal);
    if (!pod) return undefined;
    const info: RuntimeContainerInfo = {
      id: pod.id,
      name: pod.name,
      image: '',
      labels: pod.labels ?? {},
      runtime: this.#runtime,
      pod: { name: pod.name, namespace: pod.namespace, uid: pod.uid, labels: pod.labels ?? {} },
      state: pod.state,
      extra: { sandboxId: pod.id, kind: 'sandbox' },
    };
    if (pod.createdAt) info.createdAt = pod.createdAt;
    return info;
  }

  #fromStatus(st: WireContainerStatus): RuntimeContainerInfo {
    const info: RuntimeContainerInfo = {
      id: st.id ?? '',
      name: st.metadata?.name ?? '',
      image: st.image?.image ?? '',
      labels: st.labels ?? {},
      runtime: this.#runtime,
    };
    const digest = digestOf(st.image_ref) ?? digestOf(st.image_id);
    if (digest) info.imageDigest = digest;
    const created = nanosToIso(st.created_at);
    if (created) info.createdAt = created;
    if (st.state) info.state = STATE_NAMES[st.state] ?? st.state.toLowerCase();
    const annotations = Object.entries(st.annotations ?? {});
    if (annotations.length > 0) info.extra = Object.fromEntries(annotations.map(([k, v]) => [`annotation:${k}`, v]));
    return info;
  }

  #protocol(detail: string): RuntimeError {
    return new RuntimeError(this.#runtime, this.endpoint, 'protocol', detail);
  }

  async #call<T>(method: string, request: object, signal: AbortSignal, allowNotFound = false): Promise<T | undefined> {
    if (this.#closed) throw new RuntimeError(this.#runtime, this.endpoint, 'unavailable', `${method}: client closed`);
    try {
      return await unary<T>(this.#peer, this.#client, method, request, { signal, allowNotFound });
    } catch (err) {
      throw asRuntimeError(this.#peer, err, method);
    }
  }
}

/**
 * The verbose ContainerStatus info: containerd and CRI-O both put a JSON object under "info" with the init
 * "pid" and the "sandboxID". Anything unparsable is ignored: it is optional enrichment.
 */
export function parseVerboseInfo(info: Record<string, string> | undefined): { pid?: number; sandboxId?: string } {
  const raw = info?.info;
  if (!raw) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return {};
  }
  if (!isRecord(v)) return {};
  const out: { pid?: number; sandboxId?: string } = {};
  if (typeof v.pid === 'number' && Number.isInteger(v.pid) && v.pid > 0) out.pid = v.pid;
  if (typeof v.sandboxID === 'string' && v.sandboxID) out.sandboxId = v.sandboxID;
  return out;
}
