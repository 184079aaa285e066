//! Safe as a service (issue 23, items 2-6): recorders started together with one pattern
//! never share a file; retention counts the files of earlier runs and recordings and
//! never deletes the file just finished nor a file it did not write; a symlink at
//! `location` or in its folder is not followed into someone else's file; device files
//! get no journal marker beside them.
//!
//! Recorders in other processes are `gst-launch-1.0` children using the plugin built
//! with these tests, each with a deadline.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

/// One second of small pictures, as fast as they encode.
const SECOND: &str =
    "videotestsrc num-buffers=30 pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1";

/// Names in `dir` starting with `prefix`, sorted.
fn names_in(dir: &Path, prefix: &str) -> Vec<String> {
    files_in(dir, |name| name.starts_with(prefix))
        .iter()
        .map(|p| name_of(p))
        .collect()
}

/// A third of a second: what recorders started together each write.
const SHORT: &str =
    "videotestsrc num-buffers=10 pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1";
const SHORT_FRAMES: usize = 10;

/// Runs `n` `gst-launch-1.0` recorders of `SHORT` each to `location` at once; returns
/// the file each reported in its `mediarecorder-stop` message.
fn record_at_once(n: usize, location: &str) -> Vec<String> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            gst_launch()
                .args(["-m"])
                .args(SHORT.split_whitespace())
                .args(["!", "mediarecorder"])
                .arg(format!("location={location}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("gst-launch-1.0 runs")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reported = Vec::new();
    for mut child in children {
        let left = deadline.saturating_duration_since(Instant::now());
        if wait_or_kill(&mut child, left).is_none() {
            panic!("a recorder did not end within 60 s");
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "a recorder failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find(|l| l.contains("mediarecorder-stop"))
            .unwrap_or_else(|| panic!("no mediarecorder-stop: {stdout}"));
        let location = line
            .split("location=(string)")
            .nth(1)
            .and_then(|rest| rest.split([',', ';']).next())
            .unwrap_or_else(|| panic!("no location in {line}"))
            .trim_matches('"')
            .to_string();
        reported.push(location);
    }
    reported
}

/// Every reported name is distinct, and each file holds all `SHORT_FRAMES` frames.
fn check_distinct_and_whole(reported: &[String], dir: &Path, prefix: &str) {
    let unique: HashSet<&String> = reported.iter().collect();
    assert_eq!(
        unique.len(),
        reported.len(),
        "a name was reported twice: {reported:?}"
    );
    assert_eq!(names_in(dir, prefix).len(), reported.len(), "{reported:?}");
    for file in reported {
        let frames = decode(Path::new(file)).frames();
        assert_eq!(
            frames, SHORT_FRAMES,
            "{file} holds {frames} of {SHORT_FRAMES} frames"
        );
        let warnings = ffmpeg_warnings(Path::new(file));
        assert!(warnings.is_empty(), "{file}: {warnings}");
    }
}

#[test]
fn processes_started_together_never_share_a_file() {
    for n in [2, 6, 20] {
        let dir = tmp_dir(&format!("service-together-{n}"));
        let location = format!("{}/r-%03d.webm", dir.display());
        let started = Instant::now();
        let reported = record_at_once(n, &location);
        let recorded = started.elapsed();
        check_distinct_and_whole(&reported, &dir, "r-");
        println!(
            "{n} at once: recorded in {recorded:.1?}, checked in {:.1?}",
            started.elapsed() - recorded
        );
    }
}

#[test]
fn recorders_in_one_process_never_share_a_file() {
    init();
    let dir = tmp_dir("service-together-here");
    let location = format!("{}/r-%03d.webm", dir.display());
    let pipelines: Vec<Running> = (0..6)
        .map(|_| {
            launch(&format!(
                "{SHORT} ! mediarecorder name=r location={location}"
            ))
        })
        .collect();
    let closed: Vec<_> = pipelines
        .iter()
        .map(|p| watch_closed(&recorder(p)))
        .collect();
    for p in &pipelines {
        p.set_state(gst::State::Playing).unwrap();
    }
    for p in &pipelines {
        expect_eos(p, Duration::from_secs(30));
    }
    let reported: Vec<String> = closed
        .iter()
        .flat_map(|c| {
            c.lock()
                .unwrap()
                .iter()
                .map(|s| s.get::<String>("location").unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(reported.len(), 6, "{reported:?}");
    check_distinct_and_whole(&reported, &dir, "r-");
}

// ---------------------------------------------------------------------------------
// Retention across runs and recordings
// ---------------------------------------------------------------------------------

/// A folder with files the recorder did not write: one its pattern could have made, a
/// symlink named like its files pointing at a file outside, and another name.
struct Foreign {
    victim: PathBuf,
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Foreign {
    fn plant(dir: &Path, prefix: &str) -> Foreign {
        let victim = dir.join("outside").join("victim.bin");
        std::fs::create_dir_all(victim.parent().unwrap()).unwrap();
        std::fs::write(&victim, b"not a recording").unwrap();
        let mut files = Vec::new();
        for (name, bytes) in [
            (format!("{prefix}00000.webm"), vec![1u8; 5000]),
            ("notes.txt".to_string(), b"mine".to_vec()),
        ] {
            std::fs::write(dir.join(&name), &bytes).unwrap();
            files.push((dir.join(name), bytes));
        }
        std::os::unix::fs::symlink(&victim, dir.join(format!("{prefix}00001.webm"))).unwrap();
        Foreign { victim, files }
    }

    fn check_untouched(&self, dir: &Path, prefix: &str) {
        for (path, bytes) in &self.files {
            assert!(
                std::fs::read(path).is_ok_and(|b| b == *bytes),
                "{} changed or went",
                path.display()
            );
        }
        let link = dir.join(format!("{prefix}00001.webm"));
        assert_eq!(std::fs::read_link(&link).unwrap(), self.victim);
        assert_eq!(std::fs::read(&self.victim).unwrap(), b"not a recording");
    }
}

/// The recorder's own files in `dir` (named `prefix`..., not the planted ones).
fn own_files(dir: &Path, prefix: &str) -> Vec<String> {
    names_in(dir, prefix)
        .into_iter()
        .filter(|n| n != &format!("{prefix}00000.webm") && n != &format!("{prefix}00001.webm"))
        .collect()
}

/// The locations the recorder reported in `closed` (`watch_closed`), in order.
fn closed_locations(closed: &Mutex<Vec<gst::Structure>>) -> Vec<String> {
    closed
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.get::<String>("location").unwrap())
        .collect()
}

/// Fails unless the recorder's own files left in `dir` (named `ret-`...) are the newest
/// three it wrote (`written`, in order); returns their names.
fn kept_newest_three(dir: &Path, written: &[String]) -> Vec<String> {
    let kept = own_files(dir, "ret-");
    let newest: Vec<String> = written[written.len() - 3..]
        .iter()
        .map(|p| {
            Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(kept, newest, "kept of {written:?}");
    kept
}

#[test]
fn max_files_counts_the_files_of_earlier_runs() {
    init();
    let dir = tmp_dir("service-retention-runs");
    let foreign = Foreign::plant(&dir, "ret-");
    // Each run writes three 1 s files; three runs keep only the newest three.
    let mut written = Vec::new();
    for run in 0..3 {
        let p = launch(&format!(
            "videotestsrc num-buffers=90 pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1 \
             ! mediarecorder name=r max-files=3 max-file-duration=1000 \
             video-keyframe-interval-duration=500 location={}/ret-%05d.webm",
            dir.display()
        ));
        let closed = watch_closed(&recorder(&p));
        expect_eos(&p, Duration::from_secs(30));
        drop(p);
        let names = closed_locations(&closed);
        assert_eq!(names.len(), 3, "run {run}: {names:?}");
        written.extend(names);
    }
    let kept = kept_newest_three(&dir, &written);
    for name in &kept {
        assert!(decode(&dir.join(name)).frames() > 0, "{name} plays");
    }
    foreign.check_untouched(&dir, "ret-");
}

#[test]
fn max_total_bytes_counts_the_files_of_earlier_runs() {
    init();
    let dir = tmp_dir("service-retention-bytes");
    let foreign = Foreign::plant(&dir, "ret-");
    let mut sizes = Vec::new();
    let budget = 60_000u64;
    for _ in 0..3 {
        let p = launch(&format!(
            "videotestsrc num-buffers=60 ! video/x-raw,width=160,height=120,framerate=30/1 \
             ! mediarecorder name=r max-total-bytes={budget} max-file-duration=1000 \
             video-keyframe-interval-duration=500 location={}/ret-%05d.webm",
            dir.display()
        ));
        expect_eos(&p, Duration::from_secs(30));
        drop(p);
        let total: u64 = own_files(&dir, "ret-")
            .iter()
            .map(|n| std::fs::metadata(dir.join(n)).unwrap().len())
            .sum();
        sizes.push(total);
    }
    println!("bytes kept after each run: {sizes:?} (budget {budget})");
    assert!(sizes.iter().all(|s| *s <= budget), "{sizes:?}");
    assert!(!own_files(&dir, "ret-").is_empty());
    foreign.check_untouched(&dir, "ret-");
}

#[test]
fn max_files_counts_the_files_of_earlier_recordings() {
    init();
    let dir = tmp_dir("service-retention-recordings");
    let foreign = Foreign::plant(&dir, "ret-");
    let p = launch(&format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! mediarecorder name=r autostart=false max-files=3 location={}/ret-%05d.webm",
        dir.display()
    ));
    let r = recorder(&p);
    let (events, _chunks) = Events::watch(&r);
    let closed = watch_closed(&r);
    p.set_state(gst::State::Playing).unwrap();
    wait_flowed(&r, 100_000_000, Duration::from_secs(10));
    let recordings = 100;
    for i in 1..=recordings {
        let media = MediaCount::start(&r);
        assert!(r.emit_by_name::<bool>("start-recording", &[]));
        media.wait_recorded(40_000_000, Duration::from_secs(10));
        drop(media);
        assert!(r.emit_by_name::<bool>("stop-recording", &[]));
        assert!(
            events.wait_for("stop", i, Duration::from_secs(10)),
            "stop {i}"
        );
    }
    let written = closed_locations(&closed);
    drop(p);
    assert_eq!(written.len(), recordings, "files closed");
    kept_newest_three(&dir, &written);
    foreign.check_untouched(&dir, "ret-");
}

type Texts = Arc<Mutex<Vec<String>>>;

/// Collects warnings and `file-removed` messages from a pipeline's bus.
fn watch_warnings(p: &gst::Pipeline) -> (Texts, Texts) {
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let removed = Arc::new(Mutex::new(Vec::new()));
    let (w, rm) = (warnings.clone(), removed.clone());
    p.bus().unwrap().set_sync_handler(move |_, msg| {
        match msg.view() {
            gst::MessageView::Warning(warning) => w
                .lock()
                .unwrap()
                .push(warning.error().message().to_string()),
            gst::MessageView::Element(e) => {
                if let Some(s) = e
                    .structure()
                    .filter(|s| s.name() == "mediarecorder-file-removed")
                {
                    rm.lock().unwrap().push(s.to_string());
                }
            }
            _ => {}
        }
        gst::BusSyncReply::Pass
    });
    (warnings, removed)
}

#[test]
fn a_budget_smaller_than_one_file_keeps_it_and_says_so() {
    init();
    for (property, value) in [
        ("max-total-bytes", "1000".to_string()),
        ("min-free-bytes", u64::MAX.to_string()),
    ] {
        let dir = tmp_dir(&format!("service-budget-{property}"));
        let path = dir.join("only.webm");
        let p = launch(&format!(
            "{SECOND} ! mediarecorder name=r {property}={value} location={}",
            path.display()
        ));
        let (warnings, removed) = watch_warnings(&p);
        expect_eos(&p, Duration::from_secs(30));
        drop(p);
        let removed = removed.lock().unwrap().clone();
        assert!(removed.is_empty(), "{property}: removed {removed:?}");
        assert_eq!(decode(&path).frames(), 30, "{property}: the file plays");
        let warnings = warnings.lock().unwrap().clone();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(property) && w.contains("only.webm")),
            "{property}: no warning naming it and the file: {warnings:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Symlinks and device files
// ---------------------------------------------------------------------------------

/// Runs one second into `location`; the error message, if the recording failed.
fn record_to(location: &Path) -> Option<String> {
    init();
    let p = launch(&format!(
        "{SECOND} ! mediarecorder name=r location={}",
        location.display()
    ));
    match play(&p, Duration::from_secs(30)) {
        End::Eos(_) => None,
        End::Error(message) => Some(message),
        End::Timeout => panic!("recording to {} did not end", location.display()),
    }
}

#[test]
fn a_symlink_at_location_is_not_written_through() {
    let dir = tmp_dir("service-symlink");
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let link = dir.join("rec.webm");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let error = record_to(&link).expect("recording through a symlink is refused");
    println!("{error}");
    assert!(error.contains(&link.display().to_string()), "{error}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(std::fs::read_link(&link).unwrap(), victim);
    // A dangling link does not create its target either.
    let missing = dir.join("made-by-the-link.txt");
    let dangling = dir.join("dangling.webm");
    std::os::unix::fs::symlink(&missing, &dangling).unwrap();
    assert!(record_to(&dangling).is_some());
    assert!(!missing.exists(), "the link's target was created");
    // A pattern's names skip a symlink named as they are.
    let first = dir.join("p-000.webm");
    std::os::unix::fs::symlink(&victim, &first).unwrap();
    assert!(record_to(&dir.join("p-%03d.webm")).is_none());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(decode(&dir.join("p-001.webm")).frames(), 30);
}

#[test]
fn a_folder_symlinked_by_another_user_is_refused() {
    let dir = tmp_dir("service-symlinked-folder");
    let target = dir.join("elsewhere");
    std::fs::create_dir(&target).unwrap();
    let link = dir.join("cam");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // Owned by another user, as one planted in a shared folder would be.
    let owned = Command::new("chown")
        .args(["-h", "65534:65534"])
        .arg(&link)
        .status()
        .expect("chown runs");
    assert!(owned.success(), "chown -h needs root");
    let error = record_to(&link.join("rec.webm")).expect("refused");
    println!("{error}");
    assert!(error.contains(&link.display().to_string()), "{error}");
    assert!(
        names_in(&target, "").is_empty(),
        "{:?}",
        names_in(&target, "")
    );
    // One of this user's own links is followed.
    let own = dir.join("mine");
    std::os::unix::fs::symlink(&target, &own).unwrap();
    assert_eq!(record_to(&own.join("rec.webm")), None);
    assert_eq!(decode(&target.join("rec.webm")).frames(), 30);
}

#[test]
fn a_device_file_gets_no_journal_marker() {
    let marker = Path::new("/dev/.full.mediarecorder-partial");
    let _ = std::fs::remove_file(marker);
    let error = record_to(Path::new("/dev/full"));
    let left = marker.exists();
    let _ = std::fs::remove_file(marker);
    println!("{error:?}");
    assert!(!left, "{} was left", marker.display());
    let marker = Path::new("/dev/.null.mediarecorder-partial");
    assert_eq!(record_to(Path::new("/dev/null")), None);
    assert!(!marker.exists());
}
