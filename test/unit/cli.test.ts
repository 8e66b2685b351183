/**
 * The `lapps` binary as a user runs it. Needs dist/ (`tsc -p tsconfig.json`; npm test does
 * that before running tap).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(repoRoot, 'bin', 'lapps.js');
const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
};

if (!existsSync(path.join(repoRoot, 'dist', 'lib', 'cli.js'))) {
  t.fail('dist/lib/cli.js missing: run "npx tsc -p tsconfig.json" first');
}

const fixtureHome = path.join(repoRoot, 'test', 'fixtures', 'lapps-home');

/** The environment without LAppS's variables, so the developer's own cannot leak in. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['LAPPS_HOME', 'LAPPS_CONF_DIR', 'WS_CONFIG', 'LAPPS_CONFIG']) delete env[k];
  return { ...env, ...extra };
}

function lappsEnv(
  env: NodeJS.ProcessEnv,
  ...args: string[]
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function lapps(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  return lappsEnv(cleanEnv(), ...args);
}

t.test('--help, -h, help: usage on stdout, exit 0', async (t) => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = lapps(...args);
    t.equal(r.code, 0, args.join(' '));
    t.match(r.stdout, /^Usage: lapps <command>/);
    t.match(r.stdout, /start/);
    t.equal(r.stderr, '');
  }
});

t.test('start --help and help start: the start options', async (t) => {
  for (const args of [
    ['start', '--help'],
    ['help', 'start'],
  ]) {
    const r = lapps(...args);
    t.equal(r.code, 0, args.join(' '));
    t.match(
      r.stdout,
      /^Usage: lapps start \[--config FILE \| --lapps-home DIR\] \[--host H\] \[--port P\]/,
    );
    for (const opt of ['--config', '--host', '--port', '--workers']) t.match(r.stdout, opt);
  }
});

t.test('--version prints the package version', async (t) => {
  for (const flag of ['--version', '-v']) {
    const r = lapps(flag);
    t.equal(r.code, 0);
    t.equal(r.stdout, `${pkg.version}\n`);
  }
});

t.test('usage errors: message on stderr, exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /^lapps: missing command\n/],
    [['--frobnicate'], /^lapps: unknown option --frobnicate\n/],
    [['start', '--frobnicate'], /^lapps: unknown option --frobnicate\n/],
    [['stop'], /^lapps: unknown command "stop"\n/],
    [['start', 'extra'], /^lapps: unexpected argument "extra"\n/],
    [['start', '--port'], /^lapps: option '-p, --port <value>' argument missing\n/],
    [['start', '--port', '70000'], /--port must be an integer from 0 to 65535, got "70000"/],
    [['start', '--port', '12ab'], /--port must be an integer from 0 to 65535, got "12ab"/],
    [['start', '--port=-1'], /--port must be an integer from 0 to 65535, got "-1"/],
    [['start', '--workers', '0'], /--workers must be an integer from 1 to 1024, got "0"/],
    [['start', '--workers', '2.5'], /--workers must be an integer from 1 to 1024/],
    [['start', '--host', 'example.com'], /--host must be an IPv4 or IPv6 address/],
    [['start', '--config', ''], /--config needs a file name/],
    [['start', '--lapps-home', ''], /--lapps-home needs a directory/],
    [['start', '-c', 'x.json', '--lapps-home', 'd'], /give --config or --lapps-home, not both/],
    [['check'], /check needs --config FILE or --lapps-home DIR/],
    [['check', 'extra', '-c', 'x'], /unexpected argument "extra"/],
    [['check', '-c', 'x', '--port', '1'], /--port is an option of start only/],
    [['config'], /missing subcommand: lapps config convert DIR/],
    [['config', 'print'], /unknown subcommand "config print"/],
    [['config', 'convert'], /config convert needs the LAppS home/],
    [['config', 'convert', 'a', 'b'], /unexpected argument "b"/],
    [['config', 'convert', '-c', 'x'], /config convert takes a LAppS home, not --config/],
  ];
  for (const [args, message] of cases) {
    const r = lapps(...args);
    t.equal(r.code, 2, `exit 2 for ${JSON.stringify(args)}`);
    t.match(r.stderr, message, JSON.stringify(args));
    t.match(r.stderr, /Run "lapps --help" for usage\.\n$/);
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
    t.equal(r.stdout, '');
  }
});

t.test('bad config: every issue on stderr, exit 1, no stack trace', async (t) => {
  const dir = t.testdir({
    'lapps.json': JSON.stringify({
      limits: { max_message_size: 'big', foo: 1 },
      services: [{ name: 'nope', request_target: '/nope' }],
    }),
    'broken.json': '{\n  "workers": 2,\n}\n',
  });
  const file = path.join(dir, 'lapps.json');
  const r = lapps('start', '--config', file);
  t.equal(r.code, 1);
  t.match(r.stderr, `${file}: /limits/max_message_size: must be integer\n`);
  t.match(r.stderr, `${file}: /limits/foo: unknown key "foo"\n`);
  t.match(r.stderr, `${file}: /services/0/source: file not found: `);
  t.notMatch(r.stderr, /\n\s+at /);

  const broken = path.join(dir, 'broken.json');
  const b = lapps('start', '-c', broken);
  t.equal(b.code, 1);
  t.equal(b.stderr, `${broken}:3:1: invalid JSON: expected a double-quoted key, found "}"\n`);

  const missing = lapps('start', '--config', path.join(dir, 'none.json'));
  t.equal(missing.code, 1);
  t.match(missing.stderr, /none\.json: cannot read config: no such file\n$/);
});

t.test('help texts name the new commands and options', async (t) => {
  const r = lapps('--help');
  t.match(r.stdout, /check/);
  t.match(r.stdout, /config convert/);
  t.match(lapps('start', '--help').stdout, /--lapps-home DIR/);
  t.match(
    lapps('help', 'check').stdout,
    /^Usage: lapps check \[--config FILE \| --lapps-home DIR\]/,
  );
  t.match(lapps('check', '--help').stdout, /^Usage: lapps check/);
  t.match(lapps('help', 'config').stdout, /^Usage: lapps config convert \[DIR\]/);
  t.match(lapps('config', 'convert', '--help').stdout, /^Usage: lapps config convert/);
});

t.test('config convert: the equivalent lapps config on stdout, warnings on stderr', async (t) => {
  const r = lapps('config', 'convert', fixtureHome);
  t.equal(r.code, 0, r.stderr);
  const raw = JSON.parse(r.stdout) as { services: { name: string; source: string }[] };
  t.same(
    raw.services.map((s) => s.name),
    ['echo', 'echo_lapps', 'time_broadcast'],
  );
  t.equal(raw.services[0]!.source, path.join(fixtureHome, 'apps', 'echo', 'echo.lua'));
  t.match(r.stderr, /^warning: .*ws\.json: \/listeners: ignored: lapps has no use for it/);
  t.equal(
    r.stderr.split('\n').filter((l) => l.includes('/tls_certificates:')).length,
    1,
    'one warning each',
  );

  // The output is itself a valid config, usable from any directory.
  const dir = t.testdir({});
  const file = path.join(dir, 'lapps.json');
  writeFileSync(file, r.stdout);
  const c = lapps('check', '--config', file);
  t.equal(c.code, 0, c.stderr);
  t.equal(c.stdout, 'ok: 3 services\n');
  t.equal(c.stderr, '');

  const env = lappsEnv(cleanEnv({ LAPPS_HOME: fixtureHome }), 'config', 'convert');
  t.equal(env.code, 0, 'DIR defaults to $LAPPS_HOME');
  t.equal(env.stdout, r.stdout);
});

t.test('config convert and check report errors with exit 1', async (t) => {
  const dir = t.testdir({
    etc: {
      conf: {
        'ws.json': '{}',
        'lapps.json': JSON.stringify({ services: { gone: { request_target: '/gone' } } }),
      },
    },
  });
  const lappsJson = path.join(dir, 'etc', 'conf', 'lapps.json');
  for (const args of [
    ['config', 'convert', dir],
    ['check', '--lapps-home', dir],
  ]) {
    const r = lapps(...args);
    t.equal(r.code, 1, args.join(' '));
    t.equal(r.stdout, '');
    t.equal(
      r.stderr,
      `${lappsJson}: /services/gone: file not found: ${path.join(dir, 'apps', 'gone', 'gone.lua')}\n`,
    );
  }
  const none = lapps('config', 'convert', path.join(dir, 'nope'));
  t.equal(none.code, 1);
  t.match(none.stderr, /ws\.json: cannot read config: no such file\n$/);
});

t.test('check: ok with the count, warnings on stderr; LAPPS_HOME and its variables', async (t) => {
  const r = lapps('check', '--lapps-home', fixtureHome);
  t.equal(r.code, 0);
  t.equal(r.stdout, 'ok: 3 services\n');
  t.match(r.stderr, /warning: .*\/tls_certificates: ignored: tls is not true/);

  const dir = t.testdir({
    cfg: {
      'w.json': JSON.stringify({ port: 6000 }),
      'l.json': JSON.stringify({ services: { one: { request_target: '/one' } } }),
    },
    apps: { one: { 'one.lua': 'one = {}\nreturn one\n' } },
  });
  const env = cleanEnv({
    LAPPS_HOME: dir,
    LAPPS_CONF_DIR: path.join(dir, 'cfg'),
    WS_CONFIG: 'w.json',
    LAPPS_CONFIG: 'l.json',
  });
  const e = lappsEnv(env, 'check');
  t.equal(e.code, 0, e.stderr);
  t.equal(e.stdout, 'ok: 1 service\n');
  t.match(
    e.stderr,
    /^warning: \S+l\.json: \/services: LAppS checked no Origin[^\n]*\n$/,
    'only the Origin note',
  );
});

t.test('start --lapps-home and $LAPPS_HOME: config errors exit 1', async (t) => {
  const dir = t.testdir({
    etc: { conf: { 'ws.json': '{"port": 5083', 'lapps.json': '{}' } },
  });
  const ws = path.join(dir, 'etc', 'conf', 'ws.json');
  const expected = `${ws}:1:14: invalid JSON: expected "," or "}", found end of file\n`;
  const r = lapps('start', '--lapps-home', dir);
  t.equal(r.code, 1);
  t.equal(r.stderr, expected);
  const e = lappsEnv(cleanEnv({ LAPPS_HOME: dir }), 'start');
  t.equal(e.code, 1, 'LAPPS_HOME is used when neither option is given');
  t.equal(e.stderr, expected);
  // --config wins over LAPPS_HOME.
  const c = lappsEnv(cleanEnv({ LAPPS_HOME: dir }), 'start', '--config', path.join(dir, 'x.json'));
  t.match(c.stderr, /x\.json: cannot read config: no such file/);
});

// The warnings are logged before the server starts, so this holds whether or not the
// native addon loads here; a server that did start is stopped with SIGTERM.
t.test('start --lapps-home: each warning is one WARN log line', async (t) => {
  const child = spawn(
    process.execPath,
    [bin, 'start', '--lapps-home', fixtureHome, '--port', '0', '--workers', '1'],
    { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 20_000);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      if (/ started: | cannot start: /.test(stderr)) done();
    });
    void exited.then(done);
  });
  child.kill('SIGTERM');
  await exited;
  t.match(stderr, /WARN {2}\S*ws\.json: \/workers\/max_poll_events: ignored: lapps has no use/);
  t.equal(stderr.match(/WARN .*ignored:/g)?.length, 12, 'one line per warning');
  t.equal(stderr.match(/\/tls_certificates:/g)?.length, 1, 'each warning once');
});

t.test('lapps token: a development token, and every misuse refused', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapps-cli-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const secretFile = path.join(dir, 'secret.txt');
  const secret = 'c'.repeat(48);
  writeFileSync(secretFile, `${secret}\n`);

  const r = lapps(
    'token',
    '--secret-file',
    secretFile,
    '--sub',
    'alice',
    '--aud',
    'chat',
    '--ttl',
    '60',
  );
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, '');
  const [h, c, sig] = r.stdout.trim().split('.') as [string, string, string];
  t.equal(sig, createHmac('sha256', secret).update(`${h}.${c}`).digest('base64url'), 'signed');
  const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, unknown>;
  t.match(claims, { sub: 'alice', aud: 'chat' });
  t.equal(Number(claims.exp) - Number(claims.iat), 60, '--ttl');
  const dflt = lapps('token', '--secret-file', secretFile, '--sub', 'bob', '--aud', 'chat');
  const c2 = dflt.stdout.trim().split('.')[1]!;
  const claims2 = JSON.parse(Buffer.from(c2, 'base64url').toString()) as Record<string, number>;
  t.equal(claims2.exp! - claims2.iat!, 600, 'ttl 600 by default');

  const help = lapps('token', '--help');
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: lapps token --secret-file FILE/);
  t.match(lapps('help', 'token').stdout, /^Usage: lapps token/);

  const short = path.join(dir, 'short.txt');
  writeFileSync(short, 'short');
  const usage: [string[], RegExp][] = [
    [['--sub', 'a', '--aud', 'chat'], /token needs --secret-file FILE/],
    [['--secret-file', secretFile, '--aud', 'chat'], /token needs --sub NAME/],
    [['--secret-file', secretFile, '--sub', 'a'], /token needs --aud AUDIENCE/],
    [['--secret-file', secretFile, '--sub', '', '--aud', 'chat'], /--sub: must be 1 to 32 bytes/],
    [['--secret-file', secretFile, '--sub', 'x'.repeat(33), '--aud', 'c'], /got 33/],
    [['--secret-file', secretFile, '--sub', 'a\tb', '--aud', 'c'], /control characters/],
    [
      ['--secret-file', secretFile, '--sub', 'a', '--aud', 'c', '--ttl', '5'],
      /--ttl must be an integer from 10 to 86400/,
    ],
    [['--secret-file', secretFile, '--sub', 'a', '--aud', 'c', '--ttl', 'x'], /--ttl must be/],
    [
      ['--secret-file', secretFile, '--sub', 'a', '--aud', 'c', '--port', '1'],
      /unknown option --port/,
    ],
    [
      ['--secret-file', secretFile, '--sub', 'a', '--aud', 'c', 'extra'],
      /unexpected argument "extra"/,
    ],
  ];
  for (const [args, why] of usage) {
    const u = lapps('token', ...args);
    t.equal(u.code, 2, `${args.join(' ')}: exit 2`);
    t.match(u.stderr, why, `${args.join(' ')}: says why`);
    t.equal(u.stdout, '', 'no token');
  }
  for (const [file, why] of [
    [short, /holds 5 bytes; HS256 needs at least 32/],
    [path.join(dir, 'missing.txt'), /cannot read the token secret .*ENOENT/],
  ] as [string, RegExp][]) {
    const u = lapps('token', '--secret-file', file, '--sub', 'a', '--aud', 'chat');
    t.equal(u.code, 1, `${path.basename(file)}: exit 1`);
    t.match(u.stderr, why);
    t.equal(u.stdout, '', 'no token');
  }
  t.notOk(existsSync(path.join(dir, 'missing.txt')), 'lapps token never creates a secret');
});
