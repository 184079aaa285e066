//! Recording for the long haul: segments, file name patterns, loop recording,
//! pre-record.

mod common;

use std::time::Duration;

use common::*;
use gst::prelude::*;

const AV: &str =
    "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! r. \
                  audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=1 ! r.";

#[test]
fn segments_split_one_recording_into_finished_files() {
    init();
    let dir = tmp_dir("segments");
    let p = launch(&format!(
        "mediarecorder name=r duration=7000 max-file-duration=2000 location={}/seg-%05d.webm {AV}",
        dir.display()
    ));
    let closed = watch_closed(&recorder(&p));
    expect_eos(&p, Duration::from_secs(20));
    drop(p);
    let files = files_with_extension(&dir, "webm");
    let names: Vec<String> = files.iter().map(|f| name_of(f)).collect();
    assert_eq!(
        names,
        [
            "seg-00000.webm",
            "seg-00001.webm",
            "seg-00002.webm",
            "seg-00003.webm"
        ]
    );
    let mut frames = 0;
    let mut samples = 0;
    for (i, file) in files.iter().enumerate() {
        let index = webm_index_of(file);
        let duration = index.duration_ms.expect("every segment is finalized");
        let expected = if i < 3 { 2000.0 } else { 1000.0 };
        assert!(
            (duration - expected).abs() <= 34.0,
            "{names:?}[{i}]: {duration} ms"
        );
        assert!(!index.cue_times_ms.is_empty(), "segment {i} has no cues");
        let d = decode(file);
        assert_eq!(d.video_pts[0], 0, "segment {i} starts at 0");
        assert!(
            d.audio_first_pts().unwrap() < 30 * MS,
            "segment {i} audio start"
        );
        frames += d.frames();
        let file_samples = ffprobe_audio_samples(file);
        if i > 0 {
            // Split at the same media time as the video: what the previous file's
            // DiscardPadding cut, this file's pre-skip keeps. A packet whose head
            // would need a pre-skip over 9 ms (the clean-cut rule, see README) is not
            // split (ffmpeg rejects what matroskamux writes for it): it ends the
            // previous file whole, so a file may start up to 11 ms (528 samples) late
            // and the previous one end as much later.
            let expected: u64 = if i < 3 { 96_000 } else { 48_000 };
            assert!(
                file_samples.abs_diff(expected) <= 530,
                "segment {i}: {file_samples} samples"
            );
        }
        let warnings = ffmpeg_warnings(file);
        assert!(warnings.is_empty(), "segment {i}: ffmpeg says {warnings}");
        samples += file_samples;
    }
    // Nothing lost or doubled at the boundaries.
    assert_eq!(frames, 210);
    // The first file's audio may begin up to one packet after its video.
    assert!(
        (7 * 48_000 - 960..=7 * 48_000 + 4).contains(&samples),
        "{samples} samples in all"
    );
    let closed = closed.lock().unwrap();
    assert_eq!(closed.len(), 4);
    let closed_frames: u64 = closed.iter().map(|s| s.get::<u64>("frames").unwrap()).sum();
    assert_eq!(closed_frames, 210);
    // Each file's own times, and when its first frame was captured, 2 s apart.
    let mut running_times = Vec::new();
    for (i, info) in closed.iter().enumerate() {
        assert_eq!(
            info.get::<gst::ClockTime>("first").unwrap(),
            gst::ClockTime::ZERO
        );
        let expected = if i < 3 { 2000 } else { 1000 };
        let duration = info.get::<gst::ClockTime>("duration").unwrap().mseconds();
        assert!(duration.abs_diff(expected) <= 34, "file {i}: {duration} ms");
        running_times.push(
            info.get::<gst::ClockTime>("running-time")
                .unwrap()
                .mseconds(),
        );
    }
    for pair in running_times.windows(2) {
        assert!(
            (pair[1] - pair[0]).abs_diff(2000) <= 34,
            "{running_times:?}"
        );
    }
    assert_eq!(
        closed[0]
            .get::<Option<String>>("location")
            .unwrap()
            .as_deref(),
        files[0].to_str()
    );
}

#[test]
fn loop_recording_deletes_only_its_own_oldest_files() {
    init();
    let dir = tmp_dir("loop");
    let keep = dir.join("keep-me.webm");
    std::fs::write(&keep, b"not ours").unwrap();
    let p = launch(&format!(
        "mediarecorder name=r duration=4000 max-file-duration=1000 max-files=2 \
         location={}/loop-%d.webm {AV}",
        dir.display()
    ));
    expect_eos(&p, Duration::from_secs(20));
    drop(p);
    let names: Vec<String> = files_with_extension(&dir, "webm")
        .iter()
        .map(|f| name_of(f))
        .collect();
    assert_eq!(names, ["keep-me.webm", "loop-2.webm", "loop-3.webm"]);
    for name in ["loop-2.webm", "loop-3.webm"] {
        assert_eq!(decode(&dir.join(name)).frames(), 30);
    }
}

