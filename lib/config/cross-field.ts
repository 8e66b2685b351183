/**
 * The checks JSON Schema cannot express: rules between keys, files that must exist, and
 * addresses that must parse. They run on whatever the schema pass left, so none may assume
 * anything is well typed: each looks only at values of the type it expects. Every check
 * is named; the order of the lists below is the order issues are reported in.
 */
import { statSync, type Stats } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';

import { isRecord, pointerToken, type ConfigIssue } from './issues.js';
import { CIDR_PATTERN, defaultSource, HTTP_TOKEN_PATTERN, SERVICE_NAME_PATTERN } from './schema.js';
import { dependencyIssues } from './service-graph.js';
import type { ServiceKind } from './types.js';

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

/** State the listener checks share across listeners. */
interface ListenerScan {
  baseDir: string;
  /** host:port -> first listener on it. */
  seen: Map<string, number>;
  /** port -> first IPv4 listener on it. */
  v4ports: Map<number, number>;
  /** port -> dual-stack "::" listener on it. */
  dualPorts: Map<number, number>;
}

/** Host, ipv6_only, TLS and address clashes of one listener, in that order. */
function listenerIssues(l: Record<string, unknown>, i: number, scan: ListenerScan): ConfigIssue[] {
  if (typeof l.host !== 'string') return [];
  if (l.host !== '' && isIP(l.host) === 0) {
    return [{ path: `/listeners/${i}/host`, message: 'must be an IPv4 or IPv6 address' }];
  }
  const issues: ConfigIssue[] = [];
  if (l.ipv6_only === true && isIP(l.host) !== 6) {
    issues.push({ path: `/listeners/${i}/ipv6_only`, message: 'needs an IPv6 host' });
  }
  issues.push(...tlsIssues(l.tls, `/listeners/${i}/tls`, scan.baseDir));
  // Port 0 asks for a fresh ephemeral port each time, so it never collides.
  if (typeof l.port !== 'number' || l.port === 0) return issues;
  const key = `${l.host}:${l.port}`;
  const first = scan.seen.get(key);
  if (first === undefined) scan.seen.set(key, i);
  else issues.push({ path: `/listeners/${i}`, message: `duplicates /listeners/${first}` });
  if (isIP(l.host) === 4) scan.v4ports.set(l.port, scan.v4ports.get(l.port) ?? i);
  else if (/^[0:]+$/.test(l.host) && l.ipv6_only !== true) scan.dualPorts.set(l.port, i);
  return issues;
}

/** Every listener, then the ports a dual-stack "::" takes from IPv4 listeners. */
function listenersCheck(data: Record<string, unknown>, baseDir: string): ConfigIssue[] {
  if (!Array.isArray(data.listeners)) return [];
  const issues: ConfigIssue[] = [];
  const scan: ListenerScan = { baseDir, seen: new Map(), v4ports: new Map(), dualPorts: new Map() };
  data.listeners.forEach((l: unknown, i) => {
    if (isRecord(l)) issues.push(...listenerIssues(l, i, scan));
  });
  // A dual-stack "::" takes the port on every IPv4 address as well.
  for (const [port, dual] of scan.dualPorts) {
    const v4 = scan.v4ports.get(port);
    if (v4 === undefined) continue;
    issues.push({
      path: `/listeners/${Math.max(v4, dual)}`,
      message: `port ${port} is taken for IPv4 too by the dual-stack "::" of /listeners/${dual} (set "ipv6_only": true there to bind IPv4 separately)`,
    });
  }
  return issues;
}

/** The server-wide ACL's entries. */
function serverAclCheck(data: Record<string, unknown>): ConfigIssue[] {
  return aclIssues(data.acl, '/acl');
}

const CIDR_RE = new RegExp(CIDR_PATTERN);

