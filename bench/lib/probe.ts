/**
 * Loopback probing for the bench: free ports and "is this proxy answering yet" polling.
 */
import http from 'node:http';
import { createServer } from 'node:net';

/** A TCP port that was free on 127.0.0.1 a moment ago (bind to 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Reply {
  readonly status: number;
  readonly body: Buffer;
}

/** One GET on a fresh connection; rejects on any socket error or after `timeoutMs`. */
export function get(port: number, path: string, host: string, timeoutMs = 1000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path, headers: { host }, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Polls `GET path` until a 2xx arrives or `timeoutMs` passes; resolves with the reply, or rejects with
 * the last failure. `alive()` lets the caller stop early when the process under test died.
 */
export async function waitFor2xx(
  port: number,
  path: string,
  host: string,
  timeoutMs: number,
  alive: () => boolean = () => true,
): Promise<Reply> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('the process exited');
    try {
      const reply = await get(port, path, host, Math.max(50, Math.min(1000, deadline - Date.now())));
      if (reply.status >= 200 && reply.status < 300) return reply;
      last = `HTTP ${reply.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no 2xx within ${timeoutMs} ms (last: ${last})`);
}
