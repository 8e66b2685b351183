/**
 * Starts a real lapps server on 127.0.0.1 with an ephemeral port for one test, and
 * collects its log so tests can assert what was (not) logged.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer } from '../../lib/server.js';
import { normalizeConfig } from '../../lib/config/load.js';
import type { NativeEvent } from '../../lib/native.js';
import type { LappsConfig } from '../../lib/config/types.js';
import { createLogger } from '../../lib/log.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const echoSource = path.join(repoRoot, 'services', 'echo', 'echo.lua');

export interface TestServer {
  port: number;
  /** ws://127.0.0.1:<port><path> */
  url(path?: string): string;
  /** Every native event so far (log lines from workers and services). */
  events: NativeEvent[];
  /** Log messages at level error, for "no error in the log" assertions. */
  errors(): string[];
  stop(): Promise<void>;
}

export interface TestServerOptions {
  /** Raw service entries as in a config file; default: the bundled echo at /echo. */
  services?: Record<string, unknown>[];
  /** Raw limits as in a config file. */
  limits?: Record<string, unknown>;
  workers?: number;
  /** Port to listen on; default 0 (ephemeral). Lets a test restart a server on one port. */
  port?: number;
}

/** Starts a server from a raw config object (validated like a file would be). */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const raw = {
    listeners: [{ host: '127.0.0.1', port: options.port ?? 0 }],
    workers: options.workers ?? 2,
    limits: options.limits ?? {},
    log: { level: 'debug' },
    services: options.services ?? [
      { name: 'echo', request_target: '/echo', source: echoSource, instances: 2 },
    ],
  };
  const config: LappsConfig = normalizeConfig(raw, { file: '<test>', baseDir: repoRoot });
  const events: NativeEvent[] = [];
  const server = await startServer(config, {
    logger: createLogger({ level: 'error', json: false }, process.stderr),
    onEvent: (e) => events.push(e),
  });
  const port = server.ports[0] ?? 0;
  return {
    port,
    url: (p = '/echo') => `ws://127.0.0.1:${port}${p}`,
    events,
    errors: () => events.filter((e) => e.level === 'error').map((e) => e.message),
    stop: () => server.stop(),
  };
}
