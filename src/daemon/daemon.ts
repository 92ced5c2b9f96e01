/**
 * The recording daemon: many recordings at once under one storage root, each a RecordingJob that nothing
 * else can disturb. It keeps `always` targets recorded (a new recording after one ends, with backoff),
 * starts and stops recordings for the API, applies retention, watches the free space, finds what a killed
 * daemon left unfinished, reloads its configuration and drains on shutdown. The HTTP API (api.ts) and the
 * command line (src/cli/daemon.ts) are thin faces on this class.
 */
import { statfs } from 'node:fs/promises';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { ALL_FORMATS, FilePathSource, Input } from 'mediabunny';
import type { Logger } from 'pino';
import { describeError, DeskrecError, SinkError, UsageError } from '../errors';
import { recoverMp4 } from '../recorder/recover';
import { abortableDelay, backoffMs } from '../session/reconnect';
import type { Session } from '../session/session';
import { fileSource, type ByteSource } from './byte-source';
import { s3Credentials, targetOptions, type DaemonConfig, type TargetConfig } from './config';
import { apiSegments, errorInfo, RecordingJob, type ApiRecording, type JobSettings } from './job';
import { DaemonMetrics } from './metrics';
import type { DaemonRecordOptions } from './record-options';
import type { S3Store } from './s3-store';
import { directoryBytes, finished, newRecordingId, recordingDir, scanRecordings, writeMeta, type RecordingMeta, type RecordingState, type StoredSegment } from './store';
import { UploadQueue } from './upload-queue';

/** How often the free space is checked, ms. */
const DISK_CHECK_MS = 5000;
/** How often retention runs (also after every recording that ends), ms. */
const RETENTION_MS = 60_000;
/** An `always` target's recording that lasted this long resets its restart backoff. */
const STABLE_MS = 60_000;
/** How often running recordings are looked at for segments that finished (rotation) and can go to S3, ms. */
const SEGMENT_CHECK_MS = 1000;

/** What starts a recording through the API. */
export interface StartRequest {
  url?: string | undefined;
  /** A configured target (e.g. an `on-demand` one) instead of a URL. */
  target?: string | undefined;
  passwordFile?: string | undefined;
  options?: DaemonRecordOptions | undefined;
}

/** A filter for the list. */
export interface ListQuery {
  target?: string | undefined;
  state?: RecordingState | undefined;
  offset: number;
  limit: number;
}

/** What another part of the daemon hangs on every recording (the recordings page: artifacts, live view). */
export interface JobHooks {
  /** The job made a session (one per attempt). Must not throw (a throw is logged and ignored). */
  session(job: RecordingJob, session: Session): void;
  /** The job's session ended; awaited before the recording's final state. */
  finishing(job: RecordingJob): Promise<void>;
}

/** Health as `/healthz` shows it. */
export interface Health {
  ok: boolean;
  active: number;
  diskLow: boolean;
  diskFree: number | null;
  draining: boolean;
}

export class Daemon {
  readonly metrics: DaemonMetrics;
  readonly name: string;
  private config: DaemonConfig;
  private readonly jobs = new Map<string, RecordingJob>();
  /** Finished recordings (this run's and earlier runs'), by id. */
  private readonly past = new Map<string, RecordingMeta>();
  /** `always` targets being kept recorded, by name, with what stops their loop. */
  private readonly keepers = new Map<string, { config: TargetConfig; abort: AbortController; done: Promise<void> }>();
  private diskLow = false;
  private diskFree: number | null = null;
  private draining = false;
  private timers: NodeJS.Timeout[] = [];
  private retentionRunning: Promise<void> | null = null;
  private readonly hooks = new Set<JobHooks>();
  /** storage.s3: the object store and the queue of files going to it (null without storage.s3). */
  private store: S3Store | null = null;
  private uploads: UploadQueue | null = null;
  /** Per running recording, the finished segments already handed to the upload queue. */
  private readonly queuedSegments = new Map<string, Set<string>>();

