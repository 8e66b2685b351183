import path from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import {
  convertLappsHome,
  lappsPaths,
  readLappsHome,
  type LappsHomeResult,
} from '../../lib/config/lapps-compat.js';
import { ConfigError } from '../../lib/config/issues.js';
import { normalizeConfig } from '../../lib/config/load.js';

type Ctx = Pick<typeof t, 'testdir' | 'fail'>;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixture = path.join(repoRoot, 'test', 'fixtures', 'lapps-home');

const lua = (name: string): string => `${name} = {}\nreturn ${name}\n`;

/** A LAppS home with the given ws.json / lapps.json and apps/<name>/<name>.lua for `apps`. */
function home(t: Ctx, ws: unknown, lapps: unknown, apps: string[] = [], appsDir = 'apps'): string {
  const tree: Record<string, Record<string, string>> = {};
  for (const a of apps) tree[a] = { [`${a}.lua`]: lua(a) };
  return t.testdir({
    etc: {
      conf: {
        'ws.json': typeof ws === 'string' ? ws : JSON.stringify(ws),
        'lapps.json': typeof lapps === 'string' ? lapps : JSON.stringify(lapps),
      },
    },
    [appsDir]: tree,
  });
}

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

/** Warnings with the file's directory removed: "<ws.json|lapps.json>: <pointer>: <why>". */
function shortWarnings(r: LappsHomeResult | { warnings: string[] }): string[] {
  return r.warnings.map((w) => w.replace(/^.*\/(ws\.json|lapps\.json): /, '$1: '));
}

const ORIGIN_WARNING =
  'lapps.json: /services: LAppS checked no Origin, so these services accept pages from any origin ("origins": ["*"]); a lapps config can list the allowed ones (docs/config.md, Origin policy)';

t.test('the fixture: a LAppS 0.9 style home', async (t) => {
  const r = readLappsHome(fixture, {});
  const c = r.config;
  t.same(c.listeners, [{ host: '127.0.0.1', port: 5083 }]);
  t.equal(c.workers, 2);
  t.equal(c.limits.auto_fragment_size, 1392, 'auto_fragment: true -> 1392-byte frames');
  t.same(
    c.services.map((s) => s.name),
    ['echo', 'echo_lapps', 'time_broadcast'],
  );
  const [echo, echoLapps, tb] = c.services;
  t.match(echo, {
    request_target: '/echo',
    protocol: 'raw',
    instances: 2,
    standalone: false,
    source: path.join(fixture, 'apps', 'echo', 'echo.lua'),
  });
  t.match(echoLapps, {
    protocol: 'lapps',
    extra_headers: { 'X-Powered-By': 'LAppS' },
    proto_alias: 'lapps',
  });
  t.match(tb, {
    standalone: true,
    request_target: '',
    preload: ['nap', 'time'],
    depends: ['echo_lapps'],
  });
  t.same(shortWarnings(r), [
    'ws.json: /listeners: ignored: lapps has no use for it: every worker has its own SO_REUSEPORT accept socket on the port',
    'ws.json: /connection_weight: ignored: lapps has no use for it (LAppS did not use it either)',
    'ws.json: /lapps_config_auto_save: ignored: lapps has no use for it: lapps never rewrites its config files',
    'ws.json: /workers/max_poll_events: ignored: lapps has no use for it: workers size their epoll batches themselves',
    'ws.json: /workers/max_poll_wait_ms: ignored: lapps has no use for it: workers sleep in epoll until a socket, timer or inbox message wakes them',
    'ws.json: /workers/max_inbounds_skip: ignored: lapps has no use for it: messages are dispatched as soon as they arrive',
    'ws.json: /workers/input_buffer_size: ignored: lapps has no use for it: read buffers are sized by the server; limits.max_message_size bounds a message',
    "ws.json: /tls_client_version: ignored: lapps's outbound clients (cws, lapps.websocket) speak TLS 1.2 and 1.3",
    'ws.json: /tls_certificates: ignored: tls is not true (plain ws://)',
    'ws.json: /tls_server_version: ignored: tls is not true (plain ws://)',
    'lapps.json: /directories/deploy: ignored: lapps has no use for it: services are loaded from directories.applications only',
    'lapps.json: /directories/tmp: ignored: lapps has no use for it: lapps writes no temporary files',
    ORIGIN_WARNING,
  ]);
  t.ok(
    r.warnings.every((w) => w.startsWith(path.join(fixture, 'etc', 'conf'))),
    'warnings name the file',
  );
});

