import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Pool } from 'undici';
import { lazyRequire } from '../lazy-require.ts';
import { GatehouseError, ServiceUnavailableError } from '../domain/errors.ts';
import type { Principal } from '../domain/types.ts';
import { requireModule } from '../access/access.ts';
import type { Services } from '../app.ts';
import { buildRouteTable, describeRoutes, matchRoute, routeMatcher, type GatewayRoute } from './route-table.ts';
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
const STRIPPED = new Set(['host', 'authorization', 'clientid', 'clientsecret', 'client-id', 'client-secret', 'request-source', 'x-forwarded-host', 'x-forwarded-proto',
  // `Expect: 100-continue` is answered by this server (Node sends the 100 itself); undici refuses
  // to send an Expect header, which turned curl's larger POSTs into 502s.
  'expect']);

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
  /**
   * perf (issue 9): serve a module call from Node's 'request' event when it can (true), else
   * leave it to Fastify (false). `fallback` is Fastify's own request handler.
   */
  fastPath: (req: IncomingMessage, res: ServerResponse, fallback: (req: IncomingMessage, res: ServerResponse) => void) => boolean;
}

/** An error the fast path met, for the Fastify route to answer. */
const FAST_PATH_ERROR = Symbol('gatehouse.fastPathError');
type FastPathRequest = IncomingMessage & { [FAST_PATH_ERROR]?: unknown };
const FAST_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

function connectionTokens(h: IncomingHttpHeaders): Set<string> | undefined {
  const c = h.connection;
  if (!c) return undefined;
  return new Set(String(c).toLowerCase().split(',').map((s) => s.trim()));
}

/** Who called, as the gateway tells the upstream (Fastify's view of it, or the fast path's). */
export interface CallerInfo {
  ip: string;
  protocol: string;
  host: string | undefined;
}

