//! GObject and GStreamer glue of `mediarecorder`: the trait impls, each a hand-off.
//! The work is done elsewhere: properties in `properties`, state changes in `running`,
//! the web actions in `recorder`, encoded frames in `frames` (decided by `stage`),
//! what a recording asks for in `followups`, one recording and its files in
//! `recording`, pads and branches in `pads`, events in `events`.

use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::branch;
use super::disk_syncs::DiskSyncs;
use super::dispatcher::Dispatcher;
use super::state::{self, BitrateMode, RecorderState, SegmentAlign, Settings, State};

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "mediarecorder",
        gst::DebugColorFlags::empty(),
        Some("MediaRecorder element"),
    )
});

/// Lock order: `settings` before `state` before a file's session slot (`opening`)
/// before its chunk cutter; a thread that needs both of the first two takes the
/// settings first (or drops them before taking `state`). None is held while emitting a
/// signal, notifying, posting a message or asking an encoder for a keyframe: what the
/// stage decides under `state` comes back as followups, carried out after unlocking.
/// Encoded frames are handed to a file (an appsrc queue, or memory while the file opens;
/// neither blocks) under `state`, so a recording cannot be finalized between placing a
/// frame and writing it. Files are opened on the dispatcher thread, never under `state`.
pub struct MediaRecorder {
    pub(super) settings: Mutex<Settings>,
    pub(super) state: Mutex<State>,
    pub(super) dispatcher: Dispatcher,
    /// The files' once-a-second syncs, apart from `dispatcher`'s jobs.
    pub(super) disk_syncs: DiskSyncs,
    /// The state a handler sees while an event is being emitted (see `visible_state`).
    pub(super) event_state: Mutex<Option<(std::thread::ThreadId, RecorderState)>>,
    /// Index for the next file of a `location` pattern, across recordings.
    pub(super) next_file_index: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

#[glib::object_subclass]
impl ObjectSubclass for MediaRecorder {
    const NAME: &'static str = "GstMediaRecorder";
    type Type = super::MediaRecorder;
    type ParentType = gst::Bin;

    fn new() -> Self {
        MediaRecorder {
            settings: Mutex::default(),
            state: Mutex::default(),
            dispatcher: Dispatcher::new("mediarecorder"),
            disk_syncs: DiskSyncs::new("mediarecorder"),
            event_state: Mutex::default(),
            next_file_index: Default::default(),
        }
    }
}

fn action<F>(name: &'static str, f: F) -> glib::subclass::Signal
where
    F: Fn(&MediaRecorder) -> bool + Send + Sync + 'static,
{
    glib::subclass::Signal::builder(name)
        .action()
        .return_type::<bool>()
        .class_handler(move |args| {
            let obj = args[0].get::<super::MediaRecorder>().ok()?;
            let imp = obj.imp();
            Some(imp.guarded(name, || false, || f(imp)).to_value())
        })
        .build()
}

impl MediaRecorder {
    /// Runs `f`, called from C (a property, an action): a panic there would abort the
    /// process, so it becomes an element error and `fallback` instead.
    pub(super) fn guarded<T>(
        &self,
        what: &str,
        fallback: impl FnOnce() -> T,
        f: impl FnOnce() -> T,
    ) -> T {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(value) => value,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                gst::error!(CAT, imp = self, "Panic in {what}: {why}");
                gst::element_imp_error!(
                    self,
                    gst::LibraryError::Failed,
                    ("Internal error in mediarecorder ({}): {}", what, why)
                );
                fallback()
            }
        }
    }
}

