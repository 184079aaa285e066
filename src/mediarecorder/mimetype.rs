//! MIME types as the web's MediaRecorder takes them, and the codec choice they imply.
//!
//! Parsing follows RFC 9110 (`type/subtype *( OWS ";" OWS name=value )`, values as
//! tokens or quoted strings, case-insensitive names) and the MediaRecorder rules for
//! the `codecs` parameter: a comma-separated list whose ids compare up to the first
//! `.` (`vp09.00.10.08` is VP9), with at most one video and one audio codec.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    WebM,
    Matroska,
    Mp4,
}

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

const fn req(factory: &'static str, package: &'static str) -> Requirement {
    Requirement { factory, package }
}

const GOOD: &str = "gstreamer1.0-plugins-good";
const BAD: &str = "gstreamer1.0-plugins-bad";
const BASE: &str = "gstreamer1.0-plugins-base";
const UGLY: &str = "gstreamer1.0-plugins-ugly";
const LIBAV: &str = "gstreamer1.0-libav";

impl Container {
    pub fn muxer(self) -> Requirement {
        match self {
            Container::WebM => req("webmmux", GOOD),
            Container::Matroska => req("matroskamux", GOOD),
            Container::Mp4 => req("mp4mux", GOOD),
        }
    }

    /// Whether a track may start after the file does (a video track whose first
    /// frame comes seconds after the audio's): Matroska block times say it;
    /// fragmented MP4 as `mp4mux` writes it starts every track at the file's start.
    pub fn tracks_start_late(self) -> bool {
        self != Container::Mp4
    }

    /// Whether the file can say which way up its video is shown, so video kept as it
    /// is need not be turned (MP4's display matrix, written by `displaymatrix`).
    pub fn says_orientation(self) -> bool {
        self == Container::Mp4
    }

    fn accepts(self, codec: Codec) -> bool {
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
        let kind = match codec {
            Codec::Video(_) => "video",
            Codec::Audio(_) => "audio",
        };
        [Container::Mp4, Container::Matroska, Container::WebM]
            .into_iter()
            .filter(|c| c.accepts(codec))
            .map(|c| match (kind, c) {
                ("video", Container::Mp4) => "video/mp4",
                ("video", Container::Matroska) => "video/x-matroska",
                ("video", _) => "video/webm",
                (_, Container::Mp4) => "audio/mp4",
                (_, Container::Matroska) => "audio/x-matroska",
                (_, _) => "audio/webm",
            })
            .collect()
    }

    fn default_video(self) -> VideoCodec {
        match self {
            Container::WebM => VideoCodec::Vp8,
            Container::Matroska | Container::Mp4 => VideoCodec::H264,
        }
    }

    fn default_audio(self) -> AudioCodec {
        match self {
            Container::WebM | Container::Matroska => AudioCodec::Opus,
            Container::Mp4 => AudioCodec::Aac,
        }
    }

    fn subtype(self) -> &'static str {
        match self {
            Container::WebM => "webm",
            Container::Matroska => "x-matroska",
            Container::Mp4 => "mp4",
        }
    }

    /// Codec names as the effective MIME type spells them for this container.
    fn codec_name(self, codec: Codec) -> &'static str {
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

/// What a `mime-type` value asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingType {
    pub container: Container,
    /// `audio/...` types record no video.
    pub audio_only_type: bool,
    /// Codecs named in the `codecs` parameter; `None` where the parameter is absent.
    pub video: Option<VideoCodec>,
    pub audio: Option<AudioCodec>,
    pub codecs_given: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MimeError {
    Malformed(String),
    UnsupportedContainer(String),
    UnknownCodec(String),
    CodecNotInContainer { codec: String, container: String },
    TwoVideoCodecs,
    TwoAudioCodecs,
    VideoInAudioType(String),
}

