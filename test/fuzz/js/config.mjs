/**
 * Fuzz target "config": the lapps config loader (lib/config/: load.ts and the modules it
 * uses, overrides.ts, service-graph.ts) and the LAppS converter (lib/config/lapps-compat.ts),
 * as compiled into dist/lib.
 *
 * Input encoding: the first byte picks the case, the rest is its data.
 *   'C'  a lapps config file's text: parseConfigText, normalizeConfig (base directory: a
 *        temporary tree holding the service files the seeds name), startOrder,
 *        toNativeSettings.
 *   'L'  ws.json, a NUL byte, lapps.json: both written into a temporary LAppS home, then
 *        readLappsHome and convertLappsHome.
 *   'O'  command-line overrides as a JSON object ({"host", "port", "workers"}; a number may
 *        be given as a string, for NaN, Infinity or -0), a NUL byte, then a config's text
 *        (empty: a small valid config): applyOverrides on the normalised config.
 *   any other first byte: byte % 3 picks C, L or O.
 *
 * The property: every input yields either a config whose every field is what the native
 * side and the rest of the server may rely on (types, ranges, no NUL in strings that become
 * C strings, unique names and request targets, a start order that is a dependency-respecting
 * permutation, ...), or a ConfigError whose issues each name a path and say something. Any
 * other exception, and any broken invariant, propagates: that is a finding.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { root } from './dist.mjs';
import { ConfigError } from '../../../dist/lib/config/issues.js';
import { normalizeConfig, parseConfigText } from '../../../dist/lib/config/load.js';
import { applyOverrides } from '../../../dist/lib/config/overrides.js';
import { startedServices, startOrder } from '../../../dist/lib/config/service-graph.js';
import {
  convertLappsHome,
  lappsPaths,
  readLappsHome,
} from '../../../dist/lib/config/lapps-compat.js';
import {
  buildConfigSchema,
  CIDR_PATTERN,
  DEFAULT_LIMITS,
  HTTP_TOKEN_PATTERN,
  LUA_MODULE_PATTERN,
  ORIGIN_PATTERN,
  REQUEST_TARGET_PATTERN,
  SERVICE_NAME_PATTERN,
} from '../../../dist/lib/config/schema.js';
import { loadNative, toNativeSettings } from '../../../dist/lib/native.js';

// The addon's policy compiler (ACLs, origins, TLS contexts) checks what the TypeScript
// side accepted: built addon only (npm test builds it; LAPPS_ADDON picks the ASan one).
const native = loadNative();

/** Service names with files in the temporary trees (the names the seeds use). */
const SERVICE_NAMES = [
  'a',
  'b',
  'c',
  'broadcast_blob',
  'chat',
  'chat_time',
  'console',
  'cws_bench',
  'echo',
  'echo_lapps',
  'feed',
  'mqr_receiver',
  'mqr_sender',
  'producer',
  'store',
  'svc',
  'time_broadcast',
  'worker',
];

/** Inputs run once at start-up (the host drops their coverage: it is one-time work). */
export const warmUp = [
  'C{"services":[{"name":"echo","request_target":"/echo"}]}',
  'L{"port":5083}\0{"services":{"echo":{"request_target":"/echo"}}}',
  'O{"port":1}\0',
];

const countedPrefixes = [
  path.join(root, 'dist', 'lib'),
  path.join(root, 'node_modules', 'ajv'),
  path.join(root, 'node_modules', 'fast-deep-equal'),
].map((dir) => `${pathToFileURL(dir).href}/`);

/**
 * Whether a script's coverage counts: the compiled lib/ and ajv, plus code without a URL,
 * which here is only the validator ajv generates from the schema.
 */
export function countsScript(url) {
  return url === '' || countedPrefixes.some((p) => url.startsWith(p));
}

const schema = buildConfigSchema();
/** Headers the handshake writes itself; a service may not add them (lower case). */
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
const SERVICE_KEYS = [
  'name',
  'request_target',
  'protocol',
  'instances',
  'max_inbound_message_size',
  'source',
  'kind',
  'standalone',
  'auto_start',
  'depends',
  'preload',
  'extra_headers',
  'subprotocols',
  'memory_limit',
  'handler_timeout_ms',
  'sandbox',
  'max_failures',
  'allow_missing_origin',
];
const U32_MAX = 2 ** 32 - 1;

class InvariantError extends Error {
  constructor(message) {
    super(`invariant broken: ${message}`);
    this.name = 'InvariantError';
  }
}

