import { randomUUID } from 'node:crypto';
import type { AuditEventInput, Principal } from '../domain/types.ts';
import { MODULES, isModuleName, normalizeModules, type ModuleName } from '../domain/modules.ts';
import { BadRequestError } from '../domain/errors.ts';
import type { Store } from '../store/db.ts';
import type { TokenService } from '../tokens/tokens.ts';
import { requireManager } from '../access/access.ts';
import { actorOf, type AuditLog } from '../audit/audit.ts';
import {
  countLiveTokens, getSubscriptionToken, listSubscriptionTokens, lockSubscription, type SubscriptionTokenRecord,
} from './store.ts';
import {
  MAX_EXPIRY_MINUTES, MAX_LIVE_TOKENS, MIN_EXPIRY_MINUTES, QAS_CODES, invalidExpiry, invalidSecretId, limitReached,
} from './errors.ts';

export const SUBSCRIPTION_TOKEN_ENTITY = 'subscription_token';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface CreateTokenInput {
  expiry: unknown;
  modules?: unknown;
}

export type Actor = Pick<AuditEventInput, 'actorType' | 'actorId' | 'actorName'> & { sourceIp: string | null };

/** What the list and detail endpoints show: everything but the token. */
export interface SubscriptionTokenView {
  secretId: string;
  createdBy: { id: string | null; username: string | null };
  createdAt: string;
  expiresAt: string;
  expired: boolean;
  lastUsedAt: string | null;
  modules: ModuleName[];
  alertSent: boolean;
  alertSentAt: string | null;
}

export interface CreatedToken {
  token: string;
  secretId: string;
  expiresAt: string;
  modules: ModuleName[];
}

export function checkExpiry(v: unknown): number {
  if (v === undefined || v === null) throw invalidExpiry("Field 'expiry' is missing.");
  if (typeof v !== 'number') throw invalidExpiry(`Field 'expiry' must be a JSON number, got ${typeof v === 'string' ? 'a string' : typeof v}.`);
  if (!Number.isInteger(v)) throw invalidExpiry(`Field 'expiry' is ${v}, not a whole number.`);
  if (v < MIN_EXPIRY_MINUTES || v > MAX_EXPIRY_MINUTES) throw invalidExpiry(`Field 'expiry' is ${v}, out of range.`);
  return v;
}

export function checkModules(v: unknown): ModuleName[] {
  if (v === undefined) return [...MODULES];
  const bad = (msg: string) => new BadRequestError(msg, 'invalid_module', { qualysCode: QAS_CODES.invalidModules });
  if (!Array.isArray(v) || v.length === 0) throw bad(`'modules' must be a non-empty list of module names (${MODULES.join(', ')}); leave it out for all modules.`);
  const wrong = v.filter((m) => !isModuleName(m));
  if (wrong.length) throw bad(`unknown module(s) ${wrong.map((m) => JSON.stringify(m)).join(', ')}; valid modules are ${MODULES.join(', ')}.`);
  return normalizeModules(v as ModuleName[]);
}

/**
 * Subscription tokens: long-lived JWTs for a subscription, at most MAX_LIVE_TOKENS live ones
 * per subscription. Managers manage their own subscription's tokens; the operator (CLI)
 * manages any. The row is the revocation state; the token is never stored.
 */
export class SubscriptionTokenService {
  constructor(
    private readonly store: Store,
    private readonly tokens: TokenService,
    private readonly audit: AuditLog,
    private readonly clock: () => Date,
    /** Last uses not yet written to the store, so this node's listing is current. */
    private readonly pendingLastUse: (secretId: string) => string | undefined = () => undefined,
  ) {}

  private actor(p: Principal, ip: string | null): { subscriptionId: string; by: Actor } {
    const m = requireManager(p);
    const a = actorOf(m);
    return { subscriptionId: m.subscriptionId, by: { actorType: a.actorType, actorId: a.actorId, actorName: a.actorName, sourceIp: ip } };
  }

  async create(p: Principal, input: CreateTokenInput, ip: string | null): Promise<CreatedToken> {
    const { subscriptionId, by } = this.actor(p, ip);
    return this.createIn(subscriptionId, input, by);
  }

