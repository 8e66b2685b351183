/**
 * The Lua service runtime: coroutines that suspend without blocking the worker (lapps.sleep,
 * spawn, timers, mqr, nap), per-connection message order while a handler waits, the safety
 * limits (memory, runaway handlers with the JIT on, max_failures, sandbox), and standalone
 * services (init / run / must_stop, bcast from their threads, bounded queues, a run() that
 * ignores must_stop()).
 */
import t from 'tap';
import path from 'node:path';
import type WebSocket from 'ws';

import { repoRoot, startTestServer, type TestServer } from '../helpers/server.js';
import { timeScale } from '../helpers/raw-client.js';
import { ask, closed, nextMessage, openWs, until } from '../helpers/ws.js';

const dir = path.join(repoRoot, 'test', 'lua', 'services', 'runtime');
const src = (name: string): string => path.join(dir, `${name}.lua`);
const waiter = {
  name: 'waiter',
  request_target: '/w',
  source: src('waiter'),
  preload: ['nap', 'mqr'],
};

function messages(ws: WebSocket): string[] {
  const got: string[] = [];
  ws.on('message', (data) => got.push(String(data)));
  return got;
}

function logged(server: TestServer, part: string): boolean {
  return server.events.some((e) => e.message.includes(part));
}

t.test('a handler suspended in lapps.sleep does not block the worker', async (t) => {
  const server = await startTestServer({ workers: 1, services: [{ ...waiter, instances: 1 }] });
  t.teardown(() => server.stop());
  const a = await openWs(server.url('/w'));
  const b = await openWs(server.url('/w'));
  const gotA = messages(a);
  const nap = (0.3 * timeScale).toFixed(1);
  a.send(`sleep ${nap}`);
  // Later messages of the same connection wait for the suspended handler, in order.
  a.send('first after');
  a.send('second after');
  // Another connection on the same worker and instance is served meanwhile.
  const started = Date.now();
  t.equal(await ask(b, 'meanwhile'), 'meanwhile');
  t.ok(Date.now() - started < 250 * timeScale, 'answered while the other handler sleeps');
  t.same(gotA, [], 'nothing for the sleeping connection yet');
  await until(() => gotA.length === 3, 3000, 'three answers');
  t.same(gotA, [`slept ${nap}`, 'first after', 'second after'], 'order kept');
  t.equal(await ask(a, 'again'), 'again', 'reading resumed');
  t.same(server.errors(), []);
  a.close();
  b.close();
});

t.test('a suspended handler does not make its connection idle', async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [{ ...waiter, instances: 1 }],
    limits: { idle_timeout_ms: 300, ping_interval_ms: 0 },
  });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/w'));
  t.equal(await ask(ws, 'sleep 0.8'), 'slept 0.8', 'not closed as idle while the handler waits');
  t.equal(await ask(ws, 'badyield'), 'false true', 'a wait that could not start never fires');
  ws.close();
});

t.test('spawn, timers, every and cancel', async (t) => {
  const server = await startTestServer({ workers: 1, services: [{ ...waiter, instances: 1 }] });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/w'));
  const got = messages(ws);
  ws.send('spawn');
  await until(() => got.length === 2, 3000, 'spawn answers');
  t.same(got, ['spawning', 'spawned'], 'spawned coroutine ran after the handler, and slept');
  got.length = 0;
  ws.send('timer');
  await until(() => got.length === 1, 3000, 'timer');
  t.same(got, ['timer fired']);
  got.length = 0;
  ws.send('cancel');
  await until(() => got.length === 1, 3000, 'cancel report');
  t.same(got, ['cancel true false'], 'a cancelled timer never fires; a second cancel says so');
  got.length = 0;
  ws.send('every');
  await until(() => got.length === 3, 3000, 'ticks');
  await new Promise((r) => setTimeout(r, 100));
  t.same(got, ['tick 1', 'tick 2', 'tick 3'], 'every repeats until cancelled');
  t.equal(await ask(ws, 'nap'), 'napped', 'nap suspends in a reactive service');
  t.equal(await ask(ws, 'now'), 'clock ok');
  t.same(server.errors(), []);
  ws.close();
});

