import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { parseCli } from '../src/cli-options.js';
import { CliError } from '../src/errors.js';
import { compatRouterOptions } from '../src/uwsgi-compat-wiring.js';
import { expandIniArgs, type IniContext } from '../src/uwsgi-ini.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-ini-'));

function ini(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

const KINDS: Readonly<Record<string, 'string' | 'boolean'>> = {
  http: 'string',
  'http-to': 'string',
  'http-var': 'string',
  'subscription-server': 'string',
  'http-subscription-server': 'string',
  'subscription-dotsplit': 'boolean',
  'http-timeout': 'string',
};
const context: IniContext = { optionKind: (name) => KINDS[name], env: { APP_PORT: '3031' } };

function expand(file: string, extra: string[] = []) {
  return expandIniArgs(['--ini', file, ...extra], context);
}

/** Runs `fn` and returns the CliError's code and location. */
function failure(fn: () => unknown): { code: string; location: string | undefined } {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof CliError, `expected a CliError, got ${String(error)}`);
    return { code: error.code, location: error.location };
  }
  assert.fail('expected a CliError');
}

describe('uWSGI ini files (--ini)', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('expands options in file order, repeated keys as repeated options, comments skipped', () => {
    const file = ini(
      'router.ini',
      '; a comment\n# another\n[uwsgi]\nhttp = 127.0.0.1:8080\nhttp-to = 127.0.0.1:3031\r\nhttp-to = 127.0.0.1:3032\n\n',
    );
    assert.deepEqual(expand(file).args, [
      '--http',
      '127.0.0.1:8080',
      '--http-to',
      '127.0.0.1:3031',
      '--http-to',
      '127.0.0.1:3032',
    ]);
  });

  test('keeps command-line options after the file so they override or extend it', () => {
    const file = ini('order.ini', '[uwsgi]\nhttp-timeout = 5\n');
    const args = expandIniArgs(['--http-timeout', '1', '--ini', file, '--http-timeout', '9'], context).args;
    assert.deepEqual(args, ['--http-timeout', '1', '--http-timeout', '5', '--http-timeout', '9']);
  });

  test('resolves %(name) placeholders, including custom keys defined later, to their first value', () => {
    const file = ini(
      'ph.ini',
      '[uwsgi]\nhttp = 127.0.0.1:%(port)\nhttp-var = NAME=%(name)-%(port)\nport = 8080\nport = 9090\nname = x%(port)\n',
    );
    assert.deepEqual(expand(file).args, ['--http', '127.0.0.1:8080', '--http-var', 'NAME=x8080-8080']);
  });

  test('substitutes the magic variables %d %p %s %n %c %% and $(ENV)', () => {
    const file = ini('magic.ini', '[uwsgi]\nhttp-var = A=%d|%p|%s|%n|%c|100%%\nhttp-to = 127.0.0.1:$(APP_PORT)\n');
    const base = path.basename(dir);
    assert.deepEqual(expand(file).args, [
      '--http-var',
      `A=${dir}/|${file}|magic.ini|magic|${base}|100%`,
      '--http-to',
      '127.0.0.1:3031',
    ]);
  });

  test('reads the [uwsgi] section by default and another one with FILE:section', () => {
    const file = ini('sections.ini', '[uwsgi]\nhttp = :1\n[edge]\nhttp = :2\n[other]\nnot an option line\n');
    assert.deepEqual(expand(file).args, ['--http', ':1']);
    assert.deepEqual(expand(`${file}:edge`).args, ['--http', ':2']);
    assert.equal(failure(() => expand(`${file}:missing`)).code, 'SY_BAD_OPTION');
  });

  test('turns true/1/yes into a flag and false/0 into nothing; another value is an error', () => {
    const on = ini('flag-on.ini', '[uwsgi]\nsubscription-dotsplit = true\n');
    const off = ini('flag-off.ini', '[uwsgi]\nsubscription-dotsplit = 0\n');
    const bad = ini('flag-bad.ini', '[uwsgi]\nsubscription-dotsplit = maybe\n');
    assert.deepEqual(expand(on).args, ['--subscription-dotsplit']);
    assert.deepEqual(expand(off).args, []);
    assert.deepEqual(
      failure(() => expand(bad)),
      { code: 'SY_BAD_OPTION', location: `${bad}:2` },
    );
  });

  test('warns once per uWSGI option Switchyard does not use and ignores it', () => {
    const file = ini(
      'app.ini',
      '[uwsgi]\nsocket = /tmp/a.sock\nmaster = true\nplugins = python3\nsocket = /tmp/b.sock\nhttp = :8080\n',
    );
    const result = expand(file);
    assert.deepEqual(result.args, ['--http', ':8080']);
    assert.deepEqual(
      result.warnings.map((w) => [w.option, w.location]),
      [
        ['socket', `${file}:2`],
        ['master', `${file}:3`],
        ['plugins', `${file}:4`],
      ],
    );
  });

  test('refuses a key that is no uWSGI option, naming file:line, unless it is a placeholder', () => {
    const bad = ini('garbage.ini', '[uwsgi]\nhttp = :8080\nhtpp-to = 127.0.0.1:1\n');
    assert.deepEqual(
      failure(() => expand(bad)),
      { code: 'SY_BAD_OPTION', location: `${bad}:3` },
    );
    const used = ini('custom.ini', '[uwsgi]\nbackend = 127.0.0.1:1\nhttp-to = %(backend)\n');
    assert.deepEqual(expand(used).args, ['--http-to', '127.0.0.1:1']);
  });

  test('refuses malformed lines, unknown placeholders, unset variables and exotic expansions with file:line', () => {
    const cases: [string, string, number][] = [
      ['malformed.ini', '[uwsgi]\nhttp :8080\n', 2],
      ['header.ini', '[uwsgi\nhttp = :1\n', 1],
      ['placeholder.ini', '[uwsgi]\n\nhttp = %(nothere)\n', 3],
      ['cycle.ini', '[uwsgi]\na = %(b)\nb = %(a)\nhttp = %(a)\n', 3],
      ['env.ini', '[uwsgi]\nhttp = :$(NOT_SET_ANYWHERE)\n', 2],
      ['at.ini', '[uwsgi]\nhttp = @(/etc/hostname)\n', 2],
      ['magic.ini2', '[uwsgi]\nhttp = %h\n', 2],
      ['logic.ini', '[uwsgi]\nif-env = HOME\nhttp = :1\nendif =\n', 2],
      ['nested.ini', '[uwsgi]\nini = other.ini\n', 2],
    ];
    for (const [name, text, line] of cases) {
      const file = ini(name, text);
      assert.deepEqual(
        failure(() => expand(file)),
        { code: 'SY_BAD_OPTION', location: `${file}:${line}` },
        name,
      );
    }
    assert.equal(failure(() => expand(path.join(dir, 'absent.ini'))).code, 'SY_BAD_OPTION');
  });

  test('take a config file as the first argument and -M for --master, as uwsgi does', () => {
    const file = ini('positional.ini', '[uwsgi]\nhttp = 127.0.0.1:8082\n[other]\nhttp = 127.0.0.1:8083\n');
    for (const [argv, http] of [
      [[file, '-M'], '127.0.0.1:8082'],
      [[`${file}:other`], '127.0.0.1:8083'],
    ] as const) {
      const parsed = parseCli([...argv]);
      assert.equal(parsed.kind, 'run');
      if (parsed.kind !== 'run') return;
      assert.deepEqual(parsed.config.http, [http]);
    }
    const parsed = parseCli([file, '-M']);
    assert.deepEqual(parsed.kind === 'run' ? parsed.warnings?.map((w) => /--([a-z-]+)/.exec(w)?.[1]) : [], ['master']);
    // Only the first argument, and only a .ini file: anything else positional is still refused.
    assert.throws(() => parseCli(['--http', '127.0.0.1:8084', file]), { code: 'SY_BAD_OPTION' });
    assert.throws(() => parseCli(['router.conf']), { code: 'SY_BAD_OPTION' });
  });

  test('maps http-keepalive = N (N > 1) to the keep-alive timeout and http-headers-timeout to the header timeout', () => {
    const file = ini('timeouts.ini', '[uwsgi]\nhttp-keepalive = 30\nhttp-headers-timeout = 7\n');
    const fromIni = parseCli(['--ini', file]);
    const fromCli = parseCli(['--http-keepalive', '45', '--http-headers-timeout', '9']);
    const plain = parseCli(['--http-keepalive', '1', '--http-keepalive']);
    if (fromIni.kind !== 'run' || fromCli.kind !== 'run' || plain.kind !== 'run') return assert.fail('not a run');
    assert.deepEqual(
      [fromIni.config.hardening.clientKeepaliveTimeout, fromIni.config.hardening.clientHeaderTimeout],
      [30, 7],
    );
    assert.deepEqual(fromIni.warnings ?? [], []);
    assert.deepEqual(
      [fromCli.config.hardening.clientKeepaliveTimeout, fromCli.config.hardening.clientHeaderTimeout],
      [45, 9],
    );
    // 1 or no value only turns keep-alive on (always on here): dropped with its warning, default timeout.
    assert.equal(plain.config.hardening.clientKeepaliveTimeout, 75);
    assert.equal(plain.warnings?.length, 1);
  });

  test('feeds parseCli: uWSGI aliases map to Switchyard options and warnings come back', () => {
    const file = ini(
      'full.ini',
      [
        '[uwsgi]',
        'http = 127.0.0.1:0',
        'http-subscription-server = 127.0.0.1:0',
        'http-subscription-fallback-key = default.test',
        'subscription-dotsplit = 1',
        'http-stats-server = 127.0.0.1:0',
        'http-keepalive = 1',
        'master = true',
        '',
      ].join('\n'),
    );
    const parsed = parseCli(['--ini', file, '--admin', '127.0.0.1:0']);
    assert.equal(parsed.kind, 'run');
    if (parsed.kind !== 'run') return;
    assert.deepEqual(parsed.config.subscriptionServer, ['127.0.0.1:0']);
    assert.equal(parsed.config.compat.fallbackKey, 'default.test');
    assert.equal(parsed.config.compat.dotsplit, true);
    assert.equal(parsed.config.compat.statsServer, '127.0.0.1:0');
    assert.equal(parsed.warnings?.length, 2);
  });
});

