//! MIME types as the web's MediaRecorder takes them, and the codec choice they imply.
//!
//! Parsing follows RFC 9110 (`type/subtype *( OWS ";" OWS name=value )`, values as
//! tokens or quoted strings, case-insensitive names) and the MediaRecorder rules for
//! the `codecs` parameter: a comma-separated list whose ids compare up to the first
//! `.` (`vp09.00.10.08` is VP9), with at most one video and one audio codec.

use std::fmt;

pub use super::codecs::{AudioCodec, Codec, Requirement, VideoCodec};
pub use super::containers::Container;

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
            MimeError::UnsupportedContainer(t) => {
                let supported: Vec<&str> = Container::ALL
                    .into_iter()
                    .rev()
                    .flat_map(|c| [c.mime_type(true), c.mime_type(false)])
                    .collect();
                write!(
                    f,
                    "unsupported container type '{t}' (supported: {})",
                    supported.join(", ")
                )
            }
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
        let Some(container) = Container::from_subtype(subtype) else {
            return Err(MimeError::UnsupportedContainer(essence));
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
        let codecs: Vec<&str> = video
            .map(Codec::Video)
            .into_iter()
            .chain(audio.map(Codec::Audio))
            .map(|c| self.container.codec_name(c))
            .collect();
        let mut s = self.container.mime_type(video.is_some()).to_string();
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
        assert_eq!(
            err("video/ogg").to_string(),
            "unsupported container type 'video/ogg' (supported: video/webm, audio/webm, \
             video/x-matroska, audio/x-matroska, video/mp4, audio/mp4)"
        );
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
