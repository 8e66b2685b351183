/**
 * LAppS protocol messages as the client sends and receives them, and the checks on both.
 * Outgoing messages are built here; incoming ones are validated into a small union, so the
 * client never acts on a message of the wrong shape.
 */

/** A request id as the server may send it back (the client only sends integers). */
export type ResponseId = number | string;

/** `{cid: 0, status: 1, result, id?}` */
export interface ResultMessage {
  kind: 'result';
  id: ResponseId | undefined;
  result: unknown;
}

/** `{cid: 0, status: 0, error: {code, message, data?}, id?}` */
export interface ErrorMessage {
  kind: 'error';
  id: ResponseId | undefined;
  code: number;
  message: string;
  data?: unknown;
}

/** `{cid: n > 0, message: [...]}`: a server push (out-of-order notification). */
export interface OonMessage {
  kind: 'oon';
  cid: number;
  message: unknown[];
}

export type IncomingMessage = ResultMessage | ErrorMessage | OonMessage;

/** The result of checking an incoming message: the message, or why it is invalid. */
export type Checked = { ok: true; message: IncomingMessage } | { ok: false; why: string };

/**
 * Why `method` cannot be sent, or undefined when it can. The server's rule: a non-empty
 * string without '.' that does not start with '_' (anything else costs an error response
 * and counts towards the server's limit of invalid messages per connection).
 */
export function methodProblem(method: unknown): string | undefined {
  if (typeof method !== 'string' || method.length === 0) return 'must be a non-empty string';
  if (method.includes('.')) return "must not contain '.'";
  if (method.startsWith('_')) return "must not start with '_'";
  return undefined;
}

/** Nesting the server decodes: containers at depth 0..63, the message map at depth 0. */
const MAX_DEPTH = 64;
const INT64_SPAN = 2n ** 64n;

/**
 * Why `params` cannot be sent, or undefined. Catches what the server could only answer
 * with a parse error that carries no id (so no request could be failed by it): nesting
 * deeper than the server decodes (cycles included), and bigints outside
 * -2^64 < n < 2^64, which cbor-x would write as bignums (the server refuses those).
 */
export function paramsProblem(params: unknown): string | undefined {
  if (params === undefined) return undefined;
  if (!Array.isArray(params)) return 'params must be an array (or undefined)';
  return valueProblem(params, 1);
}

function valueProblem(value: unknown, depth: number): string | undefined {
  if (typeof value === 'bigint') {
    return value > -INT64_SPAN && value < INT64_SPAN
      ? undefined
      : `the integer ${value} does not fit in 64 bits`;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (ArrayBuffer.isView(value) || value instanceof Date) return undefined;
  if (depth >= MAX_DEPTH) return `params nest deeper than the server accepts (${MAX_DEPTH})`;
  const items: Iterable<unknown> =
    value instanceof Map
      ? [...value.keys(), ...value.values()]
      : value instanceof Set || Array.isArray(value)
        ? value
        : Object.values(value);
  for (const item of items) {
    const problem = valueProblem(item, depth + 1);
    if (problem) return problem;
  }
  return undefined;
}

/** `{lapps: 1, method, params?, id}` */
export function requestMessage(method: string, params: unknown[] | undefined, id: number): object {
  return params === undefined ? { lapps: 1, method, id } : { lapps: 1, method, params, id };
}

/** `{lapps: 1, method, params?, cid}` */
export function notificationMessage(
  method: string,
  params: unknown[] | undefined,
  cid: number,
): object {
  return params === undefined ? { lapps: 1, method, cid } : { lapps: 1, method, params, cid };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const has = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key);

/** An integer as a number: numbers and bigints that are safe integers, else undefined. */
function safeInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'bigint') {
    const n = Number(value);
    return Number.isSafeInteger(n) && BigInt(n) === value ? n : undefined;
  }
  return undefined;
}

/**
 * Checks one decoded message against the protocol (the same rules the server applies to
 * what services send). Unknown extra keys are allowed; conflicting ones are not.
 */
export function checkIncoming(value: unknown): Checked {
  const bad = (why: string): Checked => ({ ok: false, why });
  if (!isPlainObject(value)) return bad('a message must be a CBOR map');
  const cid = safeInteger(value.cid);
  if (cid === undefined || cid < 0) return bad('cid must be a non-negative integer');
  if (cid > 0) {
    if (has(value, 'status') || has(value, 'result') || has(value, 'error')) {
      return bad('an OON (cid > 0) carries message, not status/result/error');
    }
    if (!Array.isArray(value.message)) return bad('an OON needs message = [ ... ]');
    return { ok: true, message: { kind: 'oon', cid, message: value.message } };
  }
  let id: ResponseId | undefined;
  if (has(value, 'id')) {
    id = typeof value.id === 'string' ? value.id : safeInteger(value.id);
    if (id === undefined) return bad('id must be an integer or a string');
  }
  const status = safeInteger(value.status);
  if (status === 1) {
    if (!has(value, 'result')) return bad('a response with status 1 needs result');
    if (has(value, 'error')) return bad('a response with status 1 carries no error');
    return { ok: true, message: { kind: 'result', id, result: value.result } };
  }
  if (status === 0) {
    const error = value.error;
    const code = isPlainObject(error) ? safeInteger(error.code) : undefined;
    if (!isPlainObject(error) || code === undefined || typeof error.message !== 'string') {
      return bad('a response with status 0 needs error = {code: integer, message: string}');
    }
    const message: ErrorMessage = { kind: 'error', id, code, message: error.message };
    if (has(error, 'data')) message.data = error.data;
    return { ok: true, message };
  }
  return bad('a response (cid 0) needs status 1 (result) or 0 (error)');
}
