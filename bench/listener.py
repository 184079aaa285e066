#!/usr/bin/python3
"""Runs a pipeline ending in `mediarecorder name=r` and listens to `dataavailable`,
discarding the data (as a web page that uploads chunks would, minus the upload).

usage: listener.py 'PIPELINE DESCRIPTION'
Prints one line to stdout at the end: chunks=N bytes=M stops=K error=...
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def main():
    Gst.init(None)
    pipeline = Gst.parse_launch(sys.argv[1])
    recorder = pipeline.get_by_name("r")
    counts = {"chunks": 0, "bytes": 0, "stops": 0}

    def on_data(_rec, buf):
        counts["chunks"] += 1
        counts["bytes"] += buf.get_size()  # the data itself is dropped here

    def on_stop(_rec):
        counts["stops"] += 1

    recorder.connect("dataavailable", on_data)
    recorder.connect("stop", on_stop)
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    err = ""
    msg = bus.timed_pop_filtered(
        Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR
    )
    if msg.type == Gst.MessageType.ERROR:
        e, dbg = msg.parse_error()
        err = f"{e.message} ({dbg})"
    pipeline.set_state(Gst.State.NULL)
    print(f"chunks={counts['chunks']} bytes={counts['bytes']} stops={counts['stops']} error={err!r}")
    return 1 if err else 0


if __name__ == "__main__":
    sys.exit(main())
