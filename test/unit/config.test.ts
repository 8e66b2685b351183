import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { ConfigError, type ConfigIssue } from '../../lib/config/issues.js';
import { defaultConfig, loadConfigFile, normalizeConfig } from '../../lib/config/load.js';
import { applyOverrides } from '../../lib/config/overrides.js';
import { startOrder } from '../../lib/config/service-graph.js';
import { buildConfigSchema, DEFAULT_LIMITS } from '../../lib/config/schema.js';
import type { LappsConfig, ServiceConfig } from '../../lib/config/types.js';

/** What the helpers need of a test (the root `t` and subtests both have it). */
type Ctx = Pick<typeof t, 'testdir' | 'fail'>;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A directory with services/<name>/<name>.lua for each name, so source checks pass. */
function serviceDir(t: Ctx, names: string[] = ['svc']): string {
  const tree: Record<string, Record<string, string>> = {};
  for (const n of names) tree[n] = { [`${n}.lua`]: `${n} = {}\nreturn ${n}\n` };
  return t.testdir({ services: tree });
}

/** The ConfigError thrown by `fn`, failing the test when none is. */
function configError(t: Ctx, fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  t.fail('expected a ConfigError');
  return new ConfigError('none', []);
}

function issuesOf(t: Ctx, raw: unknown, baseDir: string): ConfigIssue[] {
  return configError(t, () => normalizeConfig(raw, { file: 'lapps.json', baseDir })).issues;
}

const svc = { name: 'svc', request_target: '/svc' };

/** The defaults of every per-service key beyond name, request_target and source. */
const serviceDefaults = {
  protocol: 'raw',
  instances: 1,
  max_inbound_message_size: 16777216,
  kind: 'lua',
  standalone: false,
  auto_start: true,
  depends: [],
  preload: [],
  extra_headers: {},
  subprotocols: [],
  memory_limit: 268435456,
  handler_timeout_ms: 5000,
  sandbox: false,
  max_failures: 100,
  allow_missing_origin: true,
} as const;

t.test('defaults are filled for every key', async (t) => {
  const dir = serviceDir(t);
  const config = normalizeConfig({ services: [svc] }, { file: 'lapps.json', baseDir: dir });
  const expected: LappsConfig = {
    listeners: [{ host: '127.0.0.1', port: 5083 }],
    workers: os.availableParallelism(),
    limits: {
      max_message_size: 16777216,
      max_header_size: 8192,
      max_headers: 64,
      handshake_timeout_ms: 10000,
      idle_timeout_ms: 120000,
      ping_interval_ms: 30000,
      close_timeout_ms: 5000,
      drain_timeout_ms: 10000,
      proxy_protocol_timeout_ms: 5000,
      outbound_high_water_mark: 4194304,
      max_outbound_queue_size: 0,
      slow_consumer_timeout_ms: 30000,
      auto_fragment_size: 0,
      mqr_max_bytes: 67108864,
      max_frame_size: 0,
      max_fragments: 100000,
      max_connections: 0,
      max_connections_per_ip: 0,
      max_new_connections_per_ip_per_second: 0,
    },
    log: { level: 'info', json: false, access: false },
    services: [
      {
        ...serviceDefaults,
        depends: [],
        preload: [],
        extra_headers: {},
        subprotocols: [],
        name: 'svc',
        request_target: '/svc',
        source: path.join(dir, 'services', 'svc', 'svc.lua'),
      },
    ],
  };
  t.same(config, expected);
  t.notOk('proto_alias' in config.services[0]!, 'proto_alias is absent unless given');
  t.same(config.limits, DEFAULT_LIMITS);
});

t.test('an empty object is a valid config with no services', async (t) => {
  const config = normalizeConfig({}, { file: 'x', baseDir: '/' });
  t.same(config.services, []);
  t.same(config.listeners, [{ host: '127.0.0.1', port: 5083 }]);
});

t.test('listener entries get host and port defaults one by one', async (t) => {
  const config = normalizeConfig(
    { listeners: [{ port: 9000 }, { host: '::1' }], $schema: './schema.json' },
    { file: 'x', baseDir: '/' },
  );
  t.same(config.listeners, [
    { host: '127.0.0.1', port: 9000 },
    { host: '::1', port: 5083 },
  ]);
  t.notOk('$schema' in config, 'the $schema key is accepted and dropped');
});

t.test('the caller object is not modified and results do not share defaults', async (t) => {
  const raw = { limits: { max_headers: 10 } };
  const a = normalizeConfig(raw, { file: 'x', baseDir: '/' });
  t.same(raw, { limits: { max_headers: 10 } });
  a.listeners[0]!.port = 1;
  const b = normalizeConfig(raw, { file: 'x', baseDir: '/' });
  t.equal(b.listeners[0]!.port, 5083);
  t.equal(b.limits.max_headers, 10);
});

