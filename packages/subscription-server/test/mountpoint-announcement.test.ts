import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeSubscription, encodeSubscription } from '@switchyard/protocol';
import { parseAnnouncement } from '../src/index.js';

function announce(key: string, mountpoints: boolean) {
  const decoded = decodeSubscription(
    encodeSubscription('subscribe', [
      ['key', key],
      ['address', '127.0.0.1:3031'],
    ]),
  );
  assert.ok(decoded.ok, 'test packet must decode');
  return parseAnnouncement(decoded.value, { mountpoints });
}

describe('announcements with mountpoint keys', () => {
  test('drops a key with a path as bad-key while mountpoints are off', () => {
    const result = announce('app.test/api', false);
    assert.equal(result.ok ? 'accepted' : result.reason, 'bad-key');
  });

  test('accepts host/segment keys with mountpoints on, normalising the host part', () => {
    const result = announce('App.Test:8080/api', true);
    assert.equal(result.ok ? result.value.key : result.reason, 'app.test:8080/api');
    const plain = announce('App.Test', true);
    assert.equal(plain.ok ? plain.value.key : plain.reason, 'app.test');
  });

  test('still drops malformed mountpoint keys as bad-key', () => {
    for (const key of ['app.test/', 'app.test/a/../b', '/api', 'app.test/a?x=1']) {
      const result = announce(key, true);
      assert.equal(result.ok ? 'accepted' : result.reason, 'bad-key', key);
    }
  });
});
