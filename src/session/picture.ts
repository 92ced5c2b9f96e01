/**
 * The session's own copy of the remote picture as of the last frame boundary. Sources hand frames whose
 * pixels live in the protocol's surface and are valid only during the call (the next update may already be
 * drawing into it); a late watcher or a snapshot needs a whole, consistent picture at any time, so the
 * session copies each frame's damage here. A static screen makes no frames, so it costs nothing.
 */
import type { CursorState } from '../capture/cursor';
import type { Rect } from '../capture/rect';
import type { Frame } from '../capture/surface';
import { copyRect } from '../recorder/pixels';

/** A copy of the current picture that the caller owns. */
export interface Snapshot {
  width: number;
  height: number;
  /** RGBA, `width * 4` bytes per row, without the pointer. */
  rgba: Uint8Array;
  /** Session time of the frame the picture is from, ms. */
  t_ms: number;
  /** The pointer as the source last reported it (drawn by whoever shows the picture). */
  cursor: CursorState | null;
}

/** The current picture, updated at every frame. */
export class Picture {
  private width = 0;
  private height = 0;
  private rgba: Uint8Array = new Uint8Array(0);
  private t = 0;
  private cursor: CursorState | null = null;
  /** The picture of the size before, for a size that comes back (a desktop flipping between two sizes). */
  private spare: Uint8Array | null = null;

  /** True once a first frame arrived. */
  get present(): boolean {
    return this.width > 0;
  }

  /** Takes the changes of `frame` (all of it when the size changed). */
  apply(frame: Frame): void {
    const stride = frame.width * 4;
    if (frame.width !== this.width || frame.height !== this.height) {
      this.width = frame.width;
      this.height = frame.height;
      const bytes = stride * frame.height;
      const old = this.rgba;
      // The whole picture is copied in below, so a reused buffer's old contents never show.
      let next: Uint8Array;
      if (this.spare !== null && this.spare.length === bytes) {
        next = this.spare;
        this.spare = null;
      } else {
        next = new Uint8Array(bytes);
      }
      if (old.length > 0 && (this.spare === null || old.length >= this.spare.length)) this.spare = old;
      this.rgba = next;
      copyRect(frame.rgba, frame.stride, this.rgba, stride, { x: 0, y: 0, width: frame.width, height: frame.height });
    } else {
      for (const r of frame.damage) copyRect(frame.rgba, frame.stride, this.rgba, stride, r);
    }
    this.t = frame.t_ms;
    this.cursor = frame.cursor ?? null;
  }

  /** A copy of the picture, or null before the first frame. */
  snapshot(): Snapshot | null {
    if (!this.present) return null;
    return { width: this.width, height: this.height, rgba: this.rgba.slice(), t_ms: this.t, cursor: this.cursor };
  }

  /** The whole picture as a frame (pixels valid during the call it is passed to), or null before the first frame. */
  wholeFrame(): Frame | null {
    if (!this.present) return null;
    const all: Rect = { x: 0, y: 0, width: this.width, height: this.height };
    const frame: Frame = { rgba: this.rgba, width: this.width, height: this.height, stride: this.width * 4, damage: [all], t_ms: this.t };
    if (this.cursor !== null) frame.cursor = this.cursor;
    return frame;
  }
}
