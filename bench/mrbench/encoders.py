"""The element's pipeline description, the encoder settings it chooses (read back from
its encoder, so the hand pipeline and ffmpeg get exactly the same numbers), and the
naive encoders with their defaults."""

import json
import os

from .common import BENCH, PATTERN, PY, log
from .media import audio_source, caps
from .process import run


def mime_of(codec):
    return {"vp8": "", "vp9": "video/webm;codecs=vp9", "av1": "video/webm;codecs=av1"}[codec]


def recorder_desc(codec, location=None, extra=""):
    parts = ["mediarecorder name=r"]
    if mime_of(codec):
        parts.append(f'mime-type="{mime_of(codec)}"')
    if location:
        parts.append(f"location={location}")
    if extra:
        parts.append(extra)
    return " ".join(parts)


def element_pipeline(video, location, audio=None, video_encoder=None):
    """`video ! mediarecorder`, and `audio ! r.` as a second branch when given; with
    `video_encoder`, the element records with that encoder as configured."""
    extra = f'video-encoder="{video_encoder}"' if video_encoder else ""
    desc = f"{video} ! {recorder_desc('vp8', location, extra)}"
    return f"{desc}  {audio} ! r." if audio else desc


def hand_pipeline(video, video_enc, location, audio=None, audio_enc=None):
    """The element's work written by hand: `videoconvert ! <encoder>` into webmmux, and
    `audioconvert ! audioresample ! <encoder>` into the same muxer when `audio` is given."""
    desc = f"{video} ! videoconvert ! {video_enc} ! webmmux name=m ! filesink location={location}"
    if not audio:
        return desc
    return f"{desc}  {audio} ! audioconvert ! audioresample ! {audio_enc} ! m."


def naive_encoder(codec):
    return {"vp8": "vp8enc", "vp9": "vp9enc", "av1": "av1enc ! av1parse"}[codec]


def read_back(desc, audio=False):
    """The settings of the encoder the element chose in the pipeline `desc` (a few
    frames are enough), its audio encoder's with `audio`: {"factory": ..., "props":
    {...}}, or {"error": ...}."""
    res = run([PY, os.path.join(BENCH, "encoder_settings.py"), desc]
              + (["audio"] if audio else []))
    return json.loads(res.out.strip().splitlines()[-1])


class Settings:
    """What the element configures for a codec, size and liveness, cached for the run.
    `used` holds the streams asked for since the last `forget_used()`, so each section
    can record the settings its figures depend on."""

    def __init__(self, media):
        self.media = media
        self.cache = {}
        self.audio_cache = {}
        self.used = {}

    def forget_used(self):
        self.used = {}

    def get(self, codec, w, h, live):
        key = (codec, w, h, live)
        if key not in self.cache:
            out = self.media.path("settings.webm")
            live_s = " is-live=true" if live else ""
            data = read_back(f"{PATTERN}{live_s} num-buffers=5 ! {caps(w, h)} ! "
                             f"{recorder_desc(codec, out)}")
            self.cache[key] = data
            log(f"element's encoder for {codec} {w}x{h} {'live' if live else 'non-live'}: "
                f"{data['factory']} {data['props']}")
        self.used[key] = self.cache[key]
        return self.cache[key]

    def audio(self, live):
        """What the element configures for the stereo 48 kHz test tone (not in `used`:
        the sections that record audio keep these settings in their figures)."""
        if live not in self.audio_cache:
            out = self.media.path("settings.webm")
            live_s = " is-live=true" if live else ""
            data = read_back(f"{PATTERN}{live_s} num-buffers=5 ! {caps(320, 240)} ! "
                             f"{recorder_desc('vp8', out)}  {audio_source(live, 5)} ! r.",
                             audio=True)
            if "factory" not in data:
                raise RuntimeError(f"no audio encoder settings from the element: {data}")
            self.audio_cache[live] = data
            log(f"element's audio encoder {'live' if live else 'non-live'}: "
                f"{data['factory']} {data['props']}")
        return self.audio_cache[live]

    def hand_audio_encoder(self, live):
        s = self.audio(live)
        return f"{s['factory']} " + " ".join(f"{k}={v}" for k, v in s["props"].items())

    def used_records(self):
        """The streams used, as the JSON files keep them."""
        return [{"codec": codec, "width": w, "height": h, "live": live,
                 "factory": data.get("factory"), "props": data.get("props", {})}
                for (codec, w, h, live), data in self.used.items()]

    def hand_encoder(self, codec, w, h, live):
        s = self.get(codec, w, h, live)
        props = " ".join(f"{k}={v}" for k, v in s["props"].items())
        enc = f"{s['factory']} {props}"
        if codec == "av1":
            enc += " ! av1parse"
        return enc

    def bitrate_bps(self, codec, w, h, live):
        p = self.get(codec, w, h, live)["props"]
        tb = int(p["target-bitrate"])
        return tb * 1000 if codec == "av1" else tb  # av1enc counts kbit/s

    def ffmpeg_encoder(self, codec, w, h, live):
        p = self.get(codec, w, h, live)["props"]
        b = str(self.bitrate_bps(codec, w, h, live))
        rate = ["-b:v", b, "-minrate", b, "-maxrate", b]  # min = max = target: CBR
        common = ["-lag-in-frames", p["lag-in-frames"], "-g", p["keyframe-max-dist"],
                  "-threads", p["threads"], "-qmin", p["min-quantizer"],
                  "-qmax", p["max-quantizer"]]
        if codec in ("vp8", "vp9"):
            lib = "libvpx" if codec == "vp8" else "libvpx-vp9"
            deadline = "realtime" if p["deadline"] == "1" else "good"
            args = ["-c:v", lib, "-deadline", deadline, "-cpu-used", p["cpu-used"]]
            args += rate + common
            if codec == "vp9":
                args += ["-row-mt", "1"]
            return args
        # ffmpeg 5.1 caps libaom's cpu-used at 8 (the element asks av1enc for 10)
        cpu = str(min(int(p["cpu-used"]), 8))
        return (["-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", cpu]
                + rate + common
                + ["-row-mt", "1"])
