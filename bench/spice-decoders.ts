/**
 * SPICE image decoder throughput on real captures, per image codec, plus the whole SPICE client replaying
 * each capture beside the RFB client replaying QEMU VNC captures.
 *
 * Captures: recorded at bench time with the real CLI (`deskrec record spice://… --raw`) against QEMU
 * started by the test harness, booting the text-scrolling guest: per display device (`-vga std`, whose
 * simple display path sends ≤ 32-pixel-wide strips, and `-vga qxl`, whose DRM driver sends large images),
 * one capture per `--prefer-compression` (auto_glz = QEMU's default, quic, lz, off), and one more QEMU per
 * device with `zlib-glz-wan-compression=always,jpeg-wan-compression=always`, which makes spice-server
 * wrap GLZ in zlib (ZLIB_GLZ_RGB) and send the qxl guest's "photographic" images (the ones auto_glz sends
 * as QUIC) as JPEG. `BENCH_SPICE_CAPTURES=DIR` uses captures recorded earlier instead (every
 * `DIR/*.deskcap` and `DIR/NAME/session.deskcap`; `BENCH_SPICE_KEEP=1` keeps the recorded ones and prints
 * where). Without QEMU the committed fixtures/spice/ captures are used, if present.
 *
 * Not in any capture, and why: LZ4 (spice-server sends it only over a plain unix socket, which deskrec
 * does not connect to; over TCP `--prefer-compression lz4` gets LZ_RGB), LZ_PLT and JPEG_ALPHA (the
 * guest's surfaces are 32-bit without alpha). LZ4 is measured on synthetic payloads: the BITMAP images of
 * the `off` captures compressed here, one LZ4 block per image (a greedy LZ4 block encoder below; liblz4
 * would find somewhat longer matches), checked against the BITMAP decode.
 *
 * Per codec: every image of that codec in the capture's display channel, in capture order, decoded by
 * src/protocol/spice/images/ (decoders only: no canvas, no surface, no cache), each call timed; GLZ and
 * ZLIB_GLZ images are decoded in order through one GlzWindow per pass, as a session does. One untimed
 * pass first (JIT warm-up and a check that every image decodes to its declared size), then passes until
 * at least a second of decoding. Wire MB/s counts the image payloads as on the wire (BITMAP: the pixel
 * rows; ZLIB_GLZ: the zlib bytes); Mpixel/s the decoded images' width × height.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readCapture, type Capture } from '../src/capture/deskcap/reader';
import { KIND } from '../src/capture/deskcap/format';
import { ReplaySource } from '../src/sources/replay';
import { CHANNEL, MSG_DISPLAY } from '../src/protocol/spice/constants';
import {
  BITMAP_FLAG, BITMAP_FMT, decodeBitmap, decodeJpeg, decodeJpegAlpha, decodeLz, decodeLz4, decodeQuic, decodeZlibGlz, GlzWindow,
  type DecodedImage, type SpicePalette,
} from '../src/protocol/spice/images/index';
import {
  IMAGE_TYPE, readAlphaBlend, readComposite, readCopy, readFill, readOpaque, readRop3, readTransparent, type Brush, type ImageRef,
} from '../src/protocol/spice/display/wire';
import { ByteWriter } from '../src/wire/writer';
import { sleep } from './proc';
import { loadSpiceHarness, type SpiceHarness, type SpiceOptions } from './spice-live';
import { vncDecoderBench } from './vnc-decoders';
import { table, type Row } from './table';

const ROOT = path.resolve(__dirname, '..', '..');
/** Decoding time measured per row, at least. */
const MIN_MS = 1000;
/** Seconds after the guest's text shows before recording: the console scrolls once its rows are full. */
const SCROLL_WAIT_S = 8;

/** One QEMU configuration and the captures recorded from it. */
interface CaptureConfig {
  name: string;
  server: SpiceOptions;
  prefer: string[];
}

