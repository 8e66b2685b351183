/**
 * Network ACLs at both levels, IPv4 and IPv6: a refused address never sees a 101. The
 * server-wide ACL closes the socket at accept (no response at all); a service's ACL answers
 * 403 before the upgrade. ACLs can be replaced while connections stay up.
 */
import net from 'node:net';

import t from 'tap';

import { echoSource, startTestServer } from '../helpers/server.js';
import { handshakeRequest, Op, randomKey, RawClient, scaled } from '../helpers/raw-client.js';

/** Sends a handshake on a plain socket and collects everything until the server closes. */
function attempt(
  port: number,
  host: string,
  path = '/echo',
  localAddress?: string,
): Promise<{ reply: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, localAddress });
    let reply = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer from ${host}:${port} within the wait`));
    }, scaled(5000));
    s.on('data', (b: Buffer) => {
      reply += b.toString('latin1');
      // A 101 leaves the connection open: that is the answer.
      if (reply.includes('\r\n\r\n') && reply.startsWith('HTTP/1.1 101')) {
        clearTimeout(timer);
        s.destroy();
        resolve({ reply });
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ reply });
    });
    s.write(handshakeRequest({ path, key: randomKey(), host: `${host}:${port}` }));
  });
}

const status = (reply: string): string => reply.split('\r\n')[0] ?? '';

t.test(
  'server-wide ACL: refused at accept, no bytes at all; IPv6 filtered like IPv4',
  async (t) => {
    const server = await startTestServer({
      listeners: [
        { host: '127.0.0.1', port: 0 },
        { host: '::1', port: 0 },
      ],
      acl: { allow: ['127.0.0.0/8'] }, // default then deny: ::1 is out
    });
    t.teardown(() => server.stop());
    const [v4, v6] = server.ports as [number, number];
    t.match(status((await attempt(v4, '127.0.0.1')).reply), /101/, '127.0.0.1 allowed');
    t.equal((await attempt(v6, '::1')).reply, '', '::1 refused: closed without a byte');
    t.equal(server.counters().acl_refused_at_accept, 1, 'counted');

    server.reload({
      listeners: [
        { host: '127.0.0.1', port: v4 },
        { host: '::1', port: v6 },
      ],
      acl: { policy: 'allow', exclude: ['127.0.0.2', '::1/128'] },
    });
    // The reload reaches each worker through its inbox: poll until it took effect on all.
    let refused = 0;
    for (let i = 0; i < 20 && refused < 4; ++i) {
      refused = 0;
      for (let k = 0; k < 4; ++k) {
        const r = await attempt(v4, '127.0.0.1', '/echo', '127.0.0.2');
        if (r.reply === '') ++refused;
      }
    }
    t.equal(refused, 4, 'LAppS form after a reload: 127.0.0.2 excluded');
    t.match(status((await attempt(v4, '127.0.0.1')).reply), /101/, '127.0.0.1 still allowed');
    t.equal((await attempt(v6, '::1')).reply, '', '::1 excluded');
  },
);

t.test('service ACL: 403 before the 101, other services unaffected', async (t) => {
  const server = await startTestServer({
    listeners: [
      { host: '127.0.0.1', port: 0 },
      { host: '::1', port: 0 },
    ],
    services: [
      { name: 'open', request_target: '/open', source: echoSource },
      {
        name: 'closed4',
        request_target: '/v6only',
        source: echoSource,
        acl: { deny: ['0.0.0.0/0'] },
      },
      {
        name: 'closed6',
        request_target: '/v4only',
        source: echoSource,
        acl: { policy: 'deny', exclude: ['127.0.0.1'] },
      },
    ],
  });
  t.teardown(() => server.stop());
  const [v4, v6] = server.ports as [number, number];
  const forbidden = (await attempt(v4, '127.0.0.1', '/v6only')).reply;
  t.match(status(forbidden), /^HTTP\/1\.1 403 Forbidden$/, 'IPv4 client of a v6-only service: 403');
  t.notMatch(forbidden, /101|Sec-WebSocket-Accept/i, 'never anything of a WebSocket');
  t.match(status((await attempt(v6, '::1', '/v6only')).reply), /101/, 'IPv6 client allowed');
  t.match(status((await attempt(v6, '::1', '/v4only')).reply), /403/, 'IPv6 client: 403');
  t.match(status((await attempt(v4, '127.0.0.1', '/v4only')).reply), /101/);
  t.match(status((await attempt(v4, '127.0.0.1', '/open')).reply), /101/);
  t.match(status((await attempt(v6, '::1', '/open')).reply), /101/);
  t.equal(server.counters().acl_refused_at_handshake, 2, 'both refusals counted');
});

t.test('service ACL replaced at runtime; an open connection stays up', async (t) => {
  const services = (acl?: Record<string, unknown>): Record<string, unknown>[] => [
    {
      name: 'echo',
      request_target: '/echo',
      source: echoSource,
      instances: 2,
      ...(acl ? { acl } : {}),
    },
  ];
  const server = await startTestServer({ services: services() });
  t.teardown(() => server.stop());
  const kept = await RawClient.connect(server.port);
  server.reload({ services: services({ deny: ['127.0.0.1'] }) });
  let reply = '';
  for (let i = 0; i < 50 && !status(reply).includes('403'); ++i) {
    reply = (await attempt(server.port, '127.0.0.1')).reply;
    if (!status(reply).includes('403')) await new Promise((r) => setTimeout(r, 20));
  }
  t.match(status(reply), /403/, 'new handshakes refused after the reload');
  kept.send({ opcode: Op.Text, payload: 'still open' });
  const m = await kept.readMessage();
  t.equal(m.payload.toString(), 'still open', 'the connection from before keeps working');
  kept.destroy();
  t.throws(
    () => server.reload({ services: services({ deny: ['10.0.0.0/8'], allow: ['10.0.0.0/8'] }) }),
    /also in/,
    'a contradictory ACL is refused (nothing changes)',
  );
});
