// Small shared helpers for the benchmark harness: time, statistics, argument parsing.
// Times are wall-clock milliseconds with sub-ms resolution (performance.timeOrigin + now()),
// so two processes on this machine can compare their stamps (same system clock).

import { performance } from 'node:perf_hooks';
import { setTimeout as sleepMs } from 'node:timers/promises';

/** Wall-clock ms with µs resolution; comparable across processes on one machine. */
export const wallMs = () => performance.timeOrigin + performance.now();

export const sleep = (ms) => sleepMs(ms);

/** Nearest-rank percentile of an unsorted array (p in 0..100); NaN when empty. */
export function percentile(values, p) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** `p50 … p90 … p99 … max … ms` of an unsorted array of milliseconds (the probes' report lines). */
export function percentilesLine(values) {
  const f = (p) => percentile(values, p).toFixed(2);
  return `p50 ${f(50)}  p90 ${f(90)}  p99 ${f(99)}  max ${Math.max(...values).toFixed(2)} ms`;
}

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function round(value, digits = 2) {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Polls `check` every `intervalMs` until it returns a truthy value or `timeoutMs` passes. */
export async function waitUntil(check, { timeoutMs, intervalMs = 50, what = 'condition' }) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  const why = lastError ? `: ${lastError.message ?? lastError}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
}

/** Rejects with a clear message if `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      timer.unref?.();
    }),
  ]).finally(() => clearTimeout(timer));
}

export function parseArgs(argv) {
  const out = { quick: false, only: [], runs: undefined, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') out.quick = true;
    else if (a === '--help' || a === '-h') out.help = true;
    else if (a === '--only') out.only.push(...String(argv[++i] ?? '').split(',').filter(Boolean));
    else if (a.startsWith('--only=')) out.only.push(...a.slice(7).split(',').filter(Boolean));
    else if (a === '--runs') out.runs = Number(argv[++i]);
    else if (a.startsWith('--runs=')) out.runs = Number(a.slice(7));
    else if (a === '--systems') out.systems = String(argv[++i] ?? '').split(',').filter(Boolean);
    else if (a.startsWith('--systems=')) out.systems = a.slice(10).split(',').filter(Boolean);
    else throw new Error(`unknown argument ${a}`);
  }
  if (out.runs !== undefined && (!Number.isInteger(out.runs) || out.runs < 1 || out.runs > 50)) {
    throw new Error('--runs must be an integer between 1 and 50');
  }
  return out;
}

export function log(...args) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${args.join(' ')}\n`);
}
