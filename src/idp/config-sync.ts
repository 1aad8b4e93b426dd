import { ConfigError } from '../config.ts';
import { GatehouseError } from '../domain/errors.ts';
import { listSubscriptions } from '../store/subscriptions.ts';
import type { Store } from '../store/db.ts';
import type { IdpSettings } from './config-schema.ts';
import { listIdps, type TrustedIdp } from './idp-store.ts';
import type { IdpService } from './service.ts';

const OPERATOR = { actorType: 'operator', actorId: null, actorName: 'config file', sourceIp: null } as const;

/**
 * Make the store's config-managed IdP entries equal the YAML `idps.trusted` list: add new
 * ones, update changed ones, remove those no longer listed. Entries made through the API or
 * CLI are left alone, except that a YAML entry for the same (subscription, issuer) takes it over.
 * Discovery is not attempted here (the IdP may be down at start); it happens on first use.
 */
export async function syncConfiguredIdps(store: Store, service: IdpService, settings: IdpSettings): Promise<{ added: number; updated: number; removed: number }> {
  const subs = await listSubscriptions(store.db);
  const existing = await listIdps(store.db);
  const keep = new Set<string>();
  let added = 0;
  let updated = 0;
  for (const [i, e] of settings.trusted.entries()) {
    const where = `idps.trusted[${i}]`;
    const sub = subs.find((s) => s.id === e.subscription || s.name === e.subscription);
    if (!sub) throw new ConfigError(`'${where}.subscription': no subscription '${e.subscription}' (give its id or name)`);
    const input = {
      name: e.name, issuer: e.issuer, jwksUri: e.jwksUri ?? null, audiences: e.audiences, algorithms: e.algorithms,
      userClaim: e.userClaim ?? null, modulesClaim: e.modulesClaim ?? null, allowApiTokens: e.allowApiTokens,
      allowExchange: e.allowExchange, capToSubjectExpiry: e.capToSubjectExpiry,
    };
    try {
      const current = existing.find((x) => x.subscriptionId === sub.id && x.issuer === e.issuer);
      if (!current) {
        const idp = await service.createIn(sub.id, input, OPERATOR, 'config', { discover: false });
        keep.add(idp.id);
        added++;
      } else {
        keep.add(current.id);
        const { fields } = await service.checkInput(input, { discover: false });
        if (current.source !== 'config' || differs(current, fields)) {
          await service.updateAny(current, input, OPERATOR, { discover: false }, 'config');
          updated++;
        }
      }
    } catch (err) {
      if (err instanceof GatehouseError) throw new ConfigError(`'${where}': ${err.message}`);
      throw err;
    }
  }
  let removed = 0;
  for (const x of existing) {
    if (x.source === 'config' && !keep.has(x.id)) {
      await service.removeAny(x, OPERATOR);
      removed++;
    }
  }
  return { added, updated, removed };
}

function differs(a: TrustedIdp, b: Record<string, unknown>): boolean {
  return Object.entries(b).some(([k, v]) => JSON.stringify((a as unknown as Record<string, unknown>)[k]) !== JSON.stringify(v));
}
