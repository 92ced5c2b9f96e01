/**
 * The session fuzz target (on the engine of engine.ts): scripted hostile VNC servers run through the whole
 * pipeline — a Session (src/session/session.ts) recording with a real Recording (MP4 or PNG, by seed, into
 * a temporary directory removed afterwards) over a ReplaySource at speed `max`, so every time comes from
 * the records and a run depends only on its input.
 *
 * An input is a server stream (engine.ts `encodeReplayInput`; flags bit 1: record PNG frames instead of
 * MP4): a valid RFB 3.8 handshake (security None, ServerInit at a random size), then a random program of
 * the behaviours issue 15 found costly — desktop-size flips through ExtendedDesktopSize (and DesktopSize)
 * among small, odd, 1080p and a few encoder-limit sizes, alone or in bursts; raw rectangles, mostly inside
 * the current size and sometimes outside it (a ProtocolError); floods of hundreds to thousands of empty
 * FramebufferUpdates; floods of ServerFence requests; bells and cut text; stalls of up to 20 s of session
 * time; slow flips (a size every 0.4–6 s over minutes, the rate bound's case). Chunk boundaries fall
 * anywhere, messages included, with times increasing. A fifth of the inputs is then truncated or corrupted.
 * The client's own messages are not needed: a replay's writes go nowhere.
 *
 * The capture is built in memory (.deskcap bytes, read back by parseCapture) and replayed to its end. The
 * rule of the engine holds (the session ends normally or with a DeskrecError, within the CPU and memory
 * bounds), and when it recorded, the recording's invariants (src/recorder/recording.ts) must hold:
 * - session.json is final (`end` set) and lists no output error (the temporary disk is healthy), and no
 *   encoder failure: the recorder sends sizes past the encoder's limit to PNG by plan, every other size the
 *   built-in encoder must code;
 * - `framesIn` is the number of frames the source delivered;
 * - every emitted frame is accounted for once: framesEmitted = Σ segment frames + framesMerged +
 *   framesSkipped + framesDropped; PNG segments' frames are `pngFrames`, MP4 segments' `framesEncoded`;
 * - segments follow the desktop sizes the source delivered in order, each one a size that lasted at least
 *   MIN_SEGMENT_MS of session time, the first size or the last (so segments ≤ 1 + sizes lasting that long
 *   + the closing one);
 * - no 60 s of session time starts more than MAX_SIZE_SEGMENTS_PER_MINUTE segments for size changes (the
 *   first and the closing one aside);
 * - a segment begins at least one fps-max interval after the previous one's last frame;
 * - every MP4 segment file exists, its boxes are whole, and it holds the segment's frames (samples counted
 *   in `stsz` and every `trun`, by a box walker written here, independent of the muxer); for PNG,
 *   frames.jsonl lists exactly the segments' frames, in order, each file present, at least one interval
 *   apart, at its segment's size.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { parseCapture } from '../../../src/capture/deskcap/reader';
import { BLOCK_MARK, KIND, MAGIC } from '../../../src/capture/deskcap/format';
import type { Frame } from '../../../src/capture/surface';
import { RGBX_FORMAT, writePixelFormat } from '../../../src/protocol/rfb/pixel-format';
import type { SegmentRecord } from '../../../src/recorder/outputs';
import { MAX_SIZE_SEGMENTS_PER_MINUTE, MIN_SEGMENT_MS, type SessionJson } from '../../../src/recorder/recording';
import { Session } from '../../../src/session/session';
import { ReplaySource } from '../../../src/sources/replay';
import type { FrameConsumer, FrameSource, SourceEnd } from '../../../src/sources/source';
import { ByteWriter } from '../../../src/wire/writer';
import {
  classify, concat, decodeReplayInput, encodeReplayInput, mutate, Rng, targetGroup, type InputChunk, type Limits, type Outcome,
} from './engine';

/** Flags bit 1: record PNG frames (otherwise MP4). */
const FLAG_PNG = 2;
/** The recording's fps-max (the default): frames on a grid of 1000/30 ms. */
const FPS_MAX = 30;
const INTERVAL_MS = 1000 / FPS_MAX;
/** Session time a segment's rate window covers (recording.ts RATE_WINDOW_MS). */
const RATE_WINDOW_MS = 60_000;
/** Float slack for times computed as k·1000/30 on both sides. */
const EPS = 1e-6;
/** How long a session that missed its deadline gets to end once stopped, before it is reported as hung. */
const STOP_GRACE_MS = 10_000;

