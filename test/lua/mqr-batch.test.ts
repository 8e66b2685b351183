/**
 * mqr receives take a batch of items at once (core/message-queue.h): what a receiver's
 * batch held and had not handed to Lua goes back to the front of the queue when its handle
 * (or its instance) goes; size() counts it meanwhile; and receivers waiting on an idle
 * queue cost no CPU.
 */
import path from 'node:path';

import t from 'tap';

import { repoRoot, startTestServer } from '../helpers/server.js';
import { ask, openWs } from '../helpers/ws.js';

const src = (name: string) =>
  path.join(repoRoot, 'test', 'lua', 'services', 'mqrbatch', `${name}.lua`);

t.test('items a batch took and did not hand out go back to the front, in order', async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [
      { name: 'mqrbatch', request_target: '/b', source: src('mqrbatch'), preload: ['mqr'] },
    ],
  });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/b'));
  t.equal(await ask(ws, 'fill gb 200'), 'filled');
  // recv takes a batch (up to 64) and hands out one; the batch's other items still count.
  t.equal(await ask(ws, 'takeone gb'), '1 199', 'first item, and 199 not handed out yet');
  t.equal(await ask(ws, 'size gb'), '199', 'the collected handle gave its batch back');
  const expected = Array.from({ length: 199 }, (_, i) => i + 2).join(',');
  t.equal(await ask(ws, 'drain gb'), expected, 'nothing lost, order kept');
  t.same(server.errors(), []);
  ws.close();
});

t.test('receivers waiting on an idle queue use no CPU', async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [
      { name: 'idler', standalone: true, instances: 2, source: src('idler'), preload: ['mqr'] },
    ],
  });
  t.teardown(() => server.stop());
  // Past the receivers' bounded spin (20 µs) they are suspended on their loops.
  await new Promise((r) => setTimeout(r, 300));
  const before = process.cpuUsage();
  const started = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, 1000));
  const used = process.cpuUsage(before);
  const wallUs = Number(process.hrtime.bigint() - started) / 1000;
  const cpuUs = used.user + used.system;
  // A receiver polling the queue would use a whole core (about wallUs); the whole process,
  // this test included, stays far below that.
  t.ok(
    cpuUs < wallUs * 0.2,
    `process CPU ${Math.round(cpuUs / 1000)} ms over ${Math.round(wallUs / 1000)} ms`,
  );
  t.same(server.errors(), []);
});
