/** The default encoder backend: openh264 compiled to WebAssembly (packages/openh264-wasm). */
import { EncoderError } from '../../errors';
import { loadOpenH264, MAX_MOTION_HINTS, OpenH264Error, type H264Encoder, type OpenH264 } from '../../../packages/openh264-wasm/src/index';
import type { Motion } from '../motion';
import { avcCodecString, buildAvcC, nalType, NAL_SPS, toAvccSample } from './avc';
import { alignedPatch, type AccessUnit, type DecoderConfig, type EncodeInput, type EncoderBackend, type EncoderConfig, type RateControl } from './backend';
import { OPENH264_LIMIT_TEXT, openh264Takes } from './limits';

/** How much coarser each retry of a picture that could not be coded is. */
const RETRY_QP_STEP = 6;
/** The QP a bitrate-controlled encoder's retries start from (openh264's own starting QP). */
const BITRATE_RETRY_BASE_QP = 26;

/**
 * The QPs to try, in order, after a picture failed at `from`: coarser by RETRY_QP_STEP each time, ending
 * at 51, where every macroblock fits (openh264 itself raises a macroblock's QP up to 50 while its buffer
 * allows).
 */
export function retryQps(from: number): number[] {
  const out: number[] = [];
  for (let qp = from + RETRY_QP_STEP; qp < 51; qp += RETRY_QP_STEP) out.push(qp);
  if (from < 51) out.push(51);
  return out;
}

/** openh264-wasm behind the backend interface; one instance owns one wasm module instance. */
class OpenH264Backend implements EncoderBackend {
  readonly name = 'openh264-wasm';
  private lib: OpenH264 | null = null;
  private config: EncoderConfig | null = null;
  private enc: H264Encoder | null = null;
  private decoderConfig: DecoderConfig | null = null;
  private useMap = false;
  private map: Uint8Array = new Uint8Array(0);
  /** The QP the current encoder was raised to after a failed picture, or null while it runs as configured. */
  private raised: number | null = null;

