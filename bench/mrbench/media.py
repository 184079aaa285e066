"""The raw sources the encodes read, and what a recording holds: ffprobe's frame count,
duration and size, and PSNR against the source."""

import json
import os
import re

from .common import FPS, PATTERN, log
from .process import ffmpeg, gst, output, run

NOTHING = {"frames": 0, "duration": 0.0, "size": 0, "kbps": 0.0}
AUDIO_RATE = 48000


def caps(w, h):
    return f"video/x-raw,format=I420,width={w},height={h},framerate={FPS}/1"


def user_caps(w, h):
    """Caps as users write them: size and rate, the format left to negotiation."""
    return f"video/x-raw,width={w},height={h},framerate={FPS}/1"


def video_source(w, h, live, frames=None):
    """The test picture at 30 fps with caps as users write them; `frames` None: until
    stopped."""
    live_s = " is-live=true" if live else ""
    count = f" num-buffers={frames}" if frames else ""
    return f"{PATTERN}{live_s}{count} ! {user_caps(w, h)}"


def audio_source(live, frames=None):
    """A stereo 48 kHz tone in buffers of one video frame's length, so `frames` buffers
    last as long as `frames` video frames (a microphone's rate and channels fixed, the
    sample format left to negotiation)."""
    live_s = " is-live=true" if live else ""
    count = f" num-buffers={frames}" if frames else ""
    return (f"audiotestsrc{live_s}{count} samplesperbuffer={AUDIO_RATE // FPS} ! "
            f"audio/x-raw,rate={AUDIO_RATE},channels=2")


def probe(path):
    """Frames (decoded and counted), duration and size of a recording."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return dict(NOTHING)
    data = output(
        [
            "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
            "-show_entries", "stream=nb_read_frames:format=duration,size",
            "-of", "json", path,
        ]
    )
    try:
        j = json.loads(data)
        frames = int(j["streams"][0].get("nb_read_frames", 0))
        duration = float(j["format"].get("duration", 0) or 0)
        size = int(j["format"].get("size", 0))
    except (ValueError, KeyError, IndexError):
        return dict(NOTHING)
    kbps = size * 8 / (frames / FPS) / 1000 if frames else 0.0
    return {"frames": frames, "duration": duration, "size": size, "kbps": kbps}


class Media:
    """Scratch files: deterministic raw sources and their cache."""

    def __init__(self, work):
        self.work = work
        self.cache = {}

    def path(self, name):
        return os.path.join(self.work, name)

    def gst_source(self, w, h, frames):
        """The same frames as the live and non-live videotestsrc runs, raw I420."""
        key = ("gst", w, h)
        have = self.cache.get(key)
        if have and have[1] >= frames:
            return have[0]
        path = self.path(f"src-{w}x{h}.yuv")
        log(f"writing the raw source {w}x{h}, {frames} frames")
        run(gst(f"{PATTERN} num-buffers={frames} ! {caps(w, h)} ! filesink location={path}"))
        expect = w * h * 3 // 2 * frames
        if os.path.getsize(path) != expect:
            raise RuntimeError(f"{path}: {os.path.getsize(path)} bytes, expected {expect}")
        self.cache[key] = (path, frames)
        return path

    def testsrc2(self, w, h, frames):
        """ffmpeg's testsrc2 frames, raw, for the PSNR of ffmpeg's own live source."""
        key = ("testsrc2", w, h)
        have = self.cache.get(key)
        if have and have[1] >= frames:
            return have[0]
        path = self.path(f"testsrc2-{w}x{h}.yuv")
        run(ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={FPS}",
                    "-frames:v", str(frames), "-pix_fmt", "yuv420p", "-f", "rawvideo", path]))
        self.cache[key] = (path, frames)
        return path

    def drop_sources(self):
        for key, (path, _) in list(self.cache.items()):
            if os.path.exists(path):
                os.unlink(path)
            del self.cache[key]

    def psnr(self, source, w, h, encoded):
        """PSNR of a recording decoded to raw I420 against the raw source, frame by
        frame from the first. Returns dict(y, avg, frames) or None."""
        if not os.path.exists(encoded) or os.path.getsize(encoded) == 0:
            return None
        dec = self.path("decoded.yuv")
        run(ffmpeg(["-i", encoded, "-f", "rawvideo", "-pix_fmt", "yuv420p",
                    "-fps_mode", "passthrough", dec]))
        frames = os.path.getsize(dec) // (w * h * 3 // 2)
        res = run(
            ["ffmpeg", "-hide_banner", "-nostdin",
             "-s", f"{w}x{h}", "-pix_fmt", "yuv420p", "-f", "rawvideo", "-i", source,
             "-s", f"{w}x{h}", "-pix_fmt", "yuv420p", "-f", "rawvideo", "-i", dec,
             "-lavfi", "[1:v][0:v]psnr=shortest=1", "-f", "null", "-"]
        )
        os.unlink(dec)
        m = re.search(r"PSNR y:([\d.inf]+) u:([\d.inf]+) v:([\d.inf]+) average:([\d.inf]+)",
                      res.out)
        if not m:
            return None
        return {"y": float(m.group(1)), "avg": float(m.group(4)), "frames": frames}
