//! The browser sample (`examples/web.rs`) in a real browser. The test starts the
//! example on a free loopback port and opens its page in headless Chromium with
//! `?autotest=1`: the page clicks Start itself (and Stop, with `&stop=MS`), checks its
//! preview, the recording's `<video>` (seeking in it a second after it shows, as a
//! person would) and the download, and posts what it found back to the server, which
//! writes it beside the recording. The test then judges that
//! report and the file: its length, its bytes, and how ffprobe decodes it.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::build_example;

/// Longest wait for the server to listen and for the page to report.
const TIMEOUT: Duration = Duration::from_secs(60);

/// One frame at the test source's 30 fps.
const FRAME_S: f64 = 1.0 / 30.0;

/// The runs are timed: one at a time, so two recordings and two browsers do not share
/// the machine's two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Builds the `web` example once (`cargo test --test web` does not build examples).
fn web_example() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_example("web"))
}

/// The example, running; killed when dropped.
struct Server {
    child: Child,
    /// `127.0.0.1:PORT`
    address: String,
    dir: PathBuf,
    lines: Receiver<String>,
    /// Everything it printed, for failure messages.
    output: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the example with the live test sources, recording into a fresh folder.
    fn start(name: &str) -> Server {
        let dir = common::tmp_dir(name);
        let mut child = Command::new(web_example())
            .args(["--listen", "127.0.0.1:0", "--source", "test", "--autotest"])
            .arg("--dir")
            .arg(&dir)
            // It registers the plugin itself.
            .env_remove("GST_PLUGIN_PATH")
            .env(
                "GST_REGISTRY",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-registry.bin"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the web example runs");
        let output = Arc::new(Mutex::new(String::new()));
        let (sender, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = BufReader::new(child.stderr.take().unwrap());
        for (pipe, sender) in [
            (Box::new(stdout) as Box<dyn BufRead + Send>, Some(sender)),
            (Box::new(stderr), None),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in pipe.lines().map_while(Result::ok) {
                    output.lock().unwrap().push_str(&format!("{line}\n"));
                    if let Some(sender) = &sender {
                        let _ = sender.send(line);
                    }
                }
            });
        }
        let mut server = Server {
            child,
            address: String::new(),
            dir,
            lines,
            output,
        };
        let line = server.wait_for("Listening on http://");
        server.address = line
            .trim_start_matches("Listening on http://")
            .trim_end_matches('/')
            .to_string();
        server
    }

    /// The next line the server prints that starts with `prefix`.
    fn wait_for(&self, prefix: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "the server did not print '{prefix}' within {TIMEOUT:?}; it printed:\n{}",
                    self.output.lock().unwrap()
                ),
            }
        }
    }

    fn recording(&self) -> PathBuf {
        self.dir.join("recording.webm")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium with a profile of its own, in a process group of its own so that
/// its helper processes end with it.
struct Browser(Child);

impl Browser {
    fn open(url: &str, dir: &Path) -> Browser {
        let log = std::fs::File::create(dir.join("chromium.log")).unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                // Chromium's sandbox does not run as root in a container.
                "--no-sandbox",
                "--disable-gpu",
                "--autoplay-policy=no-user-gesture-required",
                "--mute-audio",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-extensions",
                "--disable-sync",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.join("chromium-profile").display()
            ))
            .arg(url)
            // GLib warnings of the browser's own are not this test's business.
            .env_remove("G_DEBUG")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run chromium ({e}): scripts/setup.sh installs it"));
        Browser(child)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = -(self.0.id() as i32);
        // SIGTERM lets Chromium close its helpers; SIGKILL takes what is left.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// What the page's test mode found, `key=value` a line.
struct Report(HashMap<String, String>);

impl Report {
    fn text(&self, key: &str) -> &str {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("the page reported no {key}: {:?}", self.0))
    }

    fn number(&self, key: &str) -> f64 {
        let text = self.text(key);
        text.parse()
            .unwrap_or_else(|_| panic!("the page reported {key}={text}, not a number"))
    }
}

