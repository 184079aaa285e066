//! Crash recovery (issue 16): a recorder killed with SIGKILL leaves its last file without
//! Duration and Cues; the next start with the same `location` finalizes it, and only
//! the files the element's journal names. Also the `repair` example on a file cut short
//! elsewhere.
//!
//! The killed recorder is a `gst-launch-1.0` child using the plugin built with these
//! tests; the next start runs in this process.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

/// Small live pictures and a tone: what a camera and a microphone give, cheaply.
const LIVE_AV: &str =
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1 ! r. \
     audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=1 ! r.";

/// Media a kill may lose: the target of issue 16.
const MAX_LOSS_S: f64 = 1.0;

const MARKER_SUFFIX: &str = ".mediarecorder-partial";

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// How long a killed recorder recorded, measured two ways.
struct Killed {
    /// From the moment this process read the `mediarecorder-start` message, which the
    /// element posts when the first frames reach it: the time it recorded, a few ms
    /// short (the message's way out).
    since_start: f64,
    /// From the moment this process read gst-launch's "Setting pipeline to PLAYING"
    /// line: the live sources capture their first frames just after it, so this also
    /// counts frames an encoder that starts slowly never took.
    since_playing: f64,
}

impl Killed {
    /// Media lost to the kill, given what the recovered files hold.
    fn lost(&self, recovered: f64) -> f64 {
        self.since_start - recovered
    }

    fn show(&self, recovered: f64) -> String {
        format!(
            "killed {:.3} s after the start message ({:.3} s after PLAYING), {recovered:.3} s \
             recovered: {:.3} s lost ({:.3} s since PLAYING)",
            self.since_start,
            self.since_playing,
            self.lost(recovered),
            self.since_playing - recovered
        )
    }
}

/// Records `LIVE_AV` to `location` in a `gst-launch-1.0` and kills it with SIGKILL
/// `moment` seconds after the recording started (its `mediarecorder-start` message).
fn record_and_kill(location: &str, extra: &[&str], moment: f64) -> Killed {
    let mut cmd = gst_launch();
    cmd.args(["-m", "mediarecorder", "name=r"])
        .arg(format!("location={location}"))
        .args(extra)
        .args(LIVE_AV.split_whitespace())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("gst-launch-1.0 runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut playing = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("Setting pipeline to PLAYING") {
                playing = Some(Instant::now());
            }
            if line.contains("mediarecorder-start") {
                let _ = tx.send((playing, Instant::now()));
            }
        }
    });
    let Ok((playing, started)) = rx.recv_timeout(Duration::from_secs(10)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the recorder posted no mediarecorder-start within 10 s");
    };
    // The moment of the kill is the test's input.
    std::thread::sleep(
        (started + Duration::from_secs_f64(moment)).saturating_duration_since(Instant::now()),
    );
    child.kill().unwrap();
    let killed = Killed {
        since_playing: playing
            .expect("gst-launch says when it sets PLAYING")
            .elapsed()
            .as_secs_f64(),
        since_start: started.elapsed().as_secs_f64(),
    };
    child.wait().unwrap();
    reader.join().unwrap();
    killed
}

/// The files in `dir` whose journal marker says they are unfinished.
fn journaled(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            Some(
                name.strip_prefix('.')?
                    .strip_suffix(MARKER_SUFFIX)?
                    .to_string(),
            )
        })
        .collect();
    names.sort();
    names
}

