/**
 * The opening handshake (RFC 6455 §4.2.1-4.2.2, HTTP/1.1 per RFC 9110/9112): every server
 * requirement checked, with real HTTP error responses (exact status line, the headers
 * each status requires, a body matching Content-Length, then the connection closed),
 * case-insensitive header names, no subprotocol or extension accepted, request bytes
 * trickled or followed by frames in the same packet, and the handshake timeout.
 */
import t from 'tap';

import { startTestServer } from '../helpers/server.js';
import {
  checkUpgradeResponse,
  delay,
  encodeFrame,
  expectEcho,
  expectNormalClose,
  handshakeRequest,
  header,
  Op,
  randomKey,
  RawClient,
  scaled,
  type Asserts,
  type HttpResponse,
} from '../helpers/raw-client.js';

const HANDSHAKE_TIMEOUT_MS = 300;
const server = await startTestServer();
const quick = await startTestServer({ limits: { handshake_timeout_ms: HANDSHAKE_TIMEOUT_MS } });
t.teardown(async () => {
  await server.stop();
  await quick.stop();
});

const STATUS: Record<number, string> = {
  400: 'HTTP/1.1 400 Bad Request',
  404: 'HTTP/1.1 404 Not Found',
  405: 'HTTP/1.1 405 Method Not Allowed',
  426: 'HTTP/1.1 426 Upgrade Required',
  431: 'HTTP/1.1 431 Request Header Fields Too Large',
  505: 'HTTP/1.1 505 HTTP Version Not Supported',
};

interface Exchange {
  res: HttpResponse | undefined;
  error?: string;
  body: Buffer;
  tcp: string;
  client: RawClient;
}

/** Sends `request` (whole, or in chops) and reads the response and how TCP ended. */
async function exchange(
  request: string | Buffer,
  options: { port?: number; chop?: number; chopDelayMs?: number } = {},
): Promise<Exchange> {
  const c = await RawClient.open(options.port ?? server.port);
  const bytes = typeof request === 'string' ? Buffer.from(request, 'latin1') : request;
  if (options.chop) await c.writeChopped(bytes, options.chop, options.chopDelayMs ?? 0);
  else c.write(bytes);
  let res: HttpResponse | undefined;
  let error: string | undefined;
  try {
    res = await c.readHttpResponse();
  } catch (e) {
    error = (e as Error).message;
  }
  const tcp = res?.status === 101 ? 'open' : await c.waitEnd();
  return { res, error, body: c.body(), tcp, client: c };
}

/** Checks an HTTP error response: status line, framing, connection closed after it. */
function checkError(t: Asserts, x: Exchange, status: number): void {
  if (!x.res) {
    t.fail(`no HTTP response (${x.error ?? 'nothing'}), wanted ${status}`);
    return;
  }
  t.equal(x.res.statusLine, STATUS[status], `status line: ${STATUS[status]}`);
  const length = header(x.res, 'content-length');
  if (length !== undefined) {
    t.equal(x.body.length, Number(length), 'body length matches Content-Length');
  }
  t.notOk(x.res.headers.has('sec-websocket-accept'), 'no Sec-WebSocket-Accept on an error');
  t.equal(x.tcp, 'fin', 'server closed the connection after the response (FIN)');
}

/** Expects a 101 and a working echo on the same connection. */
async function checkUpgraded(t: Asserts, x: Exchange, key: string): Promise<void> {
  if (!x.res) {
    t.fail(`no HTTP response (${x.error ?? 'nothing'})`);
    x.client.destroy();
    return;
  }
  t.equal(checkUpgradeResponse(x.res, key), undefined, `valid 101 response (${x.res.statusLine})`);
  if (x.res.status !== 101) {
    x.client.destroy();
    return;
  }
  x.client.send({ opcode: Op.Text, payload: 'after handshake' });
  await expectEcho(t, x.client, Op.Text, 'after handshake');
  await expectNormalClose(t, x.client);
}

const req = handshakeRequest;

t.test('a valid handshake: 101 with the right accept key, then echo', async (t) => {
  const key = randomKey();
  await checkUpgraded(t, await exchange(req({ key })), key);
});

