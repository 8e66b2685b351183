/**
 * Reads, validates and normalises the lapps config. Every problem found is reported at
 * once, each naming the file and the JSON pointer of the offending key, so a user fixes a
 * config in one pass instead of one error per start.
 */
import { readFileSync, statSync, type Stats } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

import {
  buildConfigSchema,
  ERROR_HINT_KEYWORD,
  HTTP_TOKEN_PATTERN,
  MAX_WORKERS,
  SERVICE_NAME_PATTERN,
} from './schema.js';
import type {
  AclConfig,
  LappsConfig,
  ListenerConfig,
  LogLevel,
  ServiceConfig,
  ServiceKind,
  TlsConfig,
} from './types.js';
import { packageRoot } from '../native.js';

/** One problem in a config; `path` is a JSON pointer ("/" for the whole document). */
export interface ConfigIssue {
  path: string;
  message: string;
  /**
   * The file this issue is about when it differs from the error's (a LAppS home has two
   * config files; see lapps-compat.ts).
   */
  file?: string;
  /** 1-based position in the file, for JSON syntax errors. */
  line?: number;
  column?: number;
}

function formatIssue(errorFile: string, issue: ConfigIssue): string {
  const file = issue.file ?? errorFile;
  if (issue.line !== undefined) {
    return `${file}:${issue.line}:${issue.column ?? 1}: ${issue.message}`;
  }
  return issue.path === ''
    ? `${file}: ${issue.message}`
    : `${file}: ${issue.path}: ${issue.message}`;
}

/**
 * An invalid config. `message` has one line per issue, `<file>: <path>: <message>`
 * (syntax errors: `<file>:<line>:<column>: <message>`), ready to print as is.
 */
export class ConfigError extends Error {
  /** Stable code; never changes meaning. */
  readonly code = 'LAPPS_CONFIG_INVALID';
  /** The file (as given) or origin the issues are about. */
  readonly file: string;
  readonly issues: ConfigIssue[];

  constructor(file: string, issues: ConfigIssue[]) {
    super(issues.map((i) => formatIssue(file, i)).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

/** Where a raw config came from: the name used in messages and the base for relative paths. */
export interface ConfigOrigin {
  file: string;
  baseDir: string;
}

/** Command-line settings that take precedence over the config file. */
export interface ConfigOverrides {
  /** Replaces the host of the first listener. */
  host?: string;
  /** Replaces the port of the first listener. */
  port?: number;
  workers?: number;
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

function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Where a service's code is when the config gives no `source`. */
export function defaultSource(name: string, kind: ServiceKind = 'lua'): string {
  return kind === 'c'
    ? path.join('services', name, `lib${name}.so`)
    : path.join('services', name, `${name}.lua`);
}

/**
 * Headers the handshake itself writes; a service may not add them (a second Upgrade or
 * Sec-WebSocket-Accept would break clients). Lower case.
 */
const RESERVED_HEADERS = new Set([
  'connection',
  'upgrade',
  'sec-websocket-accept',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
  'sec-websocket-version',
  'content-length',
  'transfer-encoding',
]);

/** Wording of the errors stat may report for a path that exists in the config only. */
const STAT_ERRORS: Record<string, string> = {
  ENOTDIR: 'a directory on the path is a file',
  ENAMETOOLONG: 'the path or one of its names is too long',
  ELOOP: 'too many symbolic links',
  EACCES: 'permission denied',
};

/**
 * Why a service's code cannot be at `file` (absolute), or undefined when it is a file. Every
 * stat error is an issue: a config must never crash the loader.
 */
function sourceProblem(file: string): string | undefined {
  if (file.includes('\0')) return `the path contains a NUL character: ${JSON.stringify(file)}`;
  let st: Stats | undefined;
  try {
    st = statSync(file, { throwIfNoEntry: false });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return `cannot access ${file}: ${(e.code && STAT_ERRORS[e.code]) ?? e.code ?? e.message}`;
  }
  if (!st) return `file not found: ${file}`;
  if (!st.isFile()) return `not a file: ${file}`;
  return undefined;
}

/**
 * Problems with one ACL entry: an address or CIDR block whose address is IPv4 or IPv6 and
 * whose prefix fits it. Host bits below the prefix are allowed (and ignored).
 */
function cidrProblem(entry: string): string | undefined {
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return `"${address}" is not an IPv4 or IPv6 address`;
  if (slash < 0) return undefined;
  const digits = entry.slice(slash + 1);
  const bits = family === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]*)$/.test(digits) || Number(digits) > bits) {
    return `prefix length must be 0-${bits}`;
  }
  return undefined;
}

function aclIssues(acl: unknown, at: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!isRecord(acl)) return issues;
  const lists: [string, unknown][] = [
    ['exclude', acl.exclude],
    ['allow', acl.allow],
    ['deny', acl.deny],
  ];
  const seen = new Map<string, string>();
  for (const [key, list] of lists) {
    if (!Array.isArray(list)) continue;
    list.forEach((entry: unknown, j) => {
      if (typeof entry !== 'string') return;
      const problem = cidrProblem(entry);
      if (problem) {
        issues.push({ path: `${at}/${key}/${j}`, message: problem });
        return;
      }
      const other = seen.get(entry);
      if (other !== undefined && other !== key) {
        issues.push({ path: `${at}/${key}/${j}`, message: `"${entry}" is also in ${other}` });
      }
      seen.set(entry, key);
    });
  }
  return issues;
}

