//! Timestamps as they enter a branch, put in order for the encoder.
//!
//! Live timestamps jitter (a camera stamping +-20 ms), and libvpx drops every frame
//! whose time does not increase. So, per stream, before the encoder:
//! - a frame within 3/4 of its duration of where the previous one ends is put there:
//!   frames come out evenly spaced (players and ffmpeg take a jittered file as a
//!   broken constant rate), while a real gap or a drift beyond that keeps the frame's
//!   own time, so sync stays within a frame;
//! - a frame still not after the previous one follows it by a millisecond (distinct in
//!   a WebM's millisecond timecodes); audio that overlaps the previous packet follows
//!   its end instead (overlapping samples would be cut before the encoder, where gaps
//!   are filled with silence);
//! - video that steps back further than jitter (an RTP stream lined up with another,
//!   tens of milliseconds) and a step back of half a second or more without a flush
//!   (a camera whose clock jumped) are mapped forward: the stream goes on where it
//!   was, and every later time moves by the same amount, until a step forward takes
//!   the amount back (so sync returns). A flush or a new segment starts afresh
//!   (`reset`).
//!
//! Streams whose frames are reordered (B-frames: a DTS apart from the PTS) are left
//! alone by the caller.

/// A step back shorter than this is jitter; a longer one, a jump of the clock.
const JITTER_LIMIT: u64 = 500_000_000;
const MILLISECOND: u64 = 1_000_000;

#[derive(Debug, Default)]
pub struct EntryTimes {
    /// Time given to the last frame, and its duration.
    last: Option<(u64, Option<u64>)>,
    /// Added to every time since the clock last jumped back.
    offset: u64,
    /// Audio: a packet never starts before the previous one ends.
    end_to_end: bool,
    /// Video frames without a duration (RTP depayloaders set none): the usual step
    /// between them, which stands in for it.
    spacing: Option<u64>,
}

impl EntryTimes {
    /// Times for an audio stream.
    pub fn for_audio() -> Self {
        EntryTimes {
            end_to_end: true,
            ..EntryTimes::default()
        }
    }

    /// A flush or a new segment: times start afresh.
    pub fn reset(&mut self) {
        *self = EntryTimes {
            end_to_end: self.end_to_end,
            ..EntryTimes::default()
        };
    }

    /// The time a frame stamped `pts` is given.
    pub fn place(&mut self, pts: u64, duration: Option<u64>) -> u64 {
        let duration = match duration {
            None if !self.end_to_end => self.spacing,
            known => known,
        };
        let mut time = pts.saturating_add(self.offset);
        if let Some((last, last_duration)) = self.last {
            let next = last + last_duration.unwrap_or(MILLISECOND);
            let video_step = last_duration.filter(|_| !self.end_to_end);
            if time + JITTER_LIMIT <= last {
                self.offset += next - time;
                time = next;
            } else if let Some(d) = video_step.filter(|&d| time > next + d * 3 / 4) {
                // A step forward first gives back what earlier steps back added.
                let back = (time - next).min(self.offset);
                self.offset -= back;
                time -= back;
                if time - next < d * 3 / 4 {
                    time = next;
                }
            } else if last_duration.is_some_and(|d| {
                // Jitter; or, for audio, an overlap.
                next.abs_diff(time) < d * 3 / 4 || (self.end_to_end && time < next)
            }) {
                time = next;
            } else if video_step.is_some() && time < next {
                // A step back shorter than a clock jump (RTP streams lined up with
                // each other): the stream goes on where it was, and so do the frames
                // after it, rather than two frames sharing a frame's time.
                self.offset += next - time;
                time = next;
            } else if time < last + MILLISECOND {
                time = last + MILLISECOND;
            }
        }
        if let Some((last, _)) = self.last {
            self.learn_spacing(time.saturating_sub(last));
        }
        self.last = Some((time, duration));
        time
    }

