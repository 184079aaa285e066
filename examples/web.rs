//! The web's "recording a media element" sample, served by a GStreamer pipeline: a page
//! that previews, records, stops, plays back and downloads what `mediarecorder` records.
//!
//! ```sh
//! cargo run --release --example web -- [--listen ADDR] [--source camera|test] [--dir DIR]
//! ```
//!
//! then open the address it prints (`http://127.0.0.1:8080/` by default).
//!
//! The pipeline records the camera at /dev/video0 and the microphone (or, without a
//! camera, a live test pattern and tone) into a `mediarecorder` that waits for the
//! page's Start button (`autostart=false`).
//!
//! | browser sample                         | here                                           |
//! |----------------------------------------|------------------------------------------------|
//! | `getUserMedia()`                       | `v4l2src` + `autoaudiosrc`, or test sources    |
//! | `recorder.start()`, `recordingTimeMS`  | `POST /start?duration=MS`: the `duration` property, exact to the frame |
//! | the Stop button                        | `POST /stop`: the `stop-recording` action      |
//! | `ondataavailable`, `onstart`, `onstop`, `onerror` | `GET /events`: server-sent events (chunks in base64, progress, errors) |
//! | the preview `<video>`                  | the chunks appended to a MediaSource as they come |
//! | the joined Blob, `recordedVideo.webm`  | `GET /recording.webm`: the finalized file, with Range requests so players seek |
//!
//! Only those paths are served: nothing of the file system is reachable through a URL.
//! With `--autotest` the server also takes what the page's test mode (`/?autotest=1`)
//! reports (`POST /autotest/result`, `POST /autotest/download`) and writes it into the
//! recording folder; `tests/web.rs` drives that with headless Chromium.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use tiny_http::{Header, Method, Request, Response, Server, StatusCode};

#[path = "shared/sources.rs"]
mod sources;
use sources::{add_source, CAMERA, TEST_AUDIO, TEST_VIDEO};

/// The page, one file of HTML and JavaScript.
const PAGE: &str = include_str!("web/index.html");
/// The recording inside the recording folder; each recording replaces it.
const RECORDING: &str = "recording.webm";
/// How often chunks reach the page's preview.
const TIMESLICE_MS: u32 = 500;
/// The sample's `recordingTimeMS`, when `/start` names no duration.
const DEFAULT_DURATION_MS: u64 = 5_000;
/// Longest recording `/start` accepts (a day).
const MAX_DURATION_MS: u64 = 24 * 3_600_000;
/// Events waiting for one page. A page that falls this far behind is disconnected (its
/// EventSource reconnects) rather than holding chunks in memory without bound.
const EVENT_QUEUE: usize = 512;
/// A comment is sent when no event came for this long, so a closed page is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Largest body the autotest endpoints accept.
const MAX_UPLOAD: u64 = 256 << 20;

const USAGE: &str = "usage: web [--listen ADDR] [--source camera|test] [--dir DIR] [--autotest]

  --listen ADDR   address and port to serve the page on (default: 127.0.0.1:8080;
                  port 0 picks a free one); the address is printed
  --source SRC    camera (/dev/video0 and the microphone if one works) or test (a live
                  test pattern and tone) (default: camera if there is one, else test)
  --dir DIR       folder for the recording (default: a new folder in the temp folder)
  --autotest      accept the page's test reports (/?autotest=1), for tests/web.rs";

/// What to record from.
#[derive(Clone, Copy)]
enum Source {
    Camera,
    Test,
}

