/**
 * Hostile Lua (issue 10): every way we found for a service's own code to crash, freeze or
 * bloat its Lua state, thrown at a real server (test/lua/services/hostile/hostile.lua, one
 * attack per message). For every attack: the server process stays up (it is this process),
 * a connection of another service on the same worker keeps getting its echo, the offender
 * gets a clear answer (its connection goes on after the logged error, or is closed with
 * 1011), the instance serves the next connection, and the process's memory stays bounded.
 * Runs in the normal and in the ASan/UBSan pass.
 */
import t from 'tap';
import path from 'node:path';
import WebSocket from 'ws';

import { echoSource, repoRoot, startTestServer, type TestServer } from '../helpers/server.js';
import { timeScale } from '../helpers/raw-client.js';
import { ask, openWs } from '../helpers/ws.js';

const source = path.join(repoRoot, 'test', 'lua', 'services', 'hostile', 'hostile.lua');
const MiB = 1024 * 1024;
const sanitized = (process.env.LD_PRELOAD ?? '').includes('asan');

/**
 * The hostile service; null leaves memory_limit or handler_timeout_ms at its default. The
 * attacks that loop forever cost one handler_timeout_ms each.
 */
function hostile(
  memoryLimit: number | null = 32 * MiB,
  timeoutMs: number | null = 500 * timeScale,
): Record<string, unknown> {
  return {
    name: 'hostile',
    request_target: '/h',
    source,
    instances: 1,
    ...(memoryLimit === null ? {} : { memory_limit: memoryLimit }),
    ...(timeoutMs === null ? {} : { handler_timeout_ms: timeoutMs }),
  };
}
const echo = { name: 'echo', request_target: '/echo', source: echoSource, instances: 1 };

interface Answer {
  /** Messages the offender got, in order. */
  replies: string[];
  /** How its connection was closed, if it was. */
  close?: { code: number; reason: string };
}

/**
 * Sends `name` and then "after" (three times) on a fresh connection: an attack whose error
 * was contained leaves the connection open, and "after" comes back; otherwise the
 * connection is closed (at the latest after three failed messages).
 */
async function attack(server: TestServer, name: string, target = '/h'): Promise<Answer> {
  const ws = await openWs(server.url(target));
  const answer: Answer = { replies: [] };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name}: no answer (${JSON.stringify(answer)})`)),
      20000 * timeScale,
    );
    ws.on('message', (data: WebSocket.RawData) => {
      answer.replies.push(String(data).slice(0, 200));
      if (String(data) === 'after') {
        clearTimeout(timer);
        resolve();
      }
    });
    ws.once('close', (code: number, reason: Buffer) => {
      clearTimeout(timer);
      answer.close = { code, reason: reason.toString() };
      resolve();
    });
    ws.send(name);
    for (let i = 0; i < 3; i++) ws.send('after');
  });
  ws.close();
  return answer;
}

/** A clear answer: the connection went on, or it was closed with 1011. */
function clear(a: Answer): boolean {
  return a.close ? a.close.code === 1011 : a.replies.at(-1) === 'after';
}

function logged(server: TestServer, part: string): boolean {
  return server.errors().some((m) => m.includes(part));
}

t.test(
  'issue 10.1: lapps.spawn and lapps.every up to memory_limit in compiled loops',
  async (t) => {
    for (const [name, limit] of [
      ['spawnbomb', 64 * MiB],
      ['everybomb', 32 * MiB],
    ] as const) {
      const server = await startTestServer({
        workers: 1,
        services: [hostile(limit, null), echo],
      });
      const neighbour = await openWs(server.url('/echo'));
      const a = await attack(server, name);
      // Still full after a collection (the coroutines and timers live on): a fresh state.
      t.same(a.close, { code: 1011, reason: 'service restarted' }, `${name}: fresh state`);
      t.ok(logged(server, 'memory limit reached'), `${name}: the limit is named`);
      t.ok(logged(server, 'bytes still in use after a full garbage collection'), `${name}: why`);
      t.equal(await ask(neighbour, 'still here'), 'still here', `${name}: neighbour served`);
      const next = await openWs(server.url('/h'));
      t.equal(await ask(next, 'hello'), 'hello', `${name}: the instance serves again`);
      next.close();
      neighbour.close();
      await server.stop();
    }
  },
);

t.test('issue 10.2: recursion through C functions ends in a Lua error', async (t) => {
  // The default memory_limit (256 MiB): the C stack, not memory, is what runs out.
  const server = await startTestServer({
    workers: 1,
    services: [hostile(null, null), echo],
  });
  t.teardown(() => server.stop());
  const neighbour = await openWs(server.url('/echo'));
  for (const [name, error] of [
    ['gsub', 'stack overflow'],
    ['wrap', 'C stack overflow'],
    ['gsubwrap', 'stack overflow'],
  ] as const) {
    const a = await attack(server, name);
    t.same([a.replies[0], a.close], ['after', undefined], `${name}: the connection goes on`);
    t.ok(logged(server, error), `${name}: "${error}" logged`);
    t.equal(await ask(neighbour, name), name, `${name}: neighbour served`);
  }
  neighbour.close();
});

// Every other attack, against one server: what each leaves behind must not hurt the next.
const attacks = [
  // recursion, metamethod loops, errors raised while handling errors
  'resume',
  'chain',
  'pcallwrap',
  'tostring',
  'format',
  'sort',
  'loadreader',
  'recurse',
  'index',
  'newindex',
  'concat',
  'call',
  'errtable',
  'errloop',
  'errhandler',
  'errnil',
  'errnumber',
  'errhuge',
  'codecs',
  'spawnargs',
  // memory
  'rep',
  'rep2',
  'concatgrow',
  'tablegrow',
  'hashgrow',
  'closures',
  'tableconcat',
  'unpack',
  'gcstop',
  'gcpause',
  'leak',
  // code and the runtime
  'loadhuge',
  'loadnest',
  'loadconst',
  'formatwidth',
  'formatmany',
  'exit',
  'jitflush',
  'yieldmeta',
  'sleepmeta',
  'yieldgsub',
  'gcloop',
];

t.test('the hostile set: contained, answered, neighbour served, memory bounded', async (t) => {
  const server = await startTestServer({ workers: 1, services: [hostile(), echo] });
  t.teardown(() => server.stop());
  const neighbour = await openWs(server.url('/echo'));
  t.equal(await ask(neighbour, 'first'), 'first');
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  for (const name of attacks) {
    const a = await attack(server, name);
    t.ok(clear(a), `${name}: a clear answer (${JSON.stringify(a)})`);
    t.equal(await ask(neighbour, name), name, `${name}: neighbour served`);
    const next = await openWs(server.url('/h'));
    t.equal(await ask(next, 'work'), 'worked 1000000', `${name}: the instance serves the next one`);
    next.close();
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }
  // The Lua state stays within memory_limit; what a recursion touched of the C stack and
  // what a failed state held go back. (ASan keeps freed memory in quarantine.)
  const bound = (sanitized ? 1024 : 256) * MiB;
  t.ok(
    rssPeak - rssBefore < bound,
    `peak RSS growth ${Math.round((rssPeak - rssBefore) / MiB)} MiB < ${bound / MiB} MiB`,
  );
  const mem = await attack(server, 'mem');
  const kb = Number(mem.replies[0]?.split(' ')[1]);
  t.ok(kb < 4096, `the instance's own memory is back to ${kb} KiB`);
  t.ok(logged(server, 'memory limit reached'), 'memory errors logged as such');
  t.ok(logged(server, 'os.exit is not available'), 'os.exit refused');
  t.ok(logged(server, 'stopped after running for more than'), 'loops stopped by the watchdog');
  neighbour.close();
});