/// Opens the page with `?autotest=1{query}` and waits for its report.
fn autotest(server: &Server, query: &str) -> Report {
    let url = format!("http://{}/?autotest=1{query}", server.address);
    let started = Instant::now();
    let browser = Browser::open(&url, &server.dir);
    server.wait_for("Autotest finished");
    drop(browser);
    println!("{url}: reported after {:?}", started.elapsed());
    let text = std::fs::read_to_string(server.dir.join("autotest-result.txt")).unwrap();
    println!("{text}");
    println!("The server printed:\n{}", server.output.lock().unwrap());
    Report(
        text.lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// The checks every finished recording passes: no error, the preview played what it
/// received, every chunk reached it, and the page's download is the file.
fn check_recorded(server: &Server, report: &Report) -> Vec<u8> {
    assert_eq!(report.text("errors"), "", "the page showed errors");
    assert_eq!(
        report.text("mse_supported"),
        "true",
        "Chromium cannot play {} through Media Source Extensions",
        report.text("mse_type")
    );
    assert_eq!(report.text("chunks"), report.text("chunks_sent"));
    let file = std::fs::read(server.recording()).unwrap();
    let size = file.len() as f64;
    assert_eq!(report.number("chunk_bytes"), size, "the chunks joined");
    assert_eq!(report.number("stop_bytes"), size, "bytes-written");
    assert!(
        report.text("log").contains(&format!(
            "Successfully recorded {} bytes of video/webm media.",
            file.len()
        )),
        "log: {}",
        report.text("log")
    );
    assert_eq!(report.text("download_name"), "recordedVideo.webm");
    assert_eq!(report.number("download_bytes"), size);
    let download = std::fs::read(server.dir.join("autotest-download.webm")).unwrap();
    assert!(
        download == file,
        "the downloaded bytes differ from the file"
    );
    assert!(
        report.number("preview_played") > 0.5,
        "the preview did not play"
    );
    file
}

/// One HTTP/1.1 request on a connection of its own: status, headers (lower-case
/// names) and body.
fn http(
    address: &str,
    request_line: &str,
    headers: &str,
) -> (u16, HashMap<String, String>, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        stream,
        "{request_line} HTTP/1.1\r\nHost: {address}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, answer[split + 4..].to_vec())
}

#[test]
fn page_records_five_seconds_previews_seeks_and_downloads() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("web-five-seconds");
    let report = autotest(&server, "");
    let file = check_recorded(&server, &report);

    // The preview: the chunks appended to a MediaSource as they came.
    let buffered = report.number("preview_buffered");
    assert!(buffered >= 4.0, "the preview buffered {buffered} s");
    assert!(
        report.number("progress_events") >= 3.0,
        "progress shown {} times",
        report.text("progress_events")
    );

    // The recording: 5 s to the frame, as the browser reads it and as the file says.
    let duration = report.number("recording_duration");
    assert!(
        (duration - 5.0).abs() <= FRAME_S,
        "the <video> says the recording lasts {duration} s"
    );
    let file_duration = common::duration_ms(&server.recording());
    assert!(
        (file_duration - 5_000.0).abs() <= 1_000.0 * FRAME_S,
        "the file says it lasts {file_duration} ms"
    );
    assert_eq!(report.number("seek_target"), 3.0);
    let seeked = report.number("seeked_to");
    assert!((seeked - 3.0).abs() < 0.001, "seeked to {seeked} s");
    assert!(
        report.number("ready_after_seek") >= 2.0,
        "no picture after the seek"
    );
    let frames = common::ffprobe_frames(&server.dir.join("autotest-download.webm"));
    assert!(
        (149..=151).contains(&frames),
        "ffprobe decodes {frames} frames"
    );

    // Range requests, as the <video> made them to seek.
    let length = file.len();
    let (status, headers, body) = http(
        &server.address,
        "GET /recording.webm",
        "Range: bytes=100-199\r\n",
    );
    assert_eq!(status, 206);
    assert_eq!(headers["content-range"], format!("bytes 100-199/{length}"));
    assert_eq!(body, &file[100..200]);
    let (status, _, body) = http(
        &server.address,
        "GET /recording.webm",
        "Range: bytes=-50\r\n",
    );
    assert_eq!((status, body.as_slice()), (206, &file[length - 50..]));
    let (status, headers, _) = http(
        &server.address,
        "GET /recording.webm",
        &format!("Range: bytes={length}-\r\n"),
    );
    assert_eq!(status, 416);
    assert_eq!(headers["content-range"], format!("bytes */{length}"));
    let (status, headers, body) = http(&server.address, "GET /recording.webm", "");
    assert_eq!((status, body.len()), (200, length));
    assert_eq!(headers["accept-ranges"], "bytes");

    // Nothing else is served: not the folder's other files, nothing outside it.
    for path in [
        "/autotest-result.txt",
        "/recording.webm/../autotest-result.txt",
        "/../Cargo.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
        "/examples/web.rs",
    ] {
        let (status, _, _) = http(&server.address, &format!("GET {path}"), "");
        assert_eq!(status, 404, "GET {path}");
    }
    // Another site cannot start the camera through a visitor's browser.
    let (status, _, _) = http(
        &server.address,
        "POST /start",
        "Origin: http://example.com\r\nContent-Length: 0\r\n",
    );
    assert_eq!(status, 403);
}

#[test]
fn page_stop_after_two_seconds_ends_the_recording() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("web-stop");
    let report = autotest(&server, "&stop=2000");
    check_recorded(&server, &report);
    // Stopped by the page's timer 2 s after the `start` event reached it: within
    // 100 ms of 2 s (the event's way to the page, the request's way back, encoding).
    let duration = report.number("recording_duration");
    assert!(
        (duration - 2.0).abs() <= 0.1,
        "the <video> says the recording lasts {duration} s"
    );
    let file_duration = common::duration_ms(&server.recording());
    assert!(
        (file_duration - 2_000.0).abs() <= 100.0,
        "the file says it lasts {file_duration} ms"
    );
    let seeked = report.number("seeked_to");
    assert!(
        (seeked - report.number("seek_target")).abs() < 0.001,
        "seeked to {seeked} s"
    );
}

#[test]
fn page_shows_the_recorders_error() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("web-error");
    // The recording's file cannot be written: its name is taken by a folder.
    std::fs::create_dir(server.recording()).unwrap();
    let report = autotest(&server, "");
    let errors = report.text("errors");
    let path = server.recording().display().to_string();
    assert!(
        errors.contains(&path),
        "the page's errors do not name {path}: '{errors}'"
    );
    assert!(
        report.text("log").contains("Error: "),
        "the page's log shows no error: {}",
        report.text("log")
    );
}
