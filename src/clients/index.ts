import type { FastifyInstance } from 'fastify';
import type { Services } from '../app.ts';
import { MODULES } from '../domain/modules.ts';
import { clientRoutes } from './routes.ts';
import { clientCredentialsGrant, oauthRoutes } from '../oauth/routes.ts';
import { LoginThrottle } from '../auth/throttle.ts'; // harden (issue 10)

/**
 * Wire issue 3 into a server: client management and /auth/oidc|oauth, the standard OAuth
 * endpoints with the client_credentials grant, and their entries in the discovery document.
 */
export function installClients(app: FastifyInstance, s: Services): void {
  // harden (issue 10): client secrets are throttled like passwords (Redis-shared when configured)
  s.clients.setThrottle(new LoginThrottle(s.config.auth, s.redis?.limiterFactory(), 'client_auth', 'client'));
  clientRoutes(app, s);
  s.oauthGrants.set('client_credentials', clientCredentialsGrant(s));
  oauthRoutes(app, s);
  const base = s.config.publicUrl;
  const authMethods = ['client_secret_basic', 'client_secret_post'];
  const extraGrantTypes = new Set<string>();
  Object.assign(s.discoveryExtras, {
    token_endpoint: `${base}/oauth2/token`,
    introspection_endpoint: `${base}/oauth2/introspect`,
    revocation_endpoint: `${base}/oauth2/revoke`,
    token_endpoint_auth_methods_supported: authMethods,
    introspection_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_methods_supported: authMethods,
    scopes_supported: [...MODULES],
  });
  // Every registered grant is advertised, whichever capability registered it.
  Object.defineProperty(s.discoveryExtras, 'grant_types_supported', {
    enumerable: true,
    configurable: true,
    get: () => [...new Set([...s.oauthGrants.keys(), ...extraGrantTypes])],
    set: (v: unknown) => {
      if (Array.isArray(v)) for (const g of v) extraGrantTypes.add(String(g));
    },
  });
}
