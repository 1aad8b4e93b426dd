/**
 * The consumer side of the CLI (issue 11): `gatehouse login | logout | profiles | token | call`
 * and the HTTP mode of `gatehouse subscription-token ...`, all through the client SDK
 * (src/client). See docs/sdk.md for the commands, the profile file and the exit codes.
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import {
  GatehouseClient,
  GatehouseClientError,
  GatehouseHttpError,
  GatehouseNetworkError,
  TokenExpiredError,
  RotationError,
  decodeClaims,
  exchangeToken,
  passwordToken,
  clientToken,
  TOKEN_TYPE,
  type Credentials,
  type Me,
  type SubscriptionToken,
} from '../client/index.ts';
import {
  DEFAULT_PROFILE,
  ProfileError,
  checkProfileName,
  deleteProfile,
  hasProfile,
  listProfiles,
  loadProfile,
  saveProfile,
  saveProfileToken,
  type Profile,
} from './consumer-profile.ts';

/** Exit codes of the consumer commands (0–5 as the operator commands; docs/sdk.md). */
export const CONSUMER_EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  config: 3,
  notFound: 4,
  conflict: 5,
  unauthenticated: 6,
  forbidden: 7,
  unreachable: 8,
  httpError: 9,
} as const;

class CliError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

export function exitForStatus(status: number): number {
  if (status === 400 || status === 422) return CONSUMER_EXIT.usage;
  if (status === 401) return CONSUMER_EXIT.unauthenticated;
  if (status === 403) return CONSUMER_EXIT.forbidden;
  if (status === 404) return CONSUMER_EXIT.notFound;
  if (status === 409 || status === 429) return CONSUMER_EXIT.conflict;
  return status >= 400 ? CONSUMER_EXIT.httpError : CONSUMER_EXIT.ok;
}

function exitFor(e: unknown): number {
  if (e instanceof CliError) return e.exitCode;
  if (e instanceof ProfileError) return CONSUMER_EXIT.config;
  if (e instanceof GatehouseHttpError) return exitForStatus(e.status);
  if (e instanceof TokenExpiredError) return CONSUMER_EXIT.unauthenticated;
  if (e instanceof GatehouseNetworkError) return CONSUMER_EXIT.unreachable;
  if (e instanceof TypeError || e instanceof RangeError) return CONSUMER_EXIT.usage;
  return CONSUMER_EXIT.failure;
}

/** Runs a consumer action: errors become one `gatehouse: …` line on stderr and an exit code. */
async function run(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    process.stderr.write(`gatehouse: ${(e as Error).message}\n`);
    if (e instanceof RotationError) {
      // the new token exists only here: print it rather than lose it
      process.stdout.write(`${e.created.token}\n`);
    }
    process.exitCode = exitFor(e);
  }
}

function json(cmd: Command): boolean {
  return Boolean(cmd.optsWithGlobals().json);
}

function print(cmd: Command, data: unknown, text: string): void {
  process.stdout.write(json(cmd) ? JSON.stringify(data, null, 2) + '\n' : text + '\n');
}

const warnToStderr = (m: string) => process.stderr.write(`gatehouse: warning: ${m}\n`);

// ------------------------------------------------------------------ secrets in

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a line from the terminal without echoing it. */
async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const onData = (s: string) => {
        for (const ch of s) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            process.stderr.write('\n');
            return resolve(value);
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            return reject(new CliError('cancelled', CONSUMER_EXIT.failure));
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

/** A secret from stdin (--stdin), an environment variable, or a hidden prompt; never from argv. */
async function secret(what: string, envName: string, fromStdin: boolean): Promise<string> {
  let v: string | undefined;
  if (fromStdin) v = (await readStdin()).replace(/\r?\n$/, '');
  else if (process.env[envName]) v = process.env[envName];
  else if (process.stdin.isTTY) v = await promptHidden(`${what}: `);
  else throw new CliError(`no ${what} given: pipe it with --stdin, set ${envName}, or run in a terminal to be asked`, CONSUMER_EXIT.usage);
  if (!v) throw new CliError(`the ${what} is empty`, CONSUMER_EXIT.usage);
  return v;
}

// ------------------------------------------------------------------ targets

interface TargetOpts {
  profile?: string;
  url?: string;
}

interface Target {
  client: GatehouseClient;
  /** The profile in use (undefined with --url). */
  profileName: string | undefined;
  profile: Profile | undefined;
}

function addTargetOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--profile <name>', `login profile to use (default: $GATEHOUSE_PROFILE or '${DEFAULT_PROFILE}')`))
    .addOption(new Option('--url <url>', 'no profile: call this base URL with credentials from GATEHOUSE_TOKEN or GATEHOUSE_CLIENT_ID/GATEHOUSE_CLIENT_SECRET'));
}

