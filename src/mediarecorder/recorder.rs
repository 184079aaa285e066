//! The recorder: settings and state, the actions of the web API, and the stage where
//! encoded frames are sorted into the current recording.
//!
//! Encoded frames arrive in each branch's streaming thread (`on_sample`). The
//! `Timeline` decides whether a frame belongs to the recording and where it lands;
//! frames that do are restamped and handed to the recording's `MuxSession`. Events
//! (`start`, `dataavailable`, ...) are queued on the dispatcher in the order the state
//! changed, and emitted from its thread with the state they were fired in.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::chunks::Chunk;
use super::claim;
use super::displaymatrix;
use super::engine::{Limits, TrackSetup, LIVE_STREAM_WAIT};
use super::events::{Event, StopPosted};
use super::imp::{MediaRecorder, CAT};
use super::mimetype::{Codec, RecordingType};
use super::naming;
use super::recording::{audio_rate, Followup, Plan, Recording, SubmitJob};
use super::retention::Policy;
use super::ring::{self, Entry};
use super::stage::{Step, Takes};
use super::state::{RecorderState, SegmentAlign, Settings, State, Stream, FINALIZE_TIMEOUT};
use super::timeline::Kind;
use super::writer::{WriterConfig, WriterHooks};

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

/// Whether a recording can be written at `location`, checked without leaving anything
/// behind: an existing file is opened for writing but not truncated; for a new file or
/// a pattern, a probe file is made and removed in the folder. A FIFO is refused before
/// anything opens it (opening one blocks until a reader comes, and a WebM file is
/// finalized by seeking back).
fn check_location(location: &str) -> Result<(), glib::Error> {
    use std::os::unix::fs::FileTypeExt;
    let path = Path::new(location);
    claim::precheck(location)?;
    if !naming::is_pattern(location) {
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.file_type().is_fifo() || meta.file_type().is_socket() {
                return Err(glib::Error::new(
                    gst::ResourceError::OpenWrite,
                    &format!(
                        "Cannot record to '{location}': it is a FIFO or socket, and a \
                         recording is finalized by seeking back in its file. To stream, \
                         leave location unset and use 'dataavailable' with a timeslice"
                    ),
                ));
            }
            return check_writable(location);
        }
    }
    let dir = folder_of(location);
    let probe = dir.join(format!(".mediarecorder-probe-{}", std::process::id()));
    let made = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&probe)
    };
    made.map_err(|e| {
        glib::Error::new(
            gst::ResourceError::OpenWrite,
            &format!(
                "Cannot write the recording '{location}': folder '{}' does not take \
                 files: {e}",
                dir.display()
            ),
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The folder a location's files go to.
fn folder_of(location: &str) -> &Path {
    Path::new(location)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn open_for_writing(path: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(|_| ())
}

fn check_writable(path: &str) -> Result<(), glib::Error> {
    open_for_writing(path).map_err(|e| {
        glib::Error::new(
            gst::ResourceError::OpenWrite,
            &format!("Cannot write the recording to '{path}': {e}"),
        )
    })
}

impl MediaRecorder {
    // ----- properties -----

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

    pub(super) fn finish_on_shutdown(&self) {
        let ended = self.end_recording(None);
        if ended {
            self.dispatcher.wait_idle(FINALIZE_TIMEOUT * 2);
        }
        self.state.lock().unwrap().stage.new_run();
    }

    pub(super) fn child_failed(&self, error: glib::Error) {
        self.end_recording(Some(error));
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

    pub(super) fn validate_for_start(&self, settings: &Settings) -> Result<(), glib::Error> {
        settings.validate()?;
        match &settings.location {
            Some(path) => self.prepare_location(path),
            None => Ok(()),
        }
    }

    /// Checks that `location` takes the recording, and where a pattern's index goes on;
    /// starts finalizing what a crash left unfinished there.
    fn prepare_location(&self, location: &str) -> Result<(), glib::Error> {
        check_location(location)?;
        self.skip_existing_indices(location);
        self.recover_unfinished(location);
        Ok(())
    }

    /// A pattern's index goes on after the highest one already in its folder (a
    /// restarted recorder must not overwrite the last run's files).
    fn skip_existing_indices(&self, location: &str) {
        let Ok(entries) = std::fs::read_dir(folder_of(location)) else {
            return;
        };
        let names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if let Some(highest) = naming::highest_index(location, names.iter().map(String::as_str)) {
            let next = highest.saturating_add(1);
            self.next_file_index
                .fetch_max(next, std::sync::atomic::Ordering::SeqCst);
            gst::info!(
                CAT,
                imp = self,
                "Files up to index {highest} exist: going on from {next}"
            );
        }
    }

    /// Makes a new recording current, beginning with the pre-record ring. Called with
    /// the state locked; returns what to do once it is unlocked.
    pub(super) fn begin(&self, state: &mut State, settings: Settings) -> Vec<Followup> {
        // What was captured before it began is not the new recording's to count.
        state.take_captures();
        let rtype = settings.recording_type();
        let taking_part: Vec<&Stream> = state
            .streams
            .iter()
            .filter(|s| !s.eos && s.pad.is_linked())
            .collect();
        let expected: Vec<usize> = taking_part.iter().map(|s| s.id).collect();
        let effective_type = effective_type(&rtype, &state.streams, &expected);
        let plan = Plan {
            limits: Limits {
                duration: ms_to_ns(settings.duration_ms),
                file_duration: ms_to_ns(settings.max_file_duration_ms),
                file_size: (settings.max_file_size > 0).then_some(settings.max_file_size),
                align_to_clock: settings.segment_align == SegmentAlign::Clock,
                tracks_start_together: !rtype.container.tracks_start_late(),
            },
            writer: WriterConfig {
                container: rtype.container,
                location: settings.location.clone(),
                timeslice: (settings.timeslice_ms > 0)
                    .then(|| gst::ClockTime::from_mseconds(u64::from(settings.timeslice_ms))),
                cluster_duration: gst::ClockTime::from_mseconds(settings.keyframe_interval_ms()),
                retention: Policy {
                    max_files: settings.max_files,
                    max_total_bytes: settings.max_total_bytes,
                    min_free_bytes: settings.min_free_bytes,
                    max_age: settings.max_file_age_ms.saturating_mul(1_000_000),
                },
            },
            tracks: taking_part
                .iter()
                .map(|s| {
                    let kind = s.likely_kind();
                    let setup = TrackSetup {
                        id: s.id,
                        kind,
                        live: s.live,
                        caps_known: s.encoded_caps.is_some(),
                        rate: s
                            .encoded_caps
                            .as_ref()
                            .map_or(48_000, |c| audio_rate(kind, c)),
                        latency: s.late_drop.latency.load(Ordering::Relaxed),
                    };
                    (setup, s.encoded_caps.clone())
                })
                .collect(),
            audio_gaps: state.streams.iter().map(|s| s.audio_gaps.clone()).collect(),
            silence: state.streams.iter().map(|s| s.silence.clone()).collect(),
        };
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
                Followup::SyncToDisk(path) => self.dispatcher.submit(move || {
                    // Any descriptor of the file flushes its data.
                    if let Ok(file) = std::fs::File::open(&path) {
                        let _ = file.sync_data();
                    }
                }),
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
    fn warn_pre_record_bounded(&self, window: u64) {
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

    /// A recording started or ended: `state` and `mime-type` (which reads back the
    /// recording's effective type) changed.
    pub(super) fn notify_state_changed(&self) {
        let obj = self.obj();
        obj.notify("state");
        obj.notify("mime-type");
    }

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

    pub(super) fn video_sinks(state: &State) -> Vec<gst_app::AppSink> {
        state
            .streams
            .iter()
            .filter(|s| s.kind == Some(Kind::Video))
            .map(|s| s.sink.clone())
            .collect()
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
    fn take_recording(
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

    // ----- the stage of encoded frames -----

    pub(super) fn on_sample(
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
        // Settings before state (the lock order): the pre-record window, and a copy of
        // the settings when this frame may start a recording by itself.
        let (pre_record, autostart) = {
            let settings = self.settings.lock().unwrap();
            let may_start = settings.autostart && self.state.lock().unwrap().stage.may_autostart();
            (
                settings.pre_record_ns(),
                may_start.then(|| settings.clone()),
            )
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
            let mut autostart = autostart;
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

    /// Tells a recording the wall-clock time at running time 0, once.
    fn set_wall_clock(&self, rec: &mut Recording) {
        if rec.needs_wall_clock() {
            if let Some(at_zero) = self.wall_clock_at_zero() {
                rec.wall_clock(at_zero);
            }
        }
    }

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
        if let Some(posted) = ended {
            self.notify_state_changed();
            // The bin posts EOS once this returns: finalize first, so an application
            // that shuts down on EOS finds the file complete and the stop message
            // before the EOS.
            if !self.dispatcher.is_worker() {
                posted.wait(FINALIZE_TIMEOUT * 2);
            }
        }
    }
}

impl MediaRecorder {
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

fn ms_to_ns(ms: u64) -> Option<u64> {
    (ms > 0).then(|| ms.saturating_mul(1_000_000))
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
