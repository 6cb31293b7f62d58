// The plain Node floor for uwsgi nodes: the least a Node.js process can do to route HTTP to uwsgi nodes,
// so bench/uwsgi-router.ts can show how much of the gap to uWSGI's router (C) is the runtime's.
// node:http server (keep-alive clients); per request one net.Socket to the next node (round-robin; uWSGI
// nodes close after every response), the uwsgi vars uWSGI's router sends, the response collected until
// the node closes, then one writeHead + end to the client. No streaming, limits, timeouts, retries, error
// pages or header hygiene: a floor, not a product.
//
//   node bench/plain-node-uwsgi-proxy.js --listen 127.0.0.1:8000 --node 127.0.0.1:3031 [--node ...]
//
// Prints `listening <host>:<port>` on stdout once accepting. SIGTERM/SIGINT close it.
import http from 'node:http';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { listen: { type: 'string' }, node: { type: 'string', multiple: true } },
  strict: true,
});
const listen = values.listen ?? '127.0.0.1:0';
const nodes = (values.node ?? []).map((address) => {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
});
if (nodes.length === 0) {
  process.stderr.write('plain-node-uwsgi-proxy: at least one --node host:port is required\n');
  process.exit(2);
}

/** The uwsgi packet: 4-byte header (modifier1 0, little-endian size, modifier2 0), then key/value pairs. */
function uwsgiPacket(req, serverPort) {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const vars = [
    ['REQUEST_METHOD', req.method ?? 'GET'],
    ['REQUEST_URI', url],
    ['PATH_INFO', decodeURIComponent(q === -1 ? url : url.slice(0, q))],
    ['QUERY_STRING', q === -1 ? '' : url.slice(q + 1)],
    ['SERVER_PROTOCOL', `HTTP/${req.httpVersion}`],
    ['SERVER_NAME', 'localhost'],
    ['SERVER_PORT', String(serverPort)],
    ['REMOTE_ADDR', req.socket.remoteAddress ?? ''],
    ['REMOTE_PORT', String(req.socket.remotePort ?? 0)],
  ];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toUpperCase().replaceAll('-', '_');
    if (name === 'CONTENT_LENGTH' || name === 'CONTENT_TYPE') vars.push([name, raw[i + 1]]);
    else vars.push([`HTTP_${name}`, raw[i + 1]]);
  }
  let size = 0;
  for (const [k, v] of vars) size += 4 + Buffer.byteLength(k) + Buffer.byteLength(v);
  const packet = Buffer.allocUnsafe(4 + size);
  packet[0] = 0;
  packet.writeUInt16LE(size, 1);
  packet[3] = 0;
  let at = 4;
  for (const [k, v] of vars) {
    const kl = packet.write(k, at + 2, 'latin1');
    packet.writeUInt16LE(kl, at);
    at += 2 + kl;
    const vl = packet.write(v, at + 2, 'utf8');
    packet.writeUInt16LE(vl, at);
    at += 2 + vl;
  }
  return packet;
}

/** Splits a complete raw HTTP response into status, headers and body. */
function parseResponse(bytes) {
  const end = bytes.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const lines = bytes.toString('latin1', 0, end).split('\r\n');
  const status = Number(lines[0].slice(9, 12));
  const headers = [];
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':');
    const name = lines[i].slice(0, colon);
    const lower = name.toLowerCase();
    if (lower === 'connection' || lower === 'keep-alive' || lower === 'transfer-encoding') continue;
    headers.push(name, lines[i].slice(colon + 1).trim());
  }
  return { status, headers, body: bytes.subarray(end + 4) };
}

let next = 0;
const server = http.createServer((req, res) => {
  const node = nodes[next];
  next = (next + 1) % nodes.length;
  const chunks = [];
  const socket = net.connect(node.port, node.host);
  socket.setNoDelay(true);
  socket.write(uwsgiPacket(req, server.address().port));
  req.pipe(socket, { end: false });
  socket.on('data', (chunk) => chunks.push(chunk));
  socket.on('error', () => {
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
  });
  socket.on('end', () => {
    const response = parseResponse(Buffer.concat(chunks));
    if (response === undefined) {
      res.writeHead(502).end();
      return;
    }
    res.writeHead(response.status, response.headers);
    res.end(response.body);
  });
});

const i = listen.lastIndexOf(':');
server.listen(Number(listen.slice(i + 1)), listen.slice(0, i), () => {
  const a = server.address();
  process.stdout.write(`listening ${a.address}:${a.port}\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
