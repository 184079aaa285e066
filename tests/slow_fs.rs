//! Nothing slow under a lock (issue 24): a recording into a folder whose file-system
//! calls stall (a FUSE mount, `slow_fs/slowfs.py`, standing for a network share that
//! hangs) goes on as if nothing happened. While every lookup, create, remove, rename,
//! sync, listing and free-space query there takes a second, and a new segment file is
//! due every second (and retention reads and rewrites the record of the files as each
//! one is finished):
//! frames keep reaching the recording at their pace, the element's properties answer
//! at once, and the pipeline pauses and plays again at once. Once the share is back,
//! every segment is finalized and holds every frame: the live source lost nothing.
//!
//! Code that touches the file system in a streaming thread, or under the element's
//! `state` lock (which properties and state changes wait for), fails it: one lookup of
//! the next file's name under the lock at each segment boundary holds the stream and
//! every property read for a second.
//!
//! Needs root, /dev/fuse and python3-fusepy (scripts/setup.sh). A kernel without FUSE
//! (no /dev/fuse, as in some containers) skips it with a message; anything else that
//! keeps the folder from mounting fails it.

mod common;
#[path = "slow_fs/folder.rs"]
mod folder;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use folder::SlowFolder;
use gst::prelude::*;

/// How long each call on a name takes while the folder stalls.
const STALL: &str = "1.0";
/// What the test allows, well under the stall (a machine under load has hiccups of a
/// few hundred ms): the longest property read or state change, and the longest time
/// between frames reaching the recording.
const PROMPT: Duration = Duration::from_millis(500);
const PACE: Duration = Duration::from_millis(700);
/// The test fails (and the folder is let go) if it has not ended by then.
const DEADLINE: Duration = Duration::from_secs(90);

/// The longest time between consecutive frames reaching the stage (where the element
/// sorts them into the recording), over a window the test opens and closes.
#[derive(Default)]
struct Pace {
    frames: u64,
    last: Option<Instant>,
    window: Option<Duration>,
}

fn frames_of(path: &Path) -> usize {
    webm_index_of(path).blocks.len()
}

