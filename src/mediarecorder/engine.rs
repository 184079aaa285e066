//! The recording's decisions, free of GStreamer: which frames belong to the recording,
//! at what time in which file, where a file ends and the next begins, when a stream is
//! waited for and when given up. It takes frames and control inputs and returns
//! actions; the glue (`recording`, `writer`) carries them out.
//!
//! Times are nanoseconds. A frame comes in at the running time it was captured; it
//! leaves in a `Write` at its file's time, converted once here.
//!
//! One queue holds what cannot be written yet, with one rule: a frame waits while its
//! place (audio before the video keyframe that starts or resumes the recording) or its
//! file (before every stream told its format; audio past a segment boundary that video
//! has not cut yet) is unknown. A track's frames leave the queue in order.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use super::timeline::{Kind, Timeline, Verdict};

/// A wall-clock time within 100 ms of a multiple of `length`, as that multiple: an
/// aligned file starts on the multiple, though its first frame may come a little
/// before or after it.
fn on_multiple(wall: u64, length: u64) -> u64 {
    let nearest = (wall + length / 2) / length * length;
    if nearest.abs_diff(wall) < 100_000_000 {
        nearest
    } else {
        wall
    }
}

/// How long a live recording waits (wall-clock) for a linked stream that has sent
/// nothing before it starts without it: a camera that never delivers must not hold the
/// microphone back. A non-live recording waits as long as it takes: there audio runs
/// seconds ahead of video as a matter of course, and upstream queues give the slack.
pub const LIVE_STREAM_WAIT: Duration = Duration::from_secs(3);
/// Audio that starts at least this long before a non-live recording's first video
/// keyframe is kept, and the video track starts later (as ffmpeg writes a file whose
/// video starts late). A shorter lead is cut, so the file starts with its picture and
/// the audio's first packet follows the rule of `cut_is_clean`.
pub const AUDIO_LEAD_KEPT: u64 = 100_000_000;
/// Audio left out before the first video keyframe (a live recording starts with a
/// picture) is reported from this much on: less is the usual wait for an encoder's
/// first keyframe.
pub const AUDIO_LEFT_OUT_REPORTED: u64 = 500_000_000;
/// Media time between progress reports.
const PROGRESS_INTERVAL: u64 = 1_000_000_000;
/// How long after its end, in running time, plus its sources' latency, a live timed
/// recording ends however far behind its encoder is: a live frame later than this is
/// dropped before the encoder anyway (`state::DROP_LEVEL`, past the same latency), so
/// by then every frame of the recording has arrived, been dropped, or is stuck in an
/// encoder that cannot keep up.
pub const END_GRACE: u64 = 1_000_000_000;
/// Most files kept open for audio that lags the video which cut them: beyond, the
/// oldest closes (each is a muxer and an open file), and audio that comes for it
/// later is dropped.
const MAX_FILES_AWAITING_AUDIO: usize = 8;
/// A step back in running time this large means the running time restarted.
const TIME_JUMP: u64 = 500_000_000;

pub type FileId = u64;

/// What a recording is asked to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Media time to record (`duration`).
    pub duration: Option<u64>,
    /// Media time per file (`max-file-duration`).
    pub file_duration: Option<u64>,
    /// Bytes of media per file (`max-file-size`).
    pub file_size: Option<u64>,
    /// Files start where the wall clock is a multiple of `file_duration` (the first
    /// file is shorter): `segment-align=clock`.
    pub align_to_clock: bool,
    /// The container starts every track at the file's start (fragmented MP4): audio
    /// before the first video keyframe cannot be kept.
    pub tracks_start_together: bool,
    /// How far into an audio packet the container lets a file's audio begin.
    pub audio_head_cut: HeadCut,
}

/// How far into an audio packet a file's (or a recording's) start may cut it, the
/// cut samples skipped by the decoder (see `cut_is_clean`). The container decides
/// (`Container::audio_head_cut`): none of the muxers here can drop the head of a
/// track's first packet, so there is one rule; a container that can (an edit list)
/// would add a variant cutting anywhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HeadCut {
    /// Less than half the packet (with a millisecond to spare), so the next packet
    /// starts beyond the cut: a packet cut more is left out at a recording's start,
    /// and at a file boundary goes wholly to the file before it.
    #[default]
    UnderHalfPacket,
}

impl HeadCut {
    /// Whether an audio packet of `duration` ns, `priming` samples of it already
    /// skipped, may begin a file with `head` more ns cut off.
    fn allows(self, duration: u64, priming: u64, head: u64, rate: u64) -> bool {
        match self {
            HeadCut::UnderHalfPacket => cut_is_clean(duration, priming, head, rate),
        }
    }
}

/// A stream taking part, as known when the recording starts.
#[derive(Debug, Clone)]
pub struct TrackSetup {
    pub id: usize,
    pub kind: Kind,
    pub live: bool,
    /// Its encoded format is known (it has sent a frame).
    pub caps_known: bool,
    /// Audio sample rate.
    pub rate: u64,
    /// Upstream's latency (ns): a live source's frame may reach the recorder this long
    /// after its running time (a network camera's jitter buffer holds packets up to
    /// its latency, 2 s for rtspsrc, while it waits for lost ones).
    pub latency: u64,
}

