//! The MediaRecorder control API: actions, events and their states, pause and resume,
//! repeated recordings, timeslices, request-data, isTypeSupported, bitrates.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

const FRAME_NS: u64 = 33_333_333;
const FRAME_MS: f64 = 1000.0 / 30.0;
const EBML_HEADER: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];
const CLUSTER: [u8; 4] = [0x1F, 0x43, 0xB6, 0x75];

const VIDEO: &str = "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1";
const AUDIO: &str = "audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2";

/// Invokes an action signal and returns what it returned.
fn act(r: &gst::Element, action: &str) -> bool {
    r.emit_by_name::<bool>(action, &[])
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn wait_event(events: &Events, name: &str, count: usize) {
    if !events.wait_for(name, count, Duration::from_secs(10)) {
        let seen = events.with_states();
        panic!(
            "no {name} #{count}; {} events, the last: {:?}",
            seen.len(),
            &seen[seen.len().saturating_sub(8)..]
        );
    }
}

/// Waits for `stop` number `count`, then a little longer so that an event fired
/// after it (which must not be) is seen too.
fn wait_stop(events: &Events, count: usize) {
    wait_event(events, "stop", count);
    // A fixed quiet time: no event may follow, and nothing marks that none will.
    std::thread::sleep(Duration::from_millis(200));
}

/// Last decoded video frame's end, in ns.
fn video_end(d: &Decoded) -> u64 {
    d.video_pts.last().copied().expect("video frames decoded") + FRAME_NS
}

fn assert_contiguous(d: &Decoded) {
    assert_eq!(d.video_pts.first(), Some(&0), "video starts at 0");
    for w in d.video_pts.windows(2) {
        assert!(
            w[1] > w[0] && w[1] - w[0] <= 2 * FRAME_NS,
            "gap or disorder in video: {} ms -> {} ms",
            w[0] as f64 / MS as f64,
            w[1] as f64 / MS as f64
        );
    }
}

/// A recorder that waits for `start-recording` (`autostart=false`), writing to `path`
/// from `sources` (linked to `r.`), set playing and its events watched, once `flowed`
/// ns of media have gone into it.
fn armed(path: &Path, sources: &str, flowed: u64) -> (Running, gst::Element, Events) {
    let p = launch(&format!(
        "mediarecorder name=r autostart=false location={} {sources}",
        path.display()
    ));
    let r = recorder(&p);
    let (events, _chunks) = Events::watch(&r);
    p.set_state(gst::State::Playing).unwrap();
    wait_flowed(&r, flowed, Duration::from_secs(10));
    (p, r, events)
}

fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn timed_recording_fires_start_dataavailable_stop() {
    init();
    let dir = Scratch::new("timed_events");
    let path = dir.join("t.webm");
    let p = launch(&format!(
        "mediarecorder name=r duration=1500 location={} {VIDEO} ! r. {AUDIO} ! r.",
        path.display()
    ));
    let r = recorder(&p);
    let (events, chunks) = Events::watch(&r);
    expect_eos(&p, Duration::from_secs(10));
    assert_eq!(
        events.with_states(),
        pairs(&[
            ("start", "recording"),
            ("dataavailable", "inactive"),
            ("stop", "inactive"),
        ])
    );
    assert_eq!(state_of(&r), "inactive");
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(r.property::<u64>("bytes-written"), size);
    // The one chunk is the whole stream.
    let joined = chunks.joined();
    assert!(joined.starts_with(&EBML_HEADER));
    assert_eq!(
        webm_index(&joined).blocks.len(),
        webm_index_of(&path).blocks.len()
    );
    drop(p);
    let d = decode(&path);
    assert_eq!(d.frames(), 45);
    assert_contiguous(&d);
    let duration = duration_ms(&path);
    assert!((duration - 1500.0).abs() <= FRAME_MS, "duration {duration}");
}

#[test]
fn actions_follow_the_rules_in_every_state() {
    init();
    let dir = Scratch::new("actions");
    let path = dir.join("a.webm");
    let (p, r, events) = armed(&path, &format!("{VIDEO} ! r."), 300 * MS);

    // Inactive, with media flowing but autostart off.
    assert_eq!(state_of(&r), "inactive");
    assert!(!act(&r, "pause-recording"), "pause while inactive");
    assert!(!act(&r, "resume-recording"), "resume while inactive");
    assert!(!act(&r, "request-data"), "request-data while inactive");
    assert!(!act(&r, "stop-recording"), "stop while inactive");
    assert_eq!(state_of(&r), "inactive");

    let media = MediaCount::start(&r);
    assert!(act(&r, "start-recording"), "start while inactive");
    assert_eq!(state_of(&r), "recording", "state changes at once");
    media.wait_recorded(300 * MS, Duration::from_secs(10));
    drop(media);
    // Recording.
    assert!(!act(&r, "start-recording"), "start while recording");
    assert!(!act(&r, "resume-recording"), "resume while recording");
    assert_eq!(state_of(&r), "recording");
    assert!(act(&r, "request-data"), "request-data while recording");
    assert!(act(&r, "pause-recording"), "pause while recording");
    assert_eq!(state_of(&r), "paused");
    wait_event(&events, "pause", 1);
    // Paused.
    assert!(!act(&r, "start-recording"), "start while paused");
    assert!(!act(&r, "pause-recording"), "pause while paused");
    assert_eq!(state_of(&r), "paused");
    assert!(act(&r, "request-data"), "request-data while paused");
    let media = MediaCount::start(&r);
    assert!(act(&r, "resume-recording"), "resume while paused");
    assert_eq!(state_of(&r), "recording");
    media.wait_recorded(300 * MS, Duration::from_secs(10));
    drop(media);
    assert!(act(&r, "stop-recording"), "stop while recording");
    assert_eq!(state_of(&r), "inactive");
    assert!(!act(&r, "stop-recording"), "stop again");
    assert!(!act(&r, "pause-recording"), "pause after stop");
    assert!(!act(&r, "resume-recording"), "resume after stop");
    assert!(!act(&r, "request-data"), "request-data after stop");

    wait_stop(&events, 1);
    // Paused -> stop is allowed too, in a second recording.
    let media = MediaCount::start(&r);
    assert!(act(&r, "start-recording"), "start after stop");
    media.wait_recorded(300 * MS, Duration::from_secs(10));
    drop(media);
    assert!(act(&r, "pause-recording"));
    assert!(act(&r, "stop-recording"), "stop while paused");
    assert_eq!(state_of(&r), "inactive");
    wait_stop(&events, 2);

    assert_eq!(
        events.with_states(),
        pairs(&[
            ("start", "recording"),
            ("dataavailable", "recording"),
            ("pause", "paused"),
            ("dataavailable", "paused"),
            ("resume", "recording"),
            ("dataavailable", "inactive"),
            ("stop", "inactive"),
            ("start", "recording"),
            ("pause", "paused"),
            ("dataavailable", "inactive"),
            ("stop", "inactive"),
        ])
    );
    drop(p);
    // The second recording (≈300 ms, then paused) overwrote the file and is complete.
    let d = decode(&path);
    assert!(d.frames() >= 5, "{} frames", d.frames());
    assert_contiguous(&d);
    duration_ms(&path);
}

#[test]
fn pause_and_resume_leave_no_gap() {
    init();
    let dir = Scratch::new("pause_resume");
    let path = dir.join("p.webm");
    let (p, r, events) = armed(&path, &format!("{VIDEO} ! r. {AUDIO} ! r."), 500 * MS);

    // The wall-clock time between the actions is what the file must hold: these
    // sleeps are the test's input.
    let started = Instant::now();
    assert!(act(&r, "start-recording"));
    std::thread::sleep(Duration::from_millis(1000));
    let paused = Instant::now();
    assert!(act(&r, "pause-recording"));
    std::thread::sleep(Duration::from_millis(1000));
    let resumed = Instant::now();
    assert!(act(&r, "resume-recording"));
    std::thread::sleep(Duration::from_millis(1000));
    let stopped = Instant::now();
    assert!(act(&r, "stop-recording"));
    let recorded = (paused - started) + (stopped - resumed);
    wait_stop(&events, 1);

    assert_eq!(
        events.with_states(),
        pairs(&[
            ("start", "recording"),
            ("pause", "paused"),
            ("resume", "recording"),
            ("dataavailable", "inactive"),
            ("stop", "inactive"),
        ])
    );
    drop(p);
    let d = decode(&path);
    assert_contiguous(&d);
    let recorded_ms = recorded.as_secs_f64() * 1000.0;
    let video_ms = video_end(&d) as f64 / MS as f64;
    assert!(
        (video_ms - recorded_ms).abs() <= 150.0,
        "video lasts {video_ms} ms, {recorded_ms} ms were recorded (wall time {} ms)",
        (stopped - started).as_millis()
    );
    let audio_ms =
        (d.audio_first_pts().expect("audio decoded") + d.audio_duration()) as f64 / MS as f64;
    assert!(
        (audio_ms - recorded_ms).abs() <= 150.0,
        "audio lasts {audio_ms} ms, {recorded_ms} ms were recorded"
    );
    let duration = duration_ms(&path);
    assert!(
        (duration - recorded_ms).abs() <= 150.0,
        "Duration {duration} ms, {recorded_ms} ms were recorded"
    );
}

#[test]
fn stop_right_after_start_keeps_the_event_order() {
    init();
    let dir = Scratch::new("start_stop");
    let path = dir.join("s.webm");
    let (_p, r, events) = armed(&path, &format!("{VIDEO} ! r. {AUDIO} ! r."), 300 * MS);
    for round in 1..=3 {
        assert!(act(&r, "start-recording"), "start #{round}");
        assert!(act(&r, "stop-recording"), "stop #{round}");
        assert_eq!(state_of(&r), "inactive");
        wait_stop(&events, round);
    }
    let once = [
        ("start", "recording"),
        ("dataavailable", "inactive"),
        ("stop", "inactive"),
    ];
    let expected: Vec<(&str, &str)> = once.iter().cycle().take(9).copied().collect();
    assert_eq!(events.with_states(), pairs(&expected));
}

#[test]
fn two_recordings_in_one_running_pipeline() {
    init();
    let dir = Scratch::new("two_recordings");
    let first = dir.join("first.webm");
    let second = dir.join("second.webm");
    let third = dir.join("third.webm");
    // Inactive: media flows and is dropped.
    let (p, r, events) = armed(&first, &format!("{VIDEO} ! r. {AUDIO} ! r."), 700 * MS);
    assert!(events.names().is_empty(), "{:?}", events.names());
    assert_eq!(state_of(&r), "inactive");

    // Each file must hold the wall-clock time from its start to its stop: the sleeps
    // between them are the test's input.
    let t = Instant::now();
    assert!(act(&r, "start-recording"));
    std::thread::sleep(Duration::from_millis(1000));
    assert!(act(&r, "stop-recording"));
    let first_ms = t.elapsed().as_secs_f64() * 1000.0;
    wait_stop(&events, 1);

    r.set_property("location", second.to_str().unwrap());
    let t = Instant::now();
    assert!(act(&r, "start-recording"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        r.property::<String>("mime-type"),
        "video/webm;codecs=vp8,opus",
        "mime-type reads back the effective type while recording"
    );
    // The location is fixed while recording.
    r.set_property("location", third.to_str().unwrap());
    assert_eq!(
        r.property::<Option<String>>("location").as_deref(),
        second.to_str()
    );
    std::thread::sleep(Duration::from_millis(700));
    assert!(act(&r, "stop-recording"));
    let second_ms = t.elapsed().as_secs_f64() * 1000.0;
    wait_stop(&events, 2);
    assert_eq!(
        events.names(),
        [
            "start",
            "dataavailable",
            "stop",
            "start",
            "dataavailable",
            "stop"
        ]
    );
    drop(p);
    assert!(!third.exists(), "a location set while recording was used");

    for (path, recorded_ms) in [(&first, first_ms), (&second, second_ms)] {
        let duration = duration_ms(path);
        let d = decode(path);
        assert_contiguous(&d);
        let video_ms = video_end(&d) as f64 / MS as f64;
        // Only media from start to stop: not what flowed before, not the other file's.
        assert!(
            (video_ms - recorded_ms).abs() <= 150.0,
            "{}: video lasts {video_ms} ms, {recorded_ms} ms were recorded",
            path.display()
        );
        assert!(
            (duration - recorded_ms).abs() <= 150.0,
            "{}: Duration {duration} ms, {recorded_ms} ms were recorded",
            path.display()
        );
        assert!(
            d.audio_duration() as f64 / MS as f64 > recorded_ms - 200.0,
            "{}: audio {} ns",
            path.display(),
            d.audio_duration()
        );
        let index = webm_index_of(path);
        assert!(
            !index.cue_times_ms.is_empty(),
            "{}: no cues",
            path.display()
        );
        assert_eq!(index.clusters_ms.first(), Some(&0), "{}", path.display());
    }
}

#[test]
fn timeslice_chunks_start_with_keyframe_clusters_and_join_to_a_file() {
    init();
    let dir = Scratch::new("timeslice");
    let path = dir.join("ts.webm");
    let p = launch(&format!(
        "mediarecorder name=r duration=2500 timeslice=500 location={} {VIDEO} ! r. {AUDIO} ! r.",
        path.display()
    ));
    let r = recorder(&p);
    let (events, chunks) = Events::watch(&r);
    expect_eos(&p, Duration::from_secs(10));
    drop(p);

    let names = events.names();
    assert_eq!(names.first().map(String::as_str), Some("start"));
    assert_eq!(names.last().map(String::as_str), Some("stop"));
    let buffers = chunks.0.lock().unwrap().clone();
    assert!(buffers.len() >= 4, "only {} chunks", buffers.len());
    assert_eq!(names.len(), buffers.len() + 2, "{names:?}");
    // All chunks but the last come while recording.
    let states = events.with_states();
    for (name, state) in &states[1..states.len() - 2] {
        assert_eq!(
            (name.as_str(), state.as_str()),
            ("dataavailable", "recording")
        );
    }

    let pts: Vec<u64> = buffers
        .iter()
        .map(|b| b.pts().expect("chunks have a PTS").nseconds())
        .collect();
    assert_eq!(pts[0], 0, "pts {pts:?}");
    assert!(pts.windows(2).all(|w| w[0] <= w[1]), "pts {pts:?}");
    assert!(buffers[0].map_readable().unwrap().starts_with(&EBML_HEADER));
    for (i, b) in buffers.iter().enumerate().skip(1) {
        let data = b.map_readable().unwrap();
        if i == buffers.len() - 1 && data.is_empty() {
            continue;
        }
        assert!(
            data.starts_with(&CLUSTER),
            "chunk {i} starts with {:02x?}",
            &data[..data.len().min(4)]
        );
        let index = webm_index(&data);
        let first = index.blocks.first().expect("a chunk holds blocks");
        assert_eq!(
            (first.1, first.2),
            (1, true),
            "chunk {i}: first block (time ms, track, keyframe) {first:?}"
        );
        assert_eq!(
            index.clusters_ms[0] * MS,
            pts[i],
            "chunk {i}: PTS is where its first cluster starts"
        );
    }
    // Slices are about 500 ms of media each.
    for w in pts.windows(2).take(buffers.len() - 2) {
        assert!(w[1] - w[0] <= 1000 * MS, "pts {pts:?}");
    }

    let joined_path = dir.join("joined.webm");
    write_file(&joined_path, &chunks.joined());
    let from_chunks = decode(&joined_path);
    let from_file = decode(&path);
    assert_eq!(from_file.frames(), 75);
    assert_eq!(from_chunks.frames(), from_file.frames());
    assert_eq!(from_chunks.video_pts, from_file.video_pts);
    assert_eq!(from_chunks.audio_samples(), from_file.audio_samples());
    let index = webm_index_of(&path);
    let duration = index.duration_ms.expect("Duration written");
    assert!((duration - 2500.0).abs() <= FRAME_MS, "duration {duration}");
    assert!(!index.cue_times_ms.is_empty(), "no cues");
}

#[test]
fn request_data_hands_over_what_was_recorded() {
    init();
    let dir = Scratch::new("request_data");
    let path = dir.join("rd.webm");
    let p = launch(&format!(
        "{VIDEO} ! mediarecorder name=r location={}",
        path.display()
    ));
    let r = recorder(&p);
    let (events, chunks) = Events::watch(&r);
    p.set_state(gst::State::Playing).unwrap();
    wait_event(&events, "start", 1);
    wait_flowed(&r, 1000 * MS, Duration::from_secs(10));
    let written = r.property::<u64>("bytes-written");
    assert!(written > 0, "nothing written after 1 s");
    assert!(act(&r, "request-data"));
    wait_event(&events, "dataavailable", 1);
    {
        let first = &chunks.0.lock().unwrap()[0];
        assert_eq!(first.pts(), Some(gst::ClockTime::ZERO));
        let data = first.map_readable().unwrap();
        assert!(data.starts_with(&EBML_HEADER), "first chunk has the header");
        let blocks = webm_index(&data).blocks.len();
        assert!(blocks >= 20, "{blocks} blocks after 1 s");
    }
    wait_flowed(&r, 500 * MS, Duration::from_secs(10));
    assert!(
        r.property::<u64>("bytes-written") > written,
        "bytes-written grows"
    );
    assert!(act(&r, "request-data"));
    wait_event(&events, "dataavailable", 2);
    {
        let second = &chunks.0.lock().unwrap()[1];
        assert!(second.size() > 0, "second chunk empty");
    }
    assert!(act(&r, "stop-recording"));
    wait_stop(&events, 1);
    assert!(!act(&r, "request-data"), "request-data while inactive");
    // A fixed quiet time: the refused request must fire nothing, and nothing marks
    // that it will not.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        events.with_states(),
        pairs(&[
            ("start", "recording"),
            ("dataavailable", "recording"),
            ("dataavailable", "recording"),
            ("dataavailable", "inactive"),
            ("stop", "inactive"),
        ])
    );
    drop(p);
    let joined_path = dir.join("joined.webm");
    write_file(&joined_path, &chunks.joined());
    let from_chunks = decode(&joined_path);
    let from_file = decode(&path);
    assert!(from_file.frames() >= 40, "{} frames", from_file.frames());
    assert_eq!(from_chunks.video_pts, from_file.video_pts);
}

#[test]
fn is_type_supported_answers_for_this_machine() {
    init();
    let r = gst::ElementFactory::make("mediarecorder").build().unwrap();
    let av1 = ["av1enc", "av1parse"]
        .iter()
        .all(|f| gst::ElementFactory::find(f).is_some());
    assert!(av1, "av1enc and av1parse are expected on this machine");
    let table = [
        ("", true),
        ("video/webm", true),
        ("video/webm;codecs=vp8,opus", true),
        ("video/webm; codecs=\"VP9, Opus\"", true),
        ("video/webm;codecs=vp09.00.10.08", true),
        ("video/webm;codecs=vp8,vp9", false),
        ("video/ogg", false),
        ("audio/webm;codecs=vp8", false),
        ("video/webm;codecs=av1", true),
        ("video/webm;codecs=avc1", false),
    ];
    let wrong: Vec<(&str, bool)> = table
        .iter()
        .filter(|(mime, want)| r.emit_by_name::<bool>("is-type-supported", &[mime]) != *want)
        .map(|(mime, want)| (*mime, !*want))
        .collect();
    assert!(wrong.is_empty(), "wrong answers (type, answer): {wrong:?}");
}

#[test]
fn video_bits_per_second_sets_the_video_bitrate() {
    init();
    let dir = Scratch::new("bitrate");
    let path = dir.join("br.webm");
    // A moving picture with detail, so a constant-rate encoder spends what it is given.
    let p = launch(&format!(
        "videotestsrc is-live=true pattern=circular horizontal-speed=2 ! \
         video/x-raw,width=640,height=480,framerate=30/1 ! \
         mediarecorder name=r duration=4000 video-bits-per-second=500000 location={}",
        path.display()
    ));
    expect_eos(&p, Duration::from_secs(12));
    drop(p);
    let duration = duration_ms(&path);
    assert!((duration - 4000.0).abs() <= FRAME_MS, "duration {duration}");
    let size = std::fs::metadata(&path).unwrap().len();
    let bps = size as f64 * 8.0 / (duration / 1000.0);
    assert!(
        (bps - 500_000.0).abs() <= 125_000.0,
        "video at {bps:.0} bit/s for a target of 500000"
    );
}

/// Records to a device where every write fails, as on a full disk; returns the bus
/// error and the events.
fn record_to_full_disk() -> (String, Vec<(String, String)>) {
    // Opens fine, every write fails.
    let p = launch(&format!(
        "mediarecorder name=r location=/dev/full {VIDEO} ! r. {AUDIO} ! r."
    ));
    let r = recorder(&p);
    let (events, _chunks) = Events::watch(&r);
    let msg = expect_error(&p, Duration::from_secs(5));
    wait_stop(&events, 1);
    assert_eq!(state_of(&r), "inactive");
    // Actions after the error see an inactive recorder.
    assert!(!act(&r, "stop-recording"));
    assert!(!act(&r, "pause-recording"));
    (msg, events.with_states())
}

#[test]
fn write_error_fires_error_then_dataavailable_and_stop() {
    init();
    let (_, seen) = record_to_full_disk();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[0], ("start".to_string(), "recording".to_string()));
    assert!(seen[1].0.starts_with("error: "), "{seen:?}");
    assert_eq!(seen[1].1, "inactive");
    assert_eq!(
        seen[2..],
        pairs(&[("dataavailable", "inactive"), ("stop", "inactive")])
    );
}

