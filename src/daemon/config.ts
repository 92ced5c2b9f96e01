/**
 * The daemon's configuration file (YAML or JSON; YAML is a superset, so one parser reads both), validated
 * with zod. Every mistake names its path in the file (`targets[2].url: unknown scheme 'vcn:'`) and the
 * daemon refuses to start on any of them: a recording service that starts with half its targets silently
 * dropped is worse than one that does not start. docs/DAEMON.md documents every key.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { UsageError } from '../errors';
import { checkRecordOptions, pickRecordOptions, recordOptionsSchema, recordOptionsShape, type DaemonRecordOptions } from './record-options';

/** Schemes a target may use: the live protocols, and test:// (a synthetic desktop: demos and benchmarks). */
export const TARGET_SCHEMES = ['vnc:', 'spice:', 'spice+tls:', 'test:'] as const;

const UNITS: Record<string, number> = {
  '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};

/** A size: a number of bytes, or a string such as `500MB`, `10GiB`. */
const bytes = z.union([z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0) return v;
    ctx.addIssue({ code: 'custom', message: `not a size: ${v} (a whole number of bytes)` });
    return z.NEVER;
  }
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$/i.exec(v.trim());
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  if (m === null || unit === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a size: '${v}' (write bytes, or a number with B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)` });
    return z.NEVER;
  }
  return Math.round(Number(m[1]) * unit);
});

const SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** A duration: seconds as a number, or a string such as `90s`, `30m`, `12h`, `30d`. */
const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') {
    if (v > 0 && Number.isFinite(v)) return v;
    ctx.addIssue({ code: 'custom', message: `not a duration: ${v} (a positive number of seconds)` });
    return z.NEVER;
  }
  const m = /^(\d+(?:\.\d+)?)\s*([smhd])$/.exec(v.trim());
  const unit = SECONDS[m?.[2] ?? ''];
  if (m === null || unit === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a duration: '${v}' (write seconds, or a number with s, m, h or d)` });
    return z.NEVER;
  }
  return Number(m[1]) * unit;
});

const listen = z.string().transform((text, ctx) => {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `must be HOST:PORT (port 0..65535, IPv6 in brackets), got '${text}'` });
    return z.NEVER;
  }
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
});

/** `text` as a URL, or null with a "not a URL" issue added (the URL-valued settings' shared first check). */
function parsedUrl(text: string, ctx: z.RefinementCtx, hint = ''): URL | null {
  try {
    return new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: `not a URL: '${text}'${hint}` });
    return null;
  }
}

const targetUrl = z.string().superRefine((text, ctx) => {
  const url = parsedUrl(text, ctx);
  if (url === null) return;
  if (!(TARGET_SCHEMES as readonly string[]).includes(url.protocol)) {
    ctx.addIssue({ code: 'custom', message: `unknown scheme '${url.protocol.replace(/:$/, '')}' (use ${TARGET_SCHEMES.map((s) => s.replace(/:$/, '')).join(', ')})` });
  } else if (url.password !== '') {
    ctx.addIssue({ code: 'custom', message: 'a password in the URL would be stored and logged: use password-file or password-env' });
  }
});

/** A target name: also a directory name and a metrics-free label, so plain characters only. */
const targetName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');

const target = z.strictObject({
  name: targetName,
  url: targetUrl,
  'password-file': z.string().min(1).optional(),
  'password-env': z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
  mode: z.enum(['always', 'on-demand']).default('always'),
  // Any recording option of `record`, by its long name (`format`, `fps-max`, `qp`, …), beside these.
  ...recordOptionsShape,
}).superRefine((t, ctx) => {
  if (t['password-file'] !== undefined && t['password-env'] !== undefined) {
    ctx.addIssue({ code: 'custom', message: 'give password-file or password-env, not both', path: ['password-env'] });
  }
  checkRecordOptions(t, ctx);
});

/** The default name template of a recording's directory under the storage root. */
export const DEFAULT_TEMPLATE = '{target}/{start:YYYYMMDD-HHmmss}-{id}';

const template = z.string().superRefine((t, ctx) => {
  if (!t.includes('{id}')) ctx.addIssue({ code: 'custom', message: 'must contain {id} (two recordings must never share a directory)' });
  const rest = t.replace(/\{(target|id|start(?::[A-Za-z-]+)?)\}/g, '');
  if (/[{}]/.test(rest)) ctx.addIssue({ code: 'custom', message: `unknown placeholder in '${t}' (use {target}, {id}, {start:YYYYMMDD-HHmmss})` });
  if (t.startsWith('/') || t.split('/').includes('..')) ctx.addIssue({ code: 'custom', message: 'must stay under the storage root (no leading / and no ..)' });
});

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

/** The S3 endpoint: an http(s) URL without credentials or a path (the bucket goes into the path or host). */
const s3Endpoint = z.string().superRefine((text, ctx) => {
  const url = parsedUrl(text, ctx);
  if (url === null) return;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: `must be http:// or https://, got '${url.protocol}'` });
  else if (url.username !== '' || url.password !== '') ctx.addIssue({ code: 'custom', message: 'no credentials in the URL: use access-key-env/-file and secret-key-env/-file' });
});

