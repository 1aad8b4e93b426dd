import type { FastifyInstance, FastifyRequest } from 'fastify';
import { principalOf } from '../http/authn.ts';
import { mediaType } from '../http/body.ts';
import { registerErrorRenderer } from '../http/errors.ts';
import type { Services } from '../app.ts';
import type { SubscriptionTokenService } from './service.ts';
import { QAS_CODES, badRequest } from './errors.ts';

const ALLOWED_FIELDS = new Set(['expiry', 'modules']);

/**
 * The error body of these endpoints always carries a numeric `errorCode` (the spec's
 * `{"errorCode": 2003, "errorMessage": "Invalid Secret ID"}` style), also for errors raised
 * before the handler (body parsing, authentication).
 */
function installQasErrors(app: FastifyInstance): void {
  registerErrorRenderer(app, 'qas', (err, _req, reply) => {
    let code = err.qualysCode;
    if (code === undefined) {
      if (err.status === 401) code = QAS_CODES.unauthorized;
      else if (err.status === 403) code = QAS_CODES.forbidden;
      else if (err.status >= 500) code = QAS_CODES.internal;
      else code = QAS_CODES.badRequest;
    }
    let message = err.message;
    if (/Body cannot be empty/i.test(message)) message = 'Request body is missing: send {"expiry": <minutes>} as JSON.';
    else if (/not valid JSON/i.test(message)) message = 'Request body is not valid JSON: send {"expiry": <minutes>}.';
    void reply.code(err.status).headers(err.headers).type('application/json; charset=utf-8').send({ errorCode: code, errorMessage: message });
  });
}

/** The create body: JSON object with `expiry` (and optional `modules`), nothing else. */
function createBody(req: FastifyRequest): { expiry: unknown; modules?: unknown } {
  const t = mediaType(req);
  const raw = req.body as unknown;
  if (!t && (raw === undefined || raw === null)) throw badRequest('Request body is missing: send Content-Type: application/json with {"expiry": <minutes>}.');
  if (t !== 'application/json' && !t.endsWith('+json')) throw badRequest(`Content-Type must be application/json (got '${t || 'none'}'); send {"expiry": <minutes>}.`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || '__raw' in raw) {
    throw badRequest('Request body must be a JSON object such as {"expiry": 525600}.');
  }
  const unknown = Object.keys(raw).filter((k) => !ALLOWED_FIELDS.has(k));
  if (unknown.length) throw badRequest(`Unknown field(s) ${unknown.map((k) => `'${k}'`).join(', ')}; allowed: 'expiry' (minutes) and 'modules'.`);
  return raw as { expiry: unknown; modules?: unknown };
}

/** Spec 003: /qas/subscription-token, /list, /{secretId}, /token/{secretId}. */
export function subscriptionTokenRoutes(app: FastifyInstance, s: Services & { subscriptionTokens: SubscriptionTokenService }): void {
  installQasErrors(app);
  const opts = { preHandler: s.requestAuth.required, config: { errorFormat: 'qas' } };
  const svc = s.subscriptionTokens;

  app.post('/qas/subscription-token', opts, async (req, reply) => {
    const body = createBody(req);
    const created = await svc.create(principalOf(req), body, req.ip);
    return reply.code(201).header('cache-control', 'no-store').header('x-secret-id', created.secretId)
      .type('text/plain; charset=utf-8').send(created.token);
  });

  // Registered as a static path, so it wins over /:secretId.
  app.get('/qas/subscription-token/list', opts, async (req) => {
    const tokens = await svc.list(principalOf(req));
    return { count: tokens.length, limit: 10, tokens };
  });

  app.get<{ Params: { secretId: string } }>('/qas/subscription-token/:secretId', opts, async (req) =>
    svc.get(principalOf(req), req.params.secretId.trim()),
  );

  app.delete<{ Params: { secretId: string } }>('/qas/subscription-token/token/:secretId', opts, async (req, reply) => {
    const id = req.params.secretId.trim().toLowerCase();
    await svc.delete(principalOf(req), id, req.ip);
    return reply.type('text/plain; charset=utf-8').send(`Secret with ID ${id} deleted successfully.`);
  });
}
