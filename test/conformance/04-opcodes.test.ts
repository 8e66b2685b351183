/**
 * Autobahn 4.x (opcodes, RFC 6455 §5.2): the reserved non-control opcodes 3-7 and control
 * opcodes 0xB-0xF fail the connection with 1002, alone, after a valid frame (whose echo
 * still arrives first) and inside a fragmented message.
 */
import t from 'tap';

import { startTestServer } from '../helpers/server.js';
import { expectEcho, expectServerClose, Op, RawClient } from '../helpers/raw-client.js';

const server = await startTestServer();
t.teardown(() => server.stop());

const hex = (n: number): string => `0x${n.toString(16).toUpperCase()}`;

// Autobahn 4.1.x uses 3-7, 4.2.x uses 0xB-0xF, with the same five shapes.
for (const [group, opcodes] of [
  ['4.1', [3, 4, 5, 6, 7]],
  ['4.2', [11, 12, 13, 14, 15]],
] as const) {
  const [a, b, c3, d, e] = opcodes;
  t.test(`${group}.1 reserved opcode ${hex(a)}, no payload`, async (t) => {
    const c = await RawClient.connect(server.port);
    c.send({ opcode: a });
    await expectServerClose(t, c, 1002);
  });

  t.test(`${group}.2 reserved opcode ${hex(b)} with payload`, async (t) => {
    const c = await RawClient.connect(server.port);
    c.send({ opcode: b, payload: 'reserved opcode payload' });
    await expectServerClose(t, c, 1002);
  });

  for (const [n, op, payload] of [
    [3, c3, ''],
    [4, d, 'reserved opcode payload'],
    [5, e, 'reserved opcode payload'],
  ] as const) {
    t.test(`${group}.${n} text, reserved opcode ${hex(op)}, ping: echo then 1002`, async (t) => {
      const c = await RawClient.connect(server.port);
      c.send(
        { opcode: Op.Text, payload: 'Hello, world!' },
        { opcode: op, payload },
        { opcode: Op.Ping, payload: 'Hello, world!' },
      );
      await expectEcho(t, c, Op.Text, 'Hello, world!');
      await expectServerClose(t, c, 1002);
    });
  }
}

const RESERVED = [3, 4, 5, 6, 7, 11, 12, 13, 14, 15];

t.test('4.x every reserved opcode, alone, with and without payload, FIN 0 and 1', async (t) => {
  for (const opcode of RESERVED) {
    for (const [payload, fin] of [
      ['', true],
      ['x'.repeat(200), true],
      ['payload', false],
    ] as const) {
      const c = await RawClient.connect(server.port);
      c.send({ opcode, payload, fin });
      await t.test(`${hex(opcode)} len=${payload.length} fin=${fin}`, (t) =>
        expectServerClose(t, c, 1002),
      );
    }
  }
});

t.test('4.x every reserved opcode after a valid binary frame', async (t) => {
  for (const opcode of RESERVED) {
    const c = await RawClient.connect(server.port);
    c.send({ opcode: Op.Binary, payload: 'valid' }, { opcode, payload: 'bad' });
    await t.test(hex(opcode), async (t) => {
      await expectEcho(t, c, Op.Binary, 'valid');
      await expectServerClose(t, c, 1002);
    });
  }
});

t.test('4.x every reserved opcode inside a fragmented message', async (t) => {
  for (const opcode of RESERVED) {
    const c = await RawClient.connect(server.port);
    c.send(
      { opcode: Op.Text, payload: 'start', fin: false },
      { opcode, payload: 'bad' },
      { opcode: Op.Continuation, payload: 'end' },
    );
    await t.test(hex(opcode), (t) => expectServerClose(t, c, 1002));
  }
});

t.test('no error logged', async (t) => {
  t.same(server.errors(), []);
});
