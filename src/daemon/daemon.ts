/**
 * The recording daemon: many recordings at once under one storage root, each a RecordingJob that nothing
 * else can disturb. It keeps `always` targets recorded (a new recording after one ends, with backoff),
 * starts and stops recordings for the API, applies retention, watches the free space, finds what a killed
 * daemon left unfinished, reloads its configuration and drains on shutdown. The HTTP API (api.ts) and the
 * command line (src/cli/daemon.ts) are thin faces on this class. In cluster mode (cluster.ts) the
 * recordings come from a BullMQ queue shared with other daemons instead: the same jobs run here, and the
 * list, stops and deletes go through Redis so that any daemon answers for the whole cluster.
 */
import { statfs } from 'node:fs/promises';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { ALL_FORMATS, Input, mediaFileSource } from '../recorder/media';
import type { Logger } from 'pino';
import { describeError, DeskrecError, SinkError, UsageError } from '../errors';
import { recoverMp4 } from '../recorder/recover';
import { abortableDelay, backoffMs } from '../session/reconnect';
import type { Job } from 'bullmq';
import type { Session } from '../session/session';
import { openSource } from '../sources/open';
import { fileSource, type ByteSource } from './byte-source';
import type { Cluster, ClusterJobData, ClusterRecording, ControlMessage } from './cluster';
import { s3Credentials, targetOptions, type DaemonConfig, type TargetConfig } from './config';
import { apiSegments, errorInfo, RecordingJob, type ApiRecording, type ApiSegment, type JobSettings, type RecordingPart } from './job';
import { DaemonMetrics } from './metrics';
import { toSourceOptions, type DaemonRecordOptions } from './record-options';
import type { S3Store } from './s3-store';
import { directoryBytes, finished, newRecordingId, objectField, recordingDir, scanRecordings, uploadId, writeMeta, type RecordingMeta, type RecordingState, type StoredSegment } from './store';
import { UploadQueue, type UploadEntry } from './upload-queue';

/** How often the free space is checked, ms. */
const DISK_CHECK_MS = 5000;
/** How often retention runs (also after every recording that ends), ms. */
const RETENTION_MS = 60_000;
/** An `always` target's recording that lasted this long resets its restart backoff. */
const STABLE_MS = 60_000;
/** How often running recordings are looked at for segments that finished (rotation) and can go to S3, ms. */
const SEGMENT_CHECK_MS = 1000;
/** Cluster mode: how often a running recording's JSON (counters, segments) is written to the cluster state, ms. */
const CLUSTER_PUBLISH_MS = 1000;

