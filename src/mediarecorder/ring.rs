//! The pre-record ring: the most recent whole GOPs of encoded frames, kept while no
//! recording runs, so a recording can begin before its trigger. It holds at most
//! `MAX_BYTES`: a window longer than that much media keeps the most recent whole GOPs
//! that fit.

use std::collections::VecDeque;

/// Most bytes of encoded media the ring holds, whatever the window: 64 MiB is about
/// 100 s of 1080p30 at 5 Mbit/s. A window at `pre-record`'s maximum while armed for
/// hours must not take the machine's memory.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug)]
pub struct Entry<T> {
    pub rt: u64,
    /// A video frame (as opposed to audio).
    pub video: bool,
    pub keyframe: bool,
    pub size: usize,
    pub data: T,
}

#[derive(Debug)]
pub struct Ring<T> {
    entries: VecDeque<Entry<T>>,
    bytes: usize,
    newest: u64,
    has_video: bool,
    max_bytes: usize,
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring::with_max_bytes(MAX_BYTES)
    }
}

impl<T> Ring<T> {
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        Ring {
            entries: VecDeque::new(),
            bytes: 0,
            newest: 0,
            has_video: false,
            max_bytes,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Running time of the first frame kept.
    #[cfg(test)]
    pub fn oldest(&self) -> Option<u64> {
        self.entries.front().map(|e| e.rt)
    }

    /// Adds a frame and forgets what lies more than `window` before the newest frame,
    /// keeping whole GOPs: the ring starts at the last keyframe at or before
    /// `newest - window`, so at least `window` is kept unless that would hold more
    /// than the byte bound. Returns true when the bound, not the window, made the ring
    /// forget media.
    pub fn push(&mut self, entry: Entry<T>, window: u64) -> bool {
        self.newest = self.newest.max(entry.rt);
        self.bytes += entry.size;
        self.has_video |= entry.video;
        self.entries.push_back(entry);
        let target = self.newest.saturating_sub(window);
        self.forget_before(target);
        let mut bounded = false;
        while self.bytes > self.max_bytes {
            bounded = true;
            self.forget_first_gop();
        }
        bounded
    }

    /// Forgets the oldest GOP (audio: the oldest frame), keeping audio captured after
    /// the next GOP begins; with one GOP or none left, everything.
    fn forget_first_gop(&mut self) {
        if !self.has_video {
            self.forget_oldest();
            return;
        }
        let second_key = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.video && e.keyframe)
            .nth(1);
        let Some((index, key)) = second_key else {
            self.entries.clear();
            self.bytes = 0;
            return;
        };
        let key_rt = key.rt;
        let mut kept = 0;
        for _ in 0..index {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            if !e.video && e.rt >= key_rt {
                self.entries.insert(kept, e);
                kept += 1;
            } else {
                self.bytes -= e.size;
            }
        }
    }

    /// Forgets what lies before running time `target`, keeping whole GOPs (and audio
    /// captured after the GOP kept begins).
    fn forget_before(&mut self, target: u64) {
        if !self.has_video {
            while self.entries.front().is_some_and(|e| e.rt < target) {
                self.forget_oldest();
            }
            return;
        }
        // The last keyframe at or before the target; else the first keyframe. The scan
        // ends at the first keyframe past the target, within a GOP of the front.
        let mut start = None;
        for (i, e) in self.entries.iter().enumerate().filter(|(_, e)| e.keyframe) {
            if e.rt <= target || start.is_none() {
                start = Some(i);
            }
            if e.rt > target {
                break;
            }
        }
        let start = start.unwrap_or(self.entries.len());
        if start == 0 {
            return;
        }
        // Once a GOP: what lies before the kept keyframe goes, except audio captured
        // after it (audio runs ahead of video).
        let start_rt = self.entries.get(start).map_or(u64::MAX, |e| e.rt);
        let mut late_audio = Vec::new();
        for _ in 0..start {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            if !e.video && e.rt >= start_rt {
                late_audio.push(e);
            } else {
                self.bytes -= e.size;
            }
        }
        for e in late_audio.into_iter().rev() {
            self.entries.push_front(e);
        }
    }

    fn forget_oldest(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.size;
        }
    }

    pub fn drain(&mut self) -> Vec<Entry<T>> {
        self.bytes = 0;
        self.has_video = false;
        self.entries.drain(..).collect()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
        self.has_video = false;
    }
}

/// Synthetic frames for the tests of the ring and of the stage.
#[cfg(test)]
pub(super) mod test_frames {
    use super::Entry;

