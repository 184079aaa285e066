//! The writer: carries out the engine's file actions. It owns the recording's muxer
//! sessions, names the files, hands finished files to retention, and counts what the
//! writer dropped.
//! Nothing here blocks: sessions open, close and files are removed by jobs that the
//! element runs on its dispatcher thread, in the order they were made.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::chunks::Chunk;
use super::claim::Names;
use super::engine::{FileId, FileSummary, Write};
use super::finalize::Progress;
use super::mimetype::Container;
use super::opening::{OpenRequest, SessionHandle};
use super::retention::{Policy, Retention};
use super::session::{FinishReport, KeepBytes, OnEvent, SessionConfig};
use super::timeline::Kind;

/// Work that may block, for the dispatcher thread.
pub enum FileJob {
    Open(OpenRequest),
    Close(ClosingFile),
}

/// What the writer needs from the element.
#[derive(Clone)]
pub struct WriterHooks {
    /// Whether anyone takes the bytes (`dataavailable` has a handler).
    pub keep_bytes: KeepBytes,
    pub on_event: OnEvent,
    /// Index for the next file of a `location` pattern, shared by the element's
    /// recordings.
    pub next_index: Arc<AtomicU64>,
}

pub struct WriterConfig {
    pub container: Container,
    pub location: Option<String>,
    pub timeslice: Option<gst::ClockTime>,
    pub cluster_duration: gst::ClockTime,
    pub retention: Policy,
}

/// A file the engine closed, to be finalized.
pub struct ClosingFile {
    session: SessionHandle,
    summary: FileSummary,
    retention: Arc<Mutex<Retention>>,
    /// The recording's progress, which what waits for its end watches.
    recording_progress: Arc<Progress>,
}

/// What `file-closed` reports about a finished file.
pub struct ClosedFile {
    pub path: Option<PathBuf>,
    /// A regular file the recording made (not a device).
    pub regular: bool,
    pub summary: FileSummary,
    pub report: FinishReport,
    /// The recording's retention, which the finished file joins.
    pub retention: Arc<Mutex<Retention>>,
}

impl ClosingFile {
    /// The recording's progress, held while the file system work that follows its
    /// finalization (the journal, retention) goes on.
    pub fn recording_progress(&self) -> Arc<Progress> {
        self.recording_progress.clone()
    }

    /// The file's path, once it has one.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.session.file().map(|f| f.path.as_path())
    }

    /// Finalizes the file; blocks while it progresses, up to `stall` without progress
    /// (see `finalize`).
    pub fn finish(self, stall: std::time::Duration) -> ClosedFile {
        let file = self.session.file().cloned();
        ClosedFile {
            report: self.session.finish(stall),
            path: file.as_ref().map(|f| f.path.clone()),
            regular: file.is_some_and(|f| f.regular),
            summary: self.summary,
            retention: self.retention,
        }
    }
}

pub struct Writer {
    config: WriterConfig,
    hooks: WriterHooks,
    open: Vec<(FileId, SessionHandle)>,
    current: Option<FileId>,
    retention: Arc<Mutex<Retention>>,
    /// Frames dropped because the writer fell behind (all files of the recording).
    dropped: Arc<AtomicU64>,
    /// The steps of all the recording's files, which waits for its end watch.
    progress: Arc<Progress>,
}

impl Writer {
    pub fn new(config: WriterConfig, hooks: WriterHooks) -> Self {
        Writer {
            retention: Arc::new(Mutex::new(Retention::new(
                config.retention,
                config.location.clone(),
            ))),
            config,
            hooks,
            open: Vec::new(),
            current: None,
            dropped: Arc::default(),
            progress: Arc::default(),
        }
    }

    /// Opens file `file` for `tracks` (with their caps), named by `wall_clock` (ns
    /// since 1970; else now): returns the job that claims a name and opens it.
    pub fn open(
        &mut self,
        file: FileId,
        tracks: Vec<(usize, Kind, gst::Caps)>,
        wall_clock: Option<u64>,
    ) -> FileJob {
        let names = self
            .config
            .location
            .as_deref()
            .map(|l| Names::new(l, wall_clock, self.hooks.next_index.clone()));
        let config = SessionConfig {
            container: self.config.container,
            location: None,
            sink_location: None,
            timeslice: self.config.timeslice,
            cluster_duration: self.config.cluster_duration,
            gst_version: gst::version(),
            dropped: self.dropped.clone(),
            progress: self.progress.clone(),
        };
        let (session, request) = SessionHandle::opening(
            config,
            names,
            tracks,
            self.hooks.keep_bytes.clone(),
            self.hooks.on_event.clone(),
        );
        self.open.push((file, session));
        self.current = Some(file);
        FileJob::Open(request)
    }

    /// Hands a frame to its file (a queue: does not block).
    pub fn write(&self, write: Write<gst::Buffer>) {
        let Some((_, session)) = self.open.iter().find(|(id, _)| *id == write.file) else {
            return;
        };
        let mut buffer = write.payload;
        {
            let b = buffer.make_mut();
            b.set_pts(gst::ClockTime::from_nseconds(write.pts));
            b.set_dts(write.dts.map(gst::ClockTime::from_nseconds));
            b.set_duration(write.duration.map(gst::ClockTime::from_nseconds));
            if let Some((start, end)) = write.trim {
                if let Some(meta) = b.meta_mut::<gst_audio::AudioClippingMeta>() {
                    let _ = meta.remove();
                }
                gst_audio::AudioClippingMeta::add(
                    b,
                    gst::format::Default::from_u64(start),
                    gst::format::Default::from_u64(end),
                );
            }
        }
        if let Some(samples) = write.pre_skip {
            session.set_opus_pre_skip(write.track, samples);
        }
        session.push(write.track, buffer);
    }

    /// Takes file `file` out for finalizing.
    pub fn close(&mut self, file: FileId, summary: FileSummary) -> Option<ClosingFile> {
        let index = self.open.iter().position(|(id, _)| *id == file)?;
        let (_, session) = self.open.remove(index);
        if self.current == Some(file) {
            self.current = None;
        }
        Some(ClosingFile {
            session,
            summary,
            retention: self.retention.clone(),
            recording_progress: self.progress.clone(),
        })
    }

    fn current_session(&self) -> Option<&SessionHandle> {
        let current = self.current?;
        self.open
            .iter()
            .find(|(id, _)| *id == current)
            .map(|(_, s)| s)
    }

    /// The path of the file being written, once it is claimed.
    pub fn current_path(&self) -> Option<PathBuf> {
        self.current_session()
            .and_then(SessionHandle::file)
            .map(|f| f.path.clone())
    }

    /// Bytes written to the current file.
    pub fn bytes_written(&self) -> u64 {
        self.current_session()
            .map_or(0, SessionHandle::bytes_written)
    }

    /// Whether `retention` is this recording's.
    pub fn owns(&self, retention: &Arc<Mutex<Retention>>) -> bool {
        Arc::ptr_eq(&self.retention, retention)
    }

    /// The steps its files' muxers make, finalizing or not (see `finalize`).
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// Frames the writer could not take.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Cuts a `request-data` chunk from the current file; false when none is open.
    pub fn take_chunk(&self, deliver: impl FnMut(Chunk)) -> bool {
        match self.current_session() {
            Some(session) => {
                session.take_chunk(deliver);
                true
            }
            None => false,
        }
    }
}
