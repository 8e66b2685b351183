/**
 * Development tokens (lib/dev-token.ts): HS256 signatures checked independently with
 * node:crypto, the claims, subject and lifetime checks, and the secret file (created when
 * missing, never overwritten, too short refused).
 */
import t from 'tap';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  issueToken,
  MAX_SUBJECT_BYTES,
  readSecretFile,
  SecretFileError,
  signHs256,
  subjectProblem,
} from '../../lib/dev-token.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lapps-token-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const secret = Buffer.from('0123456789abcdef0123456789abcdef');

function parts(token: string): { header: unknown; claims: unknown; input: string; sig: string } {
  const [h, c, sig, ...rest] = token.split('.');
  if (!h || !c || !sig || rest.length) throw new Error(`not a JWS: ${token}`);
  const json = (s: string): unknown => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: json(h), claims: json(c), input: `${h}.${c}`, sig };
}

t.test('signHs256: a compact JWS whose HMAC-SHA256 checks', async (t) => {
  const token = signHs256({ sub: 'alice', n: 1 }, secret);
  t.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'base64url, no padding');
  const p = parts(token);
  t.same(p.header, { alg: 'HS256', typ: 'JWT' });
  t.same(p.claims, { sub: 'alice', n: 1 });
  t.equal(p.sig, createHmac('sha256', secret).update(p.input).digest('base64url'));
  t.not(
    p.sig,
    createHmac('sha256', Buffer.from('another secret of 32 bytes......'))
      .update(p.input)
      .digest('base64url'),
    'another secret signs differently',
  );
  t.throws(() => signHs256({}, Buffer.alloc(31, 1)), /at least 32 bytes, got 31/);
  t.doesNotThrow(() => signHs256({}, Buffer.alloc(32, 1)), '32 bytes are enough');
});

t.test('issueToken: sub, aud, iat and exp = iat + ttl', async (t) => {
  const { token, claims } = issueToken({
    secret,
    sub: 'bob',
    audience: 'chat',
    ttlS: 600,
    now: 1_000_000.7,
  });
  t.same(claims, { sub: 'bob', aud: 'chat', iat: 1_000_000, exp: 1_000_600 });
  t.same(parts(token).claims, claims);
  const now = Math.floor(Date.now() / 1000);
  const fresh = issueToken({ secret, sub: 'bob', audience: 'chat', ttlS: 10 }).claims;
  t.ok(fresh.iat >= now && fresh.iat <= now + 1, 'iat from the clock');
  for (const ttlS of [0, 9, 86_401, 1.5, NaN]) {
    t.throws(
      () => issueToken({ secret, sub: 'bob', audience: 'chat', ttlS }),
      /ttl must be an integer from 10 to 86400 seconds/,
      `ttl ${ttlS}`,
    );
  }
  t.throws(
    () => issueToken({ secret, sub: '', audience: 'chat', ttlS: 60 }),
    /sub must be 1 to 32 bytes/,
  );
});

t.test('subjectProblem: a nickname of 1 to 32 bytes, printable, valid Unicode', async (t) => {
  t.equal(subjectProblem('alice'), undefined);
  t.equal(subjectProblem('Zoë 🙂'), undefined, 'non-ASCII counted in UTF-8 bytes');
  t.equal(subjectProblem('x'.repeat(MAX_SUBJECT_BYTES)), undefined);
  const cases: [unknown, RegExp][] = [
    [undefined, /must be a string/],
    [42, /must be a string/],
    [['a'], /must be a string/],
    ['', /1 to 32 bytes of UTF-8, got 0/],
    ['x'.repeat(33), /got 33/],
    ['é'.repeat(17), /got 34/],
    ['a\nb', /control characters/],
    ['a\u0000', /control characters/],
    ['a\u0085', /control characters/],
    [' alice', /spaces/],
    ['alice ', /spaces/],
    ['a\uD800b', /lone surrogate/],
    ['\uDC00', /lone surrogate/],
  ];
  for (const [sub, why] of cases) t.match(subjectProblem(sub), why, JSON.stringify(sub));
});

t.test('readSecretFile', async (t) => {
  const given = path.join(dir, 'given.txt');
  writeFileSync(given, `${'s'.repeat(40)}\r\n`);
  t.equal(readSecretFile(given).toString(), 's'.repeat(40), 'one trailing newline ignored');

  const short = path.join(dir, 'short.txt');
  writeFileSync(short, `${'s'.repeat(31)}\n`);
  t.throws(() => readSecretFile(short), {
    name: 'SecretFileError',
    message: `the token secret ${short} holds 31 bytes; HS256 needs at least 32`,
  });
  t.throws(() => readSecretFile(short, { create: true }), SecretFileError, 'never replaced');
  t.equal(readFileSync(short, 'utf8'), `${'s'.repeat(31)}\n`, 'the short file is untouched');

  const missing = path.join(dir, 'missing.txt');
  t.throws(() => readSecretFile(missing), /cannot read the token secret .*missing\.txt: ENOENT/);

  const created = path.join(dir, 'created.txt');
  const first = readSecretFile(created, { create: true });
  t.match(first.toString(), /^[0-9a-f]{64}$/, '32 random bytes as hex');
  t.equal(statSync(created).mode & 0o777, 0o600, 'readable by its owner only');
  t.same(readSecretFile(created, { create: true }), first, 'read again, not regenerated');
  const other = path.join(dir, 'other.txt');
  t.not(readSecretFile(other, { create: true }).toString(), first.toString(), 'random');

  t.throws(
    () => readSecretFile(path.join(dir, 'no-such-dir', 'x.txt'), { create: true }),
    /cannot create the token secret .*ENOENT/,
  );
  t.throws(() => readSecretFile(dir), /cannot read the token secret .*EISDIR/, 'a directory');
});
