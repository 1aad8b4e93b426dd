import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config.ts';
import { createCore } from '../src/app.ts';
const dir = mkdtempSync(path.join(os.tmpdir(), 'fsprof-'));
const config = loadConfig({ GATEHOUSE_DATA_DIR: dir, GATEHOUSE_CONFIG: '' }, { host: '127.0.0.1', port: 0 });
const core = await createCore(config, pino({ level: 'silent' }));
const { manager, subscription } = await core.users.createSubscription('Bench', { username: 'bench', password: 'Bench-Pass-123!' });
const pool: string[] = [];
for (let i = 0; i < 60000; i++) pool.push((await core.tokens.issue({ sub: manager.id, subscriptionId: subscription.id, authMethod: 'password', username: 'bench' })).token);
await core.tokens.verify(pool[0]!);
console.error('issued');
const t0 = performance.now();
for (let i = 1; i < pool.length; i++) { const r = core.tokens.verify(pool[i]!); if (r instanceof Promise) await r; }
console.error('per token µs', ((performance.now() - t0) * 1000 / pool.length).toFixed(2));
process.exit(0);
