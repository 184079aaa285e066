#!/usr/bin/env bash
# Builds the plugin and records 5 s to out.webm: from /dev/video0 (and the default
# microphone) if there is a camera, else from a live test pattern with a test tone.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet
export GST_PLUGIN_PATH="$PWD/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
out="${1:-out.webm}"
if [ -e /dev/video0 ]; then
  echo "Recording 5 s from /dev/video0 to $out"
  video="v4l2src device=/dev/video0 ! r."
  audio="autoaudiosrc ! r."
else
  echo "No camera at /dev/video0: recording 5 s of a live test pattern and tone to $out"
  video="videotestsrc is-live=true pattern=smpte ! video/x-raw,width=1280,height=720,framerate=30/1 ! r."
  audio="audiotestsrc is-live=true wave=sine ! r."
fi
# shellcheck disable=SC2086
gst-launch-1.0 -q -e mediarecorder name=r duration=5000 location="$out" $video $audio
echo "Wrote $out ($(stat -c %s "$out") bytes):"
ffprobe -v error -show_entries format=duration:stream=codec_type,codec_name,width,height,sample_rate \
  -of compact=p=0 "$out"
