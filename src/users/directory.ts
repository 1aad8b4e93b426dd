import { ForbiddenError, UnauthorizedError } from '../domain/errors.ts';
import type { AuthMethod, Principal } from '../domain/types.ts';
import type { Store } from '../store/db.ts';
import { getUserById, type UserRecord } from '../store/users.ts';
import { StateCache } from '../tokens/state-cache.ts';
import { effectiveApiAccess, effectiveModules, effectiveUiAccess } from '../access/access.ts';
import type { GatehouseClaims, TokenService } from '../tokens/tokens.ts';

type UserPrincipal = Extract<Principal, { kind: 'user' }>;

/**
 * Live user state for verification, from memory (StateCache fed by the change feed), so a
 * deactivation or a permission change applies to existing tokens on their next use.
 */
export class UserDirectory {
  readonly cache: StateCache<UserRecord>;

  constructor(store: Store) {
    this.cache = new StateCache(store, 'user', (id) => getUserById(store.db, id));
  }

  /** Principal for a user, or a 401/403 saying why the user can't act now. */
  async principalFor(userId: string, method: AuthMethod): Promise<UserPrincipal> {
    const u = await this.cache.get(userId);
    if (!u) throw new UnauthorizedError('The user of this token no longer exists.', 'invalid_token');
    if (u.status !== 'active') throw new UnauthorizedError('The user of this token is deactivated.', 'user_deactivated');
    if ((method === 'password' || method === 'basic') && u.ssoEnabled) {
      throw new ForbiddenError('API authentication does not support SSO (Single Sign-On); SSO is enabled for this user.', 'sso_enabled');
    }
    return {
      kind: 'user',
      subscriptionId: u.subscriptionId,
      userId: u.id,
      username: u.username,
      role: u.role,
      apiAccess: effectiveApiAccess(u),
      uiAccess: effectiveUiAccess(u),
      modules: effectiveModules(u),
      authMethod: method,
    };
  }

  /** Resolvers for tokens that stand for a user directly. */
  registerResolvers(tokens: TokenService): void {
    const byUser = (method: AuthMethod) => async (c: GatehouseClaims) => {
      const p = await this.principalFor(c.sub, method);
      if (p.subscriptionId !== c.subscription_id) throw new UnauthorizedError('token subscription does not match its user', 'invalid_token');
      return p;
    };
    tokens.registerResolver('password', byUser('password'));
    tokens.registerResolver('console', byUser('console'));
  }
}