/** The smallest part S3 takes in a multipart upload (all but the last part), and the largest. */
export const S3_MIN_PART = 5 * 1024 * 1024;
const S3_MAX_PART = 5 * 1024 ** 3;

/**
 * `storage.s3`: where finished recording files go (docs/DAEMON.md "Object storage (S3)"). The keys are
 * named by an environment variable or a file, never written here: a configuration file is copied, shown
 * and kept in version control far more often than a secret should be.
 */
const s3Schema = z.strictObject({
  endpoint: s3Endpoint,
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name (3-63 lowercase letters, digits, "." and "-")'),
  /** Prepended to every key: `<prefix><recording id>/<file>`. */
  prefix: z.string().max(512).refine((p) => !p.startsWith('/'), 'must not start with "/"').default(''),
  region: z.string().min(1).default('us-east-1'),
  /** Path-style addressing (`endpoint/bucket/key`): what MinIO, Swift's s3api, Ceph and friends need. */
  'path-style': z.boolean().default(true),
  'access-key-env': envName.optional(),
  'access-key-file': z.string().min(1).optional(),
  'secret-key-env': envName.optional(),
  'secret-key-file': z.string().min(1).optional(),
  /** Hours a verified file stays on the local disk too; 0: deleted as soon as its upload is verified. */
  'keep-local-hours': z.number().min(0).default(0),
  /** Multipart part size: files larger than it upload in parts of this size. */
  'part-size': bytes.pipe(z.number().min(S3_MIN_PART, 'must be at least 5 MiB (S3\'s smallest part)').max(S3_MAX_PART, 'must be at most 5 GiB (S3\'s largest part)')).default(8 * 1024 * 1024),
  /** Uploads at a time. */
  concurrency: z.number().int().min(1).max(16).default(2),
  /** Seconds between attempts of a failed upload: doubling from min-delay up to max-delay, forever. */
  retry: z.strictObject({
    'min-delay': duration.default(1),
    'max-delay': duration.default(60),
  }).default({ 'min-delay': 1, 'max-delay': 60 }),
}).superRefine((s, ctx) => {
  for (const which of ['access', 'secret'] as const) {
    const env = s[`${which}-key-env`];
    const file = s[`${which}-key-file`];
    if (env === undefined && file === undefined) ctx.addIssue({ code: 'custom', message: `give ${which}-key-env or ${which}-key-file`, path: [`${which}-key-env`] });
    if (env !== undefined && file !== undefined) ctx.addIssue({ code: 'custom', message: `give ${which}-key-env or ${which}-key-file, not both`, path: [`${which}-key-file`] });
  }
  if (s.retry['max-delay'] < s.retry['min-delay']) ctx.addIssue({ code: 'custom', message: 'must not be less than min-delay', path: ['retry', 'max-delay'] });
});

/** The validated `storage.s3` section. */
export type S3Config = z.infer<typeof s3Schema>;

/** S3 credentials as the SDK takes them. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * Reads the S3 keys from where `storage.s3` says (an environment variable, or the first line of a file).
 * A problem names the configuration path and the variable or file, never a value; all of them are listed.
 */
