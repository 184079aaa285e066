//! The stage's decisions, pure: what the element is doing (idle with its pre-record
//! ring, recording, paused), what becomes of each encoded frame, and the web actions'
//! moves between those. Generic over the recording and the frame's payload, so tests
//! follow every frame without a pipeline; the glue (`frames`, `recorder`) carries out
//! what is decided.

use super::ring::{Entry, Ring};

/// A recording as the stage sees it: it takes frames, pauses, and says when it is done.
pub(super) trait Takes<T> {
    /// What taking a frame asks of the element once it has unlocked its state.
    type Followup;
    /// Takes one encoded frame captured at running time `rt`.
    fn take_frame(&mut self, frame: T, rt: u64) -> Vec<Self::Followup>;
    fn pause(&mut self);
    fn resume(&mut self);
    /// Every stream ended, or the duration was reached: the recording must end.
    fn is_complete(&self) -> bool;
}

/// What the element is doing; the web API's `state` names it.
pub(super) enum Activity<R, T> {
    /// No recording: the ring holds the most recent encoded frames while `pre-record`
    /// asks for them (and is empty otherwise).
    Idle(Ring<T>),
    Recording(R),
    /// The recording drops media until resumed.
    Paused(R),
}

/// What became of one encoded frame.
#[derive(Debug)]
pub(super) enum Step<F, T, S> {
    /// No recording runs and none starts: the frame went to the pre-record ring, or
    /// nowhere. `bounded` is the window whose byte bound just cut it short, told once
    /// per window.
    Idle { bounded: Option<u64> },
    /// The frame starts a recording (`autostart`): the glue makes one with `settings`,
    /// hands it to `begin`, and gives the frame back to `frame`.
    Start { settings: S, frame: Entry<T> },
    /// The recording took the frame; `complete` when it must now end.
    Recorded { followups: Vec<F>, complete: bool },
}

/// The stage: the activity, with what it remembers across recordings of one run.
pub(super) struct Stage<R, T> {
    activity: Activity<R, T>,
    /// This run has started a recording by `autostart`: once that stops, frames do not
    /// start another.
    autostarted: bool,
    /// The pre-record window last reported as cut short by the ring's byte bound.
    warned: Option<u64>,
}

impl<R, T> Default for Stage<R, T> {
    fn default() -> Self {
        Stage {
            activity: Activity::Idle(Ring::default()),
            autostarted: false,
            warned: None,
        }
    }
}

impl<R: Takes<T>, T> Stage<R, T> {
    pub(super) fn activity(&self) -> &Activity<R, T> {
        &self.activity
    }

    pub(super) fn recording(&self) -> Option<&R> {
        match &self.activity {
            Activity::Idle(_) => None,
            Activity::Recording(rec) | Activity::Paused(rec) => Some(rec),
        }
    }

    pub(super) fn recording_mut(&mut self) -> Option<&mut R> {
        match &mut self.activity {
            Activity::Idle(_) => None,
            Activity::Recording(rec) | Activity::Paused(rec) => Some(rec),
        }
    }

    pub(super) fn is_idle(&self) -> bool {
        matches!(self.activity, Activity::Idle(_))
    }

    /// Bytes of media the pre-record ring holds.
    pub(super) fn ring_bytes(&self) -> usize {
        match &self.activity {
            Activity::Idle(ring) => ring.bytes(),
            _ => 0,
        }
    }

    /// `pre-record` was turned off: what the ring holds is forgotten.
    pub(super) fn clear_ring(&mut self) {
        if let Activity::Idle(ring) = &mut self.activity {
            ring.clear();
        }
    }

    /// The pipeline starts (again): its first frame may start a recording by itself.
    pub(super) fn new_run(&mut self) {
        self.autostarted = false;
    }

    /// Whether the next frame would start a recording if `autostart` is on.
    pub(super) fn may_autostart(&self) -> bool {
        self.is_idle() && !self.autostarted
    }

    /// Whether a frame encoded now would be thrown away: nothing records, nothing is
    /// about to start by itself, and no pre-record window keeps frames.
    pub(super) fn records_nothing(&self, autostart: bool, pre_record: u64) -> bool {
        let no_start_waits = !autostart || self.autostarted;
        self.is_idle() && pre_record == 0 && no_start_waits
    }

    /// Sorts one encoded frame: into the recording; or, while idle, into a recording
    /// it starts (when `autostart` offers the settings to start one with), into the
    /// ring of `pre_record` ns, or nowhere.
    pub(super) fn frame<S>(
        &mut self,
        frame: Entry<T>,
        pre_record: u64,
        autostart: Option<S>,
    ) -> Step<R::Followup, T, S> {
        match &mut self.activity {
            Activity::Recording(rec) | Activity::Paused(rec) => Step::Recorded {
                followups: rec.take_frame(frame.data, frame.rt),
                complete: rec.is_complete(),
            },
            Activity::Idle(ring) => {
                if let Some(settings) = autostart.filter(|_| !self.autostarted) {
                    self.autostarted = true;
                    return Step::Start { settings, frame };
                }
                if pre_record == 0 {
                    return Step::Idle { bounded: None };
                }
                let cut_short = ring.push(frame, pre_record);
                let bounded = (cut_short && self.warned != Some(pre_record)).then(|| {
                    self.warned = Some(pre_record);
                    pre_record
                });
                Step::Idle { bounded }
            }
        }
    }

    /// Makes `rec` current, beginning with what the ring holds, oldest first. Returns
    /// what taking those frames asks for; `Err(rec)` when a recording already runs.
    pub(super) fn begin(&mut self, mut rec: R) -> Result<Vec<R::Followup>, R> {
        let Activity::Idle(ring) = &mut self.activity else {
            return Err(rec);
        };
        let mut followups = Vec::new();
        for entry in ring.drain() {
            followups.extend(rec.take_frame(entry.data, entry.rt));
        }
        self.activity = Activity::Recording(rec);
        Ok(followups)
    }

    /// Ends the current recording and returns it; the stage is idle again, its ring
    /// empty.
    pub(super) fn end(&mut self) -> Option<R> {
        match self.take_activity() {
            Activity::Recording(rec) | Activity::Paused(rec) => Some(rec),
            idle => {
                self.activity = idle;
                None
            }
        }
    }

    /// Pauses (`pause`) or resumes the recording; acts only from the opposite state,
    /// as the web API does. True when it acted.
    pub(super) fn set_paused(&mut self, pause: bool) -> bool {
        let (next, acted) = match (self.take_activity(), pause) {
            (Activity::Recording(mut rec), true) => {
                rec.pause();
                (Activity::Paused(rec), true)
            }
            (Activity::Paused(mut rec), false) => {
                rec.resume();
                (Activity::Recording(rec), true)
            }
            (unchanged, _) => (unchanged, false),
        };
        self.activity = next;
        acted
    }

    /// The activity, leaving an empty idle ring in its place.
    fn take_activity(&mut self) -> Activity<R, T> {
        std::mem::replace(&mut self.activity, Activity::Idle(Ring::default()))
    }
}

#[cfg(test)]
#[path = "stage_tests.rs"]
mod tests;
