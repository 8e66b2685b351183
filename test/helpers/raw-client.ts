/**
 * A raw RFC 6455 client over `net` for conformance and robustness tests. It writes any
 * frame (bad ones included: reserved bits and opcodes, unmasked, lying length fields) or
 * raw bytes in chosen chunks, and reads the server's frames while checking that they obey
 * the rules a server must follow (§5.1-5.5): unmasked, RSV 0, known opcodes, minimal
 * length encoding, control frames short and final, nothing after the close frame.
 * Every wait has a timeout; a timeout rejects with what was seen so far.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

import { testPki } from './pki.js';

/** Frame opcodes of RFC 6455 §5.2. */
export const Op = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

/** §1.3: the GUID concatenated to the key for Sec-WebSocket-Accept. */
export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * Multiplies timeouts for slow builds (the sanitizer run sets LAPPS_TEST_TIME_SCALE=3).
 * Only waits that fail a test when they expire are scaled, so a fast server stays fast.
 */
export const timeScale = Math.max(1, Number(process.env.LAPPS_TEST_TIME_SCALE) || 1);

/** `ms` scaled by {@link timeScale}. */
export function scaled(ms: number): number {
  return Math.round(ms * timeScale);
}

/** Default wait for something the server must do promptly. */
export const WAIT_MS = scaled(5000);

/** Sec-WebSocket-Accept for a key (§4.2.2 step 5.4). */
export function acceptFor(key: string): string {
  return crypto
    .createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
}

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64 (§4.1). */
export function randomKey(): string {
  return crypto.randomBytes(16).toString('base64');
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What to put on the wire for one frame; every field may be made invalid on purpose. */
export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  /** Default true. */
  fin?: boolean;
  /** RSV1..3 as a 3-bit number (4 = RSV1, 2 = RSV2, 1 = RSV3); default 0. */
  rsv?: number;
  /** Default true (random key); false sends the frame unmasked; a Buffer is the key. */
  mask?: boolean | Buffer;
  /** Value of the payload length field when it should lie about the payload. */
  length?: number | bigint;
  /** Force the length encoding: 7-bit, 16-bit (126) or 64-bit (127). */
  lengthForm?: 7 | 16 | 64;
}

/** XORs `data` with a 4-byte key into a new buffer (§5.3). */
export function applyMask(data: Buffer, key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  const k = key.readUInt32BE(0);
  const words = data.length >>> 2;
  for (let i = 0; i < words; i++) {
    out.writeUInt32BE((data.readUInt32BE(i * 4) ^ k) >>> 0, i * 4);
  }
  for (let i = words * 4; i < data.length; i++) out[i] = data[i]! ^ key[i & 3]!;
  return out;
}

/** Encodes one frame exactly as `spec` says (§5.2). */
export function encodeFrame(spec: FrameSpec): Buffer {
  const payload =
    typeof spec.payload === 'string'
      ? Buffer.from(spec.payload)
      : (spec.payload ?? Buffer.alloc(0));
  const length = BigInt(spec.length ?? payload.length);
  const form = spec.lengthForm ?? (length < 126n ? 7 : length < 65536n ? 16 : 64);
  const key =
    spec.mask === false
      ? undefined
      : Buffer.isBuffer(spec.mask)
        ? spec.mask
        : crypto.randomBytes(4);
  const extra = form === 7 ? 0 : form === 16 ? 2 : 8;
  const head = Buffer.alloc(2 + extra + (key ? 4 : 0));
  head[0] = ((spec.fin ?? true) ? 0x80 : 0) | (((spec.rsv ?? 0) & 7) << 4) | (spec.opcode & 0x0f);
  const maskBit = key ? 0x80 : 0;
  if (form === 7) {
    head[1] = maskBit | Number(length & 0x7fn);
  } else if (form === 16) {
    head[1] = maskBit | 126;
    head.writeUInt16BE(Number(length & 0xffffn), 2);
  } else {
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(BigInt.asUintN(64, length), 2);
  }
  if (!key) return Buffer.concat([head, payload]);
  key.copy(head, 2 + extra);
  return Buffer.concat([head, applyMask(payload, key)]);
}

/** A frame received from the server. */
export interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** A reassembled data message. */
export interface Message {
  opcode: number;
  payload: Buffer;
  /** The frames it arrived in (first frame first). */
  frames: Frame[];
  /** Control frames (pings, pongs) that arrived between its frames. */
  control: Frame[];
}

