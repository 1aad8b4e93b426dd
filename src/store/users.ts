import type { User, Role, UserStatus } from '../domain/types.ts';
import { normalizeModules, type ModuleName } from '../domain/modules.ts';
import type { UsersTable } from './schema.ts';
import type { Executor } from './db.ts';
import { newId, nowIso } from './ids.ts';

export interface UserRecord extends User {
  passwordHash: string | null;
}

function toUser(r: UsersTable): UserRecord {
  return {
    id: r.id,
    subscriptionId: r.subscription_id,
    username: r.username,
    email: r.email,
    role: r.role as Role,
    status: r.status as UserStatus,
    ssoEnabled: Boolean(r.sso_enabled),
    apiAccess: Boolean(r.api_access),
    uiAccess: Boolean(r.ui_access),
    modules: normalizeModules(JSON.parse(r.modules) as ModuleName[]),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    passwordHash: r.password_hash,
  };
}

export interface NewUser {
  subscriptionId: string;
  username: string;
  email?: string | null;
  passwordHash: string | null;
  role: Role;
  ssoEnabled?: boolean;
  apiAccess: boolean;
  uiAccess: boolean;
  modules: ModuleName[];
}

export const usernameKey = (username: string): string => username.normalize('NFC').toLowerCase();

export async function insertUser(db: Executor, u: NewUser): Promise<UserRecord> {
  const now = nowIso();
  const row: UsersTable = {
    id: newId(),
    subscription_id: u.subscriptionId,
    username: u.username,
    username_key: usernameKey(u.username),
    email: u.email ?? null,
    password_hash: u.passwordHash,
    role: u.role,
    status: 'active',
    sso_enabled: u.ssoEnabled ? 1 : 0,
    api_access: u.apiAccess ? 1 : 0,
    ui_access: u.uiAccess ? 1 : 0,
    modules: JSON.stringify(normalizeModules(u.modules)),
    created_at: now,
    updated_at: now,
  };
  await db.insertInto('users').values(row).execute();
  return toUser(row);
}

export async function getUserById(db: Executor, id: string): Promise<UserRecord | undefined> {
  const r = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  return r && toUser(r);
}

export async function getUserByUsername(db: Executor, username: string): Promise<UserRecord | undefined> {
  const r = await db.selectFrom('users').selectAll().where('username_key', '=', usernameKey(username)).executeTakeFirst();
  return r && toUser(r);
}

export async function listUsers(db: Executor, subscriptionId?: string): Promise<UserRecord[]> {
  let q = db.selectFrom('users').selectAll().orderBy('created_at').orderBy('username');
  if (subscriptionId) q = q.where('subscription_id', '=', subscriptionId);
  return (await q.execute()).map(toUser);
}

export interface UserPatch {
  email?: string | null;
  passwordHash?: string;
  role?: Role;
  status?: UserStatus;
  ssoEnabled?: boolean;
  apiAccess?: boolean;
  uiAccess?: boolean;
  modules?: ModuleName[];
}

export async function updateUser(db: Executor, id: string, p: UserPatch): Promise<void> {
  const set: Partial<UsersTable> = { updated_at: nowIso() };
  if (p.email !== undefined) set.email = p.email;
  if (p.passwordHash !== undefined) set.password_hash = p.passwordHash;
  if (p.role !== undefined) set.role = p.role;
  if (p.status !== undefined) set.status = p.status;
  if (p.ssoEnabled !== undefined) set.sso_enabled = p.ssoEnabled ? 1 : 0;
  if (p.apiAccess !== undefined) set.api_access = p.apiAccess ? 1 : 0;
  if (p.uiAccess !== undefined) set.ui_access = p.uiAccess ? 1 : 0;
  if (p.modules !== undefined) set.modules = JSON.stringify(normalizeModules(p.modules));
  await db.updateTable('users').set(set).where('id', '=', id).execute();
}

export async function countActiveManagers(db: Executor, subscriptionId: string): Promise<number> {
  const r = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('subscription_id', '=', subscriptionId)
    .where('role', '=', 'manager')
    .where('status', '=', 'active')
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

/** Strip what must never leave the store. */
export function publicUser(u: UserRecord): User {
  const { passwordHash: _omit, ...rest } = u;
  return rest;
}
