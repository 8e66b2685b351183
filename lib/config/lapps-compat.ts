/**
 * Reads a LAppS installation's `ws.json` + `lapps.json` (LAPPS-COMPAT.md, "Layout and
 * config") as a lapps config, so LAppS users start lapps on their files unmodified.
 *
 * LAppS files are accepted as they are: keys lapps has no use for, or does not support yet,
 * produce one warning each instead of an error. What is left then goes through the normal
 * validation (normalizeConfig), whose issues are mapped back to the LAppS file and key.
 */
import path from 'node:path';

import { ConfigError, isRecord, pointerToken, type ConfigIssue } from './issues.js';
import { normalizeConfig, readConfigJson } from './load.js';
import type { LappsConfig } from './types.js';

/** LAppS's own defaults for what its files may leave out. */
export const LAPPS_DEFAULTS = {
  home: '/opt/lapps',
  ip: '0.0.0.0',
  port: 5083,
  workers: 4,
  applications: 'apps',
  /** Frame size LAppS's auto_fragment split outbound messages into. */
  auto_fragment_size: 1392,
} as const;

/** Where a LAppS home's config files are, after the environment has been applied. */
export interface LappsPaths {
  home: string;
  confDir: string;
  wsConfig: string;
  lappsConfig: string;
}

/** The result of reading a LAppS home. */
export interface LappsHomeResult {
  config: LappsConfig;
  /** One line per key accepted but not used, `<file>: <pointer>: <why>`. */
  warnings: string[];
}

/** The un-normalised lapps config equivalent to a LAppS home (what `config convert` prints). */
export interface LappsConversion {
  /** A lapps config file's content; service sources are absolute paths. */
  raw: Record<string, unknown>;
  warnings: string[];
  paths: LappsPaths;
}

/** ws.json keys under `workers` (or top level) that lapps accepts and ignores, and why. */
const IGNORED_WS_KEYS: Record<string, string> = {
  listeners:
    'lapps has no use for it: every worker has its own SO_REUSEPORT accept socket on the port',
  connection_weight: 'lapps has no use for it (LAppS did not use it either)',
  lapps_config_auto_save: 'lapps has no use for it: lapps never rewrites its config files',
};
const IGNORED_WORKER_KEYS: Record<string, string> = {
  max_poll_events: 'lapps has no use for it: workers size their epoll batches themselves',
  max_poll_wait_ms:
    'lapps has no use for it: workers sleep in epoll until a socket, timer or inbox message wakes them',
  max_inbounds_skip: 'lapps has no use for it: messages are dispatched as soon as they arrive',
  input_buffer_size:
    'lapps has no use for it: read buffers are sized by the server; limits.max_message_size bounds a message',
};
const IGNORED_DIRECTORY_KEYS: Record<string, string> = {
  deploy: 'lapps has no use for it: services are loaded from directories.applications only',
  tmp: 'lapps has no use for it: lapps writes no temporary files',
};
/** LAppS's tls_server_version values: 3 = TLS 1.2, 4 = TLS 1.3. */
const TLS_VERSIONS: Record<number, string> = { 3: '1.2', 4: '1.3' };
/** lapps.json service keys that mean the same in lapps. */
const DIRECT_SERVICE_KEYS = [
  'auto_start',
  'instances',
  'request_target',
  'max_inbound_message_size',
  'preload',
  'depends',
  'extra_headers',
  'proto_alias',
] as const;

/**
 * Applies LAppS's environment variables: LAPPS_HOME (when `home` is not given; default
 * /opt/lapps), LAPPS_CONF_DIR (default $LAPPS_HOME/etc/conf), WS_CONFIG and LAPPS_CONFIG
 * (file names in the config dir, default ws.json and lapps.json; absolute paths are kept).
 * Relative paths resolve against the current directory.
 */
export function lappsPaths(home?: string, env: NodeJS.ProcessEnv = process.env): LappsPaths {
  const h = path.resolve(home || env.LAPPS_HOME || LAPPS_DEFAULTS.home);
  const confDir = path.resolve(h, env.LAPPS_CONF_DIR || path.join('etc', 'conf'));
  return {
    home: h,
    confDir,
    wsConfig: path.resolve(confDir, env.WS_CONFIG || 'ws.json'),
    lappsConfig: path.resolve(confDir, env.LAPPS_CONFIG || 'lapps.json'),
  };
}