function check(ok, message) {
  if (!ok) throw new InvariantError(message);
}

const isRecord = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const matches = (pattern, v) => typeof v === 'string' && new RegExp(pattern).test(v);
const cString = (v) => typeof v === 'string' && !v.includes('\0');
const allUnique = (list) => new Set(list).size === list.length;
const show = (v) => JSON.stringify(v) ?? String(v);

function sameKeys(obj, required, optional, what) {
  const keys = Object.keys(obj);
  for (const k of required) check(Object.hasOwn(obj, k), `${what} has no "${k}"`);
  for (const k of keys) {
    check(required.includes(k) || optional.includes(k), `${what} has an extra key "${k}"`);
  }
}

/** An integer within the schema's bounds for the key (`props` is the schema's properties). */
function schemaInteger(props, key, value, what) {
  const s = props[key];
  check(Number.isInteger(value), `${what} is not an integer: ${show(value)}`);
  check(
    value >= s.minimum && value <= s.maximum,
    `${what} = ${value} is outside ${s.minimum}..${s.maximum}`,
  );
}

/** A normalised config (what normalizeConfig, readLappsHome and applyOverrides return). */
function checkConfig(config) {
  check(isRecord(config), 'the config is not an object');
  sameKeys(
    config,
    ['listeners', 'workers', 'limits', 'log', 'services'],
    ['static', 'acl', 'trusted_proxies'],
    'config',
  );
  if (config.acl !== undefined) checkAcl(config.acl, 'acl');
  if (config.trusted_proxies !== undefined) {
    const tp = config.trusted_proxies;
    check(Array.isArray(tp) && tp.length > 0 && allUnique(tp), `trusted_proxies ${show(tp)}`);
    for (const e of tp) check(matches(CIDR_PATTERN, e), `trusted_proxies ${show(e)}`);
  }
  const top = schema.properties;

  check(Array.isArray(config.listeners) && config.listeners.length > 0, 'no listeners');
  const addresses = new Set();
  config.listeners.forEach((l, i) => {
    sameKeys(l, ['host', 'port'], ['tls', 'ipv6_only', 'proxy_protocol'], `listeners[${i}]`);
    for (const k of ['ipv6_only', 'proxy_protocol']) {
      check(l[k] === undefined || l[k] === true, `listeners[${i}].${k} ${show(l[k])}`);
    }
    if (l.tls !== undefined) checkTls(l.tls, `listeners[${i}].tls`);
    check(cString(l.host) && isIP(l.host) !== 0, `listeners[${i}].host ${show(l.host)}`);
    schemaInteger(top.listeners.items.properties, 'port', l.port, `listeners[${i}].port`);
    const address = `${l.host}:${l.port}`;
    check(l.port === 0 || !addresses.has(address), `listeners[${i}] duplicates ${address}`);
    addresses.add(address);
  });
  schemaInteger(top, 'workers', config.workers, 'workers');
  const limitKeys = Object.keys(DEFAULT_LIMITS);
  sameKeys(config.limits, limitKeys, [], 'limits');
  for (const k of limitKeys) {
    schemaInteger(top.limits.properties, k, config.limits[k], `limits.${k}`);
  }
  sameKeys(config.log, ['level', 'json', 'access'], [], 'log');
  check(typeof config.log.access === 'boolean', 'log.access');
  check(['error', 'warn', 'info', 'debug'].includes(config.log.level), 'log.level');
  check(typeof config.log.json === 'boolean', 'log.json');

  if (config.static !== undefined) {
    const st = config.static;
    sameKeys(st, ['dir', 'host', 'port'], [], 'static');
    check(cString(st.dir) && path.isAbsolute(st.dir), `static.dir ${show(st.dir)}`);
    check(cString(st.host) && st.host !== '', `static.host ${show(st.host)}`);
    schemaInteger(top.static.properties, 'port', st.port, 'static.port');
  }

  check(Array.isArray(config.services), 'services is not an array');
  const sp = top.services.items.properties;
  const names = config.services.map((s) => s.name);
  check(allUnique(names), `duplicate service names ${show(names)}`);
  const targets = config.services.filter((s) => !s.standalone).map((s) => s.request_target);
  check(allUnique(targets), `duplicate request targets ${show(targets)}`);
  config.services.forEach((s, i) => {
    const at = `services[${i}]`;
    sameKeys(s, SERVICE_KEYS, ['proto_alias', 'acl', 'origins'], at);
    check(typeof s.allow_missing_origin === 'boolean', `${at}.allow_missing_origin`);
    if (s.acl !== undefined) checkAcl(s.acl, `${at}.acl`);
    if (s.origins !== undefined) {
      check(Array.isArray(s.origins) && allUnique(s.origins), `${at}.origins ${show(s.origins)}`);
      for (const o of s.origins) check(matches(ORIGIN_PATTERN, o), `${at}.origins ${show(o)}`);
    }
    if (s.standalone) check(s.acl === undefined && s.origins === undefined, `${at}: acl/origins`);
    check(matches(SERVICE_NAME_PATTERN, s.name), `${at}.name ${show(s.name)}`);
    check(['lua', 'c'].includes(s.kind), `${at}.kind`);
    check(['raw', 'lapps'].includes(s.protocol), `${at}.protocol`);
    for (const k of ['standalone', 'auto_start', 'sandbox']) {
      check(typeof s[k] === 'boolean', `${at}.${k} is not a boolean`);
    }
    if (s.standalone) {
      check(s.request_target === '', `${at} is standalone with request_target`);
      check(s.kind === 'lua', `${at} is standalone with kind ${show(s.kind)}`);
    } else {
      check(matches(REQUEST_TARGET_PATTERN, s.request_target), `${at}.request_target`);
    }
    for (const k of ['instances', 'memory_limit', 'handler_timeout_ms', 'max_failures']) {
      schemaInteger(sp, k, s[k], `${at}.${k}`);
    }
    schemaInteger(sp, 'max_inbound_message_size', s.max_inbound_message_size, `${at}.mims`);
    check(
      s.max_inbound_message_size <= config.limits.max_message_size,
      `${at}.max_inbound_message_size exceeds limits.max_message_size`,
    );
    check(cString(s.source) && path.isAbsolute(s.source), `${at}.source ${show(s.source)}`);
    check(statSync(s.source).isFile(), `${at}.source is not a file: ${s.source}`);
    check(Array.isArray(s.depends) && allUnique(s.depends), `${at}.depends ${show(s.depends)}`);
    for (const d of s.depends) {
      check(names.includes(d) && d !== s.name, `${at}.depends names ${show(d)}`);
    }
    check(Array.isArray(s.preload) && allUnique(s.preload), `${at}.preload ${show(s.preload)}`);
    for (const m of s.preload) check(matches(LUA_MODULE_PATTERN, m), `${at}.preload ${show(m)}`);
    check(isRecord(s.extra_headers), `${at}.extra_headers`);
    for (const [name, value] of Object.entries(s.extra_headers)) {
      check(matches(HTTP_TOKEN_PATTERN, name), `${at}.extra_headers name ${show(name)}`);
      check(!RESERVED_HEADERS.has(name.toLowerCase()), `${at}.extra_headers sets ${name}`);
      check(typeof value === 'string' && !/[\r\n\0]/.test(value), `${at} header ${show(value)}`);
    }
    if (s.proto_alias !== undefined) {
      check(matches(HTTP_TOKEN_PATTERN, s.proto_alias), `${at}.proto_alias`);
    }
    check(
      Array.isArray(s.subprotocols) && allUnique(s.subprotocols),
      `${at}.subprotocols ${show(s.subprotocols)}`,
    );
    for (const p of s.subprotocols) {
      check(matches(HTTP_TOKEN_PATTERN, p), `${at}.subprotocols ${show(p)}`);
    }
  });

  // Start order: every service once, after the services it depends on.
  const order = startOrder(config);
  check(order.length === config.services.length, 'startOrder is not a permutation');
  const started = new Set();
  for (const s of order) {
    check(config.services.includes(s) && !started.has(s.name), 'startOrder is not a permutation');
    for (const d of s.depends) check(started.has(d), `startOrder starts ${s.name} before ${d}`);
    started.add(s.name);
  }

  const settings = toNativeSettings(config);
  checkNativeSettings(config, settings);
  checkNativePolicy(settings);
}

