"""Section 4: frames kept by a live 1080p30 recording, the element (which drops in its
queue when the encoder falls behind) against the hand pipeline (which falls behind)."""

import os
import re

from ..common import FPS, PATTERN, RESOLUTIONS, env_int, log
from ..encoders import recorder_desc
from ..markdown import table
from ..media import caps, probe
from ..process import gst, run

KEYS = ("live1080",)


def measure(ctx, keys):
    secs = env_int("BENCH_LIVE1080_S", 10)
    reps = env_int("BENCH_LIVE1080_REPS", 2)
    w, h = RESOLUTIONS["1080"]
    n = secs * FPS
    live = f"{PATTERN} is-live=true num-buffers={n} ! {caps(w, h)}"
    log(f"live1080: {secs} s, {reps} run(s) each")
    outs = {"element": ctx.path("live1080-e.webm"), "hand": ctx.path("live1080-h.webm")}
    # without -q: the element's drop warnings are counted
    tools = {
        "element": gst(f"{live} ! {recorder_desc('vp8', outs['element'])}", quiet=False),
        "hand": gst(f"{live} ! videoconvert ! "
                    f"{ctx.settings.hand_encoder('vp8', w, h, True)} ! webmmux ! "
                    f"filesink location={outs['hand']}", quiet=False),
    }
    for name, cmd in tools.items():
        ctx.command(f"{name} (live 1080p30)", cmd)
    got = {name: [] for name in tools}
    for _ in range(reps):
        for name, cmd in tools.items():
            r = run(cmd, timeout=secs * 10 + 30)
            p = probe(outs[name])
            warned = [int(x) for x in re.findall(r"(\d+) frames dropped", r.out)]
            got[name].append({"frames": p["frames"], "wall": r.wall, "cpu_per_s": r.cpu / secs,
                              "kbps": p["kbps"], "drop_warnings": max(warned, default=0)})
            os.unlink(outs[name])
    runs = [dict(tool=name, run=i, **g)
            for name, gs in got.items() for i, g in enumerate(gs, 1)]
    return {"live1080": {"seconds": secs, "frames": n, "reps": reps, "runs": runs}}


def render(key, f):
    n = f["frames"]
    rows = []
    for r in f["runs"]:
        if r["tool"] != "element":
            warned = "—"
        else:
            warned = f"{r['drop_warnings']}+" if r["drop_warnings"] else "none"
        rows.append([r["tool"], str(r["run"]), f"{r['frames']} / {n}",
                     f"{100 * r['frames'] / n:.1f} %", f"{r['wall']:.2f}",
                     f"{r['cpu_per_s']:.2f}", f"{r['kbps']:.0f}", warned])
    return (
        f"Frames kept, live 1080p30 for {f['seconds']} s",
        "Frames counted with `ffprobe -count_frames`. The element drops frames in its "
        "queue when the encoder falls behind (so wall time stays real time); the hand "
        "pipeline has no queue and would fall behind instead (wall time grows). "
        "`drop warnings` is the largest count in the element's \"frames dropped so far\" "
        "warnings (posted at the first drop and every 100th).\n\n"
        + table(["", "run", "frames", "kept", "wall s", "CPU s per s", "kbit/s",
                 "drop warnings"], rows),
    )


def targets(docs):
    f = docs["live1080"]["figures"]
    n = f["frames"]
    fewest = min(r["frames"] for r in f["runs"] if r["tool"] == "element")
    return [(
        "live 1080p30 keeps ≥ 99 % of frames",
        f"fewest {fewest} of {n} ({100 * fewest / n:.1f} %) in {f['reps']} run(s)",
        fewest >= 0.99 * n,
    )]
