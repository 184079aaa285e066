"""Paths, the test picture, environment knobs, logging and the small statistics every
section uses."""

import os
import statistics
import sys
import time

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCH)
# PyGObject lives with the system interpreter: the helper scripts run under it
PY = "/usr/bin/python3"
PLUGIN = os.path.join(ROOT, "target", "release", "libgstmediarecorder.so")

RESOLUTIONS = {
    "240": (320, 240),
    "480": (640, 480),
    "720": (1280, 720),
    "1080": (1920, 1080),
}
FPS = 30
PATTERN = "videotestsrc pattern=smpte horizontal-speed=4"


def env_int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_list(name, default):
    value = os.environ.get(name, "")
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or default


def log(*args):
    stamp = time.strftime("%H:%M:%S")
    print(f"[bench {stamp}]", *args, file=sys.stderr, flush=True)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def value_range(values):
    """[smallest, largest], or None when nothing was measured."""
    values = [v for v in values if v is not None]
    return [min(values), max(values)] if values else None
