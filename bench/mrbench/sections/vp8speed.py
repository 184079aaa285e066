"""Section 9: how fast single-threaded VP8 realtime encodes 720p30 at the element's CBR
bitrate, and at what PSNR, as cpu-used and the static threshold change: the curve that
says which setting could fit more live recorders on a machine at equal quality."""

import os

from ..common import FPS, RESOLUTIONS, env_int, env_list, log, median
from ..markdown import table
from ..media import caps, probe
from ..process import gst, run

KEYS = ("vp8speed",)
# a moving test pattern (camera-like: everything moves) and a mostly static picture with
# a small moving object, standing for screen content (a shared screen or slides with a
# pointer moving over them)
PICTURES = {
    "smpte": "videotestsrc pattern=smpte horizontal-speed=4",
    "ball": "videotestsrc pattern=ball",
}
CPU_USED = ["8", "10", "12", "14", "16", "-8", "-12", "-16"]
VARIANTS = {"as element": "", "static-threshold=100": "static-threshold=100 noise-sensitivity=0"}


def measure(ctx, keys):
    frames = env_int("BENCH_VP8SPEED_FRAMES", 150)
    w, h = RESOLUTIONS[os.environ.get("BENCH_VP8SPEED_RES", "720")]
    cpus = env_list("BENCH_VP8SPEED_CPU_USED", CPU_USED)
    pictures = env_list("BENCH_VP8SPEED_PICTURES", list(PICTURES))
    props = dict(ctx.settings.get("vp8", w, h, True)["props"])
    props["threads"] = "1"
    rows = []
    for picture in pictures:
        src = ctx.path(f"vp8speed-{picture}.yuv")
        run(gst(f"{PICTURES[picture]} num-buffers={frames} ! {caps(w, h)} ! "
                f"filesink location={src}"))
        read = (f"filesrc location={src} ! rawvideoparse format=i420 width={w} height={h} "
                f"framerate={FPS}/1")
        # what reading the raw file costs without an encoder, to leave out of the rates
        base = [run(gst(f"{read} ! fakesink")) for _ in range(ctx.reps)]
        base_cpu = median([r.cpu for r in base])
        for variant, extra in VARIANTS.items():
            for cpu_used in cpus:
                p = dict(props, **{"cpu-used": cpu_used})
                enc = "vp8enc " + " ".join(f"{k}={v}" for k, v in p.items())
                if extra:
                    enc += " " + extra
                out = ctx.path("vp8speed.webm")
                cmd = gst(f"{read} ! {enc} ! webmmux ! filesink location={out}")
                ctx.command(f"vp8speed: {picture}, {variant}", cmd)
                log(f"vp8speed: {picture} cpu-used={cpu_used} {variant}")
                rs = [run(cmd, timeout=frames * 2 + 30) for _ in range(ctx.reps)]
                pr = probe(out)
                s = ctx.media.psnr(src, w, h, out)
                os.unlink(out)
                enc_cpu = max(1e-6, median([r.cpu for r in rs]) - base_cpu)
                rows.append({
                    "picture": picture, "variant": variant, "cpu_used": int(cpu_used),
                    "frames": pr["frames"], "wall": median([r.wall for r in rs]),
                    "cpu": median([r.cpu for r in rs]), "base_cpu": base_cpu,
                    "fps": frames / enc_cpu, "ms_per_frame": enc_cpu / frames * 1000,
                    "psnr_avg": s["avg"] if s else None, "kbps": pr["kbps"],
                })
        os.unlink(src)
    return {"vp8speed": {"frames": frames, "height": h, "pictures": pictures,
                         "props": props, "rows": rows}}


def render(key, f):
    rows = [[r["picture"], r["variant"], str(r["cpu_used"]), f"{r['fps']:.0f}",
             f"{r['ms_per_frame']:.2f}",
             f"{r['psnr_avg']:.2f}" if r["psnr_avg"] is not None else "—",
             f"{r['kbps']:.0f}", str(r["frames"])]
            for r in f["rows"]]
    settings = " ".join(f"{k}={v}" for k, v in f["props"].items() if k != "cpu-used")
    return (
        f"VP8 realtime encoder speed and quality at {f['height']}p",
        f"Non-live encodes of {f['frames']} raw frames read from a file (`filesrc ! "
        f"rawvideoparse ! vp8enc ! webmmux ! filesink`), one process at a time, with "
        f"`vp8enc {settings}` and the cpu-used shown; median of the repetitions. Encode "
        "rate = frames per CPU second of the process, less what reading the file to a "
        "fakesink costs. Pictures: `smpte` is videotestsrc's moving test pattern "
        "(`horizontal-speed=4`, everything moves: a camera); `ball` is a small ball "
        "moving over a black picture, standing for screen content (a mostly static "
        "screen with a pointer moving). `static-threshold=100` also sets "
        "`noise-sensitivity=0` (its default). libvpx's VP8 realtime mode treats a "
        "positive cpu-used as adaptive: it picks its speed each frame from how long the "
        "last frames took against a budget of (16 − cpu-used)/16 of the frame time, so "
        "an idle machine encodes more slowly (better) than a loaded one, and 16 means "
        "always the fastest; a negative cpu-used fixes the speed at its magnitude.\n\n"
        + table(["picture", "variant", "cpu-used", "encode fps", "CPU ms per frame",
                 "PSNR dB", "kbit/s", "frames"], rows),
    )


def targets(docs):
    return []