t.test('explicit values are kept', async (t) => {
  const dir = serviceDir(t, ['a']);
  const raw = {
    listeners: [{ host: '0.0.0.0', port: 0, proxy_protocol: true }],
    workers: 3,
    limits: { max_message_size: 1000, auto_fragment_size: 1392, idle_timeout_ms: 0 },
    log: { level: 'debug', json: true, access: true },
    trusted_proxies: ['10.0.0.0/8', '2001:db8::1'],
    services: [
      {
        name: 'a',
        request_target: '/a/b',
        protocol: 'raw',
        instances: 4,
        max_inbound_message_size: 10,
        source: 'services/a/a.lua',
      },
    ],
  };
  const c = normalizeConfig(raw, { file: 'x', baseDir: dir });
  t.same(c.listeners, [{ host: '0.0.0.0', port: 0, proxy_protocol: true }]);
  t.same(c.trusted_proxies, ['10.0.0.0/8', '2001:db8::1']);
  t.equal(c.workers, 3);
  t.equal(c.limits.max_message_size, 1000);
  t.equal(c.limits.auto_fragment_size, 1392);
  t.equal(c.limits.idle_timeout_ms, 0);
  t.same(c.log, { level: 'debug', json: true, access: true });
  t.match(c.services[0], { instances: 4, max_inbound_message_size: 10, request_target: '/a/b' });
});

t.test('max_inbound_message_size defaults to limits.max_message_size', async (t) => {
  const dir = serviceDir(t);
  const c = normalizeConfig(
    { limits: { max_message_size: 4096 }, services: [svc] },
    { file: 'x', baseDir: dir },
  );
  t.equal(c.services[0]!.max_inbound_message_size, 4096);
});

t.test('service sources resolve against baseDir; absolute ones are kept', async (t) => {
  const dir = t.testdir({ lua: { 'x.lua': 'return {}' }, 'y.lua': 'return {}' });
  const c = normalizeConfig(
    {
      services: [
        { name: 'x', request_target: '/x', source: 'lua/x.lua' },
        { name: 'y', request_target: '/y', source: path.join(dir, 'y.lua') },
      ],
    },
    { file: 'x', baseDir: dir },
  );
  t.equal(c.services[0]!.source, path.join(dir, 'lua', 'x.lua'));
  t.equal(c.services[1]!.source, path.join(dir, 'y.lua'));
});

t.test('every unknown key is rejected with its path', async (t) => {
  const dir = serviceDir(t);
  const cases: [unknown, string, string][] = [
    [{ foo: 1 }, '/foo', 'foo'],
    [{ listeners: [{ host: '127.0.0.1', port: 1, wss: true }] }, '/listeners/0/wss', 'wss'],
    [{ limits: { max_frame: 1 } }, '/limits/max_frame', 'max_frame'],
    [{ log: { file: 'x' } }, '/log/file', 'file'],
    [{ services: [{ ...svc, internal: true }] }, '/services/0/internal', 'internal'],
    [{ 'a/b~c': 1 }, '/a~1b~0c', 'a/b~c'],
  ];
  for (const [raw, pointer, key] of cases) {
    const issues = issuesOf(t, raw, dir);
    t.same(issues, [{ path: pointer, message: `unknown key "${key}"` }], pointer);
  }
});

