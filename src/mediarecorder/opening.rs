//! A file whose muxer session may still be opening.
//!
//! Opening a file can block (a network share, a slow card), and a file is opened at a
//! segment boundary in a streaming thread holding the state lock. So the session is
//! opened on the dispatcher thread instead, and what the recording hands the file
//! meanwhile waits here, in order, until the session is there.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gst::glib;

use super::chunks::Chunk;
use super::claim::{self, Names};
use super::session::{FinishReport, MuxSession, SessionConfig, MAX_QUEUED_BYTES};
use super::session::{KeepBytes, OnEvent};
use super::timeline::Kind;

/// What waits for the session, in the order it was handed over.
enum Waiting {
    Frame(usize, gst::Buffer),
    PreSkip(usize, u16),
}

enum Slot {
    Opening {
        waiting: Vec<Waiting>,
        bytes: u64,
    },
    Open(MuxSession),
    /// Opening failed; the error also ended the recording.
    Failed(glib::Error),
    /// Finished.
    Closed,
}

/// Everything needed to open a session, handed to the thread that opens it.
pub struct OpenRequest {
    pub handle: SessionHandle,
    pub config: SessionConfig,
    /// The names the file may take; none without a `location`.
    pub names: Option<Names>,
    pub tracks: Vec<(usize, Kind, gst::Caps)>,
    pub keep_bytes: KeepBytes,
    pub on_event: OnEvent,
}

impl OpenRequest {
    /// Opens the session and hands it what waited. The error names the file.
    pub fn open(mut self) -> Result<(), glib::Error> {
        if !matches!(*self.handle.slot.lock().unwrap(), Slot::Opening { .. }) {
            // Finished before it opened: no file to claim.
            return Ok(());
        }
        // Claimed here, on the dispatcher thread: names are probed and files created
        // off the streaming threads and the state lock.
        let claimed = self.names.as_ref().map(claim::claim).transpose();
        let opened = claimed.and_then(|claimed| {
            if let Some(c) = &claimed {
                self.config.location = Some(c.path.clone());
                self.config.sink_location = Some(c.sink_location());
                let _ = self.handle.file.set(FileName {
                    path: c.path.clone(),
                    regular: c.regular,
                });
            }
            // The sink opens its own descriptor of the file; ours closes after.
            MuxSession::start(&self.config, &self.tracks, self.keep_bytes, self.on_event)
        });
        let mut slot = self.handle.slot.lock().unwrap();
        let waiting = match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Opening { waiting, .. } => waiting,
            // Finished before it opened: nothing to write.
            other => {
                *slot = other;
                return Ok(());
            }
        };
        let session = match opened {
            Ok(session) => session,
            Err(err) => {
                *slot = Slot::Failed(err.clone());
                return Err(err);
            }
        };
        for item in waiting {
            match item {
                Waiting::Frame(stream, buffer) => {
                    session.push(stream, buffer);
                }
                Waiting::PreSkip(stream, samples) => session.set_opus_pre_skip(stream, samples),
            }
        }
        *slot = Slot::Open(session);
        Ok(())
    }
}

/// The file a session writes, once claimed.
#[derive(Debug, Clone)]
pub struct FileName {
    pub path: PathBuf,
    /// A regular file the recording made (not a device): journaled, and removed when
    /// it holds nothing.
    pub regular: bool,
}

/// A file's muxer session, open or opening. Cloned handles share it.
#[derive(Clone)]
pub struct SessionHandle {
    slot: Arc<Mutex<Slot>>,
    file: Arc<OnceLock<FileName>>,
    /// The recording's count of frames the writer could not take (the session's own).
    dropped: Arc<AtomicU64>,
}

impl SessionHandle {
    /// A session to be opened by `OpenRequest::open`, and what it needs.
    pub fn opening(
        config: SessionConfig,
        names: Option<Names>,
        tracks: Vec<(usize, Kind, gst::Caps)>,
        keep_bytes: KeepBytes,
        on_event: OnEvent,
    ) -> (SessionHandle, OpenRequest) {
        let handle = SessionHandle {
            slot: Arc::new(Mutex::new(Slot::Opening {
                waiting: Vec::new(),
                bytes: 0,
            })),
            dropped: config.dropped.clone(),
            file: Arc::default(),
        };
        let request = OpenRequest {
            handle: handle.clone(),
            config,
            names,
            tracks,
            keep_bytes,
            on_event,
        };
        (handle, request)
    }

