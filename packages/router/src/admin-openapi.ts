/**
 * `GET /openapi.json`: an OpenAPI 3.1 document generated from the admin routes as registered — their
 * summaries, tags and the JSON Schemas that admin-schemas.ts derives from the zod schemas that validate
 * them — never written by hand. `collectRoutes` must be called before the routes are registered.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';

interface CollectedRoute {
  readonly method: string;
  readonly url: string;
  readonly schema: Record<string, unknown>;
}

const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', pattern: '^SY_' }, message: { type: 'string' } },
    },
  },
};

/** Starts recording the routes registered on `app` from now on; returns the list it fills. */
export function collectRoutes(app: FastifyInstance): CollectedRoute[] {
  const routes: CollectedRoute[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as Record<string, unknown> | undefined;
    if (schema?.summary === undefined) return;
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
      if (method === 'HEAD') continue;
      routes.push({ method: method.toLowerCase(), url: route.url, schema });
    }
  });
  return routes;
}

/** The OpenAPI document for the collected routes. */
export function openApiDocument(routes: readonly CollectedRoute[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const s = route.schema;
    const parameters: Record<string, unknown>[] = [];
    for (const [where, key] of [
      ['path', 'params'],
      ['query', 'querystring'],
    ] as const) {
      const part = s[key] as { properties?: Record<string, unknown>; required?: string[] } | undefined;
      for (const [name, schema] of Object.entries(part?.properties ?? {})) {
        parameters.push({
          name,
          in: where,
          required: where === 'path' || (part?.required ?? []).includes(name),
          schema,
          ...((schema as { description?: string }).description === undefined
            ? {}
            : { description: (schema as { description?: string }).description }),
        });
      }
    }
    const write = route.method !== 'get';
    const operation: Record<string, unknown> = {
      summary: s.summary,
      tags: s.tags,
      operationId: `${route.method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      parameters,
      security: [{ bearer: [] }],
      responses: {
        [route.method === 'post' ? '201' : route.method === 'delete' ? '202' : '200']: {
          description: 'OK',
          content: { 'application/json': {} },
        },
        '400': errorResponse('SY_BAD_REQUEST / SY_INVALID_BODY: malformed request or input failing its schema'),
        '401': errorResponse('SY_UNAUTHORIZED: missing or invalid bearer token'),
        ...(write ? { '403': errorResponse('SY_FORBIDDEN: the read-only token cannot write') } : {}),
        ...(path.includes('{host}') ? { '404': errorResponse('SY_NO_VHOST / SY_NO_NODE') } : {}),
        ...(write ? { '412': errorResponse('SY_VERSION_MISMATCH: If-Match is stale') } : {}),
      },
    };
    if (s.body !== undefined) {
      operation.requestBody = { required: true, content: { 'application/json': { schema: s.body } } };
    }
    if (write) {
      parameters.push({
        name: 'If-Match',
        in: 'header',
        required: false,
        schema: { type: 'string' },
        description: 'ETag of a previous GET; 412 when the host changed since',
      });
    }
    paths[path] ??= {};
    paths[path]![route.method] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchyard admin API',
      version,
      description:
        'Live virtual-host table, node control, route explain, events (also WebSocket), metrics. Errors: {"error":{"code":"SY_...","message":"..."}}.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: { Error: ERROR_SCHEMA } },
    paths,
  };
}

function errorResponse(description: string): Record<string, unknown> {
  return { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
}