const WAN = { zlibGlzWanCompression: 'always', jpegWanCompression: 'always' } as const;
const CONFIGS: CaptureConfig[] = [
  { name: 'std', server: { vga: 'std' }, prefer: ['auto_glz', 'quic', 'lz', 'off'] },
  { name: 'qxl', server: { vga: 'qxl' }, prefer: ['auto_glz', 'quic', 'lz', 'off'] },
  { name: 'std-wan', server: { vga: 'std', ...WAN }, prefer: ['auto_glz'] },
  { name: 'qxl-wan', server: { vga: 'qxl', ...WAN }, prefer: ['auto_glz'] },
];

const CODEC: Record<number, string> = {
  [IMAGE_TYPE.BITMAP]: 'BITMAP', [IMAGE_TYPE.QUIC]: 'QUIC', [IMAGE_TYPE.LZ_RGB]: 'LZ_RGB', [IMAGE_TYPE.LZ_PLT]: 'LZ_PLT',
  [IMAGE_TYPE.GLZ_RGB]: 'GLZ_RGB', [IMAGE_TYPE.ZLIB_GLZ_RGB]: 'ZLIB_GLZ_RGB', [IMAGE_TYPE.LZ4]: 'LZ4', [IMAGE_TYPE.JPEG]: 'JPEG',
  [IMAGE_TYPE.JPEG_ALPHA]: 'JPEG_ALPHA',
};

/** One image ready to decode. GLZ-family images decode through the pass's window. */
interface Item {
  codec: string;
  wireBytes: number;
  pixels: number;
  width: number;
  height: number;
  sync?: (glz: GlzWindow) => DecodedImage;
  async?: () => Promise<DecodedImage>;
}

/** A capture's display channel, as images. */
interface Extracted {
  name: string;
  capture: Capture;
  items: Item[];
  /** Image references that carry no payload (FROM_CACHE, SURFACE) or could not be resolved. */
  skipped: number;
  displayBytes: number;
  seconds: number;
}

/** The images a draw message references (sources, brush patterns, composite masks; not 1-bit QMasks). */
function imagesOf(type: number, body: Uint8Array): (ImageRef | null)[] {
  const brush = (b: Brush): ImageRef | null => (b.type === 'pattern' ? b.image : null);
  switch (type) {
    case MSG_DISPLAY.DRAW_COPY:
    case MSG_DISPLAY.DRAW_BLEND:
      return [readCopy(body).op.src];
    case MSG_DISPLAY.DRAW_FILL:
      return [brush(readFill(body).brush)];
    case MSG_DISPLAY.DRAW_OPAQUE: {
      const m = readOpaque(body);
      return [m.src, brush(m.brush)];
    }
    case MSG_DISPLAY.DRAW_ROP3: {
      const m = readRop3(body);
      return [m.src, brush(m.brush)];
    }
    case MSG_DISPLAY.DRAW_TRANSPARENT:
      return [readTransparent(body).src];
    case MSG_DISPLAY.DRAW_ALPHA_BLEND:
      return [readAlphaBlend(body).src];
    case MSG_DISPLAY.DRAW_COMPOSITE: {
      const m = readComposite(body);
      return [m.src, m.mask];
    }
    default:
      return [];
  }
}

/** Concatenated server bytes of one stream. */
function streamBytes(cap: Capture, stream: number): Buffer {
  return Buffer.concat(cap.records.filter((r) => r.kind === KIND.IN && r.stream === stream).map((r) => r.data));
}

/** Splits a display stream into messages: link header and reply, the 4-byte link result, then mini-header messages. */
function* messages(buf: Buffer): Generator<{ type: number; body: Uint8Array }> {
  if (buf.length < 16) return;
  const replyLen = buf.readUInt32LE(12);
  const reply = 16;
  const capsOffset = buf.readUInt32LE(reply + 4 + 162 + 8);
  const common = buf.readUInt32LE(reply + capsOffset);
  // QEMU's spice-server always offers the mini header (common cap 3), and deskrec asks for it.
  if ((common & (1 << 3)) === 0) throw new Error('the server did not offer the SPICE mini header');
  let p = reply + replyLen + 4;
  while (p + 6 <= buf.length) {
    const type = buf.readUInt16LE(p);
    const size = buf.readUInt32LE(p + 2);
    if (p + 6 + size > buf.length) return; // the recording stopped inside this message
    yield { type, body: buf.subarray(p + 6, p + 6 + size) };
    p += 6 + size;
  }
}

