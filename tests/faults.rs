//! Real faults (issue 13): a disk that fills, SIGKILL, names that repeat, outputs that
//! block, hostile property values and shutdown races. Each test judges what is on disk
//! (sizes, Duration and Cues, frames that decode) and how the element reports it.
//!
//! Cases that can hang or abort run in a child process (this test binary, running only
//! that test), so a hang is killed at a deadline and an abort does not take the test
//! runner with it. The disk-full tests mount a 1 MB tmpfs (root); where mounting is not
//! allowed they panic, unless MEDIARECORDER_SKIP_MOUNT=1 makes them skip loudly.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use gst::prelude::*;

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// Runs `f` on a thread; fails the test if it has not returned within `limit`. The
/// thread (and what it holds) is left behind then, so nothing else blocks on it.
fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => (v, start.elapsed()),
        Err(_) => panic!("{what}: still blocked after {limit:?}: the element hangs"),
    }
}

/// A pipeline without `Running`'s guard: a test that finds the element hung must not
/// block again on NULL while it unwinds (its child process just exits).
fn launch_plain(description: &str) -> gst::Pipeline {
    let running = launch(description);
    let p = running.0.clone();
    std::mem::forget(running);
    p
}

/// Sets the pipeline to NULL; fails if that takes longer than `limit`.
fn null_within(p: gst::Pipeline, limit: Duration, what: &str) -> Duration {
    let (ok, took) = within(what, limit, move || {
        let ok = p.set_state(gst::State::Null).is_ok();
        drop(p);
        ok
    });
    assert!(ok, "{what}: set_state(NULL) failed");
    println!("{what}: NULL in {took:.2?}");
    took
}

/// Everything the pipeline's bus carries that these tests judge, taken synchronously
/// (a bus that goes flushing at NULL would drop queued messages).
#[derive(Clone, Default)]
struct BusLog(Arc<Mutex<BusEntries>>);

#[derive(Default)]
struct BusEntries {
    elements: Vec<gst::Structure>,
    errors: Vec<String>,
    eos: bool,
}

impl BusLog {
    fn attach(p: &gst::Pipeline) -> BusLog {
        let log = BusLog::default();
        let l = log.clone();
        p.bus().unwrap().set_sync_handler(move |_, msg| {
            let mut e = l.0.lock().unwrap();
            match msg.view() {
                gst::MessageView::Element(m) => {
                    if let Some(s) = m.structure() {
                        e.elements.push(s.to_owned());
                    }
                }
                gst::MessageView::Error(m) => {
                    e.errors.push(format!("{} ({:?})", m.error(), m.debug()))
                }
                gst::MessageView::Eos(_) => e.eos = true,
                _ => {}
            }
            gst::BusSyncReply::Drop
        });
        log
    }

    fn errors(&self) -> Vec<String> {
        self.0.lock().unwrap().errors.clone()
    }

    fn eos(&self) -> bool {
        self.0.lock().unwrap().eos
    }

    fn stop_message(&self) -> Option<gst::Structure> {
        let e = self.0.lock().unwrap();
        e.elements
            .iter()
            .rev()
            .find(|s| s.name() == "mediarecorder-stop")
            .cloned()
    }
}

/// Records `file-closed` structures (`common::watch_closed`), and the signal in the
/// ordered event list.
fn watch_file_closed(r: &gst::Element, events: &Events) -> Closed {
    let closed = watch_closed(r);
    let ev = events.clone();
    r.connect("file-closed", false, move |_| {
        ev.0.lock()
            .unwrap()
            .push(("file-closed".to_string(), String::new()));
        None
    });
    closed
}

/// The `file-closed` structures of a recording, in order.
type Closed = Arc<Mutex<Vec<gst::Structure>>>;

/// Records `description` (its recorder named `r`) in this child process until the
/// recorder's `stop`, waited for up to 30 s, then a fixed quiet time: no event may
/// follow `stop` (a bus error comes before it), and nothing marks that none will.
/// Returns the pipeline (without a guard), its bus log, the recorder's events with
/// `file-closed` among them, and the `file-closed` structures.
fn record_until_stop(description: &str) -> (gst::Pipeline, BusLog, Events, Closed) {
    let p = launch_plain(description);
    let bus = BusLog::attach(&p);
    let r = recorder(&p);
    let (events, _chunks) = Events::watch(&r);
    let closed = watch_file_closed(&r, &events);
    p.set_state(gst::State::Playing).unwrap();
    assert!(
        events.wait_for("stop", 1, Duration::from_secs(30)),
        "no stop within 30 s: {:?}",
        events.names()
    );
    std::thread::sleep(Duration::from_millis(300));
    (p, bus, events, closed)
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Video frame times as ffmpeg decodes them, or why it cannot.
fn ffprobe_video_times(path: &Path) -> Result<Vec<f64>, String> {
    let out = ffprobe(
        path,
        "-select_streams v:0 -show_entries frame=best_effort_timestamp_time -of csv=p=0",
    );
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    if times.is_empty() {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "ffprobe decodes no frame ({} bytes): {}",
            file_size(path).unwrap_or(0),
            err.lines().last().unwrap_or("").trim()
        ))
    } else {
        Ok(times)
    }
}

/// Whether ffmpeg opens the file and finds a video track in it.
fn ffprobe_finds_video(path: &Path) -> bool {
    let out = ffprobe(path, "-show_entries stream=codec_type -of csv=p=0");
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("video")
}

