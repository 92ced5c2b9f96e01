/** The documented exit codes of `deskrec` (README "Exit codes"). */
export const EXIT = {
  /** The session was recorded and every file finalised (including a stop by Ctrl-C/SIGTERM or --duration). */
  OK: 0,
  /** An unexpected internal error (a bug: please report it with the stack trace printed). */
  INTERNAL: 1,
  /** The command line was wrong: unknown flag, bad value, bad URL, unknown scheme, bad size. */
  USAGE: 2,
  /**
   * The output could not be written: an unwritable --capture directory (DIR_NOT_WRITABLE), a full disk
   * (DISK_FULL: the recording stopped at the first failed write and kept what was complete; or less than
   * 16 MiB free at the start), another write failure.
   */
  OUTPUT: 3,
  /** The server could not be reached or closed the connection before the session started. */
  CONNECT: 4,
  /** The server refused our credentials. */
  AUTH: 5,
  /** The server (or a capture file) broke the protocol. */
  PROTOCOL: 6,
} as const;