t.test('type and range errors name the file and the key path', async (t) => {
  const dir = serviceDir(t);
  const cases: [unknown, string][] = [
    [[], 'lapps.json: /: must be object'],
    ['x', 'lapps.json: /: must be object'],
    [{ listeners: {} }, 'lapps.json: /listeners: must be array'],
    [{ listeners: [] }, 'lapps.json: /listeners: must NOT have fewer than 1 items'],
    [{ listeners: [{ port: 65536 }] }, 'lapps.json: /listeners/0/port: must be <= 65535'],
    [{ listeners: [{ port: -1 }] }, 'lapps.json: /listeners/0/port: must be >= 0'],
    [{ listeners: [{ port: '80' }] }, 'lapps.json: /listeners/0/port: must be integer'],
    [{ listeners: [{ host: 5 }] }, 'lapps.json: /listeners/0/host: must be string'],
    [{ listeners: [{ host: 'example.com' }] }, '/listeners/0/host: must be an IPv4 or IPv6'],
    [{ workers: 0 }, 'lapps.json: /workers: must be >= 1'],
    [{ workers: 1.5 }, 'lapps.json: /workers: must be integer'],
    [{ limits: 5 }, 'lapps.json: /limits: must be object'],
    [
      { limits: { max_message_size: 'x' } },
      'lapps.json: /limits/max_message_size: must be integer',
    ],
    [{ limits: { max_message_size: 0 } }, 'lapps.json: /limits/max_message_size: must be >= 1'],
    [
      { limits: { max_header_size: 8192.5 } },
      'lapps.json: /limits/max_header_size: must be integer',
    ],
    [{ limits: { idle_timeout_ms: -1 } }, 'lapps.json: /limits/idle_timeout_ms: must be >= 0'],
    [{ limits: { close_timeout_ms: 0 } }, 'lapps.json: /limits/close_timeout_ms: must be >= 1'],
    [{ log: { level: 'loud' } }, 'lapps.json: /log/level: must be one of "error", "warn"'],
    [{ log: { json: 'yes' } }, 'lapps.json: /log/json: must be boolean'],
    [{ log: { access: 1 } }, 'lapps.json: /log/access: must be boolean'],
    [{ trusted_proxies: '10.0.0.1' }, 'lapps.json: /trusted_proxies: must be array'],
    [
      { trusted_proxies: ['example.com'] },
      '/trusted_proxies/0: must be an IPv4 or IPv6 address, optionally with a /prefix',
    ],
    [
      { listeners: [{ proxy_protocol: 'yes' }] },
      'lapps.json: /listeners/0/proxy_protocol: must be boolean',
    ],
    [
      { limits: { proxy_protocol_timeout_ms: 0 } },
      'lapps.json: /limits/proxy_protocol_timeout_ms: must be >= 1',
    ],
    [{ services: {} }, 'lapps.json: /services: must be array'],
    [{ services: [5] }, 'lapps.json: /services/0: must be object'],
    [{ services: [{ request_target: '/a' }] }, 'lapps.json: /services/0/name: is required'],
    [{ services: [{ name: 'svc' }] }, 'lapps.json: /services/0/request_target: is required'],
    [{ services: [{ ...svc, name: '9a' }] }, '/services/0/name: must be a Lua identifier'],
    [{ services: [{ ...svc, name: 'a-b' }] }, '/services/0/name: must be a Lua identifier'],
    [{ services: [{ ...svc, request_target: 'svc' }] }, '/services/0/request_target: must start'],
    [{ services: [{ ...svc, request_target: '/a b' }] }, '/services/0/request_target: must start'],
    [
      { services: [{ ...svc, protocol: 'LAppS' }] },
      '/services/0/protocol: must be one of "raw", "lapps"',
    ],
    [{ services: [{ ...svc, instances: 0 }] }, '/services/0/instances: must be >= 1'],
    [{ services: [{ ...svc, instances: 1025 }] }, '/services/0/instances: must be <= 1024'],
    [{ services: [{ ...svc, source: '' }] }, '/services/0/source: must NOT have fewer than 1'],
    [
      { services: [{ ...svc, max_inbound_message_size: 0 }] },
      '/services/0/max_inbound_message_size: must be >= 1',
    ],
  ];
  for (const [raw, expected] of cases) {
    const err = configError(t, () => normalizeConfig(raw, { file: 'lapps.json', baseDir: dir }));
    t.ok(err.message.includes(expected), `${JSON.stringify(raw)} -> ${expected}`, {
      got: err.message,
    });
    t.equal(err.issues.length, 1, `one issue for ${JSON.stringify(raw)}`, { got: err.issues });
  }
});

t.test('all issues are reported at once, one line each', async (t) => {
  const dir = serviceDir(t);
  const err = configError(t, () =>
    normalizeConfig(
      { workers: 'x', limits: { foo: 1 }, services: [{ name: 'svc' }] },
      { file: 'conf/lapps.json', baseDir: dir },
    ),
  );
  t.equal(err.code, 'LAPPS_CONFIG_INVALID');
  t.equal(err.name, 'ConfigError');
  t.equal(err.file, 'conf/lapps.json');
  t.ok(err instanceof Error);
  t.same(
    err.message.split('\n').sort(),
    [
      'conf/lapps.json: /limits/foo: unknown key "foo"',
      'conf/lapps.json: /services/0/request_target: is required',
      'conf/lapps.json: /workers: must be integer',
    ],
    'message lists every issue',
  );
});

