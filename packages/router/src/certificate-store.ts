/**
 * TLS certificates chosen by SNI for the HTTPS listeners. Three sources, consulted in this order (an
 * operator's choice always wins over a node's):
 *  1. `hosts` (`--https-cert HOST=CRT,KEY`), loaded at start; a bad file fails start with SY_BAD_CERTIFICATE;
 *  2. `dir` (`--https-cert-dir DIR`): `<host>.crt` + `<host>.key` pairs (`_wildcard.<domain>` or
 *     `*.<domain>` for a wildcard), rescanned when the directory changes (fs.watch, debounced); a pair that
 *     fails to load is logged and skipped (the previous version of it, if any, stays in use);
 *  3. subscriptions carrying `sni_crt`/`sni_key` (`sni_ca` optional): `offer(key, files)` loads them for the
 *     key's hostname part (text before `:`, as uWSGI). Unlike uWSGI (issue #581) a later announcement with
 *     other paths, or the same paths with changed files (checked at most every `recheckMs`), reloads them;
 *     `withdraw(key)` forgets them when the key leaves. The caller decides whether a subscription may
 *     carry certificates at all (only verified, i.e. signed, ones: see switchyard's sni-subscriptions.ts).
 * Lookup: exact name in each source, then the `*.<parent>` wildcard (one label) in each source; a name no
 * source covers gets the listener's default certificate.
 *
 * Client certificates: a certificate with a CA (`sni_ca`) makes its hosts require a client certificate
 * signed by that CA. Listeners then request a certificate from every client (without rejecting the
 * handshake), and `admit()` refuses a request for such a host unless the TLS connection was made for the
 * same certificate (SNI) and the client certificate verified: 403 SY_CLIENT_CERT_REQUIRED (also over
 * plain HTTP, which has no certificate).
 * Every context is TLS 1.2+ with Node's default ciphers and session tickets.
 */
import { X509Certificate } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { RouterError } from './errors.js';
import type { TableObserver } from './table-replica.js';

export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
  /** CA bundle for client-certificate verification. */
  readonly ca?: string | undefined;
}

export type CertificateSource = 'option' | 'dir' | 'subscription';

export interface CertificateStoreOptions {
  /** Host name or `*.domain` → files. */
  readonly hosts?: readonly (readonly [string, CertificateFiles])[];
  readonly dir?: string | undefined;
  /** Debounce of directory change events, ms. Default 200. */
  readonly dirDebounceMs?: number;
  /** Least time between two file checks of one subscription certificate, ms. Default 10000. */
  readonly recheckMs?: number;
  readonly logger?: Logger;
  /** ms clock. Default Date.now. */
  readonly clock?: () => number;
}

export interface LoadedCertificate {
  /** Lowercase host name or `*.domain`. */
  readonly host: string;
  readonly source: CertificateSource;
  readonly context: tls.SecureContext;
  /** Subject of the leaf certificate, e.g. `CN=app.example.com`. */
  readonly subject: string;
  readonly clientCa: boolean;
  readonly files: CertificateFiles;
  /** Modification signature of the files when loaded. */
  readonly stamp: string;
}

interface SubscriptionCertificate {
  current: LoadedCertificate | undefined;
  keys: Set<string>;
  checkedAt: number;
  loading: boolean;
}

