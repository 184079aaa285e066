"""Section 5: memory of live 720p30 recordings, short and long: peak RSS, RSS sampled
over the run and its trend; the element writing a file, the element handing chunks to a
`dataavailable` listener, and the hand pipeline."""

import os
import re

from ..common import BENCH, FPS, PATTERN, PY, RESOLUTIONS, env_int, log
from ..encoders import recorder_desc
from ..markdown import fmt, table
from ..media import caps, probe
from ..process import gst, rss_at, rss_slope, run

KEYS = ("mem",)
FILE = "element, file"
LISTENER = "element, timeslice=1000 + dataavailable listener, no file"


def measure(ctx, keys):
    short = env_int("BENCH_MEM_SHORT_S", 10)
    long_s = env_int("BENCH_LONG_S", 600)
    w, h = RESOLUTIONS[os.environ.get("BENCH_MEM_RES", "720")]
    c = caps(w, h)
    plan = [(FILE, short, "gst"), (FILE, long_s, "gst"),
            (LISTENER, short, "listener"), (LISTENER, long_s, "listener"),
            ("hand", short, "hand")]
    if env_int("BENCH_MEM_HAND_LONG", 0) == 1:
        plan.append(("hand", long_s, "hand"))
    runs = []
    for name, secs, kind in plan:
        n = secs * FPS
        live = f"{PATTERN} is-live=true num-buffers={n} ! {c}"
        out = ctx.path("mem.webm")
        if kind == "gst":
            cmd = gst(f"{live} ! {recorder_desc('vp8', out)}")
        elif kind == "listener":
            cmd = [PY, os.path.join(BENCH, "listener.py"),
                   f"{live} ! {recorder_desc('vp8', None, 'timeslice=1000')}"]
        else:
            cmd = gst(f"{live} ! videoconvert ! "
                      f"{ctx.settings.hand_encoder('vp8', w, h, True)} ! webmmux ! "
                      f"filesink location={out}")
        ctx.command(f"memory: {name}", cmd)
        log(f"mem: {name}, {secs} s")
        r = run(cmd, timeout=secs * 3 + 60, sample_every=0.5)
        at10 = rss_at(r.samples, min(10.0, secs * 0.9))
        end = r.samples[-1][1] if r.samples else None
        figures = {
            "name": name, "seconds": secs, "peak_mb": r.maxrss_kb / 1024,
            "rss_at_10_mb": at10 / 1024 if at10 else None,
            "rss_end_mb": end / 1024 if end else None,
            # the trend after the first 10 s means something on long runs only
            "trend_mb_per_min": rss_slope(r.samples, 10.0) if secs >= 30 else None,
        }
        if kind == "listener":
            m = re.search(r"chunks=(\d+) bytes=(\d+)", r.out)
            figures["chunks"] = int(m.group(1)) if m else None
            figures["data_mb"] = int(m.group(2)) / 1e6 if m else None
        else:
            figures["frames"] = probe(out)["frames"]
        runs.append(figures)
        if os.path.exists(out):
            os.unlink(out)
    peaks = {(r["name"], r["seconds"]): r["peak_mb"] for r in runs}
    growth = {}
    for name in (FILE, LISTENER):
        a, b = peaks.get((name, short)), peaks.get((name, long_s))
        if a and b and long_s != short:
            growth[name] = b / a - 1
    return {"mem": {"height": h, "short_s": short, "long_s": long_s, "runs": runs,
                    "growth": growth}}


def output_cell(r):
    if "frames" in r:
        return f"{r['frames']} frames"
    if r.get("chunks") is None:
        return "?"
    return f"{r['chunks']} chunks, {r['data_mb']:.1f} MB"


def render(key, f):
    rows = [[r["name"], f"{r['seconds']}", f"{r['peak_mb']:.1f}", fmt(r["rss_at_10_mb"]),
             fmt(r["rss_end_mb"]), fmt(r["trend_mb_per_min"], "+.2f"), output_cell(r)]
            for r in f["runs"]]
    return (
        f"Peak memory, live {f['height']}p30",
        "Peak RSS of the process (ru_maxrss of the child, as `/usr/bin/time -f %M`), "
        "RSS sampled from /proc every 0.5 s at 10 s and at the end, and the RSS trend "
        "after the first 10 s (least squares, MB per minute; long runs only). The "
        "listener is `bench/listener.py`, a PyGObject script that connects "
        "`dataavailable` and drops the data (its Python interpreter adds to the "
        "baseline, so compare it with its own short run).\n\n"
        + table(["", "seconds", "peak MB", "RSS at 10 s MB", "RSS at end MB",
                 "trend MB/min", "output"], rows),
    )


def targets(docs):
    f = docs["mem"]["figures"]
    peaks = {(r["name"], r["seconds"]): r["peak_mb"] for r in f["runs"]}
    found = []
    for name, growth in f["growth"].items():
        short, long_mb = peaks[(name, f["short_s"])], peaks[(name, f["long_s"])]
        found.append((
            f"peak memory {f['long_s']} s vs {f['short_s']} s within 5 % ({name})",
            f"{long_mb:.1f} vs {short:.1f} MB ({growth * 100:+.1f} %)",
            growth <= 0.05,
        ))
    return found
