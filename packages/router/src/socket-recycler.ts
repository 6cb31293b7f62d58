/**
 * Closed upstream sockets kept for reconnection. A uwsgi node closes its connection after every response,
 * so the router opens one connection per request; building a net.Socket (Duplex and its two stream
 * states, EventEmitter, listeners) costs more than the connect itself. Node supports reconnecting a
 * socket once 'close' has been emitted (`socket.connect()`, which resets the stream state and creates a
 * new handle), so a socket that ended cleanly is parked here and reused by the next connection.
 *
 * Only a socket that the UpstreamConnection layer vouches for comes here: it was connected, destroyed by
 * its owner with nothing buffered either way (no unread byte, no unwritten byte, flowing), closed without
 * error, and carries exactly the listeners its owner installed once (`expectedListeners`): no leftover
 * one-shot listener can fire on the next connection, and no byte of one exchange can reach another.
 * At most `max` sockets (no file descriptor: a closed socket has no handle) are kept; the rest are
 * dropped to the garbage collector.
 */
import type net from 'node:net';

/** Listener counts a recyclable socket must show: event → count. */
export type ListenerSignature = readonly (readonly [string, number])[];

export class SocketRecycler {
  private readonly free: net.Socket[] = [];
  private readonly max: number;
  private readonly expectedListeners: ListenerSignature;
  /** Sockets handed out again (stats, tests). */
  reused = 0;
  /** Sockets refused at `park` because their state was not clean (tests). */
  refused = 0;

  constructor(expectedListeners: ListenerSignature, max = 256) {
    this.expectedListeners = expectedListeners;
    this.max = max;
  }

  /** A closed socket ready for `connect()`, or undefined. */
  take(): net.Socket | undefined {
    const socket = this.free.pop();
    if (socket !== undefined) this.reused++;
    return socket;
  }

  /** Offers a socket whose 'close' was just emitted (without error); kept only if clean and there is room. */
  park(socket: net.Socket): void {
    if (this.free.length >= this.max) return;
    if (!this.clean(socket)) {
      this.refused++;
      return;
    }
    this.free.push(socket);
  }

  /** Sockets waiting (tests). */
  get size(): number {
    return this.free.length;
  }

  private clean(socket: net.Socket): boolean {
    if (
      !socket.destroyed ||
      socket.readableLength !== 0 ||
      socket.writableLength !== 0 ||
      socket.writableCorked !== 0 ||
      socket.readableFlowing !== true ||
      socket.errored !== null
    ) {
      return false;
    }
    for (const [event, count] of this.expectedListeners) {
      if (socket.listenerCount(event) !== count) return false;
    }
    return true;
  }
}
