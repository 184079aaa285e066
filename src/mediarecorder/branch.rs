//! The elements between a sink pad's queue and its encoded-frame stage, chosen from
//! the caps that arrive: raw media is converted and encoded for live recording,
//! MJPEG is decoded first, and compressed media the container takes goes through
//! as it is.

use gst::glib;
use gst::prelude::*;

use super::displaymatrix;
use super::encoding;
use super::mimetype::{AudioCodec, Codec, Container, RecordingType, Requirement, VideoCodec};
use super::orientation::Orientation;
use super::timeline::Kind;

/// Audio timestamps may be this far off (jitter, a dropped buffer) before the gap is
/// filled with silence or the overlap cut: the audio's sync error stays below it.
pub const AUDIO_GAP_TOLERANCE: u64 = 15_000_000;
/// What the encoders are asked for, from the settings of the element.
#[derive(Debug, Clone)]
pub struct EncoderParams {
    pub video_bps: u32,
    pub audio_bps: u32,
    /// `bits-per-second`, when the two rates above are its split.
    pub total_bps: Option<u32>,
    pub audio_constant: bool,
    pub keyframe_interval_ms: u64,
    /// `video-keyframe-interval-count`, when set, wins over the duration.
    pub keyframe_count: Option<u32>,
    pub live: bool,
    /// Encoders the user configured, used as given but for keyframe placement.
    pub video_encoder: Option<gst::Element>,
    pub audio_encoder: Option<gst::Element>,
}

/// The chain for one stream: elements to link in order, and what comes out.
pub struct Chain {
    pub kind: Kind,
    pub codec: Codec,
    pub elements: Vec<gst::Element>,
    /// Video kept as it is whose orientation the container is to say.
    pub orientation_in_container: Option<Orientation>,
    /// What the user asked for that the chain does differently, to warn about.
    pub warnings: Vec<String>,
    /// Whether the chain decodes or encodes. One that does not (compressed media kept as
    /// it is) does no work a frame's thread should be spared.
    pub encodes: bool,
}

#[derive(Debug)]
pub enum ChainError {
    Missing(Requirement),
    Unsupported(String),
}

impl ChainError {
    pub fn to_glib(&self) -> glib::Error {
        match self {
            ChainError::Missing(req) => glib::Error::new(
                gst::CoreError::MissingPlugin,
                &format!(
                    "GStreamer element '{}' is missing: install the Debian package {}",
                    req.factory, req.package
                ),
            ),
            ChainError::Unsupported(why) => glib::Error::new(gst::StreamError::Format, why),
        }
    }
}

pub fn make(req: Requirement) -> Result<gst::Element, ChainError> {
    gst::ElementFactory::make(req.factory)
        .build()
        .map_err(|_| ChainError::Missing(req))
}

fn base(factory: &'static str) -> Result<gst::Element, ChainError> {
    let package = match factory {
        "jpegdec" | "videoflip" => "gstreamer1.0-plugins-good",
        _ => "gstreamer1.0-plugins-base",
    };
    make(Requirement { factory, package })
}

/// A capsfilter holding a track to `caps` (none: anything).
fn filter(caps: Option<gst::Caps>) -> Result<gst::Element, ChainError> {
    let filter = base("capsfilter")?;
    if let Some(caps) = caps {
        filter.set_property("caps", caps);
    }
    Ok(filter)
}

/// Sets a property from its string form where the element has it (versions differ).
/// Numbers are clamped to the property's range, and a value the element cannot take
/// is left at its default: nothing a user sets may abort the process.
pub fn set_if_present(element: &gst::Element, name: &str, value: &str) {
    let Some(pspec) = element.find_property(name) else {
        return;
    };
    let parsed = match value.parse::<i128>() {
        Ok(number) => clamped_number(&pspec, number),
        Err(_) => None,
    };
    let parsed = parsed.or_else(|| glib::Value::deserialize_with_pspec(value, &pspec).ok());
    match parsed {
        Some(v) if v.type_().is_a(pspec.value_type()) => element.set_property_from_value(name, &v),
        _ => gst::warning!(
            gst::CAT_DEFAULT,
            "{}: cannot set {name} to {value}",
            element.name()
        ),
    }
}

