//! Every container the element writes, and all that differs between them: the muxer
//! and its settings, the codecs each stores as they are, the MIME type naming it, where
//! its clusters or fragments begin in the byte stream, how a file cut short is
//! recovered, and the rules its muxer needs for Opus and for audio cut at a file's
//! start. Adding a container is adding a variant here and following the compiler.

use gst::glib;
use gst::prelude::*;

use super::chunks::Mark;
use super::codecs::{req, AudioCodec, Codec, Requirement, VideoCodec, GOOD};
use super::engine::HeadCut;
use super::muxers::{mp4_opus_pre_skip, OpusOrder, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    WebM,
    Matroska,
    Mp4,
}

/// How a file of a container that a crash left unfinished is made whole: remuxed, as
/// it is, from `demuxer` into `muxer` (see `crate::repair`). Every container has one,
/// so every regular file a recording makes is journaled (the journal's marker is also
/// what claims the file's name, see `claim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    pub demuxer: &'static str,
    pub muxer: &'static str,
    /// Each track goes through its parser between the two (`qtdemux` gives Opus
    /// without its header, which `mp4mux` needs).
    pub parse: bool,
}

/// How a container's muxer writes the Opus pre-skip (the samples a decoder skips at a
/// track's start), and what that asks of the frames given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpusPreSkip {
    /// Matroska's CodecDelay: the muxer writes each block at its PTS plus the
    /// pre-skip. So a track's first frame is placed where its decoding starts
    /// (`muxers::matroska_opus_start`, the pre-skip settled with that frame), and the
    /// frames are kept in the order of their written time as this muxer version needs.
    CodecDelay(OpusOrder),
    /// MP4's Opus box: the pre-skip is given to the muxer in the caps, as this muxer
    /// version needs it (`mp4_opus_pre_skip`). mp4mux takes a track's caps once (it
    /// refuses a change, failing the stream), so they are set with the track's first
    /// frame, when its pre-skip is known.
    OpusBox(Version),
}

impl OpusPreSkip {
    /// Where blocks are written after the pre-skip (a CodecDelay): the order the
    /// frames are to be kept in.
    pub fn delayed_order(self) -> Option<OpusOrder> {
        match self {
            OpusPreSkip::CodecDelay(order) => Some(order),
            OpusPreSkip::OpusBox(_) => None,
        }
    }

    /// The pre-skip to put in the caps' OpusHead for a decoder that must skip `samples`.
    pub fn given(self, samples: u16) -> u16 {
        match self {
            OpusPreSkip::CodecDelay(_) => samples,
            OpusPreSkip::OpusBox(version) => mp4_opus_pre_skip(version, samples),
        }
    }
}

impl Container {
    /// Every container, in the order a message offers them.
    pub const ALL: [Container; 3] = [Container::Mp4, Container::Matroska, Container::WebM];

    pub fn muxer(self) -> Requirement {
        match self {
            Container::WebM => req("webmmux", GOOD),
            Container::Matroska => req("matroskamux", GOOD),
            Container::Mp4 => req("mp4mux", GOOD),
        }
    }

    /// The muxer's settings for clusters or fragments of about `cluster_duration`, and
    /// for a byte stream that cannot seek back (`streamable`: no file).
    pub fn muxer_settings(
        self,
        cluster_duration: gst::ClockTime,
        streamable: bool,
    ) -> Vec<(&'static str, glib::Value)> {
        let mut settings = match self {
            Container::WebM | Container::Matroska => {
                let cluster = i64::try_from(cluster_duration.nseconds()).unwrap_or(i64::MAX);
                vec![
                    ("min-cluster-duration", cluster.min(500_000_000).to_value()),
                    (
                        "max-cluster-duration",
                        cluster.max(1_000_000_000).to_value(),
                    ),
                ]
            }
            Container::Mp4 => {
                // Fragmented, as browsers write MP4: a crash loses at most a fragment.
                let fragment_ms = u32::try_from(cluster_duration.mseconds())
                    .unwrap_or(u32::MAX)
                    .max(100);
                vec![("fragment-duration", fragment_ms.to_value())]
            }
        };
        if streamable {
            settings.push(("streamable", true.to_value()));
        }
        settings
    }

