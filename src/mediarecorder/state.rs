//! What the element knows, behind its two locks: the settings (properties) and the
//! state (pads and their branches, and the stage: idle with its pre-record ring, or
//! the current recording), with the element's public enums and limits. Everything
//! else reads these; this module reads nothing of the element.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use super::encoding;
use super::engine::Capture;
use super::mimetype::{Codec, RecordingType};
use super::naming;
use super::orientation::Orientation;
use super::recording::Recording;
use super::stage::{Activity, Stage};
use super::timeline::Kind;

/// What the recorder is doing, as the web API's `state` attribute.
#[derive(Debug, Default, Eq, PartialEq, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstMediaRecorderState")]
pub enum RecorderState {
    #[default]
    #[enum_value(name = "Inactive: not recording", nick = "inactive")]
    Inactive = 0,
    #[enum_value(name = "Recording: media is written", nick = "recording")]
    Recording = 1,
    #[enum_value(name = "Paused: media is dropped until resumed", nick = "paused")]
    Paused = 2,
}

/// Where segment files begin.
#[derive(Debug, Default, Eq, PartialEq, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstMediaRecorderSegmentAlign")]
pub enum SegmentAlign {
    #[default]
    #[enum_value(
        name = "None: a file is max-file-duration long from its start",
        nick = "none"
    )]
    None = 0,
    #[enum_value(
        name = "Clock: files start where the wall clock is a multiple of max-file-duration",
        nick = "clock"
    )]
    Clock = 1,
}

/// The web API's `audioBitrateMode`.
#[derive(Debug, Default, Eq, PartialEq, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstMediaRecorderBitrateMode")]
pub enum BitrateMode {
    #[enum_value(name = "Constant: the same rate throughout", nick = "constant")]
    Constant = 0,
    #[default]
    #[enum_value(name = "Variable: the rate follows the content", nick = "variable")]
    Variable = 1,
}

/// How late a live source's raw frame may reach its encoder before it is dropped instead.
pub(super) const DROP_LEVEL: u64 = 1_000_000_000;
/// Keeps `duration` in nanoseconds within u64.
pub const MAX_DURATION_MS: u64 = u64::MAX / 1_000_000 - 1;
/// How long finalizing a file may take before the element gives up on it.
pub const FINALIZE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Settings {
    pub location: Option<String>,
    pub duration_ms: u64,
    pub mime_type: String,
    pub video_bps: u32,
    pub audio_bps: u32,
    pub total_bps: u32,
    pub timeslice_ms: u32,
    pub autostart: bool,
    pub audio_bitrate_mode: BitrateMode,
    pub keyframe_interval_duration_ms: u64,
    pub keyframe_interval_count: u32,
    pub video_encoder: Option<gst::Element>,
    pub audio_encoder: Option<gst::Element>,
    pub pre_record_ms: u64,
    pub max_file_duration_ms: u64,
    pub max_file_size: u64,
    pub max_files: u32,
    pub max_total_bytes: u64,
    pub min_free_bytes: u64,
    pub max_file_age_ms: u64,
    pub segment_align: SegmentAlign,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: None,
            duration_ms: 0,
            mime_type: String::new(),
            video_bps: 0,
            audio_bps: 0,
            total_bps: 0,
            timeslice_ms: 0,
            autostart: true,
            audio_bitrate_mode: BitrateMode::Variable,
            keyframe_interval_duration_ms: 0,
            keyframe_interval_count: 0,
            video_encoder: None,
            audio_encoder: None,
            pre_record_ms: 0,
            max_file_duration_ms: 0,
            max_file_size: 0,
            max_files: 0,
            max_total_bytes: 0,
            min_free_bytes: 0,
            max_file_age_ms: 0,
            segment_align: SegmentAlign::None,
        }
    }
}

impl Settings {
    pub(super) fn recording_type(&self) -> RecordingType {
        RecordingType::parse(&self.mime_type)
            .unwrap_or_else(|_| RecordingType::parse("").expect("the empty type is the default"))
    }

    /// `pre-record` in ns: how much encoded media the stage keeps while idle.
    pub(super) fn pre_record_ns(&self) -> u64 {
        self.pre_record_ms.saturating_mul(1_000_000)
    }

    /// Keyframe spacing: as set, else following the timeslice, else 2 s.
    pub(super) fn keyframe_interval_ms(&self) -> u64 {
        if self.keyframe_interval_duration_ms > 0 {
            return self.keyframe_interval_duration_ms;
        }
        match self.timeslice_ms {
            0 => encoding::DEFAULT_KEYFRAME_INTERVAL_MS,
            t => u64::from(t).min(encoding::DEFAULT_KEYFRAME_INTERVAL_MS),
        }
    }

