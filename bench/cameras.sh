#!/usr/bin/env bash
# Cameras kept as they are (BENCHMARKS.md section "Cameras kept as they are"): N
# 1080p30 H.264 + AAC cameras recorded side by side by the hand pipeline, the element,
# the element with the NVR features and ffmpeg -c copy, N processes and one process.
#
#   bench/cameras.sh           # N = 1, 16, 64, 200, 30 s each (about 35 min); writes
#                              # BENCHMARKS.md and bench/results/cameras.json
#   bench/cameras.sh quick     # N = 1, 16, 20 s each (about 6 min), report in /tmp/cameras.md
#   BENCH_CAMERAS_BASE=DIR bench/cameras.sh   # also `element-base`: the plugin in DIR
#                              # (another build's target/release) in the same run
#
# Other knobs: BENCH_CAMERAS_N, BENCH_CAMERAS_S, BENCH_CAMERAS_TOOLS
# (hand,element,element-nvr,ffmpeg[,element-base,element-nvr-base,hand-queued,
# element-nvr-one-folder]),
# BENCH_CAMERAS_MODES (processes,process), BENCH_CAMERAS_KBPS, BENCH_CAMERAS_TOGETHER (the N
# at which the tools record at the same time, default 16,64). On a shared machine:
# nice -n 19 bench/cameras.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_ONLY=cameras
if [ "${1:-}" = quick ]; then
    export BENCH_CAMERAS_N=${BENCH_CAMERAS_N:-1,16} BENCH_CAMERAS_S=${BENCH_CAMERAS_S:-20}
    export BENCH_OUT=${BENCH_OUT:-/tmp/cameras.md} BENCH_MERGE=0
fi
exec bench/run.sh
