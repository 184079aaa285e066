//! One recording, from `start` to `stop`: the engine that decides, the writer that
//! carries out its file actions, and the translation of GStreamer buffers into the
//! engine's frames. What is neither a file action nor instant is handed back to the
//! element as `Followup`s, to carry out once it has unlocked its state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::chunks::Chunk;
use super::engine::{Action, Capture, Engine, Frame, Limits, TrackSetup};
use super::retention::Retention;
use super::stage::Takes;
use super::timeline::Kind;
use super::writer::{ClosingFile, FileJob, Writer, WriterConfig, WriterHooks};

/// What the element does for a recording once its state is unlocked.
pub enum Followup {
    /// Ask the video encoders for a keyframe: now, or at this running time.
    RequestKeyframe(Option<u64>),
    /// These pads sent nothing in time: say so.
    GiveUp(Vec<usize>),
    /// Audio (ns) before the first video keyframe was left out: say so.
    AudioLeftOut(u64),
    /// A `mediarecorder-progress` message.
    Progress(gst::Structure),
    /// Push the file's written data to the disk (each second of media): a power cut
    /// then loses at most about a second, not the page cache's 30. The recording's
    /// progress is held while it syncs: a finalization waiting meanwhile is not stuck.
    SyncToDisk(std::path::PathBuf, Arc<super::finalize::Progress>),
    /// Ask recording `recording` at running time `at` whether its time is up
    /// (`Recording::time_is_up`).
    EndBy { recording: u64, at: u64 },
}

/// Runs the writer's jobs on the element's dispatcher.
pub type SubmitJob = Arc<dyn Fn(FileJob) + Send + Sync>;

pub struct Recording {
    pub id: u64,
    pub effective_type: String,
    /// Started by `autostart`: when it reaches its duration, upstream is told to end.
    pub autostart: bool,
    engine: Engine<gst::Buffer>,
    writer: Writer,
    submit: SubmitJob,
    /// Encoded caps of each track, once known.
    caps: Vec<(usize, Option<gst::Caps>)>,
    audio_gaps: Since,
    silence: Since,
    /// Origin of the wall clock the engine waits with.
    began: Instant,
}

/// A recording's plan, made from the settings and the streams when it starts.
pub struct Plan {
    pub limits: Limits,
    pub writer: WriterConfig,
    /// The linked streams taking part, with their encoded caps where known.
    pub tracks: Vec<(TrackSetup, Option<gst::Caps>)>,
    /// The audio branches' counters of gaps filled and of the silence that filled them.
    pub audio_gaps: Vec<Arc<AtomicU64>>,
    pub silence: Vec<Arc<AtomicU64>>,
}

/// Counters shared with the branches, read relative to where they stood at the start.
struct Since {
    counters: Vec<Arc<AtomicU64>>,
    at_start: u64,
}

impl Since {
    fn new(counters: Vec<Arc<AtomicU64>>) -> Self {
        let at_start = sum(&counters);
        Since { counters, at_start }
    }

    fn get(&self) -> u64 {
        sum(&self.counters).saturating_sub(self.at_start)
    }
}

impl Recording {
    pub fn new(
        id: u64,
        effective_type: String,
        autostart: bool,
        plan: Plan,
        hooks: WriterHooks,
        submit: SubmitJob,
    ) -> Self {
        let (tracks, caps) = plan
            .tracks
            .into_iter()
            .map(|(setup, caps)| {
                let id = setup.id;
                (setup, (id, caps))
            })
            .unzip();
        Recording {
            id,
            effective_type,
            autostart,
            engine: Engine::new(plan.limits, tracks),
            writer: Writer::new(plan.writer, hooks),
            submit,
            caps,
            audio_gaps: Since::new(plan.audio_gaps),
            silence: Since::new(plan.silence),
            began: Instant::now(),
        }
    }

    /// Whether the wall clock at running time 0 is still unknown.
    pub fn needs_wall_clock(&self) -> bool {
        self.engine.needs_wall_clock()
    }

    /// The wall-clock time (ns since 1970) at running time 0.
    pub fn wall_clock(&mut self, at_zero: i64) {
        self.engine.wall_clock(at_zero);
    }

    /// A stream told its encoded format.
    pub fn caps_known(&mut self, stream: usize, kind: Kind, caps: &gst::Caps) {
        self.engine.caps_known(stream, kind, audio_rate(kind, caps));
        if let Some((_, known)) = self.caps.iter_mut().find(|(id, _)| *id == stream) {
            *known = Some(caps.clone());
        }
    }

    /// Sorts one encoded frame, captured at running time `rt`, into the recording.
    pub fn feed(&mut self, stream: usize, buffer: gst::Buffer, rt: u64) -> Vec<Followup> {
        let pts = buffer.pts();
        let dts = buffer.dts();
        let trim = buffer
            .meta::<gst_audio::AudioClippingMeta>()
            .filter(|m| m.start().format() == gst::Format::Default)
            .map_or((0, 0), |m| {
                (
                    m.start().value().max(0) as u64,
                    m.end().value().max(0) as u64,
                )
            });
        let frame = Frame {
            track: stream,
            rt,
            duration: buffer.duration().map(|d| d.nseconds()),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            reordered: dts.is_some_and(|d| Some(d) != pts),
            decode_lead: pts
                .zip(dts)
                .map(|(p, d)| p.nseconds().saturating_sub(d.nseconds())),
            trim,
            size: buffer.size() as u64,
            payload: buffer,
        };
        let actions = self.engine.frame(frame, self.began.elapsed());
        self.carry_out(actions)
    }

