/**
 * Development tokens: short-lived HS256 JWTs (RFC 7519) signed with a shared secret, so a
 * page or a script can sign in to a service that checks them with `lapps.jwt.verify` in its
 * `onConnect`. Issued by the static server's `POST /token` (config `static.dev_tokens`) and
 * by `lapps token`. A development aid: anyone who can reach the issuer gets a token for any
 * name; production tokens come from a real identity provider.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

/** HS256 secrets shorter than the hash are refused (RFC 7518 3.2), here and by lapps.jwt. */
export const MIN_SECRET_BYTES = 32;

/** Longest subject (the chat nickname) in bytes of UTF-8. */
export const MAX_SUBJECT_BYTES = 32;

/** Token lifetime bounds in seconds: at least 10 s, at most a day. */
export const MIN_TTL_S = 10;
export const MAX_TTL_S = 86_400;

/** A secret file that cannot be read, created, or is too short. */
export class SecretFileError extends Error {
  override readonly name = 'SecretFileError';
}

/** Claims of a development token. */
export interface DevClaims {
  sub: string;
  aud: string;
  iat: number;
  exp: number;
}

export interface IssueOptions {
  secret: Buffer;
  sub: string;
  audience: string;
  ttlS: number;
  /** Seconds since the epoch (default: the clock); tests mint expired tokens with it. */
  now?: number;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Signs `claims` as a compact HS256 JWS. Throws on a secret shorter than 32 bytes. */
export function signHs256(claims: object, secret: Buffer): string {
  if (secret.length < MIN_SECRET_BYTES) {
    throw new RangeError(
      `an HS256 secret needs at least ${MIN_SECRET_BYTES} bytes, got ${secret.length}`,
    );
  }
  const input = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/**
 * Why `sub` cannot be a token's subject, or undefined when it can: a string of 1 to 32
 * bytes of UTF-8 without control characters (it is shown to other users as a nickname).
 */
export function subjectProblem(sub: unknown): string | undefined {
  if (typeof sub !== 'string') return 'sub must be a string';
  const bytes = Buffer.byteLength(sub, 'utf8');
  if (bytes < 1 || bytes > MAX_SUBJECT_BYTES) {
    return `sub must be 1 to ${MAX_SUBJECT_BYTES} bytes of UTF-8, got ${bytes}`;
  }
  if (/[\u0000-\u001f\u007f-\u009f]/.test(sub)) return 'sub must not contain control characters';
  if (sub.trim() !== sub) return 'sub must not start or end with spaces';
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(sub)) {
    return 'sub must be valid Unicode (a lone surrogate)';
  }
  return undefined;
}

/** Issues a token; throws RangeError on a bad subject, lifetime or secret. */
export function issueToken(o: IssueOptions): { token: string; claims: DevClaims } {
  const problem = subjectProblem(o.sub);
  if (problem) throw new RangeError(problem);
  if (!Number.isInteger(o.ttlS) || o.ttlS < MIN_TTL_S || o.ttlS > MAX_TTL_S) {
    throw new RangeError(`ttl must be an integer from ${MIN_TTL_S} to ${MAX_TTL_S} seconds`);
  }
  const iat = Math.floor(o.now ?? Date.now() / 1000);
  const claims: DevClaims = { sub: o.sub, aud: o.audience, iat, exp: iat + o.ttlS };
  return { token: signHs256(claims, o.secret), claims };
}

/**
 * Reads a secret file: its bytes, less one trailing newline (so `echo ... > file` works).
 * With `create`, a missing file is written first (32 random bytes as 64 hex characters, mode
 * 0600, never over an existing file). Throws a SecretFileError naming the file when it cannot be read
 * or holds fewer than 32 bytes.
 */
export function readSecretFile(file: string, options: { create?: boolean } = {}): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !options.create) {
      throw new SecretFileError(`cannot read the token secret ${file}: ${(err as Error).message}`);
    }
    try {
      writeFileSync(file, `${randomBytes(MIN_SECRET_BYTES).toString('hex')}\n`, {
        flag: 'wx',
        mode: 0o600,
      });
    } catch (e) {
      // Another process created it meanwhile: read theirs.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new SecretFileError(
          `cannot create the token secret ${file}: ${(e as Error).message}`,
        );
      }
    }
    return readSecretFile(file);
  }
  let end = data.length;
  if (end > 0 && data[end - 1] === 0x0a) end--;
  if (end > 0 && data[end - 1] === 0x0d) end--;
  const secret = data.subarray(0, end);
  if (secret.length < MIN_SECRET_BYTES) {
    throw new SecretFileError(
      `the token secret ${file} holds ${secret.length} bytes; HS256 needs at least ${MIN_SECRET_BYTES}`,
    );
  }
  return secret;
}
