//! Audio that stays in sync with the video when a live microphone drops buffers.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gst::prelude::*;

/// Element messages of the recorder, as they are posted.
fn watch_messages(pipeline: &gst::Pipeline) -> Arc<Mutex<Vec<gst::Structure>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    pipeline.bus().unwrap().set_sync_handler(move |_, msg| {
        if let gst::MessageView::Element(e) = msg.view() {
            if let Some(st) = e.structure() {
                s.lock().unwrap().push(st.to_owned());
            }
        }
        gst::BusSyncReply::Pass
    });
    seen
}

/// The file's audio as 48 kHz mono samples, decoded by ffmpeg.
fn audio_samples(path: &std::path::Path) -> Vec<i16> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-map", "0:a", "-f", "s16le", "-ac", "1", "-ar", "48000", "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Where each tick of `audiotestsrc wave=ticks` begins, in seconds of the file: the
/// first loud sample after at least half a second of quiet.
fn tick_onsets(samples: &[i16]) -> Vec<f64> {
    let mut onsets = Vec::new();
    let mut last_loud: Option<usize> = None;
    for (i, s) in samples.iter().enumerate() {
        if s.unsigned_abs() > 3000 {
            if last_loud.is_none_or(|l| i - l > 24_000) {
                onsets.push(i as f64 / 48_000.0);
            }
            last_loud = Some(i);
        }
    }
    onsets
}

#[test]
fn a_microphone_dropping_buffers_stays_in_sync_with_the_video() {
    init();
    let dir = tmp_dir("audio_gaps");
    let path = dir.join("gaps.webm");
    // 5 % of the microphone's buffers are lost before the recorder: without filling
    // the gaps, 10 s of audio came out 0.26 s short and its ticks drifted ahead.
    let p = launch(&format!(
        "mediarecorder name=r duration=15000 location={} \
         videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! r. \
         audiotestsrc is-live=true wave=ticks ! identity drop-probability=0.05 ! r.",
        path.display()
    ));
    let messages = watch_messages(&p);
    let closed = watch_closed(&recorder(&p));
    expect_eos(&p, Duration::from_secs(40));
    drop(p);

    let messages = messages.lock().unwrap().clone();
    let stop = messages
        .iter()
        .find(|m| m.name() == "mediarecorder-stop")
        .expect("a stop message");
    let gaps = stop.get::<u64>("audio-gaps").unwrap();
    let silence = stop.get::<u64>("silence").unwrap();
    assert!(gaps > 0, "the drops were noticed: {stop}");
    assert!(
        silence > 100_000_000 && silence < 1_500_000_000,
        "about 5 % of 15 s filled: {stop}"
    );
    assert!(
        messages
            .iter()
            .filter(|m| m.name() == "mediarecorder-progress")
            .any(|m| m.get::<u64>("audio-gaps").unwrap() > 0),
        "progress counts the gaps too"
    );

    // Audio and video end together.
    let decoded = decode(&path);
    assert_eq!(decoded.frames(), 450);
    let video_end = decoded.video_pts.last().unwrap() + 33_333_333;
    let audio_end = decoded.audio_first_pts().unwrap() + decoded.audio_duration();
    assert!(
        video_end.abs_diff(audio_end) <= 40_000_000,
        "video ends at {video_end} ns, audio at {audio_end} ns"
    );

    // Each tick, captured at running time k s, sits at k s minus the running time of
    // the file's first frame, from the first second to the last.
    let first_rt = closed.lock().unwrap()[0]
        .get::<Option<gst::ClockTime>>("running-time")
        .unwrap()
        .expect("the first frame's running time")
        .nseconds() as f64
        / 1e9;
    let onsets = tick_onsets(&audio_samples(&path));
    let mut checked = 0;
    for k in 1..15 {
        let expected = k as f64 - first_rt;
        // A tick whose first buffer was dropped begins later: only whole ticks count.
        let Some(found) = onsets.iter().find(|t| (*t - expected).abs() < 0.3) else {
            continue;
        };
        let offset = found - expected;
        if offset > 0.020 {
            // The tick's first buffer was lost: it begins a buffer (23 ms) late or
            // more. Audio that drifts comes early, never late.
            continue;
        }
        assert!(
            offset >= -0.020,
            "tick {k} at {found:.3} s, expected {expected:.3} s"
        );
        checked += 1;
    }
    assert!(checked >= 10, "{checked} ticks checked of 14: {onsets:?}");
}
