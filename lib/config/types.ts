/**
 * The normalised lapps configuration: what `loadConfig` returns after JSON Schema
 * validation and defaults. Keys mirror the JSON file (snake_case, as LAppS wrote them).
 */

/** A certificate and its key (absolute paths), and the SNI names it answers. */
export interface TlsCertificateConfig {
  cert: string;
  key: string;
  /** Empty: the DNS names in the certificate. */
  server_names: string[];
}

/** wss:// on a listener. Paths are absolute after loading. */
export interface TlsConfig {
  /** The first is the default (no SNI, or no name matched). */
  certificates: TlsCertificateConfig[];
  /** CA bundle client certificates must chain to; required unless client_cert is "none". */
  ca?: string;
  client_cert: 'none' | 'optional' | 'require';
  min_version: '1.2' | '1.3';
  ciphers?: string;
  ciphersuites?: string;
}

/** One accept socket address; every worker listens on it with SO_REUSEPORT. */
export interface ListenerConfig {
  host: string;
  port: number;
  /** IPv6 clients only (absent: false; an IPv6 wildcard "::" accepts IPv4 clients too). */
  ipv6_only?: boolean;
  /** Connections start with a PROXY protocol header (v1 or v2) naming the client (absent: false). */
  proxy_protocol?: boolean;
  tls?: TlsConfig;
}

/**
 * A network ACL, normalised from either config form. The most specific matching entry
 * decides; addresses matching none get `default`.
 */
export interface AclConfig {
  default: 'allow' | 'deny';
  allow: string[];
  deny: string[];
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
  /**
   * On stop (SIGTERM, SIGINT, stop()): how long handlers in progress get to finish and
   * answer before their connections are closed with 1001 anyway; 0 = do not wait.
   */
  drain_timeout_ms: number;
  /** On a proxy_protocol listener: time from accept to a complete PROXY header; then closed. */
  proxy_protocol_timeout_ms: number;
  /** Outbound bytes queued for one connection above which it is judged for slow_consumer_timeout_ms. */
  outbound_high_water_mark: number;
  /** Hard bound of one connection's outbound queue; 0 = four times outbound_high_water_mark. */
  max_outbound_queue_size: number;
  /** A blocked queue without progress, or above the mark, this long: slow consumer. 0 = never. */
  slow_consumer_timeout_ms: number;
  /** Split outbound messages into frames of at most this many payload bytes; 0 = never. */
  auto_fragment_size: number;
  /** Byte bound of each mqr queue (server memory), and the most mqr.create may ask for. */
  mqr_max_bytes: number;
  /** Largest inbound data frame; over it: close 1009. 0 = max_message_size. */
  max_frame_size: number;
  /** Most frames in one inbound message; over it: close 1008. 0 = no limit. */
  max_fragments: number;
  /** Connections held at once; over it: HTTP 503 (TLS: closed). 0 = no limit. */
  max_connections: number;
  /** Connections held at once per IPv4 address or IPv6 /64; over it: HTTP 503. 0 = no limit. */
  max_connections_per_ip: number;
  /** New connections per second per IPv4 address or IPv6 /64; over it: HTTP 429. 0 = no limit. */
  max_new_connections_per_ip_per_second: number;
}

/** "raw": frames go to onMessage untouched; "lapps": LAppS's CBOR protocol (LAPPS-COMPAT.md). */
export type ServiceProtocol = 'raw' | 'lapps';

/** "lua": a Lua module; "c": a shared object implementing the C ABI (native/include/lapps.h). */
export type ServiceKind = 'lua' | 'c';

/**
 * A service: reactive (bound to a request path, runs inline on the IO workers) or
 * standalone (its own thread running init() then run(), no request path).
 */
export interface ServiceConfig {
  name: string;
  /** Request path the service answers, e.g. "/echo"; "" for a standalone service. */
  request_target: string;
  protocol: ServiceProtocol;
  /** Number of Lua states (instances); spread over the workers. */
  instances: number;
  /** Per-service inbound message limit (defaults to limits.max_message_size). */
  max_inbound_message_size: number;
  /**
   * Absolute path of the service's Lua file, or of its shared object for kind "c" (relative
   * paths resolve against the config file).
   */
  source: string;
  /** How the service is implemented. */
  kind: ServiceKind;
  /** Runs on its own thread(s): init() then run() until must_stop(); has no request_target. */
  standalone: boolean;
  /** Started with the server; otherwise only when started explicitly (or as a dependency). */
  auto_start: boolean;
  /** Services that must be started before this one (names; checked to exist, no cycles). */
  depends: string[];
  /** Modules loaded into every instance before the service itself (e.g. "mqr", "nap"). */
  preload: string[];
  /** Headers added to the 101 response (names are HTTP tokens; values without CR/LF). */
  extra_headers: Record<string, string>;
  /** Value sent as Sec-WebSocket-Protocol whatever the client offered (LAppS style). */
  proto_alias?: string;
  /** Subprotocols accepted, matched against the client's offer in the client's order. */
  subprotocols: string[];
  /** Bytes of memory one Lua instance may allocate; going over it is a Lua error. */
  memory_limit: number;
  /** A handler running longer than this is stopped with an error; 0 = never. */
  handler_timeout_ms: number;
  /** Removes io, os.execute, ffi, debug and bytecode loading from the instance. */
  sandbox: boolean;
  /** Errors within a minute after which an instance is recycled (fresh Lua state). */
  max_failures: number;
  /** Checked before the 101; refused clients get 403. Absent: everyone. */
  acl?: AclConfig;
  /** Origins whose pages may connect; absent: same origin only (the Host header's). */
  origins?: string[];
  /** Handshakes without Origin (non-browser clients) are let in. */
  allow_missing_origin: boolean;
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface LogConfig {
  level: LogLevel;
  /** One JSON object per line instead of text lines. */
  json: boolean;
  /** Access log: one info line per handshake outcome (source "access"). */
  access: boolean;
}

/** Development static file server (see docs/config.md). */
export interface StaticConfig {
  /** Absolute directory served at "/". */
  dir: string;
  host: string;
  port: number;
  /** POST /token issues development tokens (see docs/security.md). */
  dev_tokens?: DevTokensConfig;
}

/** The static server's development token issuer. */
export interface DevTokensConfig {
  /** Absolute path of the HMAC secret file (created when missing). */
  secret_file: string;
  /** The aud claim of every token. */
  audience: string;
  /** Token lifetime in seconds. */
  ttl_s: number;
}

export interface LappsConfig {
  listeners: ListenerConfig[];
  /** Server-wide ACL, checked at accept (refused sockets are closed at once). */
  acl?: AclConfig;
  /**
   * Addresses or CIDR blocks of proxies whose X-Forwarded-For / Forwarded name the client
   * (absent or empty: no peer is trusted).
   */
  trusted_proxies?: string[];
  /** IO worker threads; defaults to the number of cores. */
  workers: number;
  limits: LimitsConfig;
  log: LogConfig;
  services: ServiceConfig[];
  static?: StaticConfig;
}
