// The plain Node ceiling proxy: the reference every Switchyard number is divided by.
// node:http server + http.request through one keep-alive http.Agent, bodies piped both ways,
// hop-by-hop headers (and names listed in Connection) dropped both ways, X-Forwarded-For appended,
// round-robin over the backends, one counter per Host. No timeouts, limits, upgrades, logging or TLS:
// a ceiling, not a product (see /work/shared/reference/node-proxy-performance.md, "plain Node").
//
//   node bench/plain-node-proxy.js --listen 127.0.0.1:8000 --backend http://127.0.0.1:9001 [--backend ...]
//
// Prints `listening <host>:<port>` on stdout once accepting. SIGTERM/SIGINT close it.
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { listen: { type: 'string' }, backend: { type: 'string', multiple: true } },
  strict: true,
});
const listen = values.listen ?? '127.0.0.1:0';
const backends = (values.backend ?? []).map((u) => {
  const url = new URL(u);
  return { hostname: url.hostname, port: Number(url.port || 80) };
});
if (backends.length === 0) {
  process.stderr.write('plain-node-proxy: at least one --backend http://host:port is required\n');
  process.exit(2);
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Copies headers minus hop-by-hop ones and the names listed in Connection. */
function endToEnd(headers) {
  const out = {};
  const connection = headers.connection;
  const listed = connection ? new Set(connection.toLowerCase().split(/\s*,\s*/)) : undefined;
  for (const name of Object.keys(headers)) {
    if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = headers[name];
  }
  return out;
}

const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 1024 });
/** Host → next backend index (round-robin per Host). */
const cursors = new Map();

const server = http.createServer((req, res) => {
  const host = req.headers.host ?? '';
  const i = cursors.get(host) ?? 0;
  cursors.set(host, (i + 1) % backends.length);
  const backend = backends[i];
  const headers = endToEnd(req.headers);
  const peer = req.socket.remoteAddress ?? '';
  const xff = req.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = xff ? `${xff}, ${peer}` : peer;
  const upstream = http.request({
    agent,
    hostname: backend.hostname,
    port: backend.port,
    method: req.method,
    path: req.url,
    headers,
  });
  upstream.on('response', (up) => {
    res.writeHead(up.statusCode ?? 502, up.statusMessage, endToEnd(up.headers));
    up.pipe(res);
  });
  upstream.on('error', () => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-length': '0' });
      res.end();
    } else {
      res.destroy();
    }
  });
  req.pipe(upstream);
});

const colon = listen.lastIndexOf(':');
server.listen(Number(listen.slice(colon + 1)), listen.slice(0, colon).replace(/^\[|\]$/g, ''), () => {
  const a = server.address();
  process.stdout.write(`listening ${a.address}:${a.port}\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close();
    server.closeAllConnections();
    agent.destroy();
  });
}
