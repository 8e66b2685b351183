/**
 * "::" is every address, IPv4 included (dual-stack, like Node's listen(port, '::')); with
 * "ipv6_only": true it is IPv6 only. IPv4 clients reaching "::" arrive as ::ffff:a.b.c.d:
 * ACLs and per-IP limits treat them as the IPv4 address they are.
 */
import net from 'node:net';

import t from 'tap';

import { echoSource, startTestServer } from '../helpers/server.js';
import { handshakeRequest, randomKey, scaled } from '../helpers/raw-client.js';

/**
 * Sends a handshake and resolves with the status line, '' when the server closed without a
 * byte, or 'refused' when nothing listens. A 101 connection is kept open in `keep`.
 */
function attempt(port: number, host: string, path = '/echo', keep?: net.Socket[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host });
    let reply = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer from ${host}:${port} within the wait`));
    }, scaled(5000));
    const done = (answer: string): void => {
      clearTimeout(timer);
      resolve(answer);
    };
    s.on('data', (b: Buffer) => {
      reply += b.toString('latin1');
      if (reply.includes('\r\n\r\n')) {
        if (keep && reply.startsWith('HTTP/1.1 101')) keep.push(s);
        else s.destroy();
        done(reply.split('\r\n')[0]!);
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') done('refused');
    });
    s.on('close', () => done(reply.split('\r\n')[0] ?? ''));
    s.write(handshakeRequest({ path, key: randomKey(), host: `${host}:${port}` }));
  });
}

t.test('"::" is dual-stack: IPv4 and IPv6 clients both connect', async (t) => {
  const server = await startTestServer({ listeners: [{ host: '::', port: 0 }] });
  t.teardown(() => server.stop());
  t.match(await attempt(server.port, '127.0.0.1'), /^HTTP\/1\.1 101/, '127.0.0.1');
  t.match(await attempt(server.port, '::1'), /^HTTP\/1\.1 101/, '::1');
  t.same(server.errors(), []);
});

t.test('"ipv6_only": true: IPv4 clients are refused, IPv6 clients connect', async (t) => {
  const server = await startTestServer({ listeners: [{ host: '::', port: 0, ipv6_only: true }] });
  t.teardown(() => server.stop());
  t.equal(await attempt(server.port, '127.0.0.1'), 'refused', '127.0.0.1: nothing listens');
  t.match(await attempt(server.port, '::1'), /^HTTP\/1\.1 101/, '::1');
});

t.test('ACLs see an IPv4 client of "::" as its IPv4 address', async (t) => {
  const server = await startTestServer({
    listeners: [{ host: '::', port: 0 }],
    acl: { deny: ['127.0.0.2'] },
    services: [
      { name: 'open', request_target: '/open', source: echoSource },
      { name: 'v4', request_target: '/v4', source: echoSource, acl: { allow: ['127.0.0.0/8'] } },
      { name: 'v6', request_target: '/v6', source: echoSource, acl: { deny: ['127.0.0.1'] } },
    ],
  });
  t.teardown(() => server.stop());
  const p = server.port;
  t.match(await attempt(p, '127.0.0.1', '/v4'), /101/, 'IPv4 rule allows the mapped 127.0.0.1');
  t.match(await attempt(p, '::1', '/v4'), /403/, '::1 is not in 127.0.0.0/8');
  t.match(await attempt(p, '127.0.0.1', '/v6'), /403/, 'IPv4 deny rule refuses the mapped client');
  t.match(await attempt(p, '::1', '/v6'), /101/);
  // Server-wide: 127.0.0.2 is closed at accept without a byte (Linux routes all of 127/8).
  const refused = await new Promise<string>((resolve) => {
    const s = net.connect({ port: p, host: '127.0.0.1', localAddress: '127.0.0.2' });
    let got = '';
    s.on('data', (b: Buffer) => (got += b.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => resolve(got));
    s.write(handshakeRequest({ path: '/open', key: randomKey(), host: `127.0.0.1:${p}` }));
  });
  t.equal(refused, '', 'server-wide deny of 127.0.0.2 holds for its mapped form');
  t.equal(server.counters().acl_refused_at_accept, 1);
  t.equal(server.counters().acl_refused_at_handshake, 2);
});

t.test('per-IP limits count an IPv4 client the same on "::" and on an IPv4 listener', async (t) => {
  const server = await startTestServer({
    listeners: [
      { host: '127.0.0.1', port: 0 },
      { host: '::', port: 0 },
    ],
    limits: { max_connections_per_ip: 2 },
  });
  const keep: net.Socket[] = [];
  t.teardown(() => {
    keep.forEach((s) => s.destroy());
    return server.stop();
  });
  const [v4, dual] = server.ports as [number, number];
  t.match(await attempt(v4, '127.0.0.1', '/echo', keep), /101/, 'first, over IPv4');
  t.match(await attempt(dual, '127.0.0.1', '/echo', keep), /101/, 'second, over "::"');
  t.match(await attempt(dual, '127.0.0.1'), /503/, 'third over "::": same address, over the limit');
  t.match(await attempt(v4, '127.0.0.1'), /503/, 'third over IPv4 too');
  t.match(await attempt(dual, '::1', '/echo', keep), /101/, '::1 is another address');
  t.equal(server.counters().per_ip_connection_limit, 2);
});
