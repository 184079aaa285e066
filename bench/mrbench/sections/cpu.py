"""Section 2: CPU per recorded second of a live VP8 recording: the element, the hand
pipeline with its settings, and ffmpeg at the same bitrate."""

import os

from ..common import FPS, PATTERN, RESOLUTIONS, env_int, log, median, value_range
from ..encoders import recorder_desc
from ..markdown import table
from ..media import caps, probe
from ..process import ffmpeg, gst, run

KEYS = ("cpu",)
# what making the pictures alone costs, to subtract if wanted
SOURCE_ONLY = {
    "gst": "gst source only (`videotestsrc is-live=true ! fakesink`)",
    "ffmpeg testsrc2": "ffmpeg source only (`-re testsrc2 -f null`)",
    "ffmpeg yuv": "ffmpeg source only (`-re` .yuv `-f null`)",
}


def measure(ctx, keys):
    secs = env_int("BENCH_CPU_S", 5)
    w, h = RESOLUTIONS[os.environ.get("BENCH_CPU_RES", "720")]
    n = secs * FPS
    live = f"{PATTERN} is-live=true num-buffers={n} ! {caps(w, h)}"
    bps = ctx.settings.bitrate_bps("vp8", w, h, True)
    ff_enc = ctx.settings.ffmpeg_encoder("vp8", w, h, True)
    log(f"cpu: live {h}p30 for {secs} s, {ctx.reps} run(s) each")
    src = ctx.media.gst_source(w, h, n)
    ref2 = ctx.media.testsrc2(w, h, n)
    tools = [
        ("element", lambda o: gst(f"{live} ! {recorder_desc('vp8', o)}"), src),
        ("hand", lambda o: gst(
            f"{live} ! videoconvert ! {ctx.settings.hand_encoder('vp8', w, h, True)} ! "
            f"webmmux ! filesink location={o}"), src),
        ("ffmpeg, -re testsrc2", lambda o: ffmpeg(
            ["-re", "-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={FPS}",
             "-frames:v", str(n), "-pix_fmt", "yuv420p"] + ff_enc + ["-an", "-f", "webm", o]),
         ref2),
        ("ffmpeg, -re same .yuv", lambda o: ffmpeg(
            ["-re", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}",
             "-framerate", str(FPS), "-i", src] + ff_enc + ["-an", "-f", "webm", o]), src),
    ]
    cmds, outs, per_s, walls, probes = {}, {}, {}, {}, {}
    for i, (name, make, _) in enumerate(tools):
        outs[name] = ctx.path(f"cpu-{i}.webm")
        cmds[name] = make(outs[name])
        ctx.command(f"{name} (live {h}p30)", cmds[name])
        per_s[name], walls[name] = [], []
    # interleaved, so a change of load on the machine hits every tool alike
    for _ in range(ctx.reps):
        for name, cmd in cmds.items():
            r = run(cmd, timeout=secs * 10 + 30)
            p = probe(outs[name])
            recorded = p["frames"] / FPS if p["frames"] else secs
            per_s[name].append(r.cpu / recorded)
            walls[name].append(r.wall)
            probes[name] = p
    rows = []
    for name, _, ref in tools:
        p = probes[name]
        s = ctx.media.psnr(ref, w, h, outs[name]) if p["frames"] == n else None
        rows.append({"name": name, "cpu_per_s": median(per_s[name]),
                     "cpu_range": value_range(per_s[name]), "wall": median(walls[name]),
                     "frames": p["frames"], "kbps": p["kbps"],
                     "psnr_avg": s["avg"] if s else None})
        os.unlink(outs[name])
    source_only = {}
    r = run(gst(f"{live} ! fakesink"))
    source_only["gst"] = r.cpu / secs
    r = run(ffmpeg(["-re", "-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={FPS}",
                    "-frames:v", str(n), "-pix_fmt", "yuv420p", "-f", "null", "-"]))
    source_only["ffmpeg testsrc2"] = r.cpu / secs
    r = run(ffmpeg(["-re", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}",
                    "-framerate", str(FPS), "-i", src, "-f", "null", "-"]))
    source_only["ffmpeg yuv"] = r.cpu / secs
    ctx.media.drop_sources()
    cpus = {row["name"]: row["cpu_per_s"] for row in rows}
    return {"cpu": {
        "seconds": secs, "height": h, "frames": n, "reps": ctx.reps, "bitrate_bps": bps,
        "threads": ctx.settings.get("vp8", w, h, True)["props"].get("threads"),
        "tools": rows, "source_only": source_only,
        "overhead": cpus["element"] / cpus["hand"] - 1,
    }}


def render(key, f):
    rows = [[t["name"], f"{t['cpu_per_s']:.3f}",
             f"{t['cpu_range'][0]:.3f}–{t['cpu_range'][1]:.3f}", f"{t['wall']:.2f}",
             str(t["frames"]), f"{t['kbps']:.0f}",
             f"{t['psnr_avg']:.2f}" if t["psnr_avg"] is not None else "— (frames missing)"]
            for t in f["tools"]]
    base_rows = [[label, f"{f['source_only'][k]:.3f}"] for k, label in SOURCE_ONLY.items()]
    return (
        f"CPU per recorded second, live {f['height']}p30",
        f"A live {f['seconds']} s recording (`is-live=true num-buffers={f['frames']}`), "
        "user+sys CPU of the process (getrusage of the child) divided by the recorded "
        "seconds (frames/30), median and range of "
        f"{f['reps']} runs taken in turn. VP8 at {f['bitrate_bps'] / 1000:.0f} kbit/s, "
        f"threads as the element chose for this live source ({f['threads']}). "
        "ffmpeg's `testsrc2` is a different picture from videotestsrc's smpte (PSNR against "
        "its own source); the `same .yuv` row feeds ffmpeg the element's frames at real "
        "time.\n\n"
        + table(["", "CPU s per s", "range", "wall s", "frames", "kbit/s", "PSNR dB"], rows)
        + "\n\nMaking the pictures alone:\n\n"
        + table(["", "CPU s per s"], base_rows)
        + f"\n\nElement overhead over the hand pipeline: **{f['overhead'] * 100:+.1f} %**.",
    )


def targets(docs):
    f = docs["cpu"]["figures"]
    cpus = {t["name"]: t["cpu_per_s"] for t in f["tools"]}
    return [(
        "CPU overhead vs hand pipeline within 3 %",
        f"{cpus['element']:.3f} vs {cpus['hand']:.3f} CPU s/s ({f['overhead'] * 100:+.1f} %)",
        f["overhead"] <= 0.03,
    )]
