//! Never lose a recording: kills, write failures, bad input, changing sources,
//! many start/stop cycles.

mod common;

use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

/// Waits for a line that `wanted` accepts; kills the child and fails the test when
/// none comes within `timeout`.
fn wait_for_line(
    child: &mut Child,
    lines: &mpsc::Receiver<String>,
    what: &str,
    timeout: Duration,
    wanted: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if wanted(&line) => return,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "gst-launch-1.0 printed no {what} within {timeout:?}; the last lines: {:?}",
        &seen[seen.len().saturating_sub(5)..]
    );
}

#[test]
fn sigkill_loses_at_most_about_a_second() {
    init();
    let dir = tmp_dir("sigkill");
    let path = dir.join("killed.webm");
    let (mut child, lines) = spawn_reading_lines(
        with_plugin_env(&mut Command::new("gst-launch-1.0"))
            .args(["videotestsrc", "is-live=true", "!"])
            .arg("video/x-raw,width=320,height=240,framerate=30/1")
            .args(["!", "mediarecorder"])
            .arg(format!("location={}", path.display())),
    );
    // The clock starts when the pipeline does, not when the process does (loading
    // the plugin registry takes its own time).
    wait_for_line(
        &mut child,
        &lines,
        "'Setting pipeline to PLAYING'",
        Duration::from_secs(20),
        |l| l.contains("Setting pipeline to PLAYING"),
    );
    // The moment of the kill is the test's input.
    std::thread::sleep(Duration::from_millis(3500));
    child.kill().unwrap();
    child.wait().unwrap();
    // The file was written cluster by cluster: all but the last second or so plays.
    let index = webm_index_of(&path);
    let keyframes = index.blocks.iter().filter(|b| b.2).count();
    assert!(keyframes >= 1);
    let last_ms = index.blocks.last().map(|b| b.0).unwrap_or(0);
    assert!(last_ms >= 1900, "only {last_ms} ms on disk after 3.5 s");
}

#[test]
fn disk_full_is_an_error_naming_the_path() {
    init();
    let p = launch(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         mediarecorder name=r location=/dev/full",
    );
    let (events, _) = Events::watch(&recorder(&p));
    let start = Instant::now();
    let msg = expect_error(&p, Duration::from_secs(10));
    assert_says(&msg, &["/dev/full"]);
    assert!(msg.to_lowercase().contains("space"), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(events.wait_for("stop", 1, Duration::from_secs(5)));
    assert_eq!(events.names(), ["start", "error", "dataavailable", "stop"]);
}

#[test]
fn directory_as_location_fails_before_data_flows() {
    init();
    let dir = tmp_dir("dir_location");
    let p = launch(&format!(
        "videotestsrc is-live=true ! mediarecorder name=r location={}",
        dir.display()
    ));
    assert_says(
        &expect_error(&p, Duration::from_secs(5)),
        &[dir.to_str().unwrap(), "Is a directory"],
    );
}

#[test]
fn location_cannot_change_while_recording() {
    init();
    let dir = tmp_dir("location_change");
    let first = dir.join("first.webm");
    let p = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         mediarecorder name=r duration=1500 location={}",
        first.display()
    ));
    let r = recorder(&p);
    let (events, _) = Events::watch(&r);
    p.set_state(gst::State::Playing).unwrap();
    assert!(events.wait_for("start", 1, Duration::from_secs(5)));
    r.set_property("location", dir.join("second.webm").to_str().unwrap());
    assert_eq!(
        r.property::<Option<String>>("location").as_deref(),
        first.to_str()
    );
    assert!(matches!(
        wait_message(&p, Duration::from_secs(10)),
        End::Eos(_)
    ));
    drop(p);
    assert_eq!(decode(&first).frames(), 45);
    assert!(!dir.join("second.webm").exists());
}

#[test]
fn audio_into_a_video_only_type_is_refused() {
    init();
    let dir = tmp_dir("audio_video_only");
    let p = launch(&format!(
        "audiotestsrc is-live=true ! mediarecorder name=r mime-type=video/webm;codecs=vp8 \
         location={}",
        dir.join("x.webm").display()
    ));
    assert_says(
        &expect_error(&p, Duration::from_secs(5)),
        &["records no audio"],
    );
}