  constructor(config: DaemonConfig, private readonly log: Logger) {
    this.config = config;
    this.name = `${hostname()}:${config.api.listen.port}`;
    this.metrics = new DaemonMetrics(config.storage.root, {
      active: () => this.jobs.size,
      counters: () => {
        const m = new Map<string, { framesEncoded: number; framesMerged: number; bytes: number; reconnects: number }>();
        for (const [id, job] of this.jobs) {
          const s = job.toApi().stats;
          if (s !== null) m.set(id, s);
        }
        return m;
      },
    });
  }

  /** The storage root (absolute). */
  get root(): string {
    return this.config.storage.root;
  }

  /**
   * Starts the daemon: the storage root is created (0700), recordings a killed daemon left unfinished are
   * marked `interrupted` and their files finished where possible, then `always` targets start.
   */
  async start(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
    await this.startStorage();
    await this.recover();
    await this.checkDisk();
    for (const t of this.config.targets) if (t.mode === 'always') this.keep(t);
    this.timers.push(setInterval(() => { void this.checkDisk(); }, DISK_CHECK_MS));
    this.timers.push(setInterval(() => { void this.applyRetention(); }, RETENTION_MS));
    if (this.uploads !== null) {
      this.timers.push(setInterval(() => { this.queueFinishedSegments(); }, SEGMENT_CHECK_MS));
      // Everything of the finished recordings that is not verified in S3 as it is now goes (back) into
      // the queue: uploads a restart cut off, recordings made while S3 was down or before it was configured.
      const past = [...this.past.values()];
      void (async (): Promise<void> => {
        for (const m of past) await this.uploads?.enqueueRecording(m.id, m.dir, m.segments ?? []);
      })().catch((err: unknown) => { this.log.error(`cannot queue the recordings' files for S3: ${describeError(err)}`); });
    }
    for (const t of this.timers) t.unref();
    void this.applyRetention();
  }

  /**
   * storage.s3: the object store client and the upload queue. The SDK is loaded only here, so a daemon
   * without S3 (and every other command) does not pay for it. The bucket is looked at once, but a store
   * that cannot be reached does not keep the daemon from recording: files wait on the local disk.
   */
  private async startStorage(): Promise<void> {
    const s3 = this.config.storage.s3;
    if (s3 === undefined) return;
    const { S3Store } = await import('./s3-store');
    const store = new S3Store(s3, s3Credentials(s3));
    this.store = store;
    this.uploads = new UploadQueue(store, {
      root: this.root, keepLocalMs: s3['keep-local-hours'] * 3_600_000, concurrency: s3.concurrency,
      retry: { minMs: s3.retry['min-delay'] * 1000, maxMs: s3.retry['max-delay'] * 1000 },
    }, {
      log: (level, fields, msg) => { this.log[level](fields, msg); },
      uploaded: (bytes) => { this.metrics.uploaded(bytes); },
      failed: () => { this.metrics.uploadFailed(); },
    });
    const uploads = this.uploads;
    this.metrics.enableUploads(() => uploads.backlogBytes());
    try {
      await store.checkBucket();
      this.log.info({ endpoint: s3.endpoint, bucket: s3.bucket, prefix: s3.prefix }, 'S3 storage: bucket reachable');
    } catch (err) {
      this.log.warn({ endpoint: s3.endpoint, bucket: s3.bucket }, `S3 storage: ${describeError(err)}; files stay on the local disk until uploads succeed`);
    }
  }

  /** Hands the segments that finished since the last look (rotation) of every running recording to the upload queue. */
  private queueFinishedSegments(): void {
    const uploads = this.uploads;
    if (uploads === null) return;
    for (const job of this.jobs.values()) {
      const session = job.session;
      if (session === null) continue;
      let queued = this.queuedSegments.get(job.id);
      for (const rec of session.segments()) {
        // A finished MP4's record is the one its close() returned, which alone says whether the file was
        // made fast start; the records of segments still being written or closing do not have the field.
        if (rec.kind !== 'mp4' || rec.fastStart === undefined) continue;
        const [seg] = apiSegments([rec]);
        if (seg === undefined || queued?.has(seg.file) === true) continue;
        if (queued === undefined) {
          queued = new Set();
          this.queuedSegments.set(job.id, queued);
        }
        queued.add(seg.file);
        void uploads.enqueue(job.id, job.meta.dir, seg.file, seg);
      }
    }
  }