/// `number` as a value of `pspec`'s numeric type, within its range.
fn clamped_number(pspec: &glib::ParamSpec, number: i128) -> Option<glib::Value> {
    macro_rules! clamp_to {
        ($spec:ty, $t:ty) => {
            if let Some(p) = pspec.downcast_ref::<$spec>() {
                let value = number.clamp(i128::from(p.minimum()), i128::from(p.maximum()));
                return <$t>::try_from(value).ok().map(|v| v.to_value());
            }
        };
    }
    clamp_to!(glib::ParamSpecInt, i32);
    clamp_to!(glib::ParamSpecUInt, u32);
    clamp_to!(glib::ParamSpecInt64, i64);
    clamp_to!(glib::ParamSpecUInt64, u64);
    clamp_to!(glib::ParamSpecLong, std::ffi::c_long);
    clamp_to!(glib::ParamSpecULong, std::ffi::c_ulong);
    None
}

pub fn kind_of(caps: &gst::CapsRef) -> Option<Kind> {
    let name = caps.structure(0)?.name();
    if name.starts_with("video/") || name == "image/jpeg" {
        Some(Kind::Video)
    } else if name.starts_with("audio/") {
        Some(Kind::Audio)
    } else {
        None
    }
}

/// Compressed formats a sink pad may take besides raw media and MJPEG, as structures:
/// every codec some container stores, and G.711 and MP3, which cameras and files send.
fn compressed_formats() -> Vec<(Option<Codec>, gst::Structure)> {
    let mut formats: Vec<(Option<Codec>, gst::Structure)> = VideoCodec::ALL
        .into_iter()
        .map(|v| {
            (
                Some(Codec::Video(v)),
                gst::Structure::new_empty(v.media_type()),
            )
        })
        .collect();
    for a in AudioCodec::ALL {
        let mut s = gst::Structure::new_empty(a.media_type());
        if a == AudioCodec::Aac {
            s.set("mpegversion", 4i32);
        }
        formats.push((Some(Codec::Audio(a)), s));
    }
    formats.push((None, gst::Structure::new_empty("audio/x-mulaw")));
    formats.push((None, gst::Structure::new_empty("audio/x-alaw")));
    formats.push((
        None,
        gst::Structure::builder("audio/mpeg")
            .field("mpegversion", 1i32)
            .build(),
    ));
    formats
}

/// Caps a sink pad takes: raw media, MJPEG, the compressed formats this recording type
/// stores without re-encoding, then those it decodes and encodes again (H.264 from a
/// camera into WebM). A format whose decoder is missing is taken too, so that the
/// recording fails with an error naming the codec and the package to install rather
/// than a link that fails without a word.
pub fn accepted_caps(rtype: &RecordingType) -> gst::Caps {
    let mut caps = gst::Caps::builder("video/x-raw").build();
    let caps_mut = caps.get_mut().unwrap();
    caps_mut.append(gst::Caps::builder("image/jpeg").build());
    caps_mut.append(gst::Caps::builder("audio/x-raw").build());
    let (kept, decoded): (Vec<_>, Vec<_>) = compressed_formats()
        .into_iter()
        .partition(|(codec, _)| codec.is_some_and(|c| rtype.accepts(c)));
    for (_, s) in kept.into_iter().chain(decoded) {
        caps_mut.append_structure(s);
    }
    caps
}

/// Why compressed input is decoded and encoded again rather than kept, for a message
/// (`None` where it is kept, or is raw or MJPEG, which are always encoded).
pub fn reencode_reason(input: &gst::CapsRef, rtype: &RecordingType, made: Codec) -> Option<String> {
    let name = input.structure(0)?.name().as_str();
    if name.ends_with("/x-raw") || name == "image/jpeg" {
        return None;
    }
    let container = rtype.container.display_name();
    let made_name = made.display_name();
    match compressed_codec(input) {
        Some(codec) if codec == made => None,
        Some(codec) if rtype.accepts(codec) => Some(format!(
            "the mime-type asks for {made_name}: {} input is decoded and encoded as {made_name}",
            codec.display_name()
        )),
        Some(codec) => Some(format!(
            "{} cannot be stored in {container}: it is decoded and encoded as {made_name}, \
             which costs CPU (mime-type {} keeps it as it is)",
            codec.display_name(),
            Container::types_keeping(codec).join(" or ")
        )),
        None => Some(format!(
            "{name} cannot be stored in {container}: it is decoded and encoded as {made_name}"
        )),
    }
}

