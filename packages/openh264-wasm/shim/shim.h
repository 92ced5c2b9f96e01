/* deskrec openh264 shim: flat C API (see shim.c). */
#ifndef DESKREC_OPENH264_SHIM_H
#define DESKREC_OPENH264_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ShimEncoder ShimEncoder;
typedef struct ShimConverter ShimConverter;

/* usage */
#define SHIM_USAGE_SCREEN 0
#define SHIM_USAGE_CAMERA 1
/* rate control */
#define SHIM_RC_QP 0
#define SHIM_RC_BITRATE 1
/* chroma modes of the RGBA -> I420 conversion */
#define SHIM_CHROMA_PLAIN 0
#define SHIM_CHROMA_SHARP 1
/* errors */
#define SHIM_EBADARG (-1)
#define SHIM_ENOMEM (-2)
#define SHIM_EINIT (-3)
#define SHIM_EENCODE (-4)

int shim_last_error (void);
ShimEncoder* shim_create (int src_w, int src_h, int usage, int rc_mode, int rc_value,
                          int keyframe_interval, double max_frame_rate);
void shim_destroy (ShimEncoder* e);
uint8_t* shim_rgba (ShimEncoder* e);
uint8_t* shim_plane_y (ShimEncoder* e);
uint8_t* shim_plane_u (ShimEncoder* e);
uint8_t* shim_plane_v (ShimEncoder* e);
int shim_coded_width (ShimEncoder* e);
int shim_coded_height (ShimEncoder* e);
int shim_force_idr (ShimEncoder* e);
int shim_set_bitrate (ShimEncoder* e, int bits_per_second);
int shim_mb_count (ShimEncoder* e);
uint8_t* shim_change_map (ShimEncoder* e);
int shim_set_motion_hints (ShimEncoder* e, int count, int x0, int y0, int x1, int y1, int x2, int y2, int x3, int y3);
int shim_used_motion_hint (ShimEncoder* e, int which);
int shim_encode (ShimEncoder* e, double timestamp_ms, int force_idr, int use_map);
int shim_nal_count (ShimEncoder* e);
uintptr_t* shim_nal_table (ShimEncoder* e);
int convert_rect (ShimEncoder* e, int x, int y, int w, int h);
ShimConverter* shim_converter (ShimEncoder* e);
ShimConverter* converter_create (int src_w, int src_h);
void converter_destroy (ShimConverter* c);
uint8_t* converter_rgba (ShimConverter* c);
uint8_t* converter_band (ShimConverter* c);
int converter_band_bytes (ShimConverter* c);
int converter_begin_bands (ShimConverter* c, int x, int y, int w, int h);
int converter_convert_band (ShimConverter* c, int x, int y, int w, int h);
uint8_t* converter_plane_y (ShimConverter* c);
uint8_t* converter_plane_u (ShimConverter* c);
uint8_t* converter_plane_v (ShimConverter* c);
int converter_coded_width (ShimConverter* c);
int converter_coded_height (ShimConverter* c);
int converter_set_chroma_mode (ShimConverter* c, int mode);
int converter_set_sharp_budget (ShimConverter* c, int n);
int converter_sharp_solved (ShimConverter* c);
int converter_sharp_skipped (ShimConverter* c);
int converter_convert_rect (ShimConverter* c, int x, int y, int w, int h);

#ifdef __cplusplus
}
#endif

#endif
