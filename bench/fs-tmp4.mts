import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { verify as cryptoVerify } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../src/config.ts';
import { createCore } from '../src/app.ts';
const dir = mkdtempSync(path.join(os.tmpdir(), 'gh-fs-'));
const config = loadConfig({ GATEHOUSE_DATA_DIR: dir, GATEHOUSE_CONFIG: '' }, { host: '127.0.0.1', port: 0 });
const core = await createCore(config, pino({ level: 'silent' }));
const { manager, subscription } = await core.users.createSubscription('Bench', { username: 'bench', password: 'Bench-Pass-123!' });
const pool: string[] = [];
for (let i = 0; i < 30000; i++) pool.push((await core.tokens.issue({ sub: manager.id, subscriptionId: subscription.id, authMethod: 'password', username: 'bench' })).token);
const key = core.keys.signingKey();
const tk = core.tokens as any;
const raw = (t: string) => { const d2 = t.lastIndexOf('.'); return cryptoVerify('sha256', Buffer.from(t.slice(0, d2), 'latin1'), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(t.slice(d2 + 1), 'base64url')); };
// warm
for (const t of pool.slice(0, 2000)) { raw(t); tk.verifyFast(t); }
let entries: any[] = [];
const parts: Record<string, number> = { raw: 0, verifyFresh: 0, principalOf: 0, full: 0, shape: 0 };
let idx = 2000;
for (let round = 0; round < 12; round++) {
  const chunk = pool.slice(idx, idx + 2000); idx += 2000;
  let t0 = performance.now(); for (const t of chunk) raw(t); parts.raw += performance.now() - t0;
  t0 = performance.now(); for (const t of chunk) entries.push(tk.verifyFresh(t, t.slice(t.lastIndexOf('.') + 1))); parts.verifyFresh += performance.now() - t0;
  t0 = performance.now(); for (const e of entries) tk.principalOf(e); parts.principalOf += performance.now() - t0;
  entries = [];
  const chunk2 = pool.slice(idx, idx + 0); // none
  t0 = performance.now(); for (const t of chunk) /^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+$/.test(t); parts.shape += performance.now() - t0;
}
for (const [k, v] of Object.entries(parts)) console.log(k.padEnd(12), (v * 1000 / 24000).toFixed(2), 'µs');
process.exit(0);