  /** Finds recordings left unfinished by a daemon that died, marks them interrupted and finishes their MP4s. */
  private async recover(): Promise<void> {
    const metas = await scanRecordings(this.root, (file, why) => { this.log.warn({ file }, `skipped while scanning the storage: ${why}`); });
    for (const meta of metas) {
      if (finished(meta.state)) {
        this.past.set(meta.id, meta);
        continue;
      }
      const dir = path.join(this.root, meta.dir);
      const segments: StoredSegment[] = [];
      let files: string[] = [];
      try {
        files = (await fs.readdir(dir)).filter((f) => /^display(-\d{3})?\.mp4$/.test(f)).sort();
      } catch {
        // An empty or vanished directory: nothing to finish.
      }
      let newest = Date.parse(meta.start);
      for (const f of files) {
        const file = path.join(dir, f);
        try {
          const r = await recoverMp4(file, 0o600);
          segments.push({ kind: 'mp4', file: f, start_ms: r.first_t_ms ?? 0, width: 0, height: 0, frames: r.frames, duration_ms: r.duration_ms, bytes: r.bytes });
          const st = await fs.stat(file);
          newest = Math.max(newest, st.mtimeMs);
          this.log.info({ recording: meta.id, file: f, frames: r.frames, fastStart: r.fastStart, truncated: r.truncated }, 'finished a segment of an interrupted recording');
        } catch (err) {
          // Never deleted: a file we cannot finish stays as it is for a person to look at.
          this.log.warn({ recording: meta.id, file: f }, `could not finish a segment of an interrupted recording: ${describeError(err)}`);
        }
      }
      for (const s of segments) Object.assign(s, await videoSize(path.join(dir, s.file)));
      if (this.uploads !== null) {
        // Segments that went to S3 and left the disk before the daemon died are still the recording's.
        await this.uploads.track(meta.id, meta.dir);
        for (const s of this.uploads.remoteSegments(meta.id)) if (!segments.some((x) => x.file === s.file)) segments.push(s);
        segments.sort((a, b) => a.start_ms - b.start_ms);
      }
      const updated: RecordingMeta = {
        ...meta, state: 'interrupted', end: new Date(newest).toISOString(), segments,
        error: { code: 'INTERRUPTED', message: 'the daemon stopped without finishing this recording (killed or crashed); its files were kept and finished where possible' },
      };
      await writeMeta(this.root, updated).catch((err: unknown) => { this.log.error({ recording: meta.id }, `cannot write recording.json: ${describeError(err)}`); });
      this.past.set(meta.id, updated);
      this.metrics.ended(meta.id, 'interrupted', null);
      this.log.warn({ recording: meta.id, target: meta.target }, 'recording marked interrupted (the daemon that recorded it stopped without finishing it)');
    }
  }

  /** Keeps target `t` recorded until it is removed or the daemon stops: a new recording after each one ends. */
  private keep(t: TargetConfig): void {
    const abort = new AbortController();
    const done = (async (): Promise<void> => {
      let attempt = 0;
      while (!abort.signal.aborted) {
        if (this.diskLow) {
          if (!(await abortableDelay(DISK_CHECK_MS, abort.signal))) break;
          continue;
        }
        const began = performance.now();
        let job: RecordingJob | null = null;
        try {
          job = await this.startJob(t.url, t.name, targetOptions(this.config, t), { file: t['password-file'] ?? null, env: t['password-env'] ?? null });
        } catch (err) {
          this.log.error({ target: t.name }, `cannot start recording target ${t.name}: ${describeError(err)}`);
        }
        if (job !== null) {
          const j = job;
          const onAbort = (): void => { void j.stop(); };
          abort.signal.addEventListener('abort', onAbort, { once: true });
          await j.finished;
          abort.signal.removeEventListener('abort', onAbort);
        }
        if (abort.signal.aborted) break;
        attempt = performance.now() - began >= STABLE_MS ? 1 : attempt + 1;
        const delayMs = backoffMs(attempt, { reopen: () => { throw new Error('unused'); }, ...this.reconnectSettings() });
        this.log.info({ target: t.name }, `target ${t.name}: starting a new recording in ${(delayMs / 1000).toFixed(1)} s`);
        if (!(await abortableDelay(delayMs, abort.signal))) break;
      }
    })();
    this.keepers.set(t.name, { config: t, abort, done });
  }

