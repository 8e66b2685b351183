/**
 * Errors of the LAppS client. Requests reject with LappsError (the server answered with an
 * error), LappsTimeoutError, LappsClosedError or LappsPendingLimitError; the `onError`
 * option receives LappsProtocolError (malformed server input) and LappsSubscriptionError.
 * Each class sets `name`, so they stay tellable apart in a minified bundle too.
 */

/** An error response from the server: `{cid: 0, status: 0, error: {code, message, data?}}`. */
export class LappsError extends Error {
  override readonly name = 'LappsError';
  /** JSON-RPC style code: -32700 parse error, -32600 invalid request, -32601 no such method, ... */
  readonly code: number;
  /** The error's `data`, when the server sent one. */
  readonly data?: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.code = code;
    if (data !== undefined) this.data = data;
  }
}

/** No response arrived within the request's timeout; a late response is ignored. */
export class LappsTimeoutError extends Error {
  override readonly name = 'LappsTimeoutError';
  readonly method: string;
  readonly timeoutMs: number;

  constructor(method: string, timeoutMs: number) {
    super(`${method}: no response within ${timeoutMs} ms`);
    this.method = method;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The connection closed before a response arrived, or the client is closed. `sent` tells
 * whether the request had been written to the socket: if so the server may have processed
 * it (requests are not assumed idempotent, so the client never resends them).
 */
export class LappsClosedError extends Error {
  override readonly name = 'LappsClosedError';
  /** Whether the request (or notification) had been written to the socket. */
  readonly sent: boolean;
  /** The WebSocket close code, when a connection closed (1006: dropped without a close). */
  readonly closeCode?: number;
  /** The WebSocket close reason, when one was given. */
  readonly closeReason?: string;

  constructor(message: string, sent: boolean, closeCode?: number, closeReason?: string) {
    super(message);
    this.sent = sent;
    if (closeCode !== undefined) this.closeCode = closeCode;
    if (closeReason) this.closeReason = closeReason;
  }
}

/** More requests and queued notifications than the `maxPending` option allows. */
export class LappsPendingLimitError extends Error {
  override readonly name = 'LappsPendingLimitError';
  readonly maxPending: number;

  constructor(maxPending: number) {
    super(`more than ${maxPending} requests pending (option maxPending)`);
    this.maxPending = maxPending;
  }
}

/** The server sent something that is not a valid LAppS message; it was ignored. */
export class LappsProtocolError extends Error {
  override readonly name = 'LappsProtocolError';
  /** The decoded message, when the frame was valid CBOR. */
  readonly received?: unknown;

  constructor(message: string, received?: unknown, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    if (received !== undefined) this.received = received;
  }
}

/** A subscription's request failed (or its handler threw); the subscription stays. */
export class LappsSubscriptionError extends Error {
  override readonly name = 'LappsSubscriptionError';
  readonly cid: number;

  constructor(cid: number, message: string, cause: unknown) {
    super(message, { cause });
    this.cid = cid;
  }
}
