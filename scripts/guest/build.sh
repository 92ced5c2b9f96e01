#!/usr/bin/env bash
# Builds the tiny SPICE test guest from Debian packages: OUTDIR/vmlinuz (the kernel of linux-image-amd64)
# and OUTDIR/initrd.cpio.gz (busybox-static, the DRM modules for QEMU's `-vga std` (bochs) and `-vga qxl`
# (qxl) and an /init that loads them, so fbcon comes up at the DRM resolution, then prints coloured text
# forever). Nothing is installed on this machine: the kernel package is fetched with `apt-get download`
# and unpacked with `dpkg-deb -x` into a temp dir that is deleted afterwards. docs/TESTING.md says why.
#
#   scripts/guest/build.sh OUTDIR [--force]
#
# Idempotent and cached: when OUTDIR already holds both outputs built by this very script (OUTDIR/stamp
# is the script's SHA-256), it returns at once without asking apt anything. Concurrent runs for the same
# OUTDIR serialise on OUTDIR/.lock; the outputs are replaced by rename, so readers never see half a file.
# Needs: apt-get, dpkg-deb, busybox (static), cpio, gzip, xz (only for compressed modules), sha256sum,
# flock. DESKREC_GUEST_KERNEL_PKG overrides the kernel package (default: what linux-image-amd64 depends on).
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [--force]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
OUTDIR=$1
FORCE=0
if [ $# -eq 2 ]; then [ "$2" = --force ] && FORCE=1 || usage; fi

SCRIPT=$(readlink -f "$0")
HASH=$(sha256sum "$SCRIPT" | cut -d' ' -f1)
up_to_date() {
  [ "$FORCE" = 0 ] && [ -s "$OUTDIR/vmlinuz" ] && [ -s "$OUTDIR/initrd.cpio.gz" ] &&
    [ "$(cat "$OUTDIR/stamp" 2>/dev/null)" = "$HASH" ]
}
if up_to_date; then exit 0; fi

for tool in apt-get apt-cache dpkg-deb busybox cpio gzip flock; do
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
INSMODS=""
for m in "${ORDER[@]}"; do
  base=$(basename "$m")
  case "$base" in
    *.ko) cp "$MODDIR/$m" "$R/lib/modules/$base" ;;
    *.ko.xz) command -v xz >/dev/null || { echo "build.sh: xz is missing" >&2; exit 1; }
             xz -dc "$MODDIR/$m" > "$R/lib/modules/${base%.xz}"; base=${base%.xz} ;;
    *.ko.zst) command -v zstd >/dev/null || { echo "build.sh: zstd is missing" >&2; exit 1; }
              zstd -qdc "$MODDIR/$m" > "$R/lib/modules/${base%.zst}"; base=${base%.zst} ;;
    *.ko.gz) gzip -dc "$MODDIR/$m" > "$R/lib/modules/${base%.gz}"; base=${base%.gz} ;;
    *) echo "build.sh: unexpected module file $m" >&2; exit 1 ;;
  esac
  INSMODS="$INSMODS ${base%.ko}"
done
INSMODS=${INSMODS# }

cat > "$R/init" <<INIT
#!/bin/sh
# deskrec SPICE test guest (built by scripts/guest/build.sh from $PKG). PID 1: never exits.
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
  echo "build_seconds=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')"
} > "$OUTDIR/build-info"
echo "$HASH" > "$OUTDIR/stamp"
log "built $OUTDIR/vmlinuz and initrd.cpio.gz ($KVER; modules: $INSMODS) in $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }') s"