/** A normalised ACL: both lists of valid, unique addresses or blocks, no entry in both. */
function checkAcl(acl, at) {
  sameKeys(acl, ['default', 'allow', 'deny'], [], at);
  check(acl.default === 'allow' || acl.default === 'deny', `${at}.default ${show(acl.default)}`);
  for (const k of ['allow', 'deny']) {
    check(Array.isArray(acl[k]), `${at}.${k} is not an array`);
    for (const e of acl[k]) {
      const [addr, prefix, extra] = String(e).split('/');
      const family = isIP(addr ?? '');
      check(cString(e) && family !== 0 && extra === undefined, `${at}.${k} entry ${show(e)}`);
      if (prefix !== undefined) {
        check(/^(0|[1-9][0-9]*)$/.test(prefix), `${at}.${k} prefix ${show(e)}`);
        check(Number(prefix) <= (family === 4 ? 32 : 128), `${at}.${k} prefix ${show(e)}`);
      }
    }
  }
  check(!acl.allow.some((e) => acl.deny.includes(e)), `${at}: an entry in allow and deny`);
}

/** A normalised listener tls: absolute NUL-free paths, a certificate, a CA for mTLS. */
function checkTls(t, at) {
  sameKeys(
    t,
    ['certificates', 'client_cert', 'min_version'],
    ['ca', 'ciphers', 'ciphersuites'],
    at,
  );
  check(Array.isArray(t.certificates) && t.certificates.length > 0, `${at}: no certificate`);
  for (const c of t.certificates) {
    sameKeys(c, ['cert', 'key', 'server_names'], [], `${at}.certificates[]`);
    for (const f of [c.cert, c.key]) {
      check(cString(f) && path.isAbsolute(f) && statSync(f).isFile(), `${at} file ${show(f)}`);
    }
    check(Array.isArray(c.server_names) && c.server_names.every(cString), `${at} names`);
  }
  check(['none', 'optional', 'require'].includes(t.client_cert), `${at}.client_cert`);
  check(t.client_cert === 'none' || t.ca !== undefined, `${at}: client_cert without ca`);
  if (t.ca !== undefined) check(cString(t.ca) && path.isAbsolute(t.ca), `${at}.ca ${show(t.ca)}`);
  check(t.min_version === '1.2' || t.min_version === '1.3', `${at}.min_version`);
  for (const k of ['ciphers', 'ciphersuites']) {
    if (t[k] !== undefined) check(cString(t[k]) && t[k] !== '', `${at}.${k} ${show(t[k])}`);
  }
}

