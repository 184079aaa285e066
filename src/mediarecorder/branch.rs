//! The elements between a sink pad's queue and its encoded-frame stage, chosen from
//! the caps that arrive: raw media is converted and encoded for live recording,
//! MJPEG is decoded first, and compressed media the container takes goes through
//! as it is.

use gst::glib;
use gst::prelude::*;

use super::encoding;
use super::mimetype::{AudioCodec, Codec, RecordingType, Requirement, VideoCodec};
use super::timeline::Kind;

/// What the encoders are asked for, from the settings of the element.
#[derive(Debug, Clone)]
pub struct EncoderParams {
    pub video_bps: u32,
    pub audio_bps: u32,
    pub keyframe_interval_ms: u64,
    pub live: bool,
}

/// The chain for one stream: elements to link in order, and what comes out.
pub struct Plan {
    pub kind: Kind,
    pub codec: Codec,
    pub elements: Vec<gst::Element>,
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
        "jpegdec" => "gstreamer1.0-plugins-good",
        _ => "gstreamer1.0-plugins-base",
    };
    make(Requirement { factory, package })
}

/// Sets a property from its string form where the element has it (versions differ).
pub fn set_if_present(element: &gst::Element, name: &str, value: &str) {
    if element.find_property(name).is_some() {
        element.set_property_from_str(name, value);
    }
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

/// Chooses and configures the chain for `caps` in a recording of `rtype`.
pub fn plan(
    caps: &gst::CapsRef,
    rtype: &RecordingType,
    params: &EncoderParams,
) -> Result<Plan, PlanError> {
    let kind = kind_of(caps).ok_or_else(|| {
        PlanError::Unsupported(format!("cannot record {caps}: neither audio nor video"))
    })?;
    let name = caps.structure(0).map(|s| s.name().as_str()).unwrap_or("");

    if let Some(codec) = compressed_codec(caps) {
        if rtype.accepts(codec) {
            let parser = match codec {
                Codec::Video(v) => v.parser(),
                Codec::Audio(a) => a.parser(),
            };
            let elements = parser.map(make).transpose()?.into_iter().collect();
            return Ok(Plan {
                kind,
                codec,
                elements,
            });
        }
        return Err(PlanError::Unsupported(format!(
            "{name} cannot be stored in {} and is not decoded here: put a decoder before mediarecorder",
            rtype.effective(None, None).split(';').next().unwrap_or("")
        )));
    }

    match kind {
        Kind::Video => {
            let codec = rtype.video_codec().ok_or_else(|| {
                PlanError::Unsupported(format!(
                    "the mime-type '{}' records no video",
                    rtype.effective(None, rtype.audio_codec())
                ))
            })?;
            let mut elements = Vec::new();
            if name == "image/jpeg" {
                elements.push(base("jpegdec")?);
            } else if name != "video/x-raw" {
                return Err(PlanError::Unsupported(format!("cannot record {name}")));
            }
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
            elements.push(base("videoconvert")?);
            elements.push(base("videoscale")?);
            // The first size is kept: a source that changes size mid-recording is scaled.
            let filter = base("capsfilter")?;
            if width > 0 && height > 0 {
                filter.set_property(
                    "caps",
                    gst::Caps::builder("video/x-raw")
                        .field("width", width as i32)
                        .field("height", height as i32)
                        .build(),
                );
            }
            elements.push(filter);
            let encoder = make(codec.encoder())?;
            configure_video_encoder(&encoder, codec, width, height, fps, params);
            elements.push(encoder.clone());
            if let Some(parser) = codec.parser() {
                elements.push(make(parser)?);
            }
            Ok(Plan {
                kind,
                codec: Codec::Video(codec),
                elements,
            })
        }
        Kind::Audio => {
            let codec = rtype.audio_codec().ok_or_else(|| {
                PlanError::Unsupported(format!(
                    "the mime-type '{}' records no audio",
                    rtype.effective(rtype.video_codec(), None)
                ))
            })?;
            if name != "audio/x-raw" {
                return Err(PlanError::Unsupported(format!("cannot record {name}")));
            }
            let channels = caps
                .structure(0)
                .and_then(|s| s.get::<i32>("channels").ok())
                .unwrap_or(2)
                .max(1) as u32;
            let mut elements = vec![base("audioconvert")?, base("audioresample")?];
            let encoder = make(codec.encoder())?;
            let bps = if params.audio_bps > 0 {
                params.audio_bps
            } else {
                encoding::auto_audio_bitrate(channels, codec)
            };
            let bps = encoding::clamp_audio_bitrate(bps, codec);
            match codec {
                AudioCodec::Opus => {
                    encoder.set_property_from_str("bitrate", &bps.to_string());
                    encoder.set_property_from_str("bitrate-type", "vbr");
                }
                AudioCodec::Vorbis => {
                    encoder.set_property_from_str("bitrate", &bps.to_string());
                }
                AudioCodec::Aac => {
                    encoder.set_property_from_str("bitrate", &bps.to_string());
                }
            }
            elements.push(encoder.clone());
            if let Some(parser) = codec.parser() {
                elements.push(make(parser)?);
            }
            Ok(Plan {
                kind,
                codec: Codec::Audio(codec),
                elements,
            })
        }
    }
}

/// Live settings, as browsers use: realtime deadline, a fast preset, constant bitrate,
/// a bounded keyframe interval, no look-ahead.
fn configure_video_encoder(
    encoder: &gst::Element,
    codec: VideoCodec,
    width: u32,
    height: u32,
    fps: f64,
    params: &EncoderParams,
) {
    let bps = if params.video_bps > 0 {
        params.video_bps
    } else {
        encoding::auto_video_bitrate(width, height, fps, codec)
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let threads = encoding::video_threads(width, height, fps, params.live, cores).to_string();
    let kf = encoding::keyframe_distance(params.keyframe_interval_ms, fps).to_string();
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
}
