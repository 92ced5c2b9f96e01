/**
 * `test://desktop?size=WxH[&fps=N][&seed=N]`: a deterministic desktop-like workload for running, testing and
 * benchmarking the pipeline without a server. Mostly static; a terminal window that types text and scrolls,
 * a clock that ticks every second, a text-cursor blink, a mouse pointer that glides to a new place every
 * three seconds, and every ten seconds a full-screen workspace switch.
 * The picture at tick n depends only on n and the seed; in real time t_ms is the real elapsed time, at
 * `speed max` it is n × the tick interval and frames are produced as fast as the consumer takes them.
 */
import { UsageError } from '../errors';
import { randomFloats } from '../util/rng';
import { arrowCursor, type CursorState } from '../capture/cursor';
import type { Rect } from '../capture/rect';
import type { FrameConsumer, FrameSource, SourceEnd } from './source';
import { MAX_SURFACE_SIDE, Surface } from '../capture/surface';

/** Parsed `test://desktop` parameters. */
export interface SyntheticParams {
  width: number;
  height: number;
  fps: number;
  seed: number;
}

/** Smallest width and height of the synthetic desktop. */
const MIN_SIDE = 64;

/** Parses a `test://desktop?…` URL; throws UsageError for anything else. */
export function parseTestUrl(url: URL): SyntheticParams {
  if (url.hostname !== 'desktop' || (url.pathname !== '' && url.pathname !== '/')) {
    throw new UsageError('BAD_URL', `unknown test source '${url.href}' (try test://desktop?size=1920x1080)`);
  }
  const size = url.searchParams.get('size') ?? '1280x720';
  const m = /^(\d+)x(\d+)$/.exec(size);
  if (m === null) throw new UsageError('BAD_SIZE', `size must be WIDTHxHEIGHT, got '${size}'`);
  const width = Number(m[1]);
  const height = Number(m[2]);
  // The layout (a 32-pixel taskbar, windows of at least 64x48, the terminal) needs 64x52; below that the
  // drawing left the surface and the session failed mid-way with RECT_OUT_OF_BOUNDS.
  if (width < MIN_SIDE || height < MIN_SIDE || width > MAX_SURFACE_SIDE || height > MAX_SURFACE_SIDE || width % 2 !== 0 || height % 2 !== 0) {
    throw new UsageError('BAD_SIZE',
      `size ${width}x${height} is not allowed: width and height must be even and within ${MIN_SIDE}..${MAX_SURFACE_SIDE}`);
  }
  const fps = Number(url.searchParams.get('fps') ?? '30');
  if (!Number.isFinite(fps) || fps <= 0 || fps > 240) throw new UsageError('BAD_ARGUMENT', `fps must be in (0, 240], got '${String(fps)}'`);
  const seed = Number(url.searchParams.get('seed') ?? '1');
  if (!Number.isInteger(seed)) throw new UsageError('BAD_ARGUMENT', 'seed must be an integer');
  return { width, height, fps, seed };
}

const CELL_W = 8;
const CELL_H = 16;

/** Renders the synthetic desktop into a Surface, one tick at a time. */
export class SyntheticDesktop {
  readonly surface: Surface;
  private readonly rand: () => number;
  private term: Rect = { x: 0, y: 0, width: 0, height: 0 };
  private col = 0;
  private row = 0;
  private workspace = -1;
  private lastClockSecond = -1;
  /** The mouse pointer (kept out of the surface, as real protocols keep it). */
  readonly cursor: CursorState = { shape: arrowCursor(), x: 0, y: 0 };

  constructor(readonly params: SyntheticParams) {
    this.surface = new Surface(params.width, params.height);
    this.rand = randomFloats(params.seed);
  }

  /** Advances the desktop to tick `n` (ticks must be taken in order). */
  tick(n: number): void {
    const { fps } = this.params;
    const ws = Math.floor(n / (fps * 10));
    if (ws !== this.workspace) this.drawWorkspace(ws);
    // Type two characters a tick, like a fast typist or a program printing.
    for (let i = 0; i < 2; i++) this.typeChar();
    const second = Math.floor(n / fps);
    if (second !== this.lastClockSecond) {
      this.lastClockSecond = second;
      this.drawClock(second);
    }
    this.movePointer(n);
    // The text cursor blinks twice a second.
    const on = Math.floor((n * 2) / fps) % 2 === 0;
    const s = this.surface;
    const cx = this.term.x + this.col * CELL_W;
    const cy = this.term.y + this.row * CELL_H;
    if (cx + CELL_W <= this.term.x + this.term.width && cy + CELL_H <= this.term.y + this.term.height) {
      if (on) s.fill({ x: cx, y: cy + CELL_H - 3, width: CELL_W, height: 2 }, 220, 220, 220);
      else s.fill({ x: cx, y: cy + CELL_H - 3, width: CELL_W, height: 2 }, 24, 24, 32);
    }
  }