/**
 * The native compiler on the policy the config produced. It may refuse two things the
 * TypeScript checks leave to it: one block in allow and deny written differently
 * ("10.0.0.1/8" and "10.0.0.0/8"), and certificate files that are not certificates (the
 * fuzz tree's are empty). Any other refusal means the two sides disagree about a config;
 * a crash is a crash.
 */
function checkNativePolicy(n) {
  const error = native.checkPolicy(
    n.policy,
    n.services.map((s) => s.name),
  );
  if (error === null) return;
  check(typeof error === 'string' && error !== '', `checkPolicy returned ${show(error)}`);
  const conflict = /^(service \w+: )?acl: entry \d+ \(.*\): same block as entry \d+/.test(error);
  const certificate = /^listener \d+ \(tls\): /.test(error);
  check(conflict || certificate, `native policy refused what the config accepted: ${error}`);
}

const u32 = (v) => Number.isInteger(v) && v >= 0 && v <= U32_MAX;
const u64 = (v) => Number.isSafeInteger(v) && v >= 0;

/** What the addon reads (native/src/addon.cc): u32/u64 numbers and NUL-free strings. */
function checkNativeSettings(config, n) {
  for (const k of [
    'workers',
    'maxHeaderBytes',
    'maxHeaders',
    'handshakeTimeoutMs',
    'idleTimeoutMs',
    'pingIntervalMs',
    'closeTimeoutMs',
    'drainTimeoutMs',
    'autoFragmentSize',
    'maxFragments',
    'maxConnections',
    'maxConnectionsPerIp',
    'newConnectionsPerIpPerSec',
  ]) {
    check(u32(n[k]), `native ${k} = ${show(n[k])} is not a u32`);
  }
  // The policy: one entry per native service and per listener, NUL-free strings throughout.
  check(n.policy.services.length === n.services.length, 'native policy: services');
  check(n.policy.tls.length === n.listeners.length, 'native policy: tls per listener');
  const strings = (v) =>
    typeof v === 'string'
      ? [v]
      : Array.isArray(v)
        ? v.flatMap(strings)
        : isRecord(v)
          ? Object.values(v).flatMap(strings)
          : [];
  for (const str of strings(n.policy)) check(cString(str), `native policy string ${show(str)}`);
  for (const k of ['maxMessageSize', 'outboundHighWaterMark', 'maxFrameSize']) {
    check(u64(n[k]), `native ${k} = ${show(n[k])} is not a u64`);
  }
  for (const l of n.listeners) {
    check(cString(l.host) && u32(l.port) && l.port <= 65535, `native listener ${show(l)}`);
  }
  const started = startedServices(config);
  for (const s of n.services) {
    for (const k of ['name', 'requestTarget', 'source']) {
      check(cString(s[k]), `native service ${k} ${show(s[k])}`);
    }
    for (const k of ['protocol', 'kind', 'instances', 'handlerTimeoutMs', 'maxFailures']) {
      check(u32(s[k]), `native service ${s.name}.${k} = ${show(s[k])} is not a u32`);
    }
    for (const k of ['maxMessageSize', 'memoryLimit']) {
      check(u64(s[k]), `native service ${s.name}.${k} = ${show(s[k])} is not a u64`);
    }
    for (const p of [...s.subprotocols, ...s.preload, ...s.extraHeaders.flat()]) {
      check(cString(p), `native service ${s.name}: string ${show(p)}`);
    }
    check(allUnique(s.subprotocols), `native service ${s.name}: subprotocols repeat`);
    check(s.started === started.has(s.name), `native service ${s.name}.started`);
    // Whatever is started has its dependencies started too.
    if (s.started) {
      const own = config.services.find((c) => c.name === s.name);
      for (const d of own.depends) check(started.has(d), `${s.name} starts without ${d}`);
    }
  }
}

