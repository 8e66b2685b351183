/**
 * The client's checks of incoming messages and of what it sends, without a socket.
 */
import t from 'tap';

import { checkIncoming, methodProblem, paramsProblem } from '../../lib/client/messages.js';

t.test('valid messages', async (t) => {
  t.same(checkIncoming({ cid: 0, status: 1, result: [1], id: 3 }), {
    ok: true,
    message: { kind: 'result', id: 3, result: [1] },
  });
  t.same(checkIncoming({ cid: 0, status: 1, result: null }), {
    ok: true,
    message: { kind: 'result', id: undefined, result: null },
  });
  t.same(checkIncoming({ cid: 0, status: 1, result: [], id: 5n }), {
    ok: true,
    message: { kind: 'result', id: 5, result: [] },
  });
  t.same(checkIncoming({ cid: 0, status: 0, error: { code: -32601, message: 'm', data: 7 } }), {
    ok: true,
    message: { kind: 'error', id: undefined, code: -32601, message: 'm', data: 7 },
  });
  t.same(checkIncoming({ cid: 5n, message: ['x'] }), {
    ok: true,
    message: { kind: 'oon', cid: 5, message: ['x'] },
  });
  t.same(checkIncoming({ cid: 0, status: 1, result: [], id: 'abc', extra: true }).ok, true);
});

t.test('invalid messages say why', async (t) => {
  const cases: [unknown, RegExp][] = [
    [null, /CBOR map/],
    [[1], /CBOR map/],
    [new Map([['cid', 0]]), /CBOR map/],
    [{}, /cid/],
    [{ cid: 1.5 }, /cid/],
    [{ cid: -1 }, /cid/],
    [{ cid: 2n ** 60n }, /cid/],
    [{ cid: 0 }, /status/],
    [{ cid: 0, status: '1', result: [] }, /status/],
    [{ cid: 0, status: 1 }, /needs result/],
    [{ cid: 0, status: 1, result: [], error: {} }, /carries no error/],
    [{ cid: 0, status: 0 }, /error = /],
    [{ cid: 0, status: 0, error: { code: 1 } }, /error = /],
    [{ cid: 0, status: 0, error: { code: 1.5, message: 'x' } }, /error = /],
    [{ cid: 0, status: 1, result: [], id: null }, /id must be/],
    [{ cid: 0, status: 1, result: [], id: 2 ** 60 }, /id must be/],
    [{ cid: 2, message: {} }, /message = /],
    [{ cid: 2, message: [], result: [] }, /carries message, not/],
  ];
  for (const [value, why] of cases) {
    const checked = checkIncoming(value);
    t.equal(
      checked.ok,
      false,
      JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)),
    );
    if (!checked.ok) t.match(checked.why, why);
  }
});

t.test('method names the server accepts', async (t) => {
  t.equal(methodProblem('echo'), undefined);
  t.equal(methodProblem('get_x'), undefined);
  t.match(methodProblem(''), /non-empty/);
  t.match(methodProblem(5), /non-empty/);
  t.match(methodProblem('a.b'), /'\.'/);
  t.match(methodProblem('_private'), /'_'/);
});

t.test('params the server could not read are refused before sending', async (t) => {
  const nested = (levels: number): unknown[] => {
    let p: unknown[] = [];
    for (let i = 0; i < levels; i++) p = [p];
    return p;
  };
  // The server decodes containers at depth 0..63; the message map is depth 0, params 1.
  t.equal(paramsProblem(nested(62)), undefined, 'deepest accepted nesting');
  t.match(paramsProblem(nested(63)), /deeper than the server accepts/);
  t.match(paramsProblem([{ a: { b: nested(62) } }]), /deeper/);
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  t.match(paramsProblem([cycle]), /deeper/, 'a cycle is refused, not a stack overflow');
  t.equal(paramsProblem([2n ** 64n - 1n, -(2n ** 64n) + 1n]), undefined, '64-bit extremes');
  t.match(paramsProblem([2n ** 64n]), /does not fit in 64 bits/);
  t.match(paramsProblem([{ x: [-(2n ** 64n)] }]), /does not fit in 64 bits/);
  t.equal(paramsProblem([new Uint8Array(10), new Date(0), 'x', null, undefined]), undefined);
  t.match(paramsProblem({}), /must be an array/);
  t.equal(paramsProblem(undefined), undefined);
});