  /** Every three seconds the pointer glides, for one second, to the next of a fixed series of places. */
  private movePointer(n: number): void {
    const { fps, width: W, height: H } = this.params;
    const period = Math.round(3 * fps);
    const k = Math.floor(n / period);
    const place = (i: number): [number, number] => [
      Math.min(W - 1, 20 + ((i * 7919) % Math.max(1, W - 40))),
      Math.min(H - 1, 20 + ((i * 104729) % Math.max(1, H - 60))),
    ];
    const [x0, y0] = place(k);
    const [x1, y1] = place(k + 1);
    const f = Math.min(1, (n - k * period) / fps);
    this.cursor.x = Math.round(x0 + (x1 - x0) * f);
    this.cursor.y = Math.round(y0 + (y1 - y0) * f);
  }

  private drawWorkspace(ws: number): void {
    this.workspace = ws;
    const s = this.surface;
    const { width: W, height: H } = this.params;
    const hue = (ws * 67) % 360;
    const [br, bg, bb] = hsl(hue, 0.35, 0.35);
    // A vertical gradient background, like a wallpaper.
    const row = new Uint8Array(W * 4);
    for (let y = 0; y < H; y++) {
      const k = 0.7 + (0.3 * y) / H;
      for (let x = 0; x < W; x++) {
        row[x * 4] = Math.round(br * k);
        row[x * 4 + 1] = Math.round(bg * k);
        row[x * 4 + 2] = Math.round(bb * k + (x % 64 === 0 ? 8 : 0));
        row[x * 4 + 3] = 255;
      }
      s.putPixels({ x: 0, y, width: W, height: 1 }, row);
    }
    // Taskbar.
    s.fill({ x: 0, y: H - 32, width: W, height: 32 }, 30, 30, 36);
    // A few static windows with text, then the terminal on top.
    const wins = 3;
    for (let i = 0; i < wins; i++) {
      const ww = Math.max(64, Math.floor(W * (0.3 + 0.1 * i)) & ~7);
      const wh = Math.max(48, Math.floor(H * (0.3 + 0.08 * i)) & ~15);
      const wx = Math.min(W - ww, Math.floor(W * 0.05 * (i + 1 + (ws % 3))));
      const wy = Math.min(H - 32 - wh, Math.floor(H * 0.06 * (i + 1)));
      this.drawWindow({ x: Math.max(0, wx), y: Math.max(0, wy), width: ww, height: wh }, i);
    }
    const tw = Math.min(W, Math.max(64, Math.floor(W * 0.45) & ~7));
    const th = Math.min(H - 32, Math.max(48, Math.floor(H * 0.45) & ~15));
    const tx = Math.max(0, W - tw - Math.floor(W * 0.04));
    const ty = Math.max(0, H - 32 - th - Math.floor(H * 0.04));
    s.fill({ x: tx, y: ty, width: tw, height: 20 }, 60, 60, 80);
    this.term = { x: tx, y: ty + 20, width: tw, height: Math.floor((th - 20) / CELL_H) * CELL_H };
    s.fill(this.term, 24, 24, 32);
    this.col = 0;
    this.row = 0;
  }

  private drawWindow(r: Rect, i: number): void {
    const s = this.surface;
    s.fill(r, 235, 235, 230);
    s.fill({ x: r.x, y: r.y, width: r.width, height: 20 }, 70 + 30 * i, 90, 140);
    for (let y = r.y + 28; y + CELL_H <= r.y + r.height - 4; y += CELL_H + 2) {
      const n = Math.floor((r.width - 16) / CELL_W * (0.4 + 0.6 * this.rand()));
      for (let c = 0; c < n; c++) this.glyph(r.x + 8 + c * CELL_W, y, 40, 40, 40, 235, 235, 230);
    }
  }

  private glyph(x: number, y: number, fr: number, fg: number, fb: number, br: number, bgc: number, bb: number): void {
    const s = this.surface;
    if (x + CELL_W > s.width || y + CELL_H > s.height) return;
    const buf = new Uint8Array(CELL_W * CELL_H * 4);
    const space = this.rand() < 0.15;
    const bits = Math.floor(this.rand() * 0xffffff);
    for (let gy = 0; gy < CELL_H; gy++) {
      for (let gx = 0; gx < CELL_W; gx++) {
        const ink = !space && gy >= 3 && gy <= 12 && gx >= 1 && gx <= 6
          && ((bits >> ((gy * 3 + gx) % 24)) & 1) === 1 && (gy % 3 !== 0 || gx % 2 === 0);
        const o = (gy * CELL_W + gx) * 4;
        buf[o] = ink ? fr : br;
        buf[o + 1] = ink ? fg : bgc;
        buf[o + 2] = ink ? fb : bb;
        buf[o + 3] = 255;
      }
    }
    s.putPixels({ x, y, width: CELL_W, height: CELL_H }, buf);
  }

