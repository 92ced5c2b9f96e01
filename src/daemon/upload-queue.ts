/**
 * Getting a recording's finished files into S3 (s3-store.ts) and, once they are verified there, off the
 * local disk. One queue per daemon, a few uploads at a time; a failed upload is tried again with
 * exponential backoff (capped) for as long as the daemon runs, and never deletes anything.
 *
 * What goes up: each MP4 segment as soon as it is finished (rotation closes it while the recording goes
 * on), and when the recording ends every file `record` wrote — the MP4s, the PNG frames and frames.jsonl
 * (format png / mp4+png), and session.json last (again whenever it changed). The daemon's own files
 * (recording.json, upload.jsonl, the page's thumbnails and activity) stay local: they are the daemon's
 * bookkeeping, not the recording.
 *
 * What leaves the local disk: MP4 segments and PNG frames — the bulk — once verified and `keep-local-hours`
 * after that (0: at once), and only while the local file is still exactly what was uploaded (size and
 * mtime). session.json and frames.jsonl stay: they are small, and the API serves session.json.
 *
 * The state survives restarts in each recording's directory as `upload.jsonl`, one line per event (a file
 * verified in S3 with its size, mtime, ETag and, for a video segment, its record; a local copy deleted).
 * Append-only, so a recording of thousands of PNG frames costs one short line per frame, not a rewrite of
 * the whole state, and a line torn by a crash is skipped. A verified line is written before the local copy
 * is deleted, so a file is never both gone from the disk and unknown to the state. At start the daemon
 * queues every file of a finished recording that is not verified as it is now (upload.jsonl missing, older,
 * or the file changed since), which is also how uploads cut off by a restart resume.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { describeError } from '../errors';
import { PRIVATE_MODES } from '../recorder/files';
import type { S3Store } from './s3-store';
import type { StoredSegment } from './store';

/** The upload state of a recording, in its directory. */
export const UPLOAD_FILE = 'upload.jsonl';

/** A file of a recording as verified in S3. */
export interface UploadEntry {
  key: string;
  bytes: number;
  /** The object's ETag (no quotes). */
  etag: string;
  /** The local file's mtime when it was uploaded (a file changed since is uploaded again). */
  mtimeMs: number;
  /** When the upload was verified (ISO 8601). */
  verified: string;
  /** The local copy was deleted (the file lives only in S3). */
  localDeleted?: boolean;
  /** For a video segment: its record, so a recording whose MP4s left the disk still lists them after a restart. */
  segment?: StoredSegment;
}

/** A recording's upload state as the API shows it. */
export interface UploadStatus {
  /** Files queued, uploading or waiting to be tried again. */
  pending: number;
  /** Of those, the ones whose last attempt failed. */
  failed: number;
  /** Files verified in S3. */
  uploaded: number;
  /** The newest failure, while a file of the recording is failing. */
  lastError: string | null;
}

/** Where a file of a recording is: on the local disk (and maybe in S3 too), or only in S3. */
export type FileLocation = 'local' | 's3';

/** What the queue reports to the daemon (metrics, logs). */
export interface UploadEvents {
  log: (level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, msg: string) => void;
  /** A file was uploaded and verified. */
  uploaded: (bytes: number) => void;
  /** An attempt failed (it will be tried again). */
  failed: () => void;
  /**
   * A file's S3 record changed: verified in S3, or its local copy deleted afterwards. Cluster mode
   * publishes these so that any daemon can tell where another daemon's segment is and serve it from S3.
   */
  stored?: (id: string, file: string, entry: UploadEntry) => void;
}

/** How the queue is set up (storage.s3). */
export interface UploadQueueOptions {
  root: string;
  keepLocalMs: number;
  concurrency: number;
  retry: { minMs: number; maxMs: number };
}

interface Rec {
  id: string;
  /** Relative to the storage root. */
  dir: string;
  files: Map<string, UploadEntry>;
  tasks: Set<Task>;
  /** Appends to upload.jsonl happen one after another. */
  write: Promise<void>;
  /** upload.jsonl ends in a torn line: the next append starts a new line first. */
  torn: boolean;
}

