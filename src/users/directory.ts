import { ForbiddenError, UnauthorizedError } from '../domain/errors.ts';
import type { AuthMethod, Principal } from '../domain/types.ts';
import type { Store } from '../store/db.ts';
import { getUserById, getUserByUsername, usernameKey, type UserRecord } from '../store/users.ts';
import { makeRoom } from '../util/bounded-map.ts';
import { StateCache } from '../tokens/state-cache.ts';
import { effectiveApiAccess, effectiveModules, effectiveUiAccess } from '../access/access.ts';
import type { GatehouseClaims, TokenService } from '../tokens/tokens.ts';

type UserPrincipal = Extract<Principal, { kind: 'user' }>;

/** How long an unknown username is remembered at most (perf, issue 9; see byUsername). */
const UNKNOWN_MS = 10_000;

/**
 * Live user state for verification, from memory (StateCache fed by the change feed), so a
 * deactivation or a permission change applies to existing tokens on their next use.
 */
export class UserDirectory {
  readonly cache: StateCache<UserRecord>;

  constructor(private readonly store: Store) {
    this.cache = new StateCache(store, 'user', (id) => getUserById(store.db, id));
    store.onChange((c) => {
      if (c.entity !== 'user') return;
      this.nameGeneration++;
      this.unknownNames.clear();
    });
  }

  // >>> perf (issue 9): the user behind a username, from memory. A login used to query the
  // database by username (a Kysely compile and a SQLite read, ~10% of a login's event-loop time).
  // Usernames never change and users are never deleted, so username → id, once learnt, holds
  // for good; the record itself comes from the same change-fed cache that token verification
  // trusts. Unknown usernames are remembered too (so known and unknown names cost the same),
  // until any user is created or changed (every user write is on the change feed, this node's and
  // other processes'), and at most UNKNOWN_MS in any case; a lookup that raced a change is not
  // remembered.
  private readonly idsByName = new Map<string, string>();
  private readonly unknownNames = new Map<string, number>();
  private nameGeneration = 0;

  /** The user with this username (case-insensitive, NFC), current as the change feed keeps it. */
  byUsername(username: string): UserRecord | undefined | Promise<UserRecord | undefined> {
    const key = usernameKey(username);
    const id = this.idsByName.get(key);
    if (id !== undefined) {
      const hit = this.cache.peek(id);
      return hit ? hit.value : this.cache.get(id);
    }
    const until = this.unknownNames.get(key);
    if (until !== undefined) {
      if (until > Date.now()) {
        this.cache.assertFresh(); // the same freshness rule (503 when the feed is stale) as a known name
        return undefined;
      }
      this.unknownNames.delete(key);
    }
    return this.loadByUsername(key, username);
  }

  private async loadByUsername(key: string, username: string): Promise<UserRecord | undefined> {
    const generation = this.nameGeneration;
    const u = await getUserByUsername(this.store.db, username);
    if (u) {
      makeRoom(this.idsByName, 100_000);
      this.idsByName.set(key, u.id);
      return this.cache.get(u.id);
    }
    if (generation === this.nameGeneration) {
      makeRoom(this.unknownNames, 100_000);
      this.unknownNames.set(key, Date.now() + UNKNOWN_MS);
    }
    return undefined;
  }
  // <<< perf

  /** Principal for a user, or a 401/403 saying why the user can't act now. */
  async principalFor(userId: string, method: AuthMethod): Promise<UserPrincipal> {
    return this.principalOf(await this.cache.get(userId), method);
  }

  /**
   * perf (issue 9): the same, synchronously, when the user's state is in memory; `undefined`
   * when it must be loaded (then use principalFor). Throws the same refusals.
   */
  principalForSync(userId: string, method: AuthMethod): UserPrincipal | undefined {
    const hit = this.cache.peek(userId);
    return hit ? this.principalOf(hit.value, method) : undefined;
  }

  /**
   * Principals built from one user record, by auth method: reused while the record is current
   * (a change replaces the record object, so a stale one is never found). Frozen: shared.
   */
  private readonly built = new WeakMap<UserRecord, Map<AuthMethod, UserPrincipal>>();

  private principalOf(u: UserRecord | undefined, method: AuthMethod): UserPrincipal {
    if (!u) throw new UnauthorizedError('The user of this token no longer exists.', 'invalid_token');
    if (u.status !== 'active') throw new UnauthorizedError('The user of this token is deactivated.', 'user_deactivated');
    if ((method === 'password' || method === 'basic') && u.ssoEnabled) {
      throw new ForbiddenError('API authentication does not support SSO (Single Sign-On); SSO is enabled for this user.', 'sso_enabled');
    }
    let byMethod = this.built.get(u);
    const known = byMethod?.get(method);
    if (known) return known;
    const p: UserPrincipal = Object.freeze({
      kind: 'user',
      subscriptionId: u.subscriptionId,
      userId: u.id,
      username: u.username,
      role: u.role,
      apiAccess: effectiveApiAccess(u),
      uiAccess: effectiveUiAccess(u),
      modules: Object.freeze(effectiveModules(u)) as UserPrincipal['modules'],
      authMethod: method,
    });
    if (!byMethod) this.built.set(u, (byMethod = new Map()));
    byMethod.set(method, p);
    return p;
  }

  /** Resolvers for tokens that stand for a user directly. */
  registerResolvers(tokens: TokenService): void {
    const matching = (p: UserPrincipal, c: GatehouseClaims) => {
      if (p.subscriptionId !== c.subscription_id) throw new UnauthorizedError('token subscription does not match its user', 'invalid_token');
      return p;
    };
    // perf (issue 9): synchronous when the user's state is in memory (the usual case).
    const byUser = (method: AuthMethod) => (c: GatehouseClaims) => {
      const p = this.principalForSync(c.sub, method);
      return p ? matching(p, c) : this.principalFor(c.sub, method).then((q) => matching(q, c));
    };
    tokens.registerResolver('password', byUser('password'));
    tokens.registerResolver('console', byUser('console'));
  }
}
