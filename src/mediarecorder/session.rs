//! One muxed file: the tracks (see `feed`) -> muxer -> file sink, in a pipeline of its
//! own.
//!
//! The muxer lives outside the user's pipeline on purpose: it can be finalized while
//! the user's pipeline shuts down without EOS (a sink in a pipeline going to NULL
//! cannot preroll the muxer's last writes), and a new file can start while media keeps
//! flowing (repeated recordings, and later segments). The encoded frames reach it
//! from the element's own stage, where they are restamped to start at 0.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst_base::prelude::*;

use super::batch::{Batch, MAX_BATCH_BYTES, WINDOW_NS};
use super::chunks::{Chunk, ChunkCutter, Mark};
use super::codecs::{
    aac_is_low_complexity, aac_silence, make, opus_silence, AAC_FRAME_SAMPLES, OPUS_SILENCE_NS,
};
use super::containers::{Container, OpusPreSkip};
use super::dispatcher::Dispatcher;
use super::displaymatrix;
use super::feed::{end_of, start_of, Taken, WentIn};
use super::finalize::{wait_while_progressing, Busy, Progress, Watch, FINALIZE_CAP};
use super::muxers::{first_opus_trim, late_audio_lead_in, matroska_opus_start, Version};
use super::timeline::Kind;

/// What a session reports from its own threads.
pub enum SessionEvent {
    /// A timeslice chunk is complete and held in the cutter: take it from there.
    Chunks(ReadyChunks),
    /// Writing failed (disk full, I/O error): the error names the path and the cause.
    Error(glib::Error, Option<String>),
    /// The writer of `location` fell behind: frames were dropped (`dropped` so far in
    /// the recording), past `MAX_QUEUED_BYTES` waiting. Sent at the first and at every
    /// hundredth.
    Behind {
        location: Option<PathBuf>,
        dropped: u64,
    },
    /// Finalizing `location`, the muxer took nothing for `stall`: `frames` that
    /// waited for it were left out of the file.
    LeftOut {
        location: Option<PathBuf>,
        frames: u64,
        stall: Duration,
    },
}

/// Counts a frame the writer could not take in `dropped` (the recording's count); at
/// the first and every hundredth, logs it and tells `on_event` (`SessionEvent::Behind`),
/// naming the file `location` gives.
pub fn count_dropped(
    dropped: &AtomicU64,
    on_event: &OnEvent,
    location: impl FnOnce() -> Option<PathBuf>,
) {
    let dropped = dropped.fetch_add(1, Ordering::Relaxed) + 1;
    if dropped == 1 || dropped.is_multiple_of(100) {
        let location = location();
        gst::warning!(
            gst::CAT_DEFAULT,
            "The writer of {location:?} is behind: {dropped} frames dropped"
        );
        on_event(SessionEvent::Behind { location, dropped });
    }
}

pub struct SessionConfig {
    pub container: Container,
    /// The file's name, for messages.
    pub location: Option<PathBuf>,
    /// The name the file sink opens (the claimed file through `/proc/self/fd`).
    pub sink_location: Option<PathBuf>,
    pub timeslice: Option<gst::ClockTime>,
    pub cluster_duration: gst::ClockTime,
    /// The GStreamer version running (`gst::version()`): what its muxers need.
    pub gst_version: Version,
    /// Counts frames dropped because the writer fell behind (shared by a recording's
    /// files).
    pub dropped: Arc<AtomicU64>,
    /// Counts the steps of the recording's files (see `finalize`).
    pub progress: Arc<Progress>,
}

/// How long a track source's error waits for the error that caused it.
const SECONDARY_ERROR_WAIT: Duration = Duration::from_millis(300);

pub type KeepBytes = Arc<dyn Fn() -> bool + Send + Sync>;
/// Called with the cutter still locked, so chunks are handed on in the order they
/// were cut: the callback must only queue work.
pub type OnEvent = Arc<dyn Fn(SessionEvent) + Send + Sync>;

type Done = Arc<(Mutex<Option<Result<(), glib::Error>>>, Condvar)>;

/// The timeslice chunks a session's cutter holds (see `ChunkCutter::hold`).
pub struct ReadyChunks(Arc<Mutex<ChunkCutter>>);

impl ReadyChunks {
    /// The chunks not handed on yet, oldest first (none when another taker was first).
    pub fn take(&self) -> Vec<Chunk> {
        self.0.lock().unwrap().take_ready()
    }
}

pub struct FinishReport {
    /// Timeslice chunks cut while the file was finished and not handed on yet: they
    /// come before `chunk`.
    pub earlier: Vec<Chunk>,
    pub chunk: Chunk,
    /// Bytes of the file on disk (of the byte stream when there is no file).
    pub bytes: u64,
    /// False when the muxer did not confirm its last write in time, or writing failed.
    pub finalized: bool,
    /// Why writing failed, naming the file and the system's reason.
    pub error: Option<glib::Error>,
}

/// Encoded media waiting for a track's muxer, beyond which frames are dropped rather
/// than held: a writer slower than the encoder (a stalled network share, a dying SD
/// card) must not grow memory without bound. 32 MiB is minutes of a camera's media.
pub const MAX_QUEUED_BYTES: u64 = 32 * 1024 * 1024;

/// The media each pad of an aggregator muxer holds before a frame pushed to it waits
/// (its `latency`): a few hand-overs (`batch`) of every track. With none, a pad holds
/// one frame, so a batch went in a frame at a time, waking the muxer's thread per
/// frame (one camera: 433 against 212 context switches a second). Non-live, the
/// muxer never stops waiting for a track.
const MUXER_QUEUE_NS: u64 = 3 * WINDOW_NS;
/// How much of that a track fills: a batch's span less, since what the muxer took
/// is known a little late.
const ROOM_NS: u64 = MUXER_QUEUE_NS - WINDOW_NS;

/// How a track's frames reach the muxer (see `feed`).
enum Input {
    /// An `appsrc`, whose thread pushes.
    Source(gst_app::AppSrc),
    /// A pad of ours linked to the aggregator muxer's, pushed on the caller's thread
    /// while the muxer's queue for the track has room.
    Pad { pad: gst::Pad, taken: Arc<Taken> },
}

/// What waits to go to the muxer, in order.
enum Item {
    Frame(gst::Buffer),
    Caps(gst::Caps),
    Event(gst::Event),
}

struct Track {
    stream: usize,
    video: bool,
    input: Input,
    state: Mutex<TrackState>,
    /// `TrackState::due`, for the muxer's thread: frames wait for room.
    due: AtomicBool,
    /// A job that sends what waits is queued (see `wake_when_taken`).
    drain_queued: AtomicBool,
}

impl Track {
    /// Bytes of the track the muxer holds and has not written.
    fn bytes_in_muxer(&self, st: &TrackState) -> u64 {
        match &self.input {
            Input::Source(src) => src.current_level_bytes(),
            Input::Pad { taken, .. } => st.went_in.bytes_held(taken),
        }
    }

