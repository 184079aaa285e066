"""What the figures were measured on: machine, tool versions, plugin build."""

import datetime
import hashlib
import os
import platform
import time

from .common import PLUGIN, ROOT
from .process import output


def plugin_id():
    """Hash and time of the plugin file: another build during the run would change them."""
    try:
        with open(PLUGIN, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        stamp = time.strftime("%H:%M:%S", time.localtime(os.path.getmtime(PLUGIN)))
        return f"{digest}, built {stamp}"
    except OSError:
        return "missing"


def load_average():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _first_line(path, prefix):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            if line.startswith(prefix):
                return line
    return None


def describe():
    """The machine, the tools and the plugin build, as the report's header shows them."""
    line = _first_line("/proc/cpuinfo", "model name")
    cpu = line.split(":", 1)[1].strip() if line else "?"
    line = _first_line("/etc/os-release", "PRETTY_NAME=")
    os_name = line.split("=", 1)[1].strip().strip('"') if line else "?"
    gst_v = output(["gst-launch-1.0", "--version"]).splitlines()
    gst_v = next((l for l in gst_v if l.startswith("GStreamer")), "?")
    ff_v = output(["ffmpeg", "-version"]).splitlines()[:1]
    ff_v = ff_v[0].split(" Copyright")[0] if ff_v else "?"
    vpx = output(["dpkg-query", "-W", "-f", "${Version}", "libvpx7"]).strip() or "?"
    aom = output(["dpkg-query", "-W", "-f", "${Version}", "libaom3"]).strip() or "?"
    commit = output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip() or "?"
    dirty = output(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]).strip()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
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
        "plugin": plugin_id(),
    }


def now():
    """The start of a run: a sortable id (to the second) and the date as the report
    shows it."""
    t = datetime.datetime.now().astimezone()
    return t.isoformat(timespec="seconds"), t.strftime("%Y-%m-%d %H:%M %Z")
