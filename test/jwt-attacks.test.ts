/**
 * Hardening (issue 10): the JWT attack corpus, each case refused with 401 both by the verifier
 * behind the management API (GET /api/v1/me) and by the gateway (Bearer on a module path).
 * test/tokens.test.ts holds the first corpus against /api/v1/me; this one adds the cases it
 * lacked and runs every case at the gateway too.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, exportJWK } from 'jose';
import { startGatehouse, type TestServer } from './helpers.ts';

const enc = (s: string | Buffer) => Buffer.from(s).toString('base64url');
const b64 = (o: unknown) => enc(JSON.stringify(o));

/** Sign raw header and payload text (so tests can write JSON that JSON.stringify never would). */
function signRaw(headerText: string, payloadText: string, key: KeyObject): string {
  const input = `${enc(headerText)}.${enc(payloadText)}`;
  const sig = nodeSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

const GATEWAY_PATH = '/api/2.0/fo/asset/ip/?action=list';

describe('JWT attack corpus: refused with 401 at the verifier and at the gateway', () => {
  let s: TestServer;
  let good: string;
  let claims: Record<string, unknown>;
  let kid: string;
  let ourKey: KeyObject;
  const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const now = () => Math.floor(Date.now() / 1000);

  before(async () => {
    s = await startGatehouse({ config: { sampleModules: true } as never });
    good = await s.adminToken();
    claims = decodeJwt(good) as Record<string, unknown>;
    kid = decodeProtectedHeader(good).kid!;
    ourKey = s.gh.services.keys.signingKey().privateKey!;
  });
  after(async () => s?.close());

  /** Our own key signs exactly this header and these claims. */
  const ours = (header: Record<string, unknown>, payload: Record<string, unknown> = claims) =>
    signRaw(JSON.stringify(header), JSON.stringify(payload), ourKey);
  const theirs = (header: Record<string, unknown>, payload: Record<string, unknown> = claims) =>
    signRaw(JSON.stringify(header), JSON.stringify(payload), attacker.privateKey);

  async function refusedEverywhere(token: string, why?: RegExp): Promise<void> {
    const me = await s.api('GET', '/api/v1/me', { token });
    assert.equal(me.status, 401, `/api/v1/me: ${me.status} ${me.text.slice(0, 200)}`);
    assert.match(me.headers.get('www-authenticate') ?? '', /^Bearer /);
    if (why) assert.match(String(me.body.errorMessage), why);
    assert.doesNotMatch(me.text, /"username"\s*:\s*"admin"/);
    const gw = await fetch(s.url + GATEWAY_PATH, { headers: { authorization: `Bearer ${token}` } });
    const text = await gw.text();
    assert.equal(gw.status, 401, `gateway: ${gw.status} ${text.slice(0, 200)}`);
    assert.match(text, /<CODE>|errorMessage/, 'an error body, not module data');
  }

  test('control: the genuine token is accepted at both', async () => {
    assert.equal((await s.api('GET', '/api/v1/me', { token: good })).status, 200);
    assert.equal((await fetch(s.url + GATEWAY_PATH, { headers: { authorization: `Bearer ${good}` } })).status, 200);
  });

  test('control: claims with UTF-8 text (an extra non-ASCII claim) under our signature are accepted', async () => {
    const header = JSON.parse(Buffer.from(good.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;
    const token = ours(header, { ...claims, note: 'Zoë Ωmega 用户 🙂' });
    assert.equal((await s.api('GET', '/api/v1/me', { token })).status, 200);
    assert.equal((await fetch(s.url + GATEWAY_PATH, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  });

  test('alg: none (empty and non-empty signature)', async () => {
    const [, p] = good.split('.');
    await refusedEverywhere(`${b64({ alg: 'none', kid, typ: 'at+jwt' })}.${p}.`);
    await refusedEverywhere(`${b64({ alg: 'none', kid, typ: 'at+jwt' })}.${p}.AAAA`);
    await refusedEverywhere(`${b64({ alg: 'none', typ: 'at+jwt' })}.${p}.AAAA`);
  });

  test('HS256 keyed with the public key (algorithm confusion)', async () => {
    const jwk = (await s.api('GET', '/.well-known/jwks.json')).body.keys.find((k: { kid: string }) => k.kid === kid);
    const h = b64({ alg: 'HS256', kid, typ: 'at+jwt' });
    const p = good.split('.')[1]!;
    for (const secret of [JSON.stringify(jwk), jwk.x as string, jwk.y as string]) {
      await refusedEverywhere(`${h}.${p}.${createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')}`, /algorithm HS256/);
    }
  });

  test('kid with path traversal', async () => {
    for (const k of ['../../../../etc/passwd', '/dev/null', '..\\..\\windows\\win.ini', `${kid}/../${kid}`]) {
      await refusedEverywhere(theirs({ alg: 'ES256', kid: k, typ: 'at+jwt' }), /unknown or retired key|kid/);
    }
  });

  test('kid with SQL injection', async () => {
    for (const k of ["' OR '1'='1", `${kid}' --`, "x'; DROP TABLE signing_keys; --", `' UNION SELECT public_jwk FROM signing_keys --`]) {
      await refusedEverywhere(theirs({ alg: 'ES256', kid: k, typ: 'at+jwt' }), /unknown or retired key/);
    }
    const keys = await s.gh.services.store.db.selectFrom('signing_keys').select('kid').execute();
    assert.ok(keys.length >= 1, 'the key table is intact');
  });

  test('jku header (key URL): attacker-signed, and even signed by our key', async () => {
    await refusedEverywhere(theirs({ alg: 'ES256', kid, typ: 'at+jwt', jku: 'https://evil.example/jwks.json' }), /signature/);
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt', jku: 'https://evil.example/jwks.json' }), /'jku'/);
  });

  test('x5u header (certificate URL)', async () => {
    await refusedEverywhere(theirs({ alg: 'ES256', kid, typ: 'at+jwt', x5u: 'https://evil.example/cert.pem' }), /signature/);
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt', x5u: 'https://evil.example/cert.pem' }), /'x5u'/);
  });

  test('embedded jwk header (the attacker ships the key)', async () => {
    const jwk = await exportJWK(attacker.publicKey);
    await refusedEverywhere(theirs({ alg: 'ES256', typ: 'at+jwt', jwk }), /kid/);
    await refusedEverywhere(theirs({ alg: 'ES256', kid, typ: 'at+jwt', jwk }), /signature/);
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt', jwk }), /'jwk'/);
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt', x5c: ['MIIB'] }), /'x5c'/);
  });

  test('crit header', async () => {
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt', crit: ['exp'] }));
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt', crit: ['http://example.com/ext'], 'http://example.com/ext': true }));
  });

  test('duplicate claims (a repeated key in the payload or header), even under our signature', async () => {
    const base = JSON.stringify(claims).slice(0, -1);
    const header = JSON.stringify({ alg: 'ES256', kid, typ: 'at+jwt' });
    await refusedEverywhere(signRaw(header, `${base},"sub":"someone-else"}`, ourKey), /repeats/);
    await refusedEverywhere(signRaw(header, `${base},"subscription_id":"00000000-0000-0000-0000-000000000000"}`, ourKey), /repeats/);
    await refusedEverywhere(signRaw(`{"alg":"ES256","kid":"${kid}","typ":"at+jwt","alg":"none"}`, JSON.stringify(claims), ourKey), /repeats/);
    // the same key spelt with an escape is the same key
    await refusedEverywhere(signRaw(header, `${base},"s\\u0075b":"x"}`, ourKey), /repeats/);
  });

  test('wrong typ (JWT, missing, id token)', async () => {
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'JWT' }), /type/);
    await refusedEverywhere(ours({ alg: 'ES256', kid }), /type/);
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'id_token+jwt' }), /type/);
  });

  test('expired', async () => {
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt' }, { ...claims, iat: now() - 7200, exp: now() - 3600 }), /expired/);
  });

  test('nbf in the future', async () => {
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt' }, { ...claims, nbf: now() + 3600 }), /not valid yet/);
  });

  test('iat in the future', async () => {
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt' }, { ...claims, iat: now() + 3600, exp: now() + 7200 }), /future|iat/);
  });

  test('wrong iss', async () => {
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt' }, { ...claims, iss: 'https://evil.example' }));
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt' }, { ...claims, iss: `${s.url}/` }));
  });

  test('wrong aud', async () => {
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt' }, { ...claims, aud: 'another-service' }), /audience/);
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt' }, { ...claims, aud: [] }));
  });

  test('tampered payload', async () => {
    const [h, , sig] = good.split('.');
    await refusedEverywhere(`${h}.${b64({ ...claims, sub: '00000000-0000-0000-0000-000000000000' })}.${sig}`, /signature/);
    await refusedEverywhere(`${h}.${b64({ ...claims, exp: now() + 10 * 365 * 86400 })}.${sig}`, /signature/);
  });

  test('tampered signature (a flipped bit, a truncated or an extended signature)', async () => {
    const [h, p, sig] = good.split('.');
    const raw = Buffer.from(sig!, 'base64url');
    raw[10] ^= 0x01;
    await refusedEverywhere(`${h}.${p}.${raw.toString('base64url')}`, /signature/);
    await refusedEverywhere(`${h}.${p}.${Buffer.from(sig!, 'base64url').subarray(0, 32).toString('base64url')}`);
    await refusedEverywhere(`${h}.${p}.${Buffer.concat([Buffer.from(sig!, 'base64url'), Buffer.alloc(1)]).toString('base64url')}`);
  });

  test('non-canonical base64url (padding, trailing bits, standard alphabet)', async () => {
    const [h, p, sig] = good.split('.');
    await refusedEverywhere(`${h}=.${p}.${sig}`);
    await refusedEverywhere(`${h}.${p}.${sig}==`);
    // ES256 signatures are 64 bytes: the last of 86 characters carries 4 unused bits
    const last = sig!.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alphabet[alphabet.indexOf(last) ^ 0x01]!;
    const malleable = `${h}.${p}.${sig!.slice(0, -1)}${twin}`;
    assert.deepEqual(Buffer.from(malleable.split('.')[2]!, 'base64url'), Buffer.from(sig!, 'base64url'), 'same bytes, other spelling');
    await refusedEverywhere(malleable, /canonical/);
    await refusedEverywhere(`${h}.${p}.${Buffer.from(sig!, 'base64url').toString('base64')}`);
  });

  test('oversized tokens: just over the 8 KiB limit → 401; 1 MB → refused before it reaches the verifier', async () => {
    const pad = 'A'.repeat(9000);
    await refusedEverywhere(ours({ alg: 'ES256', kid, typ: 'at+jwt' }, { ...claims, pad }), /too long/);
    const huge = `${good.split('.')[0]}.${'A'.repeat(1024 * 1024)}.${good.split('.')[2]}`;
    for (const p of ['/api/v1/me', GATEWAY_PATH]) {
      const r = await fetch(s.url + p, { headers: { authorization: `Bearer ${huge}` } }).catch(() => null);
      // Node's header limit (16 KiB) answers 431 or closes the connection; never a 2xx or 5xx
      if (r) assert.ok([401, 431].includes(r.status), `${p}: ${r.status}`);
    }
    await assert.rejects(s.gh.services.tokens.verify(huge), (e: Error & { status?: number }) => e.status === 401);
    const form = await fetch(s.url + '/oauth2/introspect', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${huge.slice(0, 900_000)}`,
    });
    assert.equal(form.status, 401, 'no client credentials: refused before the token is looked at');
  });

  test('tokens of a deleted key (retired past its not_after)', async () => {
    const { keys, store } = s.gh.services;
    const oldKid = kid;
    const oldToken = await s.adminToken();
    assert.equal(decodeProtectedHeader(oldToken).kid, oldKid);
    await keys.rotate();
    await keys.refresh(0);
    assert.equal((await s.api('GET', '/api/v1/me', { token: oldToken })).status, 200, 'within the overlap the old key verifies');
    await store.db.updateTable('signing_keys').set({ not_after: new Date(Date.now() - 1000).toISOString() }).where('kid', '=', oldKid).execute();
    await keys.refresh(0);
    await refusedEverywhere(oldToken, /unknown or retired key/);
    const fresh = await s.adminToken();
    assert.notEqual(decodeProtectedHeader(fresh).kid, oldKid);
    assert.equal((await s.api('GET', '/api/v1/me', { token: fresh })).status, 200);
  });
});

describe('canonical base64url without re-encoding (perf, issue 9)', () => {
  test('canonicalB64url agrees with decode + re-encode on every base64url-alphabet text', async () => {
    const fc = (await import('fast-check')).default;
    const { canonicalB64url } = await import('../src/security/jwt-guard.ts');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const reencodes = (s: string) => Buffer.from(s, 'base64url').toString('base64url') === s;
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...alphabet), { maxLength: 40 }), fc.string({ maxLength: 5 }), (chars, pad) => {
        const seg = chars.join('');
        const text = `${pad}.${seg}.`;
        const start = pad.length + 1;
        assert.equal(canonicalB64url(text, start, start + seg.length), reencodes(seg), `segment '${seg}'`);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('duplicate-key test by counting (perf, issue 9)', () => {
  test('hasDuplicateKeysIn agrees with the full scan on random JSON objects, with and without repeated keys', async () => {
    const fc = (await import('fast-check')).default;
    const { hasDuplicateKeys, hasDuplicateKeysIn } = await import('../src/security/jwt-guard.ts');
    const key = fc.constantFrom('a', 'b', 'sub', 'x:y', ':', 'iss', 'k\\u003a', 'q"', 'c\\\\');
    const str = fc.constantFrom('', 'v', 'http://h:1', ':::', 'a"b', 'x\\y', '\\u003a', 'é');
    const leaf = fc.oneof(str, fc.integer(), fc.boolean(), fc.constant(null));
    const value = fc.oneof(leaf, fc.array(leaf, { maxLength: 3 }));
    // Objects written as text by hand, so keys can repeat and strings can hold escapes.
    const member = fc.tuple(key, value).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    const nested = fc.array(member, { maxLength: 4 }).map((ms) => `{${ms.join(',')}}`);
    const obj = fc.array(fc.oneof(member, fc.tuple(key, nested).map(([k, n]) => `${JSON.stringify(k)}:${n}`)), { maxLength: 8 }).map((ms) => `{${ms.join(',')}}`);
    fc.assert(
      fc.property(obj, (text) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        assert.equal(hasDuplicateKeysIn(text, parsed), hasDuplicateKeys(text), text);
      }),
      { numRuns: 5000 },
    );
    // And the hand-made cases: an escaped colon cannot make up for a dropped member.
    const tricky = '{"sub":"a","sub":"b","x":"\\u003a"}';
    assert.equal(hasDuplicateKeysIn(tricky, JSON.parse(tricky)), true);
  });
});