/**
 * One input may spend 10 s of CPU (all threads: encoder workers, sharp's PNG pool) and grow memory by
 * 768 MiB: a 4096x2304 or 8192x1152 size that lasts gets a surface, the session's picture, the recorder's
 * mirror and an encoder at that size (about 37 MB each, the encoder's buffers several times that).
 * Measured over 700 inputs compiled under node: median 0.2 s of CPU, 90th percentile 1.0 s, the most 2.9 s.
 */
export const SESSION_LIMITS: Limits = { timeMs: 10_000, memoryBytes: 768 * 1024 * 1024 };

/* ------------------------------------------------------------------------------------------------ */
/* The server's messages (RFC 6143 §7.6; rfbproto §7.7.x and §7.8.2 for the pseudo-encodings)        */

const ENC_RAW = 0;
const ENC_DESKTOP_SIZE = -223;
const ENC_EXT_DESKTOP_SIZE = -308;

/** Version, security None (one type offered, result OK), ServerInit of a `w`×`h` RGBX desktop. */
function handshake(w: number, h: number): Uint8Array {
  const name = new TextEncoder().encode('hostile');
  const init = new ByteWriter(24 + name.length).u16(w).u16(h).bytes(writePixelFormat(RGBX_FORMAT)).u32(name.length).bytes(name).finish();
  return concat([new TextEncoder().encode('RFB 003.008\n'), Uint8Array.of(1, 1), new Uint8Array(4), init]);
}

/** A rectangle to draw: header fields and Raw pixels of one colour with a gradient (4 bytes a pixel, RGBX). */
interface RawRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

function rawRectBytes(rng: Rng, r: RawRect): Uint8Array {
  const px = new Uint8Array(r.w * r.h * 4);
  const c = rng.u32();
  for (let i = 0; i < r.w * r.h; i++) {
    px[i * 4] = (c + i) & 255;
    px[i * 4 + 1] = (c >>> 8) & 255;
    px[i * 4 + 2] = ((c >>> 16) + (i >> 4)) & 255;
  }
  return concat([new ByteWriter(12).u16(r.x).u16(r.y).u16(r.w).u16(r.h).s32(ENC_RAW).finish(), px]);
}

/** A size-change rectangle: ExtendedDesktopSize (reason 0: the server's own change, status 0, one screen) or DesktopSize. */
function sizeRectBytes(w: number, h: number, extended: boolean): Uint8Array {
  if (!extended) return new ByteWriter(12).u16(0).u16(0).u16(w).u16(h).s32(ENC_DESKTOP_SIZE).finish();
  return new ByteWriter(12 + 4 + 16)
    .u16(0).u16(0).u16(w).u16(h).s32(ENC_EXT_DESKTOP_SIZE)
    .u8(1).pad(3).u32(1).u16(0).u16(0).u16(w).u16(h).u32(0)
    .finish();
}

function updateHeader(rects: number): Uint8Array {
  return new ByteWriter(4).u8(0).pad(1).u16(rects).finish();
}

/** A ServerFence (type 248) with the Request flag and a payload of up to 64 bytes. */
function fenceBytes(rng: Rng): Uint8Array {
  const p = rng.bytes(rng.int(65));
  return concat([new ByteWriter(9).u8(248).pad(3).u32((1 << 31 >>> 0) | rng.int(8)).u8(p.length).finish(), p]);
}

