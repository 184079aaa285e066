//! Streams as network cameras and phones deliver them: timestamps that step back and
//! forward, audio that starts before the video, a video stream that shows up late, and
//! pictures to be turned upright.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use gst::prelude::*;

/// The video packets' presentation times in ms, in file order, as ffprobe reads them.
fn video_packet_times(path: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs (scripts/setup.sh installs ffmpeg)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .map(|s| s * 1000.0)
        .collect()
}

/// Shifts every buffer leaving `element` by `shift(n)` ms (n counts from 0), PTS and
/// DTS alike, as rtpbin does when it lines audio and video up.
fn shift_leaving(element: &gst::Element, shift: impl Fn(u64) -> i64 + Send + Sync + 'static) {
    let seen = std::sync::atomic::AtomicU64::new(0);
    element
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let by = shift(n) * MS as i64;
            if let Some(buffer) = info.buffer_mut() {
                let b = buffer.make_mut();
                let moved = |t: gst::ClockTime| {
                    gst::ClockTime::from_nseconds((t.nseconds() as i64 + by).max(0) as u64)
                };
                if let Some(pts) = b.pts() {
                    b.set_pts(moved(pts));
                }
                if let Some(dts) = b.dts() {
                    b.set_dts(moved(dts));
                }
            }
            gst::PadProbeReturn::Ok
        });
}

/// rtpbin lining up a camera's audio and video: back 42 ms, then forward 141 ms.
fn lined_up(n: u64) -> i64 {
    match n {
        0..100 => 10_000,
        100..200 => 10_000 - 42,
        _ => 10_000 + 99,
    }
}

#[test]
fn video_lined_up_back_and_forward_keeps_every_frame() {
    init();
    let dir = tmp_dir("lined_up");
    // Raw frames re-encoded, and an H.264 camera's frames kept as they are.
    for (name, encode) in [
        ("raw", ""),
        (
            "h264",
            "x264enc tune=zerolatency key-int-max=30 ! h264parse !",
        ),
    ] {
        let path = dir.join(format!("{name}.mp4"));
        let p = launch(&format!(
            "videotestsrc num-buffers=300 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
             identity name=shift ! {encode} \
             mediarecorder name=r mime-type=video/mp4 location={}",
            path.display()
        ));
        shift_leaving(&p.by_name("shift").unwrap(), lined_up);
        expect_eos(&p, Duration::from_secs(30));
        let dropped = recorder(&p).property::<u64>("frames-dropped");
        drop(p);
        let times = video_packet_times(&path);
        assert_eq!(times.len(), 300, "{name}: every frame is in the file");
        assert_eq!(dropped, 0, "{name}");
        // Each frame has a frame's time of its own: a player at 30 fps shows them all.
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] > 30.0, "{name}: frames at {pair:?} ms");
        }
        let warnings = ffmpeg_warnings(&path);
        assert!(warnings.is_empty(), "{name}: {warnings}");
    }
}
