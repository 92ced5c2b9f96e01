#!/usr/bin/env bash
# Installs the system tools the tests use, from Debian's archive: ffmpeg/ffprobe (independent readers of our
# MP4s) and Chromium (plays and seeks them in a real browser). Idempotent; needs root (or sudo) only when
# something is missing. Under CI=true a tool that cannot be installed fails the run; tests never skip
# silently for a missing tool.
set -euo pipefail
need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ "${#need[@]}" -eq 0 ]; then exit 0; fi
echo "install-test-tools: installing ${need[*]} from Debian" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
