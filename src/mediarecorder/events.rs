//! Events: the signals and bus messages of the web API, emitted in order from the
//! dispatcher thread, and the finalizing of files that precedes them.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::chunks::Chunk;
use super::finalize::{wait_while_progressing, Progress, FINALIZE_CAP};
use super::imp::{MediaRecorder, CAT};
use super::journal;
use super::manifest::Manifest;
use super::opening::OpenRequest;
use super::recording::Recording;
use super::retention::{Finished, Reason};
use super::session::{SessionEvent, MAX_QUEUED_BYTES};
use super::state::{RecorderState, FINALIZE_TIMEOUT};
use super::writer::{ClosedFile, ClosingFile, FileJob};

pub(super) enum Event {
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
        /// Gaps in the audio filled with silence, and the silence (ns).
        audio_gaps: (u64, u64),
        mime: String,
        posted: Arc<StopPosted>,
    },
}

/// Set once a finished recording's file is closed and its `mediarecorder-stop`
/// message posted: what a streaming thread at EOS waits for before the bin posts EOS.
/// Not the `stop` handlers: one may set the pipeline to NULL, which waits for that
/// very streaming thread.
pub(super) struct StopPosted {
    posted: Mutex<bool>,
    changed: Condvar,
    /// The recording's files' progress: a finalization that goes on is waited for.
    progress: Arc<Progress>,
}

impl StopPosted {
    fn new(progress: Arc<Progress>) -> Self {
        StopPosted {
            posted: Mutex::new(false),
            changed: Condvar::new(),
            progress,
        }
    }

    fn set(&self) {
        *self.posted.lock().unwrap() = true;
        self.changed.notify_all();
    }

    /// Waits while the recording's files make progress (see `finalize`); false when
    /// `stall` passed without progress, or the cap, first.
    pub(super) fn wait(&self, stall: Duration) -> bool {
        *wait_while_progressing(&self.posted, &self.changed, &self.progress, stall, |p| !*p)
    }
}