#[test]
fn duration_range_keeps_nanoseconds_in_range() {
    init();
    let r = gst::ElementFactory::make("mediarecorder").build().unwrap();
    let pspec = r.find_property("duration").unwrap();
    let pspec = pspec.downcast_ref::<gst::glib::ParamSpecUInt64>().unwrap();
    // Milliseconds that would overflow nanoseconds are out of range.
    assert!(pspec.maximum() <= u64::MAX / 1_000_000);
}

/// Feeds raw frames from the test: what no `videotestsrc` does.
struct Feeder {
    src: gst_app::AppSrc,
}

impl Feeder {
    /// Ends the stream and waits for the recording to end with it.
    fn finish(&self, pipeline: &gst::Pipeline) {
        self.src.end_of_stream().unwrap();
        let end = wait_message(pipeline, Duration::from_secs(10));
        assert!(matches!(end, End::Eos(_)), "{end:?}");
    }

    fn frame(&self, width: i32, height: i32, pts: Option<gst::ClockTime>) {
        self.frame_at_rate(width, height, 30, pts)
    }

    /// `count` 30 fps frames without timestamps, pushed as one buffer list.
    fn list_without_times(&self, width: i32, height: i32, count: usize) {
        let size = self.i420(width, height, 30);
        let mut list = gst::BufferList::new_sized(count);
        for _ in 0..count {
            let mut buffer = gst::Buffer::from_mut_slice(vec![128u8; size]);
            buffer
                .get_mut()
                .unwrap()
                .set_duration(gst::ClockTime::from_nseconds(33_333_333));
            list.get_mut().unwrap().add(buffer);
        }
        self.src.push_buffer_list(list).unwrap();
    }

    /// Sets I420 caps of this size and rate (when they change); returns a frame's size.
    fn i420(&self, width: i32, height: i32, fps: i32) -> usize {
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", width)
            .field("height", height)
            .field("framerate", gst::Fraction::new(fps, 1))
            .build();
        if self.src.caps().as_ref() != Some(&caps) {
            self.src.set_caps(Some(&caps));
        }
        (width * height * 3 / 2) as usize
    }

    fn frame_at_rate(&self, width: i32, height: i32, fps: i32, pts: Option<gst::ClockTime>) {
        let size = self.i420(width, height, fps);
        let mut buffer = gst::Buffer::from_mut_slice(vec![128u8; size]);
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(pts);
            b.set_duration(gst::ClockTime::from_nseconds(1_000_000_000 / fps as u64));
        }
        self.src.push_buffer(buffer).unwrap();
    }
}

fn feeder_pipeline(path: &std::path::Path, extra: &str) -> (Running, Feeder) {
    let p = launch(&format!(
        "appsrc name=src format=time ! mediarecorder name=r {extra} location={}",
        path.display()
    ));
    let src = app_src(&p, "src");
    p.set_state(gst::State::Playing).unwrap();
    (p, Feeder { src })
}

#[test]
fn timestamps_far_from_zero_start_the_file_at_zero() {
    init();
    let dir = tmp_dir("far_timestamps");
    let path = dir.join("far.webm");
    let (p, feed) = feeder_pipeline(&path, "");
    let base = gst::ClockTime::from_seconds(3600);
    for i in 0..30u64 {
        feed.frame(
            320,
            240,
            Some(base + gst::ClockTime::from_nseconds(i * 33_333_333)),
        );
    }
    feed.finish(&p);
    drop(p);
    let d = decode(&path);
    assert_eq!(d.frames(), 30);
    assert_eq!(d.video_pts[0], 0);
}

#[test]
fn frames_without_timestamps_are_recorded() {
    init();
    let dir = tmp_dir("no_timestamps");
    let path = dir.join("nots.webm");
    let (p, feed) = feeder_pipeline(&path, "");
    for _ in 0..20 {
        feed.frame(320, 240, None);
        // Frames without times are stamped as they arrive: their pace is the input.
        std::thread::sleep(Duration::from_millis(33));
    }
    feed.finish(&p);
    drop(p);
    let d = decode(&path);
    assert!(d.frames() >= 18, "{} frames", d.frames());
}