/// The Debian package with a decoder for `media_type`.
fn decoder_package(media_type: &str) -> &'static str {
    match media_type {
        "video/x-vp8" | "video/x-vp9" | "image/jpeg" | "audio/x-mulaw" | "audio/x-alaw" => {
            "gstreamer1.0-plugins-good"
        }
        "video/x-av1" => "gstreamer1.0-plugins-bad",
        "audio/x-opus" | "audio/x-vorbis" => "gstreamer1.0-plugins-base",
        _ => "gstreamer1.0-libav",
    }
}

/// Raw formats the encoders take without conversion (planar 4:2:0), best first.
const DIRECT_VIDEO_FORMATS: [&str; 4] = ["I420", "YV12", "NV12", "NV21"];

/// The caps a sink pad offers before its chain exists, in the order a source left
/// free to choose should pick: for the pad's likely kind first, what passes straight
/// to the encoder (planar 4:2:0 video; S16 or F32 interleaved audio at 48 kHz), then
/// other raw formats, then compressed formats the container stores as they are, then
/// what is decoded first (MJPEG); then the other kind in the same order (a pad linked
/// without caps learns its kind from what arrives).
pub fn preferred_caps(rtype: &RecordingType, likely: Kind) -> gst::Caps {
    let accepted = accepted_caps(rtype);
    let compressed = |kind: &str| {
        accepted
            .iter()
            .filter(|s| s.name().starts_with(kind) && !s.name().ends_with("/x-raw"))
            .map(|s| s.to_owned())
            .collect::<Vec<_>>()
    };
    let mut video = vec![
        gst::Structure::builder("video/x-raw")
            .field("format", gst::List::new(DIRECT_VIDEO_FORMATS))
            .build(),
        gst::Structure::new_empty("video/x-raw"),
    ];
    video.extend(compressed("video/"));
    video.push(gst::Structure::new_empty("image/jpeg"));
    let interleaved = gst::Structure::builder("audio/x-raw")
        .field("format", gst::List::new(["S16LE", "F32LE"]))
        .field("layout", "interleaved")
        .build();
    let mut at_48k = interleaved.clone();
    at_48k.set("rate", 48_000i32);
    let mut audio = vec![
        at_48k,
        interleaved,
        gst::Structure::new_empty("audio/x-raw"),
    ];
    audio.extend(compressed("audio/"));
    let (first, second) = match likely {
        Kind::Video => (video, audio),
        Kind::Audio => (audio, video),
    };
    first.into_iter().chain(second).collect()
}

fn compressed_codec(caps: &gst::CapsRef) -> Option<Codec> {
    let s = caps.structure(0)?;
    let name = s.name().as_str();
    if let Some(v) = VideoCodec::from_media_type(name) {
        return Some(Codec::Video(v));
    }
    if name == "audio/mpeg" {
        return (s.get::<i32>("mpegversion").ok() == Some(4))
            .then_some(Codec::Audio(AudioCodec::Aac));
    }
    AudioCodec::from_media_type(name).map(Codec::Audio)
}

/// Whether H.264 or H.265 in `caps` comes as a demuxer gives it (whole access units
/// in the MP4 form, with the decoder setup and picture size a muxer writes), so that a
/// parser would only read every frame and pass it on unchanged: skipping it made a
/// kept-as-is camera about 3 % cheaper. A depayloader's caps lack the size (it is in
/// the stream), so its frames keep their parser.
fn parsed_by_a_demuxer(caps: &gst::CapsRef) -> bool {
    let Some(s) = caps.structure(0) else {
        return false;
    };
    let form = match s.name().as_str() {
        "video/x-h264" => "avc",
        "video/x-h265" => "hvc1",
        _ => return false,
    };
    s.get::<&str>("stream-format").is_ok_and(|f| f == form)
        && s.get::<&str>("alignment").is_ok_and(|a| a == "au")
        && s.has_field("codec_data")
        && s.get::<i32>("width").is_ok_and(|w| w > 0)
        && s.get::<i32>("height").is_ok_and(|h| h > 0)
}

