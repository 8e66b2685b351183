/**
 * bcast: channels created by a service, subscriptions per connection across workers, one
 * encoded frame shared by every subscriber, subscriptions ending with their connection.
 */
import t from 'tap';
import path from 'node:path';
import type WebSocket from 'ws';

import { repoRoot, startTestServer } from '../helpers/server.js';
import { ask, nextMessage, openWs } from '../helpers/ws.js';

const room = {
  name: 'room',
  request_target: '/room',
  source: path.join(repoRoot, 'test', 'lua', 'services', 'room', 'room.lua'),
};

t.test('broadcast reaches every subscriber on every worker, once each', async (t) => {
  // Two instances on two workers: subscribers live on both.
  const server = await startTestServer({ workers: 2, services: [{ ...room, instances: 2 }] });
  t.teardown(() => server.stop());
  const clients: WebSocket[] = [];
  const workers = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const ws = await openWs(server.url('/room'));
    clients.push(ws);
    workers.add(Number((BigInt(await ask(ws, 'handle')) >> 20n) & 0xffn));
    t.equal(await ask(ws, 'join 1'), 'true nil');
  }
  t.same([...workers].sort(), [0, 1], 'subscribers on both workers');
  const outsider = await openWs(server.url('/room'));
  const got: string[] = [];
  outsider.on('message', (d) => got.push(String(d)));

  const received = clients.map((ws) => nextMessage(ws));
  clients[3]!.send('say 1 hello everyone');
  t.same(await Promise.all(received), Array(20).fill('hello everyone'), 'every subscriber got it');

  // Binary by default; wait until every subscriber has it before going on.
  const bins = clients.map(
    (ws) =>
      new Promise<boolean>((resolve) => ws.once('message', (_d, isBinary) => resolve(isBinary))),
  );
  clients[5]!.send('saybin 1 raw bytes');
  t.same(await Promise.all(bins), Array(20).fill(true), 'binary frame to every subscriber');

  // Leave: no more messages for that client.
  t.equal(await ask(clients[0]!, 'leave 1'), 'true nil');
  let leftGot = 0;
  clients[0]!.on('message', () => leftGot++);
  const after = nextMessage(clients[1]!);
  clients[2]!.send('say 1 after leave');
  t.equal(await after, 'after leave');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(leftGot, 0, 'nothing reaches a client after it left');
  t.same(got, [], 'a client that never joined gets nothing');
  for (const ws of clients) ws.close();
  outsider.close();
  t.same(server.errors(), [], 'no error in the log');
});

t.test('a subscription ends with its connection; misuse is refused with a message', async (t) => {
  const server = await startTestServer({ workers: 1, services: [{ ...room, instances: 1 }] });
  t.teardown(() => server.stop());
  const a = await openWs(server.url('/room'));
  const b = await openWs(server.url('/room'));
  const ha = await ask(a, 'handle');
  t.equal(await ask(a, 'join 1'), 'true nil');
  t.equal(await ask(b, 'join 1'), 'true nil');
  a.terminate();
  await new Promise((r) => setTimeout(r, 100));
  // Broadcasting after the drop reaches b only and touches nothing freed.
  const got = nextMessage(b);
  b.send('say 1 still here');
  t.equal(await got, 'still here');
  t.equal(
    await ask(b, `joinother 1 ${ha}`),
    'false bcast:subscribe: no such connection',
    'stale handle refused',
  );
  t.equal(await ask(b, 'create 7'), 'true nil', 'create a second channel');
  t.equal(
    await ask(b, 'misuse'),
    [
      'false bcast:send: no such channel (create it with bcast:create first)',
      'false bcast:subscribe: channel id must be a non-negative integer',
      'false bcast:subscribe: handler must be a number',
      'false bcast:send: message must be a string or a table',
      'false bcast:send: text message is not valid UTF-8 (send it as binary, opcode 2)',
      'false bcast:create: channel id must be a non-negative integer',
    ].join('|'),
  );
  // A table is CBOR-encoded once: {cid = 1, message = {"hi"}} with sorted keys.
  const obj = new Promise<Buffer>((resolve) => b.once('message', (d) => resolve(d as Buffer)));
  b.send('sayobj 1');
  t.equal(
    (await obj).toString('hex'),
    'a2' + '63636964' + '01' + '676d657373616765' + '81' + '626869',
    'OON object as CBOR',
  );
  t.match(await ask(b, 'nljson'), /^\{"a":\["x",2\],"n":7\} true$/, 'nljson global works');
  b.close();
  t.same(server.errors(), [], 'no error in the log');
});

t.test(
  'broadcasts, direct sends, subscriptions and a close in one handler keep their order',
  async (t) => {
    const server = await startTestServer({ workers: 1, services: [{ ...room, instances: 1 }] });
    t.teardown(() => server.stop());
    const a = await openWs(server.url('/room'));
    const b = await openWs(server.url('/room'));
    const hb = await ask(b, 'handle');
    t.equal(await ask(a, 'join 1'), 'true nil');
    const gotA: string[] = [];
    const gotB: string[] = [];
    a.on('message', (d) => gotA.push(String(d)));
    b.on('message', (d) => gotB.push(String(d)));
    const closed = new Promise<number>((resolve) => a.once('close', (code) => resolve(code)));
    a.send(`interleave 1 ${hb}`);
    t.equal(await closed, 1000, 'the close comes last');
    await new Promise((r) => setTimeout(r, 100));
    t.same(gotA, ['b1', 'b2', 'direct', 'b3', 'b5', 'b6'], 'in the order the handler made them');
    t.same(gotB, ['b6'], 'a subscription made after a broadcast does not get it');
    b.close();
    t.same(server.errors(), [], 'no error in the log');
  },
);

