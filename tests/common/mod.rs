//! Helpers for tests: set up GStreamer, run pipelines with a deadline, and judge the
//! files written as a player would (decode them, read their index).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use gst::prelude::*;

pub const MS: u64 = 1_000_000;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstmediarecorder::plugin_register_static().expect("the plugin registers");
        for factory in [
            "vp8enc",
            "opusenc",
            "webmmux",
            "matroskademux",
            "vp8dec",
            "opusdec",
        ] {
            assert!(
                gst::ElementFactory::find(factory).is_some(),
                "GStreamer element {factory} is missing: run scripts/setup.sh"
            );
        }
    });
}

/// The files in `dir` whose names `keep` accepts, sorted.
pub fn files_in(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| keep(&name_of(p)))
        .collect();
    files.sort();
    files
}

/// The files in `dir` with the extension `ext` (`webm`), sorted.
pub fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    files_in(dir, |name| {
        Path::new(name).extension().is_some_and(|e| e == ext)
    })
}

/// A file's name.
pub fn name_of(path: &Path) -> String {
    path.file_name()
        .unwrap_or_else(|| panic!("{} names no file", path.display()))
        .to_string_lossy()
        .into_owned()
}

/// `s` split at white space, as a shell splits a command line without quotes.
pub fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// A fresh, empty folder for one test's files.
pub fn tmp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A folder of this test process alone (others may run the same tests at the same
/// time), `<test>-<pid>/<name>`, removed when the test passes and kept for a look when
/// it fails.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let test = env!("CARGO_CRATE_NAME");
        Scratch(tmp_dir(&format!("{test}-{}/{name}", std::process::id())))
    }

    pub fn join(&self, file: impl AsRef<Path>) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
            if let Some(parent) = self.0.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// Sets the pipeline to NULL when the test ends, also on panic.
pub struct Running(pub gst::Pipeline);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

impl std::ops::Deref for Running {
    type Target = gst::Pipeline;
    fn deref(&self) -> &gst::Pipeline {
        &self.0
    }
}

pub fn launch(description: &str) -> Running {
    let pipeline = gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("cannot build '{description}': {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    Running(pipeline)
}

/// The pipeline's `appsrc` named `name`.
pub fn app_src(pipeline: &gst::Pipeline, name: &str) -> gst_app::AppSrc {
    pipeline
        .by_name(name)
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .unwrap_or_else(|| panic!("no appsrc named {name}"))
}

/// The element of `factory` inside the recorder, once its branch is built.
pub fn element_inside(recorder: &gst::Element, factory: &str) -> Option<gst::Element> {
    recorder
        .downcast_ref::<gst::Bin>()
        .expect("the recorder is a bin")
        .iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.factory().is_some_and(|f| f.name() == factory))
}

/// Makes the element of `factory` inside the recorder take `per_frame` for each frame
/// it puts out (a probe that sleeps on its src pad), as on a machine under load.
pub fn slow_down(recorder: &gst::Element, factory: &str, per_frame: Duration) {
    element_inside(recorder, factory)
        .unwrap_or_else(|| panic!("no {factory} in the recorder"))
        .static_pad("src")
        .expect("the element has a src pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            // The slowness under test.
            std::thread::sleep(per_frame);
            gst::PadProbeReturn::Ok
        });
}

/// Hands each buffer leaving `element` (at its src pad), numbered from 0, to `change`
/// before it goes on.
pub fn change_leaving(
    element: &gst::Element,
    change: impl Fn(u64, &mut gst::BufferRef) + Send + Sync + 'static,
) {
    let seen = std::sync::atomic::AtomicU64::new(0);
    element
        .static_pad("src")
        .expect("the element has a src pad")
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(buffer) = info.buffer_mut() {
                change(n, buffer.make_mut());
            }
            gst::PadProbeReturn::Ok
        });
}

pub fn recorder(pipeline: &gst::Pipeline) -> gst::Element {
    pipeline.by_name("r").expect("the recorder is named r")
}

#[derive(Debug)]
pub enum End {
    Eos(Duration),
    Error(String),
    Timeout,
}

/// Plays until EOS or an error; returns how it ended and how long it took.
pub fn play(pipeline: &gst::Pipeline, timeout: Duration) -> End {
    let start = Instant::now();
    if pipeline.set_state(gst::State::Playing).is_err() {
        return match wait_message(pipeline, Duration::from_millis(100)) {
            End::Error(e) => End::Error(e),
            _ => End::Error("state change failed".into()),
        };
    }
    match wait_message(pipeline, timeout) {
        End::Eos(_) => End::Eos(start.elapsed()),
        other => other,
    }
}

