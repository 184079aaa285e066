//! The elements between a sink pad's queue and its encoded-frame stage, chosen from
//! the caps that arrive: raw media is converted and encoded for live recording,
//! MJPEG is decoded first, and compressed media the container takes goes through
//! as it is.

use gst::glib;
use gst::prelude::*;

use super::displaymatrix;
use super::encoding;
use super::mimetype::{AudioCodec, Codec, RecordingType, Requirement, VideoCodec};
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
pub struct Plan {
    pub kind: Kind,
    pub codec: Codec,
    pub elements: Vec<gst::Element>,
    /// Video kept as it is whose orientation the container is to say.
    pub orientation_in_container: Option<Orientation>,
    /// What the user asked for that the chain does differently, to warn about.
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub enum PlanError {
    Missing(Requirement),
    Unsupported(String),
}

impl PlanError {
    pub fn to_glib(&self) -> glib::Error {
        match self {
            PlanError::Missing(req) => glib::Error::new(
                gst::CoreError::MissingPlugin,
                &format!(
                    "GStreamer element '{}' is missing: install the Debian package {}",
                    req.factory, req.package
                ),
            ),
            PlanError::Unsupported(why) => glib::Error::new(gst::StreamError::Format, why),
        }
    }
}

pub fn make(req: Requirement) -> Result<gst::Element, PlanError> {
    gst::ElementFactory::make(req.factory)
        .build()
        .map_err(|_| PlanError::Missing(req))
}

fn base(factory: &'static str) -> Result<gst::Element, PlanError> {
    let package = match factory {
        "jpegdec" | "videoflip" => "gstreamer1.0-plugins-good",
        _ => "gstreamer1.0-plugins-base",
    };
    make(Requirement { factory, package })
}

/// A capsfilter holding a track to `caps` (none: anything).
fn filter(caps: Option<gst::Caps>) -> Result<gst::Element, PlanError> {
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

/// Caps a sink pad takes: raw media, MJPEG, and the compressed formats this
/// recording type stores without re-encoding.
pub fn accepted_caps(rtype: &RecordingType) -> gst::Caps {
    let mut caps = gst::Caps::builder("video/x-raw").build();
    let caps_mut = caps.get_mut().unwrap();
    caps_mut.append(gst::Caps::builder("image/jpeg").build());
    caps_mut.append(gst::Caps::builder("audio/x-raw").build());
    for v in [
        VideoCodec::Vp8,
        VideoCodec::Vp9,
        VideoCodec::Av1,
        VideoCodec::H264,
    ] {
        if rtype.accepts(Codec::Video(v)) {
            caps_mut.append(gst::Caps::builder(v.media_type()).build());
        }
    }
    for a in [AudioCodec::Opus, AudioCodec::Vorbis] {
        if rtype.accepts(Codec::Audio(a)) {
            caps_mut.append(gst::Caps::builder(a.media_type()).build());
        }
    }
    if rtype.accepts(Codec::Audio(AudioCodec::Aac)) {
        caps_mut.append(
            gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .build(),
        );
    }
    caps
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

/// The best-ranked installed decoder for `caps`.
fn decoder_for(caps: &gst::CapsRef) -> Result<gst::Element, PlanError> {
    let name = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    let mut factories: Vec<gst::ElementFactory> = gst::ElementFactory::factories_with_type(
        gst::ElementFactoryType::DECODER,
        gst::Rank::MARGINAL,
    )
    .into_iter()
    .filter(|f| f.can_sink_all_caps(caps))
    .collect();
    factories.sort_by_key(|f| std::cmp::Reverse(f.rank()));
    let factory = factories.first().ok_or_else(|| {
        PlanError::Unsupported(format!(
            "no decoder for {name} is installed (gstreamer1.0-libav has most), so it cannot be re-encoded"
        ))
    })?;
    factory.create().build().map_err(|_| {
        PlanError::Unsupported(format!(
            "the decoder {} for {name} failed to load",
            factory.name()
        ))
    })
}

/// Chooses and configures the chain for `caps` in a recording of `rtype`. `keep` is the
/// codec a track already has (its input changed mid-recording): the chain then makes
/// that codec, re-encoding where needed. Video whose `orientation` is not upright is
/// turned upright, so re-encoded (no muxer here writes an orientation).
pub fn plan(
    caps: &gst::CapsRef,
    rtype: &RecordingType,
    params: &EncoderParams,
    keep: Option<Codec>,
    orientation: Orientation,
) -> Result<Plan, PlanError> {
    let kind = kind_of(caps).ok_or_else(|| {
        PlanError::Unsupported(format!("cannot record {caps}: neither audio nor video"))
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
                Codec::Video(v) => v.parser(),
                Codec::Audio(a) => a.parser(),
            };
            let elements = parser.map(make).transpose()?.into_iter().collect();
            return Ok(Plan {
                kind,
                codec,
                elements,
                orientation_in_container: (!upright).then_some(orientation),
                warnings: Vec::new(),
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
        elements.push(decoder_for(caps)?);
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
                PlanError::Unsupported(format!(
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
                    return Err(PlanError::Unsupported(format!(
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
                        return Err(PlanError::Unsupported(
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
            elements.push(encoder);
            if let Some(parser) = codec.parser() {
                elements.push(make(parser)?);
            }
            Ok(Plan {
                kind,
                codec: Codec::Video(codec),
                elements,
                orientation_in_container: None,
                warnings,
            })
        }
        Kind::Audio => {
            let codec = match keep {
                Some(Codec::Audio(a)) => Some(a),
                _ => rtype.audio_codec(),
            };
            let codec = codec.ok_or_else(|| {
                PlanError::Unsupported(format!(
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
                        return Err(PlanError::Unsupported(
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
            elements.push(encoder);
            if let Some(parser) = codec.parser() {
                elements.push(make(parser)?);
            }
            Ok(Plan {
                kind,
                codec: Codec::Audio(codec),
                elements,
                orientation_in_container: None,
                warnings,
            })
        }
    }
}

/// The codec a user's encoder produces, from its source pad template.
fn user_encoder_codec(encoder: &gst::Element, rtype: &RecordingType) -> Result<Codec, PlanError> {
    let caps = encoder
        .static_pad("src")
        .map(|p| p.pad_template_caps())
        .unwrap_or_else(gst::Caps::new_empty);
    let codec = caps
        .iter()
        .find_map(|s| compressed_codec(&gst::Caps::from(s.to_owned())))
        .ok_or_else(|| {
            PlanError::Unsupported(format!(
                "the configured encoder {} produces {caps}, which no recording type stores",
                encoder.name()
            ))
        })?;
    if !rtype.accepts(codec) {
        return Err(PlanError::Unsupported(format!(
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