/// The best-ranked installed decoder for `caps`, or an error naming the codec and the
/// package to install.
/// `parsed`: a parser comes first, turning the stream into the form the decoder takes
/// (a decoder that takes some form of it will do); else the decoder must take `caps`
/// as they are (which leaves out `vp8alphadecodebin`, for VP8 with `codec-alpha`).
fn decoder_for(
    caps: &gst::CapsRef,
    parsed: bool,
    rtype: &RecordingType,
) -> Result<gst::Element, ChainError> {
    let name = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    let mut factories: Vec<gst::ElementFactory> = gst::ElementFactory::factories_with_type(
        gst::ElementFactoryType::DECODER,
        gst::Rank::MARGINAL,
    )
    .into_iter()
    .filter(|f| {
        if parsed {
            f.can_sink_any_caps(caps)
        } else {
            f.can_sink_all_caps(caps)
        }
    })
    .collect();
    factories.sort_by_key(|f| std::cmp::Reverse(f.rank()));
    let factory = factories
        .first()
        .ok_or_else(|| ChainError::Unsupported(missing_decoder_message(caps, rtype)))?;
    factory.create().build().map_err(|_| {
        ChainError::Unsupported(format!(
            "the decoder {} for {name} failed to load",
            factory.name()
        ))
    })
}

/// What to say when `caps` can be neither kept in `rtype` nor decoded.
fn missing_decoder_message(caps: &gst::CapsRef, rtype: &RecordingType) -> String {
    let name = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    let codec = compressed_codec(caps);
    let what = codec.map_or(name.clone(), |c| c.display_name().to_string());
    let keep = codec
        .map(Container::types_keeping)
        .filter(|types| !types.is_empty())
        .map(|types| {
            format!(
                " (or record to {}, which keeps it as it is)",
                types.join(" or ")
            )
        })
        .unwrap_or_default();
    format!(
        "{what} cannot be stored in {} and no {what} decoder is installed to re-encode it: \
         install the Debian package {}{keep}",
        rtype.container.display_name(),
        decoder_package(&name)
    )
}

