/**
 * Runs a lapps server in this process: hands the validated config to the native data
 * plane and turns its events into log lines.
 */
import type { LappsConfig } from './config/types.js';
import { loadNative, toNativeSettings, type NativeEvent, type NativeServer } from './native.js';
import { createLogger, type Logger } from './log.js';
import { startStaticServer, type StaticServer } from './static.js';

/** A started server. */
export interface RunningServer {
  /** Bound port of each listener, in config order (useful with port 0). */
  ports: number[];
  /** ws:// URL of each service on the first listener. */
  urls: Map<string, string>;
  /** The development static file server's URL (config key `static`), if any. */
  staticUrl?: string;
  /** Graceful stop: clients get 1001, handlers finish, workers are joined. */
  stop(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Receives every native event too (tests read the log through this). */
  onEvent?: (event: NativeEvent) => void;
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
  const onEvents = (events: NativeEvent[]): void => {
    for (const e of events) {
      options.onEvent?.(e);
      logger[e.level](e.message, { source: e.source });
    }
  };
  const server: NativeServer = new native.Server(toNativeSettings(config), onEvents);
  const ports = server.start();
  const first = config.listeners[0];
  const urls = new Map<string, string>();
  if (first) {
    for (const s of config.services) {
      if (s.standalone) continue;
      urls.set(s.name, `ws://${urlHost(first.host)}:${ports[0]}${s.request_target}`);
    }
  }
  let files: StaticServer | undefined;
  if (config.static) {
    try {
      files = await startStaticServer(config.static);
    } catch (err) {
      await server.stop();
      throw Object.assign(
        new Error(
          `static: cannot listen on ${config.static.host}:${config.static.port}: ${(err as Error).message}`,
        ),
        { code: 'LAPPS_START_FAILED' },
      );
    }
  }
  let stopping: Promise<void> | undefined;
  const running: RunningServer = {
    ports,
    urls,
    stop() {
      stopping ??= Promise.all([server.stop(), files?.close()]).then(() => undefined);
      return stopping;
    },
  };
  if (files) running.staticUrl = files.url;
  return running;
}
