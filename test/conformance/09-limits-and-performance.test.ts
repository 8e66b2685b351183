/**
 * Autobahn 9.x (big messages, many fragments, many messages) run for correctness, not for
 * timing: messages up to the default 16 MiB limit are echoed intact, whole, as up to
 * 65,536 fragments, or written in small chops, and 1,000 messages sent back to back come
 * back complete and in order. Text payloads mix 1- to 4-byte characters, so fragments and
 * chops split code points.
 */
import t from 'tap';

import { startTestServer } from '../helpers/server.js';
import {
  encodeFrame,
  expectEcho,
  expectNormalClose,
  Op,
  payloadFor,
  RawClient,
  samePayload,
  scaled,
  type FrameSpec,
} from '../helpers/raw-client.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BIG_WAIT_MS = scaled(30_000);

// Default limits: 16 MiB must pass at the default max_message_size.
const server = await startTestServer();
t.teardown(() => server.stop());

const KINDS = [
  ['text', Op.Text],
  ['binary', Op.Binary],
] as const;

const SIZES = [64 * KiB, 256 * KiB, MiB, 4 * MiB, 8 * MiB, 16 * MiB];
const size = (n: number): string => (n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`);

KINDS.forEach(([kind, opcode], k) => {
  SIZES.forEach((n, i) => {
    t.test(`9.${k + 1}.${i + 1} ${kind} message of ${size(n)}`, async (t) => {
      const c = await RawClient.connect(server.port);
      const payload = payloadFor(opcode, n);
      c.send({ opcode, payload });
      await expectEcho(t, c, opcode, payload, BIG_WAIT_MS);
      await expectNormalClose(t, c);
    });
  });
});

const FRAGMENTS = [64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB];

KINDS.forEach(([kind, opcode], k) => {
  FRAGMENTS.forEach((fragment, i) => {
    t.test(
      `9.${k + 3}.${i + 1} 4 MiB ${kind} message in fragments of ${fragment} bytes`,
      async (t) => {
        const c = await RawClient.connect(server.port);
        const payload = payloadFor(opcode, 4 * MiB);
        const frames: FrameSpec[] = [];
        for (let at = 0; at < payload.length; at += fragment) {
          frames.push({
            opcode: at === 0 ? opcode : Op.Continuation,
            payload: payload.subarray(at, at + fragment),
            fin: at + fragment >= payload.length,
          });
        }
        await c.writeChopped(Buffer.concat(frames.map(encodeFrame)), MiB);
        await expectEcho(t, c, opcode, payload, BIG_WAIT_MS);
        await expectNormalClose(t, c);
      },
    );
  });
});

const CHOPS = [64, 128, 256, 512, 1024, 2048];

KINDS.forEach(([kind, opcode], k) => {
  CHOPS.forEach((chop, i) => {
    t.test(
      `9.${k + 5}.${i + 1} 1 MiB ${kind} message written in chops of ${chop} bytes`,
      async (t) => {
        const c = await RawClient.connect(server.port);
        const payload = payloadFor(opcode, MiB);
        await c.writeChopped(encodeFrame({ opcode, payload }), chop);
        await expectEcho(t, c, opcode, payload, BIG_WAIT_MS);
        await expectNormalClose(t, c);
      },
    );
  });
});

const COUNT_SIZES = [0, 16, 64, 256, 1024, 4096];

KINDS.forEach(([kind, opcode], k) => {
  COUNT_SIZES.forEach((n, i) => {
    t.test(`9.${k + 7}.${i + 1} 1000 ${kind} messages of ${n} bytes back to back`, async (t) => {
      const c = await RawClient.connect(server.port);
      // Each message is distinct so that loss, duplication or reordering shows.
      const payloads = Array.from({ length: 1000 }, (_, m) => {
        const p = payloadFor(opcode, n);
        if (n >= 4) p.write(String(m).padStart(4, '0'), 0, 'latin1');
        return p;
      });
      await c.writeChopped(
        Buffer.concat(payloads.map((payload) => encodeFrame({ opcode, payload }))),
        64 * KiB,
      );
      let ok = 0;
      for (const [m, want] of payloads.entries()) {
        try {
          const got = await c.readMessage(BIG_WAIT_MS);
          if (got.opcode === opcode && got.payload.equals(want)) ok++;
          else samePayload(t, got.payload, want, `message ${m}`);
        } catch (e) {
          t.fail(`message ${m}: ${(e as Error).message}`);
          break;
        }
      }
      t.equal(ok, 1000, 'all 1000 echoed intact and in order');
      await expectNormalClose(t, c);
    });
  });
});

t.test('9.7.x 1000 round trips of 16-byte messages, one at a time', async (t) => {
  const c = await RawClient.connect(server.port);
  let ok = 0;
  for (let m = 0; m < 1000; m++) {
    const payload = Buffer.from(`msg-${String(m).padStart(12, '0')}`);
    c.send({ opcode: Op.Text, payload });
    const got = await c.readMessage().catch(() => undefined);
    if (!got) break;
    if (got.payload.equals(payload)) ok++;
  }
  t.equal(ok, 1000, 'all answered in turn');
  await expectNormalClose(t, c);
});

t.test('9.x four clients with 4 MiB messages at once', async (t) => {
  await Promise.all(
    [0, 1, 2, 3].map(async (i) => {
      const c = await RawClient.connect(server.port);
      const opcode = i % 2 ? Op.Binary : Op.Text;
      const payload = payloadFor(opcode, 4 * MiB);
      c.send({ opcode, payload }, { opcode, payload });
      await expectEcho(t, c, opcode, payload, BIG_WAIT_MS);
      await expectEcho(t, c, opcode, payload, BIG_WAIT_MS);
      await expectNormalClose(t, c);
    }),
  );
});

t.test('no error logged', async (t) => {
  t.same(server.errors(), []);
});
