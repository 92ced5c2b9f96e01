/**
 * What the recordings page shows besides the video, made while a recording runs, from its Session:
 *
 * - `activity.json`: per bucket of session time (1 s, coarsened when a recording gets very long) the
 *   fraction of the screen that changed, plus the video segments' start on the same clock, so the page can
 *   draw where something happened and skip where nothing did;
 * - `thumbnail.jpg`: the current picture, ~320 px wide, for the list;
 * - `thumbs.jpg` + `thumbs.vtt`: the seek bar's preview pictures, one tile (160 px wide) every few seconds
 *   of session time in one sprite sheet, and WebVTT cues on the recording's clock pointing into it with
 *   media fragments (`thumbs.jpg#xywh=x,y,w,h`), the format video players read for seek-bar previews.
 *
 * Why from the session and not from the MP4s afterwards: the session already knows the damage of every
 * frame (the recorder's whole design runs on it), and its picture is there to snapshot; decoding the video
 * again would cost a full decode per recording. The watcher only adds up damaged areas per frame (a loop
 * over a few rectangles, no pixel touched: a watcher must cost almost nothing), and the pictures are taken
 * with `session.snapshot()` on a timer, every few seconds, never per frame.
 *
 * Every file is written atomically (0600, as the recording's own files): the page may read them at any
 * moment, and a crash leaves the previous version, never half a file. A failed write is logged once and
 * never touches the recording.
 */
import * as path from 'node:path';
import sharp from 'sharp';
import type { Frame } from '../capture/surface';
import { describeError } from '../errors';
import { PRIVATE_MODES, writeFileAtomic } from '../recorder/files';
import type { Snapshot } from '../session/picture';
import type { Session } from '../session/session';
import type { Subscription } from '../session/watchers';

/** The artifact files, by their name in the recording's directory. */
export const ARTIFACT_FILES = ['activity.json', 'thumbnail.jpg', 'thumbs.jpg', 'thumbs.vtt'] as const;
export type ArtifactFile = (typeof ARTIFACT_FILES)[number];

/** Width of the list's thumbnail, px. */
export const THUMBNAIL_WIDTH = 320;
/** Width of one seek-bar tile, px (the size players commonly use for hover previews). */
export const TILE_WIDTH = 160;
/** Tiles per row of the sprite sheet. */
const SPRITE_COLUMNS = 10;
/**
 * At most this many tiles per recording: past it every other tile goes and the interval doubles. 100
 * tiles of 160 px are one 1600 px wide sheet of ~0.5 MB that the page loads at once; a long recording gets
 * coarser previews rather than a sheet that grows without bound (memory too: the tiles stay in memory).
 */
export const MAX_TILES = 100;
/** The first tile interval, s (short recordings get a preview every 5 s). */
export const FIRST_TILE_INTERVAL_S = 5;
/** Activity bucket, ms, at first. */
const BUCKET_MS = 1000;
/** Past this many buckets (about 9 hours of 1 s), neighbours merge and the bucket doubles: bounded memory and JSON. */
const MAX_BUCKETS = 32768;
/** How often the files are rewritten while the recording runs, ms. */
export const WRITE_INTERVAL_MS = 10_000;
/** How often the timer looks at the session (tiles are due, files are due), ms. */
const TICK_MS = 1000;

/** A video segment as activity.json lists it (the page maps it to the seek bar). */
export interface ActivitySegment {
  /** Its number among the recording's video segments (`/recordings/:id/segments/:n`). */
  n: number;
  file: string;
  start_ms: number;
  duration_ms: number;
}

/** The content of activity.json. */
export interface ActivityFile {
  version: 1;
  /** Length of one bucket of `activity`, ms (1000, doubled for very long recordings). */
  bucket_ms: number;
  /**
   * Per bucket of session time from 0: the changed area divided by the screen's (frames' damaged areas
   * added up, so overlapping changes count twice; capped at 1). 0 means nothing changed at all; any
   * change, however small, is at least 0.0001 so that "skip idle" never skips it.
   */
  activity: number[];
  segments: ActivitySegment[];
  /** Session time the data reaches, ms. */
  end_ms: number;
  /** True once the recording has ended (nothing will be added). */
  final: boolean;
}

/** One seek-bar tile in memory: a small JPEG. */
interface Tile {
  /** Session time it stands for, whole seconds (a multiple of the interval when it was taken). */
  t_s: number;
  jpeg: Buffer;
}

/** The segments of a recording, as the job knows them now. */
export type SegmentLister = () => readonly { kind: 'mp4' | 'png'; file: string; start_ms: number; duration_ms: number }[];

