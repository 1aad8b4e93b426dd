/**
 * Is this error the database being unreachable (down, restarting, network cut), as opposed
 * to a bug or bad input? Such errors answer 503 with a clear message instead of 500.
 */
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);
const MESSAGES = /Connection terminated|connection timeout|Client has encountered a connection error|terminating connection due to administrator command|the database system is (starting up|shutting down|in recovery mode)|Connection ended unexpectedly|Client was closed and is not queryable|timeout exceeded when trying to connect|SQLITE_BUSY|database is locked|SQLITE_IOERR|SQLITE_FULL/i;

export function isStoreUnavailable(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const err = e as { code?: unknown; message?: unknown; errors?: unknown };
  const code = typeof err.code === 'string' ? err.code : '';
  // PostgreSQL: class 08 (connection exception), 57P01-57P03 (shutdown / cannot connect now), 53300 (too many connections)
  if (NET_CODES.has(code) || /^08/.test(code) || /^57P0[1-3]$/.test(code) || code === '53300') return true;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_IOERR' || code === 'SQLITE_FULL') return true;
  if (typeof err.message === 'string' && MESSAGES.test(err.message)) return true;
  // AggregateError from a pool trying several addresses
  if (Array.isArray(err.errors) && err.errors.some(isStoreUnavailable)) return true;
  return false;
}

export const STORE_UNAVAILABLE_MESSAGE =
  'The Gatehouse database is unreachable, so this cannot be done right now; nothing was changed. Try again in a few seconds.';