    /// Hands what waits to the muxer, in order: all of it to an `appsrc`, and to a
    /// pad what fits (see `feed`). Returns false when the muxer refused it (its
    /// pipeline failed or stopped).
    fn send(&self, st: &mut TrackState) -> bool {
        let mut frames = Vec::new();
        let mut ok = true;
        while let Some(item) = st.waiting.pop_front() {
            let item = match item {
                Item::Frame(buffer) => {
                    let fits = match &self.input {
                        Input::Source(_) => true,
                        Input::Pad { taken, .. } => {
                            st.went_in.fits(taken, end_of(&buffer), ROOM_NS)
                        }
                    };
                    if fits {
                        st.waiting_bytes -= buffer.size() as u64;
                        if let Input::Pad { pad, .. } = &self.input {
                            let start = start_of(&buffer);
                            ok &= Self::begin_segment(pad, st, start);
                            st.went_in.went_in(buffer.size() as u64, start);
                        }
                        frames.push(buffer);
                        continue;
                    }
                    st.waiting.push_front(Item::Frame(buffer));
                    break;
                }
                other => other,
            };
            ok &= Self::send_frames(&self.input, &mut frames);
            match (&self.input, item) {
                (Input::Source(src), Item::Caps(caps)) => src.set_caps(Some(&caps)),
                (Input::Source(src), Item::Event(event)) => ok &= src.send_event(event),
                (Input::Pad { pad, .. }, Item::Caps(caps)) => {
                    ok &= pad.push_event(gst::event::Caps::new(&caps));
                }
                (Input::Pad { pad, .. }, Item::Event(event)) => {
                    let gap_at = match event.view() {
                        gst::EventView::Gap(gap) => Some(gap.get().0.nseconds()),
                        _ => None,
                    };
                    ok &= Self::begin_segment(pad, st, gap_at);
                    if gap_at.is_some() {
                        // The aggregator queues a gap as an empty frame, taken like
                        // any other: uncounted, the queue would look empty too soon.
                        st.went_in.went_in(0, gap_at);
                    }
                    ok &= pad.push_event(event)
                }
                (_, Item::Frame(_)) => unreachable!("frames are taken above"),
            }
        }
        ok &= Self::send_frames(&self.input, &mut frames);
        if st.waiting.is_empty() {
            st.due = false;
            st.batch.clear();
        }
        self.due.store(st.due, Ordering::Relaxed);
        ok
    }

    /// Sends the track's segment, once, before its first frame or event, positioned
    /// where that starts (`at`). Until an aggregator takes a track's first frame, it
    /// counts what the track's pad holds from the segment's position (GStreamer
    /// 1.26): with the segment at 0, video starting 2 s into a file filled the pad
    /// with one frame, its second frame waited for the first to be written, which
    /// waited for audio that the waiting thread held up.
    fn begin_segment(pad: &gst::Pad, st: &mut TrackState, at: Option<u64>) -> bool {
        if st.segment_sent {
            return true;
        }
        st.segment_sent = true;
        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        segment.set_position(at.map(gst::ClockTime::from_nseconds));
        pad.push_event(gst::event::Segment::new(&segment))
    }

    fn send_frames(input: &Input, frames: &mut Vec<gst::Buffer>) -> bool {
        let sent = match (frames.len(), input) {
            (0, _) => return true,
            (1, Input::Source(src)) => src.push_buffer(frames.remove(0)),
            (1, Input::Pad { pad, .. }) => pad.push(frames.remove(0)),
            (_, Input::Source(src)) => src.push_buffer_list(frames.drain(..).collect()),
            (_, Input::Pad { pad, .. }) => pad.push_list(frames.drain(..).collect()),
        };
        sent.is_ok()
    }
}

/// A track's side of the session, under one lock: taken once per frame, and held
/// while its frames go to the muxer, so they go in order.
struct TrackState {
    /// The caps the track has last been given (`None` while they are deferred).
    caps: Option<gst::Caps>,
    /// Opus caps not set yet, for a muxer that takes the pre-skip once
    /// (`OpusPreSkip::OpusBox`); set with the pre-skip of the track's first frame.
    deferred_caps: Option<gst::Caps>,
    /// Where the muxer writes Opus blocks after a CodecDelay: the pre-skip its frames
    /// are written after, kept here as it is set rather than read from the caps per
    /// frame; 0 for other tracks and containers.
    written_delay: u16,
    /// Where the muxer writes a CodecDelay: the trim (samples) of an Opus track's
    /// first frame, set by `set_opus_pre_skip` and applied with that frame.
    first_trim: Option<u16>,
    /// A frame was dropped, so video waits for the next keyframe.
    resync: bool,
    /// Until the first frame: the silence that fills the track's start when that
    /// frame comes late, where the muxer would start it at the file's start (see
    /// `late_audio_lead_in`).
    lead_in: Option<Silence>,
    /// When the waiting frames are handed over (see `batch`).
    batch: Batch,
    waiting: VecDeque<Item>,
    waiting_bytes: u64,
    /// The batch is complete: what waits goes as soon as it fits.
    due: bool,
    /// `Input::Pad`: what went in, the segment sent (after the first caps).
    went_in: WentIn,
    segment_sent: bool,
    ended: bool,
}

impl TrackState {
    fn wait(&mut self, item: Item) {
        if let Item::Frame(buffer) = &item {
            self.waiting_bytes += buffer.size() as u64;
        }
        self.waiting.push_back(item);
    }

    fn set_caps(&mut self, caps: gst::Caps) {
        self.caps = Some(caps.clone());
        self.wait(Item::Caps(caps));
    }
}

pub struct MuxSession {
    pipeline: gst::Pipeline,
    location: Option<PathBuf>,
    tracks: Vec<Arc<Track>>,
    /// How the container's muxer writes the Opus pre-skip.
    opus: OpusPreSkip,
    dropped: Arc<AtomicU64>,
    cutter: Arc<Mutex<ChunkCutter>>,
    on_event: OnEvent,
    done: Done,
    /// Buffers and events that reached the sink: what tells a slow finalization from
    /// a stuck one.
    progress: Arc<Progress>,
}

/// Whether the muxer's push into the sink (a write, on a slow disk seconds long) has
/// not returned: looked at only when asked, with an idle probe on the muxer's source
/// pad, so nothing is done per frame. A probe of an earlier look that has not run yet
/// means the push it found is still under way.
fn write_under_way(pad: &gst::Pad) -> Busy {
    let pad = pad.downgrade();
    let unfinished = Arc::new(AtomicBool::new(false));
    Box::new(move || {
        if unfinished.load(Ordering::Acquire) {
            return true;
        }
        let Some(pad) = pad.upgrade() else {
            return false;
        };
        unfinished.store(true, Ordering::Release);
        let finished = unfinished.clone();
        // Runs here and now when the pad is idle, else once the push returns.
        pad.add_probe(gst::PadProbeType::IDLE, move |_, _| {
            finished.store(false, Ordering::Release);
            gst::PadProbeReturn::Remove
        });
        unfinished.load(Ordering::Acquire)
    })
}

/// A silent packet of an audio track, and how long it plays (ns).
#[derive(Clone, Copy)]
struct Silence {
    packet: &'static [u8],
    duration: u64,
}

