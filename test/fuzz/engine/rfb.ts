/**
 * The RFB fuzz targets (on the engine of engine.ts: every input decodes or fails with a DeskrecError):
 *
 * - `client`: the whole RfbClient over a ReplayTransport, fed the server streams of the capture fixtures
 *   (fixtures/vnc/) mutated (bit flips, bytes set to 0/255/random, inserted/deleted/duplicated runs,
 *   truncation, splices from other fixtures, rectangle sizes and length fields set to huge values), or a
 *   valid handshake followed by random messages.
 * - `decoders`: each rectangle decoder called directly on a DecodeContext (every kind of pixel format, a
 *   small surface, one to four rectangles sharing the zlib streams), with structurally valid payloads made
 *   by small encoders here, then mutated, and headers inside and outside the surface. Each input is also
 *   decoded a second time after first offering each rectangle a prefix of its bytes through a streaming
 *   reader: the results must be identical (the NeedMoreData contract of types.ts).
 * - `capture`: parseCapture on mutated capture files, raw and re-blocked with valid checksums.
 * - `pixel-format`: parsePixelFormat, and for valid formats the pixel converters, ZRLE's CPIXEL and Tight's
 *   TPIXEL over random pixels, and a write/parse round trip.
 *
 * An input is a byte string (its target's serialisation, below), so any failure can be saved and replayed.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { parseCapture } from '../../../src/capture/deskcap/reader';
import { BLOCK_MARK, KIND, MAGIC } from '../../../src/capture/deskcap/format';
import { Surface } from '../../../src/capture/surface';
import { createDecodeContext, type RfbDecodeContext } from '../../../src/protocol/rfb/encodings/context';
import { DECODERS } from '../../../src/protocol/rfb/encodings/index';
import {
  ColourMap, createPixelDecoder, isTight24, parsePixelFormat, RGBA_CURSOR_FORMAT, RGBX_FORMAT, tightPixel, writePixelFormat,
  zrleCPixel, zrleDroppedByte,
} from '../../../src/protocol/rfb/pixel-format';
import type { PixelFormat, RectHeader } from '../../../src/protocol/rfb/types';
import { ByteReader, NeedMoreData } from '../../../src/wire/reader';
import { ByteWriter } from '../../../src/wire/writer';
import {
  checkFrame, classify, concat, HUGE16, HUGE32, mutate, mutateTimes, prepareSamples, replayVerdict, Rng,
  repoRoot, SAMPLES, targetGroup, decodeReplayInput, encodeReplayInput, type Outcome,
} from './engine';
import { replayChunks, serverChunks, type Chunk } from './replay';

/* ------------------------------------------------------------------------------------------------ */
/* Corpus                                                                                            */

/** One fixture's server stream. */
interface Stream {
  name: string;
  bytes: Uint8Array;
  /** Chunk end offsets and times, to re-chunk a mutated stream the way it arrived. */
  ends: number[];
  times: number[];
  width: number;
  height: number;
  /** Offsets of what look like rectangle headers (x, y, w, h inside the screen, a known encoding). */
  rects: number[];
}

/** The seeds the fuzzer mutates: the capture fixtures' files and server streams. */
export interface Corpus {
  streams: Stream[];
  captures: { name: string; bytes: Uint8Array }[];
}

const KNOWN_ENCODINGS = new Set([0, 1, 2, 4, 5, 6, 7, 15, 16, -260, -239, -240, -314, -223, -224, -232, -257, -261, -307, -308, 0x574d5666]);

function findRects(b: Uint8Array, width: number, height: number): number[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = [];
  for (let i = 0; i + 12 <= b.length; i++) {
    const enc = v.getInt32(i + 8);
    if (!KNOWN_ENCODINGS.has(enc)) continue;
    const x = v.getUint16(i);
    const y = v.getUint16(i + 2);
    const w = v.getUint16(i + 4);
    const h = v.getUint16(i + 6);
    if (w === 0 || h === 0 || x + w > width || y + h > height) continue;
    out.push(i);
    if (out.length >= 4000) break;
  }
  return out;
}

/** Loads the fixtures (capture files, and each one's server stream up to `maxStream` bytes). */
export function loadCorpus(root = repoRoot(), maxStream = 1 << 20): Corpus {
  const dir = path.join(root, 'fixtures', 'vnc');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.deskcap')).sort() : [];
  const corpus: Corpus = { streams: [], captures: [] };
  for (const f of files) {
    const bytes = new Uint8Array(readFileSync(path.join(dir, f)));
    const name = f.replace(/\.deskcap$/, '');
    corpus.captures.push({ name, bytes });
    const chunks = serverChunks(parseCapture(bytes, f));
    const parts: Uint8Array[] = [];
    const ends: number[] = [];
    const times: number[] = [];
    let n = 0;
    for (const c of chunks) {
      if (n >= maxStream) break;
      const d = c.data.subarray(0, maxStream - n);
      parts.push(d);
      n += d.length;
      ends.push(n);
      times.push(c.t_ms);
    }
    const stream = concat(parts);
    // ServerInit follows the 12-byte version, the security exchange and its result: find the size by the
    // name field's shape is fragile, so take it from the first DesktopSize-free guess: the fixture sizes.
    const size = /^qemu/.test(name) ? { width: 720, height: 400 } : guessSize(stream);
    corpus.streams.push({ name, bytes: stream, ends, times, ...size, rects: findRects(stream, size.width, size.height) });
  }
  return corpus;
}

