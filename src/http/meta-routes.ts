import type { FastifyInstance } from 'fastify';
import type { Services } from '../app.ts';

/** Health probes, JWKS and the discovery document. */
export function metaRoutes(app: FastifyInstance, s: Services): void {
  app.get('/health/live', async () => ({ status: 'ok' }));
  app.get('/health/ready', async (_req, reply) => {
    const ready = await s.store.ready();
    const detail = { store: s.store.dialect, migrations: ready ? 'applied' : 'pending or unreachable', ...s.readinessDetail() };
    // scaleout (issue 8): a lost Redis or LISTEN connection is 'degraded' (200), not down.
    const status = !ready ? 'not ready' : 'degraded' in detail ? 'degraded' : 'ready';
    return reply.code(ready ? 200 : 503).send({ ...detail, status });
  });
  app.get('/.well-known/jwks.json', async (_req, reply) =>
    reply.header('cache-control', 'public, max-age=300').type('application/jwk-set+json').send(s.keys.jwks()),
  );
  const discovery = async () => s.discovery();
  app.get('/.well-known/openid-configuration', discovery);
  app.get('/.well-known/oauth-authorization-server', discovery);
}
