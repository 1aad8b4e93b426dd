import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Pool } from 'undici';
import { lazyRequire } from '../lazy-require.ts';
import { GatehouseError, ServiceUnavailableError } from '../domain/errors.ts';
import type { Principal } from '../domain/types.ts';
import { requireModule } from '../access/access.ts';
import type { Services } from '../app.ts';
import { buildRouteTable, describeRoutes, matchRoute, type GatewayRoute } from './route-table.ts';
import { GatewayAuthenticator, identityHeaders } from './authenticate.ts';
import { GatewayLimits, type Lease } from './limits.ts';
import { FORMAT_KEYS, registerGatewayFormats, renderBody } from './formats.ts';
import { normalizeError } from '../http/errors.ts';
import { DEFAULT_LIMIT } from './config.ts';
import { isCorsResponseHeader } from '../security/headers.ts'; // harden (issue 10)
import { startSampleModules, type SampleModules } from '../sample-modules/server.ts';

/**
 * The gateway: for each module route, authenticate → authorize → limits → forward with undici,
 * bodies streamed both ways (never buffered), status and headers back unchanged. Routes live in
 * an encapsulated plugin whose only body parser leaves the request stream untouched.
 */

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authenticate', 'proxy-authorization',
]);
/** Never forwarded upstream: credentials, and anything claiming to be Gatehouse's own identity. */
const STRIPPED = new Set(['host', 'authorization', 'clientid', 'clientsecret', 'client-id', 'client-secret', 'request-source', 'x-forwarded-host', 'x-forwarded-proto']);

/** harden (issue 10): requests that may wait for a busy upstream, per connection of its pool. */
const QUEUE_PER_CONNECTION = 4;
/** perf (issue 9): undici is loaded when the first module with an upstream is called (~140 ms at start otherwise). */
const undici = lazyRequire<typeof import('undici')>('undici');

export class BadGatewayError extends GatehouseError {
  constructor(message: string, headers: Record<string, string> = {}) {
    super(502, 'bad_gateway', message, { headers });
  }
}
export class GatewayTimeoutError extends GatehouseError {
  constructor(message: string, headers: Record<string, string> = {}) {
    super(504, 'gateway_timeout', message, { headers });
  }
}

export interface GatewayHandle {
  routes: GatewayRoute[];
  limits: GatewayLimits;
  sample: SampleModules | undefined;
}

function connectionTokens(h: IncomingHttpHeaders): Set<string> | undefined {
  const c = h.connection;
  if (!c) return undefined;
  return new Set(String(c).toLowerCase().split(',').map((s) => s.trim()));
}

export function upstreamRequestHeaders(req: FastifyRequest, extra: Record<string, string>): Record<string, string | string[]> {
  const src = req.headers;
  const conn = connectionTokens(src);
  const out: Record<string, string | string[]> = {};
  for (const k in src) {
    const v = src[k];
    if (v === undefined || HOP_BY_HOP.has(k) || STRIPPED.has(k) || k.startsWith('x-gatehouse-') || conn?.has(k)) continue;
    out[k] = v;
  }
  const xff = src['x-forwarded-for'];
  const remote = req.socket.remoteAddress ?? '';
  out['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${remote}` : remote;
  out['x-forwarded-proto'] = req.protocol;
  out['x-forwarded-host'] = req.host;
  out['request-source'] = 'gateway';
  return Object.assign(out, extra);
}

/**
 * The upstream's response headers (undici's raw name/value list) for the client: hop-by-hop
 * ones and those named in `Connection` dropped, Gatehouse's own (`extra`) winning over the upstream's.
 * A flat [name, value, ...] list, as ServerResponse.writeHead takes it (repeated names kept).
 */
export function responseHeaders(raw: Buffer[] | string[], extra: Record<string, string>): string[] {
  let conn: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toString().toLowerCase() === 'connection') {
      conn ??= new Set();
      for (const t of raw[i + 1]!.toString().toLowerCase().split(',')) conn.add(t.trim());
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1' as BufferEncoding);
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || conn?.has(lower) || Object.hasOwn(extra, lower) || isCorsResponseHeader(lower)) continue; // harden (issue 10): CORS closed
    out.push(name, raw[i + 1]!.toString('latin1' as BufferEncoding));
  }
  for (const k in extra) out.push(k, extra[k]!);
  return out;
}

/**
 * Streams one upstream response to the client (undici legacy dispatch handler: the calls its
 * HTTP/1.1 client makes natively). Backpressure: a full client socket pauses the upstream
 * socket until 'drain'. The client going away aborts the upstream request; the lease (limits)
 * is released when the client's response closes, however it ends.
 */
