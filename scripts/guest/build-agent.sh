#!/usr/bin/env bash
# Builds the SPICE *agent* test guest: OUTDIR/initrd-agent.cpio.gz, booted with build.sh's kernel
# (OUTDIR/vmlinuz; build.sh OUTDIR is run first). A separate initrd, so the plain guest (and the SPICE
# tests that boot it) stays small and fast. What is in it, all from Debian packages fetched with
# `apt-get download` and unpacked with `dpkg-deb -x` into a temp dir (nothing is installed here):
#   - busybox-static (this machine's, as in build.sh) as the userland;
#   - the kernel modules: build.sh's display set (bochs, qxl and their DRM deps) plus virtio_pci and
#     virtio_console (the virtio-serial port spice-server's agent channel arrives on);
#   - Xvfb (package xvfb) with xkbcomp (x11-xkb-utils) and the XKB data (xkb-data) it compiles its keymap
#     from; spice-vdagent (the spice-vdagentd daemon and the spice-vdagent X session agent, the real
#     SPICE guest agent); xclip, so a test can put text on and read it from the guest's X clipboard;
#   - Xorg (package xserver-xorg-core: the server binary, its built-in `modesetting` driver and the
#     `shadow` module that driver loads; not GLX, glamor or the input drivers) with a written xorg.conf,
#     and xrandr + xsetroot (x11-xserver-utils), for the `deskrec.agentx=xorg` mode below;
#   - exactly the shared libraries those ELF files need (their closure, resolved by the unpacked glibc's
#     own ld.so against the unpacked tree only: a library missing from the tree fails the build).
# The packages fetched are the Depends/Pre-Depends closure (first alternative) of those roots, minus a
# list of packages whose files the guest never uses (docs, icons, fonts, perl, systemd, Mesa's drivers…);
# only the files listed above go into the initrd.
#
# /init (see step 5) starts Xvfb :0 (or, with `deskrec.agentx=xorg` on the kernel command line, Xorg :0 on
# the QXL device's DRM node, /dev/dri/card0, so X *is* the SPICE display and an XRandR mode change, the
# agent's or xrandr's, resizes it), spice-vdagentd (no systemd, no session tracking, fake uinput) and
# spice-vdagent on :0, writes `deskrec-agent-ready` (Xorg mode: `deskrec-agent-ready xorg`, and only once
# Xorg's XRandR lists a connected output) to /dev/ttyS0 once both agent processes run and the
# daemon has opened the virtio port (it does after the session agent connected), then reads shell
# commands from /dev/ttyS0 (no echo, no prompt, output back there), so a test can run `xclip` in the guest
# over QEMU's serial socket.
#
#   scripts/guest/build-agent.sh OUTDIR [--force]
#
# Idempotent and cached: OUTDIR/stamp-agent holds this script's SHA-256 and build.sh's; when it matches
# and both outputs exist, nothing is asked of apt. Concurrent runs serialise on OUTDIR/.lock-agent
# (build.sh keeps its own OUTDIR/.lock); the initrd is replaced by rename.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [--force]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
OUTDIR=$1
FORCE=0
if [ $# -eq 2 ]; then [ "$2" = --force ] && FORCE=1 || usage; fi

SCRIPT=$(readlink -f "$0")
BUILD_SH=$(dirname "$SCRIPT")/build.sh
# shellcheck source=modules.sh
. "$(dirname "$SCRIPT")/modules.sh"
HASH="$(sha256sum "$SCRIPT" | cut -d' ' -f1) $(cat "$BUILD_SH" "$(dirname "$SCRIPT")/modules.sh" | sha256sum | cut -d' ' -f1)"
log() { printf 'build-agent.sh: %s\n' "$*" >&2; }

# The kernel first (cached by build.sh itself; it must be current before ours can be).
bash "$BUILD_SH" "$OUTDIR"

up_to_date() {
  [ "$FORCE" = 0 ] && [ -s "$OUTDIR/vmlinuz" ] && [ -s "$OUTDIR/initrd-agent.cpio.gz" ] &&
    [ "$(cat "$OUTDIR/stamp-agent" 2>/dev/null)" = "$HASH" ]
}
if up_to_date; then exit 0; fi

for tool in apt-get apt-cache dpkg-deb busybox cpio gzip xz flock; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-agent.sh: $tool is missing: run scripts/install-test-tools.sh" >&2; exit 1; }
done
BUSYBOX=$(command -v busybox)

exec 8>"$OUTDIR/.lock-agent"
flock 8
if up_to_date; then exit 0; fi
T0=$(date +%s.%N)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/deskrec-agent.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
APT_OPTS=()
if [ "$(id -u)" = 0 ]; then APT_OPTS=(-o APT::Sandbox::User=root); fi   # root downloading into a 0755 temp dir

# download DIR PKG...: apt-get download into DIR (one apt run); after an `apt-get update` if that fails as root.
download() {
  local dir=$1; shift
  mkdir -p "$dir"
  ( cd "$dir" && apt-get "${APT_OPTS[@]}" download -q "$@" >/dev/null ) ||
    { [ "$(id -u)" = 0 ] && apt-get update -qq && ( cd "$dir" && apt-get "${APT_OPTS[@]}" download -q "$@" >/dev/null ); }
}

# 1. The kernel modules: the same kernel package build.sh used (its build-info names it).
KPKG=$(sed -n 's/^package=//p' "$OUTDIR/build-info")
[ -n "$KPKG" ] || { echo "build-agent.sh: no package= in $OUTDIR/build-info" >&2; exit 1; }
log "downloading $KPKG (for its modules)"
download "$WORK/kdeb" "$KPKG"
dpkg-deb -x "$WORK"/kdeb/*.deb "$WORK/kernel"
rm -rf "$WORK/kdeb"
KVER=$(ls "$WORK/kernel/lib/modules")
MODDIR="$WORK/kernel/lib/modules/$KVER"
[ -s "$MODDIR/modules.dep" ] || "$BUSYBOX" depmod -b "$WORK/kernel" "$KVER"
declare -A DEPS=() SEEN=()
while IFS= read -r line; do DEPS[${line%%:*}]=${line#*:}; done < "$MODDIR/modules.dep"
ORDER=()
visit() {
  local m=$1 d
  [ -n "${SEEN[$m]:-}" ] && return 0
  SEEN[$m]=1
  [ -n "${DEPS[$m]+x}" ] || { echo "build-agent.sh: $m is not in modules.dep" >&2; exit 1; }
  for d in ${DEPS[$m]}; do visit "$d"; done
  ORDER+=("$m")
}
# virtio_pci finds the virtio-serial PCI device; virtio_console drives it (neither depends on the other).
for want in bochs qxl virtio_pci virtio_console; do
  path=$(awk -F: -v w="$want" '{ n = $1; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n); if (n == w) { print $1; exit } }' "$MODDIR/modules.dep")
  if [ -z "$path" ]; then
    # Built in (=y) in this kernel: nothing to load.
    grep -q "/$want.ko" "$MODDIR/modules.builtin" 2>/dev/null && continue
    echo "build-agent.sh: module $want not found in $KPKG" >&2; exit 1
  fi
  visit "$path"
done

R="$WORK/initrd"
mkdir -p "$R/bin" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/root" "$R/etc" "$R/run/spice-vdagentd" "$R/var/lib/xkb" \
  "$R/var/log" "$R/lib/modules"
unpack_modules build-agent.sh "$R/lib/modules" "${ORDER[@]}"
rm -rf "$WORK/kernel"

# 2. The user-space packages: the Depends/Pre-Depends closure of the roots, first alternative (or the first
#    provider of a virtual package), without the packages whose files the guest never uses: they only cost
#    download time (Mesa's DRI drivers pull in LLVM; GTK pulls in icon themes and fonts; maintainer-script
#    and init-system machinery). Step 3 fails the build if one of them was needed after all.
ROOTS=(xvfb x11-xkb-utils xkb-data spice-vdagent xclip xserver-xorg-core x11-xserver-utils)
# (Xorg's own extra dependencies skipped: udev and keyboard-configuration (no daemon, no debconf), EGL/GBM
# (glamor and GLX, which xorg.conf disables: the modesetting driver draws into a shadow buffer), cpp
# (xrdb's, unused).)
SKIP='^(keyboard-configuration|udev|cpp|cpp-[0-9]+|libegl1|libegl-mesa0|libgbm1|debconf|cdebconf|dpkg|perl|perl-base|perl-modules-.*|libperl.*|adduser|init-system-helpers|lsb-base|ucf|sensible-utils|passwd|libpam.*|systemd|systemd-sysv|libsystemd-shared|dbus|dbus-.*|x11-common|tar|install-info|usrmerge|usr-is-merged|mount|procps|hicolor-icon-theme|adwaita-icon-theme|gtk-update-icon-cache|shared-mime-info|fontconfig|fontconfig-config|fonts-.*|ttf-.*|libgl1-mesa-dri|libglx-mesa0|libllvm.*|libz3-.*|libsensors.*|dconf-gsettings-backend|dconf-service|libgtk-3-common|libgdk-pixbuf2.0-common|libgdk-pixbuf-2.0-bin|libasound2-data|libc-bin|gcc-.*-base|xauth|xserver-common|libicu[0-9]*|libxml2|libthai-data|at-spi2-common|libdrm-common|libavahi-common-data|libgcrypt20-dbg|coreutils|debianutils|readline-common)$'
declare -A PKGS=()
QUEUE=("${ROOTS[@]}")
while [ ${#QUEUE[@]} -gt 0 ]; do
  NEXT=()
  for p in "${QUEUE[@]}"; do PKGS[$p]=1; done
  # One apt-cache call per layer of the breadth-first walk. Lines "  Depends: X" / "  |Depends: X" (the
  # '|' says the next line is an alternative of this one: skipped), "<X>" a virtual package whose
  # providers follow, indented by four.
  while IFS= read -r dep; do
    dep=${dep%%:*}
    [ -n "${PKGS[$dep]:-}" ] && continue
    [[ $dep =~ $SKIP ]] && continue
    PKGS[$dep]=1
    NEXT+=("$dep")
  done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances "${QUEUE[@]}" |
    awk '
      /^[^ ]/ { pending = 0; skip = 0; next }
      /^  \|?(Pre)?Depends:/ {
        alt = ($1 ~ /^\|/)
        if (skip) { skip = alt; pending = 0; next }
        skip = alt
        if ($2 ~ /^</) { pending = 1 } else { pending = 0; print $2 }
        next
      }
      /^    / { if (pending) { print $1; pending = 0 } }')
  QUEUE=("${NEXT[@]}")
done
mapfile -t PKGLIST < <(printf '%s\n' "${!PKGS[@]}" | LC_ALL=C sort)
log "downloading ${#PKGLIST[@]} packages: ${PKGLIST[*]}"
download "$WORK/debs" "${PKGLIST[@]}"
S="$WORK/stage"
for deb in "$WORK"/debs/*.deb; do dpkg-deb -x "$deb" "$S"; done
VERSIONS=""
for p in spice-vdagent xvfb xclip xserver-xorg-core; do VERSIONS="$VERSIONS $p=$(dpkg-deb -f "$WORK"/debs/"${p}"_*.deb Version)"; done
rm -rf "$WORK/debs"

# 3. The ELF files and their libraries. The unpacked glibc's ld.so lists each file's closure, searching the
#    unpacked library directories only (--inhibit-cache: not this machine's ld.so.cache); any library it
#    resolves outside the tree, or not at all, is missing from the closure above.
LIBDIRS="$S/lib/x86_64-linux-gnu:$S/usr/lib/x86_64-linux-gnu"
LDSO="$S/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
[ -e "$LDSO" ] || LDSO="$S/lib64/ld-linux-x86-64.so.2"
[ -e "$LDSO" ] || { echo "build-agent.sh: no ld.so in the unpacked libc6" >&2; exit 1; }
# Xorg's modules are shared objects resolved against the server itself at load time; their own library
# needs are checked here like the programs'. (/usr/bin/Xorg is a shell wrapper: /init runs the binary.)
BINS=(usr/bin/Xvfb usr/bin/xkbcomp usr/sbin/spice-vdagentd usr/bin/spice-vdagent usr/bin/xclip
  usr/lib/xorg/Xorg usr/lib/xorg/modules/drivers/modesetting_drv.so usr/lib/xorg/modules/libshadow.so
  usr/bin/xrandr usr/bin/xsetroot)
declare -A LIBS=()
missing=""
for b in "${BINS[@]}"; do
  [ -f "$S/$b" ] || { echo "build-agent.sh: $b is not in the unpacked packages" >&2; exit 1; }
  mkdir -p "$R/$(dirname "$b")"
  cp "$S/$b" "$R/$b"
  while read -r name arrow path _; do
    if [ "$arrow" = "=>" ]; then
      if [ "$path" = "not" ] || [ "${path#"$S"/}" = "$path" ]; then missing="$missing $name($b)"; else LIBS[${path#"$S"/}]=1; fi
    elif [ "${name#"$S"/}" != "$name" ]; then
      LIBS[${name#"$S"/}]=1   # the interpreter line: /…/ld-linux-x86-64.so.2 (0x…)
    fi
  done < <("$LDSO" --inhibit-cache --library-path "$LIBDIRS" --list "$S/$b" 2>&1 | grep -v 'linux-vdso')
done
[ -z "$missing" ] || { echo "build-agent.sh: libraries not in the unpacked packages:$missing" >&2; exit 1; }
for l in "${!LIBS[@]}"; do
  mkdir -p "$R/$(dirname "$l")"
  cp -L "$S/$l" "$R/$l"
done
# The ELF interpreter path the binaries name.
mkdir -p "$R/lib64"
ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$R/lib64/ld-linux-x86-64.so.2"
[ -e "$R/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ] || cp -L "$LDSO" "$R/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"

# 4. Data: Xvfb compiles its keymap from the XKB rules and components (xkbcomp writes it to
#    /var/lib/xkb); Xlib's locale tables, for the input-method set-up GTK does; a root account
#    (glib asks for the home directory; glibc reads /etc/passwd itself).
mkdir -p "$R/usr/share/X11"
cp -a "$S/usr/share/X11/xkb" "$R/usr/share/X11/xkb"
# (LANG=C in the guest: only the C locale's tables and the index files.)
mkdir -p "$R/usr/share/X11/locale"
for f in locale.alias locale.dir compose.dir C; do cp -a "$S/usr/share/X11/locale/$f" "$R/usr/share/X11/locale/"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
echo 'root:x:0:' > "$R/etc/group"
cp "$BUSYBOX" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
# Xorg's configuration (Xorg mode): the modesetting driver on the qxl DRM node, named (no udev to pick
# it); no GPU acceleration (glamor needs EGL/Mesa, not in the initrd: the driver then renders into a shadow
# buffer and flushes damage with DRM dirty-fb, which qxl turns into QXL draw commands); no GLX; no input
# devices (nothing to hot-plug without udev; X runs without them); no blanking, no VT switching.
mkdir -p "$R/etc/X11"
cat > "$R/etc/X11/xorg.conf" <<'XORGCONF'
Section "ServerFlags"
    Option "AutoAddDevices" "false"
    Option "AutoAddGPU" "false"
    Option "DontVTSwitch" "true"
    Option "BlankTime" "0"
    Option "StandbyTime" "0"
    Option "SuspendTime" "0"
    Option "OffTime" "0"
EndSection
Section "Module"
    Disable "glx"
    Disable "glamoregl"
EndSection
Section "Device"
    Identifier "qxl"
    Driver "modesetting"
    Option "kmsdev" "/dev/dri/card0"
    Option "AccelMethod" "none"
EndSection
Section "Screen"
    Identifier "screen"
    Device "qxl"
    DefaultDepth 24
EndSection
Section "ServerLayout"
    Identifier "layout"
    Screen "screen"
EndSection
XORGCONF
# What a desktop does on a display hot-plug (Xorg mode): a SPICE client's monitors config (a viewer's
# "resize guest to fit") does not reach spice-vdagent with a QXL device of revision 4 or later: spice-server
# hands it to the device, the guest's qxl driver makes the client's size the connector's preferred mode
# and sends a DRM "change" uevent, and the X side must pick that mode. /init runs this for each kernel
# uevent (busybox `uevent`; there is no udev): on a DRM change, every connected output to its preferred
# mode.
cat > "$R/bin/deskrec-hotplug" <<'HOTPLUG'
#!/bin/sh
[ "$SUBSYSTEM" = drm ] && [ "$ACTION" = change ] || exit 0
for o in $(DISPLAY=:0 xrandr | awk '$2 == "connected" { print $1 }'); do
  DISPLAY=:0 xrandr --output "$o" --auto && echo "hotplug: $o $(DISPLAY=:0 xrandr | awk '/^Screen 0/ { sub(/,/, "", $10); print $8 "x" $10 }')"
done >>/var/log/hotplug.log 2>&1
HOTPLUG
chmod 755 "$R/bin/deskrec-hotplug"

# 5. /init.
AGENT_READY=deskrec-agent-ready
cat > "$R/init" <<INIT
#!/bin/sh
# deskrec SPICE agent test guest (built by scripts/guest/build-agent.sh; kernel $KVER). PID 1: never exits.
export PATH=/bin:/usr/bin:/usr/sbin HOME=/root LANG=C
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts
chmod 1777 /tmp
for m in $INSMODS; do
  insmod /lib/modules/\$m.ko 2>/dev/null || echo "insmod \$m failed" >/dev/console
done
exec </dev/console >/dev/console 2>&1
printf '\033[?25l\033[2J\033[H'
printf '\033[1;37;44m deskrec SPICE agent test guest \033[0m kernel %s, fb0 %s\n' "\$(uname -r)" \
  "\$(cat /sys/class/graphics/fb0/virtual_size 2>/dev/null || echo none)"
# PID 1 keeps the serial port open from here on (fd 3, never read). A closed 8250 port drops what arrives:
# the tests type their commands as soon as the ready marker is out, and the shell below opens the port a
# moment after that marker (and again each time it restarts). With the port held open, the kernel's line
# discipline buffers those bytes until the shell reads them. (Without this a clean-clone CI run lost the
# leading "D" of "DISPLAY=:0 xrandr": the shell ran xrandr with no display.)
exec 3<>/dev/ttyS0
stty -F /dev/ttyS0 -opost -echo 2>/dev/null
# status TEXT: on the screen and, with a colour, in the log the test can read.
status() { printf '\033[1;3%dm %s \033[0m\n' "\$1" "\$2"; echo "deskrec-agent: \$2" >/dev/ttyS0; }
syslogd -O /var/log/messages
# udev's job: /dev/virtio-ports/NAME for each virtio-serial port (spice-vdagentd opens it by that name).
port=
n=0
while [ -z "\$port" ] && [ \$n -lt 100 ]; do
  for d in /sys/class/virtio-ports/*; do
    [ "\$(cat "\$d/name" 2>/dev/null)" = com.redhat.spice.0 ] && port=\${d##*/}
  done
  [ -n "\$port" ] || { sleep 0.1; n=\$((n + 1)); }
