/**
 * Raw-socket test tools for the hardening tests: a client that writes exact bytes (node:net, nothing
 * normalised) and splits what comes back into responses, and a backend that counts every request head
 * and every completed request it receives.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';

export interface RawResponse {
  readonly status: number;
  /** Lowercased names; repeated fields joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  readonly rawHead: string;
  readonly body: Buffer;
  /** The SY_* code from X-Switchyard-Error, if any. */
  readonly code: string | undefined;
}

export interface RawResult {
  /** Every byte received. */
  readonly bytes: Buffer;
  /** Complete responses parsed from `bytes`, in order. */
  readonly responses: RawResponse[];
  /** Bytes after the last complete response (a truncated response shows here). */
  readonly rest: Buffer;
  /** How the connection ended: peer closed cleanly, was reset, or we gave up waiting. */
  readonly ending: 'end' | 'reset' | 'timeout';
  readonly elapsedMs: number;
  /** Our side's port (to find this connection in a server's records). */
  readonly localPort: number | undefined;
}

export interface RawOptions {
  /** Give up (and destroy the socket) after this long. Default 3000 ms. */
  readonly timeoutMs?: number;
  /** Stop waiting once this many responses were parsed (the socket is then destroyed). */
  readonly responses?: number;
  /** Write the bytes in pieces with pauses between them: [bytes, delay before the next piece]. */
  readonly pieces?: readonly (readonly [string | Buffer, number])[];
  /** Half-close our side after writing. Default false. */
  readonly endAfterWrite?: boolean;
  /** The requests are HEAD: responses carry no body whatever their Content-Length. */
  readonly head?: boolean;
}

/** Sends `bytes` (latin1 when a string) on a fresh connection and collects what comes back. */
export function rawExchange(port: number, bytes: string | Buffer, options: RawOptions = {}): Promise<RawResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let ending: RawResult['ending'] = 'end';
    let settled = false;
    let localPort: number | undefined;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const all = Buffer.concat(chunks);
      const { responses, rest } = splitResponses(all, options.head === true);
      resolve({ bytes: all, responses, rest, ending, elapsedMs: Date.now() - started, localPort });
    };
    const timer = setTimeout(() => {
      ending = 'timeout';
      finish();
    }, options.timeoutMs ?? 3000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      const parsed = splitResponses(Buffer.concat(chunks), options.head === true);
      if (options.responses !== undefined && parsed.responses.length >= options.responses) {
        finish();
      }
    });
    socket.on('error', () => {
      ending = 'reset';
    });
    socket.on('close', finish);
    socket.on('connect', async () => {
      localPort = socket.localPort;
      const pieces = options.pieces ?? [[bytes, 0] as const];
      for (const [piece, delay] of pieces) {
        if (socket.destroyed) return;
        socket.write(typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece);
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      }
      if (options.endAfterWrite === true && !socket.destroyed) socket.end();
    });
  });
}

/** Splits HTTP/1.1 responses (Content-Length or chunked bodies; a 1xx has none). */
export function splitResponses(all: Buffer, head = false): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let offset = 0;
  for (;;) {
    const headEnd = all.indexOf('\r\n\r\n', offset, 'latin1');
    if (headEnd < 0) break;
    const rawHead = all.subarray(offset, headEnd).toString('latin1');
    const lines = rawHead.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (m === null) break;
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    let cursor = headEnd + 4;
    let body: Buffer;
    if (status < 200 || head) {
      body = Buffer.alloc(0);
    } else if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const lineEnd = all.indexOf('\r\n', cursor, 'latin1');
        if (lineEnd < 0) break;
        const size = Number.parseInt(all.subarray(cursor, lineEnd).toString('latin1'), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          const trailerEnd = all.indexOf('\r\n\r\n', lineEnd, 'latin1');
          if (trailerEnd < 0) break;
          cursor = trailerEnd + 4;
          complete = true;
          break;
        }
        if (all.length < lineEnd + 2 + size + 2) break;
        parts.push(all.subarray(lineEnd + 2, lineEnd + 2 + size));
        cursor = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined || status === 204 || status === 304) {
      const length = Number(headers['content-length'] ?? 0);
      if (all.length < cursor + length) break;
      body = all.subarray(cursor, cursor + length);
      cursor += length;
    } else {
      // Close-delimited (an HTTP/1.0 client): the body is everything up to EOF.
      body = all.subarray(cursor);
      cursor = all.length;
    }
    responses.push({ status, headers, rawHead, body, code: headers['x-switchyard-error'] });
    offset = cursor;
  }
  return { responses, rest: all.subarray(offset) };
}

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly rawHeaders: readonly string[];
  readonly headers: http.IncomingHttpHeaders;
  body: Buffer;
  complete: boolean;
}

export interface CountingBackend {
  readonly server: http.Server;
  readonly address: string;
  readonly port: number;
  /** Every request head that reached the backend. */
  readonly heads: SeenRequest[];
  /** Requests whose body ended normally. */
  readonly completed: () => SeenRequest[];
  close(): Promise<void>;
}

/**
 * An HTTP backend that records every request head (at once) and its body (when it ends), and answers
 * 200 `X-Backend: yes` with `X-Body-Length` (or what `handler` writes, after the body ended).
 */
export async function startCountingBackend(
  handler?: (req: http.IncomingMessage, res: http.ServerResponse, seen: SeenRequest) => void,
): Promise<CountingBackend> {
  const heads: SeenRequest[] = [];
  const server = http.createServer({ requireHostHeader: false }, (req, res) => {
    const seen: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      httpVersion: req.httpVersion,
      rawHeaders: req.rawHeaders,
      headers: req.headers,
      body: Buffer.alloc(0),
      complete: false,
    };
    heads.push(seen);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => {
      seen.body = Buffer.concat(chunks);
      seen.complete = true;
      if (handler !== undefined) {
        handler(req, res, seen);
        return;
      }
      res.writeHead(200, { 'X-Backend': 'yes', 'X-Body-Length': String(seen.body.length) });
      res.end('ok');
    });
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    heads,
    completed: () => heads.filter((h) => h.complete),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A raw TCP backend: `onConnection` scripts what the node does with each connection. */
export async function startScriptedNode(
  onConnection: (socket: net.Socket, received: () => Buffer) => void,
): Promise<{ address: string; port: number; connections: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0 };
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    onConnection(socket, () => Buffer.concat(chunks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Waits until `predicate` holds (polling every 5 ms) or `timeoutMs` passes; returns whether it held. */
export async function until(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}
