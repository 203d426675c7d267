// A small client for the agent's API over its unix socket, used by the CLI (`vigil status`, `ps`,
// `containers`, `events`). Distinguishes "no agent running" (so commands can fall back to standalone
// mode) from an agent that answered with an error.
import http from 'node:http';
import { VigilError } from '../bpf/errors.ts';

export class AgentUnavailableError extends VigilError {
  constructor(socket: string, cause: unknown) {
    super('ENOAGENT', `no agent answers at ${socket} (is \`vigil run\` running? see --socket)`, { cause });
  }
}

/** The socket accepted the connection but nothing answered in time: a stuck agent, not a missing one. */
export class AgentTimeoutError extends VigilError {
  constructor(socket: string, timeoutMs: number) {
    super('ETIMEDOUT', `the agent at ${socket} accepted the connection but did not answer within ${timeoutMs} ms (is it overloaded? see \`vigil status\` and its log)`);
  }
}

export class ApiClientError extends VigilError {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    super('EAPI', `agent answered ${status}: ${(body as { error?: string })?.error ?? JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

/** GETs a path from the agent; resolves with parsed JSON (or text for non-JSON answers). */
export function apiGet<T = unknown>(socket: string, path: string, timeoutMs = 10_000): Promise<T> {
  return apiRequest<T>('GET', socket, path, timeoutMs);
}

/** POSTs (no body) to a path of the agent: an action, like a configuration reload. */
export function apiPost<T = unknown>(socket: string, path: string, timeoutMs = 30_000): Promise<T> {
  return apiRequest<T>('POST', socket, path, timeoutMs);
}

function apiRequest<T>(method: 'GET' | 'POST', socket: string, path: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path, method, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const isJson = (res.headers['content-type'] ?? '').includes('json');
        let body: unknown = text;
        if (isJson) {
          try {
            body = JSON.parse(text);
          } catch {
            return reject(new ApiClientError(res.statusCode ?? 0, { error: 'unparsable reply' }));
          }
        }
        if ((res.statusCode ?? 500) >= 400) reject(new ApiClientError(res.statusCode ?? 500, body));
        else resolve(body as T);
      });
    });
    let timedOut = false;
    req.on('timeout', () => {
      timedOut = true;
      req.destroy();
    });
    // Only a socket nobody listens on means "no agent"; callers fall back to standalone mode for that alone.
    req.on('error', (err) => reject(timedOut ? new AgentTimeoutError(socket, timeoutMs) : new AgentUnavailableError(socket, err)));
    req.end();
  });
}
