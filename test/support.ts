/** Shared helpers for cross-package end-to-end tests (built packages, real sockets on 127.0.0.1). */
import { type ChildProcess, type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { parseCli, SwitchyardApp } from 'switchyard';

export const ROOT = path.resolve(import.meta.dirname, '..');
export const CLI = path.join(ROOT, 'packages/switchyard/dist/cli.js');
/** CLI arguments for HTTP, subscription and admin listeners on free loopback ports. */
export const EPHEMERAL_LISTENERS: readonly string[] = [
  '--http',
  '127.0.0.1:0',
  '--subscription-server',
  '127.0.0.1:0',
  '--admin',
  '127.0.0.1:0',
];

/** True when uwsgi with the python3 plugin can run here. CI installs it, so CI never skips. */
export const HAS_UWSGI = spawnSync('uwsgi', ['--plugin', 'python3', '--version'], { encoding: 'utf8' }).status === 0;
export const SKIP_UWSGI =
  !HAS_UWSGI && process.env.CI !== 'true' ? 'uwsgi with the python3 plugin is not installed' : false;

export async function startApp(
  extra: string[] = [],
): Promise<{ app: SwitchyardApp; httpPort: number; subscriptionPort: number; adminPort: number }> {
  const parsed = parseCli([
    '--http',
    '127.0.0.1:0',
    '--subscription-server',
    '127.0.0.1:0',
    '--admin',
    '127.0.0.1:0',
    ...extra,
  ]);
  if (parsed.kind !== 'run') throw new Error('unexpected help');
  const app = new SwitchyardApp({ config: parsed.config, logger: pino({ level: 'silent' }) });
  await app.start();
  return {
    app,
    httpPort: app.router.addresses()[0]!.port,
    subscriptionPort: app.subscriptions!.addresses()[0]!.port,
    adminPort: app.admin!.address()!.port,
  };
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
}

export function get(port: number, host: string, pathname = '/', agent: http.Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathname, headers: { host }, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
  });
}

export async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

const WSGI_APP = `import json, os
def application(env, start_response):
    size = int(env.get('CONTENT_LENGTH') or 0)
    body_in = env['wsgi.input'].read(size) if size else b''
    out = {k: v for k, v in env.items() if isinstance(v, str) and k.isupper()}
    out['NODE'] = os.environ.get('NODE', '?')
    out['BODY_LENGTH'] = len(body_in)
    body = json.dumps(out, sort_keys=True).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
`;

export interface UwsgiNode {
  readonly child: ChildProcess;
  readonly port: number;
  readonly log: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a real uWSGI node (python3 WSGI app echoing its environ as JSON). */
export async function startUwsgiNode(name: string, args: (port: number) => string[]): Promise<UwsgiNode> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `sy-uwsgi-${name}-`));
  writeFileSync(path.join(dir, 'app.py'), WSGI_APP);
  const port = await freePort();
  const log = path.join(dir, 'uwsgi.log');
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
      '--logto',
      log,
      ...args(port),
    ],
    { stdio: 'ignore', env: { ...process.env, NODE: name } },
  );
  child.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    port,
    log,
    stop: async (signal = 'SIGINT') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The `switchyard` CLI run as a user runs it: its output lines collected, its exit code awaited. */
export interface RunningCli {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: string[];
  readonly exit: Promise<number | null>;
}

export function runCli(args: readonly string[], env?: NodeJS.ProcessEnv): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], env === undefined ? {} : { env });
  const lines: string[] = [];
  const collect = (c: Buffer) => lines.push(...c.toString().split('\n').filter(Boolean));
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, exit };
}

/** The HTTP port from the CLI's "switchyard ready" log line (bounded: 30 s). */
export async function readyPort(run: RunningCli): Promise<number> {
  const line = await waitFor(
    () => run.lines.find((l) => l.includes('"switchyard ready"')),
    30_000,
    `switchyard ready (${run.lines.join('\n')})`,
  );
  const http = (JSON.parse(line) as { http: string[] }).http[0]!;
  return Number(http.split(':').at(-1));
}

/** The process exists and is not a zombie (one whose parent died waits for init to reap it). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