/// A `file-closed` must name a finalized, playable file holding the reported bytes.
fn check_closed_file(s: &gst::Structure) {
    let location = s
        .get::<Option<String>>("location")
        .unwrap()
        .expect("file-closed names a location");
    let path = Path::new(&location);
    let bytes = s.get::<u64>("bytes").unwrap();
    let frames = s.get::<u64>("frames").unwrap();
    let on_disk = file_size(path)
        .unwrap_or_else(|| panic!("file-closed named {location}, which is not on disk"));
    assert_eq!(
        on_disk, bytes,
        "file-closed reported {bytes} bytes for {location}; {on_disk} are on disk"
    );
    let index = webm_index_of(path);
    assert!(
        index.duration_ms.is_some() && !index.cue_times_ms.is_empty(),
        "file-closed named {location}, which is not finalized (Duration {:?}, {} cues)",
        index.duration_ms,
        index.cue_times_ms.len()
    );
    let times = ffprobe_video_times(path)
        .unwrap_or_else(|e| panic!("file-closed named {location}, unreadable: {e}"));
    assert_eq!(
        times.len() as u64,
        frames,
        "{location}: file-closed reported {frames} frames, {} decode",
        times.len()
    );
}

/// The `mediarecorder-stop` message must report the bytes that are on disk.
fn check_stop_bytes(bus: &BusLog) {
    assert!(
        wait_until(Duration::from_secs(2), || bus.stop_message().is_some()),
        "no mediarecorder-stop message on the bus"
    );
    let stop = bus.stop_message().unwrap();
    let bytes = stop.get::<u64>("bytes").unwrap();
    let location = stop
        .get::<Option<String>>("location")
        .unwrap()
        .expect("the stop message names the file");
    let on_disk = file_size(Path::new(&location)).unwrap_or(0);
    assert_eq!(
        bytes, on_disk,
        "mediarecorder-stop reported {bytes} bytes for {location}; {on_disk} are on disk"
    );
}

/// Event names without `dataavailable`, which may come at segment ends.
fn events_without_data(events: &Events) -> Vec<String> {
    events
        .names()
        .into_iter()
        .filter(|n| n != "dataavailable")
        .collect()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// None (after a loud message) only when mounting fails and
    /// MEDIARECORDER_SKIP_MOUNT=1; otherwise a failure to mount fails the test.
    fn mount(name: &str, size: &str) -> Option<Tmpfs> {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        // Left mounted by a run that was killed?
        let _ = Command::new("umount").arg(&dir).output();
        let dir = tmp_dir(name);
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs(dir)),
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        if std::env::var("MEDIARECORDER_SKIP_MOUNT").as_deref() == Ok("1") {
            eprintln!(
                "\n!!!!! SKIPPED {name}: cannot mount a tmpfs at {} ({why}) and \
                 MEDIARECORDER_SKIP_MOUNT=1 !!!!!\n",
                dir.display()
            );
            return None;
        }
        panic!(
            "cannot mount a tmpfs at {} ({why}): the disk-full tests need root (mount); \
             set MEDIARECORDER_SKIP_MOUNT=1 to skip them",
            dir.display()
        );
    }

    /// Fills the file system so that exactly `free` bytes are left.
    fn fill_leaving(&self, free: u64) {
        let path = self.0.join("fill");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        let mut len = 0u64;
        loop {
            match f.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(n) => len += n as u64,
            }
        }
        f.set_len(len.saturating_sub(free)).unwrap();
        f.sync_all().unwrap();
        println!(
            "{}: {} bytes of filler, {free} left",
            self.0.display(),
            len - free
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// A small seeded PRNG (xorshift64*), so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn seed() -> u64 {
    std::env::var("MEDIARECORDER_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(13)
}

// ---------------------------------------------------------------------------------
// 1. Disk full
// ---------------------------------------------------------------------------------

#[test]
fn disk_full_during_recording() {
    isolated(Duration::from_secs(60), || {
        init();
        let Some(fs) = Tmpfs::mount("faults-full-recording", "1m") else {
            return;
        };
        let path = fs.0.join("a.webm");
        // ~1.4 MB of noise for a 1 MB disk: the disk fills mid-recording.
        let (p, bus, events, closed) = record_until_stop(&format!(
            "videotestsrc num-buffers=150 pattern=snow ! \
                 video/x-raw,width=320,height=240,framerate=30/1 ! r. \
                 audiotestsrc num-buffers=250 ! r. \
                 mediarecorder name=r video-bits-per-second=2000000 location={}",
            path.display()
        ));
        let errors = bus.errors();
        println!("events {:?}\nbus errors {errors:?}", events.names());
        assert!(
            errors
                .iter()
                .any(|e| e.contains(path.to_str().unwrap()) && e.contains("No space left")),
            "no bus error naming {} and 'No space left': {errors:?} (eos {})",
            path.display(),
            bus.eos()
        );
        for s in closed.lock().unwrap().iter() {
            check_closed_file(s);
        }
        let names = events_without_data(&events);
        assert_eq!(
            names
                .iter()
                .filter(|n| *n != "file-closed")
                .collect::<Vec<_>>(),
            ["start", "error", "stop"],
            "{:?}",
            events.names()
        );
        let all = events.names();
        let error_at = all.iter().position(|n| n == "error").unwrap();
        assert!(
            all[error_at..].contains(&"dataavailable".to_string()),
            "no dataavailable between error and stop: {all:?}"
        );
        check_stop_bytes(&bus);
        null_within(p, Duration::from_secs(2), "disk full during recording");
    });
}

#[test]
fn disk_full_at_finalization() {
    isolated(Duration::from_secs(60), || {
        init();
        let Some(fs) = Tmpfs::mount("faults-full-final", "1m") else {
            return;
        };
        // About 70 KB are recorded; filesink's 64 KB buffer holds them until the end,
        // so the 16 KB left fail at the final writes (header, Cues).
        fs.fill_leaving(16 * 1024);
        let path = fs.0.join("a.webm");
        let (p, bus, events, closed) = record_until_stop(&format!(
            "mediarecorder name=r location={} \
             videotestsrc num-buffers=60 ! r. audiotestsrc num-buffers=100 ! r.",
            path.display()
        ));
        let stop_bytes = bus.stop_message().map(|s| s.get::<u64>("bytes").unwrap());
        let errors = bus.errors();
        println!(
            "events {:?}\nbus errors {errors:?}\nstop reports {stop_bytes:?} bytes, {:?} on disk",
            events.names(),
            file_size(&path)
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains(path.to_str().unwrap()) && e.contains("No space left")),
            "no bus error naming {} and 'No space left' (eos {}; stop reports {stop_bytes:?} \
             bytes, {:?} on disk, events {:?})",
            path.display(),
            bus.eos(),
            file_size(&path),
            events.names()
        );
        assert_eq!(
            events
                .names()
                .into_iter()
                .filter(|n| n != "file-closed")
                .collect::<Vec<_>>(),
            ["start", "error", "dataavailable", "stop"]
        );
        for s in closed.lock().unwrap().iter() {
            check_closed_file(s);
        }
        check_stop_bytes(&bus);
        null_within(p, Duration::from_secs(2), "disk full at finalization");
    });
}

