import type { Command } from 'commander';
import { withCore, parseModules, resolveSubscription, type Core } from '../cli/admin.ts';
import { SubscriptionTokenService, type Actor, type SubscriptionTokenView } from './service.ts';
import { runRemoteSubscriptionToken } from '../cli/consumer.ts'; // issue 11: HTTP mode with a login profile


const OPERATOR: Actor = { actorType: 'operator', actorId: null, actorName: null, sourceIp: null };

function service(core: Core): SubscriptionTokenService {
  return new SubscriptionTokenService(core.store, core.tokens, core.audit, () => new Date());
}


function print(cmd: Command, data: unknown, text: string): void {
  process.stdout.write(cmd.optsWithGlobals().json ? JSON.stringify(data, null, 2) + '\n' : text + '\n');
}

function line(t: SubscriptionTokenView): string {
  return `${t.secretId}  expires ${t.expiresAt}${t.expired ? ' (expired)' : ''}  created ${t.createdAt} by ${t.createdBy.username ?? 'operator'}` +
    `  last used ${t.lastUsedAt ?? 'never'}  alert ${t.alertSent ? `sent ${t.alertSentAt}` : 'not sent'}`;
}

/** `gatehouse subscription-token ...`: operator commands on the configured store. */
export function registerSubscriptionTokenCli(program: Command): void {
  const st = program.command('subscription-token').description('manage long-lived subscription tokens (at most 10 live per subscription); operator commands on the local store');
  const subOpt = ['--subscription <id|name>', 'subscription (needed when there are several)'] as const;

  st.command('create')
    .description('create a subscription token; prints the JWT (shown once)')
    .requiredOption('--expiry <minutes>', 'lifetime in minutes, 1 to 525600 (one year)')
    .option('--modules <list>', 'comma-separated module API rights, or "all"', 'all')
    .option(...subOpt)
    .action(async function (this: Command, o: { expiry: string; modules: string; subscription?: string }) {
      if (await runRemoteSubscriptionToken(this, 'create', o)) return;
      const expiry = /^\d+$/.test(o.expiry.trim()) ? Number(o.expiry) : o.expiry;
      const r = await withCore(async (core) =>
        service(core).createIn(await resolveSubscription(core, o.subscription), { expiry, modules: parseModules(o.modules) }, OPERATOR));
      print(this, r, `${r.token}\n(secret ID ${r.secretId}, expires ${r.expiresAt}; the token is shown this once)`);
    });

  st.command('list')
    .description('list the live and expired (undeleted) tokens: secret ID, creator, dates, last use, alert')
    .option(...subOpt)
    .action(async function (this: Command, o: { subscription?: string }) {
      if (await runRemoteSubscriptionToken(this, 'list', o)) return;
      const list = await withCore(async (core) => service(core).listIn(await resolveSubscription(core, o.subscription)));
      print(this, list, list.map(line).join('\n') || '(none)');
    });

  st.command('show <secretId>')
    .description("show one token's details")
    .action(async function (this: Command, secretId: string, o: object) {
      if (await runRemoteSubscriptionToken(this, 'show', o, secretId)) return;
      const t = await withCore((core) => service(core).getIn(undefined, secretId.trim()));
      print(this, t, line(t) + `\nmodules ${t.modules.join(',')}\nsubscription ${t.subscriptionId}`);
    });

  st.command('delete <secretId>')
    .description("delete a token's secret: the token is refused on its next use on every node")
    .action(async function (this: Command, secretId: string, o: object) {
      if (await runRemoteSubscriptionToken(this, 'delete', o, secretId)) return;
      const id = secretId.trim().toLowerCase();
      await withCore((core) => service(core).deleteIn(undefined, id, OPERATOR));
      print(this, { secretId: id, deleted: true }, `Secret with ID ${id} deleted successfully.`);
    });
}