/**
 * `err` must be a ConfigError about one of `files`, each issue with a message and a JSON
 * pointer (or a command-line option); anything else is rethrown as the finding it is.
 */
function checkConfigError(err, files) {
  if (!(err instanceof ConfigError)) throw err;
  const where = `ConfigError ${show(err.message)}`;
  check(err.code === 'LAPPS_CONFIG_INVALID', `${where}: code ${show(err.code)}`);
  check(files.includes(err.file), `${where}: file ${show(err.file)}`);
  check(typeof err.message === 'string' && err.message !== '', `${where}: no message`);
  check(Array.isArray(err.issues) && err.issues.length > 0, `${where}: no issues`);
  for (const issue of err.issues) {
    const i = show(issue);
    check(typeof issue.message === 'string' && issue.message.trim() !== '', `${where}: ${i}`);
    check(typeof issue.path === 'string', `${where}: path of ${i}`);
    if (issue.path === '') {
      // The whole file: a syntax error (with a position) or an unreadable file.
      check(
        issue.line !== undefined || issue.message.startsWith('cannot read'),
        `${where}: empty path without a position: ${i}`,
      );
      // locateJsonError (json-position.ts) must find what JSON.parse rejected; only a nesting too deep to scan
      // is reported without detail, at 1:1.
      check(
        issue.message !== 'invalid JSON: invalid JSON' || (issue.line === 1 && issue.column === 1),
        `${where}: the syntax error was not located: ${i}`,
      );
    } else if (!issue.path.startsWith('--')) {
      check(/^(\/([^~]|~[01])*)+$/.test(issue.path), `${where}: not a JSON pointer: ${i}`);
    }
    if (issue.file !== undefined) check(files.includes(issue.file), `${where}: file of ${i}`);
    for (const k of ['line', 'column']) {
      if (issue[k] !== undefined) {
        check(Number.isInteger(issue[k]) && issue[k] >= 1, `${where}: ${k} of ${i}`);
      }
    }
  }
}

/** The input split at its first NUL byte (no NUL: all of it, then nothing). */
function splitAtNul(data) {
  const at = data.indexOf(0);
  return at < 0 ? [data, Buffer.alloc(0)] : [data.subarray(0, at), data.subarray(at + 1)];
}

function touch(file) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, '-- fuzz fixture\nreturn {}\n');
}

