import type { FastifyInstance } from 'fastify';
import type { Services } from '../app.ts';
import { UnauthorizedError } from '../domain/errors.ts';
import { intersectModules, isModuleName } from '../domain/modules.ts';
import { IdpService } from './service.ts';
import { IdpVerifier } from './verifier.ts';
import { syncConfiguredIdps } from './config-sync.ts';
import { idpRoutes } from './routes.ts';
import { TOKEN_EXCHANGE_GRANT, tokenExchangeGrant } from './exchange.ts';

/**
 * Wire the external-IdP capability into a server: config-file entries synced to the store,
 * IdP tokens accepted as Bearer wherever Gatehouse tokens are, the token-exchange grant,
 * the resolver for exchanged Gatehouse tokens, and the management API.
 */
export async function installIdp(app: FastifyInstance, s: Services): Promise<{ service: IdpService; verifier: IdpVerifier }> {
  const settings = s.config.idps;
  const service = new IdpService(s.store, s.audit, settings, s.config.publicUrl);
  await syncConfiguredIdps(s.store, service, settings);
  const verifier = new IdpVerifier(s.store, settings, s.userDirectory, s.log);
  app.addHook('onClose', async () => verifier.close());

  s.tokens.registerExternalVerifier(async (token, issuer) => (await verifier.verify(token, issuer, 'api')).principal);

  // Gatehouse tokens minted by token exchange: live user state, and the IdP must still be trusted.
  s.tokens.registerResolver('idp', async (c) => {
    const idpId = typeof c.idp_id === 'string' ? c.idp_id : '';
    const idp = await verifier.idpById(idpId);
    if (!idp || idp.subscriptionId !== c.subscription_id) {
      throw new UnauthorizedError('The identity provider this token was exchanged from is no longer trusted.', 'invalid_token');
    }
    if (!idp.allowExchange) throw new UnauthorizedError(`Token exchange has been disabled for identity provider '${idp.name}'.`, 'invalid_token');
    const p = await s.userDirectory.principalFor(c.sub, 'idp');
    if (p.subscriptionId !== c.subscription_id) throw new UnauthorizedError('token subscription does not match its user', 'invalid_token');
    const modules = Array.isArray(c.modules) ? intersectModules(p.modules, c.modules.filter(isModuleName)) : p.modules;
    return { ...p, modules };
  });

  s.oauthGrants.set(TOKEN_EXCHANGE_GRANT, tokenExchangeGrant({ verifier, tokens: s.tokens, audit: s.audit }));
  idpRoutes(app, s, service);
  return { service, verifier };
}
