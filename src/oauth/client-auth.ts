import type { FastifyRequest } from 'fastify';
import { BadRequestError, GatehouseError, UnauthorizedError } from '../domain/errors.ts';
import type { ClientService } from '../clients/service.ts';
import type { ClientRecord } from '../clients/store.ts';

const BASIC_CHALLENGE = { 'www-authenticate': 'Basic realm="gatehouse", charset="UTF-8"' };

/** RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64. */
function formDecode(v: string): string {
  if (!v.includes('%') && !v.includes('+')) return v; // perf (issue 9): nothing to decode (ids and generated secrets)
  try {
    return decodeURIComponent(v.replace(/\+/g, ' '));
  } catch {
    throw new UnauthorizedError('Basic client credentials are not valid form-urlencoded text.', 'invalid_client', { headers: BASIC_CHALLENGE });
  }
}

/**
 * Client authentication at the standard endpoints (token, introspection, revocation):
 * client_secret_basic or client_secret_post, exactly one of them. Failures are RFC 6749
 * `invalid_client` (401, with a Basic challenge when the header was used).
 */
export async function authenticateOAuthClient(
  clients: ClientService,
  form: Record<string, string>,
  req: FastifyRequest,
  via: string,
): Promise<ClientRecord> {
  const h = req.headers.authorization;
  const usesBasic = typeof h === 'string' && /^basic\s/i.test(h);
  let id: string | undefined;
  let secret: string | undefined;
  if (usesBasic) {
    if (form.client_secret !== undefined) {
      throw new BadRequestError('Use one client authentication method: either HTTP Basic or client_secret in the form, not both.', 'invalid_request');
    }
    const m = /^basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(h);
    const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
    const i = decoded.indexOf(':');
    if (i <= 0) throw new UnauthorizedError('Authorization header is not valid Basic client credentials (base64 of "client_id:client_secret").', 'invalid_client', { headers: BASIC_CHALLENGE });
    id = formDecode(decoded.slice(0, i));
    secret = formDecode(decoded.slice(i + 1));
    if (form.client_id !== undefined && form.client_id !== id) {
      throw new BadRequestError('client_id in the form does not match the client authenticated by HTTP Basic.', 'invalid_request');
    }
  } else if (h !== undefined && !/^bearer\s/i.test(h)) {
    throw new UnauthorizedError('Unsupported Authorization scheme for client authentication; use Basic (client_secret_basic).', 'invalid_client', { headers: BASIC_CHALLENGE });
  } else {
    id = form.client_id;
    secret = form.client_secret;
    if (!id || !secret) {
      throw new UnauthorizedError(
        'Client authentication is required: HTTP Basic (client_secret_basic) or client_id and client_secret form fields (client_secret_post).',
        'invalid_client',
        { headers: BASIC_CHALLENGE },
      );
    }
  }
  try {
    return await clients.authenticate(id, secret, { ip: req.ip, via });
  } catch (e) {
    if (e instanceof GatehouseError && e.status === 401) {
      throw new UnauthorizedError(e.message, 'invalid_client', usesBasic ? { headers: BASIC_CHALLENGE } : {});
    }
    throw e;
  }
}
