//! Chunked upload: records with `timeslice` and sends each `dataavailable` chunk to an
//! HTTP endpoint as it comes, like a web page that POSTs its MediaRecorder's Blobs.
//!
//! ```sh
//! # a receiver that joins the chunks into uploads/<id>.webm (for trying it out)
//! cargo run --example upload -- receive --listen 127.0.0.1:8000 --dir uploads
//! # record 10 s in 1 s chunks, each POSTed as soon as it is cut
//! cargo run --example upload -- send --url http://127.0.0.1:8000/upload --duration 10000
//! ```
//!
//! Each chunk is one request, `POST URL?id=ID&chunk=N&timecode=MS` with the chunk as the
//! body (`Content-Type: video/webm`): `ID` names the recording, `N` counts from 0, `MS`
//! is the media time where the chunk starts (the buffer's PTS). After the last chunk,
//! `POST URL?id=ID&end=1&chunks=COUNT` with an empty body says the upload is complete.
//! The chunks joined in order are a WebM file that plays (without Duration and Cues,
//! like joined browser Blobs; `--output` also writes the finalized file locally).
//!
//! The client is plain HTTP/1.1 over `std::net::TcpStream` (no TLS: put a proxy in front
//! for https). Chunks wait for the uploader in a queue of `QUEUE` chunks; a receiver that
//! fails, answers other than 2xx, or falls that far behind ends the recording with an
//! error naming the chunk.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

#[path = "shared/sources.rs"]
mod sources;
use sources::{add_source, CAMERA, TEST_AUDIO, TEST_VIDEO};

/// Chunks waiting to be sent; beyond this the receiver is too slow and the upload fails.
const QUEUE: usize = 64;
/// Longest wait for the receiver to accept a connection, take a body or answer.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest chunk the receiver takes.
const MAX_CHUNK: u64 = 64 << 20;

const USAGE: &str = "usage: upload send --url URL [--duration MS] [--timeslice MS] [--source camera|test] [--output FILE]
       upload receive [--listen ADDR] [--dir DIR]

