// `current_time`: the current date and time, in UTC or an IANA time zone. The clock is injected
// so tests are deterministic.
import { ToolError, type AgentTool } from './types.js';

export function currentTimeTool(now: () => Date): AgentTool {
  return {
    spec: {
      name: 'current_time',
      description: 'Get the current date and time (ISO 8601 UTC, plus local time in an optional IANA time zone such as "Europe/Paris").',
      parameters: { type: 'object', properties: { timezone: { type: 'string', description: 'IANA time zone name; default UTC' } } },
    },
    async run(args) {
      const d = now();
      const tz = typeof args.timezone === 'string' && args.timezone ? args.timezone : 'UTC';
      let local: string;
      try {
        local = new Intl.DateTimeFormat('en-US', { timeZone: tz, dateStyle: 'full', timeStyle: 'long' }).format(d);
      } catch {
        throw new ToolError(`unknown time zone ${tz}`);
      }
      return JSON.stringify({ utc: d.toISOString(), timezone: tz, local, unix: Math.floor(d.getTime() / 1000) });
    },
  };
}
