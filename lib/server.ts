/**
 * Runs a lapps server in this process: hands the validated config to the native data
 * plane, turns its events into log lines, and owns its life after the start: reload
 * (what SIGHUP does to `lapps start`) and stop.
 */
import { loadConfig, type ConfigSource } from './config/source.js';
import type { LappsConfig, ServiceConfig } from './config/types.js';
import { SecretFileError } from './dev-token.js';
import { CodedError, errorMessage } from './errors.js';
import {
  loadNative,
  sumCounters,
  toNativePolicy,
  toNativeSettings,
  NATIVE_LOG_LEVELS,
  type CounterName,
  type NativeDropCounts,
  type NativeEvent,
  type NativeServer,
} from './native.js';
import { createLogger, type Logger, type StreamLogger } from './log.js';
import { startStaticServer, type StaticServer } from './static.js';

/** A started server. */
export interface RunningServer {
  /** Bound port of each listener, in config order (useful with port 0). */
  ports: number[];
  /** ws:// URL of each service on the first listener. */
  urls: Map<string, string>;
  /** The development static file server's URL (config key `static`), if any. */
  staticUrl?: string;
  /**
   * Graceful stop: what clients sent so far is handled and answered (up to
   * limits.drain_timeout_ms), then they get 1001; onShutdown runs, workers are joined.
   */
  stop(): Promise<void>;
  /**
   * Applies the reloadable part of `next` (ACLs, Origin policies, certificates) while
   * connections stay up. Throws (and changes nothing) if it cannot be applied.
   */
  reload(next: LappsConfig): void;
  /**
   * What SIGHUP does to `lapps start`: reads the config again from `StartOptions.source`
   * and applies its reloadable part (ACLs, Origin policies, certificates) while
   * connections stay up. Logs the outcome: `reloaded: ACLs, Origin policies and TLS
   * certificates` (after a warning naming changes that take effect at the next start
   * only), or `reload failed, nothing changed: <why>`. Returns whether it applied; while
   * the server stops it does nothing and returns false.
   *
   * @throws Error when startServer was given no `source`.
   */
  reload(): boolean;
  /**
   * Counters summed over the workers (see docs/config.md for each), and log_lines_dropped:
   * log entries lost because the log queue or stderr did not keep up.
   */
  counters(): Record<CounterName | 'log_lines_dropped', number>;
}

export interface StartOptions {
  logger?: Logger;
  /** Receives every native event too (tests read the log through this). */
  onEvent?: (event: NativeEvent) => void;
  /**
   * Where `reload()` reads the config again: a config file, a LAppS home, or a function
   * returning the next config. Usually the source `config` was loaded from.
   */
  source?: ConfigSource | (() => LappsConfig);
}

/** Origins a browser gives pages of the static server on `host`:`port`. */
function staticOrigins(host: string, port: number): string[] {
  if (host === '0.0.0.0' || host === '::' || host === '127.0.0.1' || host === '::1') {
    return [`http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`];
  }
  return [`http://${host.includes(':') ? `[${host}]` : host}:${port}`];
}

/** Top-level keys whose changes a reload cannot apply (everything but ACLs, origins, TLS). */
function restartOnlyChanges(running: LappsConfig, next: LappsConfig): string[] {
  const strip = (c: LappsConfig): Record<string, unknown> => ({
    listeners: c.listeners.map((l) => ({
      host: l.host,
      port: l.port,
      ipv6_only: l.ipv6_only === true,
      proxy_protocol: l.proxy_protocol === true,
      tls: l.tls !== undefined,
    })),
    workers: c.workers,
    limits: c.limits,
    log: c.log,
    static: c.static,
    services: c.services.map((s) => {
      const rest: Partial<ServiceConfig> = { ...s };
      delete rest.acl;
      delete rest.origins;
      delete rest.allow_missing_origin;
      return rest;
    }),
  });
  const a = strip(running);
  const b = strip(next);
  return Object.keys(a).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Starts the data plane for `config`; resolves once every listener is bound. */
export async function startServer(
  config: LappsConfig,
  options: StartOptions = {},
): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(config.log);
  const native = loadNative();
  let nativeDropped = 0;
  const onEvents = (events: NativeEvent[], dropped: NativeDropCounts): void => {
    for (const e of events) {
      options.onEvent?.(e);
      logger[e.level](e.message, { source: e.source, ...e.fields });
    }
    // Lines the native log queue had no room for (the main thread fell behind).
    dropped.forEach((count, i) => {
      const level = NATIVE_LOG_LEVELS[i];
      if (!count || !level) return;
      nativeDropped += count;
      if (logger.dropped) logger.dropped(level, count);
      else logger.warn(`${count} log lines dropped (log queue full)`, { source: 'log' });
    });
  };
  // The static server first: its page's origin is let in by services without origins.
  let files: StaticServer | undefined;
  if (config.static) {
    try {
      files = await startStaticServer(config.static);
    } catch (err) {
      const why =
        err instanceof SecretFileError
          ? err.message
          : `cannot listen on ${config.static.host}:${config.static.port}: ${(err as Error).message}`;
      throw new CodedError('LAPPS_START_FAILED', `static: ${why}`);
    }
  }
  const devOrigins = files ? staticOrigins(config.static?.host ?? '', files.port) : [];
  let server: NativeServer;
  let ports: number[];
  try {
    server = new native.Server(toNativeSettings(config, devOrigins), onEvents);
    ports = server.start();
  } catch (err) {
    await files?.close();
    throw err;
  }
  const first = config.listeners[0];
  const urls = new Map<string, string>();
  if (first) {
    const scheme = first.tls ? 'wss' : 'ws';
    for (const s of config.services) {
      if (s.standalone) continue;
      urls.set(s.name, `${scheme}://${urlHost(first.host)}:${ports[0]}${s.request_target}`);
    }
  }
  let stopping: Promise<void> | undefined;
  const { source } = options;
  function reload(next: LappsConfig): void;
  function reload(): boolean;
  function reload(next?: LappsConfig): boolean | void {
    if (next !== undefined) return server.reload(toNativePolicy(next, devOrigins));
    if (source === undefined) throw new Error('reload() needs the source option of startServer');
    if (stopping) return false;
    let read: LappsConfig;
    try {
      read = typeof source === 'function' ? source() : loadConfig(source).config;
      server.reload(toNativePolicy(read, devOrigins));
    } catch (err) {
      logger.error(`reload failed, nothing changed: ${errorMessage(err)}`);
      return false;
    }
    const later = restartOnlyChanges(config, read);
    if (later.length > 0) {
      logger.warn(`reload: changes to ${later.join(', ')} take effect at the next start`);
    }
    logger.info('reloaded: ACLs, Origin policies and TLS certificates');
    return true;
  }
  const running: RunningServer = {
    ports,
    urls,
    stop() {
      stopping ??= Promise.all([server.stop(), files?.close()]).then(() => undefined);
      return stopping;
    },
    reload,
    counters() {
      const own = (logger as Partial<StreamLogger>).overflowed ?? 0;
      return { ...sumCounters(server.stats()), log_lines_dropped: nativeDropped + own };
    },
  };
  if (files) running.staticUrl = files.url;
  return running;
}
