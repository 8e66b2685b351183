/**
 * Autobahn 6.x (UTF-8 in text messages, RFC 6455 §5.6 and §8.1, RFC 3629): valid text is
 * echoed byte for byte, invalid text fails the connection with 1007 — and fails fast, at
 * the first byte that cannot start or continue a valid sequence, even when the rest of
 * the frame or message has not been sent (Autobahn 6.4.x).
 *
 * Each test vector (Markus Kuhn's UTF-8 decoder test, as Autobahn 6.5-6.23 uses it) is
 * sent as one frame, as one frame chopped byte by byte, and as 1-byte fragments; each
 * invalid vector whose error is visible before its end is also sent only up to the bad
 * byte, in a non-final fragment and in a frame that declares more bytes than it sends.
 */
import t from 'tap';

import { startTestServer } from '../helpers/server.js';
import {
  delay,
  describeFrame,
  encodeFrame,
  expectEcho,
  expectNormalClose,
  expectServerClose,
  isUtf8,
  Op,
  RawClient,
  scaled,
  WAIT_MS,
  type FrameSpec,
} from '../helpers/raw-client.js';

const server = await startTestServer();
t.teardown(() => server.stop());

/** How long a server may take to notice a bad byte it already has. */
const FAIL_FAST_MS = scaled(2000);

/**
 * Reference check from the RFC 3629 §4 grammar: the index of the first byte at which `b`
 * stops being a prefix of valid UTF-8 (-1 if none) and whether it ends on a character.
 */
function utf8Scan(b: Buffer): { bad: number; complete: boolean } {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c === 0xe0) [need, lo] = [2, 0xa0];
    else if (c === 0xed) [need, hi] = [2, 0x9f];
    else if (c >= 0xe1 && c <= 0xef) need = 2;
    else if (c === 0xf0) [need, lo] = [3, 0x90];
    else if (c === 0xf4) [need, hi] = [3, 0x8f];
    else if (c >= 0xf1 && c <= 0xf3) need = 3;
    else return { bad: i, complete: false };
    for (let k = 1; k <= need; k++) {
      if (i + k >= b.length) return { bad: -1, complete: false };
      const d = b[i + k]!;
      if (d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) {
        return { bad: i + k, complete: false };
      }
    }
    i += need + 1;
  }
  return { bad: -1, complete: true };
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const range = (from: number, to: number, after: number[] = []): Buffer =>
  Buffer.from(Array.from({ length: to - from + 1 }, (_, i) => [from + i, ...after]).flat());
const utf8 = (codePoint: number): Buffer => Buffer.from(String.fromCodePoint(codePoint));

const KOSME = hex('cebae1bdb9cf83cebcceb5');

