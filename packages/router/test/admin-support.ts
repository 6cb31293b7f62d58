/** Helpers for admin API tests: a router + admin server on 127.0.0.1 port 0, and a JSON client. */
import http from 'node:http';
import { AdminServer, type AdminServerOptions, type AdminTokens, Router, type RouterOptions } from '../src/index.js';

export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
export const READ_TOKEN = 'read-token-0123456789abcdef';

export interface AdminRig {
  readonly router: Router;
  readonly admin: AdminServer;
  readonly httpPort: number;
  readonly adminPort: number;
  close(): Promise<void>;
}

export async function startAdminRig(
  options: { tokens?: AdminTokens; router?: Partial<RouterOptions>; admin?: Partial<AdminServerOptions> } = {},
): Promise<AdminRig> {
  const router = new Router({ http: ['127.0.0.1:0'], ...options.router });
  const admin = new AdminServer({
    listen: '127.0.0.1:0',
    router,
    ready: () => true,
    ...(options.tokens === undefined ? {} : { tokens: options.tokens }),
    ...options.admin,
  });
  await router.start();
  await admin.start();
  return {
    router,
    admin,
    httpPort: router.addresses()[0]!.port,
    adminPort: admin.address()!.port,
    close: async () => {
      await admin.close();
      await router.close();
    },
  };
}

export interface JsonReply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test convenience for JSON bodies
  readonly body: any;
}

/** One admin API call. `body` as a string is sent verbatim (malformed JSON tests). */
export function call(
  port: number,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<JsonReply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: `127.0.0.1:${port}`, ...options.headers };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    let payload: string | undefined;
    if (options.body !== undefined) {
      payload = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}