#[test]
fn a_stalled_folder_holds_up_no_stream_no_property_no_state_change() {
    if !Path::new("/dev/fuse").exists() {
        eprintln!("SKIPPED: this kernel offers no FUSE (/dev/fuse is missing)");
        return;
    }
    init();
    let folder = SlowFolder::mount("slow-fs");
    // A hang must not outlive the test: past the deadline the folder is let go (its
    // stalled calls return) and the process ends, failing the test.
    let done = Arc::new(AtomicBool::new(false));
    {
        let (done, mount) = (done.clone(), folder.mount.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < DEADLINE {
                std::thread::sleep(Duration::from_millis(100));
                if done.load(Ordering::SeqCst) {
                    return;
                }
            }
            eprintln!("still running after {DEADLINE:?}: the element hangs on the stalled folder");
            let _ = Command::new("umount").arg("-l").arg(&mount).status();
            std::process::exit(101);
        });
    }
    let p = launch(&format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! mediarecorder name=r max-file-duration=1000 max-files=50 min-free-bytes=1 \
         location={}/seg-%05d.webm",
        folder.mount.display()
    ));
    let r = recorder(&p);
    let stage = r
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("stage-video_0")
        .expect("the video stage")
        .static_pad("sink")
        .unwrap();
    let pace = Arc::new(Mutex::new(Pace::default()));
    {
        let pace = pace.clone();
        stage.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let mut pace = pace.lock().unwrap();
            let now = Instant::now();
            if let (Some(last), Some(window)) = (pace.last, pace.window.as_mut()) {
                *window = (*window).max(now - last);
            }
            pace.last = Some(now);
            pace.frames += 1;
            gst::PadProbeReturn::Ok
        });
    }
    p.set_state(gst::State::Playing).unwrap();
    let segments = || -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&folder.backing)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "webm"))
            .collect();
        found.sort();
        found
    };
    assert!(
        wait_until(Duration::from_secs(10), || !segments().is_empty()),
        "no first segment in the folder"
    );
    wait_flowed(&r, 500 * MS, Duration::from_secs(10));

    // The folder stalls for 4 s: three or four segment boundaries, each needing a new
    // file (a name claimed, its journal marker made and synced, the file created and
    // opened), and the file of each second synced to disk.
    folder.stall(STALL);
    pace.lock().unwrap().window = Some(Duration::ZERO);
    let stalled = Instant::now();
    let frames_before = pace.lock().unwrap().frames;
    let files_before = segments().len();
    // Property reads and `request-data`, each a moment under the state lock.
    let mut slowest_read = Duration::ZERO;
    let mut state_changes = Vec::new();
    while stalled.elapsed() < Duration::from_secs(4) {
        let asked = Instant::now();
        let _: u64 = r.property("bytes-written");
        let _: u64 = r.property("frames-dropped");
        assert!(r.emit_by_name::<bool>("request-data", &[]));
        slowest_read = slowest_read.max(asked.elapsed());
        if state_changes.is_empty() && stalled.elapsed() > Duration::from_millis(2200) {
            for to in [gst::State::Paused, gst::State::Playing] {
                let asked = Instant::now();
                let changed = p.set_state(to);
                state_changes.push((to, changed.is_ok(), asked.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let slowest_frame = pace.lock().unwrap().window.take().unwrap();
    let frames_stalled = pace.lock().unwrap().frames - frames_before;
    let files_stalled = segments().len() - files_before;
    folder.resume();
    println!(
        "while stalled: {frames_stalled} frames reached the stage, at most {slowest_frame:?} \
         apart; slowest property read {slowest_read:?}; state changes {state_changes:?}; \
         {files_stalled} new files"
    );
    // The stall was real: new files waited for the folder (each takes a dozen calls).
    assert!(
        files_stalled <= 1,
        "{files_stalled} files were made while the folder stalled"
    );
    assert!(
        slowest_read < PROMPT,
        "a property read took {slowest_read:?} while the folder stalled: something holds the \
         state lock over a file-system call"
    );
    assert!(
        slowest_frame < PACE,
        "frames stopped reaching the recording for {slowest_frame:?} while the folder stalled"
    );
    // 4 s at 30 frames/s, less the moment paused.
    assert!(
        frames_stalled >= 100,
        "only {frames_stalled} frames reached the recording in the 4 s the folder stalled"
    );
    for (to, ok, took) in &state_changes {
        assert!(ok, "the change to {to:?} failed while the folder stalled");
        assert!(
            *took < PROMPT,
            "the change to {to:?} took {took:?} while the folder stalled"
        );
    }

    // The folder is back: the recording catches up and ends with every frame.
    wait_flowed(&r, 1000 * MS, Duration::from_secs(10));
    p.send_event(gst::event::Eos::new());
    match wait_message(&p, Duration::from_secs(40)) {
        End::Eos(_) => {}
        other => panic!("expected EOS once the folder is back, got {other:?}"),
    }
    let stage_frames = pace.lock().unwrap().frames;
    let dropped: u64 = r.property("frames-dropped");
    drop(p);
    let files = segments();
    let mut recorded = 0;
    for file in &files {
        let index = webm_index_of(file);
        assert!(
            index.duration_ms.is_some(),
            "{} is not finalized",
            file.display()
        );
        let errors = ffmpeg_errors(file);
        assert!(errors.is_empty(), "{}: {errors}", file.display());
        recorded += frames_of(file) as u64;
    }
    println!(
        "{} files, {recorded} frames recorded of {stage_frames} that reached the stage, {dropped} \
         dropped",
        files.len()
    );
    assert!(files.len() >= 6, "{} segment files", files.len());
    assert_eq!(dropped, 0, "frames dropped");
    assert!(
        recorded + 1 >= stage_frames,
        "{recorded} frames in the files of {stage_frames} that reached the recording"
    );
    done.store(true, Ordering::SeqCst);
}
