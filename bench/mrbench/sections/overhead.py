"""Section 10: what the element costs over the hand pipeline at identical encoder
settings, live and non-live, 720p and 1080p, video alone and with audio: CPU per
recorded second, threads and peak memory of the process."""

import os
import shutil

from ..common import FPS, RESOLUTIONS, env_int, env_list, log, median, value_range
from ..encoders import element_pipeline, hand_pipeline
from ..markdown import fmt, table
from ..media import audio_source, probe, video_source
from ..process import gst, run, threads_in_middle

KEYS = ("overhead",)
TOOLS = ("element", "hand")
STREAMS = ("video", "video+audio")
MAX_OVERHEAD = 0.02
# libvpx's positive cpu-used picks its speed each frame from the time the last frames
# took, so two identical pipelines differed by 10-15 % run to run (section 2 and an
# earlier run of this one); a negative value is the same speed without that adaptation.
FIXED_SPEED = os.environ.get("BENCH_OVERHEAD_SPEED", "fixed") == "fixed"
MAX_EXTRA_MB = 10.0
SAMPLE_S = 0.1
# Frames each side runs under callgrind (about 50x slower) for the instruction counts.
CALLGRIND_FRAMES = 60


def combos(heights):
    """(live, height, streams) in the report's order."""
    return [(live, h, streams) for live in (True, False) for h in heights for streams in STREAMS]


def pipelines(ctx, live, h, streams, n, out):
    """{tool: gst-launch command} of one row."""
    w, height = RESOLUTIONS[h]
    video = video_source(w, height, live, n)
    audio = audio_source(live, n) if streams == "video+audio" else None
    venc = ctx.settings.hand_encoder("vp8", w, height, live)
    if FIXED_SPEED:
        venc = venc.replace("cpu-used=", "cpu-used=-", 1)
    aenc = ctx.settings.hand_audio_encoder(live) if audio else None
    return {
        "element": gst(element_pipeline(video, out["element"], audio,
                                        venc if FIXED_SPEED else None)),
        "hand": gst(hand_pipeline(video, venc, out["hand"], audio, aenc)),
    }


def label(live, h, streams):
    return f"{'live' if live else 'non-live'} {h}p30, {streams}"


def one_run(cmd, out, n, timeout):
    """CPU per recorded second, frames, threads in the middle of the run, peak MB."""
    r = run(cmd, timeout=timeout, sample_every=SAMPLE_S)
    frames = probe(out)["frames"]
    if os.path.exists(out):
        os.unlink(out)
    recorded = (frames or n) / FPS
    return {"cpu_per_s": r.cpu / recorded, "frames": frames,
            "threads": threads_in_middle(r), "peak_mb": r.maxrss_kb / 1024}


def summary(runs):
    cpu = [r["cpu_per_s"] for r in runs]
    return {
        "cpu_per_s": median(cpu), "cpu_range": value_range(cpu),
        "frames": value_range([r["frames"] for r in runs]),
        "threads": max((r["threads"] for r in runs if r["threads"] is not None), default=None),
        "peak_mb": median([r["peak_mb"] for r in runs]),
    }


def instructions(ctx, h, streams):
    """Instructions each side executes for the same non-live frames, counted by
    callgrind: unlike CPU time, the same from run to run, so a 1 % difference shows.
    Blind to what costs cycles without instructions (caches, cores changing)."""
    out = {tool: ctx.path(f"overhead-cg-{tool}.webm") for tool in TOOLS}
    cmds = pipelines(ctx, False, h, streams, CALLGRIND_FRAMES, out)
    counts = {}
    for tool in TOOLS:
        counts_file = ctx.path(f"callgrind-{tool}.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={counts_file}"]
        ctx.command(f"overhead: instructions, {tool}, non-live {h}p30, {streams}",
                    cmd + cmds[tool])
        run(cmd + cmds[tool], timeout=1200)
        with open(counts_file) as f:
            counts[tool] = next(int(line.split()[1]) for line in f
                                if line.startswith("summary:"))
        for path in (counts_file, out[tool]):
            if os.path.exists(path):
                os.unlink(path)
    return {"height": RESOLUTIONS[h][1], "streams": streams, "frames": CALLGRIND_FRAMES,
            "element": counts["element"], "hand": counts["hand"],
            "overhead": counts["element"] / counts["hand"] - 1}


