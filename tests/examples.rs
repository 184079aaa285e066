//! Runs the examples as a user would (`examples/record.py` with Debian's Python and
//! `GST_PLUGIN_PATH`, `examples/record.rs` as the program `cargo run --example record`
//! builds) and judges the files they write as a player would.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::cargo_build;

/// An example that has not finished after this long is killed and fails its test.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Debian's Python, the one with PyGObject (the first `python3` on PATH may lack it).
const PYTHON: &str = "/usr/bin/python3";

/// What the tests run: the folder with the plugin's cdylib and the `record` program.
struct Built {
    plugin_dir: PathBuf,
    record: PathBuf,
}

/// Builds the plugin's cdylib into `target/<profile>` and the `record` example, once.
///
/// `cargo test` alone builds examples, but `cargo test --test examples` does not, and
/// it leaves the cdylib in `deps/` only (a folder of every crate's .so files, and
/// GStreamer scans a plugin path recursively): so ask cargo for both.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile_dir = cargo_build(&["--lib", "--example", "record"]);
        let built = Built {
            record: profile_dir.join("examples").join("record"),
            plugin_dir: profile_dir,
        };
        assert!(
            built.plugin_dir.join("libgstmediarecorder.so").is_file(),
            "no libgstmediarecorder.so in {}",
            built.plugin_dir.display()
        );
        assert!(built.record.is_file(), "no {}", built.record.display());
        built
    })
}

/// What a finished example printed.
struct Run {
    stdout: String,
    stderr: String,
}

