//! The element's properties: what `set_property` stores in the settings (refusing a
//! `location` change while recording and strings that are not UTF-8), and what
//! `get_property` reads back, live figures of the current recording included.

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{MediaRecorder, CAT};
use super::recording::Recording;
use super::state::RecorderState;

/// A string property's value; `Err` when it is not UTF-8 (C callers may set any bytes,
/// and reading those as a Rust string would panic where no panic may unwind).
fn utf8_string(value: &glib::Value) -> Result<Option<String>, ()> {
    use glib::translate::ToGlibPtr;
    if !value.type_().is_a(glib::Type::STRING) {
        return Err(());
    }
    // SAFETY: the value holds a string (checked above); the pointer is read, not kept.
    let raw = unsafe { glib::gobject_ffi::g_value_get_string(value.to_glib_none().0) };
    if raw.is_null() {
        return Ok(None);
    }
    // SAFETY: a GValue string is NUL-terminated and lives as long as `value`.
    let bytes = unsafe { std::ffi::CStr::from_ptr(raw) };
    bytes.to_str().map(|s| Some(s.to_owned())).map_err(|_| ())
}

impl MediaRecorder {
    /// `set_property`: stores the value in the settings, which the next recording copies.
    pub(super) fn set_setting(&self, name: &str, value: &glib::Value) {
        let recording = !self.state.lock().unwrap().stage.is_idle();
        let mut s = self.settings.lock().unwrap();
        match name {
            "location" => {
                if recording {
                    drop(s);
                    gst::warning!(
                        CAT,
                        imp = self,
                        "Refusing to change 'location' while recording"
                    );
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::Settings,
                        ("'location' cannot change while recording; stop the recording first")
                    );
                    return;
                }
                match utf8_string(value) {
                    Ok(location) => s.location = location.filter(|l| !l.is_empty()),
                    Err(()) => {
                        drop(s);
                        self.refuse_non_utf8("location");
                    }
                }
            }
            "duration" => s.duration_ms = value.get().unwrap_or(0),
            "mime-type" => match utf8_string(value) {
                Ok(mime) => s.mime_type = mime.unwrap_or_default(),
                Err(()) => {
                    drop(s);
                    self.refuse_non_utf8("mime-type");
                }
            },
            "video-bits-per-second" => s.video_bps = value.get().unwrap_or(0),
            "audio-bits-per-second" => s.audio_bps = value.get().unwrap_or(0),
            "bits-per-second" => s.total_bps = value.get().unwrap_or(0),
            "timeslice" => s.timeslice_ms = value.get().unwrap_or(0),
            "autostart" => s.autostart = value.get().unwrap_or(true),
            "audio-bitrate-mode" => s.audio_bitrate_mode = value.get().unwrap_or_default(),
            "video-keyframe-interval-duration" => {
                s.keyframe_interval_duration_ms = value.get().unwrap_or(0)
            }
            "video-keyframe-interval-count" => s.keyframe_interval_count = value.get().unwrap_or(0),
            "video-encoder" => s.video_encoder = value.get().ok().flatten(),
            "pre-record" => {
                s.pre_record_ms = value.get().unwrap_or(0);
                if s.pre_record_ms == 0 {
                    self.state.lock().unwrap().stage.clear_ring();
                }
            }
            "max-file-duration" => s.max_file_duration_ms = value.get().unwrap_or(0),
            "max-file-size" => s.max_file_size = value.get().unwrap_or(0),
            "max-files" => s.max_files = value.get().unwrap_or(0),
            "max-total-bytes" => s.max_total_bytes = value.get().unwrap_or(0),
            "min-free-bytes" => s.min_free_bytes = value.get().unwrap_or(0),
            "max-file-age" => s.max_file_age_ms = value.get().unwrap_or(0),
            "segment-align" => s.segment_align = value.get().unwrap_or_default(),
            "audio-encoder" => s.audio_encoder = value.get().ok().flatten(),
            _ => {}
        }
    }

    fn refuse_non_utf8(&self, property: &str) {
        gst::warning!(CAT, imp = self, "Refusing a {property} that is not UTF-8");
        gst::element_imp_warning!(
            self,
            gst::ResourceError::Settings,
            (
                "'{}' was set to bytes that are not valid UTF-8: the value is refused and \
                 the previous one kept",
                property
            )
        );
    }

    /// `get_property`: the settings, or what the current (or last) recording reports.
    pub(super) fn get_setting(&self, name: &str) -> glib::Value {
        match name {
            "state" => self.visible_state().to_value(),
            "bytes-written" => {
                let state = self.state.lock().unwrap();
                let live = state.stage.recording().map(Recording::bytes_written);
                live.unwrap_or(state.last_bytes).to_value()
            }
            "pre-record-bytes" => (self.state.lock().unwrap().stage.ring_bytes() as u64).to_value(),
            "frames-dropped" => {
                let state = self.state.lock().unwrap();
                let dropped = match state.stage.recording() {
                    Some(rec) => rec.dropped(),
                    None => state.last_dropped,
                };
                dropped.to_value()
            }
            "mime-type" => {
                if let Some(t) = self
                    .state
                    .lock()
                    .unwrap()
                    .stage
                    .recording()
                    .map(|r| r.effective_type.clone())
                {
                    return t.to_value();
                }
                self.settings.lock().unwrap().mime_type.to_value()
            }
            _ => {
                let s = self.settings.lock().unwrap();
                match name {
                    "location" => s.location.to_value(),
                    "duration" => s.duration_ms.to_value(),
                    "video-bits-per-second" => s.video_bps.to_value(),
                    "audio-bits-per-second" => s.audio_bps.to_value(),
                    "bits-per-second" => s.total_bps.to_value(),
                    "timeslice" => s.timeslice_ms.to_value(),
                    "autostart" => s.autostart.to_value(),
                    "audio-bitrate-mode" => s.audio_bitrate_mode.to_value(),
                    "video-keyframe-interval-duration" => {
                        s.keyframe_interval_duration_ms.to_value()
                    }
                    "video-keyframe-interval-count" => s.keyframe_interval_count.to_value(),
                    "video-encoder" => s.video_encoder.to_value(),
                    "pre-record" => s.pre_record_ms.to_value(),
                    "max-file-duration" => s.max_file_duration_ms.to_value(),
                    "max-file-size" => s.max_file_size.to_value(),
                    "max-files" => s.max_files.to_value(),
                    "max-total-bytes" => s.max_total_bytes.to_value(),
                    "min-free-bytes" => s.min_free_bytes.to_value(),
                    "max-file-age" => s.max_file_age_ms.to_value(),
                    "segment-align" => s.segment_align.to_value(),
                    "audio-encoder" => s.audio_encoder.to_value(),
                    _ => unimplemented!("property {name}"),
                }
            }
        }
    }

    /// Inside a handler of an event, the state the event was fired in; elsewhere the
    /// current state.
    pub(super) fn visible_state(&self) -> RecorderState {
        if let Some((thread, state)) = *self.event_state.lock().unwrap() {
            if thread == std::thread::current().id() {
                return state;
            }
        }
        self.state.lock().unwrap().recorder()
    }
}
