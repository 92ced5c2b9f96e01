/**
 * Typed errors with stable codes (classes with a `name` and a documented `code`, as ws's `WS_ERR_*` in
 * doc/ws.md). The codes are documented in docs/ERRORS.md and map to CLI exit codes in src/cli/exit-codes.ts;
 * a user mistake prints one line, never a stack trace.
 */

/** Every error deskrec throws on purpose carries a stable machine-readable code. */
export class DeskrecError extends Error {
  /** Stable code, e.g. `BAD_SIZE`; documented in docs/ERRORS.md. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeskrecError';
    this.code = code;
  }
}

/** A mistake in what the user asked for: bad flag, bad URL, unwritable directory. */
export class UsageError extends DeskrecError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'UsageError';
  }
}

/** Bytes from a peer (server, capture file) that break the protocol or exceed a limit we enforce. */
export class ProtocolError extends DeskrecError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ProtocolError';
  }
}

/** The server could not be reached, refused, or closed the connection before the session started. */
export class ConnectError extends DeskrecError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ConnectError';
  }
}

/** The server refused our credentials, or offers no security type we can use. */
export class AuthError extends DeskrecError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'AuthError';
  }
}

/** The video encoder could not start or failed mid-session; the recorder falls back to PNG frames. */
export class EncoderError extends DeskrecError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'EncoderError';
  }
}

/** Writing output (MP4, PNG, session.json) failed. */
export class SinkError extends DeskrecError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SinkError';
  }
}

/** Input for the remote that cannot be sent: the session is not live, or the remote cannot take it. */
export class InputError extends DeskrecError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'InputError';
  }
}

/** Returns a one-line description of any thrown value, for logs and the CLI. */
export function describeError(err: unknown): string {
  if (err instanceof DeskrecError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