/// Waits for EOS or an error on the pipeline's bus; other messages are dropped.
pub fn wait_message(pipeline: &gst::Pipeline, timeout: Duration) -> End {
    wait_end(pipeline, timeout, |_| {})
}

/// Waits for EOS or an error on the pipeline's bus, handing each message taken from it
/// (the last one too) to `each`.
pub fn wait_end(
    pipeline: &gst::Pipeline,
    timeout: Duration,
    mut each: impl FnMut(&gst::Message),
) -> End {
    let bus = pipeline.bus().unwrap();
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            break;
        };
        each(&msg);
        match msg.view() {
            gst::MessageView::Eos(_) => return End::Eos(Duration::ZERO),
            gst::MessageView::Error(e) => {
                return End::Error(format!("{} ({:?})", e.error(), e.debug()))
            }
            _ => {}
        }
    }
    End::Timeout
}

pub fn expect_eos(pipeline: &gst::Pipeline, timeout: Duration) -> Duration {
    match play(pipeline, timeout) {
        End::Eos(d) => d,
        other => panic!("expected EOS, got {other:?}"),
    }
}

/// Plays until the error the test expects and returns its text; EOS or a timeout fails.
#[track_caller]
pub fn expect_error(pipeline: &gst::Pipeline, timeout: Duration) -> String {
    match play(pipeline, timeout) {
        End::Error(msg) => msg,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Fails unless `text` says each of `parts`.
#[track_caller]
pub fn assert_says(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "no '{part}' in: {text}");
    }
}

