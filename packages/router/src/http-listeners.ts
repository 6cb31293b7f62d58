/**
 * The router's client listeners: one `node:http` server per `--http` address and one `node:https` server
 * per `--https` spec (HTTP/1.1 over TLS 1.2+, https-listener.ts). `start()` binds every listener or none:
 * on any failure those already bound are closed and it rejects with SY_BIND_FAILED naming the address and
 * the flag (an unparsable address is SY_BAD_CONFIG, before anything is bound). Request and upgrade events
 * go straight to the ListenerHandler (the Router); connection-level policy (the connection limit,
 * `clientError` → coded responses, CONNECT) is attached from client-connections.ts.
 *
 * Shutdown is sequenced by the router: `close()` stops accepting (it resolves once every listener has
 * closed, i.e. after its last connection), `closeIdleConnections()` closes keep-alive connections that
 * carry no request (called again after each response while draining), and `closeAllConnections()` ends
 * the rest once the grace period is over.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { CertificateFiles, CertificateStore } from './certificate-store.js';
import type { ClientConnections } from './client-connections.js';
import { type ClientLimits, clientServerOptions } from './client-limits.js';
import { RouterError } from './errors.js';
import { type HttpsListenerSpec, httpsServerOptions } from './https-listener.js';
import { formatAddress, parseListenAddress } from './listen-address.js';
import { requireProxyProtocol } from './proxy-protocol.js';

/** Where the listeners hand their events; the handler object is called directly (no wrapper per request). */
export interface ListenerHandler {
  /** A request; `expectContinue`: the client waits for `100 Continue` before sending its body. */
  handleRequestSafely(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void;
  /** An `Upgrade` request, on its raw socket. */
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void;
}

export interface HttpListenersOptions {
  /** Plain-HTTP listen addresses (`host:port`, `:port`, `[::1]:port`). */
  readonly http: readonly string[];
  /** HTTPS listeners; undefined or empty = none (the certificate store is then not started). */
  readonly https: readonly HttpsListenerSpec[] | undefined;
  /** Default certificate of HTTPS listeners that have none of their own. */
  readonly defaultCertificate: CertificateFiles | undefined;
  /** Ask every HTTPS client for a certificate. */
  readonly requestClientCertificates: boolean;
  /** SNI certificates; started by `start()` when there is an HTTPS listener. */
  readonly certificates: CertificateStore;
  /** Client limits and timeouts (client-limits.ts), applied to every server. */
  readonly limits: ClientLimits;
  readonly connections: ClientConnections;
  readonly handler: ListenerHandler;
  readonly logger: Logger;
  /** Every connection starts with a PROXY header (v1/v2) naming the client (proxy-protocol.ts). */
  readonly proxyProtocol?: boolean;
  /** A connection closed for a missing or invalid PROXY header. */
  readonly onProxyRejected?: (reason: string) => void;
}

export class HttpListeners {
  private readonly options: HttpListenersOptions;
  private readonly servers: http.Server[] = [];
  private readonly tlsServers = new WeakSet<http.Server>();

  constructor(options: HttpListenersOptions) {
    this.options = options;
  }

  /** Binds every listener; on any failure closes those already bound and rejects with SY_BIND_FAILED. */
  async start(): Promise<void> {
    const options = this.options;
    const parse = (text: string) => {
      const parsed = parseListenAddress(text);
      if (parsed === undefined) throw new RouterError('SY_BAD_CONFIG', `invalid listen address "${text}"`);
      return parsed;
    };
    const binds = options.http.map((text) => ({
      bind: parse(text),
      tls: undefined as https.ServerOptions | undefined,
    }));
    if (options.https !== undefined && options.https.length > 0) {
      await options.certificates.start();
      for (const spec of options.https) {
        const tls = await httpsServerOptions(
          spec,
          options.defaultCertificate,
          options.certificates,
          options.requestClientCertificates,
        );
        binds.push({ bind: parse(spec.address), tls });
      }
    }
    for (const { bind, tls } of binds) {
      const server = this.createServer(tls);
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: bind.host, port: bind.port, backlog: 4096 }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        await this.close();
        const code = (error as NodeJS.ErrnoException).code ?? 'error';
        throw new RouterError(
          'SY_BIND_FAILED',
          `cannot listen on ${formatAddress(bind.host, bind.port)} (${tls === undefined ? '--http' : '--https'}): ${code}`,
          {
            cause: error,
          },
        );
      }
      server.on('error', (error) => options.logger.error({ err: error }, 'listener error'));
      this.servers.push(server);
    }
    options.logger.info({ listen: this.addresses().map((a) => formatAddress(a.address, a.port)) }, 'router listening');
  }

  private createServer(tls?: https.ServerOptions): http.Server {
    const settings = clientServerOptions(this.options.limits);
    const handler = this.options.handler;
    // An https.Server is an http.Server over TLS sockets (same events and connection management).
    const server =
      tls === undefined
        ? http.createServer(settings)
        : (https.createServer({ ...settings, ...tls }) as unknown as http.Server);
    if (tls !== undefined) this.tlsServers.add(server);
    if (this.options.proxyProtocol === true) {
      // Before any other 'connection' listener: Node's HTTP/TLS handling then starts after the header.
      requireProxyProtocol(server, {
        timeoutMs: this.options.limits.headersTimeoutMs,
        onRejected: (reason) => this.options.onProxyRejected?.(reason),
      });
    }
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      handler.handleUpgrade(req, socket, head),
    );
    // Keep more fields than we accept so an oversized request is seen (and refused), never truncated.
    server.maxHeadersCount = 2000;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => handler.handleRequestSafely(req, res, false));
    // Expect: 100-continue: the 100 is sent only once the request passed every check (no 100 before a 413).
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) =>
      handler.handleRequestSafely(req, res, true),
    );
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) =>
      handler.handleRequestSafely(req, res, false),
    );
    this.options.connections.attach(server, tls !== undefined);
    return server;
  }

  /** Bound plain-HTTP listener addresses. */
  addresses(): AddressInfo[] {
    return this.servers.filter((s) => !this.tlsServers.has(s)).map((s) => s.address() as AddressInfo);
  }

  /** Bound HTTPS listener addresses. */
  httpsAddresses(): AddressInfo[] {
    return this.servers.filter((s) => this.tlsServers.has(s)).map((s) => s.address() as AddressInfo);
  }

  /** Closes every client connection that carries no request now. */
  closeIdleConnections(): void {
    for (const server of this.servers) server.closeIdleConnections();
  }

  /** Closes every client connection, in flight or not (the end of the shutdown grace period). */
  closeAllConnections(): void {
    for (const server of this.servers) server.closeAllConnections();
  }

  /** Stops accepting; resolves once every listener has closed. Safe twice. */
  close(): Promise<void> {
    return Promise.all(
      this.servers.map(
        (server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())),
      ),
    ).then(() => undefined);
  }
}
