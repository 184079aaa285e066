//! Media-time accounting of one recording: where it starts, pause and resume without a
//! gap, and the exact end at `duration`.
//!
//! Times are nanoseconds. Input is the running time of each encoded frame; output is
//! the media time the file gets, so the file starts at 0 whatever the running time
//! when recording began, and paused time is left out.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Video,
    Audio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not part of the recording: before the start, while paused, or a video delta
    /// frame while waiting for a keyframe.
    Drop,
    /// Audio that arrived before the video keyframe that fixes the start (or the end of
    /// a pause): keep it and ask again once `is_waiting_for_video` is false.
    Hold,
    /// Record at media time `pts`; `clip_start` nanoseconds of the frame lie before the
    /// start and `clip_end` past the end of the recording, and must be cut off.
    Record {
        pts: u64,
        duration: Option<u64>,
        clip_start: u64,
        clip_end: u64,
    },
    /// This stream has reached `duration`.
    Finished,
}

/// How far an audio packet may start from where the previous one ended and still be
/// taken as following it: live timestamps jitter by tens of milliseconds.
const AUDIO_JITTER: u64 = 80_000_000;
/// The step a video frame that is not later than the previous one is moved to.
const MIN_FRAME_STEP: u64 = 1_000_000;

#[derive(Debug)]
pub struct Timeline {
    has_video: bool,
    limit: Option<u64>,
    /// Running time that maps to media time 0, plus all paused time; negative once
    /// the running time restarted (an upstream flushing seek).
    offset: Option<i64>,
    /// Running time of the frame the offset was last set from.
    anchor_rt: u64,
    /// Counts the times the mapping was set (start, resume, discontinuity).
    generation: u64,
    paused: bool,
    resuming: bool,
    /// Media time at which the last pause happened.
    pause_point: u64,
    /// End (pts + duration) of the last recorded frame of each stream.
    ends: HashMap<usize, u64>,
    /// Media time of the last recorded frame of each video stream.
    last_video: HashMap<usize, u64>,
    video_end: u64,
    audio_end: u64,
}

impl Timeline {
    /// `limit` is the recording's duration in ns (`None` = unlimited). With video, the
    /// first video keyframe sets the start; audio-only recordings start at their first
    /// frame.
    pub fn new(has_video: bool, limit: Option<u64>) -> Self {
        Timeline {
            has_video,
            limit,
            offset: None,
            anchor_rt: 0,
            generation: 0,
            paused: false,
            resuming: false,
            pause_point: 0,
            ends: HashMap::new(),
            last_video: HashMap::new(),
            video_end: 0,
            audio_end: 0,
        }
    }

    pub fn is_started(&self) -> bool {
        self.offset.is_some()
    }

    /// True while audio must be held for the video keyframe that starts or resumes.
    pub fn is_waiting_for_video(&self) -> bool {
        self.has_video && (self.offset.is_none() || self.resuming)
    }

    /// Running time of the frame that last fixed the mapping (start, resume, seek).
    pub fn anchor_rt(&self) -> Option<u64> {
        self.offset.map(|_| self.anchor_rt)
    }

    /// The running time at which media time `media` is (or will be) recorded.
    pub fn running_time_of(&self, media: u64) -> Option<u64> {
        let media = i64::try_from(media).ok()?;
        self.offset
            .and_then(|o| media.checked_add(o))
            .and_then(|t| u64::try_from(t).ok())
    }

    /// Whether a frame captured at running time `rt` and lasting `duration` lies
    /// within what this recording records: after its start, not while paused or
    /// waiting to resume, and before its end (a video frame by where most of it
    /// lies, as `place` decides).
    pub fn covers(&self, kind: Kind, rt: u64, duration: Option<u64>) -> bool {
        let Some(offset) = self.offset.filter(|_| !self.paused && !self.resuming) else {
            return false;
        };
        let Ok(media) = u64::try_from(rt as i64 - offset) else {
            return false;
        };
        if rt < self.anchor_rt {
            return false;
        }
        let slack = match kind {
            Kind::Video => duration.unwrap_or(0) / 2,
            Kind::Audio => 0,
        };
        self.limit
            .is_none_or(|limit| media < limit && media + slack <= limit)
    }

    /// The recording's end as media time, when it has one.
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Whether paused, or waiting for the keyframe that resumes.
    pub fn is_paused(&self) -> bool {
        self.paused || self.resuming
    }

    /// Changes each time the mapping from running time to media time is set.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The running time went back (an upstream flushing seek): the file goes on from
    /// where it is, at the next video keyframe.
    pub fn discontinuity(&mut self) {
        if self.offset.is_some() && !self.paused && !self.resuming {
            self.pause_point = self.recorded_kind_end();
            self.resuming = true;
        }
    }