class ProxyHandler {
  private abortUpstream: ((err?: Error) => void) | undefined;
  private started = false;
  private completed = false;
  private resume: (() => void) | undefined;
  private readonly t0 = performance.now();

  constructor(
    private readonly reply: FastifyReply,
    private readonly lease: Lease,
    private readonly timer: { observe(v: number): void },
    private readonly resolve: () => void,
    private readonly reject: (e: unknown) => void,
  ) {
    reply.raw.once('close', this.onClientClose);
  }

  private readonly onClientClose = () => {
    this.lease.release();
    if (!this.completed) this.abortUpstream?.(new Error('client closed the connection'));
  };

  private readonly onDrain = () => this.resume?.();

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.reply.raw.destroyed) abort(new Error('client closed the connection'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[], resume: () => void, _statusText: string): boolean {
    if (statusCode < 200) return true;
    this.timer.observe((performance.now() - this.t0) / 1000);
    this.started = true;
    this.resume = resume;
    this.reply.hijack();
    this.reply.raw.writeHead(statusCode, responseHeaders(rawHeaders, this.lease.headers));
    this.resolve();
    return true;
  }

  onData(chunk: Buffer): boolean {
    const res = this.reply.raw;
    if (res.write(chunk)) return true;
    res.once('drain', this.onDrain);
    return false;
  }

  onComplete(_trailers: unknown): void {
    this.completed = true;
    this.reply.raw.end();
  }

  onError(err: Error): void {
    this.completed = true;
    if (!this.started) return this.reject(err);
    const res = this.reply.raw;
    if (!res.destroyed) {
      this.reply.log.warn({ err: { message: err.message } }, 'response stream from upstream broke');
      res.destroy(err);
    }
  }

  onUpgrade(): void {
    this.onError(new Error('upstream tried to switch protocols'));
  }

  onResponseStarted(): void {}
}

function describeUpstreamError(module: string, e: unknown, headers: Record<string, string>): GatehouseError {
  const code = (e as { code?: string })?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return new GatewayTimeoutError(`The ${module} module did not answer in time; try again later.`, headers);
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new GatewayTimeoutError(`The ${module} module could not be reached in time; try again later.`, headers);
  }
  const why = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' ? 'host not found' : code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' ? 'connection reset' : 'unreachable';
  return new BadGatewayError(`The ${module} module is unavailable (${why}); try again later.`, headers);
}

