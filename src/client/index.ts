/**
 * `gatehouse/client`: a TypeScript client for Gatehouse and any Qualys-compatible gateway.
 * See docs/sdk.md.
 */
export {
  GatehouseClient,
  type Credentials,
  type GatehouseClientOptions,
  type TokenState,
  type TokenCache,
  type Me,
  type SubscriptionToken,
  type SubscriptionTokenList,
  type CreatedSubscriptionToken,
  type CreateSubscriptionTokenInput,
} from './client.ts';
export {
  passwordToken,
  clientToken,
  clientCredentialsToken,
  exchangeToken,
  introspectToken,
  revokeToken,
  TOKEN_TYPE,
  type IssuedToken,
  type EndpointOptions,
  type FetchLike,
} from './tokens.ts';
export { decodeClaims, type JwtClaims } from './jwt.ts';
export { GatehouseClientError, GatehouseHttpError, GatehouseNetworkError, TokenExpiredError, RotationError, parseErrorBody } from './errors.ts';
