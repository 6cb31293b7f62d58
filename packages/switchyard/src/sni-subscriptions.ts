/**
 * Subscription-borne TLS certificates (uWSGI's `sni_key` / `sni_crt` / `sni_ca`: file paths on the router
 * host) → the router's certificate store.
 *
 * Trust rule: a subscription may install a certificate only when it was verified, i.e. when subscription
 * signing is on (`--subscriptions-sign-check` or `--subscription-key`: then every packet that reaches the
 * registry carried a valid signature). Unsigned subscriptions can come from anyone who can send a UDP
 * packet, and a certificate decides which server a browser trusts for a name, so without signing the SNI
 * fields are ignored (counted and logged once per key). The composition passes that predicate as
 * `allowed`.
 *
 * A key's certificate is offered on every subscribe that carries both files (the store reloads it when
 * the paths or the files changed) and withdrawn when the key's last node leaves the table.
 */
import type { CertificateStore } from '@switchyard/router';
import type { TableEvent } from '@switchyard/subscription-server';
import type { Logger } from 'pino';

const MAX_WARNED_KEYS = 10_000;

export class SubscriptionCertificates {
  private readonly store: Pick<CertificateStore, 'offer' | 'withdraw'>;
  private readonly allowed: () => boolean;
  private readonly hostExists: (key: string) => boolean;
  private readonly logger: Logger;
  private readonly warned = new Set<string>();
  /** Subscriptions whose SNI fields were ignored because they were not verified. */
  refused = 0;

  constructor(options: {
    readonly store: Pick<CertificateStore, 'offer' | 'withdraw'>;
    /** True when subscriptions are verified (signing on). */
    readonly allowed: () => boolean;
    /** Whether the table still has the key (after a removal). */
    readonly hostExists: (key: string) => boolean;
    readonly logger: Logger;
  }) {
    this.store = options.store;
    this.allowed = options.allowed;
    this.hostExists = options.hostExists;
    this.logger = options.logger.child({ component: 'sni-subscriptions' });
  }

  apply(event: TableEvent): void {
    const node = event.node;
    switch (event.type) {
      case 'added':
      case 'updated':
      case 'refreshed': {
        const a = node.announcement;
        if (a.sniCrt === undefined || a.sniKey === undefined) return;
        if (!this.allowed()) {
          this.refused++;
          if (!this.warned.has(node.key) && this.warned.size < MAX_WARNED_KEYS) {
            this.warned.add(node.key);
            this.logger.warn(
              { host: node.key, node: node.address },
              'sni_crt/sni_key ignored: subscription certificates need signed subscriptions',
            );
          }
          return;
        }
        this.store.offer(node.key, { cert: a.sniCrt, key: a.sniKey, ca: a.sniCa });
        return;
      }
      case 'removed':
      case 'expired':
        if (!this.hostExists(node.key)) this.store.withdraw(node.key);
        return;
      case 'draining':
        return;
    }
  }
}
