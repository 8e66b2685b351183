/**
 * Lua RAW services: error containment, onDisconnect exactly once for every way a
 * connection ends, stale handles refused, ws:close, print to the log, instances.
 */
import t from 'tap';
import net from 'node:net';
import path from 'node:path';

import { repoRoot, startTestServer, type TestServer } from '../helpers/server.js';
import { ask, closed, nextMessage, openWs, until } from '../helpers/ws.js';

const dir = path.join(repoRoot, 'test', 'lua', 'services');
const faulty = {
  name: 'faulty',
  request_target: '/faulty',
  source: path.join(dir, 'faulty', 'faulty.lua'),
};
const tracker = {
  name: 'tracker',
  request_target: '/tracker',
  source: path.join(dir, 'tracker', 'tracker.lua'),
};

function logs(server: TestServer, level?: string): string[] {
  return server.events.filter((e) => !level || e.level === level).map((e) => e.message);
}

function disconnectsOf(server: TestServer, handle: string): number {
  return logs(server).filter((m) => m === `disconnect ${handle}`).length;
}

t.test(
  'a Lua error costs only its own connection, closed with 1011 at its third, and is logged with its traceback',
  async (t) => {
    const server = await startTestServer({ services: [{ ...faulty, instances: 1 }] });
    t.teardown(() => server.stop());
    const bystander = await openWs(server.url('/faulty'));
    t.equal(await ask(bystander, 'before'), 'before');

    for (const trigger of ['boom', 'nilcall', 'false']) {
      const victim = await openWs(server.url('/faulty'));
      const done = closed(victim);
      victim.send(trigger);
      if (trigger !== 'false') {
        // An error costs the message; the third one the connection. An explicit false
        // closes it at once.
        t.equal(await ask(victim, 'again'), 'again', `${trigger}: the connection goes on`);
        victim.send(trigger);
        victim.send(trigger);
      }
      const { code, reason } = await done;
      t.equal(code, 1011, `${trigger}: close code`);
      t.equal(reason, 'internal error', `${trigger}: close reason`);
      // The same instance keeps serving everyone else.
      t.equal(await ask(bystander, `after ${trigger}`), `after ${trigger}`);
    }
    const errors = server.errors();
    t.ok(
      errors.some(
        (m) =>
          m.includes('boom requested') &&
          m.includes('stack traceback') &&
          m.includes('faulty.lua:'),
      ),
      'error logged with message, file and traceback',
    );
    t.ok(
      errors.some((m) => m.includes("attempt to call field 'missing'")),
      'call of a missing function logged',
    );
    t.ok(
      logs(server, 'warn').some((m) => m.includes('onMessage returned false')),
      'false return logged',
    );
    // A fresh connection works too.
    const fresh = await openWs(server.url('/faulty'));
    t.equal(await ask(fresh, 'fresh'), 'fresh');
    fresh.close();
    bystander.close();
  },
);

t.test('onDisconnect fires exactly once for every way a connection ends', async (t) => {
  const server = await startTestServer({
    services: [{ ...tracker, instances: 1 }],
    limits: { idle_timeout_ms: 300, ping_interval_ms: 0, close_timeout_ms: 500 },
  });
  t.teardown(() => server.stop());

  const ends: Record<string, (ws: import('ws').WebSocket) => Promise<void>> = {
    'close frame': async (ws) => {
      const c = closed(ws);
      ws.close(1000);
      await c;
    },
    'TCP drop': async (ws) => {
      ws.terminate();
    },
    'protocol error': async (ws) => {
      const c = closed(ws);
      // A reserved opcode (3) from the raw socket: the server closes with 1002.
      const sock = (ws as unknown as { _socket: net.Socket })._socket;
      sock.write(Buffer.from([0x83, 0x80, 1, 2, 3, 4]));
      t.equal((await c).code, 1002, 'protocol error closes with 1002');
    },
    'idle timeout': async (ws) => {
      const c = closed(ws);
      t.equal((await c).code, 1001, 'idle timeout closes with 1001');
    },
    'ws:close from the service': async (ws) => {
      const c = closed(ws);
      ws.send('close 4001 bye');
      t.same(await c, { code: 4001, reason: 'bye' }, 'service-chosen code and reason');
    },
  };
  for (const [how, end] of Object.entries(ends)) {
    const ws = await openWs(server.url('/tracker'));
    const handle = await ask(ws, 'handle');
    await end(ws);
    await until(() => disconnectsOf(server, handle) > 0, 5000, `onDisconnect after ${how}`);
    // Give a duplicate call the chance to show up before counting.
    await new Promise((r) => setTimeout(r, 100));
    t.equal(disconnectsOf(server, handle), 1, `${how}: exactly one onDisconnect`);
  }

  // Server shutdown: open connections are closed with 1001 and onDisconnect runs for each.
  const last = await openWs(server.url('/tracker'));
  const handle = await ask(last, 'handle');
  const c = closed(last);
  await server.stop();
  t.equal((await c).code, 1001, 'shutdown closes with 1001');
  t.equal(disconnectsOf(server, handle), 1, 'shutdown: exactly one onDisconnect');
  t.ok(logs(server).includes('tracker shutdown'), 'onShutdown ran');
  t.same(server.errors(), [], 'no error in the log');
});