/// One encoded frame and what the decisions need to know of it.
#[derive(Debug, Clone)]
pub struct Frame<P> {
    pub track: usize,
    /// Running time at which it was captured.
    pub rt: u64,
    pub duration: Option<u64>,
    pub keyframe: bool,
    /// Presentation order differs from decoding order (B-frames).
    pub reordered: bool,
    /// How far its decoding time is before its presentation time.
    pub decode_lead: Option<u64>,
    /// Samples the encoder marked to skip at the head and tail (Opus priming).
    pub trim: (u64, u64),
    pub size: u64,
    pub payload: P,
}

/// A frame's place in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write<P> {
    pub file: FileId,
    pub track: usize,
    pub pts: u64,
    pub dts: Option<u64>,
    pub duration: Option<u64>,
    /// Samples to skip at the head and tail, replacing the encoder's marks; `None`
    /// keeps them.
    pub trim: Option<(u64, u64)>,
    /// The track's first frame in this file: the samples its decoder skips (Opus
    /// pre-skip).
    pub pre_skip: Option<u16>,
    pub payload: P,
}

/// What a finished file holds, for `file-closed`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileSummary {
    /// File time of the first frame and of the end of the last.
    pub first: u64,
    pub last: u64,
    /// Running time at which the first frame was captured.
    pub running_time: Option<u64>,
    /// Video frames (audio frames for audio-only files).
    pub frames: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<P> {
    /// Open file `file` for these tracks (video first); its time 0 is media time
    /// `start`.
    Open {
        file: FileId,
        start: u64,
        tracks: Vec<(usize, Kind)>,
        /// Wall-clock time (ns since 1970) at which the file starts, when known: its
        /// name's date fields.
        wall_clock: Option<u64>,
    },
    Write(Write<P>),
    Close {
        file: FileId,
        summary: FileSummary,
    },
    /// Ask the video encoders for a keyframe: now, or at this running time.
    RequestKeyframe(Option<u64>),
    /// These linked tracks sent nothing in time: the recording goes on without them.
    GiveUp(Vec<usize>),
    /// This much audio (ns) came before the recording's first video keyframe and was
    /// left out.
    AudioLeftOut(u64),
    /// Another second of media is recorded.
    Progress {
        recorded: u64,
    },
    /// A live timed recording must have ended by this running time: ask
    /// `time_is_up` then.
    EndBy(u64),
}

/// A raw frame of a live source as it reached its encoder, or was dropped before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    pub rt: u64,
    pub duration: Option<u64>,
    /// Dropped before the encoder: it was too late.
    pub lost: bool,
}

/// What a recording lost of its live sources' frames.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Losses {
    /// Running time from which video is counted: its first capture reported (frames
    /// before it, such as the pre-record ring's, were captured before anyone looked).
    from: Option<u64>,
    /// Video frames captured within the recording, and written to it.
    video_captured: u64,
    video_written: u64,
    /// Audio buffers captured within the recording and dropped before the encoder.
    audio_lost: u64,
    /// Where the last video frame captured within the recording ends (running time),
    /// and how long it lasts.
    video_end: Option<(u64, u64)>,
    /// Video frames the source never delivered before the recording's time was up.
    video_never_came: u64,
    /// Captures reported before the recording started or resumed: judged once it has
    /// (the frame that starts it was captured before it reaches the engine).
    undecided: VecDeque<(usize, Capture)>,
}

/// Most captures kept undecided (two minutes of 30 fps video).
const UNDECIDED_LEN: usize = 4096;

#[derive(Debug)]
struct Track {
    id: usize,
    kind: Kind,
    live: bool,
    caps_known: bool,
    rate: u64,
    latency: u64,
    ended: bool,
    last_rt: Option<u64>,
    /// The engine's count of running-time restarts when its last frame came.
    seen_restarts: u64,
}

/// A frame on the recording's media timeline.
#[derive(Debug, Clone)]
struct Placed<P> {
    track: usize,
    kind: Kind,
    pts: u64,
    duration: Option<u64>,
    keyframe: bool,
    decode_lead: Option<u64>,
    /// Samples to skip at the head and tail, and whether that differs from the
    /// encoder's own marks.
    trim: (u64, u64),
    retrimmed: bool,
    size: u64,
    payload: P,
}

impl<P> Placed<P> {
    fn end(&self) -> u64 {
        self.pts + self.duration.unwrap_or(0)
    }

    /// Cuts `head` ns off the start and `tail` ns off the end, in samples at `rate`.
    fn cut(&mut self, head: u64, tail: u64, rate: u64) {
        let head = ns_to_samples(head, rate);
        let tail = ns_to_samples(tail, rate);
        if head > 0 || tail > 0 {
            self.trim = (self.trim.0 + head, self.trim.1 + tail);
            self.retrimmed = true;
        }
    }
}

#[derive(Debug)]
enum Queued<P> {
    /// Audio waiting for the video keyframe that fixes where it goes.
    Unplaced(Frame<P>),
    /// Placed; its file is not known yet.
    Placed(Placed<P>),
}

#[derive(Debug)]
struct OpenFile {
    id: FileId,
    /// Media time at which this file starts (its time 0).
    start: u64,
    /// Media time at which it ends, once the next file started (it still takes the
    /// audio before that).
    end: Option<u64>,
    started: HashSet<usize>,
    summary: FileSummary,
    first: Option<u64>,
    bytes: u64,
}

