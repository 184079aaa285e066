//! Segments aligned to the wall clock: files start at each multiple of
//! `max-file-duration`, named by their own start.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use gst::prelude::*;

const FRAME: i64 = 33_333_333;

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

#[test]
fn clock_aligned_segments_start_on_each_multiple_of_the_file_duration() {
    init();
    let dir = tmp_dir("aligned");
    // Date fields alone name the files: one per 2 s, each named by its start.
    let p = launch(&format!(
        "mediarecorder name=r duration=7000 max-file-duration=2000 segment-align=clock \
         location={}/al-%H%M%S.webm \
         videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! r. \
         audiotestsrc is-live=true ! r.",
        dir.display()
    ));
    let closed = watch_closed(&recorder(&p));
    p.set_state(gst::State::Playing).unwrap();
    // The wall clock at running time 0, as the test sees it.
    let (_, state, _) = p.state(gst::ClockTime::from_seconds(10));
    assert_eq!(state, gst::State::Playing);
    let running = p.current_running_time().unwrap().nseconds() as i64;
    let wall_at_zero = wall_ns() - running;
    match wait_message(&p, Duration::from_secs(30)) {
        End::Eos(_) => {}
        other => panic!("expected EOS, got {other:?}"),
    }
    drop(p);

    let closed = closed.lock().unwrap().clone();
    assert!(closed.len() >= 4, "{} files", closed.len());
    let mut frames = 0;
    for (i, info) in closed.iter().enumerate() {
        let path = std::path::PathBuf::from(info.get::<String>("location").unwrap());
        frames += decode(&path).frames();
        let first_rt = info
            .get::<Option<gst::ClockTime>>("running-time")
            .unwrap()
            .unwrap()
            .nseconds() as i64;
        let wall = wall_at_zero + first_rt;
        if i == 0 {
            continue; // the first file starts when the recording does
        }
        // Within a frame of an even second (and a few ms for the test's own reading
        // of the clock).
        let off = (wall + 1_000_000_000).rem_euclid(2_000_000_000) - 1_000_000_000;
        assert!(
            off.abs() < FRAME + 5_000_000,
            "file {i} starts {off} ns from an even second"
        );
        // Named by that second.
        let aligned = (wall - off) / 1_000_000_000;
        let name = gst::glib::DateTime::from_unix_local(aligned)
            .unwrap()
            .format("al-%H%M%S.webm")
            .unwrap();
        assert!(
            path.ends_with(name.as_str()),
            "{} named for {name}",
            path.display()
        );
        if i + 1 < closed.len() {
            let duration = info.get::<gst::ClockTime>("duration").unwrap().mseconds();
            assert!(duration.abs_diff(2000) <= 40, "file {i}: {duration} ms");
        }
    }
    assert_eq!(frames, 210, "every frame in one file");
}
