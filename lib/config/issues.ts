/**
 * How config problems are reported: one issue per problem, each naming the file and the
 * JSON pointer of the offending key, all thrown at once in one ConfigError.
 */
import { CodedError } from '../errors.js';

/** One problem in a config; `path` is a JSON pointer ("/" for the whole document). */
export interface ConfigIssue {
  path: string;
  message: string;
  /**
   * The file this issue is about when it differs from the error's (a LAppS home has two
   * config files; see lapps-compat.ts).
   */
  file?: string;
  /** 1-based position in the file, for JSON syntax errors. */
  line?: number;
  column?: number;
}

function formatIssue(errorFile: string, issue: ConfigIssue): string {
  const file = issue.file ?? errorFile;
  if (issue.line !== undefined) {
    return `${file}:${issue.line}:${issue.column ?? 1}: ${issue.message}`;
  }
  return issue.path === ''
    ? `${file}: ${issue.message}`
    : `${file}: ${issue.path}: ${issue.message}`;
}

/**
 * An invalid config. `message` has one line per issue, `<file>: <path>: <message>`
 * (syntax errors: `<file>:<line>:<column>: <message>`), ready to print as is.
 */
export class ConfigError extends CodedError {
  /** Stable code; never changes meaning. */
  declare readonly code: 'LAPPS_CONFIG_INVALID';
  /** The file (as given) or origin the issues are about. */
  readonly file: string;
  readonly issues: ConfigIssue[];

  constructor(file: string, issues: ConfigIssue[]) {
    super('LAPPS_CONFIG_INVALID', issues.map((i) => formatIssue(file, i)).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

/** `key` as one token of a JSON pointer. */
export function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** A JSON object (not null, not an array): what the checks may look into. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