impl MediaRecorder {
    pub(super) fn queue_finish(
        &self,
        mut rec: Recording,
        error: Option<glib::Error>,
    ) -> Arc<StopPosted> {
        let posted = Arc::new(StopPosted::new(rec.progress()));
        let posted_by_job = posted.clone();
        let weak = self.obj().downgrade();
        self.dispatcher.submit(move || {
            let Some(obj) = weak.upgrade() else { return };
            let imp = obj.imp();
            gst::debug!(CAT, imp = imp, "finishing the recording");
            if let Some(err) = &error {
                imp.post_error(err, None);
                imp.emit(Event::Error(err.clone()), RecorderState::Inactive);
            }
            let files = rec.finish();
            gst::debug!(CAT, imp = imp, "{} file(s) to close", files.len());
            let mut last = None;
            let mut reported = error.is_some();
            let count = files.len();
            for (i, file) in files.into_iter().enumerate() {
                let mut closed = imp.close_file(file, &mut reported);
                // The recording's last chunk goes with its `stop`, below.
                imp.report_closed(&mut closed, i + 1 < count, RecorderState::Inactive);
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
            let dropped = rec.dropped();
            {
                let mut state = imp.state.lock().unwrap();
                state.last_bytes = bytes;
                state.last_dropped = dropped;
            }
            imp.emit(Event::Data(chunk), RecorderState::Inactive);
            imp.emit(
                Event::Stop {
                    location,
                    duration: rec.recorded(),
                    bytes,
                    dropped,
                    audio_gaps: rec.audio_gaps(),
                    mime: rec.effective_type.clone(),
                    posted: posted_by_job,
                },
                RecorderState::Inactive,
            );
            if rec.reached_duration() && rec.autostart {
                imp.end_upstream();
            }
        });
        posted
    }

    /// Runs a recording's file job on the dispatcher.
    pub(super) fn run_file_job(&self, job: FileJob) {
        match job {
            FileJob::Open(request) => self.open_session(request),
            FileJob::Close(file) => self.queue_file_close(file),
        }
    }

    /// Finalizes a segment that the recording has moved on from.
    fn queue_file_close(&self, file: ClosingFile) {
        let weak = self.obj().downgrade();
        self.dispatcher.submit(move || {
            let Some(obj) = weak.upgrade() else { return };
            let imp = obj.imp();
            // Reported below, by ending the recording.
            let mut reported = true;
            let mut closed = imp.close_file(file, &mut reported);
            let now = imp.state.lock().unwrap().recorder();
            if let Some(err) = closed.report.error.take() {
                // The recording cannot go on losing files: it ends with the error (the
                // finish job reports it, then dataavailable and stop).
                if !imp.end_recording(Some(err.clone())) {
                    imp.post_error(&err, None);
                    imp.emit(Event::Error(err), now);
                }
                return;
            }
            imp.report_closed(&mut closed, true, now);
        });
    }

    /// Reports a finished file: the chunks it left (its last one too with `last_chunk`),
    /// then `file-closed`, unless it got no frame (it was removed) or is not finalized.
    fn report_closed(&self, closed: &mut ClosedFile, last_chunk: bool, fired_in: RecorderState) {
        for chunk in std::mem::take(&mut closed.report.earlier) {
            self.emit(Event::Data(chunk), fired_in);
        }
        if last_chunk {
            let chunk = std::mem::take(&mut closed.report.chunk);
            self.emit(Event::Data(chunk), fired_in);
        }
        if closed.report.finalized && closed.summary.frames > 0 {
            self.emit_file_closed(closed, fired_in);
        }
    }

    /// Finalizes one file. A file that could not be finalized is an error (reported
    /// once per recording, before its `dataavailable` and `stop`); a file that holds
    /// no frame is removed rather than left unplayable.
    pub(super) fn close_file(&self, file: ClosingFile, reported: &mut bool) -> ClosedFile {
        let began = Instant::now();
        if let Some(path) = file.path() {
            self.disk_syncs.forget(path);
        }
        let progress = file.recording_progress();
        let mut closed = file.finish(FINALIZE_TIMEOUT);
        // The journal and retention are file system work that takes seconds on a busy
        // disk (5 s for an unlink under 200 recorders): the recording's end, waiting
        // behind it, is not stuck. Given up, its EOS went on before a later file was
        // finalized, and that file lost its last seconds.
        let _held = progress.hold();
        let path = closed.path.as_ref().map(|p| p.display().to_string());
        gst::debug!(CAT, imp = self, "{path:?} closed in {:?}", began.elapsed());
        if !closed.report.finalized && closed.report.error.is_none() {
            // It stalled (no progress for FINALIZE_TIMEOUT), or progressed to the cap.
            let limit = if began.elapsed() >= FINALIZE_CAP {
                FINALIZE_CAP
            } else {
                FINALIZE_TIMEOUT
            };
            closed.report.error = Some(glib::Error::new(
                gst::ResourceError::Write,
                &format!(
                    "Finalizing the recording '{}' did not complete within {} s: the file \
                     may lack its index",
                    path.as_deref().unwrap_or("(stream)"),
                    limit.as_secs()
                ),
            ));
        }
        if let Some(err) = &closed.report.error {
            gst::warning!(CAT, imp = self, "{}", err.message());
            if !*reported {
                *reported = true;
                self.post_error(err, None);
                self.emit(Event::Error(err.clone()), RecorderState::Inactive);
            }
        }
        if closed.summary.frames == 0 && closed.regular {
            if let Some(p) = &closed.path {
                if std::fs::remove_file(p).is_ok() {
                    gst::info!(
                        CAT,
                        imp = self,
                        "Removed {}: no frame was recorded",
                        p.display()
                    );
                    closed.report.bytes = 0;
                }
            }
        }
        if let Some(p) = closed.path.as_ref().filter(|_| closed.regular) {
            journal::mark_finished(p, closed.report.finalized);
        }
        let retained = Instant::now();
        self.apply_retention(&closed);
        gst::debug!(
            CAT,
            imp = self,
            "retention applied in {:?}",
            retained.elapsed()
        );
        closed
    }

    /// Opens a file's muxer session on the dispatcher thread, never in a streaming
    /// thread under the state lock (opening may block); there already (a recording
    /// that ends before its first file opened), at once. A failure ends the recording.
    fn open_session(&self, request: OpenRequest) {
        // The file is claimed and journaled as it opens (see `claim`).
        let open = move || {
            // Claiming a name and its journal marker: file system work (see `close_file`).
            let _held = request.config.progress.hold();
            let on_event = request.on_event.clone();
            if let Err(err) = request.open() {
                on_event(SessionEvent::Error(err, None));
            }
        };
        if self.dispatcher.is_worker() {
            open();
        } else {
            self.dispatcher.submit(open);
        }
    }

    /// A finished file joins the record of its location's files (see `manifest`),
    /// and what the retention policy names of them goes: oldest first, each announced
    /// by a `mediarecorder-file-removed` message. The file just finished is kept; a
    /// limit that cannot be met without deleting it is reported in a warning.
    fn apply_retention(&self, closed: &ClosedFile) {
        let Some(path) = closed.path.as_ref().filter(|_| closed.regular) else {
            return;
        };
        let (policy, location) = {
            let retention = closed.retention.lock().unwrap();
            (retention.policy, retention.location.clone())
        };
        let Some(location) = location.filter(|_| policy.any()) else {
            return;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let writing = self
            .state
            .lock()
            .unwrap()
            .stage
            .recording()
            .and_then(|r| r.bytes_in_progress_for(&closed.retention));
        let manifest = match Manifest::open(&location) {
            Ok(manifest) => manifest,
            Err(e) => {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "Cannot keep the record of the files of '{}' ({}): retention \
                         deletes nothing",
                        location,
                        e
                    )
                );
                return;
            }
        };
        let mut entries = manifest.read();
        if closed.report.finalized && closed.summary.frames > 0 {
            let name = path.file_name();
            entries.retain(|e| Some(std::ffi::OsStr::new(&e.name)) != name);
            entries.extend(Manifest::entry_for(path, closed.report.bytes, now));
        }
        let files: Vec<Finished> = entries
            .iter()
            .map(|e| Finished {
                path: manifest.path_of(e),
                bytes: e.bytes,
                at: e.at,
            })
            .collect();
        let free = free_bytes(path);
        let verdict = closed
            .retention
            .lock()
            .unwrap()
            .removals(&files, path, now, writing, free);
        for removal in verdict.removals {
            let shown = removal.path.display();
            let Some(i) = entries
                .iter()
                .position(|e| manifest.path_of(e) == removal.path)
            else {
                continue;
            };
            // Checked again just before: a name someone else took meanwhile stays.
            if manifest.still_ours(&entries[i]) {
                if let Err(e) = std::fs::remove_file(&removal.path) {
                    gst::warning!(CAT, imp = self, "Cannot remove {shown}: {e}");
                    continue;
                }
            }
            entries.remove(i);
            gst::info!(
                CAT,
                imp = self,
                "{}: removed {shown}",
                removal.reason.name()
            );
            self.post_element_message(
                gst::Structure::builder("mediarecorder-file-removed")
                    .field("location", removal.path.to_string_lossy().into_owned())
                    .field("bytes", removal.bytes)
                    .field("reason", removal.reason.name())
                    .build(),
            );
        }
        // Synced with the files' syncs, apart from this job: under 200 recorders a sync
        // here took up to 8 s, and the last file's held up the recording's EOS.
        match manifest.write(&entries, false) {
            Ok(()) => self
                .disk_syncs
                .request(manifest.path().to_path_buf(), Arc::default()),
            Err(e) => gst::warning!(
                CAT,
                imp = self,
                "Cannot update the record of {location}: {e}"
            ),
        }
        drop(manifest);
        if let Some(reason) = verdict.unmet {
            let limit = match reason {
                Reason::MaxFiles => u64::from(policy.max_files),
                Reason::MaxTotalBytes => policy.max_total_bytes,
                Reason::MinFreeBytes => policy.min_free_bytes,
                Reason::MaxAge => policy.max_age / 1_000_000,
            };
            gst::element_imp_warning!(
                self,
                gst::ResourceError::NoSpaceLeft,
                (
                    "{}={} cannot be met: '{}' ({} bytes) was just finished and is kept, \
                     every older file of this location is gone{}",
                    reason.name(),
                    limit,
                    path.display(),
                    closed.report.bytes,
                    free.map(|f| format!(" ({f} bytes free)"))
                        .unwrap_or_default()
                )
            );
        }
    }

