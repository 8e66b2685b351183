/**
 * Reload and stop belong to the library: code that embeds `startServer` gets what SIGHUP
 * gives `lapps start` by calling `server.reload()`. The config is read again from the
 * `source` given at start and its ACLs, origins and certificates applied, with the same
 * log lines as the CLI (test/e2e/cli-security.test.ts covers the signal itself).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';

import t from 'tap';
import WebSocket from 'ws';

import { loadConfig } from '../../lib/config/source.js';
import { createLogger } from '../../lib/log.js';
import { startServer } from '../../lib/server.js';
import { scaled } from '../helpers/raw-client.js';
import { echoSource } from '../helpers/server.js';

/** Resolves with "open" or the HTTP status the handshake was refused with. */
function handshake(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.terminate();
      resolve('open');
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(String(res.statusCode));
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** Tries the handshake until it gives `want` (a reload reaches the workers shortly after). */
async function eventually(url: string, want: string): Promise<string> {
  const end = Date.now() + scaled(5000);
  let got = await handshake(url);
  while (got !== want && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    got = await handshake(url);
  }
  return got;
}

t.test('startServer(config, { source }) then reload(): the config is read again', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'lapps.json');
  const write = (service: Record<string, unknown>, limits: Record<string, unknown> = {}) =>
    writeFileSync(
      file,
      JSON.stringify({
        listeners: [{ host: '127.0.0.1', port: 0 }],
        workers: 1,
        limits,
        services: [{ name: 'echo', request_target: '/echo', source: echoSource, ...service }],
      }),
    );
  let log = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      log += chunk.toString();
      done();
    },
  });
  write({});
  const source = { config: file };
  const { config } = loadConfig(source);
  const server = await startServer(config, {
    logger: createLogger({ level: 'info', json: false }, stream),
    source,
  });
  t.teardown(() => server.stop());
  const url = server.urls.get('echo') ?? '';
  t.equal(await handshake(url), 'open', 'allowed before the reload');

  write({ acl: { deny: ['127.0.0.1'] } });
  t.equal(server.reload(), true, 'reload() applied the changed file');
  t.equal(await eventually(url, '403'), '403', 'the service ACL from the file refuses 127.0.0.1');
  t.match(log, /reloaded: ACLs, Origin policies and TLS certificates/, 'logged like SIGHUP');
  t.notMatch(log, /take effect at the next start/, 'nothing needs a restart');

  writeFileSync(file, '{ "services": [');
  t.equal(server.reload(), false, 'a broken file is not applied');
  t.match(log, /reload failed, nothing changed: .*lapps\.json:1:16: invalid JSON/);
  t.equal(await handshake(url), '403', 'the ACL of the last good reload stays');

  write({}, { idle_timeout_ms: 1234 });
  t.equal(server.reload(), true, 'the ACL is lifted');
  t.match(log, /reload: changes to limits take effect at the next start/, 'restart-only change');
  t.equal(await eventually(url, 'open'), 'open', 'allowed again');

  const stopped = server.stop();
  t.equal(server.reload(), false, 'reload() while stopping does nothing');
  await stopped;
});

t.test('source as a function; reload() without a source throws', async (t) => {
  const { config } = loadConfig({
    overrides: { host: '127.0.0.1', port: 0, workers: 1 },
  });
  const quiet = createLogger(
    { level: 'error', json: false },
    new Writable({ write: (_c, _e, d) => d() }),
  );
  let reads = 0;
  const server = await startServer(config, {
    logger: quiet,
    source: () => {
      reads++;
      return config;
    },
  });
  t.teardown(() => server.stop());
  t.equal(server.reload(), true);
  t.equal(reads, 1, 'the function was called');

  const bare = await startServer(config, { logger: quiet });
  t.teardown(() => bare.stop());
  t.throws(() => bare.reload(), /needs the source option/);
  t.doesNotThrow(() => bare.reload(config), 'reload(next) needs no source');
});
