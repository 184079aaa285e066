#!/usr/bin/python3
"""N cameras recorded in one process, each camera its own pipeline, as an NVR
application embeds the recorder: `cameras_inproc.py RESULT.json DESCRIPTION...`, one
gst-launch description per camera (bench/mrbench/sections/cameras.py writes them).

Sets every pipeline to PLAYING, waits for each one's EOS (or error), and writes
{"baseline": {...}, "pipelines": [{"seconds": PLAYING to EOS, "error": ...}]} to
RESULT.json. The baseline is the interpreter's own threads and resident memory after
GStreamer is initialized and before any pipeline exists, so the caller can take them
out of the per-camera figures. Messages other than EOS and errors are dispatched by
the bus in C (detailed signals), never by Python: the figures are the pipelines'."""

import json
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def own_status():
    threads = len(os.listdir("/proc/self/task"))
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return {"threads": threads, "rss_kb": rss}


def main():
    out, descs = sys.argv[1], sys.argv[2:]
    Gst.init(None)
    baseline = own_status()
    loop = GLib.MainLoop()
    results = [{"seconds": None, "error": None} for _ in descs]
    started = [None] * len(descs)
    pipelines = []
    left = [len(descs)]

    def finished(i, error=None):
        if results[i]["seconds"] is not None or results[i]["error"]:
            return
        if error:
            results[i]["error"] = error
        else:
            results[i]["seconds"] = time.monotonic() - started[i]
        left[0] -= 1
        if left[0] == 0:
            loop.quit()

    for i, desc in enumerate(descs):
        pipeline = Gst.parse_launch(desc)
        bus = pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::eos", lambda _b, _m, i=i: finished(i))
        bus.connect("message::error",
                    lambda _b, m, i=i: finished(i, str(m.parse_error()[0].message)))
        pipelines.append(pipeline)
    for i, pipeline in enumerate(pipelines):
        if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            started[i] = time.monotonic()
            finished(i, "could not set PLAYING")
        else:
            started[i] = time.monotonic()
    if left[0] > 0:
        loop.run()
    for pipeline in pipelines:
        pipeline.set_state(Gst.State.NULL)
    with open(out, "w") as f:
        json.dump({"baseline": baseline, "pipelines": results}, f)


if __name__ == "__main__":
    main()
