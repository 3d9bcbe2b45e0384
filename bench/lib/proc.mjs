// Child processes for the harness: every system under test and every load generator runs in
// its own process, so its RSS and CPU are read from /proc separately. All children are
// tracked and killed on exit, on errors and on SIGINT/SIGTERM.

import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, mkdirSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { sleep, withTimeout } from './util.mjs';

const live = new Set();
const CLK_TCK = 100; // Linux USER_HZ; /proc/<pid>/stat counts CPU time in these ticks
export const LOG_DIR = join(import.meta.dirname, '..', 'results', 'logs');

function killAll(signal = 'SIGKILL') {
  for (const child of live) {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => killAll('SIGKILL'));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\n[bench] ${sig}: stopping ${live.size} child process(es)\n`);
      killAll('SIGKILL');
      process.exit(130);
    });
  }
}

/**
 * Spawns `cmd args` with its output going to bench/results/logs/<name>.log (and the last
 * 16 KiB kept in memory for error messages). `ipc: true` opens a message channel.
 */
export function startProcess(name, cmd, args, { env = {}, ipc = false, cwd } = {}) {
  hookExit();
  mkdirSync(LOG_DIR, { recursive: true });
  const logPath = join(LOG_DIR, `${name}.log`);
  const logFile = createWriteStream(logPath);
  const child = spawn(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (chunk) => {
    logFile.write(chunk);
    tail = (tail + chunk.toString()).slice(-16_384);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  live.add(child);
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      logFile.end();
      resolve({ code, signal });
    });
    child.on('error', (err) => {
      live.delete(child);
      tail += `\nspawn error: ${err.message}`;
      resolve({ code: -1, signal: null });
    });
  });
  const messages = [];
  const waiters = [];
  if (ipc) {
    child.on('message', (msg) => {
      const i = waiters.findIndex((w) => w.match(msg));
      if (i >= 0) waiters.splice(i, 1)[0].resolve(msg);
      else messages.push(msg);
    });
  }
  const proc = {
    name,
    child,
    pid: child.pid,
    logPath,
    exited,
    get tail() {
      return tail;
    },
    get alive() {
      return child.exitCode === null && child.signalCode === null;
    },
    send(msg) {
      child.send(msg);
    },
    /** Resolves with the first message (queued or future) for which `match` is true. */
    waitMessage(match, timeoutMs, what) {
      const i = messages.findIndex(match);
      if (i >= 0) return Promise.resolve(messages.splice(i, 1)[0]);
      const p = new Promise((resolve, reject) => {
        waiters.push({ match, resolve });
        exited.then(({ code, signal }) =>
          reject(new Error(`${name} exited (code ${code}, signal ${signal}) while waiting for ${what}\n${tail.slice(-3000)}`)),
        );
      });
      return withTimeout(p, timeoutMs, `${name}: ${what}`);
    },
    /** SIGTERM, then SIGKILL after `graceMs`. */
    async stop(graceMs = 5_000) {
      if (!proc.alive) return exited;
      child.kill('SIGTERM');
      const done = await Promise.race([exited, sleep(graceMs).then(() => null)]);
      if (done) return done;
      child.kill('SIGKILL');
      return exited;
    },
  };
  return proc;
}

/** RSS (MiB) and cumulative CPU time (ms) of a live process, from /proc; null if it is gone. */
export function procStats(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    return { rssMb: rssKb / 1024, cpuMs: (ticks * 1000) / CLK_TCK };
  } catch {
    return null;
  }
}

/**
 * Samples a process's RSS every `intervalMs` between start() and stop(); stop() returns
 * peak RSS and the average CPU use over the window (percent of one core).
 */
export function resourceSampler(pid, intervalMs = 100) {
  let peak = 0;
  let timer;
  let t0;
  let cpu0;
  return {
    start() {
      const s = procStats(pid);
      peak = s?.rssMb ?? 0;
      cpu0 = s?.cpuMs ?? 0;
      t0 = performance.now();
      timer = setInterval(() => {
        const x = procStats(pid);
        if (x && x.rssMb > peak) peak = x.rssMb;
      }, intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      const s = procStats(pid);
      if (s && s.rssMb > peak) peak = s.rssMb;
      const wallMs = performance.now() - t0;
      const cpuPct = s && wallMs > 0 ? ((s.cpuMs - cpu0) / wallMs) * 100 : Number.NaN;
      return { peakRssMb: peak, cpuPct, rssMb: s?.rssMb ?? Number.NaN };
    },
  };
}

/** Runs a command to completion; resolves {code, stdout, stderr}. Bounded by `timeoutMs`. */
export function runCommand(cmd, args, { env = {}, cwd, timeoutMs = 300_000 } = {}) {
  hookExit();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      stderr += `\n[bench] killed after ${timeoutMs} ms`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code: -1, stdout, stderr: stderr + err.message });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

export function stopAll() {
  killAll('SIGKILL');
}

/** CPU time (ms) of every postgres process, from /proc/<pid>/stat (utime + stime, 10 ms ticks). */
export function postgresCpuMs() {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      if (!stat.slice(stat.indexOf('(') + 1, close).startsWith('postgres')) continue;
      const f = stat.slice(close + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // the process ended while we read
    }
  }
  return ticks * 10;
}
