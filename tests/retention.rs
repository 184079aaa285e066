//! Retention by bytes: a segmented recording that runs for several times its budget
//! keeps the newest files within it, and never touches a file it did not write.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gst::prelude::*;

#[test]
fn a_byte_budget_keeps_the_newest_files_within_it() {
    init();
    let dir = tmp_dir("retention_bytes");
    let foreign = dir.join("ret-foreign.webm");
    std::fs::write(&foreign, vec![7u8; 200_000]).unwrap();
    std::fs::write(dir.join("notes.txt"), b"not ours").unwrap();
    // 500 ms files of about 12 kB; a 50 kB budget holds three or four of the 16.
    let budget = 50_000u64;
    let p = launch(&format!(
        "mediarecorder name=r duration=8000 max-file-duration=500 \
         video-keyframe-interval-duration=500 max-total-bytes={budget} \
         location={}/ret-%05d.webm \
         videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120 ! r. \
         audiotestsrc is-live=true ! r.",
        dir.display()
    ));
    let removed = Arc::new(Mutex::new(Vec::new()));
    let closed = Arc::new(Mutex::new(Vec::new()));
    let (rm, cl) = (removed.clone(), closed.clone());
    // The budget holds whenever a file is finished, not just at the end.
    let budget_held = Arc::new(Mutex::new(true));
    let held = budget_held.clone();
    let watched = dir.clone();
    p.bus().unwrap().set_sync_handler(move |_, msg| {
        if let gst::MessageView::Element(e) = msg.view() {
            let Some(s) = e.structure() else {
                return gst::BusSyncReply::Pass;
            };
            match s.name().as_str() {
                "mediarecorder-file-removed" => {
                    assert_eq!(s.get::<String>("reason").unwrap(), "max-total-bytes");
                    rm.lock()
                        .unwrap()
                        .push(s.get::<String>("location").unwrap());
                }
                "mediarecorder-file-closed" => {
                    cl.lock()
                        .unwrap()
                        .push(s.get::<String>("location").unwrap());
                    let ours: u64 = files_in(&watched, |name| name.starts_with("ret-"))
                        .iter()
                        .filter(|p| !p.ends_with("ret-foreign.webm"))
                        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
                        .sum();
                    // Checked before the retention of this file ran: one file over.
                    if ours > budget + 20_000 {
                        *held.lock().unwrap() = false;
                    }
                }
                _ => {}
            }
        }
        gst::BusSyncReply::Pass
    });
    expect_eos(&p, Duration::from_secs(30));
    drop(p);

    let closed = closed.lock().unwrap().clone();
    let removed = removed.lock().unwrap().clone();
    assert!(closed.len() >= 12, "{} files written", closed.len());
    assert!(!removed.is_empty());
    let kept: Vec<_> = files_in(&dir, |name| name.starts_with("ret-"))
        .into_iter()
        .filter(|p| *p != foreign)
        .collect();
    let total: u64 = kept
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(total <= budget, "{total} bytes kept of {budget}");
    assert!(
        *budget_held.lock().unwrap(),
        "the budget was passed while recording"
    );
    // The newest files are the ones kept, oldest removed first.
    let kept_names: Vec<String> = kept.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(kept_names, closed[closed.len() - kept.len()..].to_vec());
    assert_eq!(removed, closed[..removed.len()].to_vec());
    assert_eq!(removed.len() + kept.len(), closed.len());
    for file in &kept {
        assert!(decode(file).frames() > 0, "{} plays", file.display());
    }
    // Files the recording did not write are untouched.
    assert_eq!(std::fs::metadata(&foreign).unwrap().len(), 200_000);
    assert!(dir.join("notes.txt").exists());
}

/// A small tmpfs for one test, unmounted when dropped (root only).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(name: &str, size: &str) -> SmallDisk {
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::process::Command::new("umount").arg(&dir).output();
        let dir = tmp_dir(name);
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (this test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).output();
    }
}

#[test]
fn free_space_is_kept_on_a_small_disk() {
    init();
    // 200 kB of disk; 8 s of 500 ms files is about 190 kB, and 50 kB are kept free.
    let disk = SmallDisk::mount("retention_free", "200k");
    let foreign = disk.0.join("someone-elses.bin");
    std::fs::write(&foreign, vec![1u8; 40_000]).unwrap();
    let p = launch(&format!(
        "mediarecorder name=r duration=8000 max-file-duration=500 \
         video-keyframe-interval-duration=500 min-free-bytes=50000 \
         location={}/ret-%05d.webm \
         videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120 ! r. \
         audiotestsrc is-live=true ! r.",
        disk.0.display()
    ));
    let removed = Arc::new(Mutex::new(Vec::new()));
    let rm = removed.clone();
    p.bus().unwrap().set_sync_handler(move |_, msg| {
        if let gst::MessageView::Element(e) = msg.view() {
            if let Some(s) = e.structure() {
                if s.name() == "mediarecorder-file-removed" {
                    rm.lock().unwrap().push(s.get::<String>("reason").unwrap());
                }
            }
        }
        gst::BusSyncReply::Pass
    });
    // The recording ends by itself, without a disk-full error.
    expect_eos(&p, Duration::from_secs(30));
    drop(p);
    let removed = removed.lock().unwrap().clone();
    assert!(!removed.is_empty(), "the disk would have filled");
    assert!(removed.iter().all(|r| r == "min-free-bytes"), "{removed:?}");
    let kept = files_in(&disk.0, |name| name.starts_with("ret-"));
    assert!(kept.len() >= 2, "{kept:?}");
    for file in &kept {
        assert!(decode(file).frames() > 0, "{} plays", file.display());
    }
    assert_eq!(std::fs::metadata(&foreign).unwrap().len(), 40_000);
}
