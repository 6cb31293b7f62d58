/**
 * `switchyard demo` (what `npm start` runs): the router on 127.0.0.1:8080 with its subscription server
 * (127.0.0.1:2626) and admin API (127.0.0.1:9090), two Node HTTP backends announced by the agent
 * library for `demo.localhost`, and — when `uwsgi` with the python3 plugin is installed — a real uWSGI
 * node subscribing with `--subscribe-to`. Prints a curl line to try; Ctrl-C stops everything (the
 * backends unsubscribe first). Router options may be given to override the demo's addresses;
 * `--subscription-server off` is refused (SY_BAD_OPTION: the backends announce themselves), `--admin off`
 * only drops the admin curl line.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type AgentHandle, announce } from '@switchyard/agent';
import { pino } from 'pino';
import { parseCli } from './cli-options.js';
import { CliError, exitCodeFor } from './errors.js';
import { waitForSignal } from './router-cli.js';
import { SwitchyardApp } from './switchyard-app.js';

const DEMO_KEY = 'demo.localhost';

const WSGI_APP = `import os
def application(env, start_response):
    body = ("hello from uWSGI node %s (pid %d), path %s\\n" % (os.environ.get("NODE", "uwsgi"), os.getpid(), env["PATH_INFO"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`;

export async function runDemo(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(['--http', '127.0.0.1:8080', '--log-level', 'warn', ...argv]);
  } catch (error) {
    process.stderr.write(`switchyard demo: ${(error as Error).message}\n`);
    return exitCodeFor(error);
  }
  if (parsed.kind !== 'run') return runDemoHelp();
  const config = parsed.config;
  if (config.subscriptionServer.length === 0) {
    const error = new CliError(
      'the demo backends announce themselves: --subscription-server off cannot be used with switchyard demo',
      '--subscription-server',
    );
    process.stderr.write(`switchyard demo: ${error.message}\n`);
    return exitCodeFor(error);
  }
  const logger = pino({ level: config.logLevel });
  const app = new SwitchyardApp({ config, logger });
  try {
    await app.start();
  } catch (error) {
    process.stderr.write(`switchyard demo: ${(error as Error).message}\n`);
    return exitCodeFor(error);
  }
  const subscriptionServer = app.subscriptionAddresses()[0]!;
  const server = `${subscriptionServer.family === 'IPv6' ? `[${subscriptionServer.address}]` : subscriptionServer.address}:${subscriptionServer.port}`;
  const backends: http.Server[] = [];
  const agents: AgentHandle[] = [];
  for (const name of ['A', 'B']) {
    const backend = http.createServer((req, res) => {
      res.setHeader('Content-Type', 'text/plain');
      res.end(`hello from Node backend ${name}, path ${req.url}\n`);
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    backends.push(backend);
    const port = (backend.address() as net.AddressInfo).port;
    agents.push(announce({ server, key: DEMO_KEY, address: `127.0.0.1:${port}`, proto: 'http' }));
  }
  const uwsgi = await startUwsgiNode(server);
  const listen = app.router.addresses()[0]!;
  const port = listen.port;
  const admin = app.adminAddress();
  process.stdout.write(
    [
      '',
      `Switchyard demo is running: ${backends.length} Node backends${uwsgi === undefined ? '' : ' and 1 uWSGI node'} announced "${DEMO_KEY}".`,
      '',
      `  curl http://${DEMO_KEY}:${port}/            (or: curl -H 'Host: ${DEMO_KEY}' http://127.0.0.1:${port}/)`,
      ...(admin === undefined ? [] : [`  curl http://127.0.0.1:${admin.port}/v1/vhosts     (the live table)`]),
      '',
      uwsgi === undefined ? '  (install uwsgi-core and uwsgi-plugin-python3 to add a real uWSGI node)\n' : '',
      'Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  const code = await waitForSignal({
    close: async () => {
      await Promise.all(agents.map((agent) => agent.close()));
      if (uwsgi !== undefined) await stopChild(uwsgi.child, uwsgi.dir);
      await app.close();
      for (const backend of backends) backend.close();
    },
  });
  return code;
}

function runDemoHelp(): number {
  process.stdout.write(
    'Usage: switchyard demo [router options]\nStarts the router with demo backends on demo.localhost.\n',
  );
  return 0;
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function startUwsgiNode(server: string): Promise<{ child: ChildProcess; dir: string } | undefined> {
  const probe = spawnSync('uwsgi', ['--version'], { encoding: 'utf8' });
  if (probe.status !== 0) return undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-demo-'));
  writeFileSync(path.join(dir, 'app.py'), WSGI_APP);
  const port = await freePort();
  const child = spawn(
    'uwsgi',
    [
      '--plugin',
      'python3',
      '--socket',
      `127.0.0.1:${port}`,
      '--wsgi-file',
      path.join(dir, 'app.py'),
      '--master',
      '--processes',
      '1',
      '--subscribe-to',
      `${server}:${DEMO_KEY}`,
      '--logto',
      path.join(dir, 'uwsgi.log'),
    ],
    { stdio: 'ignore', env: { ...process.env, NODE: 'U' } },
  );
  child.on('error', () => undefined);
  return { child, dir };
}

function stopChild(child: ChildProcess, dir: string): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      resolve();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, 5000);
    if (child.exitCode !== null) {
      done();
      return;
    }
    child.once('exit', done);
    child.kill('SIGINT');
  });
}