t.test('the RFC 6455 §1.3 sample key gets the sample accept value', async (t) => {
  const key = 'dGhlIHNhbXBsZSBub25jZQ==';
  const x = await exchange(req({ key }));
  t.equal(header(x.res!, 'sec-websocket-accept'), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  await checkUpgraded(t, x, key);
});

t.test('header names and token values are case-insensitive', async (t) => {
  for (const transform of [
    (s: string) => s.toLowerCase(),
    (s: string) => s.toUpperCase(),
    (s: string) => s.replace(/[a-z]/g, (ch, i: number) => (i % 2 ? ch.toUpperCase() : ch)),
  ]) {
    const key = randomKey();
    const lines = [
      `${transform('Host')}: localhost`,
      `${transform('Upgrade')}: ${transform('websocket')}`,
      `${transform('Connection')}: ${transform('Upgrade')}`,
      `${transform('Sec-WebSocket-Key')}: ${key}`,
      `${transform('Sec-WebSocket-Version')}: 13`,
    ];
    const x = await exchange(['GET /echo HTTP/1.1', ...lines, '', ''].join('\r\n'));
    await t.test(lines[1]!, (t) => checkUpgraded(t, x, key));
  }
});

t.test('Connection as a token list, extra whitespace and extra headers', async (t) => {
  const key = randomKey();
  const request = [
    'GET /echo HTTP/1.1',
    'Host: localhost:5083',
    'User-Agent: conformance',
    'Upgrade:   websocket   ',
    'Connection: keep-alive,  Upgrade',
    'Origin: http://localhost:5083', // same origin as Host (docs/security.md)
    'Sec-WebSocket-Key:' + key,
    'Sec-WebSocket-Version: 13',
    'Cache-Control: no-cache',
    '',
    '',
  ].join('\r\n');
  await checkUpgraded(t, await exchange(request), key);
});

t.test('a requested subprotocol and extension are not accepted', async (t) => {
  const key = randomKey();
  const x = await exchange(
    req({
      key,
      extra: [
        'Sec-WebSocket-Protocol: chat, superchat',
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits',
      ],
    }),
  );
  t.notOk(x.res?.headers.has('sec-websocket-protocol'), 'no Sec-WebSocket-Protocol');
  t.notOk(x.res?.headers.has('sec-websocket-extensions'), 'no Sec-WebSocket-Extensions');
  await checkUpgraded(t, x, key);
});

t.test('a query string does not change the route', async (t) => {
  const key = randomKey();
  await checkUpgraded(t, await exchange(req({ key, path: '/echo?token=abc&x=1' })), key);
});

t.test(
  'an absolute-form target is accepted and routed by its path (RFC 9112 §3.2.2)',
  async (t) => {
    for (const target of [
      `http://127.0.0.1:${server.port}/echo`,
      'ws://localhost/echo?x=1',
      'WSS://[::1]:443/echo',
    ]) {
      const key = randomKey();
      const x = await exchange(req({ key, path: target }));
      await t.test(target, (t) => checkUpgraded(t, x, key));
    }
    const x = await exchange(req({ path: 'http://localhost/nope' }));
    await t.test('a path no service answers: 404', async (t) => checkError(t, x, 404));
  },
);

t.test('with an absolute-form target, Origin is compared with its host, not Host', async (t) => {
  // RFC 9112 §3.2.2: the target's authority replaces the Host header.
  const key = randomKey();
  const same = await exchange(
    req({ key, path: 'http://app.test:81/echo', extra: ['Origin: http://app.test:81'] }),
  );
  await t.test("Origin matches the target's host", (t) => checkUpgraded(t, same, key));
  const x = await exchange(
    req({
      path: 'http://app.test:81/echo',
      host: 'localhost',
      extra: ['Origin: http://localhost'],
    }),
  );
  await t.test('Origin matches only the Host header: 403', async (t) => {
    if (!x.res) return t.fail('no response');
    t.equal(x.res.status, 403, x.res.statusLine);
    t.equal(x.tcp, 'fin', 'closed');
  });
});

t.test('400 for malformed requests', async (t) => {
  const cases: [string, string | Buffer][] = [
    ['garbage line', 'GARBAGE\r\n\r\n'],
    ['no HTTP version', 'GET /echo\r\nHost: localhost\r\n\r\n'],
    ['header line without a colon', req({ extra: ['NoColonHere'] })],
    ['space before the colon (RFC 9112 §5.1)', req({ extra: ['X-Bad : value'] })],
    [
      'binary junk',
      Buffer.concat([Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]), Buffer.from('\r\n\r\n')]),
    ],
  ];
  for (const [name, request] of cases) {
    const x = await exchange(request);
    await t.test(name, async (t) => checkError(t, x, 400));
  }
});