impl Silence {
    /// For AAC-LC caps of one or two channels (what `aac_silence` makes), and Opus
    /// of one or two channels (`opus_silence`).
    fn of(caps: &gst::CapsRef) -> Option<Silence> {
        let s = caps.structure(0)?;
        let channels = u32::try_from(s.get::<i32>("channels").ok()?).ok()?;
        if s.name() == "audio/x-opus" {
            return Some(Silence {
                packet: opus_silence(channels)?,
                duration: OPUS_SILENCE_NS,
            });
        }
        if s.name() != "audio/mpeg" || s.get::<i32>("mpegversion").ok()? != 4 {
            return None;
        }
        let codec_data = s.get::<gst::Buffer>("codec_data").ok()?;
        if !aac_is_low_complexity(&codec_data.map_readable().ok()?) {
            return None;
        }
        let rate = u64::try_from(s.get::<i32>("rate").ok()?).ok()?.max(1);
        Some(Silence {
            packet: aac_silence(channels)?,
            duration: AAC_FRAME_SAMPLES * 1_000_000_000 / rate,
        })
    }
}

/// The stream headers of Opus caps and the bytes of the first, the OpusHead.
fn opus_head(caps: &gst::CapsRef) -> Option<(gst::ArrayRef<'_>, Vec<u8>)> {
    let s = caps.structure(0)?;
    if s.name() != "audio/x-opus" {
        return None;
    }
    let headers = s.get::<gst::ArrayRef>("streamheader").ok()?;
    let head = headers.iter().next()?.get::<gst::Buffer>().ok()?;
    let head = head.map_readable().ok()?.to_vec();
    (head.len() >= 12 && head.starts_with(b"OpusHead")).then_some((headers, head))
}

/// The OpusHead's pre-skip (samples at 48 kHz, bytes 10-11, little endian) in Opus
/// caps.
fn opus_pre_skip(caps: &gst::CapsRef) -> Option<u16> {
    opus_head(caps).map(|(_, head)| u16::from_le_bytes([head[10], head[11]]))
}

/// Opus caps with the OpusHead's pre-skip replaced.
fn with_pre_skip(caps: &gst::Caps, samples: u16) -> Option<gst::Caps> {
    let (headers, mut head) = opus_head(caps)?;
    head[10..12].copy_from_slice(&samples.to_le_bytes());
    let mut first = gst::Buffer::from_mut_slice(head);
    first.get_mut()?.set_flags(gst::BufferFlags::HEADER);
    let patched = std::iter::once(Some(first.to_send_value()))
        .chain(headers.iter().skip(1).map(|v| {
            v.get::<gst::Buffer>()
                .ok()
                .map(|b: gst::Buffer| b.to_send_value())
        }))
        .collect::<Option<Vec<_>>>()?;
    let mut caps = caps.clone();
    caps.make_mut()
        .structure_mut(0)?
        .set("streamheader", gst::Array::from_values(patched));
    Some(caps)
}

/// Write errors from the sink say what failed ("Error while seeking in file") but not
/// always where or why: the user needs the path and the system's reason.
fn name_the_file(
    error: glib::Error,
    debug: Option<&str>,
    location: Option<&std::path::Path>,
) -> glib::Error {
    let (Some(kind), Some(path)) = (error.kind::<gst::ResourceError>(), location) else {
        return error;
    };
    let cause = debug
        .and_then(|d| d.split("system error: ").nth(1))
        .map(|c| format!(" ({})", c.trim()))
        .unwrap_or_default();
    glib::Error::new(
        kind,
        &format!(
            "Writing the recording to '{}' failed: {}{cause}",
            path.display(),
            error.message()
        ),
    )
}

/// Where a buffer of `container`'s muxer stands in its stream.
fn mark_of(container: Container, buffer: &gst::BufferRef, data: &[u8]) -> Mark {
    let flags = buffer.flags();
    container.mark(
        buffer.pts().map(gst::ClockTime::nseconds),
        !flags.contains(gst::BufferFlags::DELTA_UNIT),
        flags.contains(gst::BufferFlags::HEADER),
        data,
    )
}

impl MuxSession {
    /// Builds the pipeline and opens the file. Fails, with nothing written, when the
    /// muxer is missing or the location cannot be opened.
    pub fn start(
        config: &SessionConfig,
        tracks: &[(usize, Kind, gst::Caps)],
        keep_bytes: KeepBytes,
        on_event: OnEvent,
    ) -> Result<Self, glib::Error> {
        let pipeline = gst::Pipeline::with_name("mediarecorder-mux");
        let muxer = make(config.container.muxer().factory)?;
        let settings = config
            .container
            .muxer_settings(config.cluster_duration, config.location.is_none());
        for (name, value) in settings {
            muxer.set_property_from_value(name, &value);
        }
        let opus = config.container.opus_pre_skip(config.gst_version);
        let sink = match &config.location {
            Some(path) => {
                let sink = make("filesink")?;
                let opened = config.sink_location.as_ref().unwrap_or(path);
                sink.set_property("location", opened.to_string_lossy().as_ref());
                // Every buffer the muxer writes reaches the file system at once, so a
                // killed process loses only what the muxer still holds (at most the
                // frame being written), however low the bitrate: with the default
                // 64 KiB buffer a low-motion camera lost its first seconds.
                sink.set_property_from_str("buffer-mode", "unbuffered");
                sink
            }
            None => {
                let sink = make("fakesink")?;
                sink.set_property("sync", false);
                sink
            }
        };
        sink.set_property("async", false);
        pipeline
            .add_many([&muxer, &sink])
            .and_then(|_| muxer.link(&sink))
            .map_err(|e| glib::Error::new(gst::CoreError::Negotiation, &e.to_string()))?;

        // An aggregator (mp4mux; matroskamux too in GStreamer 1.26) takes frames on the
        // caller's thread (see `feed`).
        let direct = muxer.is::<gst_base::Aggregator>();
        if direct {
            muxer.set_property("latency", MUXER_QUEUE_NS);
        }
        let window = if config.timeslice.is_some() {
            // Frames for timeslice chunks go at once: a chunk is cut from what
            // reached the muxer.
            0
        } else {
            WINDOW_NS
        };
        let mut built = Vec::new();
        let drainer = Arc::new(Dispatcher::new("mediarecorder"));
        for (stream, kind, caps) in tracks {
            let (caps, matrix) = displaymatrix::take_mark(caps);
            if let Some(matrix) = matrix {
                Self::write_display_matrix(&muxer, matrix);
            }
            let template = match kind {
                Kind::Video => "video_%u",
                Kind::Audio => "audio_%u",
            };
            let cannot_store = || {
                glib::Error::new(
                    gst::StreamError::Format,
                    &format!(
                        "{} cannot store {}",
                        config.container.muxer().factory,
                        caps.structure(0).map(|s| s.name().as_str()).unwrap_or("?")
                    ),
                )
            };
            let sink_pad = muxer
                .request_pad_simple(template)
                .ok_or_else(cannot_store)?;
            // Opus caps for a muxer that takes the pre-skip once, in the caps (see
            // `OpusPreSkip::OpusBox`), wait for the track's first frame.
            let deferred = opus_pre_skip(&caps).is_some() && opus.delayed_order().is_none();
            let input = if direct {
                let pad = gst::Pad::builder(gst::PadDirection::Src)
                    .name(format!("track{stream}"))
                    .build();
                let taken = Arc::new(Taken::default());
                let linked = pad.link(&sink_pad).is_ok() && pad.set_active(true).is_ok();
                linked.then_some(()).ok_or_else(cannot_store)?;
                Input::Pad { pad, taken }
            } else {
                let src = gst_app::AppSrc::builder()
                    .name(format!("track{stream}"))
                    .format(gst::Format::Time)
                    .is_live(false)
                    .max_bytes(0)
                    .build();
                pipeline
                    .add(&src)
                    .map_err(|e| glib::Error::new(gst::CoreError::Failed, &e.to_string()))?;
                let linked = src
                    .static_pad("src")
                    .is_some_and(|src_pad| src_pad.link(&sink_pad).is_ok());
                linked.then_some(()).ok_or_else(cannot_store)?;
                Input::Source(src)
            };
            let late_start_lost = !config.container.tracks_start_late();
            let written_delay = opus
                .delayed_order()
                .and_then(|_| opus_pre_skip(&caps))
                .unwrap_or(0);
            let mut state = TrackState {
                caps: None,
                deferred_caps: deferred.then(|| caps.clone()),
                written_delay,
                first_trim: None,
                resync: false,
                lead_in: Silence::of(&caps).filter(|_| late_start_lost && *kind == Kind::Audio),
                batch: Batch::new(window, MAX_BATCH_BYTES),
                waiting: VecDeque::new(),
                waiting_bytes: 0,
                due: false,
                went_in: WentIn::default(),
                segment_sent: false,
                ended: false,
            };
            if !deferred {
                match &input {
                    Input::Source(src) => {
                        src.set_caps(Some(&caps));
                        state.caps = Some(caps.clone());
                    }
                    // Sent once the muxer runs.
                    Input::Pad { .. } => state.set_caps(caps.clone()),
                }
            }
            let track = Arc::new(Track {
                stream: *stream,
                video: *kind == Kind::Video,
                input,
                state: Mutex::new(state),
                due: AtomicBool::new(false),
                drain_queued: AtomicBool::new(false),
            });
            if let Some(agg_pad) = sink_pad.downcast_ref::<gst_base::AggregatorPad>() {
                Self::wake_when_taken(agg_pad, &track, &drainer);
            }
            built.push(track);
        }

        let cutter = Arc::new(Mutex::new(ChunkCutter::new(
            config.timeslice.map(|t| t.nseconds()),
        )));
        Self::watch_bytes(
            &sink,
            config.container,
            cutter.clone(),
            keep_bytes,
            on_event.clone(),
        );

        // Progress is what reaches the sink: the muxer draining its queue writes each
        // frame as it goes. (A probe on the track sources too changed what a killed
        // fragmented MP4 held: `tests/recovery.rs` then failed 4 runs in 11.)
        let progress = Arc::new(Progress::within(config.progress.clone()));
        if let Some(pad) = sink.static_pad("sink") {
            let progress = progress.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
                move |_, _| {
                    progress.step();
                    gst::PadProbeReturn::Ok
                },
            );
        }
        if let Some(pad) = muxer.static_pad("src") {
            progress.count_busy(write_under_way(&pad));
        }

