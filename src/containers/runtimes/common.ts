// Shared by every runtime client: turning socket errors, aborts and odd replies into RuntimeErrors, and the
// small conversions (kubelet labels to a pod, nanoseconds to ISO time) that more than one runtime needs.
// Nothing here does I/O.
import { RuntimeError } from './types.ts';
import type { PodInfo, RuntimeErrorKind, RuntimeName } from './types.ts';

/** Where a client connects, for error messages: every RuntimeError names both. */
export interface Peer {
  runtime: RuntimeName;
  endpoint: string;
}

/** The kubelet's labels on every container it creates (docker/cri-dockerd and CRI runtimes alike). */
export const KUBE_LABEL = {
  podName: 'io.kubernetes.pod.name',
  podNamespace: 'io.kubernetes.pod.namespace',
  podUid: 'io.kubernetes.pod.uid',
  containerName: 'io.kubernetes.container.name',
} as const;

/** The pod a container belongs to, from kubelet labels; undefined unless both name and namespace are set. */
export function podFromLabels(labels: Record<string, string>): PodInfo | undefined {
  const name = labels[KUBE_LABEL.podName];
  const namespace = labels[KUBE_LABEL.podNamespace];
  if (!name || !namespace) return undefined;
  return { name, namespace, uid: labels[KUBE_LABEL.podUid] ?? '' };
}

/** The RuntimeError for an aborted call. A timeout (AbortSignal.timeout) and a caller's cancel read differently. */
export function abortedError(peer: Peer, signal: AbortSignal, what: string): RuntimeError {
  const reason: unknown = signal.reason;
  const timedOut = reason instanceof Error && reason.name === 'TimeoutError';
  const detail = timedOut ? `${what}: timed out` : `${what}: aborted${reason instanceof Error ? ` (${reason.message})` : ''}`;
  return new RuntimeError(peer.runtime, peer.endpoint, 'timeout', detail, reason);
}

/** Kind of a failed socket operation, from its errno code: missing socket vs nobody listening vs the rest. */
export function kindOfSocketError(err: unknown): RuntimeErrorKind {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'EACCES':
    case 'EPERM':
      return 'unavailable';
    case 'ECONNREFUSED':
    case 'ENOTSOCK':
      return 'refused';
    default:
      return 'protocol';
  }
}

/** Wraps anything thrown into a RuntimeError (keeping one that already is), so callers only ever see those. */
export function asRuntimeError(peer: Peer, err: unknown, what: string, kind: RuntimeErrorKind = 'protocol'): RuntimeError {
  if (err instanceof RuntimeError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new RuntimeError(peer.runtime, peer.endpoint, kind, `${what}: ${msg}`, err);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A string-to-string map from untrusted JSON; anything else becomes {} (docker sends null for "no labels"). */
export function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isRecord(v)) return out;
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** Nanoseconds since the epoch (CRI timestamps, as a decimal string or bigint) to ISO 8601; undefined for 0. */
export function nanosToIso(ns: string | number | bigint | undefined | null): string | undefined {
  if (ns === undefined || ns === null || ns === '') return undefined;
  let n: bigint;
  try {
    n = BigInt(ns);
  } catch {
    return undefined;
  }
  if (n <= 0n) return undefined;
  const ms = Number(n / 1_000_000n);
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** The "sha256:<hex>" part of an image reference or id such as "localhost/x@sha256:ab..", or undefined. */
export function digestOf(ref: string | undefined): string | undefined {
  if (!ref) return undefined;
  const m = /sha256:[0-9a-f]{64}/.exec(ref);
  return m ? m[0] : undefined;
}