    /// What makes a recording impossible before it starts.
    pub(super) fn validate(&self) -> Result<RecordingType, glib::Error> {
        if self.keyframe_interval_duration_ms > 0 && self.keyframe_interval_count > 0 {
            return Err(glib::Error::new(
                gst::CoreError::NotImplemented,
                "video-keyframe-interval-duration and video-keyframe-interval-count are both \
                 set: set only one",
            ));
        }
        let segmenting = self.max_file_duration_ms > 0 || self.max_file_size > 0;
        if let Some(location) = &self.location {
            if segmenting && !naming::is_pattern(location) {
                return Err(glib::Error::new(
                    gst::ResourceError::Settings,
                    &format!(
                        "Segments need a file name per segment: add an index such as %05d \
                         or date fields such as %Y%m%d-%H%M%S to location '{location}'"
                    ),
                ));
            }
        }
        if self.segment_align == SegmentAlign::Clock && self.max_file_duration_ms == 0 {
            return Err(glib::Error::new(
                gst::ResourceError::Settings,
                "segment-align=clock aligns files of max-file-duration: set max-file-duration \
                 too (60000 starts a file at every minute)",
            ));
        }
        RecordingType::parse(&self.mime_type).map_err(|e| {
            glib::Error::new(
                gst::CoreError::NotImplemented,
                &format!("Unsupported mime-type '{}': {e}", self.mime_type),
            )
        })
    }

    /// Per-kind bitrates, with `bits-per-second` split when set.
    pub(super) fn bitrates(&self, has_video: bool, has_audio: bool) -> (u32, u32) {
        if self.total_bps > 0 {
            encoding::split_total_bitrate(self.total_bps, has_video, has_audio)
        } else {
            (self.video_bps, self.audio_bps)
        }
    }
}

/// One request pad and its branch.
pub struct Stream {
    pub(super) id: usize,
    pub(super) pad: gst::GhostPad,
    /// The pad's target, where the branch starts.
    pub(super) entry: gst::Element,
    /// Between the encoder and the stage.
    pub(super) queue: gst::Element,
    pub(super) sink: gst_app::AppSink,
    /// The chain between the entry and the stage; none for frames that go as they
    /// come (VP8, or H.264 as a demuxer gives it).
    pub(super) middle: Vec<gst::Element>,
    pub(super) kind: Option<Kind>,
    /// What the chain makes: set once it is built.
    pub(super) codec: Option<Codec>,
    /// Media type of the input the chain was built for.
    pub(super) input: Option<String>,
    pub(super) encoded_caps: Option<gst::Caps>,
    /// Whether upstream is live (its latency query said so when the chain was built).
    pub(super) live: bool,
    pub(super) eos: bool,
    /// A live source's raw frames as they reached the encoder or were dropped, for
    /// the recording to count what it lost.
    pub(super) captures: Arc<CaptureLog>,
    /// Whether, and past what upstream latency, late raw frames are dropped, and
    /// whether raw video is skipped while nothing records.
    pub(super) late_drop: Arc<LateDrop>,
    /// Gaps in the audio's timestamps filled with silence, and the silence (ns).
    pub(super) audio_gaps: Arc<AtomicU64>,
    pub(super) silence: Arc<AtomicU64>,
    /// Given up for getting no stream: what comes later is taken and left out.
    pub(super) orphaned: Arc<AtomicBool>,
    /// How its pictures are turned upright (its `image-orientation` tag).
    pub(super) orientation: Orientation,
    /// Kept as it is, its orientation written into the container (MP4's matrix).
    pub(super) orientation_in_container: Option<Orientation>,
}

/// Captures of a live raw stream not yet handed to the recording: taken at every
/// frame that reaches the stage and when a recording ends. At most `CAPTURE_LOG_LEN`
/// wait (a stage that gets nothing for minutes); beyond it the oldest are forgotten,
/// which only a recording that lasts that long without a frame would miss.
#[derive(Debug, Default)]
pub struct CaptureLog(std::sync::Mutex<std::collections::VecDeque<Capture>>);

const CAPTURE_LOG_LEN: usize = 4096;

impl CaptureLog {
    pub(super) fn push(&self, capture: Capture) {
        let mut log = self.0.lock().unwrap();
        if log.len() >= CAPTURE_LOG_LEN {
            log.pop_front();
        }
        log.push_back(capture);
    }

    pub(super) fn take(&self) -> Vec<Capture> {
        self.0.lock().unwrap().drain(..).collect()
    }
}

/// The live-source rules the entry's drop probe follows, set when the chain is built.
#[derive(Debug, Default)]
pub struct LateDrop {
    /// Live raw input: late frames are dropped rather than encoded.
    pub(super) enabled: AtomicBool,
    /// Upstream's minimum latency (ns): a frame is due at its running time plus this.
    pub(super) latency: AtomicU64,
    /// Live raw video: while nothing records, frames are not encoded at all.
    pub(super) skip_when_idle: AtomicBool,
    /// Frames were skipped: the next one encoded must be a keyframe.
    pub(super) skipped: AtomicBool,
    /// Frames dropped so far, for the warning.
    pub(super) dropped: AtomicU64,
    /// The entry's probe, there only while `enabled`: a frame kept as it is then costs
    /// no call into it.
    pub(super) probe: std::sync::Mutex<Option<gst::PadProbeId>>,
}