#[test]
fn disk_full_at_a_segment_rotation() {
    isolated(Duration::from_secs(60), || {
        init();
        let Some(fs) = Tmpfs::mount("faults-full-rotation", "1m") else {
            return;
        };
        // 1 s segments of ~36 KB, each written when it is finalized (it fits in the
        // sink's buffer): 100 KB hold two, the third fails at its rotation.
        fs.fill_leaving(100 * 1024);
        let (p, bus, events, closed) = record_until_stop(&format!(
            "videotestsrc num-buffers=300 ! video/x-raw,width=320,height=240,framerate=30/1 ! r. \
                 audiotestsrc num-buffers=520 ! r. \
                 mediarecorder name=r max-file-duration=1000 location={}/seg-%05d.webm",
            fs.0.display()
        ));
        let errors = bus.errors();
        let on_disk: Vec<_> = files_with_extension(&fs.0, "webm")
            .iter()
            .map(|p| (name_of(p), file_size(p)))
            .collect();
        println!(
            "events {:?}\nbus errors {errors:?}\nfiles {on_disk:?}\nfile-closed {:?}",
            events.names(),
            closed
                .lock()
                .unwrap()
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        );
        let closed = closed.lock().unwrap().clone();
        assert!(
            !closed.is_empty(),
            "no segment was closed although the disk holds two"
        );
        for s in &closed {
            check_closed_file(s);
        }
        assert!(
            errors
                .iter()
                .any(|e| e.contains("No space left")
                    && e.contains(fs.0.join("seg-").to_str().unwrap())),
            "no bus error naming a segment and 'No space left': {errors:?}"
        );
        let names = events_without_data(&events);
        let expected: Vec<String> = std::iter::once("start")
            .chain(std::iter::repeat_n("file-closed", closed.len()))
            .chain(["error", "stop"])
            .map(String::from)
            .collect();
        assert_eq!(names, expected);
        check_stop_bytes(&bus);
        null_within(p, Duration::from_secs(2), "disk full at a rotation");
    });
}

// ---------------------------------------------------------------------------------
// 2. SIGKILL
// ---------------------------------------------------------------------------------

/// One recording in a `gst-launch-1.0` killed `moment` seconds after it started.
/// Reference point: the moment this process reads gst-launch's `mediarecorder-start`
/// line (the element posts it when the first frame arrives; a live source captures
/// that frame at PLAYING, tens of ms earlier). Returns a line for the table, or the
/// failure.
fn kill_once(dir: &Path, i: usize, mime: Option<&str>, moment: f64) -> Result<String, String> {
    let ext = if mime.is_some() { "mp4" } else { "webm" };
    let path = dir.join(format!("kill-{i}.{ext}"));
    let mut cmd = gst_launch();
    cmd.args(["-m", "videotestsrc", "is-live=true", "pattern=ball", "!"])
        .arg("video/x-raw,width=640,height=480,framerate=30/1")
        .args(["!", "mediarecorder"])
        .arg(format!("location={}", path.display()));
    if let Some(m) = mime {
        cmd.arg(format!("mime-type={m}"));
    }
    let log = dir.join(format!("kill-{i}.log"));
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("gst-launch-1.0 runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("mediarecorder-start") {
                let _ = tx.send(Instant::now());
            }
        }
    });
    let Ok(started) = rx.recv_timeout(Duration::from_secs(10)) else {
        let _ = child.kill();
        let status = child.wait().unwrap();
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(format!(
            "#{i}: no mediarecorder-start within 10 s ({status}): {}",
            stderr.lines().last().unwrap_or("").trim()
        ));
    };
    // The moment of the kill is the test's input.
    std::thread::sleep(
        (started + Duration::from_secs_f64(moment)).saturating_duration_since(Instant::now()),
    );
    child.kill().unwrap();
    let killed_at = started.elapsed().as_secs_f64();
    child.wait().unwrap();
    reader.join().unwrap();
    let bytes = file_size(&path).unwrap_or(0);
    // Readable: ffmpeg decodes frames, or (no frame yet) at least opens the file and
    // finds its video track; the loss bound below then judges the empty file.
    let times = match ffprobe_video_times(&path) {
        Ok(times) => times,
        Err(e) if !ffprobe_finds_video(&path) => {
            return Err(format!("#{i} killed at {killed_at:.2} s: unreadable: {e}"));
        }
        Err(_) => Vec::new(),
    };
    let media = if times.is_empty() {
        0.0
    } else {
        let first = times.iter().cloned().fold(f64::INFINITY, f64::min);
        let last = times.iter().cloned().fold(0.0, f64::max);
        last - first + 1.0 / 30.0
    };
    let lost = killed_at - media;
    let line = format!(
        "#{i} killed at {killed_at:.2} s: {bytes} bytes, {} frames, {media:.2} s of media, \
         {lost:.2} s lost",
        times.len()
    );
    // One keyframe interval (2 s) plus 0.3 s for startup and the reference point.
    if lost > 2.3 {
        Err(line)
    } else {
        Ok(line)
    }
}