export function upstreamRequestHeaders(src: IncomingHttpHeaders, caller: CallerInfo, extra: Record<string, string>): Record<string, string | string[]> {
  const conn = connectionTokens(src);
  const out: Record<string, string | string[]> = {};
  for (const k in src) {
    const v = src[k];
    if (v === undefined || HOP_BY_HOP.has(k) || STRIPPED.has(k) || k.startsWith('x-gatehouse-') || conn?.has(k)) continue;
    out[k] = v;
  }
  const xff = src['x-forwarded-for'];
  out['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${caller.ip}` : caller.ip;
  out['x-forwarded-proto'] = caller.protocol;
  if (caller.host !== undefined) out['x-forwarded-host'] = caller.host;
  out['request-source'] = 'gateway';
  for (const k in extra) out[k] = extra[k]!;
  return out;
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
/**
 * perf (issue 9): the upstream timeouts (headers: time to the status line; body: longest pause
 * between body chunks), kept by one sweep over the calls in flight instead of undici's
 * per-request timers. undici re-creates a timer object each time a connection switches between
 * its headers, body and keep-alive timeouts, and keeps cleared ones listed until its next tick
 * (~0.5 s): two objects per call that lived long enough to be promoted to the old generation.
 * With them gone, the bytes promoted per scavenge fell 57% and full GCs by 40% under gateway
 * load (--trace-gc-nvp), which were the gateway's p99 stalls. Precision: one sweep interval.
 */
const SWEEP_MS = 100;
class Deadlines {
  /**
   * The calls in flight, as an intrusive doubly linked list through the handlers (O(1) add and
   * remove, nothing allocated). A Set did the same job but, measured with --trace-gc-nvp under
   * gateway load, made V8 promote ~1.7 MB per scavenge (against ~0.1 MB without it).
   */
  private head: ProxyHandler | undefined;
  private timer: NodeJS.Timeout | undefined;
  add(h: ProxyHandler): void {
    h.next = this.head;
    if (this.head) this.head.prev = h;
    this.head = h;
    if (!this.timer) {
      this.timer = setInterval(this.sweep, SWEEP_MS);
      this.timer.unref();
    }
  }
  delete(h: ProxyHandler): void {
    if (h.prev === undefined && this.head !== h) return; // not listed (any more)
    if (h.prev) h.prev.next = h.next;
    else this.head = h.next;
    if (h.next) h.next.prev = h.prev;
    h.prev = h.next = undefined;
  }
  private readonly sweep = () => {
    const now = performance.now();
    for (let h = this.head; h; ) {
      const next = h.next;
      h.checkDeadline(now);
      h = next;
    }
    if (!this.head) this.close();
  };
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

class ProxyHandler {
  /** Links of the in-flight list (Deadlines). */
  prev: ProxyHandler | undefined = undefined;
  next: ProxyHandler | undefined = undefined;
  private abortUpstream: ((err?: Error) => void) | undefined;
  private started = false;
  private completed = false;
  private resume: (() => void) | undefined;
  private readonly t0 = performance.now();
  /** Last sign of life from the upstream (dispatch, then each body chunk), for the timeouts. */
  private lastActivity = this.t0;
  /** A timeout passed before undici handed us the abort function: abort as soon as it does. */
  private expired: Error | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly log: Logger,
    private readonly lease: Lease,
    private readonly timer: { observe(v: number): void },
    /** Called once, when the upstream's status and headers arrive (the response is ours from then on). */
    private readonly onStart: (status: number) => void,
    private readonly reject: (e: unknown) => void,
    private readonly deadlines: Deadlines,
    private readonly timeouts: { headersMs: number; bodyMs: number },
    /** The pool's in-flight count: taken here, given back once when the upstream call ends. */
    private readonly inFlight: { n: number },
  ) {
    inFlight.n++;
    res.on('close', this.onClientClose); // one response per handler: no need for once()'s wrapper
    deadlines.add(this);
  }

  checkDeadline(now: number): void {
    if (this.completed) return this.deadlines.delete(this);
    const limit = this.started ? this.timeouts.bodyMs : this.timeouts.headersMs;
    if (limit <= 0 || now - this.lastActivity <= limit) return;
    this.deadlines.delete(this);
    const { HeadersTimeoutError, BodyTimeoutError } = undici().errors;
    const err = this.started ? new BodyTimeoutError('Body Timeout Error') : new HeadersTimeoutError('Headers Timeout Error');
    if (this.abortUpstream) this.abortUpstream(err);
    else this.expired = err;
  }

  private readonly onClientClose = () => {
    this.lease.release();
    this.deadlines.delete(this);
    if (!this.completed) this.abortUpstream?.(new Error('client closed the connection'));
  };

  private readonly onDrain = () => this.resume?.();

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.expired) abort(this.expired);
    else if (this.res.destroyed) abort(new Error('client closed the connection'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[], resume: () => void, _statusText: string): boolean {
    if (statusCode < 200) return true;
    const now = performance.now();
    this.timer.observe((now - this.t0) / 1000);
    this.lastActivity = now;
    this.started = true;
    this.resume = resume;
    this.onStart(statusCode);
    this.res.writeHead(statusCode, responseHeaders(rawHeaders, this.lease.headers));
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.lastActivity = performance.now();
    const res = this.res;
    if (res.write(chunk)) return true;
    res.once('drain', this.onDrain);
    return false;
  }

  onComplete(_trailers: unknown): void {
    if (!this.completed) this.inFlight.n--;
    this.completed = true;
    this.deadlines.delete(this);
    this.res.end();
  }

  onError(err: Error): void {
    if (!this.completed) this.inFlight.n--;
    this.completed = true;
    this.deadlines.delete(this);
    if (!this.started) return this.reject(err);
    const res = this.res;
    if (!res.destroyed) {
      this.log.warn({ err: { message: err.message } }, 'response stream from upstream broke');
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

export function gatewayRoutes(app: FastifyInstance, s: Services): GatewayHandle {
  registerGatewayFormats(app);
  const authn = new GatewayAuthenticator(s.tokens, s.passwords, s.config.gateway.basicRealm);
  const limits = new GatewayLimits(s.config.limits, s.redis, s.log);
  const handle: GatewayHandle = { routes: [], limits, sample: undefined, fastPath: () => false };
  const pools = new Map<string, Pool>();
  const deadlines = new Deadlines();

  /** Requests dispatched to each pool and not finished (perf, issue 9: cheaper than pool.stats, which builds an object per read). */
  const inFlight = new WeakMap<Pool, { n: number }>();
  const poolByRoute = new WeakMap<GatewayRoute, Pool>();
  function poolFor(route: GatewayRoute): Pool {
    let p = poolByRoute.get(route);
    if (p) return p;
    // harden (issue 10): one pool per module, so a hanging module cannot take the connections of
    // another module served by the same origin (the sample modules share one).
    const key = `${route.module}|${route.upstream!.origin}|${route.timeouts.connectMs}`;
    p = pools.get(key);
    if (!p) {
      p = new (undici().Pool)(route.upstream!.origin, {
        connections: s.config.gateway.connectionsPerUpstream,
        connect: { timeout: route.timeouts.connectMs },
        keepAliveTimeout: 4_000,
      });
      pools.set(key, p);
      inFlight.set(p, { n: 0 });
    }
    poolByRoute.set(route, p);
    return p;
  }

  /** Authenticate (Basic or Bearer, as the route accepts) and authorize for the route's module; synchronous when it can be. */
  function authorize(route: GatewayRoute, authorization: string | undefined, ip: string): Principal | null | Promise<Principal | null> {
    if (route.auth === 'none') return null;
    const p = authn.authenticate(route, authorization, ip);
    if (p instanceof Promise) return p.then((q) => (requireModule(q, route.module), q));
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

  /**
   * Limits, then the upstream call; resolves when the upstream's status line and headers have
   * been written to the client (the body keeps streaming). Rejects (before anything was
   * written) with the error to answer with; resolves without a word if the client left first.
   * For the Fastify route; the fast path calls forwardNow() without a promise.
   */
  function forward(route: GatewayRoute, raw: IncomingMessage, res: ServerResponse, caller: CallerInfo, p: Principal | null, log: Logger, onStart: (status: number) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      forwardNow(route, raw, res, caller, p, log, (status) => (onStart(status), resolve()), (e) => (e === null ? resolve() : reject(e)));
    });
  }

  /**
   * forward() with callbacks (perf, issue 9: no promise, async frame or microtask per proxied call
   * on the fast path): `onStart` once the upstream's status and headers are written to the client,
   * or `onFail` exactly once before that, with the error to answer with, or null when the client
   * has gone and there is nothing to answer. Never throws.
   */
  function forwardNow(route: GatewayRoute, raw: IncomingMessage, res: ServerResponse, caller: CallerInfo, p: Principal | null, log: Logger, onStart: (status: number) => void, onFail: (e: unknown) => void): void {
    let lease: Lease | Promise<Lease>;
    try {
      lease = p ? limits.acquire(route.module, p) : GatewayLimits.none();
    } catch (e) {
      return onFail(e);
    }
    if (lease instanceof Promise) lease.then((l) => dispatch(route, raw, res, caller, p, l, log, onStart, onFail), onFail);
    else dispatch(route, raw, res, caller, p, lease, log, onStart, onFail);
  }

  function dispatch(route: GatewayRoute, raw: IncomingMessage, res: ServerResponse, caller: CallerInfo, p: Principal | null, lease: Lease, log: Logger, onStart: (status: number) => void, onFail: (e: unknown) => void): void {
    // The client left while authentication or the limits were pending (a first Basic password
    // check, a Redis round trip): give the concurrency slot back now, as nothing else will.
    if (res.destroyed) {
      lease.release();
      return onFail(null);
    }
    if (!route.upstream) {
      lease.release();
      const e = new ServiceUnavailableError(`The ${route.module} module has no upstream configured on this Gatehouse (gateway.upstreams.${route.module}).`, 'no_upstream');
      Object.assign(e.headers, lease.headers);
      return onFail(e);
    }
    let url = raw.url ?? '/';
    if (url.charCodeAt(url.length - 1) === 63 /* ? */) url = url.slice(0, -1);
    const h = raw.headers;
    let headers: Record<string, string | string[]>;
    try {
      headers = upstreamRequestHeaders(h, caller, p ? identityHeaders(p) : {});
    } catch (e) {
      lease.release();
      return onFail(e);
    }
    const hasBody = h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
    // perf (issue 9): undici's dispatch with a handler that writes straight to the client's
    // socket: no Readable for the body, no stream.pipeline and no AbortController per request
    // (the profile showed pipeline's AbortController + DOMException at ~8% of the gateway's CPU).
    // >>> harden (issue 10): a bounded queue per upstream pool; past it, fail fast instead of piling up
    let pool: Pool;
    try {
      pool = poolFor(route);
    } catch (e) {
      lease.release();
      return onFail(e);
    }
    const count = inFlight.get(pool)!;
    // Waiting for a connection = in flight beyond the pool's connections.
    if (count.n - s.config.gateway.connectionsPerUpstream >= s.config.gateway.connectionsPerUpstream * QUEUE_PER_CONNECTION) {
      lease.release();
      const e = new ServiceUnavailableError(`The ${route.module} module is not keeping up (too many requests waiting for it); try again later.`, 'upstream_busy');
      Object.assign(e.headers, lease.headers, { 'retry-after': '5' });
      return onFail(e);
    }
    // <<< harden
    let settled = false;
    const failed = (e: unknown) => {
      if (settled) return; // once, whatever reports it (undici's onError, or its throw below)
      settled = true;
      if (res.destroyed) return onFail(null);
      log.warn({ module: route.module, err: { message: (e as Error | undefined)?.message, code: (e as { code?: string } | undefined)?.code } }, 'upstream request failed');
      onFail(describeUpstreamError(route.module, e, lease.headers));
    };
    let handler: ProxyHandler;
    try {
      handler = new ProxyHandler(res, log, lease, upstreamTimer(route.module), onStart, failed, deadlines, route.timeouts, count);
    } catch (e) {
      lease.release();
      return onFail(e);
    }
    try {
      pool.dispatch(
        {
          origin: route.upstream.origin,
          path: route.upstreamBase + url,
          method: raw.method as 'GET',
          headers,
          body: hasBody ? raw : null,
          // Timeouts are kept by `deadlines` (see Deadlines), not by undici's per-request timers.
          headersTimeout: 0,
          bodyTimeout: 0,
        },
        handler,
      );
    } catch (e) {
      // undici refused the request outright: end the handler's call as an upstream error would.
      handler.onError(e as Error);
    }
  }

  /** The Fastify route handler: an error the fast path met is answered here, in the route's format. */
  async function fastifyForward(route: GatewayRoute, req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const met = (req.raw as FastPathRequest)[FAST_PATH_ERROR];
    if (met !== undefined) throw met;
    const caller: CallerInfo = { ip: req.ip, protocol: req.protocol, host: req.host };
    const a = authorize(route, req.headers.authorization, req.ip);
    const p = a instanceof Promise ? await a : a;
    await forward(route, req.raw, reply.raw, caller, p, req.log as Logger, () => void reply.hijack());
  }

  // >>> perf (issue 9): the fast path. Module calls are served straight from Node's 'request'
  // event, before Fastify builds its request/reply objects, runs hooks and routes: those were
  // ~15% of a proxied call. It takes only what it can answer exactly as the Fastify route would:
  // a plain path (no percent-encoding, dot segments or double slashes) of a configured route,
  // not a CORS preflight, no trusted proxy to interpret, not while draining. Anything it cannot
  // answer — every error included — goes to Fastify: an error met on the way is attached to the
  // request, and the Fastify route (fastifyForward) throws it, so it is rendered, logged and
  // counted by the one error handler, in the route's format, with nothing done twice.
  const PLAIN_PATH = /^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+\/?$/;
  // Metric children by route label, method (and status): no label hashing or key building per call.
  const fastMetrics = new Map<string, Map<string, { inc(): void }>>();
  const countFast = (method: string, routePath: string, status: number) => {
    let byRoute = fastMetrics.get(routePath);
    if (!byRoute) fastMetrics.set(routePath, (byRoute = new Map()));
    const k = status === 200 ? method : `${method} ${status}`;
    let c = byRoute.get(k);
    if (!c) byRoute.set(k, (c = s.metrics.httpRequests.labels({ method, route: routePath, status: String(status) })));
    c.inc();
  };
  const fastDurations = new Map<string, Map<string, { observe(v: number): void }>>();
  const observeFast = (method: string, routePath: string, seconds: number) => {
    let byRoute = fastDurations.get(routePath);
    if (!byRoute) fastDurations.set(routePath, (byRoute = new Map()));
    let h = byRoute.get(method);
    if (!h) byRoute.set(method, (h = s.metrics.httpDuration.labels({ method, route: routePath })));
    h.observe(seconds);
  };

  function fastPath(req: IncomingMessage, res: ServerResponse, fallback: (req: IncomingMessage, res: ServerResponse) => void): boolean {
    const url = req.url;
    if (url === undefined || url.charCodeAt(0) !== 47 /* / */) return false;
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path.length > 256 || !PLAIN_PATH.test(path) || path.includes('/./') || path.includes('/../') || path.endsWith('/.') || path.endsWith('/..')) return false;
    if (!FAST_METHODS.has(req.method!)) return false;
    if (matchFast === undefined || fastFor !== handle.routes) matchFast = routeMatcher((fastFor = handle.routes));
    const route = matchFast(path);
    if (!route) return false;
    const h = req.headers;
    if (req.method === 'OPTIONS' && h.origin !== undefined && h['access-control-request-method'] !== undefined) return false;
    serveFast(route, req, res, fallback, path);
    return true;
  }
  let matchFast: ((path: string) => GatewayRoute | undefined) | undefined;
  let fastFor: GatewayRoute[] | undefined;

  function serveFast(route: GatewayRoute, req: IncomingMessage, res: ServerResponse, fallback: (req: IncomingMessage, res: ServerResponse) => void, path: string): void {
    const t0 = performance.now();
    const ip = req.socket.remoteAddress ?? '';
    // Anything met before the response started goes to Fastify (see above); null: the client left.
    const fail = (e: unknown) => {
      if (e === null || res.headersSent || res.destroyed) return;
      (req as FastPathRequest)[FAST_PATH_ERROR] = e;
      fallback(req, res);
    };
    const proceed = (p: Principal | null) => {
      let routePath: string;
      let caller: CallerInfo;
      try {
        caller = { ip, protocol: (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http', host: req.headers.host };
        // The label Fastify would give: the template itself, or the template's `/*` below it.
        const m = route.regex.exec(path);
        routePath = m && m[0].length === m.input.length && !m[0].endsWith('/') ? route.fastifyPaths[0]! : route.fastifyPaths[1]!;
      } catch (e) {
        return fail(e);
      }
      forwardNow(route, req, res, caller, p, s.log, (status) => {
        countFast(req.method!, routePath, status);
        observeFast(req.method!, routePath, (performance.now() - t0) / 1000);
      }, fail);
    };
    let a: Principal | null | Promise<Principal | null>;
    try {
      a = authorize(route, req.headers.authorization, ip);
    } catch (e) {
      return fail(e);
    }
    if (a instanceof Promise) a.then(proceed, fail);
    else proceed(a);
  }
  handle.fastPath = fastPath;
  // <<< perf

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
          handler: (req, reply) => fastifyForward(route, req, reply),
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
        const p = await authn.authenticate(accepted, req.headers.authorization, req.ip);
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
      deadlines.close();
      await Promise.all([...pools.values()].map((p) => p.close().catch(() => {})));
      await limits.close();
      await handle.sample?.close();
    });
  });
  return handle;
}