send: records and POSTs each chunk to URL (http://HOST[:PORT]/PATH) as it comes
  --url URL        where to send the chunks
  --duration MS    record MS milliseconds of media (default 10000; 0: until Enter)
  --timeslice MS   media per chunk (default 1000)
  --source SRC     camera (/dev/video0 and the microphone) or test (a live test pattern
                   and tone) (default: camera if there is one, else test)
  --output FILE    also write the finalized recording to FILE

receive: takes the chunks and joins them into DIR/ID.webm
  --listen ADDR    address and port to listen on (default 127.0.0.1:8000; port 0 picks
                   a free one); the address is printed
  --dir DIR        folder for the uploads (default: uploads)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("send") => parse_send(&args[1..]).and_then(send),
        Some("receive") => parse_receive(&args[1..]).and_then(receive),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Takes `--name value` pairs, calling `set` for each.
fn parse_pairs(
    args: &[String],
    mut set: impl FnMut(&str, &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Err(USAGE.to_string());
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        set(arg, value)?;
    }
    Ok(())
}

fn milliseconds(name: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{name} takes milliseconds, not '{value}'"))
}

// ----------------------------------------------------------------------------------
// send

struct SendOptions {
    url: Url,
    duration_ms: u64,
    timeslice_ms: u64,
    camera: bool,
    output: Option<PathBuf>,
}

fn parse_send(args: &[String]) -> Result<SendOptions, String> {
    let mut url = None;
    let mut options = SendOptions {
        url: Url::default(),
        duration_ms: 10_000,
        timeslice_ms: 1_000,
        camera: std::path::Path::new(CAMERA).exists(),
        output: None,
    };
    parse_pairs(args, |name, value| {
        match name {
            "--url" => url = Some(Url::parse(value)?),
            "--duration" => options.duration_ms = milliseconds(name, value)?,
            "--timeslice" => options.timeslice_ms = milliseconds(name, value)?,
            "--source" => {
                options.camera = match value {
                    "camera" => true,
                    "test" => false,
                    other => return Err(format!("--source is camera or test, not '{other}'")),
                }
            }
            "--output" => options.output = Some(PathBuf::from(value)),
            other => return Err(format!("unknown argument '{other}'\n\n{USAGE}")),
        }
        Ok(())
    })?;
    options.url = url.ok_or(format!("send needs --url\n\n{USAGE}"))?;
    if options.timeslice_ms == 0 || options.timeslice_ms > u64::from(u32::MAX) {
        return Err("--timeslice is at least 1 ms".to_string());
    }
    if options.camera && !std::path::Path::new(CAMERA).exists() {
        return Err(format!("there is no camera at {CAMERA}: try --source test"));
    }
    Ok(options)
}

/// `http://HOST[:PORT]/PATH[?QUERY]`, taken apart.
#[derive(Clone, Debug, Default, PartialEq)]
struct Url {
    host: String,
    port: u16,
    /// Path and query, as sent in the request line.
    target: String,
}

impl Url {
    fn parse(url: &str) -> Result<Url, String> {
        let rest = url.strip_prefix("http://").ok_or(format!(
            "'{url}' is not an http:// URL (https needs a proxy in front)"
        ))?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let target = match target {
            "" => "/".to_string(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_string(),
        };
        // HOST, HOST:PORT, [IPV6] or [IPV6]:PORT
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !authority.ends_with(']') => {
                let port = port
                    .parse()
                    .map_err(|_| format!("'{port}' in '{url}' is not a port"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("'{url}' names no host"));
        }
        Ok(Url {
            host: host.to_string(),
            port,
            target,
        })
    }

    /// The request target with `params` added to its query.
    fn with_query(&self, params: &str) -> String {
        let separator = if self.target.contains('?') { '&' } else { '?' };
        format!("{}{separator}{params}", self.target)
    }
}

/// One chunk, or the end of the upload.
enum Upload {
    Chunk {
        index: u64,
        timecode_ms: u64,
        data: gst::Buffer,
    },
    End {
        chunks: u64,
    },
}

/// Sends one POST and reads the answer's status line; `Err` names what went wrong.
fn post(url: &Url, target: &str, body: &[u8]) -> Result<(), String> {
    let address = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .next()
        .ok_or(format!("{} has no address", url.host))?;
    let mut stream = TcpStream::connect_timeout(&address, NETWORK_TIMEOUT)
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream
        .set_write_timeout(Some(NETWORK_TIMEOUT))
        .and_then(|()| stream.set_read_timeout(Some(NETWORK_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let host = match (url.host.contains(':'), url.port) {
        (false, 80) => url.host.clone(),
        (false, port) => format!("{}:{port}", url.host),
        (true, port) => format!("[{}]:{port}", url.host),
    };
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: video/webm\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| format!("sending to {address}: {e}"))?;
    let mut status_line = String::new();
    BufReader::new(stream)
        .read_line(&mut status_line)
        .map_err(|e| format!("no answer from {address}: {e}"))?;
    let status = status_line.split(' ').nth(1).unwrap_or("");
    if status.starts_with('2') && status.len() == 3 {
        Ok(())
    } else {
        Err(format!("{address} answered '{}'", status_line.trim()))
    }
}

/// Sends what arrives, in order, until the end or the first failure.
fn upload(url: &Url, id: &str, queue: Receiver<Upload>) -> Result<(), String> {
    for item in queue {
        match item {
            Upload::Chunk {
                index,
                timecode_ms,
                data,
            } => {
                let map = data.map_readable().map_err(|e| e.to_string())?;
                let target =
                    url.with_query(&format!("id={id}&chunk={index}&timecode={timecode_ms}"));
                post(url, &target, &map).map_err(|e| format!("chunk {index}: {e}"))?;
                println!(
                    "Sent chunk {index} ({timecode_ms} ms): {} bytes",
                    map.size()
                );
            }
            Upload::End { chunks } => {
                let target = url.with_query(&format!("id={id}&end=1&chunks={chunks}"));
                post(url, &target, &[]).map_err(|e| format!("the end of the upload: {e}"))?;
                println!("Upload complete: {chunks} chunks");
                return Ok(());
            }
        }
    }
    Err("the recording ended without a stop".to_string())
}

fn send(options: SendOptions) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    // Linking the crate and registering the plugin statically means no GST_PLUGIN_PATH.
    gstmediarecorder::plugin_register_static().map_err(|e| e.to_string())?;

    let pipeline = gst::Pipeline::new();
    let mut recorder = gst::ElementFactory::make("mediarecorder")
        .name("recorder")
        .property("duration", options.duration_ms)
        .property("timeslice", options.timeslice_ms as u32);
    if let Some(output) = &options.output {
        let location = output.to_str().ok_or("the output path is not UTF-8")?;
        recorder = recorder.property("location", location);
    }
    let recorder = recorder.build().map_err(|e| e.to_string())?;
    pipeline.add(&recorder).map_err(|e| e.to_string())?;
    let (video, audio) = if options.camera {
        (format!("v4l2src device={CAMERA}"), "autoaudiosrc")
    } else {
        (TEST_VIDEO.to_string(), TEST_AUDIO)
    };
    add_source(&pipeline, &recorder, "video", &video)?;
    add_source(&pipeline, &recorder, "audio", audio)?;

    // The recording's name at the receiver: unique enough for one machine's uploads.
    let id = format!(
        "rec-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    );
    let (to_uploader, queue) = mpsc::sync_channel(QUEUE);
    let url = options.url.clone();
    let uploader_id = id.clone();
    let uploader = std::thread::spawn(move || upload(&url, &uploader_id, queue));

    let main_loop = glib::MainLoop::new(None, false);
    let failed: Arc<Mutex<Option<String>>> = Arc::default();
    connect_recorder(&recorder, to_uploader, &main_loop, failed.clone());
    let _bus_watch = watch_bus(&pipeline, &main_loop, failed.clone())?;
    if options.duration_ms == 0 {
        stop_on_enter(&recorder);
        println!(
            "Recording {id} to {:?}: press Enter to stop",
            options.url.target
        );
    } else {
        println!("Recording {id}: {} ms", options.duration_ms);
    }
    if pipeline.set_state(gst::State::Playing).is_err() {
        // The reason is on the bus.
        let context = main_loop.context();
        while context.iteration(false) {}
        failed
            .lock()
            .unwrap()
            .get_or_insert("the pipeline cannot start".to_string());
    } else {
        main_loop.run();
    }
    let _ = pipeline.set_state(gst::State::Null);
    // The signal handlers are gone with the pipeline: the uploader's queue is closed.
    drop(pipeline);
    drop(recorder);
    let uploaded = uploader
        .join()
        .unwrap_or_else(|_| Err("the uploader panicked".to_string()));
    let failure = failed.lock().unwrap().take();
    match (failure, uploaded) {
        (Some(reason), _) | (None, Err(reason)) => Err(reason),
        (None, Ok(())) => {
            println!("Uploaded {id}");
            Ok(())
        }
    }
}

/// Hands each chunk to the uploader as it comes and the end of the upload at `stop`.
fn connect_recorder(
    recorder: &gst::Element,
    to_uploader: SyncSender<Upload>,
    main_loop: &glib::MainLoop,
    failed: Arc<Mutex<Option<String>>>,
) {
    /// The sending side: `None` once the upload is given up.
    struct Queue {
        sender: Option<SyncSender<Upload>>,
        chunks: u64,
    }
    let queue = Arc::new(Mutex::new(Queue {
        sender: Some(to_uploader),
        chunks: 0,
    }));

    let chunks = queue.clone();
    recorder.connect("dataavailable", false, move |args| {
        let recorder = args[0].get::<gst::Element>().expect("the recorder");
        let data = args[1].get::<gst::Buffer>().expect("a chunk");
        let timecode_ms = data.pts().map_or(0, gst::ClockTime::mseconds);
        let give_up = {
            let mut queue = chunks.lock().unwrap();
            let index = queue.chunks;
            let item = Upload::Chunk {
                index,
                timecode_ms,
                data,
            };
            match queue.sender.as_ref().map(|sender| sender.try_send(item)) {
                None => false,
                Some(Ok(())) => {
                    queue.chunks += 1;
                    false
                }
                // The uploader stopped: it says why when it is joined.
                Some(Err(TrySendError::Disconnected(_))) => true,
                Some(Err(TrySendError::Full(_))) => {
                    failed.lock().unwrap().get_or_insert(format!(
                        "the receiver fell {QUEUE} chunks behind at chunk {index}"
                    ));
                    // Nothing more is sent: the upload would have a hole.
                    queue.sender = None;
                    true
                }
            }
        };
        if give_up {
            recorder.emit_by_name::<bool>("stop-recording", &[]);
        }
        None
    });

    let main_loop = main_loop.clone();
    recorder.connect("stop", false, move |_| {
        let (sender, chunks) = {
            let mut queue = queue.lock().unwrap();
            (queue.sender.take(), queue.chunks)
        };
        if let Some(sender) = sender {
            // Waits only while the uploader is `QUEUE` chunks behind.
            let _ = sender.send(Upload::End { chunks });
        }
        println!("Recording stopped: {chunks} chunks");
        main_loop.quit();
        None
    });
}

/// Errors on the bus end the recording.
fn watch_bus(
    pipeline: &gst::Pipeline,
    main_loop: &glib::MainLoop,
    failed: Arc<Mutex<Option<String>>>,
) -> Result<gst::bus::BusWatchGuard, String> {
    let main_loop = main_loop.clone();
    pipeline
        .bus()
        .expect("a pipeline has a bus")
        .add_watch(move |_, message| {
            if let gst::MessageView::Error(err) = message.view() {
                let source = err.src().map(|s| s.path_string()).unwrap_or_default();
                failed
                    .lock()
                    .unwrap()
                    .get_or_insert(format!("{} (from {source})", err.error()));
                main_loop.quit();
            }
            glib::ControlFlow::Continue
        })
        .map_err(|e| e.to_string())
}

/// Enter ends a recording that has no `--duration`.
fn stop_on_enter(recorder: &gst::Element) {
    let recorder = recorder.downgrade();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = io::stdin().read_line(&mut line);
        if let Some(recorder) = recorder.upgrade() {
            recorder.emit_by_name::<bool>("stop-recording", &[]);
        }
    });
}

// ----------------------------------------------------------------------------------
// receive

struct ReceiveOptions {
    listen: String,
    dir: PathBuf,
}

fn parse_receive(args: &[String]) -> Result<ReceiveOptions, String> {
    let mut options = ReceiveOptions {
        listen: "127.0.0.1:8000".to_string(),
        dir: PathBuf::from("uploads"),
    };
    parse_pairs(args, |name, value| {
        match name {
            "--listen" => options.listen = value.to_string(),
            "--dir" => options.dir = PathBuf::from(value),
            other => return Err(format!("unknown argument '{other}'\n\n{USAGE}")),
        }
        Ok(())
    })?;
    Ok(options)
}

/// An upload being received: its file and the next chunk expected.
struct Incoming {
    file: File,
    next: u64,
    bytes: u64,
}

fn receive(options: ReceiveOptions) -> Result<(), String> {
    std::fs::create_dir_all(&options.dir)
        .map_err(|e| format!("cannot make {}: {e}", options.dir.display()))?;
    let server = tiny_http::Server::http(&options.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    match server.server_addr().to_ip() {
        Some(address) => println!("Receiving on http://{address}/"),
        None => println!("Receiving on {}", options.listen),
    }
    let started = Instant::now();
    let mut uploads: HashMap<String, Incoming> = HashMap::new();
    // One request at a time: chunks of an upload arrive one after the other.
    for mut request in server.incoming_requests() {
        let answer = take(&options.dir, &mut uploads, &mut request, started);
        let (status, text) = match answer {
            Ok(text) => (200, text),
            Err((status, text)) => (status, text),
        };
        println!("{text}");
        let response =
            tiny_http::Response::from_string(format!("{text}\n")).with_status_code(status);
        if let Err(e) = request.respond(response) {
            eprintln!("Answering a request: {e}");
        }
    }
    Ok(())
}

/// Takes one request: a chunk appended to its upload's file, or the end of an upload.
fn take(
    dir: &std::path::Path,
    uploads: &mut HashMap<String, Incoming>,
    request: &mut tiny_http::Request,
    started: Instant,
) -> Result<String, (u16, String)> {
    if *request.method() != tiny_http::Method::Post {
        return Err((405, "only POST is taken".to_string()));
    }
    let query: HashMap<String, String> = request
        .url()
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let number = |name: &str| -> Result<u64, (u16, String)> {
        query
            .get(name)
            .and_then(|v| v.parse().ok())
            .ok_or((400, format!("no number {name}= in the query")))
    };
    let id = query.get("id").cloned().unwrap_or_default();
    // The id becomes a file name: nothing that could leave the folder.
    if id.is_empty()
        || id.len() > 100
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err((400, "id= is letters, digits, - and _".to_string()));
    }
    let path = dir.join(format!("{id}.webm"));
    let at_ms = started.elapsed().as_millis();

    if query.contains_key("end") {
        let chunks = number("chunks")?;
        let upload = uploads
            .remove(&id)
            .ok_or((404, format!("no upload {id} in progress")))?;
        if upload.next != chunks {
            return Err((
                409,
                format!("{id} ends after {chunks} chunks, {} arrived", upload.next),
            ));
        }
        return Ok(format!(
            "Upload complete at {at_ms} ms: {} ({} bytes in {chunks} chunks)",
            path.display(),
            upload.bytes
        ));
    }

    let index = number("chunk")?;
    let timecode = number("timecode")?;
    let length = request.body_length().unwrap_or(0) as u64;
    if length > MAX_CHUNK {
        return Err((413, format!("chunk {index} is over {MAX_CHUNK} bytes")));
    }
    if index == 0 {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| (500, format!("cannot write {}: {e}", path.display())))?;
        uploads.insert(
            id.clone(),
            Incoming {
                file,
                next: 0,
                bytes: 0,
            },
        );
    }
    let upload = uploads.get_mut(&id).ok_or((
        409,
        format!("chunk {index} of {id}, whose chunk 0 never came"),
    ))?;
    if index != upload.next {
        return Err((
            409,
            format!("chunk {index} of {id}, expected {}", upload.next),
        ));
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_CHUNK)
        .read_to_end(&mut body)
        .map_err(|e| (400, format!("reading chunk {index}: {e}")))?;
    upload
        .file
        .write_all(&body)
        .map_err(|e| (500, format!("writing {}: {e}", path.display())))?;
    upload.next += 1;
    upload.bytes += body.len() as u64;
    Ok(format!(
        "Chunk {index} of {id} ({timecode} ms) at {at_ms} ms: {} bytes",
        body.len()
    ))
}
