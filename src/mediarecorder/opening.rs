//! A file whose muxer session may still be opening.
//!
//! Opening a file can block (a network share, a slow card), and a file is opened at a
//! segment boundary in a streaming thread holding the state lock. So the session is
//! opened on the dispatcher thread instead, and what the recording hands the file
//! meanwhile waits here, in order, until the session is there.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gst::glib;

use super::chunks::Chunk;
use super::claim::{self, Names};
use super::resync::Resync;
use super::session::{count_dropped, KeepBytes, OnEvent};
use super::session::{FinishReport, MuxSession, SessionConfig, MAX_QUEUED_BYTES};
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
        resync: Resync,
    },
    /// Open; the tracks that dropped frames while it opened and still wait for a
    /// keyframe.
    Open(Box<MuxSession>, Resync),
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
        let (waiting, resync) = match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Opening {
                waiting, resync, ..
            } => (waiting, resync),
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
        *slot = Slot::Open(Box::new(session), resync);
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
    /// Where frames dropped while the file opens are told (`SessionEvent::Behind`).
    on_event: OnEvent,
    /// The file's name as asked for, for that message until the file is claimed.
    location: Option<PathBuf>,
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
                resync: Resync::default(),
            })),
            dropped: config.dropped.clone(),
            file: Arc::default(),
            on_event: on_event.clone(),
            location: config
                .location
                .clone()
                .or_else(|| names.as_ref().map(|n| PathBuf::from(n.location()))),
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
    /// `MAX_QUEUED_BYTES` wait, and a frame beyond is dropped and counted, its track
    /// resuming at its next keyframe (`resync`), also once the file is open.
    pub fn push(&self, stream: usize, buffer: gst::Buffer) {
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let mut slot = self.slot.lock().unwrap();
        let taken = match &mut *slot {
            Slot::Open(session, resync) => {
                // The session's own queue has its own bound (and the same rule).
                let taken = resync.admit(stream, keyframe, true);
                if taken {
                    session.push(stream, buffer);
                }
                taken
            }
            Slot::Opening {
                waiting,
                bytes,
                resync,
            } => {
                let taken = resync.admit(stream, keyframe, *bytes < MAX_QUEUED_BYTES);
                if taken {
                    *bytes += buffer.size() as u64;
                    waiting.push(Waiting::Frame(stream, buffer));
                }
                taken
            }
            Slot::Failed(_) | Slot::Closed => true,
        };
        if !taken {
            count_dropped(&self.dropped, &self.on_event, || {
                self.file()
                    .map(|f| f.path.clone())
                    .or_else(|| self.location.clone())
            });
        }
    }

    /// See `MuxSession::set_opus_pre_skip`; kept in order with the frames.
    pub fn set_opus_pre_skip(&self, stream: usize, samples: u16) {
        let mut slot = self.slot.lock().unwrap();
        match &mut *slot {
            Slot::Open(session, _) => session.set_opus_pre_skip(stream, samples),
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
            Slot::Open(session, _) => session.bytes_written(),
            _ => 0,
        }
    }

    /// See `MuxSession::take_chunk`; nothing is written while opening.
    pub fn take_chunk(&self, mut deliver: impl FnMut(Chunk)) {
        match &*self.slot.lock().unwrap() {
            Slot::Open(session, _) => session.take_chunk(deliver),
            _ => deliver(Chunk::default()),
        }
    }

    /// Finalizes the file, giving up after `stall` without progress. Call after the
    /// open request ran (both run on the dispatcher, in order); a session that never
    /// opened reports nothing written.
    pub fn finish(self, stall: Duration) -> FinishReport {
        let slot = std::mem::replace(&mut *self.slot.lock().unwrap(), Slot::Closed);
        let error = match slot {
            Slot::Open(session, _) => return session.finish(stall),
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
    use std::sync::atomic::Ordering;
    use std::thread::JoinHandle;

    /// A video file opening into a FIFO, on a thread of its own: the open blocks until
    /// a reader comes (as a stalled network share would).
    struct Opening {
        dir: PathBuf,
        fifo: PathBuf,
        dropped: Arc<AtomicU64>,
        handle: SessionHandle,
        opener: JoinHandle<Result<(), glib::Error>>,
    }

    fn opening(name: &str) -> Opening {
        let FifoSession {
            dir,
            fifo,
            config,
            dropped,
            caps,
        } = fifo_session(name);
        let (handle, request) = SessionHandle::opening(
            config,
            None,
            vec![(0, Kind::Video, caps)],
            Arc::new(|| false),
            Arc::new(|_| {}),
        );
        let opener = std::thread::spawn(move || request.open());
        Opening {
            dir,
            fifo,
            dropped,
            handle,
            opener,
        }
    }

    impl Opening {
        /// A reader arrives: the file opens. Returns all that is written to it.
        fn read(self) -> (SessionHandle, JoinHandle<Vec<u8>>, PathBuf) {
            let mut reader = std::fs::File::open(&self.fifo).unwrap();
            let reading = std::thread::spawn(move || {
                let mut all = Vec::new();
                let _ = reader.read_to_end(&mut all);
                all
            });
            self.opener.join().unwrap().expect("the session opens");
            (self.handle, reading, self.dir)
        }
    }

    fn frame(i: u64) -> gst::Buffer {
        let mut buffer = gst::Buffer::from_slice(vec![i as u8; 1000]);
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(i * 33));
        b.set_duration(gst::ClockTime::from_mseconds(33));
        buffer
    }

    /// Frames handed over while the file opens return at once and are written, in
    /// order, once it is open.
    #[test]
    fn frames_wait_in_order_while_the_file_opens() {
        let file = opening("slow-open");
        let dropped = file.dropped.clone();
        let started = std::time::Instant::now();
        for i in 0..30 {
            file.handle.push(0, frame(i));
        }
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "push blocked"
        );
        assert!(
            !file.opener.is_finished(),
            "the FIFO open should still block"
        );
        assert_eq!(file.handle.bytes_written(), 0);
        // What waited is written once the file opens.
        let (handle, reading, dir) = file.read();
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

    /// The byte each frame of `written` was filled with, in order: runs of one byte
    /// at least 1000 long (the muxer writes each frame's bytes in one piece).
    fn frames_in(written: &[u8]) -> Vec<u8> {
        let mut frames = Vec::new();
        let mut start = 0;
        for end in 1..=written.len() {
            if end == written.len() || written[end] != written[start] {
                if end - start >= 1000 && written[start] != 0 {
                    frames.push(written[start]);
                }
                start = end;
            }
        }
        frames
    }

    /// Frames beyond the bound are dropped while the file opens; once it is open, the
    /// video track goes on at its next keyframe, not with delta frames that would
    /// decode to broken pictures.
    #[test]
    fn after_drops_while_opening_video_resumes_at_a_keyframe() {
        let file = opening("slow-open-full");
        let dropped = file.dropped.clone();
        const MIB: usize = 1 << 20;
        // Frame `i` is 1 MiB of byte `i + 1`; frame 0 is a keyframe, the rest deltas.
        let frame = |i: u8, keyframe: bool| {
            let mut buffer = gst::Buffer::from_slice(vec![i + 1; MIB]);
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(u64::from(i) * 33));
            b.set_duration(gst::ClockTime::from_mseconds(33));
            if !keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            buffer
        };
        let bound = (MAX_QUEUED_BYTES as usize / MIB) as u8;
        // The bound's worth waits; the next 8 frames are dropped.
        for i in 0..bound + 8 {
            file.handle.push(0, frame(i, i == 0));
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 8);
        let (handle, reading, dir) = file.read();
        // Once what waited is written (the muxer's own queue has room again)...
        let written = std::time::Instant::now();
        while handle.bytes_written() < u64::from(bound) * MIB as u64 {
            assert!(written.elapsed() < Duration::from_secs(20), "not written");
            std::thread::sleep(Duration::from_millis(10));
        }
        // ... deltas after the gap are left out until the next keyframe.
        let next = bound + 8;
        for i in next..next + 3 {
            handle.push(0, frame(i, false));
        }
        handle.push(0, frame(next + 3, true));
        handle.push(0, frame(next + 4, false));
        handle.finish(Duration::from_secs(2));
        let frames = frames_in(&reading.join().unwrap());
        let expected: Vec<u8> = (1..=bound).chain([next + 4, next + 5]).collect();
        assert_eq!(frames, expected, "frames in the file, by their byte");
        assert_eq!(dropped.load(Ordering::Relaxed), 11);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
