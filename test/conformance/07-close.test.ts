/**
 * Autobahn 7.x (closing handshake, RFC 6455 §5.5.1, §7.1-7.4): a valid close is answered
 * by a close echoing its code (an empty one by an empty one) and then the server ends
 * TCP; nothing is processed after a close; close payloads of 1 byte, over 125 bytes, with
 * a code not allowed on the wire (§7.4) or a reason that is not UTF-8 fail the connection
 * (1002, 1007). A peer that never answers the server's close is dropped after
 * close_timeout_ms.
 */
import t from 'tap';

import { startTestServer } from '../helpers/server.js';
import {
  delay,
  describeFrame,
  expectEcho,
  expectServerClose,
  Op,
  payloadFor,
  RawClient,
  scaled,
  type Asserts,
} from '../helpers/raw-client.js';

const CLOSE_TIMEOUT_MS = 300;
const server = await startTestServer({ limits: { close_timeout_ms: CLOSE_TIMEOUT_MS } });
t.teardown(() => server.stop());

function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason) : reason;
  const p = Buffer.alloc(2 + r.length);
  p.writeUInt16BE(code);
  r.copy(p, 2);
  return p;
}

/** The server answers our close with `code` and nothing else, then ends TCP with FIN. */
async function expectCloseReply(t: Asserts, c: RawClient, code: number | undefined): Promise<void> {
  try {
    const r = await c.expectClose(undefined, { reply: false });
    t.same(r.before.map(describeFrame), [], 'no other frame before the close reply');
    t.equal(
      r.code,
      code,
      code === undefined ? 'empty close answered by an empty close' : `close code ${code} echoed`,
    );
    t.equal(r.tcp, 'fin', 'server ended TCP cleanly (FIN) after the handshake');
  } catch (e) {
    t.fail(`no close reply: ${(e as Error).message}`);
    c.destroy();
  }
  t.same(c.violations, [], 'server frames follow RFC 6455');
}

t.test('7.1.1 text message, then close: echo, then close 1000', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(
    { opcode: Op.Text, payload: 'Hello World!' },
    { opcode: Op.Close, payload: closePayload(1000) },
  );
  await expectEcho(t, c, Op.Text, 'Hello World!');
  await expectCloseReply(t, c, 1000);
});

t.test('7.1.2 close twice: one reply, the second close is ignored', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(
    { opcode: Op.Close, payload: closePayload(1000) },
    { opcode: Op.Close, payload: closePayload(1000) },
  );
  await expectCloseReply(t, c, 1000);
});

t.test('7.1.3 ping after close is not answered', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(
    { opcode: Op.Close, payload: closePayload(1000) },
    { opcode: Op.Ping, payload: 'Hello World!' },
  );
  await expectCloseReply(t, c, 1000);
});

t.test('7.1.4 text after close is not echoed', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(
    { opcode: Op.Close, payload: closePayload(1000) },
    { opcode: Op.Text, payload: 'Hello World!' },
  );
  await expectCloseReply(t, c, 1000);
});

t.test('7.1.5 close between the fragments of a message: the message is dropped', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(
    { opcode: Op.Text, payload: 'fragment1', fin: false },
    { opcode: Op.Close, payload: closePayload(1000) },
    { opcode: Op.Continuation, payload: 'fragment2', fin: true },
  );
  await expectCloseReply(t, c, 1000);
});

t.test('7.1.6 256 KiB message, ping, close, then text: close 1000, nothing after', async (t) => {
  const c = await RawClient.connect(server.port);
  const big = payloadFor(Op.Text, 256 * 1024);
  c.send(
    { opcode: Op.Text, payload: big },
    { opcode: Op.Ping, payload: 'Hello World!' },
    { opcode: Op.Close, payload: closePayload(1000) },
    { opcode: Op.Text, payload: 'Hello World!' },
  );
  const r = await c.expectClose(undefined, { reply: false });
  // INFORMATIONAL in Autobahn: what came before the close may be the echo and the pong.
  for (const f of r.before) {
    if (f.opcode === Op.Pong) t.equal(f.payload.toString(), 'Hello World!', 'pong payload');
    else if (f.opcode === Op.Text) t.ok(f.payload.equals(big), 'the big message, intact');
    else t.fail(`unexpected frame ${describeFrame(f)}`);
  }
  t.equal(r.code, 1000, 'close 1000 echoed');
  t.equal(r.tcp, 'fin', 'server ended TCP cleanly');
  t.same(c.violations, [], 'server frames follow RFC 6455');
});

t.test('7.3.1 close with an empty payload is answered by an empty close', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Close });
  await expectCloseReply(t, c, undefined);
  t.equal(c.frames.at(-1)?.payload.length, 0, 'the reply payload is empty');
});

t.test('7.3.2 close with a 1-byte payload fails with 1002', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Close, payload: Buffer.from([0x03]) });
  await expectServerClose(t, c, 1002);
});

