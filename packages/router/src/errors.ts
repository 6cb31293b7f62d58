/**
 * Router errors. Each class has a permanent `code` (clients, logs, metrics and tests rely on it), the
 * `source` component, and `retryable`: whether trying another node could succeed. `statusForError` is
 * the one place that maps an error to an HTTP status.
 */

export type RouterErrorCode =
  | 'SY_BAD_REQUEST' // 400: malformed or ambiguous request
  | 'SY_BAD_HOST' // 400: missing, duplicate or malformed Host
  | 'SY_NO_VHOST' // 404: no virtual host matches the Host
  | 'SY_CLIENT_TIMEOUT' // 408: the client did not send its request in time
  | 'SY_BODY_TOO_LARGE' // 413: request body over the limit
  | 'SY_HEADERS_TOO_LARGE' // 431: too many header fields, or a header block over the size limit
  | 'SY_URI_TOO_LONG' // 414: request target over --max-uri-length
  | 'SY_EXPECTATION_FAILED' // 417: an Expect other than 100-continue
  | 'SY_VERSION_NOT_SUPPORTED' // 505: an HTTP version other than 1.0 and 1.1
  | 'SY_TOO_MANY_CONNECTIONS' // 503: --max-connections client connections are open
  | 'SY_BAD_PROXY_HEADER' // 400 (metrics only: the connection is closed unanswered): no valid PROXY header
  | 'SY_INTERNAL' // 500: a bug caught before it could crash the process
  | 'SY_NO_LIVE_NODE' // 503: the host exists but has no live node
  | 'SY_SHUTTING_DOWN' // 503: the router is draining
  | 'SY_UPSTREAM_CONNECT' // 502: could not connect to any candidate node
  | 'SY_UPSTREAM_RESET' // 502: the node closed or reset the connection before a response
  | 'SY_UPSTREAM_BAD_RESPONSE' // 502: the node sent a malformed response
  | 'SY_UPSTREAM_REQUEST_TOO_LARGE' // 502: the uwsgi vars block does not fit 64 KiB
  | 'SY_UPSTREAM_TIMEOUT' // 504: connect or response-header timeout
  | 'SY_BIND_FAILED' // listener could not bind
  | 'SY_BAD_CONFIG' // invalid router configuration
  | 'SY_UNKNOWN_BALANCER' // 400: not a balancer name (balancer-registry.ts lists them)
  | 'SY_UPGRADE_REFUSED' // 400: an Upgrade other than websocket, or a malformed websocket upgrade
  | 'SY_CLIENT_CERT_REQUIRED' // 403: the host requires a TLS client certificate its CA signed
  | 'SY_BAD_CERTIFICATE' // a TLS certificate or key file cannot be loaded
  | 'SY_MAINTENANCE' // 503: the host is in maintenance mode (admin API)
  | 'SY_CLIENT_CLOSED' // 499 (logs and metrics only): the client left before the response was complete
  | 'SY_INVALID_BODY' // 400: admin request body, query or parameter fails its schema
  | 'SY_UNAUTHORIZED' // 401: admin request without a valid bearer token
  | 'SY_FORBIDDEN' // 403: the token's scope does not allow the operation
  | 'SY_NOT_FOUND' // 404: no such admin route
  | 'SY_NO_NODE' // 404: the host has no node with that address
  | 'SY_METHOD_NOT_ALLOWED' // 405: the admin route does not take that method
  | 'SY_NODE_EXISTS' // 409: the host already has a node with that address
  | 'SY_VERSION_MISMATCH'; // 412: If-Match does not match the current version

