import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK } from 'jose';
import { startGatehouse, createUser, type TestServer } from './helpers.ts';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('the verifier refuses forged and stale tokens', () => {
  let s: TestServer;
  let good: string;
  before(async () => {
    s = await startGatehouse();
    good = await s.adminToken();
  });
  after(async () => s?.close());

  const refused = async (token: string, why: RegExp) => {
    const r = await s.api('GET', '/api/v1/me', { token });
    assert.equal(r.status, 401, `expected 401 for ${why}: got ${r.status} ${r.text}`);
    assert.match(r.body.errorMessage, why);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer /);
  };

  test('a genuine token is accepted', async () => {
    assert.equal((await s.api('GET', '/api/v1/me', { token: good })).status, 200);
  });

  test('alg: none', async () => {
    const [h, p] = good.split('.');
    const header = { ...JSON.parse(Buffer.from(h!, 'base64url').toString()), alg: 'none' };
    await refused(`${b64(header)}.${p}.`, /well-formed|algorithm|not allowed/);
    await refused(`${b64(header)}.${p}.AAAA`, /algorithm/);
  });

  test('HS256 signed with the public key (algorithm confusion)', async () => {
    const kid = decodeProtectedHeader(good).kid!;
    const jwks = (await s.api('GET', '/.well-known/jwks.json')).body;
    const jwk = jwks.keys.find((k: { kid: string }) => k.kid === kid);
    const header = b64({ alg: 'HS256', kid, typ: 'at+jwt' });
    const payload = good.split('.')[1]!;
    for (const secret of [JSON.stringify(jwk), jwk.x, Buffer.from(JSON.stringify(jwk))]) {
      const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      await refused(`${header}.${payload}.${sig}`, /algorithm HS256 is not allowed/);
    }
  });

  test('unknown kid, and a kid used as an injection vector', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const claims = decodeJwt(good);
    for (const kid of ['not-a-key', "' OR 1=1 --", '../../../../etc/passwd']) {
      const t = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' }).sign(privateKey);
      await refused(t, /unknown or retired key/);
    }
  });

  test('a token signed by another key under our kid (tampered signature)', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = decodeProtectedHeader(good).kid!;
    const t = await new SignJWT(decodeJwt(good))
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt', jwk: await exportJWK(publicKey) })
      .sign(privateKey);
    await refused(t, /signature/);
  });

  test('tampered payload', async () => {
    const [h, , sig] = good.split('.');
    const claims = { ...decodeJwt(good), username: 'someone-else', sub: 'x' };
    await refused(`${h}.${b64(claims)}.${sig}`, /signature/);
  });

  test('expired, not yet valid, issued in the future', async () => {
    const { tokens } = s.gh.services;
    const me = decodeJwt(good);
    const expired = await tokens.issue({ sub: me.sub!, subscriptionId: String(me.subscription_id), authMethod: 'password', ttlSeconds: -120 });
    await refused(expired.token, /expired/);
    const future = await tokens.issue({ sub: me.sub!, subscriptionId: String(me.subscription_id), authMethod: 'password', extra: { nbf: Math.floor(Date.now() / 1000) + 3600 } });
    await refused(future.token, /not valid yet/);
  });

  test('another issuer or audience, signed with our own key', async () => {
    const key = s.gh.services.keys.signingKey();
    const claims = decodeJwt(good);
    const other = await new SignJWT({ ...claims, iss: 'https://evil.example' }).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' }).sign(key.privateKey!);
    await refused(other, /another issuer|not a trusted identity provider/);
    const aud = await new SignJWT({ ...claims, aud: 'something-else' }).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' }).sign(key.privateKey!);
    await refused(aud, /another audience/);
    const typ = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' }).sign(key.privateKey!);
    await refused(typ, /type/);
  });

  test('garbage: empty, huge, non-JWT', async () => {
    for (const t of ['abc', 'a.b', '....', `${'a'.repeat(9000)}.b.c`, 'eyJ.eyJ.', '%00.%00.%00']) {
      const r = await s.api('GET', '/api/v1/me', { token: t });
      assert.equal(r.status, 401, t.slice(0, 20));
    }
    const big = await fetch(s.url + '/api/v1/me', { headers: { authorization: `Bearer ${'x'.repeat(12_000)}.y.z` } });
    assert.ok([401, 431].includes(big.status));
  });
});

describe('keys: rotation and restart', () => {
  test('restart keeps users, keys and earlier tokens valid; rotation keeps old tokens verifying and both keys in the JWKS', async () => {
    const s1 = await startGatehouse({ keepData: true });
    const admin = await s1.adminToken();
    await createUser(s1, admin, { username: 'persisted', modules: ['VM'] });
    const userToken = await s1.login('persisted', 'User-Pass-123!');
    const port = Number(new URL(s1.url).port);
    await s1.stop();

    // Same issuer (public URL), new listening port: a client pool's stale keep-alive
    // connection to the old process must not decide this test.
    const s2 = await startGatehouse({ dataDir: s1.dataDir, config: { publicUrl: s1.url } });
    try {
      assert.equal((await s2.api('GET', '/api/v1/me', { token: userToken })).status, 200, 'token from before the restart');
      assert.equal((await s2.api('GET', '/api/v1/me', { token: admin })).body.user.username, 'admin');
      const before = decodeProtectedHeader(userToken).kid;
      // rotate through the CLI on the same data dir, while the server runs
      const out = execFileSync(process.execPath, ['bin/gatehouse.mjs', 'keys', 'rotate', '--json'], {
        env: { ...process.env, GATEHOUSE_DATA_DIR: s1.dataDir, PORT: String(port) },
        encoding: 'utf8',
      });
      const newKid = JSON.parse(out).kid as string;
      assert.notEqual(newKid, before);
      await s2.gh.services.keys.refresh(0);
      const fresh = await s2.login('persisted', 'User-Pass-123!');
      assert.equal(decodeProtectedHeader(fresh).kid, newKid);
      const jwks = (await s2.api('GET', '/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid);
      assert.ok(jwks.includes(before) && jwks.includes(newKid));
      assert.equal((await s2.api('GET', '/api/v1/me', { token: userToken })).status, 200, 'old-key token still verifies');
      assert.equal((await s2.api('GET', '/api/v1/me', { token: fresh })).status, 200);
    } finally {
      await s2.close();
      (await import('node:fs')).rmSync(s1.dataDir, { recursive: true, force: true });
    }
  });

  test('the master key file is created with mode 0600 and signing keys are sealed at rest', async () => {
    const s = await startGatehouse();
    try {
      const fs = await import('node:fs');
      const mode = fs.statSync(`${s.dataDir}/master.key`).mode & 0o777;
      assert.equal(mode, 0o600);
      const rows = await s.gh.services.store.db.selectFrom('signing_keys').select('private_key_enc').execute();
      assert.ok(rows.length >= 1);
      for (const r of rows) assert.ok(!r.private_key_enc.includes('PRIVATE KEY') && r.private_key_enc.startsWith('v1.'));
    } finally {
      await s.close();
    }
  });

  test('a wrong GATEHOUSE_MASTER_KEY fails start-up with a message that says so', async () => {
    const s = await startGatehouse({ keepData: true });
    await s.stop();
    await assert.rejects(startGatehouse({ dataDir: s.dataDir, env: { GATEHOUSE_MASTER_KEY: 'not-the-right-one' } }), /master key differs/);
    (await import('node:fs')).rmSync(s.dataDir, { recursive: true, force: true });
  });
});
