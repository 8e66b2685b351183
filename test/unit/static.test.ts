/**
 * The development static file server: files from its directory, the browser client
 * bundle at /lapps-client.js, 404 for anything outside (including traversal attempts),
 * 405 for other methods, the `static` config key, and the development token issuer
 * (`dev_tokens`: POST /token, and every way to misuse it).
 */
import t from 'tap';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { normalizeConfig } from '../../lib/config/load.js';
import { MAX_TOKEN_REQUEST_BYTES, resolveStatic, startStaticServer } from '../../lib/static.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'lapps-static-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(path.join(root, 'public', 'sub'), { recursive: true });
writeFileSync(path.join(root, 'public', 'index.html'), '<p>home</p>');
writeFileSync(path.join(root, 'public', 'sub', 'a.js'), 'export {};');
writeFileSync(path.join(root, 'secret.txt'), 'secret');

function get(url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += String(d)));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('resolveStatic stays inside its root', async (t) => {
  const dir = path.join(root, 'public');
  t.equal(resolveStatic(dir, '/'), path.join(dir, 'index.html'));
  t.equal(resolveStatic(dir, '/sub/a.js?x=1'), path.join(dir, 'sub', 'a.js'));
  t.equal(resolveStatic(dir, '/../secret.txt'), undefined);
  t.equal(resolveStatic(dir, '/%2e%2e/secret.txt'), undefined);
  t.equal(resolveStatic(dir, '/sub/../../secret.txt'), undefined);
  t.equal(resolveStatic(dir, '/%zz'), undefined, 'bad percent-encoding');
  t.equal(resolveStatic(dir, '/missing.html'), undefined);
});

t.test('serves files, 404 and 405', async (t) => {
  const server = await startStaticServer({
    dir: path.join(root, 'public'),
    host: '127.0.0.1',
    port: 0,
  });
  t.teardown(() => server.close());
  const home = await get(server.url);
  t.equal(home.status, 200);
  t.equal(home.type, 'text/html; charset=utf-8');
  t.equal(home.body, '<p>home</p>');
  const js = await get(`${server.url}sub/a.js`);
  t.equal(js.type, 'text/javascript; charset=utf-8');
  t.equal((await get(`${server.url}..%2fsecret.txt`)).status, 404);
  t.equal((await get(`${server.url}nothing`)).status, 404);
  t.equal((await get(server.url, 'POST')).status, 405);
  const bundle = await get(`${server.url}lapps-client.js`);
  t.equal(bundle.status, 200, 'the browser client bundle is served');
  t.equal(bundle.type, 'text/javascript; charset=utf-8');
});