export class RouterError extends Error {
  readonly code: RouterErrorCode;
  readonly source: string;
  readonly retryable: boolean;
  constructor(
    code: RouterErrorCode,
    message: string,
    options: { retryable?: boolean; source?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RouterError';
    this.code = code;
    this.source = options.source ?? 'router';
    this.retryable = options.retryable ?? false;
  }
}

/** Raised by the upstream layer; `retryable` is true when the request certainly did not reach the node. */
export class UpstreamError extends RouterError {
  constructor(code: RouterErrorCode, message: string, retryable: boolean, cause?: unknown) {
    super(code, message, { retryable, source: 'upstream', cause });
    this.name = 'UpstreamError';
  }
}

/** Why an upstream response was rejected. Stable identifiers: they label metrics and tests branch on them. */
export type UpstreamProtocolErrorReason =
  | 'bad-status-line'
  | 'bad-version'
  | 'bad-header-name'
  | 'bad-header-value'
  | 'obs-fold'
  | 'bare-lf'
  | 'bare-cr'
  | 'headers-too-large'
  | 'too-many-headers'
  | 'cl-and-te'
  | 'duplicate-content-length'
  | 'bad-content-length'
  | 'bad-transfer-encoding'
  | 'bad-chunk-size'
  | 'bad-chunk-extension'
  | 'bad-chunk-terminator'
  | 'chunk-extension-too-large'
  | 'trailers-too-large'
  | 'framing-in-trailers'
  | 'premature-eof'
  | 'excess-data';

/**
 * SY_UPSTREAM_BAD_RESPONSE: the node's response violates HTTP/1.x framing or syntax (502; the connection
 * must be destroyed, never reused). Source 'router'. Not retryable: the node already received the request.
 * The response parser (response-parser.ts) throws every reason except 'excess-data', which callers raise
 * themselves for bytes left over after a complete keep-alive response.
 */
export class UpstreamProtocolError extends RouterError {
  declare readonly code: 'SY_UPSTREAM_BAD_RESPONSE';
  readonly reason: UpstreamProtocolErrorReason;
  constructor(reason: UpstreamProtocolErrorReason, message = `malformed upstream response: ${reason}`) {
    super('SY_UPSTREAM_BAD_RESPONSE', message);
    this.name = 'UpstreamProtocolError';
    this.reason = reason;
  }
}

const STATUS: Readonly<Record<RouterErrorCode, number>> = {
  SY_BAD_REQUEST: 400,
  SY_BAD_HOST: 400,
  SY_NO_VHOST: 404,
  SY_CLIENT_TIMEOUT: 408,
  SY_BODY_TOO_LARGE: 413,
  SY_HEADERS_TOO_LARGE: 431,
  SY_URI_TOO_LONG: 414,
  SY_EXPECTATION_FAILED: 417,
  SY_VERSION_NOT_SUPPORTED: 505,
  SY_TOO_MANY_CONNECTIONS: 503,
  SY_BAD_PROXY_HEADER: 400,
  SY_INTERNAL: 500,
  SY_NO_LIVE_NODE: 503,
  SY_SHUTTING_DOWN: 503,
  SY_UPSTREAM_CONNECT: 502,
  SY_UPSTREAM_RESET: 502,
  SY_UPSTREAM_BAD_RESPONSE: 502,
  SY_UPSTREAM_REQUEST_TOO_LARGE: 502,
  SY_UPSTREAM_TIMEOUT: 504,
  SY_BIND_FAILED: 500,
  SY_BAD_CONFIG: 500,
  SY_UNKNOWN_BALANCER: 400,
  SY_UPGRADE_REFUSED: 400,
  SY_CLIENT_CERT_REQUIRED: 403,
  SY_BAD_CERTIFICATE: 500,
  SY_MAINTENANCE: 503,
  SY_CLIENT_CLOSED: 499,
  SY_INVALID_BODY: 400,
  SY_UNAUTHORIZED: 401,
  SY_FORBIDDEN: 403,
  SY_NOT_FOUND: 404,
  SY_NO_NODE: 404,
  SY_METHOD_NOT_ALLOWED: 405,
  SY_NODE_EXISTS: 409,
  SY_VERSION_MISMATCH: 412,
};

/** The HTTP status for an error; anything that is not a RouterError is a 500. */
export function statusForError(error: unknown): number {
  return error instanceof RouterError ? STATUS[error.code] : 500;
}

/** The permanent code of any error, `SY_INTERNAL` for foreign errors. */
export function codeOfError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SY_') ? code : 'SY_INTERNAL';
}