  private typeChar(): void {
    const t = this.term;
    const cols = Math.floor(t.width / CELL_W);
    const rows = Math.floor(t.height / CELL_H);
    if (cols === 0 || rows === 0) return;
    const newline = this.col >= cols || this.rand() < 0.02;
    if (newline) {
      // Clear the old cursor cell, then go to the next line, scrolling when at the bottom.
      if (this.col < cols) this.surface.fill({ x: t.x + this.col * CELL_W, y: t.y + this.row * CELL_H, width: CELL_W, height: CELL_H }, 24, 24, 32);
      this.col = 0;
      this.row++;
      if (this.row >= rows) {
        this.row = rows - 1;
        if (rows > 1) this.surface.copyRect({ x: t.x, y: t.y, width: t.width, height: (rows - 1) * CELL_H }, t.x, t.y + CELL_H);
        this.surface.fill({ x: t.x, y: t.y + this.row * CELL_H, width: t.width, height: CELL_H }, 24, 24, 32);
      }
      return;
    }
    this.glyph(t.x + this.col * CELL_W, t.y + this.row * CELL_H, 180, 230, 180, 24, 24, 32);
    this.col++;
  }

  private drawClock(second: number): void {
    const s = this.surface;
    const W = this.params.width;
    const H = this.params.height;
    const x = Math.max(0, W - 8 * CELL_W - 8);
    const y = Math.max(0, H - 24);
    if (y + CELL_H > H) return;
    s.fill({ x, y, width: Math.min(8 * CELL_W, W - x), height: CELL_H }, 30, 30, 36);
    const digits = String(second % 100000).padStart(5, '0');
    for (let i = 0; i < digits.length; i++) {
      const d = Number(digits[i]);
      // A digit is drawn as a bar whose height encodes its value: cheap, and visibly ticking.
      const h = 2 + d;
      if (x + i * CELL_W + 6 <= W) s.fill({ x: x + i * CELL_W + 1, y: y + CELL_H - 2 - h, width: 5, height: h }, 230, 230, 230);
    }
  }
}

function hsl(h: number, s: number, l: number): [number, number, number] {
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const hp = h / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  const [r1, g1, b1] = hp < 1 ? [c, x, 0] : hp < 2 ? [x, c, 0] : hp < 3 ? [0, c, x] : hp < 4 ? [0, x, c] : hp < 5 ? [x, 0, c] : [c, 0, x];
  const m = l - c / 2;
  return [Math.round((r1 + m) * 255), Math.round((g1 + m) * 255), Math.round((b1 + m) * 255)];
}

/** The synthetic desktop as a FrameSource. */
export class SyntheticSource implements FrameSource {
  readonly protocol = 'test';
  readonly target: string;
  readonly realtime: boolean;

  constructor(private readonly params: SyntheticParams, private readonly speed: 'realtime' | 'max') {
    this.realtime = speed === 'realtime';
    this.target = `test://desktop?size=${params.width}x${params.height}&fps=${params.fps}&seed=${params.seed}`;
  }

  async run(consumer: FrameConsumer, opts: { signal: AbortSignal; durationMs: number | null }): Promise<SourceEnd> {
    const desk = new SyntheticDesktop(this.params);
    const interval = 1000 / this.params.fps;
    const start = performance.now();
    for (let n = 0; ; n++) {
      const ideal = n * interval;
      if (opts.durationMs !== null && ideal >= opts.durationMs) {
        return { reason: 'duration', t_ms: opts.durationMs };
      }
      if (opts.signal.aborted) return { reason: 'signal', t_ms: this.speed === 'max' ? ideal : performance.now() - start };
      let t = ideal;
      if (this.speed === 'realtime') {
        const wait = start + ideal - performance.now();
        if (wait > 0) await sleep(wait, opts.signal);
        if (opts.signal.aborted) return { reason: 'signal', t_ms: performance.now() - start };
        t = Math.round(performance.now() - start);
      } else {
        await consumer.whenReady();
      }
      desk.tick(n);
      const frame = desk.surface.takeFrame(t);
      frame.cursor = desk.cursor;
      consumer.onFrame(frame);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