    pub(super) fn emit_file_closed(&self, closed: &ClosedFile, fired_in: RecorderState) {
        let summary = &closed.summary;
        let info = gst::Structure::builder("mediarecorder-file-closed")
            .field(
                "location",
                closed
                    .path
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned()),
            )
            .field("first", gst::ClockTime::from_nseconds(summary.first))
            .field(
                "running-time",
                summary.running_time.map(gst::ClockTime::from_nseconds),
            )
            .field("last", gst::ClockTime::from_nseconds(summary.last))
            .field(
                "duration",
                gst::ClockTime::from_nseconds(summary.last.saturating_sub(summary.first)),
            )
            .field("bytes", closed.report.bytes)
            .field("frames", summary.frames)
            .build();
        self.emit(Event::FileClosed(info), fired_in);
    }

    /// After a timed recording under `autostart`: tell upstream we are done, so live
    /// sources stop and the pipeline reaches EOS (what `gst-launch-1.0` waits for).
    pub(super) fn end_upstream(&self) {
        let entries: Vec<gst::Element> = self
            .state
            .lock()
            .unwrap()
            .streams
            .iter()
            .map(|s| s.entry.clone())
            .collect();
        for entry in entries {
            if let Some(pad) = entry.static_pad("sink") {
                pad.send_event(gst::event::Eos::new());
            }
        }
    }

    pub(super) fn queue_event(&self, event: Event, fired_in: RecorderState) {
        let weak = self.obj().downgrade();
        self.dispatcher.submit(move || {
            if let Some(obj) = weak.upgrade() {
                obj.imp().emit(event, fired_in);
            }
        });
    }

    /// Emits one event on the dispatcher thread, with `state` reading `fired_in`.
    pub(super) fn emit(&self, event: Event, fired_in: RecorderState) {
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
                audio_gaps,
                mime,
                posted,
            } => {
                self.post_element_message(
                    gst::Structure::builder("mediarecorder-stop")
                        .field("location", location)
                        .field("duration", gst::ClockTime::from_nseconds(duration))
                        .field("bytes", bytes)
                        .field("dropped", dropped)
                        .field("audio-gaps", audio_gaps.0)
                        .field("silence", gst::ClockTime::from_nseconds(audio_gaps.1))
                        .field("mime-type", mime)
                        .build(),
                );
                posted.set();
                obj.emit_by_name::<()>("stop", &[]);
            }
        }
        *self.event_state.lock().unwrap() = None;
    }

    pub(super) fn post_element_message(&self, structure: gst::Structure) {
        let msg = gst::message::Element::builder(structure)
            .src(&*self.obj())
            .build();
        let _ = self.obj().post_message(msg);
    }

    pub(super) fn post_error(&self, err: &glib::Error, debug: Option<&str>) {
        let mut builder = gst::message::Error::builder_from_error(err.clone()).src(&*self.obj());
        if let Some(debug) = debug {
            builder = builder.debug(debug);
        }
        let _ = self.obj().post_message(builder.build());
    }

    pub(super) fn session_event(&self, recording_id: u64, event: SessionEvent) {
        match event {
            SessionEvent::Chunks(ready) => {
                // Called with the chunk cutter locked, which `request-data` takes under
                // the state lock: the state is read when the chunk is emitted instead.
                // The chunk waits in the cutter, so the end of the file (which may
                // run before this job) emits it before the file's last chunk.
                let weak = self.obj().downgrade();
                self.dispatcher.submit(move || {
                    if let Some(obj) = weak.upgrade() {
                        let imp = obj.imp();
                        let now = imp.state.lock().unwrap().recorder();
                        for chunk in ready.take() {
                            imp.emit(Event::Data(chunk), now);
                        }
                    }
                });
            }
            SessionEvent::Behind { location, dropped } => {
                // Posted from a job: this thread holds the track's lock, and a bus
                // handler may call back into the element.
                let weak = self.obj().downgrade();
                self.dispatcher.submit(move || {
                    if let Some(obj) = weak.upgrade() {
                        let file = shown(location);
                        gst::element_warning!(
                            obj,
                            gst::ResourceError::Write,
                            ("Writing {file} cannot keep up: {dropped} frames dropped so \
                                 far; each track goes on from its next keyframe"),
                            [
                                "{} MiB of media wait for the writer",
                                MAX_QUEUED_BYTES >> 20
                            ]
                        );
                    }
                });
            }
            SessionEvent::LeftOut {
                location,
                frames,
                stall,
            } => {
                let file = shown(location);
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "Finalizing {file}: the writer took nothing for {} s, and the \
                         {frames} frames still waiting for it were left out",
                        stall.as_secs()
                    )
                );
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
                self.dispatcher.submit(move || {
                    if let Some(obj) = weak.upgrade() {
                        let imp = obj.imp();
                        let current = imp.state.lock().unwrap().stage.recording().map(|r| r.id);
                        if current == Some(recording_id) {
                            imp.end_recording(Some(err));
                        }
                    }
                });
            }
        }
    }
}

/// Free bytes on the file system holding `path`, for `min-free-bytes`.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let folder = super::naming::folder_of(path);
    let folder = std::ffi::CString::new(folder.as_os_str().as_bytes()).ok()?;
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs the call fills in.
    if unsafe { libc::statvfs(folder.as_ptr(), &mut stats) } != 0 {
        return None;
    }
    Some(stats.f_bavail as u64 * stats.f_frsize as u64)
}

/// A file named in a message: its path, or the recording when it has none (a stream).
fn shown(location: Option<std::path::PathBuf>) -> String {
    location.map_or_else(|| "the recording".to_string(), |p| p.display().to_string())
}
