/**
 * Test certificates made with the openssl command (Debian package openssl, installed by
 * .ci/run): a CA, server certificates it signs (localhost + 127.0.0.1 + ::1, and a second
 * name for SNI), a client certificate it signs, and a client certificate from another CA.
 * Made once per test process in a temporary directory; nothing is committed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Pki {
  dir: string;
  /** CA certificate (PEM path) that signs everything below except `strangerCert`. */
  ca: string;
  /** localhost, 127.0.0.1, ::1 */
  serverCert: string;
  serverKey: string;
  /** other.test and *.other.test */
  otherCert: string;
  otherKey: string;
  clientCert: string;
  clientKey: string;
  /** Signed by a CA the server does not know. */
  strangerCert: string;
  strangerKey: string;
  /** PEM contents, for Node's tls options. */
  caPem: Buffer;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A key and a certificate signed by `caName` (or self-signed CA when caName is undefined). */
function issue(dir: string, name: string, subject: string, ext: string, caName?: string): void {
  openssl(
    ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`],
    dir,
  );
  writeFileSync(path.join(dir, `${name}.ext`), ext);
  if (caName === undefined) {
    openssl(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        `${name}.key`,
        '-subj',
        subject,
        '-days',
        '30',
        '-sha256',
        '-extensions',
        'v3',
        '-config',
        `${name}.ext`,
        '-out',
        `${name}.crt`,
      ],
      dir,
    );
    return;
  }
  openssl(['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${caName}.crt`,
      '-CAkey',
      `${caName}.key`,
      '-CAcreateserial',
      '-days',
      '30',
      '-sha256',
      '-extfile',
      `${name}.ext`,
      '-extensions',
      'v3',
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
}

const CA_EXT = `[req]
distinguished_name = dn
[dn]
[v3]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;

function leafExt(san: string, usage: string): string {
  return `[v3]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = ${usage}
subjectAltName = ${san}
`;
}

let cached: Pki | undefined;

export function testPki(): Pki {
  if (cached) return cached;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lapps-pki-'));
  issue(dir, 'ca', '/CN=lapps test CA', CA_EXT);
  issue(
    dir,
    'server',
    '/CN=localhost',
    leafExt('DNS:localhost,IP:127.0.0.1,IP:::1', 'serverAuth'),
    'ca',
  );
  issue(
    dir,
    'other',
    '/CN=other.test',
    leafExt('DNS:other.test,DNS:*.other.test', 'serverAuth'),
    'ca',
  );
  issue(dir, 'client', '/CN=lapps test client', leafExt('DNS:client.test', 'clientAuth'), 'ca');
  issue(dir, 'stranger-ca', '/CN=somebody else', CA_EXT);
  issue(dir, 'stranger', '/CN=stranger', leafExt('DNS:stranger.test', 'clientAuth'), 'stranger-ca');
  const p = (f: string): string => path.join(dir, f);
  cached = {
    dir,
    ca: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    otherCert: p('other.crt'),
    otherKey: p('other.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    strangerCert: p('stranger.crt'),
    strangerKey: p('stranger.key'),
    caPem: readFileSync(p('ca.crt')),
  };
  return cached;
}
