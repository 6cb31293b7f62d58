/**
 * Options of an HTTPS listener: HTTP/1.1 over TLS (ALPN `http/1.1` only), TLS 1.2 or later, Node's default
 * ciphers and session tickets, the listener's default certificate for clients whose SNI matches no host
 * certificate (or that send none), and the certificate store's SNI callback for the others.
 */
import { readFile } from 'node:fs/promises';
import type https from 'node:https';
import { type CertificateFiles, type CertificateStore, loadCertificate } from './certificate-store.js';
import { RouterError } from './errors.js';

export interface HttpsListenerSpec {
  /** `host:port`, `:port` or `[v6]:port`. */
  readonly address: string;
  /** This listener's default certificate; the router's `defaultCertificate` when absent. */
  readonly certificate?: CertificateFiles | undefined;
}

/** TLS handshake deadline, ms (Node's default is 120 s; a slow handshake holds a socket like a slow head). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Builds the TLS part of `https.createServer` options. Rejects with SY_BAD_CONFIG / SY_BAD_CERTIFICATE. */
export async function httpsServerOptions(
  spec: HttpsListenerSpec,
  fallback: CertificateFiles | undefined,
  store: CertificateStore,
  requestClientCertificates: boolean,
): Promise<https.ServerOptions> {
  const files = spec.certificate ?? fallback;
  if (files === undefined) {
    throw new RouterError('SY_BAD_CONFIG', `HTTPS listener ${spec.address} has no default certificate`);
  }
  // Loading through the store's loader checks that the key matches the certificate.
  await loadCertificate('default', 'option', files);
  const [cert, key, ca] = await Promise.all([
    readFile(files.cert),
    readFile(files.key),
    files.ca === undefined ? undefined : readFile(files.ca),
  ]);
  return {
    cert,
    key,
    ...(ca === undefined ? {} : { ca }),
    minVersion: 'TLSv1.2',
    ALPNProtocols: ['http/1.1'],
    SNICallback: store.sniCallback,
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    // Hosts with a client CA need the client's certificate; the handshake never fails for lack of one
    // (the request is refused per host instead, see CertificateStore.admit).
    requestCert: requestClientCertificates || store.clientCertificates,
    rejectUnauthorized: false,
  };
}
