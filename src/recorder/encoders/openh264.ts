/** The default encoder backend: openh264 compiled to WebAssembly (packages/openh264-wasm). */
import { EncoderError } from '../../errors';
import { loadOpenH264, type H264Encoder } from '../../../packages/openh264-wasm/src/index';
import { avcCodecString, buildAvcC, nalType, NAL_SPS, toAvccSample } from './avc';
import type { AccessUnit, DecoderConfig, EncodeInput, EncoderBackend, EncoderConfig } from './backend';

/** openh264-wasm behind the backend interface; one instance owns one wasm module instance. */
export class OpenH264Backend implements EncoderBackend {
  readonly name = 'openh264-wasm';
  private enc: H264Encoder | null = null;
  private decoderConfig: DecoderConfig | null = null;

  async init(config: EncoderConfig): Promise<void> {
    try {
      const lib = await loadOpenH264();
      this.enc = lib.createEncoder({
        sourceWidth: config.width,
        sourceHeight: config.height,
        usage: config.usage,
        rateControl: config.rateControl,
        // Keyframes are decided by the recorder from session time (--keyframe-interval), never by frame count.
        keyframeIntervalFrames: 0,
        maxFrameRate: config.fpsMax,
      });
    } catch (err) {
      throw new EncoderError('ENCODER_INIT_FAILED',
        `openh264 could not start at ${config.width}x${config.height}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err });
    }
  }

  encode(input: EncodeInput): AccessUnit | null {
    const enc = this.enc;
    if (enc === null) throw new EncoderError('ENCODER_NOT_READY', 'encode() before init()');
    for (const p of input.patches) enc.putRgba(p.rect, p.data, 0, p.rect.width * 4);
    for (const p of input.patches) enc.convert(p.rect);
    const out = enc.encode(input.t_ms, { forceIdr: input.forceKey });
    if (out.frameType === 'skip' || out.nals.length === 0) return null;
    const key = out.frameType === 'idr';
    if (key && out.nals.some((n) => nalType(n) === NAL_SPS)) {
      const description = buildAvcC(out.nals);
      this.decoderConfig = {
        codec: avcCodecString(description),
        codedWidth: enc.codedWidth,
        codedHeight: enc.codedHeight,
        description,
      };
    }
    const au: AccessUnit = { data: toAvccSample(out.nals), t_ms: input.t_ms, key };
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

/** Backend-module entry point used by the encode worker. */
export function createBackend(): EncoderBackend {
  return new OpenH264Backend();
}
