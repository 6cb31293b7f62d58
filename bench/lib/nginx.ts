/**
 * nginx configurations for the bench, written into a temp dir (pid, logs and temp paths inside it,
 * `daemon off`, 127.0.0.1 only, 1 worker, access log off):
 * - the backend: one server per port answering `GET /` with a tiny fixed body (`ok\n`, 3 bytes) and
 *   `GET /16k` with a fixed 16 KiB file;
 * - the reference proxy: one listener, an upstream of the backends with `keepalive 64`, HTTP/1.1 to them,
 *   X-Forwarded-For appended (the same work the Node proxies do).
 * Both lift nginx's 1000-requests-per-connection default so no variant pays reconnects the others don't.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const TINY_BODY = 'ok\n';
export const LARGE_BODY_SIZE = 16 * 1024;

export function nginxAvailable(): boolean {
  return spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status === 0;
}

export function nginxVersion(): string {
  const r = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  return (r.stderr ?? '').trim().replace(/^nginx version: /, '') || 'nginx (unknown version)';
}

function commonHead(dir: string, name: string): string {
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}daemon off;
worker_processes 1;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}-error.log`)} warn;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${join(dir, `${name}-body`)};
  proxy_temp_path ${join(dir, `${name}-proxy`)};
  fastcgi_temp_path ${join(dir, `${name}-fastcgi`)};
  uwsgi_temp_path ${join(dir, `${name}-uwsgi`)};
  scgi_temp_path ${join(dir, `${name}-scgi`)};
  keepalive_requests 10000000;
  keepalive_timeout 60s;
`;
}

/** Writes the backend config and its 16 KiB file; returns the config path. */
export function writeBackendConfig(dir: string, ports: readonly number[]): string {
  const large = join(dir, '16k.bin');
  writeFileSync(large, Buffer.alloc(LARGE_BODY_SIZE, 'x'));
  const servers = ports
    .map(
      (port) => `  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    location = / { default_type text/plain; return 200 "${TINY_BODY.replace('\n', '\\n')}"; }
    location = /16k { default_type application/octet-stream; alias ${large}; }
  }`,
    )
    .join('\n');
  const path = join(dir, 'backend.conf');
  writeFileSync(path, `${commonHead(dir, 'backend')}  sendfile on;\n  tcp_nopush on;\n${servers}\n}\n`);
  return path;
}

/** Writes the reference reverse-proxy config; returns its path. */
export function writeProxyConfig(
  dir: string,
  listenPort: number,
  backendPorts: readonly number[],
  tag: string,
): string {
  const upstreams = backendPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n');
  const path = join(dir, `proxy-${tag}.conf`);
  writeFileSync(
    path,
    `${commonHead(dir, `proxy-${tag}`)}  upstream backends {
${upstreams}
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${listenPort} backlog=4096;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering on;
    }
  }
}
`,
  );
  return path;
}

/** argv for `nginx` running `conf` in the foreground with `dir` as prefix. */
export function nginxArgs(dir: string, conf: string): string[] {
  return ['-p', dir, '-c', conf, '-e', join(dir, 'startup-error.log')];
}
