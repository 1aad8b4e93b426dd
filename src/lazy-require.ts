import { createRequire } from 'node:module';

/**
 * perf (issue 9): packages that only some deployments use (pg with DATABASE_URL, ioredis with
 * REDIS_URL, nodemailer with SMTP_URL, yaml with GATEHOUSE_CONFIG, undici once a module has an
 * upstream) are required on first use instead of imported at start: each costs 65-150 ms of
 * start-up and several MB of heap. Resolved from this package's node_modules, from the sources
 * and from the bundle alike (scripts/build-server.mjs leaves them out of it).
 */
const requireHere = createRequire(import.meta.url);

export function lazyRequire<T>(id: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= requireHere(id) as T);
}