pub struct Engine<P> {
    limits: Limits,
    timeline: Timeline,
    tracks: Vec<Track>,
    /// Tracks taking part; fixed when the first file opens.
    expected: Vec<usize>,
    /// The first file's tracks, once fixed.
    file_tracks: Option<Vec<(usize, Kind)>>,
    /// The file being written, and before it the earlier ones that still take audio
    /// up to their ends (audio lags the video that cut them), oldest first.
    current: Option<OpenFile>,
    previous: VecDeque<OpenFile>,
    next_file: FileId,
    waiting: VecDeque<Queued<P>>,
    /// Times the running time went back (flushing seeks upstream).
    restarts: u64,
    finished: HashSet<usize>,
    reached_duration: bool,
    /// Wall-clock time at which the recording first had to wait for a stream.
    waiting_since: Option<Duration>,
    next_progress: u64,
    /// Wall-clock time (ns since 1970) at running time 0, once known.
    wall_at_zero: Option<i64>,
    /// Audio (ns) dropped for coming before the recording's start, and whether that
    /// was reported.
    audio_left_out: u64,
    left_out_reported: bool,
    losses: Losses,
    /// The timeline generation for which `EndBy` was last announced.
    end_announced: Option<u64>,
    /// `finish` was called: nothing waits for another file.
    finishing: bool,
}

impl<P: Clone> Engine<P> {
    pub fn new(limits: Limits, tracks: Vec<TrackSetup>) -> Self {
        let has_video = tracks.iter().any(|t| t.kind == Kind::Video);
        Engine {
            timeline: Timeline::new(has_video, limits.duration),
            limits,
            expected: tracks.iter().map(|t| t.id).collect(),
            tracks: tracks
                .into_iter()
                .map(|t| Track {
                    id: t.id,
                    kind: t.kind,
                    live: t.live,
                    caps_known: t.caps_known,
                    rate: t.rate.max(1),
                    latency: t.latency,
                    ended: false,
                    last_rt: None,
                    seen_restarts: 0,
                })
                .collect(),
            file_tracks: None,
            current: None,
            previous: VecDeque::new(),
            next_file: 0,
            waiting: VecDeque::new(),
            restarts: 0,
            finished: HashSet::new(),
            reached_duration: false,
            waiting_since: None,
            next_progress: PROGRESS_INTERVAL,
            wall_at_zero: None,
            audio_left_out: 0,
            left_out_reported: false,
            losses: Losses::default(),
            end_announced: None,
            finishing: false,
        }
    }

    // ----- what the glue reads -----

    /// Media time recorded so far.
    pub fn recorded(&self) -> u64 {
        self.timeline.recorded()
    }

    /// The recording stopped because it reached `duration`.
    pub fn reached_duration(&self) -> bool {
        self.reached_duration
    }

    /// Every track taking part has ended or reached the duration.
    pub fn is_complete(&self) -> bool {
        !self.expected.is_empty() && self.expected.iter().all(|id| self.finished.contains(id))
    }

    /// Frames of live sources this recording lost: video frames captured within it
    /// and not written (dropped before the encoder, or still in an encoder that could
    /// not keep up when it ended), and audio buffers dropped before the encoder.
    /// Exact once the recording has ended and every capture was reported.
    pub fn lost(&self) -> u64 {
        let l = &self.losses;
        l.video_captured.saturating_sub(l.video_written) + l.video_never_came + l.audio_lost
    }

    /// The running time by which a live timed recording must have ended: its end plus
    /// the largest latency of its live sources plus `END_GRACE`. None when it has no
    /// end yet (not started, paused) or is not live.
    pub fn end_by(&self) -> Option<u64> {
        let latency = self
            .tracks
            .iter()
            .filter(|t| self.expected.contains(&t.id) && t.live)
            .map(|t| t.latency)
            .max();
        let latency = latency.filter(|_| !self.timeline.is_paused())?;
        let end = self.timeline.running_time_of(self.timeline.limit()?)?;
        Some(end.saturating_add(latency).saturating_add(END_GRACE))
    }

    /// Whether the engine still needs to know the wall clock.
    pub fn needs_wall_clock(&self) -> bool {
        self.wall_at_zero.is_none()
    }

    // ----- inputs -----

    /// The wall-clock time (ns since 1970) at running time 0.
    pub fn wall_clock(&mut self, at_zero: i64) {
        self.wall_at_zero = Some(at_zero);
    }

    /// A track's encoded format became known (its first frame follows).
    pub fn caps_known(&mut self, track: usize, kind: Kind, rate: u64) {
        if let Some(t) = self.track_mut(track) {
            t.caps_known = true;
            t.kind = kind;
            t.rate = rate.max(1);
        }
    }

    /// A track ended.
    pub fn end_of_stream(&mut self, track: usize) {
        if let Some(t) = self.track_mut(track) {
            t.ended = true;
        }
        if self.expected.contains(&track) {
            self.finished.insert(track);
        }
    }

    /// Raw frames of a live track reached its encoder or were dropped before it.
    pub fn captured(&mut self, track: usize, captures: &[Capture]) {
        if !self.expected.contains(&track) {
            return;
        }
        if let Some(first) = captures
            .first()
            .filter(|_| self.kind_of(track) == Kind::Video)
        {
            self.losses.from.get_or_insert(first.rt);
        }
        if !self.timeline.is_started() || self.timeline.is_paused() {
            let undecided = &mut self.losses.undecided;
            for c in captures {
                if undecided.len() >= UNDECIDED_LEN {
                    undecided.pop_front();
                }
                undecided.push_back((track, *c));
            }
            return;
        }
        self.count_captures(track, captures);
    }

