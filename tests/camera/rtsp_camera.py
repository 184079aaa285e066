#!/usr/bin/python3
"""A local IP camera for tests: an RTSP server on 127.0.0.1 serving live test video
and audio, as network cameras do.

Usage (Debian's /usr/bin/python3, with gir1.2-gst-rtsp-server-1.0 installed):

    /usr/bin/python3 tests/camera/rtsp_camera.py [--port N] [--loss PCT] [--reorder PCT]
        [--size WxH] [--fps N] [--keyframes N] [--shared]

It prints one line, `rtsp://127.0.0.1:PORT/`, once it serves (port 0, the default,
picks a free one), then runs until killed or until its stdin closes.
Mounts, each `/VIDEO-AUDIO`:
    VIDEO: h264 (x264enc) or h265 (x265enc), live videotestsrc with a moving ball
    AUDIO: aac (avenc_aac, RTP MPEG-4 generic), opus, pcmu (G.711 mu-law)
e.g. rtsp://127.0.0.1:PORT/h264-aac, /h265-opus, /h264-pcmu; and /h264 (video only).
--keyframes is the camera's keyframe interval in frames (default 30 = 1 s at 30 fps).

Lossy networks: --loss 5 drops 5 % of the RTP packets of every stream, --reorder 5
delays 5 % of them by 10-40 ms so they arrive out of order (`netsim` after each
payloader, plugins-bad). Over TCP (`rtspsrc protocols=tcp`) lost packets are gaps in
the sequence numbers; to lose them as UDP does, record with `protocols=udp`.
Each client gets its own pipeline (a fresh stream starting with a keyframe) unless
--shared is given.
"""
import argparse
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

VIDEO = {
    "h264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={kf} bitrate=800 "
    "! h264parse",
    "h265": "x265enc tune=zerolatency speed-preset=ultrafast key-int-max={kf} bitrate=800 "
    "! h265parse",
}
VIDEO_PAY = {"h264": "rtph264pay config-interval=-1 pt=96", "h265": "rtph265pay config-interval=-1 pt=96"}
AUDIO = {
    "aac": ("avenc_aac ! aacparse", "rtpmp4gpay pt=97"),
    "opus": ("opusenc ! opusparse", "rtpopuspay pt=97"),
    "pcmu": ("audioresample ! audio/x-raw,rate=8000,channels=1 ! mulawenc", "rtppcmupay pt=0"),
}


def payloader(description, index, args):
    """The payloader named payN, followed by netsim when the network is lossy: a bin
    whose `src` pad is what the server sends."""
    if args.loss == 0 and args.reorder == 0:
        pay = Gst.parse_launch(description)
    else:
        netsim = (
            f"netsim drop-probability={args.loss / 100} "
            f"delay-probability={args.reorder / 100} min-delay=10 max-delay=40"
        )
        pay = Gst.parse_bin_from_description(f"{description} ! {netsim}", True)
    pay.set_property("name", f"pay{index}")
    return pay


class Camera(GstRtspServer.RTSPMediaFactory):
    def __init__(self, video, audio, args):
        super().__init__()
        self.video, self.audio, self.args = video, audio, args
        self.set_shared(args.shared)

    def do_create_element(self, url):
        a = self.args
        width, height = a.size.split("x")
        bin = Gst.Bin.new(None)
        v = Gst.parse_bin_from_description(
            f"videotestsrc is-live=true pattern=ball ! "
            f"video/x-raw,format=I420,width={width},height={height},framerate={a.fps}/1 ! "
            + VIDEO[self.video].format(kf=a.keyframes),
            True,
        )
        vpay = payloader(VIDEO_PAY[self.video], 0, a)
        bin.add(v)
        bin.add(vpay)
        v.link(vpay)
        if self.audio:
            enc, pay = AUDIO[self.audio]
            au = Gst.parse_bin_from_description(
                "audiotestsrc is-live=true wave=ticks samplesperbuffer=960 ! "
                "audio/x-raw,rate=48000,channels=1 ! audioconvert ! " + enc,
                True,
            )
            apay = payloader(pay, 1, a)
            bin.add(au)
            bin.add(apay)
            au.link(apay)
        return bin


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--loss", type=float, default=0, help="percent of RTP packets dropped")
    p.add_argument("--reorder", type=float, default=0, help="percent delayed 10-40 ms")
    p.add_argument("--size", default="320x240")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--keyframes", type=int, default=30)
    p.add_argument("--shared", action="store_true")
    args = p.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for video in VIDEO:
        mounts.add_factory(f"/{video}", Camera(video, None, args))
        for audio in AUDIO:
            mounts.add_factory(f"/{video}-{audio}", Camera(video, audio, args))
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        sys.exit(f"cannot serve RTSP on 127.0.0.1:{args.port}")
    print(f"rtsp://127.0.0.1:{server.get_bound_port()}/", flush=True)

    def quit_when_stdin_closes():
        sys.stdin.read()
        GLib.idle_add(loop.quit)

    threading.Thread(target=quit_when_stdin_closes, daemon=True).start()
    loop.run()


if __name__ == "__main__":
    main()
