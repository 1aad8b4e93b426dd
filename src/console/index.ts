import type { FastifyInstance } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import type { Services } from '../app.ts';
import { ConsoleSessions } from './sessions.ts';
import { sessionAuthenticator, sessionRoutes } from './routes.ts';
import { consoleStatic } from './static.ts';

export { ConsoleSessions } from './sessions.ts';
export { SESSION_COOKIE, CSRF_HEADER } from './routes.ts';

/**
 * Wire the web console into a server: sessions (table `sessions`), the session cookie as a
 * way to authenticate management API calls, /api/v1/session, and the SPA at /console.
 * The SPA itself only calls the public HTTP API.
 */
export async function installConsole(app: FastifyInstance, s: Services, clock: () => Date): Promise<ConsoleSessions> {
  const settings = s.config.console;
  const sessions = new ConsoleSessions(s.store, s.userDirectory, s.audit, settings, clock);
  // Global on purpose: every management route's RequestAuth reads the session cookie.
  await app.register(fastifyCookie);
  app.addHook('onClose', async () => sessions.close());
  s.requestAuth.addAuthenticator(sessionAuthenticator(sessions));
  sessionRoutes(app, s, sessions);
  if (settings.enabled) await consoleStatic(app, settings.distDir);
  return sessions;
}
