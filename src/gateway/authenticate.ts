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

  /**
   * The caller's principal, synchronously when it is known from memory (a token or Basic
   * credentials verified before, state loaded: perf, issue 9), else a promise. Refusals are
   * thrown (or rejected) with the route's challenges.
   */
  authenticate(route: AcceptedAuth, h: string | undefined, ip: string): Principal | Promise<Principal> {
    let presented: 'basic' | 'bearer' | null = null;
    try {
      if (!h) {
        const how = [route.allowsBasic ? 'Basic (username:password)' : '', route.allowsBearer ? 'Bearer <JWT>' : ''].filter(Boolean).join(' or ');
        throw new UnauthorizedError(`Authentication required: send Authorization: ${how}.`, 'missing_credentials');
      }
      let r: Principal | Promise<Principal>;
      if (/^basic(\s|$)/i.test(h)) {
        presented = 'basic';
        if (!route.allowsBasic) throw new UnauthorizedError('This API accepts only Bearer tokens (Authorization: Bearer <JWT>); Basic authentication is not supported here.', 'unsupported_scheme');
        r = this.passwords.basicFast(h, ip);
      } else {
        let token: string | undefined;
        if (/^bearer/i.test(h)) token = h.slice(6).trim();
        else if (BARE_JWT.test(h.trim())) token = h.trim();
        if (token === undefined) {
          throw new UnauthorizedError(`Unsupported Authorization scheme; use ${route.allowsBasic ? 'Basic or ' : ''}Bearer.`, 'unsupported_scheme');
        }
        presented = 'bearer';
        if (!route.allowsBearer) throw new UnauthorizedError('This API accepts only Basic authentication (username:password).', 'unsupported_scheme');
        if (!token) throw new UnauthorizedError('Bearer token is empty.', 'invalid_token');
        try {
          r = this.tokens.verifyFast(token);
        } catch (e) {
          this.tokens.noteFailure(e);
          throw e;
        }
        if (r instanceof Promise) {
          r = r.catch((e: unknown) => {
            this.tokens.noteFailure(e);
            throw e;
          });
        }
      }
      if (r instanceof Promise) {
        const how = presented;
        return r.catch((e: unknown) => {
          throw e instanceof GatehouseError ? this.challenge(route, how, e) : e;
        });
      }
      return r;
    } catch (e) {
      throw e instanceof GatehouseError ? this.challenge(route, presented, e) : e;
    }
  }
}

/** Header-safe rendering of a value a user chose (a username may hold any character). */
function headerSafe(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

/** Identity headers by principal: principals for unchanged state are reused (frozen) objects (perf, issue 9). */
const identityByPrincipal = new WeakMap<Principal, Readonly<Record<string, string>>>();

/** What upstreams (and forward-auth callers) learn about the caller. Read-only: shared. */
export function identityHeaders(p: Principal): Readonly<Record<string, string>> {
  let h = identityByPrincipal.get(p);
  if (!h) identityByPrincipal.set(p, (h = Object.freeze(buildIdentityHeaders(p))));
  return h;
}

function buildIdentityHeaders(p: Principal): Record<string, string> {
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