t.test('cross-field checks', async (t) => {
  const dir = serviceDir(t, ['a', 'b']);
  t.test('duplicate service names', async (t) => {
    t.same(
      issuesOf(
        t,
        {
          services: [
            { name: 'a', request_target: '/a' },
            { name: 'a', request_target: '/b' },
          ],
        },
        dir,
      ),
      [{ path: '/services/1/name', message: 'duplicate service name "a" (also /services/0/name)' }],
    );
  });
  t.test('duplicate request targets', async (t) => {
    t.same(
      issuesOf(
        t,
        {
          services: [
            { name: 'a', request_target: '/x' },
            { name: 'b', request_target: '/x' },
          ],
        },
        dir,
      ),
      [
        {
          path: '/services/1/request_target',
          message: 'duplicate request_target "/x" (also /services/0/request_target)',
        },
      ],
    );
  });
  t.test('max_inbound_message_size above limits.max_message_size', async (t) => {
    t.same(
      issuesOf(
        t,
        {
          limits: { max_message_size: 100 },
          services: [{ name: 'a', request_target: '/a', max_inbound_message_size: 101 }],
        },
        dir,
      ),
      [
        {
          path: '/services/0/max_inbound_message_size',
          message: 'must not exceed limits.max_message_size (100)',
        },
      ],
    );
    // Equal to the limit is fine.
    const c = normalizeConfig(
      {
        limits: { max_message_size: 100 },
        services: [{ name: 'a', request_target: '/a', max_inbound_message_size: 100 }],
      },
      { file: 'x', baseDir: dir },
    );
    t.equal(c.services[0]!.max_inbound_message_size, 100);
  });
  t.test('max_outbound_queue_size below outbound_high_water_mark', async (t) => {
    const limits = { outbound_high_water_mark: 1000, max_outbound_queue_size: 999 };
    t.same(issuesOf(t, { limits, services: [{ name: 'a', request_target: '/a' }] }, dir), [
      {
        path: '/limits/max_outbound_queue_size',
        message: 'must be at least limits.outbound_high_water_mark (1000), or 0',
      },
    ]);
    // Equal to the mark, or 0 (four times the mark), is fine.
    for (const max of [1000, 0]) {
      const c = normalizeConfig(
        {
          limits: { ...limits, max_outbound_queue_size: max },
          services: [{ name: 'a', request_target: '/a' }],
        },
        { file: 'x', baseDir: dir },
      );
      t.equal(c.limits.max_outbound_queue_size, max);
    }
  });
  t.test('explicit source missing', async (t) => {
    t.same(
      issuesOf(t, { services: [{ name: 'a', request_target: '/a', source: 'no.lua' }] }, dir),
      [{ path: '/services/0/source', message: `file not found: ${path.join(dir, 'no.lua')}` }],
    );
  });
  t.test('default source missing says it is the default', async (t) => {
    const issues = issuesOf(t, { services: [{ name: 'c', request_target: '/c' }] }, dir);
    t.same(issues, [
      {
        path: '/services/0/source',
        message: `file not found: ${path.join(dir, 'services', 'c', 'c.lua')} (the default for a service without "source")`,
      },
    ]);
  });
  t.test('a source path stat cannot take is an issue, not a crash', async (t) => {
    // Found by the config fuzz target: statSync threw ENAMETOOLONG, ENOTDIR, and a TypeError
    // for a NUL character, out of normalizeConfig.
    const long = `${'x'.repeat(300)}.lua`;
    const issues = issuesOf(
      t,
      {
        services: [
          { name: 'a', request_target: '/a', source: long },
          { name: 'b', request_target: '/b', source: 'services/a/a.lua/b.lua' },
          { name: 'c', request_target: '/c', source: 'c\u0000.lua' },
        ],
      },
      dir,
    );
    t.same(issues, [
      {
        path: '/services/0/source',
        message: `cannot access ${path.join(dir, long)}: the path or one of its names is too long`,
      },
      {
        path: '/services/1/source',
        message: `cannot access ${path.join(dir, 'services/a/a.lua/b.lua')}: a directory on the path is a file`,
      },
      {
        path: '/services/2/source',
        message: `the path contains a NUL character: ${JSON.stringify(path.join(dir, 'c\u0000.lua'))}`,
      },
    ]);
  });
  t.test('source is a directory', async (t) => {
    t.same(issuesOf(t, { services: [{ name: 'a', request_target: '/a', source: '.' }] }, dir), [
      { path: '/services/0/source', message: `not a file: ${dir}` },
    ]);
  });
  t.test('duplicate listeners (port 0 never collides)', async (t) => {
    t.same(
      issuesOf(
        t,
        {
          listeners: [
            { host: '127.0.0.1', port: 9000 },
            { host: '127.0.0.1', port: 0 },
            { host: '127.0.0.1', port: 0 },
            { port: 9000 },
          ],
        },
        dir,
      ),
      [{ path: '/listeners/3', message: 'duplicates /listeners/0' }],
    );
  });
  t.test('"::" is dual-stack: it takes the port for IPv4 too; ipv6_only needs IPv6', async (t) => {
    t.same(
      issuesOf(
        t,
        {
          listeners: [
            { host: '::', port: 9000 },
            { host: '0.0.0.0', port: 9000 },
            { host: '127.0.0.1', port: 9001 },
            { host: '::', port: 9001, ipv6_only: true },
            { host: '127.0.0.1', port: 9002, ipv6_only: true },
          ],
        },
        dir,
      ),
      [
        { path: '/listeners/4/ipv6_only', message: 'needs an IPv6 host' },
        {
          path: '/listeners/1',
          message:
            'port 9000 is taken for IPv4 too by the dual-stack "::" of /listeners/0 (set "ipv6_only": true there to bind IPv4 separately)',
        },
      ],
    );
  });
  t.test('trusted_proxies: addresses or CIDR blocks, each checked', async (t) => {
    t.same(
      issuesOf(
        t,
        { trusted_proxies: ['10.0.0.0/8', '300.1.1.1', '10.0.0.0/33', 'fd00::/129', '::1'] },
        dir,
      ),
      [
        { path: '/trusted_proxies/1', message: '"300.1.1.1" is not an IPv4 or IPv6 address' },
        { path: '/trusted_proxies/2', message: 'prefix length must be 0-32' },
        { path: '/trusted_proxies/3', message: 'prefix length must be 0-128' },
      ],
    );
  });

  t.test('cross-field issues are listed together with schema issues', async (t) => {
    const issues = issuesOf(
      t,
      {
        workers: -1,
        services: [
          { name: 'a', request_target: '/a' },
          { name: 'a', request_target: '/a' },
        ],
      },
      dir,
    );
    t.same(issues.map((i) => i.path).sort(), [
      '/services/1/name',
      '/services/1/request_target',
      '/workers',
    ]);
  });
});

