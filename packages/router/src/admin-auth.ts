/**
 * Admin API authentication: `Authorization: Bearer TOKEN` with two scopes.
 *  - admin token (`--admin-token` / `--admin-token-file`): every route, writes included;
 *  - read token (`--admin-read-token` / `--admin-read-token-file`): GET routes only (a write → 403
 *    SY_FORBIDDEN).
 * With no token configured the API is open (the CLI refuses that on a non-loopback address). A missing
 * or wrong token → 401 SY_UNAUTHORIZED (with `WWW-Authenticate: Bearer`). `/healthz` and `/readyz` are
 * always open (orchestrator probes); the dashboard's static files are open (they hold no data; the
 * page asks for a token and sends it with every API call).
 *
 * Tokens are compared in constant time (SHA-256 of both sides, then `timingSafeEqual`), so neither the
 * content nor the length of a token leaks through response timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { RouterError } from './errors.js';

export type AdminScope = 'read' | 'admin';

export interface AdminTokens {
  /** Token granting every operation. */
  readonly admin?: string | undefined;
  /** Token granting read-only operations. */
  readonly read?: string | undefined;
}

/** Shortest accepted token (CLI check): shorter ones are guessable. */
export const MIN_TOKEN_LENGTH = 16;

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

export class AdminAuth {
  private readonly admin: Buffer | undefined;
  private readonly read: Buffer | undefined;

  constructor(tokens: AdminTokens = {}) {
    this.admin = tokens.admin === undefined || tokens.admin === '' ? undefined : digest(tokens.admin);
    this.read = tokens.read === undefined || tokens.read === '' ? undefined : digest(tokens.read);
  }

  /** True when at least one token is configured. */
  get enabled(): boolean {
    return this.admin !== undefined || this.read !== undefined;
  }

  /** The scope an `Authorization` header grants; throws SY_UNAUTHORIZED. */
  scopeOf(authorization: string | undefined): AdminScope {
    if (!this.enabled) return 'admin';
    const match = authorization === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (match === null) throw new RouterError('SY_UNAUTHORIZED', 'missing bearer token', { source: 'admin' });
    const presented = digest(match[1]!);
    // Compare against both (no early exit) so timing does not tell which scope a token came close to.
    const isAdmin = this.admin !== undefined && timingSafeEqual(presented, this.admin);
    const isRead = this.read !== undefined && timingSafeEqual(presented, this.read);
    if (isAdmin) return 'admin';
    if (isRead) return 'read';
    throw new RouterError('SY_UNAUTHORIZED', 'invalid bearer token', { source: 'admin' });
  }

  /** Throws SY_UNAUTHORIZED / SY_FORBIDDEN unless the header grants `needed`. */
  require(authorization: string | undefined, needed: AdminScope): AdminScope {
    const scope = this.scopeOf(authorization);
    if (needed === 'admin' && scope !== 'admin') {
      throw new RouterError('SY_FORBIDDEN', 'this operation needs the admin token', { source: 'admin' });
    }
    return scope;
  }
}
