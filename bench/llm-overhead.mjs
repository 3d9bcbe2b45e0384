// What Taskgate adds to an LLM call: time to first token delta at the client minus time to first
// delta at the provider, for sequential streamed calls. A scripted OpenAI-compatible provider and
// the client run in this process; Taskgate (dist/, `npm run build` first) runs as a child process
// with embedded PGlite. Usage: node bench/llm-overhead.mjs [--calls 30] [--warmup 5]
// [--provider-ttfd-ms 0] [--json]. Real providers take 0.2–2 s to a first token; with 0 the
// fake answers at once, so any work Taskgate overlaps with the call shows up as delivery time.
//
// Per call: overhead = (client first delta − client send) − (provider first delta − provider
// request received) = dispatch (send → provider request: submit, queue, claim, prompt events) +
// delivery (provider delta → client: SDK parse, hub, route, socket).

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const CALLS = opt('calls', 30);
const WARMUP = opt('warmup', 5);
const JSON_OUT = args.includes('--json');
const PROVIDER_TTFD_MS = opt('provider-ttfd-ms', 0);
const ADMIN_KEY = 'sk_bench_llm_overhead_0123456789abcdef';
const now = () => performance.timeOrigin + performance.now();

// ---- the provider: OpenAI Chat Completions SSE, first delta written at once ----
const provider = { calls: [] };
const upstream = createServer((req, res) => {
  const received = now();
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', async () => {
    if (PROVIDER_TTFD_MS) await sleep(PROVIDER_TTFD_MS);
    const call = { received, firstSent: 0 };
    provider.calls.push(call);
    const model = JSON.parse(body).model;
    const chunk = (delta, finish = null) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-b', object: 'chat.completion.chunk', created: 0, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    call.firstSent = now();
    res.write(chunk({ role: 'assistant', content: 't0 ' }));
    for (let i = 1; i < 20; i++) res.write(chunk({ content: `t${i} ` }));
    res.write(chunk({}, 'stop'));
    res.write(`data: ${JSON.stringify({ id: 'chatcmpl-b', object: 'chat.completion.chunk', created: 0, model, choices: [], usage: { prompt_tokens: 12, completion_tokens: 20, total_tokens: 32 } })}\n\n`);
    res.end('data: [DONE]\n\n');
  });
});
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamUrl = `http://127.0.0.1:${upstream.address().port}/v1`;

// ---- Taskgate ----
const dataDir = mkdtempSync(join(tmpdir(), 'taskgate-llm-bench-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'dist', 'cli', 'main.js'), 'serve', '--port', String(port)], {
  env: {
    PATH: process.env.PATH, TASKGATE_DATA_DIR: dataDir, TASKGATE_ADMIN_KEY: ADMIN_KEY, LOG_LEVEL: 'warn',
    OPENAI_API_KEY: 'sk-bench', OPENAI_BASE_URL: upstreamUrl,
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const base = `http://127.0.0.1:${port}`;
const cleanup = () => {
  child.kill('SIGKILL');
  upstream.close();
  rmSync(dataDir, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (let i = 0; ; i++) {
  if (i > 300) throw new Error('taskgate did not start (run `npm run build` first)');
  try {
    if ((await fetch(`${base}/health`)).ok) break;
  } catch {
    /* not yet */
  }
  await sleep(100);
}

/** Reads SSE `data:` lines from a fetch response until `stop(data)`; returns the stamp of `first(data)`. */
async function readSse(res, first, stop) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let firstAt = 0;
  let firstData;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const at = now();
    buf += value;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (data === undefined) continue;
      if (!firstAt && first(data, frame)) {
        firstAt = at;
        firstData = data;
      }
      if (stop(data, frame)) {
        await reader.cancel();
        return { firstAt, firstData };
      }
    }
  }
  return { firstAt, firstData };
}

const headers = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };

/** OpenAI-compatible route: POST /v1/chat/completions with stream: true. */
async function chatCall() {
  const sent = now();
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST', headers,
    body: JSON.stringify({ model: 'taskgate', mode: 'simple', stream: true, messages: [{ role: 'user', content: 'bench' }] }),
  });
  const { firstAt, firstData } = await readSse(res, (d) => d !== '[DONE]' && Boolean(JSON.parse(d).choices?.[0]?.delta?.content), (d) => d === '[DONE]');
  return { sent, firstAt, exact: JSON.parse(firstData).choices[0].delta.content === 't0 ' };
}

/** Canonical route: POST /api/v1/tasks/stream, then its SSE stream (thread.message.delta). */
async function sseCall() {
  const sent = now();
  const sub = await (await fetch(`${base}/api/v1/tasks/stream`, { method: 'POST', headers, body: JSON.stringify({ query: 'bench', mode: 'simple' }) })).json();
  const res = await fetch(`${base}${sub.stream_url}`, { headers });
  const { firstAt, firstData } = await readSse(res, (_d, f) => f.includes('event: thread.message.delta'), (_d, f) => f.includes('event: done'));
  return { sent, firstAt, exact: JSON.parse(firstData).delta === 't0 ' };
}

function stats(values) {
  const v = [...values].sort((a, b) => a - b);
  const p = (q) => v[Math.min(v.length - 1, Math.max(0, Math.ceil((q / 100) * v.length) - 1))];
  const r = (x) => Math.round(x * 100) / 100;
  return { n: v.length, p50: r(p(50)), p90: r(p(90)), p99: r(p(99)), mean: r(v.reduce((a, b) => a + b, 0) / v.length), min: r(v[0]), max: r(v[v.length - 1]) };
}

async function scenario(name, fn) {
  for (let i = 0; i < WARMUP; i++) await fn();
  const overhead = [];
  const dispatch = [];
  const delivery = [];
  const providerTtfd = [];
  let missed = 0;
  for (let i = 0; i < CALLS; i++) {
    const before = provider.calls.length;
    const r = await fn();
    const call = provider.calls[before];
    if (!r.exact || !call) {
      missed++; // the client joined after the first delta (live-only): not a fair sample
      continue;
    }
    const clientTtfd = r.firstAt - r.sent;
    const provTtfd = call.firstSent - call.received;
    overhead.push(clientTtfd - provTtfd);
    dispatch.push(call.received - r.sent);
    delivery.push(r.firstAt - call.firstSent);
    providerTtfd.push(provTtfd);
  }
  return { scenario: name, missed_first_delta: missed, overhead_ms: stats(overhead), dispatch_ms: stats(dispatch), delivery_ms: stats(delivery), provider_ttfd_ms: stats(providerTtfd) };
}

const results = [await scenario('openai_chat_stream', chatCall), await scenario('tasks_stream_sse', sseCall)];
const report = { node: process.version, cpus: (await import('node:os')).cpus().length, database: 'pglite', calls: CALLS, warmup: WARMUP, provider_ttfd_ms: PROVIDER_TTFD_MS, results };
if (JSON_OUT) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
else {
  for (const r of results) {
    process.stdout.write(
      `${r.scenario}: overhead p50 ${r.overhead_ms.p50} ms, p90 ${r.overhead_ms.p90} ms, mean ${r.overhead_ms.mean} ms ` +
        `(dispatch p50 ${r.dispatch_ms.p50} ms + delivery p50 ${r.delivery_ms.p50} ms; provider ttfd p50 ${r.provider_ttfd_ms.p50} ms; n=${r.overhead_ms.n}, missed ${r.missed_first_delta})\n`,
    );
  }
}
process.exit(0);