function cutTextBytes(rng: Rng): Uint8Array {
  const text = new TextEncoder().encode(rng.chance(0.5) ? 'hunter2' : 'x'.repeat(rng.int(2000)));
  return concat([new ByteWriter(8).u8(3).pad(3).u32(text.length).finish(), text]);
}

/* ------------------------------------------------------------------------------------------------ */
/* Generator                                                                                         */

/** Sizes a flip goes to: small, odd, common, 1080p; rarely the encoder's largest (36864 macroblocks). */
const SIZES: readonly (readonly [number, number])[] = [
  [64, 64], [64, 64], [1920, 1080], [33, 17], [1, 1], [101, 77], [640, 480], [7, 300], [300, 7], [1023, 769], [320, 200], [2, 2],
];
const BIG_SIZES: readonly (readonly [number, number])[] = [[4096, 2304], [8192, 1152]];

function pickSize(rng: Rng): [number, number] {
  if (rng.chance(0.02)) return [...rng.pick(BIG_SIZES)];
  if (rng.chance(0.15)) return [rng.range(1, 400), rng.range(1, 300)];
  return [...rng.pick(SIZES)];
}

/** The server's bytes with the session time they are sent at. */
interface Msg {
  t: number;
  bytes: Uint8Array;
}

/** Random rectangles inside a `w`×`h` desktop (at most 48x48), and, with `outside`, one that leaves it. */
function randomRects(rng: Rng, w: number, h: number, outside: boolean): RawRect[] {
  const out: RawRect[] = [];
  for (let n = rng.range(1, 3); n > 0; n--) {
    const rw = rng.range(1, Math.min(48, w));
    const rh = rng.range(1, Math.min(48, h));
    out.push({ x: rng.int(w - rw + 1), y: rng.int(h - rh + 1), w: rw, h: rh });
  }
  if (outside) {
    const rw = rng.range(1, 16);
    const rh = rng.range(1, 16);
    out.push(rng.chance(0.5) ? { x: Math.max(0, w - rw + rng.range(1, 8)), y: 0, w: rw, h: rh } : { x: 0, y: Math.max(0, h - rh + rng.range(1, 8)), w: rw, h: rh });
  }
  return out;
}

/** A whole-screen Raw rectangle for small desktops (the picture after a size change), else a few small ones. */
function pictureRects(rng: Rng, w: number, h: number): RawRect[] {
  return w * h <= 160 * 120 && rng.chance(0.5) ? [{ x: 0, y: 0, w, h }] : randomRects(rng, w, h, false);
}

/** An update that changes the size to `w`×`h`, with (mostly) some pixels in the same update. */
function flipBytes(rng: Rng, w: number, h: number): Uint8Array {
  const rects = rng.chance(0.8) ? pictureRects(rng, w, h) : [];
  return concat([updateHeader(1 + rects.length), sizeRectBytes(w, h, rng.chance(0.9)), ...rects.map((r) => rawRectBytes(rng, r))]);
}

function rectsUpdate(rng: Rng, rects: readonly RawRect[]): Uint8Array {
  return concat([updateHeader(rects.length), ...rects.map((r) => rawRectBytes(rng, r))]);
}