function profileNameOf(o: TargetOpts): string {
  return checkProfileName(o.profile ?? (process.env.GATEHOUSE_PROFILE || DEFAULT_PROFILE));
}

function loginHint(name: string, p: Profile): string {
  const who = p.auth.kind === 'password' ? ` --username ${p.auth.username}` : '';
  return `gatehouse login --url ${p.url}${who}${name === DEFAULT_PROFILE ? '' : ` --profile ${name}`}`;
}

function target(o: TargetOpts): Target {
  if (o.url && o.profile) throw new CliError('use either --profile or --url, not both', CONSUMER_EXIT.usage);
  if (o.url) {
    const env = process.env;
    let credentials: Credentials;
    if (env.GATEHOUSE_TOKEN) {
      const t = env.GATEHOUSE_TOKEN.trim();
      credentials = decodeClaims(t)?.auth_method === 'subscription_token' ? { kind: 'subscriptionToken', token: t } : { kind: 'jwt', token: t };
    } else if (env.GATEHOUSE_CLIENT_ID && env.GATEHOUSE_CLIENT_SECRET) {
      const level = env.GATEHOUSE_CLIENT_LEVEL === 'subscription' ? 'subscription' : 'user';
      credentials = { kind: 'client', clientId: env.GATEHOUSE_CLIENT_ID, clientSecret: env.GATEHOUSE_CLIENT_SECRET, level };
    } else {
      throw new CliError('with --url, set GATEHOUSE_TOKEN, or GATEHOUSE_CLIENT_ID and GATEHOUSE_CLIENT_SECRET (or log in and use a profile)', CONSUMER_EXIT.config);
    }
    return { client: new GatehouseClient({ baseUrl: o.url, credentials, onWarning: warnToStderr, userAgent: 'gatehouse-cli' }), profileName: undefined, profile: undefined };
  }
  const name = profileNameOf(o);
  const p = loadProfile(name);
  let credentials: Credentials;
  const base = { baseUrl: p.url, onWarning: warnToStderr, userAgent: 'gatehouse-cli' };
  switch (p.auth.kind) {
    case 'client': {
      const a = p.auth;
      const client = new GatehouseClient({
        ...base,
        credentials: { kind: 'client', clientId: a.clientId, clientSecret: a.clientSecret, level: a.level },
        tokenCache: {
          load: () => (p.token ? { token: p.token.jwt, expiresAt: p.token.expiresAt ? Date.parse(p.token.expiresAt) : undefined } : undefined),
          save: (s) => saveProfileToken(name, { jwt: s.token, expiresAt: s.expiresAt ? new Date(s.expiresAt).toISOString() : null }),
        },
      });
      return { client, profileName: name, profile: p };
    }
    case 'subscriptionToken':
    case 'password':
    case 'idp':
      if (!p.token?.jwt) throw new ProfileError(`profile '${name}' has no token; run: ${loginHint(name, p)}`);
      credentials = p.auth.kind === 'subscriptionToken' ? { kind: 'subscriptionToken', token: p.token.jwt } : { kind: 'jwt', token: p.token.jwt };
      return { client: new GatehouseClient({ ...base, credentials }), profileName: name, profile: p };
    default:
      throw new ProfileError(`profile '${name}' has an unknown kind; log in again`);
  }
}

