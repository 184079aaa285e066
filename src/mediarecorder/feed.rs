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
    /// Where the first frame pushed starts: the track's segment begins there (see
    /// `fits`).
    first_start: Option<u64>,
}

impl WentIn {
    /// A frame (or a gap) of `bytes` starting at `start` (DTS or PTS) went in.
    pub fn went_in(&mut self, bytes: u64, start: Option<u64>) {
        self.frames += 1;
        self.bytes += bytes;
        if self.first_start.is_none() {
            self.first_start = start;
        }
    }

    /// Bytes in the muxer's queue for the track.
    pub fn bytes_held(&self, taken: &Taken) -> u64 {
        self.bytes.saturating_sub(taken.bytes())
    }

    /// Whether a frame ending at `end` may go in now without waiting: the muxer's pad
    /// takes a frame while the media it holds spans at most its latency. `limit` is
    /// below that latency, since what was taken is known a little late: the span is
    /// counted from the end of the last frame taken, never less than the muxer's own
    /// count. Until one is taken, the aggregator counts from its segment's position
    /// (GStreamer 1.26), which the track's segment sets to where its first frame
    /// starts (see `start_of`): a track starting seconds into the file must not look
    /// seconds full with one frame in it.
    pub fn fits(&self, taken: &Taken, end: Option<u64>, limit: u64) -> bool {
        if taken.frames() >= self.frames {
            // An empty queue always takes a frame.
            return true;
        }
        let oldest = taken.end().or(self.first_start);
        match (end, oldest) {
            (Some(end), Some(oldest)) => end.saturating_sub(oldest) <= limit,
            // Frames without times do not count toward the muxer's span either.
            _ => true,
        }
    }
}

/// Where a frame starts on the muxer's clock: its DTS, or its PTS.
pub fn start_of(buffer: &gst::BufferRef) -> Option<u64> {
    Some(buffer.dts().or(buffer.pts())?.nseconds())
}

/// Where a frame ends on the muxer's clock: its start plus its duration, as the
/// aggregator counts it.
pub fn end_of(buffer: &gst::BufferRef) -> Option<u64> {
    Some(start_of(buffer)? + buffer.duration().map_or(0, gst::ClockTime::nseconds))
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
            went.went_in(100, Some(i * 33 * MS));
            admitted += 1;
        }
        // Up to 200 ms after the first frame's start: frames 1-6.
        assert_eq!(admitted, 6);
        assert_eq!(went.bytes_held(&taken), 600);
        // The muxer takes the first three: room for three more (frames 7 to 9).
        for i in 0..3u64 {
            taken.took(100, Some((i + 1) * 33 * MS));
        }
        assert!(went.fits(&taken, Some(9 * 33 * MS), LIMIT));
        assert!(!went.fits(&taken, Some(10 * 33 * MS), LIMIT));
        assert_eq!(went.bytes_held(&taken), 300);
    }

    #[test]
    fn a_track_starting_late_counts_from_its_first_frame() {
        // Video whose first frame comes 2 s into the file, as a phone's cut leaves it:
        // its second frame fits, as it does in the muxer whose segment starts there.
        let mut went = WentIn::default();
        let taken = Taken::default();
        assert!(went.fits(&taken, Some(2_033 * MS), LIMIT));
        went.went_in(100, Some(2_000 * MS));
        assert!(went.fits(&taken, Some(2_066 * MS), LIMIT));
        assert!(!went.fits(&taken, Some(2_201 * MS), LIMIT));
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
