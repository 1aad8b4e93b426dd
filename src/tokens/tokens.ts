import { createHash, randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, decodeProtectedHeader, decodeJwt, errors as joseErrors, type JWTPayload } from 'jose';
import type { AuthMethod, Principal } from '../domain/types.ts';
import { UnauthorizedError } from '../domain/errors.ts';
import type { ModuleName } from '../domain/modules.ts';
import type { KeyManager } from './keys.ts';
import { assertIssuedHeader, assertStrictJwt } from '../security/jwt-guard.ts'; // harden (issue 10)

/** The claims every Gatehouse token carries (RFC 9068 JWT access token profile + ours). */
export interface GatehouseClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  iat: number;
  exp: number;
  jti: string;
  subscription_id: string;
  auth_method: AuthMethod;
  username?: string;
  client_id?: string;
  /** Module grant carried by client and subscription tokens (users' come from live state). */
  modules?: ModuleName[];
}

export interface IssueInput {
  sub: string;
  subscriptionId: string;
  authMethod: AuthMethod;
  username?: string;
  clientId?: string;
  modules?: ModuleName[];
  ttlSeconds?: number;
  /** Give the token a chosen id (subscription tokens: the secret ID). */
  jti?: string;
  extra?: Record<string, unknown>;
}

export interface IssuedToken {
  token: string;
  jti: string;
  expiresAt: Date;
  claims: GatehouseClaims;
}

/** Turns verified claims into a principal with current state; one per auth method. */
export type PrincipalResolver = (claims: GatehouseClaims) => Promise<Principal>;

/** A verification step every token must pass (e.g. not revoked); throws UnauthorizedError to refuse. */
export type TokenCheck = (claims: GatehouseClaims) => void | Promise<void>;
// >>> idp (issue 6): tokens of other issuers (external IdPs) go to a registered verifier.
/** Verifies a token whose (unverified) `iss` is not Gatehouse's; returns the principal or throws. */
export type ExternalTokenVerifier = (token: string, issuer: string) => Promise<Principal>;

/** The unverified `iss` of a JWT-shaped token, or undefined. Only for routing to a verifier. */
export function peekIssuer(token: string): string | undefined {
  if (token.length > 16384 || !TOKEN_SHAPE.test(token)) return undefined;
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}
// <<< idp

// >>> scaleout (issue 8)
/** Told about every issued token and every refused one (metrics). */
export interface TokenObserver {
  issued(method: AuthMethod): void;
  verifyFailed(err: unknown): void;
}
// <<< scaleout

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 8192;

/**
 * Issues and verifies Gatehouse JWTs. Verification = signature (algorithm pinned by the key
 * named in `kid`) + iss/aud/exp/nbf/typ, then the resolver for the token's auth method
 * checks live principal state from memory.
 */
export class TokenService {
  private readonly resolvers = new Map<AuthMethod, PrincipalResolver>();
  /** Signature-verified tokens, keyed by SHA-256 of the token; state is still checked on every use. */
  private readonly verified = new Map<string, { claims: GatehouseClaims; kid: string }>();
  private readonly maxVerified = 50_000;

  constructor(
    private readonly keys: KeyManager,
    readonly opts: { issuer: string; audience: string; ttlSeconds: number; clockSkewSeconds: number },
  ) {}

  registerResolver(method: AuthMethod, resolver: PrincipalResolver): void {
    this.resolvers.set(method, resolver);
  }

  // --- verification checks (issue 3: revocation list) ---
  /** Run on every verify() after the signature and claims, before the resolver; throw to refuse. */
  private readonly checks: TokenCheck[] = [];
  addCheck(check: TokenCheck): void {
    this.checks.push(check);
  }
  // --- end verification checks ---
  // >>> idp (issue 6)
  private external: ExternalTokenVerifier | undefined;
  /** Tokens whose `iss` is not ours are handed to `v` (trusted external identity providers). */
  registerExternalVerifier(v: ExternalTokenVerifier): void {
    this.external = v;
  }
  // <<< idp
  // >>> scaleout (issue 8): metrics hooks
  private observer: TokenObserver | undefined;
  setObserver(o: TokenObserver): void {
    this.observer = o;
  }
  get verifiedCacheSize(): number {
    return this.verified.size;
  }
  // <<< scaleout

  async issue(input: IssueInput): Promise<IssuedToken> {
    const issued = await this.issueToken(input);
    this.observer?.issued(input.authMethod); // scaleout (issue 8)
    return issued;
  }

  private async issueToken(input: IssueInput): Promise<IssuedToken> {
    const key = this.keys.signingKey();
    const now = Math.floor(Date.now() / 1000);
    const ttl = input.ttlSeconds ?? this.opts.ttlSeconds;
    const jti = input.jti ?? randomUUID();
    const claims: GatehouseClaims = {
      ...input.extra,
      iss: this.opts.issuer,
      sub: input.sub,
      aud: this.opts.audience,
      iat: now,
      exp: now + ttl,
      jti,
      subscription_id: input.subscriptionId,
      auth_method: input.authMethod,
      ...(input.username !== undefined ? { username: input.username } : {}),
      ...(input.clientId !== undefined ? { client_id: input.clientId } : {}),
      ...(input.modules !== undefined ? { modules: input.modules } : {}),
    };
    const token = await new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' }).sign(key.privateKey!);
    return { token, jti, expiresAt: new Date(claims.exp * 1000), claims };
  }

