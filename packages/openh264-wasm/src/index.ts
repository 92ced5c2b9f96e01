/**
 * TypeScript binding for deskrec's WebAssembly build of Cisco's openh264 encoder
 * (see ../README.md). One call to loadOpenH264() instantiates one private wasm
 * module; encoders created from it share that module's memory and must be used
 * from the thread that loaded it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Type of an encoded frame: IDR, non-IDR intra, predicted, or skipped. */
export type FrameType = 'idr' | 'i' | 'p' | 'skip';

/** Rate control: a fixed quantiser (0..51) or a target bitrate. */
export type RateControl = { mode: 'qp'; qp: number } | { mode: 'bitrate'; bitsPerSecond: number };

/** Options for H264Encoder creation. */
export interface EncoderOptions {
  /** Width of the RGBA source in pixels (may be odd; the coded width is rounded up to even). */
  sourceWidth: number;
  /** Height of the RGBA source in pixels (may be odd; the coded height is rounded up to even). */
  sourceHeight: number;
  /** openh264 usage profile: screen content or camera video (both real-time). */
  usage: 'screen' | 'camera';
  /** Fixed QP or target bitrate. */
  rateControl: RateControl;
  /** Distance between IDR frames in frames; 0 means only the first frame and forced ones. */
  keyframeIntervalFrames: number;
  /** Highest frame rate the encoder should expect (rate control and level selection). */
  maxFrameRate: number;
}

/** Output of one encode() call. */
export interface EncodedFrame {
  /** NAL units without start codes, copied out of wasm memory. */
  nals: Uint8Array[];
  /** Type of the encoded picture. */
  frameType: FrameType;
}

/** Per-frame options of H264Encoder.encode(). */
export interface EncodeOptions {
  /** Code this frame as an IDR picture. */
  forceIdr?: boolean;
  /**
   * Change map: one byte per 16x16 macroblock of the coded picture (mbCols x mbRows, row-major), nonzero =
   * changed since the previous encoded frame. Unchanged macroblocks are coded as skips without analysis; the
   * map must not mark a changed macroblock as unchanged. Ignored for IDR frames.
   */
  changeMap?: Uint8Array;
  /**
   * Motion hints, used only with `changeMap`: up to MAX_MOTION_HINTS whole-pixel vectors saying where content
   * of this picture was in the previous one, relative to where it is now (a remote desktop's copy: its source
   * minus its destination). They replace openh264's own scroll detection for this frame
   * (patches/0202-motion-hints.patch): the hint that explains the most moved 8x8 blocks becomes the frame's
   * scroll vector, blocks that moved by it exactly are coded without search. An empty list says nothing
   * moved (no scroll detection at all); absent, openh264 detects scrolls itself. A wrong hint costs a little
   * analysis, never picture quality: it is checked against the pixels.
   */
  motionHints?: readonly MotionVector[];
}

/** A whole-pixel displacement (motion hint): content now at (x, y) was at (x + dx, y + dy) before. */
export interface MotionVector {
  dx: number;
  dy: number;
}

/** Most motion hints one frame takes (DESKREC_MAX_MOTION_HINTS in the patch). */
export const MAX_MOTION_HINTS = 4;

/**
 * How the conversion chooses chroma: 'plain' averages each 2x2 block's colour (the reference); 'sharp'
 * chooses each block's chroma and its four lumas together so the decoded picture is closest to the source
 * (see ../README.md, "Chroma modes"). Blocks of one colour (uniform, grey, or differing only in brightness) come
 * out the same in both modes.
 */
export type ChromaMode = 'plain' | 'sharp';

/**
 * Work of the last convert() in sharp mode, counted in 2x2 blocks of more than one colour that were not in the
 * converter's result cache (see setSharpBudget).
 */
export interface SharpStats {
  /** Blocks that went through the sharp solver. */
  solved: number;
  /** Blocks left with the plain result because the call's budget was spent. */
  overBudget: number;
}

/** Rectangle in source pixel coordinates. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Error thrown by this binding; `code` is a stable machine-readable identifier. */
export class OpenH264Error extends Error {
  /**
   * One of 'ENCODER_INIT_FAILED', 'ENCODE_FAILED', 'BAD_ARGUMENT', 'OUT_OF_MEMORY', 'ENCODER_DESTROYED',
   * 'CONVERTER_DESTROYED', 'LOAD_FAILED'.
   */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'OpenH264Error';
    this.code = code;
  }
}

/** A loaded openh264 module instance. */
export interface OpenH264 {
  /** Creates an encoder whose buffers live in this module instance's memory. */
  createEncoder(o: EncoderOptions): H264Encoder;
  /**
   * Creates a standalone RGBA → I420 converter (the encoder's staging frame, planes and conversion, without
   * an encoder) for a source of width x height pixels (integers in 2..16384; odd sizes padded to even).
   */
  createConverter(width: number, height: number): RgbaToI420;
}

/**
 * Damage-only RGBA → I420 conversion inside the wasm module, for encoders outside it: the same staging frame,
 * planes and C code as H264Encoder's putRgba/convert.
 */
