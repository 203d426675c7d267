// Docker Engine API client over a unix socket (GET /containers/<id>/json and /containers/json). The same
// client serves podman's Docker-compatible socket; as "podman" it also asks the libpod API for the podman
// pod. Plain node:http with socketPath: the API is small JSON over HTTP/1.1 and needs no dependency.
import http from 'node:http';
import { RuntimeError } from './types.ts';
import type { RuntimeClient, RuntimeContainerInfo } from './types.ts';
import { abortedError, isRecord, kindOfSocketError, podFromLabels, stringMap } from './common.ts';
import type { Peer } from './common.ts';

export interface DockerClientOptions {
  socketPath: string;
  /** "podman" when the socket is podman's Docker-compatible service; default "docker". */
  runtime?: 'docker' | 'podman';
  /** Replies larger than this are refused as garbage rather than buffered (default 8 MiB). */
  maxReplyBytes?: number;
}

interface Reply {
  status: number;
  body: unknown;
}

/** Errors of a request sent on a reused keep-alive socket that the server had closed: worth one retry. */
const staleReuse = new WeakSet<RuntimeError>();

/** The libpod API version whose endpoints this client uses (podman 4.x serves /v4.0.0/libpod/...). */
const LIBPOD = '/v4.0.0/libpod';

export class DockerClient implements RuntimeClient {
  readonly runtime: 'docker' | 'podman';
  readonly endpoint: string;
  readonly #peer: Peer;
  readonly #maxReply: number;
  // An own agent, so that close() can destroy its idle keep-alive sockets (the global agent would keep them).
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  #closed = false;

  constructor(options: DockerClientOptions) {
    this.runtime = options.runtime ?? 'docker';
    this.endpoint = options.socketPath;
    this.#peer = { runtime: this.runtime, endpoint: this.endpoint };
    this.#maxReply = options.maxReplyBytes ?? 8 << 20;
  }

  /**
   * One container by id (or name). Undefined when the daemon answers 404.
   * Throws RuntimeError: unavailable (no socket), refused (nobody listening), timeout (signal), protocol.
   */
  async inspect(id: string, signal: AbortSignal): Promise<RuntimeContainerInfo | undefined> {
    if (id === '') return undefined;
    const ref = encodeURIComponent(id);
    const r = await this.#get(`/containers/${ref}/json`, signal);
    if (r.status === 404) return undefined;
    this.#expectOk(r, `inspect ${id}`);
    const info = fromInspect(this.#peer, r.body);
    if (this.runtime === 'podman') await this.#addPodmanPod(info, signal);
    return info;
  }

  /** Running containers, from the summary list (no pid: that needs inspect). Throws RuntimeError. */
  async list(signal: AbortSignal): Promise<RuntimeContainerInfo[]> {
    const r = await this.#get('/containers/json', signal);
    this.#expectOk(r, 'list containers');
    if (!Array.isArray(r.body)) throw this.#protocol('list containers: reply is not a JSON array');
    const out = r.body.map((c) => fromSummary(this.#peer, c));
    if (this.runtime === 'podman' && out.length > 0) await this.#addPodmanPods(out, signal);
    return out;
  }

  close(): void {
    this.#closed = true;
    this.#agent.destroy();
  }

  // Podman's Docker-compatible inspect has no pod; its libpod inspect has. Best effort: a podman without the
  // libpod API still yields the container, but an abort still ends the call.
  async #addPodmanPod(info: RuntimeContainerInfo, signal: AbortSignal): Promise<void> {
    try {
      const r = await this.#get(`${LIBPOD}/containers/${encodeURIComponent(info.id)}/json`, signal);
      if (r.status !== 200 || !isRecord(r.body)) return;
      const pod = r.body.Pod;
      if (typeof pod !== 'string' || pod === '') return;
      info.extra = { ...info.extra, pod };
      const p = await this.#get(`${LIBPOD}/pods/${encodeURIComponent(pod)}/json`, signal);
      if (p.status === 200 && isRecord(p.body) && typeof p.body.Name === 'string') info.extra.podName = p.body.Name;
    } catch (err) {
      if (signal.aborted) throw err;
    }
  }

  async #addPodmanPods(infos: RuntimeContainerInfo[], signal: AbortSignal): Promise<void> {
    try {
      const r = await this.#get(`${LIBPOD}/containers/json`, signal);
      if (r.status !== 200 || !Array.isArray(r.body)) return;
      const pods = new Map<string, { pod: string; podName?: string }>();
      for (const c of r.body) {
        if (!isRecord(c) || typeof c.Id !== 'string' || typeof c.Pod !== 'string' || c.Pod === '') continue;
        pods.set(c.Id, { pod: c.Pod, ...(typeof c.PodName === 'string' && c.PodName ? { podName: c.PodName } : {}) });
      }
      for (const info of infos) {
        const p = pods.get(info.id);
        if (p) info.extra = { ...info.extra, ...p };
      }
    } catch (err) {
      if (signal.aborted) throw err;
    }
  }

  #expectOk(r: Reply, what: string): void {
    if (r.status === 200) return;
    const msg = isRecord(r.body) && typeof r.body.message === 'string' ? `: ${r.body.message}` : '';
    throw this.#protocol(`${what}: HTTP ${r.status}${msg}`);
  }

