// The runtime clients without privileges: each against a fake server on a unix socket in a temp dir that
// answers correctly, answers garbage, hangs, or closes mid-reply. Every failure must be a RuntimeError of a
// clear kind, every call must end (test timeouts turn a hang into a failure), and every server is closed in
// t.after. The gRPC fakes are real grpc-js servers built from vigil's own protos.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { Server, ServerCredentials, status, type Metadata, type ServerUnaryCall, type sendUnaryData, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { RuntimeError, type RuntimeErrorKind } from '../../src/containers/runtimes/types.ts';
import { DockerClient } from '../../src/containers/runtimes/docker.ts';
import { CriClient, parseVerboseInfo, runtimeNameOf } from '../../src/containers/runtimes/cri.ts';
import { ContainerdClient, NAMESPACE_HEADER } from '../../src/containers/runtimes/containerd.ts';
import { serviceConstructor } from '../../src/containers/runtimes/grpc.ts';
import { detectRuntimeClients, detectRuntimes, findRuntimeSockets } from '../../src/containers/runtimes/detect.ts';
import { digestOf, nanosToIso, podFromLabels } from '../../src/containers/runtimes/common.ts';
import { tempDir } from '../helpers/privileged.ts';

const T = { timeout: 10_000 };
const ID = 'f55d36e9d5865a4b911abdd0a6376668dee437e41483564f56d8b854caab19ef';
const IMAGE_ID = 'sha256:73a82d6160ea49222f838605ae713e0b41bea1a2792508e987b1e22778da2365';
const POD_ID = '24e6319e44f3a7a7f981f636b3390b20f60750806439950c7a94015b0d87f1b1';

/** A short-lived signal: failure paths must end well before the test's own timeout. */
const soon = () => AbortSignal.timeout(300);
const ample = () => AbortSignal.timeout(5_000);

