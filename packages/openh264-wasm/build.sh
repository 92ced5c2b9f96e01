#!/usr/bin/env bash
# Rebuild packages/openh264-wasm/dist/ from Debian's openh264 source package.
#
#   ./build.sh                 build dist/openh264.{js,wasm}, dist/LICENSE.openh264, dist/SHA256SUMS
#   ./build.sh --verify-stock  build the STOCK encoder (Debian source + only the
#                              0001 link-fix patch) natively with gcc, encode the
#                              golden synthetic sequence with shim/golden_harness.c
#                              and print the SHA-256 of the Annex-B stream
#
# Nothing is downloaded except through apt (Debian archive). Work files go to
# .build/ (gitignored).
set -euo pipefail

OPENH264_DEB_VERSION="2.3.1+dfsg-3+deb12u2"
OPENH264_SRC_DIR="openh264-2.3.1+dfsg"
EMCC_EXPECTED="3.1.6"
EXPORT_NAME="createOpenH264Module"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$HERE/.build"
DIST="$HERE/dist"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
MODE="build"

case "${1:-}" in
  "") ;;
  --verify-stock) MODE="verify-stock" ;;
  -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
  *) echo "unknown argument: $1" >&2; exit 2 ;;
esac

log() { printf '\n== %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------- apt deps
ensure_packages() {
  local missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing apt packages: ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}

ensure_deb_src() {
  if grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return
  fi
  local f=/etc/apt/sources.list.d/debian.sources
  if [ ! -f "$f" ]; then
    echo "no deb-src entry and no $f to enable it in; add a deb-src line for Debian bookworm" >&2
    exit 1
  fi
  log "enabling deb-src in $f"
  as_root sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
  as_root apt-get update
}

# Fetch (once, cached in .build/dl) and unpack a fresh source tree into $1.
fresh_source() {
  local dest="$1"
  mkdir -p "$WORK/dl"
  if [ ! -f "$WORK/dl/openh264_${OPENH264_DEB_VERSION}.dsc" ]; then
    ensure_deb_src
    log "fetching Debian source openh264=$OPENH264_DEB_VERSION"
    (cd "$WORK/dl" && apt-get source --download-only "openh264=$OPENH264_DEB_VERSION")
  fi
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  # dpkg-source verifies the checksums in the .dsc and applies Debian's patches.
  (cd "$WORK/dl" && dpkg-source -x "openh264_${OPENH264_DEB_VERSION}.dsc" "$dest" >/dev/null)
}

# Apply our patches (all of them, or only those matching a glob) in order.
apply_patches() {
  local tree="$1" glob="$2" p
  for p in "$HERE"/patches/$glob; do
    [ -e "$p" ] || continue
    log "applying $(basename "$p")"
    patch -d "$tree" -p1 --forward --batch --quiet < "$p"
  done
}

LIBS=(libcommon.a libprocessing.a libencoder.a)

# ---------------------------------------------------------------- modes
build_wasm() {
  ensure_packages dpkg-dev emscripten patch make xz-utils
  export NODE_PATH="/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}"
  local ver
  ver="$(emcc --version | head -n1 | sed -E 's/.* ([0-9]+\.[0-9]+\.[0-9]+).*/\1/')"
  if [ "$ver" != "$EMCC_EXPECTED" ]; then
    echo "warning: emcc $ver (expected $EMCC_EXPECTED); output bytes will differ from dist/SHA256SUMS" >&2
  fi

  local src="$WORK/wasm/$OPENH264_SRC_DIR"
  fresh_source "$src"
  apply_patches "$src" '*.patch'

  # Paths must not leak into the output: map the tree to '.'.
  # -O2, not -O3: clang's -O3 unrolls and inlines more, and V8 compiles the larger wasm no better: the
  # module is 4 % smaller and full-speed replays 1-4 % cheaper at -O2, the H.264 stream byte-identical
  # (docs/BENCHMARKS.md, issue 12, twelfth round). The post-link optimiser (em++ -O3 below) is unchanged.
  local cflags_opt="-O2 -msimd128 -ffile-prefix-map=$src=. -ffile-prefix-map=$HERE=."
  log "building openh264 static libraries (wasm32)"
  (cd "$src" && emmake make -j"$JOBS" OS=linux ARCH=wasm32 CC=emcc CXX=em++ AR=emar \
      USE_ASM=No USE_STACK_PROTECTOR=No CFLAGS_OPT="$cflags_opt" "${LIBS[@]}" >"$WORK/wasm/make.log" 2>&1) \
    || { tail -n 40 "$WORK/wasm/make.log" >&2; exit 1; }

  log "compiling shim"
  emcc $cflags_opt -std=c11 -Wall -Wextra -Werror -I"$src/codec/api/wels" \
    -c "$HERE/shim/shim.c" -o "$WORK/wasm/shim.o"

  local exported
  exported='["_malloc","_free","_shim_last_error","_shim_create","_shim_destroy","_shim_rgba",'
  exported+='"_shim_plane_y","_shim_plane_u","_shim_plane_v","_shim_coded_width","_shim_coded_height",'
  exported+='"_shim_mb_count","_shim_change_map",'
  exported+='"_shim_force_idr","_shim_set_bitrate","_shim_encode","_shim_nal_count","_shim_nal_table",'
  exported+='"_convert_rect"]'

  log "linking dist/openh264.js + dist/openh264.wasm"
  # binaryen (emcc's post-link optimiser) inlines every function that has a single caller by default; here
  # that made a few giant functions (the frame driver, 27 KB of wasm, the encoder's set-up, 25 KB) whose
  # rarely taken branches V8 still compiles whole, with its optimising compiler, on their first call.
  # Kept as separate functions, what never runs is never compiled: V8's compile time for a recording
  # 114 -> 52 ms, creating an encoder and its first two pictures 229 -> 184 ms, and the hot code is no
  # slower (full-speed replays 3 % cheaper). Byte-identical output. (docs/BENCHMARKS.md, issue 12,
  # twelfth round.)
  mkdir -p "$DIST"
  rm -f "$DIST/openh264.js" "$DIST/openh264.wasm"
  (cd "$WORK/wasm" && em++ -O3 -msimd128 \
      shim.o "$src/libencoder.a" "$src/libprocessing.a" "$src/libcommon.a" \
      -s MODULARIZE=1 \
      -s EXPORT_NAME="$EXPORT_NAME" \
      -s ENVIRONMENT=node \
      -s ALLOW_MEMORY_GROWTH=1 \
      -s INITIAL_MEMORY=33554432 \
      -s ABORTING_MALLOC=0 \
      -s FILESYSTEM=0 \
      -s NODEJS_CATCH_EXIT=0 \
      -s NODEJS_CATCH_REJECTION=0 \
      -s DYNAMIC_EXECUTION=0 \
      -s EXIT_RUNTIME=0 \
      -s EXPORTED_FUNCTIONS="$exported" \
      -s EXPORTED_RUNTIME_METHODS='[]' \
      -s BINARYEN_EXTRA_PASSES=--one-caller-inline-max-function-size=0 \
      -o openh264.js)
  install -m 644 "$WORK/wasm/openh264.js" "$WORK/wasm/openh264.wasm" "$DIST/"
  install -m 644 "$src/LICENSE" "$DIST/LICENSE.openh264"
  (cd "$DIST" && sha256sum openh264.js openh264.wasm LICENSE.openh264 > SHA256SUMS)
  log "done"
  cat "$DIST/SHA256SUMS"
}

verify_stock() {
  ensure_packages dpkg-dev patch make g++ xz-utils
  local src="$WORK/stock/$OPENH264_SRC_DIR"
  fresh_source "$src"
  apply_patches "$src" '0001-*.patch'

  log "building STOCK openh264 static libraries natively (gcc, USE_ASM=No)"
  (cd "$src" && make -j"$JOBS" USE_ASM=No CFLAGS_OPT="-O2" "${LIBS[@]}" >"$WORK/stock/make.log" 2>&1) \
    || { tail -n 40 "$WORK/stock/make.log" >&2; exit 1; }

  log "building golden harness"
  gcc -O2 -std=c11 -Wall -Wextra -I"$src/codec/api/wels" -I"$HERE/shim" \
    -c "$HERE/shim/shim.c" -o "$WORK/stock/shim.o"
  gcc -O2 -std=c11 -Wall -Wextra -I"$HERE/shim" \
    -c "$HERE/shim/golden_harness.c" -o "$WORK/stock/golden_harness.o"
  g++ -o "$WORK/stock/golden_harness" "$WORK/stock/golden_harness.o" "$WORK/stock/shim.o" \
    "$src/libencoder.a" "$src/libprocessing.a" "$src/libcommon.a" -lpthread -lm

  local out="$WORK/stock/golden.h264"
  "$WORK/stock/golden_harness" "$out"
  if command -v ffprobe >/dev/null 2>&1; then
    ffprobe -v error -select_streams v:0 -count_frames \
      -show_entries stream=codec_name,profile,width,height,nb_read_frames,color_range,color_space,color_primaries,color_transfer \
      -of default=noprint_wrappers=1 "$out" >&2
  fi
  printf 'stock golden sha256: %s\n' "$(sha256sum "$out" | cut -d' ' -f1)"
}

case "$MODE" in
  build) build_wasm ;;
  verify-stock) verify_stock ;;
esac
