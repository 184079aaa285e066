//! The web's "recording a media element" sample, with GStreamer's `mediarecorder`.
//!
//! ```sh
//! cargo run --example record -- [--duration MS] [--source camera|test|FILE_OR_URI] [--output out.webm]
//! ```
//!
//! Records the camera at /dev/video0 and the microphone (or, without a camera, a live
//! test pattern and tone, or a file or URI) to a WebM file, showing a live preview when
//! there is a display. With `--duration` it records exactly that much media, otherwise
//! until Enter is pressed (the sample's stop button) or the source ends. (Ctrl+C kills
//! the program: the file then lacks its Duration and Cues, as after a crash.)
//!
//! | browser sample                        | here                                   |
//! |---------------------------------------|----------------------------------------|
//! | `getUserMedia()` + `<video muted>`    | `v4l2src` + `autoaudiosrc`, a `tee` to `autovideosink` |
//! | `recordingTimeMS`                     | the `duration` property (exact, not a timer) |
//! | `ondataavailable`: keep the Blobs     | the `dataavailable` signal: keep the buffers |
//! | `onstop`: join them, report the size  | the `stop` signal                      |
//! | `onerror`                             | an ERROR message on the bus            |
//! | the downloaded `recordedVideo.webm`   | the file at `location`                 |

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;

const CAMERA: &str = "/dev/video0";

const USAGE: &str =
    "usage: record [--duration MS] [--source camera|test|FILE_OR_URI] [--output FILE]

  --duration MS   record MS milliseconds of media, then stop (default: until Enter)
  --source SRC    camera (/dev/video0 and the microphone), test (a live test pattern and
                  tone), or a file or URI to play (default: camera if there is one, else test)
  --output FILE   the WebM file to write (default: out.webm)";

/// What to record from.
enum Source {
    Camera,
    Test,
    Uri(String),
}

struct Options {
    /// `None`: until Enter is pressed or the source ends.
    duration_ms: Option<u64>,
    source: Source,
    output: PathBuf,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        duration_ms: None,
        source: if Path::new(CAMERA).exists() {
            Source::Camera
        } else {
            Source::Test
        },
        output: PathBuf::from("out.webm"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--duration" => {
                let ms = value()?;
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| format!("--duration takes milliseconds, not '{ms}'"))?;
                options.duration_ms = (ms > 0).then_some(ms);
            }
            "--source" => {
                options.source = match value()?.as_str() {
                    "camera" => Source::Camera,
                    "test" => Source::Test,
                    other => Source::Uri(to_uri(other)?),
                }
            }
            "--output" => options.output = PathBuf::from(value()?),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument '{other}'\n\n{USAGE}")),
        }
    }
    if matches!(options.source, Source::Camera) && !Path::new(CAMERA).exists() {
        return Err(format!("there is no camera at {CAMERA}: try --source test"));
    }
    Ok(options)
}

/// A URI as given, or a file's path made into a `file://` URI.
fn to_uri(source: &str) -> Result<String, String> {
    if source.contains("://") {
        return Ok(source.to_string());
    }
    let path = std::fs::canonicalize(source).map_err(|e| format!("{source}: {e}"))?;
    glib::filename_to_uri(&path, None)
        .map(|uri| uri.to_string())
        .map_err(|e| format!("{source}: {e}"))
}

