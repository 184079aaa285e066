//! The recorder: settings and state, the actions of the web API, and the stage where
//! encoded frames are sorted into the current recording.
//!
//! Encoded frames arrive in each branch's streaming thread (`on_sample`). The
//! `Timeline` decides whether a frame belongs to the recording and where it lands;
//! frames that do are restamped and handed to the recording's `MuxSession`. Events
//! (`start`, `dataavailable`, ...) are queued on the dispatcher in the order the state
//! changed, and emitted from its thread with the state they were fired in.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::branch::{self, EncoderParams};
use super::chunks::Chunk;
use super::encoding;
use super::imp::{MediaRecorder, CAT};
use super::mimetype::{Codec, RecordingType};
use super::naming;
use super::recording::{ClosedFile, OpenFile, Recording};
use super::ring::{Entry, Ring};
use super::session::SessionEvent;
use super::timeline::Kind;
use super::{BitrateMode, RecorderState};

/// Raw media waiting before an encoder of a live source beyond which frames are dropped.
const DROP_LEVEL: u64 = 1_000_000_000;
/// A step back in running time this large means the running time restarted.
const TIME_JUMP: u64 = 500_000_000;
/// Keeps `duration` in nanoseconds within u64.
pub const MAX_DURATION_MS: u64 = u64::MAX / 1_000_000 - 1;
/// How long finalizing a file may take before the element gives up on it.
pub(super) const FINALIZE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Settings {
    pub location: Option<String>,
    pub duration_ms: u64,
    pub mime_type: String,
    pub video_bps: u32,
    pub audio_bps: u32,
    pub total_bps: u32,
    pub timeslice_ms: u32,
    pub autostart: bool,
    pub audio_bitrate_mode: BitrateMode,
    pub keyframe_interval_duration_ms: u64,
    pub keyframe_interval_count: u32,
    pub video_encoder: Option<gst::Element>,
    pub audio_encoder: Option<gst::Element>,
    pub pre_record_ms: u64,
    pub max_file_duration_ms: u64,
    pub max_file_size: u64,
    pub max_files: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: None,
            duration_ms: 0,
            mime_type: String::new(),
            video_bps: 0,
            audio_bps: 0,
            total_bps: 0,
            timeslice_ms: 0,
            autostart: true,
            audio_bitrate_mode: BitrateMode::Variable,
            keyframe_interval_duration_ms: 0,
            keyframe_interval_count: 0,
            video_encoder: None,
            audio_encoder: None,
            pre_record_ms: 0,
            max_file_duration_ms: 0,
            max_file_size: 0,
            max_files: 0,
        }
    }
}

impl Settings {
    pub(super) fn recording_type(&self) -> RecordingType {
        RecordingType::parse(&self.mime_type)
            .unwrap_or_else(|_| RecordingType::parse("").expect("the empty type is the default"))
    }

    /// Keyframe spacing: as set, else following the timeslice, else 2 s.
    pub(super) fn keyframe_interval_ms(&self) -> u64 {
        if self.keyframe_interval_duration_ms > 0 {
            return self.keyframe_interval_duration_ms;
        }
        match self.timeslice_ms {
            0 => encoding::DEFAULT_KEYFRAME_INTERVAL_MS,
            t => u64::from(t).min(encoding::DEFAULT_KEYFRAME_INTERVAL_MS),
        }
    }

    /// What makes a recording impossible before it starts.
    fn validate(&self) -> Result<RecordingType, glib::Error> {
        if self.keyframe_interval_duration_ms > 0 && self.keyframe_interval_count > 0 {
            return Err(glib::Error::new(
                gst::CoreError::NotImplemented,
                "video-keyframe-interval-duration and video-keyframe-interval-count are both \
                 set: set only one",
            ));
        }
        let segmenting = self.max_file_duration_ms > 0 || self.max_file_size > 0;
        if let Some(location) = &self.location {
            if segmenting && !naming::has_index(location) {
                return Err(glib::Error::new(
                    gst::ResourceError::Settings,
                    &format!(
                        "Segments need a file name per segment: add an index such as %05d \
                         to location '{location}'"
                    ),
                ));
            }
        }
        RecordingType::parse(&self.mime_type).map_err(|e| {
            glib::Error::new(
                gst::CoreError::NotImplemented,
                &format!("Unsupported mime-type '{}': {e}", self.mime_type),
            )
        })
    }

    /// Per-kind bitrates, with `bits-per-second` split when set.
    fn bitrates(&self, has_video: bool, has_audio: bool) -> (u32, u32) {
        if self.total_bps > 0 {
            encoding::split_total_bitrate(self.total_bps, has_video, has_audio)
        } else {
            (self.video_bps, self.audio_bps)
        }
    }
}

/// One request pad and its branch.
pub struct Stream {
    pub(super) id: usize,
    pub(super) pad: gst::GhostPad,
    pub(super) queue: gst::Element,
    pub(super) sink: gst_app::AppSink,
    pub(super) middle: Vec<gst::Element>,
    pub(super) kind: Option<Kind>,
    pub(super) codec: Option<Codec>,
    /// Media type of the input the chain was built for.
    pub(super) input: Option<String>,
    pub(super) encoded_caps: Option<gst::Caps>,
    pub(super) eos: bool,
    /// Running time of the last encoded frame, to notice it going back, and the
    /// timeline generation it was placed in.
    pub(super) last_rt: Option<u64>,
    pub(super) seen_generation: u64,
    /// Raw frames dropped before the encoder because it could not keep up.
    pub(super) dropped: Arc<AtomicU64>,
}

