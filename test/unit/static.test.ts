/**
 * The development static file server: files from its directory, the browser client
 * bundle at /lapps-client.js, 404 for anything outside (including traversal attempts),
 * 405 for other methods, and the `static` config key.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { normalizeConfig } from '../../lib/config/load.js';
import { resolveStatic, startStaticServer } from '../../lib/static.js';

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
