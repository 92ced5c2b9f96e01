/**
 * The SPICE fuzz targets: seeded hostile inputs for every SPICE image decoder and message parser, on the
 * engine of engine.ts — every input either decodes or fails with a DeskrecError; another exception, an
 * input over the time bound, memory growth past the cap, or a broken invariant (below) is a failure to fix.
 *
 * Targets (each input is a byte string, its target's serialisation, so any failure can be saved and
 * replayed):
 * - `spice-quic`, `spice-lz`, `spice-lz4`, `spice-bitmap`, `spice-jpeg`: one image decoder called directly
 *   on a payload — real payloads taken from the SPICE capture fixtures' DRAW_COPYs and from
 *   test/protocol/spice/images/fixtures/, or made by the encoders of test/protocol/spice/images/lz-coder.ts
 *   and small generators here — mostly mutated, with header
 *   fields (size, type, stride) set to odd values. The image must have width × height × 4 bytes, and A = 255
 *   throughout when it says it has no alpha. JPEG goes through sharp and is slow: its count is kept low.
 * - `spice-glz`: a sequence of GLZ_RGB / ZLIB_GLZ_RGB images through one GlzWindow (so references into
 *   earlier images are followed): runs of the fixtures' real GLZ images, mutated, plus made-up images whose
 *   references name earlier ids, pixel offsets and lengths at and past the edges.
 * - `spice-wire`: every display-message parser of display/wire.ts on a body (real ones from the fixtures,
 *   made-up ones, mutated); every parsed view must lie inside the body.
 * - `spice-canvas`: one canvas op of display/canvas.ts on a small surface with random geometry (boxes,
 *   clips, source areas at and past the edges and at ±2^31), images of every alpha kind, masks, brushes,
 *   ROPs, scaling and composite transforms. A surface without alpha must keep A = 255, every damaged
 *   rectangle must lie in the surface, and no pixel outside the damage may change.
 * - `spice-display`: a DisplayState (images.ts, wire.ts, canvas.ts, the caches, the GLZ window, surfaces,
 *   streams) fed a message sequence: a prefix of a fixture's display channel, mutated, or a made-up session
 *   on a small primary surface with draws of every kind, cache and palette traffic, off-screen surfaces,
 *   MJPEG streams and invalidations. Frames must be consistent, and no pixel outside a frame's damage may
 *   change between frames.
 * - `spice-cursor`: a CursorChannel fed INIT/SET (every cursor type, right and wrong data sizes, cache
 *   flags), MOVE, HIDE, TRAIL, INVAL, RESET and unknown messages; shapes must be width × height × 4 bytes.
 * - `spice-link`: one SpiceChannel (link.ts, channel.ts) with the main channel (main-channel.ts) behind it,
 *   over a ReplayTransport fed a fixture's main stream mutated, or a made-up link reply (the fixtures' real
 *   RSA key), link result and messages with the mini or the full header; cut at random.
 * - `spice-session`: a whole SpiceSession over a SPICE fixture's streams (test/fuzz/engine/replay.ts), mutated —
 *   mostly the display stream: bit flips, truncation, splices from another fixture, message sizes and types
 *   set to odd values — and re-cut at the recorded boundaries or at random.
 */
import * as zlib from 'node:zlib';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Rect } from '../../../src/capture/rect';
import { parseCapture } from '../../../src/capture/deskcap/reader';
import { DeskrecError } from '../../../src/errors';
import { CHANNEL, MSG_DISPLAY, SURFACE_FMT } from '../../../src/protocol/spice/constants';
import { CursorChannel, cursorDataSize, CURSOR_FLAG, MSG_CURSOR } from '../../../src/protocol/spice/cursor-channel';
import { SpiceChannel } from '../../../src/protocol/spice/channel';
import { MainChannel } from '../../../src/protocol/spice/main-channel';
import { DisplayState, glzWindowPixels } from '../../../src/protocol/spice/display/display-channel';
import {
  copyBits, drawAlphaBlend, drawBlackness, drawBlend, drawComposite, drawCopy, drawFill, drawInvers, drawOpaque, drawRop3,
  drawTransparent, drawWhiteness, type CanvasSurface, type ResolvedBrush, type ResolvedMask,
} from '../../../src/protocol/spice/display/canvas';
import {
  COMPOSITE_FLAG, IMAGE_TYPE, readAlphaBlend, readBlackness, readComposite, readCopy, readCopyBits, readDisplayBase, readFill,
  readImage, readInvalList, readInvers, readMonitorsConfig, readOpaque, readRop3, readSurfaceCreate, readTransparent,
  readWhiteness, type Clip, type CompositeOp, type DisplayBase, type ImageRef, type SpiceRect, type Transform,
} from '../../../src/protocol/spice/display/wire';
import {
  decodeBitmap, decodeJpeg, decodeJpegAlpha, decodeLz, decodeLz4, decodeQuic, GlzWindow, type DecodedImage,
} from '../../../src/protocol/spice/images/index';
import { ByteReader } from '../../../src/wire/reader';
import { ByteWriter } from '../../../src/wire/writer';
import { ReplayTransport } from '../../../src/transport/replay';
import { GlzBuilder, glzHeader, Lz4Builder, lz4Payload, LzBuilder, lzHeader } from '../../protocol/spice/images/lz-coder';
import {
  checkFrame, classify, concat, decodeReplayInput, DEFAULT_LIMITS, encodeReplayInput, HUGE16, HUGE32, mutate, mutateTimes, prepareSamples, replayVerdict,
  repoRoot, Rng, SAMPLES, targetGroup, type Limits, type Outcome,
} from './engine';
import { replaySpiceChunks, spiceChunks, type StreamChunk } from './replay';
import { splitSpiceStream, type StreamMessage } from './spice-stream';

/* ------------------------------------------------------------------------------------------------ */
/* Display message bodies (SPICE data channels are little-endian: ByteWriter.le())                  */

/** Bytes placed after a message's fixed part, told their own offset (inner pointers are body offsets). */
type Blob = (at: number) => Uint8Array;

/** A display message body (little-endian): a fixed part with pointer fields, then the pointed-to blobs. */
class Body extends ByteWriter {
  private readonly ptrs: { pos: number; blob: Blob }[] = [];
  constructor() {
    super(64, true);
  }

  /** A pointer field to `blob` (0 for null); `raw` writes that value instead (a wild pointer). */
  ptr(blob: Blob | null, raw?: number): this {
    if (raw !== undefined) return this.u32(raw);
    if (blob === null) return this.u32(0);
    this.ptrs.push({ pos: this.length, blob });
    return this.u32(0);
  }
  rect(r: WireRect): this { return this.s32(r.top).s32(r.left).s32(r.bottom).s32(r.right); }
  override finish(): Uint8Array {
    const fixed = super.finish();
    const v = new DataView(fixed.buffer, fixed.byteOffset, fixed.byteLength);
    const parts: Uint8Array[] = [fixed];
    let at = fixed.length;
    for (const p of this.ptrs) {
      const b = p.blob(at);
      v.setUint32(p.pos, at, true);
      parts.push(b);
      at += b.length;
    }
    return concat(parts);
  }
}

/** A wire rectangle (top, left, bottom, right), which may be inverted on purpose. */
interface WireRect { top: number; left: number; bottom: number; right: number }

const INT32_EXTREMES = [-0x80000000, 0x7fffffff, -1, 0x40000000, -0x40000000, 0x10000, 65535];

function wireRect(rng: Rng, w: number, h: number): WireRect {
  const r = rng.float();
  if (r < 0.7) {
    const left = rng.range(-4, w + 2);
    const top = rng.range(-4, h + 2);
    return { top, left, bottom: top + rng.range(0, Math.max(1, h)), right: left + rng.range(0, Math.max(1, w)) };
  }
  if (r < 0.85) return { top: 0, left: 0, bottom: h, right: w };
  if (r < 0.985) {
    const a = rng.pick(INT32_EXTREMES);
    const b = rng.pick(INT32_EXTREMES);
    return { top: Math.min(a, b), left: rng.pick([0, a, -5]), bottom: Math.max(a, b), right: rng.pick([w, 0x7fffffff, b]) };
  }
  // Inverted (a ProtocolError for the parser).
  return { top: 10, left: 10, bottom: rng.int(10), right: rng.int(12) };
}

function spiceRect(r: WireRect): SpiceRect {
  return { x: r.left, y: r.top, width: Math.max(0, r.right - r.left), height: Math.max(0, r.bottom - r.top) };
}

/* ------------------------------------------------------------------------------------------------ */
/* Corpus                                                                                            */

/** An image payload as a descriptor carries it. */
export interface SeedImage {
  type: number;
  width: number;
  height: number;
  data: Uint8Array;
  glzSize?: number;
  bitmap?: { format: number; flags: number; stride: number; data: Uint8Array };
  palette?: Uint32Array;
}

/** One SPICE fixture, split up for the targets. */
interface SpiceFixture {
  name: string;
  chunks: StreamChunk[];
  password: boolean;
  /** Each stream's bytes and its units. */
  streams: Map<number, { bytes: Uint8Array; ends: number[]; messages: StreamMessage[] }>;
}

/** The seeds of the SPICE targets. */
export interface SpiceCorpus {
  fixtures: SpiceFixture[];
  /** Image payloads by SPICE image type. */
  images: Map<number, SeedImage[]>;
  /** Each fixture's GLZ payloads in order (they refer to each other). */
  glzRuns: Uint8Array[][];
  /** LZ4 payloads with the size they decode to. */
  lz4: { data: Uint8Array; width: number; height: number }[];
  /** The RSA key of a real link reply (DER), for made-up link replies. */
  pubKey: Uint8Array | null;
}

function addImage(c: SpiceCorpus, img: SeedImage): void {
  const list = c.images.get(img.type) ?? [];
  // Enough variety without keeping thousands of near-identical glyph bands.
  if (list.length < 400) list.push(img);
  c.images.set(img.type, list);
}

function seedOf(ref: ImageRef): SeedImage | null {
  if (ref.data === undefined && ref.bitmap === undefined) return null;
  const pal = ref.palette;
  return {
    type: ref.type, width: ref.width, height: ref.height, data: ref.data ?? new Uint8Array(0),
    ...(ref.glzSize === undefined ? {} : { glzSize: ref.glzSize }),
    ...(ref.bitmap === undefined ? {} : { bitmap: ref.bitmap }),
    ...(pal !== undefined && pal !== null && pal.kind === 'inline' ? { palette: pal.ents } : {}),
  };
}

/** Loads the SPICE capture fixtures and the image decoder fixtures. */
export function loadSpiceCorpus(root = repoRoot()): SpiceCorpus {
  const corpus: SpiceCorpus = { fixtures: [], images: new Map(), glzRuns: [], lz4: [], pubKey: null };
  const dir = path.join(root, 'fixtures', 'spice');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.deskcap')).sort() : [];
  for (const f of files) {
    const cap = parseCapture(new Uint8Array(readFileSync(path.join(dir, f))), f);
    const chunks = spiceChunks(cap);
    const streams: SpiceFixture['streams'] = new Map();
    for (const s of new Set(chunks.map((c) => c.stream))) {
      const bytes = concat(chunks.filter((c) => c.stream === s).map((c) => c.data));
      const units = splitSpiceStream(bytes);
      streams.set(s, { bytes, ends: units.ends, messages: units.messages });
      corpus.pubKey ??= units.pubKey;
    }
    corpus.fixtures.push({ name: f.replace(/\.deskcap$/, ''), chunks, password: cap.header.credentials.password, streams });
    const glz: Uint8Array[] = [];
    for (const m of streams.get(1)?.messages ?? []) {
      if (m.type !== MSG_DISPLAY.DRAW_COPY) continue;
      try {
        const src = readCopy(m.body).op.src;
        const seed = src === null ? null : seedOf(src);
        if (seed === null) continue;
        if (seed.type === IMAGE_TYPE.GLZ_RGB) glz.push(seed.data);
        addImage(corpus, seed);
      } catch {
        // A fixture message that does not parse is no seed.
      }
    }
    if (glz.length > 0) corpus.glzRuns.push(glz);
  }
  // The image decoders' own fixtures (spice-common's encoders and test vectors).
  const idir = path.join(root, 'test', 'protocol', 'spice', 'images', 'fixtures');
  const ifiles = existsSync(idir) ? readdirSync(idir).sort() : [];
  for (const f of ifiles) {
    const data = new Uint8Array(readFileSync(path.join(idir, f)));
    if (f.endsWith('.quic')) addImage(corpus, { type: IMAGE_TYPE.QUIC, width: 0, height: 0, data });
    else if (f.endsWith('.lz')) {
      const pal = path.join(idir, f.replace(/\.lz$/, '.pal'));
      const palette = existsSync(pal) ? new Uint32Array(new Uint8Array(readFileSync(pal)).slice().buffer) : undefined;
      addImage(corpus, { type: palette === undefined ? IMAGE_TYPE.LZ_RGB : IMAGE_TYPE.LZ_PLT, width: 0, height: 0, data, ...(palette === undefined ? {} : { palette }) });
    }
  }
  // Sizes from test/protocol/spice/images/lz4.test.ts.
  for (const [name, width, height] of [['lz4-rgb32-stream', 60, 40], ['lz4-rgb24-bottomup', 33, 21], ['lz4-rgb16', 26, 15], ['lz4-rgba', 24, 18]] as const) {
    const file = path.join(idir, `${name}.lz4`);
    if (existsSync(file)) corpus.lz4.push({ data: new Uint8Array(readFileSync(file)), width, height });
  }
  return corpus;
}