/** Turns "the token expired" into what to do about it. */
function explainExpiry(t: Target, e: unknown): never {
  if (e instanceof TokenExpiredError && t.profile && t.profileName) {
    const what = t.profile.auth.kind === 'subscriptionToken' ? 'the subscription token' : 'the token';
    throw new CliError(`${what} of profile '${t.profileName}' expired at ${e.expiredAt.toISOString()}; run: ${loginHint(t.profileName, t.profile)}`, CONSUMER_EXIT.unauthenticated);
  }
  throw e;
}

async function withTarget<T>(o: TargetOpts, fn: (t: Target) => Promise<T>): Promise<T> {
  const t = target(o);
  try {
    return await fn(t);
  } catch (e) {
    return explainExpiry(t, e);
  }
}

// ------------------------------------------------------------------ login

interface LoginOpts extends TargetOpts {
  username?: string;
  clientId?: string;
  level: string;
  subscriptionToken?: boolean;
  idpToken?: boolean;
  subjectTokenType: string;
  stdin?: boolean;
  verify: boolean;
}

function describeMe(me: Me | undefined): string {
  if (!me) return 'an identity this server does not describe (no /api/v1/me)';
  const sub = ` in subscription '${me.subscription.name}'`;
  if (me.user) return `user '${me.user.username}' (${me.user.role})${me.clientId ? ` via client ${me.clientId}` : ''}${sub}`;
  if (me.kind === 'subscription_token') return `subscription token ${me.secretId}${sub}`;
  return `client ${me.clientId}${sub}`;
}

async function whoAmI(client: GatehouseClient): Promise<Me | undefined> {
  try {
    return await client.me();
  } catch (e) {
    if (e instanceof GatehouseHttpError && (e.status === 404 || e.status === 405)) return undefined; // another Qualys-compatible gateway
    throw e;
  }
}

