/**
 * Client-side limits on one request body, watched without consuming it:
 *  - size: more than `maxBytes` body bytes (de-chunked) → SY_BODY_TOO_LARGE (413); Infinity = none. A
 *    Content-Length body over the limit is refused before dispatch by the router; this catches chunked
 *    bodies while they stream;
 *  - idle: no body byte for `idleMs` while the body is being read → SY_CLIENT_TIMEOUT (408); 0 = none.
 *    The clock runs only while the request stream flows: when the proxy pauses it (backpressure from a
 *    slow node) or has not started reading it yet (connecting), a quiet client is not at fault.
 * The watch follows the stream's own `resume` / `pause` / `end` / `close` events, so whoever reads the
 * body (the proxy exchange, Node dumping an unread body) needs no hook; it adds its `data` listener only
 * once the stream flows, so it never switches the stream to flowing mode by itself.
 * A violation is reported once through `onViolation`; the watch stops then, at `end`, at `close`, or
 * when `stop()` is called.
 */
import type { IncomingMessage } from 'node:http';
import { RouterError } from './errors.js';

export interface BodyLimits {
  /** Largest body in bytes; Infinity = no limit. */
  readonly maxBytes: number;
  /** Longest silence while reading the body, ms; 0 = no limit. */
  readonly idleMs: number;
}

export class RequestBodyWatch {
  private readonly req: IncomingMessage;
  private readonly limits: BodyLimits;
  private readonly onViolation: (error: RouterError) => void;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Body bytes seen so far. */
  bytes = 0;

  constructor(req: IncomingMessage, limits: BodyLimits, onViolation: (error: RouterError) => void) {
    this.req = req;
    this.limits = limits;
    this.onViolation = onViolation;
    this.onData = this.onData.bind(this);
    this.onResume = this.onResume.bind(this);
    this.onPause = this.onPause.bind(this);
    this.stop = this.stop.bind(this);
    req.on('resume', this.onResume);
    req.on('pause', this.onPause);
    req.once('end', this.stop);
    req.once('close', this.stop);
    // Already flowing (a listener was attached before us): watch from now.
    if (req.readableFlowing === true) this.onResume();
  }

  private onResume(): void {
    if (this.stopped) return;
    // Re-added when missing: Node's dump of an unread body removes every `data` listener first.
    if (!this.req.listeners('data').includes(this.onData)) this.req.on('data', this.onData);
    this.arm();
  }

  private onPause(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private onData(chunk: Buffer): void {
    if (this.stopped) return;
    this.bytes += chunk.length;
    const max = this.limits.maxBytes;
    if (this.bytes > max) {
      this.violate(new RouterError('SY_BODY_TOO_LARGE', `request body over ${max} bytes`));
      return;
    }
    if (this.timer !== undefined) this.timer.refresh();
    else if (this.req.readableFlowing === true) this.arm();
  }

  private arm(): void {
    const idleMs = this.limits.idleMs;
    if (idleMs <= 0 || this.stopped) return;
    if (this.timer !== undefined) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.violate(new RouterError('SY_CLIENT_TIMEOUT', `no request body byte for ${idleMs} ms`));
    }, idleMs);
    this.timer.unref();
  }

  private violate(error: RouterError): void {
    if (this.stopped) return;
    this.stop();
    this.onViolation(error);
  }

  /** Stops watching (safe several times). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const req = this.req;
    req.off('resume', this.onResume);
    req.off('pause', this.onPause);
    req.off('data', this.onData);
    req.off('end', this.stop);
    req.off('close', this.stop);
  }
}
