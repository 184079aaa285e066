"""Section 8: the pipelines users write, with no format in the caps: what videotestsrc
negotiates with the element and what that costs against the hand pipeline, non-live
and live."""

import os
import re
import shlex

from ..common import FPS, PATTERN, RESOLUTIONS, env_int, log, median, value_range
from ..encoders import read_back, recorder_desc
from ..markdown import table
from ..media import probe
from ..process import gst, run

KEYS = ("freecaps",)
FOUR20 = {"I420", "YV12", "NV12", "NV21"}
MODES = ("non-live", "live")


def negotiated(desc):
    """Formats negotiated by a pipeline, read from `gst-launch-1.0 -v`: videotestsrc's
    src pad, the mediarecorder's sink (ghost) pad, the encoder's sink pad."""
    r = run(["gst-launch-1.0", "-v"] + shlex.split(desc), timeout=60)
    found = {}
    pads = [("src", r"GstVideoTestSrc:[^.\s]+\.GstPad:src"),
            ("recorder", r"GstMediaRecorder:[^./\s]+\.GstGhostPad:[^.:\s]+"),
            ("encoder", r"GstVP8Enc:[^.\s]+\.GstPad:sink")]
    for key, pad in pads:
        m = re.search(pad + r": caps = video/x-raw, format=\(string\)(\w+)"
                      r"(?:.*?framerate=\(fraction\)(\d+/\d+))?", r.out)
        if m:
            found[key] = m.group(1)
            if m.group(2):
                found["fps"] = m.group(2)
    return found


def measure(ctx, keys):
    frames = env_int("BENCH_FREECAPS_FRAMES", 300)
    live_s = env_int("BENCH_FREECAPS_LIVE_S", 5)
    w, h = RESOLUTIONS[os.environ.get("BENCH_FREECAPS_RES", "720")]
    n_live = live_s * FPS
    free = f"video/x-raw,width={w},height={h}"  # a size, no format, no framerate
    modes = {
        "non-live": (f"{PATTERN} num-buffers={frames} ! {free}", frames, False),
        "live": (f"{PATTERN} is-live=true num-buffers={n_live} ! {free}", n_live, True),
    }
    log(f"freecaps: {h}p without format in the caps, non-live {frames} frames and "
        f"live {live_s} s, {ctx.reps} run(s) each")
    cmds, outs, descs, expect = {}, {}, {}, {}
    same_settings = []
    for mode, (src, n, live) in modes.items():
        # the hand pipeline gets what the element configures for this very pipeline
        s = read_back(f"{src.replace(f'num-buffers={n}', 'num-buffers=5')} ! "
                      f"{recorder_desc('vp8', ctx.path('fc-settings.webm'))}")
        if "factory" not in s:
            raise RuntimeError(f"freecaps: no encoder settings for {mode}: {s}")
        fixed = ctx.settings.get("vp8", w, h, live)  # the same with format=I420
        same_settings.append(s["props"] == fixed["props"])
        if s["props"] != fixed["props"]:
            log(f"freecaps: {mode} settings differ without format: {s['props']} vs "
                f"{fixed['props']}")
        props = " ".join(f"{k}={v}" for k, v in s["props"].items())
        hand_enc = f"{s['factory']} {props}"
        for tool in ("element", "hand"):
            key = (tool, mode)
            outs[key] = ctx.path(f"fc-{tool}-{mode}.webm")
            if tool == "element":
                descs[key] = f"{src} ! {recorder_desc('vp8', outs[key])}"
            else:
                descs[key] = (f"{src} ! videoconvert ! {hand_enc} ! webmmux ! "
                              f"filesink location={outs[key]}")
            cmds[key] = gst(descs[key])
            expect[key] = n
            ctx.command(f"free caps: {tool}, {mode} {h}p", cmds[key])
    # what each negotiates (a few frames under -v)
    formats = {}
    for key, desc in descs.items():
        short = desc.replace(f"num-buffers={expect[key]}", "num-buffers=5")
        formats[key] = negotiated(short.replace(outs[key], ctx.path("fc-neg.webm")))
        log(f"freecaps: {key[0]} {key[1]} negotiates {formats[key]}")
    cpu = {k: [] for k in cmds}
    wall = {k: [] for k in cmds}
    kept = {k: [] for k in cmds}
    # interleaved, so a change of load on the machine hits every pipeline alike
    for _ in range(ctx.reps):
        for key, cmd in cmds.items():
            r = run(cmd, timeout=120)
            cpu[key].append(r.cpu)
            wall[key].append(r.wall)
            kept[key].append(probe(outs[key])["frames"])
            os.unlink(outs[key])
    pipelines = [{"tool": tool, "mode": mode, "negotiated": formats[(tool, mode)],
                  "cpu": median(cpu[(tool, mode)]), "cpu_range": value_range(cpu[(tool, mode)]),
                  "wall": median(wall[(tool, mode)]),
                  "frames_kept": value_range(kept[(tool, mode)]),
                  "frames_expected": expect[(tool, mode)]}
                 for tool, mode in cmds]
    by = {(p["tool"], p["mode"]): p for p in pipelines}
    ratios = {mode: {"cpu": by[("element", mode)]["cpu"] / by[("hand", mode)]["cpu"],
                     "wall": by[("element", mode)]["wall"] / by[("hand", mode)]["wall"]}
              for mode in modes}
    return {"freecaps": {
        "width": w, "height": h, "frames": frames, "live_frames": n_live, "reps": ctx.reps,
        "same_settings": all(same_settings), "pipelines": pipelines, "ratios": ratios,
    }}


