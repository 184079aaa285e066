"""Section 12: cameras kept as they are. N cameras (1080p30 H.264 + AAC played
live-paced from a file) recorded into fragmented MP4 without re-encoding, side by side
in one run: the hand pipeline, the element, the element with the features an NVR turns
on (10 s files, retention, the crash journal), and ffmpeg's `-c copy`; N separate
processes, and one process holding N pipelines (bench/cameras_inproc.py)."""

import glob
import json
import os
import re
import shutil
import shlex
import statistics
import subprocess
import threading
import time

from ..common import BENCH, PY, env_int, env_list, log, median
from ..markdown import fmt, table
from ..process import output

KEYS = ("cameras",)
STEPS = ["1", "16", "64", "200"]
TOOLS = ["hand", "element", "element-nvr", "ffmpeg", "source"]
MODES = ["processes", "process"]
# ffmpeg has no form that holds N independent recordings in one process
IN_ONE_PROCESS = ("hand", "hand-queued", "element", "element-nvr", "element-base",
                  "element-nvr-base", "element-nvr-one-folder", "source")
# `element-nvr-one-folder`: the NVR's files of all cameras in one folder, where each
# camera has a folder of its own for `element-nvr`, as NVRs lay out their recordings
# `source`: the camera played as for the others into fakesinks, no file: what any
# GStreamer recorder fed this way pays before it records anything
SAMPLE_S = 0.5
# A camera keeps real time when its pipeline reaches EOS within this of the media's length.
LATE_S = 1.0
# CPU is counted in a window that leaves out a process's start-up and its end
# (finalizing): from START_SKIP_S after it began to play to END_SKIP_S before it exited.
START_SKIP_S = 8.0
END_SKIP_S = 2.0
TICK = os.sysconf("SC_CLK_TCK")
CPUACCT = "/sys/fs/cgroup/cpuacct"
INPROC = os.path.join(BENCH, "cameras_inproc.py")
SOURCE = ("videotestsrc pattern=smpte horizontal-speed=4 num-buffers={frames} ! "
          "video/x-raw,width=1920,height=1080,framerate=30/1 ! "
          "x264enc bitrate={kbps} key-int-max=60 tune=zerolatency speed-preset=ultrafast ! "
          "h264parse ! mp4mux name=m ! filesink location={path} "
          "audiotestsrc num-buffers={frames} samplesperbuffer=1600 ! "
          "audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! m.")


def make_source(secs, kbps):
    """The camera: a 1080p30 H.264 + AAC MP4 file, made once and kept between runs
    (BENCH_CAMERAS_CACHE, default /tmp/mediarecorder-bench-cache)."""
    cache = os.environ.get("BENCH_CAMERAS_CACHE") or "/tmp/mediarecorder-bench-cache"
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"camera-1080p30-{kbps}k-{secs}s.mp4")
    if not os.path.exists(path):
        log(f"cameras: making the camera file {path}")
        tmp = path + ".part"
        desc = SOURCE.format(frames=secs * 30, kbps=kbps, path=tmp)
        subprocess.run(["gst-launch-1.0", "-q"] + shlex.split(desc), check=True)
        os.rename(tmp, path)
    return path, desc_of_source(secs, kbps)


def desc_of_source(secs, kbps):
    return SOURCE.format(frames=secs * 30, kbps=kbps, path="camera.mp4")


def packets(path):
    """(video packets, audio packets) of a file, read without decoding."""
    data = output(["ffprobe", "-v", "error", "-count_packets", "-show_entries",
                   "stream=codec_type,nb_read_packets", "-of", "json", path])
    try:
        streams = json.loads(data)["streams"]
    except (ValueError, KeyError):
        return 0, 0
    count = {s.get("codec_type"): int(s.get("nb_read_packets", 0)) for s in streams}
    return count.get("video", 0), count.get("audio", 0)


def live_source(src):
    """The file played at its own pace, both tracks, as a camera would send them."""
    return (f"filesrc location={src} ! qtdemux name=d "
            "d.video_0 ! queue ! identity sync=true ! {video} "
            "d.audio_0 ! queue ! identity sync=true ! {audio}")


