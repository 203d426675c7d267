// What a container runtime tells vigil about one of its containers, and the interface every runtime client
// (Docker Engine API, podman, containerd, CRI) implements. Clients are asynchronous and always bounded by an
// AbortSignal: a runtime that is missing, hangs or answers garbage yields an error, never a stall.
import { VigilError } from '../../bpf/errors.ts';

export type RuntimeName = 'docker' | 'podman' | 'containerd' | 'cri-o';

export interface PodInfo {
  name: string;
  namespace: string;
  uid: string;
  labels?: Record<string, string>;
}

export interface RuntimeContainerInfo {
  /** Full container id (64 hex for docker/podman/CRI; any id string for containerd). */
  id: string;
  name: string;
  /** Image reference as given at creation (e.g. "localhost/test-busybox:latest"). */
  image: string;
  /** Image digest or id ("sha256:..."), when the runtime reports it. */
  imageDigest?: string;
  labels: Record<string, string>;
  /** The container's init process, host pid namespace. */
  pid?: number;
  /** Creation time, ISO 8601. */
  createdAt?: string;
  runtime: RuntimeName;
  /** Kubernetes pod, from the CRI sandbox or the kubelet's io.kubernetes.pod.* labels. */
  pod?: PodInfo;
  /** Runtime state ("running", "exited", ...). */
  state?: string;
  /** containerd namespace, podman pod id, ... */
  extra?: Record<string, string>;
}

export interface RuntimeClient {
  readonly runtime: RuntimeName;
  /** Where it connects (a unix socket path). */
  readonly endpoint: string;
  /** One container by id; undefined when this runtime does not know it. Throws RuntimeError. */
  inspect(id: string, signal: AbortSignal): Promise<RuntimeContainerInfo | undefined>;
  /** Running containers. Throws RuntimeError. */
  list(signal: AbortSignal): Promise<RuntimeContainerInfo[]>;
  close(): void;
}

export type RuntimeErrorKind = 'unavailable' | 'timeout' | 'protocol' | 'refused';

/** A runtime socket that is missing, refused, timed out or answered something unusable. */
export class RuntimeError extends VigilError {
  readonly runtime: RuntimeName;
  readonly kind: RuntimeErrorKind;
  constructor(runtime: RuntimeName, endpoint: string, kind: RuntimeErrorKind, detail: string, cause?: unknown) {
    super(`ERUNTIME_${kind.toUpperCase()}`, `${runtime} at ${endpoint}: ${detail}`, { cause });
    this.runtime = runtime;
    this.kind = kind;
  }
}
