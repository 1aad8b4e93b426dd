import type { Command } from 'commander';
import { BadRequestError, NotFoundError } from '../domain/errors.ts';
import type { Client } from '../domain/types.ts';
import { getUserByUsername } from '../store/users.ts';
import { listClients, getClient, publicClient } from './store.ts';
import { isClientId, type By } from './service.ts';
import { withCore, parseModules, out, type Core } from '../cli/admin.ts';

const OPERATOR: By = { actorType: 'operator', actorId: null, actorName: null, sourceIp: null };


function line(c: Client): string {
  return `${c.clientId}  ${c.level.padEnd(12)} ${c.name.padEnd(24)} ${c.allModules ? 'ALL' : c.modules.join(',')}` +
    `  last used ${c.lastUsedAt ?? 'never'}${c.expiresAt ? `  expires ${c.expiresAt}` : ''}`;
}


async function loadClient(core: Core, id: string) {
  const c = isClientId(id) ? await getClient(core.store.db, id) : undefined;
  if (!c) throw new NotFoundError(`no client with id '${id}' (see: gatehouse client list)`);
  return c;
}

/** `gatehouse client …`: operator commands on the local store (same rules as the API for creation). */
export function registerClients(program: Command): void {
  const client = program.command('client').description('manage OIDC/OAuth clients; operator commands on the local store');
  client
    .command('create')
    .description('create a client owned by a user; prints the client ID and the secret (shown once)')
    .requiredOption('--user <username>', "owner: a user-level client acts as this user; a subscription-level client needs a manager")
    .requiredOption('--name <name>', 'name, unique in the subscription')
    .option('--level <level>', 'user or subscription', 'user')
    .requiredOption('--modules <list>', 'comma-separated modules (VM,WAS,...) or "all"')
    .option('--expires-at <iso>', 'expiry time (ISO-8601); no expiry when omitted')
    .action(async function (this: Command, o: { user: string; name: string; level: string; modules: string; expiresAt?: string }) {
      if (o.level !== 'user' && o.level !== 'subscription') throw new BadRequestError(`--level must be 'user' or 'subscription', got '${o.level}'`);
      const created = await withCore(async (core) => {
        const u = await getUserByUsername(core.store.db, o.user);
        if (!u) throw new NotFoundError(`no user named '${o.user}'`);
        const owner = await core.userDirectory.principalFor(u.id, 'console');
        const mods = o.modules.trim().toLowerCase() === 'all' ? ['all'] : parseModules(o.modules);
        return core.clients.createFor(owner, { name: o.name, level: o.level as 'user' | 'subscription', modules: mods, expiresAt: o.expiresAt }, OPERATOR);
      });
      out(this, created, `created ${created.level}-level client '${created.name}'\nclientId:     ${created.clientId}\nclientSecret: ${created.clientSecret}   (shown once; store it now)`);
    });
  client
    .command('list')
    .description('list clients (never their secrets)')
    .option('--subscription <id>', 'only this subscription')
    .option('--user <username>', 'only clients owned by this user')
    .action(async function (this: Command, o: { subscription?: string; user?: string }) {
      const list = await withCore(async (core) => {
        let createdBy: string | undefined;
        if (o.user) {
          const u = await getUserByUsername(core.store.db, o.user);
          if (!u) throw new NotFoundError(`no user named '${o.user}'`);
          createdBy = u.id;
        }
        return (await listClients(core.store.db, { ...(o.subscription ? { subscriptionId: o.subscription } : {}), ...(createdBy ? { createdBy } : {}) })).map(publicClient);
      });
      out(this, list, list.map(line).join('\n') || '(none)');
    });
  client
    .command('delete <clientId>')
    .description("delete a client; its tokens stop working at once on every node")
    .action(async function (this: Command, id: string) {
      const c = await withCore(async (core) => core.clients.deleteAs(await loadClient(core, id), OPERATOR));
      out(this, { deleted: true, clientId: c.clientId, name: c.name }, `deleted client '${c.name}' (${c.clientId})`);
    });
  client
    .command('rotate-secret <clientId>')
    .description('give a client a new secret (shown once); the old secret stops working')
    .action(async function (this: Command, id: string) {
      const c = await withCore(async (core) => core.clients.rotateAs(await loadClient(core, id), OPERATOR));
      out(this, c, `new secret for '${c.name}' (${c.clientId})\nclientSecret: ${c.clientSecret}   (shown once; store it now)`);
    });
  client
    .command('token <clientId>')
    .description("issue a JWT for a client (as POST /auth/oidc would); prints the token")
    .action(async function (this: Command, id: string) {
      const t = await withCore(async (core) => core.clients.issueToken(await loadClient(core, id), { via: 'cli', by: OPERATOR }));
      out(this, { token: t.token, expiresAt: t.expiresAt.toISOString() }, t.token);
    });
}