  async init(config: EncoderConfig): Promise<void> {
    if (!openh264Takes(config.width, config.height)) {
      // openh264 would only say "initialisation failed"; say why.
      throw new EncoderError('PICTURE_TOO_LARGE', `openh264 cannot code ${config.width}x${config.height}: it takes ${OPENH264_LIMIT_TEXT}`);
    }
    try {
      this.lib = await loadOpenH264();
      this.config = config;
      this.enc = this.create(config.rateControl);
      this.useMap = config.changeMap;
      this.map = new Uint8Array(this.enc.mbCols * this.enc.mbRows);
    } catch (err) {
      throw new EncoderError('ENCODER_INIT_FAILED',
        `openh264 could not start at ${config.width}x${config.height}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err });
    }
  }

  private create(rateControl: RateControl): H264Encoder {
    const lib = this.lib;
    const config = this.config;
    if (lib === null || config === null) throw new EncoderError('ENCODER_NOT_READY', 'encoder used before init()');
    const enc = lib.createEncoder({
      sourceWidth: config.width,
      sourceHeight: config.height,
      usage: config.usage,
      rateControl,
      // Keyframes are decided by the recorder from session time (--keyframe-interval), never by frame count.
      keyframeIntervalFrames: 0,
      maxFrameRate: config.fpsMax,
    });
    enc.setChroma(config.chroma ?? 'plain');
    return enc;
  }

  encode(input: EncodeInput): AccessUnit | null {
    const enc = this.enc;
    const cfg = this.config;
    if (enc === null || cfg === null) throw new EncoderError('ENCODER_NOT_READY', 'encode() before init()');
    for (const p of input.patches) {
      alignedPatch(p, cfg.width, cfg.height);
      enc.convertFrom(p.rect, p.data, 0, p.rect.width * 4);
    }
    if (input.forceKey && this.raised !== null) {
      // A keyframe starts afresh anyway: the time to go back to the configured rate control.
      this.replace(this.configured());
    }
    const map = this.useMap && !input.forceKey ? markChangedMacroblocks(this.map, enc.mbCols, input.patches) : undefined;
    try {
      return this.code(input.t_ms, input.forceKey, map, input.motion);
    } catch (err) {
      if (!(err instanceof OpenH264Error) || err.code !== 'ENCODE_FAILED') throw err;
      return this.retry(input.t_ms, err);
    }
  }

  private configured(): RateControl {
    const c = this.config;
    if (c === null) throw new EncoderError('ENCODER_NOT_READY', 'encoder used before init()');
    return c.rateControl;
  }

  /**
   * A picture openh264 could not code (its bitstream buffer overflowed: full-screen noise at a low QP)
   * leaves that encoder uninitialised. The picture is still in its buffers, so a new encoder takes it over
   * and codes it as a keyframe (it has no reference picture) at coarser QPs until one fits. The coarser
   * encoder stays until the next keyframe the recorder asks for. Its parameter sets must be the ones the
   * segment started with (openh264 derives them from the size and frame rate only; checked all the same),
   * or the picture cannot join this segment and the original error stands.
   */
  private retry(t_ms: number, first: OpenH264Error): AccessUnit | null {
    const rc = this.configured();
    const from = this.raised ?? (rc.mode === 'qp' ? rc.qp : BITRATE_RETRY_BASE_QP);
    let last: unknown = first;
    for (const qp of retryQps(from)) {
      this.replace({ mode: 'qp', qp });
      this.raised = qp;
      try {
        const unit = this.code(t_ms, true);
        if (unit !== null) unit.raisedQp = qp;
        return unit;
      } catch (err) {
        if (err instanceof EncoderError) throw err;
        last = err;
      }
    }
    throw new EncoderError('ENCODE_FAILED', `openh264 could not code a picture even at QP 51: ${last instanceof Error ? last.message : String(last)}`,
      { cause: last });
  }

  /** Swaps in a new encoder with `rateControl` that holds the current encoder's picture. */
  private replace(rateControl: RateControl): void {
    const old = this.enc;
    const enc = this.create(rateControl);
    if (old !== null) {
      enc.copyPictureFrom(old);
      old.destroy();
    }
    this.enc = enc;
    this.raised = null;
  }

  /**
   * Codes the encoder's current picture; `changeMap` marks the macroblocks that changed (P pictures only),
   * `motion` (with a map only) gives openh264 the frame's candidate scroll vectors instead of its own search.
   */
  private code(t_ms: number, forceKey: boolean, changeMap?: Uint8Array, motion?: readonly Motion[]): AccessUnit | null {
    const enc = this.enc;
    if (enc === null) throw new EncoderError('ENCODER_NOT_READY', 'encode() before init()');
    const out = enc.encode(t_ms, changeMap === undefined ? { forceIdr: forceKey }
      : { forceIdr: false, changeMap, ...(motion !== undefined ? { motionHints: usableHints(motion, enc.codedWidth, enc.codedHeight) } : {}) });
    if (out.frameType === 'skip' || out.nals.length === 0) return null;
    const key = out.frameType === 'idr';
    if (key && out.nals.some((n) => nalType(n) === NAL_SPS)) {
      const description = buildAvcC(out.nals);
      const previous = this.decoderConfig;
      if (previous !== null && !sameBytes(previous.description, description)) {
        throw new EncoderError('ENCODE_FAILED', 'a new encoder wrote different parameter sets mid-segment');
      }
      this.decoderConfig = {
        codec: avcCodecString(description),
        codedWidth: enc.codedWidth,
        codedHeight: enc.codedHeight,
        description,
      };
    }
    const au: AccessUnit = { data: toAvccSample(out.nals), t_ms, key };
    if (key && this.decoderConfig !== null) au.decoderConfig = this.decoderConfig;
    return au;
  }

  flush(): AccessUnit[] {
    return [];
  }

  close(): void {
    this.enc?.destroy();
    this.enc = null;
  }
}

/**
 * Marks every 16x16 macroblock any patch touches. A macroblock marked unchanged keeps the previous picture,
 * so the map must cover all damage; covering more only costs analysis time.
 */
function markChangedMacroblocks(map: Uint8Array, mbCols: number, patches: readonly { rect: { x: number; y: number; width: number; height: number } }[]): Uint8Array {
  map.fill(0);
  for (const { rect: r } of patches) {
    if (r.width <= 0 || r.height <= 0) continue;
    const x0 = r.x >> 4;
    const x1 = (r.x + r.width - 1) >> 4;
    const y0 = r.y >> 4;
    const y1 = (r.y + r.height - 1) >> 4;
    for (let y = y0; y <= y1; y++) map.fill(1, y * mbCols + x0, y * mbCols + x1 + 1);
  }
  return map;
}

/**
 * The hints openh264 takes: at most MAX_MOTION_HINTS, each a move smaller than the picture. A frame that merged
 * many updates (an output that fell behind) can sum to a move larger than the picture, which no block can have
 * made; such a hint is dropped here, not passed on for the binding to refuse (which would fail the encoder).
 */
function usableHints(motion: readonly Motion[], width: number, height: number): Motion[] {
  return motion.filter((m) => Number.isInteger(m.dx) && Number.isInteger(m.dy) && Math.abs(m.dx) < width && Math.abs(m.dy) < height)
    .slice(0, MAX_MOTION_HINTS);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Backend-module entry point used by the encode worker. */
export function createBackend(): EncoderBackend {
  return new OpenH264Backend();
}