/** The framebuffer size from ServerInit of an RFB 3.8 stream with security None ([1,1] types, 4-byte result). */
function guessSize(stream: Uint8Array): { width: number; height: number } {
  const n = stream[12] ?? 0;
  const at = 12 + 1 + n + 4;
  if (at + 4 > stream.length) return { width: 640, height: 400 };
  const v = new DataView(stream.buffer, stream.byteOffset + at, 4);
  return { width: v.getUint16(0) || 640, height: v.getUint16(2) || 400 };
}

/* ------------------------------------------------------------------------------------------------ */
/* Target: client                                                                                    */

/** Serialisation of a client input: engine.ts `encodeReplayInput`, flags bit 0: the client has a password. */
function encodeChunks(chunks: readonly Chunk[], password: boolean): Uint8Array {
  return encodeReplayInput(password ? 1 : 0, chunks, false);
}

/** Cuts a (mutated) stream into chunks: at the original boundaries scaled to the new length, or at random. */
function rechunk(rng: Rng, bytes: Uint8Array, s: Stream | null): Chunk[] {
  const out: Chunk[] = [];
  if (s !== null && rng.chance(0.7)) {
    let prev = 0;
    for (let i = 0; i < s.ends.length && prev < bytes.length; i++) {
      const end = i === s.ends.length - 1 ? bytes.length : Math.min(bytes.length, s.ends[i] ?? bytes.length);
      if (end > prev) out.push({ data: bytes.subarray(prev, end), t_ms: s.times[i] ?? 0 });
      prev = Math.max(prev, end);
    }
    if (prev < bytes.length) out.push({ data: bytes.subarray(prev), t_ms: s.times[s.times.length - 1] ?? 0 });
    return out;
  }
  let p = 0;
  let t = 0;
  while (p < bytes.length) {
    const n = rng.chance(0.3) ? rng.range(1, 16) : rng.range(1, 65536);
    out.push({ data: bytes.subarray(p, Math.min(bytes.length, p + n)), t_ms: t });
    p += n;
    t += rng.int(40);
  }
  return out;
}

/** A valid RFB 3.8 handshake (security None) announcing a `w`×`h` RGBX desktop. */
function handshake(w: number, h: number): Uint8Array {
  const name = new TextEncoder().encode('fuzz');
  const init = new ByteWriter(24 + name.length).u16(w).u16(h).bytes(writePixelFormat(RGBX_FORMAT)).u32(name.length).bytes(name).finish();
  return concat([new TextEncoder().encode('RFB 003.008\n'), Uint8Array.of(1, 1), new Uint8Array(4), init]);
}

const CLIENT_ENCODINGS = [0, 1, 2, 4, 5, 6, 7, 15, 16, -260, -239, -240, -314, -223, -224, -232, -257, -258, -259, -261, -307, -308, 0x574d5666];

/** Random server messages after a valid handshake: updates with random rectangles, cut text, fences, garbage. */
function randomSession(rng: Rng): Uint8Array {
  const w = rng.chance(0.8) ? rng.range(1, 200) : rng.pick([1, 8192, 8193, 0xffff]);
  const h = rng.chance(0.8) ? rng.range(1, 150) : rng.pick([1, 8192, 0xffff]);
  const parts: Uint8Array[] = [handshake(w, h)];
  const fmt = rngFormat(rng);
  for (let m = rng.range(1, 8); m > 0; m--) {
    const kind = rng.int(10);
    if (kind < 6) {
      const n = rng.range(0, 4);
      parts.push(new ByteWriter(4).u8(0).pad(1).u16(rng.chance(0.9) ? n : rng.pick([0xffff, n + 1])).finish());
      for (let i = 0; i < n; i++) {
        const enc = rng.pick(CLIENT_ENCODINGS);
        const rect = randomRect(rng, w, h, enc);
        parts.push(rectHeaderBytes(rect));
        // Pixel payloads are made for RGBX (the format the client asks for), sometimes for another format.
        const payload = DECODERS.has(enc) ? makePayload(rng, rect, rng.chance(0.9) ? RGBX_FORMAT : fmt, new Map()) : rng.bytes(rng.int(32));
        parts.push(rng.chance(0.3) ? mutateTimes(rng, payload, rng.range(1, 3)) : payload);
      }
    } else if (kind === 6) {
      const text = rng.bytes(rng.int(64));
      parts.push(new ByteWriter(8).u8(3).pad(3).s32(rng.chance(0.8) ? text.length : rng.pick([-text.length, 0x7fffffff, -0x80000000])).finish(), text);
    } else if (kind === 7) {
      const p = rng.bytes(rng.int(70));
      parts.push(new ByteWriter(9).u8(248).pad(3).u32(rng.u32()).u8(p.length).finish(), p);
    } else if (kind === 8) {
      const count = rng.int(300);
      parts.push(new ByteWriter(6).u8(1).pad(1).u16(rng.chance(0.5) ? rng.int(300) : rng.u32() & 0xffff).u16(count).finish(), rng.bytes(count * 6));
    } else {
      parts.push(rng.chance(0.5) ? Uint8Array.of(rng.pick([2, 150])) : rng.bytes(rng.range(1, 40)));
    }
  }
  return concat(parts);
}

