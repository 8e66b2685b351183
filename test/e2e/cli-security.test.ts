/**
 * The security features as an operator meets them through the `lapps` binary: `cert dev`,
 * `check` compiling ACLs and certificates, SIGHUP reloading ACLs and certificates with
 * connections up, and a LAppS home with tls/acl keys served over wss. Needs dist/.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

import t from 'tap';
import WebSocket from 'ws';

import { testPki } from '../helpers/pki.js';
import { scaled } from '../helpers/raw-client.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(repoRoot, 'bin', 'lapps.js');
const echo = path.join(repoRoot, 'services', 'echo', 'echo.lua');
const pki = testPki();

function env(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  for (const k of ['LAPPS_HOME', 'LAPPS_CONF_DIR', 'WS_CONFIG', 'LAPPS_CONFIG']) delete e[k];
  return e;
}

function lapps(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: env(),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Running {
  child: ChildProcess;
  log: () => string;
  waitFor: (re: RegExp, what: string) => Promise<RegExpExecArray>;
  stop: () => Promise<number | null>;
}

function start(args: string[]): Running {
  const child = spawn(process.execPath, [bin, 'start', ...args], {
    env: env(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => (log += s));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return {
    child,
    log: () => log,
    async waitFor(re, what) {
      const end = Date.now() + scaled(15_000);
      for (;;) {
        const m = re.exec(log);
        if (m) return m;
        if (Date.now() > end || child.exitCode !== null) {
          throw new Error(`waiting for ${what}; log:\n${log}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

function peerCn(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      { port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false },
      () => {
        const cn = s.getPeerCertificate().subject?.CN;
        s.destroy();
        resolve(Array.isArray(cn) ? cn.join(',') : (cn ?? ''));
      },
    );
    s.once('error', reject);
  });
}

function wssEcho(url: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca: pki.caPem });
    ws.once('open', () => ws.send(text));
    ws.once('message', (d: WebSocket.RawData) => {
      ws.close();
      resolve(d.toString());
    });
    ws.once('error', reject);
  });
}

t.test('cert dev: a localhost certificate a wss client trusts', async (t) => {
  const dir = t.testdir({});
  const out = path.join(dir, 'certs');
  const r = lapps('cert', 'dev', '--out', out, '--days', '2');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /wrote .*localhost\.crt/);
  const cert = path.join(out, 'localhost.crt');
  const key = path.join(out, 'localhost.key');
  t.equal(statSync(key).mode & 0o777, 0o600, 'the key is private');
  const again = lapps('cert', 'dev', '--out', out);
  t.equal(again.code, 1, 'existing files are kept');
  t.match(again.stderr, /exist/);
  t.equal(lapps('cert', 'dev', '--out', out, '--force').code, 0, '--force overwrites');
  t.equal(lapps('cert', 'dev', '--days', '0').code, 2, 'bad --days is a usage error');

  const config = path.join(dir, 'lapps.json');
  writeFileSync(
    config,
    JSON.stringify({
      listeners: [{ host: '127.0.0.1', port: 0, tls: { cert, key } }],
      workers: 1,
      services: [{ name: 'echo', request_target: '/echo', source: echo }],
    }),
  );
  const s = start(['--config', config]);
  t.teardown(() => s.stop());
  const m = await s.waitFor(/service echo \(raw\) at (wss:\/\/\S+)/, 'the wss URL');
  const answer = await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(m[1]!.replace('127.0.0.1', 'localhost'), { ca: readFileSync(cert) });
    ws.once('open', () => ws.send('dev cert'));
    ws.once('message', (d: WebSocket.RawData) => {
      ws.close();
      resolve(d.toString());
    });
    ws.once('error', reject);
  });
  t.equal(answer, 'dev cert', 'verified against the dev certificate');
});

t.test('check: certificate and ACL problems name the file or the entry', async (t) => {
  const dir = t.testdir({});
  const write = (name: string, config: unknown): string => {
    const file = path.join(dir, name);
    writeFileSync(file, JSON.stringify(config));
    return file;
  };
  const svc = [{ name: 'echo', request_target: '/echo', source: echo }];
  const mismatch = lapps(
    'check',
    '--config',
    write('a.json', {
      listeners: [{ port: 0, tls: { cert: pki.serverCert, key: pki.otherKey } }],
      services: svc,
    }),
  );
  t.equal(mismatch.code, 1);
  t.match(mismatch.stderr, /does not match/);
  const missing = lapps(
    'check',
    '--config',
    write('b.json', {
      listeners: [{ port: 0, tls: { cert: '/nope.crt', key: pki.serverKey } }],
      services: svc,
    }),
  );
  t.equal(missing.code, 1);
  t.match(missing.stderr, /\/listeners\/0\/tls\/cert: file not found: \/nope\.crt/);
  const badAcl = lapps(
    'check',
    '--config',
    write('c.json', { acl: { allow: ['10.0.0.0/33'] }, services: svc }),
  );
  t.equal(badAcl.code, 1);
  t.match(badAcl.stderr, /\/acl\/allow\/0: prefix length must be 0-32/);
  const mtls = lapps(
    'check',
    '--config',
    write('d.json', {
      listeners: [
        { port: 0, tls: { cert: pki.serverCert, key: pki.serverKey, client_cert: 'require' } },
      ],
      services: svc,
    }),
  );
  t.equal(mtls.code, 1);
  t.match(mtls.stderr, /\/listeners\/0\/tls\/ca: is required with client_cert "require"/);
  const good = lapps(
    'check',
    '--config',
    write('e.json', {
      listeners: [{ port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } }],
      acl: { policy: 'deny', exclude: ['127.0.0.0/8', '::1'] },
      services: svc,
    }),
  );
  t.equal(good.code, 0, good.stderr);
});

t.test(
  'SIGHUP: new certificate and ACL, open connections stay, bad configs change nothing',
  async (t) => {
    const dir = t.testdir({});
    const config = path.join(dir, 'lapps.json');
    const write = (tlsFiles: { cert: string; key: string }, acl?: unknown): void =>
      writeFileSync(
        config,
        JSON.stringify({
          listeners: [{ host: '127.0.0.1', port, tls: tlsFiles }],
          workers: 2,
          ...(acl ? { acl } : {}),
          services: [{ name: 'echo', request_target: '/echo', source: echo, instances: 2 }],
        }),
      );
    let port = 0; // the bound port, kept across reloads once known
    write({ cert: pki.serverCert, key: pki.serverKey });
    const s = start(['--config', config]);
    t.teardown(() => s.stop());
    const m = await s.waitFor(/at wss:\/\/127\.0\.0\.1:(\d+)\/echo/, 'startup');
    port = Number(m[1]);
    const url = `wss://127.0.0.1:${port}/echo`;
    t.equal(await peerCn(port), 'localhost');
    const kept = new WebSocket(url, { ca: pki.caPem });
    await new Promise((r) => kept.once('open', r));

    write({ cert: pki.otherCert, key: pki.otherKey });
    s.child.kill('SIGHUP');
    await s.waitFor(/reloaded: ACLs, Origin policies and TLS certificates/, 'the reload');
    let cn = '';
    for (let i = 0; i < 50 && cn !== 'other.test'; ++i) cn = await peerCn(port);
    t.equal(cn, 'other.test', 'new connections get the new certificate');

    write({ cert: pki.otherCert, key: pki.serverKey });
    s.child.kill('SIGHUP');
    await s.waitFor(/reload failed, nothing changed: .*does not match/, 'the refused reload');
    t.equal(await peerCn(port), 'other.test', 'still the certificate of the last good reload');

    write({ cert: pki.serverCert, key: pki.serverKey }, { deny: ['127.0.0.1'] });
    s.child.kill('SIGHUP');
    await s.waitFor(/reloaded:[^\n]*\n[\s\S]*reloaded:/, 'the second reload');
    let refused = false;
    for (let i = 0; i < 50 && !refused; ++i) {
      refused = await wssEcho(url, 'x').then(
        () => false,
        () => true,
      );
    }
    t.ok(refused, '127.0.0.1 refused at accept after the reload');
    const reply = new Promise<string>((resolve) =>
      kept.once('message', (d: WebSocket.RawData) => resolve(d.toString())),
    );
    kept.send('from before');
    t.equal(await reply, 'from before', 'the connection from before every reload still echoes');
    kept.close();
    t.equal(await s.stop(), 0, 'SIGTERM: exit 0');
  },
);

t.test('a LAppS home with tls and acl keys serves wss as configured', async (t) => {
  const home = t.testdir({});
  const conf = path.join(home, 'etc', 'conf');
  mkdirSync(conf, { recursive: true });
  mkdirSync(path.join(home, 'apps', 'echo'), { recursive: true });
  writeFileSync(path.join(home, 'apps', 'echo', 'echo.lua'), readFileSync(echo));
  writeFileSync(
    path.join(conf, 'ws.json'),
    JSON.stringify({
      ip: '127.0.0.1',
      port: 0,
      workers: { workers: 1, max_connections: 100 },
      acl: { policy: 'deny', exclude: ['127.0.0.1'] },
      tls: true,
      tls_server_version: 4,
      tls_certificates: { ca: pki.ca, cert: pki.serverCert, key: pki.serverKey },
    }),
  );
  writeFileSync(
    path.join(conf, 'lapps.json'),
    JSON.stringify({
      services: { echo: { request_target: '/echo', protocol: 'raw', instances: 1 } },
    }),
  );
  const s = start(['--lapps-home', home]);
  t.teardown(() => s.stop());
  const m = await s.waitFor(/at (wss:\/\/127\.0\.0\.1:\d+\/echo)/, 'startup');
  t.equal(await wssEcho(m[1]!, 'lapps home over wss'), 'lapps home over wss');
  const tls12 = await new Promise<string>((resolve) => {
    const port = Number(/:(\d+)\//.exec(m[1]!)![1]);
    const c = tls.connect(
      { port, host: '127.0.0.1', maxVersion: 'TLSv1.2', ca: pki.caPem, servername: 'localhost' },
      () => {
        c.destroy();
        resolve('connected');
      },
    );
    c.once('error', (e) => resolve(e.message));
  });
  t.not(tls12, 'connected', 'tls_server_version 4: TLS 1.2 refused');
  t.notMatch(s.log(), /not supported/, 'no key reported as unsupported');
});
