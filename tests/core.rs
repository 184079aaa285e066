//! The core element: timed live recordings, sync, files, passthrough, errors.

mod common;

use std::time::Duration;

use common::*;
use gst::prelude::*;

const FRAME_MS: f64 = 1000.0 / 30.0;

#[test]
fn timed_live_recording_is_exact_and_seekable() {
    init();
    let dir = tmp_dir("timed_live");
    let path = dir.join("out.webm");
    let p = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=640,height=480,framerate=30/1 ! \
         mediarecorder name=r duration=3000 location={}",
        path.display()
    ));
    let took = expect_eos(&p, Duration::from_secs(10));
    // The pipeline ends by itself, promptly after 3 s of media.
    assert!(took < Duration::from_millis(4000), "EOS after {took:?}");
    drop(p);

    let decoded = decode(&path);
    assert_eq!(decoded.frames(), 90);
    assert_eq!(decoded.video_pts[0], 0);
    assert_eq!(decoded.video_size, Some((640, 480)));
    let index = webm_index_of(&path);
    assert_eq!(index.doc_type, "webm");
    let duration = index.duration_ms.expect("Duration written");
    assert!((duration - 3000.0).abs() <= FRAME_MS, "duration {duration}");
    assert!(
        index.cue_times_ms.len() >= 2,
        "cues {:?}",
        index.cue_times_ms
    );
    let mut last = 0;
    for cue in index.cue_times_ms.iter().chain(std::iter::once(&3000)) {
        assert!(cue - last <= 2000, "cue gap {last} -> {cue}");
        last = *cue;
    }
}

#[test]
fn audio_and_video_are_in_sync() {
    init();
    let dir = tmp_dir("av_sync");
    let path = dir.join("av.webm");
    let p = launch(&format!(
        "mediarecorder name=r duration=2000 location={} \
         videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! r. \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! r.",
        path.display()
    ));
    expect_eos(&p, Duration::from_secs(10));
    drop(p);
    let d = decode(&path);
    assert_eq!(d.frames(), 60);
    let audio_start = d.audio_first_pts().expect("audio decoded");
    assert!(audio_start <= 25 * MS, "audio starts at {audio_start}");
    // Audio starts with the video and ends at the duration, to the sample (as
    // ffmpeg counts; GStreamer's opusdec may drop up to one packet more, see common).
    let audio_ms = (audio_start + d.audio_duration()) as f64 / MS as f64;
    assert!(
        (audio_ms - 2000.0).abs() <= 20.0,
        "audio ends at {audio_ms} ms"
    );
    // Audio begins within one 20 ms packet after the video (a packet across the start
    // is cut to the sample) and is cut at the end to the sample.
    let samples = ffprobe_audio_samples(&path);
    assert!(
        (2 * 48_000 - 960..=2 * 48_000 + 1).contains(&samples),
        "{samples} samples"
    );
    let duration = duration_ms(&path);
    assert!((duration - 2000.0).abs() <= FRAME_MS, "duration {duration}");
}

/// Records `source` to `out` with the README's two-branch `uridecodebin` command;
/// how long the pipeline took to end by itself.
fn record_playing_file(
    source: &std::path::Path,
    out: &std::path::Path,
    timeout: Duration,
) -> Duration {
    let p = launch(&format!(
        "uridecodebin uri=file://{} name=d mediarecorder name=r location={} \
         d. ! queue ! r.  d. ! queue ! r.",
        source.display(),
        out.display()
    ));
    expect_eos(&p, timeout)
}

