/** Reading a JWT's claims without verifying it: the client only needs `exp` to plan refreshes. */
export interface JwtClaims {
  exp?: number;
  iat?: number;
  jti?: string;
  sub?: string;
  auth_method?: string;
  username?: string;
  [claim: string]: unknown;
}

function b64urlDecode(s: string): string {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(b64);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The payload of a compact JWS, or undefined for anything else (opaque or encrypted tokens). */
export function decodeClaims(token: string): JwtClaims | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(b64urlDecode(parts[1]!)) as unknown;
    return claims && typeof claims === 'object' && !Array.isArray(claims) ? (claims as JwtClaims) : undefined;
  } catch {
    return undefined;
  }
}
