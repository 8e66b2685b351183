/**
 * The JSON Schema of the lapps config file: every key, its type, its default and its
 * meaning, in one place. `normalizeConfig` (load.ts) validates with it (ajv, defaults
 * applied), then runs the cross-field checks a schema cannot express (cross-field.ts).
 *
 * Keep docs/config.md in step with this file.
 */
import os from 'node:os';
import path from 'node:path';

import { MAX_TTL_S, MIN_TTL_S } from '../dev-token.js';
import type { ServiceKind } from './types.js';

const MiB = 1024 * 1024;

/** Largest timer the native side is asked to arm (fits a signed 32-bit millisecond count). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Service names become Lua globals and log sources, so they must be Lua identifiers. */
export const SERVICE_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';

/** An HTTP token (RFC 9110 tchar): header names and subprotocol names. */
export const HTTP_TOKEN_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/** A Lua module name as given to require: identifiers joined by dots. */
export const LUA_MODULE_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$';

/** A header value that cannot split the response: no CR, LF or NUL. */
export const HEADER_VALUE_PATTERN = '^[^\\r\\n\\u0000]*$';

/** An Origin policy entry: "*", "null", scheme://host[:port] or scheme://*.domain[:port]. */
export const ORIGIN_PATTERN =
  '^(\\*|null|[A-Za-z][A-Za-z0-9+.-]*://(\\*\\.)?([A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?)$';

/** A string handed on to the OS as a C string (a path, a host): no NUL character. */
export const NO_NUL_PATTERN = '^[^\\u0000]*$';

/** An origin-form request target: starts with "/", visible ASCII only (no spaces). */
export const REQUEST_TARGET_PATTERN = '^/[!-~]*$';

/**
 * Default limits; also the values docs/config.md lists. 16 MiB messages cover the largest
 * Autobahn cases (9.x) while still bounding what one connection may make us buffer.
 */
export const DEFAULT_LIMITS = {
  max_message_size: 16 * MiB,
  /** 0 = max_message_size. */
  max_frame_size: 0,
  /** Autobahn's largest case (9.3.1: 4 MiB in 64-byte frames) needs 65,536. */
  max_fragments: 100_000,
  max_connections: 0,
  max_connections_per_ip: 0,
  max_new_connections_per_ip_per_second: 0,
  max_header_size: 8192,
  max_headers: 64,
  handshake_timeout_ms: 10_000,
  idle_timeout_ms: 120_000,
  ping_interval_ms: 30_000,
  close_timeout_ms: 5_000,
  drain_timeout_ms: 10_000,
  proxy_protocol_timeout_ms: 5_000,
  outbound_high_water_mark: 4 * MiB,
  /** 0 = four times outbound_high_water_mark. */
  max_outbound_queue_size: 0,
  slow_consumer_timeout_ms: 30_000,
  auto_fragment_size: 0,
  /** Per mqr queue: its items are server memory, outside every memory_limit. */
  mqr_max_bytes: 64 * MiB,
} as const;

/** Per-service defaults of the runtime and safety keys; also listed in docs/config.md. */
export const DEFAULT_SERVICE = {
  kind: 'lua',
  protocol: 'raw',
  instances: 1,
  standalone: false,
  auto_start: true,
  /** 256 MiB per Lua instance. */
  memory_limit: 256 * MiB,
  handler_timeout_ms: 5_000,
  sandbox: false,
  max_failures: 100,
} as const;

/** Where a service's code is when the config gives no `source` (relative to the config). */
export function defaultSource(name: string, kind: ServiceKind = 'lua'): string {
  return kind === 'c'
    ? path.join('services', name, `lib${name}.so`)
    : path.join('services', name, `${name}.lua`);
}

/** Smallest memory_limit: below this a Lua state cannot even load the standard library. */
export const MIN_MEMORY_LIMIT = MiB;

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 5083;

/** Most workers / instances accepted: far above any sane value, low enough to catch typos. */
export const MAX_WORKERS = 1024;
export const MAX_INSTANCES = 1024;

