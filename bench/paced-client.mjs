// The open-loop load generator of `npm run bench` (bench/suite.ts, paced()), in a process of its
// own: requests at a fixed rate, each one's latency counted from the moment it was due, so a
// stall is not hidden by coordinated omission. It runs apart from the orchestrator so that the
// orchestrator's heap (results, earlier scenarios) and its GC pauses (up to 8.6 ms measured,
// --trace-gc) never land in the measured latencies.
//
// node bench/paced-client.mjs '<json>'   with json:
//   { targets: [{ url, headers }], rate, seconds, warmupSecs, blockSecs, connections, out }
// Request i goes to targets[floor(i / (rate × blockSecs)) mod targets.length] (one target:
// always that one). Latencies (ms, warm-up included) go to `out` as raw float64s; stdout gets one
// JSON line: { t0Hr, skip, total, errors, non2xx, elapsed }, t0Hr being request 0's due time on the
// monotonic clock (process.hrtime.bigint(), ns, as a string), for aligning with the orchestrator's
// own clock. The measured window is the requests after the first `skip` (warm-up: at least one
// whole cycle of the targets).
import { writeFileSync } from 'node:fs';
import { Pool } from 'undici';

const cfg = JSON.parse(process.argv[2] ?? '{}');
const { rate, seconds, warmupSecs = 0, blockSecs = 1, connections = 64, out } = cfg;
if (!Array.isArray(cfg.targets) || cfg.targets.length === 0 || !(rate > 0) || !(seconds > 0) || typeof out !== 'string') {
  console.error('usage: node bench/paced-client.mjs \'{"targets":[{"url":"http://127.0.0.1:8080/x","headers":{}}],"rate":1000,"seconds":8,"out":"/tmp/lat.f64"}\'');
  process.exit(2);
}
const targets = cfg.targets.map((t) => {
  const u = new URL(t.url);
  return { path: u.pathname + u.search, headers: t.headers ?? {}, pool: new Pool(u.origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 }) };
});
const perBlock = Math.max(1, Math.round(rate * blockSecs));
// One pool per target for warm-up and measurement: the measured window starts on warm connections
// (the warm-up covers at least one whole cycle, so every target has had its block before it).
const skip = targets.length === 1 ? Math.round(rate * warmupSecs) : Math.max(Math.round(rate * warmupSecs), perBlock * targets.length);
const total = skip + Math.round(rate * seconds);
const lat = new Float64Array(total);
let sent = 0;
let done = 0;
let errors = 0;
let non2xx = 0;
const t0 = performance.now();
const t0Hr = process.hrtime.bigint();
await new Promise((resolve) => {
  const tick = () => {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - t0) / 1000) * rate));
    while (sent < due) {
      const i = sent++;
      const dueAt = t0 + (i / rate) * 1000;
      const target = targets[targets.length === 1 ? 0 : Math.floor(i / perBlock) % targets.length];
      // undici's dispatch with a minimal handler: no body stream, no promise per request, so
      // the client spends little of its core per request and sends on time (fewer bursts).
      const finish = (failed) => {
        if (failed && i >= skip) errors++;
        lat[i] = performance.now() - dueAt;
        if (++done === total) resolve();
      };
      target.pool.dispatch(
        { path: target.path, method: 'GET', headers: target.headers },
        {
          onConnect() {},
          onHeaders(status) {
            if (status >= 300 && i >= skip) non2xx++;
            return true;
          },
          onData() {
            return true;
          },
          onComplete() {
            finish(false);
          },
          onError() {
            finish(true);
          },
        },
      );
    }
    if (sent < total) setImmediate(tick);
  };
  tick();
});
const elapsed = (performance.now() - t0) / 1000 - skip / rate;
for (const t of targets) await t.pool.close();
writeFileSync(out, Buffer.from(lat.buffer));
console.log(JSON.stringify({ t0Hr: String(t0Hr), skip, total, errors, non2xx, elapsed }));
