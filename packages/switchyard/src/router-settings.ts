/**
 * The Router options a SwitchyardConfig asks for. One function, so the single-process composition
 * (switchyard-app.ts), the cluster primary and every cluster worker (router-worker.ts) build routers
 * that behave the same: same timeouts, limits, balancers, TLS, access log and metrics settings.
 */
import type { RouterOptions } from '@switchyard/router';
import type { Logger } from 'pino';
import { routerBalancing } from './balancing-options.js';
import type { SwitchyardConfig } from './cli-options.js';
import { hardeningRouterOptions } from './hardening-options.js';
import { operatorRouterOptions } from './operator-wiring.js';
import { routerTlsOptions } from './tls-options.js';
import { compatRouterOptions } from './uwsgi-compat-wiring.js';

/** `listen: false` (the cluster primary): no HTTP or HTTPS listener, the workers serve traffic. */
export function routerOptionsFor(
  config: SwitchyardConfig,
  logger: Logger,
  clock: () => number,
  listen = true,
): RouterOptions {
  const options: RouterOptions = {
    http: config.http,
    logger,
    clock,
    connectTimeoutMs: config.httpConnectTimeout * 1000,
    upstreamTimeoutMs: config.httpTimeout * 1000,
    extraVars: config.httpVars,
    shutdownGraceMs: config.shutdownTimeout * 1000,
    balancing: routerBalancing(config.balancing),
    ...compatRouterOptions(config),
    ...operatorRouterOptions(config.operator),
    ...routerTlsOptions(config.tls),
    ...hardeningRouterOptions(config.hardening, config.httpTimeout),
    // Subscription certificates (and their sni_ca) are accepted only when every packet is signed.
    requestClientCertificates: config.security.signCheck !== undefined || config.security.keys.length > 0,
  };
  return listen ? options : { ...options, http: [], https: [] };
}
