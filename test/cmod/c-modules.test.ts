/**
 * C service modules (native/include/lapps.h): the bundled C echo, the API's error
 * contract, failure containment, onDisconnect exactly once, and bad modules refused at
 * start with a clear message. The modules are built by CMake next to the addon.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { addonPath } from '../../lib/native.js';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.js';
import { ask, closed, handshakeAnswer, nextMessage, openWs, until } from '../helpers/ws.js';

const buildDir = path.dirname(addonPath());
const so = (name: string): string => path.join(buildDir, `lib${name}.so`);

const echo = { name: 'echoc', request_target: '/echoc', kind: 'c', source: so('echo_c') };
const recorder = {
  name: 'rec',
  request_target: '/rec',
  kind: 'c',
  source: so('lapps_cmod_recorder'),
};

function logs(server: TestServer, level?: string): string[] {
  return server.events.filter((e) => !level || e.level === level).map((e) => e.message);
}

const count = (server: TestServer, line: string): number =>
  logs(server).filter((m) => m === line).length;

if (!existsSync(so('lapps_cmod_recorder'))) {
  t.fail(`C test modules not built in ${buildDir} (build with LAPPS_NATIVE_TESTS=ON)`);
} else {
  t.test('the C echo service echoes text, binary and 1 MiB messages', async (t) => {
    const server = await startTestServer({ services: [{ ...echo, instances: 2 }] });
    t.teardown(() => server.stop());
    const ws = await openWs(server.url('/echoc'));
    t.equal(await ask(ws, 'hello'), 'hello', 'text');
    t.equal(await ask(ws, 'héllo ✓'), 'héllo ✓', 'UTF-8 text');

    const binary = Buffer.from([0, 1, 2, 255, 254, 0]);
    const gotBinary = new Promise<{ data: Buffer; isBinary: boolean }>((resolve) =>
      ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })),
    );
    ws.send(binary);
    const b = await gotBinary;
    t.ok(b.isBinary, 'binary stays binary');
    t.same(b.data, binary, 'binary bytes');

    const big = Buffer.alloc(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const gotBig = new Promise<Buffer>((resolve) =>
      ws.once('message', (data: Buffer) => resolve(data)),
    );
    ws.send(big);
    t.ok((await gotBig).equals(big), '1 MiB echoed intact');

    // Several clients at once, spread over both instances.
    const clients = await Promise.all([1, 2, 3, 4].map(() => openWs(server.url('/echoc'))));
    const replies = await Promise.all(clients.map((c, i) => ask(c, `client ${i}`)));
    t.same(replies, ['client 0', 'client 1', 'client 2', 'client 3']);
    for (const c of [ws, ...clients]) c.close();
    t.same(server.errors(), [], 'no error in the log');
  });

  t.test('the API refuses stale handles and misuse with result codes', async (t) => {
    const server = await startTestServer({ services: [{ ...recorder, instances: 1 }] });
    t.teardown(() => server.stop());
    const a = await openWs(server.url('/rec'));
    const b = await openWs(server.url('/rec'));
    const ha = await ask(a, 'handle');
    const hb = await ask(b, 'handle');
    t.not(ha, hb, 'distinct handles');

    const got = nextMessage(b);
    t.equal(await ask(a, `send ${hb} hi b`), 'rc 0', 'send to a live handle: LAPPS_OK');
    t.equal(await got, 'hi b', 'delivered');

    const c = closed(b);
    b.close(1000);
    await c;
    await until(() => count(server, `disconnect ${hb}`) > 0, 5000, 'onDisconnect of b');
    t.equal(await ask(a, `send ${hb} late`), 'rc 1', 'stale handle: LAPPS_NO_CONNECTION');
    // A new connection may reuse b's slot: the old handle still names nobody.
    const b2 = await openWs(server.url('/rec'));
    const hb2 = await ask(b2, 'handle');
    t.not(hb2, hb, 'the new connection has a new handle');
    t.equal(await ask(a, `send ${hb} late`), 'rc 1', 'still refused after reuse');
    t.equal(await ask(a, 'send 0 x'), 'rc 1', 'handle 0: LAPPS_NO_CONNECTION');
    t.equal(await ask(a, 'send 18446744073709551615 x'), 'rc 1', 'garbage handle refused');

    t.equal(await ask(a, 'badopcode'), 'rc 5', 'opcode 9: LAPPS_INVALID');
    t.equal(await ask(a, 'badutf8'), 'rc 4', 'invalid UTF-8 text: LAPPS_NOT_UTF8');
    t.equal(await ask(a, 'badclose'), 'rc 5', 'close code 1005: LAPPS_INVALID');
    t.equal(await ask(a, 'nullsend'), 'rc 5', 'NULL data with a length: LAPPS_INVALID');
    t.equal(await ask(a, 'thread'), 'rc 6', 'send from another thread: LAPPS_WRONG_THREAD');
    t.equal(await ask(a, `close 1000 ${'x'.repeat(124)}`), 'rc 5', 'reason over 123 bytes');

    const ac = closed(a);
    a.send('close 4001 bye');
    t.same(await ac, { code: 4001, reason: 'bye' }, 'close with the module-chosen code');
    b2.close();
    t.same(server.errors(), [], 'no error in the log');
  });

  t.test('a failing on_message closes only its connection with 1011', async (t) => {
    const server = await startTestServer({ services: [{ ...recorder, instances: 1 }] });
    t.teardown(() => server.stop());
    const bystander = await openWs(server.url('/rec'));
    t.equal(await ask(bystander, 'before'), 'before');

    const victim = await openWs(server.url('/rec'));
    const done = closed(victim);
    // Messages after the failing one in the same batch are not delivered.
    victim.send('fail');
    victim.send('after the failure');
    t.equal((await done).code, 1011, 'closed with 1011');
    t.ok(
      logs(server, 'warn').some((m) => m.includes('on_message failed (returned 7)')),
      'failure logged with the return value',
    );
    t.equal(await ask(bystander, 'after'), 'after', 'the instance keeps serving others');
    t.equal(await ask(bystander, 'count'), 'count 4', 'the message after the failure was dropped');
    const fresh = await openWs(server.url('/rec'));
    t.equal(await ask(fresh, 'fresh'), 'fresh', 'new connections work');
    fresh.close();
    bystander.close();
    t.same(server.errors(), [], 'no error in the log');
  });

  t.test('callbacks: create/start/shutdown per instance, onDisconnect exactly once', async (t) => {
    const server = await startTestServer({
      services: [{ ...recorder, instances: 2 }],
      limits: { idle_timeout_ms: 300, ping_interval_ms: 0, close_timeout_ms: 500 },
    });
    t.teardown(() => server.stop());
    for (const i of [0, 1]) {
      await until(() => count(server, `start rec#${i}`) > 0, 5000, `start rec#${i}`);
      t.equal(count(server, `create rec#${i}`), 1, `create rec#${i} once`);
      t.equal(count(server, `start rec#${i}`), 1, `start rec#${i} once`);
    }

    const ends: Record<string, (ws: import('ws').WebSocket) => Promise<void>> = {
      'client close': async (ws) => {
        const c = closed(ws);
        ws.close(1000);
        await c;
      },
      'TCP drop': async (ws) => {
        ws.terminate();
      },
      'module close': async (ws) => {
        const c = closed(ws);
        ws.send('close 1000 done');
        await c;
      },
      'on_message failure': async (ws) => {
        const c = closed(ws);
        ws.send('fail');
        await c;
      },
      'idle timeout': async (ws) => {
        t.equal((await closed(ws)).code, 1001, 'idle timeout closes with 1001');
      },
    };
    for (const [how, end] of Object.entries(ends)) {
      const ws = await openWs(server.url('/rec'));
      const handle = await ask(ws, 'handle');
      await end(ws);
      await until(() => count(server, `disconnect ${handle}`) > 0, 5000, `disconnect (${how})`);
      await new Promise((r) => setTimeout(r, 100));
      t.equal(count(server, `disconnect ${handle}`), 1, `${how}: exactly one on_disconnect`);
    }

    const last = await openWs(server.url('/rec'));
    const handle = await ask(last, 'handle');
    const c = closed(last);
    await server.stop();
    t.equal((await c).code, 1001, 'shutdown closes with 1001');
    t.equal(count(server, `disconnect ${handle}`), 1, 'shutdown: exactly one on_disconnect');
    t.equal(count(server, 'shutdown rec#0') + count(server, 'shutdown rec#1'), 2, 'on_shutdown');
    t.same(server.errors(), [], 'no error in the log');
  });

  t.test('bcast from a C module reaches subscribers on every worker', async (t) => {
    const server = await startTestServer({
      workers: 2,
      services: [{ ...recorder, instances: 2 }],
    });
    t.teardown(() => server.stop());
    const a = await openWs(server.url('/rec'));
    const b = await openWs(server.url('/rec'));
    t.equal(await ask(a, 'bcast sub 5'), 'rc 7', 'LAPPS_NO_CHANNEL before bcast_create');
    t.equal(await ask(a, 'bcast create 5'), 'rc 0');
    t.equal(await ask(a, 'bcast sub 5'), 'rc 0');
    t.equal(await ask(b, 'bcast sub 5'), 'rc 0');
    const gotA = nextMessage(a);
    const gotB: string[] = [];
    b.on('message', (d) => gotB.push(String(d)));
    b.send('bcast send 5 hello all');
    t.equal(await gotA, 'hello all', 'the other connection got it');
    await until(() => gotB.length === 2, 3000, 'broadcast and reply');
    t.same([...gotB].sort(), ['hello all', 'rc 0'], 'the sender got it too');
    t.equal(await ask(a, 'bcast unsub 5'), 'rc 0');
    t.equal(await ask(a, 'bcast send 9 x'), 'rc 7');
    a.close();
    b.close();
  });

  t.test('the API refuses connections of another service, on any worker', async (t) => {
    const victim = {
      name: 'victim',
      request_target: '/victim',
      source: path.join(repoRoot, 'test', 'lua', 'services', 'isolation', 'victim.lua'),
    };
    const server = await startTestServer({
      workers: 2,
      services: [
        { ...victim, instances: 2 },
        { ...recorder, instances: 2 },
      ],
    });
    t.teardown(() => server.stop());
    const workerOf = (h: string): number => Math.floor(Number(h) / 2 ** 20) % 256;
    // Connections stay on the worker that accepted them: get one of each kind on both.
    const victims: { ws: import('ws').WebSocket; handle: string; got: string[] }[] = [];
    const recs: { ws: import('ws').WebSocket; handle: string }[] = [];
    for (let i = 0; i < 40; i++) {
      const on = (list: { handle: string }[], w: number): boolean =>
        list.some((c) => workerOf(c.handle) === w);
      if ([0, 1].every((w) => on(victims, w) && on(recs, w))) break;
      const v = await openWs(server.url('/victim'));
      const got: string[] = [];
      victims.push({ ws: v, handle: await ask(v, 'handle'), got });
      v.on('message', (d) => got.push(String(d)));
      const r = await openWs(server.url('/rec'));
      recs.push({ ws: r, handle: await ask(r, 'handle') });
    }
    const r0 = recs.find((c) => workerOf(c.handle) === 0);
    const r1 = recs.find((c) => workerOf(c.handle) === 1);
    t.ok(r0 && r1, 'a recorder connection on each worker');
    if (!r0 || !r1) return;
    t.equal(await ask(r0.ws, 'bcast create 6'), 'rc 0');
    for (const v of victims) {
      const where = workerOf(v.handle) === 0 ? 'same worker' : 'other worker';
      t.equal(await ask(r0.ws, `send ${v.handle} intruder`), 'rc 1', `send, ${where}`);
      t.equal(await ask(r0.ws, `bcast subh 6 ${v.handle}`), 'rc 1', `subscribe, ${where}`);
      t.equal(await ask(r0.ws, `bcast unsubh 6 ${v.handle}`), 'rc 1', `unsubscribe, ${where}`);
      t.equal(await ask(r0.ws, `closeh ${v.handle}`), 'rc 1', `close, ${where}`);
    }
    t.equal(await ask(r0.ws, 'bcast send 6 leak'), 'rc 0');
    await new Promise((r) => setTimeout(r, 200));
    for (const v of victims) {
      t.equal(await ask(v.ws, 'still here'), 'still here', `victim ${v.handle} open`);
      t.same(v.got, ['still here'], `victim ${v.handle} received nothing else`);
    }
    // The module's own connections on the other worker stay reachable.
    const got = nextMessage(r1.ws);
    t.equal(await ask(r0.ws, `send ${r1.handle} across`), 'rc 0', 'own connection, other worker');
    t.equal(await got, 'across');
    for (const c of [...victims, ...recs]) c.ws.close();
    t.same(server.errors(), [], 'no error in the log');
  });

  t.test('on_connect: the request, accept, refuse, pending answered later', async (t) => {
    const gate = { name: 'gate', request_target: '/gate', kind: 'c', instances: 1 };
    const server = await startTestServer({
      workers: 1,
      limits: { handshake_timeout_ms: 2000 },
      services: [
        { ...gate, source: so('lapps_cmod_gate') },
        { ...gate, name: 'old', request_target: '/old', source: so('lapps_cmod_gate_old') },
      ],
    });
    t.teardown(() => server.stop());
    const ws = await openWs(server.url('/gate?x=1'), 5000, { headers: { 'X-Token': 'abc' } });
    const seen = await ask(ws, 'request');
    t.match(
      seen,
      /^method=GET path=\/gate query=x=1 target=\/gate\?x=1 ip=127\.0\.0\.1 port=\d+ token=abc tls=none$/,
    );

    const status = async (p: string): Promise<number> =>
      (await handshakeAnswer(server.port, p)).status;
    const refused = await handshakeAnswer(server.port, '/gate?refuse');
    t.equal(refused.status, 401, 'LAPPS_CONNECT_REFUSE with its status');
    t.equal(refused.body, 'no entry', 'and its reason');
    t.equal(await status('/gate?refuse-default'), 403, 'the preset refusal: 403');
    t.equal(await status('/gate?refuse-bad'), 500, 'status 200: 500');
    t.equal(await status('/gate?nonsense'), 500, 'an unknown answer: 500');
    await until(() => logs(server, 'error').some((m) => m.includes('on_connect returned 7')));
    t.ok(logs(server, 'error').some((m) => m.includes('status 200 (400-599 expected)')));

    // Pending: answered by a call from another connection's on_message.
    const pending = openWs(server.url('/gate?pending'));
    const pendingHandle = async (not: string): Promise<string> => {
      for (let i = 0; i < 100; i++) {
        const h = await ask(ws, 'pending-handle');
        if (h !== not) return h;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('no pending handshake seen');
    };
    const handle = await pendingHandle('none');
    t.equal(await ask(ws, `release ${handle}`), 'rc 0', 'connect_accept: LAPPS_OK');
    const p = await pending;
    t.match(await ask(p, 'request'), /query=pending /, 'the pending connection opened');
    t.equal(await ask(ws, `release ${handle}`), 'rc 1', 'answered already: LAPPS_NO_CONNECTION');
    p.close();
    const denied = openWs(server.url('/gate?pending')).then(
      () => 'opened',
      (e: Error) => e.message,
    );
    const h2 = await pendingHandle(handle);
    t.equal(await ask(ws, `deny ${h2}`), 'rc 0', 'connect_refuse: LAPPS_OK');
    t.match(await denied, /429/, 'refused with its status');
    // Never answered: handshake_timeout_ms answers 503.
    t.equal(await status('/gate?pending'), 503, 'no answer in time: 503');
    // A module built before on_connect: its descriptor is shorter; on_connect is not called.
    const old = await openWs(server.url('/old?refuse'));
    t.equal(await ask(old, 'hi'), 'hi', 'an old descriptor: every handshake accepted');
    old.close();
    ws.close();
  });

  t.test('bad modules are refused at start with a clear error', async (t) => {
    const cases: [string, string, RegExp][] = [
      [
        'missing file (caught by the config check)',
        path.join(buildDir, 'libnot_there.so'),
        /source: file not found: .*libnot_there\.so/,
      ],
      [
        'not a shared object',
        path.join(repoRoot, 'test', 'cmod', 'recorder.c'),
        /recorder\.c: cannot load the C module: /,
      ],
      [
        'no symbol',
        so('lapps_cmod_bad_no_symbol'),
        /bad_no_symbol\.so: not a lapps C module: symbol lapps_service_v1 not found/,
      ],
      ['wrong ABI', so('lapps_cmod_bad_abi'), /bad_abi\.so: ABI version 2, this server speaks 1/],
      [
        'no on_message',
        so('lapps_cmod_bad_no_callback'),
        /bad_no_callback\.so: required callback 'on_message' is missing/,
      ],
      [
        'create fails',
        so('lapps_cmod_bad_create'),
        /bad_create\.so: create\(\) failed for instance bad#0/,
      ],
    ];
    for (const [what, source, message] of cases) {
      await t.rejects(
        startTestServer({ services: [{ name: 'bad', request_target: '/bad', kind: 'c', source }] }),
        message,
        what,
      );
    }
  });
}