/**
 * Annotation keyword carrying a human wording for a `pattern` failure; ajv's own
 * "must match pattern ..." shows a regex the user did not write.
 */
export const ERROR_HINT_KEYWORD = 'x-error-hint';

/** An address or CIDR block as ACLs take it; checked further in cross-field.ts (isIP, prefix range). */
export const CIDR_PATTERN = '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$';

/**
 * An ACL: LAppS's form `{policy, exclude}` (allow = everyone but the excluded, deny = nobody
 * but them) or `{allow, deny, default}`. The most specific matching entry decides.
 */
function aclSchema(where: string): object {
  // No defaults inside oneOf (ajv ignores them there): load.ts fills in absent lists.
  const list = (description: string): object => ({
    type: 'array',
    description,
    items: {
      type: 'string',
      pattern: CIDR_PATTERN,
      [ERROR_HINT_KEYWORD]: 'must be an IPv4 or IPv6 address, optionally with a /prefix',
    },
  });
  return {
    type: 'object',
    description: `Network ACL (${where}): {"policy", "exclude"} as in LAppS, or {"allow", "deny", "default"}; the most specific matching entry decides.`,
    oneOf: [
      {
        type: 'object',
        additionalProperties: false,
        required: ['policy'],
        properties: {
          policy: {
            enum: ['allow', 'deny'],
            description: 'What happens to addresses not in exclude.',
          },
          exclude: list('Addresses or CIDR blocks that get the opposite of policy.'),
        },
      },
      {
        type: 'object',
        additionalProperties: false,
        properties: {
          allow: list('Addresses or CIDR blocks let in.'),
          deny: list('Addresses or CIDR blocks refused.'),
          default: {
            enum: ['allow', 'deny'],
            description:
              'For addresses in neither list (default: deny if allow is given, else allow).',
          },
        },
      },
    ],
  };
}

/** A non-empty string handed to the OS or OpenSSL as a C string (a path, a cipher list). */
function cString(description: string): object {
  return {
    type: 'string',
    minLength: 1,
    pattern: NO_NUL_PATTERN,
    [ERROR_HINT_KEYWORD]: 'must not contain a NUL character',
    description,
  };
}

function integer(description: string, minimum: number, maximum: number, def?: number): object {
  return def === undefined
    ? { type: 'integer', minimum, maximum, description }
    : { type: 'integer', minimum, maximum, default: def, description };
}

/**
 * Builds the schema. A function rather than a constant because the `workers` default is the
 * core count of the machine it runs on.
 */
