import type { FastifyRequest } from 'fastify';
import { BadRequestError, GatehouseError } from '../domain/errors.ts';
import type { OAuthGrantHandler, OAuthTokenResponse } from '../app.ts';
import type { AuditLog } from '../audit/audit.ts';
import { peekIssuer, type TokenService } from '../tokens/tokens.ts';
import type { IdpVerifier } from './verifier.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const SUBJECT_TOKEN_TYPES = [ACCESS_TOKEN_TYPE, 'urn:ietf:params:oauth:token-type:id_token', 'urn:ietf:params:oauth:token-type:jwt'];
const REQUESTED_TOKEN_TYPES = [ACCESS_TOKEN_TYPE, 'urn:ietf:params:oauth:token-type:jwt'];

/** RFC 8693 §2.2.2: a bad or unacceptable subject token is `invalid_request`. */
function invalid(message: string): BadRequestError {
  return new BadRequestError(message, 'invalid_request');
}

/**
 * RFC 8693 token exchange: a JWT from a trusted identity provider (access or ID token) in,
 * a Gatehouse access token for the mapped user out. The subject token is the credential;
 * no client authentication is needed. Lifetime: tokens.ttlSeconds (4 hours), capped at the
 * subject token's own expiry when the IdP entry says capToSubjectExpiry.
 */
export function tokenExchangeGrant(deps: { verifier: IdpVerifier; tokens: TokenService; audit: AuditLog }): OAuthGrantHandler {
  return async (form: Record<string, string>, req: FastifyRequest): Promise<OAuthTokenResponse> => {
    const subjectToken = form.subject_token;
    const subjectType = form.subject_token_type;
    if (!subjectToken) throw invalid(`'subject_token' is required: the access or ID token from your identity provider`);
    if (!subjectType) throw invalid(`'subject_token_type' is required (one of ${SUBJECT_TOKEN_TYPES.join(', ')})`);
    if (!SUBJECT_TOKEN_TYPES.includes(subjectType)) throw invalid(`'subject_token_type' must be one of ${SUBJECT_TOKEN_TYPES.join(', ')}`);
    if (form.requested_token_type && !REQUESTED_TOKEN_TYPES.includes(form.requested_token_type)) {
      throw invalid(`'requested_token_type' must be ${ACCESS_TOKEN_TYPE} (the default)`);
    }
    if (form.actor_token || form.actor_token_type) throw invalid('delegation (actor_token) is not supported; send only the subject token');
    const iss = peekIssuer(subjectToken);
    if (iss === undefined) throw invalid(`'subject_token' is not a JWT with an 'iss' claim`);
    if (iss === deps.tokens.opts.issuer) throw invalid(`'subject_token' is a Gatehouse token; exchange takes a token from a trusted identity provider`);
    let v;
    try {
      v = await deps.verifier.verify(subjectToken, iss, 'exchange');
    } catch (e) {
      if (e instanceof GatehouseError && (e.status === 401 || e.status === 403)) {
        await deps.audit.record({
          subscriptionId: null, actorType: 'anonymous', actorId: null, actorName: null, action: 'idp.token_exchange',
          outcome: 'failure', reason: e.message, sourceIp: req.ip, details: { issuer: iss.slice(0, 200) },
        });
        throw invalid(`subject_token was refused: ${e.message}`);
      }
      throw e;
    }
    const { idp, principal, claims } = v;
    const now = Math.floor(Date.now() / 1000);
    let ttl = deps.tokens.opts.ttlSeconds;
    if (idp.capToSubjectExpiry && typeof claims.exp === 'number') ttl = Math.min(ttl, claims.exp - now);
    if (ttl < 1) throw invalid('subject_token expires too soon to exchange');
    const issued = await deps.tokens.issue({
      sub: principal.userId,
      subscriptionId: principal.subscriptionId,
      authMethod: 'idp',
      username: principal.username,
      ...(idp.modulesClaim ? { modules: principal.modules } : {}),
      ttlSeconds: ttl,
      extra: { idp_id: idp.id, ...(typeof claims.sub === 'string' ? { idp_sub: claims.sub.slice(0, 256) } : {}) },
    });
    await deps.audit.record({
      subscriptionId: principal.subscriptionId, actorType: 'user', actorId: principal.userId, actorName: principal.username,
      action: 'idp.token_exchange', targetType: 'idp', targetId: idp.id, outcome: 'success', sourceIp: req.ip,
      details: { issuer: idp.issuer, jti: issued.jti, expiresAt: issued.expiresAt.toISOString(), subjectType },
    });
    return { access_token: issued.token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: ttl };
  };
}
