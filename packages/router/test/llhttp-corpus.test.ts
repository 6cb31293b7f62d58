/**
 * The request cases of llhttp's own test suite (fixtures/llhttp-request-corpus.json, extracted by
 * fixtures/extract-llhttp-corpus.mjs from nodejs/llhttp test/request/*.md, MIT), replayed through the
 * router over raw sockets to a counting backend:
 *  - every case llhttp rejects is rejected: the node never receives a complete request beyond the
 *    messages llhttp completed before its error (and no head at all unless the error is inside a body),
 *    and the client gets coded responses only (proxied ones for those earlier messages);
 *  - each error case is sent twice: as written, and with `Host: app.test` added after its first line,
 *    so a missing Host is never the only reason for the rejection;
 *  - the other cases (accepted by llhttp, or paused on CONNECT/Upgrade/PRI) must end cleanly: proxied
 *    or coded responses, no hang, no crash.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Router } from '../src/index.js';
import { httpNode, startRouter } from './helpers.js';
import { type CountingBackend, type RawResult, rawExchange, startCountingBackend } from './raw-client.js';

interface CorpusCase {
  readonly file: string;
  readonly line: number;
  readonly name: string;
  readonly error: { readonly code: number; readonly reason: string } | null;
  readonly completeBefore: number;
  readonly bodyError: boolean;
  readonly raw: string;
}

const corpus = JSON.parse(readFileSync(new URL('./fixtures/llhttp-request-corpus.json', import.meta.url), 'utf8')) as {
  cases: CorpusCase[];
};
/** llhttp pauses (HPE_PAUSED_UPGRADE, HPE_PAUSED_H2_UPGRADE): not parse errors. */
const PAUSES = new Set([22, 23]);
const errors = corpus.cases.filter((c) => c.error !== null && !PAUSES.has(c.error.code));
const others = corpus.cases.filter((c) => c.error === null || PAUSES.has(c.error.code));

/** The case with `Host: app.test` after its first line (unless it has a Host already). */
function withHost(raw: string): string | undefined {
  const firstLine = raw.indexOf('\r\n');
  if (firstLine < 0 || /\r\nhost:/i.test(raw)) return undefined;
  return `${raw.slice(0, firstLine + 2)}Host: app.test\r\n${raw.slice(firstLine + 2)}`;
}

describe('llhttp request corpus through the router', () => {
  let backend: CountingBackend;
  let router: Router;
  let port: number;
  before(async () => {
    backend = await startCountingBackend();
    ({ router, port } = await startRouter({ headersTimeoutMs: 1000, bodyTimeoutMs: 1000 }));
    router.upsertNode(httpNode('app.test', backend.address));
    // Static node: the corpus' other hosts (example.com, ...) are served too.
    const { key: _key, source: _source, state: _state, ...node } = httpNode('static', backend.address);
    router.addStaticNode(node);
  });
  after(async () => {
    await router.close();
    await backend.close();
  });

  async function replay(raw: string): Promise<{ result: RawResult; heads: number; completed: number }> {
    const headsBefore = backend.heads.length;
    const completedBefore = backend.completed().length;
    const head = /^\s*HEAD /.test(raw);
    const result = await rawExchange(port, raw, { timeoutMs: 4000, endAfterWrite: true, head });

    await new Promise((r) => setTimeout(r, 20));
    return {
      result,
      heads: backend.heads.length - headsBefore,
      completed: backend.completed().length - completedBefore,
    };
  }

  /** Every response is proxied (X-Backend) or a coded error; the connection ended by itself. */
  function assertCleanEnding(result: RawResult, label: string): void {
    assert.notEqual(result.ending, 'timeout', `${label}: the router must end the connection`);
    for (const response of result.responses) {
      const proxied = response.headers['x-backend'] === 'yes';
      assert.ok(proxied || /^SY_[A-Z_]+$/.test(response.code ?? ''), `${label}: uncoded ${response.rawHead}`);
    }
    assert.equal(
      result.rest.length,
      0,
      `${label}: a truncated response ${JSON.stringify(result.rest.toString('latin1'))}`,
    );
    const closing = result.responses.findIndex((r) => r.headers.connection === 'close');
    assert.ok(closing < 0 || closing === result.responses.length - 1, `${label}: a response after Connection: close`);
  }

  test(`the corpus holds ${corpus.cases.length} cases, ${errors.length} of them parse errors`, () => {
    assert.ok(corpus.cases.length >= 100);
    assert.ok(errors.length >= 50);
  });

  for (const c of errors) {
    test(`rejects llhttp error case "${c.name}" (${c.file}:${c.line}) and the node never gets it`, async () => {
      const variants = [c.raw, withHost(c.raw)].filter((v): v is string => v !== undefined);
      for (const [i, raw] of variants.entries()) {
        const label = i === 0 ? 'as written' : 'with Host';
        const { result, heads, completed } = await replay(raw);
        assertCleanEnding(result, label);
        assert.ok(completed <= c.completeBefore, `${label}: ${completed} complete requests reached the node`);
        if (!c.bodyError) assert.ok(heads <= c.completeBefore, `${label}: ${heads} heads reached the node`);
        const refused = result.responses.slice(c.completeBefore);
        // The error itself is answered with a 4xx/5xx, or the connection is closed without an answer.
        for (const response of refused) assert.ok(response.status >= 400, `${label}: ${response.rawHead}`);
        assert.ok(
          result.responses.length <= c.completeBefore + 1,
          `${label}: ${result.responses.length} responses for ${c.completeBefore} good messages`,
        );
      }
    });
  }

  test('every other case ends cleanly: proxied or coded responses, no hang', async () => {
    for (const c of others) {
      const variants = [c.raw, withHost(c.raw)].filter((v): v is string => v !== undefined);
      for (const raw of variants) {
        const { result, completed } = await replay(raw);
        assertCleanEnding(result, `${c.name} (${c.file}:${c.line})`);
        assert.ok(completed <= Math.max(c.completeBefore, 1));
      }
    }
  });
});