/** The end of a close handshake as seen by the client. */
export interface CloseResult {
  /** Status code of the server's close frame; undefined when its payload was empty. */
  code: number | undefined;
  reason: Buffer;
  /** Frames that arrived before the close frame and were not consumed by the test. */
  before: Frame[];
  /** How TCP ended after the close frame: FIN, reset, or not within the timeout. */
  tcp: TcpEnd;
}

export type TcpEnd = 'fin' | 'reset' | 'timeout';

/** A parsed HTTP response head (and, when not 101, any body bytes that followed). */
export interface HttpResponse {
  statusLine: string;
  status: number;
  /** Header names lower-cased; repeated headers keep every value. */
  headers: Map<string, string[]>;
  /** The raw head, up to and including the empty line. */
  head: string;
  body: Buffer;
}

/** The first value of a header, or undefined. */
export function header(res: HttpResponse, name: string): string | undefined {
  return res.headers.get(name.toLowerCase())?.[0];
}

/** Short text of a frame for failure messages. */
export function describeFrame(f: Frame): string {
  const code =
    f.opcode === Op.Close && f.payload.length >= 2 ? ` code=${f.payload.readUInt16BE(0)}` : '';
  return `op=${f.opcode} fin=${f.fin} len=${f.payload.length}${code}`;
}

const CLOSE_CODES_ALLOWED_ON_WIRE = new Set([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011]);

function validCloseCode(code: number): boolean {
  return (
    CLOSE_CODES_ALLOWED_ON_WIRE.has(code) ||
    (code >= 1012 && code <= 1014) ||
    (code >= 3000 && code <= 4999)
  );
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** True when `b` is well-formed UTF-8 (RFC 3629). */
export function isUtf8(b: Buffer): boolean {
  try {
    strictUtf8.decode(b);
    return true;
  } catch {
    return false;
  }
}

/** Queue of received bytes; frames are cut from it without copying whole streams. */
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  /** The first `n` bytes (n <= length), consumed when `consume`. */
  read(n: number, consume: boolean): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first && first.length >= n) {
      out = first.subarray(0, n);
      if (consume) {
        if (first.length === n) this.chunks.shift();
        else this.chunks[0] = first.subarray(n);
      }
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      let i = 0;
      while (at < n) {
        const c = this.chunks[i]!;
        const take = Math.min(c.length, n - at);
        c.copy(out, at, 0, take);
        at += take;
        if (consume) {
          if (take === c.length) {
            this.chunks.shift();
            continue;
          }
          this.chunks[0] = c.subarray(take);
        }
        i++;
      }
    }
    if (consume) this.length -= n;
    return out;
  }

  takeAll(): Buffer {
    const out = Buffer.concat(this.chunks);
    this.chunks = [];
    this.length = 0;
    return out;
  }
}

export interface ConnectOptions {
  host?: string;
  /** Request target; default /echo. */
  path?: string;
  /** Extra header lines ("Name: value"), appended to the standard ones. */
  headers?: string[];
  timeoutMs?: number;
}

/** Connection to the server with full control over every byte sent. */
export class RawClient {
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  /** Server behaviour that breaks RFC 6455 (a test asserts this stays empty). */
  readonly violations: string[] = [];
  /** The handshake response, once read. */
  response: HttpResponse | undefined;
  /** How TCP ended; undefined while open. */
  ended: Exclude<TcpEnd, 'timeout'> | undefined;
  /** Wall-clock ms when TCP ended. */
  endedAt = 0;