t.test('loadConfigFile', async (t) => {
  t.test('reads a file; relative sources resolve against its directory', async (t) => {
    const dir = t.testdir({
      conf: {
        'lapps.json': JSON.stringify({ services: [{ name: 's', request_target: '/s' }] }),
        services: { s: { 's.lua': 's = {}\nreturn s\n' } },
      },
    });
    const config = loadConfigFile(path.join(dir, 'conf', 'lapps.json'));
    t.equal(config.services[0]!.source, path.join(dir, 'conf', 'services', 's', 's.lua'));
  });
  t.test('a relative file path works from the current directory', async (t) => {
    const dir = t.testdir({ 'c.json': '{"workers": 2}' });
    const cwd = process.cwd();
    process.chdir(dir);
    t.teardown(() => process.chdir(cwd));
    t.equal(loadConfigFile('c.json').workers, 2);
  });
  t.test('a leading byte order mark is accepted', async (t) => {
    const dir = t.testdir({ 'c.json': '\ufeff{"workers": 3}' });
    t.equal(loadConfigFile(path.join(dir, 'c.json')).workers, 3);
  });
  t.test('schema errors name the file as given', async (t) => {
    const dir = t.testdir({ 'lapps.json': '{"limits": {"max_message_size": "big"}}' });
    const file = path.join(dir, 'lapps.json');
    const err = configError(t, () => loadConfigFile(file));
    t.equal(err.message, `${file}: /limits/max_message_size: must be integer`);
  });
  t.test('a missing file', async (t) => {
    const err = configError(t, () => loadConfigFile('/nonexistent/lapps.json'));
    t.equal(err.message, '/nonexistent/lapps.json: cannot read config: no such file');
  });
  t.test('a directory', async (t) => {
    const dir = t.testdir({});
    const err = configError(t, () => loadConfigFile(dir));
    t.equal(err.message, `${dir}: cannot read config: is a directory`);
  });
  t.test('JSON syntax errors give line and column', async (t) => {
    const dir = t.testdir({});
    const file = path.join(dir, 'bad.json');
    const cases: [string, number, number, string][] = [
      ['{\n  "workers": 2,\n}\n', 3, 1, 'expected a double-quoted key, found "}"'],
      ['{\n  "workers" 2\n}', 2, 13, 'expected ":" after the key, found "2"'],
      ['{"log": {"json": tru}}', 1, 18, 'unexpected "t"'],
      ['', 1, 1, 'unexpected end of file'],
      ['  \n', 2, 1, 'unexpected end of file'],
      ['{"workers": 2', 1, 14, 'expected "," or "}", found end of file'],
      ['{"workers": 2}\n}', 2, 1, 'unexpected "}" after the end of the document'],
      ['{"a": "x\ny"}', 1, 9, 'control character in string (use an escape such as \\n)'],
      ['{"a": "\\q"}', 1, 8, 'invalid escape in string'],
      ['{"a": -}', 1, 7, 'invalid number'],
      ['{"a": [1, 2,]}', 1, 13, 'unexpected "]"'],
      ["{'a': 1}", 1, 2, 'expected a double-quoted key, found "\'"'],
      ['{"a": "unterminated', 1, 20, 'unterminated string'],
    ];
    for (const [text, line, column, message] of cases) {
      writeFileSync(file, text);
      const err = configError(t, () => loadConfigFile(file));
      t.equal(
        err.message,
        `${file}:${line}:${column}: invalid JSON: ${message}`,
        JSON.stringify(text),
      );
      t.match(err.issues, [{ path: '', line, column }]);
    }
  });
});

t.test('static: dir and host without a NUL character', async (t) => {
  // Found by the config fuzz target's invariants: a NUL character was accepted in both.
  t.same(issuesOf(t, { static: { dir: 'a\u0000b', host: '127.0.0.1\u0000' } }, '/'), [
    { path: '/static/dir', message: 'must not contain a NUL character' },
    { path: '/static/host', message: 'must not contain a NUL character' },
  ]);
});