/// Polls `cond` every 10 ms until it holds (true) or `timeout` has passed (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `command` with its standard output read line by line on a thread of its
/// own (so the child never blocks on a full pipe); the lines come out of the receiver.
pub fn spawn_reading_lines(
    command: &mut std::process::Command,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Waits for a child; kills it after `limit` (None then).
pub fn wait_or_kill(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let mut status = None;
    if wait_until(limit, || {
        status = child.try_wait().unwrap();
        status.is_some()
    }) {
        return status;
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Counts the media that enters a recorder (at its sink pads: what flows, recording or
/// not; a live camera's frames are not even encoded while nothing records) and that
/// reaches its stages: the appsinks inside it (named `stage-<pad>`) where each
/// encoded frame is taken into the recording or left out. Counting starts when this
/// is made, for every stream linked to the recorder then, and stops when it is dropped.
///
/// A frame counts (its duration) once the next one of its stream arrives: the stage
/// handles one frame at a time on its streaming thread, so by then it has taken it.
pub struct MediaCount {
    recorder: gst::Element,
    counts: Arc<Mutex<Vec<StageMedia>>>,
    probes: Vec<(gst::Pad, gst::PadProbeId)>,
}

#[derive(Default)]
struct StageMedia {
    stream: String,
    video: bool,
    /// The last frame seen at the stage (PTS, duration), not counted yet.
    pending: Option<(Option<gst::ClockTime>, Option<gst::ClockTime>)>,
    /// The same at the recorder's sink pad.
    pending_in: Option<(Option<gst::ClockTime>, Option<gst::ClockTime>)>,
    /// Every frame that entered since the count began.
    flowed: u64,
    /// Whether `recorded` counts yet: from the first keyframe (video), from when
    /// video began (other streams).
    began: bool,
    recorded: u64,
}

impl MediaCount {
    pub fn start(recorder: &gst::Element) -> MediaCount {
        let bin = recorder
            .downcast_ref::<gst::Bin>()
            .expect("the recorder is a bin");
        let mut stages = Vec::new();
        for child in bin.children() {
            let name = child.name();
            let Some(stream) = name.strip_prefix("stage-") else {
                continue;
            };
            if recorder.static_pad(stream).is_some_and(|p| p.is_linked()) {
                let pad = child.static_pad("sink").expect("a stage has a sink pad");
                stages.push((stream.to_string(), pad));
            }
        }
        assert!(
            !stages.is_empty(),
            "{} has no linked stream to count media of",
            recorder.name()
        );
        let counts = Arc::new(Mutex::new(
            stages
                .iter()
                .map(|(stream, _)| StageMedia {
                    stream: stream.clone(),
                    video: stream.starts_with("video"),
                    ..StageMedia::default()
                })
                .collect::<Vec<_>>(),
        ));
        let mut probes = Vec::new();
        for (i, (stream, stage)) in stages.into_iter().enumerate() {
            let entry = recorder.static_pad(&stream).expect("the stream's pad");
            for (pad, count) in [
                (
                    entry,
                    frame_entered as fn(&mut [StageMedia], usize, &gst::BufferRef),
                ),
                (stage, frame_reached_stage),
            ] {
                let counts = counts.clone();
                let id = pad
                    .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                        if let Some(buffer) = info.buffer() {
                            count(&mut counts.lock().unwrap(), i, buffer);
                        }
                        gst::PadProbeReturn::Ok
                    })
                    .expect("a probe on the stream");
                probes.push((pad, id));
            }
        }
        MediaCount {
            recorder: recorder.clone(),
            counts,
            probes,
        }
    }

    /// Waits until every stream has had `media` ns enter the recorder since the count
    /// began: media flowing while inactive, or what a recording already under way has
    /// been given. Fails the test after `timeout`.
    #[track_caller]
    pub fn wait_flowed(&self, media: u64, timeout: Duration) {
        self.wait(media, timeout, "flowed into", |s| s.flowed);
    }

    /// For a recording that begins or resumes after the count began: waits until it
    /// has taken `media` ns of every stream. Video counts from its first keyframe (a
    /// recording begins and resumes at one), other streams from when video began.
    /// Fails the test after `timeout`.
    #[track_caller]
    pub fn wait_recorded(&self, media: u64, timeout: Duration) {
        self.wait(media, timeout, "was recorded by", |s| s.recorded);
    }

    #[track_caller]
    fn wait(&self, media: u64, timeout: Duration, what: &str, of: fn(&StageMedia) -> u64) {
        let enough = || self.counts.lock().unwrap().iter().all(|s| of(s) >= media);
        if wait_until(timeout, enough) {
            return;
        }
        let seen: Vec<String> = self
            .counts
            .lock()
            .unwrap()
            .iter()
            .map(|s| format!("{} {:.3} s", s.stream, of(s) as f64 / 1e9))
            .collect();
        panic!(
            "waited {timeout:?} for {:.3} s of media of every stream that {what} {}: only {} \
             (state {})",
            media as f64 / 1e9,
            self.recorder.name(),
            seen.join(", "),
            state_of(&self.recorder)
        );
    }
}

/// The duration of the frame before `buffer` (`pending`), and `buffer` pending next.
fn took_before(
    pending: &mut Option<(Option<gst::ClockTime>, Option<gst::ClockTime>)>,
    buffer: &gst::BufferRef,
) -> Option<u64> {
    let took = pending.take().map(|(pts, duration)| {
        let spacing = buffer.pts().zip(pts).and_then(|(b, a)| b.checked_sub(a));
        duration.or(spacing).map_or(0, gst::ClockTime::nseconds)
    });
    *pending = Some((buffer.pts(), buffer.duration()));
    took
}

fn frame_entered(stages: &mut [StageMedia], i: usize, buffer: &gst::BufferRef) {
    let stage = &mut stages[i];
    if let Some(took) = took_before(&mut stage.pending_in, buffer) {
        stage.flowed += took;
    }
}

fn frame_reached_stage(stages: &mut [StageMedia], i: usize, buffer: &gst::BufferRef) {
    let has_video = stages.iter().any(|s| s.video);
    let video_began = stages.iter().any(|s| s.video && s.began);
    let stage = &mut stages[i];
    if let Some(took) = took_before(&mut stage.pending, buffer) {
        if stage.began {
            stage.recorded += took;
        }
    }
    if !stage.began {
        stage.began = if stage.video {
            !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
        } else {
            !has_video || video_began
        };
    }
}

impl Drop for MediaCount {
    fn drop(&mut self) {
        for (pad, id) in self.probes.drain(..) {
            pad.remove_probe(id);
        }
    }
}

/// Waits until `media` ns of every stream have flowed into the recorder from now on
/// (see `MediaCount::wait_flowed`).
#[track_caller]
pub fn wait_flowed(recorder: &gst::Element, media: u64, timeout: Duration) {
    MediaCount::start(recorder).wait_flowed(media, timeout);
}

/// Collects the recorder's signals, in order, with the `state` read inside each.
#[derive(Clone, Default)]
pub struct Events(pub Arc<Mutex<Vec<(String, String)>>>);

pub struct Chunks(pub Arc<Mutex<Vec<gst::Buffer>>>);

impl Events {
    pub fn watch(recorder: &gst::Element) -> (Events, Chunks) {
        let events = Events::default();
        let chunks = Arc::new(Mutex::new(Vec::new()));
        for name in ["start", "stop", "pause", "resume"] {
            let ev = events.clone();
            recorder.connect(name, false, move |args| {
                let r = args[0].get::<gst::Element>().unwrap();
                ev.push(name, &r);
                None
            });
        }
        let ev = events.clone();
        let ch = chunks.clone();
        recorder.connect("dataavailable", false, move |args| {
            let r = args[0].get::<gst::Element>().unwrap();
            ch.lock()
                .unwrap()
                .push(args[1].get::<gst::Buffer>().unwrap());
            ev.push("dataavailable", &r);
            None
        });
        let ev = events.clone();
        recorder.connect("error", false, move |args| {
            let r = args[0].get::<gst::Element>().unwrap();
            let err = args[1].get::<gst::glib::Error>().unwrap();
            ev.0.lock()
                .unwrap()
                .push((format!("error: {}", err.message()), state_of(&r)));
            None
        });
        (events, Chunks(chunks))
    }

    fn push(&self, name: &str, r: &gst::Element) {
        self.0.lock().unwrap().push((name.to_string(), state_of(r)));
    }

    pub fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.split(':').next().unwrap().to_string())
            .collect()
    }

    pub fn with_states(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }

    /// How many times `name` has been seen.
    pub fn count(&self, name: &str) -> usize {
        self.names().iter().filter(|n| *n == name).count()
    }

    /// Waits until `name` has been seen `count` times.
    pub fn wait_for(&self, name: &str, count: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.count(name) >= count)
    }
}