#[test]
fn write_error_names_the_path_and_cause() {
    init();
    for round in 0..4 {
        let (msg, seen) = record_to_full_disk();
        assert!(
            msg.contains("/dev/full") && msg.contains("No space left"),
            "round {round}: bus error {msg}"
        );
        assert!(
            seen[1].0.contains("/dev/full") && seen[1].0.contains("No space left"),
            "round {round}: error event {:?}",
            seen[1]
        );
    }
}

#[test]
fn request_data_and_bytes_written_during_timeslice_cuts_do_not_deadlock() {
    init();
    let dir = Scratch::new("request_data_timeslice");
    let path = dir.join("rt.webm");
    let p = launch(&format!(
        "{VIDEO} ! mediarecorder name=r timeslice=100 location={}",
        path.display()
    ));
    let r = recorder(&p);
    let (events, chunks) = Events::watch(&r);
    p.set_state(gst::State::Playing).unwrap();
    wait_event(&events, "start", 1);
    // Hammer the two calls that look into the muxer's byte count while timeslice
    // chunks are being cut in the muxer's thread.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let hammer = r.clone();
    std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_millis(2500);
        let mut calls = 0u64;
        let mut last_request = Instant::now();
        while Instant::now() < until {
            let _ = hammer.property::<u64>("bytes-written");
            if last_request.elapsed() >= Duration::from_millis(150) {
                assert!(act(&hammer, "request-data"));
                last_request = Instant::now();
                calls += 1;
            }
        }
        let _ = done_tx.send(calls);
    });
    let Ok(calls) = done_rx.recv_timeout(Duration::from_secs(10)) else {
        // Deadlocked: shutting the pipeline down would hang as well.
        std::mem::forget(p);
        panic!(
            "request-data/bytes-written blocked for good after {} events",
            events.names().len()
        );
    };
    assert!(act(&r, "stop-recording"));
    wait_stop(&events, 1);
    drop(p);
    assert!(calls >= 10, "only {calls} request-data calls");
    // The chunks are still one complete stream.
    let joined_path = dir.join("joined.webm");
    write_file(&joined_path, &chunks.joined());
    assert_eq!(decode(&joined_path).video_pts, decode(&path).video_pts);
}

