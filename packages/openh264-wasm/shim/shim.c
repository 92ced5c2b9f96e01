/*
 * deskrec openh264 shim: a flat C API over openh264's ISVCEncoder plus an
 * RGBA -> I420 (BT.601, limited range) converter that works on rectangles.
 *
 * All buffers of one encoder (RGBA staging frame of the source size, I420
 * planes of the coded size) live in the module's linear memory, so the
 * JavaScript side copies RGBA in once and the planes never leave wasm.
 *
 * Error convention: functions returning int give >= 0 on success and one of
 * the negative SHIM_E* codes on failure.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec_api.h"
#include "codec_app_def.h"
#include "codec_def.h"

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
#define SHIM_EXPORT EMSCRIPTEN_KEEPALIVE
#else
#define SHIM_EXPORT
#endif

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#define SHIM_SIMD 1
#endif

#include "shim.h"

/* The colour description this shim writes: SMPTE 170M / BT.601. */
_Static_assert (CP_SMPTE170M == 6, "colour primaries code");
_Static_assert (TRC_SMPTE170M == 6, "transfer characteristics code");
_Static_assert (CM_SMPTE170M == 6, "matrix coefficients code");

struct ShimEncoder {
  ISVCEncoder* enc;
  int src_w, src_h;       /* source size, may be odd */
  int coded_w, coded_h;   /* source size rounded up to even */
  int rc_mode;            /* SHIM_RC_QP or SHIM_RC_BITRATE */
  uint8_t* rgba;          /* src_w * src_h * 4, bytes R,G,B,A */
  uint8_t* y;             /* coded_w * coded_h */
  uint8_t* u;             /* (coded_w / 2) * (coded_h / 2) */
  uint8_t* v;
  int mb_count;           /* ceil(coded_w / 16) * ceil(coded_h / 16) */
  uint8_t* change_map;    /* mb_count bytes, filled by the caller before shim_encode (use_map) */
  /* Output of the last encode: pairs (pointer, length) of NAL units without
     start codes, pointing into the encoder's own bitstream buffer. Valid until
     the next call to shim_encode or shim_destroy. */
  uintptr_t* nal_table; /* pairs (address, length); 32-bit words in wasm32 */
  int nal_count;
  int nal_cap;
  SFrameBSInfo info;
};

/* openh264's C vtable declares ForceIntraFrame (ISVCEncoder*, bool), but the
   C++ implementation behind it is ForceIntraFrame (bool bIDR, int iLayerId = -1).
   Natively the missing argument goes unnoticed; wasm's call_indirect checks the
   signature and traps. Call it through a pointer of the real type. */
typedef int (*ForceIntraFrameFn) (ISVCEncoder*, bool, int);

static int call_force_intra (ISVCEncoder* enc) {
  ForceIntraFrameFn fn = (ForceIntraFrameFn) (*enc)->ForceIntraFrame;
  return fn (enc, true, -1);
}

static int g_last_error = 0;

SHIM_EXPORT int shim_last_error (void) {
  return g_last_error;
}

static void shim_free_all (ShimEncoder* e) {
  if (e == NULL)
    return;
  if (e->enc != NULL) {
    (*e->enc)->Uninitialize (e->enc);
    WelsDestroySVCEncoder (e->enc);
  }
  free (e->rgba);
  free (e->y);
  free (e->u);
  free (e->v);
  free (e->change_map);
  free (e->nal_table);
  free (e);
}

