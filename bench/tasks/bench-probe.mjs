// A no-op task definition for `taskgate serve --tasks-dir bench/tasks`: it returns the wall
// clock (ms, µs resolution) at the moment its handler starts, so dispatch latency is measured
// to the handler, exactly where the peers' no-op handlers take their stamp.

import { performance } from 'node:perf_hooks';

export default {
  id: 'bench_probe',
  name: 'Bench probe',
  description: 'Returns the handler start time (wall-clock ms); used by the benchmarks only.',
  version: '1.0.0',
  kind: 'function',
  type: 'AUTOMATED',
  input_schema: { type: 'object' },
  output_schema: { type: 'object' },
  handler: () => ({ handler_start_ms: performance.timeOrigin + performance.now() }),
};