t.test('suspending where it is not allowed is a contained error', async (t) => {
  const server = await startTestServer({ workers: 1, services: [{ ...waiter, instances: 1 }] });
  t.teardown(() => server.stop());
  const bystander = await openWs(server.url('/w'));
  for (const cmd of ['yield', 'ownco']) {
    const ws = await openWs(server.url('/w'));
    const done = closed(ws);
    ws.send(cmd);
    t.equal(await ask(ws, 'next'), 'next', `${cmd}: the connection goes on`);
    ws.send(cmd);
    ws.send(cmd);
    t.equal((await done).code, 1011, `${cmd}: 1011 after the third error`);
    t.equal(await ask(bystander, `after ${cmd}`), `after ${cmd}`);
  }
  t.ok(
    server.errors().some((m) => m.includes('coroutine.yield() in a handler')),
    'stray yield named',
  );
  t.ok(
    server.errors().some((m) => m.includes('lapps.sleep: cannot suspend here')),
    'suspension inside a coroutine of the service named',
  );
  bystander.close();
});

t.test('mqr: recv suspends until a post; values and integers survive', async (t) => {
  const server = await startTestServer({ workers: 2, services: [{ ...waiter, instances: 2 }] });
  t.teardown(() => server.stop());
  const receiver = await openWs(server.url('/w'));
  const sender = await openWs(server.url('/w'));
  t.equal(await ask(sender, 'try'), 'none', 'try_recv on an empty queue');
  const got = messages(receiver);
  receiver.send('recv');
  await new Promise((r) => setTimeout(r, 100));
  t.same(got, [], 'recv waits');
  t.equal(await ask(sender, 'post hello'), 'posted');
  await until(() => got.length === 1, 3000, 'received');
  t.same(got, ['got hello integer']);
  // A full queue makes the poster wait until a consumer makes room.
  const full = await openWs(server.url('/w'));
  const fullGot = messages(full);
  full.send('qinfo');
  await new Promise((r) => setTimeout(r, 100));
  t.same(fullGot, [], 'post on a full queue waits');
  // (The poster may run on the other worker: it can refill the queue at once.)
  t.equal(await ask(sender, 'qdrain'), '1', 'a consumer takes one');
  await until(() => fullGot.length === 1, 3000, 'post completed');
  t.same(fullGot, ['small 2 true true true nil'], 'name, size, and the third post went in');
  full.close();
  t.equal(await ask(sender, 'post later'), 'posted');
  t.equal(await ask(sender, 'try'), 'later', 'try_recv takes a waiting item');
  t.same(server.errors(), []);
  receiver.close();
  sender.close();
});

t.test(
  'an instance that allocates without bound hits its memory limit, not the server',
  async (t) => {
    const server = await startTestServer({
      workers: 1,
      services: [{ ...waiter, instances: 1, memory_limit: 32 * 1024 * 1024 }],
    });
    t.teardown(() => server.stop());
    const bystander = await openWs(server.url('/w'));
    const hog = await openWs(server.url('/w'));
    hog.send('hog');
    t.equal(await ask(hog, 'after'), 'after', 'the error costs the hog that message');
    t.equal(await ask(bystander, 'still here'), 'still here', 'the instance keeps serving');
    t.ok(
      server.errors().some((m) => m.includes('memory limit reached (33554432 bytes')),
      'the error names the limit',
    );
    bystander.close();
  },
);