t.test('a service that breaks its own state breaks nobody else', async (t) => {
  // Replacing the string metatable, or leaving __gc finalizers that raise errors (LuaJIT
  // 2.1-20230119 raises them in whatever code the collector interrupts), makes the
  // service's own handlers fail: lapps contains that to its connections.
  const server = await startTestServer({ workers: 1, services: [hostile(), echo] });
  t.teardown(() => server.stop());
  const neighbour = await openWs(server.url('/echo'));
  for (const name of ['gcfinalizer', 'gcspawn', 'strmeta']) {
    const a = await attack(server, name);
    t.ok(a.replies.length === 0 || clear(a), `${name}: no wrong answer (${JSON.stringify(a)})`);
    t.equal(await ask(neighbour, name), name, `${name}: neighbour served`);
  }
  // Every message now fails: each client is closed after three errors, and the instance is
  // not recycled by them (max_failures counts the instance's own errors only).
  const victim = await openWs(server.url('/h'));
  const done = new Promise<number>((resolve) => victim.once('close', (code) => resolve(code)));
  for (let i = 0; i < 3; i++) victim.send(`x${i}`);
  t.equal(await done, 1011, 'closed with 1011 after three failed messages');
  t.equal(await ask(neighbour, 'end'), 'end');
  neighbour.close();
});

t.test('a finalizer that loops in the collection of a quiet worker is stopped', async (t) => {
  const server = await startTestServer({ workers: 1, services: [hostile(), echo] });
  t.teardown(() => server.stop());
  const neighbour = await openWs(server.url('/echo'));
  const offender = await openWs(server.url('/h'));
  t.equal(await ask(offender, 'gcidle'), 'survived gcidle');
  // The worker's memory tick finds it quiet within a few seconds and collects the state
  // that grew: the finalizer runs there, and must be stopped like any other Lua code.
  await new Promise((resolve) => setTimeout(resolve, 3000 * timeScale));
  t.equal(await ask(neighbour, 'still there'), 'still there', 'the worker still serves');
  const next = await openWs(server.url('/h'));
  t.equal(await ask(next, 'work'), 'worked 1000000', 'the instance serves the next one');
  t.ok(logged(server, 'stopped after running for more than'), 'stopped by the watchdog');
  next.close();
  offender.close();
  neighbour.close();
});

t.test('a service file whose top level loops fails to load, naming the limit', async (t) => {
  const file = path.join(repoRoot, 'test', 'lua', 'services', 'hostile', 'toploop.lua');
  for (const standalone of [false, true]) {
    const started = Date.now();
    await t.rejects(
      startTestServer({
        workers: 1,
        services: [
          {
            name: 'toploop',
            source: file,
            handler_timeout_ms: 300,
            ...(standalone ? { standalone: true } : { request_target: '/t' }),
          },
        ],
      }),
      /top level ran for more than 300 ms \(handler_timeout_ms\)/,
      standalone ? 'standalone' : 'reactive',
    );
    t.ok(Date.now() - started < 10000 * timeScale, 'refused at once, not hung');
  }
  // The process goes on serving: a server started next works.
  const server = await startTestServer({ workers: 1, services: [echo] });
  const ws = await openWs(server.url('/echo'));
  t.equal(await ask(ws, 'ok'), 'ok');
  ws.close();
  await server.stop();
});