#[test]
fn a_slow_encoder_drops_frames_without_glib_criticals() {
    init();
    let dir = Scratch::new("slow_encoder");
    let path = dir.join("slow.webm");
    let complaints = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let c = complaints.clone();
    let handler = gst::glib::log_set_handler(
        Some("GStreamer"),
        gst::glib::LogLevels::LEVEL_CRITICAL | gst::glib::LogLevels::LEVEL_WARNING,
        false,
        false,
        move |_, _, msg| c.lock().unwrap().push(msg.to_string()),
    );
    let p = launch(&format!(
        "{VIDEO} ! mediarecorder name=r location={}",
        path.display()
    ));
    let r = recorder(&p);
    let (events, _chunks) = Events::watch(&r);
    p.set_state(gst::State::Playing).unwrap();
    wait_event(&events, "start", 1);
    // Make the encoder take 100 ms a frame: a third of the live rate.
    slow_down(&r, "vp8enc", Duration::from_millis(100));
    // Drops begin once a second of raw frames waits (after about 1.5 s at a third of
    // the live rate), then come at 20 a second: wait for as many as 2.5 s made.
    assert!(
        wait_until(Duration::from_secs(20), || r
            .property::<u64>("frames-dropped")
            >= 20),
        "only {} frames dropped in 20 s: the probe did not slow the encoder",
        r.property::<u64>("frames-dropped")
    );
    assert!(act(&r, "stop-recording"));
    wait_stop(&events, 1);
    let dropped = r.property::<u64>("frames-dropped");
    drop(p);
    gst::glib::log_remove_handler(Some("GStreamer"), handler);
    assert!(
        dropped > 0,
        "no frame dropped: the probe did not slow the encoder"
    );
    let complaints = complaints.lock().unwrap();
    assert!(
        complaints.is_empty(),
        "{dropped} frames dropped, {} GLib criticals/warnings, the first: {}",
        complaints.len(),
        complaints[0]
    );
    assert!(decode(&path).frames() > 0);
}