t.test('400 for requests breaking §4.2.1', async (t) => {
  const cases: [string, string][] = [
    ['missing Host', req({ omit: ['host'] })],
    ['missing Sec-WebSocket-Key', req({ omit: ['sec-websocket-key'] })],
    ['key of 15 bytes', req({ key: Buffer.alloc(15, 7).toString('base64') })],
    ['key of 17 bytes', req({ key: Buffer.alloc(17, 7).toString('base64') })],
    ['key that is not base64', req({ key: 'not base64 at all!!!!!==' })],
    ['empty key', req({ key: '' })],
    [
      'Connection without the upgrade token',
      req({ omit: ['connection'], extra: ['Connection: keep-alive'] }),
    ],
    [
      'Connection with a token that only contains "upgrade"',
      req({ omit: ['connection'], extra: ['Connection: notupgrade'] }),
    ],
    ['Upgrade: websocket but no Connection', req({ omit: ['connection'] })],
    ['two Host headers (RFC 9112 §3.2)', req({ extra: ['Host: other.example'] })],
    [
      'two Sec-WebSocket-Key headers (§11.3.1)',
      req({ extra: [`Sec-WebSocket-Key: ${randomKey()}`] }),
    ],
    ['two Sec-WebSocket-Version headers', req({ extra: ['Sec-WebSocket-Version: 13'] })],
    [
      'two Origin headers (RFC 6454 §7.3)',
      req({ host: 'localhost', extra: ['Origin: http://localhost', 'Origin: http://evil.test'] }),
    ],
    [
      'two Origin headers, the same value',
      req({ host: 'localhost', extra: ['Origin: http://localhost', 'Origin: http://localhost'] }),
    ],
    ['absolute-form target without a Host header', req({ path: 'http://h/echo', omit: ['host'] })],
    ['absolute-form target with user info', req({ path: 'http://u:p@localhost/echo' })],
  ];
  for (const [name, request] of cases) {
    const x = await exchange(request);
    await t.test(name, async (t) => checkError(t, x, 400));
  }
});

t.test('an Upgrade header for another protocol is refused (400 or 426)', async (t) => {
  const x = await exchange(req({ omit: ['upgrade'], extra: ['Upgrade: h2c'] }));
  t.ok(x.res?.status === 400 || x.res?.status === 426, `status ${x.res?.statusLine}`);
  if (x.res?.status === 426) checkError(t, x, 426);
  else checkError(t, x, 400);
});

t.test('404 for a path no service answers', async (t) => {
  for (const path of ['/nope', '/echox', '/echo/more', '/', '/ECHO']) {
    const x = await exchange(req({ path }));
    await t.test(path, async (t) => checkError(t, x, 404));
  }
});

t.test('405 for methods other than GET, with Allow: GET (RFC 9110 §15.5.6)', async (t) => {
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const x = await exchange(req({ method }));
    await t.test(method, async (t) => {
      checkError(t, x, 405);
      t.match(x.res ? header(x.res, 'allow') : undefined, /\bGET\b/, 'Allow lists GET');
    });
  }
});

t.test('426 with Sec-WebSocket-Version: 13 for another version (§4.2.2, §4.4)', async (t) => {
  for (const version of ['8', '12', '14', '0', 'abc']) {
    const request = req({
      omit: ['sec-websocket-version'],
      extra: [`Sec-WebSocket-Version: ${version}`],
    });
    const x = await exchange(request);
    await t.test(`version ${version}`, async (t) => {
      checkError(t, x, 426);
      t.equal(x.res ? header(x.res, 'sec-websocket-version') : undefined, '13');
    });
  }
});

t.test('a missing Sec-WebSocket-Version is refused (400, or 426 with the version)', async (t) => {
  const x = await exchange(req({ omit: ['sec-websocket-version'] }));
  t.ok(x.res?.status === 400 || x.res?.status === 426, `status ${x.res?.statusLine}`);
  if (x.res?.status === 426) {
    checkError(t, x, 426);
    t.equal(header(x.res, 'sec-websocket-version'), '13');
  } else checkError(t, x, 400);
});

t.test('426 with Upgrade: websocket for a plain HTTP GET (RFC 9110 §15.5.22)', async (t) => {
  for (const request of [
    'GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n',
  ]) {
    const x = await exchange(request);
    await t.test(JSON.stringify(request.split('\r\n')[2]), async (t) => {
      checkError(t, x, 426);
      t.match(x.res ? header(x.res, 'upgrade') : undefined, /^websocket$/i, 'Upgrade: websocket');
    });
  }
});

t.test('505 for HTTP/1.0', async (t) => {
  const x = await exchange(req({ version: 'HTTP/1.0' }));
  checkError(t, x, 505);
});

t.test('431 for a request head over max_header_size (8 KiB default)', async (t) => {
  const big = await exchange(req({ extra: [`X-Big: ${'a'.repeat(8300)}`] }));
  await t.test('one big header', async (t) => checkError(t, big, 431));
  const many = await exchange(
    req({ extra: Array.from({ length: 90 }, (_, i) => `X-Filler-${i}: ${'b'.repeat(90)}`) }),
  );
  await t.test('many medium headers', async (t) => checkError(t, many, 431));
});

