/**
 * The input timeline of a recorded session (`--input-log pointer|all`): `input.jsonl` beside the video, one
 * JSON object per line with `t_ms` on the recording's clock, so an auditor can see what was clicked (and,
 * with `all`, typed) at the moment the video shows it. Never on by default: with `all` it holds every key
 * pressed, passwords included — the person who turns it on decides that.
 *
 *   {"t_ms":1520,"type":"pointer","x":300,"y":250,"buttons":0}      moves, at most one per 33 ms (the newest)
 *   {"t_ms":1544,"type":"button","x":300,"y":250,"buttons":1}       every change of the button mask, at once
 *   {"t_ms":1600,"type":"wheel","x":300,"y":250,"dx":0,"dy":1}
 *   {"t_ms":1700,"type":"key","keysym":97,"down":true}              `all` only (keysyms, no scancodes)
 *   {"t_ms":1800,"type":"clipboard","chars":42}                     `all` only (the length, never the text)
 *
 * The file is created 0600, as the recording's other files.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import * as path from 'node:path';
import type { KeyInput } from '../sources/source';

/** What `--input-log` records. */
export type InputLogLevel = 'pointer' | 'all';
export const INPUT_LOG_LEVELS: readonly InputLogLevel[] = ['pointer', 'all'];

/** Pointer moves are kept to this many per second (the newest position in each interval). */
const MOVES_PER_SECOND = 30;

/** Appends input events to DIR/input.jsonl. */
export class InputLog {
  private readonly out: WriteStream;
  private lastMoveAt = -Infinity;
  private heldMove: { t_ms: number; x: number; y: number; buttons: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private buttons = 0;
  private closed = false;
  /** The first write error, reported once by the owner. */
  error: Error | null = null;

  constructor(dir: string, private readonly level: InputLogLevel, private readonly clock: () => number) {
    this.out = createWriteStream(path.join(dir, 'input.jsonl'), { flags: 'a', mode: 0o600 });
    this.out.on('error', (err) => { this.error ??= err; });
  }

  pointer(x: number, y: number, buttons: number): void {
    const t_ms = this.now();
    if (buttons !== this.buttons) {
      // A click is written at once, after any move held back, so the line order is the order of events.
      this.flushMove();
      this.buttons = buttons;
      this.write({ t_ms, type: 'button', x, y, buttons });
      this.lastMoveAt = t_ms;
      return;
    }
    this.heldMove = { t_ms, x, y, buttons };
    const gap = 1000 / MOVES_PER_SECOND;
    if (t_ms - this.lastMoveAt >= gap) {
      this.flushMove();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => { this.timer = null; this.flushMove(); }, Math.max(1, this.lastMoveAt + gap - t_ms));
    }
  }

  wheel(x: number, y: number, dx: number, dy: number): void {
    this.flushMove();
    this.write({ t_ms: this.now(), type: 'wheel', x, y, dx, dy });
  }

  key(k: KeyInput): void {
    if (this.level !== 'all') return;
    this.flushMove();
    this.write({ t_ms: this.now(), type: 'key', keysym: k.keysym, down: k.down });
  }

  clipboard(text: string): void {
    if (this.level !== 'all') return;
    this.write({ t_ms: this.now(), type: 'clipboard', chars: text.length });
  }

  /** Writes what is held and closes the file; resolves when it is on disk. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.flushMove();
    this.closed = true;
    return new Promise((resolve) => { this.out.end(() => { resolve(); }); });
  }

  private now(): number {
    return Math.round(this.clock());
  }

  private flushMove(): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    const m = this.heldMove;
    if (m === null) return;
    this.heldMove = null;
    this.lastMoveAt = m.t_ms;
    this.write({ t_ms: m.t_ms, type: 'pointer', x: m.x, y: m.y, buttons: m.buttons });
  }

  private write(event: Record<string, unknown>): void {
    if (this.closed) return;
    this.out.write(`${JSON.stringify(event)}\n`);
  }
}
