/**
 * In-process token verification against raw node:crypto (issue 9), on the real TokenService
 * of a real core (SQLite store, keys, revocation list, user directory):
 *   first sight: N distinct tokens, each verified once (signature + claims + revocation + state)
 *   repeat:      one token verified again and again (verified-claims cache; revocation and
 *                live state still checked on every call)
 *   reference:   crypto.verify of the same ES256 signatures (ieee-p1363), nothing else
 * Prints one JSON line. Run pinned: taskset -c 0 node --import tsx bench/verify-inproc.ts [seconds]
 */
import { verify as cryptoVerify } from 'node:crypto';
import { benchCore } from './bench-core.ts';

const seconds = Number(process.argv[2] ?? 3);
const bench = await benchCore('verify');
const { core, issueMany } = bench;

/**
 * Interleaved timing: blocks of 200 calls of `a`, then 200 of `b`, alternating for `secs`, so
 * machine noise (other processes on the core) falls on both sides alike. Calls per second each.
 */
async function interleaved(
  a: { items: string[]; fn: (t: string) => unknown; cycle: boolean },
  b: { items: string[]; fn: (t: string) => unknown; cycle: boolean },
  secs: number,
): Promise<[number, number]> {
  const state = [a, b].map((x) => ({ ...x, n: 0, ms: 0 }));
  const until = performance.now() + secs * 1000;
  while (performance.now() < until) {
    for (const s of state) {
      if (!s.cycle && s.n >= s.items.length) return finish();
      const t0 = performance.now();
      for (let i = 0; i < 200; i++) {
        const r = s.fn(s.items[s.n % s.items.length]!);
        if (r instanceof Promise) await r;
        s.n++;
      }
      s.ms += performance.now() - t0;
    }
  }
  return finish();
  function finish(): [number, number] {
    return [Math.round((state[0]!.n / state[0]!.ms) * 1000), Math.round((state[1]!.n / state[1]!.ms) * 1000)];
  }
}

const key = core.keys.signingKey();
const raw = (t: string) => {
  const dot2 = t.lastIndexOf('.');
  const ok = cryptoVerify('sha256', Buffer.from(t.slice(0, dot2)), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(t.slice(dot2 + 1), 'base64url'));
  if (!ok) throw new Error('raw verify failed');
};

// Enough distinct tokens to never see one twice in the first-sight window.
const pool = await issueMany(Math.max(4000, Math.round(seconds * 9_000)));
// Warm-up of both paths (JIT), on tokens not used in the measured windows.
const warm = pool.splice(0, 1000);
for (const t of warm) raw(t);
for (const t of warm.slice(0, 500)) await core.tokens.verify(t);

// raw and first sight walk the same tokens: raw over the whole pool (verifying is stateless),
// Gatehouse over each token once. Measured through verifyFast(), the entry point the gateway
// calls (it answers without a promise when it can); verify(), the async wrapper the other
// routes await, is measured too and reported alongside.
const half = Math.floor(pool.length / 2);
const [rawPerSec, first] = await interleaved({ items: pool, fn: raw, cycle: true }, { items: pool.slice(0, half), fn: (t) => core.tokens.verifyFast(t), cycle: false }, seconds / 2);
const [rawPerSecAsync, firstAsync] = await interleaved({ items: pool, fn: raw, cycle: true }, { items: pool.slice(half), fn: (t) => core.tokens.verify(t), cycle: false }, seconds / 2);
const repeatToken = warm[0]!;
// The repeat token arrives as a new string each time, as a request header does (V8 caches a
// string's hash on the string object: reusing one object would hide the hashing).
const fresh = (t: string) => (t + ' ').slice(0, -1);
const [rawPerSec2, repeat] = await interleaved({ items: pool, fn: raw, cycle: true }, { items: [repeatToken], fn: (t) => core.tokens.verifyFast(fresh(t)), cycle: true }, seconds);
// Revocation is still honoured on the repeat path.
const claims = await core.tokens.verifyClaims(repeatToken);
await core.revocations.revoke(claims, { actorType: 'operator', actorId: null, actorName: null, sourceIp: null, clientId: null });
let refused = false;
try {
  await core.tokens.verify(repeatToken);
} catch {
  refused = true;
}
console.log(JSON.stringify({ raw: rawPerSec, first, rawDuringAsync: rawPerSecAsync, firstAsync, rawDuringRepeat: rawPerSec2, repeat, revokedRefused: refused }));
await bench.close();
process.exit(0);
