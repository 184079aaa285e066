//! Encoder settings chosen from the stream: bitrates, thread counts, keyframe spacing.

use super::mimetype::{AudioCodec, VideoCodec};

/// Default spacing of video keyframes, so the file seeks to within 2 s.
pub const DEFAULT_KEYFRAME_INTERVAL_MS: u64 = 2000;

/// Audio share of `bits-per-second` when both kinds are recorded (as browsers do:
/// audio gets a fixed, speech-and-music-safe rate, video the rest).
const AUDIO_SHARE_BPS: u32 = 128_000;
/// Below this total, audio gets a tenth instead of the fixed share.
const SMALL_TOTAL_BPS: u32 = 1_280_000;

/// How `bits-per-second` is split between video and audio.
pub fn split_total_bitrate(total: u32, has_video: bool, has_audio: bool) -> (u32, u32) {
    match (has_video, has_audio) {
        (true, true) => {
            let audio = if total >= SMALL_TOTAL_BPS {
                AUDIO_SHARE_BPS
            } else {
                total / 10
            };
            // Neither share may read as 0 ("automatic"): a tiny total stays tiny, and
            // the encoders' least rates then apply (see `fit_bitrate`).
            ((total - audio).max(1), audio.max(1))
        }
        (true, false) => (total, 0),
        (false, true) => (0, total),
        (false, false) => (0, 0),
    }
}

/// A sensible video rate when none is set: bits per pixel scaled to the picture rate,
/// less for the newer codecs that compress better.
pub fn auto_video_bitrate(width: u32, height: u32, fps: f64, codec: VideoCodec) -> u32 {
    let fps = if fps.is_finite() && fps > 0.0 {
        fps
    } else {
        30.0
    };
    let bits_per_pixel = match codec {
        VideoCodec::Vp8 | VideoCodec::H264 => 0.08,
        VideoCodec::Vp9 | VideoCodec::Av1 | VideoCodec::H265 => 0.05,
    };
    let bps = f64::from(width) * f64::from(height) * fps * bits_per_pixel;
    bps.clamp(150_000.0, 20_000_000.0) as u32
}

pub fn auto_audio_bitrate(channels: u32, codec: AudioCodec) -> u32 {
    let per_channel = match codec {
        AudioCodec::Opus => 64_000,
        AudioCodec::Vorbis | AudioCodec::Aac => 80_000,
    };
    (per_channel * channels.clamp(1, 8)).min(510_000)
}

/// The bitrates (bit/s) each audio encoder takes, so a user's number never fails a
/// property set.
pub fn audio_bitrate_range(codec: AudioCodec) -> (u32, u32) {
    match codec {
        AudioCodec::Opus => (4_000, 650_000),
        AudioCodec::Vorbis => (16_000, 250_000),
        AudioCodec::Aac => (16_000, 512_000),
    }
}

/// The bitrates (bit/s) each video encoder takes. libvpx, libaom and x264 count in
/// kbit/s: below 1 kbit/s vp8enc and vp9enc are configured with 0 and encode no frame
/// at all (a recording that never starts), so 1 kbit/s is the least.
pub fn video_bitrate_range(codec: VideoCodec) -> (u32, u32) {
    match codec {
        VideoCodec::Vp8 | VideoCodec::Vp9 => (1_000, i32::MAX as u32),
        VideoCodec::Av1 => (1_000, u32::MAX),
        VideoCodec::H264 => (1_000, 2_048_000_000),
        // x265enc: 1 to 102,400 kbit/s.
        VideoCodec::H265 => (1_000, 102_400_000),
    }
}

/// A bitrate asked for that the encoder cannot take, and the one it is given instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refit {
    pub asked: u32,
    pub used: u32,
}

/// The rate an encoder taking `range` is given for `asked` bit/s: the same, or the
/// nearest it takes (then a `Refit` to warn about).
pub fn fit_bitrate(asked: u32, range: (u32, u32)) -> (u32, Option<Refit>) {
    let used = asked.clamp(range.0, range.1);
    (used, (used != asked).then_some(Refit { asked, used }))
}

/// The warning for a refitted rate: names the property that was set, what it was set
/// to, and the rate used. `total` is `bits-per-second` when that was the property.
pub fn refit_warning(kind: &str, property: &str, total: Option<u32>, refit: Refit) -> String {
    let set = match total {
        Some(total) => format!("{property}={total} gives the {kind} {} bit/s", refit.asked),
        None => format!("{property}={}", refit.asked),
    };
    let side = if refit.used > refit.asked {
        "below the least"
    } else {
        "above the most"
    };
    format!(
        "{set}, {side} the {kind} encoder takes: recording {kind} at {} bit/s",
        refit.used
    )
}