/** Sets up the temporary trees; `run` takes one input, `close` removes the trees. */
export function createTarget() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'lapps-fuzz-config-'));
  // Config base directory, with what relative sources in the seeds name.
  const base = path.join(tmp, 'base');
  for (const n of SERVICE_NAMES) {
    touch(path.join(base, 'services', n, `${n}.lua`));
    touch(path.join(base, 'services', n, `lib${n}.so`));
  }
  touch(path.join(base, 'chat.lua'));
  touch(path.join(tmp, 'chat-time', 'chat-time.lua'));
  touch(path.join(base, 'apps', 'chat', 'main.lua'));
  touch(path.join(base, 'build', 'Release', 'libecho_c.so'));
  mkdirSync(path.join(base, 'dir'));
  // Certificate files the TLS seeds name (the config loader only checks they are files).
  for (const f of ['server.crt', 'server.key', 'other.crt', 'other.key', 'ca.pem']) {
    touch(path.join(base, 'certs', f));
  }
  const configFile = path.join(base, 'lapps.json');
  // LAppS home: apps/<name>/<name>.lua, and the two config files written per input.
  const home = path.join(tmp, 'lapps');
  for (const n of SERVICE_NAMES) touch(path.join(home, 'apps', n, `${n}.lua`));
  for (const f of ['server.crt', 'server.key', 'ca.pem']) touch(path.join(home, 'certs', f));
  const paths = lappsPaths(home, {});
  mkdirSync(paths.confDir, { recursive: true });

  const normalize = (text, file) => {
    const raw = parseConfigText(file, text);
    const before = JSON.stringify(raw);
    try {
      return normalizeConfig(raw, { file, baseDir: base });
    } finally {
      check(JSON.stringify(raw) === before, 'normalizeConfig modified its input');
    }
  };

  const runConfig = (data) => {
    let config;
    try {
      config = normalize(data.toString('utf8'), configFile);
    } catch (err) {
      checkConfigError(err, [configFile]);
      return;
    }
    checkConfig(config);
  };

  const runLapps = (data) => {
    const [ws, lapps] = splitAtNul(data);
    writeFileSync(paths.wsConfig, ws);
    writeFileSync(paths.lappsConfig, lapps);
    let result;
    try {
      result = readLappsHome(home, {});
    } catch (err) {
      checkConfigError(err, [paths.wsConfig, paths.lappsConfig]);
      return;
    }
    checkConfig(result.config);
    check(
      result.warnings.every((w) => typeof w === 'string' && w !== ''),
      `warnings ${show(result.warnings)}`,
    );
    // `lapps config convert` prints convertLappsHome's raw config when readLappsHome accepts
    // the home: that file must load as the same config, with the same warnings.
    const converted = convertLappsHome(home, {});
    check(show(converted.warnings) === show(result.warnings), 'convert warns differently');
    const text = JSON.stringify(converted.raw, null, 2);
    let again;
    try {
      again = normalizeConfig(JSON.parse(text), { file: 'converted.json', baseDir: tmp });
    } catch (err) {
      if (err instanceof ConfigError) {
        throw new InvariantError(`the converted config is rejected:\n${err.message}\n${text}`);
      }
      throw err;
    }
    check(show(again) === show(result.config), 'the converted config loads differently');
  };

  const runOverrides = (data) => {
    const [spec, rest] = splitAtNul(data);
    const overrides = {};
    let given;
    try {
      given = JSON.parse(spec.toString('utf8'));
    } catch {
      given = {};
    }
    if (isRecord(given)) {
      if (typeof given.host === 'string') overrides.host = given.host;
      for (const k of ['port', 'workers']) {
        const v = given[k];
        if (typeof v === 'number') overrides[k] = v;
        else if (typeof v === 'string') overrides[k] = Number(v);
      }
    }
    const text =
      rest.length > 0
        ? rest.toString('utf8')
        : '{"listeners":[{"port":5083},{"port":5084}],"services":[{"name":"echo","request_target":"/echo"}]}';
    let config;
    try {
      config = normalize(text, configFile);
    } catch (err) {
      checkConfigError(err, [configFile]);
      return;
    }
    const before = show(config);
    let result;
    try {
      result = applyOverrides(config, overrides);
    } catch (err) {
      checkConfigError(err, ['command line']);
      return;
    } finally {
      check(show(config) === before, 'applyOverrides modified its input');
    }
    checkConfig(result);
    const first = result.listeners[0];
    if (overrides.host !== undefined) check(first.host === overrides.host, 'host not applied');
    if (overrides.port !== undefined) check(first.port === overrides.port, 'port not applied');
    if (overrides.workers !== undefined) {
      check(result.workers === overrides.workers, 'workers not applied');
    }
  };

  const cases = [runConfig, runLapps, runOverrides];
  const byLetter = { C: runConfig, L: runLapps, O: runOverrides };
  return {
    run(data) {
      if (data.length === 0) return;
      const pick = byLetter[String.fromCharCode(data[0])] ?? cases[data[0] % cases.length];
      pick(data.subarray(1));
    },
    close() {
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