t.test('missing keys get LAppS defaults', async (t) => {
  const dir = home(t, {}, { services: { echo: { request_target: '/echo' } } }, ['echo']);
  const r = readLappsHome(dir, {});
  t.same(shortWarnings(r), [ORIGIN_WARNING], 'only the note that Origin stays unchecked');
  t.same(r.config.services[0]!.origins, ['*'], 'as in LAppS: any origin');
  t.same(r.config.listeners, [{ host: '0.0.0.0', port: 5083 }]);
  t.equal(r.config.workers, 4);
  t.equal(r.config.limits.auto_fragment_size, 0);
  t.match(r.config.services[0], {
    name: 'echo',
    protocol: 'raw',
    instances: 1,
    auto_start: true,
    standalone: false,
    depends: [],
    preload: [],
    extra_headers: {},
  });
  const empty = readLappsHome(home(t, {}, {}), {});
  t.same(empty.config.services, [], 'a lapps.json without services has none');
});

t.test('internal is accepted as standalone; protocol spellings', async (t) => {
  const dir = home(
    t,
    { workers: { workers: 1, auto_fragment: false } },
    {
      services: {
        a: { internal: true, request_target: '/a' },
        b: { standalone: true },
        c: { request_target: '/c', protocol: 'LAPPS' },
        d: { request_target: '/d', protocol: 'Raw' },
        e: { internal: false, standalone: true, request_target: '/e' },
      },
    },
    ['a', 'b', 'c', 'd', 'e'],
  );
  const r = readLappsHome(dir, {});
  t.same(
    r.config.services.map((s) => [s.name, s.standalone, s.request_target, s.protocol]),
    [
      ['a', true, '', 'raw'],
      ['b', true, '', 'raw'],
      ['c', false, '/c', 'lapps'],
      ['d', false, '/d', 'raw'],
      ['e', false, '/e', 'raw'],
    ],
  );
  t.same(shortWarnings(r), [
    'lapps.json: /services/a/request_target: ignored: a standalone service has no request path',
    'lapps.json: /services/e/standalone: ignored: "standalone" and "internal" both given; the first one counts',
    ORIGIN_WARNING,
  ]);
});

t.test('unknown keys: one warning each, wherever they are', async (t) => {
  const dir = home(
    t,
    { foo: 1, workers: { bar: 2, workers: 1 }, tls: false, acl: { policy: 'allow' } },
    {
      baz: true,
      directories: { applications: 'apps', qux: 'x' },
      services: {
        a: { request_target: '/a', zap: 1, acl: { policy: 'deny', exclude: ['10.0.0.1'] } },
        b: { request_target: '/b', zap: 2, acl: { policy: 'allow', exclude: [] } },
      },
    },
    ['a', 'b'],
  );
  const r = readLappsHome(dir, {});
  t.same(shortWarnings(r), [
    'ws.json: /foo: ignored: unknown key',
    'ws.json: /workers/bar: ignored: unknown key',
    'lapps.json: /directories/qux: ignored: unknown key',
    'lapps.json: /baz: ignored: unknown key',
    'lapps.json: /services/a/zap: ignored: unknown key',
    'lapps.json: /services/b/zap: ignored: unknown key',
    ORIGIN_WARNING,
  ]);
  t.equal(new Set(r.warnings).size, r.warnings.length, 'no warning twice');
});

t.test('directories.applications places the services', async (t) => {
  const dir = home(
    t,
    {},
    { directories: { applications: 'srv' }, services: { a: { request_target: '/a' } } },
    ['a'],
    'srv',
  );
  t.equal(readLappsHome(dir, {}).config.services[0]!.source, path.join(dir, 'srv', 'a', 'a.lua'));
});