    /// Where a buffer the muxer wrote stands in its stream (`pts` in ns, `key`: not a
    /// delta unit, `header`: flagged a header): WebM and Matroska clusters begin with a
    /// keyframe buffer that is not a header; an MP4 fragment begins with the buffer
    /// holding its `moof` box (mp4mux writes each box as a buffer).
    pub fn mark(self, pts: Option<u64>, key: bool, header: bool, data: &[u8]) -> Mark {
        match self {
            Container::WebM | Container::Matroska => match pts {
                Some(ts) if key && !header => Mark::Cluster(ts),
                _ => Mark::Within(pts),
            },
            Container::Mp4 if data.get(4..8) == Some(&b"moof"[..]) => Mark::Fragment,
            Container::Mp4 => Mark::Within(pts),
        }
    }

    /// Whether a track may start after the file does (a video track whose first
    /// frame comes seconds after the audio's): Matroska block times say it;
    /// fragmented MP4 as `mp4mux` writes it starts every track at the file's start.
    pub fn tracks_start_late(self) -> bool {
        match self {
            Container::WebM | Container::Matroska => true,
            Container::Mp4 => false,
        }
    }

    /// Whether the file can say which way up its video is shown, so video kept as it
    /// is need not be turned (MP4's display matrix, written by `displaymatrix`).
    pub fn says_orientation(self) -> bool {
        match self {
            Container::WebM | Container::Matroska => false,
            Container::Mp4 => true,
        }
    }

    /// How far into an audio packet a file's audio may begin. None of these muxers
    /// can drop the head of a track's first packet, so a cut must stay under half the
    /// packet, or the next packet would start within what the first one still plays:
    /// - WebM, Matroska: the cut, with the encoder's priming, becomes the Opus
    ///   CodecDelay, and matroskamux (1.22 as 1.26) writes every block that starts
    ///   within it at time 0, two blocks at 0, which ffmpeg rejects as non-monotonic.
    /// - MP4: mp4mux writes no edit list for it. Opus's cut becomes the pre-skip,
    ///   which ffmpeg counts from the packet's time, so the first samples kept come
    ///   after the next packet's ("non monotonically increasing dts ... 816 >= 144"
    ///   for a 17 ms cut); AAC's first packet plays whole, overlapping the next by
    ///   as much as the cut (measured with 1.22 on 2026-12-06: up to 20 ms cut
    ///   anywhere, under 10 ms cut under half).
    pub fn audio_head_cut(self) -> HeadCut {
        match self {
            Container::WebM | Container::Matroska => HeadCut::UnderHalfPacket,
            Container::Mp4 => HeadCut::UnderHalfPacket,
        }
    }

    /// How the muxer of GStreamer `version` writes the Opus pre-skip.
    pub fn opus_pre_skip(self, version: Version) -> OpusPreSkip {
        match self {
            Container::WebM | Container::Matroska => {
                OpusPreSkip::CodecDelay(OpusOrder::for_version(version))
            }
            Container::Mp4 => OpusPreSkip::OpusBox(version),
        }
    }

    /// How a file cut short is made whole (see `Recovery`).
    pub fn recovery(self) -> Recovery {
        match self {
            Container::WebM => Recovery {
                demuxer: "matroskademux",
                muxer: "webmmux",
                parse: false,
            },
            Container::Matroska => Recovery {
                demuxer: "matroskademux",
                muxer: "matroskamux",
                parse: false,
            },
            Container::Mp4 => Recovery {
                demuxer: "qtdemux",
                muxer: "mp4mux",
                parse: true,
            },
        }
    }

    /// The container of a file by what its first bytes say: an MP4's leading `ftyp`
    /// box, or the EBML DocType of a WebM ("webm") or Matroska file (any other).
    pub fn of_file(starts_with_ftyp: bool, doc_type: Option<&str>) -> Option<Self> {
        match (starts_with_ftyp, doc_type) {
            (true, _) => Some(Container::Mp4),
            (false, Some("webm")) => Some(Container::WebM),
            (false, Some(_)) => Some(Container::Matroska),
            (false, None) => None,
        }
    }

