import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { Store } from '../store/db.ts';
import type { MasterKey } from '../crypto/master-key.ts';
import { nowIso } from '../store/ids.ts';

export type SigningAlg = 'ES256' | 'EdDSA' | 'RS256';

export interface LoadedKey {
  kid: string;
  /** The one algorithm this key may verify; a token naming another is refused. */
  alg: SigningAlg;
  publicKey: KeyObject;
  publicJwk: JWK;
  privateKey: KeyObject | undefined;
  createdAt: string;
  retiredAt: string | null;
  notAfter: string | null;
  /** `notAfter` in ms (perf, issue 9: checked on every verification). */
  notAfterMs?: number;
}

function generate(alg: SigningAlg): { publicKey: KeyObject; privateKey: KeyObject } {
  if (alg === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'P-256' });
  if (alg === 'EdDSA') return generateKeyPairSync('ed25519');
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

/**
 * Signing keys: kept in the store, private parts sealed with the master key. The newest
 * unretired key signs; retired keys keep verifying (and stay in the JWKS) until `not_after`,
 * which covers the longest-lived token they may have signed.
 */
export class KeyManager {
  private keys = new Map<string, LoadedKey>();
  private signing: LoadedKey | undefined;
  private lastRefresh = 0;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly master: MasterKey,
    private readonly opts: { overlapSeconds: number; alg?: SigningAlg },
  ) {}

  async init(): Promise<void> {
    await this.reload();
    if (!this.signing) {
      await this.rotate();
    }
  }

  /** Make a new signing key; the previous one retires and keeps verifying for the overlap window. */
  async rotate(): Promise<string> {
    return (await this.rotateKey(undefined))!;
  }

  // >>> scaleout (issue 8): scheduled rotation, claimed across nodes
  /**
   * Rotate only if the signing key was created at or before `cutoffIso`. The retiring UPDATE
   * is the claim: when several nodes try at once, the first commits and the others' UPDATE
   * matches no row (the key is retired already), so they write nothing. Null: not rotated.
   */
  async rotateIfOlderThan(cutoffIso: string, now = new Date()): Promise<string | null> {
    return this.rotateKey(cutoffIso, now);
  }
  // <<< scaleout

  private async rotateKey(cutoffIso: string | undefined, now = new Date()): Promise<string | null> {
    const alg = this.opts.alg ?? 'ES256';
    const { publicKey, privateKey } = generate(alg);
    const publicJwk = { ...(publicKey.export({ format: 'jwk' }) as JWK), alg, use: 'sig' };
    const kid = await calculateJwkThumbprint(publicJwk);
    publicJwk.kid = kid;
    const notAfter = new Date(now.getTime() + this.opts.overlapSeconds * 1000).toISOString();
    const rotated = await this.store.transaction(async (tx) => {
      let retire = tx
        .updateTable('signing_keys')
        .set({ retired_at: now.toISOString(), not_after: notAfter })
        .where('retired_at', 'is', null);
      if (cutoffIso !== undefined) retire = retire.where('created_at', '<=', cutoffIso); // scaleout (issue 8)
      const r = await retire.executeTakeFirst();
      if (cutoffIso !== undefined && Number(r.numUpdatedRows) === 0) return false; // scaleout: another node won
      await tx
        .insertInto('signing_keys')
        .values({
          kid,
          alg,
          public_jwk: JSON.stringify(publicJwk),
          private_key_enc: this.master.encrypt(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string),
          created_at: now.toISOString(),
          retired_at: null,
          not_after: null,
        })
        .execute();
      await this.store.recordChange(tx, 'signing_key', kid);
      return true;
    });
    if (!rotated) return null;
    this.store.notify('signing_key', kid);
    await this.reload();
    return kid;
  }

  async reload(): Promise<void> {
    const rows = await this.store.db.selectFrom('signing_keys').selectAll().orderBy('created_at', 'desc').execute();
    const now = nowIso();
    const next = new Map<string, LoadedKey>();
    let signing: LoadedKey | undefined;
    for (const r of rows) {
      if (r.not_after && r.not_after <= now) continue;
      const existing = this.keys.get(r.kid);
      const k: LoadedKey = {
        kid: r.kid,
        alg: r.alg as SigningAlg,
        publicKey: existing?.publicKey ?? createPublicKey({ key: JSON.parse(r.public_jwk) as JWK, format: 'jwk' } as any),
        publicJwk: JSON.parse(r.public_jwk) as JWK,
        privateKey:
          r.retired_at === null
            ? existing?.privateKey ?? createPrivateKey(this.master.decrypt(r.private_key_enc).toString('utf8'))
            : undefined,
        createdAt: r.created_at,
        retiredAt: r.retired_at,
        notAfter: r.not_after,
        notAfterMs: r.not_after ? Date.parse(r.not_after) : Number.POSITIVE_INFINITY,
      };
      next.set(k.kid, k);
      if (!signing && k.retiredAt === null) signing = k;
    }
    this.keys = next;
    this.signing = signing;
    this.lastRefresh = Date.now();
  }

  /**
   * Reload from the store, at most once per `minIntervalMs` (a token with an unknown kid
   * must not turn into a database query per request).
   */
  async refresh(minIntervalMs = 5000): Promise<void> {
    if (Date.now() - this.lastRefresh < minIntervalMs) return;
    this.refreshing ??= this.reload().finally(() => (this.refreshing = undefined));
    await this.refreshing;
  }

  signingKey(): LoadedKey {
    if (!this.signing?.privateKey) throw new Error('no signing key loaded');
    return this.signing;
  }

  verificationKey(kid: string): LoadedKey | undefined {
    const k = this.keys.get(kid);
    if (!k) return undefined;
    if ((k.notAfterMs ?? (k.notAfter ? Date.parse(k.notAfter) : Infinity)) <= Date.now()) return undefined;
    return k;
  }

  jwks(): { keys: JWK[] } {
    return { keys: [...this.keys.values()].map((k) => k.publicJwk) };
  }

  list(): LoadedKey[] {
    return [...this.keys.values()];
  }
}
