//! The codecs a recording can hold: their names, the GStreamer elements that encode and
//! parse them (with the Debian package shipping each), their media types, and what an
//! Opus packet's own bytes say about its length.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    Vp9,
    Av1,
    H264,
    H265,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Opus,
    Vorbis,
    Aac,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Video(VideoCodec),
    Audio(AudioCodec),
}

impl Codec {
    pub fn display_name(self) -> &'static str {
        match self {
            Codec::Video(v) => v.display_name(),
            Codec::Audio(a) => a.display_name(),
        }
    }
}

/// A GStreamer element a recording needs, with the Debian package that ships it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub factory: &'static str,
    pub package: &'static str,
}

pub(super) const fn req(factory: &'static str, package: &'static str) -> Requirement {
    Requirement { factory, package }
}

pub(super) const GOOD: &str = "gstreamer1.0-plugins-good";
const BAD: &str = "gstreamer1.0-plugins-bad";
const BASE: &str = "gstreamer1.0-plugins-base";
const UGLY: &str = "gstreamer1.0-plugins-ugly";
const LIBAV: &str = "gstreamer1.0-libav";

impl VideoCodec {
    pub const ALL: [VideoCodec; 5] = [Self::Vp8, Self::Vp9, Self::Av1, Self::H264, Self::H265];

    /// The codec's name for people.
    pub fn display_name(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "VP8",
            VideoCodec::Vp9 => "VP9",
            VideoCodec::Av1 => "AV1",
            VideoCodec::H264 => "H.264",
            VideoCodec::H265 => "H.265",
        }
    }

    /// Encoder and, where the muxer needs one, the parser after it.
    pub fn encoder(self) -> Requirement {
        match self {
            VideoCodec::Vp8 => req("vp8enc", GOOD),
            VideoCodec::Vp9 => req("vp9enc", GOOD),
            VideoCodec::Av1 => req("av1enc", BAD),
            VideoCodec::H264 => req("x264enc", UGLY),
            VideoCodec::H265 => req("x265enc", BAD),
        }
    }

    pub fn parser(self) -> Option<Requirement> {
        match self {
            VideoCodec::Vp8 => None,
            VideoCodec::Vp9 => None,
            VideoCodec::Av1 => Some(req("av1parse", BAD)),
            VideoCodec::H264 => Some(req("h264parse", BAD)),
            VideoCodec::H265 => Some(req("h265parse", BAD)),
        }
    }

    /// The GStreamer media type of the encoded stream.
    pub fn media_type(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "video/x-vp8",
            VideoCodec::Vp9 => "video/x-vp9",
            VideoCodec::Av1 => "video/x-av1",
            VideoCodec::H264 => "video/x-h264",
            VideoCodec::H265 => "video/x-h265",
        }
    }

    pub fn from_media_type(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.media_type() == name)
    }
}

impl AudioCodec {
    pub const ALL: [AudioCodec; 3] = [Self::Opus, Self::Vorbis, Self::Aac];

    pub fn display_name(self) -> &'static str {
        match self {
            AudioCodec::Opus => "Opus",
            AudioCodec::Vorbis => "Vorbis",
            AudioCodec::Aac => "AAC",
        }
    }

    pub fn encoder(self) -> Requirement {
        match self {
            AudioCodec::Opus => req("opusenc", BASE),
            AudioCodec::Vorbis => req("vorbisenc", BASE),
            AudioCodec::Aac => req("avenc_aac", LIBAV),
        }
    }

    pub fn parser(self) -> Option<Requirement> {
        match self {
            AudioCodec::Aac => Some(req("aacparse", GOOD)),
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            AudioCodec::Opus => "audio/x-opus",
            AudioCodec::Vorbis => "audio/x-vorbis",
            AudioCodec::Aac => "audio/mpeg",
        }
    }

    pub fn from_media_type(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.media_type() == name)
    }
}

/// The samples (at 48 kHz) an Opus packet decodes to, from its table of contents
/// (RFC 6716, section 3.1).
pub fn opus_packet_samples(packet: &[u8]) -> Option<u64> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // One frame, in samples at 48 kHz: SILK 10/20/40/60 ms, hybrid 10/20 ms, CELT
    // 2.5/5/10/20 ms.
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u64::from(*packet.get(1)? & 0x3f),
    };
    Some(frame * frames)
}

/// Samples an AAC-LC frame decodes to.
pub const AAC_FRAME_SAMPLES: u64 = 1024;