t.test('environment: LAPPS_HOME, LAPPS_CONF_DIR, WS_CONFIG, LAPPS_CONFIG', async (t) => {
  t.same(lappsPaths(undefined, {}), {
    home: '/opt/lapps',
    confDir: '/opt/lapps/etc/conf',
    wsConfig: '/opt/lapps/etc/conf/ws.json',
    lappsConfig: '/opt/lapps/etc/conf/lapps.json',
  });
  t.equal(lappsPaths(undefined, { LAPPS_HOME: '/srv/l' }).home, '/srv/l');
  t.equal(lappsPaths('/a', { LAPPS_HOME: '/srv/l' }).home, '/a', 'an explicit home wins');
  t.equal(lappsPaths('/a', { LAPPS_CONF_DIR: '/etc/lapps' }).wsConfig, '/etc/lapps/ws.json');
  t.equal(lappsPaths('/a', { LAPPS_CONF_DIR: 'cfg' }).confDir, '/a/cfg');

  const dir = t.testdir({
    conf2: {
      'server.json': JSON.stringify({ port: 7000 }),
      'apps.json': JSON.stringify({ services: { a: { request_target: '/a' } } }),
    },
    apps: { a: { 'a.lua': lua('a') } },
  });
  const r = readLappsHome(undefined, {
    LAPPS_HOME: dir,
    LAPPS_CONF_DIR: path.join(dir, 'conf2'),
    WS_CONFIG: 'server.json',
    LAPPS_CONFIG: 'apps.json',
  });
  t.equal(r.config.listeners[0]!.port, 7000);
  t.equal(r.config.services[0]!.source, path.join(dir, 'apps', 'a', 'a.lua'));

  const err = configError(t, () => readLappsHome(dir, {}));
  t.equal(
    err.message,
    `${path.join(dir, 'etc', 'conf', 'ws.json')}: cannot read config: no such file`,
  );
});

t.test('max_inbound_message_size above 16 MiB raises limits.max_message_size', async (t) => {
  const dir = home(
    t,
    {},
    { services: { a: { request_target: '/a', max_inbound_message_size: 64 * 1024 * 1024 } } },
    ['a'],
  );
  const c = readLappsHome(dir, {}).config;
  t.equal(c.limits.max_message_size, 64 * 1024 * 1024);
  t.equal(c.services[0]!.max_inbound_message_size, 64 * 1024 * 1024);
});

t.test('errors name the LAppS file and key', async (t) => {
  t.test('JSON syntax errors carry line and column', async (t) => {
    const dir = home(t, '{\n  "port": 5083,\n}\n', {});
    const err = configError(t, () => readLappsHome(dir, {}));
    t.equal(
      err.message,
      `${path.join(dir, 'etc', 'conf', 'ws.json')}:3:1: invalid JSON: expected a double-quoted key, found "}"`,
    );
    const dir2 = home(t, {}, '{"services": {"a": {]}}');
    const err2 = configError(t, () => readLappsHome(dir2, {}));
    t.match(err2.message, /lapps\.json:1:21: invalid JSON: /);
  });
  t.test('values mapped back to ws.json and lapps.json', async (t) => {
    const dir = home(
      t,
      { ip: 'localhost', port: '5083', workers: { workers: 0, auto_fragment: 'yes' } },
      {},
    );
    const err = configError(t, () => readLappsHome(dir, {}));
    const ws = path.join(dir, 'etc', 'conf', 'ws.json');
    t.equal(err.message, `${ws}: /workers/auto_fragment: must be boolean`, 'shape errors first');

    const dir2 = home(t, { ip: 'localhost', port: '5083', workers: { workers: 0 } }, {});
    const ws2 = path.join(dir2, 'etc', 'conf', 'ws.json');
    t.same(
      configError(t, () => readLappsHome(dir2, {}))
        .message.split('\n')
        .sort(),
      [
        `${ws2}: /ip: must be an IPv4 or IPv6 address`,
        `${ws2}: /port: must be integer`,
        `${ws2}: /workers/workers: must be >= 1`,
      ],
    );
  });
  t.test('a service path stat cannot take is an issue, not a crash', async (t) => {
    // Found by the config fuzz target: a long service name made statSync throw
    // ENAMETOOLONG out of readLappsHome.
    const name = 'a'.repeat(300);
    const dir = home(t, {}, { services: { [name]: { request_target: '/a' } } });
    const lapps = path.join(dir, 'etc', 'conf', 'lapps.json');
    const source = path.join(dir, 'apps', name, `${name}.lua`);
    t.equal(
      configError(t, () => readLappsHome(dir, {})).message,
      `${lapps}: /services/${name}: cannot access ${source}: the path or one of its names is too long`,
    );
  });
  t.test('missing service file, cycle, bad protocol, missing request_target', async (t) => {
    const dir = home(
      t,
      {},
      {
        services: {
          a: { request_target: '/a', depends: ['b'] },
          b: { request_target: '/b', depends: ['a'] },
          c: { request_target: '/c', protocol: 'json' },
          d: {},
          nofile: { request_target: '/n' },
          internal_bad: { internal: 'yes' },
        },
      },
      ['a', 'b', 'c', 'd', 'internal_bad'],
    );
    const lapps = path.join(dir, 'etc', 'conf', 'lapps.json');
    const err = configError(t, () => readLappsHome(dir, {}));
    t.same(err.message.split('\n').sort(), [
      `${lapps}: /services/b/depends: cycle: a -> b -> a`,
      `${lapps}: /services/c/protocol: must be one of "raw", "lapps"`,
      `${lapps}: /services/d/request_target: is required`,
      `${lapps}: /services/internal_bad/internal: must be boolean`,
      `${lapps}: /services/internal_bad/request_target: is required`,
      `${lapps}: /services/nofile: file not found: ${path.join(dir, 'apps', 'nofile', 'nofile.lua')}`,
    ]);
  });
  t.test('wrong shapes', async (t) => {
    const dir = home(t, { workers: 4 }, { services: [], directories: { applications: 5 } });
    const err = configError(t, () => readLappsHome(dir, {}));
    t.same(
      err.issues.map((i) => [path.basename(i.file ?? ''), i.path, i.message]),
      [
        ['ws.json', '/workers', 'must be object'],
        ['lapps.json', '/directories/applications', 'must be a non-empty string'],
        ['lapps.json', '/services', 'must be object'],
      ],
    );
    const dir2 = home(t, [], {});
    t.match(configError(t, () => readLappsHome(dir2, {})).message, /ws\.json: \/: must be object$/);
  });
});

