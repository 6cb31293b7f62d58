/**
 * Bounded randomized test: valid request heads are mutated (byte flips, insertions of CR / LF / NUL /
 * SP / HTAB / `,` / `:`, duplicated or dropped header lines, altered lengths) and sent through the
 * router to a counting backend, and to a plain Node server as the reference for how the bytes parse.
 * Oracles, for every case:
 *  - no crash and no hang: each connection ends by itself within the timeouts;
 *  - every response is proxied (X-Backend) or a coded 4xx / 505 with an SY_* code, never truncated;
 *  - framing never diverges: the requests the node received completely are a prefix of the reference's
 *    (same method, same target for origin-form, byte-identical body), so the router forwarded nothing
 *    the client did not send and framed each body exactly as its own parser decided.
 * Deterministic per seed (FUZZ_SEED); FUZZ_CASES sets the count (default 800, about 10 s).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { httpNode, startRouter } from './helpers.js';
import { type RawResult, rawExchange } from './raw-client.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const CASES = Number(process.env.FUZZ_CASES ?? 800);
const LANES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'] as const;

/** mulberry32: small, fast, deterministic. */
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

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly body: Buffer;
  /** The parser completed the request (the whole body arrived). */
  readonly complete: boolean;
}

/** Bodies carry a request: if framing were ever confused, the node would see it (as case `id`). */
const bait = (id: number) => `GET /smuggled HTTP/1.1\r\nHost: alpha.test\r\nX-Case: ${caseTag(id)}\r\n\r\n`;

/** `id.check`: a mutated X-Case (a flipped digit) no longer names another case. */
function caseTag(id: number): string {
  return `${id}.${(Math.imul(id + 1, 2654435761) >>> 8) % 1_000_000}`;
}

