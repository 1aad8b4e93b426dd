/**
 * perf (issue 9): the per-request histograms are LeanHistogram, not prom-client's Histogram. A
 * scraper must see the same text: same series, labels, order and values for the same observations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { LeanCounter, LeanHistogram } from '../src/ops/lean-histogram.ts';

test('LeanHistogram renders exactly what prom-client renders for the same observations', async () => {
  const bounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
  const a = new Registry();
  const b = new Registry();
  const theirs = new Histogram({ name: 'x_duration_seconds', help: 'Time "to" answer\\ a request', labelNames: ['method', 'route'], buckets: bounds, registers: [a] });
  const ours = new LeanHistogram<'method' | 'route'>('x_duration_seconds', 'Time "to" answer\\ a request', ['method', 'route'], bounds, b);
  // Values on bucket edges, between them, above the last bound, zero and tiny; label values
  // that need escaping; several children.
  const values = [0, 1e-9, 0.001, 0.0010001, 0.003, 0.01, 0.2, 1, 2.5, 2.6, 100, ...Array.from({ length: 500 }, (_, i) => (i * 7919 % 1000) / 300)];
  const children = [
    { method: 'GET', route: '/a' },
    { method: 'POST', route: '/auth' },
    { method: 'GET', route: '/weird "quoted" \\ route\nline' },
  ];
  for (const [i, v] of values.entries()) {
    const l = children[i % children.length]!;
    theirs.labels(l).observe(v);
    ours.labels(l).observe(v);
  }
  assert.equal(await b.metrics(), await a.metrics());
  ours.reset();
  theirs.reset();
  assert.equal(await b.metrics(), await a.metrics());
  // A child kept across the reset goes on observing, as prom-client's does.
  const keptTheirs = theirs.labels(children[1]!);
  const keptOurs = ours.labels(children[1]!);
  theirs.reset();
  ours.reset();
  keptTheirs.observe(0.02);
  keptOurs.observe(0.02);
  assert.equal(await b.metrics(), await a.metrics());
  assert.match(await b.metrics(), /x_duration_seconds_count\{method="POST",route="\/auth"\} 1/);
});

test('LeanCounter renders exactly what prom-client renders for the same counts', async () => {
  const a = new Registry();
  const b = new Registry();
  const theirs = new Counter({ name: 'x_requests_total', help: 'Requests "answered"\\ by route', labelNames: ['method', 'route', 'status'], registers: [a] });
  const ours = new LeanCounter<'method' | 'route' | 'status'>('x_requests_total', 'Requests "answered"\\ by route', ['method', 'route', 'status'], b);
  // Nothing counted yet: the same HELP/TYPE lines and no series.
  assert.equal(await b.metrics(), await a.metrics());
  const children = [
    { method: 'GET', route: '/a', status: '200' },
    { method: 'POST', route: '/auth', status: '401' },
    { method: 'GET', route: '/weird "quoted" \\ route\nline', status: '502' },
    { method: 'GET', route: '/a', status: '404' },
  ];
  // A child kept and counted many times, as the hot paths do, and one looked up afresh each time.
  const kept = [theirs.labels(children[0]!), ours.labels(children[0]!)];
  for (let i = 0; i < 1000; i++) {
    const l = children[(i * 7) % children.length]!;
    if (l === children[0]) {
      kept[0]!.inc();
      kept[1]!.inc();
    } else {
      theirs.labels(l).inc();
      ours.labels(l).inc();
    }
  }
  assert.equal(await b.metrics(), await a.metrics());
  assert.match(await b.metrics(), /x_requests_total\{method="GET",route="\/a",status="200"\} 250/);
  ours.reset();
  theirs.reset();
  assert.equal(await b.metrics(), await a.metrics());
  // The children kept by the hot paths go on counting after a reset, as prom-client's do.
  kept[0]!.inc();
  kept[1]!.inc();
  assert.equal(await b.metrics(), await a.metrics());
  assert.match(await b.metrics(), /x_requests_total\{method="GET",route="\/a",status="200"\} 1/);
});
