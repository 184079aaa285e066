"""Section 11: how fast a live recording starts and ends: from asking to play to the first
frames of the file on disk, and from asking the recording to stop to the finalized file,
the element against the hand pipeline."""

import json
import os

from ..common import BENCH, PY, RESOLUTIONS, env_int, env_list, log, median, value_range
from ..encoders import element_pipeline, hand_pipeline
from ..markdown import fmt, table
from ..media import audio_source, probe, video_source
from ..process import run, show

KEYS = ("startup",)
TOOLS = ("element", "hand")
STREAMS = ("video", "video+audio")


def descriptions(ctx, w, h, streams, out):
    """{tool: pipeline description} of one row, live and running until stopped."""
    video = video_source(w, h, True)
    audio = audio_source(True) if streams == "video+audio" else None
    venc = ctx.settings.hand_encoder("vp8", w, h, True)
    aenc = ctx.settings.hand_audio_encoder(True) if audio else None
    return {
        "element": element_pipeline(video, out["element"], audio),
        "hand": hand_pipeline(video, venc, out["hand"], audio, aenc),
    }


def one_run(cmd, out, secs):
    """latency.py's figures of one run, with the frames ffprobe counts in the file. A
    run that failed to stop or finalize keeps its figures (and its error)."""
    r = run(cmd, timeout=secs + 60, check=False)
    lines = [line for line in r.out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"no figures from {show(cmd)}\n{r.out[-2000:]}")
    found = json.loads(lines[-1])
    if found["error"]:
        log(f"startup: {found['error']}")
    found["frames"] = probe(out)["frames"]
    if os.path.exists(out):
        os.unlink(out)
    return found


def ms(values):
    return [v * 1000 if v is not None else None for v in values]


def summary(runs):
    first = ms([r["first_byte_s"] for r in runs])
    media = ms([r["first_media_s"] for r in runs])
    final = ms([r["finalize_s"] for r in runs])
    return {
        "first_byte_ms": median(first), "first_byte_range": value_range(first),
        "first_media_ms": median(media), "first_media_range": value_range(media),
        "finalize_ms": median(final), "finalize_range": value_range(final),
        "stop_message_ms": median(ms([r.get("stop_message_s") for r in runs])),
        # a file without Duration when reported final counts as 0
        "duration": value_range([r["duration"] or 0.0 for r in runs]),
        "frames": value_range([r["frames"] for r in runs]),
    }


def measure(ctx, keys):
    secs = env_int("BENCH_STARTUP_S", 3)
    w, h = RESOLUTIONS[os.environ.get("BENCH_STARTUP_RES", "720")]
    streams_list = env_list("BENCH_STARTUP_STREAMS", list(STREAMS))
    log(f"startup: live {h}p30 stopped after {secs} s, {ctx.reps} run(s) each")
    out = {tool: ctx.path(f"startup-{tool}.webm") for tool in TOOLS}
    cmds = {}
    for streams in streams_list:
        for tool, desc in descriptions(ctx, w, h, streams, out).items():
            cmds[(streams, tool)] = [PY, os.path.join(BENCH, "latency.py"), str(secs),
                                     out[tool], desc]
            ctx.command(f"startup: {tool}, live {h}p30 {streams}", cmds[(streams, tool)])
    got = {key: [] for key in cmds}
    # in turn (element, hand, element, hand ...)
    for rep in range(ctx.reps):
        log(f"startup: run {rep + 1}")
        for (streams, tool), cmd in cmds.items():
            got[(streams, tool)].append(one_run(cmd, out[tool], secs))
    rows = [dict(streams=streams, tool=tool, **summary(got[(streams, tool)]))
            for streams, tool in cmds]
    return {"startup": {"seconds": secs, "height": h, "reps": ctx.reps, "rows": rows}}


def ms_cell(value, spread):
    if value is None:
        return "—"
    return f"{value:.1f} ({spread[0]:.1f}–{spread[1]:.1f})"


def span(pair, spec):
    low, high = pair
    return format(low, spec) if low == high else f"{format(low, spec)}–{format(high, spec)}"


def render(key, f):
    rows = [[f"{r['streams']}, {r['tool']}", ms_cell(r["first_byte_ms"], r["first_byte_range"]),
             ms_cell(r["first_media_ms"], r["first_media_range"]),
             ms_cell(r["finalize_ms"], r["finalize_range"]), fmt(r["stop_message_ms"]),
             span(r["duration"], ".3f"), span(r["frames"], "d")]
            for r in f["rows"]]
    return (
        f"Start and stop, live {f['height']}p30",
        "`bench/latency.py` (PyGObject) runs the pipeline of the overhead section without "
        "`num-buffers` and notes, on time.monotonic(): the call that sets the pipeline to "
        "PLAYING (the pipeline's own PLAYING message came after the element's first "
        "frames, so it is no start line), the first moment the "
        "output file holds a byte and then its first Cluster, that is its first frames "
        "(polled every 2 ms in a thread: the element writes the header as it opens the "
        "file), the moment the stop "
        f"was asked ({f['seconds']} s after PLAYING) and the moment the file is final: the "
        "element's `stop` signal after its `stop-recording` action (the `mediarecorder-stop` "
        "bus message in its own column), the EOS message after an EOS event sent to the "
        "hand pipeline. The duration is ffprobe's reading of the file at that moment, "
        "before the pipeline goes down (0: no Duration, not finalized); frames counted "
        f"with `ffprobe -count_frames` afterwards. Median and range of {f['reps']} runs "
        "taken in turn.\n\n"
        + table(["", "play to first byte ms", "play to first frames ms",
                 "stop to finalized ms",
                 "stop to mediarecorder-stop ms", "duration when final s", "frames"], rows),
    )


def targets(docs):
    rows = docs["startup"]["figures"]["rows"]
    by = {(r["streams"], r["tool"]): r for r in rows}
    element = [r for r in rows if r["tool"] == "element"]
    measured = "; ".join(
        f"{r['streams']}: first frames on disk {fmt(r['first_media_ms'])} vs "
        f"{fmt(by[(r['streams'], 'hand')]['first_media_ms'])} ms, finalized "
        f"{fmt(r['finalize_ms'])} vs {fmt(by[(r['streams'], 'hand')]['finalize_ms'])} ms"
        for r in element)
    return [(
        "file finalized (ffprobe reads a Duration) when `stop` fires",
        measured + " (element vs hand)",
        all(r["duration"][0] > 0 and r["finalize_ms"] is not None for r in element),
    )]
