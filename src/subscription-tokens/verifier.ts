import type { Logger } from 'pino';
import { UnauthorizedError } from '../domain/errors.ts';
import type { Principal } from '../domain/types.ts';
import type { Store } from '../store/db.ts';
import { StateCache } from '../tokens/state-cache.ts';
import type { GatehouseClaims, TokenService } from '../tokens/tokens.ts';
import { getSubscriptionToken, type SubscriptionTokenRecord } from './store.ts';
import { SUBSCRIPTION_TOKEN_ENTITY } from './service.ts';

/**
 * Remembers when each token was last used and writes it to the store in batches: at most
 * one write per token per `minIntervalMs` (default a minute), never on the request path.
 */
export class LastUseTracker {
  private readonly pending = new Map<string, string>();
  private readonly written = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: () => Date,
    private readonly log: Logger,
    private readonly minIntervalMs = 60_000,
  ) {}

  start(flushEveryMs = 15_000): void {
    this.timer = setInterval(() => void this.flush(), flushEveryMs);
    this.timer.unref();
  }

  touch(secretId: string): void {
    this.pending.set(secretId, this.clock().toISOString());
  }

  /** The newest use seen by this node, written or not. */
  lastSeen(secretId: string): string | undefined {
    return this.pending.get(secretId);
  }

  async flush(force = false): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = this.doFlush(force).finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async doFlush(force: boolean): Promise<void> {
    const now = this.clock().getTime();
    const due = [...this.pending].filter(([id]) => force || now - (this.written.get(id) ?? 0) >= this.minIntervalMs);
    for (const [id, at] of due) {
      try {
        // Never move last use backwards (another node may have written a later one).
        await this.store.db.updateTable('subscription_tokens').set({ last_used_at: at })
          .where('id', '=', id)
          .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
          .execute();
        this.written.set(id, now);
        if (this.pending.get(id) === at) this.pending.delete(id);
      } catch (err) {
        this.log.warn({ err, secretId: id }, 'could not record last use of a subscription token; will retry');
      }
    }
    if (this.written.size > 100_000) this.written.clear();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush(true).catch(() => {});
  }
}

/**
 * Verification of subscription tokens: the secret's state comes from memory (StateCache
 * over the rows, invalidated by the change feed), so a deleted secret's token is refused on
 * its next use on every node, and no request touches the database.
 */
export class SubscriptionTokenVerifier {
  readonly cache: StateCache<SubscriptionTokenRecord>;

  constructor(
    store: Store,
    private readonly clock: () => Date,
    readonly lastUse: LastUseTracker,
  ) {
    this.cache = new StateCache(store, SUBSCRIPTION_TOKEN_ENTITY, (id) => getSubscriptionToken(store.db, id));
  }

  async resolve(claims: GatehouseClaims): Promise<Principal> {
    const r = await this.cache.get(claims.jti);
    if (!r || r.deletedAt) throw new UnauthorizedError('The secret of this subscription token has been deleted.', 'invalid_token');
    if (r.subscriptionId !== claims.subscription_id) throw new UnauthorizedError('token subscription does not match its secret', 'invalid_token');
    if (r.expiresAt <= this.clock().toISOString()) throw new UnauthorizedError('token has expired', 'invalid_token');
    this.lastUse.touch(r.secretId);
    // No user: the token acts for the subscription and outlives its creator's deactivation.
    return {
      kind: 'subscription',
      subscriptionId: r.subscriptionId,
      modules: [...r.modules],
      authMethod: 'subscription_token',
      secretId: r.secretId,
    };
  }

  register(tokens: TokenService): void {
    tokens.registerResolver('subscription_token', (c) => this.resolve(c));
  }

  close(): void {
    this.cache.close();
  }
}