t.test(
  'connections keep their subscriptions and reassembly across the quiet release',
  async (t) => {
    // What a busy or subscribed connection uses lives in extras allocated on demand; the
    // worker frees them when it goes quiet, for connections that hold nothing in them
    // (docs/memory.md). A subscriber keeps its extras (its channel list), a connection that
    // only reassembled a message loses them and gets new ones for the next.
    const server = await startTestServer({ workers: 1, services: [{ ...room, instances: 1 }] });
    t.teardown(() => server.stop());
    const a = await openWs(server.url('/room'));
    const b = await openWs(server.url('/room'));
    t.equal(await ask(a, 'join 1'), 'true nil');
    const fragmented = (ws: WebSocket, text: string): void => {
      const half = text.length >> 1;
      ws.send(text.slice(0, half), { fin: false });
      ws.send(text.slice(half), { fin: true });
    };
    let got = nextMessage(a);
    fragmented(b, 'say 1 before the quiet');
    t.equal(await got, 'before the quiet', 'a fragmented command, broadcast to the subscriber');
    // The memory tick comes a second after the last event; the worker is quiet by then.
    await new Promise((r) => setTimeout(r, 2500));
    got = nextMessage(a);
    fragmented(b, 'say 1 after the quiet');
    t.equal(await got, 'after the quiet', 'the subscription and the reassembly still work');
    t.equal(await ask(a, 'leave 1'), 'true nil');
    await new Promise((r) => setTimeout(r, 2500));
    t.equal(await ask(a, 'join 1'), 'true nil', 'subscribes again after its extras went');
    got = nextMessage(a);
    b.send('say 1 again');
    t.equal(await got, 'again');
    a.close();
    b.close();
    t.same(server.errors(), [], 'no error in the log');
  },
);

t.test('a broadcast the socket takes only in part is finished in order', async (t) => {
  // One publish in a turn is written to each subscriber at once, without queueing it; what
  // a full socket does not take is queued from where it stopped, ahead of what follows.
  const server = await startTestServer({ workers: 1, services: [{ ...room, instances: 1 }] });
  t.teardown(() => server.stop());
  const a = await openWs(server.url('/room'));
  const b = await openWs(server.url('/room'));
  t.equal(await ask(a, 'join 1'), 'true nil');
  const size = 4 * 1024 * 1024;
  const got: Buffer[] = [];
  const all = new Promise<void>((resolve) =>
    a.on('message', (d: Buffer) => {
      got.push(d);
      if (got.length === 2) resolve();
    }),
  );
  const sock = (a as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  sock.pause();
  b.send(`burst 1 1 ${size}`);
  await new Promise((r) => setTimeout(r, 300));
  b.send(`burst 1 2 ${size}`);
  await new Promise((r) => setTimeout(r, 300));
  sock.resume();
  await all;
  t.same(
    got.map((d) => [d.length, d[0], d.subarray(1).every((x) => x === 0x62)]),
    [
      [size, 1, true],
      [size, 1, true],
    ],
    'both whole, in order',
  );
  const third = await new Promise<Buffer>((resolve) => a.once('message', resolve));
  t.equal(third[0], 2, 'the second publish of the second burst after it');
  a.close();
  b.close();
  t.same(server.errors(), [], 'no error in the log');
});

t.test('a burst of small publishes is joined and arrives whole and in order', async (t) => {
  // Consecutive publishes to one channel are joined into one buffer per turn (up to 256
  // KiB, then another): 600 x 1 KiB is more than two of them.
  const server = await startTestServer({ workers: 1, services: [{ ...room, instances: 1 }] });
  t.teardown(() => server.stop());
  const subs = await Promise.all([0, 1, 2].map(() => openWs(server.url('/room'))));
  for (const ws of subs) t.equal(await ask(ws, 'join 1'), 'true nil');
  const count = 600;
  const size = 1024;
  const got: number[][] = subs.map(() => []);
  const bad: string[] = [];
  const done = Promise.all(
    subs.map(
      (ws, i) =>
        new Promise<void>((resolve) =>
          ws.on('message', (d: Buffer) => {
            if (d.length !== size || !d.subarray(1).every((x) => x === 0x62)) {
              bad.push(`subscriber ${i}: ${d.length} bytes`);
            }
            got[i]!.push(d[0]!);
            if (got[i]!.length === count) resolve();
          }),
        ),
    ),
  );
  subs[1]!.send(`burst 1 ${count} ${size}`);
  await done;
  const want = Array.from({ length: count }, (_, i) => (i + 1) % 256);
  got.forEach((g, i) => t.same(g, want, `subscriber ${i}: all ${count}, in order`));
  t.same(bad, [], 'every message whole');
  for (const ws of subs) ws.close();
  t.same(server.errors(), [], 'no error in the log');
});