t.test('stale and invalid handles are refused, never dereferenced', async (t) => {
  const server = await startTestServer({ services: [{ ...tracker, instances: 1 }] });
  t.teardown(() => server.stop());
  const a = await openWs(server.url('/tracker'));
  const b = await openWs(server.url('/tracker'));
  const ha = await ask(a, 'handle');
  const hb = await ask(b, 'handle');
  t.not(ha, hb, 'distinct handles');

  // A live handle of another connection works.
  const got = nextMessage(a);
  t.equal(await ask(b, `send ${ha}`), 'true nil', 'send to a live handle');
  t.equal(await got, `hello from ${hb}`);

  const c = closed(a);
  a.close();
  await c;
  await until(() => disconnectsOf(server, ha) === 1);
  t.equal(await ask(b, `send ${ha}`), 'false no such connection', 'stale handle refused');
  t.equal(
    await ask(b, `closeother ${ha} 1000`),
    'false no such connection',
    'close on a stale handle refused',
  );
  // Reuse the slot with a new connection: the old handle still must not reach it.
  const a2 = await openWs(server.url('/tracker'));
  const ha2 = await ask(a2, 'handle');
  t.not(ha2, ha, 'a reused slot gets a new generation');
  t.equal(
    await ask(b, `send ${ha}`),
    'false no such connection',
    'stale handle still refused after reuse',
  );

  for (const bad of ['0', '-1', '1.5', '2^60', '1e300', '0/0', '"abc"', 'nil', '{}']) {
    const reply = await ask(b, `sendraw ${bad}`);
    t.match(
      reply,
      /^false (no such connection|ws:send: handler must be a number)$/,
      `handle ${bad} refused`,
    );
  }
  t.equal(
    await ask(b, 'badsend'),
    [
      'false:ws:send: opcode must be 1 (text) or 2 (binary)',
      'false:ws:send: message must be a string',
      'false:ws:send: text message is not valid UTF-8 (send it as binary, opcode 2)',
      'false:ws:send: handler must be a number',
    ].join('|'),
    'misuse of ws:send returns false and a message',
  );
  t.equal(
    await ask(b, 'close 1005'),
    'close failed: ws:close: invalid close code (use 1000-1003, 1007-1014 or 3000-4999)',
    'invalid close code refused',
  );
  t.equal(
    await ask(b, 'helper'),
    'hello from a helper module',
    'require finds modules next to the service',
  );
  t.ok(logs(server, 'info').includes('tracker started'), 'print goes to the log');
  t.ok(
    server.events.some((e) => e.source === 'service tracker#0' && e.message === 'tracker started'),
    'log lines carry the service instance name',
  );
  a2.close();
  b.close();
  t.same(server.errors(), [], 'no error in the log');
});

t.test(
  'instances spread over workers; a connection is handed to the worker of its instance',
  async (t) => {
    const workerOf = (h: string): number => Number((BigInt(h) >> 20n) & 0xffn);
    // Two instances on two workers: both workers serve.
    const spread = await startTestServer({ workers: 2, services: [{ ...tracker, instances: 2 }] });
    t.teardown(() => spread.stop());
    const seen = new Set<number>();
    const clients = [];
    for (let i = 0; i < 8; i++) {
      const ws = await openWs(spread.url('/tracker'));
      clients.push(ws);
      seen.add(workerOf(await ask(ws, 'handle')));
    }
    t.same([...seen].sort(), [0, 1], 'connections on both workers');
    for (const ws of clients) ws.close();

    // One instance on worker 0: connections accepted by worker 1 are handed over.
    const single = await startTestServer({ workers: 2, services: [{ ...tracker, instances: 1 }] });
    t.teardown(() => single.stop());
    for (let i = 0; i < 12; i++) {
      const ws = await openWs(single.url('/tracker'));
      const h = await ask(ws, 'handle');
      t.equal(workerOf(h), 0, 'served by the instance on worker 0');
      t.equal(await ask(ws, `echo ${i}`), `echo ${i}`);
      ws.close();
    }
  },
);

t.test('a service that fails to load stops the start with a clear error', async (t) => {
  await t.rejects(
    startTestServer({
      services: [{ name: 'missing', request_target: '/m', source: path.join(dir, 'nope.lua') }],
    }),
    /nope\.lua/,
  );
});
