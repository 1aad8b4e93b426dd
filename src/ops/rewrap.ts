import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { Store } from '../store/db.ts';
import { MasterKey } from '../crypto/master-key.ts';
import { BadRequestError } from '../domain/errors.ts';

export interface RewrapResult {
  rewrapped: string[];
  alreadyNew: string[];
}

/**
 * Re-seal every signing key's private part: decrypt with the old master key, encrypt with the
 * new one, in one transaction (all or nothing). Keys that the new master key already opens are
 * left alone, so running it twice — or after a partial roll-out — is safe.
 */
export async function rewrapSigningKeys(store: Store, oldKey: MasterKey, newKey: MasterKey): Promise<RewrapResult> {
  const result: RewrapResult = { rewrapped: [], alreadyNew: [] };
  await store.transaction(async (tx) => {
    const rows = await tx.selectFrom('signing_keys').select(['kid', 'private_key_enc']).execute();
    for (const r of rows) {
      try {
        newKey.decrypt(r.private_key_enc);
        result.alreadyNew.push(r.kid);
        continue;
      } catch {
        /* not sealed with the new key yet */
      }
      let plain: Buffer;
      try {
        plain = oldKey.decrypt(r.private_key_enc);
      } catch {
        throw new BadRequestError(`signing key ${r.kid} opens with neither the old nor the new master key; nothing was changed`);
      }
      await tx.updateTable('signing_keys').set({ private_key_enc: newKey.encrypt(plain) }).where('kid', '=', r.kid).execute();
      result.rewrapped.push(r.kid);
    }
    if (result.rewrapped.length) await store.recordChange(tx, 'signing_key', 'rewrap');
  });
  return result;
}

function oldKeyFrom(opts: { oldMasterKey?: string; oldMasterKeyFile?: string }): MasterKey {
  const fromEnv = process.env.GATEHOUSE_OLD_MASTER_KEY;
  const sources = [opts.oldMasterKey, opts.oldMasterKeyFile, fromEnv].filter((x) => x !== undefined && x !== '');
  if (sources.length !== 1) {
    throw new BadRequestError('give the old master key exactly one way: GATEHOUSE_OLD_MASTER_KEY (preferred), --old-master-key-file <path> or --old-master-key <value>');
  }
  const material = opts.oldMasterKeyFile ? readFileSync(opts.oldMasterKeyFile, 'utf8').trim() : (opts.oldMasterKey ?? fromEnv)!;
  return MasterKey.load({ masterKey: material, dataDir: '' });
}

/** `gatehouse keys rewrap`: the master-key rotation step (docs/deploy.md). */
export function registerRewrapCli(program: Command): void {
  const keys = program.commands.find((c) => c.name() === 'keys') ?? program.command('keys').description('signing keys');
  keys
    .command('rewrap')
    .description(
      're-encrypt the signing keys with the master key now configured (GATEHOUSE_MASTER_KEY or the data dir file), ' +
        'reading them with the old one (GATEHOUSE_OLD_MASTER_KEY, --old-master-key-file or --old-master-key). See docs/deploy.md',
    )
    .option('--old-master-key <value>', 'the previous master key (visible in the process list; prefer GATEHOUSE_OLD_MASTER_KEY)')
    .option('--old-master-key-file <path>', 'file holding the previous master key (e.g. an old data-dir master.key)')
    .action(async function (this: Command, opts: { oldMasterKey?: string; oldMasterKeyFile?: string }) {
      const config = loadConfig();
      const oldKey = oldKeyFrom(opts);
      const newKey = MasterKey.load({ masterKey: config.masterKey, dataDir: config.dataDir });
      const store = new Store({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
      try {
        await store.migrate();
        const r = await rewrapSigningKeys(store, oldKey, newKey);
        const text = `re-sealed ${r.rewrapped.length} signing key(s) with the new master key; ${r.alreadyNew.length} already were`;
        process.stdout.write((this.optsWithGlobals().json ? JSON.stringify(r, null, 2) : text) + '\n');
      } finally {
        await store.close();
      }
    });
}
