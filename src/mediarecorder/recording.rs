//! One recording, from `start` to `stop`: the timeline that places frames, and the
//! files they go to (one, or a new one at each segment boundary).

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{MediaRecorder, CAT};
use super::mimetype::RecordingType;
use super::naming;
use super::opening::SessionHandle;
use super::recorder::{Settings, Stream};
use super::session::{FinishReport, SessionConfig};
use super::timeline::{Kind, Timeline, Verdict};

/// How long a live recording waits (wall-clock) for a linked stream that has sent
/// nothing before it starts without it: a camera that never delivers must not hold the
/// microphone back. A non-live pipeline waits as long as it takes: there audio runs
/// seconds ahead of video as a matter of course, and upstream queues give the slack.
const LIVE_STREAM_WAIT: Duration = Duration::from_secs(3);
/// Names tried before a pattern's file replaces an existing one.
const MAX_NAME_TRIES: u32 = 1000;
/// Media time between progress messages.
const PROGRESS_INTERVAL: u64 = 1_000_000_000;

struct Held {
    stream: usize,
    buffer: gst::Buffer,
    rt: u64,
}

/// A file being written.
pub struct OpenFile {
    session: SessionHandle,
    path: Option<PathBuf>,
    /// Media time of the recording at which this file starts (its time 0).
    start: u64,
    /// File time of the first frame, and the running time it was captured at.
    first: Option<u64>,
    first_running_time: Option<u64>,
    /// Streams that have had their first frame in this file.
    started: HashSet<usize>,
    /// File time where the last frame ends.
    end: u64,
    frames: u64,
}

/// What `file-closed` reports about a finished file.
pub struct ClosedFile {
    pub path: Option<PathBuf>,
    pub first: u64,
    pub last: u64,
    /// Running time (pipeline clock) at which the file's first frame was captured.
    pub running_time: Option<u64>,
    pub frames: u64,
    pub report: FinishReport,
}

impl OpenFile {
    /// Writes a frame given on the recording's timeline; `running_time` is when it
    /// was captured.
    fn push(&mut self, id: usize, buffer: gst::Buffer, counts: bool, running_time: Option<u64>) {
        let buffer = rebase(buffer, self.start);
        if self.started.insert(id) {
            // A file's first Opus packet is usually cut at its head (the recording or
            // segment starts inside it): the decoder skips those samples through the
            // track's pre-skip, and no others.
            let head = buffer
                .meta::<gst_audio::AudioClippingMeta>()
                .map_or(0, |m| m.start().value().max(0));
            self.session
                .set_opus_pre_skip(id, u16::try_from(head).unwrap_or(u16::MAX));
        }
        let pts = buffer.pts().map_or(0, |t| t.nseconds());
        let end = pts + buffer.duration().map_or(0, |d| d.nseconds());
        if self.first.is_none_or(|f| pts < f) {
            self.first = Some(pts);
            self.first_running_time = running_time;
        }
        self.end = self.end.max(end);
        if counts {
            self.frames += 1;
        }
        self.session.push(id, buffer);
    }

    pub fn finish(self) -> ClosedFile {
        let report = self.session.finish(super::recorder::FINALIZE_TIMEOUT);
        ClosedFile {
            path: self.path,
            first: self.first.unwrap_or(0),
            last: self.end,
            running_time: self.first_running_time,
            frames: self.frames,
            report,
        }
    }
}

pub struct Recording {
    pub id: u64,
    pub settings: Settings,
    pub rtype: RecordingType,
    pub effective_type: String,
    pub timeline: Timeline,
    /// Streams taking part; fixed when the first file opens.
    pub expected: Vec<usize>,
    tracks: Vec<(usize, Kind, gst::Caps)>,
    pub file: Option<OpenFile>,
    /// The previous segment, still taking audio up to its boundary (media time).
    closing: Option<(OpenFile, u64)>,
    /// Paths of the files this recording wrote, oldest first (for `max-files`).
    written: VecDeque<PathBuf>,
    /// Frames placed before the first file could open (not every track had caps).
    pending: Vec<(usize, gst::Buffer)>,
    /// Audio past the next segment boundary, waiting for the file it belongs to.
    early_audio: Vec<(usize, gst::Buffer, u64)>,
    held: VecDeque<Held>,
    pub finished: HashSet<usize>,
    pub reached_duration: bool,
    /// Frames dropped because the writer fell behind (all files of the recording).
    writer_dropped: Arc<AtomicU64>,
    /// When the recording first had to wait for a stream (for `LIVE_STREAM_WAIT`).
    waiting_since: Option<Instant>,
    dropped_before: u64,
    next_progress: u64,
    /// Running times at which the encoders are to make a keyframe (segment starts);
    /// sent once the state is unlocked.
    pub keyframe_requests: Vec<u64>,
}

