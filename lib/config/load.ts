/**
 * Reads, validates and normalises the lapps config: JSON text -> schema (schema.ts, ajv,
 * defaults filled in) -> cross-field checks (cross-field.ts) -> the normalised LappsConfig.
 * Every problem found is reported at once, each naming the file and the JSON pointer of
 * the offending key (issues.ts), so a user fixes a config in one pass instead of one error
 * per start. The rest of lib/config: json-position.ts (where a syntax error is),
 * service-graph.ts (depends, start order), overrides.ts (--host/--port/--workers),
 * source.ts (file, LAppS home or default, plus overrides), lapps-compat.ts (LAppS homes).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

import { crossFieldIssues } from './cross-field.js';
import { ConfigError, isRecord, pointerToken, type ConfigIssue } from './issues.js';
import { jsonErrorPosition } from './json-position.js';
import { buildConfigSchema, defaultSource, ERROR_HINT_KEYWORD, MAX_WORKERS } from './schema.js';
import type {
  AclConfig,
  LappsConfig,
  ListenerConfig,
  LogLevel,
  ServiceConfig,
  TlsConfig,
} from './types.js';
import { packageRoot } from '../package-root.js';

/** Where a raw config came from: the name used in messages and the base for relative paths. */
export interface ConfigOrigin {
  file: string;
  baseDir: string;
}

let validator: ValidateFunction | undefined;

/** The schema is compiled once per process: compiling costs far more than validating. */
function getValidator(): ValidateFunction {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
    ajv.addVocabulary([ERROR_HINT_KEYWORD]);
    validator = ajv.compile(buildConfigSchema());
  }
  return validator;
}

function displayPath(pointer: string): string {
  return pointer === '' ? '/' : pointer;
}

/** Rewords ajv's errors where its own text would not name the key or the rule. */
function issueFromAjv(e: ErrorObject): ConfigIssue {
  const at = e.instancePath;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      return { path: `${at}/${pointerToken(key)}`, message: `unknown key "${key}"` };
    }
    case 'required': {
      const key = String((e.params as { missingProperty: string }).missingProperty);
      return { path: `${at}/${pointerToken(key)}`, message: 'is required' };
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      return {
        path: displayPath(at),
        message: `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`,
      };
    }
    case 'pattern': {
      const hint = (e.parentSchema as Record<string, unknown> | undefined)?.[ERROR_HINT_KEYWORD];
      return {
        path: displayPath(at),
        message: typeof hint === 'string' ? hint : (e.message ?? 'is invalid'),
      };
    }
    default:
      return { path: displayPath(at), message: e.message ?? 'is invalid' };
  }
}

/**
 * Validates a parsed config object and returns it normalised: every default filled in,
 * service sources made absolute (relative ones resolve against `origin.baseDir`), and
 * `max_inbound_message_size` set. `raw` is not modified.
 *
 * @throws ConfigError listing every problem found.
 */