fn sigkill_runs(name: &str, mime: Option<&str>, salt: u64) {
    init();
    let dir = tmp_dir(&format!("faults-{name}"));
    let seed = seed();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt);
    // 20 moments, as issue 13 asks, two at a time.
    let moments: Vec<f64> = (0..20).map(|_| 1.0 + 4.0 * rng.unit()).collect();
    println!(
        "{name}: seed {seed}, kill moments (s after mediarecorder-start): {:?}",
        moments
            .iter()
            .map(|m| format!("{m:.2}"))
            .collect::<Vec<_>>()
    );
    let mut results = Vec::new();
    for (pair, chunk) in moments.chunks(2).enumerate() {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(k, &m)| {
                    let dir = &dir;
                    s.spawn(move || kill_once(dir, pair * 2 + k, mime, m))
                })
                .collect();
            for h in handles {
                results.push(h.join().unwrap());
            }
        });
    }
    for r in &results {
        match r {
            Ok(l) => println!("  ok   {l}"),
            Err(l) => println!("  FAIL {l}"),
        }
    }
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{name}: {} of {} kills lost more than one keyframe interval (2 s + 0.3 s) or \
         left an unreadable file:\n{}",
        failed.len(),
        results.len(),
        failed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn sigkill_webm_keeps_all_but_one_keyframe_interval() {
    sigkill_runs("sigkill-webm", None, 1);
}

#[test]
fn sigkill_mp4_keeps_all_but_one_keyframe_interval() {
    sigkill_runs("sigkill-mp4", Some("video/mp4"), 2);
}

// ---------------------------------------------------------------------------------
// 3. Names that repeat
// ---------------------------------------------------------------------------------

/// Each WebM file in `dir`, by name, with its bytes.
fn webm_contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files_with_extension(dir, "webm")
        .iter()
        .map(|p| (name_of(p), std::fs::read(p).unwrap()))
        .collect()
}

#[test]
fn a_restarted_segmented_recorder_overwrites_nothing() {
    init();
    let dir = tmp_dir("faults-restart");
    let run = || {
        let out = gst_launch()
            .args(["-q", "videotestsrc", "num-buffers=75", "!"])
            .arg("video/x-raw,width=320,height=240,framerate=30/1")
            .args(["!", "mediarecorder", "max-file-duration=1000"])
            .arg(format!("location={}/rec-%05d.webm", dir.display()))
            .output()
            .expect("gst-launch-1.0 runs");
        println!(
            "run: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim()
        );
        out.status
    };
    assert!(run().success(), "the first run fails");
    let first = webm_contents(&dir);
    println!(
        "after run 1: {:?}",
        first.iter().map(|(n, b)| (n, b.len())).collect::<Vec<_>>()
    );
    assert!(
        first.len() >= 3,
        "2.5 s in 1 s segments: {} files",
        first.len()
    );
    let second_ok = run().success();
    let after = webm_contents(&dir);
    println!(
        "after run 2: {:?}",
        after.iter().map(|(n, b)| (n, b.len())).collect::<Vec<_>>()
    );
    let overwritten: Vec<_> = first
        .iter()
        .filter(|(name, bytes)| !after.iter().any(|(n, b)| n == name && b == bytes))
        .map(|(n, _)| n.clone())
        .collect();
    assert!(
        overwritten.is_empty(),
        "the second run overwrote the first run's {overwritten:?}"
    );
    // The second run either wrote new files or refused (an error exit).
    if second_ok {
        assert!(
            after.len() >= first.len() * 2,
            "the second run succeeded but its files are not on disk: {} then {} files",
            first.len(),
            after.len()
        );
    }
}