interface Task {
  rec: Rec;
  /** Relative to the recording's directory (`display-001.mp4`, `frames/frame-000001.png`). */
  file: string;
  bytes: number;
  segment: StoredSegment | undefined;
  attempts: number;
  status: 'queued' | 'uploading' | 'retrying';
  lastError: string | null;
  /** Enqueued again while uploading: the file may have changed (session.json), look again afterwards. */
  again: boolean;
  abort: AbortController | null;
  timer: NodeJS.Timeout | null;
  running: Promise<void> | null;
}

/** How often files kept for `keep-local-hours` are looked at, ms (more often for keeps of minutes). */
function sweepMs(keepLocalMs: number): number {
  return Math.min(60_000, Math.max(1000, keepLocalMs / 4));
}

/** MP4 segments and PNG frames leave the local disk once verified; everything else stays. */
function deletable(file: string): boolean {
  return (/^[^/]+\.mp4$/.test(file)) || /^frames\/[^/]+\.png$/.test(file);
}

function contentType(file: string): string {
  if (file.endsWith('.mp4')) return 'video/mp4';
  if (file.endsWith('.png')) return 'image/png';
  if (file.endsWith('.jsonl')) return 'application/x-ndjson';
  if (file.endsWith('.json')) return 'application/json';
  return 'application/octet-stream';
}

export class UploadQueue {
  private readonly recs = new Map<string, Rec>();
  /** Queued tasks in order, by `id/file`. */
  private readonly tasks = new Map<string, Task>();
  /** Recordings deleted: nothing of them is queued again. */
  private readonly forgotten = new Set<string>();
  private running = 0;
  private closed = false;
  private sweeper: NodeJS.Timeout | null = null;
  private sweeping = false;
  /** enqueue calls still looking at files (idle() waits for them: their tasks are not in the map yet). */
  private readonly feeding = new Set<Promise<void>>();

  constructor(private readonly store: S3Store, private readonly o: UploadQueueOptions, private readonly events: UploadEvents) {
    if (o.keepLocalMs > 0) {
      this.sweeper = setInterval(() => { void this.sweep(); }, sweepMs(o.keepLocalMs));
      this.sweeper.unref();
    }
  }

  /** Loads (once) the upload state of recording `id` in `dir` (relative to the root). */
  async track(id: string, dir: string): Promise<void> {
    await this.rec(id, dir);
  }

