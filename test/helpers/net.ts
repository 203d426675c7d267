// Network peers of the tests: servers that count what reaches them, closed when the test ends.
import { once } from 'node:events';
import net from 'node:net';
import type { TestContext } from 'node:test';

/**
 * A stream server counting the connections it accepts (each closed at once), listening on `at`: a TCP
 * address, or a unix socket's path ("\0" and a name for an abstract one). Closed when the test ends.
 */
export async function countingServer(t: TestContext, at: net.ListenOptions | string): Promise<{ server: net.Server; accepted: () => number }> {
  let n = 0;
  const server = net.createServer((c) => {
    n++;
    c.destroy();
  });
  server.listen(typeof at === 'string' ? { path: at } : at);
  await once(server, 'listening');
  t.after(() => server.close());
  return { server, accepted: () => n };
}