/** Autobahn 6.5-6.23: [case group, description, vectors]. Validity comes from utf8Scan. */
const GROUPS: [string, string, Buffer[]][] = [
  [
    '6.5',
    'some valid UTF-8 sequences',
    [
      KOSME,
      Buffer.from('hello\x24world', 'latin1'),
      hex('68656c6c6f c2a2 776f726c64'),
      hex('68656c6c6f e282ac 776f726c64'),
      hex('68656c6c6f f0a4ada2 776f726c64'),
    ],
  ],
  [
    '6.6',
    'every prefix of "κόσμε"',
    Array.from({ length: KOSME.length }, (_, i) => KOSME.subarray(0, i + 1)),
  ],
  [
    '6.7',
    'first sequence of each length',
    [hex('00'), hex('c280'), hex('e0a080'), hex('f0908080')],
  ],
  ['6.8', 'first 5- and 6-byte sequences', [hex('f888808080'), hex('fc8480808080')]],
  ['6.9', 'last sequence of each length', [hex('7f'), hex('dfbf'), hex('efbfbf'), hex('f48fbfbf')]],
  [
    '6.10',
    'last 4-, 5- and 6-byte forms',
    [hex('f7bfbfbf'), hex('fbbfbfbfbf'), hex('fdbfbfbfbfbf')],
  ],
  [
    '6.11',
    'other boundary conditions',
    [hex('ed9fbf'), hex('ee8080'), hex('efbfbd'), hex('f48fbfbf'), hex('f4908080')],
  ],
  [
    '6.12',
    'unexpected continuation bytes',
    [
      hex('80'),
      hex('bf'),
      hex('80bf'),
      hex('80bf80'),
      hex('80bf80bf'),
      hex('80bf80bf80'),
      hex('80bf80bf80bf'),
      range(0x80, 0xbf),
    ],
  ],
  [
    '6.13',
    'lonely start bytes, each followed by a space',
    [
      range(0xc0, 0xdf, [0x20]),
      range(0xe0, 0xef, [0x20]),
      range(0xf0, 0xf7, [0x20]),
      range(0xf8, 0xfb, [0x20]),
      range(0xfc, 0xfd, [0x20]),
    ],
  ],
  [
    '6.14',
    'sequences with the last continuation byte missing',
    [
      hex('c0'),
      hex('e080'),
      hex('f08080'),
      hex('f8808080'),
      hex('fc80808080'),
      hex('df'),
      hex('efbf'),
      hex('f7bfbf'),
      hex('fbbfbfbf'),
      hex('fdbfbfbfbf'),
    ],
  ],
  [
    '6.15',
    'concatenation of incomplete sequences',
    [hex('c0 e080 f08080 f8808080 fc80808080 df efbf f7bfbf fbbfbfbf fdbfbfbfbf')],
  ],
  ['6.16', 'impossible bytes', [hex('fe'), hex('ff'), hex('fefeffff')]],
  [
    '6.17',
    'overlong ASCII "/"',
    [hex('c0af'), hex('e080af'), hex('f08080af'), hex('f8808080af'), hex('fc80808080af')],
  ],
  [
    '6.18',
    'maximum overlong sequences',
    [hex('c1bf'), hex('e09fbf'), hex('f08fbfbf'), hex('f887bfbfbf'), hex('fc83bfbfbfbf')],
  ],
  [
    '6.19',
    'overlong NUL',
    [hex('c080'), hex('e08080'), hex('f0808080'), hex('f880808080'), hex('fc8080808080')],
  ],
  [
    '6.20',
    'single UTF-16 surrogates',
    [0xd800, 0xdb7f, 0xdb80, 0xdbff, 0xdc00, 0xdf80, 0xdfff].map((s) =>
      Buffer.from([0xe0 | (s >> 12), 0x80 | ((s >> 6) & 0x3f), 0x80 | (s & 0x3f)]),
    ),
  ],
  [
    '6.21',
    'paired UTF-16 surrogates',
    [
      'eda080edb080',
      'eda080edbfbf',
      'edadbfedb080',
      'edadbfedbfbf',
      'edae80edb080',
      'edae80edbfbf',
      'edafbfedb080',
      'edafbfedbfbf',
    ].map(hex),
  ],
  [
    '6.22',
    'noncharacters (valid UTF-8)',
    [
      utf8(0xfffe),
      utf8(0xffff),
      ...Array.from({ length: 16 }, (_, p) => [
        utf8(((p + 1) << 16) | 0xfffe),
        utf8(((p + 1) << 16) | 0xffff),
      ]).flat(),
    ],
  ],
  [
    '6.23',
    'Unicode specials U+FFF9..U+FFFF',
    Array.from({ length: 7 }, (_, i) => utf8(0xfff9 + i)),
  ],
];

/** Reads how the server answered a text message and reduces it to one comparable line. */
async function outcome(
  c: RawClient,
  want: Buffer | undefined,
  timeoutMs = WAIT_MS,
): Promise<string> {
  let result: string;
  try {
    if (want) {
      const m = await c.readMessage(timeoutMs);
      if (m.opcode !== Op.Text || !m.payload.equals(want)) {
        result = `wrong echo: op=${m.opcode} ${m.payload.toString('hex')}`;
      } else {
        const r = await c.closeHandshake();
        result =
          r.code === 1000 && r.tcp === 'fin' ? 'echoed' : `echoed, then close ${r.code} ${r.tcp}`;
      }
    } else {
      const r = await c.expectClose(timeoutMs);
      result = `close ${r.code}`;
      if (r.before.length) result += ` after ${r.before.map(describeFrame).join('; ')}`;
      if (r.tcp === 'timeout') result += ', TCP left open';
    }
  } catch (e) {
    result = (e as Error).message;
  }
  if (c.violations.length) result += ` [${c.violations.join('; ')}]`;
  c.destroy();
  return result;
}

const WANT_FAIL = 'close 1007';

