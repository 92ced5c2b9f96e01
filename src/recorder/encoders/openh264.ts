/** The default encoder backend: openh264 compiled to WebAssembly (packages/openh264-wasm). */
import { EncoderError } from '../../errors';
import { loadOpenH264, type H264Encoder } from '../../../packages/openh264-wasm/src/index';
import { avcCodecString, buildAvcC, nalType, NAL_SPS, toAvccSample } from './avc';
import type { AccessUnit, DecoderConfig, EncodeInput, EncoderBackend, EncoderConfig } from './backend';

/** openh264-wasm behind the backend interface; one instance owns one wasm module instance. */
class OpenH264Backend implements EncoderBackend {
  readonly name = 'openh264-wasm';
  private enc: H264Encoder | null = null;
  private decoderConfig: DecoderConfig | null = null;
  private useMap = false;
  private map: Uint8Array = new Uint8Array(0);

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
      this.useMap = config.changeMap;
      this.map = new Uint8Array(this.enc.mbCols * this.enc.mbRows);
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
    const out = enc.encode(input.t_ms, this.useMap && !input.forceKey
      ? { forceIdr: false, changeMap: markChangedMacroblocks(this.map, enc.mbCols, input.patches) }
      : { forceIdr: input.forceKey });
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

/** Backend-module entry point used by the encode worker. */
export function createBackend(): EncoderBackend {
  return new OpenH264Backend();
}