/* ------------------------------------------------------------------------------------------------ */
/* Small encoders (valid-ish payloads, then mutated)                                                 */

/**
 * An LZ stream of literal runs only (each unit `unitBytes` bytes), with an occasional back-reference in
 * the spice-common form (`bias`: 1 for 24/32-bit colour, 2 for RGB16, 3 for byte passes).
 */
function lzLiterals(rng: Rng, units: number, unitBytes: number, bias: number): Uint8Array {
  const out = new LzBuilder(bias);
  let done = 0;
  while (done < units) {
    if (done > 0 && rng.chance(0.2)) {
      const len = Math.min(units - done, rng.range(bias, bias + 40));
      if (len >= bias) {
        out.match(len, rng.range(1, done));
        done += len;
        continue;
      }
    }
    const n = Math.min(32, units - done);
    out.litBytes(n, rng.bytes(n * unitBytes));
    done += n;
  }
  return out.bytes;
}

/** An LZ image (header + stream) of `type` (spice-common lz.c). */
function lzImage(rng: Rng, type: number, width: number, height: number, topDown: boolean): Uint8Array {
  const ppb = type === 1 || type === 2 ? 8 : type === 3 || type === 4 ? 2 : type === 5 ? 1 : 0;
  const bpp = type === 6 ? 2 : type === 7 ? 3 : type === 11 ? 1 : 4;
  const stride = ppb !== 0 ? Math.ceil(width / ppb) : width * bpp;
  const head = lzHeader(type, width, height, stride, topDown);
  let body: Uint8Array;
  if (ppb !== 0 || type === 11 || type === 10) body = lzLiterals(rng, ppb !== 0 ? stride * height : width * height, 1, 3);
  else if (type === 6) body = lzLiterals(rng, width * height, 2, 2);
  else body = lzLiterals(rng, width * height, 3, 1);
  if (type === 9) body = concat([body, lzLiterals(rng, width * height, 1, 3)]);
  return concat([head, body]);
}

/**
 * A large LZ RGB32 image of one colour in few bytes: one literal pixel, then back-references of distance
 * 1 whose lengths run through many 255 extension bytes (about 1 byte per 255 pixels): a decompression
 * bomb within the pixel cap.
 */
function lzBomb(width: number, height: number): Uint8Array {
  const out = new LzBuilder(1).lit([[0x20, 0x40, 0x80]]);
  for (let left = width * height - 1; left > 0;) {
    const len = Math.min(left, 255 * 4000);
    out.match(len, 1);
    left -= len;
  }
  return concat([lzHeader(8, width, height, width * 4, true), out.bytes]);
}

/** A made-up GLZ image `id` whose references reach into the images `dists` ids back (of `sizes` pixels). */
function glzImage(rng: Rng, id: number, width: number, height: number, type: number, earlier: { dist: number; pixels: number }[]): Uint8Array {
  const rgb16 = type === 6;
  const bias = rgb16 ? 1 : 0;
  const n = width * height;
  const out = new GlzBuilder(bias);
  // Lengths near the end of the image can fall below the shortest reference: encode the shortest.
  const ref = (len: number, imageDist: number, ofs: number, long: boolean): void => { out.ref(Math.max(len, bias + 1), imageDist, ofs, long); };
  let done = 0;
  while (done < n) {
    const r = rng.float();
    if (r < 0.35 && earlier.length > 0) {
      const e = rng.pick(earlier);
      const len = Math.min(n - done, rng.range(bias + 1, bias + 60));
      // Mostly inside the referenced image, sometimes right at or past its end.
      const ofs = rng.chance(0.9) ? rng.int(Math.max(1, e.pixels - len)) : e.pixels - rng.int(3);
      ref(len, e.dist, Math.max(0, ofs), rng.chance(0.3));
      done += len;
    } else if (r < 0.5 && done > 0) {
      const len = Math.min(n - done, rng.range(bias + 1, bias + 40));
      ref(len, 0, rng.range(1, done), rng.chance(0.2));
      done += len;
    } else {
      const k = Math.min(32, n - done);
      out.litBytes(k, rng.bytes(k * (rgb16 ? 2 : 3)));
      done += k;
    }
  }
  if (type === 9) {
    // The alpha pass (byte units, bias 2).
    let a = 0;
    while (a < n) {
      const k = Math.min(32, n - a);
      out.litBytes(k, rng.bytes(k));
      a += k;
    }
  }
  const stride = rgb16 ? width * 2 : width * 4;
  return concat([glzHeader(type, rng.chance(0.5), width, height, stride, id, rng.chance(0.8) ? earlier.length + 1 : rng.pick([0, 1, 0xffffffff, id + 5])), out.bytes]);
}

/** An LZ4 payload (spice-server lz4-encoder.c): top_down, format, then big-endian-sized blocks of literals and matches. */
function lz4Image(rng: Rng, width: number, height: number, format: number): Uint8Array {
  const bpp = format === 6 ? 2 : format === 7 ? 3 : 4;
  const total = width * height * bpp;
  const topDown = rng.chance(0.5);
  const blocks: Uint8Array[] = [];
  let produced = 0;
  while (produced < total) {
    const blockBytes = Math.min(total - produced, rng.range(1, 4096));
    const block = new Lz4Builder();
    let inBlock = 0;
    while (inBlock < blockBytes) {
      const lit = Math.min(blockBytes - inBlock, rng.range(0, 40));
      const left = blockBytes - inBlock - lit;
      const ml = produced + inBlock + lit > 0 && left >= 4 && rng.chance(0.6) ? Math.min(left, rng.range(4, 80)) : 0;
      if (ml === 0) {
        // The last sequence: literals to the end of the block.
        block.seq(rng.bytes(blockBytes - inBlock));
        break;
      }
      const literals = rng.bytes(lit);
      inBlock += lit;
      block.seq(literals, { offset: rng.range(1, produced + inBlock), len: ml });
      inBlock += ml;
    }
    blocks.push(block.bytes);
    produced += blockBytes;
  }
  return lz4Payload(topDown, format, blocks);
}

/** A JPEG sample of engine.ts (random bytes until prepareSamples ran). */
function jpegSample(rng: Rng): { data: Uint8Array; width: number; height: number } {
  const jpegs = SAMPLES.filter((i) => i.kind === 'jpeg');
  return jpegs.length > 0 ? rng.pick(jpegs) : { data: rng.bytes(rng.range(1, 100)), width: 1, height: 1 };
}

/* ------------------------------------------------------------------------------------------------ */
/* Image decoder targets                                                                             */

/** The image must have the bytes its size says, and an image without alpha must be opaque. */
function checkImage(img: DecodedImage, what: string): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width < 1 || img.height < 1) throw new Error(`${what}: image size ${img.width}x${img.height}`);
  if (img.rgba.length !== img.width * img.height * 4) throw new Error(`${what}: ${img.rgba.length} bytes for ${img.width}x${img.height}`);
  if (img.alpha === 'none') {
    for (let i = 3; i < img.rgba.length; i += 4) if (img.rgba[i] !== 255) throw new Error(`${what}: alpha 'none' but A = ${img.rgba[i] ?? '?'} at pixel ${i >> 2}`);
  }
}

/** Sets one of the u32 fields at `offsets` (in `le` order) to an odd value. */
function tweakField(rng: Rng, b: Uint8Array, offsets: readonly number[], le: boolean): Uint8Array {
  const out = b.slice();
  const at = rng.pick(offsets);
  if (at + 4 > out.length) return out;
  const v = new DataView(out.buffer);
  const old = v.getUint32(at, le);
  v.setUint32(at, rng.pick([...HUGE32, 0, 1, old + 1, Math.max(0, old - 1), old * 2, 8192, 8193, 65536, 46341]) >>> 0, le);
  return out;
}

function mutatePayload(rng: Rng, b: Uint8Array, headerFields: readonly number[], le: boolean): Uint8Array {
  const r = rng.float();
  if (r < 0.15) return b;
  if (r < 0.35 && headerFields.length > 0) return tweakField(rng, b, headerFields, le);
  return mutateTimes(rng, b, rng.pick([1, 1, 2, 3, 5]));
}

function pickImage(rng: Rng, corpus: SpiceCorpus, type: number): SeedImage | null {
  const list = corpus.images.get(type);
  return list === undefined || list.length === 0 ? null : rng.pick(list);
}

function generateQuic(rng: Rng, corpus: SpiceCorpus): Uint8Array {
  const seed = pickImage(rng, corpus, IMAGE_TYPE.QUIC);
  const base = seed?.data ?? rng.bytes(64);
  // QUIC header: u32 LE magic, version, type, width, height.
  return mutatePayload(rng, base, [8, 12, 16], true);
}

function executeQuic(input: Uint8Array): Outcome {
  try {
    checkImage(decodeQuic(input), 'quic');
    return { status: 'decoded', detail: '' };
  } catch (err) {
    return classify(err, '');
  }
}

/** Serialisation of an LZ input: U16 palette entries (LE u32 each), then the LZ stream. */
function generateLz(rng: Rng, corpus: SpiceCorpus): Uint8Array {
  let data: Uint8Array;
  let palette: Uint32Array | undefined;
  const r = rng.float();
  if (r < 0.6) {
    const seed = pickImage(rng, corpus, rng.chance(0.7) ? IMAGE_TYPE.LZ_RGB : IMAGE_TYPE.LZ_PLT) ?? pickImage(rng, corpus, IMAGE_TYPE.LZ_RGB);
    data = seed?.data ?? rng.bytes(40);
    palette = seed?.palette;
  } else {
    const type = rng.range(1, 11);
    data = lzImage(rng, type, rng.range(1, 40), rng.range(1, 24), rng.chance(0.5));
  }
  if (palette === undefined && rng.chance(0.6)) palette = Uint32Array.from({ length: rng.pick([0, 1, 2, 16, 255, 256]) }, () => rng.u32() & 0xffffff);
  data = mutatePayload(rng, data, [8, 12, 16, 20, 24], false);
  const out = ByteWriter.le().u16(palette?.length ?? 0xffff);
  for (const e of palette ?? []) out.u32(e);
  return out.bytes(data).finish();
}

function executeLz(input: Uint8Array): Outcome {
  try {
    const r = new ByteReader(input, 0, 'fuzz input');
    const n = r.u16(true);
    const ents = n === 0xffff ? null : Uint32Array.from({ length: n }, () => r.u32(true));
    const img = decodeLz(r.bytesView(r.remaining), { palette: ents === null ? null : { unique: 1n, ents } });
    checkImage(img, 'lz');
    return { status: 'decoded', detail: '' };
  } catch (err) {
    return classify(err, '');
  }
}

/** Serialisation of an LZ4 input: U32 width, U32 height (LE), then the payload. */
function generateLz4(rng: Rng, corpus: SpiceCorpus): Uint8Array {
  let w: number;
  let h: number;
  let data: Uint8Array;
  if (corpus.lz4.length > 0 && rng.chance(0.4)) {
    const s = rng.pick(corpus.lz4);
    ({ width: w, height: h, data } = s);
  } else {
    w = rng.range(1, 64);
    h = rng.range(1, 40);
    data = lz4Image(rng, w, h, rng.pick([6, 7, 8, 9, 9, 8, rng.int(12)]));
  }
  if (rng.chance(0.1)) w = rng.pick([0, w + 1, 8192, 0xffffffff]);
  if (rng.chance(0.1)) h = rng.pick([0, h - 1, 8192, 65536]);
  return ByteWriter.le().u32(w).u32(h).bytes(mutatePayload(rng, data, [2, 6], false)).finish();
}

