import type { Subscription } from '../domain/types.ts';
import type { Executor } from './db.ts';
import { newId, nowIso } from './ids.ts';

export async function insertSubscription(db: Executor, name: string): Promise<Subscription> {
  const s = { id: newId(), name, created_at: nowIso() };
  await db.insertInto('subscriptions').values(s).execute();
  return { id: s.id, name: s.name, createdAt: s.created_at };
}

export async function getSubscription(db: Executor, id: string): Promise<Subscription | undefined> {
  const r = await db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirst();
  return r && { id: r.id, name: r.name, createdAt: r.created_at };
}

export async function listSubscriptions(db: Executor): Promise<Subscription[]> {
  const rows = await db.selectFrom('subscriptions').selectAll().orderBy('created_at').execute();
  return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at }));
}

export async function countSubscriptions(db: Executor): Promise<number> {
  const r = await db.selectFrom('subscriptions').select((eb) => eb.fn.countAll().as('n')).executeTakeFirst();
  return Number(r?.n ?? 0);
}
