//! Streams as network cameras and phones deliver them: timestamps that step back and
//! forward, audio that starts before the video, a video stream that shows up late, and
//! pictures to be turned upright.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use gst::prelude::*;

/// The video packets' presentation times in ms, in file order, as ffprobe reads them.
fn video_packet_times(path: &Path) -> Vec<f64> {
    ffprobe_csv(path, "-select_streams v:0 -show_entries packet=pts_time")
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .map(|s| s * 1000.0)
        .collect()
}

/// Shifts every buffer leaving `element` by `shift(n)` ms (n counts from 0), PTS and
/// DTS alike, as rtpbin does when it lines audio and video up.
fn shift_leaving(element: &gst::Element, shift: impl Fn(u64) -> i64 + Send + Sync + 'static) {
    change_leaving(element, move |n, b| {
        let by = shift(n) * MS as i64;
        let moved = |t: gst::ClockTime| {
            gst::ClockTime::from_nseconds((t.nseconds() as i64 + by).max(0) as u64)
        };
        if let Some(pts) = b.pts() {
            b.set_pts(moved(pts));
        }
        if let Some(dts) = b.dts() {
            b.set_dts(moved(dts));
        }
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
    // Raw frames re-encoded, and an H.264 camera's frames kept as they are, as an RTP
    // depayloader gives them: without durations.
    let h264 = "x264enc tune=zerolatency key-int-max=30 ! h264parse ! identity name=rtp !";
    for (name, encode) in [("raw", ""), ("h264", h264)] {
        let path = dir.join(format!("{name}.mp4"));
        let p = launch(&format!(
            "videotestsrc num-buffers=300 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
             identity name=shift ! {encode} \
             mediarecorder name=r mime-type=video/mp4 location={}",
            path.display()
        ));
        shift_leaving(&p.by_name("shift").unwrap(), lined_up);
        if let Some(rtp) = p.by_name("rtp") {
            change_leaving(&rtp, |_, buffer| buffer.set_duration(gst::ClockTime::NONE));
        }
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

/// Plays until EOS or an error, collecting the warnings posted on the way.
fn play_warned(pipeline: &gst::Pipeline, timeout: Duration) -> (End, Vec<String>) {
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut warnings = Vec::new();
    let end = wait_end(pipeline, timeout, |msg| {
        if let gst::MessageView::Warning(w) = msg.view() {
            warnings.push(w.error().to_string());
        }
    });
    (end, warnings)
}

/// Each stream's "type,start" (s) and the file's duration (s), as ffprobe reads them.
fn stream_starts(path: &Path) -> (Vec<(String, f64)>, f64) {
    let out = ffprobe(
        path,
        "-show_entries stream=codec_type,start_time:format=duration -of default=nw=1",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut streams = Vec::new();
    let mut kind = String::new();
    let mut duration = 0.0;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("codec_type", k)) => kind = k.to_string(),
            Some(("start_time", t)) => streams.push((kind.clone(), t.parse().unwrap_or(-1.0))),
            Some(("duration", d)) => duration = d.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    (streams, duration)
}

#[test]
fn a_file_whose_video_starts_late_keeps_its_audio() {
    init();
    let dir = tmp_dir("video_starts_late");
    // 6 s of audio; video from 2 s to 6 s, as a phone or an ffmpeg cut leaves it.
    let input = dir.join("late.mp4");
    let p = launch(&format!(
        "videotestsrc num-buffers=120 timestamp-offset=2000000000 ! \
         video/x-raw,width=160,height=120,framerate=30/1 ! x264enc ! mp4mux name=m ! \
         filesink location={} \
         audiotestsrc num-buffers=60 samplesperbuffer=4800 ! audio/x-raw,rate=48000 ! \
         avenc_aac ! m.",
        input.display()
    ));
    expect_eos(&p, Duration::from_secs(20));
    drop(p);
    for (mime, ext) in [("video/webm", "webm"), ("video/mp4", "mp4")] {
        let path = dir.join(format!("out.{ext}"));
        let p = launch(&format!(
            "filesrc location={} ! decodebin name=d d. ! queue ! r. d. ! queue ! r. \
             mediarecorder name=r mime-type={mime} location={}",
            input.display(),
            path.display()
        ));
        let (end, warnings) = play_warned(&p, Duration::from_secs(30));
        assert!(matches!(end, End::Eos(_)), "{ext}: {end:?}");
        drop(p);
        let (streams, duration) = stream_starts(&path);
        let start = |kind: &str| {
            streams
                .iter()
                .find(|(k, _)| k == kind)
                .map(|(_, t)| *t)
                .unwrap_or_else(|| panic!("{ext}: no {kind} in {streams:?}"))
        };
        let left_out: Vec<&String> = warnings.iter().filter(|w| w.contains("left out")).collect();
        if ext == "webm" {
            // Kept, as ffmpeg keeps it: the video track starts at 2 s.
            assert!((duration - 6.0).abs() < 0.1, "{ext}: {duration} s");
            assert!(start("audio").abs() < 0.05, "{ext}: {streams:?}");
            assert!((start("video") - 2.0).abs() < 0.05, "{ext}: {streams:?}");
            assert!(left_out.is_empty(), "{ext}: {left_out:?}");
        } else {
            // MP4 (fragmented, as mp4mux writes it) starts its tracks together: the
            // audio before the picture is left out, and a warning says how much.
            assert!((duration - 4.0).abs() < 0.1, "{ext}: {duration} s");
            assert_eq!(left_out.len(), 1, "{ext}: {warnings:?}");
            let ms: u64 = left_out[0]
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            assert!((1900..=2000).contains(&ms), "{ext}: {left_out:?}");
        }
    }
}

/// A live microphone recorded from the start, and a camera branch (`queue ! r.`, as
/// `uridecodebin`'s decoded pad is linked) whose source shows up `delay` later, as a
/// network camera's decoded video does; ended with EOS at 5.5 s. Returns how the run
/// ended and its warnings.
fn camera_shows_up_late(path: &Path, delay: Duration) -> (End, Vec<String>) {
    let p = launch(&format!(
        "mediarecorder name=r location={} \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000 ! r.audio_0 \
         queue name=q ! r.video_1",
        path.display()
    ));
    let pipeline = p.0.clone();
    let feeder = std::thread::spawn(move || {
        std::thread::sleep(delay);
        let camera = gst::parse::bin_from_description(
            "videotestsrc is-live=true ! \
             capsfilter caps=video/x-raw,width=160,height=120,framerate=30/1",
            true,
        )
        .unwrap();
        pipeline.add(&camera).unwrap();
        camera.link(&pipeline.by_name("q").unwrap()).unwrap();
        camera.sync_state_with_parent().unwrap();
        std::thread::sleep(Duration::from_millis(5_500).saturating_sub(delay));
        pipeline.send_event(gst::event::Eos::new());
    });
    let ended = play_warned(&p, Duration::from_secs(20));
    feeder.join().unwrap();
    ended
}

#[test]
fn a_camera_slower_to_start_than_its_microphone_is_recorded() {
    init();
    let dir = tmp_dir("late_camera");
    let slow = dir.join("slow.webm");
    let too_late = dir.join("too_late.webm");
    // Both at once: each is mostly waiting.
    let (slow_run, too_late_run) = std::thread::scope(|s| {
        let a = s.spawn(|| camera_shows_up_late(&slow, Duration::from_millis(1_500)));
        let b = s.spawn(|| camera_shows_up_late(&too_late, Duration::from_millis(4_000)));
        (a.join().unwrap(), b.join().unwrap())
    });

    // 1.5 s late: waited for, and recorded.
    let (end, warnings) = slow_run;
    assert!(matches!(end, End::Eos(_)), "{end:?}");
    assert!(
        !warnings.iter().any(|w| w.contains("video_1")),
        "{warnings:?}"
    );
    let d = decode(&slow);
    assert!(d.frames() >= 90, "{} video frames", d.frames());
    assert!(
        d.audio_duration() >= 3_500 * MS,
        "{} ns of audio",
        d.audio_duration()
    );

    // Later than a live recording waits (3 s): recorded without it, said by name, and
    // the camera that comes after gets no error.
    let (end, warnings) = too_late_run;
    assert!(matches!(end, End::Eos(_)), "{end:?}");
    assert!(
        warnings.iter().any(|w| w.contains("video_1")),
        "{warnings:?}"
    );
    let d = decode(&too_late);
    assert_eq!(d.frames(), 0);
    assert!(
        d.audio_duration() >= 5_000 * MS,
        "{} ns of audio",
        d.audio_duration()
    );
}

/// Writes a 90° display matrix into the first track header of an MP4 file, as a phone
/// held upright writes its landscape sensor's frames (GStreamer 1.22's mp4mux writes
/// none from an `image-orientation` tag).
fn turn_mp4_by_90(path: &Path) {
    let mut data = std::fs::read(path).unwrap();
    let tkhd = data
        .windows(4)
        .position(|w| w == b"tkhd")
        .expect("the file has a track header");
    // After the box type: version and flags, then (version 0) creation, modification,
    // track id, reserved, duration (4 bytes each), 8 reserved, layer, group, volume,
    // reserved (2 each): the 3x3 matrix follows.
    assert_eq!(data[tkhd + 4], 0, "a version 0 track header");
    let matrix = tkhd + 4 + 4 + 5 * 4 + 8 + 4 * 2;
    let values: [u32; 9] = [0, 0x0001_0000, 0, 0xFFFF_0000, 0, 0, 0, 0, 0x4000_0000];
    for (i, v) in values.iter().enumerate() {
        data[matrix + 4 * i..matrix + 4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    std::fs::write(path, data).unwrap();
}

/// The video's stored size and the rotation a player applies (ffprobe's display
/// matrix side data, 0 without one).
fn video_geometry(path: &Path) -> (u32, u32, i32) {
    let out = ffprobe(path, "-select_streams v:0 -show_streams");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    (
        field("width").unwrap_or(0.0) as u32,
        field("height").unwrap_or(0.0) as u32,
        field("rotation").unwrap_or(0.0) as i32,
    )
}

/// The size a player shows: the stored size, turned by the display matrix.
fn shown_size(path: &Path) -> (u32, u32) {
    let (w, h, rotation) = video_geometry(path);
    if rotation.rem_euclid(180) == 90 {
        (h, w)
    } else {
        (w, h)
    }
}

#[test]
fn a_phone_video_held_upright_is_recorded_upright() {
    init();
    let dir = tmp_dir("phone_upright");
    // A phone's portrait video: 320x180 frames with a 90° display matrix.
    let phone = dir.join("phone.mp4");
    let p = launch(&format!(
        "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=180,framerate=30/1 ! \
         x264enc ! mp4mux ! filesink location={}",
        phone.display()
    ));
    expect_eos(&p, Duration::from_secs(20));
    drop(p);
    turn_mp4_by_90(&phone);
    assert_eq!(
        video_geometry(&phone),
        (320, 180, -90),
        "the input as phones write it"
    );
    assert_eq!(shown_size(&phone), (180, 320));

    // Re-encoded (VP8 into WebM: Matroska cannot say it is turned), and H.264 kept as
    // it is in MP4, with the phone's display matrix.
    for (input, mime, ext) in [
        ("decodebin", "video/webm", "webm"),
        ("qtdemux ! h264parse", "video/mp4", "mp4"),
    ] {
        let path = dir.join(format!("upright.{ext}"));
        let p = launch(&format!(
            "filesrc location={} ! {input} ! mediarecorder name=r mime-type={mime} \
             location={}",
            phone.display(),
            path.display()
        ));
        expect_eos(&p, Duration::from_secs(20));
        let reencoded = element_inside(&recorder(&p), "x264enc").is_some();
        drop(p);
        assert_eq!(shown_size(&path), (180, 320), "{ext}: shown upright");
        assert_eq!(ffprobe_frames(&path), 30, "{ext}");
        if ext == "mp4" {
            // Kept as it is: the frames as the phone stored them, and its matrix.
            assert_eq!(video_geometry(&path), (320, 180, -90));
            assert!(!reencoded, "kept as it is");
        }
    }
}