/** The program of one hostile server: its messages in time order. */
function program(rng: Rng): Msg[] {
  let [w, h] = rng.chance(0.7) ? [rng.range(1, 320), rng.range(1, 240)] : [rng.range(1, 2048), rng.range(1, 2048)];
  let t = 0;
  const msgs: Msg[] = [{ t, bytes: handshake(w, h) }];
  const at = (bytes: Uint8Array): void => { msgs.push({ t, bytes }); };
  at(rectsUpdate(rng, pictureRects(rng, w, h)));
  const slow = rng.chance(0.1);
  const steps = slow ? rng.range(15, 30) : rng.range(3, 30);
  for (let s = 0; s < steps; s++) {
    if (slow) {
      // A size every 0.4–6 s over minutes: long enough for segments, often enough for the rate bound.
      t += rng.range(400, 6000);
      [w, h] = rng.chance(0.5) ? [...rng.pick([[64, 64], [96, 48], [48, 96], [33, 17]] as const)] : [rng.range(1, 128), rng.range(1, 128)];
      at(flipBytes(rng, w, h));
      for (let k = rng.int(3); k > 0; k--) { t += rng.int(300); at(rectsUpdate(rng, randomRects(rng, w, h, false))); }
      continue;
    }
    const kind = rng.int(100);
    if (kind < 22) {
      [w, h] = pickSize(rng);
      at(flipBytes(rng, w, h));
    } else if (kind < 32) {
      // A burst of flips, the flipping server: every 0–300 ms, between two sizes or among several.
      const pair = [pickSize(rng), pickSize(rng)];
      for (let k = rng.range(2, 40); k > 0; k--) {
        [w, h] = rng.chance(0.7) ? pair[k % 2] ?? [64, 64] : pickSize(rng);
        at(flipBytes(rng, w, h));
        t += rng.chance(0.2) ? 0 : rng.range(1, 300);
      }
    } else if (kind < 55) {
      at(rectsUpdate(rng, randomRects(rng, w, h, rng.chance(0.015))));
    } else if (kind < 65) {
      // A flood of empty updates, all at once or a millisecond or two apart.
      const n = rng.range(100, 3000);
      if (rng.chance(0.5)) {
        at(concat(Array.from({ length: n }, () => updateHeader(0))));
      } else {
        for (let k = 0; k < n; k += 50) { at(concat(Array.from({ length: Math.min(50, n - k) }, () => updateHeader(0)))); t += rng.int(3); }
      }
    } else if (kind < 73) {
      at(concat(Array.from({ length: rng.range(1, 500) }, () => fenceBytes(rng))));
    } else if (kind < 78) {
      at(rng.chance(0.5) ? Uint8Array.of(2) : cutTextBytes(rng));
    } else {
      // A stall: nothing for up to 20 s of session time.
      t += rng.chance(0.3) ? rng.range(0, 500) : rng.range(500, 20_000);
      continue;
    }
    t += rng.chance(0.3) ? 0 : rng.int(120);
  }
  return msgs;
}

/**
 * Cuts the messages into chunks anywhere (between messages and inside them): a chunk arrives at the time
 * of the message its last byte belongs to, so times never go back and a stall may fall inside a message.
 */
function chunked(rng: Rng, msgs: readonly Msg[]): InputChunk[] {
  const pieces: Msg[] = [];
  for (const m of msgs) {
    if (m.bytes.length > 1 && rng.chance(0.2)) {
      const cuts = new Set<number>();
      for (let k = rng.range(1, 4); k > 0; k--) cuts.add(rng.range(1, m.bytes.length - 1));
      let prev = 0;
      for (const c of [...cuts].sort((a, b) => a - b)) { pieces.push({ t: m.t, bytes: m.bytes.subarray(prev, c) }); prev = c; }
      pieces.push({ t: m.t, bytes: m.bytes.subarray(prev) });
    } else {
      pieces.push(m);
    }
  }
  const out: InputChunk[] = [];
  let cur: Uint8Array[] = [];
  let curT = 0;
  for (const p of pieces) {
    // Pieces of one time join a chunk often; a piece of a later time joins the earlier bytes sometimes (they arrive late).
    if (cur.length > 0 && !rng.chance(p.t === curT ? 0.5 : 0.15)) { out.push({ t_ms: curT, data: concat(cur) }); cur = []; }
    cur.push(p.bytes);
    curT = p.t;
  }
  if (cur.length > 0) out.push({ t_ms: curT, data: concat(cur) });
  return out;
}