t.test('a runaway handler (JIT-compiled loop) is stopped and its instance rebuilt', async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [
      { ...waiter, instances: 1, handler_timeout_ms: 200 },
      {
        name: 'echo',
        request_target: '/echo',
        source: path.join(repoRoot, 'services', 'echo', 'echo.lua'),
        instances: 1,
      },
    ],
  });
  t.teardown(() => server.stop());
  const other = await openWs(server.url('/echo'));
  for (const cmd of ['spin', 'count']) {
    const ws = await openWs(server.url('/w'));
    const peer = await openWs(server.url('/w'));
    const done = closed(ws, 10000);
    const peerDone = closed(peer, 10000);
    ws.send(cmd);
    t.equal((await done).code, 1011, `${cmd}: the runaway connection gets 1011`);
    const p = await peerDone;
    t.equal(p.code, 1011, `${cmd}: connections of the rebuilt instance are closed`);
    t.equal(p.reason, 'service restarted');
    // The same worker serves the other service, and the rebuilt instance serves again.
    t.equal(await ask(other, `echo after ${cmd}`), `echo after ${cmd}`);
    const again = await openWs(server.url('/w'));
    t.equal(await ask(again, 'handled'), '1', `${cmd}: a fresh Lua state`);
    again.close();
  }
  t.ok(logged(server, 'stopped after running for more than 200 ms'), 'reported');
  other.close();
});

t.test('after a memory-limit error the next message is served normally', async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [{ ...waiter, instances: 1, memory_limit: 32 * 1024 * 1024 }],
  });
  t.teardown(() => server.stop());
  // Garbage: the failed handler's, kept alive by compiled traces until they are flushed.
  const a = await openWs(server.url('/w'));
  a.send('wraphog');
  await until(() => logged(server, 'memory limit reached'), 5000, 'the error');
  const b = await openWs(server.url('/w'));
  t.equal(await ask(b, 'handled'), '2', 'the next message, same state');
  // A state the service keeps full: replaced at once.
  const keeper = await openWs(server.url('/w'));
  const bDone = closed(b, 10000);
  const keeperDone = closed(keeper, 10000);
  keeper.send('keep');
  t.same(await keeperDone, { code: 1011, reason: 'service restarted' }, 'fresh state at once');
  t.equal((await bDone).reason, 'service restarted', 'for every connection of the instance');
  t.ok(logged(server, 'bytes still in use after a full garbage collection'), 'the log says why');
  const c = await openWs(server.url('/w'));
  t.equal(await ask(c, 'handled'), '1', 'the next message: a fresh state');
  a.close();
  c.close();
});

t.test("one client's failing messages close its connection, not the instance", async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [{ ...waiter, instances: 1, max_failures: 3 }],
  });
  t.teardown(() => server.stop());
  const bystander = await openWs(server.url('/w'));
  t.equal(await ask(bystander, 'handled'), '1');
  // Way over max_failures, from one client reconnecting.
  for (let round = 0; round < 5; round++) {
    const ws = await openWs(server.url('/w'));
    const done = closed(ws);
    ws.send('boom');
    t.equal(await ask(ws, 'between'), 'between', 'a failed message costs only itself');
    ws.send('boom');
    ws.send('boom');
    t.same(await done, { code: 1011, reason: 'internal error' }, 'closed at its third error');
  }
  // 1 + 5 rounds of 4 messages + this one: the same Lua state all along.
  t.equal(await ask(bystander, 'handled'), '22', 'the others are served by the same state');
  t.notOk(logged(server, 'restarting the instance'), 'never recycled');
  bystander.close();
});

t.test('an instance that keeps failing is recycled (max_failures)', async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [{ ...waiter, instances: 1, max_failures: 3 }],
  });
  t.teardown(() => server.stop());
  const counter = await openWs(server.url('/w'));
  t.equal(await ask(counter, 'handled'), '1');
  const counterDone = closed(counter);
  // Errors of the instance's own: its timers fail.
  const ws = await openWs(server.url('/w'));
  for (let i = 0; i < 3; i++) t.equal(await ask(ws, 'timerboom'), 'armed');
  t.equal((await counterDone).reason, 'service restarted');
  await until(() => logged(server, '3 errors within a minute (max_failures 3)'), 3000, 'log');
  const fresh = await openWs(server.url('/w'));
  t.equal(await ask(fresh, 'handled'), '1', 'fresh state');
  fresh.close();
});

