import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { helpText, parseCli } from '../src/cli-options.js';
import { hardeningRouterOptions } from '../src/hardening-options.js';
import { routerOptionsFor } from '../src/router-settings.js';
import { SwitchyardApp } from '../src/switchyard-app.js';

function hardening(argv: string[]) {
  const parsed = parseCli(argv);
  return parsed.kind === 'run' ? parsed.config.hardening : assert.fail('not a run');
}

const isBadOption = (option: string) => (err: unknown) =>
  (err as { code?: string }).code === 'SY_BAD_OPTION' && (err as { option?: string }).option === option;

describe('client limit, timeout and forwarded-header options', () => {
  test('defaults are the router defaults and are listed in --help', () => {
    assert.deepEqual(hardeningRouterOptions(hardening([])), {
      headersTimeoutMs: 30_000,
      bodyTimeoutMs: 60_000,
      keepAliveTimeoutMs: 75_000,
      requestTimeoutMs: 0,
      responseHeaderTimeoutMs: 60_000,
      maxConnections: 10_000,
      maxHeaderCount: 100,
      maxHeaderSize: 16_384,
      maxUriLength: 8192,
      maxBodySize: 1024 ** 3,
      trustedProxies: [],
      forwardedHeader: false,
    });
    const help = helpText();
    for (const name of ['--client-body-timeout', '--max-body-size', '--trusted-proxies', '--http-response-timeout']) {
      assert.match(help, new RegExp(name));
    }
  });

  test('the response-head timeout follows --http-timeout unless --http-response-timeout is given (uWSGI ini files raise http-timeout)', () => {
    const headTimeout = (argv: string[]) => {
      const parsed = parseCli(argv);
      if (parsed.kind !== 'run') return assert.fail('not a run');
      return routerOptionsFor(parsed.config, pino({ level: 'silent' }), Date.now).responseHeaderTimeoutMs;
    };
    assert.equal(headTimeout([]), 60_000);
    assert.equal(headTimeout(['--http-timeout', '120']), 120_000);
    assert.equal(headTimeout(['--http-timeout', '120', '--http-response-timeout', '30']), 30_000);
    assert.equal(headTimeout(['--http-response-timeout', '0']), 0);
  });

  test('reads seconds, byte sizes with k/m/g, 0 = off, and comma-separated repeatable CIDR lists', () => {
    const options = hardeningRouterOptions(
      hardening([
        '--client-header-timeout',
        '2.5',
        '--client-body-timeout',
        '0',
        '--client-request-timeout',
        '1',
        '--max-body-size',
        '10m',
        '--max-header-size',
        '32k',
        '--max-connections',
        '0',
        '--trusted-proxies',
        '10.0.0.0/8, 192.0.2.7',
        '--trusted-proxies',
        '2001:db8::/32',
        '--forwarded-header',
      ]),
    );
    assert.equal(options.headersTimeoutMs, 2500);
    assert.equal(options.bodyTimeoutMs, 0);
    assert.equal(options.requestTimeoutMs, 2500, 'raised to the head timeout');
    assert.equal(options.maxBodySize, 10 * 1024 * 1024);
    assert.equal(options.maxHeaderSize, 32 * 1024);
    assert.equal(options.maxConnections, 0);
    assert.deepEqual(options.trustedProxies, ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']);
    assert.equal(options.forwardedHeader, true);
  });

  test('refuses malformed values with SY_BAD_OPTION naming the option', () => {
    assert.throws(() => parseCli(['--trusted-proxies', '10.0.0.0/33']), isBadOption('--trusted-proxies'));
    assert.throws(() => parseCli(['--trusted-proxies', 'proxy.example']), isBadOption('--trusted-proxies'));
    assert.throws(() => parseCli(['--max-body-size', '12x']), isBadOption('--max-body-size'));
    assert.throws(() => parseCli(['--max-header-size', '10']), isBadOption('--max-header-size'));
    assert.throws(() => parseCli(['--client-header-timeout', '0']), isBadOption('--client-header-timeout'));
    assert.throws(() => parseCli(['--max-header-count', '0']), isBadOption('--max-header-count'));
  });

  test('the composed app enforces them: --max-body-size answers 413 before the node is reached', async () => {
    const parsed = parseCli([
      '--http',
      '127.0.0.1:0',
      '--subscription-server',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--max-body-size',
      '1k',
      '--max-uri-length',
      '100',
      // A static node that is never contacted: the limits answer first.
      '--http-to',
      'http://127.0.0.1:9',
    ]);
    if (parsed.kind !== 'run') assert.fail('not a run');
    const app = new SwitchyardApp({ config: parsed.config, logger: pino({ level: 'silent' }) });
    await app.start();
    try {
      const port = app.router.addresses()[0]!.port;
      const send = (bytes: string) =>
        new Promise<string>((resolve) => {
          const socket = net.connect(port, '127.0.0.1', () => socket.end(bytes));
          let out = '';
          socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
          socket.on('close', () => resolve(out));
          socket.on('error', () => resolve(out));
        });
      assert.match(
        await send('POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1025\r\n\r\n'),
        /^HTTP\/1\.1 413 [\s\S]*SY_BODY_TOO_LARGE/,
      );
      assert.match(await send(`GET /${'a'.repeat(100)} HTTP/1.1\r\nHost: a.test\r\n\r\n`), /SY_URI_TOO_LONG/);
    } finally {
      await app.close();
    }
  });
});