def description(tool, src, out):
    """One camera's gst-launch description; `out` without extension."""
    tool = tool.removesuffix("-base")
    play = live_source(src)
    if tool == "source":
        return play.format(video="fakesink", audio="fakesink")
    if tool in ("hand", "hand-queued"):
        # hand-queued: a queue (a thread) before the muxer on each track, as the
        # element's appsrc puts one there: what that hand-over costs
        queue = "queue ! " if tool == "hand-queued" else ""
        return play.format(
            video=f"h264parse ! {queue}mp4mux fragment-duration=2000 name=m ! "
                  f"filesink location={out}.mp4",
            audio=f"aacparse ! {queue}m.")
    name = os.path.basename(out)
    recorder = f"mediarecorder name={name} mime-type=video/mp4"
    if tool == "element":
        recorder += f" location={out}.mp4"
    else:
        # the NVR features: 10 s files named by a pattern, retention, the journal
        # (always on for regular files)
        pattern = f"{out}-%05d.mp4" if tool.endswith("one-folder") else f"{out}/%05d.mp4"
        recorder += f" location={pattern} max-file-duration=10000 max-files=1000"
    return play.format(video=f"{name}.", audio=f"{name}.") + " " + recorder


def commands(tool, mode, src, outs, result):
    if tool == "ffmpeg":
        # -benchmark says how long it played ("rtime="), at the info level
        return [["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
                 "-benchmark", "-y", "-re", "-i", src, "-c", "copy", "-movflags",
                 "+frag_keyframe+empty_moov", f"{o}.mp4"] for o in outs]
    descs = [description(tool, src, o) for o in outs]
    if mode == "processes":
        # not -q: gst-launch says how long it played ("Execution ended after")
        return [["gst-launch-1.0"] + shlex.split(d) for d in descs]
    return [[PY, INPROC, result] + descs]


def read_stat(pid):
    """(CPU seconds, threads, RSS kB) of a live process, from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # after the name: state is field 3, utime 14, stime 15, threads 20, rss 24
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    return cpu, int(fields[17]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024


def environment(tool):
    """A `-base` tool runs the plugin build in BENCH_CAMERAS_BASE (another commit's
    `target/release`, to compare before and after in one run), with a registry of its
    own so that neither build's registry is rescanned at every start."""
    if not tool.endswith("-base"):
        return None
    base = os.environ["BENCH_CAMERAS_BASE"]
    return dict(os.environ, GST_PLUGIN_PATH=base,
                GST_REGISTRY=os.path.join(base, "registry.bin"))


class CpuGroup:
    """The processes of one measurement in a cgroup of their own, where the kernel
    counts their CPU time in nanoseconds, threads and children that ended included:
    /proc/PID/stat counts in 10 ms ticks, too coarse for a camera that costs 1 %
    of a core (a 10 s window of one such process is 10 ticks). None of it where the
    cpuacct controller cannot be written (not root, cgroup v2 only)."""

    def __init__(self, name):
        self.path = os.path.join(CPUACCT, f"mrbench-{os.getpid()}-{name}")
        self.samples = []  # (seconds since the run began, CPU s)
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError:
            self.path = None

    def add(self, pid):
        if self.path:
            try:
                with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
            except OSError:
                self.path = None

    def usage(self):
        try:
            with open(os.path.join(self.path, "cpuacct.usage")) as f:
                return int(f.read()) / 1e9
        except (OSError, TypeError, ValueError):
            return None

    def rate(self, begin, end):
        """CPU seconds per second between two times of the run."""
        inside = [s for s in self.samples if begin <= s[0] <= end]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] < 2.0:
            return None
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def remove(self):
        if self.path:
            try:
                os.rmdir(self.path)
            except OSError:
                pass