impl Chunks {
    pub fn joined(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for b in self.0.lock().unwrap().iter() {
            out.extend_from_slice(&b.map_readable().unwrap());
        }
        out
    }
}

pub fn state_of(r: &gst::Element) -> String {
    let v = r.property_value("state");
    let (_, e) = gst::glib::EnumValue::from_value(&v).unwrap();
    e.nick().to_string()
}

/// What a player sees in a file: decoded video frames and audio samples.
#[derive(Debug, Default, Clone)]
pub struct Decoded {
    pub video_pts: Vec<u64>,
    pub video_size: Option<(i32, i32)>,
    /// Each decoded audio buffer: its PTS and its samples.
    pub audio_buffers: Vec<(Option<u64>, u64)>,
    pub audio_rate: u64,
}

impl Decoded {
    pub fn frames(&self) -> usize {
        self.video_pts.len()
    }
    pub fn audio_first_pts(&self) -> Option<u64> {
        self.audio_buffers.first().and_then(|b| b.0)
    }
    pub fn audio_samples(&self) -> u64 {
        self.audio_buffers.iter().map(|b| b.1).sum()
    }
    pub fn audio_duration(&self) -> u64 {
        (self.audio_samples() * 1_000_000_000)
            .checked_div(self.audio_rate)
            .unwrap_or(0)
    }
}

/// Demuxes and decodes a file with GStreamer's own demuxer and decoders.
pub fn decode(path: &Path) -> Decoded {
    init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_str().unwrap())
        .build()
        .unwrap();
    let decodebin = gst::ElementFactory::make("decodebin").build().unwrap();
    pipeline.add_many([&src, &decodebin]).unwrap();
    src.link(&decodebin).unwrap();
    let result = Arc::new(Mutex::new(Decoded::default()));
    let pipeline_weak = pipeline.downgrade();
    let r = result.clone();
    decodebin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipeline_weak.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap();
        let name = caps.structure(0).unwrap().name().to_string();
        let (convert, sink_caps) = if name.starts_with("video/") {
            ("videoconvert", gst::Caps::builder("video/x-raw").build())
        } else {
            (
                "audioconvert",
                gst::Caps::builder("audio/x-raw")
                    .field("format", "S16LE")
                    .build(),
            )
        };
        let conv = gst::ElementFactory::make(convert).build().unwrap();
        let sink = gst_app::AppSink::builder()
            .caps(&sink_caps)
            .sync(false)
            .build();
        pipeline.add_many([&conv, sink.upcast_ref()]).unwrap();
        conv.link(&sink).unwrap();
        conv.sync_state_with_parent().unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&conv.static_pad("sink").unwrap()).unwrap();
        let r = r.clone();
        let is_video = name.starts_with("video/");
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buffer = sample.buffer().unwrap();
                    let caps = sample.caps().unwrap().structure(0).unwrap().to_owned();
                    let mut r = r.lock().unwrap();
                    if is_video {
                        r.video_pts
                            .push(buffer.pts().map(|t| t.nseconds()).unwrap_or(u64::MAX));
                        r.video_size =
                            Some((caps.get("width").unwrap(), caps.get("height").unwrap()));
                    } else {
                        let channels = caps.get::<i32>("channels").unwrap() as u64;
                        r.audio_rate = caps.get::<i32>("rate").unwrap() as u64;
                        let samples = buffer.size() as u64 / 2 / channels;
                        r.audio_buffers
                            .push((buffer.pts().map(|t| t.nseconds()), samples));
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    });
    let running = Running(pipeline);
    match play(&running, Duration::from_secs(60)) {
        End::Eos(_) => {}
        other => panic!("decoding {} failed: {other:?}", path.display()),
    }
    let out = result.lock().unwrap().clone();
    out
}

