"""Sections 1 and 3: non-live encodes of the same frames by the element, the hand
pipeline with the element's settings, ffmpeg at the same bitrate and a naive
`vpXenc ! webmmux`; their speed and CPU (fps) and their PSNR at equal bitrate (quality).
Both come from one pass over the encodes."""

import os

from ..common import FPS, PATTERN, RESOLUTIONS, env_int, env_list, log, median
from ..encoders import naive_encoder, recorder_desc
from ..markdown import table
from ..media import caps, probe
from ..process import ffmpeg, gst, run

KEYS = ("fps", "quality")
TIMED = ("element", "hand", "element, file input", "ffmpeg, file input")
COMPARED = ("element", "hand", "ffmpeg, file input", "naive defaults")


def measure(ctx, keys):
    do_fps = "fps" in keys
    do_quality = "quality" in keys
    frames = env_int("BENCH_FRAMES", 150)
    res_names = env_list("BENCH_RES", ["480", "720", "1080"])
    codecs = env_list("BENCH_CODECS", ["vp8", "vp9", "av1"])
    naive_on = env_int("BENCH_NAIVE", 1) == 1
    naive_timeout = env_int("BENCH_NAIVE_TIMEOUT", 150)
    reps = ctx.reps if do_fps else 1
    speed_rows, quality_rows = [], []
    av1_res = "480" if "480" in res_names else res_names[0]
    for rname in res_names:
        for codec in codecs:
            if codec == "av1" and rname != av1_res:
                continue  # AV1 at 480p only: libaom is slow on 2 cores
            w, h = RESOLUTIONS[rname]
            label = f"{codec.upper()} {h}p"
            log(f"encode {label}: {frames} frames, {reps} run(s) each")
            src = ctx.media.gst_source(w, h, frames)
            bps = ctx.settings.bitrate_bps(codec, w, h, False)
            c = caps(w, h)
            yuv_in = (f"filesrc location={src} ! rawvideoparse width={w} height={h} "
                      f"format=i420 framerate={FPS}/1")
            tools = {
                "element": lambda o: gst(
                    f"{PATTERN} num-buffers={frames} ! {c} ! {recorder_desc(codec, o)}"),
                "element, file input": lambda o: gst(
                    f"{yuv_in} ! {recorder_desc(codec, o)}"),
                "hand": lambda o: gst(
                    f"{PATTERN} num-buffers={frames} ! {c} ! videoconvert ! "
                    f"{ctx.settings.hand_encoder(codec, w, h, False)} ! webmmux ! "
                    f"filesink location={o}"),
                "ffmpeg, file input": lambda o: ffmpeg(
                    ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}",
                     "-framerate", str(FPS), "-i", src]
                    + ctx.settings.ffmpeg_encoder(codec, w, h, False)
                    + ["-an", "-f", "webm", o]),
            }
            timed, cpu_s, outs, cmds = {}, {}, {}, {}
            for name, make in tools.items():
                if not do_fps and name == "element, file input":
                    continue
                out = ctx.path(f"enc-{codec}-{rname}-{name.split(',')[0]}"
                               f"{'-file' if 'file' in name else ''}.webm")
                cmds[name] = make(out)
                ctx.command(f"{name} ({codec}, non-live)", cmds[name])
                timed[name], cpu_s[name], outs[name] = [], [], out
            # interleaved, so a change of load on the machine hits every tool alike
            for _ in range(reps):
                for name, cmd in cmds.items():
                    r = run(cmd, timeout=600)
                    timed[name].append(r.wall)
                    cpu_s[name].append(r.cpu)
            naive = None
            if naive_on and not (codec == "av1" and env_int("BENCH_AV1_NAIVE", 0) != 1):
                out = ctx.path(f"enc-{codec}-{rname}-naive.webm")
                cmd = gst(f"{PATTERN} num-buffers={frames} ! {c} ! videoconvert ! "
                          f"{naive_encoder(codec)} ! webmmux ! filesink location={out}")
                ctx.command(f"naive ({codec})", cmd)
                naive = run(cmd, timeout=naive_timeout, check=False)
                outs["naive defaults"] = out
            source_only = run(gst(f"{PATTERN} num-buffers={frames} ! {c} ! fakesink"))
            if do_fps:
                speed_rows.append({
                    "label": label, "codec": codec, "bitrate_bps": bps,
                    "fps": {name: frames / median(timed[name]) for name in TIMED},
                    "cpu_s": {name: median(cpu_s[name]) for name in TIMED},
                    "naive": naive_figures(naive, frames),
                    "source_only": {"fps": frames / source_only.wall,
                                    "cpu_s": source_only.cpu},
                })
            if do_quality:
                compared = {}
                for name in COMPARED:
                    if name not in outs or (name == "naive defaults" and not naive.ok()):
                        continue
                    p = probe(outs[name])
                    s = ctx.media.psnr(src, w, h, outs[name])
                    compared[name] = {"psnr_avg": s["avg"] if s else None,
                                      "psnr_y": s["y"] if s else None,
                                      "kbps": p["kbps"], "frames": p["frames"]}
                quality_rows.append({"label": label, "codec": codec, "bitrate_bps": bps,
                                     "tools": compared})
            for out in outs.values():
                if os.path.exists(out):
                    os.unlink(out)
        ctx.media.drop_sources()
    figures = {}
    if do_fps:
        figures["fps"] = {"frames": frames, "reps": reps, "pattern": PATTERN,
                          "codecs": codecs, "rows": speed_rows}
    if do_quality:
        figures["quality"] = {"frames": frames, "codecs": codecs, "rows": quality_rows}
    return figures