/** Reads a capture's display channel(s) into decodable items, resolving palettes as the session would. */
function extract(name: string, capture: Capture): Extracted {
  const items: Item[] = [];
  let skipped = 0;
  let displayBytes = 0;
  const streams = capture.records.filter((r) => r.kind === KIND.OPEN)
    .filter((r) => (JSON.parse(Buffer.from(r.data).toString('utf8')) as { channel?: number }).channel === CHANNEL.DISPLAY)
    .map((r) => r.stream);
  for (const stream of streams) {
    const palettes = new Map<bigint, SpicePalette>();
    const palette = (ref: ImageRef, flags: number): SpicePalette | null | undefined => {
      const p = ref.palette;
      if (p === undefined || p === null) return null;
      if (p.kind === 'cached') return palettes.get(p.unique);
      const pal = { unique: p.unique, ents: p.ents };
      if ((flags & BITMAP_FLAG.PAL_CACHE_ME) !== 0) palettes.set(p.unique, pal);
      return pal;
    };
    const buf = streamBytes(capture, stream);
    displayBytes += buf.length;
    for (const m of messages(buf)) {
      if (m.type === MSG_DISPLAY.INVAL_ALL_PALETTES || m.type === MSG_DISPLAY.RESET) palettes.clear();
      for (const ref of imagesOf(m.type, m.body)) {
        if (ref === null) continue;
        const codec = CODEC[ref.type];
        const data = ref.data;
        const base = { codec: codec ?? '', pixels: ref.width * ref.height, width: ref.width, height: ref.height };
        if (ref.type === IMAGE_TYPE.BITMAP && ref.bitmap !== undefined) {
          const b = ref.bitmap;
          const pal = palette(ref, b.flags);
          if (pal === undefined) { skipped++; continue; }
          const bmp = { format: b.format, flags: b.flags, width: ref.width, height: ref.height, stride: b.stride, data: b.data, palette: pal };
          items.push({ ...base, wireBytes: b.data.length, sync: () => decodeBitmap(bmp) });
        } else if (codec === undefined || data === undefined) {
          skipped++;
        } else if (ref.type === IMAGE_TYPE.LZ_PLT) {
          const pal = palette(ref, ref.bitmap?.flags ?? 0);
          if (pal === undefined) { skipped++; continue; }
          items.push({ ...base, wireBytes: data.length, sync: () => decodeLz(data, { palette: pal }) });
        } else if (ref.type === IMAGE_TYPE.QUIC) {
          items.push({ ...base, wireBytes: data.length, sync: () => decodeQuic(data) });
        } else if (ref.type === IMAGE_TYPE.LZ_RGB) {
          items.push({ ...base, wireBytes: data.length, sync: () => decodeLz(data) });
        } else if (ref.type === IMAGE_TYPE.GLZ_RGB) {
          items.push({ ...base, wireBytes: data.length, sync: (w) => w.decode(data) });
        } else if (ref.type === IMAGE_TYPE.ZLIB_GLZ_RGB) {
          const glzSize = ref.glzSize ?? 0;
          items.push({ ...base, wireBytes: data.length, sync: (w) => decodeZlibGlz(w, data, glzSize) });
        } else if (ref.type === IMAGE_TYPE.LZ4) {
          items.push({ ...base, wireBytes: data.length, sync: () => decodeLz4(data, ref.width, ref.height) });
        } else if (ref.type === IMAGE_TYPE.JPEG) {
          items.push({ ...base, wireBytes: data.length, async: () => decodeJpeg(data) });
        } else {
          const ja = ref.jpegAlpha ?? { flags: 0, jpegSize: 0 };
          items.push({ ...base, wireBytes: data.length, async: () => decodeJpegAlpha(data, ja.jpegSize, ja.flags) });
        }
      }
    }
  }
  const ins = capture.records.filter((r) => r.kind === KIND.IN);
  const seconds = ins.length < 2 ? 0 : ((ins[ins.length - 1]?.t_us ?? 0) - (ins[0]?.t_us ?? 0)) / 1e6;
  return { name, capture, items, skipped, displayBytes, seconds };
}

