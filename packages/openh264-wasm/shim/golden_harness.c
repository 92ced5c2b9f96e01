/*
 * Golden-sequence harness: encodes GOLDEN_FRAMES frames of a deterministic
 * synthetic desktop-like I420 sequence through the shim (fixed QP, screen
 * content) and writes the Annex-B stream (00 00 00 01 before every NAL) to
 * argv[1]. The generator is mirrored exactly by
 * test/openh264-wasm/golden.ts; keep the two in sync.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

#include "shim.h"
#include "golden_params.h"

static uint8_t golden_y (int x, int y, int n) {
  /* cursor (blinks) */
  if ((n & 1) == 0 && x >= 200 && x < 202 && y >= 100 && y < 112)
    return 24;
  /* title bar with a title whose length changes */
  if (y < 16) {
    if (y >= 4 && y < 12 && x >= 8 && x < 8 + 6 * ((n % 4) + 10) && ((x >> 1) + (y >> 1)) % 3 == 0)
      return 200;
    return 40;
  }
  /* moving window */
  const int wx = 24 + 12 * n, wy = 48 + 6 * n;
  if (x >= wx && x < wx + 96 && y >= wy && y < wy + 64) {
    if (y < wy + 10)
      return 90;
    return (uint8_t)(16 + ((x - wx) * 3 + (y - wy) * 2 + n * 5) % 220);
  }
  /* static text */
  const int row = (y - 16) / 12, col = x / 8, line = (y - 16) % 12;
  const int glyph = (row * 31 + col * 17 + ((row * col) >> 2)) % 7;
  if (line >= 2 && line < 10 && x % 8 != 7 && glyph < 5 && (x * 5 + y * 3 + glyph) % 4 < 2)
    return 24;
  return 235;
}

static void golden_uv (int cx, int cy, int n, uint8_t* u, uint8_t* v) {
  const int x = 2 * cx, y = 2 * cy;
  const int wx = 24 + 12 * n, wy = 48 + 6 * n;
  if (y < 16) {
    *u = 150;
    *v = 110;
  } else if (x >= wx && x < wx + 96 && y >= wy && y < wy + 64) {
    *u = (uint8_t)(16 + (cx + n * 3) % 200);
    *v = (uint8_t)(240 - (cy * 2 + n) % 200);
  } else {
    *u = 128;
    *v = 128;
  }
}

int main (int argc, char** argv) {
  if (argc != 2) {
    fprintf (stderr, "usage: %s OUT.h264\n", argv[0]);
    return 2;
  }
  ShimEncoder* e = shim_create (GOLDEN_WIDTH, GOLDEN_HEIGHT, SHIM_USAGE_SCREEN, SHIM_RC_QP, GOLDEN_QP,
                                GOLDEN_KEYFRAME_INTERVAL, GOLDEN_MAX_FPS);
  if (e == NULL) {
    fprintf (stderr, "shim_create failed: %d\n", shim_last_error ());
    return 1;
  }
  FILE* out = fopen (argv[1], "wb");
  if (out == NULL) {
    perror (argv[1]);
    return 1;
  }
  const int w = GOLDEN_WIDTH, h = GOLDEN_HEIGHT;
  uint8_t* py = shim_plane_y (e);
  uint8_t* pu = shim_plane_u (e);
  uint8_t* pv = shim_plane_v (e);
  static const uint8_t start[4] = {0, 0, 0, 1};
  for (int n = 0; n < GOLDEN_FRAMES; n++) {
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        py[y * w + x] = golden_y (x, y, n);
    for (int cy = 0; cy < h / 2; cy++)
      for (int cx = 0; cx < w / 2; cx++)
        golden_uv (cx, cy, n, &pu[cy * (w / 2) + cx], &pv[cy * (w / 2) + cx]);
    int type = shim_encode (e, (double)((n * 1000) / GOLDEN_MAX_FPS), 0, 0);
    if (type < 0) {
      fprintf (stderr, "encode failed at frame %d: %d\n", n, type);
      return 1;
    }
    const uintptr_t* t = shim_nal_table (e);
    int count = shim_nal_count (e);
    fprintf (stderr, "frame %d: type %d, %d NAL units\n", n, type, count);
    for (int i = 0; i < count; i++) {
      fwrite (start, 1, 4, out);
      fwrite ((const void*)t[2 * i], 1, (size_t)t[2 * i + 1], out);
    }
  }
  fclose (out);
  shim_destroy (e);
  return 0;
}
