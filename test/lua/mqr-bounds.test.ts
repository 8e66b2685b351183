/**
 * mqr queues are bounded in bytes as well as in items (limits.mqr_max_bytes, or a smaller
 * bound per queue): a post over the bound waits like a post on a full queue, or fails where
 * nothing may wait, and an item that could never fit is refused at once.
 */
import path from 'node:path';

import t from 'tap';
import type WebSocket from 'ws';

import { repoRoot, startTestServer } from '../helpers/server.js';
import { ask, openWs, until } from '../helpers/ws.js';

const MiB = 1024 * 1024;
const service = {
  name: 'mqrbound',
  request_target: '/q',
  source: path.join(repoRoot, 'test', 'lua', 'services', 'mqrbound', 'mqrbound.lua'),
  preload: ['mqr'],
  // The queue's bytes are server memory: the poster's own limit does not bound them.
  memory_limit: 32 * MiB,
};

function collect(ws: WebSocket): string[] {
  const got: string[] = [];
  ws.on('message', (d) => got.push(String(d)));
  return got;
}

t.test('a post over the byte bound waits for room, like a full queue', async (t) => {
  const server = await startTestServer({
    workers: 1,
    limits: { mqr_max_bytes: MiB },
    services: [service],
  });
  t.teardown(() => server.stop());
  const producer = await openWs(server.url('/q'));
  const consumer = await openWs(server.url('/q'));
  const got = collect(producer);
  // 30 items of 100 KB (100,037 bytes each as CBOR + 32): ten fit in 1 MiB.
  producer.send('fill jobs 30 100000');
  await new Promise((r) => setTimeout(r, 200));
  t.same(got, [], 'the producer waits');
  t.equal(
    await ask(consumer, 'size jobs'),
    '10',
    'ten items: the byte bound, not the 100000 items',
  );
  let taken = 0;
  for (let i = 0; i < 10 && got.length === 0; i++) {
    taken += Number(await ask(consumer, 'drain jobs'));
    await new Promise((r) => setTimeout(r, 50));
  }
  await until(() => got.length === 1, 5000, 'the producer finishes');
  t.same(got, ['posted 30'], 'every post went in once there was room');
  taken += Number(await ask(consumer, 'drain jobs'));
  t.equal(taken, 30, 'nothing lost');
  t.same(server.errors(), []);
  producer.close();
  consumer.close();
});

t.test('where nothing may wait, a post over the bytes fails; too big is refused', async (t) => {
  const server = await startTestServer({
    workers: 1,
    limits: { mqr_max_bytes: MiB },
    services: [service],
  });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/q'));
  t.equal(
    await ask(ws, 'start'),
    "3 mqr: queue 'bounded-start' is full (1000 items, 4096 bytes at most)",
    'onStart: three 1000-byte items fit in 4096 bytes',
  );
  t.equal(
    await ask(ws, 'big bounded-start 5000'),
    "false mqr: item of 5003 bytes is larger than queue 'bounded-start' takes (4096 bytes)",
    'an item larger than the bound fails at once, even where it could wait',
  );
  t.equal(
    await ask(ws, `big clamped ${MiB}`),
    "false mqr: item of 1048581 bytes is larger than queue 'clamped' takes (1048576 bytes)",
    'a bound asked above limits.mqr_max_bytes is the server bound',
  );
  t.same(server.errors(), []);
  ws.close();
});