impl Stream {
    /// The kind by caps once known, else by the pad's name.
    pub(super) fn likely_kind(&self) -> Kind {
        self.kind.unwrap_or_else(|| {
            if self.pad.name().starts_with("audio") {
                Kind::Audio
            } else {
                Kind::Video
            }
        })
    }
}

#[derive(Default)]
pub struct State {
    streams: Vec<Stream>,
    next_stream_id: usize,
    recorder: RecorderState,
    recording: Option<Recording>,
    next_recording_id: u64,
    autostarted: bool,
    last_bytes: u64,
    last_dropped: u64,
    /// Encoded frames kept while inactive, for `pre-record`.
    ring: Ring<(usize, gst::Buffer)>,
    /// `pre-record` in ns, mirrored here for the streaming threads.
    pre_record: u64,
}

enum Event {
    Start,
    Pause,
    Resume,
    Data(Chunk),
    Error(glib::Error),
    FileClosed(gst::Structure),
    Stop {
        location: Option<String>,
        duration: u64,
        bytes: u64,
        dropped: u64,
        mime: String,
    },
}

/// Whether this machine can record `mime` (the web API's `isTypeSupported`): the type
/// parses and every element it needs is installed.
pub fn is_type_supported(mime: &str) -> bool {
    let Ok(rtype) = RecordingType::parse(mime) else {
        return false;
    };
    let video = rtype.video_codec().is_some();
    let audio = rtype.audio_codec().is_some();
    rtype
        .requirements(video, audio)
        .iter()
        .all(|req| gst::ElementFactory::find(req.factory).is_some())
}

