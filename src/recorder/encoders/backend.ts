/**
 * The encoder backend interface (docs/ARCHITECTURE.md; shaped like mediabunny's custom coders,
 * `src/custom-coder.ts`): `init / encode / flush / close`. A backend runs inside the recording's encode
 * worker; it receives only the changed pixels of each frame and returns AVCC access units. openh264-wasm is
 * the default; the ffmpeg backend (ffmpeg.ts: libx264, NVENC, VAAPI, Quick Sync) implements the same
 * interface, and a module given by path may too.
 */
import { EncoderError } from '../../errors';
import type { Motion } from '../motion';
import type { Rect } from '../../capture/rect';

/** How the encoder spends bits. */
export type RateControl = { mode: 'qp'; qp: number } | { mode: 'bitrate'; bitsPerSecond: number };

/** What a backend is initialised with (sizes are the source's; the backend pads odd sizes to even). */
export interface EncoderConfig {
  width: number;
  height: number;
  usage: 'screen' | 'camera';
  rateControl: RateControl;
  fpsMax: number;
  /**
   * Pass the per-macroblock change map (from the frame's damage) to the encoder, so unchanged macroblocks
   * are skipped without analysis: CPU follows the changed area instead of the screen size.
   */
  changeMap: boolean;
  /**
   * How chroma is chosen in the RGBA→I420 conversion: `sharp` picks luma and chroma together so the decoded
   * picture is closest to the source (coloured text), `plain` averages each 2x2 block (colour.ts). Default plain.
   */
  chroma?: 'sharp' | 'plain';
}

/**
 * Changed pixels: a rectangle and its RGBA bytes, tightly packed (width × 4 bytes per row). The rectangle is
 * 2x2-aligned (../../capture/rect.ts evenRect: x and y even, its right and bottom edges even or the frame's),
 * so a backend converts each 2x2 block of 4:2:0 chroma from the one patch that holds it whole, with no
 * whole-frame RGBA copy of its own; a backend may refuse a patch that is not (UNALIGNED_PATCH).
 */
export interface Patch {
  rect: Rect;
  data: Uint8Array;
}

/** Refuses a patch that is not 2x2-aligned in a `width` x `height` frame (backend.ts, Patch), with a typed error. */
export function alignedPatch(p: Patch, width: number, height: number): void {
  const r = p.rect;
  if (r.x % 2 === 0 && r.y % 2 === 0 && ((r.x + r.width) % 2 === 0 || r.x + r.width === width)
    && ((r.y + r.height) % 2 === 0 || r.y + r.height === height)) return;
  throw new EncoderError('UNALIGNED_PATCH', `patch ${r.x},${r.y} ${r.width}x${r.height} is not 2x2-aligned in a ${width}x${height} frame`);
}

/** One frame's input to a backend. */
export interface EncodeInput {
  /** Patches to apply, in order (later ones win where they overlap). */
  patches: Patch[];
  /** Session time of the frame, ms. */
  t_ms: number;
  /** Code this frame as an IDR. */
  forceKey: boolean;
  /**
   * Where content moved since the previous frame (candidate whole-pixel vectors from the remote's copies,
   * ../motion.ts). A backend may use them to code moved content without searching for it; they are hints,
   * never to be trusted over the pixels.
   */
  motion?: Motion[];
}

/** What a decoder needs to know before the first access unit (WebCodecs' VideoDecoderConfig subset). */
export interface DecoderConfig {
  codec: string;
  codedWidth: number;
  codedHeight: number;
  /** The avcC record. */
  description: Uint8Array;
}

/** One coded picture. */
export interface AccessUnit {
  /** AVCC sample: 4-byte length-prefixed NAL units, parameter sets excluded. */
  data: Uint8Array;
  t_ms: number;
  key: boolean;
  /** Present on every keyframe (SPS/PPS may only change on a keyframe). */
  decoderConfig?: DecoderConfig;
  /**
   * Set when the picture could not be coded as configured and was coded again, as a keyframe, at this
   * coarser QP (the encoder keeps it until the next keyframe); absent normally.
   */
  raisedQp?: number;
}

/** An encoder implementation. */
export interface EncoderBackend {
  /** Name shown in session.json (`openh264-wasm`, …). */
  readonly name: string;
  /** Prepares the encoder for frames of the given size. */
  init(config: EncoderConfig): Promise<void>;
  /** Encodes one frame; null when the encoder produced no picture. An encoder in another process answers later. */
  encode(input: EncodeInput): AccessUnit | null | Promise<AccessUnit | null>;
  /** Returns any pictures still buffered (none here: no B-frames, no lookahead) and ends the encoder's work. */
  flush(): AccessUnit[] | Promise<AccessUnit[]>;
  /** Frees the encoder. */
  close(): void;
}

/** A module that provides a backend (the worker loads one by name or by path). */
export interface BackendModule {
  createBackend(): EncoderBackend;
}