        let done: Done = Arc::default();
        let started = Arc::new(AtomicBool::new(false));
        {
            let done = done.clone();
            let on_event = on_event.clone();
            let started = started.clone();
            let reported = Arc::new(AtomicBool::new(false));
            let location = config.location.clone();
            let bus = pipeline.bus().expect("a pipeline has a bus");
            bus.set_sync_handler(move |_, msg| {
                let result = match msg.view() {
                    gst::MessageView::Eos(_) => Some(Ok(())),
                    gst::MessageView::Error(err) => {
                        let debug = err.debug().map(|d| d.to_string());
                        let error =
                            name_the_file(err.error(), debug.as_deref(), location.as_deref());
                        if started.load(Ordering::SeqCst) {
                            // A write failure makes the track sources fail too ("internal
                            // data stream error"); the sink's error says what happened, so a
                            // source's error is reported only if no other follows soon.
                            let from_source = msg.src().is_some_and(|s| s.is::<gst_app::AppSrc>());
                            let event = SessionEvent::Error(error.clone(), debug);
                            if !from_source {
                                if !reported.swap(true, Ordering::SeqCst) {
                                    on_event(event);
                                }
                            } else {
                                let reported = reported.clone();
                                let on_event = on_event.clone();
                                // On the system clock's thread: no thread of our own.
                                let clock = gst::SystemClock::obtain();
                                let at = clock.time()
                                    + gst::ClockTime::from_nseconds(
                                        SECONDARY_ERROR_WAIT.as_nanos() as u64,
                                    );
                                let event = Mutex::new(Some(event));
                                let _ = clock.new_single_shot_id(at).wait_async(move |_, _, _| {
                                    let event = event.lock().unwrap().take();
                                    if let Some(event) = event {
                                        if !reported.swap(true, Ordering::SeqCst) {
                                            on_event(event);
                                        }
                                    }
                                });
                            }
                        }
                        Some(Err(error))
                    }
                    _ => None,
                };
                if let Some(result) = result {
                    let (lock, cond) = &*done;
                    let mut slot = lock.lock().unwrap();
                    // The first error is the one to report, even after EOS (a write
                    // that fails while the file closes).
                    if slot.is_none() || (result.is_err() && matches!(*slot, Some(Ok(())))) {
                        *slot = Some(result);
                    }
                    cond.notify_all();
                }
                gst::BusSyncReply::Drop
            });
        }

