// The agent's HTTP API (fastify). It listens on a unix socket created 0600 (only root and the agent's
// user can talk to it); a TCP listen is refused unless a token is configured, and then every request needs
// "Authorization: Bearer <token>". Bad requests get 400 with the field that was wrong; nothing a client
// sends can crash the agent.
//
//   GET /v1/status                      sensors, probe states, drop counters, resolver states
//   GET /v1/processes[?tree=1&pid=N&format=json|dot&argv=0&container=X]
//   GET /v1/containers                  containers with their process counts
//   GET /v1/events[?since=10m&type=exec,open&container=X&pid=N&limit=100]   from the embedded store
//   GET /v1/events/stream[?type=..&container=..&pid=..&comm=..]               Server-Sent Events
//   GET /metrics                        Prometheus
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Agent } from '../agent/agent.ts';
import { InvalidArgumentError } from '../bpf/errors.ts';
import { ancestryJSON, toDot, toJSON } from '../process/dump.ts';
import type { ProcessEntry } from '../process/types.ts';
import type { EventFilter } from '../pipeline/router.ts';
import { createMetrics } from './metrics.ts';

export interface ApiOptions {
  socket: string;
  /** "host:port"; requires token. */
  listen?: string;
  token?: string;
}

export class ApiError extends InvalidArgumentError {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** Parses "10m", "2h", "30s", "1d" or an ISO date into ms since the epoch. */
export function parseSince(v: string, now = Date.now()): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(v);
  if (m) return now - Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2] as 'ms']!;
  const t = Date.parse(v);
  if (!Number.isNaN(t)) return t;
  throw new ApiError('since', `expected a duration like 10m, 2h, 1d or an ISO date, got "${v}"`);
}

function intParam(q: Record<string, string | undefined>, name: string, max = 2 ** 31): number | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || Number(v) > max) throw new ApiError(name, `expected a positive integer, got "${v}"`);
  return Number(v);
}

function listParam(q: Record<string, string | undefined>, name: string): string[] | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.some((i) => !/^[a-z_]{2,40}$/.test(i))) throw new ApiError(name, `expected comma-separated event types, got "${v}"`);
  return items;
}

export function filterFromQuery(q: Record<string, string | undefined>): EventFilter {
  const f: EventFilter = {};
  const types = listParam(q, 'type');
  if (types) f.types = types;
  const pid = intParam(q, 'pid');
  if (pid !== undefined) f.pid = pid;
  if (q.container) f.container = q.container;
  if (q.comm) f.comm = q.comm;
  if (q.namespace) f.podNamespace = q.namespace;
  if (q.pod) f.podName = q.pod;
  return f;
}

export class ApiServer {
  readonly #agent: Agent;
  readonly #o: ApiOptions;
  #apps: FastifyInstance[] = [];
  /** Open event streams: ended on close (hijacked replies are not closed by the framework). */
  #streams = new Set<() => void>();

  constructor(agent: Agent, o: ApiOptions) {
    if (o.listen && !o.token) throw new InvalidArgumentError('agent.listen: a TCP listen needs agent.token or agent.tokenFile (the unix socket needs none)');
    this.#agent = agent;
    this.#o = o;
  }