#[test]
fn a_repeated_strftime_name_keeps_every_file() {
    isolated(Duration::from_secs(60), || {
        init();
        let dir = tmp_dir("faults-strftime");
        let p = launch_plain(&format!(
            "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! \
                 mediarecorder name=r autostart=false location={}/x-%H%M%S.webm",
            dir.display()
        ));
        let r = recorder(&p);
        let (events, _chunks) = Events::watch(&r);
        let closed = watch_file_closed(&r, &events);
        p.set_state(gst::State::Playing).unwrap();
        wait_flowed(&r, 500 * MS, Duration::from_secs(10));
        let mut done = 0;
        let mut attempt_closed = Vec::new();
        for attempt in 1..=3 {
            // Begin just after a second starts, so the three fall in one second: the
            // wall clock is the input here.
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            std::thread::sleep(Duration::from_nanos(
                1_000_000_000 - now.subsec_nanos() as u64 + 10_000_000,
            ));
            let began = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let before = closed.lock().unwrap().len();
            for _ in 0..3 {
                let media = MediaCount::start(&r);
                assert!(r.emit_by_name::<bool>("start-recording", &[]));
                done += 1;
                assert!(events.wait_for("start", done, Duration::from_secs(5)));
                media.wait_recorded(150 * MS, Duration::from_secs(5));
                drop(media);
                assert!(r.emit_by_name::<bool>("stop-recording", &[]));
                assert!(
                    events.wait_for("stop", done, Duration::from_secs(5)),
                    "no stop: {:?}",
                    events.names()
                );
            }
            let ended = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            assert!(wait_until(Duration::from_secs(2), || closed
                .lock()
                .unwrap()
                .len()
                >= before + 3));
            attempt_closed = closed.lock().unwrap()[before..].to_vec();
            println!(
                "attempt {attempt}: {:.3} s .. {:.3} s",
                began.as_secs_f64(),
                ended.as_secs_f64()
            );
            if began.as_secs() == ended.as_secs() {
                break;
            }
            assert!(attempt < 3, "three recordings never fit in one second");
        }
        let locations: Vec<String> = attempt_closed
            .iter()
            .map(|s| s.get::<Option<String>>("location").unwrap().unwrap())
            .collect();
        println!("file-closed locations: {locations:?}");
        let mut distinct = locations.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            3,
            "three recordings in one second got {} distinct names: {locations:?}",
            distinct.len()
        );
        for s in &attempt_closed {
            check_closed_file(s);
        }
        null_within(p, Duration::from_secs(2), "strftime names");
    });
}

// ---------------------------------------------------------------------------------
// 4. Blocking output
// ---------------------------------------------------------------------------------

#[test]
fn a_fifo_at_the_next_segment_blocks_nothing() {
    isolated(Duration::from_secs(30), || {
        init();
        let dir = tmp_dir("faults-fifo-next");
        let p = launch_plain(&format!(
            "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! r. \
                 audiotestsrc is-live=true ! r. \
                 mediarecorder name=r max-file-duration=1000 location={}/seg-%05d.webm",
            dir.display()
        ));
        let r = recorder(&p);
        let (events, _chunks) = Events::watch(&r);
        let closed = watch_file_closed(&r, &events);
        p.set_state(gst::State::Playing).unwrap();
        // The first segment's file appears when the recording starts; the FIFO goes
        // at the next index before the rotation, 1 s of media later.
        let segments = || {
            let mut found: Vec<u64> = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_prefix("seg-")?
                        .strip_suffix(".webm")?
                        .parse()
                        .ok()
                })
                .collect();
            found.sort();
            found
        };
        assert!(
            wait_until(Duration::from_secs(5), || !segments().is_empty()),
            "no first segment on disk"
        );
        let first_index = segments()[0];
        let first = dir.join(format!("seg-{first_index:05}.webm"));
        let fifo = dir.join(format!("seg-{:05}.webm", first_index + 1));
        mkfifo(&fifo);
        assert_eq!(segments().len(), 1, "rotated before the FIFO was made");
        // Well past the rotation at 1 s to the FIFO's index, media flowing in all
        // along.
        wait_flowed(&r, 2500 * MS, Duration::from_secs(15));
        println!("events before NULL: {:?}", events.names());
        null_within(p, Duration::from_secs(2), "a FIFO at the next segment");
        assert!(
            events.wait_for("stop", 1, Duration::from_secs(2)),
            "no stop after NULL: {:?}",
            events.names()
        );
        for s in closed.lock().unwrap().iter() {
            if s.get::<Option<String>>("location").unwrap().as_deref() != fifo.to_str() {
                check_closed_file(s);
            }
        }
        let index = webm_index_of(&first);
        assert!(
            index.duration_ms.is_some(),
            "the finished first segment {} is not finalized ({:?} bytes)",
            first.display(),
            file_size(&first)
        );
        let frames = ffprobe_video_times(&first).unwrap().len();
        assert!(frames >= 28, "the first segment holds {frames} frames");
    });
}

#[test]
fn a_fifo_as_location_does_not_hang_the_state_change() {
    isolated(Duration::from_secs(30), || {
        init();
        let dir = tmp_dir("faults-fifo-first");
        let fifo = dir.join("out.webm");
        mkfifo(&fifo);
        let p = launch_plain(&format!(
            "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
                 mediarecorder name=r location={}",
            fifo.display()
        ));
        let r = recorder(&p);
        let (events, _chunks) = Events::watch(&r);
        let pp = p.clone();
        let (result, took) = within(
            "set_state(PLAYING) with a FIFO nobody reads as location",
            Duration::from_secs(5),
            move || pp.set_state(gst::State::Playing),
        );
        println!("PLAYING: {result:?} in {took:.2?}");
        // Refused: nothing flows, nothing to wait for. Accepted: media keeps flowing
        // in while the FIFO's open blocks.
        if result.is_ok() {
            wait_flowed(&r, 1000 * MS, Duration::from_secs(10));
        }
        null_within(p, Duration::from_secs(2), "a FIFO as location");
        if events.count("start") > 0 {
            assert!(
                events.wait_for("stop", 1, Duration::from_secs(2)),
                "start without stop: {:?}",
                events.names()
            );
        }
    });
}

// ---------------------------------------------------------------------------------
// 5. Hostile values
// ---------------------------------------------------------------------------------

