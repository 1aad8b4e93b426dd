import { readFileSync } from 'node:fs';
import path from 'node:path';
import { lazyRequire } from './lazy-require.ts';

const yaml = lazyRequire<typeof import('yaml')>('yaml'); // perf (issue 9): only with GATEHOUSE_CONFIG
import { z } from 'zod';
// --- subscription tokens (issue 4) ---
import { alertsSchema, mailSchema } from './notify/config-schema.ts';
// --- end subscription tokens ---
import { idpsConfigSchema } from './idp/config-schema.ts'; // idp (issue 6)
import { consoleSchema } from './console/config-schema.ts'; // console (issue 7)
import { clusterSchema } from './cluster/config-schema.ts'; // scaleout (issue 8)
// --- gateway (issue 5): strict schemas for the `gateway` and `limits` sections ---
import { gatewaySchema, limitsSchema } from './gateway/config.ts';
// --- end gateway ---

/**
 * Configuration: environment variables (CONTRACT.md) plus an optional YAML file
 * (GATEHOUSE_CONFIG). Validated once at start; an error names the offending key.
 */

const durationSec = z.number().int().positive();

const tokensSchema = z
  .object({
    /** Lifetime of JWTs from /auth, /auth/oidc, /auth/oauth and /oauth2/token. Qualys: 4 hours. */
    ttlSeconds: durationSec.default(4 * 3600),
    /** `aud` of issued tokens, required on verification. */
    audience: z.string().min(1).default('gatehouse'),
    clockSkewSeconds: z.number().int().min(0).max(300).default(30),
    /** How long a rotated-out key keeps verifying (must cover the longest token: 1 year). */
    keyOverlapSeconds: durationSec.default(366 * 24 * 3600),
    /** scaleout (issue 8): rotate the signing key when it is this many days old (one node does it); 0 = never. */
    rotateEveryDays: z.number().int().min(0).max(3650).default(90),
    /** harden (issue 10): how long verification may use cached principal state while the database is unreachable; then it fails closed. */
    stateStalenessSeconds: z.number().int().min(1).max(3600).default(60),
  })
  .strict()
  .default({});

const authSchema = z
  .object({
    /** Consecutive failed logins per username before a lockout. */
    maxFailuresPerUser: z.number().int().min(1).default(10),
    /** Failed logins per source IP per window before that IP is throttled. */
    maxFailuresPerIp: z.number().int().min(1).default(100),
    failureWindowSeconds: durationSec.default(15 * 60),
    /** First lockout; each further lockout within a day doubles it, up to the maximum. */
    lockoutSeconds: durationSec.default(60),
    maxLockoutSeconds: durationSec.default(3600),
  })
  .strict()
  .default({});

