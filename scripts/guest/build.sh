#!/usr/bin/env bash
# Builds the tiny SPICE test guest from Debian packages: OUTDIR/vmlinuz (the kernel of linux-image-amd64)
# and OUTDIR/initrd.cpio.gz (busybox-static, the DRM modules for QEMU's `-vga std` (bochs) and `-vga qxl`
# (qxl) and an /init that loads them, so fbcon comes up at the DRM resolution, then prints coloured text
# forever). Nothing is installed on this machine: the kernel package is fetched with `apt-get download`
# and unpacked with `dpkg-deb -x` into a temp dir that is deleted afterwards. docs/TESTING.md says why.
#
# `deskrec.mode=photo` on the kernel command line selects the second mode of /init: instead of text it
# draws a smooth colour-gradient picture (precomputed here for both screen sizes, xz-compressed in the
# initrd) to /dev/fb0 and keeps scrolling a band of it (~15 redraws a second under TCG), so spice-server
# sees "photographic" images (JPEG under jpeg-wan-compression) and one area redrawn again and again (an
# MJPEG video stream under streaming-video=all). The default (no deskrec.mode, or deskrec.mode=text) is
# the text guest. See step 4b.
#
# `deskrec.mode=shell` selects the third mode: after a short coloured banner, an interactive busybox shell
# on tty1 (the VT the SPICE display shows, fed by QEMU's PS/2 keyboard), so keys sent over SPICE's inputs
# channel reach it; with a serial port (QEMU -serial) the shell writes `deskrec-shell-ready` to
# /dev/ttyS0 when it is about to read commands, and a typed `echo X >/dev/ttyS0` shows up there: a test can
# see the effect of typing without reading pixels. See step 4c.
#
#   scripts/guest/build.sh OUTDIR [--force]
#
# Idempotent and cached: when OUTDIR already holds both outputs built by this very script (OUTDIR/stamp
# is the SHA-256 of this script and modules.sh), it returns at once without asking apt anything. Concurrent runs for the same
# OUTDIR serialise on OUTDIR/.lock; the outputs are replaced by rename, so readers never see half a file.
# Needs: apt-get, dpkg-deb, busybox (static), cpio, gzip, xz, sha256sum, flock. DESKREC_GUEST_KERNEL_PKG
# overrides the kernel package (default: what linux-image-amd64 depends on).
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [--force]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
OUTDIR=$1
FORCE=0
if [ $# -eq 2 ]; then [ "$2" = --force ] && FORCE=1 || usage; fi

SCRIPT=$(readlink -f "$0")
# shellcheck source=modules.sh
. "$(dirname "$SCRIPT")/modules.sh"
HASH=$(cat "$SCRIPT" "$(dirname "$SCRIPT")/modules.sh" | sha256sum | cut -d' ' -f1)
up_to_date() {
  [ "$FORCE" = 0 ] && [ -s "$OUTDIR/vmlinuz" ] && [ -s "$OUTDIR/initrd.cpio.gz" ] &&
    [ "$(cat "$OUTDIR/stamp" 2>/dev/null)" = "$HASH" ]
}
if up_to_date; then exit 0; fi

for tool in apt-get apt-cache dpkg-deb busybox cpio gzip xz flock; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build.sh: $tool is missing: run scripts/install-test-tools.sh" >&2; exit 1; }
done
BUSYBOX=$(command -v busybox)
if ! LC_ALL=C file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' && ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "build.sh: $BUSYBOX is dynamically linked; the initrd needs busybox-static" >&2; exit 1
fi

mkdir -p "$OUTDIR"
exec 9>"$OUTDIR/.lock"
flock 9
if up_to_date; then exit 0; fi   # another run built it while we waited for the lock
T0=$(date +%s.%N)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/deskrec-guest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
log() { printf 'build.sh: %s\n' "$*" >&2; }

# 1. The kernel package: the one the linux-image-amd64 metapackage depends on (e.g. linux-image-6.1.0-56-amd64).
APT_OPTS=()
if [ "$(id -u)" = 0 ]; then APT_OPTS=(-o APT::Sandbox::User=root); fi   # root downloading into a 0755 temp dir
resolve_kernel() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
PKG=${DESKREC_GUEST_KERNEL_PKG:-$(resolve_kernel || true)}
if [ -z "$PKG" ] && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  PKG=$(resolve_kernel || true)
fi
[ -n "$PKG" ] || { echo "build.sh: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
log "downloading $PKG"
( cd "$WORK" && apt-get "${APT_OPTS[@]}" download -q "$PKG" >/dev/null ) ||
  { [ "$(id -u)" = 0 ] && apt-get update -qq && ( cd "$WORK" && apt-get "${APT_OPTS[@]}" download -q "$PKG" >/dev/null ); }
DEB=$(ls "$WORK"/"$PKG"_*.deb)
dpkg-deb -x "$DEB" "$WORK/root"
rm -f "$DEB"
KVER=$(ls "$WORK/root/lib/modules")
[ "$(echo "$KVER" | wc -l)" = 1 ] || { echo "build.sh: expected one module tree, got: $KVER" >&2; exit 1; }
MODDIR="$WORK/root/lib/modules/$KVER"
[ -s "$WORK/root/boot/vmlinuz-$KVER" ] || { echo "build.sh: no /boot/vmlinuz-$KVER in $PKG" >&2; exit 1; }

# 2. modules.dep: the package does not ship it (the kernel's postinst runs depmod), so busybox's depmod
#    writes it into the unpacked tree (-b: nothing on this machine is touched).
if [ ! -s "$MODDIR/modules.dep" ]; then
  "$BUSYBOX" depmod -b "$WORK/root" "$KVER"
fi

# 3. Dependency order for bochs (-vga std) and qxl (-vga qxl): depth-first, dependencies before dependants.
declare -A DEPS=() SEEN=()
while IFS= read -r line; do
  mod=${line%%:*}
  DEPS[$mod]=${line#*:}
done < "$MODDIR/modules.dep"
ORDER=()
visit() {
  local m=$1 d
  [ -n "${SEEN[$m]:-}" ] && return 0
  SEEN[$m]=1
  [ -n "${DEPS[$m]+x}" ] || { echo "build.sh: $m is not in modules.dep" >&2; exit 1; }
  for d in ${DEPS[$m]}; do visit "$d"; done
  ORDER+=("$m")
}
for want in bochs qxl; do
  path=$(awk -F: -v w="$want" '{ n = $1; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n); if (n == w) { print $1; exit } }' "$MODDIR/modules.dep")
  [ -n "$path" ] || { echo "build.sh: module $want not found in $PKG" >&2; exit 1; }
  visit "$path"
done

# 4. The initrd tree: busybox, the modules (decompressed: busybox insmod may not read .ko.xz), /init.
R="$WORK/initrd"
mkdir -p "$R/bin" "$R/proc" "$R/sys" "$R/dev" "$R/lib/modules"
cp "$BUSYBOX" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
unpack_modules build.sh "$R/lib/modules" "${ORDER[@]}"

cat > "$R/init" <<INIT
#!/bin/sh
# deskrec SPICE test guest (built by scripts/guest/build.sh from $PKG). PID 1: never exits.
# The kernel command line picks the mode: deskrec.mode=text (the default), photo or shell.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# DRM for -vga std (bochs) and -vga qxl (qxl), dependencies first. The one without a device just loads.
for m in $INSMODS; do
  insmod /lib/modules/\$m.ko 2>/dev/null || echo "insmod \$m failed" >/dev/console
done
exec </dev/console >/dev/console 2>&1
printf '\033[?25l\033[2J\033[H'            # hide the cursor (it would blink), clear
mode=text
for arg in \$(cat /proc/cmdline); do
  case \$arg in deskrec.mode=*) mode=\${arg#deskrec.mode=} ;; esac
done
[ "\$mode" = photo ] && . /photo/run.sh    # loops forever; returns only when there is no picture for fb0
[ "\$mode" = shell ] && . /shell/run.sh    # the interactive shell on tty1, restarted forever
size=\$(cat /sys/class/graphics/fb0/virtual_size 2>/dev/null || echo none)
printf '\033[1;37;44m deskrec SPICE test guest \033[0m kernel %s, fb0 %s\n' "\$(uname -r)" "\$size"
n=0
while :; do
  c=\$((n % 6 + 1))
  d=\$(((n + 3) % 6 + 1))
  printf '\033[1;3%dm line %5d \033[0;30;4%dm colour %d \033[0;3%dm the quick brown fox jumps over the lazy dog \033[1;37;4%dm %d \033[0m\n' \
    "\$c" "\$n" "\$d" "\$d" "\$d" "\$c" "\$n"
  n=\$((n + 1))
  sleep 0.1
done
INIT
chmod 755 "$R/init"

# 4b. Photo mode. A smooth colour picture for each screen size the guest gets (qxl 1024x768, std
#     1280x800; 32 bpp XRGB, so B G R X bytes, stride = 4 * width), made here by busybox awk with integer
#     arithmetic only (same bytes on every build): diagonal triangle waves in blue and red, rings around
#     the centre in green, every channel within 16..239 (no clipping in JPEG's YCbCr round trip) and every
#     pixel different from its right, lower and diagonal neighbours, which is what spice-server's
#     graduality test (spice-bitmap-utils.c) calls photographic. xz-compressed (about 1.4 MB for both;
#     gzip cannot find the repeats): /photo/run.sh unpacks the one for fb0 into the rootfs at boot.
#     run.sh draws the picture, then forever copies a PHOTO_BAND-row window of it, moved by PHOTO_STEP rows
#     each time (back and forth), into the same full-width band in the middle of the screen, with a 50 ms
#     sleep between (measured: ~15 redraws a second under TCG): one `dd` write per frame, so the guest's
#     DRM driver flushes the same rectangle each time (qxl: one DRAW_COPY of the band; std: QEMU's 32-pixel
#     columns of it), which spice-server's stream detection (video-stream.cpp: 20 frames of an equal box,
#     each within 200 ms) turns into MJPEG streams — reliably with qxl; with std only while QEMU's display
#     refresh does not catch the guest half-way through copying a frame (it does on a loaded machine, and
#     the columns' boxes then vary). After each frame it writes a no-op escape to the console, so Ctrl-S
#     (SpiceServer.pause) stops the animation.
PHOTO_BAND=256
PHOTO_STEP=4
mkdir -p "$R/photo"
for geom in 1024x768 1280x800; do
  LC_ALL=C "$BUSYBOX" awk -v W="${geom%x*}" -v H="${geom#*x}" '
    function tri(t) { t %= 448; return t < 224 ? 16 + t : 463 - t }
    BEGIN {
      for (v = 1; v < 256; v++) ch[v] = sprintf("%c", v)
      cx = int(W / 2); cy = int(H / 2); r = 0
      for (y = 0; y < H; y++) {
        row = ""
        dy = (y - cy) * (y - cy)
        for (x = 0; x < W; x++) {
          d = (x - cx) * (x - cx) + dy       # r = floor(sqrt(d)), kept up to date step by step
          while ((r + 1) * (r + 1) <= d) r++
          while (r * r > d) r--
          row = row ch[tri(x - y + H)] ch[tri(r + r + 112)] ch[tri(x + y + 224)] ch[255]
        }
        printf "%s", row
      }
    }' > "$WORK/photo.bgrx"
  [ "$(stat -c %s "$WORK/photo.bgrx")" = $(( ${geom%x*} * ${geom#*x} * 4 )) ] || { echo "build.sh: bad $geom picture" >&2; exit 1; }
  xz -9 --check=crc32 -T1 -c "$WORK/photo.bgrx" > "$R/photo/$geom.bgrx.xz"
done
rm -f "$WORK/photo.bgrx"
cat > "$R/photo/run.sh" <<'RUN'
# deskrec.mode=photo: sourced by /init (stdout is the console). Returns only when fb0 is not a screen we
# have a picture for; otherwise animates forever (see scripts/guest/build.sh, step 4b).
fb=/sys/class/graphics/fb0
size=$(cat $fb/virtual_size 2>/dev/null)
w=${size%,*}
h=${size#*,}
stride=$(cat $fb/stride 2>/dev/null)
bpp=$(cat $fb/bits_per_pixel 2>/dev/null)
pic=/photo/${w}x${h}.bgrx.xz
if [ "$bpp" = 32 ] && [ "$stride" = $((w * 4)) ] && [ -f "$pic" ] && xzcat "$pic" > /photo/picture; then
  dd if=/photo/picture of=/dev/fb0 bs=$((stride * h)) count=1 conv=notrunc status=none
  band=@BAND@
  step=@STEP@
  seek=$(((h - band) / 2 * stride))
  last=$(((h - band) / step))
  k=0
  d=1
  while :; do
    dd if=/photo/picture of=/dev/fb0 bs=$((band * stride)) count=1 skip=$((k * step * stride)) iflag=skip_bytes \
      seek=$seek oflag=seek_bytes conv=notrunc status=none
    printf '\033[?25l'   # a no-op for the screen, but it blocks while the console is stopped (Ctrl-S)
    if [ $k -ge $last ]; then d=-1; elif [ $k -le 0 ]; then d=1; fi
    k=$((k + d))
    sleep 0.05
  done
fi
printf 'deskrec.mode=photo: no picture for fb0 %s (%s bpp, stride %s)\n' "$size" "$bpp" "$stride"
RUN
sed -i "s/@BAND@/$PHOTO_BAND/; s/@STEP@/$PHOTO_STEP/" "$R/photo/run.sh"

# 4c. Shell mode. The kernel has what keyboard input needs built in (checked in the 6.1 config:
#     SERIO_I8042=y, KEYBOARD_ATKBD=y, VT=y with the US default keymap), and the 8250 UART driver for
#     QEMU's -serial (SERIAL_8250=y, legacy ports probed: SERIAL_8250_RUNTIME_UARTS=4), so no module is
#     added. run.sh prints a banner with a few colours (so SpiceServer.waitForText sees the guest is up,
#     as in text mode), then runs `sh -i` on /dev/tty1 in its own session with tty1 as its controlling
#     terminal (`setsid -c`: job control and ^C work as on a real console; without it ash warns "can't
#     access tty"). The cursor stays hidden (vt.global_cursor_default=0 on the command line and the
#     escape /init prints), so only what the shell echoes changes the screen. The shell reads $ENV
#     (/shell/rc) before its first prompt: that writes the ready marker to the serial port. ttyS0 is
#     switched to -opost so what a test reads there is exactly what was written (no \n -> \r\n).
#     /init restarts the shell if it exits (PID 1 must not end: that would panic the kernel and, with
#     panic=-1 and -no-reboot, end QEMU).
SHELL_READY=deskrec-shell-ready
mkdir -p "$R/shell"
cat > "$R/shell/run.sh" <<'RUN'
# deskrec.mode=shell: sourced by /init (stdout is the console). Never returns (see build.sh, step 4c).
printf '\033[1;37;44m deskrec SPICE test guest \033[0m shell on tty1, kernel %s, fb0 %s\n' "$(uname -r)" \
  "$(cat /sys/class/graphics/fb0/virtual_size 2>/dev/null || echo none)"
printf '\033[1;31m red \033[1;32m green \033[1;33m yellow \033[1;36m cyan \033[0m  type here; serial: /dev/ttyS0\n'
stty -F /dev/ttyS0 -opost -echo 2>/dev/null   # no serial port: only the marker and typed echoes are lost
export HOME=/ PS1='deskrec$ ' ENV=/shell/rc
while :; do
  setsid -c sh -i </dev/tty1 >/dev/tty1 2>&1
done
RUN
printf 'echo %s >/dev/ttyS0 2>/dev/null\n' "$SHELL_READY" > "$R/shell/rc"

# 5. Pack: newc cpio, owned by root, mtimes 0, inodes renumbered (same inputs, same bytes), gzip (the kernel's
#    built-in RD_GZIP).
find "$R" -exec touch -h -d @0 {} +
( cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet ) | gzip -6 -n > "$OUTDIR/.initrd.new"
cp "$WORK/root/boot/vmlinuz-$KVER" "$OUTDIR/.vmlinuz.new"
mv -f "$OUTDIR/.vmlinuz.new" "$OUTDIR/vmlinuz"
mv -f "$OUTDIR/.initrd.new" "$OUTDIR/initrd.cpio.gz"
T1=$(date +%s.%N)
{
  echo "package=$PKG"
  echo "kernel=$KVER"
  echo "modules=$INSMODS"
  echo "busybox=$("$BUSYBOX" | head -1)"
  echo "photo=1024x768 1280x800 band=$PHOTO_BAND step=$PHOTO_STEP"
  echo "shell=tty1 ready=$SHELL_READY"
  echo "build_seconds=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')"
} > "$OUTDIR/build-info"
echo "$HASH" > "$OUTDIR/stamp"
log "built $OUTDIR/vmlinuz and initrd.cpio.gz ($KVER; modules: $INSMODS) in $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }') s"
