//! A recording's plan, made when it starts from a copy of the settings and the streams
//! taking part: its limits, its files' writer, its tracks, and its effective type.

use std::sync::atomic::Ordering;

use gst::prelude::*;

use super::engine::{Limits, TrackSetup};
use super::mimetype::{Codec, RecordingType};
use super::recording::{audio_rate, Plan};
use super::retention::Policy;
use super::state::{SegmentAlign, Settings, Stream};
use super::timeline::Kind;
use super::writer::WriterConfig;

/// The plan of a recording that starts now with `settings`, and its effective mime
/// type (what `mime-type` reads back while it runs). The streams taking part are the
/// linked ones that have not ended.
pub(super) fn plan(settings: &Settings, streams: &[Stream]) -> (Plan, String) {
    let rtype = settings.recording_type();
    let taking_part: Vec<&Stream> = streams
        .iter()
        .filter(|s| !s.eos && s.pad.is_linked())
        .collect();
    let expected: Vec<usize> = taking_part.iter().map(|s| s.id).collect();
    let effective_type = effective_type(&rtype, streams, &expected);
    let plan = Plan {
        limits: Limits {
            duration: ms_to_ns(settings.duration_ms),
            file_duration: ms_to_ns(settings.max_file_duration_ms),
            file_size: (settings.max_file_size > 0).then_some(settings.max_file_size),
            align_to_clock: settings.segment_align == SegmentAlign::Clock,
            tracks_start_together: !rtype.container.tracks_start_late(),
            audio_head_cut: rtype.container.audio_head_cut(),
        },
        writer: WriterConfig {
            container: rtype.container,
            location: settings.location.clone(),
            timeslice: (settings.timeslice_ms > 0)
                .then(|| gst::ClockTime::from_mseconds(u64::from(settings.timeslice_ms))),
            cluster_duration: gst::ClockTime::from_mseconds(settings.keyframe_interval_ms()),
            retention: Policy {
                max_files: settings.max_files,
                max_total_bytes: settings.max_total_bytes,
                min_free_bytes: settings.min_free_bytes,
                max_age: settings.max_file_age_ms.saturating_mul(1_000_000),
            },
        },
        tracks: taking_part
            .iter()
            .map(|s| {
                let kind = s.likely_kind();
                let setup = TrackSetup {
                    id: s.id,
                    kind,
                    live: s.live,
                    caps_known: s.encoded_caps.is_some(),
                    rate: s
                        .encoded_caps
                        .as_ref()
                        .map_or(48_000, |c| audio_rate(kind, c)),
                    latency: s.late_drop.latency.load(Ordering::Relaxed),
                };
                (setup, s.encoded_caps.clone())
            })
            .collect(),
        audio_gaps: streams.iter().map(|s| s.audio_gaps.clone()).collect(),
        silence: streams.iter().map(|s| s.silence.clone()).collect(),
    };
    (plan, effective_type)
}

fn ms_to_ns(ms: u64) -> Option<u64> {
    (ms > 0).then(|| ms.saturating_mul(1_000_000))
}

fn effective_type(rtype: &RecordingType, streams: &[Stream], expected: &[usize]) -> String {
    let mut video = None;
    let mut audio = None;
    for s in streams.iter().filter(|s| expected.contains(&s.id)) {
        match (s.codec, s.likely_kind()) {
            (Some(Codec::Video(v)), _) => video = Some(v),
            (Some(Codec::Audio(a)), _) => audio = Some(a),
            (None, Kind::Video) => video = video.or(rtype.video_codec()),
            (None, Kind::Audio) => audio = audio.or(rtype.audio_codec()),
        }
    }
    rtype.effective(video, audio)
}
