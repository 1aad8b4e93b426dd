import type { ModuleName } from './modules.ts';

export type Role = 'manager' | 'user';
export type UserStatus = 'active' | 'deactivated';

export interface Subscription {
  id: string;
  name: string;
  createdAt: string;
}

export interface User {
  id: string;
  subscriptionId: string;
  username: string;
  email: string | null;
  role: Role;
  status: UserStatus;
  ssoEnabled: boolean;
  apiAccess: boolean;
  uiAccess: boolean;
  /** Module API permissions as granted; managers implicitly have every module (see effectiveModules). */
  modules: ModuleName[];
  createdAt: string;
  updatedAt: string;
}

/** How a credential was presented / which kind of token it is. */
export type AuthMethod =
  | 'password' // POST /auth
  | 'basic' // Authorization: Basic at the gateway
  | 'user_client' // user-level OIDC client
  | 'subscription_client' // subscription-level OIDC client
  | 'subscription_token' // POST /qas/subscription-token
  | 'idp' // token from a trusted external IdP
  | 'console'; // web console session

/**
 * Who is calling, after authentication, with state as of now (not as of token issue):
 * permissions come from the principal-state cache, so changes apply to existing tokens.
 */
export type Principal =
  | {
      kind: 'user';
      subscriptionId: string;
      userId: string;
      username: string;
      role: Role;
      apiAccess: boolean;
      uiAccess: boolean;
      /** Effective modules: user's rights, intersected with a client's or IdP's when one is involved. */
      modules: ModuleName[];
      authMethod: AuthMethod;
      clientId?: string;
      tokenId?: string;
    }
  | {
      kind: 'subscription';
      subscriptionId: string;
      modules: ModuleName[];
      authMethod: 'subscription_client' | 'subscription_token';
      clientId?: string;
      secretId?: string;
      tokenId?: string;
    };

export type AuditOutcome = 'success' | 'failure' | 'denied';

export interface AuditEventInput {
  subscriptionId: string | null;
  actorType: 'user' | 'client' | 'subscription_token' | 'system' | 'anonymous' | 'operator';
  actorId: string | null;
  actorName: string | null;
  action: string;
  targetType?: string | null;
  targetId?: string | null;
  outcome: AuditOutcome;
  reason?: string | null;
  sourceIp?: string | null;
  details?: Record<string, unknown> | null;
}

export interface AuditEvent extends Required<Omit<AuditEventInput, 'details'>> {
  id: string;
  at: string;
  details: Record<string, unknown> | null;
}

// --- clients (issue 3) ---
export type ClientLevel = 'user' | 'subscription';

/** An OIDC/OAuth client as shown to people: never its secret or the secret's hash. */
export interface Client {
  clientId: string;
  subscriptionId: string;
  name: string;
  level: ClientLevel;
  /** "All modules": the client carries whatever its owner (user level) or the subscription has. */
  allModules: boolean;
  /** Module grant as chosen at creation (every module when allModules). */
  modules: ModuleName[];
  createdBy: string;
  createdAt: string;
  secretRotatedAt: string | null;
  lastUsedAt: string | null;
  expiresAt: string | null;
}
// --- end clients ---
