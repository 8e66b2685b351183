/**
 * Starts a real lapps server on 127.0.0.1 with an ephemeral port for one test, and
 * collects its log so tests can assert what was (not) logged.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer } from '../../lib/server.js';
import { normalizeConfig } from '../../lib/config/load.js';
import type { CounterName, NativeEvent } from '../../lib/native.js';
import { testPki } from './pki.js';
import type { LappsConfig } from '../../lib/config/types.js';
import { createLogger } from '../../lib/log.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const echoSource = path.join(repoRoot, 'services', 'echo', 'echo.lua');

/**
 * LAPPS_TEST_TLS=1 runs every test server with wss:// on its listeners (and RawClient
 * speaks TLS): the conformance suite runs once over ws and once over wss.
 */
export const testTls = process.env.LAPPS_TEST_TLS === '1';

export interface TestServer {
  port: number;
  /** Bound port of each listener. */
  ports: number[];
  /** The listeners speak wss. */
  tls: boolean;
  /** ws://127.0.0.1:<port><path> (wss:// with TLS) */
  url(path?: string): string;
  /** Counters summed over the workers. */
  counters(): Record<CounterName, number>;
  /** Applies the reloadable part (ACLs, origins, certificates) of a config built from `options`. */
  reload(options: TestServerOptions): void;
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
  /** Raw listeners as in a config file (replaces the single 127.0.0.1 listener). */
  listeners?: Record<string, unknown>[];
  /** wss on the default listener: true (test certificate) or a raw "tls" object. */
  tls?: boolean | Record<string, unknown>;
  /** Raw server-wide ACL. */
  acl?: Record<string, unknown>;
  /** Raw top-level keys (trusted_proxies, log, ...), set last. */
  extra?: Record<string, unknown>;
}

function rawConfig(options: TestServerOptions): Record<string, unknown> {
  const tlsOption = options.tls ?? testTls;
  const listener: Record<string, unknown> = { host: '127.0.0.1', port: options.port ?? 0 };
  if (tlsOption) {
    const pki = testPki();
    listener.tls = tlsOption === true ? { cert: pki.serverCert, key: pki.serverKey } : tlsOption;
  }
  const raw: Record<string, unknown> = {
    listeners: options.listeners ?? [listener],
    workers: options.workers ?? 2,
    limits: options.limits ?? {},
    log: { level: 'debug' },
    services: options.services ?? [
      { name: 'echo', request_target: '/echo', source: echoSource, instances: 2 },
    ],
  };
  if (options.acl) raw.acl = options.acl;
  Object.assign(raw, options.extra);
  return raw;
}

/** Starts a server from a raw config object (validated like a file would be). */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const config: LappsConfig = normalizeConfig(rawConfig(options), {
    file: '<test>',
    baseDir: repoRoot,
  });
  const events: NativeEvent[] = [];
  const server = await startServer(config, {
    logger: createLogger({ level: 'error', json: false }, process.stderr),
    onEvent: (e) => events.push(e),
  });
  const port = server.ports[0] ?? 0;
  const tls = config.listeners[0]?.tls !== undefined;
  return {
    port,
    ports: server.ports,
    tls,
    url: (p = '/echo') => `${tls ? 'wss' : 'ws'}://127.0.0.1:${port}${p}`,
    counters: () => server.counters(),
    reload: (next) =>
      server.reload(normalizeConfig(rawConfig(next), { file: '<test>', baseDir: repoRoot })),
    events,
    errors: () => events.filter((e) => e.level === 'error').map((e) => e.message),
    stop: () => server.stop(),
  };
}
