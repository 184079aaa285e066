#!/usr/bin/env bash
# Checks both ways README.md gives to install the plugin, as a user would:
#  1. the .deb from scripts/package.sh: `apt-get install ./…deb`, then gst-inspect-1.0
#     finds the element in the system plugin folder (no GST_PLUGIN_PATH) and
#     gst-launch-1.0 records 1 s of WebM with it; the package is removed again;
#  2. `cargo cinstall --prefix=/usr --libdir=<GStreamer's libdir> --destdir=…` (cargo-c
#     0.10.24, or 0.10.21 on Rust 1.92 to 1.94, installed if missing): the library lands
#     in GStreamer's plugin folder under the destdir, and GStreamer finds the element
#     there. Without --libdir cargo-c guesses lib64 or, only when dpkg-dev is installed,
#     Debian's multiarch folder.
# The machine is left as found, also when a check fails: what apt installed is removed
# on exit, and GStreamer's registry cache in $HOME is not touched. Runs as root or with
# sudo. scripts/test.sh runs it after the cargo tests (and `--prepare` before them).
set -euo pipefail
cd "$(dirname "$0")/.."

name="gst-plugin-mediarecorder"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
apt_get() {
  # Waits for another apt or dpkg to finish instead of failing on its lock.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -qq -o DPkg::Lock::Timeout=300 "$@"
}
installed_packages() {
  dpkg-query -W -f='${db:Status-Status} ${Package}\n' | sed -n 's/^installed //p' | sort
}
fail() {
  echo "check-install: $*" >&2
  exit 1
}

# cargo-c, if it is missing.
install_cargo_c() {
  cargo cinstall --version >/dev/null 2>&1 && return 0
  # Each cargo-c release needs the Rust of its cargo: 0.10.24 is the newest that builds
  # with Rust 1.95, 0.10.21 the newest with the crate's oldest, 1.92. Unoptimized and
  # without debug info it builds in a third of the CPU time of a release build (about
  # 240 s instead of 720 s), and it only drives cargo, so its own speed does not matter.
  rust_minor="$(rustc --version | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')"
  cargo_c=0.10.24
  [ "${rust_minor:-0}" -ge 95 ] || cargo_c=0.10.21
  echo "Installing cargo-c $cargo_c into ~/.cargo/bin (a few minutes)"
  started=$SECONDS
  CARGO_PROFILE_DEV_DEBUG=0 cargo install --quiet --locked --debug "cargo-c@$cargo_c"
  echo "Installed cargo-c in $((SECONDS - started)) s"
}
# `--prepare`: only install cargo-c and build the release library the .deb is made
# of, without root, so that scripts/test.sh can do it while the tests run.
if [ "${1:-}" = --prepare ]; then
  install_cargo_c
  cargo build --release --locked --quiet
  exit 0
fi

