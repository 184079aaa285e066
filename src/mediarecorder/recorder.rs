//! The web API's actions (`start-recording`, `stop-recording`, `pause-recording`,
//! `resume-recording`, `request-data`), and how a recording is made current and taken
//! out again for finishing.

use std::sync::Arc;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::chunks::Chunk;
use super::events::{Event, StopPosted};
use super::followups::request_keyframes;
use super::imp::{MediaRecorder, CAT};
use super::plan;
use super::recording::{Followup, Recording, SubmitJob};
use super::state::{RecorderState, Settings, State};
use super::writer::WriterHooks;

impl MediaRecorder {
    /// `start-recording`: starts a recording with a copy of the settings, beginning
    /// with the pre-record ring; false (and nothing fired but an `error` for settings
    /// that cannot record) when it cannot start.
    pub(super) fn start_recording(&self) -> bool {
        let settings = self.settings.lock().unwrap().clone();
        if let Err(err) = self.validate_for_start(&settings) {
            gst::warning!(
                CAT,
                imp = self,
                "start-recording refused: {}",
                err.message()
            );
            self.queue_event(Event::Error(err), RecorderState::Inactive);
            return false;
        }
        if let Err(why) = self.can_start() {
            gst::info!(CAT, imp = self, "start-recording refused: {why}");
            return false;
        }
        let followups = {
            let mut state = self.state.lock().unwrap();
            if !state.streams.iter().any(|s| !s.eos && s.pad.is_linked()) {
                gst::info!(
                    CAT,
                    imp = self,
                    "start-recording refused: no linked stream is flowing (all ended)"
                );
                return false;
            }
            if !state.stage.is_idle() {
                gst::info!(
                    CAT,
                    imp = self,
                    "start-recording while {:?}: ignored",
                    state.recorder()
                );
                return false;
            }
            self.begin(&mut state, settings)
        };
        self.notify_state_changed();
        let mut followups = followups;
        followups.push(Followup::RequestKeyframe(None));
        self.follow_up(followups);
        true
    }

