import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RouterError, statusForError } from '../src/errors.js';
import {
  type ResponseHead,
  ResponseParser,
  type ResponseParserHandler,
  type ResponseParserOptions,
  UpstreamProtocolError,
  type UpstreamProtocolErrorReason,
} from '../src/response-parser.js';

// ---------------------------------------------------------------------------------------------------------
// Harness

/** Records what the parser reports; body bytes are copied at once (chunks are only valid during onBody). */
class Recorder implements ResponseParserHandler {
  informational: ResponseHead[] = [];
  head: ResponseHead | null = null;
  heads = 0;
  body: string[] = [];
  completions = 0;
  onHead(head: ResponseHead): void {
    this.head = head;
    this.heads++;
  }
  onInformational(head: ResponseHead): void {
    this.informational.push(head);
  }
  onBody(chunk: Buffer): void {
    assert.ok(chunk.length > 0, 'onBody is never called with an empty chunk');
    this.body.push(chunk.toString('latin1'));
  }
  onComplete(): void {
    this.completions++;
  }
  clear(): void {
    this.informational = [];
    this.head = null;
    this.heads = 0;
    this.body = [];
    this.completions = 0;
  }
}

interface Outcome {
  informational: ResponseHead[];
  head: ResponseHead | null;
  heads: number;
  body: string;
  completions: number;
  complete: boolean;
  /** Bytes consumed in total (where the message ended when it completed); -1 after an error. */
  end: number;
  error: { code: string; reason: UpstreamProtocolErrorReason; during: 'execute' | 'finish' } | null;
}

interface RunOptions {
  method?: string;
  /** Offsets where the input is split into separate execute() calls. */
  cuts?: readonly number[];
  /** Call finish() after the last byte (the peer closes). Default true. */
  eof?: boolean;
  options?: ResponseParserOptions;
}

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

/**
 * Feeds `input` the way a socket reader does: every piece is copied into one shared read buffer that is
 * overwritten afterwards, so a parser keeping views of old input would be caught.
 */
function run(input: Buffer | string, opts: RunOptions = {}, parser?: ResponseParser, recorder?: Recorder): Outcome {
  const data = typeof input === 'string' ? bytes(input) : input;
  const rec = recorder ?? new Recorder();
  const p = parser ?? new ResponseParser(rec, opts.options);
  rec.clear();
  p.reset(opts.method ?? 'GET');
  const shared = Buffer.alloc(Math.max(1, data.length));
  const bounds = [0, ...(opts.cuts ?? []), data.length];
  let end = 0;
  let error: Outcome['error'] = null;
  const capture = (e: unknown, during: 'execute' | 'finish'): void => {
    if (!(e instanceof UpstreamProtocolError)) throw e;
    error = { code: e.code, reason: e.reason, during };
  };
  try {
    for (let k = 0; k + 1 < bounds.length; k++) {
      const piece = data.subarray(bounds[k], bounds[k + 1]);
      piece.copy(shared, 0);
      const n = p.execute(shared.subarray(0, piece.length));
      shared.fill(0xee, 0, piece.length);
      assert.ok(n >= 0 && n <= piece.length, 'execute returns an offset inside the chunk');
      end += n;
      if (n < piece.length) break;
    }
  } catch (e) {
    capture(e, 'execute');
  }
  if (error === null && opts.eof !== false) {
    try {
      p.finish();
    } catch (e) {
      capture(e, 'finish');
    }
  }
  return {
    informational: rec.informational,
    head: rec.head,
    heads: rec.heads,
    body: rec.body.join(''),
    completions: rec.completions,
    complete: p.complete,
    // How far a failed parse got depends on the splitting; only the error matters then.
    end: error === null ? end : -1,
    error,
  };
}

function everyByte(length: number): number[] {
  return Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1);
}

/** Deterministic PRNG (mulberry32) so a failing random case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomCuts(random: () => number, length: number): number[] {
  const cuts: number[] = [];
  let at = 0;
  for (;;) {
    // Mostly small pieces, sometimes large ones.
    at += random() < 0.7 ? 1 + Math.floor(random() * 8) : 1 + Math.floor(random() * 64);
    if (at >= length) return cuts;
    cuts.push(at);
  }
}

/** One-shot, byte-by-byte and three random splittings must agree; returns the one-shot outcome. */
function runAllSplits(input: Buffer | string, opts: RunOptions = {}, seed = 1): Outcome {
  const data = typeof input === 'string' ? bytes(input) : input;
  const whole = run(data, { ...opts, cuts: [] });
  assert.deepEqual(run(data, { ...opts, cuts: everyByte(data.length) }), whole, 'byte-by-byte equals one-shot');
  const random = prng(seed);
  for (let k = 0; k < 3; k++) {
    assert.deepEqual(
      run(data, { ...opts, cuts: randomCuts(random, data.length) }),
      whole,
      'random split equals one-shot',
    );
  }
  return whole;
}

function expectReject(input: string | Buffer, reason: UpstreamProtocolErrorReason, opts: RunOptions = {}): void {
  const outcome = runAllSplits(input, opts);
  assert.ok(outcome.error, `expected ${reason}`);
  assert.equal(outcome.error.code, 'SY_UPSTREAM_BAD_RESPONSE');
  assert.equal(outcome.error.reason, reason);
  assert.equal(outcome.error.during, reason === 'premature-eof' ? 'finish' : 'execute');
}

const OK_CL = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello';
const CHUNKED =
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n' +
  '5;name=value;q="a \\"quoted\\" ext";flag\r\nhello\r\n' +
  '6\r\n world\r\n' +
  'A\r\n0123456789\r\n' +
  '0;last=1\r\nX-Sum: abc\r\nX-Other:\txyz \r\n\r\n';