def naive_figures(naive, frames):
    if naive is None:
        return {"status": "not run"}
    if naive.timed_out:
        return {"status": "gave up", "fps": frames / naive.wall, "wall": naive.wall}
    if naive.ok():
        return {"status": "ok", "fps": frames / naive.wall, "cpu_s": naive.cpu}
    return {"status": "failed"}


def by_codec(figures):
    """Rows grouped by codec in the order asked for, resolutions ascending within."""
    order = {c: i for i, c in enumerate(figures["codecs"])}
    return sorted(figures["rows"], key=lambda r: order.get(r["codec"], 99))


def naive_cell(naive):
    if naive["status"] == "gave up":
        return f"< {naive['fps']:.1f} (gave up after {naive['wall']:.0f} s)"
    if naive["status"] == "ok":
        return f"{naive['fps']:.1f}"
    return naive["status"]


def render(key, figures):
    return render_fps(figures) if key == "fps" else render_quality(figures)


def render_fps(f):
    speed_rows, cpu_rows = [], []
    for row in by_codec(f):
        naive = row["naive"]
        speed_rows.append([row["label"], f"{row['bitrate_bps'] / 1000:.0f}"]
                          + [f"{row['fps'][name]:.1f}" for name in TIMED]
                          + [naive_cell(naive), f"{row['source_only']['fps']:.0f}"])
        cpu_rows.append([row["label"]]
                        + [f"{row['cpu_s'][name]:.2f}" for name in TIMED]
                        + [f"{naive['cpu_s']:.2f}" if naive["status"] == "ok" else "—",
                           f"{row['source_only']['cpu_s']:.2f}"])
    return (
        "Encoding speed, non-live",
        f"Frames per second for {f['frames']} frames of `{f['pattern']}` (I420, 30/1), wall "
        "time of the whole process (start-up included), median of "
        f"{f['reps']} runs taken in turn. `element` and "
        "`hand` generate the pictures with videotestsrc; the `file input` columns read "
        "the very same frames from a raw .yuv written beforehand, so the element and "
        "ffmpeg encode identical input. Bitrate is what the element chose "
        "(0.08 bit/pixel·fps VP8, 0.05 VP9/AV1) and is given to the others; threads as "
        "the element chose for a non-live source. `source only` = `videotestsrc ! "
        "fakesink`, the cost of making the pictures.\n\n"
        + table(["", "kbit/s", "element", "hand", "element, file input",
                 "ffmpeg, file input", "naive defaults", "source only"], speed_rows)
        + "\n\nCPU seconds (user+sys, median) for the same encodes: less sensitive than "
        "wall time to other load on the machine, and it counts what a second core "
        "did.\n\n"
        + table(["", "element", "hand", "element, file input", "ffmpeg, file input",
                 "naive defaults", "source only"], cpu_rows),
    )


def quality_cell(tool, frames):
    if tool is None:
        return "—"
    frames_note = "" if tool["frames"] == frames else f", {tool['frames']} frames"
    if tool["psnr_avg"] is None:
        return f"— @ {tool['kbps']:.0f}{frames_note}"
    return f"{tool['psnr_avg']:.2f} / {tool['psnr_y']:.2f} @ {tool['kbps']:.0f}{frames_note}"


def render_quality(f):
    rows = [[row["label"], f"{row['bitrate_bps'] / 1000:.0f}"]
            + [quality_cell(row["tools"].get(name), f["frames"]) for name in COMPARED]
            for row in by_codec(f)]
    return (
        "Quality at equal bitrate",
        "PSNR of each recording decoded to raw I420 (`ffmpeg -i out.webm -f rawvideo "
        "-pix_fmt yuv420p`) against the raw source (`ffmpeg -lavfi psnr`), "
        "as `average / Y dB @ achieved kbit/s` (file size over frames/30). Same "
        "non-live encodes as section 1; ffmpeg encoded the same .yuv.\n\n"
        + table(["", "target kbit/s", "element", "hand", "ffmpeg", "naive defaults"], rows),
    )


def targets(docs):
    """Element at least as fast as ffmpeg with PSNR within 0.5 dB: speed and quality of
    the same encodes, so only when both sections come from one run."""
    fps, quality = docs.get("fps"), docs.get("quality")
    if not fps or not quality or fps["run"] != quality["run"]:
        return []
    psnr = {row["label"]: row["tools"] for row in quality["figures"]["rows"]}
    found = []
    for row in fps["figures"]["rows"]:  # in the order measured
        tools = psnr.get(row["label"], {})
        es = (tools.get("element") or {}).get("psnr_avg")
        fs = (tools.get("ffmpeg, file input") or {}).get("psnr_avg")
        if es is None or fs is None:
            continue
        e_fps, f_fps = row["fps"]["element, file input"], row["fps"]["ffmpeg, file input"]
        found.append((
            f"{row['label']}: ≥ ffmpeg speed at equal bitrate, PSNR within 0.5 dB",
            f"{e_fps:.1f} vs {f_fps:.1f} fps (same .yuv input; {row['fps']['element']:.1f} "
            f"fps from videotestsrc); PSNR {es:.2f} vs {fs:.2f} dB",
            e_fps >= f_fps and es >= fs - 0.5,
        ))
    return found