/** Certificate files must exist; pairing and CA rules the schema cannot state. */
function tlsIssues(tls: unknown, at: string, baseDir: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!isRecord(tls)) return issues;
  const file = (value: unknown, where: string): void => {
    if (typeof value !== 'string' || value === '') return;
    const problem = sourceProblem(path.resolve(baseDir, value));
    if (problem) issues.push({ path: where, message: problem });
  };
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    issues.push({ path: at, message: 'cert and key go together' });
  }
  const extra = Array.isArray(tls.certificates) ? tls.certificates : [];
  if (tls.cert === undefined && extra.length === 0) {
    issues.push({ path: at, message: 'needs a certificate: cert and key, or certificates' });
  }
  file(tls.cert, `${at}/cert`);
  file(tls.key, `${at}/key`);
  file(tls.ca, `${at}/ca`);
  extra.forEach((c: unknown, j) => {
    if (!isRecord(c)) return;
    file(c.cert, `${at}/certificates/${j}/cert`);
    file(c.key, `${at}/certificates/${j}/key`);
  });
  if ((tls.client_cert === 'optional' || tls.client_cert === 'require') && tls.ca === undefined) {
    issues.push({
      path: `${at}/ca`,
      message: `is required with client_cert "${tls.client_cert}" (client certificates are verified against it)`,
    });
  }
  return issues;
}

/** The services and their `depends` lists, as far as they are well typed. */
interface DependencyNode {
  index: number;
  name: string;
  depends: string[];
}

/**
 * Missing dependencies and cycles. A cycle is reported once, at the service whose
 * `depends` entry closes it, as `cycle: a -> b -> a`.
 */
