/**
 * The only place that loads the native addon. Everything the addon receives is flat and
 * already valid (the control plane validated it); everything it reports comes back as
 * batched events through one thread-safe function.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import type { LappsConfig } from './config/types.js';
import { startOrder } from './config/load.js';

/** Service settings as the native side takes them. */
export interface NativeService {
  name: string;
  requestTarget: string;
  /** 0 = raw, 1 = LAppS (CBOR). */
  protocol: number;
  /** 0 = Lua, 1 = C module. */
  kind: number;
  /** Accepted subprotocols in preference order (proto_alias included). */
  subprotocols: string[];
  /** Extra headers of the 101 response, validated by the config schema. */
  extraHeaders: [string, string][];
  instances: number;
  maxMessageSize: number;
  source: string;
  /** Own threads running init() / run() instead of a request path. */
  standalone: boolean;
  /** Started with the server (auto_start, or needed by a started service). */
  started: boolean;
  preload: string[];
  memoryLimit: number;
  handlerTimeoutMs: number;
  sandbox: boolean;
  maxFailures: number;
}

/** Flat server settings; see LimitsConfig for the meaning of each limit. */
export interface NativeSettings {
  workers: number;
  listeners: { host: string; port: number }[];
  maxMessageSize: number;
  maxHeaderBytes: number;
  maxHeaders: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  pingIntervalMs: number;
  closeTimeoutMs: number;
  outboundHighWaterMark: number;
  autoFragmentSize: number;
  services: NativeService[];
}

export type NativeLogLevel = 'error' | 'warn' | 'info' | 'debug';

/** A control event from the data plane (batched; delivered on the main thread). */
export interface NativeEvent {
  kind: 'log';
  level: NativeLogLevel;
  /** What logged: "worker 0", "service echo#1", ... */
  source: string;
  message: string;
}

export interface NativeServer {
  /** Binds every listener on every worker and starts the workers; returns the bound ports. */
  start(): number[];
  /**
   * Graceful stop: listeners closed, 1001 sent to every client, closes awaited up to the
   * close timeout, onDisconnect/onShutdown run, workers joined.
   */
  stop(): Promise<void>;
  /** Counters, read straight from native memory (see lib/stats.ts). */
  stats(): BigUint64Array;
}

export interface NativeAddon {
  version: string;
  Server: new (settings: NativeSettings, onEvents: (events: NativeEvent[]) => void) => NativeServer;
}

/** The package root: lib/ when run from source, dist/lib/ when compiled. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('lapps: cannot find the package root');
    dir = up;
  }
  return dir;
}

/** Path of the built addon; LAPPS_ADDON overrides it (the sanitizer build uses this). */
export function addonPath(): string {
  const override = process.env.LAPPS_ADDON;
  if (override) return path.resolve(override);
  return path.join(packageRoot(), 'build', 'Release', 'lapps.node');
}

let cached: NativeAddon | undefined;

/** Loads the addon once; throws with the build command when it is missing. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const file = addonPath();
  if (!existsSync(file)) {
    throw new Error(`lapps native addon not found at ${file}: run "npm run build:native"`);
  }
  const require = createRequire(import.meta.url);
  cached = require(file) as NativeAddon;
  return cached;
}

/** Maps the normalised config onto the flat native settings. */
export function toNativeSettings(config: LappsConfig): NativeSettings {
  const l = config.limits;
  const started = startedServices(config);
  return {
    workers: config.workers,
    listeners: config.listeners.map((x) => ({ host: x.host, port: x.port })),
    maxMessageSize: l.max_message_size,
    maxHeaderBytes: l.max_header_size,
    maxHeaders: l.max_headers,
    handshakeTimeoutMs: l.handshake_timeout_ms,
    idleTimeoutMs: l.idle_timeout_ms,
    pingIntervalMs: l.ping_interval_ms,
    closeTimeoutMs: l.close_timeout_ms,
    outboundHighWaterMark: l.outbound_high_water_mark,
    autoFragmentSize: l.auto_fragment_size,
    // In start order: a service's dependencies are started (standalone init() done) first.
    services: startOrder(config).map((s) => ({
      name: s.name,
      requestTarget: s.request_target,
      protocol: s.protocol === 'lapps' ? 1 : 0,
      kind: s.kind === 'c' ? 1 : 0,
      subprotocols:
        s.proto_alias && !s.subprotocols.includes(s.proto_alias)
          ? [...s.subprotocols, s.proto_alias]
          : s.subprotocols,
      extraHeaders: Object.entries(s.extra_headers),
      instances: s.instances,
      maxMessageSize: s.max_inbound_message_size,
      source: s.source,
      standalone: s.standalone,
      started: started.has(s.name),
      preload: s.preload,
      memoryLimit: s.memory_limit,
      handlerTimeoutMs: s.handler_timeout_ms,
      sandbox: s.sandbox,
      maxFailures: s.max_failures,
    })),
  };
}

/**
 * Names of the services started with the server: those with auto_start, and everything
 * they depend on (directly or not), whatever its own auto_start says.
 */
export function startedServices(config: LappsConfig): Set<string> {
  const byName = new Map(config.services.map((s) => [s.name, s]));
  const started = new Set<string>();
  const visit = (name: string): void => {
    if (started.has(name)) return;
    started.add(name);
    for (const d of byName.get(name)?.depends ?? []) visit(d);
  };
  for (const s of config.services) if (s.auto_start) visit(s.name);
  return started;
}
