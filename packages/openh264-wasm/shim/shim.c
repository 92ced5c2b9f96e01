/*
 * deskrec openh264 shim: a flat C API over openh264's ISVCEncoder plus an
 * RGBA -> I420 (BT.601, limited range) converter that works on rectangles,
 * with plain or sharp chroma.
 *
 * All buffers of one encoder (RGBA staging frame of the source size, I420
 * planes of the coded size) live in the module's linear memory, so the
 * JavaScript side copies RGBA in once and the planes never leave wasm. The
 * same buffers and conversion (ShimConverter) also exist without an encoder
 * (converter_create), for encoders outside this module.
 *
 * Error convention: functions returning int give >= 0 on success and one of
 * the negative SHIM_E* codes on failure.
 */
#include <limits.h>
#include <math.h>
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

/* A 2x2 block's sharp result, cached by its pixels (sharp_block). */
typedef struct SharpEntry {
  uint64_t top, bottom;   /* the block's two rows: pixel R | G << 8 | B << 16, left pixel in the low half */
  uint8_t yuv[8];         /* Y00, Y01, Y10, Y11, U, V */
} SharpEntry;

#define SHARP_CACHE_BITS 13 /* sets of 2 entries (2-way: colliding edge blocks of one screen do not evict each other) */
#define SHARP_EMPTY (~(uint64_t)0) /* never a key: keys have zero bytes */

/* Default budget of cache misses solved per convert call: max (SHARP_BUDGET_MIN,
   blocks of the rect / SHARP_BUDGET_SHARE). A miss costs ~0.6 us, so a 1080p frame
   of RGB noise (518400 blocks, nearly all misses) would take ~330 ms; the budget
   caps it near 16200 solves (~10 ms). Text fits: its edge blocks repeat, so a screen
   has a few hundred to a few thousand distinct ones. */
#define SHARP_BUDGET_MIN 4096
#define SHARP_BUDGET_SHARE 32

/* Bytes of the band buffer at least (see converter_band): rows of a patch are
   copied into it and converted from there while they are in the CPU's cache. */
#define BAND_MIN_BYTES (256 * 1024)

/* The I420 planes and the conversion into them from RGBA, given either in a
   staging frame the size of the source or, a band of rows at a time, in a small
   band buffer: one inside every encoder, or standalone (converter_create) for
   encoders outside this module that only need the conversion. Each buffer is
   allocated on first use: a caller that converts from bands (2x2-aligned patches)
   never pays for the staging frame (3 MB at 1024x768, 8 MB at 1920x1080). */
struct ShimConverter {
  int src_w, src_h;       /* source size, may be odd */
  int coded_w, coded_h;   /* source size rounded up to even */
  uint8_t* rgba;          /* NULL until first used; then src_w * src_h * 4, bytes R,G,B,A */
  uint8_t* band;          /* NULL until first used; then band_bytes */
  int band_bytes;         /* max (BAND_MIN_BYTES, two source rows) */
  uint8_t* y;             /* coded_w * coded_h */
  uint8_t* u;             /* (coded_w / 2) * (coded_h / 2) */
  uint8_t* v;
  int chroma_mode;        /* SHIM_CHROMA_PLAIN or SHIM_CHROMA_SHARP */
  SharpEntry* cache;      /* 2 << SHARP_CACHE_BITS entries, allocated with the first sharp mode */
  int sharp_budget;       /* misses solved per convert call: > 0 that many, < 0 unlimited, 0 the default */
  int budget_left;        /* misses the current call may still solve */
  int sharp_solved;       /* misses solved by the last convert call */
  int sharp_skipped;      /* flagged misses the last call left plain (budget spent) */
};

