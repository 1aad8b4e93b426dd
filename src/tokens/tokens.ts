import { randomUUID, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { isAscii } from 'node:buffer';
import type { JWTPayload } from 'jose';
import type { AuthMethod, Principal } from '../domain/types.ts';
import { UnauthorizedError } from '../domain/errors.ts';
import type { ModuleName } from '../domain/modules.ts';
import type { KeyManager, LoadedKey, SigningAlg } from './keys.ts';
import { makeRoom } from '../util/bounded-map.ts';
import { assertIssuedHeader, canonicalB64url, hasDuplicateKeysIn } from '../security/jwt-guard.ts'; // harden (issue 10)

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

/**
 * Turns verified claims into a principal with current state; one per auth method. Answers
 * synchronously when the state is in memory (perf, issue 9); a principal it returns again for
 * unchanged state may be the same frozen object.
 */
export type PrincipalResolver = (claims: GatehouseClaims) => Principal | Promise<Principal>;

/** A signature-verified token: its claims, key, and the principal last built for it. */
interface VerifiedEntry {
  token: string;
  claims: GatehouseClaims;
  kid: string;
  base: Principal | undefined;
  principal: Principal | undefined;
}

/** A verification step every token must pass (e.g. not revoked); throws UnauthorizedError to refuse. */
export type TokenCheck = (claims: GatehouseClaims) => void | Promise<void>;
// >>> idp (issue 6): tokens of other issuers (external IdPs) go to a registered verifier.
/** Verifies a token whose (unverified) `iss` is not Gatehouse's; returns the principal or throws. */
export type ExternalTokenVerifier = (token: string, issuer: string) => Promise<Principal>;

/** The unverified `iss` of a JWT-shaped token, or undefined. Only for routing to a verifier. */
export function peekIssuer(token: string): string | undefined {
  if (token.length > 16384 || !TOKEN_SHAPE.test(token)) return undefined;
  const payload = decodeSegment(token.slice(token.indexOf('.') + 1, token.lastIndexOf('.')));
  const iss = payload?.iss;
  return typeof iss === 'string' ? iss : undefined;
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

// perf (issue 9): JWS sign/verify with node:crypto directly (jose's per-call work was half the
// cost of a first-sight verification). Every check jose made is made here, in our own code:
// algorithm pinned by the key (never by the header), `crit` refused, signature length, typ,
// iss, aud, required claims and their types, exp/nbf/iat with the clock skew.

/** base64url JSON segment → object, or undefined when it is not a JSON object. */
function decodeSegment(seg: string): Record<string, unknown> | undefined {
  const v = parseJson(segmentText(seg));
  return isJsonObject(v) ? v : undefined;
}

/** Signature bytes each algorithm produces (ES256: r||s, RFC 7518 §3.4). */
const SIG_LENGTH: Record<SigningAlg, number | undefined> = { ES256: 64, EdDSA: 64, RS256: undefined };

function signBytes(alg: SigningAlg, data: Buffer, key: KeyObject): Buffer {
  if (alg === 'ES256') return cryptoSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
  if (alg === 'EdDSA') return cryptoSign(null, data, key);
  return cryptoSign('sha256', data, key);
}

function verifyBytes(alg: SigningAlg, data: Buffer, key: KeyObject, sig: Buffer): boolean {
  const len = SIG_LENGTH[alg];
  if (len !== undefined && sig.length !== len) return false;
  try {
    if (alg === 'ES256') return cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
    if (alg === 'EdDSA') return cryptoVerify(null, data, key, sig);
    if (alg === 'RS256') return cryptoVerify('sha256', data, key, sig);
  } catch {
    return false;
  }
  return false;
}

/** RFC 8725 §3.11 / jose: `typ` compared without an `application/` prefix, case-insensitively. */
function normalizeTyp(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.toLowerCase();
  return t.startsWith('application/') ? t.slice(12) : t;
}

/**
 * A base64url segment as UTF-8 text. perf (issue 9): an all-ASCII payload (the usual one) is
 * read as latin1, which gives the same string without UTF-8 decoding (0.33 against 0.87 µs
 * for a ~330-byte payload).
 */
function segmentText(seg: string): string {
  const bytes = Buffer.from(seg, 'base64url');
  return isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
};
/** A token's payload segment, decoded (`parsed` is undefined when it is not JSON). */
interface DecodedPayload {
  text: string;
  parsed: unknown;
}

/** The signature segment: the verified-token cache's key. */
const sigOf = (token: string): string => token.slice(token.lastIndexOf('.') + 1);
const isJsonObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const REQUIRED_CLAIMS = ['iss', 'sub', 'aud', 'iat', 'exp', 'jti'] as const;

const isNumericDate = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Issues and verifies Gatehouse JWTs. Verification = signature (algorithm pinned by the key
 * named in `kid`) + iss/aud/exp/nbf/typ, then the resolver for the token's auth method
 * checks live principal state from memory.
 */
export class TokenService {
  private readonly resolvers = new Map<AuthMethod, PrincipalResolver>();
  /**
   * Signature-verified tokens, keyed by their signature segment and holding the whole token,
   * which must match (perf, issue 9: hashing the 86-character signature for the Map costs less
   * than a SHA-256 of the whole token, or V8's hash of all of it); state is still checked on
   * every use.
   */
  private readonly verified = new Map<string, VerifiedEntry>();
  private readonly maxVerified = 50_000;
  /** Fingerprints of tokens verified once and not cached yet (see verifySigned). */
  private readonly seenOnce = new Uint32Array(1 << 16);

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
    const signingInput = `${this.encodedHeader(key)}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const token = `${signingInput}.${signBytes(key.alg, Buffer.from(signingInput), key.privateKey!).toString('base64url')}`;
    return { token, jti, expiresAt: new Date(claims.exp * 1000), claims };
  }

  private headerCache: { kid: string; encoded: string } | undefined;
  /** The header most recently found in `headers`, with its encoded form. */
  private lastHeader: { seg: string; header: Readonly<Record<string, unknown>> } | undefined;
  /** Parsed protected headers by their encoded form (bounded; tokens of one key share one). */
  private readonly headers = new Map<string, Readonly<Record<string, unknown>>>();
  /** The protected header of the signing key, encoded once. */
  private encodedHeader(key: LoadedKey): string {
    if (this.headerCache?.kid !== key.kid) {
      this.headerCache = { kid: key.kid, encoded: Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })).toString('base64url') };
    }
    return this.headerCache.encoded;
  }

  /** A token this process verified before, still within its lifetime and its key's. */
  private cached(token: string, sig = sigOf(token)): VerifiedEntry | undefined {
    const e = this.verified.get(sig);
    // The signature finds the entry; the whole text must match (a changed header or payload
    // under a copied signature is another token, verified on its own).
    if (!e || e.token !== token) return undefined;
    if (e.claims.exp + this.opts.clockSkewSeconds > Date.now() / 1000 && this.keys.verificationKey(e.kid)) return e;
    this.verified.delete(sig);
    return undefined;
  }

  private static checkShape(token: string): void {
    if (token.length > MAX_TOKEN_LENGTH) throw new UnauthorizedError('token is too long', 'invalid_token');
    if (!TOKEN_SHAPE.test(token)) throw new UnauthorizedError('token is not a well-formed JWT', 'invalid_token');
  }

  /** Signature and claims only. Throws UnauthorizedError saying why. */
  async verifyClaims(token: string): Promise<GatehouseClaims> {
    if (token.length > MAX_TOKEN_LENGTH) throw new UnauthorizedError('token is too long', 'invalid_token');
    const cached = this.cached(token);
    if (cached) return cached.claims;
    TokenService.checkShape(token);
    const e = this.verifyFresh(token);
    return (e instanceof Promise ? await e : e).claims;
  }

  /**
   * First sight of a well-formed token (TOKEN_SHAPE passed): header, key, signature, claims;
   * cached when good. Each segment is decoded once.
   */
  private verifyFresh(token: string, sig = sigOf(token), decoded?: DecodedPayload): VerifiedEntry | Promise<VerifiedEntry> {
    const dot1 = token.indexOf('.');
    const dot2 = token.lastIndexOf('.');
    // harden (issue 10): one token, one spelling: canonical base64url in every segment.
    if (!canonicalB64url(token, 0, dot1) || !canonicalB64url(token, dot1 + 1, dot2) || !canonicalB64url(token, dot2 + 1, token.length)) {
      throw new UnauthorizedError('token is not canonical base64url', 'invalid_token');
    }
    // Every token of one key carries the same header: parse (and check) each distinct one once.
    // perf (issue 9): the last header seen is matched in place (no slice, no hash of the segment).
    const last = this.lastHeader;
    let headerSeg: string;
    let header: Readonly<Record<string, unknown>> | undefined;
    if (last !== undefined && dot1 === last.seg.length && token.startsWith(last.seg)) {
      headerSeg = last.seg;
      header = last.header;
    } else {
      headerSeg = token.slice(0, dot1);
      header = this.headers.get(headerSeg);
      if (header) this.lastHeader = { seg: headerSeg, header };
    }
    if (!header) {
      const text = Buffer.from(headerSeg, 'base64url').toString('utf8');
      const parsed = parseJson(text);
      if (hasDuplicateKeysIn(text, parsed)) throw new UnauthorizedError('token repeats a header field or claim', 'invalid_token'); // harden (issue 10)
      header = isJsonObject(parsed) ? parsed : undefined;
      if (header && this.headers.size < 64) this.headers.set(headerSeg, Object.freeze(header));
    }
    const payloadText = decoded?.text ?? segmentText(token.slice(dot1 + 1, dot2));
    const parsedPayload = decoded ? decoded.parsed : parseJson(payloadText);
    if (hasDuplicateKeysIn(payloadText, parsedPayload)) throw new UnauthorizedError('token repeats a header field or claim', 'invalid_token'); // harden (issue 10)
    if (!header) throw new UnauthorizedError('token header is not valid JSON', 'invalid_token');
    if (typeof header.kid !== 'string' || header.kid.length === 0 || header.kid.length > 128) {
      throw new UnauthorizedError('token has no usable key id (kid)', 'invalid_token');
    }
    const kid = header.kid;
    const key = this.keys.verificationKey(kid);
    // Synchronous unless the key is unknown: then the key table is reloaded once (rotation elsewhere).
    if (key) return this.verifySigned(token, sig, dot1, dot2, header, parsedPayload, key);
    const h = header;
    return this.keys.refresh().then(() => {
      const k = this.keys.verificationKey(kid);
      if (!k) throw new UnauthorizedError('token was signed by an unknown or retired key', 'invalid_token');
      return this.verifySigned(token, sig, dot1, dot2, h, parsedPayload, k);
    });
  }

  private verifySigned(token: string, sig: string, dot1: number, dot2: number, header: Readonly<Record<string, unknown>>, parsedPayload: unknown, key: LoadedKey): VerifiedEntry {
    const nowSec = Date.now() / 1000;
    if (header.alg !== key.alg) throw new UnauthorizedError(`token algorithm ${String(header.alg)} is not allowed for its key`, 'invalid_token');
    // No header extension is understood here (RFC 7515 §4.1.11: unknown `crit` must be refused).
    if (header.crit !== undefined || header.b64 !== undefined) throw new UnauthorizedError('token uses an unsupported feature', 'invalid_token');
    // The signing input is ASCII (TOKEN_SHAPE): latin1 is the cheapest exact encoding.
    const signingInput = Buffer.from(token.slice(0, dot2), 'latin1');
    const sigBytes = Buffer.from(sig, 'base64url');
    if (!verifyBytes(key.alg, signingInput, key.publicKey, sigBytes)) {
      throw new UnauthorizedError('token signature is invalid', 'invalid_token');
    }
    assertIssuedHeader(header); // harden (issue 10): only alg/kid/typ, even under our own signature
    if (!isJsonObject(parsedPayload)) throw new UnauthorizedError('token is malformed', 'invalid_token');
    const payload = parsedPayload;
    if (normalizeTyp(header.typ) !== 'at+jwt') throw new UnauthorizedError('token type is not at+jwt', 'invalid_token');
    for (const c of REQUIRED_CLAIMS) {
      if (payload[c] === undefined) throw new UnauthorizedError(`token claim '${c}' is invalid (missing)`, 'invalid_token');
    }
    if (payload.iss !== this.opts.issuer) throw new UnauthorizedError('token was issued by another issuer', 'invalid_token');
    const aud = payload.aud;
    if (!(aud === this.opts.audience || (Array.isArray(aud) && aud.includes(this.opts.audience)))) {
      throw new UnauthorizedError('token is meant for another audience', 'invalid_token');
    }
    if (typeof payload.sub !== 'string' || typeof payload.jti !== 'string') throw new UnauthorizedError('token is malformed', 'invalid_token');
    const skew = this.opts.clockSkewSeconds;
    if (!isNumericDate(payload.iat)) throw new UnauthorizedError(`token claim 'iat' is invalid (not a number)`, 'invalid_token');
    if (!isNumericDate(payload.exp)) throw new UnauthorizedError(`token claim 'exp' is invalid (not a number)`, 'invalid_token');
    if (payload.nbf !== undefined) {
      if (!isNumericDate(payload.nbf)) throw new UnauthorizedError(`token claim 'nbf' is invalid (not a number)`, 'invalid_token');
      if (payload.nbf > nowSec + skew) throw new UnauthorizedError('token is not valid yet', 'invalid_token');
    }
    if (payload.exp <= nowSec - skew) throw new UnauthorizedError('token has expired', 'invalid_token');
    if (payload.iat > nowSec + skew) throw new UnauthorizedError('token was issued in the future', 'invalid_token');
    const claims = payload as unknown as GatehouseClaims;
    if (typeof claims.subscription_id !== 'string' || typeof claims.auth_method !== 'string') {
      throw new UnauthorizedError('token lacks Gatehouse claims', 'invalid_token');
    }
    const entry: VerifiedEntry = { token, claims, kid: key.kid, base: undefined, principal: undefined };
    // Admission on second sight (perf, issue 9): a token enters the cache the second time it is
    // verified, so tokens used once are never retained (retaining every first-sight token cost
    // ~3% of a verification in GC work). The first sighting is remembered as 32 random bits of
    // the signature in a typed array — nothing for the GC to trace. A collision only admits a
    // token one sight early or late. Cost: one more full verification per reused token.
    const fp = (sigBytes.readUInt32LE(0) | 1) >>> 0;
    const slot = fp & (this.seenOnce.length - 1);
    if (this.seenOnce[slot] !== fp) {
      this.seenOnce[slot] = fp;
      return entry;
    }
    makeRoom(this.verified, this.maxVerified);
    this.verified.set(sig, entry);
    return entry;
  }

  /** Full verification: claims, then live principal state. */
  async verify(token: string): Promise<Principal> {
    // >>> scaleout (issue 8): count refusals by reason
    if (!this.observer) return this.verifyFast(token);
    try {
      const r = this.verifyFast(token);
      return r instanceof Promise ? await r : r;
    } catch (e) {
      this.observer.verifyFailed(e);
      throw e;
    }
    // <<< scaleout
  }

  /** Count a refusal met through verifyFast() (verify() counts its own). */
  noteFailure(e: unknown): void {
    this.observer?.verifyFailed(e);
  }

  /**
   * perf (issue 9): verify() without a promise when it can answer from memory — a token seen
   * before (still checked for revocation and its principal's live state on every call) whose
   * state is loaded — else the promise of the full path. Throws (or rejects) the same refusals.
   * For the hot paths (gateway); it does not tell the observer about refusals.
   */
  verifyFast(token: string): Principal | Promise<Principal> {
    if (token.length > MAX_TOKEN_LENGTH) throw new UnauthorizedError('token is too long', 'invalid_token');
    // A token seen (and fully verified) before is found by its own text; only new ones are parsed.
    const sig = sigOf(token);
    const e = this.cached(token, sig);
    return e ? this.principalOf(e) : this.firstSight(token, sig);
  }

  private firstSight(token: string, sig: string): Principal | Promise<Principal> {
    if (!TOKEN_SHAPE.test(token)) throw new UnauthorizedError('token is not a well-formed JWT', 'invalid_token');
    // >>> idp (issue 6): a token of another issuer goes to the external verifier (never from the
    // cache: only our own tokens are ever in it).
    // perf (issue 9): the payload is decoded and parsed once, here, for both the issuer check
    // and verifyFresh (peekIssuer() did it a second time on every first sight).
    let payload: DecodedPayload | undefined;
    if (this.external) {
      const dot1 = token.indexOf('.');
      const text = segmentText(token.slice(dot1 + 1, token.lastIndexOf('.')));
      payload = { text, parsed: parseJson(text) };
      const iss = isJsonObject(payload.parsed) ? payload.parsed.iss : undefined;
      if (typeof iss === 'string' && iss !== this.opts.issuer) return this.external(token, iss);
    }
    // <<< idp
    const e = this.verifyFresh(token, sig, payload);
    return e instanceof Promise ? e.then((x) => this.principalOf(x)) : this.principalOf(e);
  }

  /** Checks (revocation…), then the resolver for the token's auth method; synchronous when they are. */
  private principalOf(e: VerifiedEntry): Principal | Promise<Principal> {
    const checks = this.checks;
    for (let i = 0; i < checks.length; i++) {
      const r = checks[i]!(e.claims);
      if (r) return this.checksThenResolve(e, r, i + 1);
    }
    return this.resolve(e);
  }

  private async checksThenResolve(e: VerifiedEntry, pending: Promise<void>, next: number): Promise<Principal> {
    await pending;
    for (let i = next; i < this.checks.length; i++) {
      const r = this.checks[i]!(e.claims);
      if (r) await r;
    }
    return this.resolve(e);
  }

  private resolve(e: VerifiedEntry): Principal | Promise<Principal> {
    const resolver = this.resolvers.get(e.claims.auth_method);
    if (!resolver) throw new UnauthorizedError(`tokens of kind '${e.claims.auth_method}' are not accepted here`, 'invalid_token');
    const base = resolver(e.claims);
    return base instanceof Promise ? base.then((b) => this.bind(e, b)) : this.bind(e, base);
  }

  /** The token's principal; reused while the resolver returns the same (current, frozen) object. Read-only for callers. */
  private bind(e: VerifiedEntry, base: Principal): Principal {
    if (e.base === base && e.principal) return e.principal;
    const p: Principal = { ...base, tokenId: e.claims.jti };
    e.base = base;
    e.principal = p;
    return p;
  }
}
