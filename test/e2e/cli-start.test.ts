/**
 * `lapps start` end to end, as a user runs it: the default echo service on an ephemeral
 * port, a real WebSocket client, then a graceful stop by SIGTERM. Needs dist/ and the
 * built addon (npm test builds both first).
 */
import net from 'node:net';

import t from 'tap';
import WebSocket from 'ws';

import { startLapps } from '../helpers/lapps-cli.js';

t.test('start --port 0: echo answers, SIGTERM closes clients with 1001, exit 0', async (t) => {
  const lapps = startLapps(t, ['start', '--port', '0', '--workers', '2']);
  const [, url] = await lapps.waitFor(/service echo \(raw\) at (ws:\/\/127\.0\.0\.1:\d+\/echo)\n/);
  await lapps.waitFor(/lapps \d+\.\d+\.\d+\S* started: 2 workers\n/);
  t.notMatch(url, /:0\//, 'the URL carries the bound port');

  const ws = new WebSocket(url!);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const echoed = new Promise<string>((resolve) =>
    ws.once('message', (data: Buffer) => resolve(data.toString())),
  );
  ws.send('hello lapps');
  t.equal(await echoed, 'hello lapps');

  const closed = new Promise<number>((resolve) =>
    ws.once('close', (code: number) => resolve(code)),
  );
  lapps.child.kill('SIGTERM');
  t.equal(await closed, 1001, 'client gets close code 1001 (going away)');
  const { code, signal } = await lapps.exited;
  t.equal(signal, null);
  t.equal(code, 0, 'exit code 0');
  t.match(lapps.stderr(), /stopping \(SIGTERM\)/);
  t.notMatch(lapps.stderr(), / ERROR /, 'no error in the log');
});

t.test('SIGINT stops an idle server with exit 0', async (t) => {
  const lapps = startLapps(t, ['start', '--port', '0', '--workers', '1']);
  await lapps.waitFor(/started: 1 worker\n/);
  lapps.child.kill('SIGINT');
  t.same(await lapps.exited, { code: 0, signal: null });
  t.match(lapps.stderr(), /stopping \(SIGINT\)/);
});

t.test('a port in use: message naming the address, exit 1', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const lapps = startLapps(t, ['start', '--port', String(port), '--workers', '1']);
  const { code } = await lapps.exited;
  t.equal(code, 1);
  t.match(lapps.stderr(), /cannot start: /);
  t.match(lapps.stderr(), String(port), 'the message names the port');
  t.notMatch(lapps.stderr(), /\n\s+at /, 'no stack trace');
});