/// Runs `ffprobe -v error ARGS PATH` (`args` split at white space) and returns how it
/// went: its output and exit.
pub fn ffprobe(path: &Path, args: &str) -> std::process::Output {
    std::process::Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args.split_whitespace())
        .arg(path)
        .output()
        .expect("ffprobe runs (scripts/setup.sh installs ffmpeg)")
}

/// What `ffprobe -v error ARGS -of csv=p=0 PATH` prints: a line of values per entry.
pub fn ffprobe_csv(path: &Path, args: &str) -> String {
    let out = ffprobe(path, &format!("{args} -of csv=p=0"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Audio samples as ffmpeg decodes them, honouring the Opus pre-skip and
/// DiscardPadding the element writes. (GStreamer 1.22's matroskademux + opusdec
/// drop up to a packet more at a file's start when the pre-skip is unusual.)
pub fn ffprobe_audio_samples(path: &std::path::Path) -> u64 {
    ffprobe_csv(path, "-select_streams a -show_entries frame=nb_samples")
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<u64>().ok())
        .sum()
}

/// The parts of a WebM/Matroska file a player uses to seek.
#[derive(Debug, Default)]
pub struct WebmIndex {
    pub doc_type: String,
    pub duration_ms: Option<f64>,
    pub cue_times_ms: Vec<u64>,
    pub clusters_ms: Vec<u64>,
    /// (time in ms, track, keyframe) of each SimpleBlock, in file order.
    pub blocks: Vec<(u64, u64, bool)>,
    /// Byte offsets of cluster starts.
    pub cluster_offsets: Vec<usize>,
}

fn read_vint(data: &[u8], pos: usize, keep_marker: bool) -> Option<(u64, usize)> {
    let first = *data.get(pos)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || pos + len > data.len() {
        return None;
    }
    let mut value = if keep_marker {
        first as u64
    } else {
        (first as u64) & ((1u64 << (8 - len)) - 1)
    };
    for b in &data[pos + 1..pos + len] {
        value = (value << 8) | *b as u64;
    }
    let all_ones = !keep_marker && value == (1u64 << (7 * len)) - 1;
    Some((if all_ones { u64::MAX } else { value }, len))
}

fn read_uint(data: &[u8]) -> u64 {
    data.iter().fold(0, |v, b| (v << 8) | *b as u64)
}

/// Walks the EBML elements of a file (or of joined chunks, whose sizes are unknown).
pub fn webm_index(data: &[u8]) -> WebmIndex {
    const MASTERS: [u64; 8] = [
        0x18538067, 0x1549A966, 0x1F43B675, 0x1C53BB6B, 0xBB, 0x1654AE6B, 0xAE, 0xA0,
    ];
    let mut index = WebmIndex::default();
    let mut cluster_tc = 0;
    let mut pos = 0;
    while pos < data.len() {
        let Some((id, id_len)) = read_vint(data, pos, true) else {
            break;
        };
        let Some((size, size_len)) = read_vint(data, pos + id_len, false) else {
            break;
        };
        let body = pos + id_len + size_len;
        if id == 0x1A45DFA3 || MASTERS.contains(&id) {
            if id == 0x1F43B675 {
                index.cluster_offsets.push(pos);
            }
            pos = body;
            continue;
        }
        let end = if size == u64::MAX {
            data.len()
        } else {
            (body + size as usize).min(data.len())
        };
        let payload = &data[body..end];
        match id {
            0x4282 => {
                index.doc_type = String::from_utf8_lossy(payload)
                    .trim_end_matches('\0')
                    .to_string()
            }
            0x4489 => {
                index.duration_ms = Some(match payload.len() {
                    4 => f32::from_be_bytes(payload.try_into().unwrap()) as f64,
                    8 => f64::from_be_bytes(payload.try_into().unwrap()),
                    _ => f64::NAN,
                })
            }
            0xE7 => {
                cluster_tc = read_uint(payload);
                index.clusters_ms.push(cluster_tc);
            }
            0xB3 => index.cue_times_ms.push(read_uint(payload)),
            0xA3 | 0xA1 => {
                if let Some((track, n)) = read_vint(payload, 0, false) {
                    if payload.len() > n + 2 {
                        let rel = i16::from_be_bytes([payload[n], payload[n + 1]]);
                        let key = id == 0xA3 && payload[n + 2] & 0x80 != 0;
                        index
                            .blocks
                            .push(((cluster_tc as i64 + rel as i64) as u64, track, key));
                    }
                }
            }
            _ => {}
        }
        pos = end;
    }
    index
}

impl WebmIndex {
    /// Times (ms) of the keyframe blocks, in file order.
    pub fn keyframe_times_ms(&self) -> Vec<u64> {
        self.blocks.iter().filter(|b| b.2).map(|b| b.0).collect()
    }
}

pub fn webm_index_of(path: &Path) -> WebmIndex {
    webm_index(&std::fs::read(path).unwrap())
}

/// The file's `Duration` in ms, which must be there for a finalized file.
pub fn duration_ms(path: &Path) -> f64 {
    webm_index_of(path)
        .duration_ms
        .unwrap_or_else(|| panic!("{} has no Duration: not finalized", path.display()))
}

/// Video frames ffprobe decodes from `path` (`-count_frames`); fails on any complaint
/// it prints.
pub fn ffprobe_frames(path: &Path) -> u64 {
    let out = ffprobe(
        path,
        "-count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe on {}: {stderr}",
        path.display()
    );
    let frames = String::from_utf8_lossy(&out.stdout);
    frames
        .trim()
        .trim_end_matches(',')
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe says {frames} frames in {}", path.display()))
}

/// The Duration ffprobe reads from a file's header, in seconds; None when it has none.
pub fn ffprobe_duration(path: &Path) -> Option<f64> {
    ffprobe_csv(path, "-show_entries format=duration")
        .trim()
        .parse()
        .ok()
}

/// Makes a source file with `ffmpeg -nostdin -v error -y ARGS OUT` (`args`: `lavfi`
/// inputs and encoders, split at white space); fails the test with ffmpeg's words when
/// it cannot.
pub fn ffmpeg_make(out: &Path, args: &str) {
    let made = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args.split_whitespace())
        .arg(out)
        .output()
        .expect("ffmpeg runs (scripts/setup.sh installs it)");
    assert!(
        made.status.success(),
        "ffmpeg could not make {}: {}",
        out.display(),
        String::from_utf8_lossy(&made.stderr)
    );
}

/// Runs `ffmpeg -nostdin INPUT_OPTIONS -i PATH OUTPUT_ARGS` (each split at white
/// space: `-v error -ss 1.5`, `-f null -`) and returns how it went.
pub fn ffmpeg(input_options: &str, path: &Path, output_args: &str) -> std::process::Output {
    std::process::Command::new("ffmpeg")
        .arg("-nostdin")
        .args(input_options.split_whitespace())
        .arg("-i")
        .arg(path)
        .args(output_args.split_whitespace())
        .output()
        .expect("ffmpeg runs (scripts/setup.sh installs it)")
}

/// What `ffmpeg -v warning` prints while decoding `path` (empty for a clean file):
/// timestamps that go back, broken blocks, anything a post-processing tool trips on.
pub fn ffmpeg_warnings(path: &Path) -> String {
    let out = ffmpeg("-v warning", path, "-f null -");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// The `target/<profile>` folder this test binary was built into.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    let deps = exe.parent().expect("the test is in a folder");
    assert_eq!(
        deps.file_name().and_then(|n| n.to_str()),
        Some("deps"),
        "expected the test binary in target/<profile>/deps, not {}",
        exe.display()
    );
    deps.parent()
        .expect("deps is in the profile folder")
        .to_path_buf()
}

/// Runs `cargo build <what>` for this test's profile (`cargo test --test X` builds
/// no examples) and returns the profile folder.
pub fn cargo_build(what: &[&str]) -> PathBuf {
    let profile_dir = profile_dir();
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a profile folder name")
        .to_string();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
        .args(["build", "--quiet"])
        .args(what);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let out = build.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo build {} failed:\n{}",
        what.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir
}

/// Builds example `name` for this test's profile and returns its path.
pub fn build_example(name: &str) -> PathBuf {
    let built = cargo_build(&["--example", name])
        .join("examples")
        .join(name);
    assert!(built.is_file(), "no {}", built.display());
    built
}

/// A folder in the test scratch space holding only the plugin built with this test
/// binary, and a registry made once, so child processes neither scan the user's
/// registry nor race to write one. A copy, not a link: a build running meanwhile must
/// not swap it under a run. One per test binary (`<test>-plugin`), made on first use.
pub fn plugin_env() -> &'static (PathBuf, PathBuf) {
    static ENV: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let built = exe.parent().unwrap().join("libgstmediarecorder.so");
        assert!(built.exists(), "no plugin at {}", built.display());
        let dir = tmp_dir(&format!("{}-plugin", env!("CARGO_CRATE_NAME")));
        std::fs::copy(&built, dir.join("libgstmediarecorder.so")).unwrap();
        let registry = dir.join("registry.bin");
        let out = std::process::Command::new("gst-inspect-1.0")
            .arg("mediarecorder")
            .env("GST_PLUGIN_PATH", &dir)
            .env("GST_REGISTRY", &registry)
            .output()
            .expect("gst-inspect-1.0 runs");
        assert!(
            out.status.success(),
            "gst-inspect-1.0 does not find the element: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (dir, registry)
    })
}