SHIM_EXPORT ShimEncoder* shim_create (int src_w, int src_h, int usage, int rc_mode, int rc_value,
                                      int keyframe_interval, double max_frame_rate) {
  g_last_error = 0;
  if (src_w < 2 || src_h < 2 || src_w > 16384 || src_h > 16384 || keyframe_interval < 0 ||
      !(max_frame_rate > 0.0 && max_frame_rate <= 240.0) ||
      (usage != SHIM_USAGE_SCREEN && usage != SHIM_USAGE_CAMERA) ||
      (rc_mode == SHIM_RC_QP && (rc_value < 0 || rc_value > 51)) ||
      (rc_mode == SHIM_RC_BITRATE && rc_value <= 0) ||
      (rc_mode != SHIM_RC_QP && rc_mode != SHIM_RC_BITRATE)) {
    g_last_error = SHIM_EBADARG;
    return NULL;
  }
  ShimEncoder* e = (ShimEncoder*)calloc (1, sizeof (ShimEncoder));
  if (e == NULL) {
    g_last_error = SHIM_ENOMEM;
    return NULL;
  }
  e->src_w = src_w;
  e->src_h = src_h;
  e->coded_w = (src_w + 1) & ~1;
  e->coded_h = (src_h + 1) & ~1;
  e->rc_mode = rc_mode;
  size_t luma = (size_t)e->coded_w * (size_t)e->coded_h;
  e->rgba = (uint8_t*)calloc ((size_t)src_w * (size_t)src_h, 4);
  e->y = (uint8_t*)calloc (luma, 1);
  e->u = (uint8_t*)calloc (luma / 4, 1);
  e->v = (uint8_t*)calloc (luma / 4, 1);
  e->mb_count = ((e->coded_w + 15) / 16) * ((e->coded_h + 15) / 16);
  e->change_map = (uint8_t*)calloc ((size_t)e->mb_count, 1);
  e->nal_cap = 16;
  e->nal_table = (uintptr_t*)calloc ((size_t)e->nal_cap * 2, sizeof (uintptr_t));
  if (e->rgba == NULL || e->y == NULL || e->u == NULL || e->v == NULL || e->change_map == NULL ||
      e->nal_table == NULL) {
    shim_free_all (e);
    g_last_error = SHIM_ENOMEM;
    return NULL;
  }
  /* Black, limited range. */
  memset (e->y, 16, luma);
  memset (e->u, 128, luma / 4);
  memset (e->v, 128, luma / 4);

  if (WelsCreateSVCEncoder (&e->enc) != 0 || e->enc == NULL) {
    e->enc = NULL;
    shim_free_all (e);
    g_last_error = SHIM_EINIT;
    return NULL;
  }
  int trace = WELS_LOG_QUIET;
  (*e->enc)->SetOption (e->enc, ENCODER_OPTION_TRACE_LEVEL, &trace);

  SEncParamExt p;
  memset (&p, 0, sizeof (p));
  (*e->enc)->GetDefaultParams (e->enc, &p);
  p.iUsageType = usage == SHIM_USAGE_SCREEN ? SCREEN_CONTENT_REAL_TIME : CAMERA_VIDEO_REAL_TIME;
  p.iPicWidth = e->coded_w;
  p.iPicHeight = e->coded_h;
  p.fMaxFrameRate = (float)max_frame_rate;
  p.iTemporalLayerNum = 1;
  p.iSpatialLayerNum = 1;
  p.uiIntraPeriod = (unsigned int)keyframe_interval;
  p.iMultipleThreadIdc = 1;
  p.bUseLoadBalancing = false;
  p.bEnableFrameSkip = false;
  p.iEntropyCodingModeFlag = 0;
  p.bEnableFrameCroppingFlag = true;
  p.eSpsPpsIdStrategy = CONSTANT_ID;
  p.bPrefixNalAddingCtrl = false;
  p.bSimulcastAVC = false;
  p.iPaddingFlag = 0;

  SSpatialLayerConfig* l = &p.sSpatialLayers[0];
  l->iVideoWidth = e->coded_w;
  l->iVideoHeight = e->coded_h;
  l->fFrameRate = (float)max_frame_rate;
  l->sSliceArgument.uiSliceMode = SM_SINGLE_SLICE;
  l->sSliceArgument.uiSliceNum = 1;
  l->bVideoSignalTypePresent = true;
  l->uiVideoFormat = VF_UNDEF;
  l->bFullRange = false;
  l->bColorDescriptionPresent = true;
  l->uiColorPrimaries = CP_SMPTE170M;
  l->uiTransferCharacteristics = TRC_SMPTE170M;
  l->uiColorMatrix = CM_SMPTE170M;

  if (rc_mode == SHIM_RC_QP) {
    p.iRCMode = RC_OFF_MODE;
    p.bEnableAdaptiveQuant = false; /* keep the QP really fixed */
    p.iTargetBitrate = 0;
    p.iMaxBitrate = UNSPECIFIED_BIT_RATE;
    l->iSpatialBitrate = 0;
    l->iMaxSpatialBitrate = UNSPECIFIED_BIT_RATE;
    l->iDLayerQp = rc_value;
  } else {
    p.iRCMode = RC_BITRATE_MODE;
    p.iTargetBitrate = rc_value;
    p.iMaxBitrate = UNSPECIFIED_BIT_RATE;
    l->iSpatialBitrate = rc_value;
    l->iMaxSpatialBitrate = UNSPECIFIED_BIT_RATE;
  }

  if ((*e->enc)->InitializeExt (e->enc, &p) != cmResultSuccess) {
    shim_free_all (e);
    g_last_error = SHIM_EINIT;
    return NULL;
  }
  int fmt = videoFormatI420;
  (*e->enc)->SetOption (e->enc, ENCODER_OPTION_DATAFORMAT, &fmt);
  return e;
}

