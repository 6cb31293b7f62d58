/**
 * Admin API input schemas (zod 4, strict) and their bridge to fastify.
 *
 * Validation is zod's, not Ajv's: fastify's defaults would silently drop unknown properties and coerce
 * types (http-hardening.md §2.4). Each route's `schema` holds the JSON Schema generated from its zod
 * schema (`z.toJSONSchema`, input side) — what `/openapi.json` publishes — and `zodValidatorCompiler`
 * finds the zod schema behind it, so the documentation and the validation cannot disagree.
 * Bodies: strict objects, unknown property → 400 SY_INVALID_BODY, no coercion. Query strings and path
 * parameters are strings by nature: numbers are parsed from digit strings explicitly.
 */
import type { FastifySchema, FastifySchemaCompiler } from 'fastify';
import { z } from 'zod';
import { RouterError } from './errors.js';

const jsonOf = new WeakMap<object, z.ZodType>();

/** The JSON Schema of `schema` for a fastify route, remembered so that validation uses `schema` itself. */
export function routeSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _dialect, ...json } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  jsonOf.set(json, schema);
  return json;
}

export interface RouteParts {
  readonly params?: z.ZodType;
  readonly querystring?: z.ZodType;
  readonly body?: z.ZodType;
}

/** A route's fastify `schema`: OpenAPI summary and tags plus the JSON Schemas of its zod inputs. */
export function routeDoc(summary: string, parts: RouteParts = {}, tags: readonly string[] = []): FastifySchema {
  return {
    summary,
    tags,
    ...(parts.params === undefined ? {} : { params: routeSchema(parts.params) }),
    ...(parts.querystring === undefined ? {} : { querystring: routeSchema(parts.querystring) }),
    ...(parts.body === undefined ? {} : { body: routeSchema(parts.body) }),
  } as FastifySchema;
}

/** fastify validator compiler: runs the zod schema registered by `routeSchema`. */
export const zodValidatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const zod = jsonOf.get(schema as object);
  if (zod === undefined) throw new RouterError('SY_BAD_CONFIG', 'admin route schema without a zod schema');
  return (data: unknown) => {
    const result = zod.safeParse(data ?? (httpPart === 'body' ? undefined : {}));
    if (result.success) return { value: result.data };
    const issue = result.error.issues[0]!;
    const where = issue.path.length === 0 ? (httpPart ?? 'input') : issue.path.join('.');
    return { error: new RouterError('SY_INVALID_BODY', `${where}: ${issue.message}`, { source: 'admin' }) };
  };
};

const digits = (max: number) =>
  z
    .string()
    .regex(/^\d{1,9}$/, 'a whole number')
    .transform(Number)
    .refine((n) => n >= 1 && n <= max, `between 1 and ${max}`);

export const HostParams = z.strictObject({ host: z.string().min(1).max(300) });
export const NodeParams = z.strictObject({ host: z.string().min(1).max(300), address: z.string().min(1).max(255) });

export const VhostListQuery = z.strictObject({
  prefix: z.string().max(300).optional().describe('only hosts whose key starts with this'),
  limit: digits(1000).optional().describe('page size, default 100'),
  cursor: z.string().max(300).optional().describe('the `next` value of the previous page'),
});

export const RouteQuery = z.strictObject({
  host: z.string().min(1).max(300).describe('Host header value, e.g. app.example.com or app.example.com:8080'),
  path: z.string().max(8192).optional().describe('request target, default /'),
  client: z.string().max(64).optional().describe('client address for hashing balancers, default 127.0.0.1'),
  header: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .describe('request header for hashing balancers, `Name: value`, repeatable'),
});

export const EventsQuery = z.strictObject({
  since: z
    .string()
    .regex(/^\d{1,15}$/, 'a sequence number')
    .transform(Number)
    .optional()
    .describe('replay events after this sequence number'),
  host: z.string().max(300).optional().describe('only events about this host key'),
  limit: digits(10_000).optional().describe('most events returned (HTTP only), default 1000'),
});

export const NewNodeBody = z.strictObject({
  address: z.string().min(1).max(255).describe('host:port, [v6]:port or a unix socket path'),
  protocol: z.enum(['http', 'uwsgi']).default('http'),
  weight: z.number().int().min(1).max(1000).default(1),
  ttlSeconds: z.number().int().min(1).max(31_536_000).optional().describe('removed (drained) after this'),
});

export const NodePatchBody = z
  .strictObject({
    state: z.enum(['active', 'draining']).optional(),
    weight: z.number().int().min(1).max(1000).nullable().optional().describe('null: back to the announced weight'),
  })
  .refine((b) => b.state !== undefined || b.weight !== undefined, 'state or weight is required');