  private readonly queue = new ByteQueue();
  private cursor = 0;
  private mode: 'http' | 'ws' | 'body' = 'http';
  private inMessage = false;
  private closeSeen = false;
  private bodyChunks: Buffer[] = [];
  private readonly listeners = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (b: Buffer) => this.onData(b));
    socket.on('end', () => this.onEnd('fin'));
    socket.on('error', () => this.onEnd('reset'));
    socket.on('close', () => this.onEnd('reset'));
  }

  /**
   * A plain TCP connection, no handshake yet (for handshake and garbage tests); a TLS one
   * (trusting the test CA) when LAPPS_TEST_TLS=1 runs the suite over wss.
   */
  static open(port: number, host = '127.0.0.1', timeoutMs = WAIT_MS): Promise<RawClient> {
    const overTls = process.env.LAPPS_TEST_TLS === '1';
    return new Promise((resolve, reject) => {
      const socket = overTls
        ? tls.connect({ port, host, ca: testPki().caPem, servername: 'localhost' })
        : net.connect({ port, host, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once(overTls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RawClient(socket));
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  /** Opens a connection and completes a valid handshake, verifying the 101 response. */
  static async connect(port: number, options: ConnectOptions = {}): Promise<RawClient> {
    const host = options.host ?? '127.0.0.1';
    const c = await RawClient.open(port, host, options.timeoutMs);
    const key = randomKey();
    c.write(
      handshakeRequest({
        path: options.path,
        key,
        host: `${host}:${port}`,
        extra: options.headers,
      }),
    );
    try {
      const res = await c.readHttpResponse(options.timeoutMs);
      const problem = checkUpgradeResponse(res, key);
      if (problem) throw new Error(`bad handshake response (${problem}):\n${res.head}`);
    } catch (e) {
      c.destroy();
      throw e;
    }
    return c;
  }

  /** Writes bytes as they are. Errors after the server closed are ignored. */
  write(bytes: Buffer | string): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.socket.write(bytes);
  }

  /** Encodes and writes frames in one write. */
  send(...specs: FrameSpec[]): void {
    this.write(Buffer.concat(specs.map(encodeFrame)));
  }

  /** Writes `bytes` in pieces of `chunk` bytes, pausing `delayMs` between pieces. */
  async writeChopped(bytes: Buffer, chunk: number, delayMs = 0): Promise<void> {
    for (let i = 0; i < bytes.length; i += chunk) {
      if (this.ended) return;
      this.write(bytes.subarray(i, i + chunk));
      if (delayMs > 0) await delay(delayMs);
      else await this.drained();
    }
  }

  /** Resolves when the socket's write buffer has drained (or the socket ended). */
  drained(): Promise<void> {
    if (!this.socket.writableNeedDrain || this.ended) {
      return new Promise<void>((resolve) => setImmediate(resolve));
    }
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Reads the HTTP response head; for 101 the bytes after it are parsed as frames. */
  readHttpResponse(timeoutMs = WAIT_MS): Promise<HttpResponse> {
    return this.waitFor(timeoutMs, 'HTTP response', () => {
      if (this.response) return this.response;
      if (this.ended) throw new Error(`connection ended (${this.ended}) before an HTTP response`);
      return undefined;
    });
  }

  /** Body bytes received after a non-101 response head. */
  body(): Buffer {
    return Buffer.concat(this.bodyChunks);
  }

  /** The next unconsumed frame. */
  nextFrame(timeoutMs = WAIT_MS): Promise<Frame> {
    return this.waitFor(timeoutMs, 'a frame', () => {
      const f = this.frames[this.cursor];
      if (f) {
        this.cursor++;
        return f;
      }
      if (this.ended) throw new Error(`connection ended (${this.ended}) while waiting for a frame`);
      return undefined;
    });
  }

  /** Frames received but not yet consumed. */
  pending(): Frame[] {
    return this.frames.slice(this.cursor);
  }

  /**
   * The next data message, reassembled from its frames. Pings and pongs in between are
   * collected in `control`; a close frame instead of data is an error naming its code.
   */
  async readMessage(timeoutMs = WAIT_MS): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    const frames: Frame[] = [];
    const control: Frame[] = [];
    for (;;) {
      const f = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (f.opcode === Op.Close) {
        this.cursor--;
        throw new Error(`got a close frame (${describeFrame(f)}) while waiting for a message`);
      }
      if (f.opcode === Op.Ping || f.opcode === Op.Pong) {
        control.push(f);
        continue;
      }
      frames.push(f);
      if (f.fin) break;
    }
    return {
      opcode: frames[0]!.opcode,
      payload: Buffer.concat(frames.map((f) => f.payload)),
      frames,
      control,
    };
  }

  /**
   * Waits for the server's close frame, answers it with a close frame echoing its code
   * (as a well-behaved client does; skipped with `reply: false`), then waits for the
   * server to end TCP. Frames skipped on the way are returned in `before`.
   */
  async expectClose(
    timeoutMs = WAIT_MS,
    options: { reply?: boolean; endTimeoutMs?: number } = {},
  ): Promise<CloseResult> {
    const deadline = Date.now() + timeoutMs;
    const before: Frame[] = [];
    let close: Frame;
    for (;;) {
      const f = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (f.opcode === Op.Close) {
        close = f;
        break;
      }
      before.push(f);
    }
    const code = close.payload.length >= 2 ? close.payload.readUInt16BE(0) : undefined;
    if (options.reply ?? true) {
      const payload = code === undefined ? Buffer.alloc(0) : close.payload.subarray(0, 2);
      this.send({ opcode: Op.Close, payload });
    }
    const tcp = await this.waitEnd(options.endTimeoutMs ?? timeoutMs);
    return { code, reason: close.payload.subarray(2), before, tcp };
  }

  /** Sends a close frame (default 1000) and waits for the server's answer and TCP end. */
  async closeHandshake(code = 1000, timeoutMs = WAIT_MS): Promise<CloseResult> {
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(code);
    this.send({ opcode: Op.Close, payload });
    return this.expectClose(timeoutMs, { reply: false });
  }

  /** Waits until TCP ends; 'timeout' when it stays open for `timeoutMs`. */
  async waitEnd(timeoutMs = WAIT_MS): Promise<TcpEnd> {
    try {
      return await this.waitFor(timeoutMs, 'TCP end', () => this.ended);
    } catch {
      return this.ended ?? 'timeout';
    }
  }

  /** Destroys the socket (no close handshake). */
  destroy(): void {
    this.socket.destroy();
  }

  private waitFor<T>(timeoutMs: number, what: string, check: () => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const run = (): boolean => {
        try {
          const v = check();
          if (v === undefined) return false;
          finish();
          resolve(v);
        } catch (e) {
          finish();
          reject(e as Error);
        }
        return true;
      };
      const timer = setTimeout(() => {
        finish();
        const seen = this.frames.slice(this.cursor).map(describeFrame).join(', ') || 'nothing';
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; unread: ${seen}`));
      }, timeoutMs);
      const listener = (): void => {
        run();
      };
      const finish = (): void => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      if (!run()) this.listeners.add(listener);
    });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  private onEnd(how: Exclude<TcpEnd, 'timeout'>): void {
    if (!this.ended) {
      this.ended = how;
      this.endedAt = Date.now();
      if (this.mode === 'ws' && this.queue.length > 0) {
        this.violations.push(`connection ended inside a frame (${this.queue.length} bytes left)`);
      }
    }
    if (how === 'fin') this.socket.end();
    this.notify();
  }

  private onData(b: Buffer): void {
    if (this.mode === 'body') {
      this.bodyChunks.push(b);
      this.notify();
      return;
    }
    this.queue.push(b);
    if (this.mode === 'http') this.parseHttp();
    // parseHttp switches the mode once the response head is complete.
    const mode = this.mode as 'http' | 'ws' | 'body';
    if (mode === 'ws') this.parseFrames();
    if (mode === 'body' && this.queue.length > 0) this.bodyChunks.push(this.queue.takeAll());
    this.notify();
  }

  private parseHttp(): void {
    const all = this.queue.read(this.queue.length, false);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = all.subarray(0, end + 4).toString('latin1');
    this.queue.read(end + 4, true);
    this.response = parseHttpHead(head);
    this.mode = this.response.status === 101 ? 'ws' : 'body';
  }

  private parseFrames(): void {
    for (;;) {
      const q = this.queue;
      if (q.length < 2) return;
      const h = q.read(Math.min(q.length, 14), false);
      const b0 = h[0]!;
      const b1 = h[1]!;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let at = 2;
      if (len === 126) {
        if (h.length < 4) return;
        len = h.readUInt16BE(2);
        if (len < 126) this.violations.push(`non-minimal 16-bit length ${len}`);
        at = 4;
      } else if (len === 127) {
        if (h.length < 10) return;
        const big = h.readBigUInt64BE(2);
        if (big >= 1n << 63n) this.violations.push('64-bit length with the MSB set');
        if (big < 65536n) this.violations.push(`non-minimal 64-bit length ${big}`);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
          this.violations.push(`absurd frame length ${big}`);
          this.socket.destroy();
          return;
        }
        len = Number(big);
        at = 10;
      }
      if (masked) at += 4;
      if (q.length < at + len) return;
      const head = q.read(at, true);
      let payload = q.read(len, true);
      if (masked) payload = applyMask(payload, head.subarray(at - 4, at));
      this.onFrame({
        fin: (b0 & 0x80) !== 0,
        rsv: (b0 >> 4) & 7,
        opcode: b0 & 0x0f,
        masked,
        payload,
      });
    }
  }

  private onFrame(f: Frame): void {
    const v = this.violations;
    const n = this.frames.length;
    if (this.closeSeen) v.push(`frame #${n} (${describeFrame(f)}) after the close frame`);
    if (f.masked) v.push(`frame #${n} is masked`);
    if (f.rsv !== 0) v.push(`frame #${n} has RSV bits ${f.rsv}`);
    if (f.opcode >= 8) {
      if (f.opcode > 0xa) v.push(`frame #${n} has reserved opcode ${f.opcode}`);
      if (!f.fin) v.push(`control frame #${n} is fragmented`);
      if (f.payload.length > 125) v.push(`control frame #${n} has ${f.payload.length} bytes`);
      if (f.opcode === Op.Close) {
        this.closeSeen = true;
        const p = f.payload;
        if (p.length === 1) v.push('close frame with a 1-byte payload');
        if (p.length >= 2 && !validCloseCode(p.readUInt16BE(0))) {
          v.push(`close frame with invalid code ${p.readUInt16BE(0)}`);
        }
        if (p.length > 2 && !isUtf8(p.subarray(2))) v.push('close reason is not UTF-8');
      }
    } else if (f.opcode === Op.Continuation) {
      if (!this.inMessage) v.push(`continuation frame #${n} with no message in progress`);
      if (f.fin) this.inMessage = false;
    } else if (f.opcode === Op.Text || f.opcode === Op.Binary) {
      if (this.inMessage) v.push(`data frame #${n} inside a fragmented message`);
      this.inMessage = !f.fin;
    } else {
      v.push(`frame #${n} has reserved opcode ${f.opcode}`);
    }
    this.frames.push(f);
  }
}

/** Parses an HTTP response head ("HTTP/1.1 101 ...\r\nName: value\r\n...\r\n\r\n"). */
export function parseHttpHead(head: string): HttpResponse {
  const lines = head.split('\r\n');
  const statusLine = lines[0] ?? '';
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine + ' ');
  const headers = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    const name = (colon < 0 ? line : line.slice(0, colon)).trim().toLowerCase();
    const value = colon < 0 ? '' : line.slice(colon + 1).trim();
    headers.set(name, [...(headers.get(name) ?? []), value]);
  }
  return { statusLine, status: m ? Number(m[1]) : 0, headers, head, body: Buffer.alloc(0) };
}

/** Why a response is not a valid 101 for `key` (§4.2.2), or undefined when it is. */
export function checkUpgradeResponse(res: HttpResponse, key: string): string | undefined {
  if (res.statusLine !== 'HTTP/1.1 101 Switching Protocols')
    return `status line "${res.statusLine}"`;
  if (header(res, 'upgrade')?.toLowerCase() !== 'websocket') return 'Upgrade is not websocket';
  const conn = (header(res, 'connection') ?? '').toLowerCase().split(',');
  if (!conn.map((s) => s.trim()).includes('upgrade')) return 'Connection lacks upgrade';
  if (header(res, 'sec-websocket-accept') !== acceptFor(key)) return 'wrong Sec-WebSocket-Accept';
  if (res.headers.has('sec-websocket-extensions')) return 'an extension was accepted';
  if (res.headers.has('sec-websocket-protocol')) return 'a subprotocol was selected';
  return undefined;
}

/** A handshake request; every part can be replaced to make it invalid. */
export function handshakeRequest(
  o: {
    path?: string;
    key?: string;
    host?: string;
    method?: string;
    version?: string;
    /** Extra header lines. */
    extra?: string[];
    /** Standard header lines to leave out, by lower-case name. */
    omit?: string[];
  } = {},
): string {
  const std: [string, string][] = [
    ['Host', o.host ?? 'localhost'],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', o.key ?? randomKey()],
    ['Sec-WebSocket-Version', '13'],
  ];
  const omit = new Set(o.omit ?? []);
  const lines = std.filter(([n]) => !omit.has(n.toLowerCase())).map(([n, v]) => `${n}: ${v}`);
  const requestLine = `${o.method ?? 'GET'} ${o.path ?? '/echo'} ${o.version ?? 'HTTP/1.1'}`;
  return [requestLine, ...lines, ...(o.extra ?? []), '', ''].join('\r\n');
}

/** The part of a tap `Test` the check helpers use (every assertion names what it checks). */
export interface Asserts {
  ok(value: unknown, message: string): unknown;
  notOk(value: unknown, message: string): unknown;
  equal(found: unknown, wanted: unknown, message: string): unknown;
  not(found: unknown, notWanted: unknown, message: string): unknown;
  same(found: unknown, wanted: unknown, message: string): unknown;
  fail(message: string): unknown;
}

/** Compares payloads without dumping megabytes into a failure message. */
export function samePayload(t: Asserts, got: Buffer, want: Buffer, what = 'payload'): void {
  if (got.equals(want)) {
    t.ok(true, `${what} intact (${want.length} bytes)`);
    return;
  }
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  t.fail(`${what} differs: got ${got.length} bytes, want ${want.length}; first difference at ${i}`);
}

/** Reads the next message and checks it is `opcode` with exactly `payload`. */
export async function expectEcho(
  t: Asserts,
  c: RawClient,
  opcode: number,
  payload: Buffer | string,
  timeoutMs = WAIT_MS,
): Promise<Message | undefined> {
  const want = typeof payload === 'string' ? Buffer.from(payload) : payload;
  try {
    const m = await c.readMessage(timeoutMs);
    t.equal(m.opcode, opcode, 'echo has the same opcode');
    samePayload(t, m.payload, want, 'echoed payload');
    t.same(m.control.map(describeFrame), [], 'no control frame inside the echoed message');
    return m;
  } catch (e) {
    t.fail(`no echo: ${(e as Error).message}`);
    return undefined;
  }
}

/**
 * Expects the server to close with `code`: no other frame first, its close frame, and
 * then TCP closed by the server (any frames it sent are checked for violations too).
 */
export async function expectServerClose(
  t: Asserts,
  c: RawClient,
  code: number | undefined,
  options: { timeoutMs?: number; reply?: boolean; requireFin?: boolean } = {},
): Promise<CloseResult | undefined> {
  try {
    const r = await c.expectClose(options.timeoutMs ?? WAIT_MS, { reply: options.reply });
    t.same(r.before.map(describeFrame), [], 'no other frame before the close frame');
    t.equal(r.code, code, `server close code ${String(code)}`);
    t.ok(isUtf8(r.reason), 'close reason is UTF-8');
    if (options.requireFin) t.equal(r.tcp, 'fin', 'server closed TCP cleanly (FIN)');
    t.ok(r.tcp !== 'timeout', `server closed TCP after its close frame (${r.tcp})`);
    t.same(c.violations, [], 'server frames follow RFC 6455');
    return r;
  } catch (e) {
    t.fail(`expected close ${String(code)}: ${(e as Error).message}`);
    t.same(c.violations, [], 'server frames follow RFC 6455');
    c.destroy();
    return undefined;
  }
}

/** Client-initiated normal close: the server must echo `code` and end TCP with FIN. */
export async function expectNormalClose(t: Asserts, c: RawClient, code = 1000): Promise<void> {
  try {
    const r = await c.closeHandshake(code);
    t.same(r.before.map(describeFrame), [], 'no unexpected frame before the close reply');
    t.equal(r.code, code, `close code ${code} echoed`);
    t.equal(r.tcp, 'fin', 'server closed TCP cleanly (FIN) after the close handshake');
  } catch (e) {
    t.fail(`close handshake: ${(e as Error).message}`);
    c.destroy();
  }
  t.same(c.violations, [], 'server frames follow RFC 6455');
}

const TEXT_BLOCK = (() => {
  // 1-, 2-, 3- and 4-byte characters so that chops and fragments split code points.
  const unit = 'Hello-µ@ßöäüàá-κόσμε-€-𝄞-日本語-';
  let s = '';
  while (Buffer.byteLength(s + unit) <= 4096) s += unit;
  return Buffer.from(s);
})();

/** Valid UTF-8 of exactly `n` bytes, mixing 1- to 4-byte characters. */
export function textPayload(n: number): Buffer {
  const out = Buffer.alloc(n, TEXT_BLOCK);
  // The block repeats on character boundaries; only the last character may be cut.
  let i = n - 1;
  while (i >= 0 && (out[i]! & 0xc0) === 0x80) i--;
  if (i >= 0) {
    const lead = out[i]!;
    const len = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    if (i + len > n) out.fill(0x2a, i);
  }
  return out;
}

const BINARY_BLOCK = crypto.randomBytes(4099);

/** Binary of exactly `n` bytes (every byte value occurs). */
export function binaryPayload(n: number): Buffer {
  return Buffer.alloc(n, BINARY_BLOCK);
}

/** Payload of `n` bytes suiting `opcode` (text: valid UTF-8). */
export function payloadFor(opcode: number, n: number): Buffer {
  return opcode === Op.Text ? textPayload(n) : binaryPayload(n);
}