SHIM_EXPORT void shim_destroy (ShimEncoder* e) {
  shim_free_all (e);
}

SHIM_EXPORT uint8_t* shim_rgba (ShimEncoder* e) { return e->rgba; }
SHIM_EXPORT uint8_t* shim_plane_y (ShimEncoder* e) { return e->y; }
SHIM_EXPORT uint8_t* shim_plane_u (ShimEncoder* e) { return e->u; }
SHIM_EXPORT uint8_t* shim_plane_v (ShimEncoder* e) { return e->v; }
SHIM_EXPORT int shim_coded_width (ShimEncoder* e) { return e->coded_w; }
SHIM_EXPORT int shim_coded_height (ShimEncoder* e) { return e->coded_h; }
SHIM_EXPORT int shim_mb_count (ShimEncoder* e) { return e->mb_count; }
SHIM_EXPORT uint8_t* shim_change_map (ShimEncoder* e) { return e->change_map; }

SHIM_EXPORT int shim_force_idr (ShimEncoder* e) {
  return call_force_intra (e->enc) == cmResultSuccess ? 0 : SHIM_EENCODE;
}

SHIM_EXPORT int shim_set_bitrate (ShimEncoder* e, int bits_per_second) {
  if (e->rc_mode != SHIM_RC_BITRATE || bits_per_second <= 0)
    return SHIM_EBADARG;
  SBitrateInfo b;
  b.iLayer = SPATIAL_LAYER_ALL;
  b.iBitrate = bits_per_second;
  return (*e->enc)->SetOption (e->enc, ENCODER_OPTION_BITRATE, &b) == cmResultSuccess ? 0 : SHIM_EBADARG;
}

static int shim_push_nal (ShimEncoder* e, const uint8_t* p, int len) {
  /* Strip an Annex-B start code (two or more zero bytes, then 0x01). */
  int i = 0;
  while (i < len && p[i] == 0)
    i++;
  if (i < 2 || i >= len || p[i] != 1)
    return SHIM_EENCODE;
  i++;
  if (i >= len)
    return SHIM_EENCODE;
  if (e->nal_count == e->nal_cap) {
    int cap = e->nal_cap * 2;
    uintptr_t* t = (uintptr_t*)realloc (e->nal_table, (size_t)cap * 2 * sizeof (uintptr_t));
    if (t == NULL)
      return SHIM_ENOMEM;
    e->nal_table = t;
    e->nal_cap = cap;
  }
  e->nal_table[2 * e->nal_count] = (uintptr_t)(p + i);
  e->nal_table[2 * e->nal_count + 1] = (uintptr_t)(len - i);
  e->nal_count++;
  return 0;
}

/* Encode the current I420 planes. With use_map, the change map (shim_change_map: one byte
   per macroblock, row-major, 0 = unchanged since the previous frame) goes with this frame
   (patches/0201-change-map.patch); IDR/I frames ignore it. Returns the EVideoFrameType
   (1 IDR, 2 I, 3 P, 4 skip) or a negative error. NAL units: shim_nal_count/shim_nal_table. */
