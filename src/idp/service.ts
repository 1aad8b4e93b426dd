import { BadRequestError, ConflictError, NotFoundError } from '../domain/errors.ts';
import type { AuditEventInput, Principal } from '../domain/types.ts';
import type { Store } from '../store/db.ts';
import { requireManager } from '../access/access.ts';
import { actorOf, type AuditLog } from '../audit/audit.ts';
import { DEFAULT_IDP_ALGORITHMS, IDP_ALGORITHMS, type IdpAlgorithm, type IdpSettings } from './config-schema.ts';
import { deleteIdp, findIdpByIssuer, getIdp, insertIdp, listIdps, updateIdp, type IdpFields, type TrustedIdp } from './idp-store.ts';
import { DiscoveryError, discoverJwksUri, urlProblem } from './remote.ts';

export interface IdpInput {
  name?: string | undefined;
  issuer: string;
  jwksUri?: string | null | undefined;
  audiences: string[];
  algorithms?: string[] | undefined;
  userClaim?: string | null | undefined;
  modulesClaim?: string | null | undefined;
  allowApiTokens?: boolean | undefined;
  allowExchange?: boolean | undefined;
  capToSubjectExpiry?: boolean | undefined;
}
export type IdpPatch = Partial<IdpInput>;

export type Actor = Pick<AuditEventInput, 'actorType' | 'actorId' | 'actorName'> & { sourceIp: string | null };

/** What the API shows: the row, plus the JWKS URL in use when it was discovered. */
export type IdpView = TrustedIdp & { discoveredJwksUri?: string };

const CLAIM = /^[\x21-\x7e]{1,200}$/;

/** Normalized algorithm list, or a 400 that names the refused ones. */
export function checkAlgorithms(algs: string[] | undefined): IdpAlgorithm[] {
  if (algs === undefined) return [...DEFAULT_IDP_ALGORITHMS];
  if (algs.length === 0) throw new BadRequestError(`'algorithms' must name at least one algorithm`, 'invalid_algorithm');
  const bad = algs.filter((a) => !(IDP_ALGORITHMS as readonly string[]).includes(a));
  if (bad.length) {
    const symmetric = bad.some((a) => a.toLowerCase() === 'none' || /^HS/i.test(a));
    throw new BadRequestError(
      `'algorithms' may not contain ${bad.map((b) => JSON.stringify(b)).join(', ')}` +
        (symmetric ? ': unsigned (none) and shared-secret (HS*) algorithms are never accepted from an identity provider' : '') +
        `; allowed: ${IDP_ALGORITHMS.join(', ')}`,
      'invalid_algorithm',
    );
  }
  return [...new Set(algs as IdpAlgorithm[])];
}

function checkClaim(field: string, v: string | null | undefined): string | null | undefined {
  if (v === undefined || v === null) return v;
  if (!CLAIM.test(v)) throw new BadRequestError(`'${field}' must be a claim name of 1-200 printable characters without spaces`, 'invalid_claim');
  return v;
}

/**
 * Trusted identity providers per subscription. Managers manage their own subscription's;
 * the operator (CLI, config file) any. Changes go through the change feed so every node's
 * verifier reloads its trust settings at once.
 */