        if pipeline.set_state(gst::State::Playing).is_err() {
            let err = done.0.lock().unwrap().take().and_then(Result::err);
            let _ = pipeline.set_state(gst::State::Null);
            return Err(err.unwrap_or_else(|| {
                glib::Error::new(gst::ResourceError::OpenWrite, "could not start the muxer")
            }));
        }
        started.store(true, Ordering::SeqCst);
        let session = MuxSession {
            pipeline,
            location: config.location.clone(),
            tracks: built,
            dropped: config.dropped.clone(),
            opus,
            cutter,
            on_event,
            done,
            progress,
        };
        for track in &session.tracks {
            if let Input::Pad { pad, .. } = &track.input {
                let id = format!("mediarecorder/{}", track.stream);
                pad.push_event(gst::event::StreamStart::new(&id));
                track.send(&mut track.state.lock().unwrap());
            }
        }
        Ok(session)
    }

    /// Counts what the muxer takes of a track fed on its pad (see `feed`), and when
    /// frames wait for room, sends them once it took some: on a job of the process's
    /// shared workers, since the muxer's thread must not push into its own pads, and
    /// the track's own thread may bring nothing for a while (a camera that stops, a
    /// file that ended).
    fn wake_when_taken(
        agg_pad: &gst_base::AggregatorPad,
        track: &Arc<Track>,
        drainer: &Arc<Dispatcher>,
    ) {
        let Input::Pad { taken, .. } = &track.input else {
            return;
        };
        agg_pad.set_emit_signals(true);
        let taken = taken.clone();
        let weak = Arc::downgrade(track);
        let drainer = drainer.clone();
        agg_pad.connect_buffer_consumed(move |_, buffer| {
            taken.took(buffer.size() as u64, end_of(buffer));
            let Some(track) = weak.upgrade() else { return };
            if track.due.load(Ordering::Relaxed) && !track.drain_queued.swap(true, Ordering::AcqRel)
            {
                let weak = Arc::downgrade(&track);
                drainer.submit(move || {
                    if let Some(track) = weak.upgrade() {
                        track.drain_queued.store(false, Ordering::Release);
                        track.send(&mut track.state.lock().unwrap());
                    }
                });
            }
        });
    }

    /// Writes the video track's display matrix into every header the muxer writes
    /// (at the start, and again when a fragmented file is finalized).
    fn write_display_matrix(muxer: &gst::Element, matrix: [u32; 9]) {
        let Some(pad) = muxer.static_pad("src") else {
            return;
        };
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer_mut() {
                let is_header = buffer
                    .map_readable()
                    .is_ok_and(|m| matches!(m.get(4..8), Some(b"ftyp" | b"moov")));
                if is_header {
                    if let Ok(mut map) = buffer.make_mut().map_writable() {
                        displaymatrix::write_video_matrix(&mut map, &matrix);
                    }
                }
            }
            gst::PadProbeReturn::Ok
        });
    }

    /// Feeds the byte stream the sink receives to the chunk cutter.
    fn watch_bytes(
        sink: &gst::Element,
        container: Container,
        cutter: Arc<Mutex<ChunkCutter>>,
        keep_bytes: KeepBytes,
        on_event: OnEvent,
    ) {
        let pad = sink.static_pad("sink").expect("sinks have a sink pad");
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                let shared = &cutter;
                let mut cutter = shared.lock().unwrap();
                match &info.data {
                    Some(gst::PadProbeData::Buffer(buffer)) => {
                        let keep = keep_bytes();
                        let finished = match buffer.map_readable() {
                            Ok(map) => cutter.push(&map, mark_of(container, buffer, &map), keep),
                            Err(_) => None,
                        };
                        if let Some(chunk) = finished {
                            cutter.hold(chunk);
                            on_event(SessionEvent::Chunks(ReadyChunks(shared.clone())));
                        }
                    }
                    Some(gst::PadProbeData::Event(event)) => {
                        if let gst::EventView::Segment(seg) = event.view() {
                            if let Some(bytes) = seg.segment().downcast_ref::<gst::format::Bytes>()
                            {
                                cutter.seek(bytes.start().map(u64::from).unwrap_or(0));
                            }
                        }
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }

    /// Queues an encoded frame, already on the file's timeline. Past
    /// `MAX_QUEUED_BYTES` waiting, the frame is dropped and counted, and the track
    /// resumes at its next keyframe (audio frames are all keyframes).
    pub fn push(&self, stream: usize, buffer: gst::Buffer) -> bool {
        let Some(track) = self.tracks.iter().find(|t| t.stream == stream) else {
            return false;
        };
        let mut st = track.state.lock().unwrap();
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let full = st.waiting_bytes + track.bytes_in_muxer(&st) >= MAX_QUEUED_BYTES;
        let (take, resyncing) = super::resync::admit(st.resync, keyframe, !full);
        st.resync = resyncing;
        if !take {
            drop(st);
            count_dropped(&self.dropped, &self.on_event, || self.location.clone());
            return false;
        }
        if let Some(caps) = st.deferred_caps.take() {
            // No pre-skip came before the first frame: the encoder's.
            let samples = opus_pre_skip(&caps).unwrap_or(0);
            let caps = with_pre_skip(&caps, self.opus.given(samples)).unwrap_or(caps);
            st.set_caps(caps);
        }
        if let (Some(silence), Some(pts)) = (st.lead_in.take(), buffer.pts()) {
            let lead = late_audio_lead_in(pts.nseconds(), silence.duration);
            if !lead.is_empty() {
                gst::debug!(
                    gst::CAT_DEFAULT,
                    "{:?}: track {stream} starts at {pts}, after the file: {} silent packets before it",
                    self.location,
                    lead.len()
                );
            }
            for (at, duration) in lead {
                let mut packet = gst::Buffer::from_slice(silence.packet);
                let b = packet.get_mut().expect("a new buffer is writable");
                b.set_pts(gst::ClockTime::from_nseconds(at));
                b.set_dts(gst::ClockTime::from_nseconds(at));
                b.set_duration(gst::ClockTime::from_nseconds(duration));
                st.wait(Item::Frame(packet));
            }
        }
        let mut buffer = buffer;
        if let Some(trim) = st.first_trim.take() {
            // A Matroska Opus track's first frame: placed where its decoding starts.
            let tail = buffer
                .meta::<gst_audio::AudioClippingMeta>()
                .filter(|m| m.end().format() == gst::Format::Default)
                .map_or(0, |m| m.end().value().max(0) as u64);
            let trim = match buffer.map_readable() {
                Ok(map) => {
                    first_opus_trim(trim, buffer.duration().map(|d| d.nseconds()), &map, tail)
                }
                Err(_) => trim,
            };
            let pts = buffer.pts().map(|pts| {
                let placed =
                    gst::ClockTime::from_nseconds(matroska_opus_start(pts.nseconds(), trim));
                let b = buffer.make_mut();
                if let Some(duration) = b.duration() {
                    // It ends where it did.
                    b.set_duration(duration + (pts - placed));
                }
                b.set_pts(placed);
                placed
            });
            self.patch_pre_skip(&mut st, trim);
            gst::debug!(
                gst::CAT_DEFAULT,
                "{:?}: Opus track {stream} starts at {pts:?}, pre-skip {trim}",
                self.location
            );
        }
        let delay = st.written_delay;
        if let (Some(pts), Some(order), true) = (buffer.pts(), self.opus.delayed_order(), delay > 0)
        {
            // matroskamux writes an Opus block at its PTS plus the CodecDelay but
            // interleaves without it, so a block could go before a video block of an
            // earlier time, which Chromium's Media Source Extensions refuse ("a block
            // with a timecode before the previous block"). See `OpusOrder`.
            let placed = order.place(pts.nseconds(), delay);
            if let Some(dts) = placed.dts {
                buffer
                    .make_mut()
                    .set_dts(gst::ClockTime::from_nseconds(dts));
            }
            if let Some(at) = placed.gap_at {
                let gap = gst::event::Gap::builder(gst::ClockTime::from_nseconds(at))
                    .duration(gst::ClockTime::ZERO)
                    .gap_flags(gst::GapFlags::DATA)
                    .build();
                st.wait(Item::Event(gap));
            }
        }
        let pts = buffer.pts().map(gst::ClockTime::nseconds);
        let size = buffer.size() as u64;
        st.wait(Item::Frame(buffer));
        if st.batch.add(pts, size, track.video && keyframe) {
            st.due = true;
        }
        !st.due || track.send(&mut st)
    }

    /// Hands every track's waiting frames over (those that fit: see `send`).
    fn send_all(&self) {
        for track in &self.tracks {
            track.send(&mut track.state.lock().unwrap());
        }
    }

    /// Sets how many samples an Opus decoder discards at the start of this file (the
    /// OpusHead pre-skip, written as the track's CodecDelay): the trim of the track's
    /// first frame. Matroska has no other way to drop the head of a first packet;
    /// there the pre-skip is settled with that frame (see `matroska_opus_start`).
    /// Call before the track's first frame.
    pub fn set_opus_pre_skip(&self, stream: usize, samples: u16) {
        let Some(track) = self.tracks.iter().find(|t| t.stream == stream) else {
            return;
        };
        let mut st = track.state.lock().unwrap();
        let opus = st
            .caps
            .as_ref()
            .is_some_and(|caps| opus_pre_skip(caps).is_some());
        if let Some(caps) = st.deferred_caps.take() {
            let caps = with_pre_skip(&caps, self.opus.given(samples)).unwrap_or(caps);
            st.set_caps(caps);
        } else if opus && self.opus.delayed_order().is_some() {
            st.first_trim = Some(samples);
        } else {
            self.patch_pre_skip(&mut st, samples);
        }
    }

    fn patch_pre_skip(&self, st: &mut TrackState, samples: u16) {
        let Some(caps) = st.caps.clone() else { return };
        if let Some(patched) = with_pre_skip(&caps, self.opus.given(samples)) {
            st.set_caps(patched);
            if self.opus.delayed_order().is_some() {
                st.written_delay = samples;
            }
        }
    }

    /// Hands every track's frames over and ends the tracks, each once all of it went
    /// in (a pad takes what fits while the muxer writes: see `send`). Gives up the
    /// frames that still wait after `stall` in which the muxer took none.
    fn end_tracks(&self, stall: Duration) {
        let taken = || {
            self.tracks
                .iter()
                .map(|t| match &t.input {
                    Input::Pad { taken, .. } => taken.frames(),
                    Input::Source(_) => 0,
                })
                .sum::<u64>()
        };
        let mut watch = Watch::new(Instant::now(), taken(), stall, FINALIZE_CAP);
        loop {
            let mut left = false;
            for track in &self.tracks {
                let mut st = track.state.lock().unwrap();
                track.send(&mut st);
                if st.waiting.is_empty() && !st.ended {
                    st.ended = true;
                    match &track.input {
                        Input::Source(src) => drop(src.end_of_stream()),
                        Input::Pad { pad, .. } => {
                            Track::begin_segment(pad, &mut st, None);
                            pad.push_event(gst::event::Eos::new());
                        }
                    }
                }
                left |= !st.ended;
            }
            if !left {
                return;
            }
            if matches!(*self.done.0.lock().unwrap(), Some(Err(_))) {
                // Writing failed: the muxer takes nothing more.
                break;
            }
            // A sync of the file or a write under way holds the muxer up (see `finalize`).
            if watch
                .next(Instant::now(), taken(), || self.progress.is_held())
                .is_none()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut left_out = 0;
        for track in &self.tracks {
            let mut st = track.state.lock().unwrap();
            if !st.ended {
                st.ended = true;
                let lost = st.waiting.len();
                // Frames given up count as dropped, as the writer's other losses do.
                let frames = st
                    .waiting
                    .drain(..)
                    .filter(|item| matches!(item, Item::Frame(_)))
                    .count();
                self.dropped.fetch_add(frames as u64, Ordering::Relaxed);
                left_out += frames as u64;
                gst::warning!(
                    gst::CAT_DEFAULT,
                    "{:?}: the muxer failed or took nothing for {stall:?}: {lost} items of track {} left out",
                    self.location,
                    track.stream
                );
                if let Input::Pad { pad, .. } = &track.input {
                    Track::begin_segment(pad, &mut st, None);
                    pad.push_event(gst::event::Eos::new());
                }
            }
        }
        if left_out > 0 {
            // Told outside the tracks' locks.
            (self.on_event)(SessionEvent::LeftOut {
                location: self.location.clone(),
                frames: left_out,
                stall,
            });
        }
    }

    /// Bytes waiting for the muxer or held by it, over all tracks.
    #[cfg(test)]
    fn queued_bytes(&self) -> u64 {
        self.tracks
            .iter()
            .map(|t| {
                let st = t.state.lock().unwrap();
                st.waiting_bytes + t.bytes_in_muxer(&st)
            })
            .sum()
    }

    pub fn bytes_written(&self) -> u64 {
        self.cutter.lock().unwrap().bytes_written()
    }

    /// Cuts what was written since the last chunk and hands it to `deliver` while the
    /// cutter is still locked, after the timeslice chunks it holds, so it cannot
    /// overtake a chunk cut before it.
    pub fn take_chunk(&self, mut deliver: impl FnMut(Chunk)) {
        self.send_all();
        let mut cutter = self.cutter.lock().unwrap();
        for chunk in cutter.take_ready() {
            deliver(chunk);
        }
        deliver(cutter.take());
    }

    /// Ends every track, waits for the muxer to write its index and header, and closes
    /// the file. Gives up after `stall` without progress (see `finalize`).
    pub fn finish(self, stall: Duration) -> FinishReport {
        let began = Instant::now();
        self.end_tracks(stall);
        let ended = began.elapsed();
        let (lock, cond) = &*self.done;
        drop(wait_while_progressing(
            lock,
            cond,
            &self.progress,
            stall,
            Option::is_none,
        ));
        let written = began.elapsed();
        // Closing the file may fail too: the bus is still watched.
        let _ = self.pipeline.set_state(gst::State::Null);
        gst::debug!(
            super::imp::CAT,
            "{:?}: tracks ended after {ended:?}, written after {written:?}, closed after {:?}",
            self.location,
            began.elapsed()
        );
        if let Some(bus) = self.pipeline.bus() {
            bus.unset_sync_handler();
        }
        let result = self.done.0.lock().unwrap().take();
        let (finalized, error) = match result {
            Some(Ok(())) => (true, None),
            Some(Err(err)) => (false, Some(err)),
            None => (false, None),
        };
        let mut cutter = self.cutter.lock().unwrap();
        let bytes = match &self.location {
            Some(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
            None => cutter.bytes_written(),
        };
        FinishReport {
            earlier: cutter.take_ready(),
            chunk: cutter.take(),
            bytes,
            finalized,
            error,
        }
    }
}

/// A session nobody finished (a recording dropped while unwinding, a failed start)
/// still stops its pipeline and lets go of its file. After `finish` this does nothing.
impl Drop for MuxSession {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(bus) = self.pipeline.bus() {
            bus.unset_sync_handler();
        }
    }
}

/// For unit tests: a session writing WebM into a FIFO, so a test decides how fast
/// (or whether) the file is read.
#[cfg(test)]
pub(super) mod fifo_session {
    use super::*;

    pub struct FifoSession {
        pub dir: PathBuf,
        pub fifo: PathBuf,
        pub config: SessionConfig,
        pub dropped: Arc<AtomicU64>,
        /// One 320x240 VP8 track.
        pub caps: gst::Caps,
    }

    /// A FIFO in a fresh folder named after `name`, and a config writing to it.
    pub fn fifo_session(name: &str) -> FifoSession {
        gst::init().unwrap();
        let dir = std::env::temp_dir().join(format!("mr-{name}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let fifo = dir.join(format!("{name}.webm"));
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let dropped = Arc::new(AtomicU64::new(0));
        let config = SessionConfig {
            container: Container::WebM,
            location: Some(fifo.clone()),
            sink_location: None,
            timeslice: None,
            cluster_duration: gst::ClockTime::from_seconds(2),
            gst_version: gst::version(),
            dropped: dropped.clone(),
            progress: Arc::default(),
        };
        let caps = gst::Caps::builder("video/x-vp8")
            .field("width", 320)
            .field("height", 240)
            .field("framerate", gst::Fraction::new(30, 1))
            .build();
        FifoSession {
            dir,
            fifo,
            config,
            dropped,
            caps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fifo_session::fifo_session;
    use super::*;
    use std::io::Read;

    const MS: u64 = 1_000_000;

    /// H.264 caps `mp4mux` takes (its parameter sets are not read).
    fn h264_caps() -> gst::Caps {
        let avcc: &[u8] = &[
            1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0xc0, 0x1e, 1, 0, 2, 0x68, 0xce,
        ];
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .field("codec_data", gst::Buffer::from_slice(avcc))
            .field("width", 320)
            .field("height", 240)
            .field("framerate", gst::Fraction::new(30, 1))
            .build()
    }

    /// AAC-LC, 48 kHz stereo.
    fn aac_caps() -> gst::Caps {
        gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4)
            .field("stream-format", "raw")
            .field("codec_data", gst::Buffer::from_slice([0x11u8, 0x90]))
            .field("rate", 48000)
            .field("channels", 2)
            .build()
    }

    fn frame(bytes: usize, pts_ms: u64, duration_ms: u64, keyframe: bool) -> gst::Buffer {
        let mut buffer = gst::Buffer::from_slice(vec![0u8; bytes]);
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(pts_ms * MS));
        b.set_duration(gst::ClockTime::from_nseconds(duration_ms * MS));
        if !keyframe {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        buffer
    }

    /// Runs `body` on a thread of its own and fails if it takes longer than `limit`
    /// (a push that waits for ever would otherwise hang the test).
    fn within<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(body());
        });
        result
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("still running after {limit:?}: a push waited"))
    }

    /// A push whose write has not returned is under way, at every look until it
    /// returns; an idle pad is not, and looking leaves no probe behind.
    #[test]
    fn a_write_is_under_way_until_its_push_returns() {
        gst::init().unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Mutex::new(released);
        let (entered, write_began) = std::sync::mpsc::channel::<()>();
        let entered = Mutex::new(entered);
        let sink = gst::Pad::builder(gst::PadDirection::Sink)
            .chain_function(move |_, _, _| {
                let _ = entered.lock().unwrap().send(());
                let _ = released.lock().unwrap().recv();
                Ok(gst::FlowSuccess::Ok)
            })
            .build();
        let src = gst::Pad::builder(gst::PadDirection::Src).build();
        src.link(&sink).unwrap();
        sink.set_active(true).unwrap();
        src.set_active(true).unwrap();
        src.push_event(gst::event::StreamStart::new("s"));
        src.push_event(gst::event::Caps::new(&gst::Caps::new_empty_simple("x/y")));
        src.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new()));
        let under_way = write_under_way(&src);
        assert!(!under_way(), "idle");
        assert!(!under_way(), "idle, looked at again");
        let pusher = {
            let src = src.clone();
            std::thread::spawn(move || src.push(gst::Buffer::new()))
        };
        write_began.recv().unwrap();
        for _ in 0..3 {
            assert!(under_way(), "the write has not returned");
        }
        release.send(()).unwrap();
        assert_eq!(pusher.join().unwrap(), Ok(gst::FlowSuccess::Ok));
        assert!(!under_way(), "the push returned");
        // Each look's probe is gone: pushes pass.
        release.send(()).unwrap();
        assert_eq!(src.push(gst::Buffer::new()), Ok(gst::FlowSuccess::Ok));
        let _ = write_began.try_recv();
    }

    /// A muxer that takes nothing and has no write under way (here its output waits
    /// before the sink, as a muxer waiting for something else would) is given up after
    /// the stall, not waited for: the frames still waiting are left out, counted and
    /// told, and the file is not finalized.
    #[test]
    fn a_muxer_that_takes_nothing_without_a_write_is_given_up_after_the_stall() {
        let mut stuck = fifo_session("stuck-muxer");
        let _ = std::fs::remove_file(&stuck.fifo);
        stuck.config.container = Container::Mp4;
        let left_out = Arc::new(AtomicU64::new(0));
        let told = left_out.clone();
        let session = MuxSession::start(
            &stuck.config,
            &[(0, Kind::Video, h264_caps())],
            Arc::new(|| false),
            Arc::new(move |event| {
                if let SessionEvent::LeftOut { frames, .. } = event {
                    told.fetch_add(frames, Ordering::Relaxed);
                }
            }),
        )
        .expect("the session starts");
        let muxer = session
            .pipeline
            .iterate_elements()
            .into_iter()
            .flatten()
            .find(|e| e.is::<gst_base::Aggregator>())
            .expect("mp4mux is an aggregator");
        // The output waits until the muxer shuts down, then goes nowhere (a blocking
        // probe's flushing error made mp4mux post a critical).
        muxer
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, |pad, _| {
                while !pad.pad_flags().contains(gst::PadFlags::FLUSHING) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                gst::PadProbeReturn::Drop
            });
        let session = within(Duration::from_secs(10), move || {
            for i in 0..90u64 {
                session.push(0, frame(1000, i * 33, 33, i % 30 == 0));
            }
            session
        });
        let began = Instant::now();
        let report = within(Duration::from_secs(10), move || {
            session.finish(Duration::from_millis(500))
        });
        let took = began.elapsed();
        assert!(took < Duration::from_secs(3), "given up after {took:?}");
        assert!(!report.finalized);
        let left_out = left_out.load(Ordering::Relaxed);
        assert!(left_out > 0, "no frame left out");
        assert_eq!(stuck.dropped.load(Ordering::Relaxed), left_out);
        let _ = std::fs::remove_dir_all(&stuck.dir);
    }

    /// A writer that takes 20 KB/s (a stalled share, a dying card), simulated by a FIFO
    /// read slowly: the frames waiting for it stay bounded, the rest are counted, and
    /// no push waits for the writer.
    fn a_slow_writer_holds_a_bounded_queue(container: Container, caps: gst::Caps) {
        let mut slow = fifo_session(&format!("slow-{container:?}"));
        slow.config.container = container;
        let reader_path = slow.fifo.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_reader = stop.clone();
        let reader = std::thread::spawn(move || {
            let mut f = std::fs::File::open(reader_path).unwrap();
            let mut buf = [0u8; 2048];
            while !stop_reader.load(Ordering::Relaxed) {
                if f.read(&mut buf).unwrap_or(0) == 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let behind = Arc::new(Mutex::new(Vec::new()));
        let said = behind.clone();
        let session = MuxSession::start(
            &slow.config,
            &[(0, Kind::Video, caps)],
            Arc::new(|| false),
            Arc::new(move |event| {
                if let SessionEvent::Behind { location, dropped } = event {
                    said.lock().unwrap().push((location, dropped));
                }
            }),
        )
        .expect("the session starts");
        // 64 MiB of 64 KiB frames, far faster than 20 KB/s.
        let session = within(Duration::from_secs(30), move || {
            for i in 0..1024u64 {
                session.push(0, frame(64 * 1024, i * 33, 33, i % 60 == 0));
            }
            session
        });
        let queued = session.queued_bytes();
        assert!(queued <= MAX_QUEUED_BYTES, "{queued} bytes queued");
        // About the half that did not fit was dropped, with the deltas after it.
        assert!(
            slow.dropped.load(Ordering::Relaxed) >= 450,
            "{:?} dropped",
            slow.dropped
        );
        // The element is told, naming the file: at the first frame dropped, and at
        // every hundredth.
        let behind = behind.lock().unwrap().clone();
        let dropped = slow.dropped.load(Ordering::Relaxed);
        assert_eq!(behind.first(), Some(&(Some(slow.fifo.clone()), 1)));
        assert_eq!(behind.len() as u64, 1 + dropped / 100, "{behind:?}");
        stop.store(true, Ordering::Relaxed);
        let report = session.finish(Duration::from_millis(200));
        assert!(!report.finalized);
        let _ = reader.join();
        let _ = std::fs::remove_dir_all(&slow.dir);
    }

    #[test]
    fn a_slow_writer_holds_a_bounded_queue_webm() {
        let caps = fifo_session("caps").caps;
        a_slow_writer_holds_a_bounded_queue(Container::WebM, caps);
    }

    /// mp4mux takes its frames on the pushing thread (no `appsrc`): a writer that does
    /// not keep up must not stall that thread.
    #[test]
    fn a_slow_writer_holds_a_bounded_queue_mp4() {
        gst::init().unwrap();
        a_slow_writer_holds_a_bounded_queue(Container::Mp4, h264_caps());
    }

    /// Opus caps, stereo, with `pre_skip` in their OpusHead.
    fn opus_caps(pre_skip: u16) -> gst::Caps {
        let mut head = b"OpusHead\x01\x02".to_vec();
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&48000u32.to_le_bytes());
        head.extend_from_slice(&[0, 0, 0]);
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&4u32.to_le_bytes());
        tags.extend_from_slice(b"test");
        tags.extend_from_slice(&0u32.to_le_bytes());
        let header = |bytes: Vec<u8>| {
            let mut b = gst::Buffer::from_mut_slice(bytes);
            b.get_mut().unwrap().set_flags(gst::BufferFlags::HEADER);
            b.to_send_value()
        };
        gst::Caps::builder("audio/x-opus")
            .field("rate", 48000)
            .field("channels", 2)
            .field("channel-mapping-family", 0)
            .field(
                "streamheader",
                gst::Array::from_values([header(head), header(tags)]),
            )
            .build()
    }

    /// When a track's frames come, on the one thread that brings both (see
    /// `one_thread_brings_both_tracks_far_apart`).
    #[derive(Debug, Clone, Copy)]
    struct Order {
        /// Where the video's first frame is (ms into the file).
        video_from: u64,
        /// The audio before this (ms) comes before the video's 3 s, the rest after.
        audio_first: u64,
    }

    /// One thread brings both tracks, 3 s of video before (the rest of) the audio (a
    /// demuxer with no queues, a badly interleaved file): an aggregator muxer's pad
    /// for video takes 300 ms while it waits for audio, so pushing the rest there
    /// would wait for ever. The frames wait in the session instead and every one
    /// reaches the file.
    fn one_thread_brings_both_tracks_far_apart(
        container: Container,
        tracks: [gst::Caps; 2],
        audio: (usize, u64),
        order: Order,
        expected: &str,
    ) {
        gst::init().unwrap();
        let name = format!("apart-{container:?}-{}", order.video_from);
        let dir = std::env::temp_dir().join(format!("mr-{name}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(&name);
        let config = SessionConfig {
            container,
            location: Some(path.clone()),
            sink_location: None,
            timeslice: None,
            cluster_duration: gst::ClockTime::from_seconds(1),
            gst_version: gst::version(),
            dropped: Arc::default(),
            progress: Arc::default(),
        };
        let [video, sound] = tracks;
        let session = MuxSession::start(
            &config,
            &[(0, Kind::Video, video), (1, Kind::Audio, sound)],
            Arc::new(|| false),
            Arc::new(|_| {}),
        )
        .expect("the session starts");
        let (bytes, ms) = audio;
        let report = within(Duration::from_secs(20), move || {
            let audio_frames = (order.video_from + 3000) / ms;
            let first_audio = order.audio_first / ms;
            for i in 0..first_audio {
                assert!(session.push(1, frame(bytes, i * ms, ms, true)));
            }
            for i in 0..90u64 {
                let at = order.video_from + i * 1000 / 30;
                assert!(session.push(0, frame(2000, at, 33, i % 30 == 0)));
            }
            for i in first_audio..audio_frames {
                assert!(session.push(1, frame(bytes, i * ms, ms, true)));
            }
            session.finish(Duration::from_secs(2))
        });
        assert!(report.finalized, "{:?}", report.error);
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-count_packets", "-show_entries"])
            .args(["stream=codec_name,nb_read_packets", "-of", "csv=p=0"])
            .arg(&path)
            .output()
            .expect("ffprobe runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(text.trim(), expected, "{text}");
    }

    #[test]
    fn one_thread_bringing_both_mp4_tracks_far_apart_never_waits() {
        gst::init().unwrap();
        // AAC frames of 1024 samples at 48 kHz last 21.33 ms: 20 ms ones here.
        one_thread_brings_both_tracks_far_apart(
            Container::Mp4,
            [h264_caps(), aac_caps()],
            (300, 20),
            TOGETHER,
            "h264,90\naac,150",
        );
    }

    /// Video and audio from the file's start, the video's 3 s first.
    const TOGETHER: Order = Order {
        video_from: 0,
        audio_first: 0,
    };
    /// Video from 2 s into the file (a phone's cut, a camera slow to start), after
    /// the first 100 ms of audio: the muxer holds the video's first frame until it has
    /// the audio up to there.
    const VIDEO_FROM_2S: Order = Order {
        video_from: 2000,
        audio_first: 100,
    };

    #[test]
    fn one_thread_bringing_mp4_video_two_seconds_late_never_waits() {
        gst::init().unwrap();
        one_thread_brings_both_tracks_far_apart(
            Container::Mp4,
            [h264_caps(), aac_caps()],
            (300, 20),
            VIDEO_FROM_2S,
            "h264,90\naac,250",
        );
    }

    #[test]
    fn one_thread_bringing_webm_video_two_seconds_late_never_waits() {
        let caps = fifo_session("late-caps").caps;
        one_thread_brings_both_tracks_far_apart(
            Container::WebM,
            [caps, opus_caps(312)],
            (1, 20),
            VIDEO_FROM_2S,
            "vp8,90\nopus,250",
        );
    }

    /// WebM with Opus: its blocks are placed after the CodecDelay with gap events
    /// (see `OpusOrder`), which an aggregator muxer (GStreamer 1.26's matroskamux)
    /// queues as frames of their own.
    #[test]
    fn one_thread_bringing_both_webm_tracks_far_apart_never_waits() {
        let caps = fifo_session("apart-caps").caps;
        one_thread_brings_both_tracks_far_apart(
            Container::WebM,
            [caps, opus_caps(312)],
            (1, 20),
            TOGETHER,
            "vp8,90\nopus,150",
        );
    }
}
