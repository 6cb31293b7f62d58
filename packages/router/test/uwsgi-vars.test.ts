/**
 * buildUwsgiVars (one-pass writer) against the reference construction it replaced (UwsgiVarsBuilder,
 * one add() per var, a Map merging repeated headers), byte for byte over seeded random requests.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeVars, UwsgiVarsBuilder, VarsTooLargeError } from '@switchyard/protocol';
import { connectionListed, HOP_BY_HOP, PROXY_OWNED_UP } from '../src/header-policy.js';
import { buildUwsgiVars, percentDecodeBytes, type UwsgiRequestInfo } from '../src/uwsgi-vars.js';

const SKIPPED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP,
  ...[...PROXY_OWNED_UP].filter((name) => name !== 'host'),
  'content-type',
]);

/** The construction buildUwsgiVars had before the one-pass writer. */
function reference(info: UwsgiRequestInfo, modifier1: number, modifier2: number): Buffer {
  const b = new UwsgiVarsBuilder(1024 + info.target.length * 2);
  const q = info.target.indexOf('?');
  const rawPath = q < 0 ? info.target : info.target.slice(0, q);
  b.add('REQUEST_METHOD', info.method);
  b.add('REQUEST_URI', info.target);
  b.add('PATH_INFO', percentDecodeBytes(rawPath));
  b.add('QUERY_STRING', q < 0 ? '' : info.target.slice(q + 1));
  b.add('SERVER_PROTOCOL', `HTTP/${info.httpVersion}`);
  b.add('SCRIPT_NAME', '');
  b.add('SERVER_NAME', info.serverName);
  b.add('SERVER_PORT', String(info.serverPort));
  b.add('UWSGI_ROUTER', 'http');
  b.add('REMOTE_ADDR', info.remoteAddress);
  b.add('REMOTE_PORT', String(info.remotePort));
  if (info.tls) b.add('HTTPS', 'on');
  const raw = info.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'content-type') {
      b.add('CONTENT_TYPE', raw[i + 1]!);
      break;
    }
  }
  if (info.contentLength !== undefined) b.add('CONTENT_LENGTH', String(info.contentLength));
  const listed = connectionListed(raw);
  const merged = new Map<string, string>();
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (SKIPPED.has(lower) || listed?.has(lower) || lower.includes('_')) continue;
    const varName = `HTTP_${lower.toUpperCase().replaceAll('-', '_')}`;
    const previous = merged.get(varName);
    merged.set(varName, previous === undefined ? raw[i + 1]! : `${previous}, ${raw[i + 1]!}`);
  }
  for (const [name, value] of merged) b.add(name, value);
  for (const [name, value] of info.extraVars) b.add(name, value);
  return b.finish(modifier1, modifier2);
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = [
  'Host',
  'User-Agent',
  'Accept',
  'accept',
  'Cookie',
  'X-Custom',
  'x-custom',
  'Content-Type',
  'Content-Length',
  'Connection',
  'Keep-Alive',
  'X-Forwarded-For',
  'X_Under_Score',
  'TE',
  'X-Listed',
  'Accept-Language',
  'If-None-Match',
];

function randomValue(random: () => number): string {
  const length = random() < 0.2 ? 40 + Math.floor(random() * 200) : Math.floor(random() * 30);
  let s = '';
  for (let i = 0; i < length; i++) {
    const r = random();
    // Mostly visible ASCII, some obs-text (0x80-0xff) as Node's latin1 header strings carry it.
    s += String.fromCharCode(r < 0.9 ? 0x20 + Math.floor(random() * 95) : 0x80 + Math.floor(random() * 128));
  }
  return s;
}

function randomInfo(random: () => number): UwsgiRequestInfo {
  const rawHeaders: string[] = [];
  const count = random() < 0.1 ? 30 + Math.floor(random() * 40) : Math.floor(random() * 14);
  for (let i = 0; i < count; i++) {
    const name = random() < 0.15 ? `X-Gen-${Math.floor(random() * 50)}` : NAMES[Math.floor(random() * NAMES.length)]!;
    const value = name === 'Connection' ? (random() < 0.5 ? 'keep-alive, X-Listed' : 'close') : randomValue(random);
    rawHeaders.push(name, value);
  }
  const paths = ['/', '/a/b', '/caf%C3%A9', '/x%2', '/%zz/%41', `/${randomValue(random).replace(/[?\s]/g, '')}`];
  const path = paths[Math.floor(random() * paths.length)]!;
  const target = random() < 0.5 ? `${path}?q=${Math.floor(random() * 1000)}&x=%20` : path;
  return {
    method: random() < 0.7 ? 'GET' : 'POST',
    target,
    httpVersion: random() < 0.9 ? '1.1' : '1.0',
    rawHeaders,
    serverName: 'router.example',
    serverPort: Math.floor(random() * 65536),
    remoteAddress: random() < 0.5 ? '127.0.0.1' : '::1',
    remotePort: Math.floor(random() * 65536),
    tls: random() < 0.3,
    contentLength: random() < 0.5 ? undefined : Math.floor(random() * 1e6),
    extraVars: random() < 0.3 ? [['UWSGI_SCHEME', 'https'] as const, ['APP_VAR', randomValue(random)] as const] : [],
  };
}

describe('uwsgi vars', () => {
  test('the one-pass writer produces the bytes of the reference construction for random requests', () => {
    const random = rng(20261125);
    for (let n = 0; n < 2000; n++) {
      const info = randomInfo(random);
      const m1 = Math.floor(random() * 256);
      const m2 = Math.floor(random() * 256);
      assert.deepEqual(buildUwsgiVars(info, m1, m2), reference(info, m1, m2), `case ${n}: ${JSON.stringify(info)}`);
    }
  });

  test('repeated headers merge into their first occurrence with ", " and keep its position', () => {
    const info = randomInfo(rng(1));
    const vars = buildUwsgiVars(
      {
        ...info,
        rawHeaders: ['Accept', 'a', 'X-One', '1', 'accept', 'b', 'ACCEPT', 'c'],
        extraVars: [],
      },
      0,
      0,
    );
    const decoded = decodeVars(vars.subarray(4));
    assert.ok(decoded.ok);
    const httpVars = decoded.value
      .map((pair) => [pair.key, pair.value.toString('latin1')])
      .filter(([k]) => k!.startsWith('HTTP_'));
    assert.deepEqual(httpVars, [
      ['HTTP_ACCEPT', 'a, b, c'],
      ['HTTP_X_ONE', '1'],
    ]);
  });

  test('a request whose vars exceed 64 KiB throws SY_VARS_TOO_LARGE, like the reference', () => {
    const info = { ...randomInfo(rng(2)), rawHeaders: ['X-Big', 'v'.repeat(70_000)] };
    assert.throws(
      () => reference(info, 0, 0),
      (error: unknown) => error instanceof VarsTooLargeError,
    );
    assert.throws(
      () => buildUwsgiVars(info, 0, 0),
      (error: unknown) => error instanceof VarsTooLargeError && error.code === 'SY_VARS_TOO_LARGE',
    );
  });
});
