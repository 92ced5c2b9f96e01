/**
 * Where the daemon keeps its recordings: one directory per recording under the storage root, named by the
 * configured template, holding what `record` writes (session.json, display*.mp4, frames/) plus the daemon's
 * own `recording.json` — id, target, URL without secrets, state, times, error. That file is what makes the
 * daemon's list survive a restart, and what tells a restarted daemon which recordings a killed one left
 * unfinished (state still `starting`, `recording`, … rather than `done`, `failed` or `interrupted`).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeskrecError } from '../errors';
import { makeDirectory, PRIVATE_MODES, writeFileAtomic } from '../recorder/files';
import type { RecordingStats } from '../recorder/recording';

/** A recording's life as the API shows it. `interrupted`: the daemon died while it ran. */
export const RECORDING_STATES = ['starting', 'recording', 'reconnecting', 'finalizing', 'done', 'failed', 'interrupted'] as const;
export type RecordingState = (typeof RECORDING_STATES)[number];

/** States in which nothing more happens to a recording (it may be deleted by retention or the API). */
export function finished(state: RecordingState): boolean {
  return state === 'done' || state === 'failed' || state === 'interrupted';
}

/** What the daemon stores of a recording in its directory (`recording.json`). */
export interface RecordingMeta {
  version: 1;
  id: string;
  /** The target's name, or null for recordings started through the API. */
  target: string | null;
  /** The URL without credentials. */
  url: string;
  state: RecordingState;
  start: string;
  end: string | null;
  /** The directory, relative to the storage root. */
  dir: string;
  /** Why it failed (or was interrupted): `{code, message}`. */
  error: { code: string; message: string } | null;
  /** Once finished: its segments and counters as the API shows them (the list needs no other file). */
  segments?: StoredSegment[];
  stats?: RecordingCounters | null;
  /** The name of the daemon that recorded it. */
  daemon?: string | null;
  /**
   * Cluster mode: which part of the recording this directory holds (0 or absent: the first; a daemon that
   * takes a recording over records part 1, 2, … of the same id into a directory of its own).
   */
  part?: number;
}

/**
 * The id a part's files go to S3 under: the recording id for the first part, `<id>/p<n>` for later ones,
 * so that parts recorded by different daemons (each with its own display.mp4) never share a key and a
 * recording's objects all stay under `<prefix><id>/`.
 */
export function uploadId(meta: { id: string; part?: number | undefined }): string {
  return meta.part === undefined || meta.part === 0 ? meta.id : `${meta.id}/p${meta.part}`;
}

/**
 * Cluster mode: how a file of one part of a recording is named in the cluster's record of its S3 objects
 * (cluster.ts): the part, then the file's path in that part's directory.
 */
export function objectField(part: number, file: string): string {
  return `${part}/${file}`;
}

/** A recording's counters: the recorder's, plus reconnects and bytes written. */
export type RecordingCounters = RecordingStats & { reconnects: number; bytes: number };

/** One segment as recording.json keeps it (and the API shows it). */
export interface StoredSegment {
  /** `mp4`, or `png` (frames/ with frames.jsonl; with `mp4+png` each MP4 has a PNG twin listed beside it). */
  kind: 'mp4' | 'png';
  file: string;
  /** Session time of its first frame, ms (segments of one recording share one clock; gaps lie between). */
  start_ms: number;
  width: number;
  height: number;
  frames: number;
  duration_ms: number;
  bytes: number;
}

export const META_FILE = 'recording.json';

/**
 * The object store (storage.s3) failed: it could not be reached, refused a call, or an upload did not
 * verify. `S3_ERROR` (502 in the API: a segment that lives only in S3, a DELETE that must remove its
 * objects), `UPLOAD_VERIFY_FAILED` (logged; the upload is tried again).
 */
export class StorageError extends DeskrecError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'StorageError';
  }
}

