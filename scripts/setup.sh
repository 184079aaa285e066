#!/usr/bin/env bash
# Installs what building and testing the plugin needs on Debian 12, only what is missing.
# `--list` prints the packages instead, one a line: scripts/test-gst126.sh installs the
# same ones into its Debian 13 chroot.
set -euo pipefail

packages=(
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev pkg-config
  ffmpeg mkvtoolnix python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  gir1.2-gst-rtsp-server-1.0  # tests/camera/rtsp_camera.py: a local IP camera over RTSP
  chromium  # tests/web.rs drives the web example's page in headless Chromium
  valgrind  # bench/run.sh: the overhead section counts instructions with callgrind
  python3-fusepy fuse3  # tests/slow_fs.rs: a FUSE folder whose calls stall
  gdb procps  # scripts/test-runner.sh: the stacks of a test binary that hangs
)
# rustup brings no C toolchain, and rustc links with `cc`; cargo fetches crates over
# HTTPS; cargo-c (scripts/check-install.sh) links OpenSSL.
packages+=(gcc libc6-dev ca-certificates libssl-dev)

if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The oldest Rust that builds the crate (and its dependencies): Cargo.toml's rust-version.
rust="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$(dirname "$0")/../Cargo.toml")"
if ! command -v cargo >/dev/null; then
  echo "cargo (Rust $rust or newer) is needed: install it with rustup" \
    "(https://rustup.rs), then run this again." >&2
  exit 1
fi