/** trusted_proxies: addresses or CIDR blocks, as ACL entries are checked. */
function trustedProxiesCheck(data: Record<string, unknown>): ConfigIssue[] {
  if (!Array.isArray(data.trusted_proxies)) return [];
  const issues: ConfigIssue[] = [];
  data.trusted_proxies.forEach((entry: unknown, i) => {
    // Entries the schema's pattern refused are reported once, by the schema.
    if (typeof entry !== 'string' || !CIDR_RE.test(entry)) return;
    const problem = cidrProblem(entry);
    if (problem) issues.push({ path: `/trusted_proxies/${i}`, message: problem });
  });
  return issues;
}

/** A bounded outbound queue must hold at least the high-water mark. */
function outboundQueueCheck(data: Record<string, unknown>): ConfigIssue[] {
  const limits = isRecord(data.limits) ? data.limits : {};
  if (
    typeof limits.max_outbound_queue_size === 'number' &&
    typeof limits.outbound_high_water_mark === 'number' &&
    limits.max_outbound_queue_size !== 0 &&
    limits.max_outbound_queue_size < limits.outbound_high_water_mark
  ) {
    return [
      {
        path: '/limits/max_outbound_queue_size',
        message: `must be at least limits.outbound_high_water_mark (${limits.outbound_high_water_mark}), or 0`,
      },
    ];
  }
  return [];
}

/** State the service checks share across services. */
interface ServiceScan {
  baseDir: string;
  /** limits.max_message_size, when it is a number. */
  maxMessage: number | null;
  /** name -> first service with it. */
  names: Map<string, number>;
  /** request_target -> first service at it. */
  targets: Map<string, number>;
}

/** A check of one raw service entry `s`, at /services/`i`. */
type ServiceCheck = (s: Record<string, unknown>, i: number, scan: ServiceScan) => ConfigIssue[];

const uniqueName: ServiceCheck = (s, i, scan) => {
  if (typeof s.name !== 'string') return [];
  const first = scan.names.get(s.name);
  if (first === undefined) {
    scan.names.set(s.name, i);
    return [];
  }
  return [
    {
      path: `/services/${i}/name`,
      message: `duplicate service name "${s.name}" (also /services/${first}/name)`,
    },
  ];
};

const serviceAcl: ServiceCheck = (s, i) => aclIssues(s.acl, `/services/${i}/acl`);

/** The pattern allows 5 digits; the range is checked here. */
const originPorts: ServiceCheck = (s, i) => {
  if (!Array.isArray(s.origins)) return [];
  const issues: ConfigIssue[] = [];
  s.origins.forEach((o: unknown, j) => {
    const port = typeof o === 'string' ? /:([0-9]+)$/.exec(o)?.[1] : undefined;
    if (port !== undefined && (+port < 1 || +port > 65535)) {
      issues.push({ path: `/services/${i}/origins/${j}`, message: 'port must be 1-65535' });
    }
  });
  return issues;
};

/** A standalone service has no clients (no acl, origins) and is written in Lua. */
const standaloneKeys: ServiceCheck = (s, i) => {
  if (s.standalone !== true) return [];
  const issues: ConfigIssue[] = [];
  if (s.acl !== undefined || s.origins !== undefined) {
    issues.push({
      path: `/services/${i}/${s.acl !== undefined ? 'acl' : 'origins'}`,
      message: 'applies to clients connecting to a request path; a standalone service has none',
    });
  }
  if (s.kind === 'c') {
    issues.push({
      path: `/services/${i}/kind`,
      message: 'standalone services are written in Lua ("kind": "c" serves a request path)',
    });
  }
  return issues;
};

/** request_target is given exactly when the service is not standalone. */
const requestTargetPresence: ServiceCheck = (s, i) => {
  const standalone = s.standalone === true;
  if (standalone && s.request_target !== undefined) {
    return [
      {
        path: `/services/${i}/request_target`,
        message: 'must not be set for a standalone service (it answers no request path)',
      },
    ];
  }
  if (!standalone && s.request_target === undefined) {
    return [{ path: `/services/${i}/request_target`, message: 'is required' }];
  }
  return [];
};

const extraHeaderNames: ServiceCheck = (s, i) => {
  if (!isRecord(s.extra_headers)) return [];
  const issues: ConfigIssue[] = [];
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
  return issues;
};

