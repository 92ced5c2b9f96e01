/**
 * Secrets for a source, resolved by the library so every face (command line, viewer, daemon) reads them the
 * same way: from a file (its first line) or from an environment variable, never from argv or a URL, and never
 * logged. The daemon names a file or a variable per target; the command line uses `--password-file` or the
 * protocol's default variable.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors';

/** Where a password comes from. */
export interface PasswordSource {
  /** A file whose first line is the password; wins over `env`. */
  file?: string | null;
  /** An environment variable holding the password (empty or unset means none). */
  env?: string | null;
  /** The environment to read `env` from (default `process.env`). */
  environment?: NodeJS.ProcessEnv;
}

/** The password named by `from`, or null when neither a file nor a non-empty variable gives one. */
export function readPassword(from: PasswordSource): string | null {
  if (from.file !== undefined && from.file !== null) {
    let text: string;
    try {
      text = readFileSync(from.file, 'utf8');
    } catch (err) {
      throw new UsageError('PASSWORD_FILE', `cannot read password file ${from.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    return text.split(/\r?\n/)[0] ?? '';
  }
  if (from.env === undefined || from.env === null) return null;
  const value = (from.environment ?? process.env)[from.env];
  return value === undefined || value === '' ? null : value;
}

/** The PEM bundle in `file` (a CA to verify a server against), or undefined when no file is named. */
export function readCaFile(file: string | null | undefined): Buffer | undefined {
  if (file === undefined || file === null) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError('TLS_CA_FILE', `cannot read CA file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
