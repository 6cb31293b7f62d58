/**
 * Composition of the uWSGI-compatibility components around the router (kept out of switchyard-app.ts,
 * which calls these hooks): the `--http-stats` stats server and the `--spawn` worker spawner whose
 * workers become routable nodes (static nodes serving every Host, or nodes of `--spawn-key`), with
 * source 'spawn'. Workers are added once they accept connections and removed when they exit.
 */
import { readFileSync } from 'node:fs';
import { formatAddress, type Router, type RouterOptions, STATIC_KEY } from '@switchyard/router';
import type { SubscriptionRegistry, SubscriptionServer } from '@switchyard/subscription-server';
import type { Logger } from 'pino';
import type { SwitchyardConfig } from './cli-options.js';
import { UwsgiStatsServer } from './uwsgi-stats-server.js';
import { type WorkerEndpoint, WorkerSpawner, type WorkerSpawnerOptions } from './worker-spawner.js';

export interface CompatComponents {
  readonly stats: UwsgiStatsServer | undefined;
  readonly spawner: WorkerSpawner | undefined;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Router options implied by the compat config (lookup rules, modifier overrides, PROXY protocol). */
export function compatRouterOptions(
  config: SwitchyardConfig,
): Pick<RouterOptions, 'lookup' | 'modifier1' | 'modifier2' | 'proxyProtocol'> {
  const c = config.compat;
  return {
    lookup: {
      dotsplit: c.dotsplit,
      mountpoints: c.mountpoints,
      ...(c.fallbackKey === undefined ? {} : { fallbackKey: c.fallbackKey }),
    },
    modifier1: c.modifier1,
    modifier2: c.modifier2,
    proxyProtocol: c.proxyProtocol,
  };
}

export function createCompatComponents(
  config: SwitchyardConfig,
  parts: {
    readonly router: Router;
    readonly registry: SubscriptionRegistry;
    /** Undefined for `--subscription-server off` (the stats document then lists no subscription server). */
    readonly subscriptions: SubscriptionServer | undefined;
    readonly logger: Logger;
    readonly clock: () => number;
    /** Where HTTP is served (the workers' shared listeners with `--workers`). */
    readonly httpAddresses?: () => readonly { address: string; port: number }[];
    readonly spawnOptions?: Partial<WorkerSpawnerOptions>;
  },
): CompatComponents {
  const { router, registry, subscriptions, logger } = parts;
  const c = config.compat;
  const stats =
    c.statsServer === undefined
      ? undefined
      : new UwsgiStatsServer({
          listen: c.statsServer,
          router,
          registry,
          subscriptionAddresses: () => [
            ...(subscriptions?.addresses() ?? []).map((a) => formatAddress(a.address, a.port)),
            ...(subscriptions?.unixPaths() ?? []),
          ],
          ...(parts.httpAddresses === undefined ? {} : { httpAddresses: parts.httpAddresses }),
          version: `switchyard-${packageVersion()}`,
          logger,
        });
  const spawn = c.spawn;
  const key = spawn?.key ?? STATIC_KEY;
  const spawner =
    spawn === undefined
      ? undefined
      : new WorkerSpawner({
          config: spawn,
          logger,
          clock: parts.clock,
          onReady: (worker: WorkerEndpoint) =>
            router.upsertNode({
              key,
              address: worker.address,
              target: worker.target,
              protocol: worker.protocol,
              weight: 1,
              modifier1: 0,
              modifier2: 0,
              backup: 0,
              source: 'spawn',
              state: 'active',
            }),
          onGone: (worker: WorkerEndpoint) => router.removeNode(key, worker.address),
          graceMs: config.shutdownTimeout * 1000,
          credentials: config.privileges,
          ...parts.spawnOptions,
        });
  return {
    stats,
    spawner,
    async start() {
      await stats?.start();
      await spawner?.start();
    },
    async close() {
      await spawner?.close();
      await stats?.close();
    },
  };
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
