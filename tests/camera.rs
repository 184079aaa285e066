//! IP cameras over RTSP, recorded as users write it: a local camera
//! (`tests/camera/rtsp_camera.py`) serves live H.264/H.265 with AAC, Opus or PCMU;
//! `rtspsrc ! depay ! parse ! mediarecorder` keeps the camera's frames as they are in
//! MP4 and Matroska, and `uridecodebin uri=rtsp://...` (or H.264 into WebM) decodes
//! and encodes. Each file is judged by ffprobe and ffmpeg, and compared with
//! `ffmpeg -c copy` recording the same camera.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use gst::prelude::*;

/// Media each recording holds, in ms.
const RECORD_MS: u64 = 3000;
/// The camera's frame rate.
const FPS: u64 = 30;

/// `rtspsrc ... ! depay ! parse ! r.` for a mount named `VIDEO-AUDIO`, audio kept
/// (or decoded, for PCMU) as users write it.
fn kept_as_is(camera: &Camera, mount: &str, mime: &str, location: &Path, extra: &str) -> String {
    let (video, audio) = mount.split_once('-').unwrap_or((mount, ""));
    let video = match video {
        "h264" => "rtph264depay ! h264parse",
        "h265" => "rtph265depay ! h265parse",
        other => panic!("no video {other}"),
    };
    let audio = match audio {
        "aac" => "s. ! rtpmp4gdepay ! aacparse ! r.",
        "opus" => "s. ! rtpopusdepay ! r.",
        "pcmu" => "s. ! rtppcmudepay ! r.",
        _ => "",
    };
    format!(
        "rtspsrc location={} protocols=tcp name=s s. ! {video} ! r. {audio} \
         mediarecorder name=r mime-type={mime} location={} {extra}",
        camera.mount(mount),
        location.display()
    )
}

/// Records with `description` until the recorder's `duration` ends it.
fn record(description: &str) -> Running {
    let pipeline = launch(description);
    expect_eos(&pipeline, Duration::from_secs(20));
    pipeline
}

/// `ffmpeg -rtsp_transport tcp -i URL -t SECONDS -c copy` into `out`, in a child.
fn ffmpeg_copy(url: &str, out: &Path) -> std::process::Child {
    Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-rtsp_transport",
            "tcp",
            "-i",
            url,
        ])
        .args([
            "-t",
            &format!("{}", RECORD_MS as f64 / 1000.0),
            "-c",
            "copy",
        ])
        .arg(out)
        .spawn()
        .expect("ffmpeg runs")
}

fn wait_child(mut child: std::process::Child, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{what} failed: {status}");
            return;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not end within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Judges a file as a player and a post-processing tool would: the codecs and profiles
/// expected, ffmpeg decodes it without a word, and every stream's packets go strictly
/// forward. Returns the number of video frames.
fn judge(path: &Path, expected: &[&str]) -> usize {
    assert!(path.is_file(), "no {}", path.display());
    assert_eq!(ffprobe_streams(path), expected, "{}", path.display());
    let errors = ffmpeg_errors(path);
    assert!(errors.is_empty(), "{}: {errors}", path.display());
    let packets = ffprobe_packets(path);
    for stream in 0..expected.len() {
        let times: Vec<f64> = packets
            .iter()
            .filter(|p| p.stream == stream)
            .map(|p| p.dts.or(p.pts).expect("a packet with a time"))
            .collect();
        assert!(
            times.len() > 10,
            "{}: stream {stream} has {} packets",
            path.display(),
            times.len()
        );
        let back: Vec<_> = times.windows(2).filter(|w| w[1] <= w[0]).collect();
        assert!(
            back.is_empty(),
            "{}: stream {stream} has {} packets not after the one before: {:?}",
            path.display(),
            back.len(),
            &back[..back.len().min(5)]
        );
    }
    packets.iter().filter(|p| p.stream == 0).count()
}

/// Asserts a frame count is what `RECORD_MS` of the camera holds, and what ffmpeg
/// got recording the same camera for the same time, within 3 frames.
fn assert_frames(path: &Path, frames: usize, ffmpeg_frames: Option<usize>) {
    let expected = (RECORD_MS * FPS / 1000) as usize;
    assert!(
        frames.abs_diff(expected) <= 3,
        "{}: {frames} video frames, expected about {expected}",
        path.display()
    );
    if let Some(theirs) = ffmpeg_frames {
        assert!(
            frames.abs_diff(theirs) <= 3,
            "{}: {frames} video frames, ffmpeg -c copy got {theirs}",
            path.display()
        );
    }
}

fn video_packets(path: &Path) -> usize {
    ffprobe_packets(path)
        .iter()
        .filter(|p| p.stream == 0)
        .count()
}

#[test]
fn h264_and_aac_are_kept_as_they_are_in_mp4_and_matroska() {
    init();
    let dir = tmp_dir("camera-h264-aac");
    let camera = Camera::start(&[]);
    let theirs = dir.join("ffmpeg.mkv");
    let ffmpeg = ffmpeg_copy(&camera.mount("h264-aac"), &theirs);
    let mp4 = dir.join("cam.mp4");
    record(&kept_as_is(
        &camera,
        "h264-aac",
        "video/mp4",
        &mp4,
        &format!("duration={RECORD_MS}"),
    ));
    wait_child(ffmpeg, "ffmpeg -c copy");
    let expected = ["video,h264,Constrained Baseline", "audio,aac,LC"];
    let frames = judge(&mp4, &expected);
    assert_frames(&mp4, frames, Some(video_packets(&theirs)));
    let mkv = dir.join("cam.mkv");
    record(&kept_as_is(
        &camera,
        "h264-aac",
        "video/x-matroska",
        &mkv,
        &format!("duration={RECORD_MS}"),
    ));
    let frames = judge(&mkv, &expected);
    assert_frames(&mkv, frames, None);
}

#[test]
fn h265_and_opus_are_kept_as_they_are_in_mp4_and_matroska() {
    init();
    let dir = tmp_dir("camera-h265-opus");
    let camera = Camera::start(&[]);
    let theirs = dir.join("ffmpeg.mkv");
    let ffmpeg = ffmpeg_copy(&camera.mount("h265-opus"), &theirs);
    let mkv = dir.join("cam.mkv");
    record(&kept_as_is(
        &camera,
        "h265-opus",
        "video/x-matroska",
        &mkv,
        &format!("duration={RECORD_MS}"),
    ));
    wait_child(ffmpeg, "ffmpeg -c copy");
    let expected = ["video,hevc,Main", "audio,opus,unknown"];
    let frames = judge(&mkv, &expected);
    assert_frames(&mkv, frames, Some(video_packets(&theirs)));
    let mp4 = dir.join("cam.mp4");
    record(&kept_as_is(
        &camera,
        "h265-opus",
        "video/mp4",
        &mp4,
        &format!("duration={RECORD_MS}"),
    ));
    let frames = judge(&mp4, &expected);
    assert_frames(&mp4, frames, None);
}
