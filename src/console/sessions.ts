import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ForbiddenError, UnauthorizedError } from '../domain/errors.ts';
import type { Principal } from '../domain/types.ts';
import type { Store } from '../store/db.ts';
import { getUserById, type UserRecord } from '../store/users.ts';
import type { UserDirectory } from '../users/directory.ts';
import { consoleLoginRefusal } from '../access/access.ts';
import type { AuditLog } from '../audit/audit.ts';
import type { ConsoleSettings } from './config-schema.ts';

type UserPrincipal = Extract<Principal, { kind: 'user' }>;

export interface SessionRow {
  idHash: string;
  userId: string;
  subscriptionId: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
}

export interface LiveSession {
  row: SessionRow;
  principal: UserPrincipal;
  /** When the session ends if unused from now on. */
  idleExpiresAt: Date;
}

const hashOf = (sid: string): string => createHash('sha256').update(sid, 'utf8').digest('hex');
/** Session ids are 32 random bytes, base64url: anything else is not worth a database read. */
const SID_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Console sessions, in the store so that any node can serve any request. The cookie holds a
 * random id; the table holds its SHA-256. Each use checks idle and absolute lifetimes and the
 * user's live state (active, UI Access, no SSO), so a deactivation ends the session at once.
 */
export class ConsoleSessions {
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Store,
    private readonly users: UserDirectory,
    private readonly audit: AuditLog,
    readonly settings: Pick<ConsoleSettings, 'idleTimeoutSeconds' | 'absoluteTimeoutSeconds'>,
    private readonly clock: () => Date,
  ) {
    // A user deactivated, stripped of UI Access or switched to SSO loses every session, on
    // every node (the change feed), so a later reactivation does not revive old sessions.
    this.unsubscribe = store.onChange((c) => {
      if (c.entity !== 'user') return;
      void (async () => {
        const u = await getUserById(store.db, c.id);
        if (!u || u.status !== 'active' || consoleLoginRefusal(u)) await this.endAllFor(c.id);
      })().catch(() => {});
    });
  }

  close(): void {
    this.unsubscribe();
  }

  /** The CSRF token of a session: derived from the session id, so nothing more is stored. */
  csrfToken(sid: string): string {
    return createHmac('sha256', sid).update('gatehouse console csrf v1').digest('base64url');
  }

  csrfMatches(sid: string, presented: string | undefined): boolean {
    if (!presented) return false;
    const want = Buffer.from(this.csrfToken(sid));
    const got = Buffer.from(presented);
    return got.length === want.length && timingSafeEqual(got, want);
  }

  async create(user: UserRecord, ctx: { ip: string | null; userAgent: string | null }): Promise<{ sid: string; row: SessionRow }> {
    const now = this.clock();
    await this.prune(now);
    const sid = randomBytes(32).toString('base64url');
    const row: SessionRow = {
      idHash: hashOf(sid),
      userId: user.id,
      subscriptionId: user.subscriptionId,
      createdAt: now.toISOString(),
      lastSeenAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.settings.absoluteTimeoutSeconds * 1000).toISOString(),
    };
    await this.store.db
      .insertInto('sessions')
      .values({
        id_hash: row.idHash,
        user_id: row.userId,
        subscription_id: row.subscriptionId,
        created_at: row.createdAt,
        last_seen_at: row.lastSeenAt,
        expires_at: row.expiresAt,
        source_ip: ctx.ip,
        user_agent: ctx.userAgent ? ctx.userAgent.slice(0, 300) : null,
      })
      .execute();
    return { sid, row };
  }

  /** The session behind a cookie value, or a 401 that says why it is over. */
  async resolve(sid: string): Promise<LiveSession> {
    if (!SID_SHAPE.test(sid)) throw ended('Your console session is not valid; sign in again.');
    const idHash = hashOf(sid);
    const r = await this.store.db.selectFrom('sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
    if (!r) throw ended('Your console session has ended (signed out or expired); sign in again.');
    const now = this.clock();
    const idleLimit = this.settings.idleTimeoutSeconds * 1000;
    if (now.getTime() >= Date.parse(r.expires_at)) {
      await this.endByHash(idHash);
      throw ended('Your console session reached its maximum lifetime; sign in again.');
    }
    if (now.getTime() - Date.parse(r.last_seen_at) >= idleLimit) {
      await this.endByHash(idHash);
      throw ended(`Your console session expired after ${describe(this.settings.idleTimeoutSeconds)} without activity; sign in again.`);
    }
    const u = await this.users.cache.get(r.user_id);
    if (!u || u.status !== 'active') {
      await this.endAllFor(r.user_id);
      throw ended('Your account has been deactivated; your console session has ended.');
    }
    const refusal = consoleLoginRefusal(u);
    if (refusal) {
      await this.endAllFor(r.user_id);
      throw new ForbiddenError(refusal, 'ui_access_required');
    }
    const principal = await this.users.principalFor(r.user_id, 'console');
    // Write the activity time only when it moves noticeably (not on every request).
    let lastSeen = r.last_seen_at;
    if (now.getTime() - Date.parse(r.last_seen_at) >= Math.min(60_000, idleLimit / 10)) {
      lastSeen = now.toISOString();
      await this.store.db.updateTable('sessions').set({ last_seen_at: lastSeen }).where('id_hash', '=', idHash).execute();
    }
    return {
      row: { idHash, userId: r.user_id, subscriptionId: r.subscription_id, createdAt: r.created_at, lastSeenAt: lastSeen, expiresAt: r.expires_at },
      principal,
      idleExpiresAt: new Date(Math.min(Date.parse(lastSeen) + idleLimit, Date.parse(r.expires_at))),
    };
  }

  async end(sid: string): Promise<boolean> {
    if (!SID_SHAPE.test(sid)) return false;
    return this.endByHash(hashOf(sid));
  }

  private async endByHash(idHash: string): Promise<boolean> {
    const r = await this.store.db.deleteFrom('sessions').where('id_hash', '=', idHash).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async endAllFor(userId: string): Promise<number> {
    const one = await this.store.db.selectFrom('sessions').select('subscription_id').where('user_id', '=', userId).executeTakeFirst();
    if (!one) return 0;
    const r = await this.store.db.deleteFrom('sessions').where('user_id', '=', userId).executeTakeFirst();
    const n = Number(r.numDeletedRows);
    if (n > 0) {
      await this.audit.record({
        subscriptionId: one.subscription_id, actorType: 'system', actorId: null, actorName: null, action: 'console.session_end',
        targetType: 'user', targetId: userId, outcome: 'success', reason: `${n} console session(s) ended by a change to the user`,
      });
    }
    return n;
  }

  /** Drop sessions that can no longer be used (on sign-in, so the table stays small). */
  private async prune(now: Date): Promise<void> {
    const idleCut = new Date(now.getTime() - this.settings.idleTimeoutSeconds * 1000).toISOString();
    await this.store.db
      .deleteFrom('sessions')
      .where((eb) => eb.or([eb('expires_at', '<=', now.toISOString()), eb('last_seen_at', '<=', idleCut)]))
      .execute();
  }
}

function ended(message: string): UnauthorizedError {
  return new UnauthorizedError(message, 'session_expired');
}

export function describe(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  if (seconds % 60 === 0) return `${seconds / 60} minute${seconds === 60 ? '' : 's'}`;
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}