    fn recorded_kind_end(&self) -> u64 {
        if self.has_video {
            self.video_end
        } else {
            self.audio_end
        }
    }

    /// Media time recorded so far: the end of the furthest frame.
    pub fn recorded(&self) -> u64 {
        self.video_end.max(self.audio_end)
    }

    /// The video stream never delivered: record the audio alone.
    pub fn forget_video(&mut self) {
        self.has_video = false;
    }

    pub fn pause(&mut self) {
        if !self.paused {
            self.paused = true;
            self.resuming = false;
            self.pause_point = self.recorded_kind_end();
        }
    }

    pub fn resume(&mut self) {
        if self.paused {
            self.paused = false;
            self.resuming = true;
        }
    }

    /// A video frame at running time `rt`. `reordered`: the stream's presentation
    /// order differs from its decoding order (B-frames), so its times are kept as
    /// they are.
    pub fn video(
        &mut self,
        stream: usize,
        rt: u64,
        duration: Option<u64>,
        keyframe: bool,
        reordered: bool,
    ) -> Verdict {
        if self.paused {
            return Verdict::Drop;
        }
        if self.offset.is_none() || self.resuming {
            if !keyframe {
                return Verdict::Drop;
            }
            self.anchor(rt);
        }
        self.place(stream, Kind::Video, rt, duration, reordered)
    }

    pub fn audio(&mut self, stream: usize, rt: u64, duration: Option<u64>) -> Verdict {
        if self.paused {
            return Verdict::Drop;
        }
        if self.offset.is_none() || self.resuming {
            if self.has_video {
                return Verdict::Hold;
            }
            self.anchor(rt);
        }
        self.place(stream, Kind::Audio, rt, duration, false)
    }

    /// Starts the recording at running time `rt`, before the first video keyframe
    /// (audio that came first): the video track starts later.
    pub fn start_at(&mut self, rt: u64) {
        if self.offset.is_none() {
            self.anchor(rt);
        }
    }

    /// Whether any audio has been placed.
    pub fn audio_started(&self) -> bool {
        self.audio_end > 0
    }

    /// Moves the start earlier, to running time `rt` (audio that came after the video
    /// keyframe that started the recording, though it was captured before it): what
    /// was placed moves later by the returned amount.
    pub fn move_start(&mut self, rt: u64) -> u64 {
        let Some(offset) = self.offset else {
            return 0;
        };
        let later = u64::try_from(offset - rt as i64).unwrap_or(0);
        if later == 0 {
            return 0;
        }
        self.offset = Some(offset - later as i64);
        self.anchor_rt = rt;
        for end in self.ends.values_mut() {
            *end += later;
        }
        for last in self.last_video.values_mut() {
            *last += later;
        }
        self.video_end += later;
        later
    }

    /// Maps `rt` to media time 0 (start) or to the pause point (resume).
    fn anchor(&mut self, rt: u64) {
        let media = if self.resuming { self.pause_point } else { 0 };
        self.offset = Some(rt as i64 - media as i64);
        self.anchor_rt = rt;
        self.generation += 1;
        self.resuming = false;
    }

