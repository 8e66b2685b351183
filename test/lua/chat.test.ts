/**
 * The chat example service (services/chat): rooms across workers, argument checks, leave on
 * disconnect, the server-time channel from its standalone service.
 */
import t from 'tap';
import path from 'node:path';

import { connect, LappsError } from '../../lib/client/index.js';
import { repoRoot, startTestServer } from '../helpers/server.js';
import { until } from '../helpers/ws.js';

const dir = path.join(repoRoot, 'services');
const services = [
  {
    name: 'chat_time',
    standalone: true,
    source: path.join(dir, 'chat-time', 'chat-time.lua'),
    preload: ['time'],
  },
  {
    name: 'chat',
    request_target: '/chat',
    protocol: 'lapps',
    instances: 2,
    source: path.join(dir, 'chat', 'chat.lua'),
    preload: ['murmur'],
    depends: ['chat_time'],
  },
];

t.test('rooms, checks and the time channel', async (t) => {
  const server = await startTestServer({ workers: 2, services });
  t.teardown(() => server.stop());
  const a = await connect(server.url('/chat'), { reconnect: false });
  const b = await connect(server.url('/chat'), { reconnect: false });
  t.teardown(() => Promise.all([a.close(), b.close()]));

  const [cid] = (await a.request('join', ['r1', 'ann'])) as [number];
  const seen: unknown[][] = [];
  a.subscribe(cid, (m) => seen.push(m));
  t.same(await b.request('join', ['r1', 'ben']), [cid], 'same room, same channel');
  t.same(await b.request('say', ['r1', 'hello']), [true]);
  await until(() => seen.length === 2, 3000, 'messages');
  t.same(seen, [
    ['join', 'ben'],
    ['say', 'ben', 'hello'],
  ]);

  for (const [method, params, code] of [
    ['join', ['r1'], -32602],
    ['join', ['', 'x'], -32602],
    ['say', ['other', 'hi'], -32602],
    ['say', ['r1', ''], -32602],
    ['nope', [], -32601],
  ] as [string, unknown[], number][]) {
    const err = await b.request(method, params).catch((e: unknown) => e);
    t.ok(
      err instanceof LappsError && err.code === code,
      `${method} ${JSON.stringify(params)}: ${code}`,
    );
  }

  const ticks: unknown[][] = [];
  a.subscribe(1, (m) => ticks.push(m), { method: 'time' });
  await until(() => ticks.length >= 1, 3000, 'server time');
  t.ok(typeof ticks[0]![0] === 'number' || typeof ticks[0]![0] === 'bigint', 'milliseconds');

  await b.close();
  await until(() => seen.some((m) => m[0] === 'leave'), 3000, 'leave');
  t.same(seen.at(-1), ['leave', 'ben'], 'a closed connection leaves its rooms');
});