function executeLz4(input: Uint8Array): Outcome {
  try {
    const r = new ByteReader(input, 0, 'fuzz input');
    const w = r.u32(true);
    const h = r.u32(true);
    checkImage(decodeLz4(r.bytesView(r.remaining), w, h), 'lz4');
    return { status: 'decoded', detail: '' };
  } catch (err) {
    return classify(err, '');
  }
}

/** Serialisation of a BITMAP input: U8 format, U8 flags, U32 width, height, stride, U16 palette count (0xffff none), entries, data. */
function generateBitmap(rng: Rng, corpus: SpiceCorpus): Uint8Array {
  const seed = rng.chance(0.3) ? pickImage(rng, corpus, IMAGE_TYPE.BITMAP) : null;
  let format: number;
  let flags: number;
  let w: number;
  let h: number;
  let stride: number;
  let data: Uint8Array;
  if (seed?.bitmap !== undefined) {
    ({ format, flags, stride, data } = seed.bitmap);
    w = seed.width;
    h = seed.height;
  } else {
    format = rng.chance(0.95) ? rng.range(1, 10) : rng.pick([0, 11, 255]);
    flags = rng.int(8);
    w = rng.range(1, 70);
    h = rng.range(1, 40);
    const bits = [0, 1, 1, 4, 4, 8, 16, 24, 32, 32, 8][format] ?? 8;
    const row = Math.ceil((w * bits) / 8);
    stride = rng.chance(0.8) ? row + rng.pick([0, 0, 1, 3]) : rng.pick([0, row - 1, 0xffffffff, row * 1000]);
    data = rng.bytes(Math.max(0, Math.min(1 << 16, stride * h + rng.pick([0, 0, -1, 5]))));
  }
  if (rng.chance(0.1)) w = rng.pick([0, 8192, 0x7fffffff, w + 1]);
  if (rng.chance(0.1)) h = rng.pick([0, 8193, h * 2]);
  if (rng.chance(0.3)) data = mutateTimes(rng, data, rng.range(1, 3));
  const pal = rng.chance(0.8) ? Uint32Array.from({ length: rng.pick([0, 1, 2, 3, 16, 256, rng.int(300)]) }, () => rng.u32()) : null;
  const out = ByteWriter.le().u8(format).u8(flags).u32(w).u32(h).u32(stride).u16(pal?.length ?? 0xffff);
  for (const e of pal ?? []) out.u32(e);
  return out.bytes(data).finish();
}

function executeBitmap(input: Uint8Array): Outcome {
  try {
    const r = new ByteReader(input, 0, 'fuzz input');
    const format = r.u8();
    const flags = r.u8();
    const width = r.u32(true);
    const height = r.u32(true);
    const stride = r.u32(true);
    const n = r.u16(true);
    const ents = n === 0xffff ? null : Uint32Array.from({ length: n }, () => r.u32(true));
    const img = decodeBitmap({ format, flags, width, height, stride, data: r.bytesView(r.remaining), palette: ents === null ? null : { unique: 1n, ents } });
    checkImage(img, 'bitmap');
    return { status: 'decoded', detail: '' };
  } catch (err) {
    return classify(err, '');
  }
}

/** Serialisation of a JPEG input: U8 kind (0 JPEG, 1 JPEG_ALPHA), U8 flags, U32 jpeg_size (LE), data. */
function generateJpeg(rng: Rng): Uint8Array {
  const j = jpegSample(rng);
  const alpha = rng.chance(0.5);
  const flags = rng.chance(0.9) ? rng.int(2) : rng.int(256);
  let data = j.data;
  let jpegSize = data.length;
  if (alpha) {
    const topDown = rng.chance(0.8) ? (flags & 1) === 1 : (flags & 1) === 0;
    const w = rng.chance(0.9) ? j.width : j.width + 1;
    data = concat([data, lzImage(rng, rng.chance(0.9) ? 10 : rng.pick([9, 11, 8]), w, j.height, topDown)]);
  }
  if (rng.chance(0.5)) data = mutateTimes(rng, data, rng.range(1, 4));
  if (rng.chance(0.15)) jpegSize = rng.pick([0, 1, jpegSize - 1, jpegSize + 1, data.length, 0xffffffff]);
  return ByteWriter.le().u8(alpha ? 1 : 0).u8(flags).u32(jpegSize).bytes(data).finish();
}