describe('uWSGI options on the command line', () => {
  test('are dropped with one warning each, values included, so a uWSGI router command line runs', () => {
    const parsed = parseCli([
      '--master',
      '--harakiri',
      '30',
      '--http',
      '127.0.0.1:8081',
      '--harakiri=60',
      '--http-keepalive',
      '--socket',
      ':3031',
      '--http-subscription-server',
      '127.0.0.1:2627',
    ]);
    assert.equal(parsed.kind, 'run');
    if (parsed.kind !== 'run') return;
    assert.deepEqual(parsed.config.http, ['127.0.0.1:8081']);
    assert.deepEqual(parsed.config.subscriptionServer, ['127.0.0.1:2627']);
    const named = (parsed.warnings ?? []).map((w) => /--([a-z-]+)/.exec(w)?.[1]);
    assert.deepEqual(named, ['master', 'harakiri', 'http-keepalive', 'socket']);
  });

  test('say what to do instead when a dropped option changes behaviour (apps, pidfiles, daemonizing)', () => {
    const parsed = parseCli([
      '--socket',
      ':3031',
      '--pidfile',
      '/run/r.pid',
      '--daemonize',
      '/var/log/r.log',
      '--wsgi-file',
      'a.py',
    ]);
    assert.equal(parsed.kind, 'run');
    if (parsed.kind !== 'run') return;
    const warnings = parsed.warnings ?? [];
    assert.equal(warnings.length, 4);
    assert.match(warnings[0]!, /--socket .*--spawn/);
    assert.match(warnings[1]!, /--pidfile .*service manager/);
    assert.match(warnings[2]!, /--daemonize .*foreground/);
    assert.match(warnings[3]!, /--wsgi-file .*--spawn/);
  });

  test('--http-enable-proxy-protocol is a Switchyard option too (PROXY headers required), from the command line or an ini file', () => {
    const on = parseCli(['--http-enable-proxy-protocol']);
    const off = parseCli([]);
    assert.equal(on.kind === 'run' && compatRouterOptions(on.config).proxyProtocol, true);
    assert.equal(on.kind === 'run' && (on.warnings ?? []).length, 0);
    assert.equal(off.kind === 'run' && compatRouterOptions(off.config).proxyProtocol, false);
  });

  test('leave unknown options to the parser: SY_BAD_OPTION', () => {
    assert.throws(() => parseCli(['--master', '--not-an-option-anywhere']), { code: 'SY_BAD_OPTION' });
  });
});
