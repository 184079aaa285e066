#!/usr/bin/python3
"""Benchmarks of the mediarecorder element against a hand-written GStreamer pipeline
with the same encoder settings, ffmpeg (libvpx/libaom realtime at the same bitrate) and
a naive `vpXenc ! webmmux` with defaults. Run through bench/run.sh, which builds the
plugin and sets GST_PLUGIN_PATH. Standard library only (the PyGObject helpers run as
separate processes under /usr/bin/python3).

Environment (all optional):
  BENCH_ONLY      comma list of sections: fps,quality,cpu,live1080,mem,density,prerecord,
                  freecaps (default all)
  BENCH_SKIP      comma list of sections to leave out
  BENCH_MERGE     when not every section runs and the report exists: 1 = replace only the
                  sections that ran and keep the others from the earlier report (default);
                  0 = write a report of this run alone
  BENCH_LONG_S    length of the long memory recordings in seconds (default 600)
  BENCH_REPS      repetitions of each timed run; the median is reported (default 3)
  BENCH_RES       resolutions of the fps/quality section (default 480,720,1080; also 240)
  BENCH_CODECS    codecs of the fps/quality section (default vp8,vp9,av1; av1 at 480p only)
  BENCH_FRAMES    frames of each fps/quality encode (default 150)
  BENCH_NAIVE     1 = include the naive defaults pipeline (default 1)
  BENCH_NAIVE_TIMEOUT  seconds before a naive encode is given up (default 150)
  BENCH_AV1_NAIVE 1 = also run av1enc with its defaults (default 0: about 2.4 s a frame
                  at 480p here, some 6 minutes for 150 frames)
  BENCH_CPU_S, BENCH_CPU_RES           live CPU recording (default 5 s at 720)
  BENCH_LIVE1080_S, BENCH_LIVE1080_REPS live 1080p30 recording (default 10 s, 2 runs each)
  BENCH_MEM_SHORT_S, BENCH_MEM_RES     short memory recording (default 10 s at 720)
  BENCH_MEM_HAND_LONG  1 = also record the hand pipeline for BENCH_LONG_S (default 0)
  BENCH_DENSITY_S, BENCH_DENSITY_RES, BENCH_DENSITY_MAX, BENCH_DENSITY_TOOLS
                  parallel live recorders: length (5), resolution (720), largest N
                  tried (32), tools (element,hand)
  BENCH_PRERECORD_S, BENCH_PRERECORD_REPS
                  pre-record: seconds left inactive (30) and runs of each setting (1)
  BENCH_FREECAPS_FRAMES, BENCH_FREECAPS_LIVE_S, BENCH_FREECAPS_RES
                  no format in the caps: non-live frames (300), live seconds (5),
                  resolution (720)
  BENCH_OUT       report path (default BENCHMARKS.md in the repository)
  BENCH_WORK      scratch directory (default a new one under /tmp, removed at the end)
  BENCH_KEEP      1 = keep the scratch directory
"""

import datetime
import json
import os
import platform
import re
import shlex
import shutil
import tempfile
import time

from mrbench.common import (BENCH, FPS, PATTERN, PY, RESOLUTIONS, ROOT, env_int,
                            env_list, log, median)
from mrbench.encoders import Settings, naive_encoder, recorder_desc
from mrbench.machine import plugin_id
from mrbench.media import Media, caps, probe
from mrbench.process import ffmpeg, gst, output, rss_at, rss_slope, run, run_many, show

SECTIONS = ["fps", "quality", "cpu", "live1080", "mem", "density", "prerecord", "freecaps"]
# the number of each section's block in the report ("## 2. ..."), which is also its order
SECTION_NUMBERS = {"fps": 1, "cpu": 2, "quality": 3, "live1080": 4, "mem": 5, "density": 6,
                   "prerecord": 7, "freecaps": 8}


# --------------------------------------------------------------------------- sections


def fmt(value, spec=".1f", missing="—"):
    if value is None:
        return missing
    return format(value, spec)


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    return f"{min(values):.3f}–{max(values):.3f}"


