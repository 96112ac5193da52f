#!/usr/bin/env node
// What a vault server allocated that outlived a young-generation collection, from a V8 `.heapprofile`
// (`BENCH_HEAP_PROF=DIR npm run bench` writes one per vault server): bytes by allocating function (self)
// and the heaviest allocation stacks. Those objects are copied by every scavenge they live through
// and then promoted: what makes the scavenges long and fills the old generation.
//
//   node bench/heap-summary.mjs FILE.heapprofile [top=20]

import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/heap-summary.mjs FILE.heapprofile [top]');
  process.exit(2);
}
const top = Number(topArg ?? 20);
const { head } = JSON.parse(readFileSync(file, 'utf8'));

const frameName = ({ functionName, url, lineNumber }) =>
  `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}`;

const bySelf = new Map();
const stacks = [];
let total = 0;
const walk = (node, stack) => {
  const here = [...stack, frameName(node.callFrame)];
  if (node.selfSize > 0) {
    total += node.selfSize;
    bySelf.set(here.at(-1), (bySelf.get(here.at(-1)) ?? 0) + node.selfSize);
    stacks.push({ size: node.selfSize, stack: here });
  }
  for (const child of node.children) walk(child, here);
};
walk(head, []);

const share = (size) => `${((size / total) * 100).toFixed(1).padStart(5)} %`;
console.log(`${(total / 1e6).toFixed(1)} MB sampled\n\nby allocating function (self):`);
for (const [name, size] of [...bySelf].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${share(size)}  ${name}`);
}
console.log('\nheaviest stacks (innermost last):');
for (const { size, stack } of stacks.sort((a, b) => b.size - a.size).slice(0, Math.ceil(top / 2))) {
  console.log(`${share(size)}  ${stack.slice(-6).join(' > ')}`);
}