/// How a `gst-launch-1.0` run ended.
fn launch_verdict(args: &[String], limit: Duration, log: &Path) -> Result<String, String> {
    let started = Instant::now();
    let mut child = gst_launch()
        .arg("-q")
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("gst-launch-1.0 runs");
    let status = wait_or_kill(&mut child, limit);
    let stderr = std::fs::read_to_string(log).unwrap_or_default();
    let why = stderr
        .lines()
        .find(|l| l.contains("panicked") || l.contains("ERROR") || l.contains("rror"))
        .unwrap_or("")
        .trim()
        .chars()
        .take(160)
        .collect::<String>();
    let took = started.elapsed();
    match status {
        None => Err(format!("hung: killed after {limit:?} {why}")),
        Some(s) => match s.signal() {
            Some(sig) => Err(format!("died of signal {sig} after {took:.1?}: {why}")),
            None => Ok(format!("exit {} in {took:.1?} {why}", s.code().unwrap())),
        },
    }
}

#[test]
fn hostile_values_neither_abort_nor_hang() {
    init();
    let dir = tmp_dir("faults-hostile");
    // Every writable numeric property of the element, at 0 and at its maximum.
    let r = gst::ElementFactory::make("mediarecorder").build().unwrap();
    let mut cases: Vec<(String, Vec<String>)> = Vec::new();
    for pspec in r.list_properties() {
        if !pspec.flags().contains(gst::glib::ParamFlags::WRITABLE)
            || pspec.owner_type() != r.type_()
        {
            continue;
        }
        let max = if let Some(p) = pspec.downcast_ref::<gst::glib::ParamSpecUInt>() {
            p.maximum() as u64
        } else if let Some(p) = pspec.downcast_ref::<gst::glib::ParamSpecUInt64>() {
            p.maximum()
        } else {
            continue;
        };
        for v in [0, max] {
            cases.push((
                format!("{}={v}", pspec.name()),
                vec![format!("{}={v}", pspec.name())],
            ));
        }
    }
    assert!(cases.len() >= 18, "numeric properties: {cases:?}");
    cases.push((
        "location=x%65536d.webm".into(),
        vec![format!("location={}/x%65536d.webm", dir.display())],
    ));
    let mut first_files = Vec::new();
    for ms in [1, 2, 5, 10, 16] {
        let case = format!("max-file-duration={ms}");
        let location = dir.join(format!("mfd{ms}-%05d.webm"));
        first_files.push((case.clone(), dir.join(format!("mfd{ms}-00000.webm"))));
        cases.push((
            case.clone(),
            vec![case, format!("location={}", location.display())],
        ));
    }
    let source = "videotestsrc num-buffers=20 ! video/x-raw,width=160,height=120,framerate=30/1 \
                  ! r. audiotestsrc num-buffers=20 ! r. mediarecorder name=r";
    let mut results = Vec::new();
    for (n, chunk) in cases.chunks(4).enumerate() {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(k, (name, extra))| {
                    let dir = &dir;
                    s.spawn(move || {
                        let i = n * 4 + k;
                        let mut args: Vec<String> =
                            source.split_whitespace().map(String::from).collect();
                        if !extra.iter().any(|a| a.starts_with("location=")) {
                            args.push(format!("location={}/case{i}-%05d.webm", dir.display()));
                        }
                        args.extend(extra.iter().cloned());
                        let log = dir.join(format!("case{i}.log"));
                        (
                            name.clone(),
                            launch_verdict(&args, Duration::from_secs(15), &log),
                        )
                    })
                })
                .collect();
            for h in handles {
                results.push(h.join().unwrap());
            }
        });
    }
    let mut failures = Vec::new();
    for (name, verdict) in &results {
        match verdict {
            Ok(v) => println!("  ok   {name:<45} {v}"),
            Err(v) => {
                println!("  FAIL {name:<45} {v}");
                failures.push(format!("{name}: {v}"));
            }
        }
    }
    for (case, first) in &first_files {
        if first.exists() {
            match ffprobe_video_times(first) {
                Ok(t) => println!("  ok   {case}: first file decodes {} frames", t.len()),
                Err(e) => {
                    println!("  FAIL {case}: first file unreadable: {e}");
                    failures.push(format!("{case}: first file unreadable: {e}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
}

/// Sets a string property to raw bytes, as C code can (no UTF-8 check on the way).
fn set_raw_string(obj: &gst::Element, property: &std::ffi::CStr, bytes: &[u8]) {
    use gst::glib::gobject_ffi;
    let value = std::ffi::CString::new(bytes).unwrap();
    // SAFETY: a GValue initialized and unset here; the object and strings outlive the call.
    unsafe {
        let mut v: gobject_ffi::GValue = std::mem::zeroed();
        gobject_ffi::g_value_init(&mut v, gobject_ffi::G_TYPE_STRING);
        gobject_ffi::g_value_set_string(&mut v, value.as_ptr());
        gobject_ffi::g_object_set_property(
            obj.as_ptr() as *mut gobject_ffi::GObject,
            property.as_ptr(),
            &v,
        );
        gobject_ffi::g_value_unset(&mut v);
    }
}

/// Reads a string property back through C; returns its length.
fn get_raw_string_len(obj: &gst::Element, property: &std::ffi::CStr) -> Option<usize> {
    use gst::glib::gobject_ffi;
    // SAFETY: as above; the returned string is only read while the GValue holds it.
    unsafe {
        let mut v: gobject_ffi::GValue = std::mem::zeroed();
        gobject_ffi::g_value_init(&mut v, gobject_ffi::G_TYPE_STRING);
        gobject_ffi::g_object_get_property(
            obj.as_ptr() as *mut gobject_ffi::GObject,
            property.as_ptr(),
            &mut v,
        );
        let s = gobject_ffi::g_value_get_string(&v);
        let len = (!s.is_null()).then(|| std::ffi::CStr::from_ptr(s).to_bytes().len());
        gobject_ffi::g_value_unset(&mut v);
        len
    }
}

fn non_utf8_case(name: &str, property: &std::ffi::CStr, bytes: &[u8]) {
    init();
    let dir = tmp_dir(&format!("faults-{name}"));
    let p = launch_plain(&format!(
        "videotestsrc num-buffers=15 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
         mediarecorder name=r location={}/ok.webm",
        dir.display()
    ));
    let r = recorder(&p);
    let mut value = Vec::new();
    if property.to_bytes() == b"location" {
        value.extend_from_slice(dir.to_str().unwrap().as_bytes());
        value.push(b'/');
    }
    value.extend_from_slice(bytes);
    set_raw_string(&r, property, &value);
    println!(
        "{property:?} set to {:?}; reads back {:?} bytes",
        String::from_utf8_lossy(&value),
        get_raw_string_len(&r, property)
    );
    let bus = BusLog::attach(&p);
    let _ = p.set_state(gst::State::Playing);
    let ended = wait_until(Duration::from_secs(15), || {
        bus.eos() || !bus.errors().is_empty()
    });
    println!("eos {}, errors {:?}", bus.eos(), bus.errors());
    assert!(ended, "neither EOS nor an error within 15 s");
    null_within(p, Duration::from_secs(2), name);
}

#[test]
fn a_non_utf8_location_from_c_is_not_fatal() {
    isolated(Duration::from_secs(30), || {
        non_utf8_case("non-utf8-location", c"location", b"bad-\xff\xfe.webm")
    });
}

#[test]
fn a_non_utf8_mime_type_from_c_is_not_fatal() {
    isolated(Duration::from_secs(30), || {
        non_utf8_case("non-utf8-mime", c"mime-type", b"video/webm;codecs=\xff\xfe")
    });
}

// ---------------------------------------------------------------------------------
// 6. Shutdown races
// ---------------------------------------------------------------------------------

/// Connects a `stop` handler that calls `start-recording` once, after `delay` (a
/// handler doing some work first), and keeps its answer.
fn start_from_first_stop(r: &gst::Element, delay: Duration) -> Answer {
    let answer = Arc::new(Mutex::new(None));
    let a = answer.clone();
    r.connect("stop", false, move |args| {
        let r = args[0].get::<gst::Element>().unwrap();
        let mut a = a.lock().unwrap();
        if a.is_none() {
            // A handler doing some work first: the delay is the test's input.
            std::thread::sleep(delay);
            *a = Some(r.emit_by_name::<bool>("start-recording", &[]));
        }
        None
    });
    answer
}

fn check_start_from_stop(what: &str, r: &gst::Element, events: &Events, answer: Option<bool>) {
    let starts = events.count("start");
    let stops = events.count("stop");
    let state = state_of(r);
    println!(
        "{what}: start-recording in the stop handler returned {answer:?}; {starts} start, \
         {stops} stop; state {state}; events {:?}",
        events.names()
    );
    assert!(answer.is_some(), "{what}: the stop handler never ran");
    assert_eq!(
        starts, stops,
        "{what}: start-recording from a stop handler returned {answer:?}, then {starts} start \
         and {stops} stop (state reads {state})"
    );
    assert_eq!(state, "inactive", "{what}: state after NULL");
}

/// A 160x120 test source into a recorder whose first `stop` handler calls
/// `start-recording` after `delay`, set to PLAYING; the bus is logged. Returns the
/// pipeline (without a guard), the recorder, its events, the handler's answer (once it
/// ran) and the bus log.
type Answer = Arc<Mutex<Option<bool>>>;

fn start_in_stop_handler(
    dir_name: &str,
    source: &str,
    delay: Duration,
) -> (gst::Pipeline, gst::Element, Events, Answer, BusLog) {
    init();
    let dir = tmp_dir(dir_name);
    let p = launch_plain(&format!(
        "videotestsrc {source} ! video/x-raw,width=160,height=120,framerate=30/1 ! \
         mediarecorder name=r location={}/rec-%05d.webm",
        dir.display()
    ));
    let bus = BusLog::attach(&p);
    let r = recorder(&p);
    let (events, _chunks) = Events::watch(&r);
    let answer = start_from_first_stop(&r, delay);
    p.set_state(gst::State::Playing).unwrap();
    (p, r, events, answer, bus)
}

/// After the pipeline went to NULL: lets a late `stop` come, then checks the answer.
fn settle_and_check(what: &str, r: &gst::Element, events: &Events, answer: &Mutex<Option<bool>>) {
    // A fixed quiet time: a `stop` owed (or a `start` not owed) may still come, and
    // nothing marks that none will.
    std::thread::sleep(Duration::from_millis(1000));
    let answer = *answer.lock().unwrap();
    check_start_from_stop(what, r, events, answer);
}

#[test]
fn start_from_a_stop_handler_at_eos() {
    isolated(Duration::from_secs(30), || {
        let (p, r, events, answer, bus) =
            start_in_stop_handler("faults-start-at-eos", "num-buffers=30", Duration::ZERO);
        assert!(events.wait_for("stop", 1, Duration::from_secs(10)));
        assert!(wait_until(Duration::from_secs(5), || bus.eos()), "no EOS");
        // The handler's start-recording has had its effect: refused, or a recording
        // that started.
        assert!(
            wait_until(Duration::from_secs(5), || match *answer.lock().unwrap() {
                None => false,
                Some(false) => true,
                Some(true) => events.count("start") >= 2,
            }),
            "the stop handler's start-recording returned {:?}, then no start: {:?}",
            *answer.lock().unwrap(),
            events.names()
        );
        null_within(
            p,
            Duration::from_secs(2),
            "start from a stop handler at EOS",
        );
        settle_and_check("at EOS", &r, &events, &answer);
    });
}

/// As `gst-launch-1.0` does: the application sets NULL as soon as EOS is on the bus,
/// while the `stop` handler (200 ms of work first) calls `start-recording`.
#[test]
fn start_from_a_stop_handler_when_the_app_ends_at_eos() {
    isolated(Duration::from_secs(30), || {
        let (p, r, events, answer, bus) = start_in_stop_handler(
            "faults-start-at-eos-null",
            "num-buffers=30",
            Duration::from_millis(200),
        );
        assert!(wait_until(Duration::from_secs(10), || bus.eos()), "no EOS");
        null_within(p, Duration::from_secs(2), "NULL at EOS");
        assert!(
            wait_until(Duration::from_secs(2), || answer.lock().unwrap().is_some()),
            "the stop handler did not run within 2 s of NULL: {:?}",
            events.names()
        );
        settle_and_check("NULL at EOS", &r, &events, &answer);
    });
}

#[test]
fn start_from_a_stop_handler_at_shutdown() {
    isolated(Duration::from_secs(30), || {
        let (p, r, events, answer, _) =
            start_in_stop_handler("faults-start-at-null", "is-live=true", Duration::ZERO);
        assert!(events.wait_for("start", 1, Duration::from_secs(5)));
        wait_flowed(&r, 1000 * MS, Duration::from_secs(10));
        null_within(
            p,
            Duration::from_secs(2),
            "start from a stop handler at NULL",
        );
        settle_and_check("at shutdown", &r, &events, &answer);
    });
}

#[test]
fn start_recording_below_paused_is_refused() {
    isolated(Duration::from_secs(30), || {
        init();
        let dir = tmp_dir("faults-start-in-null");
        let r = gst::ElementFactory::make("mediarecorder")
            .property("location", dir.join("n.webm").to_str().unwrap())
            .build()
            .unwrap();
        let (events, _chunks) = Events::watch(&r);
        let in_null = r.emit_by_name::<bool>("start-recording", &[]);
        let state_in_null = state_of(&r);
        r.set_state(gst::State::Ready).unwrap();
        let in_ready = r.emit_by_name::<bool>("start-recording", &[]);
        let state_in_ready = state_of(&r);
        // Fixed quiet times: a refused start must fire nothing, in READY and after
        // NULL, and nothing marks that nothing will.
        std::thread::sleep(Duration::from_millis(300));
        r.set_state(gst::State::Null).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        println!(
            "NULL: {in_null} ({state_in_null}); READY: {in_ready} ({state_in_ready}); \
                 events {:?}; state now {}",
            events.names(),
            state_of(&r)
        );
        assert!(!in_null, "start-recording in NULL returned TRUE");
        assert!(!in_ready, "start-recording in READY returned TRUE");
        assert_eq!(events.count("start"), events.count("stop"));
        assert_eq!(state_of(&r), "inactive");
    });
}

#[test]
fn set_null_from_a_stop_handler_after_eos() {
    isolated(Duration::from_secs(30), || {
        init();
        let dir = tmp_dir("faults-null-in-stop");
        let p = launch_plain(&format!(
            "videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
                 mediarecorder name=r location={}/a.webm",
            dir.display()
        ));
        let r = recorder(&p);
        let took = Arc::new(Mutex::new(None));
        let t = took.clone();
        let weak = p.downgrade();
        r.connect("stop", false, move |_| {
            if let Some(p) = weak.upgrade() {
                let start = Instant::now();
                let _ = p.set_state(gst::State::Null);
                *t.lock().unwrap() = Some(start.elapsed());
            }
            None
        });
        p.set_state(gst::State::Playing).unwrap();
        let returned = wait_until(Duration::from_secs(10), || took.lock().unwrap().is_some());
        if !returned {
            // The dispatcher thread is stuck in set_state: do not block on it again.
            std::mem::forget(p);
            panic!("set_state(NULL) in a stop handler after EOS did not return in 10 s");
        }
        let took = took.lock().unwrap().unwrap();
        println!("set_state(NULL) in the stop handler took {took:.2?}");
        assert!(
            took < Duration::from_secs(1),
            "set_state(NULL) in a stop handler after EOS took {took:.2?}"
        );
    });
}

// ---------------------------------------------------------------------------------
// 7. No file without a recording
// ---------------------------------------------------------------------------------

#[test]
fn no_file_without_a_recording() {
    isolated(Duration::from_secs(30), || {
        init();
        let dir = tmp_dir("faults-no-file");
        let path = dir.join("never.webm");
        let p = launch_plain(&format!(
            "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! \
                 mediarecorder name=r autostart=false location={}",
            path.display()
        ));
        p.set_state(gst::State::Paused).unwrap();
        let _ = p.state(gst::ClockTime::from_seconds(2));
        // A fixed quiet time: a live source sends nothing in PAUSED, so there is
        // no event to wait for; no file may appear meanwhile.
        std::thread::sleep(Duration::from_millis(300));
        p.set_state(gst::State::Ready).unwrap();
        assert!(
            !path.exists(),
            "READY->PAUSED->READY with autostart=false made {} ({:?} bytes)",
            path.display(),
            file_size(&path)
        );
        p.set_state(gst::State::Playing).unwrap();
        wait_flowed(&recorder(&p), 500 * MS, Duration::from_secs(10));
        null_within(p, Duration::from_secs(2), "no recording");
        assert!(
            !path.exists(),
            "PLAYING without a recording made {} ({:?} bytes)",
            path.display(),
            file_size(&path)
        );
    });
}
