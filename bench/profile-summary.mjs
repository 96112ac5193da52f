#!/usr/bin/env node
// Where a server's CPU went, from a V8 `.cpuprofile` (`BENCH_CPU_PROF=DIR npm run bench` writes one per
// vault server): the share of the samples by layer and by package or vault module (self time), and
// the functions with the most self and total time. Idle time is left out of every share. The profile
// samples the main thread only (libuv's thread pool, where fsync runs, is not in it), and total times
// of async functions stop at their first `await`: what runs after it is counted under the microtask
// queue, not under its caller. Self times by layer are the reliable view.
//
//   node bench/profile-summary.mjs FILE.cpuprofile [top=25]

import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/profile-summary.mjs FILE.cpuprofile [top]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8'));

const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);

/** The package (`node_modules/<name>`), the vault's own module (`dist/<dir>/<file>`), or Node's internals. */
const area = (url, name) => {
  if (!url) return `(${name.replace(/[()]/g, '') || 'native'})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const own = /\/dist\/(.+)\.js$/.exec(url);
  if (own) return `vault: ${own[1]}`;
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\/.*\/(bench\/)/, '$1');
};
/** Coarser than `area`: what kind of work the sample was doing. */
const layers = [
  ['SQL building and compiling (kysely)', (a) => a === 'kysely'],
  [
    'SQLite engine (better-sqlite3: run, all, iterate)',
    (a) => ['(run)', '(all)', '(iterate)', '(get)'].includes(a),
  ],
  ['PostgreSQL client (pg, pg-protocol, pg-pool)', (a) => /^pg(-|$)/.test(a)],
  [
    'socket writes (writev, writeBuffer, writeUtf8String)',
    (a) => /^\((writev|writeBuffer|writeUtf8String|writeLatin1String)\)$/.test(a),
  ],
  ['fsync hand-off and other fs calls', (a) => a === '(fsync)' || a.startsWith('node:internal/fs')],
  [
    'HTTP stack (fastify, find-my-way, ajv, fast-json-stringify, node:http, streams)',
    (a) =>
      /^(fastify|@fastify\/|find-my-way|ajv|fast-json-stringify|fast-uri|light-my-request|avvio)/.test(a) ||
      /^node:(_http|net|internal\/stream|internal\/streams|events|internal\/http)/.test(a),
  ],
  [
    'crypto (node:crypto and its native calls)',
    (a) =>
      a.startsWith('node:internal/crypto') ||
      a === 'node:crypto' ||
      /^\((initiv|update|final|digest|Hash|CipherBase|setAAD|setAuthTag|oneShotDigest|timingSafeEqual|randomFillSync|getAuthTag)\)$/.test(
        a,
      ),
  ],
  ["the vault's own code (dist/)", (a) => a.startsWith('vault: ')],
  ['logging and metrics (pino, prom-client)', (a) => /^(pino|@pinojs\/|prom-client)/.test(a)],
  ['garbage collector', (a) => a === '(garbage collector)'],
  ['everything else (microtasks, timers, buffers, V8 (program), …)', () => true],
];
const layerOf = (a) => layers.find(([, test]) => test(a))[0];

const label = (n) => {
  const { functionName, url, lineNumber } = n.callFrame;
  const where = url ? `${area(url, functionName)}:${lineNumber + 1}` : '';
  return `${functionName || '(anonymous)'} ${where}`.trim();
};

const self = new Map();
const total = new Map();
const byArea = new Map();
const byLayer = new Map();
let busy = 0;
let idle = 0;
const add = (map, key, ms) => map.set(key, (map.get(key) ?? 0) + ms);

for (let i = 0; i < profile.samples.length; i++) {
  const ms = (profile.timeDeltas[i] ?? 0) / 1000;
  const node = nodes.get(profile.samples[i]);
  if (node.callFrame.functionName === '(idle)') {
    idle += ms;
    continue;
  }
  busy += ms;
  add(self, label(node), ms);
  const where = area(node.callFrame.url, node.callFrame.functionName);
  add(byArea, where, ms);
  add(byLayer, layerOf(where), ms);
  // Total time: every distinct function on the stack, once.
  const seen = new Set();
  for (let id = node.id; id !== undefined; id = parent.get(id)) {
    const key = label(nodes.get(id));
    if (!seen.has(key)) {
      seen.add(key);
      add(total, key, ms);
    }
  }
}

const print = (title, map, n) => {
  console.log(`\n${title}`);
  const rows = [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
  for (const [key, ms] of rows) {
    console.log(`  ${((ms / busy) * 100).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(7)} ms  ${key}`);
  }
};

console.log(`${file}: ${busy.toFixed(0)} ms busy, ${idle.toFixed(0)} ms idle`);
print('Self time by layer', byLayer, layers.length);
print('Self time by package or vault module', byArea, top);
print('Self time by function', self, top);
print('Total time by function (on the stack)', total, top);