const serverSchema = z
  .object({
    bodyLimitBytes: z.number().int().positive().default(1024 * 1024),
    trustProxy: z.union([z.boolean(), z.string()]).default(false),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict()
  .default({});

// >>> scaleout (issue 8)
const metricsSchema = z
  .object({
    /** Serve GET /metrics (Prometheus text format). */
    enabled: z.boolean().default(true),
    /** When set (or GATEHOUSE_METRICS_TOKEN), /metrics requires `Authorization: Bearer <token>`. */
    token: z.string().min(16, 'use at least 16 characters').optional(),
  })
  .strict()
  .default({});
// <<< scaleout

/** Sections of the YAML file. Later capabilities add theirs here. */
export const fileSchema = z
  .object({
    server: serverSchema,
    tokens: tokensSchema,
    auth: authSchema,
    /** Free-form sections owned by other capabilities, validated where they are used. */
    gateway: gatewaySchema, // issue 5: src/gateway/config.ts
    limits: limitsSchema, // issue 5: src/gateway/config.ts
    // issue 4: expiry alerts (src/notify/config-schema.ts)
    mail: mailSchema,
    alerts: alertsSchema,
    idps: idpsConfigSchema, // idp (issue 6): trusted external identity providers, see docs/idp.md
    console: consoleSchema, // console (issue 7): session timeouts, see docs/console.md
    metrics: metricsSchema, // scaleout (issue 8)
    cluster: clusterSchema, // scaleout (issue 8): change feed mode, LISTEN URL
  })
  .strict();

export type FileConfig = z.infer<typeof fileSchema>;

export interface Config extends FileConfig {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  publicUrl: string;
  adminUsername: string;
  adminPassword: string | undefined;
  smtpUrl: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  masterKey: string | undefined;
  configFile: string | undefined;
  sampleModules: boolean;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function formatZodIssue(prefix: string, issue: z.ZodIssue): string {
  const key = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  if (issue.code === 'unrecognized_keys') {
    return `${prefix ? prefix + ': ' : ''}unknown key(s) ${issue.keys.map((k) => `'${[...issue.path, k].join('.')}'`).join(', ')}`;
  }
  return `'${key}': ${issue.message}`;
}

function envInt(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`'${name}': expected a port number 0-65535, got '${raw}'`);
  return n;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const configFile = overrides.configFile ?? nonEmpty(env.GATEHOUSE_CONFIG);
  let fileRaw: unknown = {};
  if (configFile) {
    let text: string;
    try {
      text = readFileSync(configFile, 'utf8');
    } catch (e) {
      throw new ConfigError(`GATEHOUSE_CONFIG: cannot read '${configFile}': ${(e as Error).message}`);
    }
    try {
      fileRaw = yaml().parse(text) ?? {};
    } catch (e) {
      throw new ConfigError(`GATEHOUSE_CONFIG: '${configFile}' is not valid YAML: ${(e as Error).message}`);
    }
    if (typeof fileRaw !== 'object' || Array.isArray(fileRaw)) {
      throw new ConfigError(`GATEHOUSE_CONFIG: '${configFile}' must hold a mapping at the top level`);
    }
  }
  const parsed = fileSchema.safeParse(fileRaw);
  if (!parsed.success) {
    throw new ConfigError(`GATEHOUSE_CONFIG ${configFile ?? ''}: ${parsed.error.issues.map((i) => formatZodIssue('', i)).join('; ')}`);
  }
  const port = overrides.port ?? envInt(env, 'PORT', 8080);
  const host = overrides.host ?? nonEmpty(env.HOST) ?? '127.0.0.1';
  const tlsCert = overrides.tlsCert ?? nonEmpty(env.GATEHOUSE_TLS_CERT);
  const tlsKey = overrides.tlsKey ?? nonEmpty(env.GATEHOUSE_TLS_KEY);
  if (Boolean(tlsCert) !== Boolean(tlsKey)) {
    throw new ConfigError(`'GATEHOUSE_TLS_CERT' and 'GATEHOUSE_TLS_KEY' must be set together`);
  }
  const databaseUrl = overrides.databaseUrl ?? nonEmpty(env.DATABASE_URL);
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(`'DATABASE_URL': expected a postgres:// URL (unset it to use the embedded SQLite store)`);
  }
  const redisUrl = overrides.redisUrl ?? nonEmpty(env.REDIS_URL);
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) throw new ConfigError(`'REDIS_URL': expected a redis:// URL`);
  const smtpUrl = overrides.smtpUrl ?? nonEmpty(env.SMTP_URL);
  if (smtpUrl && !/^smtps?:\/\//.test(smtpUrl)) throw new ConfigError(`'SMTP_URL': expected smtp://host:port or smtps://host:port`);
  const scheme = tlsCert ? 'https' : 'http';
  const displayHost = host.includes(':') ? `[${host}]` : host;
  let publicUrl = overrides.publicUrl ?? nonEmpty(env.GATEHOUSE_PUBLIC_URL) ?? `${scheme}://${displayHost}:${port}`;
  try {
    const u = new URL(publicUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new ConfigError(`'GATEHOUSE_PUBLIC_URL': expected an http(s) URL, got '${publicUrl}'`);
  }
  publicUrl = publicUrl.replace(/\/+$/, '');
  // >>> scaleout (issue 8)
  const metricsToken = nonEmpty(env.GATEHOUSE_METRICS_TOKEN);
  if (metricsToken !== undefined && metricsToken.length < 16) throw new ConfigError(`'GATEHOUSE_METRICS_TOKEN': use at least 16 characters`);
  if (metricsToken) parsed.data.metrics = { ...parsed.data.metrics, token: metricsToken };
  // <<< scaleout
  return {
    ...parsed.data,
    ...overrides,
    port,
    host,
    dataDir: path.resolve(overrides.dataDir ?? nonEmpty(env.GATEHOUSE_DATA_DIR) ?? './data'),
    databaseUrl,
    redisUrl,
    publicUrl,
    adminUsername: overrides.adminUsername ?? nonEmpty(env.GATEHOUSE_ADMIN_USERNAME) ?? 'admin',
    adminPassword: overrides.adminPassword ?? nonEmpty(env.GATEHOUSE_ADMIN_PASSWORD),
    smtpUrl,
    tlsCert,
    tlsKey,
    masterKey: overrides.masterKey ?? nonEmpty(env.GATEHOUSE_MASTER_KEY),
    configFile,
    sampleModules: overrides.sampleModules ?? false,
  };
}
