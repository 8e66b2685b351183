/**
 * Reconnect delays: growth, the cap, the jitter range, option checks.
 */
import t from 'tap';

import { backoffDelay, defaultReconnect, reconnectOptions } from '../../lib/client/backoff.js';

const o = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 };

t.test('grows by factor up to the cap', async (t) => {
  const noJitter = { ...o, jitter: 0 };
  t.same(
    [0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, noJitter)),
    [100, 200, 400, 800, 1000, 1000],
  );
  t.equal(backoffDelay(10_000, noJitter), 1000, 'a long outage stays at the cap');
});

t.test('jitter takes up to that fraction off', async (t) => {
  t.equal(
    backoffDelay(1, o, () => 0),
    200,
    'random 0: the full delay',
  );
  t.equal(
    backoffDelay(1, o, () => 0.999999),
    100,
    'random ~1: half of it',
  );
  t.equal(
    backoffDelay(1, { ...o, jitter: 1 }, () => 0.5),
    100,
    'full jitter',
  );
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(3, o);
    if (d < 400 || d > 800) t.fail(`delay ${d} outside [400, 800]`);
  }
});

t.test('options: defaults fill in, bad values are refused', async (t) => {
  t.same(reconnectOptions({}), defaultReconnect);
  t.same(reconnectOptions({ factor: 3 }), { ...defaultReconnect, factor: 3 });
  t.throws(() => reconnectOptions({ initialDelayMs: -1 }), RangeError);
  t.throws(() => reconnectOptions({ initialDelayMs: 100, maxDelayMs: 50 }), RangeError);
  t.throws(() => reconnectOptions({ factor: 0.5 }), RangeError);
  t.throws(() => reconnectOptions({ jitter: 2 }), RangeError);
  t.throws(() => reconnectOptions({ jitter: NaN }), RangeError);
});