#[test]
fn records_a_playing_file() {
    init();
    let dir = tmp_dir("playing_file");
    let source = dir.join("source.mkv");
    // A 2 s file with H.264-free codecs the recorder must re-encode (Theora, Vorbis).
    let p = launch(&format!(
        "matroskamux name=m ! filesink location={} \
         videotestsrc num-buffers=50 ! video/x-raw,width=320,height=240,framerate=25/1 ! theoraenc ! m. \
         audiotestsrc num-buffers=94 samplesperbuffer=1024 ! audio/x-raw,rate=48000 ! vorbisenc ! m.",
        source.display()
    ));
    expect_eos(&p, Duration::from_secs(30));
    drop(p);

    let out = dir.join("copy.webm");
    record_playing_file(&source, &out, Duration::from_secs(30));
    let d = decode(&out);
    assert_eq!(d.frames(), 50);
    assert!(
        d.audio_duration() > 1900 * MS,
        "audio {}",
        d.audio_duration()
    );
    let duration = duration_ms(&out);
    assert!((duration - 2000.0).abs() <= 45.0, "duration {duration}");
}

#[test]
fn compressed_input_is_muxed_without_reencoding() {
    init();
    let dir = tmp_dir("passthrough");
    let path = dir.join("vp8.webm");
    let p = launch(&format!(
        "videotestsrc num-buffers=45 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         vp8enc deadline=1 keyframe-max-dist=15 ! mediarecorder name=r location={}",
        path.display()
    ));
    expect_eos(&p, Duration::from_secs(20));
    let r = recorder(&p);
    let bin = r.downcast_ref::<gst::Bin>().unwrap();
    let encoders: Vec<String> = bin
        .iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.factory().map(|f| f.name().to_string()))
        .filter(|n| n.ends_with("enc"))
        .collect();
    assert!(encoders.is_empty(), "re-encoded with {encoders:?}");
    drop(p);
    let d = decode(&path);
    assert_eq!(d.frames(), 45);
    // The source's keyframes (every 15 frames) are kept, so are its clusters.
    let index = webm_index_of(&path);
    let keys = index.keyframe_times_ms();
    assert_eq!(keys, [0, 500, 1000]);
}

#[test]
fn mjpeg_camera_input_is_decoded() {
    init();
    let dir = tmp_dir("mjpeg");
    let path = dir.join("mjpeg.webm");
    let p = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! jpegenc ! \
         mediarecorder name=r duration=1000 location={}",
        path.display()
    ));
    expect_eos(&p, Duration::from_secs(10));
    drop(p);
    assert_eq!(decode(&path).frames(), 30);
}

#[test]
fn shutdown_without_eos_finalizes_the_file() {
    init();
    let dir = tmp_dir("no_eos");
    let path = dir.join("cut.webm");
    let p = launch(&format!(
        "mediarecorder name=r location={} \
         videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! r. \
         audiotestsrc is-live=true ! r.",
        path.display()
    ));
    let r = recorder(&p);
    let (events, _) = Events::watch(&r);
    let media = MediaCount::start(&r);
    p.set_state(gst::State::Playing).unwrap();
    media.wait_recorded(2000 * MS, Duration::from_secs(15));
    drop(media);
    let start = std::time::Instant::now();
    p.set_state(gst::State::Null).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        start.elapsed()
    );
    assert_eq!(events.names(), ["start", "dataavailable", "stop"]);
    let index = webm_index_of(&path);
    let duration = index.duration_ms.expect("finalized: Duration written");
    assert!(duration > 1500.0, "duration {duration}");
    assert!(!index.cue_times_ms.is_empty(), "finalized: Cues written");
    let d = decode(&path);
    assert!(
        d.frames() as f64 >= duration / FRAME_MS - 2.0,
        "{} frames",
        d.frames()
    );
}

