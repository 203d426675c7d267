// The agent's HTTP API (fastify). It listens on a unix socket created 0600 (only root and the agent's
// user can talk to it); a TCP listen is refused unless a token is configured, and then every request needs
// "Authorization: Bearer <token>". Bad requests get a 4xx JSON error naming what was wrong (`field`: the
// parameter, "method", "body", "headers", "url"); nothing a client sends can crash the agent.
//
//   GET /v1/status                      sensors, probe states, drop counters, resolver states
//   GET /v1/processes[?tree=1&pid=N&format=json|dot&argv=0&container=X]
//   GET /v1/containers                  containers with their process counts
//   GET /v1/events[?since=10m&type=exec,open&container=X&pid=N&limit=100&order=latest|first]   from the store
//   GET /v1/events/stream[?type=..&container=..&pid=..&comm=..]               Server-Sent Events
//   POST /v1/config/reload              read the configuration again and apply it, all or nothing
//   POST /v1/sinks/reopen               the file sinks close and open their files again (logrotate; as SIGUSR1)
//   GET /metrics                        Prometheus
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Agent } from '../agent/agent.ts';
import { InvalidArgumentError, StateError, VigilError } from '../bpf/errors.ts';
import { ConfigError } from '../config/config.ts';
import { ReloadRefusedError } from '../config/reload.ts';
import { ancestryJSON, toDot, toJSON } from '../process/dump.ts';
import type { ProcessEntry } from '../process/types.ts';
import type { EventFilter } from '../pipeline/router.ts';
import { subscribeStream } from './stream.ts';
import { RuleError } from '../rules/rules.ts';
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

const shown = (v: string) => JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);

/**
 * Parses "10m", "2h", "30s", "1d" or an ISO date ("2026-11-22", "2026-11-22T08:00:00Z") into ms since the
 * epoch. Throws ApiError('since') for anything else: Date.parse alone would read "5" as the year 2001.
 */
export function parseSince(v: string, now = Date.now()): number {
  const m = /^(\d{1,12})(ms|s|m|h|d)$/.exec(v);
  if (m) return now - Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2] as 'ms']!;
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/.test(v)) {
    const t = Date.parse(v);
    if (Number.isFinite(t)) return t;
  }
  throw new ApiError('since', `expected a duration like 30s, 10m, 2h, 1d or an ISO date like 2026-11-22T08:00:00Z, got ${shown(v)}`);
}

type Query = Record<string, string | undefined>;
/** PID_MAX_LIMIT: no process id is larger. */
const PID_MAX = 4_194_304;

/**
 * The query string as single values, checked against the parameters the endpoint knows: a repeated or
 * unknown parameter is an ApiError naming it, not something to ignore or to crash on later.
 */
function queryOf(raw: unknown, known: readonly string[]): Query {
  const q = (raw ?? {}) as Record<string, unknown>;
  const out: Query = {};
  for (const k of Object.keys(q)) {
    if (!known.includes(k)) throw new ApiError(k, `unknown parameter${known.length ? ` (known: ${known.join(', ')})` : ' (this endpoint takes none)'}`);
    const v = q[k];
    if (typeof v !== 'string') throw new ApiError(k, 'given more than once');
    out[k] = v;
  }
  return out;
}

function intParam(q: Query, name: string, max = 2 ** 31, min = 0): number | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d{1,10}$/.test(v) || Number(v) > max || Number(v) < min) throw new ApiError(name, `expected an integer from ${min} to ${max}, got ${shown(v)}`);
  return Number(v);
}

function listParam(q: Query, name: string): string[] | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.some((i) => !/^[a-z_]{2,40}$/.test(i))) throw new ApiError(name, `expected comma-separated event types (exec,open,...), got ${shown(v)}`);
  return items;
}

/** Parameters of the event stream (GET /v1/events/stream). */
export const STREAM_PARAMS = ['type', 'pid', 'container', 'comm', 'namespace', 'pod'] as const;