function generateClient(rng: Rng, corpus: Corpus): Uint8Array {
  if (corpus.streams.length === 0 || rng.chance(0.25)) {
    const bytes = randomSession(rng);
    return encodeChunks(rechunk(rng, bytes, null), rng.chance(0.1));
  }
  const s = rng.pick(corpus.streams);
  // Mutations anywhere in a prefix long enough to hold them; the rest of the stream is dropped (after a
  // mutation the client usually stops soon, and a long clean tail only costs time).
  const len = Math.min(s.bytes.length, rng.chance(0.5) ? rng.range(64, 64 * 1024) : rng.range(64, 1 << 20));
  let bytes = s.bytes.subarray(0, len);
  const n = rng.pick([1, 1, 1, 2, 3, 5]);
  for (let i = 0; i < n; i++) {
    const r = rng.int(10);
    const rects = s.rects.filter((o) => o + 12 <= bytes.length);
    if (r < 3 && rects.length > 0) {
      // A length or size field of a rectangle set to a huge (or just wrong) value.
      const at = rng.pick(rects);
      const out = bytes.slice();
      const v = new DataView(out.buffer);
      const field = rng.int(5);
      if (field === 0) v.setUint16(at + 4, rng.pick([...HUGE16, s.width + 1, 0]));
      else if (field === 1) v.setUint16(at + 6, rng.pick([...HUGE16, s.height + 1, 0]));
      else if (field === 2 && at + 16 <= out.length) v.setUint32(at + 12, rng.pick(HUGE32));
      else if (field === 3 && at + 16 <= out.length) { out[at + 13] = 0xff; out[at + 14] = 0xff; out[at + 15] = 0xff; }
      else v.setInt32(at + 8, rng.pick(CLIENT_ENCODINGS));
      bytes = out;
    } else {
      const donor = corpus.streams.length > 1 && rng.chance(0.3) ? rng.pick(corpus.streams).bytes : undefined;
      bytes = mutate(rng, bytes, donor);
    }
  }
  return encodeChunks(rechunk(rng, bytes, s), false);
}

async function executeClient(input: Uint8Array, deadline: number): Promise<Outcome> {
  const { flags, chunks } = decodeReplayInput(input, false);
  // Touch each frame as the recorder would: its size must match its pixels.
  const out = await replayChunks(chunks, checkFrame, { password: (flags & 1) !== 0, deadline });
  return replayVerdict(out, chunks.length, deadline, 'client');
}

/* ------------------------------------------------------------------------------------------------ */
/* Payload encoders for the decoders target (valid-ish data, then mutated)                           */

/** Per-input zlib stream state: whether each stream has had its header yet. */
type StreamState = Map<string, boolean>;

function zchunk(data: Uint8Array, state: StreamState, name: string): Uint8Array {
  const started = state.get(name) === true;
  state.set(name, true);
  const opts = { finishFlush: zlib.constants.Z_SYNC_FLUSH, level: 6 };
  return new Uint8Array(started ? zlib.deflateRawSync(data, opts) : zlib.deflateSync(data, opts));
}

function compactLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  if (n < 0x4000) return Uint8Array.of((n & 0x7f) | 0x80, n >> 7);
  return Uint8Array.of((n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, (n >> 14) & 0xff);
}

function u32be(n: number): Uint8Array {
  return new ByteWriter(4).u32(n >>> 0).finish();
}

/** Set while making a big payload: pixel data is then mostly zeros (fast to make, compresses to little). */
let bigMode = false;

/** `count` pixels of `size` bytes drawn from a few colours (so palettes and runs happen). */
function pixels(rng: Rng, count: number, size: number): Uint8Array {
  if (bigMode && count > 4096) {
    const out = new Uint8Array(count * size);
    for (let k = 0; k < 64; k++) out[rng.int(out.length)] = rng.int(256);
    return out;
  }
  const colours = Array.from({ length: rng.range(1, 6) }, () => rng.bytes(size));
  const out = new Uint8Array(count * size);
  for (let i = 0; i < count; i++) out.set(rng.pick(colours), i * size);
  return out;
}

function rleTiles(rng: Rng, w: number, h: number, cs: number, tile: number, trle: boolean): Uint8Array {
  const parts: Uint8Array[] = [];
  let havePalette = 0;
  for (let ty = 0; ty < h; ty += tile) {
    for (let tx = 0; tx < w; tx += tile) {
      const tw = Math.min(tile, w - tx);
      const th = Math.min(tile, h - ty);
      const n = tw * th;
      const kind = bigMode ? rng.pick([1, 1, 2, 6]) : rng.int(trle ? 7 : 5);
      if (kind === 0) { parts.push(Uint8Array.of(0), pixels(rng, n, cs)); continue; }
      if (kind === 1) { parts.push(Uint8Array.of(1), rng.bytes(cs)); continue; }
      if (kind === 2) { // plain RLE
        parts.push(Uint8Array.of(128));
        for (let left = n; left > 0;) {
          const run = Math.min(left, bigMode ? left : rng.range(1, 300));
          parts.push(rng.bytes(cs), runBytes(run));
          left -= run;
        }
        continue;
      }
      const size = kind === 3 || kind >= 5 ? rng.range(2, 16) : rng.range(2, 127);
      const reuse = trle && kind >= 5 && havePalette > 0;
      const psize = reuse ? havePalette : size;
      if (kind === 3 || kind === 5) {
        const bits = psize <= 2 ? 1 : psize <= 4 ? 2 : 4;
        const rowBytes = (tw * bits + 7) >> 3;
        const rows = new Uint8Array(rowBytes * th);
        for (let y = 0; y < th; y++) {
          for (let x = 0; x < tw; x++) {
            const bitPos = x * bits;
            const idx = rng.int(psize);
            const byteAt = y * rowBytes + (bitPos >> 3);
            rows[byteAt] = (rows[byteAt] ?? 0) | (idx << (8 - bits - (bitPos & 7)));
          }
        }
        parts.push(Uint8Array.of(reuse ? 127 : psize));
        if (!reuse) parts.push(pixels(rng, psize, cs));
        parts.push(rows);
      } else {
        parts.push(Uint8Array.of(reuse ? 129 : 128 + psize));
        if (!reuse) parts.push(pixels(rng, psize, cs));
        for (let left = n; left > 0;) {
          const idx = rng.int(psize);
          const run = Math.min(left, rng.range(1, 200));
          parts.push(run === 1 ? Uint8Array.of(idx) : concat([Uint8Array.of(idx | 0x80), runBytes(run)]));
          left -= run;
        }
      }
      if (!reuse) havePalette = psize;
    }
  }
  return concat(parts);
}

