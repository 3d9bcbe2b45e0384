// Shipped definitions that need no network: noop, sleep (multi-step, durable) and seed 003's
// calculate-order-total.
import type { TaskDefinition, TaskContext } from '../types.js';

export const noop: TaskDefinition = {
  id: 'noop',
  name: 'No-op',
  description: 'Completes immediately with an empty object (benchmarks, smoke tests).',
  version: '1.0.0',
  kind: 'function',
  type: 'AUTOMATED',
  input_schema: { type: 'object' },
  output_schema: { type: 'object' },
  handler: () => ({}),
};

function sleepFor(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export const sleep: TaskDefinition = {
  id: 'sleep',
  name: 'Sleep',
  description: 'Runs `steps` durable steps of `ms` milliseconds each, emitting PROGRESS after each. ' +
    'Output step_runs[i] counts how often step i actually ran, so retries, pause/resume and crash recovery are visible.',
  version: '1.1.0',
  kind: 'function',
  type: 'AUTOMATED',
  input_schema: {
    type: 'object',
    properties: {
      ms: { type: 'integer', minimum: 0, maximum: 3_600_000 },
      steps: { type: 'integer', minimum: 1, maximum: 1000, default: 1 },
    },
    required: ['ms'],
    additionalProperties: false,
  },
  output_schema: {
    type: 'object',
    properties: { steps: { type: 'integer' }, step_runs: { type: 'array', items: { type: 'integer' } } },
    required: ['steps', 'step_runs'],
  },
  async handler(input: { ms: number; steps?: number }, ctx: TaskContext) {
    const steps = input.steps ?? 1;
    for (let i = 0; i < steps; i++) {
      // the PROGRESS event commits with the step record: exactly one per step, even across crashes
      await ctx.step(`sleep-${i}`, () => sleepFor(input.ms, ctx.signal).then(() => true), {
        event: { type: 'PROGRESS', message: `step ${i + 1}/${steps} done`, payload: { step: i + 1, steps } },
      });
    }
    const step_runs = Array.from({ length: steps }, (_, i) => ctx.stepInfo(`sleep-${i}`)?.runs ?? 0);
    return { steps, step_runs };
  },
};

/** Seed 003's example: subtotal, tax at the configured rate, total — in whole cents. */
export function calculateOrderTotal(taxRate: number): TaskDefinition {
  return {
    id: 'calculate-order-total',
    name: 'Calculate Order Total',
    description: 'Calculates the total price of an order including taxes',
    version: '1.2.0',
    kind: 'function',
    type: 'AUTOMATED',
    input_schema: {
      type: 'object',
      properties: {
        orderId: { type: 'string', description: 'Order identifier' },
        items: {
          type: 'array',
          maxItems: 10_000,
          items: {
            type: 'object',
            properties: { id: { type: 'string' }, quantity: { type: 'number', minimum: 0 }, price: { type: 'number', minimum: 0 } },
            required: ['id', 'quantity', 'price'],
          },
        },
        taxRate: { type: 'number', minimum: 0, maximum: 1, description: `Overrides the configured rate (${taxRate})` },
      },
      required: ['orderId', 'items'],
    },
    output_schema: {
      type: 'object',
      properties: { subtotal: { type: 'number' }, tax: { type: 'number' }, total: { type: 'number' } },
      required: ['subtotal', 'tax', 'total'],
    },
    timeout_ms: 60_000,
    retry_policy: { max_retries: 3, retry_interval_ms: 60_000, backoff_multiplier: 2 },
    handler(input: { items: { quantity: number; price: number }[]; taxRate?: number }) {
      // sum in cents so 2 × 10.99 + 24.99 is exactly 4697 cents, not 46.970000000000006
      const subtotalCents = Math.round(input.items.reduce((sum, it) => sum + it.quantity * it.price * 100, 0));
      const taxCents = Math.round(subtotalCents * (input.taxRate ?? taxRate));
      return { subtotal: subtotalCents / 100, tax: taxCents / 100, total: (subtotalCents + taxCents) / 100 };
    },
  };
}