export function normalizeConfig(raw: unknown, origin: ConfigOrigin): LappsConfig {
  // ajv writes defaults into the object it validates; the caller's object stays untouched.
  const data: unknown = raw === undefined ? undefined : structuredClone(raw);
  const validate = getValidator();
  const issues: ConfigIssue[] = [];
  if (!validate(data)) {
    const seen = new Set<string>();
    for (const e of validate.errors ?? []) {
      const issue = issueFromAjv(e);
      const key = `${issue.path}\0${issue.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        issues.push(issue);
      }
    }
  }
  issues.push(...crossFieldIssues(data, origin.baseDir));
  if (issues.length > 0) throw new ConfigError(origin.file, issues);

  // The schema pass succeeded, so `data` now has exactly the shape below.
  const c = data as Omit<LappsConfig, 'services'> & {
    services: (Omit<ServiceConfig, 'source' | 'max_inbound_message_size' | 'request_target'> & {
      source?: string;
      max_inbound_message_size?: number;
      request_target?: string;
    })[];
  };
  const config: LappsConfig = {
    listeners: c.listeners.map((l) => normalizeListener(l, origin.baseDir)),
    workers: c.workers,
    limits: { ...c.limits },
    log: { level: c.log.level as LogLevel, json: c.log.json, access: c.log.access },
    services: c.services.map((s) => {
      const service: ServiceConfig = {
        name: s.name,
        request_target: s.request_target ?? '',
        protocol: s.protocol,
        instances: s.instances,
        max_inbound_message_size: s.max_inbound_message_size ?? c.limits.max_message_size,
        source: path.resolve(origin.baseDir, s.source ?? defaultSource(s.name, s.kind)),
        kind: s.kind,
        standalone: s.standalone,
        auto_start: s.auto_start,
        depends: [...s.depends],
        preload: [...s.preload],
        extra_headers: { ...s.extra_headers },
        subprotocols: [...s.subprotocols],
        memory_limit: s.memory_limit,
        handler_timeout_ms: s.handler_timeout_ms,
        sandbox: s.sandbox,
        max_failures: s.max_failures,
        allow_missing_origin: s.allow_missing_origin,
      };
      if (s.proto_alias !== undefined) service.proto_alias = s.proto_alias;
      const acl = normalizeAcl(s.acl);
      if (acl) service.acl = acl;
      if (s.origins !== undefined) service.origins = [...s.origins];
      return service;
    }),
  };
  const acl = normalizeAcl(c.acl);
  if (acl) config.acl = acl;
  if (c.trusted_proxies && c.trusted_proxies.length > 0) {
    config.trusted_proxies = [...c.trusted_proxies];
  }
  if (c.static) {
    config.static = {
      dir: path.resolve(origin.baseDir, c.static.dir),
      host: c.static.host,
      port: c.static.port,
    };
    const tokens = c.static.dev_tokens;
    if (tokens) {
      config.static.dev_tokens = {
        secret_file: path.resolve(origin.baseDir, tokens.secret_file),
        audience: tokens.audience,
        ttl_s: tokens.ttl_s,
      };
    }
  }
  return config;
}

/** Either ACL form as the schema accepted it. */
interface RawAcl {
  policy?: 'allow' | 'deny';
  exclude?: string[];
  allow?: string[];
  deny?: string[];
  default?: 'allow' | 'deny';
}

/** LAppS's {policy, exclude} or {allow, deny, default}, as one shape. */
export function normalizeAcl(raw: unknown): AclConfig | undefined {
  if (!isRecord(raw)) return undefined;
  const acl = raw as RawAcl;
  if (acl.policy !== undefined) {
    const exclude = [...(acl.exclude ?? [])];
    return acl.policy === 'allow'
      ? { default: 'allow', allow: [], deny: exclude }
      : { default: 'deny', allow: exclude, deny: [] };
  }
  const allow = [...(acl.allow ?? [])];
  return {
    default: acl.default ?? (allow.length > 0 ? 'deny' : 'allow'),
    allow,
    deny: [...(acl.deny ?? [])],
  };
}

interface RawTls {
  cert?: string;
  key?: string;
  certificates: { cert: string; key: string; server_names: string[] }[];
  ca?: string;
  client_cert: TlsConfig['client_cert'];
  min_version: TlsConfig['min_version'];
  ciphers?: string;
  ciphersuites?: string;
}

function normalizeListener(
  l: { host: string; port: number; ipv6_only?: boolean; proxy_protocol?: boolean; tls?: unknown },
  baseDir: string,
): ListenerConfig {
  const listener: ListenerConfig = { host: l.host, port: l.port };
  if (l.ipv6_only) listener.ipv6_only = true;
  if (l.proxy_protocol) listener.proxy_protocol = true;
  if (!l.tls) return listener;
  const t = l.tls as RawTls;
  const certificates = t.certificates.map((c) => ({
    cert: path.resolve(baseDir, c.cert),
    key: path.resolve(baseDir, c.key),
    server_names: [...c.server_names],
  }));
  if (t.cert !== undefined && t.key !== undefined) {
    certificates.unshift({
      cert: path.resolve(baseDir, t.cert),
      key: path.resolve(baseDir, t.key),
      server_names: [],
    });
  }
  const tls: TlsConfig = { certificates, client_cert: t.client_cert, min_version: t.min_version };
  if (t.ca !== undefined) tls.ca = path.resolve(baseDir, t.ca);
  if (t.ciphers !== undefined) tls.ciphers = t.ciphers;
  if (t.ciphersuites !== undefined) tls.ciphersuites = t.ciphersuites;
  listener.tls = tls;
  return listener;
}

/**
 * Reads and parses a JSON config file (this format's or a LAppS one).
 *
 * @throws ConfigError when the file cannot be read, or with the line and column of the
 *   first syntax error.
 */
export function readConfigJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    throw new ConfigError(file, [{ path: '', message: `cannot read config: ${why}` }]);
  }
  return parseConfigText(file, text);
}

/**
 * Parses the text of a JSON config file (a leading byte order mark is allowed).
 *
 * @param file the name used in the error.
 * @throws ConfigError with the line and column of the first syntax error.
 */
export function parseConfigText(file: string, text: string): unknown {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // editors on Windows add a BOM
  try {
    return JSON.parse(text) as unknown;
  } catch {
    const { line, column, message } = jsonErrorPosition(text);
    throw new ConfigError(file, [{ path: '', message: `invalid JSON: ${message}`, line, column }]);
  }
}

/**
 * Reads and normalises a config file; relative paths in it resolve against its directory.
 *
 * @throws ConfigError when the file cannot be read, is not valid JSON (the issue carries
 *   the line and column), or does not satisfy the schema.
 */
export function loadConfigFile(file: string): LappsConfig {
  const raw = readConfigJson(file);
  return normalizeConfig(raw, { file, baseDir: path.dirname(path.resolve(file)) });
}

/** Options of {@link defaultConfig}. */
export interface DefaultConfigOptions {
  /** Worker count; the echo service gets as many instances. Default: the number of cores. */
  workers?: number;
}

/**
 * The config used when `lapps start` is given none: the bundled echo service at
 * 127.0.0.1:5083/echo with one instance per worker, so every worker answers on its own.
 */
export function defaultConfig(options: DefaultConfigOptions = {}): LappsConfig {
  const root = packageRoot();
  const raw: Record<string, unknown> = {
    services: [
      {
        name: 'echo',
        request_target: '/echo',
        source: path.join(root, 'services', 'echo', 'echo.lua'),
      },
    ],
  };
  if (options.workers !== undefined) raw.workers = options.workers;
  const config = normalizeConfig(raw, { file: '<default config>', baseDir: root });
  const echo = config.services[0]!;
  echo.instances = Math.min(config.workers, MAX_WORKERS);
  return config;
}