/** Reads and parses one LAppS JSON file; must be an object. */
function readJsonObject(file: string): Record<string, unknown> {
  const raw = readConfigJson(file);
  if (!isRecord(raw)) throw new ConfigError(file, [{ path: '/', message: 'must be object' }]);
  return raw;
}

/** Collects warnings and errors, each about one of the two files. */
class Findings {
  readonly warnings: string[] = [];
  readonly issues: ConfigIssue[] = [];

  warn(file: string, pointer: string, why: string): void {
    this.warnings.push(`${file}: ${pointer}: ${why}`);
  }

  error(file: string, pointer: string, message: string): void {
    this.issues.push({ file, path: pointer, message });
  }
}

function convertWs(
  ws: Record<string, unknown>,
  file: string,
  home: string,
  out: Record<string, unknown>,
  f: Findings,
): void {
  const listener: Record<string, unknown> = { host: LAPPS_DEFAULTS.ip, port: LAPPS_DEFAULTS.port };
  out.listeners = [listener];
  out.workers = LAPPS_DEFAULTS.workers;
  const limits: Record<string, unknown> = {};
  out.limits = limits;
  let perWorkerConnections: unknown;
  for (const [key, value] of Object.entries(ws)) {
    const at = `/${pointerToken(key)}`;
    if (key === 'ip') listener.host = value;
    else if (key === 'port') listener.port = value;
    else if (key === 'workers') {
      if (!isRecord(value)) {
        f.error(file, at, 'must be object');
        continue;
      }
      for (const [wkey, wvalue] of Object.entries(value)) {
        const wat = `${at}/${pointerToken(wkey)}`;
        if (wkey === 'workers') out.workers = wvalue;
        else if (wkey === 'max_connections') perWorkerConnections = wvalue;
        else if (wkey === 'auto_fragment') {
          if (typeof wvalue !== 'boolean') f.error(file, wat, 'must be boolean');
          else if (wvalue) limits.auto_fragment_size = LAPPS_DEFAULTS.auto_fragment_size;
        } else if (Object.hasOwn(IGNORED_WORKER_KEYS, wkey)) {
          f.warn(file, wat, `ignored: ${IGNORED_WORKER_KEYS[wkey]}`);
        } else {
          f.warn(file, wat, 'ignored: unknown key');
        }
      }
    } else if (Object.hasOwn(IGNORED_WS_KEYS, key)) {
      f.warn(file, at, `ignored: ${IGNORED_WS_KEYS[key]}`);
    } else if (key === 'acl') {
      out.acl = value; // same shape: {policy, exclude}
    } else if (key === 'tls' || key === 'tls_server_version' || key === 'tls_certificates') {
      continue; // below, together
    } else if (key === 'tls_client_version') {
      f.warn(
        file,
        at,
        "ignored: lapps's outbound clients (cws, lapps.websocket) speak TLS 1.2 and 1.3",
      );
    } else {
      f.warn(file, at, 'ignored: unknown key');
    }
  }
  // LAppS's max_connections is per worker; lapps counts the server as a whole.
  if (perWorkerConnections !== undefined) {
    const workers = typeof out.workers === 'number' ? out.workers : LAPPS_DEFAULTS.workers;
    if (typeof perWorkerConnections !== 'number' || !Number.isInteger(perWorkerConnections)) {
      f.error(file, '/workers/max_connections', 'must be integer');
    } else if (perWorkerConnections > 0) {
      limits.max_connections = perWorkerConnections * workers;
    }
  }
  if (ws.tls === undefined || ws.tls === false) {
    for (const key of ['tls_certificates', 'tls_server_version'] as const) {
      if (ws[key] !== undefined) f.warn(file, `/${key}`, 'ignored: tls is not true (plain ws://)');
    }
    return;
  }
  if (ws.tls !== true) {
    f.error(file, '/tls', 'must be boolean');
    return;
  }
  const version = ws.tls_server_version;
  const minVersion = version === undefined ? undefined : TLS_VERSIONS[Number(version)];
  if (version !== undefined && (typeof version !== 'number' || minVersion === undefined)) {
    f.error(file, '/tls_server_version', 'must be 3 (TLS 1.2) or 4 (TLS 1.3)');
  }
  const certs = ws.tls_certificates;
  if (!isRecord(certs) || typeof certs.cert !== 'string' || typeof certs.key !== 'string') {
    f.error(file, '/tls_certificates', 'tls is true: cert and key (PEM file paths) are required');
    return;
  }
  // Relative paths are the LAppS home's (like services'); made absolute so the converted
  // config works from any directory.
  const tls: Record<string, unknown> = {
    cert: path.resolve(home, certs.cert),
    key: path.resolve(home, certs.key),
  };
  // LAppS loaded ca into the verify store, which OpenSSL uses to complete the chain it sends.
  if (typeof certs.ca === 'string' && certs.ca !== '') tls.ca = path.resolve(home, certs.ca);
  if (minVersion !== undefined) tls.min_version = minVersion;
  listener.tls = tls;
}

