import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequestError, UnauthorizedError } from '../domain/errors.ts';
import { MODULES } from '../domain/modules.ts';
import { expectJson, principalOf } from '../http/authn.ts';
import { mediaType } from '../http/body.ts';
import type { Services } from '../app.ts';
import type { CreateClientInput } from './service.ts';

const idParam = {
  type: 'object',
  properties: { clientId: { type: 'string', maxLength: 64 } },
  required: ['clientId'],
} as const;

function headerValue(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Form fields when the body is a form; nothing otherwise (these endpoints read headers). */
function formOf(req: FastifyRequest): Record<string, string> {
  return mediaType(req) === 'application/x-www-form-urlencoded' && req.body && typeof req.body === 'object'
    ? (req.body as Record<string, string>)
    : {};
}

/**
 * Client management (/api/v1/clients, CONTRACT.md) and the Qualys client-token endpoints
 * POST /auth/oidc and POST /auth/oauth.
 */
export function clientRoutes(app: FastifyInstance, s: Services): void {
  const auth = { preHandler: s.requestAuth.required };

  app.post<{ Body: CreateClientInput }>(
    '/api/v1/clients',
    {
      ...auth,
      preValidation: expectJson,
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'level', 'modules'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 100 },
            level: { type: 'string', enum: ['user', 'subscription'] },
            modules: {
              type: 'array',
              items: { type: 'string', enum: [...MODULES, 'all', 'ALL', 'All'] },
              minItems: 1,
              maxItems: 50,
            },
            expiresAt: { type: ['string', 'null'], maxLength: 40 },
          },
        },
      },
    },
    async (req, reply) => {
      const c = await s.clients.create(principalOf(req), req.body, { ip: req.ip });
      return reply.code(201).header('cache-control', 'no-store').send(c);
    },
  );

  app.get('/api/v1/clients', auth, async (req) => ({ clients: await s.clients.list(principalOf(req)) }));

  app.get<{ Params: { clientId: string } }>('/api/v1/clients/:clientId', { ...auth, schema: { params: idParam } }, async (req) =>
    s.clients.get(principalOf(req), req.params.clientId),
  );

  app.delete<{ Params: { clientId: string } }>('/api/v1/clients/:clientId', { ...auth, schema: { params: idParam } }, async (req) => {
    const c = await s.clients.delete(principalOf(req), req.params.clientId, { ip: req.ip });
    return { deleted: true, clientId: c.clientId, name: c.name };
  });

  app.post<{ Params: { clientId: string } }>(
    '/api/v1/clients/:clientId/rotate-secret',
    { ...auth, schema: { params: idParam } },
    async (req, reply) => {
      const c = await s.clients.rotateSecret(principalOf(req), req.params.clientId, { ip: req.ip });
      return reply.header('cache-control', 'no-store').send(c);
    },
  );

  // harden (issue 10): clear a client's authentication lockout
  app.post<{ Params: { clientId: string } }>('/api/v1/clients/:clientId/unlock', { ...auth, schema: { params: idParam } }, async (req, reply) => {
    await s.clients.unlock(principalOf(req), req.params.clientId, { ip: req.ip });
    return reply.code(204).send();
  });

  app.post<{ Params: { clientId: string } }>(
    '/api/v1/clients/:clientId/token',
    { ...auth, schema: { params: idParam } },
    async (req, reply) => {
      const t = await s.clients.tokenFor(principalOf(req), req.params.clientId, { ip: req.ip });
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({
          token: t.token,
          tokenType: 'Bearer',
          expiresIn: t.claims.exp - t.claims.iat,
          expiresAt: t.expiresAt.toISOString(),
          clientId: req.params.clientId,
        });
    },
  );

  // POST /auth/oidc (user-level clients) and /auth/oauth (subscription-level clients): the
  // clientId and clientSecret request headers → 201 and the JWT as plain text. Either path
  // accepts either kind of client. Clients send only the headers, so the body may be empty
  // or of any type; in a scope of its own, any body is accepted raw instead of parsed.
  app.register(async (scope) => {
    scope.removeContentTypeParser(['application/json', 'text/plain']);
    for (const path of ['/auth/oidc', '/auth/oauth']) {
      scope.post(path, async (req, reply) => {
        const form = formOf(req);
        const query = (req.query ?? {}) as Record<string, string>;
        const encrypted = form.encrypted ?? query.encrypted;
        if (encrypted !== undefined && encrypted.toLowerCase() !== 'false') {
          throw new BadRequestError(
            "Encrypted (JWE) tokens are not supported by this server; omit the 'encrypted' parameter (or set it to false) to get a signed JWT.",
            'encryption_not_supported',
          );
        }
        const clientId = headerValue(req, 'clientid') ?? headerValue(req, 'client-id') ?? form.clientId;
        const secret = headerValue(req, 'clientsecret') ?? headerValue(req, 'client-secret') ?? form.clientSecret;
        if (!clientId || !secret) {
          throw new UnauthorizedError(
            `Client credentials are missing: send the 'clientId' and 'clientSecret' request headers (missing: ${[!clientId && 'clientId', !secret && 'clientSecret'].filter(Boolean).join(', ')}).`,
            'missing_credentials',
          );
        }
        const client = await s.clients.authenticate(clientId.trim(), secret.trim(), { ip: req.ip, via: path });
        const issued = await s.clients.issueToken(client, { via: path, ip: req.ip });
        return reply.code(201).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(issued.token);
      });
    }
  });
}