class Proc:
    def __init__(self, cmd, workdir, env=None):
        self.cmd = cmd
        self.log = open(os.path.join(workdir, f"log-{id(self)}.txt"), "w+b")
        self.start = time.monotonic()
        self.popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                      stderr=subprocess.STDOUT, start_new_session=True,
                                      env=env)
        self.samples = []  # (seconds since start, cpu s, threads, rss kB)
        self.wall = None
        self.cpu = None
        self.rc = None

    def wait(self, timeout):
        timer = threading.Timer(timeout, lambda: self.popen.kill())
        timer.start()
        _, status, usage = os.wait4(self.popen.pid, 0)
        timer.cancel()
        self.wall = time.monotonic() - self.start
        self.rc = os.waitstatus_to_exitcode(status)
        self.popen.returncode = self.rc
        self.cpu = usage.ru_utime + usage.ru_stime

    def text(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def window_rate(self, played):
        """CPU seconds per second from START_SKIP_S after playing began to END_SKIP_S
        before the exit; None when the run was too short for such a window."""
        begin = self.wall - END_SKIP_S - (played - START_SKIP_S)
        end = self.wall - END_SKIP_S
        first = [s for s in self.samples if s[0] >= begin]
        last = [s for s in self.samples if s[0] <= end]
        if not first or not last or last[-1][0] - first[0][0] < 2.0:
            return None
        return (last[-1][1] - first[0][1]) / (last[-1][0] - first[0][0])

    def middle(self, index):
        """The median of a sampled figure in the middle half of the run."""
        values = [s[index] for s in self.samples if self.wall / 4 <= s[0] <= self.wall * 3 / 4]
        return median(values or [s[index] for s in self.samples])


def run_all(cmds, workdir, timeout, env=None):
    group = CpuGroup(os.path.basename(workdir))
    began = time.monotonic()
    procs = []
    for cmd in cmds:
        procs.append(Proc(cmd, workdir, env))
        group.add(procs[-1].popen.pid)
    done = threading.Event()

    def sample():
        while not done.is_set():
            usage = group.usage()
            now = time.monotonic() - began
            if usage is not None:
                group.samples.append((now, usage))
            for p in procs:
                if p.wall is None:
                    stat = read_stat(p.popen.pid)
                    if stat:
                        p.samples.append((time.monotonic() - p.start,) + stat)
            done.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    waiters = [threading.Thread(target=p.wait, args=(timeout,)) for p in procs]
    for w in waiters:
        w.start()
    for w in waiters:
        w.join()
    done.set()
    sampler.join()
    group.remove()
    return procs, group, began


def group_rate(procs, group, began, played):
    """The group's CPU seconds per second in the window every process was in its
    steady state (see `Proc.window_rate`)."""
    windows = [(p.start - began + p.wall - END_SKIP_S - ((s or 0) - START_SKIP_S),
                p.start - began + p.wall - END_SKIP_S)
               for p, s in zip(procs, played) if p.wall is not None]
    if not windows:
        return None
    return group.rate(max(w[0] for w in windows), min(w[1] for w in windows))


PLAYED = re.compile(r"Execution ended after (\d+):(\d+):(\d+(?:\.\d+)?)")
FFMPEG_PLAYED = re.compile(r"bench: .*rtime=(\d+(?:\.\d+)?)s")


def played_seconds(proc):
    """From PLAYING to EOS (gst-launch), or ffmpeg's own time from its first packet
    to its last."""
    text = proc.text()
    m = FFMPEG_PLAYED.search(text)
    if m:
        return float(m.group(1))
    m = PLAYED.search(text)
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def settle():
    """Writes out what the run before left in memory and lets the machine calm down: at
    N = 200 the files a run leaves (3 GB) were still being written out during the next
    tool's run, which then found its syncs and its last seconds slower."""
    os.sync()
    time.sleep(3)


def measure_one(ctx, tool, mode, n, src, secs, expect, ran=None):
    """One tool's N cameras. `ran`: a barrier the tools recording together wait at
    once their cameras ended, so that none counts its files' packets (ffprobe) while
    another is still measured."""
    outdir = ctx.path(f"cameras-{tool}-{mode}-{n}")
    os.makedirs(outdir, exist_ok=True)
    outs = [os.path.join(outdir, f"cam{i}") for i in range(n)]
    for o in outs:
        # a folder of its own for each camera's files (see `description`)
        os.makedirs(o, exist_ok=True)
    result = os.path.join(outdir, "inproc.json")
    cmds = commands(tool, mode, src, outs, result)
    if ran is None:
        settle()
    ctx.command(f"cameras: {tool}, {mode}", cmds[0][:4] if mode == "process" else cmds[0])
    log(f"cameras: {n} x {tool}, {mode}")
    procs, group, began = run_all(cmds, outdir, timeout=secs * 4 + 120, env=environment(tool))
    if ran is not None:
        ran.wait()
    failed = [p for p in procs if p.rc != 0]
    if mode == "process":
        p = procs[0]
        try:
            with open(result) as f:
                inproc = json.load(f)
        except (OSError, ValueError):
            inproc = {"baseline": {"threads": 0, "rss_kb": 0}, "pipelines": []}
        played = [r["seconds"] for r in inproc["pipelines"]]
        errors = [r["error"] for r in inproc["pipelines"] if r["error"]]
        longest = max((s for s in played if s), default=secs)
        rate = group_rate(procs, group, began, [longest])
        if rate is None:
            rate = p.window_rate(longest)
        base = inproc["baseline"]
        threads = (p.middle(2) - base["threads"]) / n if p.samples else None
        rss = (p.middle(3) - base["rss_kb"]) / n / 1024 if p.samples else None
        cpu_total = p.cpu / (n * secs)
        cpu_window = rate / n if rate is not None else None
        process_threads = p.middle(2) if p.samples else None
    else:
        played = [played_seconds(p) for p in procs]
        errors = []
        rate = group_rate(procs, group, began, [s or secs for s in played])
        if rate is not None:
            cpu_window = rate / n
        else:
            rates = [p.window_rate(s or secs) for p, s in zip(procs, played)]
            rates = [r for r in rates if r is not None]
            cpu_window = statistics.mean(rates) if rates else None
        cpu_total = sum(p.cpu for p in procs) / (n * secs)
        threads = median([p.middle(2) for p in procs if p.samples])
        rss = median([p.middle(3) for p in procs if p.samples])
        rss = rss / 1024 if rss is not None else None
        process_threads = threads
    kept = []
    for o in outs:
        files = sorted(glob.glob(f"{o}.mp4") + glob.glob(f"{o}-*.mp4")
                       + glob.glob(f"{o}/*.mp4"))
        counts = [packets(f) for f in files]
        kept.append((sum(c[0] for c in counts), sum(c[1] for c in counts), len(files)))
    for o in outs:
        for f in glob.glob(f"{o}*"):
            shutil.rmtree(f) if os.path.isdir(f) else os.unlink(f)
    late = [s for s in played if s is None or s > secs + LATE_S]
    row = {
        "tool": tool, "mode": mode, "n": n,
        "cpu_per_s": cpu_window, "cpu_total_per_s": cpu_total,
        "longest_played": max((s for s in played if s is not None), default=None),
        "real_time": not late and not failed and not errors and len(played) == n,
        # how many were late, and the longest few: one straggler or all of them
        "late": len(late),
        "longest_few": sorted((s for s in played if s is not None), reverse=True)[:5],
        "fewest_video": min(k[0] for k in kept), "fewest_audio": min(k[1] for k in kept),
        # At least: a file whose audio starts after its first picture is led in by
        # a silent AAC packet (see session.rs `late_audio_lead_in`).
        "every_frame": sum(1 for k in kept if k[0] >= expect[0] and k[1] >= expect[1]),
        "most_audio": max(k[1] for k in kept),
        "files_per_camera": median([k[2] for k in kept]),
        "threads": threads, "process_threads": process_threads, "rss_mb": rss,
        "failed": len(failed), "errors": errors[:3],
    }
    if failed:
        row["failure"] = failed[0].text()[-600:]
    short = [i for i, k in enumerate(kept) if k[0] < expect[0] or k[1] < expect[1]]
    if short:
        # What the cameras short of frames said (warnings, errors): a recorder that
        # drops frames says so on the bus, which gst-launch-1.0 prints.
        row["short"] = [
            {"camera": i, "video": kept[i][0], "audio": kept[i][1], "files": kept[i][2],
             "said": said_in(procs[i].text() if mode == "processes" else procs[0].text())}
            for i in short[:5]]
    log(f"cameras: {n} x {tool}, {mode}: {fmt(cpu_window, '.4f')} CPU s/s each, "
        f"every frame in {row['every_frame']} of {n}, real time: {row['real_time']} "
        f"({len(late)} late; longest {', '.join(f'{x:.1f}' for x in row['longest_few'])} s)")
    for camera in row.get("short", []):
        log(f"cameras: short of frames: {camera}")
    return row


def said_in(text):
    """The first warnings and errors in a tool's output."""
    lines = [line for line in text.splitlines()
             if "WARNING" in line or "ERROR" in line or "cannot keep up" in line]
    return lines[:3]


def measure_together(ctx, tools, mode, n, src, secs, expect):
    """The tools record at the same time, N cameras on the machine in all, shared
    out among them (N / tools each): a slow stretch of a shared machine then hits every
    tool alike, where one after the other the same tool's CPU per camera varied up to
    2x from one minute to the next. Each tool's processes have a cgroup of their own."""
    each = max(1, n // len(tools))
    ran = threading.Barrier(len(tools))
    settle()
    rows = {}

    def one(tool):
        rows[tool] = measure_one(ctx, tool, mode, each, src, secs, expect, ran)

    threads = [threading.Thread(target=one, args=(t,)) for t in tools]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for tool, row in rows.items():
        row["cameras"] = each
        row["n"] = n
        row["together"] = True
    return rows


def cameras_of(r):
    """How many cameras a row's tool recorded (recording together: its share of N)."""
    return r.get("cameras", r["n"])


def measure(ctx, keys):
    secs = env_int("BENCH_CAMERAS_S", 30)
    kbps = env_int("BENCH_CAMERAS_KBPS", 4000)
    steps = [int(s) for s in env_list("BENCH_CAMERAS_N", STEPS)]
    default = TOOLS + (["element-base"] if os.environ.get("BENCH_CAMERAS_BASE") else [])
    tools = env_list("BENCH_CAMERAS_TOOLS", default)
    modes = env_list("BENCH_CAMERAS_MODES", MODES)
    src, made_by = make_source(secs, kbps)
    expect = packets(src)
    log(f"cameras: {secs} s, N {steps}, {tools}, {modes}; source {expect[0]} video and "
        f"{expect[1]} audio packets")
    rows = []
    # all sides of one N one after the other, so a change of load hits them alike
    # Repetitions go round the tools (A B C A B C), so a slow minute of a shared
    # machine hits every side; a row is the repetition of median CPU.
    reps = max(1, env_int("BENCH_CAMERAS_REPS", 1))
    # N of these: the tools record together (see `measure_together`). 200 cameras is
    # also a target of the element alone (200 of it in 200 processes and in one).
    together_at = {int(s) for s in env_list("BENCH_CAMERAS_TOGETHER", ["16", "64"])}
    for n in steps:
        together = n in together_at
        for mode in modes:
            runs = {}
            for _ in range(reps):
                in_mode = [t for t in tools if mode != "process" or t in IN_ONE_PROCESS]
                if together:
                    for tool, row in measure_together(ctx, in_mode, mode, n, src, secs,
                                                      expect).items():
                        runs.setdefault(tool, []).append(row)
                    continue
                for tool in in_mode:
                    runs.setdefault(tool, []).append(
                        measure_one(ctx, tool, mode, n, src, secs, expect))
            for tool, tried in runs.items():
                cpus = [r["cpu_per_s"] for r in tried if r["cpu_per_s"] is not None]
                mid = statistics.median_low(cpus) if cpus else None
                row = next((r for r in tried if r["cpu_per_s"] == mid), tried[0])
                row["cpu_reps"] = cpus
                rows.append(row)
    return {"cameras": {"seconds": secs, "kbps": kbps, "source": made_by,
                        "expect": list(expect), "rows": rows,
                        "base": os.environ.get("BENCH_CAMERAS_BASE"),
                        "base_name": os.environ.get("BENCH_CAMERAS_BASE_NAME"),
                        "window": [START_SKIP_S, END_SKIP_S]}}


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "—"


def late_of(r):
    """How many of a row's cameras were late, where some were and it is known."""
    return f"{r['late']} late, longest " if r.get("late") else ""


def render(key, f):
    rows = []
    by = {(r["tool"], r["mode"], r["n"]): r for r in f["rows"]}
    for r in f["rows"]:
        hand = by.get(("hand", r["mode"], r["n"]))
        count = cameras_of(r)
        frames = ("— (no file)" if r["tool"] == "source"
                  else f"{r['every_frame']} of {count}" if r["every_frame"] == count
                  else f"**{r['every_frame']} of {count}** (fewest {r['fewest_video']} "
                       f"video, {r['fewest_audio']} audio)")
        rows.append([
            r["tool"], "one process" if r["mode"] == "process" else "N processes",
            str(r["n"]) + (f" ({count} of them)" if count != r["n"] else ""),
            fmt(r["cpu_per_s"], ".4f") + (
                f" ({min(r['cpu_reps']):.4f}-{max(r['cpu_reps']):.4f})"
                if len(r.get("cpu_reps") or []) > 1 else ""),
            ratio(r["cpu_per_s"], hand and hand["cpu_per_s"]),
            fmt(r["cpu_total_per_s"], ".4f"), frames,
            ("yes" if r["real_time"] else "**no**") + f" ({late_of(r)}{fmt(r['longest_played'], '.1f')} s)",
            fmt(r["threads"], ".1f"), fmt(r["rss_mb"], ".1f"),
        ])
    exp = f["expect"]
    return (
        "Cameras kept as they are: 1080p30 H.264 + AAC into fragmented MP4",
        f"Each camera is a {f['seconds']} s 1080p30 H.264 ({f['kbps']} kbit/s, a keyframe "
        "every 2 s) + AAC file (made once: "
        f"`{f['source']}`) played at its own pace "
        "(`filesrc ! qtdemux`, each track `queue ! identity sync=true`) and recorded without "
        "re-encoding into fragmented MP4 by: `hand` `h264parse ! mp4mux "
        "fragment-duration=2000 ! filesink` (audio `aacparse ! m.`); `element` "
        "`mediarecorder mime-type=video/mp4 location=camI.mp4`; `element-nvr` the same "
        "with what an NVR turns on: `location=camI/%05d.mp4 max-file-duration=10000 "
        "max-files=1000` (10 s files, retention, the crash journal: a marker per file, "
        "synced data once a second, progress messages; each camera in a folder of its "
        "own, as NVRs lay out their recordings); `element-nvr-one-folder` the same with "
        "every camera's files in one folder (`location=camI-%05d.mp4`); `ffmpeg` "
        "`ffmpeg -re -i … -c copy -movflags +frag_keyframe+empty_moov`; `source` the "
        "camera played the same way into "
        "`fakesink`s, no file: what any GStreamer recorder fed like this pays before it "
        "records anything. **Together** (N = 16 and 64): the tools record at the same "
        "time, N cameras on the machine shared out among them (N / tools each, in the N "
        "column), each tool's processes counted in a cgroup of their own: one after "
        "the other, the same tool's CPU per camera varied up to 2x from one minute to the "
        "next on this machine, while the ratios of tools measured together held within a "
        "few percent; at 200, each tool alone with all 200. Each run begins once the files "
        "of the one before are on disk (`sync`, then 3 s). `N processes`: one gst-launch-1.0 (or "
        "ffmpeg) per camera, all started together; `one process`: bench/cameras_inproc.py, "
        "one PyGObject process holding N pipelines (as an NVR embeds the element), its "
        "interpreter's own threads and memory taken out. "
        "**CPU s per s** is user+sys per camera per recorded second in the steady state "
        f"(the kernel's count for a cgroup holding the run's processes, cpuacct.usage, sampled every {SAMPLE_S:g} s, from {f['window'][0]:g} s after a "
        f"camera began playing to {f['window'][1]:g} s before its process exited; with "
        "repetitions, the median run and the range of all in brackets), `vs "
        "hand` that divided by the hand pipeline's in the same mode and N (the element syncs "
        "its file to disk once a second, for a power cut, and is charged for that "
        "writeback, which the kernel's own threads do for the others); `with start-up` "
        "is getrusage of the whole process (start-up and finalizing included) per camera "
        f"per recorded second. **Every frame**: cameras whose files hold all {exp[0]} "
        f"video and {exp[1]} audio packets of the source (`ffprobe -count_packets`, "
        "summed over a camera's files; a file whose audio starts after its first picture "
        "begins with a silent AAC packet, so there may be one more audio packet per "
        "file). **Real time**: every pipeline reached EOS within "
        f"{LATE_S:g} s of the media's length after PLAYING (gst-launch's \"Execution ended "
        "after\"; ffmpeg: the `rtime` of its `-benchmark`), longest in brackets (and how many were late). **Threads** and **MB** per "
        "camera: a process's own (N processes: median over them), or the one process's "
        "less the interpreter's, divided by N; medians of the middle half of the run."
        + (f" `element-base` is the element built from {f.get('base_name') or f['base']} ("
           "run in the same run for a before/after comparison)."
           if f.get("base") else "") + "\n\n"
        + table(["", "how", "N", "CPU s per s", "vs hand", "with start-up", "every frame",
                 "real time", "threads", "MB"], rows),
    )


def targets(docs):
    rows = docs["cameras"]["figures"]["rows"]
    by = {(r["tool"], r["mode"], r["n"]): r for r in rows}
    out = []
    for n in (16, 64):
        e, h, ff, src = (by.get((t, "processes", n))
                         for t in ("element", "hand", "ffmpeg", "source"))
        if not (e and h and e["cpu_per_s"] and h["cpu_per_s"]):
            continue
        vs_ff = (f"; ffmpeg {ff['cpu_per_s']:.4f} ({e['cpu_per_s'] / ff['cpu_per_s']:.2f}x)"
                 if ff and ff["cpu_per_s"] else "")
        if src and src["cpu_per_s"] and ff and ff["cpu_per_s"]:
            vs_ff += (f"; the played camera alone, no recorder, {src['cpu_per_s']:.4f} "
                      f"({src['cpu_per_s'] / ff['cpu_per_s']:.2f}x ffmpeg)")
        out.append((
            f"kept as is, N={n}: element CPU within 10 % of hand, ≤ ffmpeg -c copy + 30 %",
            f"element {e['cpu_per_s']:.4f} vs hand {h['cpu_per_s']:.4f} CPU s/s "
            f"({(e['cpu_per_s'] / h['cpu_per_s'] - 1) * 100:+.0f} %){vs_ff}",
            e["cpu_per_s"] <= h["cpu_per_s"] * 1.10
            and (not ff or not ff["cpu_per_s"] or e["cpu_per_s"] <= ff["cpu_per_s"] * 1.3)))
    for mode in ("processes", "process"):
        for tool in ("element", "element-nvr", "element-nvr-one-folder"):
            e, h = by.get((tool, mode, 200)), by.get(("hand", mode, 200))
            if not e:
                continue
            ok = e["real_time"] and e["every_frame"] == cameras_of(e)
            extra = (f", threads {fmt(e['threads'], '.1f')} vs hand "
                     f"{fmt(h and h['threads'], '.1f')}" if h else "")
            out.append((
                f"200 cameras, {tool}, {'one process' if mode == 'process' else '200 processes'}: "
                "real time, every frame, threads per camera ≤ hand + 1",
                f"real time {'yes' if e['real_time'] else 'no'}, every frame in "
                f"{e['every_frame']} of {cameras_of(e)}{extra}",
                ok and (not h or e["threads"] is None or h["threads"] is None
                        or e["threads"] <= h["threads"] + 1)))
    return out
