/**
 * The LAppS protocol on a real server: classification, JSON-RPC error answers for every
 * kind of bad input (and the close policy for repeated garbage), outbound checks of
 * responses and OONs, request ids (out-of-order answers; ids carried in order without
 * them), broadcasts to OON channels.
 */
import t from 'tap';
import path from 'node:path';
import { Decoder, Encoder } from 'cbor-x';
import WebSocket from 'ws';

import { repoRoot, startTestServer } from '../helpers/server.js';
import { closed, openWs, until } from '../helpers/ws.js';

const source = path.join(repoRoot, 'test', 'lua', 'services', 'lapps', 'echo_lapps.lua');
const service = { name: 'echo_lapps', request_target: '/lapps', protocol: 'lapps', source };

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });
type Msg = Record<string, unknown>;

/** Collects decoded messages of a connection. */
function inbox(ws: WebSocket): Msg[] {
  const got: Msg[] = [];
  ws.on('message', (data: Buffer, isBinary) => {
    got.push(isBinary ? (decoder.decode(data) as Msg) : { text: String(data) });
  });
  return got;
}

function send(ws: WebSocket, value: unknown): void {
  ws.send(encoder.encode(value));
}

async function call(ws: WebSocket, got: Msg[], value: unknown): Promise<Msg> {
  const before = got.length;
  send(ws, value);
  await until(() => got.length > before, 5000, 'answer');
  return got[before]!;
}

t.test('requests, notifications and responses in LAppS form', async (t) => {
  const server = await startTestServer({ workers: 2, services: [{ ...service, instances: 2 }] });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/lapps'));
  const got = inbox(ws);
  t.same(await call(ws, got, { lapps: 1, method: 'echo', params: [1, 'two', { three: 3 }] }), {
    cid: 0,
    status: 1,
    result: [1, 'two', { three: 3 }],
  });
  t.same(await call(ws, got, { lapps: 1, method: 'echo' }), { cid: 0, status: 1, result: [] });
  t.same(
    await call(ws, got, { lapps: 1, method: 'types', params: [9007199254740993n, {}] }),
    { cid: 0, status: 1, result: ['array', true, 'object'] },
    '64-bit integers stay integers; maps and arrays keep their kind',
  );
  t.same(await call(ws, got, { lapps: 1, method: 'nope' }), {
    cid: 0,
    status: 0,
    error: { code: -32601, message: 'no such method: nope' },
  });
  t.same(await call(ws, got, { lapps: 1, method: 'oon' }), { cid: 7, message: ['pushed'] });
  await until(() => got.length >= 6, 3000, 'response after the OON');
  t.same(got[5], { cid: 0, status: 1, result: ['after oon'] });
  t.same(server.errors(), []);
  ws.close();
});

t.test('bad input is answered on channel 0 and never reaches the service', async (t) => {
  const server = await startTestServer({ workers: 1, services: [service] });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/lapps'));
  const got = inbox(ws);
  const cases: [string, Buffer | unknown, number, RegExp][] = [
    ['invalid CBOR', Buffer.from([0xbf, 0x61]), -32700, /^parse error: /],
    ['trailing bytes', Buffer.from([0xa0, 0x00]), -32700, /^parse error: /],
    ['not a map', [1, 2], -32600, /a message must be a CBOR map/],
    ['no lapps', { method: 'echo' }, -32600, /lapps must be 1/],
    ['wrong lapps', { lapps: 2, method: 'echo' }, -32600, /lapps must be 1/],
    ['no method', { lapps: 1 }, -32600, /method must be a non-empty string/],
    ['dotted method', { lapps: 1, method: 'a.b' }, -32600, /without '\.'/],
    ['underscore method', { lapps: 1, method: '_x' }, -32600, /does not start with '_'/],
    ['params not an array', { lapps: 1, method: 'echo', params: { a: 1 } }, -32600, /params/],
    ['bad cid', { lapps: 1, method: 'x', cid: -1 }, -32600, /cid must be/],
    ['bad id', { lapps: 1, method: 'x', id: [1] }, -32600, /id must be an integer or a string/],
    ['id on a notification', { lapps: 1, method: 'x', cid: 1, id: 3 }, -32600, /takes no id/],
  ];
  for (const [what, input, code, message] of cases) {
    // A fresh connection each: more than ten bad messages on one close it (tested below).
    const c = await openWs(server.url('/lapps'));
    const answers = inbox(c);
    c.send(Buffer.isBuffer(input) ? input : encoder.encode(input));
    await until(() => answers.length > 0, 3000, what);
    c.close();
    const answer = answers[0]!;
    t.equal(answer.cid, 0, `${what}: channel 0`);
    t.equal(answer.status, 0, `${what}: status 0`);
    const error = answer.error as Msg;
    t.equal(error.code, code, `${what}: code`);
    t.match(String(error.message), message, `${what}: message`);
  }
  t.same(
    await call(ws, got, { lapps: 1, method: 'x', id: 'abc', params: 5 }),
    {
      cid: 0,
      status: 0,
      error: { code: -32600, message: 'invalid request: params must be an array' },
      id: 'abc',
    },
    'the error carries the request id when it could be read',
  );
  t.same(
    server.events.filter((e) => e.level === 'error'),
    [],
    'the service saw none of it',
  );
  ws.close();
});