function dependencyIssues(nodes: DependencyNode[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const byName = new Map<string, DependencyNode>();
  for (const n of nodes) if (!byName.has(n.name)) byName.set(n.name, n);
  for (const n of nodes) {
    n.depends.forEach((d, j) => {
      // A malformed name is reported by the schema already.
      if (!byName.has(d) && new RegExp(SERVICE_NAME_PATTERN).test(d)) {
        issues.push({
          path: `/services/${n.index}/depends/${j}`,
          message: `no service named "${d}"`,
        });
      }
    });
  }
  // Depth-first search in config order; a grey node reached again closes a cycle.
  const state = new Map<string, 'grey' | 'black'>();
  const stack: DependencyNode[] = [];
  const visit = (n: DependencyNode): void => {
    state.set(n.name, 'grey');
    stack.push(n);
    for (const d of n.depends) {
      const next = byName.get(d);
      if (!next) continue;
      const st = state.get(d);
      if (st === 'grey') {
        const from = stack.findIndex((x) => x.name === d);
        const names = stack.slice(from).map((x) => x.name);
        issues.push({
          path: `/services/${n.index}/depends`,
          message: `cycle: ${[...names, d].join(' -> ')}`,
        });
      } else if (st === undefined) {
        visit(next);
      }
    }
    stack.pop();
    state.set(n.name, 'black');
  };
  for (const n of nodes) if (!state.has(n.name)) visit(n);
  return issues;
}

/**
 * Checks JSON Schema cannot express. Runs on whatever the schema pass left, so it must not
 * assume anything is well typed; it only looks at values of the expected type.
 */
function crossFieldIssues(data: unknown, baseDir: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!isRecord(data)) return issues;

  if (Array.isArray(data.listeners)) {
    const seen = new Map<string, number>();
    const v4ports = new Map<number, number>(); // port -> first IPv4 listener on it
    const dualPorts = new Map<number, number>(); // port -> dual-stack "::" listener on it
    data.listeners.forEach((l: unknown, i) => {
      if (!isRecord(l) || typeof l.host !== 'string') return;
      if (l.host !== '' && isIP(l.host) === 0) {
        issues.push({
          path: `/listeners/${i}/host`,
          message: 'must be an IPv4 or IPv6 address',
        });
        return;
      }
      if (l.ipv6_only === true && isIP(l.host) !== 6) {
        issues.push({ path: `/listeners/${i}/ipv6_only`, message: 'needs an IPv6 host' });
      }
      issues.push(...tlsIssues(l.tls, `/listeners/${i}/tls`, baseDir));
      // Port 0 asks for a fresh ephemeral port each time, so it never collides.
      if (typeof l.port !== 'number' || l.port === 0) return;
      const key = `${l.host}:${l.port}`;
      const first = seen.get(key);
      if (first === undefined) seen.set(key, i);
      else issues.push({ path: `/listeners/${i}`, message: `duplicates /listeners/${first}` });
      if (isIP(l.host) === 4) v4ports.set(l.port, v4ports.get(l.port) ?? i);
      else if (/^[0:]+$/.test(l.host) && l.ipv6_only !== true) dualPorts.set(l.port, i);
    });
    // A dual-stack "::" takes the port on every IPv4 address as well.
    for (const [port, dual] of dualPorts) {
      const v4 = v4ports.get(port);
      if (v4 === undefined) continue;
      issues.push({
        path: `/listeners/${Math.max(v4, dual)}`,
        message: `port ${port} is taken for IPv4 too by the dual-stack "::" of /listeners/${dual} (set "ipv6_only": true there to bind IPv4 separately)`,
      });
    }
  }

  issues.push(...aclIssues(data.acl, '/acl'));
  const limits = isRecord(data.limits) ? data.limits : {};
  const maxMessage = typeof limits.max_message_size === 'number' ? limits.max_message_size : null;
  if (
    typeof limits.max_outbound_queue_size === 'number' &&
    typeof limits.outbound_high_water_mark === 'number' &&
    limits.max_outbound_queue_size !== 0 &&
    limits.max_outbound_queue_size < limits.outbound_high_water_mark
  ) {
    issues.push({
      path: '/limits/max_outbound_queue_size',
      message: `must be at least limits.outbound_high_water_mark (${limits.outbound_high_water_mark}), or 0`,
    });
  }
  if (Array.isArray(data.services)) {
    const names = new Map<string, number>();
    const targets = new Map<string, number>();
    data.services.forEach((s: unknown, i) => {
      if (!isRecord(s)) return;
      const name = typeof s.name === 'string' ? s.name : undefined;
      if (name !== undefined) {
        const first = names.get(name);
        if (first === undefined) names.set(name, i);
        else
          issues.push({
            path: `/services/${i}/name`,
            message: `duplicate service name "${name}" (also /services/${first}/name)`,
          });
      }
      const standalone = s.standalone === true;
      issues.push(...aclIssues(s.acl, `/services/${i}/acl`));
      if (Array.isArray(s.origins)) {
        s.origins.forEach((o: unknown, j) => {
          // The pattern allows 5 digits; the range is checked here.
          const port = typeof o === 'string' ? /:([0-9]+)$/.exec(o)?.[1] : undefined;
          if (port !== undefined && (+port < 1 || +port > 65535)) {
            issues.push({ path: `/services/${i}/origins/${j}`, message: 'port must be 1-65535' });
          }
        });
      }
      if (standalone && (s.acl !== undefined || s.origins !== undefined)) {
        issues.push({
          path: `/services/${i}/${s.acl !== undefined ? 'acl' : 'origins'}`,
          message: 'applies to clients connecting to a request path; a standalone service has none',
        });
      }
      if (standalone && s.kind === 'c') {
        issues.push({
          path: `/services/${i}/kind`,
          message: 'standalone services are written in Lua ("kind": "c" serves a request path)',
        });
      }
      if (standalone && s.request_target !== undefined) {
        issues.push({
          path: `/services/${i}/request_target`,
          message: 'must not be set for a standalone service (it answers no request path)',
        });
      } else if (!standalone && s.request_target === undefined) {
        issues.push({ path: `/services/${i}/request_target`, message: 'is required' });
      }
      if (isRecord(s.extra_headers)) {
        for (const header of Object.keys(s.extra_headers)) {
          const at = `/services/${i}/extra_headers/${pointerToken(header)}`;
          if (!new RegExp(HTTP_TOKEN_PATTERN).test(header)) {
            issues.push({ path: at, message: 'header name must be an HTTP token' });
          } else if (RESERVED_HEADERS.has(header.toLowerCase())) {
            issues.push({
              path: at,
              message:
                'is set by the handshake itself (use proto_alias or subprotocols for Sec-WebSocket-Protocol)',
            });
          }
        }
      }
      if (!standalone && typeof s.request_target === 'string') {
        const first = targets.get(s.request_target);
        if (first === undefined) targets.set(s.request_target, i);
        else
          issues.push({
            path: `/services/${i}/request_target`,
            message: `duplicate request_target "${s.request_target}" (also /services/${first}/request_target)`,
          });
      }
      // ajv's uniqueItems (8.20) keys a plain object by each string item, so a repeated
      // "__proto__", which sets that object's prototype instead, passes it unseen.
      for (const key of ['depends', 'preload', 'subprotocols'] as const) {
        const list = s[key];
        const last = Array.isArray(list) ? list.lastIndexOf('__proto__') : -1;
        const before = last > 0 ? (list as unknown[]).lastIndexOf('__proto__', last - 1) : -1;
        if (before >= 0) {
          issues.push({
            path: `/services/${i}/${key}`,
            message: `must NOT have duplicate items (items ## ${last} and ${before} are identical)`,
          });
        }
      }
      if (
        typeof s.max_inbound_message_size === 'number' &&
        maxMessage !== null &&
        s.max_inbound_message_size > maxMessage
      ) {
        issues.push({
          path: `/services/${i}/max_inbound_message_size`,
          message: `must not exceed limits.max_message_size (${maxMessage})`,
        });
      }
      // Only a valid name yields a meaningful default path; a bad name is reported already.
      const explicit = typeof s.source === 'string' && s.source !== '' ? s.source : undefined;
      const validName = name !== undefined && new RegExp(SERVICE_NAME_PATTERN).test(name);
      const kind: ServiceKind = s.kind === 'c' ? 'c' : 'lua';
      const relative = explicit ?? (validName ? defaultSource(name, kind) : undefined);
      if (relative === undefined) return;
      const problem = sourceProblem(path.resolve(baseDir, relative));
      if (problem !== undefined) {
        const note = explicit ? '' : ' (the default for a service without "source")';
        issues.push({ path: `/services/${i}/source`, message: `${problem}${note}` });
      }
    });
    const nodes: DependencyNode[] = [];
    data.services.forEach((s: unknown, index) => {
      if (!isRecord(s) || typeof s.name !== 'string') return;
      const depends = Array.isArray(s.depends)
        ? s.depends.filter((d): d is string => typeof d === 'string')
        : [];
      nodes.push({ index, name: s.name, depends });
    });
    issues.push(...dependencyIssues(nodes));
  }
  return issues;
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
    log: { level: c.log.level as LogLevel, json: c.log.json },
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
  if (c.static) {
    config.static = {
      dir: path.resolve(origin.baseDir, c.static.dir),
      host: c.static.host,
      port: c.static.port,
    };
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
  l: { host: string; port: number; ipv6_only?: boolean; tls?: unknown },
  baseDir: string,
): ListenerConfig {
  const listener: ListenerConfig = { host: l.host, port: l.port };
  if (l.ipv6_only) listener.ipv6_only = true;
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
 * The services in the order they must start: every service after the services it
 * `depends` on, and otherwise in config order (a stable topological sort). Stopping asks
 * every service at once. Services with `auto_start: false` are included; the caller decides.
 *
 * @param config a normalised config (normalizeConfig has ruled out missing names and
 *   cycles).
 * @throws Error if `config` has a dependency cycle or a missing dependency anyway.
 */
export function startOrder(config: LappsConfig): ServiceConfig[] {
  const services = config.services;
  const names = new Set(services.map((s) => s.name));
  const started = new Set<string>();
  const order: ServiceConfig[] = [];
  while (order.length < services.length) {
    // The first service in config order whose dependencies have all started.
    const next = services.find(
      (s) => !started.has(s.name) && s.depends.every((d) => started.has(d)),
    );
    if (!next) {
      const stuck = services.filter((s) => !started.has(s.name));
      const missing = stuck.flatMap((s) => s.depends.filter((d) => !names.has(d)));
      throw new Error(
        missing.length > 0
          ? `startOrder: no service named ${missing.map((m) => `"${m}"`).join(', ')}`
          : `startOrder: dependency cycle among ${stuck.map((s) => s.name).join(', ')}`,
      );
    }
    started.add(next.name);
    order.push(next);
  }
  return order;
}

class JsonSyntaxError extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

/** Offset and wording of the first syntax error in `text` (which JSON.parse rejected). */
function locateJsonError(text: string): { offset: number; message: string } {
  let i = 0;
  const found = (): string => (i >= text.length ? 'end of file' : JSON.stringify(text[i]));
  const fail = (message: string): never => {
    throw new JsonSyntaxError(i, message);
  };
  const space = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const str = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const ch = text[i]!;
      if (ch === '"') {
        i++;
        return;
      }
      if (ch === '\\') {
        const next = text[i + 1] ?? '';
        if (next !== '' && '"\\/bfnrt'.includes(next)) i += 2;
        else if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else fail('invalid escape in string');
      } else if (ch < ' ') {
        fail('control character in string (use an escape such as \\n)');
      } else {
        i++;
      }
    }
  };
  const num = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  const value = (): void => {
    space();
    const ch = text[i];
    if (ch === '{' || ch === '[') {
      const close = ch === '{' ? '}' : ']';
      i++;
      space();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (close === '}') {
          space();
          if (text[i] !== '"') fail(`expected a double-quoted key, found ${found()}`);
          str();
          space();
          if (text[i] !== ':') fail(`expected ":" after the key, found ${found()}`);
          i++;
        }
        value();
        space();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === close) {
          i++;
          return;
        }
        fail(`expected "," or "${close}", found ${found()}`);
      }
    }
    if (ch === '"') return str();
    if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) {
      num.lastIndex = i;
      const m = num.exec(text);
      if (!m) fail('invalid number');
      i += m![0].length;
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    fail(`unexpected ${found()}`);
  };
  try {
    value();
    space();
    if (i < text.length) fail(`unexpected ${found()} after the end of the document`);
  } catch (e) {
    if (e instanceof JsonSyntaxError) return { offset: e.offset, message: e.message };
    throw e;
  }
  return { offset: text.length, message: 'invalid JSON' };
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
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
    let where: { offset: number; message: string };
    try {
      where = locateJsonError(text);
    } catch {
      // Only a pathological nesting depth gets here; report the whole file.
      where = { offset: 0, message: 'invalid JSON' };
    }
    const { line, column } = lineColumn(text, where.offset);
    throw new ConfigError(file, [
      { path: '', message: `invalid JSON: ${where.message}`, line, column },
    ]);
  }
}

