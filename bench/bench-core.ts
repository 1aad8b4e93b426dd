/**
 * A real Gatehouse core for the in-process benchmarks (bench/verify-inproc.ts,
 * bench/verify-ladder.ts): a SQLite store in a temporary directory, keys, revocation list and
 * user directory, with one subscription whose manager the tokens are issued to.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config.ts';
import { createCore } from '../src/app.ts';

export async function benchCore(name: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `gatehouse-${name}-`));
  const config = loadConfig({ GATEHOUSE_DATA_DIR: dir, GATEHOUSE_CONFIG: '' }, { host: '127.0.0.1', port: 0 });
  const core = await createCore(config, pino({ level: 'silent' }));
  const { manager, subscription } = await core.users.createSubscription('Bench', { username: 'bench', password: 'Bench-Pass-123!' });
  return {
    core,
    /** `n` distinct access tokens of the manager (password logins). */
    async issueMany(n: number): Promise<string[]> {
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        out.push((await core.tokens.issue({ sub: manager.id, subscriptionId: subscription.id, authMethod: 'password', username: 'bench' })).token);
      }
      return out;
    },
    /** Stops the core's timers and removes its data directory. */
    async close(): Promise<void> {
      core.userDirectory.cache.close();
      core.clients.close();
      core.revocations.close();
      await core.store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
