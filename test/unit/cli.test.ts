/**
 * The `lapps` binary as a user runs it. Needs dist/ (`tsc -p tsconfig.json`; npm test does
 * that before running tap).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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

function lapps(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
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
    t.match(r.stdout, /^Usage: lapps start \[--config FILE\] \[--host H\] \[--port P\]/);
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