const read32 = (b: Uint8Array, p: number): number => ((b[p] as number) | ((b[p + 1] as number) << 8) | ((b[p + 2] as number) << 16) | ((b[p + 3] as number) << 24)) >>> 0;

/**
 * A greedy LZ4 block encoder (one hash of 4 bytes per position, 64 KiB window, the format's end rules:
 * the last 5 bytes are literals and no match starts in the last 12), for the synthetic LZ4 payloads.
 */
function lz4CompressBlock(src: Uint8Array): Uint8Array {
  const n = src.length;
  const out = new Uint8Array(n + Math.ceil(n / 255) + 16);
  const table = new Int32Array(1 << 16).fill(-1);
  let op = 0;
  let anchor = 0;
  let ip = 0;
  const lengthBytes = (l: number): void => {
    while (l >= 255) { out[op++] = 255; l -= 255; }
    out[op++] = l;
  };
  const literals = (end: number): number => {
    const litLen = end - anchor;
    const tokenPos = op++;
    if (litLen >= 15) lengthBytes(litLen - 15);
    out.set(src.subarray(anchor, end), op);
    op += litLen;
    return tokenPos;
  };
  while (ip < n - 12) {
    const seq = read32(src, ip);
    const h = Math.imul(seq, 2654435761) >>> 16;
    const ref = table[h] as number;
    table[h] = ip;
    if (ref < 0 || ip - ref > 65535 || read32(src, ref) !== seq) { ip++; continue; }
    let len = 4;
    while (ip + len < n - 5 && src[ref + len] === src[ip + len]) len++;
    const litLen = ip - anchor;
    const tokenPos = literals(ip);
    const off = ip - ref;
    out[op++] = off & 0xff;
    out[op++] = off >> 8;
    const ml = len - 4;
    if (ml >= 15) lengthBytes(ml - 15);
    out[tokenPos] = (Math.min(litLen, 15) << 4) | Math.min(ml, 15);
    ip += len;
    anchor = ip;
  }
  const litLen = n - anchor;
  const tokenPos = literals(n);
  out[tokenPos] = Math.min(litLen, 15) << 4;
  return out.subarray(0, op);
}

/** Most pixels of BITMAP images turned into synthetic LZ4 payloads per capture (bounds the encoding time). */
const LZ4_MAX_PIXELS = 16 << 20;

/** Synthetic LZ4 items from a capture's 32-bit BITMAP images (SPICE LZ4 payload: top_down, format, BE-sized blocks). */
function syntheticLz4(ex: Extracted): Item[] {
  const out: Item[] = [];
  let pixels = 0;
  const glz = new GlzWindow();
  for (const it of ex.items) {
    if (it.codec !== 'BITMAP' || it.sync === undefined || pixels >= LZ4_MAX_PIXELS) continue;
    const ref = it.sync(glz);
    const rgba = ref.rgba;
    // The 32BIT layout spice-server compresses: B, G, R, x per pixel, rows top-down.
    const raw = new Uint8Array(it.width * it.height * 4);
    for (let i = 0; i < raw.length; i += 4) {
      raw[i] = rgba[i + 2] as number;
      raw[i + 1] = rgba[i + 1] as number;
      raw[i + 2] = rgba[i] as number;
      raw[i + 3] = 0;
    }
    const block = lz4CompressBlock(raw);
    const payload = new ByteWriter(6 + block.length).u8(1).u8(BITMAP_FMT.THIRTY_TWO_BIT).u32(block.length).bytes(block).finish();
    const { width, height } = it;
    const check = decodeLz4(payload, width, height);
    if (Buffer.compare(Buffer.from(check.rgba), Buffer.from(rgba)) !== 0) throw new Error('synthetic LZ4: the payload does not decode to its source');
    out.push({ codec: 'LZ4', wireBytes: payload.length, pixels: it.pixels, width, height, sync: () => decodeLz4(payload, width, height) });
    pixels += it.pixels;
  }
  return out;
}