/// Judges a file as a player that seeks would: a Duration (ffprobe), Cues (mkvinfo),
/// and a video frame decoded after seeking to its middle (ffmpeg). Returns the Duration.
fn check_seekable(path: &Path) -> f64 {
    let shown = path.display();
    let duration = ffprobe_duration(path).unwrap_or_else(|| panic!("{shown} has no Duration"));
    let info = Command::new("mkvinfo")
        .arg("-v")
        .arg(path)
        .output()
        .expect("mkvinfo runs (scripts/setup.sh installs mkvtoolnix)");
    assert!(
        String::from_utf8_lossy(&info.stdout).contains("Cues"),
        "{shown} has no Cues"
    );
    assert!(
        !webm_index_of(path).cue_times_ms.is_empty(),
        "{shown}: Cues without a cue point"
    );
    let seek = ffmpeg(
        &format!("-v error -ss {:.3}", duration / 2.0),
        path,
        "-frames:v 1 -f null -",
    );
    let errors = String::from_utf8_lossy(&seek.stderr);
    assert!(
        seek.status.success() && errors.trim().is_empty(),
        "{shown}: seeking to {:.3} s fails: {errors}",
        duration / 2.0
    );
    let warnings = ffmpeg_warnings(path);
    assert!(warnings.is_empty(), "{shown}: ffmpeg warns: {warnings}");
    duration
}

