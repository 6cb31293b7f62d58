import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { helpText, parseCli } from '../src/cli-options.js';
import { exitCodeFor } from '../src/errors.js';
import { routerTlsOptions } from '../src/tls-options.js';

function tls(argv: string[]) {
  const parsed = parseCli(argv);
  return parsed.kind === 'run' ? parsed.config.tls : assert.fail('not a run');
}

const isBadOption = (option: string) => (err: unknown) =>
  (err as { code?: string }).code === 'SY_BAD_OPTION' && (err as { option?: string }).option === option;

describe('HTTPS and WebSocket options', () => {
  test('reads the uWSGI form --https ADDR,CRT,KEY and a bare --https with --https-cert-default', () => {
    const config = tls([
      '--https',
      '0.0.0.0:8443,/etc/a.crt,/etc/a.key',
      '--https',
      '[::1]:9443',
      '--https-cert-default',
      '/etc/d.crt,/etc/d.key',
    ]);
    assert.deepEqual(config.https, [
      { address: '0.0.0.0:8443', certificate: { cert: '/etc/a.crt', key: '/etc/a.key' } },
      { address: '[::1]:9443', certificate: undefined },
    ]);
    assert.deepEqual(config.defaultCertificate, { cert: '/etc/d.crt', key: '/etc/d.key' });
  });

  test('reads per-host certificates (names normalised, wildcards kept) and a certificate directory', () => {
    const config = tls([
      '--https',
      ':8443,/c,/k',
      '--https-cert',
      'App.Example.COM.=/a.crt,/a.key',
      '--https-cert',
      '*.tenant.example=/w.crt,/w.key',
      '--https-cert-dir',
      '/etc/switchyard/certs',
    ]);
    assert.deepEqual(config.hostCertificates, [
      ['app.example.com', { cert: '/a.crt', key: '/a.key' }],
      ['*.tenant.example', { cert: '/w.crt', key: '/w.key' }],
    ]);
    assert.equal(config.certificateDir, '/etc/switchyard/certs');
  });

  test('defaults the WebSocket idle timeout to 300 s and the drain deadline to 30 s, with per-host overrides', () => {
    const defaults = tls([]);
    assert.equal(defaults.websocketIdleTimeout, 300);
    assert.equal(defaults.websocketDrainDeadline, 30);
    assert.deepEqual(defaults.https, []);
    const config = tls([
      '--websocket-idle-timeout',
      '0',
      '--websocket-drain-deadline',
      '12',
      '--websocket-drain-deadline',
      'chat.example=120',
    ]);
    assert.equal(config.websocketIdleTimeout, 0);
    assert.equal(config.websocketDrainDeadline, 12);
    assert.deepEqual(config.websocketDrainDeadlines, [['chat.example', 120]]);
    const options = routerTlsOptions(config);
    assert.equal(options.tunnelIdleTimeoutMs, 0);
    assert.equal(options.drainDeadlineMs, 12_000);
    assert.equal(options.hostDrainDeadlines.get('chat.example'), 120_000);
  });

  test('refuses an --https listener without a certificate, and certificate options without --https', () => {
    assert.throws(() => parseCli(['--https', '127.0.0.1:8443']), isBadOption('--https'));
    assert.throws(() => parseCli(['--https-cert-dir', '/tmp']), isBadOption('--https-cert-dir'));
    assert.throws(() => parseCli(['--https-cert', 'a.test=/c,/k']), isBadOption('--https-cert'));
    assert.throws(() => parseCli(['--https-cert-default', '/c,/k']), isBadOption('--https-cert-default'));
  });

  test('refuses malformed values with SY_BAD_OPTION naming the option', () => {
    assert.throws(() => parseCli(['--https', 'nope,/c,/k']), isBadOption('--https'));
    assert.throws(() => parseCli(['--https', ':8443,/c']), isBadOption('--https'));
    assert.throws(() => parseCli(['--https', ':8443,/c,/k', '--https-cert', 'a b=/c,/k']), isBadOption('--https-cert'));
    assert.throws(
      () => parseCli(['--https', ':8443,/c,/k', '--https-cert', 'a.test:443=/c,/k']),
      isBadOption('--https-cert'),
    );
    assert.throws(
      () => parseCli(['--https', ':8443', '--https-cert-default', '/c']),
      isBadOption('--https-cert-default'),
    );
    assert.throws(() => parseCli(['--websocket-idle-timeout=-1']), isBadOption('--websocket-idle-timeout'));
    assert.throws(() => parseCli(['--websocket-drain-deadline', 'x=y']), isBadOption('--websocket-drain-deadline'));
    assert.equal(exitCodeFor({ code: 'SY_BAD_CERTIFICATE' }), 2);
  });

  test('lists the new options with their defaults in --help', () => {
    const help = helpText();
    for (const option of [
      '--https ADDR[,CRT,KEY]',
      '--https-cert-default CRT,KEY',
      '--https-cert HOST=CRT,KEY',
      '--https-cert-dir DIR',
    ]) {
      assert.ok(help.includes(option), option);
    }
    assert.match(help, /--websocket-idle-timeout SECS.*\(default: 300\)/);
    assert.match(help, /--websocket-drain-deadline \[HOST=\]SECS.*\(default: 30\)/);
  });
});
