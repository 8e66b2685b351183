/**
 * The error codes of the lapps library: every `code` a lapps server error can carry, in one
 * table. A code never changes meaning. docs/errors.md lists each one (test/unit/errors.test.ts
 * fails when one is missing there, or when lib/ or the addon uses a code not in this table).
 * The client's errors are classes of their own (lib/client/errors.ts).
 */

/** Code → what it means. */
export const ERROR_CODES = {
  LAPPS_CONFIG_INVALID:
    'A config (file, LAppS home, default or command-line override) is invalid; `issues` lists every problem.',
  LAPPS_START_FAILED:
    "The server could not start: a listener or the static file server could not bind, the static server's token secret could not be read, created or was too short, or a service failed to load or initialise.",
  LAPPS_RELOAD_FAILED:
    'A reload could not apply the new ACLs, Origin policies or certificates; nothing changed.',
} as const;

/** One of the codes of {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a stable `code` from {@link ERROR_CODES}. */
export class CodedError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    // `name` stays "Error": these were plain Errors with a code before this class existed.
    this.code = code;
  }
}

/** The message of a thrown value, whatever was thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
