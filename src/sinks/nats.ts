// NATS JetStream sink, at least once: each event goes to a subject (vigil.events.<type> by default) with
// Nats-Msg-Id = a hash of its JSON, retried until acknowledged across disconnects and server restarts; the
// stream drops the copies such retries create (duplicate window). Acks are awaited with bounded concurrency.
import crypto from 'node:crypto';
import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { connect, errors as natsErrors, nanos, type NatsConnection } from '@nats-io/transport-node';
import type { OutputEvent, SinkStats } from '../pipeline/types.ts';
import { bool, int, intOrInfinity, invalid, object, oneOf, optString, string, stringList, type Raw } from './options.ts';
import { describeError, QueuedSink, Ring } from './queue.ts';
import { backoffDelay, sleep, type BackoffOptions } from './retry.ts';

export interface NatsStreamOptions {
  name: string;
  /** Subjects the stream captures. Default: the subject template with {type} as "*". */
  subjects?: string[];
  /** Create the stream when it does not exist. Default false (the stream is managed elsewhere). */
  create?: boolean;
  storage?: 'file' | 'memory';
  /** Dedupe window for Nats-Msg-Id, ms: must cover the longest outage a retry can span. Default 10 min. */
  duplicateWindowMs?: number;
  maxAgeMs?: number;
  maxBytes?: number;
  replicas?: number;
}

export interface NatsSinkOptions {
  servers?: string | string[];
  /** Subject template; "{type}" becomes the event type. Default "vigil.events.{type}". */
  subject?: string;
  /** Connection name, as the server's monitoring shows it. Default "vigil". */
  connectionName?: string;
  user?: string;
  pass?: string;
  token?: string;
  stream?: NatsStreamOptions;
  /** Publishes awaiting their ack at once. Default 256. */
  maxInFlight?: number;
  /** How long a publish waits for its ack before it is retried, ms. Default 5000. */
  ackTimeoutMs?: number;
  /** Queue bound in events (queued + awaiting ack). Default 100000. */
  maxQueue?: number;
  /** Queue bound in bytes. Default 64 MiB. */
  maxQueueBytes?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Retries per event before "retries-exhausted"; default Infinity (at least once means: keep trying). */
  maxRetries?: number;
  /** close() waits this long for queued events before dropping them as "shutdown". Default 5000. */
  closeTimeoutMs?: number;
  /** flush() without an argument gives up waiting (events stay queued) after this, ms. Default 30000. */
  flushTimeoutMs?: number;
}

interface ResolvedStream {
  name: string;
  subjects: string[];
  create: boolean;
  storage: 'file' | 'memory';
  duplicateWindowMs: number;
  maxAgeMs: number;
  maxBytes: number;
  replicas: number;
}

interface Resolved {
  servers: string[];
  subject: string;
  connectionName: string;
  user: string | undefined;
  pass: string | undefined;
  token: string | undefined;
  stream: ResolvedStream | undefined;
  maxInFlight: number;
  ackTimeoutMs: number;
  maxQueue: number;
  maxQueueBytes: number;
  backoff: BackoffOptions;
  maxRetries: number;
  closeTimeoutMs: number;
  flushTimeoutMs: number;
}

const KEYS = ['enabled', 'servers', 'subject', 'connectionName', 'user', 'pass', 'token', 'stream', 'maxInFlight', 'ackTimeoutMs', 'maxQueue', 'maxQueueBytes', 'initialBackoffMs', 'maxBackoffMs', 'maxRetries', 'closeTimeoutMs', 'flushTimeoutMs'] as const;
const STREAM_KEYS = ['name', 'subjects', 'create', 'storage', 'duplicateWindowMs', 'maxAgeMs', 'maxBytes', 'replicas'] as const;
const SUBJECT_TOKEN = /^[^\s.*>]+$/;

/**
 * Validates NATS options.
 * @throws InvalidArgumentError naming the bad field.
 */
