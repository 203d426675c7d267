// Finds the container runtimes on this host by their well-known unix sockets (plus configured ones) and makes
// a client for each API found. Detection only stats paths, it never connects, so it cannot hang on a dead
// runtime: the first inspect() or list() call, bounded by its AbortSignal, is where a dead socket shows.
import fs from 'node:fs';
import path from 'node:path';
import type { RuntimeClient, RuntimeName } from './types.ts';
import { DockerClient } from './docker.ts';
import { CriClient } from './cri.ts';
import { ContainerdClient } from './containerd.ts';

/** Which protocol a socket speaks. containerd's one socket speaks both the CRI and its own API. */
export type RuntimeApi = 'docker' | 'cri' | 'containerd';

export interface RuntimeSocket {
  runtime: RuntimeName;
  path: string;
  /** Default: what the runtime speaks (docker/podman: docker; cri-o: cri; containerd: cri and containerd). */
  api?: RuntimeApi;
}

/** The well-known sockets, in order of preference. /var/run is usually a link to /run: duplicates collapse. */
export const DEFAULT_SOCKETS: readonly RuntimeSocket[] = [
  { runtime: 'docker', path: '/var/run/docker.sock' },
  { runtime: 'docker', path: '/run/docker.sock' },
  { runtime: 'podman', path: '/run/podman/podman.sock' },
  { runtime: 'containerd', path: '/run/containerd/containerd.sock' },
  { runtime: 'cri-o', path: '/var/run/crio/crio.sock' },
];

export interface DetectOptions {
  /** Configured sockets, looked at before the defaults. */
  sockets?: RuntimeSocket[];
  /** Look at DEFAULT_SOCKETS too (default true). */
  defaults?: boolean;
  /** Prefix for the default paths, so that tests can lay out a fake /run in a temp dir. */
  root?: string;
}

/** A socket that exists, with the API to speak on it. */
export interface FoundSocket {
  runtime: RuntimeName;
  path: string;
  api: RuntimeApi;
}

function apisOf(s: RuntimeSocket): RuntimeApi[] {
  if (s.api) return [s.api];
  switch (s.runtime) {
    case 'docker':
    case 'podman':
      return ['docker'];
    case 'cri-o':
      return ['cri'];
    case 'containerd':
      // The CRI first: for Kubernetes containers it knows the pod; the native API covers ctr/nerdctl ones.
      return ['cri', 'containerd'];
  }
}

/** The candidate sockets that exist and are sockets, deduplicated by inode. Never throws, never connects. */
export function findRuntimeSockets(options: DetectOptions = {}): FoundSocket[] {
  const candidates = [...(options.sockets ?? [])];
  if (options.defaults !== false) {
    for (const s of DEFAULT_SOCKETS) candidates.push(options.root ? { ...s, path: path.join(options.root, s.path) } : s);
  }
  const seen = new Set<string>();
  const out: FoundSocket[] = [];
  for (const c of candidates) {
    let st: fs.Stats;
    try {
      st = fs.statSync(c.path);
    } catch {
      continue;
    }
    if (!st.isSocket()) continue;
    for (const api of apisOf(c)) {
      const key = `${st.dev}:${st.ino}:${api}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ runtime: c.runtime, path: c.path, api });
    }
  }
  return out;
}

/** A client for one socket. Throws Error only if vigil's own protos fail to load. */
export function clientFor(s: FoundSocket): RuntimeClient {
  switch (s.api) {
    case 'docker':
      return new DockerClient({ socketPath: s.path, runtime: s.runtime === 'podman' ? 'podman' : 'docker' });
    case 'cri':
      return new CriClient({ socketPath: s.path, runtime: s.runtime });
    case 'containerd':
      return new ContainerdClient({ socketPath: s.path });
  }
}

/** Clients for every runtime socket found (see findRuntimeSockets). The caller closes them. */
export function detectRuntimes(options: DetectOptions = {}): RuntimeClient[] {
  return findRuntimeSockets(options).map(clientFor);
}

/**
 * The agent's entry point: clients for the configured sockets ({runtime, socket}, as in vigil's config), or,
 * when none are configured, for the well-known ones. Only sockets that exist now get a client.
 */
export function detectRuntimeClients(configured?: { runtime: RuntimeName; socket: string }[]): RuntimeClient[] {
  if (configured === undefined) return detectRuntimes();
  return detectRuntimes({ defaults: false, sockets: configured.map((c) => ({ runtime: c.runtime, path: c.socket })) });
}