t.test('sandbox removes io, os.execute, ffi, debug and bytecode loading', async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [
      { name: 'sandboxed', request_target: '/s', source: src('sandboxed'), sandbox: true },
      { name: 'open', request_target: '/o', source: src('sandboxed'), sandbox: false },
    ],
  });
  t.teardown(() => server.stop());
  const s = await openWs(server.url('/s'));
  const report = await ask(s, 'probe');
  for (const want of [
    'io=nil',
    'execute=nil',
    'debug=nil',
    'ffi=false',
    'loadlib=nil',
    'bytecode=nil:bytecode loading is disabled (sandbox)',
    'bytecode_reader=nil',
    'text=2',
    'helper=loaded',
    'os.time=function',
    'exit=false',
  ]) {
    t.ok(report.includes(want), want);
  }
  const o = await openWs(server.url('/o'));
  const open = await ask(o, 'probe');
  t.ok(open.includes('io=table') && open.includes('ffi=true'), 'without the option all is there');
  t.ok(open.includes('exit=false'), 'os.exit never stops the server');
  s.close();
  o.close();
});

t.test('standalone services: init, run with nap and bcast, must_stop, onShutdown', async (t) => {
  const server = await startTestServer({
    workers: 2,
    services: [
      {
        name: 'ticker',
        standalone: true,
        source: src('ticker'),
        preload: ['nap'],
        instances: 1,
      },
      {
        name: 'listener',
        request_target: '/l',
        source: src('listener'),
        depends: ['ticker'],
        preload: ['mqr'],
      },
    ],
  });
  let stopped = false;
  t.teardown(() => (stopped ? undefined : server.stop()));
  const ws = await openWs(server.url('/l'));
  t.equal(await ask(ws, 'sub'), 'subscribed');
  const frames: Buffer[] = [];
  ws.on('message', (d: Buffer) => frames.push(d));
  await until(() => frames.length >= 3, 3000, 'broadcasts');
  // CBOR map {cid: 70, message: [n]}: starts with a2 63 "cid" 18 46.
  t.equal(frames[0]!.subarray(0, 6).toString('hex'), 'a26363696418', 'an OON map in CBOR');
  t.ok(logged(server, 'ticker init ticker#0 ws=nil'), 'instance_id set, ws absent');
  await server.stop();
  stopped = true;
  t.ok(logged(server, 'ticker run returned after'), 'run() saw must_stop()');
  t.ok(logged(server, 'ticker shutdown'), 'onShutdown ran');
});

t.test('a standalone producer in a tight loop is held back by a bounded queue', async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [
      { name: 'pump', standalone: true, source: src('pump'), preload: ['mqr'] },
      {
        name: 'listener',
        request_target: '/l',
        source: src('listener'),
        depends: ['pump'],
        preload: ['mqr'],
      },
    ],
  });
  t.teardown(() => server.stop());
  const ws = await openWs(server.url('/l'));
  t.equal(await ask(ws, 'drain'), '1,2,3,4,5', 'items in order, none lost');
  t.equal(await ask(ws, 'drain'), '6,7,8,9,10');
  t.same(server.errors(), []);
  ws.close();
});

t.test('a standalone run() that ignores must_stop() is stopped at shutdown', async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [
      { name: 'stubborn', standalone: true, source: src('stubborn'), handler_timeout_ms: 300 },
    ],
  });
  const started = Date.now();
  await server.stop();
  t.ok(Date.now() - started < 5000, 'stop completes');
  t.ok(logged(server, 'stopped after running for more than 300 ms'), 'reported');
});

t.test('a service with auto_start false is not started unless needed', async (t) => {
  const server = await startTestServer({
    workers: 1,
    services: [
      {
        name: 'ticker',
        standalone: true,
        source: src('ticker'),
        preload: ['nap'],
        auto_start: false,
      },
      {
        name: 'off',
        request_target: '/off',
        source: src('waiter'),
        auto_start: false,
        preload: ['nap', 'mqr'],
      },
    ],
  });
  t.teardown(() => server.stop());
  t.notOk(logged(server, 'ticker init'), 'ticker not started');
  const ws = await openWs(server.url('/off')).catch((e: Error) => e);
  t.ok(ws instanceof Error && /404/.test(ws.message), 'path of a service not started: 404');
});

void nextMessage;
