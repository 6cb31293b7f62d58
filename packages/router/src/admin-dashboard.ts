/**
 * The dashboard: `GET /` serves packages/router/static/index.html, `GET /ui/<file>` the other files of
 * that folder (plain JS modules and CSS, no build step). Files are read once at start into memory (the
 * folder is small) and served with a strict Content-Security-Policy (same-origin scripts, styles and
 * connections only), `nosniff`, no framing and no referrer. The static files hold no data: the page
 * asks for the token and calls the API with it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** packages/router/static, from both src/ (tests through tsx) and dist/. */
export const STATIC_DIR = fileURLToPath(new URL('../static/', import.meta.url));

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
}

/** Loads the static folder and registers the dashboard routes. */
export async function registerDashboard(app: FastifyInstance, dir = STATIC_DIR): Promise<void> {
  const files = new Map<string, StaticFile>();
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    // No static folder (a stripped install): the API works, the dashboard answers 404.
  }
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (type === undefined) continue;
    files.set(name, { body: await readFile(join(dir, name)), type });
  }
  const serve = (reply: FastifyReply, name: string) => {
    const file = files.get(name);
    if (file === undefined) {
      reply.code(404).type('application/json');
      return { error: { code: 'SY_NOT_FOUND', message: `no dashboard file ${name}` } };
    }
    reply.headers(SECURITY_HEADERS).type(file.type);
    return file.body;
  };
  app.get('/', async (_request, reply) => serve(reply, 'index.html'));
  app.get('/ui/:file', async (request, reply) => serve(reply, (request.params as { file: string }).file));
}
