#!/usr/bin/env bash
# Benchmarks of the mediarecorder element: builds the plugin, runs bench/bench.py, which
# writes each section's figures to bench/results/<section>.json and renders BENCHMARKS.md
# from all of them (and prints it). Installs nothing: a missing tool stops it with the
# package to install (scripts/setup.sh installs them all).
#
#   bench/run.sh                       # everything (about 30 min with the 10 min recordings)
#   BENCH_LONG_S=60 bench/run.sh       # long memory recordings of 1 min instead of 10
#   BENCH_ONLY=fps,quality bench/run.sh
#   BENCH_ONLY=cpu BENCH_REPS=1 BENCH_CPU_S=2 BENCH_OUT=/tmp/b.md bench/run.sh   # quick look
#   BENCH_ONLY=prerecord BENCH_PRERECORD_S=30 bench/run.sh
#   BENCH_ONLY=overhead,startup BENCH_REPS=1 BENCH_OVERHEAD_S=2 BENCH_OUT=/tmp/b.md bench/run.sh
#   BENCH_RENDER_ONLY=1 bench/run.sh   # only re-render BENCHMARKS.md from bench/results
#
# Sections (BENCH_ONLY / BENCH_SKIP, comma separated): fps, quality, cpu, live1080, mem,
# density, prerecord, freecaps (no format in the caps: element vs hand, CPU and format
# negotiated, non-live and live), vp8speed (VP8 realtime speed and PSNR against cpu-used
# and static-threshold), overhead (element vs hand at the same encoder settings, live and
# non-live, 720p/1080p, video and video+audio: CPU per recorded second, threads, peak
# memory), startup (PLAYING to first byte on disk, stop to finalized file, live 720p30),
# cameras (N cameras kept as they are, 1080p30 H.264 + AAC into MP4: bench/cameras.sh).
# A run of some sections rewrites only their JSON files;
# the report shows every section that has one (BENCH_MERGE=0: this run's alone).
# BENCH_REPS sets the repetitions of the timed runs (default 3). BENCH_OUT writes the
# report elsewhere, and then its JSON files beside it (/tmp/b.md: /tmp/b.results/), so a
# quick look leaves the committed figures alone; BENCH_RESULTS chooses that directory.
# The other knobs (lengths, resolutions, codecs of each section) are listed at the top of
# bench/bench.py. Progress goes to stderr.
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

python=/usr/bin/python3
if [ "${BENCH_RENDER_ONLY:-0}" = 1 ]; then
    # rendering reads JSON files only: no plugin, no GStreamer needed
    exec "$python" "$root/bench/bench.py"
fi

missing=()
need() { # need PACKAGE TEST...: PACKAGE is missing when the test fails
    local package=$1
    shift
    "$@" >/dev/null 2>&1 || missing+=("$package")
}
need gstreamer1.0-tools command -v gst-launch-1.0
need ffmpeg command -v ffmpeg
need ffmpeg command -v ffprobe
need python3-gi "$python" -c 'import gi'
need gir1.2-gstreamer-1.0 "$python" -c \
    'import gi; gi.require_version("Gst", "1.0"); from gi.repository import Gst'
need gstreamer1.0-plugins-base gst-inspect-1.0 videotestsrc
need gstreamer1.0-plugins-good gst-inspect-1.0 vp8enc
need gstreamer1.0-plugins-bad gst-inspect-1.0 rawvideoparse
need gstreamer1.0-plugins-bad gst-inspect-1.0 av1enc
status=0
if ((${#missing[@]})); then
    packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
    say "missing packages: ${packages% }"
    say "install them with: apt-get install ${packages% }   (or run scripts/setup.sh)"
    status=1
fi
if ! command -v cargo >/dev/null; then
    say "missing cargo (Rust 1.92 or newer): install it with rustup"
    status=1
fi
((status == 0)) || exit 1

say "cargo build --release"
cargo build --release --locked >&2

export GST_PLUGIN_PATH=$root/target/release
gst-inspect-1.0 mediarecorder >/dev/null || { say "mediarecorder not found in $GST_PLUGIN_PATH"; exit 1; }

exec "$python" "$root/bench/bench.py"