impl LateDrop {
    /// Whether a frame of running time `frame_rt` reaching the encoder at `now_rt` is
    /// dropped: it is more than `DROP_LEVEL` past due, so the machine cannot keep up
    /// and encoding it would only put the recording further behind.
    pub(super) fn drops(&self, frame_rt: u64, now_rt: u64) -> bool {
        self.enabled.load(Ordering::Relaxed)
            && is_too_late(frame_rt, now_rt, self.latency.load(Ordering::Relaxed))
    }
}

/// What a sink pad returns upstream for what its branch returned. Once a timed
/// recording has ended at its duration the stream is done, and upstream must see EOS
/// (or FLUSHING), never an error: an element of the branch that fails to take a frame
/// then (an encoder that already drained, a branch being shut down) is not a failure of
/// the pipeline, and a demuxer's queue would post "Internal data stream error" for it.
pub(super) fn flow_for_upstream(
    flow: Result<gst::FlowSuccess, gst::FlowError>,
    ended_by_duration: bool,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    match flow {
        Err(gst::FlowError::Eos | gst::FlowError::Flushing) => flow,
        Err(_) if ended_by_duration => Err(gst::FlowError::Eos),
        _ => flow,
    }
}

fn is_too_late(frame_rt: u64, now_rt: u64, latency: u64) -> bool {
    now_rt.saturating_sub(frame_rt.saturating_add(latency)) > DROP_LEVEL
}

impl Stream {
    /// Whether its chain is built (it may hold no element at all).
    pub(super) fn is_built(&self) -> bool {
        self.codec.is_some()
    }

    /// The kind by caps once known, else by the pad's name.
    pub(super) fn likely_kind(&self) -> Kind {
        self.kind.unwrap_or_else(|| {
            if self.pad.name().starts_with("audio") {
                Kind::Audio
            } else {
                Kind::Video
            }
        })
    }
}

#[derive(Default)]
pub struct State {
    pub(super) streams: Vec<Stream>,
    pub(super) next_stream_id: usize,
    /// What the element is doing: idle with its pre-record ring, recording, paused.
    pub(super) stage: Stage<Recording, (usize, gst::Buffer)>,
    pub(super) next_recording_id: u64,
    pub(super) last_bytes: u64,
    pub(super) last_dropped: u64,
    /// A timed recording started by `autostart` reached its duration in this run:
    /// upstream is done (see `flow_for_upstream`).
    pub(super) ended_by_duration: bool,
    /// When a stream of this run first told its format (for `orphans`).
    pub(super) first_caps_at: Option<std::time::Instant>,
    /// The periodic check for linked pads that will never get a stream.
    pub(super) orphan_check: Option<super::orphans::OrphanWatch>,
}

impl State {
    /// The web API's `state`.
    pub(super) fn recorder(&self) -> RecorderState {
        match self.stage.activity() {
            Activity::Idle(_) => RecorderState::Inactive,
            Activity::Recording(_) => RecorderState::Recording,
            Activity::Paused(_) => RecorderState::Paused,
        }
    }

    /// Hands the captures the streams logged to the current recording (or forgets
    /// them when none runs).
    pub(super) fn take_captures(&mut self) {
        let State { streams, stage, .. } = self;
        for stream in streams.iter() {
            let captures = stream.captures.take();
            if let Some(rec) = stage.recording_mut().filter(|_| !captures.is_empty()) {
                rec.captured(stream.id, &captures);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_frame_is_dropped_only_a_drop_level_past_due() {
        assert!(!is_too_late(5_000 * MS, 5_000 * MS, 0));
        assert!(
            !is_too_late(5_000 * MS, 6_000 * MS, 0),
            "a second late is kept"
        );
        assert!(is_too_late(5_000 * MS, 6_001 * MS, 0));
        // A network source's jitterbuffer delays every frame: that is not lateness.
        assert!(!is_too_late(5_000 * MS, 8_000 * MS, 2_000 * MS));
        assert!(is_too_late(5_000 * MS, 8_001 * MS, 2_000 * MS));
        // A frame stamped ahead of the clock is early, never late.
        assert!(!is_too_late(9_000 * MS, 5_000 * MS, 0));
    }

    #[test]
    fn after_the_duration_upstream_sees_eos_never_an_error() {
        use gst::{FlowError, FlowSuccess};
        for error in [
            FlowError::Error,
            FlowError::NotNegotiated,
            FlowError::NotLinked,
            FlowError::NotSupported,
            FlowError::CustomError,
        ] {
            assert_eq!(flow_for_upstream(Err(error), true), Err(FlowError::Eos));
            assert_eq!(
                flow_for_upstream(Err(error), false),
                Err(error),
                "still recording"
            );
        }
        for kept in [
            Err(FlowError::Eos),
            Err(FlowError::Flushing),
            Ok(FlowSuccess::Ok),
        ] {
            assert_eq!(flow_for_upstream(kept, true), kept);
        }
    }

    #[test]
    fn the_rule_applies_once_enabled() {
        let rule = LateDrop::default();
        assert!(!rule.drops(0, 10_000 * MS), "not a live raw stream");
        rule.enabled.store(true, Ordering::Relaxed);
        assert!(rule.drops(0, 10_000 * MS));
        rule.latency.store(9_500 * MS, Ordering::Relaxed);
        assert!(!rule.drops(0, 10_000 * MS));
    }
}