  private reconnectSettings(): JobSettings['reconnect'] {
    return { minDelayMs: this.config.reconnect['min-delay'] * 1000, maxDelayMs: this.config.reconnect['max-delay'] * 1000 };
  }

  /** Starts a recording through the API. */
  async startRecording(req: StartRequest): Promise<RecordingJob> {
    if (req.target !== undefined) {
      const t = this.config.targets.find((x) => x.name === req.target);
      if (t === undefined) throw new UsageError('UNKNOWN_TARGET', `no target named '${req.target}' in the configuration`);
      if (req.url !== undefined) throw new UsageError('BAD_ARGUMENT', 'give a url or a target, not both');
      const options = { ...targetOptions(this.config, t), ...(req.options ?? {}) };
      return this.startJob(t.url, t.name, options, { file: req.passwordFile ?? t['password-file'] ?? null, env: t['password-env'] ?? null });
    }
    if (req.url === undefined) throw new UsageError('BAD_ARGUMENT', 'a recording needs a url (or the name of a configured target)');
    const options = { ...(this.config.defaults ?? {}), ...(req.options ?? {}) };
    // No environment variable for API recordings: a caller must not read the daemon's environment.
    return this.startJob(req.url, null, options, { file: req.passwordFile ?? null, env: null });
  }

  private async startJob(url: string, target: string | null, options: DaemonRecordOptions, password: { file: string | null; env: string | null }): Promise<RecordingJob> {
    if (this.draining) throw new DaemonBusy('DRAINING', 'the daemon is shutting down: no new recordings');
    if (this.diskLow) {
      throw new SinkError('DISK_LOW', `less than ${formatBytes(this.config.storage['min-free'])} free under ${this.root}: new recordings are refused until there is room`);
    }
    const id = newRecordingId();
    const start = new Date();
    const meta: RecordingMeta = {
      version: 1, id, target, url: publicUrl(url), state: 'starting', start: start.toISOString(), end: null,
      dir: recordingDir(this.config.storage.template, { target, id, start }), error: null, daemon: this.name,
    };
    const log = this.log.child({ recording: id, ...(target === null ? {} : { target }) });
    const job = new RecordingJob({ meta, options, password }, this.jobSettings(), {
      log: (level, msg, fields) => { log[level](fields ?? {}, msg); },
      state: (j, state) => { this.onJobState(j, state); },
      encodeTime: (seconds) => { this.metrics.encodeSeconds.observe(seconds); },
      session: (j, session) => {
        for (const h of this.hooks) {
          try {
            h.session(j, session);
          } catch (err) {
            log.warn(`a recording hook failed: ${describeError(err)}`);
          }
        }
      },
      finishing: async (j) => {
        // The session has ended and its files are final: all of them go to S3 (those already verified are
        // skipped), queued before the recording shows `done`, so its `upload.pending` never reads 0 while
        // its last files are not even queued yet.
        const uploads = this.uploads?.enqueueRecording(j.id, j.meta.dir, j.toApi().segments)
          .catch((err: unknown) => { log.error(`cannot queue the recording's files for S3: ${describeError(err)}`); });
        await Promise.all([...[...this.hooks].map((h) => h.finishing(j).catch((err: unknown) => { log.warn(`a recording hook failed: ${describeError(err)}`); })), uploads]);
      },
    });
    await job.start();
    this.jobs.set(id, job);
    log.info({ url: meta.url, dir: meta.dir }, 'recording started');
    return job;
  }

