#!/usr/bin/env bash
# Builds the plugin and installs it where gst-inspect-1.0 finds it without
# GST_PLUGIN_PATH: the system plugin folder as root, else ~/.local/share/gstreamer-1.0/plugins
# (which GStreamer scans for every user). `--prefix DIR` installs into DIR instead.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=""
if [ "${1:-}" = "--prefix" ]; then
  dest="$2"
elif [ "$(id -u)" -eq 0 ]; then
  dest="$(pkg-config --variable=pluginsdir gstreamer-1.0)"
else
  dest="$HOME/.local/share/gstreamer-1.0/plugins"
fi
scripts/setup.sh
cargo build --release --locked --quiet
install -d "$dest"
install -m 644 target/release/libgstmediarecorder.so "$dest/"
echo "Installed $dest/libgstmediarecorder.so"
gst-inspect-1.0 --plugin mediarecorder >/dev/null 2>&1 \
  && echo "gst-inspect-1.0 mediarecorder finds it." \
  || echo "Note: $dest is not a folder GStreamer scans; add it to GST_PLUGIN_PATH."
