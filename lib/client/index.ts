/**
 * `lapps/client`: a client for LAppS protocol services (CBOR over WebSocket) with request
 * ids, subscriptions to server pushes and automatic reconnect. Runs in browsers (native
 * WebSocket) and in Node (`ws`, or the built-in WebSocket of Node 22+). See docs/client.md.
 */
export { connect, LappsClient } from './client.js';
export type {
  ClientOptions,
  ClientState,
  OonHandler,
  RequestOptions,
  SubscribeRequest,
} from './options.js';
export type { ReconnectOptions } from './backoff.js';
export {
  LappsClosedError,
  LappsError,
  LappsPendingLimitError,
  LappsProtocolError,
  LappsSubscriptionError,
  LappsTimeoutError,
} from './errors.js';
export type { WebSocketConstructor, WebSocketLike } from './websocket.js';
