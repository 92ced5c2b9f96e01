#!/usr/bin/env bash
# Installs the system tools the tests use, from Debian's archive: ffmpeg/ffprobe (independent readers of our
# MP4s), Chromium (plays and seeks them in a real browser), and the real remote-desktop servers the VNC
# client is tested against (TigerVNC's Xvnc, QEMU's built-in VNC server) with the X clients that draw on
# them, the tools that screenshot them, GStreamer for the rfbsrc benchmark, vncviewer and Xvfb for the viewer
# latency benchmark, what the SPICE harness needs to build its tiny guest and to screenshot over SPICE,
# and Redis and OpenStack Swift (with memcached) for the cluster tests (docs/TESTING.md says why each one is here).
# Idempotent; needs root (or sudo) only when something is missing. Under CI=true a tool that cannot be
# installed fails the run; tests never skip silently for a missing tool.
set -euo pipefail
need=()
# has_pkg PACKAGE: true when dpkg has PACKAGE fully installed (for packages that bring no command of their own).
has_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# VNC/QEMU server harness (test/helpers/servers).
command -v Xvnc >/dev/null 2>&1 || need+=(tigervnc-standalone-server)
command -v vncpasswd >/dev/null 2>&1 || need+=(tigervnc-tools)
has_pkg xfonts-base || need+=(xfonts-base)                    # the 'fixed' font Xvnc and xterm need
command -v xterm >/dev/null 2>&1 || need+=(xterm)
command -v xclock >/dev/null 2>&1 && command -v xwd >/dev/null 2>&1 || need+=(x11-apps)
command -v xdpyinfo >/dev/null 2>&1 || need+=(x11-utils)
command -v xsetroot >/dev/null 2>&1 || need+=(x11-xserver-utils)
command -v xdotool >/dev/null 2>&1 || need+=(xdotool)
command -v xclip >/dev/null 2>&1 || need+=(xclip)                      # reads the X selection a drag in the viewer made
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The real ImageMagick (not the image's picture-showing stand-in called `convert`): only for looking at
# screenshots by hand; the harness decodes XWD and PPM itself.
[ -x /usr/bin/convert-im6.q16 ] || need+=(imagemagick)
command -v qemu-system-x86_64 >/dev/null 2>&1 && has_pkg seabios && has_pkg ipxe-qemu || need+=(qemu-system-x86)
# SPICE harness (test/helpers/servers/spice.ts, scripts/guest/build.sh): the guest is built from a Debian
# kernel package (fetched with `apt-get download`, never installed) and busybox-static; cpio and gzip pack
# the initrd, xz unpacks modules of kernels that ship them compressed; spicy-screenshot (spice-client-gtk)
# is the independent SPICE screenshot oracle (it needs no X display, so no xvfb).
command -v busybox >/dev/null 2>&1 && has_pkg busybox-static || need+=(busybox-static)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
command -v gzip >/dev/null 2>&1 || need+=(gzip)
command -v spicy-screenshot >/dev/null 2>&1 || need+=(spice-client-gtk)
# The viewer latency benchmark's native peer (bench/viewer-latency.ts): TigerVNC's vncviewer, shown on an Xvfb.
command -v vncviewer >/dev/null 2>&1 || need+=(tigervnc-viewer)
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
# Cluster mode's real servers (test/helpers/servers/redis.ts, s3.ts; issue 14): Redis for BullMQ (redis-cli
# comes with it, from redis-tools), and, as the S3-compatible object store, OpenStack Swift: the proxy (its
# s3api and tempauth middlewares live in python3-swift, pulled in), the account, container and object servers,
# and swift-ring-builder (package swift); no keystonemiddleware (tempauth authenticates). memcached because
# tempauth needs the proxy's cache middleware ("Memcache required") and keeps its tokens there. The harness
# starts them all itself, as children on free ports; the packages' system services are not used (in the dev
# container policy-rc.d keeps them from starting; if they run elsewhere, their ports are not ours).
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || need+=(redis-server)
command -v swift-ring-builder >/dev/null 2>&1 || need+=(swift)
command -v swift-proxy-server >/dev/null 2>&1 || need+=(swift-proxy)
command -v swift-account-server >/dev/null 2>&1 || need+=(swift-account)
command -v swift-container-server >/dev/null 2>&1 || need+=(swift-container)
command -v swift-object-server >/dev/null 2>&1 || need+=(swift-object)
command -v memcached >/dev/null 2>&1 || need+=(memcached)
# GStreamer for the benchmark pipeline rfbsrc (bad) ! x264enc (ugly) ! mp4mux (good).
command -v gst-launch-1.0 >/dev/null 2>&1 || need+=(gstreamer1.0-tools)
for p in gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly; do
  has_pkg "$p" || need+=("$p")
done
if [ "${#need[@]}" -eq 0 ]; then exit 0; fi
echo "install-test-tools: installing ${need[*]} from Debian" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