/// Sets `command`'s environment to find the plugin under test (`plugin_env`).
pub fn with_plugin_env(command: &mut std::process::Command) -> &mut std::process::Command {
    let (dir, registry) = plugin_env();
    command
        .env("GST_PLUGIN_PATH", dir)
        .env("GST_REGISTRY", registry)
}

/// `gst-launch-1.0` finding the plugin under test, with G_DEBUG removed: the child is
/// judged by what the element does, not by GLib's warning policy (an abort is an abort).
pub fn gst_launch() -> std::process::Command {
    let mut command = std::process::Command::new("gst-launch-1.0");
    with_plugin_env(&mut command).env_remove("G_DEBUG");
    command
}

/// Collects the `file-closed` structures the recorder emits, in order.
pub fn watch_closed(r: &gst::Element) -> Arc<Mutex<Vec<gst::Structure>>> {
    let closed = Arc::new(Mutex::new(Vec::new()));
    let c = closed.clone();
    r.connect("file-closed", false, move |args| {
        c.lock()
            .unwrap()
            .push(args[1].get::<gst::Structure>().unwrap());
        None
    });
    closed
}

/// A local IP camera: `tests/camera/rtsp_camera.py` (an RTSP server on 127.0.0.1) in a
/// child process, stopped when this is dropped (also on panic). Mounts `/h264-aac`,
/// `/h265-opus`, `/h264-pcmu`, ...: see the script.
pub struct Camera {
    child: std::process::Child,
    /// `rtsp://127.0.0.1:PORT/`
    pub url: String,
}