/// Chooses and configures the chain for `caps` in a recording of `rtype`. `keep` is the
/// codec a track already has (its input changed mid-recording): the chain then makes
/// that codec, re-encoding where needed. Video whose `orientation` is not upright is
/// turned upright, so re-encoded (no muxer here writes an orientation).
pub fn chain_for(
    caps: &gst::CapsRef,
    rtype: &RecordingType,
    params: &EncoderParams,
    keep: Option<Codec>,
    orientation: Orientation,
) -> Result<Chain, ChainError> {
    let kind = kind_of(caps).ok_or_else(|| {
        ChainError::Unsupported(format!("cannot record {caps}: neither audio nor video"))
    })?;
    let name = caps.structure(0).map(|s| s.name().as_str()).unwrap_or("");

    // Compressed input the track takes as it is goes through unchanged.
    if let Some(codec) = compressed_codec(caps) {
        // Video shown turned is kept only where the file can say so.
        let said =
            rtype.container.says_orientation() && displaymatrix::matrix(orientation).is_some();
        let upright = kind == Kind::Audio || orientation.is_upright();
        let fits = match keep {
            Some(kept) => kept == codec,
            None => rtype.passes_through(codec),
        } && (upright || said);
        if fits {
            let parser = match codec {
                _ if parsed_by_a_demuxer(caps) => None,
                Codec::Video(v) => v.parser(),
                Codec::Audio(a) => a.parser(),
            };
            let elements = parser.map(make).transpose()?.into_iter().collect();
            return Ok(Chain {
                kind,
                codec,
                elements,
                orientation_in_container: (!upright).then_some(orientation),
                warnings: Vec::new(),
                encodes: false,
            });
        }
    }
    // Anything else is decoded (MJPEG cameras, codecs the container does not take, a
    // codec that changed mid-recording) and encoded.
    let mut elements = Vec::new();
    let mut warnings = Vec::new();
    if name == "image/jpeg" {
        elements.push(base("jpegdec")?);
    } else if name != "video/x-raw" && name != "audio/x-raw" {
        // The codec's parser first: it turns what a depayloader or demuxer gives
        // (NAL units, byte-stream) into what the decoder takes.
        let parser = match compressed_codec(caps) {
            Some(Codec::Video(v)) => v.parser(),
            Some(Codec::Audio(a)) => a.parser(),
            None => None,
        };
        if let Some(parser) = parser {
            elements.push(make(parser)?);
        }
        elements.push(decoder_for(caps, parser.is_some(), rtype)?);
    }
    // A user's encoder serves the first chain; a re-encode after a change makes its own.
    let (video_encoder, audio_encoder) = match keep {
        Some(_) => (None, None),
        None => (params.video_encoder.clone(), params.audio_encoder.clone()),
    };

    match kind {
        Kind::Video => {
            let codec = match keep {
                Some(Codec::Video(v)) => Some(v),
                _ => rtype.video_codec(),
            };
            let codec = codec.ok_or_else(|| {
                ChainError::Unsupported(format!(
                    "the mime-type '{}' records no video",
                    rtype.effective(None, rtype.audio_codec())
                ))
            })?;
            let info = caps.structure(0);
            let width = info
                .and_then(|s| s.get::<i32>("width").ok())
                .unwrap_or(0)
                .max(0) as u32;
            let height = info
                .and_then(|s| s.get::<i32>("height").ok())
                .unwrap_or(0)
                .max(0) as u32;
            let fps = info
                .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
                .filter(|f| f.numer() > 0 && f.denom() > 0)
                .map(|f| f.numer() as f64 / f.denom() as f64)
                .unwrap_or(0.0);
            // The first size is kept (a source that changes size mid-recording is
            // scaled to it), turned upright, brought into the range the encoder takes.
            let (width, height) = orientation.upright_size(width, height);
            let (width, height) = match (width, height) {
                (0, 0) if caps.is_fixed() => {
                    return Err(ChainError::Unsupported(format!(
                        "video of 0x0 pixels cannot be recorded ({caps})"
                    )))
                }
                _ => encoding::encodable_size(width, height, codec).unwrap_or((0, 0)),
            };
            elements.push(base("videoconvert")?);
            if !orientation.is_upright() {
                let flip = base("videoflip")?;
                flip.set_property_from_str("video-direction", orientation.video_direction());
                elements.push(flip);
            }
            elements.push(base("videoscale")?);
            let size = (width > 0 && height > 0).then(|| {
                gst::Caps::builder("video/x-raw")
                    .field("width", width as i32)
                    .field("height", height as i32)
                    .build()
            });
            elements.push(filter(size)?);
            let (encoder, codec) = match &video_encoder {
                Some(user) => {
                    let codec = user_encoder_codec(user, rtype)?;
                    let Codec::Video(codec) = codec else {
                        return Err(ChainError::Unsupported(
                            "video-encoder does not produce video".into(),
                        ));
                    };
                    set_keyframe_distance(user, &keyframe_frames(params, fps));
                    (user.clone(), codec)
                }
                None => {
                    let encoder = make(codec.encoder())?;
                    let refit =
                        configure_video_encoder(&encoder, codec, width, height, fps, params);
                    if let Some(refit) = refit {
                        warnings.push(rate_warning("video", params, refit));
                    }
                    (encoder, codec)
                }
            };
            encoding_chain(
                kind,
                Codec::Video(codec),
                elements,
                encoder,
                codec.parser(),
                warnings,
            )
        }
        Kind::Audio => {
            let codec = match keep {
                Some(Codec::Audio(a)) => Some(a),
                _ => rtype.audio_codec(),
            };
            let codec = codec.ok_or_else(|| {
                ChainError::Unsupported(format!(
                    "the mime-type '{}' records no audio",
                    rtype.effective(rtype.video_codec(), None)
                ))
            })?;
            let info = caps.structure(0);
            let channels = info
                .and_then(|s| s.get::<i32>("channels").ok())
                .unwrap_or(2)
                .max(1) as u32;
            let rate = info
                .and_then(|s| s.get::<i32>("rate").ok())
                .unwrap_or(48_000)
                .max(1) as u32;
            elements.push(base("audioconvert")?);
            elements.push(base("audioresample")?);
            // The track's channels and rate stay those of its first input (converted
            // into what the encoder takes): the file's header is written once.
            let (channels, rate) = encoding::encodable_audio(channels, rate, codec);
            elements.push(filter(Some(
                gst::Caps::builder("audio/x-raw")
                    .field("channels", channels as i32)
                    .field("rate", rate as i32)
                    .build(),
            ))?);
            // A microphone that drops buffers leaves gaps in its timestamps; laid end
            // to end, the audio would drift ahead of the video by the gaps. Filled
            // with silence, it stays in sync (within the tolerance).
            let gaps = base("audiorate")?;
            gaps.set_property("skip-to-first", true);
            gaps.set_property("tolerance", AUDIO_GAP_TOLERANCE);
            gaps.set_property("silent", false);
            elements.push(gaps);
            let (encoder, codec) = match &audio_encoder {
                Some(user) => match user_encoder_codec(user, rtype)? {
                    Codec::Audio(codec) => (user.clone(), codec),
                    Codec::Video(_) => {
                        return Err(ChainError::Unsupported(
                            "audio-encoder does not produce audio".into(),
                        ))
                    }
                },
                None => {
                    let encoder = make(codec.encoder())?;
                    let range = encoding::audio_bitrate_range(codec);
                    let bps = if params.audio_bps > 0 {
                        let (bps, refit) = encoding::fit_bitrate(params.audio_bps, range);
                        if let Some(refit) = refit {
                            warnings.push(rate_warning("audio", params, refit));
                        }
                        bps
                    } else {
                        let auto = encoding::auto_audio_bitrate(channels, codec);
                        encoding::fit_bitrate(auto, range).0
                    };
                    set_if_present(&encoder, "bitrate", &bps.to_string());
                    if codec == AudioCodec::Opus {
                        let mode = if params.audio_constant { "cbr" } else { "vbr" };
                        set_if_present(&encoder, "bitrate-type", mode);
                    }
                    (encoder, codec)
                }
            };
            encoding_chain(
                kind,
                Codec::Audio(codec),
                elements,
                encoder,
                codec.parser(),
                warnings,
            )
        }
    }
}