SHIM_EXPORT int shim_encode (ShimEncoder* e, double timestamp_ms, int force_idr, int use_map) {
  e->nal_count = 0;
  if (force_idr && call_force_intra (e->enc) != cmResultSuccess)
    return SHIM_EENCODE;
  if (use_map) {
#ifdef DESKREC_HAVE_CHANGE_MAP
    SDeskrecChangeMap m;
    m.pMap = e->change_map;
    m.iMbCount = e->mb_count;
    if ((*e->enc)->SetOption (e->enc, ENCODER_OPTION_DESKREC_CHANGE_MAP, &m) != cmResultSuccess)
      return SHIM_EBADARG;
#else
    return SHIM_EBADARG; /* stock openh264 (build.sh --verify-stock): no change maps */
#endif
  }
  SSourcePicture pic;
  memset (&pic, 0, sizeof (pic));
  pic.iColorFormat = videoFormatI420;
  pic.iPicWidth = e->coded_w;
  pic.iPicHeight = e->coded_h;
  pic.iStride[0] = e->coded_w;
  pic.iStride[1] = e->coded_w / 2;
  pic.iStride[2] = e->coded_w / 2;
  pic.pData[0] = e->y;
  pic.pData[1] = e->u;
  pic.pData[2] = e->v;
  pic.uiTimeStamp = (long long)timestamp_ms;
  memset (&e->info, 0, sizeof (e->info));
  if ((*e->enc)->EncodeFrame (e->enc, &pic, &e->info) != cmResultSuccess)
    return SHIM_EENCODE;
  for (int li = 0; li < e->info.iLayerNum; li++) {
    const SLayerBSInfo* layer = &e->info.sLayerInfo[li];
    const uint8_t* p = layer->pBsBuf;
    for (int ni = 0; ni < layer->iNalCount; ni++) {
      int len = layer->pNalLengthInByte[ni];
      int rc = shim_push_nal (e, p, len);
      if (rc < 0)
        return rc;
      p += len;
    }
  }
  int t = (int)e->info.eFrameType;
  if (t < videoFrameTypeIDR || t > videoFrameTypeIPMixed)
    return SHIM_EENCODE;
  return t;
}

SHIM_EXPORT int shim_nal_count (ShimEncoder* e) { return e->nal_count; }
SHIM_EXPORT uintptr_t* shim_nal_table (ShimEncoder* e) { return e->nal_table; }

/* ---------------------------------------------------------------------------
 * RGBA -> I420.
 *   Y = ((16829 R + 33039 G + 6416 B + 32768) >> 16) + 16            per pixel
 *   U = ((-9714 sR - 19070 sG + 28784 sB + 131072) >> 18) + 128      per 2x2
 *   V = ((28784 sR - 24103 sG - 4681 sB + 131072) >> 18) + 128       per 2x2
 * (sX = sum over the 2x2 block, arithmetic shifts, results clamped to 0..255;
 * padding column/row of an odd-sized source replicates the last one.)
 * Adding 16 << 16 (resp. 128 << 18) before the shift is the same as adding 16
 * (resp. 128) after it, which the code below uses.
 * ------------------------------------------------------------------------- */

