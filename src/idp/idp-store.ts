import type { Executor } from '../store/db.ts';
import type { IdpsTable } from '../store/schema.ts';
import { newId, nowIso } from '../store/ids.ts';
import type { IdpAlgorithm } from './config-schema.ts';

/** A trusted external identity provider of one subscription. */
export interface TrustedIdp {
  id: string;
  subscriptionId: string;
  name: string;
  issuer: string;
  /** Configured JWKS URL; null = discovered from the issuer. */
  jwksUri: string | null;
  audiences: string[];
  algorithms: IdpAlgorithm[];
  /** Claim naming the Gatehouse user; null = preferred_username, then email. */
  userClaim: string | null;
  /** Claim carrying module permissions (intersected with the user's own); null = none. */
  modulesClaim: string | null;
  /** Accept this issuer's tokens directly as Bearer (gateway, management API). */
  allowApiTokens: boolean;
  /** Accept this issuer's tokens in token exchange at POST /oauth2/token. */
  allowExchange: boolean;
  /** Exchanged Gatehouse tokens expire no later than the IdP token they came from. */
  capToSubjectExpiry: boolean;
  source: 'api' | 'config';
  createdAt: string;
  updatedAt: string;
}

export type IdpFields = Omit<TrustedIdp, 'id' | 'createdAt' | 'updatedAt'>;

function toIdp(r: IdpsTable): TrustedIdp {
  return {
    id: r.id,
    subscriptionId: r.subscription_id,
    name: r.name,
    issuer: r.issuer,
    jwksUri: r.jwks_uri,
    audiences: JSON.parse(r.audiences) as string[],
    algorithms: JSON.parse(r.algorithms) as IdpAlgorithm[],
    userClaim: r.user_claim,
    modulesClaim: r.modules_claim,
    allowApiTokens: Boolean(r.allow_api_tokens),
    allowExchange: Boolean(r.allow_exchange),
    capToSubjectExpiry: Boolean(r.cap_to_subject_expiry),
    source: r.source === 'config' ? 'config' : 'api',
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toRow(f: Partial<IdpFields>): Partial<IdpsTable> {
  const row: Partial<IdpsTable> = {};
  if (f.subscriptionId !== undefined) row.subscription_id = f.subscriptionId;
  if (f.name !== undefined) row.name = f.name;
  if (f.issuer !== undefined) row.issuer = f.issuer;
  if (f.jwksUri !== undefined) row.jwks_uri = f.jwksUri;
  if (f.audiences !== undefined) row.audiences = JSON.stringify(f.audiences);
  if (f.algorithms !== undefined) row.algorithms = JSON.stringify(f.algorithms);
  if (f.userClaim !== undefined) row.user_claim = f.userClaim;
  if (f.modulesClaim !== undefined) row.modules_claim = f.modulesClaim;
  if (f.allowApiTokens !== undefined) row.allow_api_tokens = f.allowApiTokens ? 1 : 0;
  if (f.allowExchange !== undefined) row.allow_exchange = f.allowExchange ? 1 : 0;
  if (f.capToSubjectExpiry !== undefined) row.cap_to_subject_expiry = f.capToSubjectExpiry ? 1 : 0;
  if (f.source !== undefined) row.source = f.source;
  return row;
}

export async function insertIdp(db: Executor, f: IdpFields): Promise<TrustedIdp> {
  const now = nowIso();
  const row = { ...toRow(f), id: newId(), created_at: now, updated_at: now } as IdpsTable;
  await db.insertInto('idps').values(row).execute();
  return toIdp(row);
}

export async function updateIdp(db: Executor, id: string, f: Partial<IdpFields>): Promise<void> {
  await db.updateTable('idps').set({ ...toRow(f), updated_at: nowIso() }).where('id', '=', id).execute();
}

export async function deleteIdp(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('idps').where('id', '=', id).execute();
}

export async function getIdp(db: Executor, id: string): Promise<TrustedIdp | undefined> {
  const r = await db.selectFrom('idps').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toIdp(r);
}

export async function findIdpByIssuer(db: Executor, subscriptionId: string, issuer: string): Promise<TrustedIdp | undefined> {
  const r = await db.selectFrom('idps').selectAll().where('subscription_id', '=', subscriptionId).where('issuer', '=', issuer).executeTakeFirst();
  return r && toIdp(r);
}

export async function listIdps(db: Executor, subscriptionId?: string): Promise<TrustedIdp[]> {
  let q = db.selectFrom('idps').selectAll().orderBy('created_at').orderBy('id');
  if (subscriptionId) q = q.where('subscription_id', '=', subscriptionId);
  return (await q.execute()).map(toIdp);
}

/**
 * Users of a subscription whose username (case-insensitive) or, failing that, email equals
 * `value`. Returns the ids of all matches so the caller can refuse an ambiguous one.
 */
export async function findUsersForClaim(db: Executor, subscriptionId: string, value: string): Promise<string[]> {
  const key = value.normalize('NFC').toLowerCase();
  const byName = await db.selectFrom('users').select('id').where('subscription_id', '=', subscriptionId).where('username_key', '=', key).execute();
  if (byName.length) return byName.map((r) => r.id);
  const byEmail = await db
    .selectFrom('users')
    .select(['id', 'email'])
    .where('subscription_id', '=', subscriptionId)
    .where('email', 'is not', null)
    .where((eb) => eb(eb.fn('lower', ['email']), '=', key))
    .execute();
  return byEmail.map((r) => r.id);
}
