//! The stage with synthetic frames and exact times: no pipeline, no sleeps.

use super::*;
use crate::mediarecorder::ring::test_frames::{audio, video, MS};
use crate::mediarecorder::ring::MAX_BYTES;

/// A recording that notes what it took: each frame's payload (its running time in
/// ms) and running time.
#[derive(Debug, Default, PartialEq)]
struct Taken {
    name: &'static str,
    frames: Vec<(u64, u64)>,
    paused: bool,
    /// Complete once it holds this many frames.
    complete_at: Option<usize>,
}

impl Taken {
    fn named(name: &'static str) -> Self {
        Taken {
            name,
            ..Taken::default()
        }
    }

    fn payloads(&self) -> Vec<u64> {
        self.frames.iter().map(|(payload, _)| *payload).collect()
    }
}

impl Takes<u64> for Taken {
    /// The payload taken, so a test sees what taking asked for.
    type Followup = u64;

    fn take_frame(&mut self, frame: u64, rt: u64) -> Vec<u64> {
        self.frames.push((frame, rt));
        vec![frame]
    }

    fn pause(&mut self) {
        self.paused = true;
    }

    fn resume(&mut self) {
        self.paused = false;
    }

    fn is_complete(&self) -> bool {
        self.complete_at.is_some_and(|n| self.frames.len() >= n)
    }
}

type TestStage = Stage<Taken, u64>;
type TestStep = Step<u64, u64, &'static str>;

/// Sorts a frame with no autostart offered.
fn sort(stage: &mut TestStage, frame: Entry<u64>, pre_record: u64) -> TestStep {
    stage.frame(frame, pre_record, None)
}

fn name(stage: &TestStage) -> &'static str {
    match stage.activity() {
        Activity::Idle(_) => "idle",
        Activity::Recording(_) => "recording",
        Activity::Paused(_) => "paused",
    }
}

#[test]
fn the_first_frame_of_a_run_starts_one_recording_by_itself() {
    let mut stage = TestStage::default();
    assert!(stage.may_autostart());
    let Step::Start { settings, frame } = stage.frame(video(0, true), 0, Some("settings")) else {
        panic!("the first frame did not start a recording");
    };
    assert_eq!(settings, "settings", "the offered settings come back");
    assert_eq!(frame.data, 0, "and so does the frame");
    assert!(stage.begin(Taken::named("auto")).unwrap().is_empty());
    assert!(matches!(
        sort(&mut stage, frame, 0),
        Step::Recorded {
            complete: false,
            ..
        }
    ));
    // Offered again while recording: the frame is recorded, nothing starts.
    assert!(matches!(
        stage.frame(video(33, false), 0, Some("again")),
        Step::Recorded { .. }
    ));
    let rec = stage.end().unwrap();
    assert_eq!(rec.payloads(), [0, 33], "the starting frame is the first");
    // Stopped after its autostart: frames no longer start a recording this run.
    assert!(!stage.may_autostart());
    assert!(matches!(
        stage.frame(video(66, true), 0, Some("settings")),
        Step::Idle { bounded: None }
    ));
    stage.new_run();
    assert!(matches!(
        stage.frame(video(99, true), 0, Some("settings")),
        Step::Start { .. }
    ));
}

#[test]
fn the_pre_record_ring_hands_over_oldest_first_then_live_frames_follow() {
    let mut stage = TestStage::default();
    let window = 2_000 * MS;
    // A keyframe each second, a frame every 100 ms, audio between: 10 s while idle.
    for t in (0..10_000).step_by(100) {
        assert!(matches!(
            sort(&mut stage, video(t, t % 1000 == 0), window),
            Step::Idle { bounded: None }
        ));
        sort(&mut stage, audio(t + 50), window);
    }
    assert_eq!(stage.ring_bytes(), 30 * 100 + 30 * 10, "3 s: whole GOPs");
    let followups = stage.begin(Taken::named("manual")).unwrap();
    assert_eq!(name(&stage), "recording");
    assert_eq!(stage.ring_bytes(), 0, "the ring is drained");
    // Newest frame 9950 ms, window 2 s: the GOP at 7000 ms covers 7950 ms.
    let handed: Vec<u64> = (7000..10_000)
        .step_by(100)
        .flat_map(|t| [t, t + 50])
        .collect();
    assert_eq!(followups, handed, "taking the ring asks for each frame");
    for t in (10_000..10_300).step_by(100) {
        sort(&mut stage, video(t, false), window);
    }
    let rec = stage.end().unwrap();
    let live: Vec<u64> = (10_000..10_300).step_by(100).collect();
    assert_eq!(
        rec.payloads(),
        [handed.clone(), live].concat(),
        "no duplicate, no gap"
    );
    assert!(
        rec.frames.iter().all(|(ms, rt)| ms * MS == *rt),
        "each frame keeps its running time"
    );
    assert_eq!(stage.ring_bytes(), 0, "idle again with an empty ring");
}

