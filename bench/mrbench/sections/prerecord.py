"""Section 7: what the pre-record ring costs while the element waits inactive (CPU,
RSS, the ring's bytes over the wait), and that the recording after the wait starts up to
5 s before the trigger. Measured in-process by bench/prerecord.py."""

import json
import os

from ..common import BENCH, PY, env_int, log, median
from ..markdown import table
from ..process import run, show

KEYS = ("prerecord",)
WINDOW_MS = 5000
KEYINT_S = 2.0  # the element's default keyframe interval
SOURCE = ("videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! "
          "video/x-raw,width=1280,height=720,framerate=30/1")


def measure(ctx, keys):
    secs = env_int("BENCH_PRERECORD_S", 30)
    reps = max(1, env_int("BENCH_PRERECORD_REPS", 1))
    at = min(10, secs)
    settings = (WINDOW_MS, 0)
    got = {pre: [] for pre in settings}
    log(f"prerecord: inactive {secs} s, then 2 s recorded; pre-record={WINDOW_MS} and 0, "
        f"{reps} run(s) each")
    # interleaved, so a change of load on the machine hits both alike
    for _ in range(reps):
        for pre in settings:
            out = ctx.path(f"prerecord-{pre}.webm")
            desc = (f"{SOURCE} ! mediarecorder name=r autostart=false pre-record={pre} "
                    f"location={out}")
            cmd = [PY, os.path.join(BENCH, "prerecord.py"), desc, str(secs), out,
                   f"{WINDOW_MS / 1000:g}" if pre else "0"]
            ctx.command(f"pre-record={pre}, inactive {secs} s, then 2 s recorded", cmd)
            log(f"prerecord: pre-record={pre}")
            r = run(cmd, timeout=secs + 120, check=False)
            lines = [l for l in r.out.splitlines() if l.startswith("{")]
            if r.timed_out or not lines:
                raise RuntimeError(f"prerecord.py failed: {show(cmd)}\n{r.out[-2000:]}")
            data = json.loads(lines[-1])
            if data.get("error"):
                raise RuntimeError(f"prerecord.py: {data['error']}: {show(cmd)}")
            if os.path.exists(out):
                os.unlink(out)
            got[pre].append(run_figures(r, data, at))
    on, off = got[WINDOW_MS], got[0]
    cpu_on = median([g["wait_cpu"] for g in on])
    cpu_off = median([g["wait_cpu"] for g in off])
    first = on[0]
    rate = first["file_kbps"] * 1000 / 8  # bytes per second of the recorded stream
    shortest = min(on, key=lambda g: g["duration"])
    return {"prerecord": {
        "wait_s": secs, "reps": reps, "at_s": at, "window_ms": WINDOW_MS, "source": SOURCE,
        "runs": {str(pre): got[pre] for pre in settings},
        # with the ring minus without
        "ring_cpu_per_s": cpu_on - cpu_off,
        "ring_cpu_ratio": cpu_on / cpu_off - 1 if cpu_off else 0,
        "cpu_on": cpu_on, "cpu_off": cpu_off,
        "ring_peak_mb": median([g["peak_mb"] for g in on]) - median([g["peak_mb"] for g in off]),
        # how many seconds the ring holds at the end of the wait, and what it may hold
        "held_s": first["bytes_end"] / rate if rate else None,
        "bound_bytes": (WINDOW_MS / 1000 + KEYINT_S) * rate * 1.2,
        "worst_max_bytes": max(g["bytes_max"] for g in on),
        "shortest": {"duration": shortest["duration"], "frames": shortest["frames"]},
    }}


def run_figures(r, data, at):
    """The figures of one prerecord.py run: `r` its process, `data` what it printed."""
    samples = data["samples"]
    s0, s_end = samples[0], samples[-1]
    near = min(samples, key=lambda s: abs(s["t"] - at))
    p = data["probe"]
    return {
        "wait_cpu": (s_end["cpu"] - s0["cpu"]) / (s_end["t"] - s0["t"]),
        "proc_cpu": r.cpu - data.get("ffprobe_cpu", 0),
        "wall": r.wall,
        "peak_mb": (data.get("maxrss_self_kb") or r.maxrss_kb) / 1024,
        "rss_at_mb": near["rss_kb"] / 1024,
        "rss_end_mb": s_end["rss_kb"] / 1024,
        "bytes_max": max(s["bytes"] for s in samples),
        "bytes_at": near["bytes"],
        "bytes_end": s_end["bytes"],
        # JSON keys are text: whole seconds since the wait began
        "bytes_by_t": {str(round(s["t"])): s["bytes"] for s in samples},
        "bytes_recording": data.get("bytes_while_recording"),
        "duration": p["duration"],
        "frames": p["frames"],
        "file_kbps": p["size"] * 8 / p["duration"] / 1000 if p["duration"] else 0.0,
        "ok": bool(data.get("duration_ok") and data.get("started")
                   and data.get("stop_signal")),
    }


def mbytes(b):
    return f"{b / 1e6:.2f}"