export class IdpService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly settings: IdpSettings,
    /** Gatehouse's own issuer: never trusted as an external one. */
    private readonly ownIssuer: string,
  ) {}

  /** Validate fields; discover the JWKS URL when none is given (unless told not to). */
  async checkInput(input: IdpInput, opts: { discover: boolean }): Promise<{ fields: Omit<IdpFields, 'subscriptionId' | 'source'>; discovered?: string }> {
    const issuer = input.issuer;
    const issuerProblem = urlProblem(issuer, this.settings.allowHttp);
    if (issuerProblem) throw new BadRequestError(`'issuer' ${issuerProblem}`, 'invalid_issuer');
    if (issuer.replace(/\/+$/, '') === this.ownIssuer) throw new BadRequestError(`'issuer' is Gatehouse's own issuer; name your identity provider's issuer`, 'invalid_issuer');
    const jwksUri = input.jwksUri ?? null;
    if (jwksUri !== null) {
      const p = urlProblem(jwksUri, this.settings.allowHttp);
      if (p) throw new BadRequestError(`'jwksUri' ${p}`, 'invalid_jwks_uri');
    }
    if (!Array.isArray(input.audiences) || input.audiences.length === 0 || input.audiences.some((a) => typeof a !== 'string' || !a || a.length > 500)) {
      throw new BadRequestError(`'audiences' must list 1-20 audience values the IdP puts in 'aud' for Gatehouse`, 'invalid_audience');
    }
    const name = input.name ?? new URL(issuer).host;
    if (!name || name.length > 100) throw new BadRequestError(`'name' must be 1-100 characters`, 'invalid_name');
    // Every static check before any request leaves for the IdP.
    const algorithms = checkAlgorithms(input.algorithms);
    const userClaim = checkClaim('userClaim', input.userClaim) ?? null;
    const modulesClaim = checkClaim('modulesClaim', input.modulesClaim) ?? null;
    let discovered: string | undefined;
    if (jwksUri === null && opts.discover) {
      try {
        discovered = await discoverJwksUri(issuer, { allowHttp: this.settings.allowHttp, timeoutMs: this.settings.httpTimeoutSeconds * 1000 });
      } catch (e) {
        if (!(e instanceof DiscoveryError)) throw e;
        throw new BadRequestError(`OpenID discovery failed: ${e.message}. Fix 'issuer' or give 'jwksUri' explicitly.`, 'discovery_failed');
      }
    }
    return {
      fields: {
        name,
        issuer,
        jwksUri,
        audiences: [...new Set(input.audiences)],
        algorithms,
        userClaim,
        modulesClaim,
        allowApiTokens: input.allowApiTokens ?? true,
        allowExchange: input.allowExchange ?? true,
        capToSubjectExpiry: input.capToSubjectExpiry ?? false,
      },
      ...(discovered ? { discovered } : {}),
    };
  }

  async list(actor: Principal): Promise<TrustedIdp[]> {
    return listIdps(this.store.db, requireManager(actor).subscriptionId);
  }

  async get(actor: Principal, id: string): Promise<TrustedIdp> {
    return this.loadOwn(actor, id);
  }

  private async loadOwn(actor: Principal, id: string): Promise<TrustedIdp> {
    const m = requireManager(actor);
    const idp = await getIdp(this.store.db, id);
    // Another subscription's entry is reported as absent: ids don't leak across tenants.
    if (!idp || idp.subscriptionId !== m.subscriptionId) throw new NotFoundError(`No identity provider with id '${id}' in your subscription.`, 'idp_not_found');
    return idp;
  }

  async create(actor: Principal, input: IdpInput, ctx: { ip: string | null }): Promise<IdpView> {
    const m = requireManager(actor);
    return this.createIn(m.subscriptionId, input, { ...actorOf(actor), sourceIp: ctx.ip }, 'api');
  }

  async createIn(subscriptionId: string, input: IdpInput, by: Actor, source: 'api' | 'config', opts = { discover: true }): Promise<IdpView> {
    const { fields, discovered } = await this.checkInput(input, opts);
    const idp = await this.store
      .transaction(async (tx) => {
        const existing = await findIdpByIssuer(tx, subscriptionId, fields.issuer);
        if (existing) throw new ConflictError(`Your subscription already trusts issuer '${fields.issuer}' (id ${existing.id}); change that entry instead.`, 'idp_exists');
        const row = await insertIdp(tx, { ...fields, subscriptionId, source });
        await this.audit.record(
          { ...by, subscriptionId, action: 'idp.create', targetType: 'idp', targetId: row.id, outcome: 'success', details: auditDetails(row) },
          tx,
        );
        await this.store.recordChange(tx, 'idp', row.id);
        return row;
      })
      .catch((e: unknown) => {
        if (e instanceof Error && !(e instanceof ConflictError) && /unique|duplicate/i.test(e.message)) {
          throw new ConflictError(`Your subscription already trusts issuer '${fields.issuer}'.`, 'idp_exists');
        }
        throw e;
      });
    this.store.notify('idp', idp.id);
    return discovered ? { ...idp, discoveredJwksUri: discovered } : idp;
  }

  async update(actor: Principal, id: string, patch: IdpPatch, ctx: { ip: string | null }): Promise<IdpView> {
    const current = await this.loadOwn(actor, id);
    if (current.source === 'config') {
      throw new ConflictError(`Identity provider '${current.name}' is managed by the Gatehouse config file (idps section); change it there.`, 'idp_managed_by_config');
    }
    return this.updateAny(current, patch, { ...actorOf(actor), sourceIp: ctx.ip }, { discover: true });
  }

  async updateAny(current: TrustedIdp, patch: IdpPatch, by: Actor, opts: { discover: boolean }, source?: 'api' | 'config'): Promise<IdpView> {
    const merged: IdpInput = {
      name: patch.name ?? current.name,
      issuer: patch.issuer ?? current.issuer,
      jwksUri: patch.jwksUri !== undefined ? patch.jwksUri : current.jwksUri,
      audiences: patch.audiences ?? current.audiences,
      algorithms: patch.algorithms ?? current.algorithms,
      userClaim: patch.userClaim !== undefined ? patch.userClaim : current.userClaim,
      modulesClaim: patch.modulesClaim !== undefined ? patch.modulesClaim : current.modulesClaim,
      allowApiTokens: patch.allowApiTokens ?? current.allowApiTokens,
      allowExchange: patch.allowExchange ?? current.allowExchange,
      capToSubjectExpiry: patch.capToSubjectExpiry ?? current.capToSubjectExpiry,
    };
    const rediscover = opts.discover && (patch.issuer !== undefined || patch.jwksUri === null);
    const { fields, discovered } = await this.checkInput(merged, { discover: rediscover });
    await this.store
      .transaction(async (tx) => {
        if (fields.issuer !== current.issuer) {
          const clash = await findIdpByIssuer(tx, current.subscriptionId, fields.issuer);
          if (clash) throw new ConflictError(`Your subscription already trusts issuer '${fields.issuer}' (id ${clash.id}).`, 'idp_exists');
        }
        await updateIdp(tx, current.id, { ...fields, ...(source ? { source } : {}) });
        await this.audit.record(
          { ...by, subscriptionId: current.subscriptionId, action: 'idp.update', targetType: 'idp', targetId: current.id, outcome: 'success',
            details: { ...auditDetails({ ...current, ...fields }), changed: Object.keys(patch) } },
          tx,
        );
        await this.store.recordChange(tx, 'idp', current.id);
      });
    this.store.notify('idp', current.id);
    const idp = (await getIdp(this.store.db, current.id))!;
    return discovered ? { ...idp, discoveredJwksUri: discovered } : idp;
  }

  async remove(actor: Principal, id: string, ctx: { ip: string | null }): Promise<void> {
    const current = await this.loadOwn(actor, id);
    if (current.source === 'config') {
      throw new ConflictError(`Identity provider '${current.name}' is managed by the Gatehouse config file (idps section); remove it there.`, 'idp_managed_by_config');
    }
    await this.removeAny(current, { ...actorOf(actor), sourceIp: ctx.ip });
  }

  async removeAny(current: TrustedIdp, by: Actor): Promise<void> {
    await this.store.transaction(async (tx) => {
      await deleteIdp(tx, current.id);
      await this.audit.record(
        { ...by, subscriptionId: current.subscriptionId, action: 'idp.delete', targetType: 'idp', targetId: current.id, outcome: 'success',
          details: { name: current.name, issuer: current.issuer } },
        tx,
      );
      await this.store.recordChange(tx, 'idp', current.id);
    });
    this.store.notify('idp', current.id);
  }
}

/** Audit details drop keys that look secret ('token'…), hence acceptAsBearer for allowApiTokens. */
function auditDetails(i: Omit<IdpFields, 'subscriptionId' | 'source'>): Record<string, unknown> {
  return {
    name: i.name, issuer: i.issuer, jwksUri: i.jwksUri, audiences: i.audiences, algorithms: i.algorithms, userClaim: i.userClaim,
    modulesClaim: i.modulesClaim, acceptAsBearer: i.allowApiTokens, allowExchange: i.allowExchange, capToSubjectExpiry: i.capToSubjectExpiry,
  };
}