/** RLE run length `run` (≥ 2 for palette RLE's long form; ≥ 1 for plain RLE): 255s then the rest. */
function runBytes(run: number): Uint8Array {
  const out: number[] = [];
  let left = run - 1;
  while (left >= 255) { out.push(255); left -= 255; }
  out.push(left);
  return Uint8Array.from(out);
}

function hextile(rng: Rng, w: number, h: number, bpp: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let first = true;
  for (let ty = 0; ty < h; ty += 16) {
    for (let tx = 0; tx < w; tx += 16) {
      const tw = Math.min(16, w - tx);
      const th = Math.min(16, h - ty);
      let mask = rng.int(32);
      if (first || rng.chance(0.3)) mask |= 2;
      first = false;
      if (mask & 1) { parts.push(Uint8Array.of(1), pixels(rng, tw * th, bpp)); first = true; continue; }
      if ((mask & 8) && !(mask & 16)) mask |= 4;
      parts.push(Uint8Array.of(mask));
      if (mask & 2) parts.push(rng.bytes(bpp));
      if (mask & 4) parts.push(rng.bytes(bpp));
      if (mask & 8) {
        const count = rng.int(12);
        parts.push(Uint8Array.of(count));
        for (let i = 0; i < count; i++) {
          if (mask & 16) parts.push(rng.bytes(bpp));
          const sx = rng.int(tw);
          const sy = rng.int(th);
          parts.push(Uint8Array.of((sx << 4) | sy, ((rng.range(1, tw - sx) - 1) << 4) | (rng.range(1, th - sy) - 1)));
        }
      }
      if (mask & 16) first = true;
    }
  }
  return concat(parts);
}

function rre(rng: Rng, w: number, h: number, bpp: number, coord: 1 | 2): Uint8Array {
  const count = w * h === 0 ? 0 : rng.int(Math.min(20, w * h) + 1);
  const parts: Uint8Array[] = [u32be(count), rng.bytes(bpp)];
  for (let i = 0; i < count; i++) {
    const x = rng.int(w);
    const y = rng.int(h);
    const vals = [x, y, rng.range(1, w - x), rng.range(1, h - y)];
    parts.push(rng.bytes(bpp));
    const wr = new ByteWriter(4 * coord);
    for (const v of vals) if (coord === 2) wr.u16(v); else wr.u8(Math.min(255, v));
    parts.push(wr.finish());
  }
  return concat(parts);
}

function image(rng: Rng, kind: 'jpeg' | 'png', w: number, h: number): Uint8Array {
  const exact = SAMPLES.find((i) => i.kind === kind && i.width === w && i.height === h);
  if (exact !== undefined && rng.chance(0.8)) return exact.data;
  const any = SAMPLES.filter((i) => i.kind === kind).map((i) => i.data);
  return any.length > 0 && rng.chance(0.7) ? rng.pick(any) : rng.bytes(rng.range(1, 200));
}

function tight(rng: Rng, w: number, h: number, f: PixelFormat, png: boolean, streams: StreamState): Uint8Array {
  const tpx = isTight24(f) ? 3 : f.bitsPerPixel >> 3;
  const resets = rng.chance(0.2) ? rng.int(16) : 0;
  for (let i = 0; i < 4; i++) if (resets & (1 << i)) streams.delete(`tight${i}`);
  // Big inputs stay small on the wire: fill or zlib-compressed basic data only.
  const mode = bigMode ? rng.pick([0, 2]) : rng.int(png ? 4 : 5);
  if (mode === 0) return concat([Uint8Array.of(0x80 | resets), rng.bytes(tpx)]);
  if (mode === 1 || (png && mode === 3)) {
    const kind = mode === 1 ? 'jpeg' : 'png';
    const data = image(rng, kind, w, h);
    return concat([Uint8Array.of((mode === 1 ? 0x90 : 0xa0) | resets), compactLength(data.length), data]);
  }
  const id = rng.int(4);
  const noZlib = !png && mode === 4;
  const filterKind = rng.int(f.trueColour && f.bitsPerPixel !== 8 ? 3 : 2);
  const explicit = filterKind !== 0 || rng.chance(0.3);
  let head: Uint8Array;
  let data: Uint8Array;
  if (filterKind === 1) {
    const n = rng.range(2, 16);
    const pal = pixels(rng, n, tpx);
    let idx: Uint8Array;
    if (n <= 2) {
      idx = bigMode ? new Uint8Array(((w + 7) >> 3) * h) : rng.bytes(((w + 7) >> 3) * h);
      if (n === 1) idx.fill(0);
    } else {
      idx = new Uint8Array(w * h);
      if (!bigMode) for (let i = 0; i < idx.length; i++) idx[i] = rng.int(n);
    }
    head = concat([Uint8Array.of(1, n - 1), pal]);
    data = idx;
  } else {
    head = explicit ? Uint8Array.of(filterKind) : new Uint8Array(0);
    data = pixels(rng, w * h, tpx);
  }
  const ctl = noZlib ? (explicit ? 0xe0 : 0xa0) : ((explicit ? 4 : 0) | id) << 4;
  if (noZlib) return concat([Uint8Array.of(ctl | resets), head, data]);
  if (data.length < 12) return concat([Uint8Array.of(ctl | resets), head, data]);
  const z = zchunk(data, streams, `tight${id}`);
  return concat([Uint8Array.of(ctl | resets), head, compactLength(z.length), z]);
}

