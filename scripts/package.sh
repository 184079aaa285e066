#!/usr/bin/env bash
# Builds the plugin and makes a Debian package of it by hand (no debian/ folder, no
# debhelper): target/debian/gst-plugin-mediarecorder_<version>_<arch>.deb, which
# `apt install ./that.deb` installs into GStreamer's system plugin folder.
# `--out DIR` writes the .deb into DIR instead. Prints the .deb's path last.
set -euo pipefail
out=""
if [ "${1:-}" = "--out" ]; then
  out="$(realpath -m "$2")"
fi
cd "$(dirname "$0")/.."
out="${out:-${CARGO_TARGET_DIR:-target}/debian}"
scripts/setup.sh

name="gst-plugin-mediarecorder"
# Cargo's version; a pre-release (0.2.0-alpha.1) becomes 0.2.0~alpha.1 so that dpkg
# orders it before the release.
id="$(cargo pkgid --quiet)"
version="${id##*[@#]}"
deb_version="${version/-/\~}"
arch="$(dpkg --print-architecture)"
# The folder this machine's GStreamer searches for plugins, e.g.
# /usr/lib/x86_64-linux-gnu/gstreamer-1.0 (the Debian multiarch one).
pluginsdir="$(pkg-config --variable=pluginsdir gstreamer-1.0)"
case "$pluginsdir" in
  /usr/lib/*) ;;
  *)
    echo "pkg-config finds GStreamer's plugins in $pluginsdir, not under /usr/lib: a" \
      "Debian package must use Debian's GStreamer (unset PKG_CONFIG_PATH?)" >&2
    exit 1
    ;;
esac

cargo build --release --locked --quiet
so="${CARGO_TARGET_DIR:-target}/release/libgstmediarecorder.so"

stage="${CARGO_TARGET_DIR:-target}/debian/${name}_${deb_version}_${arch}"
rm -rf "$stage"
install -d "$stage$pluginsdir" "$stage/usr/share/doc/$name" "$stage/DEBIAN"
install -m 644 "$so" "$stage$pluginsdir/"
strip --strip-unneeded "$stage$pluginsdir/libgstmediarecorder.so"

# The Rust crates are linked into the library; their licences come with it.
{
  cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: $name

Files: *
License: MPL-2.0
 On Debian systems the full text of the Mozilla Public License 2.0 is in
 /usr/share/common-licenses/MPL-2.0.
Comment: libgstmediarecorder.so also contains these Rust crates, statically
 linked, each under the licence given (see Cargo.lock for the exact sources):
EOF
  cargo tree --locked --edges normal,no-proc-macro --no-dedupe --prefix none \
    --format ' {p}: {l}' | grep -v "^ $name " | sort -u
} >"$stage/usr/share/doc/$name/copyright"
chmod 644 "$stage/usr/share/doc/$name/copyright"

# The highest glibc symbol version the library uses is the libc6 it needs.
glibc="$(objdump -T "$stage$pluginsdir/libgstmediarecorder.so" |
  grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)"
# Who builds the package maintains it: DEBFULLNAME/DEBEMAIL as for dch, else git's
# name and email, else the user's name and user@host (a package without a Maintainer
# makes dpkg warn on every install and removal).
user="$(id -un)"
maintainer="${DEBFULLNAME:-$(git config user.name 2>/dev/null || true)}"
maintainer="${maintainer:-$(getent passwd "$user" | cut -d: -f5 | cut -d, -f1)}"
maintainer="${maintainer:-$user}"
email="${DEBEMAIL:-$(git config user.email 2>/dev/null || true)}"
email="${email:-$user@$(uname -n)}"

# Depends: the libraries it links (ldd) and the elements every WebM recording builds:
# identity, queue, filesink (libgstreamer1.0-0); capsfilter, videoconvert, videoscale,
# audioconvert, audioresample, audiorate, opusenc, vorbisenc (gstreamer1.0-plugins-base); vp8enc,
# vp9enc, webmmux, matroskamux, mp4mux, jpegdec (gstreamer1.0-plugins-good).
# Suggests: what only other codecs need (AV1, H.264, AAC; decoders for re-encoding);
# the element names the package when one of those is missing.
# Recommends: gst-launch-1.0 and gst-inspect-1.0, with which the README uses it.
{
  cat <<EOF
Package: $name
Version: $deb_version
Architecture: $arch
Section: libs
Priority: optional
EOF
  echo "Maintainer: $maintainer <$email>"
  cat <<EOF
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: libc6 (>= $glibc), libgcc-s1, libglib2.0-0, libgstreamer1.0-0 (>= 1.22), libgstreamer-plugins-base1.0-0 (>= 1.22), gstreamer1.0-plugins-base (>= 1.22), gstreamer1.0-plugins-good (>= 1.22)
Recommends: gstreamer1.0-tools
Suggests: gstreamer1.0-plugins-bad, gstreamer1.0-plugins-ugly, gstreamer1.0-libav
Description: GStreamer mediarecorder element (WebM recorder)
 The mediarecorder element brings the web's MediaRecorder to any GStreamer
 pipeline: link a camera, a microphone or a playing file into it and it
 encodes (VP8/VP9/AV1 video, Opus or Vorbis audio), muxes and writes a
 finalized, seekable WebM file, for a timed duration or until told to stop.
EOF
} >"$stage/DEBIAN/control"

mkdir -p "$out"
deb="$out/${name}_${deb_version}_${arch}.deb"
dpkg-deb --build --root-owner-group "$stage" "$deb" >/dev/null
echo "$deb"
