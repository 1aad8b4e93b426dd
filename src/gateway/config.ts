import { z } from 'zod';
import { MODULES } from '../domain/modules.ts';

/**
 * The YAML `gateway` and `limits` sections. Strict: an unknown key or a bad value stops the
 * start with a message naming it (src/config.ts formats the zod issues).
 */

export const AUTH_MODES = ['basic', 'bearer', 'both', 'none'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];
/** Wire format of the gateway's own errors on a route: what that path's clients parse. */
export const ERROR_FORMATS = ['simple-return', 'service-response', 'json'] as const;
export type GatewayErrorFormat = (typeof ERROR_FORMATS)[number];

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'expected an http:// or https:// URL');

const timeoutsSchema = z
  .object({
    /** TCP (and TLS) connect to the upstream; exceeded → 502. */
    connectMs: z.number().int().positive().max(600_000).optional(),
    /** Time until the upstream sends its response headers; exceeded → 504. */
    headersMs: z.number().int().positive().max(3_600_000).optional(),
    /** Longest silence while streaming a body either way; exceeded → the stream is cut. */
    bodyMs: z.number().int().positive().max(3_600_000).optional(),
  })
  .strict();

/**
 * A path template: literal segments, `{version}` (one segment like `2.0`), `{name}` (any one
 * segment). The route covers the template itself and everything below it.
 */
const pathTemplate = z
  .string()
  .regex(/^(\/([A-Za-z0-9._~!$&'()*+,;=:@-]+|\{[a-z][a-zA-Z0-9]*\}))+$/, 'expected a path like /etm or /api/{version}/fo (no trailing slash)')
  .refine((p) => !/^\/api\/(v1|\{(?!version\})[^}]+\})(\/|$)/.test(p), '/api/v1 is the management API and cannot be routed')
  .refine((p) => !/^\/(auth|oauth2|qas|\.well-known|health|gateway)(\/|$)/.test(p), 'this path belongs to Gatehouse itself');

export const routeSchema = z
  .object({
    path: pathTemplate,
    module: z.enum(MODULES),
    /** Upstream base URL; its path is prepended to the request path. Unset → 503. */
    upstream: httpUrl.optional(),
    auth: z.enum(AUTH_MODES).optional(),
    errorFormat: z.enum(ERROR_FORMATS).optional(),
    timeouts: timeoutsSchema.optional(),
  })
  .strict();
export type RouteConfig = z.infer<typeof routeSchema>;

export const gatewaySchema = z
  .object({
    /** false: no module routes at all (Gatehouse as auth service only). */
    enabled: z.boolean().default(true),
    /** Upstream base URL per module, used by the default routes and any route without `upstream`. */
    upstreams: z.record(z.enum(MODULES), httpUrl).default({}),
    /** Extra or overriding routes; a route with the same `path` as a default replaces it. */
    routes: z.array(routeSchema).default([]),
    /** Keep the Qualys default route table (true) or use only `routes` (false). */
    defaultRoutes: z.boolean().default(true),
    timeouts: timeoutsSchema.default({}),
    /** Keep-alive connections per upstream origin. */
    connectionsPerUpstream: z.number().int().positive().max(10_000).default(128),
    /** `realm` of the Basic challenge. */
    basicRealm: z.string().min(1).max(100).regex(/^[^"\\]+$/, 'no quotes or backslashes').default('Gatehouse'),
  })
  .strict()
  .default({});
export type GatewayConfig = z.infer<typeof gatewaySchema>;

const limitSchema = z
  .object({
    /** Requests per window per subscription (and module); 0 = unlimited. */
    rate: z.number().int().min(0).optional(),
    windowSec: z.number().int().positive().max(7 * 24 * 3600).optional(),
    /** Requests running at once per user (or per client/subscription token); 0 = unlimited. */
    concurrency: z.number().int().min(0).optional(),
  })
  .strict();
export type LimitConfig = z.infer<typeof limitSchema>;

export const limitsSchema = z
  .object({
    /** Qualys's standard API limits: 300 calls per hour, 2 at once. */
    default: limitSchema.default({}),
    modules: z.record(z.enum(MODULES), limitSchema).default({}),
  })
  .strict()
  .default({});
export type LimitsConfig = z.infer<typeof limitsSchema>;

export const DEFAULT_LIMIT = { rate: 300, windowSec: 3600, concurrency: 2 } as const;
export const DEFAULT_TIMEOUTS = { connectMs: 5_000, headersMs: 30_000, bodyMs: 300_000 } as const;