t.test('the static config key', async (t) => {
  const config = normalizeConfig(
    { services: [], static: { dir: 'public' } },
    { file: 'x.json', baseDir: root },
  );
  t.same(config.static, { dir: path.join(root, 'public'), host: '127.0.0.1', port: 8080 });
  t.throws(
    () => normalizeConfig({ static: { port: 1 } }, { file: 'x.json', baseDir: root }),
    /static: must have required property 'dir'|\/static/,
  );
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function post(url: string, body: string | Buffer, headers: http.OutgoingHttpHeaders = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += String(d)));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

t.test('dev_tokens: POST /token issues HS256 tokens', async (t) => {
  const secretFile = path.join(root, 'dev-secret.txt');
  const server = await startStaticServer({
    dir: path.join(root, 'public'),
    host: '127.0.0.1',
    port: 0,
    dev_tokens: { secret_file: secretFile, audience: 'chat', ttl_s: 600 },
  });
  t.teardown(() => server.close());
  const secret = readFileSync(secretFile, 'utf8').trim();
  t.match(secret, /^[0-9a-f]{64}$/, 'the missing secret file was created');
  const tokenUrl = `${server.url}token`;

  const before = Math.floor(Date.now() / 1000);
  const ok = await post(tokenUrl, JSON.stringify({ sub: 'alice' }));
  t.equal(ok.status, 200, ok.body);
  t.equal(ok.headers['content-type'], 'application/json');
  t.equal(ok.headers['cache-control'], 'no-store');
  const answer = JSON.parse(ok.body) as { token: string; sub: string; exp: number };
  const [h, c, sig] = answer.token.split('.') as [string, string, string];
  t.equal(
    sig,
    createHmac('sha256', secret).update(`${h}.${c}`).digest('base64url'),
    'signed with the secret in the file',
  );
  const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, number>;
  t.equal(claims.sub, 'alice');
  t.equal(claims.aud, 'chat');
  t.ok(claims.iat! >= before && claims.iat! <= before + 2, 'iat now');
  t.equal(claims.exp, claims.iat! + 600, 'exp = iat + ttl_s');
  t.equal(answer.exp, claims.exp);
  t.equal(answer.sub, 'alice');
  t.equal(
    (await post(tokenUrl, JSON.stringify({ sub: 'Zoë' }), { Origin: server.url.slice(0, -1) }))
      .status,
    200,
    'a page of the server itself (same origin) gets one',
  );

  const refusals: [string, string | Buffer, http.OutgoingHttpHeaders, number, RegExp][] = [
    ['not JSON', '{sub: alice}', {}, 400, /not JSON/],
    ['an array', '["alice"]', {}, 400, /must be a JSON object/],
    ['null', 'null', {}, 400, /must be a JSON object/],
    ['no sub', '{}', {}, 400, /sub must be a string/],
    ['a number', '{"sub": 7}', {}, 400, /sub must be a string/],
    ['empty', '{"sub": ""}', {}, 400, /1 to 32 bytes/],
    ['too long', JSON.stringify({ sub: 'x'.repeat(33) }), {}, 400, /got 33/],
    ['a control character', JSON.stringify({ sub: 'a\u0007' }), {}, 400, /control/],
    ['a lone surrogate', '{"sub": "\\ud800"}', {}, 400, /surrogate/],
    [
      'invalid UTF-8',
      Buffer.from([0x7b, 0x22, 0x73, 0x75, 0x62, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
      {},
      400,
      /not valid UTF-8/,
    ],
    [
      'form data',
      'sub=alice',
      { 'Content-Type': 'application/x-www-form-urlencoded' },
      415,
      /application\/json/,
    ],
    ['text/plain', '{"sub":"alice"}', { 'Content-Type': 'text/plain' }, 415, /application\/json/],
    [
      'another origin',
      '{"sub":"alice"}',
      { Origin: 'http://evil.example' },
      403,
      /origin http:\/\/evil\.example/,
    ],
    [
      'a declared huge body',
      '{}',
      { 'Content-Length': String(MAX_TOKEN_REQUEST_BYTES + 1) },
      413,
      /1024 bytes/,
    ],
  ];
  for (const [what, body, headers, status, why] of refusals) {
    const res = await post(tokenUrl, body, headers).catch((err: Error) => ({
      status: -1,
      headers: {},
      body: err.message,
    }));
    t.equal(res.status, status, `${what}: ${status}`);
    t.match(res.body, why, `${what}: says why (${res.body.trim()})`);
    t.notMatch(res.body, /"token"/, `${what}: no token`);
  }

  // A chunked body (no Content-Length) that keeps coming is cut off at the limit.
  const chunked = await new Promise<Answer>((resolve, reject) => {
    const req = http.request(
      tokenUrl,
      { method: 'POST', headers: { 'Content-Type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += String(d)));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
        );
        res.on('error', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
        );
      },
    );
    req.on('error', reject);
    req.write(`{"sub": "${'a'.repeat(600)}`);
    req.write('a'.repeat(600));
    setTimeout(() => req.end('"}'), 50);
  });
  t.equal(chunked.status, 413, 'a chunked body over the limit: 413');

  const get405 = await get(tokenUrl);
  t.equal(get405.status, 405, 'GET /token: 405');
  t.match(get405.body, /POST a JSON body/);
  t.equal((await get(`${server.url}token?x=1`, 'PUT')).status, 405, 'PUT /token?x=1: 405');

  // A slow client that never finishes its body holds one socket, not the server.
  const slow = net.connect(server.port, '127.0.0.1');
  slow.write(
    'POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{"su',
  );
  t.teardown(() => slow.destroy());
  t.equal((await post(tokenUrl, '{"sub":"carol"}')).status, 200, 'others are served meanwhile');
  t.equal((await get(server.url)).status, 200, 'and the files still are');
});

t.test('dev_tokens: a short secret file stops the start', async (t) => {
  const secretFile = path.join(root, 'short-secret.txt');
  writeFileSync(secretFile, 'too short\n');
  await t.rejects(
    startStaticServer({
      dir: path.join(root, 'public'),
      host: '127.0.0.1',
      port: 0,
      dev_tokens: { secret_file: secretFile, audience: 'chat', ttl_s: 600 },
    }),
    { name: 'SecretFileError', message: /holds 9 bytes; HS256 needs at least 32/ },
  );
});

t.test('without dev_tokens there is no /token', async (t) => {
  const server = await startStaticServer({
    dir: path.join(root, 'public'),
    host: '127.0.0.1',
    port: 0,
  });
  t.teardown(() => server.close());
  t.equal((await post(`${server.url}token`, '{"sub":"alice"}')).status, 405);
  t.equal((await get(`${server.url}token`)).status, 404);
});

t.test('the dev_tokens config key', async (t) => {
  const config = normalizeConfig(
    { static: { dir: 'public', dev_tokens: { secret_file: 's.txt', audience: 'chat' } } },
    { file: 'x.json', baseDir: root },
  );
  t.same(config.static?.dev_tokens, {
    secret_file: path.join(root, 's.txt'),
    audience: 'chat',
    ttl_s: 600,
  });
  const bad: [unknown, RegExp][] = [
    [{ secret_file: 's.txt' }, /\/static\/dev_tokens\/audience: is required/],
    [{ audience: 'chat' }, /\/static\/dev_tokens\/secret_file: is required/],
    [{ secret_file: '', audience: 'chat' }, /\/static\/dev_tokens\/secret_file/],
    [{ secret_file: 's', audience: '' }, /\/static\/dev_tokens\/audience/],
    [{ secret_file: 's', audience: 'chat', ttl_s: 9 }, /\/static\/dev_tokens\/ttl_s/],
    [{ secret_file: 's', audience: 'chat', ttl_s: 86_401 }, /\/static\/dev_tokens\/ttl_s/],
    [{ secret_file: 's', audience: 'chat', secret: 'x' }, /\/static\/dev_tokens/],
  ];
  for (const [dev_tokens, why] of bad) {
    t.throws(
      () =>
        normalizeConfig({ static: { dir: 'p', dev_tokens } }, { file: 'x.json', baseDir: root }),
      why,
      JSON.stringify(dev_tokens),
    );
  }
});