/** Makes and keeps up to date the page's files of one recording. */
export class RecordingArtifacts {
  private subscription: Subscription | null = null;
  private session: Session | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Changed area per bucket, as fractions of the screen (not yet capped). */
  private buckets: number[] = [];
  private bucketMs = BUCKET_MS;
  /** performance.now() minus the session time of the newest frame: the session clock without asking the session. */
  private clockOffset: number | null = null;
  private lastFrameT = 0;
  /** The pointer's last position (NaN before one is known): two numbers, no allocation per frame. */
  private pointerX = Number.NaN;
  private pointerY = Number.NaN;
  /** Something changed since the last thumbnail / tile / activity write. */
  private changedSinceThumbnail = false;
  private changedSinceTile = true;
  private activityDirty = false;
  private tiles: Tile[] = [];
  private tileIntervalS = FIRST_TILE_INTERVAL_S;
  private nextTileS = 0;
  private tileSize: { width: number; height: number } | null = null;
  private spriteDirty = false;
  private spriteVersion = 0;
  private hasThumbnail = false;
  private lastWrite = { thumbnail: -Infinity, activity: -Infinity, sprite: -Infinity };
  /** The one chain of file work: writes never overlap (writeFileAtomic's temporary name is per file). */
  private work: Promise<void> = Promise.resolve();
  private busy = false;
  private finished = false;
  private warned = false;

  constructor(private readonly dir: string, private readonly segments: SegmentLister,
    private readonly log: (level: 'warn' | 'info', msg: string) => void = () => undefined) {}

  /** Watches `session` (a job makes a new one per attempt until the remote is reached: the newest wins). */
  attach(session: Session): void {
    if (this.finished) return;
    this.subscription?.close();
    this.session = session;
    try {
      this.subscription = session.watch({ onFrame: (f) => { this.onFrame(f); } });
    } catch {
      // The session already ended (SESSION_ENDED): nothing more to watch; finish() takes the last picture.
      this.subscription = null;
    }
    if (this.timer === null) {
      this.timer = setInterval(() => { this.tick(); }, TICK_MS);
      this.timer.unref();
    }
  }