/** The subscriber filter of an event stream. Throws ApiError naming a bad or unknown parameter. */
export function filterFromQuery(raw: unknown): EventFilter {
  const q = queryOf(raw, STREAM_PARAMS);
  const f: EventFilter = {};
  const types = listParam(q, 'type');
  if (types) f.types = types;
  const pid = intParam(q, 'pid', PID_MAX, 1);
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
  readonly #tcp: { host: string; port: number } | undefined;
  /** The socket file is ours to remove only once we listen on it (never another agent's). */
  #ownsSocket = false;

  /** Throws InvalidArgumentError for a TCP listen without a token or a listen address that is not host:port. */
  constructor(agent: Agent, o: ApiOptions) {
    if (o.listen && !o.token) throw new InvalidArgumentError('agent.listen: a TCP listen needs agent.token or agent.tokenFile (the unix socket needs none)');
    if (o.listen) {
      const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(o.listen);
      if (!m || Number(m[2]) > 65535) throw new InvalidArgumentError(`agent.listen: expected host:port ("127.0.0.1:9750", "[::1]:9750"), got "${o.listen}"`);
      this.#tcp = { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
    }
    this.#agent = agent;
    this.#o = o;
  }

  /** The TCP port listened on (the one the kernel chose for port 0), or undefined. */
  get tcpPort(): number | undefined {
    const addr = this.#apps[1]?.server.address();
    return addr && typeof addr === 'object' ? addr.port : undefined;
  }

  /**
   * What can be checked before the agent touches the kernel: the socket path is free, or holds a stale
   * socket (replaced at start), not one a running agent serves and not some other file (never removed).
   * Throws InvalidArgumentError naming agent.socket.
   */
  async preflight(): Promise<void> {
    const sock = this.#o.socket;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(sock);
    } catch {
      return; // nothing there
    }
    if (!st.isSocket()) throw new InvalidArgumentError(`agent.socket: ${sock} exists and is not a socket; remove it or choose another path`);
    if (await socketAlive(sock)) throw new InvalidArgumentError(`agent.socket: ${sock} is in use by a running agent; stop it first or choose another socket`);
  }

  #build(requireToken: boolean): FastifyInstance {
    const app = Fastify({
      logger: false,
      bodyLimit: 64 * 1024,
      // Framework-level rejections (a URL that does not decode) in the API's own error shape.
      frameworkErrors: (err, _req, reply) => void (reply as unknown as FastifyReply).code(400).send({ error: `bad URL: ${err.message}`, field: 'url' }),
      clientErrorHandler: clientError,
    });
    // No endpoint takes a body: any body is read (up to bodyLimit, else 413) and ignored, so a malformed one
    // cannot turn a wrong method or path into a parse error.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, _body, done) => done(null, undefined));
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
    app.setErrorHandler((err: Error & { statusCode?: number; field?: string; code?: string }, _req, reply) => {
      if (err instanceof ApiError || err instanceof InvalidArgumentError) return reply.code(400).send({ error: err.message, field: (err as ApiError).field });
      const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      const field = err.code?.startsWith('FST_ERR_CTP_') ? 'body' : undefined;
      return reply.code(code).send({ error: code === 500 ? `internal error: ${err.message}` : err.message, field });
    });
    app.setNotFoundHandler((req, reply) => {
      const url = req.url.split('?')[0]!;
      // A known endpoint asked with the wrong method: 405 with the methods it takes.
      if (app.hasRoute({ method: 'GET', url })) return reply.code(405).header('allow', 'GET, HEAD').send({ error: `${req.method} ${url}: method not allowed (use GET)`, field: 'method' });
      if (app.hasRoute({ method: 'POST', url })) return reply.code(405).header('allow', 'POST').send({ error: `${req.method} ${url}: method not allowed (use POST)`, field: 'method' });
      return reply.code(404).send({ error: `no such endpoint: ${req.method} ${url.length > 200 ? `${url.slice(0, 200)}…` : url}` });
    });

    app.get('/v1/status', async (req) => {
      queryOf(req.query, []);
      return agent.status();
    });

    app.get('/v1/processes', async (req, reply) => {
      const q = queryOf(req.query, ['tree', 'pid', 'format', 'argv', 'container']);
      const p = agent.processes;
      if (!p) throw new ApiError('processes', 'the process resolver is not running');
      const argv = q.argv !== '0';
      const userName = (e: ProcessEntry) => agent.processUserName(e);
      const format = q.format ?? 'json';
      if (format !== 'json' && format !== 'dot') throw new ApiError('format', `expected json or dot, got ${shown(format)}`);
      if (q.tree !== undefined && q.tree !== '0' && q.tree !== '1') throw new ApiError('tree', `expected 1 or 0, got ${shown(q.tree)}`);
      if (q.argv !== undefined && q.argv !== '0' && q.argv !== '1') throw new ApiError('argv', `expected 1 or 0, got ${shown(q.argv)}`);
      const pid = intParam(q, 'pid', PID_MAX, 1);
      let root: string | undefined;
      if (pid !== undefined) {
        const e = p.cache.byPid(pid);
        if (!e) return reply.code(404).send({ error: `no process ${pid}`, mode: p.mode });
        root = e.key;
      }
      const container = q.container ? agent.containers?.find(q.container) : undefined;
      if (q.container && !container) return reply.code(404).send({ error: `no container ${q.container}` });
      const hostExe = (e: ProcessEntry) => agent.processHostExe(e);
      const dumpOpts = { argv, userName, hostExe, root };
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
          flat.push({ pid: e.pid, ppid: e.ppid, key: e.key, comm: e.image.comm, exe: e.image.exePath, hostExe: hostExe(e) || undefined, exeUpperLayer: e.image.exeUpperLayer || undefined, argv: argv ? e.image.argv : undefined, uid: e.creds?.uid, user: userName(e), tty: e.tty || undefined, container: c ? { id: c.id, name: c.name, image: c.image } : undefined });
        }
        body = { processes: flat.sort((a, b) => (a as { pid: number }).pid - (b as { pid: number }).pid) };
      }
      return { mode: p.mode, state: p.state, ...(body as object) };
    });

    app.get('/v1/containers', async (req) => {
      queryOf(req.query, []);
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

    app.get('/v1/events', async (req) => {
      const q = queryOf(req.query, ['since', 'type', 'container', 'pid', 'limit', 'order']);
      // A limit keeps the latest events by default (like `tail`), returned oldest first; order=first keeps the oldest.
      if (q.order !== undefined && q.order !== 'latest' && q.order !== 'first') throw new ApiError('order', `expected latest or first, got ${shown(q.order)}`);
      const order: 'latest' | 'asc' = q.order === 'first' ? 'asc' : 'latest';
      const query = { since: q.since ? parseSince(q.since) : undefined, type: listParam(q, 'type'), container: q.container || undefined, pid: intParam(q, 'pid', PID_MAX, 1), limit: intParam(q, 'limit', 100_000, 1) ?? 1000, order };
      const store = agent.store;
      if (!store) throw new ApiError('store', 'the embedded store is disabled (sinks.store.enabled)');
      return { events: store.query(query) };
    });

    app.get('/v1/events/stream', (req, reply) => this.#sse(req, reply));

    // The detection rules in force, each with what it matched, and the engine's counters.
    app.get('/v1/rules', async (req) => {
      queryOf(req.query, []);
      const set = agent.ruleEngine?.ruleSet;
      const status = agent.ruleEngine?.status();
      if (!set || !status) return { active: false, rules: [] };
      const counters = new Map(status.perRule.map((c) => [c.name, c]));
      const { perRule: _p, ...summary } = status;
      return {
        active: true,
        summary,
        rules: set.rules.map((r) => {
          const c = counters.get(r.name);
          return { name: r.name, desc: r.desc, priority: r.priority, enabled: r.enabled, types: r.types ?? 'all', tags: r.tags, condition: r.condition, exceptions: r.exceptions.map(({ name, fields, comps, values }) => ({ name, fields, comps, values })), output: r.output, actions: r.actions, source: r.source, evaluated: c?.evaluated ?? 0, matches: c?.matches ?? 0, errors: c?.errors ?? 0, lastError: c?.lastError, actionResults: c?.actions };
        }),
        lists: Object.fromEntries(set.lists),
        macros: set.macros,
      };
    });

    // The agent re-reads its configuration source (vigil run: its file and flags) and applies it whole, or
    // changes nothing: 400 names the bad or start-only field, 409 an agent not running, 422 what the kernel
    // refused (a probe that cannot attach), the previous configuration still running in every case.
    app.post('/v1/config/reload', async (req, reply) => {
      queryOf(req.query, []);
      try {
        return { reloaded: true, ...agent.reload() };
      } catch (err) {
        if (err instanceof ConfigError) return reply.code(400).send({ error: err.message, field: err.issues[0]?.path, issues: err.issues });
        if (err instanceof RuleError) return reply.code(400).send({ error: `configuration not applied, the previous one still runs: ${err.message}`, field: err.issues[0]?.path, issues: err.issues });
        if (err instanceof ReloadRefusedError) return reply.code(400).send({ error: err.message, field: err.fields[0], fields: err.fields });
        if (err instanceof StateError) return reply.code(409).send({ error: err.message });
        if (err instanceof InvalidArgumentError) throw err;
        if (err instanceof VigilError) return reply.code(422).send({ error: `configuration not applied, the previous one still runs: ${err.message}` });
        throw err;
      }
    });

    // logrotate's postrotate: every sink with files opens them again at their paths (as SIGUSR1 does).
    app.post('/v1/sinks/reopen', async (req, reply) => {
      queryOf(req.query, []);
      try {
        return { reopened: await agent.reopenFiles() };
      } catch (err) {
        if (err instanceof StateError) return reply.code(409).send({ error: err.message });
        throw err;
      }
    });

    // agent.metrics: false leaves /metrics unrouted (404), and no registry is built.
    if (agent.config.agent.metrics) {
      const registry = createMetrics(agent);
      app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
    }
    return app;
  }

  /** Server-Sent Events: one `data:` line per event, filtered by the subscriber's compiled filter. */
  #sse(req: FastifyRequest, reply: FastifyReply): void {
    const filter = filterFromQuery(req.query); // throws ApiError -> 400 before the stream starts
    const res = reply.raw;
    // Subscribed before the reply is taken over, so that a filter the router refuses is still a 400.
    const id = subscribeStream(this.#agent.router, `sse:${req.ip || 'unix'}`, filter, res);
    reply.hijack();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    res.write(': vigil event stream\n\n');
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
    if (req.raw.socket?.destroyed) end(); // gone before we listened: no subscriber left behind
  }

  /**
   * Listens on the unix socket (replacing a stale one) and on TCP when configured. All or nothing: when a
   * listener fails, the ones already started are closed again. Throws InvalidArgumentError for a socket in
   * use by a running agent; the listen error otherwise.
   */
  async start(): Promise<void> {
    const sock = this.#o.socket;
    fs.mkdirSync(path.dirname(sock), { recursive: true, mode: 0o755 });
    await this.preflight();
    fs.rmSync(sock, { force: true }); // absent, or a stale socket nobody answers on
    try {
      const unixApp = this.#build(false);
      this.#apps.push(unixApp);
      const old = process.umask(0o177); // created 0600 from the start, not chmod'ed after
      try {
        await unixApp.listen({ path: sock });
        this.#ownsSocket = true;
      } finally {
        process.umask(old);
      }
      fs.chmodSync(sock, 0o600);
      if (this.#tcp) {
        const tcp = this.#build(true);
        this.#apps.push(tcp);
        await tcp.listen(this.#tcp);
      }
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Closes listeners and open streams; removes the socket file if it was ours. Idempotent. */
  async close(): Promise<void> {
    const apps = this.#apps;
    this.#apps = [];
    for (const close of [...this.#streams]) close();
    for (const a of apps) await a.close().catch(() => undefined);
    if (this.#ownsSocket) fs.rmSync(this.#o.socket, { force: true });
    this.#ownsSocket = false;
  }
}

/**
 * Requests Node rejects before routing (a header block over 16 KiB, a request line that is not HTTP): a JSON
 * error like every other answer, then the connection is closed, since the stream cannot be trusted after.
 */
function clientError(err: Error & { code?: string }, socket: net.Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, text, body] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', { error: 'request headers too large (at most 16 KiB in all, URL included)', field: 'headers' }]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', { error: 'the request did not arrive in time', field: 'request' }]
        : [400, 'Bad Request', { error: `malformed HTTP request (${err.code ?? err.message})`, field: 'request' }];
  const json = JSON.stringify(body);
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`);
  socket.destroy();
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
