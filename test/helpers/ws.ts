/**
 * Small promise helpers around the `ws` client for tests: open, ask-and-wait, close.
 */
import net from 'node:net';

import WebSocket from 'ws';

import { testPki } from './pki.js';
import { scaled } from './raw-client.js';

/**
 * Opens a client and waits for the handshake; rejects on error or after `ms`. `options`
 * go to `ws` (e.g. `ca` for wss://).
 */
export function openWs(
  url: string,
  ms = 5000,
  options: WebSocket.ClientOptions = {},
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    const timer = setTimeout(() => reject(new Error(`open ${url}: timeout`)), ms);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Waits for the next message on `ws` (as text). */
export function nextMessage(ws: WebSocket, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('message: timeout')), ms);
    ws.once('message', (data: WebSocket.RawData) => {
      clearTimeout(timer);
      resolve(data.toString());
    });
  });
}

/** Sends `text` and resolves with the reply. */
export async function ask(ws: WebSocket, text: string): Promise<string> {
  const reply = nextMessage(ws);
  ws.send(text);
  return reply;
}

/** Resolves with the close code and reason the client saw. */
export function closed(ws: WebSocket, ms = 5000): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    if (ws.readyState === WebSocket.CLOSED) {
      reject(new Error('already closed'));
      return;
    }
    const timer = setTimeout(() => reject(new Error('close: timeout')), ms);
    ws.once('close', (code: number, reason: Buffer) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

/** Polls `cond` until true or `ms` passes. */
export async function until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Sends a WebSocket handshake for `target` over a raw socket and resolves with the HTTP
 * status of the answer and, for a refusal, its body (the server closes after it). Lets a
 * test read what `ws` and fetch do not show: a refusal's status and body.
 */
export function handshakeAnswer(
  port: number,
  target: string,
  extra: string[] = [],
  ms = 8000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`handshake ${target}: no answer`));
    }, ms);
    const done = (): void => {
      clearTimeout(timer);
      sock.destroy();
      const text = got.toString();
      const end = text.indexOf('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: end < 0 ? '' : text.slice(end + 4) });
    };
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.toString().startsWith('HTTP/1.1 101') && got.includes('\r\n\r\n')) done();
    });
    sock.on('close', done);
    sock.on('error', () => {});
    sock.write(
      [
        `GET ${target} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        ...extra,
        '',
        '',
      ].join('\r\n'),
    );
  });
}

/** Opens a wss:// client that trusts the test CA (helpers/pki.ts). */
export function openWss(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return openWs(url, scaled(5000), { ca: testPki().caPem, ...options });
}

/** Sends `data` and resolves whether the next message is the same bytes. */
export async function echoes(ws: WebSocket, data: string | Buffer): Promise<boolean> {
  const reply = new Promise<Buffer>((resolve) =>
    ws.once('message', (d: WebSocket.RawData) => resolve(d as Buffer)),
  );
  ws.send(data);
  const got = await reply;
  return Buffer.compare(got, Buffer.from(data)) === 0;
}
