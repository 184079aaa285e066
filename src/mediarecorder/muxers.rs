//! What differs between GStreamer versions' Matroska muxer, decided from the version
//! number the glue reads once (`gst::version()`), so each rule is tested for every
//! version without the version installed.
//!
//! Measured with the same recordings on GStreamer 1.22.0 (Debian 12) and 1.26.2
//! (Debian 13):
//! - Both write an Opus block at its PTS plus the track's CodecDelay (the OpusHead
//!   pre-skip), and every block whose PTS lies within the CodecDelay at 0. So the
//!   rule that keeps a file's first cut short (`engine::HeadCut::UnderHalfPacket`)
//!   holds for both, and so does `matroska_opus_start` for a track's first frame.
//! - They interleave tracks differently. 1.22 (collectpads, as 1.24) takes the
//!   earliest DTS, or PTS where there is none; 1.26 (ported to GstAggregator in 1.25)
//!   takes the earliest PTS and ignores DTS. Neither adds the CodecDelay, so an Opus
//!   block can go before a video block of an earlier time, which Chromium's Media
//!   Source Extensions refuse ("Got a block with a timecode before the previous
//!   block"). See `OpusOrder` for how each version is kept in file order.
//! - mp4mux before 1.22.4 writes the Opus pre-skip in the wrong byte order (see
//!   `mp4_opus_pre_skip`); 1.22.4 and newer write it right.

use super::codecs::opus_packet_samples;

/// GStreamer's version as `gst::version()` gives it: major, minor, micro, nano.
pub type Version = (u32, u32, u32, u32);

/// How Opus blocks are kept in time order with the other tracks of a Matroska file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpusOrder {
    /// The muxer interleaves by DTS (GStreamer 1.24 and older): each Opus frame gets
    /// a DTS at the time the muxer writes it.
    WrittenTimeAsDts,
    /// The muxer interleaves by PTS (1.25 and newer), which cannot be moved without
    /// moving the sound: each Opus frame written later than its PTS is preceded by a
    /// gap event (flagged missing data, which the muxer skips) at its written time.
    /// The muxer waits for a buffer or gap on every track, so the gap holds the
    /// frame back until the blocks before its written time are out.
    GapAtWrittenTime,
}

impl OpusOrder {
    pub fn for_version((major, minor, _, _): Version) -> Self {
        if (major, minor) >= (1, 25) {
            OpusOrder::GapAtWrittenTime
        } else {
            OpusOrder::WrittenTimeAsDts
        }
    }

    /// What goes with an Opus frame of PTS `pts` (ns, the file's time) whose track
    /// has a pre-skip of `pre_skip` samples at 48 kHz.
    pub fn place(self, pts: u64, pre_skip: u16) -> OpusPlacement {
        let written = opus_written_time(pts, pre_skip);
        match self {
            OpusOrder::WrittenTimeAsDts => OpusPlacement {
                dts: Some(written),
                gap_at: None,
            },
            // A frame written at or before its PTS needs nothing: only a delay is
            // out of order (the frames after a file's first cut are past the
            // pre-skip, see `engine::HeadCut::UnderHalfPacket`).
            OpusOrder::GapAtWrittenTime => OpusPlacement {
                dts: None,
                gap_at: (written > pts).then_some(written),
            },
        }
    }
}

/// See `OpusOrder::place`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusPlacement {
    /// The DTS to give the frame (None: leave it as it is).
    pub dts: Option<u64>,
    /// Where to send a gap event just before the frame, on its track.
    pub gap_at: Option<u64>,
}

/// The time (ns) at which the Matroska muxer writes an Opus block of PTS `pts`: its
/// PTS plus the pre-skip, or 0 while the PTS is within the pre-skip.
pub fn opus_written_time(pts: u64, pre_skip: u16) -> u64 {
    let delay = samples_to_ns(u64::from(pre_skip));
    if pts > delay {
        pts + delay
    } else {
        0
    }
}

/// The pre-skip to give mp4mux for an Opus track whose decoder must skip `samples`.
/// Before GStreamer 1.22.4 ("qtmux: fix byte order for opus extension") mp4mux wrote
/// the Opus box's (dOps) fields little-endian where the format says big-endian: the
/// encoder's 312 samples were read as 14,337, and ffmpeg dropped the first 0.3 s of
/// the audio. Given with its bytes swapped, the pre-skip is written as it should be.
/// (The box's sample rate, which no decoder uses, stays wrong.)
pub fn mp4_opus_pre_skip(version: Version, samples: u16) -> u16 {
    if version < (1, 22, 4, 0) {
        samples.swap_bytes()
    } else {
        samples
    }
}