    /// Counts what captures within the recording were lost.
    fn count_captures(&mut self, track: usize, captures: &[Capture]) {
        let kind = self.kind_of(track);
        for c in captures {
            if kind == Kind::Video && self.losses.from.is_some_and(|from| c.rt < from) {
                continue;
            }
            if !self.timeline.covers(kind, c.rt, c.duration) {
                continue;
            }
            match kind {
                Kind::Video => {
                    self.losses.video_captured += 1;
                    if let Some(d) = c.duration.filter(|d| *d > 0) {
                        let end = self.losses.video_end.map_or(0, |(e, _)| e);
                        self.losses.video_end = Some((end.max(c.rt + d), d));
                    }
                }
                Kind::Audio if c.lost => self.losses.audio_lost += 1,
                Kind::Audio => {}
            }
        }
    }

    /// The running time is `now`: a live timed recording past `end_by` ends here,
    /// however far behind its encoders are (what they still hold is lost). True when
    /// it ended.
    pub fn time_is_up(&mut self, now: u64) -> bool {
        if self.is_complete() || self.end_by().is_none_or(|end| now < end) {
            return false;
        }
        self.finished.extend(self.expected.iter().copied());
        self.reached_duration = true;
        // Frames that should have followed the last one captured, up to the end (a
        // frame counts where most of it lies), never came: lost too.
        let end = self
            .timeline
            .limit()
            .and_then(|limit| self.timeline.running_time_of(limit));
        if let (Some(end), Some((last, frame))) = (end, self.losses.video_end) {
            let left = end.saturating_sub(last);
            if left >= frame / 2 {
                self.losses.video_never_came = (left - frame / 2) / frame + 1;
            }
        }
        true
    }

    pub fn pause(&mut self) {
        self.timeline.pause();
    }

    pub fn resume(&mut self) {
        self.timeline.resume();
    }

    /// Sorts one encoded frame into the recording. `now` is wall-clock time (any
    /// fixed origin), for the wait on a live recording's silent streams.
    pub fn frame(&mut self, frame: Frame<P>, now: Duration) -> Vec<Action<P>> {
        let mut out = Vec::new();
        let Some(index) = self.tracks.iter().position(|t| t.id == frame.track) else {
            return out;
        };
        if !self.expected.contains(&frame.track) {
            return out;
        }
        let track = &mut self.tracks[index];
        let went_back = track
            .last_rt
            .is_some_and(|last| frame.rt + TIME_JUMP < last);
        track.last_rt = Some(frame.rt);
        // All tracks go back after a flushing seek: the first to notice restarts the
        // mapping; the others find it restarted already.
        if went_back && track.seen_restarts == self.restarts {
            self.restarts += 1;
            self.timeline.discontinuity();
            out.push(Action::RequestKeyframe(None));
        }
        track.seen_restarts = self.restarts;
        let kind = track.kind;
        // A frame goes behind its track's frames that wait (held for the video, or
        // past a boundary the video has not cut yet): placed before them, it would
        // lay them end to end after itself.
        if (kind == Kind::Audio && self.timeline.is_waiting_for_video())
            || self.is_waiting(frame.track)
        {
            self.waiting.push_back(Queued::Unplaced(frame));
        } else {
            self.place(frame, kind, &mut out);
        }
        self.drain(&mut out);
        self.give_up_on_silent_video(now, &mut out);
        self.open_first_file_when_ready(now, &mut out);
        self.progress(&mut out);
        self.announce_end(&mut out);
        if self.timeline.is_started() && !self.timeline.is_paused() {
            for (track, capture) in std::mem::take(&mut self.losses.undecided) {
                self.count_captures(track, &[capture]);
            }
        }
        out
    }

    /// Says once per start or resume by when a live timed recording must end.
    fn announce_end(&mut self, out: &mut Vec<Action<P>>) {
        let generation = self.timeline.generation();
        if self.end_announced == Some(generation) {
            return;
        }
        if let Some(end) = self.end_by() {
            self.end_announced = Some(generation);
            out.push(Action::EndBy(end));
        }
    }

    /// Ends the recording: what waits goes to the last file, and the files close
    /// (the previous one first).
    pub fn finish(&mut self) -> Vec<Action<P>> {
        let mut out = Vec::new();
        self.report_left_out(&mut out);
        if self.file_tracks.is_none() && self.has_placed_waiting() {
            self.open_first_file(&mut out);
        }
        // Audio past a boundary the recording never reached ends this file, with the
        // audio queued behind it.
        self.finishing = true;
        self.drain(&mut out);
        for item in std::mem::take(&mut self.waiting) {
            if let Queued::Placed(placed) = item {
                self.write_current(placed, false, &mut out);
            }
        }
        for file in std::mem::take(&mut self.previous)
            .into_iter()
            .chain(self.current.take())
        {
            out.push(close(file));
        }
        out
    }

    // ----- placing -----