t.test('convertLappsHome: the equivalent lapps config, valid as a lapps file', async (t) => {
  const conv = convertLappsHome(fixture, {});
  t.same(shortWarnings(conv), shortWarnings(readLappsHome(fixture, {})));
  t.same(conv.raw.listeners, [{ host: '127.0.0.1', port: 5083 }]);
  // LAppS's max_connections is per worker: 10000 x 2 workers.
  t.same(conv.raw.limits, { auto_fragment_size: 1392, max_connections: 20000 });
  const services = conv.raw.services as Record<string, unknown>[];
  t.ok(
    services.every((s) => path.isAbsolute(String(s.source))),
    'sources are absolute',
  );
  // What convert prints is accepted as a lapps config (from anywhere) and means the same.
  const again = normalizeConfig(JSON.parse(JSON.stringify(conv.raw)), {
    file: 'converted.json',
    baseDir: '/',
  });
  t.same(again, readLappsHome(fixture, {}).config);
});

t.test(
  'tls, tls_server_version, tls_certificates, acl and max_connections map onto lapps',
  async (t) => {
    const dir = home(
      t,
      {
        workers: { workers: 3, max_connections: 100 },
        acl: { policy: 'deny', exclude: ['127.0.0.1', '::1'] },
        tls: true,
        tls_server_version: 4,
        tls_certificates: { ca: 'ssl/ca.pem', cert: 'ssl/server.crt', key: '/abs/server.key' },
      },
      {
        services: {
          echo: { request_target: '/echo', acl: { policy: 'allow', exclude: ['10.0.0.0/8'] } },
        },
      },
      ['echo'],
    );
    const conv = convertLappsHome(dir, {});
    t.same(conv.raw.listeners, [
      {
        host: '0.0.0.0',
        port: 5083,
        tls: {
          cert: path.join(dir, 'ssl', 'server.crt'),
          key: '/abs/server.key',
          ca: path.join(dir, 'ssl', 'ca.pem'),
          min_version: '1.3',
        },
      },
    ]);
    t.same(conv.raw.acl, { policy: 'deny', exclude: ['127.0.0.1', '::1'] });
    t.same(conv.raw.limits, { max_connections: 300 }, 'per worker x 3 workers');
    const svc = (conv.raw.services as Record<string, unknown>[])[0]!;
    t.same(svc.acl, { policy: 'allow', exclude: ['10.0.0.0/8'] });
    t.same(svc.origins, ['*']);
    const bad = home(t, { tls: true, tls_server_version: 5 }, { services: {} });
    const err = configError(t, () => readLappsHome(bad, {}));
    t.match(err.message, /\/tls_certificates: tls is true: cert and key/);
    t.match(err.message, /\/tls_server_version: must be 3 \(TLS 1\.2\) or 4 \(TLS 1\.3\)/);
  },
);