/// The same in buffer lists, as some sources push frames: each frame of a list is
/// stamped, one after the other at its duration. (Stamped in a buffer probe, frames in
/// lists went on without times and were stamped later, bunched where each list came.)
#[test]
fn frames_without_timestamps_in_buffer_lists_are_recorded() {
    init();
    let dir = tmp_dir("no_timestamps_lists");
    let path = dir.join("nots-lists.webm");
    let (p, feed) = feeder_pipeline(&path, "");
    for _ in 0..6 {
        feed.list_without_times(320, 240, 4);
        std::thread::sleep(Duration::from_millis(133));
    }
    feed.finish(&p);
    drop(p);
    let d = decode(&path);
    assert!(d.frames() >= 22, "{} frames", d.frames());
    // A frame's duration apart, not bunched where the list arrived.
    for pair in d.video_pts.windows(2) {
        assert!(pair[1] >= pair[0] + 30 * MS, "{:?}", d.video_pts);
    }
}

#[test]
fn a_size_change_is_scaled_to_the_first_size() {
    init();
    let dir = tmp_dir("size_change");
    let path = dir.join("resized.webm");
    let (p, feed) = feeder_pipeline(&path, "");
    for i in 0..60u64 {
        let (w, h) = if i < 30 { (320, 240) } else { (640, 360) };
        feed.frame(w, h, Some(gst::ClockTime::from_nseconds(i * 33_333_333)));
    }
    feed.finish(&p);
    drop(p);
    let d = decode(&path);
    assert_eq!(d.frames(), 60);
    assert_eq!(d.video_size, Some((320, 240)));
}

