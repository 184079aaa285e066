//! The pre-record ring: the most recent whole GOPs of encoded frames, kept while no
//! recording runs, so a recording can begin before its trigger.

use std::collections::VecDeque;

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
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring {
            entries: VecDeque::new(),
            bytes: 0,
            newest: 0,
            has_video: false,
        }
    }
}

impl<T> Ring<T> {
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
    /// `newest - window`, so at least `window` is always kept.
    pub fn push(&mut self, entry: Entry<T>, window: u64) {
        self.newest = self.newest.max(entry.rt);
        self.bytes += entry.size;
        self.has_video |= entry.video;
        self.entries.push_back(entry);
        let target = self.newest.saturating_sub(window);
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn video(rt_ms: u64, keyframe: bool) -> Entry<u64> {
        Entry {
            rt: rt_ms * MS,
            video: true,
            keyframe,
            size: 100,
            data: rt_ms,
        }
    }

    fn audio(rt_ms: u64) -> Entry<u64> {
        Entry {
            rt: rt_ms * MS,
            video: false,
            keyframe: false,
            size: 10,
            data: rt_ms,
        }
    }

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
