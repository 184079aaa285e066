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
//!
//! The check is a job on the element's dispatcher that submits itself again every
//! `CHECK_EVERY` until every linked pad has a stream, pads were given up, or the run
//! ends (`stop_watching_for_orphans`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::dispatcher::Delayed;
use super::engine::LIVE_STREAM_WAIT;
use super::imp::{MediaRecorder, CAT};

/// How long another stream flows before a pad whose feeder has no input is given up:
/// a demuxer exposes its streams within milliseconds of each other. Live, the wait is
/// `LIVE_STREAM_WAIT`.
const ORPHAN_GRACE: Duration = Duration::from_secs(1);
/// The check runs this often, as a job of the element's own (`Dispatcher::submit_at`):
/// a clock's `wait_async` would start GStreamer's `GstSystemClock` thread, which a
/// pipeline without the element does not have, for the rest of the process.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// A run's check for orphan pads, while it goes on: its next turn on the element's
/// dispatcher.
pub struct OrphanWatch {
    /// Which watch: a turn of one that was stopped does nothing.
    watch: u64,
    next: Delayed,
}

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
    if now.duration_since(first) < grace(live) {
        return Vec::new();
    }
    candidates
        .iter()
        .filter(|c| !c.started && !c.stream_began && c.feeder_unfed)
        .map(|c| c.id)
        .collect()
}

/// The check goes on after a turn that gave up `orphans`: until every pad has a stream
/// or pads were given up.
pub fn keep_watching(candidates: &[Candidate], orphans: &[usize]) -> bool {
    orphans.is_empty() && !candidates.iter().all(|c| c.started)
}

fn grace(live: bool) -> Duration {
    if live {
        LIVE_STREAM_WAIT
    } else {
        ORPHAN_GRACE
    }
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
        static WATCHES: AtomicU64 = AtomicU64::new(0);
        let watch = WATCHES.fetch_add(1, Ordering::Relaxed);
        let next = self.next_orphan_turn(watch);
        let old = self
            .state
            .lock()
            .unwrap()
            .orphan_check
            .replace(OrphanWatch { watch, next });
        if let Some(old) = old {
            self.dispatcher.cancel(old.next);
        }
    }

    pub(super) fn stop_watching_for_orphans(&self) {
        let watch = self.state.lock().unwrap().orphan_check.take();
        if let Some(watch) = watch {
            self.dispatcher.cancel(watch.next);
        }
    }

    /// Submits the next turn of `watch`, on the dispatcher in `CHECK_EVERY`; a turn
    /// that finds the element gone does nothing.
    fn next_orphan_turn(&self, watch: u64) -> Delayed {
        let weak = self.obj().downgrade();
        self.dispatcher
            .submit_at(Instant::now() + CHECK_EVERY, move || {
                if let Some(obj) = weak.upgrade() {
                    obj.imp().end_orphans(watch);
                }
            })
    }

    /// A turn of `watch`: gives up the pads that will never get a stream, then stops
    /// or comes again in `CHECK_EVERY`.
    fn end_orphans(&self, watch: u64) {
        let (sinks, grace) = {
            let mut state = self.state.lock().unwrap();
            if state.orphan_check.as_ref().map(|w| w.watch) != Some(watch) {
                // Stopped (or a new run watches) after this turn was due.
                return;
            }
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
            let live = state.streams.iter().any(|s| s.live);
            let orphans = orphans(&candidates, state.first_caps_at, Instant::now(), live);
            for s in linked.iter().filter(|s| orphans.contains(&s.id)) {
                s.orphaned.store(true, Ordering::Relaxed);
            }
            let sinks: Vec<(String, gst_app::AppSink)> = linked
                .iter()
                .filter(|s| orphans.contains(&s.id))
                .map(|s| (s.pad.name().to_string(), s.sink.clone()))
                .collect();
            // Decided under the lock, so that a stop meanwhile leaves no turn behind.
            state.orphan_check = keep_watching(&candidates, &orphans).then(|| OrphanWatch {
                watch,
                next: self.next_orphan_turn(watch),
            });
            (sinks, grace(live))
        };
        for (pad, _) in &sinks {
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
        }
        if sinks.is_empty() {
            return;
        }
        // Ended from a thread of its own, not this job's: a sink still prerolling holds
        // an EOS until the pipeline plays, and the EOS that completes a recording waits
        // (`on_eos`) for its file to be finalized, a job queued behind this one.
        let ending = sinks.clone();
        let spawned = std::thread::Builder::new()
            .name("mediarecorder-orphans".into())
            .spawn(move || end_streams(&ending));
        if let Err(err) = spawned {
            gst::warning!(
                CAT,
                imp = self,
                "No thread to end the pads without a stream ({err}): ending them here"
            );
            end_streams(&sinks);
        }
    }
}

/// Ends each stage like a stream that reached its end: it prerolls on the EOS and the
/// recording leaves its pad out.
fn end_streams(sinks: &[(String, gst_app::AppSink)]) {
    for (pad, sink) in sinks {
        if let Some(sink_pad) = sink.static_pad("sink") {
            sink_pad.send_event(gst::event::StreamStart::new(&format!("orphan-{pad}")));
            let segment = gst::FormattedSegment::<gst::ClockTime>::new();
            sink_pad.send_event(gst::event::Segment::new(&segment));
            sink_pad.send_event(gst::event::Eos::new());
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

    #[test]
    fn the_check_goes_on_until_every_pad_has_a_stream_or_one_is_given_up() {
        let waiting = [
            candidate(0, true, false, true),
            candidate(1, false, false, true),
        ];
        assert!(keep_watching(&waiting, &[]));
        assert!(!keep_watching(&waiting, &[1]));
        let all_started = [
            candidate(0, true, false, true),
            candidate(1, true, false, true),
        ];
        assert!(!keep_watching(&all_started, &[]));
        // No linked pad: nothing to wait for.
        assert!(!keep_watching(&[], &[]));
    }
}