def format_cell(neg):
    text = neg.get("src", "?")
    at_rec = neg.get("recorder")
    if at_rec and at_rec != text:
        text += f" → {at_rec} at mediarecorder"
    inner = neg.get("encoder")
    if inner and inner != neg.get("src"):
        text += f" → {inner} at vp8enc"
    if neg.get("fps"):
        text += f" @ {neg['fps']}"
    return text


def render(key, f):
    rows = []
    for p in f["pipelines"]:
        low, high = p["frames_kept"]
        kept = f"{low} / {p['frames_expected']}" if low == high \
            else f"{low}–{high} / {p['frames_expected']}"
        rows.append([f"{p['tool']}, {p['mode']}", format_cell(p["negotiated"]),
                     f"{p['cpu']:.3f}", f"{p['cpu_range'][0]:.3f}–{p['cpu_range'][1]:.3f}",
                     f"{p['wall']:.2f}", kept])
    ratio_rows = [[mode, f"{r['cpu']:.3f} ({(r['cpu'] - 1) * 100:+.1f} %)", f"{r['wall']:.3f}",
                   "**within 5 %**" if r["cpu"] <= 1.05 else "**over 5 %**"]
                  for mode, r in f["ratios"].items()]
    w, h = f["width"], f["height"]
    return (
        f"No format in the caps, {h}p",
        "The pipelines users write, with a size but no `format=` (nor framerate) in the "
        f"caps: `videotestsrc ! video/x-raw,width={w},height={h} ! mediarecorder` against "
        "the hand `... ! videoconvert ! vp8enc <the settings the element chose for this "
        "very pipeline, read back> ! webmmux ! filesink`, non-live "
        f"({f['frames']} frames as fast as possible) and live (`is-live=true`, "
        f"{f['live_frames']} frames at {FPS} fps). The format is what videotestsrc's src pad "
        "negotiated (`gst-launch-1.0 -v`, 5 frames; the encoder's input format when it "
        "differs). CPU is user+sys of the whole gst-launch-1.0 process (getrusage of the "
        f"child), median and range of {f['reps']} runs taken in turn; frames counted with "
        "`ffprobe -count_frames`."
        + ("" if f["same_settings"] else
           " The element chose other encoder settings than with `format=I420`.")
        + "\n\n"
        + table(["pipeline", "negotiated format", "CPU s", "range", "wall s",
                 "frames kept"], rows)
        + "\n\nElement / hand (median CPU; target: within 5 %):\n\n"
        + table(["", "CPU ratio", "wall ratio", "verdict"], ratio_rows),
    )


def targets(docs):
    f = docs["freecaps"]["figures"]
    by = {(p["tool"], p["mode"]): p for p in f["pipelines"]}
    element_formats = {by[("element", m)]["negotiated"].get("src") for m in MODES}
    found = [(
        "`videotestsrc ! mediarecorder` without format negotiates 4:2:0",
        ", ".join(f"{m}: {by[('element', m)]['negotiated'].get('src', '?')}" for m in MODES),
        bool(element_formats) and element_formats <= FOUR20,
    )]
    for mode, r in f["ratios"].items():
        found.append((
            f"no format in the caps, {mode}: element CPU within 5 % of hand",
            f"{by[('element', mode)]['cpu']:.3f} vs {by[('hand', mode)]['cpu']:.3f} "
            f"CPU s ({(r['cpu'] - 1) * 100:+.1f} %)",
            r["cpu"] <= 1.05,
        ))
    return found

