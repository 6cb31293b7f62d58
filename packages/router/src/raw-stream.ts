/**
 * A connection to a node driven straight on the runtime's libuv stream handles (TCP and pipe), without
 * net.Socket's stream machinery. Used for uwsgi nodes, which close their connection after every
 * response, so the router opens one connection per request: measured on the bench VM, a connect →
 * write → read → close cycle costs ~120 µs of user CPU through a (recycled) net.Socket and ~25–40 µs on
 * the bare handles, with the same system calls (bench/results/*-uwsgi-cpu.md).
 *
 * Contract, mirroring net.Socket with `allowHalfOpen: false` for the subset UpstreamConnection uses:
 *  - events go to a static table (`RawStreamEvents`) with the owner as first argument: no closure per
 *    connection;
 *  - `connect` once connected; then `data` chunks (fresh Buffers the owner may keep) until `end` (the
 *    node closed its side; the stream then closes itself unless the owner already destroyed it);
 *  - an error (connect refused, reset, failed write) destroys the stream; `error` then `close(true)` are
 *    delivered once the handle has closed, never from inside a call the owner made;
 *  - `destroy()` is safe at any time and twice; `close(false)` follows once the handle has closed, and
 *    nothing else is delivered after `destroy()` (a connect still in flight is cancelled);
 *  - `write` returns false while more than HIGH_WATER bytes wait in the kernel-side queue; `drain` follows
 *    when that queue is empty; writes made before `connect` are queued and sent on connect;
 *  - `pause`/`resume` stop and restart reading (backpressure towards the node).
 *
 * The handles come from `process.binding` (DEP0111, documentation-only; a runtime warning only under
 * --pending-deprecation), so `rawStreamsAvailable()` checks their shape once at load and the router falls
 * back to net.Socket when they are missing or differ, or when --pending-deprecation is set: the
 * fallback is the same code path every HTTP node and every WebSocket tunnel uses.
 */
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import type { UpstreamTarget } from './vhost-table.js';

/** Bytes queued towards the node above which `write` returns false (as net.Socket's default). */
const HIGH_WATER = 16 * 1024;

export interface RawStreamEvents<T> {
  connect(owner: T): void;
  /** A chunk of bytes from the node; the Buffer is the owner's to keep. */
  data(owner: T, chunk: Buffer): void;
  /** The node closed its side (EOF). */
  end(owner: T): void;
  error(owner: T, error: NodeJS.ErrnoException): void;
  /** The write queue drained after `write` returned false. */
  drain(owner: T): void;
  /** The handle is closed: the stream's last event. */
  close(owner: T, hadError: boolean): void;
}

// --- the runtime's handle bindings (shape checked once) ------------------------------------------

interface StreamHandle {
  onread: (this: StreamHandle, arrayBuffer: ArrayBuffer | undefined) => void;
  readonly writeQueueSize: number;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteRequest, data: Buffer): number;
  close(callback: () => void): void;
  setNoDelay?(enable: boolean): number;
  connect(req: ConnectRequest, address: string, port?: number): number;
  connect6?(req: ConnectRequest, address: string, port: number): number;
  [STREAM]?: RawStream<unknown> | undefined;
}

interface ConnectRequest {
  oncomplete: (status: number, handle: StreamHandle) => void;
  address: string;
  port?: number;
}

interface WriteRequest {
  handle: StreamHandle;
  oncomplete: (this: WriteRequest, status: number) => void;
  async: boolean;
  bytes: number;
  buffer: Buffer | null;
}

interface Bindings {
  readonly tcp: () => StreamHandle;
  readonly pipe: () => StreamHandle;
  readonly tcpConnect: () => ConnectRequest;
  readonly pipeConnect: () => ConnectRequest;
  readonly writeRequest: () => WriteRequest;
  readonly state: Int32Array;
  readonly kReadBytes: number;
  readonly kOffset: number;
  readonly eof: number;
}

const STREAM = Symbol('switchyard.rawStream');

type Ctor<T> = new (kind?: number) => T;