impl Camera {
    /// Starts a camera on a free port, with the script's extra `args`.
    pub fn start(args: &[&str]) -> Camera {
        Camera::start_on(0, args)
    }

    /// Starts a camera on `port` (0: a free one), waiting up to 10 s for it to serve.
    pub fn start_on(port: u16, args: &[&str]) -> Camera {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/camera/rtsp_camera.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .args(["--port", &port.to_string()])
            .args(args)
            // Closing its stdin (when this is dropped, or the test process dies) ends it.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("/usr/bin/python3 runs (scripts/setup.sh installs it)");
        let stdout = child.stdout.take().expect("the camera's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let camera = |url: String| Camera { child, url };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.starts_with("rtsp://") => camera(line.trim().to_string()),
            other => {
                let mut c = camera(String::new());
                c.stop();
                panic!(
                    "the test camera did not start ({other:?}): is gir1.2-gst-rtsp-server-1.0 \
                     installed (scripts/setup.sh)?"
                )
            }
        }
    }

    /// The URL of one of its mounts, as `h264-aac`.
    pub fn mount(&self, name: &str) -> String {
        format!("{}{name}", self.url)
    }

    /// The port it serves on.
    pub fn port(&self) -> u16 {
        self.url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the camera's URL has a port")
    }

    /// Stops it now, as a camera that loses power.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One packet of a file as ffprobe reads it.
#[derive(Debug, Clone)]
pub struct Packet {
    pub stream: usize,
    pub pts: Option<f64>,
    pub dts: Option<f64>,
    pub keyframe: bool,
}

/// Every packet of `path`, in file order.
pub fn ffprobe_packets(path: &Path) -> Vec<Packet> {
    ffprobe_csv(
        path,
        "-show_entries packet=stream_index,pts_time,dts_time,flags",
    )
    .lines()
    .filter_map(|line| {
        let f: Vec<&str> = line.split(',').collect();
        Some(Packet {
            stream: f.first()?.parse().ok()?,
            pts: f.get(1)?.parse().ok(),
            dts: f.get(2)?.parse().ok(),
            keyframe: f.get(3)?.starts_with('K'),
        })
    })
    .collect()
}

/// Each stream of `path` as `codec_type,codec_name,profile` (`video,h264,High`).
pub fn ffprobe_streams(path: &Path) -> Vec<String> {
    ffprobe_csv(path, "-show_entries stream=codec_type,codec_name,profile")
        .lines()
        .map(|l| {
            // ffprobe prints the fields in its own order: name, profile, type.
            let f: Vec<&str> = l.split(',').collect();
            format!(
                "{},{},{}",
                f.get(2).unwrap_or(&""),
                f.first().unwrap_or(&""),
                f.get(1).unwrap_or(&"")
            )
        })
        .collect()
}

/// What `ffmpeg -v error -xerror` prints decoding `path` (empty for a clean file).
/// Frames keep their own times (`-fps_mode vfr`, what ffmpeg does writing a real
/// container): the null muxer's default constant rate rounds a network camera's times
/// to 1/30 s and calls two frames that land in one slot non-monotonic, a complaint
/// about its own rounding, not the file (callers check the file's packet times).
pub fn ffmpeg_errors(path: &Path) -> String {
    let out = ffmpeg("-v error -xerror", path, "-fps_mode vfr -f null -");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// Set in the child process `isolated` starts: the test it runs.
pub const CHILD_ENV: &str = "MEDIARECORDER_TEST_CHILD";

/// Runs `body` in a child process: this test binary running only the calling test,
/// so a hang is killed at `deadline` (the test fails saying so) and an abort does not
/// take the test runner with it.
///
/// The test is named by its thread, which the test harness names after it; called on
/// any other thread this fails.
pub fn isolated(deadline: Duration, body: impl FnOnce()) {
    use std::os::unix::process::ExitStatusExt;
    let thread = std::thread::current();
    let name = thread
        .name()
        .filter(|n| *n != "main")
        .expect("isolated() is called by a test, on the thread named after it");
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        body();
        return;
    }
    let dir = tmp_dir(&format!("child-{name}"));
    let log_path = dir.join("output.txt");
    let log = std::fs::File::create(&log_path).unwrap();
    let started = Instant::now();
    // /proc/self/exe: still this binary if cargo rebuilt it meanwhile.
    let mut child = std::process::Command::new("/proc/self/exe")
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("the test binary runs itself");
    let status = wait_or_kill(&mut child, deadline);
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    println!(
        "----- {name} (child process, {:.1?}) -----",
        started.elapsed()
    );
    print!("{output}");
    println!("----- end of {name} -----");
    let panic = output
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .take(8)
        .collect::<Vec<_>>()
        .join("\n");
    match status {
        None => {
            panic!("{name}: still running after {deadline:?}, killed: the element hangs. {panic}")
        }
        // A child that ran no test would pass without running `body`.
        Some(s) if s.success() => assert!(
            output.contains("running 1 test\n"),
            "{name}: the child process ran no test of that name"
        ),
        Some(s) => match s.signal() {
            Some(sig) => panic!("{name}: the process died of signal {sig} (abort/crash)\n{panic}"),
            None => panic!("{name}: failed ({s})\n{panic}"),
        },
    }
}

/// MD5 of each packet's bytes of the streams `map` selects (`0:v`, `0:a`), in order
/// (`ffmpeg -c copy -f framemd5`).
pub fn packet_hashes(path: &Path, map: &str) -> Vec<String> {
    let out = ffmpeg(
        "-v error",
        path,
        &format!("-map {map} -c copy -f framemd5 -"),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}
