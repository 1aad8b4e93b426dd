import * as nodeCrypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { ForbiddenError, UnauthorizedError } from '../domain/errors.ts';
import type { AuthMethod, Principal } from '../domain/types.ts';
import type { Store } from '../store/db.ts';
import type { UserRecord } from '../store/users.ts';
import { verifyPassword } from '../crypto/passwords.ts';
import { consoleLoginRefusal, passwordApiRefusal } from '../access/access.ts';
import type { AuditLog } from '../audit/audit.ts';
import type { LoginThrottle } from './throttle.ts';
import type { UserDirectory } from '../users/directory.ts';

export const BAD_CREDENTIALS = 'Invalid username or password.';

/**
 * Username + password authentication, shared by POST /auth and Basic auth at the gateway:
 * same checks (active, API access, not SSO), same throttling, same audit.
 */
export class PasswordAuthenticator {
  /** Verified Basic credentials: HMAC(per-process key, user:pass) → user id, for a short while. */
  private readonly basicCache = new Map<string, { userId: string; until: number }>();
  private readonly cacheKeyText = randomBytes(32).toString('base64');

  constructor(
    private readonly store: Store,
    private readonly throttle: LoginThrottle,
    private readonly audit: AuditLog,
    private readonly users: UserDirectory,
    private readonly opts: { basicCacheSeconds: number } = { basicCacheSeconds: 60 },
  ) {
    // Any change to a user (password, status, permissions) drops that user's cached credentials.
    store.onChange((c) => {
      if (c.entity !== 'user') return;
      for (const [k, v] of this.basicCache) if (v.userId === c.id) this.basicCache.delete(k);
    });
  }

  async authenticate(username: string, password: string, ip: string, method: AuthMethod): Promise<UserRecord> {
    await this.throttle.check(username, ip).catch(async (e: unknown) => {
      await this.audit.record({
        subscriptionId: null, actorType: 'anonymous', actorId: null, actorName: username.slice(0, 200),
        action: 'auth.password', outcome: 'denied', reason: (e as Error).message, sourceIp: ip, details: { method },
      });
      throw e;
    });
    const found = this.users.byUsername(username); // perf (issue 9): from memory when known
    const user = found instanceof Promise ? await found : found;
    const ok = await verifyPassword(user?.passwordHash ?? null, password);
    if (!user || !ok) {
      const lockedFor = await this.throttle.failure(username, ip);
      await this.audit.record({
        subscriptionId: user?.subscriptionId ?? null, actorType: 'anonymous', actorId: user?.id ?? null,
        actorName: username.slice(0, 200), action: 'auth.password', outcome: 'failure', reason: 'bad credentials',
        sourceIp: ip, details: { method, ...(lockedFor ? { lockedForSeconds: lockedFor } : {}) },
      });
      if (lockedFor && user) {
        await this.audit.record({
          subscriptionId: user.subscriptionId, actorType: 'system', actorId: null, actorName: null,
          action: 'user.locked', targetType: 'user', targetId: user.id, outcome: 'success',
          reason: `locked for ${lockedFor}s after repeated failed logins`, sourceIp: ip,
        });
      }
      throw new UnauthorizedError(BAD_CREDENTIALS, 'invalid_credentials');
    }
    const deny = async (reason: string) =>
      this.audit.record({
        subscriptionId: user.subscriptionId, actorType: 'user', actorId: user.id, actorName: user.username,
        action: 'auth.password', outcome: 'denied', reason, sourceIp: ip, details: { method },
      });
    if (user.status !== 'active') {
      await deny('user deactivated');
      throw new UnauthorizedError('This user account is deactivated.', 'user_deactivated');
    }
    // console (issue 7): console sign-in needs UI Access instead of API Access
    const refusal = method === 'console' ? consoleLoginRefusal(user) : passwordApiRefusal(user);
    if (refusal) {
      await deny(refusal);
      throw new ForbiddenError(refusal, user.ssoEnabled ? 'sso_enabled' : method === 'console' ? 'ui_access_required' : 'api_access_required');
    }
    await this.throttle.success(username);
    if (method !== 'basic') {
      // Fails the login when the row cannot be written: no token without its audit row.
      await this.audit.recordIssuance({
        subscriptionId: user.subscriptionId, actorType: 'user', actorId: user.id, actorName: user.username,
        action: 'auth.password', outcome: 'success', sourceIp: ip, details: { method },
      });
    }
    return user;
  }

  /**
   * Authenticate an `Authorization: Basic` header (RFC 7617). Verified credentials are
   * remembered for a short while under an HMAC with a per-process key (never the password),
   * so a script's burst of calls costs one argon2 check, and any change to the user drops them.
   */
  async basic(header: string, ip: string): Promise<Principal> {
    return this.basicFast(header, ip);
  }

  /** perf (issue 9): basic() answered synchronously for remembered credentials whose user state is in memory. */
  basicFast(header: string, ip: string): Promise<Principal> | Principal {
    // The cache key is a keyed SHA-256 of the header as sent (never the password in clear, and
    // nothing to parse on a hit): a one-shot hash with a per-process random prefix, which is as
    // hard to invert as the HMAC it replaced and needs no Hmac object (perf, issue 9). The
    // same credentials spelled differently (scheme case, spacing) just miss and are verified.
    const key = keyedHash(this.cacheKeyText, header);
    const hit = this.basicCache.get(key);
    if (hit && hit.until > Date.now()) {
      const p = this.users.principalForSync(hit.userId, 'basic');
      if (p) return p;
      return this.users.principalFor(hit.userId, 'basic');
    }
    return this.basicVerify(header, ip, key);
  }

  private async basicVerify(header: string, ip: string, key: string): Promise<Principal> {
    const { username, password } = parseBasic(header);
    const user = await this.authenticate(username, password, ip, 'basic');
    if (this.basicCache.size > 10_000) this.basicCache.clear();
    this.basicCache.set(key, { userId: user.id, until: Date.now() + this.opts.basicCacheSeconds * 1000 });
    const p = await this.users.principalFor(user.id, 'basic');
    if (!p) throw new UnauthorizedError(BAD_CREDENTIALS, 'invalid_credentials');
    return p;
  }
}

/** crypto.hash (Node >= 20.12) is a one-shot digest without a Hash object. */
const oneShot = (nodeCrypto as { hash?: (alg: string, data: string, enc: 'base64url') => string }).hash;
function keyedHash(prefix: string, text: string): string {
  return oneShot ? oneShot('sha256', prefix + '\0' + text, 'base64url') : createHash('sha256').update(prefix).update('\0').update(text).digest('base64url');
}

export function parseBasic(header: string): { username: string; password: string } {
  const m = /^Basic[ ]+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!m) throw new UnauthorizedError('Authorization header is not valid Basic credentials (expected "Basic base64(username:password)").', 'invalid_request');
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i <= 0) throw new UnauthorizedError('Basic credentials must be base64 of "username:password".', 'invalid_request');
  const username = decoded.slice(0, i);
  const password = decoded.slice(i + 1);
  if (username.length > 256 || password.length > 1024) throw new UnauthorizedError(BAD_CREDENTIALS, 'invalid_credentials');
  return { username, password };
}