function loadBindings(): Bindings | undefined {
  try {
    const flags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
    if (flags.includes('--pending-deprecation')) return undefined;
    const binding = (process as unknown as { binding?: (name: string) => Record<string, unknown> }).binding;
    if (typeof binding !== 'function') return undefined;
    const tcpWrap = binding.call(process, 'tcp_wrap');
    const pipeWrap = binding.call(process, 'pipe_wrap');
    const streamWrap = binding.call(process, 'stream_wrap');
    const uv = binding.call(process, 'uv');
    const TCP = tcpWrap.TCP as Ctor<StreamHandle> | undefined;
    const TCPConnectWrap = tcpWrap.TCPConnectWrap as Ctor<ConnectRequest> | undefined;
    const Pipe = pipeWrap.Pipe as Ctor<StreamHandle> | undefined;
    const PipeConnectWrap = pipeWrap.PipeConnectWrap as Ctor<ConnectRequest> | undefined;
    const WriteWrap = streamWrap.WriteWrap as Ctor<WriteRequest> | undefined;
    const tcpSocket = (tcpWrap.constants as { SOCKET?: unknown } | undefined)?.SOCKET;
    const pipeSocket = (pipeWrap.constants as { SOCKET?: unknown } | undefined)?.SOCKET;
    const state = streamWrap.streamBaseState;
    const kReadBytes = streamWrap.kReadBytesOrError;
    const kOffset = streamWrap.kArrayBufferOffset;
    const eof = uv.UV_EOF;
    if (
      typeof TCP !== 'function' ||
      typeof TCPConnectWrap !== 'function' ||
      typeof Pipe !== 'function' ||
      typeof PipeConnectWrap !== 'function' ||
      typeof WriteWrap !== 'function' ||
      typeof tcpSocket !== 'number' ||
      typeof pipeSocket !== 'number' ||
      !(state instanceof Int32Array) ||
      typeof kReadBytes !== 'number' ||
      typeof kOffset !== 'number' ||
      typeof eof !== 'number'
    ) {
      return undefined;
    }
    const proto = TCP.prototype as unknown as Record<string, unknown>;
    for (const method of ['readStart', 'readStop', 'writeBuffer', 'close', 'connect', 'connect6', 'setNoDelay']) {
      if (typeof proto[method] !== 'function') return undefined;
    }
    return {
      tcp: () => new TCP(tcpSocket),
      pipe: () => new Pipe(pipeSocket),
      tcpConnect: () => new TCPConnectWrap(),
      pipeConnect: () => new PipeConnectWrap(),
      writeRequest: () => new WriteWrap(),
      state,
      kReadBytes,
      kOffset,
      eof,
    };
  } catch {
    return undefined;
  }
}

const bindings = loadBindings();

/** True when this runtime offers the handles RawStream needs (checked once at load). */
export function rawStreamsAvailable(): boolean {
  return bindings !== undefined;
}

/**
 * Address family per TCP target (4, 6, or 0 for a name), remembered per target object: targets are
 * frozen table values reused by every request, and net.isIP's regular expressions cost more than the
 * lookup.
 */
const families = new WeakMap<UpstreamTarget, number>();

function familyOf(target: UpstreamTarget & { kind: 'tcp' }): number {
  let family = families.get(target);
  if (family === undefined) {
    family = net.isIP(target.host);
    families.set(target, family);
  }
  return family;
}

/** RawStream can reach `target`: a unix socket, or TCP to a numeric IPv4/IPv6 address (no DNS here). */
export function rawStreamReaches(target: UpstreamTarget): boolean {
  return bindings !== undefined && (target.kind === 'unix' || familyOf(target) !== 0);
}

function errnoError(status: number, syscall: string, address: string): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    code = `E${-status}`;
  }
  const error: NodeJS.ErrnoException = new Error(`${syscall} ${code} ${address}`);
  error.code = code;
  error.errno = status;
  error.syscall = syscall;
  return error;
}

export class RawStream<T> {
  private readonly handle: StreamHandle;
  private readonly owner: T;
  private readonly events: RawStreamEvents<T>;
  private readonly address: string;
  private readonly tcp: boolean;
  private connecting = true;
  private reading = false;
  private paused = false;
  private ended = false;
  private needDrain = false;
  private queued: Buffer[] | undefined;
  private error: NodeJS.ErrnoException | undefined;
  destroyed = false;
  bytesRead = 0;
  bytesWritten = 0;

  /** Starts connecting at once; `target` must pass `rawStreamReaches`. */
  constructor(target: UpstreamTarget, owner: T, events: RawStreamEvents<T>) {
    const b = bindings!;
    this.owner = owner;
    this.events = events;
    this.tcp = target.kind === 'tcp';
    let status: number;
    if (target.kind === 'tcp') {
      this.address = `${target.host}:${target.port}`;
      this.handle = b.tcp();
      this.handle[STREAM] = this as RawStream<unknown>;
      const req = b.tcpConnect();
      req.oncomplete = afterConnect;
      req.address = target.host;
      req.port = target.port;
      status =
        familyOf(target) === 6 && this.handle.connect6 !== undefined
          ? this.handle.connect6(req, target.host, target.port)
          : this.handle.connect(req, target.host, target.port);
    } else {
      this.address = target.path;
      this.handle = b.pipe();
      this.handle[STREAM] = this as RawStream<unknown>;
      const req = b.pipeConnect();
      req.oncomplete = afterConnect;
      req.address = target.path;
      status = this.handle.connect(req, target.path);
    }
    if (status !== 0) this.fail(errnoError(status, 'connect', this.address));
  }

