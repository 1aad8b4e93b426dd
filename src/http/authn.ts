import type { FastifyReply, FastifyRequest } from 'fastify';
import { UnauthorizedError, GatehouseError } from '../domain/errors.ts';
import type { Principal } from '../domain/types.ts';
import type { TokenService } from '../tokens/tokens.ts';
import type { PasswordAuthenticator } from '../auth/password-auth.ts';
import { requireJson } from './body.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** Extra ways to authenticate a request (the console's session cookie), tried before the header. */
export type RequestAuthenticator = (req: FastifyRequest) => Promise<Principal | null>;

function quote(s: string): string {
  return s.replace(/["\\]/g, '');
}

/** A 401 carrying the RFC 6750 challenge that names why. */
export function bearerChallenge(e: GatehouseError, realm = 'gatehouse'): GatehouseError {
  if (e.status !== 401) return e;
  const err = e.code === 'missing_credentials' ? '' : `, error="invalid_token", error_description="${quote(e.message)}"`;
  return new UnauthorizedError(e.message, e.code, {
    headers: { ...e.headers, 'www-authenticate': `Bearer realm="${realm}"${err}` },
    ...(e.qualysCode !== undefined ? { qualysCode: e.qualysCode } : {}),
  });
}

/**
 * Resolves the caller of a management request: `Authorization: Bearer <any Gatehouse token>`,
 * `Authorization: Basic`, or a registered authenticator (console session).
 */
export class RequestAuth {
  private readonly extra: RequestAuthenticator[] = [];

  constructor(
    private readonly tokens: TokenService,
    private readonly passwords: PasswordAuthenticator,
  ) {}

  addAuthenticator(a: RequestAuthenticator): void {
    this.extra.push(a);
  }

  async resolve(req: FastifyRequest): Promise<Principal> {
    for (const a of this.extra) {
      const p = await a(req);
      if (p) return p;
    }
    const h = req.headers.authorization;
    if (!h) throw new UnauthorizedError('Authentication required: send Authorization: Bearer <JWT>.', 'missing_credentials');
    if (/^bearer /i.test(h)) {
      const token = h.slice(7).trim();
      if (!token) throw new UnauthorizedError('Bearer token is empty.', 'invalid_token');
      return this.tokens.verify(token);
    }
    if (/^basic /i.test(h)) return this.passwords.basic(h, req.ip);
    throw new UnauthorizedError('Unsupported Authorization scheme; use Bearer or Basic.', 'invalid_request');
  }

  /** preHandler: sets request.principal or answers 401 with a Bearer challenge. */
  readonly required = async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    try {
      req.principal = await this.resolve(req);
    } catch (e) {
      throw e instanceof GatehouseError ? bearerChallenge(e) : e;
    }
  };
}

/** preValidation for JSON routes: a clear 400 for any other content type. */
export async function expectJson(req: FastifyRequest): Promise<void> {
  requireJson(req);
}

export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new UnauthorizedError('Authentication required.', 'missing_credentials');
  return req.principal;
}