/// Records 90 live 320x240 frames passed through `middle` and checks that every one
/// reached the file and none was counted as dropped.
fn keeps_all_90_frames(name: &str, middle: &str) {
    init();
    let dir = Scratch::new(name);
    let path = dir.join("all.webm");
    let p = launch(&format!(
        "videotestsrc is-live=true num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! {middle} ! mediarecorder name=r location={}",
        path.display()
    ));
    let r = recorder(&p);
    expect_eos(&p, Duration::from_secs(20));
    assert_eq!(r.property::<u64>("frames-dropped"), 0);
    drop(p);
    assert_eq!(decode(&path).frames(), 90);
}

#[test]
fn a_live_source_with_latency_is_not_taken_for_late() {
    // A network camera's jitterbuffer holds every frame 1.5 s (here a queue that
    // declares it as latency): each frame arrives 1.5 s after its running time, as
    // it should, and none is dropped as late.
    keeps_all_90_frames(
        "latency",
        "queue min-threshold-time=1500000000 max-size-time=3000000000 max-size-buffers=0 \
         max-size-bytes=0",
    );
}

#[test]
fn late_compressed_frames_are_kept() {
    // Already-encoded frames that fall 1.5 s behind (50 ms of work for each 33 ms
    // frame): dropping one would break every frame up to the next keyframe, so all
    // are kept; only raw frames are dropped when late.
    keeps_all_90_frames(
        "late_compressed",
        "vp8enc deadline=1 ! identity sleep-time=50000",
    );
}