export interface RgbaToI420 {
  /** Coded width: the source width rounded up to even. */
  readonly codedWidth: number;
  /** Coded height: the source height rounded up to even. */
  readonly codedHeight: number;
  /**
   * Luma plane (codedWidth x codedHeight, tightly packed): a view of wasm memory, not a copy. It shows the
   * planes as they are now, so copy it before the next convert() if it must outlive that; read the property
   * again after any call into the module (memory growth detaches old views).
   */
  readonly y: Uint8Array;
  /** U plane (codedWidth/2 x codedHeight/2): a view like `y`. */
  readonly u: Uint8Array;
  /** V plane (codedWidth/2 x codedHeight/2): a view like `y`. */
  readonly v: Uint8Array;
  /** Copies the rect's pixels (row by row, 4 bytes each, from src at srcOffset with srcStride bytes per row) into the staging frame. */
  putRgba(rect: Rect, src: Uint8Array, srcOffset: number, srcStride: number): void;
  /** Converts the rect of the staging frame (expanded outward to even coordinates) to I420. */
  convert(rect: Rect): void;
  /**
   * Converts the rect's pixels (row by row, 4 bytes each, from src at srcOffset with srcStride bytes per row)
   * straight to I420, a band of rows at a time through a small buffer inside the module, without the staging
   * frame (which then never needs to exist: 3 MB at 1024x768). The rect must be 2x2-aligned, so that each
   * 4:2:0 chroma sample's four pixels are in it: x and y even, its right edge even or the source's, its
   * bottom edge even or the source's. The staging frame does not see these pixels: a caller uses either
   * this or putRgba/convert for a picture.
   */
  convertFrom(rect: Rect, src: Uint8Array, srcOffset: number, srcStride: number): void;
  /** Chroma mode of later conversions (default 'plain'); converted samples keep what they were converted with. */
  setChroma(mode: ChromaMode): void;
  /**
   * Caps the sharp solver's work per convert() call: at most `blocksPerCall` (a positive integer) blocks that
   * miss the result cache are solved, later ones keep the plain result (cached results are still used); `null`:
   * no cap. The default, until this is called, is max(4096, blocks of the rect / 32), which text fits and which
   * keeps noise, photos and video within ~10 ms per 1080p frame (see ../README.md, "Chroma modes").
   */
  setSharpBudget(blocksPerCall: number | null): void;
  /** Work of the last convert() in sharp mode (zeros in plain mode). */
  sharpStats(): SharpStats;
  /** Frees the converter and its buffers; further calls throw CONVERTER_DESTROYED. */
  destroy(): void;
}

/** One openh264 encoder plus its RGBA staging frame and I420 planes. */
export interface H264Encoder {
  /** Coded width: sourceWidth rounded up to even. */
  readonly codedWidth: number;
  /** Coded height: sourceHeight rounded up to even. */
  readonly codedHeight: number;
  /** Macroblock columns of the coded picture: ceil(codedWidth / 16) (change map width). */
  readonly mbCols: number;
  /** Macroblock rows of the coded picture: ceil(codedHeight / 16) (change map height). */
  readonly mbRows: number;
  /** Copies the rect's pixels (row by row, 4 bytes each, from src at srcOffset with srcStride bytes per row) into the staging frame. */
  putRgba(rect: Rect, src: Uint8Array, srcOffset: number, srcStride: number): void;
  /** Converts the rect of the staging frame (expanded outward to even coordinates) to I420. */
  convert(rect: Rect): void;
  /**
   * Converts the rect's pixels (row by row, 4 bytes each, from src at srcOffset with srcStride bytes per row)
   * straight to I420, a band of rows at a time through a small buffer inside the module, without the staging
   * frame (which then never needs to exist: 3 MB at 1024x768). The rect must be 2x2-aligned, so that each
   * 4:2:0 chroma sample's four pixels are in it: x and y even, its right edge even or the source's, its
   * bottom edge even or the source's. The staging frame does not see these pixels: a caller uses either
   * this or putRgba/convert for a picture.
   */
  convertFrom(rect: Rect, src: Uint8Array, srcOffset: number, srcStride: number): void;
  /** Chroma mode of later conversions (default 'plain'); converted samples keep what they were converted with. */
  setChroma(mode: ChromaMode): void;
  /**
   * Caps the sharp solver's work per convert() call: at most `blocksPerCall` (a positive integer) blocks that
   * miss the result cache are solved, later ones keep the plain result (cached results are still used); `null`:
   * no cap. The default, until this is called, is max(4096, blocks of the rect / 32), which text fits and which
   * keeps noise, photos and video within ~10 ms per 1080p frame (see ../README.md, "Chroma modes").
   */
  setSharpBudget(blocksPerCall: number | null): void;
  /** Work of the last convert() in sharp mode (zeros in plain mode). */
  sharpStats(): SharpStats;
  /** Overwrites the I420 planes with caller data (tightly packed, coded size). */
  putI420(y: Uint8Array, u: Uint8Array, v: Uint8Array): void;
  /** Encodes the current I420 planes (optionally as IDR, optionally with a change map). */
  encode(timestampMs: number, opts?: EncodeOptions): EncodedFrame;
  /** Copies of the current I420 planes (for tests). */
  readI420(): { y: Uint8Array; u: Uint8Array; v: Uint8Array };
  /** The motion hint the last encode() took as its frame's scroll vector, or null (none given, or none matched). */
  usedMotionHint(): MotionVector | null;
  /**
   * Takes over another encoder's picture: its RGBA staging frame and its I420 planes. `other` must come
   * from the same module and have the same source size; it may have failed (openh264 uninitialises itself
   * after a failed picture, the buffers stay). Used to code the same picture again with a new encoder.
   */
  copyPictureFrom(other: H264Encoder): void;
  /** Changes the target bitrate (bitrate rate control only). */
  setBitrate(bitsPerSecond: number): void;
  /** Frees the encoder and its buffers; further calls throw ENCODER_DESTROYED. */
  destroy(): void;
}