/// Encoder threads. A live source needs only as many as keep up with its picture rate
/// (libvpx threads cost more CPU than they save, see FACTS: one thread encodes live
/// 1080p30 VP8 in real time with room to spare); a file is encoded as fast as the
/// machine allows.
pub fn video_threads(width: u32, height: u32, fps: f64, live: bool, cores: u32) -> u32 {
    let cores = cores.max(1);
    if !live {
        return cores.min(8);
    }
    let fps = if fps.is_finite() && fps > 0.0 {
        fps
    } else {
        30.0
    };
    let pixel_rate = f64::from(width) * f64::from(height) * fps;
    // One thread measured at about 1.8x the 1080p30 pixel rate; keep a margin.
    let per_thread = 1920.0 * 1080.0 * 30.0 * 1.2;
    ((pixel_rate / per_thread).ceil() as u32).clamp(1, cores.min(8))
}

/// Smallest picture side an encoder is given: libvpx takes 1x1 but what it makes of
/// 8x8 no player reads.
pub const MIN_SIDE: u32 = 16;

/// Largest picture side each encoder takes.
pub fn max_side(codec: VideoCodec) -> u32 {
    match codec {
        VideoCodec::Vp8 => 16_383,
        VideoCodec::Vp9 | VideoCodec::Av1 => 16_384,
        VideoCodec::H264 | VideoCodec::H265 => 8_192,
    }
}

/// The size `codec`'s encoder is given for pictures of `width` x `height`: the same,
/// or scaled with its aspect kept until both sides are within the encoder's range.
/// `None` for a picture with no area.
pub fn encodable_size(width: u32, height: u32, codec: VideoCodec) -> Option<(u32, u32)> {
    if width == 0 || height == 0 {
        return None;
    }
    let max = f64::from(max_side(codec));
    let min = f64::from(MIN_SIDE);
    let (w, h) = (f64::from(width), f64::from(height));
    let down = (max / w).min(max / h).min(1.0);
    let up = (min / w).max(min / h).max(1.0);
    let scale = if down < 1.0 { down } else { up };
    let side = |v: f64| (v * scale).round().clamp(min, max) as u32;
    Some((side(w), side(h)))
}

/// The channel count and rate a track of `codec` keeps for the whole recording, from
/// the first input's: what the encoder takes (Opus: 1-8 channels at 48 kHz; AAC: up to
/// 6 channels at its listed rates). Later input is converted to it, so a source that
/// changes its channel count mid-recording does not outgrow the track's header.
pub fn encodable_audio(channels: u32, rate: u32, codec: AudioCodec) -> (u32, u32) {
    const AAC_RATES: [u32; 13] = [
        96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
        8_000, 7_350,
    ];
    match codec {
        AudioCodec::Opus => (channels.clamp(1, 8), 48_000),
        AudioCodec::Vorbis => (channels.clamp(1, 255), rate.clamp(8_000, 192_000)),
        AudioCodec::Aac => {
            let rate = if AAC_RATES.contains(&rate) {
                rate
            } else {
                48_000
            };
            (channels.clamp(1, 6), rate)
        }
    }
}

