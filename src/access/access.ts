import { MODULES, type ModuleName } from '../domain/modules.ts';
import { ForbiddenError } from '../domain/errors.ts';
import type { Principal, User } from '../domain/types.ts';

/**
 * Every "may X do Y?" answer lives here. Managers have every permission; other users need
 * API access and the module's API right (spec 002); client and subscription tokens carry
 * their own module grant.
 */

export function effectiveApiAccess(u: Pick<User, 'role' | 'apiAccess'>): boolean {
  return u.role === 'manager' || u.apiAccess;
}

export function effectiveUiAccess(u: Pick<User, 'role' | 'uiAccess'>): boolean {
  return u.role === 'manager' || u.uiAccess;
}

export function effectiveModules(u: Pick<User, 'role' | 'modules'>): ModuleName[] {
  return u.role === 'manager' ? [...MODULES] : [...u.modules];
}

/** Reason a user may not authenticate to the API with a password, or null. */
export function passwordApiRefusal(u: Pick<User, 'role' | 'apiAccess' | 'ssoEnabled'>): string | null {
  if (u.ssoEnabled) {
    return 'API authentication does not support SSO (Single Sign-On). SSO is enabled for this user; it must be turned off to allow API access with a password, or use a token from your identity provider.';
  }
  if (!effectiveApiAccess(u)) {
    return "This user does not have the 'API Access' permission. Ask a manager to enable API Access under Roles and Scopes.";
  }
  return null;
}

export function requireManager(p: Principal): Extract<Principal, { kind: 'user' }> {
  if (p.kind !== 'user') {
    throw new ForbiddenError('This action needs a manager user; subscription-level credentials carry no user.', 'manager_required');
  }
  if (p.role !== 'manager') throw new ForbiddenError('Only managers of the subscription can do this.', 'manager_required');
  return p;
}

export function requireApiAccess(p: Principal): void {
  if (p.kind === 'user' && !p.apiAccess) {
    throw new ForbiddenError("The 'API Access' permission is missing for this user.", 'api_access_required');
  }
}

export function requireModule(p: Principal, module: ModuleName): void {
  requireApiAccess(p);
  if (!p.modules.includes(module)) {
    const who = p.kind === 'user' && !p.clientId ? 'This user' : 'This token';
    throw new ForbiddenError(`${who} does not have the API permission for module ${module}.`, 'module_permission_required');
  }
}

// --- clients (issue 3) ---
type UserPrincipal = Extract<Principal, { kind: 'user' }>;

/**
 * Who may manage OIDC clients (spec 000): managers, every client of their subscription;
 * other users need both API Access and UI Access, and then manage their own user-level
 * clients only. A client's own token never manages clients (it would let a narrow client
 * mint broader ones).
 */
export function requireClientManagement(p: Principal): UserPrincipal {
  if (p.kind !== 'user') {
    throw new ForbiddenError('Managing clients needs a user; subscription-level credentials carry no user.', 'client_management_denied');
  }
  if (p.clientId) {
    throw new ForbiddenError("Clients cannot be managed with a client's token; authenticate as the user.", 'client_management_denied');
  }
  if (p.role === 'manager') return p;
  const missing = [!p.apiAccess && "'API Access'", !p.uiAccess && "'UI Access'"].filter(Boolean);
  if (missing.length) {
    throw new ForbiddenError(
      `Managing API clients needs both the 'API Access' and 'UI Access' permissions; this user lacks ${missing.join(' and ')}. Ask a manager to grant them.`,
      'client_permission_required',
    );
  }
  return p;
}

/** Why this (already permitted) user may not act on this client of their subscription, or null. */
export function clientAccessRefusal(p: UserPrincipal, c: { level: 'user' | 'subscription'; createdBy: string }): string | null {
  if (p.role === 'manager') return null;
  if (c.level !== 'user') return 'Only managers can manage subscription-level clients.';
  if (c.createdBy !== p.userId) return 'You can manage only your own user-level clients.';
  return null;
}

/** Modules in `wanted` the creator may not hand to a client (a client carries a subset of its creator's). */
export function modulesBeyond(p: UserPrincipal, wanted: readonly ModuleName[]): ModuleName[] {
  return wanted.filter((m) => !p.modules.includes(m));
}
// --- end clients ---

// --- console (issue 7) ---
/**
 * Reason a user may not sign in to the web console with a password, or null. The console
 * needs UI Access (spec 000/002), not API Access: without API Access a user can still sign
 * in, and the API-client pages show the API's own refusal. SSO users sign in through their
 * identity provider, so password sign-in is refused for them as for the API.
 */
export function consoleLoginRefusal(u: Pick<User, 'role' | 'uiAccess' | 'ssoEnabled'>): string | null {
  if (u.ssoEnabled) {
    return 'SSO (Single Sign-On) is enabled for this user, so password sign-in to the console is turned off. Ask a manager to turn SSO off for this user.';
  }
  if (!effectiveUiAccess(u)) {
    return "This user does not have the 'UI Access' permission, so cannot sign in to the console. Ask a manager to enable UI Access under Roles and Scopes.";
  }
  return null;
}
// --- end console ---
