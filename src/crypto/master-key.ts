import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The master key encrypts signing keys at rest (AES-256-GCM). It comes from
 * GATEHOUSE_MASTER_KEY (any string; 32 bytes are derived with SHA-256) or from a file
 * generated in the data dir with mode 0600. Several nodes must share the same value.
 */
export class MasterKey {
  private constructor(private readonly key: Buffer, readonly source: 'env' | 'file') {}

  static load(opts: { masterKey?: string | undefined; dataDir: string }): MasterKey {
    if (opts.masterKey) return new MasterKey(derive(opts.masterKey), 'env');
    const file = path.join(opts.dataDir, 'master.key');
    if (!existsSync(file)) {
      mkdirSync(opts.dataDir, { recursive: true });
      writeFileSync(file, randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
    }
    chmodSync(file, 0o600);
    return new MasterKey(derive(readFileSync(file, 'utf8').trim()), 'file');
  }

  encrypt(plain: Buffer | string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain), c.final()]);
    return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
  }

  decrypt(sealed: string): Buffer {
    const [v, iv, tag, body] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || body === undefined) throw new Error('unrecognised sealed value');
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    try {
      return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]);
    } catch {
      throw new Error('cannot decrypt a signing key: the master key differs from the one that encrypted it (check GATEHOUSE_MASTER_KEY)');
    }
  }
}

function derive(material: string): Buffer {
  return createHash('sha256').update(material, 'utf8').digest();
}
