/**
 * One recording of the daemon: a Session recording into its directory, with the daemon's rules around it —
 * reconnecting (within the session while it was live; by starting the session again while the remote has
 * not been reached yet), rotation into a new segment by time or size, a state the API shows and
 * recording.json keeps, and a stop that always finishes the files. A failure here (a hostile server, a
 * decoder bomb, a refused password) ends this recording only: the job catches everything its session
 * throws and turns it into state `failed` with the error's code.
 */
import * as path from 'node:path';
import { DeskrecError, describeError } from '../errors';
import type { SegmentRecord } from '../recorder/outputs';
import { abortableDelay, backoffMs, reconnectable } from '../session/reconnect';
import { Session } from '../session/session';
import { openSource, type SourceOptions } from '../sources/open';
import type { FrameSource } from '../sources/source';
import { toRecordOptions, toSourceOptions, type DaemonRecordOptions } from './record-options';
import { createRecordingDir, writeMeta, type RecordingMeta, type RecordingCounters, type RecordingState, type StoredSegment } from './store';

/** What a job needs to know from the daemon's configuration. */
export interface JobSettings {
  root: string;
  rotation: { minutes?: number | undefined; megabytes?: number | undefined };
  reconnect: { minDelayMs: number; maxDelayMs: number };
}

/** How the job reports to the daemon (logs with the recording id, metrics). */
export interface JobEvents {
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** The state changed (after recording.json was written). */
  state: (job: RecordingJob, state: RecordingState) => void;
  /** A frame took this long in the encoder (the metrics histogram). */
  encodeTime?: (seconds: number) => void;
  /** A session was made for this recording (one per attempt): the recordings page watches it. */
  session?: (job: RecordingJob, session: Session) => void;
  /** Awaited after the session ended, before the final state: the page's last thumbnails are then on disk. */
  finishing?: (job: RecordingJob) => Promise<void>;
}

/**
 * One segment as the API shows it: as recording.json keeps it, plus where its file is now (`local`, or
 * `s3` once storage.s3 verified its upload and the local copy was deleted).
 */
export type ApiSegment = StoredSegment & {
  location?: 'local' | 's3';
  /** Cluster mode: the daemon that recorded the segment, and the part of the recording it belongs to. */
  daemon?: string;
  part?: number;
};

/** Cluster mode: one daemon's part of a recording (a new part after every take-over by another daemon). */
export interface RecordingPart {
  daemon: string;
  start: string;
  /** When the part ended (for a daemon that died: its last update of the cluster state); null while it runs. */
  end: string | null;
}

/** A recording's uploads to S3 as the API shows them (storage.s3 configured). */
export interface ApiUploadStatus {
  pending: number;
  failed: number;
  uploaded: number;
  lastError: string | null;
}

/**
 * A recording as the API shows it (`GET /recordings/:id`): what recording.json keeps, with the segments,
 * counters and daemon always present (live ones while it runs).
 */
export type ApiRecording = Omit<RecordingMeta, 'version' | 'segments' | 'stats' | 'daemon'> & {
  segments: ApiSegment[];
  stats: RecordingCounters | null;
  /** The daemon that records it (or last did). */
  daemon: string | null;
  /** Its files' uploads (only with storage.s3). */
  upload?: ApiUploadStatus;
  /** Cluster mode: which daemon recorded when. */
  parts?: RecordingPart[];
};

/** What a job starts from. */
export interface JobSpec {
  meta: RecordingMeta;
  options: DaemonRecordOptions;
  password: { file: string | null; env: string | null };
}

/** Segment records as the API lists them (the file relative to the recording's directory). */
export function apiSegments(segments: readonly SegmentRecord[]): ApiSegment[] {
  return segments.map((s) => ({
    kind: s.kind, file: path.basename(s.file), start_ms: s.first_t_ms ?? 0, width: s.width, height: s.height, frames: s.frames, duration_ms: s.duration_ms, bytes: s.bytes,
  }));
}

/** The error of a failed recording as the API shows it. */
export function errorInfo(err: unknown): { code: string; message: string } {
  if (err instanceof DeskrecError) return { code: err.code, message: err.message };
  return { code: 'INTERNAL', message: describeError(err) };
}