  async createIn(subscriptionId: string, input: CreateTokenInput, by: Actor): Promise<CreatedToken> {
    const expiry = checkExpiry(input.expiry);
    const modules = checkModules(input.modules);
    const secretId = randomUUID();
    // Sign first (no I/O); the row decides whether the token ever becomes valid.
    const issued = await this.tokens.issue({
      sub: subscriptionId, subscriptionId, authMethod: 'subscription_token', modules, ttlSeconds: expiry * 60, jti: secretId,
    });
    const createdAt = new Date(issued.claims.iat * 1000).toISOString();
    const expiresAt = issued.expiresAt.toISOString();
    await this.store.transaction(async (tx) => {
      if (!(await lockSubscription(tx, this.store.dialect, subscriptionId))) throw new BadRequestError('unknown subscription', 'unknown_subscription');
      if ((await countLiveTokens(tx, subscriptionId, this.clock().toISOString())) >= MAX_LIVE_TOKENS) throw limitReached();
      await tx.insertInto('subscription_tokens').values({
        id: secretId, subscription_id: subscriptionId, created_by: by.actorId, created_by_name: by.actorName,
        modules: JSON.stringify(modules), created_at: createdAt, expires_at: expiresAt,
        deleted_at: null, last_used_at: null, alert_claimed_at: null,
      }).execute();
      await this.audit.record(
        { ...by, subscriptionId, action: 'subscription_token.create', targetType: 'subscription_token', targetId: secretId,
          outcome: 'success', details: { expiryMinutes: expiry, expiresAt, modules } },
        tx,
      );
      await this.store.recordChange(tx, SUBSCRIPTION_TOKEN_ENTITY, secretId);
    }).catch(async (e: unknown) => {
      if ((e as { code?: string }).code === 'token_limit_reached') {
        await this.audit.record({ ...by, subscriptionId, action: 'subscription_token.create', targetType: 'subscription_token',
          targetId: null, outcome: 'denied', reason: 'limit reached', details: { limit: MAX_LIVE_TOKENS } });
      }
      throw e;
    });
    this.store.notify(SUBSCRIPTION_TOKEN_ENTITY, secretId);
    return { token: issued.token, secretId, expiresAt, modules };
  }

  async list(p: Principal): Promise<SubscriptionTokenView[]> {
    return this.listIn(requireManager(p).subscriptionId);
  }

  async listIn(subscriptionId: string): Promise<SubscriptionTokenView[]> {
    return (await listSubscriptionTokens(this.store.db, subscriptionId)).map((r) => this.view(r));
  }

  async get(p: Principal, secretId: string): Promise<SubscriptionTokenView> {
    return this.view(await this.loadOwn(requireManager(p).subscriptionId, secretId));
  }

  async getIn(subscriptionId: string | undefined, secretId: string): Promise<SubscriptionTokenView & { subscriptionId: string }> {
    const r = await this.loadOwn(subscriptionId, secretId);
    return { ...this.view(r), subscriptionId: r.subscriptionId };
  }

  async delete(p: Principal, secretId: string, ip: string | null): Promise<void> {
    const { subscriptionId, by } = this.actor(p, ip);
    await this.deleteIn(subscriptionId, secretId, by);
  }

  /** `subscriptionId` undefined: the operator, any subscription. */
  async deleteIn(subscriptionId: string | undefined, secretId: string, by: Actor): Promise<void> {
    const r = await this.loadOwn(subscriptionId, secretId);
    const now = this.clock().toISOString();
    await this.store.transaction(async (tx) => {
      // Conditional: of two racing deletes exactly one succeeds; the other gets 2003.
      const res = await tx.updateTable('subscription_tokens').set({ deleted_at: now }).where('id', '=', secretId).where('deleted_at', 'is', null).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw invalidSecretId();
      // An alert not yet delivered for this token is not sent any more.
      await tx.updateTable('outbox').set({ status: 'cancelled', last_error: 'token deleted', lease_until: null })
        .where('secret_id', '=', secretId).where('status', '=', 'pending').execute();
      await this.audit.record(
        { ...by, subscriptionId: r.subscriptionId, action: 'subscription_token.delete', targetType: 'subscription_token',
          targetId: secretId, outcome: 'success', details: { expiresAt: r.expiresAt } },
        tx,
      );
      await this.store.recordChange(tx, SUBSCRIPTION_TOKEN_ENTITY, secretId);
    });
    this.store.notify(SUBSCRIPTION_TOKEN_ENTITY, secretId);
  }

  /** A token of another subscription, a deleted one or a malformed id: all "Invalid Secret ID". */
  private async loadOwn(subscriptionId: string | undefined, secretId: string): Promise<SubscriptionTokenRecord> {
    if (!UUID.test(secretId)) throw invalidSecretId();
    const r = await getSubscriptionToken(this.store.db, secretId.toLowerCase());
    if (!r || r.deletedAt || (subscriptionId !== undefined && r.subscriptionId !== subscriptionId)) throw invalidSecretId();
    return r;
  }

  private view(r: SubscriptionTokenRecord): SubscriptionTokenView {
    const pending = this.pendingLastUse(r.secretId);
    const lastUsedAt = pending && (!r.lastUsedAt || pending > r.lastUsedAt) ? pending : r.lastUsedAt;
    return {
      secretId: r.secretId,
      createdBy: { id: r.createdBy, username: r.createdByName },
      createdAt: r.createdAt,
      expiresAt: r.expiresAt,
      expired: r.expiresAt <= this.clock().toISOString(),
      lastUsedAt,
      modules: r.modules,
      alertSent: r.alertClaimedAt !== null,
      alertSentAt: r.alertClaimedAt,
    };
  }
}
