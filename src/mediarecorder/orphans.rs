//! Linked pads that will never get a stream.
//!
//! `uridecodebin name=d ... d. ! queue ! r. d. ! queue ! r.` on a file without audio
//! links two pads, but the second queue is never fed: a muxer would wait for it
//! forever, and since the stages preroll, so would the pipeline (PREROLLING, no
//! message). While a run starts, such a pad is found (the element feeding it has no
//! linked input, and another stream has been flowing for a while) and its stage is
//! ended: the recording goes on without it, with a warning naming the pad.
//!
//! A stream that is slow to start is not such a pad: a live source's (a network
//! camera's decoded video shows up seconds after its audio) is waited for as long as
//! a live recording waits for any stream (`LIVE_STREAM_WAIT`), and a pad that has seen
//! its stream start is only waiting for its format. Whatever comes on a pad after it
//! was given up is taken and left out, with a warning: its source gets no error.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::engine::LIVE_STREAM_WAIT;
use super::imp::{MediaRecorder, CAT};

/// How long another stream flows before a pad whose feeder has no input is given up:
/// a demuxer exposes its streams within milliseconds of each other. Live, the wait is
/// `LIVE_STREAM_WAIT`.
const ORPHAN_GRACE: Duration = Duration::from_secs(1);
const CHECK_EVERY: gst::ClockTime = gst::ClockTime::from_mseconds(250);

/// A pad's stream, as the check sees it.
pub struct Candidate {
    pub id: usize,
    /// The stream told its format (or ended): it is not an orphan.
    pub started: bool,
    /// The element feeding the pad has input pads, none of them linked.
    pub feeder_unfed: bool,
    /// The stream has started (`stream-start` reached the pad): its format is to come.
    pub stream_began: bool,
}

/// Which pads to give up at `now`, when another stream first flowed at `first_flow`;
/// `live`: the streams that flow are live.
pub fn orphans(
    candidates: &[Candidate],
    first_flow: Option<Instant>,
    now: Instant,
    live: bool,
) -> Vec<usize> {
    let Some(first) = first_flow else {
        return Vec::new();
    };
    let grace = if live { LIVE_STREAM_WAIT } else { ORPHAN_GRACE };
    if now.duration_since(first) < grace {
        return Vec::new();
    }
    candidates
        .iter()
        .filter(|c| !c.started && !c.stream_began && c.feeder_unfed)
        .map(|c| c.id)
        .collect()
}

/// The element feeding `pad` has input pads and none is linked.
fn feeder_unfed(pad: &gst::Pad) -> bool {
    let Some(feeder) = pad.peer().and_then(|p| p.parent_element()) else {
        return false;
    };
    let inputs = feeder.sink_pads();
    !inputs.is_empty() && inputs.iter().all(|p| !p.is_linked())
}

impl MediaRecorder {
    /// Starts checking for orphan pads until every linked pad has a stream.
    pub(super) fn watch_for_orphans(&self) {
        let clock = gst::SystemClock::obtain();
        let id = clock.new_periodic_id(clock.time() + CHECK_EVERY, CHECK_EVERY);
        let weak = self.obj().downgrade();
        let waiting = id.wait_async(move |_, _, id| match weak.upgrade() {
            Some(obj) => obj.imp().end_orphans(),
            // The element is gone: stop the clock calling.
            None => id.unschedule(),
        });
        if waiting.is_ok() {
            if let Some(old) = self.state.lock().unwrap().orphan_check.replace(id) {
                old.unschedule();
            }
        }
    }

    pub(super) fn stop_watching_for_orphans(&self) {
        if let Some(id) = self.state.lock().unwrap().orphan_check.take() {
            id.unschedule();
        }
    }

    fn end_orphans(&self) {
        let (orphans, sinks, done, grace) = {
            let state = self.state.lock().unwrap();
            let linked: Vec<_> = state.streams.iter().filter(|s| s.pad.is_linked()).collect();
            let candidates: Vec<Candidate> = linked
                .iter()
                .map(|s| Candidate {
                    id: s.id,
                    started: s.kind.is_some() || s.eos,
                    feeder_unfed: feeder_unfed(s.pad.upcast_ref()),
                    stream_began: s.pad.sticky_event::<gst::event::StreamStart>(0).is_some(),
                })
                .collect();
            let done = candidates.iter().all(|c| c.started);
            let live = state.streams.iter().any(|s| s.live);
            let orphans = orphans(&candidates, state.first_caps_at, Instant::now(), live);
            for s in linked.iter().filter(|s| orphans.contains(&s.id)) {
                s.orphaned.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let sinks: Vec<(String, gst_app::AppSink)> = linked
                .iter()
                .filter(|s| orphans.contains(&s.id))
                .map(|s| (s.pad.name().to_string(), s.sink.clone()))
                .collect();
            let grace = if live { LIVE_STREAM_WAIT } else { ORPHAN_GRACE };
            (orphans, sinks, done, grace)
        };
        if done || !orphans.is_empty() {
            self.stop_watching_for_orphans();
        }
        for (pad, sink) in sinks {
            gst::warning!(CAT, imp = self, "Pad {pad} gets no stream: ending it");
            gst::element_imp_warning!(
                self,
                gst::StreamError::Failed,
                (
                    "Pad {} is linked but gets no stream (the element feeding it has had \
                     no input for {} s: a branch for a stream the source does not have): \
                     recording without it",
                    pad,
                    grace.as_secs()
                )
            );
            // Ended like a stream that reached its end: the stage prerolls on the EOS
            // and the recording leaves the pad out.
            if let Some(sink_pad) = sink.static_pad("sink") {
                sink_pad.send_event(gst::event::StreamStart::new(&format!("orphan-{pad}")));
                let segment = gst::FormattedSegment::<gst::ClockTime>::new();
                sink_pad.send_event(gst::event::Segment::new(&segment));
                sink_pad.send_event(gst::event::Eos::new());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: usize, started: bool, feeder_unfed: bool, stream_began: bool) -> Candidate {
        Candidate {
            id,
            started,
            feeder_unfed,
            stream_began,
        }
    }

    #[test]
    fn only_unfed_pads_are_given_up_after_the_grace() {
        let candidates = [
            candidate(0, true, false, true),
            candidate(1, false, true, false),
            candidate(2, false, false, false),
        ];
        let t0 = Instant::now();
        assert!(orphans(&candidates, None, t0, false).is_empty());
        let early = t0 + Duration::from_millis(900);
        assert!(orphans(&candidates, Some(t0), early, false).is_empty());
        assert_eq!(
            orphans(&candidates, Some(t0), t0 + ORPHAN_GRACE, false),
            [1]
        );
    }

    #[test]
    fn a_live_stream_slow_to_start_is_waited_for() {
        // A network camera's decoded video appears seconds after its audio.
        let candidates = [
            candidate(0, true, false, true),
            candidate(1, false, true, false),
        ];
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(2_500);
        assert!(orphans(&candidates, Some(t0), later, true).is_empty());
        assert_eq!(
            orphans(&candidates, Some(t0), t0 + LIVE_STREAM_WAIT, true),
            [1]
        );
        // A stream that has started only waits for its format: never an orphan here.
        let candidates = [
            candidate(0, true, false, true),
            candidate(1, false, true, true),
        ];
        assert!(orphans(&candidates, Some(t0), t0 + Duration::from_secs(60), false).is_empty());
    }
}