impl ObjectImpl for MediaRecorder {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("File location")
                    .blurb(
                        "File the recording is written to (WebM, finalized with Duration and \
                         Cues). None: data only through 'dataavailable'. May change only \
                         while inactive; applies to the next recording",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("duration")
                    .nick("Duration (ms)")
                    .blurb(
                        "Milliseconds of media to record, then finalize and stop (paused time \
                         does not count). 0 = until stopped or end of stream",
                    )
                    .maximum(state::MAX_DURATION_MS)
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("mime-type")
                    .nick("MIME type")
                    .blurb(
                        "Requested type, as MediaRecorder's mimeType: video/webm, audio/webm, \
                         video/x-matroska or video/mp4 with an optional codecs parameter, e.g. \
                         'video/webm;codecs=vp9,opus'. Empty: video/webm;codecs=vp8,opus. \
                         While recording it reads back the effective type with codecs",
                    )
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("video-bits-per-second")
                    .nick("Video bitrate (bit/s)")
                    .blurb("Constant video bitrate; 0 = automatic by resolution and frame rate")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("audio-bits-per-second")
                    .nick("Audio bitrate (bit/s)")
                    .blurb("Audio bitrate; 0 = automatic by channel count (64 kbit/s a channel)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("bits-per-second")
                    .nick("Total bitrate (bit/s)")
                    .blurb(
                        "Total bitrate split between video and audio as the web API does \
                         (audio 128 kbit/s, video the rest; all to the only kind when one kind \
                         is recorded). Overrides the two per-kind rates; 0 = unset",
                    )
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("timeslice")
                    .nick("Timeslice (ms)")
                    .blurb(
                        "Emit 'dataavailable' each time this much media is recorded; each \
                         chunk after the first starts with a keyframe cluster. 0 = one chunk \
                         at the end",
                    )
                    .maximum(u32::MAX)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("autostart")
                    .nick("Start automatically")
                    .blurb(
                        "Start recording when media first arrives (as gst-launch-1.0 needs). \
                         FALSE: inactive, dropping media, until 'start-recording'",
                    )
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default(
                    "audio-bitrate-mode",
                    BitrateMode::Variable,
                )
                .nick("Audio bitrate mode")
                .blurb("constant or variable audio bitrate, as MediaRecorder's audioBitrateMode")
                .mutable_ready()
                .build(),
                glib::ParamSpecUInt64::builder("video-keyframe-interval-duration")
                    .nick("Keyframe interval (ms)")
                    .blurb(
                        "Longest time between video keyframes; 0 = 2 s, or the timeslice when \
                         shorter. Exclusive with video-keyframe-interval-count",
                    )
                    .maximum(state::MAX_DURATION_MS)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("video-keyframe-interval-count")
                    .nick("Keyframe interval (frames)")
                    .blurb(
                        "Most frames between video keyframes; 0 = by duration. Exclusive with \
                         video-keyframe-interval-duration",
                    )
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecObject::builder::<gst::Element>("video-encoder")
                    .nick("Video encoder")
                    .blurb(
                        "Encoder to use instead of the automatic choice (e.g. a hardware one), \
                         used as configured but for keyframe spacing. Its output must suit \
                         the container",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecObject::builder::<gst::Element>("audio-encoder")
                    .nick("Audio encoder")
                    .blurb(
                        "Audio encoder to use instead of the automatic choice, used as configured",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("pre-record")
                    .nick("Pre-record (ms)")
                    .blurb(
                        "While inactive, keep this much of the most recent encoded media (whole \
                         GOPs: up to one keyframe interval more) and begin the next recording \
                         with it. The encoders run while inactive. 0 = off",
                    )
                    .maximum(state::MAX_DURATION_MS)
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("pre-record-bytes")
                    .nick("Pre-record bytes")
                    .blurb("Bytes of encoded media held for pre-record")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("max-file-duration")
                    .nick("Segment duration (ms)")
                    .blurb(
                        "Finalize the file and start the next one (at a keyframe forced at \
                         the boundary) after this much media; location needs an index such \
                         as %05d. 0 = one file",
                    )
                    .maximum(state::MAX_DURATION_MS)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("max-file-size")
                    .nick("Segment size (bytes)")
                    .blurb(
                        "Start the next file at the first keyframe once a file holds this \
                         many bytes. 0 = no limit",
                    )
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-files")
                    .nick("Files kept")
                    .blurb(
                        "Loop recording: when a recording opens a file beyond this count, its \
                         own oldest file is deleted (never any other). 0 = keep all",
                    )
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("segment-align", SegmentAlign::None)
                    .nick("Segment alignment")
                    .blurb(
                        "Where segment files begin: 'none', max-file-duration after the last; \
                         'clock', where the wall clock is a multiple of max-file-duration \
                         (60000: at :00 of every minute; the first file is shorter), the \
                         boundary keyframe forced at that moment. Date fields in location \
                         name each file by its own start",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("max-total-bytes")
                    .nick("Bytes kept")
                    .blurb(
                        "Retention: when a recording's files together (the one being written \
                         included) exceed this, its own oldest finished files are deleted \
                         (never the one being written, never any other file). 0 = no limit",
                    )
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("min-free-bytes")
                    .nick("Free bytes kept")
                    .blurb(
                        "Retention: when the file system has less free space than this as a \
                         file is finished, the recording's own oldest finished files are \
                         deleted until it has. 0 = no limit",
                    )
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("max-file-age")
                    .nick("File age kept (ms)")
                    .blurb(
                        "Retention: a recording's own finished files older than this are \
                         deleted, checked as each file is finished. 0 = no limit",
                    )
                    .maximum(state::MAX_DURATION_MS)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("state", RecorderState::Inactive)
                    .nick("State")
                    .blurb("inactive, recording or paused, as MediaRecorder.state")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("bytes-written")
                    .nick("Bytes written")
                    .blurb("Bytes of the current (or last) recording written so far")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("frames-dropped")
                    .nick("Frames dropped")
                    .blurb(
                        "Frames dropped in the current (or last) recording: raw frames \
                         of a live source the encoder could not keep up with, and encoded \
                         frames a writer more than 32 MiB behind could not take",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.guarded(
            pspec.name(),
            || (),
            || self.set_setting(pspec.name(), value),
        );
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        self.guarded(
            pspec.name(),
            || pspec.default_value().clone(),
            || self.get_setting(pspec.name()),
        )
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        use glib::subclass::Signal;
        static SIGNALS: LazyLock<Vec<Signal>> = LazyLock::new(|| {
            vec![
                Signal::builder("start").run_last().build(),
                Signal::builder("stop").run_last().build(),
                Signal::builder("pause").run_last().build(),
                Signal::builder("resume").run_last().build(),
                Signal::builder("dataavailable")
                    .param_types([gst::Buffer::static_type()])
                    .run_last()
                    .build(),
                Signal::builder("file-closed")
                    .param_types([gst::Structure::static_type()])
                    .run_last()
                    .build(),
                Signal::builder("error")
                    .param_types([glib::Error::static_type()])
                    .run_last()
                    .build(),
                action("start-recording", |imp| imp.start_recording()),
                action("stop-recording", |imp| imp.stop_recording()),
                action("pause-recording", |imp| imp.pause_recording()),
                action("resume-recording", |imp| imp.resume_recording()),
                action("request-data", |imp| imp.request_data()),
                Signal::builder("is-type-supported")
                    .action()
                    .param_types([String::static_type()])
                    .return_type::<bool>()
                    .class_handler(|args| {
                        let ty = args[1].get::<Option<String>>().ok().flatten();
                        Some(branch::is_type_supported(ty.as_deref().unwrap_or("")).to_value())
                    })
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }
}

impl GstObjectImpl for MediaRecorder {}

impl ElementImpl for MediaRecorder {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Media Recorder",
                "Sink/Muxer/Encoder/Bin",
                "Records what is linked into it to a finalized, seekable WebM file, for a \
                 timed duration or until stopped, with the web MediaRecorder's events \
                 (start, dataavailable, pause, resume, stop, error)",
                "gst-plugin-mediarecorder developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let video = gst::Caps::from_str_or_any(
                "video/x-raw; image/jpeg; video/x-vp8; video/x-vp9; video/x-av1; video/x-h264; \
                 video/x-h265",
            );
            let audio = gst::Caps::from_str_or_any(
                "audio/x-raw; audio/x-opus; audio/x-vorbis; audio/mpeg, mpegversion=(int)4; \
                 audio/x-mulaw; audio/x-alaw; audio/mpeg, mpegversion=(int)1",
            );
            vec![
                gst::PadTemplate::new(
                    "video_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &video,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "audio_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &audio,
                )
                .unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        self.add_stream(templ, name)
    }

    fn release_pad(&self, pad: &gst::Pad) {
        self.remove_stream(pad);
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::NullToReady {
            self.check_settings()?;
        }
        if transition == gst::StateChange::ReadyToPaused {
            self.prepare_to_run()?;
        }
        if transition == gst::StateChange::PausedToReady {
            self.stop_watching_for_orphans();
        }
        let result = self.parent_change_state(transition)?;
        if transition == gst::StateChange::ReadyToPaused {
            self.watch_for_orphans();
        }
        if transition == gst::StateChange::PausedToReady {
            // Shutdown without EOS: the muxer is not part of the pipeline going down,
            // so the file is finalized here with everything recorded so far.
            self.finish_on_shutdown();
        }
        Ok(result)
    }
}

impl BinImpl for MediaRecorder {
    fn handle_message(&self, message: gst::Message) {
        if let gst::MessageView::Error(err) = message.view() {
            self.child_failed(err.error());
        }
        self.parent_handle_message(message)
    }
}

trait CapsFromStr {
    fn from_str_or_any(s: &str) -> gst::Caps;
}

impl CapsFromStr for gst::Caps {
    fn from_str_or_any(s: &str) -> gst::Caps {
        s.parse().unwrap_or_else(|_| gst::Caps::new_any())
    }
}