t.test('applyOverrides', async (t) => {
  const base = normalizeConfig(
    {
      listeners: [
        { host: '127.0.0.1', port: 1000 },
        { host: '::1', port: 2000 },
      ],
      workers: 4,
    },
    { file: 'x', baseDir: '/' },
  );
  const before = structuredClone(base);

  t.test('host and port replace the first listener only', async (t) => {
    const c = applyOverrides(base, { host: '0.0.0.0', port: 0 });
    t.same(c.listeners, [
      { host: '0.0.0.0', port: 0 },
      { host: '::1', port: 2000 },
    ]);
    t.equal(c.workers, 4);
    t.same(base, before, 'the input is not modified');
  });
  t.test('only what is given changes', async (t) => {
    t.same(applyOverrides(base, { port: 7 }).listeners[0], { host: '127.0.0.1', port: 7 });
    t.same(applyOverrides(base, { host: '::' }).listeners[0], { host: '::', port: 1000 });
    t.equal(applyOverrides(base, { workers: 2 }).workers, 2);
    t.same(applyOverrides(base, {}), base);
  });
  t.test('invalid values are ConfigErrors naming the option', async (t) => {
    const err = configError(t, () =>
      applyOverrides(base, { host: 'nowhere', port: 70000, workers: 0 }),
    );
    t.equal(err.file, 'command line');
    t.same(
      err.issues.map((i) => i.path),
      ['--host', '--port', '--workers'],
    );
    t.match(err.message, /^command line: --host: must be an IPv4 or IPv6 address$/m);
  });
  t.test('the first listener may not become a copy of another', async (t) => {
    // Found by the config fuzz target: --port 2000 on this config gave two listeners on
    // [::1]:2000, which normalizeConfig rejects in a file.
    t.same(configError(t, () => applyOverrides(base, { host: '::1', port: 2000 })).issues, [
      {
        path: '--port',
        message: 'would make the first listener the same as /listeners/1 (::1 port 2000)',
      },
    ]);
    const two = normalizeConfig(
      {
        listeners: [
          { host: '127.0.0.1', port: 2000 },
          { host: '::1', port: 2000 },
        ],
      },
      { file: 'x', baseDir: '/' },
    );
    t.same(configError(t, () => applyOverrides(two, { host: '::1' })).issues, [
      {
        path: '--host',
        message: 'would make the first listener the same as /listeners/1 (::1 port 2000)',
      },
    ]);
    t.same(applyOverrides(two, { host: '::1', port: 0 }).listeners[0], { host: '::1', port: 0 });
    t.same(applyOverrides(two, { port: 2000 }).listeners[0], { host: '127.0.0.1', port: 2000 });
  });
});

t.test('defaultConfig: the bundled echo service on 127.0.0.1:5083', async (t) => {
  const echo = path.join(repoRoot, 'services', 'echo', 'echo.lua');
  if (!existsSync(echo)) {
    t.fail(`bundled service missing: ${echo}`);
    return;
  }
  const c = defaultConfig();
  t.same(c.listeners, [{ host: '127.0.0.1', port: 5083 }]);
  t.equal(c.workers, os.availableParallelism());
  t.same(c.services, [
    {
      ...serviceDefaults,
      name: 'echo',
      request_target: '/echo',
      instances: c.workers,
      max_inbound_message_size: DEFAULT_LIMITS.max_message_size,
      source: echo,
    },
  ]);
  const three = defaultConfig({ workers: 3 });
  t.equal(three.workers, 3);
  t.equal(three.services[0]!.instances, 3, 'one echo instance per worker');
});

/** Every key path of the schema, e.g. "limits.max_message_size", "services[].name". */
function schemaKeys(schema: Record<string, unknown>, prefix = ''): string[] {
  const keys: string[] = [];
  const props = schema.properties as Record<string, Record<string, unknown>> | undefined;
  for (const [key, sub] of Object.entries(props ?? {})) {
    if (key === '$schema') continue;
    const at = prefix + key;
    keys.push(at);
    if (sub.type === 'object') keys.push(...schemaKeys(sub, `${at}.`));
    const items = sub.items as Record<string, unknown> | undefined;
    if (items) keys.push(...schemaKeys(items, `${at}[].`));
  }
  return keys;
}

t.test('docs/config.md documents every key and the error code', async (t) => {
  const docs = readFileSync(path.join(repoRoot, 'docs', 'config.md'), 'utf8');
  for (const key of schemaKeys(buildConfigSchema())) {
    const leaf = key.split('.').pop()!;
    t.ok(docs.includes(`\`${leaf}\``), `docs mention \`${leaf}\` (${key})`);
  }
  t.ok(docs.includes('LAPPS_CONFIG_INVALID'), 'docs name the error code');
});

t.test('service keys: explicit values are kept', async (t) => {
  const dir = t.testdir({ services: { a: { 'liba.so': '' }, b: { 'b.lua': '' } } });
  const c = normalizeConfig(
    {
      services: [
        {
          name: 'a',
          request_target: '/a',
          kind: 'c',
          protocol: 'lapps',
          auto_start: false,
          depends: ['b'],
          preload: ['mqr', 'my.helpers'],
          extra_headers: { 'X-Served-By': 'lapps; v=1', Server_Id: '' },
          proto_alias: 'lapps',
          subprotocols: ['chat.v2', 'chat'],
          memory_limit: 1048576,
          handler_timeout_ms: 0,
          sandbox: true,
          max_failures: 1,
        },
        { name: 'b', standalone: true, instances: 2 },
      ],
    },
    { file: 'x', baseDir: dir },
  );
  const expected: ServiceConfig[] = [
    {
      ...serviceDefaults,
      name: 'a',
      request_target: '/a',
      source: path.join(dir, 'services', 'a', 'liba.so'),
      kind: 'c',
      protocol: 'lapps',
      auto_start: false,
      depends: ['b'],
      preload: ['mqr', 'my.helpers'],
      extra_headers: { 'X-Served-By': 'lapps; v=1', Server_Id: '' },
      proto_alias: 'lapps',
      subprotocols: ['chat.v2', 'chat'],
      memory_limit: 1048576,
      handler_timeout_ms: 0,
      sandbox: true,
      max_failures: 1,
    },
    {
      ...serviceDefaults,
      depends: [],
      preload: [],
      extra_headers: {},
      subprotocols: [],
      name: 'b',
      request_target: '',
      source: path.join(dir, 'services', 'b', 'b.lua'),
      standalone: true,
      instances: 2,
    },
  ];
  t.same(c.services, expected);
});

