/**
 * The server log: one line per entry, either text for people or JSON for collectors.
 *
 * Text:  `2026-11-22T14:55:00.123Z INFO  [service echo#0] message key=value`
 * JSON:  `{"time":"2026-11-22T14:55:00.123Z","level":"info","source":"service echo#0","msg":"message","key":"value"}`
 */
import type { LogConfig, LogLevel } from './config/types.js';

/** Structured context of a log entry; `source` (what logged) is shown in brackets. */
export type LogFields = Record<string, unknown>;

/** Writes log entries at or above the configured level. */
export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
}

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
 * formatting work.
 */
export function createLogger(
  config: LogConfig,
  stream: NodeJS.WritableStream = process.stderr,
): Logger {
  const threshold = SEVERITY[config.level];
  const format = config.json ? jsonLine : textLine;
  const at =
    (level: LogLevel) =>
    (msg: string, fields?: LogFields): void => {
      if (SEVERITY[level] > threshold) return;
      stream.write(format(level, msg, fields));
    };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}