struct ShimEncoder {
  ShimConverter pic;      /* staging frame + planes the encoder codes from */
  ISVCEncoder* enc;
  int rc_mode;            /* SHIM_RC_QP or SHIM_RC_BITRATE */
  int mb_count;           /* ceil(coded_w / 16) * ceil(coded_h / 16) */
  uint8_t* change_map;    /* mb_count bytes, filled by the caller before shim_encode (use_map) */
  int hint_count;         /* motion hints for the next shim_encode with a map: -1 none given, else 0..4 */
  int hints[4][2];        /* (mvx, mvy): content at (x, y) was at (x + mvx, y + mvy) in the previous picture */
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

static void converter_free_buffers (ShimConverter* c) {
  free (c->rgba);
  free (c->band);
  free (c->y);
  free (c->u);
  free (c->v);
  free (c->cache);
}

/* Allocates the planes of *c (zeroed by the caller) for a source size checked by
   the caller; planes start black (limited range). SHIM_ENOMEM leaves *c to
   converter_free_buffers. The staging frame and the band come on first use. */
static int converter_init (ShimConverter* c, int src_w, int src_h) {
  c->src_w = src_w;
  c->src_h = src_h;
  c->coded_w = (src_w + 1) & ~1;
  c->coded_h = (src_h + 1) & ~1;
  c->chroma_mode = SHIM_CHROMA_PLAIN;
  size_t luma = (size_t)c->coded_w * (size_t)c->coded_h;
  c->band_bytes = src_w * 4 * 2 > BAND_MIN_BYTES ? src_w * 4 * 2 : BAND_MIN_BYTES;
  c->y = (uint8_t*)calloc (luma, 1);
  c->u = (uint8_t*)calloc (luma / 4, 1);
  c->v = (uint8_t*)calloc (luma / 4, 1);
  if (c->y == NULL || c->u == NULL || c->v == NULL)
    return SHIM_ENOMEM;
  memset (c->y, 16, luma);
  memset (c->u, 128, luma / 4);
  memset (c->v, 128, luma / 4);
  return 0;
}

static int size_ok (int src_w, int src_h) {
  return src_w >= 2 && src_h >= 2 && src_w <= 16384 && src_h <= 16384;
}

static void shim_free_all (ShimEncoder* e) {
  if (e == NULL)
    return;
  if (e->enc != NULL) {
    (*e->enc)->Uninitialize (e->enc);
    WelsDestroySVCEncoder (e->enc);
  }
  converter_free_buffers (&e->pic);
  free (e->change_map);
  free (e->nal_table);
  free (e);
}

SHIM_EXPORT ShimEncoder* shim_create (int src_w, int src_h, int usage, int rc_mode, int rc_value,
                                      int keyframe_interval, double max_frame_rate) {
  g_last_error = 0;
  if (!size_ok (src_w, src_h) || keyframe_interval < 0 ||
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
  e->rc_mode = rc_mode;
  int rc = converter_init (&e->pic, src_w, src_h);
  e->mb_count = ((e->pic.coded_w + 15) / 16) * ((e->pic.coded_h + 15) / 16);
  e->change_map = (uint8_t*)calloc ((size_t)e->mb_count, 1);
  e->hint_count = -1;
  e->nal_cap = 16;
  e->nal_table = (uintptr_t*)calloc ((size_t)e->nal_cap * 2, sizeof (uintptr_t));
  if (rc < 0 || e->change_map == NULL || e->nal_table == NULL) {
    shim_free_all (e);
    g_last_error = SHIM_ENOMEM;
    return NULL;
  }

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
  p.iPicWidth = e->pic.coded_w;
  p.iPicHeight = e->pic.coded_h;
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
  l->iVideoWidth = e->pic.coded_w;
  l->iVideoHeight = e->pic.coded_h;
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
    /* Below QP 16 the H.264 loop filter changes no sample: its thresholds alpha and beta are 0 for
       indexA, indexB 0..15 (Table 8-16; the filter offsets and chroma_qp_index_offset are 0 here), and
       a sample is filtered only where |p0 - q0| < alpha. Turned off, the encoder skips a pass whose
       result it would throw away and players skip it too; the decoded pictures are the same. A
       macroblock openh264 raises above 15 to fit its buffer is then left unfiltered: still a valid
       stream, only blockier there. Retries at coarser QPs make encoders of their own (with the filter). */
    if (rc_value < 16)
      p.iLoopFilterDisableIdc = 1;
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

SHIM_EXPORT ShimConverter* shim_converter (ShimEncoder* e) { return &e->pic; }
SHIM_EXPORT uint8_t* shim_rgba (ShimEncoder* e) { return converter_rgba (&e->pic); }
SHIM_EXPORT uint8_t* shim_plane_y (ShimEncoder* e) { return e->pic.y; }
SHIM_EXPORT uint8_t* shim_plane_u (ShimEncoder* e) { return e->pic.u; }
SHIM_EXPORT uint8_t* shim_plane_v (ShimEncoder* e) { return e->pic.v; }
SHIM_EXPORT int shim_coded_width (ShimEncoder* e) { return e->pic.coded_w; }
SHIM_EXPORT int shim_coded_height (ShimEncoder* e) { return e->pic.coded_h; }
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

/* Motion hints for the next shim_encode with a change map (patches/0202-motion-hints.patch):
   count (0..4) whole-pixel vectors, (mvx, mvy) = where the content of the current picture was in
   the previous one relative to where it is now (a copy's source minus its destination). They
   replace openh264's own scroll detection for that frame; count 0 says there was no motion.
   Without a call before a frame, openh264 detects scrolls itself as before. */
SHIM_EXPORT int shim_set_motion_hints (ShimEncoder* e, int count, int x0, int y0, int x1, int y1, int x2, int y2,
                                       int x3, int y3) {
  if (count < 0 || count > 4)
    return SHIM_EBADARG;
  const int v[4][2] = { { x0, y0 }, { x1, y1 }, { x2, y2 }, { x3, y3 } };
  for (int k = 0; k < 4; k++) {
    e->hints[k][0] = v[k][0];
    e->hints[k][1] = v[k][1];
  }
  e->hint_count = count;
  return 0;
}

/* The motion hint the last shim_encode took as its frame's scroll vector: which 0 -> 1 if it took
   one, 0 if none (no hints, or none matched); which 1 / 2 -> its x / y (0 when none). */
SHIM_EXPORT int shim_used_motion_hint (ShimEncoder* e, int which) {
#ifdef DESKREC_HAVE_MOTION_HINTS
  SDeskrecMotionHints h;
  if ((*e->enc)->GetOption (e->enc, ENCODER_OPTION_DESKREC_MOTION_HINTS, &h) != cmResultSuccess || h.iCount < 1)
    return 0;
  return which == 0 ? 1 : which == 1 ? h.iMv[0][0] : h.iMv[0][1];
#else
  (void)e; (void)which;
  return 0;
#endif
}

/* Encode the current I420 planes. With use_map, the change map (shim_change_map: one byte
   per macroblock, row-major, 0 = unchanged since the previous frame) goes with this frame
   (patches/0201-change-map.patch); IDR/I frames ignore it. Returns the EVideoFrameType
   (1 IDR, 2 I, 3 P, 4 skip) or a negative error. NAL units: shim_nal_count/shim_nal_table. */
SHIM_EXPORT int shim_encode (ShimEncoder* e, double timestamp_ms, int force_idr, int use_map) {
  e->nal_count = 0;
  /* Hints go with this frame's change map only, and with this frame only (also when it fails early). */
  const int hint_count = use_map ? e->hint_count : -1;
  e->hint_count = -1;
  (void)hint_count; /* unused in a stock build */
  if (force_idr && call_force_intra (e->enc) != cmResultSuccess)
    return SHIM_EENCODE;
  if (use_map) {
#ifdef DESKREC_HAVE_CHANGE_MAP
    SDeskrecChangeMap m;
    m.pMap = e->change_map;
    m.iMbCount = e->mb_count;
    if ((*e->enc)->SetOption (e->enc, ENCODER_OPTION_DESKREC_CHANGE_MAP, &m) != cmResultSuccess)
      return SHIM_EBADARG;
#ifdef DESKREC_HAVE_MOTION_HINTS
    if (hint_count >= 0) {
      SDeskrecMotionHints h;
      memset (&h, 0, sizeof (h));
      h.iCount = hint_count;
      for (int k = 0; k < hint_count; k++) {
        h.iMv[k][0] = e->hints[k][0];
        h.iMv[k][1] = e->hints[k][1];
      }
      if ((*e->enc)->SetOption (e->enc, ENCODER_OPTION_DESKREC_MOTION_HINTS, &h) != cmResultSuccess)
        return SHIM_EBADARG;
    }
#endif
#else
    return SHIM_EBADARG; /* stock openh264 (build.sh --verify-stock): no change maps */
#endif
  }
  SSourcePicture pic;
  memset (&pic, 0, sizeof (pic));
  pic.iColorFormat = videoFormatI420;
  pic.iPicWidth = e->pic.coded_w;
  pic.iPicHeight = e->pic.coded_h;
  pic.iStride[0] = e->pic.coded_w;
  pic.iStride[1] = e->pic.coded_w / 2;
  pic.iStride[2] = e->pic.coded_w / 2;
  pic.pData[0] = e->pic.y;
  pic.pData[1] = e->pic.u;
  pic.pData[2] = e->pic.v;
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
 * RGBA -> I420, plain.
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

/* ---------------------------------------------------------------------------
 * Sharp chroma: the C twin of sharpBlock / needsSharp in src/recorder/colour.ts,
 * which explains the method; tests hold the two to bit-exactness, so keep every
 * step, candidate order and tie rule identical. Decoder model (BT.601 limited
 * range), c = Y - 16, d = U - 128, e = V - 128:
 *   R = clamp((298c + 409e + 128) >> 8)
 *   G = clamp((298c - 100d - 208e + 128) >> 8)
 *   B = clamp((298c + 516d + 128) >> 8)
 * ------------------------------------------------------------------------- */

#define SHARP_SPREAD_MAX 24 /* see SHARP_SPREAD_MAX in colour.ts */

/* needsSharp: the spread of the halved colour differences floor ((R - G) / 2) and
   floor ((B - G) / 2) over the block exceeds SHARP_SPREAD_MAX.
   s: R, G, B of the 4 pixels (row-major in the block). */
static inline int needs_sharp (const int32_t* s) {
  int min_rg = 1024, max_rg = -1024, min_bg = 1024, max_bg = -1024;
  for (int k = 0; k < 4; k++) {
    const int rg = (s[3 * k] - s[3 * k + 1]) >> 1;
    const int bg = (s[3 * k + 2] - s[3 * k + 1]) >> 1;
    min_rg = rg < min_rg ? rg : min_rg;
    max_rg = rg > max_rg ? rg : max_rg;
    min_bg = bg < min_bg ? bg : min_bg;
    max_bg = bg > max_bg ? bg : max_bg;
  }
  return max_rg - min_rg > SHARP_SPREAD_MAX || max_bg - min_bg > SHARP_SPREAD_MAX;
}

/* The chroma offsets (d, e) of the block's most colourful pixel: largest |d| + |e|
   of its own plain chroma, the first such pixel. */
static void colourful_start (const int32_t* s, int* pd, int* pe) {
  int best_mag = -1, bd = 0, be = 0;
  for (int k = 0; k < 4; k++) {
    const int r = 4 * s[3 * k], g = 4 * s[3 * k + 1], b = 4 * s[3 * k + 2];
    const int d = (-9714 * r - 19070 * g + 28784 * b + 131072) >> 18;
    const int e = (28784 * r - 24103 * g - 4681 * b + 131072) >> 18;
    const int mag = (d < 0 ? -d : d) + (e < 0 ? -e : e);
    if (mag > best_mag) {
      best_mag = mag;
      bd = d;
      be = e;
    }
  }
  *pd = bd;
  *pe = be;
}

/* The 2x2 least-squares solution of chroma step (b) from the term counts and sums;
   (d, e) in/out, clamped to -128..127. Every product is below 2^51 and exact in
   int64; the quotient floor((2n + den) / (2den)) is computed in doubles exactly
   like the JS reference (correctly rounded, hence exact below 2^53). */
static inline int clamp_q (double q) {
  return q < -128.0 ? -128 : q > 127.0 ? 127 : (int)q;
}

static inline double round_div_f64 (int64_t n, int64_t den) {
  return floor ((double)(2 * n + den) / (double)(2 * den));
}

static void chroma_solve (int nr, int ng, int nb, int64_t sr, int64_t sg, int64_t sb, int* pd, int* pe) {
  const int64_t a00 = 10000 * (int64_t)ng + 266256 * (int64_t)nb;
  const int64_t a01 = 20800 * (int64_t)ng;
  const int64_t a11 = 167281 * (int64_t)nr + 43264 * (int64_t)ng;
  const int64_t b0 = -100 * sg + 516 * sb;
  const int64_t b1 = 409 * sr - 208 * sg;
  const int64_t det = a00 * a11 - a01 * a01;
  if (det > 0) {
    *pd = clamp_q (round_div_f64 (a11 * b0 - a01 * b1, det));
    *pe = clamp_q (round_div_f64 (a00 * b1 - a01 * b0, det));
  } else if (ng == 0) {
    if (nb > 0)
      *pd = clamp_q (round_div_f64 (b0, a00));
    if (nr > 0)
      *pe = clamp_q (round_div_f64 (b1, a11));
  }
}

#ifdef SHIM_SIMD
/* The solver with the block's 4 pixels in the 4 lanes of i32x4 vectors. */
typedef struct Px4 {
  v128_t r, g, b;
} Px4;

static inline int32_t hsum4 (v128_t v) {
  return wasm_i32x4_extract_lane (v, 0) + wasm_i32x4_extract_lane (v, 1) + wasm_i32x4_extract_lane (v, 2) +
         wasm_i32x4_extract_lane (v, 3);
}

/* Per lane: squared error of the decoded pixel with c = Y - 16 and chroma terms m* (incl. + 128). */
static inline v128_t err4 (const Px4* s, v128_t c, v128_t mr, v128_t mg, v128_t mb) {
  const v128_t l = wasm_i32x4_mul (c, wasm_i32x4_splat (298));
  const v128_t zero = wasm_i32x4_splat (0);
  const v128_t top = wasm_i32x4_splat (255);
  const v128_t xr = wasm_i32x4_min (wasm_i32x4_max (wasm_i32x4_shr (wasm_i32x4_add (l, mr), 8), zero), top);
  const v128_t xg = wasm_i32x4_min (wasm_i32x4_max (wasm_i32x4_shr (wasm_i32x4_add (l, mg), 8), zero), top);
  const v128_t xb = wasm_i32x4_min (wasm_i32x4_max (wasm_i32x4_shr (wasm_i32x4_add (l, mb), 8), zero), top);
  const v128_t er = wasm_i32x4_sub (xr, s->r);
  const v128_t eg = wasm_i32x4_sub (xg, s->g);
  const v128_t eb = wasm_i32x4_sub (xb, s->b);
  return wasm_i32x4_add (wasm_i32x4_add (wasm_i32x4_mul (er, er), wasm_i32x4_mul (eg, eg)), wasm_i32x4_mul (eb, eb));
}

/* floor((2 num + 298 n) / (596 n)) per lane. |2 num + 298 n| < 2^21, so it is
   exact in f32, and the correctly rounded f32 quotient never crosses an integer
   (checked exhaustively over the whole range against integer division). */
static inline v128_t round_div4 (v128_t num, int n) {
  const v128_t a = wasm_i32x4_add (wasm_i32x4_shl (num, 1), wasm_i32x4_splat (298 * n));
  const v128_t q = wasm_f32x4_div (wasm_f32x4_convert_i32x4 (a), wasm_f32x4_splat ((float)(596 * n)));
  return wasm_i32x4_trunc_sat_f32x4 (wasm_f32x4_floor (q));
}

/* Step (a) for the 4 pixels: their best c (= Y - 16) for chroma offsets d, e. */
static v128_t luma_step4 (const Px4* s, int d, int e) {
  const int mr = 409 * e, mg = -100 * d - 208 * e, mb = 516 * d;
  const v128_t tr = wasm_i32x4_sub (wasm_i32x4_shl (s->r, 8), wasm_i32x4_splat (mr));
  const v128_t tg = wasm_i32x4_sub (wasm_i32x4_shl (s->g, 8), wasm_i32x4_splat (mg));
  const v128_t tb = wasm_i32x4_sub (wasm_i32x4_shl (s->b, 8), wasm_i32x4_splat (mb));
  const v128_t mr1 = wasm_i32x4_splat (mr + 128), mg1 = wasm_i32x4_splat (mg + 128), mb1 = wasm_i32x4_splat (mb + 128);
  const v128_t lo = wasm_i32x4_splat (-16), hi = wasm_i32x4_splat (239);
  v128_t best = lo;
  v128_t best_err = err4 (s, lo, mr1, mg1, mb1);
  for (int set = 1; set <= 8; set++) {
    v128_t c = hi;
    if (set < 8) {
      const int n = (set & 1) + ((set >> 1) & 1) + ((set >> 2) & 1);
      v128_t num = wasm_i32x4_splat (0);
      if (set & 1)
        num = wasm_i32x4_add (num, tr);
      if (set & 2)
        num = wasm_i32x4_add (num, tg);
      if (set & 4)
        num = wasm_i32x4_add (num, tb);
      c = wasm_i32x4_min (wasm_i32x4_max (round_div4 (num, n), lo), hi);
    }
    const v128_t err = err4 (s, c, mr1, mg1, mb1);
    const v128_t better = wasm_i32x4_lt (err, best_err); /* strictly: the first best wins */
    best = wasm_v128_bitselect (c, best, better);
    best_err = wasm_v128_bitselect (err, best_err, better);
  }
  return best;
}

static inline v128_t unclamped4 (v128_t l, int k) {
  const v128_t p = wasm_i32x4_add (l, wasm_i32x4_splat (k + 128));
  return wasm_v128_and (wasm_i32x4_ge (p, wasm_i32x4_splat (0)), wasm_i32x4_lt (p, wasm_i32x4_splat (65536)));
}

/* Step (b): U, V offsets given the 4 pixels' c, from d, e (in/out). */
static void chroma_step4 (const Px4* s, v128_t c, int* pd, int* pe) {
  const v128_t l = wasm_i32x4_mul (c, wasm_i32x4_splat (298));
  const v128_t tr = wasm_i32x4_sub (wasm_i32x4_shl (s->r, 8), l);
  const v128_t tg = wasm_i32x4_sub (wasm_i32x4_shl (s->g, 8), l);
  const v128_t tb = wasm_i32x4_sub (wasm_i32x4_shl (s->b, 8), l);
  const int d = *pd, e = *pe;
  const v128_t ar = unclamped4 (l, 409 * e);
  const v128_t ag = unclamped4 (l, -100 * d - 208 * e);
  const v128_t ab = unclamped4 (l, 516 * d);
  chroma_solve (__builtin_popcount (wasm_i32x4_bitmask (ar)), __builtin_popcount (wasm_i32x4_bitmask (ag)),
                __builtin_popcount (wasm_i32x4_bitmask (ab)), hsum4 (wasm_v128_and (tr, ar)),
                hsum4 (wasm_v128_and (tg, ag)), hsum4 (wasm_v128_and (tb, ab)), pd, pe);
}

static inline int block_error4 (const Px4* s, v128_t c, int d, int e) {
  return hsum4 (err4 (s, c, wasm_i32x4_splat (409 * e + 128), wasm_i32x4_splat (-100 * d - 208 * e + 128),
                      wasm_i32x4_splat (516 * d + 128)));
}

/* Steps (a), (b), (a) from d, e: c and (d, e) out, exact block error returned. */
static int descend4 (const Px4* s, int d, int e, v128_t* pc, int* pd, int* pe) {
  const v128_t c0 = luma_step4 (s, d, e);
  chroma_step4 (s, c0, &d, &e);
  *pc = luma_step4 (s, d, e);
  *pd = d;
  *pe = e;
  return block_error4 (s, *pc, d, e);
}

/* sharpBlock: replaces the plain result q (Y00, Y01, Y10, Y11, U, V) by a sharp
   one when that decodes strictly closer to the pixels s. */
static void sharp_solve (const int32_t* s, int32_t* q) {
  const Px4 px = {
    wasm_i32x4_make (s[0], s[3], s[6], s[9]),
    wasm_i32x4_make (s[1], s[4], s[7], s[10]),
    wasm_i32x4_make (s[2], s[5], s[8], s[11]),
  };
  const v128_t c16 = wasm_i32x4_splat (16);
  const int plain_err = block_error4 (&px, wasm_i32x4_sub (wasm_i32x4_make (q[0], q[1], q[2], q[3]), c16),
                                      q[4] - 128, q[5] - 128);
  v128_t ca, cb;
  int da, ea, db, eb;
  const int err_a = descend4 (&px, q[4] - 128, q[5] - 128, &ca, &da, &ea);
  int d0, e0;
  colourful_start (s, &d0, &e0);
  const int err_b = descend4 (&px, d0, e0, &cb, &db, &eb);
  const v128_t* c;
  if (err_a <= err_b) {
    if (err_a >= plain_err)
      return;
    c = &ca;
    q[4] = da + 128;
    q[5] = ea + 128;
  } else {
    if (err_b >= plain_err)
      return;
    c = &cb;
    q[4] = db + 128;
    q[5] = eb + 128;
  }
  const v128_t y = wasm_i32x4_add (*c, c16);
  q[0] = wasm_i32x4_extract_lane (y, 0);
  q[1] = wasm_i32x4_extract_lane (y, 1);
  q[2] = wasm_i32x4_extract_lane (y, 2);
  q[3] = wasm_i32x4_extract_lane (y, 3);
}

#else /* scalar solver, for builds without wasm SIMD (the native golden harness) */

static inline int clamp_int (int v, int lo, int hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/* round(n / den) for den > 0, halves up: floor((2n + den) / (2den)). */
static inline int32_t round_div32 (int32_t n, int32_t den) {
  const int32_t a = 2 * n + den;
  const int32_t b = 2 * den;
  int32_t q = a / b;
  if (a % b != 0 && a < 0)
    q--;
  return q;
}

static inline int pixel_error (int r, int g, int b, int l, int mr, int mg, int mb) {
  const int er = clamp_u8 ((l + mr) >> 8) - r;
  const int eg = clamp_u8 ((l + mg) >> 8) - g;
  const int eb = clamp_u8 ((l + mb) >> 8) - b;
  return er * er + eg * eg + eb * eb;
}

/* q: Y00, Y01, Y10, Y11, U, V. */
static int block_error (const int32_t* s, const int32_t* q) {
  const int d = q[4] - 128;
  const int e = q[5] - 128;
  const int mr = 409 * e + 128;
  const int mg = -100 * d - 208 * e + 128;
  const int mb = 516 * d + 128;
  int err = 0;
  for (int k = 0; k < 4; k++)
    err += pixel_error (s[3 * k], s[3 * k + 1], s[3 * k + 2], 298 * (q[k] - 16), mr, mg, mb);
  return err;
}

/* Step (a): each pixel's best Y for chroma offsets d, e into t[0..3]. */
static void luma_step (const int32_t* s, int d, int e, int32_t* t) {
  const int mr = 409 * e;
  const int mg = -100 * d - 208 * e;
  const int mb = 516 * d;
  for (int k = 0; k < 4; k++) {
    const int r = s[3 * k], g = s[3 * k + 1], b = s[3 * k + 2];
    const int tr = 256 * r - mr;
    const int tg = 256 * g - mg;
    const int tb = 256 * b - mb;
    int best = -16;
    int best_err = pixel_error (r, g, b, 298 * -16, mr + 128, mg + 128, mb + 128);
    for (int set = 1; set <= 8; set++) {
      int c = 239;
      if (set < 8) {
        const int n = (set & 1) + ((set >> 1) & 1) + ((set >> 2) & 1);
        const int num = ((set & 1) ? tr : 0) + ((set & 2) ? tg : 0) + ((set & 4) ? tb : 0);
        c = clamp_int (round_div32 (num, 298 * n), -16, 239);
      }
      const int err = pixel_error (r, g, b, 298 * c, mr + 128, mg + 128, mb + 128);
      if (err < best_err) {
        best_err = err;
        best = c;
      }
    }
    t[k] = best + 16;
  }
}

static inline int unclamped (int p) {
  return p + 128 >= 0 && p + 128 < 65536;
}

/* Step (b): U, V into t[4], t[5] given the Ys in t[0..3], from offsets d, e. */
static void chroma_step (const int32_t* s, int d, int e, int32_t* t) {
  int nr = 0, ng = 0, nb = 0;
  int64_t sr = 0, sg = 0, sb = 0;
  const int kr = 409 * e;
  const int kg = -100 * d - 208 * e;
  const int kb = 516 * d;
  for (int k = 0; k < 4; k++) {
    const int l = 298 * (t[k] - 16);
    if (unclamped (l + kr)) {
      nr++;
      sr += 256 * s[3 * k] - l;
    }
    if (unclamped (l + kg)) {
      ng++;
      sg += 256 * s[3 * k + 1] - l;
    }
    if (unclamped (l + kb)) {
      nb++;
      sb += 256 * s[3 * k + 2] - l;
    }
  }
  chroma_solve (nr, ng, nb, sr, sg, sb, &d, &e);
  t[4] = d + 128;
  t[5] = e + 128;
}

static int descend (const int32_t* s, int d, int e, int32_t* t) {
  luma_step (s, d, e, t);
  chroma_step (s, d, e, t);
  luma_step (s, t[4] - 128, t[5] - 128, t);
  return block_error (s, t);
}

static void sharp_solve (const int32_t* s, int32_t* q) {
  int32_t a[6], b[6];
  const int plain_err = block_error (s, q);
  const int err_a = descend (s, q[4] - 128, q[5] - 128, a);
  int d0, e0;
  colourful_start (s, &d0, &e0);
  const int err_b = descend (s, d0, e0, b);
  if (err_a <= err_b) {
    if (err_a < plain_err)
      memcpy (q, a, sizeof (a));
  } else if (err_b < plain_err) {
    memcpy (q, b, sizeof (b));
  }
}
#endif

static inline uint64_t rgb_pair (const uint8_t* left, const uint8_t* right) {
  uint32_t a, b;
  memcpy (&a, left, 4);
  memcpy (&b, right, 4);
  return (uint64_t)(a & 0xffffffu) | (uint64_t)(b & 0xffffffu) << 32; /* little-endian: R | G << 8 | B << 16 */
}

/* Fills a cache entry: the sharp (or, if not better, plain) result for pixels
   p00 p01 / p10 p11 whose plain result q is given. */
static __attribute__ ((noinline)) void sharp_fill (SharpEntry* ent, uint64_t top, uint64_t bottom, const uint8_t* p00,
                                                   const uint8_t* p01, const uint8_t* p10, const uint8_t* p11,
                                                   int32_t* q) {
  const int32_t s[12] = {
    p00[0], p00[1], p00[2], p01[0], p01[1], p01[2], p10[0], p10[1], p10[2], p11[0], p11[1], p11[2],
  };
  if (needs_sharp (s))
    sharp_solve (s, q);
  ent->top = top;
  ent->bottom = bottom;
  for (int i = 0; i < 6; i++)
    ent->yuv[i] = (uint8_t)q[i];
}

/* The sharp result for the block of pixels p00 p01 / p10 p11 whose plain result
   is already in the planes (y0[cx], y0[cx + 1], y1[...], u[cx / 2], v[cx / 2]).
   Screens repeat the same few blocks (the edges of glyphs in a few colours), so
   results are cached by their 4 pixels; a cached result depends on the pixels
   alone. Misses are solved only while the call's budget lasts (budget_left);
   after that a block keeps its plain result unless the cache already has it, so
   with a budget the result also depends on what the converter saw before (a
   deterministic function of the sequence of calls). */
static inline void sharp_block (ShimConverter* c, const uint8_t* p00, const uint8_t* p01, const uint8_t* p10,
                                const uint8_t* p11, uint8_t* y0, uint8_t* y1, uint8_t* u, uint8_t* v, int cx) {
  const uint64_t top = rgb_pair (p00, p01);
  const uint64_t bottom = rgb_pair (p10, p11);
  const uint64_t h = ((top * 0x9e3779b97f4a7c15ull) ^ bottom) * 0xc2b2ae3d27d4eb4full;
  SharpEntry* set = &c->cache[2 * (size_t)(h >> (64 - SHARP_CACHE_BITS))];
  SharpEntry* ent = set;
  if (ent->top != top || ent->bottom != bottom) {
    ent = set + 1;
    if (ent->top != top || ent->bottom != bottom) {
      /* Miss, budget spent: the plain result stays in the planes and the cache is
         left alone (a plain result stored there would later be served as the
         block's sharp one, and evicting would only cost hits). */
      if (c->budget_left <= 0) {
        c->sharp_skipped++;
        return;
      }
      c->budget_left--;
      c->sharp_solved++;
      /* The newer entry moves to the second way, the new result takes the first. */
      set[1] = set[0];
      ent = set;
      int32_t q[6] = { y0[cx], y0[cx + 1], y1[cx], y1[cx + 1], u[cx >> 1], v[cx >> 1] };
      sharp_fill (ent, top, bottom, p00, p01, p10, p11, q);
    }
  }
  y0[cx] = ent->yuv[0];
  y0[cx + 1] = ent->yuv[1];
  y1[cx] = ent->yuv[2];
  y1[cx + 1] = ent->yuv[3];
  u[cx >> 1] = ent->yuv[4];
  v[cx >> 1] = ent->yuv[5];
}

/* Coded columns [cx0, cx1) (both even) of coded rows cy, cy + 1 (cy even);
   source rows r0, r1 (r1 == r0 for the padding row). Columns count from the
   pointers (r0, y0, u, ...: all at the same even column), and `last` is the last
   source column from there. */
static void convert_span_scalar (ShimConverter* c, const uint8_t* r0, const uint8_t* r1, uint8_t* y0,
                                 uint8_t* y1, uint8_t* u, uint8_t* v, int cx0, int cx1, int last) {
  const int sharp = c->chroma_mode == SHIM_CHROMA_SHARP;
  for (int cx = cx0; cx < cx1; cx += 2) {
    const int sa = cx; /* always <= last because cx is even and within the coded width */
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
    if (sharp) {
      /* The spread test here; sharp_block repeats it only on a cache miss. */
      const int32_t s[12] = {
        p00[0], p00[1], p00[2], p01[0], p01[1], p01[2], p10[0], p10[1], p10[2], p11[0], p11[1], p11[2],
      };
      if (needs_sharp (s))
        sharp_block (c, p00, p01, p10, p11, y0, y1, u, v, cx);
    }
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

/* Halved colour differences of 4 pixels, as u8 lanes: avgr (R, 255 - G) =
   floor ((R - G) / 2) + 128 in the R lane, the same for B; the G and A lanes
   come out 128 (avgr (G, 255 - G), avgr (A, 255 - A)). */
static inline v128_t halved_diffs (v128_t px) {
  const v128_t g = wasm_i8x16_shuffle (px, px, 1, 1, 1, 3, 5, 5, 5, 7, 9, 9, 9, 11, 13, 13, 13, 15);
  return wasm_u8x16_avgr (px, wasm_v128_xor (g, wasm_i32x4_splat (-1)));
}

/* range > SHARP_SPREAD_MAX per u8 lane, in the lane's sign bit: the range plus
   127 - SHARP_SPREAD_MAX reaches 128 (saturating add, no unsigned compare needed). */
static inline v128_t over_spread (v128_t mx, v128_t mn) {
  return wasm_u8x16_add_sat (wasm_i8x16_sub (mx, mn), wasm_u8x16_splat (127 - SHARP_SPREAD_MAX));
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

/* Sharp mode, after convert_span_simd over the same span (its pixels are still in
   the L1 cache): finds the blocks of more than one colour and replaces their plain
   result. A separate pass keeps the plain loop as it is, and its speed with it. */
static void sharp_span_simd (ShimConverter* c, const uint8_t* r0, const uint8_t* r1, uint8_t* y0, uint8_t* y1,
                             uint8_t* u, uint8_t* v, int cx0, int n16) {
  int cx = cx0;
  for (int k = 0; k < n16; k++, cx += 16) {
    const uint8_t* a = r0 + 4 * cx;
    const uint8_t* b = r1 + 4 * cx;
    /* Most of a screen is flat, or changes only from row to row (gradients): when
       each row of the strip is one colour, all 8 blocks are the same block. */
    const v128_t fa = wasm_v128_load32_splat (a);
    const v128_t fb = wasm_v128_load32_splat (b);
    v128_t diff = wasm_i32x4_splat (0);
    for (int j = 0; j < 4; j++) {
      diff = wasm_v128_or (diff, wasm_v128_xor (wasm_v128_load (a + 16 * j), fa));
      diff = wasm_v128_or (diff, wasm_v128_xor (wasm_v128_load (b + 16 * j), fb));
    }
    if (!wasm_v128_any_true (wasm_v128_and (diff, wasm_i32x4_splat (0x00ffffff)))) {
      const int32_t s[12] = { a[0], a[1], a[2], a[0], a[1], a[2], b[0], b[1], b[2], b[0], b[1], b[2] };
      if (!needs_sharp (s))
        continue;
    }
    /* Next, grey text, smooth pictures: if the colour differences of the whole
       strip stay within the spread, so do those of each of its blocks. */
    v128_t ha[4], hb[4], mx[4], mn[4];
    for (int j = 0; j < 4; j++) {
      ha[j] = halved_diffs (wasm_v128_load (a + 16 * j));
      hb[j] = halved_diffs (wasm_v128_load (b + 16 * j));
      mx[j] = wasm_u8x16_max (ha[j], hb[j]);
      mn[j] = wasm_u8x16_min (ha[j], hb[j]);
    }
    v128_t smx = wasm_u8x16_max (wasm_u8x16_max (mx[0], mx[1]), wasm_u8x16_max (mx[2], mx[3]));
    v128_t smn = wasm_u8x16_min (wasm_u8x16_min (mn[0], mn[1]), wasm_u8x16_min (mn[2], mn[3]));
    /* Over the 4 pixels of the vector; the R and B lanes stay apart (G and A lanes are constant). */
    smx = wasm_u8x16_max (smx, wasm_i32x4_shuffle (smx, smx, 2, 3, 0, 1));
    smn = wasm_u8x16_min (smn, wasm_i32x4_shuffle (smn, smn, 2, 3, 0, 1));
    smx = wasm_u8x16_max (smx, wasm_i32x4_shuffle (smx, smx, 1, 0, 3, 2));
    smn = wasm_u8x16_min (smn, wasm_i32x4_shuffle (smn, smn, 1, 0, 3, 2));
    if (wasm_i8x16_bitmask (over_spread (smx, smn)) == 0)
      continue;
    /* Block by block: max / min over the two rows, then over the two columns. */
    uint32_t mask = 0;
    for (int j = 0; j < 4; j++) {
      const v128_t bmx = wasm_u8x16_max (mx[j], wasm_i32x4_shuffle (mx[j], mx[j], 1, 0, 3, 2));
      const v128_t bmn = wasm_u8x16_min (mn[j], wasm_i32x4_shuffle (mn[j], mn[j], 1, 0, 3, 2));
      const uint32_t bits = (uint32_t)wasm_i8x16_bitmask (over_spread (bmx, bmn));
      mask |= (((bits & 0x00ff) != 0 ? 1u : 0u) | ((bits & 0xff00) != 0 ? 2u : 0u)) << (2 * j);
    }
    while (mask != 0) {
      const int j = __builtin_ctz (mask);
      mask &= mask - 1;
      sharp_block (c, a + 8 * j, a + 8 * j + 4, b + 8 * j, b + 8 * j + 4, y0, y1, u, v, cx + 2 * j);
    }
  }
}
#endif

SHIM_EXPORT ShimConverter* converter_create (int src_w, int src_h) {
  g_last_error = 0;
  if (!size_ok (src_w, src_h)) {
    g_last_error = SHIM_EBADARG;
    return NULL;
  }
  ShimConverter* c = (ShimConverter*)calloc (1, sizeof (ShimConverter));
  if (c == NULL || converter_init (c, src_w, src_h) < 0) {
    if (c != NULL)
      converter_free_buffers (c);
    free (c);
    g_last_error = SHIM_ENOMEM;
    return NULL;
  }
  return c;
}

SHIM_EXPORT void converter_destroy (ShimConverter* c) {
  if (c == NULL)
    return;
  converter_free_buffers (c);
  free (c);
}

/* The staging frame, allocated (zeroed) on first use; NULL when out of memory. */
SHIM_EXPORT uint8_t* converter_rgba (ShimConverter* c) {
  if (c->rgba == NULL)
    c->rgba = (uint8_t*)calloc ((size_t)c->src_w * (size_t)c->src_h, 4);
  return c->rgba;
}
/* The band buffer (converter_band_bytes bytes), allocated on first use; NULL when
   out of memory. */
SHIM_EXPORT uint8_t* converter_band (ShimConverter* c) {
  if (c->band == NULL)
    c->band = (uint8_t*)malloc ((size_t)c->band_bytes);
  return c->band;
}
SHIM_EXPORT int converter_band_bytes (ShimConverter* c) { return c->band_bytes; }

SHIM_EXPORT uint8_t* converter_plane_y (ShimConverter* c) { return c->y; }
SHIM_EXPORT uint8_t* converter_plane_u (ShimConverter* c) { return c->u; }
SHIM_EXPORT uint8_t* converter_plane_v (ShimConverter* c) { return c->v; }
SHIM_EXPORT int converter_coded_width (ShimConverter* c) { return c->coded_w; }
SHIM_EXPORT int converter_coded_height (ShimConverter* c) { return c->coded_h; }

/* SHIM_CHROMA_PLAIN or SHIM_CHROMA_SHARP for the following conversions (the
   planes keep what earlier conversions wrote). */
SHIM_EXPORT int converter_set_chroma_mode (ShimConverter* c, int mode) {
  if (mode != SHIM_CHROMA_PLAIN && mode != SHIM_CHROMA_SHARP)
    return SHIM_EBADARG;
  if (mode == SHIM_CHROMA_SHARP && c->cache == NULL) {
    const size_t n = (size_t)2 << SHARP_CACHE_BITS;
    c->cache = (SharpEntry*)malloc (n * sizeof (SharpEntry));
    if (c->cache == NULL)
      return SHIM_ENOMEM;
    for (size_t i = 0; i < n; i++)
      c->cache[i].top = SHARP_EMPTY;
  }
  c->chroma_mode = mode;
  return 0;
}

/* Cache misses the next convert calls may solve: n > 0 at most n per call, n <= 0
   no limit. Until this is called: max (4096, blocks of the call's rect / 32). */
SHIM_EXPORT int converter_set_sharp_budget (ShimConverter* c, int n) {
  c->sharp_budget = n > 0 ? n : -1;
  return 0;
}

/* Work of the last convert call in sharp mode (for tests and metrics): cache
   misses solved, and flagged misses left plain because the budget was spent. */
SHIM_EXPORT int converter_sharp_solved (ShimConverter* c) { return c->sharp_solved; }
SHIM_EXPORT int converter_sharp_skipped (ShimConverter* c) { return c->sharp_skipped; }

/* Starts a conversion call: the sharp budget for the coded area [cx0, cx1) x
   [cy0, cy1) (all even), and the call's statistics from zero. */
static void convert_begin (ShimConverter* c, int cx0, int cy0, int cx1, int cy1) {
  c->sharp_solved = 0;
  c->sharp_skipped = 0;
  if (c->sharp_budget > 0) {
    c->budget_left = c->sharp_budget;
  } else if (c->sharp_budget < 0) {
    c->budget_left = INT_MAX; /* more than the blocks of any frame (at most 8192 x 8192) */
  } else {
    const int blocks = ((cx1 - cx0) >> 1) * ((cy1 - cy0) >> 1);
    c->budget_left = blocks / SHARP_BUDGET_SHARE > SHARP_BUDGET_MIN ? blocks / SHARP_BUDGET_SHARE : SHARP_BUDGET_MIN;
  }
}

/* Converts the coded area [cx0, cx1) x [cy0, cy1) (all even). `src` is source
   pixel (cx0, cy0), `sstride` bytes per row, and holds the source rows and
   columns the area covers (an area ending at the coded edge of an odd source
   takes its last row or column twice). */
static void convert_area (ShimConverter* c, const uint8_t* src, size_t sstride, int cx0, int cy0, int cx1, int cy1) {
  const int cw = c->coded_w;
  const int last = c->src_w - 1 - cx0; /* the last source column, counted from cx0 */
  for (int cy = cy0; cy < cy1; cy += 2) {
    /* cy is even and < coded_h, hence < src_h; its pair is the padding row past an odd source */
    const uint8_t* r0 = src + (size_t)(cy - cy0) * sstride;
    const uint8_t* r1 = cy + 1 < c->src_h ? r0 + sstride : r0;
    uint8_t* y0 = c->y + (size_t)cy * cw + cx0;
    uint8_t* y1 = y0 + cw;
    uint8_t* u = c->u + (size_t)(cy >> 1) * (cw >> 1) + (cx0 >> 1);
    uint8_t* v = c->v + (size_t)(cy >> 1) * (cw >> 1) + (cx0 >> 1);
    int cx = 0;
    const int n = cx1 - cx0;
#ifdef SHIM_SIMD
    /* Vector steps only where all 16 source columns exist. */
    const int simd_end = (cx1 < c->src_w ? cx1 : c->src_w) - cx0;
    const int n16 = simd_end > 0 ? simd_end >> 4 : 0;
    if (n16 > 0) {
      convert_span_simd (r0, r1, y0, y1, u, v, 0, n16);
      if (c->chroma_mode == SHIM_CHROMA_SHARP)
        sharp_span_simd (c, r0, r1, y0, y1, u, v, 0, n16);
      cx = 16 * n16;
    }
#endif
    if (cx < n)
      convert_span_scalar (c, r0, r1, y0, y1, u, v, cx, n, last);
  }
}

SHIM_EXPORT int converter_convert_rect (ShimConverter* c, int x, int y, int w, int h) {
  if (x < 0 || y < 0 || w < 0 || h < 0 || w > c->src_w - x || h > c->src_h - y)
    return SHIM_EBADARG;
  c->sharp_solved = 0;
  c->sharp_skipped = 0;
  if (w == 0 || h == 0)
    return 0;
  if (converter_rgba (c) == NULL)
    return SHIM_ENOMEM;
  /* Expand outward to even coordinates; an odd right/bottom source edge
     rounds up to the coded size, which takes in the padding column/row. */
  const int cx0 = x & ~1;
  const int cy0 = y & ~1;
  const int cx1 = (x + w + 1) & ~1;
  const int cy1 = (y + h + 1) & ~1;
  const size_t sstride = (size_t)c->src_w * 4;
  convert_begin (c, cx0, cy0, cx1, cy1);
  convert_area (c, c->rgba + (size_t)cy0 * sstride + (size_t)cx0 * 4, sstride, cx0, cy0, cx1, cy1);
  return 0;
}

/* A rect is 2x2-aligned when its blocks of 4:2:0 chroma lie wholly inside it:
   x and y even, its right and bottom edges even or those of the source. */
static int aligned_rect (const ShimConverter* c, int x, int y, int w, int h) {
  return x >= 0 && y >= 0 && w > 0 && h > 0 && w <= c->src_w - x && h <= c->src_h - y && (x & 1) == 0
    && (y & 1) == 0 && ((x + w) % 2 == 0 || x + w == c->src_w) && ((y + h) % 2 == 0 || y + h == c->src_h);
}

/* Starts converting a 2x2-aligned rect band by band (converter_convert_band): the
   sharp budget is the rect's, as converter_convert_rect's for the same rect. */
SHIM_EXPORT int converter_begin_bands (ShimConverter* c, int x, int y, int w, int h) {
  if (!aligned_rect (c, x, y, w, h))
    return SHIM_EBADARG;
  convert_begin (c, x, y, (x + w + 1) & ~1, (y + h + 1) & ~1);
  return 0;
}

/* Converts a 2x2-aligned rect whose pixels the caller put in the band buffer,
   tightly packed (w * 4 bytes per row). Belongs to the rect last given to
   converter_begin_bands: its budget and statistics go on. The staging frame is
   neither read nor written. */
SHIM_EXPORT int converter_convert_band (ShimConverter* c, int x, int y, int w, int h) {
  if (!aligned_rect (c, x, y, w, h) || (int64_t)w * h * 4 > c->band_bytes)
    return SHIM_EBADARG;
  if (c->band == NULL)
    return SHIM_EBADARG; /* nothing was put in it */
  convert_area (c, c->band, (size_t)w * 4, x, y, (x + w + 1) & ~1, (y + h + 1) & ~1);
  return 0;
}

/* The encoder's own conversion (same as converter_convert_rect (shim_converter (e), ...)). */
SHIM_EXPORT int convert_rect (ShimEncoder* e, int x, int y, int w, int h) {
  return converter_convert_rect (&e->pic, x, y, w, h);
}