function templates(host: string, id: number): string[] {
  const h = `Host: ${host}.test\r\nX-Case: ${caseTag(id)}\r\n`;
  const body = `data-${id}-${bait(id)}`;
  const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  return [
    `GET /fz/${id}?q=1 HTTP/1.1\r\n${h}Accept: */*\r\nX-List: a, b\r\n\r\n`,
    `POST /fz/${id} HTTP/1.1\r\n${h}Content-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    `POST /fz/${id} HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\n${chunked}`,
    `GET /fz/${id}/a HTTP/1.1\r\n${h}\r\nPOST /fz/${id}/b HTTP/1.1\r\n${h}Content-Length: ${body.length}\r\n\r\n${body}`,
    `GET /fz/${id} HTTP/1.0\r\n${h}Connection: keep-alive\r\n\r\n`,
    `PUT /fz/${id} HTTP/1.1\r\n${h}Content-Length: 5\r\nConnection: close\r\n\r\nhello`,
  ];
}

const INSERTS = ['\r', '\n', '\0', ' ', '\t', ',', ':', '\r\n', '\r\n\r\n', '\x0b', '\x7f', '\xff'];

function mutate(input: string, random: () => number): string {
  let s = input;
  const headEnd = Math.max(s.indexOf('\r\n\r\n'), 1);
  const count = 1 + Math.floor(random() * 3);
  for (let m = 0; m < count; m++) {
    // Mostly inside the head, where framing is decided.
    const span = random() < 0.85 ? headEnd + 4 : s.length;
    const at = Math.floor(random() * Math.min(span, s.length));
    const kind = Math.floor(random() * 6);
    if (kind === 0) {
      const flipped = String.fromCharCode(s.charCodeAt(at) ^ (1 << Math.floor(random() * 8)));
      s = s.slice(0, at) + flipped + s.slice(at + 1);
    } else if (kind === 1) {
      s = s.slice(0, at) + INSERTS[Math.floor(random() * INSERTS.length)]! + s.slice(at);
    } else if (kind === 2) {
      const lines = s.slice(0, headEnd).split('\r\n');
      const i = 1 + Math.floor(random() * Math.max(lines.length - 1, 1));
      if (lines[i] !== undefined) lines.splice(i, 0, lines[i]!);
      s = lines.join('\r\n') + s.slice(headEnd);
    } else if (kind === 3) {
      s = s.slice(0, at) + s.slice(at + 1);
    } else if (kind === 4) {
      s = s.replace(/Content-Length: \d+/, () => `Content-Length: ${Math.floor(random() * 120)}`);
    } else {
      const lines = s.slice(0, headEnd).split('\r\n');
      const i = 1 + Math.floor(random() * Math.max(lines.length - 1, 1));
      lines.splice(i, 1);
      s = lines.join('\r\n') + s.slice(headEnd);
    }
  }
  return s;
}

/**
 * A server that records the requests of each connection in order, keyed by the client's port and by
 * X-Case; a request counts once Node's parser completed it (its body ended), whatever happens after.
 */
async function recordingServer(
  respond: (res: http.ServerResponse) => void,
): Promise<{ server: http.Server; port: number; byPort: Map<number, Seen[]>; byCase: Map<number, Seen[]> }> {
  const byPort = new Map<number, Seen[]>();
  const byCase = new Map<number, Seen[]>();
  const server = http.createServer({ requireHostHeader: false }, (req, res) => {
    const chunks: Buffer[] = [];
    const seen: Seen = {
      method: req.method ?? '',
      url: req.url ?? '',
      get body() {
        return Buffer.concat(chunks);
      },
      get complete() {
        return req.complete;
      },
    };
    const remotePort = req.socket.remotePort ?? 0;
    byPort.set(remotePort, [...(byPort.get(remotePort) ?? []), seen]);
    const tag = /^(\d+)\.\d+$/.exec(String(req.headers['x-case'] ?? ''));
    const id = tag === null ? -1 : Number(tag[1]);
    if (id >= 0 && caseTag(id) === req.headers['x-case']) byCase.set(id, [...(byCase.get(id) ?? []), seen]);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => respond(res));
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, byPort, byCase };
}

/** Sends `bytes` to the reference server and returns what it parsed as complete requests. */
async function reference(port: number, bytes: string, servers: Map<number, Seen[]>): Promise<Seen[]> {
  const result = await rawExchange(port, bytes, { timeoutMs: 1500, endAfterWrite: true });
  await new Promise((r) => setImmediate(r));
  return (servers.get(result.localPort ?? -1) ?? []).filter((r) => r.complete);
}

describe('randomized request mutations through the router', () => {
  test(`${CASES} mutated requests (seed ${SEED}): no crash, no hang, coded answers, no framing divergence`, async (t) => {
    const random = prng(SEED);
    const backend = await recordingServer((res) => {
      res.writeHead(200, { 'X-Backend': 'yes' });
      res.end('ok');
    });
    const ref = await recordingServer((res) => res.end('ref'));
    const { router, port } = await startRouter({
      headersTimeoutMs: 400,
      bodyTimeoutMs: 400,
      keepAliveTimeoutMs: 200,
      maxBodySize: 4096,
    });
    const outcomes = new Map<string, number>();
    const failures: string[] = [];
    try {
      for (const lane of LANES) router.upsertNode(httpNode(`${lane}.test`, `127.0.0.1:${backend.port}`));
      let next = 0;
      const runLane = async (lane: string): Promise<void> => {
        while (next < CASES) {
          const id = next++;
          const pick = templates(lane, id);
          const bytes = mutate(pick[Math.floor(random() * pick.length)]!, random);
          const keepOpen = random() < 0.1;
          const head = /^\s*HEAD /.test(bytes);
          const result = await rawExchange(port, bytes, { timeoutMs: 3000, endAfterWrite: !keepOpen, head });
          const expected = await reference(ref.port, bytes, ref.byPort);
          const received = (backend.byCase.get(id) ?? []).filter((r) => r.complete);
          const problem = check(result, expected, received);
          const key = result.responses.map((r) => r.code ?? r.status).join('+') || `no-response/${result.ending}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          if (problem !== undefined) failures.push(`case ${id} ${JSON.stringify(bytes)}: ${problem}`);
        }
      };
      await Promise.all(LANES.map((lane) => runLane(lane)));
    } finally {
      await router.close();
      backend.server.closeAllConnections();
      backend.server.close();
      ref.server.closeAllConnections();
      ref.server.close();
    }
    const summary = [...outcomes.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);
    t.diagnostic(`outcomes: ${JSON.stringify(summary)}`);
    assert.deepEqual(failures.slice(0, 5), [], `seed ${SEED}; outcomes ${JSON.stringify(summary)}`);
    // The mutations must exercise both sides: some requests proxied, some refused.
    assert.ok((outcomes.get('200') ?? 0) + [...outcomes.keys()].filter((k) => k.startsWith('200+')).length > 0);
    assert.ok([...outcomes.keys()].some((k) => k.startsWith('SY_BAD_REQUEST')));
  });
});

/** The oracles for one case; a description of the first violation, or undefined. */
function check(result: RawResult, expected: Seen[], received: Seen[]): string | undefined {
  if (result.ending === 'timeout') return 'the router did not end the connection';
  const closing = result.responses.findIndex((r) => r.headers.connection === 'close');
  if (closing >= 0 && closing < result.responses.length - 1) return 'a response after a Connection: close response';
  for (const response of result.responses) {
    const proxied = response.headers['x-backend'] === 'yes';
    const coded = /^SY_[A-Z_]+$/.test(response.code ?? '');
    const allowed =
      proxied || (coded && ((response.status >= 400 && response.status < 500) || response.status === 505));
    if (!allowed) return `unexpected response ${response.rawHead.split('\r\n')[0]} ${response.code ?? ''}`;
  }
  if (result.rest.length > 0 && result.ending === 'end' && result.responses.every((r) => r.status < 500)) {
    return `trailing bytes ${JSON.stringify(result.rest.toString('latin1').slice(0, 80))}`;
  }
  // What the node received (the requests still carrying this case's X-Case) must be, in order, among
  // what the parser saw in the client's bytes: same method, same origin-form target, same body bytes.
  let j = 0;
  for (const [i, got] of received.entries()) {
    while (j < expected.length && !same(got, expected[j]!)) j++;
    if (j === expected.length) {
      return `node request ${i} (${got.method} ${got.url}, ${got.body.length} body bytes) is not among the ${expected.length} the parser saw`;
    }
    j++;
  }
  return undefined;
}

function same(got: Seen, want: Seen): boolean {
  return (
    got.method === want.method && (!want.url.startsWith('/') || got.url === want.url) && got.body.equals(want.body)
  );
}