async function login(cmd: Command, o: LoginOpts): Promise<void> {
  const name = profileNameOf(o);
  const kinds = [o.username !== undefined, o.clientId !== undefined, Boolean(o.subscriptionToken), Boolean(o.idpToken)].filter(Boolean).length;
  if (kinds !== 1) throw new CliError('say how to log in: exactly one of --username, --client-id, --subscription-token, --idp-token', CONSUMER_EXIT.usage);
  if (o.level !== 'user' && o.level !== 'subscription') throw new CliError(`--level must be 'user' or 'subscription' (got '${o.level}')`, CONSUMER_EXIT.usage);
  const existing = hasProfile(name) ? loadProfile(name) : undefined;
  const url = o.url ?? existing?.url;
  if (!url) throw new CliError('give the server with --url <base URL> (e.g. https://gatehouse.example.com)', CONSUMER_EXIT.usage);
  const client0 = new GatehouseClient({ baseUrl: url, credentials: { kind: 'jwt', token: 'x' } }); // validates and normalizes the URL
  const baseUrl = client0.baseUrl;

  let profile: Profile;
  let expiresAt: Date | undefined;
  let note: string;
  const now = new Date().toISOString();
  if (o.username !== undefined) {
    const password = await secret('password', 'GATEHOUSE_PASSWORD', Boolean(o.stdin));
    const t = await passwordToken(baseUrl, o.username, password);
    expiresAt = t.expiresAt;
    profile = { url: baseUrl, auth: { kind: 'password', username: o.username }, token: { jwt: t.token, expiresAt: t.expiresAt?.toISOString() ?? null }, savedAt: now };
    note = `The password was not stored: this token expires at ${expiresAt?.toISOString() ?? '(unknown)'}; run 'gatehouse login' again then.`;
  } else if (o.clientId !== undefined) {
    const clientSecret = await secret('client secret', 'GATEHOUSE_CLIENT_SECRET', Boolean(o.stdin));
    const level = o.level as 'user' | 'subscription';
    const t = await clientToken(baseUrl, o.clientId, clientSecret, level);
    expiresAt = t.expiresAt;
    profile = { url: baseUrl, auth: { kind: 'client', clientId: o.clientId, clientSecret, level }, token: { jwt: t.token, expiresAt: t.expiresAt?.toISOString() ?? null }, savedAt: now };
    note = `The client secret is stored in the profile (file mode 0600); tokens are renewed automatically (this one expires at ${expiresAt?.toISOString() ?? '(unknown)'}).`;
  } else if (o.subscriptionToken) {
    const token = (await secret('subscription token', 'GATEHOUSE_SUBSCRIPTION_TOKEN', Boolean(o.stdin))).trim();
    const exp = decodeClaims(token)?.exp;
    expiresAt = typeof exp === 'number' ? new Date(exp * 1000) : undefined;
    profile = { url: baseUrl, auth: { kind: 'subscriptionToken' }, token: { jwt: token, expiresAt: expiresAt?.toISOString() ?? null }, savedAt: now };
    note = `The subscription token expires at ${expiresAt?.toISOString() ?? '(unknown)'}.`;
  } else {
    const idp = (await secret('IdP token', 'GATEHOUSE_IDP_TOKEN', Boolean(o.stdin))).trim();
    const type = (TOKEN_TYPE as Record<string, string>)[o.subjectTokenType === 'id_token' ? 'idToken' : o.subjectTokenType === 'jwt' ? 'jwt' : 'accessToken']!;
    const t = await exchangeToken(baseUrl, idp, type);
    expiresAt = t.expiresAt;
    profile = { url: baseUrl, auth: { kind: 'idp', username: null }, token: { jwt: t.token, expiresAt: t.expiresAt?.toISOString() ?? null }, savedAt: now };
    note = `The IdP token was exchanged and not stored: this Gatehouse token expires at ${expiresAt?.toISOString() ?? '(unknown)'}; log in again then.`;
  }

  // Check the credential (and find out who it is) before saving anything.
  const check = new GatehouseClient({
    baseUrl,
    credentials: profile.auth.kind === 'subscriptionToken' ? { kind: 'subscriptionToken', token: profile.token!.jwt } : { kind: 'jwt', token: profile.token!.jwt },
    onWarning: warnToStderr,
    userAgent: 'gatehouse-cli',
  });
  const me = o.verify ? await whoAmI(check) : undefined;
  if (profile.auth.kind === 'idp') profile.auth.username = me?.user?.username ?? null;
  const file = saveProfile(name, profile);
  print(
    cmd,
    {
      profile: name, url: baseUrl, file, kind: profile.auth.kind, expiresAt: expiresAt?.toISOString() ?? null,
      username: me?.user?.username ?? (profile.auth.kind === 'password' ? profile.auth.username : null),
      clientId: me?.clientId ?? (profile.auth.kind === 'client' ? profile.auth.clientId : null),
      subscription: me?.subscription ?? null,
    },
    `Logged in to ${baseUrl} as ${o.verify ? describeMe(me) : '(not verified)'}.\nProfile '${name}' saved in ${file} (mode 0600).\n${note}`,
  );
}

// ------------------------------------------------------------------ call

function parseHeader(h: string): [string, string] {
  const i = h.indexOf(':');
  if (i <= 0) throw new CliError(`header '${h}' is not 'Name: value'`, CONSUMER_EXIT.usage);
  return [h.slice(0, i).trim(), h.slice(i + 1).trim()];
}

async function dataArg(d: string): Promise<string> {
  if (d === '@-') return readStdin();
  if (d.startsWith('@')) {
    try {
      return readFileSync(d.slice(1), 'utf8');
    } catch (e) {
      throw new CliError(`cannot read ${d.slice(1)}: ${(e as Error).message}`, CONSUMER_EXIT.usage);
    }
  }
  return d;
}

function looksLikeJson(s: string): boolean {
  const t = s.trim();
  if (!t.startsWith('{') && !t.startsWith('[')) return false;
  try {
    JSON.parse(t);
    return true;
  } catch {
    return false;
  }
}

interface CallOpts extends TargetOpts {
  request?: string;
  data?: string;
  header: string[];
  include?: boolean;
}

