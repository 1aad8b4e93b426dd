import type { FastifyRequest } from 'fastify';
import { GatehouseError, UnauthorizedError } from '../domain/errors.ts';
import type { Principal } from '../domain/types.ts';
import type { TokenService } from '../tokens/tokens.ts';
import type { PasswordAuthenticator } from '../auth/password-auth.ts';

/** A JWT sent without a scheme (`Authorization: <JWT>`, as in the EDR sample of spec 004). */
const BARE_JWT = /^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+$/;

export interface AcceptedAuth {
  allowsBasic: boolean;
  allowsBearer: boolean;
}

function quote(s: string): string {
  return s.replace(/["\\\r\n]/g, '');
}

/**
 * Authenticates a module call: Basic (same checks and throttling as POST /auth, cached
 * safely) or Bearer (any Gatehouse token, verified from memory), as the route allows.
 * Failures are 401s carrying the challenges the route accepts.
 */
export class GatewayAuthenticator {
  constructor(
    private readonly tokens: TokenService,
    private readonly passwords: PasswordAuthenticator,
    private readonly basicRealm: string,
  ) {}

  challenge(route: AcceptedAuth, presented: 'basic' | 'bearer' | null, e: GatehouseError): GatehouseError {
    if (e.status !== 401) return e;
    const parts: string[] = [];
    if (route.allowsBasic) parts.push(`Basic realm="${this.basicRealm}"`);
    if (route.allowsBearer) {
      parts.push(
        presented === 'bearer' ? `Bearer realm="gatehouse", error="invalid_token", error_description="${quote(e.message)}"` : 'Bearer realm="gatehouse"',
      );
    }
    return new UnauthorizedError(e.message, e.code, {
      headers: { ...e.headers, 'www-authenticate': parts.join(', ') },
      ...(e.qualysCode !== undefined ? { qualysCode: e.qualysCode } : {}),
    });
  }

  async authenticate(route: AcceptedAuth, req: FastifyRequest): Promise<Principal> {
    const h = req.headers.authorization;
    let presented: 'basic' | 'bearer' | null = null;
    try {
      if (!h) {
        const how = [route.allowsBasic ? 'Basic (username:password)' : '', route.allowsBearer ? 'Bearer <JWT>' : ''].filter(Boolean).join(' or ');
        throw new UnauthorizedError(`Authentication required: send Authorization: ${how}.`, 'missing_credentials');
      }
      if (/^basic(\s|$)/i.test(h)) {
        presented = 'basic';
        if (!route.allowsBasic) throw new UnauthorizedError('This API accepts only Bearer tokens (Authorization: Bearer <JWT>); Basic authentication is not supported here.', 'unsupported_scheme');
        return await this.passwords.basic(h, req.ip);
      }
      let token: string | undefined;
      if (/^bearer/i.test(h)) token = h.slice(6).trim();
      else if (BARE_JWT.test(h.trim())) token = h.trim();
      if (token === undefined) {
        throw new UnauthorizedError(`Unsupported Authorization scheme; use ${route.allowsBasic ? 'Basic or ' : ''}Bearer.`, 'unsupported_scheme');
      }
      presented = 'bearer';
      if (!route.allowsBearer) throw new UnauthorizedError('This API accepts only Basic authentication (username:password).', 'unsupported_scheme');
      if (!token) throw new UnauthorizedError('Bearer token is empty.', 'invalid_token');
      return await this.tokens.verify(token);
    } catch (e) {
      throw e instanceof GatehouseError ? this.challenge(route, presented, e) : e;
    }
  }
}

/** Header-safe rendering of a value a user chose (a username may hold any character). */
function headerSafe(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

/** What upstreams (and forward-auth callers) learn about the caller. */
export function identityHeaders(p: Principal): Record<string, string> {
  const h: Record<string, string> = {
    'x-gatehouse-subscription': p.subscriptionId,
    'x-gatehouse-auth-method': p.authMethod,
    'x-gatehouse-modules': p.modules.join(','),
  };
  if (p.kind === 'user') {
    h['x-gatehouse-user'] = headerSafe(p.username);
    h['x-gatehouse-user-id'] = p.userId;
  }
  if (p.clientId) h['x-gatehouse-client'] = p.clientId;
  return h;
}
