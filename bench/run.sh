#!/usr/bin/env bash
# Benchmarks of the mediarecorder element, written to BENCHMARKS.md and printed.
#
#   bench/run.sh                       # everything (about 30 min with the 10 min recordings)
#   BENCH_LONG_S=60 bench/run.sh       # long memory recordings of 1 min instead of 10
#   BENCH_ONLY=fps,quality bench/run.sh
#   BENCH_ONLY=cpu BENCH_REPS=1 BENCH_CPU_S=2 BENCH_OUT=/tmp/b.md bench/run.sh   # quick look
#
#   BENCH_ONLY=prerecord BENCH_PRERECORD_S=30 bench/run.sh
#
# Sections (BENCH_ONLY / BENCH_SKIP, comma separated): fps, quality, cpu, live1080, mem,
# density, prerecord, freecaps (no format in the caps: element vs hand, CPU and format
# negotiated, non-live and live). A run of some sections replaces only those in an existing report
# and keeps the others (BENCH_MERGE=0 writes this run alone). Other knobs are listed at
# the top of bench/bench.py. Progress goes to stderr.
# On a shared machine run it as `nice -n 19 bench/run.sh`.
#
# Compares, on the same machine and input: the element with its defaults, a hand-written
# `videoconvert ! vp8enc <the element's settings> ! webmmux ! filesink`, ffmpeg's libvpx
# (libaom for AV1) realtime at the same bitrate and threads, and a naive
# `vp8enc ! webmmux` with the encoder's defaults.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

say() { echo "[bench] $*" >&2; }

missing=()
command -v gst-launch-1.0 >/dev/null || missing+=(gstreamer1.0-tools)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v ffprobe >/dev/null || missing+=(ffmpeg)
/usr/bin/python3 -c 'import gi; gi.require_version("Gst", "1.0"); from gi.repository import Gst' \
    2>/dev/null || missing+=(python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0)
gst-inspect-1.0 rawvideoparse >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-bad)
gst-inspect-1.0 vp8enc >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-good)
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

say "cargo build --release"
cargo build --release >&2

export GST_PLUGIN_PATH=$root/target/release
gst-inspect-1.0 mediarecorder >/dev/null || { say "mediarecorder not found in $GST_PLUGIN_PATH"; exit 1; }

exec /usr/bin/python3 "$root/bench/bench.py"
