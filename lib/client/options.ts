/**
 * Options of the LAppS client, their defaults and checks.
 */
import { reconnectOptions, type ReconnectOptions } from './backoff.js';
import type { WebSocketConstructor } from './websocket.js';

/**
 * `connecting`: the first connection is being made (connect() has not resolved yet);
 * `open`: connected; `reconnecting`: the connection dropped and the client is waiting for
 * or making another attempt; `closed`: close() was called, the first connection failed, or
 * the connection dropped with reconnect off. `closed` is final.
 */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Options of `connect`. */
export interface ClientOptions {
  /** Subprotocols offered in the handshake (Sec-WebSocket-Protocol). Default: none. */
  protocols?: string | string[];
  /** Reconnect after a drop (missing fields take the defaults), or `false`. Default: on. */
  reconnect?: Partial<ReconnectOptions> | false;
  /** Default timeout of a request in ms; 0 or Infinity: none. Default 30000. */
  requestTimeoutMs?: number;
  /** Time a connection attempt may take up to the open handshake, ms; 0: none. Default 10000. */
  connectTimeoutMs?: number;
  /** Requests (queued or in flight) and queued notifications allowed at once. Default 10000. */
  maxPending?: number;
  /** The WebSocket constructor. Default: globalThis.WebSocket, else the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** Called on every state change (after the client's own bookkeeping). */
  onStateChange?: (state: ClientState, previous: ClientState) => void;
  /**
   * Receives what cannot be handed to a caller: malformed server input
   * (LappsProtocolError), failed subscription requests and throwing OON handlers
   * (LappsSubscriptionError), error responses that carry no request id (LappsError), and
   * errors thrown by onStateChange. Default: ignore them.
   */
  onError?: (error: Error) => void;
}

/** Options of one `request`. */
export interface RequestOptions {
  /** Timeout in ms for this request; 0 or Infinity: none. Default: the client's. */
  timeout?: number;
}

/** The request that subscribes the connection to a channel, sent on every (re)connect. */
export interface SubscribeRequest {
  method: string;
  params?: unknown[];
}

/** Receives the `message` array of each OON on the subscribed channel. */
export type OonHandler = (message: unknown[]) => void;

/** Options after defaults and checks. */
export interface Settings {
  protocols: string | string[] | undefined;
  reconnect: ReconnectOptions | undefined;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  maxPending: number;
  onStateChange: ((state: ClientState, previous: ClientState) => void) | undefined;
  onError: ((error: Error) => void) | undefined;
}

/** A timeout option: a number >= 0 (0 and Infinity: none); throws RangeError. */
export function checkTimeout(value: number, what: string): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`${what} must be a number >= 0`);
  }
  return value;
}

/** Applies defaults and checks; throws TypeError / RangeError. */
export function settingsFrom(o: ClientOptions): Settings {
  const protocols = o.protocols;
  const protocolsOk =
    protocols === undefined ||
    typeof protocols === 'string' ||
    (Array.isArray(protocols) && protocols.every((p) => typeof p === 'string'));
  if (!protocolsOk) throw new TypeError('protocols must be a string or an array of strings');
  const maxPending = o.maxPending ?? 10_000;
  if (!(maxPending === Infinity || (Number.isSafeInteger(maxPending) && maxPending > 0))) {
    throw new RangeError('maxPending must be a positive integer');
  }
  const reconnect = o.reconnect;
  if (reconnect !== undefined && reconnect !== false && typeof reconnect !== 'object') {
    throw new TypeError('reconnect must be an object or false');
  }
  return {
    protocols,
    reconnect: reconnect === false ? undefined : reconnectOptions(reconnect ?? {}),
    requestTimeoutMs: checkTimeout(o.requestTimeoutMs ?? 30_000, 'requestTimeoutMs'),
    connectTimeoutMs: checkTimeout(o.connectTimeoutMs ?? 10_000, 'connectTimeoutMs'),
    maxPending,
    onStateChange: o.onStateChange,
    onError: o.onError,
  };
}