struct Options {
    listen: String,
    source: Source,
    dir: PathBuf,
    autotest: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:8080".to_string(),
        source: if Path::new(CAMERA).exists() {
            Source::Camera
        } else {
            Source::Test
        },
        dir: std::env::temp_dir().join(format!("mediarecorder-web-{}", std::process::id())),
        autotest: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => options.listen = value()?,
            "--source" => {
                options.source = match value()?.as_str() {
                    "camera" => Source::Camera,
                    "test" => Source::Test,
                    other => return Err(format!("--source is camera or test, not '{other}'")),
                }
            }
            "--dir" => options.dir = PathBuf::from(value()?),
            "--autotest" => options.autotest = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument '{other}'\n\n{USAGE}")),
        }
    }
    if matches!(options.source, Source::Camera) && !Path::new(CAMERA).exists() {
        return Err(format!("there is no camera at {CAMERA}: try --source test"));
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What the HTTP handlers, the recorder's signal handlers and the bus thread share.
struct App {
    pipeline: gst::Pipeline,
    recorder: gst::Element,
    /// The recorder's `location`.
    file: PathBuf,
    dir: PathBuf,
    autotest: bool,
    /// One queue of formatted server-sent events per connected page.
    pages: Mutex<Vec<SyncSender<Arc<str>>>>,
    status: Mutex<Status>,
    /// Chunks of the current recording sent to the pages, so a page can tell whether it
    /// missed one.
    chunks: AtomicU64,
    /// The last error sent and when: the recorder's `error` signal and its bus message
    /// say the same thing, and a page should read it once.
    last_error: Mutex<Option<(String, Instant)>>,
}

#[derive(Default)]
struct Status {
    /// The file at `file` is a finished recording (from `stop` until the next `start`).
    finished: bool,
    /// The pipeline stopped on this error; recording needs a restart of the server.
    failed: Option<String>,
}

fn run(options: Options) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    // Linking the crate and registering the plugin statically means no GST_PLUGIN_PATH.
    gstmediarecorder::plugin_register_static().map_err(|e| e.to_string())?;

    std::fs::create_dir_all(&options.dir)
        .map_err(|e| format!("cannot make {}: {e}", options.dir.display()))?;
    let file = options.dir.join(RECORDING);
    let (pipeline, recorder) = build_pipeline(options.source, &file)?;
    let server = Server::http(&options.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;

    let app = Arc::new(App {
        pipeline,
        recorder,
        file,
        dir: options.dir,
        autotest: options.autotest,
        pages: Mutex::default(),
        status: Mutex::default(),
        chunks: AtomicU64::new(0),
        last_error: Mutex::default(),
    });
    connect_recorder(&app);
    if app.pipeline.set_state(gst::State::Playing).is_err() {
        let bus = app.pipeline.bus().expect("a pipeline has a bus");
        let reason = bus
            .pop_filtered(&[gst::MessageType::Error])
            .map(|message| describe(&message))
            .unwrap_or_else(|| "the pipeline cannot start".to_string());
        let _ = app.pipeline.set_state(gst::State::Null);
        return Err(reason);
    }
    let bus_app = app.clone();
    std::thread::spawn(move || watch_bus(&bus_app));

    let address = match server.server_addr().to_ip() {
        Some(address) => format!("http://{address}/"),
        None => options.listen.clone(),
    };
    println!("Recording to {}", app.file.display());
    println!("Listening on {address}");
    for request in server.incoming_requests() {
        let app = app.clone();
        std::thread::spawn(move || {
            if let Err(e) = handle(&app, request) {
                // A page that went away mid-answer is no error of the server's.
                if !matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) {
                    eprintln!("Answering a request: {e}");
                }
            }
        });
    }
    Ok(())
}

/// The sources linked into a `mediarecorder` that waits for `start-recording`.
fn build_pipeline(source: Source, file: &Path) -> Result<(gst::Pipeline, gst::Element), String> {
    let location = file
        .to_str()
        .ok_or(format!("{} is not UTF-8", file.display()))?;
    let pipeline = gst::Pipeline::new();
    let recorder = gst::ElementFactory::make("mediarecorder")
        .name("recorder")
        .property("location", location)
        .property("autostart", false)
        .property("timeslice", TIMESLICE_MS)
        .build()
        .map_err(|e| e.to_string())?;
    pipeline.add(&recorder).map_err(|e| e.to_string())?;
    let (video, audio) = match source {
        Source::Camera => (format!("v4l2src device={CAMERA}"), usable_microphone()),
        Source::Test => (TEST_VIDEO.to_string(), Some(TEST_AUDIO.to_string())),
    };
    add_source(&pipeline, &recorder, "video", &video)?;
    if let Some(audio) = audio {
        add_source(&pipeline, &recorder, "audio", &audio)?;
    }
    Ok((pipeline, recorder))
}