/// Starts a short recording to `location` in this process, as the restarted recorder;
/// returns the `mediarecorder-recovered` messages once `expected` came (or 20 s passed).
fn restart(location: &str, extra: &str, expected: usize) -> Vec<gst::Structure> {
    init();
    let p = launch(&format!(
        "mediarecorder name=r duration=300 {extra} location={location} {LIVE_AV}"
    ));
    let bus = p.bus().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    let mut recovered = Vec::new();
    let mut eos = false;
    while !(eos && recovered.len() >= expected) {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[
                gst::MessageType::Element,
                gst::MessageType::Eos,
                gst::MessageType::Error,
                gst::MessageType::Warning,
            ],
        ) else {
            break;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => eos = true,
            gst::MessageView::Error(e) => {
                panic!("the restart failed: {} ({:?})", e.error(), e.debug())
            }
            gst::MessageView::Warning(w) => println!("warning: {}", w.error()),
            gst::MessageView::Element(m) => {
                if let Some(s) = m
                    .structure()
                    .filter(|s| s.name() == "mediarecorder-recovered")
                {
                    println!("{s} after {:.0?}", started.elapsed());
                    recovered.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    assert!(eos, "the restarted recording did not end");
    recovered
}

/// Checks a `mediarecorder-recovered` message against the file it names.
fn check_message(s: &gst::Structure) -> PathBuf {
    let path = PathBuf::from(s.get::<String>("location").unwrap());
    let bytes = s.get::<u64>("bytes").unwrap();
    let duration = s.get::<gst::ClockTime>("duration").unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), bytes, "{s}");
    let header = ffprobe_duration(&path).unwrap();
    assert!(
        (duration.seconds_f64() - header).abs() < 0.05,
        "{s}: the file's Duration is {header:.3} s"
    );
    path
}

/// A finished WebM of `seconds` (VP8 with a keyframe every 10 frames, Opus), made by a
/// hand pipeline, not by the element.
fn finished_webm(path: &Path, seconds: u32) {
    init();
    let frames = seconds * 30;
    let p = launch(&format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! vp8enc deadline=1 keyframe-max-dist=10 ! queue ! webmmux name=m min-cluster-duration=300000000 \
         ! filesink location={} \
         audiotestsrc num-buffers={} samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=1 \
         ! opusenc ! queue ! m.",
        path.display(),
        seconds * 50
    ));
    expect_eos(&p, Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------
// Killed recordings, recovered at the next start
// ---------------------------------------------------------------------------------

#[test]
fn segments_killed_mid_file_are_finalized_at_the_next_start() {
    let dir = tmp_dir("recovery-segments");
    let location = format!("{}/rec-%05d.webm", dir.display());
    // 1 s segments, killed in the middle of the third.
    let killed_run = record_and_kill(&location, &["max-file-duration=1000"], 2.5);
    let killed: Vec<PathBuf> = files_with_extension(&dir, "webm");
    let unfinished = journaled(&dir);
    println!(
        "killed {:.2} s after the start message: {:?}, journal: {unfinished:?}",
        killed_run.since_start,
        killed.iter().map(|p| name_of(p)).collect::<Vec<_>>()
    );
    assert!(
        killed.len() >= 3,
        "{} files after 2.5 s of 1 s segments",
        killed.len()
    );
    assert!(
        !unfinished.is_empty(),
        "the journal names no unfinished file"
    );
    // The journal names every file the kill left without its Duration.
    for file in &killed {
        if ffprobe_duration(file).is_none() {
            assert!(
                unfinished.contains(&name_of(file)),
                "{} is unfinished but not in the journal",
                file.display()
            );
        }
    }

    let recovered = restart(&location, "max-file-duration=1000", unfinished.len());
    let named: Vec<String> = recovered
        .iter()
        .map(|s| name_of(&check_message(s)))
        .collect();
    assert_eq!(named, unfinished, "recovered files");
    assert!(
        journaled(&dir).is_empty(),
        "the journal still names {:?}",
        journaled(&dir)
    );
    let mut total = 0.0;
    for file in &killed {
        let duration = check_seekable(file);
        println!("{}: {duration:.3} s", name_of(file));
        total += duration;
    }
    let lost = killed_run.lost(total);
    println!("{}", killed_run.show(total));
    assert!(lost <= MAX_LOSS_S, "{}", killed_run.show(total));
    // The restart went on after the last index and finished its own file.
    let after = files_with_extension(&dir, "webm");
    assert_eq!(after.len(), killed.len() + 1, "{after:?}");
    check_seekable(after.last().unwrap());
}

#[test]
fn a_kill_in_the_first_second_of_a_plain_name_is_recovered_beside_it() {
    let dir = tmp_dir("recovery-first-second");
    let location = format!("{}/out.webm", dir.display());
    let killed_run = record_and_kill(&location, &[], 0.7);
    assert_eq!(journaled(&dir), ["out.webm"]);
    let recovered = restart(&location, "", 1);
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    // The next recording replaces out.webm: the killed one was set aside first.
    let path = check_message(&recovered[0]);
    assert_eq!(name_of(&path), "out-recovered.webm");
    assert!(journaled(&dir).is_empty(), "{:?}", journaled(&dir));
    let duration = check_seekable(&path);
    let lost = killed_run.lost(duration);
    println!("{}", killed_run.show(duration));
    assert!(
        duration > 0.0 && lost <= MAX_LOSS_S,
        "{}",
        killed_run.show(duration)
    );
    let new = check_seekable(&dir.join("out.webm"));
    assert!(
        (new - 0.3).abs() < 0.05,
        "the new recording lasts {new:.3} s"
    );
}

#[test]
fn files_the_journal_does_not_name_are_left_untouched() {
    init();
    let dir = tmp_dir("recovery-foreign");
    // A truncated WebM named as the pattern names files, and one named otherwise:
    // neither is in the journal. So is a marker of another pattern's file.
    let foreign = dir.join("rec-00005.webm");
    finished_webm(&foreign, 1);
    let size = std::fs::metadata(&foreign).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&foreign)
        .unwrap()
        .set_len(size * 2 / 3)
        .unwrap();
    let other = dir.join("other.webm");
    std::fs::copy(&foreign, &other).unwrap();
    let cam = dir.join("cam-00001.webm");
    std::fs::copy(&foreign, &cam).unwrap();
    std::fs::write(dir.join(format!(".cam-00001.webm{MARKER_SUFFIX}")), "").unwrap();
    let before: Vec<Vec<u8>> = [&foreign, &other, &cam]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();

    let p = launch(&format!(
        "videotestsrc num-buffers=15 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
         mediarecorder name=r location={}/rec-%05d.webm",
        dir.display()
    ));
    expect_eos(&p, Duration::from_secs(20));
    drop(p);
    // Had anything been taken, its copy would have replaced it within this time: a
    // fixed quiet time, as nothing marks that nothing was taken.
    std::thread::sleep(Duration::from_millis(300));
    for (path, bytes) in [&foreign, &other, &cam].iter().zip(&before) {
        assert!(
            std::fs::read(path).unwrap() == *bytes,
            "{} changed",
            path.display()
        );
        assert!(
            webm_index_of(path).cue_times_ms.is_empty(),
            "{} got Cues",
            path.display()
        );
    }
    assert_eq!(journaled(&dir), ["cam-00001.webm"]);
    // The recording itself went on after the highest index, and left no mark.
    assert!(dir.join("rec-00006.webm").exists());
    check_seekable(&dir.join("rec-00006.webm"));
}

// ---------------------------------------------------------------------------------
// The repair example, on files cut short elsewhere
// ---------------------------------------------------------------------------------

/// Builds `examples/repair.rs` into this profile's folder, once.
fn repair_example() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_example("repair"))
}