#[test]
fn signals_and_messages_follow_the_web_order() {
    init();
    let dir = tmp_dir("signals");
    let path = dir.join("s.webm");
    let p = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         mediarecorder name=r duration=1000 location={}",
        path.display()
    ));
    let (events, chunks) = Events::watch(&recorder(&p));
    let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let m = messages.clone();
    p.bus().unwrap().set_sync_handler(move |_, msg| {
        if msg.type_() == gst::MessageType::Element {
            m.lock().unwrap().push(msg.structure().unwrap().to_owned());
        }
        gst::BusSyncReply::Pass
    });
    expect_eos(&p, Duration::from_secs(10));
    assert_eq!(
        events.with_states(),
        [
            ("start".to_string(), "recording".to_string()),
            ("dataavailable".to_string(), "inactive".to_string()),
            ("stop".to_string(), "inactive".to_string()),
        ]
    );
    // With no timeslice the one chunk is the whole stream, index included.
    let joined = chunks.joined();
    let index = webm_index(&joined);
    assert_eq!(index.blocks.len(), 30);
    assert!(!index.cue_times_ms.is_empty());
    // The bus carries the same moments for gst-launch-1.0 -m.
    let mut names = Vec::new();
    let mut stop_fields = None;
    let mut progress = Vec::new();
    for s in messages.lock().unwrap().iter() {
        if s.name() == "mediarecorder-progress" {
            progress.push((
                s.get::<gst::ClockTime>("recorded").unwrap(),
                s.get::<u64>("bytes").unwrap(),
                s.get::<u64>("dropped").unwrap(),
            ));
            continue;
        }
        names.push(s.name().to_string());
        if s.name() == "mediarecorder-stop" {
            stop_fields = Some((
                s.get::<u64>("bytes").unwrap(),
                s.get::<gst::ClockTime>("duration").unwrap(),
                s.get::<Option<String>>("location").unwrap(),
            ));
        }
    }
    assert_eq!(
        names,
        [
            "mediarecorder-start",
            "mediarecorder-file-closed",
            "mediarecorder-dataavailable",
            "mediarecorder-stop"
        ]
    );
    // Progress each second of media: time recorded, bytes written, frames dropped.
    assert_eq!(progress.len(), 1, "{progress:?}");
    assert_eq!(progress[0].0, gst::ClockTime::SECOND);
    assert!(progress[0].1 > 0);
    assert_eq!(progress[0].2, 0);
    let (bytes, duration, location) = stop_fields.unwrap();
    assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(duration.mseconds(), 1000);
    assert_eq!(location.as_deref(), path.to_str());
}

#[test]
fn unwritable_location_fails_before_data_flows() {
    init();
    let p = launch(
        "videotestsrc is-live=true ! mediarecorder name=r location=/nonexistent-dir/out.webm",
    );
    assert_says(
        &expect_error(&p, Duration::from_secs(5)),
        &["/nonexistent-dir/out.webm", "No such file or directory"],
    );
}

#[test]
fn unsupported_mime_type_is_named() {
    init();
    let p = launch("videotestsrc is-live=true ! mediarecorder name=r mime-type=video/ogg");
    assert_says(&expect_error(&p, Duration::from_secs(5)), &["video/ogg"]);
}

#[test]
fn second_video_stream_is_refused() {
    init();
    let dir = tmp_dir("two_video");
    let p = launch(&format!(
        "mediarecorder name=r location={} videotestsrc is-live=true ! r.video_0 \
         videotestsrc is-live=true ! r.video_1",
        dir.join("x.webm").display()
    ));
    assert_says(
        &expect_error(&p, Duration::from_secs(5)),
        &["one video stream", "video_"],
    );
}

#[test]
fn inspect_documents_every_property() {
    init();
    let r = gst::ElementFactory::make("mediarecorder").build().unwrap();
    for name in [
        "location",
        "duration",
        "mime-type",
        "video-bits-per-second",
        "audio-bits-per-second",
        "bits-per-second",
        "state",
        "timeslice",
        "autostart",
    ] {
        let pspec = r.find_property(name).unwrap_or_else(|| panic!("no {name}"));
        assert!(
            pspec.blurb().is_some_and(|b| b.len() > 20),
            "{name} undocumented"
        );
    }
    assert_eq!(state_of(&r), "inactive");
}

