/**
 * The LAppS client: requests with ids (many in flight, answered in any order), client
 * notifications, subscriptions to server pushes (OONs), and automatic reconnect with
 * re-subscription. One WebSocket at a time; everything the socket delivers goes through
 * `receive`, which validates it and never throws.
 *
 * Request lifecycle: `request` encodes the message at once (so encoding errors reject at
 * once), queues it in `outbox` while no connection is open, and moves it to `inFlight`
 * when it is written to the socket. It leaves both on its response, its timeout, a drop of
 * the connection it was written to (LappsClosedError, sent = true; never resent), or
 * `close()`. Queued requests were never written, so they wait out a reconnect.
 */
import { backoffDelay } from './backoff.js';
import { decode, encode, messageBytes } from './codec.js';
import {
  LappsClosedError,
  LappsError,
  LappsPendingLimitError,
  LappsProtocolError,
  LappsSubscriptionError,
  LappsTimeoutError,
} from './errors.js';
import {
  checkIncoming,
  methodProblem,
  notificationMessage,
  paramsProblem,
  requestMessage,
  type IncomingMessage,
} from './messages.js';
import {
  checkTimeout,
  settingsFrom,
  type ClientOptions,
  type ClientState,
  type OonHandler,
  type RequestOptions,
  type Settings,
  type SubscribeRequest,
} from './options.js';
import {
  CLOSED,
  closeSocket,
  discard,
  resolveWebSocket,
  type CloseEventLike,
  type MessageEventLike,
  type WebSocketConstructor,
  type WebSocketLike,
} from './websocket.js';

interface PendingRequest {
  kind: 'request';
  id: number;
  method: string;
  frame: Uint8Array;
  done: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface QueuedNotification {
  kind: 'notification';
  frame: Uint8Array;
}

interface Subscription {
  cid: number;
  handler: OonHandler;
  request: SubscribeRequest | undefined;
  active: boolean;
}

/** setTimeout's limit; longer timeouts count as none. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function checkParams(params: unknown): void {
  const problem = paramsProblem(params);
  if (problem) throw new TypeError(problem);
}

function encodeFrame(value: object, what: string): Uint8Array {
  try {
    return encode(value);
  } catch (err) {
    throw new TypeError(`${what}: cannot encode params as CBOR: ${message(err)}`, { cause: err });
  }
}

/** A LAppS protocol client; made by {@link connect}. */
export class LappsClient {
  /** The URL the client connects (and reconnects) to. */
  readonly url: string;
  private readonly settings: Settings;
  private readonly WebSocketImpl: WebSocketConstructor;
  private currentState: ClientState = 'connecting';
  /** The state onStateChange last heard of (it may lag currentState inside a callback). */
  private notifiedState: ClientState = 'connecting';
  private socket: WebSocketLike | undefined;
  /** Why the current attempt failed, from its error event (close events rarely say). */
  private socketError = '';
  /** Written to the socket, awaiting a response; by id. */
  private readonly inFlight = new Map<number, PendingRequest>();
  /** Waiting for an open connection, in call order. */
  private outbox: (PendingRequest | QueuedNotification)[] = [];
  private lastId = 0;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly subscriptions = new Map<number, Set<Subscription>>();
  private firstOpen: { resolve(): void; reject(error: Error): void } | undefined;
  private closing: Promise<void> | undefined;

  private constructor(url: string, settings: Settings, impl: WebSocketConstructor) {
    this.url = url;
    this.settings = settings;
    this.WebSocketImpl = impl;
  }

  /** See {@link connect}. */
  static async connect(url: string | URL, options: ClientOptions = {}): Promise<LappsClient> {
    const settings = settingsFrom(options);
    const impl = await resolveWebSocket(options.WebSocket);
    const client = new LappsClient(String(url), settings, impl);
    await new Promise<void>((resolve, reject) => {
      client.firstOpen = { resolve, reject };
      client.openSocket();
    });
    return client;
  }

  /** The connection state; see {@link ClientState}. */
  get state(): ClientState {
    return this.currentState;
  }

  /** Requests awaiting a response (queued or in flight) plus queued notifications. */
  get pendingCount(): number {
    return this.inFlight.size + this.outbox.length;
  }

