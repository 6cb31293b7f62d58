import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_MOUNT_DEPTH, parseMountpointKey } from '../src/index.js';

describe('mountpoint keys (host/segment)', () => {
  test('normalises the host part and keeps the path byte for byte', () => {
    const key = parseMountpointKey('App.Test./API/v2');
    assert.deepEqual(
      { key: key?.key, path: key?.path, depth: key?.depth, host: key?.host.host },
      { key: 'app.test/API/v2', path: '/API/v2', depth: 2, host: 'app.test' },
    );
  });

  test('accepts a port, a wildcard host and percent-escapes in a segment', () => {
    assert.equal(parseMountpointKey('app.test:8080/api')?.key, 'app.test:8080/api');
    assert.equal(parseMountpointKey('.example.com/api')?.key, '.example.com/api');
    assert.equal(parseMountpointKey('app.test/caf%C3%A9')?.key, 'app.test/caf%C3%A9');
  });

  test('refuses empty, dot, query and fragment segments and a missing host', () => {
    for (const bad of [
      '/api',
      'app.test/',
      'app.test//a',
      'app.test/a/',
      'app.test/..',
      'app.test/.',
      'app.test/a?b',
      'app.test/a#b',
      'app.test/a b',
      'app.test/%zz',
      'bad host/a',
      'app.test/é',
    ]) {
      assert.equal(parseMountpointKey(bad), undefined, bad);
    }
  });

  test(`refuses more than ${MAX_MOUNT_DEPTH} segments and keys over 255 bytes`, () => {
    assert.equal(parseMountpointKey('a.test/1/2/3/4')?.depth, 4);
    assert.equal(parseMountpointKey('a.test/1/2/3/4/5'), undefined);
    assert.equal(parseMountpointKey(`a.test/${'x'.repeat(249)}`), undefined);
    assert.equal(parseMountpointKey(`a.test/${'x'.repeat(248)}`)?.key.length, 255);
  });
});
