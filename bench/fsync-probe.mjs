// The disk's durable-write latency while something else keeps the CPUs busy: a 4 KiB append and an
// fdatasync, one every millisecond, for the given seconds, from a process of its own; the time of each
// from the call to its return includes the wait for a CPU once the disk has answered. Prints JSON.
//
//   node bench/fsync-probe.mjs DIR SECONDS

import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile } from './load.mjs';

const [dir, seconds] = process.argv.slice(2);
const fd = openSync(join(dir, 'busy-sync-probe'), 'w');
const block = Buffer.alloc(4096, 1);
const times = [];
const end = performance.now() + Number(seconds) * 1000;
try {
  while (performance.now() < end) {
    const started = performance.now();
    writeSync(fd, block);
    fdatasyncSync(fd);
    times.push(performance.now() - started);
    await sleep(1);
  }
} finally {
  closeSync(fd);
}
times.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    n: times.length,
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
    p999Ms: percentile(times, 99.9),
  }),
);
