/**
 * perf (issue 9): make room in an insertion-ordered Map used as a bounded cache by dropping its
 * oldest entries, 1/32 of the bound at a time.
 *
 * Dropping one entry per insert with `map.delete(map.keys().next().value)` looks O(1) but is
 * not in V8: deleted entries stay as holes at the front of the table until it is rehashed, and
 * every new iterator walks over them, so at 50,000 entries each insert cost ~11 µs (measured:
 * bench/vexp2.mts style microbenchmark) against ~0.15 µs when evicting in batches.
 */
export function makeRoom<K, V>(map: Map<K, V>, max: number): void {
  if (map.size < max) return;
  let n = Math.max(1, max >> 5) + (map.size - max);
  for (const k of map.keys()) {
    map.delete(k);
    if (--n <= 0) break;
  }
}