t.test('kind "c" defaults source to services/<name>/lib<name>.so', async (t) => {
  const dir = t.testdir({ services: { a: { 'a.lua': '' } } });
  t.same(issuesOf(t, { services: [{ name: 'a', request_target: '/a', kind: 'c' }] }, dir), [
    {
      path: '/services/0/source',
      message: `file not found: ${path.join(dir, 'services', 'a', 'liba.so')} (the default for a service without "source")`,
    },
  ]);
});

t.test('standalone services and request_target', async (t) => {
  const dir = serviceDir(t, ['a', 'b']);
  t.same(issuesOf(t, { services: [{ name: 'a', standalone: true, request_target: '/a' }] }, dir), [
    {
      path: '/services/0/request_target',
      message: 'must not be set for a standalone service (it answers no request path)',
    },
  ]);
  t.same(issuesOf(t, { services: [{ name: 'a', standalone: false }] }, dir), [
    { path: '/services/0/request_target', message: 'is required' },
  ]);
  // Two standalone services have no request target to collide on.
  const c = normalizeConfig(
    {
      services: [
        { name: 'a', standalone: true },
        { name: 'b', standalone: true },
      ],
    },
    { file: 'x', baseDir: dir },
  );
  t.same(
    c.services.map((s) => [s.standalone, s.request_target]),
    [
      [true, ''],
      [true, ''],
    ],
  );
});

t.test('bad values of the service keys name the key path', async (t) => {
  const dir = serviceDir(t, ['svc', 'b']);
  const cases: [Record<string, unknown>, string][] = [
    [{ standalone: 'yes' }, '/services/0/standalone: must be boolean'],
    [{ auto_start: 1 }, '/services/0/auto_start: must be boolean'],
    [{ sandbox: null }, '/services/0/sandbox: must be boolean'],
    [{ kind: 'rust' }, '/services/0/kind: must be one of "lua", "c"'],
    [{ depends: 'b' }, '/services/0/depends: must be array'],
    [{ depends: ['b', 'b'] }, '/services/0/depends: must NOT have duplicate items'],
    [{ depends: ['a-b'] }, '/services/0/depends/0: must be a service name'],
    [{ preload: [1] }, '/services/0/preload/0: must be string'],
    [{ preload: ['a..b'] }, '/services/0/preload/0: must be a Lua module name'],
    [{ extra_headers: [] }, '/services/0/extra_headers: must be object'],
    [{ extra_headers: { 'X-A': 1 } }, '/services/0/extra_headers/X-A: must be string'],
    [{ extra_headers: { 'X-A': 'a\r\nSet-Cookie: x' } }, '/services/0/extra_headers/X-A: must not'],
    [{ extra_headers: { 'X-A': 'a\nb' } }, '/services/0/extra_headers/X-A: must not contain CR'],
    [{ extra_headers: { 'X A': 'b' } }, '/services/0/extra_headers/X A: header name must be'],
    [{ extra_headers: { 'a/b': 'b' } }, '/services/0/extra_headers/a~1b: header name must be'],
    [{ extra_headers: { '': 'b' } }, '/services/0/extra_headers/: header name must be'],
    [{ extra_headers: { Upgrade: 'h2c' } }, '/services/0/extra_headers/Upgrade: is set by'],
    [
      { extra_headers: { 'sec-websocket-protocol': 'x' } },
      '/services/0/extra_headers/sec-websocket-protocol: is set by the handshake itself',
    ],
    [{ proto_alias: 'a b' }, '/services/0/proto_alias: must be an HTTP token'],
    [{ proto_alias: '' }, '/services/0/proto_alias: must be an HTTP token'],
    [{ subprotocols: 'chat' }, '/services/0/subprotocols: must be array'],
    [{ subprotocols: ['a,b'] }, '/services/0/subprotocols/0: must be an HTTP token'],
    [{ subprotocols: ['a', 'a'] }, '/services/0/subprotocols: must NOT have duplicate items'],
    // ajv's uniqueItems misses these (see load.ts); found with a probe of the fuzz target.
    [{ preload: ['__proto__', '__proto__'] }, '/services/0/preload: must NOT have duplicate'],
    [
      { subprotocols: ['x', '__proto__', '__proto__'] },
      '/services/0/subprotocols: must NOT have duplicate items (items ## 2 and 1 are identical)',
    ],
    [{ memory_limit: 1048575 }, '/services/0/memory_limit: must be >= 1048576'],
    [{ memory_limit: 2 ** 41 }, '/services/0/memory_limit: must be <= 1099511627776'],
    [{ memory_limit: '1G' }, '/services/0/memory_limit: must be integer'],
    [{ handler_timeout_ms: -1 }, '/services/0/handler_timeout_ms: must be >= 0'],
    [{ handler_timeout_ms: 2 ** 31 }, '/services/0/handler_timeout_ms: must be <= 2147483647'],
    [{ max_failures: 0 }, '/services/0/max_failures: must be >= 1'],
    [{ max_failures: 1.5 }, '/services/0/max_failures: must be integer'],
  ];
  for (const [extra, expected] of cases) {
    const raw = {
      services: [
        { ...svc, ...extra },
        { name: 'b', request_target: '/b' },
      ],
    };
    const err = configError(t, () => normalizeConfig(raw, { file: 'lapps.json', baseDir: dir }));
    t.ok(err.message.includes(`lapps.json: ${expected}`), JSON.stringify(extra), {
      got: err.message,
    });
    t.equal(err.issues.length, 1, `one issue for ${JSON.stringify(extra)}`, { got: err.issues });
  }
});

