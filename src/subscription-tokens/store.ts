import { sql } from 'kysely';
import type { Executor, Tx } from '../store/db.ts';
import type { SubscriptionTokensTable } from '../store/schema.ts';
import { normalizeModules, type ModuleName } from '../domain/modules.ts';

export interface SubscriptionTokenRecord {
  secretId: string;
  subscriptionId: string;
  createdBy: string | null;
  createdByName: string | null;
  modules: ModuleName[];
  createdAt: string;
  expiresAt: string;
  deletedAt: string | null;
  lastUsedAt: string | null;
  alertClaimedAt: string | null;
}

export function toRecord(r: SubscriptionTokensTable): SubscriptionTokenRecord {
  return {
    secretId: r.id,
    subscriptionId: r.subscription_id,
    createdBy: r.created_by,
    createdByName: r.created_by_name,
    modules: normalizeModules(JSON.parse(r.modules) as ModuleName[]),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    deletedAt: r.deleted_at,
    lastUsedAt: r.last_used_at,
    alertClaimedAt: r.alert_claimed_at,
  };
}

export async function getSubscriptionToken(db: Executor, secretId: string): Promise<SubscriptionTokenRecord | undefined> {
  const r = await db.selectFrom('subscription_tokens').selectAll().where('id', '=', secretId).executeTakeFirst();
  return r && toRecord(r);
}

/** Live = not deleted and not expired at `nowIso`. */
export async function countLiveTokens(db: Executor, subscriptionId: string, nowIso: string): Promise<number> {
  const r = await db
    .selectFrom('subscription_tokens')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('subscription_id', '=', subscriptionId)
    .where('deleted_at', 'is', null)
    .where('expires_at', '>', nowIso)
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

/** Every undeleted token of the subscription (expired ones too, until deleted), oldest first. */
export async function listSubscriptionTokens(db: Executor, subscriptionId: string): Promise<SubscriptionTokenRecord[]> {
  const rows = await db
    .selectFrom('subscription_tokens')
    .selectAll()
    .where('subscription_id', '=', subscriptionId)
    .where('deleted_at', 'is', null)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  return rows.map(toRecord);
}

/**
 * Serialize creates per subscription. PostgreSQL: lock the subscription row until the
 * transaction ends. SQLite: Kysely runs transactions one at a time on its single
 * connection, so the transaction itself serializes.
 */
export async function lockSubscription(tx: Tx, dialect: 'sqlite' | 'postgres', subscriptionId: string): Promise<boolean> {
  if (dialect === 'postgres') {
    const r = await sql<{ id: string }>`select id from subscriptions where id = ${subscriptionId} for update`.execute(tx);
    return r.rows.length === 1;
  }
  const r = await tx.selectFrom('subscriptions').select('id').where('id', '=', subscriptionId).executeTakeFirst();
  return Boolean(r);
}