/// A chain that ends in `encoder` (and the codec's parser, if it has one).
fn encoding_chain(
    kind: Kind,
    codec: Codec,
    mut elements: Vec<gst::Element>,
    encoder: gst::Element,
    parser: Option<Requirement>,
    warnings: Vec<String>,
) -> Result<Chain, ChainError> {
    elements.push(encoder);
    if let Some(parser) = parser {
        elements.push(make(parser)?);
    }
    Ok(Chain {
        kind,
        codec,
        elements,
        orientation_in_container: None,
        warnings,
        encodes: true,
    })
}

/// The codec a user's encoder produces, from its source pad template.
fn user_encoder_codec(encoder: &gst::Element, rtype: &RecordingType) -> Result<Codec, ChainError> {
    let caps = encoder
        .static_pad("src")
        .map(|p| p.pad_template_caps())
        .unwrap_or_else(gst::Caps::new_empty);
    let codec = caps
        .iter()
        .find_map(|s| compressed_codec(&gst::Caps::from(s.to_owned())))
        .ok_or_else(|| {
            ChainError::Unsupported(format!(
                "the configured encoder {} produces {caps}, which no recording type stores",
                encoder.name()
            ))
        })?;
    if !rtype.accepts(codec) {
        return Err(ChainError::Unsupported(format!(
            "the configured encoder {} produces {codec:?}, which {} cannot store",
            encoder.name(),
            rtype.container.muxer().factory
        )));
    }
    Ok(codec)
}

fn keyframe_frames(params: &EncoderParams, fps: f64) -> String {
    params
        .keyframe_count
        .unwrap_or_else(|| encoding::keyframe_distance(params.keyframe_interval_ms, fps))
        .to_string()
}