// ---------------------------------------------------------------------------------------------------------

describe('ResponseParser: valid responses', () => {
  test('a Content-Length response reports its head and body and ends after the body', () => {
    const outcome = runAllSplits(OK_CL);
    assert.equal(outcome.error, null);
    assert.deepEqual(outcome.head, {
      statusCode: 200,
      reason: 'OK',
      httpMinor: 1,
      rawHeaders: ['Content-Type', 'text/plain', 'Content-Length', '5'],
      contentLength: 5,
      framing: 'length',
      keepAlive: true,
      upgrade: false,
    });
    assert.equal(outcome.body, 'hello');
    assert.equal(outcome.completions, 1);
    assert.equal(outcome.end, OK_CL.length);
  });

  test('a Content-Length of 0 completes right after the head', () => {
    const input = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';
    const outcome = run(input, { eof: false });
    assert.equal(outcome.head?.framing, 'length');
    assert.equal(outcome.completions, 1);
    assert.equal(outcome.body, '');
    assert.equal(outcome.end, input.length);
  });

  test('a chunked body is decoded, extensions are checked and skipped, trailers are dropped', () => {
    const outcome = runAllSplits(CHUNKED);
    assert.equal(outcome.error, null);
    assert.equal(outcome.head?.framing, 'chunked');
    assert.equal(outcome.head?.contentLength, -1);
    assert.equal(outcome.head?.keepAlive, true);
    assert.deepEqual(outcome.head?.rawHeaders, ['Transfer-Encoding', 'chunked', 'Trailer', 'X-Sum']);
    assert.equal(outcome.body, 'hello world0123456789');
    assert.equal(outcome.completions, 1);
    assert.equal(outcome.end, CHUNKED.length);
  });

  test('Transfer-Encoding chunked is matched case-insensitively with surrounding whitespace', () => {
    const outcome = runAllSplits('HTTP/1.1 200 OK\r\ntransfer-encoding: \t ChUnKeD \t\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    assert.equal(outcome.head?.framing, 'chunked');
    assert.deepEqual(outcome.head?.rawHeaders, ['transfer-encoding', 'ChUnKeD']);
    assert.equal(outcome.body, 'abc');
    assert.equal(outcome.completions, 1);
  });

  test('a response without Content-Length or Transfer-Encoding is read until EOF and is not keep-alive', () => {
    const input = 'HTTP/1.1 200 OK\r\nServer: uwsgi\r\n\r\nall of this\r\n\r\nis body 0\r\n';
    const outcome = runAllSplits(input);
    assert.equal(outcome.head?.framing, 'eof');
    assert.equal(outcome.head?.keepAlive, false);
    assert.equal(outcome.body, 'all of this\r\n\r\nis body 0\r\n');
    assert.equal(outcome.completions, 1);
    const open = run(input, { eof: false });
    assert.equal(open.completions, 0, 'an eof body completes only on finish()');
    assert.equal(open.complete, false);
  });

  test('the response to HEAD has no body even with Content-Length or chunked', () => {
    const cl = run('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nHTTP/1.1', { method: 'HEAD', eof: false });
    assert.equal(cl.head?.framing, 'none');
    assert.equal(cl.head?.contentLength, 1234);
    assert.equal(cl.head?.keepAlive, true);
    assert.equal(cl.completions, 1);
    assert.equal(cl.end, 'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n'.length);
    const te = run('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', { method: 'HEAD', eof: false });
    assert.equal(te.head?.framing, 'none');
    assert.equal(te.completions, 1);
    const bare = runAllSplits('HTTP/1.1 200 OK\r\n\r\n', { method: 'HEAD' });
    assert.equal(bare.head?.framing, 'none');
    assert.equal(bare.head?.keepAlive, true);
  });

  test('204 and 304 responses have no body', () => {
    for (const status of ['204 No Content', '304 Not Modified']) {
      const head = `HTTP/1.1 ${status}\r\nContent-Length: 10\r\nETag: "x"\r\n\r\n`;
      const outcome = run(`${head}HTTP/1.1 200 OK\r\n`, { eof: false });
      assert.equal(outcome.head?.framing, 'none');
      assert.equal(outcome.head?.keepAlive, true);
      assert.equal(outcome.completions, 1);
      assert.equal(outcome.end, head.length, 'the next bytes are left to the caller');
    }
  });

  test('a 100 Continue is reported as informational, then the final response is parsed', () => {
    const input = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    const outcome = runAllSplits(input);
    assert.equal(outcome.informational.length, 1);
    assert.equal(outcome.informational[0]?.statusCode, 100);
    assert.equal(outcome.informational[0]?.framing, 'none');
    assert.equal(outcome.head?.statusCode, 200);
    assert.equal(outcome.heads, 1);
    assert.equal(outcome.body, 'ok');
    assert.equal(outcome.end, input.length);
  });

  test('several informational heads (102, 103 with headers) precede the final head, each with its own headers', () => {
    const input =
      'HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
    const outcome = runAllSplits(input);
    assert.deepEqual(
      outcome.informational.map((h) => [h.statusCode, h.rawHeaders]),
      [
        [102, []],
        [103, ['Link', '</a.css>; rel=preload']],
      ],
    );
    assert.deepEqual(outcome.head?.rawHeaders, ['Transfer-Encoding', 'chunked']);
    assert.equal(outcome.completions, 1);
  });

  test('informational heads are consumed silently when the handler has no onInformational', () => {
    let head: ResponseHead | null = null;
    const parser = new ResponseParser({ onHead: (h) => (head = h), onBody: () => {}, onComplete: () => {} });
    parser.reset('GET');
    parser.execute(bytes('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n'));
    assert.equal((head as ResponseHead | null)?.statusCode, 204);
    assert.equal(parser.complete, true);
  });

  test('a 101 reports an upgrade, completes, and leaves the following bytes to the caller', () => {
    const head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';
    const outcome = runAllSplits(`${head}\x81\x05hello`, { eof: false });
    assert.equal(outcome.head?.upgrade, true);
    assert.equal(outcome.head?.framing, 'none');
    assert.equal(outcome.head?.keepAlive, false);
    assert.equal(outcome.informational.length, 0);
    assert.equal(outcome.completions, 1);
    assert.equal(outcome.end, head.length);
  });

  test('HTTP/1.0 is keep-alive only with Connection: keep-alive and a known length', () => {
    const plain = run('HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx');
    assert.equal(plain.head?.httpMinor, 0);
    assert.equal(plain.head?.keepAlive, false);
    const ka = run('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx');
    assert.equal(ka.head?.keepAlive, true);
    const eofBody = run('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nxyz');
    assert.equal(eofBody.head?.framing, 'eof');
    assert.equal(eofBody.head?.keepAlive, false);
    assert.equal(eofBody.body, 'xyz');
    const closed = run('HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n');
    assert.equal(closed.head?.keepAlive, false);
  });

  test('HTTP/1.1 is keep-alive unless a Connection field lists close', () => {
    const cases: [string, boolean][] = [
      ['Connection: close', false],
      ['Connection: CLOSE', false],
      ['Connection: Upgrade, Close ', false],
      ['Connection: x-trace\r\nConnection: close', false],
      ['Connection: ,, close ,', false],
      ['Connection: closed', true],
      ['Connection: x-close', true],
      ['Connection: keep-alive', true],
      ['X-Connection: close', true],
    ];
    for (const [field, keepAlive] of cases) {
      const outcome = run(`HTTP/1.1 200 OK\r\n${field}\r\nContent-Length: 0\r\n\r\n`);
      assert.equal(outcome.error, null, field);
      assert.equal(outcome.head?.keepAlive, keepAlive, field);
    }
  });

  test('the reason phrase may be empty, missing, or contain spaces, HTAB and 8-bit bytes', () => {
    const cases: [string, string][] = [
      ['HTTP/1.1 200 \r\n', ''],
      ['HTTP/1.1 200\r\n', ''],
      ['HTTP/1.1 404 Not  Found \r\n', 'Not  Found '],
      ['HTTP/1.1 200  OK\r\n', ' OK'],
      ['HTTP/1.1 200 Tr\xe8s\tbien\xff\r\n', 'Tr\xe8s\tbien\xff'],
      ['HTTP/1.1 999 Whatever\r\n', 'Whatever'],
    ];
    for (const [statusLine, reason] of cases) {
      const outcome = runAllSplits(`${statusLine}Content-Length: 0\r\n\r\n`);
      assert.equal(outcome.error, null, statusLine);
      assert.equal(outcome.head?.reason, reason, statusLine);
      assert.equal(outcome.head?.statusCode, Number(statusLine.slice(9, 12)));
    }
    const informational = runAllSplits('HTTP/1.1 100\r\n\r\nHTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n');
    assert.equal(informational.informational[0]?.reason, '');
    assert.equal(informational.head?.reason, '');
  });

  test('header values keep 8-bit bytes as latin1, are trimmed of SP/HTAB, may be empty; names keep their case', () => {
    const outcome = runAllSplits(
      'HTTP/1.1 200 OK\r\nX-Latin: caf\xe9 \x80\xff\r\nX-Trim: \t  a  b \t \r\nX-Empty:\r\nX-Blank:  \t \r\nsEt-CoOkIe: a=b; c\r\n' +
        "x!#$%&'*+-.^_`|~09: tchars\r\nContent-Length: 0\r\n\r\n",
    );
    assert.equal(outcome.error, null);
    assert.deepEqual(outcome.head?.rawHeaders, [
      'X-Latin',
      'caf\xe9 \x80\xff',
      'X-Trim',
      'a  b',
      'X-Empty',
      '',
      'X-Blank',
      '',
      'sEt-CoOkIe',
      'a=b; c',
      "x!#$%&'*+-.^_`|~09",
      'tchars',
      'Content-Length',
      '0',
    ]);
  });

  test('exactly maxHeaderCount headers are accepted', () => {
    const fields = Array.from({ length: 99 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
    const outcome = run(`HTTP/1.1 200 OK\r\n${fields}Content-Length: 0\r\n\r\n`);
    assert.equal(outcome.error, null);
    assert.equal(outcome.head?.rawHeaders.length, 200);
    const custom = run('HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n', { options: { maxHeaderCount: 2 } });
    assert.equal(custom.error, null);
  });

  test('a head of exactly maxHeaderSize bytes is accepted, in one chunk or byte by byte', () => {
    const base = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: \r\n\r\n';
    const input = base.replace('X: ', `X: ${'v'.repeat(100 - base.length)}`);
    assert.equal(input.length, 100);
    const outcome = runAllSplits(input, { options: { maxHeaderSize: 100 } });
    assert.equal(outcome.error, null);
    assert.equal(outcome.completions, 1);
  });

  test('a valid head too large for the fast path (over 8 KiB) is parsed the same way', () => {
    const value = 'v'.repeat(12000);
    const outcome = runAllSplits(`HTTP/1.1 200 OK\r\nX-Big: ${value}\r\nContent-Length: 2\r\n\r\nok`);
    assert.equal(outcome.error, null);
    assert.deepEqual(outcome.head?.rawHeaders, ['X-Big', value, 'Content-Length', '2']);
    assert.equal(outcome.body, 'ok');
  });

  test('Content-Length accepts leading zeros and values up to 2^53-1', () => {
    assert.equal(run('HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n1234567').body, '1234567');
    const max = run('HTTP/1.1 200 OK\r\nContent-Length: 9007199254740991\r\n\r\n', { eof: false });
    assert.equal(max.error, null);
    assert.equal(max.head?.contentLength, Number.MAX_SAFE_INTEGER);
  });

  test('chunk sizes accept 16 hex digits and upper or lower case', () => {
    const outcome = runAllSplits(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n000000000000000a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\n',
    );
    assert.equal(outcome.body, '0123456789abcdefghijk');
    const big = run('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1fffffffffffff\r\nabc', { eof: false });
    assert.equal(big.error, null, '2^53-1 is a valid chunk size');
  });

  test('body chunks are views of the input, not copies', () => {
    const views: Buffer[] = [];
    const parser = new ResponseParser({ onHead() {}, onBody: (b) => views.push(b), onComplete() {} });
    parser.reset('GET');
    const input = bytes(OK_CL);
    parser.execute(input);
    assert.equal(views.length, 1);
    assert.equal(views[0]?.buffer, input.buffer);
    assert.equal(views[0]?.byteOffset, input.byteOffset + OK_CL.length - 5);
  });
});

describe('ResponseParser: framing and rejections', () => {
  const H = 'HTTP/1.1 200 OK\r\n';
  const TE = `${H}Transfer-Encoding: chunked\r\n\r\n`;
  const rejections: [string, string, UpstreamProtocolErrorReason, ResponseParserOptions?][] = [
    // status line
    ['garbage instead of a status line', 'XTTP/1.1 200 OK\r\n\r\n', 'bad-status-line'],
    ['a lowercase protocol name', 'http/1.1 200 OK\r\n\r\n', 'bad-status-line'],
    ['an empty status line', '\r\nHTTP/1.1 200 OK\r\n\r\n', 'bad-status-line'],
    ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', 'bad-status-line'],
    ['a four-digit status', 'HTTP/1.1 2000 OK\r\n\r\n', 'bad-status-line'],
    ['a status below 100', 'HTTP/1.1 099 Low\r\n\r\n', 'bad-status-line'],
    ['two spaces before the status', 'HTTP/1.1  200 OK\r\n\r\n', 'bad-status-line'],
    ['a tab after the version', 'HTTP/1.1\t200 OK\r\n\r\n', 'bad-status-line'],
    ['a tab after the status', 'HTTP/1.1 200\tOK\r\n\r\n', 'bad-status-line'],
    ['no status after the version', 'HTTP/1.1\r\n\r\n', 'bad-status-line'],
    ['a NUL in the reason', 'HTTP/1.1 200 O\x00K\r\n\r\n', 'bad-status-line'],
    ['a DEL in the reason', 'HTTP/1.1 200 O\x7fK\r\n\r\n', 'bad-status-line'],
    ['HTTP/1.2', 'HTTP/1.2 200 OK\r\n\r\n', 'bad-version'],
    ['HTTP/2.0', 'HTTP/2.0 200 OK\r\n\r\n', 'bad-version'],
    ['HTTP/0.9', 'HTTP/0.9 200 OK\r\n\r\n', 'bad-version'],
    ['an extra minor digit', 'HTTP/1.01 200 OK\r\n\r\n', 'bad-version'],
    ['an extra major digit', 'HTTP/11.1 200 OK\r\n\r\n', 'bad-version'],
    // line ends
    ['LF-only line ends', 'HTTP/1.1 200 OK\nContent-Length: 0\n\n', 'bare-lf'],
    ['a bare LF after a header', `${H}A: b\nContent-Length: 0\r\n\r\n`, 'bare-lf'],
    ['a bare LF ending the head', `${H}Content-Length: 0\r\n\n`, 'bare-lf'],
    ['a bare CR after the status line', 'HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n', 'bare-cr'],
    ['CR CR after the status line', 'HTTP/1.1 200 OK\r\r\nContent-Length: 4\r\n\r\nEvil', 'bare-cr'],
    ['headers separated by a bare CR', `${H}Foo: 1\rBar: 2\r\n\r\n`, 'bare-cr'],
    ['the CVE-2025-23167 \\r\\n\\rX terminator', `${H}Content-Length: 0\r\n\rX: y\r\n\r\n`, 'bare-cr'],
    ['a bare CR in a header name', `${H}Fo\ro: 1\r\n\r\n`, 'bare-cr'],
    // names and values
    ['a space before the colon', `${H}Content-Length : 0\r\n\r\n`, 'bad-header-name'],
    ['a tab before the colon', `${H}X\t: 0\r\n\r\n`, 'bad-header-name'],
    ['a space inside a name', `${H}Foo Bar: x\r\n\r\n`, 'bad-header-name'],
    ['an empty name', `${H}: x\r\n\r\n`, 'bad-header-name'],
    ['a line without a colon', `${H}NoColon\r\n\r\n`, 'bad-header-name'],
    ['an 8-bit byte in a name', `${H}Foo\xa0: x\r\n\r\n`, 'bad-header-name'],
    ['a separator in a name', `${H}Fo@o: x\r\n\r\n`, 'bad-header-name'],
    ['a NUL in a value', `${H}X: a\x00b\r\n\r\n`, 'bad-header-value'],
    ['a DEL in a value', `${H}X: a\x7fb\r\n\r\n`, 'bad-header-value'],
    ['a vertical tab in a value', `${H}X: \x0bchunked\r\n\r\n`, 'bad-header-value'],
    ['an ESC at the end of a value', `${H}X: a\x1b\r\n\r\n`, 'bad-header-value'],
    ['obs-fold in a header', `${H}X: a\r\n b\r\n\r\n`, 'obs-fold'],
    ['obs-fold with a tab', `${H}X: a\r\n\tb\r\n\r\n`, 'obs-fold'],
    ['a space at the start of the first header line', `${H} Host: foo\r\n\r\n`, 'obs-fold'],
    // limits
    ['too many headers', `${H}${'X: 1\r\n'.repeat(101)}\r\n`, 'too-many-headers'],
    ['more than maxHeaderCount headers', `${H}A: 1\r\nB: 2\r\nC: 3\r\n\r\n`, 'too-many-headers', { maxHeaderCount: 2 }],
    ['a head over maxHeaderSize', `${H}X: ${'a'.repeat(16384)}\r\n\r\n`, 'headers-too-large'],
    ['a head with no end over maxHeaderSize', `${H}X: ${'a'.repeat(20000)}`, 'headers-too-large'],
    ['a head that never ends', `${H}${'X: 1\r\n'.repeat(3000)}`, 'headers-too-large', { maxHeaderCount: 5000 }],
    // Content-Length
    [
      'Content-Length with Transfer-Encoding',
      `${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`,
      'cl-and-te',
    ],
    [
      'Transfer-Encoding with Content-Length',
      `${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n`,
      'cl-and-te',
    ],
    [
      'equal duplicate Content-Length',
      `${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`,
      'duplicate-content-length',
    ],
    [
      'different duplicate Content-Length',
      `${H}Content-Length: 3\r\ncontent-length: 4\r\n\r\nabc`,
      'duplicate-content-length',
    ],
    ['an empty Content-Length', `${H}Content-Length: \r\n\r\n`, 'bad-content-length'],
    ['a signed Content-Length', `${H}Content-Length: +3\r\n\r\nabc`, 'bad-content-length'],
    ['a negative Content-Length', `${H}Content-Length: -1\r\n\r\n`, 'bad-content-length'],
    ['a hex Content-Length', `${H}Content-Length: 0x3\r\n\r\nabc`, 'bad-content-length'],
    ['a Content-Length with an inner space', `${H}Content-Length: 1 3\r\n\r\n`, 'bad-content-length'],
    ['a Content-Length list', `${H}Content-Length: 3, 3\r\n\r\nabc`, 'bad-content-length'],
    ['a Content-Length of 2^53', `${H}Content-Length: 9007199254740992\r\n\r\n`, 'bad-content-length'],
    ['a 23-digit Content-Length', `${H}Content-Length: 12345678901234567890123\r\n\r\n`, 'bad-content-length'],
    // Transfer-Encoding
    ['Transfer-Encoding gzip', `${H}Transfer-Encoding: gzip\r\n\r\n`, 'bad-transfer-encoding'],
    ['Transfer-Encoding identity', `${H}Transfer-Encoding: identity\r\n\r\n`, 'bad-transfer-encoding'],
    ['Transfer-Encoding chunked, chunked', `${H}Transfer-Encoding: chunked, chunked\r\n\r\n`, 'bad-transfer-encoding'],
    ['Transfer-Encoding ,chunked', `${H}Transfer-Encoding: ,chunked\r\n\r\n`, 'bad-transfer-encoding'],
    ['Transfer-Encoding gzip, chunked', `${H}Transfer-Encoding: gzip, chunked\r\n\r\n`, 'bad-transfer-encoding'],
    ['Transfer-Encoding xchunked', `${H}Transfer-Encoding: xchunked\r\n\r\n`, 'bad-transfer-encoding'],
    ['an empty Transfer-Encoding', `${H}Transfer-Encoding:\r\n\r\n`, 'bad-transfer-encoding'],
    [
      'two Transfer-Encoding fields',
      `${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n`,
      'bad-transfer-encoding',
    ],
    [
      'chunked in an HTTP/1.0 response',
      'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'bad-transfer-encoding',
    ],
    // chunked body
    ['a non-hex chunk size', `${TE}x\r\n`, 'bad-chunk-size'],
    ['a negative chunk size', `${TE}-1\r\n`, 'bad-chunk-size'],
    ['a 0x-prefixed chunk size', `${TE}0x3\r\nabc\r\n0\r\n\r\n`, 'bad-chunk-size'],
    ['a space after the chunk size', `${TE}3 \r\nabc\r\n0\r\n\r\n`, 'bad-chunk-size'],
    ['a space before the chunk size', `${TE} 3\r\nabc\r\n0\r\n\r\n`, 'bad-chunk-size'],
    ['an empty chunk size line', `${TE}\r\n`, 'bad-chunk-size'],
    ['a 17-digit chunk size', `${TE}00000000000000003\r\nabc\r\n0\r\n\r\n`, 'bad-chunk-size'],
    ['a chunk size of 2^53', `${TE}20000000000000\r\n`, 'bad-chunk-size'],
    ['a chunk size overflowing 64 bits', `${TE}ffffffffffffffff\r\n`, 'bad-chunk-size'],
    ['an LF-only chunk size line', `${TE}3\nabc\r\n0\r\n\r\n`, 'bare-lf'],
    ['CR CR after the chunk size', `${TE}5\r\r;ABCD\r\n`, 'bare-cr'],
    ['chunk data not followed by CRLF', `${TE}3\r\nabcX\r\n0\r\n\r\n`, 'bad-chunk-terminator'],
    ['chunk data followed by a bare LF', `${TE}3\r\nabc\n0\r\n\r\n`, 'bad-chunk-terminator'],
    ['chunk data followed by CR and no LF', `${TE}3\r\nabc\rX0\r\n\r\n`, 'bad-chunk-terminator'],
    ['an empty chunk extension', `${TE}3;\r\nabc\r\n0\r\n\r\n`, 'bad-chunk-extension'],
    ['a space before a chunk extension', `${TE}3 ;a\r\nabc\r\n0\r\n\r\n`, 'bad-chunk-size'],
    ['a space inside a chunk extension', `${TE}3; a=b\r\nabc\r\n0\r\n\r\n`, 'bad-chunk-extension'],
    ['an empty chunk extension value', `${TE}3;a=\r\nabc\r\n0\r\n\r\n`, 'bad-chunk-extension'],
    ['an unterminated quoted extension value', `${TE}3;a="b\r\nabc\r\n0\r\n\r\n`, 'bad-chunk-extension'],
    ['text after a quoted extension value', `${TE}3;a="b"c\r\nabc\r\n0\r\n\r\n`, 'bad-chunk-extension'],
    ['a bare CR inside a chunk extension', `${TE}3;a\rb\r\nabc\r\n0\r\n\r\n`, 'bare-cr'],
    ['a bare LF inside a chunk extension', `${TE}3;a\nabc\r\n0\r\n\r\n`, 'bare-lf'],
    ['a chunk extension over 16 KiB', `${TE}3;a=${'x'.repeat(16400)}\r\nabc\r\n0\r\n\r\n`, 'chunk-extension-too-large'],
    [
      'chunk extensions adding up to over 16 KiB in one message',
      `${TE}${`1;a=${'x'.repeat(1000)}\r\nz\r\n`.repeat(17)}0\r\n\r\n`,
      'chunk-extension-too-large',
    ],
    ['a malformed trailer name', `${TE}0\r\nBad Trailer: 1\r\n\r\n`, 'bad-header-name'],
    ['a NUL in a trailer value', `${TE}0\r\nX: \x00\r\n\r\n`, 'bad-header-value'],
    ['obs-fold in a trailer', `${TE}0\r\nX: 1\r\n 2\r\n\r\n`, 'obs-fold'],
    ['a bare LF ending the trailers', `${TE}0\r\nX: 1\r\n\n`, 'bare-lf'],
    ['LF-only line ends after the last chunk', `${TE}0\r\n\n`, 'bare-lf'],
    ['a Content-Length trailer', `${TE}0\r\nContent-Length: 3\r\n\r\n`, 'framing-in-trailers'],
    ['a Transfer-Encoding trailer', `${TE}0\r\nX: 1\r\ntransfer-encoding: chunked\r\n\r\n`, 'framing-in-trailers'],
    ['trailers over maxHeaderSize', `${TE}0\r\nX: ${'a'.repeat(16384)}\r\n\r\n`, 'trailers-too-large'],
    ['trailers that never end', `${TE}0\r\n${'X: 1\r\n'.repeat(3000)}`, 'trailers-too-large'],
    // EOF
    ['an empty reply', '', 'premature-eof'],
    ['a head cut short', 'HTTP/1.1 200 OK\r\nContent-Le', 'premature-eof'],
    ['a head missing its empty line', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n', 'premature-eof'],
    ['a head with a bare CR and no LF', 'HTTP/1.1 200 OK\rX', 'premature-eof'],
    ['a Content-Length body cut short', `${H}Content-Length: 10\r\n\r\nabc`, 'premature-eof'],
    ['a chunked body cut inside a chunk', `${TE}5\r\nab`, 'premature-eof'],
    ['a chunked body cut before the last chunk', `${TE}5\r\nabcde\r\n`, 'premature-eof'],
    ['a chunked body cut inside a chunk size line', `${TE}5;a=`, 'premature-eof'],
    ['a chunked body cut inside the trailers', `${TE}0\r\nX: 1\r\n`, 'premature-eof'],
    ['a chunked body cut after the last chunk', `${TE}0\r\n`, 'premature-eof'],
  ];

  for (const [what, input, reason, options] of rejections) {
    test(`rejects ${what} with ${reason}, however the bytes are split`, () => {
      expectReject(input, reason, options ? { options } : {});
    });
  }

  test('a head of maxHeaderSize + 1 bytes is rejected even when its lines are valid', () => {
    const base = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: \r\n\r\n';
    const input = base.replace('X: ', `X: ${'v'.repeat(101 - base.length)}`);
    assert.equal(input.length, 101);
    expectReject(input, 'headers-too-large', { options: { maxHeaderSize: 100 } });
  });

  test('a head that reaches maxHeaderSize without ending is rejected at once, not at EOF', () => {
    const partial = 'HTTP/1.1 200 OK\r\nX: ';
    const noLineEnd = partial + 'a'.repeat(64 - partial.length);
    const lineEndsAtLimit = `${partial}${'a'.repeat(62 - partial.length)}\r\n`;
    for (const input of [noLineEnd, lineEndsAtLimit]) {
      assert.equal(input.length, 64);
      expectReject(input, 'headers-too-large', { options: { maxHeaderSize: 64 } });
      const open = run(input, { eof: false, options: { maxHeaderSize: 64 }, cuts: everyByte(64) });
      assert.equal(open.error?.reason, 'headers-too-large');
    }
  });

  test('a malformed line within the size limit is reported before the size overflow', () => {
    expectReject(`HTTP/1.1 200 OK\r\nBad Name: 1\r\nX: ${'a'.repeat(200)}\r\n\r\n`, 'bad-header-name', {
      options: { maxHeaderSize: 100 },
    });
  });

  test('an LF-only head is rejected at once, without waiting for more bytes or EOF', () => {
    const outcome = run('HTTP/1.1 200 OK\nContent-Length: 0\n\n', { eof: false });
    assert.equal(outcome.error?.reason, 'bare-lf');
    assert.equal(outcome.error?.during, 'execute');
  });

  test('the parser is dead after an error until reset, then parses the next exchange', () => {
    const rec = new Recorder();
    const parser = new ResponseParser(rec);
    parser.reset('GET');
    let first: unknown;
    assert.throws(
      () => parser.execute(bytes('HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n')),
      (e: unknown) => {
        first = e;
        return e instanceof UpstreamProtocolError && e.reason === 'bad-content-length';
      },
    );
    assert.throws(
      () => parser.execute(bytes(OK_CL)),
      (e: unknown) => e === first,
    );
    assert.throws(
      () => parser.finish(),
      (e: unknown) => e === first,
    );
    assert.equal(run(OK_CL, {}, parser, rec).body, 'hello');
  });

  test('UpstreamProtocolError carries a permanent code, the router source and is not retryable', () => {
    const error = new UpstreamProtocolError('excess-data');
    assert.ok(error instanceof Error);
    assert.equal(error.code, 'SY_UPSTREAM_BAD_RESPONSE');
    assert.equal(error.source, 'router');
    assert.equal(error.retryable, false);
    assert.equal(error.reason, 'excess-data');
    assert.equal(error.name, 'UpstreamProtocolError');
    assert.ok(error instanceof RouterError);
    assert.equal(statusForError(error), 502);
  });

  test('invalid options are refused', () => {
    const sink: ResponseParserHandler = { onHead() {}, onBody() {}, onComplete() {} };
    assert.throws(() => new ResponseParser(sink, { maxHeaderSize: 0 }), RangeError);
    assert.throws(() => new ResponseParser(sink, { maxHeaderSize: Number.NaN }), RangeError);
    assert.throws(() => new ResponseParser(sink, { maxHeaderCount: -1 }), RangeError);
  });
});

describe('ResponseParser: message boundaries and reuse', () => {
  test('bytes after a complete keep-alive response are not consumed and are reported by the return value', () => {
    const rec = new Recorder();
    const parser = new ResponseParser(rec);
    parser.reset('GET');
    const input = bytes(`${OK_CL}HTTP/1.1 200 OK\r\n`);
    const consumed = parser.execute(input);
    assert.equal(consumed, OK_CL.length);
    assert.equal(parser.complete, true);
    assert.equal(rec.completions, 1);
    // The caller decides: leftover bytes on a keep-alive connection are a protocol violation.
    assert.equal(parser.execute(bytes('more')), 0, 'nothing more is consumed once complete');
    assert.equal(rec.completions, 1);
    parser.finish();
    assert.equal(rec.completions, 1, 'finish() after completion is a no-op');
  });

  test('the return value is the end of a chunked message even with bytes after the trailers', () => {
    assert.equal(run(`${CHUNKED}garbage`, { eof: false }).end, CHUNKED.length);
  });

  test('headReceived and complete follow the exchange', () => {
    const parser = new ResponseParser(new Recorder());
    parser.reset('GET');
    assert.equal(parser.headReceived, false);
    parser.execute(bytes('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Le'));
    assert.equal(parser.headReceived, false, 'an informational head is not the head');
    parser.execute(bytes('ngth: 3\r\n\r\nab'));
    assert.equal(parser.headReceived, true);
    assert.equal(parser.complete, false);
    parser.execute(bytes('c'));
    assert.equal(parser.complete, true);
    parser.reset('GET');
    assert.equal(parser.headReceived, false);
    assert.equal(parser.complete, false);
  });

  test('a handler that resets the parser from onComplete stops the current execute at the message end', () => {
    let parser: ResponseParser | null = null;
    const heads: number[] = [];
    parser = new ResponseParser({
      onHead: (h) => heads.push(h.statusCode),
      onBody() {},
      onComplete: () => parser?.reset('GET'),
    });
    parser.reset('GET');
    const input = bytes(`${OK_CL}HTTP/1.1 204 No Content\r\n\r\n`);
    const consumed = parser.execute(input);
    assert.equal(consumed, OK_CL.length);
    assert.deepEqual(heads, [200]);
    assert.equal(parser.execute(input.subarray(consumed)), input.length - consumed);
    assert.deepEqual(heads, [200, 204]);
  });

  test('a handler that resets the parser from onHead abandons the exchange and leaves the parser ready', () => {
    const rec = new Recorder();
    let abandon = true;
    const parser = new ResponseParser({
      onHead(head) {
        rec.onHead(head);
        if (abandon) parser.reset('GET');
      },
      onBody: (b) => rec.onBody(b),
      onComplete: () => rec.onComplete(),
    });
    parser.reset('GET');
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n';
    assert.equal(parser.execute(bytes(`${head}hello`)), head.length);
    assert.equal(rec.completions, 0);
    assert.equal(parser.complete, false);
    abandon = false;
    rec.clear();
    parser.execute(bytes(OK_CL));
    assert.equal(rec.head?.statusCode, 200);
    assert.equal(rec.body.join(''), 'hello');
    assert.equal(parser.complete, true);
  });

  test('one parser serves 1000 sequential exchanges read from one stream in random pieces', () => {
    const kinds: [string, string][] = [
      ['GET', OK_CL],
      ['GET', CHUNKED],
      ['HEAD', 'HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n'],
      ['GET', 'HTTP/1.1 204 No Content\r\nX: y\r\n\r\n'],
      ['GET', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew'],
      ['GET', 'HTTP/1.1 304 Not Modified\r\nETag: "1"\r\n\r\n'],
      ['POST', `HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n${'b'.repeat(300)}`],
    ];
    const random = prng(7);
    const plan = Array.from({ length: 1000 }, () => kinds[Math.floor(random() * kinds.length)]!);
    const expected = plan.map(([method, text]) => run(text, { method, eof: false }));
    const stream = bytes(plan.map(([, text]) => text).join(''));

    const rec = new Recorder();
    const parser = new ResponseParser(rec);
    const seen: { head: ResponseHead | null; body: string; informational: number }[] = [];
    let exchange = 0;
    parser.reset(plan[0]![0]);
    let at = 0;
    while (at < stream.length) {
      const size = 1 + Math.floor(random() * 700);
      let piece = stream.subarray(at, at + size);
      at += piece.length;
      while (piece.length > 0) {
        const n = parser.execute(piece);
        if (!parser.complete) {
          assert.equal(n, piece.length);
          break;
        }
        seen.push({ head: rec.head, body: rec.body.join(''), informational: rec.informational.length });
        rec.clear();
        piece = piece.subarray(n);
        if (++exchange < plan.length) parser.reset(plan[exchange]![0]);
      }
    }
    assert.equal(seen.length, 1000);
    seen.forEach((got, i) => {
      assert.deepEqual(got.head, expected[i]?.head, `exchange ${i}`);
      assert.equal(got.body, expected[i]?.body, `exchange ${i}`);
      assert.equal(got.informational, expected[i]?.informational.length, `exchange ${i}`);
    });
    assert.notEqual(seen[0]?.head?.rawHeaders, seen[1]?.head?.rawHeaders, 'each head has its own header array');
  });
});

describe('ResponseParser: randomized input', () => {
  const corpus: [string, string][] = [
    ['GET', OK_CL],
    ['GET', CHUNKED],
    ['GET', 'HTTP/1.0 200 OK\r\nServer: uwsgi\r\n\r\nbody until close'],
    ['GET', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody'],
    ['HEAD', 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n'],
    ['GET', 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n'],
    ['GET', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00'],
    [
      'GET',
      'HTTP/1.1 103 Early Hints\r\nLink: <x>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a="b"\r\nabc\r\n0\r\nT: 1\r\n\r\n',
    ],
    ['GET', 'HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\nContent-Length: 2\r\nX-Bin: \xe9\xff\r\n\r\nno'],
  ];
  const tokens = [
    '\r\n',
    '\r',
    '\n',
    ' ',
    '\t',
    '\x00',
    '\x7f',
    '\x80',
    '\xff',
    ':',
    ';',
    '=',
    '"',
    '\\',
    ',',
    '0',
    '9',
    'a',
    'F',
    '-',
    'Content-Length: 3\r\n',
    'Content-Length: 0\r\n',
    'Transfer-Encoding: chunked\r\n',
    'Connection: close\r\n',
    '0\r\n\r\n',
    '5\r\nhello\r\n',
    '\r\n\r\n',
    'HTTP/1.1 200 OK\r\n',
    'HTTP/1.1 100 Continue\r\n\r\n',
  ];

  function mutate(random: () => number, text: string): string {
    let s = text;
    const edits = 1 + Math.floor(random() * 3);
    for (let k = 0; k < edits; k++) {
      const at = Math.floor(random() * (s.length + 1));
      const token = tokens[Math.floor(random() * tokens.length)]!;
      switch (Math.floor(random() * 6)) {
        case 0:
          s = s.slice(0, at) + token + s.slice(at);
          break;
        case 1:
          s = s.slice(0, at) + token + s.slice(at + token.length);
          break;
        case 2:
          s = s.slice(0, at) + s.slice(at + 1 + Math.floor(random() * 4));
          break;
        case 3:
          s = s.slice(0, at);
          break;
        case 4: {
          const c = s.charCodeAt(at);
          if (c >= 65 && c <= 122) s = s.slice(0, at) + String.fromCharCode(c ^ 0x20) + s.slice(at + 1);
          break;
        }
        default: {
          const len = Math.floor(random() * 20);
          s = s.slice(0, at) + s.slice(at, at + len).repeat(2) + s.slice(at + len);
        }
      }
    }
    return s;
  }

  test('20000 random and mutated responses end in a completion or an UpstreamProtocolError, however split', () => {
    const random = prng(20260101);
    const reasons = new Map<string, number>();
    let completed = 0;
    for (let i = 0; i < 20000; i++) {
      let text: string;
      let method = 'GET';
      if (random() < 0.05) {
        text = Array.from({ length: Math.floor(random() * 60) }, () =>
          String.fromCharCode(Math.floor(random() * 256)),
        ).join('');
      } else {
        const [m, base] = corpus[Math.floor(random() * corpus.length)]!;
        method = random() < 0.1 ? 'HEAD' : m;
        text = mutate(random, base);
      }
      const input = bytes(text);
      const options = random() < 0.2 ? { maxHeaderSize: 40 + Math.floor(random() * 80), maxHeaderCount: 3 } : undefined;
      const opts: RunOptions = options ? { method, options } : { method };
      // Random splits (which take the exact line parser) must agree with one-shot feeding (mostly the
      // regex fast path); checked on every other case to keep the file fast.
      const whole = run(input, i % 2 === 0 ? opts : { ...opts, cuts: randomCuts(random, input.length) });
      if (i % 2 === 0) {
        const split = run(input, { ...opts, cuts: randomCuts(random, input.length) });
        assert.deepEqual(split, whole, `case ${i}: ${JSON.stringify(text)}`);
      }
      // Every input ends in a decision: a completed message or a coded error.
      assert.ok((whole.completions === 1) !== (whole.error !== null), `case ${i}: ${JSON.stringify(text)}`);
      assert.ok(whole.end <= input.length);
      if (whole.error) reasons.set(whole.error.reason, (reasons.get(whole.error.reason) ?? 0) + 1);
      else {
        completed++;
        const head = whole.head!;
        if (head.framing === 'length') assert.equal(whole.body.length, head.contentLength, `case ${i}`);
        if (head.framing === 'none') assert.equal(whole.body, '', `case ${i}`);
        if (head.framing === 'eof') assert.equal(whole.end, input.length, `case ${i}`);
      }
    }
    // The mutations must exercise both outcomes and many rules, or this test proves little.
    assert.ok(completed > 2000, `completed ${completed}`);
    assert.ok(reasons.size >= 14, `reasons seen: ${[...reasons.keys()].join(', ')}`);
  });
});