/** How often rotation is checked, ms. */
const ROTATION_CHECK_MS = 1000;

export class RecordingJob {
  readonly meta: RecordingMeta;
  /** The session of the current attempt (null between attempts and before the first). */
  session: Session | null = null;
  /** Settles when the recording is finished (done or failed); never rejects. */
  readonly finished: Promise<void>;
  private readonly abort = new AbortController();
  private resolveFinished: () => void = () => undefined;
  private stopReason: { code: string; message: string } | null = null;
  private rotationTimer: NodeJS.Timeout | null = null;
  private segmentStartedAt = 0;
  private segmentStartBytes = 0;
  private segmentIndex = -1;
  private attempts = 0;
  private lastStats: ApiRecording['stats'] = null;
  private lastSegments: ApiSegment[] = [];
  private metaWrite: Promise<void> = Promise.resolve();

  constructor(private readonly spec: JobSpec, private readonly settings: JobSettings, private readonly events: JobEvents) {
    this.meta = { ...spec.meta };
    this.finished = new Promise((resolve) => { this.resolveFinished = resolve; });
  }

  get id(): string {
    return this.meta.id;
  }

  get dir(): string {
    return path.join(this.settings.root, this.meta.dir);
  }

  /**
   * Creates the directory and starts recording in the background. Throws (before anything is created) when
   * the options or the URL are wrong, so an API caller gets a 400 rather than a failed recording.
   */
  async start(): Promise<void> {
    // Every option and the URL are checked once up front: a mistake is the caller's, not the remote's.
    this.openSource();
    await createRecordingDir(this.settings.root, this.meta);
    void this.run();
  }

  /** Stops the recording (the files are finished); `reason` becomes its error when it is not a plain stop. */
  stop(reason: { code: string; message: string } | null = null): Promise<void> {
    if (this.stopReason === null && reason !== null) this.stopReason = reason;
    if (!this.abort.signal.aborted && (this.meta.state === 'recording' || this.meta.state === 'reconnecting' || this.meta.state === 'starting')) {
      void this.setState('finalizing');
    }
    this.abort.abort();
    return this.finished;
  }

  /** The recording as the API shows it. */
  toApi(): ApiRecording {
    const s = this.session;
    if (s !== null && s.state !== 'ended') {
      const st = s.stats();
      this.lastStats = st.recording === null ? null : { ...st.recording, reconnects: st.reconnects, bytes: st.bytes };
      this.lastSegments = apiSegments(s.segments());
    }
    return {
      id: this.meta.id, target: this.meta.target, url: this.meta.url, state: this.meta.state, start: this.meta.start,
      end: this.meta.end, dir: this.meta.dir, segments: this.lastSegments, stats: this.lastStats, error: this.meta.error,
      daemon: this.meta.daemon ?? null,
    };
  }

  private openSource(): FrameSource {
    const source: SourceOptions = toSourceOptions(this.spec.options, this.spec.password);
    return openSource(this.spec.meta.url, source);
  }

  private async setState(state: RecordingState, extra: Partial<RecordingMeta> = {}): Promise<void> {
    if (this.meta.state === state && Object.keys(extra).length === 0) return;
    Object.assign(this.meta, extra, { state });
    const snapshot = { ...this.meta };
    // Writes happen in order: a slow write must not let an older state land after a newer one.
    this.metaWrite = this.metaWrite.then(() => writeMeta(this.settings.root, snapshot)).catch((err: unknown) => {
      this.events.log('error', `cannot write recording.json: ${describeError(err)}`);
    });
    await this.metaWrite;
    this.events.state(this, state);
  }