/** One timed pass over `items` (GLZ-family through a fresh window); adds each codec's decode ms to `ms`. */
async function pass(items: Item[], ms: Map<string, number>, check: boolean): Promise<void> {
  const glz = new GlzWindow();
  for (const it of items) {
    const t = performance.now();
    const img = it.sync !== undefined ? it.sync(glz) : await (it.async ?? (() => Promise.reject(new Error('no decoder'))))();
    ms.set(it.codec, (ms.get(it.codec) ?? 0) + performance.now() - t);
    if (check && (img.width !== it.width || img.height !== it.height)) {
      throw new Error(`${it.codec} image decoded to ${img.width}x${img.height}, declared ${it.width}x${it.height}`);
    }
  }
}

/** Times `items` (all codecs together, as they come) until each was decoded for at least MIN_MS. */
async function measure(items: Item[]): Promise<Map<string, { ms: number; reps: number }>> {
  await pass(items, new Map(), true);
  const ms = new Map<string, number>();
  let reps = 0;
  const t0 = performance.now();
  while (reps < 2 || Math.min(...ms.values()) < MIN_MS) {
    await pass(items, ms, false);
    reps++;
    if (performance.now() - t0 > 60 * MIN_MS) break; // a codec with a tiny share: stop anyway
  }
  return new Map([...ms.entries()].map(([k, v]) => [k, { ms: v, reps }]));
}

/** Rows for one capture: one per codec present (GLZ-family codecs measured together, in order). */
async function decoderRows(ex: Extracted, synthetic: boolean): Promise<Row[]> {
  const rows: Row[] = [];
  const glzFamily = ex.items.filter((i) => i.codec === 'GLZ_RGB' || i.codec === 'ZLIB_GLZ_RGB');
  const groups: Item[][] = glzFamily.length > 0 ? [glzFamily] : [];
  for (const codec of [...new Set(ex.items.map((i) => i.codec))]) {
    if (codec !== 'GLZ_RGB' && codec !== 'ZLIB_GLZ_RGB') groups.push(ex.items.filter((i) => i.codec === codec));
  }
  for (const group of groups) {
    const times = await measure(group);
    for (const [codec, { ms, reps }] of times) {
      const mine = group.filter((i) => i.codec === codec);
      const bytes = mine.reduce((a, i) => a + i.wireBytes, 0);
      const pixels = mine.reduce((a, i) => a + i.pixels, 0);
      const s = ms / 1000;
      rows.push({
        capture: ex.name,
        codec: `${codec}${synthetic ? ' (synthetic)' : ''}`,
        images: mine.length,
        'px/image': Math.round(pixels / mine.length),
        'wire KB': Math.round(bytes / 1024),
        'bits/px': ((bytes * 8) / pixels).toFixed(2),
        'wire MB/s': ((bytes * reps) / s / 1e6).toFixed(1),
        'Mpixel/s': ((pixels * reps) / s / 1e6).toFixed(1),
        'µs/image': ((ms * 1000) / (mine.length * reps)).toFixed(1),
      });
    }
  }
  return rows;
}

/** The whole SPICE client (channels, display state, decoders, canvas, surface) replaying a capture as fast as it goes. */
async function replayRow(ex: Extracted): Promise<Row> {
  const consumer = { onFrame: (): void => undefined, whenReady: (): Promise<void> => Promise.resolve() };
  const inBytes = ex.capture.records.filter((r) => r.kind === KIND.IN).reduce((a, r) => a + r.data.length, 0);
  const pixels = ex.items.reduce((a, i) => a + i.pixels, 0);
  const once = async (): Promise<void> => {
    // durationMs far away: every record is fed (the END record's frame count would stop a replay early).
    await new ReplaySource(ex.capture, 'max').run(consumer, { signal: new AbortController().signal, durationMs: 1e12 });
  };
  await once();
  let reps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < MIN_MS || reps < 2) {
    await once();
    reps++;
  }
  const s = (performance.now() - t0) / 1000;
  const kinds = new Map<string, number>();
  for (const i of ex.items) kinds.set(i.codec, (kinds.get(i.codec) ?? 0) + i.wireBytes);
  return {
    capture: `spice ${ex.name}`,
    content: [...kinds.entries()].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([k]) => k).join('+') || '-',
    'wire KB': Math.round(inBytes / 1024),
    'wire MB/s': ((inBytes * reps) / s / 1e6).toFixed(1),
    'Mpixel/s': ((pixels * reps) / s / 1e6).toFixed(1),
    'x real time': ex.seconds > 0 ? `${((ex.seconds * reps) / s).toFixed(1)}x` : '-',
  };
}