/// `autoaudiosrc` if it delivers sound within a second. It picks a source that opens,
/// which is not always one that works (an OpenAL source without a sound card does not
/// negotiate), so it is tried in a pipeline of its own first.
fn usable_microphone() -> Option<String> {
    let works = || -> Option<()> {
        let pipeline = gst::parse::launch("autoaudiosrc ! appsink name=sink sync=false").ok()?;
        let pipeline = pipeline.downcast::<gst::Pipeline>().ok()?;
        let sink = pipeline
            .by_name("sink")?
            .downcast::<gst_app::AppSink>()
            .ok()?;
        let started = pipeline.set_state(gst::State::Playing).is_ok();
        let sample = started
            .then(|| sink.try_pull_sample(gst::ClockTime::SECOND))
            .flatten();
        let _ = pipeline.set_state(gst::State::Null);
        sample.map(|_| ())
    };
    match works() {
        Some(()) => Some("autoaudiosrc".to_string()),
        None => {
            println!("No microphone delivers sound: recording video only");
            None
        }
    }
}

/// The recorder's events become the page's: `start`, each chunk, `stop`.
fn connect_recorder(app: &Arc<App>) {
    let weak = Arc::downgrade(app);
    app.recorder.connect("start", false, move |args| {
        let app = weak.upgrade()?;
        app.status.lock().unwrap().finished = false;
        app.chunks.store(0, Ordering::SeqCst);
        let recorder = args[0].get::<gst::Element>().expect("the recorder");
        // While recording, `mime-type` reads what is recorded: video/webm;codecs=vp8,opus
        let mime_type = recorder.property::<String>("mime-type");
        println!(
            "Recording started: {mime_type}, at running time {}",
            recorder.current_running_time().display()
        );
        app.send("start", &mime_type);
        None
    });

    let weak = Arc::downgrade(app);
    app.recorder.connect("dataavailable", false, move |args| {
        let app = weak.upgrade()?;
        let chunk = args[1].get::<gst::Buffer>().expect("a chunk");
        if let Ok(map) = chunk.map_readable() {
            app.chunks.fetch_add(1, Ordering::SeqCst);
            app.send("chunk", &base64(&map));
        }
        None
    });

    // A recording that fails (a file that cannot be written, a location that is a
    // folder) fires `error`, then the last `dataavailable` and `stop`.
    let weak = Arc::downgrade(app);
    app.recorder.connect("error", false, move |args| {
        let app = weak.upgrade()?;
        let error = args[1].get::<glib::Error>().expect("an error");
        eprintln!("Error: {error}");
        app.send_error(error.message());
        None
    });

    let weak = Arc::downgrade(app);
    app.recorder.connect("stop", false, move |args| {
        let app = weak.upgrade()?;
        let recorder = args[0].get::<gst::Element>().expect("the recorder");
        // The file is finalized when `stop` fires: it can be served from now on.
        let bytes = recorder.property::<u64>("bytes-written");
        let chunks = app.chunks.load(Ordering::SeqCst);
        app.status.lock().unwrap().finished = true;
        println!("Recording stopped: {bytes} bytes");
        app.send(
            "stop",
            &format!("{{\"bytes\":{bytes},\"chunks\":{chunks}}}"),
        );
        None
    });
}

