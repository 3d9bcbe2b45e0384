// Drives HTTP load from a separate process (autocannon), pinned to LOAD_CPU with taskset so
// the generator's core is known, and samples the target's RSS/CPU during the measured run.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, resourceSampler } from './proc.mjs';

/** The core the load generator is pinned to (the last one). */
export const LOAD_CPU = Math.max(0, (await import('node:os')).cpus().length - 1);
const TASKSET = ['/usr/bin/taskset', '/bin/taskset'].find((p) => existsSync(p));
const CHILD = join(import.meta.dirname, '..', 'load', 'autocannon.mjs');

export function loadGeneratorCommand(script, arg) {
  return TASKSET
    ? { cmd: TASKSET, args: ['-c', String(LOAD_CPU), process.execPath, script, arg] }
    : { cmd: process.execPath, args: [script, arg] };
}

/**
 * Runs autocannon against `opts.url` and returns its figures plus the target process's peak
 * RSS and CPU during the measured run (not the warm-up).
 */
export async function runLoad(name, opts, targetPid) {
  const { cmd, args } = loadGeneratorCommand(CHILD, JSON.stringify(opts));
  const gen = startProcess(`${name}-autocannon`, cmd, args, { ipc: true });
  const budgetMs = ((opts.warmupSec ?? 0) + opts.durationSec) * 1000 + 60_000;
  try {
    const first = await gen.waitMessage((m) => m.type === 'measuring' || m.type === 'error', budgetMs, 'warm-up');
    if (first.type === 'error') throw new Error(`autocannon: ${first.error}`);
    const sampler = targetPid ? resourceSampler(targetPid) : null;
    sampler?.start();
    const msg = await gen.waitMessage((m) => m.type === 'result' || m.type === 'error', budgetMs, 'load result');
    const res = sampler?.stop();
    if (msg.type === 'error') throw new Error(`autocannon: ${msg.error}`);
    return { ...msg.result, peakRssMb: res?.peakRssMb, cpuPct: res?.cpuPct };
  } finally {
    await gen.stop(2_000);
  }
}