def render(key, f):
    secs, at = f["wait_s"], f["at_s"]
    cpu_rows, ring_rows, series_rows = [], [], []
    marks = sorted(set(list(range(0, secs + 1, 5)) + [secs]))
    for pre, runs in f["runs"].items():
        name = f"pre-record={pre}"
        for i, g in enumerate(runs, 1):
            cpu_rows.append([name, str(i), f"{g['wait_cpu']:.3f}",
                             f"{g['proc_cpu']:.2f} / {g['wall']:.1f}",
                             f"{g['peak_mb']:.1f}", f"{g['rss_at_mb']:.1f}",
                             f"{g['rss_end_mb']:.1f}"])
            ring_rows.append([name, str(i), mbytes(g["bytes_max"]), mbytes(g["bytes_at"]),
                              mbytes(g["bytes_end"]), str(g["bytes_recording"]),
                              f"{g['duration']:.2f} ({g['frames']})", f"{g['file_kbps']:.0f}",
                              "—" if pre == "0" else ("yes" if g["ok"] else "**no**")])
        # pre-record-bytes over the wait, first run of each setting
        by_t = runs[0]["bytes_by_t"]
        series_rows.append([name] + [mbytes(by_t.get(str(t), 0)) for t in marks])
    first = f["runs"][str(f["window_ms"])][0]
    held = f["held_s"]
    return (
        f"Pre-record while inactive, live 720p30 for {secs} s",
        f"`{f['source']} ! mediarecorder autostart=false pre-record=…` left inactive for "
        f"{secs} s, then `start-recording`, 2 s, `stop-recording`, and the file checked with "
        "ffprobe (`bench/prerecord.py`, a PyGObject script: `pre-record-bytes` can only be "
        "read in-process). `pre-record=0` is the same pipeline without the ring; the encoder "
        "runs while inactive either way, so the difference is what the ring costs. "
        "The caps leave the format open, so videotestsrc makes ABGR64_LE (its first "
        "format) and the element converts it to I420: the CPU figures include that "
        "conversion and are higher than section 2's (an I420 source). "
        "`CPU s per s, waiting` is the kernel's user+sys account of the process "
        "(getrusage, all threads) read at the start and the end of the wait, divided by "
        f"the wait; `process CPU / wall` is the whole run (start-up, the {secs} s wait, "
        "the 2 s recording, finalizing) from wait4 of the child, ffprobe's share taken "
        "out. Peak RSS is the process's own ru_maxrss (the whole run, ffprobe not "
        f"included); RSS sampled every second at {at} s and at the end of the wait. "
        f"The Python interpreter adds about 25 MB to both. {f['reps']} run(s) of each, "
        "taken in turn.\n\n"
        + table(["", "run", "CPU s per s, waiting", "process CPU / wall s", "peak RSS MB",
                 f"RSS at {at} s MB", f"RSS at end ({secs} s) MB"], cpu_rows)
        + f"\n\n`pre-record-bytes` read every second while inactive (max over the wait, "
        f"at {at} s, at the end), and 1 s after `start-recording` (the ring is handed to "
        "the recording). The file holds the ring plus the 2 s recorded: it starts at the "
        "keyframe at or before trigger − 5 s, so 7 s to 9 s with the 2 s keyframe "
        "interval; `file kbit/s` is its size over its duration.\n\n"
        + table(["", "run", "max MB", f"at {at} s MB", f"at end ({secs} s) MB",
                 "bytes while recording", "file s (frames)", "file kbit/s", "file ≥ 5 s"],
                ring_rows)
        + "\n\n`pre-record-bytes` in MB over the wait (first run):\n\n"
        + table([""] + [f"{t} s" for t in marks], series_rows)
        + f"\n\nWith the ring minus without: **{f['ring_cpu_per_s']:+.3f} CPU s per s** "
        f"({f['ring_cpu_ratio'] * 100:+.1f} %: {f['cpu_on']:.3f} vs {f['cpu_off']:.3f}) "
        f"and **{f['ring_peak_mb']:+.1f} MB** of peak RSS. After {secs} s inactive it "
        f"holds {first['bytes_end'] / 1e6:.2f} MB "
        + (f"(about {held:.1f} s at the recorded {first['file_kbps']:.0f} kbit/s) "
           if held else "")
        + f"against {first['bytes_at'] / 1e6:.2f} MB at {at} s: bounded by the window "
        "(5 s plus the rest of a GOP), not by the wait.",
    )


def targets(docs):
    f = docs["prerecord"]["figures"]
    secs, at = f["wait_s"], f["at_s"]
    first = f["runs"][str(f["window_ms"])][0]
    shortest = f["shortest"]
    return [
        (
            "pre-record=5000: a 2 s recording after a wait lasts ≥ 5 s (ffprobe)",
            f"{shortest['duration']:.2f} s, {shortest['frames']} frames",
            shortest["duration"] >= f["window_ms"] / 1000,
        ),
        (
            f"pre-record-bytes over a {secs} s wait ≤ (5 s + 2 s keyframe interval) at the "
            "recorded bitrate, + 20 %",
            f"max {f['worst_max_bytes'] / 1e6:.2f} MB (at {at} s {first['bytes_at'] / 1e6:.2f}, "
            f"at {secs} s {first['bytes_end'] / 1e6:.2f}); bound {f['bound_bytes'] / 1e6:.2f} MB",
            f["worst_max_bytes"] <= f["bound_bytes"],
        ),
    ]
