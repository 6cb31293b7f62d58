/**
 * The uWSGI 2.0 nodes the uwsgi-protocol benchmarks route to (uwsgi-router.ts, uwsgi-cpu-ab.ts): `count`
 * python3 nodes, 1 process each, `--listen 128`, answering `ok\n` on `/` and 16 KiB on `/16k` with a
 * Content-Length. Started as registered children (killed with the bench), optionally pinned.
 */

import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { start } from './children.js';
import { freePort } from './probe.js';

/** Bytes of the `/16k` response. */
export const BIG_BODY = 16 * 1024;

const APP = `BIG = b'x' * ${BIG_BODY}
def application(env, start_response):
    body = BIG if env['PATH_INFO'] == '/16k' else b'ok\\n'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
`;

/** Starts the nodes (app and logs in `dir`); resolves with their ports once every one accepts connections. */
export async function startUwsgiNodes(dir: string, cpu: number | undefined, count = 3): Promise<number[]> {
  writeFileSync(join(dir, 'app.py'), APP);
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  ports.forEach((port, i) => {
    start(
      `node${i}`,
      'uwsgi',
      [
        '--plugin',
        'python3',
        '--socket',
        `127.0.0.1:${port}`,
        '--wsgi-file',
        join(dir, 'app.py'),
        '--master',
        '--processes',
        '1',
        '--listen',
        '128',
        '--disable-logging',
        '--logto',
        join(dir, `node${i}.log`),
      ],
      { cpu },
    );
  });
  for (const port of ports) await waitForNode(port);
  return ports;
}

/** A uwsgi node speaks the uwsgi protocol, not HTTP: wait until its port accepts connections. */
async function waitForNode(port: number): Promise<void> {
  const accepts = () =>
    new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  const deadline = Date.now() + 10_000;
  while (!(await accepts())) {
    if (Date.now() > deadline) throw new Error(`uWSGI node on ${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