  /** Queues `data` towards the node; false = more than HIGH_WATER bytes wait (then `drain` follows). */
  write(data: string | Buffer, encoding?: BufferEncoding): boolean {
    if (this.destroyed) return false;
    const buffer = typeof data === 'string' ? Buffer.from(data, encoding ?? 'utf8') : data;
    if (this.connecting) {
      (this.queued ??= []).push(buffer);
      return true;
    }
    return this.send(buffer);
  }

  pause(): void {
    this.paused = true;
    if (this.reading) {
      this.reading = false;
      this.handle.readStop();
    }
  }

  resume(): void {
    this.paused = false;
    this.startReading();
  }

  /** Closes the handle; `close(false)` follows (or `error` + `close(true)` if an error came first). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.reading = false;
    this.handle.onread = ignoreRead;
    this.handle.close(() => this.closed());
  }

  private closed(): void {
    this.handle[STREAM] = undefined;
    const error = this.error;
    if (error !== undefined) this.events.error(this.owner, error);
    this.events.close(this.owner, error !== undefined);
  }

  private fail(error: NodeJS.ErrnoException): void {
    if (this.destroyed) return;
    this.error = error;
    this.destroy();
  }

  private send(buffer: Buffer): boolean {
    const b = bindings!;
    const req = b.writeRequest();
    req.handle = this.handle;
    req.oncomplete = afterWrite;
    req.async = false;
    req.bytes = 0;
    // Kept alive until the write completes (libuv writes from this memory).
    req.buffer = buffer;
    const status = this.handle.writeBuffer(req, buffer);
    if (status !== 0) {
      this.fail(errnoError(status, 'write', this.address));
      return false;
    }
    this.bytesWritten += buffer.length;
    if (this.handle.writeQueueSize <= HIGH_WATER) return true;
    this.needDrain = true;
    return false;
  }

  private startReading(): void {
    if (this.reading || this.paused || this.connecting || this.ended || this.destroyed) return;
    this.handle.onread = onRead;
    const status = this.handle.readStart();
    if (status !== 0) {
      this.fail(errnoError(status, 'read', this.address));
      return;
    }
    this.reading = true;
  }

  /** @internal libuv callbacks (module functions below) */
  static connected(stream: RawStream<unknown>, status: number): void {
    if (stream.destroyed) return;
    if (status !== 0) {
      stream.fail(errnoError(status, 'connect', stream.address));
      return;
    }
    stream.connecting = false;
    if (stream.tcp) stream.handle.setNoDelay?.(true);
    const queued = stream.queued;
    stream.queued = undefined;
    if (queued !== undefined) for (const buffer of queued) if (!stream.destroyed) stream.send(buffer);
    if (stream.destroyed) return;
    stream.events.connect(stream.owner);
    stream.startReading();
  }

  /** @internal */
  static read(stream: RawStream<unknown>, arrayBuffer: ArrayBuffer | undefined): void {
    const b = bindings!;
    const nread = b.state[b.kReadBytes]!;
    if (stream.destroyed) return;
    if (nread > 0 && arrayBuffer !== undefined) {
      stream.bytesRead += nread;
      stream.events.data(stream.owner, Buffer.from(arrayBuffer, b.state[b.kOffset]!, nread));
      return;
    }
    if (nread === 0) return;
    if (nread !== b.eof) {
      stream.fail(errnoError(nread, 'read', stream.address));
      return;
    }
    stream.ended = true;
    stream.reading = false;
    stream.handle.readStop();
    stream.events.end(stream.owner);
    // allowHalfOpen: false — the node's EOF ends the connection.
    stream.destroy();
  }

  /** @internal */
  static written(stream: RawStream<unknown>, status: number): void {
    if (stream.destroyed) return;
    if (status < 0) {
      stream.fail(errnoError(status, 'write', stream.address));
      return;
    }
    if (stream.needDrain && stream.handle.writeQueueSize === 0) {
      stream.needDrain = false;
      stream.events.drain(stream.owner);
    }
  }
}

function afterConnect(status: number, handle: StreamHandle): void {
  const stream = handle[STREAM];
  if (stream !== undefined) RawStream.connected(stream, status);
}

function onRead(this: StreamHandle, arrayBuffer: ArrayBuffer | undefined): void {
  const stream = this[STREAM];
  if (stream !== undefined) RawStream.read(stream, arrayBuffer);
}

/** A closing handle may still be asked to deliver a read: dropped. */
function ignoreRead(): void {}

function afterWrite(this: WriteRequest, status: number): void {
  const stream = this.handle[STREAM];
  if (stream !== undefined) RawStream.written(stream, status);
}
