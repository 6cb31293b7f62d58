/**
 * A subscription server bound to a UNIX datagram socket, as uWSGI's `--http-subscription-server
 * /path/sub.sock` (nodes then use `--subscribe-to /path/sub.sock:key`). Node's dgram module has no UNIX
 * datagram sockets, so this uses the optional `unix-dgram` addon (also used for notify acks); without
 * it, binding fails with a message saying so.
 *
 * Contract:
 *  - `path` is absolute (`/run/sub.sock`) or abstract (`@name`, Linux); a stale socket file left by a
 *    previous run is replaced (as uWSGI does), any other existing file is refused (EEXIST);
 *  - every datagram goes to `onMessage` with the source `{ address: '127.0.0.1', port: 0 }`: it comes
 *    from this machine, so source allowlists and rate limits treat it as loopback; the socket file's
 *    permissions decide who may send (the file is created with the process umask);
 *  - `close()` closes the socket and removes its file; safe twice.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import type { DatagramSource } from './subscription-server.js';

interface UnixDgramSocket {
  on(event: 'message', listener: (message: Buffer) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  once(event: 'listening' | 'error', listener: (error?: Error) => void): void;
  removeAllListeners(event: string): void;
  bind(path: string): void;
  close(): void;
}

interface UnixDgramModule {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

/** The source every UNIX datagram is attributed to (see the contract above). */
export const UNIX_SOURCE: DatagramSource = Object.freeze({ address: '127.0.0.1', port: 0 });

/** True for bind texts naming a UNIX datagram socket: an absolute path or `@abstract`. */
export function isUnixBind(text: string): boolean {
  return (text.startsWith('/') && text.length > 1) || (text.startsWith('@') && text.length > 1);
}

export class UnixSubscriptionSocket {
  /** The bind text as given: `/path` or `@name`. */
  readonly bind: string;
  /** The socket address (`\0name` for an abstract one). */
  readonly #path: string;
  #socket: UnixDgramSocket | undefined;

  private constructor(bind: string, path: string, socket: UnixDgramSocket) {
    this.bind = bind;
    this.#path = path;
    this.#socket = socket;
  }

  /**
   * Binds `text` (a path or `@abstract`) with the addon `module`; rejects with the bind error (EEXIST for
   * a file that is not a socket, EADDRINUSE, EACCES...).
   */
  static async bind(
    module: UnixDgramModule,
    text: string,
    onMessage: (message: Buffer, source: DatagramSource) => void,
    onError: (error: Error) => void,
  ): Promise<UnixSubscriptionSocket> {
    const abstract = text.startsWith('@');
    const path = abstract ? `\0${text.slice(1)}` : text;
    if (!abstract) removeStaleSocket(path);
    const socket = module.createSocket('unix_dgram');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (error) => {
        socket.removeAllListeners('listening');
        try {
          socket.close();
        } catch {
          // never bound
        }
        reject(error);
      });
      socket.once('listening', () => {
        socket.removeAllListeners('error');
        resolve();
      });
      socket.bind(path);
    });
    socket.on('message', (message) => onMessage(message, UNIX_SOURCE));
    socket.on('error', onError);
    return new UnixSubscriptionSocket(text, path, socket);
  }

  close(): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    this.#socket = undefined;
    try {
      socket.close();
    } catch {
      // already closed
    }
    if (!this.#path.startsWith('\0')) removeStaleSocket(this.#path);
  }
}

/** Removes a socket file at `path`; leaves a missing path alone; throws EEXIST for any other file. */
function removeStaleSocket(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) {
    const error: NodeJS.ErrnoException = new Error(`${path} exists and is not a socket`);
    error.code = 'EEXIST';
    throw error;
  }
  unlinkSync(path);
}