/** Records the captures with the CLI into `dir`; returns their paths by name. */
async function recordCaptures(h: SpiceHarness, dir: string, seconds: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const bin = path.join(ROOT, 'bin', 'deskrec.js');
  for (const cfg of CONFIGS) {
    const srv = await h.startQemuSpice(cfg.server);
    try {
      await srv.waitForText(90000);
      await sleep(SCROLL_WAIT_S * 1000);
      for (const pref of cfg.prefer) {
        const name = `${cfg.name}-${pref}`;
        const capDir = path.join(dir, name);
        await h.runTool(process.execPath, [bin, 'record', `spice://127.0.0.1:${srv.port}`, '--capture', capDir, '--raw',
          '--duration', String(seconds), '--quiet', '--prefer-compression', pref], { timeoutMs: (seconds + 60) * 1000 });
        out.set(name, path.join(capDir, 'session.deskcap'));
        console.error(`spice-decoders: recorded ${name} (${Math.round(statSync(path.join(capDir, 'session.deskcap')).size / 1024)} KB)`);
      }
    } finally {
      await srv.stop();
    }
  }
  return out;
}

/** Captures in a directory: NAME.deskcap and NAME/session.deskcap. */
function capturesIn(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(dir).sort()) {
    if (f.endsWith('.deskcap')) out.set(f.replace(/\.deskcap$/, ''), path.join(dir, f));
    else if (existsSync(path.join(dir, f, 'session.deskcap'))) out.set(f, path.join(dir, f, 'session.deskcap'));
  }
  return out;
}

/** What the SPICE decoder section measured, for bench/run.ts's JSON: the rows of its two tables. */
export interface SpiceDecodersReport {
  /** Where the captures came from. */
  source: string | null;
  /** Why the section did not run, or null. */
  skipped: string | null;
  /** Decoder throughput, one row per capture and codec (the first table). */
  decoders: Row[];
  /** Whole-client replay per capture, and the RFB client on QEMU VNC fixtures (the second table). */
  replay: Row[];
  /** Display-channel wire rate of each capture, MB/s. */
  wireMBPerS: { capture: string; mbPerS: number }[];
}

/**
 * Measures and prints two tables: decoder throughput per codec, and whole-client replay beside the RFB
 * client on QEMU VNC captures, and returns their rows. `seconds`: session time recorded per capture.
 */
