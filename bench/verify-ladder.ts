/**
 * First-sight verification broken down (issue 9 diagnostics, docs/performance.md entry 20): the
 * steps every token needs, added one at a time around the raw signature check, each timed
 * against raw `crypto.verify` in interleaved blocks of 200 on fresh tokens, in one process.
 * Run pinned: taskset -c 0 node --import tsx bench/verify-ladder.ts [tokens]
 */
import { verify as cryptoVerify } from 'node:crypto';
import { canonicalB64url, hasDuplicateKeysIn } from '../src/security/jwt-guard.ts';
import { benchCore } from './bench-core.ts';

const N = Number(process.argv[2] ?? 60_000);
const bench = await benchCore('ladder');
const { core } = bench;
process.stderr.write(`issuing ${N} tokens…\n`);
const toks = await bench.issueMany(N);
// As a request header arrives: a flat string, not the concatenation issue() built.
for (let i = 0; i < N; i++) toks[i] = Buffer.from(toks[i]!, 'latin1').toString('latin1');
await core.tokens.verify(toks[0]!); // the user's state in memory, as on a running server
const key = core.keys.signingKey();
const tokens = core.tokens as unknown as { verifyFresh(t: string): unknown };

const SHAPE = /^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+$/;
const raw = (t: string) => {
  const d = t.lastIndexOf('.');
  if (!cryptoVerify('sha256', Buffer.from(t.slice(0, d)), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(t.slice(d + 1), 'base64url'))) throw new Error('bad signature');
};
const shape = (t: string) => {
  if (!SHAPE.test(t)) throw new Error('shape');
  const a = t.indexOf('.');
  const b = t.lastIndexOf('.');
  if (!(canonicalB64url(t, 0, a) && canonicalB64url(t, a + 1, b) && canonicalB64url(t, b + 1, t.length))) throw new Error('canonical');
  raw(t);
};
const payload = (t: string) => Buffer.from(t.slice(t.indexOf('.') + 1, t.lastIndexOf('.')), 'base64url').toString('latin1');
const parse = (t: string) => {
  if (!(JSON.parse(payload(t)) as { exp?: number }).exp) throw new Error('claims');
  shape(t);
};
const dupCheck = (t: string) => {
  const text = payload(t);
  if (hasDuplicateKeysIn(text, JSON.parse(text))) throw new Error('duplicate');
  shape(t);
};
const steps: Array<[string, (t: string) => unknown]> = [
  ['raw crypto.verify', raw],
  ['+ shape, canonical base64url', shape],
  ['+ payload decode, JSON.parse', parse],
  ['+ duplicate-key count', dupCheck],
  ['verifyFresh (all claims checks)', (t) => tokens.verifyFresh(t)],
  ['verifyFast (with the principal)', (t) => core.tokens.verifyFast(t)],
  ['raw crypto.verify (again)', raw],
];
const ms = steps.map(() => 0);
let idx = 0;
const B = 200;
while (idx + B * steps.length <= N) {
  steps.forEach(([, f], k) => {
    const t0 = performance.now();
    for (let i = 0; i < B; i++) f(toks[idx++]!);
    ms[k] += performance.now() - t0;
  });
}
const per = ms.map((m) => (m * 1000) / (idx / steps.length));
const rawUs = (per[0]! + per[per.length - 1]!) / 2;
console.log(`| step | µs per token | % of raw's rate |\n| --- | --- | --- |`);
steps.forEach(([name], k) => console.log(`| ${name} | ${per[k]!.toFixed(2)} | ${((rawUs / per[k]!) * 100).toFixed(1)}% |`));
await bench.close();
process.exit(0);
