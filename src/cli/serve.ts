import type { Command } from 'commander';
import { loadConfig, type Config } from '../config.ts';
import { createGatehouse, createLogger } from '../app.ts';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('start the auth service and gateway on one port (SQLite in GATEHOUSE_DATA_DIR unless DATABASE_URL is set)')
    .option('-p, --port <port>', 'port to listen on (env PORT, default 8080)')
    .option('-H, --host <host>', 'address to bind (env HOST, default 127.0.0.1)')
    .option('--sample-modules', 'also start built-in sample module APIs behind the gateway (demo)')
    .action(async (opts: { port?: string; host?: string; sampleModules?: boolean }) => {
      const overrides: Partial<Config> = {};
      if (opts.port !== undefined) {
        const n = Number(opts.port);
        if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port must be a number 0-65535, got '${opts.port}'`);
        overrides.port = n;
      }
      if (opts.host) overrides.host = opts.host;
      if (opts.sampleModules) overrides.sampleModules = true;
      const config = loadConfig(process.env, overrides);
      const gh = await createGatehouse(config, { logger: createLogger(config) });
      const url = await gh.listen();
      const s = gh.services.store;
      const lines = [
        '',
        `Gatehouse is listening on ${url}`,
        `  store: ${s.dialect} (${s.location})`,
        `  issuer: ${config.publicUrl}   JWKS: ${config.publicUrl}/.well-known/jwks.json`,
      ];
      if (gh.bootstrap.created) {
        lines.push(`  first start: created the default subscription and its manager '${gh.bootstrap.username}'`);
        if (gh.bootstrap.generatedPassword) {
          lines.push(`  manager password: ${gh.bootstrap.generatedPassword}   (shown once; set GATEHOUSE_ADMIN_PASSWORD to choose it)`);
        }
      }
      const user = gh.bootstrap.username ?? config.adminUsername;
      lines.push(
        `  web console: ${url}/console/   (sign in as '${user}')`,
        ...(config.sampleModules ? [`  sample module APIs are on behind the gateway, e.g. curl -u ${user}:<password> ${url}/msp/about.php`] : []),
        `  log in (get a JWT): curl -X POST ${url}/auth -H "Content-Type: application/x-www-form-urlencoded" -d "username=${user}&password=<password>&token=true"`,
        '',
      );
      process.stdout.write(lines.join('\n') + '\n');
      // >>> scaleout (issue 8): graceful shutdown — stop accepting, finish in-flight requests
      // (new ones on kept-alive connections get 503), then close the LISTEN connection, Redis
      // and the pool. A stuck drain ends after GATEHOUSE_SHUTDOWN_TIMEOUT_MS; a second signal at once.
      let stopping = false;
      const timeoutMs = Number(process.env.GATEHOUSE_SHUTDOWN_TIMEOUT_MS ?? 25_000) || 25_000;
      const stop = async (signal: string) => {
        if (stopping) {
          gh.services.log.warn({ signal }, 'second signal: exiting without waiting for in-flight requests');
          process.exit(1);
        }
        stopping = true;
        gh.services.log.info({ signal, timeoutMs }, 'shutting down: draining in-flight requests');
        const timer = setTimeout(() => {
          gh.services.log.error({ timeoutMs }, 'shutdown timed out; exiting');
          process.exit(1);
        }, timeoutMs);
        timer.unref();
        try {
          await gh.close();
          gh.services.log.info('shut down cleanly');
          process.exit(0);
        } catch (err) {
          gh.services.log.error({ err }, 'error while shutting down');
          process.exit(1);
        }
      };
      // <<< scaleout
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
    });
}