/// Where a file's first Opus frame goes in Matroska (its PTS, ns), for a frame at
/// `pts` whose first `trim` samples are skipped (the encoder's priming, or the head
/// cut off at the file's start); the track's pre-skip is `trim`.
///
/// GStreamer stamps such a frame with the time of its first sample kept: decoding
/// starts `trim` earlier. matroskamux writes every block at its PTS plus the
/// pre-skip (the decoding start plus the pre-skip for all later frames), and a block
/// within the pre-skip at 0, so it places a first frame right only at 0. One that
/// starts later (audio that begins after the video, Opus kept as it is from a file
/// whose audio starts late) was written `trim` late, overlapping the next packet by
/// as much (a 20 ms packet at 0.980 s, the next at 0.9935 s). So such a frame is
/// given its decoding start as PTS. Within `2 * trim` of the file's start that is
/// not possible (the muxer would write it at 0 with the pre-skip, or must skip less
/// and let the priming be heard): the frame begins the file at 0 instead, a few
/// milliseconds early, followed by a gap as long as its lateness (13 ms at most for
/// the encoder's priming) and no overlap.
pub fn matroska_opus_start(pts: u64, trim: u16) -> u64 {
    let trim_ns = samples_to_ns(u64::from(trim));
    if pts <= 2 * trim_ns {
        0
    } else {
        pts - trim_ns
    }
}

/// The trim (samples at 48 kHz) of a track's first Opus frame: its clipping meta's
/// `trim`, or more where the packet decodes to more than its duration and its `tail`
/// trim. A first packet stamped shorter than it decodes has its head skipped: the
/// next packet starts where its duration ends. GStreamer 1.22's own WebM files whose
/// audio starts late have such a packet (20 ms stamped 13 ms, decoding 7 ms into
/// the next), and Opus kept as it is from them would keep the overlap.
pub fn first_opus_trim(trim: u16, duration: Option<u64>, packet: &[u8], tail: u64) -> u16 {
    let (Some(duration), Some(samples)) = (duration, opus_packet_samples(packet)) else {
        return trim;
    };
    let excess = samples
        .saturating_sub(tail)
        .saturating_sub(ns_to_samples(duration));
    u16::try_from(excess).unwrap_or(u16::MAX).max(trim)
}

/// Silent packets that fill a late audio track's start in a file whose muxer starts
/// every track at the file's start (fragmented `mp4mux`, 1.22 as 1.26: a track's
/// first fragment is stamped from its own first packet, so audio starting `gap` ns
/// late would play at 0, out of sync). Their times and durations: the first at 0,
/// the last ending where the audio starts; the first takes what is not a whole
/// packet. A gap under half a `packet` is left as it is.
pub fn late_audio_lead_in(gap: u64, packet: u64) -> Vec<(u64, u64)> {
    if packet == 0 || gap < packet / 2 {
        return Vec::new();
    }
    let count = ((gap + packet / 2) / packet).max(1);
    let first = gap - (count - 1) * packet;
    std::iter::once((0, first))
        .chain((1..count).map(|i| (first + (i - 1) * packet, packet)))
        .collect()
}

/// Samples at 48 kHz in `ns`, rounded down.
fn ns_to_samples(ns: u64) -> u64 {
    ns * 48_000 / 1_000_000_000
}

