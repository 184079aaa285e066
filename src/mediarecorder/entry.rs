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

use super::codecs::opus_packet_samples;

/// How long an encoded audio packet lasts, for packets that come without a duration
/// (depayloaders leave it out: `rtpmp4gdepay`, `rtpopusdepay`). Without it, packets
/// kept as they are could not be laid end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketLength {
    /// Every packet holds `samples` at `rate` (AAC: 1024 samples, or 960, 512, 480).
    Fixed { samples: u64, rate: u64 },
    /// Each packet says it in its first byte (Opus's table of contents, RFC 6716 3.1).
    OpusToc,
}

impl PacketLength {
    /// AAC's packet length from its AudioSpecificConfig (`codec_data`), else 1024
    /// samples at the rate the caps give.
    pub fn aac(codec_data: Option<&[u8]>, caps_rate: Option<u64>) -> Option<Self> {
        codec_data
            .and_then(aac_frame_from_config)
            .or_else(|| caps_rate.filter(|r| *r > 0).map(|rate| (1024, rate)))
            .map(|(samples, rate)| PacketLength::Fixed { samples, rate })
    }

    /// The duration of `packet` in nanoseconds.
    pub fn duration(&self, packet: &[u8]) -> Option<u64> {
        match *self {
            PacketLength::Fixed { samples, rate } => {
                (rate > 0).then(|| samples * 1_000_000_000 / rate)
            }
            PacketLength::OpusToc => {
                opus_packet_samples(packet).map(|samples| samples * 1_000_000_000 / 48_000)
            }
        }
    }
}

/// Samples per frame and the rate they are at, from an MPEG-4 AudioSpecificConfig
/// (ISO 14496-3 1.6.2.1). With SBR (HE-AAC), the core's: 1024 samples at half the
/// output rate last as long as the 2048 the decoder outputs.
fn aac_frame_from_config(config: &[u8]) -> Option<(u64, u64)> {
    const RATES: [u64; 13] = [
        96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
        8_000, 7_350,
    ];
    let mut bits = Bits {
        data: config,
        pos: 0,
    };
    let object_type = |bits: &mut Bits| -> Option<u64> {
        let t = bits.read(5)?;
        if t == 31 {
            Some(32 + bits.read(6)?)
        } else {
            Some(t)
        }
    };
    let rate = |bits: &mut Bits| -> Option<u64> {
        match bits.read(4)? {
            15 => bits.read(24),
            i => RATES.get(i as usize).copied(),
        }
    };
    let mut aot = object_type(&mut bits)?;
    let core_rate = rate(&mut bits)?;
    let _channels = bits.read(4)?;
    if aot == 5 || aot == 29 {
        let _extension_rate = rate(&mut bits)?;
        aot = object_type(&mut bits)?;
    }
    // GASpecificConfig's frameLengthFlag, for the types that have one.
    let short = match aot {
        1..=4 | 6 | 7 | 17 | 19..=23 => bits.read(1)? == 1,
        _ => false,
    };
    let samples = match (aot, short) {
        (23, true) => 480,
        (23, false) => 512,
        (_, true) => 960,
        (_, false) => 1024,
    };
    (core_rate > 0).then_some((samples, core_rate))
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Option<u64> {
        let mut v = 0;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | u64::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }
}

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
    /// Encoded audio: how long a packet without a duration lasts.
    packets: Option<PacketLength>,
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
            packets: self.packets,
            ..EntryTimes::default()
        };
    }

    /// The stream's format is known (or changed): how long its packets last.
    pub fn set_packet_length(&mut self, packets: Option<PacketLength>) {
        self.packets = packets;
    }

    /// Whether the format tells how long a packet lasts.
    pub fn knows_packet_length(&self) -> bool {
        self.packets.is_some()
    }

    /// The duration of a packet that came without one, where its format tells it.
    pub fn packet_duration(&self, packet: &[u8]) -> Option<u64> {
        self.packets?.duration(packet)
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
    fn aac_packets_last_their_frame_length() {
        // AAC-LC, 48 kHz, mono (what avenc_aac and cameras send): 1024 samples.
        let lc = PacketLength::aac(Some(&[0x11, 0x88]), Some(48_000)).unwrap();
        assert_eq!(
            lc,
            PacketLength::Fixed {
                samples: 1024,
                rate: 48_000
            }
        );
        assert_eq!(lc.duration(&[0; 4]), Some(21_333_333));
        // 960-sample frames (frameLengthFlag), 44.1 kHz stereo.
        assert_eq!(
            PacketLength::aac(Some(&[0x12, 0x14]), None),
            Some(PacketLength::Fixed {
                samples: 960,
                rate: 44_100
            })
        );
        // HE-AAC (SBR, type 5): the core's 1024 samples at 24 kHz, though it plays
        // at 48 kHz.
        assert_eq!(
            PacketLength::aac(Some(&[0x2B, 0x09, 0x88]), Some(48_000)),
            Some(PacketLength::Fixed {
                samples: 1024,
                rate: 24_000
            })
        );
        // AAC-LD (type 23): 512 samples.
        assert_eq!(
            PacketLength::aac(Some(&[0xB9, 0x88, 0x00]), None),
            Some(PacketLength::Fixed {
                samples: 512,
                rate: 48_000
            })
        );
        // No configuration: 1024 at the caps' rate; nothing at all: unknown.
        assert_eq!(
            PacketLength::aac(None, Some(16_000)),
            Some(PacketLength::Fixed {
                samples: 1024,
                rate: 16_000
            })
        );
        assert_eq!(PacketLength::aac(Some(&[0x11]), None), None);
    }

    #[test]
    fn opus_packets_say_their_length() {
        let opus = PacketLength::OpusToc;
        // CELT fullband 20 ms, one frame (opusenc's default).
        assert_eq!(opus.duration(&[0xFC, 0xFF]), Some(20 * MS));
        // SILK 60 ms; two 10 ms CELT frames; code 3 with 3 frames of 2.5 ms.
        assert_eq!(opus.duration(&[0x18]), Some(60 * MS));
        assert_eq!(opus.duration(&[0xF1]), Some(20 * MS));
        assert_eq!(opus.duration(&[0x83, 0x03]), Some(7_500_000));
        assert_eq!(opus.duration(&[]), None);
    }

    #[test]
    fn a_cameras_frames_are_never_closer_than_a_frame_and_keep_their_gaps() {
        let mut t = EntryTimes::default();
        // A camera's frames as rtspsrc stamps them: sliding 25.6 ms earlier over the
        // first 40 frames, then steady.
        let slide = |i: u64| (i.min(40) * 640_000) as i64;
        let own = |i: u64| (1_000 * MS + i * FRAME) as i64 - slide(i);
        let out: Vec<u64> = (0..60)
            .map(|i| t.place(own(i) as u64, Some(FRAME)))
            .collect();
        assert!(out.windows(2).all(|w| w[1] - w[0] == FRAME), "{out:?}");
        // A frame lost on the network: the gap stays.
        let after_gap = own(61) as u64 + FRAME;
        assert_eq!(t.place(after_gap, Some(FRAME)), after_gap);
        // Bunched up by 250 ms (a jitter buffer under load): still a frame apart.
        assert_eq!(
            t.place(after_gap - 250 * MS, Some(FRAME)),
            after_gap + FRAME
        );
    }

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