async function executeJpeg(input: Uint8Array): Promise<Outcome> {
  try {
    const r = new ByteReader(input, 0, 'fuzz input');
    const kind = r.u8();
    const flags = r.u8();
    const jpegSize = r.u32(true);
    const data = r.bytesView(r.remaining);
    const img = kind === 1 ? await decodeJpegAlpha(data, jpegSize, flags) : await decodeJpeg(data);
    checkImage(img, 'jpeg');
    return { status: 'decoded', detail: '' };
  } catch (err) {
    return classify(err, '');
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* Target: spice-glz                                                                                 */

/**
 * Serialisation of a GLZ input: U32 window pixels (LE), then images: U8 kind (0 GLZ_RGB, 1 ZLIB_GLZ_RGB,
 * 2 GLZ with a palette), U32 glz_size, U32 length, bytes.
 */
function generateGlz(rng: Rng, corpus: SpiceCorpus): Uint8Array {
  const window = rng.chance(0.85) ? 2 * glzWindowPixels(0) : rng.pick([1, 100, 4096, 1 << 16]);
  const out = ByteWriter.le().u32(window);
  const add = (kind: number, glzSize: number, data: Uint8Array): void => { out.u8(kind).u32(glzSize).u32(data.length).bytes(data); };
  if (rng.chance(0.005)) {
    // Many one-pixel images that all stay in the window (win_head_dist huge), some in descending id order.
    const n = rng.pick([2000, 20000, 40000]);
    const down = rng.chance(0.3);
    for (let i = 0; i < n; i++) add(0, 0, concat([glzHeader(8, true, 1, 1, 4, down ? n - i : i, 0xffffffff), Uint8Array.of(0, 1, 2, 3)]));
    return out.finish();
  }
  if (corpus.glzRuns.length > 0 && rng.chance(0.6)) {
    const run = rng.pick(corpus.glzRuns);
    const start = rng.chance(0.7) ? 0 : rng.int(run.length);
    const count = Math.min(run.length - start, rng.range(1, 24));
    for (let i = 0; i < count; i++) {
      let d = run[start + i] ?? new Uint8Array(0);
      if (rng.chance(0.15)) d = mutatePayload(rng, d, [9, 13, 17, 21, 25, 29], false);
      if (rng.chance(0.15)) {
        const z = new Uint8Array(zlib.deflateSync(d));
        add(1, rng.chance(0.9) ? d.length : rng.pick([0, d.length - 1, 0xffffffff, 33]), rng.chance(0.8) ? z : mutate(rng, z));
      } else {
        add(0, 0, d);
      }
    }
    return out.finish();
  }
  // Made-up images referring to each other (ids ascending from a random start, sometimes repeated or skipped).
  let id = rng.chance(0.8) ? rng.int(1000) : rng.pick([0, 2 ** 32, Number.MAX_SAFE_INTEGER - 3, 2 ** 53]);
  const made: { id: number; pixels: number }[] = [];
  for (let n = rng.range(1, 8); n > 0; n--) {
    const w = rng.range(1, 48);
    const h = rng.range(1, 16);
    const type = rng.chance(0.8) ? rng.pick([8, 7, 9, 6]) : rng.range(1, 11);
    const earlier = made.filter((m) => m.id < id).map((m) => ({ dist: id - m.id, pixels: m.pixels }));
    if (rng.chance(0.1)) earlier.push({ dist: rng.pick([1, 63, 64, 16383, 16384, 2 ** 22, 2 ** 30]), pixels: 100 });
    let d = type >= 6 ? glzImage(rng, id, w, h, type, earlier) : concat([glzHeader(type, true, w, h, Math.ceil(w / (type <= 2 ? 8 : type <= 4 ? 2 : 1)), id, 1), lzLiterals(rng, Math.ceil(w / (type <= 2 ? 8 : type <= 4 ? 2 : 1)) * h, 1, 2)]);
    if (rng.chance(0.3)) d = mutateTimes(rng, d, rng.range(1, 3));
    const kind = type < 6 ? 2 : rng.chance(0.2) ? 1 : 0;
    add(kind, d.length, kind === 1 ? new Uint8Array(zlib.deflateSync(d)) : d);
    made.push({ id, pixels: w * h });
    id += rng.chance(0.85) ? 1 : rng.pick([0, 2, -1]);
  }
  return out.finish();
}

function executeGlz(input: Uint8Array): Outcome {
  const r = new ByteReader(input, 0, 'fuzz input');
  const win = new GlzWindow({ maxWindowPixels: Math.max(1, r.u32(true)) });
  let first: unknown = null;
  let decoded = 0;
  // Like the display channel, every image goes to the same window; unlike it, a rejected image does not
  // end the run, so the window is also exercised after a failed decode.
  while (r.remaining > 0) {
    const kind = r.u8();
    const glzSize = r.u32(true);
    const data = r.bytesView(r.u32(true));
    try {
      const pal = { unique: 1n, ents: Uint32Array.of(0xff0000, 0x00ff00, 0x0000ff) };
      const img = kind === 1 ? win.decodeZlib(data, glzSize) : win.decode(data, kind === 2 ? pal : null);
      checkImage(img, 'glz');
      decoded++;
    } catch (err) {
      if (!(err instanceof DeskrecError)) return classify(err, '');
      first ??= err;
    }
    if (win.retainedPixels < 0) throw new Error(`glz window holds ${win.retainedPixels} pixels`);
  }
  return classify(first, `${decoded} images`);
}

/* ------------------------------------------------------------------------------------------------ */
/* Made-up display messages                                                                          */

/** What a made-up session has created so far, so later messages can refer to it. */
interface SessionState {
  width: number;
  height: number;
  surfaces: number[];
  cachedImages: bigint[];
  palettes: bigint[];
  masks: bigint[];
  streams: number[];
  nextId: bigint;
}

function clipBytes(rng: Rng, b: Body, w: number, h: number): void {
  if (rng.chance(0.6)) { b.u8(0); return; }
  if (rng.chance(0.05)) { b.u8(rng.pick([2, 255])); return; }
  const n = rng.chance(0.95) ? rng.range(0, 5) : rng.pick([65536, 65537, 0xffffffff]);
  b.u8(1).u32(n);
  for (let i = 0; i < Math.min(n, 8); i++) b.rect(wireRect(rng, w, h));
}

function baseBytes(rng: Rng, b: Body, st: SessionState): void {
  const sid = rng.chance(0.85) ? 0 : st.surfaces.length > 0 && rng.chance(0.8) ? rng.pick(st.surfaces) : rng.pick([1, 5, 0xffffffff]);
  b.u32(sid).rect(wireRect(rng, st.width, st.height));
  clipBytes(rng, b, st.width, st.height);
}

/** A palette blob: u64 unique, u16 count, entries. */
function paletteBlob(rng: Rng, unique: bigint): Blob {
  return () => {
    const n = rng.chance(0.9) ? rng.pick([1, 2, 4, 16, 256, rng.range(1, 300)]) : rng.pick([0, 0xffff]);
    const o = ByteWriter.le().u64(unique).u16(n);
    for (let i = 0; i < Math.min(n, 300); i++) o.u32(rng.u32() & 0xffffff);
    return o.finish();
  };
}

/** An image descriptor blob of some type (made up, from the corpus, from the caches). */
function imageBlob(rng: Rng, corpus: SpiceCorpus, st: SessionState, opts: { mask?: boolean } = {}): Blob {
  const id = st.nextId++;
  const r = rng.float();
  let flags = rng.chance(0.3) ? 1 : rng.chance(0.1) ? rng.pick([4, 2, 5]) : 0;
  const head = (o: ByteWriter, type: number, w: number, h: number): ByteWriter => o.u64(id).u8(type).u8(flags).u32(w).u32(h);
  if (opts.mask === true || r < 0.3) {
    // BITMAP (masks: 1-bit).
    const format = opts.mask === true ? (rng.chance(0.85) ? rng.pick([1, 2]) : rng.range(0, 11)) : rng.chance(0.95) ? rng.range(1, 10) : rng.pick([0, 12]);
    const w = rng.chance(0.9) ? rng.range(1, 48) : rng.pick([0, 513, 4096]);
    const h = rng.chance(0.9) ? rng.range(1, 32) : rng.pick([0, 300]);
    const bits = [0, 1, 1, 4, 4, 8, 16, 24, 32, 32, 8][format] ?? 8;
    const row = Math.ceil((w * bits) / 8);
    const stride = rng.chance(0.9) ? row + rng.pick([0, 0, 3]) : rng.pick([0, row - 1]);
    const bflags = rng.int(8) & ~2 | (rng.chance(0.2) && st.palettes.length > 0 ? 2 : 0);
    const paletteId = (bflags & 2) !== 0 ? rng.pick(st.palettes) : st.nextId++;
    if ((bflags & 1) !== 0) st.palettes.push(paletteId);
    const dataLen = Math.max(0, Math.min(1 << 17, stride * h + (rng.chance(0.9) ? 0 : rng.pick([-1, 4]))));
    if (flags & 1) (opts.mask === true ? st.masks : st.cachedImages).push(id);
    return (at) => {
      const o = head(ByteWriter.le(), IMAGE_TYPE.BITMAP, w, h).u8(format).u8(bflags).u32(rng.chance(0.97) ? w : w + 1).u32(h).u32(stride);
      const paletted = format >= 1 && format <= 5 && rng.chance(0.9);
      // The inline palette follows the data: its pointer is the offset of the end of this blob.
      if ((bflags & 2) !== 0) o.u64(paletteId);
      else o.u32(paletted ? at + o.length + 4 + dataLen : 0);
      o.bytes(rng.bytes(dataLen));
      if ((bflags & 2) === 0 && paletted) o.bytes(paletteBlob(rng, paletteId)(0));
      return o.finish();
    };
  }
  if (r < 0.65) {
    const type = rng.pick([IMAGE_TYPE.QUIC, IMAGE_TYPE.LZ_RGB, IMAGE_TYPE.LZ_PLT, IMAGE_TYPE.GLZ_RGB, IMAGE_TYPE.LZ4, IMAGE_TYPE.ZLIB_GLZ_RGB]);
    const seed = type === IMAGE_TYPE.ZLIB_GLZ_RGB ? pickImage(rng, corpus, IMAGE_TYPE.GLZ_RGB) : pickImage(rng, corpus, type);
    let data: Uint8Array;
    let w: number;
    let h: number;
    if (seed !== null && seed.width > 0 && rng.chance(0.8)) {
      data = seed.data;
      w = seed.width;
      h = seed.height;
    } else if (type === IMAGE_TYPE.LZ4) {
      w = rng.range(1, 40);
      h = rng.range(1, 20);
      data = lz4Image(rng, w, h, rng.pick([6, 7, 8, 9]));
    } else {
      w = rng.range(1, 40);
      h = rng.range(1, 20);
      data = lzImage(rng, type === IMAGE_TYPE.LZ_PLT ? rng.range(1, 5) : rng.pick([6, 7, 8, 9]), w, h, rng.chance(0.5));
    }
    if (rng.chance(0.2)) data = mutateTimes(rng, data, rng.range(1, 3));
    if (rng.chance(0.02)) w++;
    if (flags & 1) st.cachedImages.push(id);
    const glzSize = data.length;
    const payload = type === IMAGE_TYPE.ZLIB_GLZ_RGB ? new Uint8Array(zlib.deflateSync(data)) : data;
    const pal = seed?.palette;
    return (at) => {
      const o = head(ByteWriter.le(), type, w, h);
      if (type === IMAGE_TYPE.LZ_PLT) {
        const bflags = rng.chance(0.2) && st.palettes.length > 0 ? 2 : rng.int(2);
        o.u8(bflags).u32(payload.length);
        if (bflags & 2) o.u64(rng.pick(st.palettes));
        else o.u32(at + o.length + 4 + payload.length);
        o.bytes(payload);
        if ((bflags & 2) === 0) {
          const unique = st.nextId++;
          if (bflags & 1) st.palettes.push(unique);
          const ents = pal ?? Uint32Array.from({ length: rng.range(1, 256) }, () => rng.u32() & 0xffffff);
          const p = ByteWriter.le().u64(unique).u16(ents.length);
          for (const e of ents) p.u32(e);
          o.bytes(p.finish());
        }
        return o.finish();
      }
      if (type === IMAGE_TYPE.ZLIB_GLZ_RGB) o.u32(rng.chance(0.9) ? glzSize : rng.pick([0, glzSize - 1, 0xffffffff]));
      return o.u32(rng.chance(0.97) ? payload.length : rng.pick([payload.length + 1, 0xffffffff])).bytes(payload).finish();
    };
  }
  if (r < 0.72) {
    // JPEG / JPEG_ALPHA (sharp: asynchronous, slow — rare).
    const j = jpegSample(rng);
    const alpha = rng.chance(0.4);
    return () => {
      const o = head(ByteWriter.le(), alpha ? IMAGE_TYPE.JPEG_ALPHA : IMAGE_TYPE.JPEG, j.width, j.height);
      if (!alpha) return o.u32(j.data.length).bytes(j.data).finish();
      const flagsA = rng.int(2);
      const lz = lzImage(rng, 10, j.width, j.height, flagsA === 1);
      return o.u8(flagsA).u32(j.data.length).u32(j.data.length + lz.length).bytes(j.data).bytes(lz).finish();
    };
  }
  if (r < 0.88 && st.cachedImages.length > 0) {
    const cid = rng.chance(0.9) ? rng.pick(st.cachedImages) : st.nextId + 7n;
    flags = 0;
    return () => ByteWriter.le().u64(cid).u8(rng.chance(0.8) ? IMAGE_TYPE.FROM_CACHE : IMAGE_TYPE.FROM_CACHE_LOSSLESS).u8(0).u32(rng.range(1, 40)).u32(rng.range(1, 40)).finish();
  }
  if (r < 0.95) {
    const sid = st.surfaces.length > 0 && rng.chance(0.8) ? rng.pick(st.surfaces) : rng.pick([0, 3, 0xffffffff]);
    return () => head(ByteWriter.le(), IMAGE_TYPE.SURFACE, rng.range(1, 64), rng.range(1, 64)).u32(sid).finish();
  }
  return () => head(ByteWriter.le(), rng.pick([2, 99, 110, 255]), rng.range(1, 8), rng.range(1, 8)).bytes(rng.bytes(rng.int(16))).finish();
}

function brushBytes(rng: Rng, b: Body, corpus: SpiceCorpus, st: SessionState): void {
  const t = rng.float();
  if (t < 0.2) { b.u8(0); return; }
  if (t < 0.75) { b.u8(1).u32(rng.u32()); return; }
  if (t < 0.97) { b.u8(2).ptr(imageBlob(rng, corpus, st)).s32(rng.range(-40, 40)).s32(rng.range(-40, 40)); return; }
  b.u8(rng.pick([3, 255]));
}

function maskBytes(rng: Rng, b: Body, corpus: SpiceCorpus, st: SessionState): void {
  b.u8(rng.int(2)).s32(rng.range(-10, 40)).s32(rng.range(-10, 40));
  if (rng.chance(0.7)) { b.u32(0); return; }
  if (rng.chance(0.2) && st.masks.length > 0) {
    const id = rng.pick(st.masks);
    b.ptr(() => ByteWriter.le().u64(id).u8(IMAGE_TYPE.FROM_CACHE).u8(0).u32(8).u32(8).finish());
    return;
  }
  b.ptr(imageBlob(rng, corpus, st, { mask: true }));
}

function srcPtr(rng: Rng, b: Body, corpus: SpiceCorpus, st: SessionState): void {
  if (rng.chance(0.03)) b.ptr(null, rng.pick([0, 1, 0xffffffff, 9]));
  else b.ptr(imageBlob(rng, corpus, st));
}

/** A made-up display message for the session state so far. */
function displayMessage(rng: Rng, corpus: SpiceCorpus, st: SessionState): { type: number; body: Uint8Array } {
  const b = new Body();
  const M = MSG_DISPLAY;
  const type = rng.chance(0.01) ? rng.pick([109, 127, 200, 319, 320, 323, 999]) : rng.pick([
    M.DRAW_COPY, M.DRAW_COPY, M.DRAW_COPY, M.DRAW_FILL, M.DRAW_FILL, M.DRAW_OPAQUE, M.DRAW_BLEND, M.DRAW_BLACKNESS, M.DRAW_WHITENESS,
    M.DRAW_INVERS, M.DRAW_ROP3, M.DRAW_TRANSPARENT, M.DRAW_ALPHA_BLEND, M.DRAW_COMPOSITE, M.COPY_BITS, M.COPY_BITS, M.DRAW_STROKE,
    M.DRAW_TEXT, M.SURFACE_CREATE, M.SURFACE_DESTROY, M.INVAL_LIST, M.INVAL_ALL_PIXMAPS, M.INVAL_PALETTE, M.INVAL_ALL_PALETTES,
    M.MONITORS_CONFIG, M.STREAM_CREATE, M.STREAM_DATA, M.STREAM_DATA_SIZED, M.STREAM_CLIP, M.STREAM_DESTROY, M.STREAM_DESTROY_ALL,
    M.MARK, M.RESET, M.MODE, M.STREAM_ACTIVATE_REPORT, M.QUALITY_INDICATOR,
  ]);
  switch (type) {
    case M.DRAW_COPY:
    case M.DRAW_BLEND:
      baseBytes(rng, b, st);
      srcPtr(rng, b, corpus, st);
      b.rect(wireRect(rng, 48, 32)).u16(rng.chance(0.7) ? 8 : rng.int(2048)).u8(rng.int(3));
      maskBytes(rng, b, corpus, st);
      break;
    case M.DRAW_FILL:
      baseBytes(rng, b, st);
      brushBytes(rng, b, corpus, st);
      b.u16(rng.chance(0.6) ? 8 : rng.int(2048));
      maskBytes(rng, b, corpus, st);
      break;
    case M.DRAW_OPAQUE:
    case M.DRAW_ROP3:
      baseBytes(rng, b, st);
      srcPtr(rng, b, corpus, st);
      b.rect(wireRect(rng, 48, 32));
      brushBytes(rng, b, corpus, st);
      if (type === M.DRAW_ROP3) b.u8(rng.int(256));
      else b.u16(rng.int(2048));
      b.u8(rng.int(3));
      maskBytes(rng, b, corpus, st);
      break;
    case M.DRAW_BLACKNESS:
    case M.DRAW_WHITENESS:
    case M.DRAW_INVERS:
      baseBytes(rng, b, st);
      maskBytes(rng, b, corpus, st);
      break;
    case M.DRAW_TRANSPARENT:
      baseBytes(rng, b, st);
      srcPtr(rng, b, corpus, st);
      b.rect(wireRect(rng, 48, 32)).u32(rng.u32()).u32(rng.chance(0.5) ? 0 : rng.u32());
      break;
    case M.DRAW_ALPHA_BLEND:
      baseBytes(rng, b, st);
      b.u8(rng.int(4)).u8(rng.int(256));
      srcPtr(rng, b, corpus, st);
      b.rect(wireRect(rng, 48, 32));
      break;
    case M.DRAW_COMPOSITE: {
      baseBytes(rng, b, st);
      const flags = rng.u32() & (rng.chance(0.5) ? 0x01ffffff : 0xffffffff);
      b.u32(flags);
      srcPtr(rng, b, corpus, st);
      if (flags & COMPOSITE_FLAG.HAS_MASK) srcPtr(rng, b, corpus, st);
      for (const f of [COMPOSITE_FLAG.HAS_SRC_TRANSFORM, COMPOSITE_FLAG.HAS_MASK_TRANSFORM]) {
        if (flags & f) for (let i = 0; i < 6; i++) b.s32(rng.chance(0.5) ? rng.pick([0, 0x10000, -0x10000, 0x8000]) : rng.u32());
      }
      b.s16(rng.range(-50, 50)).s16(rng.range(-50, 50)).s16(rng.range(-50, 50)).s16(rng.range(-50, 50));
      break;
    }
    case M.COPY_BITS:
      baseBytes(rng, b, st);
      b.s32(rng.chance(0.9) ? rng.range(-10, st.width + 10) : rng.pick(INT32_EXTREMES)).s32(rng.chance(0.9) ? rng.range(-10, st.height + 10) : rng.pick(INT32_EXTREMES));
      break;
    case M.DRAW_STROKE:
      baseBytes(rng, b, st);
      b.u32(rng.u32()).u8(rng.int(16));
      if (rng.chance(0.5)) b.u8(rng.int(4)).u32(0);
      brushBytes(rng, b, corpus, st);
      break;
    case M.DRAW_TEXT:
      baseBytes(rng, b, st);
      b.u32(rng.u32()).rect(wireRect(rng, st.width, st.height));
      brushBytes(rng, b, corpus, st);
      brushBytes(rng, b, corpus, st);
      break;
    case M.SURFACE_CREATE: {
      const id = rng.chance(0.15) ? 0 : rng.chance(0.9) ? rng.range(1, 8) : rng.pick([4097, 0xffffffff]);
      const w = rng.chance(0.9) ? rng.range(1, 200) : rng.pick([0, 8192, 8193, 0xffffffff]);
      const h = rng.chance(0.9) ? rng.range(1, 150) : rng.pick([0, 2, 8192, 0x80000000]);
      const fmt = rng.chance(0.9) ? rng.pick(Object.values(SURFACE_FMT)) : rng.pick([0, 24, 255]);
      b.u32(id).u32(w).u32(h).u32(fmt).u32(id === 0 ? 1 : 0);
      if (id !== 0) st.surfaces.push(id);
      else if (w >= 1 && h >= 1 && w <= 8192 && h <= 8192) { st.width = w; st.height = h; }
      break;
    }
    case M.SURFACE_DESTROY:
      b.u32(st.surfaces.length > 0 && rng.chance(0.8) ? rng.pick(st.surfaces) : rng.pick([0, 77]));
      break;
    case M.MODE:
      b.u32(rng.range(1, 200)).u32(rng.range(1, 150)).u32(32);
      break;
    case M.INVAL_LIST: {
      const n = rng.chance(0.95) ? rng.range(0, 4) : 0xffff;
      b.u16(n);
      for (let i = 0; i < Math.min(n, 4); i++) b.u8(0).u64(st.cachedImages.length > 0 && rng.chance(0.7) ? rng.pick(st.cachedImages) : rng.pick([0n, 12345n]));
      break;
    }
    case M.INVAL_PALETTE:
      b.u64(st.palettes.length > 0 && rng.chance(0.7) ? rng.pick(st.palettes) : 1n);
      break;
    case M.INVAL_ALL_PIXMAPS:
      b.u8(0);
      break;
    case M.MONITORS_CONFIG: {
      const n = rng.chance(0.9) ? rng.range(0, 3) : 0xffff;
      b.u16(n).u16(rng.range(1, 16));
      for (let i = 0; i < Math.min(n, 3); i++) for (let k = 0; k < 7; k++) b.u32(rng.int(2000));
      break;
    }
    case M.STREAM_CREATE: {
      const id = rng.chance(0.9) ? rng.int(4) : rng.pick([63, 64, 0xffffffff]);
      b.u32(rng.chance(0.9) ? 0 : rng.pick([1, 99])).u32(id).u8(rng.int(2)).u8(rng.chance(0.9) ? 1 : rng.pick([2, 3, 0]))
        .u64(0n).u32(rng.range(1, 64)).u32(rng.range(1, 64)).u32(rng.range(1, 64)).u32(rng.range(1, 64))
        .rect(wireRect(rng, st.width, st.height));
      clipBytes(rng, b, st.width, st.height);
      st.streams.push(id);
      break;
    }
    case M.STREAM_DATA:
    case M.STREAM_DATA_SIZED: {
      const id = st.streams.length > 0 && rng.chance(0.9) ? rng.pick(st.streams) : rng.int(70);
      const j = jpegSample(rng);
      const data = rng.chance(0.7) ? j.data : mutate(rng, j.data);
      b.u32(id).u32(rng.u32());
      if (type === M.STREAM_DATA_SIZED) b.u32(j.width).u32(j.height).rect(wireRect(rng, st.width, st.height));
      b.u32(rng.chance(0.95) ? data.length : rng.pick([0xffffffff, data.length + 1])).bytes(data);
      break;
    }
    case M.STREAM_CLIP:
      b.u32(st.streams.length > 0 && rng.chance(0.9) ? rng.pick(st.streams) : rng.int(70));
      clipBytes(rng, b, st.width, st.height);
      break;
    case M.STREAM_DESTROY:
      b.u32(st.streams.length > 0 && rng.chance(0.9) ? rng.pick(st.streams) : rng.int(70));
      break;
    default:
      if (rng.chance(0.5)) b.bytes(rng.bytes(rng.int(24)));
  }
  let body = b.finish();
  if (rng.chance(0.08)) body = mutateTimes(rng, body, rng.range(1, 3));
  return { type, body };
}

/* ------------------------------------------------------------------------------------------------ */
/* Target: spice-wire                                                                                */

/** The parsers of wire.ts by message type. */
const WIRE_PARSERS: [number, (b: Uint8Array) => unknown][] = [
  [MSG_DISPLAY.DRAW_COPY, readCopy], [MSG_DISPLAY.DRAW_BLEND, readCopy], [MSG_DISPLAY.DRAW_FILL, readFill],
  [MSG_DISPLAY.DRAW_OPAQUE, readOpaque], [MSG_DISPLAY.DRAW_ROP3, readRop3], [MSG_DISPLAY.DRAW_TRANSPARENT, readTransparent],
  [MSG_DISPLAY.DRAW_ALPHA_BLEND, readAlphaBlend], [MSG_DISPLAY.DRAW_COMPOSITE, readComposite],
  [MSG_DISPLAY.DRAW_BLACKNESS, readBlackness], [MSG_DISPLAY.DRAW_WHITENESS, readWhiteness], [MSG_DISPLAY.DRAW_INVERS, readInvers],
  [MSG_DISPLAY.COPY_BITS, readCopyBits], [MSG_DISPLAY.SURFACE_CREATE, readSurfaceCreate], [MSG_DISPLAY.INVAL_LIST, readInvalList],
  [MSG_DISPLAY.MONITORS_CONFIG, readMonitorsConfig],
  [MSG_DISPLAY.DRAW_STROKE, (b) => readDisplayBase(new ByteReader(b, 0, 'base'))],
];

function emptyState(): SessionState {
  return { width: 64, height: 48, surfaces: [1, 2], cachedImages: [1n], palettes: [2n], masks: [3n], streams: [0], nextId: 100n };
}

/** Serialisation of a wire input: U16 message type (LE), the body. */
function generateWire(rng: Rng, corpus: SpiceCorpus): Uint8Array {
  let type: number;
  let body: Uint8Array;
  const fx = corpus.fixtures.filter((f) => (f.streams.get(1)?.messages.length ?? 0) > 0);
  if (fx.length > 0 && rng.chance(0.35)) {
    const m = rng.pick((rng.pick(fx).streams.get(1)?.messages ?? []).filter((x) => x.type >= 101));
    type = m.type;
    body = m.body;
  } else {
    ({ type, body } = displayMessage(rng, corpus, emptyState()));
  }
  if (rng.chance(0.6)) body = mutateTimes(rng, body, rng.pick([1, 1, 2, 4]));
  if (rng.chance(0.1)) type = rng.pick(WIRE_PARSERS)[0];
  return ByteWriter.le().u16(type).bytes(body).finish();
}

/** Every view a parsed message holds must lie inside the body. */
function checkViews(v: unknown, body: Uint8Array, depth = 0): void {
  if (depth > 8 || v === null || typeof v !== 'object') return;
  if (v instanceof Uint8Array) {
    if (v.buffer !== body.buffer) return; // a copy (palette entries), not a view
    if (v.byteOffset < body.byteOffset || v.byteOffset + v.byteLength > body.byteOffset + body.byteLength) {
      throw new Error(`a parsed view [${v.byteOffset}, +${v.byteLength}) leaves the body [${body.byteOffset}, +${body.byteLength})`);
    }
    return;
  }
  if (ArrayBuffer.isView(v)) return;
  for (const x of Object.values(v)) checkViews(x, body, depth + 1);
}

function checkRects(v: unknown, depth = 0): void {
  if (depth > 8 || v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return;
  const o = v as Record<string, unknown>;
  if (typeof o.width === 'number' && typeof o.height === 'number' && typeof o.x === 'number' && (o.width < 0 || o.height < 0)) {
    throw new Error(`a parsed rectangle has a negative size ${o.width}x${o.height}`);
  }
  for (const x of Object.values(o)) checkRects(x, depth + 1);
}

function executeWire(input: Uint8Array): Outcome {
  try {
    const r = new ByteReader(input, 0, 'fuzz input');
    const type = r.u16(true);
    const body = input.slice(2);
    const parser = WIRE_PARSERS.find(([t]) => t === type)?.[1] ?? ((b: Uint8Array) => readImage(b, b.length > 0 ? (b[0] ?? 0) % b.length : 0));
    const parsed = parser(body);
    checkViews(parsed, body);
    checkRects(parsed);
    return { status: 'decoded', detail: '' };
  } catch (err) {
    return classify(err, '');
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* Target: spice-canvas                                                                              */

/** A canvas surface for the fuzzer: records damage, keeps the surface it was made with. */
class FuzzSurface implements CanvasSurface {
  readonly stride: number;
  readonly rgba: Uint8Array;
  readonly damage: Rect[] = [];
  constructor(readonly width: number, readonly height: number, readonly hasAlpha: boolean, fill: Uint8Array) {
    this.stride = width * 4;
    this.rgba = new Uint8Array(this.stride * height);
    for (let i = 0; i < this.rgba.length; i++) this.rgba[i] = fill[i % fill.length] ?? 0;
    if (!hasAlpha) for (let i = 3; i < this.rgba.length; i += 4) this.rgba[i] = 255;
  }
  markDamaged(r: Rect): void {
    this.damage.push({ ...r });
  }
}

/** Checks what an op did to `s` against the pixels before it. */
function checkCanvas(s: FuzzSurface, before: Uint8Array): void {
  for (const d of s.damage) {
    if (!Number.isInteger(d.x) || !Number.isInteger(d.y) || !Number.isInteger(d.width) || !Number.isInteger(d.height)
      || d.x < 0 || d.y < 0 || d.width < 0 || d.height < 0 || d.x + d.width > s.width || d.y + d.height > s.height) {
      throw new Error(`damage ${JSON.stringify(d)} leaves the ${s.width}x${s.height} surface`);
    }
  }
  if (s.rgba.length !== before.length) throw new Error('the surface changed size');
  for (let y = 0; y < s.height; y++) {
    for (let x = 0; x < s.width; x++) {
      const o = y * s.stride + x * 4;
      if (!s.hasAlpha && s.rgba[o + 3] !== 255) throw new Error(`A = ${s.rgba[o + 3] ?? '?'} at (${x},${y}) of a surface without alpha`);
      if (s.rgba[o] === before[o] && s.rgba[o + 1] === before[o + 1] && s.rgba[o + 2] === before[o + 2] && s.rgba[o + 3] === before[o + 3]) continue;
      if (!s.damage.some((d) => x >= d.x && x < d.x + d.width && y >= d.y && y < d.y + d.height)) {
        throw new Error(`pixel (${x},${y}) changed outside the damage ${JSON.stringify(s.damage)}`);
      }
    }
  }
}

function canvasImage(rng: Rng, out: ByteWriter): void {
  const w = rng.chance(0.9) ? rng.range(1, 40) : rng.pick([1, 64, 100]);
  const h = rng.chance(0.9) ? rng.range(1, 30) : rng.pick([1, 64]);
  out.u16(w).u16(h).u8(rng.int(3)).u32(rng.u32());
}

function readCanvasImage(r: ByteReader): DecodedImage {
  // Decoded images are never empty; keep mutated sizes small (the pixels come from a seed).
  const width = Math.min(128, Math.max(1, r.u16(true)));
  const height = Math.min(128, Math.max(1, r.u16(true)));
  const kind = r.u8();
  const rng = new Rng(r.u32(true));
  const alpha = kind === 0 ? 'none' : kind === 1 ? 'premultiplied' : 'straight';
  const rgba = rng.bytes(width * height * 4);
  if (alpha === 'none') for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
  return { width, height, rgba, alpha, lossy: false };
}

function canvasRect(rng: Rng, out: ByteWriter, w: number, h: number): void {
  const r = spiceRect(wireRect(rng, w, h));
  out.s32(r.x).s32(r.y).u32(r.width).u32(r.height);
}

function readCanvasRect(r: ByteReader): SpiceRect {
  return { x: r.s32(true), y: r.s32(true), width: r.u32(true), height: r.u32(true) };
}

/**
 * Serialisation of a canvas input (LE): U8 op, U16 surface width, height, U8 has-alpha, U32 fill seed,
 * box (S32 x, y, U32 width, height), U32 clip count (0xffffffff: none) + rects, source image (U16 w, h, U8 alpha
 * kind, U32 pixel seed), source area, U16 rop, U8 scale mode, mask (U8 present, U8 invert, S32 x, y, U16
 * w, h, U32 bits seed), brush (U8 type, U32 colour, image, S32 x, y), U32 composite flags, transforms
 * (U8 present, 6 S32 each), S16 origins ×4, mask image, S32 copy-bits source x, y.
 */
function generateCanvas(rng: Rng): Uint8Array {
  const w = rng.chance(0.9) ? rng.range(1, 48) : rng.pick([1, 2, 96, 512]);
  const h = rng.chance(0.9) ? rng.range(1, 32) : rng.pick([1, 64, 512]);
  const o = ByteWriter.le().u8(rng.int(12)).u16(w).u16(h).u8(rng.int(2)).u32(rng.u32());
  canvasRect(rng, o, w, h);
  // Clip lists: none, a few rectangles, or (rarely) as many as the wire allows, on a bigger surface.
  const many = rng.chance(0.01);
  const clips = many ? rng.pick([1000, 20000, 65536]) : rng.chance(0.5) ? 0xffffffff : rng.range(0, 4);
  o.u32(clips);
  const cw = many ? 512 : w;
  const ch = many ? 512 : h;
  for (let i = 0; i < (clips === 0xffffffff ? 0 : clips); i++) canvasRect(rng, o, cw, ch);
  canvasImage(rng, o);
  canvasRect(rng, o, 40, 30);
  o.u16(rng.chance(0.5) ? 8 : rng.int(2048)).u8(rng.int(3));
  o.u8(rng.int(2)).u8(rng.int(2)).s32(rng.range(-10, 40)).s32(rng.range(-10, 40)).u16(rng.range(0, 40)).u16(rng.range(0, 30)).u32(rng.u32());
  o.u8(rng.int(3)).u32(rng.u32());
  canvasImage(rng, o);
  o.s32(rng.range(-40, 40)).s32(rng.range(-40, 40));
  o.u32(rng.u32() & (rng.chance(0.5) ? 0x003fffff : 0xffffffff));
  for (let t = 0; t < 2; t++) {
    o.u8(rng.int(2));
    for (let i = 0; i < 6; i++) o.s32(rng.chance(0.6) ? rng.pick([0, 0x10000, -0x10000, 0x8000, 0x20000]) : rng.chance(0.5) ? rng.range(-0x40000, 0x40000) : rng.u32());
  }
  for (let i = 0; i < 4; i++) o.s16(rng.range(-50, 50));
  o.u8(rng.int(2));
  canvasImage(rng, o);
  o.s32(rng.chance(0.9) ? rng.range(-10, w + 10) : rng.pick(INT32_EXTREMES)).s32(rng.chance(0.9) ? rng.range(-10, h + 10) : rng.pick(INT32_EXTREMES));
  let bytes = o.finish();
  if (rng.chance(0.05)) bytes = mutate(rng, bytes);
  return bytes;
}

function executeCanvas(input: Uint8Array): Outcome {
  try {
    const r = new ByteReader(input, 0, 'fuzz input');
    const op = r.u8();
    // A canvas surface is never empty (surfaces are checked when created); keep it small for the pixel checks.
    const w = Math.min(512, Math.max(1, r.u16(true)));
    const h = Math.min(512, Math.max(1, r.u16(true)));
    const hasAlpha = r.u8() === 1;
    const fill = new Rng(r.u32(true)).bytes(97);
    const box = readCanvasRect(r);
    const nClip = r.u32(true);
    // (readClip caps a clip list at 65536 rectangles.)
    const clip: Clip = nClip === 0xffffffff ? { type: 'none' } : { type: 'rects', rects: Array.from({ length: Math.min(nClip, 65536) }, () => readCanvasRect(r)) };
    const base: DisplayBase = { surfaceId: 0, box, clip };
    const src = readCanvasImage(r);
    const srcArea = readCanvasRect(r);
    const rop = r.u16(true);
    const scale = r.u8();
    const hasMask = r.u8() === 1;
    const invert = r.u8() === 1;
    const mx = r.s32(true);
    const my = r.s32(true);
    const mw = Math.min(128, r.u16(true));
    const mh = Math.min(128, r.u16(true));
    const mbits = new Rng(r.u32(true)).bytes(mw * mh).map((b) => b & 1);
    const mask: ResolvedMask | null = hasMask ? { invert, x: mx, y: my, bits: { width: mw, height: mh, bits: mbits } } : null;
    const brushType = r.u8();
    const colour = r.u32(true);
    const pattern = readCanvasImage(r);
    const px = r.s32(true);
    const py = r.s32(true);
    const brush: ResolvedBrush = brushType === 0 ? { type: 'none' } : brushType === 1 ? { type: 'solid', color: colour } : { type: 'pattern', image: pattern, x: px, y: py };
    const flags = r.u32(true);
    const transforms: (Transform | null)[] = [];
    for (let t = 0; t < 2; t++) {
      const present = r.u8() === 1;
      const v: Transform = [r.s32(true), r.s32(true), r.s32(true), r.s32(true), r.s32(true), r.s32(true)];
      transforms.push(present ? v : null);
    }
    const origins = [r.s16(true), r.s16(true), r.s16(true), r.s16(true)] as const;
    const hasCompMask = r.u8() === 1;
    const compMask = readCanvasImage(r);
    const cbx = r.s32(true);
    const cby = r.s32(true);
    const s = new FuzzSurface(w, h, hasAlpha, fill);
    const before = s.rgba.slice();
    const cop: CompositeOp = {
      flags, op: flags & 0xff, srcFilter: (flags >>> 8) & 7, maskFilter: (flags >>> 11) & 7, srcRepeat: (flags >>> 14) & 3,
      maskRepeat: (flags >>> 16) & 3, componentAlpha: (flags & COMPOSITE_FLAG.COMPONENT_ALPHA) !== 0,
      srcTransform: transforms[0] ?? null, maskTransform: transforms[1] ?? null,
      srcOrigin: { x: origins[0], y: origins[1] }, maskOrigin: { x: origins[2], y: origins[3] },
    };
    switch (op) {
      case 0: drawCopy(s, base, src, srcArea, rop, scale, mask); break;
      case 1: drawBlend(s, base, src, srcArea, rop, scale, mask); break;
      case 2: drawFill(s, base, brush, rop, mask); break;
      case 3: drawOpaque(s, base, src, srcArea, brush, rop, scale, mask); break;
      case 4: drawBlackness(s, base, mask); break;
      case 5: drawWhiteness(s, base, mask); break;
      case 6: drawInvers(s, base, mask); break;
      case 7: drawRop3(s, base, src, srcArea, brush, rop & 0xff, scale, mask); break;
      case 8: drawTransparent(s, base, src, srcArea, 0, colour); break;
      case 9: drawAlphaBlend(s, base, src, srcArea, rop & 3, rop & 0xff); break;
      case 10: drawComposite(s, base, cop, src, hasCompMask ? compMask : null); break;
      default: copyBits(s, base, cbx, cby);
    }
    checkCanvas(s, before);
    return { status: 'decoded', detail: `op ${op}` };
  } catch (err) {
    return classify(err, '');
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* Target: spice-display                                                                             */

/** Serialisation of a message list: per message U16 type, U32 length, body, U8 batch end after it (LE). */
function encodeMessages(msgs: readonly { type: number; body: Uint8Array; batch: boolean }[]): Uint8Array {
  const o = ByteWriter.le();
  for (const m of msgs) o.u16(m.type).u32(m.body.length).bytes(m.body).u8(m.batch ? 1 : 0);
  return o.finish();
}

function decodeMessages(input: Uint8Array): { type: number; body: Uint8Array; batch: boolean }[] {
  const r = new ByteReader(input, 0, 'fuzz input');
  const out: { type: number; body: Uint8Array; batch: boolean }[] = [];
  while (r.remaining > 0) {
    const type = r.u16(true);
    const body = r.bytesView(r.u32(true));
    out.push({ type, body, batch: r.u8() === 1 });
  }
  return out;
}

/** The offset of a DRAW_COPY's source image descriptor, if it parses. */
function copyImageOffset(body: Uint8Array): number | null {
  try {
    const r = new ByteReader(body, 0, 'DRAW_COPY');
    readDisplayBase(r);
    const p = r.u32(true);
    return p > 0 && p + 18 <= body.length ? p : null;
  } catch {
    return null;
  }
}

function generateDisplay(rng: Rng, corpus: SpiceCorpus): Uint8Array {
  const fx = corpus.fixtures.filter((f) => (f.streams.get(1)?.messages.length ?? 0) > 2);
  if (fx.length > 0 && rng.chance(0.45)) {
    // The channel answers the base messages (SET_ACK, PING) itself; the display state sees the rest.
    const all = (rng.pick(fx).streams.get(1)?.messages ?? []).filter((m) => m.type >= 101);
    const n = Math.min(all.length, rng.chance(0.5) ? rng.range(3, 24) : rng.range(3, 120));
    const msgs = all.slice(0, n).map((m) => ({ type: m.type, body: m.body, batch: rng.chance(0.3) }));
    for (let k = rng.pick([1, 1, 2, 3]); k > 0; k--) {
      const i = rng.int(msgs.length);
      const m = msgs[i];
      if (m === undefined) continue;
      const r = rng.int(10);
      const at = m.type === MSG_DISPLAY.DRAW_COPY ? copyImageOffset(m.body) : null;
      if (r < 4 && at !== null) {
        // The image descriptor: type, flags, width, height, the payload size.
        const body = m.body.slice();
        const v = new DataView(body.buffer);
        const field = rng.int(5);
        if (field === 0) body[at + 8] = rng.pick([0, 1, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110]);
        else if (field === 1) body[at + 9] = rng.int(8);
        else if (field === 2) v.setUint32(at + 10, rng.pick([...HUGE32, 0, v.getUint32(at + 10, true) + 1]), true);
        else if (field === 3) v.setUint32(at + 14, rng.pick([...HUGE32, 0, v.getUint32(at + 14, true) - 1]), true);
        else if (at + 22 <= body.length) v.setUint32(at + 18, rng.pick([...HUGE32, 0, v.getUint32(at + 18, true) + 1]), true);
        msgs[i] = { ...m, body };
      } else if (r < 5) {
        msgs[i] = { ...m, type: rng.pick(Object.values(MSG_DISPLAY)) };
      } else if (r < 6) {
        msgs.splice(i, 1);
      } else {
        msgs[i] = { ...m, body: mutateTimes(rng, m.body, rng.range(1, 3)) };
      }
    }
    const last = msgs[msgs.length - 1];
    if (last !== undefined) last.batch = true;
    return encodeMessages(msgs);
  }
  if (rng.chance(0.02)) return encodeMessages(bigSession(rng));
  // A made-up session on a small primary surface.
  const st: SessionState = { width: rng.range(1, 160), height: rng.range(1, 120), surfaces: [], cachedImages: [], palettes: [], masks: [], streams: [], nextId: 1n };
  const msgs: { type: number; body: Uint8Array; batch: boolean }[] = [];
  const create = ByteWriter.le().u32(0).u32(st.width).u32(st.height).u32(rng.chance(0.9) ? SURFACE_FMT.XRGB32 : rng.pick(Object.values(SURFACE_FMT))).u32(1).finish();
  if (rng.chance(0.95)) msgs.push({ type: MSG_DISPLAY.SURFACE_CREATE, body: create, batch: false });
  if (rng.chance(0.9)) msgs.push({ type: MSG_DISPLAY.MARK, body: new Uint8Array(0), batch: rng.chance(0.5) });
  for (let n = rng.range(1, 24); n > 0; n--) {
    const m = displayMessage(rng, corpus, st);
    msgs.push({ ...m, batch: rng.chance(0.3) });
  }
  const last = msgs[msgs.length - 1];
  if (last !== undefined) last.batch = true;
  return encodeMessages(msgs);
}

/**
 * How many big off-screen surfaces a big session may create. DisplayState caps each surface (8192x8192),
 * their number (4096) and their total (MAX_OFFSCREEN_PIXELS, 256 MiB): the fuzzer asks for up to four
 * big ones, so the total cap is what stops them.
 */
const BIG_OFFSCREEN_SURFACES = 4;

/**
 * A session with big things in it, within every per-item cap: a primary and an off-screen surface up to
 * 8192x8192, and images that decode to up to 8192x4096 pixels from a few hundred KiB (cached, drawn).
 * What a hostile server can make the recorder hold must stay bounded.
 */
function bigSession(rng: Rng): { type: number; body: Uint8Array; batch: boolean }[] {
  const msgs: { type: number; body: Uint8Array; batch: boolean }[] = [];
  const side = (): number => rng.pick([1024, 2048, 4096, 8192, 8192]);
  // The primary mostly small (a big one only costs time: Surface fills it), sometimes up to 8192x8192.
  const pw = rng.chance(0.7) ? rng.range(16, 320) : side();
  const ph = rng.chance(0.7) ? rng.range(16, 240) : side();
  msgs.push({ type: MSG_DISPLAY.SURFACE_CREATE, body: ByteWriter.le().u32(0).u32(pw).u32(ph).u32(SURFACE_FMT.XRGB32).u32(1).finish(), batch: false });
  msgs.push({ type: MSG_DISPLAY.MARK, body: new Uint8Array(0), batch: false });
  let id = 1n;
  let surfaces = 0;
  for (let n = rng.range(2, 8); n > 0; n--) {
    if (surfaces < BIG_OFFSCREEN_SURFACES && rng.chance(0.3)) {
      surfaces++;
      msgs.push({ type: MSG_DISPLAY.SURFACE_CREATE, body: ByteWriter.le().u32(rng.range(1, 4)).u32(side()).u32(side()).u32(rng.pick([SURFACE_FMT.XRGB32, SURFACE_FMT.ARGB32])).u32(0).finish(), batch: false });
      continue;
    }
    const w = side();
    const h = w === 8192 ? rng.pick([1024, 2048, 4096]) : side();
    const lz = lzBomb(w, h);
    const b = new Body().u32(0).rect({ top: 0, left: 0, bottom: Math.min(ph, h), right: Math.min(pw, w) }).u8(0);
    b.ptr(() => ByteWriter.le().u64(id++).u8(IMAGE_TYPE.LZ_RGB).u8(rng.chance(0.8) ? 1 : 0).u32(w).u32(h).u32(lz.length).bytes(lz).finish());
    b.rect({ top: 0, left: 0, bottom: h, right: w }).u16(8).u8(1).u8(0).s32(0).s32(0).u32(0);
    msgs.push({ type: MSG_DISPLAY.DRAW_COPY, body: b.finish(), batch: rng.chance(0.5) });
  }
  const last = msgs[msgs.length - 1];
  if (last !== undefined) last.batch = true;
  return msgs;
}

async function executeDisplay(input: Uint8Array): Promise<Outcome> {
  const msgs = decodeMessages(input);
  let failure: Error | null = null;
  let frames = 0;
  let prev: { w: number; h: number; rgba: Uint8Array } | null = null;
  let problem: Error | null = null;
  const display = new DisplayState(() => undefined, {
    frame: (f) => {
      frames++;
      try {
        if (f.stride < f.width * 4 || f.rgba.length < f.stride * f.height) throw new Error(`frame ${f.width}x${f.height} with stride ${f.stride} in ${f.rgba.length} bytes`);
        for (const d of f.damage) {
          if (d.x < 0 || d.y < 0 || d.x + d.width > f.width || d.y + d.height > f.height) throw new Error(`frame damage ${JSON.stringify(d)} leaves ${f.width}x${f.height}`);
        }
        // No pixel may change outside the damage (the recorder converts only the damage).
        if (f.width * f.height <= 1 << 18) {
          if (prev !== null && prev.w === f.width && prev.h === f.height) {
            for (let y = 0; y < f.height; y++) {
              for (let x = 0; x < f.width; x++) {
                const o = y * f.stride + x * 4;
                const p = (y * f.width + x) * 4;
                if (f.rgba[o] === prev.rgba[p] && f.rgba[o + 1] === prev.rgba[p + 1] && f.rgba[o + 2] === prev.rgba[p + 2] && f.rgba[o + 3] === prev.rgba[p + 3]) continue;
                if (!f.damage.some((d) => x >= d.x && x < d.x + d.width && y >= d.y && y < d.y + d.height)) {
                  throw new Error(`frame ${frames}: pixel (${x},${y}) changed outside the damage`);
                }
              }
            }
          }
          const copy = new Uint8Array(f.width * f.height * 4);
          for (let y = 0; y < f.height; y++) copy.set(f.rgba.subarray(y * f.stride, y * f.stride + f.width * 4), y * f.width * 4);
          prev = { w: f.width, h: f.height, rgba: copy };
        } else {
          prev = null;
        }
      } catch (err) {
        problem ??= err instanceof Error ? err : new Error(String(err));
      }
    },
    failed: (err) => { failure = err; },
  }, { glzWindowPixels: glzWindowPixels(0), preferCompression: null });
  display.start(false);
  let t = 0;
  for (const m of msgs) {
    t += 1;
    display.message(m.type, m.body, t);
    if (m.batch) display.batchEnd(t);
  }
  await display.whenIdle();
  if (problem !== null) return classify(problem, '');
  return classify(failure, `${frames} frames`);
}

/* ------------------------------------------------------------------------------------------------ */
/* Target: spice-cursor                                                                              */

function cursorBytes(rng: Rng, o: ByteWriter, uniques: bigint[]): void {
  const r = rng.float();
  if (r < 0.1) { o.u16(CURSOR_FLAG.NONE); return; }
  if (r < 0.25 && uniques.length > 0) {
    o.u16(CURSOR_FLAG.FROM_CACHE).u64(rng.chance(0.9) ? rng.pick(uniques) : 999n).u8(0).u16(32).u16(32).u16(0).u16(0);
    return;
  }
  const type = rng.chance(0.95) ? rng.range(0, 6) : rng.pick([7, 255]);
  const w = rng.chance(0.9) ? rng.pick([0, 1, 7, 8, 16, 31, 32, rng.range(1, 64)]) : rng.pick([512, 513, 0xffff]);
  const h = rng.chance(0.9) ? rng.pick([0, 1, 8, 16, 32, rng.range(1, 64)]) : rng.pick([512, 513, 0xffff]);
  const unique = BigInt(rng.u32());
  const cacheMe = rng.chance(0.5);
  if (cacheMe) uniques.push(unique);
  o.u16(cacheMe ? CURSOR_FLAG.CACHE_ME : 0).u64(unique).u8(type).u16(w).u16(h).u16(rng.int(w + 3)).u16(rng.int(h + 3));
  let size: number;
  try {
    size = cursorDataSize(type, Math.min(w, 64), Math.min(h, 64));
  } catch {
    size = rng.int(64);
  }
  if (rng.chance(0.15)) size = Math.max(0, size + rng.pick([-1, 1, -4, 100]));
  o.bytes(rng.bytes(Math.min(size, 1 << 16)));
}

/** A made-up cursor message. */
function cursorMessage(rng: Rng, uniques: bigint[]): { type: number; body: Uint8Array } {
  const o = ByteWriter.le();
  const C = MSG_CURSOR;
  const type = rng.pick([C.INIT, C.SET, C.SET, C.SET, C.MOVE, C.MOVE, C.HIDE, C.TRAIL, C.INVAL_ONE, C.INVAL_ALL, C.RESET, rng.pick([100, 109, 200])]);
  switch (type) {
    case C.INIT:
      o.s16(rng.range(-100, 2000)).s16(rng.range(-100, 2000)).u16(rng.int(10)).u16(rng.int(10)).u8(rng.int(2));
      cursorBytes(rng, o, uniques);
      break;
    case C.SET:
      o.s16(rng.range(-100, 2000)).s16(rng.range(-100, 2000)).u8(rng.int(2));
      cursorBytes(rng, o, uniques);
      break;
    case C.MOVE:
      o.s16(rng.range(-32768, 32767)).s16(rng.range(-100, 2000));
      break;
    case C.TRAIL:
      o.u16(rng.int(100)).u16(rng.int(100));
      break;
    case C.INVAL_ONE:
      o.u64(uniques.length > 0 && rng.chance(0.8) ? rng.pick(uniques) : 5n);
      break;
    default:
      break;
  }
  let body = o.finish();
  if (rng.chance(0.15)) body = mutateTimes(rng, body, rng.range(1, 3));
  return { type, body };
}

/** Serialisation: U8 limits (bit 0: a 2-entry, 64 KiB cache), then messages as `encodeMessages`. */
function generateCursor(rng: Rng): Uint8Array {
  const uniques: bigint[] = [];
  const msgs = Array.from({ length: rng.range(1, 16) }, () => ({ ...cursorMessage(rng, uniques), batch: false }));
  return concat([Uint8Array.of(rng.chance(0.2) ? 1 : 0), encodeMessages(msgs)]);
}

function executeCursor(input: Uint8Array): Outcome {
  const small = (input[0] ?? 0) & 1;
  const msgs = decodeMessages(input.subarray(1));
  const ch = new CursorChannel(small === 1 ? { maxCacheEntries: 2, maxCacheBytes: 65536 } : {});
  let first: unknown = null;
  for (const m of msgs) {
    try {
      ch.message(m.type, m.body);
    } catch (err) {
      if (!(err instanceof DeskrecError)) return classify(err, '');
      first ??= err;
    }
    const s = ch.state.shape;
    if (s !== null) {
      if (s.rgba.length !== s.width * s.height * 4 || s.width < 1 || s.height < 1) throw new Error(`cursor shape ${s.width}x${s.height} with ${s.rgba.length} bytes`);
      if (s.hotX < 0 || s.hotX > s.width || s.hotY < 0 || s.hotY > s.height) throw new Error(`hot spot (${s.hotX},${s.hotY}) outside ${s.width}x${s.height}`);
    }
    if (small === 1 && ch.cacheSize > 2) throw new Error(`cursor cache holds ${ch.cacheSize} entries, limit 2`);
  }
  return classify(first, `${msgs.length} messages`);
}

/* ------------------------------------------------------------------------------------------------ */
/* Target: spice-link                                                                                */

/** A made-up server side of a link: header, reply, result, then messages (mini or full header). */
function linkStream(rng: Rng, corpus: SpiceCorpus): Uint8Array {
  const key = corpus.pubKey !== null && rng.chance(0.9) ? corpus.pubKey : rng.bytes(162);
  const mini = rng.chance(0.8);
  const common = [rng.chance(0.95) ? (mini ? 0b1011 : 0b0011) : rng.u32()];
  const channel = Array.from({ length: rng.chance(0.9) ? rng.int(2) : rng.pick([64, 65]) }, () => rng.u32());
  const reply = ByteWriter.le().u32(rng.chance(0.93) ? 0 : rng.pick([1, 3, 5, 7, 99])).bytes(key).u32(common.length).u32(channel.length)
    .u32(rng.chance(0.95) ? 4 + 162 + 12 : rng.pick([0, 0xffffffff, 4000]));
  for (const c of [...common, ...channel.slice(0, 66)]) reply.u32(c);
  const body = reply.finish();
  const o = ByteWriter.le().u32(rng.chance(0.97) ? 0x51444552 : rng.u32()).u32(rng.chance(0.97) ? 2 : rng.pick([1, 3])).u32(2)
    .u32(rng.chance(0.95) ? body.length : rng.pick([0, 3, 4097, 0xffffffff])).bytes(body)
    .u32(rng.chance(0.93) ? 0 : rng.pick([5, 7, 9, 1]));
  let serial = 1n;
  const msg = (type: number, b: Uint8Array): void => {
    if (mini) o.u16(type).u32(b.length).bytes(b);
    else o.u64(serial++).u16(type).u32(b.length).u32(rng.chance(0.95) ? 0 : 1).bytes(b);
  };
  for (let n = rng.range(0, 12); n > 0; n--) {
    const k = rng.int(14);
    if (k === 0) msg(3, ByteWriter.le().u32(rng.u32()).u32(rng.chance(0.8) ? rng.range(1, 20) : rng.pick([0, 0xffffffff])).finish()); // SET_ACK
    else if (k === 1) msg(4, ByteWriter.le().u32(rng.u32()).u64(BigInt(rng.u32())).bytes(rng.bytes(rng.int(64))).finish()); // PING
    else if (k === 2) {
      const text = rng.bytes(rng.int(40));
      msg(7, ByteWriter.le().u64(0n).u32(0).u32(0).u32(0).u32(rng.chance(0.9) ? text.length : rng.pick([0xffffffff, 4097])).bytes(text).finish()); // NOTIFY
    } else if (k === 3) msg(rng.pick([1, 2, 5, 6, 8, 9, 50, 100]), rng.bytes(rng.int(16)));
    else if (k === 4) msg(103, ByteWriter.le().u32(rng.u32()).u32(1).u32(3).u32(rng.int(3)).u32(rng.int(2)).u32(10).u32(rng.u32()).u32(rng.chance(0.5) ? 0 : rng.u32()).finish()); // INIT
    else if (k === 5) {
      const n2 = rng.chance(0.9) ? rng.int(5) : rng.pick([256, 257, 0xffffffff]);
      const b = ByteWriter.le().u32(n2);
      for (let i = 0; i < Math.min(n2, 5); i++) b.u8(rng.pick([CHANNEL.DISPLAY, CHANNEL.CURSOR, CHANNEL.INPUTS, 9])).u8(rng.int(2));
      msg(104, b.finish()); // CHANNELS_LIST
    } else if (k === 6) msg(105, ByteWriter.le().u16(3).u16(rng.int(3)).finish());
    else if (k === 7) msg(106, ByteWriter.le().u32(rng.u32()).finish());
    else if (k === 8) {
      const name = rng.bytes(rng.int(20));
      msg(113, ByteWriter.le().u32(rng.chance(0.9) ? name.length : rng.pick([4097, 0xffffffff])).bytes(name).finish());
    } else if (k === 9) msg(114, rng.bytes(rng.chance(0.9) ? 16 : rng.int(16)));
    else if (k === 10) msg(rng.range(107, 130), rng.bytes(rng.int(12)));
    else if (k === 11) msg(rng.int(0x10000), rng.bytes(rng.int(8)));
    else if (k === 12) { o.u16(rng.int(300)).u32(rng.pick(HUGE32)); }
    else o.bytes(rng.bytes(rng.range(1, 12)));
  }
  return o.finish();
}

/** Serialisation: engine.ts `encodeReplayInput`, flags bit 0: a password, bit 1: a display channel instead of main. */
function generateLink(rng: Rng, corpus: SpiceCorpus): Uint8Array {
  let bytes: Uint8Array;
  const mains = corpus.fixtures.map((f) => f.streams.get(0)).filter((s) => s !== undefined);
  if (mains.length > 0 && rng.chance(0.4)) {
    const s = rng.pick(mains);
    bytes = s.bytes.subarray(0, Math.min(s.bytes.length, rng.chance(0.7) ? 2048 : 1 << 16));
    for (let k = rng.pick([1, 1, 2, 3]); k > 0; k--) {
      const ends = s.ends.filter((e) => e + 6 <= bytes.length);
      if (rng.chance(0.3) && ends.length > 3) {
        // A message header of the recorded stream: its size or type set to an odd value.
        const at = rng.pick(ends.slice(2));
        const out = bytes.slice();
        const v = new DataView(out.buffer);
        if (rng.chance(0.6)) v.setUint32(at + 2, rng.pick([...HUGE32, 0, v.getUint32(at + 2, true) + 1]), true);
        else v.setUint16(at, rng.pick([...HUGE16, 0, 8, 101, 103, 104, 119]), true);
        bytes = out;
      } else {
        bytes = mutate(rng, bytes);
      }
    }
  } else {
    bytes = linkStream(rng, corpus);
    if (rng.chance(0.3)) bytes = mutateTimes(rng, bytes, rng.range(1, 3));
  }
  const flags = (rng.chance(0.2) ? 1 : 0) | (rng.chance(0.2) ? 2 : 0);
  const pieces: { t_ms: number; data: Uint8Array }[] = [];
  let p = 0;
  let t = 0;
  while (p < bytes.length) {
    const n = rng.chance(0.3) ? rng.range(1, 8) : rng.range(1, 4096);
    pieces.push({ t_ms: t, data: bytes.subarray(p, Math.min(bytes.length, p + n)) });
    p += n;
    t += rng.int(20);
  }
  return encodeReplayInput(flags, pieces, false);
}

function executeLink(input: Uint8Array): Outcome {
  const { flags, chunks } = decodeReplayInput(input, false);
  const transport = new ReplayTransport(0, 'fuzz');
  const state: { err: unknown; closed: boolean; messages: number } = { err: null, closed: false, messages: 0 };
  const display = (flags & 2) !== 0;
  let channel: SpiceChannel | null = null;
  const main = new MainChannel((type, body) => { channel?.send(type, body); }, { init: () => undefined, channels: () => undefined });
  channel = new SpiceChannel(transport, {
    connectionId: 7, channelType: display ? CHANNEL.DISPLAY : CHANNEL.MAIN, channelId: 0, channelCaps: [1], password: (flags & 1) !== 0 ? 'fuzz-password' : null, name: display ? 'display' : 'main',
  }, {
    ready: () => undefined,
    message: (type, body) => {
      state.messages++;
      if (!display) main.message(type, body);
    },
    batchEnd: () => undefined,
    notify: () => undefined,
    closed: (err) => { state.closed = true; state.err = err; },
  });
  channel.start();
  for (const c of chunks) {
    if (state.closed) break;
    transport.feed(c.data, c.t_ms);
  }
  transport.end();
  return classify(state.err, `${state.messages} messages`);
}

/* ------------------------------------------------------------------------------------------------ */
/* Target: spice-session                                                                             */

/** Serialisation: engine.ts `encodeReplayInput` with streams, flags bit 0: a password. */
function encodeStreamChunks(chunks: readonly StreamChunk[], password: boolean): Uint8Array {
  return encodeReplayInput(password ? 1 : 0, chunks, true);
}

function generateSession(rng: Rng, corpus: SpiceCorpus): Uint8Array {
  if (corpus.fixtures.length === 0) return encodeStreamChunks([{ stream: 0, t_ms: 0, data: rng.bytes(rng.range(1, 200)) }], false);
  const f = rng.pick(corpus.fixtures);
  // Which stream to damage: mostly the display channel.
  const target = rng.chance(0.7) ? 1 : rng.chance(0.5) ? 0 : 2;
  const s = f.streams.get(target) ?? f.streams.get(1);
  if (s === undefined) return encodeStreamChunks(f.chunks, f.password);
  // Mutations in a prefix of the stream; the rest is dropped.
  const len = Math.min(s.bytes.length, rng.chance(0.6) ? rng.range(64, 64 * 1024) : rng.range(64, 1 << 20));
  let bytes = s.bytes.subarray(0, len);
  for (let k = rng.pick([1, 1, 1, 2, 3, 5]); k > 0; k--) {
    const ends = s.ends.filter((e) => e + 6 <= bytes.length).slice(2);
    const r = rng.int(10);
    if (r < 3 && ends.length > 0) {
      const at = rng.pick(ends);
      const out = bytes.slice();
      const v = new DataView(out.buffer);
      if (rng.chance(0.6)) v.setUint32(at + 2, rng.pick([...HUGE32, 0, 1, v.getUint32(at + 2, true) + rng.pick([1, -1, 4])]) >>> 0, true);
      else v.setUint16(at, rng.pick([...HUGE16, 0, 3, 4, 8, 101, 102, 103, 104, 122, 123, 302, 304, 314, 315, 318, 320]), true);
      bytes = out;
    } else if (r < 4) {
      // A message of another fixture's display stream spliced in at a message boundary.
      const other = rng.pick(corpus.fixtures).streams.get(1);
      const m = other === undefined || other.messages.length === 0 ? null : rng.pick(other.messages);
      const at = ends.length > 0 ? rng.pick(ends) : bytes.length;
      if (m !== null) bytes = concat([bytes.subarray(0, at), ByteWriter.le().u16(m.type).u32(m.body.length).bytes(m.body).finish(), bytes.subarray(at)]);
    } else {
      const donor = rng.chance(0.2) ? rng.pick(corpus.fixtures).streams.get(target)?.bytes : undefined;
      bytes = mutate(rng, bytes, donor);
    }
  }
  // Re-cut: the mutated stream at the recorded boundaries (scaled), or at random, keeping the other streams.
  const others = f.chunks.filter((c) => c.stream !== target);
  const own = f.chunks.filter((c) => c.stream === target);
  const pieces: StreamChunk[] = [];
  if (rng.chance(0.7)) {
    let prev = 0;
    let acc = 0;
    for (let i = 0; i < own.length && prev < bytes.length; i++) {
      acc += own[i]?.data.length ?? 0;
      const end = i === own.length - 1 ? bytes.length : Math.min(bytes.length, acc);
      if (end > prev) pieces.push({ stream: target, data: bytes.subarray(prev, end), t_ms: own[i]?.t_ms ?? 0 });
      prev = Math.max(prev, end);
    }
    if (prev < bytes.length) pieces.push({ stream: target, data: bytes.subarray(prev), t_ms: own[own.length - 1]?.t_ms ?? 0 });
  } else {
    let p = 0;
    let i = 0;
    while (p < bytes.length) {
      const n = rng.chance(0.3) ? rng.range(1, 16) : rng.range(1, 65536);
      pieces.push({ stream: target, data: bytes.subarray(p, Math.min(bytes.length, p + n)), t_ms: own[Math.min(i, own.length - 1)]?.t_ms ?? 0 });
      p += n;
      i++;
    }
  }
  // Merge with the other streams in time order (the recorded order where times tie).
  const merged: StreamChunk[] = [];
  let a = 0;
  for (const c of others) {
    while (a < pieces.length && (pieces[a]?.t_ms ?? 0) <= c.t_ms) merged.push(pieces[a++] as StreamChunk);
    merged.push(c);
  }
  while (a < pieces.length) merged.push(pieces[a++] as StreamChunk);
  const cut = rng.chance(0.2) ? rng.range(1, merged.length) : merged.length;
  return encodeStreamChunks(merged.slice(0, cut), f.password);
}

async function executeSession(input: Uint8Array, deadline: number): Promise<Outcome> {
  const { flags, chunks } = decodeReplayInput(input, true);
  const out = await replaySpiceChunks(chunks, checkFrame, { password: (flags & 1) !== 0, deadline });
  return replayVerdict(out, chunks.length, deadline, 'session');
}

/* ------------------------------------------------------------------------------------------------ */
/* The group                                                                                         */

/**
 * A display channel may legitimately hold a primary surface (up to 256 MiB), the image cache (up to
 * 160 MiB), the GLZ window (up to 128 MiB), an off-screen surface and an image being decoded at once: the
 * targets that run one get 1 GiB; every other target, DEFAULT_LIMITS' 512 MiB.
 */
const DISPLAY_LIMITS: Limits = { ...DEFAULT_LIMITS, memoryBytes: 1024 * 1024 * 1024 };

/** The SPICE targets as the engine runs them. */
export const SPICE = targetGroup('spice', {
  'spice-quic': { generate: generateQuic, execute: executeQuic },
  'spice-lz': { generate: generateLz, execute: executeLz },
  'spice-glz': { generate: generateGlz, execute: executeGlz },
  'spice-lz4': { generate: generateLz4, execute: executeLz4 },
  'spice-bitmap': { generate: generateBitmap, execute: executeBitmap },
  'spice-jpeg': { generate: generateJpeg, execute: executeJpeg },
  'spice-wire': { generate: generateWire, execute: executeWire },
  'spice-canvas': { generate: generateCanvas, execute: executeCanvas },
  'spice-display': { generate: generateDisplay, execute: executeDisplay, limits: DISPLAY_LIMITS },
  'spice-cursor': { generate: generateCursor, execute: executeCursor },
  'spice-link': { generate: generateLink, execute: executeLink },
  'spice-session': { generate: generateSession, execute: executeSession, limits: DISPLAY_LIMITS },
}, (root) => loadSpiceCorpus(root), prepareSamples);

/** One SPICE target's name. */
export type SpiceTargetName = (typeof SPICE.targets)[number];
