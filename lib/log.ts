/**
 * The server log: one line per entry, either text for people or JSON for collectors.
 *
 * Text:  `2026-11-22T14:55:00.123Z INFO  [service echo#0] message key=value`
 * JSON:  `{"time":"2026-11-22T14:55:00.123Z","level":"info","source":"service echo#0","msg":"message","key":"value"}`
 */
import type { Writable } from 'node:stream';

import type { LogConfig, LogLevel } from './config/types.js';

/** Structured context of a log entry; `source` (what logged) is shown in brackets. */
export type LogFields = Record<string, unknown>;

/** Writes log entries at or above the configured level. */
export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  /**
   * `count` entries of `level` were lost before reaching this logger (the native log queue
   * was full). Optional: without it the server logs a warning with the count instead.
   */
  dropped?(level: LogLevel, count: number): void;
}

/** The logger createLogger makes: bounded, it counts what it could not write. */
export interface StreamLogger extends Logger {
  dropped(level: LogLevel, count: number): void;
  /** Entries this logger dropped itself because its stream was not keeping up. */
  readonly overflowed: number;
}

/**
 * Bytes a stream may hold unwritten (a pipe nobody reads, a slow terminal) before entries
 * are dropped instead of buffered: a stuck stderr must not grow memory without bound.
 */
export const MAX_PENDING_LOG_BYTES = 4 * 1024 * 1024;

const SEVERITY: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** Keys the JSON form owns; a field of the same name is kept under a `field.` prefix. */
const RESERVED = new Set(['time', 'level', 'source', 'msg']);

/** An Error's message (its stack only adds noise for config and startup problems). */
function plain(value: unknown): unknown {
  if (value instanceof Error) return value.message;
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** Quotes a text-form value only when it would otherwise be ambiguous to read or parse. */
function textValue(value: unknown): string {
  const v = plain(value);
  if (typeof v === 'string') return v === '' || /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (v === null || typeof v !== 'object') return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return String(v); // circular structures: better something than a crash in logging
  }
}

function textLine(level: LogLevel, msg: string, fields: LogFields | undefined): string {
  let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} `;
  const source = fields?.source;
  if (source !== undefined) line += `[${String(source)}] `;
  // Continuation lines (Lua tracebacks) are indented so each entry still starts at column 0.
  line += msg.replace(/\n/g, '\n    ');
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (key === 'source' || value === undefined) continue;
      line += ` ${key}=${textValue(value)}`;
    }
  }
  return `${line}\n`;
}

function jsonLine(level: LogLevel, msg: string, fields: LogFields | undefined): string {
  const entry: Record<string, unknown> = { time: new Date().toISOString(), level };
  if (fields?.source !== undefined) entry.source = String(fields.source);
  entry.msg = msg;
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (key === 'source' || value === undefined) continue;
      entry[RESERVED.has(key) ? `field.${key}` : key] = plain(value);
    }
  }
  try {
    return `${JSON.stringify(entry)}\n`;
  } catch {
    return `${JSON.stringify({ time: entry.time, level, msg })}\n`;
  }
}

/**
 * Creates a logger writing whole lines to `stream` (stderr by default, so stdout stays free
 * for command output). Entries less severe than `config.level` are dropped before any
 * formatting work. Once more than `maxPending` bytes (at least the stream's highWaterMark)
 * wait in the stream (a stuck pipe), entries are dropped and counted until it has written
 * everything; then one warning says how many.
 */
export function createLogger(
  config: Pick<LogConfig, 'level' | 'json'>,
  stream: NodeJS.WritableStream = process.stderr,
  maxPending = MAX_PENDING_LOG_BYTES,
): StreamLogger {
  const threshold = SEVERITY[config.level];
  const format = config.json ? jsonLine : textLine;
  // Streams that buffer (net.Socket, fs.WriteStream) say how much; others are never full.
  const pending = (): number => (stream as Partial<Writable>).writableLength ?? 0;
  let unreported = 0; // dropped entries the log has not mentioned yet
  let overflowed = 0;
  let waiting = false;

  const report = (): void => {
    waiting = false;
    if (unreported === 0) return;
    const n = unreported;
    unreported = 0;
    // Written whatever the level: the entries it stands for passed the level filter.
    stream.write(
      format('warn', `${n} log line${n === 1 ? '' : 's'} dropped (log output not keeping up)`, {
        source: 'log',
      }),
    );
  };
  // Once over the bound, entries are dropped until the stream has written everything
  // ('drain'): one report per stall, not one per line while it hovers at the bound. 'drain'
  // follows a write that returned false, as the write that crossed maxPending did (it is
  // over the stream's highWaterMark).
  const waitForDrain = (): void => {
    if (waiting) return;
    waiting = true;
    stream.once('drain', report);
  };
  const at =
    (level: LogLevel) =>
    (msg: string, fields?: LogFields): void => {
      if (SEVERITY[level] > threshold) return;
      if (waiting || pending() >= maxPending) {
        ++unreported;
        ++overflowed;
        waitForDrain();
        return;
      }
      stream.write(format(level, msg, fields));
    };
  return {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    dropped(level: LogLevel, count: number): void {
      if (SEVERITY[level] > threshold || count <= 0) return;
      unreported += count;
      if (!waiting) report();
    },
    get overflowed() {
      return overflowed;
    },
  };
}
