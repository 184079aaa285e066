//! What a recording asked for, carried out once the state is unlocked: keyframe
//! requests, warnings, progress messages, syncs to disk, and the end of a live timed
//! recording at its time.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::engine::LIVE_STREAM_WAIT;
use super::imp::{MediaRecorder, CAT};
use super::recording::Followup;
use super::ring;
use super::state::State;
use super::timeline::Kind;

impl MediaRecorder {
    /// Carries out what a recording asked for, with the state unlocked.
    pub(super) fn follow_up(&self, followups: Vec<Followup>) {
        if followups.is_empty() {
            return;
        }
        let mut sinks = None;
        for followup in followups {
            match followup {
                Followup::RequestKeyframe(at) => {
                    let sinks =
                        sinks.get_or_insert_with(|| Self::video_sinks(&self.state.lock().unwrap()));
                    request_keyframes(sinks, at);
                }
                Followup::GiveUp(ids) => self.warn_given_up(&ids),
                Followup::AudioLeftOut(ns) => {
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Failed,
                        (
                            "{} ms of audio came before the first video keyframe and were \
                             left out (a live recording, and an MP4 file, start with a picture)",
                            ns / 1_000_000
                        )
                    );
                }
                Followup::Progress(progress) => self.post_element_message(progress),
                Followup::EndBy { recording, at } => self.end_at(recording, at),
                Followup::SyncToDisk(path, progress) => self.disk_syncs.request(path, progress),
            }
        }
    }

    /// At running time `at` (on the pipeline clock), ends recording `recording` if its
    /// time is up (`Recording::time_is_up`): a live timed recording ends at its
    /// duration even when its encoder is too far behind to deliver the frames that
    /// would end it.
    fn end_at(&self, recording: u64, at: u64) {
        let obj = self.obj();
        let (Some(clock), Some(base)) = (obj.clock(), obj.base_time()) else {
            return;
        };
        let weak = obj.downgrade();
        let id = clock.new_single_shot_id(base + gst::ClockTime::from_nseconds(at));
        let _ = id.wait_async(move |_, _, _| {
            if let Some(obj) = weak.upgrade() {
                let imp = obj.imp();
                imp.guarded(
                    "the end of a timed recording",
                    || (),
                    || imp.end_if_time_is_up(recording),
                );
            }
        });
    }

    /// The timer of `end_at` fired: ends the recording if it is still current and its
    /// time is up, and says how many frames the encoder could not deliver.
    fn end_if_time_is_up(&self, recording: u64) {
        let Some(now) = self.obj().current_running_time() else {
            return;
        };
        let dropped = {
            let mut state = self.state.lock().unwrap();
            state.take_captures();
            let Some(rec) = state.stage.recording_mut().filter(|r| r.id == recording) else {
                return;
            };
            if !rec.time_is_up(now.nseconds()) {
                return;
            }
            let dropped = rec.dropped();
            self.take_recording(&mut state, None);
            dropped
        };
        self.notify_state_changed();
        gst::element_imp_warning!(
            self,
            gst::CoreError::Failed,
            (
                "The encoder could not keep up: the recording ended at its duration with {} \
                 frames lost",
                dropped
            )
        );
    }

    /// Says, once per window, that `pre-record` keeps less than it asks for.
    pub(super) fn warn_pre_record_bounded(&self, window: u64) {
        let message = format!(
            "pre-record={} ms holds more than {} MiB of encoded media: the most recent \
             {} MiB (whole GOPs) are kept",
            window / 1_000_000,
            ring::MAX_BYTES >> 20,
            ring::MAX_BYTES >> 20
        );
        gst::warning!(CAT, imp = self, "{message}");
        gst::element_imp_warning!(self, gst::ResourceError::Settings, ("{}", message));
    }

    /// Says which pads a live recording goes on without, and why they cannot join later.
    fn warn_given_up(&self, ids: &[usize]) {
        let pads: Vec<String> = self
            .state
            .lock()
            .unwrap()
            .streams
            .iter()
            .filter(|s| ids.contains(&s.id))
            .map(|s| s.pad.name().to_string())
            .collect();
        let pads = pads.join(", ");
        gst::warning!(CAT, imp = self, "Recording without {pads}");
        gst::element_imp_warning!(
            self,
            gst::StreamError::Failed,
            (
                "Pad {} sent no media within {} s of a live recording's start: recording \
                 without it (a WebM file's tracks are fixed when it starts)",
                pads,
                LIVE_STREAM_WAIT.as_secs()
            )
        );
    }

    /// The stages of the video branches, where keyframe requests go upstream.
    pub(super) fn video_sinks(state: &State) -> Vec<gst_app::AppSink> {
        state
            .streams
            .iter()
            .filter(|s| s.kind == Some(Kind::Video))
            .map(|s| s.sink.clone())
            .collect()
    }
}

/// Asks the video encoders for a keyframe: the next frame, or the first at running
/// time `at` or later.
pub(super) fn request_keyframes(sinks: &[gst_app::AppSink], at: Option<u64>) {
    for sink in sinks {
        if let Some(pad) = sink.static_pad("sink") {
            let event = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .running_time(at.map(gst::ClockTime::from_nseconds))
                .build();
            pad.push_event(event);
        }
    }
}