class Bench:
    def __init__(self):
        self.work = os.environ.get("BENCH_WORK") or tempfile.mkdtemp(prefix="mediarecorder-bench-")
        os.makedirs(self.work, exist_ok=True)
        self.media = Media(self.work)
        self.settings = Settings(self.media)
        self.reps = max(1, env_int("BENCH_REPS", 3))
        self.long_s = env_int("BENCH_LONG_S", 600)
        self.out_path = os.environ.get("BENCH_OUT") or os.path.join(ROOT, "BENCHMARKS.md")
        only = env_list("BENCH_ONLY", SECTIONS)
        skip = env_list("BENCH_SKIP", [])
        unknown = [s for s in only + skip if s not in SECTIONS]
        if unknown:
            raise SystemExit(f"unknown sections {unknown}; known: {','.join(SECTIONS)}")
        self.sections = [s for s in SECTIONS if s in only and s not in skip]
        self.md = []  # report sections, in order
        self.console = []
        self.targets = []  # (target, measured, met: bool|None)
        self.notes = []
        self.commands = {}

    def f(self, name):
        return os.path.join(self.work, name)

    def add(self, text):
        """A report section; sections are written in the order of their numbers."""
        self.md.append(text)

    # ------------------------------------------------------------------ machine

    def machine(self):
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        gst_v = output(["gst-launch-1.0", "--version"]).splitlines()
        gst_v = next((l for l in gst_v if l.startswith("GStreamer")), "?")
        ff_v = output(["ffmpeg", "-version"]).splitlines()[:1]
        ff_v = ff_v[0].split(" Copyright")[0] if ff_v else "?"
        vpx = output(["dpkg-query", "-W", "-f", "${Version}", "libvpx7"]).strip() or "?"
        aom = output(["dpkg-query", "-W", "-f", "${Version}", "libaom3"]).strip() or "?"
        commit = output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip() or "?"
        dirty = output(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]).strip()
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        os_name = "?"
        if os.path.exists("/etc/os-release"):
            with open("/etc/os-release") as f:
                for line in f:
                    if line.startswith("PRETTY_NAME="):
                        os_name = line.split("=", 1)[1].strip().strip('"')
        self.info = {
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "nproc": output(["nproc"]).strip(),
            "cpu": cpu,
            "mem": f"{mem_gib:.1f} GiB",
            "os": f"{os_name}, kernel {platform.release()}",
            "gst": gst_v,
            "ffmpeg": ff_v,
            "libvpx": vpx,
            "libaom": aom,
            "commit": commit + (" (with uncommitted changes)" if dirty else ""),
            "nice": str(os.nice(0)),
            "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "plugin": plugin_id(),
        }

    # ------------------------------------------------------------------ fps + quality

    def section_encode(self):
        do_fps = "fps" in self.sections
        do_quality = "quality" in self.sections
        frames = env_int("BENCH_FRAMES", 150)
        res_names = env_list("BENCH_RES", ["480", "720", "1080"])
        codecs = env_list("BENCH_CODECS", ["vp8", "vp9", "av1"])
        naive_on = env_int("BENCH_NAIVE", 1) == 1
        naive_timeout = env_int("BENCH_NAIVE_TIMEOUT", 150)
        reps = self.reps if do_fps else 1
        speed_rows, quality_rows, cpu_rows = [], [], []
        av1_res = "480" if "480" in res_names else res_names[0]
        for rname in res_names:
            for codec in codecs:
                if codec == "av1" and rname != av1_res:
                    continue  # AV1 at 480p only: libaom is slow on 2 cores
                w, h = RESOLUTIONS[rname]
                label = f"{codec.upper()} {h}p"
                log(f"encode {label}: {frames} frames, {reps} run(s) each")
                src = self.media.gst_source(w, h, frames)
                bps = self.settings.bitrate_bps(codec, w, h, False)
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
                        f"{self.settings.hand_encoder(codec, w, h, False)} ! webmmux ! "
                        f"filesink location={o}"),
                    "ffmpeg, file input": lambda o: ffmpeg(
                        ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}",
                         "-framerate", str(FPS), "-i", src]
                        + self.settings.ffmpeg_encoder(codec, w, h, False)
                        + ["-an", "-f", "webm", o]),
                }
                timed, cpu_s, outs, cmds = {}, {}, {}, {}
                for name, make in tools.items():
                    if not do_fps and name == "element, file input":
                        continue
                    out = self.f(f"enc-{codec}-{rname}-{name.split(',')[0]}"
                                 f"{'-file' if 'file' in name else ''}.webm")
                    cmds[name] = make(out)
                    self.commands.setdefault(f"{name} ({codec}, non-live)",
                                             show(cmds[name], self.work))
                    timed[name], cpu_s[name], outs[name] = [], [], out
                # interleaved, so a change of load on the machine hits every tool alike
                for _ in range(reps):
                    for name, cmd in cmds.items():
                        r = run(cmd, timeout=600)
                        timed[name].append(r.wall)
                        cpu_s[name].append(r.cpu)
                naive = None
                if naive_on and not (codec == "av1" and env_int("BENCH_AV1_NAIVE", 0) != 1):
                    out = self.f(f"enc-{codec}-{rname}-naive.webm")
                    cmd = gst(f"{PATTERN} num-buffers={frames} ! {c} ! videoconvert ! "
                              f"{naive_encoder(codec)} ! webmmux ! filesink location={out}")
                    self.commands.setdefault(f"naive ({codec})", show(cmd, self.work))
                    r = run(cmd, timeout=naive_timeout, check=False)
                    naive = r
                    outs["naive defaults"] = out
                source_only = run(gst(f"{PATTERN} num-buffers={frames} ! {c} ! fakesink"))
                if do_fps:
                    row = [label, f"{bps / 1000:.0f}"]
                    cpu_row = [label]
                    for name in ("element", "hand", "element, file input", "ffmpeg, file input"):
                        wall = median(timed[name])
                        row.append(f"{frames / wall:.1f}")
                        cpu_row.append(f"{median(cpu_s[name]):.2f}")
                    cpu_row.append(f"{naive.cpu:.2f}" if naive is not None and naive.ok() else "—")
                    cpu_row.append(f"{source_only.cpu:.2f}")
                    cpu_rows.append(cpu_row)
                    if naive is None:
                        row.append("not run")
                    elif naive.timed_out:
                        row.append(f"< {frames / naive.wall:.1f} (gave up after {naive.wall:.0f} s)")
                    elif naive.ok():
                        row.append(f"{frames / naive.wall:.1f}")
                    else:
                        row.append("failed")
                    row.append(f"{frames / source_only.wall:.0f}")
                    speed_rows.append(row)
                    e_fps = frames / median(timed["element, file input"])
                    f_fps = frames / median(timed["ffmpeg, file input"])
                    self._speed = getattr(self, "_speed", {})
                    self._speed[label] = (e_fps, f_fps, frames / median(timed["element"]))
                if do_quality or do_fps:
                    q = {}
                    for name in ("element", "hand", "ffmpeg, file input", "naive defaults"):
                        if name not in outs:
                            continue
                        if naive is not None and name == "naive defaults" and not naive.ok():
                            continue
                        p = probe(outs[name])
                        s = self.media.psnr(src, w, h, outs[name]) if do_quality else None
                        q[name] = (p, s)
                    self._quality = getattr(self, "_quality", {})
                    self._quality[label] = q
                    if do_quality:
                        row = [label, f"{bps / 1000:.0f}"]
                        for name in ("element", "hand", "ffmpeg, file input", "naive defaults"):
                            if name not in q:
                                row.append("—")
                                continue
                            p, s = q[name]
                            frames_note = "" if p["frames"] == frames else f", {p['frames']} frames"
                            if s:
                                row.append(f"{s['avg']:.2f} / {s['y']:.2f} @ {p['kbps']:.0f}{frames_note}")
                            else:
                                row.append(f"— @ {p['kbps']:.0f}{frames_note}")
                        quality_rows.append(row)
                for out in outs.values():
                    if os.path.exists(out):
                        os.unlink(out)
            self.media.drop_sources()
        order = {c.upper(): i for i, c in enumerate(codecs)}
        speed_rows.sort(key=lambda r: order.get(r[0].split()[0], 99))
        quality_rows.sort(key=lambda r: order.get(r[0].split()[0], 99))
        cpu_rows.sort(key=lambda r: order.get(r[0].split()[0], 99))

        if do_fps:
            self.add(
                "## 1. Encoding speed, non-live\n\n"
                f"Frames per second for {frames} frames of `{PATTERN}` (I420, 30/1), wall time of "
                f"the whole process (start-up included), median of {reps} runs taken in turn. `element` and "
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
                         "naive defaults", "source only"], cpu_rows)
            )
        if do_quality:
            self.add(
                "## 3. Quality at equal bitrate\n\n"
                "PSNR of each recording decoded to raw I420 (`ffmpeg -i out.webm -f rawvideo "
                "-pix_fmt yuv420p`) against the raw source (`ffmpeg -lavfi psnr`), "
                "as `average / Y dB @ achieved kbit/s` (file size over frames/30). Same "
                "non-live encodes as section 1; ffmpeg encoded the same .yuv.\n\n"
                + table(["", "target kbit/s", "element", "hand", "ffmpeg", "naive defaults"],
                        quality_rows)
            )
        # Target: element at least as fast as ffmpeg with PSNR within 0.5 dB.
        if do_fps and do_quality:
            for label, (e_fps, f_fps, e_fps_src) in self._speed.items():
                q = self._quality.get(label, {})
                es = q.get("element", (None, None))[1]
                fs = q.get("ffmpeg, file input", (None, None))[1]
                if not es or not fs:
                    continue
                met = e_fps >= f_fps and es["avg"] >= fs["avg"] - 0.5
                self.targets.append((
                    f"{label}: ≥ ffmpeg speed at equal bitrate, PSNR within 0.5 dB",
                    f"{e_fps:.1f} vs {f_fps:.1f} fps (same .yuv input; {e_fps_src:.1f} fps "
                    f"from videotestsrc); PSNR {es['avg']:.2f} vs {fs['avg']:.2f} dB",
                    met,
                ))

    # ------------------------------------------------------------------ cpu

    def section_cpu(self):
        secs = env_int("BENCH_CPU_S", 5)
        rname = os.environ.get("BENCH_CPU_RES", "720")
        w, h = RESOLUTIONS[rname]
        n = secs * FPS
        c = caps(w, h)
        live = f"{PATTERN} is-live=true num-buffers={n} ! {c}"
        bps = self.settings.bitrate_bps("vp8", w, h, True)
        ff_enc = self.settings.ffmpeg_encoder("vp8", w, h, True)
        log(f"cpu: live {h}p30 for {secs} s, {self.reps} run(s) each")
        src = self.media.gst_source(w, h, n)
        ref2 = self.media.testsrc2(w, h, n)
        tools = [
            ("element", lambda o: gst(f"{live} ! {recorder_desc('vp8', o)}"), src),
            ("hand", lambda o: gst(
                f"{live} ! videoconvert ! {self.settings.hand_encoder('vp8', w, h, True)} ! "
                f"webmmux ! filesink location={o}"), src),
            ("ffmpeg, -re testsrc2", lambda o: ffmpeg(
                ["-re", "-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={FPS}",
                 "-frames:v", str(n), "-pix_fmt", "yuv420p"] + ff_enc + ["-an", "-f", "webm", o]),
             ref2),
            ("ffmpeg, -re same .yuv", lambda o: ffmpeg(
                ["-re", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}",
                 "-framerate", str(FPS), "-i", src] + ff_enc + ["-an", "-f", "webm", o]), src),
        ]
        rows = []
        cpus = {}
        cmds, outs, per_s, walls, probes = {}, {}, {}, {}, {}
        for i, (name, make, _) in enumerate(tools):
            outs[name] = self.f(f"cpu-{i}.webm")
            cmds[name] = make(outs[name])
            self.commands.setdefault(f"{name} (live {h}p30)", show(cmds[name], self.work))
            per_s[name], walls[name] = [], []
        # interleaved, so a change of load on the machine hits every tool alike
        for _ in range(self.reps):
            for name, cmd in cmds.items():
                r = run(cmd, timeout=secs * 10 + 30)
                p = probe(outs[name])
                recorded = p["frames"] / FPS if p["frames"] else secs
                per_s[name].append(r.cpu / recorded)
                walls[name].append(r.wall)
                probes[name] = p
        for name, _, ref in tools:
            p = probes[name]
            s = self.media.psnr(ref, w, h, outs[name]) if p["frames"] == n else None
            cpus[name] = median(per_s[name])
            rows.append([name, f"{cpus[name]:.3f}", spread(per_s[name]),
                         f"{median(walls[name]):.2f}", str(p["frames"]), f"{p['kbps']:.0f}",
                         f"{s['avg']:.2f}" if s else "— (frames missing)"])
            os.unlink(outs[name])
        # what making the pictures costs, to subtract if wanted
        base_rows = []
        r = run(gst(f"{live} ! fakesink"))
        base_rows.append(["gst source only (`videotestsrc is-live=true ! fakesink`)",
                          f"{r.cpu / secs:.3f}"])
        r = run(ffmpeg(["-re", "-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={FPS}",
                        "-frames:v", str(n), "-pix_fmt", "yuv420p", "-f", "null", "-"]))
        base_rows.append(["ffmpeg source only (`-re testsrc2 -f null`)", f"{r.cpu / secs:.3f}"])
        r = run(ffmpeg(["-re", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}",
                        "-framerate", str(FPS), "-i", src, "-f", "null", "-"]))
        base_rows.append(["ffmpeg source only (`-re` .yuv `-f null`)", f"{r.cpu / secs:.3f}"])
        overhead = cpus["element"] / cpus["hand"] - 1
        self.add(
            f"## 2. CPU per recorded second, live {h}p30\n\n"
            f"A live {secs} s recording (`is-live=true num-buffers={n}`), user+sys CPU of the "
            f"process (getrusage of the child) divided by the recorded seconds (frames/30), "
            f"median and range of {self.reps} runs taken in turn. VP8 at {bps / 1000:.0f} kbit/s, threads as "
            "the element chose for this live source "
            f"({self.settings.get('vp8', w, h, True)['props'].get('threads')}). "
            "ffmpeg's `testsrc2` is a different picture from videotestsrc's smpte (PSNR against "
            "its own source); the `same .yuv` row feeds ffmpeg the element's frames at real "
            "time.\n\n"
            + table(["", "CPU s per s", "range", "wall s", "frames", "kbit/s", "PSNR dB"], rows)
            + "\n\nMaking the pictures alone:\n\n"
            + table(["", "CPU s per s"], base_rows)
            + f"\n\nElement overhead over the hand pipeline: **{overhead * 100:+.1f} %**."
        )
        self.targets.append((
            "CPU overhead vs hand pipeline within 3 %",
            f"{cpus['element']:.3f} vs {cpus['hand']:.3f} CPU s/s ({overhead * 100:+.1f} %)",
            overhead <= 0.03,
        ))
        self.media.drop_sources()

    # ------------------------------------------------------------------ live 1080p

    def section_live1080(self):
        secs = env_int("BENCH_LIVE1080_S", 10)
        reps = env_int("BENCH_LIVE1080_REPS", 2)
        w, h = RESOLUTIONS["1080"]
        n = secs * FPS
        live = f"{PATTERN} is-live=true num-buffers={n} ! {caps(w, h)}"
        log(f"live1080: {secs} s, {reps} run(s) each")
        tools = {
            "element": gst(f"{live} ! {recorder_desc('vp8', self.f('live1080-e.webm'))}",
                           quiet=False),
            "hand": gst(f"{live} ! videoconvert ! "
                        f"{self.settings.hand_encoder('vp8', w, h, True)} ! webmmux ! "
                        f"filesink location={self.f('live1080-h.webm')}", quiet=False),
        }
        outs = {"element": self.f("live1080-e.webm"), "hand": self.f("live1080-h.webm")}
        got = {name: [] for name in tools}
        for name, cmd in tools.items():
            self.commands.setdefault(f"{name} (live 1080p30)", show(cmd, self.work))
        for _ in range(reps):
            for name, cmd in tools.items():
                r = run(cmd, timeout=secs * 10 + 30)
                p = probe(outs[name])
                warned = [int(x) for x in re.findall(r"(\d+) frames dropped", r.out)]
                got[name].append((p, r, max(warned) if warned else 0))
                os.unlink(outs[name])
        rows = []
        for name, runs in got.items():
            for i, (p, r, warned) in enumerate(runs, 1):
                rows.append([name, str(i), f"{p['frames']} / {n}",
                             f"{100 * p['frames'] / n:.1f} %", f"{r.wall:.2f}",
                             f"{r.cpu / secs:.2f}", f"{p['kbps']:.0f}",
                             (f"{warned}+" if warned else "none") if name == "element" else "—"])
        self.add(
            f"## 4. Frames kept, live 1080p30 for {secs} s\n\n"
            "Frames counted with `ffprobe -count_frames`. The element drops frames in its "
            "queue when the encoder falls behind (so wall time stays real time); the hand "
            "pipeline has no queue and would fall behind instead (wall time grows). "
            "`drop warnings` is the largest count in the element's \"frames dropped so far\" "
            "warnings (posted at the first drop and every 100th).\n\n"
            + table(["", "run", "frames", "kept", "wall s", "CPU s per s", "kbit/s",
                     "drop warnings"], rows)
        )
        fewest = min(p["frames"] for p, _, _ in got["element"])
        self.targets.append((
            "live 1080p30 keeps ≥ 99 % of frames",
            f"fewest {fewest} of {n} ({100 * fewest / n:.1f} %) in {reps} run(s)",
            fewest >= 0.99 * n,
        ))

    # ------------------------------------------------------------------ memory

    def section_mem(self):
        short = env_int("BENCH_MEM_SHORT_S", 10)
        rname = os.environ.get("BENCH_MEM_RES", "720")
        w, h = RESOLUTIONS[rname]
        c = caps(w, h)
        runs = [
            ("element, file", short, "gst"),
            ("element, file", self.long_s, "gst"),
            ("element, timeslice=1000 + dataavailable listener, no file", short, "listener"),
            ("element, timeslice=1000 + dataavailable listener, no file", self.long_s, "listener"),
            ("hand", short, "hand"),
        ]
        if env_int("BENCH_MEM_HAND_LONG", 0) == 1:
            runs.append(("hand", self.long_s, "hand"))
        rows = []
        peaks = {}
        for name, secs, kind in runs:
            n = secs * FPS
            live = f"{PATTERN} is-live=true num-buffers={n} ! {c}"
            out = self.f("mem.webm")
            if kind == "gst":
                cmd = gst(f"{live} ! {recorder_desc('vp8', out)}")
            elif kind == "listener":
                cmd = [PY, os.path.join(BENCH, "listener.py"),
                       f"{live} ! {recorder_desc('vp8', None, 'timeslice=1000')}"]
            else:
                cmd = gst(f"{live} ! videoconvert ! "
                          f"{self.settings.hand_encoder('vp8', w, h, True)} ! webmmux ! "
                          f"filesink location={out}")
            self.commands.setdefault(f"memory: {name}", show(cmd, self.work))
            log(f"mem: {name}, {secs} s")
            r = run(cmd, timeout=secs * 3 + 60, sample_every=0.5)
            p = probe(out) if kind != "listener" else None
            frames = p["frames"] if p else None
            extra = ""
            if kind == "listener":
                m = re.search(r"chunks=(\d+) bytes=(\d+)", r.out)
                extra = f"{m.group(1)} chunks, {int(m.group(2)) / 1e6:.1f} MB" if m else "?"
            else:
                extra = f"{frames} frames"
            at10 = rss_at(r.samples, min(10.0, secs * 0.9))
            end = r.samples[-1][1] if r.samples else None
            slope = rss_slope(r.samples, 10.0) if secs >= 30 else None
            peaks[(name, secs)] = r.maxrss_kb
            rows.append([name, f"{secs}", f"{r.maxrss_kb / 1024:.1f}",
                         fmt(at10 / 1024 if at10 else None),
                         fmt(end / 1024 if end else None),
                         fmt(slope, "+.2f") if slope is not None else "—",
                         extra])
            if os.path.exists(out):
                os.unlink(out)
        self.add(
            f"## 5. Peak memory, live {h}p30\n\n"
            "Peak RSS of the process (ru_maxrss of the child, as `/usr/bin/time -f %M`), "
            "RSS sampled from /proc every 0.5 s at 10 s and at the end, and the RSS trend "
            "after the first 10 s (least squares, MB per minute; long runs only). The "
            "listener is `bench/listener.py`, a PyGObject script that connects "
            "`dataavailable` and drops the data (its Python interpreter adds to the "
            "baseline, so compare it with its own short run).\n\n"
            + table(["", "seconds", "peak MB", "RSS at 10 s MB", "RSS at end MB",
                     "trend MB/min", "output"], rows)
        )
        for name in ("element, file",
                     "element, timeslice=1000 + dataavailable listener, no file"):
            a, b = peaks.get((name, short)), peaks.get((name, self.long_s))
            if a and b and self.long_s != short:
                growth = b / a - 1
                self.targets.append((
                    f"peak memory {self.long_s} s vs {short} s within 5 % ({name})",
                    f"{b / 1024:.1f} vs {a / 1024:.1f} MB ({growth * 100:+.1f} %)",
                    growth <= 0.05,
                ))

    # ------------------------------------------------------------------ density

    def section_density(self):
        secs = env_int("BENCH_DENSITY_S", 5)
        rname = os.environ.get("BENCH_DENSITY_RES", "720")
        top = env_int("BENCH_DENSITY_MAX", 32)
        tools = env_list("BENCH_DENSITY_TOOLS", ["element", "hand"])
        w, h = RESOLUTIONS[rname]
        n = secs * FPS
        live = f"{PATTERN} is-live=true num-buffers={n} ! {caps(w, h)}"
        src = self.media.gst_source(w, h, n)
        steps = [1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64]
        steps = [s for s in steps if s <= top]
        need_frames = n - 1
        max_wall = secs + 1.5
        rows = []
        best = {}
        for tool in tools:
            best[tool] = 0
            for count in steps:
                attempt = 0
                while True:
                    attempt += 1
                    outs = [self.f(f"dens-{i}.webm") for i in range(count)]
                    if tool == "element":
                        cmds = [gst(f"{live} ! {recorder_desc('vp8', o)}") for o in outs]
                    else:
                        enc = self.settings.hand_encoder("vp8", w, h, True)
                        cmds = [gst(f"{live} ! videoconvert ! {enc} ! webmmux ! "
                                    f"filesink location={o}") for o in outs]
                    self.commands.setdefault(f"density: {tool}", show(cmds[0], self.work))
                    log(f"density: {count} x {tool} (attempt {attempt})")
                    results = run_many(cmds, timeout=secs * 10 + 30)
                    frames = [probe(o)["frames"] for o in outs]
                    walls = [r.wall for r in results]
                    cpu = sum(r.cpu for r in results)
                    kept_up = all(
                        r.ok() and f >= need_frames and r.wall < max_wall
                        for r, f in zip(results, frames)
                    )
                    s = self.media.psnr(src, w, h, outs[0]) if frames[0] == n else None
                    for o in outs:
                        if os.path.exists(o):
                            os.unlink(o)
                    rows.append([tool, str(count), str(attempt), f"{min(frames)}",
                                 f"{max(walls):.2f}", f"{cpu / count / secs:.3f}",
                                 f"{s['avg']:.2f}" if s else f"— ({frames[0]} frames)",
                                 "yes" if kept_up else "**no**"])
                    if kept_up or attempt >= 2:
                        break
                if not kept_up:
                    break
                best[tool] = count
        self.add(
            f"## 6. Live {h}p30 recorders in parallel\n\n"
            f"N recorders started together, each a live {secs} s recording in its own "
            f"gst-launch-1.0 process. One keeps up when its file has ≥ {need_frames} frames "
            f"and its wall time is < {max_wall:.1f} s. A failing N is tried a second time "
            "before stopping (the machine is shared). PSNR of recorder 1 against the source "
            "(libvpx realtime lowers quality under load; not computed when frames are "
            "missing, as the frames no longer line up). The criterion favours the hand "
            "pipeline: without a queue it never drops, it only finishes late (up to 1.5 s "
            "passes), while the element drops frames once 1 s of video waits in its queue.\n\n"
            + table(["", "N", "try", "fewest frames", "longest wall s", "CPU s per s each",
                     "PSNR dB", "all keep up"], rows)
            + "\n\n" + "\n".join(f"Most {tool} recorders that keep up: **{best[tool]}**"
                                  + (f" (largest N tried: {steps[-1]})"
                                     if best[tool] == steps[-1] else "")
                                  for tool in tools)
        )

    # ------------------------------------------------------------------ pre-record

    def section_prerecord(self):
        secs = env_int("BENCH_PRERECORD_S", 30)
        reps = max(1, env_int("BENCH_PRERECORD_REPS", 1))
        window_ms = 5000
        keyint_s = 2.0  # the element's default keyframe interval
        src = ("videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! "
               "video/x-raw,width=1280,height=720,framerate=30/1")
        at = min(10, secs)
        settings = (window_ms, 0)
        got = {pre: [] for pre in settings}
        log(f"prerecord: inactive {secs} s, then 2 s recorded; pre-record={window_ms} and 0, "
            f"{reps} run(s) each")
        # interleaved, so a change of load on the machine hits both alike
        for _ in range(reps):
            for pre in settings:
                out = self.f(f"prerecord-{pre}.webm")
                desc = (f"{src} ! mediarecorder name=r autostart=false pre-record={pre} "
                        f"location={out}")
                cmd = [PY, os.path.join(BENCH, "prerecord.py"), desc, str(secs), out,
                       f"{window_ms / 1000:g}" if pre else "0"]
                self.commands.setdefault(f"pre-record={pre}, inactive {secs} s, then 2 s "
                                         "recorded", show(cmd, self.work))
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
                got[pre].append(self._prerecord_figures(r, data, at))

        def mb(kb):
            return f"{kb / 1024:.1f}"

        def mbytes(b):
            return f"{b / 1e6:.2f}"

        cpu_rows, ring_rows = [], []
        for pre in settings:
            for i, g in enumerate(got[pre], 1):
                name = f"pre-record={pre}"
                cpu_rows.append([name, str(i), f"{g['wait_cpu']:.3f}",
                                 f"{g['proc_cpu']:.2f} / {g['wall']:.1f}",
                                 mb(g["peak_kb"]), mb(g["rss_at_kb"]), mb(g["rss_end_kb"])])
                ring_rows.append([name, str(i), mbytes(g["bytes_max"]), mbytes(g["bytes_at"]),
                                  mbytes(g["bytes_end"]), str(g["bytes_recording"]),
                                  f"{g['duration']:.2f} ({g['frames']})",
                                  f"{g['file_kbps']:.0f}",
                                  "—" if not pre else ("yes" if g["ok"] else "**no**")])
        # pre-record-bytes over the wait, first run of each setting
        marks = sorted(set(list(range(0, secs + 1, 5)) + [secs]))
        series_rows = []
        for pre in settings:
            by_t = got[pre][0]["bytes_by_t"]
            series_rows.append([f"pre-record={pre}"]
                               + [mbytes(by_t.get(t, 0)) for t in marks])
        on, off = got[window_ms], got[0]
        cpu_on = median([g["wait_cpu"] for g in on])
        cpu_off = median([g["wait_cpu"] for g in off])
        peak_on = median([g["peak_kb"] for g in on])
        peak_off = median([g["peak_kb"] for g in off])
        first = on[0]
        rate = first["file_kbps"] * 1000 / 8  # bytes per second of the recorded stream
        held = first["bytes_end"] / rate if rate else None
        bound = (window_ms / 1000 + keyint_s) * rate * 1.2
        worst_max = max(g["bytes_max"] for g in on)
        shortest = min(on, key=lambda g: g["duration"])
        self.add(
            f"## 7. Pre-record while inactive, live 720p30 for {secs} s\n\n"
            f"`{src} ! mediarecorder autostart=false pre-record=…` left inactive for {secs} s, "
            "then `start-recording`, 2 s, `stop-recording`, and the file checked with ffprobe "
            "(`bench/prerecord.py`, a PyGObject script: `pre-record-bytes` can only be read "
            "in-process). `pre-record=0` is the same pipeline without the ring; the encoder "
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
            f"The Python interpreter adds about 25 MB to both. {reps} run(s) of each, "
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
            + f"\n\nWith the ring minus without: **{cpu_on - cpu_off:+.3f} CPU s per s** "
            f"({(cpu_on / cpu_off - 1) * 100 if cpu_off else 0:+.1f} %: "
            f"{cpu_on:.3f} vs {cpu_off:.3f}) and **{(peak_on - peak_off) / 1024:+.1f} MB** of "
            f"peak RSS. After {secs} s inactive it holds {first['bytes_end'] / 1e6:.2f} MB "
            + (f"(about {held:.1f} s at the recorded {first['file_kbps']:.0f} kbit/s) "
               if held else "")
            + f"against {first['bytes_at'] / 1e6:.2f} MB at {at} s: bounded by the window "
            "(5 s plus the rest of a GOP), not by the wait."
        )
        self.targets.append((
            "pre-record=5000: a 2 s recording after a wait lasts ≥ 5 s (ffprobe)",
            f"{shortest['duration']:.2f} s, {shortest['frames']} frames",
            shortest["duration"] >= window_ms / 1000,
        ))
        self.targets.append((
            f"pre-record-bytes over a {secs} s wait ≤ (5 s + 2 s keyframe interval) at the "
            "recorded bitrate, + 20 %",
            f"max {worst_max / 1e6:.2f} MB (at {at} s {first['bytes_at'] / 1e6:.2f}, "
            f"at {secs} s {first['bytes_end'] / 1e6:.2f}); bound {bound / 1e6:.2f} MB",
            worst_max <= bound,
        ))

    @staticmethod
    def _prerecord_figures(r, data, at):
        samples = data["samples"]
        s0, s_end = samples[0], samples[-1]
        near = min(samples, key=lambda s: abs(s["t"] - at))
        p = data["probe"]
        return {
            "wait_cpu": (s_end["cpu"] - s0["cpu"]) / (s_end["t"] - s0["t"]),
            "proc_cpu": r.cpu - data.get("ffprobe_cpu", 0),
            "wall": r.wall,
            "peak_kb": data.get("maxrss_self_kb") or r.maxrss_kb,
            "rss_at_kb": near["rss_kb"],
            "rss_end_kb": s_end["rss_kb"],
            "bytes_max": max(s["bytes"] for s in samples),
            "bytes_at": near["bytes"],
            "bytes_end": s_end["bytes"],
            "bytes_by_t": {round(s["t"]): s["bytes"] for s in samples},
            "bytes_recording": data.get("bytes_while_recording"),
            "duration": p["duration"],
            "frames": p["frames"],
            "file_kbps": p["size"] * 8 / p["duration"] / 1000 if p["duration"] else 0.0,
            "ok": bool(data.get("duration_ok") and data.get("started")
                       and data.get("stop_signal")),
        }

    # ------------------------------------------------------------------ free caps

    def _free_settings(self, desc):
        """The element's encoder settings for a pipeline without format in the caps."""
        res = run([PY, os.path.join(BENCH, "encoder_settings.py"), desc])
        return json.loads(res.out.strip().splitlines()[-1])

    def _negotiated(self, desc):
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

    def section_freecaps(self):
        frames = env_int("BENCH_FREECAPS_FRAMES", 300)
        live_s = env_int("BENCH_FREECAPS_LIVE_S", 5)
        rname = os.environ.get("BENCH_FREECAPS_RES", "720")
        w, h = RESOLUTIONS[rname]
        n_live = live_s * FPS
        free = f"video/x-raw,width={w},height={h}"  # a size, no format, no framerate
        modes = {
            "non-live": (f"{PATTERN} num-buffers={frames} ! {free}", frames, False),
            "live": (f"{PATTERN} is-live=true num-buffers={n_live} ! {free}", n_live, True),
        }
        log(f"freecaps: {h}p without format in the caps, non-live {frames} frames and "
            f"live {live_s} s, {self.reps} run(s) each")
        cmds, outs, descs, expect, hand_enc = {}, {}, {}, {}, {}
        same_settings = []
        for mode, (src, n, live) in modes.items():
            # the hand pipeline gets what the element configures for this very pipeline
            s = self._free_settings(f"{src.replace(f'num-buffers={n}', 'num-buffers=5')} ! "
                                    f"{recorder_desc('vp8', self.f('fc-settings.webm'))}")
            if "factory" not in s:
                raise RuntimeError(f"freecaps: no encoder settings for {mode}: {s}")
            fixed = self.settings.get("vp8", w, h, live)  # the same with format=I420
            same_settings.append(s["props"] == fixed["props"])
            if s["props"] != fixed["props"]:
                log(f"freecaps: {mode} settings differ without format: {s['props']} vs "
                    f"{fixed['props']}")
            props = " ".join(f"{k}={v}" for k, v in s["props"].items())
            hand_enc[mode] = f"{s['factory']} {props}"
            for tool in ("element", "hand"):
                key = (tool, mode)
                outs[key] = self.f(f"fc-{tool}-{mode}.webm")
                if tool == "element":
                    descs[key] = f"{src} ! {recorder_desc('vp8', outs[key])}"
                else:
                    descs[key] = (f"{src} ! videoconvert ! {hand_enc[mode]} ! webmmux ! "
                                  f"filesink location={outs[key]}")
                cmds[key] = gst(descs[key])
                expect[key] = n
                self.commands.setdefault(f"free caps: {tool}, {mode} {h}p",
                                         show(cmds[key], self.work))
        # what each negotiates (a few frames under -v)
        negotiated = {}
        for key, desc in descs.items():
            n = expect[key]
            short = desc.replace(f"num-buffers={n}", "num-buffers=5")
            negotiated[key] = self._negotiated(short.replace(outs[key], self.f("fc-neg.webm")))
            log(f"freecaps: {key[0]} {key[1]} negotiates {negotiated[key]}")
        cpu = {k: [] for k in cmds}
        wall = {k: [] for k in cmds}
        kept = {k: [] for k in cmds}
        # interleaved, so a change of load on the machine hits every pipeline alike
        for _ in range(self.reps):
            for key, cmd in cmds.items():
                r = run(cmd, timeout=120)
                cpu[key].append(r.cpu)
                wall[key].append(r.wall)
                kept[key].append(probe(outs[key])["frames"])
                os.unlink(outs[key])
        rows = []
        for key in cmds:
            tool, mode = key
            neg = negotiated[key]
            fmt_text = neg.get("src", "?")
            at_rec = neg.get("recorder")
            if at_rec and at_rec != fmt_text:
                fmt_text += f" → {at_rec} at mediarecorder"
            inner = neg.get("encoder")
            if inner and inner != neg.get("src"):
                fmt_text += f" → {inner} at vp8enc"
            if neg.get("fps"):
                fmt_text += f" @ {neg['fps']}"
            label = f"{tool}, {mode}"
            rows.append([label, fmt_text, f"{median(cpu[key]):.3f}", spread(cpu[key]),
                         f"{median(wall[key]):.2f}",
                         f"{min(kept[key])}–{max(kept[key])} / {expect[key]}"
                         if min(kept[key]) != max(kept[key])
                         else f"{kept[key][0]} / {expect[key]}"])
        ratio_rows = []
        verdicts = {}
        for mode in modes:
            e, hd = median(cpu[("element", mode)]), median(cpu[("hand", mode)])
            ew, hw = median(wall[("element", mode)]), median(wall[("hand", mode)])
            ratio = e / hd
            verdicts[mode] = (ratio, ratio <= 1.05)
            ratio_rows.append([mode, f"{ratio:.3f} ({(ratio - 1) * 100:+.1f} %)",
                               f"{ew / hw:.3f}",
                               "**within 5 %**" if ratio <= 1.05 else "**over 5 %**"])
        four20 = {"I420", "YV12", "NV12", "NV21"}
        e_formats = {negotiated[("element", m)].get("src") for m in modes}
        self.add(
            f"## 8. No format in the caps, {h}p\n\n"
            "The pipelines users write, with a size but no `format=` (nor framerate) in the "
            f"caps: `videotestsrc ! video/x-raw,width={w},height={h} ! mediarecorder` against "
            "the hand `... ! videoconvert ! vp8enc <the settings the element chose for this "
            "very pipeline, read back> ! webmmux ! filesink`, non-live "
            f"({frames} frames as fast as possible) and live (`is-live=true`, {n_live} frames "
            f"at {FPS} fps). The format is what videotestsrc's src pad negotiated "
            "(`gst-launch-1.0 -v`, 5 frames; the encoder's input format when it differs). "
            "CPU is user+sys of the whole gst-launch-1.0 process (getrusage of the child), "
            f"median and range of {self.reps} runs taken in turn; frames counted with "
            "`ffprobe -count_frames`."
            + ("" if all(same_settings) else
               " The element chose other encoder settings than with `format=I420`.")
            + "\n\n"
            + table(["pipeline", "negotiated format", "CPU s", "range", "wall s",
                     "frames kept"], rows)
            + "\n\nElement / hand (median CPU; target: within 5 %):\n\n"
            + table(["", "CPU ratio", "wall ratio", "verdict"], ratio_rows)
        )
        self.targets.append((
            "`videotestsrc ! mediarecorder` without format negotiates 4:2:0",
            ", ".join(f"{m}: {negotiated[('element', m)].get('src', '?')}" for m in modes),
            bool(e_formats) and e_formats <= four20,
        ))
        for mode, (ratio, met) in verdicts.items():
            self.targets.append((
                f"no format in the caps, {mode}: element CPU within 5 % of hand",
                f"{median(cpu[('element', mode)]):.3f} vs {median(cpu[('hand', mode)]):.3f} "
                f"CPU s ({(ratio - 1) * 100:+.1f} %)",
                met,
            ))

    # ------------------------------------------------------------------ report

    def provenance(self):
        info = self.info
        text = (f"run of {info['date']}, plugin commit {info['commit']} "
                f"(sha256 {info['plugin']}), niceness {info['nice']}")
        if plugin_id() != info["plugin"]:
            text += "; the plugin file changed during that run"
        return text

    def report(self, started):
        info = self.info
        info["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        ran = set(self.sections)
        old = None
        if (ran != set(SECTIONS) and env_int("BENCH_MERGE", 1) == 1
                and os.path.exists(self.out_path)):
            with open(self.out_path) as f:
                old = parse_report(f.read())
            log(f"keeping the sections that did not run from {self.out_path}")

        def number(block):
            m = re.match(r"## (\d+)\.", block)
            return int(m.group(1)) if m else 99

        def section_of(n):
            return next((s for s, k in SECTION_NUMBERS.items() if k == n), None)

        # numbered blocks: this run's, and the earlier report's for sections not run
        blocks = {number(b): b for b in self.md}
        provenance = {}
        for n in blocks:
            if section_of(n):
                provenance[section_of(n)] = self.provenance()
        kept = []
        if old:
            for n, block in old["blocks"].items():
                s = section_of(n)
                if n in blocks or (s and s in ran):
                    continue
                blocks[n] = block
                if s:
                    kept.append(s)
                    provenance[s] = old["provenance"].get(s, "an earlier run")
        # targets, commands, encoder settings: this run's, plus the earlier report's that
        # belong to no section of this run
        targets = [(secs, t, m, "yes" if ok else ("**no**" if ok is False else "?"))
                   for (t, m, ok), secs in zip(self.targets, self.target_sections)]
        commands = [(secs, name, cmd) for name, (secs, cmd) in self.commands_by_name().items()]
        settings = {}
        if old:
            targets = [row for row in old["targets"] if not set(row[0]) & ran] + targets
            new_names = {name for _, name, _ in commands}
            commands = [c for c in old["commands"]
                        if not set(c[0]) & ran and c[1] not in new_names] + commands
            settings.update(old["settings"])
        for (codec, w, h, live), s in self.settings.cache.items():
            props = " ".join(f"{k}={v}" for k, v in s.get("props", {}).items())
            settings[f"{codec} {w}x{h} {'live' if live else 'non-live'}"] = \
                f"`{s.get('factory')} {props}`"

        took = (time.monotonic() - started) / 60
        intro = ("Written by `bench/run.sh` (see its header for the environment variables that "
                 "choose sections and lengths). ")
        if kept:
            intro += ("A run of some sections replaces those and keeps the others from the "
                      "report before it (`earlier sections` below); the machine rows describe "
                      "the latest run. ")
        else:
            intro += "All runs in one go on one machine, with the same input; "
        intro += "The machine was shared, so trust ratios more than absolute figures."
        lines = [
            "# Benchmarks",
            "",
            intro,
            "",
            "<!-- bench-provenance " + json.dumps(provenance, ensure_ascii=False) + " -->",
            "",
            "| machine | |",
            "|---|---|",
            f"| date | {info['date']} (took {took:.1f} min) |",
            f"| cores (nproc) | {info['nproc']} |",
            f"| CPU | {info['cpu']} |",
            f"| memory | {info['mem']} |",
            f"| OS | {info['os']} |",
            f"| GStreamer | {info['gst']} |",
            f"| ffmpeg | {info['ffmpeg']} (libvpx {info['libvpx']}, libaom {info['libaom']}) |",
            f"| plugin | commit {info['commit']}, `cargo build --release`: "
            f"sha256 {info['plugin']} |",
            f"| niceness, load average at start / end | {info['nice']}; {info['load_start']} / "
            f"{info['load_end']} |",
            f"| {'sections run this time' if kept else 'sections'} | {', '.join(self.sections)}"
            + (f"; long recording {self.long_s} s" if "mem" in ran else "") + " |",
        ]
        if kept:
            groups = {}
            for s in SECTIONS:
                if s in kept:
                    groups.setdefault(provenance[s], []).append(s)
            lines.append("| earlier sections | " + "<br>".join(
                f"{', '.join(secs)}: {prov}" for prov, secs in groups.items()) + " |")
        lines.append("")
        now = plugin_id()
        if now != info["plugin"]:
            lines += [f"**The plugin file changed during the run** ({info['plugin']} at the "
                      f"start, {now} at the end): someone rebuilt it, so later sections may "
                      "have measured another build.", ""]
            log("warning: the plugin file changed during the run")
        if targets:
            lines += ["## Targets", "",
                      table(["section", "target", "measured", "met"],
                            [[",".join(secs), t, m, met] for secs, t, m, met in targets]), ""]
        for n in sorted(blocks):
            lines += [blocks[n].rstrip(), ""]
        if old:
            for block in old["other"]:
                lines += [block.rstrip(), ""]
        if settings:
            lines += ["## Encoder settings the element chose (read back from its encoder)", "",
                      "The hand pipelines use exactly these; ffmpeg gets the same numbers "
                      "(`-b:v = -minrate = -maxrate` for CBR, `-deadline realtime`, "
                      "`-cpu-used`, `-lag-in-frames`, `-g`, `-threads`).", "",
                      table(["stream", "encoder"],
                            [[k, v] for k, v in sorted(settings.items(), key=stream_order)]),
                      ""]
        if commands:
            lines += ["## Commands (first of each kind; $WORK is a scratch directory)", ""]
            order = {s: i for i, s in enumerate(SECTIONS)}
            commands.sort(key=lambda c: min((order.get(s, 99) for s in c[0]), default=99))
            for secs, name, cmd in commands:
                lines += [f"- {name} [{','.join(secs)}]:", f"  `{cmd}`"]
            lines.append("")
        text = "\n".join(lines)
        with open(self.out_path, "w") as f:
            f.write(text)
        print(text)
        log(f"wrote {self.out_path}")

    def commands_by_name(self):
        return {name: (self.command_sections.get(name, ()), cmd)
                for name, cmd in self.commands.items()}

    def run_section(self, keys, fn):
        """Runs a section and notes which sections its targets and commands belong to."""
        targets, commands = len(self.targets), set(self.commands)
        fn()
        self.target_sections += [keys] * (len(self.targets) - targets)
        for name in self.commands:
            if name not in commands:
                self.command_sections[name] = keys

    def main(self):
        started = time.monotonic()
        self.machine()
        log(f"sections: {','.join(self.sections)}; scratch {self.work}")
        self.target_sections = []
        self.command_sections = {}
        try:
            if "fps" in self.sections or "quality" in self.sections:
                self.run_section(("fps", "quality"), self.section_encode)
            if "cpu" in self.sections:
                self.run_section(("cpu",), self.section_cpu)
            if "live1080" in self.sections:
                self.run_section(("live1080",), self.section_live1080)
            if "mem" in self.sections:
                self.run_section(("mem",), self.section_mem)
            if "density" in self.sections:
                self.run_section(("density",), self.section_density)
            if "prerecord" in self.sections:
                self.run_section(("prerecord",), self.section_prerecord)
            if "freecaps" in self.sections:
                self.run_section(("freecaps",), self.section_freecaps)
            self.report(started)
        finally:
            if env_int("BENCH_KEEP", 0) != 1 and not os.environ.get("BENCH_WORK"):
                shutil.rmtree(self.work, ignore_errors=True)


# --------------------------------------------------------------------------- merging

# Reports written before targets and commands named their section: which section a
# target or command of such a report belongs to, by its wording.
LEGACY_TARGETS = [
    (r"≥ ffmpeg speed", ("fps", "quality")),
    (r"^CPU overhead", ("cpu",)),
    (r"^live 1080p30", ("live1080",)),
    (r"^peak memory", ("mem",)),
    (r"^pre-record", ("prerecord",)),
]
LEGACY_COMMANDS = [
    (r"non-live\)$|^naive \(", ("fps", "quality")),
    (r"\(live 1080p30\)$", ("live1080",)),
    (r"\(live \d+p30\)$", ("cpu",)),
    (r"^memory:", ("mem",)),
    (r"^density:", ("density",)),
    (r"^pre-record", ("prerecord",)),
]


def legacy_sections(text, patterns):
    return next((secs for pattern, secs in patterns if re.search(pattern, text)), ())


def table_rows(block):
    """The cells of a markdown table's rows, header and separator left out."""
    rows = [line.strip() for line in block.splitlines() if line.strip().startswith("|")]
    out = []
    for row in rows[2:]:
        out.append([c.strip() for c in row.strip("|").split(" | ")])
    header = [c.strip() for c in rows[0].strip("|").split("|")] if rows else []
    return header, out


def parse_report(text):
    """What a partial run keeps of an earlier report: numbered section blocks, targets,
    commands and encoder settings (each with the sections it belongs to), other blocks,
    and where each section's figures came from."""
    old = {"blocks": {}, "targets": [], "commands": [], "settings": {}, "other": [],
           "provenance": {}}
    parts = re.split(r"(?m)^(?=## )", text)
    header = {}
    for line in parts[0].splitlines():
        m = re.match(r"\|\s*(.+?)\s*\|\s*(.*?)\s*\|$", line.strip())
        if m:
            header[m.group(1)] = m.group(2)
    for block in parts[1:]:
        title = block.splitlines()[0]
        m = re.match(r"## (\d+)\.", title)
        if m:
            old["blocks"][int(m.group(1))] = block.rstrip()
        elif title.startswith("## Targets"):
            head, rows = table_rows(block)
            for row in rows:
                if head and head[0] == "section" and len(row) == 4:
                    secs = tuple(s for s in row[0].split(",") if s)
                    old["targets"].append((secs, row[1], row[2], row[3]))
                elif len(row) == 3:
                    old["targets"].append((legacy_sections(row[0], LEGACY_TARGETS),
                                           row[0], row[1], row[2]))
        elif title.startswith("## Encoder settings"):
            for row in table_rows(block)[1]:
                if len(row) == 2:
                    old["settings"][row[0]] = row[1]
        elif title.startswith("## Commands"):
            lines = block.splitlines()
            for i, line in enumerate(lines):
                m = re.match(r"- (.*?)(?: \[([\w,]*)\])?:$", line)
                if m and i + 1 < len(lines):
                    cmd = lines[i + 1].strip()
                    if cmd.startswith("`") and cmd.endswith("`"):
                        name = m.group(1)
                        secs = (tuple(s for s in m.group(2).split(",") if s)
                                if m.group(2) is not None
                                else legacy_sections(name, LEGACY_COMMANDS))
                        old["commands"].append((secs, name, cmd[1:-1]))
        else:
            old["other"].append(block.rstrip())
    m = re.search(r"<!-- bench-provenance (\{.*?\}) -->", parts[0])
    if m:
        try:
            old["provenance"] = json.loads(m.group(1))
        except ValueError:
            pass
    if not old["provenance"]:
        # a report of one run: its header says where every section came from
        date = re.sub(r"\s*\(took .*\)$", "", header.get("date", "?"))
        prov = f"run of {date}, plugin {header.get('plugin', '?')}"
        nice = header.get("niceness, load average at start / end", "")
        if nice:
            prov += f", niceness {nice.split(';')[0]}"
        for n in old["blocks"]:
            for s, k in SECTION_NUMBERS.items():
                if k == n:
                    old["provenance"][s] = prov
    return old


def stream_order(item):
    m = re.match(r"(\w+) (\d+)x(\d+) (\S+)", item[0])
    if not m:
        return (item[0], 0, 0, False)
    return (m.group(1), int(m.group(2)), int(m.group(3)), m.group(4) == "live")


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    Bench().main()
