// Event streams (GET /v1/events/stream): Server-Sent Events, one `data:` record per event's JSON line.
import { Buffer } from 'node:buffer';
import type { EventFilter, Router } from '../pipeline/router.ts';

/** Bytes an event stream may have waiting in its socket before its events are dropped (counted). */
export const SSE_MAX_BUFFERED = 4 << 20;
/**
 * Lines an SSE client is given at a time (one socket write). Small enough that the lines die young under a
 * busy ring (see Router.subscribe's batch), large enough that writes stay few.
 */
export const SSE_BATCH = 256;
/** What an SSE record puts around a line: `data: <line>` and the blank line that ends the record. */
const DATA = Buffer.from('data: ');
const END = Buffer.from('\n\n');
/** The least a stream's write buffer is made: what a full batch of lines of ~800 bytes takes. */
const CHUNK_BYTES = 256 << 10;

/**
 * Subscribes an event stream: the JSON lines of the events `filter` takes, written to `out` as SSE `data:`
 * records, SSE_BATCH lines per write. Lines, not event objects: the stream gets a copy of the bytes of the line
 * the sinks got, and no object is built for it (Router.subscribeLines; an object per event, then
 * JSON.stringify, cost a stream ~5 µs per event, bench/pipeline's sse stage). A client that does not read
 * must not grow the agent's memory: past SSE_MAX_BUFFERED waiting in its socket, its batches are lost,
 * counted by the router as this subscriber's drops. Returns the subscriber's id; throws InvalidArgumentError
 * for a bad filter.
 */
export function subscribeStream(router: Router, name: string, filter: EventFilter, out: { readonly writableLength: number; write(chunk: Buffer, done: () => void): unknown }): number {
  let spare: Buffer | undefined;
  return router.subscribeLines(
    name,
    filter,
    (lines) => {
      if (out.writableLength > SSE_MAX_BUFFERED) throw new Error('event stream client is not reading'); // counted as failed
      let n = 0;
      for (const line of lines) n += DATA.length + line.length + END.length;
      // The buffer of the last write, once written: a batch is ~200 KiB, and a new one per batch was external
      // memory that made V8 run full collections (bench/pipeline, sse stage).
      const buf = spare && spare.length >= n ? spare : Buffer.allocUnsafeSlow(Math.max(n, CHUNK_BYTES));
      spare = undefined;
      let p = 0;
      for (const line of lines) {
        buf.set(DATA, p);
        p += DATA.length;
        buf.set(line, p);
        p += line.length;
        buf[p++] = 0x0a;
        buf[p++] = 0x0a;
      }
      out.write(buf.subarray(0, p), () => (spare = buf)); // one copy of the lines' bytes, nothing to encode
    },
    { batch: SSE_BATCH },
  );
}
