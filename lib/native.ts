/**
 * The only place that loads the native addon. Everything the addon receives is flat and
 * already valid (the control plane validated it); everything it reports comes back as
 * batched events through one thread-safe function.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';

import { startedServices, startOrder } from './config/service-graph.js';
import type { AclConfig, LappsConfig, TlsConfig } from './config/types.js';
import { packageRoot } from './package-root.js';

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

/** An ACL as rules: [address or CIDR, allowed?] pairs and the fallback. */
export interface NativeAcl {
  rules: [string, boolean][];
  fallback: 'allow' | 'deny';
}

export interface NativeTls {
  certificates: { cert: string; key: string; serverNames: string[] }[];
  ca?: string;
  clientCert: 'none' | 'optional' | 'require';
  minVersion: '1.2' | '1.3';
  ciphers?: string;
  ciphersuites?: string;
}

/** What a reload may replace: ACLs, Origin policies, certificates. */
export interface NativePolicy {
  acl?: NativeAcl;
  /** In the order of NativeSettings.services. */
  services: {
    acl?: NativeAcl;
    origins?: string[];
    /** Without origins: allowed besides the same origin (the dev static server's page). */
    extraOrigins?: string[];
    allowMissingOrigin: boolean;
  }[];
  /** By listener; null = plain ws. */
  tls: (NativeTls | null)[];
  /** trusted_proxies as an ACL (rules allowed, fallback deny); absent: no peer trusted. */
  trustedProxies?: NativeAcl;
}

/** Flat server settings; see LimitsConfig for the meaning of each limit. */
export interface NativeSettings {
  workers: number;
  /** ipv6Only: IPV6_V6ONLY on an IPv6 listener (else "::" is dual-stack). */
  /** proxyProtocol: connections start with a PROXY protocol header. */
  listeners: { host: string; port: number; ipv6Only: boolean; proxyProtocol: boolean }[];
  maxFrameSize: number;
  maxFragments: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  newConnectionsPerIpPerSec: number;
  proxyProtocolTimeoutMs: number;
  /** log.access: one log line per handshake outcome. */
  accessLog: boolean;
  policy: NativePolicy;
  maxMessageSize: number;
  maxHeaderBytes: number;
  maxHeaders: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  pingIntervalMs: number;
  closeTimeoutMs: number;
  drainTimeoutMs: number;
  outboundHighWaterMark: number;
  /** Resolved: never 0. */
  maxOutboundQueue: number;
  slowConsumerTimeoutMs: number;
  autoFragmentSize: number;
  mqrMaxBytes: number;
  services: NativeService[];
}

export type NativeLogLevel = 'error' | 'warn' | 'info' | 'debug';

/** Log levels in native order (LogLevel in native/src/core/event-channel.h). */
export const NATIVE_LOG_LEVELS: readonly NativeLogLevel[] = ['error', 'warn', 'info', 'debug'];

/** Log lines the full native log queue dropped since the previous batch, by NATIVE_LOG_LEVELS. */
export type NativeDropCounts = number[];

/** A control event from the data plane (batched; delivered on the main thread). */
export interface NativeEvent {
  kind: 'log';
  level: NativeLogLevel;
  /** What logged: "worker 0", "service echo#1", ... */
  source: string;
  message: string;
  /** Structured values of the line (the access log's status, path, client, ...). */
  fields?: Record<string, string | number>;
}

export interface NativeServer {
  /** Binds every listener on every worker and starts the workers; returns the bound ports. */
  start(): number[];
  /**
   * Graceful stop: listeners closed, what clients had sent is handled and answered (up to
   * drainTimeoutMs), then 1001 to every client, closes awaited up to the close timeout,
   * onDisconnect/onShutdown run, workers joined.
   */
  stop(): Promise<void>;
  /** Counters, read straight from native memory: COUNTERS.length per worker. */
  stats(): BigUint64Array;
  /** Replaces ACLs, Origin policies and certificates; throws (nothing changed) on error. */
  reload(policy: NativePolicy): void;
}

/** The native counters, in the order of native/src/core/stats.h (test/unit/counters.test.ts checks). */
export const COUNTERS = [
  'connections_open',
  'connections_accepted',
  'handshakes_ok',
  'handshakes_failed',
  'messages_in',
  'messages_out',
  'bytes_in',
  'bytes_out',
  'protocol_errors',
  'service_errors',
  'slow_consumers',
  'timeouts',
  'acl_refused_at_accept',
  'acl_refused_at_handshake',
  'origin_refused',
  'connection_limit',
  'per_ip_connection_limit',
  'per_ip_rate_limit',
  'header_limit',
  'handshake_timeouts',
  'idle_timeouts',
  'message_too_big',
  'frame_too_big',
  'too_many_fragments',
  'tls_handshakes_failed',
  'messages_after_close',
  'connect_refused',
  'connect_timeouts',
  'proxy_header_refused',
  'tls_record_layer',
  'tls_record_errors',
] as const;