/** The ways one vector is sent, each resolving to an outcome line. */
function variants(v: Buffer): [string, () => Promise<string>][] {
  const valid = isUtf8(v);
  const want = valid ? v : undefined;
  const list: [string, () => Promise<string>][] = [
    [
      'one frame',
      async () => {
        const c = await RawClient.connect(server.port);
        c.send({ opcode: Op.Text, payload: v });
        return outcome(c, want);
      },
    ],
    [
      'one frame, byte by byte',
      async () => {
        const c = await RawClient.connect(server.port);
        await c.writeChopped(encodeFrame({ opcode: Op.Text, payload: v }), 1);
        return outcome(c, want);
      },
    ],
    [
      '1-byte fragments',
      async () => {
        const c = await RawClient.connect(server.port);
        c.send(
          ...[...v].map((byte, i): FrameSpec => ({
            opcode: i === 0 ? Op.Text : Op.Continuation,
            payload: Buffer.from([byte]),
            fin: i === v.length - 1,
          })),
        );
        return outcome(c, want);
      },
    ],
  ];
  const { bad } = utf8Scan(v);
  if (bad >= 0) {
    const upToBad = v.subarray(0, bad + 1);
    list.push(
      [
        'fail-fast: fragment ending at the bad byte, FIN=0, rest never sent',
        async () => {
          const c = await RawClient.connect(server.port);
          c.send({ opcode: Op.Text, payload: upToBad, fin: false });
          return outcome(c, undefined, FAIL_FAST_MS);
        },
      ],
      [
        'fail-fast: frame cut after the bad byte, rest never sent',
        async () => {
          const c = await RawClient.connect(server.port);
          const frame = encodeFrame({
            opcode: Op.Text,
            payload: Buffer.concat([v, Buffer.from('edited')]),
          });
          const headerLength = frame.length - v.length - 6;
          c.write(frame.subarray(0, headerLength + bad + 1));
          return outcome(c, undefined, FAIL_FAST_MS);
        },
      ],
    );
  }
  return list;
}

/** Runs at most `n` tasks at once (the vector cases run concurrently, see below). */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

// Every variant of every vector starts now, 32 connections at a time, so a server that
// does not fail fast costs one FAIL_FAST_MS per batch rather than per case; the subtests
// below only collect the outcomes in order.
const limit = limiter(32);

GROUPS.forEach(([group, description, vectors]) => {
  vectors.forEach((v, i) => {
    const valid = isUtf8(v);
    const name = `${group}.${i + 1} ${description}: ${v.length > 16 ? `${v.length} bytes` : v.toString('hex')} (${valid ? 'valid' : 'invalid'})`;
    const list = variants(v);
    const results = list.map(([, run]) => limit(run));
    t.test(name, async (t) => {
      const scan = utf8Scan(v);
      t.equal(scan.bad < 0 && scan.complete, valid, 'reference validators agree');
      for (const [k, [how]] of list.entries()) {
        t.equal(await results[k], valid ? 'echoed' : WANT_FAIL, how);
      }
    });
  });
});

// 6.1-6.4: the cases built from fragments and chops rather than from one vector.

t.test('6.1.1 empty text message', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Text });
  await expectEcho(t, c, Op.Text, '');
  await expectNormalClose(t, c);
});

t.test('6.1.2 text message of 3 empty fragments', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(
    { opcode: Op.Text, fin: false },
    { opcode: Op.Continuation, fin: false },
    { opcode: Op.Continuation, fin: true },
  );
  await expectEcho(t, c, Op.Text, '');
  await expectNormalClose(t, c);
});

t.test('6.1.3 text message of 3 fragments, first and last empty', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(
    { opcode: Op.Text, fin: false },
    { opcode: Op.Continuation, payload: 'middle frame payload', fin: false },
    { opcode: Op.Continuation, fin: true },
  );
  await expectEcho(t, c, Op.Text, 'middle frame payload');
  await expectNormalClose(t, c);
});

const HELLO = Buffer.from('Hello-µ@ßöäüàá-UTF-8!!');

t.test('6.2.1 valid UTF-8 in one frame', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Text, payload: HELLO });
  await expectEcho(t, c, Op.Text, HELLO);
  await expectNormalClose(t, c);
});

t.test('6.2.2 valid UTF-8 in 2 fragments split on a code point boundary', async (t) => {
  const c = await RawClient.connect(server.port);
  const cut = Buffer.from('Hello-µ@ßöä').length;
  c.send(
    { opcode: Op.Text, payload: HELLO.subarray(0, cut), fin: false },
    { opcode: Op.Continuation, payload: HELLO.subarray(cut) },
  );
  await expectEcho(t, c, Op.Text, HELLO);
  await expectNormalClose(t, c);
});

for (const [n, text] of [
  [3, HELLO],
  [4, KOSME],
] as const) {
  t.test(`6.2.${n} valid UTF-8 in 1-byte fragments (${text.length} bytes)`, async (t) => {
    const c = await RawClient.connect(server.port);
    c.send(
      ...[...text].map((byte, i): FrameSpec => ({
        opcode: i === 0 ? Op.Text : Op.Continuation,
        payload: Buffer.from([byte]),
        fin: i === text.length - 1,
      })),
    );
    await expectEcho(t, c, Op.Text, text);
    await expectNormalClose(t, c);
  });
}

