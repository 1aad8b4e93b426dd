import { createRemoteJWKSet, jwtVerify, errors as joseErrors, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import { ForbiddenError, GatehouseError, ServiceUnavailableError, UnauthorizedError } from '../domain/errors.ts';
import { intersectModules, isModuleName, type ModuleName } from '../domain/modules.ts';
import type { Principal } from '../domain/types.ts';
import type { Store } from '../store/db.ts';
import type { UserDirectory } from '../users/directory.ts';
import type { IdpSettings } from './config-schema.ts';
import { findUsersForClaim, listIdps, type TrustedIdp } from './idp-store.ts';
import { DiscoveryError, discoverJwksUri, urlProblem } from './remote.ts';

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;
export type IdpTokenUse = 'api' | 'exchange';

export interface VerifiedIdpToken {
  idp: TrustedIdp;
  /** The mapped Gatehouse user, modules already intersected with the IdP's modules claim. */
  principal: UserPrincipal;
  claims: JWTPayload;
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 16384;
const DEFAULT_USER_CLAIMS = ['preferred_username', 'email'];

/** Printable, bounded rendering of an attacker-chosen string for an error message. */
function shown(v: string, max = 120): string {
  const s = v.replace(/[^\x20-\x7e]/g, '?');
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/**
 * Verifies JWTs issued by the trusted external identity providers of any subscription.
 * Trust settings live in memory (reloaded when the change feed reports an 'idp' change);
 * each JWKS is cached by jose: refetched when a token names an unknown `kid`, but at most
 * once per cooldown, and at the latest after jwksCacheMaxAgeSeconds.
 */
export class IdpVerifier {
  private registry: Map<string, TrustedIdp[]> | undefined;
  private byId = new Map<string, TrustedIdp>();
  private loading: Promise<Map<string, TrustedIdp[]>> | undefined;
  private version = 0;
  private readonly jwksSets = new Map<string, JWTVerifyGetKey>();
  private readonly discovered = new Map<string, { uri?: string; error?: string; at: number }>();
  /** (subscription, claim value) → user id; cleared on any user change. */
  private readonly userIds = new Map<string, string>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Store,
    private readonly settings: IdpSettings,
    private readonly users: UserDirectory,
    private readonly log: Logger,
  ) {
    this.unsubscribe = store.onChange((c) => {
      if (c.entity === 'idp') {
        this.version++;
        this.registry = undefined;
        this.loading = undefined;
      } else if (c.entity === 'user') {
        this.userIds.clear();
      }
    });
  }

  close(): void {
    this.unsubscribe();
  }

  private async load(): Promise<Map<string, TrustedIdp[]>> {
    if (this.registry) return this.registry;
    if (this.loading) return this.loading;
    const version = this.version;
    const p = listIdps(this.store.db).then((all) => {
      const reg = new Map<string, TrustedIdp[]>();
      const byId = new Map<string, TrustedIdp>();
      for (const idp of all) {
        reg.set(idp.issuer, [...(reg.get(idp.issuer) ?? []), idp]);
        byId.set(idp.id, idp);
      }
      if (version === this.version) {
        this.registry = reg;
        this.byId = byId;
        // Key sets of URLs no longer configured are dropped (a changed jwksUri starts fresh).
        const uris = new Set(all.map((i) => i.jwksUri).filter((u): u is string => u !== null));
        for (const u of this.jwksSets.keys()) if (!uris.has(u) && ![...this.discovered.values()].some((d) => d.uri === u)) this.jwksSets.delete(u);
        this.discovered.clear();
      }
      return reg;
    });
    this.loading = p;
    p.finally(() => {
      if (this.loading === p) this.loading = undefined;
    }).catch(() => {});
    return p;
  }

  async idpById(id: string): Promise<TrustedIdp | undefined> {
    await this.load();
    return this.byId.get(id);
  }

  private async jwksUriOf(idp: TrustedIdp): Promise<string> {
    if (idp.jwksUri) return idp.jwksUri;
    const now = Date.now();
    const d = this.discovered.get(idp.issuer);
    const maxAge = this.settings.jwksCacheMaxAgeSeconds * 1000;
    if (d?.uri && now - d.at < maxAge) return d.uri;
    // A failed discovery is not retried before the cooldown: a dead IdP is not hammered.
    if (d?.error && now - d.at < Math.max(1000, this.settings.jwksCooldownSeconds * 1000)) {
      throw new ServiceUnavailableError(`The signing keys of identity provider '${idp.name}' are unavailable: ${d.error}`, 'idp_unavailable');
    }
    try {
      const uri = await discoverJwksUri(idp.issuer, { allowHttp: this.settings.allowHttp, timeoutMs: this.settings.httpTimeoutSeconds * 1000 });
      this.discovered.set(idp.issuer, { uri, at: now });
      return uri;
    } catch (e) {
      const error = e instanceof DiscoveryError ? e.message : 'discovery failed';
      this.discovered.set(idp.issuer, { error, at: now });
      this.log.warn({ idp: idp.id, issuer: idp.issuer, reason: error }, 'identity provider discovery failed');
      throw new ServiceUnavailableError(`The signing keys of identity provider '${idp.name}' are unavailable: ${error}`, 'idp_unavailable');
    }
  }

  private keySet(uri: string): JWTVerifyGetKey {
    let set = this.jwksSets.get(uri);
    if (!set) {
      set = createRemoteJWKSet(new URL(uri), {
        cooldownDuration: this.settings.jwksCooldownSeconds * 1000,
        cacheMaxAge: this.settings.jwksCacheMaxAgeSeconds * 1000,
        timeoutDuration: this.settings.httpTimeoutSeconds * 1000,
      });
      this.jwksSets.set(uri, set);
    }
    return set;
  }

  /**
   * Verify an IdP token for `use` and map it to a Gatehouse user. Throws 401 naming why
   * (unknown issuer, bad signature, no such user …), 403 when the user lacks API access,
   * 503 when the IdP's keys cannot be fetched.
   */
  async verify(token: string, issuer: string, use: IdpTokenUse): Promise<VerifiedIdpToken> {
    if (token.length > MAX_TOKEN_LENGTH) throw new UnauthorizedError('token is too long', 'invalid_token');
    if (!TOKEN_SHAPE.test(token)) throw new UnauthorizedError('token is not a well-formed JWT', 'invalid_token');
    const candidates = (await this.load()).get(issuer);
    if (!candidates?.length) {
      throw new UnauthorizedError(`token issuer '${shown(issuer)}' is not a trusted identity provider`, 'unknown_issuer');
    }
    let firstError: unknown;
    // Usually one subscription trusts an issuer; when several do, the user decides which.
    for (const idp of candidates) {
      try {
        return await this.verifyWith(idp, token, use);
      } catch (e) {
        firstError ??= e;
        if (!(e instanceof GatehouseError) || e.code !== 'unmapped_user') break;
      }
    }
    throw firstError;
  }

  private async verifyWith(idp: TrustedIdp, token: string, use: IdpTokenUse): Promise<VerifiedIdpToken> {
    const uri = await this.jwksUriOf(idp);
    const problem = urlProblem(uri, this.settings.allowHttp);
    if (problem) throw new ServiceUnavailableError(`The JWKS URL of identity provider '${idp.name}' ${problem}.`, 'idp_unavailable');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keySet(uri), {
        issuer: idp.issuer,
        audience: idp.audiences,
        algorithms: idp.algorithms,
        clockTolerance: this.settings.clockSkewSeconds,
        requiredClaims: ['iss', 'exp'],
      }));
    } catch (e) {
      throw this.describe(e, idp);
    }
    if (payload.iat !== undefined && payload.iat > Date.now() / 1000 + this.settings.clockSkewSeconds) {
      throw new UnauthorizedError('token was issued in the future', 'invalid_token');
    }
    if (use === 'api' && !idp.allowApiTokens) {
      throw new UnauthorizedError(
        `tokens of identity provider '${idp.name}' are not accepted as Bearer tokens; exchange them at POST /oauth2/token`,
        'idp_api_tokens_disabled',
      );
    }
    if (use === 'exchange' && !idp.allowExchange) {
      throw new UnauthorizedError(`token exchange is not enabled for identity provider '${idp.name}'`, 'idp_exchange_disabled');
    }
    const userId = await this.mapUser(idp, payload);
    const p = await this.users.principalFor(userId, 'idp');
    if (p.subscriptionId !== idp.subscriptionId) throw new UnauthorizedError('token maps to a user of another subscription', 'unmapped_user');
    if (!p.apiAccess) {
      throw new ForbiddenError("This user does not have the 'API Access' permission. Ask a manager to enable API Access under Roles and Scopes.", 'api_access_required');
    }
    const principal: UserPrincipal = { ...p, modules: idpModules(idp, payload, p.modules) };
    if (typeof payload.jti === 'string' && payload.jti.length <= 256) principal.tokenId = payload.jti;
    return { idp, principal, claims: payload };
  }

  private async mapUser(idp: TrustedIdp, payload: JWTPayload): Promise<string> {
    const names = idp.userClaim ? [idp.userClaim] : DEFAULT_USER_CLAIMS;
    const tried: string[] = [];
    for (const name of names) {
      const v = payload[name];
      if (typeof v !== 'string' || v.length === 0 || v.length > 256) continue;
      tried.push(`${name} '${shown(v, 80)}'`);
      const key = `${idp.subscriptionId}\n${v}`;
      const cached = this.userIds.get(key);
      if (cached) return cached;
      const ids = await findUsersForClaim(this.store.db, idp.subscriptionId, v);
      if (ids.length > 1) {
        throw new UnauthorizedError(`token's ${name} '${shown(v, 80)}' matches more than one user; map a unique claim (userClaim)`, 'unmapped_user');
      }
      if (ids.length === 1) {
        if (this.userIds.size > 50_000) this.userIds.clear();
        this.userIds.set(key, ids[0]!);
        return ids[0]!;
      }
    }
    if (tried.length === 0) {
      throw new UnauthorizedError(`token has no ${names.join(' or ')} claim naming a Gatehouse user`, 'unmapped_user');
    }
    throw new UnauthorizedError(`no Gatehouse user of this subscription matches the token's ${tried.join(' or ')}`, 'unmapped_user');
  }

  private describe(e: unknown, idp: TrustedIdp): GatehouseError {
    if (e instanceof GatehouseError) return e;
    const bad = (m: string) => new UnauthorizedError(m, 'invalid_token');
    if (e instanceof joseErrors.JWTExpired) return bad('token has expired');
    if (e instanceof joseErrors.JWTClaimValidationFailed) {
      if (e.claim === 'aud') return bad(`token audience is not one this identity provider is trusted for (accepted: ${idp.audiences.join(', ')})`);
      if (e.claim === 'nbf') return bad('token is not valid yet');
      if (e.claim === 'exp') return bad('token has no expiry (exp)');
      return bad(`token claim '${e.claim}' is invalid (${e.reason})`);
    }
    if (e instanceof joseErrors.JOSEAlgNotAllowed) return bad(`token algorithm is not allowed for identity provider '${idp.name}' (allowed: ${idp.algorithms.join(', ')})`);
    if (e instanceof joseErrors.JWKSNoMatchingKey) return bad("no key in the identity provider's JWKS matches the token's key id (kid) and algorithm");
    if (e instanceof joseErrors.JWKSMultipleMatchingKeys) return bad("several keys in the identity provider's JWKS match the token and none verified it");
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) return bad('token signature is invalid');
    if (e instanceof joseErrors.JWTInvalid || e instanceof joseErrors.JWSInvalid) return bad('token is malformed');
    if (e instanceof joseErrors.JOSENotSupported) return bad('token uses an unsupported algorithm or key type');
    // Anything else happened while fetching the key set: the IdP is unreachable or answered nonsense.
    this.log.warn({ idp: idp.id, issuer: idp.issuer, reason: (e as Error)?.message }, 'could not fetch identity provider keys');
    return new ServiceUnavailableError(`The signing keys of identity provider '${idp.name}' could not be fetched; try again later.`, 'idp_unavailable');
  }
}

/** The user's modules, intersected with the IdP's modules claim when one is configured. */
export function idpModules(idp: Pick<TrustedIdp, 'modulesClaim'>, payload: JWTPayload, own: ModuleName[]): ModuleName[] {
  if (!idp.modulesClaim) return own;
  const raw = payload[idp.modulesClaim];
  // A configured claim that is absent grants nothing (fail closed).
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(/[\s,]+/) : [];
  const mods = list.filter((m): m is string => typeof m === 'string').map((m) => m.trim().toUpperCase()).filter(isModuleName);
  return intersectModules(own, mods);
}
