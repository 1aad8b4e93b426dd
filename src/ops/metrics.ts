import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LeanCounter, LeanHistogram } from './lean-histogram.ts';
import type { Store } from '../store/db.ts';
import { GatehouseError } from '../domain/errors.ts';

/** Verification failure reasons: a closed set, so no token content ever becomes a label. */
export const VERIFY_FAILURE_REASONS = [
  'malformed', 'expired', 'not_yet_valid', 'unknown_key', 'bad_algorithm', 'bad_signature', 'wrong_issuer',
  'wrong_audience', 'revoked', 'principal_refused', 'external_idp', 'error',
] as const;
export type VerifyFailureReason = (typeof VERIFY_FAILURE_REASONS)[number];

/** Map a verification error to one of VERIFY_FAILURE_REASONS (messages are ours, see tokens.ts). */
export function verifyFailureReason(err: unknown): VerifyFailureReason {
  if (!(err instanceof GatehouseError)) return 'error';
  const m = err.message.toLowerCase();
  if (/too long|well-formed|not valid json|malformed|no usable key id|lacks gatehouse claims|unsupported feature|type is not/.test(m)) return 'malformed';
  if (m.includes('expired')) return 'expired';
  if (/not valid yet|in the future/.test(m)) return 'not_yet_valid';
  if (m.includes('unknown or retired key')) return 'unknown_key';
  if (m.includes('algorithm')) return 'bad_algorithm';
  if (m.includes('signature')) return 'bad_signature';
  if (m.includes('another issuer')) return 'wrong_issuer';
  if (m.includes('another audience')) return 'wrong_audience';
  if (/revoked|deleted|no longer/.test(m)) return 'revoked';
  if (/identity provider|idp|issuer/.test(m)) return 'external_idp';
  return 'principal_refused';
}

/**
 * Prometheus metrics of one Gatehouse instance, on a registry of its own (two servers in one
 * process — the tests — must not share counters). Labels are bounded: route *patterns*, HTTP
 * status, auth method, a fixed set of failure reasons, module names; never ids or secrets.
 */
export class GatehouseMetrics {
  readonly registry = new Registry();
  readonly httpRequests: LeanCounter<'method' | 'route' | 'status'>;
  readonly httpDuration: LeanHistogram<'method' | 'route'>;
  readonly tokensIssued: Counter<'method'>;
  readonly verifyFailures: Counter<'reason'>;
  /** The gateway observes each proxied call here (seconds), labelled by module (VM, WAS, …). */
  readonly upstreamDuration: LeanHistogram<'module'>;
  readonly changeFeedLag: Histogram<'source'>;
  readonly changeFeedListening: Gauge;
  readonly redisUp: Gauge;
  private readonly extraCaches = new Map<string, () => number>();

  constructor(store: Store, opts: { defaultMetrics?: boolean } = {}) {
    const r = this.registry;
    // perf (issue 9): prom-client samples event-loop delay with a libuv timer every
    // `eventLoopMonitoringPrecision` ms (default 10): 100 wake-ups a second of an otherwise idle
    // event loop, each one pre-empting the password verifier with cold caches during a login
    // flood. Every 100 ms samples the same delays, ten times a second.
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: 100 });
    // perf (issue 9): the per-request counter and histograms count without per-call label work.
    this.httpRequests = new LeanCounter('gatehouse_http_requests_total', 'HTTP requests answered, by route pattern and status', ['method', 'route', 'status'], r);
    this.httpDuration = new LeanHistogram('gatehouse_http_request_duration_seconds', 'Time to answer an HTTP request',
      ['method', 'route'], [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], r);
    this.tokensIssued = new Counter({
      name: 'gatehouse_tokens_issued_total', help: 'JWTs issued, by authentication method', labelNames: ['method'], registers: [r],
    });
    this.verifyFailures = new Counter({
      name: 'gatehouse_token_verification_failures_total', help: 'Tokens refused, by reason', labelNames: ['reason'], registers: [r],
    });
    this.upstreamDuration = new LeanHistogram('gatehouse_upstream_duration_seconds', 'Time an upstream module API took to answer a proxied request',
      ['module'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], r);
    const caches = this.extraCaches;
    new Gauge({
      name: 'gatehouse_cache_entries', help: 'Entries in in-memory verification caches', labelNames: ['cache'], registers: [r],
      collect() {
        this.reset();
        for (const c of store.stateCaches) this.set({ cache: c.entity }, c.size);
        for (const [name, size] of caches) this.set({ cache: name }, size());
      },
    });
    this.changeFeedLag = new Histogram({
      name: 'gatehouse_change_feed_lag_seconds',
      help: "Seconds between a change's commit-time timestamp and this node applying it, by how it arrived (listen|poll)",
      labelNames: ['source'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [r],
    });
    new Gauge({
      name: 'gatehouse_change_feed_last_seq', help: 'Last change-log seq this node applied', registers: [r],
      collect() {
        this.set(store.feedPosition.lastSeq);
      },
    });
    this.changeFeedListening = new Gauge({
      name: 'gatehouse_change_feed_listening', help: '1 while the PostgreSQL LISTEN connection is up (0: polling only)', registers: [r],
    });
    this.redisUp = new Gauge({
      name: 'gatehouse_redis_up', help: '1 while Redis is reachable (0: limits are per node)', registers: [r],
    });
    store.onApplied((c) => {
      const at = Date.parse(c.at);
      if (Number.isFinite(at)) this.changeFeedLag.observe({ source: c.source }, Math.max(0, Date.now() - at) / 1000);
    });
  }

  /** Report another cache's size under `gatehouse_cache_entries{cache=name}`. */
  addCache(name: string, size: () => number): void {
    this.extraCaches.set(name, size);
  }

  /** onResponse hook (request counts/durations) and `GET /metrics`. */
  install(app: FastifyInstance, opts: { token?: string | undefined; path?: string }): void {
    const path = opts.path ?? '/metrics';
    // perf (issue 9): callback-style hook (no promise per request) and the label children looked
    // up once per method/route/status (prom-client validates and hashes the labels on every call).
    const children = new Map<string, { count: { inc(): void }; time: { observe(v: number): void } }>();
    app.addHook('onResponse', (req, reply, done) => {
      const route = req.routeOptions.url ?? 'unmatched';
      if (route !== path) {
        const key = `${req.method} ${reply.statusCode} ${route}`;
        let child = children.get(key);
        if (!child) {
          child = {
            count: this.httpRequests.labels({ method: req.method, route, status: String(reply.statusCode) }),
            time: this.httpDuration.labels({ method: req.method, route }),
          };
          if (children.size < 2000) children.set(key, child);
        }
        child.count.inc();
        child.time.observe(reply.elapsedTime / 1000);
      }
      done();
    });
    const expected = opts.token ? createHash('sha256').update(opts.token).digest() : undefined;
    app.get(path, async (req, reply) => {
      if (expected) {
        const h = req.headers.authorization ?? '';
        const given = h.startsWith('Bearer ') ? h.slice(7) : '';
        if (!timingSafeEqual(createHash('sha256').update(given).digest(), expected)) {
          return reply
            .code(401)
            .header('www-authenticate', 'Bearer realm="metrics"')
            .send({ errorCode: 'unauthorized', errorMessage: 'GET /metrics needs Authorization: Bearer <metrics token> (metrics.token / GATEHOUSE_METRICS_TOKEN)' });
        }
      }
      return reply.type(this.registry.contentType).send(await this.registry.metrics());
    });
  }
}