/// Caps on a recorder's sink pads once a recording ran, as "format" / "rate".
fn negotiated(p: &gst::Pipeline) -> Vec<(String, String)> {
    recorder(p)
        .sink_pads()
        .iter()
        .filter_map(|pad| pad.current_caps())
        .map(|caps| {
            let s = caps.structure(0).unwrap();
            let format = s.get::<String>("format").unwrap_or_default();
            let rate = s
                .get::<i32>("rate")
                .map(|r| r.to_string())
                .unwrap_or_default();
            (format, rate)
        })
        .collect()
}

#[test]
fn sources_left_free_negotiate_what_the_encoders_take() {
    init();
    let dir = tmp_dir("free_caps");
    // No caps filter: the sources pick from the recorder's answer to their caps query.
    let p = launch(&format!(
        "mediarecorder name=r location={} videotestsrc num-buffers=10 ! r. \
         audiotestsrc num-buffers=10 ! r.",
        dir.join("free.webm").display()
    ));
    expect_eos(&p, Duration::from_secs(20));
    let mut caps = negotiated(&p);
    caps.sort();
    assert_eq!(
        caps,
        [
            ("I420".to_string(), String::new()),
            ("S16LE".to_string(), "48000".to_string())
        ]
    );
    drop(p);
    // A file's decoder offers its own format; the recorder takes it as it is.
    let p = launch(&format!(
        "videotestsrc num-buffers=10 ! video/x-raw,format=NV12 ! mediarecorder name=r location={}",
        dir.join("nv12.webm").display()
    ));
    expect_eos(&p, Duration::from_secs(20));
    assert_eq!(negotiated(&p), [("NV12".to_string(), String::new())]);
}

#[test]
fn fifty_live_starts_all_decode_without_warnings() {
    init();
    let dir = tmp_dir("fifty_starts");
    // Each start falls at a different phase of the audio packets: the first packet of
    // every file must be one that ffmpeg takes (no two blocks at time 0).
    let p = launch(&format!(
        "mediarecorder name=r autostart=false location={}/rec-%05d.webm \
         videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! r. \
         audiotestsrc is-live=true ! r.",
        dir.display()
    ));
    let r = recorder(&p);
    let (events, _) = Events::watch(&r);
    p.set_state(gst::State::Playing).unwrap();
    for i in 1..=50 {
        let media = MediaCount::start(&r);
        assert!(r.emit_by_name::<bool>("start-recording", &[]), "start {i}");
        media.wait_recorded((150 + i * 37 % 100) as u64 * MS, Duration::from_secs(10));
        drop(media);
        assert!(r.emit_by_name::<bool>("stop-recording", &[]), "stop {i}");
        assert!(
            events.wait_for("stop", i, Duration::from_secs(5)),
            "stop {i}"
        );
    }
    drop(p);
    let files = files_in(&dir, |_| true);
    assert_eq!(files.len(), 50);
    let mut failures = Vec::new();
    for file in &files {
        let warnings = ffmpeg_warnings(file);
        let d = decode(file);
        let audio = d.audio_first_pts();
        if !warnings.is_empty() || d.frames() == 0 || audio.is_none_or(|a| a > 20 * MS) {
            failures.push(format!(
                "{}: {} frames, audio at {audio:?}, {warnings}",
                file.display(),
                d.frames()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_branch_for_a_stream_the_file_lacks_is_left_out() {
    init();
    let dir = tmp_dir("missing_stream");
    let source = dir.join("video-only.webm");
    let p = launch(&format!(
        "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         vp8enc ! webmmux ! filesink location={}",
        source.display()
    ));
    expect_eos(&p, Duration::from_secs(20));
    drop(p);
    // The README's two-branch command on a file without audio: the second branch is
    // never fed; the recording goes on without it and the pipeline ends by itself.
    let out = dir.join("copy.webm");
    let took = record_playing_file(&source, &out, Duration::from_secs(15));
    assert!(took < Duration::from_secs(5), "EOS after {took:?}");
    assert_eq!(decode(&out).frames(), 30);
}
