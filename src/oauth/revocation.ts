import { UnauthorizedError } from '../domain/errors.ts';
import type { AuditEventInput } from '../domain/types.ts';
import type { Store } from '../store/db.ts';
import type { AuditLog } from '../audit/audit.ts';
import type { GatehouseClaims, TokenCheck } from '../tokens/tokens.ts';
import { getRevokedToken, insertRevokedToken, listRevokedTokens, pruneRevokedTokens } from '../clients/store.ts';

export const REVOKED_ENTITY = 'revoked_token';

/**
 * Access tokens revoked before they expire (RFC 7009). The list lives in the store (table
 * revoked_tokens) and in memory on every node: loaded at start, extended through the change
 * feed (entity 'revoked_token', id = jti), so verification never reads the database and a
 * revocation applies everywhere within the feed's poll interval (at once on this node).
 * Entries leave memory and the table once the token would have expired anyway.
 */
export class RevocationList {
  /** jti → expiry in epoch ms (Infinity until known, for entries learnt from the feed). */
  private readonly revoked = new Map<string, number>();
  private readonly unsubscribe: () => void;
  private addsSincePrune = 0;

  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
  ) {
    this.unsubscribe = store.onChange((c) => {
      if (c.entity !== REVOKED_ENTITY || this.revoked.has(c.id)) return;
      this.revoked.set(c.id, Number.POSITIVE_INFINITY);
      void getRevokedToken(store.db, c.id)
        .then((r) => r && this.revoked.set(c.id, Date.parse(r.expiresAt)))
        .catch(() => {});
    });
  }

  async load(): Promise<void> {
    const now = new Date().toISOString();
    await pruneRevokedTokens(this.store.db, now).catch(() => {});
    for (const r of await listRevokedTokens(this.store.db, now)) this.revoked.set(r.jti, Date.parse(r.expiresAt));
  }

  isRevoked(jti: string): boolean {
    return this.revoked.has(jti);
  }

  /** TokenService check: refuse revoked tokens. */
  readonly check: TokenCheck = (claims: GatehouseClaims) => {
    if (this.revoked.has(claims.jti)) throw new UnauthorizedError('This token has been revoked.', 'token_revoked');
  };

  /** Revoke a (verified) token; idempotent. */
  async revoke(
    claims: GatehouseClaims,
    by: Pick<AuditEventInput, 'actorType' | 'actorId' | 'actorName'> & { sourceIp: string | null; clientId: string | null },
  ): Promise<void> {
    const expiresAt = new Date(claims.exp * 1000).toISOString();
    let added = false;
    await this.store.transaction(async (tx) => {
      added = await insertRevokedToken(tx, { jti: claims.jti, subscriptionId: claims.subscription_id, clientId: by.clientId, expiresAt });
      if (!added) return;
      await this.audit.record(
        {
          subscriptionId: claims.subscription_id, actorType: by.actorType, actorId: by.actorId, actorName: by.actorName,
          action: 'oauth.revoke', targetType: 'access_token', targetId: claims.jti, outcome: 'success', sourceIp: by.sourceIp,
          details: { authMethod: claims.auth_method, subject: claims.sub, clientId: claims.client_id ?? null, expiresAt },
        },
        tx,
      );
      await this.store.recordChange(tx, REVOKED_ENTITY, claims.jti);
    });
    this.revoked.set(claims.jti, claims.exp * 1000);
    if (added) this.store.notify(REVOKED_ENTITY, claims.jti);
    if (++this.addsSincePrune >= 1000) {
      this.addsSincePrune = 0;
      const now = Date.now();
      for (const [jti, exp] of this.revoked) if (exp < now - 300_000) this.revoked.delete(jti);
      await pruneRevokedTokens(this.store.db, new Date(now - 300_000).toISOString()).catch(() => {});
    }
  }

  get size(): number {
    return this.revoked.size;
  }

  close(): void {
    this.unsubscribe();
  }
}