  /** Claims of a token this process verified before and that is still within its lifetime and key. */
  private fromCache(cacheKey: string): GatehouseClaims | undefined {
    const cached = this.verified.get(cacheKey);
    if (!cached) return undefined;
    if (cached.claims.exp + this.opts.clockSkewSeconds > Date.now() / 1000 && this.keys.verificationKey(cached.kid)) {
      return cached.claims;
    }
    this.verified.delete(cacheKey);
    return undefined;
  }

  private static checkShape(token: string): string {
    if (token.length > MAX_TOKEN_LENGTH) throw new UnauthorizedError('token is too long', 'invalid_token');
    if (!TOKEN_SHAPE.test(token)) throw new UnauthorizedError('token is not a well-formed JWT', 'invalid_token');
    return createHash('sha256').update(token).digest('base64url');
  }

  /** Signature and claims only. Throws UnauthorizedError saying why. */
  async verifyClaims(token: string, cacheKey = TokenService.checkShape(token)): Promise<GatehouseClaims> {
    const cached = this.fromCache(cacheKey);
    if (cached) return cached;
    assertStrictJwt(token); // harden (issue 10): canonical encoding, no duplicate keys, header = alg/kid/typ only
    const nowSec = Date.now() / 1000;
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new UnauthorizedError('token header is not valid JSON', 'invalid_token');
    }
    if (typeof header.kid !== 'string' || header.kid.length === 0 || header.kid.length > 128) {
      throw new UnauthorizedError('token has no usable key id (kid)', 'invalid_token');
    }
    let key = this.keys.verificationKey(header.kid);
    if (!key) {
      await this.keys.refresh();
      key = this.keys.verificationKey(header.kid);
    }
    if (!key) throw new UnauthorizedError('token was signed by an unknown or retired key', 'invalid_token');
    if (header.alg !== key.alg) throw new UnauthorizedError(`token algorithm ${String(header.alg)} is not allowed for its key`, 'invalid_token');
    let payload: JWTPayload;
    let verifiedHeader: unknown; // harden (issue 10)
    try {
      ({ payload, protectedHeader: verifiedHeader } = await jwtVerify(token, key.publicKey, {
        algorithms: [key.alg],
        issuer: this.opts.issuer,
        audience: this.opts.audience,
        clockTolerance: this.opts.clockSkewSeconds,
        typ: 'at+jwt',
        requiredClaims: ['iss', 'sub', 'aud', 'iat', 'exp', 'jti'],
      }));
    } catch (e) {
      throw new UnauthorizedError(describeJoseError(e), 'invalid_token');
    }
    assertIssuedHeader(verifiedHeader); // harden (issue 10): only alg/kid/typ, even under our own signature
    if (payload.iat !== undefined && payload.iat > nowSec + this.opts.clockSkewSeconds) {
      throw new UnauthorizedError('token was issued in the future', 'invalid_token');
    }
    const claims = payload as GatehouseClaims;
    if (typeof claims.subscription_id !== 'string' || typeof claims.auth_method !== 'string') {
      throw new UnauthorizedError('token lacks Gatehouse claims', 'invalid_token');
    }
    if (this.verified.size >= this.maxVerified) {
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.set(cacheKey, { claims, kid: key.kid });
    return claims;
  }

  /** Full verification: claims, then live principal state. */
  async verify(token: string): Promise<Principal> {
    // >>> scaleout (issue 8): count refusals by reason
    if (!this.observer) return this.verifyToken(token);
    try {
      return await this.verifyToken(token);
    } catch (e) {
      this.observer.verifyFailed(e);
      throw e;
    }
    // <<< scaleout
  }

  private async verifyToken(token: string): Promise<Principal> {
    const cacheKey = TokenService.checkShape(token);
    // >>> idp (issue 6): a token of another issuer goes to the external verifier (not on a cache hit:
    // only our own tokens are ever in the verified cache).
    if (this.external && !this.verified.has(cacheKey)) {
      const iss = peekIssuer(token);
      if (iss !== undefined && iss !== this.opts.issuer) return this.external(token, iss);
    }
    // <<< idp
    const claims = await this.verifyClaims(token, cacheKey);
    for (const check of this.checks) await check(claims);
    const resolver = this.resolvers.get(claims.auth_method);
    if (!resolver) throw new UnauthorizedError(`tokens of kind '${claims.auth_method}' are not accepted here`, 'invalid_token');
    const principal = await resolver(claims);
    return { ...principal, tokenId: claims.jti };
  }
}

function describeJoseError(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'token has expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'iss') return 'token was issued by another issuer';
    if (e.claim === 'aud') return 'token is meant for another audience';
    if (e.claim === 'nbf') return 'token is not valid yet';
    if (e.claim === 'typ') return 'token type is not at+jwt';
    return `token claim '${e.claim}' is invalid (${e.reason})`;
  }
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature is invalid';
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm is not allowed';
  if (e instanceof joseErrors.JOSENotSupported) return 'token uses an unsupported feature';
  if (e instanceof joseErrors.JWTInvalid || e instanceof joseErrors.JWSInvalid) return 'token is malformed';
  return 'token is invalid';
}