    fn place(&mut self, frame: Frame<P>, kind: Kind, out: &mut Vec<Action<P>>) {
        if kind == Kind::Video && frame.keyframe && !self.timeline.is_started() {
            self.start_with_early_audio(frame.rt);
        }
        if kind == Kind::Audio && self.current.is_none() && self.timeline.is_started() {
            self.move_start_to_early_audio(frame.rt);
        }
        let verdict = match kind {
            Kind::Video => self.timeline.video(
                frame.track,
                frame.rt,
                frame.duration,
                frame.keyframe,
                frame.reordered,
            ),
            Kind::Audio => self.timeline.audio(frame.track, frame.rt, frame.duration),
        };
        match verdict {
            Verdict::Drop => {
                let before_start = self.timeline.generation() == 1
                    && self
                        .timeline
                        .anchor_rt()
                        .is_some_and(|start| frame.rt < start);
                if kind == Kind::Audio && before_start {
                    self.audio_left_out += frame.duration.unwrap_or(0);
                }
            }
            Verdict::Hold => self.waiting.push_back(Queued::Unplaced(frame)),
            Verdict::Finished => {
                self.finished.insert(frame.track);
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
                let rate = self.rate_of(frame.track);
                if kind == Kind::Audio
                    && clip_start > 0
                    && !self.limits.audio_head_cut.allows(
                        frame.duration.unwrap_or(0),
                        frame.trim.0,
                        clip_start,
                        rate,
                    )
                {
                    // The next packet starts less than half a packet after the start.
                    return;
                }
                if kind == Kind::Audio {
                    self.report_left_out(out);
                }
                let mut placed = Placed {
                    track: frame.track,
                    kind,
                    pts,
                    duration,
                    keyframe: frame.keyframe,
                    decode_lead: frame.decode_lead,
                    trim: frame.trim,
                    retrimmed: false,
                    size: frame.size,
                    payload: frame.payload,
                };
                placed.cut(clip_start, clip_end, rate);
                self.route(placed, out);
            }
        }
    }

    /// A non-live recording whose held audio starts well before its first video
    /// keyframe (at `keyframe_rt`) starts with that audio: nothing of a file is lost.
    /// A live one starts with the picture, and so does a file whose tracks must start
    /// together.
    fn start_with_early_audio(&mut self, keyframe_rt: u64) {
        if !self.may_start_with_audio() {
            return;
        }
        let first_audio = self
            .waiting
            .iter()
            .filter_map(|w| match w {
                Queued::Unplaced(f) => Some(f.rt),
                Queued::Placed(_) => None,
            })
            .min();
        if let Some(first) = first_audio.filter(|&a| a + AUDIO_LEAD_KEPT <= keyframe_rt) {
            self.timeline.start_at(first);
        }
    }

    /// The first audio of a non-live recording that started with a video keyframe,
    /// before its file opened (the audio's encoder was slower to deliver): where it
    /// starts well before the keyframe, the recording starts with it instead, and the
    /// frames waiting for the file move later by as much.
    fn move_start_to_early_audio(&mut self, audio_rt: u64) {
        if !self.may_start_with_audio()
            || self.timeline.generation() != 1
            || self.timeline.audio_started()
        {
            return;
        }
        let Some(start) = self.timeline.anchor_rt() else {
            return;
        };
        if audio_rt + AUDIO_LEAD_KEPT > start {
            return;
        }
        let later = self.timeline.move_start(audio_rt);
        for item in self.waiting.iter_mut() {
            if let Queued::Placed(placed) = item {
                placed.pts += later;
            }
        }
    }

    /// Audio before the first picture may be kept: not live, and the container lets a
    /// track start after the file.
    fn may_start_with_audio(&self) -> bool {
        let live = self
            .tracks
            .iter()
            .any(|t| self.expected.contains(&t.id) && t.live);
        !live && !self.limits.tracks_start_together
    }

    /// Once the audio has reached the recording's start (or the recording ends): says
    /// how much audio before the start was left out, where that is more than an
    /// encoder's wait.
    fn report_left_out(&mut self, out: &mut Vec<Action<P>>) {
        if self.left_out_reported {
            return;
        }
        self.left_out_reported = true;
        if self.audio_left_out >= AUDIO_LEFT_OUT_REPORTED {
            out.push(Action::AudioLeftOut(self.audio_left_out));
        }
    }

    /// Takes from the queue what may leave it now, in order, until nothing moves.
    fn drain(&mut self, out: &mut Vec<Action<P>>) {
        loop {
            let before = self.waiting.len();
            if before == 0 {
                return;
            }
            let mut blocked: HashSet<usize> = HashSet::new();
            let queue = std::mem::take(&mut self.waiting);
            for item in queue {
                let track = match &item {
                    Queued::Unplaced(f) => f.track,
                    Queued::Placed(p) => p.track,
                };
                if blocked.contains(&track) {
                    self.waiting.push_back(item);
                    continue;
                }
                let len = self.waiting.len();
                match item {
                    Queued::Unplaced(frame) if self.timeline.is_waiting_for_video() => {
                        self.waiting.push_back(Queued::Unplaced(frame));
                    }
                    Queued::Unplaced(frame) => {
                        let kind = self.kind_of(frame.track);
                        self.place(frame, kind, out);
                    }
                    Queued::Placed(placed) => self.route(placed, out),
                }
                // A frame that went back to the queue holds its track's later ones.
                if self.waiting.len() > len {
                    blocked.insert(track);
                }
            }
            if self.waiting.len() >= before {
                return;
            }
        }
    }