done
if [ -n "\$port" ]; then
  mkdir -p /dev/virtio-ports
  ln -sf ../\$port /dev/virtio-ports/com.redhat.spice.0
  status 2 "virtio port com.redhat.spice.0 = /dev/\$port"
else
  status 1 "no virtio port named com.redhat.spice.0"
fi
# Which X server: deskrec.agentx=xorg on the kernel command line runs Xorg on the QXL display.
agentx=xvfb
for arg in \$(cat /proc/cmdline); do
  case \$arg in deskrec.agentx=*) agentx=\${arg#deskrec.agentx=} ;; esac
done
xok=0
if [ "\$agentx" = xorg ]; then
  # vt1 is the console the SPICE display shows (Xorg takes it over from fbcon); -noreset: the server
  # would otherwise reset (forgetting xsetroot's background) whenever its last client disconnects.
  /usr/lib/xorg/Xorg :0 vt1 -novtswitch -nolisten tcp -noreset -s 0 -dpms -config /etc/X11/xorg.conf \
    -logfile /var/log/Xorg.0.log >/var/log/Xorg.out 2>&1 &
  xpid=\$!
  # Up once XRandR answers with a connected output (the socket exists before the screens are set up).
  n=0
  while [ \$n -lt 600 ] && kill -0 \$xpid 2>/dev/null && ! DISPLAY=:0 xrandr 2>/dev/null | grep -q ' connected'; do
    sleep 0.1; n=\$((n + 1))
  done
  if kill -0 \$xpid 2>/dev/null && DISPLAY=:0 xrandr 2>/dev/null | grep -q ' connected'; then
    xok=1
    DISPLAY=:0 xsetroot -solid '#336699'
    uevent /bin/deskrec-hotplug </dev/null >/dev/null 2>&1 &
    status 2 "Xorg :0 up on /dev/dri/card0: \$(DISPLAY=:0 xrandr | grep ' connected' | tr -s ' ' | cut -d' ' -f1-3)"
  else
    status 1 "Xorg did not start (\$(kill -0 \$xpid 2>/dev/null && echo running || echo exited))"
    { cat /var/log/Xorg.out; grep -E '\((EE|WW)\)' /var/log/Xorg.0.log; tail -15 /var/log/Xorg.0.log; } >/dev/ttyS0 2>&1
  fi
else
  Xvfb :0 -screen 0 1024x768x24 -nolisten tcp >/var/log/Xvfb.log 2>&1 &
  n=0
  while [ ! -S /tmp/.X11-unix/X0 ] && [ \$n -lt 600 ]; do sleep 0.1; n=\$((n + 1)); done
  [ -S /tmp/.X11-unix/X0 ] && xok=1
  [ \$xok = 1 ] && status 2 "Xvfb :0 up" || status 1 "Xvfb did not start: \$(tail -3 /var/log/Xvfb.log)"
fi
# -x: stay in the foreground (no fork, no pid file); -X: no systemd-logind/ConsoleKit session tracking
# (one session agent is allowed); -f -u /dev/null: a fake uinput device (no /dev/uinput, no ioctls; the
# mouse events it would inject are discarded: Xvfb reads no input devices anyway); -d: debug log to syslog.
spice-vdagentd -x -X -f -u /dev/null -d >/var/log/spice-vdagentd.log 2>&1 &
vdagentd=\$!
n=0
while [ ! -S /run/spice-vdagentd/spice-vdagent-sock ] && [ \$n -lt 300 ]; do sleep 0.1; n=\$((n + 1)); done
# GTK without its accessibility bus (there is no D-Bus session) or other display back ends.
DISPLAY=:0 NO_AT_BRIDGE=1 GDK_BACKEND=x11 spice-vdagent -x -d >/var/log/spice-vdagent.log 2>&1 &
vdagent=\$!
# Ready once both run and the daemon has opened the virtio port: it does so only after the session agent
# connected and sent its screen resolution, and that open is what spice-server reports to the client as
# AGENT_CONNECTED. (The daemon logs through syslog: busybox syslogd writes /var/log/messages.)
n=0
while [ \$n -lt 600 ] && kill -0 \$vdagentd 2>/dev/null && kill -0 \$vdagent 2>/dev/null &&
    ! grep -q 'opening vdagent virtio channel' /var/log/messages 2>/dev/null; do
  sleep 0.1; n=\$((n + 1))
done
if [ \$xok = 1 ] && kill -0 \$vdagentd 2>/dev/null && kill -0 \$vdagent 2>/dev/null &&
    grep -q 'opening vdagent virtio channel' /var/log/messages 2>/dev/null; then
  status 2 "spice-vdagentd (pid \$vdagentd) and spice-vdagent (pid \$vdagent) running"
  # Xorg mode says so in the marker: ready then also means "Xorg runs on QXL".
  if [ "\$agentx" = xorg ]; then echo "$AGENT_READY xorg" >/dev/ttyS0; else echo $AGENT_READY >/dev/ttyS0; fi
else
  status 1 "agent not ready: vdagentd \$(kill -0 \$vdagentd 2>/dev/null && echo up || echo gone), vdagent \$(kill -0 \$vdagent 2>/dev/null && echo up || echo gone)"
  { tail -20 /var/log/messages; cat /var/log/spice-vdagentd.log /var/log/spice-vdagent.log; } >/dev/ttyS0 2>&1
fi
printf '\033[1;31m red \033[1;32m green \033[1;33m yellow \033[1;36m cyan \033[0m  commands: /dev/ttyS0\n'
# A shell reading commands from the serial port as a script file, so it is not interactive (ash would be,
# with a tty on stdin: prompt and line editing that echoes): the serial output is exactly what the commands
# print (the tty's own echo is off, above). Restarted if it exits (^D).
while :; do
  sh /dev/ttyS0 </dev/null >/dev/ttyS0 2>&1
done
INIT
chmod 755 "$R/init"

# 6. Pack (as build.sh: reproducible newc cpio, gzip).
find "$R" -exec touch -h -d @0 {} +
( cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet ) | gzip -6 -n > "$OUTDIR/.initrd-agent.new"
mv -f "$OUTDIR/.initrd-agent.new" "$OUTDIR/initrd-agent.cpio.gz"
T1=$(date +%s.%N)
{
  echo "package=$KPKG"
  echo "kernel=$KVER"
  echo "modules=$INSMODS"
  echo "busybox=$("$BUSYBOX" | head -1)"
  echo "packages=${PKGLIST[*]}"
  echo "versions=${VERSIONS# }"
  echo "ready=$AGENT_READY"
  echo "initrd_bytes=$(stat -c %s "$OUTDIR/initrd-agent.cpio.gz")"
  echo "build_seconds=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')"
} > "$OUTDIR/build-info-agent"
echo "$HASH" > "$OUTDIR/stamp-agent"
log "built $OUTDIR/initrd-agent.cpio.gz ($(stat -c %s "$OUTDIR/initrd-agent.cpio.gz") bytes; modules: $INSMODS) in $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }') s"