export function s3Credentials(s3: S3Config, source = 'configuration'): S3Credentials {
  const problems: string[] = [];
  const read = (which: 'access' | 'secret'): string => {
    const env = s3[`${which}-key-env`];
    if (env !== undefined) {
      const v = process.env[env];
      if (v === undefined || v === '') problems.push(`storage.s3.${which}-key-env: environment variable ${env} is not set (or empty)`);
      return v ?? '';
    }
    const file = s3[`${which}-key-file`] ?? '';
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push(`storage.s3.${which}-key-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
      return '';
    }
    const v = (text.split(/\r?\n/)[0] ?? '').trim();
    if (v === '') problems.push(`storage.s3.${which}-key-file: ${file} is empty (the key is its first line)`);
    return v;
  };
  const accessKeyId = read('access');
  const secretAccessKey = read('secret');
  if (problems.length > 0) throw new UsageError('CONFIG_INVALID', `${source}: ${problems.join('; ')}`);
  return { accessKeyId, secretAccessKey };
}

const configSchema = z.strictObject({
  storage: z.strictObject({
    root: z.string().min(1),
    template: template.default(DEFAULT_TEMPLATE),
    /** Below this much free space new recordings are refused and running ones finish and stop. */
    'min-free': bytes.default(1024 ** 3),
    /** Finished files also go to S3-compatible object storage (and may leave the local disk). */
    s3: s3Schema.optional(),
  }),
  api: z.strictObject({
    listen: listen.default({ host: '127.0.0.1', port: 7480 }),
    'token-file': z.string().min(1),
    /** Serve https (needed, or insecure-listen, to listen on an address other than loopback). */
    tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
    'insecure-listen': z.boolean().default(false),
  }),
  metrics: z.boolean().default(true),
  rotation: z.strictObject({
    minutes: z.number().positive().optional(),
    megabytes: z.number().positive().optional(),
  }).default({}),
  retention: z.strictObject({
    'max-age': duration.optional(),
    'max-bytes': bytes.optional(),
    'max-bytes-per-target': bytes.optional(),
  }).default({}),
  reconnect: z.strictObject({
    'min-delay': duration.default(0.5),
    'max-delay': duration.default(30),
  }).default({ 'min-delay': 0.5, 'max-delay': 30 }),
  /** Seconds SIGTERM waits for every recording to finish before the daemon exits anyway. */
  'drain-timeout': duration.default(30),
  /** Options every target and API recording starts from (a target's own options override them). */
  defaults: recordOptionsSchema.optional(),
  targets: z.array(target).default([]),
  /**
   * Cluster mode (docs/DAEMON.md "Cluster mode"): daemons naming the same Redis share the recording work
   * through BullMQ and list and control each other's recordings.
   */
  cluster: z.strictObject({
    redis: z.string().superRefine((text, ctx) => {
      const url = parsedUrl(text, ctx, ' (write redis://HOST:PORT)');
      if (url === null) return;
      if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') ctx.addIssue({ code: 'custom', message: `must be redis:// or rediss://, got '${url.protocol}'` });
    }),
    /** This daemon's name in the cluster (default hostname:port of the API); unique in the cluster. */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be 1-128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit').optional(),
    /** Recordings this daemon takes from the cluster's queue at a time. */
    capacity: z.number().int().min(1).max(1000).default(8),
  }).optional(),
}).superRefine((c, ctx) => {
  const seen = new Map<string, number>();
  c.targets.forEach((t, i) => {
    const first = seen.get(t.name);
    if (first !== undefined) ctx.addIssue({ code: 'custom', message: `duplicate target name '${t.name}' (also targets[${first}])`, path: ['targets', i, 'name'] });
    else seen.set(t.name, i);
  });
  if (c.reconnect['max-delay'] < c.reconnect['min-delay']) {
    ctx.addIssue({ code: 'custom', message: 'must not be less than min-delay', path: ['reconnect', 'max-delay'] });
  }
});

/** The configuration as validated (paths still as written). */
export type DaemonConfig = z.infer<typeof configSchema>;
export type TargetConfig = DaemonConfig['targets'][number];
export type { DaemonRecordOptions };

/** `targets[2].url` from a zod issue path. */
export function formatPath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const k of p) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
  }
  return out === '' ? '(top level)' : out;
}

/** One line per problem, each with its path. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
}

/**
 * Parses and validates configuration text. Relative paths in it (storage root, token and password files,
 * CA files) are taken relative to `baseDir`, the configuration file's directory, so a configuration means
 * the same whatever directory the daemon is started from.
 */
export function parseConfig(text: string, baseDir: string, source = 'configuration'): DaemonConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new UsageError('CONFIG_INVALID', `${source}: not valid YAML or JSON: ${(err as Error).message.split('\n')[0] ?? ''}`);
  }
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    throw new UsageError('CONFIG_INVALID', `${source}: ${formatIssues(result.error).join('; ')}`);
  }
  const c = result.data;
  const abs = (p: string): string => path.resolve(baseDir, p);
  c.storage.root = abs(c.storage.root);
  c.api['token-file'] = abs(c.api['token-file']);
  if (c.api.tls !== undefined) c.api.tls = { cert: abs(c.api.tls.cert), key: abs(c.api.tls.key) };
  for (const t of c.targets) {
    if (t['password-file'] !== undefined) t['password-file'] = abs(t['password-file']);
    if (t['tls-ca'] !== undefined) t['tls-ca'] = abs(t['tls-ca']);
    if (t.encoder !== undefined && /\.(c?js)$/.test(t.encoder)) t.encoder = abs(t.encoder);
  }
  if (c.defaults?.['tls-ca'] !== undefined) c.defaults['tls-ca'] = abs(c.defaults['tls-ca']);
  if (c.defaults?.encoder !== undefined && /\.(c?js)$/.test(c.defaults.encoder)) c.defaults.encoder = abs(c.defaults.encoder);
  const s3 = c.storage.s3;
  if (s3 !== undefined) {
    if (s3['access-key-file'] !== undefined) s3['access-key-file'] = abs(s3['access-key-file']);
    if (s3['secret-key-file'] !== undefined) s3['secret-key-file'] = abs(s3['secret-key-file']);
    // Checked now, so a missing key is a configuration error at start (or a refused reload), not a
    // stream of failed uploads later. The values are read again where they are used, and kept nowhere else.
    s3Credentials(s3, source);
  }
  return c;
}

/** Reads and validates the configuration file `file`. */
export function loadConfig(file: string): DaemonConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError('CONFIG_INVALID', `cannot read configuration ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseConfig(text, path.dirname(path.resolve(file)), file);
}

/** The recording options of a target: the configuration's defaults with the target's own on top. */
export function targetOptions(c: DaemonConfig, t: TargetConfig): DaemonRecordOptions {
  return { ...(c.defaults ?? {}), ...pickRecordOptions(t) };
}