/// One raw AAC-LC frame (ISO 14496-3 raw_data_block) of silence for `channels`
/// channels: a single (mono) or channel-pair (stereo, one common window) element
/// with no scale factor bands, so every coefficient is zero, then the END element.
/// Checked with ffmpeg and avdec_aac: they decode it to digital silence.
pub fn aac_silence(channels: u32) -> Option<&'static [u8]> {
    match channels {
        // SCE: id 0, tag 0, global gain 100, ics_info all 0 (max_sfb 0), no pulse,
        // TNS or gain control data; END (7).
        1 => Some(&[0x00, 0xc8, 0x00, 0x07]),
        // CPE: id 1, tag 0, common window, ics_info all 0, no M/S; per channel
        // global gain 100 and no pulse, TNS or gain control data; END.
        2 => Some(&[0x21, 0x00, 0x03, 0x20, 0x64, 0x1c]),
        _ => None,
    }
}

/// How long an `opus_silence` packet lasts: one 20 ms frame.
pub const OPUS_SILENCE_NS: u64 = 20_000_000;

/// An Opus packet of 20 ms of silence for `channels` channels (RFC 6716): a
/// table of contents (CELT fullband 20 ms, one frame; stereo bit as the stream's)
/// and a frame of no bytes, which a decoder conceals as silence (section 3.2.1:
/// a frame of length 0 is one not transmitted).
pub fn opus_silence(channels: u32) -> Option<&'static [u8]> {
    match channels {
        1 => Some(&[0xf8]),
        2 => Some(&[0xfc]),
        _ => None,
    }
}

/// Whether AAC's `codec_data` (AudioSpecificConfig) says Low Complexity, the
/// profile `aac_silence` frames are in.
pub fn aac_is_low_complexity(codec_data: &[u8]) -> bool {
    codec_data.first().is_some_and(|b| b >> 3 == 2)
}

/// Makes a GStreamer element the recorder or `repair` needs, or an error naming the
/// Debian package that has it.
pub(crate) fn make(factory: &str) -> Result<gst::Element, gst::glib::Error> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        let package = match factory {
            "filesrc" | "filesink" | "queue" | "fakesink" => "libgstreamer1.0-0",
            "h264parse" | "h265parse" | "av1parse" | "vp9parse" | "opusparse" => {
                "gstreamer1.0-plugins-bad"
            }
            _ => "gstreamer1.0-plugins-good",
        };
        gst::glib::Error::new(
            gst::CoreError::MissingPlugin,
            &format!("GStreamer element '{factory}' is missing: install {package}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_one_element_per_layout_and_lc_is_object_type_2() {
        assert_eq!(aac_silence(1).map(<[u8]>::len), Some(4));
        assert_eq!(aac_silence(2).map(<[u8]>::len), Some(6));
        assert_eq!(aac_silence(6), None);
        // 44.1 kHz mono LC (voaacenc), 48 kHz stereo HE (object type 5).
        assert!(aac_is_low_complexity(&[0x12, 0x08]));
        assert!(!aac_is_low_complexity(&[0x2b, 0x10]));
        assert!(!aac_is_low_complexity(&[]));
        // Opus: a TOC alone, 20 ms, as long as the packet says.
        assert_eq!(opus_silence(1), Some(&[0xf8][..]));
        assert_eq!(opus_silence(2), Some(&[0xfc][..]));
        assert_eq!(opus_silence(3), None);
        assert_eq!(
            opus_packet_samples(opus_silence(2).unwrap()).map(|n| n * 1_000_000_000 / 48_000),
            Some(OPUS_SILENCE_NS)
        );
    }

    #[test]
    fn opus_packets_decode_to_what_their_table_of_contents_says() {
        // CELT 20 ms, one frame (what opusenc makes by default).
        assert_eq!(opus_packet_samples(&[0xf8, 0]), Some(960));
        // SILK 60 ms; hybrid 10 ms; CELT 2.5 ms.
        assert_eq!(opus_packet_samples(&[3 << 3]), Some(2880));
        assert_eq!(opus_packet_samples(&[12 << 3]), Some(480));
        assert_eq!(opus_packet_samples(&[16 << 3]), Some(120));
        // Two frames of 20 ms; code 3 with 3 frames of 10 ms.
        assert_eq!(opus_packet_samples(&[0xf8 | 1]), Some(1920));
        assert_eq!(opus_packet_samples(&[(30 << 3) | 3, 3]), Some(1440));
        assert_eq!(opus_packet_samples(&[(30 << 3) | 3]), None);
        assert_eq!(opus_packet_samples(&[]), None);
    }
}
