import type { FastifyInstance } from 'fastify';
import { principalOf } from '../http/authn.ts';
import { requireManager } from '../access/access.ts';
import type { Services } from '../app.ts';
import { listOutbox } from './outbox.ts';

/** GET /api/v1/outbox: the subscription's alert messages and their delivery state (managers). */
export function outboxRoutes(app: FastifyInstance, s: Services): void {
  app.get<{ Querystring: { limit?: string } }>('/api/v1/outbox', { preHandler: s.requestAuth.required }, async (req) => {
    const m = requireManager(principalOf(req));
    const limit = req.query.limit ? Math.max(1, Math.min(1000, Number.parseInt(req.query.limit, 10) || 200)) : 200;
    return { messages: await listOutbox(s.store.db, m.subscriptionId, limit) };
  });
}