/// Whether a live preview can be shown.
fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match record(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn record(options: &Options) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    // Linking the crate and registering the plugin statically means no GST_PLUGIN_PATH.
    gstmediarecorder::plugin_register_static().map_err(|e| e.to_string())?;

    let location = options
        .output
        .to_str()
        .ok_or("the output path is not UTF-8")?;
    let pipeline = gst::Pipeline::new();
    let recorder = gst::ElementFactory::make("mediarecorder")
        .name("recorder")
        .property("location", location)
        .property("duration", options.duration_ms.unwrap_or(0))
        .build()
        .map_err(|e| e.to_string())?;
    pipeline.add(&recorder).map_err(|e| e.to_string())?;

    let preview = has_display();
    match &options.source {
        Source::Camera => {
            let camera = format!("v4l2src device={CAMERA}");
            add_live_source(&pipeline, &recorder, "video", &camera, preview)?;
            add_live_source(&pipeline, &recorder, "audio", "autoaudiosrc", false)?;
        }
        Source::Test => {
            let video = "videotestsrc is-live=true pattern=smpte \
                         ! capsfilter caps=video/x-raw,width=640,height=480,framerate=30/1";
            let audio = "audiotestsrc is-live=true wave=sine";
            add_live_source(&pipeline, &recorder, "video", video, preview)?;
            add_live_source(&pipeline, &recorder, "audio", audio, false)?;
        }
        Source::Uri(uri) => add_uri_source(&pipeline, &recorder, uri, preview)?,
    }

    let main_loop = glib::MainLoop::new(None, false);
    watch_recorder(&recorder, &main_loop);
    let failed = Arc::new(Mutex::new(None));
    let _bus_watch = watch_bus(&pipeline, &main_loop, failed.clone())?;

    match options.duration_ms {
        Some(ms) => println!("Recording {ms} ms to {}", options.output.display()),
        None => {
            println!(
                "Recording to {}: press Enter to stop",
                options.output.display()
            );
            stop_on_enter(&recorder, &main_loop);
        }
    }
    if pipeline.set_state(gst::State::Playing).is_err() {
        // The reason is on the bus: show it.
        let context = main_loop.context();
        while context.iteration(false) {}
        let reason = failed.lock().unwrap().take();
        let _ = pipeline.set_state(gst::State::Null);
        return Err(reason.unwrap_or_else(|| "the pipeline cannot start".to_string()));
    }
    main_loop.run();

    // Going to NULL also finalizes a recording that is still running (after an error).
    let _ = pipeline.set_state(gst::State::Null);
    let failure = failed.lock().unwrap().take();
    match failure {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

/// Adds a live source of `kind` ("video" or "audio"), given as a `gst-launch-1.0`
/// description, and links it into the recorder.
fn add_live_source(
    pipeline: &gst::Pipeline,
    recorder: &gst::Element,
    kind: &str,
    description: &str,
    preview: bool,
) -> Result<(), String> {
    let source = gst::parse::bin_from_description(description, true)
        .map_err(|e| format!("cannot make '{description}': {e}"))?;
    pipeline.add(&source).map_err(|e| e.to_string())?;
    let pad = source
        .static_pad("src")
        .expect("a ghost pad for the unlinked src");
    link_to_recorder(pipeline, recorder, &pad, kind, preview)
}

/// Plays a file or URI with `uridecodebin`, linking each decoded stream as it appears.
fn add_uri_source(
    pipeline: &gst::Pipeline,
    recorder: &gst::Element,
    uri: &str,
    preview: bool,
) -> Result<(), String> {
    let decodebin = gst::ElementFactory::make("uridecodebin")
        .property("uri", uri)
        .build()
        .map_err(|e| e.to_string())?;
    pipeline.add(&decodebin).map_err(|e| e.to_string())?;
    let pipeline = pipeline.downgrade();
    let recorder = recorder.downgrade();
    decodebin.connect_pad_added(move |decodebin, pad| {
        let (Some(pipeline), Some(recorder)) = (pipeline.upgrade(), recorder.upgrade()) else {
            return;
        };
        let caps = pad.current_caps().or_else(|| pad.allowed_caps());
        let name = caps
            .as_ref()
            .and_then(|caps| caps.structure(0))
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let kind = if name.starts_with("video/") {
            "video"
        } else if name.starts_with("audio/") {
            "audio"
        } else {
            println!("Ignoring a stream of {name}");
            return;
        };
        if let Err(message) = link_to_recorder(&pipeline, &recorder, pad, kind, preview) {
            gst::element_error!(decodebin, gst::CoreError::Negotiation, ("{}", message));
        }
    });
    Ok(())
}

/// Links `pad` to a new `video_%u` or `audio_%u` pad of the recorder. With `preview`,
/// video goes through `tee ! queue ! autovideosink` too.
fn link_to_recorder(
    pipeline: &gst::Pipeline,
    recorder: &gst::Element,
    pad: &gst::Pad,
    kind: &str,
    preview: bool,
) -> Result<(), String> {
    let sink = recorder
        .request_pad_simple(&format!("{kind}_%u"))
        .ok_or(format!("the recorder gives no {kind} pad"))?;
    if kind == "video" && preview {
        let tee = gst::parse::bin_from_description(
            "tee name=t ! queue ! videoconvert ! autovideosink  t. ! queue",
            true,
        )
        .map_err(|e| e.to_string())?;
        pipeline.add(&tee).map_err(|e| e.to_string())?;
        tee.sync_state_with_parent().map_err(|e| e.to_string())?;
        let tee_sink = tee.static_pad("sink").expect("a ghost sink pad");
        let tee_src = tee.static_pad("src").expect("a ghost src pad");
        pad.link(&tee_sink).map_err(|e| e.to_string())?;
        tee_src.link(&sink).map_err(|e| e.to_string())?;
    } else {
        pad.link(&sink).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The sample's event handlers: keep the chunks in order, report the total on `stop`.
fn watch_recorder(recorder: &gst::Element, main_loop: &glib::MainLoop) {
    let chunks: Arc<Mutex<Vec<gst::Buffer>>> = Arc::default();
    let mime_type = Arc::new(Mutex::new(String::new()));

    let mime = mime_type.clone();
    recorder.connect("start", false, move |args| {
        let recorder = args[0].get::<gst::Element>().unwrap();
        // While recording, `mime-type` reads what is recorded: video/webm;codecs=vp8,opus
        let effective = recorder.property::<String>("mime-type");
        println!("Recording started: {effective}");
        *mime.lock().unwrap() = effective;
        None
    });

    let data = chunks.clone();
    recorder.connect("dataavailable", false, move |args| {
        let chunk = args[1].get::<gst::Buffer>().unwrap();
        data.lock().unwrap().push(chunk);
        None
    });

    let main_loop = main_loop.clone();
    recorder.connect("stop", false, move |args| {
        let recorder = args[0].get::<gst::Element>().unwrap();
        // The chunks joined are the whole file, like the sample's joined Blob.
        let chunks = std::mem::take(&mut *chunks.lock().unwrap());
        let bytes: usize = chunks.iter().map(|chunk| chunk.size()).sum();
        let mime = mime_type.lock().unwrap().clone();
        let mime = mime.split(';').next().unwrap_or_default();
        println!("\nSuccessfully recorded {bytes} bytes of {mime} media.");
        if let Some(location) = recorder.property::<Option<String>>("location") {
            let path = std::fs::canonicalize(&location).unwrap_or(location.into());
            println!("Saved to {}", path.display());
        }
        main_loop.quit();
        None
    });
}

/// Shows progress from the recorder's bus messages, stops on errors and at the end of
/// the stream.
fn watch_bus(
    pipeline: &gst::Pipeline,
    main_loop: &glib::MainLoop,
    failed: Arc<Mutex<Option<String>>>,
) -> Result<gst::bus::BusWatchGuard, String> {
    let main_loop = main_loop.clone();
    let mut progress = Progress::default();
    pipeline
        .bus()
        .expect("a pipeline has a bus")
        .add_watch(move |_, message| {
            use gst::MessageView;
            match message.view() {
                MessageView::Element(element) => {
                    if let Some(s) = element.structure() {
                        progress.update(s);
                    }
                }
                MessageView::Error(err) => {
                    let source = err.src().map(|s| s.path_string()).unwrap_or_default();
                    let mut reason = format!("{} (from {source})", err.error());
                    if let Some(debug) = err.debug() {
                        reason.push_str(&format!("\n{debug}"));
                    }
                    // The first error is the cause; later ones are its consequences.
                    failed.lock().unwrap().get_or_insert(reason);
                    main_loop.quit();
                }
                // The source ended: the recorder has already stopped by itself.
                MessageView::Eos(_) => main_loop.quit(),
                _ => {}
            }
            glib::ControlFlow::Continue
        })
        .map_err(|e| e.to_string())
}

/// The progress line, from `mediarecorder-progress` messages (each second of media), or
/// from `mediarecorder-dataavailable` messages (each chunk) where the element posts
/// no progress messages.
#[derive(Default)]
struct Progress {
    has_progress_messages: bool,
    chunks: u64,
    chunk_bytes: u64,
}

impl Progress {
    fn update(&mut self, s: &gst::StructureRef) {
        use std::io::Write;
        if s.name() == "mediarecorder-progress" {
            self.has_progress_messages = true;
            let recorded = s.get::<gst::ClockTime>("recorded").unwrap_or_default();
            let bytes = s.get::<u64>("bytes").unwrap_or_default();
            let dropped = s.get::<u64>("dropped").unwrap_or_default();
            print!(
                "\rRecorded {:.1} s, {bytes} bytes, {dropped} frames dropped ",
                recorded.mseconds() as f64 / 1000.0
            );
        } else if s.name() == "mediarecorder-dataavailable" && !self.has_progress_messages {
            self.chunks += 1;
            self.chunk_bytes += s.get::<u64>("size").unwrap_or_default();
            print!(
                "\rRecorded {} bytes in {} chunks ",
                self.chunk_bytes, self.chunks
            );
        } else {
            return;
        }
        let _ = std::io::stdout().flush();
    }
}

/// The sample's stop button: Enter ends the recording.
fn stop_on_enter(recorder: &gst::Element, main_loop: &glib::MainLoop) {
    let recorder = recorder.downgrade();
    let main_loop = main_loop.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        // End of input (stdin closed) is not a press: record until the source ends.
        if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let Some(recorder) = recorder.upgrade() else {
            return;
        };
        // FALSE when nothing is being recorded: then there will be no `stop` to wait for.
        if !recorder.emit_by_name::<bool>("stop-recording", &[]) {
            println!("Nothing was recorded.");
            main_loop.quit();
        }
    });
}
