// Reference for issue 9's issuance scenario: oidc-provider (npm) configured for the
// client_credentials grant with RFC 9068 JWT access tokens signed ES256, production-like
// (no dev interactions, no request logging). Usage: node bench/refs/oidc-provider.mjs <port>
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench', client_secret: 'bench-secret-0123456789', grant_types: ['client_credentials'],
    redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
  }],
  jwks: { keys: [jwk] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://gatehouse.bench',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'api', audience: 'gatehouse-bench', accessTokenFormat: 'jwt', accessTokenTTL: 3600, jwt: { sign: { alg: 'ES256' } } }),
    },
  },
  ttl: { ClientCredentials: 3600 },
});
provider.on('server_error', (_ctx, err) => console.error(err));
http.createServer(provider.callback()).listen(port, '127.0.0.1');