    /// Takes `step` between two frames as the usual spacing, unless it is a gap (half
    /// as long again) or a frame squeezed a millisecond after the last.
    fn learn_spacing(&mut self, step: u64) {
        if step <= MILLISECOND {
            return;
        }
        self.spacing = match self.spacing {
            Some(usual) if step > usual * 3 / 2 => Some(usual),
            _ => Some(step),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = MILLISECOND;
    const FRAME: u64 = 33_333_333;

    #[test]
    fn jitter_is_evened_out() {
        let mut t = EntryTimes::default();
        let mut out = Vec::new();
        for (i, jitter) in [0i64, 20, -20, 15, -10, 5].into_iter().enumerate() {
            let pts = (1_000 * MS + i as u64 * FRAME) as i64 + jitter * MS as i64;
            out.push(t.place(pts as u64, Some(FRAME)));
        }
        let expected: Vec<u64> = (0..6).map(|i| 1_000 * MS + i * FRAME).collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn a_real_gap_stays_and_order_is_kept() {
        let mut t = EntryTimes::default();
        assert_eq!(t.place(0, Some(FRAME)), 0);
        // A second dropped by the camera: the gap stays.
        assert_eq!(t.place(1_000 * MS, Some(FRAME)), 1_000 * MS);
        // Without durations, a frame at or before the last follows it by 1 ms.
        let mut t = EntryTimes::default();
        assert_eq!(t.place(100 * MS, None), 100 * MS);
        assert_eq!(t.place(90 * MS, None), 101 * MS);
    }

    #[test]
    fn audio_that_overlaps_follows_the_end_of_the_last_packet() {
        let mut t = EntryTimes::for_audio();
        let packet = 20 * MS;
        assert_eq!(t.place(0, Some(packet)), 0);
        // Stuck timestamps (a source stamping every packet alike) are laid end to end.
        assert_eq!(t.place(0, Some(packet)), packet);
        assert_eq!(t.place(0, Some(packet)), 2 * packet);
        // A gap stays, for the silence that fills it.
        assert_eq!(t.place(200 * MS, Some(packet)), 200 * MS);
        t.reset();
        assert_eq!(t.place(0, Some(packet)), 0);
        assert_eq!(
            t.place(0, Some(packet)),
            packet,
            "still audio after a flush"
        );
    }

    #[test]
    fn video_lined_up_back_then_forward_keeps_every_frame_a_frame_apart() {
        // rtpbin lining audio and video up: back 42 ms at frame 100, then forward
        // 141 ms at frame 200.
        let mut t = EntryTimes::default();
        let shift = |i: u64| -> i64 {
            match i {
                0..100 => 0,
                100..200 => -42,
                _ => 99,
            }
        };
        let mut placed = Vec::new();
        for i in 0..300u64 {
            let pts = (1_000 * MS + i * FRAME) as i64 + shift(i) * MS as i64;
            placed.push(t.place(pts as u64, Some(FRAME)));
        }
        for (i, pair) in placed.windows(2).enumerate() {
            assert!(pair[1] - pair[0] >= FRAME, "frame {} at {pair:?}", i + 1);
        }
        // The step back moves the frames after it to follow on; the step forward
        // takes that back, so the last frames have their own times again.
        assert_eq!(placed[100], placed[99] + FRAME);
        assert_eq!(placed[299], 1_000 * MS + 299 * FRAME + 99 * MS);
    }

    #[test]
    fn video_without_durations_lined_up_back_then_forward_keeps_its_spacing() {
        // RTP depayloaders give frames no duration: the usual step stands in for it.
        let mut t = EntryTimes::default();
        let mut placed = Vec::new();
        for i in 0..300u64 {
            let shift: i64 = match i {
                0..100 => 0,
                100..200 => -42,
                _ => 99,
            };
            let pts = (1_000 * MS + i * FRAME) as i64 + shift * MS as i64;
            placed.push(t.place(pts as u64, None));
        }
        for (i, pair) in placed.windows(2).enumerate() {
            assert!(
                pair[1] - pair[0] >= FRAME - 1,
                "frame {} at {pair:?}",
                i + 1
            );
        }
    }

    #[test]
    fn a_clock_that_jumps_back_is_mapped_forward() {
        let mut t = EntryTimes::default();
        for i in 0..30 {
            t.place(5_000 * MS + i * FRAME, Some(FRAME));
        }
        let last = 5_000 * MS + 29 * FRAME;
        // The clock jumps back 2 s: the stream goes on, and so does what follows.
        assert_eq!(t.place(3_000 * MS + 30 * FRAME, Some(FRAME)), last + FRAME);
        assert_eq!(
            t.place(3_000 * MS + 31 * FRAME, Some(FRAME)),
            last + 2 * FRAME
        );
        // A flush starts afresh.
        t.reset();
        assert_eq!(t.place(0, Some(FRAME)), 0);
    }
}