    /// Whether frames of `track` wait in the queue (usually empty: no scan then).
    fn is_waiting(&self, track: usize) -> bool {
        !self.waiting.is_empty()
            && self.waiting.iter().any(|w| match w {
                Queued::Unplaced(f) => f.track == track,
                Queued::Placed(p) => p.track == track,
            })
    }

    fn has_placed_waiting(&self) -> bool {
        self.waiting.iter().any(|w| matches!(w, Queued::Placed(_)))
    }

    // ----- files -----

    fn has_video_track(&self) -> bool {
        self.file_tracks
            .as_ref()
            .is_some_and(|t| t.iter().any(|(_, k)| *k == Kind::Video))
    }

    fn has_audio_track(&self) -> bool {
        self.file_tracks
            .as_ref()
            .is_some_and(|t| t.iter().any(|(_, k)| *k == Kind::Audio))
    }

    /// Whether a video keyframe may still cut the next boundary: not once every video
    /// track ended or the recording finishes (the audio beyond it then ends the last
    /// file).
    fn video_may_cut(&self) -> bool {
        !self.finishing
            && self
                .tracks
                .iter()
                .any(|t| self.expected.contains(&t.id) && t.kind == Kind::Video && !t.ended)
    }

    fn segmenting(&self) -> bool {
        self.limits.file_duration.is_some() || self.limits.file_size.is_some()
    }

    /// Media time where a file starting at `start` ends by `max-file-duration`: that
    /// long after its start, or with `align_to_clock` where the wall clock next
    /// reaches a multiple of it.
    fn segment_end(&self, start: u64) -> Option<u64> {
        let length = self.limits.file_duration?;
        match self
            .wall_clock_of(start)
            .filter(|_| self.limits.align_to_clock)
        {
            // A file that starts on a multiple (give or take a frame) ends on the next
            // one, even when its first frame comes just before the multiple.
            Some(wall) => Some(start + (on_multiple(wall, length) / length + 1) * length - wall),
            None => Some(start.saturating_add(length)),
        }
    }

    /// Wall-clock time (ns since 1970) at media time `media`.
    fn wall_clock_of(&self, media: u64) -> Option<u64> {
        let rt = self.timeline.running_time_of(media)?;
        u64::try_from(i64::try_from(rt).ok()?.checked_add(self.wall_at_zero?)?).ok()
    }

    /// The wall-clock time a file starting at `start` is named by: an aligned file
    /// starts on the multiple, though its first frame may come up to half a frame
    /// before it.
    fn name_time(&self, start: u64) -> Option<u64> {
        let wall = self.wall_clock_of(start)?;
        match self
            .limits
            .file_duration
            .filter(|_| self.limits.align_to_clock)
        {
            Some(length) => Some(on_multiple(wall, length)),
            None => Some(wall),
        }
    }

    /// Sends a placed frame to its file, starting the next file where one is due.
    fn route(&mut self, placed: Placed<P>, out: &mut Vec<Action<P>>) {
        let Some(current) = self.current.as_ref() else {
            // Before the first file opens.
            if self.file_tracks.is_none() {
                self.waiting.push_back(Queued::Placed(placed));
            }
            return;
        };
        let has_video = self.has_video_track();
        // Audio runs ahead of video (the video encoder is slower): audio reaching past
        // the next boundary waits for the video keyframe that opens the next file.
        if placed.kind == Kind::Audio && self.previous.is_empty() && self.video_may_cut() {
            if let Some(boundary) = self.segment_end(current.start) {
                if placed.end() > boundary {
                    self.waiting.push_back(Queued::Placed(placed));
                    return;
                }
            }
        }
        let cuts_here = placed.kind == Kind::Video || !has_video;
        // A file holds at least one frame, however short the segments asked for.
        if self.segmenting() && cuts_here && placed.keyframe && current.summary.frames > 0 {
            let half = placed.duration.unwrap_or(0) / 2;
            let by_time = self
                .segment_end(current.start)
                .is_some_and(|end| placed.pts + half >= end);
            let by_size = self
                .limits
                .file_size
                .is_some_and(|max| current.bytes >= max);
            if by_time || by_size {
                self.next_file(placed.pts, out);
            }
        }
        let counts = cuts_here;
        if placed.kind == Kind::Audio {
            self.route_lagging_audio(placed, counts, out);
            return;
        }
        self.write_current(placed, counts, out);
    }

    /// Audio goes to the earliest file still open whose end it starts before; the
    /// files before that are complete. Audio from before every open file (their
    /// number is bounded, see `MAX_FILES_AWAITING_AUDIO`) has no file left: it is
    /// dropped rather than written at another file's start.
    fn route_lagging_audio(&mut self, placed: Placed<P>, counts: bool, out: &mut Vec<Action<P>>) {
        while let Some(boundary) = self.previous.front().and_then(|f| f.end) {
            if placed.pts < boundary {
                let start = self.previous.front().map_or(0, |f| f.start);
                if placed.end() <= start {
                    return;
                }
                self.split_at_boundary(placed, boundary, counts, out);
                return;
            }
            // Audio has reached the next file: this one is complete.
            if let Some(file) = self.previous.pop_front() {
                out.push(close(file));
            }
        }
        self.write_current(placed, counts, out);
    }