/** A structurally valid payload for `rect` in format `f` (streams: which zlib streams have started). */
function makePayload(rng: Rng, rect: RectHeader, f: PixelFormat, streams: StreamState, big = false): Uint8Array {
  bigMode = big;
  const w = big ? rect.width : Math.min(rect.width, 512);
  const h = big ? rect.height : Math.min(rect.height, 512);
  const bpp = f.bitsPerPixel >> 3;
  const cpx = zrleDroppedByte(f) === null ? bpp : 3;
  switch (rect.encoding) {
    case 0: return pixels(rng, w * h, bpp);
    case 1: return new ByteWriter(4).u16(rng.int(rect.x + rect.width + 8)).u16(rng.int(rect.y + rect.height + 8)).finish();
    case 2: return rre(rng, w, h, bpp, 2);
    case 4: return rre(rng, w, h, bpp, 1);
    case 5: return hextile(rng, w, h, bpp);
    case 6: {
      const z = zchunk(pixels(rng, w * h, bpp), streams, 'zlib');
      return concat([u32be(z.length), z]);
    }
    case 7: return tight(rng, w, h, f, false, streams);
    case -260: return tight(rng, w, h, f, true, streams);
    case 15: return rleTiles(rng, w, h, cpx, 16, true);
    case 16: {
      const z = zchunk(rleTiles(rng, w, h, cpx, 64, false), streams, 'zrle');
      return concat([u32be(z.length), z]);
    }
    case -239: return concat([pixels(rng, w * h, bpp), rng.bytes(((w + 7) >> 3) * h)]);
    case -240: return concat([rng.bytes(6), rng.bytes(((w + 7) >> 3) * h * 2)]);
    case -314: {
      const sub = rng.pick([0, 2, 4, 5, 6, 7, 15, 16, -260, rng.pick([1, 3, -239, 99])]);
      return concat([new ByteWriter(4).s32(sub).finish(), makePayload(rng, { ...rect, encoding: sub }, RGBA_CURSOR_FORMAT, streams)]);
    }
    default: return rng.bytes(rng.int(64));
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* Target: decoders                                                                                  */

const FORMATS: PixelFormat[] = [
  RGBX_FORMAT,
  { ...RGBX_FORMAT, redShift: 16, blueShift: 0 },
  { ...RGBX_FORMAT, bigEndian: true },
  { ...RGBX_FORMAT, redShift: 24, greenShift: 16, blueShift: 8, depth: 24 },
  { ...RGBX_FORMAT, redShift: 24, greenShift: 16, blueShift: 8, depth: 24, bigEndian: true },
  { ...RGBX_FORMAT, depth: 32 },
  { ...RGBX_FORMAT, redMax: 1023, greenMax: 1023, blueMax: 1023, redShift: 20, greenShift: 10, blueShift: 0, depth: 30 },
  { bitsPerPixel: 16, depth: 16, bigEndian: false, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 },
  { bitsPerPixel: 16, depth: 15, bigEndian: true, trueColour: true, redMax: 31, greenMax: 31, blueMax: 31, redShift: 10, greenShift: 5, blueShift: 0 },
  { bitsPerPixel: 8, depth: 8, bigEndian: false, trueColour: true, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 },
  { bitsPerPixel: 8, depth: 8, bigEndian: false, trueColour: false, redMax: 0, greenMax: 0, blueMax: 0, redShift: 0, greenShift: 0, blueShift: 0 },
  { bitsPerPixel: 16, depth: 16, bigEndian: false, trueColour: false, redMax: 0, greenMax: 0, blueMax: 0, redShift: 0, greenShift: 0, blueShift: 0 },
  RGBA_CURSOR_FORMAT,
];

/** A pixel format: mostly the list above, sometimes random (valid or not). */
function rngFormat(rng: Rng): PixelFormat {
  if (rng.chance(0.8)) return rng.pick(FORMATS);
  const bpp = rng.pick([8, 16, 32] as const);
  const max = (): number => rng.pick([1, 3, 7, 15, 31, 63, 255, 1023, 65535, rng.range(1, 300)]);
  return {
    bitsPerPixel: bpp, depth: rng.range(1, 32), bigEndian: rng.chance(0.5), trueColour: rng.chance(0.85),
    redMax: max(), greenMax: max(), blueMax: max(), redShift: rng.int(bpp), greenShift: rng.int(bpp), blueShift: rng.int(bpp),
  };
}

const DECODER_ENCODINGS = [...DECODERS.keys()];

function randomRect(rng: Rng, sw: number, sh: number, encoding: number): RectHeader {
  const r = rng.float();
  if (r < 0.75) {
    const x = rng.int(sw);
    const y = rng.int(sh);
    const maxW = sw - x;
    const maxH = sh - y;
    const small = rng.chance(0.7);
    return { x, y, width: small ? rng.range(0, Math.min(maxW, 40)) : rng.range(0, maxW), height: small ? rng.range(0, Math.min(maxH, 40)) : rng.range(0, maxH), encoding };
  }
  if (r < 0.9) {
    // Just outside, or overflowing by one.
    return { x: rng.range(0, sw), y: rng.range(0, sh), width: rng.range(1, sw + 2), height: rng.range(1, sh + 2), encoding };
  }
  return { x: rng.pick([0, rng.int(0x10000)]), y: rng.pick([0, rng.int(0x10000)]), width: rng.pick([0, 0xffff, 4096, 513]), height: rng.pick([0, 0xffff, 4096, 513]), encoding };
}

function rectHeaderBytes(r: RectHeader): Uint8Array {
  return new ByteWriter(12).u16(r.x & 0xffff).u16(r.y & 0xffff).u16(r.width & 0xffff).u16(r.height & 0xffff).s32(r.encoding).finish();
}

/**
 * Serialisation of a decoders input: PIXEL_FORMAT (16), U16 surface width, U16 height, U8 rectangle count,
 * then per rectangle: the 12-byte header, U32 payload length, payload, U32 prefix length (the part first
 * offered through a streaming reader).
 */
function generateDecoders(rng: Rng): Uint8Array {
  const f = rngFormat(rng);
  // Big: a large surface and one rectangle covering it, in a zlib-based encoding whose (mostly zero) data
  // compresses to little — where allocations scale with the rectangle, not with the input.
  const big = rng.chance(0.03);
  // Extremes of the surface size stay thin: an 8192×8192 surface alone is 256 MiB.
  const [sw, sh] = big ? [rng.range(256, 4096), rng.range(256, 4096)]
    : rng.chance(0.95) ? [rng.range(1, 300), rng.range(1, 200)] : rng.pick<[number, number]>([[0, 5], [5, 0], [8192, 2], [2, 8192], [8193, 1], [1, 1]]);
  const n = big ? 1 : rng.range(1, 4);
  const streams: StreamState = new Map();
  const parts: Uint8Array[] = [writePixelFormat(f), new ByteWriter(5).u16(sw).u16(sh).u8(n).finish()];
  const encoding = big ? rng.pick([6, 7, 16, -260, 15]) : rng.pick(DECODER_ENCODINGS);
  for (let i = 0; i < n; i++) {
    const enc = big || rng.chance(0.7) ? encoding : rng.pick(DECODER_ENCODINGS);
    const rect = big ? { x: 0, y: 0, width: Math.min(sw, enc === 7 || enc === -260 ? 2048 : sw), height: sh, encoding: enc }
      : randomRect(rng, Math.max(1, sw), Math.max(1, sh), enc);
    let payload = makePayload(rng, rect, f, streams, big);
    if (rng.chance(0.5)) payload = mutateTimes(rng, payload, rng.range(1, 4));
    let head = rectHeaderBytes(rect);
    if (rng.chance(0.05)) head = mutate(rng, head).subarray(0, 12);
    if (head.length < 12) head = concat([head, new Uint8Array(12 - head.length)]);
    parts.push(head, u32be(payload.length), payload, u32be(rng.int(payload.length + 1)));
  }
  return concat(parts);
}

interface DecodersCase {
  format: PixelFormat;
  width: number;
  height: number;
  rects: { rect: RectHeader; payload: Uint8Array; prefix: number }[];
}

function parseDecodersInput(b: Uint8Array): DecodersCase {
  const r = new ByteReader(b, 0, 'fuzz input');
  const fb = r.bytesView(16);
  const fv = new DataView(fb.buffer, fb.byteOffset, 16);
  const format: PixelFormat = {
    bitsPerPixel: fv.getUint8(0) as 8 | 16 | 32, depth: fv.getUint8(1), bigEndian: fv.getUint8(2) !== 0, trueColour: fv.getUint8(3) !== 0,
    redMax: fv.getUint16(4), greenMax: fv.getUint16(6), blueMax: fv.getUint16(8), redShift: fv.getUint8(10), greenShift: fv.getUint8(11), blueShift: fv.getUint8(12),
  };
  const width = r.u16();
  const height = r.u16();
  const n = r.u8();
  const rects: DecodersCase['rects'] = [];
  for (let i = 0; i < n; i++) {
    const rect: RectHeader = { x: r.u16(), y: r.u16(), width: r.u16(), height: r.u16(), encoding: r.s32() };
    const payload = r.bytesView(r.u32());
    rects.push({ rect, payload, prefix: r.u32() });
  }
  return { format, width, height, rects };
}

/** A colour map with every entry set (deterministically), for colour-mapped formats. */
function fuzzColourMap(bpp: number): ColourMap {
  const m = new ColourMap(bpp === 16 ? 65536 : 256);
  const v: number[] = [];
  for (let i = 0; i < 256; i++) v.push((i * 0x3b1) & 0xffff, (i * 0x1d7) & 0xffff, (i * 0x95) & 0xffff);
  m.set(0, v);
  return m;
}

/** Runs one decoders case; `streamingFirst` offers every rectangle its prefix through a streaming reader first. */
async function runDecodersCase(c: DecodersCase, streamingFirst: boolean): Promise<{ error: unknown; surface: Surface | null; ctx: RfbDecodeContext | null }> {
  let surface: Surface | null = null;
  let ctx: RfbDecodeContext | null = null;
  try {
    surface = new Surface(c.width, c.height);
    ctx = createDecodeContext(surface, c.format, { colourMap: fuzzColourMap(c.format.bitsPerPixel) });
    for (const { rect, payload, prefix } of c.rects) {
      const dec = DECODERS.get(rect.encoding);
      if (dec === undefined) continue;
      if (streamingFirst && prefix < payload.length) {
        const sr = new ByteReader(payload.subarray(0, prefix), 0, 'fuzz prefix', true);
        try {
          const p = dec.decode(sr, rect, ctx);
          if (p instanceof Promise) await p;
          // The prefix held the whole rectangle: it counts as decoded (the rest is trailing bytes).
          continue;
        } catch (err) {
          if (!(err instanceof NeedMoreData)) throw err;
        }
      }
      const r = new ByteReader(payload, 0, 'fuzz rectangle');
      const p = dec.decode(r, rect, ctx);
      if (p instanceof Promise) await p;
    }
    return { error: null, surface, ctx };
  } catch (err) {
    return { error: err, surface, ctx };
  }
}

function sameCursor(a: RfbDecodeContext | null, b: RfbDecodeContext | null): boolean {
  const ca = a?.cursor;
  const cb = b?.cursor;
  if (ca === undefined || ca === null || cb === undefined || cb === null) return ca === cb;
  return ca.width === cb.width && ca.height === cb.height && ca.hotX === cb.hotX && ca.hotY === cb.hotY && Buffer.from(ca.rgba).equals(Buffer.from(cb.rgba));
}

async function executeDecoders(input: Uint8Array): Promise<Outcome> {
  const c = parseDecodersInput(input);
  const plain = await runDecodersCase(c, false);
  const verdict = classify(plain.error, `${c.rects.length} rectangles`);
  if (verdict.status === 'failure') return verdict;
  if (!c.rects.some((r) => r.prefix < r.payload.length)) return verdict;
  // The same rectangles again, each first offered a prefix of its bytes through a streaming reader.
  const retried = await runDecodersCase(c, true);
  const again = classify(retried.error, '');
  if (again.status === 'failure') return { ...again, error: `after a streaming prefix: ${again.error}` };
  const codeA = verdict.status === 'rejected' ? verdict.code : null;
  const codeB = again.status === 'rejected' ? again.code : null;
  if (codeA !== codeB) {
    return { status: 'failure', kind: 'retry-mismatch', error: `decoding after a streaming prefix ended with ${codeB ?? 'success'}, directly with ${codeA ?? 'success'}` };
  }
  if (codeA === null) {
    const same = plain.surface !== null && retried.surface !== null && Buffer.from(plain.surface.rgba).equals(Buffer.from(retried.surface.rgba));
    if (!same) return { status: 'failure', kind: 'retry-mismatch', error: 'decoding after a streaming prefix drew different pixels' };
    if (!sameCursor(plain.ctx, retried.ctx)) return { status: 'failure', kind: 'retry-mismatch', error: 'decoding after a streaming prefix gave a different cursor' };
  }
  return verdict;
}

/* ------------------------------------------------------------------------------------------------ */
/* Target: capture                                                                                   */

function captureHeaderBytes(rng: Rng): Uint8Array {
  const good = { format: 'deskcap', version: 1, protocol: 'vnc', target: 'vnc://127.0.0.1:5900', start: '2026-01-01T00:00:00.000Z', deskrecVersion: '0.1.0', credentials: { password: false, username: false } };
  const json = rng.chance(0.7) ? JSON.stringify(good) : rng.pick(['null', '[]', '1', '"deskcap"', '{', '{"format":"deskcap","protocol":7}', '{"format":"deskcap","protocol":"vnc"}', JSON.stringify({ ...good, credentials: null })]);
  const j = new TextEncoder().encode(json);
  return concat([MAGIC, new ByteWriter(6).u16(1).u32(j.length).finish(), j]);
}

function recordBytes(rng: Rng, t_us: number, stream: number, kind: number, data: Uint8Array): Uint8Array {
  const len = rng.chance(0.97) ? data.length : rng.pick([data.length + 1, 0xffffffff, Math.max(0, data.length - 1)]);
  return new ByteWriter(13 + data.length).u16(Math.floor(t_us / 2 ** 32) & 0xffff).u32(t_us).u16(stream).u8(kind).u32(len).bytes(data).finish();
}

function blockBytes(rng: Rng, raw: Uint8Array, count: number): Uint8Array {
  const z = new Uint8Array(zlib.deflateRawSync(raw));
  const h = new ByteWriter(20).u32(BLOCK_MARK)
    .u32(rng.chance(0.95) ? raw.length : rng.pick([raw.length + 1, 0xffffffff, 0]))
    .u32(z.length)
    .u32(rng.chance(0.97) ? zlib.crc32(z) : rng.u32())
    .u32(rng.chance(0.9) ? count : rng.pick([count + 1, Math.max(0, count - 1), 0xffffffff]))
    .finish();
  return concat([h, z]);
}

function generateCapture(rng: Rng, corpus: Corpus): Uint8Array {
  if (corpus.captures.length > 0 && rng.chance(0.4)) {
    const base = rng.pick(corpus.captures).bytes;
    // Mostly near the front (header, first blocks), where fewer mutations just fail a checksum.
    const cut = rng.chance(0.5) ? base.subarray(0, Math.min(base.length, rng.range(14, 4096))) : base;
    return mutateTimes(rng, cut, rng.range(1, 4));
  }
  // Re-blocked records with valid checksums (mostly), so the record parser itself is reached.
  const parts: Uint8Array[] = [captureHeaderBytes(rng)];
  const blocks = rng.range(0, 3);
  let t = 0;
  for (let b = 0; b < blocks; b++) {
    const recs: Uint8Array[] = [];
    const n = rng.range(0, 6);
    for (let i = 0; i < n; i++) {
      t += rng.int(5000);
      const kind = rng.pick([KIND.IN, KIND.OUT, KIND.OPEN, KIND.CLOSE, KIND.END, rng.int(256)]);
      let data: Uint8Array;
      if (kind === KIND.END) {
        const end = rng.pick(['{"reason":"signal","t_ms":12,"frames":3}', '{', 'null', '[]', '"x"', '{"reason":1}', '']);
        data = new TextEncoder().encode(end);
      } else {
        data = rng.bytes(rng.int(40));
      }
      recs.push(recordBytes(rng, rng.chance(0.95) ? t : rng.pick([2 ** 48 - 1, 0]), rng.chance(0.95) ? 0 : rng.int(0x10000), kind, data));
    }
    let raw = concat(recs);
    if (rng.chance(0.2)) raw = mutate(rng, raw);
    parts.push(blockBytes(rng, raw, n));
  }
  let file = concat(parts);
  if (rng.chance(0.3)) file = mutate(rng, file);
  return file;
}

function executeCapture(input: Uint8Array): Outcome {
  try {
    const cap = parseCapture(input, 'fuzz.deskcap');
    // What the reader promises its callers (replay, inspect): records with integer times and byte data.
    for (const rec of cap.records) {
      if (!Number.isSafeInteger(rec.t_us) || !(rec.data instanceof Uint8Array)) throw new Error('malformed record returned');
    }
    if (cap.end !== null && (typeof cap.end !== 'object' || typeof cap.end.frames !== 'number')) throw new Error(`END record parsed to ${JSON.stringify(cap.end)}`);
    if (typeof cap.header.credentials !== 'object' || cap.header.credentials === null) throw new Error('header without credentials returned');
    return { status: 'decoded', detail: `${cap.records.length} records${cap.truncated === null ? '' : ', truncated'}` };
  } catch (err) {
    return classify(err, '');
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* Target: pixel-format                                                                              */

function generatePixelFormat(rng: Rng): Uint8Array {
  const f = rng.chance(0.5) ? writePixelFormat(rngFormat(rng)) : rng.bytes(16);
  if (rng.chance(0.3)) f[0] = rng.pick([0, 1, 8, 15, 16, 24, 32, 64, 255]);
  if (rng.chance(0.2)) f[rng.range(10, 12)] = rng.pick([31, 32, 33, 255]);
  return concat([f, rng.bytes(rng.int(256))]);
}

function executePixelFormat(input: Uint8Array): Outcome {
  try {
    const r = new ByteReader(input, 0, 'PIXEL_FORMAT');
    const f = parsePixelFormat(r);
    const again = parsePixelFormat(new ByteReader(writePixelFormat(f), 0, 'PIXEL_FORMAT'));
    if (JSON.stringify(again) !== JSON.stringify(f)) throw new Error(`write/parse round trip changed ${JSON.stringify(f)} to ${JSON.stringify(again)}`);
    const pd = createPixelDecoder(f, f.trueColour ? undefined : fuzzColourMap(f.bitsPerPixel));
    const src = input.subarray(16);
    const bpp = pd.bytesPerPixel;
    const count = Math.floor(src.length / bpp);
    const out = new Uint8Array(count * 4 + 4);
    pd.toRgba(src, 0, count, out, 0);
    for (let i = 0; i < count; i++) pd.pixel(src, i * bpp, out, i * 4);
    for (const cp of [zrleCPixel(pd), tightPixel(pd)]) {
      const n = Math.floor(src.length / cp.size);
      const o = new Uint8Array(n * 4 + 4);
      cp.toRgba(src, 0, n, o, 0);
      if (n > 0) cp.pixel(src, 0, o, 0);
    }
    return { status: 'decoded', detail: `${bpp * 8}bpp` };
  } catch (err) {
    return classify(err, '');
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* The group                                                                                         */

/** The RFB targets as the engine runs them (all within DEFAULT_LIMITS). */
export const RFB = targetGroup('rfb', {
  client: { generate: generateClient, execute: executeClient },
  decoders: { generate: generateDecoders, execute: executeDecoders },
  capture: { generate: generateCapture, execute: executeCapture },
  'pixel-format': { generate: generatePixelFormat, execute: executePixelFormat },
}, (root) => loadCorpus(root), prepareSamples);

/** One RFB target's name. */
export type TargetName = (typeof RFB.targets)[number];
