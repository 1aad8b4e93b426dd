import { z } from 'zod';

/**
 * Signature algorithms an external IdP may use: asymmetric only. `none` and the HMAC family
 * (HS256/384/512) are never accepted: an HMAC "public key" is a shared secret, and accepting
 * one would let anyone holding the JWKS forge tokens.
 */
export const IDP_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type IdpAlgorithm = (typeof IDP_ALGORITHMS)[number];
export const DEFAULT_IDP_ALGORITHMS: IdpAlgorithm[] = ['RS256', 'ES256'];

/** One trusted issuer in the YAML file (`idps.trusted[]`, or `idps:` given as a plain list). */
export const trustedIdpEntrySchema = z
  .object({
    /** Subscription id or name. */
    subscription: z.string().min(1),
    name: z.string().min(1).max(100).optional(),
    issuer: z.string().min(1).max(500),
    jwksUri: z.string().min(1).max(1000).optional(),
    audiences: z.array(z.string().min(1).max(500)).min(1).max(20),
    algorithms: z.array(z.string()).min(1).max(10).optional(),
    userClaim: z.string().min(1).max(200).optional(),
    modulesClaim: z.string().min(1).max(200).optional(),
    allowApiTokens: z.boolean().default(true),
    allowExchange: z.boolean().default(true),
    capToSubjectExpiry: z.boolean().default(false),
  })
  .strict();
export type TrustedIdpEntry = z.infer<typeof trustedIdpEntrySchema>;

const idpSettingsSchema = z
  .object({
    /**
     * Accept http:// issuer, discovery and JWKS URLs. Off by default: key material fetched over
     * plain HTTP can be replaced in transit. Turn on only for loopback test IdPs.
     */
    allowHttp: z.boolean().default(false),
    /** Tolerance for exp/nbf/iat of IdP tokens. */
    clockSkewSeconds: z.number().int().min(0).max(300).default(30),
    /** After a JWKS fetch, an unknown `kid` triggers another fetch only after this long. */
    jwksCooldownSeconds: z.number().min(0).max(3600).default(30),
    /** Keys are refetched at most this old even without an unknown `kid`. */
    jwksCacheMaxAgeSeconds: z.number().int().min(1).max(86400).default(600),
    /** Timeout for discovery and JWKS requests to the IdP. */
    httpTimeoutSeconds: z.number().min(0.1).max(60).default(5),
    trusted: z.array(trustedIdpEntrySchema).max(1000).default([]),
  })
  .strict();

/** The `idps` section of GATEHOUSE_CONFIG. A plain list is shorthand for `{ trusted: [...] }`. */
export const idpsConfigSchema = z
  .preprocess((v) => (Array.isArray(v) ? { trusted: v } : v ?? {}), idpSettingsSchema)
  .default({});
export type IdpSettings = z.infer<typeof idpSettingsSchema>;
