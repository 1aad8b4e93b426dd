import type { FastifyInstance } from 'fastify';

/** One year, with subdomains: browsers remember to use HTTPS only. */
export const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * Transport headers on every response Gatehouse renders itself:
 * - `Strict-Transport-Security` when served over HTTPS (own TLS, or a TLS-terminating proxy
 *   when `server.trustProxy` makes `X-Forwarded-Proto` trusted);
 * - `X-Content-Type-Options: nosniff` everywhere;
 * - CORS closed: Gatehouse grants no cross-origin access, so no `Access-Control-Allow-*`
 *   header ever leaves it, and a CORS preflight is refused with 403 (a browser then blocks
 *   the actual request). Non-browser clients (curl, SDKs) never send preflights.
 *
 * The gateway's proxied responses bypass onSend (streamed); it strips upstream CORS headers
 * itself (src/gateway/gateway.ts).
 */
export function installTransportHeaders(app: FastifyInstance): void {
  // perf (issue 9): callback-style hooks, no promise per request.
  app.addHook('onRequest', (req, reply, done) => {
    if (req.method === 'OPTIONS' && req.headers.origin !== undefined && req.headers['access-control-request-method'] !== undefined) {
      // Answered here: done() is not called, so the request goes no further.
      reply
        .code(403)
        .type('application/json; charset=utf-8')
        .header('vary', 'Origin')
        .send({ errorCode: 'cors_refused', errorMessage: 'Cross-origin requests are not allowed: Gatehouse does not grant CORS access to any origin.' });
      return;
    }
    done();
  });
  app.addHook('onSend', (req, reply, payload, done) => {
    if (req.protocol === 'https') reply.header('strict-transport-security', HSTS);
    if (!reply.hasHeader('x-content-type-options')) reply.header('x-content-type-options', 'nosniff');
    for (const h of Object.keys(reply.getHeaders())) if (h.startsWith('access-control-allow-')) reply.removeHeader(h);
    done(null, payload);
  });
}

/** Upstream response headers the gateway never passes on (CORS is closed). */
export function isCorsResponseHeader(name: string): boolean {
  return name.startsWith('access-control-');
}
