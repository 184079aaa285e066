#!/usr/bin/python3
"""Prints, as JSON, the settings of the encoder `mediarecorder name=r` chose for a
pipeline: runs it (a few frames are enough) and reads the encoder's properties.

usage: encoder_settings.py 'videotestsrc num-buffers=5 ! CAPS ! mediarecorder name=r ...' [audio]
With `audio`, the audio encoder's settings instead (the pipeline must link audio too).
"""
import json
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

ENCODERS = ("vp8enc", "vp9enc", "av1enc", "x264enc")
PROPS = (
    "deadline",
    "cpu-used",
    "usage-profile",
    "end-usage",
    "min-quantizer",
    "max-quantizer",
    "target-bitrate",
    "keyframe-max-dist",
    "lag-in-frames",
    "threads",
    "row-mt",
)
AUDIO_ENCODERS = ("opusenc",)
# what the element sets (bitrate, bitrate-type) and the defaults that shape the encode
AUDIO_PROPS = ("bitrate", "bitrate-type", "audio-type", "bandwidth", "frame-size", "complexity")


def as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "value_nick"):
        return value.value_nick
    return str(value)


def main():
    audio = sys.argv[2:] == ["audio"]
    encoders, props = (AUDIO_ENCODERS, AUDIO_PROPS) if audio else (ENCODERS, PROPS)
    Gst.init(None)
    pipeline = Gst.parse_launch(sys.argv[1])
    recorder = pipeline.get_by_name("r")
    found = []

    def added(_bin, _sub, element):
        factory = element.get_factory()
        if factory and factory.get_name() in encoders:
            found.append(element)

    recorder.connect("deep-element-added", added)
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(
        60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
    )
    result = {}
    if msg is None or msg.type == Gst.MessageType.ERROR:
        result["error"] = msg.parse_error()[0].message if msg else "timeout"
    if found:
        encoder = found[0]
        result["factory"] = encoder.get_factory().get_name()
        result["props"] = {
            name: as_text(encoder.get_property(name))
            for name in props
            if encoder.find_property(name) is not None
        }
    pipeline.set_state(Gst.State.NULL)
    print(json.dumps(result))
    return 0 if "factory" in result else 1


if __name__ == "__main__":
    sys.exit(main())
