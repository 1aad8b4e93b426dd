import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequestError, GatehouseError } from '../domain/errors.ts';
import { MODULES, isModuleName, type ModuleName } from '../domain/modules.ts';
import { requireForm } from '../http/body.ts';
import type { OAuthGrantHandler, Services } from '../app.ts';
import type { GatehouseClaims } from '../tokens/tokens.ts';
import { authenticateOAuthClient } from './client-auth.ts';

const oauth = { config: { errorFormat: 'oauth' } } as const;

/** The form of a standard endpoint; a wrong content type is an RFC 6749 invalid_request. */
function oauthForm(req: FastifyRequest): Record<string, string> {
  try {
    return requireForm(req);
  } catch (e) {
    if (e instanceof GatehouseError) throw new BadRequestError(e.message, 'invalid_request');
    throw e;
  }
}

/** `scope`: space-separated module names (RFC 6749 §3.3), each within the client's grant. */
function parseScope(raw: string | undefined, allowed: ModuleName[]): ModuleName[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const wanted = [...new Set(raw.trim().split(/\s+/))];
  const unknown = wanted.filter((w) => !isModuleName(w));
  if (unknown.length) {
    throw new BadRequestError(`Unknown scope(s) ${unknown.join(', ')}; scopes are module names: ${MODULES.join(' ')}.`, 'invalid_scope');
  }
  const beyond = wanted.filter((w) => !allowed.includes(w as ModuleName));
  if (beyond.length) throw new BadRequestError(`This client may not request ${beyond.join(', ')}.`, 'invalid_scope');
  return MODULES.filter((m) => wanted.includes(m));
}

/** grant_type=client_credentials (RFC 6749 §4.4) for user- and subscription-level clients. */
export function clientCredentialsGrant(s: Services): OAuthGrantHandler {
  return async (form, req) => {
    const client = await authenticateOAuthClient(s.clients, form, req, '/oauth2/token');
    // perf (issue 9): the client's modules are only needed to check a requested scope
    const scope = form.scope === undefined || form.scope.trim() === ''
      ? undefined
      : parseScope(form.scope, await s.clients.currentModules(client).catch(() => [] as ModuleName[]));
    let issued;
    try {
      issued = await s.clients.issueToken(client, { via: '/oauth2/token', scope, ip: req.ip });
    } catch (e) {
      // The client is fine but may not get a token now (owner deactivated, expired): RFC 6749 names this.
      if (e instanceof GatehouseError && (e.status === 401 || e.status === 403)) throw new BadRequestError(e.message, 'unauthorized_client');
      throw e;
    }
    return {
      access_token: issued.token,
      token_type: 'Bearer',
      expires_in: issued.claims.exp - issued.claims.iat,
      ...(scope ? { scope: scope.join(' ') } : {}),
    };
  };
}

/**
 * The standard OAuth 2.0 endpoints: POST /oauth2/token (dispatching by grant_type to the
 * handlers in services.oauthGrants), /oauth2/introspect (RFC 7662), /oauth2/revoke (RFC 7009).
 */
export function oauthRoutes(app: FastifyInstance, s: Services): void {
  app.post('/oauth2/token', oauth, async (req, reply) => {
    const form = oauthForm(req);
    const grantType = form.grant_type;
    if (!grantType) throw new BadRequestError("Missing 'grant_type'.", 'invalid_request');
    const handler = s.oauthGrants.get(grantType);
    if (!handler) {
      throw new BadRequestError(
        `grant_type '${grantType.slice(0, 100)}' is not supported; supported: ${[...s.oauthGrants.keys()].join(', ')}.`,
        'unsupported_grant_type',
      );
    }
    const r = await handler(form, req);
    // perf (issue 9): serialized here, with the content type set, so Fastify's serializer and
    // preSerialization hooks are skipped (the body is what they would have produced).
    return reply
      .header('cache-control', 'no-store')
      .header('pragma', 'no-cache')
      .header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify(r));
  });

  app.post('/oauth2/introspect', oauth, async (req, reply) => {
    const form = oauthForm(req);
    const client = await authenticateOAuthClient(s.clients, form, req, '/oauth2/introspect');
    if (!form.token) throw new BadRequestError("Missing 'token'.", 'invalid_request');
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    let claims: GatehouseClaims;
    let modules: ModuleName[];
    try {
      // Full verification: signature, expiry, revocation and the live state behind the token.
      const principal = await s.tokens.verify(form.token);
      claims = await s.tokens.verifyClaims(form.token);
      modules = principal.modules;
    } catch {
      return { active: false };
    }
    // A client sees only tokens of its own subscription.
    if (claims.subscription_id !== client.subscriptionId) return { active: false };
    return {
      active: true,
      token_type: 'Bearer',
      iss: claims.iss,
      sub: claims.sub,
      aud: claims.aud,
      iat: claims.iat,
      exp: claims.exp,
      ...(claims.nbf !== undefined ? { nbf: claims.nbf } : {}),
      jti: claims.jti,
      ...(claims.client_id ? { client_id: claims.client_id } : {}),
      ...(claims.username ? { username: claims.username } : {}),
      scope: typeof claims.scope === 'string' ? claims.scope : modules.join(' '),
      subscription_id: claims.subscription_id,
      auth_method: claims.auth_method,
      modules,
    };
  });

  app.post('/oauth2/revoke', oauth, async (req, reply) => {
    const form = oauthForm(req);
    const client = await authenticateOAuthClient(s.clients, form, req, '/oauth2/revoke');
    if (!form.token) throw new BadRequestError("Missing 'token'.", 'invalid_request');
    reply.header('cache-control', 'no-store');
    let claims: GatehouseClaims;
    try {
      claims = await s.tokens.verifyClaims(form.token);
    } catch {
      // RFC 7009 §2.2: an invalid, expired or unknown token needs no revocation; answer 200.
      return reply.code(200).send();
    }
    if (claims.client_id !== client.clientId) {
      throw new BadRequestError('This token was not issued to the authenticated client; a client may revoke only its own tokens.', 'unauthorized_client');
    }
    await s.revocations.revoke(claims, { actorType: 'client', actorId: client.clientId, actorName: client.name, sourceIp: req.ip, clientId: client.clientId });
    return reply.code(200).send();
  });
}
