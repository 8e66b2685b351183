/**
 * The command-line overrides of `lapps start` (--host, --port, --workers): their rules,
 * checked here only, and how they apply to a config.
 */
import { isIP } from 'node:net';

import { ConfigError, type ConfigIssue } from './issues.js';
import { MAX_WORKERS } from './schema.js';
import type { LappsConfig } from './types.js';

/** Command-line settings that take precedence over the config file. */
export interface ConfigOverrides {
  /** Replaces the host of the first listener. */
  host?: string;
  /** Replaces the port of the first listener. */
  port?: number;
  workers?: number;
}

/** The overrides as the command line gives them: strings. */
export interface OverrideArgs {
  host?: string | undefined;
  port?: string | undefined;
  workers?: string | undefined;
}

/** Inclusive ranges of the integer overrides. */
const RANGES = { port: [0, 65535], workers: [1, MAX_WORKERS] } as const;

/** A decimal integer argument: digits only, else NaN (which no range accepts). */
export function integerArg(value: string): number {
  return /^[0-9]+$/.test(value) ? Number(value) : NaN;
}

/** The rule each given override breaks, as issues at "--host", "--port", "--workers". */
export function overrideIssues(overrides: ConfigOverrides): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (overrides.host !== undefined && isIP(overrides.host) === 0) {
    issues.push({ path: '--host', message: 'must be an IPv4 or IPv6 address' });
  }
  for (const name of ['port', 'workers'] as const) {
    const value = overrides[name];
    const [min, max] = RANGES[name];
    if (value !== undefined && !(Number.isInteger(value) && value >= min && value <= max)) {
      issues.push({ path: `--${name}`, message: `must be an integer from ${min} to ${max}` });
    }
  }
  return issues;
}

/**
 * The overrides given as command-line strings, checked.
 *
 * @throws ConfigError (file "command line") whose one issue is the first bad option, its
 *   message ending with the value given: `--port`, `must be an integer from 0 to 65535,
 *   got "x"`.
 */
export function parseOverrides(args: OverrideArgs): ConfigOverrides {
  const overrides: ConfigOverrides = {};
  if (args.host !== undefined) overrides.host = args.host;
  if (args.port !== undefined) overrides.port = integerArg(args.port);
  if (args.workers !== undefined) overrides.workers = integerArg(args.workers);
  const bad = overrideIssues(overrides)[0];
  if (bad) {
    const given = args[bad.path.slice(2) as keyof OverrideArgs];
    throw new ConfigError('command line', [{ ...bad, message: `${bad.message}, got "${given}"` }]);
  }
  return overrides;
}

/**
 * Applies command-line overrides to a normalised config and returns the result (the input
 * is not modified). `host` and `port` replace the address of the *first* listener only;
 * other listeners keep theirs.
 *
 * @throws ConfigError (file "command line", path "--host" etc.) for an invalid value, or
 *   when the first listener would then have the address of another one.
 */
export function applyOverrides(config: LappsConfig, overrides: ConfigOverrides): LappsConfig {
  const issues = overrideIssues(overrides);
  if (issues.length > 0) throw new ConfigError('command line', issues);
  const { host, port, workers } = overrides;

  const listeners = config.listeners.map((l) => ({ ...l }));
  const first = listeners[0];
  if (first && (host !== undefined || port !== undefined)) {
    if (host !== undefined) first.host = host;
    if (port !== undefined) first.port = port;
    // The file's listeners are distinct (normalizeConfig); moving the first one must not
    // make it one of the others.
    const same = listeners.findIndex(
      (l, i) => i > 0 && first.port !== 0 && l.host === first.host && l.port === first.port,
    );
    if (same > 0) {
      throw new ConfigError('command line', [
        {
          path: port !== undefined ? '--port' : '--host',
          message: `would make the first listener the same as /listeners/${same} (${first.host} port ${first.port})`,
        },
      ]);
    }
  }
  return {
    ...config,
    listeners,
    workers: workers ?? config.workers,
    limits: { ...config.limits },
    log: { ...config.log },
    services: config.services.map((s) => ({
      ...s,
      depends: [...s.depends],
      preload: [...s.preload],
      extra_headers: { ...s.extra_headers },
      subprotocols: [...s.subprotocols],
    })),
  };
}
