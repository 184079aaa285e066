#!/usr/bin/python3
"""The web's "recording a media element" sample, with GStreamer's mediarecorder.

    GST_PLUGIN_PATH=target/debug examples/record.py [--duration MS] \\
        [--source camera|test|FILE_OR_URI] [--output out.webm]

Records the camera at /dev/video0 and the microphone (or, without a camera, a live
test pattern and tone, or a file or URI) to a WebM file, showing a live preview when
there is a display. Like the sample it starts the recorder by hand once the preview
plays (autostart=False, the "start-recording" action) and calls "stop-recording"
from a timer after --duration ms; without --duration it records until Enter is
pressed (the sample's stop button), Ctrl+C, or the end of the source.

(A timer stops late or early by the time it takes frames to be encoded; the element's
own `duration` property records exactly the asked time, see examples/record.rs.)

Needs PyGObject (Debian: python3-gi gir1.2-gstreamer-1.0) and GST_PLUGIN_PATH set to
the folder holding libgstmediarecorder.so (target/release or target/debug).
"""

import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

CAMERA = "/dev/video0"
TEST_VIDEO = ("videotestsrc is-live=true pattern=smpte"
              " ! capsfilter caps=video/x-raw,width=640,height=480,framerate=30/1")
TEST_AUDIO = "audiotestsrc is-live=true wave=sine"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=0, metavar="MS",
                        help="record MS milliseconds, then stop (default: until Enter)")
    parser.add_argument("--source", metavar="SRC",
                        default="camera" if os.path.exists(CAMERA) else "test",
                        help="camera, test, or a file or URI to play "
                             "(default: camera if there is one, else test)")
    parser.add_argument("--output", default="out.webm", metavar="FILE",
                        help="the WebM file to write (default: out.webm)")
    args = parser.parse_args()
    if args.source == "camera" and not os.path.exists(CAMERA):
        parser.error(f"there is no camera at {CAMERA}: try --source test")
    return args


def has_display():
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def link_to_recorder(pipeline, recorder, pad, kind, preview):
    """Links pad to a new video_%u or audio_%u pad of the recorder; with preview,
    video goes through tee ! queue ! autovideosink too."""
    sink = recorder.request_pad_simple(f"{kind}_%u")
    if kind == "video" and preview:
        tee = Gst.parse_bin_from_description(
            "tee name=t ! queue ! videoconvert ! autovideosink  t. ! queue", True)
        pipeline.add(tee)
        tee.sync_state_with_parent()
        pad.link(tee.get_static_pad("sink"))
        pad = tee.get_static_pad("src")
    if pad.link(sink) != Gst.PadLinkReturn.OK:
        raise RuntimeError(f"cannot link {pad.get_name()} to the recorder's {kind} pad")


def add_live_source(pipeline, recorder, kind, description, preview):
    source = Gst.parse_bin_from_description(description, True)
    pipeline.add(source)
    link_to_recorder(pipeline, recorder, source.get_static_pad("src"), kind, preview)


