import type { FastifyInstance } from 'fastify';
import { MODULES } from '../domain/modules.ts';
import { expectJson, principalOf } from '../http/authn.ts';
import { getSubscription } from '../store/subscriptions.ts';
import { listAuditEvents } from '../store/audit.ts';
import { requireManager } from '../access/access.ts';
import type { Services } from '../app.ts';
import type { CreateUserInput, UpdateUserInput } from './service.ts';

const modules = { type: 'array', items: { type: 'string', enum: [...MODULES] }, maxItems: 50 } as const;
const userFields = {
  password: { type: 'string', minLength: 1, maxLength: 256 },
  email: { type: ['string', 'null'], maxLength: 254 },
  role: { type: 'string', enum: ['manager', 'user'] },
  apiAccess: { type: 'boolean' },
  uiAccess: { type: 'boolean' },
  modules,
  ssoEnabled: { type: 'boolean' },
} as const;
const idParam = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;

export function userRoutes(app: FastifyInstance, s: Services): void {
  const auth = { preHandler: s.requestAuth.required };

  app.get('/api/v1/me', auth, async (req) => {
    const p = principalOf(req);
    const sub = await getSubscription(s.store.db, p.subscriptionId);
    const base = {
      kind: p.kind === 'user' ? 'user' : p.authMethod === 'subscription_client' ? 'client' : 'subscription_token',
      authMethod: p.authMethod,
      subscription: sub ? { id: sub.id, name: sub.name } : { id: p.subscriptionId },
      modules: p.modules,
      tokenId: p.tokenId ?? null,
    };
    if (p.kind === 'user') {
      return { ...base, user: { id: p.userId, username: p.username, role: p.role, apiAccess: p.apiAccess, uiAccess: p.uiAccess }, clientId: p.clientId ?? null };
    }
    return { ...base, user: null, clientId: p.clientId ?? null, secretId: p.secretId ?? null };
  });

  app.post<{ Body: CreateUserInput }>(
    '/api/v1/users',
    {
      ...auth,
      preValidation: expectJson,
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['username', 'role', 'apiAccess', 'uiAccess', 'modules'],
          properties: { username: { type: 'string', minLength: 1, maxLength: 64 }, ...userFields },
        },
      },
    },
    async (req, reply) => {
      const u = await s.users.create(principalOf(req), req.body, { ip: req.ip });
      return reply.code(201).send(u);
    },
  );

  app.get('/api/v1/users', auth, async (req) => ({ users: await s.users.list(principalOf(req)) }));

  app.get<{ Params: { id: string } }>('/api/v1/users/:id', { ...auth, schema: { params: idParam } }, async (req) =>
    s.users.get(principalOf(req), req.params.id),
  );

  app.patch<{ Params: { id: string }; Body: UpdateUserInput }>(
    '/api/v1/users/:id',
    {
      ...auth,
      preValidation: expectJson,
      schema: { params: idParam, body: { type: 'object', additionalProperties: false, minProperties: 1, properties: userFields } },
    },
    async (req) => s.users.update(principalOf(req), req.params.id, req.body, { ip: req.ip }),
  );

  app.post<{ Params: { id: string } }>('/api/v1/users/:id/deactivate', { ...auth, schema: { params: idParam } }, async (req) =>
    s.users.setStatus(principalOf(req), req.params.id, 'deactivated', { ip: req.ip }),
  );
  app.post<{ Params: { id: string } }>('/api/v1/users/:id/activate', { ...auth, schema: { params: idParam } }, async (req) =>
    s.users.setStatus(principalOf(req), req.params.id, 'active', { ip: req.ip }),
  );
  app.post<{ Params: { id: string } }>('/api/v1/users/:id/unlock', { ...auth, schema: { params: idParam } }, async (req, reply) => {
    await s.users.unlock(principalOf(req), req.params.id, { ip: req.ip });
    return reply.code(204).send();
  });

  app.get<{ Querystring: Record<string, string> }>('/api/v1/audit', auth, async (req) => {
    const p = principalOf(req);
    requireManager(p);
    const q = req.query;
    const limit = q.limit ? Math.max(1, Math.min(1000, Number.parseInt(q.limit, 10) || 100)) : 100;
    return { events: await listAuditEvents(s.store.db, { subscriptionId: p.subscriptionId, action: q.action, outcome: q.outcome, actorId: q.actor, since: q.since, limit }) };
  });
}
