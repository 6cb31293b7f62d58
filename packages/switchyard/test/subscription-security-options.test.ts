import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { helpText, parseCli } from '../src/cli-options.js';
import { exitCodeFor } from '../src/errors.js';
import { SwitchyardApp } from '../src/switchyard-app.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-secopt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function config(argv: string[]) {
  const parsed = parseCli(argv);
  assert.equal(parsed.kind, 'run');
  return parsed.kind === 'run' ? parsed.config.security : assert.fail('not a run');
}

const isBadOption = (option: string) => (err: unknown) =>
  (err as { code?: string; option?: string }).code === 'SY_BAD_OPTION' &&
  (err as { option?: string }).option === option;

describe('subscription security options', () => {
  test('defaults: no signing, no allowlists, 1000 packets/s per source with a burst of 2000', () => {
    assert.deepEqual(config([]), {
      signCheck: undefined,
      signCheckTolerance: 30,
      keys: [],
      keyWindow: 30,
      allow: [],
      rate: 1000,
      burst: 2000,
      nodeAllow: [],
      nodeAllowUnix: [],
    });
  });

  test('every option parses into the config', () => {
    const c = config([
      '--subscriptions-sign-check',
      'SHA256:/etc/keys',
      '--subscriptions-sign-check-tolerance',
      '10',
      '--subscription-key',
      '*.tenant.example=ed25519:/k/t1.pub',
      '--subscription-key',
      'api.example=hmac-sha256:/k/h1.key',
      '--subscription-key-window',
      '20',
      '--subscription-allow',
      '10.0.0.0/8=*.tenant.example',
      '--subscription-rate',
      '50:60',
      '--subscription-node-allow',
      '10.0.0.0/8',
      '--subscription-node-allow',
      '/run/apps/',
    ]);
    assert.deepEqual(c.signCheck, { algorithm: 'SHA256', dir: '/etc/keys' });
    assert.equal(c.signCheckTolerance, 10);
    assert.deepEqual(
      c.keys.map((k) => [k.pattern, k.algorithm, k.file]),
      [
        ['*.tenant.example', 'ed25519', '/k/t1.pub'],
        ['api.example', 'hmac-sha256', '/k/h1.key'],
      ],
    );
    assert.equal(c.keyWindow, 20);
    assert.deepEqual(c.allow, ['10.0.0.0/8=*.tenant.example']);
    assert.deepEqual([c.rate, c.burst], [50, 60]);
    assert.deepEqual(c.nodeAllow, ['10.0.0.0/8']);
    assert.deepEqual(c.nodeAllowUnix, ['/run/apps/']);
  });

  test('invalid values are SY_BAD_OPTION naming the option', () => {
    const cases: [string, string][] = [
      ['--subscriptions-sign-check', 'NOPE:/etc/keys'],
      ['--subscriptions-sign-check', '/etc/keys'],
      ['--subscription-key', '*.x=rsa:/k'],
      ['--subscription-allow', '10.0.0.0/40'],
      ['--subscription-allow', '10.0.0.0/8=not a pattern'],
      ['--subscription-rate', 'fast'],
      ['--subscription-rate', '0'],
      ['--subscription-node-allow', 'internal.example'],
    ];
    for (const [option, value] of cases) assert.throws(() => parseCli([option, value]), isBadOption(option), value);
  });

  test('--help lists every security option with its default', () => {
    const help = helpText();
    for (const line of [
      '--subscriptions-sign-check ALGO:DIR',
      '--subscriptions-sign-check-tolerance SECS',
      '--subscription-key PATTERN=ALG:FILE',
      '--subscription-key-window SECS',
      '--subscription-allow CIDR[=PATTERN,...]',
      '--subscription-rate N[:BURST]',
      '--subscription-node-allow CIDR|/PATH/',
    ]) {
      const entry = help.split('\n').find((l) => l.trimStart().startsWith(line));
      assert.ok(entry?.includes('(default: '), `${line} is listed with a default`);
    }
  });

  test('a missing key file fails start-up with SY_BAD_KEY (exit code 2) before anything is bound', async () => {
    const parsed = parseCli([
      '--http',
      '127.0.0.1:0',
      '--subscription-server',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--subscription-key',
      `*=ed25519:${dir}/missing.pub`,
    ]);
    assert.ok(parsed.kind === 'run');
    const app = new SwitchyardApp({ config: parsed.config, logger: pino({ level: 'silent' }) });
    await assert.rejects(app.start(), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'SY_BAD_KEY');
      assert.equal(exitCodeFor(err), 2);
      return true;
    });
    assert.deepEqual(app.subscriptions!.addresses(), []);
    await app.close();
  });
});
