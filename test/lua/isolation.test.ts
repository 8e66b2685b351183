/**
 * Isolation between services: a handler is a small sequential number, so a service can
 * guess its neighbours' handlers. ws:send, ws:close, ws:send(handler, object) and
 * bcast:subscribe / bcast:unsubscribe must refuse a connection that is not routed to the
 * calling service, on the caller's worker and on any other (synchronously), while the
 * service's own connections on other workers stay reachable. A standalone service has no
 * connections: it cannot subscribe anyone.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { Decoder, Encoder } from 'cbor-x';
import type WebSocket from 'ws';

import { repoRoot, startTestServer } from '../helpers/server.js';
import { ask, openWs, until } from '../helpers/ws.js';

const dir = path.join(repoRoot, 'test', 'lua', 'services', 'isolation');
const src = (name: string): string => path.join(dir, `${name}.lua`);
const victim = { name: 'victim', request_target: '/victim', source: src('victim') };
const prober = {
  name: 'prober',
  request_target: '/probe',
  source: src('prober'),
  sandbox: true,
  preload: ['mqr'],
};
const lappsProber = {
  name: 'lapps_prober',
  request_target: '/lprobe',
  protocol: 'lapps',
  source: src('lapps_prober'),
  sandbox: true,
};
const sprober = { name: 'sprober', standalone: true, source: src('sprober'), preload: ['mqr'] };

const refused = [
  'false:no such connection',
  'false:bcast:subscribe: no such connection',
  'false:bcast:unsubscribe: no such connection',
  'false:no such connection',
].join(',');

/** A client that records what it receives and how it ended. */
interface Client {
  ws: WebSocket;
  handle: number;
  got: string[];
  closedWith?: number;
}

async function client(url: string): Promise<Client> {
  const ws = await openWs(url);
  const handle = Number(await ask(ws, 'handle'));
  const c: Client = { ws, handle, got: [] };
  ws.on('message', (d) => c.got.push(String(d)));
  ws.on('close', (code) => (c.closedWith = code));
  return c;
}

const workerOf = (handle: number): number => Math.floor(handle / 2 ** 20) % 256;

/** Every victim is still open, answers, and got nothing but its own answers. */
async function victimsUntouched(t: Test, victims: Client[]): Promise<void> {
  await new Promise((r) => setTimeout(r, 200));
  for (const v of victims) {
    t.equal(v.closedWith, undefined, `victim ${v.handle} still open`);
    if (v.closedWith !== undefined) continue;
    t.equal(await ask(v.ws, 'still here'), 'still here', `victim ${v.handle} answers`);
    t.same(v.got, ['still here'], `victim ${v.handle} received nothing else`);
  }
}

t.test('a service cannot reach connections of another service on its worker', async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [
      { ...victim, instances: 1 },
      { ...prober, instances: 1 },
      { ...lappsProber, instances: 1 },
      sprober,
    ],
  });
  t.teardown(() => server.stop());
  // Handlers are handed out in order: the prober's neighbours are victims.
  const victims = [
    await client(server.url('/victim')),
    await client(server.url('/victim')),
    await client(server.url('/victim')),
  ];
  const p = await client(server.url('/probe'));
  victims.push(await client(server.url('/victim')), await client(server.url('/victim')));
  const own = await client(server.url('/probe'));

  // ±1..9 around its own handler, and the victims' real ones.
  const targets = new Set<number>(victims.map((v) => v.handle));
  for (let d = 1; d <= 9; d++) {
    targets.add(p.handle + d);
    if (p.handle - d > 0) targets.add(p.handle - d);
  }
  targets.delete(own.handle);
  const list = [...targets];
  const results = (await ask(p.ws, `probe ${list.join(' ')}`)).split(';');
  t.equal(results.length, list.length);
  results.forEach((r, i) => t.equal(r, refused, `handler ${list[i]} refused`));

  // The LAppS object form of ws:send too (an OON and a response).
  const lp = await openWs(server.url('/lprobe'));
  const encoder = new Encoder({ useRecords: false, mapsAsObjects: true });
  const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });
  const answer = new Promise<Record<string, unknown>>((resolve) =>
    lp.once('message', (d: Buffer) => resolve(decoder.decode(d) as Record<string, unknown>)),
  );
  lp.send(encoder.encode({ lapps: 1, method: 'probe', params: victims.map((v) => v.handle) }));
  t.same(
    (await answer).result,
    victims.map(() => 'false:no such connection,false:no such connection'),
    'ws:send(handler, object) refused',
  );

  // A standalone service handed a victim's handler through a queue cannot subscribe it.
  t.equal(
    await ask(p.ws, `standalone ${victims[0]!.handle}`),
    'false:bcast:subscribe: no such connection,false:bcast:unsubscribe: no such connection',
    'standalone subscribe refused',
  );

  await victimsUntouched(t, victims);
  // The service's own connections stay reachable.
  t.equal(await ask(p.ws, `send ${own.handle} hello own`), 'true:nil');
  await until(() => own.got.includes('hello own'), 3000, 'own connection reached');
  lp.close();
  for (const c of [p, own, ...victims]) c.ws.close();
  t.same(server.errors(), [], 'no error in the log');
});

t.test('refused on another worker too, at once; own connections there are reachable', async (t) => {
  const server = await startTestServer({
    workers: 2,
    services: [
      { ...victim, instances: 2 },
      { ...prober, instances: 2 },
    ],
  });
  t.teardown(() => server.stop());
  // Connections land on the worker that accepted them (each has an instance of both).
  const victims: Client[] = [];
  const probers: Client[] = [];
  for (let i = 0; i < 40; i++) {
    const byWorker = (list: Client[], w: number): boolean =>
      list.some((c) => workerOf(c.handle) === w);
    if ([0, 1].every((w) => byWorker(victims, w) && byWorker(probers, w))) break;
    victims.push(await client(server.url('/victim')));
    probers.push(await client(server.url('/probe')));
  }
  const p0 = probers.find((c) => workerOf(c.handle) === 0);
  const p1 = probers.find((c) => workerOf(c.handle) === 1);
  t.ok(p0 && p1, 'a prober connection on each worker');
  if (!p0 || !p1) return;
  const far = victims.filter((v) => workerOf(v.handle) === 1);
  t.ok(far.length > 0, 'victims on worker 1');
  const results = (await ask(p0.ws, `probe ${far.map((v) => v.handle).join(' ')}`)).split(';');
  t.same(
    results,
    far.map(() => refused),
    'handlers of another service on another worker refused',
  );
  await victimsUntouched(t, victims);

  t.equal(await ask(p0.ws, `send ${p1.handle} across`), 'true:nil', 'same service, other worker');
  await until(() => p1.got.includes('across'), 3000, 'delivered across workers');
  for (const c of [...probers, ...victims]) c.ws.close();
  t.same(server.errors(), [], 'no error in the log');
});
