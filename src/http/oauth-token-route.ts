import type { FastifyInstance } from 'fastify';
import type { Services } from '../app.ts';
import { BadRequestError } from '../domain/errors.ts';
import { requireForm } from './body.ts';

/**
 * POST /oauth2/token (RFC 6749 §3.2): dispatches by grant_type to the handlers registered in
 * `services.oauthGrants`; errors in the RFC 6749 §5.2 shape. Minimal dispatcher written by
 * the idp capability (issue 6); the clients capability may replace it with its own.
 */
export function oauthTokenRoute(app: FastifyInstance, s: Services): void {
  s.discoveryExtras.token_endpoint ??= `${s.config.publicUrl}/oauth2/token`;
  app.post('/oauth2/token', { config: { errorFormat: 'oauth' } }, async (req, reply) => {
    let form: Record<string, string>;
    try {
      form = requireForm(req);
    } catch (e) {
      throw new BadRequestError((e as Error).message, 'invalid_request');
    }
    const grant = form.grant_type;
    if (!grant) throw new BadRequestError(`'grant_type' is required`, 'invalid_request');
    const handler = s.oauthGrants.get(grant);
    if (!handler) {
      throw new BadRequestError(`grant_type '${grant.slice(0, 100)}' is not supported; supported: ${[...s.oauthGrants.keys()].join(', ') || 'none'}`, 'unsupported_grant_type');
    }
    const body = await handler(form, req);
    return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(body);
  });
}
