/**
 * lapps.jwt through a real server: a Lua service verifies tokens sent in messages and answers
 * with the claims or the error, and signs tokens that Node's own crypto verifies; tokens
 * signed by Node (RS256, PS256, ES384, EdDSA; PEM, certificate and JWK keys) verify in Lua.
 * The refusals (alg none, HMAC keyed with a public key, wrong key, expiry, audience, issuer,
 * bad base64url, 100 KB) come back as `nil, err`; misuse raises.
 */
import t from 'tap';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type WebSocket from 'ws';

import { repoRoot, startTestServer, type TestServer } from '../helpers/server.js';
import { testPki } from '../helpers/pki.js';
import { ask, openWs, until } from '../helpers/ws.js';

const dir = path.join(repoRoot, 'test', 'lua', 'services', 'jwt');
const secret = 'a dev secret that is at least 32 bytes long';

type Reply = {
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  err?: string;
  raised?: string;
  token?: string;
};

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

function token(header: object, claims: object, signer: (input: Buffer) => Buffer): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(signer(Buffer.from(input)))}`;
}

const hs256 = (claims: object, key = secret): string =>
  token({ alg: 'HS256', typ: 'JWT' }, claims, (i) =>
    crypto.createHmac('sha256', key).update(i).digest(),
  );

let server: TestServer;
let ws: WebSocket;

async function call(req: object): Promise<Reply> {
  return JSON.parse(await ask(ws, JSON.stringify(req))) as Reply;
}
const verify = (tok: unknown, key: unknown, options: object): Promise<Reply> =>
  call({ op: 'verify', token: tok, key, options });

t.before(async () => {
  server = await startTestServer({
    workers: 1,
    services: [
      { name: 'jwt', request_target: '/jwt', source: path.join(dir, 'jwt.lua'), instances: 1 },
      {
        name: 'jwt_standalone',
        standalone: true,
        source: path.join(dir, 'jwt_standalone.lua'),
        preload: ['nap'],
        instances: 1,
      },
    ],
  });
  ws = await openWs(server.url('/jwt'));
});
t.teardown(async () => {
  ws?.close();
  await server?.stop();
});

t.test('HS256 from Node verifies; claims and header come back', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const tok = hs256({ sub: 'alice', nick: 'Alice', exp: now + 60, aud: ['chat', 'x'], iss: 'me' });
  const r = await verify(tok, secret, { algorithms: ['HS256'], aud: 'chat', iss: 'me' });
  t.equal(r.err, undefined);
  t.equal(r.claims?.nick, 'Alice');
  t.equal(r.claims?.exp, now + 60);
  t.same(r.claims?.aud, ['chat', 'x']);
  t.same(r.header, { alg: 'HS256', typ: 'JWT' });
});

t.test('refusals name why', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const opts = { algorithms: ['HS256'] };
  const none = `${b64url('{"alg":"none"}')}.${b64url('{"sub":"admin"}')}.`;
  t.equal((await verify(none, secret, opts)).err, 'algorithm not allowed: none');
  t.equal((await verify(hs256({ a: 1 }, `${secret}!`), secret, opts)).err, 'bad signature');
  t.equal((await verify(hs256({ exp: now - 10 }), secret, opts)).err, 'expired');
  t.equal(
    (await verify(hs256({ exp: now - 10 }), secret, { ...opts, leeway: 60 })).err,
    undefined,
    'leeway',
  );
  t.equal((await verify(hs256({ nbf: now + 600 }), secret, opts)).err, 'not yet valid');
  t.equal(
    (await verify(hs256({ aud: 'other' }), secret, { ...opts, aud: ['chat'] })).err,
    'audience mismatch',
  );
  t.equal(
    (await verify(hs256({ iss: 'evil' }), secret, { ...opts, iss: 'me' })).err,
    'issuer mismatch',
  );
  const good = hs256({ a: 1 });
  t.equal((await verify(`${good}=`, secret, opts)).err, 'malformed: bad base64url');
  t.equal(
    (await verify(good.slice(0, good.lastIndexOf('.')), secret, opts)).err,
    'malformed: not three dot-separated parts',
  );
  t.equal((await verify(null, secret, opts)).err, 'malformed: no token');
  const huge = hs256({ pad: 'x'.repeat(100 * 1024) });
  t.equal((await verify(huge, secret, opts)).err, 'malformed: longer than 65536 bytes');
  t.match(
    (await verify(good, 'short', opts)).err,
    /^algorithm not allowed: HS256 needs a secret of at least 32 bytes/,
  );
});

t.test('no algorithm confusion: HS256 keyed with the RSA public key PEM', async (t) => {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const forged = hs256({ sub: 'admin' }, pem);
  const r = await verify(forged, pem, { algorithms: ['HS256', 'RS256'] });
  t.equal(r.err, 'algorithm not allowed: HS256 needs a secret, not a public key');
  const rs = token({ alg: 'RS256' }, { sub: 'rs' }, (i) => crypto.sign('sha256', i, privateKey));
  t.equal((await verify(rs, pem, { algorithms: ['RS256'] })).claims?.sub, 'rs');
  t.equal(
    (await verify(rs, secret, { algorithms: ['RS256'] })).err,
    'algorithm not allowed: RS256 needs an RSA key',
  );
  const jwk = publicKey.export({ format: 'jwk' });
  const ps = token({ alg: 'PS256' }, { sub: 'ps' }, (i) =>
    crypto.sign('sha256', i, {
      key: privateKey,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    }),
  );
  t.equal((await verify(ps, jwk, { algorithms: ['PS256'] })).claims?.sub, 'ps', 'JWK table');
  t.equal(
    (await verify(ps, JSON.stringify(jwk), { algorithms: ['PS256'] })).claims?.sub,
    'ps',
    'JWK string',
  );
});

t.test('ES384 and EdDSA from Node verify; Lua signs what Node verifies', async (t) => {
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const es = token({ alg: 'ES384' }, { sub: 'es' }, (i) =>
    crypto.sign('sha384', i, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }),
  );
  const ecJwk = ec.publicKey.export({ format: 'jwk' });
  t.equal((await verify(es, ecJwk, { algorithms: ['ES384'] })).claims?.sub, 'es');
  const ed = crypto.generateKeyPairSync('ed25519');
  const eddsa = token({ alg: 'EdDSA' }, { sub: 'ed' }, (i) => crypto.sign(null, i, ed.privateKey));
  const edPem = ed.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  t.equal((await verify(eddsa, edPem, { algorithms: ['EdDSA'] })).claims?.sub, 'ed');

  // Lua signs with the private JWK / PEM; Node checks the signature.
  const check = (
    tok: string,
    alg: string | null,
    key: crypto.KeyObject,
    p1363 = false,
  ): boolean => {
    const [h, c, s] = tok.split('.');
    return crypto.verify(
      alg,
      Buffer.from(`${h}.${c}`),
      p1363 ? { key, dsaEncoding: 'ieee-p1363' } : key,
      Buffer.from(s!, 'base64url'),
    );
  };
  const signed = await call({
    op: 'sign',
    claims: { sub: 'from lua' },
    key: ec.privateKey.export({ format: 'jwk' }),
    alg: 'ES384',
  });
  t.ok(signed.token && check(signed.token, 'sha384', ec.publicKey, true), 'ES384 (r || s)');
  const edSigned = await call({
    op: 'sign',
    claims: { sub: 'ed from lua' },
    key: ed.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    alg: 'EdDSA',
  });
  t.ok(edSigned.token && check(edSigned.token, null, ed.publicKey), 'EdDSA');
  const hs = await call({ op: 'sign', claims: { sub: 'hs' }, key: secret, alg: 'HS512' });
  t.match(hs.err, /needs a secret of at least 64 bytes/);
  const hs2 = await call({ op: 'sign', claims: { sub: 'hs' }, key: secret, alg: 'HS256' });
  t.equal(
    hs2.token,
    hs256({ sub: 'hs' }).replace(
      b64url('{"alg":"HS256","typ":"JWT"}'),
      b64url('{"alg":"HS256","typ":"JWT"}'),
    ),
  );
  t.equal((await verify(hs2.token, secret, { algorithms: ['HS256'] })).claims?.sub, 'hs');
  const pub = await call({ op: 'sign', claims: {}, key: edPem, alg: 'EdDSA' });
  t.equal(pub.err, 'bad key: signing with EdDSA needs a private key');
});

t.test('a certificate is a verification key', async (t) => {
  const pki = testPki();
  const key = readFileSync(pki.clientKey, 'utf8');
  const cert = readFileSync(pki.clientCert, 'utf8');
  const signed = await call({ op: 'sign', claims: { sub: 'cert' }, key, alg: 'ES256' });
  t.ok(signed.token);
  t.equal((await verify(signed.token, cert, { algorithms: ['ES256'] })).claims?.sub, 'cert');
});

t.test('misuse raises', async (t) => {
  const good = hs256({ a: 1 });
  t.match((await verify(good, secret, {})).raised, /options.algorithms must be a non-empty list/);
  t.match(
    (await verify(good, secret, { algorithms: ['none'] })).raised,
    /"none" is not an algorithm lapps.jwt accepts/,
  );
  t.match((await verify(42, secret, { algorithms: ['HS256'] })).raised, /token must be a string/);
  t.match(
    (await call({ op: 'sign', claims: { a: 1 }, key: secret, alg: 'none' })).raised,
    /alg: "none" is not an algorithm/,
  );
  t.match(
    (await verify(good, 'k'.repeat(40), { algorithms: ['HS256'], aud: 5 })).raised,
    /options.aud must be a string or a list of strings/,
  );
  t.same(server.errors(), [], 'nothing logged as an error');
});

t.test('standalone services have lapps.jwt', async (t) => {
  await until(
    () => server.events.some((e) => e.message === 'jwt standalone standalone 7 HS256'),
    5000,
    'the standalone log line',
  );
  t.pass('signed and verified in init');
});