export function buildConfigSchema(): Record<string, unknown> {
  const cores = os.availableParallelism();
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://lapps.dev/schema/config.json',
    title: 'lapps configuration',
    type: 'object',
    additionalProperties: false,
    properties: {
      $schema: {
        type: 'string',
        description: 'Schema reference for editors; ignored by lapps.',
      },
      listeners: {
        type: 'array',
        minItems: 1,
        description:
          'Addresses to accept connections on. Every worker binds each one with SO_REUSEPORT.',
        default: [{ host: DEFAULT_HOST, port: DEFAULT_PORT }],
        items: {
          type: 'object',
          additionalProperties: false,
          properties: {
            host: {
              type: 'string',
              minLength: 1,
              default: DEFAULT_HOST,
              description:
                'IPv4 or IPv6 address to bind ("0.0.0.0" for all IPv4 addresses, "::" for all IPv4 and IPv6 addresses).',
            },
            port: integer('TCP port; 0 picks a free one.', 0, 65535, DEFAULT_PORT),
            ipv6_only: {
              type: 'boolean',
              description:
                'With an IPv6 host: accept IPv6 clients only ("::" is otherwise dual-stack: IPv4 clients too).',
            },
            proxy_protocol: {
              type: 'boolean',
              description:
                'Every connection starts with a PROXY protocol header (v1 or v2) from a load balancer, naming the client; without a valid one within limits.proxy_protocol_timeout_ms the connection is closed (see docs/security.md, "Behind proxies").',
            },
            tls: {
              type: 'object',
              additionalProperties: false,
              description: 'Serve wss:// on this listener (see docs/config.md).',
              properties: {
                cert: cString('PEM certificate chain (leaf first) of the default certificate.'),
                key: cString('PEM private key of cert.'),
                certificates: {
                  type: 'array',
                  default: [],
                  description: 'More certificates, chosen by the name the client asks for (SNI).',
                  items: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['cert', 'key'],
                    properties: {
                      cert: cString('PEM certificate chain (leaf first).'),
                      key: cString('PEM private key of cert.'),
                      server_names: {
                        type: 'array',
                        default: [],
                        description:
                          'Names it answers (default: the DNS names in the certificate); "*.example.com" allowed.',
                        items: {
                          type: 'string',
                          minLength: 1,
                          pattern: '^(\\*\\.)?[A-Za-z0-9_.-]+$',
                        },
                      },
                    },
                  },
                },
                ca: cString('PEM CA bundle that client certificates must chain to.'),
                client_cert: {
                  enum: ['none', 'optional', 'require'],
                  default: 'none',
                  description:
                    'Client certificates (mTLS): not asked, verified if sent, or required.',
                },
                min_version: {
                  enum: ['1.2', '1.3'],
                  default: '1.2',
                  description: 'Oldest TLS version accepted.',
                },
                ciphers: cString(
                  'TLS 1.2 cipher list (OpenSSL syntax); default: ECDHE with AEAD only.',
                ),
                ciphersuites: cString("TLS 1.3 suites (OpenSSL syntax); default: OpenSSL's."),
              },
            },
          },
        },
      },
      acl: aclSchema('server-wide, checked at accept'),
      trusted_proxies: {
        type: 'array',
        uniqueItems: true,
        description:
          'Addresses or CIDR blocks of reverse proxies and load balancers whose X-Forwarded-For or Forwarded header names the client (see docs/security.md, "Behind proxies"). Headers from other peers are ignored.',
        items: {
          type: 'string',
          pattern: CIDR_PATTERN,
          [ERROR_HINT_KEYWORD]: 'must be an IPv4 or IPv6 address, optionally with a /prefix',
        },
      },
      workers: integer(
        'IO worker threads (default: the number of cores).',
        1,
        MAX_WORKERS,
        Math.min(cores, MAX_WORKERS),
      ),
      limits: {
        type: 'object',
        additionalProperties: false,
        default: {},
        description: 'Server-wide limits. Sizes are bytes, times milliseconds.',
        properties: {
          max_message_size: integer(
            'Largest inbound message, all fragments together; over it the connection is closed with 1009.',
            1,
            1024 * MiB,
            DEFAULT_LIMITS.max_message_size,
          ),
          max_header_size: integer(
            'Largest handshake request head (request line + headers); over it: HTTP 431.',
            256,
            MiB,
            DEFAULT_LIMITS.max_header_size,
          ),
          max_headers: integer(
            'Most header lines in a handshake request; over it: HTTP 431.',
            8,
            1024,
            DEFAULT_LIMITS.max_headers,
          ),
          handshake_timeout_ms: integer(
            'Time from accept to a complete handshake request; then the socket is closed.',
            1,
            MAX_TIMEOUT_MS,
            DEFAULT_LIMITS.handshake_timeout_ms,
          ),
          idle_timeout_ms: integer(
            'A connection with no inbound traffic for this long is closed with 1001; 0 = never.',
            0,
            MAX_TIMEOUT_MS,
            DEFAULT_LIMITS.idle_timeout_ms,
          ),
          ping_interval_ms: integer(
            'A ping is sent after this long without inbound traffic; 0 = never.',
            0,
            MAX_TIMEOUT_MS,
            DEFAULT_LIMITS.ping_interval_ms,
          ),
          close_timeout_ms: integer(
            "After sending a close frame, time to wait for the peer's before dropping TCP.",
            1,
            MAX_TIMEOUT_MS,
            DEFAULT_LIMITS.close_timeout_ms,
          ),
          drain_timeout_ms: integer(
            'On stop: how long handlers in progress get to finish and answer before their connections are closed with 1001 anyway; 0 = do not wait.',
            0,
            MAX_TIMEOUT_MS,
            DEFAULT_LIMITS.drain_timeout_ms,
          ),
          proxy_protocol_timeout_ms: integer(
            'On a proxy_protocol listener: time from accept to a complete PROXY header; then the socket is closed without an answer.',
            1,
            MAX_TIMEOUT_MS,
            DEFAULT_LIMITS.proxy_protocol_timeout_ms,
          ),
          outbound_high_water_mark: integer(
            'A connection whose outbound queue stays above this for slow_consumer_timeout_ms is closed as a slow consumer.',
            1,
            Number.MAX_SAFE_INTEGER,
            DEFAULT_LIMITS.outbound_high_water_mark,
          ),
          max_outbound_queue_size: integer(
            "Hard bound of one connection's outbound queue: already over it when a message is queued (after trying to write), the connection is closed as a slow consumer at once. 0 = four times outbound_high_water_mark.",
            0,
            Number.MAX_SAFE_INTEGER,
            DEFAULT_LIMITS.max_outbound_queue_size,
          ),
          slow_consumer_timeout_ms: integer(
            'A connection whose blocked outbound queue takes no byte, or stays above outbound_high_water_mark, for this long is closed as a slow consumer; 0 = never (max_outbound_queue_size still applies).',
            0,
            MAX_TIMEOUT_MS,
            DEFAULT_LIMITS.slow_consumer_timeout_ms,
          ),
          auto_fragment_size: integer(
            'Split outbound messages into frames of at most this many payload bytes; 0 = never.',
            0,
            1024 * MiB,
            DEFAULT_LIMITS.auto_fragment_size,
          ),
          mqr_max_bytes: integer(
            'Most bytes one mqr queue holds (its items, CBOR-encoded, plus 32 bytes each); a post over it waits as on a full queue. Also the most mqr.create may ask for.',
            1024,
            Number.MAX_SAFE_INTEGER,
            DEFAULT_LIMITS.mqr_max_bytes,
          ),
          max_frame_size: integer(
            'Largest inbound data frame payload; over it: close 1009. 0 = max_message_size.',
            0,
            1024 * MiB,
            DEFAULT_LIMITS.max_frame_size,
          ),
          max_fragments: integer(
            'Most frames in one inbound message; over it: close 1008. 0 = no limit.',
            0,
            2 ** 32 - 1,
            DEFAULT_LIMITS.max_fragments,
          ),
          max_connections: integer(
            'Connections held by the server at once; over it new ones get HTTP 503 (closed on TLS listeners). 0 = no limit.',
            0,
            2 ** 32 - 1,
            DEFAULT_LIMITS.max_connections,
          ),
          max_connections_per_ip: integer(
            'Connections held at once from one IPv4 address or IPv6 /64; over it: HTTP 503. 0 = no limit.',
            0,
            2 ** 32 - 1,
            DEFAULT_LIMITS.max_connections_per_ip,
          ),
          max_new_connections_per_ip_per_second: integer(
            "New connections accepted per second from one IPv4 address or IPv6 /64 (bursts up to one second's worth); over it: HTTP 429. 0 = no limit.",
            0,
            2 ** 32 - 1,
            DEFAULT_LIMITS.max_new_connections_per_ip_per_second,
          ),
        },
      },
      static: {
        type: 'object',
        additionalProperties: false,
        required: ['dir'],
        description:
          'Development only: an HTTP server for a directory of static files (a page using the browser client, served as /lapps-client.js).',
        properties: {
          dir: {
            type: 'string',
            minLength: 1,
            pattern: NO_NUL_PATTERN,
            [ERROR_HINT_KEYWORD]: 'must not contain a NUL character',
            description: 'Directory to serve (relative to the config file).',
          },
          host: {
            type: 'string',
            minLength: 1,
            pattern: NO_NUL_PATTERN,
            [ERROR_HINT_KEYWORD]: 'must not contain a NUL character',
            default: DEFAULT_HOST,
            description: 'Address to bind.',
          },
          port: integer('TCP port; 0 picks a free one.', 0, 65535, 8080),
          dev_tokens: {
            type: 'object',
            additionalProperties: false,
            required: ['secret_file', 'audience'],
            description:
              'Development only: POST /token issues HS256 tokens {sub, aud, iat, exp} for any name asked, signed with the secret in secret_file (see docs/security.md). Off unless set.',
            properties: {
              secret_file: cString(
                'File holding the HMAC secret, at least 32 bytes (one trailing newline ignored), relative to the config file; created with 32 random bytes (hex, mode 0600) when missing.',
              ),
              audience: {
                type: 'string',
                minLength: 1,
                maxLength: 256,
                pattern: NO_NUL_PATTERN,
                [ERROR_HINT_KEYWORD]: 'must not contain a NUL character',
                description: 'The aud claim of every token (the service verifies it).',
              },
              ttl_s: integer(
                'Lifetime of a token in seconds (its exp claim is iat + ttl_s).',
                MIN_TTL_S,
                MAX_TTL_S,
                600,
              ),
            },
          },
        },
      },
      log: {
        type: 'object',
        additionalProperties: false,
        default: {},
        description: 'Server log (written to stderr).',
        properties: {
          level: {
            enum: ['error', 'warn', 'info', 'debug'],
            default: 'info',
            description: 'Least severe level written.',
          },
          json: {
            type: 'boolean',
            default: false,
            description: 'One JSON object per line instead of text lines.',
          },
          access: {
            type: 'boolean',
            default: false,
            description:
              'Access log: one info line per handshake outcome (status, reason, path, client, origin, duration, bytes); repeated refusals from one address are rate-limited.',
          },
        },
      },
      services: {
        type: 'array',
        default: [],
        description:
          'Services: reactive ones bound to a request path, standalone ones on their own threads.',
        items: {
          type: 'object',
          additionalProperties: false,
          // request_target is required unless standalone: checked in cross-field.ts (requestTargetPresence).
          required: ['name'],
          properties: {
            name: {
              type: 'string',
              pattern: SERVICE_NAME_PATTERN,
              [ERROR_HINT_KEYWORD]:
                'must be a Lua identifier (letters, digits, "_"; not starting with a digit)',
              description: 'Service name; also the name of its Lua module and global table.',
            },
            kind: {
              enum: ['lua', 'c'],
              default: DEFAULT_SERVICE.kind,
              description:
                'How the service is implemented: "lua" (a Lua module) or "c" (a shared object implementing native/include/lapps.h).',
            },
            standalone: {
              type: 'boolean',
              default: DEFAULT_SERVICE.standalone,
              description:
                'Runs on its own thread(s): init() then run() until must_stop(). A standalone service has no request_target.',
            },
            request_target: {
              type: 'string',
              pattern: REQUEST_TARGET_PATTERN,
              [ERROR_HINT_KEYWORD]:
                'must start with "/" and contain no spaces or control characters',
              description:
                'Request path the service answers, e.g. "/echo". Required unless standalone.',
            },
            protocol: {
              enum: ['raw', 'lapps'],
              default: DEFAULT_SERVICE.protocol,
              description:
                'Message protocol: "raw" passes frames to onMessage untouched; "lapps" speaks LAppS\'s CBOR protocol.',
            },
            instances: integer(
              'Lua states running this service, spread over the workers; a connection is pinned to one.',
              1,
              MAX_INSTANCES,
              DEFAULT_SERVICE.instances,
            ),
            auto_start: {
              type: 'boolean',
              default: DEFAULT_SERVICE.auto_start,
              description: 'Start the service with the server.',
            },
            depends: {
              type: 'array',
              default: [],
              uniqueItems: true,
              description: 'Services to start before this one.',
              items: {
                type: 'string',
                pattern: SERVICE_NAME_PATTERN,
                [ERROR_HINT_KEYWORD]: 'must be a service name (a Lua identifier)',
              },
            },
            preload: {
              type: 'array',
              default: [],
              uniqueItems: true,
              description:
                'Modules loaded into every instance before the service (e.g. "mqr", "nap", "time").',
              items: {
                type: 'string',
                pattern: LUA_MODULE_PATTERN,
                [ERROR_HINT_KEYWORD]: 'must be a Lua module name (identifiers joined by ".")',
              },
            },
            extra_headers: {
              type: 'object',
              default: {},
              description:
                'Headers added to the 101 response: name (an HTTP token) -> value (no CR/LF).',
              additionalProperties: {
                type: 'string',
                pattern: HEADER_VALUE_PATTERN,
                [ERROR_HINT_KEYWORD]: 'must not contain CR, LF or NUL',
              },
            },
            proto_alias: {
              type: 'string',
              pattern: HTTP_TOKEN_PATTERN,
              [ERROR_HINT_KEYWORD]: 'must be an HTTP token (no spaces, commas or quotes)',
              description:
                'Value sent as Sec-WebSocket-Protocol in the 101 response, whatever the client offered (LAppS style).',
            },
            subprotocols: {
              type: 'array',
              default: [],
              uniqueItems: true,
              description:
                'Subprotocols this service accepts, in its order of preference: the first of them the client offers is chosen.',
              items: {
                type: 'string',
                pattern: HTTP_TOKEN_PATTERN,
                [ERROR_HINT_KEYWORD]: 'must be an HTTP token (no spaces, commas or quotes)',
              },
            },
            max_inbound_message_size: integer(
              'Largest inbound message for this service (default and upper bound: limits.max_message_size).',
              1,
              1024 * MiB,
            ),
            source: {
              type: 'string',
              minLength: 1,
              description:
                'Path of the Lua file (kind "c": the shared object), relative to the config file (default: services/<name>/<name>.lua, or services/<name>/lib<name>.so).',
            },
            memory_limit: integer(
              'Bytes one Lua instance may allocate; going over it is a Lua error, not a crash.',
              MIN_MEMORY_LIMIT,
              2 ** 40,
              DEFAULT_SERVICE.memory_limit,
            ),
            handler_timeout_ms: integer(
              'A handler running longer than this is stopped with an error; 0 = never.',
              0,
              MAX_TIMEOUT_MS,
              DEFAULT_SERVICE.handler_timeout_ms,
            ),
            sandbox: {
              type: 'boolean',
              default: DEFAULT_SERVICE.sandbox,
              description: 'Removes io, os.execute, ffi, debug and bytecode loading.',
            },
            max_failures: integer(
              'Errors within one minute after which an instance is recycled (a fresh Lua state).',
              1,
              MAX_TIMEOUT_MS,
              DEFAULT_SERVICE.max_failures,
            ),
            acl: aclSchema('this service, checked before the 101: refused clients get 403'),
            origins: {
              type: 'array',
              uniqueItems: true,
              description:
                'Web origins whose pages may connect: "https://app.example.com", "https://*.example.com", "null", or "*" for any. Not set: only pages of the host the client connected to (same origin). Others get 403.',
              items: {
                type: 'string',
                pattern: ORIGIN_PATTERN,
                [ERROR_HINT_KEYWORD]:
                  'must be "*", "null", "scheme://host[:port]" or "scheme://*.domain[:port]"',
              },
            },
            allow_missing_origin: {
              type: 'boolean',
              default: true,
              description:
                'Let in handshakes without an Origin header (non-browser clients; browsers always send one).',
            },
          },
        },
      },
    },
  };
}
