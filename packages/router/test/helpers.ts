/** Test helpers for router tests: backends on 127.0.0.1 port 0 and a small HTTP client. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { Router, type RouterOptions, type VhostNode } from '../src/index.js';

export interface TestBackend {
  readonly server: http.Server;
  readonly port: number;
  readonly address: string;
  /** Requests seen, in order. */
  readonly seen: {
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    bodyLength: number;
    socketPort: number;
  }[];
  close(): Promise<void>;
}

/** An HTTP backend answering `name` (or what `handler` writes). */
export async function startBackend(
  name: string,
  handler?: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void,
): Promise<TestBackend> {
  const seen: TestBackend['seen'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        bodyLength: body.length,
        socketPort: req.socket.remotePort ?? 0,
      });
      if (handler !== undefined) handler(req, res, body);
      else res.end(name);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A TCP port with nothing listening (connections are refused). */
export async function refusedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

export function httpNode(key: string, address: string, weight = 1): VhostNode {
  const [host, port] = address.split(':') as [string, string];
  return {
    key,
    address,
    target: { kind: 'tcp', host, port: Number(port) },
    protocol: 'http',
    weight,
    modifier1: 0,
    modifier2: 0,
    backup: 0,
    source: 'subscription',
    state: 'active',
  };
}

export async function startRouter(options: Partial<RouterOptions> = {}): Promise<{ router: Router; port: number }> {
  const router = new Router({ http: ['127.0.0.1:0'], ...options });
  await router.start();
  return { router, port: router.addresses()[0]!.port };
}

export interface TestResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
}

export function request(
  port: number,
  options: {
    host?: string;
    method?: string;
    path?: string;
    body?: Buffer | string;
    headers?: Record<string, string>;
    agent?: http.Agent;
  } = {},
): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path ?? '/',
        headers: { host: options.host ?? 'app.test', ...options.headers },
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString() });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Sends raw bytes and returns everything received until the server closes (or `timeoutMs`). */
export function rawRequest(port: number, bytes: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.on('error', reject);
    socket.write(bytes);
  });
}