/// Progress, warnings and errors from the bus go to the pages too.
fn watch_bus(app: &App) {
    let bus = app.pipeline.bus().expect("a pipeline has a bus");
    for message in bus.iter_timed(gst::ClockTime::NONE) {
        use gst::MessageView;
        match message.view() {
            MessageView::Element(element) => {
                let Some(s) = element.structure() else {
                    continue;
                };
                if s.name() == "mediarecorder-file-closed" {
                    // When the recording's first frame was captured and how much it
                    // holds: what its length is measured against.
                    let first = s.get::<gst::ClockTime>("running-time").ok();
                    let duration = s.get::<gst::ClockTime>("duration").unwrap_or_default();
                    println!(
                        "Saved {duration} of media, the first frame captured at running time {}",
                        first.display()
                    );
                }
                if s.name() == "mediarecorder-progress" {
                    let recorded = s.get::<gst::ClockTime>("recorded").unwrap_or_default();
                    let bytes = s.get::<u64>("bytes").unwrap_or_default();
                    let dropped = s.get::<u64>("dropped").unwrap_or_default();
                    let progress = format!(
                        "{{\"recorded\":{:.3},\"bytes\":{bytes},\"dropped\":{dropped}}}",
                        recorded.nseconds() as f64 / 1e9
                    );
                    app.send("progress", &progress);
                }
            }
            MessageView::Warning(_) => {
                let text = describe(&message);
                eprintln!("Warning: {text}");
                app.send("warning", &text);
            }
            MessageView::Error(err) => {
                eprintln!("Error: {}", describe(&message));
                // The recorder ends its recording after an error (`stop` follows) and
                // can start another; an error anywhere else stops the pipeline.
                let from_recorder = message
                    .src()
                    .is_some_and(|src| src == &app.recorder || src.has_as_ancestor(&app.recorder));
                if from_recorder {
                    app.send_error(err.error().message());
                } else {
                    let text = describe(&message);
                    app.send_error(&text);
                    app.status.lock().unwrap().failed = Some(text);
                    let _ = app.pipeline.set_state(gst::State::Null);
                }
            }
            _ => {}
        }
    }
}

/// An error or warning message and the element it came from.
fn describe(message: &gst::Message) -> String {
    let source = message
        .src()
        .map(|src| src.name().to_string())
        .unwrap_or_default();
    match message.view() {
        gst::MessageView::Error(e) => format!("{} (from {source})", e.error()),
        gst::MessageView::Warning(w) => format!("{} (from {source})", w.error()),
        _ => format!("{message:?}"),
    }
}

impl App {
    /// Sends a server-sent event to every page. A page whose queue is full is
    /// disconnected; one that went away is forgotten.
    fn send(&self, event: &str, data: &str) {
        let mut text = format!("event: {event}\n");
        for line in data.lines() {
            text.push_str("data: ");
            text.push_str(line);
            text.push('\n');
        }
        text.push('\n');
        let text: Arc<str> = text.into();
        self.pages
            .lock()
            .unwrap()
            .retain(|page| match page.try_send(text.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            });
    }

    /// Sends an error to the pages as a `failed` event, once even if it arrives both as
    /// the recorder's signal and as its bus message.
    fn send_error(&self, text: &str) {
        {
            let mut last = self.last_error.lock().unwrap();
            if let Some((previous, at)) = last.as_ref() {
                if previous == text && at.elapsed() < Duration::from_secs(2) {
                    return;
                }
            }
            *last = Some((text.to_string(), Instant::now()));
        }
        self.send("failed", text);
    }
}

