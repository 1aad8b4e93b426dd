/**
 * Gateway throughput and latency, side by side in one run (issue 9):
 *   direct upstream | gateway, auth off | gateway + Bearer JWT | gateway + Basic
 * The tiny upstream and Gatehouse run pinned to core 0, autocannon to core 1 (taskset when
 * available). Each scenario: warm-up, then a measured window. Prints a table and writes JSON
 * under bench/results/.
 *
 *   node --import tsx bench/gateway.ts [--duration 10] [--warmup 5] [--connections 50] [--only bearer]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const DURATION = Number(opt('duration', '10'));
const WARMUP = Number(opt('warmup', '5'));
const CONNECTIONS = Number(opt('connections', '50'));
const ONLY = opt('only', '');
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0 && os.cpus().length >= 2;
const pin = (core: number, cmd: string[]) => (hasTaskset ? ['taskset', '-c', String(core), ...cmd] : cmd);
const PASSWORD = 'Bench-Pass-123!';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitFor(url: string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      return;
    } catch {
      if (Date.now() > until) throw new Error(`timed out waiting for ${url}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function start(cmd: string[], env: Record<string, string> = {}): ChildProcess {
  const [bin, ...rest] = cmd;
  const child = spawn(bin!, rest, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  return child;
}

interface Result {
  scenario: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

function autocannon(url: string, seconds: number, headers: Record<string, string>): Promise<any> {
  const hdr = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]);
  const cmd = pin(1, [process.execPath, path.join(root, 'node_modules/autocannon/autocannon.js'), '-j', '-c', String(CONNECTIONS), '-d', String(seconds), ...hdr, url]);
  return new Promise((resolve, reject) => {
    const c = spawn(cmd[0]!, cmd.slice(1), { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`autocannon exited ${code}`))));
  });
}

async function measure(scenario: string, url: string, headers: Record<string, string>): Promise<Result> {
  process.stderr.write(`  ${scenario}: warm-up ${WARMUP}s, measure ${DURATION}s ...\n`);
  if (WARMUP > 0) await autocannon(url, WARMUP, headers);
  const r = await autocannon(url, DURATION, headers);
  return { scenario, rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx };
}

const UPSTREAM_SRC = `
const http = require('node:http');
const body = JSON.stringify({ ok: true });
http.createServer((req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }); res.end(body); })
  .listen(Number(process.argv[1]), '127.0.0.1');
`;

async function main() {
  const children: ChildProcess[] = [];
  const cleanup = () => children.forEach((c) => c.kill('SIGTERM'));
  process.on('exit', cleanup);
  try {
    const upPort = await freePort();
    children.push(start(pin(0, [process.execPath, '-e', UPSTREAM_SRC, String(upPort)])));
    const upstream = `http://127.0.0.1:${upPort}`;
    await waitFor(upstream + '/');

    const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-'));
    const cfgFile = path.join(dir, 'gatehouse.yaml');
    writeFileSync(
      cfgFile,
      stringify({
        server: { logLevel: 'warn' },
        gateway: {
          routes: [
            { path: '/bench/none', module: 'VM', upstream, auth: 'none', errorFormat: 'json' },
            { path: '/bench/bearer', module: 'VM', upstream, auth: 'bearer', errorFormat: 'json' },
            { path: '/bench/basic', module: 'VM', upstream, auth: 'basic', errorFormat: 'json' },
          ],
        },
        // Limits stay on (the work per request is real), set high enough never to refuse.
        limits: { default: { rate: 1_000_000_000, windowSec: 3600, concurrency: 100_000 } },
      }),
    );
    const ghPort = await freePort();
    children.push(
      start(pin(0, [process.execPath, path.join(root, 'bin/gatehouse.mjs'), 'serve']), {
        PORT: String(ghPort),
        GATEHOUSE_DATA_DIR: path.join(dir, 'data'),
        GATEHOUSE_ADMIN_PASSWORD: PASSWORD,
        GATEHOUSE_CONFIG: cfgFile,
      }),
    );
    const gh = `http://127.0.0.1:${ghPort}`;
    await waitFor(gh + '/health/live');
    const auth = await fetch(gh + '/auth', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'admin', password: PASSWORD, token: 'true' }),
    });
    const jwt = await auth.text();
    if (auth.status !== 201) throw new Error(`login failed: ${auth.status} ${jwt}`);
    const basic = 'Basic ' + Buffer.from(`admin:${PASSWORD}`).toString('base64');
    for (const [p, h] of [['/bench/bearer/x', `Bearer ${jwt}`], ['/bench/basic/x', basic]] as const) {
      const r = await fetch(gh + p, { headers: { authorization: h } });
      if (r.status !== 200) throw new Error(`${p}: ${r.status} ${await r.text()}`);
    }

    const scenarios: Array<[string, string, Record<string, string>]> = [
      ['direct upstream', upstream + '/bench/none/x', {}],
      ['gateway, auth off', gh + '/bench/none/x', {}],
      ['gateway + Bearer JWT', gh + '/bench/bearer/x', { authorization: `Bearer ${jwt}` }],
      ['gateway + Basic', gh + '/bench/basic/x', { authorization: basic }],
    ];
    process.stderr.write(`gateway bench: ${CONNECTIONS} connections, taskset ${hasTaskset ? 'server core 0 / load core 1' : 'unavailable (unpinned)'}\n`);
    const results: Result[] = [];
    for (const [name, url, headers] of scenarios) {
      if (ONLY && !name.toLowerCase().includes(ONLY.toLowerCase())) continue;
      results.push(await measure(name, url, headers));
    }
    const by = (n: string) => results.find((r) => r.scenario === n);
    const direct = by('direct upstream');
    const off = by('gateway, auth off');
    const bearer = by('gateway + Bearer JWT');
    const pct = (a?: Result, b?: Result) => (a && b ? `${((a.rps / b.rps) * 100).toFixed(0)}%` : '-');
    const rows = results.map((r) => ({
      ...r,
      vsDirect: pct(r, direct),
      vsAuthOff: pct(r, off),
      vsBearer: pct(r, bearer),
    }));
    const head = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'vs direct', 'vs auth-off', 'vs Bearer', 'errors/non2xx'];
    const table = [head, ...rows.map((r) => [r.scenario, String(r.rps), String(r.p50), String(r.p99), r.vsDirect, r.vsAuthOff, r.vsBearer, `${r.errors}/${r.non2xx}`])];
    const widths = head.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    const line = (row: string[]) => '| ' + row.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
    console.log([line(table[0]!), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...table.slice(1).map(line)].join('\n'));
    const outDir = path.join(root, 'bench/results');
    mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, `gateway-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        { at: new Date().toISOString(), machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg() }, pinned: hasTaskset, connections: CONNECTIONS, warmupSec: WARMUP, durationSec: DURATION, results: rows },
        null,
        2,
      ),
    );
    console.log(`written ${path.relative(root, file)}`);
  } finally {
    cleanup();
  }
}

await main();