async function rejectsWith(p: Promise<unknown>, kind: RuntimeErrorKind, message?: RegExp): Promise<RuntimeError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof RuntimeError, `expected a RuntimeError, got ${String(err)}`);
    assert.equal(err.kind, kind, `kind of: ${err.message}`);
    assert.equal(err.code, `ERUNTIME_${kind.toUpperCase()}`);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected a RuntimeError (${kind}), but the call succeeded`);
}

function sock(t: TestContext, name = 'rt.sock'): string {
  return path.join(tempDir(t, 'vigil-rt-'), name);
}

/** An HTTP server on a unix socket; closed (with its connections) after the test. */
async function httpServer(t: TestContext, socketPath: string, handler: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return server;
}

/** A raw stream server: hangs, garbage, early close. Tracks its connections so a test can see them closed. */
async function rawServer(t: TestContext, socketPath: string, onConn: (s: net.Socket) => void): Promise<{ closed: Promise<void>[] }> {
  const conns: net.Socket[] = [];
  const closed: Promise<void>[] = [];
  const server = net.createServer((s) => {
    conns.push(s);
    closed.push(new Promise((resolve) => s.once('close', () => resolve())));
    s.on('error', () => {});
    onConn(s);
    // Keep reading even when the handler ignores the data: a paused socket would never notice the peer's close.
    s.resume();
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.after(() => new Promise<void>((resolve) => {
    for (const c of conns) c.destroy();
    server.close(() => resolve());
  }));
  return { closed };
}

/** A socket file nobody listens on: connecting to it is refused. */
async function staleSocket(t: TestContext): Promise<string> {
  const dir = tempDir(t, 'vigil-rt-');
  const live = path.join(dir, 'live.sock');
  const stale = path.join(dir, 'stale.sock');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(live, resolve));
  // Node unlinks the path it listened on when it closes; the renamed link survives, with no listener.
  fs.renameSync(live, stale);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return stale;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// ---- Docker Engine API -------------------------------------------------------------------------------------

/** What dockerd 20.10 answers to GET /containers/<id>/json, trimmed to what matters. */
function dockerInspect(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Id: ID,
    Created: '2026-11-22T07:30:23.859886283Z',
    Path: 'sleep',
    Args: ['3600'],
    State: { Status: 'running', Running: true, Paused: false, Pid: 3674, ExitCode: 0, StartedAt: '2026-11-22T07:30:24.268106054Z' },
    Image: IMAGE_ID,
    Name: '/d1',
    Config: { Hostname: 'f55d36e9d586', Image: 'localhost/test-busybox:latest', Labels: { app: 'web' }, Cmd: ['sleep', '3600'] },
    ...over,
  };
}

function dockerSummary(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { Id: ID, Names: ['/d1'], Image: 'localhost/test-busybox:latest', ImageID: IMAGE_ID, Command: 'sleep 3600', Created: 1795332623, Labels: { app: 'web' }, State: 'running', Status: 'Up 2 seconds', ...over };
}

test('docker: inspect maps the Engine API reply', T, async (t) => {
  const path_ = sock(t);
  const seen: string[] = [];
  await httpServer(t, path_, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.url === `/containers/${ID}/json`) return json(res, 200, dockerInspect());
    json(res, 404, { message: `No such container: ${req.url}` });
  });
  const c = new DockerClient({ socketPath: path_ });
  t.after(() => c.close());
  assert.equal(c.runtime, 'docker');
  assert.equal(c.endpoint, path_);
  const info = await c.inspect(ID, ample());
  assert.deepEqual(info, {
    id: ID,
    name: 'd1',
    image: 'localhost/test-busybox:latest',
    imageDigest: IMAGE_ID,
    labels: { app: 'web' },
    pid: 3674,
    createdAt: '2026-11-22T07:30:23.859886283Z',
    runtime: 'docker',
    state: 'running',
  });
  assert.equal(await c.inspect('nope', ample()), undefined, '404 means "not mine"');
  assert.deepEqual(seen, [`GET /containers/${ID}/json`, 'GET /containers/nope/json']);
});

test('docker: kubelet labels give the pod; null labels, a stopped container and odd names are tolerated', T, async (t) => {
  const path_ = sock(t);
  const kube = { 'io.kubernetes.pod.name': 'web-0', 'io.kubernetes.pod.namespace': 'shop', 'io.kubernetes.pod.uid': 'u-1', 'io.kubernetes.container.name': 'app' };
  await httpServer(t, path_, (req, res) => {
    if (req.url === '/containers/kube/json') return json(res, 200, dockerInspect({ Config: { Image: 'x', Labels: kube } }));
    if (req.url === '/containers/bare/json') return json(res, 200, dockerInspect({ Name: 7, Config: { Image: 'x', Labels: null }, State: { Status: 'exited', Pid: 0 } }));
    json(res, 404, {});
  });
  const c = new DockerClient({ socketPath: path_ });
  t.after(() => c.close());
  const k = await c.inspect('kube', ample());
  assert.deepEqual(k?.pod, { name: 'web-0', namespace: 'shop', uid: 'u-1' });
  const b = await c.inspect('bare', ample());
  assert.deepEqual(b?.labels, {});
  assert.equal(b?.pid, undefined, 'Pid 0 is "no process"');
  assert.equal(b?.state, 'exited');
  assert.equal(b?.name, '');
  assert.equal(b?.pod, undefined);
});

test('docker: list maps the summaries', T, async (t) => {
  const path_ = sock(t);
  await httpServer(t, path_, (req, res) => {
    if (req.url === '/containers/json') return json(res, 200, [dockerSummary(), dockerSummary({ Id: 'b'.repeat(64), Names: ['/other'], Labels: null })]);
    json(res, 404, {});
  });
  const c = new DockerClient({ socketPath: path_ });
  t.after(() => c.close());
  const l = await c.list(ample());
  assert.equal(l.length, 2);
  assert.deepEqual(l[0], {
    id: ID,
    name: 'd1',
    image: 'localhost/test-busybox:latest',
    imageDigest: IMAGE_ID,
    labels: { app: 'web' },
    createdAt: new Date(1795332623 * 1000).toISOString(),
    runtime: 'docker',
    state: 'running',
  });
  assert.equal(l[1]!.name, 'other');
  assert.deepEqual(l[1]!.labels, {});
});

test('podman: the libpod API adds the podman pod to inspect and list', T, async (t) => {
  const path_ = sock(t);
  await httpServer(t, path_, (req, res) => {
    if (req.url === `/containers/${ID}/json`) return json(res, 200, dockerInspect());
    if (req.url === `/v4.0.0/libpod/containers/${ID}/json`) return json(res, 200, { Id: ID, Pod: POD_ID, State: { CgroupPath: `/libpod_parent/${POD_ID}/libpod-${ID}` } });
    if (req.url === `/v4.0.0/libpod/pods/${POD_ID}/json`) return json(res, 200, { Id: POD_ID, Name: 'p1' });
    if (req.url === '/containers/json') return json(res, 200, [dockerSummary()]);
    if (req.url === '/v4.0.0/libpod/containers/json') return json(res, 200, [{ Id: ID, Pod: POD_ID, PodName: 'p1' }]);
    json(res, 404, {});
  });
  const c = new DockerClient({ socketPath: path_, runtime: 'podman' });
  t.after(() => c.close());
  const info = await c.inspect(ID, ample());
  assert.equal(info?.runtime, 'podman');
  assert.deepEqual(info?.extra, { pod: POD_ID, podName: 'p1' });
  const l = await c.list(ample());
  assert.deepEqual(l[0]?.extra, { pod: POD_ID, podName: 'p1' });
});

test('podman: a socket without the libpod API still inspects', T, async (t) => {
  const path_ = sock(t);
  await httpServer(t, path_, (req, res) => {
    if (req.url === `/containers/${ID}/json`) return json(res, 200, dockerInspect());
    res.writeHead(500).end('not here');
  });
  const c = new DockerClient({ socketPath: path_, runtime: 'podman' });
  t.after(() => c.close());
  const info = await c.inspect(ID, ample());
  assert.equal(info?.id, ID);
  assert.equal(info?.extra, undefined);
});

test('docker: garbage replies are protocol errors', T, async (t) => {
  const path_ = sock(t);
  await httpServer(t, path_, (req, res) => {
    if (req.url === '/containers/notjson/json') return res.writeHead(200, { 'content-type': 'application/json' }).end('<html>hello</html>');
    if (req.url === '/containers/array/json') return json(res, 200, [1, 2]);
    if (req.url === '/containers/noid/json') return json(res, 200, { Name: '/x' });
    if (req.url === '/containers/boom/json') return json(res, 500, { message: 'daemon exploded' });
    if (req.url === '/containers/json') return json(res, 200, { not: 'a list' });
    json(res, 404, {});
  });
  const c = new DockerClient({ socketPath: path_ });
  t.after(() => c.close());
  await rejectsWith(c.inspect('notjson', ample()), 'protocol', /not JSON/);
  await rejectsWith(c.inspect('array', ample()), 'protocol', /not a container object/);
  await rejectsWith(c.inspect('noid', ample()), 'protocol', /not a container object/);
  await rejectsWith(c.inspect('boom', ample()), 'protocol', /HTTP 500: daemon exploded/);
  await rejectsWith(c.list(ample()), 'protocol', /not a JSON array/);
});

test('docker: a reply larger than the limit is refused, not buffered', T, async (t) => {
  const path_ = sock(t);
  await httpServer(t, path_, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`{"Id":"${'x'.repeat(64 * 1024)}"}`);
  });
  const c = new DockerClient({ socketPath: path_, maxReplyBytes: 4096 });
  t.after(() => c.close());
  await rejectsWith(c.inspect(ID, ample()), 'protocol', /larger than 4096 bytes/);
});

test('docker: a server that speaks something other than HTTP is a protocol error', T, async (t) => {
  const path_ = sock(t);
  await rawServer(t, path_, (s) => s.once('data', () => s.end('SSH-2.0-OpenSSH_9.2\r\n\r\n')));
  const c = new DockerClient({ socketPath: path_ });
  t.after(() => c.close());
  await rejectsWith(c.inspect(ID, ample()), 'protocol');
});

test('docker: a server that never answers times out, and the connection is closed', T, async (t) => {
  const path_ = sock(t);
  const srv = await rawServer(t, path_, () => {});
  const c = new DockerClient({ socketPath: path_ });
  t.after(() => c.close());
  await rejectsWith(c.inspect(ID, soon()), 'timeout', /timed out/);
  // The client destroyed its request: the server sees the connection end. A leak would hang here.
  assert.equal(srv.closed.length, 1);
  await srv.closed[0];
});

test('docker: a server that stalls mid-body times out', T, async (t) => {
  const path_ = sock(t);
  await httpServer(t, path_, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 });
    res.write('{"Id": "');
  });
  const c = new DockerClient({ socketPath: path_ });
  t.after(() => c.close());
  await rejectsWith(c.inspect(ID, soon()), 'timeout');
});

test('docker: a connection closed mid-reply is a protocol error', T, async (t) => {
  const path_ = sock(t);
  await rawServer(t, path_, (s) =>
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"Id": "abc');
      setImmediate(() => s.destroy());
    }),
  );
  const c = new DockerClient({ socketPath: path_ });
  t.after(() => c.close());
  await rejectsWith(c.inspect(ID, ample()), 'protocol', /mid-reply|aborted|reset/);
});

test('docker: a connection closed before any reply is a protocol error', T, async (t) => {
  const path_ = sock(t);
  await rawServer(t, path_, (s) => s.once('data', () => s.destroy()));
  const c = new DockerClient({ socketPath: path_ });
  t.after(() => c.close());
  await rejectsWith(c.inspect(ID, ample()), 'protocol', /hang up|reset/);
});

test('docker: a kept-alive connection the daemon dropped is retried once on a fresh one', T, async (t) => {
  const path_ = sock(t);
  const served = new WeakMap<object, number>();
  let connections = 0;
  const server = await httpServer(t, path_, (req, res) => {
    const n = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, n);
    // The second request on a connection finds it dropped, as after a daemon's idle timeout.
    if (n === 2) return req.socket.destroy();
    json(res, 200, dockerInspect());
  });
  server.on('connection', () => connections++);
  const c = new DockerClient({ socketPath: path_ });
  t.after(() => c.close());
  assert.equal((await c.inspect(ID, ample()))?.id, ID);
  assert.equal((await c.inspect(ID, ample()))?.id, ID);
  assert.equal(connections, 2, 'the retry used a new connection');
});

test('docker: a missing socket is unavailable, a dead one refused, an aborted signal a timeout', T, async (t) => {
  const missing = new DockerClient({ socketPath: path.join(tempDir(t), 'none.sock') });
  t.after(() => missing.close());
  await rejectsWith(missing.inspect(ID, ample()), 'unavailable', /ENOENT/);
  await rejectsWith(missing.list(ample()), 'unavailable');
  const dead = new DockerClient({ socketPath: await staleSocket(t) });
  t.after(() => dead.close());
  await rejectsWith(dead.inspect(ID, ample()), 'refused', /ECONNREFUSED/);
  const ctl = new AbortController();
  ctl.abort(new Error('shutting down'));
  await rejectsWith(missing.inspect(ID, ctl.signal), 'timeout', /aborted \(shutting down\)/);
});

test('docker: close() is idempotent and later calls fail cleanly', T, async (t) => {
  const path_ = sock(t);
  await httpServer(t, path_, (_req, res) => json(res, 200, dockerInspect()));
  const c = new DockerClient({ socketPath: path_ });
  assert.equal((await c.inspect(ID, ample()))?.id, ID);
  c.close();
  c.close();
  await rejectsWith(c.inspect(ID, ample()), 'unavailable', /closed/);
});

// ---- gRPC fakes ---------------------------------------------------------------------------------------------

type Handler = (call: ServerUnaryCall<Record<string, unknown>, unknown>, cb: sendUnaryData<unknown>) => void;

/** A grpc-js server on a unix socket serving the given services (from vigil's protos); shut down after the test. */
async function grpcServer(t: TestContext, socketPath: string, services: { file: string; name: string; impl: Record<string, Handler> }[]): Promise<Server> {
  const server = new Server();
  for (const s of services) server.addService(serviceConstructor(s.file, s.name).service, s.impl as UntypedServiceImplementation);
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socketPath}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  t.after(() => server.forceShutdown());
  return server;
}

const notFound = (cb: sendUnaryData<unknown>, what: string) => cb({ code: status.NOT_FOUND, details: `${what}: not found` }, null);

const CRI = { file: 'cri-api.proto', name: 'runtime.v1.RuntimeService' };
const CTR_ID = 'c'.repeat(64);
const SB_ID = 's'.repeat(64);
const NS_CREATED = '1795332623123456789';

function criImpl(over: Partial<Record<string, Handler>> = {}): Record<string, Handler> {
  return {
    Version: (_c, cb) => cb(null, { version: '0.1.0', runtime_name: 'containerd', runtime_version: '1.6.20', runtime_api_version: 'v1' }),
    ContainerStatus: (call, cb) => {
      if (call.request.container_id !== CTR_ID) return notFound(cb, 'container');
      cb(null, {
        status: {
          id: CTR_ID,
          metadata: { name: 'app', attempt: 0 },
          state: 'CONTAINER_RUNNING',
          created_at: NS_CREATED,
          image: { image: 'localhost/test-busybox:latest' },
          image_ref: `localhost/test-busybox@${IMAGE_ID}`,
          labels: { 'io.kubernetes.container.name': 'app', 'io.kubernetes.pod.name': 'web-0', 'io.kubernetes.pod.namespace': 'shop', 'io.kubernetes.pod.uid': 'uid-1' },
          annotations: { 'io.kubernetes.container.restartCount': '0' },
        },
        info: call.request.verbose ? { info: JSON.stringify({ sandboxID: SB_ID, pid: 4242, runtimeSpec: {} }) } : {},
      });
    },
    PodSandboxStatus: (call, cb) => {
      if (call.request.pod_sandbox_id !== SB_ID) return notFound(cb, 'sandbox');
      cb(null, { status: { id: SB_ID, metadata: { name: 'web-0', uid: 'uid-1', namespace: 'shop', attempt: 0 }, state: 'SANDBOX_READY', created_at: NS_CREATED, labels: { app: 'web' }, annotations: {} } });
    },
    ListContainers: (_call, cb) =>
      cb(null, { containers: [{ id: CTR_ID, pod_sandbox_id: SB_ID, metadata: { name: 'app' }, image: { image: 'localhost/test-busybox:latest' }, image_ref: IMAGE_ID, state: 'CONTAINER_RUNNING', created_at: NS_CREATED, labels: { a: 'b' } }] }),
    ListPodSandbox: (_call, cb) => cb(null, { items: [{ id: SB_ID, metadata: { name: 'web-0', uid: 'uid-1', namespace: 'shop' }, state: 'SANDBOX_READY', labels: { app: 'web' } }] }),
    ...over,
  };
}

// ---- CRI ----------------------------------------------------------------------------------------------------

test('cri: inspect joins ContainerStatus (verbose pid) with PodSandboxStatus', T, async (t) => {
  const path_ = sock(t);
  await grpcServer(t, path_, [{ ...CRI, impl: criImpl() }]);
  const c = new CriClient({ socketPath: path_ });
  t.after(() => c.close());
  const info = await c.inspect(CTR_ID, ample());
  assert.deepEqual(info, {
    id: CTR_ID,
    name: 'app',
    image: 'localhost/test-busybox:latest',
    imageDigest: IMAGE_ID,
    labels: { 'io.kubernetes.container.name': 'app', 'io.kubernetes.pod.name': 'web-0', 'io.kubernetes.pod.namespace': 'shop', 'io.kubernetes.pod.uid': 'uid-1' },
    createdAt: nanosToIso(NS_CREATED),
    state: 'running',
    runtime: 'containerd',
    pid: 4242,
    pod: { name: 'web-0', namespace: 'shop', uid: 'uid-1', labels: { app: 'web' } },
    extra: { 'annotation:io.kubernetes.container.restartCount': '0', sandboxId: SB_ID },
  });
  assert.equal(info?.createdAt, '2026-11-22T07:30:23.123Z');
  assert.equal(await c.inspect('d'.repeat(64), ample()), undefined);
});

test('cri: a sandbox id inspects as its pod; the sandbox id comes from ListContainers when verbose info lacks it', T, async (t) => {
  const path_ = sock(t);
  await grpcServer(t, path_, [{ ...CRI, impl: criImpl({
    ContainerStatus: (call, cb) =>
      call.request.container_id === CTR_ID
        ? cb(null, { status: { id: CTR_ID, metadata: { name: 'app' }, state: 'CONTAINER_EXITED', image: { image: 'img' }, labels: {} }, info: { info: 'not json' } })
        : notFound(cb, 'container'),
  }) }]);
  const c = new CriClient({ socketPath: path_ });
  t.after(() => c.close());
  const info = await c.inspect(CTR_ID, ample());
  assert.equal(info?.pid, undefined);
  assert.equal(info?.state, 'exited');
  assert.equal(info?.extra?.sandboxId, SB_ID);
  assert.deepEqual(info?.pod, { name: 'web-0', namespace: 'shop', uid: 'uid-1', labels: { app: 'web' } });
  const sb = await c.inspect(SB_ID, ample());
  assert.equal(sb?.id, SB_ID);
  assert.equal(sb?.extra?.kind, 'sandbox');
  assert.equal(sb?.state, 'ready');
  assert.deepEqual(sb?.pod, { name: 'web-0', namespace: 'shop', uid: 'uid-1', labels: { app: 'web' } });
});

test('cri: list, and the runtime name comes from Version()', T, async (t) => {
  const path_ = sock(t);
  await grpcServer(t, path_, [{ ...CRI, impl: criImpl({ Version: (_c, cb) => cb(null, { version: '0.1.0', runtime_name: 'cri-o', runtime_version: '1.28.0', runtime_api_version: 'v1' }) }) }]);
  const c = new CriClient({ socketPath: path_ });
  t.after(() => c.close());
  assert.equal(c.runtime, 'containerd', 'the configured guess, before Version()');
  const l = await c.list(ample());
  assert.equal(c.runtime, 'cri-o');
  assert.equal(l.length, 1);
  assert.equal(l[0]!.runtime, 'cri-o');
  assert.equal(l[0]!.imageDigest, IMAGE_ID);
  assert.deepEqual(l[0]!.pod, { name: 'web-0', namespace: 'shop', uid: 'uid-1', labels: { app: 'web' } });
  const v = await c.version(ample());
  assert.equal(v.runtime_version, '1.28.0');
});

test('cri: the lifecycle calls send what the CRI expects', T, async (t) => {
  const path_ = sock(t);
  const got: Record<string, Record<string, unknown>> = {};
  const record = (name: string, reply: unknown): Handler => (call, cb) => {
    got[name] = call.request;
    cb(null, reply);
  };
  await grpcServer(t, path_, [{ ...CRI, impl: criImpl({
    RunPodSandbox: record('RunPodSandbox', { pod_sandbox_id: SB_ID }),
    CreateContainer: record('CreateContainer', { container_id: CTR_ID }),
    StartContainer: record('StartContainer', {}),
    ExecSync: record('ExecSync', { stdout: Buffer.from('0::/kubepods\n'), stderr: Buffer.alloc(0), exit_code: 3 }),
    StopContainer: record('StopContainer', {}),
    RemoveContainer: record('RemoveContainer', {}),
    StopPodSandbox: record('StopPodSandbox', {}),
    RemovePodSandbox: record('RemovePodSandbox', {}),
  }) }]);
  const c = new CriClient({ socketPath: path_ });
  t.after(() => c.close());
  const sbConfig = { metadata: { name: 'web-0', uid: 'uid-1', namespace: 'shop' }, labels: { app: 'web' }, linux: { cgroup_parent: '/kubepods/besteffort/poduid-1' } };
  assert.equal(await c.runPodSandbox(sbConfig, ample()), SB_ID);
  const cfg = { metadata: { name: 'app' }, image: { image: 'localhost/test-busybox:latest' }, command: ['sleep', '3600'], labels: { 'io.kubernetes.container.name': 'app' } };
  assert.equal(await c.createContainer(SB_ID, cfg, sbConfig, ample()), CTR_ID);
  await c.startContainer(CTR_ID, ample());
  const r = await c.execSync(CTR_ID, ['cat', '/proc/self/cgroup'], ample(), 5);
  assert.equal(r.stdout.toString(), '0::/kubepods\n');
  assert.equal(r.exitCode, 3);
  await c.stopContainer(CTR_ID, 0, ample());
  await c.removeContainer(CTR_ID, ample());
  await c.stopPodSandbox(SB_ID, ample());
  await c.removePodSandbox(SB_ID, ample());
  const sent = got.RunPodSandbox!.config as { metadata: { name: string; uid: string; namespace: string }; labels: Record<string, string>; linux: { cgroup_parent: string } };
  assert.deepEqual(sent.metadata, { name: 'web-0', uid: 'uid-1', namespace: 'shop', attempt: 0 });
  assert.equal(sent.linux.cgroup_parent, '/kubepods/besteffort/poduid-1');
  assert.deepEqual(sent.labels, { app: 'web' });
  assert.equal(got.CreateContainer!.pod_sandbox_id, SB_ID);
  assert.deepEqual((got.CreateContainer!.config as { command: string[] }).command, ['sleep', '3600']);
  assert.deepEqual(got.ExecSync!.cmd, ['cat', '/proc/self/cgroup']);
  assert.equal(got.ExecSync!.timeout, '5');
  assert.equal(got.StopContainer!.timeout, '0');
  assert.equal(got.RemovePodSandbox!.pod_sandbox_id, SB_ID);
});

test('cri: error statuses map to RuntimeError kinds', T, async (t) => {
  const path_ = sock(t);
  await grpcServer(t, path_, [{ ...CRI, impl: criImpl({
    ContainerStatus: (call, cb) => {
      if (call.request.container_id === 'internal') return cb({ code: status.INTERNAL, details: 'boom' }, null);
      if (call.request.container_id === 'deadline') return cb({ code: status.DEADLINE_EXCEEDED, details: 'slow' }, null);
      cb({ code: status.PERMISSION_DENIED, details: 'no' }, null);
    },
    RunPodSandbox: (_c, cb) => cb(null, {}),
  }) }]);
  const c = new CriClient({ socketPath: path_ });
  t.after(() => c.close());
  await rejectsWith(c.inspect('internal', ample()), 'protocol', /INTERNAL: boom/);
  await rejectsWith(c.inspect('deadline', ample()), 'timeout', /slow/);
  await rejectsWith(c.inspect('other', ample()), 'protocol', /PERMISSION_DENIED/);
  await rejectsWith(c.runPodSandbox({ metadata: { name: 'a', uid: 'b', namespace: 'c' } }, ample()), 'protocol', /no pod_sandbox_id/);
  // ListContainers etc. are served, but a method the server lacks is UNIMPLEMENTED.
  await rejectsWith(c.startContainer('x', ample()), 'protocol', /not implemented/);
});

test('cri: a server that answers a call but never replies times out', T, async (t) => {
  const path_ = sock(t);
  await grpcServer(t, path_, [{ ...CRI, impl: criImpl({ ContainerStatus: () => {} }) }]);
  const c = new CriClient({ socketPath: path_ });
  t.after(() => c.close());
  await rejectsWith(c.inspect(CTR_ID, soon()), 'timeout', /ContainerStatus: timed out/);
});

// The transport failures are the same code (grpc.ts) for both gRPC clients: run them against each.
const grpcClients: [string, (socketPath: string) => { inspect(id: string, s: AbortSignal): Promise<unknown>; close(): void }][] = [
  ['cri', (p) => new CriClient({ socketPath: p })],
  ['containerd', (p) => new ContainerdClient({ socketPath: p })],
];

for (const [label, make] of grpcClients) {
  test(`${label}: a socket that accepts and never speaks times out, and the connection is closed on close()`, T, async (t) => {
    const path_ = sock(t);
    const srv = await rawServer(t, path_, () => {});
    const c = make(path_);
    await rejectsWith(c.inspect(CTR_ID, soon()), 'timeout', /timed out/);
    c.close();
    await Promise.all(srv.closed);
  });

  test(`${label}: garbage instead of HTTP/2 is a protocol error`, T, async (t) => {
    const path_ = sock(t);
    await rawServer(t, path_, (s) => {
      s.on('data', () => {});
      s.write(Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
      setImmediate(() => s.end());
    });
    const c = make(path_);
    t.after(() => c.close());
    await rejectsWith(c.inspect(CTR_ID, ample()), 'protocol');
  });

  test(`${label}: a connection closed mid-call is a protocol error`, T, async (t) => {
    const path_ = sock(t);
    // Reads the client's preface and first frames, then hangs up without a reply.
    await rawServer(t, path_, (s) => s.once('data', () => setImmediate(() => s.destroy())));
    const c = make(path_);
    t.after(() => c.close());
    await rejectsWith(c.inspect(CTR_ID, ample()), 'protocol');
  });

  test(`${label}: missing socket, dead socket, aborted signal, closed client`, T, async (t) => {
    const missing = make(path.join(tempDir(t), 'none.sock'));
    t.after(() => missing.close());
    await rejectsWith(missing.inspect(CTR_ID, ample()), 'unavailable');
    const dead = make(await staleSocket(t));
    t.after(() => dead.close());
    await rejectsWith(dead.inspect(CTR_ID, ample()), 'refused', /ECONNREFUSED/);
    const ctl = new AbortController();
    ctl.abort();
    await rejectsWith(missing.inspect(CTR_ID, ctl.signal), 'timeout', /aborted/);
    const closed = make(path.join(tempDir(t), 'none.sock'));
    closed.close();
    closed.close();
    await rejectsWith(closed.inspect(CTR_ID, ample()), 'unavailable', /closed/);
  });
}

// ---- containerd ---------------------------------------------------------------------------------------------

test('containerd: inspect walks namespaces with the namespace header; Tasks give pid and state, Images the digest', T, async (t) => {
  const path_ = sock(t);
  const nsOf = (md: Metadata) => String(md.get(NAMESPACE_HEADER)[0] ?? '');
  const containers: Record<string, Record<string, unknown>[]> = {
    default: [],
    'vigil-x': [
      {
        id: 'c1',
        labels: { app: 'web' },
        image: 'localhost/test-busybox:latest',
        runtime: { name: 'io.containerd.runc.v2' },
        spec: { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify({ linux: { cgroupsPath: '/vigil-x/c1' } })) },
        snapshotter: 'overlayfs',
        created_at: { seconds: '1795332623', nanos: 500_000_000 },
      },
      { id: 'c2', labels: { 'io.kubernetes.container.name': 'app', 'io.kubernetes.pod.name': 'p', 'io.kubernetes.pod.namespace': 'n', 'io.kubernetes.pod.uid': 'u' }, image: '' },
    ],
  };
  // As containerd fills them: the task's id is its container's; container_id stays empty.
  const tasks: Record<string, Record<string, unknown>[]> = { 'vigil-x': [{ id: 'c1', pid: 777, status: 'RUNNING' }, { id: 'c2', pid: 0, status: 'STOPPED' }] };
  const seenNs: string[] = [];
  await grpcServer(t, path_, [
    { file: 'containerd-namespaces.proto', name: 'containerd.services.namespaces.v1.Namespaces', impl: { List: (_c, cb) => cb(null, { namespaces: [{ name: 'default' }, { name: 'vigil-x' }] }) } },
    {
      file: 'containerd-containers.proto',
      name: 'containerd.services.containers.v1.Containers',
      impl: {
        Get: (call, cb) => {
          seenNs.push(nsOf(call.metadata));
          const c = (containers[nsOf(call.metadata)] ?? []).find((x) => x.id === call.request.id);
          return c ? cb(null, { container: c }) : notFound(cb, `container ${String(call.request.id)}`);
        },
        List: (call, cb) => cb(null, { containers: containers[nsOf(call.metadata)] ?? [] }),
      },
    },
    {
      file: 'containerd-tasks.proto',
      name: 'containerd.services.tasks.v1.Tasks',
      impl: {
        Get: (call, cb) => {
          const p = (tasks[nsOf(call.metadata)] ?? []).find((x) => x.id === call.request.container_id);
          return p ? cb(null, { process: p }) : notFound(cb, 'task');
        },
        List: (call, cb) => cb(null, { tasks: tasks[nsOf(call.metadata)] ?? [] }),
      },
    },
    {
      file: 'containerd-images.proto',
      name: 'containerd.services.images.v1.Images',
      impl: { Get: (call, cb) => (call.request.name === 'localhost/test-busybox:latest' ? cb(null, { image: { name: call.request.name, target: { media_type: 'application/vnd.oci.image.manifest.v1+json', digest: IMAGE_ID, size: '500' } } }) : notFound(cb, 'image')) },
    },
  ]);
  const c = new ContainerdClient({ socketPath: path_ });
  t.after(() => c.close());
  assert.deepEqual(await c.namespaces(ample()), ['default', 'vigil-x']);
  const info = await c.inspect('c1', ample());
  assert.deepEqual(seenNs, ['default', 'vigil-x']);
  assert.deepEqual(info, {
    id: 'c1',
    name: 'c1',
    image: 'localhost/test-busybox:latest',
    imageDigest: IMAGE_ID,
    labels: { app: 'web' },
    runtime: 'containerd',
    extra: { namespace: 'vigil-x', runtime: 'io.containerd.runc.v2', snapshotter: 'overlayfs', cgroupsPath: '/vigil-x/c1' },
    createdAt: '2026-11-22T07:30:23.500Z',
    pid: 777,
    state: 'running',
  });
  const k = await c.inspect('c2', ample());
  assert.equal(k?.name, 'app');
  assert.equal(k?.state, 'exited');
  assert.equal(k?.pid, undefined);
  assert.deepEqual(k?.pod, { name: 'p', namespace: 'n', uid: 'u' });
  assert.equal(await c.inspect('c3', ample()), undefined);
  const l = await c.list(ample());
  assert.deepEqual(l.map((x) => [x.id, x.pid, x.state]), [['c1', 777, 'running']]);

  const fixed = new ContainerdClient({ socketPath: path_, namespaces: ['vigil-x'] });
  t.after(() => fixed.close());
  seenNs.length = 0;
  assert.equal((await fixed.inspect('c1', ample()))?.id, 'c1');
  assert.deepEqual(seenNs, ['vigil-x'], 'configured namespaces are not listed');
});

// ---- detection and helpers ----------------------------------------------------------------------------------

test('detect: finds the sockets that exist, skips non-sockets, collapses /var/run links, never connects', T, async (t) => {
  const root = tempDir(t, 'vigil-detect-');
  fs.mkdirSync(path.join(root, 'run/containerd'), { recursive: true });
  fs.mkdirSync(path.join(root, 'run/podman'), { recursive: true });
  fs.mkdirSync(path.join(root, 'var'), { recursive: true });
  fs.symlinkSync('../run', path.join(root, 'var/run'));
  const accepted: number[] = [];
  const listen = async (p: string) => {
    const s = net.createServer(() => accepted.push(1));
    await new Promise<void>((resolve) => s.listen(p, resolve));
    t.after(() => new Promise<void>((resolve) => s.close(() => resolve())));
  };
  await listen(path.join(root, 'run/docker.sock'));
  await listen(path.join(root, 'run/containerd/containerd.sock'));
  fs.writeFileSync(path.join(root, 'run/podman/podman.sock'), 'not a socket');
  const found = findRuntimeSockets({ root });
  assert.deepEqual(found, [
    { runtime: 'docker', path: path.join(root, '/var/run/docker.sock'), api: 'docker' },
    { runtime: 'containerd', path: path.join(root, '/run/containerd/containerd.sock'), api: 'cri' },
    { runtime: 'containerd', path: path.join(root, '/run/containerd/containerd.sock'), api: 'containerd' },
  ]);
  const clients = detectRuntimes({ root });
  t.after(() => clients.forEach((c) => c.close()));
  assert.deepEqual(clients.map((c) => [c.constructor.name, c.runtime]), [['DockerClient', 'docker'], ['CriClient', 'containerd'], ['ContainerdClient', 'containerd']]);
  const configured = detectRuntimeClients([{ runtime: 'podman', socket: path.join(root, 'run/docker.sock') }, { runtime: 'cri-o', socket: path.join(root, 'nope.sock') }]);
  t.after(() => configured.forEach((c) => c.close()));
  assert.deepEqual(configured.map((c) => [c.constructor.name, c.runtime, c.endpoint]), [['DockerClient', 'podman', path.join(root, 'run/docker.sock')]]);
  await new Promise((r) => setImmediate(r));
  assert.equal(accepted.length, 0, 'detection connected to a socket');
});

test('helpers: kubelet labels, verbose info, digests, timestamps, runtime names', () => {
  assert.deepEqual(podFromLabels({ 'io.kubernetes.pod.name': 'a', 'io.kubernetes.pod.namespace': 'b' }), { name: 'a', namespace: 'b', uid: '' });
  assert.equal(podFromLabels({ 'io.kubernetes.pod.name': 'a' }), undefined);
  assert.deepEqual(parseVerboseInfo({ info: '{"pid": 12, "sandboxID": "s"}' }), { pid: 12, sandboxId: 's' });
  assert.deepEqual(parseVerboseInfo({ info: '{"pid": -1, "sandboxID": 5}' }), {});
  assert.deepEqual(parseVerboseInfo({ info: '[' }), {});
  assert.deepEqual(parseVerboseInfo(undefined), {});
  assert.equal(digestOf(`x@${IMAGE_ID}`), IMAGE_ID);
  assert.equal(digestOf('sha256:short'), undefined);
  assert.equal(nanosToIso('0'), undefined);
  assert.equal(nanosToIso('garbage'), undefined);
  assert.equal(nanosToIso(1_000_000_000n), '1970-01-01T00:00:01.000Z');
  assert.equal(runtimeNameOf('cri-o', 'containerd'), 'cri-o');
  assert.equal(runtimeNameOf('containerd', 'cri-o'), 'containerd');
  assert.equal(runtimeNameOf('something', 'containerd'), 'containerd');
});