    /// Audio that starts before the boundary: the part before it ends the previous
    /// file, the rest begins the current one, at the same media time, to the sample.
    fn split_at_boundary(
        &mut self,
        placed: Placed<P>,
        boundary: u64,
        counts: bool,
        out: &mut Vec<Action<P>>,
    ) {
        let rate = self.rate_of(placed.track);
        let end = placed.end();
        let clean = self.limits.audio_head_cut.allows(
            placed.duration.unwrap_or(0),
            placed.trim.0,
            boundary - placed.pts,
            rate,
        );
        if end <= boundary || !clean {
            // Wholly before the boundary; or straddling it where the next file's audio
            // may start with the packet after it, less than half a packet after its
            // start: nothing is lost.
            self.write_previous(placed, counts, out);
            return;
        }
        let mut head = placed.clone();
        head.duration = Some(boundary - placed.pts);
        head.cut(0, end - boundary, rate);
        let mut tail = placed;
        tail.cut(boundary - tail.pts, 0, rate);
        tail.pts = boundary;
        tail.duration = Some(end - boundary);
        self.write_previous(head, counts, out);
        if let Some(file) = self.previous.pop_front() {
            out.push(close(file));
        }
        self.route_lagging_audio(tail, counts, out);
    }

    fn write_previous(&mut self, placed: Placed<P>, counts: bool, out: &mut Vec<Action<P>>) {
        self.write_to(true, placed, counts, out);
    }

    fn write_current(&mut self, placed: Placed<P>, counts: bool, out: &mut Vec<Action<P>>) {
        self.write_to(false, placed, counts, out);
    }

    /// Writes a placed frame to the earliest previous file, or else to the current
    /// one.
    fn write_to(
        &mut self,
        previous: bool,
        placed: Placed<P>,
        counts: bool,
        out: &mut Vec<Action<P>>,
    ) {
        let rt = self.timeline.running_time_of(placed.pts);
        let file = if previous {
            self.previous.front_mut()
        } else {
            self.current.as_mut()
        };
        if let Some(file) = file {
            out.push(Action::Write(write(
                file,
                placed,
                counts,
                rt,
                &mut self.losses,
            )));
        }
    }

    /// Ends the current file at media time `start` and opens the next there.
    fn next_file(&mut self, start: u64, out: &mut Vec<Action<P>>) {
        let Some(mut old) = self.current.take() else {
            return;
        };
        if self.has_video_track() && self.audio_may_come() {
            // Audio lags the video that cut (by more than a file, with a slow audio
            // encoder and short files): the old file takes it up to `start`.
            old.end = Some(start);
            self.previous.push_back(old);
            while self.previous.len() > MAX_FILES_AWAITING_AUDIO {
                if let Some(file) = self.previous.pop_front() {
                    out.push(close(file));
                }
            }
        } else {
            for file in std::mem::take(&mut self.previous) {
                out.push(close(file));
            }
            out.push(close(old));
        }
        self.open_file(start, out);
    }

    /// Whether audio may still come for the files: an audio track taking part has
    /// not ended, or its audio waits in the queue (an encoder ahead of the video
    /// ends first).
    fn audio_may_come(&self) -> bool {
        let waiting = || {
            self.waiting.iter().any(|w| match w {
                Queued::Unplaced(f) => self.kind_of(f.track) == Kind::Audio,
                Queued::Placed(p) => p.kind == Kind::Audio,
            })
        };
        self.has_audio_track()
            && (self
                .tracks
                .iter()
                .any(|t| self.expected.contains(&t.id) && t.kind == Kind::Audio && !t.ended)
                || waiting())
    }

    fn open_file(&mut self, start: u64, out: &mut Vec<Action<P>>) {
        let id = self.next_file;
        self.next_file += 1;
        out.push(Action::Open {
            file: id,
            start,
            tracks: self.file_tracks.clone().unwrap_or_default(),
            wall_clock: self.name_time(start),
        });
        self.current = Some(OpenFile {
            id,
            start,
            end: None,
            started: HashSet::new(),
            summary: FileSummary::default(),
            first: None,
            bytes: 0,
        });
        // The next boundary's keyframe, asked for ahead so the file ends on time.
        if let Some(boundary) = self.segment_end(start).filter(|_| self.has_video_track()) {
            if let Some(rt) = self.timeline.running_time_of(boundary) {
                out.push(Action::RequestKeyframe(Some(rt)));
            }
        }
    }

    // ----- waiting for streams -----

    /// Audio held for a video stream that never sends: after a while (live only),
    /// record the audio alone rather than nothing.
    fn give_up_on_silent_video(&mut self, now: Duration, out: &mut Vec<Action<P>>) {
        // Once started, nothing is held for the start: no scan of the queue per frame.
        if self.timeline.is_started() {
            return;
        }
        let holding = self
            .waiting
            .iter()
            .any(|w| matches!(w, Queued::Unplaced(_)));
        if !holding || !self.wait_is_over(now) {
            return;
        }
        let silent: Vec<usize> = self
            .tracks
            .iter()
            .filter(|t| self.expected.contains(&t.id) && t.kind == Kind::Video && !t.caps_known)
            .map(|t| t.id)
            .collect();
        if silent.is_empty() {
            return;
        }
        out.push(Action::GiveUp(silent.clone()));
        self.expected.retain(|id| !silent.contains(id));
        let video_left = self
            .tracks
            .iter()
            .any(|t| self.expected.contains(&t.id) && t.kind == Kind::Video);
        if !video_left {
            self.timeline.forget_video();
            self.drain(out);
        }
    }