/** Options for loadOpenH264 (all optional). */
export interface LoadOptions {
  /** Directory holding openh264.js and openh264.wasm; defaults to the one found by findDistDir(). */
  distDir?: string;
}

// ---------------------------------------------------------------------------
// The emscripten module (dist/openh264.js, built by build.sh): only what we use.

interface EmscriptenModule {
  HEAPU8: Uint8Array;
  _shim_last_error(): number;
  _shim_create(
    srcW: number,
    srcH: number,
    usage: number,
    rcMode: number,
    rcValue: number,
    keyframeInterval: number,
    maxFrameRate: number,
  ): number;
  _shim_destroy(enc: number): void;
  _shim_rgba(enc: number): number;
  _shim_plane_y(enc: number): number;
  _shim_plane_u(enc: number): number;
  _shim_plane_v(enc: number): number;
  _shim_set_bitrate(enc: number, bps: number): number;
  _shim_mb_count(enc: number): number;
  _shim_change_map(enc: number): number;
  _shim_encode(enc: number, timestampMs: number, forceIdr: number, useMap: number): number;
  _shim_used_motion_hint(enc: number, which: number): number;
  _shim_set_motion_hints(enc: number, count: number, x0: number, y0: number, x1: number, y1: number, x2: number, y2: number,
    x3: number, y3: number): number;
  _shim_nal_count(enc: number): number;
  _shim_nal_table(enc: number): number;
  _convert_rect(enc: number, x: number, y: number, w: number, h: number): number;
  _shim_converter(enc: number): number;
  _converter_create(srcW: number, srcH: number): number;
  _converter_destroy(conv: number): void;
  _converter_rgba(conv: number): number;
  _converter_band(conv: number): number;
  _converter_band_bytes(conv: number): number;
  _converter_begin_bands(conv: number, x: number, y: number, w: number, h: number): number;
  _converter_convert_band(conv: number, x: number, y: number, w: number, h: number): number;
  _converter_plane_y(conv: number): number;
  _converter_plane_u(conv: number): number;
  _converter_plane_v(conv: number): number;
  _converter_set_chroma_mode(conv: number, mode: number): number;
  _converter_convert_rect(conv: number, x: number, y: number, w: number, h: number): number;
  _converter_set_sharp_budget(conv: number, n: number): number;
  _converter_sharp_solved(conv: number): number;
  _converter_sharp_skipped(conv: number): number;
}

interface WasmInstance {
  readonly exports: unknown;
}
interface WasmApi {
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(module: object, imports: object): Promise<WasmInstance>;
}

type ReceiveInstance = (instance: WasmInstance, module: object) => void;

interface ModuleOverrides {
  instantiateWasm(imports: object, receive: ReceiveInstance): object;
  printErr(text: string): void;
}

type ModuleFactory = (overrides: ModuleOverrides) => Promise<EmscriptenModule>;

const JS_FILE = 'openh264.js';
const WASM_FILE = 'openh264.wasm';
const DIST_REL = path.join('packages', 'openh264-wasm', 'dist');

// Shim constants (shim/shim.h).
const USAGE_SCREEN = 0;
const USAGE_CAMERA = 1;
const RC_QP = 0;
const RC_BITRATE = 1;
const E_BADARG = -1;
const E_NOMEM = -2;
const E_INIT = -3;
const CHROMA_PLAIN = 0;
const CHROMA_SHARP = 1;

/**
 * Locates the directory holding openh264.js/openh264.wasm: `../dist` next to
 * this file's directory (source tree), else the first ancestor of this file's
 * directory that contains packages/openh264-wasm/dist/openh264.wasm (which
 * covers a compiled copy under dist-ts/packages/openh264-wasm/src/).
 */
export function findDistDir(fromDir: string = __dirname): string {
  const sibling = path.resolve(fromDir, '..', 'dist');
  if (fs.existsSync(path.join(sibling, WASM_FILE))) {
    return sibling;
  }
  let dir = path.resolve(fromDir);
  for (;;) {
    const candidate = path.join(dir, DIST_REL);
    if (fs.existsSync(path.join(candidate, WASM_FILE))) {
      return candidate;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new OpenH264Error('LOAD_FAILED', `cannot find ${path.join(DIST_REL, WASM_FILE)} above ${fromDir}`);
    }
    dir = parent;
  }
}

