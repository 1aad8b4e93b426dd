/**
 * Soak (issue 10): one Gatehouse node (`gatehouse serve --sample-modules`, a child process on a
 * fresh SQLite data dir) under mixed traffic for a set time — password logins, client token
 * issuance (/auth/oidc and /oauth2/token), revocations, /api/v1/me, gateway calls through the
 * sample modules with Bearer and Basic — then a report: errors (must be 0), RSS drift and p99
 * drift between the first and the last tenth of the run. Exit code 1 when any request failed.
 *
 *   npm run soak [-- --seconds 60 --workers 16]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SECONDS = opt('seconds', 60);
const WORKERS = opt('workers', 16);
const ADMIN_PASSWORD = 'Soak-Admin-Pass-1!';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const p99 = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]! : NaN);

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-soak-'));
  const cfg = path.join(dataDir, 'gatehouse.yaml');
  writeFileSync(cfg, stringify({ limits: { default: { rate: 0, concurrency: 0 } }, server: { logLevel: 'warn' } }));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [path.join(root, 'bin/gatehouse.mjs'), 'serve', '--sample-modules'], {
    env: { ...process.env, GATEHOUSE_DATA_DIR: dataDir, PORT: String(port), GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD, GATEHOUSE_CONFIG: cfg },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    for (let i = 0; ; i++) {
      if (await fetch(`${base}/health/ready`).then((r) => r.ok, () => false)) break;
      if (i > 200) throw new Error('server did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const form = (f: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(f) });
    const login = async () => {
      const r = await fetch(`${base}/auth`, form({ username: 'admin', password: ADMIN_PASSWORD, token: 'true' }));
      if (r.status !== 201) throw new Error(`login ${r.status}`);
      return r.text();
    };
    const admin = await login();
    const json = { authorization: `Bearer ${admin}`, 'content-type': 'application/json' };
    await fetch(`${base}/api/v1/users`, { method: 'POST', headers: json, body: JSON.stringify({ username: 'soak', password: 'Soak-User-Pass-1!', role: 'user', apiAccess: true, uiAccess: false, modules: ['VM', 'WAS', 'PM'] }) });
    const client = (await (await fetch(`${base}/api/v1/clients`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'soak', level: 'subscription', modules: ['VM', 'WAS', 'PM'] }) })).json()) as { clientId: string; clientSecret: string };
    const basic = `Basic ${Buffer.from('soak:Soak-User-Pass-1!').toString('base64')}`;

    /** Each op: [weight, name, run → ok?] */
    let bearer = admin;
    const ops: [number, string, () => Promise<boolean>][] = [
      [3, 'login /auth', async () => ((bearer = await login()), true)],
      [10, 'client token /auth/oidc', async () => (await fetch(`${base}/auth/oidc`, { method: 'POST', headers: { clientId: client.clientId, clientSecret: client.clientSecret } })).status === 201],
      [6, 'oauth2 token + revoke', async () => {
        const r = await fetch(`${base}/oauth2/token`, form({ grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret }));
        if (r.status !== 200) return false;
        const t = ((await r.json()) as { access_token: string }).access_token;
        const v = await fetch(`${base}/oauth2/revoke`, form({ token: t, client_id: client.clientId, client_secret: client.clientSecret }));
        await v.arrayBuffer();
        const gone = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${t}` } });
        await gone.arrayBuffer();
        return v.status === 200 && gone.status === 401;
      }],
      [20, '/api/v1/me', async () => (await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${bearer}` } }).then(async (r) => (await r.arrayBuffer(), r.status))) === 200],
      [40, 'gateway Bearer (VM, WAS, PM)', async () => {
        const paths = ['/api/2.0/fo/asset/ip/?action=list', '/qps/rest/3.0/count/was/webapp/', '/pm/v1/patchcatalog/patches/domains?platform=Windows'];
        const r = await fetch(base + paths[Math.floor(Math.random() * paths.length)]!, { method: 'POST', headers: { authorization: `Bearer ${bearer}` } });
        await r.arrayBuffer();
        return r.status === 200;
      }],
      [15, 'gateway Basic (VM)', async () => {
        const r = await fetch(`${base}/api/2.0/fo/asset/ip/?action=list`, { method: 'POST', headers: { authorization: basic } });
        await r.arrayBuffer();
        return r.status === 200;
      }],
    ];
    const total = ops.reduce((a, [w]) => a + w, 0);
    const pick = () => {
      let x = Math.random() * total;
      for (const op of ops) if ((x -= op[0]) < 0) return op;
      return ops[0]!;
    };

    const start = Date.now();
    const end = start + SECONDS * 1000;
    const tenth = (SECONDS * 1000) / 10;
    const lat: { at: number; ms: number }[] = [];
    const errors = new Map<string, number>();
    const counts = new Map<string, number>();
    const rss: { at: number; mb: number }[] = [];
    const sampler = setInterval(() => rss.push({ at: Date.now() - start, mb: rssMb(child.pid!) }), 500);
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (Date.now() < end) {
          const [, name, run] = pick();
          const t = performance.now();
          const ok = await run().catch(() => false);
          lat.push({ at: Date.now() - start, ms: performance.now() - t });
          counts.set(name, (counts.get(name) ?? 0) + 1);
          if (!ok) errors.set(name, (errors.get(name) ?? 0) + 1);
        }
      }),
    );
    clearInterval(sampler);
    const firstLat = lat.filter((l) => l.at < tenth).map((l) => l.ms);
    const lastLat = lat.filter((l) => l.at >= SECONDS * 1000 - tenth).map((l) => l.ms);
    // RSS: after the warm-up tenth vs the last tenth (median of the samples in each)
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const rssFirst = med(rss.filter((r) => r.at >= tenth && r.at < 2 * tenth).map((r) => r.mb));
    const lastSamples = rss.filter((r) => r.at >= SECONDS * 1000 - tenth).map((r) => r.mb);
    const rssLast = lastSamples.length ? med(lastSamples) : (rss.at(-1)?.mb ?? NaN);
    const errorCount = [...errors.values()].reduce((a, b) => a + b, 0);
    const report = {
      seconds: SECONDS,
      workers: WORKERS,
      requests: lat.length,
      perSecond: Math.round(lat.length / SECONDS),
      operations: Object.fromEntries(counts),
      errors: errorCount,
      errorsByOperation: Object.fromEntries(errors),
      rssMb: { afterWarmup: +rssFirst.toFixed(1), end: +rssLast.toFixed(1), drift: +(rssLast - rssFirst).toFixed(1), max: +Math.max(...rss.map((r) => r.mb)).toFixed(1) },
      p99Ms: { firstTenth: +p99(firstLat).toFixed(1), lastTenth: +p99(lastLat).toFixed(1), drift: +(p99(lastLat) - p99(firstLat)).toFixed(1), overall: +p99(lat.map((l) => l.ms)).toFixed(1) },
    };
    console.log(JSON.stringify(report, null, 2));
    process.exitCode = errorCount === 0 ? 0 : 1;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
