/**
 * The normalised lapps configuration: what `loadConfig` returns after JSON Schema
 * validation and defaults. Keys mirror the JSON file (snake_case, as LAppS wrote them).
 */

/** One accept socket address; every worker listens on it with SO_REUSEPORT. */
export interface ListenerConfig {
  host: string;
  port: number;
}

/** Server-wide limits. Sizes are bytes, times milliseconds. */
export interface LimitsConfig {
  /** Largest inbound message (all fragments together); over it: close 1009. */
  max_message_size: number;
  /** Largest handshake request head (request line + headers); over it: HTTP 431. */
  max_header_size: number;
  /** Most header lines in a handshake request; over it: HTTP 431. */
  max_headers: number;
  /** Time allowed from accept to a complete handshake request; then the socket is closed. */
  handshake_timeout_ms: number;
  /** A connection from which nothing arrives for this long is closed with 1001; 0 = never. */
  idle_timeout_ms: number;
  /** A ping is sent after this long without inbound traffic; 0 = never. */
  ping_interval_ms: number;
  /** After sending a close frame, time to wait for the peer's before dropping TCP. */
  close_timeout_ms: number;
  /** Outbound bytes queued for one connection above which it is closed as a slow consumer. */
  outbound_high_water_mark: number;
  /** Split outbound messages into frames of at most this many payload bytes; 0 = never. */
  auto_fragment_size: number;
}

export type ServiceProtocol = 'raw';

/** A reactive service bound to a request path. */
export interface ServiceConfig {
  name: string;
  /** Request path the service answers, e.g. "/echo". */
  request_target: string;
  protocol: ServiceProtocol;
  /** Number of Lua states (instances); spread over the workers. */
  instances: number;
  /** Per-service inbound message limit (defaults to limits.max_message_size). */
  max_inbound_message_size: number;
  /** Absolute path of the service's Lua file (relative paths resolve against the config file). */
  source: string;
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface LogConfig {
  level: LogLevel;
  /** One JSON object per line instead of text lines. */
  json: boolean;
}

export interface LappsConfig {
  listeners: ListenerConfig[];
  /** IO worker threads; defaults to the number of cores. */
  workers: number;
  limits: LimitsConfig;
  log: LogConfig;
  services: ServiceConfig[];
}
