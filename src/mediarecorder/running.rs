//! The element's state changes: the settings checked on NULL->READY, a run prepared on
//! READY->PAUSED, and the current recording finished on PAUSED->READY.

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::MediaRecorder;
use super::state::FINALIZE_TIMEOUT;

impl MediaRecorder {
    /// NULL->READY: the settings make a recording possible and its muxer is installed.
    pub(super) fn check_settings(&self) -> Result<(), gst::StateChangeError> {
        let settings = self.settings.lock().unwrap().clone();
        let rtype = settings.validate().map_err(|err| {
            self.post_error(&err, None);
            gst::StateChangeError
        })?;
        let muxer = rtype.container.muxer();
        if gst::ElementFactory::find(muxer.factory).is_none() {
            gst::element_imp_error!(
                self,
                gst::CoreError::MissingPlugin,
                (
                    "GStreamer element '{}' is missing: install the Debian package {}",
                    muxer.factory,
                    muxer.package
                )
            );
            return Err(gst::StateChangeError);
        }
        Ok(())
    }

    /// READY->PAUSED: the location takes files, and a new run begins (its first frame
    /// may start a recording by itself, its streams flow again).
    pub(super) fn prepare_to_run(&self) -> Result<(), gst::StateChangeError> {
        let location = self.settings.lock().unwrap().location.clone();
        if let Some(path) = location {
            if let Err(err) = self.prepare_location(&path) {
                self.post_error(&err, None);
                return Err(gst::StateChangeError);
            }
        }
        let mut state = self.state.lock().unwrap();
        state.stage.new_run();
        state.ended_by_duration = false;
        state.first_caps_at = None;
        for stream in state.streams.iter_mut() {
            // A new run: streams that ended in the last one flow again.
            stream.eos = false;
            // A linked pad's stage prerolls like any sink: the pipeline reaches PAUSED
            // when media has reached it. Besides being what applications expect, this
            // keeps GStreamer 1.22 from losing the EOS: when a pipeline's move to
            // PAUSED is completed by an upstream streaming thread (no sink prerolls),
            // gst-launch's PLAYING can overtake it and the pipeline never posts EOS
            // (a hand pipeline with filesink async=false hangs the same way, 6 of 40).
            // A pad requested and not linked yet must not hold the preroll back.
            stream.sink.set_async(stream.pad.is_linked());
        }
        Ok(())
    }

    /// PAUSED->READY: the current recording is finalized with what it has, before the
    /// element goes down.
    pub(super) fn finish_on_shutdown(&self) {
        let ended = self.take_recording(&mut self.state.lock().unwrap(), None);
        if let Some(posted) = ended {
            self.notify_state_changed();
            // As long as its files make progress, then the `stop` handlers.
            if !self.dispatcher.is_worker() {
                posted.wait(FINALIZE_TIMEOUT * 2);
            }
            self.dispatcher.wait_idle(FINALIZE_TIMEOUT * 2);
        }
        self.state.lock().unwrap().stage.new_run();
    }

    /// A child posted an error: the recording ends with it.
    pub(super) fn child_failed(&self, error: glib::Error) {
        self.end_recording(Some(error));
    }
}