/** Truncation, a corrupted byte or a generic mutation, mostly after the handshake (so the session goes on to the recorder). */
function damaged(rng: Rng, chunks: InputChunk[], handshakeBytes: number): InputChunk[] {
  const total = chunks.reduce((n, c) => n + c.data.length, 0);
  const from = rng.chance(0.8) ? Math.min(total - 1, handshakeBytes) : 0;
  const pos = rng.range(from, total - 1);
  let o = 0;
  const out: InputChunk[] = [];
  for (const c of chunks) {
    const end = o + c.data.length;
    if (pos >= o && pos < end) {
      const op = rng.int(3);
      if (op === 0) { out.push({ t_ms: c.t_ms, data: c.data.subarray(0, pos - o) }); return out; }
      const data = c.data.slice();
      if (op === 1) data[pos - o] = rng.chance(0.5) ? rng.int(256) : (data[pos - o] ?? 0) ^ (1 << rng.int(8));
      out.push({ t_ms: c.t_ms, data: op === 1 ? data : mutate(rng, c.data) });
    } else {
      out.push(c);
    }
    o = end;
  }
  return out;
}

function generateSession(rng: Rng): Uint8Array {
  const msgs = program(rng);
  let chunks = chunked(rng, msgs);
  if (rng.chance(0.2)) chunks = damaged(rng, chunks, msgs[0]?.bytes.length ?? 0);
  return encodeReplayInput(rng.chance(0.5) ? FLAG_PNG : 0, chunks, false);
}

/* ------------------------------------------------------------------------------------------------ */
/* The capture, built in memory (docs/CAPTURE-FORMAT.md)                                             */

/** Records per block are kept well under MAX_BLOCK_RAW; a longer chunk is split into records of one time. */
const BLOCK_BYTES = 256 * 1024;

function captureBytes(chunks: readonly InputChunk[]): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({
    format: 'deskcap', version: 1, protocol: 'vnc', target: 'vnc://hostile.invalid:5900', start: '2026-01-01T00:00:00.000Z',
    deskrecVersion: '0.0.0-fuzz', credentials: { password: false, username: false },
  }));
  const parts: Uint8Array[] = [MAGIC, new ByteWriter(6).u16(1).u32(header.length).finish(), header];
  let recs: Uint8Array[] = [];
  let raw = 0;
  const flush = (): void => {
    if (recs.length === 0) return;
    const z = new Uint8Array(zlib.deflateRawSync(concat(recs), { level: 1 }));
    parts.push(new ByteWriter(20).u32(BLOCK_MARK).u32(raw).u32(z.length).u32(zlib.crc32(z)).u32(recs.length).finish(), z);
    recs = [];
    raw = 0;
  };
  for (const c of chunks) {
    const t_us = Math.round(c.t_ms * 1000);
    for (let o = 0; o < c.data.length || (o === 0 && c.data.length === 0); o += BLOCK_BYTES) {
      const d = c.data.subarray(o, o + BLOCK_BYTES);
      recs.push(new ByteWriter(13 + d.length).u16(Math.floor(t_us / 2 ** 32) & 0xffff).u32(t_us >>> 0).u16(0).u8(KIND.IN).u32(d.length).bytes(d).finish());
      raw += 13 + d.length;
      if (raw >= BLOCK_BYTES) flush();
      if (c.data.length === 0) break;
    }
  }
  flush();
  return concat(parts);
}

/* ------------------------------------------------------------------------------------------------ */
/* Execution                                                                                         */

/** A frame as the source delivered it: its size and time. */
interface SeenFrame {
  width: number;
  height: number;
  t_ms: number;
}

/** The replay, with every frame it delivers noted before the session takes it. */
class TappedSource implements FrameSource {
  readonly protocol: string;
  readonly target: string;
  readonly realtime: boolean;
  readonly frames: SeenFrame[] = [];

  constructor(private readonly inner: ReplaySource) {
    this.protocol = inner.protocol;
    this.target = inner.target;
    this.realtime = inner.realtime;
  }