/** A new recording id: 12 lowercase letters and digits (60 bits: unique among any number of recordings kept). */
export function newRecordingId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const b = randomBytes(12);
  let s = '';
  for (const x of b) s += alphabet[x % 36] ?? 'a';
  return s;
}

/** True when `id` looks like one of ours (route parameters are checked before touching the disk). */
export function isRecordingId(id: string): boolean {
  return /^[a-z0-9]{12}$/.test(id);
}

/** `{start:YYYYMMDD-HHmmss}` etc. in UTC: a directory name must not depend on the machine's time zone. */
function formatTime(d: Date, pattern: string): string {
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const parts: Record<string, string> = {
    YYYY: String(d.getUTCFullYear()), MM: pad(d.getUTCMonth() + 1), DD: pad(d.getUTCDate()),
    HH: pad(d.getUTCHours()), mm: pad(d.getUTCMinutes()), ss: pad(d.getUTCSeconds()),
  };
  return pattern.replace(/YYYY|MM|DD|HH|mm|ss/g, (k) => parts[k] ?? k);
}

/** The directory of a recording under the root, relative to it, from the template. */
export function recordingDir(template: string, v: { target: string | null; id: string; start: Date }): string {
  return template.replace(/\{(target|id|start(?::([A-Za-z-]+))?)\}/g, (_m, key: string, fmt: string | undefined) => {
    if (key === 'target') return v.target ?? 'api';
    if (key === 'id') return v.id;
    return formatTime(v.start, fmt ?? 'YYYYMMDD-HHmmss');
  });
}

/** Creates a recording's directory (0700, parents too) and writes its first recording.json. */
export async function createRecordingDir(root: string, meta: RecordingMeta): Promise<string> {
  const abs = path.join(root, meta.dir);
  await makeDirectory(abs, PRIVATE_MODES.dir);
  await writeMeta(root, meta);
  return abs;
}

/** Writes recording.json atomically, 0600. */
export async function writeMeta(root: string, meta: RecordingMeta): Promise<void> {
  await writeFileAtomic(path.join(root, meta.dir, META_FILE), `${JSON.stringify(meta, null, 2)}\n`, PRIVATE_MODES.file);
}

/** How deep under the root recording directories may lie (the template's depth; a bound for the scan). */
const MAX_DEPTH = 8;

/**
 * Every recording under `root` (directories holding a readable recording.json), found by walking the tree.
 * Unreadable or foreign files are skipped and reported through `skip`, never fatal: one damaged directory
 * must not keep the daemon from starting.
 */
export async function scanRecordings(root: string, skip: (file: string, why: string) => void): Promise<RecordingMeta[]> {
  const found: RecordingMeta[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') skip(dir, (err as NodeJS.ErrnoException).code ?? String(err));
      return;
    }
    if (entries.some((e) => e.isFile() && e.name === META_FILE)) {
      const file = path.join(dir, META_FILE);
      try {
        const meta = parseMeta(await fs.readFile(file, 'utf8'));
        // The directory is where it is now (an operator may have moved the tree).
        found.push({ ...meta, dir: path.relative(root, dir) });
      } catch (err) {
        skip(file, (err as Error).message);
      }
      return;
    }
    if (depth >= MAX_DEPTH) return;
    for (const e of entries) if (e.isDirectory()) await walk(path.join(dir, e.name), depth + 1);
  };
  await walk(root, 0);
  return found;
}

function parseMeta(text: string): RecordingMeta {
  const v = JSON.parse(text) as Partial<RecordingMeta>;
  if (v.version !== 1 || typeof v.id !== 'string' || !isRecordingId(v.id) || typeof v.url !== 'string' || typeof v.start !== 'string'
    || !(RECORDING_STATES as readonly string[]).includes(String(v.state))) {
    throw new Error('not a deskrec recording.json');
  }
  return v as RecordingMeta;
}

/** Bytes of the regular files under `dir` (a recording's size for retention and the list). */
export async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await directoryBytes(p);
    else if (e.isFile()) total += (await fs.stat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
