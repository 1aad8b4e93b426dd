// Reference for issue 9's password scenario: the ceiling of argon2id verification on one core
// (the same hash and parameters as Gatehouse's users: m=19456 KiB, t=2, p=1, @node-rs/argon2),
// called in a tight loop, one at a time (on one core, more in flight only adds contention: measured 59/s with 1, 49/s with 2, 42/s with 4).
// Prints {"perSec": n}. Usage: taskset -c 0 node bench/refs/argon2-loop.mjs <seconds>
import { hash, verify } from '@node-rs/argon2';

const seconds = Number(process.argv[2] ?? 5);
const OPTIONS = { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 };
const pw = 'Bench-Pass-123!';
const h = await hash(pw, OPTIONS);
for (let i = 0; i < 5; i++) await verify(h, pw);
let n = 0;
const t0 = performance.now();
const until = t0 + seconds * 1000;
async function worker() {
  while (performance.now() < until) {
    if (!(await verify(h, pw))) throw new Error('verify failed');
    n++;
  }
}
const inFlight = Number(process.env.ARGON2_IN_FLIGHT ?? 1);
await Promise.all(Array.from({ length: inFlight }, worker));
console.log(JSON.stringify({ perSec: Math.round((n / (performance.now() - t0)) * 1000), inFlight }));
