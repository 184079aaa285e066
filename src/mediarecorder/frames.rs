//! The stage of encoded frames, glue: each branch's streaming thread hands its frames
//! here (`on_sample`, `on_eos`); the `stage` decides where each goes (the recording,
//! a recording it starts, the pre-record ring, nowhere) and this carries it out, the
//! followups after unlocking.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::displaymatrix;
use super::imp::{MediaRecorder, CAT};
use super::recording::Recording;
use super::ring::Entry;
use super::stage::{Step, Takes};
use super::state::FINALIZE_TIMEOUT;
use super::timeline::Kind;

impl MediaRecorder {
    /// Whether a frame encoded now would be thrown away (see `Stage::records_nothing`):
    /// an armed camera then costs its capture alone, not a running encoder.
    pub(super) fn records_nothing(&self) -> bool {
        let (autostart, pre_record) = {
            let settings = self.settings.lock().unwrap();
            (settings.autostart, settings.pre_record_ns())
        };
        let state = self.state.lock().unwrap();
        state.stage.records_nothing(autostart, pre_record)
    }

    /// An encoded frame of stream `id` reached the stage: it goes where the stage
    /// decides (the recording, a recording it starts, the pre-record ring, nowhere).
    pub(super) fn on_sample(
        &self,
        id: usize,
        sample: gst::Sample,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(buffer) = sample.buffer_owned() else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let Some(rt) = self.running_time_of(&sample, &buffer) else {
            gst::debug!(
                CAT,
                imp = self,
                "Dropping a frame without timestamp or clock"
            );
            return Ok(gst::FlowSuccess::Ok);
        };
        // The settings are read alone (never while `state` is held): the pre-record
        // window, and a copy when this frame may start a recording by itself.
        let may_start = self.state.lock().unwrap().stage.may_autostart();
        let (pre_record, mut autostart) = {
            let settings = self.settings.lock().unwrap();
            let autostart = (may_start && settings.autostart).then(|| settings.clone());
            (settings.pre_record_ns(), autostart)
        };
        let mut started = false;
        let mut followups = Vec::new();
        let (step, ended) = {
            let mut state = self.state.lock().unwrap();
            // Captures go to the recording, or are forgotten while none runs.
            state.take_captures();
            let Some(stream) = state.streams.iter_mut().find(|s| s.id == id) else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let kind = stream.likely_kind();
            if let Some(caps) = sample.caps_owned() {
                // A track's caps stay those it started with: muxers refuse changes,
                // and the encoder's only change here is the frame rate (the size is
                // kept by scaling), which every frame's timestamp already carries.
                if stream.encoded_caps.is_none() {
                    let caps = displaymatrix::mark(caps, stream.orientation_in_container);
                    stream.encoded_caps = Some(caps.clone());
                    if let Some(rec) = state.stage.recording_mut() {
                        rec.caps_known(id, kind, &caps);
                    }
                }
            }
            let video = kind == Kind::Video;
            let mut frame = Entry {
                rt,
                video,
                keyframe: video && !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                size: buffer.size(),
                data: (id, buffer),
            };
            let step = loop {
                if let Some(rec) = state.stage.recording_mut() {
                    self.set_wall_clock(rec);
                }
                match state.stage.frame(frame, pre_record, autostart.take()) {
                    Step::Start {
                        settings,
                        frame: back,
                    } => {
                        followups = self.begin(&mut state, settings);
                        started = true;
                        frame = back;
                    }
                    step => break step,
                }
            };
            let ended = match &step {
                Step::Recorded { complete: true, .. } => {
                    self.take_recording(&mut state, None).is_some()
                }
                _ => false,
            };
            (step, ended)
        };
        if started {
            self.notify_state_changed();
        }
        match step {
            Step::Idle {
                bounded: Some(window),
            } => self.warn_pre_record_bounded(window),
            Step::Recorded {
                followups: more, ..
            } => followups.extend(more),
            _ => {}
        }
        self.follow_up(followups);
        if ended {
            self.notify_state_changed();
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// A frame's running time; a frame without timestamp is placed at the moment it
    /// arrives.
    fn running_time_of(&self, sample: &gst::Sample, buffer: &gst::Buffer) -> Option<u64> {
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
        segment
            .and_then(|seg| {
                buffer
                    .pts()
                    .or(buffer.dts())
                    .and_then(|t| seg.to_running_time(t))
            })
            .or_else(|| self.obj().current_running_time())
            .map(gst::ClockTime::nseconds)
    }

    /// Tells a recording the wall-clock time at running time 0, once.
    fn set_wall_clock(&self, rec: &mut Recording) {
        if rec.needs_wall_clock() {
            if let Some(at_zero) = self.wall_clock_at_zero() {
                rec.wall_clock(at_zero);
            }
        }
    }

    /// Stream `id` ended: a recording that has all its streams ended is finished
    /// before the bin posts EOS.
    pub(super) fn on_eos(&self, id: usize) {
        let ended = {
            let mut state = self.state.lock().unwrap();
            if let Some(s) = state.streams.iter_mut().find(|s| s.id == id) {
                s.eos = true;
            }
            let Some(rec) = state.stage.recording_mut() else {
                return;
            };
            rec.end_of_stream(id);
            if rec.is_complete() {
                self.take_recording(&mut state, None)
            } else {
                None
            }
        };
        gst::debug!(
            CAT,
            imp = self,
            "stream {id} ended; recording complete: {}",
            ended.is_some()
        );
        if let Some(posted) = ended {
            self.notify_state_changed();
            // The bin posts EOS once this returns: finalize first, so an application
            // that shuts down on EOS finds the file complete and the stop message
            // before the EOS (waited for while the file makes progress).
            if !self.dispatcher.is_worker() && !posted.wait(FINALIZE_TIMEOUT * 2) {
                // Whatever is left is finished in the background, if the application
                // gives it the time; it must not be lost without a word.
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "The recording did not finish in time (its files made no progress \
                         for {} s): EOS goes on, and its last file may lack its end",
                        (FINALIZE_TIMEOUT * 2).as_secs()
                    )
                );
            }
            gst::debug!(CAT, imp = self, "recording finished: EOS goes on");
        }
    }

    /// Wall-clock time (ns since 1970) at running time 0: the clock's time now, less
    /// the running time now.
    fn wall_clock_at_zero(&self) -> Option<i64> {
        let running = self.obj().current_running_time()?.nseconds();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        i64::try_from(now)
            .ok()?
            .checked_sub(i64::try_from(running).ok()?)
    }
}