/// Keyframe spacing under the names encoders use for it.
fn set_keyframe_distance(encoder: &gst::Element, frames: &str) {
    for name in [
        "keyframe-max-dist",
        "key-int-max",
        "gop-size",
        "keyframe-period",
    ] {
        set_if_present(encoder, name, frames);
    }
}

/// The warning for a rate the encoder cannot take, naming the property that set it.
fn rate_warning(kind: &str, params: &EncoderParams, refit: encoding::Refit) -> String {
    let property = match params.total_bps {
        Some(_) => "bits-per-second".to_string(),
        None => format!("{kind}-bits-per-second"),
    };
    encoding::refit_warning(kind, &property, params.total_bps, refit)
}

/// Live settings, as browsers use: realtime deadline, a fast preset, constant bitrate,
/// a bounded keyframe interval, no look-ahead. Returns how a rate asked for that the
/// encoder cannot take was changed.
fn configure_video_encoder(
    encoder: &gst::Element,
    codec: VideoCodec,
    width: u32,
    height: u32,
    fps: f64,
    params: &EncoderParams,
) -> Option<encoding::Refit> {
    let range = encoding::video_bitrate_range(codec);
    let (bps, refit) = if params.video_bps > 0 {
        encoding::fit_bitrate(params.video_bps, range)
    } else {
        let auto = encoding::auto_video_bitrate(width, height, fps, codec);
        (encoding::fit_bitrate(auto, range).0, None)
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let threads = encoding::video_threads(width, height, fps, params.live, cores).to_string();
    let kf = keyframe_frames(params, fps);
    let set = |name: &str, value: &str| set_if_present(encoder, name, value);
    match codec {
        VideoCodec::Vp8 | VideoCodec::Vp9 => {
            set("deadline", "1");
            set("cpu-used", "8");
            set("end-usage", "cbr");
            set("target-bitrate", &bps.to_string());
            set("keyframe-max-dist", &kf);
            set("lag-in-frames", "0");
            set("threads", &threads);
            if codec == VideoCodec::Vp9 {
                set("row-mt", "true");
            }
        }
        VideoCodec::Av1 => {
            set("usage-profile", "realtime");
            set("cpu-used", "10");
            set("end-usage", "cbr");
            // The element's default quantizer range (0..0) makes libaom's CBR abort.
            set("min-quantizer", "4");
            set("max-quantizer", "56");
            set("target-bitrate", &(bps / 1000).max(1).to_string());
            set("keyframe-max-dist", &kf);
            set("lag-in-frames", "0");
            set("threads", &threads);
            set("row-mt", "true");
        }
        VideoCodec::H265 => {
            set("tune", "zerolatency");
            set("speed-preset", "veryfast");
            set("bitrate", &(bps / 1000).max(1).to_string());
            set("key-int-max", &kf);
        }
        VideoCodec::H264 => {
            set("tune", "zerolatency");
            set("speed-preset", "veryfast");
            set("pass", "cbr");
            set("bitrate", &(bps / 1000).max(1).to_string());
            set("key-int-max", &kf);
            set("threads", &threads);
        }
    }
    refit
}

/// Whether this machine can record `mime` (the web API's `isTypeSupported`): the type
/// parses and every element it needs is installed.
pub fn is_type_supported(mime: &str) -> bool {
    let Ok(rtype) = RecordingType::parse(mime) else {
        return false;
    };
    let video = rtype.video_codec().is_some();
    let audio = rtype.audio_codec().is_some();
    rtype
        .requirements(video, audio)
        .iter()
        .all(|req| gst::ElementFactory::find(req.factory).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(s: &str) -> gst::Caps {
        gst::init().unwrap();
        s.parse().unwrap()
    }

    fn names(caps: &gst::Caps) -> Vec<String> {
        caps.iter().map(|s| s.name().to_string()).collect()
    }

    #[test]
    fn compressed_input_a_container_cannot_keep_is_taken_after_what_it_keeps() {
        gst::init().unwrap();
        let webm = RecordingType::parse("video/webm").unwrap();
        let accepted = names(&accepted_caps(&webm));
        let at = |name: &str| accepted.iter().position(|n| n == name).unwrap();
        assert!(at("video/x-vp8") < at("video/x-h264"), "{accepted:?}");
        assert!(at("video/x-av1") < at("video/x-h265"), "{accepted:?}");
        assert!(at("audio/x-opus") < at("audio/x-mulaw"), "{accepted:?}");
        let mp4 = RecordingType::parse("video/mp4").unwrap();
        let accepted = names(&accepted_caps(&mp4));
        let at = |name: &str| accepted.iter().position(|n| n == name).unwrap();
        assert!(at("video/x-h265") < at("video/x-vp8"), "{accepted:?}");
    }

    #[test]
    fn a_demuxers_h264_skips_the_parser_a_depayloaders_keeps_it() {
        let mp4 = RecordingType::parse("video/mp4").unwrap();
        let params = EncoderParams {
            video_bps: 2_500_000,
            audio_bps: 128_000,
            total_bps: None,
            audio_constant: false,
            keyframe_interval_ms: 1000,
            keyframe_count: None,
            live: true,
            video_encoder: None,
            audio_encoder: None,
        };
        let chain = |c: &str| {
            chain_for(&caps(c), &mp4, &params, None, Orientation::default())
                .unwrap()
                .elements
                .iter()
                .map(|e| e.factory().unwrap().name().to_string())
                .collect::<Vec<_>>()
        };
        let demuxed = "video/x-h264,stream-format=avc,alignment=au,width=1920,height=1080,\
                       codec_data=(buffer)0164001fffe1";
        assert!(chain(demuxed).is_empty(), "{:?}", chain(demuxed));
        let depayloaded = "video/x-h264,stream-format=avc,alignment=au,codec_data=(buffer)01";
        assert_eq!(chain(depayloaded), ["h264parse"]);
        assert_eq!(
            chain("video/x-h264,stream-format=byte-stream"),
            ["h264parse"]
        );
        assert_eq!(chain("video/x-h264"), ["h264parse"]);
        // AAC keeps its parser, whatever it comes with
        assert_eq!(
            chain("audio/mpeg,mpegversion=4,stream-format=raw,codec_data=(buffer)1210"),
            ["aacparse"]
        );
    }

    #[test]
    fn a_reencode_says_why() {
        let webm = RecordingType::parse("video/webm").unwrap();
        let h264 = caps("video/x-h264, stream-format=avc");
        let why = reencode_reason(&h264, &webm, Codec::Video(VideoCodec::Vp8)).unwrap();
        assert!(why.contains("H.264 cannot be stored in WebM"), "{why}");
        assert!(why.contains("video/mp4 or video/x-matroska"), "{why}");
        let mp4 = RecordingType::parse("video/mp4").unwrap();
        assert_eq!(
            reencode_reason(&h264, &mp4, Codec::Video(VideoCodec::H264)),
            None
        );
        let raw = caps("video/x-raw");
        assert_eq!(
            reencode_reason(&raw, &webm, Codec::Video(VideoCodec::Vp8)),
            None
        );
        let mulaw = caps("audio/x-mulaw");
        let why = reencode_reason(&mulaw, &webm, Codec::Audio(AudioCodec::Opus)).unwrap();
        assert!(why.contains("audio/x-mulaw"), "{why}");
        let vp9 = RecordingType::parse("video/webm;codecs=vp9").unwrap();
        let why =
            reencode_reason(&caps("video/x-vp8"), &vp9, Codec::Video(VideoCodec::Vp9)).unwrap();
        assert!(why.contains("asks for VP9"), "{why}");
    }

    #[test]
    fn a_codec_that_cannot_be_decoded_names_the_package() {
        let webm = RecordingType::parse("video/webm").unwrap();
        let msg = missing_decoder_message(&caps("video/x-h265"), &webm);
        assert!(msg.contains("H.265 cannot be stored in WebM"), "{msg}");
        assert!(msg.contains("gstreamer1.0-libav"), "{msg}");
        assert!(msg.contains("video/mp4 or video/x-matroska"), "{msg}");
        let msg = missing_decoder_message(&caps("audio/x-mulaw"), &webm);
        assert!(msg.contains("gstreamer1.0-plugins-good"), "{msg}");
    }
}
