#!/usr/bin/python3
"""Leaves a `mediarecorder name=r autostart=false` inactive for a while, sampling its
`pre-record-bytes` property (readable only in-process) and this process's RSS and CPU
every second; then records for a moment and checks the file with ffprobe.

usage: prerecord.py 'PIPELINE ... ! mediarecorder name=r autostart=false location=F ...' \
           WAIT_S LOCATION [MIN_DURATION_S]

Steps: PLAYING; WAIT_S seconds inactive, one sample a second (t = 0 .. WAIT_S); emit
`start-recording`; 2 s; emit `stop-recording`; wait (at most 30 s) for `stop`; NULL;
`ffprobe` the file. CPU is the kernel's account of this process (getrusage
RUSAGE_SELF, all threads) read at each sample, so the parent can take the waiting
window alone; ffprobe runs after the last reading and its CPU and peak RSS are
reported apart (`ffprobe_cpu`, `ffprobe_maxrss_kb`), as the parent's wait4 counts them
too; `maxrss_self_kb` is this process's own peak.

Prints one JSON line to stdout at the end. Exit status 0 when the recording started,
stopped and the file has at least MIN_DURATION_S seconds (default 0); else 1.
"""
import json
import os
import resource
import subprocess
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

RECORD_S = 2.0
STOP_TIMEOUT_S = 30.0


def cpu_self():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def bus_error(bus):
    msg = bus.pop_filtered(Gst.MessageType.ERROR)
    if msg is None:
        return None
    err, dbg = msg.parse_error()
    return f"{err.message} ({dbg})"


def probe(path):
    """ffprobe: container duration and decoded video frames."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return {"duration": 0.0, "frames": 0, "size": 0}
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames:format=duration,size", "-of", "json", path],
        capture_output=True, text=True, check=False,
    ).stdout
    try:
        j = json.loads(out)
        return {
            "duration": float(j["format"].get("duration", 0) or 0),
            "frames": int(j["streams"][0].get("nb_read_frames", 0)),
            "size": int(j["format"].get("size", 0)),
        }
    except (ValueError, KeyError, IndexError):
        return {"duration": 0.0, "frames": 0, "size": 0}


def main():
    desc, wait_s, location = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    min_duration = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    Gst.init(None)
    pipeline = Gst.parse_launch(desc)
    recorder = pipeline.get_by_name("r")
    bus = pipeline.get_bus()
    stopped = threading.Event()
    closed = []
    recorder.connect("stop", lambda _r: stopped.set())

    def on_closed(_r, info):
        ok, dur = info.get_uint64("duration")
        closed.append(dur / 1e9 if ok else None)

    recorder.connect("file-closed", on_closed)
    result = {"pre_record_ms": recorder.get_property("pre-record"), "samples": [],
              "error": None}

    pipeline.set_state(Gst.State.PLAYING)
    pipeline.get_state(10 * Gst.SECOND)
    # t = 0: the pipeline is playing and the element inactive
    t0 = time.monotonic()
    for i in range(wait_s + 1):
        delay = t0 + i - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        result["samples"].append({
            "t": round(time.monotonic() - t0, 3),
            "bytes": recorder.get_property("pre-record-bytes"),
            "rss_kb": rss_kb(),
            "cpu": round(cpu_self(), 4),
            "state": recorder.get_property("state").value_nick,
        })
        err = bus_error(bus)
        if err:
            result["error"] = err
            break

    if not result["error"]:
        result["started"] = recorder.emit("start-recording")
        time.sleep(1.0)
        result["bytes_while_recording"] = recorder.get_property("pre-record-bytes")
        time.sleep(RECORD_S - 1.0)
        result["stop_accepted"] = recorder.emit("stop-recording")
        result["stop_signal"] = stopped.wait(STOP_TIMEOUT_S)
        result["error"] = bus_error(bus)
    result["cpu_end"] = round(cpu_self(), 4)  # before ffprobe
    result["rss_end_kb"] = rss_kb()
    pipeline.set_state(Gst.State.NULL)
    # peak RSS of this process alone: the parent's wait4 also counts ffprobe's
    result["maxrss_self_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["file_closed_duration"] = closed[-1] if closed else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["probe"] = probe(location)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["ffprobe_cpu"] = round((after.ru_utime + after.ru_stime)
                                  - (before.ru_utime + before.ru_stime), 4)
    result["ffprobe_maxrss_kb"] = after.ru_maxrss
    result["min_duration"] = min_duration
    result["duration_ok"] = result["probe"]["duration"] >= min_duration
    print(json.dumps(result))
    good = (not result["error"] and result.get("started") and result.get("stop_signal")
            and result["duration_ok"])
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