export function resolveNatsOptions(raw: unknown, p = 'sinks.nats'): Resolved {
  const o = object(raw, p, KEYS);
  const servers = stringList(o, 'servers', p, ['nats://127.0.0.1:4222']);
  servers.forEach((s, i) => {
    if (!/^(nats|tls):\/\/[^\s/]+$|^[^\s/:]+(:\d+)?$/.test(s)) invalid(`${p}.servers[${i}]`, `must be nats://host:port or host:port, got "${s}"`);
  });
  const subject = string(o, 'subject', p, 'vigil.events.{type}');
  const tokens = subject.replaceAll('{type}', 'x').split('.');
  if (!tokens.every((t) => SUBJECT_TOKEN.test(t))) invalid(`${p}.subject`, `"${subject}" is not a valid NATS subject (dot-separated tokens, no spaces or wildcards)`);
  let stream: ResolvedStream | undefined;
  if (o.stream !== undefined) {
    const sp = `${p}.stream`;
    const so: Raw = object(o.stream, sp, STREAM_KEYS);
    stream = {
      name: string(so, 'name', sp),
      subjects: stringList(so, 'subjects', sp, [subject.replaceAll('{type}', '*')]),
      create: bool(so, 'create', sp, false),
      storage: oneOf(so, 'storage', sp, ['file', 'memory'] as const, 'file'),
      duplicateWindowMs: int(so, 'duplicateWindowMs', sp, 10 * 60_000, 1),
      maxAgeMs: int(so, 'maxAgeMs', sp, 0, 0),
      maxBytes: int(so, 'maxBytes', sp, -1, -1),
      replicas: int(so, 'replicas', sp, 1, 1, 5),
    };
    if (/[\s.*>]/.test(stream.name)) invalid(`${sp}.name`, 'must not contain spaces, ".", "*" or ">"');
  }
  const initialMs = int(o, 'initialBackoffMs', p, 100, 1);
  const maxMs = int(o, 'maxBackoffMs', p, 5000, 1);
  if (maxMs < initialMs) invalid(`${p}.maxBackoffMs`, `must be >= initialBackoffMs (${initialMs})`);
  return {
    servers,
    subject,
    connectionName: string(o, 'connectionName', p, 'vigil'),
    user: optString(o, 'user', p),
    pass: optString(o, 'pass', p),
    token: optString(o, 'token', p),
    stream,
    maxInFlight: int(o, 'maxInFlight', p, 256, 1, 65_536),
    ackTimeoutMs: int(o, 'ackTimeoutMs', p, 5000, 1),
    maxQueue: int(o, 'maxQueue', p, 100_000, 1),
    maxQueueBytes: int(o, 'maxQueueBytes', p, 64 << 20, 1),
    backoff: { initialMs, maxMs },
    maxRetries: intOrInfinity(o, 'maxRetries', p, Infinity, 0),
    closeTimeoutMs: int(o, 'closeTimeoutMs', p, 5000, 0),
    flushTimeoutMs: int(o, 'flushTimeoutMs', p, 30_000, 0),
  };
}

/**
 * The stable id of an event: a hash of its JSON. A retry republishes the same bytes, so it carries the same
 * id; two distinct events differ at least in time or process, so they never share one.
 */
export function eventMsgId(line: string): string {
  return crypto.hash('sha256', line, 'base64url').slice(0, 32);
}

type Item = { subject: string; line: string };

export interface NatsSinkStats extends SinkStats {
  /** Acks that said the stream already had the message (a retry after an uncertain publish). */
  duplicates: number;
  connected: boolean;
}

/**
 * At least once. Drops, all counted: "queue-full" (the bound was reached, typically while the server is
 * down), "too-large" (over the server's max_payload), "rejected" (the stream refused the message with a 4xx),
 * "retries-exhausted" (only with a finite maxRetries), "shutdown" (still queued when close() timed out),
 * "closed". Publishes wait while disconnected; the client reconnects by itself, and a connection that closed
 * for good is replaced.
 */
export class NatsSink extends QueuedSink {
  readonly name: string;
  private readonly o: Resolved;
  private readonly ring: Ring<Item>;
  private readonly subjects = new Map<string, string>();
  private readonly subjectParts: string[];
  /** Sequence numbers of the events the lanes hold (publishing or backing off). */
  private held = new Set<number>();
  private lanes = 0;
  private laneDone: Promise<void>[] = [];
  private scheduled = false;
  private duplicates = 0;
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private connected = false;
  private wakeConnected: (() => void)[] = [];
  private readonly connecting: Promise<void>;

  /** Starts connecting in the background; events queue meanwhile. @throws InvalidArgumentError */
  constructor(opts: NatsSinkOptions = {}, name = 'nats') {
    super();
    this.name = name;
    this.o = resolveNatsOptions(opts);
    this.ring = new Ring<Item>(this.o.maxQueue, this.o.maxQueueBytes);
    this.subjectParts = this.o.subject.split('{type}');
    this.connecting = this.connectLoop();
  }

