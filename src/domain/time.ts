// Time limits the runtime imposes on the whole project.

/**
 * setTimeout's longest delay (2^31 − 1 ms, about 24.8 days): a longer one fires after 1 ms, so
 * timers are capped here and re-armed when they fire early. (config/parse.ts, which imports
 * nothing from the project, holds the same bound for the settings it checks.)
 */
export const MAX_TIMER_MS = 2_147_483_647;
