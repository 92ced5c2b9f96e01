/* Parameters of the golden sequence; mirrored in test/openh264-wasm/golden.ts. */
#ifndef DESKREC_GOLDEN_PARAMS_H
#define DESKREC_GOLDEN_PARAMS_H
#define GOLDEN_WIDTH 320
#define GOLDEN_HEIGHT 240
#define GOLDEN_FRAMES 10
#define GOLDEN_QP 26
#define GOLDEN_KEYFRAME_INTERVAL 0
#define GOLDEN_MAX_FPS 30
#endif