/// A pattern's files do not exist yet: check that its folder takes files.
fn check_location(location: &str) -> Result<(), glib::Error> {
    if !naming::is_pattern(location) {
        return check_writable(location);
    }
    let dir = Path::new(location)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probe = dir.join(format!(".mediarecorder-probe-{}", std::process::id()));
    check_writable(&probe.to_string_lossy()).map_err(|_| {
        glib::Error::new(
            gst::ResourceError::OpenWrite,
            &format!(
                "Cannot write the recordings '{location}': folder '{}' is not writable",
                dir.display()
            ),
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn check_writable(path: &str) -> Result<(), glib::Error> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(|_| ())
        .map_err(|e| {
            glib::Error::new(
                gst::ResourceError::OpenWrite,
                &format!("Cannot write the recording to '{path}': {e}"),
            )
        })
}

impl MediaRecorder {
    // ----- properties -----

    pub(super) fn set_setting(&self, name: &str, value: &glib::Value) {
        let recording = self.state.lock().unwrap().recorder != RecorderState::Inactive;
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
                s.location = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .filter(|l| !l.is_empty());
            }
            "duration" => s.duration_ms = value.get().unwrap_or(0),
            "mime-type" => {
                s.mime_type = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            }
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
                let mut state = self.state.lock().unwrap();
                state.pre_record = s.pre_record_ms * 1_000_000;
                if state.pre_record == 0 {
                    state.ring.clear();
                }
            }
            "max-file-duration" => s.max_file_duration_ms = value.get().unwrap_or(0),
            "max-file-size" => s.max_file_size = value.get().unwrap_or(0),
            "max-files" => s.max_files = value.get().unwrap_or(0),
            "audio-encoder" => s.audio_encoder = value.get().ok().flatten(),
            _ => {}
        }
    }

    pub(super) fn get_setting(&self, name: &str) -> glib::Value {
        match name {
            "state" => self.visible_state().to_value(),
            "bytes-written" => {
                let state = self.state.lock().unwrap();
                let live = state.recording.as_ref().map(Recording::bytes_written);
                live.unwrap_or(state.last_bytes).to_value()
            }
            "pre-record-bytes" => (self.state.lock().unwrap().ring.bytes() as u64).to_value(),
            "frames-dropped" => {
                let state = self.state.lock().unwrap();
                let dropped = match state.recording.as_ref() {
                    Some(rec) => rec.dropped(&state.streams),
                    None => state.last_dropped,
                };
                dropped.to_value()
            }
            "mime-type" => {
                if let Some(t) = self
                    .state
                    .lock()
                    .unwrap()
                    .recording
                    .as_ref()
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
                    "audio-encoder" => s.audio_encoder.to_value(),
                    _ => unimplemented!("property {name}"),
                }
            }
        }
    }

    /// Inside a handler of an event, the state the event was fired in; elsewhere the
    /// current state.
    fn visible_state(&self) -> RecorderState {
        if let Some((thread, state)) = *self.event_state.lock().unwrap() {
            if thread == std::thread::current().id() {
                return state;
            }
        }
        self.state.lock().unwrap().recorder
    }

    // ----- state changes -----

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

    pub(super) fn prepare_to_run(&self) -> Result<(), gst::StateChangeError> {
        let location = self.settings.lock().unwrap().location.clone();
        if let Some(path) = location {
            if let Err(err) = check_location(&path) {
                self.post_error(&err, None);
                return Err(gst::StateChangeError);
            }
        }
        self.state.lock().unwrap().autostarted = false;
        Ok(())
    }

    pub(super) fn finish_on_shutdown(&self) {
        let ended = self.end_recording(None);
        if ended {
            self.dispatcher.wait_idle(FINALIZE_TIMEOUT * 2);
        }
        self.state.lock().unwrap().autostarted = false;
    }

    pub(super) fn child_failed(&self, error: glib::Error) {
        self.end_recording(Some(error));
    }

    // ----- pads -----

    pub(super) fn add_stream(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
    ) -> Option<gst::Pad> {
        let mut state = self.state.lock().unwrap();
        if state.recorder != RecorderState::Inactive {
            drop(state);
            gst::element_imp_warning!(
                self,
                gst::CoreError::Pad,
                ("A pad cannot be added while recording: stop the recording first")
            );
            return None;
        }
        let prefix = templ.name_template().trim_end_matches("%u").to_string();
        let name = match name {
            Some(n) => n.to_string(),
            None => (0..)
                .map(|i| format!("{prefix}{i}"))
                .find(|n| !state.streams.iter().any(|s| s.pad.name() == n.as_str()))?,
        };
        if state.streams.iter().any(|s| s.pad.name() == name.as_str()) {
            return None;
        }
        let id = state.next_stream_id;
        state.next_stream_id += 1;
        drop(state);

        let queue = gst::ElementFactory::make("queue")
            .name(format!("queue-{name}"))
            .build()
            .ok()?;
        let sink = gst_app::AppSink::builder()
            .name(format!("stage-{name}"))
            .sync(false)
            .async_(false)
            .enable_last_sample(false)
            .build();
        let weak = self.obj().downgrade();
        let weak_eos = weak.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |appsink| {
                    let sample = appsink
                        .pull_sample()
                        .map_err(|_| gst::FlowError::Flushing)?;
                    match weak.upgrade() {
                        Some(obj) => obj.imp().on_sample(id, sample),
                        None => Err(gst::FlowError::Flushing),
                    }
                })
                .eos(move |_| {
                    if let Some(obj) = weak_eos.upgrade() {
                        obj.imp().on_eos(id);
                    }
                })
                .build(),
        );
        let obj = self.obj();
        obj.add_many([&queue, sink.upcast_ref()]).ok()?;
        let queue_sink = queue.static_pad("sink")?;
        let pad = gst::GhostPad::builder_from_template_with_target(templ, &queue_sink)
            .ok()?
            .name(name.as_str())
            .query_function(|pad, parent, query| {
                MediaRecorder::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad.upcast_ref(), query),
                )
            })
            .build();
        // Frames without timestamps are stamped where they enter, with the running
        // time they arrive at: the encoder and the stage then keep their spacing.
        let weak = self.obj().downgrade();
        queue_sink.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data else {
                return gst::PadProbeReturn::Ok;
            };
            if buffer.pts().is_none() && buffer.dts().is_none() {
                let now = weak.upgrade().and_then(|o| o.current_running_time());
                let segment = pad.sticky_event::<gst::event::Segment>(0);
                let pts = segment.zip(now).and_then(|(seg, now)| {
                    seg.segment()
                        .downcast_ref::<gst::ClockTime>()
                        .and_then(|seg| seg.position_from_running_time(now))
                });
                if let Some(pts) = pts {
                    buffer.make_mut().set_pts(pts);
                }
            }
            gst::PadProbeReturn::Ok
        });
        let weak = self.obj().downgrade();
        queue_sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(event)) = &info.data {
                if let gst::EventView::Caps(c) = event.view() {
                    if let Some(obj) = weak.upgrade() {
                        // On failure an error is posted; the unlinked queue then
                        // stops the stream.
                        obj.imp().on_caps(id, c.caps());
                    }
                }
            }
            gst::PadProbeReturn::Ok
        });
        if let Some(queue_src) = queue.static_pad("src") {
            let weak = self.obj().downgrade();
            queue_src.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |pad, info| {
                if let Some(gst::PadProbeData::Event(event)) = &info.data {
                    if let gst::EventView::Caps(c) = event.view() {
                        if let Some(obj) = weak.upgrade() {
                            obj.imp().on_queued_caps(id, pad, c.caps());
                        }
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        let _ = queue.sync_state_with_parent();
        let _ = sink.sync_state_with_parent();
        if obj.current_state() > gst::State::Null {
            let _ = pad.set_active(true);
        }
        obj.add_pad(&pad).ok()?;
        self.state.lock().unwrap().streams.push(Stream {
            id,
            pad: pad.clone(),
            queue,
            sink,
            middle: Vec::new(),
            kind: None,
            codec: None,
            input: None,
            encoded_caps: None,
            eos: false,
            last_rt: None,
            seen_generation: 0,
            dropped: Arc::default(),
        });
        gst::debug!(CAT, imp = self, "Added pad {name}");
        Some(pad.upcast())
    }

    pub(super) fn remove_stream(&self, pad: &gst::Pad) {
        let stream = {
            let mut state = self.state.lock().unwrap();
            let Some(pos) = state
                .streams
                .iter()
                .position(|s| s.pad.upcast_ref::<gst::Pad>() == pad)
            else {
                return;
            };
            state.streams.remove(pos)
        };
        // The web API's "track removed": the recording ends with an error.
        self.end_recording(Some(glib::Error::new(
            gst::CoreError::Pad,
            &format!("Pad {} was released while recording", pad.name()),
        )));
        let obj = self.obj();
        let _ = stream.pad.set_active(false);
        let _ = obj.remove_pad(&stream.pad);
        let mut elements = vec![stream.queue.clone()];
        elements.extend(stream.middle.iter().cloned());
        elements.push(stream.sink.upcast_ref::<gst::Element>().clone());
        for e in elements {
            let _ = e.set_state(gst::State::Null);
            // Bins being disposed release their pads after removing their children.
            if e.parent().as_ref() == Some(obj.upcast_ref::<gst::Object>()) {
                let _ = obj.remove(&e);
            }
        }
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        let accepted = || branch::accepted_caps(&self.settings.lock().unwrap().recording_type());
        match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                let caps = accepted();
                let caps = match q.filter() {
                    Some(filter) => {
                        filter.intersect_with_mode(&caps, gst::CapsIntersectMode::First)
                    }
                    None => caps,
                };
                q.set_result(&caps);
                true
            }
            gst::QueryViewMut::AcceptCaps(q) => {
                let ok = q.caps().can_intersect(&accepted());
                q.set_result(ok);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    /// Builds a branch's encoder chain for the first caps it gets.
    fn on_caps(&self, id: usize, caps: &gst::CapsRef) -> bool {
        let kind = branch::kind_of(caps);
        {
            let mut state = self.state.lock().unwrap();
            let other_has_kind =
                kind.is_some() && state.streams.iter().any(|s| s.id != id && s.kind == kind);
            let Some(stream) = state.streams.iter_mut().find(|s| s.id == id) else {
                return false;
            };
            if stream.kind.is_some() {
                // Built already: a change of input is handled where the queue hands it on.
                return true;
            }
            if other_has_kind {
                let what = if kind == Some(Kind::Video) {
                    "video"
                } else {
                    "audio"
                };
                let pad = stream.pad.name();
                drop(state);
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    (
                        "A recording holds one {} stream: pad {} carries a second one ({})",
                        what,
                        pad,
                        caps
                    )
                );
                return false;
            }
            stream.kind = kind;
        }
        let built = self.build_chain(id, caps, None);
        if !built {
            if let Some(s) = self
                .state
                .lock()
                .unwrap()
                .streams
                .iter_mut()
                .find(|s| s.id == id)
            {
                s.kind = None;
            }
        }
        built
    }

    /// Caps leaving a branch's queue: a different input format than the chain was built
    /// for (a codec that changed mid-recording) gets a new chain that keeps the track's
    /// codec, re-encoding rather than failing.
    fn on_queued_caps(&self, id: usize, queue_src: &gst::Pad, caps: &gst::CapsRef) {
        let name = caps.structure(0).map(|s| s.name().to_string());
        let keep = {
            let state = self.state.lock().unwrap();
            let Some(stream) = state.streams.iter().find(|s| s.id == id) else {
                return;
            };
            if stream.input.is_none() || stream.input == name {
                return;
            }
            stream.codec
        };
        let Some(keep) = keep else { return };
        gst::info!(
            CAT,
            imp = self,
            "Input changed to {caps}: re-encoding to {keep:?}"
        );
        if self.build_chain(id, caps, Some(keep)) {
            // The new chain has not seen the stream start: it must precede the caps.
            if let (Some(event), Some(peer)) = (
                queue_src.sticky_event::<gst::event::StreamStart>(0),
                queue_src.peer(),
            ) {
                peer.send_event(event);
            }
        }
    }

    /// Builds (or rebuilds) the chain between a branch's queue and its stage.
    fn build_chain(&self, id: usize, caps: &gst::CapsRef, keep: Option<Codec>) -> bool {
        let settings = self.settings.lock().unwrap().clone();
        let rtype = settings.recording_type();
        let (queue, sink, pad, kinds, old) = {
            let mut state = self.state.lock().unwrap();
            let kinds: Vec<Kind> = state
                .streams
                .iter()
                .filter(|s| s.id == id || s.pad.is_linked())
                .map(|s| s.likely_kind())
                .collect();
            let Some(stream) = state.streams.iter_mut().find(|s| s.id == id) else {
                return false;
            };
            (
                stream.queue.clone(),
                stream.sink.clone(),
                stream.pad.clone(),
                kinds,
                std::mem::take(&mut stream.middle),
            )
        };

        let mut latency = gst::query::Latency::new();
        let live = pad.peer_query(&mut latency) && latency.result().0;
        let (video_bps, audio_bps) =
            settings.bitrates(kinds.contains(&Kind::Video), kinds.contains(&Kind::Audio));
        let params = EncoderParams {
            video_bps,
            audio_bps,
            audio_constant: settings.audio_bitrate_mode == BitrateMode::Constant,
            keyframe_interval_ms: settings.keyframe_interval_ms(),
            keyframe_count: (settings.keyframe_interval_count > 0)
                .then_some(settings.keyframe_interval_count),
            live,
            video_encoder: settings.video_encoder.clone(),
            audio_encoder: settings.audio_encoder.clone(),
        };
        let plan = match branch::plan(caps, &rtype, &params, keep) {
            Ok(plan) => plan,
            Err(err) => {
                let err = err.to_glib();
                self.post_error(&err, Some(&format!("pad {}, caps {caps}", pad.name())));
                return false;
            }
        };
        let obj = self.obj();
        if let Some(src) = queue.static_pad("src") {
            if let Some(peer) = src.peer() {
                let _ = src.unlink(&peer);
            }
        }
        for e in &old {
            let _ = e.set_state(gst::State::Null);
            let _ = obj.remove(e);
        }
        if live && keep.is_none() {
            self.drop_when_behind(id, &queue);
        }
        let mut chain: Vec<gst::Element> = vec![queue.clone()];
        chain.extend(plan.elements.iter().cloned());
        chain.push(sink.upcast_ref::<gst::Element>().clone());
        if obj.add_many(&plan.elements).is_err() || gst::Element::link_many(&chain).is_err() {
            self.post_error(
                &glib::Error::new(
                    gst::CoreError::Negotiation,
                    "Could not link the encoder chain",
                ),
                Some(&format!("caps {caps}")),
            );
            return false;
        }
        for e in plan.elements.iter().rev() {
            let _ = e.sync_state_with_parent();
        }
        gst::info!(
            CAT,
            imp = self,
            "Pad {} records {:?} as {:?} (live: {live})",
            pad.name(),
            plan.kind,
            plan.codec
        );
        if let Some(s) = self
            .state
            .lock()
            .unwrap()
            .streams
            .iter_mut()
            .find(|s| s.id == id)
        {
            s.codec = Some(plan.codec);
            s.middle = plan.elements;
            s.input = caps.structure(0).map(|s| s.name().to_string());
        }
        true
    }

    /// A camera must never wait for the encoder: when a second of raw frames waits
    /// in the queue, new frames are dropped (and counted) instead of blocking.
    fn drop_when_behind(&self, id: usize, queue: &gst::Element) {
        queue.set_property("max-size-buffers", 0u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 2 * DROP_LEVEL);
        let Some(counter) = self
            .state
            .lock()
            .unwrap()
            .streams
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.dropped.clone())
        else {
            return;
        };
        let Some(pad) = queue.static_pad("sink") else {
            return;
        };
        let queue_weak = queue.downgrade();
        let weak = self.obj().downgrade();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(queue) = queue_weak.upgrade() else {
                return gst::PadProbeReturn::Ok;
            };
            if queue.property::<u64>("current-level-time") < DROP_LEVEL {
                return gst::PadProbeReturn::Ok;
            }
            let dropped = counter.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped == 1 || dropped % 100 == 0 {
                if let Some(obj) = weak.upgrade() {
                    gst::element_warning!(
                        obj,
                        gst::CoreError::Failed,
                        ("The encoder cannot keep up with the live source: {} frames dropped so far", dropped)
                    );
                }
            }
            // Taken and handled here: returning Drop makes GStreamer 1.22 unref the
            // buffer the binding already released (a GLib critical per frame).
            drop(info.take_buffer());
            gst::PadProbeReturn::Handled
        });
    }

    pub(super) fn dropped_frames(streams: &[Stream]) -> u64 {
        streams
            .iter()
            .map(|s| s.dropped.load(Ordering::Relaxed))
            .sum()
    }

    // ----- actions -----

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
        let video_streams = {
            let mut state = self.state.lock().unwrap();
            if state.recorder != RecorderState::Inactive {
                gst::info!(
                    CAT,
                    imp = self,
                    "start-recording while {:?}: ignored",
                    state.recorder
                );
                return false;
            }
            self.begin(&mut state, settings);
            Self::video_sinks(&state)
        };
        self.notify_started();
        request_keyframes(&video_streams, None);
        true
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
    fn set_paused(&self, pause: bool) -> bool {
        use RecorderState::{Paused, Recording};
        let (from, to, event) = if pause {
            (Recording, Paused, Event::Pause)
        } else {
            (Paused, Recording, Event::Resume)
        };
        let mut state = self.state.lock().unwrap();
        if state.recorder != from {
            gst::info!(
                CAT,
                imp = self,
                "{} while {:?}: ignored",
                if pause {
                    "pause-recording"
                } else {
                    "resume-recording"
                },
                state.recorder
            );
            return false;
        }
        state.recorder = to;
        if let Some(rec) = state.recording.as_mut() {
            if pause {
                rec.timeline.pause();
            } else {
                rec.timeline.resume();
            }
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

    pub(super) fn request_data(&self) -> bool {
        let state = self.state.lock().unwrap();
        let Some(rec) = state.recording.as_ref() else {
            gst::info!(CAT, imp = self, "request-data while inactive: ignored");
            return false;
        };
        let now = state.recorder;
        if !rec.take_chunk(|chunk| self.queue_event(Event::Data(chunk), now)) {
            self.queue_event(Event::Data(Chunk::default()), now);
        }
        true
    }

    fn validate_for_start(&self, settings: &Settings) -> Result<(), glib::Error> {
        settings.validate()?;
        match &settings.location {
            Some(path) => check_location(path),
            None => Ok(()),
        }
    }

    /// Makes a new recording current, beginning with the pre-record ring. Called with
    /// the state locked.
    fn begin(&self, state: &mut State, settings: Settings) {
        let rtype = settings.recording_type();
        let expected: Vec<usize> = state
            .streams
            .iter()
            .filter(|s| !s.eos && s.pad.is_linked())
            .map(|s| s.id)
            .collect();
        let has_video = state
            .streams
            .iter()
            .any(|s| expected.contains(&s.id) && s.likely_kind() == Kind::Video);
        let effective_type = effective_type(&rtype, &state.streams, &expected);
        state.next_recording_id += 1;
        let mut rec = Recording::new(
            state.next_recording_id,
            settings,
            effective_type,
            has_video,
            expected,
            Self::dropped_frames(&state.streams),
        );
        state.recorder = RecorderState::Recording;
        state.last_bytes = 0;
        self.queue_event(Event::Start, RecorderState::Recording);
        for entry in state.ring.drain() {
            let (id, buffer) = entry.data;
            let kind = if entry.video {
                Kind::Video
            } else {
                Kind::Audio
            };
            if rec.expected.contains(&id) {
                rec.feed(self, id, kind, buffer, entry.rt, &state.streams);
            }
        }
        state.recording = Some(rec);
    }

    fn notify_started(&self) {
        let obj = self.obj();
        obj.notify("state");
        obj.notify("mime-type");
    }

    fn video_sinks(state: &State) -> Vec<gst_app::AppSink> {
        state
            .streams
            .iter()
            .filter(|s| s.kind == Some(Kind::Video))
            .map(|s| s.sink.clone())
            .collect()
    }

    /// Ends the current recording, if any: the state becomes inactive at once, and the
    /// dispatcher finalizes the file, then fires (`error`,) `dataavailable`, `stop`.
    fn end_recording(&self, error: Option<glib::Error>) -> bool {
        let rec = {
            let mut state = self.state.lock().unwrap();
            let Some(rec) = state.recording.take() else {
                return false;
            };
            state.recorder = RecorderState::Inactive;
            self.queue_finish(rec, error);
            true
        };
        self.obj().notify("state");
        self.obj().notify("mime-type");
        rec
    }

    // ----- the stage of encoded frames -----

    fn on_sample(
        &self,
        id: usize,
        sample: gst::Sample,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(buffer) = sample.buffer_owned() else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
        let rt = segment
            .and_then(|seg| {
                buffer
                    .pts()
                    .or(buffer.dts())
                    .and_then(|t| seg.to_running_time(t))
            })
            .map(gst::ClockTime::nseconds);
        // A frame without timestamp is placed at the moment it arrives.
        let Some(rt) = rt.or_else(|| self.obj().current_running_time().map(|t| t.nseconds()))
        else {
            gst::debug!(
                CAT,
                imp = self,
                "Dropping a frame without timestamp or clock"
            );
            return Ok(gst::FlowSuccess::Ok);
        };
        // Settings are locked before state (the lock order), so a possible autostart
        // takes its copy first.
        let may_autostart = {
            let state = self.state.lock().unwrap();
            state.recording.is_none()
                && state.recorder == RecorderState::Inactive
                && !state.autostarted
        };
        let start_settings = may_autostart
            .then(|| self.settings.lock().unwrap().clone())
            .filter(|s| s.autostart);
        let mut started = false;
        let mut ended = false;
        let mut progress = None;
        let mut need_keyframe = false;
        let mut keyframes_at = Vec::new();
        {
            let mut state = self.state.lock().unwrap();
            let State {
                streams, recording, ..
            } = &mut *state;
            let Some(stream) = streams.iter_mut().find(|s| s.id == id) else {
                return Ok(gst::FlowSuccess::Ok);
            };
            if let Some(caps) = sample.caps_owned() {
                // A track's caps stay those it started with: muxers refuse changes,
                // and the encoder's only change here is the frame rate (the size is
                // kept by scaling), which every frame's timestamp already carries.
                if stream.encoded_caps.is_none() {
                    stream.encoded_caps = Some(caps);
                }
            }
            let went_back = stream.last_rt.is_some_and(|last| rt + TIME_JUMP < last);
            stream.last_rt = Some(rt);
            if went_back {
                if let Some(rec) = recording.as_mut() {
                    // All streams go back after a flushing seek: the first to notice
                    // restarts the mapping; the others find it restarted already.
                    if stream.seen_generation == rec.timeline.generation() {
                        gst::info!(
                            CAT,
                            imp = self,
                            "Running time went back: continuing the file"
                        );
                        rec.timeline.discontinuity();
                        need_keyframe = true;
                    }
                }
            }
            let kind = stream.likely_kind();
            if recording.is_none() {
                match start_settings {
                    Some(settings)
                        if state.recorder == RecorderState::Inactive && !state.autostarted =>
                    {
                        state.autostarted = true;
                        self.begin(&mut state, settings);
                        started = true;
                    }
                    _ => {
                        if state.pre_record > 0 {
                            let video = kind == Kind::Video;
                            let entry = Entry {
                                rt,
                                video,
                                keyframe: video
                                    && !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                                size: buffer.size(),
                                data: (id, buffer),
                            };
                            let window = state.pre_record;
                            state.ring.push(entry, window);
                        }
                        return Ok(gst::FlowSuccess::Ok);
                    }
                }
            }
            let State {
                streams, recording, ..
            } = &mut *state;
            let rec = recording.as_mut().expect("a recording is current");
            if rec.expected.contains(&id) {
                rec.feed(self, id, kind, buffer, rt, streams);
                if let Some(stream) = streams.iter_mut().find(|s| s.id == id) {
                    stream.seen_generation = rec.timeline.generation();
                }
                keyframes_at = std::mem::take(&mut rec.keyframe_requests);
                if rec.is_complete() {
                    ended = true;
                }
                progress = rec.progress_due(streams);
            }
            if ended {
                let rec = state.recording.take().expect("checked above");
                state.recorder = RecorderState::Inactive;
                self.queue_finish(rec, None);
            }
        }
        if started {
            self.notify_started();
        }
        if let Some(progress) = progress {
            self.post_element_message(progress);
        }
        if need_keyframe || !keyframes_at.is_empty() {
            let sinks = Self::video_sinks(&self.state.lock().unwrap());
            if need_keyframe {
                request_keyframes(&sinks, None);
            }
            for rt in keyframes_at {
                request_keyframes(&sinks, Some(rt));
            }
        }
        if ended {
            self.obj().notify("state");
            self.obj().notify("mime-type");
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn on_eos(&self, id: usize) {
        let ended = {
            let mut state = self.state.lock().unwrap();
            let State {
                streams, recording, ..
            } = &mut *state;
            if let Some(s) = streams.iter_mut().find(|s| s.id == id) {
                s.eos = true;
            }
            let Some(rec) = recording.as_mut() else {
                return;
            };
            rec.finished.insert(id);
            if rec.is_complete() {
                let rec = state.recording.take().expect("checked above");
                state.recorder = RecorderState::Inactive;
                self.queue_finish(rec, None);
                true
            } else {
                false
            }
        };
        if ended {
            self.obj().notify("state");
            // The bin posts EOS once this returns: finalize first, so an application
            // that shuts down on EOS finds the file complete and `stop` fired.
            self.dispatcher.wait_idle(FINALIZE_TIMEOUT * 2);
        }
    }

    // ----- events -----

    fn queue_finish(&self, mut rec: Recording, error: Option<glib::Error>) {
        let weak = self.obj().downgrade();
        self.dispatcher.submit(move || {
            let Some(obj) = weak.upgrade() else { return };
            let imp = obj.imp();
            if let Some(err) = &error {
                imp.post_error(err, None);
                imp.emit(Event::Error(err.clone()), RecorderState::Inactive);
            }
            let files = {
                let state = imp.state.lock().unwrap();
                rec.take_files(imp, &state.streams)
            };
            let mut last = None;
            let count = files.len();
            for (i, file) in files.into_iter().enumerate() {
                let mut closed = file.finish();
                if !closed.report.finalized {
                    gst::warning!(CAT, imp = imp, "The muxer did not finish in time");
                }
                if i + 1 < count {
                    let chunk = std::mem::take(&mut closed.report.chunk);
                    imp.emit(Event::Data(chunk), RecorderState::Inactive);
                }
                imp.emit_file_closed(&closed, RecorderState::Inactive);
                last = Some(closed);
            }
            let (chunk, bytes, location) = match last {
                Some(closed) => (
                    closed.report.chunk,
                    closed.report.bytes,
                    closed.path.map(|p| p.to_string_lossy().into_owned()),
                ),
                None => (Chunk::default(), 0, None),
            };
            let dropped = {
                let mut state = imp.state.lock().unwrap();
                state.last_bytes = bytes;
                state.last_dropped = rec.dropped(&state.streams);
                state.last_dropped
            };
            imp.emit(Event::Data(chunk), RecorderState::Inactive);
            imp.emit(
                Event::Stop {
                    location,
                    duration: rec.timeline.recorded(),
                    bytes,
                    dropped,
                    mime: rec.effective_type.clone(),
                },
                RecorderState::Inactive,
            );
            if rec.reached_duration && rec.settings.autostart {
                imp.end_upstream();
            }
        });
    }

    /// Finalizes a segment that the recording has moved on from.
    pub(super) fn queue_file_close(&self, file: OpenFile) {
        let weak = self.obj().downgrade();
        self.dispatcher.submit(move || {
            let Some(obj) = weak.upgrade() else { return };
            let imp = obj.imp();
            let mut closed = file.finish();
            let now = imp.state.lock().unwrap().recorder;
            let chunk = std::mem::take(&mut closed.report.chunk);
            imp.emit(Event::Data(chunk), now);
            imp.emit_file_closed(&closed, now);
        });
    }

    /// Deletes a file of this recording for `max-files`, after it was finalized.
    pub(super) fn queue_file_removal(&self, path: PathBuf) {
        let weak = self.obj().downgrade();
        self.dispatcher.submit(move || {
            let Some(obj) = weak.upgrade() else { return };
            match std::fs::remove_file(&path) {
                Ok(()) => gst::info!(CAT, obj = obj, "max-files: removed {}", path.display()),
                Err(e) => gst::warning!(CAT, obj = obj, "Cannot remove {}: {e}", path.display()),
            }
        });
    }

    pub(super) fn take_file_index(&self) -> u64 {
        self.next_file_index.fetch_add(1, Ordering::SeqCst)
    }

    fn emit_file_closed(&self, closed: &ClosedFile, fired_in: RecorderState) {
        let info = gst::Structure::builder("mediarecorder-file-closed")
            .field(
                "location",
                closed
                    .path
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned()),
            )
            .field("first", gst::ClockTime::from_nseconds(closed.first))
            .field("last", gst::ClockTime::from_nseconds(closed.last))
            .field(
                "duration",
                gst::ClockTime::from_nseconds(closed.last.saturating_sub(closed.first)),
            )
            .field("bytes", closed.report.bytes)
            .field("frames", closed.frames)
            .build();
        self.emit(Event::FileClosed(info), fired_in);
    }

    /// After a timed recording under `autostart`: tell upstream we are done, so live
    /// sources stop and the pipeline reaches EOS (what `gst-launch-1.0` waits for).
    fn end_upstream(&self) {
        let queues: Vec<gst::Element> = self
            .state
            .lock()
            .unwrap()
            .streams
            .iter()
            .map(|s| s.queue.clone())
            .collect();
        for queue in queues {
            if let Some(pad) = queue.static_pad("sink") {
                pad.send_event(gst::event::Eos::new());
            }
        }
    }

    fn queue_event(&self, event: Event, fired_in: RecorderState) {
        let weak = self.obj().downgrade();
        self.dispatcher.submit(move || {
            if let Some(obj) = weak.upgrade() {
                obj.imp().emit(event, fired_in);
            }
        });
    }

    /// Emits one event on the dispatcher thread, with `state` reading `fired_in`.
    fn emit(&self, event: Event, fired_in: RecorderState) {
        *self.event_state.lock().unwrap() = Some((std::thread::current().id(), fired_in));
        let obj = self.obj();
        match event {
            Event::Start => {
                let location = self.settings.lock().unwrap().location.clone();
                let mime = obj.property::<String>("mime-type");
                self.post_element_message(
                    gst::Structure::builder("mediarecorder-start")
                        .field("location", location)
                        .field("mime-type", mime)
                        .build(),
                );
                obj.emit_by_name::<()>("start", &[]);
            }
            Event::Pause => obj.emit_by_name::<()>("pause", &[]),
            Event::Resume => obj.emit_by_name::<()>("resume", &[]),
            Event::Data(chunk) => {
                self.post_element_message(
                    gst::Structure::builder("mediarecorder-dataavailable")
                        .field("size", chunk.size)
                        .field("timecode", chunk.timecode)
                        .build(),
                );
                let mut buffer = gst::Buffer::from_mut_slice(chunk.data);
                buffer
                    .get_mut()
                    .expect("a new buffer is writable")
                    .set_pts(gst::ClockTime::from_nseconds(chunk.timecode));
                obj.emit_by_name::<()>("dataavailable", &[&buffer]);
            }
            Event::Error(err) => obj.emit_by_name::<()>("error", &[&err]),
            Event::FileClosed(info) => {
                self.post_element_message(info.clone());
                obj.emit_by_name::<()>("file-closed", &[&info]);
            }
            Event::Stop {
                location,
                duration,
                bytes,
                dropped,
                mime,
            } => {
                self.post_element_message(
                    gst::Structure::builder("mediarecorder-stop")
                        .field("location", location)
                        .field("duration", gst::ClockTime::from_nseconds(duration))
                        .field("bytes", bytes)
                        .field("dropped", dropped)
                        .field("mime-type", mime)
                        .build(),
                );
                obj.emit_by_name::<()>("stop", &[]);
            }
        }
        *self.event_state.lock().unwrap() = None;
    }

    fn post_element_message(&self, structure: gst::Structure) {
        let msg = gst::message::Element::builder(structure)
            .src(&*self.obj())
            .build();
        let _ = self.obj().post_message(msg);
    }

    fn post_error(&self, err: &glib::Error, debug: Option<&str>) {
        let mut builder = gst::message::Error::builder_from_error(err.clone()).src(&*self.obj());
        if let Some(debug) = debug {
            builder = builder.debug(debug);
        }
        let _ = self.obj().post_message(builder.build());
    }

    pub(super) fn session_event(&self, recording_id: u64, event: SessionEvent) {
        match event {
            SessionEvent::Chunk(chunk) => {
                // Called with the chunk cutter locked, which `request-data` takes under
                // the state lock: the state is read when the chunk is emitted instead.
                let weak = self.obj().downgrade();
                self.dispatcher.submit(move || {
                    if let Some(obj) = weak.upgrade() {
                        let imp = obj.imp();
                        let now = imp.state.lock().unwrap().recorder;
                        imp.emit(Event::Data(chunk), now);
                    }
                });
            }
            SessionEvent::Error(err, debug) => {
                gst::error!(
                    CAT,
                    imp = self,
                    "Writing failed: {} ({debug:?})",
                    err.message()
                );
                let weak = self.obj().downgrade();
                // Not from this thread: it belongs to the muxer the finalizer waits on.
                std::thread::spawn(move || {
                    if let Some(obj) = weak.upgrade() {
                        let imp = obj.imp();
                        let current = imp.state.lock().unwrap().recording.as_ref().map(|r| r.id);
                        if current == Some(recording_id) {
                            imp.end_recording(Some(err));
                        }
                    }
                });
            }
        }
    }
}

/// Asks the video encoders for a keyframe: the next frame, or the first at running
/// time `at` or later.
fn request_keyframes(sinks: &[gst_app::AppSink], at: Option<u64>) {
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

fn effective_type(rtype: &RecordingType, streams: &[Stream], expected: &[usize]) -> String {
    let mut video = None;
    let mut audio = None;
    for s in streams.iter().filter(|s| expected.contains(&s.id)) {
        match (s.codec, s.likely_kind()) {
            (Some(Codec::Video(v)), _) => video = Some(v),
            (Some(Codec::Audio(a)), _) => audio = Some(a),
            (None, Kind::Video) => video = video.or(rtype.video_codec()),
            (None, Kind::Audio) => audio = audio.or(rtype.audio_codec()),
        }
    }
    rtype.effective(video, audio)
}
