/**
 * The daemon's Prometheus metrics (prom-client, on a registry of its own so a library user's default
 * registry is left alone). No metric has a per-recording label: with thousands of recordings a label per id
 * would make every scrape grow without bound; the API is where one recording is looked at.
 *
 * Counters that the recorder keeps per recording (frames encoded and merged, bytes, reconnects) are folded
 * in as differences since the last look, at each scrape and when a recording ends, so the totals keep
 * counting after a recording is gone.
 */
import { statfs } from 'node:fs/promises';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { deskrecVersion } from '../util/version';
import type { RecordingCounters } from './store';

/** Per-recording counters folded into the totals. */
type Folded = Pick<RecordingCounters, 'framesEncoded' | 'framesMerged' | 'bytes' | 'reconnects'>;

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly active: Gauge;
  private readonly total: Counter<'result'>;
  private readonly framesEncoded: Counter;
  private readonly framesMerged: Counter;
  private readonly bytes: Counter;
  private readonly reconnects: Counter;
  readonly encodeSeconds: Histogram;
  private readonly seen = new Map<string, Folded>();
  private uploads: { total: Counter; bytes: Counter; failed: Counter } | null = null;

  constructor(private readonly root: string, private readonly sources: { active: () => number; counters: () => Map<string, Folded> }) {
    const registers = [this.registry];
    this.active = new Gauge({ name: 'deskrec_recordings_active', help: 'Recordings in progress (starting, recording, reconnecting or finalizing).', registers,
      collect: () => { this.active.set(sources.active()); } });
    this.total = new Counter({ name: 'deskrec_recordings_total', help: 'Recordings that ended, by result (done, failed, interrupted).', labelNames: ['result'], registers });
    this.framesEncoded = new Counter({ name: 'deskrec_frames_encoded_total', help: 'Frames the H.264 encoders finished.', registers });
    this.framesMerged = new Counter({ name: 'deskrec_frames_merged_total', help: 'Frames merged into a later one because the output was behind.', registers });
    this.bytes = new Counter({ name: 'deskrec_bytes_written_total', help: 'Bytes of video and PNG frames written.', registers });
    this.reconnects = new Counter({ name: 'deskrec_reconnects_total', help: 'Times a recorded remote went away and was reconnected to.', registers });
    this.encodeSeconds = new Histogram({
      name: 'deskrec_encode_seconds', help: 'Time the encoder spent coding a frame (frames go to it in batches of up to 250 ms; the wait is not included).', registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    const free = new Gauge({ name: 'deskrec_disk_free_bytes', help: 'Free bytes on the file system of the storage root.', registers,
      collect: async () => {
        try {
          const s = await statfs(this.root);
          free.set(s.bavail * s.bsize);
        } catch {
          // The root is gone or unreadable: no figure rather than a wrong one.
        }
      } });
    const info = new Gauge({ name: 'deskrec_build_info', help: 'deskrec version and Node.js version (value 1).', labelNames: ['version', 'node'], registers });
    info.labels(deskrecVersion(), process.versions.node).set(1);
  }

  /**
   * The object store's metrics (storage.s3 configured): uploads verified and their bytes, failed attempts,
   * and the bytes still waiting for S3 (`backlog`, read at each scrape).
   */
  enableUploads(backlog: () => number): void {
    if (this.uploads !== null) return;
    const registers = [this.registry];
    this.uploads = {
      total: new Counter({ name: 'deskrec_uploads_total', help: 'Files uploaded to S3 and verified there (size and ETag).', registers }),
      bytes: new Counter({ name: 'deskrec_uploaded_bytes_total', help: 'Bytes of the files uploaded to S3 and verified.', registers }),
      failed: new Counter({ name: 'deskrec_uploads_failed_total', help: 'Upload attempts that failed (each is tried again; the local file stays).', registers }),
    };
    const gauge = new Gauge({ name: 'deskrec_upload_backlog_bytes', help: 'Bytes of finished files waiting to be uploaded to S3 and verified.', registers,
      collect: () => { gauge.set(backlog()); } });
  }

  /** A file was uploaded and verified. */
  uploaded(bytes: number): void {
    this.uploads?.total.inc();
    this.uploads?.bytes.inc(bytes);
  }

  /** An upload attempt failed. */
  uploadFailed(): void {
    this.uploads?.failed.inc();
  }

  /** Adds what `id`'s counters grew by since the last look. */
  fold(id: string, c: Folded): void {
    const before = this.seen.get(id) ?? { framesEncoded: 0, framesMerged: 0, bytes: 0, reconnects: 0 };
    const grow = (counter: Counter, now: number, then: number): void => { if (now > then) counter.inc(now - then); };
    grow(this.framesEncoded, c.framesEncoded, before.framesEncoded);
    grow(this.framesMerged, c.framesMerged, before.framesMerged);
    grow(this.bytes, c.bytes, before.bytes);
    grow(this.reconnects, c.reconnects, before.reconnects);
    this.seen.set(id, { ...c });
  }

  /** A recording ended: its last counters are folded in and it is forgotten. */
  ended(id: string, result: 'done' | 'failed' | 'interrupted', last: Folded | null): void {
    if (last !== null) this.fold(id, last);
    this.seen.delete(id);
    this.total.labels(result).inc();
  }

  /** The text exposition format. */
  async text(): Promise<{ contentType: string; body: string }> {
    for (const [id, c] of this.sources.counters()) this.fold(id, c);
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