/// Runs an example like a user in a terminal without a display: no preview window, no
/// input; killed after `TIMEOUT`. Panics unless it exits 0.
fn run(mut command: Command) -> Run {
    let shown = format!("{command:?}");
    command
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        // A registry of its own: the plugin in target/ does not go into the user's.
        .env(
            "GST_REGISTRY",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("examples-registry.bin"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let status = common::wait_or_kill(&mut child, TIMEOUT);
    let run = Run {
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    match status {
        None => panic!(
            "{shown} did not finish in {TIMEOUT:?}; it printed:\n{}\n{}",
            run.stdout, run.stderr
        ),
        Some(status) if !status.success() => panic!(
            "{shown} failed ({status}); it printed:\n{}\n{}",
            run.stdout, run.stderr
        ),
        Some(_) => run,
    }
}

/// The N of the sample's "Successfully recorded N bytes of video/webm media." line.
fn recorded_bytes(run: &Run) -> u64 {
    let line = run
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("Successfully recorded "))
        .unwrap_or_else(|| {
            panic!(
                "no 'Successfully recorded' line in:\n{}\n{}",
                run.stdout, run.stderr
            )
        });
    let (bytes, rest) = line.split_once(' ').unwrap();
    assert_eq!(rest, "bytes of video/webm media.", "in '{line}'");
    bytes.parse().unwrap()
}

/// The file is the joined chunks, plays 2 s of video (`frames` frames) and of audio,
/// and says so in its index.
fn check_recording(run: &Run, file: &Path, frames: std::ops::RangeInclusive<usize>) {
    let bytes = recorded_bytes(run);
    assert!(file.is_file(), "{} was not written", file.display());
    assert_eq!(
        bytes,
        std::fs::metadata(file).unwrap().len(),
        "the joined chunks and {} differ in size",
        file.display()
    );
    let decoded = common::decode(file);
    assert!(
        frames.contains(&decoded.frames()),
        "{} frames decoded, expected {frames:?}",
        decoded.frames()
    );
    assert!(
        decoded.audio_duration() > 1_500 * common::MS,
        "{} ns of audio decoded",
        decoded.audio_duration()
    );
    let duration = common::duration_ms(file);
    assert!(
        (1_600.0..=2_100.0).contains(&duration),
        "the file says it lasts {duration} ms"
    );
}

#[test]
fn python_example_records_two_seconds() {
    common::init();
    assert!(
        Command::new(PYTHON)
            .args(["-c", "import gi; gi.require_version('Gst', '1.0')"])
            .status()
            .is_ok_and(|s| s.success()),
        "{PYTHON} cannot import PyGObject with GStreamer: run scripts/setup.sh"
    );
    let built = built();
    let file = common::tmp_dir("examples-python").join("recorded.webm");
    let mut python = Command::new(PYTHON);
    python
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/record.py"))
        .args(["--source", "test", "--duration", "2000", "--output"])
        .arg(&file)
        .env("GST_PLUGIN_PATH", &built.plugin_dir);
    let run = run(python);
    // Stopped by a timer, as in the browser: about 2 s, give or take a few frames.
    check_recording(&run, &file, 50..=63);
}

#[test]
fn rust_example_records_two_seconds() {
    common::init();
    let built = built();
    let file = common::tmp_dir("examples-rust").join("recorded.webm");
    let mut record = Command::new(&built.record);
    record
        .args(["--source", "test", "--duration", "2000", "--output"])
        .arg(&file)
        // It registers the plugin itself.
        .env_remove("GST_PLUGIN_PATH");
    let run = run(record);
    // The `duration` property: 2 s to the frame.
    check_recording(&run, &file, 59..=61);
    let duration = common::duration_ms(&file);
    assert!(
        (duration - 2_000.0).abs() <= 34.0,
        "asked 2000 ms, the file says {duration} ms"
    );
}

/// A running `upload receive`, killed when dropped; its lines as they come.
struct Receiver {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// `127.0.0.1:PORT`
    address: String,
}

impl Receiver {
    fn start(program: &Path, dir: &Path) -> Receiver {
        let (child, lines) = common::spawn_reading_lines(
            Command::new(program)
                .args(["receive", "--listen", "127.0.0.1:0", "--dir"])
                .arg(dir)
                .stdin(Stdio::null())
                .stderr(Stdio::inherit()),
        );
        let mut receiver = Receiver {
            child,
            lines,
            address: String::new(),
        };
        let line = receiver
            .lines
            .recv_timeout(TIMEOUT)
            .expect("the receiver says where it listens");
        receiver.address = line
            .strip_prefix("Receiving on http://")
            .unwrap_or_else(|| panic!("the receiver printed '{line}'"))
            .trim_end_matches('/')
            .to_string();
        receiver
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The receiver's "... at MS ms..." time, in ms since it started.
fn arrived_ms(line: &str) -> u64 {
    line.split_once(" at ")
        .and_then(|(_, rest)| rest.split_once(" ms"))
        .and_then(|(ms, _)| ms.parse().ok())
        .unwrap_or_else(|| panic!("no arrival time in '{line}'"))
}

#[test]
fn upload_example_sends_chunks_while_recording() {
    common::init();
    let upload = common::build_example("upload");
    let dir = common::tmp_dir("examples-upload");
    let receiver = Receiver::start(&upload, &dir.join("received"));
    let file = dir.join("recorded.webm");
    let mut send = Command::new(&upload);
    send.args(["send", "--url"])
        .arg(format!("http://{}/upload", receiver.address))
        .args(["--duration", "3000", "--timeslice", "500"])
        .args(["--source", "test"])
        .arg("--output")
        .arg(&file);
    let run = run(send);
    assert!(run.stdout.contains("\nUploaded rec-"), "{}", run.stdout);

    // What arrived, and when.
    let lines: Vec<String> = receiver.lines.try_iter().collect();
    let chunks: Vec<&String> = lines.iter().filter(|l| l.starts_with("Chunk ")).collect();
    let complete = lines
        .iter()
        .find(|l| l.starts_with("Upload complete at "))
        .unwrap_or_else(|| panic!("the receiver printed:\n{}", lines.join("\n")));
    // 3 s in 500 ms chunks: 6, and one more if the last frames made a chunk of their own.
    assert!(
        (6..=7).contains(&chunks.len()),
        "{} chunks:\n{}",
        chunks.len(),
        lines.join("\n")
    );
    assert!(
        complete.ends_with(&format!(" in {} chunks)", chunks.len())),
        "{complete}"
    );
    // Sent as they were cut, not all at the end: the first came at least 2 s before the
    // upload ended, and each a while after the one before (timeslices of a live source).
    let end_ms = arrived_ms(complete);
    let first_ms = arrived_ms(chunks[0]);
    assert!(
        end_ms >= first_ms + 2_000,
        "the first chunk came at {first_ms} ms, the end at {end_ms} ms:\n{}",
        lines.join("\n")
    );
    let spread = chunks
        .iter()
        .filter(|line| arrived_ms(line) + 1_000 <= end_ms)
        .count();
    assert!(
        spread >= 3,
        "only {spread} chunks came 1 s or more before the end:\n{}",
        lines.join("\n")
    );

    // The chunks joined: a WebM that plays 3 s of video and audio, as the file does.
    let path = complete
        .split_once(": ")
        .and_then(|(_, rest)| rest.split_once(" ("))
        .map(|(path, _)| PathBuf::from(path))
        .unwrap_or_else(|| panic!("no path in '{complete}'"));
    let uploaded = common::decode(&path);
    let recorded = common::decode(&file);
    assert!(
        (89..=91).contains(&uploaded.frames()),
        "{} frames decoded from the upload",
        uploaded.frames()
    );
    assert_eq!(
        uploaded.frames(),
        recorded.frames(),
        "upload and file differ"
    );
    assert!(
        uploaded.audio_duration() > 2_900 * common::MS,
        "{} ns of audio in the upload",
        uploaded.audio_duration()
    );
    assert_eq!(
        common::ffprobe_frames(&path),
        uploaded.frames() as u64,
        "ffprobe's frame count"
    );
    assert_eq!(common::ffmpeg_warnings(&path), "", "ffmpeg on the upload");
}

/// The code block of `language` in the README's section `heading`.
fn readme_block(heading: &str, language: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md is readable");
    let section = readme
        .split_once(&format!("\n## {heading}\n"))
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or(rest))
        .unwrap_or_else(|| panic!("README.md has no section '{heading}'"));
    section
        .split_once(&format!("\n```{language}\n"))
        .and_then(|(_, rest)| rest.split_once("\n```\n"))
        .map(|(code, _)| code.to_string())
        .unwrap_or_else(|| panic!("README.md's '{heading}' has no {language} block"))
}

/// "Using it from code" as a user follows it: a crate of their own with the README's
/// Cargo.toml lines (the path pointed at this checkout) and its program, built and run.
#[test]
fn readme_program_builds_and_records() {
    common::init();
    let dependencies = readme_block("Using it from code", "toml");
    let program = readme_block("Using it from code", "rust");
    let readme_path = "path = \"../gst-plugin-mediarecorder\"";
    assert!(dependencies.contains(readme_path), "{dependencies}");
    let here = format!("path = {:?}", env!("CARGO_MANIFEST_DIR"));
    let dir = common::tmp_dir("examples-readme-program");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"readme-program\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[workspace]\n\n{}\n",
            dependencies.replace(readme_path, &here)
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), program).unwrap();
    // This crate's versions of everything, so nothing is fetched and its builds are reused.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    let profile_dir = common::profile_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
        .args(["build", "--quiet", "--offline"])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "the README's program does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut program = Command::new(profile_dir.join("readme-program"));
    program.current_dir(&dir).env_remove("GST_PLUGIN_PATH");
    let run = run(program);
    // Three 1 s chunks of a 3 s recording, and the file finalized.
    let chunks = run
        .stdout
        .lines()
        .filter(|l| l.contains(" bytes at "))
        .count();
    assert_eq!(chunks, 3, "{}", run.stdout);
    let file = dir.join("out.webm");
    let duration = common::duration_ms(&file);
    assert!(
        (duration - 3_000.0).abs() <= 34.0,
        "asked 3000 ms, the file says {duration} ms"
    );
    let frames = common::decode(&file).frames();
    assert!((89..=91).contains(&frames), "{frames} frames decoded");
}
