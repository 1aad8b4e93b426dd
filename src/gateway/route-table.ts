import type { ModuleName } from '../domain/modules.ts';
import { DEFAULT_TIMEOUTS, type AuthMode, type GatewayConfig, type GatewayErrorFormat, type RouteConfig } from './config.ts';

/**
 * The route table: path template → module → upstream, accepted auth methods and error format.
 * Defaults follow Qualys's "token-based authentication support matrix": the legacy XML APIs
 * (FO, MSP, QPS) take Basic and Bearer, the JSON module APIs take Bearer.
 */

export const DEFAULT_ROUTES: ReadonlyArray<Pick<RouteConfig, 'path' | 'module'>> = [
  { path: '/api/{version}/fo/compliance', module: 'PC' },
  { path: '/api/{version}/fo', module: 'VM' },
  { path: '/msp', module: 'VM' },
  { path: '/qps/rest/{version}/{operation}/was', module: 'WAS' },
  { path: '/qps/rest/{version}/{operation}/am', module: 'AM' },
  { path: '/qps/rest/{version}/{operation}/ca', module: 'CA' },
  { path: '/qps/rest', module: 'AM' },
  { path: '/etm', module: 'ETM' },
  { path: '/easm', module: 'CSAM' },
  { path: '/cloudview-api', module: 'TOTALCLOUD' },
  { path: '/pm', module: 'PM' },
  { path: '/caui', module: 'CA' },
  { path: '/csapi', module: 'CS' },
  { path: '/certview', module: 'CERTVIEW' },
  { path: '/ot', module: 'OT' },
  { path: '/ioc', module: 'EDR' },
];

export interface GatewayRoute {
  path: string;
  module: ModuleName;
  upstream: URL | undefined;
  /** Upstream path prefix (no trailing slash), prepended to the request path. */
  upstreamBase: string;
  auth: AuthMode;
  allowsBasic: boolean;
  allowsBearer: boolean;
  errorFormat: GatewayErrorFormat;
  timeouts: { connectMs: number; headersMs: number; bodyMs: number };
  /** Fastify paths registered for this route: the template itself and everything below. */
  fastifyPaths: string[];
  /** For matching a bare path (forward-auth). */
  regex: RegExp;
  /** Sort key: more specific first. */
  specificity: number;
}

export function defaultErrorFormat(path: string): GatewayErrorFormat {
  if (/^\/api\/[^/]+\/fo(\/|$)/.test(path) || /^\/msp(\/|$)/.test(path)) return 'simple-return';
  if (/^\/qps\//.test(path)) return 'service-response';
  return 'json';
}

function segments(path: string): string[] {
  return path.split('/').filter(Boolean);
}

function toFastify(path: string): string {
  return (
    '/' +
    segments(path)
      .map((s) => {
        const m = /^\{([a-zA-Z0-9]+)\}$/.exec(s);
        if (!m) return s;
        return m[1] === 'version' ? ':version(^\\d+\\.\\d+$)' : `:${m[1]}`;
      })
      .join('/')
  );
}

function toRegex(path: string): RegExp {
  const body = segments(path)
    .map((s) => {
      const m = /^\{([a-zA-Z0-9]+)\}$/.exec(s);
      if (!m) return '/' + s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      return m[1] === 'version' ? '/\\d+\\.\\d+' : '/[^/]+';
    })
    .join('');
  return new RegExp(`^${body}(?:/|$)`);
}

export function buildRouteTable(cfg: GatewayConfig, sampleUpstream?: string): GatewayRoute[] {
  if (!cfg.enabled) return [];
  const byPath = new Map<string, RouteConfig>();
  if (cfg.defaultRoutes) for (const r of DEFAULT_ROUTES) byPath.set(r.path, { ...r });
  for (const r of cfg.routes) byPath.set(r.path, r);
  const routes: GatewayRoute[] = [];
  for (const r of byPath.values()) {
    const errorFormat = r.errorFormat ?? defaultErrorFormat(r.path);
    const auth: AuthMode = r.auth ?? (errorFormat === 'json' ? 'bearer' : 'both');
    const up = r.upstream ?? cfg.upstreams[r.module] ?? sampleUpstream;
    const upstream = up ? new URL(up) : undefined;
    const segs = segments(r.path);
    const f = toFastify(r.path);
    routes.push({
      path: r.path,
      module: r.module,
      upstream,
      upstreamBase: upstream ? upstream.pathname.replace(/\/+$/, '') : '',
      auth,
      allowsBasic: auth === 'basic' || auth === 'both',
      allowsBearer: auth === 'bearer' || auth === 'both',
      errorFormat,
      timeouts: { ...DEFAULT_TIMEOUTS, ...cfg.timeouts, ...r.timeouts },
      fastifyPaths: [f, f + '/*'],
      regex: toRegex(r.path),
      specificity: segs.length * 100 - segs.filter((s) => s.startsWith('{')).length,
    });
  }
  return routes.sort((a, b) => b.specificity - a.specificity);
}

/** The route for a bare path (forward-auth), most specific first; `/api/v1` never matches. */
export function matchRoute(routes: readonly GatewayRoute[], path: string): GatewayRoute | undefined {
  if (/^\/api\/v1(\/|$)/.test(path)) return undefined;
  return routes.find((r) => r.regex.test(path));
}

/** The matrix as shown by GET /api/v1/routes and docs/gateway.md. */
export function describeRoutes(routes: readonly GatewayRoute[]) {
  return routes.map((r) => ({
    path: r.path,
    module: r.module,
    auth: r.auth,
    basic: r.allowsBasic,
    bearer: r.allowsBearer,
    errorFormat: r.errorFormat,
    upstream: r.upstream ? `${r.upstream.origin}${r.upstreamBase}` : null,
    timeoutsMs: r.timeouts,
  }));
}

/**
 * perf (issue 9): matchRoute() with the routes grouped by their first path segment, so a call
 * tests the regexes of its own prefix (plus routes that start with a parameter) instead of all
 * of them. Same answer as matchRoute() for every path.
 */
export function routeMatcher(routes: readonly GatewayRoute[]): (path: string) => GatewayRoute | undefined {
  const byFirst = new Map<string, GatewayRoute[]>();
  const anyFirst: GatewayRoute[] = [];
  for (const r of routes) {
    const first = segments(r.path)[0];
    if (first === undefined || first.startsWith('{')) anyFirst.push(r);
    else {
      let list = byFirst.get(first);
      if (!list) byFirst.set(first, (list = []));
      list.push(r);
    }
  }
  // Keep the global order (most specific first) within each candidate list.
  const order = new Map(routes.map((r, i) => [r, i]));
  const lists = new Map<string, GatewayRoute[]>();
  for (const [k, list] of byFirst) lists.set(k, [...list, ...anyFirst].sort((a, b) => order.get(a)! - order.get(b)!));
  return (path) => {
    if (/^\/api\/v1(\/|$)/.test(path)) return undefined;
    const end = path.indexOf('/', 1);
    const candidates = lists.get(end < 0 ? path.slice(1) : path.slice(1, end)) ?? anyFirst;
    for (const r of candidates) if (r.regex.test(path)) return r;
    return undefined;
  };
}
