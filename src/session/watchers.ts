/**
 * Frame fan-out to watchers (a viewer's browser tabs, a thumbnailer) with the "drop" policy: a watcher never
 * slows the source or the recording. While a watcher says it is not ready, its frames are skipped; when it is
 * ready again it first gets the whole current picture, so it never shows a half-updated screen. A watcher
 * that throws is closed and reported; the others and the recording go on.
 */
import type { Frame } from '../capture/surface';
import type { Picture } from './picture';

/** Something that shows or inspects frames. */
export interface FrameWatcher {
  /** Takes one frame; its pixels are valid only during the call. */
  onFrame(frame: Frame): void;
  /** False while the watcher cannot take frames (e.g. its socket is full); frames are then skipped. */
  ready?(): boolean;
}

/** A watcher's registration. */
export interface Subscription {
  /** Frames skipped so far because the watcher was not ready. */
  readonly skipped: number;
  /** Call when the watcher is ready again: it gets the whole current picture at once if it missed frames. */
  resume(): void;
  /** Stops delivery. */
  close(): void;
}

interface Entry {
  watcher: FrameWatcher;
  behind: boolean;
  skipped: number;
  closed: boolean;
}

/** The set of watchers of one session. */
export class Watchers {
  private readonly entries = new Set<Entry>();

  constructor(private readonly picture: Picture, private readonly report: (err: unknown) => void) {}

  /** How many watchers there are. */
  get size(): number {
    return this.entries.size;
  }

  /** Adds a watcher; it gets the whole current picture first (on the next tick), then every frame. */
  add(watcher: FrameWatcher): Subscription {
    const e: Entry = { watcher, behind: true, skipped: 0, closed: false };
    this.entries.add(e);
    // Not synchronously: the caller gets its Subscription before the first frame arrives.
    queueMicrotask(() => { this.catchUp(e); });
    return {
      get skipped(): number { return e.skipped; },
      resume: () => { this.catchUp(e); },
      close: () => { e.closed = true; this.entries.delete(e); },
    };
  }

  /** Delivers a frame to every watcher. */
  publish(frame: Frame): void {
    for (const e of this.entries) {
      if (e.closed) continue;
      if (e.watcher.ready !== undefined && !this.isReady(e)) {
        e.behind = true;
        e.skipped++;
        continue;
      }
      if (e.behind) this.catchUp(e);
      else this.deliver(e, frame);
    }
  }

  /** Closes every watcher (the session ended). */
  clear(): void {
    for (const e of this.entries) e.closed = true;
    this.entries.clear();
  }

  private catchUp(e: Entry): void {
    if (e.closed || !e.behind || !this.isReady(e)) return;
    const whole = this.picture.wholeFrame();
    if (whole === null) return;
    e.behind = false;
    this.deliver(e, whole);
  }

  private isReady(e: Entry): boolean {
    try {
      return e.watcher.ready?.() ?? true;
    } catch (err) {
      this.drop(e, err);
      return false;
    }
  }

  private deliver(e: Entry, frame: Frame): void {
    try {
      e.watcher.onFrame(frame);
    } catch (err) {
      this.drop(e, err);
    }
  }

  private drop(e: Entry, err: unknown): void {
    e.closed = true;
    this.entries.delete(e);
    this.report(err);
  }
}