#[test]
fn an_armed_recorder_encodes_nothing_until_started() {
    init();
    let dir = Scratch::new("armed");
    let p = launch(&format!(
        "{VIDEO} ! mediarecorder name=r autostart=false location={}",
        dir.join("armed-%02d.webm").display()
    ));
    let r = recorder(&p);
    let (events, _chunks) = Events::watch(&r);
    let arrived = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let a = arrived.clone();
    r.sink_pads()
        .first()
        .and_then(|pad| pad.peer())
        .expect("the recorder's linked pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            a.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    p.set_state(gst::State::Playing).unwrap();
    // The pipeline reaches PLAYING though the recorder encodes nothing: applications
    // wait for that to call start-recording (examples/record.py, the web sample).
    let (_, state, _) = p.state(gst::ClockTime::from_seconds(10));
    assert_eq!(state, gst::State::Playing);
    let find_encoder = || element_inside(&r, "vp8enc");
    assert!(wait_until(Duration::from_secs(10), || find_encoder().is_some()));
    let encoded = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let e = encoded.clone();
    find_encoder()
        .unwrap()
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            e.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    // A second of the camera's frames while armed: none of them is encoded (an
    // armed camera costs its capture, not an encoder working for nothing).
    let before = count(&arrived);
    assert!(wait_until(Duration::from_secs(10), || count(&arrived) >= before + 30));
    assert_eq!(count(&encoded), 0, "frames encoded while nothing recorded");
    // Two recordings, armed between them: each opens on the first frame after its
    // start, made a keyframe (the second one's encoder last saw a frame before the
    // pause: a frame referring to it would not decode).
    for n in 1..=2u64 {
        let at_start = count(&encoded);
        assert!(act(&r, "start-recording"));
        assert!(wait_until(Duration::from_secs(10), || count(&encoded) >= at_start + 30));
        assert!(act(&r, "stop-recording"));
        wait_stop(&events, n as usize);
        let before = count(&arrived);
        assert!(wait_until(Duration::from_secs(10), || count(&arrived) >= before + 15));
    }
    let encoded_in_all = count(&encoded);
    drop(p);
    for name in ["armed-00.webm", "armed-01.webm"] {
        let path = dir.join(name);
        let frames = decode(&path).frames();
        assert!((28..=40).contains(&frames), "{name}: {frames} frames");
        assert_eq!(webm_index_of(&path).keyframe_times_ms()[0], 0, "{name}");
    }
    assert!(
        encoded_in_all <= 80,
        "{encoded_in_all} frames encoded for 2 x ~1 s"
    );
}

/// A stop just after a timeslice boundary: the muxer, draining at the end, cuts the
/// chunk of the slice before it while the recording is being finished. That chunk is
/// emitted before the last one and before `stop`, so the chunks joined are the file
/// in order (a Media Source Extensions preview appends them as they come).
#[test]
fn a_chunk_cut_while_stopping_comes_before_the_last_one_and_stop() {
    init();
    let dir = Scratch::new("stop_after_slice");
    let path = dir.join("s.webm");
    let p = launch(&format!(
        "mediarecorder name=r autostart=false timeslice=500 location={} {VIDEO} ! r. {AUDIO} ! r.",
        path.display()
    ));
    let r = recorder(&p);
    let (events, chunks) = Events::watch(&r);
    p.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let clock = p.clock().expect("a playing pipeline has a clock");
    let base = p.base_time().expect("a playing pipeline has a base time");
    // The first frame lands up to a frame after `start-recording`, so these stops fall
    // from just before to 50 ms after the 500 ms boundary of media.
    for (round, after_ms) in [0u64, 10, 20, 30, 40, 50].into_iter().enumerate() {
        chunks.0.lock().unwrap().clear();
        let started = r.current_running_time().expect("a running time");
        assert!(act(&r, "start-recording"));
        let stop_at = base + started + gst::ClockTime::from_mseconds(500 + after_ms);
        let _ = clock.new_single_shot_id(stop_at).wait();
        assert!(act(&r, "stop-recording"));
        wait_stop(&events, round + 1);

        let names = events.names();
        let start = names.iter().rposition(|n| n == "start").unwrap();
        let tail = &names[start..];
        assert_eq!(
            tail.last().map(String::as_str),
            Some("stop"),
            "{after_ms} ms after the boundary: {tail:?}"
        );
        let joined = chunks.joined();
        let file = std::fs::read(&path).unwrap();
        assert_eq!(joined.len(), file.len(), "{after_ms} ms: joined chunks");
        let clusters = webm_index(&joined).clusters_ms;
        assert!(
            clusters.windows(2).all(|w| w[0] < w[1]),
            "{after_ms} ms: clusters of the joined chunks out of order: {clusters:?}"
        );
    }
}

/// An Opus block is written at its time plus the track's CodecDelay (the pre-skip).
/// Blocks must still go in time order, within each cluster too: Chromium's Media
/// Source Extensions refuse a block earlier than the one before it. At 60 fps a video
/// frame falls inside even the encoder's own 6.5 ms of priming.
#[test]
fn blocks_are_in_time_order_with_the_opus_codec_delay() {
    init();
    let dir = Scratch::new("block_order");
    let path = dir.join("order.webm");
    let p = launch(&format!(
        "mediarecorder name=r location={} \
         videotestsrc num-buffers=60 ! video/x-raw,width=160,height=120,framerate=60/1 ! r. \
         audiotestsrc num-buffers=50 samplesperbuffer=960 ! r.",
        path.display()
    ));
    expect_eos(&p, Duration::from_secs(30));
    drop(p);
    let blocks = webm_index_of(&path).blocks;
    assert!(blocks.len() > 100, "{} blocks", blocks.len());
    let back: Vec<_> = blocks.windows(2).filter(|w| w[1].0 < w[0].0).collect();
    assert!(
        back.is_empty(),
        "{} blocks earlier than the block before them (ms, track, key), e.g. {:?}",
        back.len(),
        back.first()
    );
}

/// The `bytes` of `mediarecorder-progress` are the bytes in the file when the message
/// is posted, in every container, within a second's worth (what is written while
/// the message travels). MP4 reported its header alone (2,183 bytes of a 178 KB file):
/// mp4mux's sample offsets were taken for rewrites of the header.
#[test]
fn progress_bytes_are_the_bytes_in_the_file() {
    init();
    let dir = Scratch::new("progress_bytes");
    for (mime, name) in [
        ("video/webm", "p.webm"),
        ("video/x-matroska", "p.mkv"),
        ("video/mp4", "p.mp4"),
    ] {
        let path = dir.join(name);
        let p = launch(&format!(
            "mediarecorder name=r mime-type={mime} location={} \
             {VIDEO} ! r. {AUDIO} ! r.",
            path.display()
        ));
        // At each message: (recorded ms, bytes said, bytes in the file).
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let file = path.clone();
        p.bus().unwrap().set_sync_handler(move |_, msg| {
            let progress = msg
                .structure()
                .filter(|st| st.name() == "mediarecorder-progress");
            if let Some(st) = progress {
                let on_disk = std::fs::metadata(&file).map_or(0, |m| m.len());
                s.lock().unwrap().push((
                    st.get::<gst::ClockTime>("recorded").unwrap().mseconds(),
                    st.get::<u64>("bytes").unwrap(),
                    on_disk,
                ));
            }
            gst::BusSyncReply::Pass
        });
        p.set_state(gst::State::Playing).unwrap();
        let r = recorder(&p);
        assert!(
            wait_until(Duration::from_secs(20), || seen.lock().unwrap().len() >= 5),
            "{mime}: progress messages {:?}",
            seen.lock().unwrap()
        );
        p.send_event(gst::event::Eos::new());
        let _ = wait_message(&p, Duration::from_secs(10));
        drop(r);
        drop(p);
        let seen = seen.lock().unwrap().clone();
        let size = std::fs::metadata(&path).unwrap().len();
        let recorded_s = seen.last().map_or(1, |(ms, _, _)| ms / 1000).max(1);
        let second = size / recorded_s;
        for &(ms, said, on_disk) in &seen {
            assert!(
                said.abs_diff(on_disk) <= second,
                "{mime} at {ms} ms: progress says {said} bytes, the file has {on_disk} \
                 ({second} bytes a second); all: {seen:?}"
            );
        }
        assert!(
            seen.windows(2).all(|w| w[1].1 >= w[0].1) && seen.last().unwrap().1 > 2 * second,
            "{mime}: bytes do not grow with the file: {seen:?}"
        );
    }
}
