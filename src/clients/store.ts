import type { Client, ClientLevel } from '../domain/types.ts';
import { MODULES, normalizeModules, type ModuleName } from '../domain/modules.ts';
import type { ClientsTable } from '../store/schema.ts';
import type { Executor } from '../store/db.ts';
import { nowIso } from '../store/ids.ts';

export interface ClientRecord extends Client {
  secretHash: string;
}

function toClient(r: ClientsTable): ClientRecord {
  const all = Boolean(r.all_modules);
  return {
    clientId: r.id,
    subscriptionId: r.subscription_id,
    name: r.name,
    level: r.level as ClientLevel,
    allModules: all,
    modules: all ? [...MODULES] : normalizeModules(JSON.parse(r.modules) as ModuleName[]),
    createdBy: r.created_by,
    createdAt: r.created_at,
    secretRotatedAt: r.secret_rotated_at,
    lastUsedAt: r.last_used_at,
    expiresAt: r.expires_at,
    secretHash: r.secret_hash,
  };
}

export const clientNameKey = (name: string): string => name.normalize('NFC').toLowerCase();

export interface NewClient {
  id: string;
  subscriptionId: string;
  name: string;
  level: ClientLevel;
  allModules: boolean;
  modules: ModuleName[];
  createdBy: string;
  secretHash: string;
  expiresAt: string | null;
}

export async function insertClient(db: Executor, c: NewClient): Promise<ClientRecord> {
  const row: ClientsTable = {
    id: c.id,
    subscription_id: c.subscriptionId,
    name: c.name,
    name_key: clientNameKey(c.name),
    level: c.level,
    all_modules: c.allModules ? 1 : 0,
    modules: JSON.stringify(c.allModules ? [] : normalizeModules(c.modules)),
    created_by: c.createdBy,
    secret_hash: c.secretHash,
    created_at: nowIso(),
    secret_rotated_at: null,
    last_used_at: null,
    expires_at: c.expiresAt,
  };
  await db.insertInto('clients').values(row).execute();
  return toClient(row);
}

export async function getClient(db: Executor, id: string): Promise<ClientRecord | undefined> {
  const r = await db.selectFrom('clients').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toClient(r);
}

export async function getClientByName(db: Executor, subscriptionId: string, name: string): Promise<ClientRecord | undefined> {
  const r = await db
    .selectFrom('clients')
    .selectAll()
    .where('subscription_id', '=', subscriptionId)
    .where('name_key', '=', clientNameKey(name))
    .executeTakeFirst();
  return r && toClient(r);
}

export async function listClients(db: Executor, q: { subscriptionId?: string; createdBy?: string; level?: ClientLevel } = {}): Promise<ClientRecord[]> {
  let query = db.selectFrom('clients').selectAll().orderBy('created_at').orderBy('name');
  if (q.subscriptionId) query = query.where('subscription_id', '=', q.subscriptionId);
  if (q.createdBy) query = query.where('created_by', '=', q.createdBy);
  if (q.level) query = query.where('level', '=', q.level);
  return (await query.execute()).map(toClient);
}

export async function deleteClient(db: Executor, id: string): Promise<boolean> {
  const r = await db.deleteFrom('clients').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function setClientSecret(db: Executor, id: string, secretHash: string): Promise<void> {
  await db.updateTable('clients').set({ secret_hash: secretHash, secret_rotated_at: nowIso() }).where('id', '=', id).execute();
}

export async function touchClient(db: Executor, id: string): Promise<void> {
  await db.updateTable('clients').set({ last_used_at: nowIso() }).where('id', '=', id).execute();
}

/** Strip what must never leave the store. */
export function publicClient(c: ClientRecord): Client {
  const { secretHash: _omit, ...rest } = c;
  return rest;
}

// --- revoked access tokens (RFC 7009) ---

export async function insertRevokedToken(
  db: Executor,
  r: { jti: string; subscriptionId: string | null; clientId: string | null; expiresAt: string },
): Promise<boolean> {
  const exists = await db.selectFrom('revoked_tokens').select('jti').where('jti', '=', r.jti).executeTakeFirst();
  if (exists) return false;
  await db
    .insertInto('revoked_tokens')
    .values({ jti: r.jti, subscription_id: r.subscriptionId, client_id: r.clientId, expires_at: r.expiresAt, revoked_at: nowIso() })
    .execute();
  return true;
}

export async function listRevokedTokens(db: Executor, notExpiredAt: string): Promise<Array<{ jti: string; expiresAt: string }>> {
  const rows = await db.selectFrom('revoked_tokens').select(['jti', 'expires_at']).where('expires_at', '>', notExpiredAt).execute();
  return rows.map((r) => ({ jti: r.jti, expiresAt: r.expires_at }));
}

export async function getRevokedToken(db: Executor, jti: string): Promise<{ jti: string; expiresAt: string } | undefined> {
  const r = await db.selectFrom('revoked_tokens').select(['jti', 'expires_at']).where('jti', '=', jti).executeTakeFirst();
  return r && { jti: r.jti, expiresAt: r.expires_at };
}

export async function pruneRevokedTokens(db: Executor, before: string): Promise<void> {
  await db.deleteFrom('revoked_tokens').where('expires_at', '<=', before).execute();
}