    pub const MS: u64 = 1_000_000;

    /// A video frame of 100 bytes at `rt_ms`; its payload is its time in ms.
    pub fn video(rt_ms: u64, keyframe: bool) -> Entry<u64> {
        Entry {
            rt: rt_ms * MS,
            video: true,
            keyframe,
            size: 100,
            data: rt_ms,
        }
    }

    /// An audio frame of 10 bytes at `rt_ms`; its payload is its time in ms.
    pub fn audio(rt_ms: u64) -> Entry<u64> {
        Entry {
            rt: rt_ms * MS,
            video: false,
            keyframe: false,
            size: 10,
            data: rt_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_frames::{audio, video, MS};
    use super::*;

    #[test]
    fn keeps_whole_gops_covering_the_window() {
        let mut ring = Ring::default();
        // Keyframes every 1000 ms, frames every 100 ms, 10 s long, 2 s window.
        for t in (0..10_000).step_by(100) {
            ring.push(video(t, t % 1000 == 0), 2000 * MS);
            ring.push(audio(t + 50), 2000 * MS);
        }
        // Newest 9950 ms: target 7950 ms, last keyframe before it at 7000 ms.
        assert_eq!(ring.oldest(), Some(7000 * MS));
        let kept: Vec<u64> = ring.drain().iter().map(|e| e.data).collect();
        assert_eq!(kept.first(), Some(&7000));
        assert_eq!(kept.len(), 60);
        assert_eq!(ring.bytes(), 0);
    }

    #[test]
    fn memory_is_bounded_by_the_window() {
        let mut ring = Ring::default();
        let mut most = 0;
        for t in (0..600_000).step_by(100) {
            ring.push(video(t, t % 2000 == 0), 2000 * MS);
            most = most.max(ring.bytes());
        }
        // At most the window plus one GOP: 40 frames of 100 bytes.
        assert!(most <= 4100, "{most}");
    }

    #[test]
    fn a_window_longer_than_the_byte_bound_keeps_the_newest_gops() {
        // A window of a day, frames of 100 bytes, a keyframe a second: the bound of
        // 2,500 bytes holds 2 GOPs of 10 frames, never 3.
        let mut ring = Ring::with_max_bytes(2_500);
        let mut bounded = 0;
        for t in (0..60_000).step_by(100) {
            if ring.push(video(t, t % 1000 == 0), 86_400_000 * MS) {
                bounded += 1;
            }
            assert!(ring.bytes() <= 2_500, "{} bytes at {t} ms", ring.bytes());
        }
        assert!(bounded > 0);
        let kept: Vec<u64> = ring.drain().iter().map(|e| e.data).collect();
        assert_eq!(kept.first(), Some(&58_000), "starts at a keyframe");
        assert_eq!(kept.len(), 20);
    }

    #[test]
    fn the_byte_bound_keeps_late_audio_and_drops_a_gop_too_big_alone() {
        let mut ring = Ring::with_max_bytes(250);
        ring.push(video(0, true), u64::MAX);
        ring.push(video(100, true), u64::MAX);
        ring.push(audio(150), u64::MAX);
        ring.push(video(200, false), u64::MAX);
        // 310 bytes: the first GOP goes, the audio captured after the second stays.
        let kept: Vec<u64> = ring.drain().iter().map(|e| e.data).collect();
        assert_eq!(kept, [100, 150, 200]);
        let mut ring = Ring::with_max_bytes(250);
        for t in 0..3 {
            ring.push(video(t, t == 0), u64::MAX);
        }
        assert_eq!(
            ring.bytes(),
            0,
            "one GOP over the bound cannot start a file"
        );
        ring.push(video(10, false), u64::MAX);
        assert!(ring.drain().is_empty(), "nothing before the next keyframe");
    }

    #[test]
    fn frames_before_the_first_keyframe_are_dropped() {
        let mut ring = Ring::default();
        ring.push(video(0, false), 5000 * MS);
        ring.push(audio(10), 5000 * MS);
        ring.push(video(100, true), 5000 * MS);
        ring.push(audio(110), 5000 * MS);
        let kept: Vec<u64> = ring.drain().iter().map(|e| e.data).collect();
        assert_eq!(kept, [100, 110]);
    }

    #[test]
    fn audio_only_keeps_the_window() {
        let mut ring = Ring::default();
        for t in (0..5000).step_by(20) {
            ring.push(audio(t), 1000 * MS);
        }
        assert_eq!(ring.oldest(), Some(3980 * MS));
    }
}
