/**
 * An established WebSocket connection after the node's `101`: the client socket and the node socket piped
 * raw both ways, with backpressure both ways (a side that cannot take more pauses the other side's reads,
 * so a tunnel buffers at most one socket high-water mark per direction).
 *
 * Contracts:
 *  - Bytes pass unchanged; the node→client direction is followed by a FrameBoundaryTracker so that a
 *    router-initiated close is written between frames, never inside one.
 *  - `goingAway(reason)`: sends the client a close frame with code 1001 (Going Away) at the next frame
 *    boundary, ends both sockets and destroys them after `closeGraceMs` if they have not closed. Used on
 *    router shutdown, when a draining node's deadline passes, and after `idleMs` without a byte in either
 *    direction. If the node is mid-frame and the client is not reading, the grace timer still bounds it.
 *  - A half-close is propagated (client FIN → node FIN and the other way); an error on either socket
 *    destroys both.
 *  - `onClosed` is called exactly once, after both sockets have closed.
 */
import type net from 'node:net';
import { CLOSE_GOING_AWAY, closeFrame, FrameBoundaryTracker } from './websocket-frame.js';

/** Why a tunnel ended: 'closed' (a peer closed it), 'error', or a router-initiated going-away reason. */
export type TunnelEndReason = 'closed' | 'error' | GoingAwayReason;
export type GoingAwayReason = 'shutdown' | 'drain' | 'idle';

export interface TunnelOptions {
  /** Host key and node address the tunnel runs to (in-flight accounting, drain deadlines). */
  readonly key: string;
  readonly address: string;
  /** Close after this long without a byte either way, ms; 0 = never. */
  readonly idleMs: number;
  /** How long a going-away close waits for the current frame and the peers' FIN, ms. Default 2000. */
  readonly closeGraceMs?: number;
  readonly onClosed: (tunnel: WebSocketTunnel) => void;
}

export class WebSocketTunnel {
  readonly key: string;
  readonly address: string;
  private readonly client: net.Socket;
  private readonly upstream: net.Socket;
  private readonly options: TunnelOptions;
  private readonly tracker = new FrameBoundaryTracker();
  private clientClosed = false;
  private upstreamClosed = false;
  /** A going-away close waits for the node's current frame to end. */
  private awaitingBoundary = false;
  private closeSent = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private finished = false;
  /** Why it ended (set once). */
  endReason: TunnelEndReason | undefined;
  bytesUp = 0;
  bytesDown = 0;

  constructor(client: net.Socket, upstream: net.Socket, options: TunnelOptions) {
    this.client = client;
    this.upstream = upstream;
    this.options = options;
    this.key = options.key;
    this.address = options.address;
  }

  /** Starts piping. `toClient`: node bytes that arrived with the 101 head (already frames). */
  start(toClient: Buffer): void {
    const { client, upstream } = this;
    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    upstream.on('data', (chunk: Buffer) => this.fromUpstream(chunk));
    client.on('drain', () => {
      if (!this.closeSent) upstream.resume();
    });
    upstream.on('drain', () => {
      if (!this.closeSent) client.resume();
    });
    client.on('end', () => {
      this.endReason ??= 'closed';
      upstream.end();
    });
    upstream.on('end', () => {
      this.endReason ??= 'closed';
      if (!this.awaitingBoundary) client.end();
    });
    client.on('error', () => this.fail());
    upstream.on('error', () => this.fail());
    client.on('close', () => this.sideClosed(true));
    upstream.on('close', () => this.sideClosed(false));
    upstream.setTimeout(0);
    if (this.options.idleMs > 0) {
      client.setTimeout(this.options.idleMs);
      client.on('timeout', () => this.goingAway('idle'));
    }
    if (toClient.length > 0) this.fromUpstream(toClient);
    if (client.destroyed) this.sideClosed(true);
    if (upstream.destroyed) this.sideClosed(false);
  }

  /** Sends 1001 Going Away to the client at the next frame boundary and closes both sides. Safe to repeat. */
  goingAway(reason: GoingAwayReason): void {
    if (this.closeSent || this.awaitingBoundary || this.finished) return;
    this.endReason ??= reason;
    this.armGrace();
    if (this.tracker.atBoundary || this.tracker.broken) {
      this.sendClose();
      return;
    }
    // Let the node finish its frame (even if the client was slow: the grace timer bounds the wait).
    this.awaitingBoundary = true;
    this.upstream.resume();
  }

  /** True until both sockets have closed. */
  get open(): boolean {
    return !this.finished;
  }

  private fromClient(chunk: Buffer): void {
    if (this.closeSent) return; // the router closed: what the client sends now is its close reply
    this.bytesUp += chunk.length;
    if (!this.upstream.write(chunk)) this.client.pause();
  }

  private fromUpstream(chunk: Buffer): void {
    if (this.closeSent) return;
    this.bytesDown += chunk.length;
    if (!this.awaitingBoundary) {
      this.tracker.feed(chunk);
      if (!this.client.write(chunk)) this.upstream.pause();
      return;
    }
    const cut = this.tracker.feed(chunk, 0, chunk.length, true);
    this.client.write(cut === chunk.length ? chunk : chunk.subarray(0, cut));
    if (this.tracker.atBoundary || this.tracker.broken) this.sendClose();
  }

  private sendClose(): void {
    this.awaitingBoundary = false;
    this.closeSent = true;
    this.upstream.pause();
    this.upstream.end();
    if (!this.clientClosed && this.client.writable) {
      this.client.write(closeFrame(CLOSE_GOING_AWAY));
      this.client.end();
    }
  }

  private armGrace(): void {
    if (this.graceTimer !== undefined) return;
    this.graceTimer = setTimeout(() => {
      this.client.destroy();
      this.upstream.destroy();
    }, this.options.closeGraceMs ?? 2000);
  }

  private fail(): void {
    this.endReason ??= 'error';
    this.client.destroy();
    this.upstream.destroy();
  }

  private sideClosed(client: boolean): void {
    if (client) {
      if (this.clientClosed) return;
      this.clientClosed = true;
    } else {
      if (this.upstreamClosed) return;
      this.upstreamClosed = true;
    }
    this.endReason ??= 'closed';
    if (this.clientClosed && this.upstreamClosed) {
      this.finish();
      return;
    }
    // One side is gone: end the other once its pending bytes are written, destroy it if it lingers.
    const other = client ? this.upstream : this.client;
    if (this.awaitingBoundary && !client) {
      // The node left mid-frame: nothing more will complete it.
      this.awaitingBoundary = false;
      other.destroy();
      return;
    }
    other.end();
    this.armGrace();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    this.options.onClosed(this);
  }
}
