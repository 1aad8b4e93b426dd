import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthorizedError } from '../domain/errors.ts';
import { expectJson } from '../http/authn.ts';
import { getSubscription } from '../store/subscriptions.ts';
import type { Services } from '../app.ts';
import type { ConsoleSessions, LiveSession } from './sessions.ts';

export const SESSION_COOKIE = 'gatehouse_session';
export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Where a console session stands in for a Bearer token: the management API, subscription tokens. */
const SESSION_PATHS = ['/api/v1/', '/qas/subscription-token'];

export function sessionIdOf(req: FastifyRequest): string | undefined {
  // req.cookies: @fastify/cookie, registered by installConsole
  return req.cookies?.[SESSION_COOKIE] || undefined;
}

function secureRequest(req: FastifyRequest, s: Services): boolean {
  return req.protocol === 'https' || s.config.publicUrl.startsWith('https:');
}

function setCookie(reply: FastifyReply, req: FastifyRequest, s: Services, value: string, clear = false): void {
  void reply.setCookie(SESSION_COOKIE, value, {
    httpOnly: true,
    sameSite: 'strict',
    path: '/',
    secure: secureRequest(req, s),
    ...(clear ? { maxAge: 0, expires: new Date(0) } : {}),
  });
}

/**
 * The session cookie as a way to authenticate management requests (RequestAuth). An
 * `Authorization` header always wins, so Bearer and Basic callers are never affected by a
 * cookie. Unsafe methods need the session's CSRF token in `X-CSRF-Token`.
 */
export function sessionAuthenticator(sessions: ConsoleSessions) {
  return async (req: FastifyRequest) => {
    if (req.headers.authorization) return null;
    const path = req.url;
    if (!SESSION_PATHS.some((p) => path.startsWith(p))) return null;
    const sid = sessionIdOf(req);
    if (!sid) return null;
    const live = await sessions.resolve(sid);
    if (!SAFE_METHODS.has(req.method)) requireCsrf(sessions, sid, req);
    return live.principal;
  };
}

function requireCsrf(sessions: ConsoleSessions, sid: string, req: FastifyRequest): void {
  const v = req.headers[CSRF_HEADER];
  const presented = Array.isArray(v) ? v[0] : v;
  if (!sessions.csrfMatches(sid, presented)) {
    throw new ForbiddenError(
      `${presented ? 'The' : 'A'} CSRF token ${presented ? 'does not match this session' : 'is required'}: requests authenticated by the console session cookie must send the X-CSRF-Token header from GET /api/v1/session.`,
      'csrf_failed',
    );
  }
}

async function sessionView(s: Services, sessions: ConsoleSessions, sid: string, live: LiveSession) {
  const p = live.principal;
  const sub = await getSubscription(s.store.db, p.subscriptionId);
  return {
    user: { id: p.userId, username: p.username, role: p.role, apiAccess: p.apiAccess, uiAccess: p.uiAccess, modules: p.modules },
    subscription: sub ? { id: sub.id, name: sub.name } : { id: p.subscriptionId },
    csrfToken: sessions.csrfToken(sid),
    createdAt: live.row.createdAt,
    expiresAt: live.row.expiresAt,
    idleExpiresAt: live.idleExpiresAt.toISOString(),
    idleTimeoutSeconds: sessions.settings.idleTimeoutSeconds,
  };
}

/** POST/GET/DELETE /api/v1/session: sign in, who am I (+ CSRF token), sign out. */
export function sessionRoutes(app: FastifyInstance, s: Services, sessions: ConsoleSessions): void {
  const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store');

  app.post<{ Body: { username: string; password: string } }>(
    '/api/v1/session',
    {
      preValidation: expectJson,
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['username', 'password'],
          properties: { username: { type: 'string', minLength: 1, maxLength: 256 }, password: { type: 'string', minLength: 1, maxLength: 1024 } },
        },
      },
    },
    async (req, reply) => {
      // A new id at every sign-in (no session fixation): whatever cookie came along is ended.
      const old = sessionIdOf(req);
      if (old) await sessions.end(old);
      const user = await s.passwords.authenticate(req.body.username, req.body.password, req.ip, 'console');
      const ua = req.headers['user-agent'];
      const { sid } = await sessions.create(user, { ip: req.ip, userAgent: typeof ua === 'string' ? ua : null });
      const live = await sessions.resolve(sid);
      setCookie(reply, req, s, sid);
      noStore(reply);
      return reply.code(201).send(await sessionView(s, sessions, sid, live));
    },
  );

  app.get('/api/v1/session', async (req, reply) => {
    noStore(reply);
    const sid = sessionIdOf(req);
    if (!sid) throw new UnauthorizedError('Not signed in to the console: POST /api/v1/session with your username and password.', 'no_session');
    try {
      return await sessionView(s, sessions, sid, await sessions.resolve(sid));
    } catch (e) {
      setCookie(reply, req, s, '', true);
      throw e;
    }
  });

  app.delete('/api/v1/session', async (req, reply) => {
    noStore(reply);
    const sid = sessionIdOf(req);
    if (sid) {
      requireCsrf(sessions, sid, req);
      const live = await sessions.resolve(sid).catch(() => null);
      await sessions.end(sid);
      if (live) {
        await s.audit.record({
          subscriptionId: live.principal.subscriptionId, actorType: 'user', actorId: live.principal.userId,
          actorName: live.principal.username, action: 'console.logout', outcome: 'success', sourceIp: req.ip,
        });
      }
    }
    setCookie(reply, req, s, '', true);
    return reply.code(204).send();
  });
}
