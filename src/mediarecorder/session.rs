//! One muxed file: `appsrc` per track -> muxer -> file sink, in a pipeline of its own.
//!
//! The muxer lives outside the user's pipeline on purpose: it can be finalized while
//! the user's pipeline shuts down without EOS (a sink in a pipeline going to NULL
//! cannot preroll the muxer's last writes), and a new file can start while media keeps
//! flowing (repeated recordings, and later segments). The encoded frames reach it
//! from the element's own stage, where they are restamped to start at 0.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use super::batch::{Batch, MAX_BATCH_BYTES, WINDOW_NS};
use super::chunks::{Chunk, ChunkCutter, Mark};
use super::codecs::{
    aac_is_low_complexity, aac_silence, make, opus_silence, AAC_FRAME_SAMPLES, OPUS_SILENCE_NS,
};
use super::containers::{Container, OpusPreSkip};
use super::displaymatrix;
use super::finalize::{wait_while_progressing, Progress};
use super::muxers::{first_opus_trim, late_audio_lead_in, matroska_opus_start, Version};
use super::timeline::Kind;

/// What a session reports from its own threads.
pub enum SessionEvent {
    /// A timeslice chunk is complete and held in the cutter: take it from there.
    Chunks(ReadyChunks),
    /// Writing failed (disk full, I/O error): the error names the path and the cause.
    Error(glib::Error, Option<String>),
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

/// A track's frames gathered for one hand-over to its `appsrc`.
struct Pending {
    batch: Batch,
    frames: Vec<gst::Buffer>,
}

/// `MuxSession::first_trim` when no first frame waits for its pre-skip.
const NO_TRIM: u32 = u32::MAX;

pub struct MuxSession {
    pipeline: gst::Pipeline,
    location: Option<PathBuf>,
    sources: Vec<(usize, gst_app::AppSrc)>,
    /// How the container's muxer writes the Opus pre-skip.
    opus: OpusPreSkip,
    /// Per source: Opus caps not set yet, for a muxer that takes the pre-skip once
    /// (`OpusPreSkip::OpusBox`); set with the pre-skip of the track's first frame.
    deferred_caps: Vec<Mutex<Option<gst::Caps>>>,
    /// Per source, where the muxer writes Opus blocks after a CodecDelay: the
    /// pre-skip its frames are written after, kept here as it is set rather than read
    /// from the caps per frame; 0 for other tracks and containers.
    written_delay: Vec<AtomicU32>,
    /// Per source, where the muxer writes a CodecDelay: the trim (samples) of an Opus
    /// track's first frame, set by `set_opus_pre_skip` and applied with that frame;
    /// `NO_TRIM` once applied or for other tracks.
    first_trim: Vec<AtomicU32>,
    /// Per source: a frame was dropped, so video waits for the next keyframe.
    resync: Vec<AtomicBool>,
    /// Per source, until its first frame: the silence that fills the track's start
    /// when that frame comes late, where the muxer would start it at the file's
    /// start (see `late_audio_lead_in`).
    lead_in: Vec<Mutex<Option<Silence>>>,
    /// Per source: frames not handed to its `appsrc` yet (see `batch`), and whether
    /// it is a video track.
    pending: Vec<(Mutex<Pending>, bool)>,
    dropped: Arc<AtomicU64>,
    cutter: Arc<Mutex<ChunkCutter>>,
    done: Done,
    /// Buffers and events that reached the sink: what tells a slow finalization from
    /// a stuck one.
    progress: Arc<Progress>,
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