#[test]
fn hundreds_of_cycles_without_deadlock() {
    init();
    let dir = tmp_dir("cycles");
    let path = dir.join("cycle.webm");
    let p = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! \
         mediarecorder name=r autostart=false location={} \
         audiotestsrc is-live=true ! r.",
        path.display()
    ));
    let r = recorder(&p);
    let (events, _) = Events::watch(&r);
    p.set_state(gst::State::Playing).unwrap();
    let start = Instant::now();
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let r = r.clone();
            let started = started.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    if r.emit_by_name::<bool>("start-recording", &[]) {
                        started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    r.emit_by_name::<bool>("pause-recording", &[]);
                    r.emit_by_name::<bool>("request-data", &[]);
                    r.emit_by_name::<bool>("resume-recording", &[]);
                    let _ = r.property::<u64>("bytes-written");
                    r.emit_by_name::<bool>("stop-recording", &[]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
    // Every recording that started also stopped, in order.
    let starts = started.load(std::sync::atomic::Ordering::SeqCst);
    assert!(starts >= 50, "{starts} recordings");
    assert!(events.wait_for("start", starts, Duration::from_secs(30)));
    assert_eq!(
        events.names().iter().filter(|n| *n == "start").count(),
        starts
    );
    assert!(events.wait_for("stop", starts, Duration::from_secs(30)));
    let names = events.names();
    let mut open = false;
    for n in &names {
        match n.as_str() {
            "start" => {
                assert!(!open, "start inside a recording: {names:?}");
                open = true;
            }
            "stop" => {
                assert!(open, "stop outside a recording");
                open = false;
            }
            _ => {}
        }
    }
    // The element still records normally afterwards.
    let media = MediaCount::start(&r);
    assert!(r.emit_by_name::<bool>("start-recording", &[]));
    media.wait_recorded(1500 * MS, Duration::from_secs(15));
    drop(media);
    assert!(r.emit_by_name::<bool>("stop-recording", &[]));
    assert!(events.wait_for("stop", starts + 1, Duration::from_secs(10)));
    drop(p);
    let d = decode(&path);
    assert!(d.frames() >= 30, "{} frames", d.frames());
    assert!(duration_ms(&path) > 1000.0);
}

#[test]
fn a_frame_rate_change_goes_on_recording() {
    init();
    let dir = tmp_dir("rate_change");
    let path = dir.join("rate.webm");
    let (p, feed) = feeder_pipeline(&path, "");
    let mut t = 0u64;
    for i in 0..45u64 {
        let fps = if i < 30 { 30 } else { 15 };
        feed.frame_at_rate(320, 240, fps, Some(gst::ClockTime::from_nseconds(t)));
        t += 1_000_000_000 / fps as u64;
    }
    feed.finish(&p);
    drop(p);
    let d = decode(&path);
    assert_eq!(d.frames(), 45);
    let duration = duration_ms(&path);
    assert!((duration - 2000.0).abs() < 70.0, "duration {duration}");
}

#[test]
fn an_upstream_flushing_seek_keeps_the_file_whole() {
    init();
    let dir = tmp_dir("flushing_seek");
    let path = dir.join("seek.webm");
    let p = launch(&format!(
        "videotestsrc ! video/x-raw,width=320,height=240,framerate=30/1 ! clocksync ! \
         mediarecorder name=r location={}",
        path.display()
    ));
    let r = recorder(&p);
    let media = MediaCount::start(&r);
    p.set_state(gst::State::Playing).unwrap();
    media.wait_recorded(1500 * MS, Duration::from_secs(15));
    drop(media);
    p.seek_simple(gst::SeekFlags::FLUSH, gst::ClockTime::ZERO)
        .expect("videotestsrc seeks");
    wait_flowed(&r, 1500 * MS, Duration::from_secs(15));
    p.set_state(gst::State::Null).unwrap();
    drop(p);
    let d = decode(&path);
    assert!(d.frames() >= 70, "{} frames", d.frames());
    for pair in d.video_pts.windows(2) {
        let step = pair[1] as i64 - pair[0] as i64;
        assert!(step > 0 && step < 80_000_000, "timestamps jump {pair:?}");
    }
    assert!(duration_ms(&path) > 2300.0);
}

#[test]
fn ctrl_c_without_eos_leaves_a_finalized_file() {
    init();
    let dir = tmp_dir("sigint");
    let path = dir.join("interrupted.webm");
    let (mut child, lines) = spawn_reading_lines(
        with_plugin_env(&mut Command::new("gst-launch-1.0"))
            .args(["-m", "mediarecorder", "name=r"])
            .arg(format!("location={}", path.display()))
            .args(["videotestsrc", "is-live=true", "!"])
            .arg("video/x-raw,width=320,height=240,framerate=30/1")
            .args(["!", "r.", "audiotestsrc", "is-live=true", "!", "r."]),
    );
    // Interrupted once 2 s are recorded: the progress message says so.
    wait_for_line(
        &mut child,
        &lines,
        "mediarecorder-progress with 2 s recorded",
        Duration::from_secs(20),
        |l| recorded_in_progress(l).is_some_and(|ns| ns >= 2_000_000_000),
    );
    let interrupted = Instant::now();
    send_sigint(child.id());
    let status = child.wait().unwrap();
    assert!(
        interrupted.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        interrupted.elapsed()
    );
    assert!(status.code().is_some(), "gst-launch-1.0 died: {status:?}");
    let index = webm_index_of(&path);
    let duration = index.duration_ms.expect("finalized: Duration written");
    assert!(duration > 1800.0, "duration {duration}");
    assert!(!index.cue_times_ms.is_empty(), "finalized: Cues written");
    assert!(decode(&path).frames() as f64 >= duration / 1000.0 * 30.0 - 2.0);
}

/// The `recorded` of a `mediarecorder-progress` message as `gst-launch-1.0 -m` prints it.
fn recorded_in_progress(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once("mediarecorder-progress")?;
    let (_, value) = rest.split_once("recorded=(guint64)")?;
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Sends SIGINT, as Ctrl+C in a terminal does.
fn send_sigint(pid: u32) {
    // The shell's own kill, so no procps package is needed.
    let status = Command::new("sh")
        .args(["-c", &format!("kill -INT {pid}")])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_codec_change_mid_recording_is_re_encoded() {
    init();
    let dir = tmp_dir("codec_change");
    let path = dir.join("switch.webm");
    let caps = "video/x-raw,width=320,height=240,framerate=30/1";
    let p = launch(&format!(
        "input-selector name=s ! mediarecorder name=r location={} \
         videotestsrc is-live=true ! {caps} ! vp8enc deadline=1 keyframe-max-dist=15 ! s.sink_0 \
         videotestsrc is-live=true pattern=ball ! {caps} ! vp9enc deadline=1 keyframe-max-dist=15 ! s.sink_1",
        path.display()
    ));
    let r = recorder(&p);
    let (events, _) = Events::watch(&r);
    let media = MediaCount::start(&r);
    p.set_state(gst::State::Playing).unwrap();
    media.wait_recorded(1200 * MS, Duration::from_secs(15));
    drop(media);
    let selector = p.by_name("s").unwrap();
    let second = selector.static_pad("sink_1").unwrap();
    selector.set_property("active-pad", &second);
    wait_flowed(&r, 1500 * MS, Duration::from_secs(15));
    assert_eq!(r.property::<String>("mime-type"), "video/webm;codecs=vp8");
    p.set_state(gst::State::Null).unwrap();
    assert!(
        !events.names().iter().any(|n| n == "error"),
        "{:?}",
        events.names()
    );
    drop(p);
    let d = decode(&path);
    assert!(d.frames() >= 70, "{} frames", d.frames());
    for pair in d.video_pts.windows(2) {
        assert!(pair[1] - pair[0] < 100 * MS, "gap {pair:?}");
    }
}

/// `secs` of live 320x240@30 video (`v`) and 48 kHz audio in 20 ms buffers (`a`) into
/// a recorder writing `path`, not started.
fn live_av(path: &std::path::Path, secs: u32) -> Running {
    launch(&format!(
        "mediarecorder name=r location={} \
         videotestsrc name=v is-live=true num-buffers={} ! \
         video/x-raw,width=320,height=240,framerate=30/1 ! r. \
         audiotestsrc name=a is-live=true num-buffers={} samplesperbuffer=960 ! \
         audio/x-raw,rate=48000 ! r.",
        path.display(),
        secs * 30,
        secs * 50
    ))
}

/// Moves each buffer leaving `element` by up to `max_ms` either way, in a fixed
/// pseudo-random pattern, as USB cameras and capture cards stamp them.
fn add_jitter(element: &gst::Element, max_ms: i64, seed: u64) {
    restamp_leaving(element, move |n, pts| {
        let mixed = (seed ^ n)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let jitter = ((mixed >> 33) % (2 * max_ms as u64 + 1)) as i64 - max_ms;
        let moved = (pts.nseconds() as i64 + jitter * MS as i64).max(0);
        gst::ClockTime::from_nseconds(moved as u64)
    });
}

/// Gives the `n`th buffer leaving `element` (counted from 0) the PTS `change(n, pts)`.
fn restamp_leaving(
    element: &gst::Element,
    change: impl Fn(u64, gst::ClockTime) -> gst::ClockTime + Send + Sync + 'static,
) {
    change_leaving(element, move |n, b| {
        if let Some(pts) = b.pts() {
            b.set_pts(change(n, pts));
        }
    });
}

#[test]
fn jittered_live_timestamps_lose_nothing() {
    init();
    for (max_ms, seed) in [(10, 1), (20, 2)] {
        let dir = tmp_dir(&format!("jitter_{max_ms}"));
        let path = dir.join("jitter.webm");
        // 6 s of live media, stamped with +-max_ms of jitter.
        let p = live_av(&path, 6);
        add_jitter(&p.by_name("v").unwrap(), max_ms, seed);
        add_jitter(&p.by_name("a").unwrap(), max_ms, seed + 10);
        expect_eos(&p, Duration::from_secs(20));
        drop(p);
        let d = decode(&path);
        assert_eq!(d.frames(), 180, "+-{max_ms} ms: video frames");
        for pair in d.video_pts.windows(2) {
            assert!(pair[1] > pair[0], "+-{max_ms} ms: video goes back {pair:?}");
        }
        // Every sample: 6 s at 48 kHz, but for the encoder's own priming and the
        // half-packet the start may leave out.
        let samples = ffprobe_audio_samples(&path);
        assert!(
            (288_000 - 960..=288_000).contains(&samples),
            "+-{max_ms} ms: {samples} audio samples"
        );
        // Evenly spaced again: ffmpeg finds nothing to warn about. (At +-20 ms a frame
        // may keep its own time where the spacing drifts more than 3/4 of a frame, and
        // ffmpeg's constant-rate output then notes two frames in one 1/30 s slot.)
        if max_ms <= 10 {
            let warnings = ffmpeg_warnings(&path);
            assert!(warnings.is_empty(), "+-{max_ms} ms: {warnings}");
        }
    }
}

/// `ffprobe`'s view of each stream: "codec,width,height,channels".
fn probe_streams(path: &std::path::Path) -> Vec<String> {
    ffprobe_csv(
        path,
        "-show_entries stream=codec_name,width,height,channels",
    )
    .lines()
    .map(|l| l.trim_end_matches(',').to_string())
    .collect()
}

#[test]
fn pictures_outside_the_encoder_range_are_scaled_into_it() {
    init();
    let dir = tmp_dir("odd_sizes");
    for (w, h, expected) in [(8, 8, "vp8,16,16"), (20000, 64, "vp8,16383,52")] {
        let path = dir.join(format!("{w}x{h}.webm"));
        let p = launch(&format!(
            "videotestsrc num-buffers=10 ! video/x-raw,width={w},height={h} ! \
             mediarecorder name=r location={}",
            path.display()
        ));
        expect_eos(&p, Duration::from_secs(30));
        drop(p);
        assert_eq!(probe_streams(&path), [expected], "{w}x{h}");
        assert_eq!(decode(&path).frames(), 10, "{w}x{h}");
    }
}

#[test]
fn a_channel_count_change_keeps_the_track_format() {
    init();
    let dir = tmp_dir("channel_change");
    let path = dir.join("channels.webm");
    let p = launch(&format!(
        "audiotestsrc is-live=true ! capsfilter name=f caps=audio/x-raw,channels=2 ! \
         mediarecorder name=r duration=2000 location={}",
        path.display()
    ));
    let media = MediaCount::start(&recorder(&p));
    p.set_state(gst::State::Playing).unwrap();
    media.wait_recorded(800 * MS, Duration::from_secs(10));
    drop(media);
    // The source now delivers 8 channels: the track stays stereo.
    let eight = gst::Caps::builder("audio/x-raw")
        .field("channels", 8)
        .build();
    p.by_name("f").unwrap().set_property("caps", &eight);
    match wait_message(&p, Duration::from_secs(10)) {
        End::Eos(_) => {}
        other => panic!("expected EOS, got {other:?}"),
    }
    drop(p);
    assert_eq!(probe_streams(&path), ["opus,2"]);
    let samples = ffprobe_audio_samples(&path);
    assert!(
        (2 * 48_000 - 960..=2 * 48_000).contains(&samples),
        "{samples} samples"
    );
    let warnings = ffmpeg_warnings(&path);
    assert!(warnings.is_empty(), "{warnings}");
}

#[test]
fn compressed_input_is_re_encoded_to_the_codecs_asked_for() {
    init();
    let dir = tmp_dir("codecs_asked");
    let path = dir.join("vp9.webm");
    let p = launch(&format!(
        "mediarecorder name=r mime-type=video/webm;codecs=vp9,vorbis location={} \
         videotestsrc num-buffers=20 ! vp8enc ! r. audiotestsrc num-buffers=20 ! opusenc ! r.",
        path.display()
    ));
    expect_eos(&p, Duration::from_secs(30));
    drop(p);
    // VP8 and Opus arrived; the file holds what the type asked for.
    assert_eq!(probe_streams(&path), ["vp9,320,240", "vorbis,1"]);
    let d = decode(&path);
    assert_eq!(d.frames(), 20);
}

/// From the `after`th buffer on, stamps each buffer leaving `element` `back` earlier,
/// as a camera whose clock jumps back does (no flush, no new segment).
fn jump_back_after(element: &gst::Element, after: u64, back: gst::ClockTime) {
    restamp_leaving(element, move |n, pts| {
        if n >= after {
            pts.saturating_sub(back)
        } else {
            pts
        }
    });
}

#[test]
fn timestamps_that_jump_back_lose_nothing() {
    init();
    let dir = tmp_dir("jump_back");
    let path = dir.join("jump.webm");
    // 4 s of live media; after 1.5 s both streams' clocks jump back 2 s.
    let p = live_av(&path, 4);
    let back = gst::ClockTime::from_seconds(2);
    jump_back_after(&p.by_name("v").unwrap(), 45, back);
    jump_back_after(&p.by_name("a").unwrap(), 75, back);
    expect_eos(&p, Duration::from_secs(20));
    drop(p);
    let d = decode(&path);
    assert_eq!(d.frames(), 120);
    for pair in d.video_pts.windows(2) {
        assert!(pair[1] > pair[0] && pair[1] - pair[0] < 50 * MS, "{pair:?}");
    }
    let samples = ffprobe_audio_samples(&path);
    assert!(
        (192_000 - 960..=192_000).contains(&samples),
        "{samples} audio samples"
    );
    let duration = duration_ms(&path);
    assert!((duration - 4000.0).abs() <= 40.0, "duration {duration}");
}