/** Cluster mode: a recording this daemon runs for the queue. */
interface ClusterRun {
  jobId: string;
  job: RecordingJob | null;
  /** The state before this daemon's part (earlier parts by other daemons), or null for a new recording. */
  prev: ClusterRecording | null;
  /** When this daemon's part began. */
  partStart: string;
  /** Stopped to hand the recording to another daemon (drain, lost lock): it stays unfinished in the cluster. */
  handover: boolean;
}

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
  /** Cluster mode: the connection to the cluster's Redis (null without `cluster`). */
  private cluster: Cluster | null = null;
  /** Cluster mode: the recordings this daemon runs for the queue, by recording id. */
  private readonly clusterRuns = new Map<string, ClusterRun>();
  /** Writes to the cluster state, in order (a slow write must not let an older state land after a newer one). */
  private clusterWrites: Promise<void> = Promise.resolve();
  /** Aborted when the daemon drains: ends the waits between an `always` target's recordings. */
  private readonly drainAbort = new AbortController();

  constructor(config: DaemonConfig, private readonly log: Logger) {
    this.config = config;
    this.name = config.cluster?.name ?? `${hostname()}:${config.api.listen.port}`;
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
    const cc = this.config.cluster;
    if (cc !== undefined) {
      // First, so a Redis that is unreachable or may evict refuses the start before anything is touched.
      const { Cluster } = await import('./cluster');
      this.cluster = await Cluster.connect(cc.redis, {
        process: (job, signal) => this.processClusterJob(job, signal),
        control: (msg) => { this.onControl(msg); },
        lockLost: (ids) => { this.onLockLost(ids); },
        log: (level, msg) => { this.log[level](msg); },
      });
      this.log.info({ redis: cc.redis.replace(/\/\/[^@/]*@/, '//'), name: this.name, capacity: cc.capacity }, 'cluster mode: connected to Redis');
    }
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
    await this.startStorage();
    await this.recover();
    await this.checkDisk();
    const cluster = this.cluster;
    if (cluster !== null && cc !== undefined) {
      cluster.startWorker(cc.capacity);
      // A start is a reload for the targets: configured `always` targets are recorded again even if they were
      // stopped through the API or withdrawn by another daemon's reload (as a single daemon's restart does).
      for (const t of this.config.targets) {
        if (t.mode !== 'always') continue;
        await cluster.resumeTarget(t.name).catch(() => undefined);
        await this.addTargetJob(t);
      }
      this.timers.push(setInterval(() => { for (const id of this.clusterRuns.keys()) this.publishState(id); }, CLUSTER_PUBLISH_MS));
    } else {
      for (const t of this.config.targets) if (t.mode === 'always') this.keep(t);
    }
    this.timers.push(setInterval(() => { void this.checkDisk(); }, DISK_CHECK_MS));
    this.timers.push(setInterval(() => { void this.applyRetention(); }, RETENTION_MS));
    if (this.uploads !== null) {
      this.timers.push(setInterval(() => { this.queueFinishedSegments(); }, SEGMENT_CHECK_MS));
      // Everything of the finished recordings that is not verified in S3 as it is now goes (back) into
      // the queue: uploads a restart cut off, recordings made while S3 was down or before it was configured.
      const past = [...this.past.values()];
      void (async (): Promise<void> => {
        for (const m of past) await this.uploads?.enqueueRecording(uploadId(m), m.dir, m.segments ?? []);
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
      stored: (uid, file, entry) => { this.publishObject(uid, file, entry); },
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
        void uploads.enqueue(uploadId(job.meta), job.meta.dir, seg.file, seg);
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
        await this.uploads.track(uploadId(meta), meta.dir);
        for (const s of this.uploads.remoteSegments(uploadId(meta))) if (!segments.some((x) => x.file === s.file)) segments.push(s);
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
    const r = this.resolveStart(req);
    return this.startJob(r.url, r.target, r.options, r.password);
  }

  /**
   * Starts a recording here. `cont` (cluster mode): the recording's id and start are the cluster's, and
   * `part` > 0 says it continues what other daemons recorded (its own directory, name suffixed `-p<part>`).
   */
  private async startJob(url: string, target: string | null, options: DaemonRecordOptions, password: { file: string | null; env: string | null },
    cont?: { id: string; start: string; part: number }): Promise<RecordingJob> {
    if (this.draining) throw new DaemonBusy('DRAINING', 'the daemon is shutting down: no new recordings');
    if (this.diskLow) {
      throw new SinkError('DISK_LOW', `less than ${formatBytes(this.config.storage['min-free'])} free under ${this.root}: new recordings are refused until there is room`);
    }
    const id = cont?.id ?? newRecordingId();
    const start = new Date();
    const part = cont?.part ?? 0;
    const dir = recordingDir(this.config.storage.template, { target, id, start });
    const meta: RecordingMeta = {
      version: 1, id, target, url: publicUrl(url), state: 'starting', start: cont?.start ?? start.toISOString(), end: null,
      dir: part > 0 ? `${dir}-p${part}` : dir, error: null, daemon: this.name, ...(part > 0 ? { part } : {}),
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
        const uploads = this.uploads?.enqueueRecording(uploadId(j.meta), j.meta.dir, j.toApi().segments)
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
    if (this.clusterRuns.has(job.id)) this.publishState(job.id);
    if (!finished(state)) return;
    this.jobs.delete(job.id);
    this.past.set(job.id, { ...job.meta });
    this.queuedSegments.delete(job.id);
    const s = job.toApi().stats;
    this.metrics.ended(job.id, state === 'done' ? 'done' : state === 'failed' ? 'failed' : 'interrupted', s);
    this.log.info({ recording: job.id, state, error: job.meta.error?.code }, `recording ${state}`);
    void this.applyRetention();
  }


  /** True in cluster mode: the API then lists, starts and controls the whole cluster's recordings. */
  get clustered(): boolean {
    return this.cluster !== null;
  }

  private requireCluster(): Cluster {
    if (this.cluster === null) throw new Error('not in cluster mode');
    return this.cluster;
  }

  /** What a start request means: URL, target, options, password (shared by the local and the cluster start). */
  private resolveStart(req: StartRequest): { url: string; target: string | null; options: DaemonRecordOptions; password: { file: string | null; env: string | null } } {
    if (req.target !== undefined) {
      const t = this.config.targets.find((x) => x.name === req.target);
      if (t === undefined) throw new UsageError('UNKNOWN_TARGET', `no target named '${req.target}' in the configuration`);
      if (req.url !== undefined) throw new UsageError('BAD_ARGUMENT', 'give a url or a target, not both');
      return { url: t.url, target: t.name, options: { ...targetOptions(this.config, t), ...(req.options ?? {}) }, password: { file: req.passwordFile ?? t['password-file'] ?? null, env: t['password-env'] ?? null } };
    }
    if (req.url === undefined) throw new UsageError('BAD_ARGUMENT', 'a recording needs a url (or the name of a configured target)');
    // No environment variable for API recordings: a caller must not read the daemon's environment.
    return { url: req.url, target: null, options: { ...(this.config.defaults ?? {}), ...(req.options ?? {}) }, password: { file: req.passwordFile ?? null, env: null } };
  }

  /**
   * Cluster mode: a recording started through the API becomes a job (job id = recording id) that any
   * daemon with room takes. Resolves with its first cluster state (`starting`, no daemon yet).
   */
  async clusterStart(req: StartRequest): Promise<ClusterRecording> {
    const cluster = this.requireCluster();
    if (this.draining) throw new DaemonBusy('DRAINING', 'the daemon is shutting down: no new recordings');
    const r = this.resolveStart(req);
    // The URL and options are checked here, so a mistake is the caller's 400, not a failed job elsewhere.
    openSource(r.url, toSourceOptions(r.options, r.password));
    const id = newRecordingId();
    const state: ClusterRecording = {
      id, target: r.target, url: publicUrl(r.url), state: 'starting', start: new Date().toISOString(), end: null, dir: '',
      segments: [], stats: null, error: null, daemon: null, parts: [],
    };
    await cluster.put(state);
    await cluster.add(id, { recording: id, kind: 'api', ...r });
    this.log.info({ recording: id, url: state.url }, 'recording queued in the cluster');
    return state;
  }

  /** Cluster mode: puts an `always` target's job in the queue (a no-op while its job exists). */
  private async addTargetJob(t: TargetConfig): Promise<void> {
    const cluster = this.requireCluster();
    try {
      if (await cluster.targetStopped(t.name)) {
        this.log.info({ target: t.name }, `target ${t.name} was stopped through the API: not queued`);
        return;
      }
      await cluster.add(`target-${t.name}`, {
        recording: newRecordingId(), kind: 'always', url: t.url, target: t.name, options: targetOptions(this.config, t),
        password: { file: t['password-file'] ?? null, env: t['password-env'] ?? null },
      });
    } catch (err) {
      this.log.error({ target: t.name }, `cannot queue target ${t.name} in the cluster: ${describeError(err)}`);
    }
  }

  /**
   * Cluster mode: runs one queue job here until its recording ends. A recording other daemons began is
   * continued as a new part of the same id. An `always` target's job records one recording after another
   * (a new id each time) until the target is stopped through the API. Throws to hand the job back to the
   * queue (draining, lock lost): the recording stays unfinished and another daemon continues it.
   */
  private async processClusterJob(bj: Job<ClusterJobData>, signal: AbortSignal | undefined): Promise<void> {
    const cluster = this.requireCluster();
    let data = bj.data;
    let attempt = 0;
    for (;;) {
      if (this.draining) throw new Error('handed back: this daemon is draining');
      if (data.kind === 'always' && data.target !== null && await cluster.targetStopped(data.target)) return;
      let prev = await cluster.get(data.recording);
      if (prev !== null && finished(prev.state)) {
        if (data.kind === 'api') return;
        data = { ...data, recording: newRecordingId() };
        await bj.updateData(data);
        prev = null;
      }
      const partStart = new Date().toISOString();
      const run: ClusterRun = { jobId: bj.id ?? data.recording, job: null, prev, partStart, handover: false };
      this.clusterRuns.set(data.recording, run);
      let job: RecordingJob;
      try {
        job = await this.startJob(data.url, data.target, data.options, data.password, { id: data.recording, start: prev?.start ?? partStart, part: prev?.parts.length ?? 0 });
      } catch (err) {
        this.clusterRuns.delete(data.recording);
        if (this.draining) throw new Error('handed back: this daemon is draining');
        this.log.error({ recording: data.recording, target: data.target }, `cannot start the recording: ${describeError(err)}`);
        if (data.kind === 'api') {
          await cluster.put({ ...(prev ?? emptyState(data)), state: 'failed', end: new Date().toISOString(), error: errorInfo(err) });
          return;
        }
        attempt++;
        if (!(await abortableDelay(backoffMs(attempt, { reopen: () => { throw new Error('unused'); }, ...this.reconnectSettings() }), this.drainAbort.signal))) throw new Error('handed back: this daemon is draining');
        continue;
      }
      run.job = job;
      const began = performance.now();
      const onAbort = (): void => { run.handover = true; void job.stop(); };
      signal?.addEventListener('abort', onAbort, { once: true });
      await job.finished;
      signal?.removeEventListener('abort', onAbort);
      await this.clusterWrites;
      this.clusterRuns.delete(data.recording);
      if (run.handover) throw new Error('handed over: another daemon continues the recording');
      if (data.kind === 'api') return;
      if (data.target !== null && await cluster.targetStopped(data.target)) return;
      attempt = performance.now() - began >= STABLE_MS ? 1 : attempt + 1;
      const delayMs = backoffMs(attempt, { reopen: () => { throw new Error('unused'); }, ...this.reconnectSettings() });
      this.log.info({ target: data.target }, `target ${data.target ?? ''}: starting a new recording in ${(delayMs / 1000).toFixed(1)} s`);
      if (!(await abortableDelay(delayMs, this.drainAbort.signal))) throw new Error('handed back: this daemon is draining');
    }
  }

  /** The cluster's JSON of a recording this daemon runs: earlier parts' segments and ours, on one clock. */
  private clusterView(run: ClusterRun, job: RecordingJob): ClusterRecording {
    const local = this.decorate(job.toApi());
    const prev = run.prev;
    const now = new Date().toISOString();
    // Session time restarts at 0 in every part: shifted by the part's start, the segments of all parts
    // share the recording's clock and the gap of a take-over shows between them.
    const offset = prev === null ? 0 : Math.max(0, Date.parse(run.partStart) - Date.parse(prev.start));
    const earlier: RecordingPart[] = (prev?.parts ?? []).map((p) => (p.end === null ? { ...p, end: prev?.updated ?? run.partStart } : p));
    const ended = finished(local.state) || run.handover;
    const state: RecordingState = run.handover ? (finished(local.state) ? 'reconnecting' : local.state) : local.state;
    return {
      ...local, state, start: prev?.start ?? local.start, daemon: this.name,
      end: run.handover ? null : local.end,
      segments: [...(prev?.segments ?? []), ...local.segments.map((s) => ({ ...s, start_ms: s.start_ms + offset, daemon: this.name, part: job.meta.part ?? 0 }))],
      parts: [...earlier, { daemon: this.name, start: run.partStart, end: ended ? (local.end ?? now) : null }],
      updated: now,
    };
  }

  /** Writes a running recording's JSON to the cluster state (in order with the earlier writes). */
  private publishState(id: string): void {
    const run = this.clusterRuns.get(id);
    const cluster = this.cluster;
    if (run === undefined || run.job === null || cluster === null) return;
    const view = this.clusterView(run, run.job);
    this.clusterWrites = this.clusterWrites.then(() => cluster.put(view)).catch((err: unknown) => {
      this.log.warn({ recording: id }, `cannot write the cluster state: ${describeError(err)}`);
    });
  }

  /** A control message from any daemon (this one included). */
  private onControl(msg: ControlMessage): void {
    if (msg.op === 'stop') {
      const job = this.clusterRuns.get(msg.id)?.job ?? null;
      if (job === null) return;
      this.log.info({ recording: msg.id }, 'stop requested through the cluster');
      void job.stop();
      return;
    }
    const meta = this.past.get(msg.id);
    if (meta === undefined) return;
    void this.remove(meta, 'deleted through the cluster').catch((err: unknown) => { this.log.error({ recording: msg.id }, `cannot delete: ${describeError(err)}`); });
  }

  /**
   * BullMQ could not renew our lock (Redis unreachable for longer than the lock, or the event loop stuck):
   * another daemon may already have taken the job, so ours stops recording (the files are finished) rather
   * than record the target twice.
   */
  private onLockLost(jobIds: string[]): void {
    for (const run of this.clusterRuns.values()) {
      if (!jobIds.includes(run.jobId) || run.job === null) continue;
      this.log.warn({ recording: run.job.id }, 'lost the cluster lock of this recording: stopping it here (another daemon continues it)');
      run.handover = true;
      void run.job.stop();
    }
  }

  /** A recording as the API shows it: the cluster's view in cluster mode, else this daemon's. */
  async getAny(id: string): Promise<ApiRecording | null> {
    if (this.cluster === null) return this.get(id);
    const r = await this.cluster.get(id);
    return r === null ? null : (await this.withObjects([r]))[0] ?? null;
  }

  /** The list: the cluster's in cluster mode, else this daemon's. */
  async listAny(q: ListQuery): Promise<{ recordings: ApiRecording[]; total: number }> {
    if (this.cluster === null) return this.list(q);
    const keep = q.target === undefined && q.state === undefined ? undefined
      : (r: ClusterRecording): boolean => (q.target === undefined || r.target === q.target) && (q.state === undefined || r.state === q.state);
    const page = await this.cluster.page(q.offset, q.limit, keep);
    return { recordings: await this.withObjects(page.recordings), total: page.total };
  }

  /**
   * Cluster recordings with each segment as the cluster's record of S3 objects has it. The JSON was written
   * by the daemon recording the latest part, from its copy of the earlier parts, so what happened to an
   * earlier part afterwards is known only there: uploads that finished later (location), and a killed
   * daemon's last segments as its restart finished them (their final frame counts and sizes, and a
   * segment it closed in the last second before it died, after its last write of the JSON, which would
   * otherwise be missing). Such a segment is placed on the recording's clock by its part's start.
   */
  private async withObjects(rs: ClusterRecording[]): Promise<ClusterRecording[]> {
    if (this.cluster === null || this.config.storage.s3 === undefined) return rs;
    const objects = await this.cluster.objects(rs.map((r) => r.id));
    return rs.map((r) => {
      const o = objects.get(r.id);
      if (o === undefined || o.size === 0) return r;
      const fieldOf = (s: ApiSegment): string => objectField(s.part ?? 0, s.kind === 'png' ? `frames/${s.file}` : s.file);
      const listed = new Set<string>();
      const segments: ApiSegment[] = r.segments.map((s) => {
        const f = fieldOf(s);
        listed.add(f);
        const x = o.get(f);
        if (x === undefined) return s;
        const final = x.segment === undefined ? {} : { frames: x.segment.frames, bytes: x.segment.bytes, duration_ms: x.segment.duration_ms };
        return { ...s, ...final, location: x.local ? 'local' as const : 's3' as const };
      });
      let added = false;
      for (const [f, x] of o) {
        if (listed.has(f) || x.segment === undefined) continue;
        const part = Number(f.slice(0, f.indexOf('/')));
        const p = r.parts[part];
        if (p === undefined) continue;
        const offset = Math.max(0, Date.parse(p.start) - Date.parse(r.start));
        segments.push({ ...x.segment, start_ms: x.segment.start_ms + offset, daemon: p.daemon, part, location: x.local ? 'local' : 's3' });
        added = true;
      }
      if (added) segments.sort((a, b) => (a.part ?? 0) - (b.part ?? 0) || a.start_ms - b.start_ms);
      return { ...r, segments };
    });
  }

  /** Cluster mode: tells the cluster where a file this daemon uploaded is (upload id `<id>` or `<id>/p<n>`). */
  private publishObject(uid: string, file: string, entry: UploadEntry): void {
    const cluster = this.cluster;
    // Video segments only: they are what another daemon serves; a PNG recording's thousands of frames
    // would make every list page read thousands of fields per recording.
    if (cluster === null || entry.segment === undefined) return;
    const m = /^([^/]+)(?:\/p(\d+))?$/.exec(uid);
    if (m === null) return;
    const [, id = uid, part = '0'] = m;
    void cluster.putObject(id, Number(part), file, {
      key: entry.key, bytes: entry.bytes, etag: entry.etag, verified: entry.verified, local: entry.localDeleted !== true,
      ...(entry.segment === undefined ? {} : { segment: entry.segment }),
    })
      .catch((err: unknown) => { this.log.warn({ recording: id, file }, `cannot record the S3 object in the cluster state: ${describeError(err)}`); });
  }

  /**
   * Cluster mode: stops a recording wherever it runs. A job no daemon has taken yet is removed from the
   * queue; otherwise a stop goes out on the control channel and this waits (within the drain timeout) for
   * the recording daemon to write the finished state. An `always` target is marked stopped for the whole
   * cluster first, so no daemon starts it again.
   */
  private async clusterStop(id: string): Promise<ApiRecording> {
    const cluster = this.requireCluster();
    const r = await cluster.get(id);
    if (r === null) throw notFound(id);
    if (finished(r.state)) return r;
    const t = r.target === null ? undefined : this.config.targets.find((x) => x.name === r.target);
    if (t !== undefined && t.mode === 'always') {
      await cluster.stopTarget(t.name);
      this.log.info({ target: t.name }, `target ${t.name} stopped through the API: not recorded again in the cluster until a daemon listing it reloads its configuration or starts`);
    }
    if (r.parts.length === 0 && await cluster.removeWaiting(id)) {
      const stopped: ClusterRecording = { ...r, state: 'done', end: new Date().toISOString() };
      await cluster.put(stopped);
      return stopped;
    }
    await cluster.publish({ op: 'stop', id, target: r.target });
    const deadline = Date.now() + this.config['drain-timeout'] * 1000 + 5000;
    let last: ClusterRecording = r;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      last = (await cluster.get(id)) ?? last;
      if (finished(last.state)) break;
    }
    return last;
  }

  /** Stops a recording (its files stay); resolves when its files are finished. */
  async stopRecording(id: string): Promise<ApiRecording> {
    if (this.cluster !== null) return this.clusterStop(id);
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
    const cluster = this.cluster;
    if (cluster !== null) {
      // Every daemon holding a part deletes it (this one too, through its own subscription); the objects
      // of all parts lie under `<prefix><id>/` and go with the first daemon's deletion.
      const r = await cluster.get(id);
      if (r === null) throw notFound(id);
      if (!finished(r.state)) throw new DaemonBusy('RECORDING_ACTIVE', `recording ${id} is still running: stop it first`);
      await cluster.publish({ op: 'delete', id });
      await cluster.forget(id);
      return;
    }
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
      await this.uploads.forget(uploadId(meta));
      try {
        const n = await this.store.deleteRecording(meta.id);
        if (n > 0) this.log.info({ recording: meta.id, objects: n }, `deleted ${n} object(s) of the recording from S3`);
      } catch (err) {
        this.uploads.unforget(uploadId(meta));
        void this.uploads.enqueueRecording(uploadId(meta), meta.dir, meta.segments ?? []).catch(() => undefined);
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
    const uid = uploadId(this.jobs.get(r.id)?.meta ?? this.past.get(r.id) ?? r);
    // PNG segments are named by their first frame, which lies in frames/.
    const segments = r.segments.map((s) => ({ ...s, location: u === null ? 'local' as const : u.location(uid, s.kind === 'png' ? `frames/${s.file}` : s.file) }));
    return u === null ? { ...r, segments } : { ...r, segments, upload: u.status(uid) };
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
    if (this.cluster !== null) return this.clusterVideoSource(this.cluster, id, n);
    const rel = this.videoSegment(id, n);
    try {
      return await fileSource(this.root, rel);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const file = path.basename(rel);
    const meta = this.jobs.get(id)?.meta ?? this.past.get(id);
    const remote = this.uploads?.remote(meta === undefined ? id : uploadId(meta), file) ?? null;
    const store = this.store;
    if (remote === null || store === null) throw new NotFound(`segment ${file} of recording ${id} is missing on disk`);
    return objectSource(store, file, remote);
  }

  /**
   * Cluster mode: video segment `n` as the cluster's JSON lists them (the MP4 segments of every part, in
   * order, whichever daemon recorded them) — from this daemon's disk when it recorded that part and still
   * has the file, else from S3 when the file got there (whichever daemon uploaded it), else NotFound naming
   * the daemon whose disk holds it. No daemon calls another: S3 is the cluster's shared storage.
   */
  private async clusterVideoSource(cluster: Cluster, id: string, n: string): Promise<ByteSource> {
    const r = await this.getAny(id);
    if (r === null) throw notFound(id);
    const videos = r.segments.filter((s) => s.kind === 'mp4');
    const seg = /^\d{1,6}$/.test(n) ? videos[Number(n)] : undefined;
    if (seg === undefined) throw new NotFound(`recording ${id} has no video segment ${n} (it has ${videos.length})`);
    const part = seg.part ?? 0;
    const mine = this.jobs.get(id)?.meta ?? this.past.get(id);
    if (mine !== undefined && (mine.part ?? 0) === part && (seg.daemon ?? this.name) === this.name) {
      try {
        return await fileSource(this.root, path.join(mine.dir, seg.file));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    const store = this.store;
    // Our own part: our upload records say where its files went, whatever the cluster's record holds.
    const own = mine !== undefined && (mine.part ?? 0) === part ? this.uploads?.remote(uploadId(mine), seg.file) ?? undefined : undefined;
    const o = store === null ? undefined : own ?? (await cluster.objects([id])).get(id)?.get(objectField(part, seg.file));
    if (store === null || o === undefined) {
      throw new NotFound(`video segment ${n} of recording ${id} (${seg.file}) is on the disk of daemon ${seg.daemon ?? 'unknown'}${store === null ? '' : ' and not in S3 yet'}`);
    }
    return objectSource(store, seg.file, o);
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

  /**
   * Retention's deletion. In cluster mode a recording is deleted whole or not at all: a part whose
   * recording still runs on another daemon is kept; otherwise every daemon holding a part deletes it (the
   * objects of all parts go with this daemon's deletion, as for DELETE …/files) and the cluster forgets it.
   */
  private async retire(meta: RecordingMeta, why: string, maxAgeMs?: number): Promise<boolean> {
    const cluster = this.cluster;
    if (cluster === null) {
      await this.remove(meta, why);
      return true;
    }
    const r = await cluster.get(meta.id);
    if (r !== null && !finished(r.state)) return false;
    // By age, the recording's end counts, not this daemon's part's: a later part may have ended days after.
    if (maxAgeMs !== undefined && r !== null && Date.now() - Date.parse(r.end ?? r.updated ?? r.start) <= maxAgeMs) return false;
    await this.remove(meta, why);
    await cluster.publish({ op: 'delete', id: meta.id });
    await cluster.forget(meta.id);
    return true;
  }

  /** retire() for retention passes: an error is logged and counts as kept. */
  private async retireLogged(meta: RecordingMeta, why: string, maxAgeMs?: number): Promise<boolean> {
    try {
      return await this.retire(meta, why, maxAgeMs);
    } catch (err) {
      this.log.error(`retention: ${describeError(err)}`);
      return false;
    }
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
      const gone = maxAge !== undefined && now - ended > maxAge * 1000
        && await this.retireLogged(meta, `older than the retention's max-age (${maxAge} s)`, maxAge * 1000);
      if (!gone) kept.push({ meta, bytes: await this.recordingBytes(meta.id, meta.dir) });
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
          if (!await this.retireLogged(k.meta, `target ${t === '' ? '(API)' : t} above the retention's max-bytes-per-target (${formatBytes(perTarget)})`)) continue;
          total -= k.bytes;
          kept.splice(kept.indexOf(k), 1);
        }
      }
    }
    const maxBytes = r['max-bytes'];
    if (maxBytes !== undefined) {
      let total = kept.reduce((s, k) => s + k.bytes, activeBytes);
      for (const k of [...kept]) {
        if (total <= maxBytes) break;
        if (await this.retireLogged(k.meta, `storage above the retention's max-bytes (${formatBytes(maxBytes)})`)) total -= k.bytes;
      }
    }
  }

  /** A recording's bytes for retention: its directory's, and those of its files that are only in S3. */
  private async recordingBytes(id: string, dir: string): Promise<number> {
    const meta = this.jobs.get(id)?.meta ?? this.past.get(id);
    return (await directoryBytes(path.join(this.root, dir))) + (this.uploads?.remoteOnlyBytes(meta === undefined ? id : uploadId(meta)) ?? 0);
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
    const cluster = this.cluster;
    if (cluster !== null) {
      // Cluster mode: an `always` target this configuration no longer has is withdrawn from the cluster
      // (daemons are meant to share one configuration; one that still lists it queues it again at its own
      // next reload). Every listed `always` target is queued (again), stopped ones too; a target's job
      // that exists already is left as it is, so a changed target's new settings apply to its next job.
      for (const t of before.targets) {
        if (t.mode !== 'always' || wanted.has(t.name)) continue;
        await this.withdrawTarget(cluster, t.name).catch((err: unknown) => {
          this.log.error({ target: t.name }, `cannot withdraw target ${t.name} from the cluster: ${describeError(err)}`);
        });
      }
      for (const t of wanted.values()) {
        await cluster.resumeTarget(t.name).catch(() => undefined);
        await this.addTargetJob(t);
      }
      return;
    }
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
   * Cluster mode: a target removed from the configuration. Marked stopped first (so the job's loop does not
   * start another recording of it), its job removed if no daemon holds it, and its running recording
   * stopped wherever it runs.
   */
  private async withdrawTarget(cluster: Cluster, name: string): Promise<void> {
    await cluster.stopTarget(name);
    await cluster.removeWaiting(`target-${name}`);
    const running = await cluster.page(0, Number.MAX_SAFE_INTEGER, (r) => r.target === name && !finished(r.state));
    for (const r of running.recordings) await cluster.publish({ op: 'stop', id: r.id, target: name });
    this.log.info({ target: name }, `target ${name} removed from the configuration: withdrawn from the cluster, its recording stops`);
  }

  /**
   * Stops everything (SIGTERM): no new recordings; every running one finishes its segments (fast-start)
   * within `timeoutMs`; resolves with the recordings that had not finished by then.
   */
  async drain(timeoutMs = this.config['drain-timeout'] * 1000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    this.draining = true;
    this.drainAbort.abort();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const k of this.keepers.values()) k.abort.abort();
    // Cluster mode: what this daemon records goes back to the queue, unfinished, for another daemon.
    for (const run of this.clusterRuns.values()) run.handover = true;
    const all = Promise.all([...this.jobs.values()].map((j) => j.stop()));
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => { resolve(true); }, timeoutMs); }),
    ]);
    clearTimeout(timer);
    await Promise.race([Promise.all([...this.keepers.values()].map((k) => k.done)), abortableDelay(1000, new AbortController().signal)]);
    if (this.cluster !== null) {
      // The processors have seen their recordings end and throw: the jobs go back to the queue.
      await this.clusterWrites;
      // Bounded by what is left of the drain time; the timer is cancelled after, so it does not keep the
      // process alive.
      const bound = new AbortController();
      await Promise.race([this.cluster.close(), abortableDelay(Math.max(1000, deadline - Date.now()), bound.signal)]);
      bound.abort();
    }
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

/** The cluster state of a queued recording no daemon has begun. */
function emptyState(d: ClusterJobData): ClusterRecording {
  return {
    id: d.recording, target: d.target, url: publicUrl(d.url), state: 'starting', start: new Date().toISOString(), end: null, dir: '',
    segments: [], stats: null, error: null, daemon: null, parts: [],
  };
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
  const input = new Input({ source: mediaFileSource(file), formats: ALL_FORMATS });
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

/** A file in S3 (verified there) as bytes to serve, read with ranged GETs. */
function objectSource(store: S3Store, name: string, o: { key: string; bytes: number; etag: string; verified: string }): ByteSource {
  return {
    name, size: o.bytes, version: o.etag, lastModified: new Date(o.verified), localPath: null,
    read: (position, length) => store.read(o.key, position, Math.min(length, o.bytes - position)),
    open: (range) => store.get(o.key, range),
  };
}
