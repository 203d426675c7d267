// Webhook sink: POSTs batches of events as a JSON array to a URL. The body is assembled from the JSON lines
// the pipeline already serialized, so an event is never stringified twice; delivery, retries and drop
// accounting live in HttpBatchSink.
import type { OutputEvent } from '../pipeline/types.ts';
import { HTTP_KEYS, HttpBatchSink, resolveHttpOptions, type HttpBatchOptions, type HttpCodec } from './http-batch.ts';
import { object } from './options.ts';

export type WebhookOptions = Partial<Omit<HttpBatchOptions, 'backoff'>> & {
  url: string;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
};

const CODEC: HttpCodec<string> = {
  contentType: 'application/json',
  item: (_ev: OutputEvent, line: string) => line,
  // +1 for the comma; lengths are UTF-16 units, close enough to bytes for a bound.
  size: (line: string) => line.length + 1,
  encode: (lines: string[]) => `[${lines.join(',')}]`,
};

/**
 * Validates webhook options (path names the config location for errors).
 * @throws InvalidArgumentError naming the bad field.
 */
export function resolveWebhookOptions(raw: unknown, path = 'sinks.webhook'): HttpBatchOptions {
  return resolveHttpOptions(object(raw, path, HTTP_KEYS), path, { maxBatch: 500 });
}

/**
 * Delivers each event at least once unless it is dropped and counted: "queue-full" (bound reached),
 * "http-<status>" (a 4xx other than 408/429: the receiver refused it, retrying cannot help),
 * "retries-exhausted", "shutdown" (still queued when close() timed out), "closed" (written after close()).
 */
export class WebhookSink extends HttpBatchSink<string> {
  /** @throws InvalidArgumentError on bad options. */
  constructor(opts: WebhookOptions, name = 'webhook') {
    super(name, resolveWebhookOptions(opts), CODEC);
  }
}