impl Recording {
    pub fn new(
        id: u64,
        settings: Settings,
        effective_type: String,
        has_video: bool,
        expected: Vec<usize>,
        dropped_before: u64,
    ) -> Self {
        let limit = (settings.duration_ms > 0).then(|| settings.duration_ms * 1_000_000);
        Recording {
            id,
            rtype: settings.recording_type(),
            settings,
            effective_type,
            timeline: Timeline::new(has_video, limit),
            expected,
            tracks: Vec::new(),
            file: None,
            closing: None,
            written: VecDeque::new(),
            pending: Vec::new(),
            early_audio: Vec::new(),
            held: VecDeque::new(),
            finished: HashSet::new(),
            reached_duration: false,
            writer_dropped: Arc::default(),
            waiting_since: None,
            dropped_before,
            next_progress: PROGRESS_INTERVAL,
            keyframe_requests: Vec::new(),
        }
    }

    /// Sorts one encoded frame into the recording.
    pub fn feed(
        &mut self,
        imp: &MediaRecorder,
        id: usize,
        kind: Kind,
        buffer: gst::Buffer,
        rt: u64,
        streams: &[Stream],
    ) {
        let duration = buffer.duration().map(|d| d.nseconds());
        let verdict = match kind {
            Kind::Video => {
                let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let reordered = buffer.dts().is_some_and(|dts| Some(dts) != buffer.pts());
                self.timeline.video(id, rt, duration, keyframe, reordered)
            }
            Kind::Audio => self.timeline.audio(id, rt, duration),
        };
        self.apply(imp, id, kind, buffer, rt, verdict, streams);
        if kind == Kind::Video && !self.timeline.is_waiting_for_video() {
            self.release_held(imp, streams);
        }
        self.give_up_on_silent_video(imp, streams);
        self.open_first_file_when_ready(imp, streams);
    }

