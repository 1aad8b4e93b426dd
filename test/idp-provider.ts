/**
 * A real OpenID provider (npm oidc-provider) on a local port, for the external-IdP tests.
 * Tokens come from its client_credentials grant as RFC 9068 JWT access tokens; the claim
 * naming the Gatehouse user (preferred_username, email, …) is added per client through
 * oidc-provider's `extraTokenClaims` hook, as a Keycloak service account or an Okta custom
 * claim would. Key rotation swaps in a new Provider instance with a new first (signing) key
 * behind the same socket, so the issuer URL stays the same.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { generateKeyPair, exportJWK, SignJWT, type JWK, type CryptoKey } from 'jose';
import * as oidc from 'openid-client';

export const IDP_AUDIENCE = 'gatehouse-api';

interface IdpKey {
  kid: string;
  jwk: JWK;
  privateKey: CryptoKey;
}

async function newKey(kid: string): Promise<IdpKey> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' } };
}

export class TestIdp {
  /** Client id → extra claims of its access tokens. */
  readonly claimsFor: Record<string, Record<string, unknown>> = {};
  keys: IdpKey[] = [];
  jwksHits = 0;
  private provider!: Provider;
  private server!: http.Server;
  issuer = '';
  private generation = 0;

  static async start(clients: Record<string, Record<string, unknown>>): Promise<TestIdp> {
    const idp = new TestIdp();
    Object.assign(idp.claimsFor, clients);
    idp.keys = [await newKey('idp-key-1')];
    idp.server = http.createServer((req, res) => {
      if (req.url?.startsWith('/jwks')) idp.jwksHits++;
      void idp.provider.callback()(req, res);
    });
    await new Promise<void>((r) => idp.server.listen(0, '127.0.0.1', r));
    idp.issuer = `http://127.0.0.1:${(idp.server.address() as AddressInfo).port}`;
    idp.build();
    return idp;
  }

  private build(): void {
    const clients = Object.keys(this.claimsFor).map((id) => ({
      client_id: id,
      client_secret: `${id}-secret-0123456789`,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      id_token_signed_response_alg: 'ES256',
    }));
    this.provider = new Provider(this.issuer, {
      clients,
      jwks: { keys: this.keys.map((k) => k.jwk) },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => 'https://gatehouse.test',
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({ scope: 'api', audience: IDP_AUDIENCE, accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'ES256' } } }),
        },
      },
      ttl: { ClientCredentials: 600 },
      extraTokenClaims: (_ctx, token) => {
        const clientId = (token as unknown as { clientId?: string }).clientId;
        return clientId ? (this.claimsFor[clientId] as Record<string, unknown>) : undefined;
      },
    });
  }

  /** New signing key first; the old one stays published (rotation with overlap). */
  async rotate(): Promise<string> {
    const k = await newKey(`idp-key-${++this.generation + 1}`);
    this.keys = [k, ...this.keys];
    this.build();
    return k.kid;
  }

  /** An access token from the provider's token endpoint, obtained with openid-client. */
  async token(clientId: string): Promise<string> {
    const config = await oidc.discovery(new URL(this.issuer), clientId, undefined, oidc.ClientSecretBasic(`${clientId}-secret-0123456789`), {
      execute: [oidc.allowInsecureRequests],
    });
    const r = await oidc.clientCredentialsGrant(config, { scope: 'api' });
    return r.access_token;
  }

  /** A token signed with the IdP's current key outside the provider (for claim edge cases). */
  async sign(claims: Record<string, unknown>, opts: { key?: CryptoKey; kid?: string; alg?: string } = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: this.issuer, aud: IDP_AUDIENCE, iat: now, exp: now + 300, ...claims })
      .setProtectedHeader({ alg: opts.alg ?? 'ES256', kid: opts.kid ?? this.keys[0]!.kid, typ: 'at+jwt' })
      .sign(opts.key ?? this.keys[0]!.privateKey);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

export async function otherKey(): Promise<CryptoKey> {
  return (await generateKeyPair('ES256', { extractable: true })).privateKey;
}