const BAD = hex('cebae1bdb9cf83cebcceb5 eda080 656469746564');

t.test('6.3.1 invalid UTF-8 (a surrogate) in one frame fails with 1007', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Text, payload: BAD });
  await expectServerClose(t, c, 1007);
});

t.test('6.3.2 the same in 1-byte fragments fails with 1007', async (t) => {
  const c = await RawClient.connect(server.port);
  c.send(
    ...[...BAD].map((byte, i): FrameSpec => ({
      opcode: i === 0 ? Op.Text : Op.Continuation,
      payload: Buffer.from([byte]),
      fin: i === BAD.length - 1,
    })),
  );
  await expectServerClose(t, c, 1007);
});

/**
 * 6.4.x fail fast: send the parts up to and including the one with the bad byte, expect
 * 1007 before anything else is sent; only then would the last part go out.
 */
const FAST: [string, string, Buffer[], boolean][] = [
  ['6.4.1', '3 fragments, the 2nd invalid', [KOSME, hex('f4908080'), hex('656469746564')], true],
  [
    '6.4.2',
    '3 fragments, the bad byte alone in the 2nd',
    [hex('cebae1bdb9cf83cebcceb5f4'), hex('90'), hex('8080656469746564')],
    true,
  ],
  ['6.4.3', 'one frame in 3 chops', [KOSME, hex('f4908080'), hex('656469746564')], false],
  [
    '6.4.4',
    'one frame in 3 chops, the bad byte alone in the 2nd',
    [hex('cebae1bdb9cf83cebcceb5f4'), hex('90'), hex('8080656469746564')],
    false,
  ],
];

for (const [id, what, parts, fragmented] of FAST) {
  t.test(`${id} fail fast on invalid UTF-8: ${what}`, async (t) => {
    const c = await RawClient.connect(server.port);
    const [p1, p2] = [parts[0]!, parts[1]!];
    if (fragmented) {
      c.send({ opcode: Op.Text, payload: p1, fin: false });
    } else {
      const frame = encodeFrame({ opcode: Op.Text, payload: Buffer.concat(parts) });
      const head = frame.length - Buffer.concat(parts).length;
      c.write(frame.subarray(0, head + p1.length));
      await delay(scaled(100));
      t.same(c.pending().map(describeFrame), [], 'the valid first part is accepted');
      c.write(frame.subarray(head + p1.length, head + p1.length + p2.length));
      await expectServerClose(t, c, 1007, { timeoutMs: FAIL_FAST_MS });
      return;
    }
    await delay(scaled(100));
    t.same(c.pending().map(describeFrame), [], 'the valid first fragment is accepted');
    c.send({ opcode: Op.Continuation, payload: p2, fin: false });
    await expectServerClose(t, c, 1007, { timeoutMs: FAIL_FAST_MS });
  });
}

t.test('6.x noncharacters U+FDD0..U+FDEF are valid', async (t) => {
  const v = Buffer.concat(Array.from({ length: 32 }, (_, i) => utf8(0xfdd0 + i)));
  const list = variants(v);
  const results = await Promise.all(list.map(([, run]) => run()));
  list.forEach(([how], k) => t.equal(results[k], 'echoed', how));
});

t.test('6.x invalid UTF-8 after a long valid prefix split over fragments', async (t) => {
  const prefix = Buffer.from('κόσμε'.repeat(2000));
  const c = await RawClient.connect(server.port);
  c.send(
    { opcode: Op.Text, payload: prefix.subarray(0, 4097), fin: false },
    { opcode: Op.Continuation, payload: prefix.subarray(4097), fin: false },
    { opcode: Op.Continuation, payload: hex('c0'), fin: false },
  );
  await expectServerClose(t, c, 1007, { timeoutMs: FAIL_FAST_MS });
});

t.test('6.x a valid message after many valid ones keeps validating per message', async (t) => {
  // A cut code point at the end of one message may not be completed by the next one.
  const c = await RawClient.connect(server.port);
  c.send({ opcode: Op.Text, payload: 'ok' });
  await expectEcho(t, c, Op.Text, 'ok');
  c.send(
    { opcode: Op.Text, payload: hex('68c3'), fin: true },
    { opcode: Op.Text, payload: hex('a9'), fin: true },
  );
  await expectServerClose(t, c, 1007);
});

t.test('6.x binary messages are not validated', async (t) => {
  const c = await RawClient.connect(server.port);
  const payload = hex('c0af eda080 fe ff f4908080');
  c.send({ opcode: Op.Binary, payload });
  await expectEcho(t, c, Op.Binary, payload);
  await expectNormalClose(t, c);
});

t.test('no error logged', async (t) => {
  t.same(server.errors(), []);
});
