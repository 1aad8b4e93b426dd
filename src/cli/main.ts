import { Command, Option } from 'commander';
import { ConfigError } from '../config.ts';
import { GatehouseError } from '../domain/errors.ts';
import { registerServe } from './serve.ts';
import { registerAdmin } from './admin.ts';
import { registerClients } from '../clients/cli.ts'; // issue 3
import { registerSubscriptionTokenCli } from '../subscription-tokens/cli.ts'; // issue 4
import { registerIdpCli } from '../idp/cli.ts'; // idp (issue 6)
import { registerConsumerCli } from './consumer.ts'; // consumer CLI (issue 11)
import { registerRewrapCli } from '../ops/rewrap.ts'; // scaleout (issue 8): keys rewrap

const program = new Command();
program
  .name('gatehouse')
  .description('Gatehouse: API authentication service and gateway (Qualys Cloud Platform API authentication model).\n' +
    'Configuration comes from the environment (PORT, HOST, GATEHOUSE_DATA_DIR, DATABASE_URL, ...; see README) and GATEHOUSE_CONFIG.')
  .showHelpAfterError('(run with --help for usage)')
  .addOption(new Option('--json', 'print machine-readable JSON where a command prints data'));

registerServe(program);
registerAdmin(program);
registerClients(program); // issue 3
registerSubscriptionTokenCli(program); // issue 4
registerIdpCli(program); // idp (issue 6)
registerConsumerCli(program); // consumer CLI: login, token, call, subscription-token over HTTP (issue 11); after issue 4's line
registerRewrapCli(program); // scaleout (issue 8)

export const EXIT = { ok: 0, usage: 2, config: 3, notFound: 4, conflict: 5, failure: 1 } as const;

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof ConfigError) {
    process.stderr.write(`gatehouse: configuration error: ${e.message}\n`);
    process.exit(EXIT.config);
  }
  if (e instanceof GatehouseError) {
    process.stderr.write(`gatehouse: ${e.message}\n`);
    process.exit(e.status === 404 ? EXIT.notFound : e.status === 409 ? EXIT.conflict : EXIT.usage);
  }
  process.stderr.write(`gatehouse: ${(e as Error).message}\n`);
  process.exit(EXIT.failure);
}