    fn place(
        &mut self,
        stream: usize,
        kind: Kind,
        rt: u64,
        duration: Option<u64>,
        reordered: bool,
    ) -> Verdict {
        let media = rt as i64 - self.offset.unwrap_or(0);
        let mut duration = duration;
        let mut clip_start = 0;
        let started = self.ends.contains_key(&stream);
        let pts = match u64::try_from(media) {
            Ok(pts) => pts,
            // Jitter around the start of a stream that has begun: mapped forward below.
            Err(_) if started => 0,
            // Audio straddling the start is cut to the sample rather than dropped.
            Err(_) => match duration.map(|d| media + d as i64) {
                Some(end) if kind == Kind::Audio && end > 0 => {
                    clip_start = media.unsigned_abs();
                    duration = Some(end as u64);
                    0
                }
                _ => return Verdict::Drop,
            },
        };
        let pts = match (kind, self.ends.get(&stream).copied()) {
            // Audio is laid end to end: live timestamps jitter by tens of milliseconds
            // (USB cameras, capture cards), and a packet placed by its own timestamp
            // would overlap or leave a hole. Only a real gap (a microphone that
            // dropped buffers) stays a gap; a step back is mapped forward.
            (Kind::Audio, Some(end)) if pts < end + AUDIO_JITTER => end,
            // Video keeps its own times but never goes back: a frame jittered before
            // the previous one follows it by a millisecond instead of being dropped.
            (Kind::Video, _) if !reordered => match self.last_video.get(&stream) {
                Some(&last) if pts < last + MIN_FRAME_STEP => last + MIN_FRAME_STEP,
                _ => pts,
            },
            _ => pts,
        };
        let end = self.ends.get(&stream).copied().unwrap_or(0);
        let mut clip_end = 0;
        if kind == Kind::Video && self.last_video.is_empty() {
            // A timed recording holds at least the frame that starts it, however short
            // the duration asked for: it then lasts that frame, audio cut to match.
            if let (Some(limit), Some(d)) = (self.limit, duration) {
                self.limit = Some(limit.max(pts + d));
            }
        }
        if let Some(limit) = self.limit {
            // A video frame belongs to the side of the end where most of it lies, so
            // timestamp jitter cannot add or lose a frame.
            let slack = match kind {
                Kind::Video => duration.unwrap_or(0) / 2,
                Kind::Audio => 0,
            };
            if pts >= limit || pts + slack > limit {
                return Verdict::Finished;
            }
            if kind == Kind::Audio {
                if let Some(d) = duration.filter(|d| pts + d > limit) {
                    clip_end = pts + d - limit;
                    duration = Some(limit - pts);
                }
            }
        }
        let frame_end = pts + duration.unwrap_or(0);
        self.ends.insert(stream, frame_end.max(end));
        if kind == Kind::Video {
            self.last_video.insert(stream, pts);
        }
        match kind {
            Kind::Video => self.video_end = self.video_end.max(frame_end),
            Kind::Audio => self.audio_end = self.audio_end.max(frame_end),
        }
        Verdict::Record {
            pts,
            duration,
            clip_start,
            clip_end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const FRAME: u64 = 33_333_333;

    fn pts(v: Verdict) -> u64 {
        match v {
            Verdict::Record { pts, .. } => pts,
            other => panic!("expected Record, got {other:?}"),
        }
    }

    #[test]
    fn a_duration_shorter_than_a_frame_records_one_frame() {
        let mut t = Timeline::new(true, Some(MS));
        assert_eq!(
            t.audio(1, 4_990 * MS, Some(20 * MS)),
            Verdict::Hold,
            "audio waits for the video"
        );
        assert_eq!(pts(t.video(0, 5_000 * MS, Some(FRAME), true, false)), 0);
        assert_eq!(
            t.video(0, 5_000 * MS + FRAME, Some(FRAME), false, false),
            Verdict::Finished
        );
        // Audio is cut where the one frame ends.
        assert_eq!(
            t.audio(1, 5_020 * MS, Some(20 * MS)),
            Verdict::Record {
                pts: 20 * MS,
                duration: Some(FRAME - 20 * MS),
                clip_start: 0,
                clip_end: 40 * MS - FRAME,
            }
        );
        assert_eq!(t.recorded(), FRAME);
    }

    #[test]
    fn starts_at_first_video_keyframe() {
        let mut t = Timeline::new(true, None);
        assert_eq!(
            t.video(0, 5_000 * MS, Some(FRAME), false, false),
            Verdict::Drop
        );
        assert_eq!(t.audio(1, 5_010 * MS, Some(20 * MS)), Verdict::Hold);
        assert!(t.is_waiting_for_video());
        assert_eq!(pts(t.video(0, 5_033 * MS, Some(FRAME), true, false)), 0);
        assert!(!t.is_waiting_for_video());
        // Held audio from before the keyframe is dropped, audio across it is cut to
        // the sample, later audio is aligned.
        assert_eq!(t.audio(1, 5_010 * MS, Some(20 * MS)), Verdict::Drop);
        assert_eq!(
            t.audio(1, 5_023 * MS, Some(20 * MS)),
            Verdict::Record {
                pts: 0,
                duration: Some(10 * MS),
                clip_start: 10 * MS,
                clip_end: 0
            }
        );
        assert_eq!(pts(t.audio(1, 5_043 * MS, Some(20 * MS))), 10 * MS);
    }

    #[test]
    fn audio_only_starts_at_first_frame() {
        let mut t = Timeline::new(false, None);
        assert_eq!(pts(t.audio(0, 700 * MS, Some(20 * MS))), 0);
        assert_eq!(pts(t.audio(0, 720 * MS, Some(20 * MS))), 20 * MS);
    }

    #[test]
    fn duration_is_exact() {
        let mut t = Timeline::new(true, Some(3_000 * MS));
        let mut recorded = 0;
        for i in 0..100u64 {
            // Jitter of a few ms either way changes nothing.
            let jitter = [0, 3 * MS, 0, 0][i as usize % 4];
            let rt = (1_000 * MS + i * 1_000_000_000 / 30).saturating_sub(jitter);
            match t.video(0, rt, Some(FRAME), i % 60 == 0, false) {
                Verdict::Record { .. } => recorded += 1,
                Verdict::Finished => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(recorded, 90);
        // Audio straddling the end is cut to the sample.
        match t.audio(1, 1_000 * MS + 2_990 * MS, Some(20 * MS)) {
            Verdict::Record {
                pts,
                duration,
                clip_end,
                ..
            } => {
                assert_eq!(pts, 2_990 * MS);
                assert_eq!(duration, Some(10 * MS));
                assert_eq!(clip_end, 10 * MS);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.audio(1, 4_000 * MS, Some(20 * MS)), Verdict::Finished);
    }

    #[test]
    fn pause_leaves_no_gap() {
        let mut t = Timeline::new(true, Some(2_000 * MS));
        assert_eq!(pts(t.video(0, 0, Some(100 * MS), true, false)), 0);
        assert_eq!(
            pts(t.video(0, 100 * MS, Some(100 * MS), false, false)),
            100 * MS
        );
        t.pause();
        assert_eq!(
            t.video(0, 200 * MS, Some(100 * MS), false, false),
            Verdict::Drop
        );
        assert_eq!(t.audio(1, 210 * MS, Some(20 * MS)), Verdict::Drop);
        t.resume();
        assert_eq!(
            t.video(0, 5_000 * MS, Some(100 * MS), false, false),
            Verdict::Drop
        );
        assert_eq!(t.audio(1, 5_050 * MS, Some(20 * MS)), Verdict::Hold);
        assert_eq!(
            pts(t.video(0, 5_100 * MS, Some(100 * MS), true, false)),
            200 * MS
        );
        assert_eq!(pts(t.audio(1, 5_120 * MS, Some(20 * MS))), 220 * MS);
        // Paused time does not count towards the duration.
        assert_eq!(
            pts(t.video(0, 6_800 * MS, Some(100 * MS), false, false)),
            1_900 * MS
        );
        assert_eq!(
            t.video(0, 6_900 * MS, Some(100 * MS), false, false),
            Verdict::Finished
        );
    }

    #[test]
    fn running_time_restarting_continues_the_file() {
        let mut t = Timeline::new(true, None);
        assert_eq!(pts(t.video(0, 5_000 * MS, Some(100 * MS), true, false)), 0);
        assert_eq!(
            pts(t.video(0, 5_100 * MS, Some(100 * MS), false, false)),
            100 * MS
        );
        // A flushing seek upstream: running time starts again near 0.
        t.discontinuity();
        assert_eq!(t.video(0, 0, Some(100 * MS), false, false), Verdict::Drop);
        assert_eq!(
            pts(t.video(0, 100 * MS, Some(100 * MS), true, false)),
            200 * MS
        );
        assert_eq!(pts(t.audio(1, 120 * MS, Some(20 * MS))), 220 * MS);
        assert_eq!(t.anchor_rt(), Some(100 * MS));
    }

    #[test]
    fn jittered_audio_is_laid_end_to_end() {
        let mut t = Timeline::new(false, None);
        assert_eq!(pts(t.audio(0, 1_000 * MS, Some(20 * MS))), 0);
        // Early, late, even before the previous packet: each follows the last.
        assert_eq!(pts(t.audio(0, 1_005 * MS, Some(20 * MS))), 20 * MS);
        assert_eq!(pts(t.audio(0, 1_058 * MS, Some(20 * MS))), 40 * MS);
        assert_eq!(pts(t.audio(0, 990 * MS, Some(20 * MS))), 60 * MS);
        // A real gap (a microphone that dropped a second) stays a gap.
        assert_eq!(pts(t.audio(0, 2_100 * MS, Some(20 * MS))), 1_100 * MS);
    }

    #[test]
    fn jittered_video_is_never_dropped() {
        let mut t = Timeline::new(true, None);
        let mut last = None;
        for i in 0..300u64 {
            // +-20 ms, in an order that makes neighbours swap places.
            let jitter = [20, -20, 15, -5, 0, -20][i as usize % 6] * MS as i64;
            let rt = (10_000 * MS + i * FRAME) as i64 + jitter;
            let placed = pts(t.video(0, rt as u64, Some(FRAME), i == 0, false));
            assert!(last.is_none_or(|l| placed > l), "frame {i} at {placed}");
            last = Some(placed);
        }
    }

    #[test]
    fn reordered_video_keeps_its_times() {
        let mut t = Timeline::new(true, None);
        assert_eq!(pts(t.video(0, 1_000 * MS, Some(FRAME), true, true)), 0);
        assert_eq!(
            pts(t.video(0, 1_100 * MS, Some(FRAME), false, true)),
            100 * MS
        );
        // A B-frame shown before the frame decoded ahead of it.
        assert_eq!(
            pts(t.video(0, 1_050 * MS, Some(FRAME), false, true)),
            50 * MS
        );
    }
}
