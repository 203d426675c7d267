// gRPC plumbing shared by the CRI and containerd clients: loading vigil's own .proto subsets, one channel per
// unix socket, and unary calls that honour an AbortSignal and fail only with RuntimeErrors whose kind says
// whether the socket is missing, refused, hung, or answered something unusable.
import fs from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Channel, ChannelCredentials, credentials, loadPackageDefinition, Metadata, status } from '@grpc/grpc-js';
import type { ChannelOptions, Client, GrpcObject, ServiceClientConstructor, ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { RuntimeError } from './types.ts';
import { abortedError } from './common.ts';
import type { Peer } from './common.ts';

const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));

// keepCase: fields keep the protocol's snake_case names. longs as strings: CRI timestamps are int64 nanoseconds,
// beyond Number's exact range. enums as names, so that code reads 'CONTAINER_RUNNING', not 1.
const LOAD_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;

// Reconnect quickly once a runtime comes back: grpc-js backs off up to 120 s by default, which would leave
// containers unattributed for minutes after a runtime restart. A local subchannel pool: a client's connections
// are its own and go away with it.
const CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 5_000,
  'grpc.enable_retries': 0,
  'grpc.use_local_subchannel_pool': 1,
};

const packages = new Map<string, GrpcObject>();

/** The service constructor `name` ("runtime.v1.RuntimeService") from src/containers/proto/<file>; cached. */
export function serviceConstructor(file: string, name: string): ServiceClientConstructor {
  let pkg = packages.get(file);
  if (!pkg) {
    pkg = loadPackageDefinition(loadSync(PROTO_DIR + file, LOAD_OPTIONS));
    packages.set(file, pkg);
  }
  let node: unknown = pkg;
  for (const part of name.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function') throw new Error(`${file} declares no service ${name}`);
  return node as ServiceClientConstructor;
}

type Connector = ReturnType<ChannelCredentials['_createSecureConnector']>;

/**
 * Plain (insecure) credentials that remember the sockets their channel opens, so that closing can destroy
 * them. grpc-js 1.14 has no connect timeout: a runtime that accepts a connection and never completes the
 * HTTP/2 handshake would keep that socket open after the channel is closed, until the runtime dropped it.
 */
class SocketTrackingCredentials extends ChannelCredentials {
  readonly #insecure = credentials.createInsecure();
  readonly #sockets = new Set<Socket>();

  _isSecure(): boolean {
    return false;
  }

  // Identity, so that no other channel ever shares (and keeps alive) this one's connections.
  _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(...args: Parameters<ChannelCredentials['_createSecureConnector']>): Connector {
    const inner = this.#insecure._createSecureConnector(...args);
    const sockets = this.#sockets;
    return {
      connect(socket) {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        return inner.connect(socket);
      },
      waitForReady: () => inner.waitForReady(),
      getCallCredentials: () => inner.getCallCredentials(),
      destroy: () => inner.destroy(),
    };
  }

  destroySockets(): void {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }
}

/** One gRPC channel to a unix socket, shared by the clients of several services; close() frees every socket. */
export class UnixChannel {
  readonly #target: string;
  readonly #creds = new SocketTrackingCredentials();
  readonly #channel: Channel;
  #closed = false;

  constructor(socketPath: string) {
    this.#target = `unix://${socketPath}`;
    this.#channel = new Channel(this.#target, this.#creds, CHANNEL_OPTIONS);
  }

  /** A client of one service over this channel. */
  client(ctor: ServiceClientConstructor): Client {
    return new ctor(this.#target, this.#creds, { channelOverride: this.#channel });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel.close();
    this.#creds.destroySockets();
  }
}

type UnaryMethod = (
  request: object,
  metadata: Metadata,
  options: object,
  callback: (err: ServiceError | null, response?: unknown) => void,
) => { cancel(): void };

export interface UnaryOptions {
  signal: AbortSignal;
  /** Extra request metadata, e.g. containerd's namespace header. */
  metadata?: Record<string, string>;
  /** Resolve with undefined on NOT_FOUND instead of failing (inspect of an unknown id). */
  allowNotFound?: boolean;
}

/**
 * One unary call of `method` on `client`. Never rejects with anything but a RuntimeError: timeout when the
 * signal fires first, unavailable/refused when the socket is missing or not listened on, protocol otherwise.
 */
export function unary<T>(peer: Peer, client: Client, method: string, request: object, options: UnaryOptions & { allowNotFound: true }): Promise<T | undefined>;
export function unary<T>(peer: Peer, client: Client, method: string, request: object, options: UnaryOptions): Promise<T>;
export function unary<T>(peer: Peer, client: Client, method: string, request: object, options: UnaryOptions): Promise<T | undefined> {
  const { signal } = options;
  if (signal.aborted) return Promise.reject(abortedError(peer, signal, method));
  const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
  if (typeof fn !== 'function') return Promise.reject(new RuntimeError(peer.runtime, peer.endpoint, 'protocol', `${method}: not in the loaded proto`));
  return new Promise<T | undefined>((resolve, reject) => {
    let settled = false;
    let call: { cancel(): void } | undefined;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      call?.cancel();
      reject(abortedError(peer, signal, method));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const md = new Metadata();
    for (const [k, v] of Object.entries(options.metadata ?? {})) md.set(k, v);
    try {
      call = fn.call(client, request, md, {}, (err, response) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (!err) resolve(response as T);
        else if (err.code === status.NOT_FOUND && options.allowNotFound) resolve(undefined);
        else reject(fromServiceError(peer, method, err));
      });
    } catch (err) {
      // grpc-js throws synchronously on a closed channel or a request it cannot serialize.
      settled = true;
      signal.removeEventListener('abort', onAbort);
      const msg = err instanceof Error ? err.message : String(err);
      reject(new RuntimeError(peer.runtime, peer.endpoint, /shut ?down|closed/i.test(msg) ? 'unavailable' : 'protocol', `${method}: ${msg}`, err));
    }
  });
}

/** Maps a gRPC status to a RuntimeError kind. UNAVAILABLE is split by what the socket looks like. */
function fromServiceError(peer: Peer, method: string, err: ServiceError): RuntimeError {
  const details = err.details || err.message;
  const make = (kind: RuntimeError['kind'], why: string) => new RuntimeError(peer.runtime, peer.endpoint, kind, `${method}: ${why}`, err);
  switch (err.code) {
    case status.DEADLINE_EXCEEDED:
    case status.CANCELLED:
      return make('timeout', details);
    case status.UNAVAILABLE: {
      if (/ECONNREFUSED/.test(details)) return make('refused', details);
      if (/ENOENT/.test(details) || !socketExists(peer.endpoint)) return make('unavailable', `no socket (${details})`);
      // A live socket whose peer dropped the connection or spoke something that is not HTTP/2 gRPC.
      return make('protocol', details);
    }
    case status.UNIMPLEMENTED:
      return make('protocol', `not implemented by this runtime: ${details}`);
    default:
      return make('protocol', `${status[err.code] ?? `code ${err.code}`}: ${details}`);
  }
}

function socketExists(path: string): boolean {
  try {
    return fs.statSync(path).isSocket();
  } catch {
    return false;
  }
}