t.test('7.3.3 close 1000 without reason', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Close, payload: closePayload(1000) });
  await expectCloseReply(t, c, 1000);
});

t.test('7.3.4 close 1000 with a short reason', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Close, payload: closePayload(1000, 'Hello World!') });
  await expectCloseReply(t, c, 1000);
});

t.test('7.3.5 close 1000 with a 123-byte reason (payload 125 bytes)', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Close, payload: closePayload(1000, '*'.repeat(123)) });
  await expectCloseReply(t, c, 1000);
});

t.test('7.3.6 close 1000 with a 124-byte reason (payload 126 bytes) fails with 1002', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Close, payload: closePayload(1000, '*'.repeat(124)) });
  await expectServerClose(t, c, 1002);
});

t.test('7.5.1 close reason that is not UTF-8 fails with 1007', async (t) => {
  const c = await RawClient.connect(server.port);
  const reason = Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex');
  c.send({ opcode: Op.Close, payload: closePayload(1000, reason) });
  await expectServerClose(t, c, 1007);
});

t.test('7.5.x more invalid close reasons fail with 1007', async (t) => {
  for (const reason of ['c0af', 'ff', 'f4908080', 'e282']) {
    const c = await RawClient.connect(server.port);
    c.send({ opcode: Op.Close, payload: closePayload(1000, Buffer.from(reason, 'hex')) });
    await t.test(reason, (t) => expectServerClose(t, c, 1007).then(() => undefined));
  }
});

t.test('7.5.x a multi-byte UTF-8 reason is accepted', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Close, payload: closePayload(1001, 'κόσμε 𝄞 €') });
  await expectCloseReply(t, c, 1001);
});

const VALID = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999];
VALID.forEach((code, i) => {
  t.test(`7.7.${i + 1} valid close code ${code} is echoed`, async (t) => {
    const c = await RawClient.connect(server.port);
    c.send({ opcode: Op.Close, payload: closePayload(code) });
    await expectCloseReply(t, c, code);
  });
});

t.test('7.7.x registered codes 1012-1014 are echoed', async (t) => {
  for (const code of [1012, 1013, 1014]) {
    const c = await RawClient.connect(server.port);
    c.send({ opcode: Op.Close, payload: closePayload(code, 'reason') });
    await t.test(String(code), (t) => expectCloseReply(t, c, code));
  }
});

const INVALID = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999];
INVALID.forEach((code, i) => {
  t.test(`7.9.${i + 1} invalid close code ${code} fails with 1002`, async (t) => {
    const c = await RawClient.connect(server.port);
    c.send({ opcode: Op.Close, payload: closePayload(code) });
    await expectServerClose(t, c, 1002);
  });
});

[5000, 65535].forEach((code, i) => {
  t.test(`7.13.${i + 1} close code ${code} (beyond the ranges) fails with 1002`, async (t) => {
    const c = await RawClient.connect(server.port);
    c.send({ opcode: Op.Close, payload: closePayload(code, 'reason') });
    await expectServerClose(t, c, 1002);
  });
});

t.test('7.x an unmasked close fails with 1002', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Close, payload: closePayload(1000), mask: false });
  await expectServerClose(t, c, 1002);
});

t.test('7.x a fragmented close fails with 1002', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Close, payload: closePayload(1000), fin: false });
  await expectServerClose(t, c, 1002);
});

t.test('7.x close sent in chops of 1 byte', async (t) => {
  const c = await RawClient.connect(server.port);
  const frame = Buffer.from([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2]);
  await c.writeChopped(frame, 1, 2);
  await expectCloseReply(t, c, 1000);
});

t.test('7.x the server drops TCP when its close is never answered', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Text, payload: 'ok' }, { opcode: 3 });
  await expectEcho(t, c, Op.Text, 'ok');
  const start = Date.now();
  const r = await expectServerClose(t, c, 1002, { reply: false, timeoutMs: scaled(3000) });
  const ms = (c.endedAt || Date.now()) - start;
  t.ok(r && r.tcp !== 'timeout', 'TCP ended without our close reply');
  t.ok(ms <= scaled(CLOSE_TIMEOUT_MS + 1000), `TCP ended within close_timeout_ms (${ms} ms)`);
});

t.test('7.x after a close the connection ends even if the client keeps writing', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Close, payload: closePayload(1000) });
  for (let i = 0; i < 20 && !c.ended; i++) {
    c.send({ opcode: Op.Text, payload: 'still talking' });
    await delay(5);
  }
  const r = await c.expectClose(undefined, { reply: false });
  t.same(r.before.map(describeFrame), [], 'nothing but the close reply');
  t.equal(r.code, 1000, 'close 1000 echoed');
  // Bytes written after the server closed may draw a reset; either way TCP must end.
  t.not(r.tcp, 'timeout', `TCP ended (${r.tcp})`);
});

t.test('no error logged', async (t) => {
  t.same(server.errors(), []);
});
