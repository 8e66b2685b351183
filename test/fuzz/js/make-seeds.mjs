#!/usr/bin/env node
/**
 * Writes the seed corpus of the "config" fuzz target (test/fuzz/corpus/config/seed-*) and
 * its libFuzzer dictionary (test/fuzz/config.dict), in the encoding config.mjs describes:
 * 'C' + a lapps config, 'L' + ws.json + NUL + lapps.json, 'O' + overrides + NUL + config.
 *
 *   node test/fuzz/js/make-seeds.mjs
 *
 * The seeds are the configs in the repository (services/, test/fixtures/, examples/, the
 * JSON examples in docs/) plus hand-written ones reaching each key, each check and each
 * kind of syntax error. Other files (inputs the fuzzer added, regression inputs) stay.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { ensureDist, root } from './dist.mjs';

ensureDist();
const { buildConfigSchema } = await import('../../../dist/lib/config/schema.js');

const read = (...p) => readFileSync(path.join(root, ...p), 'utf8');
const seeds = new Map();
const C = (name, text) => seeds.set(name, `C${text}`);
const L = (name, ws, lapps) => seeds.set(name, `L${ws}\0${lapps}`);
const O = (name, overrides, config = '') => seeds.set(name, `O${overrides}\0${config}`);
const json = (v) => JSON.stringify(v);

// --- from the repository -------------------------------------------------------------------
C('services-chat', read('services', 'chat', 'lapps.json'));
for (const doc of ['config.md', 'lapps-migration.md', 'c-api.md', 'lua-api.md']) {
  const blocks = read('docs', doc).match(/```json\n[\s\S]*?```/g) ?? [];
  blocks.forEach((block, i) => {
    const text = block.slice(8, -3).replace('<workers>', '2');
    const value = JSON.parse(text);
    // A lone service entry becomes a config with that service.
    C(
      `docs-${doc.replace('.md', '')}-${i + 1}`,
      'name' in value ? json({ services: [value] }) : text,
    );
  });
}
const homes = ['test/fixtures/lapps-home', 'examples/lapps-home'];
for (const home of homes) {
  const conf = path.join(home, 'etc', 'conf');
  L(`lapps-home-${home.split('/')[0]}`, read(conf, 'ws.json'), read(conf, 'lapps.json'));
}
L('mixed-homes', read(homes[0], 'etc/conf/ws.json'), read(homes[1], 'etc/conf/lapps.json'));

// --- lapps config: every key, every check --------------------------------------------------
const everyKey = {
  $schema: 'https://lapps.dev/schema/config.json',
  listeners: [
    { host: '0.0.0.0', port: 5083 },
    { host: '::1', port: 0 },
  ],
  workers: 3,
  limits: {
    max_message_size: 1048576,
    max_header_size: 4096,
    max_headers: 32,
    handshake_timeout_ms: 5000,
    idle_timeout_ms: 0,
    ping_interval_ms: 1000,
    close_timeout_ms: 100,
    outbound_high_water_mark: 65536,
    auto_fragment_size: 1392,
  },
  log: { level: 'debug', json: true },
  static: { dir: 'public', host: '127.0.0.1', port: 8080 },
  services: [
    {
      name: 'echo',
      kind: 'lua',
      request_target: '/echo?x=1',
      protocol: 'lapps',
      instances: 2,
      auto_start: true,
      depends: ['worker'],
      preload: ['mqr', 'socket.core'],
      extra_headers: { 'X-Powered-By': 'lapps', 'Cache-Control': 'no-store' },
      proto_alias: 'lapps',
      subprotocols: ['chat', 'superchat'],
      max_inbound_message_size: 65536,
      source: 'services/echo/echo.lua',
      memory_limit: 1048576,
      handler_timeout_ms: 0,
      sandbox: true,
      max_failures: 1,
    },
    { name: 'worker', standalone: true, auto_start: false, preload: ['nap', 'time'] },
    { name: 'svc', kind: 'c', request_target: '/c', source: 'build/Release/libecho_c.so' },
  ],
};
C('every-key', json(everyKey));
C('every-key-pretty', JSON.stringify(everyKey, null, 2));
C('minimal', '{ "services": [{ "name": "echo", "request_target": "/echo" }] }');
C('empty-object', '{}');
C('bom', '\ufeff{"services":[{"name":"svc","request_target":"/svc"}]}');
C('kind-c-default-source', json({ services: [{ name: 'svc', kind: 'c', request_target: '/' }] }));
C(
  'limits-bounds',
  json({
    workers: 1024,
    limits: {
      max_message_size: 1073741824,
      max_header_size: 256,
      max_headers: 1024,
      handshake_timeout_ms: 2147483647,
      outbound_high_water_mark: 9007199254740991,
      auto_fragment_size: 0,
    },
    services: [
      {
        name: 'svc',
        request_target: '/svc',
        instances: 1024,
        memory_limit: 1099511627776,
        max_failures: 2147483647,
      },
    ],
  }),
);
C(
  'out-of-range',
  json({
    listeners: [{ host: '127.0.0.1', port: 65536 }],
    workers: 0,
    limits: { max_message_size: 0, max_headers: 7, idle_timeout_ms: -1 },
    services: [{ name: 'svc', request_target: '/svc', instances: 1.5, memory_limit: 1 }],
  }),
);
C(
  'wrong-types',
  json({
    listeners: {},
    workers: '4',
    limits: [],
    log: { level: 'trace', json: 'yes' },
    services: [{ name: 7, request_target: 'svc', standalone: 'no', depends: 'a' }],
  }),
);
C('unknown-keys', json({ listners: [], services: [{ name: 'svc', request_targets: '/x' }] }));
C(
  'duplicates',
  json({
    listeners: [
      { host: '127.0.0.1', port: 5083 },
      { host: '127.0.0.1', port: 5083 },
      { host: 'localhost', port: 1 },
    ],
    services: [
      { name: 'a', request_target: '/x' },
      { name: 'a', request_target: '/x' },
      { name: 'b', request_target: '/x', depends: ['c', 'c'] },
    ],
  }),
);
C(
  'dependency-cycle',
  json({
    services: [
      { name: 'a', request_target: '/a', depends: ['b'] },
      { name: 'b', standalone: true, depends: ['c'] },
      { name: 'c', standalone: true, depends: ['a', 'missing'] },
    ],
  }),
);
C('self-dependency', json({ services: [{ name: 'a', request_target: '/a', depends: ['a'] }] }));
C(
  'headers',
  json({
    services: [
      {
        name: 'svc',
        request_target: '/svc',
        extra_headers: {
          Upgrade: 'x',
          'Bad Name': 'x',
          'X-Ok': 'a\r\nb',
          'sec-websocket-protocol': 'p',
        },
        subprotocols: ['a b', 'ok'],
        proto_alias: 'a,b',
      },
    ],
  }),
);
C(
  'standalone-mistakes',
  json({
    services: [
      { name: 'a', standalone: true, request_target: '/a', kind: 'c' },
      { name: 'b' },
      { name: 'c', request_target: '/c', max_inbound_message_size: 16777217 },
    ],
  }),
);
C(
  'sources',
  json({
    services: [
      { name: 'a', request_target: '/a', source: 'dir' },
      { name: 'b', request_target: '/b', source: 'missing.lua' },
      { name: 'c', request_target: '/c', source: '' },
      { name: 'chat', request_target: '/chat', source: '../chat-time/chat-time.lua' },
      { name: '9bad', request_target: '/bad' },
    ],
  }),
);
C('static-only', json({ static: { dir: '.' } }));
C('static-bad', json({ static: { host: '', port: -1, extra: 1 } }));
C('ipv6-listeners', json({ listeners: [{ host: '::' }, { host: 'fe80::1%eth0', port: 1 }] }));
C('not-an-object', '[1, "two", null, true, false, -0.5e+3]');
C('syntax-trailing-comma', '{"services": [{"name": "svc",}]}');
C('syntax-unterminated', '{"services": [{"name": "svc');
C('syntax-control-char', '{"services": "a\tb"}');
C('syntax-bad-escape', '{"a": "\\x41", "b": "\\u12"}');
C('syntax-comment', '{\n  // a comment\n  "workers": 2\n}');
C('syntax-single-quotes', "{'workers': 2}");
C('syntax-garbage-after', '{"workers": 2} {}');
C('syntax-numbers', '{"workers": 01, "x": -, "y": 1.e5, "z": .5}');
C('syntax-empty', '');
C('syntax-deep', `${'['.repeat(300)}${']'.repeat(299)}`);
C('escapes', '{"services":[{"name":"\\u0073vc","request_target":"/\\u00e9","source":"a\\/b"}]}');

// --- LAppS ws.json + lapps.json ------------------------------------------------------------
const lappsServices = {
  services: {
    echo: { request_target: '/echo', protocol: 'RAW', instances: 2, acl: { policy: 'deny' } },
    echo_lapps: {
      internal: false,
      protocol: 'LAppS',
      request_target: '/echo_lapps',
      extra_headers: { 'X-A': 'b' },
      proto_alias: 'lapps',
      max_inbound_message_size: 33554432,
    },
    worker: { standalone: true, internal: true, request_target: '/w', preload: ['nap'] },
    time_broadcast: { internal: true, depends: ['worker'], mystery: 1 },
  },
};
L('lapps-keys', json({ ip: '::1', port: 0, workers: { workers: 1 } }), json(lappsServices));
L(
  'lapps-ws-variants',
  json({
    tls: false,
    acl: { policy: 'allow', exclude: ['10.0.0.0/8'] },
    workers: { auto_fragment: false, unknown: 1 },
    tls_certificates: {},
    whatever: [],
  }),
  json({ directories: { applications: 'apps', deploy: 'd', other: 1 }, services: {} }),
);
L(
  'lapps-bad-shapes',
  json({ workers: 4, port: '80', ip: 'localhost' }),
  json({ directories: { applications: '' }, services: { a: 1, b: { depends: 'x' } } }),
);
L(
  'lapps-bad-workers',
  json({ workers: { workers: 0, auto_fragment: 'yes' } }),
  json({ directories: [], services: [] }),
);
L('lapps-empty', '{}', '{}');
L('lapps-syntax-ws', '{"port": 5083,}', '{}');
L('lapps-syntax-lapps', '{}', '{"services": {"echo": {"request_target": "/echo"}}');
L('lapps-not-objects', '[]', '"services"');
L(
  'lapps-missing-file',
  json({ port: 5083 }),
  json({ services: { missing: { request_target: '/m' } } }),
);
L(
  'lapps-applications-dir',
  '{}',
  json({
    directories: { applications: '../lapps/apps' },
    services: { echo: { request_target: '/echo' } },
  }),
);
L(
  'lapps-cycle',
  '{}',
  json({
    services: {
      a: { request_target: '/a', depends: ['b'] },
      b: { internal: true, depends: ['a'] },
      c: { request_target: '/a', max_inbound_message_size: 2147483648 },
    },
  }),
);

// --- command-line overrides ---------------------------------------------------------------
O('override-all', json({ host: '::1', port: 0, workers: 8 }));
O('override-port', json({ port: 5085 }));
O('override-host-bad', json({ host: 'localhost' }));
O('override-numbers', json({ port: 'NaN', workers: '1e3' }));
O('override-range', json({ port: 65536, workers: 1025 }));
O('override-fraction', json({ port: 80.5, workers: '-0' }));
O('override-chat', json({ host: '0.0.0.0', port: 8080 }), read('services', 'chat', 'lapps.json'));
O('override-invalid-config', json({ port: 1 }), '{"workers": 0}');
O('override-not-json', 'port=80', '{"services": []}');

// --- write ---------------------------------------------------------------------------------
const dir = path.join(root, 'test', 'fuzz', 'corpus', 'config');
for (const f of readdirSync(dir, { withFileTypes: true })) {
  if (f.isFile() && f.name.startsWith('seed-')) rmSync(path.join(dir, f.name));
}
for (const [name, text] of seeds) writeFileSync(path.join(dir, `seed-${name}`), text);

// The dictionary: every key and enum value of the schema and of the LAppS files, as JSON
// strings, and the tokens a mutation rarely builds on its own.
const words = new Set();
const walk = (s) => {
  if (!s || typeof s !== 'object') return;
  for (const [k, v] of Object.entries(s.properties ?? {})) {
    words.add(json(k));
    walk(v);
  }
  for (const v of s.enum ?? []) words.add(json(v));
  walk(s.items);
  if (typeof s.additionalProperties === 'object') walk(s.additionalProperties);
};
walk(buildConfigSchema());
const lappsKeys = [
  ...['ip', 'port', 'workers', 'auto_fragment', 'max_connections', 'max_poll_events'],
  ...['max_poll_wait_ms', 'max_inbounds_skip', 'input_buffer_size', 'listeners'],
  ...['connection_weight', 'lapps_config_auto_save', 'acl', 'policy', 'exclude', 'allow'],
  ...['deny', 'tls', 'tls_server_version', 'tls_client_version', 'tls_certificates'],
  ...['directories', 'applications', 'deploy', 'tmp', 'internal', 'LAppS', 'RAW'],
];
for (const k of lappsKeys) words.add(json(k));
const tokens = [
  ...['{', '}', '[', ']', ':', ',', 'true', 'false', 'null', '-0', '1e308', '0.5', '\\u0000'],
  ...['\\r\\n', '\\ud800', '~', '/', '__proto__', 'constructor', '::', '0.0.0.0', '65535'],
  ...['2147483647', '4294967296', '9007199254740993', '\\u0000', 'Upgrade', 'services/'],
];
for (const t of tokens) words.add(t);
const escape = (w) => w.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\0/g, '\\x00');
const dict = [
  '# libFuzzer dictionary of the "config" fuzz target.',
  '# Generated by test/fuzz/js/make-seeds.mjs: do not edit.',
  ...[...words].map((w) => `"${escape(w)}"`),
  '"\\x00"',
  '',
].join('\n');
writeFileSync(path.join(root, 'test', 'fuzz', 'config.dict'), dict);
console.log(
  `${seeds.size} seeds in ${path.relative(root, dir)}, ${words.size + 1} words in test/fuzz/config.dict`,
);