def measure(ctx, keys):
    secs = env_int("BENCH_OVERHEAD_S", 5)
    frames = env_int("BENCH_OVERHEAD_FRAMES", 150)
    heights = env_list("BENCH_OVERHEAD_RES", ["720", "1080"])
    log(f"overhead: live {secs} s, non-live {frames} frames, {','.join(heights)}p, "
        f"{ctx.reps} run(s) each")
    out = {tool: ctx.path(f"overhead-{tool}.webm") for tool in TOOLS}
    plan = []
    for live, h, streams in combos(heights):
        n = secs * FPS if live else frames
        cmds = pipelines(ctx, live, h, streams, n, out)
        for tool in TOOLS:
            ctx.command(f"overhead: {tool}, {label(live, h, streams)}", cmds[tool])
        plan.append(((live, h, streams), n, cmds))
    got = {(key, tool): [] for key, _, _ in plan for tool in TOOLS}
    # in turn (element, hand, element, hand ...), so a change of load hits both alike
    for rep in range(ctx.reps):
        for key, n, cmds in plan:
            log(f"overhead: {label(*key)}, run {rep + 1}")
            timeout = secs * 10 + 30 if key[0] else 120
            for tool in TOOLS:
                got[(key, tool)].append(one_run(cmds[tool], out[tool], n, timeout))
    rows = []
    for (live, h, streams), n, _ in plan:
        w, height = RESOLUTIONS[h]
        by = {tool: summary(got[((live, h, streams), tool)]) for tool in TOOLS}
        rows.append({
            "live": live, "height": height, "streams": streams, "frames_expected": n,
            "encoder_threads": ctx.settings.get("vp8", w, height, live)["props"].get("threads"),
            "element": by["element"], "hand": by["hand"],
            "overhead": by["element"]["cpu_per_s"] / by["hand"]["cpu_per_s"] - 1,
            "extra_mb": by["element"]["peak_mb"] - by["hand"]["peak_mb"],
        })
    audio = {("live" if live else "non-live"): ctx.settings.hand_audio_encoder(live)
             for live in (True, False)}
    counted = []
    if shutil.which("valgrind") and os.environ.get("BENCH_OVERHEAD_CALLGRIND", "1") == "1":
        for streams in STREAMS:
            log(f"overhead: instructions under callgrind, non-live {heights[0]}p, {streams}")
            counted.append(instructions(ctx, heights[0], streams))
    else:
        log("overhead: no instruction counts (valgrind missing or BENCH_OVERHEAD_CALLGRIND=0)")
    return {"overhead": {"seconds": secs, "frames": frames, "reps": ctx.reps,
                         "fixed_speed": FIXED_SPEED, "instructions": counted,
                         "audio_encoder": audio, "rows": rows}}


def cpu_cell(s):
    low, high = s["cpu_range"]
    return f"{s['cpu_per_s']:.3f} ({low:.3f}–{high:.3f})"


def frames_cell(s, expected):
    low, high = s["frames"]
    text = f"{low}" if low == high else f"{low}–{high}"
    return text if low == expected else f"**{text}**"


