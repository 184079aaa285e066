//! When a track's frames waiting for its muxer are handed over. Each track of a file
//! reaches the muxer through a source with a thread of its own; waking that thread
//! per frame is, for media kept as it is, most of what the element costs beyond a
//! hand pipeline (BENCHMARKS.md, "Cameras kept as they are"). So frames are gathered
//! per track and handed over together, about ten times a second: when the batch spans
//! `window` of media, reaches `max_bytes`, or a video keyframe arrives (the muxer can
//! then close the fragment before it at once). A window of 0 hands every frame over
//! as it comes.

/// About ten hand-overs a second per track.
pub const WINDOW_NS: u64 = 100_000_000;
/// A batch of more than this goes at once, whatever its media span (a burst of
/// frames, a high bitrate).
pub const MAX_BATCH_BYTES: u64 = 1024 * 1024;

/// One track's frames not handed over yet.
#[derive(Debug, Clone)]
pub struct Batch {
    window: u64,
    max_bytes: u64,
    /// The PTS of the first waiting frame that had one.
    first: Option<u64>,
    bytes: u64,
}

impl Batch {
    pub fn new(window: u64, max_bytes: u64) -> Self {
        Batch {
            window,
            max_bytes,
            first: None,
            bytes: 0,
        }
    }

    /// Notes a frame of `bytes` at `pts` (`video_keyframe`: a video frame that starts a
    /// group of pictures) added to the batch; returns whether to hand the batch over
    /// now, after which it is empty.
    pub fn add(&mut self, pts: Option<u64>, bytes: u64, video_keyframe: bool) -> bool {
        self.bytes += bytes;
        if self.first.is_none() {
            self.first = pts;
        }
        let spanned = match (self.first, pts) {
            (Some(first), Some(pts)) => pts.saturating_sub(first) >= self.window,
            // Without times the span is unknown: no waiting.
            _ => true,
        };
        let now = self.window == 0 || spanned || video_keyframe || self.bytes >= self.max_bytes;
        if now {
            self.clear();
        }
        now
    }

    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The batch was handed over (a flush: end of file, a caps change).
    pub fn clear(&mut self) {
        self.first = None;
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn frames_go_together_about_ten_times_a_second() {
        let mut b = Batch::new(WINDOW_NS, MAX_BATCH_BYTES);
        // 30 fps video deltas: handed over once the batch spans 100 ms (4 frames).
        let handed: Vec<bool> = (0..8)
            .map(|i| b.add(Some(i * 1_000_000_000 / 30), 10_000, false))
            .collect();
        assert_eq!(
            handed,
            [false, false, false, true, false, false, false, true]
        );
        assert_eq!(b.bytes(), 0);
    }

    #[test]
    fn a_keyframe_goes_at_once_with_what_waits() {
        let mut b = Batch::new(WINDOW_NS, MAX_BATCH_BYTES);
        assert!(!b.add(Some(0), 5, false));
        assert_eq!(b.bytes(), 5);
        assert!(b.add(Some(33 * MS), 50, true));
        assert_eq!(b.bytes(), 0);
    }

    #[test]
    fn a_large_batch_goes_whatever_its_span() {
        let mut b = Batch::new(WINDOW_NS, 100);
        assert!(!b.add(Some(0), 60, false));
        assert!(b.add(Some(MS), 60, false));
    }

    #[test]
    fn no_window_or_no_times_means_no_waiting() {
        let mut b = Batch::new(0, MAX_BATCH_BYTES);
        assert!(b.add(Some(0), 1, false));
        let mut b = Batch::new(WINDOW_NS, MAX_BATCH_BYTES);
        assert!(b.add(None, 1, false));
        assert!(!b.add(Some(0), 1, false));
        assert!(b.add(None, 1, false));
    }

    #[test]
    fn a_flush_starts_a_new_batch() {
        let mut b = Batch::new(WINDOW_NS, MAX_BATCH_BYTES);
        assert!(!b.add(Some(0), 7, false));
        b.clear();
        assert_eq!(b.bytes(), 0);
        // The window counts from the first frame after the flush.
        assert!(!b.add(Some(90 * MS), 1, false));
        assert!(!b.add(Some(150 * MS), 1, false));
        assert!(b.add(Some(190 * MS), 1, false));
    }
}
