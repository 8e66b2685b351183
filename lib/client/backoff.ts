/**
 * Reconnect delays: exponential backoff with jitter, capped.
 */

/** How reconnect attempts are spaced. */
export interface ReconnectOptions {
  /** Delay before the first attempt after a drop (ms). Default 500. */
  initialDelayMs: number;
  /** Upper bound of the delay (ms). Default 30000. */
  maxDelayMs: number;
  /** Growth per failed attempt (>= 1). Default 2. */
  factor: number;
  /**
   * Fraction of the delay that is random, 0..1: the delay is drawn uniformly from
   * [d * (1 - jitter), d]. 0 = no jitter, 1 = "full jitter". Default 0.5.
   */
  jitter: number;
}

export const defaultReconnect: Readonly<ReconnectOptions> = Object.freeze({
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 0.5,
});

/** Checks reconnect options (missing fields take the defaults); throws RangeError. */
export function reconnectOptions(given: Partial<ReconnectOptions>): ReconnectOptions {
  const o = { ...defaultReconnect, ...given };
  const check = (ok: boolean, what: string): void => {
    if (!ok) throw new RangeError(`reconnect.${what}`);
  };
  check(Number.isFinite(o.initialDelayMs) && o.initialDelayMs >= 0, 'initialDelayMs must be >= 0');
  check(
    Number.isFinite(o.maxDelayMs) && o.maxDelayMs >= o.initialDelayMs,
    'maxDelayMs must be >= initialDelayMs',
  );
  check(Number.isFinite(o.factor) && o.factor >= 1, 'factor must be >= 1');
  check(o.jitter >= 0 && o.jitter <= 1, 'jitter must be in 0..1');
  return o;
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first after a drop).
 * `random` returns a number in [0, 1), as Math.random does.
 */
export function backoffDelay(
  attempt: number,
  o: ReconnectOptions,
  random: () => number = Math.random,
): number {
  // Capping the exponent keeps factor ** attempt finite however long the outage lasts.
  const exponent = Math.min(attempt, 64);
  const base = Math.min(o.maxDelayMs, o.initialDelayMs * o.factor ** exponent);
  return Math.round(base * (1 - o.jitter * random()));
}
