#!/usr/bin/env node
// Route matching cost as the API grows: a plan with 10, 100 and 1 000 operations (path templates
// with parameters, several methods), then the time per resolve() of requests spread over all of
// them. find-my-way's radix tree should keep it flat. Prints ns per lookup; see bench/README.md.
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileSync, mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { benchWorkdir, requireTools } from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
requireTools(root, ['openssl']);
const { cert, key } = benchWorkdir(root, `routes-${Date.now()}`);
const { values: opts } = parseArgs({
  options: { lookups: { type: 'string', default: '2000000' }, rounds: { type: 'string', default: '5' }, out: { type: 'string' } },
});
const { parseSidecarConfig } = await import(join(root, 'dist/config/load.js'));
const { compilePlan } = await import(join(root, 'dist/pipeline/plan.js'));

const LOOKUPS = Number(opts.lookups);
const ROUNDS = Number(opts.rounds);
const resources = ['orders', 'pets', 'users', 'invoices', 'shipments', 'carts', 'reviews', 'tickets', 'files', 'reports'];

function planWith(n) {
  // n operations: resource groups × versions, each with a collection, an item and a sub-resource.
  const routes = [];
  for (let i = 0; routes.length < n; i++) {
    const r = `${resources[i % resources.length]}${Math.floor(i / resources.length)}`;
    routes.push({ id: `list-${r}`, path: `/v1/${r}`, methods: ['GET'] });
    routes.push({ id: `create-${r}`, path: `/v1/${r}`, methods: ['POST'] });
    routes.push({ id: `get-${r}`, path: `/v1/${r}/:id`, methods: ['GET'] });
    routes.push({ id: `sub-${r}`, path: `/v1/${r}/:id/items/:itemId`, methods: ['GET'] });
  }
  routes.length = n;
  const text = JSON.stringify({ listeners: { inbound: { tls: { cert, key } } }, upstream: { url: 'http://127.0.0.1:1' }, routes });
  return { plan: compilePlan(parseSidecarConfig('bench.yaml', text).config), routes };
}

const results = [];
for (const n of [10, 100, 1000]) {
  const { plan, routes } = planWith(n);
  // Requests spread over every operation, concrete paths.
  const requests = routes.map((r) => [r.methods[0], r.path.replace(':id', '42').replace(':itemId', '7')]);
  for (const [m, p] of requests) if (plan.resolve(m, p).route === undefined) throw new Error(`no route for ${m} ${p}`);
  // Two traffic shapes: the same 10 hot operations whatever the API's size (isolates the tree's
  // size), and requests spread over every operation (adds the CPU cache cost of a larger working set).
  const measure = (set) => {
    const perRound = [];
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = process.hrtime.bigint();
      let sink = 0;
      for (let i = 0; i < LOOKUPS; i++) {
        const [m, p] = set[i % set.length];
        sink += plan.resolve(m, p).route.id.length;
      }
      const ns = Number(process.hrtime.bigint() - t0) / LOOKUPS;
      if (sink === 0) throw new Error('unreachable');
      perRound.push(Math.round(ns * 10) / 10);
    }
    perRound.sort((a, b) => a - b);
    return { median: perRound[Math.floor(ROUNDS / 2)], rounds: perRound };
  };
  const hot = measure(requests.slice(0, 10));
  const spread = measure(requests);
  results.push({
    operations: n,
    hot10_ns_per_lookup: hot.median,
    spread_ns_per_lookup: spread.median,
    hot10_rounds: hot.rounds,
    spread_rounds: spread.rounds,
  });
  console.log(
    `${String(n).padStart(5)} operations: ${hot.median} ns per lookup (10 hot operations), ${spread.median} ns (spread over all ${n})`,
  );
}
const ratio = Math.round((results[2].hot10_ns_per_lookup / results[0].hot10_ns_per_lookup) * 100) / 100;
const spreadRatio = Math.round((results[2].spread_ns_per_lookup / results[0].spread_ns_per_lookup) * 100) / 100;
console.log(`1 000 vs 10 operations: ${ratio}× (hot set), ${spreadRatio}× (spread)`);
const out = opts.out ?? join(root, 'bench/results', `routes-${new Date().toISOString().slice(0, 19).replace(/:/g, '-')}.json`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      lookups: LOOKUPS,
      results,
      ratio_1000_vs_10_hot: ratio,
      ratio_1000_vs_10_spread: spreadRatio,
    },
    null,
    2,
  ) + '\n',
);
console.log(`written: ${out}`);