/// `samples` at 48 kHz in ns, rounded as matroskamux rounds the CodecDelay.
fn samples_to_ns(samples: u64) -> u64 {
    (samples * 1_000_000_000 + 24_000) / 48_000
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn late_audio_is_led_in_by_silence_that_ends_where_it_starts() {
        let packet = 23_219_955; // 1024 samples at 44.1 kHz
        let lead = late_audio_lead_in(500 * MS, packet);
        assert_eq!(lead.len(), 22);
        assert_eq!(lead[0].0, 0);
        for pair in lead.windows(2) {
            assert_eq!(pair[0].0 + pair[0].1, pair[1].0);
        }
        let (last, duration) = *lead.last().unwrap();
        assert_eq!(last + duration, 500 * MS);
        // What is not a whole packet goes to the first, within half a packet.
        assert!(lead[0].1.abs_diff(packet) <= packet / 2);
        // Less than half a packet late: as it is; just over: one packet.
        assert!(late_audio_lead_in(packet / 2 - 1, packet).is_empty());
        assert_eq!(
            late_audio_lead_in(packet / 2, packet),
            vec![(0, packet / 2)]
        );
        assert!(late_audio_lead_in(5 * MS, 0).is_empty());
    }

    #[test]
    fn the_interleaving_rule_changed_in_1_25() {
        for old in [(1, 18, 0, 0), (1, 22, 0, 0), (1, 24, 12, 0), (1, 24, 99, 1)] {
            assert_eq!(OpusOrder::for_version(old), OpusOrder::WrittenTimeAsDts);
        }
        for new in [
            (1, 25, 1, 0),
            (1, 26, 0, 0),
            (1, 26, 2, 0),
            (1, 28, 0, 0),
            (2, 0, 0, 0),
        ] {
            assert_eq!(OpusOrder::for_version(new), OpusOrder::GapAtWrittenTime);
        }
    }

    #[test]
    fn the_muxer_writes_opus_after_its_pre_skip_and_within_it_at_zero() {
        // 312 samples: the encoder's own 6.5 ms of priming.
        assert_eq!(opus_written_time(0, 312), 0);
        assert_eq!(opus_written_time(13_500_000, 312), 20 * MS);
        assert_eq!(opus_written_time(6_500_000, 312), 0, "within the pre-skip");
        assert_eq!(opus_written_time(20 * MS, 0), 20 * MS);
    }

    #[test]
    fn old_muxers_order_by_a_dts_at_the_written_time() {
        let placed = OpusOrder::WrittenTimeAsDts.place(13_500_000, 312);
        assert_eq!(
            placed,
            OpusPlacement {
                dts: Some(20 * MS),
                gap_at: None
            }
        );
        assert_eq!(OpusOrder::WrittenTimeAsDts.place(0, 312).dts, Some(0));
    }

    #[test]
    fn new_muxers_hold_a_frame_back_with_a_gap_at_its_written_time() {
        let placed = OpusOrder::GapAtWrittenTime.place(13_500_000, 312);
        assert_eq!(
            placed,
            OpusPlacement {
                dts: None,
                gap_at: Some(20 * MS)
            }
        );
        // A file's first frame is written at its PTS: nothing to hold back (and no
        // event may precede a track's first buffer).
        assert_eq!(OpusOrder::GapAtWrittenTime.place(0, 312).gap_at, None);
        // Without a pre-skip the written time is the PTS.
        assert_eq!(OpusOrder::GapAtWrittenTime.place(40 * MS, 0).gap_at, None);
    }

    /// A first frame's decoding start and where its kept samples begin, in the file
    /// matroskamux writes: (block time - pre-skip, block time).
    fn decoded_and_kept(pts: u64, trim: u16) -> (i64, u64) {
        let written = opus_written_time(matroska_opus_start(pts, trim), trim);
        (
            written as i64 - samples_to_ns(u64::from(trim)) as i64,
            written,
        )
    }

    #[test]
    fn a_first_frame_at_the_file_start_keeps_its_place() {
        assert_eq!(matroska_opus_start(0, 312), 0);
        // A head cut at the file's start: the same.
        assert_eq!(matroska_opus_start(0, 500), 0);
        assert_eq!(matroska_opus_start(0, 0), 0);
        // No trim: nothing moves.
        assert_eq!(matroska_opus_start(980 * MS, 0), 980 * MS);
    }

    #[test]
    fn a_later_first_frame_decodes_from_where_it_starts() {
        // The encoder's first packet, 312 samples of priming, its first kept sample
        // at 0.980 s: it decodes from 0.9735 s and is heard from 0.980 s.
        let pts = 980 * MS;
        assert_eq!(matroska_opus_start(pts, 312), 973_500_000);
        assert_eq!(decoded_and_kept(pts, 312), (973_500_000, 980 * MS));
        // Before, it was written 6.5 ms late: decoded from 0.980 s, overlapping the
        // next packet (at 0.9935 s) by 6.5 ms.
        assert_eq!(opus_written_time(pts, 312), 986_500_000);
    }

    #[test]
    fn a_first_frame_starting_within_twice_its_trim_begins_the_file() {
        // Every start from 0 to 30 ms, in steps of 0.1 ms: the frame decodes from its
        // own start, or begins the file (decoding from -6.5 ms, heard from 0) where
        // it starts within 13 ms; never later than its start (no overlap with the
        // next packet, 13.5 ms after it).
        for tenth_ms in 0..=300u64 {
            let pts = tenth_ms * 100_000;
            let (decoded, kept) = decoded_and_kept(pts, 312);
            let start = pts as i64 - 6_500_000;
            if pts <= 13 * MS {
                assert_eq!((decoded, kept), (-6_500_000, 0), "at {pts} ns");
            } else {
                assert_eq!((decoded, kept), (start, pts), "at {pts} ns");
            }
        }
    }

    #[test]
    fn a_first_packet_stamped_short_has_its_head_skipped() {
        let celt20 = [0xf8, 0];
        // GStreamer 1.22's file: 20 ms stamped 13 ms, no clipping meta.
        assert_eq!(first_opus_trim(0, Some(13 * MS), &celt20, 0), 336);
        // The encoder's first packet: its meta and its duration agree.
        assert_eq!(first_opus_trim(312, Some(13_500_000), &celt20, 0), 312);
        // A whole packet, or one without a duration: the meta's trim.
        assert_eq!(first_opus_trim(0, Some(20 * MS), &celt20, 0), 0);
        assert_eq!(first_opus_trim(100, None, &celt20, 0), 100);
        // A packet cut at its end (the recording's last) is not cut at its head too.
        assert_eq!(first_opus_trim(0, Some(5 * MS), &celt20, 720), 0);
        // Not Opus at all: the meta's trim.
        assert_eq!(first_opus_trim(7, Some(MS), &[], 0), 7);
    }

    #[test]
    fn mp4_opus_pre_skip_is_swapped_where_mp4mux_writes_it_little_endian() {
        assert_eq!(mp4_opus_pre_skip((1, 22, 0, 0), 312), 0x3801);
        assert_eq!(mp4_opus_pre_skip((1, 22, 3, 0), 312), 0x3801);
        assert_eq!(mp4_opus_pre_skip((1, 22, 4, 0), 312), 312);
        assert_eq!(mp4_opus_pre_skip((1, 26, 2, 0), 312), 312);
        assert_eq!(mp4_opus_pre_skip((1, 22, 0, 0), 0), 0);
    }
}
