/**
 * Test harness: real servers on real stores. `startGatehouse` builds a full server through
 * the composition root on a fresh SQLite file or a fresh PostgreSQL database, listening on
 * an ephemeral port; requests go over real sockets with fetch.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { loadConfig, type Config } from '../src/config.ts';
import { createGatehouse, REDACT_PATHS, type Gatehouse } from '../src/app.ts';

export type StoreKind = 'sqlite' | 'postgres';
export const STORES: StoreKind[] = ['sqlite', 'postgres'];
export const PG_ADMIN_URL = process.env.GATEHOUSE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const ADMIN_PASSWORD = 'Admin-Pass-123!';

/** A fresh, empty PostgreSQL database; dropped by the returned function. */
export async function freshPgDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `gh_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Captures everything the server logs, to assert that secrets never appear. */
export class LogCapture extends Writable {
  chunks: string[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.chunks.push(chunk.toString('utf8'));
    cb();
  }
  get text(): string {
    return this.chunks.join('');
  }
}

export interface TestServer {
  url: string;
  gh: Gatehouse;
  config: Config;
  logs: LogCapture;
  dataDir: string;
  databaseUrl: string | undefined;
  /** A JWT for the bootstrap manager. */
  adminToken(): Promise<string>;
  login(username: string, password: string): Promise<string>;
  /** JSON request helper; `token` becomes a Bearer header. */
  api(method: string, p: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers; text: string }>;
  close(): Promise<void>;
  /** Stop the server but keep its data, for restart tests. */
  stop(): Promise<void>;
}

export interface StartOptions {
  store?: StoreKind;
  config?: Partial<Config>;
  env?: Record<string, string>;
  /** Reuse an existing data dir / database (restart). */
  dataDir?: string;
  databaseUrl?: string;
  keepData?: boolean;
  /** Injected wall clock (CreateOptions.clock), to drive expiry and alerts without sleeping. */
  clock?: () => Date;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function startGatehouse(opts: StartOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'gatehouse-test-'));
  let databaseUrl = opts.databaseUrl;
  let drop: (() => Promise<void>) | undefined;
  if (!databaseUrl && opts.store === 'postgres') {
    const db = await freshPgDatabase();
    databaseUrl = db.url;
    drop = db.drop;
  }
  const port = opts.config?.port ?? (await freePort());
  const config = loadConfig(
    { GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD, ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}), ...opts.env },
    { host: '127.0.0.1', ...opts.config, port },
  );
  const logs = new LogCapture();
  const logger = pino({ level: 'debug', redact: { paths: REDACT_PATHS, censor: '[Redacted]' } }, logs);
  const gh = await createGatehouse(config, { logger, ...(opts.clock ? { clock: opts.clock } : {}) });
  const url = await gh.listen();
  const api: TestServer['api'] = async (method, p, o = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    let body: string | undefined;
    if (o.body !== undefined) {
      body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(url + p, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed, headers: res.headers, text };
  };
  const login = async (username: string, password: string) => {
    const res = await fetch(url + '/auth', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username, password, token: 'true' }),
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`login ${username} failed: ${res.status} ${text}`);
    return text;
  };
  let stopped = false;
  return {
    url,
    gh,
    config,
    logs,
    dataDir,
    databaseUrl,
    adminToken: () => login(config.adminUsername, ADMIN_PASSWORD),
    login,
    api,
    async stop() {
      if (stopped) return;
      stopped = true;
      await gh.close();
    },
    async close() {
      if (!stopped) {
        stopped = true;
        await gh.close();
      }
      if (!opts.keepData && !opts.dataDir) {
        rmSync(dataDir, { recursive: true, force: true });
        if (drop) await drop();
      }
    },
  };
}

/** Create a user through the management API; returns its id. */
export async function createUser(
  s: TestServer,
  managerToken: string,
  u: { username: string; password?: string; role?: 'manager' | 'user'; apiAccess?: boolean; uiAccess?: boolean; modules?: string[]; ssoEnabled?: boolean; email?: string },
): Promise<string> {
  const r = await s.api('POST', '/api/v1/users', {
    token: managerToken,
    body: { password: 'User-Pass-123!', role: 'user', apiAccess: true, uiAccess: true, modules: [], ...u },
  });
  if (r.status !== 201) throw new Error(`create user failed: ${r.status} ${r.text}`);
  return r.body.id as string;
}

export async function postForm(url: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields),
  });
  return { status: res.status, text: await res.text(), headers: res.headers };
}