function convertProtocol(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const lower = value.toLowerCase();
  return lower === 'lapps' || lower === 'raw' ? lower : value;
}

/** Maps one lapps.json service entry; `name` is its key. */
function convertService(
  name: string,
  entry: Record<string, unknown>,
  appsDir: string,
  file: string,
  f: Findings,
): Record<string, unknown> {
  const at = `/services/${pointerToken(name)}`;
  const service: Record<string, unknown> = { name };
  for (const [key, value] of Object.entries(entry)) {
    const kat = `${at}/${pointerToken(key)}`;
    if (key === 'standalone' || key === 'internal') {
      if ('standalone' in service) {
        f.warn(file, kat, 'ignored: "standalone" and "internal" both given; the first one counts');
      } else {
        service.standalone = value;
      }
    } else if (key === 'protocol') {
      service.protocol = convertProtocol(value);
    } else if ((DIRECT_SERVICE_KEYS as readonly string[]).includes(key)) {
      service[key] = value;
    } else if (key === 'acl') {
      service.acl = value; // same shape: {policy, exclude}
    } else {
      f.warn(file, kat, 'ignored: unknown key');
    }
  }
  // LAppS ignores a request_target on a standalone service; lapps would reject it.
  if (service.standalone === true && 'request_target' in service) {
    f.warn(file, `${at}/request_target`, 'ignored: a standalone service has no request path');
    delete service.request_target;
  }
  if (service.standalone === true && 'acl' in service) {
    f.warn(file, `${at}/acl`, 'ignored: a standalone service has no clients of its own');
    delete service.acl;
  }
  // LAppS checked no Origin: pages from anywhere could connect, and its users' pages rely
  // on that. Kept, and said once (see convertLapps).
  if (service.standalone !== true) service.origins = ['*'];
  service.source = path.join(appsDir, name, `${name}.lua`);
  return service;
}

function convertLapps(
  lapps: Record<string, unknown>,
  file: string,
  home: string,
  out: Record<string, unknown>,
  f: Findings,
): void {
  let applications: string = LAPPS_DEFAULTS.applications;
  const services: Record<string, unknown>[] = [];
  out.services = services;
  const directories = lapps.directories;
  if (directories !== undefined) {
    if (!isRecord(directories)) f.error(file, '/directories', 'must be object');
    else {
      for (const [key, value] of Object.entries(directories)) {
        const at = `/directories/${pointerToken(key)}`;
        if (key === 'applications') {
          if (typeof value === 'string' && value !== '') applications = value;
          else f.error(file, at, 'must be a non-empty string');
        } else if (Object.hasOwn(IGNORED_DIRECTORY_KEYS, key)) {
          f.warn(file, at, `ignored: ${IGNORED_DIRECTORY_KEYS[key]}`);
        } else {
          f.warn(file, at, 'ignored: unknown key');
        }
      }
    }
  }
  const appsDir = path.resolve(home, applications);
  for (const [key, value] of Object.entries(lapps)) {
    if (key === 'directories') continue;
    if (key !== 'services') {
      f.warn(file, `/${pointerToken(key)}`, 'ignored: unknown key');
      continue;
    }
    if (!isRecord(value)) {
      f.error(file, '/services', 'must be object');
      continue;
    }
    for (const [name, entry] of Object.entries(value)) {
      if (!isRecord(entry)) {
        f.error(file, `/services/${pointerToken(name)}`, 'must be object');
        continue;
      }
      services.push(convertService(name, entry, appsDir, file, f));
    }
  }
  if (services.some((s) => s.standalone !== true)) {
    f.warn(
      file,
      '/services',
      'LAppS checked no Origin, so these services accept pages from any origin ("origins": ["*"]); a lapps config can list the allowed ones (docs/config.md, Origin policy)',
    );
  }
  // LAppS had no server-wide message limit; raise lapps's so per-service ones still fit.
  const largest = Math.max(
    0,
    ...services.map((s) =>
      typeof s.max_inbound_message_size === 'number' ? s.max_inbound_message_size : 0,
    ),
  );
  const limits = out.limits as Record<string, unknown>;
  if (largest > 16 * 1024 * 1024) limits.max_message_size = largest;
}

