import type { IResolvedReconnect } from './options.ts';

/**
 * Wait before reconnect attempt number `attempt` (0-based): exponential growth
 * up to `maxDelay`, then up to `jitter` of it randomized away so that many
 * clients dropped at once do not come back at the same instant.
 */
export function backoffDelay(
  attempt: number,
  policy: IResolvedReconnect,
  random: () => number = Math.random,
) {
  const ceiling = Math.min(policy.maxDelay, policy.initialDelay * policy.factor ** attempt);
  return Math.round(ceiling * (1 - policy.jitter * random()));
}