  /**
   * Attempts until one session has been live and ended, or the recording is stopped. Before the first
   * picture a reconnectable failure (the server is not up yet) means trying again into the same directory
   * (nothing was written there but session.json); once a session was live, its own reconnect handles the
   * remote going away, and its end is the recording's end.
   */
  private async run(): Promise<void> {
    let failure: unknown = null;
    try {
      for (;;) {
        const session = new Session(this.openSource(), {
          record: toRecordOptions(this.spec.options, this.dir),
          signal: this.abort.signal,
          log: (line) => { this.events.log('info', line); },
          ...(this.events.encodeTime === undefined ? {} : { onEncodeTime: this.events.encodeTime }),
          reconnect: {
            reopen: () => this.openSource(),
            minDelayMs: this.settings.reconnect.minDelayMs, maxDelayMs: this.settings.reconnect.maxDelayMs,
          },
        });
        this.session = session;
        this.events.session?.(this, session);
        session.on('state', (s) => {
          if (s === 'live') void this.setState('recording');
          else if (s === 'reconnecting') void this.setState('reconnecting');
        });
        session.on('reconnecting', ({ attempt, delayMs, error }) => {
          this.events.log('warn', `reconnecting in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt}): ${describeError(error)}`,
            { attempt, code: error instanceof DeskrecError ? error.code : undefined });
        });
        await session.start();
        this.startRotation(session);
        let error: unknown = null;
        try {
          await session.done;
        } catch (err) {
          error = err;
        }
        this.stopRotation();
        const live = session.stats().frames > 0;
        if (error === null || live || this.abort.signal.aborted || !reconnectable(error)) {
          if (error !== null && !(this.abort.signal.aborted && !live && isNoPicture(error))) failure = error;
          break;
        }
        // Not reached yet: try again with backoff (the same directory; this session wrote no segment).
        this.attempts++;
        const delayMs = backoffMs(this.attempts, { reopen: () => this.openSource(), ...this.settings.reconnect });
        await this.setState('reconnecting');
        this.events.log('warn', `${this.meta.url}: ${describeError(error)}; trying again in ${(delayMs / 1000).toFixed(1)} s`, { attempt: this.attempts });
        if (!(await abortableDelay(delayMs, this.abort.signal))) break;
      }
    } catch (err) {
      failure = err;
    }
    await this.finish(failure);
  }

  private async finish(failure: unknown): Promise<void> {
    const s = this.session;
    if (s !== null) {
      const st = s.stats();
      this.lastStats = st.recording === null ? this.lastStats : { ...st.recording, reconnects: st.reconnects, bytes: st.bytes };
      this.lastSegments = apiSegments(s.segments());
    }
    const error = this.stopReason ?? (failure === null ? null : errorInfo(failure));
    if (failure !== null) this.events.log('error', `recording failed: ${describeError(failure)}`, { code: errorInfo(failure).code });
    if (this.events.finishing !== undefined) await this.events.finishing(this);
    await this.setState(error === null ? 'done' : 'failed', {
      end: new Date().toISOString(), error, segments: this.lastSegments, stats: this.lastStats,
    });
    this.resolveFinished();
  }

  private startRotation(session: Session): void {
    const { minutes, megabytes } = this.settings.rotation;
    if (minutes === undefined && megabytes === undefined) return;
    this.segmentIndex = -1;
    this.rotationTimer = setInterval(() => {
      const segs = session.segments();
      const current = segs[segs.length - 1];
      if (current === undefined || session.state !== 'live') return;
      const index = segs.length - 1;
      const now = performance.now();
      if (index !== this.segmentIndex) {
        // A new segment began (the first, a size change, a reconnect): its clock and byte count start now.
        this.segmentIndex = index;
        this.segmentStartedAt = now;
        this.segmentStartBytes = session.stats().bytes;
        return;
      }
      const byTime = minutes !== undefined && now - this.segmentStartedAt >= minutes * 60_000;
      const bySize = megabytes !== undefined && session.stats().bytes - this.segmentStartBytes >= megabytes * 1e6;
      if ((byTime || bySize) && session.rotate()) {
        this.events.log('info', `rotated to a new segment (${byTime ? `${minutes ?? 0} min` : `${megabytes ?? 0} MB`} reached)`);
      }
    }, ROTATION_CHECK_MS);
    this.rotationTimer.unref();
  }

  private stopRotation(): void {
    if (this.rotationTimer !== null) clearInterval(this.rotationTimer);
    this.rotationTimer = null;
  }
}

function isNoPicture(err: unknown): boolean {
  return err instanceof DeskrecError && err.code === 'NO_PICTURE';
}

