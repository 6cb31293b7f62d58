/**
 * Helpers for tests that run uWSGI's own HTTP router next to Switchyard (parity, stats, ini): a real
 * `uwsgi --plugins corerouter,http` process, a raw HTTP client that keeps duplicate headers and sends
 * chunked bodies, and the uWSGI stats reader. Loopback only; every process is stopped by its handle.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface UwsgiRouter {
  readonly child: ChildProcess;
  readonly log: string;
  stop(): Promise<void>;
  /** The router's log so far (for failure messages). */
  logText(): string;
}

/** Starts `uwsgi --plugins corerouter,http ...args` and resolves once `port` accepts connections. */
export async function startUwsgiRouter(
  args: readonly string[],
  port: number,
  options: { readonly cwd?: string; readonly env?: Readonly<Record<string, string>> } = {},
): Promise<UwsgiRouter> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-uwsgi-router-'));
  const log = path.join(dir, 'router.log');
  const child = spawn('uwsgi', ['--plugins', 'corerouter,http', '--logto', log, ...args], {
    stdio: 'ignore',
    cwd: options.cwd ?? dir,
    env: { ...process.env, ...options.env },
  });
  child.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const handle: UwsgiRouter = {
    child,
    log,
    logText: () => {
      try {
        return readFileSync(log, 'utf8');
      } catch {
        return '';
      }
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const text = handle.logText();
      await handle.stop();
      throw new Error(`uWSGI router did not start:\n${text}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return handle;
}

export function accepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Reads one stats document (the server writes JSON and closes). */
export function readStats(port: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(error);
      }
    });
    socket.on('error', reject);
  });
}

export interface RawReply {
  readonly status: number;
  readonly head: string;
  readonly body: Buffer;
}

/**
 * Sends raw request bytes (exactly as given: duplicate headers, chunked bodies...) with
 * `Connection: close` semantics and returns the parsed reply. Handles Content-Length, chunked and
 * read-until-close bodies; an empty reply (uWSGI's way to say "no route") gives status 0.
 */
export function rawExchange(port: number, request: Buffer | string, timeoutMs = 10_000): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('raw exchange timed out'));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseReply(Buffer.concat(chunks)));
    });
    socket.on('error', () => undefined);
    socket.write(request);
  });
}

function parseReply(bytes: Buffer): RawReply {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, head: bytes.toString('latin1'), body: Buffer.alloc(0) };
  const head = bytes.subarray(0, end).toString('latin1');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  let body = bytes.subarray(end + 4);
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) body = dechunk(body);
  else {
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (length !== null) body = body.subarray(0, Number(length[1]));
  }
  return { status, head, body };
}

function dechunk(bytes: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(bytes.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