/// Keyframe distance in frames for an interval in milliseconds.
pub fn keyframe_distance(interval_ms: u64, fps: f64) -> u32 {
    let fps = if fps.is_finite() && fps > 0.0 {
        fps
    } else {
        30.0
    };
    ((interval_ms as f64 * fps / 1000.0).round() as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_goes_to_the_only_kind() {
        assert_eq!(split_total_bitrate(1_000_000, true, false), (1_000_000, 0));
        assert_eq!(split_total_bitrate(96_000, false, true), (0, 96_000));
    }

    #[test]
    fn a_tiny_total_leaves_neither_kind_automatic() {
        assert_eq!(split_total_bitrate(1, true, true), (1, 1));
        assert_eq!(split_total_bitrate(5, true, true), (5, 1));
        assert_eq!(split_total_bitrate(100, true, true), (90, 10));
    }

    #[test]
    fn rates_outside_the_encoder_range_are_refitted() {
        let vp8 = video_bitrate_range(VideoCodec::Vp8);
        assert_eq!(
            fit_bitrate(999, vp8),
            (
                1_000,
                Some(Refit {
                    asked: 999,
                    used: 1_000
                })
            )
        );
        assert_eq!(fit_bitrate(1, vp8).0, 1_000);
        assert_eq!(fit_bitrate(1_000, vp8), (1_000, None));
        assert_eq!(fit_bitrate(2_500_000, vp8), (2_500_000, None));
        assert_eq!(fit_bitrate(u32::MAX, vp8).0, i32::MAX as u32);
        for codec in [VideoCodec::Vp9, VideoCodec::Av1, VideoCodec::H264] {
            assert_eq!(fit_bitrate(500, video_bitrate_range(codec)).0, 1_000);
        }
        let opus = audio_bitrate_range(AudioCodec::Opus);
        assert_eq!(fit_bitrate(1, opus).0, 4_000);
        assert_eq!(fit_bitrate(700_000, opus).0, 650_000);
    }

    #[test]
    fn the_warning_names_the_property_and_the_rate_used() {
        let refit = Refit {
            asked: 500,
            used: 1_000,
        };
        assert_eq!(
            refit_warning("video", "video-bits-per-second", None, refit),
            "video-bits-per-second=500, below the least the video encoder takes: \
             recording video at 1000 bit/s"
        );
        let refit = Refit {
            asked: 1,
            used: 1_000,
        };
        assert_eq!(
            refit_warning("video", "bits-per-second", Some(1), refit),
            "bits-per-second=1 gives the video 1 bit/s, below the least the video \
             encoder takes: recording video at 1000 bit/s"
        );
        let refit = Refit {
            asked: 900_000,
            used: 650_000,
        };
        assert!(refit_warning("audio", "audio-bits-per-second", None, refit)
            .contains("above the most the audio encoder takes: recording audio at 650000"));
    }

    #[test]
    fn total_split_keeps_audio_share() {
        assert_eq!(
            split_total_bitrate(2_500_000, true, true),
            (2_372_000, 128_000)
        );
        assert_eq!(split_total_bitrate(500_000, true, true), (450_000, 50_000));
    }

    #[test]
    fn auto_bitrates_scale() {
        let b480 = auto_video_bitrate(640, 480, 30.0, VideoCodec::Vp8);
        let b1080 = auto_video_bitrate(1920, 1080, 30.0, VideoCodec::Vp8);
        assert!(b480 > 500_000 && b480 < 1_000_000, "{b480}");
        assert!(b1080 > 4_000_000 && b1080 < 6_000_000, "{b1080}");
        assert!(auto_video_bitrate(1920, 1080, 30.0, VideoCodec::Vp9) < b1080);
        assert_eq!(auto_audio_bitrate(2, AudioCodec::Opus), 128_000);
        assert_eq!(auto_audio_bitrate(1, AudioCodec::Opus), 64_000);
    }

    #[test]
    fn live_threads_follow_the_picture_rate() {
        assert_eq!(video_threads(1280, 720, 30.0, true, 2), 1);
        assert_eq!(video_threads(1920, 1080, 30.0, true, 2), 1);
        assert_eq!(video_threads(3840, 2160, 30.0, true, 2), 2);
        assert_eq!(video_threads(1280, 720, 30.0, false, 2), 2);
    }

    #[test]
    fn keyframe_distance_in_frames() {
        assert_eq!(keyframe_distance(2000, 30.0), 60);
        assert_eq!(keyframe_distance(2000, 0.0), 60);
        assert_eq!(keyframe_distance(10, 30.0), 1);
    }

    #[test]
    fn sizes_are_scaled_into_the_encoder_range() {
        assert_eq!(encodable_size(854, 480, VideoCodec::Vp8), Some((854, 480)));
        assert_eq!(encodable_size(8, 8, VideoCodec::Vp8), Some((16, 16)));
        assert_eq!(encodable_size(8, 4, VideoCodec::Vp8), Some((32, 16)));
        assert_eq!(
            encodable_size(16_385, 16_385, VideoCodec::Vp8),
            Some((16_383, 16_383))
        );
        assert_eq!(
            encodable_size(32_000, 1_000, VideoCodec::Vp8),
            Some((16_383, 512))
        );
        assert_eq!(encodable_size(0, 0, VideoCodec::Vp8), None);
    }

    #[test]
    fn audio_keeps_what_the_encoder_takes() {
        assert_eq!(encodable_audio(2, 44_100, AudioCodec::Opus), (2, 48_000));
        assert_eq!(encodable_audio(12, 48_000, AudioCodec::Opus), (8, 48_000));
        assert_eq!(encodable_audio(2, 44_100, AudioCodec::Aac), (2, 44_100));
        assert_eq!(encodable_audio(8, 37_000, AudioCodec::Aac), (6, 48_000));
    }
}