    /// Queues an encoded frame (see `MuxSession::push`); while opening, at most
    /// `MAX_QUEUED_BYTES` wait, and a frame beyond is dropped and counted.
    pub fn push(&self, stream: usize, buffer: gst::Buffer) {
        let mut slot = self.slot.lock().unwrap();
        match &mut *slot {
            Slot::Open(session) => {
                session.push(stream, buffer);
            }
            Slot::Opening { waiting, bytes } => {
                if *bytes >= MAX_QUEUED_BYTES {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                *bytes += buffer.size() as u64;
                waiting.push(Waiting::Frame(stream, buffer));
            }
            Slot::Failed(_) | Slot::Closed => {}
        }
    }

    /// See `MuxSession::set_opus_pre_skip`; kept in order with the frames.
    pub fn set_opus_pre_skip(&self, stream: usize, samples: u16) {
        let mut slot = self.slot.lock().unwrap();
        match &mut *slot {
            Slot::Open(session) => session.set_opus_pre_skip(stream, samples),
            Slot::Opening { waiting, .. } => waiting.push(Waiting::PreSkip(stream, samples)),
            Slot::Failed(_) | Slot::Closed => {}
        }
    }

    /// The file, once claimed (the open request ran).
    pub fn file(&self) -> Option<&FileName> {
        self.file.get()
    }

    pub fn bytes_written(&self) -> u64 {
        match &*self.slot.lock().unwrap() {
            Slot::Open(session) => session.bytes_written(),
            _ => 0,
        }
    }

    /// See `MuxSession::take_chunk`; nothing is written while opening.
    pub fn take_chunk(&self, mut deliver: impl FnMut(Chunk)) {
        match &*self.slot.lock().unwrap() {
            Slot::Open(session) => session.take_chunk(deliver),
            _ => deliver(Chunk::default()),
        }
    }

    /// Finalizes the file. Call after the open request ran (both run on the
    /// dispatcher, in order); a session that never opened reports nothing written.
    pub fn finish(self, timeout: Duration) -> FinishReport {
        let slot = std::mem::replace(&mut *self.slot.lock().unwrap(), Slot::Closed);
        let error = match slot {
            Slot::Open(session) => return session.finish(timeout),
            Slot::Failed(err) => Some(err),
            Slot::Opening { .. } | Slot::Closed => None,
        };
        FinishReport {
            earlier: Vec::new(),
            chunk: Chunk::default(),
            bytes: 0,
            finalized: false,
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mediarecorder::session::fifo_session::{fifo_session, FifoSession};
    use std::io::Read;

    fn frame(i: u64) -> gst::Buffer {
        let mut buffer = gst::Buffer::from_slice(vec![i as u8; 1000]);
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(i * 33));
        b.set_duration(gst::ClockTime::from_mseconds(33));
        buffer
    }

    /// The path is a FIFO, so opening blocks until a reader comes (as a stalled network
    /// share would): frames handed over meanwhile return at once and are written, in
    /// order, once the file is open.
    #[test]
    fn frames_wait_in_order_while_the_file_opens() {
        let FifoSession {
            dir,
            fifo,
            config,
            dropped,
            caps,
        } = fifo_session("slow-open");
        let (handle, request) = SessionHandle::opening(
            config,
            None,
            vec![(0, Kind::Video, caps)],
            Arc::new(|| false),
            Arc::new(|_| {}),
        );
        let opener = std::thread::spawn(move || request.open());
        let started = std::time::Instant::now();
        for i in 0..30 {
            handle.push(0, frame(i));
        }
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "push blocked"
        );
        assert!(!opener.is_finished(), "the FIFO open should still block");
        assert_eq!(handle.bytes_written(), 0);
        // A reader arrives: the file opens and what waited is written.
        let mut reader = std::fs::File::open(&fifo).unwrap();
        let reading = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = reader.read_to_end(&mut all);
            all
        });
        opener.join().unwrap().expect("the session opens");
        for i in 30..40 {
            handle.push(0, frame(i));
        }
        handle.finish(Duration::from_secs(2));
        let written = reading.join().unwrap();
        // 40 frames of 1000 bytes, each filled with its own index: all there, in order.
        let positions: Vec<usize> = (0..40u8)
            .map(|i| {
                written
                    .windows(1000)
                    .position(|w| w.iter().all(|b| *b == i))
                    .unwrap_or_else(|| panic!("frame {i} is not in the file"))
            })
            .collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "frames in order");
        assert_eq!(dropped.load(Ordering::Relaxed), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