def add_uri_source(pipeline, recorder, uri, preview, on_all_linked):
    decodebin = Gst.ElementFactory.make("uridecodebin")
    decodebin.set_property("uri", uri)
    pipeline.add(decodebin)

    def on_pad_added(_decodebin, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name()
        kind = name.split("/")[0]
        if kind in ("video", "audio"):
            # Play in real time, as the sample's <video> element does, so that the
            # timer counts media time (a file decodes much faster than it plays).
            clocksync = Gst.ElementFactory.make("clocksync")
            pipeline.add(clocksync)
            clocksync.sync_state_with_parent()
            pad.link(clocksync.get_static_pad("sink"))
            link_to_recorder(pipeline, recorder, clocksync.get_static_pad("src"), kind, preview)
        else:
            print(f"Ignoring a stream of {name}")

    decodebin.connect("pad-added", on_pad_added)
    # A file plays as soon as its streams are linked: start recording right then
    # (from the streaming thread: the recorder's actions may be called from any thread).
    decodebin.connect("no-more-pads", lambda _decodebin: on_all_linked())


def to_uri(source):
    if Gst.uri_is_valid(source):
        return source
    path = os.path.abspath(source)
    if not os.path.exists(path):
        sys.exit(f"{source}: no such file")
    return Gst.filename_to_uri(path)


def main():
    args = parse_args()
    Gst.init(None)

    recorder = Gst.ElementFactory.make("mediarecorder", "recorder")
    if recorder is None:
        sys.exit("GStreamer has no 'mediarecorder' element. Build the plugin (cargo build) "
                 "and point GST_PLUGIN_PATH at the folder holding libgstmediarecorder.so, "
                 "e.g.\n  GST_PLUGIN_PATH=$PWD/target/debug " + " ".join(sys.argv))
    recorder.set_property("location", args.output)
    # Stay inactive until "start-recording", as the sample calls recorder.start().
    recorder.set_property("autostart", False)

    pipeline = Gst.Pipeline.new("sample")
    pipeline.add(recorder)
    loop = GLib.MainLoop()
    chunks = []          # the sample's Blobs, in order
    mime_type = [""]     # read in the start handler
    outcome = {"error": None, "started": False}

    # --- the recorder's events ---------------------------------------------------

    def on_start(rec):
        # While recording, mime-type reads what is recorded: video/webm;codecs=vp8,opus
        mime_type[0] = rec.get_property("mime-type")
        print(f"Recording started: {mime_type[0]}")

    def on_dataavailable(_rec, buffer):
        chunks.append(buffer.extract_dup(0, buffer.get_size()))

    def on_stop(rec):
        data = b"".join(chunks)   # the whole file, like the sample's joined Blob
        print(f"\nSuccessfully recorded {len(data)} bytes of "
              f"{mime_type[0].split(';')[0]} media.")
        print(f"Saved to {os.path.abspath(rec.get_property('location'))}")
        loop.quit()

    recorder.connect("start", on_start)
    recorder.connect("dataavailable", on_dataavailable)
    recorder.connect("stop", on_stop)

    # --- start by hand, stop by a timer, Enter or Ctrl+C ------------------------

    def stop_recording():
        # FALSE when it is not recording (it already stopped): nothing to do.
        recorder.emit("stop-recording")
        return GLib.SOURCE_REMOVE

    def start_recording():
        if outcome["started"]:
            return
        outcome["started"] = True
        if not recorder.emit("start-recording"):
            outcome["error"] = "start-recording was refused"
            loop.quit()
            return
        if args.duration > 0:
            GLib.timeout_add(args.duration, stop_recording)

    def stop_button():
        # FALSE when nothing is being recorded: then no "stop" will come to end the loop.
        if not recorder.emit("stop-recording"):
            print("Nothing was recorded.")
            loop.quit()

    def on_stdin(source, _condition):
        if source.readline():   # Enter; an empty read is stdin closed: keep recording
            stop_button()
        return GLib.SOURCE_REMOVE

    def on_interrupt():
        stop_button()
        return GLib.SOURCE_CONTINUE

    # --- sources -----------------------------------------------------------------

    preview = has_display()
    live = args.source in ("camera", "test")
    if args.source == "camera":
        add_live_source(pipeline, recorder, "video", f"v4l2src device={CAMERA}", preview)
        add_live_source(pipeline, recorder, "audio", "autoaudiosrc", False)
    elif args.source == "test":
        add_live_source(pipeline, recorder, "video", TEST_VIDEO, preview)
        add_live_source(pipeline, recorder, "audio", TEST_AUDIO, False)
    else:
        add_uri_source(pipeline, recorder, to_uri(args.source), preview, start_recording)

    # --- the bus: start once playing, progress, errors, end of stream -----------

    shown = {"progress": False, "chunks": 0, "bytes": 0}

    def on_message(_bus, message):
        if message.type == Gst.MessageType.STATE_CHANGED:
            _old, new, _pending = message.parse_state_changed()
            # Like the sample: once the (preview) stream plays, record it.
            if message.src == pipeline and new == Gst.State.PLAYING and live:
                start_recording()
        elif message.type == Gst.MessageType.ELEMENT:
            s = message.get_structure()
            if s.get_name() == "mediarecorder-progress":
                shown["progress"] = True
                seconds = s.get_value("recorded") / Gst.SECOND
                print(f"\rRecorded {seconds:.1f} s, {s.get_value('bytes')} bytes, "
                      f"{s.get_value('dropped')} frames dropped ", end="", flush=True)
            elif s.get_name() == "mediarecorder-dataavailable" and not shown["progress"]:
                # Where the element posts no progress messages: count the chunks.
                shown["chunks"] += 1
                shown["bytes"] += s.get_value("size")
                print(f"\rRecorded {shown['bytes']} bytes in {shown['chunks']} chunks ",
                      end="", flush=True)
        elif message.type == Gst.MessageType.ERROR:
            err, debug = message.parse_error()
            if outcome["error"] is None:   # the first error is the cause
                outcome["error"] = f"{err.message} (from {message.src.get_path_string()})"
                if debug:
                    outcome["error"] += f"\n{debug}"
            loop.quit()
        elif message.type == Gst.MessageType.EOS:
            loop.quit()   # the source ended; the recorder stopped by itself
        return True

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, on_interrupt)
    if args.duration > 0:
        print(f"Recording {args.duration} ms to {args.output}")
    else:
        print(f"Recording to {args.output}: press Enter to stop")
        GLib.io_add_watch(sys.stdin, GLib.PRIORITY_DEFAULT, GLib.IO_IN | GLib.IO_HUP, on_stdin)

    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        # The reason is on the bus.
        while GLib.MainContext.default().iteration(False):
            pass
        outcome["error"] = outcome["error"] or "the pipeline cannot start"
    else:
        loop.run()

    # Going to NULL also finalizes a recording that is still running (after an error).
    pipeline.set_state(Gst.State.NULL)
    bus.remove_signal_watch()
    if outcome["error"]:
        print(f"Error: {outcome['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