const uniqueRequestTarget: ServiceCheck = (s, i, scan) => {
  if (s.standalone === true || typeof s.request_target !== 'string') return [];
  const first = scan.targets.get(s.request_target);
  if (first === undefined) {
    scan.targets.set(s.request_target, i);
    return [];
  }
  return [
    {
      path: `/services/${i}/request_target`,
      message: `duplicate request_target "${s.request_target}" (also /services/${first}/request_target)`,
    },
  ];
};

/**
 * ajv's uniqueItems (8.20) keys a plain object by each string item, so a repeated
 * "__proto__", which sets that object's prototype instead, passes it unseen.
 */
const repeatedProto: ServiceCheck = (s, i) => {
  const issues: ConfigIssue[] = [];
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
  return issues;
};

const inboundSizeWithinLimit: ServiceCheck = (s, i, scan) => {
  if (
    typeof s.max_inbound_message_size === 'number' &&
    scan.maxMessage !== null &&
    s.max_inbound_message_size > scan.maxMessage
  ) {
    return [
      {
        path: `/services/${i}/max_inbound_message_size`,
        message: `must not exceed limits.max_message_size (${scan.maxMessage})`,
      },
    ];
  }
  return [];
};

/** The service's code (its `source`, else the default path) is a file. */
const sourceExists: ServiceCheck = (s, i, scan) => {
  // Only a valid name yields a meaningful default path; a bad name is reported already.
  const name = typeof s.name === 'string' ? s.name : undefined;
  const explicit = typeof s.source === 'string' && s.source !== '' ? s.source : undefined;
  const validName = name !== undefined && new RegExp(SERVICE_NAME_PATTERN).test(name);
  const kind: ServiceKind = s.kind === 'c' ? 'c' : 'lua';
  const relative = explicit ?? (validName ? defaultSource(name, kind) : undefined);
  if (relative === undefined) return [];
  const problem = sourceProblem(path.resolve(scan.baseDir, relative));
  if (problem === undefined) return [];
  const note = explicit ? '' : ' (the default for a service without "source")';
  return [{ path: `/services/${i}/source`, message: `${problem}${note}` }];
};

/** The checks of each service, in the order its issues are reported. */
const SERVICE_CHECKS: readonly ServiceCheck[] = [
  uniqueName,
  serviceAcl,
  originPorts,
  standaloneKeys,
  requestTargetPresence,
  extraHeaderNames,
  uniqueRequestTarget,
  repeatedProto,
  inboundSizeWithinLimit,
  sourceExists,
];

/** Every service, then the dependency graph (missing services, cycles). */
function servicesCheck(data: Record<string, unknown>, baseDir: string): ConfigIssue[] {
  if (!Array.isArray(data.services)) return [];
  const limits = isRecord(data.limits) ? data.limits : {};
  const scan: ServiceScan = {
    baseDir,
    maxMessage: typeof limits.max_message_size === 'number' ? limits.max_message_size : null,
    names: new Map(),
    targets: new Map(),
  };
  const issues: ConfigIssue[] = [];
  data.services.forEach((s: unknown, i) => {
    if (!isRecord(s)) return;
    for (const check of SERVICE_CHECKS) issues.push(...check(s, i, scan));
  });
  issues.push(...dependencyIssues(data.services));
  return issues;
}

/** A check of the whole document; `baseDir` resolves relative paths. */
type DocumentCheck = (data: Record<string, unknown>, baseDir: string) => ConfigIssue[];

/** The document checks, in the order their issues are reported. */
const DOCUMENT_CHECKS: readonly DocumentCheck[] = [
  listenersCheck,
  serverAclCheck,
  trustedProxiesCheck,
  outboundQueueCheck,
  servicesCheck,
];

/**
 * Every problem the schema cannot see in `data` (the config after the schema pass, which
 * may have failed). Relative paths resolve against `baseDir`.
 */
export function crossFieldIssues(data: unknown, baseDir: string): ConfigIssue[] {
  if (!isRecord(data)) return [];
  return DOCUMENT_CHECKS.flatMap((check) => check(data, baseDir));
}