  #build(requireToken: boolean): FastifyInstance {
    const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
    const agent = this.#agent;
    if (requireToken) {
      const want = Buffer.from(`Bearer ${this.#o.token}`);
      app.addHook('onRequest', async (req, reply) => {
        const got = Buffer.from(req.headers.authorization ?? '');
        if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) {
          reply.code(401).send({ error: 'missing or wrong token (Authorization: Bearer <token>)' });
        }
      });
    }
    app.setErrorHandler((err: Error & { statusCode?: number; field?: string }, _req, reply) => {
      if (err instanceof ApiError || err instanceof InvalidArgumentError) return reply.code(400).send({ error: err.message, field: (err as ApiError).field });
      const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      return reply.code(code).send({ error: code === 500 ? `internal error: ${err.message}` : err.message });
    });
    app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no such endpoint: ${req.method} ${req.url.split('?')[0]}` }));

    type Q = { Querystring: Record<string, string | undefined> };
    app.get('/v1/status', async () => agent.status());

    app.get<Q>('/v1/processes', async (req, reply) => {
      const q = req.query;
      const p = agent.processes;
      if (!p) throw new ApiError('processes', 'the process resolver is not running');
      const argv = q.argv !== '0';
      const userName = (e: ProcessEntry) => (e.creds ? agent.userName(e.creds.uid, e.ns ? { pid: e.pid, mntns: e.ns.mntns } : undefined) : undefined);
      const format = q.format ?? 'json';
      if (format !== 'json' && format !== 'dot') throw new ApiError('format', `expected json or dot, got "${format}"`);
      const pid = intParam(q, 'pid');
      let root: string | undefined;
      if (pid !== undefined) {
        const e = p.cache.byPid(pid);
        if (!e) return reply.code(404).send({ error: `no process ${pid}`, mode: p.mode });
        root = e.key;
      }
      const container = q.container ? agent.containers?.find(q.container) : undefined;
      if (q.container && !container) return reply.code(404).send({ error: `no container ${q.container}` });
      const dumpOpts = { argv, userName, root };
      if (format === 'dot') return reply.type('text/vnd.graphviz').send(toDot(p.cache, dumpOpts));
      const withContainer = (nodes: ReturnType<typeof toJSON>): unknown[] =>
        nodes.map((n) => {
          const e = p.cache.get(n.key);
          const c = e?.ns ? agent.containers?.byCgroupId(e.ns.cgroupId) : undefined;
          return { ...n, container: c ? { id: c.id, name: c.name, image: c.image } : undefined, children: withContainer(n.children) };
        });
      let body: unknown;
      if (pid !== undefined && q.tree !== '1') body = { ancestry: ancestryJSON(p.cache, root!, dumpOpts) };
      else if (q.tree === '1') body = { tree: withContainer(toJSON(p.cache, dumpOpts)) };
      else {
        const flat: unknown[] = [];
        for (const e of p.cache.live()) {
          const c = e.ns ? agent.containers?.byCgroupId(e.ns.cgroupId) : undefined;
          if (container && c !== container) continue;
          flat.push({ pid: e.pid, ppid: e.ppid, key: e.key, comm: e.image.comm, exe: e.image.exePath, argv: argv ? e.image.argv : undefined, uid: e.creds?.uid, user: userName(e), tty: e.tty || undefined, container: c ? { id: c.id, name: c.name, image: c.image } : undefined });
        }
        body = { processes: flat.sort((a, b) => (a as { pid: number }).pid - (b as { pid: number }).pid) };
      }
      return { mode: p.mode, state: p.state, ...(body as object) };
    });

    app.get('/v1/containers', async () => {
      const cr = agent.containers;
      if (!cr) return { containers: [] };
      const counts = new Map<string, number>();
      for (const e of agent.processes?.cache.live() ?? []) {
        const c = e.ns ? cr.byCgroupId(e.ns.cgroupId) : undefined;
        if (c) counts.set(c.id, (counts.get(c.id) ?? 0) + 1);
      }
      return {
        containers: cr.containers().map((c) => ({ id: c.id, name: c.name, image: c.image, imageDigest: c.imageDigest, runtime: c.runtime, labels: c.labels, pod: c.pod, enrichment: c.enrichment, enrichmentError: c.enrichmentError, cgroupPath: c.cgroupPath, processes: counts.get(c.id) ?? 0 })),
        runtimes: cr.stats().runtimes,
      };
    });

    app.get<Q>('/v1/events', async (req) => {
      const store = agent.store;
      if (!store) throw new ApiError('store', 'the embedded store is disabled (sinks.store.enabled)');
      const q = req.query;
      return { events: store.query({ since: q.since ? parseSince(q.since) : undefined, type: listParam(q, 'type'), container: q.container, pid: intParam(q, 'pid'), limit: intParam(q, 'limit', 100_000) ?? 1000 }) };
    });

    app.get<Q>('/v1/events/stream', (req, reply) => this.#sse(req, reply));

    const registry = createMetrics(agent);
    app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
    return app;
  }

  /** Server-Sent Events: one `data:` line per event, filtered by the subscriber's compiled filter. */
  #sse(req: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply: FastifyReply): void {
    const filter = filterFromQuery(req.query); // throws ApiError -> 400 before the stream starts
    const res = reply.raw;
    reply.hijack();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    res.write(': vigil event stream\n\n');
    const id = this.#agent.router.subscribe(`sse:${req.ip || 'unix'}`, filter, (batch) => {
      let chunk = '';
      for (const { line } of batch) chunk += `data: ${line}\n\n`;
      res.write(chunk);
    });
    const beat = setInterval(() => res.write(': keepalive\n\n'), 15_000);
    beat.unref();
    const end = () => {
      clearInterval(beat);
      this.#agent.router.unsubscribe(id);
      this.#streams.delete(close);
    };
    const close = () => {
      end();
      res.end();
    };
    this.#streams.add(close);
    req.raw.on('close', end);
    res.on('error', end);
  }

  /** Listens on the unix socket (replacing a stale one) and on TCP when configured. */
  async start(): Promise<void> {
    const sock = this.#o.socket;
    fs.mkdirSync(path.dirname(sock), { recursive: true, mode: 0o755 });
    if (fs.existsSync(sock)) {
      if (await socketAlive(sock)) throw new InvalidArgumentError(`agent.socket: ${sock} is in use by a running agent; stop it first or choose another socket`);
      fs.rmSync(sock, { force: true });
    }
    const unixApp = this.#build(false);
    this.#apps.push(unixApp);
    const old = process.umask(0o177); // created 0600 from the start, not chmod'ed after
    try {
      await unixApp.listen({ path: sock });
    } finally {
      process.umask(old);
    }
    fs.chmodSync(sock, 0o600);
    if (this.#o.listen) {
      const m = /^(.*):(\d+)$/.exec(this.#o.listen);
      if (!m) throw new InvalidArgumentError(`agent.listen: expected host:port, got "${this.#o.listen}"`);
      const tcp = this.#build(true);
      this.#apps.push(tcp);
      await tcp.listen({ host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) });
    }
  }

  /** Closes listeners and open streams; removes the socket file. Idempotent. */
  async close(): Promise<void> {
    const apps = this.#apps;
    this.#apps = [];
    for (const close of [...this.#streams]) close();
    for (const a of apps) await a.close().catch(() => undefined);
    fs.rmSync(this.#o.socket, { force: true });
  }
}

function socketAlive(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(p);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}
