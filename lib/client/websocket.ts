/**
 * The WebSocket implementation the client drives: the one passed in, else the platform's
 * (browsers, Node 22+), else the `ws` package (Node 20), loaded on demand. Only the
 * standard browser-style API is used, which all three share. Also the two ways the client
 * lets go of a socket: discard (ignore it from now on) and closeSocket (close and wait).
 */

/** A standard `MessageEvent` as far as the client reads it. */
export interface MessageEventLike {
  data: unknown;
}

/** A standard `CloseEvent` as far as the client reads it. */
export interface CloseEventLike {
  code: number;
  reason: string;
}

/**
 * The part of the standard WebSocket interface the client uses. Handler parameters are
 * typed `never` so that any implementation's own event types are accepted.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
}

/** A WebSocket constructor: `globalThis.WebSocket`, `ws`'s `WebSocket`, or compatible. */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;

/** readyState values of the standard API. */
export const CLOSED = 3;

/** How long closeSocket waits for the closing handshake before giving up on it. */
const CLOSE_WAIT_MS = 2000;

const noop = (): void => {};

/** The constructor to use; rejects when there is none. */
export async function resolveWebSocket(
  given: WebSocketConstructor | undefined,
): Promise<WebSocketConstructor> {
  if (given !== undefined) {
    if (typeof given !== 'function') throw new TypeError('options.WebSocket must be a constructor');
    return given;
  }
  const platform = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof platform === 'function') return platform as WebSocketConstructor;
  let loaded: unknown;
  try {
    // The browser bundle replaces `ws` with an empty module (scripts/bundle-client.mjs).
    const mod = (await import('ws')) as { default?: unknown; WebSocket?: unknown };
    loaded = mod.default ?? mod.WebSocket;
  } catch (err) {
    throw new Error('no WebSocket implementation: install the "ws" package', { cause: err });
  }
  if (typeof loaded !== 'function') {
    throw new Error('no WebSocket implementation here: pass options.WebSocket');
  }
  return loaded as WebSocketConstructor;
}

/** Stops listening to a socket and closes it; later events from it are ignored. */
export function discard(ws: WebSocketLike): void {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onclose = null;
  // Keep an error handler: `ws` throws on an 'error' event nobody listens to.
  ws.onerror = noop;
  try {
    ws.close();
  } catch {
    // Closing a socket that never opened may throw in some implementations; it is gone.
  }
}

/** Closes a socket with 1000 and resolves once it is closed (or after CLOSE_WAIT_MS). */
export function closeSocket(ws: WebSocketLike): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      discard(ws);
      (ws as { terminate?: () => void }).terminate?.();
      resolve();
    }, CLOSE_WAIT_MS);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    ws.onopen = null;
    ws.onmessage = null;
    ws.onerror = noop;
    ws.onclose = done;
    try {
      ws.close(1000);
    } catch {
      done();
    }
  });
}