    /// A recording needs the element running and staying so: below PAUSED, or while
    /// it goes down, nothing would ever end the recording (no `stop` would follow).
    fn can_start(&self) -> Result<(), &'static str> {
        // Where the element is heading: the state a change is taking it to, else the
        // state it is in (both read at once; a zero timeout never waits).
        let (_, current, pending) = self.obj().state(gst::ClockTime::ZERO);
        let target = match pending {
            gst::State::VoidPending => current,
            pending => pending,
        };
        if target < gst::State::Paused {
            return Err("the element is not going to PAUSED or PLAYING");
        }
        Ok(())
    }

    pub(super) fn stop_recording(&self) -> bool {
        if !self.end_recording(None) {
            gst::info!(CAT, imp = self, "stop-recording while inactive: ignored");
            return false;
        }
        true
    }

    pub(super) fn pause_recording(&self) -> bool {
        self.set_paused(true)
    }

    pub(super) fn resume_recording(&self) -> bool {
        self.set_paused(false)
    }

    /// Pauses or resumes; acts only from the opposite state, as the web API does.
    pub(super) fn set_paused(&self, pause: bool) -> bool {
        let (to, event) = if pause {
            (RecorderState::Paused, Event::Pause)
        } else {
            (RecorderState::Recording, Event::Resume)
        };
        let mut state = self.state.lock().unwrap();
        if !state.stage.set_paused(pause) {
            gst::info!(
                CAT,
                imp = self,
                "{} while {:?}: ignored",
                if pause {
                    "pause-recording"
                } else {
                    "resume-recording"
                },
                state.recorder()
            );
            return false;
        }
        self.queue_event(event, to);
        // The recording resumes at a keyframe: ask for one now.
        let video = if pause {
            Vec::new()
        } else {
            Self::video_sinks(&state)
        };
        drop(state);
        self.obj().notify("state");
        request_keyframes(&video, None);
        true
    }

    /// `request-data`: fires `dataavailable` with what the current file holds since
    /// the last chunk (empty when no file is open).
    pub(super) fn request_data(&self) -> bool {
        let state = self.state.lock().unwrap();
        let Some(rec) = state.stage.recording() else {
            gst::info!(CAT, imp = self, "request-data while inactive: ignored");
            return false;
        };
        let now = state.recorder();
        if !rec.take_chunk(|chunk| self.queue_event(Event::Data(chunk), now)) {
            self.queue_event(Event::Data(Chunk::default()), now);
        }
        true
    }

    /// What keeps these settings from recording now, the location included.
    pub(super) fn validate_for_start(&self, settings: &Settings) -> Result<(), glib::Error> {
        settings.validate()?;
        match &settings.location {
            Some(path) => self.prepare_location(path),
            None => Ok(()),
        }
    }

    /// Makes a new recording current, beginning with the pre-record ring. Called with
    /// the state locked; returns what to do once it is unlocked.
    pub(super) fn begin(&self, state: &mut State, settings: Settings) -> Vec<Followup> {
        // What was captured before it began is not the new recording's to count.
        state.take_captures();
        let (plan, effective_type) = plan::plan(&settings, &state.streams);
        state.next_recording_id += 1;
        let id = state.next_recording_id;
        let rec = Recording::new(
            id,
            effective_type,
            settings.autostart,
            plan,
            self.writer_hooks(id),
            self.job_submitter(),
        );
        state.last_bytes = 0;
        self.queue_event(Event::Start, RecorderState::Recording);
        // The callers found the stage idle under this lock, so it takes the recording.
        state.stage.begin(rec).unwrap_or_default()
    }

    /// What a recording's files need from the element.
    fn writer_hooks(&self, recording_id: u64) -> WriterHooks {
        let weak = self.obj().downgrade();
        let dataavailable =
            glib::subclass::signal::SignalId::lookup("dataavailable", self.obj().type_())
                .expect("the signal exists");
        let keep_bytes = Arc::new(move || {
            weak.upgrade().is_some_and(|obj| {
                glib::signal::signal_has_handler_pending(&obj, dataavailable, None, false)
            })
        });
        let weak = self.obj().downgrade();
        let on_event = Arc::new(move |event| {
            if let Some(obj) = weak.upgrade() {
                obj.imp().session_event(recording_id, event);
            }
        });
        WriterHooks {
            keep_bytes,
            on_event,
            next_index: self.next_file_index.clone(),
        }
    }

    /// Runs a recording's file jobs on the dispatcher, in the order they were made.
    fn job_submitter(&self) -> SubmitJob {
        let weak = self.obj().downgrade();
        Arc::new(move |job| {
            if let Some(obj) = weak.upgrade() {
                obj.imp().run_file_job(job);
            }
        })
    }

    /// Ends the current recording, if any: the state becomes inactive at once, and the
    /// dispatcher finalizes the file, then fires (`error`,) `dataavailable`, `stop`.
    pub(super) fn end_recording(&self, error: Option<glib::Error>) -> bool {
        let ended = self.take_recording(&mut self.state.lock().unwrap(), error);
        if ended.is_some() {
            self.notify_state_changed();
        }
        ended.is_some()
    }

    /// Takes the current recording out for finishing; under the state lock.
    pub(super) fn take_recording(
        &self,
        state: &mut State,
        error: Option<glib::Error>,
    ) -> Option<Arc<StopPosted>> {
        state.take_captures();
        let rec = state.stage.end()?;
        if rec.reached_duration() && rec.autostart {
            state.ended_by_duration = true;
        }
        Some(self.queue_finish(rec, error))
    }

    /// A recording started or ended: `state` and `mime-type` (which reads back the
    /// recording's effective type) changed.
    pub(super) fn notify_state_changed(&self) {
        let obj = self.obj();
        obj.notify("state");
        obj.notify("mime-type");
    }
}