def render(key, f):
    rows = []
    for r in f["rows"]:
        e, hd, n = r["element"], r["hand"], r["frames_expected"]
        rows.append([
            label(r["live"], r["height"], r["streams"]), str(r["encoder_threads"]),
            cpu_cell(e), cpu_cell(hd), f"{r['overhead'] * 100:+.1f} %",
            f"{frames_cell(e, n)} / {frames_cell(hd, n)} of {n}",
            f"{fmt(e['threads'], 'd')} / {fmt(hd['threads'], 'd')}",
            f"{e['peak_mb']:.1f} / {hd['peak_mb']:.1f}", f"{r['extra_mb']:+.1f}",
        ])
    audio = "; ".join(f"{mode} `{enc}`" for mode, enc in f["audio_encoder"].items())
    speed = (
        "Both sides encode video with the element's settings at a fixed speed "
        "(`cpu-used=-8` for its `cpu-used=8`, given to the element as `video-encoder`): "
        "libvpx's positive cpu-used picks its speed each frame from the time the last "
        "frames took, which made identical pipelines differ by 10-15 % run to run and "
        "hid the element's own cost (section 2 measures the default). "
        if f.get("fixed_speed") else "")
    return (
        "Element overhead against the hand pipeline",
        speed +
        "The element (`... ! mediarecorder`, audio linked `! r.`) against the hand "
        "`videoconvert ! vp8enc <the element's settings> ! webmmux ! filesink` (audio: "
        "`audioconvert ! audioresample ! opusenc <the element's settings> ! m.`; the "
        "element also runs a capsfilter and an `audiorate` there). Sources: "
        "`videotestsrc pattern=smpte horizontal-speed=4` with `video/x-raw,width=W,"
        "height=H,framerate=30/1` (no format, as users write them) and `audiotestsrc "
        "samplesperbuffer=1600 ! audio/x-raw,rate=48000,channels=2`; live "
        f"(`is-live=true`) for {f['seconds']} s, non-live {f['frames']} frames as fast as "
        "possible. CPU is user+sys of the gst-launch-1.0 process (getrusage of the child) "
        "per recorded second (frames/30), median and range of "
        f"{f['reps']} runs taken in turn. Frames counted with `ffprobe -count_frames` "
        "(range over the runs; **bold** where frames were lost). Threads: most entries in "
        "`/proc/<pid>/task` in the middle half of a run, sampled every "
        f"{SAMPLE_S:g} s (most over the runs); peak memory is ru_maxrss (median). "
        f"Audio encoder: {audio}.\n\n"
        + table(["row", "vp8 threads", "element CPU s per s", "hand CPU s per s",
                 "difference", "frames element / hand", "threads element / hand",
                 "peak MB element / hand", "extra MB"], rows)
        + f"\n\nMean of the CPU differences over the rows: {mean_overhead(f) * 100:+.1f} %."
        + instructions_text(f),
    )


def mean_overhead(f):
    return sum(r["overhead"] for r in f["rows"]) / len(f["rows"])


def instructions_text(f):
    counted = f.get("instructions") or []
    if not counted:
        return ""
    rows = [[f"non-live {c['height']}p30, {c['streams']}", f"{c['element'] / 1e6:,.0f}",
             f"{c['hand'] / 1e6:,.0f}", f"{c['overhead'] * 100:+.2f} %"] for c in counted]
    return (
        "\n\nInstructions executed, counted by `valgrind --tool=callgrind` (the same from "
        f"run to run, unlike CPU time) for {counted[0]['frames']} non-live frames, start-up "
        "and shutdown included; blind to what costs cycles without instructions, such as "
        "frames changing threads and caches:\n\n"
        + table(["row", "element, millions", "hand, millions", "difference"], rows))


def targets(docs):
    rows = docs["overhead"]["figures"]["rows"]
    worst = max(rows, key=lambda r: r["overhead"])
    heaviest = max(rows, key=lambda r: r["extra_mb"])
    threads = [(r["element"]["threads"], r["hand"]["threads"]) for r in rows]
    counted = all(e is not None and hd is not None for e, hd in threads)
    spread = (f"element {min(e for e, _ in threads)}–{max(e for e, _ in threads)}, "
              f"hand {min(hd for _, hd in threads)}–{max(hd for _, hd in threads)}"
              if counted else "not sampled")
    f = docs["overhead"]["figures"]
    counted = f.get("instructions") or []
    mean = mean_overhead(f)
    counts = ", ".join(f"{c['streams']} {c['overhead'] * 100:+.2f} %" for c in counted)
    return [
        (f"CPU overhead vs hand pipeline within {MAX_OVERHEAD * 100:.0f} %: instructions "
         "(callgrind) and the mean CPU difference over the rows",
         f"instructions {counts or 'not counted'}; CPU mean {mean * 100:+.1f} % (rows "
         f"{min(r['overhead'] for r in rows) * 100:+.1f} to "
         f"{worst['overhead'] * 100:+.1f} %, run-to-run noise of one pipeline ±10 %)",
         bool(counted) and all(c["overhead"] <= MAX_OVERHEAD for c in counted)
         and mean <= MAX_OVERHEAD),
        (f"peak memory within {MAX_EXTRA_MB:.0f} MB of the hand pipeline on every row",
         f"most {heaviest['extra_mb']:+.1f} MB "
         f"({label(heaviest['live'], heaviest['height'], heaviest['streams'])})",
         all(r["extra_mb"] <= MAX_EXTRA_MB for r in rows)),
        ("threads per process reported", spread, counted),
    ]
