#!/usr/bin/env bash
# Builds the plugin and installs it where gst-inspect-1.0 finds it without
# GST_PLUGIN_PATH: the system plugin folder as root, else ~/.local/share/gstreamer-1.0/plugins
# (which GStreamer scans for every user).
#   --prefix PREFIX     into PREFIX's plugin folder, laid out as GStreamer's own:
#                       PREFIX/lib/x86_64-linux-gnu/gstreamer-1.0 on Debian
#   --plugin-dir DIR    into the folder DIR itself
set -euo pipefail
cd "$(dirname "$0")/.."
usage() {
  echo "usage: $0 [--prefix PREFIX | --plugin-dir DIR]" >&2
  exit 2
}
case "${1:-}" in
  --prefix)
    [ $# -eq 2 ] || usage
    # GStreamer's plugin folder relative to its own prefix, under the new prefix.
    gst_prefix="$(pkg-config --variable=prefix gstreamer-1.0)"
    pluginsdir="$(pkg-config --variable=pluginsdir gstreamer-1.0)"
    case "$pluginsdir" in
      "$gst_prefix"/*) dest="${2%/}/${pluginsdir#"$gst_prefix"/}" ;;
      *) dest="${2%/}/lib/gstreamer-1.0" ;;
    esac
    ;;
  --plugin-dir)
    [ $# -eq 2 ] || usage
    dest="$2"
    ;;
  "")
    if [ "$(id -u)" -eq 0 ]; then
      dest="$(pkg-config --variable=pluginsdir gstreamer-1.0)"
    else
      dest="$HOME/.local/share/gstreamer-1.0/plugins"
    fi
    ;;
  *) usage ;;
esac
scripts/setup.sh
cargo build --release --locked --quiet
install -d "$dest"
install -m 644 "${CARGO_TARGET_DIR:-target}/release/libgstmediarecorder.so" "$dest/"
echo "Installed $dest/libgstmediarecorder.so"
gst-inspect-1.0 --plugin mediarecorder >/dev/null 2>&1 \
  && echo "gst-inspect-1.0 mediarecorder finds it." \
  || echo "Note: $dest is not a folder GStreamer scans; add it to GST_PLUGIN_PATH."