impl fmt::Display for MimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MimeError::Malformed(why) => write!(f, "malformed MIME type: {why}"),
            MimeError::UnsupportedContainer(t) => write!(
                f,
                "unsupported container type '{t}' (supported: video/webm, audio/webm, video/x-matroska, audio/x-matroska, video/mp4, audio/mp4)"
            ),
            MimeError::UnknownCodec(c) => write!(f, "unknown codec '{c}'"),
            MimeError::CodecNotInContainer { codec, container } => {
                write!(f, "codec '{codec}' cannot be stored in {container}")
            }
            MimeError::TwoVideoCodecs => write!(f, "more than one video codec"),
            MimeError::TwoAudioCodecs => write!(f, "more than one audio codec"),
            MimeError::VideoInAudioType(c) => {
                write!(f, "video codec '{c}' in an audio/ type")
            }
        }
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn parse_token(s: &str) -> (&str, &str) {
    let end = s.find(|c| !is_token_char(c)).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

fn trim_ows(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// Splits `type/subtype; a=b; c="d"` into the lowercased essence and the parameters
/// (names lowercased, values unquoted).
pub fn parse_media_type(s: &str) -> Result<(String, Vec<(String, String)>), MimeError> {
    let s = s.trim_matches([' ', '\t']);
    let (ty, rest) = parse_token(s);
    let rest = rest
        .strip_prefix('/')
        .ok_or_else(|| MimeError::Malformed(format!("'{s}' has no '/'")))?;
    let (subtype, mut rest) = parse_token(rest);
    if ty.is_empty() || subtype.is_empty() {
        return Err(MimeError::Malformed(format!(
            "'{s}' lacks a type or subtype"
        )));
    }
    let essence = format!(
        "{}/{}",
        ty.to_ascii_lowercase(),
        subtype.to_ascii_lowercase()
    );
    let mut params = Vec::new();
    loop {
        rest = trim_ows(rest);
        if rest.is_empty() {
            break;
        }
        rest = rest
            .strip_prefix(';')
            .ok_or_else(|| MimeError::Malformed(format!("unexpected '{rest}'")))?;
        rest = trim_ows(rest);
        if rest.is_empty() {
            break;
        }
        let (name, after_name) = parse_token(rest);
        let after_eq = after_name
            .strip_prefix('=')
            .filter(|_| !name.is_empty())
            .ok_or_else(|| MimeError::Malformed(format!("bad parameter at '{rest}'")))?;
        let (value, after_value) = if let Some(quoted) = after_eq.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or_else(|| MimeError::Malformed("unterminated quote".into()))?;
            (value, &quoted[end..])
        } else {
            // Unquoted: up to the next ';', as browsers accept `codecs=vp8,opus`.
            let end = after_eq.find(';').unwrap_or(after_eq.len());
            let value = after_eq[..end].trim_matches([' ', '\t']);
            if value.is_empty() || value.contains(['"', '\\']) {
                return Err(MimeError::Malformed(format!(
                    "parameter '{name}' has no valid value"
                )));
            }
            (value.to_string(), &after_eq[end..])
        };
        params.push((name.to_ascii_lowercase(), value));
        rest = after_value;
    }
    Ok((essence, params))
}

fn codec_from_id(id: &str) -> Option<Codec> {
    let base = id.split('.').next().unwrap_or("").to_ascii_lowercase();
    Some(match base.as_str() {
        "vp8" | "vp08" => Codec::Video(VideoCodec::Vp8),
        "vp9" | "vp09" => Codec::Video(VideoCodec::Vp9),
        "av1" | "av01" => Codec::Video(VideoCodec::Av1),
        "h264" | "avc1" | "avc3" => Codec::Video(VideoCodec::H264),
        "h265" | "hevc" | "hvc1" | "hev1" => Codec::Video(VideoCodec::H265),
        "opus" => Codec::Audio(AudioCodec::Opus),
        "vorbis" => Codec::Audio(AudioCodec::Vorbis),
        "mp4a" | "aac" => Codec::Audio(AudioCodec::Aac),
        _ => return None,
    })
}

impl RecordingType {
    /// Parses a `mime-type` value; the empty string means "the default", video/webm.
    pub fn parse(s: &str) -> Result<Self, MimeError> {
        if s.trim().is_empty() {
            return Ok(RecordingType {
                container: Container::WebM,
                audio_only_type: false,
                video: None,
                audio: None,
                codecs_given: false,
            });
        }
        let (essence, params) = parse_media_type(s)?;
        let (kind, subtype) = essence.split_once('/').unwrap_or_default();
        let container = match subtype {
            "webm" => Container::WebM,
            "x-matroska" | "matroska" => Container::Matroska,
            "mp4" => Container::Mp4,
            _ => return Err(MimeError::UnsupportedContainer(essence)),
        };
        let audio_only_type = match kind {
            "video" => false,
            "audio" => true,
            _ => return Err(MimeError::UnsupportedContainer(essence)),
        };
        let mut ty = RecordingType {
            container,
            audio_only_type,
            video: None,
            audio: None,
            codecs_given: false,
        };
        for (_, value) in params.iter().filter(|(name, _)| name == "codecs") {
            ty.codecs_given = true;
            for id in value.split(',').map(str::trim).filter(|id| !id.is_empty()) {
                let codec = codec_from_id(id).ok_or_else(|| MimeError::UnknownCodec(id.into()))?;
                if !container.accepts(codec) {
                    return Err(MimeError::CodecNotInContainer {
                        codec: id.into(),
                        container: essence.clone(),
                    });
                }
                match codec {
                    Codec::Video(_) if audio_only_type => {
                        return Err(MimeError::VideoInAudioType(id.into()))
                    }
                    Codec::Video(_) if ty.video.is_some() => return Err(MimeError::TwoVideoCodecs),
                    Codec::Audio(_) if ty.audio.is_some() => return Err(MimeError::TwoAudioCodecs),
                    Codec::Video(v) => ty.video = Some(v),
                    Codec::Audio(a) => ty.audio = Some(a),
                }
            }
        }
        Ok(ty)
    }

    /// The video codec a recording uses, or why video cannot be recorded.
    pub fn video_codec(&self) -> Option<VideoCodec> {
        if self.audio_only_type {
            None
        } else if self.codecs_given {
            self.video
        } else {
            Some(self.container.default_video())
        }
    }

    pub fn audio_codec(&self) -> Option<AudioCodec> {
        if self.codecs_given {
            self.audio
        } else {
            Some(self.container.default_audio())
        }
    }

    pub fn accepts(&self, codec: Codec) -> bool {
        self.container.accepts(codec)
    }

    /// Whether input already in `codec` is stored as it is: the container takes it and
    /// the `codecs` parameter, where given, asks for it (else it is re-encoded to the
    /// codec asked for, so the file holds what the type says).
    pub fn passes_through(&self, codec: Codec) -> bool {
        if !self.accepts(codec) {
            return false;
        }
        match codec {
            Codec::Video(v) => !self.codecs_given || self.video == Some(v),
            Codec::Audio(a) => !self.codecs_given || self.audio == Some(a),
        }
    }

    /// Every element a recording of this type needs, for the kinds given.
    pub fn requirements(&self, video: bool, audio: bool) -> Vec<Requirement> {
        let mut reqs = vec![self.container.muxer()];
        if video {
            if let Some(v) = self.video_codec() {
                reqs.push(v.encoder());
                reqs.extend(v.parser());
            }
        }
        if audio {
            if let Some(a) = self.audio_codec() {
                reqs.push(a.encoder());
                reqs.extend(a.parser());
            }
        }
        reqs
    }

    /// The full type of a recording, as `video/webm;codecs=vp8,opus`.
    pub fn effective(&self, video: Option<VideoCodec>, audio: Option<AudioCodec>) -> String {
        let kind = if video.is_some() { "video" } else { "audio" };
        let codecs: Vec<&str> = video
            .map(Codec::Video)
            .into_iter()
            .chain(audio.map(Codec::Audio))
            .map(|c| self.container.codec_name(c))
            .collect();
        let mut s = format!("{kind}/{}", self.container.subtype());
        if !codecs.is_empty() {
            s.push_str(";codecs=");
            s.push_str(&codecs.join(","));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_default_webm() {
        let t = RecordingType::parse("").unwrap();
        assert_eq!(t.container, Container::WebM);
        assert_eq!(t.video_codec(), Some(VideoCodec::Vp8));
        assert_eq!(t.audio_codec(), Some(AudioCodec::Opus));
        assert_eq!(
            t.effective(Some(VideoCodec::Vp8), Some(AudioCodec::Opus)),
            "video/webm;codecs=vp8,opus"
        );
        assert_eq!(
            t.effective(None, Some(AudioCodec::Opus)),
            "audio/webm;codecs=opus"
        );
    }

    #[test]
    fn parses_quoted_spaced_and_cased_parameters() {
        let t = RecordingType::parse("Video/WebM ; Codecs=\"VP9, Opus\"").unwrap();
        assert_eq!(t.video_codec(), Some(VideoCodec::Vp9));
        assert_eq!(t.audio_codec(), Some(AudioCodec::Opus));
    }

    #[test]
    fn dotted_codec_ids_compare_up_to_the_dot() {
        let t = RecordingType::parse("video/webm;codecs=vp09.00.10.08").unwrap();
        assert_eq!(t.video_codec(), Some(VideoCodec::Vp9));
        assert_eq!(t.audio_codec(), None);
        let t = RecordingType::parse("video/mp4;codecs=\"av01.0.04M.08,mp4a.40.2\"").unwrap();
        assert_eq!(t.video_codec(), Some(VideoCodec::Av1));
        assert_eq!(t.audio_codec(), Some(AudioCodec::Aac));
        assert_eq!(
            t.effective(t.video_codec(), t.audio_codec()),
            "video/mp4;codecs=av01,mp4a"
        );
    }

    #[test]
    fn rejects_what_cannot_be_recorded() {
        use MimeError::*;
        let err = |s| RecordingType::parse(s).unwrap_err();
        assert_eq!(err("video/webm;codecs=vp8,vp9"), TwoVideoCodecs);
        assert_eq!(err("audio/webm;codecs=opus,vorbis"), TwoAudioCodecs);
        assert!(matches!(
            err("video/webm;codecs=avc1"),
            CodecNotInContainer { .. }
        ));
        assert!(matches!(
            err("video/mp4;codecs=vp8"),
            CodecNotInContainer { .. }
        ));
        assert!(matches!(err("video/ogg"), UnsupportedContainer(_)));
        assert!(matches!(err("text/webm"), UnsupportedContainer(_)));
        assert!(matches!(err("video/webm;codecs=foo"), UnknownCodec(_)));
        assert!(matches!(err("audio/webm;codecs=vp8"), VideoInAudioType(_)));
        assert!(matches!(err("webm"), Malformed(_)));
        assert!(matches!(err("video/webm;codecs=\"vp8"), Malformed(_)));
        assert!(matches!(err("video/webm;codecs"), Malformed(_)));
    }

    #[test]
    fn audio_type_records_no_video() {
        let t = RecordingType::parse("audio/webm").unwrap();
        assert_eq!(t.video_codec(), None);
        assert_eq!(t.audio_codec(), Some(AudioCodec::Opus));
        let t = RecordingType::parse("video/webm;codecs=opus").unwrap();
        assert_eq!(t.video_codec(), None);
    }

    #[test]
    fn requirements_name_packages() {
        let t = RecordingType::parse("video/webm;codecs=av1,opus").unwrap();
        let names: Vec<_> = t
            .requirements(true, true)
            .iter()
            .map(|r| r.factory)
            .collect();
        assert_eq!(names, ["webmmux", "av1enc", "av1parse", "opusenc"]);
        assert_eq!(
            VideoCodec::Av1.encoder().package,
            "gstreamer1.0-plugins-bad"
        );
    }

    #[test]
    fn input_passes_through_only_as_the_codec_asked_for() {
        let vp9 = RecordingType::parse("video/webm;codecs=vp9,vorbis").unwrap();
        assert!(!vp9.passes_through(Codec::Video(VideoCodec::Vp8)));
        assert!(vp9.passes_through(Codec::Video(VideoCodec::Vp9)));
        assert!(!vp9.passes_through(Codec::Audio(AudioCodec::Opus)));
        let any = RecordingType::parse("video/webm").unwrap();
        assert!(any.passes_through(Codec::Video(VideoCodec::Vp8)));
        assert!(any.passes_through(Codec::Audio(AudioCodec::Opus)));
        assert!(!any.passes_through(Codec::Video(VideoCodec::H264)));
    }

    #[test]
    fn h265_is_kept_in_mp4_and_matroska_not_in_webm() {
        let h265 = Codec::Video(VideoCodec::H265);
        assert!(RecordingType::parse("video/mp4")
            .unwrap()
            .passes_through(h265));
        assert!(RecordingType::parse("video/x-matroska")
            .unwrap()
            .passes_through(h265));
        assert!(!RecordingType::parse("video/webm")
            .unwrap()
            .passes_through(h265));
        let t = RecordingType::parse("video/mp4;codecs=hvc1.1.6.L93.B0,mp4a.40.2").unwrap();
        assert_eq!(t.video_codec(), Some(VideoCodec::H265));
        assert_eq!(
            t.effective(t.video_codec(), t.audio_codec()),
            "video/mp4;codecs=hvc1,mp4a"
        );
        assert!(matches!(
            RecordingType::parse("video/webm;codecs=hev1"),
            Err(MimeError::CodecNotInContainer { .. })
        ));
        assert_eq!(
            VideoCodec::from_media_type("video/x-h265"),
            Some(VideoCodec::H265)
        );
    }
}
