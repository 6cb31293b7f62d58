/** TLS helpers of the end-to-end tests: throwaway certificates (openssl) and the certificate a listener serves. */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import tls from 'node:tls';

/** A self-signed EC certificate for CN=`name`, written to `dir`. */
export function makeCert(dir: string, name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-days',
      '2',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/** The CN of the certificate served on `port` for SNI `servername` (one new TLS connection). */
export async function servedSubject(port: number, servername: string): Promise<string | undefined> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
  await once(socket, 'secureConnect');
  const cn = String(socket.getPeerCertificate().subject.CN);
  socket.destroy();
  return cn;
}
