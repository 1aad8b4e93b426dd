import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import readline from 'node:readline';
import v8 from 'node:v8';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';
import { startGatehouse, STORES, createUser, freePort, type TestServer } from './helpers.ts';
import { writeConfig } from './gateway-upstream.ts';

const MB = 1024 * 1024;
const SIZE = 50 * MB;

// Retained memory, not garbage waiting for a collection: the sampler collects before it reads.
// It measures what JavaScript holds (heap + Buffers/ArrayBuffers), where a body buffered whole
// would sit; RSS also moves with the allocator's arenas and socket buffers, which made it a
// noisy proxy (±5 MB run to run) for the same question.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function rssSampler() {
  gc();
  const held = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const base = held();
  let max = base;
  const t = setInterval(() => {
    gc();
    max = Math.max(max, held());
  }, 10);
  return { stop: () => (clearInterval(t), (Math.max(max, held()) - base) / MB) };
}

describe('gateway streaming: 50 MB both ways without buffering', () => {
  let s: TestServer;
  let peer: ChildProcessWithoutNullStreams;
  let lines: AsyncIterator<string>;
  let token: string;
  const ask = async (cmd: object): Promise<any> => {
    peer.stdin.write(JSON.stringify(cmd) + '\n');
    return JSON.parse((await lines.next()).value);
  };
  before(async () => {
    // Upstream and client live in another process: this process's memory is the gateway's.
    peer = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./gateway-peer.ts', import.meta.url))]);
    lines = readline.createInterface({ input: peer.stdout })[Symbol.asyncIterator]();
    const { upstream } = JSON.parse((await lines.next()).value);
    const cfg = { gateway: { upstreams: { ETM: upstream } }, limits: { default: { rate: 0, concurrency: 0 } } };
    s = await startGatehouse({ store: 'sqlite', env: { GATEHOUSE_CONFIG: writeConfig(cfg) } });
    token = await s.adminToken();
    await ask({ op: 'upload', url: s.url + '/etm/upload', token, size: 5 * MB }); // warm-up
  });
  after(async () => {
    peer?.stdin.end(JSON.stringify({ op: 'exit' }) + '\n');
    await s?.close();
    if (peer && peer.exitCode === null) await new Promise((r) => peer.once('exit', r));
  });

  test('upload: the upstream gets the first bytes before the client has finished sending; gateway memory stays flat', async () => {
    const mem = rssSampler();
    const { arrival, clientDoneAt } = await ask({ op: 'upload', url: s.url + '/etm/upload', token, size: SIZE });
    const delta = mem.stop();
    assert.equal(arrival.bytes, SIZE);
    assert.equal(arrival.headers['transfer-encoding'], 'chunked', 'streamed, not re-framed from a buffer');
    assert.ok(arrival.firstByteAt < clientDoneAt, 'first bytes upstream before the client finished sending');
    console.log(`# upload: gateway memory (heap + buffers) grew ${delta.toFixed(1)} MB`);
    assert.ok(delta < 10, `gateway memory (heap + buffers) grew ${delta.toFixed(1)} MB for a 50 MB upload`);
  });

  test('download: 50 MB come through with the upstream\'s Content-Length; gateway memory stays flat', async () => {
    const mem = rssSampler();
    const r = await ask({ op: 'download', url: s.url + `/etm/download?bytes=${SIZE}`, token });
    const delta = mem.stop();
    assert.equal(r.status, 200);
    assert.equal(r.length, String(SIZE));
    assert.equal(r.bytes, SIZE);
    console.log(`# download: gateway memory (heap + buffers) grew ${delta.toFixed(1)} MB`);
    assert.ok(delta < 10, `gateway memory (heap + buffers) grew ${delta.toFixed(1)} MB for a 50 MB download`);
  });
});

for (const store of STORES) {
  describe(`gateway revocation (${store})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startGatehouse({ store, config: { sampleModules: true } });
    });
    after(async () => s?.close());

    test('user deactivation: the very next Bearer and Basic call is refused; a permission change applies at once', async () => {
      const admin = await s.adminToken();
      const id = await createUser(s, admin, { username: `rev-${store}`, modules: ['VM', 'ETM'] });
      const t = await s.login(`rev-${store}`, 'User-Pass-123!');
      const basic = 'Basic ' + Buffer.from(`rev-${store}:User-Pass-123!`).toString('base64');
      const vm = () => fetch(s.url + '/msp/about.php', { headers: { authorization: `Bearer ${t}` } });
      const vmBasic = () => fetch(s.url + '/msp/about.php', { headers: { authorization: basic } });
      assert.equal((await vm()).status, 200);
      assert.equal((await vmBasic()).status, 200);
      assert.equal((await s.api('PATCH', `/api/v1/users/${id}`, { token: admin, body: { modules: ['ETM'] } })).status, 200);
      const noVm = await vm();
      assert.equal(noVm.status, 403);
      assert.match(await noVm.text(), /module VM/);
      assert.equal((await s.api('PATCH', `/api/v1/users/${id}`, { token: admin, body: { modules: ['VM'] } })).status, 200);
      assert.equal((await s.api('POST', `/api/v1/users/${id}/deactivate`, { token: admin })).status, 200);
      const r = await vm();
      assert.equal(r.status, 401);
      assert.match(r.headers.get('www-authenticate')!, /error="invalid_token", error_description="The user of this token is deactivated\."/);
      assert.match(await r.text(), /<SIMPLE_RETURN>[\s\S]*deactivated/);
      const b = await vmBasic();
      assert.equal(b.status, 401);
      assert.match(await b.text(), /deactivated/);
    });
  });
}

describe('gateway limits on Redis', () => {
  test('REDIS_URL: counters live in Redis (shared by nodes); unreachable Redis falls back to memory and says so', async () => {
    const a = await startGatehouse({ store: 'sqlite', config: { sampleModules: true }, env: { REDIS_URL: 'redis://127.0.0.1:6379' } });
    const dead = await startGatehouse({ store: 'sqlite', config: { sampleModules: true }, env: { REDIS_URL: `redis://127.0.0.1:${await freePort()}` } });
    try {
      const t = await a.adminToken();
      const call = () => fetch(a.url + '/msp/about.php', { headers: { authorization: `Bearer ${t}` } });
      const r1 = await call();
      const r2 = await call();
      assert.equal(r1.status, 200);
      assert.equal(Number(r1.headers.get('x-ratelimit-remaining')) - 1, Number(r2.headers.get('x-ratelimit-remaining')));
      const { Redis } = await import('ioredis');
      const redis = new Redis('redis://127.0.0.1:6379');
      const keys = await redis.keys(`gh:rate:VM*${a.gh.bootstrap.subscriptionId}*`);
      await redis.quit();
      assert.equal(keys.length, 1, 'the rate counter is in Redis');
      const routes = await a.api('GET', '/api/v1/routes', { token: t });
      assert.equal(routes.body.limits.backend, 'redis');

      const td = await dead.adminToken();
      const r = await fetch(dead.url + '/msp/about.php', { headers: { authorization: `Bearer ${td}` } });
      assert.equal(r.status, 200, 'requests never fail because Redis is down');
      assert.equal(r.headers.get('x-ratelimit-remaining'), '299');
      assert.match(dead.logs.text, /Redis unreachable; counting in memory/);
    } finally {
      await a.close();
      await dead.close();
    }
  });
});