#[test]
fn a_plain_name_with_segments_asks_for_an_index() {
    init();
    let dir = tmp_dir("plain_segments");
    let p = launch(&format!(
        "videotestsrc is-live=true ! mediarecorder name=r max-file-duration=1000 location={}/x.webm",
        dir.display()
    ));
    assert_says(&expect_error(&p, Duration::from_secs(5)), &["%05d"]);
}

#[test]
fn shutdown_without_eos_finalizes_the_open_segment() {
    init();
    let dir = tmp_dir("segment_no_eos");
    let p = launch(&format!(
        "mediarecorder name=r max-file-duration=1000 location={}/s-%02d.webm {AV}",
        dir.display()
    ));
    let media = MediaCount::start(&recorder(&p));
    p.set_state(gst::State::Playing).unwrap();
    // Into the third 1 s segment, well before a fourth.
    media.wait_recorded(2600 * MS, Duration::from_secs(15));
    drop(media);
    p.set_state(gst::State::Null).unwrap();
    drop(p);
    let files = files_with_extension(&dir, "webm");
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        duration_ms(f);
        assert!(decode(f).frames() > 0);
    }
}

#[test]
fn pre_record_begins_before_the_trigger() {
    init();
    let dir = tmp_dir("pre_record");
    let path = dir.join("pre.webm");
    let p = launch(&format!(
        "mediarecorder name=r autostart=false pre-record=2000 video-keyframe-interval-duration=1000 \
         location={} {AV}",
        path.display()
    ));
    let r = recorder(&p);
    p.set_state(gst::State::Playing).unwrap();
    wait_flowed(&r, 3000 * MS, Duration::from_secs(15));
    let held_early = r.property::<u64>("pre-record-bytes");
    wait_flowed(&r, 2000 * MS, Duration::from_secs(15));
    let held_late = r.property::<u64>("pre-record-bytes");
    assert!(held_early > 0);
    // Bounded by the window (2 s plus at most one 1 s GOP), not by the wait.
    assert!(
        held_late < held_early * 2,
        "{held_early} bytes after 3 s, {held_late} after 5 s"
    );
    let (events, _) = Events::watch(&r);
    let closed = watch_closed(&r);
    let trigger = p.current_running_time().unwrap();
    let media = MediaCount::start(&r);
    assert!(r.emit_by_name::<bool>("start-recording", &[]));
    // The recording goes on from what was held, keyframe or not: every frame from the
    // trigger on is recorded.
    media.wait_flowed(1000 * MS, Duration::from_secs(10));
    drop(media);
    assert!(r.emit_by_name::<bool>("stop-recording", &[]));
    assert!(events.wait_for("stop", 1, Duration::from_secs(10)));
    drop(p);
    // The first frame was captured 2 s before the trigger, or up to one GOP (1 s)
    // earlier, by the pipeline clock.
    let first = closed.lock().unwrap()[0]
        .get::<gst::ClockTime>("running-time")
        .unwrap();
    let before = trigger.mseconds() as i64 - first.mseconds() as i64;
    assert!(
        (1967..=3034).contains(&before),
        "the file starts {before} ms before the trigger"
    );
    // 2 s before the trigger (up to one GOP more) and 1 s after, without a gap.
    let d = decode(&path);
    let duration = duration_ms(&path);
    assert!(
        (2900.0..=4100.0).contains(&duration),
        "duration {duration} ms"
    );
    assert_eq!(d.video_pts[0], 0);
    for pair in d.video_pts.windows(2) {
        assert!(pair[1] - pair[0] < 40 * MS, "gap {pair:?}");
    }
    assert!(d.audio_first_pts().unwrap() < 30 * MS);
    let keyframes: Vec<u64> = webm_index_of(&path)
        .blocks
        .iter()
        .filter(|b| b.1 == 1 && b.2)
        .map(|b| b.0)
        .collect();
    assert_eq!(keyframes[0], 0, "the file starts with a keyframe");
}

#[test]
fn max_file_size_starts_a_new_file_at_the_next_keyframe() {
    init();
    let dir = tmp_dir("size_segments");
    let p = launch(&format!(
        "mediarecorder name=r duration=3000 max-file-size=60000 \
         video-keyframe-interval-duration=500 location={}/size-%03d.webm {AV}",
        dir.display()
    ));
    let closed = watch_closed(&recorder(&p));
    expect_eos(&p, Duration::from_secs(20));
    drop(p);
    let files = files_with_extension(&dir, "webm");
    assert!(files.len() >= 2, "{files:?}");
    let mut frames = 0;
    for (i, file) in files.iter().enumerate() {
        duration_ms(file);
        let size = std::fs::metadata(file).unwrap().len();
        if i + 1 < files.len() {
            // Cut at the first keyframe after the size was reached: past it, by less
            // than a keyframe interval's worth.
            assert!(size >= 60_000, "{}: {size} bytes", file.display());
        }
        frames += decode(file).frames();
    }
    assert_eq!(frames, 90);
    assert_eq!(closed.lock().unwrap().len(), files.len());
}
