/**
 * The router's operator-facing state, in one object the router owns (`router.ops`) so that the request
 * path needs only a few one-line hooks:
 *  - `policies`: per-host policy and traffic counters (host-policy.ts), read once per request;
 *  - `events`: the event log behind `GET /v1/events` (event-log.ts);
 *  - `health`: ejection hooks filled by the balancing code (node-health.ts);
 *  - `operator`: admin writes and their precedence over subscriptions (operator-control.ts);
 *  - `metrics`: hot-path request counters (request-metrics.ts), exported at scrape time;
 *  - `accessLog`: optional, set by the composition (access-log.ts).
 *
 * Request-path contract: `hostRecord` → `intercept` (only when the host has a policy) → the router
 * proxies → `finish` with the outcome code once the response is over (or `finishLocal` for an answer the
 * router wrote itself). `finish` costs a few increments plus, when enabled, one access-log line.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessLog } from './access-log.js';
import { RouterError } from './errors.js';
import { EventLog, type EventLogOptions } from './event-log.js';
import { type HostPolicy, HostPolicyStore, type HostRecord } from './host-policy.js';
import { NodeHealthHooks } from './node-health.js';
import { OperatorControl, type OperatorHost, type ParsedNodeAddress } from './operator-control.js';
import { RequestMetrics } from './request-metrics.js';
import { clientAddressOf, LocalRecord, type RequestRecord } from './request-record.js';
import type { VhostTable } from './vhost-table.js';

export interface RouterOperationsOptions {
  /** Hosts with their own metric series (`--metrics-top-hosts`). Default 20. */
  readonly metricsTopHosts?: number;
  readonly events?: EventLogOptions;
  /** Node address parser for admin-added nodes. Default: `host:port`, `[v6]:port` or an absolute unix path. */
  readonly parseNodeAddress?: (text: string) => ParsedNodeAddress | undefined;
}

/** The router as seen from here. */
export interface OperationsHost extends OperatorHost {
  readonly table: VhostTable;
  respondError(req: IncomingMessage, res: ServerResponse, error: RouterError, hostKey: string | undefined): number;
}

export class RouterOperations {
  readonly policies: HostPolicyStore;
  readonly events: EventLog;
  readonly health = new NodeHealthHooks();
  readonly operator: OperatorControl;
  readonly metrics: RequestMetrics;
  accessLog: AccessLog | undefined;
  private readonly host: OperationsHost;
  private readonly retryAfter: string;

  constructor(
    host: OperationsHost,
    settings: { readonly clock: () => number; readonly retryAfterSeconds: number },
    options: RouterOperationsOptions = {},
  ) {
    this.host = host;
    const clock = settings.clock;
    this.retryAfter = String(settings.retryAfterSeconds);
    this.policies = new HostPolicyStore();
    this.events = new EventLog({ clock, ...options.events });
    this.operator = new OperatorControl(host, {
      clock,
      events: this.events,
      parseAddress: options.parseNodeAddress ?? parseSimpleAddress,
    });
    this.metrics = new RequestMetrics(options.metricsTopHosts ?? 20, (record) => {
      if (host.table.get(record.key) === undefined) this.policies.forget(record.key);
    });
    this.health.on((event) =>
      this.events.record({
        type: event.type,
        host: event.key,
        node: event.address,
        source: 'health',
        reason: event.reason,
      }),
    );
  }

  /**
   * The record of the host a request is for: the matched entry's, or — when nothing matched — that of
   * a host that has a policy (so a host whose nodes are all gone still gets its maintenance page).
   */
  hostRecord(
    entryKey: string | undefined,
    hostPort: string | undefined,
    host: string | undefined,
  ): HostRecord | undefined {
    if (entryKey !== undefined) return this.policies.record(entryKey);
    const byPort = hostPort === undefined ? undefined : this.policies.peek(hostPort);
    if (byPort?.policy !== undefined) return byPort;
    const byHost = host === undefined ? undefined : this.policies.peek(host);
    return byHost?.policy !== undefined ? byHost : undefined;
  }

  /**
   * Applies a host policy before proxying: maintenance page, body limit by Content-Length. Returns true
   * when it answered the request (the router then stops), false to go on.
   */
  intercept(
    req: IncomingMessage,
    res: ServerResponse,
    record: HostRecord,
    path: string,
    contentLength: number,
    startedAt: number,
  ): boolean {
    const policy = record.policy as HostPolicy;
    const maintenance = policy.maintenance;
    if (maintenance !== undefined) {
      const body = req.method === 'HEAD' ? '' : maintenance.body;
      res.writeHead(maintenance.status, [
        'Content-Type',
        maintenance.contentType,
        'Content-Length',
        String(Buffer.byteLength(maintenance.body)),
        'Retry-After',
        this.retryAfter,
        'X-Switchyard-Error',
        'SY_MAINTENANCE',
        'Cache-Control',
        'no-store',
      ]);
      res.end(body);
      this.finishLocal(
        req,
        record.key,
        path,
        maintenance.status,
        Buffer.byteLength(body),
        'SY_MAINTENANCE',
        startedAt,
        record,
      );
      return true;
    }
    if (policy.maxBodyBytes !== undefined && contentLength > policy.maxBodyBytes) {
      const error = new RouterError('SY_BODY_TOO_LARGE', `body over ${policy.maxBodyBytes} bytes for ${record.key}`);
      const bytes = this.host.respondError(req, res, error, record.key);
      this.finishLocal(req, record.key, path, 413, bytes, error.code, startedAt, record);
      return true;
    }
    return false;
  }

  /** A proxied request is over. `code` is `OK` or its SY_* outcome code. */
  finish(request: RequestRecord, code: string): void {
    const durationMs = performance.now() - request.startedAt;
    this.metrics.record(request, code, durationMs);
    this.accessLog?.write(request, code, durationMs);
  }

  /** A request the router answered itself (no exchange) is over. */
  finishLocal(
    req: IncomingMessage,
    hostKey: string | undefined,
    path: string,
    status: number,
    bytesOut: number,
    code: string,
    startedAt: number,
    record: HostRecord | undefined,
  ): void {
    this.finish(
      new LocalRecord(
        startedAt,
        req.method ?? '',
        path,
        hostKey,
        clientAddressOf(req.socket.remoteAddress),
        status,
        bytesOut,
        record,
      ),
      code,
    );
  }

  /** A node left the table: forget its overrides, and the host's counters when the host is gone. */
  nodeRemoved(key: string, address: string): void {
    this.operator.forget(key, address);
    if (this.host.table.get(key) === undefined) this.policies.forget(key);
  }
}

/** `host:port`, `[v6]:port` or an absolute unix socket path. */
export function parseSimpleAddress(text: string): ParsedNodeAddress | undefined {
  if (text.startsWith('/') && text.length > 1 && text.length <= 255 && !/[\u0000-\u001f]/.test(text)) {
    return { address: text, target: { kind: 'unix', path: text } };
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  const host = (m[1] ?? m[2]!).toLowerCase();
  return { address: m[1] === undefined ? `${host}:${port}` : `[${host}]:${port}`, target: { kind: 'tcp', host, port } };
}