/** Lowercase, trailing dot stripped. */
export function normaliseServername(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

async function filesStamp(files: CertificateFiles): Promise<string> {
  const paths = [files.cert, files.key, ...(files.ca === undefined ? [] : [files.ca])];
  const stats = await Promise.all(paths.map((p) => stat(p)));
  return stats.map((s) => `${s.mtimeMs}:${s.size}:${s.ino}`).join('|');
}

/** Loads and checks a certificate/key pair (and CA). Throws SY_BAD_CERTIFICATE. */
export async function loadCertificate(
  host: string,
  source: CertificateSource,
  files: CertificateFiles,
): Promise<LoadedCertificate> {
  try {
    const stamp = await filesStamp(files);
    const [cert, key, ca] = await Promise.all([
      readFile(files.cert),
      readFile(files.key),
      files.ca === undefined ? undefined : readFile(files.ca),
    ]);
    const context = tls.createSecureContext({ cert, key, ...(ca === undefined ? {} : { ca }), minVersion: 'TLSv1.2' });
    const subject = new X509Certificate(cert).subject.replaceAll('\n', ', ');
    return { host, source, context, subject, clientCa: ca !== undefined, files, stamp };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new RouterError('SY_BAD_CERTIFICATE', `cannot load the certificate for ${host} (${files.cert}): ${code}`, {
      cause: error,
    });
  }
}

export class CertificateStore {
  private readonly options: CertificateStoreOptions;
  private readonly logger: Logger | undefined;
  private readonly clock: () => number;
  private readonly fromOptions = new Map<string, LoadedCertificate>();
  private readonly fromDir = new Map<string, LoadedCertificate>();
  private readonly fromSubscriptions = new Map<string, SubscriptionCertificate>();
  /** Told every subscription offer and withdrawal (table-replica.ts). */
  observer: TableObserver | undefined;
  private watcher: FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanAgain = false;
  private closed = false;
  /** Certificates that failed to load (files, dir entries, subscriptions). */
  loadFailures = 0;

  constructor(options: CertificateStoreOptions = {}) {
    this.options = options;
    this.logger = options.logger?.child({ component: 'certificates' });
    this.clock = options.clock ?? Date.now;
  }

  /** True when some certificate asks for client certificates (listeners must request them). */
  get clientCertificates(): boolean {
    for (const c of this.all()) if (c.clientCa) return true;
    return false;
  }

  /** Loads `hosts` and the directory, then watches it. Rejects with SY_BAD_CERTIFICATE / SY_BAD_CONFIG. */
  async start(): Promise<void> {
    for (const [host, files] of this.options.hosts ?? []) {
      const name = normaliseServername(host);
      this.fromOptions.set(name, await loadCertificate(name, 'option', files));
    }
    const dir = this.options.dir;
    if (dir === undefined) return;
    try {
      await readdir(dir);
    } catch (error) {
      throw new RouterError('SY_BAD_CONFIG', `cannot read the certificate directory ${dir}`, { cause: error });
    }
    await this.scanDir();
    this.watcher = watch(dir, { persistent: false }, () => this.scheduleRescan());
    this.watcher.on('error', (error) => this.logger?.warn({ err: error, dir }, 'certificate directory watch failed'));
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.rescanTimer !== undefined) clearTimeout(this.rescanTimer);
    this.rescanTimer = undefined;
  }

  /** The certificate serving `servername`, or undefined (the listener's default then applies). */
  find(servername: string): LoadedCertificate | undefined {
    const name = normaliseServername(servername);
    const exact = this.lookup(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return dot > 0 ? this.lookup(`*${name.slice(dot)}`) : undefined;
  }

  private lookup(name: string): LoadedCertificate | undefined {
    return this.fromOptions.get(name) ?? this.fromDir.get(name) ?? this.fromSubscriptions.get(name)?.current;
  }

  /** An SNICallback for tls.createServer: the matching context, else the listener's own (default). */
  readonly sniCallback = (servername: string, callback: (error: Error | null, ctx?: tls.SecureContext) => void) => {
    callback(null, this.find(servername)?.context);
  };

  /** Every loaded certificate (for stats and tests). */
  all(): LoadedCertificate[] {
    const out = [...this.fromOptions.values(), ...this.fromDir.values()];
    for (const s of this.fromSubscriptions.values()) if (s.current !== undefined) out.push(s.current);
    return out;
  }

  /**
   * Client-certificate policy for a request to `hostname`: undefined when allowed, else 403
   * SY_CLIENT_CERT_REQUIRED.
   */
  admit(req: IncomingMessage, hostname: string): RouterError | undefined {
    const wanted = this.find(hostname);
    if (wanted?.clientCa !== true) return undefined;
    const socket = req.socket as tls.TLSSocket;
    const servername = socket.encrypted === true ? socket.servername : undefined;
    if (typeof servername !== 'string' || this.find(servername) !== wanted) {
      return new RouterError('SY_CLIENT_CERT_REQUIRED', `${hostname} requires a TLS client certificate`);
    }
    if (!socket.authorized) {
      return new RouterError('SY_CLIENT_CERT_REQUIRED', `${hostname} requires a client certificate from its CA`);
    }
    return undefined;
  }

  // --- subscriptions ------------------------------------------------------------------------------

  /** A subscription for `key` carries certificate files: load them (async) unless unchanged. */
  offer(key: string, files: CertificateFiles): void {
    if (this.closed) return;
    this.observer?.({ op: 'certificate', key, files });
    const host = normaliseServername(key.startsWith('[') ? key : key.split(':', 1)[0]!);
    let entry = this.fromSubscriptions.get(host);
    if (entry === undefined) {
      entry = { current: undefined, keys: new Set(), checkedAt: Number.NEGATIVE_INFINITY, loading: false };
      this.fromSubscriptions.set(host, entry);
    }
    entry.keys.add(key);
    const current = entry.current;
    const samePaths =
      current !== undefined &&
      current.files.cert === files.cert &&
      current.files.key === files.key &&
      current.files.ca === files.ca;
    const now = this.clock();
    if (entry.loading || (samePaths && now - entry.checkedAt < (this.options.recheckMs ?? 10_000))) return;
    entry.checkedAt = now;
    entry.loading = true;
    void this.loadSubscription(host, entry, files, samePaths ? current.stamp : undefined);
  }

  private async loadSubscription(
    host: string,
    entry: SubscriptionCertificate,
    files: CertificateFiles,
    knownStamp: string | undefined,
  ): Promise<void> {
    try {
      if (knownStamp !== undefined && (await filesStamp(files)) === knownStamp) return;
      const loaded = await loadCertificate(host, 'subscription', files);
      if (this.fromSubscriptions.get(host) !== entry) return; // withdrawn meanwhile
      entry.current = loaded;
      this.logger?.info(
        { host, subject: loaded.subject, clientCa: loaded.clientCa },
        'subscription certificate loaded',
      );
    } catch (error) {
      this.loadFailures++;
      this.logger?.warn({ host, code: (error as RouterError).code ?? 'SY_BAD_CERTIFICATE' }, (error as Error).message);
    } finally {
      entry.loading = false;
    }
  }

  /** `key` left the table: its hostname's subscription certificate goes when no other key uses it. */
  withdraw(key: string): void {
    this.observer?.({ op: 'certificate', key, files: null });
    for (const [host, entry] of this.fromSubscriptions) {
      if (entry.keys.delete(key) && entry.keys.size === 0) this.fromSubscriptions.delete(host);
    }
  }

  // --- directory ------------------------------------------------------------------------------------

  private scheduleRescan(): void {
    if (this.closed) return;
    if (this.rescanTimer !== undefined) clearTimeout(this.rescanTimer);
    this.rescanTimer = setTimeout(() => {
      this.rescanTimer = undefined;
      void this.rescan();
    }, this.options.dirDebounceMs ?? 200);
  }

  /** Rescans the directory now (also what a change event triggers). Resolves when done. */
  async rescan(): Promise<void> {
    if (this.scanning !== undefined) {
      this.rescanAgain = true;
      return this.scanning;
    }
    this.scanning = this.scanDir().finally(() => {
      this.scanning = undefined;
    });
    await this.scanning;
    if (this.rescanAgain) {
      this.rescanAgain = false;
      await this.rescan();
    }
  }

  private async scanDir(): Promise<void> {
    const dir = this.options.dir!;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      this.logger?.warn({ err: error, dir }, 'cannot read the certificate directory');
      return;
    }
    const present = new Set(names);
    const seen = new Set<string>();
    for (const name of names) {
      if (!name.endsWith('.crt') || !present.has(`${name.slice(0, -4)}.key`)) continue;
      const base = name.slice(0, -4);
      const host = normaliseServername(base.startsWith('_wildcard.') ? `*${base.slice(9)}` : base);
      seen.add(host);
      const files = { cert: path.join(dir, name), key: path.join(dir, `${base}.key`) };
      const previous = this.fromDir.get(host);
      try {
        if (previous !== undefined && (await filesStamp(files)) === previous.stamp) continue;
        const loaded = await loadCertificate(host, 'dir', files);
        if (this.closed) return;
        this.fromDir.set(host, loaded);
        this.logger?.info({ host, subject: loaded.subject, reload: previous !== undefined }, 'certificate loaded');
      } catch (error) {
        this.loadFailures++;
        this.logger?.warn({ host, code: (error as RouterError).code }, (error as Error).message);
      }
    }
    for (const host of [...this.fromDir.keys()]) {
      if (!seen.has(host)) {
        this.fromDir.delete(host);
        this.logger?.info({ host }, 'certificate removed');
      }
    }
  }
}
