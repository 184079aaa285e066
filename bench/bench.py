#!/usr/bin/python3
"""Benchmarks of the mediarecorder element against a hand-written GStreamer pipeline
with the same encoder settings, ffmpeg (libvpx/libaom realtime at the same bitrate) and
a naive `vpXenc ! webmmux` with defaults. Run through bench/run.sh, which builds the
plugin and sets GST_PLUGIN_PATH. Standard library only (the PyGObject helpers run as
separate processes under /usr/bin/python3).

Data flows one way: each section measures and writes its figures to
bench/results/<section>.json (mrbench/sections/), then the renderer (mrbench/render.py)
writes BENCHMARKS.md from all the JSON files there. A run of some sections rewrites only
their files; the report always shows every section that has one.

Environment (all optional):
  BENCH_ONLY      comma list of sections: fps,quality,cpu,live1080,mem,density,prerecord,
                  freecaps,vp8speed,overhead,startup,cameras (default all)
  BENCH_SKIP      comma list of sections to leave out
  BENCH_RENDER_ONLY  1 = measure nothing, only render the report from the JSON files
  BENCH_MERGE     0 = the report shows only the sections of this run (default 1: every
                  section that has a JSON file)
  BENCH_OUT       report path (default BENCHMARKS.md in the repository)
  BENCH_RESULTS   directory of the JSON files (default bench/results for the repository's
                  report, else beside BENCH_OUT: /tmp/b.md keeps them in /tmp/b.results,
                  so a quick look leaves the committed figures alone)
  BENCH_LONG_S    length of the long memory recordings in seconds (default 600)
  BENCH_REPS      repetitions of each timed run; the median is reported (default 3)
  BENCH_RES       resolutions of the fps/quality section (default 480,720,1080; also 240)
  BENCH_CODECS    codecs of the fps/quality section (default vp8,vp9,av1; av1 at 480p only)
  BENCH_FRAMES    frames of each fps/quality encode (default 150)
  BENCH_NAIVE     1 = include the naive defaults pipeline (default 1)
  BENCH_NAIVE_TIMEOUT  seconds before a naive encode is given up (default 150)
  BENCH_AV1_NAIVE 1 = also run av1enc with its defaults (default 0: about 2.4 s a frame
                  at 480p here, some 6 minutes for 150 frames)
  BENCH_CPU_S, BENCH_CPU_RES           live CPU recording (default 5 s at 720)
  BENCH_LIVE1080_S, BENCH_LIVE1080_REPS live 1080p30 recording (default 10 s, 2 runs each)
  BENCH_MEM_SHORT_S, BENCH_MEM_RES     short memory recording (default 10 s at 720)
  BENCH_MEM_HAND_LONG  1 = also record the hand pipeline for BENCH_LONG_S (default 0)
  BENCH_DENSITY_S, BENCH_DENSITY_RES, BENCH_DENSITY_N, BENCH_DENSITY_TOOLS
                  parallel live recorders: length (5), resolution (720), the Ns swept
                  (10,12,14,16,18), tools (element,hand,ffmpeg)
  BENCH_DENSITY_TRIES  attempts of a failing N (1)
  BENCH_DENSITY_ELEMENT_ENCODER  an encoder description the element gets as its
                  video-encoder property, measured as the extra tool element-enc
  BENCH_PRERECORD_S, BENCH_PRERECORD_REPS
                  pre-record: seconds left inactive (30) and runs of each setting (1)
  BENCH_FREECAPS_FRAMES, BENCH_FREECAPS_LIVE_S, BENCH_FREECAPS_RES
                  no format in the caps: non-live frames (300), live seconds (5),
                  resolution (720)
  BENCH_VP8SPEED_FRAMES, BENCH_VP8SPEED_RES, BENCH_VP8SPEED_CPU_USED, BENCH_VP8SPEED_PICTURES
                  VP8 speed/quality study: frames (150), resolution (720), cpu-used
                  values (8,10,12,14,16,-8,-12,-16), pictures (smpte,ball)
  BENCH_OVERHEAD_S, BENCH_OVERHEAD_FRAMES, BENCH_OVERHEAD_RES
                  element vs hand at the same settings, video and video+audio: live
                  seconds (5), non-live frames (150), resolutions (720,1080)
  BENCH_STARTUP_S, BENCH_STARTUP_RES, BENCH_STARTUP_STREAMS
                  PLAYING to first byte and stop to finalized file, live: seconds before
                  the stop (3), resolution (720), streams (video,video+audio)
  BENCH_CAMERAS_N, BENCH_CAMERAS_S, BENCH_CAMERAS_TOOLS, BENCH_CAMERAS_MODES,
  BENCH_CAMERAS_KBPS, BENCH_CAMERAS_BASE, BENCH_CAMERAS_CACHE
                  cameras kept as they are: the Ns (1,16,64,200), seconds (30), tools,
                  modes, bitrate (4000), another build to compare, the camera file's
                  folder (see bench/cameras.sh)
  BENCH_WORK      scratch directory (default a new one under /tmp, removed at the end)
  BENCH_KEEP      1 = keep the scratch directory
"""

import os
import shutil
import tempfile

from mrbench import render, results
from mrbench.common import env_int, env_list, log
from mrbench.context import BenchRun
from mrbench.machine import plugin_id
from mrbench.sections import MODULES, SECTIONS


def chosen_sections():
    only = env_list("BENCH_ONLY", SECTIONS)
    skip = env_list("BENCH_SKIP", [])
    unknown = [s for s in only + skip if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown sections {unknown}; known: {','.join(SECTIONS)}")
    return [s for s in SECTIONS if s in only and s not in skip]


def measure(sections, directory):
    """Runs the sections, each writing its JSON file as soon as it is done (so an
    interrupted run keeps what it measured). Returns the run's id."""
    work = os.environ.get("BENCH_WORK") or tempfile.mkdtemp(prefix="mediarecorder-bench-")
    os.makedirs(work, exist_ok=True)
    try:
        ctx = BenchRun(work, max(1, env_int("BENCH_REPS", 3)))
        log(f"sections: {','.join(sections)}; scratch {work}; results in {directory}")
        for module in MODULES:
            keys = [key for key in module.KEYS if key in sections]
            if not keys:
                continue
            ctx.begin_section()
            figures = module.measure(ctx, keys)
            for key in keys:
                log(f"wrote {results.write(directory, ctx.record(key, figures[key]))}")
        if plugin_id() != ctx.machine["plugin"]:
            log("warning: the plugin file changed during the run")
        return ctx.id
    finally:
        if env_int("BENCH_KEEP", 0) != 1 and not os.environ.get("BENCH_WORK"):
            shutil.rmtree(work, ignore_errors=True)


def main():
    out = os.environ.get("BENCH_OUT") or results.DEFAULT_REPORT
    directory = results.results_dir(out)
    run_id = None
    if env_int("BENCH_RENDER_ONLY", 0) != 1:
        run_id = measure(chosen_sections(), directory)
    docs = results.load(directory, SECTIONS)
    if run_id and env_int("BENCH_MERGE", 1) == 0:
        docs = {key: doc for key, doc in docs.items() if doc["run"] == run_id}
    text = render.report(docs)
    with open(out, "w") as f:
        f.write(text)
    print(text)
    log(f"wrote {out} from {len(docs)} file(s) in {directory}")


if __name__ == "__main__":
    main()