t.test('repeated garbage closes that client only; a text frame gets 1003', async (t) => {
  const server = await startTestServer({ workers: 1, services: [service] });
  t.teardown(() => server.stop());
  const good = await openWs(server.url('/lapps'));
  const goodGot = inbox(good);
  const bad = await openWs(server.url('/lapps'));
  const done = closed(bad);
  for (let i = 0; i < 11; i++) bad.send(Buffer.from([0xff]));
  const c = await done;
  t.equal(c.code, 1008, 'closed with 1008 after more than 10 invalid messages');
  t.equal(c.reason, 'too many invalid messages');
  const texter = await openWs(server.url('/lapps'));
  const textDone = closed(texter);
  texter.send('{"lapps":1}');
  t.equal((await textDone).code, 1003, 'text frame: 1003');
  t.same(await call(good, goodGot, { lapps: 1, method: 'echo', params: ['still'] }), {
    cid: 0,
    status: 1,
    result: ['still'],
  });
  good.close();
});

t.test('outbound checks: misuse of ws:send and bcast:send is reported', async (t) => {
  const server = await startTestServer({ workers: 1, services: [service] });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/lapps'));
  const got = inbox(ws);
  const answer = await call(ws, got, { lapps: 1, method: 'misuse' });
  const results = answer.result as string[];
  t.match(results, [
    /^false:ws:send: a response \(cid 0\) needs status 1/,
    /^false:ws:send: a response with status 1 needs result/,
    /^false:ws:send: a response with status 0 needs error = /,
    /^false:ws:send: an OON \(cid > 0\) carries message, not status/,
    /^false:ws:send: an OON needs message = /,
    /^false:ws:send: cid must be a non-negative integer/,
    /^false:ws:send: opcode must be/,
    /^false:bcast:send: broadcasts carry OONs/,
    /^false:bcast:send: channel 0 carries responses/,
  ]);
  send(ws, { lapps: 1, method: 'twice' });
  await until(
    () => server.events.some((e) => e.message.startsWith('second response:')),
    3000,
    'log',
  );
  t.ok(
    server.events.some(
      (e) =>
        e.message ===
        'second response: false ws:send: no open request to answer (cid 0 is for responses)',
    ),
    'a second response to one request is refused',
  );
  ws.close();
});

t.test('request ids: out-of-order answers, ids kept without explicit ones', async (t) => {
  const server = await startTestServer({ workers: 1, services: [service] });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/lapps'));
  const got = inbox(ws);
  send(ws, { lapps: 1, method: 'later', params: [0.3, 'slow'], id: 1 });
  send(ws, { lapps: 1, method: 'later', params: [0.05, 'fast'], id: 'two' });
  await until(() => got.length === 2, 3000, 'two answers');
  t.same(got, [
    { cid: 0, status: 1, result: ['fast'], id: 'two' },
    { cid: 0, status: 1, result: ['slow'], id: 1 },
  ]);
  got.length = 0;
  // A response without an id answers the request its handler was given, not an older one
  // still waiting for an answer with an explicit id.
  send(ws, { lapps: 1, method: 'later', params: [0.2, 'late'], id: 7 });
  send(ws, { lapps: 1, method: 'echo', params: ['now'], id: 8 });
  await until(() => got.length === 2, 3000, 'both answers');
  t.same(got, [
    { cid: 0, status: 1, result: ['now'], id: 8 },
    { cid: 0, status: 1, result: ['late'], id: 7 },
  ]);
  got.length = 0;
  // The service sets no id: each response gets the id of the request it answers.
  for (let i = 0; i < 3; i++) send(ws, { lapps: 1, method: 'echo', params: [i], id: 100 + i });
  send(ws, { lapps: 1, method: 'echo', params: ['no id'] });
  await until(() => got.length === 4, 3000, 'four answers');
  t.same(
    got.map((m) => m.id),
    [100, 101, 102, undefined],
  );
  ws.close();
});

t.test('10,000 requests with ids in flight on one connection', async (t) => {
  const server = await startTestServer({ workers: 1, services: [service] });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/lapps'));
  const results = new Map<number, unknown>();
  ws.on('message', (data: Buffer) => {
    const m = decoder.decode(data) as Msg;
    results.set(Number(m.id), (m.result as unknown[])[0]);
  });
  const n = 10_000;
  for (let i = 0; i < n; i++) send(ws, { lapps: 1, method: 'echo', params: [i * 3], id: i });
  await until(() => results.size === n, 20000, 'all answers');
  let right = 0;
  for (let i = 0; i < n; i++) if (results.get(i) === i * 3) right++;
  t.equal(right, n, 'every request got its own result');
  ws.close();
});

t.test('broadcast OONs reach 1,000 subscribers across workers', async (t) => {
  const server = await startTestServer({ workers: 2, services: [{ ...service, instances: 2 }] });
  t.teardown(() => server.stop());
  const clients: WebSocket[] = [];
  const counts: number[] = new Array<number>(1000).fill(0);
  const subscribeOne = async (idx: number): Promise<void> => {
    const ws = await openWs(server.url('/lapps'));
    const got = inbox(ws);
    await call(ws, got, { lapps: 1, method: 'subscribe' });
    ws.on('message', (data: Buffer) => {
      const m = decoder.decode(data) as Msg;
      if (m.cid === 5) counts[idx]!++;
    });
    clients[idx] = ws;
  };
  for (let batch = 0; batch < 1000; batch += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, k) => subscribeOne(batch + k)));
  }
  send(clients[0]!, { lapps: 1, method: 'publish', cid: 5, params: ['news'] });
  await until(() => counts.every((c) => c === 1), 10000, 'every subscriber');
  t.equal(counts.filter((c) => c === 1).length, 1000, 'each got the OON once');
  for (const ws of clients) ws.close();
});