  /**
   * The recording ended: the last tile, thumbnail and activity are written, with `final: true`. Resolves when
   * they are on disk (or could not be written: that is logged). Called once; later calls do nothing.
   */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.subscription?.close();
    this.subscription = null;
    await this.work;
    const snap = this.session?.snapshot() ?? null;
    const end = this.endMs();
    await this.run(async () => {
      if (snap !== null) {
        // A recording shorter than one interval still gets its tile, and a picture that changed since the
        // last thumbnail gets a final one.
        const last = this.tiles[this.tiles.length - 1];
        const endS = Math.floor(end / 1000);
        if (last === undefined) await this.addTile(snap, 0);
        else if (this.changedSinceTile && endS > last.t_s) await this.addTile(snap, endS);
        if (!this.hasThumbnail || this.changedSinceThumbnail) await this.writeThumbnail(snap);
      }
      await this.writeActivity(end, true);
      if (this.tiles.length > 0) await this.writeSprite(end);
    });
  }

  /** The current activity as activity.json would hold it (for tests and a page asking before the first write). */
  activity(final = false): ActivityFile {
    return {
      version: 1, bucket_ms: this.bucketMs, activity: this.buckets.map(round), segments: this.videoSegments(),
      end_ms: Math.round(this.endMs()), final,
    };
  }

  private onFrame(f: Frame): void {
    // Only arithmetic on the frame's rectangles: the pixels are not touched (they are valid only during
    // this call anyway), so a watcher costs nothing next to the frame itself.
    const area = f.width * f.height;
    if (area <= 0) return;
    let changed = 0;
    for (const r of f.damage) changed += r.width * r.height;
    // The pointer is kept out of the picture (the recorder draws it when asked): a pointer that only moves
    // is a change too, or "skip idle" would jump over someone pointing at something.
    const c = f.cursor;
    if (c !== undefined && c.shape !== null) {
      if (!Number.isNaN(this.pointerX) && (this.pointerX !== c.x || this.pointerY !== c.y)) changed += 2 * c.shape.width * c.shape.height;
      this.pointerX = c.x;
      this.pointerY = c.y;
    }
    this.clockOffset = performance.now() - f.t_ms;
    this.lastFrameT = Math.max(this.lastFrameT, f.t_ms);
    if (changed === 0) return;
    this.addActivity(f.t_ms, changed / area);
    this.changedSinceThumbnail = true;
    this.changedSinceTile = true;
  }

  private addActivity(t_ms: number, fraction: number): void {
    let i = Math.floor(Math.max(0, t_ms) / this.bucketMs);
    while (i >= MAX_BUCKETS) {
      this.coarsen();
      i = Math.floor(Math.max(0, t_ms) / this.bucketMs);
    }
    while (this.buckets.length <= i) this.buckets.push(0);
    this.buckets[i] = (this.buckets[i] ?? 0) + fraction;
    this.activityDirty = true;
  }

  /** Halves the resolution: two neighbours become one bucket (their mean, each capped first). */
  private coarsen(): void {
    const next: number[] = [];
    for (let i = 0; i < this.buckets.length; i += 2) next.push((Math.min(1, this.buckets[i] ?? 0) + Math.min(1, this.buckets[i + 1] ?? 0)) / 2);
    this.buckets = next;
    this.bucketMs *= 2;
  }

  /** Session time now, ms (from the newest frame's time and the wall clock since), or null before any frame. */
  private sessionNow(): number | null {
    return this.clockOffset === null ? null : performance.now() - this.clockOffset;
  }

  /** Where the recording's data ends: its segments' end, or the newest frame. */
  private endMs(): number {
    let end = this.lastFrameT;
    for (const s of this.videoSegments()) end = Math.max(end, s.start_ms + s.duration_ms);
    return end;
  }

  private videoSegments(): ActivitySegment[] {
    const out: ActivitySegment[] = [];
    for (const s of this.segments()) {
      if (s.kind === 'mp4') out.push({ n: out.length, file: s.file, start_ms: s.start_ms, duration_ms: s.duration_ms });
    }
    return out;
  }

  private tick(): void {
    if (this.busy || this.finished || this.session === null) return;
    const now = this.sessionNow();
    if (now === null) return;
    const wall = performance.now();
    const tileDue = now / 1000 >= this.nextTileS;
    const thumbDue = (!this.hasThumbnail || this.changedSinceThumbnail) && wall - this.lastWrite.thumbnail >= WRITE_INTERVAL_MS;
    const activityDue = this.activityDirty && wall - this.lastWrite.activity >= WRITE_INTERVAL_MS;
    if (!tileDue && !thumbDue && !activityDue && !(this.spriteDirty && wall - this.lastWrite.sprite >= WRITE_INTERVAL_MS)) return;
    // One snapshot (a copy of the picture) serves both the tile and the thumbnail; none is taken when only
    // the activity is due, and a tile of an unchanged screen reuses the previous one's JPEG.
    const needPicture = thumbDue || (tileDue && (this.changedSinceTile || this.tiles.length === 0));
    const snap = needPicture ? this.session.snapshot() : null;
    if (needPicture && snap === null) return;
    void this.run(async () => {
      if (tileDue) {
        const t_s = this.nextTileS;
        // The next tile is the next multiple of the interval after now (a stalled timer does not catch up
        // with a burst of identical tiles: the previous cue simply lasts longer).
        this.nextTileS = (Math.floor(now / 1000 / this.tileIntervalS) + 1) * this.tileIntervalS;
        if (snap !== null && (this.changedSinceTile || this.tiles.length === 0)) await this.addTile(snap, t_s);
        else this.repeatTile(t_s);
      }
      if (thumbDue && snap !== null) await this.writeThumbnail(snap);
      const later = performance.now();
      if (this.activityDirty && later - this.lastWrite.activity >= WRITE_INTERVAL_MS) await this.writeActivity(this.endMs(), false);
      if (this.spriteDirty && later - this.lastWrite.sprite >= WRITE_INTERVAL_MS) await this.writeSprite(Math.max(now, this.endMs()));
    });
  }

  /** Runs file work on the chain, one piece at a time; a failure is logged (once), never thrown. */
  private run(job: () => Promise<void>): Promise<void> {
    this.busy = true;
    this.work = this.work.then(job).catch((err: unknown) => {
      if (!this.warned) this.log('warn', `the recordings page's files could not be written in ${this.dir}: ${describeError(err)}`);
      this.warned = true;
    }).finally(() => { this.busy = false; });
    return this.work;
  }

  private async addTile(snap: Snapshot, t_s: number): Promise<void> {
    this.tileSize ??= { width: TILE_WIDTH, height: Math.max(2, Math.round((TILE_WIDTH * snap.height) / snap.width / 2) * 2) };
    const { width, height } = this.tileSize;
    // A later size change keeps the tile box (the sheet is a grid): the picture is fitted into it.
    const jpeg = await sharp(snap.rgba, { raw: { width: snap.width, height: snap.height, channels: 4 } })
      .removeAlpha().resize(width, height, { fit: 'contain', background: '#000' }).jpeg({ quality: 70 }).toBuffer();
    this.changedSinceTile = false;
    this.pushTile({ t_s, jpeg });
  }

  /** A tile due while nothing changed: the same picture as the previous tile, without a new snapshot. */
  private repeatTile(t_s: number): void {
    const prev = this.tiles[this.tiles.length - 1];
    if (prev !== undefined) this.pushTile({ t_s, jpeg: prev.jpeg });
  }

  private pushTile(tile: Tile): void {
    const last = this.tiles[this.tiles.length - 1];
    if (last !== undefined && last.t_s >= tile.t_s) this.tiles[this.tiles.length - 1] = { t_s: last.t_s, jpeg: tile.jpeg };
    else this.tiles.push(tile);
    while (this.tiles.length > MAX_TILES) {
      // Thin out: keep the tiles on multiples of twice the interval, and take tiles that often from now on.
      this.tileIntervalS *= 2;
      const step = this.tileIntervalS;
      this.tiles = this.tiles.filter((t, i) => i === 0 || t.t_s % step === 0);
      this.nextTileS = Math.ceil(this.nextTileS / step) * step;
    }
    this.spriteDirty = true;
  }

  private async writeThumbnail(snap: Snapshot): Promise<void> {
    this.changedSinceThumbnail = false;
    const jpeg = await sharp(snap.rgba, { raw: { width: snap.width, height: snap.height, channels: 4 } })
      .removeAlpha().resize({ width: Math.min(THUMBNAIL_WIDTH, snap.width) }).jpeg({ quality: 75 }).toBuffer();
    await writeFileAtomic(path.join(this.dir, 'thumbnail.jpg'), jpeg, PRIVATE_MODES.file);
    this.hasThumbnail = true;
    this.lastWrite.thumbnail = performance.now();
  }

  private async writeActivity(end_ms: number, final: boolean): Promise<void> {
    this.activityDirty = false;
    const body = { ...this.activity(final), end_ms: Math.round(end_ms) };
    await writeFileAtomic(path.join(this.dir, 'activity.json'), `${JSON.stringify(body)}\n`, PRIVATE_MODES.file);
    this.lastWrite.activity = performance.now();
  }

  /** The sheet first, then the cues that point into it (a reader never gets cues for tiles not yet in the sheet). */
  private async writeSprite(end_ms: number): Promise<void> {
    const size = this.tileSize;
    if (size === null || this.tiles.length === 0) return;
    this.spriteDirty = false;
    const tiles = [...this.tiles];
    const columns = Math.min(SPRITE_COLUMNS, tiles.length);
    const rows = Math.ceil(tiles.length / SPRITE_COLUMNS);
    const sheet = await sharp({ create: { width: columns * size.width, height: rows * size.height, channels: 3, background: '#000' } })
      .composite(tiles.map((t, i) => ({ input: t.jpeg, left: (i % SPRITE_COLUMNS) * size.width, top: Math.floor(i / SPRITE_COLUMNS) * size.height })))
      .jpeg({ quality: 70 }).toBuffer();
    this.spriteVersion++;
    await writeFileAtomic(path.join(this.dir, 'thumbs.jpg'), sheet, PRIVATE_MODES.file);
    await writeFileAtomic(path.join(this.dir, 'thumbs.vtt'), spriteVtt(tiles.map((t) => t.t_s * 1000), end_ms, size, SPRITE_COLUMNS, `thumbs.jpg?v=${this.spriteVersion}`), PRIVATE_MODES.file);
    this.lastWrite.sprite = performance.now();
  }
}

