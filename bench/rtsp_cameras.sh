#!/usr/bin/env bash
# Cameras over RTSP kept as they are: N clients of one local RTSP camera
# (tests/camera/rtsp_camera.py --shared: 1080p30 H.264 at 800 kbit/s, a keyframe every
# 2 s, + AAC) per tool, the tools one after the other, each client recording T seconds
# into fragmented MP4. Prints each tool's CPU (user+sys of the whole client process,
# start-up included, per recorded second: median client) and the video packets its
# files hold. The camera's own encoding runs in the server process and is not counted.
#
#   bench/rtsp_cameras.sh               # N=16, T=30, tools: source hand element ffmpeg
#   N=4 T=10 TOOLS="element ffmpeg" bench/rtsp_cameras.sh
#
# source = rtspsrc and the depayloaders into fakesink: what any GStreamer recorder of
# an RTSP camera pays before it records anything. Needs gir1.2-gst-rtsp-server-1.0
# (scripts/setup.sh installs it) and ffmpeg.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-16} T=${T:-30} TOOLS=${TOOLS:-source hand element ffmpeg}
cargo build --release --quiet
export GST_PLUGIN_PATH=$PWD/target/release
out=$(mktemp -d /tmp/rtsp-cameras.XXXXXX)
trap 'kill "$camera_pid" 2>/dev/null; rm -rf "$out"' EXIT
coproc CAMERA { exec /usr/bin/python3 tests/camera/rtsp_camera.py --shared --size 1920x1080 --keyframes 60; }
camera_pid=$CAMERA_PID
read -r url <&"${CAMERA[0]}"
url=${url}h264-aac
echo "camera $url; $N clients per tool, $T s each"
sleep 2

record() { # tool index
    local file=$out/$1-$2.mp4 rtsp="rtspsrc location=$url protocols=tcp name=s"
    local gst=(timeout -s INT $((T + 1)) gst-launch-1.0 -q -e)
    case $1 in
    ffmpeg) timeout -s INT $((T + 5)) ffmpeg -nostdin -loglevel error -rtsp_transport tcp -i "$url" -t "$T" -c copy \
        -movflags +frag_keyframe+empty_moov -y "$file" ;;
    element) "${gst[@]}" $rtsp s. ! rtph264depay ! h264parse ! r. s. ! rtpmp4gdepay ! aacparse ! r. \
        mediarecorder name=r mime-type=video/mp4 location="$file" ;;
    hand) "${gst[@]}" $rtsp s. ! rtph264depay ! h264parse ! mp4mux fragment-duration=2000 name=m \
        ! filesink location="$file" s. ! rtpmp4gdepay ! aacparse ! m. ;;
    source) "${gst[@]}" $rtsp s. ! rtph264depay ! fakesink s. ! rtpmp4gdepay ! fakesink ;;
    esac
}
export -f record
export url out T

for tool in $TOOLS; do
    pids=()
    for i in $(seq 1 "$N"); do
        /usr/bin/time -f "%U %S" -o "$out/$tool-$i.t" bash -c "record $tool $i" >/dev/null 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    python3 - "$out" "$tool" "$T" <<'PY'
import glob, subprocess, sys
out, tool, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
cpu = sorted(sum(map(float, open(f).read().split()[-2:])) / seconds
             for f in glob.glob(f"{out}/{tool}-*.t"))
packets = []
for f in glob.glob(f"{out}/{tool}-*.mp4"):
    r = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v",
                        "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", f],
                       capture_output=True, text=True).stdout.strip()
    packets.append(int(r or 0))
span = f"{min(packets)}-{max(packets)}" if packets else "- (no file)"
print(f"{tool:8} CPU s per s {cpu[len(cpu) // 2]:.4f} (range {cpu[0]:.4f}-{cpu[-1]:.4f}); "
      f"video packets {span}")
PY
done
