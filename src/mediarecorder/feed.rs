//! How a file's tracks reach its muxer.
//!
//! A muxer whose pads make the pushing thread wait until every track has a frame
//! (`matroskamux` up to GStreamer 1.22, with collect pads) gets each track through an
//! `appsrc`: its thread does the waiting, never a streaming thread of the user's
//! pipeline. An aggregator muxer (`mp4mux`; `matroskamux` in 1.26) queues each track
//! up to its latency instead; there a track's frames go in on the thread that brings
//! them, with no thread of their own, as a hand pipeline's do. Handing frames to a thread per track was most of what a camera kept as it is
//! cost beyond a hand pipeline (BENCHMARKS.md, "Cameras kept as they are").
//!
//! Such a push must still never wait: a track that runs ahead of another (a camera's
//! audio late by a second, a demuxer with no queues feeding both tracks from one
//! thread) or a stalled disk would otherwise stall the user's pipeline, or deadlock
//! it. So a frame goes in only while the track's queue in the muxer has room (`fits`),
//! counted from what went in and what the muxer's thread took out (`Taken`); the rest
//! waits in the session, within the same bound of bytes an `appsrc` had.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the muxer's thread took out of one track's queue, updated from that thread.
#[derive(Debug, Default)]
pub struct Taken {
    frames: AtomicU64,
    bytes: AtomicU64,
    /// Where the last frame taken ends (DTS or PTS, plus duration), plus one; 0: none.
    end: AtomicU64,
}

impl Taken {
    /// The muxer took a frame of `bytes` ending at `end`.
    pub fn took(&self, bytes: u64, end: Option<u64>) {
        if let Some(end) = end {
            self.end.store(end.saturating_add(1), Ordering::Relaxed);
        }
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        // Last: a reader that sees the count sees the rest.
        self.frames.fetch_add(1, Ordering::Release);
    }

    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Acquire)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn end(&self) -> Option<u64> {
        self.end.load(Ordering::Relaxed).checked_sub(1)
    }
}

/// What went into one track's queue in the muxer.
#[derive(Debug, Default, Clone, Copy)]
pub struct WentIn {
    frames: u64,
    bytes: u64,
    /// Where the first frame pushed ends.
    first_end: Option<u64>,
}

impl WentIn {
    pub fn went_in(&mut self, bytes: u64, end: Option<u64>) {
        self.frames += 1;
        self.bytes += bytes;
        if self.first_end.is_none() {
            self.first_end = end;
        }
    }

    /// Bytes in the muxer's queue for the track.
    pub fn bytes_held(&self, taken: &Taken) -> u64 {
        self.bytes.saturating_sub(taken.bytes())
    }

    /// Whether a frame ending at `end` may go in now without waiting: the muxer's pad
    /// takes a frame while the media it holds spans at most its latency. `limit` is
    /// below that latency, since what was taken is known a little late: the span is
    /// counted from the last frame taken (or the first that went in), never less than
    /// the muxer's own count.
    pub fn fits(&self, taken: &Taken, end: Option<u64>, limit: u64) -> bool {
        if taken.frames() >= self.frames {
            // An empty queue always takes a frame.
            return true;
        }
        let oldest = taken.end().or(self.first_end);
        match (end, oldest) {
            (Some(end), Some(oldest)) => end.saturating_sub(oldest) <= limit,
            // Frames without times do not count toward the muxer's span either.
            _ => true,
        }
    }
}

/// Where a frame ends on the muxer's clock: its DTS (or PTS) plus its duration, as
/// the aggregator counts it.
pub fn end_of(buffer: &gst::BufferRef) -> Option<u64> {
    let at = buffer.dts().or(buffer.pts())?.nseconds();
    Some(at + buffer.duration().map_or(0, gst::ClockTime::nseconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const LIMIT: u64 = 200 * MS;

    #[test]
    fn an_empty_queue_takes_any_frame() {
        let went = WentIn::default();
        assert!(went.fits(&Taken::default(), Some(10_000 * MS), LIMIT));
        let mut went = WentIn::default();
        let taken = Taken::default();
        went.went_in(10, Some(33 * MS));
        taken.took(10, Some(33 * MS));
        // Everything taken: a frame far later still goes in.
        assert!(went.fits(&taken, Some(5_000 * MS), LIMIT));
        assert_eq!(went.bytes_held(&taken), 0);
    }

    #[test]
    fn a_track_ahead_of_what_the_muxer_took_waits() {
        let mut went = WentIn::default();
        let taken = Taken::default();
        // 30 fps video goes in while the muxer takes nothing (it waits for audio).
        let mut admitted = 0;
        for i in 0..30u64 {
            let end = Some((i + 1) * 33 * MS);
            if !went.fits(&taken, end, LIMIT) {
                break;
            }
            went.went_in(100, end);
            admitted += 1;
        }
        // Up to 200 ms after the first frame's end: frames 1-7.
        assert_eq!(admitted, 7);
        assert_eq!(went.bytes_held(&taken), 700);
        // The muxer takes the first three: room for two more (frames 8 and 9).
        for i in 0..3u64 {
            taken.took(100, Some((i + 1) * 33 * MS));
        }
        assert!(went.fits(&taken, Some(9 * 33 * MS), LIMIT));
        assert!(!went.fits(&taken, Some(10 * 33 * MS), LIMIT));
        assert_eq!(went.bytes_held(&taken), 400);
    }

    #[test]
    fn frames_without_times_are_not_held() {
        let mut went = WentIn::default();
        let taken = Taken::default();
        went.went_in(1, None);
        assert!(went.fits(&taken, None, LIMIT));
        assert!(went.fits(&taken, Some(9_000 * MS), LIMIT));
    }

    #[test]
    fn the_end_counts_dts_first_and_the_duration() {
        gst::init().unwrap();
        let mut b = gst::Buffer::new();
        {
            let b = b.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(100));
            b.set_dts(gst::ClockTime::from_mseconds(66));
            b.set_duration(gst::ClockTime::from_mseconds(33));
        }
        assert_eq!(end_of(&b), Some(99 * MS));
        assert_eq!(end_of(&gst::Buffer::new()), None);
    }
}