  run(consumer: FrameConsumer, opts: { signal: AbortSignal; durationMs: number | null }): Promise<SourceEnd> {
    return this.inner.run({
      onFrame: (f: Frame) => {
        this.frames.push({ width: f.width, height: f.height, t_ms: f.t_ms });
        consumer.onFrame(f);
      },
      whenReady: () => consumer.whenReady(),
    }, opts);
  }

  describe(): Record<string, unknown> {
    return this.inner.describe();
  }
}

/** A run of frames of one size: its first frame's time and, but for the last, the time the next size began. */
interface Stretch {
  width: number;
  height: number;
  since: number;
  until: number | null;
}

function stretches(frames: readonly SeenFrame[]): Stretch[] {
  const out: Stretch[] = [];
  for (const f of frames) {
    const last = out[out.length - 1];
    if (last !== undefined && last.width === f.width && last.height === f.height) continue;
    if (last !== undefined) last.until = f.t_ms;
    out.push({ width: f.width, height: f.height, since: f.t_ms, until: null });
  }
  return out;
}

/** Samples in an MP4 file: `stsz` of the moov (a fast-start file) plus every fragment's `trun`s; throws on a torn box. */
function mp4Samples(b: Uint8Array, name: string): { samples: number; moov: boolean } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const containers = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'moof', 'traf']);
  let samples = 0;
  let moov = false;
  const walk = (from: number, to: number): void => {
    let o = from;
    while (o < to) {
      if (o + 8 > to) throw new Error(`${name}: ${to - o} stray bytes at ${o}`);
      let size = dv.getUint32(o);
      const type = String.fromCharCode(b[o + 4] ?? 0, b[o + 5] ?? 0, b[o + 6] ?? 0, b[o + 7] ?? 0);
      let head = 8;
      if (size === 1) { size = Number(dv.getBigUint64(o + 8)); head = 16; } else if (size === 0) size = to - o;
      if (size < head || o + size > to) throw new Error(`${name}: box '${type}' at ${o} of ${size} bytes runs past ${to}`);
      if (type === 'moov') moov = true;
      if (containers.has(type)) walk(o + head, o + size);
      else if (type === 'stsz' && size >= head + 12) samples += dv.getUint32(o + head + 8);
      else if (type === 'trun' && size >= head + 8) samples += dv.getUint32(o + head + 4);
      o += size;
    }
  };
  walk(0, b.length);
  return { samples, moov };
}

/** A time for a message: always one decimal, so failures that differ only in times share a signature (engine.ts). */
function ms(t: number | null): string {
  return t === null ? 'null' : t.toFixed(1);
}