/**
 * WebVTT cues for a sprite sheet: tile i (row-major, `columns` per row) from its time to the next tile's
 * (the last to `end_ms`, at least one tile interval), its region as a media fragment of `sheet`
 * (`#xywh=`, W3C Media Fragments), relative to the .vtt's own URL.
 */
export function spriteVtt(times_ms: readonly number[], end_ms: number, tile: { width: number; height: number }, columns: number, sheet: string): string {
  const lines = ['WEBVTT', ''];
  for (let i = 0; i < times_ms.length; i++) {
    const start = times_ms[i] ?? 0;
    const next = times_ms[i + 1];
    const end = next ?? Math.max(end_ms, start + 1);
    const x = (i % columns) * tile.width;
    const y = Math.floor(i / columns) * tile.height;
    lines.push(`${vttTime(start)} --> ${vttTime(end)}`, `${sheet}#xywh=${x},${y},${tile.width},${tile.height}`, '');
  }
  return lines.join('\n');
}

/** `HH:MM:SS.mmm`, WebVTT's timestamp. */
export function vttTime(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const s = Math.floor((total % 60_000) / 1000);
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(total % 1000, 3)}`;
}

/** A fraction for the JSON: capped at 1, four decimals, and never rounded down to 0 when something changed. */
function round(v: number): number {
  if (v <= 0) return 0;
  return Math.max(1e-4, Math.round(Math.min(1, v) * 1e4) / 1e4);
}