// Per thread (module-level state is per worker): compiled wasm per dist dir.
const compiled = new Map<string, Promise<object>>();

/** The compiled module of `dir`'s wasm, compiled once per thread (a failed compile is tried again next time). */
async function compiledModule(dir: string): Promise<object> {
  let modulePromise = compiled.get(dir);
  if (modulePromise === undefined) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path.join(dir, WASM_FILE));
    } catch (e) {
      // A typed error like any other load failure (it was a bare ENOENT).
      throw new OpenH264Error('LOAD_FAILED', `reading ${path.join(dir, WASM_FILE)} failed: ${String(e)}`);
    }
    modulePromise = wasmApi().compile(bytes);
    compiled.set(dir, modulePromise);
  }
  try {
    return await modulePromise;
  } catch (e) {
    compiled.delete(dir);
    throw new OpenH264Error('LOAD_FAILED', `compiling ${WASM_FILE} failed: ${String(e)}`);
  }
}

/**
 * Compiles the module in this thread and keeps it for the life of the process, without instantiating it.
 * V8 shares a module's machine code among all the threads of a process that compile the same bytes while one
 * compiled copy is alive, and it compiles each function on its first call. An encode worker ends with its
 * segment, so without a copy kept elsewhere every worker compiled the encoder anew: about 0.2 CPU-s per
 * segment and per daemon session. Calling this on the main thread before workers load the module lets the
 * second worker and every later one reuse what the first compiled (docs/BENCHMARKS.md, eighth round).
 */
export async function keepOpenH264Compiled(options: LoadOptions = {}): Promise<void> {
  await compiledModule(options.distDir ?? findDistDir());
}