t.test('431 as soon as the limit is passed, without waiting for the end of the head', async (t) => {
  const head = Buffer.from(
    `GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Endless: ${'c'.repeat(9000)}`,
  );
  const x = await exchange(head);
  checkError(t, x, 431);
});

t.test('431 for more header lines than max_headers (64 default)', async (t) => {
  const x = await exchange(req({ extra: Array.from({ length: 100 }, (_, i) => `X-H${i}: v`) }));
  checkError(t, x, 431);
});

t.test('heads below the limits are accepted', async (t) => {
  const key1 = randomKey();
  await t.test('7,800-byte head', async (t) =>
    checkUpgraded(
      t,
      await exchange(req({ key: key1, extra: [`X-Big: ${'a'.repeat(7600)}`] })),
      key1,
    ),
  );
  const key2 = randomKey();
  await t.test('50 header lines', async (t) =>
    checkUpgraded(
      t,
      await exchange(req({ key: key2, extra: Array.from({ length: 45 }, (_, i) => `X-H${i}: v`) })),
      key2,
    ),
  );
});

t.test('frames in the same packet as the handshake are not lost', async (t) => {
  const key = randomKey();
  const frames = Buffer.concat([
    encodeFrame({ opcode: Op.Text, payload: 'first' }),
    encodeFrame({ opcode: Op.Binary, payload: Buffer.from([1, 2, 3]) }),
    encodeFrame({ opcode: Op.Ping, payload: 'ping' }),
  ]);
  const partial = encodeFrame({ opcode: Op.Text, payload: 'split across packets' });
  const c = await RawClient.open(server.port);
  c.write(Buffer.concat([Buffer.from(req({ key })), frames, partial.subarray(0, 5)]));
  const res = await c.readHttpResponse();
  t.equal(checkUpgradeResponse(res, key), undefined, 'valid 101');
  await delay(20);
  c.write(partial.subarray(5));
  await expectEcho(t, c, Op.Text, 'first');
  await expectEcho(t, c, Op.Binary, Buffer.from([1, 2, 3]));
  const pong = await c.nextFrame();
  t.equal(pong.opcode, Op.Pong, 'pong for the pipelined ping');
  await expectEcho(t, c, Op.Text, 'split across packets');
  await expectNormalClose(t, c);
});

t.test('a handshake trickled byte by byte completes', async (t) => {
  const key = randomKey();
  await checkUpgraded(t, await exchange(req({ key }), { chop: 1, chopDelayMs: 3 }), key);
});

t.test('a handshake split at every CRLF completes', async (t) => {
  const key = randomKey();
  const c = await RawClient.open(server.port);
  for (const part of req({ key }).split(/(?<=\r\n)/)) {
    c.write(part);
    await delay(10);
  }
  const res = await c.readHttpResponse();
  await checkUpgraded(t, { res, body: Buffer.alloc(0), tcp: 'open', client: c }, key);
});

t.test('handshake timeout closes a silent or unfinished connection', async (t) => {
  for (const [name, sent] of [
    ['silent', ''],
    ['half a request', req().slice(0, 40)],
  ] as const) {
    const c = await RawClient.open(quick.port);
    const start = Date.now();
    if (sent) c.write(sent);
    const tcp = await c.waitEnd(scaled(HANDSHAKE_TIMEOUT_MS + 3000));
    const ms = Date.now() - start;
    await t.test(name, async (t) => {
      t.not(tcp, 'timeout', `closed (${tcp}) after ${ms} ms`);
      t.ok(ms >= HANDSHAKE_TIMEOUT_MS - 50, 'not before the timeout');
      t.ok(ms <= scaled(HANDSHAKE_TIMEOUT_MS + 1500), 'soon after the timeout');
      if (c.response) t.equal(c.response.status, 408, 'a response, if any, is 408');
    });
  }
});

t.test('the handshake timeout does not cut an established connection', async (t) => {
  const c = await RawClient.connect(quick.port);
  await delay(HANDSHAKE_TIMEOUT_MS * 2);
  c.send({ opcode: Op.Text, payload: 'alive' });
  await expectEcho(t, c, Op.Text, 'alive');
  await expectNormalClose(t, c);
});

t.test('the server still answers after all of the above', async (t) => {
  const key = randomKey();
  await checkUpgraded(t, await exchange(req({ key }), { port: quick.port }), key);
});

t.test('no error logged', async (t) => {
  t.same(server.errors(), []);
  t.same(quick.errors(), []);
});
