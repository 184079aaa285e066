//! The threads a recording costs (issue 25: no more threads per camera than a hand
//! pipeline, + 1). GStreamer's system clock starts a thread of its own, `GstSystemClock`,
//! the first time anything waits on it asynchronously, and keeps it for the rest of the
//! process; a hand pipeline never starts it. Each test runs in a process of its own
//! (`isolated`), so the threads it sees are its recording's.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gst::prelude::*;

/// Frames of the camera file (30 fps): 2 s, many turns of the element's checks.
const FRAMES: u32 = 60;

/// The names of this process's threads now.
fn thread_names() -> Vec<String> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task lists threads");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_string())
        .collect()
}

/// The names of this process's threads seen (every 20 ms) while `run` runs.
fn threads_seen_during(run: impl FnOnce()) -> Vec<String> {
    let done = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (done, seen) = (done.clone(), seen.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let mut seen = seen.lock().unwrap();
                for name in thread_names() {
                    if !seen.contains(&name) {
                        seen.push(name);
                    }
                }
                drop(seen);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    run();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
}

/// A small H.264 + AAC file, as a camera sends them; `audio: false` leaves the sound out.
fn camera_file(dir: &Path, audio: bool) -> PathBuf {
    let path = dir.join(format!("camera-audio-{audio}.mp4"));
    let sound = if audio {
        format!(
            "audiotestsrc num-buffers={FRAMES} samplesperbuffer=1600 ! \
             audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! m."
        )
    } else {
        String::new()
    };
    let pipeline = launch(&format!(
        "videotestsrc pattern=ball num-buffers={FRAMES} ! \
         video/x-raw,width=320,height=240,framerate=30/1 ! \
         x264enc bitrate=300 key-int-max=30 speed-preset=ultrafast ! h264parse ! \
         mp4mux name=m ! filesink location={} {sound}",
        path.display()
    ));
    expect_eos(&pipeline, Duration::from_secs(60));
    path
}

/// Video packets in `path`.
fn video_packets(path: &Path) -> usize {
    ffprobe_csv(path, "-select_streams v -show_entries packet=pts_time")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

fn assert_no_clock_thread(seen: &[String], what: &str) {
    assert!(
        !seen.iter().any(|name| name == "GstSystemClock"),
        "{what}: the process started GStreamer's GstSystemClock thread (threads seen: {seen:?})"
    );
}

/// The kept-as-is camera: an MP4 file demuxed and played live-paced into the
/// element, both tracks kept as they are. The element's periodic check for pads that
/// will never get a stream runs on its own job threads: no `GstSystemClock` thread.
#[test]
fn a_kept_as_is_recording_starts_no_clock_thread() {
    isolated(Duration::from_secs(120), || {
        init();
        let dir = tmp_dir("threads-kept-as-is");
        let src = camera_file(&dir, true);
        assert_no_clock_thread(&thread_names(), "making the camera file");
        let out = dir.join("out.mp4");
        let seen = threads_seen_during(|| {
            let pipeline = launch(&format!(
                "filesrc location={} ! qtdemux name=d \
                 d.video_0 ! queue ! identity sync=true ! r. \
                 d.audio_0 ! queue ! identity sync=true ! r. \
                 mediarecorder name=r mime-type=video/mp4 location={}",
                src.display(),
                out.display()
            ));
            expect_eos(&pipeline, Duration::from_secs(60));
        });
        assert!(
            seen.iter().any(|name| name == "mediarecorder"),
            "the element's jobs ran on its workers (threads seen: {seen:?})"
        );
        assert_no_clock_thread(&seen, "recording");
        assert_eq!(video_packets(&out), FRAMES as usize, "{}", out.display());
    });
}

/// A branch for a stream the file does not have is still given up (and said by name)
/// without a clock thread: the check that finds it runs on the element's job threads.
#[test]
fn a_branch_without_a_stream_is_given_up_without_a_clock_thread() {
    isolated(Duration::from_secs(120), || {
        init();
        let dir = tmp_dir("threads-orphan");
        let src = camera_file(&dir, false);
        assert_no_clock_thread(&thread_names(), "making the camera file");
        let out = dir.join("out.mp4");
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let seen = threads_seen_during(|| {
            let pipeline = launch(&format!(
                "filesrc location={} ! qtdemux name=d \
                 d. ! queue ! r. d. ! queue ! r. \
                 mediarecorder name=r mime-type=video/mp4 location={}",
                src.display(),
                out.display()
            ));
            pipeline.set_state(gst::State::Playing).unwrap();
            let end = wait_end(&pipeline, Duration::from_secs(30), |msg| {
                if let gst::MessageView::Warning(w) = msg.view() {
                    warnings.lock().unwrap().push(w.error().to_string());
                }
            });
            assert!(matches!(end, End::Eos(_)), "{end:?}");
        });
        let warnings = warnings.lock().unwrap();
        assert!(
            warnings.iter().any(|w| w.contains("gets no stream")),
            "{warnings:?}"
        );
        assert_no_clock_thread(&seen, "recording");
        assert_eq!(video_packets(&out), FRAMES as usize, "{}", out.display());
    });
}
