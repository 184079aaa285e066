"""Running commands: wall time, CPU (getrusage of the child), peak RSS, RSS and thread
count samples, and how a command is written down for the report."""

import os
import re
import shlex
import signal
import statistics
import subprocess
import tempfile
import threading
import time


class Result:
    """One finished process: wall time, CPU (user+sys of it and its waited children),
    peak RSS, exit status, output, and RSS and thread count samples when asked."""

    def __init__(self, cmd):
        self.cmd = cmd
        self.wall = None
        self.user = 0.0
        self.sys = 0.0
        self.maxrss_kb = 0
        self.rc = None
        self.timed_out = False
        self.out = ""
        self.samples = []  # (seconds since start, VmRSS kB)
        self.thread_samples = []  # (seconds since start, threads of the process)

    @property
    def cpu(self):
        return self.user + self.sys

    def ok(self):
        return self.rc == 0 and not self.timed_out


def _rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _threads(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


def run_many(cmds, timeout=None, sample_every=None, workdir=None):
    """Starts all commands at once and waits for each with wait4 (getrusage of the
    child), each in its own thread so every wall time is its own."""
    results = []
    procs = []
    for cmd in cmds:
        res = Result(cmd)
        outf = tempfile.TemporaryFile(dir=workdir)
        start = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=outf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        results.append(res)
        procs.append((proc, outf, start))

    def waiter(res, proc, start):
        stop = threading.Event()
        sampler = None
        if sample_every:

            def sample():
                while not stop.is_set():
                    rss = _rss_kb(proc.pid)
                    if rss is not None:
                        res.samples.append((time.monotonic() - start, rss))
                    threads = _threads(proc.pid)
                    if threads is not None:
                        res.thread_samples.append((time.monotonic() - start, threads))
                    stop.wait(sample_every)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
        timer = None
        if timeout:

            def kill():
                res.timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass

            timer = threading.Timer(timeout, kill)
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        res.wall = time.monotonic() - start
        if timer:
            timer.cancel()
        stop.set()
        if sampler:
            sampler.join()
        res.rc = os.waitstatus_to_exitcode(status)
        proc.returncode = res.rc
        res.user = usage.ru_utime
        res.sys = usage.ru_stime
        res.maxrss_kb = usage.ru_maxrss

    threads = [
        threading.Thread(target=waiter, args=(res, proc, start))
        for res, (proc, _, start) in zip(results, procs)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for res, (_, outf, _) in zip(results, procs):
        outf.seek(0)
        res.out = outf.read().decode(errors="replace")
        outf.close()
    return results


def run(cmd, timeout=None, sample_every=None, workdir=None, check=True):
    res = run_many([cmd], timeout, sample_every, workdir)[0]
    if check and not res.ok():
        what = "timed out" if res.timed_out else f"exit {res.rc}"
        raise RuntimeError(f"{what}: {show(cmd)}\n{res.out[-2000:]}")
    return res


def gst(desc, quiet=True):
    # gst-launch-1.0 treats each argument as one token: split as a shell would.
    # -q also hides the element's warnings: leave it out where they are counted.
    return ["gst-launch-1.0"] + (["-q"] if quiet else []) + shlex.split(desc)


def ffmpeg(args):
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"] + args


def show(cmd, work=None):
    """A command as one would type it: quoted only where a shell needs it."""
    words = []
    for word in cmd:
        if not re.fullmatch(r"[\w@%+=:,./!-]+", word):
            word = shlex.quote(word)
        words.append(word)
    text = " ".join(words)
    return text.replace(work, "$WORK") if work else text


def output(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout


def rss_at(samples, t):
    """The last RSS sample at or before t seconds (the first one if none is)."""
    before = [rss for at, rss in samples if at <= t]
    return before[-1] if before else (samples[0][1] if samples else None)


def threads_in_middle(res):
    """Most threads the process had in the middle half of its run (start-up and
    shutdown left out), or None without samples."""
    middle = [n for t, n in res.thread_samples if res.wall / 4 <= t <= res.wall * 3 / 4]
    return max(middle or [n for _, n in res.thread_samples], default=None)


def rss_slope(samples, after):
    """RSS trend in MB per minute after `after` seconds (least squares)."""
    pts = [(t, rss / 1024) for t, rss in samples if t >= after]
    if len(pts) < 3:
        return None
    mt = statistics.mean(t for t, _ in pts)
    mr = statistics.mean(r for _, r in pts)
    den = sum((t - mt) ** 2 for t, _ in pts)
    if den == 0:
        return None
    return sum((t - mt) * (r - mr) for t, r in pts) / den * 60