  private jobSettings(): JobSettings {
    const r = this.config.rotation;
    return { root: this.root, rotation: { minutes: r.minutes, megabytes: r.megabytes }, reconnect: this.reconnectSettings() };
  }

  private onJobState(job: RecordingJob, state: RecordingState): void {
    if (!finished(state)) return;
    this.jobs.delete(job.id);
    this.past.set(job.id, { ...job.meta });
    this.queuedSegments.delete(job.id);
    const s = job.toApi().stats;
    this.metrics.ended(job.id, state === 'done' ? 'done' : state === 'failed' ? 'failed' : 'interrupted', s);
    this.log.info({ recording: job.id, state, error: job.meta.error?.code }, `recording ${state}`);
    void this.applyRetention();
  }

  /** Stops a recording (its files stay); resolves when its files are finished. */
  async stopRecording(id: string): Promise<ApiRecording> {
    const job = this.jobs.get(id);
    if (job === undefined) {
      const p = this.past.get(id);
      if (p === undefined) throw notFound(id);
      return this.decorate(pastToApi(p));
    }
    // An `always` target stopped through the API is not restarted until the configuration is reloaded.
    const keeper = job.meta.target === null ? undefined : this.keepers.get(job.meta.target);
    if (keeper !== undefined) {
      keeper.abort.abort();
      this.keepers.delete(job.meta.target ?? '');
      this.log.info({ target: job.meta.target }, `target ${job.meta.target ?? ''} stopped through the API: not restarted until the configuration is reloaded`);
    }
    await job.stop();
    return this.decorate(job.toApi());
  }

  /** Removes a finished recording's directory. */
  async deleteFiles(id: string): Promise<void> {
    if (this.jobs.has(id)) throw new DaemonBusy('RECORDING_ACTIVE', `recording ${id} is still running: stop it first`);
    const p = this.past.get(id);
    if (p === undefined) throw notFound(id);
    await this.remove(p, 'deleted through the API');
  }

  private async remove(meta: RecordingMeta, why: string): Promise<void> {
    const dir = path.join(this.root, meta.dir);
    if (this.uploads !== null && this.store !== null) {
      // The objects go first: a store that cannot be reached leaves the recording whole (local files and
      // metadata), to be deleted by the next try, rather than objects nobody knows about.
      await this.uploads.forget(meta.id);
      try {
        const n = await this.store.deleteRecording(meta.id);
        if (n > 0) this.log.info({ recording: meta.id, objects: n }, `deleted ${n} object(s) of the recording from S3`);
      } catch (err) {
        this.uploads.unforget(meta.id);
        void this.uploads.enqueueRecording(meta.id, meta.dir, meta.segments ?? []).catch(() => undefined);
        throw err;
      }
    }
    await fs.rm(dir, { recursive: true, force: true });
    this.past.delete(meta.id);
    this.log.info({ recording: meta.id, target: meta.target, dir: meta.dir }, `recording deleted: ${why}`);
    // Empty parents up to the root go too (the template's {target}/ level).
    let parent = path.dirname(dir);
    while (parent.startsWith(this.root + path.sep)) {
      try {
        await fs.rmdir(parent);
      } catch {
        break;
      }
      parent = path.dirname(parent);
    }
  }

  /** One recording as the API shows it, or null. */
  get(id: string): ApiRecording | null {
    const job = this.jobs.get(id);
    if (job !== undefined) return this.decorate(job.toApi());
    const p = this.past.get(id);
    return p === undefined ? null : this.decorate(pastToApi(p));
  }

  /** A recording as the API shows it, with where each segment's file is and, with S3, its uploads. */
  private decorate(r: ApiRecording): ApiRecording {
    const u = this.uploads;
    // PNG segments are named by their first frame, which lies in frames/.
    const segments = r.segments.map((s) => ({ ...s, location: u === null ? 'local' as const : u.location(r.id, s.kind === 'png' ? `frames/${s.file}` : s.file) }));
    return u === null ? { ...r, segments } : { ...r, segments, upload: u.status(r.id) };
  }