/** The recording's invariants (see the module comment); returns what is broken, or null. */
async function checkRecording(dir: string, frames: readonly SeenFrame[]): Promise<string | null> {
  let json: SessionJson;
  try {
    json = JSON.parse(await fs.readFile(path.join(dir, 'session.json'), 'utf8')) as SessionJson;
  } catch (err) {
    return `session.json unreadable: ${String(err)}`;
  }
  if (json.end === null || json.endReason === null) return `session.json not final (end ${String(json.end)}, endReason ${String(json.endReason)})`;
  if (json.errors.length > 0) return `output errors on a healthy disk: ${json.errors.join('; ')}`;
  const st = json.stats;
  if (st.framesIn !== frames.length) return `stats.framesIn ${st.framesIn}, but the source delivered ${frames.length} frames`;
  const segs = [...json.segments].sort((a, b) => (a.first_t_ms ?? 0) - (b.first_t_ms ?? 0));
  const inSegs = segs.reduce((n, s) => n + s.frames, 0);
  if (st.framesEmitted !== inSegs + st.framesMerged + st.framesSkipped + st.framesDropped) {
    return `frames emitted ${st.framesEmitted} ≠ in segments ${inSegs} + merged ${st.framesMerged} + skipped ${st.framesSkipped} + dropped ${st.framesDropped}`;
  }
  const pngSegFrames = segs.filter((s) => s.kind === 'png').reduce((n, s) => n + s.frames, 0);
  const mp4SegFrames = inSegs - pngSegFrames;
  if (st.pngFrames !== pngSegFrames) return `stats.pngFrames ${st.pngFrames} ≠ frames in PNG segments ${pngSegFrames}`;
  if (st.framesEncoded !== mp4SegFrames) return `stats.framesEncoded ${st.framesEncoded} ≠ frames in MP4 segments ${mp4SegFrames}`;

  // Segments follow the sizes delivered: each one a later stretch that lasted MIN_SEGMENT_MS (or the first, or the last).
  const runs = stretches(frames);
  let next = 0;
  for (const [i, s] of segs.entries()) {
    let found = -1;
    for (let k = next; k < runs.length; k++) {
      const r = runs[k];
      if (r === undefined || r.width !== s.width || r.height !== s.height) continue;
      const eligible = k === 0 || r.until === null || r.until - r.since >= MIN_SEGMENT_MS;
      if (eligible) { found = k; break; }
    }
    if (found < 0) {
      const eligible = runs.filter((r, k) => k === 0 || r.until === null || r.until - r.since >= MIN_SEGMENT_MS).length;
      return `segment ${i} (${s.width}x${s.height} at ${ms(s.first_t_ms)} ms) has no size of its own that lasted ${MIN_SEGMENT_MS} ms `
        + `(${segs.length} segments, ${runs.length} sizes delivered, ${eligible} eligible)`;
    }
    next = found + 1;
  }

  // The rate bound: among segments started for size changes (not the first, not the closing one).
  const starts = segs.slice(1, -1).map((s) => s.first_t_ms ?? 0);
  for (let i = 0; i + MAX_SIZE_SEGMENTS_PER_MINUTE < starts.length; i++) {
    const a = starts[i] ?? 0;
    const b = starts[i + MAX_SIZE_SEGMENTS_PER_MINUTE] ?? 0;
    if (b - a < RATE_WINDOW_MS - EPS) return `${MAX_SIZE_SEGMENTS_PER_MINUTE + 1} segments for size changes started within ${ms(b - a)} ms (from ${ms(a)} ms)`;
  }

  let prev: SegmentRecord | null = null;
  for (const s of segs) {
    if (prev !== null && (s.first_t_ms ?? 0) < (prev.last_t_ms ?? 0) + INTERVAL_MS - EPS) {
      return `segment ${s.file} begins at ${ms(s.first_t_ms)} ms, less than an interval after ${prev.file}'s last frame at ${ms(prev.last_t_ms)} ms`;
    }
    prev = s;
  }

  for (const s of segs.filter((x) => x.kind === 'mp4')) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await fs.readFile(path.join(dir, s.file)));
    } catch (err) {
      return `segment ${s.file} missing: ${String(err)}`;
    }
    const got = mp4Samples(bytes, s.file);
    if (!got.moov) return `${s.file} has no moov`;
    if (got.samples !== s.frames) return `${s.file} holds ${got.samples} samples, session.json says ${s.frames} frames`;
  }

  const pngSegs = segs.filter((x) => x.kind === 'png');
  if (pngSegs.length > 0) {
    let lines: { index: number; file: string; t_ms: number; width: number; height: number }[];
    try {
      lines = (await fs.readFile(path.join(dir, 'frames', 'frames.jsonl'), 'utf8')).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as typeof lines[number]);
    } catch (err) {
      return `frames.jsonl unreadable: ${String(err)}`;
    }
    if (lines.length !== pngSegFrames) return `frames.jsonl lists ${lines.length} frames, the PNG segments ${pngSegFrames}`;
    let at = 0;
    for (const s of pngSegs) {
      const first = lines[at];
      if (first === undefined || (`frames/${first.file}` !== s.file && first.file !== s.file)) return `PNG segment ${s.file} does not begin at frames.jsonl line ${at + 1} (${first?.file ?? 'none'})`;
      for (let k = at; k < at + s.frames; k++) {
        const l = lines[k];
        if (l === undefined) return `frames.jsonl ends inside segment ${s.file}`;
        if (l.width !== s.width || l.height !== s.height) return `frame ${l.file} is ${l.width}x${l.height} in a ${s.width}x${s.height} segment`;
      }
      at += s.frames;
    }
    for (const [k, l] of lines.entries()) {
      const before = lines[k - 1];
      if (before !== undefined && l.t_ms < before.t_ms + INTERVAL_MS - EPS) return `PNG frames ${before.file} and ${l.file} are ${ms(l.t_ms - before.t_ms)} ms apart`;
      const file = l.file.startsWith('frames/') ? l.file : path.join('frames', l.file);
      try {
        await fs.access(path.join(dir, file));
      } catch {
        return `${file} listed in frames.jsonl is missing`;
      }
    }
  }
  // Sizes past the encoder's limit go to PNG by plan (no failure); every other size must encode. Last, so
  // that a broken bound above is reported first.
  if (json.encoderFailure !== null) return `the encoder failed on a size it is given: ${json.encoderFailure}`;
  return null;
}

