/**
 * The development static file server (config key `static`): serves a directory over plain
 * HTTP, plus the browser build of the LAppS client at /lapps-client.js, so a page and its
 * services run from one `lapps start`; with `dev_tokens`, POST /token issues development
 * tokens (lib/dev-token.ts). Not meant for production traffic: no caching headers beyond
 * no-store, no compression, no range requests.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import type { DevTokensConfig, StaticConfig } from './config/types.js';
import { issueToken, readSecretFile, subjectProblem } from './dev-token.js';
import { packageRoot } from './package-root.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

export interface StaticServer {
  /** http://host:port/ with the bound port. */
  url: string;
  /** The bound port. */
  port: number;
  close(): Promise<void>;
}

/** The file a request path names inside `root`, or undefined (outside it, or missing). */
export function resolveStatic(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath.split('?')[0] ?? '/');
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  let file = path.resolve(root, `.${path.posix.normalize(`/${decoded}`)}`);
  if (file !== root && !file.startsWith(root + path.sep)) return undefined;
  if (existsSync(file) && statSync(file).isDirectory()) file = path.join(file, 'index.html');
  return existsSync(file) && statSync(file).isFile() ? file : undefined;
}

/** Largest POST /token body: `{"sub": "..."}` needs a few dozen bytes. */
export const MAX_TOKEN_REQUEST_BYTES = 1024;

function sendJson(res: http.ServerResponse, status: number, body: object, headers = {}): void {
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(`${JSON.stringify(body)}\n`);
}

/**
 * POST /token: `{"sub": "alice"}` (application/json) → 200 `{"token", "sub", "exp"}`, or
 * 4xx `{"error"}` saying what was wrong. A page of another origin is refused (403): the
 * endpoint hands out tokens to whoever asks, so at least other sites' pages must not.
 */
function tokenEndpoint(tokens: DevTokensConfig, secret: Buffer): http.RequestListener {
  return (req, res) => {
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: 'POST a JSON body {"sub": "name"}' }, { Allow: 'POST' });
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`) {
      sendJson(res, 403, { error: `origin ${origin} may not ask for tokens` });
      return;
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      sendJson(res, 415, { error: 'the body must be application/json: {"sub": "name"}' });
      return;
    }
    // Too big: answered at once, and the connection closed after the answer (Node then
    // drops what else the client sends) rather than reset, so the client can read why.
    const tooBig = (): void =>
      sendJson(
        res,
        413,
        { error: `the body is limited to ${MAX_TOKEN_REQUEST_BYTES} bytes` },
        { Connection: 'close' },
      );
    if (Number(req.headers['content-length'] ?? 0) > MAX_TOKEN_REQUEST_BYTES) {
      tooBig();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (res.headersSent) return;
      size += chunk.length;
      // Chunked bodies have no Content-Length: stop keeping it as soon as it is too big.
      if (size > MAX_TOKEN_REQUEST_BYTES) tooBig();
      else chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      let body: unknown;
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
      } catch {
        sendJson(res, 400, { error: 'the body is not valid UTF-8' });
        return;
      }
      try {
        body = JSON.parse(text);
      } catch {
        sendJson(res, 400, { error: 'the body is not JSON: send {"sub": "name"}' });
        return;
      }
      const sub = (body as { sub?: unknown } | null)?.sub;
      const problem =
        typeof body !== 'object' || body === null || Array.isArray(body)
          ? 'the body must be a JSON object: {"sub": "name"}'
          : subjectProblem(sub);
      if (problem) {
        sendJson(res, 400, { error: problem });
        return;
      }
      const { token, claims } = issueToken({
        secret,
        sub: sub as string,
        audience: tokens.audience,
        ttlS: tokens.ttl_s,
      });
      sendJson(res, 200, { token, sub: claims.sub, exp: claims.exp });
    });
  };
}

/**
 * Starts the server; resolves once it listens. With `dev_tokens`, the secret file is read
 * (created when missing) first: a secret that is too short stops the start.
 */
export function startStaticServer(config: StaticConfig): Promise<StaticServer> {
  const root = path.resolve(config.dir);
  const bundle = path.join(packageRoot(), 'dist', 'browser');
  const tokens = config.dev_tokens;
  let issue: http.RequestListener | undefined;
  try {
    if (tokens) issue = tokenEndpoint(tokens, readSecretFile(tokens.secret_file, { create: true }));
  } catch (err) {
    return Promise.reject(err as Error);
  }
  const server = http.createServer((req, res) => {
    if (issue && (req.url === '/token' || req.url?.startsWith('/token?'))) {
      issue(req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('method not allowed\n');
      return;
    }
    const urlPath = req.url ?? '/';
    const file = urlPath.startsWith('/lapps-client.js')
      ? resolveStatic(bundle, urlPath)
      : resolveStatic(root, urlPath);
    if (!file) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      const { port } = server.address() as AddressInfo;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      resolve({
        url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/`,
        port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