  /** The directory of a recording (absolute), or null. */
  dirOf(id: string): string | null {
    const r = this.jobs.get(id)?.meta ?? this.past.get(id);
    return r === undefined ? null : path.join(this.root, r.dir);
  }

  /**
   * Hangs `hooks` on every recording from now on, and on the sessions of those already running (`always`
   * targets start before the API and its page exist). Returns what removes them.
   */
  addJobHooks(hooks: JobHooks): () => void {
    this.hooks.add(hooks);
    for (const job of this.jobs.values()) if (job.session !== null) hooks.session(job, job.session);
    return () => { this.hooks.delete(hooks); };
  }

  /**
   * Video segment `n` (0-based, counting MP4 files only: PNG frames are not a file to play) of recording
   * `id`, as a path relative to the storage root; NotFound when there is no such recording or segment.
   */
  videoSegment(id: string, n: string): string {
    const r = this.get(id);
    if (r === null) throw notFound(id);
    const videos = r.segments.filter((s) => s.kind === 'mp4');
    const seg = /^\d{1,6}$/.test(n) ? videos[Number(n)] : undefined;
    if (seg === undefined) throw new NotFound(`recording ${id} has no video segment ${n} (it has ${videos.length})`);
    return path.join(r.dir, seg.file);
  }

  /**
   * Video segment `n` of recording `id` as bytes to serve: the local file while there is one, else the
   * object in S3 it was verified as. NotFound when there is neither.
   */
  async videoSource(id: string, n: string): Promise<ByteSource> {
    const rel = this.videoSegment(id, n);
    try {
      return await fileSource(this.root, rel);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const file = path.basename(rel);
    const remote = this.uploads?.remote(id, file) ?? null;
    const store = this.store;
    if (remote === null || store === null) throw new NotFound(`segment ${file} of recording ${id} is missing on disk`);
    return {
      name: file, size: remote.bytes, version: remote.etag, lastModified: new Date(remote.verified), localPath: null,
      read: (position, length) => store.read(remote.key, position, Math.min(length, remote.bytes - position)),
      open: (range) => store.get(remote.key, range),
    };
  }

  /** The running job of a recording, or null. */
  job(id: string): RecordingJob | null {
    return this.jobs.get(id) ?? null;
  }

  /** Recordings, newest first, filtered and paged. */
  list(q: ListQuery): { recordings: ApiRecording[]; total: number } {
    const all: ApiRecording[] = [...[...this.jobs.values()].map((j) => j.toApi()), ...[...this.past.values()].map(pastToApi)].map((r) => this.decorate(r))
      .filter((r) => (q.target === undefined || r.target === q.target) && (q.state === undefined || r.state === q.state))
      .sort((a, b) => (a.start < b.start ? 1 : a.start > b.start ? -1 : a.id.localeCompare(b.id)));
    return { recordings: all.slice(q.offset, q.offset + q.limit), total: all.length };
  }

  health(): Health {
    return { ok: !this.diskLow && !this.draining, active: this.jobs.size, diskLow: this.diskLow, diskFree: this.diskFree, draining: this.draining };
  }

  /**
   * Checks the free space: below `storage.min-free` new recordings are refused and running ones finish their
   * segments and stop (state failed, DISK_LOW); above it again, `always` targets resume.
   */
  private async checkDisk(): Promise<void> {
    let free: number;
    try {
      const s = await statfs(this.root);
      free = s.bavail * s.bsize;
    } catch (err) {
      this.log.error(`cannot check the free space of ${this.root}: ${describeError(err)}`);
      return;
    }
    this.diskFree = free;
    const floor = this.config.storage['min-free'];
    if (!this.diskLow && free < floor) {
      this.diskLow = true;
      this.log.error({ free, floor }, `less than ${formatBytes(floor)} free under ${this.root}: stopping ${this.jobs.size} recording(s), refusing new ones`);
      const reason = { code: 'DISK_LOW', message: `stopped: less than ${formatBytes(floor)} free under the storage root` };
      await Promise.all([...this.jobs.values()].map((j) => j.stop(reason)));
    } else if (this.diskLow && free >= floor) {
      this.diskLow = false;
      this.log.info({ free, floor }, 'free space is back above the floor: recordings may start again');
    }
  }

  /**
   * Deletes finished recordings past the retention limits: older than max-age (by their end), then the
   * oldest while a target's or the whole store's bytes exceed their bound. Running and unfinished
   * recordings are never deleted. One pass at a time.
   */
  applyRetention(): Promise<void> {
    this.retentionRunning ??= this.retention().finally(() => { this.retentionRunning = null; });
    return this.retentionRunning;
  }

  private async retention(): Promise<void> {
    const r = this.config.retention;
    if (r['max-age'] === undefined && r['max-bytes'] === undefined && r['max-bytes-per-target'] === undefined) return;
    const now = Date.now();
    const candidates = [...this.past.values()].sort((a, b) => Date.parse(a.end ?? a.start) - Date.parse(b.end ?? b.start));
    const maxAge = r['max-age'];
    const kept: { meta: RecordingMeta; bytes: number }[] = [];
    for (const meta of candidates) {
      const ended = Date.parse(meta.end ?? meta.start);
      if (maxAge !== undefined && now - ended > maxAge * 1000) {
        await this.remove(meta, `older than the retention's max-age (${maxAge} s)`).catch((err: unknown) => { this.log.error(`retention: ${describeError(err)}`); });
      } else {
        kept.push({ meta, bytes: await this.recordingBytes(meta.id, meta.dir) });
      }
    }
    let activeBytes = 0;
    const activeByTarget = new Map<string, number>();
    for (const j of this.jobs.values()) {
      const b = await this.recordingBytes(j.id, j.meta.dir);
      activeBytes += b;
      const t = j.meta.target ?? '';
      activeByTarget.set(t, (activeByTarget.get(t) ?? 0) + b);
    }
    const perTarget = r['max-bytes-per-target'];
    if (perTarget !== undefined) {
      const byTarget = new Map<string, { meta: RecordingMeta; bytes: number }[]>();
      for (const k of kept) {
        const t = k.meta.target ?? '';
        byTarget.set(t, [...(byTarget.get(t) ?? []), k]);
      }
      for (const [t, list] of byTarget) {
        let total = list.reduce((s, k) => s + k.bytes, activeByTarget.get(t) ?? 0);
        for (const k of list) {
          if (total <= perTarget) break;
          total -= k.bytes;
          await this.remove(k.meta, `target ${t === '' ? '(API)' : t} above the retention's max-bytes-per-target (${formatBytes(perTarget)})`)
            .catch((err: unknown) => { this.log.error(`retention: ${describeError(err)}`); });
          kept.splice(kept.indexOf(k), 1);
        }
      }
    }
    const maxBytes = r['max-bytes'];
    if (maxBytes !== undefined) {
      let total = kept.reduce((s, k) => s + k.bytes, activeBytes);
      for (const k of [...kept]) {
        if (total <= maxBytes) break;
        total -= k.bytes;
        await this.remove(k.meta, `storage above the retention's max-bytes (${formatBytes(maxBytes)})`).catch((err: unknown) => { this.log.error(`retention: ${describeError(err)}`); });
      }
    }
  }

  /** A recording's bytes for retention: its directory's, and those of its files that are only in S3. */
  private async recordingBytes(id: string, dir: string): Promise<number> {
    return (await directoryBytes(path.join(this.root, dir))) + (this.uploads?.remoteOnlyBytes(id) ?? 0);
  }

  /**
   * Applies a new configuration (SIGHUP): removed targets stop, added ones start, changed ones stop and
   * start again as a new recording (the old one is finished); everything else (API recordings) goes on.
   * Storage, API and rotation settings apply to recordings started from now on; the API address does not
   * change without a restart (said in the log).
   */
  async reload(next: DaemonConfig): Promise<void> {
    const before = this.config;
    if (next.storage.root !== before.storage.root) {
      this.log.warn('storage.root changed: it takes effect at the next start, not on reload');
      next = { ...next, storage: { ...next.storage, root: before.storage.root } };
    }
    if (JSON.stringify(next.storage.s3) !== JSON.stringify(before.storage.s3)) {
      this.log.warn('storage.s3 changed: it takes effect at the next start, not on reload');
      next = { ...next, storage: { ...next.storage, s3: before.storage.s3 } };
    }
    if (JSON.stringify(next.api) !== JSON.stringify(before.api)) this.log.warn('api settings changed: they take effect at the next start, not on reload');
    this.config = next;
    const wanted = new Map(next.targets.filter((t) => t.mode === 'always').map((t) => [t.name, t]));
    const stops: Promise<void>[] = [];
    for (const [name, k] of this.keepers) {
      const w = wanted.get(name);
      if (w !== undefined && JSON.stringify(w) === JSON.stringify(k.config) && JSON.stringify(next.defaults) === JSON.stringify(before.defaults)) continue;
      this.keepers.delete(name);
      k.abort.abort();
      this.log.info({ target: name }, w === undefined ? `target ${name} removed: its recording stops` : `target ${name} changed: its recording stops and a new one starts`);
      stops.push(k.done);
    }
    await Promise.all(stops);
    for (const [name, t] of wanted) {
      if (this.keepers.has(name)) continue;
      this.log.info({ target: name }, `target ${name} starts`);
      this.keep(t);
    }
  }

  /**
   * Stops everything (SIGTERM): no new recordings; every running one finishes its segments (fast-start)
   * within `timeoutMs`; resolves with the recordings that had not finished by then.
   */
  async drain(timeoutMs = this.config['drain-timeout'] * 1000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    this.draining = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const k of this.keepers.values()) k.abort.abort();
    const all = Promise.all([...this.jobs.values()].map((j) => j.stop()));
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => { resolve(true); }, timeoutMs); }),
    ]);
    clearTimeout(timer);
    await Promise.race([Promise.all([...this.keepers.values()].map((k) => k.done)), abortableDelay(1000, new AbortController().signal)]);
    if (this.uploads !== null) {
      // The last segments go up within what is left of the drain time; what does not is on the local disk
      // and goes up at the next start.
      if (!(await this.uploads.idle(deadline))) {
        this.log.warn({ files: this.uploads.pending, bytes: this.uploads.backlogBytes() }, 'stopping with uploads to S3 pending: they resume at the next start (the files stay on the local disk)');
      }
      await this.uploads.close();
      this.store?.destroy();
    }
    return late ? [...this.jobs.keys()] : [];
  }
}