/**
 * Converts a LAppS home into the equivalent lapps config, without validating it.
 *
 * @param home the LAppS home; when not given, $LAPPS_HOME, else /opt/lapps.
 * @throws ConfigError when a file cannot be read, is not JSON (with line and column), or
 *   has a value of a shape the conversion cannot use.
 */
export function convertLappsHome(
  home?: string,
  env: NodeJS.ProcessEnv = process.env,
): LappsConversion {
  const { raw, warnings, paths } = convert(home, env);
  return { raw, warnings, paths };
}

function convert(
  home: string | undefined,
  env: NodeJS.ProcessEnv,
): LappsConversion & { lapps: Record<string, unknown> } {
  const paths = lappsPaths(home, env);
  const ws = readJsonObject(paths.wsConfig);
  const lapps = readJsonObject(paths.lappsConfig);
  const f = new Findings();
  const raw: Record<string, unknown> = {};
  convertWs(ws, paths.wsConfig, paths.home, raw, f);
  convertLapps(lapps, paths.lappsConfig, paths.home, raw, f);
  if (f.issues.length > 0) throw new ConfigError(paths.lappsConfig, f.issues);
  if (Object.keys(raw.limits as object).length === 0) delete raw.limits;
  return { raw, warnings: f.warnings, paths, lapps };
}

/** Maps an issue about the converted config back to the LAppS file and key it came from. */
function mapIssue(
  issue: ConfigIssue,
  raw: Record<string, unknown>,
  paths: LappsPaths,
  lapps: Record<string, unknown>,
): ConfigIssue {
  const services = raw.services as Record<string, unknown>[];
  const m = /^\/services\/(\d+)(\/([^/]+))?(.*)$/.exec(issue.path);
  if (m) {
    const name = String(services[Number(m[1])]?.name ?? m[1]);
    let key = m[3];
    const entry = isRecord(lapps.services) ? lapps.services[name] : undefined;
    if (key === 'standalone' && isRecord(entry) && !('standalone' in entry)) key = 'internal';
    // The source path is derived from the name and directories.applications.
    const rest = key === undefined || key === 'source' || key === 'name' ? '' : `/${key}${m[4]}`;
    return {
      file: paths.lappsConfig,
      path: `/services/${pointerToken(name)}${rest}`,
      message: issue.message,
    };
  }
  const wsPaths: [RegExp, string][] = [
    [/^\/listeners\/0\/host$/, '/ip'],
    [/^\/listeners\/0\/port$/, '/port'],
    [/^\/workers$/, '/workers/workers'],
    [/^\/limits\/auto_fragment_size$/, '/workers/auto_fragment'],
  ];
  for (const [re, pointer] of wsPaths) {
    if (re.test(issue.path)) return { file: paths.wsConfig, path: pointer, message: issue.message };
  }
  return { ...issue, file: paths.lappsConfig };
}

/**
 * Reads a LAppS home (`ws.json` + `lapps.json`, see LAPPS-COMPAT.md) and returns the
 * normalised lapps config plus one warning per key accepted but not used.
 *
 * @param home the LAppS home; when not given (or ""), $LAPPS_HOME, else /opt/lapps.
 * @param env the environment holding LAPPS_HOME, LAPPS_CONF_DIR, WS_CONFIG, LAPPS_CONFIG.
 * @throws ConfigError naming the LAppS file and key of every problem (syntax errors with
 *   line and column; a missing service file, a depends cycle, a bad value, ...).
 */
export function readLappsHome(
  home?: string,
  env: NodeJS.ProcessEnv = process.env,
): LappsHomeResult {
  const { raw, warnings, paths, lapps } = convert(home, env);
  try {
    const config = normalizeConfig(raw, { file: paths.lappsConfig, baseDir: paths.home });
    return { config, warnings };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(
      paths.lappsConfig,
      err.issues.map((i) => mapIssue(i, raw, paths, lapps)),
    );
  }
}