    /// Whether the container stores `codec` as it is.
    pub fn accepts(self, codec: Codec) -> bool {
        use AudioCodec::*;
        use VideoCodec::*;
        match (self, codec) {
            (Container::WebM, Codec::Video(v)) => matches!(v, Vp8 | Vp9 | Av1),
            (Container::WebM, Codec::Audio(a)) => matches!(a, Opus | Vorbis),
            (Container::Matroska, _) => true,
            (Container::Mp4, Codec::Video(v)) => matches!(v, H264 | H265 | Vp9 | Av1),
            (Container::Mp4, Codec::Audio(a)) => matches!(a, Aac | Opus),
        }
    }

    /// The container's name for people.
    pub fn display_name(self) -> &'static str {
        match self {
            Container::WebM => "WebM",
            Container::Matroska => "Matroska",
            Container::Mp4 => "MP4",
        }
    }

    /// The `mime-type` values whose container stores `codec` as it is.
    pub fn types_keeping(codec: Codec) -> Vec<&'static str> {
        Container::ALL
            .into_iter()
            .filter(|c| c.accepts(codec))
            .map(|c| c.mime_type(matches!(codec, Codec::Video(_))))
            .collect()
    }

    /// The container's MIME type, for a recording with video or for audio alone.
    pub fn mime_type(self, video: bool) -> &'static str {
        match (self, video) {
            (Container::WebM, true) => "video/webm",
            (Container::WebM, false) => "audio/webm",
            (Container::Matroska, true) => "video/x-matroska",
            (Container::Matroska, false) => "audio/x-matroska",
            (Container::Mp4, true) => "video/mp4",
            (Container::Mp4, false) => "audio/mp4",
        }
    }

    /// The container a MIME subtype names.
    pub fn from_subtype(subtype: &str) -> Option<Self> {
        match subtype {
            "webm" => Some(Container::WebM),
            "x-matroska" | "matroska" => Some(Container::Matroska),
            "mp4" => Some(Container::Mp4),
            _ => None,
        }
    }

    /// The video codec a type that names none records.
    pub fn default_video(self) -> VideoCodec {
        match self {
            Container::WebM => VideoCodec::Vp8,
            Container::Matroska | Container::Mp4 => VideoCodec::H264,
        }
    }

    /// The audio codec a type that names none records.
    pub fn default_audio(self) -> AudioCodec {
        match self {
            Container::WebM | Container::Matroska => AudioCodec::Opus,
            Container::Mp4 => AudioCodec::Aac,
        }
    }

    /// Codec names as the effective MIME type spells them for this container.
    pub fn codec_name(self, codec: Codec) -> &'static str {
        match (self, codec) {
            (Container::Mp4, Codec::Video(VideoCodec::H264)) => "avc1",
            (Container::Mp4, Codec::Video(VideoCodec::H265)) => "hvc1",
            (Container::Mp4, Codec::Video(VideoCodec::Av1)) => "av01",
            (Container::Mp4, Codec::Video(VideoCodec::Vp9)) => "vp09",
            (Container::Mp4, Codec::Audio(AudioCodec::Aac)) => "mp4a",
            (_, Codec::Video(VideoCodec::Vp8)) => "vp8",
            (_, Codec::Video(VideoCodec::Vp9)) => "vp9",
            (_, Codec::Video(VideoCodec::Av1)) => "av1",
            (_, Codec::Video(VideoCodec::H264)) => "avc1",
            (_, Codec::Video(VideoCodec::H265)) => "hevc",
            (_, Codec::Audio(AudioCodec::Opus)) => "opus",
            (_, Codec::Audio(AudioCodec::Vorbis)) => "vorbis",
            (_, Codec::Audio(AudioCodec::Aac)) => "mp4a",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mime_subtype_names_its_container_and_the_container_its_types() {
        for c in Container::ALL {
            let video = c.mime_type(true);
            let audio = c.mime_type(false);
            let subtype = video.strip_prefix("video/").unwrap();
            assert_eq!(audio.strip_prefix("audio/"), Some(subtype));
            assert_eq!(Container::from_subtype(subtype), Some(c));
        }
        assert_eq!(
            Container::from_subtype("matroska"),
            Some(Container::Matroska)
        );
        assert_eq!(Container::from_subtype("ogg"), None);
        assert_eq!(
            Container::types_keeping(Codec::Video(VideoCodec::H265)),
            ["video/mp4", "video/x-matroska"]
        );
        assert_eq!(
            Container::types_keeping(Codec::Audio(AudioCodec::Opus)),
            ["audio/mp4", "audio/x-matroska", "audio/webm"]
        );
    }

    #[test]
    fn clusters_stay_within_half_a_second_and_a_second_of_the_keyframe_interval() {
        gst::init().unwrap();
        let settings = |c: Container, ms, streamable| {
            c.muxer_settings(gst::ClockTime::from_mseconds(ms), streamable)
                .into_iter()
                .map(|(name, v)| {
                    let v = v
                        .get::<i64>()
                        .map(|v| v.to_string())
                        .or_else(|_| v.get::<u32>().map(|v| v.to_string()))
                        .or_else(|_| v.get::<bool>().map(|v| v.to_string()))
                        .unwrap();
                    format!("{name}={v}")
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            settings(Container::WebM, 2000, false),
            [
                "min-cluster-duration=500000000",
                "max-cluster-duration=2000000000"
            ]
        );
        assert_eq!(
            settings(Container::Matroska, 200, true),
            [
                "min-cluster-duration=200000000",
                "max-cluster-duration=1000000000",
                "streamable=true"
            ]
        );
        assert_eq!(
            settings(Container::Mp4, 2000, false),
            ["fragment-duration=2000"]
        );
        assert_eq!(
            settings(Container::Mp4, 10, true),
            ["fragment-duration=100", "streamable=true"]
        );
    }

    #[test]
    fn clusters_begin_at_a_keyframe_and_fragments_at_their_moof() {
        let webm = Container::WebM;
        assert_eq!(webm.mark(Some(5), true, false, b""), Mark::Cluster(5));
        assert_eq!(webm.mark(Some(5), false, false, b""), Mark::Within(Some(5)));
        assert_eq!(webm.mark(Some(5), true, true, b""), Mark::Within(Some(5)));
        assert_eq!(webm.mark(None, true, false, b""), Mark::Within(None));
        let moof = b"\0\0\0\x10moof";
        assert_eq!(Container::Mp4.mark(None, true, false, moof), Mark::Fragment);
        assert_eq!(
            Container::Mp4.mark(Some(5), true, false, b"\0\0\0\x10mdat"),
            Mark::Within(Some(5))
        );
    }

    #[test]
    fn only_matroska_muxers_delay_opus() {
        let old = (1, 22, 0, 0);
        assert_eq!(
            Container::WebM.opus_pre_skip(old),
            OpusPreSkip::CodecDelay(OpusOrder::WrittenTimeAsDts)
        );
        assert_eq!(
            Container::Matroska.opus_pre_skip((1, 26, 2, 0)),
            OpusPreSkip::CodecDelay(OpusOrder::GapAtWrittenTime)
        );
        assert_eq!(Container::WebM.opus_pre_skip(old).given(312), 312);
        // mp4mux before 1.22.4 writes it little-endian: given swapped.
        assert_eq!(Container::Mp4.opus_pre_skip(old).given(312), 0x3801);
        assert_eq!(Container::Mp4.opus_pre_skip((1, 22, 4, 0)).given(312), 312);
    }

    #[test]
    fn a_file_is_recovered_through_its_own_demuxer_and_muxer() {
        assert_eq!(Container::of_file(true, None), Some(Container::Mp4));
        assert_eq!(
            Container::of_file(false, Some("webm")),
            Some(Container::WebM)
        );
        assert_eq!(
            Container::of_file(false, Some("matroska")),
            Some(Container::Matroska)
        );
        assert_eq!(Container::of_file(false, None), None);
        assert_eq!(Container::WebM.recovery().muxer, "webmmux");
        assert_eq!(Container::Matroska.recovery().muxer, "matroskamux");
        let mp4 = Container::Mp4.recovery();
        assert_eq!(
            (mp4.demuxer, mp4.muxer, mp4.parse),
            ("qtdemux", "mp4mux", true)
        );
        for c in Container::ALL {
            assert_eq!(c.recovery().muxer, c.muxer().factory, "{c:?}");
        }
    }
}