/** A request the daemon cannot take in its present state (409 / 503 in the API). */
export class DaemonBusy extends DeskrecError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'DaemonBusy';
  }
}

/** No such recording (404). */
export class NotFound extends DeskrecError {
  constructor(message: string) {
    super('NOT_FOUND', message);
    this.name = 'NotFound';
  }
}

function notFound(id: string): NotFound {
  return new NotFound(`no recording ${id}`);
}

function pastToApi(m: RecordingMeta): ApiRecording {
  return {
    id: m.id, target: m.target, url: m.url, state: m.state, start: m.start, end: m.end, dir: m.dir,
    segments: m.segments ?? [], stats: m.stats ?? null, error: m.error, daemon: m.daemon ?? null,
  };
}

/** The URL as stored and shown: without a password (refused anyway) and without a query's secrets. */
export function publicUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${n} bytes`;
}

/** The picture size of an MP4's video track (0x0 when it cannot be read). */
async function videoSize(file: string): Promise<{ width: number; height: number }> {
  const input = new Input({ source: new FilePathSource(file), formats: ALL_FORMATS });
  try {
    const track = await input.getPrimaryVideoTrack();
    return track === null ? { width: 0, height: 0 } : { width: await track.getCodedWidth(), height: await track.getCodedHeight() };
  } catch {
    return { width: 0, height: 0 };
  } finally {
    input.dispose();
  }
}

export { errorInfo };