fn run_repair(args: &[&Path]) -> std::process::Output {
    Command::new(repair_example())
        .args(args)
        .output()
        .expect("the repair example runs")
}

/// "N frames, M audio packets" in the repair example's report.
fn said_counts(said: &str) -> (u64, u64) {
    let number_before = |what: &str| -> u64 {
        let at = said
            .find(what)
            .unwrap_or_else(|| panic!("no '{what}' in: {said}"));
        let words: Vec<&str> = said[..at].split_whitespace().collect();
        words
            .last()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no count before '{what}' in: {said}"))
    };
    (number_before(" frames"), number_before(" audio packets"))
}

/// `repair` counts what `file-closed` counts: video frames as frames (audio packets
/// apart), and, in a file without video, audio packets. It counted every block of
/// every track as a frame.
#[test]
fn repair_counts_frames_as_file_closed_does() {
    init();
    let dir = tmp_dir("recovery-counts");
    for (name, sources) in [
        (
            "av.webm",
            "videotestsrc num-buffers=45 ! video/x-raw,width=160,height=120,framerate=30/1 ! r. \
             audiotestsrc num-buffers=75 samplesperbuffer=960 ! r.",
        ),
        (
            "a.webm",
            "audiotestsrc num-buffers=75 samplesperbuffer=960 ! r.",
        ),
    ] {
        let path = dir.join(name);
        let p = launch(&format!(
            "mediarecorder name=r location={} {sources}",
            path.display()
        ));
        let closed = watch_closed(&recorder(&p));
        expect_eos(&p, Duration::from_secs(30));
        drop(p);
        let closed_frames = closed.lock().unwrap()[0].get::<u64>("frames").unwrap();
        let blocks = webm_index_of(&path).blocks;
        let video = name.starts_with("av");
        let audio_blocks = blocks
            .iter()
            .filter(|(_, track, _)| *track == if video { 2 } else { 1 })
            .count() as u64;
        let report = gstmediarecorder::repair::repair_to(&path, &dir.join(format!("fixed-{name}")))
            .expect("a finished file copies");
        assert_eq!(report.frames, closed_frames, "{name}: {report:?}");
        assert_eq!(report.audio_packets, audio_blocks, "{name}: {report:?}");
        if video {
            assert_eq!(closed_frames, 45, "{name}");
        } else {
            assert_eq!(closed_frames, audio_blocks, "{name}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_repair_example_finalizes_a_file_cut_mid_cluster() {
    init();
    let dir = tmp_dir("recovery-repair");
    let whole = dir.join("whole.webm");
    finished_webm(&whole, 3);
    let data = std::fs::read(&whole).unwrap();
    let index = webm_index(&data);
    assert!(index.cluster_offsets.len() >= 4, "{index:?}");
    // Cut in the middle of the third cluster: its first half is decodable.
    let k = 2;
    let cut = (index.cluster_offsets[k] + index.cluster_offsets[k + 1]) / 2;
    let complete_frames = index
        .blocks
        .iter()
        .filter(|(t, track, _)| *track == 1 && *t < index.clusters_ms[k])
        .count();
    let cut_file = dir.join("cut.webm");
    std::fs::write(&cut_file, &data).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cut_file)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();
    // The header keeps the Duration of the whole file; the Cues at the end are gone.
    assert!(webm_index_of(&cut_file).cue_times_ms.is_empty());

    // Into another file: the input is only read.
    let out = dir.join("out.webm");
    let run = run_repair(&[&cut_file, &out]);
    let said = String::from_utf8_lossy(&run.stdout);
    println!("{said}{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "repair failed");
    assert_eq!(std::fs::metadata(&cut_file).unwrap().len(), cut as u64);
    let duration = check_seekable(&out);
    let decoded = decode(&out);
    println!(
        "cut at byte {cut} of {}: {duration:.3} s, {} frames decode ({complete_frames} in \
         the clusters before the cut)",
        data.len(),
        decoded.frames()
    );
    assert!(
        duration * 1000.0 >= index.clusters_ms[k] as f64,
        "{duration} s"
    );
    assert!(
        duration * 1000.0 < index.clusters_ms[k + 1] as f64,
        "{duration} s"
    );
    assert!(
        decoded.frames() > complete_frames,
        "{} frames",
        decoded.frames()
    );
    assert!(decoded.audio_samples() > 0);
    // It says what it copied: video frames as frames, as `file-closed` counts them,
    // and audio packets apart.
    let (frames, packets) = said_counts(&said);
    assert_eq!(frames, decoded.frames() as u64, "{said}");
    let blocks = webm_index_of(&out).blocks;
    let audio_blocks = blocks.iter().filter(|(_, track, _)| *track == 2).count();
    assert_eq!(packets, audio_blocks as u64, "{said}");

    // In place: the cut file becomes a finalized one holding the same, with nothing
    // left beside it.
    let run = run_repair(&[&cut_file]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let in_place = check_seekable(&cut_file);
    assert!((in_place - duration).abs() < 0.001, "{in_place} s");
    assert_eq!(decode(&cut_file).frames(), decoded.frames());
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "left beside it: {names:?}");

    // Into itself: refused, rather than cut while being read.
    let before = std::fs::read(&out).unwrap();
    assert!(!run_repair(&[&out, &dir.join("./out.webm")])
        .status
        .success());
    assert!(std::fs::read(&out).unwrap() == before, "out.webm changed");

    // A file with nothing to recover fails and stays as it was.
    let header_only = dir.join("header.webm");
    std::fs::write(&header_only, &data[..index.cluster_offsets[0].min(400)]).unwrap();
    let run = run_repair(&[&header_only]);
    assert!(!run.status.success());
    println!("{}", String::from_utf8_lossy(&run.stderr).trim());
    assert!(std::fs::read(&header_only).unwrap() == data[..index.cluster_offsets[0].min(400)]);
}

// ---------------------------------------------------------------------------------
// MP4 and Matroska (issue 23): journaled and recovered like WebM, never overwritten
// ---------------------------------------------------------------------------------

/// Kills a recording to the plain name `name` with `args`, starts the same command again,
/// and checks that the killed file was set aside, finalized, and holds what was recorded
/// up to the kill (less at most `max_loss` s); returns the recovered file.
fn killed_plain_name_is_set_aside(dir: &Path, name: &str, args: &[&str], max_loss: f64) -> PathBuf {
    let location = format!("{}/{name}", dir.display());
    let mime = args.join(" ");
    let killed_run = record_and_kill(&location, args, 2.5);
    assert_eq!(journaled(dir), [name], "the journal names the killed file");
    let killed_bytes = std::fs::metadata(dir.join(name)).unwrap().len();
    let recovered = restart(&location, &mime, 1);
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    let path = check_message(&recovered[0]);
    let (stem, ext) = name.rsplit_once('.').unwrap();
    assert_eq!(name_of(&path), format!("{stem}-recovered.{ext}"));
    assert!(journaled(dir).is_empty(), "{:?}", journaled(dir));
    let duration = ffprobe_duration(&path).expect("the recovered file has a duration");
    println!(
        "{mime}: {killed_bytes} bytes killed; {}",
        killed_run.show(duration)
    );
    assert!(
        killed_run.lost(duration) <= max_loss,
        "{}",
        killed_run.show(duration)
    );
    let warnings = ffmpeg_warnings(&path);
    // Seen on GStreamer 1.26 under load, 1 run in 10 or so: ffmpeg finds the remuxed
    // MP4's edit list starting before its first keyframe. Whether a picture is lost
    // is told by the frame count below, which must still hold; anything else ffmpeg
    // says fails the test.
    let (edit_list, other): (Vec<&str>, Vec<&str>) = warnings
        .lines()
        .partition(|l| l.contains("edit list") && l.contains("Missing key frame"));
    if !edit_list.is_empty() {
        println!("{}: ffmpeg on the edit list: {edit_list:?}", path.display());
    }
    assert!(
        other.is_empty(),
        "{}: ffmpeg warns: {warnings}",
        path.display()
    );
    let decoded = decode(&path);
    assert!(
        decoded.frames() as f64 >= (duration - 0.1) * 30.0,
        "{} frames in {duration:.3} s",
        decoded.frames()
    );
    assert!(decoded.audio_samples() > 0);
    // The new recording took the plain name and was finished.
    let new = ffprobe_duration(&dir.join(name)).expect("the new recording is finished");
    assert!(
        (new - 0.3).abs() < 0.1,
        "the new recording lasts {new:.3} s"
    );
    path
}

#[test]
fn a_killed_mp4_is_recovered_beside_it_not_overwritten() {
    let dir = tmp_dir("recovery-mp4");
    // A fragment per keyframe interval (1 s here): a kill loses the one being made
    // (0.5 s at 2.5 s), or one more if the last was not written out yet.
    let args = [
        "mime-type=video/mp4",
        "video-keyframe-interval-duration=1000",
    ];
    let path = killed_plain_name_is_set_aside(&dir, "rec.mp4", &args, 1.5);
    assert!(ffprobe_csv(&path, "-show_entries format=format_name").contains("mp4"));
}

#[test]
fn a_killed_matroska_file_is_recovered_beside_it() {
    let dir = tmp_dir("recovery-mkv");
    let args = ["mime-type=video/x-matroska"];
    let path = killed_plain_name_is_set_aside(&dir, "rec.mkv", &args, MAX_LOSS_S);
    check_seekable(&path);
}

#[test]
fn the_repair_example_finalizes_an_mp4_cut_mid_fragment() {
    init();
    let dir = tmp_dir("recovery-repair-mp4");
    // A fragmented MP4 of 3 s in 1 s fragments, as the element writes them.
    let whole = dir.join("whole.mp4");
    let p = launch(&format!(
        "videotestsrc num-buffers=90 pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! x264enc key-int-max=30 tune=zerolatency ! h264parse ! queue \
         ! mp4mux name=m fragment-duration=1000 ! filesink location={} \
         audiotestsrc num-buffers=150 samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=1 \
         ! opusenc ! queue ! m.",
        whole.display()
    ));
    expect_eos(&p, Duration::from_secs(30));
    drop(p);
    // Cut in the middle of the last fragment: its `mfra` and part of its media gone.
    let data = std::fs::read(&whole).unwrap();
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &data[..data.len() * 5 / 6]).unwrap();
    let run = run_repair(&[&cut]);
    println!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "repair failed");
    let duration = ffprobe_duration(&cut).expect("a duration");
    let warnings = ffmpeg_warnings(&cut);
    assert!(warnings.is_empty(), "ffmpeg warns: {warnings}");
    let decoded = decode(&cut);
    println!("{duration:.3} s, {} video frames", decoded.frames());
    // The first two fragments whole, and what of the third was written.
    assert!((2.0..3.0).contains(&duration), "{duration} s");
    assert!(decoded.frames() >= 60, "{} frames", decoded.frames());
    assert!(decoded.audio_samples() > 0);
}