  /**
   * Sends a request and resolves with its `result`. Rejects with LappsError (the server's
   * error response), LappsTimeoutError, LappsClosedError (the connection it was sent on
   * dropped, or the client closed), LappsPendingLimitError, or TypeError (a method the
   * server would refuse, params that are not an array or cannot be encoded). While the
   * client is reconnecting the request is queued and sent once connected.
   */
  request(method: string, params?: unknown[], options: RequestOptions = {}): Promise<unknown> {
    try {
      const problem = methodProblem(method);
      if (problem) throw new TypeError(`method ${problem}`);
      checkParams(params);
      const timeout = checkTimeout(options.timeout ?? this.settings.requestTimeoutMs, 'timeout');
      if (this.currentState === 'closed') throw new LappsClosedError('the client is closed', false);
      if (this.pendingCount >= this.settings.maxPending) {
        throw new LappsPendingLimitError(this.settings.maxPending);
      }
      return this.call(method, params, timeout);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Sends a client notification `{lapps: 1, method, params, cid}` (no response). Throws
   * TypeError on bad arguments, LappsClosedError once the client is closed, and
   * LappsPendingLimitError when it would have to be queued beyond `maxPending`. While the
   * client is reconnecting it is queued and sent once connected.
   */
  notify(method: string, params: unknown[] | undefined, cid: number): void {
    const problem = methodProblem(method);
    if (problem) throw new TypeError(`method ${problem}`);
    checkParams(params);
    if (!Number.isSafeInteger(cid) || cid < 0) throw new TypeError('cid must be an integer >= 0');
    if (this.currentState === 'closed') throw new LappsClosedError('the client is closed', false);
    const frame = encodeFrame(notificationMessage(method, params, cid), method);
    if (this.currentState === 'open' && this.socket) {
      this.socket.send(frame);
      return;
    }
    if (this.pendingCount >= this.settings.maxPending) {
      throw new LappsPendingLimitError(this.settings.maxPending);
    }
    this.outbox.push({ kind: 'notification', frame });
  }

  /**
   * Calls `handler` with the `message` of every OON on channel `cid` (> 0). With `request`,
   * that request is sent now (when connected) and again after every reconnect, so the
   * service subscribes each new connection; its failures go to `onError`. Returns a
   * function that removes this subscription (it sends nothing to the server).
   */
  subscribe(cid: number, handler: OonHandler, request?: SubscribeRequest): () => void {
    if (!Number.isSafeInteger(cid) || cid <= 0) throw new TypeError('cid must be an integer > 0');
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    if (request !== undefined) {
      const problem = methodProblem(request.method);
      if (problem) throw new TypeError(`request.method ${problem}`);
      checkParams(request.params);
    }
    if (this.currentState === 'closed') throw new LappsClosedError('the client is closed', false);
    const sub: Subscription = { cid, handler, request, active: true };
    let set = this.subscriptions.get(cid);
    if (!set) this.subscriptions.set(cid, (set = new Set()));
    set.add(sub);
    if (this.currentState === 'open') this.sendSubscribeRequest(sub);
    return () => {
      if (!sub.active) return;
      sub.active = false;
      const subs = this.subscriptions.get(cid);
      subs?.delete(sub);
      if (subs?.size === 0) this.subscriptions.delete(cid);
    };
  }

  /**
   * Closes the client for good: pending and queued requests reject with LappsClosedError,
   * queued notifications are dropped, reconnecting stops. Resolves when the socket has
   * closed (or after 2 s without a closing handshake). Calling it again returns the same
   * promise.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    const ws = this.socket;
    this.socket = undefined;
    // Set before shutdown() runs onStateChange, which may call close() again.
    this.closing = ws && ws.readyState !== CLOSED ? closeSocket(ws) : Promise.resolve();
    this.shutdown((sent) => new LappsClosedError('the client was closed', sent));
    return this.closing;
  }

  // --- requests --------------------------------------------------------------------------

  /** Queues or sends one request; arguments are already checked. */
  private call(method: string, params: unknown[] | undefined, timeout: number): Promise<unknown> {
    const id = ++this.lastId;
    const frame = encodeFrame(requestMessage(method, params, id), method);
    return new Promise((resolve, reject) => {
      const req: PendingRequest = {
        kind: 'request',
        id,
        method,
        frame,
        done: false,
        timer: undefined,
        resolve,
        reject,
      };
      if (timeout > 0 && timeout <= MAX_TIMER_MS) {
        req.timer = setTimeout(() => this.timedOut(req, timeout), timeout);
      }
      if (this.currentState === 'open') this.transmit(req);
      else this.outbox.push(req);
    });
  }

  private transmit(req: PendingRequest): void {
    this.inFlight.set(req.id, req);
    try {
      this.socket?.send(req.frame);
    } catch (err) {
      this.inFlight.delete(req.id);
      this.settle(req, new LappsClosedError(`${req.method}: send failed: ${message(err)}`, false));
    }
  }

  private timedOut(req: PendingRequest, timeout: number): void {
    req.timer = undefined;
    if (req.done) return;
    if (!this.inFlight.delete(req.id)) {
      const at = this.outbox.indexOf(req);
      if (at >= 0) this.outbox.splice(at, 1);
    }
    this.settle(req, new LappsTimeoutError(req.method, timeout));
  }

  private settle(req: PendingRequest, error: Error | undefined, result?: unknown): void {
    if (req.done) return;
    req.done = true;
    if (req.timer !== undefined) clearTimeout(req.timer);
    req.timer = undefined;
    if (error) req.reject(error);
    else req.resolve(result);
  }

  private sendSubscribeRequest(sub: Subscription): void {
    const r = sub.request;
    if (!r) return;
    // Not counted against maxPending: re-subscribing must not fail under load.
    this.call(r.method, r.params, this.settings.requestTimeoutMs).catch((err: unknown) => {
      // A drop is followed by a reconnect, which sends the request again.
      if (!sub.active || err instanceof LappsClosedError) return;
      this.report(
        new LappsSubscriptionError(
          sub.cid,
          `subscription request ${r.method} for cid ${sub.cid} failed: ${message(err)}`,
          err,
        ),
      );
    });
  }

  // --- the connection --------------------------------------------------------------------

  private openSocket(): void {
    this.socketError = '';
    let ws: WebSocketLike;
    try {
      ws = new this.WebSocketImpl(this.url, this.settings.protocols);
      ws.binaryType = 'arraybuffer';
    } catch (err) {
      this.socketError = message(err);
      this.connectionLost(1006, '');
      return;
    }
    this.socket = ws;
    ws.onopen = () => this.opened(ws);
    ws.onmessage = (event: MessageEventLike) => {
      if (ws === this.socket) this.receive(event.data);
    };
    ws.onerror = (event: { message?: unknown; error?: unknown }) => {
      if (ws !== this.socket) return;
      const why = event.error instanceof Error ? event.error.message : event.message;
      if (typeof why === 'string' && why) this.socketError = why;
    };
    ws.onclose = (event: CloseEventLike) => {
      if (ws !== this.socket) return;
      this.socket = undefined;
      this.connectionLost(event.code, event.reason);
    };
    const ms = this.settings.connectTimeoutMs;
    if (ms > 0 && ms <= MAX_TIMER_MS) {
      this.connectTimer = setTimeout(() => {
        this.connectTimer = undefined;
        if (ws !== this.socket) return;
        this.socket = undefined;
        discard(ws);
        this.socketError = `no open handshake within ${ms} ms`;
        this.connectionLost(1006, '');
      }, ms);
    }
  }

  private opened(ws: WebSocketLike): void {
    if (ws !== this.socket) return;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.attempt = 0;
    this.setState('open');
    const first = this.firstOpen;
    this.firstOpen = undefined;
    first?.resolve();
    // Subscriptions first, then what was queued, each in call order.
    for (const set of this.subscriptions.values()) {
      for (const sub of set) {
        if (this.currentState !== 'open') return;
        this.sendSubscribeRequest(sub);
      }
    }
    const queued = this.outbox;
    this.outbox = [];
    for (const item of queued) {
      if (this.currentState !== 'open') {
        // Closed meanwhile (a callback called close()): reject what is left.
        if (item.kind === 'request') {
          this.settle(item, new LappsClosedError('the client was closed', false));
        }
        continue;
      }
      if (item.kind === 'request') {
        if (!item.done) this.transmit(item);
      } else {
        ws.send(item.frame);
      }
    }
  }

  /** The current socket closed or failed to open (not through close()). */
  private connectionLost(code: number, reason: string): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    const why = reason || this.socketError || `close code ${code}`;
    for (const req of this.inFlight.values()) {
      this.settle(
        req,
        new LappsClosedError(`${req.method}: connection closed (${why})`, true, code, reason),
      );
    }
    this.inFlight.clear();
    const first = this.firstOpen;
    if (first || !this.settings.reconnect) {
      const error = first
        ? new LappsClosedError(`cannot connect to ${this.url}: ${why}`, false, code, reason)
        : new LappsClosedError(`connection closed (${why})`, false, code, reason);
      this.firstOpen = undefined;
      this.shutdown(() => error);
      first?.reject(error);
      return;
    }
    this.setState('reconnecting');
    if (this.currentState !== 'reconnecting') return;
    const delay = backoffDelay(this.attempt++, this.settings.reconnect);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.currentState === 'reconnecting') this.openSocket();
    }, delay);
  }

  /** Enters `closed`: rejects every request, drops queued notifications and timers. */
  private shutdown(makeError: (sent: boolean) => LappsClosedError): void {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.connectTimer);
    this.reconnectTimer = this.connectTimer = undefined;
    // Closed before anything else runs, so nothing rejected below can queue more work.
    this.currentState = 'closed';
    for (const req of this.inFlight.values()) this.settle(req, makeError(true));
    this.inFlight.clear();
    const queued = this.outbox;
    this.outbox = [];
    for (const item of queued) if (item.kind === 'request') this.settle(item, makeError(false));
    for (const set of this.subscriptions.values()) for (const sub of set) sub.active = false;
    this.subscriptions.clear();
    this.notifyState();
  }

  // --- incoming --------------------------------------------------------------------------

  /** Handles one message from the socket; reports bad input, never throws. */
  private receive(data: unknown): void {
    try {
      if (typeof data === 'string') {
        this.report(new LappsProtocolError('text frame (LAppS messages are binary CBOR)', data));
        return;
      }
      const bytes = messageBytes(data);
      if (!bytes) {
        this.report(new LappsProtocolError('message data is neither ArrayBuffer nor a view'));
        return;
      }
      let value: unknown;
      try {
        value = decode(bytes);
      } catch (err) {
        this.report(new LappsProtocolError(`invalid CBOR: ${message(err)}`, undefined, err));
        return;
      }
      const checked = checkIncoming(value);
      if (!checked.ok) {
        this.report(new LappsProtocolError(`invalid message: ${checked.why}`, value));
        return;
      }
      this.dispatch(checked.message, value);
    } catch (err) {
      // Not expected (handlers are guarded); keeps the socket's event handler from throwing.
      this.report(new LappsProtocolError(`message handling failed: ${message(err)}`, data, err));
    }
  }

  private dispatch(m: IncomingMessage, raw: unknown): void {
    if (m.kind === 'oon') {
      const set = this.subscriptions.get(m.cid);
      if (!set) return; // nobody listens on this channel
      for (const sub of [...set]) {
        if (!sub.active) continue;
        try {
          sub.handler(m.message);
        } catch (err) {
          this.report(new LappsSubscriptionError(m.cid, `OON handler for cid ${m.cid} threw`, err));
        }
      }
      return;
    }
    const req = typeof m.id === 'number' ? this.inFlight.get(m.id) : undefined;
    if (req) {
      this.inFlight.delete(req.id);
      if (m.kind === 'result') this.settle(req, undefined, m.result);
      else this.settle(req, new LappsError(m.code, m.message, m.data));
      return;
    }
    // An id this client used whose request is gone: it timed out; the answer is late.
    if (typeof m.id === 'number' && m.id >= 1 && m.id <= this.lastId) return;
    if (m.id === undefined && m.kind === 'error') {
      // The server could not read a request's id (it could not parse it at all).
      this.report(new LappsError(m.code, m.message, m.data));
      return;
    }
    const what = m.id === undefined ? 'a response without id' : `unknown request id ${m.id}`;
    this.report(new LappsProtocolError(what, raw));
  }

  // --- state and reporting ---------------------------------------------------------------

  private setState(next: ClientState): void {
    this.currentState = next;
    this.notifyState();
  }

  /** Tells onStateChange about the current state if it has not heard of it yet. */
  private notifyState(): void {
    const previous = this.notifiedState;
    const state = this.currentState;
    if (previous === state) return;
    this.notifiedState = state;
    try {
      this.settings.onStateChange?.(state, previous);
    } catch (err) {
      this.report(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private report(error: Error): void {
    try {
      this.settings.onError?.(error);
    } catch {
      // An onError that throws has nowhere left to report to.
    }
  }
}

/**
 * Connects to a LAppS service at `url` (ws:// or wss://) and resolves with the client once
 * the connection is open. Rejects with LappsClosedError when the first connection fails
 * (reconnecting applies to connections that were open), with TypeError/RangeError on
 * invalid options, and with Error when no WebSocket implementation is available.
 */
export function connect(url: string | URL, options: ClientOptions = {}): Promise<LappsClient> {
  return LappsClient.connect(url, options);
}
