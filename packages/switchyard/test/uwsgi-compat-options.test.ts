/**
 * `--uwsgi-sockets raw|net` (uwsgi-compat-options.ts): parsed once, handed to the router as `uwsgiIo`.
 * The end-to-end behaviour of both transports against a real uWSGI node is in test/uwsgi-parity.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { helpText, parseCli } from '../src/cli-options.js';
import { compatRouterOptions } from '../src/uwsgi-compat-wiring.js';

function routerIo(argv: string[]) {
  const parsed = parseCli(argv);
  return parsed.kind === 'run' ? compatRouterOptions(parsed.config).uwsgiIo : assert.fail('not a run');
}

describe('--uwsgi-sockets', () => {
  test('defaults to raw, is listed in --help with its default, and net selects net.Socket', () => {
    assert.equal(routerIo([]), 'raw');
    assert.equal(routerIo(['--uwsgi-sockets', 'net']), 'net');
    assert.equal(routerIo(['--uwsgi-sockets', 'raw']), 'raw');
    assert.match(helpText(), /--uwsgi-sockets raw\|net .*\(default: raw\)/);
  });

  test('refuses any other value with SY_BAD_OPTION naming the option', () => {
    assert.throws(
      () => parseCli(['--uwsgi-sockets', 'fast']),
      (err: unknown) =>
        (err as { code?: string }).code === 'SY_BAD_OPTION' &&
        (err as { option?: string }).option === '--uwsgi-sockets',
    );
  });
});