export type CounterName = (typeof COUNTERS)[number];

/** Sums every worker's row of a stats() block into named counters. */
export function sumCounters(block: BigUint64Array): Record<CounterName, number> {
  const out = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<CounterName, number>;
  for (let i = 0; i < block.length; ++i) {
    const name = COUNTERS[i % COUNTERS.length];
    if (name) out[name] += Number(block[i]);
  }
  return out;
}

export interface NativeAddon {
  version: string;
  /** The error compiling `policy` would give (ACL entries, origins, certificates), or null. */
  checkPolicy(policy: NativePolicy, serviceNames: string[]): string | null;
  /** Writes a self-signed localhost certificate and key; throws with the reason. */
  writeDevCertificate(cert: string, key: string, days: number, overwrite: boolean): void;
  Server: new (
    settings: NativeSettings,
    onEvents: (events: NativeEvent[], dropped: NativeDropCounts) => void,
  ) => NativeServer;
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

/**
 * Maps the normalised config onto the flat native settings. `devOrigins`: origins of the
 * development static server, let in by services that list no origins of their own.
 */
export function toNativeSettings(config: LappsConfig, devOrigins: string[] = []): NativeSettings {
  const l = config.limits;
  const started = startedServices(config);
  return {
    workers: config.workers,
    listeners: config.listeners.map((x) => ({
      host: x.host,
      port: x.port,
      ipv6Only: x.ipv6_only === true,
      proxyProtocol: x.proxy_protocol === true,
    })),
    maxMessageSize: l.max_message_size,
    maxHeaderBytes: l.max_header_size,
    maxHeaders: l.max_headers,
    handshakeTimeoutMs: l.handshake_timeout_ms,
    idleTimeoutMs: l.idle_timeout_ms,
    pingIntervalMs: l.ping_interval_ms,
    closeTimeoutMs: l.close_timeout_ms,
    drainTimeoutMs: l.drain_timeout_ms,
    outboundHighWaterMark: l.outbound_high_water_mark,
    maxOutboundQueue: l.max_outbound_queue_size || 4 * l.outbound_high_water_mark,
    slowConsumerTimeoutMs: l.slow_consumer_timeout_ms,
    autoFragmentSize: l.auto_fragment_size,
    mqrMaxBytes: l.mqr_max_bytes,
    maxFrameSize: l.max_frame_size,
    maxFragments: l.max_fragments,
    maxConnections: l.max_connections,
    maxConnectionsPerIp: l.max_connections_per_ip,
    newConnectionsPerIpPerSec: l.max_new_connections_per_ip_per_second,
    proxyProtocolTimeoutMs: l.proxy_protocol_timeout_ms,
    accessLog: config.log.access,
    policy: toNativePolicy(config, devOrigins),
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

function toNativeAcl(acl: AclConfig): NativeAcl {
  return {
    rules: [
      ...acl.allow.map((a): [string, boolean] => [a, true]),
      ...acl.deny.map((d): [string, boolean] => [d, false]),
    ],
    fallback: acl.default,
  };
}

function toNativeTls(tls: TlsConfig): NativeTls {
  const out: NativeTls = {
    certificates: tls.certificates.map((c) => ({
      cert: c.cert,
      key: c.key,
      serverNames: c.server_names,
    })),
    clientCert: tls.client_cert,
    minVersion: tls.min_version,
  };
  if (tls.ca !== undefined) out.ca = tls.ca;
  if (tls.ciphers !== undefined) out.ciphers = tls.ciphers;
  if (tls.ciphersuites !== undefined) out.ciphersuites = tls.ciphersuites;
  return out;
}

/** The reloadable part of the config, services in start order (as toNativeSettings). */
export function toNativePolicy(config: LappsConfig, devOrigins: string[] = []): NativePolicy {
  const policy: NativePolicy = {
    services: startOrder(config).map((s) => {
      const sp: NativePolicy['services'][number] = { allowMissingOrigin: s.allow_missing_origin };
      if (s.acl) sp.acl = toNativeAcl(s.acl);
      if (s.origins) sp.origins = s.origins;
      else if (devOrigins.length > 0) sp.extraOrigins = devOrigins;
      return sp;
    }),
    tls: config.listeners.map((l) => (l.tls ? toNativeTls(l.tls) : null)),
  };
  if (config.acl) policy.acl = toNativeAcl(config.acl);
  if (config.trusted_proxies) {
    policy.trustedProxies = {
      rules: config.trusted_proxies.map((a): [string, boolean] => [a, true]),
      fallback: 'deny',
    };
  }
  return policy;
}

/**
 * What the data plane itself would refuse in `config`: ACL entries it cannot compile,
 * certificate files that do not load or do not match their keys. Undefined if all is well.
 */
export function policyProblem(config: LappsConfig): string | undefined {
  // Services in start order, as toNativePolicy lists them.
  const names = startOrder(config).map((s) => s.name);
  return loadNative().checkPolicy(toNativePolicy(config), names) ?? undefined;
}