  #protocol(detail: string, cause?: unknown): RuntimeError {
    return new RuntimeError(this.runtime, this.endpoint, 'protocol', detail, cause);
  }

  /** GET path, JSON body. Never rejects with anything but a RuntimeError. */
  async #get(path: string, signal: AbortSignal): Promise<Reply> {
    try {
      return await this.#getOnce(path, signal);
    } catch (err) {
      // A kept-alive connection that the daemon closed while idle fails on reuse before any reply. GET is
      // idempotent, so one retry on a fresh connection is safe (Node's documented pattern for reusedSocket).
      if (staleReuse.has(err as RuntimeError)) return this.#getOnce(path, signal);
      throw err;
    }
  }

  #getOnce(path: string, signal: AbortSignal): Promise<Reply> {
    const what = `GET ${path}`;
    if (this.#closed) return Promise.reject(new RuntimeError(this.runtime, this.endpoint, 'unavailable', `${what}: client closed`));
    if (signal.aborted) return Promise.reject(abortedError(this.#peer, signal, what));
    return new Promise<Reply>((resolve, reject) => {
      let settled = false;
      let req: http.ClientRequest | undefined;
      const onAbort = () => fail(abortedError(this.#peer, signal, what));
      const done = () => {
        settled = true;
        signal.removeEventListener('abort', onAbort);
      };
      const fail = (err: RuntimeError) => {
        if (settled) return;
        done();
        // Destroying the request frees the socket: a hung or half-read connection never returns to the pool.
        req?.destroy();
        reject(err);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        req = http.request({ socketPath: this.endpoint, path, method: 'GET', agent: this.#agent, headers: { accept: 'application/json' } });
      } catch (err) {
        fail(new RuntimeError(this.runtime, this.endpoint, 'protocol', `${what}: ${(err as Error).message}`, err));
        return;
      }
      req.on('error', (err) => {
        const e = new RuntimeError(this.runtime, this.endpoint, kindOfSocketError(err), `${what}: ${err.message}`, err);
        if (req?.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET') staleReuse.add(e);
        fail(e);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.#maxReply) fail(this.#protocol(`${what}: reply larger than ${this.#maxReply} bytes`));
          else chunks.push(chunk);
        });
        res.on('error', (err) => fail(this.#protocol(`${what}: connection failed mid-reply: ${err.message}`, err)));
        res.on('close', () => {
          if (!res.complete) fail(this.#protocol(`${what}: connection closed mid-reply`));
        });
        res.on('end', () => {
          if (settled) return;
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text === '' ? undefined : JSON.parse(text);
          } catch (err) {
            // An error status with a non-JSON body is still a clear answer; a 200 with one is garbage.
            if (status === 200) return fail(this.#protocol(`${what}: reply is not JSON: ${JSON.stringify(text.slice(0, 80))}`, err));
            body = text;
          }
          done();
          resolve({ status, body });
        });
      });
      req.end();
    });
  }
}

/** GET /containers/<id>/json → RuntimeContainerInfo. Throws RuntimeError (protocol) on a reply of the wrong shape. */
function fromInspect(peer: Peer, v: unknown): RuntimeContainerInfo {
  if (!isRecord(v) || typeof v.Id !== 'string' || v.Id === '') {
    throw new RuntimeError(peer.runtime, peer.endpoint, 'protocol', 'inspect: reply is not a container object');
  }
  const config = isRecord(v.Config) ? v.Config : {};
  const state = isRecord(v.State) ? v.State : {};
  const labels = stringMap(config.Labels);
  const info: RuntimeContainerInfo = {
    id: v.Id,
    name: typeof v.Name === 'string' ? v.Name.replace(/^\//, '') : '',
    // Config.Image is the reference as given at creation; podman's libpod reply names it ImageName.
    image: typeof config.Image === 'string' ? config.Image : typeof v.ImageName === 'string' ? v.ImageName : '',
    labels,
    runtime: peer.runtime,
  };
  if (typeof v.Image === 'string' && v.Image) info.imageDigest = v.Image.includes(':') ? v.Image : `sha256:${v.Image}`;
  if (typeof state.Pid === 'number' && Number.isInteger(state.Pid) && state.Pid > 0) info.pid = state.Pid;
  if (typeof v.Created === 'string' && v.Created) info.createdAt = v.Created;
  if (typeof state.Status === 'string' && state.Status) info.state = state.Status;
  const pod = podFromLabels(labels);
  if (pod) info.pod = pod;
  return info;
}

/** One entry of GET /containers/json. Throws RuntimeError (protocol) on an entry of the wrong shape. */
function fromSummary(peer: Peer, v: unknown): RuntimeContainerInfo {
  if (!isRecord(v) || typeof v.Id !== 'string' || v.Id === '') {
    throw new RuntimeError(peer.runtime, peer.endpoint, 'protocol', 'list containers: an entry is not a container summary');
  }
  const labels = stringMap(v.Labels);
  const names = Array.isArray(v.Names) ? v.Names.filter((n): n is string => typeof n === 'string') : [];
  const info: RuntimeContainerInfo = {
    id: v.Id,
    name: (names[0] ?? '').replace(/^\//, ''),
    image: typeof v.Image === 'string' ? v.Image : '',
    labels,
    runtime: peer.runtime,
  };
  if (typeof v.ImageID === 'string' && v.ImageID) info.imageDigest = v.ImageID;
  // The summary's Created is seconds since the epoch (inspect's is an ISO string).
  if (typeof v.Created === 'number' && v.Created > 0) info.createdAt = new Date(v.Created * 1000).toISOString();
  if (typeof v.State === 'string' && v.State) info.state = v.State;
  const pod = podFromLabels(labels);
  if (pod) info.pod = pod;
  return info;
}