    fn release_held(&mut self, imp: &MediaRecorder, streams: &[Stream]) {
        while let Some(held) = self.held.pop_front() {
            let duration = held.buffer.duration().map(|d| d.nseconds());
            let verdict = self.timeline.audio(held.stream, held.rt, duration);
            self.apply(
                imp,
                held.stream,
                Kind::Audio,
                held.buffer,
                held.rt,
                verdict,
                streams,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        imp: &MediaRecorder,
        id: usize,
        kind: Kind,
        buffer: gst::Buffer,
        rt: u64,
        verdict: Verdict,
        streams: &[Stream],
    ) {
        gst::trace!(CAT, "stream {id} rt {rt} -> {verdict:?}");
        match verdict {
            Verdict::Drop => {}
            Verdict::Hold => self.held.push_back(Held {
                stream: id,
                buffer,
                rt,
            }),
            Verdict::Finished => {
                self.finished.insert(id);
                if self.timeline.is_started() {
                    self.reached_duration = true;
                }
            }
            Verdict::Record {
                pts,
                duration,
                clip_start,
                clip_end,
            } => {
                let rate = audio_rate(streams, id);
                if kind == Kind::Audio && clip_start > 0 && !cut_is_clean(&buffer, clip_start, rate)
                {
                    // The next packet starts less than half a packet after the start.
                    return;
                }
                let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let buffer = restamp(buffer, pts, duration, clip_start, clip_end, rate);
                self.route(imp, id, kind, buffer, keyframe, rate);
            }
        }
    }

    fn segmenting(&self) -> bool {
        self.settings.max_file_duration_ms > 0 || self.settings.max_file_size > 0
    }

    fn has_video_track(&self) -> bool {
        self.tracks.iter().any(|(_, k, _)| *k == Kind::Video)
    }

    /// Sends a placed frame to its file, starting the next segment where one is due.
    fn route(
        &mut self,
        imp: &MediaRecorder,
        id: usize,
        kind: Kind,
        buffer: gst::Buffer,
        keyframe: bool,
        rate: u64,
    ) {
        let Some(file) = self.file.as_ref() else {
            // Before the first file opens; after a file failed to open, nothing.
            if self.tracks.is_empty() {
                self.pending.push((id, buffer));
            }
            return;
        };
        let pts = buffer.pts().map_or(0, |t| t.nseconds());
        let duration = buffer.duration().map_or(0, |d| d.nseconds());
        // Audio runs ahead of video (the video encoder is slower): audio reaching past
        // the next boundary waits for the video keyframe that opens the next file.
        if kind == Kind::Audio && self.closing.is_none() && self.has_video_track() {
            if let Some(boundary) = self.next_time_boundary() {
                if pts + duration > boundary {
                    self.early_audio.push((id, buffer, rate));
                    return;
                }
            }
        }
        let cuts_here = kind == Kind::Video || !self.has_video_track();
        // A file holds at least one frame, however short the segments asked for.
        if self.segmenting() && cuts_here && keyframe && file.frames > 0 {
            let by_time = self
                .segment_end(file.start)
                .is_some_and(|end| pts + duration / 2 >= end);
            let by_size = self.settings.max_file_size > 0
                && file.session.bytes_written() >= self.settings.max_file_size;
            if by_time || by_size {
                self.next_segment(imp, pts);
            }
        }
        let counts = kind == Kind::Video || !self.has_video_track();
        if kind == Kind::Audio {
            if let Some((closing, boundary)) = self.closing.as_mut() {
                let boundary = *boundary;
                if pts < boundary {
                    // The part before the boundary ends the previous file, the rest
                    // begins this one: the split is at the same media time, to the sample.
                    let end = pts + duration;
                    if end > boundary && !cut_is_clean(&buffer, boundary - pts, rate) {
                        // The next file's audio starts with the packet after this one,
                        // less than half a packet after its start: nothing is lost.
                        let rt = self.timeline.running_time_of(pts);
                        closing.push(id, buffer, counts, rt);
                    } else if end > boundary {
                        let head = restamp(
                            buffer.clone(),
                            pts,
                            Some(boundary - pts),
                            0,
                            end - boundary,
                            rate,
                        );
                        let rt = self.timeline.running_time_of(pts);
                        closing.push(id, head, counts, rt);
                        let tail = restamp(
                            buffer,
                            boundary,
                            Some(end - boundary),
                            boundary - pts,
                            0,
                            rate,
                        );
                        self.finish_closing(imp);
                        let rt = self.timeline.running_time_of(boundary);
                        if let Some(file) = self.file.as_mut() {
                            file.push(id, tail, counts, rt);
                        }
                    } else {
                        let rt = self.timeline.running_time_of(pts);
                        closing.push(id, buffer, counts, rt);
                    }
                    return;
                }
                self.finish_closing(imp);
            }
        }
        let rt = self.timeline.running_time_of(pts);
        if let Some(file) = self.file.as_mut() {
            file.push(id, buffer, counts, rt);
        }
    }

    fn finish_closing(&mut self, imp: &MediaRecorder) {
        if let Some((file, _)) = self.closing.take() {
            imp.queue_file_close(file);
        }
    }

    /// Closes the current file and opens the next at media time `start`.
    fn next_segment(&mut self, imp: &MediaRecorder, start: u64) {
        self.finish_closing(imp);
        let Some(old) = self.file.take() else { return };
        let has_audio = self.tracks.iter().any(|(_, k, _)| *k == Kind::Audio);
        if has_audio && self.has_video_track() {
            self.closing = Some((old, start));
        } else {
            imp.queue_file_close(old);
        }
        self.open_file(imp, start);
        for (id, buffer, rate) in std::mem::take(&mut self.early_audio) {
            self.route(imp, id, Kind::Audio, buffer, true, rate);
        }
    }

    /// Media time where the current file is due to end by `max-file-duration`.
    fn next_time_boundary(&self) -> Option<u64> {
        self.segment_end(self.file.as_ref()?.start)
    }

    /// Media time where a file starting at `start` ends by `max-file-duration`.
    fn segment_end(&self, start: u64) -> Option<u64> {
        (self.settings.max_file_duration_ms > 0)
            .then(|| start.saturating_add(self.settings.max_file_duration_ms * 1_000_000))
    }

    /// Audio held for a video stream that never sends a keyframe: after a while, record
    /// the audio alone rather than nothing.
    fn give_up_on_silent_video(&mut self, imp: &MediaRecorder, streams: &[Stream]) {
        if self.held.is_empty() || self.timeline.is_started() || !self.wait_is_over(streams) {
            return;
        }
        let silent_video: Vec<usize> = streams
            .iter()
            .filter(|s| self.expected.contains(&s.id) && s.likely_kind() == Kind::Video)
            .filter(|s| s.encoded_caps.is_none())
            .map(|s| s.id)
            .collect();
        if silent_video.is_empty() {
            return;
        }
        warn_given_up(imp, streams, &silent_video);
        self.expected.retain(|id| !silent_video.contains(id));
        if !streams
            .iter()
            .any(|s| self.expected.contains(&s.id) && s.likely_kind() == Kind::Video)
        {
            self.timeline.forget_video();
            self.release_held(imp, streams);
        }
    }

    /// Whether to stop waiting for streams that have sent nothing yet: only on a live
    /// pipeline, `LIVE_STREAM_WAIT` after the recording first had to wait.
    fn wait_is_over(&mut self, streams: &[Stream]) -> bool {
        let live = streams
            .iter()
            .any(|s| self.expected.contains(&s.id) && s.live);
        if !live {
            return false;
        }
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        since.elapsed() >= LIVE_STREAM_WAIT
    }

    /// A `mediarecorder-progress` message for each second of media recorded.
    pub fn progress_due(&mut self, streams: &[Stream]) -> Option<gst::Structure> {
        let recorded = self.timeline.recorded();
        if recorded < self.next_progress || self.file.is_none() {
            return None;
        }
        self.next_progress = (recorded / PROGRESS_INTERVAL + 1) * PROGRESS_INTERVAL;
        Some(
            gst::Structure::builder("mediarecorder-progress")
                .field("recorded", gst::ClockTime::from_nseconds(recorded))
                .field("bytes", self.bytes_written())
                .field("dropped", self.dropped(streams))
                .build(),
        )
    }

    pub fn bytes_written(&self) -> u64 {
        self.file.as_ref().map_or(0, |f| f.session.bytes_written())
    }

    pub fn dropped(&self, streams: &[Stream]) -> u64 {
        MediaRecorder::dropped_frames(streams).saturating_sub(self.dropped_before)
            + self.writer_dropped.load(Ordering::Relaxed)
    }

    /// Every stream taking part has ended or reached the duration.
    pub fn is_complete(&self) -> bool {
        !self.expected.is_empty() && self.expected.iter().all(|id| self.finished.contains(id))
    }

    /// Cuts a `request-data` chunk from the current file.
    pub fn take_chunk(&self, deliver: impl FnOnce(super::chunks::Chunk)) -> bool {
        match &self.file {
            Some(file) => {
                file.session.take_chunk(deliver);
                true
            }
            None => false,
        }
    }

    /// Opens the first file once every stream taking part has told its caps, or has
    /// lagged too long.
    fn open_first_file_when_ready(&mut self, imp: &MediaRecorder, streams: &[Stream]) {
        if self.file.is_some() || !self.tracks.is_empty() || self.pending.is_empty() {
            return;
        }
        let waiting: Vec<usize> = streams
            .iter()
            .filter(|s| self.expected.contains(&s.id) && s.encoded_caps.is_none() && !s.eos)
            .map(|s| s.id)
            .collect();
        if !waiting.is_empty() {
            if !self.wait_is_over(streams) {
                return;
            }
            warn_given_up(imp, streams, &waiting);
        }
        self.open_first_file(imp, streams);
    }

    /// Opens the first file with the tracks that have caps, and writes what waited.
    pub fn open_first_file(&mut self, imp: &MediaRecorder, streams: &[Stream]) {
        if self.file.is_some() || !self.tracks.is_empty() {
            return;
        }
        let mut tracks: Vec<(usize, Kind, gst::Caps)> = streams
            .iter()
            .filter(|s| self.expected.contains(&s.id))
            .filter_map(|s| s.encoded_caps.clone().map(|c| (s.id, s.likely_kind(), c)))
            .collect();
        tracks.sort_by_key(|(_, kind, _)| *kind != Kind::Video);
        self.expected
            .retain(|id| tracks.iter().any(|(t, _, _)| t == id));
        self.tracks = tracks;
        self.open_file(imp, 0);
        let pending = std::mem::take(&mut self.pending);
        for (id, buffer) in pending {
            let kind = self
                .tracks
                .iter()
                .find(|(t, _, _)| *t == id)
                .map_or(Kind::Video, |(_, k, _)| *k);
            let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
            self.route(imp, id, kind, buffer, keyframe, audio_rate(streams, id));
        }
    }

    /// The path of the next file, from the location pattern.
    fn next_path(&self, imp: &MediaRecorder) -> Option<PathBuf> {
        let location = self.settings.location.as_ref()?;
        if !naming::is_pattern(location) {
            return Some(PathBuf::from(location));
        }
        let now = glib::DateTime::now_local().ok();
        let expand = |index| {
            PathBuf::from(naming::expand(location, index, |field| {
                now.as_ref()
                    .and_then(|n| n.format(&format!("%{field}")).ok())
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            }))
        };
        // A pattern never replaces a file: an index skips names taken since the
        // element started, and a name that repeats (strftime fields within one
        // second) gets a suffix.
        let mut path = expand(imp.take_file_index());
        if naming::has_index(location) {
            for _ in 0..MAX_NAME_TRIES {
                if !path.exists() {
                    break;
                }
                path = expand(imp.take_file_index());
            }
        } else {
            let first = path.clone();
            for n in 1..MAX_NAME_TRIES {
                if !path.exists() {
                    break;
                }
                path = naming::with_suffix(&first, n);
            }
        }
        Some(path)
    }

    fn open_file(&mut self, imp: &MediaRecorder, start: u64) {
        let path = self.next_path(imp);
        if let Some(path) = &path {
            self.written.push_back(path.clone());
            let max = self.settings.max_files as usize;
            while max > 0 && self.written.len() > max {
                if let Some(oldest) = self.written.pop_front() {
                    imp.queue_file_removal(oldest);
                }
            }
        }
        let config = SessionConfig {
            container: self.rtype.container,
            location: path.clone(),
            timeslice: (self.settings.timeslice_ms > 0)
                .then(|| gst::ClockTime::from_mseconds(u64::from(self.settings.timeslice_ms))),
            cluster_duration: gst::ClockTime::from_mseconds(self.settings.keyframe_interval_ms()),
            dropped: self.writer_dropped.clone(),
        };
        let weak = imp.obj().downgrade();
        let keep_bytes = Arc::new(move || {
            weak.upgrade().is_some_and(|obj| {
                let id = glib::subclass::signal::SignalId::lookup("dataavailable", obj.type_())
                    .expect("the signal exists");
                glib::signal::signal_has_handler_pending(&obj, id, None, false)
            })
        });
        let weak = imp.obj().downgrade();
        let recording_id = self.id;
        let on_event = Arc::new(move |event| {
            if let Some(obj) = weak.upgrade() {
                obj.imp().session_event(recording_id, event);
            }
        });
        // Opened off this thread (it holds the state lock); frames wait in the handle.
        let (session, request) =
            SessionHandle::opening(config, self.tracks.clone(), keep_bytes, on_event);
        imp.open_session(request, recording_id);
        self.file = Some(OpenFile {
            session,
            path,
            start,
            first: None,
            first_running_time: None,
            started: HashSet::new(),
            end: 0,
            frames: 0,
        });
        if let Some(boundary) = self.segment_end(start).filter(|_| self.has_video_track()) {
            self.keyframe_requests
                .extend(self.timeline.running_time_of(boundary));
        }
    }

    /// Takes the files out for finalizing: the closing segment first, then the current.
    pub fn take_files(&mut self, imp: &MediaRecorder, streams: &[Stream]) -> Vec<OpenFile> {
        if self.file.is_none() && !self.pending.is_empty() {
            self.open_first_file(imp, streams);
        }
        // The recording ended before the next file opened: its waiting audio ends this one.
        let early = std::mem::take(&mut self.early_audio);
        if let Some(file) = self.file.as_mut() {
            for (id, buffer, _) in early {
                let pts = buffer.pts().map_or(0, |t| t.nseconds());
                let rt = self.timeline.running_time_of(pts);
                file.push(id, buffer, false, rt);
            }
        }
        self.closing
            .take()
            .map(|(f, _)| f)
            .into_iter()
            .chain(self.file.take())
            .collect()
    }
}

/// Says which pads a live recording goes on without, and why they cannot join later.
fn warn_given_up(imp: &MediaRecorder, streams: &[Stream], ids: &[usize]) {
    let pads: Vec<String> = streams
        .iter()
        .filter(|s| ids.contains(&s.id))
        .map(|s| s.pad.name().to_string())
        .collect();
    let pads = pads.join(", ");
    gst::warning!(CAT, imp = imp, "Recording without {pads}");
    gst::element_imp_warning!(
        imp,
        gst::StreamError::Failed,
        (
            "Pad {} sent no media within {} s of a live recording's start: recording \
             without it (a WebM file's tracks are fixed when it starts)",
            pads,
            LIVE_STREAM_WAIT.as_secs()
        )
    );
}

/// Whether an audio packet may begin a file with its first `head` ns cut off. The cut
/// (with the encoder's own priming on its first packet) becomes the file's Opus
/// pre-skip, and GStreamer 1.22's matroskamux writes every packet that starts within
/// the pre-skip at time 0: two blocks at 0, which ffmpeg rejects as non-monotonic. So
/// the cut must stay under half the packet, with a millisecond to spare for rounding;
/// otherwise the packet is left out and the next one begins the file.
fn cut_is_clean(buffer: &gst::BufferRef, head: u64, rate: u64) -> bool {
    let priming = buffer
        .meta::<gst_audio::AudioClippingMeta>()
        .filter(|m| m.start().format() == gst::Format::Default)
        .map_or(0, |m| {
            m.start().value().max(0) as u64 * 1_000_000_000 / rate
        });
    let full = buffer.duration().map_or(0, |d| d.nseconds()) + priming;
    clean_cut(head + priming, full)
}

/// `cut` ns skipped at the head of a packet `full` ns long leaves the next packet's
/// start beyond the cut (see `cut_is_clean`).
fn clean_cut(cut: u64, full: u64) -> bool {
    cut * 2 + 2_000_000 <= full
}

fn audio_rate(streams: &[Stream], id: usize) -> u64 {
    streams
        .iter()
        .find(|s| s.id == id)
        .and_then(|s| s.encoded_caps.as_ref())
        .and_then(|c| c.structure(0).and_then(|s| s.get::<i32>("rate").ok()))
        .unwrap_or(48_000)
        .max(1) as u64
}

/// Puts a frame on the recording's timeline: `pts` from the timeline, DTS kept at the
/// same distance, audio cut at either end marked for clipping (in samples at `rate`).
fn restamp(
    mut buffer: gst::Buffer,
    pts: u64,
    duration: Option<u64>,
    clip_start: u64,
    clip_end: u64,
    rate: u64,
) -> gst::Buffer {
    let old_pts = buffer.pts();
    let old_dts = buffer.dts();
    let b = buffer.make_mut();
    b.set_pts(gst::ClockTime::from_nseconds(pts));
    let dts = match (old_pts, old_dts) {
        (Some(p), Some(d)) => Some(pts.saturating_sub(p.nseconds().saturating_sub(d.nseconds()))),
        _ => None,
    };
    b.set_dts(dts.map(gst::ClockTime::from_nseconds));
    b.set_duration(duration.map(gst::ClockTime::from_nseconds));
    let mut start = clip_start * rate / 1_000_000_000;
    let mut end = clip_end * rate / 1_000_000_000;
    if start > 0 || end > 0 {
        // The encoder's own clipping (Opus priming on its first packet) stays.
        if let Some(meta) = b.meta_mut::<gst_audio::AudioClippingMeta>() {
            if meta.start().format() == gst::Format::Default {
                start += meta.start().value().max(0) as u64;
                end += meta.end().value().max(0) as u64;
            }
            let _ = meta.remove();
        }
        gst_audio::AudioClippingMeta::add(
            b,
            gst::format::Default::from_u64(start),
            gst::format::Default::from_u64(end),
        );
    }
    buffer
}

/// Moves a frame from the recording's timeline to its file's, which starts at `start`.
fn rebase(mut buffer: gst::Buffer, start: u64) -> gst::Buffer {
    if start == 0 {
        return buffer;
    }
    let b = buffer.make_mut();
    if let Some(pts) = b.pts() {
        b.set_pts(gst::ClockTime::from_nseconds(
            pts.nseconds().saturating_sub(start),
        ));
    }
    if let Some(dts) = b.dts() {
        b.set_dts(gst::ClockTime::from_nseconds(
            dts.nseconds().saturating_sub(start),
        ));
    }
    buffer
}

#[cfg(test)]
mod tests {
    use super::clean_cut;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_cut_must_leave_the_next_packet_past_the_pre_skip() {
        // 20 ms Opus packets: the next one starts at 20 ms - cut, which must exceed the
        // cut (matroskamux writes anything within the pre-skip at 0) by rounding room.
        assert!(clean_cut(0, 20 * MS));
        assert!(clean_cut(9 * MS, 20 * MS));
        assert!(!clean_cut(9 * MS + 1, 20 * MS));
        assert!(!clean_cut(12 * MS, 20 * MS));
        // The encoder's first packet: its 6.5 ms priming plus a 2 ms cut is clean,
        // plus a 3 ms cut is not.
        assert!(clean_cut(8_500_000, 20 * MS));
        assert!(!clean_cut(9_500_000, 20 * MS));
    }
}
