/**
 * In-process token verification against raw node:crypto (issue 9), on the real TokenService
 * of a real core (SQLite store, keys, revocation list, user directory):
 *   first sight: N distinct tokens, each verified once (signature + claims + revocation + state)
 *   repeat:      one token verified again and again (verified-claims cache; revocation and
 *                live state still checked on every call)
 *   reference:   crypto.verify of the same ES256 signatures (ieee-p1363), nothing else
 * Prints one JSON line. Run pinned: taskset -c 0 node --import tsx bench/verify-inproc.ts [seconds]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { verify as cryptoVerify } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../src/config.ts';
import { createCore } from '../src/app.ts';

const seconds = Number(process.argv[2] ?? 3);
const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-verify-'));
const config = loadConfig({ GATEHOUSE_DATA_DIR: dir, GATEHOUSE_CONFIG: '' }, { host: '127.0.0.1', port: 0 });
const core = await createCore(config, pino({ level: 'silent' }));
const { manager, subscription } = await core.users.createSubscription('Bench', { username: 'bench', password: 'Bench-Pass-123!' });

async function issueMany(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push((await core.tokens.issue({ sub: manager.id, subscriptionId: subscription.id, authMethod: 'password', username: 'bench' })).token);
  }
  return out;
}

/** Run fn over items for `seconds` (cycling), return calls per second. */
async function rate(items: string[], fn: (t: string) => unknown, secs: number, cycle = true): Promise<{ perSec: number; n: number }> {
  let n = 0;
  const t0 = performance.now();
  const until = t0 + secs * 1000;
  for (;;) {
    for (let i = 0; i < 256; i++) {
      if (!cycle && n >= items.length) break;
      const r = fn(items[n % items.length]!);
      if (r instanceof Promise) await r;
      n++;
    }
    if (performance.now() > until || (!cycle && n >= items.length)) break;
  }
  return { perSec: Math.round((n / (performance.now() - t0)) * 1000), n };
}

const key = core.keys.signingKey();
const raw = (t: string) => {
  const dot2 = t.lastIndexOf('.');
  const ok = cryptoVerify('sha256', Buffer.from(t.slice(0, dot2)), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(t.slice(dot2 + 1), 'base64url'));
  if (!ok) throw new Error('raw verify failed');
};

// Enough distinct tokens to never see one twice in the first-sight window.
const pool = await issueMany(Math.max(2000, Math.round(seconds * 12_000)));
// Warm-up of both paths (JIT), on tokens not used in the measured windows.
const warm = pool.splice(0, 1000);
for (const t of warm) raw(t);
for (const t of warm.slice(0, 500)) await core.tokens.verify(t);

const rawRes = await rate(pool, raw, seconds);
const first = await rate(pool, (t) => core.tokens.verify(t), seconds, false);
const repeatToken = warm[0]!;
const repeat = await rate([repeatToken], (t) => core.tokens.verify(t), seconds);
// Revocation is still honoured on the repeat path.
const claims = await core.tokens.verifyClaims(repeatToken);
await core.revocations.revoke(claims, { actorType: 'operator', actorId: null, actorName: null, sourceIp: null, clientId: null });
let refused = false;
try {
  await core.tokens.verify(repeatToken);
} catch {
  refused = true;
}
console.log(JSON.stringify({ raw: rawRes.perSec, first: first.perSec, firstN: first.n, repeat: repeat.perSec, revokedRefused: refused }));
core.userDirectory.cache.close();
core.clients.close();
core.revocations.close();
await core.store.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
