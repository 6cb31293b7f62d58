// Demo HTTP backend for docker-compose: answers every request with the container's hostname.
// PORT (default 3000). Stops cleanly on SIGTERM/SIGINT.
import http from 'node:http';
import os from 'node:os';

const port = Number(process.env.PORT ?? 3000);
const server = http.createServer((req, res) => {
  const body = `hello from node-backend ${os.hostname()} (${req.method} ${req.url}, Host: ${req.headers.host ?? '-'})\n`;
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(port, '0.0.0.0', () => {
  process.stdout.write(`demo-backend: listening on 0.0.0.0:${port} as ${os.hostname()}\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