async function call(cmd: Command, p: string, o: CallOpts): Promise<void> {
  const headers = new Headers();
  for (const h of o.header) headers.append(...parseHeader(h));
  let body: string | undefined;
  if (o.data !== undefined) {
    body = await dataArg(o.data);
    if (!headers.has('content-type')) headers.set('content-type', looksLikeJson(body) ? 'application/json' : 'application/x-www-form-urlencoded');
  }
  const method = (o.request ?? (body !== undefined ? 'POST' : 'GET')).toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new CliError(`-X ${o.request}: not an HTTP method`, CONSUMER_EXIT.usage);
  await withTarget(o, async (t) => {
    const res = await t.client.fetch(p, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    if (json(cmd)) {
      let parsed: unknown = text;
      if (looksLikeJson(text)) parsed = JSON.parse(text);
      process.stdout.write(JSON.stringify({ status: res.status, headers: Object.fromEntries(res.headers), body: parsed }, null, 2) + '\n');
    } else {
      if (o.include) {
        process.stdout.write(`HTTP ${res.status} ${res.statusText}\n`);
        for (const [k, v] of res.headers) process.stdout.write(`${k}: ${v}\n`);
        process.stdout.write('\n');
      }
      process.stdout.write(text);
      if (process.stdout.isTTY && text && !text.endsWith('\n')) process.stdout.write('\n');
    }
    if (res.status >= 400) {
      process.stderr.write(`gatehouse: ${method} ${p}: HTTP ${res.status} ${res.statusText}\n`);
      process.exitCode = exitForStatus(res.status);
    }
  });
}

// ------------------------------------------------------------------ subscription tokens over HTTP

type StAction = 'create' | 'list' | 'show' | 'delete' | 'rotate';

interface StOpts extends TargetOpts {
  local?: boolean;
  subscription?: string;
  expiry?: string;
  modules?: string;
}

/**
 * Which mode `gatehouse subscription-token …` runs in: HTTP (as a consumer, with a login
 * profile) or operator (directly on the configured store). In this order:
 * `--local` → operator; `--profile`/`--url` → HTTP; `--subscription` → operator;
 * `$GATEHOUSE_PROFILE` set → HTTP; `$GATEHOUSE_DATA_DIR` or `$DATABASE_URL` set → operator;
 * a default login profile exists → HTTP; otherwise operator.
 */
export function subscriptionTokenMode(o: StOpts, env: NodeJS.ProcessEnv = process.env): 'http' | 'local' {
  if (o.local && (o.profile || o.url)) throw new CliError('--local works on the store; it cannot be combined with --profile or --url', CONSUMER_EXIT.usage);
  if (o.local) return 'local';
  if (o.profile || o.url) {
    if (o.subscription) throw new CliError('--subscription is for operator mode (--local); over HTTP the subscription is the one you logged in to', CONSUMER_EXIT.usage);
    return 'http';
  }
  if (o.subscription) return 'local';
  if (env.GATEHOUSE_PROFILE) return 'http';
  if (env.GATEHOUSE_DATA_DIR || env.DATABASE_URL) return 'local';
  return hasProfile(DEFAULT_PROFILE, env) ? 'http' : 'local';
}

function stLine(t: SubscriptionToken): string {
  return `${t.secretId}  expires ${t.expiresAt}${t.expired ? ' (expired)' : t.expiresSoon ? ' (expires soon: rotate it)' : ''}  created ${t.createdAt} by ${t.createdBy.username ?? 'operator'}` +
    `  last used ${t.lastUsedAt ?? 'never'}  alert ${t.alertSent ? `sent ${t.alertSentAt}` : 'not sent'}`;
}

function expiryMinutes(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = v.trim();
  if (!/^\d+$/.test(s)) throw new CliError(`--expiry ${v}: give whole minutes, 1 to 525600 (one year)`, CONSUMER_EXIT.usage);
  return Number(s);
}

function modulesOpt(v: string | undefined): string[] | undefined {
  if (v === undefined || v.trim().toLowerCase() === 'all') return undefined;
  return v.split(',').map((m) => m.trim().toUpperCase()).filter(Boolean);
}

/**
 * Called first by every `subscription-token` action (src/subscription-tokens/cli.ts): runs it
 * over HTTP and returns true, or returns false to let the operator command run on the store.
 */
export async function runRemoteSubscriptionToken(cmd: Command, action: StAction, o: StOpts, secretId?: string): Promise<boolean> {
  let mode: 'http' | 'local';
  try {
    mode = subscriptionTokenMode(o);
  } catch (e) {
    await run(async () => {
      throw e;
    });
    return true;
  }
  if (mode === 'local') {
    if (action === 'rotate') {
      await run(async () => {
        throw new CliError('rotate runs over HTTP: log in first (gatehouse login) or pass --profile/--url', CONSUMER_EXIT.usage);
      });
      return true;
    }
    return false;
  }
  await run(() =>
    withTarget(o, async ({ client }) => {
      const st = client.subscriptionTokens;
      switch (action) {
        case 'create': {
          const r = await st.create({ expiryMinutes: expiryMinutes(o.expiry)!, ...(modulesOpt(o.modules) ? { modules: modulesOpt(o.modules)! } : {}) });
          print(cmd, r, `${r.token}\n(secret ID ${r.secretId}, expires ${r.expiresAt}; the token is shown this once)`);
          return;
        }
        case 'list': {
          const r = await st.list();
          print(cmd, r.tokens, r.tokens.map(stLine).join('\n') || '(none)');
          return;
        }
        case 'show': {
          const t = await st.get(secretId!);
          print(cmd, t, stLine(t) + `\nmodules ${t.modules.join(',')}`);
          return;
        }
        case 'delete': {
          const id = secretId!.trim().toLowerCase();
          const msg = await st.delete(id);
          print(cmd, { secretId: id, deleted: true }, msg);
          return;
        }
        case 'rotate': {
          const m = modulesOpt(o.modules);
          const e = expiryMinutes(o.expiry);
          const r = await st.rotate(secretId!, { ...(e !== undefined ? { expiryMinutes: e } : {}), ...(m ? { modules: m } : {}) });
          print(cmd, r, `${r.token}\n(secret ID ${r.secretId}, expires ${r.expiresAt}, replaces ${r.replacedSecretId}, which is deleted; the token is shown this once)`);
          return;
        }
      }
    }),
  );
  return true;
}

// ------------------------------------------------------------------ registration

export function registerConsumerCli(program: Command): void {
  program
      .command('login')
      .description('log in to a Gatehouse (or Qualys-compatible) server and save a profile in $XDG_CONFIG_HOME/gatehouse/profiles.json (default ~/.config/gatehouse/, mode 0600); never stores a password')
      .option('--url <url>', 'base URL of the server (default: the URL already in the profile)')
      .option('--profile <name>', `name of the profile to save (default: $GATEHOUSE_PROFILE or '${DEFAULT_PROFILE}')`)
      .option('--username <name>', 'log in with a password (read from --stdin, $GATEHOUSE_PASSWORD or a prompt); stores only the 4-hour JWT')
      .option('--client-id <id>', 'log in with a client (secret from --stdin, $GATEHOUSE_CLIENT_SECRET or a prompt); stores the ID and secret')
      .option('--level <level>', "client level: 'user' (/auth/oidc) or 'subscription' (/auth/oauth)", 'user')
      .option('--subscription-token', 'log in with a subscription token (from --stdin, $GATEHOUSE_SUBSCRIPTION_TOKEN or a prompt)')
      .option('--idp-token', "exchange your identity provider's token (--stdin, $GATEHOUSE_IDP_TOKEN or a prompt) at /oauth2/token; stores the Gatehouse JWT")
      .option('--subject-token-type <type>', 'with --idp-token: access_token, id_token or jwt', 'access_token')
      .option('--stdin', 'read the password, secret or token from standard input')
      .option('--no-verify', 'do not call /api/v1/me to check the credential')
      .action(async function (this: Command, o: LoginOpts) {
    await run(() => login(this, o));
  });

  program
    .command('logout')
    .description('delete a login profile (tokens already issued stay valid until they expire)')
    .option('--profile <name>', 'profile to delete')
    .action(async function (this: Command, o: { profile?: string }) {
      await run(async () => {
        const name = profileNameOf(o);
        if (!deleteProfile(name)) throw new CliError(`no profile '${name}'`, CONSUMER_EXIT.config);
        print(this, { profile: name, deleted: true }, `Profile '${name}' deleted.`);
      });
    });

  program
    .command('profiles')
    .description('list login profiles (never their secrets)')
    .action(async function (this: Command) {
      await run(async () => {
        const all = Object.entries(listProfiles()).map(([name, p]) => ({
          profile: name, url: p.url, kind: p.auth.kind,
          username: 'username' in p.auth ? p.auth.username : null,
          clientId: p.auth.kind === 'client' ? p.auth.clientId : null,
          tokenExpiresAt: p.token?.expiresAt ?? null,
        }));
        print(this, all, all.map((x) => `${x.profile}  ${x.url}  ${x.kind}${x.username ? ` ${x.username}` : ''}${x.clientId ? ` ${x.clientId}` : ''}  token expires ${x.tokenExpiresAt ?? 'n/a'}`).join('\n') || '(none; run gatehouse login)');
      });
    });

  addTargetOptions(
    program
      .command('token')
      .description("print a valid JWT for scripts (renewed when the profile holds a client; stored tokens are printed until they expire)")
      .option('--min-validity <seconds>', 'renew if the token expires sooner than this', '60'),
  ).action(async function (this: Command, o: TargetOpts & { minValidity: string }) {
    await run(async () => {
      const min = Number(o.minValidity);
      if (!Number.isFinite(min) || min < 0) throw new CliError(`--min-validity ${o.minValidity}: give seconds`, CONSUMER_EXIT.usage);
      await withTarget(o, async (t) => {
        const s = await t.client.getTokenState({ minValiditySeconds: min });
        if (s.expiresAt !== undefined && !t.client.renewable && s.expiresAt - Date.now() < min * 1000) {
          warnToStderr(`the token expires at ${new Date(s.expiresAt).toISOString()}, in less than ${min} s, and cannot be renewed without logging in again`);
        }
        print(this, { token: s.token, expiresAt: s.expiresAt ? new Date(s.expiresAt).toISOString() : null, profile: t.profileName ?? null }, s.token);
      });
    });
  });

  addTargetOptions(
    program
      .command('call <path>')
      .description('call any API path with the profile\'s credentials (curl-like); prints the body; exits non-zero on HTTP >= 400')
      .option('-X, --request <method>', 'HTTP method (default GET, or POST with -d)')
      .option('-d, --data <data>', 'request body; @file reads a file, @- standard input (JSON bodies get Content-Type: application/json, others a form type)')
      .option('-H, --header <header>', "extra header 'Name: value' (repeatable)", (v: string, prev: string[]) => [...prev, v], [] as string[])
      .option('-i, --include', 'print the status line and headers before the body'),
  ).action(async function (this: Command, p: string, o: CallOpts) {
    await run(() => call(this, p, o));
  });

  // subscription-token: the operator commands (issue 4) gain an HTTP mode and `rotate`.
  let st = program.commands.find((c) => c.name() === 'subscription-token');
  if (!st) st = program.command('subscription-token');
  st.description('manage long-lived subscription tokens (at most 10 live per subscription): over HTTP with your login profile, or as an operator on the local store (--local); see docs/sdk.md');
  for (const sub of st.commands) {
    addTargetOptions(sub).addOption(new Option('--local', 'operator mode: work directly on the configured store (GATEHOUSE_DATA_DIR / DATABASE_URL)'));
  }
  addTargetOptions(
    st
      .command('rotate <secretId>')
      .description('replace a token over HTTP: create a new one (same modules and lifetime unless given), then delete the old one; prints the new token once')
      .option('--expiry <minutes>', 'lifetime of the new token in minutes (default: that of the old one)')
      .option('--modules <list>', 'comma-separated modules of the new token, or "all" (default: those of the old one)'),
  )
    .addOption(new Option('--local').hideHelp())
    .action(async function (this: Command, secretId: string, o: StOpts) {
      await runRemoteSubscriptionToken(this, 'rotate', o, secretId);
    });
}
