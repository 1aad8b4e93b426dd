/**
 * Revocation propagation lag across two Gatehouse processes on one PostgreSQL database:
 * node A deletes a subscription token, we time until node B refuses it (B's cache had the
 * token loaded). Measured side by side for B following by LISTEN/NOTIFY and B polling only.
 *
 *   node --import tsx bench/revocation-lag.ts [N=50]
 *
 * Prints a table and writes bench/results/revocation-lag-<timestamp>.{md,json}.
 */
import { mkdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { freshPgDatabase } from '../test/helpers.ts';
import { spawnNode, login, call, percentile, type NodeProcess } from '../test/cluster-helpers.ts';

async function timeUntilRefused(url: string, token: string, since: number): Promise<number> {
  for (;;) {
    const r = await fetch(url + '/api/v1/me', { headers: { authorization: `Bearer ${token}` } });
    await r.arrayBuffer();
    if (r.status === 401) return performance.now() - since;
    if (performance.now() - since > 5_000) return Infinity;
  }
}

async function run(n: number, a: NodeProcess, b: NodeProcess, admin: string): Promise<number[]> {
  const lags: number[] = [];
  for (let i = 0; i < n; i++) {
    const created = await call(a.url, 'POST', '/qas/subscription-token', admin, { expiry: 60 });
    if (created.status !== 201) throw new Error(`create: ${created.status} ${created.text}`);
    const secretId = decodeJwt(created.text).jti!;
    if ((await call(b.url, 'GET', '/api/v1/me', created.text)).status !== 200) throw new Error('B does not accept the new token');
    const t0 = performance.now();
    const del = await call(a.url, 'DELETE', `/qas/subscription-token/token/${secretId}`, admin);
    if (del.status !== 200) throw new Error(`delete: ${del.status}`);
    lags.push(await timeUntilRefused(b.url, created.text, t0));
    // Spread the deletions over the poll period, as real revocations are.
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
  }
  return lags;
}

async function main() {
  const n = Number(process.argv[2] ?? 50);
  const db = await freshPgDatabase();
  const cfgDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-'));
  const pollCfg = path.join(cfgDir, 'poll.yaml');
  writeFileSync(pollCfg, 'cluster:\n  changeFeed: poll\n');
  const cluster = { databaseUrl: db.url, publicUrl: 'https://gatehouse.bench.test', masterKey: randomBytes(24).toString('base64url'), env: { GATEHOUSE_CONFIG: '' } };
  const nodes: NodeProcess[] = [];
  try {
    const a = await spawnNode('a', cluster);
    nodes.push(a);
    const bListen = await spawnNode('b-listen', cluster);
    nodes.push(bListen);
    const bPoll = await spawnNode('b-poll', { ...cluster, env: { GATEHOUSE_CONFIG: pollCfg } });
    nodes.push(bPoll);
    const admin = await login(a.url, 'admin');
    await run(5, a, bListen, admin); // warm-up
    const rows: Array<{ mode: string; n: number; p50: number; p90: number; p99: number; max: number; mean: number }> = [];
    for (const [mode, b] of [['LISTEN/NOTIFY', bListen], ['poll only (500 ms)', bPoll]] as const) {
      const lags = (await run(n, a, b, admin)).sort((x, y) => x - y);
      rows.push({
        mode, n,
        p50: percentile(lags, 50), p90: percentile(lags, 90), p99: percentile(lags, 99), max: lags[lags.length - 1]!,
        mean: lags.reduce((s, x) => s + x, 0) / lags.length,
      });
    }
    const f = (x: number) => x.toFixed(1);
    const lines = [
      `Revocation propagation lag, node A -> node B (two processes, one PostgreSQL), ms, N=${n} each`,
      '',
      '| B follows by | N | p50 | p90 | p99 | max | mean |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...rows.map((r) => `| ${r.mode} | ${r.n} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.p99)} | ${f(r.max)} | ${f(r.mean)} |`),
      '',
      `p50 ratio poll/LISTEN: ${(rows[1]!.p50 / rows[0]!.p50).toFixed(1)}x; p99 ratio: ${(rows[1]!.p99 / rows[0]!.p99).toFixed(1)}x`,
      'Lag = from node A answering the DELETE to the first 401 from node B (includes one HTTP round trip to B).',
      `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, ${new Date().toISOString()}`,
    ];
    const text = lines.join('\n');
    console.log(text);
    const dir = path.join(import.meta.dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    writeFileSync(path.join(dir, `revocation-lag-${stamp}.md`), text + '\n');
    writeFileSync(path.join(dir, `revocation-lag-${stamp}.json`), JSON.stringify({ n, rows }, null, 2) + '\n');
  } finally {
    for (const node of nodes) await node.stop();
    await db.drop();
    rmSync(cfgDir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