pluginsdir="$(pkg-config --variable=pluginsdir gstreamer-1.0)"
libdir="$(pkg-config --variable=libdir gstreamer-1.0)"
work="$(mktemp -d)"
# apt reads the .deb from here as its own user, _apt.
chmod 755 "$work"
before="$work/packages-before"
added=()
# Purges what apt added and is still there (a signal may come after part of it went).
remove_added() {
  local still=() p
  for p in "${added[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed && still+=("$p")
  done
  if [ ${#still[@]} -gt 0 ]; then
    apt_get purge -y "${still[@]}" >/dev/null || return 1
  fi
  added=()
}
cleanup() {
  local status=$?
  if [ ${#added[@]} -gt 0 ]; then
    echo "Removing what the check installed: ${added[*]}"
    remove_added || status=1
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One check at a time on this machine: while the package is installed every GStreamer
# program here sees it.
exec 9>"${TMPDIR:-/tmp}/$name-check-install.lock"
flock 9

# Installing over a copy someone put there on purpose and removing it afterwards would
# take it away from them: stop instead.
if dpkg-query -W -f='${db:Status-Status}' "$name" 2>/dev/null | grep -qx installed; then
  fail "$name is installed already; remove it (apt-get remove $name) and run this again"
fi
if [ -e "$pluginsdir/libgstmediarecorder.so" ]; then
  fail "$pluginsdir/libgstmediarecorder.so exists already (scripts/install.sh as root?);" \
    "remove it and run this again"
fi

# GStreamer as a user would run it: no plugin folders from the environment, and a
# registry of our own, scanned afresh, instead of the one in $HOME.
gst() {
  env -u GST_PLUGIN_PATH -u GST_PLUGIN_PATH_1_0 -u GST_PLUGIN_SYSTEM_PATH \
    -u GST_PLUGIN_SYSTEM_PATH_1_0 GST_REGISTRY="$work/registry-$1.bin" "${@:2}"
}

# The plugin file gst-inspect-1.0 shows. GStreamer may name it by another path than
# pkg-config does (/lib is /usr/lib on Debian 12): compare files, not names.
filename() {
  sed -n 's/^ *Filename  *//p'
}

echo "== .deb"
deb="$(scripts/package.sh --out "$work" | tail -n 1)"
echo "Built $(basename "$deb") ($(stat -c %s "$deb") bytes)"
# dpkg warns on every install and removal of a package without one.
maintainer="$(dpkg-deb --field "$deb" Maintainer)"
[ -n "$maintainer" ] || fail "the package has no Maintainer field"
echo "Maintainer: $maintainer"
installed_packages >"$before"
# Whatever apt adds (the package, and dependencies it had to fetch) is removed on exit.
apt_status=0
apt_get install -y "$(realpath "$deb")" >"$work/apt.log" 2>&1 || apt_status=$?
mapfile -t added < <(installed_packages | comm -13 "$before" -)
if [ "$apt_status" -ne 0 ]; then
  cat "$work/apt.log" >&2
  fail "apt-get could not install $deb"
fi
[ ${#added[@]} -eq 1 ] || echo "apt also installed: ${added[*]}"

dpkg -L "$name" >"$work/files"
grep -qx "$pluginsdir/libgstmediarecorder.so" "$work/files" ||
  fail "the package does not put libgstmediarecorder.so into $pluginsdir"
inspect="$(gst deb gst-inspect-1.0 mediarecorder)" ||
  fail "gst-inspect-1.0 does not find mediarecorder after installing the package"
[ "$(filename <<<"$inspect")" -ef "$pluginsdir/libgstmediarecorder.so" ] ||
  fail "gst-inspect-1.0 loads mediarecorder from $(filename <<<"$inspect")"
echo "gst-inspect-1.0 finds mediarecorder in $pluginsdir"

webm="$work/check-install.webm"
gst deb gst-launch-1.0 -q -e videotestsrc num-buffers=30 ! mediarecorder location="$webm" ||
  fail "gst-launch-1.0 could not record with the installed element"
probe="$(ffprobe -v error -show_entries format=format_name,duration:stream=codec_name \
  -of default=noprint_wrappers=1 "$webm")" || fail "ffprobe cannot read the recording"
grep -qx "codec_name=vp8" <<<"$probe" || fail "the recording has no VP8 video: $probe"
grep -q "^format_name=.*webm" <<<"$probe" || fail "the recording is not WebM: $probe"
duration="$(sed -n 's/^duration=//p' <<<"$probe")"
awk -v d="$duration" 'BEGIN { exit !(d >= 0.9 && d <= 1.1) }' ||
  fail "30 frames at 30 fps should last 1 s; the file says $duration s"
echo "Recorded 1 s with it: $(tr '\n' ' ' <<<"$probe")"

remove_added
[ ! -e "$pluginsdir/libgstmediarecorder.so" ] || fail "removing the package left the plugin"
if gst removed gst-inspect-1.0 mediarecorder >/dev/null 2>&1; then
  fail "gst-inspect-1.0 still finds mediarecorder after removing the package"
fi
echo "Removed $name again ($SECONDS s so far)"

echo "== cargo cinstall"
install_cargo_c
dest="$work/destdir"
if ! cargo cinstall --release --locked --prefix=/usr --libdir="$libdir" --destdir="$dest" >"$work/cinstall.log" 2>&1; then
  cat "$work/cinstall.log" >&2
  fail "cargo cinstall failed"
fi
so="$dest$pluginsdir/libgstmediarecorder.so"
[ -f "$so" ] || fail "cargo cinstall did not install $so; it installed: $(cd "$dest" && find . -type f)"
inspect="$(gst cinstall env GST_PLUGIN_SYSTEM_PATH_1_0="$dest$pluginsdir:$pluginsdir" \
  gst-inspect-1.0 mediarecorder)" ||
  fail "gst-inspect-1.0 does not find mediarecorder in $dest$pluginsdir"
[ "$(filename <<<"$inspect")" -ef "$so" ] ||
  fail "gst-inspect-1.0 loads mediarecorder from $(filename <<<"$inspect")"
echo "cargo cinstall puts it into <destdir>$pluginsdir, where GStreamer finds it"
echo "Install checks passed in $SECONDS s"
