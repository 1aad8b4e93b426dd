/**
 * Scale-out test/bench harness: Gatehouse nodes as separate processes (`gatehouse serve`)
 * sharing one PostgreSQL database, master key and public URL, as in production.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ADMIN_PASSWORD, PG_ADMIN_URL, freePort } from './helpers.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

export interface NodeProcess {
  name: string;
  url: string;
  proc: ChildProcess;
  output(): string;
  /** Send a signal and wait for the exit code (bounded). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ClusterEnv {
  databaseUrl: string;
  publicUrl: string;
  masterKey: string;
  env?: Record<string, string>;
}

/** Start `node bin/gatehouse.mjs serve` and wait until it prints its URL. */
export async function spawnNode(name: string, c: ClusterEnv, opts: { applicationName?: string } = {}): Promise<NodeProcess> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `gatehouse-${name}-`));
  const dbUrl = new URL(c.databaseUrl);
  if (opts.applicationName) dbUrl.searchParams.set('application_name', opts.applicationName);
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin/gatehouse.mjs'), 'serve'], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: dbUrl.toString(),
      GATEHOUSE_DATA_DIR: dataDir,
      GATEHOUSE_MASTER_KEY: c.masterKey,
      GATEHOUSE_PUBLIC_URL: c.publicUrl,
      GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      ...c.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  let stopping = false;
  const exited = new Promise<number | null>((resolve) =>
    proc.on('exit', (code, signal) => {
      // A node that dies on its own is a bug worth seeing: print what it said last.
      if (!stopping) process.stderr.write(`\n[node ${name} exited unexpectedly: code ${code} signal ${signal}]\n${out.slice(-4000)}\n`);
      resolve(code);
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (!out.includes('Gatehouse is listening on')) {
    if (proc.exitCode !== null) throw new Error(`node ${name} exited: ${out}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`node ${name} did not start within 30 s: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    name,
    url,
    proc,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      stopping = true;
      if (proc.exitCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

export async function login(url: string, username: string, password = ADMIN_PASSWORD): Promise<string> {
  const res = await fetch(url + '/auth', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password, token: 'true' }),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`login ${username} at ${url}: ${res.status} ${text}`);
  return text;
}

export async function call(url: string, method: string, p: string, token?: string, body?: unknown): Promise<{ status: number; text: string; body: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, text, body: parsed };
}

/**
 * Poll `GET /api/v1/me` on a node until the token is refused; returns milliseconds from
 * `since` (bounded by `limitMs`; Infinity if still accepted).
 */
export async function msUntilRefused(url: string, token: string, since: number, limitMs = 5_000): Promise<number> {
  while (Date.now() - since < limitMs) {
    const r = await fetch(url + '/api/v1/me', { headers: { authorization: `Bearer ${token}` } });
    await r.arrayBuffer();
    if (r.status === 401) return Date.now() - since;
    await new Promise((res) => setTimeout(res, 2));
  }
  return Infinity;
}

/** Terminate every backend of the database whose application_name is `app`; returns how many. */
export async function killConnections(databaseUrl: string, app: string): Promise<number> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    const db = new URL(databaseUrl).pathname.slice(1);
    const r = await c.query(
      'SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND pid <> pg_backend_pid()',
      [db, app],
    );
    return r.rows.filter((x: { killed: boolean }) => x.killed).length;
  } finally {
    await c.end();
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}
