/** Test certificates made with the openssl CLI (P-256 keys, valid two days) in a temporary directory. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

/** A self-signed server certificate for `cn` (also its only DNS subjectAltName). Files `<file>.crt/.key`. */
export function selfSigned(dir: string, file: string, cn: string): CertPair {
  const cert = path.join(dir, `${file}.crt`);
  const key = path.join(dir, `${file}.key`);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    `subjectAltName=DNS:${cn}`,
    '-days',
    '2',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return { cert, key };
}

/** A certificate for `cn` signed by `ca` (a client certificate in the client-CA tests). */
export function signedBy(dir: string, file: string, cn: string, ca: CertPair): CertPair {
  const cert = path.join(dir, `${file}.crt`);
  const key = path.join(dir, `${file}.key`);
  const csr = path.join(dir, `${file}.csr`);
  openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    `/CN=${cn}`,
    '-keyout',
    key,
    '-out',
    csr,
  ]);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    cert,
  ]);
  return { cert, key };
}
