import { hash } from '@node-rs/argon2';
import { verifyOnWorker } from './password-worker.ts';

/** argon2id with the OWASP-recommended parameters (m=19 MiB, t=2, p=1). */
const OPTIONS = { algorithm: 2 /* Algorithm.Argon2id */, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

// Verified against when the user does not exist, so unknown and known usernames cost the same.
let dummyHash: Promise<string> | undefined;

export async function verifyPassword(storedHash: string | null, password: string): Promise<boolean> {
  if (!storedHash) {
    dummyHash ??= hashPassword('gatehouse-timing-equaliser');
    await verifyOnWorker(await dummyHash, password).catch(() => false);
    return false;
  }
  try {
    return await verifyOnWorker(storedHash, password);
  } catch {
    return false;
  }
}

/** Password rules for users created through the API / CLI. */
export function passwordProblem(password: string): string | null {
  if (password.length < 8) return 'password must be at least 8 characters long';
  if (password.length > 256) return 'password must be at most 256 characters long';
  return null;
}