function wasmApi(): WasmApi {
  return (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
}

function isFactory(v: unknown): v is ModuleFactory {
  return typeof v === 'function';
}

/** Instantiates a fresh openh264 wasm module (each call: its own memory; share nothing across workers). */
export async function loadOpenH264(options: LoadOptions = {}): Promise<OpenH264> {
  const dir = options.distDir ?? findDistDir();
  const wasmModule = await compiledModule(dir);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const factory: unknown = require(path.join(dir, JS_FILE));
  if (!isFactory(factory)) {
    throw new OpenH264Error('LOAD_FAILED', `${JS_FILE} does not export a module factory`);
  }
  const errLines: string[] = [];
  const mod = await new Promise<EmscriptenModule>((resolve, reject) => {
    const fail = (e: unknown): void => {
      const detail = errLines.length > 0 ? ` (${errLines.join('; ')})` : '';
      reject(new OpenH264Error('LOAD_FAILED', `instantiating ${WASM_FILE} failed: ${String(e)}${detail}`));
    };
    factory({
      // Hand the loader an instance of the already compiled module: no fetch(), no file reads.
      instantiateWasm(imports: object, receive: ReceiveInstance): object {
        wasmApi()
          .instantiate(wasmModule, imports)
          .then((instance) => {
            receive(instance, wasmModule);
          })
          .catch(fail);
        return {};
      },
      printErr(text: string): void {
        // openh264's own logging is off; this only sees emscripten runtime errors.
        errLines.push(text);
        if (errLines.length > 10) errLines.shift();
      },
    }).then(resolve, fail);
  });
  return {
    createEncoder(o: EncoderOptions): H264Encoder {
      return new Encoder(mod, o);
    },
    createConverter(width: number, height: number): RgbaToI420 {
      return new Converter(mod, width, height);
    },
  };
}

function isInt(v: number, min: number, max: number): boolean {
  return Number.isInteger(v) && v >= min && v <= max;
}

function badArg(message: string): OpenH264Error {
  return new OpenH264Error('BAD_ARGUMENT', message);
}

function frameTypeOf(code: number): FrameType {
  switch (code) {
    case 1:
      return 'idr';
    case 2:
      return 'i';
    case 3:
    case 5: // I/P mixed: contains P slices
      return 'p';
    case 4:
      return 'skip';
    default:
      throw new OpenH264Error('ENCODE_FAILED', `unexpected frame type ${code}`);
  }
}

/**
 * The staging frame and planes of one ShimConverter (an encoder's own, or a standalone converter's): copying
 * RGBA in, converting, views of the planes. The owner checks that it is still alive before every call.
 */
class Pictures {
  readonly codedWidth: number;
  readonly codedHeight: number;
  /** The staging frame, 0 until first used (the C side allocates it then). */
  private rgba = 0;
  /** The band buffer, 0 until first used. */
  private band = 0;
  readonly yPtr: number;
  readonly uPtr: number;
  readonly vPtr: number;
  private viewsOf: ArrayBufferLike | null = null;
  private yView: Uint8Array = new Uint8Array(0);
  private uView: Uint8Array = new Uint8Array(0);
  private vView: Uint8Array = new Uint8Array(0);

  constructor(
    private readonly mod: EmscriptenModule,
    private readonly conv: number,
    readonly sourceWidth: number,
    readonly sourceHeight: number,
  ) {
    this.codedWidth = (sourceWidth + 1) & ~1;
    this.codedHeight = (sourceHeight + 1) & ~1;
    this.yPtr = mod._converter_plane_y(conv);
    this.uPtr = mod._converter_plane_u(conv);
    this.vPtr = mod._converter_plane_v(conv);
  }

  checkRect(r: Rect): void {
    if (
      !isInt(r.x, 0, this.sourceWidth) ||
      !isInt(r.y, 0, this.sourceHeight) ||
      !isInt(r.width, 0, this.sourceWidth - r.x) ||
      !isInt(r.height, 0, this.sourceHeight - r.y)
    ) {
      throw badArg(
        `rect ${r.x},${r.y} ${r.width}x${r.height} outside source ${this.sourceWidth}x${this.sourceHeight}`,
      );
    }
  }

  /** The staging frame's address, allocating it on first use. */
  rgbaPtr(): number {
    if (this.rgba === 0) {
      this.rgba = this.mod._converter_rgba(this.conv);
      if (this.rgba === 0) throw new OpenH264Error('OUT_OF_MEMORY', 'out of wasm memory for the RGBA staging frame');
    }
    return this.rgba;
  }

  /** True once the staging frame exists (a picture taken over needs it only then). */
  hasRgba(): boolean {
    return this.rgba !== 0;
  }

  private checkSource(rect: Rect, src: Uint8Array, srcOffset: number, srcStride: number): void {
    const rowBytes = rect.width * 4;
    if (!isInt(srcOffset, 0, src.length) || !Number.isInteger(srcStride) || srcStride < rowBytes) {
      throw badArg(`bad srcOffset ${srcOffset} / srcStride ${srcStride} for width ${rect.width}`);
    }
    if (srcOffset + (rect.height - 1) * srcStride + rowBytes > src.length) {
      throw badArg(`source buffer too small: ${src.length} bytes`);
    }
  }

  putRgba(rect: Rect, src: Uint8Array, srcOffset: number, srcStride: number): void {
    this.checkRect(rect);
    if (rect.width === 0 || rect.height === 0) return;
    const rowBytes = rect.width * 4;
    this.checkSource(rect, src, srcOffset, srcStride);
    const dstStride = this.sourceWidth * 4;
    let dst = this.rgbaPtr() + rect.y * dstStride + rect.x * 4;
    const heap = this.mod.HEAPU8;
    if (srcStride === rowBytes && dstStride === rowBytes) {
      heap.set(src.subarray(srcOffset, srcOffset + rowBytes * rect.height), dst);
      return;
    }
    let s = srcOffset;
    for (let row = 0; row < rect.height; row++) {
      heap.set(src.subarray(s, s + rowBytes), dst);
      s += srcStride;
      dst += dstStride;
    }
  }

  convert(rect: Rect): void {
    this.checkRect(rect);
    const rc = this.mod._converter_convert_rect(this.conv, rect.x, rect.y, rect.width, rect.height);
    if (rc === E_NOMEM) throw new OpenH264Error('OUT_OF_MEMORY', 'out of wasm memory for the RGBA staging frame');
    if (rc !== 0) throw badArg('convert_rect rejected the rectangle');
    // convert_rect allocates the staging frame when a caller converts before putting anything.
    if (this.rgba === 0 && rect.width > 0 && rect.height > 0) this.rgba = this.mod._converter_rgba(this.conv);
  }

  convertFrom(rect: Rect, src: Uint8Array, srcOffset: number, srcStride: number): void {
    this.checkRect(rect);
    if (rect.width === 0 || rect.height === 0) return;
    const { x, y, width: w, height: h } = rect;
    if (x % 2 !== 0 || y % 2 !== 0 || ((x + w) % 2 !== 0 && x + w !== this.sourceWidth) || ((y + h) % 2 !== 0 && y + h !== this.sourceHeight)) {
      throw badArg(`rect ${x},${y} ${w}x${h} is not 2x2-aligned in a ${this.sourceWidth}x${this.sourceHeight} source`);
    }
    this.checkSource(rect, src, srcOffset, srcStride);
    if (this.band === 0) {
      this.band = this.mod._converter_band(this.conv);
      if (this.band === 0) throw new OpenH264Error('OUT_OF_MEMORY', 'out of wasm memory for the conversion band');
    }
    const rowBytes = w * 4;
    // Whole row pairs per band (a pair shares its chroma row); the band holds at least two source rows.
    const bandRows = Math.max(2, Math.floor(this.mod._converter_band_bytes(this.conv) / rowBytes) & ~1);
    if (this.mod._converter_begin_bands(this.conv, x, y, w, h) !== 0) throw badArg('begin_bands rejected the rectangle');
    for (let r = 0; r < h; r += bandRows) {
      const rows = Math.min(bandRows, h - r);
      // Read the heap after every call into the module: memory growth replaces its buffer.
      const heap = this.mod.HEAPU8;
      const from = srcOffset + r * srcStride;
      if (srcStride === rowBytes) {
        heap.set(src.subarray(from, from + rows * rowBytes), this.band);
      } else {
        for (let k = 0; k < rows; k++) heap.set(src.subarray(from + k * srcStride, from + k * srcStride + rowBytes), this.band + k * rowBytes);
      }
      if (this.mod._converter_convert_band(this.conv, x, y + r, w, rows) !== 0) throw badArg('convert_band rejected the band');
    }
  }

  setChroma(mode: ChromaMode): void {
    // Checked at run time too: callers outside TypeScript (config files) can pass anything.
    const name: unknown = mode;
    const code = name === 'plain' ? CHROMA_PLAIN : name === 'sharp' ? CHROMA_SHARP : -1;
    if (code < 0) throw badArg(`chroma mode must be 'plain' or 'sharp', got ${String(name)}`);
    const rc = this.mod._converter_set_chroma_mode(this.conv, code);
    if (rc === E_NOMEM) throw new OpenH264Error('OUT_OF_MEMORY', 'out of wasm memory for the sharp chroma cache');
    if (rc !== 0) throw badArg(`chroma mode ${mode} rejected`);
  }

  setSharpBudget(blocksPerCall: number | null): void {
    // Checked at run time too (config files); 0 or a negative count would read as "no cap" in C.
    const n: unknown = blocksPerCall;
    if (n !== null && !(typeof n === 'number' && isInt(n, 1, 0x7fffffff))) {
      throw badArg(`sharp budget must be a positive integer or null, got ${typeof n === 'number' ? String(n) : typeof n}`);
    }
    this.mod._converter_set_sharp_budget(this.conv, n ?? 0);
  }

  sharpStats(): SharpStats {
    return { solved: this.mod._converter_sharp_solved(this.conv), overBudget: this.mod._converter_sharp_skipped(this.conv) };
  }

  /** Views of the planes on the current heap (memory growth replaces the heap's buffer). */
  views(): { y: Uint8Array; u: Uint8Array; v: Uint8Array } {
    const heap = this.mod.HEAPU8;
    if (this.viewsOf !== heap.buffer) {
      const ySize = this.codedWidth * this.codedHeight;
      this.yView = new Uint8Array(heap.buffer, heap.byteOffset + this.yPtr, ySize);
      this.uView = new Uint8Array(heap.buffer, heap.byteOffset + this.uPtr, ySize / 4);
      this.vView = new Uint8Array(heap.buffer, heap.byteOffset + this.vPtr, ySize / 4);
      this.viewsOf = heap.buffer;
    }
    return { y: this.yView, u: this.uView, v: this.vView };
  }
}

class Converter implements RgbaToI420 {
  private handle: number;
  private readonly pics: Pictures;

  constructor(private readonly mod: EmscriptenModule, width: number, height: number) {
    if (!isInt(width, 2, 16384) || !isInt(height, 2, 16384)) {
      throw badArg(`source size must be integers in 2..16384, got ${width}x${height}`);
    }
    const handle = mod._converter_create(width, height);
    if (handle === 0) {
      const err = mod._shim_last_error();
      if (err === E_NOMEM) throw new OpenH264Error('OUT_OF_MEMORY', 'out of wasm memory creating the converter');
      throw badArg(`converter parameters rejected (${err})`);
    }
    this.handle = handle;
    this.pics = new Pictures(mod, handle, width, height);
  }

  private live(): Pictures {
    if (this.handle === 0) {
      throw new OpenH264Error('CONVERTER_DESTROYED', 'converter has been destroyed');
    }
    return this.pics;
  }

  get codedWidth(): number {
    return this.pics.codedWidth;
  }

  get codedHeight(): number {
    return this.pics.codedHeight;
  }

  get y(): Uint8Array {
    return this.live().views().y;
  }

  get u(): Uint8Array {
    return this.live().views().u;
  }

  get v(): Uint8Array {
    return this.live().views().v;
  }

  putRgba(rect: Rect, src: Uint8Array, srcOffset: number, srcStride: number): void {
    this.live().putRgba(rect, src, srcOffset, srcStride);
  }

  convert(rect: Rect): void {
    this.live().convert(rect);
  }

  convertFrom(rect: Rect, src: Uint8Array, srcOffset: number, srcStride: number): void {
    this.live().convertFrom(rect, src, srcOffset, srcStride);
  }

  setChroma(mode: ChromaMode): void {
    this.live().setChroma(mode);
  }

  setSharpBudget(blocksPerCall: number | null): void {
    this.live().setSharpBudget(blocksPerCall);
  }

  sharpStats(): SharpStats {
    return this.live().sharpStats();
  }

  destroy(): void {
    if (this.handle !== 0) {
      this.mod._converter_destroy(this.handle);
      this.handle = 0;
    }
  }
}

class Encoder implements H264Encoder {
  readonly codedWidth: number;
  readonly codedHeight: number;
  readonly mbCols: number;
  readonly mbRows: number;
  private readonly mod: EmscriptenModule;
  private readonly rcMode: number;
  private handle: number;
  private readonly pics: Pictures;
  private readonly changeMapPtr: number;

  constructor(mod: EmscriptenModule, o: EncoderOptions) {
    if (!isInt(o.sourceWidth, 2, 16384) || !isInt(o.sourceHeight, 2, 16384)) {
      throw badArg(`source size must be integers in 2..16384, got ${o.sourceWidth}x${o.sourceHeight}`);
    }
    if (o.usage !== 'screen' && o.usage !== 'camera') {
      throw badArg(`usage must be 'screen' or 'camera'`);
    }
    let rcMode: number;
    let rcValue: number;
    if (o.rateControl.mode === 'qp') {
      if (!isInt(o.rateControl.qp, 0, 51)) {
        throw badArg(`qp must be an integer in 0..51, got ${o.rateControl.qp}`);
      }
      rcMode = RC_QP;
      rcValue = o.rateControl.qp;
    } else if (o.rateControl.mode === 'bitrate') {
      if (!isInt(o.rateControl.bitsPerSecond, 1, 0x7fffffff)) {
        throw badArg(`bitsPerSecond must be a positive 32-bit integer, got ${o.rateControl.bitsPerSecond}`);
      }
      rcMode = RC_BITRATE;
      rcValue = o.rateControl.bitsPerSecond;
    } else {
      throw badArg('rateControl.mode must be qp or bitrate');
    }
    if (!isInt(o.keyframeIntervalFrames, 0, 0x7fffffff)) {
      throw badArg(`keyframeIntervalFrames must be a non-negative integer, got ${o.keyframeIntervalFrames}`);
    }
    if (!(Number.isFinite(o.maxFrameRate) && o.maxFrameRate > 0 && o.maxFrameRate <= 240)) {
      throw badArg(`maxFrameRate must be in (0, 240], got ${o.maxFrameRate}`);
    }
    const handle = mod._shim_create(
      o.sourceWidth,
      o.sourceHeight,
      o.usage === 'screen' ? USAGE_SCREEN : USAGE_CAMERA,
      rcMode,
      rcValue,
      o.keyframeIntervalFrames,
      o.maxFrameRate,
    );
    if (handle === 0) {
      const err = mod._shim_last_error();
      if (err === E_BADARG) throw badArg('encoder parameters rejected');
      if (err === E_NOMEM) throw new OpenH264Error('OUT_OF_MEMORY', 'out of wasm memory creating the encoder');
      throw new OpenH264Error('ENCODER_INIT_FAILED', `openh264 initialisation failed (${err === E_INIT ? 'init' : err})`);
    }
    this.mod = mod;
    this.handle = handle;
    this.rcMode = rcMode;
    this.pics = new Pictures(mod, mod._shim_converter(handle), o.sourceWidth, o.sourceHeight);
    this.codedWidth = this.pics.codedWidth;
    this.codedHeight = this.pics.codedHeight;
    this.mbCols = Math.ceil(this.codedWidth / 16);
    this.mbRows = Math.ceil(this.codedHeight / 16);
    this.changeMapPtr = mod._shim_change_map(handle);
    if (mod._shim_mb_count(handle) !== this.mbCols * this.mbRows) {
      mod._shim_destroy(handle);
      throw new OpenH264Error('ENCODER_INIT_FAILED', 'macroblock count mismatch between binding and module');
    }
  }

  private live(): number {
    if (this.handle === 0) {
      throw new OpenH264Error('ENCODER_DESTROYED', 'encoder has been destroyed');
    }
    return this.handle;
  }

  putRgba(rect: Rect, src: Uint8Array, srcOffset: number, srcStride: number): void {
    this.live();
    this.pics.putRgba(rect, src, srcOffset, srcStride);
  }

  convert(rect: Rect): void {
    this.live();
    this.pics.convert(rect);
  }

  convertFrom(rect: Rect, src: Uint8Array, srcOffset: number, srcStride: number): void {
    this.live();
    this.pics.convertFrom(rect, src, srcOffset, srcStride);
  }

  setChroma(mode: ChromaMode): void {
    this.live();
    this.pics.setChroma(mode);
  }

  setSharpBudget(blocksPerCall: number | null): void {
    this.live();
    this.pics.setSharpBudget(blocksPerCall);
  }

  sharpStats(): SharpStats {
    this.live();
    return this.pics.sharpStats();
  }

  putI420(y: Uint8Array, u: Uint8Array, v: Uint8Array): void {
    this.live();
    const ySize = this.codedWidth * this.codedHeight;
    const cSize = ySize / 4;
    if (y.length !== ySize || u.length !== cSize || v.length !== cSize) {
      throw badArg(`I420 planes must be ${ySize}/${cSize}/${cSize} bytes (coded ${this.codedWidth}x${this.codedHeight})`);
    }
    const heap = this.mod.HEAPU8;
    heap.set(y, this.pics.yPtr);
    heap.set(u, this.pics.uPtr);
    heap.set(v, this.pics.vPtr);
  }

  encode(timestampMs: number, opts?: EncodeOptions): EncodedFrame {
    const h = this.live();
    if (!Number.isFinite(timestampMs) || timestampMs < 0) {
      throw badArg(`timestampMs must be a finite non-negative number, got ${timestampMs}`);
    }
    const map = opts?.changeMap;
    if (map !== undefined) {
      if (!(map instanceof Uint8Array) || map.length !== this.mbCols * this.mbRows) {
        throw badArg(
          `changeMap must be a Uint8Array of ${this.mbCols}x${this.mbRows} = ${this.mbCols * this.mbRows} bytes, got ${
            map instanceof Uint8Array ? map.length : typeof map
          }`,
        );
      }
      this.mod.HEAPU8.set(map, this.changeMapPtr);
      const hints = opts?.motionHints;
      if (hints !== undefined) {
        if (hints.length > MAX_MOTION_HINTS || !hints.every((v) => Number.isInteger(v.dx) && Number.isInteger(v.dy)
          && Math.abs(v.dx) <= this.codedWidth && Math.abs(v.dy) <= this.codedHeight)) {
          throw badArg(`motionHints must be at most ${MAX_MOTION_HINTS} whole-pixel vectors within the picture`);
        }
        const v = (k: number): [number, number] => { const m = hints[k]; return m === undefined ? [0, 0] : [m.dx, m.dy]; };
        if (this.mod._shim_set_motion_hints(h, hints.length, ...v(0), ...v(1), ...v(2), ...v(3)) < 0) {
          throw badArg('openh264 rejected the motion hints');
        }
      }
    }
    const rc = this.mod._shim_encode(h, Math.floor(timestampMs), opts?.forceIdr === true ? 1 : 0, map !== undefined ? 1 : 0);
    if (rc === E_BADARG) throw badArg('openh264 rejected the change map');
    if (rc < 0) {
      if (rc === E_NOMEM) throw new OpenH264Error('OUT_OF_MEMORY', 'out of wasm memory while encoding');
      throw new OpenH264Error('ENCODE_FAILED', `openh264 EncodeFrame failed (${rc})`);
    }
    const frameType = frameTypeOf(rc);
    const count = this.mod._shim_nal_count(h);
    const table = this.mod._shim_nal_table(h);
    // Read the heap only after the calls above: memory growth replaces HEAPU8.
    const heap = this.mod.HEAPU8;
    const words = new DataView(heap.buffer, heap.byteOffset + table, count * 8);
    const nals: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const addr = words.getUint32(i * 8, true);
      const len = words.getUint32(i * 8 + 4, true);
      nals.push(heap.slice(addr, addr + len));
    }
    return { nals, frameType };
  }

  usedMotionHint(): MotionVector | null {
    const h = this.live();
    if (this.mod._shim_used_motion_hint(h, 0) !== 1) return null;
    return { dx: this.mod._shim_used_motion_hint(h, 1), dy: this.mod._shim_used_motion_hint(h, 2) };
  }

  readI420(): { y: Uint8Array; u: Uint8Array; v: Uint8Array } {
    this.live();
    const heap = this.mod.HEAPU8;
    const ySize = this.codedWidth * this.codedHeight;
    const cSize = ySize / 4;
    return {
      y: heap.slice(this.pics.yPtr, this.pics.yPtr + ySize),
      u: heap.slice(this.pics.uPtr, this.pics.uPtr + cSize),
      v: heap.slice(this.pics.vPtr, this.pics.vPtr + cSize),
    };
  }

  copyPictureFrom(other: H264Encoder): void {
    this.live();
    if (!(other instanceof Encoder) || other.mod !== this.mod) throw badArg('copyPictureFrom needs an encoder of the same module');
    other.live();
    const mine = this.pics;
    const theirs = other.pics;
    if (theirs.sourceWidth !== mine.sourceWidth || theirs.sourceHeight !== mine.sourceHeight) {
      throw badArg(`copyPictureFrom needs the same source size, got ${theirs.sourceWidth}x${theirs.sourceHeight}`);
    }
    // Within one module's memory: no copy through JavaScript.
    const ySize = this.codedWidth * this.codedHeight;
    if (theirs.hasRgba()) {
      // Allocating it may grow the memory: the heap view is taken after.
      const dst = mine.rgbaPtr();
      this.mod.HEAPU8.copyWithin(dst, theirs.rgbaPtr(), theirs.rgbaPtr() + mine.sourceWidth * mine.sourceHeight * 4);
    }
    const heap = this.mod.HEAPU8;
    heap.copyWithin(mine.yPtr, theirs.yPtr, theirs.yPtr + ySize);
    heap.copyWithin(mine.uPtr, theirs.uPtr, theirs.uPtr + ySize / 4);
    heap.copyWithin(mine.vPtr, theirs.vPtr, theirs.vPtr + ySize / 4);
  }

  setBitrate(bitsPerSecond: number): void {
    const h = this.live();
    if (this.rcMode !== RC_BITRATE) {
      throw badArg('setBitrate needs bitrate rate control');
    }
    if (!isInt(bitsPerSecond, 1, 0x7fffffff)) {
      throw badArg(`bitsPerSecond must be a positive 32-bit integer, got ${bitsPerSecond}`);
    }
    if (this.mod._shim_set_bitrate(h, bitsPerSecond) !== 0) {
      throw badArg(`openh264 rejected bitrate ${bitsPerSecond}`);
    }
  }

  destroy(): void {
    if (this.handle !== 0) {
      this.mod._shim_destroy(this.handle);
      this.handle = 0;
    }
  }
}
