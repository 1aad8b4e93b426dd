/**
 * Login profiles of the consumer CLI: `$XDG_CONFIG_HOME/gatehouse/profiles.json` (or
 * `~/.config/gatehouse/profiles.json`), directory 0700, file 0600, written atomically.
 * A profile holds a base URL and either client credentials (ID + secret, like any OAuth
 * client's config) or a token: never a password.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export type ProfileAuth =
  /** Renewed automatically at /auth/oidc or /auth/oauth. */
  | { kind: 'client'; clientId: string; clientSecret: string; level: 'user' | 'subscription' }
  /** A JWT from POST /auth; the password was used once and not kept. */
  | { kind: 'password'; username: string }
  /** A subscription token (the token is the credential). */
  | { kind: 'subscriptionToken' }
  /** A Gatehouse JWT obtained by exchanging an IdP token; the IdP token is not kept. */
  | { kind: 'idp'; username: string | null };

export interface Profile {
  url: string;
  auth: ProfileAuth;
  /** The current JWT (for `subscriptionToken`: the subscription token itself). */
  token?: { jwt: string; expiresAt: string | null };
  savedAt: string;
}

interface ProfilesFile {
  version: 1;
  profiles: Record<string, Profile>;
}

export const DEFAULT_PROFILE = 'default';

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME?.trim();
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.config'), 'gatehouse');
}

export function profilesPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configDir(env), 'profiles.json');
}

export class ProfileError extends Error {}

export function checkProfileName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw new ProfileError(`profile name '${name}' is not valid: use letters, digits, '.', '_' or '-'`);
  return name;
}

function readFile(env: NodeJS.ProcessEnv): ProfilesFile {
  const p = profilesPath(env);
  if (!existsSync(p)) return { version: 1, profiles: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new ProfileError(`${p} is not valid JSON (${(e as Error).message}); fix or delete it and log in again`);
  }
  const f = parsed as Partial<ProfilesFile>;
  if (!f || typeof f !== 'object' || f.version !== 1 || typeof f.profiles !== 'object' || f.profiles === null) {
    throw new ProfileError(`${p} is not a Gatehouse profiles file (version 1); delete it and log in again`);
  }
  if (process.platform !== 'win32' && (statSync(p).mode & 0o077) !== 0) {
    process.stderr.write(`gatehouse: warning: ${p} is readable by other users; run: chmod 600 '${p}'\n`);
  }
  return f as ProfilesFile;
}

function writeFile(env: NodeJS.ProcessEnv, f: ProfilesFile): string {
  const dir = configDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = profilesPath(env);
  const tmp = path.join(dir, `.profiles.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  writeFileSync(tmp, JSON.stringify(f, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600); // in case of an unusual umask
  renameSync(tmp, p);
  return p;
}

export function hasProfile(name: string, env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    return Boolean(readFile(env).profiles[name]);
  } catch {
    return false;
  }
}

export function loadProfile(name: string, env: NodeJS.ProcessEnv = process.env): Profile {
  const p = readFile(env).profiles[checkProfileName(name)];
  if (!p) {
    throw new ProfileError(`no profile '${name}' in ${profilesPath(env)}; run: gatehouse login --url <gatehouse URL> ...${name === DEFAULT_PROFILE ? '' : ` --profile ${name}`}`);
  }
  return p;
}

export function listProfiles(env: NodeJS.ProcessEnv = process.env): Record<string, Profile> {
  return readFile(env).profiles;
}

export function saveProfile(name: string, profile: Profile, env: NodeJS.ProcessEnv = process.env): string {
  const f = readFile(env);
  f.profiles[checkProfileName(name)] = profile;
  return writeFile(env, f);
}

/** Updates only the cached token of a profile (re-read first: another process may have written). */
export function saveProfileToken(name: string, token: Profile['token'], env: NodeJS.ProcessEnv = process.env): void {
  const f = readFile(env);
  const p = f.profiles[name];
  if (!p) return;
  p.token = token;
  writeFile(env, f);
}

export function deleteProfile(name: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const f = readFile(env);
  if (!f.profiles[checkProfileName(name)]) return false;
  delete f.profiles[name];
  writeFile(env, f);
  return true;
}