export async function spiceDecoderBench(opts: { seconds: number }): Promise<SpiceDecodersReport> {
  let files: Map<string, string>;
  let source: string;
  let recordedDir: string | null = null;
  const given = process.env.BENCH_SPICE_CAPTURES;
  if (given !== undefined && given !== '') {
    files = capturesIn(given);
    source = `captures from ${given}`;
  } else {
    const h = await loadSpiceHarness();
    const missing = ['qemu-system-x86_64', 'apt-get', 'dpkg-deb', 'busybox', 'cpio'].filter((t) => {
      try { h.requireCommand(t); return false; } catch { return true; }
    });
    try {
      if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}`);
      recordedDir = mkdtempSync(path.join(tmpdir(), 'deskrec-bench-spicecap-'));
      files = await recordCaptures(h, recordedDir, opts.seconds);
      source = `${opts.seconds} s captures recorded now from QEMU (text-scrolling guest), deskrec record --raw --prefer-compression …`;
    } catch (err) {
      if (recordedDir !== null) rmSync(recordedDir, { recursive: true, force: true });
      recordedDir = null;
      const fixtures = path.join(ROOT, 'fixtures', 'spice');
      const why = err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err);
      if (!existsSync(fixtures)) {
        const skipped = `cannot record captures (${why}) and there is no fixtures/spice/`;
        console.log(`\nSPICE decoders: skipped, ${skipped}`);
        return { source: null, skipped, decoders: [], replay: [], wireMBPerS: [] };
      }
      files = capturesIn(fixtures);
      source = `fixtures/spice/ (recording failed: ${why})`;
    } finally {
      await h.stopAllServers();
    }
  }
  try {
    const extracted: Extracted[] = [];
    for (const [name, file] of files) {
      try {
        extracted.push(extract(name, readCapture(file)));
      } catch (err) {
        console.log(`SPICE decoders: ${name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const rows: Row[] = [];
    for (const ex of extracted) rows.push(...await decoderRows(ex, false));
    for (const ex of extracted.filter((e) => e.name.endsWith('-off'))) {
      const lz4 = syntheticLz4(ex);
      if (lz4.length > 0) rows.push(...await decoderRows({ ...ex, items: lz4 }, true));
    }
    table(`SPICE image decoders on real captures (${source}), decoders only, each image timed, GLZ through one window per pass`, rows);
    const skipped = extracted.filter((e) => e.skipped > 0).map((e) => `${e.name} ${e.skipped}`);
    if (skipped.length > 0) console.log(`\nImage references without a payload of their own (FROM_CACHE, SURFACE; not timed): ${skipped.join(', ')}`);
    const wireMBPerS = extracted.filter((e) => e.seconds > 0).map((e) => ({ capture: e.name, mbPerS: e.displayBytes / e.seconds / 1e6 }));
    console.log('\nDisplay-channel wire rate of each capture, MB/s (bytes / time between the first and last record): '
      + wireMBPerS.map((w) => `${w.capture} ${w.mbPerS.toFixed(2)}`).join(', '));

    const replay: Row[] = [];
    for (const ex of extracted) replay.push(await replayRow(ex));
    // The reference line: the RFB client on QEMU's own VNC captures (same QEMU, std VGA text mode), same run.
    const vncDir = mkdtempSync(path.join(tmpdir(), 'deskrec-bench-vncref-'));
    try {
      const fixtures = path.join(ROOT, 'fixtures', 'vnc');
      for (const f of ['qemu-raw', 'qemu-zrle', 'qemu-tight']) {
        if (existsSync(path.join(fixtures, `${f}.deskcap`))) copyFileSync(path.join(fixtures, `${f}.deskcap`), path.join(vncDir, `${f}.deskcap`));
      }
      for (const r of await vncDecoderBench(vncDir)) {
        replay.push({ capture: `vnc ${String(r.capture)}`, content: String(r.encodings), 'wire KB': r['wire KB'] ?? '-', 'wire MB/s': r['wire MB/s'] ?? '-', 'Mpixel/s': r['Mpixel/s'] ?? '-', 'x real time': '-' });
      }
    } finally {
      rmSync(vncDir, { recursive: true, force: true });
    }
    table('SPICE client replaying each capture (channels + display state + decoders + canvas + surface, no recording), beside the RFB client on QEMU VNC fixtures', replay);
    return { source, skipped: null, decoders: rows, replay, wireMBPerS };
  } finally {
    if (recordedDir !== null) {
      if (process.env.BENCH_SPICE_KEEP !== undefined) console.error(`spice-decoders: kept the captures in ${recordedDir}`);
      else rmSync(recordedDir, { recursive: true, force: true });
    }
  }
}

// `node dist-ts/bench/spice-decoders.js` runs this section alone (after `npm run build`).
if (require.main === module) {
  spiceDecoderBench({ seconds: Number(process.env.BENCH_SPICE_DECODE_SECONDS ?? 3) })
    .catch((err: unknown) => { console.error(err); process.exitCode = 1; });
}