/**
 * Reads and normalises a config file; relative paths in it resolve against its directory.
 *
 * @throws ConfigError when the file cannot be read, is not valid JSON (the issue carries
 *   the line and column), or does not satisfy the schema.
 */
export function loadConfigFile(file: string): LappsConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    throw new ConfigError(file, [{ path: '', message: `cannot read config: ${why}` }]);
  }
  const raw = parseConfigText(file, text);
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

/**
 * Applies command-line overrides to a normalised config and returns the result (the input
 * is not modified). `host` and `port` replace the address of the *first* listener only;
 * other listeners keep theirs.
 *
 * @throws ConfigError (file "command line", path "--host" etc.) for an invalid value, or
 *   when the first listener would then have the address of another one.
 */
export function applyOverrides(config: LappsConfig, overrides: ConfigOverrides): LappsConfig {
  const issues: ConfigIssue[] = [];
  const { host, port, workers } = overrides;
  if (host !== undefined && isIP(host) === 0) {
    issues.push({ path: '--host', message: 'must be an IPv4 or IPv6 address' });
  }
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    issues.push({ path: '--port', message: 'must be an integer from 0 to 65535' });
  }
  if (
    workers !== undefined &&
    !(Number.isInteger(workers) && workers >= 1 && workers <= MAX_WORKERS)
  ) {
    issues.push({ path: '--workers', message: `must be an integer from 1 to ${MAX_WORKERS}` });
  }
  if (issues.length > 0) throw new ConfigError('command line', issues);

  const listeners = config.listeners.map((l) => ({ ...l }));
  const first = listeners[0];
  if (first && (host !== undefined || port !== undefined)) {
    if (host !== undefined) first.host = host;
    if (port !== undefined) first.port = port;
    // The file's listeners are distinct (normalizeConfig); moving the first one must not
    // make it one of the others.
    const same = listeners.findIndex(
      (l, i) => i > 0 && first.port !== 0 && l.host === first.host && l.port === first.port,
    );
    if (same > 0) {
      throw new ConfigError('command line', [
        {
          path: port !== undefined ? '--port' : '--host',
          message: `would make the first listener the same as /listeners/${same} (${first.host} port ${first.port})`,
        },
      ]);
    }
  }
  return {
    ...config,
    listeners,
    workers: workers ?? config.workers,
    limits: { ...config.limits },
    log: { ...config.log },
    services: config.services.map((s) => ({
      ...s,
      depends: [...s.depends],
      preload: [...s.preload],
      extra_headers: { ...s.extra_headers },
      subprotocols: [...s.subprotocols],
    })),
  };
}
