import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import pino from 'pino';
import { loadConfig } from '../config.ts';
import { createCore } from '../app.ts';
import { MODULES } from '../domain/modules.ts';
import { BadRequestError } from '../domain/errors.ts';
import { listSubscriptions } from '../store/subscriptions.ts';
import { listUsers, publicUser } from '../store/users.ts';

/** The store-level object graph the operator commands work on. */
export type Core = Awaited<ReturnType<typeof createCore>>;

/** Open the configured store (no HTTP server), run `fn`, close. */
export async function withCore<T>(fn: (core: Core) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const core = await createCore(config, pino({ level: 'silent' }));
  try {
    return await fn(core);
  } finally {
    core.userDirectory.cache.close();
    await core.store.close();
  }
}

function jsonWanted(cmd: Command): boolean {
  return Boolean(cmd.optsWithGlobals().json);
}

/** Print `data` as JSON with --json, else the human `text`. */
export function out(cmd: Command, data: unknown, text: string): void {
  process.stdout.write(jsonWanted(cmd) ? JSON.stringify(data, null, 2) + '\n' : text + '\n');
}

export function parseModules(v: string | undefined): string[] {
  if (!v) return [];
  if (v.trim().toLowerCase() === 'all') return [...MODULES];
  return v.split(',').map((m) => m.trim().toUpperCase()).filter(Boolean);
}

/** A subscription named by id or name, or the only one there is. */
export async function resolveSubscription(core: Core, given: string | undefined): Promise<string> {
  const subs = await listSubscriptions(core.store.db);
  if (given) {
    const s = subs.find((x) => x.id === given || x.name === given);
    if (!s) throw new BadRequestError(`no subscription '${given}' (see: gatehouse subscription list)`);
    return s.id;
  }
  if (subs.length === 1) return subs[0]!.id;
  throw new BadRequestError(`there are ${subs.length} subscriptions; say which with --subscription <id|name>`);
}

export function registerAdmin(program: Command): void {
  const sub = program.command('subscription').description('manage subscriptions (tenants); operator commands on the local store');
  sub
    .command('create')
    .description('create a subscription with its first manager')
    .requiredOption('--name <name>', 'subscription name')
    .requiredOption('--manager <username>', "first manager's username")
    .option('--password <password>', "manager's password (generated and printed when omitted)")
    .option('--email <email>', "manager's email (receives expiry alerts)")
    .action(async function (this: Command, o: { name: string; manager: string; password?: string; email?: string }) {
      const password = o.password ?? randomBytes(12).toString('base64url');
      const r = await withCore((core) => core.users.createSubscription(o.name, { username: o.manager, password, email: o.email ?? null }));
      out(this, { subscription: r.subscription, manager: r.manager, ...(o.password ? {} : { generatedPassword: password }) },
        `created subscription '${r.subscription.name}' (${r.subscription.id}) with manager '${r.manager.username}'` +
          (o.password ? '' : `\nmanager password: ${password}   (shown once)`));
    });
  sub
    .command('list')
    .description('list subscriptions')
    .action(async function (this: Command) {
      const subs = await withCore((core) => listSubscriptions(core.store.db));
      out(this, subs, subs.map((s) => `${s.id}  ${s.name}  (created ${s.createdAt})`).join('\n') || '(none)');
    });

  const user = program.command('user').description('manage users; operator commands on the local store');
  user
    .command('add')
    .description('add a user to a subscription')
    .requiredOption('--username <username>', 'username (globally unique)')
    .option('--password <password>', 'password (generated and printed when omitted, unless --sso)')
    .option('--email <email>', 'email address')
    .option('--role <role>', 'manager or user', 'user')
    .option('--modules <list>', `comma-separated module API rights (${MODULES.join(',')}) or "all"`, '')
    .option('--api-access', 'grant API access', false)
    .option('--ui-access', 'grant UI access', false)
    .option('--sso', 'the user signs in with SSO (no API password authentication)', false)
    .option('--subscription <id|name>', 'subscription (needed when there are several)')
    .action(async function (this: Command, o: { username: string; password?: string; email?: string; role: string; modules: string; apiAccess: boolean; uiAccess: boolean; sso: boolean; subscription?: string }) {
      if (o.role !== 'manager' && o.role !== 'user') throw new BadRequestError(`--role must be 'manager' or 'user', got '${o.role}'`);
      const password = o.password ?? (o.sso ? undefined : randomBytes(12).toString('base64url'));
      const u = await withCore(async (core) =>
        core.users.createIn(await resolveSubscription(core, o.subscription), {
          username: o.username, password, email: o.email ?? null, role: o.role as 'manager' | 'user',
          apiAccess: o.apiAccess, uiAccess: o.uiAccess, modules: parseModules(o.modules), ssoEnabled: o.sso,
        }, { actorType: 'operator', actorId: null, actorName: null, sourceIp: null }),
      );
      out(this, { user: u, ...(o.password || !password ? {} : { generatedPassword: password }) },
        `added ${u.role} '${u.username}' (${u.id})` + (o.password || !password ? '' : `\npassword: ${password}   (shown once)`));
    });
  user
    .command('list')
    .description('list users')
    .option('--subscription <id|name>', 'only this subscription')
    .action(async function (this: Command, o: { subscription?: string }) {
      const users = await withCore(async (core) =>
        (await listUsers(core.store.db, o.subscription ? await resolveSubscription(core, o.subscription) : undefined)).map(publicUser),
      );
      out(this, users, users.map((u) => `${u.username.padEnd(24)} ${u.role.padEnd(8)} ${u.status.padEnd(12)} api:${u.apiAccess ? 'y' : 'n'} ui:${u.uiAccess ? 'y' : 'n'} sso:${u.ssoEnabled ? 'y' : 'n'} ${u.role === 'manager' ? 'ALL' : u.modules.join(',')}`).join('\n') || '(none)');
    });
  for (const [name, status] of [['deactivate', 'deactivated'], ['activate', 'active']] as const) {
    user
      .command(`${name} <username>`)
      .description(`${name} a user (a deactivated user's tokens stop working at once on every node)`)
      .action(async function (this: Command, username: string) {
        const u = await withCore((core) => core.users.operatorSetStatus(username, status));
        out(this, u, `${u.username} is now ${u.status}`);
      });
  }

  const keys = program.command('keys').description('signing keys');
  keys
    .command('rotate')
    .description('make a new signing key; the old one keeps verifying for the overlap window (tokens.keyOverlapSeconds)')
    .action(async function (this: Command) {
      const kid = await withCore((core) => core.keys.rotate());
      out(this, { kid }, `new signing key ${kid}; running servers pick it up within a minute`);
    });
  keys
    .command('list')
    .description('list signing keys that can still verify')
    .action(async function (this: Command) {
      const list = await withCore(async (core) => core.keys.list().map((k) => ({ kid: k.kid, alg: k.alg, createdAt: k.createdAt, retiredAt: k.retiredAt, notAfter: k.notAfter })));
      out(this, list, list.map((k) => `${k.kid}  ${k.alg}  created ${k.createdAt}  ${k.retiredAt ? `retired ${k.retiredAt}, verifies until ${k.notAfter}` : 'signing'}`).join('\n'));
    });
}