/// Answers one request. Only the paths below exist: no part of a URL names a file.
fn handle(app: &App, request: Request) -> io::Result<()> {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let method = request.method().clone();
    if method == Method::Post && !same_origin(&request) {
        return request.respond(text(403, "Requests from other sites are refused\n"));
    }
    match (method, path) {
        (Method::Get | Method::Head, "/") => {
            let page = Response::from_string(PAGE)
                .with_header(header("Content-Type", "text/html; charset=utf-8"))
                .with_header(header("Cache-Control", "no-store"));
            request.respond(page)
        }
        (Method::Get, "/events") => stream_events(app, request),
        (Method::Post, "/start") => {
            let answer = start(app, query);
            request.respond(answer)
        }
        (Method::Post, "/stop") => {
            let at = app.recorder.current_running_time();
            let answer = if app.recorder.emit_by_name::<bool>("stop-recording", &[]) {
                println!("Stop requested at running time {}", at.display());
                text(200, "Stopping\n")
            } else {
                text(409, "Nothing is being recorded\n")
            };
            request.respond(answer)
        }
        (Method::Get | Method::Head, "/recording.webm") => serve_recording(app, request),
        (Method::Post, "/autotest/result") if app.autotest => {
            save_upload(app, request, "autotest-result.txt", true)
        }
        (Method::Post, "/autotest/download") if app.autotest => {
            save_upload(app, request, "autotest-download.webm", false)
        }
        (_, "/" | "/events" | "/start" | "/stop" | "/recording.webm") => {
            request.respond(text(405, "Method not allowed\n"))
        }
        _ => request.respond(text(404, "Not found\n")),
    }
}

/// Whether a POST comes from this server's own page (a browser names the page's origin
/// on every POST): another site cannot make a visitor's browser start the camera.
fn same_origin(request: &Request) -> bool {
    match header_value(request, "Origin") {
        None => true,
        Some(origin) => {
            header_value(request, "Host").is_some_and(|host| origin == format!("http://{host}"))
        }
    }
}

fn header_value<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// `POST /start?duration=MS`: the `duration` property, then `start-recording`.
fn start(app: &App, query: &str) -> Response<io::Cursor<Vec<u8>>> {
    let duration = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("duration="))
        .map_or(Ok(DEFAULT_DURATION_MS), str::parse::<u64>);
    let duration = match duration {
        Ok(ms) if ms <= MAX_DURATION_MS => ms,
        _ => {
            return text(
                400,
                &format!("duration is milliseconds from 0 (until stopped) to {MAX_DURATION_MS}\n"),
            )
        }
    };
    if let Some(reason) = app.status.lock().unwrap().failed.clone() {
        return text(
            503,
            &format!("The pipeline stopped: {reason}. Restart the server.\n"),
        );
    }
    // Read when the recording starts: exact, where a timer in the page would not be.
    app.recorder.set_property("duration", duration);
    if app.recorder.emit_by_name::<bool>("start-recording", &[]) {
        return text(200, "Recording\n");
    }
    let state = app.recorder.property_value("state");
    match glib::EnumValue::from_value(&state).map(|(_, value)| value.nick()) {
        Some("inactive") => {
            // The reason goes to the pages as the recorder's `error` signal.
            text(500, "The recorder did not start (its error says why)\n")
        }
        _ => text(409, "Already recording\n"),
    }
}

/// `GET /events`: server-sent events until the page goes away. Each is written and
/// flushed as it comes, which tiny_http's own responses (buffered, chunked) would not do,
/// so the head is written here and the body ends when the connection closes.
fn stream_events(app: &App, request: Request) -> io::Result<()> {
    let (sender, events) = mpsc::sync_channel(EVENT_QUEUE);
    app.pages.lock().unwrap().push(sender);
    let mut out = request.into_writer();
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
          Connection: close\r\n\r\n: connected\n\n",
    )?;
    out.flush()?;
    loop {
        match events.recv_timeout(KEEP_ALIVE) {
            Ok(event) => out.write_all(event.as_bytes())?,
            Err(RecvTimeoutError::Timeout) => out.write_all(b": keep-alive\n\n")?,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
        out.flush()?;
    }
}