    /// Whether to stop waiting for streams that have sent nothing yet: only on a live
    /// recording, `LIVE_STREAM_WAIT` after it first had to wait.
    fn wait_is_over(&mut self, now: Duration) -> bool {
        let live = self
            .tracks
            .iter()
            .any(|t| self.expected.contains(&t.id) && t.live);
        if !live {
            return false;
        }
        let since = *self.waiting_since.get_or_insert(now);
        now.saturating_sub(since) >= LIVE_STREAM_WAIT
    }

    /// Opens the first file once every track taking part has told its format, has
    /// ended, or (live) has lagged too long.
    fn open_first_file_when_ready(&mut self, now: Duration, out: &mut Vec<Action<P>>) {
        if self.file_tracks.is_some() || !self.has_placed_waiting() {
            return;
        }
        let silent: Vec<usize> = self
            .tracks
            .iter()
            .filter(|t| self.expected.contains(&t.id) && !t.caps_known && !t.ended)
            .map(|t| t.id)
            .collect();
        if !silent.is_empty() {
            if !self.wait_is_over(now) {
                return;
            }
            out.push(Action::GiveUp(silent));
        }
        self.open_first_file(out);
    }

    /// Opens the first file with the tracks that told their format, and writes what
    /// waited.
    fn open_first_file(&mut self, out: &mut Vec<Action<P>>) {
        let mut tracks: Vec<(usize, Kind)> = self
            .tracks
            .iter()
            .filter(|t| self.expected.contains(&t.id) && t.caps_known)
            .map(|t| (t.id, t.kind))
            .collect();
        tracks.sort_by_key(|(_, kind)| *kind != Kind::Video);
        self.expected
            .retain(|id| tracks.iter().any(|(t, _)| t == id));
        self.file_tracks = Some(tracks);
        self.open_file(0, out);
        self.drain(out);
    }

    fn progress(&mut self, out: &mut Vec<Action<P>>) {
        let recorded = self.timeline.recorded();
        if recorded < self.next_progress || self.current.is_none() {
            return;
        }
        self.next_progress = (recorded / PROGRESS_INTERVAL + 1) * PROGRESS_INTERVAL;
        out.push(Action::Progress { recorded });
    }

    fn track_mut(&mut self, id: usize) -> Option<&mut Track> {
        self.tracks.iter_mut().find(|t| t.id == id)
    }

    fn kind_of(&self, id: usize) -> Kind {
        self.tracks
            .iter()
            .find(|t| t.id == id)
            .map_or(Kind::Audio, |t| t.kind)
    }

    fn rate_of(&self, id: usize) -> u64 {
        self.tracks
            .iter()
            .find(|t| t.id == id)
            .map_or(48_000, |t| t.rate)
    }
}

/// A placed frame at its file's time; the file's summary counts it.
fn write<P>(
    file: &mut OpenFile,
    placed: Placed<P>,
    counts: bool,
    rt: Option<u64>,
    losses: &mut Losses,
) -> Write<P> {
    if placed.kind == Kind::Video && rt.zip(losses.from).is_some_and(|(rt, from)| rt >= from) {
        losses.video_written += 1;
    }
    let pts = placed.pts.saturating_sub(file.start);
    let dts = placed
        .decode_lead
        .map(|lead| placed.pts.saturating_sub(lead).saturating_sub(file.start));
    let end = pts + placed.duration.unwrap_or(0);
    if file.first.is_none_or(|f| pts < f) {
        file.first = Some(pts);
        file.summary.first = pts;
        file.summary.running_time = rt;
    }
    file.summary.last = file.summary.last.max(end);
    if counts {
        file.summary.frames += 1;
    }
    file.bytes += placed.size;
    // A file's first Opus packet is usually cut at its head (the recording or the
    // file starts inside it): its decoder skips those samples through the track's
    // pre-skip, and no others.
    let pre_skip = file
        .started
        .insert(placed.track)
        .then(|| u16::try_from(placed.trim.0).unwrap_or(u16::MAX));
    Write {
        file: file.id,
        track: placed.track,
        pts,
        dts,
        duration: placed.duration,
        trim: placed.retrimmed.then_some(placed.trim),
        pre_skip,
        payload: placed.payload,
    }
}

fn close<P>(file: OpenFile) -> Action<P> {
    Action::Close {
        file: file.id,
        summary: file.summary,
    }
}

fn ns_to_samples(ns: u64, rate: u64) -> u64 {
    (u128::from(ns) * u128::from(rate) / 1_000_000_000) as u64
}

/// Whether an audio packet of `duration` ns, with `priming` samples already skipped
/// at its head, may begin a file with `head` more ns cut off. The cut (with the
/// encoder's priming) becomes the track's pre-skip; cut at half or more, the next
/// packet would start within what this one still plays (see `HeadCut`). So the cut
/// must stay under half the packet, with a millisecond to spare for rounding;
/// otherwise the packet is left out and the next one begins the file.
fn cut_is_clean(duration: u64, priming: u64, head: u64, rate: u64) -> bool {
    let priming = priming * 1_000_000_000 / rate.max(1);
    clean_cut(head + priming, duration + priming)
}

/// `cut` ns skipped at the head of a packet `full` ns long leaves the next packet's
/// start beyond the cut (see `cut_is_clean`).
fn clean_cut(cut: u64, full: u64) -> bool {
    cut * 2 + 2_000_000 <= full
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