  write(ev: OutputEvent, line: string): void {
    if (!this.offer()) return;
    if (this.ring.length + this.held.size >= this.o.maxQueue || !this.ring.push({ subject: this.subjectOf(ev.type), line }, line.length + 64)) {
      this.counters.drop('queue-full');
      return;
    }
    this.accepted++;
    if (!this.scheduled && this.lanes < this.o.maxInFlight) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.startLanes();
      });
    }
  }

  stats(): NatsSinkStats {
    return { ...this.counters.snapshot(this.ring.length + this.held.size), duplicates: this.duplicates, connected: this.connected };
  }

  /** Waits until everything queued now is acknowledged or dropped, or timeoutMs (default flushTimeoutMs). */
  override flush(timeoutMs: number = this.o.flushTimeoutMs): Promise<void> {
    return super.flush(timeoutMs);
  }

  protected startFlush(): void {
    this.startLanes();
  }

  protected closeTimeoutMs(): number {
    return this.o.closeTimeoutMs;
  }

  /** Lanes waiting for a connection or a backoff gave up (aborted); what they held counts as "shutdown". */
  protected async giveUp(): Promise<void> {
    this.counters.drop('shutdown', this.ring.clear());
    this.wake();
    const nc = this.nc;
    this.nc = undefined;
    this.js = undefined;
    this.connected = false;
    // Publishes still awaiting an ack fail when the connection closes; they count as shutdown.
    await nc?.close().catch(() => {});
    await Promise.all(this.laneDone);
    await this.connecting;
  }

  private subjectOf(type: string): string {
    let s = this.subjects.get(type);
    if (s === undefined) {
      // Event types are [a-z_]; anything else would split or wildcard the subject.
      s = this.subjectParts.join(String(type).replace(/[^A-Za-z0-9_-]/g, '_') || '_');
      if (this.subjects.size < 1024) this.subjects.set(type, s);
    }
    return s;
  }

  protected watermark(): number {
    let w = this.accepted - this.ring.length;
    for (const s of this.held) if (s < w) w = s;
    return w;
  }

  private startLanes(): void {
    while (this.lanes < this.o.maxInFlight && this.lanes < this.ring.length && !this.abort.signal.aborted) {
      this.lanes++;
      const done = this.lane().finally(() => {
        this.lanes--;
        const i = this.laneDone.indexOf(done);
        if (i >= 0) this.laneDone.splice(i, 1);
        this.waiters.notify(this.watermark());
      });
      this.laneDone.push(done);
    }
  }

  /** One publisher: takes the oldest queued event, publishes it until acknowledged, repeats. Never throws. */
  private async lane(): Promise<void> {
    while (this.ring.length > 0 && !this.abort.signal.aborted) {
      const seq = this.accepted - this.ring.length;
      const item = this.ring.shift()!;
      this.held.add(seq);
      try {
        await this.deliver(item);
      } catch (err) {
        this.counters.drop('error');
        this.counters.error(err);
      } finally {
        this.held.delete(seq);
        this.waiters.notify(this.watermark());
      }
    }
  }

  private async deliver(item: Item): Promise<void> {
    const msgID = eventMsgId(item.line);
    for (let attempt = 0; ; attempt++) {
      const js = await this.whenConnected();
      if (!js) {
        this.counters.drop('shutdown');
        return;
      }
      try {
        const ack = await js.publish(item.subject, item.line, { msgID, timeout: this.o.ackTimeoutMs });
        this.counters.sent++;
        if (ack.duplicate) this.duplicates++;
        return;
      } catch (err) {
        const permanent = this.permanent(err);
        if (err instanceof Error && err.name === 'JetStreamNotEnabled') {
          // "No responders": nothing answers on the subject, i.e. no stream captures it (or no JetStream).
          this.counters.lastError = `publish ${item.subject}: no stream captures this subject, or JetStream is not enabled on the server`;
        } else {
          this.counters.lastError = `publish ${item.subject}: ${describeError(err)}`;
        }
        if (permanent) {
          this.counters.drop(permanent);
          return;
        }
        if (this.abort.signal.aborted) {
          this.counters.drop('shutdown');
          return;
        }
        if (attempt >= this.o.maxRetries) {
          this.counters.drop('retries-exhausted');
          return;
        }
        this.counters.retries++;
        if (!(await sleep(backoffDelay(attempt, this.o.backoff), this.abort.signal))) {
          this.counters.drop('shutdown');
          return;
        }
      }
    }
  }

  /** The drop reason of an error retrying cannot fix, or undefined for a retryable one. */
  private permanent(err: unknown): string | undefined {
    if (err instanceof natsErrors.InvalidArgumentError && /max_payload/.test(err.message)) return 'too-large';
    if (err instanceof natsErrors.InvalidSubjectError) return 'rejected';
    if (err instanceof JetStreamApiError) {
      const s = err.status;
      // 4xx: the stream refused this message (size, headers, expectations). 503 (no JetStream, stream
      // leader lost, limits with discard=new) and 408 are transient.
      if (s >= 400 && s < 500 && s !== 408 && s !== 404) return 'rejected';
    }
    return undefined;
  }

  /** The JetStream client once connected; undefined when closing. */
  private async whenConnected(): Promise<JetStreamClient | undefined> {
    while (!this.abort.signal.aborted) {
      if (this.connected && this.js) return this.js;
      await new Promise<void>((resolve) => this.wakeConnected.push(resolve));
    }
    return undefined;
  }

  private wake(): void {
    const w = this.wakeConnected;
    this.wakeConnected = [];
    for (const f of w) f();
  }

  private setConnected(v: boolean): void {
    this.connected = v;
    if (v) this.wake();
  }

  /**
   * Connects, and reconnects when a connection closes for good. The client reconnects by itself after a
   * disconnect (forever); this loop covers the first connection and a client that gave up.
   */
  private async connectLoop(): Promise<void> {
    for (let attempt = 0; !this.abort.signal.aborted; ) {
      let nc: NatsConnection;
      try {
        nc = await connect({
          servers: this.o.servers,
          name: this.o.connectionName,
          user: this.o.user,
          pass: this.o.pass,
          token: this.o.token,
          reconnect: true,
          // Without this the client builds two Error objects (for async stack traces) per request: a third of
          // the CPU a publish costs.
          noAsyncTraces: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: Math.min(1000, this.o.backoff.maxMs),
          timeout: Math.max(1000, this.o.ackTimeoutMs),
        });
      } catch (err) {
        this.counters.error(err);
        await sleep(backoffDelay(attempt++, this.o.backoff), this.abort.signal);
        continue;
      }
      if (this.abort.signal.aborted) {
        await nc.close().catch(() => {});
        return;
      }
      this.nc = nc;
      this.js = jetstream(nc, { timeout: this.o.ackTimeoutMs });
      void this.watchStatus(nc);
      if (this.o.stream?.create && !(await this.ensureStream(nc))) {
        await nc.close().catch(() => {});
        await sleep(backoffDelay(attempt++, this.o.backoff), this.abort.signal);
        continue;
      }
      attempt = 0;
      this.setConnected(!nc.isClosed());
      const err = await nc.closed();
      this.setConnected(false);
      if (this.nc === nc) {
        this.nc = undefined;
        this.js = undefined;
      }
      if (err) this.counters.error(err);
      if (!this.abort.signal.aborted) await sleep(backoffDelay(attempt++, this.o.backoff), this.abort.signal);
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (nc !== this.nc) break;
      if (s.type === 'disconnect') this.setConnected(false);
      else if (s.type === 'reconnect') this.setConnected(true);
    }
  }

  /** Creates the stream when missing. False (error recorded) when it could not. */
  private async ensureStream(nc: NatsConnection): Promise<boolean> {
    const st = this.o.stream!;
    try {
      const jsm = await jetstreamManager(nc, { timeout: this.o.ackTimeoutMs });
      try {
        await jsm.streams.info(st.name);
        return true;
      } catch (err) {
        if (!(err instanceof JetStreamApiError) || err.status !== 404) throw err;
      }
      await jsm.streams.add({
        name: st.name,
        subjects: st.subjects,
        storage: st.storage,
        duplicate_window: nanos(st.duplicateWindowMs),
        max_age: nanos(st.maxAgeMs),
        max_bytes: st.maxBytes,
        num_replicas: st.replicas,
      });
      return true;
    } catch (err) {
      this.counters.lastError = `creating stream ${st.name}: ${describeError(err)}`;
      return false;
    }
  }
}