#[test]
fn without_pre_record_idle_frames_go_nowhere() {
    let mut stage = TestStage::default();
    stage.new_run();
    for t in 0..5 {
        assert!(matches!(
            sort(&mut stage, video(t * 100, true), 0),
            Step::Idle { bounded: None }
        ));
    }
    assert_eq!(stage.ring_bytes(), 0);
    assert!(stage.begin(Taken::named("r")).unwrap().is_empty());
}

#[test]
fn turning_pre_record_off_forgets_the_ring() {
    let mut stage = TestStage::default();
    sort(&mut stage, video(0, true), 5_000 * MS);
    sort(&mut stage, video(100, false), 5_000 * MS);
    assert_eq!(stage.ring_bytes(), 200);
    stage.clear_ring();
    assert_eq!(stage.ring_bytes(), 0);
    assert!(
        stage.begin(Taken::named("r")).unwrap().is_empty(),
        "nothing from before it was turned off"
    );
}

#[test]
fn a_start_while_recording_is_refused_and_leaves_the_recording() {
    let mut stage = TestStage::default();
    stage.begin(Taken::named("first")).unwrap();
    sort(&mut stage, video(0, true), 0);
    let refused = stage.begin(Taken::named("second")).unwrap_err();
    assert_eq!(refused.name, "second");
    assert_eq!(stage.recording().map(|r| r.name), Some("first"));
    assert_eq!(stage.recording().map(Taken::payloads), Some(vec![0]));
}

#[test]
fn pause_and_resume_act_only_from_the_opposite_state() {
    let mut stage = TestStage::default();
    assert!(!stage.set_paused(true), "nothing to pause while idle");
    assert!(!stage.set_paused(false), "nothing to resume while idle");
    assert_eq!(name(&stage), "idle");
    stage.begin(Taken::named("r")).unwrap();
    assert!(!stage.set_paused(false), "resume while recording");
    assert!(stage.set_paused(true));
    assert_eq!(name(&stage), "paused");
    assert!(stage.recording().unwrap().paused);
    assert!(!stage.set_paused(true), "pause while paused");
    // A paused recording still takes frames: its engine decides what pausing drops.
    assert!(matches!(
        sort(&mut stage, video(0, true), 0),
        Step::Recorded { .. }
    ));
    assert!(stage.set_paused(false));
    assert_eq!(name(&stage), "recording");
    assert!(!stage.recording().unwrap().paused);
    stage.set_paused(true);
    let rec = stage.end().expect("a paused recording ends too");
    assert_eq!(rec.payloads(), [0]);
    assert_eq!(name(&stage), "idle");
    assert!(stage.end().is_none(), "nothing to end while idle");
}

#[test]
fn a_recording_says_when_it_is_complete() {
    let mut stage = TestStage::default();
    stage
        .begin(Taken {
            complete_at: Some(2),
            ..Taken::named("timed")
        })
        .unwrap();
    assert!(matches!(
        sort(&mut stage, video(0, true), 0),
        Step::Recorded {
            complete: false,
            ..
        }
    ));
    let Step::Recorded {
        followups,
        complete,
    } = sort(&mut stage, video(33, false), 0)
    else {
        panic!("not recorded");
    };
    assert_eq!(followups, [33]);
    assert!(complete);
}

#[test]
fn the_byte_bound_is_told_once_per_window() {
    let mut stage = TestStage::default();
    let big = |rt_ms: u64| Entry {
        size: MAX_BYTES / 2 + 1,
        ..video(rt_ms, true)
    };
    let day = 86_400_000 * MS;
    assert!(matches!(
        sort(&mut stage, big(0), day),
        Step::Idle { bounded: None }
    ));
    assert!(matches!(
        sort(&mut stage, big(1_000), day),
        Step::Idle { bounded: Some(w) } if w == day
    ));
    assert!(matches!(
        sort(&mut stage, big(2_000), day),
        Step::Idle { bounded: None }
    ));
    let hour = 3_600_000 * MS;
    assert!(matches!(
        sort(&mut stage, big(3_000), hour),
        Step::Idle { bounded: Some(w) } if w == hour
    ));
}

#[test]
fn nothing_is_recorded_only_when_no_start_or_window_waits() {
    let mut stage = TestStage::default();
    let window = 5_000 * MS;
    assert!(
        !stage.records_nothing(true, 0),
        "autostart: the first frame starts"
    );
    assert!(
        stage.records_nothing(false, 0),
        "armed, waiting for start-recording"
    );
    assert!(
        !stage.records_nothing(false, window),
        "the pre-record window keeps frames"
    );
    stage.frame(video(0, true), 0, Some(()));
    stage.begin(Taken::named("r")).unwrap();
    assert!(!stage.records_nothing(false, 0), "recording");
    stage.end();
    assert!(stage.records_nothing(true, 0), "stopped after an autostart");
    stage.new_run();
    assert!(!stage.records_nothing(true, 0), "a new run starts again");
}