/** `p`'s outcome, or 'timeout' once performance.now() passes `deadline`. */
async function settleBy<T>(p: Promise<T>, deadline: number): Promise<{ value: T } | { error: unknown } | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => { resolve('timeout'); }, Math.max(0, deadline - performance.now())); });
  try {
    return await Promise.race([p.then((value) => ({ value }), (error: unknown) => ({ error })), limit]);
  } finally {
    clearTimeout(timer);
  }
}

async function executeSession(input: Uint8Array, deadline: number): Promise<Outcome> {
  const { flags, chunks } = decodeReplayInput(input, false);
  const format = (flags & FLAG_PNG) !== 0 ? 'png' : 'mp4';
  const capture = parseCapture(captureBytes(chunks), 'hostile.deskcap');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'deskrec-fuzz-session-'));
  let hung = false;
  try {
    const source = new TappedSource(new ReplaySource(capture, 'max'));
    const abort = new AbortController();
    const session = new Session(source, { record: { dir, format }, idleNoticeS: null, signal: abort.signal });
    await session.start();
    let ended = await settleBy(session.done, deadline);
    if (ended === 'timeout') {
      abort.abort();
      ended = await settleBy(session.done, performance.now() + STOP_GRACE_MS);
      hung = ended === 'timeout';
      return { status: 'failure', kind: 'timeout', error: `the session did not end by its deadline (${source.frames.length} frames delivered; ${hung ? 'nor within 10 s of being stopped' : 'it ended once stopped'})` };
    }
    const error = 'error' in ended ? ended.error : null;
    const verdict = classify(error, `${source.frames.length} frames, ${format}`);
    if (verdict.status === 'failure') return verdict;
    // The recording exists before the source runs, and stop() finishes it however the session ended (a
    // protocol error, no picture at all): its invariants hold whatever the ending.
    const broken = await checkRecording(dir, source.frames);
    if (broken !== null) throw new Error(`recording invariant: ${broken}`);
    return verdict;
  } finally {
    // A hung session may still be writing there: its directory is left behind (a hang is a failure anyway).
    if (!hung) await fs.rm(dir, { recursive: true, force: true });
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* The group                                                                                         */

/** The session target as the engine runs it (no corpus: every server is made up). */
export const SESSION = targetGroup('session', {
  session: { generate: (rng) => generateSession(rng), execute: executeSession, limits: SESSION_LIMITS },
}, () => null, () => Promise.resolve());

/** The session group's target name. */
export type SessionTargetName = (typeof SESSION.targets)[number];