static inline uint8_t clamp_u8 (int32_t v) {
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static inline uint8_t luma_of (const uint8_t* p) {
  return clamp_u8 ((16829 * p[0] + 33039 * p[1] + 6416 * p[2] + 32768 + (16 << 16)) >> 16);
}

/* Coded columns [cx0, cx1) (both even) of coded rows cy, cy + 1 (cy even);
   source rows r0, r1 (r1 == r0 for the padding row). */
static void convert_span_scalar (ShimEncoder* e, const uint8_t* r0, const uint8_t* r1, uint8_t* y0,
                                 uint8_t* y1, uint8_t* u, uint8_t* v, int cx0, int cx1) {
  const int last = e->src_w - 1;
  for (int cx = cx0; cx < cx1; cx += 2) {
    const int sa = cx; /* always < src_w because cx is even and < coded_w */
    const int sb = cx + 1 <= last ? cx + 1 : last;
    const uint8_t* p00 = r0 + 4 * sa;
    const uint8_t* p01 = r0 + 4 * sb;
    const uint8_t* p10 = r1 + 4 * sa;
    const uint8_t* p11 = r1 + 4 * sb;
    y0[cx] = luma_of (p00);
    y0[cx + 1] = luma_of (p01);
    y1[cx] = luma_of (p10);
    y1[cx + 1] = luma_of (p11);
    const int32_t sr = p00[0] + p01[0] + p10[0] + p11[0];
    const int32_t sg = p00[1] + p01[1] + p10[1] + p11[1];
    const int32_t sb2 = p00[2] + p01[2] + p10[2] + p11[2];
    u[cx >> 1] = clamp_u8 ((-9714 * sr - 19070 * sg + 28784 * sb2 + 131072 + (128 << 18)) >> 18);
    v[cx >> 1] = clamp_u8 ((28784 * sr - 24103 * sg - 4681 * sb2 + 131072 + (128 << 18)) >> 18);
  }
}

#ifdef SHIM_SIMD
/*
 * 16 pixels x 2 rows per step. A v128 holds 4 RGBA pixels as i32 lanes
 * R | G << 8 | B << 16 | A << 24. With m = 0x00ff00ff:
 *   E = v & m         -> i16 pairs (R, B)
 *   O = (v >> 8) & m  -> i16 pairs (G, A)
 * i32x4.dot_i16x8_s of E with (cR, cB) gives cR*R + cB*B exactly. Sums of up
 * to four such values stay below 1021 per i16 half, so block sums can be
 * formed in the packed form too. 33039 does not fit an i16, so
 * 33039 G = -32497 G + (G << 16), and (O << 16) == G << 16 since A is
 * shifted out.
 */
static inline v128_t luma4 (v128_t ev, v128_t od) {
  const v128_t c_rb = wasm_i16x8_make (16829, 6416, 16829, 6416, 16829, 6416, 16829, 6416);
  const v128_t c_g = wasm_i16x8_make (-32497, 0, -32497, 0, -32497, 0, -32497, 0);
  const v128_t bias = wasm_i32x4_splat (32768 + (16 << 16));
  v128_t s = wasm_i32x4_add (wasm_i32x4_dot_i16x8 (ev, c_rb), wasm_i32x4_dot_i16x8 (od, c_g));
  s = wasm_i32x4_add (s, wasm_i32x4_shl (od, 16));
  return wasm_i32x4_shr (wasm_i32x4_add (s, bias), 16);
}

static inline v128_t chroma4 (v128_t srb, v128_t sga, v128_t c_rb, v128_t c_g) {
  const v128_t bias = wasm_i32x4_splat (131072 + (128 << 18));
  v128_t s = wasm_i32x4_add (wasm_i32x4_dot_i16x8 (srb, c_rb), wasm_i32x4_dot_i16x8 (sga, c_g));
  return wasm_i32x4_shr (wasm_i32x4_add (s, bias), 18);
}

static void convert_span_simd (const uint8_t* r0, const uint8_t* r1, uint8_t* y0, uint8_t* y1,
                               uint8_t* u, uint8_t* v, int cx0, int n16) {
  const v128_t m = wasm_i32x4_splat (0x00ff00ff);
  const v128_t cu_rb = wasm_i16x8_make (-9714, 28784, -9714, 28784, -9714, 28784, -9714, 28784);
  const v128_t cu_g = wasm_i16x8_make (-19070, 0, -19070, 0, -19070, 0, -19070, 0);
  const v128_t cv_rb = wasm_i16x8_make (28784, -4681, 28784, -4681, 28784, -4681, 28784, -4681);
  const v128_t cv_g = wasm_i16x8_make (-24103, 0, -24103, 0, -24103, 0, -24103, 0);
  int cx = cx0;
  for (int k = 0; k < n16; k++, cx += 16) {
    const uint8_t* a = r0 + 4 * cx;
    const uint8_t* b = r1 + 4 * cx;
    v128_t ea[4], oa[4], eb[4], ob[4];
    for (int j = 0; j < 4; j++) {
      v128_t va = wasm_v128_load (a + 16 * j);
      v128_t vb = wasm_v128_load (b + 16 * j);
      ea[j] = wasm_v128_and (va, m);
      oa[j] = wasm_v128_and (wasm_u32x4_shr (va, 8), m);
      eb[j] = wasm_v128_and (vb, m);
      ob[j] = wasm_v128_and (wasm_u32x4_shr (vb, 8), m);
    }
    v128_t ya = wasm_u8x16_narrow_i16x8 (
                  wasm_i16x8_narrow_i32x4 (luma4 (ea[0], oa[0]), luma4 (ea[1], oa[1])),
                  wasm_i16x8_narrow_i32x4 (luma4 (ea[2], oa[2]), luma4 (ea[3], oa[3])));
    v128_t yb = wasm_u8x16_narrow_i16x8 (
                  wasm_i16x8_narrow_i32x4 (luma4 (eb[0], ob[0]), luma4 (eb[1], ob[1])),
                  wasm_i16x8_narrow_i32x4 (luma4 (eb[2], ob[2]), luma4 (eb[3], ob[3])));
    wasm_v128_store (y0 + cx, ya);
    wasm_v128_store (y1 + cx, yb);

    v128_t se[4], so[4];
    for (int j = 0; j < 4; j++) {
      se[j] = wasm_i32x4_add (ea[j], eb[j]);
      so[j] = wasm_i32x4_add (oa[j], ob[j]);
    }
    v128_t rb0 = wasm_i32x4_add (wasm_i32x4_shuffle (se[0], se[1], 0, 2, 4, 6),
                                 wasm_i32x4_shuffle (se[0], se[1], 1, 3, 5, 7));
    v128_t rb1 = wasm_i32x4_add (wasm_i32x4_shuffle (se[2], se[3], 0, 2, 4, 6),
                                 wasm_i32x4_shuffle (se[2], se[3], 1, 3, 5, 7));
    v128_t ga0 = wasm_i32x4_add (wasm_i32x4_shuffle (so[0], so[1], 0, 2, 4, 6),
                                 wasm_i32x4_shuffle (so[0], so[1], 1, 3, 5, 7));
    v128_t ga1 = wasm_i32x4_add (wasm_i32x4_shuffle (so[2], so[3], 0, 2, 4, 6),
                                 wasm_i32x4_shuffle (so[2], so[3], 1, 3, 5, 7));
    v128_t uu = wasm_i16x8_narrow_i32x4 (chroma4 (rb0, ga0, cu_rb, cu_g), chroma4 (rb1, ga1, cu_rb, cu_g));
    v128_t vv = wasm_i16x8_narrow_i32x4 (chroma4 (rb0, ga0, cv_rb, cv_g), chroma4 (rb1, ga1, cv_rb, cv_g));
    v128_t uv = wasm_u8x16_narrow_i16x8 (uu, vv);
    wasm_v128_store64_lane (u + (cx >> 1), uv, 0);
    wasm_v128_store64_lane (v + (cx >> 1), uv, 1);
  }
}
#endif

SHIM_EXPORT int convert_rect (ShimEncoder* e, int x, int y, int w, int h) {
  if (x < 0 || y < 0 || w < 0 || h < 0 || w > e->src_w - x || h > e->src_h - y)
    return SHIM_EBADARG;
  if (w == 0 || h == 0)
    return 0;
  /* Expand outward to even coordinates; an odd right/bottom source edge
     rounds up to the coded size, which takes in the padding column/row. */
  const int cx0 = x & ~1;
  const int cy0 = y & ~1;
  const int cx1 = (x + w + 1) & ~1;
  const int cy1 = (y + h + 1) & ~1;
  const int cw = e->coded_w;
  const int sstride = e->src_w * 4;
  for (int cy = cy0; cy < cy1; cy += 2) {
    const int sy0 = cy; /* even and < coded_h, hence < src_h */
    const int sy1 = cy + 1 < e->src_h ? cy + 1 : e->src_h - 1;
    const uint8_t* r0 = e->rgba + (size_t)sy0 * sstride;
    const uint8_t* r1 = e->rgba + (size_t)sy1 * sstride;
    uint8_t* y0 = e->y + (size_t)cy * cw;
    uint8_t* y1 = y0 + cw;
    uint8_t* u = e->u + (size_t)(cy >> 1) * (cw >> 1);
    uint8_t* v = e->v + (size_t)(cy >> 1) * (cw >> 1);
    int cx = cx0;
#ifdef SHIM_SIMD
    /* Vector steps only where all 16 source columns exist. */
    const int simd_end = cx1 < e->src_w ? cx1 : e->src_w;
    const int n16 = simd_end > cx0 ? (simd_end - cx0) >> 4 : 0;
    if (n16 > 0) {
      convert_span_simd (r0, r1, y0, y1, u, v, cx0, n16);
      cx = cx0 + 16 * n16;
    }
#endif
    if (cx < cx1)
      convert_span_scalar (e, r0, r1, y0, y1, u, v, cx, cx1);
  }
  return 0;
}