    /// Raw frames of a live stream reached its encoder or were dropped before it.
    pub fn captured(&mut self, stream: usize, captures: &[Capture]) {
        self.engine.captured(stream, captures);
    }

    /// The running time is `now`: a live timed recording past its end (and a grace
    /// second) ends, however far behind its encoders are. True when it ended.
    pub fn time_is_up(&mut self, now: u64) -> bool {
        self.engine.time_is_up(now)
    }

    pub fn end_of_stream(&mut self, stream: usize) {
        self.engine.end_of_stream(stream);
    }

    pub fn reached_duration(&self) -> bool {
        self.engine.reached_duration()
    }

    /// Media time recorded.
    pub fn recorded(&self) -> u64 {
        self.engine.recorded()
    }

    pub fn bytes_written(&self) -> u64 {
        self.writer.bytes_written()
    }

    /// Frames this recording lost: live frames captured within it that are not in
    /// it (dropped before the encoder, or left in one that could not keep up), and
    /// frames the writer could not take.
    pub fn dropped(&self) -> u64 {
        self.engine.lost() + self.writer.dropped()
    }

    /// The steps of its files' muxers, which a wait for its end watches.
    pub fn progress(&self) -> Arc<super::finalize::Progress> {
        self.writer.progress()
    }

    /// Gaps in the audio filled with silence during this recording, and the silence.
    pub fn audio_gaps(&self) -> (u64, u64) {
        (self.audio_gaps.get(), self.silence.get())
    }

    /// Bytes of the file being written, when `retention` is this recording's.
    pub fn bytes_in_progress_for(&self, retention: &Arc<Mutex<Retention>>) -> Option<u64> {
        self.writer
            .owns(retention)
            .then(|| self.writer.bytes_written())
    }

    /// Cuts a `request-data` chunk from the current file; false when none is open.
    pub fn take_chunk(&self, deliver: impl FnMut(Chunk)) -> bool {
        self.writer.take_chunk(deliver)
    }

    /// Ends the recording: returns its files to finalize, in order. Runs on the
    /// dispatcher, where a file that must still open opens at once.
    pub fn finish(&mut self) -> Vec<ClosingFile> {
        let actions = self.engine.finish();
        let mut closing = Vec::new();
        for action in actions {
            for job in self.file_action(action, &mut Vec::new()) {
                match job {
                    FileJob::Close(file) => closing.push(file),
                    other => (self.submit)(other),
                }
            }
        }
        closing
    }

    fn carry_out(&mut self, actions: Vec<Action<gst::Buffer>>) -> Vec<Followup> {
        let mut followups = Vec::new();
        for action in actions {
            for job in self.file_action(action, &mut followups) {
                (self.submit)(job);
            }
        }
        followups
    }

    /// Carries out a file action; others become followups.
    fn file_action(
        &mut self,
        action: Action<gst::Buffer>,
        followups: &mut Vec<Followup>,
    ) -> Vec<FileJob> {
        match action {
            Action::Open {
                file,
                tracks,
                wall_clock,
                ..
            } => {
                let tracks = tracks
                    .into_iter()
                    .filter_map(|(id, kind)| {
                        let (_, caps) = self.caps.iter().find(|(t, _)| *t == id)?;
                        let caps = caps.clone()?;
                        Some((id, kind, caps))
                    })
                    .collect();
                return vec![self.writer.open(file, tracks, wall_clock)];
            }
            Action::Write(write) => self.writer.write(write),
            Action::Close { file, summary } => {
                return self
                    .writer
                    .close(file, summary)
                    .map(FileJob::Close)
                    .into_iter()
                    .collect();
            }
            Action::RequestKeyframe(at) => followups.push(Followup::RequestKeyframe(at)),
            Action::GiveUp(ids) => followups.push(Followup::GiveUp(ids)),
            Action::AudioLeftOut(ns) => followups.push(Followup::AudioLeftOut(ns)),
            Action::EndBy(at) => followups.push(Followup::EndBy {
                recording: self.id,
                at,
            }),
            Action::Progress { recorded } => {
                if let Some(path) = self.writer.current_path() {
                    followups.push(Followup::SyncToDisk(path, self.writer.progress()));
                }
                followups.push(Followup::Progress(
                    gst::Structure::builder("mediarecorder-progress")
                        .field("recorded", gst::ClockTime::from_nseconds(recorded))
                        .field("bytes", self.writer.bytes_written())
                        .field("dropped", self.dropped())
                        .field("audio-gaps", self.audio_gaps.get())
                        .field("silence", gst::ClockTime::from_nseconds(self.silence.get()))
                        .build(),
                ))
            }
        }
        Vec::new()
    }
}

impl Takes<(usize, gst::Buffer)> for Recording {
    type Followup = Followup;

    fn take_frame(&mut self, (stream, buffer): (usize, gst::Buffer), rt: u64) -> Vec<Followup> {
        self.feed(stream, buffer, rt)
    }

    fn pause(&mut self) {
        self.engine.pause();
    }

    fn resume(&mut self) {
        self.engine.resume();
    }

    fn is_complete(&self) -> bool {
        self.engine.is_complete()
    }
}

fn sum(counters: &[Arc<AtomicU64>]) -> u64 {
    counters.iter().map(|c| c.load(Ordering::Relaxed)).sum()
}

/// An audio track's sample rate, from its caps.
pub fn audio_rate(kind: Kind, caps: &gst::Caps) -> u64 {
    let rate = (kind == Kind::Audio)
        .then(|| caps.structure(0).and_then(|s| s.get::<i32>("rate").ok()))
        .flatten()
        .unwrap_or(48_000);
    rate.max(1) as u64
}