export function gatewayRoutes(app: FastifyInstance, s: Services): void {
  registerGatewayFormats(app);
  const authn = new GatewayAuthenticator(s.tokens, s.passwords, s.config.gateway.basicRealm);
  const limits = new GatewayLimits(s.config.limits, s.redis, s.log);
  const handle: GatewayHandle = { routes: [], limits, sample: undefined };
  const pools = new Map<string, Pool>();

  function poolFor(route: GatewayRoute): Pool {
    // harden (issue 10): one pool per module, so a hanging module cannot take the connections of
    // another module served by the same origin (the sample modules share one).
    const key = `${route.module}|${route.upstream!.origin}|${route.timeouts.connectMs}`;
    let p = pools.get(key);
    if (!p) {
      p = new (undici().Pool)(route.upstream!.origin, {
        connections: s.config.gateway.connectionsPerUpstream,
        connect: { timeout: route.timeouts.connectMs },
        keepAliveTimeout: 4_000,
      });
      pools.set(key, p);
    }
    return p;
  }

  async function authorize(route: GatewayRoute, req: FastifyRequest): Promise<Principal | null> {
    if (route.auth === 'none') return null;
    const p = await authn.authenticate(route, req);
    requireModule(p, route.module);
    return p;
  }

  // perf (issue 9): one histogram child per module, so observing costs no label hashing.
  const upstreamTimers = new Map<string, { observe(v: number): void }>();
  const upstreamTimer = (module: string) => {
    let t = upstreamTimers.get(module);
    if (!t) upstreamTimers.set(module, (t = s.metrics.upstreamDuration.labels({ module })));
    return t;
  };

  async function forward(route: GatewayRoute, req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const p = await authorize(route, req);
    const lease: Lease = p ? await limits.acquire(route.module, p) : GatewayLimits.none();
    if (!route.upstream) {
      lease.release();
      const e = new ServiceUnavailableError(`The ${route.module} module has no upstream configured on this Gatehouse (gateway.upstreams.${route.module}).`, 'no_upstream');
      Object.assign(e.headers, lease.headers);
      throw e;
    }
    let url = req.raw.url ?? '/';
    if (url.charCodeAt(url.length - 1) === 63 /* ? */) url = url.slice(0, -1);
    const headers = upstreamRequestHeaders(req, p ? identityHeaders(p) : {});
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    // perf (issue 9): undici's dispatch with a handler that writes straight to the client's
    // socket: no Readable for the body, no stream.pipeline and no AbortController per request
    // (the profile showed pipeline's AbortController + DOMException at ~8% of the gateway's CPU).
    // >>> harden (issue 10): a bounded queue per upstream pool; past it, fail fast instead of piling up
    const pool = poolFor(route);
    if (pool.stats.queued >= s.config.gateway.connectionsPerUpstream * QUEUE_PER_CONNECTION) {
      lease.release();
      const e = new ServiceUnavailableError(`The ${route.module} module is not keeping up (too many requests waiting for it); try again later.`, 'upstream_busy');
      Object.assign(e.headers, lease.headers, { 'retry-after': '5' });
      throw e;
    }
    // <<< harden
    try {
      await new Promise<void>((resolve, reject) => {
        pool.dispatch(
          {
            origin: route.upstream!.origin,
            path: route.upstreamBase + url,
            method: req.method as 'GET',
            headers,
            body: hasBody ? req.raw : null,
            headersTimeout: route.timeouts.headersMs,
            bodyTimeout: route.timeouts.bodyMs,
          },
          new ProxyHandler(reply, lease, upstreamTimer(route.module), resolve, reject),
        );
      });
    } catch (e) {
      if (reply.raw.destroyed) return void reply.hijack();
      req.log.warn({ module: route.module, err: { message: (e as Error).message, code: (e as { code?: string }).code } }, 'upstream request failed');
      throw describeUpstreamError(route.module, e, lease.headers);
    }
  }

  app.register(async (gw) => {
    if (s.config.sampleModules) {
      handle.sample = await startSampleModules(s.log);
      s.log.info({ url: handle.sample.url }, 'sample modules listening');
    }
    handle.routes = buildRouteTable(s.config.gateway, handle.sample?.url);
    gw.removeAllContentTypeParsers();
    // The body stays an unread stream: forward() hands req.raw to undici.
    gw.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    for (const route of handle.routes) {
      for (const url of route.fastifyPaths) {
        gw.route({
          method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
          url,
          config: { errorFormat: FORMAT_KEYS[route.errorFormat] },
          exposeHeadRoute: false,
          handler: (req, reply) => forward(route, req, reply),
        });
      }
    }

    const decide = async (req: FastifyRequest<{ Params: { '*'?: string } }>, reply: FastifyReply) => {
      const h = req.headers;
      const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
      let uri = first(h['x-original-uri']) ?? first(h['x-forwarded-uri']) ?? first(h['x-envoy-original-path']);
      if (!uri) {
        const rest = req.params['*'];
        const q = req.raw.url?.indexOf('?') ?? -1;
        uri = rest !== undefined ? '/' + rest + (q >= 0 ? req.raw.url!.slice(q) : '') : '/';
      }
      const method = (first(h['x-original-method']) ?? first(h['x-forwarded-method']) ?? req.method).toUpperCase();
      const path = uri.split('?')[0]!;
      const route = matchRoute(handle.routes, path);
      const accepted = route ?? { allowsBasic: true, allowsBearer: true };
      try {
        if (route?.auth === 'none') return reply.code(200).header('x-gatehouse-module', route.module).send();
        const p = await authn.authenticate(accepted, req);
        if (route) requireModule(p, route.module);
        reply.code(200).headers(identityHeaders(p)).header('cache-control', 'no-store');
        if (route) reply.header('x-gatehouse-module', route.module);
        req.log.debug({ method, path, module: route?.module }, 'forward-auth allowed');
        return reply.send();
      } catch (e) {
        const r = normalizeError(e);
        const { body, type } = renderBody(route?.errorFormat ?? 'json', r);
        if (r.status >= 500) req.log.error({ err: e }, 'forward-auth failed');
        return reply.code(r.status).headers(r.headers).type(type).send(body);
      }
    };
    gw.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url: '/gateway/decide', exposeHeadRoute: false, handler: decide });
    gw.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url: '/gateway/decide/*', exposeHeadRoute: false, handler: decide });

    gw.get('/api/v1/routes', { preHandler: s.requestAuth.required }, async () => ({
      routes: describeRoutes(handle.routes),
      limits: {
        backend: limits.backend,
        default: { ...DEFAULT_LIMIT, ...s.config.limits.default },
        modules: Object.fromEntries([...new Set(handle.routes.map((r) => r.module))].map((m) => [m, limits.limitFor(m)])),
      },
      forwardAuth: '/gateway/decide',
      sampleModules: Boolean(handle.sample),
    }));

    gw.addHook('onClose', async () => {
      await Promise.all([...pools.values()].map((p) => p.close().catch(() => {})));
      await limits.close();
      await handle.sample?.close();
    });
  });
}
