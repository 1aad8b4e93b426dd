/**
 * Talking to an IdP: URL rules and OpenID discovery. Key sets themselves are fetched and
 * cached by jose's createRemoteJWKSet (see verifier.ts).
 */

const MAX_DISCOVERY_BYTES = 512 * 1024;

/** Why `raw` is not usable as an IdP URL, or null. https only unless http is allowed. */
export function urlProblem(raw: string, allowHttp: boolean): string | null {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'is not a valid URL';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'must be an https:// URL';
  if (u.protocol === 'http:' && !allowHttp) {
    return 'must use https:// (plain http is accepted only when the operator sets idps.allowHttp: true in the config file)';
  }
  if (u.username || u.password) return 'must not carry credentials';
  if (u.hash) return 'must not have a #fragment';
  return null;
}

export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

export class DiscoveryError extends Error {}

/** Read the issuer's discovery document and return its jwks_uri, checked. */
export async function discoverJwksUri(issuer: string, opts: { allowHttp: boolean; timeoutMs: number }): Promise<string> {
  const url = discoveryUrl(issuer);
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(opts.timeoutMs) });
  } catch (e) {
    const why = (e as Error).name === 'TimeoutError' ? `no answer within ${opts.timeoutMs} ms` : 'could not connect';
    throw new DiscoveryError(`could not read ${url}: ${why}`);
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    throw new DiscoveryError(`could not read ${url}: HTTP ${res.status}`);
  }
  const text = await res.text();
  if (text.length > MAX_DISCOVERY_BYTES) throw new DiscoveryError(`${url} is too large to be a discovery document`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new DiscoveryError(`${url} is not JSON`);
  }
  if (!doc || typeof doc !== 'object') throw new DiscoveryError(`${url} is not a discovery document`);
  const d = doc as Record<string, unknown>;
  // OpenID Connect Discovery §4.3: the document's issuer must equal the issuer it was fetched for.
  if (d.issuer !== issuer) {
    throw new DiscoveryError(`${url} names issuer ${JSON.stringify(String(d.issuer).slice(0, 200))}, not ${JSON.stringify(issuer)}; the issuer must match exactly (mind a trailing slash)`);
  }
  if (typeof d.jwks_uri !== 'string') throw new DiscoveryError(`${url} has no jwks_uri`);
  const problem = urlProblem(d.jwks_uri, opts.allowHttp);
  if (problem) throw new DiscoveryError(`the jwks_uri ${d.jwks_uri} in ${url} ${problem}`);
  return d.jwks_uri;
}
