//! Audio that stays in sync with the video when a live microphone drops buffers.

mod common;

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

/// The file's audio as 48 kHz mono samples decoded by ffmpeg, with the file time of
/// the first one (the first packet need not be at 0: the file starts with the video).
fn audio_samples(path: &std::path::Path) -> (f64, Vec<i16>) {
    let first: f64 = ffprobe_csv(
        path,
        "-select_streams a -show_frames -read_intervals %+#1 -show_entries frame=pts_time",
    )
    .trim()
    .parse()
    .expect("the first audio frame's time");
    let out = ffmpeg("-v error", path, "-map 0:a -f s16le -ac 1 -ar 48000 -");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    (first, samples)
}

/// Where each tick of `audiotestsrc wave=ticks` begins: the first loud sample after
/// at least half a second of quiet. Times are `start` plus the sample's offset.
#[derive(Default)]
struct TickFinder {
    onsets: Vec<f64>,
    last_loud: Option<f64>,
}

impl TickFinder {
    fn feed(&mut self, start: f64, samples: impl Iterator<Item = i16>) {
        for (i, s) in samples.enumerate() {
            if s.unsigned_abs() > 3000 {
                let t = start + i as f64 / 48_000.0;
                if self.last_loud.is_none_or(|l| t - l > 0.5) {
                    self.onsets.push(t);
                }
                self.last_loud = Some(t);
            }
        }
    }
}

/// The running time at which each tick is captured, read from the source's buffers
/// before any is lost.
fn watch_ticks(source: &gst::Element) -> Arc<Mutex<TickFinder>> {
    let ticks = Arc::new(Mutex::new(TickFinder::default()));
    let t = ticks.clone();
    source
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer() {
                let pts = buffer.pts().expect("a live source stamps its buffers");
                let map = buffer.map_readable().unwrap();
                let samples = map
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]));
                t.lock().unwrap().feed(pts.nseconds() as f64 / 1e9, samples);
            }
            gst::PadProbeReturn::Ok
        });
    ticks
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
         audiotestsrc name=mic is-live=true wave=ticks ! audio/x-raw,format=S16LE,rate=48000,channels=1 ! identity drop-probability=0.05 ! r.",
        path.display()
    ));
    let messages = watch_messages(&p);
    let captured = watch_ticks(&p.by_name("mic").unwrap());
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

    // Each tick sits at the running time it was captured at minus the running time of
    // the file's first frame, from the first second to the last.
    let first_rt = closed.lock().unwrap()[0]
        .get::<Option<gst::ClockTime>>("running-time")
        .unwrap()
        .expect("the first frame's running time")
        .nseconds() as f64
        / 1e9;
    let captured = std::mem::take(&mut captured.lock().unwrap().onsets);
    let (audio_start, samples) = audio_samples(&path);
    let mut in_file = TickFinder::default();
    in_file.feed(audio_start, samples.into_iter());
    let onsets = in_file.onsets;
    let mut checked = 0;
    for (k, capture_rt) in captured.iter().enumerate().filter(|(_, t)| **t > first_rt) {
        let expected = capture_rt - first_rt;
        // A tick whose first buffer was dropped begins later: only whole ticks count.
        let Some(found) = onsets.iter().find(|t| (*t - expected).abs() < 0.3) else {
            continue;
        };
        let offset = found - expected;
        if offset > 0.015 {
            // The tick's first buffer was lost: it begins a buffer (21 ms) late or
            // more. Audio that drifts comes early, never late.
            continue;
        }
        assert!(
            offset >= -0.015,
            "tick {k} at {found:.3} s, expected {expected:.3} s"
        );
        checked += 1;
    }
    assert!(
        checked >= 10,
        "{checked} ticks checked of {}: captured at {captured:?}, in the file at {onsets:?}",
        captured.len()
    );
}