/// `GET /recording.webm`: the finished file, whole or the byte range asked for.
fn serve_recording(app: &App, request: Request) -> io::Result<()> {
    if !app.status.lock().unwrap().finished {
        return request.respond(text(404, "No finished recording yet\n"));
    }
    let opened = File::open(&app.file).and_then(|file| Ok((file.metadata()?, file)));
    let mut file = match opened {
        Ok((metadata, file)) if metadata.is_file() => file,
        Ok(_) => return request.respond(text(404, &format!("{RECORDING} is not a file\n"))),
        Err(e) => return request.respond(text(404, &format!("{RECORDING}: {e}\n"))),
    };
    let length = file.metadata()?.len();
    let range = header_value(&request, "Range").map(str::to_string);
    let common = [
        header("Content-Type", "video/webm"),
        header("Accept-Ranges", "bytes"),
        header("Cache-Control", "no-store"),
    ];
    let (status, first, last) = match byte_range(range.as_deref(), length) {
        Span::Whole => (200, 0, length),
        Span::Part(first, last) => (206, first, last + 1),
        Span::Unsatisfiable => {
            let mut answer = text(416, "Range not satisfiable\n");
            answer.add_header(header("Content-Range", &format!("bytes */{length}")));
            return request.respond(answer);
        }
    };
    file.seek(SeekFrom::Start(first))?;
    let size = last - first;
    let mut headers = common.to_vec();
    if status == 206 {
        headers.push(header(
            "Content-Range",
            &format!("bytes {first}-{}/{length}", last - 1),
        ));
    }
    let body = Response::new(
        StatusCode(status),
        headers,
        file.take(size),
        Some(size as usize),
        None,
    )
    // A Content-Length, not chunks, whatever the size: players want to know it.
    .with_chunked_threshold(usize::MAX);
    // What a player asked for and got: how a player reads the file, when it cannot.
    let asked = format!(
        "{} {} (Range: {})",
        request.method(),
        request.url(),
        range.as_deref().unwrap_or("none")
    );
    let started = Instant::now();
    let answered = request.respond(body);
    let outcome = match &answered {
        Ok(()) => "sent".to_string(),
        Err(e) => format!("not sent: {e}"),
    };
    println!(
        "Served {asked}: {status}, bytes {first}..{last} of {length}, {outcome} in {:?}",
        started.elapsed()
    );
    answered
}

/// What a `Range` header asks of a file of `length` bytes.
#[derive(Debug, PartialEq)]
enum Span {
    Whole,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// Reads `bytes=FIRST-LAST`, `bytes=FIRST-` and `bytes=-SUFFIX`. A header that is
/// missing, malformed or asks for several ranges gets the whole file, as HTTP allows.
fn byte_range(header: Option<&str>, length: u64) -> Span {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Span::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Span::Whole;
    };
    if spec.contains(',') {
        return Span::Whole;
    }
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return match last.parse::<u64>() {
            Ok(0) => Span::Unsatisfiable,
            Ok(_) if length == 0 => Span::Unsatisfiable,
            Ok(suffix) => Span::Part(length - suffix.min(length), length - 1),
            Err(_) => Span::Whole,
        };
    }
    let Ok(first) = first.parse::<u64>() else {
        return Span::Whole;
    };
    let last = if last.is_empty() {
        u64::MAX
    } else {
        match last.parse::<u64>() {
            Ok(last) if last >= first => last,
            _ => return Span::Whole,
        }
    };
    if first >= length {
        return Span::Unsatisfiable;
    }
    Span::Part(first, last.min(length - 1))
}

/// Writes what the page's test mode posts into the recording folder, under a fixed name.
fn save_upload(app: &App, mut request: Request, name: &str, last: bool) -> io::Result<()> {
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_UPLOAD + 1)
        .read_to_end(&mut body)?;
    if body.len() as u64 > MAX_UPLOAD {
        return request.respond(text(413, "Too large\n"));
    }
    let path = app.dir.join(name);
    std::fs::write(&path, body)?;
    if last {
        println!("Autotest finished: {}", path.display());
    }
    request.respond(text(200, "Saved\n"))
}

fn text(status: u16, body: &str) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name, value).expect("a valid header")
}

/// Standard base64, for chunks in server-sent events (which carry text only).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for group in data.chunks(3) {
        let byte = |i: usize| u32::from(group.get(i).copied().unwrap_or(0));
        let bits = byte(0) << 16 | byte(1) << 8 | byte(2);
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(bits >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
