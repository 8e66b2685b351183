/**
 * Origin policy (cross-site WebSocket hijacking): same origin by default, lists with exact
 * and wildcard entries, "null", "*", and what happens without an Origin header.
 */
import t from 'tap';

import { echoSource, startTestServer } from '../helpers/server.js';
import { handshakeRequest, randomKey, RawClient } from '../helpers/raw-client.js';

async function statusFor(port: number, path: string, origin?: string): Promise<string> {
  const c = await RawClient.open(port);
  c.write(
    handshakeRequest({
      path,
      key: randomKey(),
      host: `127.0.0.1:${port}`,
      extra: origin === undefined ? [] : [`Origin: ${origin}`],
    }),
  );
  const res = await c.readHttpResponse();
  c.destroy();
  return String(res.status);
}

t.test('origins: same-origin default, lists, wildcards, null, missing', async (t) => {
  const server = await startTestServer({
    tls: false,
    services: [
      { name: 'same', request_target: '/same', source: echoSource },
      {
        name: 'strict',
        request_target: '/strict',
        source: echoSource,
        allow_missing_origin: false,
      },
      {
        name: 'listed',
        request_target: '/listed',
        source: echoSource,
        origins: ['https://app.example.com', 'https://*.example.org', 'null'],
      },
      { name: 'any', request_target: '/any', source: echoSource, origins: ['*'] },
    ],
  });
  t.teardown(() => server.stop());
  const p = server.port;
  const self = `http://127.0.0.1:${p}`;
  t.equal(await statusFor(p, '/same', self), '101', 'the page of the same host and port');
  t.equal(await statusFor(p, '/same', `HTTP://127.0.0.1:${p}`), '101', 'case does not matter');
  t.equal(await statusFor(p, '/same', 'https://evil.example'), '403', 'another site: 403');
  t.equal(await statusFor(p, '/same', `http://127.0.0.1:${p + 1}`), '403', 'another port: 403');
  t.equal(await statusFor(p, '/same', 'null'), '403', 'an opaque origin: 403');
  t.equal(await statusFor(p, '/same'), '101', 'no Origin (not a browser): allowed by default');
  t.equal(await statusFor(p, '/strict'), '403', 'no Origin with allow_missing_origin false: 403');
  t.equal(await statusFor(p, '/strict', self), '101');

  t.equal(await statusFor(p, '/listed', 'https://app.example.com'), '101', 'exact');
  t.equal(await statusFor(p, '/listed', 'https://app.example.com:443'), '101', 'default port');
  t.equal(await statusFor(p, '/listed', 'http://app.example.com'), '403', 'other scheme');
  t.equal(await statusFor(p, '/listed', 'https://eu.example.org'), '101', 'wildcard');
  t.equal(await statusFor(p, '/listed', 'https://example.org'), '403', 'wildcard: not the domain');
  t.equal(await statusFor(p, '/listed', 'https://eu.example.org.evil'), '403');
  t.equal(await statusFor(p, '/listed', 'null'), '101', '"null" listed');
  t.equal(await statusFor(p, '/listed', self), '403', 'a list replaces the same-origin rule');
  t.equal(await statusFor(p, '/any', 'https://anything.test'), '101', '"*"');
  t.equal(server.counters().origin_refused, 8, 'every refusal counted');
});

t.test('origins: a bad entry is a config error naming it', async (t) => {
  await t.rejects(
    startTestServer({
      services: [{ name: 'x', request_target: '/x', source: echoSource, origins: ['example.com'] }],
    }),
    /services\/0\/origins\/0/,
  );
  // The pattern lets any 5 digits through; the port range is checked (found by the config
  // fuzz target's cross-check with the native compiler).
  await t.rejects(
    startTestServer({
      services: [
        { name: 'x', request_target: '/x', source: echoSource, origins: ['http://a:99999'] },
      ],
    }),
    /services\/0\/origins\/0: port must be 1-65535/,
  );
});
