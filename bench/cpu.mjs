// CPU accounting from /proc (Linux): the whole machine, a process's main thread, and a PostgreSQL
// server's process tree.
// Elsewhere every function returns `undefined` and the figures that need it are left out.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond;
const clockTicks = () => {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
};

/** Busy and total CPU seconds of the whole machine since boot, summed over its CPUs. */
export const machineCpuSeconds = () => {
  if (!existsSync('/proc/stat')) return undefined;
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  // cpu user nice system idle iowait irq softirq steal ...
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq + (steal ?? 0);
  return { busy: busy / clockTicks(), total: (busy + idle + iowait) / clockTicks() };
};

/** Share of the machine's CPU time that was busy between two `machineCpuSeconds()` readings. */
export const busyShare = (before, after) =>
  before && after && after.total > before.total
    ? (after.busy - before.busy) / (after.total - before.total)
    : undefined;

const statFields = (pid) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces; the fields after it are space-separated.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
};

/**
 * CPU seconds used so far by a PostgreSQL server: the postmaster, its live children, and the children
 * it has already reaped (cutime/cstime).
 */
export const postgresCpuSeconds = (postmasterPid) => {
  // After the command name: [0]=state [1]=ppid ... [11]=utime [12]=stime [13]=cutime [14]=cstime.
  const master = postmasterPid ? statFields(postmasterPid) : undefined;
  if (!master) return undefined;
  let total = Number(master[11]) + Number(master[12]) + Number(master[13]) + Number(master[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === postmasterPid) continue;
    const f = statFields(entry);
    if (f && Number(f[1]) === postmasterPid) total += Number(f[11]) + Number(f[12]);
  }
  return total / clockTicks();
};

/**
 * CPU seconds used so far by this process's main thread (the event loop): its task has the process's
 * own id. The rest of the process's CPU is its other threads: worker threads (the vault's audit
 * writer and checkpointer), V8's garbage-collector helpers, libuv's thread pool.
 */
export const mainThreadCpuSeconds = () => {
  const f = statFields(`${process.pid}/task/${process.pid}`);
  return f ? (Number(f[11]) + Number(f[12])) / clockTicks() : undefined;
};