t.test('depends: missing services and cycles are config errors', async (t) => {
  const dir = serviceDir(t, ['a', 'b', 'c']);
  const services = (deps: Record<string, string[]>) =>
    Object.entries(deps).map(([name, depends]) => ({ name, request_target: `/${name}`, depends }));
  t.same(issuesOf(t, { services: services({ a: ['b', 'zz'], b: [] }) }, dir), [
    { path: '/services/0/depends/1', message: 'no service named "zz"' },
  ]);
  t.same(issuesOf(t, { services: services({ a: ['a'] }) }, dir), [
    { path: '/services/0/depends', message: 'cycle: a -> a' },
  ]);
  // A repeated "__proto__" slips through ajv's uniqueItems (see load.ts).
  t.same(
    issuesOf(
      t,
      {
        services: [
          { name: 'a', request_target: '/a', depends: ['__proto__', '__proto__'] },
          { name: '__proto__', standalone: true, source: 'services/a/a.lua' },
        ],
      },
      dir,
    ),
    [
      {
        path: '/services/0/depends',
        message: 'must NOT have duplicate items (items ## 1 and 0 are identical)',
      },
    ],
  );
  t.same(issuesOf(t, { services: services({ c: [], a: ['b'], b: ['a'] }) }, dir), [
    { path: '/services/2/depends', message: 'cycle: a -> b -> a' },
  ]);
  t.same(issuesOf(t, { services: services({ a: ['b'], b: ['c'], c: ['a'] }) }, dir), [
    { path: '/services/2/depends', message: 'cycle: a -> b -> c -> a' },
  ]);
  const err = configError(t, () =>
    normalizeConfig(
      { services: services({ a: ['b'], b: ['a'] }) },
      { file: 'f.json', baseDir: dir },
    ),
  );
  t.equal(err.message, 'f.json: /services/1/depends: cycle: a -> b -> a');
});

t.test('startOrder: dependencies first, otherwise config order', async (t) => {
  const names = ['a', 'b', 'c', 'd', 'e'];
  const dir = serviceDir(t, names);
  const order = (deps: Record<string, string[]>): string[] => {
    const c = normalizeConfig(
      {
        services: Object.entries(deps).map(([name, depends]) => ({
          name,
          standalone: true,
          depends,
        })),
      },
      { file: 'x', baseDir: dir },
    );
    return startOrder(c).map((s) => s.name);
  };
  t.same(order({ a: [], b: [], c: [] }), ['a', 'b', 'c'], 'no depends: config order');
  t.same(order({ a: ['c'], b: [], c: [] }), ['b', 'c', 'a']);
  t.same(order({ a: ['b'], b: ['c'], c: [] }), ['c', 'b', 'a']);
  t.same(order({ a: ['d'], b: [], c: ['a'], d: [], e: ['b'] }), ['b', 'd', 'a', 'c', 'e']);
  t.same(order({ e: [], d: ['e'], c: ['d', 'e'], b: [], a: ['b', 'c'] }), [
    'e',
    'd',
    'c',
    'b',
    'a',
  ]);
  t.same(startOrder({ ...defaultConfig(), services: [] }), []);

  const broken = normalizeConfig(
    {
      services: [
        { name: 'a', standalone: true },
        { name: 'b', standalone: true },
      ],
    },
    { file: 'x', baseDir: dir },
  );
  broken.services[0]!.depends = ['b'];
  broken.services[1]!.depends = ['a'];
  t.throws(() => startOrder(broken), /dependency cycle among a, b/);
  broken.services[1]!.depends = ['zz'];
  t.throws(() => startOrder(broken), /no service named "zz"/);
});

t.test('applyOverrides copies the service lists', async (t) => {
  const dir = serviceDir(t);
  const base = normalizeConfig(
    { services: [{ ...svc, preload: ['nap'], extra_headers: { 'X-A': 'b' } }] },
    { file: 'x', baseDir: dir },
  );
  const c = applyOverrides(base, {});
  c.services[0]!.preload.push('time');
  c.services[0]!.extra_headers['X-B'] = 'c';
  t.same(base.services[0]!.preload, ['nap']);
  t.same(base.services[0]!.extra_headers, { 'X-A': 'b' });
});