  private async rec(id: string, dir: string): Promise<Rec> {
    let r = this.recs.get(id);
    if (r !== undefined) return r;
    const files = new Map<string, UploadEntry>();
    let torn = false;
    let text = '';
    try {
      text = await fs.readFile(path.join(this.o.root, dir, UPLOAD_FILE), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.events.log('warn', { recording: id }, `cannot read ${UPLOAD_FILE}: ${describeError(err)}; its files are checked again`);
    }
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const v = JSON.parse(line) as Partial<UploadEntry> & { file?: string };
        if (typeof v.file !== 'string') continue;
        if (typeof v.etag === 'string' && typeof v.bytes === 'number' && typeof v.key === 'string') {
          const { file, ...entry } = v;
          files.set(file, entry as UploadEntry);
        } else if (v.localDeleted === true) {
          const e = files.get(v.file);
          if (e !== undefined) e.localDeleted = true;
        }
      } catch {
        // A line torn by a crash: what it said is simply checked again.
      }
    }
    if (text !== '' && !text.endsWith('\n')) torn = true;
    // Another call may have loaded it meanwhile.
    r = this.recs.get(id);
    if (r !== undefined) return r;
    r = { id, dir, files, tasks: new Set(), write: Promise.resolve(), torn };
    this.recs.set(id, r);
    return r;
  }

  /**
   * Queues file `file` of recording `id` (relative to its directory) unless it is in S3 as it is now; a
   * file verified and unchanged is only looked at for deletion. `segment`: its record, for a video segment.
   */
  enqueue(id: string, dir: string, file: string, segment?: StoredSegment): Promise<void> {
    return this.feed(this.enqueueNow(id, dir, file, segment));
  }

  private feed(p: Promise<void>): Promise<void> {
    this.feeding.add(p);
    return p.finally(() => { this.feeding.delete(p); });
  }

  private async enqueueNow(id: string, dir: string, file: string, segment?: StoredSegment): Promise<void> {
    if (this.closed || this.forgotten.has(id)) return;
    const rec = await this.rec(id, dir);
    const abs = path.join(this.o.root, rec.dir, file);
    const st = await fs.stat(abs).catch(() => null);
    const entry = rec.files.get(file);
    if (st === null) {
      // Gone from the disk: in S3 if it was verified (a crash between the deletion and its line).
      if (entry !== undefined && entry.localDeleted !== true) {
        entry.localDeleted = true;
        await this.append(rec, { file, localDeleted: true });
      }
      // Told again even when nothing changed (a restart queues everything): the cluster's record of S3
      // objects may have been lost with a Redis that kept no data.
      if (entry !== undefined) this.events.stored?.(rec.id, file, entry);
      return;
    }
    if (entry !== undefined && entry.bytes === st.size && entry.mtimeMs === st.mtimeMs) {
      if (segment !== undefined && entry.segment === undefined) entry.segment = segment;
      this.events.stored?.(rec.id, file, entry);
      await this.deleteLocal(rec, file);
      return;
    }
    const key = `${id}/${file}`;
    const existing = this.tasks.get(key);
    if (existing !== undefined) {
      if (existing.status === 'uploading') existing.again = true;
      if (segment !== undefined) existing.segment = segment;
      return;
    }
    const task: Task = { rec, file, bytes: st.size, segment: segment ?? entry?.segment, attempts: 0, status: 'queued', lastError: null, again: false, abort: null, timer: null, running: null };
    this.tasks.set(key, task);
    rec.tasks.add(task);
    this.pump();
  }

  /**
   * Queues every file of a finished recording (the module's comment says which), video segments first and
   * session.json last, so that a reader who sees session.json in the bucket finds the rest there already
   * (the queue runs a few at a time, so this is an order of starts, not a guarantee).
   */
  enqueueRecording(id: string, dir: string, segments: readonly StoredSegment[]): Promise<void> {
    return this.feed(this.enqueueRecordingNow(id, dir, segments));
  }

  private async enqueueRecordingNow(id: string, dir: string, segments: readonly StoredSegment[]): Promise<void> {
    if (this.closed || this.forgotten.has(id)) return;
    const abs = path.join(this.o.root, dir);
    const top = await fs.readdir(abs).catch(() => [] as string[]);
    const bySegment = new Map(segments.filter((s) => s.kind === 'mp4').map((s) => [s.file, s]));
    const videos = [...new Set([...bySegment.keys(), ...top.filter((f) => /\.mp4$/.test(f))])].sort();
    for (const f of videos) await this.enqueueNow(id, dir, f, bySegment.get(f));
    const frames = await fs.readdir(path.join(abs, 'frames')).catch(() => [] as string[]);
    for (const f of frames.filter((x) => /\.png$/.test(x)).sort()) await this.enqueueNow(id, dir, `frames/${f}`);
    if (frames.includes('frames.jsonl')) await this.enqueueNow(id, dir, 'frames/frames.jsonl');
    if (top.includes('session.json')) await this.enqueueNow(id, dir, 'session.json');
  }

  /** Starts queued uploads while there is room. */
  private pump(): void {
    if (this.closed) return;
    for (const task of this.tasks.values()) {
      if (this.running >= this.o.concurrency) return;
      if (task.status !== 'queued') continue;
      task.status = 'uploading';
      this.running++;
      task.running = this.run(task).finally(() => {
        this.running--;
        task.running = null;
        this.pump();
      });
    }
  }

  private async run(task: Task): Promise<void> {
    const { rec, file } = task;
    const abort = new AbortController();
    task.abort = abort;
    try {
      const abs = path.join(this.o.root, rec.dir, file);
      const st = await fs.stat(abs).catch(() => null);
      const entry = rec.files.get(file);
      if (st === null) {
        if (entry === undefined) this.events.log('warn', { recording: rec.id, file }, `${file} vanished before it was uploaded`);
        this.done(task);
        return;
      }
      if (entry === undefined || entry.bytes !== st.size || entry.mtimeMs !== st.mtimeMs) {
        task.bytes = st.size;
        const t0 = performance.now();
        const stored = await this.store.upload(abs, this.store.key(rec.id, file), abort.signal, contentType(file));
        if (abort.signal.aborted) return;
        const verified: UploadEntry = {
          key: stored.key, bytes: stored.bytes, etag: stored.etag, mtimeMs: stored.mtimeMs, verified: new Date().toISOString(),
          ...(task.segment === undefined ? {} : { segment: task.segment }),
        };
        rec.files.set(file, verified);
        await this.append(rec, { file, ...verified });
        this.events.uploaded(stored.bytes);
        this.events.stored?.(rec.id, file, verified);
        this.events.log('info', { recording: rec.id, file, bytes: stored.bytes, etag: stored.etag, ms: Math.round(performance.now() - t0) },
          `uploaded ${file} to S3 and verified it (size and ETag)`);
      }
      if (task.again) {
        // Enqueued again meanwhile (session.json rewritten at the end): look at the file once more.
        task.again = false;
        task.status = 'queued';
        return;
      }
      this.done(task);
      await this.deleteLocal(rec, file);
    } catch (err) {
      if (abort.signal.aborted || this.closed) {
        // Forgotten (the recording is being deleted) or the daemon is stopping: nothing to retry here; a
        // file still on disk and not verified is queued again at the next start.
        this.done(task);
        return;
      }
      task.attempts++;
      task.lastError = describeError(err);
      this.events.failed();
      const delayMs = this.backoffMs(task.attempts);
      // Logged with the recording and the error; the SDK's messages are scrubbed of the keys (S3Store.wrap).
      this.events.log('warn', { recording: rec.id, file, attempt: task.attempts, retryInS: Math.round(delayMs / 100) / 10 },
        `upload of ${file} failed (attempt ${task.attempts}; the local file stays): ${task.lastError}`);
      task.status = 'retrying';
      task.timer = setTimeout(() => {
        task.timer = null;
        if (task.status !== 'retrying') return;
        task.status = 'queued';
        this.pump();
      }, delayMs);
      task.timer.unref();
    } finally {
      task.abort = null;
    }
  }

  /** Exponential from retry.min, capped at retry.max, ±20 % so that many failed files do not retry in step. */
  private backoffMs(attempt: number): number {
    const base = Math.min(this.o.retry.maxMs, this.o.retry.minMs * 2 ** Math.min(30, attempt - 1));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  private done(task: Task): void {
    const key = `${task.rec.id}/${task.file}`;
    if (this.tasks.get(key) === task) this.tasks.delete(key);
    task.rec.tasks.delete(task);
  }

  /**
   * Deletes the local copy of a verified file when its `keep-local-hours` are over, and only when it is
   * still exactly the file that was uploaded (same size and mtime): the verified line is already in
   * upload.jsonl, so the file is never unaccounted for.
   */
  private async deleteLocal(rec: Rec, file: string): Promise<void> {
    const entry = rec.files.get(file);
    if (entry === undefined || entry.localDeleted === true || !deletable(file) || this.forgotten.has(rec.id)) return;
    if (Date.now() - Date.parse(entry.verified) < this.o.keepLocalMs) return;
    const abs = path.join(this.o.root, rec.dir, file);
    const st = await fs.stat(abs).catch(() => null);
    if (st !== null && (st.size !== entry.bytes || st.mtimeMs !== entry.mtimeMs)) return;
    try {
      if (st !== null) await fs.unlink(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.events.log('warn', { recording: rec.id, file }, `cannot delete the local copy of ${file}: ${describeError(err)}`);
        return;
      }
    }
    entry.localDeleted = true;
    await this.append(rec, { file, localDeleted: true });
    this.events.stored?.(rec.id, file, entry);
    if (st !== null) this.events.log('info', { recording: rec.id, file, bytes: entry.bytes }, `local copy of ${file} deleted (verified in S3)`);
  }

  /** Deletes the local copies whose keep-local-hours are over. */
  private async sweep(): Promise<void> {
    // One pass at a time (a pass over many recordings may outlast the interval).
    if (this.sweeping || this.closed) return;
    this.sweeping = true;
    try {
      for (const rec of [...this.recs.values()]) {
        for (const [file, e] of [...rec.files]) {
          if (e.localDeleted !== true && deletable(file)) await this.deleteLocal(rec, file);
        }
      }
    } finally {
      this.sweeping = false;
    }
  }

  /** Appends one line to the recording's upload.jsonl (0600), after the ones before it. */
  private append(rec: Rec, line: Record<string, unknown>): Promise<void> {
    const file = path.join(this.o.root, rec.dir, UPLOAD_FILE);
    rec.write = rec.write.then(async () => {
      const text = `${rec.torn ? '\n' : ''}${JSON.stringify(line)}\n`;
      await fs.appendFile(file, text, { mode: PRIVATE_MODES.file });
      rec.torn = false;
    }).catch((err: unknown) => {
      // The upload itself stands; without the line it is only checked (and sent) again after a restart.
      if (!this.forgotten.has(rec.id)) this.events.log('error', { recording: rec.id }, `cannot write ${UPLOAD_FILE}: ${describeError(err)}`);
    });
    return rec.write;
  }

  /** The upload state of a recording (all zero when nothing of it is known to the queue). */
  status(id: string): UploadStatus {
    const rec = this.recs.get(id);
    if (rec === undefined) return { pending: 0, failed: 0, uploaded: 0, lastError: null };
    let failed = 0;
    let lastError: string | null = null;
    for (const t of rec.tasks) {
      if (t.lastError !== null) {
        failed++;
        lastError = t.lastError;
      }
    }
    return { pending: rec.tasks.size, failed, uploaded: rec.files.size, lastError };
  }

  /** Where file `file` of recording `id` is. */
  location(id: string, file: string): FileLocation {
    return this.recs.get(id)?.files.get(file)?.localDeleted === true ? 's3' : 'local';
  }

  /** The verified object of a file, or null. */
  remote(id: string, file: string): UploadEntry | null {
    return this.recs.get(id)?.files.get(file) ?? null;
  }

  /** Bytes of a recording that live only in S3 (retention counts them with the local ones). */
  remoteOnlyBytes(id: string): number {
    let n = 0;
    for (const e of this.recs.get(id)?.files.values() ?? []) if (e.localDeleted === true) n += e.bytes;
    return n;
  }

  /** The records of a recording's video segments that live only in S3 (for a recording found interrupted). */
  remoteSegments(id: string): StoredSegment[] {
    const out: StoredSegment[] = [];
    for (const e of this.recs.get(id)?.files.values() ?? []) if (e.localDeleted === true && e.segment !== undefined) out.push(e.segment);
    return out;
  }

  /** Bytes queued and not yet verified (deskrec_upload_backlog_bytes). */
  backlogBytes(): number {
    let n = 0;
    for (const t of this.tasks.values()) n += t.bytes;
    return n;
  }

  /** Files queued and not yet verified. */
  get pending(): number {
    return this.tasks.size;
  }

  /**
   * Stops everything of recording `id` (it is being deleted): queued and failed files are dropped, running
   * uploads aborted and awaited, and nothing of it is queued again.
   */
  async forget(id: string): Promise<void> {
    this.forgotten.add(id);
    const rec = this.recs.get(id);
    if (rec === undefined) return;
    const running: Promise<void>[] = [];
    for (const t of [...rec.tasks]) {
      if (t.timer !== null) clearTimeout(t.timer);
      t.timer = null;
      t.abort?.abort();
      if (t.running !== null) running.push(t.running);
      this.done(t);
    }
    await Promise.all(running);
    await rec.write;
    this.recs.delete(id);
  }

  /** Undoes forget(): the recording could not be deleted after all (its objects stayed), its files may go up again. */
  unforget(id: string): void {
    this.forgotten.delete(id);
  }

  /** Resolves true once nothing is queued, or false at `deadline` (Date.now() ms). */
  async idle(deadline: number): Promise<boolean> {
    while ((this.tasks.size > 0 || this.feeding.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    return this.tasks.size === 0 && this.feeding.size === 0;
  }

  /** Stops: running uploads are aborted (a file not verified goes up at the next start), nothing more starts. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    const running: Promise<void>[] = [];
    for (const t of this.tasks.values()) {
      if (t.timer !== null) clearTimeout(t.timer);
      t.abort?.abort();
      if (t.running !== null) running.push(t.running);
    }
    await Promise.all(running);
    await Promise.all([...this.recs.values()].map((r) => r.write));
  }
}