        let mut sources = Vec::new();
        let mut deferred_caps = Vec::new();
        let mut lead_in = Vec::new();
        for (stream, kind, caps) in tracks {
            let (caps, matrix) = displaymatrix::take_mark(caps);
            if let Some(matrix) = matrix {
                Self::write_display_matrix(&muxer, matrix);
            }
            // Opus caps for a muxer that takes the pre-skip once, in the caps (see
            // `OpusPreSkip::OpusBox`), wait for the track's first frame.
            let deferred = opus_pre_skip(&caps).is_some() && opus.delayed_order().is_none();
            let src = gst_app::AppSrc::builder()
                .name(format!("track{stream}"))
                .format(gst::Format::Time)
                .is_live(false)
                .max_bytes(0)
                .build();
            if !deferred {
                src.set_caps(Some(&caps));
            }
            deferred_caps.push(Mutex::new(deferred.then(|| caps.clone())));
            let late_start_lost = !config.container.tracks_start_late();
            lead_in.push(Mutex::new(
                Silence::of(&caps).filter(|_| late_start_lost && *kind == Kind::Audio),
            ));
            pipeline
                .add(&src)
                .map_err(|e| glib::Error::new(gst::CoreError::Failed, &e.to_string()))?;
            let template = match kind {
                Kind::Video => "video_%u",
                Kind::Audio => "audio_%u",
            };
            let sink_pad = muxer.request_pad_simple(template);
            let src_pad = src.static_pad("src");
            let linked = match (src_pad, sink_pad) {
                (Some(src_pad), Some(sink_pad)) => src_pad.link(&sink_pad).is_ok(),
                _ => false,
            };
            linked.then_some(()).ok_or_else(|| {
                glib::Error::new(
                    gst::StreamError::Format,
                    &format!(
                        "{} cannot store {}",
                        config.container.muxer().factory,
                        caps.structure(0).map(|s| s.name().as_str()).unwrap_or("?")
                    ),
                )
            })?;
            sources.push((*stream, src));
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
        // Frames for timeslice chunks go at once: a chunk is cut from what reached
        // the muxer.
        let window = if config.timeslice.is_some() {
            0
        } else {
            WINDOW_NS
        };
        Ok(MuxSession {
            pipeline,
            location: config.location.clone(),
            pending: tracks
                .iter()
                .map(|(_, kind, _)| {
                    let pending = Pending {
                        batch: Batch::new(window, MAX_BATCH_BYTES),
                        frames: Vec::new(),
                    };
                    (Mutex::new(pending), *kind == Kind::Video)
                })
                .collect(),
            resync: sources.iter().map(|_| AtomicBool::new(false)).collect(),
            lead_in,
            first_trim: sources.iter().map(|_| AtomicU32::new(NO_TRIM)).collect(),
            written_delay: sources
                .iter()
                .map(|(_, src)| {
                    let pre_skip = opus
                        .delayed_order()
                        .and_then(|_| src.caps())
                        .and_then(|caps| opus_pre_skip(&caps));
                    AtomicU32::new(u32::from(pre_skip.unwrap_or(0)))
                })
                .collect(),
            dropped: config.dropped.clone(),
            sources,
            deferred_caps,
            opus,
            cutter,
            done,
            progress,
        })
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
        let Some(pos) = self.sources.iter().position(|(s, _)| *s == stream) else {
            return false;
        };
        let src = &self.sources[pos].1;
        let resync = &self.resync[pos];
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let waiting = self.pending[pos].0.lock().unwrap().batch.bytes();
        let full = src.current_level_bytes() + waiting >= MAX_QUEUED_BYTES;
        let (take, resyncing) =
            super::resync::admit(resync.load(Ordering::Relaxed), keyframe, !full);
        resync.store(resyncing, Ordering::Relaxed);
        if !take {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped == 1 || dropped.is_multiple_of(100) {
                gst::warning!(
                    gst::CAT_DEFAULT,
                    "The writer of {:?} is behind: {dropped} frames dropped",
                    self.location
                );
            }
            return false;
        }
        if let Some(caps) = self.deferred_caps[pos].lock().unwrap().take() {
            self.flush(pos);
            // No pre-skip came before the first frame: the encoder's.
            let samples = opus_pre_skip(&caps).unwrap_or(0);
            let caps = with_pre_skip(&caps, self.opus.given(samples)).unwrap_or(caps);
            src.set_caps(Some(&caps));
        }
        let silence = self.lead_in[pos].lock().unwrap().take();
        if let (Some(silence), Some(pts)) = (silence, buffer.pts()) {
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
                if src.push_buffer(packet).is_err() {
                    return false;
                }
            }
        }
        let mut buffer = buffer;
        let trim = self.first_trim[pos].swap(NO_TRIM, Ordering::Relaxed);
        if let Ok(trim) = u16::try_from(trim) {
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
            self.patch_pre_skip(pos, trim);
            gst::debug!(
                gst::CAT_DEFAULT,
                "{:?}: Opus track {stream} starts at {pts:?}, pre-skip {trim}",
                self.location
            );
        }
        let delay = self.written_delay[pos].load(Ordering::Relaxed);
        if let (Some(pts), Some(order), true) = (buffer.pts(), self.opus.delayed_order(), delay > 0)
        {
            // matroskamux writes an Opus block at its PTS plus the CodecDelay but
            // interleaves without it, so a block could go before a video block of an
            // earlier time, which Chromium's Media Source Extensions refuse ("a block
            // with a timecode before the previous block"). See `OpusOrder`.
            let placed = order.place(pts.nseconds(), delay as u16);
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
                self.flush(pos);
                src.send_event(gap);
            }
        }
        self.hand_over(pos, buffer, keyframe)
    }

    /// Adds a frame to its track's batch, and hands the batch to the track's source
    /// when `Batch` says so. Under the track's lock, so batches keep their order: the
    /// source only queues them (it has no size limit).
    fn hand_over(&self, pos: usize, buffer: gst::Buffer, keyframe: bool) -> bool {
        let (pending, video) = &self.pending[pos];
        let mut pending = pending.lock().unwrap();
        let pts = buffer.pts().map(gst::ClockTime::nseconds);
        let now = pending
            .batch
            .add(pts, buffer.size() as u64, *video && keyframe);
        pending.frames.push(buffer);
        if now {
            Self::push_frames(&self.sources[pos].1, &mut pending)
        } else {
            true
        }
    }

    fn push_frames(src: &gst_app::AppSrc, pending: &mut Pending) -> bool {
        pending.batch.clear();
        let pushed = match pending.frames.len() {
            0 => Ok(gst::FlowSuccess::Ok),
            1 => src.push_buffer(pending.frames.remove(0)),
            _ => src.push_buffer_list(pending.frames.drain(..).collect()),
        };
        pushed.is_ok()
    }

    /// Hands a track's waiting frames to its source: before the caps or an event
    /// that must follow them, and before the end of the file.
    fn flush(&self, pos: usize) {
        let mut pending = self.pending[pos].0.lock().unwrap();
        if !pending.frames.is_empty() {
            Self::push_frames(&self.sources[pos].1, &mut pending);
        }
    }

    fn flush_all(&self) {
        for pos in 0..self.sources.len() {
            self.flush(pos);
        }
    }

    /// Sets how many samples an Opus decoder discards at the start of this file (the
    /// OpusHead pre-skip, written as the track's CodecDelay): the trim of the track's
    /// first frame. Matroska has no other way to drop the head of a first packet;
    /// there the pre-skip is settled with that frame (see `matroska_opus_start`).
    /// Call before the track's first frame.
    pub fn set_opus_pre_skip(&self, stream: usize, samples: u16) {
        let Some(pos) = self.sources.iter().position(|(s, _)| *s == stream) else {
            return;
        };
        let opus = self.sources[pos]
            .1
            .caps()
            .is_some_and(|caps| opus_pre_skip(&caps).is_some());
        self.flush(pos);
        let deferred = self.deferred_caps[pos].lock().unwrap().take();
        if let Some(caps) = deferred {
            let caps = with_pre_skip(&caps, self.opus.given(samples)).unwrap_or(caps);
            self.sources[pos].1.set_caps(Some(&caps));
        } else if opus && self.opus.delayed_order().is_some() {
            self.first_trim[pos].store(u32::from(samples), Ordering::Relaxed);
        } else {
            self.patch_pre_skip(pos, samples);
        }
    }

    fn patch_pre_skip(&self, pos: usize, samples: u16) {
        let src = &self.sources[pos].1;
        let Some(caps) = src.caps() else { return };
        if let Some(patched) = with_pre_skip(&caps, self.opus.given(samples)) {
            self.flush(pos);
            src.set_caps(Some(&patched));
            if self.opus.delayed_order().is_some() {
                self.written_delay[pos].store(u32::from(samples), Ordering::Relaxed);
            }
        }
    }

    pub fn bytes_written(&self) -> u64 {
        self.cutter.lock().unwrap().bytes_written()
    }

    /// Cuts what was written since the last chunk and hands it to `deliver` while the
    /// cutter is still locked, after the timeslice chunks it holds, so it cannot
    /// overtake a chunk cut before it.
    pub fn take_chunk(&self, mut deliver: impl FnMut(Chunk)) {
        self.flush_all();
        let mut cutter = self.cutter.lock().unwrap();
        for chunk in cutter.take_ready() {
            deliver(chunk);
        }
        deliver(cutter.take());
    }

    /// Ends every track, waits for the muxer to write its index and header, and closes
    /// the file. Gives up after `stall` without progress (see `finalize`).
    pub fn finish(self, stall: Duration) -> FinishReport {
        self.flush_all();
        for (_, src) in &self.sources {
            let _ = src.end_of_stream();
        }
        let (lock, cond) = &*self.done;
        drop(wait_while_progressing(
            lock,
            cond,
            &self.progress,
            stall,
            Option::is_none,
        ));
        // Closing the file may fail too: the bus is still watched.
        let _ = self.pipeline.set_state(gst::State::Null);
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

    /// A writer that takes 20 KB/s (a stalled share, a dying card), simulated by a FIFO
    /// read slowly: the frames waiting for it stay bounded, and the rest are counted.
    #[test]
    fn a_slow_writer_holds_a_bounded_queue() {
        let slow = fifo_session("slow");
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
        let session = MuxSession::start(
            &slow.config,
            &[(0, Kind::Video, slow.caps)],
            Arc::new(|| false),
            Arc::new(|_| {}),
        )
        .expect("the session starts");
        // 64 MiB of 64 KiB frames, far faster than 20 KB/s.
        let frame = vec![0u8; 64 * 1024];
        for i in 0..1024u64 {
            let mut buffer = gst::Buffer::from_slice(frame.clone());
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(i * 33));
            b.set_duration(gst::ClockTime::from_mseconds(33));
            if i % 60 != 0 {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            session.push(0, buffer);
        }
        let queued: u64 = session
            .sources
            .iter()
            .map(|(_, src)| src.current_level_bytes())
            .sum();
        assert!(queued <= MAX_QUEUED_BYTES, "{queued} bytes queued");
        // About the half that did not fit was dropped, with the deltas after it.
        assert!(
            slow.dropped.load(Ordering::Relaxed) >= 450,
            "{:?} dropped",
            slow.dropped
        );
        stop.store(true, Ordering::Relaxed);
        let report = session.finish(Duration::from_millis(200));
        assert!(!report.finalized);
        let _ = reader.join();
        let _ = std::fs::remove_dir_all(&slow.dir);
    }
}
