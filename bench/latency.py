#!/usr/bin/python3
"""Times both ends of one recording: from asking the pipeline to play to the first
media of the output file on disk (its first Cluster: a header alone holds no frame),
and from asking the recording to stop to the file being finalized.

usage: latency.py SECONDS LOCATION 'PIPELINE DESCRIPTION'

A pipeline with an element named `r` (mediarecorder) is stopped with its
`stop-recording` action and its file is final at the element's `stop` signal; any other
pipeline is sent EOS and its file is final at the EOS message. SECONDS after PLAYING the
stop is asked. Prints one JSON line on stdout: first_media_s, first_byte_s, finalize_s (and for the
element stop_message_s, when `mediarecorder-stop` was posted), duration (ffprobe's
reading of the file at the moment it was reported final, before the pipeline goes
down; None when the file has no Duration), error.
"""
import json
import os
import subprocess
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

POLL_S = 0.002


def size(path):
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


CLUSTER_ID = b"\x1f\x43\xb6\x75"


def has_cluster(path):
    try:
        with open(path, "rb") as f:
            return CLUSTER_ID in f.read()
    except OSError:
        return False


def watch_first_byte(path, times, done):
    """Polls the file until it holds a byte (the file may not exist yet), then until it
    holds a Cluster, the first frames."""
    while not done.is_set():
        if "first_byte" not in times and size(path) > 0:
            times["first_byte"] = time.monotonic()
        if "first_byte" in times and has_cluster(path):
            times["first_media"] = time.monotonic()
            return
        time.sleep(POLL_S)


def ffprobe_duration(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration",
         "-of", "default=noprint_wrappers=1:nokey=1", path],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    try:
        return float(out)
    except ValueError:
        return None


class Timing:
    """One run: the moments noted from the bus (synchronously, in the posting thread),
    the element's `stop` signal and the polling thread, all on time.monotonic()."""

    def __init__(self, secs, location, desc):
        self.secs = secs
        self.location = location
        self.pipeline = Gst.parse_launch(desc)
        self.recorder = self.pipeline.get_by_name("r")
        self.times = {}
        self.errors = []
        self.loop = GLib.MainLoop()
        bus = self.pipeline.get_bus()
        bus.enable_sync_message_emission()
        bus.connect("sync-message", self.on_message)
        if self.recorder is not None:
            self.recorder.connect("stop", lambda _rec: self.final())

    def final(self):
        self.times.setdefault("final", time.monotonic())
        GLib.idle_add(self.loop.quit)

    def on_message(self, _bus, msg):
        now = time.monotonic()
        if msg.type == Gst.MessageType.STATE_CHANGED and msg.src == self.pipeline:
            if msg.parse_state_changed()[1] == Gst.State.PLAYING and "playing" not in self.times:
                self.times["playing"] = now
                GLib.timeout_add(int(self.secs * 1000), self.ask_stop)
        elif msg.type == Gst.MessageType.EOS and self.recorder is None:
            self.final()
        elif msg.type == Gst.MessageType.ELEMENT and msg.has_name("mediarecorder-stop"):
            self.times.setdefault("stop_message", now)
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            self.errors.append(f"{err.message} ({dbg})")
            GLib.idle_add(self.loop.quit)

    def ask_stop(self):
        self.times["ask_stop"] = time.monotonic()
        if self.recorder is not None:
            if not self.recorder.emit("stop-recording"):
                self.errors.append("stop-recording refused: not recording")
                self.loop.quit()
        else:
            self.pipeline.send_event(Gst.Event.new_eos())
        return False

    def timeout(self):
        self.errors.append("timeout")
        self.loop.quit()
        return False

    def run(self):
        done = threading.Event()
        poller = threading.Thread(target=watch_first_byte,
                                  args=(self.location, self.times, done), daemon=True)
        poller.start()
        GLib.timeout_add_seconds(int(self.secs) + 30, self.timeout)
        # t0 is the user's request: the pipeline's own PLAYING message can come after
        # the first frames (a bin that finishes its state change late)
        self.times["asked_play"] = time.monotonic()
        self.pipeline.set_state(Gst.State.PLAYING)
        self.loop.run()
        done.set()
        poller.join()
        # read while the pipeline is still up: final means final now, not after NULL
        duration = ffprobe_duration(self.location) if "final" in self.times else None
        self.pipeline.set_state(Gst.State.NULL)
        return self.result(duration)

    def since(self, start, end):
        t = self.times
        return t[end] - t[start] if start in t and end in t else None

    def result(self, duration):
        return {
            "first_byte_s": self.since("asked_play", "first_byte"),
            "first_media_s": self.since("asked_play", "first_media"),
            "finalize_s": self.since("ask_stop", "final"),
            "stop_message_s": self.since("ask_stop", "stop_message"),
            "duration": duration,
            "error": "; ".join(self.errors),
        }


def main():
    secs, location, desc = float(sys.argv[1]), sys.argv[2], sys.argv[3]
    Gst.init(None)
    result = Timing(secs, location, desc).run()
    print(json.dumps(result))
    return 1 if result["error"] or result["finalize_s"] is None else 0


if __name__ == "__main__":
    sys.exit(main())
